//! Overlay rootfs (harun's own): the bundle's `root.path` and extra layer directories as
//! read-only lowers, plus an upper layer that takes every write. The bundle is never
//! written, so many containers can share it at once.
//!
//! The interface (documented in README.md, "Overlay rootfs"):
//! - flags of `create`/`run`: `--overlay`, `--layer DIR` (repeatable, the last one on top,
//!   all above `root.path`), `--upper SPEC`;
//! - bundle annotations: [`ANNOTATION`] = `true`|`false`, [`ANNOTATION_LAYERS`] = a JSON
//!   array of absolute dirs (bottom first), [`ANNOTATION_UPPER`] = SPEC.
//!
//! SPEC is `tmpfs` or `tmpfs:SIZE` (ephemeral, in memory, `SIZE` like `64m`) or an absolute
//! directory (persistent: `DIR/upper` + `DIR/work`, kept by `delete`, reused by the next
//! create naming it). Without `--upper` the upper is ephemeral in the state dir:
//! `ROOT/ID/overlay/{upper,work}`, removed with the state dir by `delete`. Any flag or
//! annotation turns the overlay on; flags override annotations field by field.
//!
//! Three steps: [`plan`] in `create` before the state dir exists (every check, no side
//! effect), [`Plan::make_dirs`] in `create` once the state dir exists, and the mount in the
//! init's own mount namespace ([`mount`]), stacked on the rootfs mount point before
//! anything else is mounted there, so the host's mount table never shows it.

mod mount;

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::statfs::{statfs, OVERLAYFS_SUPER_MAGIC};
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::LinuxNamespaceType;
use serde::{Deserialize, Serialize};

use crate::spec::Bundle;
use crate::state::{self, State};
use crate::{procfs, Error, Result};

pub(crate) use mount::mount;

/// `true` or `false`: run on an overlay root (ephemeral upper unless an upper is named).
pub const ANNOTATION: &str = "run.harun.overlay";
/// A JSON array of absolute directories, bottom first, stacked on top of `root.path`.
pub const ANNOTATION_LAYERS: &str = "run.harun.overlay.layers";
/// `tmpfs`, `tmpfs:SIZE` or an absolute directory (persistent upper).
pub const ANNOTATION_UPPER: &str = "run.harun.overlay.upper";
/// `true` or `false` (the default): a read-only merged root. `root.readonly` does not apply
/// to an overlay root: the bundle's rootfs is never written anyway, and every default
/// spec sets it, which would leave the upper useless.
pub const ANNOTATION_READONLY: &str = "run.harun.overlay.readonly";

/// The kernel's limit on lower layers (OVL_MAX_STACK, fs/overlayfs/params.h).
pub const MAX_LOWERS: usize = 500;

/// The overlay flags of `create`/`run`, as given on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// `--overlay`.
    pub enabled: bool,
    /// `--layer DIR`..., bottom first.
    pub layers: &'a [PathBuf],
    /// `--upper SPEC`.
    pub upper: Option<&'a str>,
}

/// A parsed upper SPEC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpperSpec {
    /// `tmpfs` / `tmpfs:SIZE` (bytes).
    Tmpfs { size: Option<u64> },
    /// An absolute directory: persistent.
    Dir(PathBuf),
}

/// Where the upper and work dirs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upper {
    /// Ephemeral, on disk: `DIR/upper` and `DIR/work` with DIR = `STATE_DIR/overlay`.
    StateDir(PathBuf),
    /// Ephemeral, in memory: a tmpfs mounted only in the container's mount namespace.
    Tmpfs { size: Option<u64> },
    /// Persistent: `DIR/upper` and `DIR/work`, kept by delete (DIR canonical).
    Persistent(PathBuf),
}

/// A checked overlay: what the init mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Read-only layers, bottom first: the bundle rootfs, then the extra layers (canonical).
    pub lowers: Vec<PathBuf>,
    pub upper: Upper,
    /// Where a named upper came from (`--upper` or its annotation), for errors.
    pub upper_origin: Option<String>,
    /// The merged root is read-only ([`ANNOTATION_READONLY`]).
    pub readonly: bool,
}

impl Upper {
    /// The dir holding `upper/` and `work/` on the host, if the upper lives on the host.
    pub fn host_dir(&self) -> Option<&Path> {
        match self {
            Upper::StateDir(d) | Upper::Persistent(d) => Some(d),
            Upper::Tmpfs { .. } => None,
        }
    }
}

