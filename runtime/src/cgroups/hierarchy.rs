//! Where containers' cgroups live: the cgroup2 mount (from /proc/self/mountinfo), harun's own
//! cgroup (/proc/self/cgroup), the `linux.cgroupsPath` rules, making the directory with the
//! needed controllers enabled down the tree, and removing it (with the empty parents harun
//! made) again.
//!
//! cgroupsPath rules:
//! - absent or empty: `/harun/<id>` under the cgroup2 root (`/harun` itself is removed when
//!   the last container under it goes);
//! - absolute (`/a/b`): that path under the cgroup2 root;
//! - relative (`a/b`): under harun's own cgroup;
//! - `..` is refused, `.` ignored; the root itself cannot be a container's cgroup.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
use serde::{Deserialize, Serialize};

use super::cgroup::{words, Cgroup};
use super::resources::{unavailable, Plan};
use crate::mountinfo;
use crate::state::{replace_file, Durability};
use crate::{Error, Result};

/// The parent of every default container cgroup.
pub const DEFAULT_PARENT: &str = "harun";

/// Controllers enabled down to every container's cgroup when the hierarchy has them, asked
/// for or not: what `events --stats` reports and what a later `update` may set.
const ALWAYS: &[&str] = &["cpu", "cpuset", "io", "memory", "pids"];

/// A cgroup2 hierarchy as harun sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where cgroup2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid
    /// host); a test may use any directory.
    mount: PathBuf,
    /// harun's own cgroup, as a directory under `mount`.
    own: PathBuf,
}

/// What harun keeps (in the container's state) about its cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The container's cgroup directory (absolute).
    pub path: PathBuf,
    /// The highest ancestor harun removes too when it is left empty: the default parent, or
    /// the topmost parent `create` made. None: only `path` is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_to: Option<PathBuf>,
}

impl Hierarchy {
    /// The running system's cgroup2 mount and harun's own cgroup in it.
    pub fn detect() -> Result<Hierarchy> {
        let read = |p: &str| std::fs::read_to_string(p).map_err(Error::io("read", p));
        let own = own_cgroup(&read("/proc/self/cgroup")?).ok_or_else(|| {
            Error::FailedPrecondition("/proc/self/cgroup has no cgroup v2 line (`0::/...`)".into())
        })?;
        match Self::at_a_standard_mount(&own) {
            Some(h) => Ok(h),
            None => Self::from_mountinfo(&own, &read("/proc/self/mountinfo")?),
        }
    }

    /// The cgroup2 mount as mountinfo lists it, and `own` (from /proc/self/cgroup) under it.
    fn from_mountinfo(own: &str, text: &str) -> Result<Hierarchy> {
        let cgroup2 = mountinfo::cgroup2(mountinfo::parse(text)).ok_or_else(|| {
            Error::FailedPrecondition(
                "no cgroup2 filesystem is mounted (harun needs cgroup v2, at /sys/fs/cgroup \
                 or /sys/fs/cgroup/unified)"
                    .into(),
            )
        })?;
        let (root, mount) = (&*cgroup2.root, Path::new(&*cgroup2.mount_point));
        let rel = Path::new(own).strip_prefix(root).map_err(|_| {
            Error::FailedPrecondition(format!(
                "harun's cgroup `{own}` is outside the cgroup2 mount at {} (root `{root}`)",
                mount.display(),
            ))
        })?;
        Ok(Hierarchy::at(mount, mount.join(rel)))
    }

