//! `create`: validate everything, lock a fresh state dir, clone the init, follow its
//! protocol, record the state. A failure leaves nothing behind.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{mkfifo, Pid};

use crate::hooks::{self, Stage};
use crate::namespaces::{self, PidForChildren};
use crate::pidfd::PidFd;
use crate::process::channel::{self, Action, Expect, FromInit, ToInit};
use crate::process::clone::{clone_pidfd_into, Forked};
use crate::process::exec_fifo;
use crate::process::init::{self, InitArgs};
use crate::process::{self, single_thread};
use crate::rootfs::{host, overlay};
use crate::spec::{self, Bundle};
use crate::state::{self, LockedDir, State, StateRoot, Status, EXEC_FIFO};
use crate::{cgroups, console, idmap, procfs, time, timens, Error, Result, Warning};
use oci_spec::runtime::LinuxNamespaceType;

/// Where a terminal's pty master goes.
#[derive(Debug, Clone, Copy)]
pub enum Console<'a> {
    /// No console socket given.
    None,
    /// `--console-socket PATH`: the caller receives the master.
    Socket(&'a Path),
    /// Foreground `run`: harun itself receives the master and relays it.
    Internal,
}

#[derive(Debug)]
pub struct CreateOptions<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console: Console<'a>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// `--overlay`, `--layer`, `--upper` (the bundle's annotations fill in the rest).
    pub overlay: overlay::Request<'a>,
    /// `run`'s changes to the bundle's process.
    pub process: &'a ProcessOverrides,
}

/// `run`'s changes to the bundle's process (`harun run BUNDLE -e K=V -t -- CMD ARGS`),
/// applied before the spec is validated.
#[derive(Debug, Default, Clone)]
pub struct ProcessOverrides {
    /// Replaces `process.args` unless empty.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries added to `process.env`, each replacing the same key.
    pub env: Vec<String>,
    /// Sets `process.terminal`.
    pub terminal: bool,
}

impl ProcessOverrides {
    fn apply(&self, spec: &mut oci_spec::runtime::Spec) -> Result<()> {
        if self.args.is_empty() && self.env.is_empty() && !self.terminal {
            return Ok(());
        }
        let mut p = spec
            .process()
            .clone()
            .ok_or_else(|| Error::spec("process", "missing"))?;
        if !self.args.is_empty() {
            p.set_args(Some(self.args.clone()));
        }
        if !self.env.is_empty() {
            p.set_env(Some(super::exec::merge_env(
                p.env().clone().unwrap_or_default(),
                &self.env,
            )));
        }
        if self.terminal {
            p.set_terminal(Some(true));
        }
        spec.set_process(Some(p));
        Ok(())
    }
}

/// A created container, as its creator sees it.
#[derive(Debug)]
pub struct Created {
    pub state: State,
    /// The init's pidfd; the init is our child, so a foreground `run` can wait for it.
    pub pidfd: PidFd,
    /// The pty master, for [`Console::Internal`].
    pub console_master: Option<OwnedFd>,
    /// Capabilities the process does not get, notes on its seccomp filter.
    pub warnings: Vec<Warning>,
}

