//! Whole-spec validation: everything that can be checked before a side effect is checked
//! here, so a bad bundle fails with the field named and nothing created.

use crate::security::seccomp::Filter;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::{hooks, idmap, namespaces, rootfs, security, timens, Error, Result};

/// Validate `spec` for a bundle in `bundle_dir`; returns the canonical rootfs path and the
/// namespace plan (join paths opened and checked, see [`namespaces::plan`]).
pub fn validate(
    spec: &Spec,
    bundle_dir: &Path,
) -> Result<(PathBuf, namespaces::Plan, Option<Filter>)> {
    version(spec)?;
    let rootfs = root(spec, bundle_dir)?;
    process(spec)?;
    unsupported(spec)?;
    let plan = namespaces::plan(spec)?;
    uts(spec, &plan)?;
    idmap::validate(spec, &plan)?;
    idmap::check_rootfs_reachable(spec, &plan, &rootfs)?;
    timens::validate(spec, &plan)?;
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        let owned = security::sysctl::NewNamespaces {
            ipc: plan.has(LinuxNamespaceType::Ipc),
            net: plan.has(LinuxNamespaceType::Network),
            uts: plan.has(LinuxNamespaceType::Uts),
        };
        security::sysctl::validate(sysctl, &owned)?;
    }
    rootfs::validate(spec)?;
    crate::cgroups::validate(spec)?;
    security::validate(spec)?;
    // Compiled here, once: the init installs this very program.
    let seccomp = Filter::from_spec(spec)?;
    hooks::validate(spec)?;
    annotations(spec)?;
    Ok((rootfs, plan, seccomp))
}

fn version(spec: &Spec) -> Result<()> {
    let v = spec.version();
    let major = v.split('.').next().unwrap_or("");
    if v.is_empty() {
        return Err(Error::spec(
            "ociVersion",
            "missing or empty (harun implements 1.x)",
        ));
    }
    if major != "1" {
        return Err(Error::spec(
            "ociVersion",
            format!("unsupported version `{v}` (harun implements 1.x)"),
        ));
    }
    Ok(())
}

fn root(spec: &Spec, bundle_dir: &Path) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::spec("root", "missing (the container needs a root filesystem)"))?;
    let path = root.path();
    if path.as_os_str().is_empty() {
        return Err(Error::spec("root.path", "must not be empty"));
    }
    if path.is_relative() && escapes(path) {
        return Err(Error::spec(
            "root.path",
            format!(
                "`{}` lies outside the bundle (use an absolute path for that)",
                path.display()
            ),
        ));
    }
    let joined = bundle_dir.join(path);
    let canon = std::fs::canonicalize(&joined).map_err(|e| {
        let why = format!("`{}`: {}", joined.display(), crate::error::Cause(&e));
        Error::spec("root.path", why)
    })?;
    if !canon.is_dir() {
        return Err(Error::spec(
            "root.path",
            format!("`{}` is not a directory", canon.display()),
        ));
    }
    if canon == Path::new("/") {
        return Err(Error::spec(
            "root.path",
            "the host's `/` cannot be a container root",
        ));
    }
    Ok(canon)
}

