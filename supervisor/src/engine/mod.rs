//! The supervisor engine: one thread, one epoll loop, any number of services with any
//! number of replicas. `harun supervise DIR` runs it for every service of a directory;
//! `harun run --restart ...` runs it for one container. Same code, two front ends
//! ([`Options`] say which).
//!
//! What it waits on, all in one epoll set ([`crate::reactor`]): a signalfd (TERM/INT/HUP,
//! CHLD), one timerfd armed for the earliest deadline of a queue ([`crate::timers`]:
//! restart delays, SIGKILL after a stop timeout, health checks and their timeouts, update
//! windows), the pidfd of every container init and health check process, every
//! container's output FIFO and notify socket, and the control socket with its clients.
//! Between events it sleeps; nothing polls.
//!
//! Decisions are pure and live elsewhere: the restart policy ([`crate::policy`]), health
//! ([`crate::health`]), start order ([`crate::deps`]), rolling updates
//! ([`crate::rollout`]). The engine feeds them what happened, carries out what they
//! decide, and settles the consequences in one place after every event
//! ([`Engine::settle`]): replicas that became ready release the services waiting for
//! them, updates get their next step, control clients waiting for an outcome get it.
//!
//! Containers are created and `exec`'d into from this single-threaded process (the
//! runtime library clones and forks; threads would break that). Every init and health
//! check is our child, reaped through its pidfd or, when SIGCHLD comes first, through
//! `waitpid(-1)`, which also reaps whatever else is handed to us as child subreaper (or as
//! PID 1 of a minimal system).

mod control;
mod replica;
mod services;
mod startup;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use harun_runtime::state::StateRoot;
use harun_runtime::{procfs, Error, Result};
use nix::errno::Errno;
use nix::sys::epoll::EpollEvent;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::ctl::{Conn, Listener};
use crate::logs::LogConfig;
use crate::persist::{Mode, Phase, ProcRef};
use crate::policy::{self, ExitStatus, Timestamp};
use crate::reactor::{self, Reactor};
use crate::timers::Timers;

pub use replica::is_stop_signal;
pub use startup::{daemon_dir, socket_path, Daemon, DaemonRecord, RunOne};

/// What kind of supervisor this is.
#[derive(Debug, Clone)]
pub struct Options {
    /// Recorded in each supervision record: `Foreground` / `Detached` (`harun run`),
    /// `Service` (`harun supervise`).
    pub mode: Mode,
    /// Print each event on stderr too.
    pub echo: bool,
    /// Container output into rotating logs; `None`: containers share our stdout and stderr
    /// (a foreground `harun run`).
    pub log: Option<LogConfig>,
    /// `harun run`'s create flags, for every (re)create.
    pub create: CreateParams,
}

/// `create` flags that apply to each (re)create.
#[derive(Debug, Clone, Default)]
pub struct CreateParams {
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub overlay: bool,
    pub layers: Vec<PathBuf>,
    pub upper: Option<String>,
    /// `harun run`'s `-e`, `-t`, `-- CMD ARGS` (nothing for `harun supervise`).
    pub process: harun_runtime::container::ProcessOverrides,
}

/// What an epoll token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Init(String),
    Output(String),
    Notify(String),
    ProbeExit(String),
    ProbeOut(String),
    Listener,
    Conn(u64),
}

/// How long after the last create or exec the supervisor gives memory back: the heap a
/// create parsed a whole config into, and the code it ran (crate::shed). Not at once: a
/// container restarting in a loop would fault that code back in every time.
const IDLE_AFTER_MS: u64 = 1000;

/// A deadline, by container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    Restart(String),
    Kill(String),
    Probe(String),
    ProbeTimeout(String),
    /// A rolling update's window for a new replica.
    Window(String),
    /// A second after the last create or exec: give memory back (`shed`).
    Idle,
}

impl Timer {
    fn id(&self) -> &str {
        match self {
            Timer::Restart(id)
            | Timer::Kill(id)
            | Timer::Probe(id)
            | Timer::ProbeTimeout(id)
            | Timer::Window(id) => id,
            Timer::Idle => "",
        }
    }
}

