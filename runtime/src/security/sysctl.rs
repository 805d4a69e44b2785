//! `linux.sysctl`: which keys a container may set, and writing them under `/proc/sys`.
//!
//! `/proc/sys` is only partly namespaced. Like runc (`libcontainer/configs/validate`), a key
//! is accepted only when it belongs to a namespace the container owns: the System V IPC
//! keys and `fs.mqueue.*` need an ipc namespace, `net.*` a network namespace,
//! `kernel.hostname`/`kernel.domainname` a uts namespace. Anything else would change the
//! host and is rejected before any side effect.
//!
//! Keys follow sysctl(8): `.` separates components, and `/` may be used instead; when the
//! first separator is `/`, the roles swap and a `.` is part of a component (an interface
//! named `eno2.100`: `net/ipv4/conf/eno2.100/rp_filter` = `net.ipv4.conf.eno2/100.rp_filter`).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
use oci_spec::runtime::{Linux, LinuxNamespaceType};

use crate::error::{Error, Result};

/// The namespaces the container has for itself (created, or joined by a path that is not
/// the runtime's own namespace). Decides which sysctl keys it may set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewNamespaces {
    pub ipc: bool,
    pub net: bool,
    pub uts: bool,
}

impl NewNamespaces {
    /// From `linux.namespaces`. A network namespace joined by path counts as the host's when
    /// the path is the runtime's own network namespace (same check as runc's `isHostNetNS`).
    pub fn from_linux(linux: &Linux) -> Result<Self> {
        let mut ns = NewNamespaces::default();
        for (i, entry) in linux.namespaces().iter().flatten().enumerate() {
            match entry.typ() {
                LinuxNamespaceType::Ipc => ns.ipc = true,
                LinuxNamespaceType::Uts => ns.uts = true,
                LinuxNamespaceType::Network => {
                    ns.net = match entry.path() {
                        None => true,
                        Some(path) => !same_file(path, Path::new("/proc/self/ns/net")).map_err(
                            |e| match e {
                                Error::Io { source, .. } => Error::spec(
                                    format!("linux.namespaces[{i}].path"),
                                    format!(
                                        "stat `{}`: {}",
                                        path.display(),
                                        crate::error::Cause(&source)
                                    ),
                                ),
                                other => other,
                            },
                        )?,
                    }
                }
                _ => {}
            }
        }
        Ok(ns)
    }
}

fn same_file(a: &Path, b: &Path) -> Result<bool> {
    let ma = std::fs::metadata(a).map_err(Error::io("stat", a))?;
    let mb = std::fs::metadata(b).map_err(Error::io("stat", b))?;
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

/// The System V IPC keys of the ipc namespace (plus the `fs.mqueue.` prefix).
const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Pure: every key well formed and in a namespace the container owns. Keys are checked in
/// sorted order so the reported error does not depend on hash order.
pub fn validate(sysctl: &HashMap<String, String>, new_ns: &NewNamespaces) -> Result<()> {
    let mut keys: Vec<&String> = sysctl.keys().collect();
    crate::sort::sort(&mut keys);
    for key in keys {
        check_key(key, new_ns).map_err(|reason| Error::spec(field(key), reason))?;
    }
    Ok(())
}

fn field(key: &str) -> String {
    format!("linux.sysctl.\"{key}\"")
}

fn check_key(key: &str, ns: &NewNamespaces) -> std::result::Result<(), String> {
    let components = components(key)?;
    let dotted = components.join(".");
    let (owned, kind) = if IPC_KEYS.contains(&dotted.as_str()) || dotted.starts_with("fs.mqueue.") {
        (ns.ipc, "ipc")
    } else if dotted.starts_with("net.") {
        (ns.net, "network")
    } else if dotted == "kernel.hostname" || dotted == "kernel.domainname" {
        (ns.uts, "uts")
    } else {
        return Err(format!(
            "`{dotted}` is not namespaced: setting it would change the host (a container may \
             set only the IPC keys, fs.mqueue.*, net.*, kernel.hostname, kernel.domainname)"
        ));
    };
    if owned {
        Ok(())
    } else {
        Err(format!(
            "`{dotted}` needs a new {kind} namespace (linux.namespaces has none of its own): \
             setting it would change the host"
        ))
    }
}

/// The components of `key` (a `.` inside one is literal). Rejects bad characters, empty
/// components, `.` and `..` components, so the key can never leave `/proc/sys`.
fn components(key: &str) -> std::result::Result<Vec<String>, String> {
    if key.is_empty() {
        return Err("empty sysctl key".into());
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')))
    {
        return Err(format!(
            "invalid character {c:?} in key (allowed: a-z A-Z 0-9 . _ / -)"
        ));
    }
    let slash_first = key
        .find(['.', '/'])
        .is_some_and(|i| key.as_bytes()[i] == b'/');
    let (sep, literal_dot) = if slash_first { ('/', '.') } else { ('.', '/') };
    let mut out = Vec::new();
    for part in key.split(sep) {
        // Within a component, the other separator stands for a literal dot.
        let part = part.replace(literal_dot, ".");
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!(
                "invalid key: empty, `.` or `..` component `{part}` (keys look like net.ipv4.ip_forward)"
            ));
        }
        out.push(part);
    }
    Ok(out)
}

/// The file under `/proc/sys` for `key` (pure): `net.ipv4.ip_forward` -> `net/ipv4/ip_forward`.
pub fn proc_path(key: &str) -> std::result::Result<PathBuf, String> {
    let mut path = PathBuf::from("/proc/sys");
    for part in components(key)? {
        path.push(part);
    }
    Ok(path)
}

