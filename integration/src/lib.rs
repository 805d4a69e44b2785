//! Test support for harun: busybox bundles, a runner for the `harun` binary with a private
//! state root per test, leak checks, and small parsers for what containers print
//! (/proc/self/mountinfo, /proc/self/status capabilities, /proc/self/limits).
//!
//! A test reads like this:
//!
//! ```ignore
//! let h = harun_integration::harun!();
//! let mut b = h.bundle();
//! b.sh("echo hello");
//! let out = h.run(&h.id("hello"), &b).ok();
//! assert_eq!(out.stdout, "hello\n");
//! h.assert_clean();
//! ```
//!
//! Every `Harun` owns a temp dir `/tmp/harun-test-XXXXXX` holding its `--root`, its bundles
//! and the captured output; dropping it checks for leaks (state dirs, mounts, processes) and
//! removes the dir.

pub mod caps;
pub mod clients;
pub mod console;
pub mod hostfs;
pub mod init_errors;
pub mod mountinfo;
pub mod netns;
pub mod procs;

mod bundle;
mod rootfs;
mod runner;
mod tempdir;

pub use bundle::Bundle;
pub use rootfs::{busybox_path, make_busybox_rootfs};
pub use runner::{Cmd, Harun, Out, Running, State};
pub use tempdir::TempDir;

/// The environment variable every test bundle's process carries (value: the test's tag),
/// so leak checks find the test's container processes in /proc.
pub const TAG_ENV: &str = "HARUN_TEST_TAG";

/// `Harun::new(env!("CARGO_BIN_EXE_harun"))`: only usable from the `harun` package's tests.
#[macro_export]
macro_rules! harun {
    () => {
        $crate::Harun::new(env!("CARGO_BIN_EXE_harun"))
    };
}
