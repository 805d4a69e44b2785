//! Security steps of the container init, and their validation.
//!
//! Where each step runs, and in which order: the module doc of process/init.rs (the init)
//! and of process/finish.rs (the end every container process shares). Each step returns
//! `Result`; none may be skipped on error.

pub mod capabilities;
pub mod lsm;
pub mod passwd;
pub mod rlimits;
pub mod seccomp;
pub mod sysctl;
pub mod user;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// The range of `process.oomScoreAdj` (proc(5)).
pub const OOM_SCORE_ADJ_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;

/// Validation before any side effect: `process.user`, `process.capabilities`,
/// `process.rlimits` (soft <= hard, no duplicate types), `process.oomScoreAdj`
/// (-1000..=1000) and `linux.sysctl` (well-formed keys in namespaces the container owns).
///
/// Pure except for one read-only check: a network namespace joined by path is compared with
/// the runtime's own (`/proc/self/ns/net`) when `linux.sysctl` is not empty.
pub fn validate(spec: &Spec) -> Result<()> {
    if let Some(process) = spec.process() {
        user::validate(process.user())?;
        capabilities::validate(process.capabilities().as_ref())?;
        rlimits::validate(process.rlimits().as_deref().unwrap_or_default())?;
        if let Some(adj) = process.oom_score_adj() {
            if !OOM_SCORE_ADJ_RANGE.contains(&adj) {
                return Err(Error::spec(
                    "process.oomScoreAdj",
                    format!("{adj} is outside -1000..=1000"),
                ));
            }
        }
    }
    if let Some(linux) = spec.linux() {
        if let Some(sysctl) = linux.sysctl().as_ref().filter(|s| !s.is_empty()) {
            let ns = sysctl::NewNamespaces::from_linux(linux)?;
            sysctl::validate(sysctl, &ns)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        let mut base = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        });
        crate::test_support::merge_json(&mut base, json);
        serde_json::from_value(base).expect("test spec parses")
    }

    fn check(patch: serde_json::Value) -> std::result::Result<(), String> {
        validate(&spec(patch)).map_err(|e| e.to_string())
    }

    #[test]
    fn good_specs_pass() {
        let good = [
            serde_json::json!({}),
            serde_json::json!({"process": {
                "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6]},
                "capabilities": {
                    "bounding": ["CAP_KILL", "CAP_CHOWN"],
                    "effective": ["CAP_KILL"],
                    "permitted": ["CAP_KILL", "CAP_CHOWN"],
                    "inheritable": [],
                    "ambient": ["CAP_KILL"]
                },
                "rlimits": [
                    {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                    {"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615u64}
                ],
                "oomScoreAdj": -1000
            }}),
            serde_json::json!({"process": {"oomScoreAdj": 1000}}),
            serde_json::json!({"linux": {
                "namespaces": [{"type": "ipc"}, {"type": "network"}, {"type": "uts"}],
                "sysctl": {
                    "kernel.shmmax": "1000",
                    "fs.mqueue.msg_max": "20",
                    "net.ipv4.ip_forward": "1",
                    "kernel.domainname": "example"
                }
            }}),
            // An empty sysctl map needs no namespace.
            serde_json::json!({"linux": {"sysctl": {}}}),
        ];
        for patch in good {
            assert_eq!(check(patch.clone()), Ok(()), "{patch}");
        }
    }

    #[test]
    fn bad_specs_name_the_field() {
        let table = [
            (
                serde_json::json!({"process": {"user": {"umask": 4095}}}),
                "process.user.umask: ",
            ),
            (
                serde_json::json!({"process": {"capabilities": {
                    "effective": ["CAP_SYS_ADMIN"], "permitted": []}}}),
                "process.capabilities.effective: CAP_SYS_ADMIN",
            ),
            (
                serde_json::json!({"process": {"rlimits": [
                    {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                    {"type": "RLIMIT_CPU", "soft": 2, "hard": 1}]}}),
                "process.rlimits[1]: RLIMIT_CPU: soft limit 2 is above hard limit 1",
            ),
            (
                serde_json::json!({"process": {"rlimits": [
                    {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                    {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}]}}),
                "process.rlimits[1]: RLIMIT_NOFILE is set twice",
            ),
            (
                serde_json::json!({"process": {"oomScoreAdj": 1001}}),
                "process.oomScoreAdj: 1001 is outside -1000..=1000",
            ),
            (
                serde_json::json!({"process": {"oomScoreAdj": -1001}}),
                "process.oomScoreAdj: -1001",
            ),
            (
                serde_json::json!({"linux": {"sysctl": {"net.ipv4.ip_forward": "1"}}}),
                "linux.sysctl.\"net.ipv4.ip_forward\": `net.ipv4.ip_forward` needs a new \
                 network namespace",
            ),
            (
                serde_json::json!({"linux": {"sysctl": {"kernel.shmmax": "1"}}}),
                "linux.sysctl.\"kernel.shmmax\": `kernel.shmmax` needs a new ipc namespace",
            ),
            (
                serde_json::json!({"linux": {"sysctl": {"kernel.hostname": "x"}}}),
                "linux.sysctl.\"kernel.hostname\": `kernel.hostname` needs a new uts",
            ),
            (
                serde_json::json!({"linux": {
                    "namespaces": [{"type": "ipc"}, {"type": "network"}, {"type": "uts"}],
                    "sysctl": {"vm.overcommit_memory": "1"}}}),
                "linux.sysctl.\"vm.overcommit_memory\": `vm.overcommit_memory` is not namespaced",
            ),
        ];
        for (patch, want) in table {
            let err = check(patch.clone()).unwrap_err();
            assert!(
                err.starts_with(want),
                "{patch}:\n got  {err}\n want {want}..."
            );
        }
    }

    #[test]
    fn joining_the_runtime_network_namespace_is_the_host_network() {
        let host = serde_json::json!({"linux": {
            "namespaces": [{"type": "network", "path": "/proc/self/ns/net"}],
            "sysctl": {"net.ipv4.ip_forward": "1"}}});
        let err = check(host).unwrap_err();
        assert!(err.contains("needs a new network namespace"), "{err}");
        // Any other namespace file counts as the container's own.
        let other = serde_json::json!({"linux": {
            "namespaces": [{"type": "network", "path": "/proc/self/ns/uts"}],
            "sysctl": {"net.ipv4.ip_forward": "1"}}});
        assert_eq!(check(other), Ok(()));
        let missing = serde_json::json!({"linux": {
            "namespaces": [{"type": "network", "path": "/nonexistent/ns"}],
            "sysctl": {"net.ipv4.ip_forward": "1"}}});
        let err = check(missing).unwrap_err();
        assert!(
            err.starts_with("linux.namespaces[0].path: stat `/nonexistent/ns`"),
            "{err}"
        );
    }
}
