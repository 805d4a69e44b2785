//! start, state, kill, delete, list: the commands that act on an existing container.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::start_hooks;
use crate::hooks::{self, Stage};
use crate::pidfd::PidFd;
use crate::process::exec_fifo::{self, Word};
use crate::rootfs::host;
use crate::state::{LockedDir, State, StateRoot, Status, EXEC_FIFO};
use crate::{cgroups, Error, Result, Warning};

/// How long `delete --force` / `kill`-then-delete waits for the init to die after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// A file `kill` and `delete --force` write into the state dir (the signal number, as
/// text) before signalling. A supervisor watching the container reads it when the exit
/// arrives and takes that exit for an intentional stop: no restart. It goes with the state
/// dir; a restarted container starts without one.
pub const STOP_MARKER: &str = "stop-signal";

/// Best effort: a runtime that cannot leave the marker still delivers the signal.
fn mark_stop(dir: &LockedDir, signal: i32) {
    let _ = fs::write(dir.path().join(STOP_MARKER), signal.to_string());
}

/// What `start` did; poststart hook failures are warnings, not errors.
#[derive(Debug)]
pub struct Started {
    pub warnings: Vec<Warning>,
}

/// The OCI state of a container, with its current status.
pub fn state(root: &StateRoot, id: &str) -> Result<serde_json::Value> {
    let st = root.read(id)?;
    Ok(st.to_oci(st.status(&root.dir(id))))
}

/// Every container's ID and OCI state, sorted by ID. Dirs of containers still being
/// created (no state file yet) are skipped; a container whose state cannot be read (a
/// corrupt state.json) comes with that error instead, and does not hide the others.
pub fn list(root: &StateRoot) -> Result<Vec<(String, Result<serde_json::Value>)>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        match state(root, &id) {
            Err(Error::NotFound(_)) => {}
            listed => out.push((id, listed)),
        }
    }
    Ok(out)
}

/// Lock container `id` and read its state. With `own` (what a `create` returned), only that
/// container will do: one made under the ID after a delete got in between is another
/// container, and for the caller its own "does not exist".
fn lock_state(root: &StateRoot, id: &str, own: Option<&State>) -> Result<(LockedDir, State)> {
    let dir = root.lock(id)?;
    let st = dir.read()?;
    if is_other(own, &st) {
        return Err(Error::NotFound(id.to_string()));
    }
    Ok((dir, st))
}

/// True when `own` is given and `st` is not that container (another init, or the same pid
/// reused).
fn is_other(own: Option<&State>, st: &State) -> bool {
    own.is_some_and(|o| (o.pid, o.init_start_time) != (st.pid, st.init_start_time))
}

/// Let a created container's init exec the user process (exec.fifo handshake).
///
/// With startContainer hooks it clones (it runs them as `exec` runs a process): the calling
/// process must then be single-threaded, or this fails with [`Error::MultiThreaded`] and
/// leaves the container as it was (process/single_thread.rs).
pub fn start(root: &StateRoot, id: &str) -> Result<Started> {
    start_which(root, id, None)
}

/// [`start`] of the container `created` made, for `run`: between its create and its start
/// a `delete` and another `create` of the ID may get in; that container is not started.
pub fn start_own(root: &StateRoot, created: &State) -> Result<Started> {
    start_which(root, &created.id, Some(created))
}

fn start_which(root: &StateRoot, id: &str, own: Option<&State>) -> Result<Started> {
    let (dir, st) = lock_state(root, id, own)?;
    let status = st.status(dir.path());
    if status != Status::Created {
        return Err(Error::FailedPrecondition(format!(
            "cannot start container `{id}`: it is {status}, not created"
        )));
    }
    start_hooks::ensure_single_thread(&st)?;
    let pidfd = PidFd::open_checked(st.pid, st.init_start_time)?
        .ok_or_else(|| Error::FailedPrecondition(format!("container `{id}` init has exited")))?;
    crate::trace!("start `{id}`: init pid {}", st.pid);
    if let Err(e) = start_hooks::run(&st, &pidfd) {
        // The process must not run (runc's init exits when such a hook fails).
        let _ = pidfd.signal(libc::SIGKILL);
        let _ = pidfd.wait_exit(KILL_WAIT);
        return Err(e);
    }
    release_init(&dir, &pidfd)?;
    crate::trace!("exec.fifo read: the init execs the process");
    let started = st.to_oci(Status::Running).to_string();
    let warnings = hooks::run_all(
        Stage::Poststart,
        Stage::Poststart.hooks(&st.config),
        started.as_bytes(),
    );
    Ok(Started { warnings })
}

/// Open exec.fifo for reading and read the filler away (this unblocks the init), then its
/// word (see `process::exec_fifo`); remove the fifo.
fn release_init(dir: &LockedDir, pidfd: &PidFd) -> Result<()> {
    let path = dir.path().join(EXEC_FIFO);
    let mut fifo: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    let mut read = Vec::new();
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll exec.fifo")(e)),
            Ok(_) => {}
        }
        let fifo_ready = fds[0].any().unwrap_or(false);
        let init_gone = fds[1].any().unwrap_or(false);
        if !fifo_ready {
            if init_gone {
                return Err(init_exited());
            }
            continue;
        }
        let mut buf = [0u8; 4096];
        let eof = match fifo.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                read.extend_from_slice(&buf[..n]);
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(Error::io("read", &path)(e)),
        };
        match exec_fifo::parse(&read, eof) {
            Word::Pending => {}
            Word::Go => break,
            Word::Died => return Err(init_exited()),
            failed => {
                let _ = fs::remove_file(&path);
                return Err(failed.error().unwrap_or_else(init_exited));
            }
        }
        // Keep only what parse needs: the filler is not.
        if read.iter().all(|&b| b == exec_fifo::FILLER) {
            read.clear();
        }
    }
    fs::remove_file(&path).map_err(Error::io("remove", &path))
}

