//! events: a supervised container's lifecycle events as JSON lines; and runc's meaning:
//! `--stats` prints the cgroup statistics once, `--interval D` (or any container harun does
//! not supervise) streams them every D with an `oom` event per OOM kill, until the container
//! has no process left.

use crate::output::outln;
use clap::Args;
use std::io::Write;
use std::time::Duration;

use harun_runtime::cgroups::ops;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Keep printing new events until the supervisor ends
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print the container's cgroup statistics instead (as runc)
    #[arg(long)]
    pub stats: bool,
    /// Stream cgroup statistics every DURATION (5s, 500ms...) and OOM events, as runc
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Container ID
    pub id: String,
}

pub fn run(root: &StateRoot, args: &EventsArgs) -> Result<i32> {
    if args.stats {
        return stats(root, args);
    }
    if args.interval.is_some() || harun_supervisor::control::find(root, &args.id)?.is_none() {
        return stream(root, args);
    }
    let mut out = std::io::stdout().lock();
    harun_supervisor::control::events(root, &args.id, args.follow, &mut out)?;
    Ok(0)
}

/// `events --stats ID`: cgroup statistics, runc's meaning.
fn stats(root: &StateRoot, args: &EventsArgs) -> Result<i32> {
    outln!("{}", ops::stats(root, &args.id)?);
    Ok(0)
}

/// runc's `events [--interval D] ID`: stats every D (default 5s) and OOM kills, one JSON
/// object per line.
fn stream(root: &StateRoot, args: &EventsArgs) -> Result<i32> {
    let interval = match &args.interval {
        Some(text) => parse_duration(text).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "--interval `{text}`: not a duration above zero like 5s, 500ms or 1m30s"
            ))
        })?,
        None => Duration::from_secs(5),
    };
    let mut out = std::io::stdout().lock();
    ops::events(root, &args.id, interval, &mut |event| {
        writeln!(out, "{event}")
            .and_then(|_| out.flush())
            .map_err(Error::io("write", "stdout"))
    })?;
    Ok(0)
}

/// A Go-style duration (runc's flag type): numbers with units h, m, s, ms, us (or µs), ns,
/// e.g. `1m30s`, `500ms`, `2.5s`. Zero is refused.
fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * secs;
        rest = &rest[u..];
    }
    (total > 0.0 && total < 1e9).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_writes_them() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("5s", Some(Duration::from_secs(5))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("2.5s", Some(Duration::from_millis(2500))),
            ("1h", Some(Duration::from_secs(3600))),
            ("250us", Some(Duration::from_micros(250))),
            ("0s", None),
            ("5", None),
            ("s", None),
            ("", None),
            ("5x", None),
            ("-1s", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), *want, "{text:?}");
        }
    }
}
