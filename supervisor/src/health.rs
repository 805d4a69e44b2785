//! Health checks: what a check is (`run.harun.health.*` annotations) and the pure state
//! machine that judges its results, Docker's semantics (moby `daemon/health.go`):
//!
//! - the first check runs one `interval` after the container started, then one every
//!   `interval` after the previous one ended;
//! - a check passes when its command exits 0 within `timeout`; anything else (another code,
//!   a signal, the timeout, a failure to start it) is a failed check;
//! - the status starts as `starting`; one pass makes it `healthy`; `retries` failed checks
//!   in a row make it `unhealthy`, except that failures during `start-period` do not count
//!   while the container has never been healthy; a pass makes an unhealthy container
//!   healthy again;
//! - on becoming unhealthy the supervisor does what `on-failure` says: `restart` (stop and
//!   restart it, whatever the restart policy), `kill` (SIGKILL: the restart policy judges
//!   the exit), `stop` (a stop as `harun stop` does) or `none` (report it only).
//!
//! No I/O and no clock here: the supervisor runs the command (inside the container, the way
//! `exec` runs a process), times it, and passes the result and the time in.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::policy::Timestamp;
use crate::{Error, Result};

/// How much of a check's output is kept (Docker keeps 4 KiB too).
pub const MAX_OUTPUT: usize = 4096;

/// What to do when a container becomes unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnFailure {
    /// Stop it and start it again.
    #[default]
    Restart,
    /// SIGKILL it; its restart policy decides what follows.
    Kill,
    /// Stop it for good, as `harun stop` does.
    Stop,
    /// Only report it.
    None,
}

impl FromStr for OnFailure {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        match input {
            "restart" => Ok(OnFailure::Restart),
            "kill" => Ok(OnFailure::Kill),
            "stop" => Ok(OnFailure::Stop),
            "none" => Ok(OnFailure::None),
            _ => Err(Error::invalid(
                "health action",
                input,
                "use restart, kill, stop or none",
            )),
        }
    }
}

impl fmt::Display for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnFailure::Restart => "restart",
            OnFailure::Kill => "kill",
            OnFailure::Stop => "stop",
            OnFailure::None => "none",
        })
    }
}

/// A health check, as the annotations give it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Check {
    /// The command, run inside the container with its process's environment, user and cwd.
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failed checks in a row that make the container unhealthy.
    pub retries: u32,
    /// Time after a start during which failures do not count (until the first pass).
    pub start_period: Duration,
    pub on_failure: OnFailure,
}

impl Check {
    /// Docker's defaults for everything but the command: 30s, 30s, 3, 0; and `restart`.
    pub fn with_cmd(cmd: Vec<String>) -> Check {
        Check {
            cmd,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            retries: 3,
            start_period: Duration::ZERO,
            on_failure: OnFailure::Restart,
        }
    }

    /// Checks the values make sense (each names the annotation it came from).
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        if self.cmd.is_empty() || self.cmd[0].is_empty() {
            return Err(("cmd", "the command must not be empty".into()));
        }
        if self.interval.is_zero() {
            return Err(("interval", "must be at least 1ms".into()));
        }
        if self.timeout.is_zero() {
            return Err(("timeout", "must be at least 1ms".into()));
        }
        if self.retries == 0 {
            return Err(("retries", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// Where a container's health stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    /// No check passed yet since it started.
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Healthy => "healthy",
            Status::Unhealthy => "unhealthy",
        }
    }
}

impl FromStr for Status {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        match input {
            "starting" => Ok(Status::Starting),
            "healthy" => Ok(Status::Healthy),
            "unhealthy" => Ok(Status::Unhealthy),
            _ => Err(Error::invalid(
                "health status",
                input,
                "use starting, healthy or unhealthy",
            )),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub passed: bool,
    /// What it printed (cut to [`MAX_OUTPUT`]), or why it failed to run or timed out.
    pub output: String,
}

/// What a result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    /// Starting or unhealthy → healthy.
    BecameHealthy,
    /// → unhealthy: act as `on_failure` says.
    BecameUnhealthy(OnFailure),
}

/// The health of one run of a container: plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub status: Status,
    /// Failed checks in a row (those that counted).
    pub failing_streak: u32,
    pub last_output: String,
    pub last_at: Option<Timestamp>,
    /// When this run started: the start period counts from here.
    pub started: Timestamp,
    /// Once healthy, the start period is over for good.
    pub ever_healthy: bool,
}

impl Health {
    /// A run that started at `started`.
    pub fn new(started: Timestamp) -> Health {
        Health {
            status: Status::Starting,
            failing_streak: 0,
            last_output: String::new(),
            last_at: None,
            started,
            ever_healthy: false,
        }
    }

    /// The health of a container a new supervisor adopted, as the old one left it: no
    /// start period (it is long running), the status and streak as recorded.
    pub fn resumed(status: Status, failing_streak: u32, now: Timestamp) -> Health {
        Health {
            status,
            failing_streak,
            last_output: String::new(),
            last_at: None,
            started: now,
            ever_healthy: true,
        }
    }

    /// When the next check is due, given that the previous one ended (or the run started)
    /// at `after`.
    pub fn next_check(check: &Check, after: Timestamp) -> Timestamp {
        after.saturating_add(check.interval)
    }

