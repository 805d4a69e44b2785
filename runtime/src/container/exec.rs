//! `exec`: run another process in an existing container (see process/joiner.rs for how it
//! enters). The process comes from a full OCI process JSON (`--process FILE`, what containerd
//! writes) or from flags on top of the container's own process, as runc builds it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, Process};

use super::create::{console_ends, Console};
use crate::namespaces;
use crate::pidfd::PidFd;
use crate::process::channel;
use crate::process::clone::{clone_pidfd, Forked};
use crate::process::joiner::{self, FromJoiner, JoinArgs};
use crate::process::{self, single_thread};
use crate::security::seccomp::Filter;
use crate::security::user;
use crate::state::{self, State, StateRoot, Status};
use crate::{console, spec, Error, Result, Warning};

#[derive(Debug)]
pub struct ExecOptions<'a> {
    pub id: &'a str,
    pub process: Process,
    pub pid_file: Option<&'a Path>,
    pub console: Console<'a>,
    pub preserve_fds: u32,
}

/// A process started in a container; it is our child.
#[derive(Debug)]
pub struct Execed {
    pub pidfd: PidFd,
    pub console_master: Option<OwnedFd>,
    /// Capabilities the process does not get, notes on its seccomp filter.
    pub warnings: Vec<Warning>,
}

/// exec's flags, for building the process the way runc does without `--process`.
#[derive(Debug, Default)]
pub struct ProcessFlags {
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// `UID[:GID]`
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
}

/// Read a process JSON file (`--process`); errors name the file and the field.
pub fn process_from_file(path: &Path) -> Result<Process> {
    let text = crate::spec::read_json_file(path)?;
    process_from_json(&text, &path.display().to_string())
}

/// A process from its JSON (what containerd's shim API carries); errors name `origin` and
/// the field.
pub fn process_from_json(text: &[u8], origin: &str) -> Result<Process> {
    let in_file = |field: &str, reason| Error::spec(format!("{origin}: {field}"), reason);
    let process: Process =
        crate::spec::parse_json(text).map_err(|(field, reason)| in_file(&field, reason))?;
    user::validate_ids(process.user(), "user").map_err(|e| match e {
        Error::InvalidSpec { field, reason } => in_file(&field, reason),
        other => other,
    })?;
    Ok(process)
}

/// The container's process with the flags applied (runc's `exec` semantics): new args, env
/// added (same key replaced), cwd and user replaced, capabilities added to every set.
pub fn process_from_flags(base: &Process, f: &ProcessFlags) -> Result<Process> {
    let mut p = base.clone();
    if f.args.is_empty() {
        return Err(Error::InvalidArgument(
            "exec needs a command (or --process FILE)".into(),
        ));
    }
    p.set_args(Some(f.args.clone()));
    p.set_terminal(Some(f.tty));
    if let Some(cwd) = &f.cwd {
        p.set_cwd(cwd.clone());
    }
    p.set_env(Some(merge_env(p.env().clone().unwrap_or_default(), &f.env)));
    if let Some(u) = &f.user {
        let (uid, gid) = parse_user(u)?;
        let user = p.user_mut();
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(g);
        }
    }
    if !f.additional_gids.is_empty() {
        for &g in &f.additional_gids {
            user::check_id(g)
                .map_err(|why| Error::InvalidArgument(format!("--additional-gids `{g}`: {why}")))?;
        }
        p.user_mut()
            .set_additional_gids(Some(f.additional_gids.clone()));
    }
    if !f.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &f.caps {
            let cap: Capability = serde_json::from_value(serde_json::Value::from(name.as_str()))
                .map_err(|_| {
                    Error::InvalidArgument(format!(
                        "--cap `{name}`: unknown capability (names as in capabilities(7), \
                         e.g. CAP_NET_ADMIN)"
                    ))
                })?;
            let add = |set: &Option<std::collections::HashSet<Capability>>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            // Ambient needs inheritable; add it only where inheritable is set (as runc).
            if caps.inheritable().as_ref().is_some_and(|i| !i.is_empty()) {
                caps.set_ambient(add(caps.ambient()));
            }
        }
        p.set_capabilities(Some(caps));
    }
    if f.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// `env` with `KEY=VALUE` entries added, each replacing an entry of the same key.
