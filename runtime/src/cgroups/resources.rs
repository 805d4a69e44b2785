//! From `linux.resources` to cgroup v2 file writes.
//!
//! [`plan`] computes every write as a pure function of the spec and validates all of it
//! (errors name the field); [`apply`] then checks that the cgroup has every controller and
//! file the plan needs, and only then writes, each file relative to the cgroup's directory
//! fd. A limit whose controller is missing is an error naming the controller and the cgroup,
//! never a silent no-op.

use std::collections::BTreeSet;

use oci_spec::runtime::LinuxResources;

use super::cgroup::Cgroup;
use super::controllers::ORDER;
use crate::{Error, Result};

/// One value for one cgroup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The controller that provides the file; None for the core `cgroup.*` files.
    pub controller: Option<String>,
    pub file: String,
    pub value: String,
    /// The spec field the value comes from (for error messages).
    pub field: String,
}

/// Every write `linux.resources` asks for, in apply order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub writes: Vec<Write>,
}

impl Plan {
    pub(super) fn push(
        &mut self,
        controller: Option<&str>,
        file: impl Into<String>,
        value: impl Into<String>,
        field: impl Into<String>,
    ) {
        self.writes.push(Write {
            controller: controller.map(str::to_string),
            file: file.into(),
            value: value.into(),
            field: field.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The controllers the plan needs, each with the first field that needs it.
    pub fn controllers(&self) -> Vec<(&str, &str)> {
        let mut seen = BTreeSet::new();
        self.writes
            .iter()
            .filter_map(|w| Some((w.controller.as_deref()?, w.field.as_str())))
            .filter(|(c, _)| seen.insert(*c))
            .collect()
    }

    /// The value the plan leaves in `file` (the last write to it).
    pub fn value(&self, file: &str) -> Option<&str> {
        self.writes
            .iter()
            .rev()
            .find(|w| w.file == file)
            .map(|w| w.value.as_str())
    }
}

/// The writes for `r`, validated as a whole. `devices` is not part of it (see
/// [`super::devices`]).
pub fn plan(r: &LinuxResources) -> Result<Plan> {
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(super::controllers::no_v2_equivalent(
                "linux.resources.network",
                "net_cls and net_prio exist only in cgroup v1",
            ));
        }
    }
    let mut plan = Plan::default();
    for c in ORDER {
        let before = plan.writes.len();
        c.plan(r, &mut plan)?;
        debug_assert!(
            c.name() == "unified"
                || plan.writes[before..]
                    .iter()
                    .all(|w| w.controller.as_deref() == Some(c.name())),
            "{} wrote another controller's file",
            c.name()
        );
    }
    Ok(plan)
}

/// Check `plan` against `cg` (every controller enabled, every file present), then write it.
pub fn apply(cg: &Cgroup, plan: &Plan) -> Result<()> {
    check(cg, plan)?;
    for w in &plan.writes {
        cg.write_raw(&w.file, &w.value)
            .map_err(|errno| Error::Sys {
                what: format!(
                    "{}: write `{}` to `{}`{}",
                    w.field,
                    w.value,
                    cg.path().join(&w.file).display(),
                    hint(w, errno)
                ),
                errno,
            })?;
    }
    Ok(())
}

/// What a user can do about a refused write the kernel explains only with an errno.
fn hint(w: &Write, errno: nix::errno::Errno) -> &'static str {
    match (w.file.as_str(), errno) {
        ("io.weight", nix::errno::Errno::EOPNOTSUPP) => {
            " (a per-device weight needs the io cost model enabled for that device in the \
             root's io.cost.qos)"
        }
        ("io.max" | "io.weight", nix::errno::Errno::ENODEV) => " (no such block device)",
        (f, nix::errno::Errno::EINVAL) if f.starts_with("cpuset.") => {
            " (CPUs or memory nodes the parent cgroup does not have)"
        }
        _ => "",
    }
}

/// Everything `plan` needs is there: its controllers are enabled in `cg` and each file
/// exists (a `unified` key naming no file, a kernel without `cpu.idle`...).
pub fn check(cg: &Cgroup, plan: &Plan) -> Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let enabled = cg.controllers()?;
    for (c, field) in plan.controllers() {
        if !enabled.iter().any(|e| e == c) {
            return Err(unavailable(c, field, cg.path(), &enabled));
        }
    }
    for w in &plan.writes {
        if !cg.has(&w.file) {
            return Err(Error::FailedPrecondition(format!(
                "{}: cgroup file `{}` does not exist in {}",
                w.field,
                w.file,
                cg.path().display()
            )));
        }
    }
    Ok(())
}

