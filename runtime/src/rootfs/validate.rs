//! Checks of the rootfs-related spec fields, before any side effect.

use std::path::{Component, Path};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use super::options::{self, Opt};
use crate::{Error, Result};

/// See [`super::validate`].
pub(crate) fn validate(spec: &Spec) -> Result<()> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::spec("root", "missing (the container needs a root filesystem)"))?;
    if root.path().as_os_str().is_empty() {
        return Err(Error::spec("root.path", "must not be empty"));
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        mount(m, i)?;
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        device(d, i)?;
    }
    for (name, paths) in [
        ("maskedPaths", linux.masked_paths()),
        ("readonlyPaths", linux.readonly_paths()),
    ] {
        for (i, p) in paths.iter().flatten().enumerate() {
            absolute_clean(Path::new(p), &format!("linux.{name}[{i}]"))?;
        }
    }
    if let Some(p) = linux
        .rootfs_propagation()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if options::propagation(p).is_none() {
            return Err(Error::spec(
                "linux.rootfsPropagation",
                format!(
                    "`{p}` is not one of shared, slave, private, unbindable, rshared, rslave, \
                     rprivate, runbindable"
                ),
            ));
        }
    }
    Ok(())
}

/// Absolute, without `..` (a `..` could only mean a path outside what it names).
fn absolute_clean(p: &Path, field: &str) -> Result<()> {
    if !p.is_absolute() {
        return Err(Error::spec(
            field,
            format!("`{}` is not an absolute path", p.display()),
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(Error::spec(
            field,
            format!("`{}` must not contain `..`", p.display()),
        ));
    }
    Ok(())
}

fn mount(m: &Mount, i: usize) -> Result<()> {
    let dest = m.destination();
    absolute_clean(dest, &format!("mounts[{i}].destination"))?;
    if dest
        .components()
        .all(|c| c == Component::RootDir || c == Component::CurDir)
    {
        return Err(Error::spec(
            format!("mounts[{i}].destination"),
            "must not be `/` (the rootfs is root.path)",
        ));
    }
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(Error::Unsupported(format!(
            "mounts[{i}].uidMappings/gidMappings (id-mapped mounts)"
        )));
    }
    let typ = m.typ().as_deref().unwrap_or_default();
    let opts = m.options().as_deref().unwrap_or_default();
    let bind = typ == "bind"
        || opts
            .iter()
            .any(|o| matches!(options::classify(o), Opt::Bind { .. }));
    for (j, o) in opts.iter().enumerate() {
        let field = || format!("mounts[{i}].options[{j}]");
        match options::classify(o) {
            Opt::Unsupported => {
                return Err(Error::Unsupported(format!("{} `{o}`", field())));
            }
            Opt::Data("") => return Err(Error::spec(field(), "empty option")),
            Opt::CopyUp(true) if typ != "tmpfs" || bind => {
                return Err(Error::spec(
                    field(),
                    "`tmpcopyup` is for tmpfs mounts (type \"tmpfs\")",
                ));
            }
            _ => {}
        }
    }
    if bind {
        if m.source().as_ref().is_none_or(|s| s.as_os_str().is_empty()) {
            return Err(Error::spec(
                format!("mounts[{i}].source"),
                "required for a bind mount",
            ));
        }
    } else if typ.is_empty() {
        return Err(Error::spec(
            format!("mounts[{i}].type"),
            "required unless the mount is a bind mount (option `bind` or `rbind`)",
        ));
    }
    Ok(())
}

fn device(d: &LinuxDevice, i: usize) -> Result<()> {
    let field = |f: &str| format!("linux.devices[{i}].{f}");
    let path = d.path();
    absolute_clean(path, &field("path"))?;
    if !path.starts_with("/dev") || path.components().count() < 3 {
        return Err(Error::spec(
            field("path"),
            format!("`{}` is not under /dev", path.display()),
        ));
    }
    let numbered = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U | LinuxDeviceType::B => true,
        LinuxDeviceType::P => false,
        LinuxDeviceType::A => {
            return Err(Error::spec(
                field("type"),
                "must be one of c, b, u, p (not `a`)",
            ));
        }
    };
    for (name, v) in [("major", d.major()), ("minor", d.minor())] {
        if v < 0 || v > u32::MAX.into() {
            return Err(Error::spec(field(name), format!("{v} is out of range")));
        }
    }
    // The fields default to 0 when absent, and 0:0 is no device.
    if numbered && d.major() == 0 && d.minor() == 0 {
        return Err(Error::spec(
            field("major"),
            format!(
                "major and minor are required for a `{}` device",
                d.typ().as_str()
            ),
        ));
    }
    if let Some(mode) = d.file_mode() {
        if mode & !(libc::S_IFMT | 0o7777) != 0 {
            return Err(Error::spec(
                field("fileMode"),
                format!("{mode:#o} is not a file mode"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_with(patch: serde_json::Value) -> Spec {
        let mut v = json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/etc/hosts", "type": "bind", "source": "/etc/hosts",
                 "options": ["rbind", "ro", "rprivate"]}
            ],
            "linux": {
                "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"],
                "rootfsPropagation": "rslave"
            }
        });
        crate::test_support::merge_json(&mut v, patch);
        serde_json::from_value(v).expect("test spec parses")
    }

    #[test]
    fn accepts_a_good_spec() {
        validate(&spec_with(json!({}))).expect("valid");
        let fifo = json!({"linux": {"devices": [{"path": "/dev/f", "type": "p"}]}});
        validate(&spec_with(fifo)).expect("a fifo needs no numbers");
        let none_bind = json!({"mounts": [
            {"destination": "/data", "type": "none", "source": "data", "options": ["bind"]},
            {"destination": "/x", "source": "/x", "options": ["rbind", "defaults"]}
        ]});
        validate(&spec_with(none_bind)).expect("bind by option");
        // Filesystem data on a bind (podman sends `mode=755`): accepted, as runc does.
        let data_bind = json!({"mounts": [
            {"destination": "/x", "type": "bind", "source": "/x",
             "options": ["rbind", "mode=755", "size=1k"]}
        ]});
        validate(&spec_with(data_bind)).expect("data options on a bind");
        let default_propagation = json!({"linux": {"rootfsPropagation": ""}});
        validate(&spec_with(default_propagation)).expect("\"\" is runc's default");
    }

    #[test]
    fn rejects_bad_fields() {
        let mount = |m: serde_json::Value| json!({ "mounts": [m] });
        let cases: &[(serde_json::Value, &str)] = &[
            (json!({"root": {"path": ""}}), "root.path: must not be empty"),
            (
                mount(json!({"destination": "proc", "type": "proc"})),
                "mounts[0].destination: `proc` is not an absolute path",
            ),
            (
                mount(json!({"destination": "/a/../../etc", "type": "tmpfs"})),
                "mounts[0].destination: `/a/../../etc` must not contain `..`",
            ),
            (
                mount(json!({"destination": "/", "type": "tmpfs"})),
                "mounts[0].destination: must not be `/` (the rootfs is root.path)",
            ),
            (
                mount(json!({"destination": "/x", "source": "x"})),
                "mounts[0].type: required unless the mount is a bind mount (option `bind` or `rbind`)",
            ),
            (
                mount(json!({"destination": "/x", "type": "bind"})),
                "mounts[0].source: required for a bind mount",
            ),
            (
                mount(json!({"destination": "/x", "type": "tmpfs", "options": ["ro", ""]})),
                "mounts[0].options[1]: empty option",
            ),
            (
                mount(json!({"destination": "/x", "type": "proc", "source": "proc",
                    "options": ["tmpcopyup"]})),
                "mounts[0].options[0]: `tmpcopyup` is for tmpfs mounts (type \"tmpfs\")",
            ),
            (
                json!({"linux": {"devices": [{"path": "/dev/x", "type": "a"}]}}),
                "linux.devices[0].type: must be one of c, b, u, p (not `a`)",
            ),
            (
                json!({"linux": {"devices": [{"path": "/dev/x", "type": "c"}]}}),
                "linux.devices[0].major: major and minor are required for a `c` device",
            ),
            (
                json!({"linux": {"devices": [{"path": "/tmp/x", "type": "c", "major": 1}]}}),
                "linux.devices[0].path: `/tmp/x` is not under /dev",
            ),
            (
                json!({"linux": {"devices": [{"path": "/dev", "type": "p"}]}}),
                "linux.devices[0].path: `/dev` is not under /dev",
            ),
            (
                json!({"linux": {"devices": [{"path": "/dev/../x", "type": "p"}]}}),
                "linux.devices[0].path: `/dev/../x` must not contain `..`",
            ),
            (
                json!({"linux": {"devices": [{"path": "/dev/x", "type": "b", "major": -8}]}}),
                "linux.devices[0].major: -8 is out of range",
            ),
            (
                json!({"linux": {"devices": [{"path": "/dev/x", "type": "p", "fileMode": 0o1000000}]}}),
                "linux.devices[0].fileMode: 0o1000000 is not a file mode",
            ),
            (
                json!({"linux": {"maskedPaths": ["proc/kcore"]}}),
                "linux.maskedPaths[0]: `proc/kcore` is not an absolute path",
            ),
            (
                json!({"linux": {"readonlyPaths": ["/proc/sys", "sys"]}}),
                "linux.readonlyPaths[1]: `sys` is not an absolute path",
            ),
            (
                json!({"linux": {"rootfsPropagation": "rbind"}}),
                "linux.rootfsPropagation: `rbind` is not one of shared, slave, private, \
                 unbindable, rshared, rslave, rprivate, runbindable",
            ),
        ];
        for (patch, want) in cases {
            let err = validate(&spec_with(patch.clone())).expect_err(want);
            assert_eq!(err.to_string(), *want);
        }
    }

    #[test]
    fn missing_root_is_named() {
        let mut spec = spec_with(json!({}));
        spec.set_root(None);
        let err = validate(&spec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "root: missing (the container needs a root filesystem)"
        );
    }
}