/// True when a relative path climbs out of its base with `..` (lexically; a symlink inside
/// the bundle pointing elsewhere is the bundle author's choice, as in runc).
fn escapes(path: &Path) -> bool {
    let mut depth = 0i32;
    for c in path.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Validate a process to `exec` in a container created from `config` (as if it were the
/// container's own process).
pub fn validate_process(config: &Spec, process: &oci_spec::runtime::Process) -> Result<()> {
    let mut spec = config.clone();
    spec.set_process(Some(process.clone()));
    self::process(&spec)?;
    unsupported_process(process, security::lsm::Host::detect())?;
    security::validate(&spec)
}

fn process(spec: &Spec) -> Result<()> {
    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::spec("process", "missing (nothing to run)"))?;
    let args = p.args().as_deref().unwrap_or(&[]);
    match args.first() {
        None => return Err(Error::spec("process.args", "must not be empty")),
        Some(a) if a.is_empty() => return Err(Error::spec("process.args[0]", "must not be empty")),
        Some(_) => {}
    }
    if !p.cwd().is_absolute() {
        return Err(Error::spec(
            "process.cwd",
            format!("`{}` is not an absolute path", p.cwd().display()),
        ));
    }
    if p.cwd().components().any(|c| c == Component::ParentDir) {
        return Err(Error::spec("process.cwd", "must not contain `..`"));
    }
    for (i, kv) in p.env().as_deref().unwrap_or(&[]).iter().enumerate() {
        match kv.split_once('=') {
            Some((k, _)) if !k.is_empty() => {}
            _ => {
                return Err(Error::spec(
                    format!("process.env[{i}]"),
                    format!("`{kv}` is not KEY=VALUE"),
                ))
            }
        }
        if kv.contains('\0') {
            return Err(Error::spec(
                format!("process.env[{i}]"),
                "contains a NUL byte",
            ));
        }
    }
    if args.iter().any(|a| a.contains('\0')) {
        return Err(Error::spec("process.args", "contains a NUL byte"));
    }
    if p.user()
        .username()
        .as_deref()
        .is_some_and(|u| !u.is_empty())
    {
        return Err(Error::spec(
            "process.user.username",
            "is for Windows; use uid and gid",
        ));
    }
    Ok(())
}

/// Fields harun does not implement yet: a clear error, never a silent no-op. Labels are
/// decided per host ([`security::lsm`]).
fn unsupported(spec: &Spec) -> Result<()> {
    let host = security::lsm::Host::detect();
    if let Some(p) = spec.process() {
        unsupported_process(p, host)?;
    }
    if let Some(l) = spec.linux() {
        let found = unsupported_linux(l);
        if let Some(first) = found.first() {
            return Err(Error::Unsupported(format!("{first} (not yet implemented)")));
        }
        security::lsm::validate_linux(l, host)?;
    }
    Ok(())
}

/// The process fields harun does not implement: for the container's process and for an
/// `exec`'d one alike.
fn unsupported_process(p: &oci_spec::runtime::Process, host: security::lsm::Host) -> Result<()> {
    let found = [
        ("process.scheduler", p.scheduler().is_some()),
        ("process.ioPriority", p.io_priority().is_some()),
        ("process.execCPUAffinity", p.exec_cpu_affinity().is_some()),
    ];
    if let Some((first, _)) = found.iter().find(|(_, set)| *set) {
        return Err(Error::Unsupported(format!("{first} (not yet implemented)")));
    }
    security::lsm::validate_process(p, host)
}

/// The names of the `linux` fields set that harun does not implement, in spec order.
/// netDevices and memoryPolicy are runtime-spec 1.3 fields that oci-spec parses.
fn unsupported_linux(l: &oci_spec::runtime::Linux) -> Vec<&'static str> {
    [
        (
            "linux.netDevices",
            l.net_devices().as_ref().is_some_and(|d| !d.is_empty()),
        ),
        ("linux.intelRdt", l.intel_rdt().is_some()),
        ("linux.memoryPolicy", l.memory_policy().is_some()),
        ("linux.personality", l.personality().is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

fn uts(spec: &Spec, plan: &namespaces::Plan) -> Result<()> {
    let owns_uts = plan.has(LinuxNamespaceType::Uts);
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            if !owns_uts {
                return Err(Error::spec(
                    field,
                    "cannot be set without a `uts` namespace in linux.namespaces",
                ));
            }
            if v.len() > 64 || v.contains('\0') {
                return Err(Error::spec(field, format!("`{v}` is not a valid name")));
            }
        }
    }
    Ok(())
}

fn annotations(spec: &Spec) -> Result<()> {
    if let Some(a) = spec.annotations() {
        if a.keys().any(|k| k.is_empty()) {
            return Err(Error::spec("annotations", "keys must not be empty"));
        }
    }
    Ok(())
}
