//! One supervised container: its supervision dir, policy state, process, output, notify
//! socket and health checks, and what the engine does to it (launch, stop, kill, restart).
//!
//! A restart is delete + create + start of the same ID. The init is cloned by this
//! process, so it is our child and its status comes from its pidfd (or from `waitpid(-1)`
//! when SIGCHLD got there first); an adopted init is not our child: its end is seen on its
//! pidfd and its status is unknown. An exit counts as an intentional stop (never restarted)
//! when the user asked through us, or through the runtime: `harun kill` and `delete
//! --force` leave a marker in the state dir ([`STOP_MARKER`]), and a deleted state dir means
//! the user removed the container under us.

use harun_runtime::warning::Level;
use std::fs;
use std::os::fd::AsFd;
use std::time::Duration;

use harun_runtime::cgroups::ops;
use harun_runtime::container::{self, Console, CreateOptions, STOP_MARKER};
use harun_runtime::pidfd::PidFd;
use harun_runtime::rootfs::overlay;
use harun_runtime::{Error, Result};

mod probe;

use super::{Child, Ctx, Note, Source, Timer};
use crate::bundle::{self, Additions};
use crate::events::{Event, EventLog, Kind};
use crate::health::{self, Health};
use crate::logs::RotatingLog;
use crate::notify::NotifySocket;
use crate::persist::{Mode, Phase, Record, Store};
use crate::policy::{self, Decision, ExitStatus};
use crate::rollout::Slot;
use crate::service::Service;
use crate::stdio::{self, OutputFifo};
use probe::Probe;

/// The container's init while it runs.
#[derive(Debug)]
struct Init {
    pidfd: PidFd,
    token: u64,
    /// Cloned by us (its status is ours to read) or adopted (it is not).
    ours: bool,
}

/// Where the container's stdout and stderr go when they do not go to our own.
#[derive(Debug)]
struct Output {
    fifo: OutputFifo,
    log: RotatingLog,
    token: u64,
}

/// A replica started by a rolling update, on probation until the update accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Monotonic ms when it was started.
    pub since: u64,
}

#[derive(Debug)]
pub struct Replica {
    pub id: String,
    pub slot: Slot,
    /// The version (bundle, config, behaviour) it runs.
    pub service: Service,
    pub store: Store,
    /// What `supervision.json` says, the policy state (`record.sup`) included: changed in
    /// place, written by [`persist`](Self::persist).
    pub record: Record,
    events: EventLog,
    init: Option<Init>,
    output: Option<Output>,
    notify: Option<(NotifySocket, u64)>,
    notified_ready: bool,
    pub notify_status: Option<String>,
    pub health: Option<Health>,
    probe: Option<Probe>,
    /// Running, and healthy / `READY=1` when it has a check.
    pub ready: bool,
    pub candidate: Option<Candidate>,
    /// Stopped for good by an update or a removal: deleted (and its dir removed with
    /// `remove_store`) once final.
    pub retiring: bool,
    pub remove_store: bool,
    /// The user deleted the container under us.
    pub deleted: bool,
    /// We sent the SIGKILL (through the runtime, which leaves its stop marker): the exit
    /// is ours to judge, not a user's `harun kill`.
    killing: bool,
    /// The bundle it is created from, once known.
    bundle: Option<std::path::PathBuf>,
}

