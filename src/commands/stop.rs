//! stop: SIGTERM, SIGKILL after the timeout; through its supervisor for a supervised
//! container, which then does not restart it.

use crate::output::outln;
use std::time::Duration;

use clap::Args;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};
use harun_supervisor::control;

use crate::log::Logger;

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Time between SIGTERM and SIGKILL: seconds, or a duration (500ms, 1m30s)
    /// [default: the container's stop timeout, 10s]
    #[arg(long, short = 't', value_name = "TIME", allow_hyphen_values = true)]
    pub timeout: Option<String>,
    /// Container IDs
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
}

/// Every container in turn; one that fails does not keep the others (exit 1 at the end).
pub fn run(root: &StateRoot, args: &StopArgs, log: &Logger) -> Result<i32> {
    let timeout = args.timeout.as_deref().map(parse_timeout).transpose()?;
    super::each(&args.ids, log, |id| {
        let stopped = control::stop(root, id, timeout)?;
        outln!("{}", stopped.describe(id));
        Ok(())
    })
}

/// `10` (seconds, as `runc`/`docker stop -t`) or any duration (`500ms`, `1m`).
fn parse_timeout(text: &str) -> Result<Duration> {
    harun_runtime::units::parse_duration(text)
        .map_err(|e| Error::InvalidArgument(format!("--timeout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_seconds_or_durations() {
        assert_eq!(parse_timeout("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_timeout("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_timeout("500ms").unwrap(), Duration::from_millis(500));
        for bad in ["-1", "1.5", "", "10x", "99999999999999999999"] {
            let e = parse_timeout(bad).unwrap_err().to_string();
            assert!(e.starts_with("--timeout: invalid duration"), "{bad}: {e}");
        }
    }
}
