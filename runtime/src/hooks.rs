//! OCI hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle").
//!
//! Each hook runs with the container's state JSON on stdin, its `args` as argv (args[0] is
//! argv[0], as execv), exactly its `env`, and its `timeout` honoured. stdout and stderr are
//! inherited. No thread is spawned (the caller may clone afterwards and must stay
//! single-threaded): the timeout and the stdin feed are one poll(2) loop over a pidfd and
//! a non-blocking pipe. Hooks inherit every fd of the caller that is not close-on-exec.
//! [`run_with`] takes another way to start each hook: `start` runs startContainer hooks
//! inside the container (container/start_hooks.rs).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use oci_spec::runtime::{Hook, Spec};

use crate::error::{Error, Result};
use crate::pidfd::PidFd;
use crate::Warning;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Stage {
    /// In lifecycle order.
    pub const ALL: [Stage; 6] = [
        Stage::Prestart,
        Stage::CreateRuntime,
        Stage::CreateContainer,
        Stage::StartContainer,
        Stage::Poststart,
        Stage::Poststop,
    ];

    /// The stage's name in config.json (`hooks.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Prestart => "prestart",
            Stage::CreateRuntime => "createRuntime",
            Stage::CreateContainer => "createContainer",
            Stage::StartContainer => "startContainer",
            Stage::Poststart => "poststart",
            Stage::Poststop => "poststop",
        }
    }

    /// The stage's hooks in `spec`; empty when absent.
    pub fn hooks(self, spec: &Spec) -> &[Hook] {
        let Some(hooks) = spec.hooks().as_ref() else {
            return &[];
        };
        #[allow(deprecated)] // prestart is deprecated in the spec, still honoured
        let list = match self {
            Stage::Prestart => hooks.prestart(),
            Stage::CreateRuntime => hooks.create_runtime(),
            Stage::CreateContainer => hooks.create_container(),
            Stage::StartContainer => hooks.start_container(),
            Stage::Poststart => hooks.poststart(),
            Stage::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

/// Whether `spec` has hooks that run while the init is being set up (prestart,
/// createRuntime, createContainer). Without any, the parent and the init skip the hook
/// point of their protocol (one round trip and the OCI state sent across); both sides ask
/// this same function, so they agree.
pub fn any_during_create(spec: &Spec) -> bool {
    [
        Stage::Prestart,
        Stage::CreateRuntime,
        Stage::CreateContainer,
    ]
    .into_iter()
    .any(|stage| !stage.hooks(spec).is_empty())
}

/// Pure: every hook path absolute, `timeout` (if set) > 0, env entries `KEY=VALUE`, no NUL
/// bytes. Field: `hooks.poststart[1].path`.
pub fn validate(spec: &Spec) -> Result<()> {
    for stage in Stage::ALL {
        for (i, hook) in stage.hooks(spec).iter().enumerate() {
            check_hook(hook, &format!("hooks.{}[{i}]", stage.name()))?;
        }
    }
    Ok(())
}

/// The problem with `hook`, as a spec error of a field under `at` (`hooks.prestart[0]`, or
/// "" where the caller names the hook).
fn check_hook(hook: &Hook, at: &str) -> Result<()> {
    let bad = |field: &str, reason: String| match at {
        "" => Err(Error::spec(field, reason)),
        at => Err(Error::spec(format!("{at}.{field}"), reason)),
    };
    let path = hook.path();
    if !path.is_absolute() {
        return bad(
            "path",
            format!("`{}` is not an absolute path", path.display()),
        );
    }
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return bad("path", "contains a NUL byte".into());
    }
    if let Some(t) = hook.timeout().filter(|&t| t <= 0) {
        return bad(
            "timeout",
            format!("must be a positive number of seconds, got {t}"),
        );
    }
    for (j, arg) in hook.args().iter().flatten().enumerate() {
        if arg.contains('\0') {
            return bad(&format!("args[{j}]"), "contains a NUL byte".into());
        }
    }
    for (j, kv) in hook.env().iter().flatten().enumerate() {
        if split_env(kv).is_none() {
            let reason = match kv.contains('\0') {
                true => "contains a NUL byte".into(),
                false => format!("`{kv}` is not KEY=VALUE"),
            };
            return bad(&format!("env[{j}]"), reason);
        }
    }
    Ok(())
}

/// `KEY=VALUE` as (KEY, VALUE); None with an empty key or a NUL byte.
fn split_env(kv: &str) -> Option<(&str, &str)> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() && !kv.contains('\0') => Some((k, v)),
        _ => None,
    }
}