impl Replica {
    /// A replica with supervision dir `store` and `record` (fresh or read back), not
    /// running yet.
    pub fn new(
        ctx: &mut Ctx<'_>,
        id: &str,
        slot: Slot,
        service: Service,
        store: Store,
        record: Record,
    ) -> Result<Replica> {
        let events = EventLog::open(&store)?;
        let output = match ctx.opts.log {
            Some(config) => {
                let fifo = OutputFifo::open(&store)?;
                let log = RotatingLog::open(&store, config)?;
                let token = ctx.watch(fifo.as_fd(), Source::Output(id.into()), "output FIFO")?;
                Some(Output { fifo, log, token })
            }
            None => None,
        };
        let notify = if service.behaviour.notify {
            let sock = NotifySocket::bind(&store)?;
            let token = ctx.watch(sock.as_fd(), Source::Notify(id.into()), "notify socket")?;
            Some((sock, token))
        } else {
            None
        };
        let mut r = Replica {
            id: id.to_string(),
            slot,
            service,
            store,
            record,
            events,
            init: None,
            output,
            notify,
            notified_ready: false,
            notify_status: None,
            health: None,
            probe: None,
            ready: false,
            candidate: None,
            retiring: false,
            remove_store: false,
            deleted: false,
            killing: false,
            bundle: None,
        };
        r.pump_output(ctx);
        Ok(r)
    }

    pub fn phase(&self) -> Phase {
        self.record.phase
    }

    pub fn is_final(&self) -> bool {
        self.record.phase.is_final()
    }

    pub fn is_running(&self) -> bool {
        self.init.is_some()
    }

    pub fn pid(&self) -> Option<i32> {
        self.init.as_ref().map(|i| i.pidfd.pid())
    }

    /// Takes over a running init found by a new supervisor (`pidfd` checked against the
    /// recorded start time).
    pub fn adopt(&mut self, ctx: &mut Ctx<'_>, pidfd: PidFd, health: Option<Health>) -> Result<()> {
        let token = ctx.watch(pidfd.as_fd(), Source::Init(self.id.clone()), "pidfd")?;
        let pid = pidfd.pid();
        self.init = Some(Init {
            pidfd,
            token,
            ours: false,
        });
        self.record.container_pid = Some(pid);
        self.record.supervisor = ctx.me;
        self.emit(ctx, self.event(Kind::Adopted).pid(pid));
        let decision = self
            .record
            .sup
            .on_event(policy::Event::DaemonRestart { running: true }, ctx.now());
        self.record.phase = Phase::Running;
        self.record.end_reason = None;
        if let Some(check) = &self.service.behaviour.health {
            self.health = Some(health.unwrap_or_else(|| Health::new(ctx.now())));
            ctx.timers.set(
                Timer::Probe(self.id.clone()),
                ctx.mono() + millis(check.interval),
            );
        }
        self.persist(ctx);
        self.update_ready(ctx);
        self.apply(ctx, decision);
        Ok(())
    }

    /// The decision for a supervisor start that found this container not running.
    pub fn resume_stopped(&mut self, ctx: &mut Ctx<'_>) {
        self.record.supervisor = ctx.me;
        if self.record.phase == Phase::Running && self.record.sup.started_at.is_some() {
            let event = self
                .event(Kind::Exited)
                .status(None)
                .reason("ended while no supervisor watched (status unknown)");
            self.emit(ctx, event);
        }
        let decision = self
            .record
            .sup
            .on_event(policy::Event::DaemonRestart { running: false }, ctx.now());
        self.apply(ctx, decision);
    }

    /// Marks a replica that waits for its dependencies.
    pub fn wait_for_dependencies(&mut self, ctx: &mut Ctx<'_>) {
        self.record.phase = Phase::Waiting;
        self.record.end_reason = None;
        self.persist(ctx);
    }