/// The overlay asked for by `req` and the bundle's annotations, fully checked, or `None`
/// when neither asks for one. `state_dir` is the container's (future) state dir. Reads the
/// file system (layers exist, file system types) but changes nothing.
pub fn plan(bundle: &Bundle, req: &Request<'_>, state_dir: &Path) -> Result<Option<Plan>> {
    let ann = Annotated::parse(bundle.spec.annotations().as_ref())?;
    if !(req.enabled || !req.layers.is_empty() || req.upper.is_some() || ann.enabled()) {
        return Ok(None);
    }
    if bundle.plan.has(LinuxNamespaceType::User) {
        return Err(Error::Unsupported(
            "overlay rootfs in a container with a user namespace".into(),
        ));
    }
    if !bundle.plan.is_new(LinuxNamespaceType::Mount) {
        return Err(Error::spec(
            "linux.namespaces",
            "an overlay rootfs needs a new `mount` namespace",
        ));
    }
    let lowers = lowers(bundle, req, ann.layers)?;
    let (upper, upper_origin) = upper(req, ann.upper, state_dir, &lowers)?;
    Ok(Some(Plan {
        lowers,
        upper,
        upper_origin,
        readonly: ann.readonly.unwrap_or(false),
    }))
}

/// The lower layers, bottom first: root.path, then the flags' layers or else the
/// annotation's; each an existing directory (canonical), none twice, at most [`MAX_LOWERS`].
fn lowers(
    bundle: &Bundle,
    req: &Request<'_>,
    ann_layers: Option<Vec<String>>,
) -> Result<Vec<PathBuf>> {
    let layers: Vec<(String, PathBuf)> = if req.layers.is_empty() {
        let ann_layers = ann_layers.unwrap_or_default();
        (ann_layers.into_iter().enumerate())
            .map(|(i, p)| {
                (
                    format!("annotations[\"{ANNOTATION_LAYERS}\"][{i}]"),
                    p.into(),
                )
            })
            .collect()
    } else {
        (req.layers.iter())
            .map(|p| ("--layer".to_string(), p.clone()))
            .collect()
    };
    let mut lowers = vec![bundle.rootfs.clone()];
    for (field, path) in &layers {
        let dir = existing_dir(field, path)?;
        if lowers.contains(&dir) {
            let why = format!(
                "`{}` is already a lower layer (root.path or a layer)",
                dir.display()
            );
            return Err(Error::spec(field, why));
        }
        lowers.push(dir);
    }
    if lowers.len() > MAX_LOWERS {
        return Err(Error::InvalidArgument(format!(
            "overlay rootfs: {} lower layers (root.path and {} more), the kernel stacks at \
             most {MAX_LOWERS}",
            lowers.len(),
            lowers.len() - 1
        )));
    }
    Ok(lowers)
}

/// Where the upper goes: the flag's SPEC, else the annotation's, else the state dir; with
/// the flag or annotation it came from.
fn upper(
    req: &Request<'_>,
    ann_upper: Option<String>,
    state_dir: &Path,
    lowers: &[PathBuf],
) -> Result<(Upper, Option<String>)> {
    let upper_spec = match (req.upper, ann_upper) {
        (Some(s), _) => Some(("--upper".to_string(), s.to_string())),
        (None, Some(s)) => Some((format!("annotations[\"{ANNOTATION_UPPER}\"]"), s)),
        (None, None) => None,
    };
    let origin = upper_spec.as_ref().map(|(field, _)| field.clone());
    let upper = match upper_spec {
        None => {
            let dir = state_dir.join("overlay");
            let what = format!("the ephemeral upper `{}` (in the state dir)", dir.display());
            let dir = check_upper_dir(&what, &dir, lowers).map_err(|why| {
                Error::InvalidArgument(format!(
                    "overlay rootfs: {why} (use --upper tmpfs, or a persistent --upper DIR)"
                ))
            })?;
            Upper::StateDir(dir)
        }
        Some((field, text)) => match parse_upper(&text).map_err(|why| Error::spec(&field, why))? {
            UpperSpec::Tmpfs { size } => Upper::Tmpfs { size },
            UpperSpec::Dir(dir) => {
                let parent = dir.parent().unwrap_or(Path::new("/"));
                if !parent.is_dir() {
                    let why = format!("parent directory `{}` does not exist", parent.display());
                    return Err(Error::spec(field, why));
                }
                let what = format!("upper `{}`", dir.display());
                let dir =
                    check_upper_dir(&what, &dir, lowers).map_err(|w| Error::spec(&field, w))?;
                check_existing_children(&dir).map_err(|w| Error::spec(&field, w))?;
                Upper::Persistent(dir)
            }
        },
    };
    Ok((upper, origin))
}

