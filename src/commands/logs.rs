//! logs: a detached supervised container's output, across restarts and rotations.

use clap::Args;
use harun_runtime::state::StateRoot;
use harun_runtime::Result;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing new output until the supervisor ends
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print only the last N lines
    #[arg(long, short = 'n', value_name = "N")]
    pub tail: Option<usize>,
    /// Container ID
    pub id: String,
}

pub fn run(root: &StateRoot, args: &LogsArgs) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    harun_supervisor::control::logs(root, &args.id, args.follow, args.tail, &mut out)?;
    Ok(0)
}
