//! Restart policies and the pure decision engine: (state, event, now) -> decision.
//!
//! The engine follows Docker's restart manager (moby `restartmanager/restartmanager.go`):
//! 100 ms first delay, doubling per consecutive restart, capped at 1 min, back to the first
//! delay once a run lasted 10 s; an intentional stop never restarts; after a user stop,
//! `always` restarts when the supervisor starts again and `unless-stopped` does not. On top
//! of Docker: a crash-loop limit (N exits within S → give up and report, like s6's permanent
//! failure or systemd's start limit), and a restart whose start failed counts as a failed run.
//!
//! For the multi-service supervisor (`harun supervise`) three more events: a container whose
//! end nobody could see ([`Event::Lost`]: an adopted container is not our child, so its exit
//! status is unknown: a failure), a health check that asks for a restart
//! ([`Event::Unhealthy`]: stop it, then restart it as after a failure whatever the policy),
//! and the supervisor's own shutdown ([`Event::Shutdown`]: stop it without recording a user
//! stop, so the next supervisor start runs it again).
//!
//! Time is a [`Timestamp`] the caller passes in; the engine never reads a clock, so tests
//! drive it with a fake one.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{format_duration, parse_duration};
use crate::{Error, Result};

mod wire;
pub(crate) use wire::millis;

/// A point in time: milliseconds since an epoch the caller picks.
///
/// All timestamps of one [`Supervision`] must come from the same clock. The engine tolerates
/// a clock that goes backwards (it reads as zero elapsed time) but a persisted state only
/// makes sense with a clock that survives what the state survives (wall-clock milliseconds
/// for state kept across reboots).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// `self + duration`, saturating at the end of time.
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis(duration)))
    }
}

/// How a container's process ended (written `{"code": 1}`, `{"signal": 9}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal number.
    Signal(i32),
}

impl ExitStatus {
    /// Only `exit(0)` is a success; death by any signal is a failure.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// When to restart a container that stopped (Docker's `--restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RestartPolicy {
    /// Never restart.
    #[default]
    No,
    /// Restart after a non-zero exit or death by a signal, at most `max_retries` times in a
    /// row (see [`Supervision`] for what resets the count); `None` is no limit.
    OnFailure { max_retries: Option<u32> },
    /// Restart after any exit; also on supervisor start, even after a user stop.
    Always,
    /// As `Always`, except that a container the user stopped stays stopped when the
    /// supervisor starts again.
    UnlessStopped,
}

const POLICY_HINT: &str = "use no, on-failure, on-failure:N, always, unless-stopped";

impl FromStr for RestartPolicy {
    type Err = Error;

    /// Parses `no`, `on-failure`, `on-failure:5`, `always`, `unless-stopped`.
    fn from_str(input: &str) -> Result<Self> {
        let bad = |reason: String| Error::invalid("restart policy", input, reason);
        let (name, count) = match input.split_once(':') {
            Some((name, count)) => (name, Some(count)),
            None => (input, None),
        };
        let policy = match name {
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => {
                let max_retries = count.map(|c| parse_retries(c).map_err(bad)).transpose()?;
                return Ok(RestartPolicy::OnFailure { max_retries });
            }
            "" => return Err(bad(format!("empty ({POLICY_HINT})"))),
            _ => return Err(bad(format!("unknown policy `{name}` ({POLICY_HINT})"))),
        };
        match count {
            None => Ok(policy),
            Some(_) => Err(bad(format!(
                "`{name}` takes no retry count (only on-failure:N does)"
            ))),
        }
    }
}

