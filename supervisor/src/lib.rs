//! harun's supervisor: restart policies and process watching.
//!
//! The core is pure: [`policy::Supervision::on_event`] takes the supervision state, an
//! event and the current time, and returns what to do. No I/O, no clock reads; the
//! watching loop (pidfd + epoll) feeds it events and carries out its decisions.
//!
//! - [`policy`]: restart policies, backoff, crash-loop limit, and the decision engine.
//! - [`annotations`]: the `run.harun.restart*` bundle annotations, with CLI flags on top.
//! - [`engine`]: the supervisor itself, one thread and one epoll loop for any number of
//!   containers: `harun supervise DIR` and `harun run --restart` ([`reactor`]: the epoll
//!   set over signalfd, timerfd, pidfds and sockets; [`timers`]: the deadline queue;
//!   [`detach`]: the detached supervisor process).
//! - [`service`]: services of a directory and their `run.harun.*` annotations; [`health`],
//!   [`deps`], [`rollout`]: health checks, start order, rolling updates (pure, like
//!   [`policy`]); [`bundle`]: the config each replica is created from; [`stdio`]: where
//!   container output goes (a FIFO that outlives the supervisor); [`notify`]: `READY=1`.
//! - [`ctl`]: the control socket's protocol; [`metrics`]: Prometheus text; [`shed`]: memory
//!   given back once idle (the supervisor's and the shim's).
//! - [`persist`]: the supervision dir `ROOT/.supervise/ID` and its record; [`events`]: the
//!   JSON-lines event log; [`logs`]: the rotating container log; [`follow`]: `-f` readers.
//! - [`control`]: what `stop`, `delete`, `inspect`, `list`, `logs`, `events` do from outside.
//! - `shim` (feature `shim`): the containerd shim v2, `containerd-shim-harun-v2`.

use std::fmt;

pub mod annotations;
pub mod bundle;
pub mod control;
pub mod ctl;
pub mod deps;
pub mod detach;
pub mod engine;
pub mod events;
pub mod follow;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod notify;
pub mod persist;
pub mod policy;
pub mod reactor;
pub mod rollout;
pub mod service;
pub mod shed;
#[cfg(feature = "shim")]
pub mod shim;
pub mod stdio;
pub mod timers;

#[cfg(test)]
mod proptests;

pub use annotations::Overrides;
/// Durations as every harun flag and annotation takes them (`harun_runtime::units`).
pub use harun_runtime::units::{format_duration, parse_duration};
pub use policy::{
    Backoff, CrashLoop, Decision, Event, ExitStatus, GiveUpReason, RestartPolicy, Settings,
    StopReason, Supervision, Timestamp,
};

/// Bad supervisor input: a duration, policy, limit, annotation or a combination of settings.
///
/// `Display` reads "ORIGIN: MESSAGE" when the origin (an annotation key, a flag) is known:
/// "annotation `run.harun.restart.delay`: invalid duration `10x`: unknown unit `x` (use ms,
/// s, m, h)". The CLI maps it to its invalid-argument error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    origin: Option<String>,
    message: String,
}

impl Error {
    /// "invalid WHAT `INPUT`: REASON".
    pub(crate) fn invalid(what: &str, input: &str, reason: impl fmt::Display) -> Self {
        Self::new(format!("invalid {what} `{input}`: {reason}"))
    }

    pub(crate) fn new(message: impl Into<String>) -> Self {
        Error {
            origin: None,
            message: message.into(),
        }
    }

    /// Names where the bad value came from: "annotation `run.harun.restart`", "--restart".
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Where the bad value came from, if known.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// What is wrong, without the origin.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{origin}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

/// A duration or size that does not follow harun's grammar.
impl From<harun_runtime::units::Invalid> for Error {
    fn from(e: harun_runtime::units::Invalid) -> Self {
        Error::new(e.to_string())
    }
}

/// Bad supervisor input is invalid input for the runtime's error type (the CLI's).
impl From<Error> for harun_runtime::Error {
    fn from(e: Error) -> Self {
        harun_runtime::Error::InvalidArgument(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
