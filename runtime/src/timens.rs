//! Time namespaces: linux.timeOffsets (monotonic, boottime).
//!
//! Offsets can only be written before the first process enters a new time namespace, so the
//! (single-threaded) parent unshares one for its children, writes its own
//! /proc/self/timens_offsets, clones the init into it, and goes back (see [`ForChildren`]).

use std::fs::{self, File};
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::namespaces::Plan;
use crate::{Error, Result};

const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

/// timeOffsets needs a new time namespace; only the two clocks the kernel virtualises.
pub fn validate(spec: &Spec, plan: &Plan) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    if !plan.is_new(LinuxNamespaceType::Time) {
        return Err(Error::spec(
            "linux.timeOffsets",
            "needs a new `time` namespace in linux.namespaces",
        ));
    }
    for (clock, off) in offsets {
        let field = format!("linux.timeOffsets.{clock}");
        if clock != "monotonic" && clock != "boottime" {
            return Err(Error::spec(
                field,
                "only `monotonic` and `boottime` can be offset",
            ));
        }
        if off.nanosecs().unwrap_or(0) >= 1_000_000_000 {
            return Err(Error::spec(field, "nanosecs must be below 1000000000"));
        }
    }
    Ok(())
}

/// The text of /proc/PID/timens_offsets, clocks in a fixed order.
pub fn format_offsets(spec: &Spec) -> String {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return String::new();
    };
    ["monotonic", "boottime"]
        .iter()
        .filter_map(|c| offsets.get(*c).map(|o| (c, o)))
        .map(|(c, o)| {
            format!(
                "{c} {} {}\n",
                o.secs().unwrap_or(0),
                o.nanosecs().unwrap_or(0)
            )
        })
        .collect()
}

/// While alive, this process's children are born in a new time namespace with the spec's
/// offsets; dropping it puts children back into our own.
pub struct ForChildren {
    own: Option<OwnedFd>,
}

impl ForChildren {
    pub fn enter(spec: &Spec, plan: &Plan) -> Result<Self> {
        if !plan.is_new(LinuxNamespaceType::Time) {
            return Ok(ForChildren { own: None });
        }
        let own: OwnedFd = File::open("/proc/self/ns/time")
            .map_err(Error::io("open", "/proc/self/ns/time"))?
            .into();
        unshare(CLONE_NEWTIME).map_err(Error::sys("unshare time namespace"))?;
        let guard = ForChildren { own: Some(own) };
        let text = format_offsets(spec);
        if !text.is_empty() {
            fs::write("/proc/self/timens_offsets", text)
                .map_err(Error::io("write", "/proc/self/timens_offsets"))?;
        }
        Ok(guard)
    }
}

impl Drop for ForChildren {
    fn drop(&mut self) {
        if let Some(own) = &self.own {
            // Our own time namespace is always a valid target.
            let _ = setns(own.as_fd(), CLONE_NEWTIME);
        }
    }
}