/// The `N` of `on-failure:N`: a whole number, at least 1.
fn parse_retries(count: &str) -> std::result::Result<u32, String> {
    if count.is_empty() {
        return Err("missing retry count after `:` (write e.g. on-failure:5)".into());
    }
    if !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("retry count `{count}` is not a whole number"));
    }
    match count.parse::<u32>() {
        Ok(0) => Err(
            "retry count must be at least 1 (`on-failure` alone has no limit, \
                      `no` never restarts)"
                .into(),
        ),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("retry count `{count}` is too large")),
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure { max_retries: None } => f.write_str("on-failure"),
            RestartPolicy::OnFailure {
                max_retries: Some(n),
            } => write!(f, "on-failure:{n}"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

/// Exponential backoff between restarts: `initial`, then times `factor` per consecutive
/// restart, capped at `max`; a run of at least `reset_after` starts over at `initial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backoff {
    pub initial: Duration,
    pub factor: u32,
    pub max: Duration,
    pub reset_after: Duration,
}

/// The least delay of a restart after another restart without a reset (see
/// [`Backoff::next_delay`]): a crash loop never spins, whatever the settings.
pub const MIN_BACKOFF_STEP: Duration = Duration::from_millis(1);

impl Default for Backoff {
    /// Docker's restart manager: 100 ms, doubling, cap 1 min, reset after 10 s of running.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            factor: 2,
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay after `previous` (`None`: the first restart since a reset). Never above `max`.
    /// A zero `initial` restarts at once the first time only: the delays after it start at
    /// [`MIN_BACKOFF_STEP`], so a container that keeps failing still backs off.
    pub fn next_delay(&self, previous: Option<Duration>) -> Duration {
        let next = match previous {
            None => self.initial,
            Some(previous) => previous
                .checked_mul(self.factor)
                .unwrap_or(Duration::MAX)
                .max(MIN_BACKOFF_STEP),
        };
        next.min(self.max)
    }

    /// Checks the numbers make sense together.
    pub fn validate(&self) -> Result<()> {
        if self.max < MIN_BACKOFF_STEP {
            return Err(Error::new(
                "restart max delay must be at least 1ms (a container that keeps failing backs off)",
            ));
        }
        if self.max < self.initial {
            return Err(Error::new(format!(
                "restart max delay ({}) is shorter than the restart delay ({})",
                format_duration(self.max),
                format_duration(self.initial)
            )));
        }
        if self.factor == 0 {
            return Err(Error::new("restart backoff factor must be at least 1"));
        }
        Ok(())
    }
}

/// Crash-loop limit: the `max_exits`-th exit within `window` gives up (`N/S`, e.g. `5/30s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CrashLoop {
    pub max_exits: u32,
    pub window: Duration,
}

impl FromStr for CrashLoop {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        let bad = |reason: String| Error::invalid("restart limit", input, reason);
        let Some((count, window)) = input.split_once('/') else {
            return Err(bad(
                "missing `/S` (write N/S: N exits within S, e.g. `5/30s`)".into(),
            ));
        };
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("exit count `{count}` is not a whole number")));
        }
        let max_exits = count
            .parse::<u32>()
            .map_err(|_| bad(format!("exit count `{count}` is too large")))?;
        if max_exits < 2 {
            return Err(bad(format!(
                "exit count must be at least 2 ({max_exits} would give up at the first exit)"
            )));
        }
        let window = parse_duration(window).map_err(|e| bad(e.to_string()))?;
        if window.is_zero() {
            return Err(bad("window must be longer than 0".into()));
        }
        Ok(CrashLoop { max_exits, window })
    }
}

impl fmt::Display for CrashLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.max_exits, format_duration(self.window))
    }
}

/// Everything the engine needs to know about how a container is supervised. Written as
/// people write it (`on-failure:3`, `100ms`), and validated when read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "wire::SettingsWire", try_from = "wire::SettingsWire")]
pub struct Settings {
    pub policy: RestartPolicy,
    pub backoff: Backoff,
    /// `None`: never give up for exits alone (Docker's behaviour).
    pub crash_loop: Option<CrashLoop>,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub stop_timeout: Duration,
}

impl Default for Settings {
    /// Docker's defaults: no restart, its backoff, 10 s stop timeout, no crash-loop limit.
    fn default() -> Self {
        Settings {
            policy: RestartPolicy::No,
            backoff: Backoff::default(),
            crash_loop: None,
            stop_timeout: Duration::from_secs(10),
        }
    }
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        self.backoff.validate()
    }
}

