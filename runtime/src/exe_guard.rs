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
//! image), that is a single statvfs. Otherwise it re-executes itself once from a read-only
//! mount of its binary that exists only as the new executable's mount, attached nowhere:
//!
//! - Linux >= 5.12: a detached clone of the binary's mount (open_tree(2) OPEN_TREE_CLONE),
//!   made read-only (mount_setattr(2)) and executed through its fd (execveat(2)
//!   AT_EMPTY_PATH). No mount namespace is made or left, the working directory is untouched.
//! - Older kernels, or a seccomp filter that refuses those syscalls (ENOSYS, EPERM): a
//!   read-only bind mount made in a throwaway mount namespace, executed by path, after which
//!   the new process goes back into the caller's mount namespace and working directory.
//!
//! Either way statvfs(/proc/self/exe) of the re-executed process must say read-only (it
//! follows the exe link to the mount it was executed from, detached or not), or harun
//! refuses to go on. No copy of the binary (runc's and crun's memfd) is made.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::{Error, Result};

/// Set for the re-executed process only: `detached:COMM` after the detached-mount re-exec
/// (COMM: the process name to restore), `MNTNS_FD,CWD_FD` (the caller's mount namespace and
/// working directory) after the re-exec through a mount namespace.
const ENV_HOST_MNTNS: &str = "_HARUN_RO_EXE_MNTNS";
const DETACHED: &[u8] = b"detached:";
const SELF_EXE: &str = "/proc/self/exe";

/// Ensure the running binary is mapped from a read-only mount (see the module doc); may
/// re-execute the process (same pid, argv, environment, working directory and mount
/// namespace). Call it first thing in commands that create or enter containers. It
/// changes the environment and may execve: the process must be single-threaded, or this
/// fails with [`Error::MultiThreaded`] (process/single_thread.rs).
pub fn ensure_readonly_exe() -> Result<()> {
    crate::process::single_thread::ensure("protect the harun binary (CVE-2019-5736)")?;
    let back = std::env::var_os(ENV_HOST_MNTNS);
    if exe_is_readonly()? {
        if let Some(back) = back {
            // SAFETY: the process is single-threaded (checked on entry), so nothing reads
            // the environment concurrently.
            unsafe { std::env::remove_var(ENV_HOST_MNTNS) };
            match back.as_bytes().strip_prefix(DETACHED) {
                Some(comm) => restore_comm(comm)?,
                None => return_to_caller_mntns(back)?,
            }
        }
        return Ok(());
    }
    if back.is_some() {
        return Err(Error::Unsupported(
            "protecting the harun binary (CVE-2019-5736): it is still writable after \
             re-executing through a read-only mount"
                .into(),
        ));
    }
    crate::trace!("the harun binary is writable: re-execute it from a read-only mount");
    match reexec_from_detached_mount() {
        // Before Linux 5.12 (open_tree 5.2, mount_setattr 5.12), or a seccomp filter that
        // refuses syscalls it does not know.
        Err(e) if matches!(e.errno(), Some(Errno::ENOSYS | Errno::EPERM)) => {
            reexec_through_readonly_bind()
        }
        other => other,
    }
}

fn exe_is_readonly() -> Result<bool> {
    // statvfs follows the magic link to the executable's own mount, also a detached one
    // (a mountinfo lookup would not find that).
    let st = statvfs(SELF_EXE).map_err(Error::sys("statvfs /proc/self/exe"))?;
    Ok(st.flags().contains(FsFlags::ST_RDONLY))
}

/// Linux >= 5.12: execute the binary from a detached, read-only clone of its mount. Returns
/// only on failure.
fn reexec_from_detached_mount() -> Result<()> {
    // SAFETY: a NUL-terminated path and flags; returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
        )
    };
    let fd = Errno::result(fd).map_err(failed("open_tree(OPEN_TREE_CLONE) /proc/self/exe"))?;
    // SAFETY: the kernel just returned this fd (close-on-exec: it never reaches the new
    // program, let alone a container); nothing else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `tree` is an open mount fd, the path is an empty C string, and `attr` is a
    // live struct whose size is passed with it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(r).map_err(failed("mount_setattr(MOUNT_ATTR_RDONLY) of the binary"))?;
    // Executed through an fd, the process is named after the fd number (Linux before 6.14
    // and its stable backports): keep its name to restore it.
    let comm = nix::sys::prctl::get_name().map_err(Error::sys("prctl(PR_GET_NAME)"))?;
    let mut mark = OsString::from_vec(DETACHED.to_vec());
    mark.push(OsStr::from_bytes(comm.to_bytes()));
    let argv: Vec<CString> = std::env::args_os().map(c_string).collect::<Result<_>>()?;
    // The environment as it is, plus the mark (set for the new program only).
    let env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != ENV_HOST_MNTNS)
        .chain([(ENV_HOST_MNTNS.into(), mark)])
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            c_string(OsString::from_vec(kv))
        })
        .collect::<Result<_>>()?;
    let e = nix::unistd::execveat(
        tree.as_fd(),
        c"",
        &argv,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .unwrap_err();
    Err(failed(
        "execveat(AT_EMPTY_PATH) of the binary's read-only mount",
    )(e))
}

/// For `map_err`: a failed step of the re-exec, with what it is for and how to avoid it.
fn failed(what: &str) -> impl FnOnce(Errno) -> Error {
    Error::sys(format!(
        "protecting the harun binary (CVE-2019-5736): {what} (install harun on a read-only \
         mount to skip this step)"
    ))
}

fn c_string(s: OsString) -> Result<CString> {
    CString::new(s.into_vec())
        .map_err(|_| Error::InvalidArgument("a NUL byte in an argument or variable".into()))
}

fn restore_comm(comm: &[u8]) -> Result<()> {
    let comm =
        CString::new(comm).map_err(|_| Error::InvalidArgument(format!("bad {ENV_HOST_MNTNS}")))?;
    nix::sys::prctl::set_name(&comm).map_err(Error::sys("prctl(PR_SET_NAME)"))
}

fn reexec_through_readonly_bind() -> Result<()> {
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
    unshare(CloneFlags::CLONE_NEWNS).map_err(failed("unshare a mount namespace"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(failed("make the mount namespace private"))?;
    mount(
        Some(&exe),
        &exe,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(failed("bind the binary onto itself"))?;
    mount(
        None::<&str>,
        &exe,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(failed("make the bind read-only"))?;
    let fds = format!("{},{}", caller.into_raw_fd(), cwd.into_raw_fd());
    // SAFETY: the process is single-threaded (checked on entry to ensure_readonly_exe), so
    // nothing reads the environment concurrently.
    unsafe { std::env::set_var(ENV_HOST_MNTNS, fds) };
    let argv: Vec<CString> = std::env::args_os().map(c_string).collect::<Result<_>>()?;
    let path = c_string(exe.clone().into_os_string())?;
    let e = nix::unistd::execv(&path, &argv).unwrap_err();
    Err(failed("re-execute through the read-only bind")(e))
}

fn return_to_caller_mntns(fds: OsString) -> Result<()> {
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