    /// create + start; `created` and `started` events; `Started` to the policy. On failure
    /// nothing of the container is left, and the error is returned (the caller decides
    /// whether it is a failed restart or the user's error).
    pub fn launch(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        ctx.allocated = true;
        ctx.timers.cancel(&Timer::Restart(self.id.clone()));
        match container::delete(ctx.root, &self.id, true) {
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let _ = fs::remove_file(ctx.root.dir(&self.id).join(STOP_MARKER));
        let bundle_dir = self.bundle_dir(ctx)?;
        let p = &ctx.opts.create;
        let opts = CreateOptions {
            id: &self.id,
            bundle: &bundle_dir,
            pid_file: p.pid_file.as_deref(),
            console: Console::None,
            no_pivot: p.no_pivot,
            preserve_fds: p.preserve_fds,
            overlay: overlay::Request {
                enabled: p.overlay,
                layers: &p.layers,
                upper: p.upper.as_deref(),
            },
            process: &p.process,
        };
        let created = match &self.output {
            Some(out) => {
                let writer = out.fifo.writer()?;
                stdio::with_stdio(ctx.null.as_fd(), writer.as_fd(), writer.as_fd(), || {
                    container::create(ctx.root, &opts)
                })??
            }
            None => container::create(ctx.root, &opts)?,
        };
        let pid = created.state.pid;
        self.warn(&created.warnings);
        self.emit(ctx, self.event(Kind::Created).pid(pid));
        match container::start_or_remove(ctx.root, &created.state) {
            Ok(started) => self.warn(&started.warnings),
            Err(e) => {
                let _ = nix::sys::wait::waitid(
                    nix::sys::wait::Id::PIDFd(created.pidfd.as_fd()),
                    nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOHANG,
                );
                return Err(e);
            }
        }
        let token = ctx.watch(
            created.pidfd.as_fd(),
            Source::Init(self.id.clone()),
            "pidfd",
        )?;
        ctx.children.insert(pid, Child::Init(self.id.clone()));
        self.init = Some(Init {
            pidfd: created.pidfd,
            token,
            ours: true,
        });
        self.record.container_pid = Some(pid);
        self.notified_ready = false;
        let now = ctx.now();
        let decision = self.record.sup.on_event(policy::Event::Started, now);
        self.record.phase = Phase::Running;
        self.record.end_reason = None;
        if let Some(check) = &self.service.behaviour.health {
            self.health = Some(Health::new(now));
            ctx.timers.set(
                Timer::Probe(self.id.clone()),
                ctx.mono() + millis(check.interval),
            );
        }
        self.persist(ctx);
        self.emit(ctx, self.event(Kind::Started).pid(pid));
        self.update_ready(ctx);
        self.apply(ctx, decision);
        Ok(())
    }

    /// The runtime's warnings for this container on stderr, as `harun run` prints them
    /// (debug-level ones only with `--debug`).
    fn warn(&self, warnings: &[harun_runtime::Warning]) {
        for w in warnings {
            match w.level() {
                Level::Warning => {
                    harun_runtime::stderr::line(&format!("harun: warning: {}: {w}", self.id))
                }
                Level::Debug => harun_runtime::trace!("{}: {w}", self.id),
            }
        }
    }

    /// [`launch`](Self::launch), a failure being a failed start for the policy.
    pub fn launch_or_fail(&mut self, ctx: &mut Ctx<'_>) {
        if let Err(e) = self.launch(ctx) {
            self.emit(ctx, self.event(Kind::StartFailed).reason(e.to_string()));
            ctx.notes.push(Note::Exited(
                self.id.clone(),
                format!("failed to start: {e}"),
            ));
            let decision = self
                .record
                .sup
                .on_event(policy::Event::StartFailed, ctx.now());
            self.apply(ctx, decision);
        }
    }

    /// The bundle to create from: the service's own, or a copy with additions.
    /// Written at the first launch of this replica; every restart reuses it.
    fn bundle_dir(&mut self, ctx: &Ctx<'_>) -> Result<std::path::PathBuf> {
        if let Some(dir) = &self.bundle {
            return Ok(dir.clone());
        }
        let v = &self.service.version;
        let notify_dir = match self.notify {
            Some(_) => Some(NotifySocket::dir(&self.store)?),
            None => None,
        };
        let mut add = Additions {
            env: Vec::new(),
            notify_dir: notify_dir.as_deref(),
        };
        if ctx.opts.mode == Mode::Service {
            add.env
                .push(("HARUN_SERVICE".into(), self.service.name.clone()));
            add.env.push(("HARUN_CONTAINER".into(), self.id.clone()));
        }
        let dir = if add == Additions::default() {
            v.bundle.clone()
        } else {
            bundle::write(&self.store, &bundle::derive(&v.parsed()?, &v.bundle, &add))?
        };
        self.bundle = Some(dir.clone());
        Ok(dir)
    }

    /// Something the user or the engine asks of the policy: a stop, a shutdown, a restart
    /// for health. A stop asked while stopping already kills at once.
    pub fn request(&mut self, ctx: &mut Ctx<'_>, event: policy::Event) {
        let again = matches!(
            event,
            policy::Event::StopRequested { .. } | policy::Event::Shutdown { .. }
        ) && self.record.phase == Phase::Stopping;
        if again {
            self.kill_now(ctx);
            return;
        }
        if self.record.phase == Phase::Waiting {
            // Never started: nothing to stop.
            ctx.notes
                .push(Note::Exited(self.id.clone(), "not started".into()));
        }
        let decision = self.record.sup.on_event(event, ctx.now());
        self.apply(ctx, decision);
    }

    /// A manual start (`harun ctl start`): counters, stop and give-up forgotten.
    pub fn manual_start(&mut self, ctx: &mut Ctx<'_>) {
        if self.is_running() || matches!(self.record.phase, Phase::Restarting) {
            return;
        }
        self.record.sup.reset();
        self.launch_or_fail(ctx);
    }

    /// The init ended; `status` when we could read it.
    pub fn on_exit(&mut self, ctx: &mut Ctx<'_>, status: Option<ExitStatus>) {
        if let Some(init) = self.init.take() {
            ctx.unwatch(init.pidfd.as_fd(), init.token);
            ctx.children.remove(&init.pidfd.pid());
        }
        self.stop_probe(ctx);
        self.pump_output(ctx);
        self.record.container_pid = None;
        self.ready = false;
        let (marked, deleted) = self.stop_marked(ctx, status);
        let marked = marked && !std::mem::take(&mut self.killing);
        let now = ctx.now();
        if (marked || deleted) && !self.record.sup.stop_requested {
            // The policy still sees it running: it answers "terminate", which has happened.
            let _ = self
                .record
                .sup
                .on_event(policy::Event::StopRequested { timeout: None }, now);
        }
        let ran_for = self
            .record
            .sup
            .started_at
            .map_or(Duration::ZERO, |start| now.saturating_since(start));
        let mut exited = self.event(Kind::Exited).status(status).ran_for(ran_for);
        if status.is_none() {
            exited = exited.reason("exit status unknown (adopted container, not our child)");
        }
        self.emit(ctx, exited);
        let why = match status {
            Some(s) => s.to_string(),
            None => "exited (status unknown)".into(),
        };
        ctx.notes.push(Note::Exited(self.id.clone(), why));
        let decision = match status {
            Some(status) => self
                .record
                .sup
                .on_event(policy::Event::Exited { status }, now),
            None => self.record.sup.on_event(policy::Event::Lost, now),
        };
        if deleted {
            self.deleted = true;
            self.finish(ctx, Phase::Stopped, "container deleted by the user".into());
            return;
        }
        self.apply(ctx, decision);
    }

    /// Reads the init's status once its pidfd turned readable.
    pub fn reap_init(&mut self, ctx: &mut Ctx<'_>) {
        let Some(init) = &self.init else { return };
        if !init.ours {
            self.on_exit(ctx, None);
            return;
        }
        use nix::sys::wait::{waitid, Id, WaitPidFlag};
        // An error: reaped elsewhere, SIGCHLD's waitpid delivers it.
        if let Ok(ws) = waitid(
            Id::PIDFd(init.pidfd.as_fd()),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
        ) {
            if let Some(status) = super::exit_status(ws) {
                self.on_exit(ctx, Some(status));
            }
        }
    }

    /// True when the exit was asked for through `harun kill` / `delete --force` (first),
    /// or the container's state dir is gone (second). Takes the container's lock first, so
    /// a `kill` or `delete` still at work finishes before we look.
    fn stop_marked(&self, ctx: &Ctx<'_>, status: Option<ExitStatus>) -> (bool, bool) {
        let dir = match ctx.root.lock(&self.id) {
            Ok(dir) => dir,
            Err(Error::NotFound(_)) => return (false, true),
            Err(_) => return (false, false),
        };
        if matches!(dir.read(), Err(Error::NotFound(_))) {
            return (false, true);
        }
        let marker = dir.path().join(STOP_MARKER);
        let signal = fs::read_to_string(&marker)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        let _ = fs::remove_file(&marker);
        let stop = signal.is_some_and(|s| match status {
            Some(status) => is_stop_signal(s, status),
            None => true,
        });
        (stop, false)
    }

    /// Carries out a decision of the policy.
    pub fn apply(&mut self, ctx: &mut Ctx<'_>, decision: Decision) {
        match decision {
            Decision::KeepRunning => {}
            Decision::Terminate { grace } => {
                self.record.phase = Phase::Stopping;
                self.persist(ctx);
                if let Some(init) = &self.init {
                    if let Err(e) = init.pidfd.signal(libc::SIGTERM) {
                        warn(&self.id, &e);
                    }
                    // A frozen process never sees the TERM: thaw it (as Docker does).
                    let _ = ops::resume(ctx.root, &self.id);
                }
                ctx.timers
                    .set(Timer::Kill(self.id.clone()), ctx.mono() + millis(grace));
            }
            Decision::RestartAfter(delay) => {
                self.record.phase = Phase::Restarting;
                self.persist(ctx);
                self.emit(
                    ctx,
                    self.event(Kind::Restarting)
                        .delay(delay, self.record.sup.restart_count),
                );
                ctx.timers
                    .set(Timer::Restart(self.id.clone()), ctx.mono() + millis(delay));
            }
            Decision::StayStopped(reason) => self.finish(ctx, Phase::Stopped, reason.to_string()),
            Decision::GiveUp(reason) => self.finish(ctx, Phase::GaveUp, reason.to_string()),
        }
    }

    /// Supervision of this run is over: final record, then the final event.
    fn finish(&mut self, ctx: &mut Ctx<'_>, phase: Phase, reason: String) {
        ctx.cancel_timers(&self.id);
        self.record.phase = phase;
        self.record.end_reason = Some(reason.clone());
        self.persist(ctx);
        let last = self.record.sup.last_exit.and_then(|e| e.status);
        let kind = if phase == Phase::GaveUp {
            Kind::GaveUp
        } else {
            Kind::Stopped
        };
        self.emit(ctx, self.event(kind).reason(reason).status(last));
        ctx.notes.push(Note::Final(self.id.clone()));
    }

    /// A timer of this replica fired.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: &Timer) {
        match timer {
            Timer::Restart(_) => self.launch_or_fail(ctx),
            Timer::Kill(_) => self.kill_now(ctx),
            Timer::Probe(_) => self.start_probe(ctx),
            Timer::ProbeTimeout(_) => self.probe_timed_out(),
            Timer::Window(_) | Timer::Idle => {}
        }
    }

