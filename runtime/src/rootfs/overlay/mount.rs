//! The init's half of the overlay: in its own mount namespace, right after the rootfs was
//! bound onto itself, stack (for a tmpfs upper) a tmpfs and then the overlay on the rootfs
//! mount point. Both sit on that private bind mount, so nothing propagates to the host;
//! after pivot_root the overlay is `/` and the tmpfs beneath it is unreachable, and both
//! vanish with the namespace.
//!
//! Layers reach the kernel as `/proc/self/fd/N` of O_PATH fds opened here, never as the
//! host paths: short (a long list of long paths still fits), no escaping of `:`, `,` and
//! `\` in directory names, and they are the directories `plan` checked.
//!
//! Long lower lists: Linux >= 6.8 takes lower layers one by one (fsopen + fsconfig
//! `lowerdir+`), so only the kernel's limit of 500 layers remains, and a refusal comes back
//! with the kernel's own reason (read from the fs context into the error). Older kernels get
//! mount(2), whose options must fit one page: about 18 bytes a layer, so some 200 layers on
//! 4 KiB pages; more is a clear error naming the kernel version that lifts the limit.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, openat, AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{fchmodat, fstat, mkdirat, FchmodatFlags, Mode};
use nix::unistd::{fchownat, Gid, Uid};

use super::{Plan, Upper};
use crate::rootfs::resolve::fd_path;
use crate::{Error, Result};

/// Layer paths as the kernel gets them (`/proc/self/fd/N`), lowers top first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layers {
    pub lowers: Vec<String>,
    pub upper: String,
    pub work: String,
}

/// Mount the overlay of `plan` on `rootfs` (already a private mount point).
pub(crate) fn mount(plan: &Plan, rootfs: &Path) -> Result<()> {
    // Open every lower first: a tmpfs upper is about to cover `rootfs`, the bottom lower.
    let lowers: Vec<OwnedFd> = plan
        .lowers
        .iter()
        .map(|p| open_dir(p))
        .collect::<Result<_>>()?;
    let (upper, work) = match &plan.upper {
        Upper::StateDir(dir) | Upper::Persistent(dir) => {
            (open_dir(&dir.join("upper"))?, open_dir(&dir.join("work"))?)
        }
        Upper::Tmpfs { size } => tmpfs_upper(rootfs, *size, &lowers)?,
    };
    let layers = Layers {
        lowers: lowers.iter().rev().map(fd_path).collect(),
        upper: fd_path(&upper),
        work: fd_path(&work),
    };
    // For error messages: the kernel names the paths it was given.
    let mut names: Vec<(String, String)> = (lowers.iter().zip(&plan.lowers))
        .map(|(fd, p)| (fd_path(fd), p.display().to_string()))
        .collect();
    let host = plan.upper.host_dir();
    for (fd, name) in [(&upper, "upper"), (&work, "work")] {
        let shown = host.map_or(format!("{name} (tmpfs)"), |d| {
            d.join(name).display().to_string()
        });
        names.push((fd_path(fd), shown));
    }
    mount_layers(&layers, rootfs, new_api_wanted(), &names)
}

/// Mount `layers` on `target`: through fsopen with `lowerdir+` when `new_api` (falling back
/// to mount(2) where fsopen is unavailable), else mount(2).
pub(super) fn mount_layers(
    layers: &Layers,
    target: &Path,
    new_api: bool,
    names: &[(String, String)],
) -> Result<()> {
    if new_api && mount_new(layers, target, names)? {
        return Ok(());
    }
    mount_legacy(layers, target)
}

/// Whether to take the new mount API: the running kernel has overlay's `lowerdir+`.
fn new_api_wanted() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").is_ok_and(|r| has_lowerdir_plus(&r))
}

/// Linux >= 6.8 (overlay `lowerdir+`, "ovl: modify layer parameter parsing").
pub(super) fn has_lowerdir_plus(release: &str) -> bool {
    let mut parts = release.trim().split(['.', '-']);
    let mut num = || parts.next().and_then(|p| p.parse::<u32>().ok());
    matches!((num(), num()), (Some(major), Some(minor)) if (major, minor) >= (6, 8))
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    open(path, flags, Mode::empty()).map_err(Error::sys(format!(
        "open overlay layer `{}`",
        path.display()
    )))
}

