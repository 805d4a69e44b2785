//! A process entering an existing container (`harun exec`).
//!
//! ```text
//! harun (non-dumpable) --clone--> joiner: setns(init pidfd, every namespace of the container)
//!                                   --clone(CLONE_PARENT)--> process: harun's own child, in
//!                                   the container's pid namespace; sets up credentials, execs
//! joiner --Pid(host pid)--> harun, exits.   process --Error(report)--> harun, or its
//! channel end closes on exec (EOF = it runs). Either may send Error (kind, errno, field and
//! text: see `Reported`).
//! ```
//! One setns on the init's pidfd enters all namespaces atomically (Linux >= 5.8), so there is
//! no window with half the namespaces joined and no /proc path to race on.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};

use super::channel::Channel;
use super::clone::{clone_pidfd_parent, Forked};
use super::finish;
use crate::error::Reported;
use crate::pidfd::PidFd;
use crate::security::seccomp::Filter;
use crate::{cgroups, console, security, Error, Result};

/// Messages from the joiner and the process to harun.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromJoiner {
    /// Host pid of the process (a child of harun's, thanks to CLONE_PARENT).
    Pid(i32),
    /// A step failed: the real cause, kind and errno kept.
    Error(Reported),
}

pub struct JoinArgs<'a> {
    pub init_pidfd: &'a PidFd,
    /// CLONE_NEW* flags of every namespace the container has.
    pub namespaces: CloneFlags,
    pub process: &'a Process,
    /// Run this file instead of looking up `process.args[0]` (a startContainer hook's path).
    pub program: Option<&'a Path>,
    /// Becomes the process's stdin (a hook's: the pipe `start` writes the state into).
    pub stdin: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
    pub parent_end: RawFd,
    pub channel: &'a Channel,
    pub console: Option<&'a OwnedFd>,
    /// The container's seccomp filter, compiled by harun before the clone.
    pub seccomp: Option<&'a Filter>,
    /// The container's cgroup directory, joined before the namespaces.
    pub cgroup: Option<&'a Path>,
    /// For a container without a mount namespace of its own: the init's host pid. Its root
    /// is a chroot in the host's namespace, which setns does not enter: the process
    /// chroots to the init's root itself (runc 1.1.5 leaves it in the host's `/`).
    pub root_of: Option<i32>,
}

/// The joiner: never returns.
pub fn run(a: JoinArgs<'_>) -> ! {
    // SAFETY: harun's end of the channel is a copy we do not use.
    unsafe { libc::close(a.parent_end) };
    // It closes the host's fds first thing, the trace sink's among them.
    crate::trace::stop();
    let result = super::catch_panic(|| join_and_spawn(&a));
    if let Err(e) = result {
        let _ = a.channel.send(&FromJoiner::Error(e.report()));
        // SAFETY: _exit never returns; nothing of this fork should run destructors.
        unsafe { libc::_exit(1) }
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

fn join_and_spawn(a: &JoinArgs<'_>) -> Result<()> {
    // Fds harun's caller leaked (beyond the preserved ones) never reach the container.
    let keep: Vec<RawFd> = [
        Some(a.channel.as_raw_fd()),
        a.console.map(|c| c.as_raw_fd()),
        a.stdin.map(|c| c.as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    .chain([a.init_pidfd.as_fd().as_raw_fd()])
    .collect();
    finish::close_fds_except(3 + a.preserve_fds as RawFd, &keep)?;
    // Join the cgroup while still in harun's cgroup namespace (moving a process across a
    // cgroup namespace root is refused); the process inherits it.
    if let Some(path) = a.cgroup {
        cgroups::join(path, std::process::id() as i32)?;
    }
    setns(a.init_pidfd.as_fd(), a.namespaces).map_err(Error::sys(
        "join the container's namespaces (setns on the init's pidfd)",
    ))?;
    if let Some(pid) = a.root_of {
        enter_root_of(pid, a.init_pidfd)?;
    }
    // SAFETY: the joiner was cloned by a process that checked it had a single thread
    // (process/single_thread.rs), so it has one thread too.
    match unsafe { clone_pidfd_parent()? } {
        Forked::Child => {
            let err = match super::catch_panic(|| setup(a)) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = a.channel.send_by_write(&FromJoiner::Error(err.report()));
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(1) }
        }
        Forked::Parent { pid, .. } => a.channel.send(&FromJoiner::Pid(pid)),
    }
}

/// chroot to the root of process `pid`, whose pidfd `init` is (checked alive after the
/// open, so the pid was not reused).
fn enter_root_of(pid: i32, init: &PidFd) -> Result<()> {
    use nix::fcntl::{open, OFlag};
    let path = format!("/proc/{pid}/root");
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root = open(path.as_str(), flags, nix::sys::stat::Mode::empty())
        .map_err(Error::sys(format!("open the container's root `{path}`")))?;
    if !init.signal(0)? {
        return Err(Error::sys("check the container's init")(
            nix::errno::Errno::ESRCH,
        ));
    }
    nix::unistd::fchdir(&root).map_err(Error::sys("chdir to the container's root"))?;
    nix::unistd::chroot(".").map_err(Error::sys("chroot to the container's root"))?;
    nix::unistd::chdir("/").map_err(Error::sys("chdir to `/`"))
}

/// The process: stdin, console, then `finish` (credentials, cwd, fds, signals, seccomp: the
/// container's, as runc does), exec.
fn setup(a: &JoinArgs<'_>) -> Result<Infallible> {
    let p = a.process;
    if let Some(stdin) = a.stdin {
        // SAFETY: dup2 onto fd 0, which this process owns (stdin) and nothing else refers to.
        let r = unsafe { libc::dup2(stdin.as_raw_fd(), 0) };
        nix::errno::Errno::result(r).map_err(Error::sys("dup2 the hook's stdin onto fd 0"))?;
    }
    if let Some(adj) = p.oom_score_adj() {
        security::user::set_oom_score_adj(adj)?;
    }
    if p.terminal() == Some(true) {
        let sock = a
            .console
            .ok_or_else(|| Error::InvalidArgument("a terminal needs a console socket".into()))?;
        console::setup_in_init(sock, p.console_size(), p.user().uid())?;
    }
    let keep = [a.channel.as_raw_fd()];
    let keep = finish::Keep {
        preserve: a.preserve_fds,
        also: &keep,
    };
    let exec = finish::finish(p, a.program, a.seccomp, keep)?;
    // Harun may return (exec --detach) as soon as we exec: do not die with it.
    // SAFETY: prctl(PR_SET_PDEATHSIG, 0) clears a flag of this process only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    exec.run(a.seccomp)
}