    /// SIGKILL to every process of the container (the init alone would leave the others
    /// of a container without its own pid namespace).
    pub fn kill_now(&mut self, ctx: &mut Ctx<'_>) {
        if self.init.is_some() {
            self.killing = true;
            if let Err(e) = container::kill(ctx.root, &self.id, libc::SIGKILL, true) {
                warn(&self.id, &e);
            }
        }
    }

    /// Sends `signal` to the init (a foreground run forwards what it gets).
    pub fn signal(&self, signal: i32) {
        if let Some(init) = &self.init {
            let _ = init.pidfd.signal(signal);
        }
    }

    /// Moves what the container wrote into the log.
    pub fn pump_output(&mut self, ctx: &mut Ctx<'_>) {
        let Some(out) = &mut self.output else { return };
        let log = &mut out.log;
        // Output the log cannot take (a full file system) is dropped: the FIFO must keep
        // draining, or the container would block on its next write.
        let _ = stdio::drain(out.fifo.reader(), &mut ctx.buf, |data| {
            let _ = log.write(data);
        });
    }

    /// The notify socket has datagrams.
    pub fn on_notify(&mut self, ctx: &mut Ctx<'_>) {
        let Some((sock, _)) = &self.notify else {
            return;
        };
        let msg = sock.receive();
        if msg.status.is_some() {
            self.notify_status = msg.status;
        }
        if msg.ready && !self.notified_ready && self.init.is_some() {
            self.notified_ready = true;
            self.emit(ctx, self.event(Kind::Ready).reason("READY=1"));
            self.update_ready(ctx);
        }
    }

