//! features: the OCI features document.

use crate::output::outln;
use harun_runtime::{features, Result};

pub fn run() -> Result<i32> {
    let doc = features::document();
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(0)
}
