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
    /// Stream cgroup statistics every DURATION (5s, 500ms, 1m30s) and OOM events, as runc
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
        Some(text) => match harun_runtime::units::parse_duration(text) {
            Ok(d) if d.is_zero() => {
                return Err(Error::InvalidArgument(format!(
                    "--interval: invalid duration `{text}`: must be longer than 0"
                )))
            }
            Ok(d) => d,
            Err(e) => return Err(Error::InvalidArgument(format!("--interval: {e}"))),
        },
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