    /// Ready: running, and healthy / notified when it has a check.
    fn update_ready(&mut self, ctx: &mut Ctx<'_>) {
        let ready = self.init.is_some()
            && self.record.phase == Phase::Running
            && (self.notify.is_none() || self.notified_ready)
            && self
                .health
                .as_ref()
                .is_none_or(|h| h.status == health::Status::Healthy);
        if ready && !self.ready {
            ctx.notes.push(Note::Ready(self.id.clone()));
        }
        self.ready = ready;
    }

    /// Writes the record (the policy's current state with it).
    pub fn persist(&mut self, ctx: &Ctx<'_>) {
        self.record.supervisor = ctx.me;
        if let Err(e) = self.store.write_record(&self.record) {
            warn(&self.id, &e);
        }
    }

    pub fn event(&self, kind: Kind) -> Event {
        Event::new(&self.id, kind, crate::events::now_ms())
    }

    /// Appends an event; printed too when the supervisor runs in the foreground. Losing an
    /// event line must not stop the supervision, so a write error is only reported.
    pub fn emit(&mut self, ctx: &Ctx<'_>, event: Event) {
        if ctx.opts.echo {
            harun_runtime::stderr::line(&format!("harun: {event}"));
        }
        if let Err(e) = self.events.append(&event) {
            warn(&self.id, &e);
        }
    }