/// Why a hook failed: [`Error::Hook`] says which hook.
#[derive(Debug)]
pub enum HookFailure {
    /// It could not be executed on the host (std reports execve's errno).
    Spawn(io::Error),
    /// A startContainer hook could not be started in the container.
    StartInContainer(Box<Error>),
    /// It exited with this status, not 0.
    Exited(i32),
    /// This signal killed it.
    Killed(i32),
    /// It ran past its `timeout` (seconds) and was killed.
    TimedOut(u64),
    /// Running it failed otherwise: its entry is invalid, or watching it (poll, wait, its
    /// stdin pipe) did.
    Failed(Box<Error>),
}

impl HookFailure {
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            HookFailure::StartInContainer(e) | HookFailure::Failed(e) => e.kind(),
            _ => crate::ErrorKind::System,
        }
    }

    pub fn errno(&self) -> Option<Errno> {
        match self {
            HookFailure::Spawn(e) => e.raw_os_error().map(Errno::from_raw),
            HookFailure::StartInContainer(e) | HookFailure::Failed(e) => e.errno(),
            _ => None,
        }
    }
}

impl fmt::Display for HookFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookFailure::Spawn(e) => write!(f, "cannot execute: {}", crate::error::Cause(e)),
            HookFailure::StartInContainer(e) => write!(f, "cannot execute: {e}"),
            HookFailure::Exited(code) => write!(f, "exited with status {code}"),
            HookFailure::Killed(sig) => match Signal::try_from(*sig) {
                Ok(s) => write!(f, "killed by signal {sig} ({})", s.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
            HookFailure::TimedOut(secs) => write!(f, "timed out after {secs}s"),
            HookFailure::Failed(e) => write!(f, "{e}"),
        }
    }
}

type Failed<T> = std::result::Result<T, HookFailure>;

/// Run the hooks of `stage` in order, each with `state_json` on stdin. The first failure
/// stops the run: `Error::Hook` with the hook's index and path and the reason ("exited
/// with status 1", "killed by signal 9 (SIGKILL)", "timed out after 2s", "cannot
/// execute: ..."). For the stages whose failure fails the operation (runtime.md
/// "Lifecycle" steps 3 to 7); poststart and poststop use [`run_all`].
pub fn run(stage: Stage, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    run_with(stage, hooks, state_json, spawn)
}

/// A started hook: its pid (our child), a pidfd and the write end of its stdin.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub pidfd: PidFd,
    pub stdin: OwnedFd,
}

/// [`run`], with each hook started by `start` (`start` runs startContainer hooks inside
/// the container); the feeding, timeout and reaping are the same.
pub fn run_with(
    stage: Stage,
    hooks: &[Hook],
    state_json: &[u8],
    mut start: impl FnMut(&Hook) -> Failed<Spawned>,
) -> Result<()> {
    for (index, hook) in hooks.iter().enumerate() {
        crate::trace!("{} hook #{index} `{}`", stage.name(), hook.path().display());
        run_one(hook, state_json, &mut start)
            .map_err(|failure| hook_error(stage, index, hook, failure))?;
    }
    Ok(())
}

