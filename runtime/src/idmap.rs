//! User namespaces: linux.uidMappings / gidMappings — validated before anything happens, and
//! written by the parent into /proc/PID/{uid,gid}_map while the init waits.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::namespaces::Plan;
use crate::{Error, Result};

/// The kernel accepts at most this many lines per map (since 4.15).
const MAX_LINES: usize = 340;

/// Mappings belong with a new user namespace and nowhere else.
pub fn validate(spec: &Spec, plan: &Plan) -> Result<()> {
    let linux = spec.linux().as_ref();
    let uid = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or(&[]);
    let gid = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or(&[]);
    let new_user = plan.is_new(LinuxNamespaceType::User);
    if !new_user {
        if !uid.is_empty() || !gid.is_empty() {
            let why = if plan.has(LinuxNamespaceType::User) {
                "the user namespace is joined by path: its mappings exist already"
            } else {
                "needs a `user` namespace in linux.namespaces"
            };
            let field = if uid.is_empty() {
                "linux.gidMappings"
            } else {
                "linux.uidMappings"
            };
            return Err(Error::spec(field, why));
        }
        return Ok(());
    }
    check_map("linux.uidMappings", uid)?;
    check_map("linux.gidMappings", gid)
}

fn check_map(field: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.is_empty() {
        return Err(Error::spec(
            field,
            "a new user namespace needs at least one mapping",
        ));
    }
    if maps.len() > MAX_LINES {
        return Err(Error::spec(
            field,
            format!("more than {MAX_LINES} mappings"),
        ));
    }
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    for (i, m) in maps.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if m.size() == 0 {
            return Err(Error::spec(f, "size must be at least 1"));
        }
        if end(m.container_id(), m.size()) > 1 << 32 || end(m.host_id(), m.size()) > 1 << 32 {
            return Err(Error::spec(
                f,
                "range runs past the largest id (4294967295)",
            ));
        }
        for (j, o) in maps[..i].iter().enumerate() {
            let overlap =
                |a: u32, b: u32| u64::from(a) < end(b, o.size()) && u64::from(b) < end(a, m.size());
            if overlap(m.container_id(), o.container_id()) {
                return Err(Error::spec(
                    f,
                    format!("containerID range overlaps {field}[{j}]"),
                ));
            }
            if overlap(m.host_id(), o.host_id()) {
                return Err(Error::spec(
                    f,
                    format!("hostID range overlaps {field}[{j}]"),
                ));
            }
        }
    }
    Ok(())
}

/// The host ids container root (0) maps to, if it is mapped.
fn host_root(spec: &Spec) -> (Option<u32>, Option<u32>) {
    let linux = spec.linux().as_ref();
    let find = |maps: Option<&Vec<LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
    };
    (
        find(linux.and_then(|l| l.uid_mappings().as_ref())),
        find(linux.and_then(|l| l.gid_mappings().as_ref())),
    )
}

/// In a new user namespace the init sets the rootfs up as its mapped root, which is not root
/// on the host: every directory down to the rootfs must be searchable by that id, or the
/// mounts fail with EACCES. Say so before anything happens.
pub fn check_rootfs_reachable(spec: &Spec, plan: &Plan, rootfs: &Path) -> Result<()> {
    if !plan.is_new(LinuxNamespaceType::User) {
        return Ok(());
    }
    let (uid, gid) = host_root(spec);
    for dir in rootfs.ancestors() {
        let md = fs::metadata(dir).map_err(Error::io("stat", dir))?;
        let mode = md.permissions().mode();
        let ok = mode & 0o001 != 0
            || (Some(md.uid()) == uid && mode & 0o100 != 0)
            || (Some(md.gid()) == gid && mode & 0o010 != 0);
        if !ok {
            return Err(Error::spec(
                "root.path",
                format!(
                    "`{}` is not searchable by the container's root (host uid {}): \
                     make it so (e.g. chmod o+x) or move the bundle",
                    dir.display(),
                    uid.map_or("unmapped".into(), |u| u.to_string())
                ),
            ));
        }
    }
    Ok(())
}

/// The text of a /proc/PID/uid_map: `container host size` per line.
pub fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write the init's uid and gid maps (the parent does this right after clone).
pub fn write_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for (file, maps) in [
        ("uid_map", linux.and_then(|l| l.uid_mappings().as_deref())),
        ("gid_map", linux.and_then(|l| l.gid_mappings().as_deref())),
    ] {
        let path = format!("/proc/{pid}/{file}");
        fs::write(&path, format_map(maps.unwrap_or(&[]))).map_err(Error::io("write", &path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": s}))
            .unwrap()
    }

    #[test]
    fn maps_are_checked() {
        check_map("u", &[m(0, 100_000, 65536)]).unwrap();
        check_map("u", &[m(0, 1000, 1), m(1, 100_000, 65535)]).unwrap();
        let bad: &[(&[LinuxIdMapping], &str)] = &[
            (&[], "at least one mapping"),
            (&[m(0, 1000, 0)], "size must be at least 1"),
            (
                &[m(0, 100, 10), m(5, 500, 10)],
                "u[1]: containerID range overlaps u[0]",
            ),
            (
                &[m(0, 100, 10), m(50, 105, 10)],
                "u[1]: hostID range overlaps u[0]",
            ),
            (&[m(u32::MAX, 0, 2)], "past the largest id"),
        ];
        for (maps, want) in bad {
            let e = check_map("u", maps).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn formats_kernel_map_text() {
        assert_eq!(
            format_map(&[m(0, 1000, 1), m(1, 100_000, 65535)]),
            "0 1000 1\n1 100000 65535\n"
        );
    }
}