/// Create the container `opts.id`: on success its init waits for `start`.
///
/// Clones: the calling process must be single-threaded, or this fails with
/// [`Error::MultiThreaded`] before doing anything (process/single_thread.rs).
pub fn create(root: &StateRoot, opts: &CreateOptions<'_>) -> Result<Created> {
    single_thread::ensure("create")?;
    state::validate_id(opts.id)?;
    let mut bundle = spec::load_with(opts.bundle, |spec| opts.process.apply(spec))?;
    let overlay = overlay::plan(&bundle, &opts.overlay, &root.dir(opts.id))?;
    if let Some(plan) = &overlay {
        // The overlay keeps the bundle's rootfs pristine; `root.readonly` (on in every
        // default spec) would only make the upper useless. README: "Overlay rootfs".
        let mut r = bundle.spec.root().clone().unwrap_or_default();
        r.set_readonly(Some(plan.readonly));
        bundle.spec.set_root(Some(r));
    }
    crate::trace!(
        "create `{}`: bundle `{}`, rootfs `{}`; namespaces: {}",
        opts.id,
        bundle.dir.display(),
        bundle.rootfs.display(),
        bundle.plan.describe()
    );
    let own_mount_ns = host::has_mount_namespace(&bundle.spec);
    if overlay.is_some() && !own_mount_ns {
        return Err(Error::InvalidArgument(
            "an overlay rootfs needs a `mount` namespace in linux.namespaces".into(),
        ));
    }
    let console = console_endpoints(&bundle, opts.console)?;
    let dir = root.create(opts.id)?;
    if !own_mount_ns {
        // Before the init exists: which mount the rootfs path is on, for the clean-up.
        if let Err(e) = host::record(dir.path(), &bundle.rootfs) {
            let _ = dir.remove();
            return Err(e);
        }
    }
    let cgroup = match cgroups::setup(&bundle.spec, opts.id, dir.path()) {
        Ok(c) => c,
        Err(e) => {
            let _ = dir.remove();
            return Err(e);
        }
    };
    match create_in(&dir, &bundle, opts, console, overlay.as_ref(), &cgroup) {
        Ok(mut created) => {
            let process = bundle.spec.process().as_ref();
            created
                .warnings
                .extend(process.into_iter().flat_map(Warning::of_capabilities));
            created
                .warnings
                .extend(Warning::of_seccomp(bundle.seccomp.as_ref()));
            Ok(created)
        }
        Err(e) => {
            // Best effort: the original error is what the user needs. Removing the cgroup
            // also kills whatever the init left in it.
            let _ = cgroup.record.destroy(cgroups::REMOVE_TIMEOUT);
            let _ = host::remove(dir.path());
            let _ = dir.remove();
            poststop_after_failure(opts.id, &bundle);
            Err(e)
        }
    }
}

/// runtime.md "Lifecycle": a create that fails (a hook, a mount...) "stop[s] the container,
/// and continue[s] the lifecycle at step 12": destroyed, then the poststop hooks run, with
/// the state of a stopped container — as runc 1.1.5 does. Their own failures are dropped:
/// the create error is the one line the caller gets.
fn poststop_after_failure(id: &str, bundle: &Bundle) {
    let hooks = Stage::Poststop.hooks(&bundle.spec);
    if hooks.is_empty() {
        return;
    }
    let st = State {
        id: id.to_string(),
        pid: 0,
        init_start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: time::now_rfc3339(),
        config: bundle.spec.clone(),
        cgroup: None,
    };
    let stopped = st.to_oci(Status::Stopped).to_string();
    let _failures = hooks::run_all(Stage::Poststop, hooks, stopped.as_bytes());
}

/// (fd the init sends the master on, fd harun receives it on).
type ConsoleEnds = (Option<OwnedFd>, Option<OwnedFd>);

fn console_endpoints(bundle: &Bundle, console: Console<'_>) -> Result<ConsoleEnds> {
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    console_ends(terminal, console)
}

/// The console socket ends for a process with or without `terminal`.
pub(super) fn console_ends(terminal: bool, console: Console<'_>) -> Result<ConsoleEnds> {
    match (terminal, console) {
        (true, Console::Socket(p)) => Ok((Some(console::connect_socket(p)?), None)),
        (true, Console::Internal) => {
            let (a, b) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(Error::sys("socketpair for the console"))?;
            Ok((Some(a), Some(b)))
        }
        (true, Console::None) => Err(Error::InvalidArgument(
            "process.terminal is true: --console-socket is required for a detached container"
                .into(),
        )),
        (false, Console::Socket(_)) => Err(Error::InvalidArgument(
            "--console-socket given, but process.terminal is false in config.json".into(),
        )),
        (false, _) => Ok((None, None)),
    }
}