pub(super) fn merge_env(mut env: Vec<String>, add: &[String]) -> Vec<String> {
    for kv in add {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    env
}

fn parse_user(text: &str) -> Result<(u32, Option<u32>)> {
    let bad = || {
        Error::InvalidArgument(format!(
            "--user `{text}`: expected UID or UID:GID (numbers)"
        ))
    };
    let (u, g) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    let uid = u.parse().map_err(|_| bad())?;
    let gid = g.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    for id in std::iter::once(uid).chain(gid) {
        user::check_id(id)
            .map_err(|why| Error::InvalidArgument(format!("--user `{text}`: {why}")))?;
    }
    Ok((uid, gid))
}

/// Start `opts.process` in the running (or created) container `opts.id`.
///
/// Clones: the calling process must be single-threaded, or this fails with
/// [`Error::MultiThreaded`] before doing anything (process/single_thread.rs).
pub fn exec(root: &StateRoot, opts: ExecOptions<'_>) -> Result<Execed> {
    single_thread::ensure("exec")?;
    let st = root.read(opts.id)?;
    let status = st.status(&root.dir(opts.id));
    if !matches!(status, Status::Created | Status::Running) {
        return Err(Error::FailedPrecondition(format!(
            "cannot exec in container `{}`: it is {status}",
            opts.id
        )));
    }
    spec::validate_process(&st.config, &opts.process)?;
    let init = PidFd::open_checked(st.pid, st.init_start_time)?.ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "cannot exec in container `{}`: it is stopped",
            opts.id
        ))
    })?;
    let terminal = opts.process.terminal() == Some(true);
    let (console_theirs, console_ours) = console_ends(terminal, opts.console)?;
    // The container's filter applies to exec'd processes too; compiled here, once.
    let seccomp = Filter::from_spec(&st.config)?;
    crate::trace!(
        "exec in `{}`: join the namespaces of init pid {}",
        opts.id,
        st.pid
    );
    let spawned = spawn(
        &st,
        &init,
        Spawn {
            process: &opts.process,
            program: None,
            stdin: None,
            console: console_theirs.as_ref(),
            preserve_fds: opts.preserve_fds,
            seccomp: seccomp.as_ref(),
        },
    );
    drop(console_theirs);
    let (pid, pidfd) = spawned?;
    let master = match console_ours {
        Some(sock) => Some(console::recv_fd(sock.as_raw_fd())?),
        None => None,
    };
    if let Some(p) = opts.pid_file {
        state::write_file_atomic(p, pid.to_string().as_bytes())?;
    }
    let warnings = Warning::of_capabilities(&opts.process)
        .chain(Warning::of_seccomp(seccomp.as_ref()))
        .collect();
    Ok(Execed {
        pidfd,
        console_master: master,
        warnings,
    })
}

/// What to start in a container, besides the container itself.
pub(super) struct Spawn<'a> {
    pub process: &'a Process,
    /// Run this file instead of looking up `process.args[0]`.
    pub program: Option<&'a Path>,
    /// The process's stdin instead of ours.
    pub stdin: Option<&'a OwnedFd>,
    pub console: Option<&'a OwnedFd>,
    pub preserve_fds: u32,
    pub seccomp: Option<&'a Filter>,
}

/// Start a process in the container whose init is `init` (see process/joiner.rs): our child,
/// in every namespace and the cgroup of the container, set up by `finish`. Returns its host
/// pid and pidfd once it has exec'd, or the failure it reported. Clones: the callers
/// (`exec`, `start`'s hooks) have checked that the process is single-threaded.
pub(super) fn spawn(st: &State, init: &PidFd, s: Spawn<'_>) -> Result<(i32, PidFd)> {
    // CVE-2019-5736 class: no process in the container may open our /proc/PID/exe.
    nix::sys::prctl::set_dumpable(false).map_err(Error::sys("prctl(PR_SET_DUMPABLE, 0)"))?;
    let (ours, theirs) = channel::pair()?;
    let init_fd = init.try_clone()?;
    let namespaces = container_namespaces(&st.config);
    // SAFETY: both callers (`exec`, `start` before its hooks) checked that this process has
    // a single thread (single_thread::ensure), and nothing since has started one.
    match unsafe { clone_pidfd(CloneFlags::empty())? } {
        Forked::Child => joiner::run(JoinArgs {
            init_pidfd: &init_fd,
            namespaces,
            process: s.process,
            program: s.program,
            stdin: s.stdin,
            preserve_fds: s.preserve_fds,
            parent_end: ours.as_raw_fd(),
            channel: &theirs,
            console: s.console,
            seccomp: s.seccomp,
            cgroup: st.cgroup.as_ref().map(|c| c.path.as_path()),
            root_of: (!namespaces.contains(CloneFlags::CLONE_NEWNS)).then_some(st.pid),
        }),
        Forked::Parent { pid, .. } => {
            drop(theirs);
            follow_joiner(&ours, pid)
        }
    }
}

