//! The OCI features document (runtime-spec features.md): what this build of harun supports.

/// The features document as JSON.
pub fn document() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "lazytime", "mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime",
            "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private",
            "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave",
            "runbindable", "rw", "shared", "slave", "strictatime", "suid", "symfollow",
            "sync", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "uts"],
            "capabilities": capability_names(),
            "cgroup": {"v1": false, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
            "seccomp": crate::security::seccomp::features(),
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "run.harun.version": env!("CARGO_PKG_VERSION")
        }
    })
}

/// Every capability the running kernel knows, as `CAP_*` names, in number order.
pub fn capability_names() -> Vec<String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .unwrap_or(40);
    let mut all: Vec<caps::Capability> = caps::all()
        .into_iter()
        .filter(|c| c.index() <= last)
        .collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_known_capabilities_in_order() {
        let names = super::capability_names();
        assert_eq!(names.first().map(String::as_str), Some("CAP_CHOWN"));
        assert!(names.iter().any(|n| n == "CAP_SYS_ADMIN"));
    }
}