/// "linux.resources.memory.limit: cgroup controller `memory` is not available in X
/// (available: hugetlb)".
pub(super) fn unavailable(
    controller: &str,
    field: &str,
    path: &std::path::Path,
    available: &[String],
) -> Error {
    let list = if available.is_empty() {
        "none".to_string()
    } else {
        available.join(" ")
    };
    Error::FailedPrecondition(format!(
        "{field}: cgroup controller `{controller}` is not available in {} (available: {list})",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_field_lands_in_its_file() {
        let r = resources(
            r#"{
            "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10000,
                    "idle": 0, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 42},
            "blockIO": {"weight": 500,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 200}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
            "unified": {"memory.high": "90000000", "cgroup.max.depth": "3"}
        }"#,
        );
        let p = plan(&r).unwrap();
        let want: &[(&str, &str, Option<&str>)] = &[
            ("cpuset.cpus", "0-1", Some("cpuset")),
            ("cpuset.mems", "0", Some("cpuset")),
            ("cpu.weight", "100", Some("cpu")),
            ("cpu.max", "50000 100000", Some("cpu")),
            ("cpu.max.burst", "10000", Some("cpu")),
            ("cpu.idle", "0", Some("cpu")),
            ("memory.swap.max", "104857600", Some("memory")),
            ("memory.max", "104857600", Some("memory")),
            ("memory.low", "52428800", Some("memory")),
            ("pids.max", "42", Some("pids")),
            ("io.weight", "4950", Some("io")),
            ("io.weight", "8:0 1", Some("io")),
            ("io.max", "8:0 rbps=1048576", Some("io")),
            ("io.max", "8:0 wbps=max", Some("io")),
            ("io.max", "8:16 riops=100", Some("io")),
            ("io.max", "8:16 wiops=200", Some("io")),
            ("hugetlb.2MB.max", "4194304", Some("hugetlb")),
            (
                "rdma.max",
                "mlx5_1 hca_handle=3 hca_object=10000",
                Some("rdma"),
            ),
            ("cgroup.max.depth", "3", None),
            ("memory.high", "90000000", Some("memory")),
        ];
        let got: Vec<(&str, &str, Option<&str>)> = p
            .writes
            .iter()
            .map(|w| (w.file.as_str(), w.value.as_str(), w.controller.as_deref()))
            .collect();
        assert_eq!(got, want);
        let ctrls: Vec<&str> = p.controllers().iter().map(|(c, _)| *c).collect();
        assert_eq!(
            ctrls,
            ["cpuset", "cpu", "memory", "pids", "io", "hugetlb", "rdma"]
        );
        assert_eq!(
            p.controllers()[2],
            ("memory", "linux.resources.memory.swap")
        );
    }

    #[test]
    fn nothing_set_is_an_empty_plan() {
        assert!(plan(&resources("{}")).unwrap().is_empty());
        assert!(plan(&resources(
            r#"{"devices": [{"allow": false, "access": "rwm"}]}"#
        ))
        .unwrap()
        .is_empty());
        assert!(
            plan(&resources(r#"{"memory": {}, "cpu": {}, "blockIO": {}}"#))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_values_name_their_field_before_anything_is_written() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"memory": {"limit": -5}}"#,
                "linux.resources.memory.limit",
            ),
            (
                r#"{"memory": {"limit": 100, "swap": 50}}"#,
                "linux.resources.memory.swap",
            ),
            (r#"{"memory": {"swap": 50}}"#, "linux.resources.memory.swap"),
            (
                r#"{"memory": {"swappiness": 10}}"#,
                "linux.resources.memory.swappiness",
            ),
            (
                r#"{"memory": {"disableOOMKiller": true}}"#,
                "linux.resources.memory.disableOOMKiller",
            ),
            (
                r#"{"memory": {"kernelTCP": 1000}}"#,
                "linux.resources.memory.kernelTCP",
            ),
            (r#"{"cpu": {"period": 10}}"#, "linux.resources.cpu.period"),
            (r#"{"cpu": {"quota": 5}}"#, "linux.resources.cpu.quota"),
            (r#"{"cpu": {"idle": 2}}"#, "linux.resources.cpu.idle"),
            (
                r#"{"cpu": {"realtimeRuntime": 100}}"#,
                "linux.resources.cpu.realtimeRuntime",
            ),
            (r#"{"cpu": {"cpus": "0-x"}}"#, "linux.resources.cpu.cpus"),
            (r#"{"cpu": {"mems": "3-1"}}"#, "linux.resources.cpu.mems"),
            (
                r#"{"blockIO": {"weight": 5}}"#,
                "linux.resources.blockIO.weight",
            ),
            (
                r#"{"blockIO": {"leafWeight": 50}}"#,
                "linux.resources.blockIO.leafWeight",
            ),
            (
                r#"{"blockIO": {"throttleReadBpsDevice": [{"major": -3, "minor": 0, "rate": 1}]}}"#,
                "linux.resources.blockIO.throttleReadBpsDevice[0]",
            ),
            (
                r#"{"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}"#,
                "linux.resources.hugepageLimits[0].pageSize",
            ),
            (
                r#"{"rdma": {"a b": {"hcaHandles": 1}}}"#,
                "linux.resources.rdma",
            ),
            (
                r#"{"unified": {"../memory.max": "1"}}"#,
                "linux.resources.unified",
            ),
            (r#"{"network": {"classID": 7}}"#, "linux.resources.network"),
        ];
        for (json, field) in cases {
            let e = plan(&resources(json)).unwrap_err();
            assert!(e.to_string().starts_with(field), "{json}: {e}");
        }
    }

    #[test]
    fn the_last_write_is_the_value() {
        let p = plan(&resources(
            r#"{"memory": {"limit": 1000}, "unified": {"memory.max": "2000"}}"#,
        ))
        .unwrap();
        assert_eq!(p.value("memory.max"), Some("2000"));
        assert_eq!(p.value("pids.max"), None);
    }
}
