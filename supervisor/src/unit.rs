//! One supervised container: start it, watch it, and carry out the policy engine's
//! decisions (restart after a delay, stop, give up) until supervision ends.
//!
//! The same loop serves a foreground `harun run --restart ...` (events printed on stderr,
//! everything deleted at the end, exit with the container's code) and the detached
//! supervisor (output pumped into the rotating log; at the end the stopped container and its
//! supervision stay until `harun delete`).
//!
//! A restart is delete + create + start of the same ID and bundle. The init is cloned by
//! this process, so it is our child: its status comes from its pidfd. An exit counts as an
//! intentional stop (never restarted) when the user asked through us (`harun stop`, SIGTERM
//! or Ctrl-C to the supervisor), or through the runtime: `harun kill` and `delete --force`
//! leave a marker in the container's state dir ([`STOP_MARKER`]), and a deleted state dir
//! means the user removed the container under us.

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::time::Duration;

use harun_runtime::container::{self, Console, CreateOptions, STOP_MARKER};
use harun_runtime::pidfd::PidFd;
use harun_runtime::state::StateRoot;
use harun_runtime::{procfs, Error, Result};
use nix::sys::signal::Signal;

use crate::events::{now_ms, Event, EventLog, Kind};
use crate::logs::{self, LogConfig, RotatingLog};
use crate::persist::{Mode, Phase, ProcRef, Record, Store};
use crate::policy::{self, Decision, ExitStatus, Settings, Supervision, Timestamp};
use crate::watch::{self, Wake, Watch};

/// What to supervise and how.
#[derive(Debug)]
pub struct UnitOptions<'a> {
    /// The container to create, again at each restart (the pid file is rewritten each
    /// time). `console` must be `Console::None`: a restarted container has no terminal to
    /// hand over.
    pub create: CreateOptions<'a>,
    pub settings: Settings,
}

impl UnitOptions<'_> {
    fn id(&self) -> &str {
        self.create.id
    }
}

/// The container's stdout+stderr pipe (read end) and where it goes.
#[derive(Debug)]
pub struct Output {
    pub pipe: File,
    pub config: LogConfig,
}

/// How supervision ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub phase: Phase,
    pub reason: String,
    /// The last run's status; `None` if unknown (its start failed).
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

/// What the timer is armed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Restart,
    Kill,
}

/// Signals every supervisor takes through its signalfd.
const STOP_SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD];
/// A foreground supervisor also forwards these to the container, as a plain `run` does.
const FORWARDED: [Signal; 4] = [
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

pub struct Unit<'r> {
    root: &'r StateRoot,
    opts: UnitOptions<'r>,
    mode: Mode,
    store: Store,
    record: Record,
    sup: Supervision,
    events: EventLog,
    watch: Watch,
    init: Option<PidFd>,
    timer: Option<Timer>,
    output: Option<(File, RotatingLog)>,
    end: Option<End>,
}