/// Mount a tmpfs over `rootfs` and make `upper/` (mode and owner of the topmost lower's
/// root, as the merged root shows them) and `work/` in it.
fn tmpfs_upper(rootfs: &Path, size: Option<u64>, lowers: &[OwnedFd]) -> Result<(OwnedFd, OwnedFd)> {
    let top = lowers
        .last()
        .ok_or_else(|| Error::spec("root.path", "missing"))?;
    let st = fstat(top).map_err(Error::sys("stat the topmost overlay layer"))?;
    let data = match size {
        Some(n) => format!("mode=700,size={n}"),
        None => "mode=700".to_string(),
    };
    let what = format!("mount the tmpfs upper ({data}) on `{}`", rootfs.display());
    nix::mount::mount(
        Some("tmpfs"),
        rootfs,
        Some("tmpfs"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(Error::sys(what))?;
    let tmpfs = open_dir(rootfs)?;
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut made = Vec::new();
    for (name, mode) in [("upper", mode), ("work", Mode::S_IRWXU)] {
        let fail = |op: &str| Error::sys(format!("{op} `{name}` in the tmpfs upper"));
        mkdirat(&tmpfs, name, Mode::S_IRWXU).map_err(fail("mkdir"))?;
        // Exactly `mode`: mkdir applies the umask.
        fchmodat(&tmpfs, name, mode, FchmodatFlags::NoFollowSymlink)
            .or_else(|e| match e {
                // Older kernels refuse AT_SYMLINK_NOFOLLOW; we just made a directory.
                Errno::EOPNOTSUPP | Errno::EINVAL => {
                    fchmodat(&tmpfs, name, mode, FchmodatFlags::FollowSymlink)
                }
                e => Err(e),
            })
            .map_err(fail("chmod"))?;
        if name == "upper" {
            let (uid, gid) = (Uid::from_raw(st.st_uid), Gid::from_raw(st.st_gid));
            fchownat(
                &tmpfs,
                name,
                Some(uid),
                Some(gid),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(fail("chown"))?;
        }
        made.push(openat(&tmpfs, name, dir_flags, Mode::empty()).map_err(fail("open"))?);
    }
    let work = made.pop();
    match (made.pop(), work) {
        (Some(upper), Some(work)) => Ok((upper, work)),
        _ => Err(Error::Internal("tmpfs upper: directories missing".into())),
    }
}

/// mount(2) with every option in one page.
fn mount_legacy(layers: &Layers, target: &Path) -> Result<()> {
    let data = legacy_data(layers);
    let page = page_size();
    if data.len() >= page {
        return Err(Error::InvalidArgument(format!(
            "overlay rootfs: {} lower layers need {} bytes of mount options, more than one \
             page ({page}); this kernel lacks overlay `lowerdir+` (Linux 6.8) to pass them one \
             by one: use fewer layers",
            layers.lowers.len(),
            data.len()
        )));
    }
    let what = format!(
        "mount the overlay rootfs ({} lower layers) on `{}` (the kernel log says why)",
        layers.lowers.len(),
        target.display()
    );
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| match e {
        Errno::ENODEV => no_overlay(),
        e => Error::sys(what)(e),
    })
}

/// The mount(2) data: `lowerdir=TOP:...:BOTTOM,upperdir=U,workdir=W`.
pub(super) fn legacy_data(l: &Layers) -> String {
    format!(
        "lowerdir={},upperdir={},workdir={}",
        l.lowers.join(":"),
        l.upper,
        l.work
    )
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

fn no_overlay() -> Error {
    Error::Unsupported(
        "overlay rootfs: the kernel has no overlay file system (CONFIG_OVERLAY_FS; try \
         `modprobe overlay`)"
            .into(),
    )
}

/// fsopen + fsconfig + fsmount + move_mount. Ok(false): no fsopen here (ENOSYS, or EPERM
/// from a seccomp filter), use mount(2).
fn mount_new(layers: &Layers, target: &Path, names: &[(String, String)]) -> Result<bool> {
    let fs = match FsContext::open("overlay") {
        Ok(fs) => fs,
        Err(Errno::ENOSYS | Errno::EPERM) => return Ok(false),
        Err(Errno::ENODEV) => return Err(no_overlay()),
        Err(e) => return Err(Error::sys("fsopen(\"overlay\")")(e)),
    };
    let fail = |step: &str| {
        let kernel = fs.messages(names);
        let why = if kernel.is_empty() {
            " (the kernel log may say why)".to_string()
        } else {
            format!(" (kernel: {kernel})")
        };
        Error::sys(format!(
            "mount the overlay rootfs on `{}`: {step}{why}",
            target.display()
        ))
    };
    for (i, lower) in layers.lowers.iter().enumerate() {
        fs.set_string("lowerdir+", lower)
            .map_err(|e| fail(&format!("lower layer {i} (from the top)"))(e))?;
    }
    fs.set_string("upperdir", &layers.upper)
        .map_err(|e| fail("upperdir")(e))?;
    fs.set_string("workdir", &layers.work)
        .map_err(|e| fail("workdir")(e))?;
    fs.create().map_err(|e| fail("create")(e))?;
    let mnt = fs.mount().map_err(|e| fail("fsmount")(e))?;
    move_mount(&mnt, target).map_err(|e| fail("move_mount")(e))?;
    Ok(true)
}

/// A file system context from fsopen(2).
struct FsContext(OwnedFd);

fn cstring(s: &str) -> nix::Result<CString> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

impl FsContext {
    fn open(fstype: &str) -> nix::Result<FsContext> {
        let name = cstring(fstype)?;
        // SAFETY: fsopen takes a NUL-terminated name and flags; it returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), libc::FSOPEN_CLOEXEC) };
        let fd = Errno::result(fd)?;
        // SAFETY: the kernel just gave us this fd; nobody else owns it.
        Ok(FsContext(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    fn config(
        &self,
        cmd: libc::c_uint,
        key: Option<&CString>,
        value: Option<&CString>,
    ) -> nix::Result<()> {
        let ptr = |s: Option<&CString>| s.map_or(std::ptr::null(), |s| s.as_ptr());
        // SAFETY: fsconfig reads the NUL-terminated key/value (or NULL where the command
        // takes none) during the call only.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.0.as_raw_fd(),
                cmd,
                ptr(key),
                ptr(value),
                0,
            )
        };
        Errno::result(r).map(drop)
    }

    fn set_string(&self, key: &str, value: &str) -> nix::Result<()> {
        let (key, value) = (cstring(key)?, cstring(value)?);
        self.config(
            libc::FSCONFIG_SET_STRING as libc::c_uint,
            Some(&key),
            Some(&value),
        )
    }

    fn create(&self) -> nix::Result<()> {
        self.config(libc::FSCONFIG_CMD_CREATE as libc::c_uint, None, None)
    }

    fn mount(&self) -> nix::Result<OwnedFd> {
        // SAFETY: fsmount on our fs context fd with valid flags; returns a new fd or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                self.0.as_raw_fd(),
                libc::FSMOUNT_CLOEXEC,
                0,
            )
        };
        let fd = Errno::result(fd)?;
        // SAFETY: a fresh fd from the kernel, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// The kernel's messages about this context ("e overlay: ..." lines), drained, with
    /// our `/proc/self/fd/N` paths turned back into the host paths they stand for.
    fn messages(&self, names: &[(String, String)]) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = nix::unistd::read(self.0.as_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf[..n]);
            let text = line.trim_end();
            let text = text
                .strip_prefix("e ")
                .or_else(|| text.strip_prefix("w "))
                .unwrap_or(text);
            out.push(unalias(text, names));
        }
        out.join("; ")
    }
}

/// Replace `/proc/self/fd/N` aliases in `text` by the names they stand for (longest alias
/// first, so `/proc/self/fd/1` never eats part of `/proc/self/fd/12`).
pub(super) fn unalias(text: &str, names: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = names.iter().collect();
    crate::sort::sort_by_key(&mut sorted, |(alias, _)| std::cmp::Reverse(alias.len()));
    let mut out = text.to_string();
    for (alias, name) in sorted {
        out = out.replace(alias.as_str(), name);
    }
    out
}

fn move_mount(mnt: &OwnedFd, target: &Path) -> nix::Result<()> {
    let target = CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let empty = c"";
    // SAFETY: move_mount reads two NUL-terminated paths during the call; `mnt` is a mount fd
    // from fsmount, attached at `target` (MOVE_MOUNT_F_EMPTY_PATH: "from" is the fd itself).
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

#[cfg(test)]
mod tests;
