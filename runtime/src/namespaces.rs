//! linux.namespaces: which to create, which to join by path, and joining them.
//!
//! Join paths are opened and type-checked during validation (before any side effect), so a
//! wrong or missing path fails create early with the field named.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::{Error, Result};

/// A namespace to join: its type, the path it came from and an open fd on it.
#[derive(Debug)]
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// The namespace part of a validated spec.
#[derive(Debug)]
pub struct Plan {
    /// CLONE_NEW* flags for the namespaces to create.
    pub new: CloneFlags,
    /// Namespaces to join, in spec order.
    pub joins: Vec<Join>,
}

impl Plan {
    /// True when the container gets (or joins) a namespace of this type.
    pub fn has(&self, typ: LinuxNamespaceType) -> bool {
        self.is_new(typ) || self.joins.iter().any(|j| j.typ == typ)
    }

    pub fn is_new(&self, typ: LinuxNamespaceType) -> bool {
        self.new.contains(flag(typ))
    }

    pub fn join_of(&self, typ: LinuxNamespaceType) -> Option<&Join> {
        self.joins.iter().find(|j| j.typ == typ)
    }

    /// For `--debug`: "new mount pid uts; join network `/proc/42/ns/net`".
    pub fn describe(&self) -> String {
        let mut out = String::from("new");
        for t in ALL.iter().filter(|&&t| self.is_new(t)) {
            out.push(' ');
            out.push_str(spec_name(*t));
        }
        for j in &self.joins {
            out.push_str(&format!(
                "; join {} `{}`",
                spec_name(j.typ),
                j.path.display()
            ));
        }
        out
    }
}

pub fn flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The spec's name of a namespace type (`network`, `mount`, ...).
pub fn spec_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// Every namespace type harun creates and joins (`harun features` lists them).
pub const ALL: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Time,
];

/// Validate linux.namespaces and open the paths to join.
pub fn plan(spec: &Spec) -> Result<Plan> {
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut plan = Plan {
        new: CloneFlags::empty(),
        joins: Vec::new(),
    };
    let mut seen: Vec<LinuxNamespaceType> = Vec::new();
    for (i, ns) in list.iter().enumerate() {
        let typ = ns.typ();
        let field = format!("linux.namespaces[{i}]");
        if seen.contains(&typ) {
            return Err(Error::spec(
                field,
                format!("duplicate namespace type `{}`", spec_name(typ)),
            ));
        }
        seen.push(typ);
        match ns.path() {
            None => plan.new |= flag(typ),
            Some(p) => plan.joins.push(open_join(typ, p, &field)?),
        }
    }
    // Without a `mount` namespace the rootfs is set up in the host's (rootfs::host).
    Ok(plan)
}

fn open_join(typ: LinuxNamespaceType, path: &Path, field: &str) -> Result<Join> {
    let field = format!("{field}.path");
    if !path.is_absolute() {
        return Err(Error::spec(
            field,
            format!("`{}` is not an absolute path", path.display()),
        ));
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            let why = format!("open `{}`: {}", path.display(), crate::error::Cause(&e));
            Error::spec(&field, why)
        })?;
    let fd: OwnedFd = file.into();
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the CLONE_NEW* type of the
    // namespace the fd refers to, or fails with ENOTTY for any other file.
    let got = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
    if got != flag(typ).bits() {
        let what = match CloneFlags::from_bits(got) {
            _ if got < 0 => "not a namespace file".to_string(),
            Some(f) => match ALL.iter().find(|t| flag(**t) == f) {
                Some(t) => format!("a {} namespace", spec_name(*t)),
                None => format!("namespace type {got:#x}"),
            },
            None => format!("namespace type {got:#x}"),
        };
        return Err(Error::spec(
            field,
            format!(
                "`{}` is not a {} namespace (it is {what})",
                path.display(),
                spec_name(typ)
            ),
        ));
    }
    Ok(Join {
        typ,
        path: path.to_path_buf(),
        fd,
    })
}