    /// Takes the result of a check that ended at `now`.
    pub fn on_result(&mut self, check: &Check, outcome: Outcome, now: Timestamp) -> Change {
        self.last_output = cut(outcome.output);
        self.last_at = Some(now);
        if outcome.passed {
            self.failing_streak = 0;
            self.ever_healthy = true;
            if self.status == Status::Healthy {
                return Change::None;
            }
            self.status = Status::Healthy;
            return Change::BecameHealthy;
        }
        let in_start_period = !self.ever_healthy
            && now.saturating_since(self.started) < check.start_period
            && self.status == Status::Starting;
        if in_start_period {
            return Change::None;
        }
        self.failing_streak = self.failing_streak.saturating_add(1);
        if self.failing_streak >= check.retries && self.status != Status::Unhealthy {
            self.status = Status::Unhealthy;
            return Change::BecameUnhealthy(check.on_failure);
        }
        Change::None
    }
}

/// `output` cut to [`MAX_OUTPUT`] bytes on a character boundary.
pub fn cut(mut output: String) -> String {
    if output.len() > MAX_OUTPUT {
        let mut end = MAX_OUTPUT;
        while !output.is_char_boundary(end) {
            end -= 1;
        }
        output.truncate(end);
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn check(retries: u32, start_period_ms: u64) -> Check {
        Check {
            retries,
            start_period: Duration::from_millis(start_period_ms),
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(50),
            ..Check::with_cmd(vec!["true".into()])
        }
    }

    const PASS: bool = true;
    const FAIL: bool = false;
    const UNHEALTHY: Change = Change::BecameUnhealthy(OnFailure::Restart);

    /// Feeds (time, passed, expected change, expected status) to a run started at 0.
    fn run(c: &Check, steps: &[(u64, bool, Change, Status)]) -> Health {
        let mut h = Health::new(at(0));
        for (i, &(t, passed, change, status)) in steps.iter().enumerate() {
            let outcome = Outcome {
                passed,
                output: format!("check {i}"),
            };
            assert_eq!(h.on_result(c, outcome, at(t)), change, "step {i}: {h:?}");
            assert_eq!(h.status, status, "step {i}");
        }
        h
    }

    #[test]
    fn retries_failures_in_a_row_make_it_unhealthy_and_a_pass_heals() {
        use Status::*;
        let h = run(
            &check(3, 0),
            &[
                (100, FAIL, Change::None, Starting),
                (200, FAIL, Change::None, Starting),
                (300, FAIL, UNHEALTHY, Unhealthy),
                (400, FAIL, Change::None, Unhealthy), // reported once
                (500, PASS, Change::BecameHealthy, Healthy),
                (600, PASS, Change::None, Healthy),
                (700, FAIL, Change::None, Healthy),
                (800, PASS, Change::None, Healthy), // the streak starts over
                (900, FAIL, Change::None, Healthy),
                (1000, FAIL, Change::None, Healthy),
                (1100, FAIL, UNHEALTHY, Unhealthy),
            ],
        );
        assert_eq!(h.failing_streak, 4 - 1);
        assert_eq!(h.last_output, "check 10");
        assert_eq!(h.last_at, Some(at(1100)));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_the_first_pass() {
        use Status::*;
        run(
            &check(1, 1_000),
            &[
                (100, FAIL, Change::None, Starting),
                (900, FAIL, Change::None, Starting),
                (1_000, FAIL, UNHEALTHY, Unhealthy), // the period is over
            ],
        );
        run(
            &check(1, 1_000),
            &[
                (100, PASS, Change::BecameHealthy, Healthy),
                (200, FAIL, UNHEALTHY, Unhealthy), // healthy once: the period ended
            ],
        );
    }

    #[test]
    fn each_action_is_reported() {
        for action in [
            OnFailure::Restart,
            OnFailure::Kill,
            OnFailure::Stop,
            OnFailure::None,
        ] {
            let c = Check {
                on_failure: action,
                ..check(1, 0)
            };
            let mut h = Health::new(at(0));
            let failed = Outcome {
                passed: false,
                output: String::new(),
            };
            assert_eq!(
                h.on_result(&c, failed, at(5)),
                Change::BecameUnhealthy(action)
            );
            assert_eq!(action.to_string().parse::<OnFailure>(), Ok(action));
        }
        let e = "reboot".parse::<OnFailure>().unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid health action `reboot`: use restart, kill, stop or none"
        );
    }

    #[test]
    fn a_resumed_health_has_no_start_period() {
        let c = check(2, 60_000);
        let mut h = Health::resumed(Status::Healthy, 1, at(10));
        let failed = Outcome {
            passed: false,
            output: String::new(),
        };
        assert_eq!(h.on_result(&c, failed, at(20)), UNHEALTHY);
    }

    #[test]
    fn next_checks_follow_the_interval() {
        let c = check(3, 0);
        assert_eq!(Health::next_check(&c, at(0)), at(100));
        assert_eq!(Health::next_check(&c, at(1_234)), at(1_334));
    }

    #[test]
    fn output_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_OUTPUT); // 2 bytes each
        let cut = cut(long);
        assert!(cut.len() <= MAX_OUTPUT && cut.len() >= MAX_OUTPUT - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(super::cut("ok".into()), "ok");
    }

    #[test]
    fn checks_are_validated() {
        let ok = check(3, 0);
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            (
                Check {
                    cmd: vec![],
                    ..ok.clone()
                },
                "cmd",
            ),
            (
                Check {
                    cmd: vec![String::new()],
                    ..ok.clone()
                },
                "cmd",
            ),
            (
                Check {
                    interval: Duration::ZERO,
                    ..ok.clone()
                },
                "interval",
            ),
            (
                Check {
                    timeout: Duration::ZERO,
                    ..ok.clone()
                },
                "timeout",
            ),
            (
                Check {
                    retries: 0,
                    ..ok.clone()
                },
                "retries",
            ),
        ];
        for (c, field) in cases {
            assert_eq!(c.validate().unwrap_err().0, field);
        }
    }
}