/// The overlay annotations of a bundle.
#[derive(Debug, Default, PartialEq, Eq)]
struct Annotated {
    enabled: Option<bool>,
    readonly: Option<bool>,
    layers: Option<Vec<String>>,
    upper: Option<String>,
}

impl Annotated {
    fn parse(map: Option<&HashMap<String, String>>) -> Result<Annotated> {
        let mut out = Annotated::default();
        let field = |k: &str| format!("annotations[\"{k}\"]");
        for (key, value) in map.into_iter().flatten() {
            match key.as_str() {
                ANNOTATION => out.enabled = Some(boolean(key, value)?),
                ANNOTATION_READONLY => out.readonly = Some(boolean(key, value)?),
                ANNOTATION_LAYERS => {
                    let layers: Vec<String> =
                        serde_json::from_slice(value.as_bytes()).map_err(|e| {
                            let why = format!(
                                "`{value}` is not a JSON array of absolute directory paths ({e})"
                            );
                            Error::spec(field(key), why)
                        })?;
                    out.layers = Some(layers);
                }
                ANNOTATION_UPPER => out.upper = Some(value.clone()),
                k if k.starts_with("run.harun.overlay.") => {
                    let why = format!(
                        "unknown overlay annotation (known: {ANNOTATION}, {ANNOTATION_LAYERS}, \
                         {ANNOTATION_UPPER}, {ANNOTATION_READONLY})"
                    );
                    return Err(Error::spec(field(k), why));
                }
                _ => {}
            }
        }
        if out.enabled == Some(false) && (out.layers.is_some() || out.upper.is_some()) {
            return Err(Error::spec(
                field(ANNOTATION),
                format!("is `false`, but {ANNOTATION_LAYERS} or {ANNOTATION_UPPER} is set"),
            ));
        }
        Ok(out)
    }

    /// Whether the annotations alone ask for an overlay: `true`, or a layer list or an upper
    /// without `run.harun.overlay`.
    fn enabled(&self) -> bool {
        self.enabled
            .unwrap_or(self.layers.is_some() || self.upper.is_some())
    }
}

/// `true` or `false`, the value of the annotation `key`.
fn boolean(key: &str, value: &str) -> Result<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        v => Err(Error::spec(
            format!("annotations[\"{key}\"]"),
            format!("unknown value `{v}` (want `true` or `false`)"),
        )),
    }
}

/// Parse an upper SPEC: `tmpfs`, `tmpfs:SIZE` or an absolute directory.
pub fn parse_upper(spec: &str) -> std::result::Result<UpperSpec, String> {
    if spec == "tmpfs" {
        return Ok(UpperSpec::Tmpfs { size: None });
    }
    if let Some(size) = spec.strip_prefix("tmpfs:") {
        return match crate::units::parse_size(size) {
            Ok(0) => Err(format!(
                "tmpfs size: {}",
                crate::units::Invalid::new("size", size, "must be at least 1 byte")
            )),
            Ok(n) => Ok(UpperSpec::Tmpfs { size: Some(n) }),
            Err(e) => Err(format!("tmpfs size: {e}")),
        };
    }
    let path = Path::new(spec);
    if !path.is_absolute() {
        return Err(format!(
            "`{spec}`: want `tmpfs`, `tmpfs:SIZE` or an absolute directory path"
        ));
    }
    if has_dot_dot(path) || path.parent().is_none() {
        return Err(format!("`{spec}`: must not be `/` or contain `..`"));
    }
    Ok(UpperSpec::Dir(path.to_path_buf()))
}

fn has_dot_dot(p: &Path) -> bool {
    p.components().any(|c| c == Component::ParentDir)
}