impl<'r> Unit<'r> {
    /// Takes the ID's supervision dir and starts the container for the first time. A
    /// failure here is the caller's error (bad bundle, ID taken, ...): nothing is left
    /// behind and nothing restarts.
    pub fn start(
        root: &'r StateRoot,
        opts: UnitOptions<'r>,
        mode: Mode,
        output: Option<Output>,
    ) -> Result<Unit<'r>> {
        if !matches!(opts.create.console, Console::None) {
            return Err(Error::InvalidArgument(
                "a supervised container cannot have a terminal (process.terminal, \
                 --console-socket): each restart would need a new one"
                    .into(),
            ));
        }
        let store = Store::reserve(root, opts.id())?;
        match Unit::start_in(root, opts, mode, output, store.clone()) {
            Ok(unit) => Ok(unit),
            Err(e) => {
                // The start error is what the user needs.
                let _ = store.remove();
                Err(e)
            }
        }
    }

    fn start_in(
        root: &'r StateRoot,
        opts: UnitOptions<'r>,
        mode: Mode,
        output: Option<Output>,
        store: Store,
    ) -> Result<Unit<'r>> {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(Error::sys("prctl PR_SET_CHILD_SUBREAPER"))?;
        let mut signals = STOP_SIGNALS.to_vec();
        if mode == Mode::Foreground {
            signals.extend(FORWARDED);
        } else {
            // No terminal: a hang-up means nothing; keep it from killing us.
            signals.push(Signal::SIGHUP);
        }
        let watch = Watch::new(&signals)?;
        let output = match output {
            Some(o) => {
                watch.watch_output(o.pipe.as_fd())?;
                Some((o.pipe, RotatingLog::open(&store, o.config)?))
            }
            None => None,
        };
        let sup = Supervision::new(opts.settings);
        let record = Record::new(
            opts.id(),
            opts.create.bundle,
            mode,
            own_proc()?,
            output.as_ref().map(|(_, log)| log.config()),
            &sup,
        );
        store.write_record(&record)?;
        let events = EventLog::open(&store)?;
        let mut unit = Unit {
            root,
            opts,
            mode,
            store,
            record,
            sup,
            events,
            watch,
            init: None,
            timer: None,
            output,
            end: None,
        };
        unit.launch()?;
        Ok(unit)
    }

    /// Watches and acts until supervision ends. Foreground: the container and its
    /// supervision are deleted at the end; detached: they stay for `inspect`, `logs`,
    /// `events` until `harun delete`.
    pub fn run(mut self) -> Result<End> {
        let outcome = self.watch_loop();
        self.pump_output();
        let end = match outcome {
            Ok(end) => end,
            Err(e) => {
                // We cannot watch any more: stop the container rather than leave it
                // unsupervised, and say why.
                self.kill_now();
                if let Some(init) = &self.init {
                    let _ = init.wait_exit(Duration::from_secs(10));
                }
                let _ = self.reap();
                self.finish(Phase::Stopped, format!("supervisor error: {e}"));
                self.end.clone().ok_or(e)?
            }
        };
        if self.mode == Mode::Foreground || end.deleted {
            // Best effort: the container's own exit code is what matters now.
            let _ = container::delete(self.root, self.opts.create.id, true);
            let _ = self.store.remove();
        }
        Ok(end)
    }

    fn watch_loop(&mut self) -> Result<End> {
        loop {
            if let Some(end) = &self.end {
                return Ok(end.clone());
            }
            for wake in self.watch.wait()? {
                if self.end.is_some() {
                    break; // what else woke us in this round is moot now
                }
                match wake {
                    Wake::Signals => {
                        for signal in self.watch.take_signals() {
                            self.on_signal(signal)?;
                        }
                    }
                    Wake::Timer => {
                        if self.watch.take_timer() {
                            self.on_timer()?;
                        }
                    }
                    Wake::Exit => self.reap()?,
                    Wake::Output => self.pump_output(),
                }
            }
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(now_ms())
    }

    fn event(&self, kind: Kind) -> Event {
        Event::new(self.opts.create.id, kind, now_ms())
    }

    /// Appends an event; a foreground run also prints it. Losing an event line must not
    /// stop the supervision, so a write error is only reported.
    fn emit(&mut self, event: Event) {
        if self.mode == Mode::Foreground {
            harun_runtime::stderr::line(&format!("harun: {event}"));
        }
        if let Err(e) = self.events.append(&event) {
            harun_runtime::stderr::line(&format!("harun: warning: {e}"));
        }
    }

    /// Writes the record with the engine's current state.
    fn persist(&mut self) {
        self.record.capture(&self.sup);
        if let Err(e) = self.store.write_record(&self.record) {
            harun_runtime::stderr::line(&format!("harun: warning: {e}"));
        }
    }

    /// create + start of the container; `created` and `started` events; `Started` to the
    /// engine. On failure nothing of the container is left (create cleans up after itself,
    /// a failed start is force-deleted).
    fn launch(&mut self) -> Result<()> {
        let created = container::create(self.root, &self.opts.create)?;
        let pid = created.state.pid;
        self.emit(self.event(Kind::Created).pid(pid));
        match container::start(self.root, self.opts.create.id) {
            Ok(started) => {
                for w in started.warnings {
                    harun_runtime::stderr::line(&format!("harun: warning: {w}"));
                }
            }
            Err(e) => {
                let _ = container::delete(self.root, self.opts.create.id, true);
                let _ = watch::reap(Some(&created.pidfd));
                return Err(e);
            }
        }
        self.watch.watch_exit(&created.pidfd)?;
        self.init = Some(created.pidfd);
        self.record.container_pid = Some(pid);
        let decision = self.sup.on_event(policy::Event::Started, self.now());
        self.record.phase = Phase::Running;
        self.persist();
        self.emit(self.event(Kind::Started).pid(pid));
        self.apply(decision)
    }

    fn on_signal(&mut self, signal: i32) -> Result<()> {
        if self.end.is_some() {
            return Ok(()); // supervision is over; the process is about to exit
        }
        match Signal::try_from(signal) {
            Ok(Signal::SIGTERM | Signal::SIGINT) => {
                // `harun stop` leaves its timeout next to the record; Ctrl-C has none.
                let timeout = self.store.take_stop_request().flatten();
                self.request_stop(timeout)
            }
            Ok(Signal::SIGCHLD) => self.reap(),
            Ok(Signal::SIGHUP) if self.mode == Mode::Detached => Ok(()),
            Ok(_) => {
                if let Some(init) = &self.init {
                    init.signal(signal)?;
                }
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    fn request_stop(&mut self, timeout: Option<Duration>) -> Result<()> {
        if self.record.phase == Phase::Stopping {
            // Asked twice: no more grace.
            self.kill_now();
            return Ok(());
        }
        let decision = self
            .sup
            .on_event(policy::Event::StopRequested { timeout }, self.now());
        self.apply(decision)
    }

    fn on_timer(&mut self) -> Result<()> {
        match self.timer.take() {
            Some(Timer::Restart) => self.restart(),
            Some(Timer::Kill) => {
                self.kill_now();
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// SIGKILL to every process of the container (the init alone would leave the others
    /// of a container without its own pid namespace).
    fn kill_now(&mut self) {
        if self.init.is_some() {
            if let Err(e) = container::kill(self.root, self.opts.create.id, libc::SIGKILL, true) {
                harun_runtime::stderr::line(&format!("harun: warning: {e}"));
            }
        }
    }

    fn restart(&mut self) -> Result<()> {
        let attempt = container::delete(self.root, self.opts.create.id, true)
            .map(|_| ())
            .and_then(|()| self.launch());
        match attempt {
            Ok(()) => Ok(()),
            Err(e) => {
                self.emit(self.event(Kind::StartFailed).reason(e.to_string()));
                let decision = self.sup.on_event(policy::Event::StartFailed, self.now());
                self.apply(decision)
            }
        }
    }

    /// Collects exited children; handles the init's exit if it was among them.
    fn reap(&mut self) -> Result<()> {
        if let Some(status) = watch::reap(self.init.as_ref())? {
            self.on_exit(status)?;
        }
        Ok(())
    }

    fn on_exit(&mut self, status: ExitStatus) -> Result<()> {
        if let Some(pidfd) = self.init.take() {
            self.watch.unwatch(pidfd.as_fd());
        }
        // What the run wrote is in the log before its `exited` event.
        self.pump_output();
        self.record.container_pid = None;
        let (marked, deleted) = self.stop_marked(status);
        let now = self.now();
        if (marked || deleted) && !self.sup.stop_requested {
            // The engine still sees it running: it answers "terminate", which has happened.
            let _ = self
                .sup
                .on_event(policy::Event::StopRequested { timeout: None }, now);
        }
        let ran_for = self
            .sup
            .started_at
            .map_or(Duration::ZERO, |start| now.saturating_since(start));
        self.emit(
            self.event(Kind::Exited)
                .status(Some(status))
                .ran_for(ran_for),
        );
        let decision = self.sup.on_event(policy::Event::Exited { status }, now);
        if deleted {
            self.finish(Phase::Stopped, "container deleted by the user".into());
            if let Some(end) = &mut self.end {
                end.deleted = true;
            }
            return Ok(());
        }
        self.apply(decision)
    }

    /// (the exit was asked for through `harun kill` / `delete --force`, the container's
    /// state dir is gone). Takes the container's lock first, so a `kill` or `delete` still
    /// at work finishes before we look.
    fn stop_marked(&self, status: ExitStatus) -> (bool, bool) {
        let dir = match self.root.lock(self.opts.create.id) {
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
        (signal.is_some_and(|s| is_stop_signal(s, status)), false)
    }

    fn apply(&mut self, decision: Decision) -> Result<()> {
        match decision {
            Decision::KeepRunning => {}
            Decision::Terminate { grace } => {
                self.record.phase = Phase::Stopping;
                self.persist();
                if let Some(init) = &self.init {
                    init.signal(libc::SIGTERM)?;
                }
                self.set_timer(Timer::Kill, grace)?;
            }
            Decision::RestartAfter(delay) => {
                self.record.phase = Phase::Restarting;
                self.persist();
                self.emit(
                    self.event(Kind::Restarting)
                        .delay(delay, self.sup.restart_count),
                );
                self.set_timer(Timer::Restart, delay)?;
            }
            Decision::StayStopped(reason) => self.finish(Phase::Stopped, reason.to_string()),
            Decision::GiveUp(reason) => self.finish(Phase::GaveUp, reason.to_string()),
        }
        Ok(())
    }

    fn set_timer(&mut self, timer: Timer, after: Duration) -> Result<()> {
        self.watch.arm(after)?;
        self.timer = Some(timer);
        Ok(())
    }

    /// Supervision is over: final record, then the final event.
    fn finish(&mut self, phase: Phase, reason: String) {
        let _ = self.watch.disarm();
        self.timer = None;
        self.record.phase = phase;
        self.record.end_reason = Some(reason.clone());
        self.persist();
        let last = self.sup.last_exit.and_then(|e| e.status);
        let kind = if phase == Phase::GaveUp {
            Kind::GaveUp
        } else {
            Kind::Stopped
        };
        self.emit(self.event(kind).reason(reason.clone()).status(last));
        self.end = Some(End {
            phase,
            reason,
            last,
            deleted: false,
        });
    }

    /// Moves what the container wrote into the log.
    fn pump_output(&mut self) {
        let Some((pipe, log)) = &mut self.output else {
            return;
        };
        let mut buf = vec![0u8; 64 * 1024];
        match logs::pump(pipe, log, &mut buf) {
            Ok(true) => {}
            Ok(false) => {
                self.watch.unwatch(pipe.as_fd());
                self.output = None;
            }
            Err(_) => {
                // The pipe itself broke: keep supervising without a log rather than spin.
                self.watch.unwatch(pipe.as_fd());
                self.output = None;
            }
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
    fn which_kills_count_as_a_stop() {
        let code = |c| ExitStatus::Code(c);
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
