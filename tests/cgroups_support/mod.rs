//! Shared by tests/cgroups_*.rs: the cgroup2 hierarchy the tests run on, the "needs real
//! controllers" scheme, and checks that no cgroup is left behind.
//!
//! Scheme for tests that need cgroup v2 controllers this host does not have (it is hybrid:
//! only `hugetlb` in /sys/fs/cgroup/unified):
//! - they live in tests/cgroups_vm.rs and are named `vm_*`;
//! - each starts with `if !require(&["memory", ...]) { return; }`;
//! - where a controller is missing, `require` FAILS the test naming the controller and how
//!   to run it (`integration/vm/cargo-test cgroups_vm`), unless `HARUN_SKIP_VM_TESTS=1`
//!   says "host run": then it prints why and the test passes without checking anything;
//! - the VM suite runs `integration/vm/cargo-test cgroups_vm` and `... cgroups_host`, where
//!   every controller exists and the variable changes nothing.
//!
//! `cargo test -- --skip vm_` also leaves them out.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use harun_runtime::cgroups::hierarchy::own_cgroup;
use harun_runtime::mountinfo;

/// Set to 1 on a host without the controllers: `vm_*` tests then pass without running.
pub const SKIP_VAR: &str = "HARUN_SKIP_VM_TESTS";

/// Where cgroup2 is mounted (`/sys/fs/cgroup` in the VM, `/sys/fs/cgroup/unified` here).
pub fn mount() -> PathBuf {
    let mi = mountinfo::read().expect("read mountinfo");
    let cgroup2 = mountinfo::cgroup2(mountinfo::parse(&mi)).expect("no cgroup2 mount");
    PathBuf::from(&*cgroup2.mount_point)
}

/// The test process's own cgroup directory (relative cgroupsPaths go under it).
pub fn own_dir() -> PathBuf {
    let own = own_cgroup(&fs::read_to_string("/proc/self/cgroup").unwrap()).unwrap();
    mount().join(own.trim_start_matches('/'))
}

/// The controllers the cgroup2 root offers.
pub fn controllers() -> Vec<String> {
    fs::read_to_string(mount().join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub fn has(controller: &str) -> bool {
    controllers().iter().any(|c| c == controller)
}

/// True when every controller in `needed` exists: run the test. Otherwise fail with a clear
/// message, or with HARUN_SKIP_VM_TESTS=1 print a note and return false (skip).
pub fn require(needed: &[&str]) -> bool {
    let missing: Vec<&str> = needed.iter().copied().filter(|c| !has(c)).collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "needs cgroup v2 controller(s) {} that {} does not offer (it has: {})",
        missing.join(", "),
        mount().display(),
        controllers().join(" ")
    );
    if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
        eprintln!("skipped ({SKIP_VAR}=1): {why}");
        return false;
    }
    panic!(
        "{why}.\nRun it in the cgroup-v2 VM: integration/vm/cargo-test cgroups_vm \
         (see integration/vm/README.md), or set {SKIP_VAR}=1 for a host-only run."
    );
}

/// The default cgroup directory of container `id`.
pub fn cgroup_dir(id: &str) -> PathBuf {
    mount().join("harun").join(id)
}

/// The cgroup v2 path of `pid` (`/harun/ID`), as the host sees it.
pub fn cgroup_of(pid: i32) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    own_cgroup(&text).unwrap_or_default()
}

/// Reads a file of container `id`'s cgroup, trimmed.
pub fn read(id: &str, file: &str) -> String {
    let p = cgroup_dir(id).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The value of `key` in a flat-keyed cgroup file (cpu.stat, memory.events...).
pub fn keyed(path: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Panics if `dir` (a cgroup) still exists, after a moment for a delete in flight.
pub fn assert_gone(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while dir.exists() && Instant::now() < deadline {
        sleep(Duration::from_millis(20));
    }
    assert!(!dir.exists(), "cgroup left behind: {}", dir.display());
}

/// Polls `f` until it returns Some (at most `secs` seconds).
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}