/// A layer: absolute, an existing directory; returned canonical.
fn existing_dir(field: &str, path: &Path) -> Result<PathBuf> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(Error::spec(
            field,
            format!("`{shown}`: must be an absolute path"),
        ));
    }
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::spec(field, format!("`{shown}` is not a directory"))),
        Err(e) if e.kind() == IoKind::NotFound => {
            return Err(Error::spec(
                field,
                format!("layer `{shown}` does not exist"),
            ))
        }
        Err(e) => return Err(Error::io("open layer", path)(e)),
    }
    fs::canonicalize(path).map_err(Error::io("resolve layer", path))
}

/// Check a host dir that is to hold `upper/` and `work/` (it may not exist yet): not
/// overlapping a lower, on a file system the kernel takes as an upper. Returns it with its
/// existing part canonical. Errors are reasons, for the caller to attach to its field.
fn check_upper_dir(
    what: &str,
    dir: &Path,
    lowers: &[PathBuf],
) -> std::result::Result<PathBuf, String> {
    let (existing, rest) =
        existing_prefix(dir).map_err(|e| format!("{what}: {}", crate::error::Cause(&e)))?;
    // (join("") would add a trailing slash)
    let canonical = if rest.as_os_str().is_empty() {
        existing.clone()
    } else {
        existing.join(&rest)
    };
    for lower in lowers {
        let lower_shown = lower.display();
        if canonical.starts_with(lower) {
            return Err(format!("{what} is inside the lower layer `{lower_shown}`"));
        }
        if lower.starts_with(&canonical) {
            return Err(format!("the lower layer `{lower_shown}` is inside {what}"));
        }
    }
    let fs =
        statfs(&existing).map_err(|e| format!("{what}: statfs `{}`: {e}", existing.display()))?;
    if fs.filesystem_type() == OVERLAYFS_SUPER_MAGIC {
        return Err(format!(
            "{what} is on an overlay file system, which the kernel refuses as an upper layer"
        ));
    }
    let vfs = statvfs(&existing).map_err(|e| format!("{what}: statvfs: {e}"))?;
    if vfs.flags().contains(FsFlags::ST_RDONLY) {
        return Err(format!("{what} is on a read-only file system"));
    }
    Ok(canonical)
}