/// Something that happened to a supervised container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Its process is running now (first start, or a restart the engine asked for).
    Started,
    /// Its process ended.
    Exited { status: ExitStatus },
    /// A restart failed before the process ran (create or start failed): a failed run of
    /// zero length, so it counts for retries, backoff and the crash-loop limit.
    StartFailed,
    /// The user asked to stop it (`harun stop`, `kill`, `delete --force`): never restart it.
    /// `timeout` overrides the settings' stop timeout (`harun stop --timeout`).
    StopRequested { timeout: Option<Duration> },
    /// The supervisor itself (re)started and loaded this state; `running` says whether it
    /// found the container's process alive (re-adopted) or not.
    DaemonRestart { running: bool },
    /// Its process ended and nobody could read how (an adopted container is not the
    /// supervisor's child): an exit of unknown status, i.e. a failure.
    Lost,
    /// Its health check failed and asks for a restart: stop it (SIGTERM, SIGKILL after the
    /// stop timeout), then restart it as after a failure, whatever the policy says about
    /// exits (backoff, retries and the crash-loop limit still apply). Nothing when it is
    /// not running.
    Unhealthy,
    /// The supervisor shuts down: stop the container, and restart nothing. Not a user stop:
    /// when the supervisor starts again the container starts again
    /// ([`Event::DaemonRestart`]). `timeout` overrides the stop timeout.
    Shutdown { timeout: Option<Duration> },
}

/// What the supervisor should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: keep watching the running container.
    KeepRunning,
    /// Stop the running container: SIGTERM now, SIGKILL after `grace`. Its exit will not
    /// be restarted.
    Terminate { grace: Duration },
    /// Restart (delete + create + start) after this delay; report `Started` or
    /// `StartFailed` afterwards. A later `StayStopped` cancels a pending restart.
    RestartAfter(Duration),
    /// Leave it stopped; nothing to report beyond the reason.
    StayStopped(StopReason),
    /// Stop restarting and report it (an event, the final state).
    GiveUp(GiveUpReason),
}

/// Why a stopped container stays stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The policy is `no`.
    PolicyNo,
    /// It exited with code 0 under `on-failure`.
    Succeeded,
    /// The user stopped it.
    StopRequested,
    /// The engine gave up earlier; only [`Supervision::reset`] (a manual start) undoes it.
    GaveUp,
    /// The supervisor shut down.
    Shutdown,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::PolicyNo => "restart policy is `no`",
            StopReason::Succeeded => "exited successfully (restart policy on-failure)",
            StopReason::StopRequested => "stopped by the user",
            StopReason::GaveUp => "gave up restarting earlier",
            StopReason::Shutdown => "the supervisor shut down",
        })
    }
}

/// Why the engine stopped restarting. Written as a record tagged by its `kind`
/// (`{"kind":"crash-loop","exits":3,"windowMs":10}`); read by [`wire::WireGiveUp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", try_from = "wire::WireGiveUp")]
pub enum GiveUpReason {
    /// `exits` exits happened within `window`.
    #[serde(rename_all = "camelCase")]
    CrashLoop {
        exits: u32,
        #[serde(rename = "windowMs", with = "wire::ms")]
        window: Duration,
    },
    /// on-failure's `retries` consecutive restarts all failed.
    MaxRetries { retries: u32 },
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUpReason::CrashLoop { exits, window } => write!(
                f,
                "crash loop: {exits} exits within {}",
                format_duration(*window)
            ),
            GiveUpReason::MaxRetries { retries } => {
                write!(
                    f,
                    "failed again after {retries} restarts (on-failure:{retries})"
                )
            }
        }
    }
}

/// The last exit the engine saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastExit {
    /// `None`: unknown (the start failed, or it died while no supervisor watched).
    pub status: Option<ExitStatus>,
    #[serde(rename = "atMs")]
    pub at: Timestamp,
    /// How long that run lasted (zero if its start is unknown).
    #[serde(rename = "ranForMs", with = "wire::ms")]
    pub ran_for: Duration,
}

