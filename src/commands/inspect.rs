//! inspect: a container's state and supervision (policy, restarts, last exit) as JSON.

use crate::output::outln;
use harun_runtime::state::StateRoot;
use harun_runtime::Result;

pub fn run(root: &StateRoot, id: &str) -> Result<i32> {
    let value = harun_supervisor::control::inspect(root, id)?;
    outln!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
    Ok(0)
}
