//! `--debug`: one line per step of create, start, exec, kill and delete (namespaces, mounts,
//! cgroup writes, hooks, the init protocol), with the time since harun started, through a
//! sink the caller installs ([`enable`]). Off, a step costs one relaxed atomic load: the
//! [`trace!`](crate::trace!) macro formats nothing unless tracing is on.
//!
//! The container init and an exec'd process's joiner trace too: they are clones of the
//! caller and share its sink (whose fds must be CLOEXEC and must not be stdio, which the
//! init hands to the container). They call [`stop`] before closing the host's fds, so
//! nothing is written to an fd number that may be reused meanwhile.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Where lines go, and the instant their times count from.
type Sink = (fn(&str), Instant);

static ON: AtomicBool = AtomicBool::new(false);
static SINK: OnceLock<Sink> = OnceLock::new();
/// Who writes: empty for harun itself, `init` or `exec` in a container process.
static ROLE: OnceLock<&'static str> = OnceLock::new();

/// Turns tracing on: every step calls `sink` with one line (no newline). Times are measured
/// from `start` (harun's start).
pub fn enable(sink: fn(&str), start: Instant) {
    if SINK.set((sink, start)).is_ok() {
        ON.store(true, Ordering::Relaxed);
    }
}

/// Whether steps are traced.
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// In a container process about to close the host's fds: no more lines from this process.
pub fn stop() {
    ON.store(false, Ordering::Relaxed);
}

/// Names this process in its lines (`init`, `exec`); for the cloned container processes.
pub fn set_role(role: &'static str) {
    let _ = ROLE.set(role);
}

/// Writes one step; use [`trace!`](crate::trace!), which checks [`on`] first.
pub fn emit(step: fmt::Arguments<'_>) {
    let Some((sink, start)) = SINK.get() else {
        return;
    };
    let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    let line = match ROLE.get() {
        Some(role) => format!("{}.{:03}ms {role}: {step}", us / 1000, us % 1000),
        None => format!("{}.{:03}ms {step}", us / 1000, us % 1000),
    };
    sink(&line);
}

/// `trace!("mount {} on {}", src, dst)`: one `--debug` line, formatted only when on.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::trace::on() {
            $crate::trace::emit(format_args!($($arg)*))
        }
    };
}
