//! startContainer hooks: `start` runs them, in the container, before it lets the init exec
//! the process.
//!
//! runc runs them in its init after the start handshake. harun's init is under the
//! container's seccomp filter by then (without no_new_privs), and starting, timing and
//! reaping a hook there needs calls that a profile written for runc need not allow (runc
//! waits for its hooks in Go threads the filter does not cover). So `start` runs each hook
//! the way `exec` runs a process: in every namespace and the cgroup of the container, with
//! the container process's user, cwd, rlimits, capabilities, no_new_privs and seccomp
//! filter (what runc's hooks inherit from its init), the hook's args and env, and the state
//! (status `created`) on stdin; it waits for it with its timeout and only then releases the
//! init. The hook's stdout and stderr are `start`'s.

use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use oci_spec::runtime::{Hook, Process};

use super::exec::{self, Spawn};
use crate::hooks::{self, HookFailure, Spawned, Stage};
use crate::pidfd::PidFd;
use crate::process::single_thread;
use crate::security::seccomp::Filter;
use crate::state::{State, Status};
use crate::{Error, Result};

/// Running the hooks clones (as `exec` does): with hooks to run, the process must be
/// single-threaded. `start` checks it before it touches the container.
pub(super) fn ensure_single_thread(st: &State) -> Result<()> {
    match Stage::StartContainer.hooks(&st.config) {
        [] => Ok(()),
        _ => single_thread::ensure("start (startContainer hooks)"),
    }
}

/// Run the container's startContainer hooks in order; the first failure is the error.
/// [`ensure_single_thread`] first.
pub(super) fn run(st: &State, init: &PidFd) -> Result<()> {
    let list = Stage::StartContainer.hooks(&st.config);
    if list.is_empty() {
        return Ok(());
    }
    let base = st
        .config
        .process()
        .as_ref()
        .ok_or_else(|| Error::spec("process", "missing (nothing to run)"))?;
    let seccomp = Filter::from_spec(&st.config)?;
    let state = hooks::state_in_container(
        &st.to_oci(Status::Created).to_string(),
        "created",
        init_pid_inside(st.pid),
    );
    hooks::run_with(Stage::StartContainer, list, state.as_bytes(), |hook| {
        spawn(st, init, &as_process(base, hook), hook, seccomp.as_ref())
    })
}

fn spawn(
    st: &State,
    init: &PidFd,
    process: &Process,
    hook: &Hook,
    seccomp: Option<&Filter>,
) -> std::result::Result<Spawned, HookFailure> {
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| HookFailure::Failed(Box::new(Error::sys("pipe for the hook's stdin")(e))))?;
    let spawn = Spawn {
        process,
        program: Some(hook.path()),
        stdin: Some(&read),
        console: None,
        preserve_fds: 0,
        seccomp,
    };
    let (pid, pidfd) =
        exec::spawn(st, init, spawn).map_err(|e| HookFailure::StartInContainer(Box::new(e)))?;
    Ok(Spawned {
        pid,
        pidfd,
        stdin: write,
    })
}

/// The init's pid as the container sees it: the last NSpid of /proc/PID/status (1 in a
/// new pid namespace); the host pid if that cannot be read.
fn init_pid_inside(host_pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{host_pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
            line.split_whitespace().last()?.parse().ok()
        })
        .unwrap_or(host_pid)
}

/// The container's process with the hook's args (argv[0] included; the path alone when it
/// has none) and exactly its env, without a terminal.
fn as_process(base: &Process, hook: &Hook) -> Process {
    let mut p = base.clone();
    let path = || vec![hook.path().to_string_lossy().into_owned()];
    p.set_args(Some(hook.args().clone().unwrap_or_else(path)));
    p.set_env(Some(hook.env().clone().unwrap_or_default()));
    p.set_terminal(Some(false));
    p.set_console_size(None);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    #[test]
    fn a_hook_runs_as_the_containers_process_with_its_own_args_and_env() {
        let mut base = crate::spec::example().unwrap().process().clone().unwrap();
        base.set_terminal(Some(true));
        let hook = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["hook".into(), "-c".into(), "true".into()])
            .env(vec!["A=1".into()])
            .build()
            .unwrap();
        let p = as_process(&base, &hook);
        assert_eq!(
            p.args().as_deref(),
            Some(&["hook".into(), "-c".into(), "true".into()][..])
        );
        assert_eq!(p.env().as_deref(), Some(&["A=1".to_string()][..]));
        assert_eq!(p.terminal(), Some(false));
        assert_eq!((p.user().uid(), p.cwd()), (base.user().uid(), base.cwd()));
        assert_eq!(p.capabilities(), base.capabilities());
        let bare = HookBuilder::default().path("/bin/true").build().unwrap();
        let p = as_process(&base, &bare);
        assert_eq!(p.args().as_deref(), Some(&["/bin/true".to_string()][..]));
        assert_eq!(p.env().as_deref(), Some(&[][..]));
    }
}
