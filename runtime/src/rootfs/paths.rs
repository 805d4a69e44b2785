//! Inside the new root: masked paths, read-only paths, a read-only `/`.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, makedev, SFlag};
use nix::sys::statfs::{statfs, PROC_SUPER_MAGIC};

use super::mounts::{current_flags, remount_bind};
use super::options::keep_locked;
use super::resolve::{fd_path, Root};
use crate::{Error, Result};

/// How mount(2) is pointed at a resolved path.
struct Targets {
    root: Root,
    /// The container has a procfs on /proc: mount onto `/proc/self/fd/N` of the resolved
    /// fd. Without one, the checked path itself (after pivot_root, an absolute symlink can
    /// no longer lead out of the container, and there is no procfs for magic links).
    via_proc: bool,
}

impl Targets {
    fn new() -> Result<Targets> {
        let root = Root::open(Path::new("/")).map_err(Error::sys("open `/`"))?;
        let via_proc =
            statfs("/proc/self/fd").is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC);
        Ok(Targets { root, via_proc })
    }

    /// Resolve `path`; `None` if it does not exist.
    fn resolve(&self, path: &Path) -> nix::Result<Option<OwnedFd>> {
        match self.root.resolve(path) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn target(&self, fd: &OwnedFd, path: &Path) -> String {
        if self.via_proc {
            fd_path(fd)
        } else {
            path.to_string_lossy().into_owned()
        }
    }
}

/// maskedPaths, readonlyPaths, root.readonly, rootfsPropagation; see [`super::finalize`].
pub(crate) fn finalize(
    masked: &[String],
    readonly: &[String],
    root_readonly: bool,
    propagation: Option<MsFlags>,
) -> Result<()> {
    let t = Targets::new()?;
    let mut null: Option<OwnedFd> = None;
    for (i, p) in masked.iter().enumerate() {
        mask(&t, Path::new(p), &mut null)
            .map_err(|e| e.context(format!("mask `{p}` (linux.maskedPaths[{i}])")))?;
    }
    for (i, p) in readonly.iter().enumerate() {
        make_readonly(&t, Path::new(p)).map_err(Error::sys(format!(
            "make `{p}` read-only (linux.readonlyPaths[{i}])"
        )))?;
    }
    let none: Option<&str> = None;
    if root_readonly {
        let current = current_flags(&t.root).map_err(Error::sys("statvfs `/`"))?;
        let flags = keep_locked(current | MsFlags::MS_RDONLY, current);
        let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
        mount(none, "/", none, base | flags, none)
            .map_err(Error::sys("remount `/` read-only (root.readonly)"))?;
    }
    if let Some(p) = propagation {
        let what = format!("set the propagation of `/` to {p:?} (linux.rootfsPropagation)");
        mount(none, "/", none, p, none).map_err(Error::sys(what))?;
    }
    Ok(())
}

/// Why masking failed: a system call, or a /dev/null that is not the null device.
enum MaskError {
    Sys(Errno),
    NotNull,
}

impl From<Errno> for MaskError {
    fn from(e: Errno) -> Self {
        MaskError::Sys(e)
    }
}

impl MaskError {
    fn context(self, what: String) -> Error {
        match self {
            MaskError::Sys(e) => Error::sys(what)(e),
            MaskError::NotNull => Error::FailedPrecondition(format!(
                "{what}: `/dev/null` in the container is not the null device (char 1:3)"
            )),
        }
    }
}

/// A file is covered by a bind of /dev/null, a directory by an empty read-only tmpfs.
fn mask(
    t: &Targets,
    path: &Path,
    null: &mut Option<OwnedFd>,
) -> std::result::Result<(), MaskError> {
    let Some(fd) = t.resolve(path)? else {
        return Ok(());
    };
    let target = t.target(&fd, path);
    let none: Option<&str> = None;
    if is_dir(&fd)? {
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(Some("tmpfs"), target.as_str(), Some("tmpfs"), flags, none)?;
        return Ok(());
    }
    let null = match null {
        Some(n) => n,
        None => null.insert(dev_null(t)?),
    };
    let source = t.target(null, Path::new("/dev/null"));
    mount(
        Some(source.as_str()),
        target.as_str(),
        none,
        MsFlags::MS_BIND,
        none,
    )?;
    Ok(())
}

/// The container's /dev/null, checked to be the null device: an image (or a /dev bind)
/// could put a symlink or another file there, which masking would then expose
/// (runc CVE-2025-52565 class).
fn dev_null(t: &Targets) -> std::result::Result<OwnedFd, MaskError> {
    let fd = t
        .root
        .resolve(Path::new("/dev/null"))
        .map_err(|e| match e {
            Errno::ENOENT | Errno::ELOOP => MaskError::NotNull,
            e => MaskError::Sys(e),
        })?;
    let st = fstat(&fd)?;
    let chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !chr || st.st_rdev != makedev(1, 3) {
        return Err(MaskError::NotNull);
    }
    Ok(fd)
}

/// Bind the path onto itself, then remount it ro, nosuid, nodev, noexec.
fn make_readonly(t: &Targets, path: &Path) -> nix::Result<()> {
    let Some(fd) = t.resolve(path)? else {
        return Ok(());
    };
    let target = t.target(&fd, path);
    let none: Option<&str> = None;
    let rec = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(target.as_str()), target.as_str(), none, rec, none)?;
    let top = t.root.resolve(path)?; // the new bind mount
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    remount_bind(&t.target(&top, path), &top, flags)
}

fn is_dir(fd: &OwnedFd) -> nix::Result<bool> {
    let mode = SFlag::from_bits_truncate(fstat(fd)?.st_mode);
    Ok(mode & SFlag::S_IFMT == SFlag::S_IFDIR)
}
