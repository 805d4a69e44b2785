//! `tmpcopyup` (runc, crun, podman's `--tmpfs`): a new tmpfs starts with a copy of what the
//! image has at its mount point, instead of hiding it.
//!
//! The mount point's directory is opened before the tmpfs goes on top of it; that fd still
//! reaches the image's directory underneath, so no temporary mount is needed. The copy walks
//! both trees by directory fd and name only, never following a symbolic link (links are
//! copied as links), so nothing outside the image's directory can be read or written. Kept:
//! file types, contents, permission bits (setuid too), owners and modification times; hard
//! links become separate copies, sockets are skipped (as by `cp -a` of a live directory).

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, FileStat, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, symlinkat, Gid, Uid};

/// Deepest directory nesting copied (a guard against pathological images, not a real limit).
const MAX_DEPTH: usize = 256;

/// Copy the contents of directory `from` into directory `to` (both directory fds, `O_PATH`
/// allowed). On failure the error names the entry (relative to `from`).
pub(crate) fn copy_dir_contents(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
) -> Result<(), (String, Errno)> {
    let from = reopen_dir(from).map_err(|e| (".".to_string(), e))?;
    let to = reopen_dir(to).map_err(|e| (".".to_string(), e))?;
    copy_entries(&from, &to, "", 0)
}

/// A readable directory fd for `fd` (which may be O_PATH).
fn reopen_dir(fd: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn copy_entries(
    from: &OwnedFd,
    to: &OwnedFd,
    prefix: &str,
    depth: usize,
) -> Result<(), (String, Errno)> {
    let here = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        }
    };
    if depth > MAX_DEPTH {
        return Err((prefix.to_string(), Errno::ELOOP));
    }
    // Dir takes ownership of its fd: give it a duplicate.
    let listing = nix::unistd::dup(from.as_fd()).map_err(|e| (prefix.to_string(), e))?;
    let mut dir = Dir::from_fd(listing).map_err(|e| (prefix.to_string(), e))?;
    for entry in dir.iter() {
        let entry = entry.map_err(|e| (prefix.to_string(), e))?;
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let shown = here(&String::from_utf8_lossy(bytes));
        let st = fstatat(from.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| (shown.clone(), e))?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let r = match kind {
            SFlag::S_IFDIR => copy_dir(from, to, name, &st, &shown, depth),
            SFlag::S_IFREG => copy_file(from, to, name, &st),
            SFlag::S_IFLNK => copy_symlink(from, to, name, &st),
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => copy_node(to, name, kind, &st),
            _ => Ok(()), // sockets: meaningless without their listener
        };
        r.map_err(|e| match e {
            Failure::Here(e) => (shown, e),
            Failure::Below(path, e) => (path, e),
        })?;
    }
    Ok(())
}

enum Failure {
    Here(Errno),
    Below(String, Errno),
}

impl From<Errno> for Failure {
    fn from(e: Errno) -> Self {
        Failure::Here(e)
    }
}

fn copy_dir(
    from: &OwnedFd,
    to: &OwnedFd,
    name: &CStr,
    st: &FileStat,
    shown: &str,
    depth: usize,
) -> Result<(), Failure> {
    mkdirat(to.as_fd(), name, Mode::from_bits_truncate(0o700))?;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let src = openat(from.as_fd(), name, flags, Mode::empty())?;
    let dst = openat(to.as_fd(), name, flags, Mode::empty())?;
    copy_entries(&src, &dst, shown, depth + 1).map_err(|(p, e)| Failure::Below(p, e))?;
    Ok(set_metadata(to, name, st, true)?)
}

fn copy_file(from: &OwnedFd, to: &OwnedFd, name: &CStr, st: &FileStat) -> Result<(), Failure> {
    let src = openat(
        from.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let dst = openat(
        to.as_fd(),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    let mut src = File::from(src);
    let mut dst = File::from(dst);
    std::io::copy(&mut src, &mut dst)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    drop(dst);
    Ok(set_metadata(to, name, st, true)?)
}

fn copy_symlink(from: &OwnedFd, to: &OwnedFd, name: &CStr, st: &FileStat) -> Result<(), Failure> {
    let target = readlinkat(from.as_fd(), name)?;
    symlinkat(target.as_os_str(), to.as_fd(), name)?;
    Ok(set_metadata(to, name, st, false)?)
}

fn copy_node(to: &OwnedFd, name: &CStr, kind: SFlag, st: &FileStat) -> Result<(), Failure> {
    let mode = Mode::from_bits_truncate(0o600);
    mknodat(to.as_fd(), name, kind, mode, st.st_rdev)?;
    // Not opened (a FIFO would block, a device should not be): by name.
    Ok(set_metadata(to, name, st, true)?)
}

/// Owner, then mode (chown clears setuid/setgid; links have none), then times of the entry
/// `name` that this copy just made in `dir`; never following it.
fn set_metadata(dir: &OwnedFd, name: &CStr, st: &FileStat, mode: bool) -> nix::Result<()> {
    let (uid, gid) = (Uid::from_raw(st.st_uid), Gid::from_raw(st.st_gid));
    fchownat(
        dir.as_fd(),
        name,
        Some(uid),
        Some(gid),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if mode {
        // A file, directory or node made by this copy, not a link: following is moot.
        let bits = Mode::from_bits_truncate(st.st_mode & 0o7777);
        fchmodat(dir.as_fd(), name, bits, FchmodatFlags::FollowSymlink)?;
    }
    let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    utimensat(
        dir.as_fd(),
        name,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
}