/// What `create` does once the state dir and cgroup exist: the exec fifo, the overlay's
/// dirs, the clone, the protocol until the init is ready, the state. A failure here is
/// cleaned up by the caller.
fn create_in(
    dir: &LockedDir,
    bundle: &Bundle,
    opts: &CreateOptions<'_>,
    (console_init, console_ours): ConsoleEnds,
    overlay: Option<&overlay::Plan>,
    cgroup: &cgroups::Setup,
) -> Result<Created> {
    let fifo = make_exec_fifo(dir.path())?;
    // Upper and work dirs; new persistent ones are removed again if create fails.
    let overlay_dirs = overlay.map(overlay::Plan::make_dirs).transpose()?;
    let close_now: Vec<_> = std::iter::once(dir.lock_fd())
        .chain(overlay_dirs.as_ref().and_then(|d| d.lock_fd()))
        .collect();
    // The init's only hold on the host while it waits for `start` (no directory fd).
    let fifo_fd = exec_fifo::open_for_init(&fifo)?;
    let (ours, theirs) = channel::pair()?;
    let init = InitArgs {
        spec: &bundle.spec,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        plan: &bundle.plan,
        no_pivot: opts.no_pivot,
        preserve_fds: opts.preserve_fds,
        fifo: fifo_fd.as_raw_fd(),
        close_now: &close_now,
        parent_end: ours.as_raw_fd(),
        channel: &theirs,
        console: console_init.as_ref(),
        seccomp: bundle.seccomp.as_ref(),
        overlay,
    };
    let (pid, pidfd) = clone_init(bundle, cgroup, init)?;
    drop(theirs);
    drop(console_init);
    drop(fifo_fd);
    let st = State {
        id: opts.id.to_string(),
        pid,
        init_start_time: procfs::stat(pid)
            .ok()
            .flatten()
            .map(|s| s.start_time)
            .unwrap_or(0),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: time::now_rfc3339(),
        config: bundle.spec.clone(),
        cgroup: Some(cgroup.record.clone()),
    };
    await_ready(&ours, &st, bundle, &pidfd, cgroup)?;
    crate::trace!("the init is ready");
    let master = match console_ours {
        Some(sock) => Some(console::recv_fd(sock.as_raw_fd())?),
        None => None,
    };
    dir.write(&st)?;
    if let Some(p) = opts.pid_file {
        state::write_file_atomic(p, pid.to_string().as_bytes())?;
    }
    if let Some(dirs) = overlay_dirs {
        dirs.keep(&st);
    }
    Ok(Created {
        state: st,
        pidfd,
        console_master: master,
        warnings: Vec::new(),
    })
}

/// exec.fifo in the state dir, writable by anyone: an init in a user namespace is not root
/// on the host.
fn make_exec_fifo(state_dir: &Path) -> Result<PathBuf> {
    let fifo = state_dir.join(EXEC_FIFO);
    mkfifo(&fifo, Mode::from_bits_truncate(0o622))
        .map_err(|e| Error::sys(format!("mkfifo `{}`", fifo.display()))(e))?;
    // Not subject to the umask.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(Error::io("chmod", &fifo))?;
    Ok(fifo)
}

