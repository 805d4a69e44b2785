//! harun-runtime: the OCI runtime as a library.
//!
//! Process model and layout: see DESIGN.md. The CLI (`src/`) is a thin layer over
//! [`container`].

pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod exe_guard;
pub mod features;
pub mod hash;
pub mod hooks;
pub mod idmap;
pub mod mountinfo;
pub mod namespaces;
pub mod pidfd;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod security;
pub mod signal;
pub mod sort;
pub mod spec;
pub mod state;
pub mod stderr;
pub mod time;
pub mod timens;
pub mod trace;
pub mod units;
pub mod warning;

pub use error::{Error, ErrorKind, Result};
pub use warning::Warning;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;

/// The OCI runtime spec version harun implements.
pub const OCI_VERSION: &str = "1.2.0";