/// In the container init: join every namespace given by path, except pid (the parent joins
/// that one for its children before cloning). The user namespace first (it owns the others),
/// the mount namespace last, as paths resolved before it still point at the host.
pub fn join_all(plan: &Plan) -> Result<()> {
    let middle = |t: LinuxNamespaceType| {
        !matches!(
            t,
            LinuxNamespaceType::Pid | LinuxNamespaceType::Mount | LinuxNamespaceType::User
        )
    };
    let order = plan
        .join_of(LinuxNamespaceType::User)
        .into_iter()
        .chain(plan.joins.iter().filter(|j| middle(j.typ)))
        .chain(plan.join_of(LinuxNamespaceType::Mount));
    for j in order {
        crate::trace!("join {} namespace `{}`", spec_name(j.typ), j.path.display());
        setns(j.fd.as_fd(), flag(j.typ)).map_err(|e| {
            Error::sys(format!(
                "join {} namespace `{}`",
                spec_name(j.typ),
                j.path.display()
            ))(e)
        })?;
    }
    Ok(())
}

/// Makes the children of this (single-threaded) process start in the pid namespace to join,
/// and puts it back on drop.
pub struct PidForChildren {
    own: Option<OwnedFd>,
}

impl PidForChildren {
    pub fn enter(plan: &Plan) -> Result<Self> {
        let Some(j) = plan.join_of(LinuxNamespaceType::Pid) else {
            return Ok(PidForChildren { own: None });
        };
        let own: OwnedFd = File::open("/proc/self/ns/pid")
            .map_err(Error::io("open", "/proc/self/ns/pid"))?
            .into();
        setns(j.fd.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| Error::sys(format!("join pid namespace `{}`", j.path.display()))(e))?;
        Ok(PidForChildren { own: Some(own) })
    }
}

impl Drop for PidForChildren {
    fn drop(&mut self) {
        if let Some(own) = &self.own {
            // Our own active pid namespace is always a valid target; nothing to report.
            let _ = setns(own.as_fd(), CloneFlags::CLONE_NEWPID);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(namespaces: serde_json::Value) -> Spec {
        let mut v: serde_json::Value = serde_json::from_str(crate::spec::example_json()).unwrap();
        v["linux"]["namespaces"] = namespaces;
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn plans_new_and_joined_namespaces() {
        let p = plan(&spec_with(serde_json::json!([
            {"type": "mount"}, {"type": "uts"},
            {"type": "network", "path": "/proc/self/ns/net"}
        ])))
        .unwrap();
        assert_eq!(p.new, CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS);
        assert!(p.has(LinuxNamespaceType::Network));
        assert!(!p.is_new(LinuxNamespaceType::Network));
        assert!(!p.has(LinuxNamespaceType::Pid));
    }

    #[test]
    fn no_mount_namespace_is_a_plan_too() {
        // The rootfs is then set up in the host's mount namespace (rootfs::host).
        let p = plan(&spec_with(serde_json::json!([{"type": "pid"}]))).unwrap();
        assert!(!p.has(LinuxNamespaceType::Mount));
    }

    #[test]
    fn rejects_bad_namespace_lists() {
        let cases = [
            (
                serde_json::json!([{"type": "mount"}, {"type": "mount"}]),
                "duplicate",
            ),
            (
                serde_json::json!([{"type": "mount"}, {"type": "network", "path": "/nonexistent/ns"}]),
                "linux.namespaces[1].path: open `/nonexistent/ns`",
            ),
            (
                serde_json::json!([{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/uts"}]),
                "is not a network namespace",
            ),
            (
                serde_json::json!([{"type": "mount"}, {"type": "ipc", "path": "/etc/hostname"}]),
                "is not a ipc namespace",
            ),
            (
                serde_json::json!([{"type": "mount"}, {"type": "ipc", "path": "ns/ipc"}]),
                "not an absolute path",
            ),
        ];
        for (list, want) in cases {
            let e = plan(&spec_with(list.clone())).unwrap_err().to_string();
            assert!(e.contains(want), "{list}: {e}");
        }
    }
}