/// One of our children.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Child {
    Init(String),
    Probe(String),
    /// A killed health check: reaped and forgotten.
    Orphan,
}

/// Something that happened to a replica, for [`Engine::settle`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Note {
    Ready(String),
    /// It exited or failed to start (why).
    Exited(String, String),
    Unhealthy(String, String),
    /// Its supervision ended (stopped, gave up).
    Final(String),
}

/// What every part of the engine shares: the root, the options, the wait, the clock.
pub(crate) struct Ctx<'r> {
    root: &'r StateRoot,
    opts: Options,
    reactor: Reactor,
    timers: Timers<Timer>,
    tokens: HashMap<u64, Source>,
    next_token: u64,
    children: HashMap<i32, Child>,
    /// Containers' stdin.
    null: File,
    /// This process, as records name it.
    me: ProcRef,
    notes: Vec<Note>,
    /// A read buffer for output and pipes.
    buf: Vec<u8>,
    /// Something that allocates and frees a lot ran (a create, an exec): give the freed
    /// memory back before sleeping.
    allocated: bool,
}

impl Ctx<'_> {
    fn watch(&mut self, fd: BorrowedFd<'_>, source: Source, what: &str) -> Result<u64> {
        let token = self.next_token;
        self.next_token += 1;
        self.reactor.add(fd, token, what)?;
        self.tokens.insert(token, source);
        Ok(token)
    }

    fn unwatch(&mut self, fd: BorrowedFd<'_>, token: u64) {
        self.reactor.remove(fd);
        self.tokens.remove(&token);
    }

    fn cancel_timers(&mut self, id: &str) {
        self.timers.cancel_where(|t| t.id() == id);
    }

    /// Wall-clock ms: the policy's clock (it survives in records).
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(crate::events::now_ms())
    }

    /// Monotonic ms: the timers' clock.
    fn mono(&self) -> u64 {
        reactor::mono_ms()
    }
}

/// How a supervision of one container (`harun run`) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub phase: Phase,
    pub reason: String,
    /// The last run's status; `None` if unknown.
    pub last: Option<ExitStatus>,
    /// The user deleted the container while we watched it.
    pub deleted: bool,
}

impl End {
    /// The shell convention: the exit code, 128 + N for signal N, 1 when unknown.
    pub fn exit_code(&self) -> i32 {
        match self.last {
            Some(ExitStatus::Code(c)) => c,
            Some(ExitStatus::Signal(s)) => 128 + s,
            None => 1,
        }
    }
}

/// The engine.
pub(crate) struct Engine<'r> {
    ctx: Ctx<'r>,
    services: BTreeMap<String, services::ServiceState>,
    replicas: BTreeMap<String, replica::Replica>,
    listener: Option<(Listener, u64)>,
    conns: HashMap<u64, Conn>,
    waiters: Vec<control::Waiter>,
    /// `harun supervise`: the directory it serves.
    dir: Option<PathBuf>,
    /// Services of a reload waiting for the old replicas of the same name to go.
    pending: Vec<crate::service::Service>,
    /// Shutting down: stop everything, in reverse start order, then end.
    shutting_down: bool,
    /// `harun run`: its one container's supervision ended.
    end: Option<End>,
}

/// Signals every supervisor takes through its signalfd.
const SIGNALS: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGCHLD,
    Signal::SIGHUP,
];
/// A foreground `harun run` also forwards these to its container.
const FORWARDED: [Signal; 3] = [Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2];

