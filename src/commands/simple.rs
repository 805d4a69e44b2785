//! start, state, kill, delete.

use crate::output::outln;
use harun_runtime::container;
use harun_runtime::state::StateRoot;
use harun_runtime::{signal, Result};

use crate::log::Logger;

pub fn start(root: &StateRoot, id: &str, log: &Logger) -> Result<i32> {
    let started = container::start(root, id)?;
    log.warnings(&started.warnings);
    Ok(0)
}

pub fn state(root: &StateRoot, id: &str) -> Result<i32> {
    let st = container::state(root, id)?;
    outln!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
    Ok(0)
}

pub fn kill(root: &StateRoot, id: &str, sig: &str, all: bool) -> Result<i32> {
    let sig = signal::parse(sig)?;
    container::kill(root, id, sig, all)?;
    Ok(0)
}

/// Every container in turn; one that fails does not keep the others (exit 1 at the end).
pub fn delete(root: &StateRoot, ids: &[String], force: bool, log: &Logger) -> Result<i32> {
    super::each(ids, log, |id| {
        // Through the supervisor of a supervised container (stop it, remove its supervision).
        let warnings = harun_supervisor::control::delete(root, id, force)?;
        log.warnings(&warnings);
        Ok(())
    })
}
