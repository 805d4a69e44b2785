//! CVE-2019-5736: a container must never be able to write the harun binary.
//!
//! Making harun non-dumpable is not enough: an image whose program is `#!/proc/self/exe` (or
//! a symlink to it) makes the container's init — still harun at execve time — run the harun
//! binary itself inside the container, as an ordinary dumpable process, and the container's
//! root can then reopen /proc/PID/exe for writing. The kernel refuses that write only when
//! the executable was mapped from a read-only mount.
//!
//! So harun makes sure it runs from a read-only mount of its own binary before it puts any
//! process into a container. Installed on a read-only filesystem (the usual edge-device
//! image), that is a single statvfs. Otherwise it re-executes itself once through a read-only
//! bind mount made in a throwaway mount namespace, then goes back into the caller's mount
//! namespace: the bind lives on only as the new executable's mount. No copy of the binary
//! (runc's and crun's memfd) is made.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::{Error, Result};

/// Carries `MNTNS_FD,CWD_FD` (the caller's mount namespace and working directory) across
/// the re-exec.
const ENV_HOST_MNTNS: &str = "_HARUN_RO_EXE_MNTNS";
const SELF_EXE: &str = "/proc/self/exe";

/// Ensure the running binary is mapped from a read-only mount (see the module doc); may
/// re-execute the process (same pid, argv and environment). Call it first thing in commands
/// that create or enter containers, while the process is single-threaded.
pub fn ensure_readonly_exe() -> Result<()> {
    let back = std::env::var_os(ENV_HOST_MNTNS);
    if exe_is_readonly()? {
        if let Some(fd) = back {
            return_to_caller_mntns(fd)?;
        }
        return Ok(());
    }
    if back.is_some() {
        return Err(Error::Unsupported(
            "protecting the harun binary (CVE-2019-5736): it is still writable after \
             re-executing through a read-only bind mount"
                .into(),
        ));
    }
    reexec_through_readonly_bind()
}

fn exe_is_readonly() -> Result<bool> {
    let st = statvfs(SELF_EXE).map_err(Error::sys("statvfs /proc/self/exe"))?;
    Ok(st.flags().contains(FsFlags::ST_RDONLY))
}

fn reexec_through_readonly_bind() -> Result<()> {
    let fail = |what: &str| {
        let what = format!(
            "protecting the harun binary (CVE-2019-5736): {what} (install harun on a \
             read-only mount to skip this step)"
        );
        move |e| Error::sys(what)(e)
    };
    let exe = std::fs::read_link(SELF_EXE).map_err(Error::io("readlink", SELF_EXE))?;
    // Kept open across the exec (no CLOEXEC) to come back to the caller's mount namespace.
    let caller: OwnedFd = File::open("/proc/self/ns/mnt")
        .map_err(Error::io("open", "/proc/self/ns/mnt"))?
        .into();
    clear_cloexec(&caller)?;
    // setns() back into a mount namespace moves the cwd to its root: keep the real one.
    let cwd: OwnedFd = nix::fcntl::open(
        ".",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(Error::sys("open the working directory"))?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(fail("unshare a mount namespace"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(fail("make the mount namespace private"))?;
    mount(
        Some(&exe),
        &exe,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(fail("bind the binary onto itself"))?;
    mount(
        None::<&str>,
        &exe,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(fail("make the bind read-only"))?;
    let fds = format!("{},{}", caller.into_raw_fd(), cwd.into_raw_fd());
    // SAFETY: the process is single-threaded (the caller guarantees it), so nothing reads
    // the environment concurrently.
    unsafe { std::env::set_var(ENV_HOST_MNTNS, fds) };
    let to_c = |s: OsString| {
        CString::new(s.into_vec()).map_err(|_| Error::InvalidArgument("NUL in argv".into()))
    };
    let argv: Vec<CString> = std::env::args_os().map(to_c).collect::<Result<_>>()?;
    let path = to_c(exe.clone().into_os_string())?;
    let e = nix::unistd::execv(&path, &argv).unwrap_err();
    Err(fail("re-execute through the read-only bind")(e))
}

fn return_to_caller_mntns(fds: OsString) -> Result<()> {
    // SAFETY: as above, single-threaded.
    unsafe { std::env::remove_var(ENV_HOST_MNTNS) };
    let bad = || Error::InvalidArgument(format!("bad {ENV_HOST_MNTNS}"));
    let text = fds.to_str().ok_or_else(bad)?;
    let (ns, cwd) = text.split_once(',').ok_or_else(bad)?;
    let (ns, cwd): (i32, i32) = (
        ns.parse().map_err(|_| bad())?,
        cwd.parse().map_err(|_| bad())?,
    );
    // SAFETY: both fds were opened by this process before it re-executed itself and handed
    // down through the environment for exactly this use; nothing else owns them.
    let (ns, cwd) = unsafe { (OwnedFd::from_raw_fd(ns), OwnedFd::from_raw_fd(cwd)) };
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(Error::sys("return to the caller's mount namespace"))?;
    nix::unistd::fchdir(&cwd).map_err(Error::sys("return to the working directory"))?;
    Ok(())
}

fn clear_cloexec(fd: &OwnedFd) -> Result<()> {
    // SAFETY: F_SETFD with 0 only clears the close-on-exec flag of our own fd.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) };
    nix::errno::Errno::result(r).map_err(Error::sys("fcntl(F_SETFD)"))?;
    Ok(())
}
