//! resume: let a paused container's processes run again.

use clap::Args;
use harun_runtime::cgroups::ops;
use harun_runtime::state::StateRoot;
use harun_runtime::Result;

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// Container ID
    pub id: String,
}

pub fn run(root: &StateRoot, args: &ResumeArgs) -> Result<i32> {
    ops::resume(root, &args.id)?;
    Ok(0)
}
