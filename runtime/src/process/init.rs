//! The container init: runs in the cloned child, sets the container up as a flat recipe of
//! named steps, tells the parent it is ready, waits for `start` on exec.fifo, then execs the
//! user process. A failing step is reported to the parent as the real cause.
//!
//! The order, security-critical, as `setup` has it on one screen (crun's
//! container_init_setup). This is the one description; other modules refer to it. `create`
//! did the rest before the clone: validated the spec, compiled the seccomp filter, made the
//! cgroup and the namespaces the clone flags ask for.
//!
//! ```text
//! parent death signal -> (new user ns: wait for the id maps, become root in it;
//!   else: not dumpable) -> join namespaces given by path -> oomScoreAdj
//! -> rootfs::prepare (mounts, devices, in the host's root)
//! -> prestart and createRuntime hooks (run by the parent) -> createContainer hooks
//! -> rootfs::enter (pivot_root) -> hostname, domainname -> sysctl
//! -> rootfs::finalize (masked and read-only paths, read-only root, propagation)
//! -> console -> finish::finish (rlimits, user, cwd, fds, capabilities and seccomp, in the
//!    order process/finish.rs gives, shared with `exec`)
//! -> ready -> wait on exec.fifo (`start` runs the startContainer hooks meanwhile)
//! -> [with no_new_privs: seccomp installed] -> tell `start` -> execve
//! ```

use std::convert::Infallible;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::channel::{Channel, FromInit, ToInit};
use super::exec_fifo;
use super::finish;
use crate::hooks::{self, Stage};
use crate::namespaces::{self, Plan};
use crate::security::seccomp::Filter;
use crate::security::{sysctl, user};
use crate::{console, rootfs, Error, Result};

/// Set once the parent has been told we are ready (it stops listening then).
static READY_SENT: AtomicBool = AtomicBool::new(false);

/// Everything the init needs; it lives in the init's copy of the parent's memory.
pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub plan: &'a Plan,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// exec.fifo, read-write and filled (see [`exec_fifo`]): all the init keeps of the host
    /// while it waits for `start`.
    pub fifo: RawFd,
    /// Fds of the parent's that the init must close at once (the state-dir lock).
    pub close_now: &'a [RawFd],
    /// The parent's end of the channel (closed at once) and ours.
    pub parent_end: RawFd,
    pub channel: &'a Channel,
    /// Connected console socket when process.terminal is set.
    pub console: Option<&'a OwnedFd>,
    /// The container's seccomp filter, compiled by `create` when it validated the spec.
    pub seccomp: Option<&'a Filter>,
    /// The overlay rootfs to mount, if any (checked by `create`).
    pub overlay: Option<&'a rootfs::overlay::Plan>,
}

/// Run the init; never returns. On failure the cause goes to the parent and the init exits 1.
pub fn run(args: InitArgs<'_>) -> ! {
    let err = match super::catch_panic(|| setup(&args)) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Before Ready the parent is listening and reports this; after it (waiting for or
    // handling `start`) nobody reads the channel: stderr is the container's, and all we have.
    if READY_SENT.load(Ordering::Relaxed)
        || args
            .channel
            .send_by_write(&FromInit::Error(err.report()))
            .is_err()
    {
        crate::stderr::line(&format!("harun init: {err}"));
    }
    // SAFETY: _exit is always safe; no destructors or atexit handlers should run in a fork.
    unsafe { libc::_exit(1) }
}

fn setup(a: &InitArgs<'_>) -> Result<Infallible> {
    crate::trace::set_role("init");
    for &fd in a.close_now.iter().chain([&a.parent_end]) {
        // SAFETY: these fds are copies of the parent's; nothing in the init uses them.
        unsafe { libc::close(fd) };
    }
    die_with_parent()?;
    if a.plan.is_new(LinuxNamespaceType::User) {
        wait_for_maps(a)?;
    } else {
        // CVE-2019-5736 class: nothing in the container may open this process's /proc/PID/exe
        // (the harun binary) while it runs harun code. (In a new user namespace the process
        // must stay dumpable to use its own /proc files; its exe is out of reach there anyway:
        // the container's root is not root on the host.)
        nix::sys::prctl::set_dumpable(false).map_err(Error::sys("prctl(PR_SET_DUMPABLE, 0)"))?;
    }
    let process = a
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::spec("process", "missing"))?;
    namespaces::join_all(a.plan)?;
    if let Some(adj) = process.oom_score_adj() {
        user::set_oom_score_adj(adj)?;
    }

    let new_cgroup_ns = a.plan.is_new(LinuxNamespaceType::Cgroup);
    rootfs::prepare(a.spec, a.bundle, a.rootfs, new_cgroup_ns, a.overlay)?;
    if hooks::any_during_create(a.spec) {
        let state = runtime_hooks(a)?;
        let state = hooks::state_in_container(&state, "creating", std::process::id() as i32);
        let create_container = Stage::CreateContainer.hooks(a.spec);
        hooks::run(Stage::CreateContainer, create_container, state.as_bytes())?;
    }
    rootfs::enter(a.spec, a.rootfs, a.no_pivot)?;

    set_uts(a.spec)?;
    if let Some(map) = a.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        sysctl::apply(map)?;
    }
    rootfs::finalize(a.spec)?;
    if process.terminal() == Some(true) {
        let sock = a.console.ok_or_else(|| {
            Error::InvalidArgument("process.terminal needs a console socket".into())
        })?;
        console::setup_in_init(sock, process.console_size(), process.user().uid())?;
    }

    let exec = finish(a, process)?;
    // Without no_new_privs, the container's seccomp filter is in place from here on: write,
    // close and prctl only, as runc's init (finish.rs).
    ready(a)?;
    wait_for_start_and_exec(a, exec)
}