fn init_exited() -> Error {
    Error::FailedPrecondition("container init exited before it could start".into())
}

/// Send `signal` to the init, or with `all` to every process of the container.
/// Plain kill of a stopped container fails; `--all` of one succeeds (containerd relies on it).
pub fn kill(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<()> {
    let dir = root.lock(id)?;
    let st = dir.read()?;
    let pidfd = match PidFd::open_checked(st.pid, st.init_start_time)? {
        Some(p) => p,
        // Processes the init left behind (no pid namespace of its own) still get it.
        None if all => {
            return st
                .cgroup
                .as_ref()
                .map_or(Ok(()), |c| cgroups::signal(c, signal))
        }
        None => {
            return Err(Error::FailedPrecondition(format!(
                "cannot kill container `{id}`: it is not running"
            )))
        }
    };
    mark_stop(&dir, signal);
    crate::trace!("kill `{id}`: signal {signal} to the init (all processes: {all})");
    if all {
        signal_all(&st, &pidfd, signal)
    } else {
        pidfd.signal(signal).map(|_| ())
    }
}

/// Signal every process in the container: every process of its cgroup and below; for a
/// state written before harun managed cgroups, the init and, with a pid namespace of its
/// own, every process in that namespace.
fn signal_all(st: &State, init: &PidFd, signal: i32) -> Result<()> {
    if let Some(c) = &st.cgroup {
        // Every process of the container, escaped double forks included.
        return cgroups::signal(c, signal);
    }
    let own_pidns = st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()
            })
        });
    if own_pidns {
        if let Ok(ns) = fs::read_link(format!("/proc/{}/ns/pid", init.pid())) {
            for pid in pids_in_namespace(&ns) {
                if pid != init.pid() {
                    // A process exiting meanwhile is fine.
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::try_from(signal).ok(),
                    );
                }
            }
        }
    }
    init.signal(signal).map(|_| ())
}

fn pids_in_namespace(ns: &std::path::Path) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|l| l.as_path() == ns))
        .collect()
}

/// Delete a container: a stopped or created one always; a running one only with `force`
/// (SIGKILL to all its processes first). Poststop hook failures are returned as warnings.
/// `delete --force` of a container that does not exist succeeds.
///
/// Crashes and races (`state`'s module doc): the dir is the one locked, checked in place;
/// what a killed create or delete left is found through the records in it.
pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<Vec<Warning>> {
    delete_which(root, id, force, None)
}

/// [`delete`] of the container `created` made (for `run`, after its container exited or
/// its start failed): nothing to do when that one is gone, whatever else has the ID now.
pub fn delete_own(root: &StateRoot, created: &State, force: bool) -> Result<Vec<Warning>> {
    match delete_which(root, &created.id, force, Some(created)) {
        Err(Error::NotFound(_)) => Ok(Vec::new()),
        other => other,
    }
}

fn delete_which(
    root: &StateRoot,
    id: &str,
    force: bool,
    own: Option<&State>,
) -> Result<Vec<Warning>> {
    root.remove_stale();
    let dir = match root.lock(id) {
        Err(Error::NotFound(_)) if force => return Ok(Vec::new()),
        other => other?,
    };
    let st = match dir.read() {
        Ok(st) if is_other(own, &st) => return Err(Error::NotFound(id.to_string())),
        // A dir without state whose lock was free: left by a create that died (a live one
        // holds the lock until state.json is written), or by a delete killed while removing
        // it; or a dir whose state.json is corrupt. Its cgroup, if it got one, is named in
        // cgroup.json; its host mounts in host-mounts.json; its init, if any, is in the cgroup.
        Err(Error::NotFound(_) | Error::Corrupt { .. }) if force && own.is_none() => {
            if let Some(c) = cgroups::Record::load(dir.path()) {
                c.destroy(cgroups::REMOVE_TIMEOUT)?;
            }
            host::remove(dir.path())?;
            dir.remove()?;
            return Ok(Vec::new());
        }
        Err(e @ Error::Corrupt { .. }) => {
            return Err(e.context(format!("cannot delete container `{id}` without --force")))
        }
        other => other?,
    };
    let status = st.status(dir.path());
    crate::trace!("delete `{id}`: {status}, init pid {}", st.pid);
    match status {
        Status::Stopped => {}
        Status::Running | Status::Paused | Status::Creating if !force => {
            return Err(Error::FailedPrecondition(format!(
                "cannot delete container `{id}`: it is {status} (stop it first, or use --force)"
            )))
        }
        _ => {
            if let Some(pidfd) = PidFd::open_checked(st.pid, st.init_start_time)? {
                mark_stop(&dir, libc::SIGKILL);
                signal_all(&st, &pidfd, libc::SIGKILL)?;
                if !pidfd.wait_exit(KILL_WAIT)? {
                    return Err(Error::FailedPrecondition(format!(
                        "container `{id}` init (pid {}) did not die within {}s of SIGKILL",
                        st.pid,
                        KILL_WAIT.as_secs()
                    )));
                }
            }
        }
    }
    if let Some(c) = &st.cgroup {
        // Kills what is left in it (a stopped init's orphans) and waits for them.
        c.destroy(cgroups::REMOVE_TIMEOUT)?;
    }
    // A container without a mount namespace: its mounts are the host's (rootfs::host).
    host::remove(dir.path())?;
    let stopped = st.to_oci(Status::Stopped).to_string();
    let warnings = hooks::run_all(
        Stage::Poststop,
        Stage::Poststop.hooks(&st.config),
        stopped.as_bytes(),
    );
    dir.remove()?;
    Ok(warnings)
}