/// Run every hook of `stage`, whatever the others did, and return the failures (as
/// [`run`] describes them) as warnings. runtime.md "Lifecycle" steps 9 and 13: a failing
/// poststart or poststop hook is a warning, "the remaining hooks and lifecycle continue as
/// if the hook had succeeded". (runc 1.1.5 stops at the first failure of a stage; crun goes
/// on.)
pub fn run_all(stage: Stage, hooks: &[Hook], state_json: &[u8]) -> Vec<Warning> {
    hooks
        .iter()
        .enumerate()
        .filter_map(|(index, hook)| {
            crate::trace!("{} hook #{index} `{}`", stage.name(), hook.path().display());
            let failed = run_one(hook, state_json, &mut spawn).err();
            failed.map(|failure| Warning::Hook(hook_error(stage, index, hook, failure)))
        })
        .collect()
}

fn hook_error(stage: Stage, index: usize, hook: &Hook, failure: HookFailure) -> Error {
    Error::Hook {
        stage: stage.name(),
        index,
        path: hook.path().clone(),
        failure,
    }
}

/// The state for a hook run in the container's namespaces (createContainer by the init,
/// startContainer by `start`): `status` as given, and `pid` the init's pid as the container
/// sees it (runtime.md "State": "For hooks executed in the container namespace, it is the
/// pid as seen by the container"; runc does the same). A state that does not parse is
/// returned unchanged.
pub fn state_in_container(state_json: &str, status: &str, pid: i32) -> String {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(state_json.as_bytes()) else {
        return state_json.to_string();
    };
    v["status"] = status.into();
    v["pid"] = pid.into();
    v.to_string()
}

fn run_one(
    hook: &Hook,
    input: &[u8],
    start: &mut impl FnMut(&Hook) -> Failed<Spawned>,
) -> Failed<()> {
    check_hook(hook, "").map_err(|e| HookFailure::Failed(Box::new(e)))?;
    let timeout = hook
        .timeout()
        .map(|t| Duration::from_secs(t.unsigned_abs()));
    let child = start(hook)?;
    let outcome = supervise(child.pid, &child.pidfd, child.stdin, input, timeout);
    if !matches!(outcome, Ok(Outcome::Exited(_))) {
        // Timed out, or we could not watch it: never leave the hook running or unreaped.
        let _ = child.pidfd.signal(libc::SIGKILL);
        let _ = reap(child.pid);
    }
    match outcome.map_err(|e| HookFailure::Failed(Box::new(e)))? {
        Outcome::Exited(status) => describe_failure(status).map_or(Ok(()), Err),
        Outcome::TimedOut => Err(HookFailure::TimedOut(timeout.unwrap_or_default().as_secs())),
    }
}

/// Start `hook` on the host (every stage but startContainer).
fn spawn(hook: &Hook) -> Failed<Spawned> {
    let mut child = command(hook).spawn().map_err(HookFailure::Spawn)?;
    let stdin = child.stdin.take().map(OwnedFd::from);
    let pid = child.id() as i32;
    // Our child, not waited for: the pid is its own.
    let started = PidFd::open(pid).map_err(|e| HookFailure::Failed(Box::new(e)));
    match (started, stdin) {
        (Ok(pidfd), Some(stdin)) => Ok(Spawned { pid, pidfd, stdin }),
        (started, _) => {
            let _ = child.kill();
            let _ = child.wait();
            let no_stdin =
                || HookFailure::Failed(Box::new(Error::Internal("no stdin pipe".into())));
            Err(started.err().unwrap_or_else(no_stdin))
        }
    }
}

/// The command for `hook` (checked by [`check_hook`] first: its env entries are KEY=VALUE).
fn command(hook: &Hook) -> Command {
    let mut cmd = Command::new(hook.path());
    if let Some((arg0, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    cmd.envs(hook.env().iter().flatten().filter_map(|kv| split_env(kv)));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    cmd
}

/// waitpid for our child `pid`.
fn reap(pid: i32) -> io::Result<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only to `status`, a valid c_int.
        match unsafe { libc::waitpid(pid, &mut status, 0) } {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            -1 => return Err(io::Error::last_os_error()),
            _ => return Ok(ExitStatus::from_raw(status)),
        }
    }
}

