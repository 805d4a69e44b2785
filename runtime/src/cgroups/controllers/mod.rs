//! One small file per cgroup v2 controller, each behind [`Controller`]. A controller turns its
//! part of `linux.resources` into file writes (pure, validated, no I/O); [`ORDER`] is the order
//! in which the files are written. Adding a controller touches its file and one line here.

mod cpu;
mod cpuset;
mod hugetlb;
mod io;
mod memory;
mod pids;
mod rdma;
mod unified;

use oci_spec::runtime::LinuxResources;

use super::resources::Plan;
use crate::{Error, Result};

pub use cpu::{cpu_max, shares_to_weight};
pub use io::blkio_weight_to_io_weight;
pub use memory::swap_to_v2;

/// A cgroup v2 controller: its name and how `linux.resources` maps to its files.
pub(super) trait Controller: Sync {
    /// The controller's name in `cgroup.controllers` (`memory`), or `unified` for the map.
    fn name(&self) -> &'static str;
    /// Append this controller's writes for `r` to `plan`; an invalid value is an error naming
    /// its spec field. Nothing set = nothing appended.
    fn plan(&self, r: &LinuxResources, plan: &mut Plan) -> Result<()>;
}

/// The apply order. cpuset first (the placement), `unified` last: its raw values override
/// what the typed fields wrote, as in runc.
pub(super) const ORDER: &[&dyn Controller] = &[
    &cpuset::Cpuset,
    &cpu::Cpu,
    &memory::Memory,
    &pids::Pids,
    &io::Io,
    &hugetlb::Hugetlb,
    &rdma::Rdma,
    &unified::Unified,
];

/// The spec path of a resources field: `field("memory", "limit")` = `linux.resources.memory.limit`.
pub(super) fn field(section: &str, name: &str) -> String {
    format!("linux.resources.{section}.{name}")
}

/// A v1-style limit as a v2 value: -1 = no limit (`max`), 0 = not set (None), > 0 = itself.
/// Other negative values are invalid. (runc fs2 `numToStr`.)
pub(super) fn limit(field: &str, v: i64) -> Result<Option<String>> {
    match v {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        v if v > 0 => Ok(Some(v.to_string())),
        v => Err(Error::spec(
            field,
            format!("{v} is not a limit (use a positive number, or -1 for none)"),
        )),
    }
}

/// A field cgroup v2 has no file for: refused rather than ignored.
pub(super) fn no_v2_equivalent(field: &str, why: &str) -> Error {
    Error::Unsupported(format!("{field} on cgroup v2 ({why})"))
}

/// A device number from the spec as the kernel's `MAJ:MIN` text.
pub(super) fn device(field: &str, major: i64, minor: i64) -> Result<String> {
    let ok = |n: i64| (0..=i64::from(u32::MAX)).contains(&n);
    if !ok(major) || !ok(minor) {
        return Err(Error::spec(
            field,
            format!("{major}:{minor} is not a device number"),
        ));
    }
    Ok(format!("{major}:{minor}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_map_like_runc() {
        let cases: &[(i64, Option<&str>)] = &[
            (0, None),
            (-1, Some("max")),
            (1, Some("1")),
            (4096, Some("4096")),
        ];
        for (v, want) in cases {
            assert_eq!(limit("f", *v).unwrap().as_deref(), *want, "{v}");
        }
        let e = limit("linux.resources.memory.limit", -2).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.memory.limit: -2"),
            "{e}"
        );
    }

    #[test]
    fn device_numbers_are_checked() {
        assert_eq!(device("f", 8, 0).unwrap(), "8:0");
        assert!(device("f", -1, 0).is_err());
        assert!(device("f", 1, 1 << 33).is_err());
    }

    #[test]
    fn every_controller_has_a_distinct_name_and_unified_is_last() {
        let names: Vec<&str> = ORDER.iter().map(|c| c.name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{names:?}");
        assert_eq!(names.last(), Some(&"unified"));
    }
}
