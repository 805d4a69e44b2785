//! clone3 used like fork: the child continues on a copy of the caller's stack, with new
//! namespaces and a pidfd for the parent. Only sound in a single-threaded process: the
//! library entries that get here check it first (process/single_thread.rs).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::{Error, Result};

/// linux/sched.h; libc's constant is a c_int, too narrow for it.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

pub enum Forked {
    /// In the new process.
    Child,
    /// In the caller: the child's pid (in our pid namespace) and its pidfd.
    Parent { pid: i32, pidfd: OwnedFd },
}

/// Clone a child into new namespaces `flags`, fork-style, with CLONE_PIDFD.
/// Falls back to clone(2) where clone3 is unavailable (ENOSYS, e.g. under old seccomp
/// profiles).
///
/// # Safety
/// The calling process must be single-threaded: the child gets a copy of only the calling
/// thread, so any lock held by another thread (malloc's included) would never be released.
pub unsafe fn clone_pidfd(flags: CloneFlags) -> Result<Forked> {
    clone_pidfd_into(flags, None).map(|(forked, _)| forked)
}

/// As [`clone_pidfd`], with the child born in the cgroup whose directory fd is `cgroup`
/// (CLONE_INTO_CGROUP, Linux 5.7). Also returns whether it was placed there: when the kernel
/// refuses the flag (or only clone(2) works) the child is cloned without it, and the caller
/// moves it through `cgroup.procs` before letting it proceed.
///
/// # Safety
/// As [`clone_pidfd`]: the calling process must be single-threaded.
pub unsafe fn clone_pidfd_into(
    flags: CloneFlags,
    cgroup: Option<BorrowedFd<'_>>,
) -> Result<(Forked, bool)> {
    let mut pidfd: libc::c_int = -1;
    let mut args: libc::clone_args = std::mem::zeroed();
    args.flags = (flags.bits() as u64) | libc::CLONE_PIDFD as u64;
    args.pidfd = &mut pidfd as *mut libc::c_int as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    let mut placed = false;
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
        placed = true;
    }
    // SAFETY: args is a valid clone_args of the size given; stack 0 means the child runs on a
    // copy-on-write copy of our stack, like fork. The caller guarantees a single thread.
    let mut ret = libc::syscall(
        libc::SYS_clone3,
        &mut args as *mut libc::clone_args,
        std::mem::size_of::<libc::clone_args>(),
    );
    if ret < 0 && placed && Errno::last() != Errno::ENOSYS {
        // The kernel refused the cgroup (too old, or the cgroup does not fit): without it.
        args.flags &= !CLONE_INTO_CGROUP;
        args.cgroup = 0;
        placed = false;
        // SAFETY: as above.
        ret = libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        );
    }
    if ret < 0 && Errno::last() == Errno::ENOSYS {
        placed = false;
        // clone(2): the pidfd is written through the parent_tid argument (3rd on every arch).
        // SAFETY: as above; null stack and tls, child_tid unused.
        ret = libc::syscall(
            libc::SYS_clone,
            (flags.bits() | libc::CLONE_PIDFD | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            &mut pidfd as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        );
    }
    match ret {
        r if r < 0 => Err(Error::sys(format!(
            "clone container init with {}",
            describe(flags)
        ))(Errno::last())),
        0 => Ok((Forked::Child, placed)),
        pid => Ok((
            Forked::Parent {
                pid: pid as i32,
                // SAFETY: the kernel stored a fresh pidfd for us (CLONE_PIDFD).
                pidfd: OwnedFd::from_raw_fd(pidfd),
            },
            placed,
        )),
    }
}

fn describe(flags: CloneFlags) -> String {
    let names = [
        (CloneFlags::CLONE_NEWNS, "mount"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWNET, "network"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        (CloneFlags::CLONE_NEWUSER, "user"),
    ];
    let list: Vec<&str> = names
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    if list.is_empty() {
        "no new namespaces".into()
    } else {
        format!("new {} namespaces", list.join(", "))
    }
}

/// Clone a child that becomes a child of our parent (CLONE_PARENT), fork-style, with a pidfd.
/// Used by the exec joiner so the entering process is harun's own child.
///
/// # Safety
/// As [`clone_pidfd`]: the calling process must be single-threaded.
pub unsafe fn clone_pidfd_parent() -> Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let mut args: libc::clone_args = std::mem::zeroed();
    args.flags = (libc::CLONE_PARENT | libc::CLONE_PIDFD) as u64;
    args.pidfd = &mut pidfd as *mut libc::c_int as u64;
    // clone3 wants exit_signal 0 with CLONE_PARENT: the child inherits ours (SIGCHLD), which
    // goes to our parent, the one that waits for it.
    args.exit_signal = 0;
    // SAFETY: valid clone_args of the given size; fork-style (no stack).
    let ret = libc::syscall(
        libc::SYS_clone3,
        &mut args as *mut libc::clone_args,
        std::mem::size_of::<libc::clone_args>(),
    );
    match ret {
        r if r < 0 => Err(Error::sys("clone the process entering the container")(
            Errno::last(),
        )),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: the kernel stored a fresh pidfd for us (CLONE_PIDFD).
            pidfd: OwnedFd::from_raw_fd(pidfd),
        }),
    }
}