/// The supervision state of one container: plain data, persisted by the daemon.
///
/// Counting, decided here (Docker differs on the second point):
/// - `restart_count` counts every restart the engine decided (the RESTARTS column); only
///   [`reset`](Self::reset) (a manual start) clears it.
/// - A run that lasted at least `backoff.reset_after` resets both the delay (back to
///   `backoff.initial`, as Docker does) and `retries`, so `on-failure:N` means "N failed
///   restarts in a row": a service that crashes once a week is not abandoned after N weeks.
///   Docker never resets its count; a crash loop of longer runs is what
///   [`CrashLoop`] is for.
/// - Only exits the policy would restart count for backoff, retries and the crash-loop
///   window: an exit after a user stop, an exit under `no`, a success under `on-failure`
///   do not.
///
/// Serialised as it is (persist.rs keeps it in `supervision.json`): times and durations in
/// milliseconds, the settings as people write them (see `wire`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Supervision {
    pub settings: Settings,
    /// Restarts decided since supervision began (or since the last manual start).
    pub restart_count: u32,
    /// Restarts since the last run of at least `reset_after`; compared with on-failure's N.
    pub retries: u32,
    /// The delay of the last restart; `None` after a reset (the next one waits `initial`).
    #[serde(rename = "delayMs", with = "wire::opt_ms")]
    pub delay: Option<Duration>,
    /// Times of the exits inside the crash-loop window, oldest first, at most `max_exits`.
    #[serde(rename = "recentExitsMs")]
    pub recent_exits: Vec<Timestamp>,
    /// When the current run started; `None` while the container is not running.
    #[serde(rename = "startedAtMs")]
    pub started_at: Option<Timestamp>,
    pub last_exit: Option<LastExit>,
    /// When the pending restart is due; `None` if none is pending.
    #[serde(rename = "nextRestartAtMs")]
    pub next_restart_at: Option<Timestamp>,
    /// The user stopped the container; cleared by a manual start, or by `always` when the
    /// supervisor starts again.
    pub stop_requested: bool,
    /// Set once the engine gives up; then it only ever says `StayStopped(GaveUp)`.
    pub gave_up: Option<GiveUpReason>,
    /// A health check asked for a restart: the next exit restarts whatever its status.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced_restart: bool,
    /// The supervisor shut down (or is shutting down) while this container was supervised:
    /// nothing restarts until the next supervisor start, which starts it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shutdown: bool,
}

impl Supervision {
    /// Fresh state for a container about to be started; report `Started` once it runs.
    pub fn new(settings: Settings) -> Self {
        Supervision {
            settings,
            restart_count: 0,
            retries: 0,
            delay: None,
            recent_exits: Vec::new(),
            started_at: None,
            last_exit: None,
            next_restart_at: None,
            stop_requested: false,
            gave_up: None,
            forced_restart: false,
            shutdown: false,
        }
    }

    /// A manual start by the user (`docker start` of a stopped container): forgets the stop
    /// request, the give-up, the counters and the backoff; keeps the settings.
    pub fn reset(&mut self) {
        *self = Supervision::new(self.settings);
    }

    /// True while a run is in progress (between `Started` and its exit).
    pub fn is_running(&self) -> bool {
        self.started_at.is_some()
    }

    /// The decision for `event` at `now`, updating the state.
    pub fn on_event(&mut self, event: Event, now: Timestamp) -> Decision {
        match event {
            Event::Started => self.started(now),
            Event::Exited { status } => self.exited(Some(status), now),
            Event::StartFailed => self.exited(None, now),
            Event::StopRequested { timeout } => self.stop(timeout),
            Event::DaemonRestart { running: true } => self.readopted(now),
            Event::DaemonRestart { running: false } => self.restarted_stopped(now),
            Event::Lost => self.exited(None, now),
            Event::Unhealthy => self.unhealthy(),
            Event::Shutdown { timeout } => self.shut_down(timeout),
        }
    }