impl<'r> Engine<'r> {
    fn new(root: &'r StateRoot, opts: Options) -> Result<Engine<'r>> {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(Error::sys("prctl PR_SET_CHILD_SUBREAPER"))?;
        let mut signals = SIGNALS.to_vec();
        if opts.mode == Mode::Foreground {
            signals.extend(FORWARDED);
        }
        let reactor = Reactor::new(&signals)?;
        Ok(Engine {
            ctx: Ctx {
                root,
                opts,
                reactor,
                timers: Timers::new(),
                tokens: HashMap::new(),
                next_token: reactor::FIRST_FREE,
                children: HashMap::new(),
                null: crate::stdio::dev_null()?,
                me: own_proc()?,
                notes: Vec::new(),
                buf: vec![0u8; 16 * 1024],
                allocated: true,
            },
            services: BTreeMap::new(),
            replicas: BTreeMap::new(),
            listener: None,
            conns: HashMap::new(),
            waiters: Vec::new(),
            dir: None,
            pending: Vec::new(),
            shutting_down: false,
            end: None,
        })
    }

    /// Watches and acts until the supervision ends (`harun run`) or a shutdown finished.
    fn run(&mut self) -> Result<()> {
        let mut events = [EpollEvent::empty(); 32];
        loop {
            self.settle();
            if self.finished() {
                return Ok(());
            }
            if std::mem::take(&mut self.ctx.allocated) {
                self.ctx
                    .timers
                    .set(Timer::Idle, self.ctx.mono() + IDLE_AFTER_MS);
            }
            let deadline = self.ctx.timers.next();
            self.ctx.reactor.arm_at(deadline)?;
            for (token, writable) in self.ctx.reactor.wait(&mut events)? {
                match token {
                    reactor::SIGNALS => {
                        for signal in self.ctx.reactor.take_signals() {
                            self.on_signal(signal);
                        }
                    }
                    reactor::TIMER => {
                        self.ctx.reactor.take_timer();
                        self.on_timers();
                    }
                    t => self.on_ready(t, writable),
                }
                self.settle();
            }
        }
    }

    fn finished(&self) -> bool {
        if self.end.is_some() {
            return true;
        }
        self.shutting_down && self.replicas.values().all(|r| r.is_final())
    }

    fn on_timers(&mut self) {
        for timer in self.ctx.timers.take_due(self.ctx.mono()) {
            if timer == Timer::Idle {
                crate::shed::clean_file_pages();
                continue;
            }
            if let Timer::Window(id) = &timer {
                self.on_window(id.clone());
                continue;
            }
            if let Some(r) = self.replicas.get_mut(timer.id()) {
                r.on_timer(&mut self.ctx, &timer);
            }
        }
    }

    fn on_ready(&mut self, token: u64, writable: bool) {
        let Some(source) = self.ctx.tokens.get(&token).cloned() else {
            return; // unwatched by an earlier event of this round
        };
        match source {
            Source::Init(id) => {
                if let Some(r) = self.replicas.get_mut(&id) {
                    r.reap_init(&mut self.ctx);
                }
            }
            Source::Output(id) => {
                if let Some(r) = self.replicas.get_mut(&id) {
                    r.pump_output(&mut self.ctx);
                }
            }
            Source::Notify(id) => {
                if let Some(r) = self.replicas.get_mut(&id) {
                    r.on_notify(&mut self.ctx);
                }
            }
            Source::ProbeExit(id) => {
                if let Some(r) = self.replicas.get_mut(&id) {
                    r.reap_probe(&mut self.ctx);
                }
            }
            Source::ProbeOut(id) => {
                if let Some(r) = self.replicas.get_mut(&id) {
                    r.on_probe_output(&mut self.ctx);
                }
            }
            Source::Listener => self.accept(),
            Source::Conn(cid) => self.on_conn(cid, writable),
        }
    }

    fn on_signal(&mut self, signal: i32) {
        match Signal::try_from(signal) {
            Ok(Signal::SIGCHLD) => self.reap_children(),
            Ok(Signal::SIGTERM | Signal::SIGINT) => self.on_stop_signal(),
            Ok(Signal::SIGHUP) => match self.ctx.opts.mode {
                Mode::Service => {
                    let outcome = self.reload_now();
                    harun_runtime::stderr::line(&format!(
                        "harun: SIGHUP: {}",
                        outcome.response.message
                    ));
                }
                // A detached run has no terminal; a hang-up means nothing to it.
                Mode::Detached => {}
                Mode::Foreground => self.forward(signal),
            },
            Ok(_) => self.forward(signal),
            Err(_) => {}
        }
    }

    /// TERM/INT: `harun run` stops its container (with `harun stop`'s timeout when it left
    /// one); `harun supervise` shuts down. Asked twice: no more grace.
    fn on_stop_signal(&mut self) {
        if self.ctx.opts.mode == Mode::Service {
            if self.shutting_down {
                for r in self.replicas.values_mut() {
                    r.kill_now(&mut self.ctx);
                }
            }
            self.shutting_down = true;
            return;
        }
        for r in self.replicas.values_mut() {
            let timeout = r.store.take_stop_request().flatten();
            r.request(&mut self.ctx, policy::Event::StopRequested { timeout });
        }
    }

    fn forward(&mut self, signal: i32) {
        for r in self.replicas.values() {
            r.signal(signal);
        }
    }

    /// Collects every exited child: inits and health checks go to their replica; orphans
    /// handed to us (subreaper, PID 1) are just reaped.
    fn reap_children(&mut self) {
        loop {
            let ws = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(ws) => ws,
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            };
            let (Some(pid), Some(status)) = (ws.pid(), exit_status(ws)) else {
                continue;
            };
            match self.ctx.children.remove(&pid.as_raw()) {
                Some(Child::Init(id)) => {
                    if let Some(r) = self.replicas.get_mut(&id) {
                        if r.pid() == Some(pid.as_raw()) {
                            r.on_exit(&mut self.ctx, Some(status));
                        }
                    }
                }
                Some(Child::Probe(id)) => {
                    if let Some(r) = self.replicas.get_mut(&id) {
                        r.on_probe_exit(&mut self.ctx, status);
                    }
                }
                Some(Child::Orphan) | None => {}
            }
        }
    }