    /// Without reading /proc/self/mountinfo (thousands of lines on a busy node): cgroup2
    /// mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified, where the directory of `own`
    /// lists this process. A mount of a sub-tree (another root) fails that check and is left
    /// to the mountinfo lookup.
    fn at_a_standard_mount(own: &str) -> Option<Hierarchy> {
        let me = std::process::id().to_string();
        ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .find_map(|mount| {
                let fs = statfs(mount).ok()?;
                if fs.filesystem_type() != CGROUP2_SUPER_MAGIC {
                    return None;
                }
                let dir = Path::new(mount).join(own.trim_start_matches('/'));
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).ok()?;
                procs
                    .lines()
                    .any(|pid| pid == me)
                    .then(|| Hierarchy::at(mount, dir))
            })
    }

    /// A hierarchy mounted at `mount` with harun in `own` (a directory under `mount`).
    pub fn at(mount: impl Into<PathBuf>, own: impl Into<PathBuf>) -> Hierarchy {
        Hierarchy {
            mount: mount.into(),
            own: own.into(),
        }
    }

    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// The directory of container `id`'s cgroup for `cgroups_path`, and the parent harun owns
    /// when the path is the default.
    pub fn locate(
        &self,
        cgroups_path: Option<&Path>,
        id: &str,
    ) -> Result<(PathBuf, Option<PathBuf>)> {
        let path = cgroups_path.filter(|p| !p.as_os_str().is_empty());
        let Some(path) = path else {
            let parent = self.mount.join(DEFAULT_PARENT);
            return Ok((parent.join(id), Some(parent)));
        };
        let rel = clean(path)?;
        let base = if path.is_absolute() {
            &self.mount
        } else {
            &self.own
        };
        Ok((base.join(rel), None))
    }

    /// Make the cgroup at `dir` (from [`Hierarchy::locate`]) with every controller `plan`
    /// needs enabled down the tree; nothing is left behind on failure. An existing directory
    /// is used when it holds no process.
    ///
    /// `note` gets the record as soon as the cgroup is ours to remove, so that a crash never
    /// leaves a cgroup no record names: before the first mkdir when the directory is new
    /// (a record of a cgroup not made yet names nothing to clean), after the check that it
    /// holds no process when it exists already (a record made before would name another
    /// container's cgroup).
    pub fn create(
        &self,
        dir: &Path,
        default_parent: Option<PathBuf>,
        plan: &Plan,
        note: impl FnOnce(&Record) -> Result<()>,
    ) -> Result<(Cgroup, Record)> {
        let rel = dir.strip_prefix(&self.mount).map_err(|_| {
            Error::InvalidArgument(format!(
                "cgroup {} is outside the cgroup2 hierarchy at {}",
                dir.display(),
                self.mount.display()
            ))
        })?;
        let root = Cgroup::open(&self.mount)?;
        let available = root.controllers()?;
        for (c, field) in plan.controllers() {
            if !available.iter().any(|a| a == c) {
                return Err(unavailable(c, field, &self.mount, &available));
            }
        }
        let existed = dir.exists();
        // The topmost directory this create will make, short of `dir` itself.
        let topmost_new = rel
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty() && *a != rel)
            .map(|a| self.mount.join(a))
            .take_while(|a| !a.exists())
            .last();
        let record = Record {
            path: dir.to_path_buf(),
            prune_to: default_parent.or(topmost_new),
        };
        let mut note = Some(note);
        if !existed {
            (note.take().expect("noted once"))(&record)?;
        }
        // A concurrent delete may prune a shared parent between our mkdirs: try again.
        let mut attempt = 0;
        let made = loop {
            match make_dirs(&self.mount, rel) {
                Err(e) if e.errno() == Some(Errno::ENOENT) && attempt < 3 => attempt += 1,
                other => break other?,
            }
        };
        let undo = |e: Error| {
            let _ = remove_made(&made);
            e
        };
        self.enable(rel, plan, &available).map_err(undo)?;
        let cg = Cgroup::open(dir).map_err(undo)?;
        if !made.iter().any(|m| m == dir) && !cg.procs().map_err(undo)?.is_empty() {
            return Err(undo(Error::FailedPrecondition(format!(
                "cgroup {} already has processes (linux.cgroupsPath of another container?)",
                dir.display()
            ))));
        }
        if let Some(note) = note {
            note(&record).map_err(undo)?;
        }
        Ok((cg, record))
    }

    /// Enable in each ancestor of the cgroup `rel`: every controller `plan` needs (an error if
    /// that fails), and those of [`ALWAYS`] the root has (best effort).
    pub fn enable(&self, rel: &Path, plan: &Plan, available: &[String]) -> Result<()> {
        let needed: Vec<(&str, &str)> = plan.controllers();
        let extra: Vec<&str> = ALWAYS
            .iter()
            .copied()
            .filter(|c| available.iter().any(|a| a == c))
            .filter(|c| !needed.iter().any(|(n, _)| n == c))
            .collect();
        if needed.is_empty() && extra.is_empty() {
            return Ok(());
        }
        let mut dir = self.mount.clone();
        for part in rel.parent().into_iter().flat_map(Path::components) {
            enable_in(&dir, &needed, &extra)?;
            dir.push(part);
        }
        if rel.parent().is_some() {
            enable_in(&dir, &needed, &extra)?;
        }
        Ok(())
    }
}