    fn started(&mut self, now: Timestamp) -> Decision {
        self.next_restart_at = None;
        // A second `Started` for the same run keeps the first start time.
        self.started_at.get_or_insert(now);
        self.keep_or_terminate()
    }

    /// A running container should keep running unless a stop or a give-up says otherwise
    /// (a restart that was already underway when the user asked to stop).
    fn keep_or_terminate(&self) -> Decision {
        if self.stop_requested || self.gave_up.is_some() || self.shutdown {
            return self.terminate(None);
        }
        Decision::KeepRunning
    }

    fn terminate(&self, timeout: Option<Duration>) -> Decision {
        Decision::Terminate {
            grace: timeout.unwrap_or(self.settings.stop_timeout),
        }
    }

    /// An exit (`status` known) or a failed start / unwatched death (`None`: a failure).
    fn exited(&mut self, status: Option<ExitStatus>, now: Timestamp) -> Decision {
        let ran_for = self
            .started_at
            .take()
            .map_or(Duration::ZERO, |start| now.saturating_since(start));
        self.last_exit = Some(LastExit {
            status,
            at: now,
            ran_for,
        });
        self.next_restart_at = None;
        if self.gave_up.is_some() {
            return Decision::StayStopped(StopReason::GaveUp);
        }
        if self.stop_requested {
            self.forced_restart = false;
            return Decision::StayStopped(StopReason::StopRequested);
        }
        if self.shutdown {
            self.forced_restart = false;
            return Decision::StayStopped(StopReason::Shutdown);
        }
        let succeeded = status.is_some_and(ExitStatus::success);
        let forced = std::mem::take(&mut self.forced_restart);
        match self.settings.policy {
            _ if forced => {}
            RestartPolicy::No => return Decision::StayStopped(StopReason::PolicyNo),
            RestartPolicy::OnFailure { .. } if succeeded => {
                return Decision::StayStopped(StopReason::Succeeded)
            }
            _ => {}
        }
        if ran_for >= self.settings.backoff.reset_after {
            self.delay = None;
            self.retries = 0;
        }
        if let Some(reason) = self.record_exit_in_window(now) {
            return self.give_up(reason);
        }
        if let RestartPolicy::OnFailure {
            max_retries: Some(max),
        } = self.settings.policy
        {
            if self.retries >= max {
                return self.give_up(GiveUpReason::MaxRetries { retries: max });
            }
        }
        self.schedule_restart(now)
    }

    /// Adds an exit at `now` to the crash-loop window; the reason to give up if it is full.
    fn record_exit_in_window(&mut self, now: Timestamp) -> Option<GiveUpReason> {
        let Some(limit) = self.settings.crash_loop else {
            self.recent_exits.clear();
            return None;
        };
        self.recent_exits
            .retain(|&at| now.saturating_since(at) <= limit.window);
        self.recent_exits.push(now);
        let max = usize::try_from(limit.max_exits).unwrap_or(usize::MAX);
        let excess = self.recent_exits.len().saturating_sub(max);
        self.recent_exits.drain(..excess);
        (self.recent_exits.len() >= max).then_some(GiveUpReason::CrashLoop {
            exits: limit.max_exits,
            window: limit.window,
        })
    }

    fn give_up(&mut self, reason: GiveUpReason) -> Decision {
        self.gave_up = Some(reason);
        Decision::GiveUp(reason)
    }

    fn schedule_restart(&mut self, now: Timestamp) -> Decision {
        let delay = self.settings.backoff.next_delay(self.delay);
        self.delay = Some(delay);
        self.retries = self.retries.saturating_add(1);
        self.restart_count = self.restart_count.saturating_add(1);
        self.next_restart_at = Some(now.saturating_add(delay));
        Decision::RestartAfter(delay)
    }

    fn unhealthy(&mut self) -> Decision {
        if !self.is_running() {
            return Decision::KeepRunning; // nothing runs: nothing to do
        }
        if self.stop_requested || self.gave_up.is_some() || self.shutdown {
            return self.terminate(None);
        }
        self.forced_restart = true;
        self.terminate(None)
    }