/// A persistent upper dir that exists must be a directory, and so must its `upper` and
/// `work` children (no symlinks: they would redirect the container's writes), both on one
/// file system (the kernel wants them on one mount).
fn check_existing_children(dir: &Path) -> std::result::Result<(), String> {
    let mut devices = Vec::new();
    for p in [dir.to_path_buf(), dir.join("upper"), dir.join("work")] {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => devices.push(m.dev()),
            Ok(_) => return Err(format!("`{}` exists and is not a directory", p.display())),
            Err(e) if e.kind() == IoKind::NotFound => {}
            Err(e) => return Err(format!("`{}`: {}", p.display(), crate::error::Cause(&e))),
        }
    }
    if let [_, upper, work] = devices[..] {
        if upper != work {
            return Err(format!(
                "`{}/work` is on another file system than `{}/upper` (overlay needs both \
                 on one mount)",
                dir.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

/// (the longest existing ancestor of `path`, canonical; the components after it).
fn existing_prefix(path: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let mut rest = Vec::new();
    let mut cur = path;
    loop {
        match fs::canonicalize(cur) {
            Ok(c) => {
                let tail: PathBuf = rest.iter().rev().collect();
                return Ok((c, tail));
            }
            Err(e) if e.kind() == IoKind::NotFound => match (cur.parent(), cur.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    cur = parent;
                }
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

/// Host directories [`Plan::make_dirs`] created for a persistent upper; removed again when
/// dropped, unless [`MadeDirs::keep`] was called (the create succeeded). Holds the lock on
/// a persistent upper dir until then.
#[derive(Debug)]
#[must_use = "dropping it removes the directories it made"]
pub struct MadeDirs {
    created: Vec<PathBuf>,
    owner: Option<(PathBuf, Flock<fs::File>)>,
}

/// Who uses a persistent upper: `DIR/owner`, written when a create succeeds. Two overlays
/// on one upper at once corrupt it (the kernel only warns, with index=off), so a create
/// refuses an upper whose owner is alive.
#[derive(Debug, Serialize, Deserialize)]
struct Owner {
    id: String,
    pid: i32,
    start_time: u64,
}

const OWNER_FILE: &str = "owner";

impl MadeDirs {
    /// The fd holding the persistent upper's lock: the container init closes it at once.
    pub fn lock_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.owner.as_ref().map(|(_, lock)| lock.as_raw_fd())
    }

    /// The create succeeded: keep the directories, record `st` as the persistent upper's
    /// user (best effort: the container exists either way) and release the lock.
    pub fn keep(mut self, st: &State) {
        self.created.clear();
        if let Some((dir, _lock)) = self.owner.take() {
            let owner = Owner {
                id: st.id.clone(),
                pid: st.pid,
                start_time: st.init_start_time,
            };
            if let Ok(json) = serde_json::to_vec(&owner) {
                let _ = state::write_file_atomic(&dir.join(OWNER_FILE), &json);
            }
        }
    }
}

/// Lock the persistent upper `dir` for this create and check nobody uses it.
fn claim(dir: &Path) -> Result<Flock<fs::File>> {
    let file = fs::File::open(dir).map_err(Error::io("open persistent upper", dir))?;
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| match e {
        nix::errno::Errno::EWOULDBLOCK => Error::FailedPrecondition(format!(
            "persistent upper `{}` is being set up by another create",
            dir.display()
        )),
        e => Error::sys(format!("flock `{}`", dir.display()))(e),
    })?;
    let path = dir.join(OWNER_FILE);
    let owner = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Owner>(&b).ok());
    if let Some(o) = owner.filter(|o| procfs::is_alive(o.pid, o.start_time)) {
        return Err(Error::FailedPrecondition(format!(
            "persistent upper `{}` is in use by container `{}` (pid {})",
            dir.display(),
            o.id,
            o.pid
        )));
    }
    Ok(lock)
}

impl Drop for MadeDirs {
    fn drop(&mut self) {
        for dir in self.created.iter().rev() {
            // Best effort: a failed create reports its own error.
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl Plan {
    /// The topmost lower: the merged root's own mode and owner come from here.
    pub fn top(&self) -> &Path {
        self.lowers.last().map_or(Path::new("/"), |p| p.as_path())
    }

    /// On the host, once the state dir exists: make `upper/` and `work/` for a state-dir or
    /// persistent upper (existing ones are reused). A new `upper/` gets the mode and owner
    /// of the topmost lower's root, as the merged root shows them. Nothing for tmpfs.
    pub fn make_dirs(&self) -> Result<MadeDirs> {
        self.make_host_dirs().map_err(|e| match &self.upper_origin {
            Some(origin) => e.context(origin.clone()),
            None => e,
        })
    }

    fn make_host_dirs(&self) -> Result<MadeDirs> {
        let mut made = MadeDirs {
            created: Vec::new(),
            owner: None,
        };
        let Some(dir) = self.upper.host_dir() else {
            return Ok(made);
        };
        let top = fs::metadata(self.top()).map_err(Error::io("stat layer", self.top()))?;
        // What lives in the state dir goes with it; only a persistent dir needs undoing.
        let undo = matches!(self.upper, Upper::Persistent(_));
        let dir_new = mkdir(dir, 0o700)?;
        if dir_new && undo {
            made.created.push(dir.to_path_buf());
        }
        if undo {
            made.owner = Some((dir.to_path_buf(), claim(dir)?));
        }
        let upper = dir.join("upper");
        if mkdir(&upper, top.mode() & 0o7777)? {
            if undo && !dir_new {
                made.created.push(upper.clone());
            }
            std::os::unix::fs::chown(&upper, Some(top.uid()), Some(top.gid()))
                .map_err(Error::io("chown", &upper))?;
        }
        let work = dir.join("work");
        if mkdir(&work, 0o700)? && undo && !dir_new {
            made.created.push(work);
        }
        Ok(made)
    }
}

/// mkdir with exactly `mode` (no umask); false if it existed already.
fn mkdir(path: &Path, mode: u32) -> Result<bool> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == IoKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(Error::io("create directory", path)(e)),
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(Error::io("chmod", path))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_specs() {
        let ok: &[(&str, UpperSpec)] = &[
            ("tmpfs", UpperSpec::Tmpfs { size: None }),
            (
                "tmpfs:64m",
                UpperSpec::Tmpfs {
                    size: Some(64 << 20),
                },
            ),
            (
                "tmpfs:1gb",
                UpperSpec::Tmpfs {
                    size: Some(1 << 30),
                },
            ),
            ("/var/lib/x", UpperSpec::Dir("/var/lib/x".into())),
            ("/data/", UpperSpec::Dir("/data/".into())),
        ];
        for (text, want) in ok {
            assert_eq!(parse_upper(text).as_ref(), Ok(want), "{text:?}");
        }
        let bad: &[(&str, &str)] = &[
            (
                "tmpfs:",
                "tmpfs size: invalid size ``: expected a number of bytes",
            ),
            (
                "tmpfs:12q",
                "tmpfs size: invalid size `12q`: unknown unit `q`",
            ),
            (
                "tmpfs:0",
                "tmpfs size: invalid size `0`: must be at least 1 byte",
            ),
            ("relative/dir", "absolute directory"),
            ("", "absolute directory"),
            ("TMPFS", "absolute directory"),
            ("/a/../b", "`..`"),
            ("/", "`/`"),
        ];
        for (text, want) in bad {
            let e = parse_upper(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    fn annotated(pairs: &[(&str, &str)]) -> Result<Annotated> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Annotated::parse(Some(&map))
    }

    #[test]
    fn annotations() {
        let a = annotated(&[]).unwrap();
        assert!(!a.enabled());
        let a = annotated(&[("run.harun.overlay", "true"), ("run.harun.other", "x")]).unwrap();
        assert!(a.enabled());
        assert!(!annotated(&[("run.harun.overlay", "false")])
            .unwrap()
            .enabled());
        let a = annotated(&[("run.harun.overlay.layers", r#"["/a","/b"]"#)]).unwrap();
        assert!(a.enabled(), "layers alone turn the overlay on");
        assert_eq!(a.layers, Some(vec!["/a".to_string(), "/b".to_string()]));
        let a = annotated(&[("run.harun.overlay.upper", "tmpfs:1m")]).unwrap();
        assert!(a.enabled(), "an upper alone turns the overlay on");

        let bad: &[(&[(&str, &str)], &str)] = &[
            (&[("run.harun.overlay", "yes")], "unknown value `yes`"),
            (&[("run.harun.overlay", "")], "unknown value ``"),
            (&[("run.harun.overlay.layers", "/a:/b")], "not a JSON array"),
            (
                &[("run.harun.overlay.layers", r#"[1]"#)],
                "not a JSON array",
            ),
            (
                &[("run.harun.overlay.uper", "tmpfs")],
                "unknown overlay annotation",
            ),
            (
                &[
                    ("run.harun.overlay", "false"),
                    ("run.harun.overlay.upper", "tmpfs"),
                ],
                "is `false`",
            ),
        ];
        for (pairs, want) in bad {
            let e = annotated(pairs).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains("annotations[\"run.harun.overlay"),
                "{pairs:?}: {e}"
            );
        }
    }

    #[test]
    fn existing_prefix_splits_at_the_first_missing_component() {
        let tmp = std::env::temp_dir().join(format!("harun-ovl-prefix-{}", std::process::id()));
        fs::create_dir_all(tmp.join("a")).unwrap();
        let (have, rest) = existing_prefix(&tmp.join("a/b/c")).unwrap();
        assert_eq!(have, fs::canonicalize(tmp.join("a")).unwrap());
        assert_eq!(rest, PathBuf::from("b/c"));
        let (have, rest) = existing_prefix(&tmp.join("a")).unwrap();
        assert_eq!((have.ends_with("a"), rest), (true, PathBuf::new()));
        fs::remove_dir_all(&tmp).unwrap();
        assert!(!tmp.exists());
    }

    #[test]
    fn upper_dirs_must_not_overlap_lowers() {
        let tmp = std::env::temp_dir().join(format!("harun-ovl-overlap-{}", std::process::id()));
        fs::create_dir_all(tmp.join("rootfs/sub")).unwrap();
        fs::create_dir_all(tmp.join("up")).unwrap();
        let lowers = [fs::canonicalize(tmp.join("rootfs")).unwrap()];
        let inside = check_upper_dir("upper", &tmp.join("rootfs/sub/new"), &lowers).unwrap_err();
        assert!(
            inside.contains("upper is inside the lower layer"),
            "{inside}"
        );
        let around = check_upper_dir("upper", &tmp, &lowers).unwrap_err();
        assert!(around.contains("is inside upper"), "{around}");
        let ok = check_upper_dir("upper", &tmp.join("up/new"), &lowers).unwrap();
        assert!(ok.ends_with("up/new"));
        fs::remove_dir_all(&tmp).unwrap();
        assert!(!tmp.exists());
    }
}