/// Enable `needed` (must succeed) and `extra` (may fail) in `dir`'s subtree_control.
fn enable_in(dir: &Path, needed: &[(&str, &str)], extra: &[&str]) -> Result<()> {
    let cg = Cgroup::open(dir)?;
    let on = words(&cg.read("cgroup.subtree_control")?);
    let missing: Vec<&(&str, &str)> = needed
        .iter()
        .filter(|(c, _)| !on.iter().any(|o| o == c))
        .collect();
    if !missing.is_empty() {
        let value: Vec<String> = missing.iter().map(|(c, _)| format!("+{c}")).collect();
        let value = value.join(" ");
        if let Err(errno) = cg.write_raw("cgroup.subtree_control", &value) {
            let available = cg.controllers().unwrap_or_default();
            if let Some((c, field)) = missing
                .iter()
                .find(|(c, _)| !available.iter().any(|a| a == c))
            {
                return Err(unavailable(c, field, dir, &available));
            }
            let hint = if errno == Errno::EBUSY {
                " (the cgroup has processes of its own; use an absolute linux.cgroupsPath)"
            } else {
                ""
            };
            return Err(Error::Sys {
                what: format!(
                    "{}: enable `{value}` in `{}`{hint}",
                    missing[0].1,
                    dir.join("cgroup.subtree_control").display()
                ),
                errno,
            });
        }
    }
    for c in extra.iter().filter(|c| !on.iter().any(|o| o == *c)) {
        let _ = cg.write_raw("cgroup.subtree_control", &format!("+{c}"));
    }
    Ok(())
}

/// mkdir each component of `rel` under `mount`; the directories made, topmost first.
fn make_dirs(mount: &Path, rel: &Path) -> Result<Vec<PathBuf>> {
    let mut made = Vec::new();
    let mut dir = mount.to_path_buf();
    for part in rel.components() {
        dir.push(part);
        match std::fs::create_dir(&dir) {
            Ok(()) => made.push(dir.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                let _ = remove_made(&made);
                return Err(Error::io("create cgroup", &dir)(e));
            }
        }
    }
    Ok(made)
}

/// rmdir what [`make_dirs`] made, deepest first.
fn remove_made(made: &[PathBuf]) -> Result<()> {
    for d in made.iter().rev() {
        match std::fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove cgroup", d)(e)),
        }
    }
    Ok(())
}

/// The file in a container's state dir naming its cgroup from before the cgroup exists
/// (state.json comes later): `delete --force` of a create killed midway finds it there.
pub const RECORD_FILE: &str = "cgroup.json";

