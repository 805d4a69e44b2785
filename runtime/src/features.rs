//! The OCI features document (runtime-spec features.md, features-linux.md): what this build
//! of harun supports, generated from the tables the code itself uses — mount options from
//! the option table, namespaces from the namespace table, hooks from the stage list, seccomp
//! from the converter — so it cannot promise what `create` refuses.
//!
//! Only properties of runtime-spec [`crate::OCI_VERSION`] (ociVersionMax) appear: 1.2.0 has
//! no `netDevices` or `memoryPolicy`, and harun refuses both in a config anyway.

use crate::hooks::Stage;
use crate::namespaces;

/// Annotations of config.json that change what harun does (features.md
/// `potentiallyUnsafeConfigAnnotations`; a trailing `.` makes a prefix).
const BEHAVIOUR_ANNOTATIONS: &[&str] = &["run.harun."];

/// The features document as JSON.
pub fn document() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": Stage::ALL.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "mountOptions": crate::rootfs::mount_options(),
        "linux": linux(),
        "annotations": {
            "run.harun.version": env!("CARGO_PKG_VERSION")
        },
        "potentiallyUnsafeConfigAnnotations": BEHAVIOUR_ANNOTATIONS,
    })
}

fn linux() -> serde_json::Value {
    serde_json::json!({
        "namespaces": namespace_names(),
        "capabilities": capability_names(),
        // v2 only; the cgroupfs driver (no systemd); rdma is a v2 controller harun writes.
        "cgroup": {"v1": false, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
        "seccomp": crate::security::seccomp::features(),
        // Labels are not applied (security::lsm says what a label in a config does).
        "apparmor": {"enabled": false},
        "selinux": {"enabled": false},
        "intelRdt": {"enabled": false},
        // mounts[].uidMappings are refused, and so are the idmap/ridmap options.
        "mountExtensions": {"idmap": {"enabled": false}}
    })
}

/// Every namespace type harun creates or joins, by its spec name, sorted.
pub fn namespace_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = namespaces::ALL
        .iter()
        .map(|t| namespaces::spec_name(*t))
        .collect();
    crate::sort::sort(&mut names);
    names
}

/// Every capability harun knows, as `CAP_*` names, in number order (features-linux.md:
/// "including capabilities that might not be supported by the host"; one the running
/// kernel lacks is skipped when applied, as runc does).
pub fn capability_names() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    crate::sort::sort_by_key(&mut all, |c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_known_capabilities_in_order() {
        let names = capability_names();
        assert_eq!(names.first().map(String::as_str), Some("CAP_CHOWN"));
        assert!(names.iter().any(|n| n == "CAP_SYS_ADMIN"));
        assert!(names.iter().any(|n| n == "CAP_CHECKPOINT_RESTORE"));
    }

    #[test]
    fn every_namespace_type_is_listed() {
        assert_eq!(
            namespace_names(),
            ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
        );
    }

    #[test]
    fn only_properties_of_the_spec_version() {
        let doc = document();
        let top: Vec<&String> = doc.as_object().unwrap().keys().collect();
        for key in top {
            assert!(
                [
                    "ociVersionMin",
                    "ociVersionMax",
                    "hooks",
                    "mountOptions",
                    "linux",
                    "annotations",
                    "potentiallyUnsafeConfigAnnotations"
                ]
                .contains(&key.as_str()),
                "{key}"
            );
        }
        assert!(doc["linux"].get("netDevices").is_none());
        assert!(doc["linux"].get("memoryPolicy").is_none());
    }

    #[test]
    fn seccomp_lists_what_the_converter_takes() {
        let s = crate::security::seccomp::features();
        let has = |k: &str, v: &str| s[k].as_array().unwrap().iter().any(|x| x == v);
        assert!(has("actions", "SCMP_ACT_ERRNO") && has("actions", "SCMP_ACT_KILL_PROCESS"));
        assert!(!has("actions", "SCMP_ACT_NOTIFY"), "{s}");
        assert!(has("operators", "SCMP_CMP_MASKED_EQ"));
        assert!(has("knownFlags", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"));
        assert!(!has(
            "supportedFlags",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
        ));
        assert!(has("supportedFlags", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"));
    }
}
