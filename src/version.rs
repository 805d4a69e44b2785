//! `harun --version`: the version, the commit it was built from, the OCI runtime spec it
//! implements and what the build contains.

/// `0.1.0 (commit 0123456789ab)`: `-V`, and the man page's header.
pub const SHORT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HARUN_COMMIT"),
    ")"
);

/// The parts of harun in this build: fixed today (there are no cargo features), named so
/// that a build that drops or adds one says so; `static` for a static binary.
const FEATURES: &str = if cfg!(target_feature = "crt-static") {
    "seccomp, cgroup2, cgroup-device-bpf, overlay-rootfs, supervisor, static"
} else {
    "seccomp, cgroup2, cgroup-device-bpf, overlay-rootfs, supervisor"
};

/// `--version`, as runc prints it: one fact per line.
pub fn long() -> &'static str {
    format!(
        "version {}\ncommit: {}\nspec: {}\nfeatures: {FEATURES}\ntarget: {} ({})",
        env!("CARGO_PKG_VERSION"),
        env!("HARUN_COMMIT"),
        harun_runtime::OCI_VERSION,
        env!("HARUN_TARGET"),
        env!("HARUN_PROFILE"),
    )
    .leak()
}
