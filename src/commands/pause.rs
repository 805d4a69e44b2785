//! pause: freeze every process of a container (cgroup.freeze); `state` then says "paused".

use clap::Args;
use harun_runtime::cgroups::ops;
use harun_runtime::state::StateRoot;
use harun_runtime::Result;

#[derive(Args, Debug)]
pub struct PauseArgs {
    /// Container ID
    pub id: String,
}

pub fn run(root: &StateRoot, args: &PauseArgs) -> Result<i32> {
    ops::pause(root, &args.id)?;
    Ok(0)
}
