//! SELinux and AppArmor labels: harun applies none. What a label in the spec means then
//! depends on the host, and harun decides as the reference runtimes do on such a host:
//!
//! | field | LSM off on the host | LSM on |
//! |---|---|---|
//! | `linux.mountLabel` | ignored (crun; runc 1.1.5 passes `context=` to tmpfs: EINVAL) | refused, not implemented |
//! | `process.selinuxLabel` | refused (runc: "selinux is disabled or not supported"; crun fails too) | refused, not implemented |
//! | `process.apparmorProfile` | refused (runc and crun fail writing /proc/self/attr/exec) | refused, not implemented |
//!
//! A label is never silently dropped where the host would enforce it.

use std::path::Path;

use nix::sys::statfs::{statfs, FsType};
use oci_spec::runtime::{Linux, Process};

use crate::error::{Error, Result};

/// selinuxfs's f_type (include/uapi/linux/magic.h).
const SELINUX_MAGIC: FsType = FsType(0xf97c_ff8c);

/// Whether SELinux is enabled: selinuxfs is mounted where libselinux looks for it.
pub fn selinux_enabled() -> bool {
    ["/sys/fs/selinux", "/selinux"]
        .iter()
        .any(|p| statfs(*p).is_ok_and(|s| s.filesystem_type() == SELINUX_MAGIC))
}

/// Whether AppArmor is enabled (the test runc's apparmor.IsEnabled makes).
pub fn apparmor_enabled() -> bool {
    let flag = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled");
    flag.is_ok_and(|f| f.starts_with('Y')) && Path::new("/sys/kernel/security/apparmor").exists()
}

/// Which LSMs the host runs, for [`validate_process`] and [`validate_linux`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub selinux: bool,
    pub apparmor: bool,
}

impl Host {
    pub fn detect() -> Host {
        Host {
            selinux: selinux_enabled(),
            apparmor: apparmor_enabled(),
        }
    }
}

/// `process.selinuxLabel` and `process.apparmorProfile` (see the module table). Pure.
pub fn validate_process(p: &Process, host: Host) -> Result<()> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if set(p.selinux_label()) {
        return Err(refusal("process.selinuxLabel", "SELinux", host.selinux));
    }
    if set(p.apparmor_profile()) {
        return Err(refusal(
            "process.apparmorProfile",
            "AppArmor",
            host.apparmor,
        ));
    }
    Ok(())
}

/// `linux.mountLabel` (see the module table). Pure.
pub fn validate_linux(l: &Linux, host: Host) -> Result<()> {
    let label = l.mount_label().as_deref().is_some_and(|s| !s.is_empty());
    if label && host.selinux {
        return Err(not_implemented("linux.mountLabel", "SELinux"));
    }
    Ok(())
}

fn refusal(field: &str, lsm: &str, enabled: bool) -> Error {
    if enabled {
        not_implemented(field, lsm)
    } else {
        Error::spec(
            field,
            format!("{lsm} is disabled or not supported on this host"),
        )
    }
}

fn not_implemented(field: &str, lsm: &str) -> Error {
    Error::Unsupported(format!(
        "{field} ({lsm} labels are not implemented, and this host enforces {lsm})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OFF: Host = Host {
        selinux: false,
        apparmor: false,
    };
    const ON: Host = Host {
        selinux: true,
        apparmor: true,
    };

    fn process(v: serde_json::Value) -> Process {
        let mut base = json!({"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}});
        base.as_object_mut()
            .unwrap()
            .extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn linux(v: serde_json::Value) -> Linux {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn decisions_per_host() {
        let label = "system_u:object_r:container_file_t:s0:c1,c2";
        let mount = linux(json!({ "mountLabel": label }));
        assert!(validate_linux(&mount, OFF).is_ok());
        assert_eq!(
            validate_linux(&mount, ON).unwrap_err().to_string(),
            "linux.mountLabel (SELinux labels are not implemented, and this host enforces \
             SELinux): not supported by harun"
        );
        assert!(validate_linux(&linux(json!({"mountLabel": ""})), ON).is_ok());

        let se = process(json!({ "selinuxLabel": label }));
        assert_eq!(
            validate_process(&se, OFF).unwrap_err().to_string(),
            "process.selinuxLabel: SELinux is disabled or not supported on this host"
        );
        assert!(validate_process(&se, ON)
            .unwrap_err()
            .to_string()
            .starts_with("process.selinuxLabel (SELinux labels are not implemented"));
        let aa = process(json!({"apparmorProfile": "docker-default"}));
        assert_eq!(
            validate_process(&aa, OFF).unwrap_err().to_string(),
            "process.apparmorProfile: AppArmor is disabled or not supported on this host"
        );
        assert!(validate_process(&process(json!({"apparmorProfile": ""})), OFF).is_ok());
        assert!(validate_process(&process(json!({})), ON).is_ok());
    }
}