/// Clone the init into its new namespaces, born in its cgroup (or moved there before it
/// does anything), and run `init` in the child. Returns the init's pid and pidfd.
fn clone_init(
    bundle: &Bundle,
    cgroup: &cgroups::Setup,
    init: InitArgs<'_>,
) -> Result<(i32, PidFd)> {
    // Children are born in the pid namespace to join and the new time namespace while these
    // guards live; they restore the parent on drop. The child must not run their Drop.
    let pidns = PidForChildren::enter(&bundle.plan)?;
    let timens = timens::ForChildren::enter(&bundle.spec, &bundle.plan)?;
    // The time namespace is the parent's to make (offsets are written before the init
    // enters it); every other new namespace comes with the clone.
    let flags = bundle.plan.new - namespaces::flag(LinuxNamespaceType::Time);
    // SAFETY: `create` checked first thing that this process has a single thread, and
    // nothing since has started one.
    let (forked, placed) = unsafe { clone_pidfd_into(flags, Some(cgroup.cgroup.as_fd()))? };
    let (pid, pidfd) = match forked {
        Forked::Child => {
            std::mem::forget(pidns);
            std::mem::forget(timens);
            init::run(init)
        }
        Forked::Parent { pid, pidfd } => (pid, PidFd::from_owned(pidfd, pid)),
    };
    crate::trace!("cloned the init: pid {pid} (born in its cgroup: {placed})");
    if !placed {
        // The init has not talked to us yet, so it has made no process of its own.
        if let Err(e) = cgroup.cgroup.add_proc(pid) {
            let _ = pidfd.signal(libc::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            return Err(e);
        }
    }
    Ok((pid, pidfd))
}

/// Follow the init until it is ready. On a failure kill and reap it; when it had died,
/// the error says how ([`Error::Ended`]).
fn await_ready(
    ch: &channel::Channel,
    st: &State,
    bundle: &Bundle,
    pidfd: &PidFd,
    cgroup: &cgroups::Setup,
) -> Result<()> {
    let Err(e) = follow_init(ch, st, bundle) else {
        return Ok(());
    };
    // Harmless if it is dead already: a zombie keeps the status it died with.
    let _ = pidfd.signal(libc::SIGKILL);
    let status = waitpid(Pid::from_raw(st.pid), None);
    Err(match (e, status) {
        // The channel closed: the init died, and how is the cause.
        (Error::Ended { process, .. }, Ok(ws)) => {
            let events = cgroup.cgroup.keyed("memory.events").ok().flatten();
            let oom_killed = events.is_some_and(|m| m.get("oom_kill").is_some_and(|&n| n > 0));
            Error::Ended {
                process,
                how: process::ended_how(ws, oom_killed),
            }
        }
        (e, _) => e,
    })
}

/// Run the parent side of the init protocol until the init is ready. The init dying on the
/// way is [`Error::Ended`] (how it died is for the caller to find out).
fn follow_init(ch: &channel::Channel, st: &State, bundle: &Bundle) -> Result<()> {
    if bundle.plan.is_new(LinuxNamespaceType::User) {
        idmap::write_maps(st.pid, &bundle.spec)?;
        ch.send(&ToInit::Mapped).map_err(died)?;
    }
    // Without hooks to run during create, the init goes on without asking (init.rs).
    let mut expect = if hooks::any_during_create(&bundle.spec) {
        Expect::RuntimeHooks
    } else {
        Expect::Ready
    };
    loop {
        let msg: Option<FromInit> = ch.recv().map_err(died)?;
        let (next, action) = expect.next(msg);
        expect = next;
        match action {
            Action::RunRuntimeHooks => {
                let state_json = st.to_oci(Status::Creating).to_string();
                for stage in [Stage::Prestart, Stage::CreateRuntime] {
                    hooks::run(stage, stage.hooks(&bundle.spec), state_json.as_bytes())?;
                }
                ch.send(&ToInit::Continue { state: state_json })
                    .map_err(died)?;
            }
            Action::Finish => return Ok(()),
            failed => return Err(failed.error().unwrap_or_else(died_error)),
        }
    }
}

/// A send or receive on the channel that failed because the init's end is gone (EPIPE,
/// ECONNRESET): the init died.
fn died(e: Error) -> Error {
    match e {
        Error::Sys {
            errno: Errno::EPIPE | Errno::ECONNRESET,
            ..
        } => died_error(),
        other => other,
    }
}

fn died_error() -> Error {
    Error::Ended {
        process: channel::INIT,
        how: None,
    }
}