/// `None` for success, else why the hook failed.
fn describe_failure(status: ExitStatus) -> Option<HookFailure> {
    if status.success() {
        return None;
    }
    Some(match (status.code(), status.signal()) {
        (Some(code), _) => HookFailure::Exited(code),
        (None, Some(sig)) => HookFailure::Killed(sig),
        // Waited for without WUNTRACED/WCONTINUED: it exited or was killed.
        (None, None) => HookFailure::Failed(Box::new(Error::Internal(format!(
            "hook ended with {status}"
        )))),
    })
}

enum Outcome {
    Exited(ExitStatus),
    TimedOut,
}

/// Feed `input` to the hook's stdin and wait for it to exit, or for the deadline.
fn supervise(
    pid: i32,
    pidfd: &PidFd,
    stdin: OwnedFd,
    input: &[u8],
    timeout: Option<Duration>,
) -> Result<Outcome> {
    let deadline = timeout.map(|t| Instant::now() + t);
    fcntl(&stdin, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(Error::sys("make the hook's stdin non-blocking"))?;
    let mut stdin = Some(stdin);
    // A hook that closes stdin without reading it makes our write fail with EPIPE, which is
    // fine; SIGPIPE must not kill the runtime meanwhile.
    let _sigpipe = SigpipeBlocked::new().map_err(Error::sys("block SIGPIPE"))?;
    let mut written = 0;
    loop {
        if written == input.len() {
            stdin = None; // EOF for the hook
        }
        let wait = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Outcome::TimedOut);
                }
                poll_timeout(left)
            }
        };
        let (exited, writable) = {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            if let Some(pipe) = &stdin {
                fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLOUT));
            }
            match poll(&mut fds, wait) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("poll the hook")(e)),
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), fds.get(1).is_some_and(ready))
        };
        if exited {
            let status = reap(pid).map_err(Error::io("wait for", "the hook"))?;
            return Ok(Outcome::Exited(status));
        }
        if writable {
            if let Some(pipe) = &stdin {
                match feed(pipe, &input[written..]) {
                    Some(n) => written += n,
                    None => written = input.len(), // the hook stopped reading
                }
            }
        }
    }
}

/// Write what the pipe takes now. `None` when the reader is gone (EPIPE) or the pipe broke.
fn feed(pipe: &OwnedFd, data: &[u8]) -> Option<usize> {
    let mut done = 0;
    while done < data.len() {
        match nix::unistd::write(pipe, &data[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => break,
            Err(_) => return None,
        }
    }
    Some(done)
}

fn poll_timeout(left: Duration) -> PollTimeout {
    // Round up so the loop does not spin on a sub-millisecond remainder.
    let ms = left.as_micros().div_ceil(1000);
    PollTimeout::try_from(ms.min(i32::MAX as u128)).unwrap_or(PollTimeout::MAX)
}

/// SIGPIPE blocked for this thread while we write to hooks; on drop, a SIGPIPE our writes
/// raised is discarded and the old mask restored.
struct SigpipeBlocked {
    was_blocked: bool,
}

impl SigpipeBlocked {
    fn new() -> nix::Result<Self> {
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&sigpipe()), Some(&mut old))?;
        Ok(SigpipeBlocked {
            was_blocked: old.contains(Signal::SIGPIPE),
        })
    }
}

impl Drop for SigpipeBlocked {
    fn drop(&mut self) {
        if self.was_blocked {
            return;
        }
        let set = sigpipe();
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: sigtimedwait with a valid set, no info buffer and a zero timeout only
        // dequeues a pending SIGPIPE (returns -1/EAGAIN when there is none).
        while unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &zero) } > 0 {}
        let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    }
}