    /// Lets go of everything watched (the replica is being dropped).
    pub fn release(&mut self, ctx: &mut Ctx<'_>) {
        self.stop_probe(ctx);
        ctx.cancel_timers(&self.id);
        if let Some(init) = self.init.take() {
            ctx.unwatch(init.pidfd.as_fd(), init.token);
            ctx.children.remove(&init.pidfd.pid());
        }
        if let Some(out) = self.output.take() {
            ctx.unwatch(out.fifo.as_fd(), out.token);
        }
        if let Some((sock, token)) = self.notify.take() {
            ctx.unwatch(sock.as_fd(), token);
        }
    }
}

/// True when a `harun kill` with `signal` explains an exit with `status`: a signal meant
/// to stop (TERM, KILL, INT, QUIT), or the very signal the process died of. A HUP or USR1
/// the process handled does not make a later crash count as a stop.
pub fn is_stop_signal(signal: i32, status: ExitStatus) -> bool {
    matches!(
        signal,
        libc::SIGTERM | libc::SIGKILL | libc::SIGINT | libc::SIGQUIT
    ) || status == ExitStatus::Signal(signal)
}

pub(super) fn millis(d: Duration) -> u64 {
    crate::persist::millis(d)
}

fn warn(id: &str, e: &Error) {
    harun_runtime::stderr::line(&format!("harun: warning: {id}: {e}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_kills_count_as_a_stop() {
        let code = ExitStatus::Code;
        let sig = ExitStatus::Signal;
        let cases = [
            (libc::SIGTERM, code(0), true),
            (libc::SIGTERM, code(143), true),
            (libc::SIGKILL, sig(9), true),
            (libc::SIGINT, code(130), true),
            (libc::SIGQUIT, sig(3), true),
            (libc::SIGHUP, sig(libc::SIGHUP), true),
            (libc::SIGUSR1, sig(libc::SIGUSR1), true),
            (libc::SIGHUP, code(1), false),
            (libc::SIGUSR1, sig(libc::SIGSEGV), false),
        ];
        for (signal, status, want) in cases {
            assert_eq!(is_stop_signal(signal, status), want, "{signal} {status:?}");
        }
    }
}