impl Record {
    /// Write the record into the state dir `dir` ([`RECORD_FILE`]): temp file, rename, so
    /// a crash of harun leaves the whole record or none. Not fsynced: the cgroup it names
    /// does not outlive the system either (a reboot takes both away, and a record lost to
    /// one names nothing), so it is read only while the system runs. state.json, which is
    /// fsynced, holds the same record once the create is done. The fsync cost 0.5-1.5 ms of
    /// each create with the state root on a disk.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let data = serde_json::to_vec(self)
            .map_err(|e| Error::Internal(format!("serialize the cgroup record: {e}")))?;
        replace_file(&dir.join(RECORD_FILE), &data, Durability::Atomic)
    }

    /// The record saved in the state dir `dir`, if any.
    pub fn load(dir: &Path) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(dir.join(RECORD_FILE)).ok()?).ok()
    }

    /// The cgroup, or None when it is gone.
    pub fn open(&self) -> Result<Option<Cgroup>> {
        match Cgroup::open(&self.path) {
            Ok(cg) => Ok(Some(cg)),
            Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The cgroup, which must exist.
    pub fn cgroup(&self) -> Result<Cgroup> {
        Cgroup::open(&self.path)
    }

    /// True when the container's cgroup is frozen (`cgroup.freeze` is 1).
    pub fn is_frozen(&self) -> bool {
        std::fs::read_to_string(self.path.join("cgroup.freeze")).is_ok_and(|v| v.trim() == "1")
    }

    /// Kill whatever is left in the cgroup, wait (at most `timeout`) for it to empty, remove
    /// it, then the empty parents harun made. A cgroup already gone is fine.
    pub fn destroy(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        if let Some(cg) = self.open()? {
            if cg.populated()? {
                cg.kill_all()?;
                if !cg.wait_event("populated", 0, timeout)? {
                    return Err(Error::FailedPrecondition(format!(
                        "cgroup {} still has processes {}s after SIGKILL",
                        self.path.display(),
                        timeout.as_secs()
                    )));
                }
            }
            drop(cg);
            remove_tree(&self.path, deadline)?;
        }
        self.prune();
        Ok(())
    }

    /// rmdir the parents up to `prune_to` while they are empty (another container's cgroup
    /// in one stops it: EBUSY).
    fn prune(&self) {
        let Some(top) = &self.prune_to else { return };
        let mut dir = self.path.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(top)) {
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => return,
            }
            if d == top.as_path() {
                return;
            }
            dir = d.parent();
        }
    }
}

/// rmdir a cgroup and the cgroups the container made below it, deepest first.
fn remove_tree(path: &Path, deadline: Instant) -> Result<()> {
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path(), deadline)?;
            }
        }
    }
    rmdir_waiting(path, deadline)
}

/// rmdir a cgroup; EBUSY while the last processes are being torn down, so retry until
/// `deadline`.
fn rmdir_waiting(path: &Path, deadline: Instant) -> Result<()> {
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(Error::io("remove cgroup", path)(e)),
        }
    }
}

/// A cgroupsPath without `.` components, checked: no `..`, not the root itself.
fn clean(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::spec(
                    "linux.cgroupsPath",
                    format!("`{}` must not contain `..`", path.display()),
                ))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(Error::spec(
            "linux.cgroupsPath",
            format!(
                "`{}` names the root cgroup, which cannot hold a container",
                path.display()
            ),
        ));
    }
    Ok(out)
}

/// Check a cgroupsPath without resolving it (for spec validation).
pub fn validate_path(path: Option<&Path>) -> Result<()> {
    match path.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => clean(p).map(|_| ()),
        None => Ok(()),
    }
}