fn sigpipe() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGPIPE);
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;
    use crate::ErrorKind;
    use oci_spec::runtime::HookBuilder;
    use std::path::{Path, PathBuf};

    #[test]
    fn the_create_hook_point_is_there_only_for_hooks_run_during_create() {
        let spec = |hooks: serde_json::Value| -> Spec {
            serde_json::from_value(serde_json::json!({"ociVersion": "1.2.0", "hooks": hooks}))
                .unwrap()
        };
        let hook = serde_json::json!([{"path": "/bin/true"}]);
        let table = [
            (serde_json::json!({}), false),
            (
                serde_json::json!({"poststart": hook, "poststop": hook}),
                false,
            ),
            (serde_json::json!({"startContainer": hook}), false),
            (serde_json::json!({"prestart": hook}), true),
            (serde_json::json!({"createRuntime": hook}), true),
            (serde_json::json!({"createContainer": hook}), true),
        ];
        for (hooks, want) in table {
            assert_eq!(any_during_create(&spec(hooks.clone())), want, "{hooks}");
        }
    }

    const PATH: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

    /// `/bin/sh -c script` with PATH and OUT=`out` in its environment.
    fn sh(script: &str, out: &Path) -> Hook {
        HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".into(), "-c".into(), script.into()])
            .env(vec![PATH.into(), format!("OUT={}", out.display())])
            .build()
            .unwrap()
    }

    fn with_timeout(mut hook: Hook, secs: i64) -> Hook {
        hook.set_timeout(Some(secs));
        hook
    }

    fn hook_error(r: Result<()>) -> (&'static str, usize, PathBuf, String) {
        match r {
            Err(Error::Hook {
                stage,
                index,
                path,
                failure,
            }) => (stage, index, path, failure.to_string()),
            other => panic!("expected a hook error, got {other:?}"),
        }
    }

    #[test]
    fn stage_names_are_the_config_json_keys() {
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ]
        );
    }

    fn spec(hooks: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "hooks": hooks
        }))
        .unwrap()
    }

    #[test]
    fn stage_hooks_come_from_their_own_list() {
        let mut hooks = serde_json::Map::new();
        for stage in Stage::ALL {
            hooks.insert(
                stage.name().into(),
                serde_json::json!([{"path": format!("/{}", stage.name())}]),
            );
        }
        let s = spec(hooks.into());
        for stage in Stage::ALL {
            let list = stage.hooks(&s);
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].path(), &PathBuf::from(format!("/{}", stage.name())));
        }
        let empty = spec(serde_json::json!({}));
        let none: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0", "root": {"path": "rootfs"}
        }))
        .unwrap();
        for stage in Stage::ALL {
            assert!(stage.hooks(&empty).is_empty());
            assert!(stage.hooks(&none).is_empty());
        }
    }

    #[test]
    fn validate_accepts_good_hooks() {
        let s = spec(serde_json::json!({
            "createRuntime": [{"path": "/bin/true", "args": ["true", "x"], "env": ["A=1", "B="],
                               "timeout": 5}],
            "poststop": [{"path": "/usr/bin/env"}]
        }));
        assert!(validate(&s).is_ok());
    }

    #[test]
    fn validate_names_the_bad_field() {
        let table = [
            (
                serde_json::json!({"poststart": [{"path": "/bin/true"}, {"path": "rel/hook"}]}),
                "hooks.poststart[1].path: `rel/hook` is not an absolute path",
            ),
            (
                serde_json::json!({"prestart": [{"path": "/bin/true", "timeout": 0}]}),
                "hooks.prestart[0].timeout: must be a positive number of seconds, got 0",
            ),
            (
                serde_json::json!({"createContainer": [{"path": "/x", "timeout": -3}]}),
                "hooks.createContainer[0].timeout: must be a positive number of seconds, got -3",
            ),
            (
                serde_json::json!({"startContainer": [{"path": "/x", "env": ["A=1", "NOEQUALS"]}]}),
                "hooks.startContainer[0].env[1]: `NOEQUALS` is not KEY=VALUE",
            ),
            (
                serde_json::json!({"poststop": [{"path": "/x", "env": ["=v"]}]}),
                "hooks.poststop[0].env[0]: `=v` is not KEY=VALUE",
            ),
            (
                serde_json::json!({"createRuntime": [{"path": "/x", "args": ["x", "a\u{0}b"]}]}),
                "hooks.createRuntime[0].args[1]: contains a NUL byte",
            ),
        ];
        for (hooks, want) in table {
            let err = validate(&spec(hooks.clone())).unwrap_err().to_string();
            assert_eq!(err, want, "{hooks}");
        }
    }

    #[test]
    fn hooks_run_in_order_with_the_state_on_stdin() {
        let dir = TempDir::new("hooks");
        let out = dir.file("out");
        let state = br#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42}"#;
        let hooks = [
            sh("printf 1 >> \"$OUT\"", &out),
            sh("printf 2 >> \"$OUT\"; cat > \"$OUT.stdin\"", &out),
            sh("printf 3 >> \"$OUT\"", &out),
        ];
        run(Stage::CreateRuntime, &hooks, state).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "123");
        assert_eq!(std::fs::read(dir.file("out.stdin")).unwrap(), state);
    }

    #[test]
    fn large_state_is_fed_completely() {
        let dir = TempDir::new("hooks");
        let out = dir.file("out");
        let state: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        run(Stage::Poststart, &[sh("cat > \"$OUT\"", &out)], &state).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), state);
    }

    #[test]
    fn a_hook_that_ignores_stdin_is_fine() {
        let dir = TempDir::new("hooks");
        let state = vec![b'x'; 1_000_000];
        let hook = sh("exit 0", &dir.file("out"));
        run(Stage::Poststop, &[hook], &state).unwrap();
    }

    #[test]
    fn env_is_exactly_the_given_one() {
        let dir = TempDir::new("hooks");
        let out = dir.file("out");
        let hook = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".into(),
                "-c".into(),
                "/usr/bin/env > \"$OUT\"".into(),
            ])
            .env(vec![
                format!("OUT={}", out.display()),
                "A=1".into(),
                "B=x=y".into(),
            ])
            .build()
            .unwrap();
        run(Stage::Prestart, &[hook], b"{}").unwrap();
        let mut got: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("PWD=")) // the shell's own, not inherited
            .map(String::from)
            .collect();
        got.sort();
        assert_eq!(got, ["A=1", "B=x=y", &format!("OUT={}", out.display())]);
    }

    #[test]
    fn args_zero_is_argv_zero() {
        let dir = TempDir::new("hooks");
        let out = dir.file("out");
        let hook = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "custom-argv0".into(),
                "-c".into(),
                "cat /proc/$$/cmdline > \"$OUT\"".into(),
                "extra".into(),
            ])
            .env(vec![PATH.into(), format!("OUT={}", out.display())])
            .build()
            .unwrap();
        run(Stage::StartContainer, &[hook], b"{}").unwrap();
        let cmdline = std::fs::read(&out).unwrap();
        let argv: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        assert_eq!(argv[0], b"custom-argv0");
        assert_eq!(argv[1], b"-c");
        assert_eq!(argv[3], b"extra");
    }

    #[test]
    fn no_args_means_argv_is_the_path() {
        // Without args, sh reads its script from stdin: the state we feed it.
        let dir = TempDir::new("hooks");
        let out = dir.file("out");
        let hook = HookBuilder::default().path("/bin/sh").build().unwrap();
        let script = format!("printf '%s' \"$0\" > '{}'\n", out.display());
        run(Stage::Poststart, &[hook], script.as_bytes()).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "/bin/sh");
    }

    #[test]
    fn first_failure_stops_the_run() {
        let dir = TempDir::new("hooks");
        let out = dir.file("out");
        let hooks = [
            sh("printf a >> \"$OUT\"", &out),
            sh("exit 3", &out),
            sh("printf c >> \"$OUT\"", &out),
        ];
        let (stage, index, path, reason) = hook_error(run(Stage::CreateRuntime, &hooks, b"{}"));
        assert_eq!((stage, index), ("createRuntime", 1));
        assert_eq!(path, PathBuf::from("/bin/sh"));
        assert_eq!(reason, "exited with status 3");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "a");
        let err = run(Stage::CreateRuntime, &hooks, b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "createRuntime hook #1 `/bin/sh`: exited with status 3"
        );
    }

    #[test]
    fn run_all_runs_every_hook_and_returns_each_failure() {
        let dir = TempDir::new("hooks");
        let out = dir.file("out");
        let hooks = [
            sh("printf a >> \"$OUT\"; exit 2", &out),
            sh("printf b >> \"$OUT\"", &out),
            sh("printf c >> \"$OUT\"; exit 4", &out),
        ];
        let errors = run_all(Stage::Poststop, &hooks, b"{}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "abc");
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "poststop hook #0 `/bin/sh`: exited with status 2",
                "poststop hook #2 `/bin/sh`: exited with status 4"
            ]
        );
        assert!(run_all(Stage::Poststart, &hooks[1..2], b"{}").is_empty());
    }

    #[test]
    fn state_in_container_has_the_pid_and_the_status_given() {
        let state = r#"{"id":"c1","status":"creating","pid":4242,"bundle":"/b"}"#;
        let v: serde_json::Value =
            serde_json::from_str(&state_in_container(state, "created", 1)).unwrap();
        assert_eq!(v["status"], "created");
        assert_eq!(v["pid"], 1);
        assert_eq!(
            (v["id"].as_str(), v["bundle"].as_str()),
            (Some("c1"), Some("/b"))
        );
        assert_eq!(state_in_container("not json", "created", 1), "not json");
    }

    #[test]
    fn a_killed_hook_names_the_signal() {
        let dir = TempDir::new("hooks");
        let hook = sh("kill -9 $$", &dir.file("out"));
        let (_, _, _, reason) = hook_error(run(Stage::Poststop, &[hook], b"{}"));
        assert_eq!(reason, "killed by signal 9 (SIGKILL)");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let dir = TempDir::new("hooks");
        let pidfile = dir.file("out");
        // Ignores stdin too: a full pipe must not block the timeout.
        let hook = with_timeout(sh("echo $$ > \"$OUT\"; exec sleep 5", &pidfile), 1);
        let state = vec![b'x'; 1_000_000];
        let start = Instant::now();
        let (stage, index, _, reason) = hook_error(run(Stage::Prestart, &[hook], &state));
        let took = start.elapsed();
        assert_eq!(
            (stage, index, reason.as_str()),
            ("prestart", 0, "timed out after 1s")
        );
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        // Killed and reaped: the pid is gone.
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists());
    }

    #[test]
    fn a_quick_hook_beats_its_timeout() {
        let dir = TempDir::new("hooks");
        let hook = with_timeout(sh("exit 0", &dir.file("out")), 5);
        let start = Instant::now();
        run(Stage::Poststart, &[hook], b"{}").unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_missing_binary_is_a_spawn_error() {
        let hook = HookBuilder::default()
            .path("/nonexistent/hook")
            .build()
            .unwrap();
        let r = run(Stage::CreateContainer, &[hook], b"{}");
        let e = r.as_ref().unwrap_err();
        assert_eq!(
            (e.kind(), e.errno()),
            (ErrorKind::System, Some(Errno::ENOENT))
        );
        let (_, index, path, reason) = hook_error(r);
        assert_eq!(index, 0);
        assert_eq!(path, PathBuf::from("/nonexistent/hook"));
        assert!(
            reason.starts_with("cannot execute: ENOENT: No such file"),
            "{reason}"
        );
    }

    #[test]
    fn an_invalid_hook_fails_without_running() {
        let hook = HookBuilder::default().path("true").build().unwrap();
        let r = run(Stage::Poststop, &[hook], b"{}");
        assert_eq!(r.as_ref().unwrap_err().kind(), ErrorKind::InvalidInput);
        let (_, _, _, reason) = hook_error(r);
        assert_eq!(reason, "path: `true` is not an absolute path");
    }

    #[test]
    fn no_hooks_is_success() {
        run(Stage::Poststop, &[], b"{}").unwrap();
    }

    #[test]
    fn poll_timeouts_round_up() {
        let ms = |d| i32::from(poll_timeout(d));
        assert_eq!(ms(Duration::from_micros(1)), 1);
        assert_eq!(ms(Duration::from_millis(1500)), 1500);
        assert_eq!(ms(Duration::from_secs(u64::MAX / 2)), i32::MAX);
    }
}
