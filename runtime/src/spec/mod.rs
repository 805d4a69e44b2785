//! config.json: loading and whole-spec validation before any side effect.

mod example;

pub use example::{example, example_json};