    /// The consequences of what happened: readiness releases waiting services, updates
    /// take their next step, retired replicas go, waiting clients get their answer; for
    /// `harun run`, the end of its container's supervision ends the engine.
    fn settle(&mut self) {
        loop {
            let notes = std::mem::take(&mut self.ctx.notes);
            for note in &notes {
                self.on_note(note);
            }
            self.add_pending_services();
            self.start_waiting_services();
            if self.shutting_down {
                self.shutdown_step();
            }
            if self.ctx.notes.is_empty() {
                break;
            }
        }
        self.answer_waiters();
        if self.ctx.opts.mode != Mode::Service && self.end.is_none() {
            if let Some(r) = self.replicas.values().find(|r| r.is_final()) {
                self.end = Some(End {
                    phase: r.phase(),
                    reason: r.record.end_reason.clone().unwrap_or_default(),
                    last: r.record.sup.last_exit.and_then(|e| e.status),
                    deleted: r.deleted,
                });
            }
        }
    }
}

/// The exit status in a wait status, if it says the process ended.
fn exit_status(ws: WaitStatus) -> Option<ExitStatus> {
    match ws {
        WaitStatus::Exited(_, code) => Some(ExitStatus::Code(code)),
        WaitStatus::Signaled(_, signal, _) => Some(ExitStatus::Signal(signal as i32)),
        _ => None,
    }
}

/// This process, by pid and start time.
fn own_proc() -> Result<ProcRef> {
    let pid = std::process::id() as i32;
    let start_time = procfs::stat(pid)
        .map_err(Error::io("read", format!("/proc/{pid}/stat")))?
        .map_or(0, |s| s.start_time);
    Ok(ProcRef { pid, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        let end = |last| End {
            phase: Phase::Stopped,
            reason: String::new(),
            last,
            deleted: false,
        };
        assert_eq!(end(Some(ExitStatus::Code(3))).exit_code(), 3);
        assert_eq!(end(Some(ExitStatus::Signal(9))).exit_code(), 137);
        assert_eq!(end(None).exit_code(), 1);
    }
}