/// The parent runs the prestart and createRuntime hooks now: ask, and wait for its word.
/// Returns the OCI state it sends for the createContainer hooks.
fn runtime_hooks(a: &InitArgs<'_>) -> Result<String> {
    a.channel.send(&FromInit::RuntimeHooks)?;
    match a.channel.recv::<ToInit>()? {
        Some(ToInit::Continue { state }) => Ok(state),
        Some(other) => Err(Error::Internal(format!(
            "init channel: unexpected {other:?} from the parent"
        ))),
        None => Err(Error::Internal("the parent exited during create".into())),
    }
}

/// `finish::finish` for the init: everything of the host closed but the channel and the
/// fifo.
fn finish(a: &InitArgs<'_>, process: &Process) -> Result<finish::Exec> {
    // Nothing of the host stays open while we wait (fds harun's caller leaked, the cgroup dir
    // create cloned us into...): a process exec'd with CAP_SYS_PTRACE could walk the host
    // from /proc/1/fd/N. The preserved fds are the caller's, for the process.
    let keep = [a.channel.as_raw_fd(), a.fifo];
    let keep = finish::Keep {
        preserve: a.preserve_fds,
        also: &keep,
    };
    crate::trace!(
        "rlimits, cwd, user {}:{}, close fds, capabilities, seccomp: {}; then wait for start",
        process.user().uid(),
        process.user().gid(),
        a.seccomp.is_some()
    );
    // The fds of the trace sink are about to close.
    crate::trace::stop();
    finish::finish(process, None, a.seccomp, keep)
}

/// Block on exec.fifo until `start`, then (with no_new_privs) install the seccomp filter,
/// tell `start` how it went and exec.
fn wait_for_start_and_exec(a: &InitArgs<'_>, exec: finish::Exec) -> Result<Infallible> {
    // SAFETY: the fifo fd is ours (inherited from create) and open until we exec or exit.
    let fifo = unsafe { BorrowedFd::borrow_raw(a.fifo) };
    exec_fifo::wait_for_start(fifo)?;
    // `start` ran the startContainer hooks (as an exec into the container) before it let us
    // go. It waits for our word: "0" (we exec next) or "E" and the failure, which it reports.
    let filtered = exec.install_filter(a.seccomp);
    exec_fifo::tell_start(fifo, filtered.as_ref().map(|_| ()))?;
    filtered?;
    Err(exec.exec())
}

/// Tell the parent we are ready, then let go of it: it returns, we outlive it, and nobody
/// reads the channel again (`run` reports later failures on stderr).
fn ready(a: &InitArgs<'_>) -> Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG and 0 only clears a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    a.channel.send_by_write(&FromInit::Ready)?;
    READY_SENT.store(true, Ordering::Relaxed);
    // SAFETY: we never use the channel again; the Channel that owns the fd lives in the
    // parent's frames, which the init never returns to (it execs or _exits), so it is never
    // dropped.
    unsafe { libc::close(a.channel.as_raw_fd()) };
    Ok(())
}

/// Wait for the parent to write our uid/gid maps, then become root of the new user namespace
/// (when container id 0 is mapped), so files the setup creates get a mapped owner.
fn wait_for_maps(a: &InitArgs<'_>) -> Result<()> {
    match a.channel.recv::<ToInit>()? {
        Some(ToInit::Mapped) => {}
        other => {
            return Err(Error::Internal(format!(
                "init channel: expected the id maps, got {other:?}"
            )))
        }
    }
    let linux = a.spec.linux().as_ref();
    let maps_zero = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.is_some_and(|m| m.iter().any(|x| x.container_id() == 0))
    };
    if maps_zero(linux.and_then(|l| l.gid_mappings().as_ref())) {
        let g = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(g, g, g).map_err(Error::sys("setresgid 0 in the user namespace"))?;
    }
    if maps_zero(linux.and_then(|l| l.uid_mappings().as_ref())) {
        let u = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresuid(u, u, u).map_err(Error::sys("setresuid 0 in the user namespace"))?;
    }
    Ok(())
}

/// Die if the parent (the create command) dies before the init is ready.
fn die_with_parent() -> Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG, SIGKILL) sets a flag of this process only.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    nix::errno::Errno::result(r).map_err(Error::sys("prctl(PR_SET_PDEATHSIG)"))?;
    Ok(())
}

fn set_uts(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| Error::sys(format!("sethostname `{h}`"))(e))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: the pointer and length describe a valid byte string.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        nix::errno::Errno::result(r).map_err(|e| Error::sys(format!("setdomainname `{d}`"))(e))?;
    }
    Ok(())
}