    fn shut_down(&mut self, timeout: Option<Duration>) -> Decision {
        self.shutdown = true;
        self.next_restart_at = None;
        if self.is_running() {
            self.terminate(timeout)
        } else {
            Decision::StayStopped(StopReason::Shutdown)
        }
    }

    fn stop(&mut self, timeout: Option<Duration>) -> Decision {
        self.stop_requested = true;
        self.next_restart_at = None;
        if self.is_running() {
            self.terminate(timeout)
        } else {
            Decision::StayStopped(StopReason::StopRequested)
        }
    }

    /// The supervisor started again and found the container alive.
    fn readopted(&mut self, now: Timestamp) -> Decision {
        self.next_restart_at = None;
        // A shutdown that did not finish: the container runs on under the new supervisor.
        self.shutdown = false;
        // Its real start is unknown: count the run from now (never resets backoff early).
        self.started_at.get_or_insert(now);
        self.keep_or_terminate()
    }

    /// The supervisor started again and found the container not running.
    fn restarted_stopped(&mut self, now: Timestamp) -> Decision {
        if std::mem::take(&mut self.shutdown) {
            return self.start_after_shutdown(now);
        }
        if self.gave_up.is_some() {
            self.forget_unwatched_run(now);
            return Decision::StayStopped(StopReason::GaveUp);
        }
        if self.stop_requested {
            self.forget_unwatched_run(now);
            if self.settings.policy != RestartPolicy::Always {
                return Decision::StayStopped(StopReason::StopRequested);
            }
            // Docker: `always` restarts a user-stopped container when the daemon starts.
            self.stop_requested = false;
            return self.restart_now(now);
        }
        if self.is_running() {
            // It died while nobody watched: an exit of unknown status, i.e. a failure.
            return self.exited(None, now);
        }
        if let Some(due) = self.next_restart_at {
            return Decision::RestartAfter(due.saturating_since(now));
        }
        if self.last_exit.is_none() {
            // Never started: the supervisor died before the first start.
            return self.restart_now(now);
        }
        match self.settings.policy {
            RestartPolicy::No => Decision::StayStopped(StopReason::PolicyNo),
            RestartPolicy::OnFailure { .. } => Decision::StayStopped(StopReason::Succeeded),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => self.restart_now(now),
        }
    }

    /// The previous supervisor shut down cleanly: everything it stopped starts again, the
    /// way a boot starts every enabled service: not a restart (no count, no backoff), and
    /// whatever the policy (a shutdown stop is not an exit the policy judges). What the user
    /// stopped stays stopped unless the policy is `always`; what the engine gave up on stays
    /// given up.
    fn start_after_shutdown(&mut self, now: Timestamp) -> Decision {
        self.forget_unwatched_run(now);
        self.forced_restart = false;
        if self.gave_up.is_some() {
            return Decision::StayStopped(StopReason::GaveUp);
        }
        if self.stop_requested && self.settings.policy != RestartPolicy::Always {
            return Decision::StayStopped(StopReason::StopRequested);
        }
        self.stop_requested = false;
        self.delay = None;
        self.retries = 0;
        self.next_restart_at = Some(now);
        Decision::RestartAfter(Duration::ZERO)
    }

    /// Records the end of a run nobody saw end (status and end time unknown).
    fn forget_unwatched_run(&mut self, now: Timestamp) {
        if self.started_at.take().is_some() {
            self.last_exit = Some(LastExit {
                status: None,
                at: now,
                ran_for: Duration::ZERO,
            });
        }
    }

    /// A start on supervisor start-up: immediate, no backoff, not a retry of a failure.
    fn restart_now(&mut self, now: Timestamp) -> Decision {
        if self.last_exit.is_some() {
            self.restart_count = self.restart_count.saturating_add(1);
        }
        self.next_restart_at = Some(now);
        Decision::RestartAfter(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests;
