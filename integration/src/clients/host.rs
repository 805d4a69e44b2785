//! Facts about the machine a client suite runs on, and the skip reasons they give.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether this is integration/vm's guest (its kernel command line names the control dir).
pub fn in_test_vm() -> bool {
    fs::read_to_string("/proc/cmdline").is_ok_and(|c| c.contains("harun.ctl="))
}

/// `d`, stretched for the emulated VM (processes start ~60-90x slower there).
pub fn patience(d: Duration) -> Duration {
    if in_test_vm() {
        d * 20
    } else {
        d
    }
}

/// The cgroup2 mount: /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one.
pub fn cgroup2_mount() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.controllers").exists())
}

/// Whether /sys/fs/cgroup itself is cgroup v2 (what podman and containerd look at).
pub fn is_unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Controllers of the cgroup2 root.
pub fn v2_controllers() -> Vec<String> {
    cgroup2_mount()
        .and_then(|m| fs::read_to_string(m.join("cgroup.controllers")).ok())
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// None when every controller in `names` is in the cgroup2 tree, else why a check that
/// needs them is skipped.
pub fn lacks_controllers(names: &[&str]) -> Option<String> {
    let have = v2_controllers();
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !have.iter().any(|h| h == n))
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "this host's cgroup v2 tree has no {} controller (it has: {}); the cgroup-v2 VM runs this",
            missing.join(", "),
            if have.is_empty() { "none".to_string() } else { have.join(" ") }
        ))
    }
}

/// None on a pure cgroup-v2 host, else why a check that reads the clients' cgroup view
/// (podman stats, ctr metrics: they read cgroup v1 files on a hybrid host) is skipped.
pub fn lacks_unified() -> Option<String> {
    (!is_unified()).then(|| {
        "cgroups here are hybrid: the client reads the container's stats from cgroup v1, \
         while a cgroup-v2 runtime's container lives in the v2 tree; the cgroup-v2 VM runs this"
            .to_string()
    })
}

/// capability(7) number of CAP_SYS_RESOURCE.
const CAP_SYS_RESOURCE: u32 = 24;

/// Whether CAP_SYS_RESOURCE is in this process's bounding set (raising hard rlimits needs it).
pub fn has_cap_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|bits| bits & (1 << CAP_SYS_RESOURCE) != 0)
}

/// The hard limit of `resource` for this process.
pub fn hard_limit(resource: nix::sys::resource::Resource) -> u64 {
    nix::sys::resource::getrlimit(resource).map_or(0, |(_, hard)| hard)
}

/// The absolute path of `program` on PATH, if there is one.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// None when every program is on PATH, else the skip reason.
pub fn lacks_programs(programs: &[&str]) -> Option<String> {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "not installed: {} (integration/run-tests installs them)",
            missing.join(", ")
        )
    })
}
