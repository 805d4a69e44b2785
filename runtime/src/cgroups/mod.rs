//! cgroup v2: the container's cgroup, its resources, device control, freeze, kill, stats.
//!
//! - [`hierarchy`]: the cgroup2 mount, `linux.cgroupsPath` → directory, creating it with the
//!   needed controllers enabled down the tree, removing it (and the empty parents harun made);
//! - [`resources`] and `controllers/`: `linux.resources` → file writes, validated as a whole
//!   before the first write, one small file per controller;
//! - [`devices`]: `linux.resources.devices` → a BPF_PROG_TYPE_CGROUP_DEVICE program;
//! - [`Cgroup`]: one opened cgroup directory: files relative to its fd, processes,
//!   freeze/thaw, kill;
//! - [`stats`] and [`events`]: runc's `events --stats` JSON, the `events` stream with OOMs;
//! - [`ops`]: the commands by container ID (pause, resume, ps, update, events).
//!
//! See README.md here for the rules and the list of supported fields.

mod cgroup;
mod controllers;
pub mod devices;
pub mod events;
pub mod hierarchy;
pub mod ops;
pub mod resources;
pub mod stats;
#[cfg(test)]
mod test_support;

use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::{LinuxResources, Spec};

pub use cgroup::{parse_keyed, Cgroup, FREEZE_TIMEOUT};
pub use controllers::{blkio_weight_to_io_weight, cpu_max, shares_to_weight, swap_to_v2};
pub use hierarchy::{Hierarchy, Record, RECORD_FILE};
pub use resources::{Plan, Write};

use crate::Result;

/// How long removing a cgroup waits for its processes to go.
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Check everything about the cgroup that the spec alone decides (`linux.cgroupsPath`,
/// every `linux.resources` value, the device rules); no I/O.
pub fn validate(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    hierarchy::validate_path(linux.and_then(|l| l.cgroups_path().as_deref()))?;
    let default = LinuxResources::default();
    let r = linux
        .and_then(|l| l.resources().as_ref())
        .unwrap_or(&default);
    resources::plan(r)?;
    devices::rules(r.devices().as_deref())?;
    Ok(())
}

/// A container's cgroup, made and configured by [`setup`].
#[derive(Debug)]
pub struct Setup {
    /// The opened cgroup: its fd goes to clone3 (CLONE_INTO_CGROUP).
    pub cgroup: Cgroup,
    /// What the state keeps about it.
    pub record: Record,
}

/// Make container `id`'s cgroup for `spec` in the running system's cgroup2 hierarchy, note
/// it in the state dir `state_dir` before it exists (for a `delete` after a crash: see
/// `state`'s module doc), write its resources, attach its device program. Nothing is left
/// behind on failure.
pub fn setup(spec: &Spec, id: &str, state_dir: &Path) -> Result<Setup> {
    let h = Hierarchy::detect()?;
    let linux = spec.linux().as_ref();
    let default = LinuxResources::default();
    let r = linux
        .and_then(|l| l.resources().as_ref())
        .unwrap_or(&default);
    let plan = resources::plan(r)?;
    let rules = devices::rules(r.devices().as_deref())?;
    let path = linux.and_then(|l| l.cgroups_path().as_deref());
    let (dir, default_parent) = h.locate(path, id)?;
    crate::trace!("cgroup `{}`", dir.display());
    let (cgroup, record) = h.create(&dir, default_parent, &plan, |r| r.save(state_dir))?;
    let configured = resources::apply(&cgroup, &plan).and_then(|_| devices::apply(&cgroup, &rules));
    if let Err(e) = configured {
        drop(cgroup);
        let _ = record.destroy(REMOVE_TIMEOUT);
        return Err(e);
    }
    Ok(Setup { cgroup, record })
}

/// Send `signal` to every process in the container's cgroup and below (`kill --all`,
/// `delete --force`); a cgroup already gone has nobody to signal.
pub fn signal(record: &Record, signal: i32) -> Result<()> {
    let sig = nix::sys::signal::Signal::try_from(signal)
        .map_err(|_| crate::Error::InvalidArgument(format!("invalid signal {signal}")))?;
    match record.open()? {
        Some(cg) => cg.signal_all(sig),
        None => Ok(()),
    }
}

/// Move `pid` into the cgroup at `path` (when clone3 could not place it there).
pub fn join(path: &Path, pid: i32) -> Result<()> {
    Cgroup::open(path)?.add_proc(pid)
}