/// The cgroup v2 path in /proc/self/cgroup text (the `0::/path` line).
pub fn own_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end_matches(" (deleted)").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::test_support::Fixture;

    /// The fast path (no mountinfo) finds what the mountinfo lookup finds, on this machine.
    #[test]
    fn standard_mount_agrees_with_mountinfo() {
        let own = own_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap()).unwrap();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let slow = Hierarchy::from_mountinfo(&own, &mountinfo).unwrap();
        assert_eq!(Hierarchy::at_a_standard_mount(&own), Some(slow));
        // Another cgroup's directory does not list this process: no answer.
        assert_eq!(Hierarchy::at_a_standard_mount("/no-such-cgroup"), None);
    }

    #[test]
    fn finds_the_cgroup2_mount_and_own_cgroup() {
        let hierarchy = |own, text| Hierarchy::from_mountinfo(own, text).map_err(|e| e.to_string());
        let hybrid =
            "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            hierarchy("/me", hybrid),
            Ok(Hierarchy::at(
                "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup/unified/me"
            ))
        );
        let unified =
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            hierarchy("/a/b", unified),
            Ok(Hierarchy::at("/sys/fs/cgroup", "/sys/fs/cgroup/a/b"))
        );
        let nested = "99 1 0:26 /a/b /x\\040y rw - cgroup2 none rw\n";
        assert_eq!(
            hierarchy("/a/b/c", nested),
            Ok(Hierarchy::at("/x y", "/x y/c"))
        );
        assert_eq!(
            hierarchy("/c", nested),
            Err("harun's cgroup `/c` is outside the cgroup2 mount at /x y (root `/a/b`)".into())
        );
        assert!(hierarchy("/", "1 2 0:1 / / rw - ext4 /dev/sda rw\n")
            .unwrap_err()
            .starts_with("no cgroup2 filesystem is mounted"));

        assert_eq!(
            own_cgroup("1:cpu:/\n0::/user.slice/x.scope\n").as_deref(),
            Some("/user.slice/x.scope")
        );
        assert_eq!(own_cgroup("0::/\n").as_deref(), Some("/"));
        assert_eq!(own_cgroup("1:cpu:/\n"), None);
    }

    #[test]
    fn cgroups_path_rules() {
        let h = Hierarchy::at("/cg", "/cg/user/me");
        let cases: &[(Option<&str>, &str, Option<&str>)] = &[
            (None, "/cg/harun/c1", Some("/cg/harun")),
            (Some(""), "/cg/harun/c1", Some("/cg/harun")),
            (Some("/pods/p1/c1"), "/cg/pods/p1/c1", None),
            (Some("/./pods//c1/"), "/cg/pods/c1", None),
            (Some("sub/c1"), "/cg/user/me/sub/c1", None),
            (
                Some("machine.slice:harun:c1"),
                "/cg/user/me/machine.slice:harun:c1",
                None,
            ),
        ];
        for (path, dir, parent) in cases {
            let (d, p) = h.locate(path.map(Path::new), "c1").unwrap();
            assert_eq!(d, Path::new(dir), "{path:?}");
            assert_eq!(p.as_deref(), parent.map(Path::new), "{path:?}");
        }
        for bad in ["/a/../b", "..", "a/..", "/", "/."] {
            let e = h.locate(Some(Path::new(bad)), "c1").unwrap_err();
            assert!(
                e.to_string().starts_with("linux.cgroupsPath: "),
                "{bad}: {e}"
            );
            assert!(validate_path(Some(Path::new(bad))).is_err());
        }
    }

    #[test]
    fn create_enables_controllers_down_the_tree_and_destroy_prunes() {
        let fx = Fixture::new("create");
        fx.write("cgroup.controllers", "hugetlb pids\n");
        fx.cgroup("harun");
        let h = Hierarchy::at(fx.path(), fx.path());
        let plan = crate::cgroups::resources::plan(
            &serde_json::from_str(r#"{"pids": {"limit": 10}}"#).unwrap(),
        )
        .unwrap();
        let (dir, parent) = h.locate(None, "c1").unwrap();
        let noted = std::cell::Cell::new(false);
        let note = |r: &Record| {
            // Before the mkdir: a crash right after leaves a record, never a bare cgroup.
            assert!(!r.path.exists() && r.path.parent().unwrap().exists());
            noted.set(true);
            Ok(())
        };
        let (cg, record) = h.create(&dir, parent, &plan, note).unwrap();
        assert!(noted.get());
        assert_eq!(cg.path(), fx.path().join("harun/c1"));
        assert_eq!(
            record.prune_to.as_deref(),
            Some(fx.path().join("harun").as_path())
        );
        assert_eq!(fx.read("cgroup.subtree_control"), "+pids");
        assert_eq!(fx.read("harun/cgroup.subtree_control"), "+pids");
        // A cgroup the container made inside its own goes too.
        std::fs::create_dir_all(fx.path().join("harun/c1/nested/deeper")).unwrap();
        // harun/ still holds the fixture's files (as if another container were there).
        record.destroy(Duration::from_secs(1)).unwrap();
        assert!(!fx.path().join("harun/c1").exists());
        assert!(fx.path().join("harun").is_dir());
        for f in [
            "cgroup.controllers",
            "cgroup.subtree_control",
            "cgroup.procs",
        ] {
            std::fs::remove_file(fx.path().join("harun").join(f)).unwrap();
        }
        record.destroy(Duration::from_secs(1)).unwrap();
        assert!(!fx.path().join("harun").exists());
    }

    #[test]
    fn a_missing_controller_is_a_clear_error_and_nothing_is_made() {
        let fx = Fixture::new("missing");
        fx.write("cgroup.controllers", "hugetlb\n");
        let h = Hierarchy::at(fx.path(), fx.path());
        let plan = crate::cgroups::resources::plan(
            &serde_json::from_str(r#"{"memory": {"limit": 1048576}}"#).unwrap(),
        )
        .unwrap();
        let (dir, parent) = h.locate(None, "c2").unwrap();
        let e = h
            .create(&dir, parent, &plan, |_| panic!("noted a cgroup it refused"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "linux.resources.memory.limit: cgroup controller `memory` is not available in {} \
                 (available: hugetlb)",
                fx.path().display()
            )
        );
        assert!(!fx.path().join("harun").exists());
    }

    #[test]
    fn explicit_paths_prune_only_what_create_made() {
        let fx = Fixture::new("explicit");
        fx.write("cgroup.controllers", "hugetlb\n"); // nothing to enable on the way down
        std::fs::create_dir(fx.path().join("pods")).unwrap();
        let h = Hierarchy::at(fx.path(), fx.path());
        let (dir, parent) = h.locate(Some(Path::new("/pods/p1/c3")), "c3").unwrap();
        let (_cg, record) = h
            .create(&dir, parent, &Plan::default(), |_| Ok(()))
            .unwrap();
        assert_eq!(
            record.prune_to.as_deref(),
            Some(fx.path().join("pods/p1").as_path())
        );
        record.destroy(Duration::from_secs(1)).unwrap();
        assert!(!fx.path().join("pods/p1").exists());
        assert!(
            fx.path().join("pods").is_dir(),
            "a parent harun did not make was removed"
        );
    }

    #[test]
    fn an_existing_cgroup_is_noted_only_once_it_is_checked() {
        let fx = Fixture::new("existing");
        fx.write("cgroup.controllers", "hugetlb\n");
        fx.cgroup("pods/busy");
        fx.write("pods/busy/cgroup.procs", "4242\n");
        fx.cgroup("pods/idle");
        let h = Hierarchy::at(fx.path(), fx.path());
        let busy = h.locate(Some(Path::new("/pods/busy")), "c4").unwrap().0;
        let e = h
            .create(&busy, None, &Plan::default(), |_| {
                panic!("noted a busy cgroup")
            })
            .unwrap_err();
        assert!(e.to_string().contains("already has processes"), "{e}");
        let idle = h.locate(Some(Path::new("/pods/idle")), "c4").unwrap().0;
        let noted = std::cell::Cell::new(None);
        let (_cg, record) = h
            .create(&idle, None, &Plan::default(), |r| {
                noted.set(Some(r.clone()));
                Ok(())
            })
            .unwrap();
        assert_eq!(noted.take(), Some(record.clone()));
        assert_eq!(record.prune_to, None, "nothing was made above it");
    }
}
