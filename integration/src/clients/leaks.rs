//! What a client suite leaves behind: mounts, cgroups, processes and runtime state, compared
//! with a snapshot taken before the suite started.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::{mountinfo, procs};

/// The machine before the suite ran.
#[derive(Debug)]
pub struct Snapshot {
    cgroups: BTreeSet<PathBuf>,
    mounts: BTreeSet<(String, u32)>,
}

/// Never walked: the machine's own management lives there (notes/host.md).
const FORBIDDEN: &str = "process_api";
/// Walked this deep below each cgroup mount: deep enough for every client's layout.
const DEPTH: usize = 6;

impl Snapshot {
    pub fn take() -> Snapshot {
        Snapshot {
            cgroups: cgroup_dirs(),
            mounts: mountinfo::current()
                .into_iter()
                .map(|m| (m.mount_point, m.mount_id))
                .collect(),
        }
    }

    /// Everything new since the snapshot that belongs to the suite: mounts mentioning
    /// `dir` or under the clients' run dirs, cgroups (outside other harun tests' `harun/`),
    /// live processes tagged `env_entry` or naming `dir`, entries in `state_dirs`.
    pub fn leaks(&self, dir: &Path, env_entry: &str, state_dirs: &[PathBuf]) -> Vec<String> {
        let mut leaks = Vec::new();
        let d = dir.to_string_lossy();
        for m in mountinfo::current() {
            let new = !self.mounts.contains(&(m.mount_point.clone(), m.mount_id));
            let ours = m.mount_point.contains(d.as_ref())
                || m.source.contains(d.as_ref())
                || [
                    "/run/netns/",
                    "/run/containerd/",
                    "/run/libpod/",
                    "/var/lib/containers/",
                ]
                .iter()
                .any(|p| m.mount_point.starts_with(p));
            if new && ours {
                leaks.push(format!("mount {} ({})", m.mount_point, m.fstype));
            }
        }
        for c in cgroup_dirs().difference(&self.cgroups) {
            leaks.push(format!("cgroup {}", c.display()));
        }
        for (pid, cmdline) in procs::scan(env_entry, &d) {
            leaks.push(format!("process {pid} `{cmdline}`"));
        }
        for s in state_dirs {
            for e in fs::read_dir(s).into_iter().flatten().flatten() {
                leaks.push(format!("runtime state {}", e.path().display()));
            }
        }
        leaks
    }
}

impl Snapshot {
    /// Removes the cgroups a client makes for itself and never removes (podman's
    /// `libpod_parent/conmon`, containerd's per-namespace parent), given relative to each
    /// cgroup mount, deepest first; only new and empty ones can go. Whatever stays is
    /// reported by [`Snapshot::leaks`].
    pub fn remove_client_cgroups(&self, relative: &[&str]) {
        for m in mountinfo::current() {
            if m.fstype != "cgroup" && m.fstype != "cgroup2" {
                continue;
            }
            for rel in relative {
                let dir = Path::new(&m.mount_point).join(rel);
                if dir.is_dir() && !self.cgroups.contains(&dir) {
                    let _ = fs::remove_dir(&dir);
                }
            }
        }
    }
}

/// Every cgroup directory (v1 and v2 mounts), except other harun tests' `harun/` subtree.
fn cgroup_dirs() -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    for m in mountinfo::current() {
        if m.fstype == "cgroup" || m.fstype == "cgroup2" {
            walk(Path::new(&m.mount_point), 0, &mut found);
        }
    }
    found
}

fn walk(dir: &Path, depth: usize, found: &mut BTreeSet<PathBuf>) {
    if depth >= DEPTH {
        return;
    }
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        if name == FORBIDDEN || (depth == 0 && name == "harun") {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let p = e.path();
            walk(&p, depth + 1, found);
            found.insert(p);
        }
    }
}