/// Read until both the joiner and the process have closed the channel (the joiner exits, the
/// process execs or dies): the joiner's Pid and the process's Error can come in either order.
/// Reap the joiner, and the process too when it failed. A failure comes back with its kind
/// and errno ([`Error::InContainer`]).
fn follow_joiner(ch: &channel::Channel, joiner: i32) -> Result<(i32, PidFd)> {
    let (mut pid, mut error) = (None, None);
    while let Some(msg) = ch.recv::<FromJoiner>()? {
        match msg {
            FromJoiner::Pid(p) => pid = Some(p),
            FromJoiner::Error(r) => error = error.or(Some(r)),
        }
    }
    let joiner_status = waitpid(Pid::from_raw(joiner), None);
    match (pid, error) {
        // Our child, not waited for: the pid is its own.
        (Some(p), None) => Ok((p, PidFd::open(p)?)),
        (Some(p), Some(r)) => {
            // Our child (CLONE_PARENT): reap it, or it lingers as a zombie in the container.
            let _ = waitpid(Pid::from_raw(p), None);
            Err(Error::InContainer(Box::new(r)))
        }
        (None, Some(r)) => Err(Error::InContainer(Box::new(r))),
        (None, None) => Err(Error::Ended {
            process: "the process joining the container",
            how: joiner_status
                .ok()
                .and_then(|ws| process::ended_how(ws, false)),
        }),
    }
}

/// Every namespace type the container's config lists (new or joined): the init is in each.
fn container_namespaces(config: &oci_spec::runtime::Spec) -> CloneFlags {
    config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|list| {
            list.iter().fold(CloneFlags::empty(), |acc, n| {
                acc | namespaces::flag(n.typ())
            })
        })
        .unwrap_or(CloneFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_build_the_process_like_runc() {
        let base = crate::spec::example().unwrap().process().clone().unwrap();
        let f = ProcessFlags {
            args: vec!["id".into()],
            env: vec!["TERM=dumb".into(), "A=1".into()],
            user: Some("1000:1001".into()),
            cwd: Some("/tmp".into()),
            caps: vec!["CAP_SYS_PTRACE".into()],
            ..Default::default()
        };
        let p = process_from_flags(&base, &f).unwrap();
        assert_eq!(p.args().as_deref(), Some(&["id".to_string()][..]));
        let env = p.env().clone().unwrap();
        assert!(env.contains(&"TERM=dumb".to_string()) && !env.contains(&"TERM=xterm".into()));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(p.cwd(), Path::new("/tmp"));
        let caps = p.capabilities().clone().unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysPtrace));
        assert!(!caps
            .ambient()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysPtrace));
        for bad in [
            "x",
            "1:y",
            ":1",
            "",
            "4294967295",
            "0:4294967295",
            "2147483648:0",
        ] {
            let f = ProcessFlags {
                args: vec!["id".into()],
                user: Some(bad.into()),
                ..Default::default()
            };
            assert!(process_from_flags(&base, &f).is_err(), "{bad}");
        }
        let f = ProcessFlags {
            args: vec!["id".into()],
            caps: vec!["CAP_NOPE".into()],
            ..Default::default()
        };
        assert!(process_from_flags(&base, &f)
            .unwrap_err()
            .to_string()
            .contains("--cap"));
        assert!(process_from_flags(&base, &ProcessFlags::default()).is_err());
        let f = ProcessFlags {
            args: vec!["id".into()],
            additional_gids: vec![5, u32::MAX],
            ..Default::default()
        };
        let err = process_from_flags(&base, &f).unwrap_err().to_string();
        assert!(err.starts_with("--additional-gids `4294967295`: "), "{err}");
        let f = ProcessFlags {
            args: vec!["id".into()],
            user: Some("4294967295:4294967295".into()),
            ..Default::default()
        };
        let err = process_from_flags(&base, &f).unwrap_err().to_string();
        assert!(
            err.starts_with("--user `4294967295:4294967295`: 4294967295 is out of range"),
            "{err}"
        );
    }
}