/// Write each value to `/proc/sys/<key>` (inside the container, after its `/proc` is
/// mounted), in sorted key order. Refuses a file that is not on procfs.
pub fn apply(sysctl: &HashMap<String, String>) -> Result<()> {
    let mut entries: Vec<(&String, &String)> = sysctl.iter().collect();
    crate::sort::sort(&mut entries);
    for (key, value) in entries {
        let path = proc_path(key).map_err(|reason| Error::spec(field(key), reason))?;
        // The error names the key too: "open `/proc/sys/net/ipv4/x`" alone does not say
        // which entry of the config asked for it.
        write_proc(&path, value.as_bytes()).map_err(|e| Error::spec(field(key), e.to_string()))?;
    }
    Ok(())
}

fn write_proc(path: &Path, value: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(Error::io("open", path))?;
    let fs = fstatfs(&file).map_err(Error::sys(format!("fstatfs `{}`", path.display())))?;
    if fs.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(Error::Sys {
            what: format!("write `{}`: not on procfs", path.display()),
            errno: nix::errno::Errno::EXDEV,
        });
    }
    file.write_all(value).map_err(Error::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: NewNamespaces = NewNamespaces {
        ipc: false,
        net: false,
        uts: false,
    };
    const ALL: NewNamespaces = NewNamespaces {
        ipc: true,
        net: true,
        uts: true,
    };

    fn check(key: &str, ns: NewNamespaces) -> std::result::Result<(), String> {
        let map = HashMap::from([(key.to_string(), "1".to_string())]);
        validate(&map, &ns).map_err(|e| e.to_string())
    }

    #[test]
    fn namespace_rules() {
        let ipc = NewNamespaces { ipc: true, ..NONE };
        let net = NewNamespaces { net: true, ..NONE };
        let uts = NewNamespaces { uts: true, ..NONE };
        // (key, namespaces that allow it)
        let table: &[(&str, NewNamespaces)] = &[
            ("kernel.msgmax", ipc),
            ("kernel.msgmnb", ipc),
            ("kernel.msgmni", ipc),
            ("kernel.sem", ipc),
            ("kernel.shmall", ipc),
            ("kernel.shmmax", ipc),
            ("kernel.shmmni", ipc),
            ("kernel.shm_rmid_forced", ipc),
            ("fs.mqueue.msg_max", ipc),
            ("fs/mqueue/queues_max", ipc),
            ("net.ipv4.ip_forward", net),
            ("net/ipv4/ip_forward", net),
            ("net.ipv4.conf.eno2/100.rp_filter", net),
            ("kernel.hostname", uts),
            ("kernel.domainname", uts),
        ];
        for (key, allowed_by) in table {
            assert_eq!(check(key, *allowed_by), Ok(()), "{key}");
            assert_eq!(check(key, ALL), Ok(()), "{key}");
            let err = check(key, NONE).unwrap_err();
            assert!(err.contains("needs a new"), "{key}: {err}");
            assert!(
                err.starts_with(&format!("linux.sysctl.\"{key}\": ")),
                "{err}"
            );
            // A namespace of another kind does not help.
            let others = NewNamespaces {
                ipc: !allowed_by.ipc,
                net: !allowed_by.net,
                uts: !allowed_by.uts,
            };
            assert!(check(key, others).is_err(), "{key}");
        }
    }

    #[test]
    fn host_wide_keys_are_rejected_whatever_the_namespaces() {
        for key in [
            "kernel.pid_max",
            "vm.swappiness",
            "fs.file-max",
            "kernel.msgmax2",
            "net",
        ] {
            let err = check(key, ALL).unwrap_err();
            assert!(err.contains("not namespaced"), "{key}: {err}");
        }
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for key in [
            "",
            "net..ipv4",
            ".net.ipv4",
            "net.ipv4.",
            "net.ipv4.conf.//.x",
            "net/ipv4/conf/../x",
            "net/ipv4/conf/./x",
            "net.ipv4.conf.a b",
            "net.ipv4.ip_forward\n",
            "net.ipv4.conf.eth0:1.x",
        ] {
            assert!(check(key, ALL).is_err(), "{key:?} accepted");
        }
    }

    #[test]
    fn keys_map_to_proc_sys_paths() {
        let table = [
            ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward"),
            ("net/ipv4/ip_forward", "/proc/sys/net/ipv4/ip_forward"),
            ("kernel.shm_rmid_forced", "/proc/sys/kernel/shm_rmid_forced"),
            (
                "net.ipv4.conf.eno2/100.rp_filter",
                "/proc/sys/net/ipv4/conf/eno2.100/rp_filter",
            ),
            (
                "net/ipv4/conf/eno2.100/rp_filter",
                "/proc/sys/net/ipv4/conf/eno2.100/rp_filter",
            ),
            (
                "net.ipv6.conf.all.disable_ipv6",
                "/proc/sys/net/ipv6/conf/all/disable_ipv6",
            ),
        ];
        for (key, path) in table {
            assert_eq!(proc_path(key), Ok(PathBuf::from(path)), "{key}");
        }
        assert!(proc_path("net/ipv4/conf/..").is_err());
        assert!(proc_path("net.ipv4.conf./.").is_err());
    }

    #[test]
    fn first_error_is_deterministic() {
        let map: HashMap<String, String> = ["vm.b", "vm.a", "vm.c"]
            .iter()
            .map(|k| (k.to_string(), "1".to_string()))
            .collect();
        let err = validate(&map, &ALL).unwrap_err().to_string();
        assert!(err.starts_with("linux.sysctl.\"vm.a\""), "{err}");
    }
}
