//! /dev inside the container: the default device nodes, `linux.devices`, the standard
//! symlinks and /dev/shm. Skipped when /dev is a bind mount (the host's /dev, typically).

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstatat, makedev, mkdirat, mknodat, umask, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use super::options::{self, Opt};
use super::resolve::{fd_path, Root};
use crate::{Error, Result};

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node<'a> {
    path: &'a Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Devices every container gets (OCI config-linux.md "Default Devices"); the numbers are
/// the kernel's fixed ones (Documentation/admin-guide/devices.txt).
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// (link, target) created when missing.
const SYMLINKS: &[(&str, &str)] = &[
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

/// Populate the container's /dev (called in the host root, before pivot_root).
pub(crate) fn setup(spec: &Spec, root: &Root) -> Result<()> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    if dev_is_bind(mounts) {
        return Ok(());
    }
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    // Modes are exactly as asked: no umask (restored on return).
    let _umask = UmaskGuard(umask(Mode::empty()));
    for &(path, major, minor) in DEFAULT_DEVICES {
        let path = Path::new(path);
        if devices.iter().any(|d| d.path() == path) {
            continue; // linux.devices overrides the default
        }
        let node = Node {
            path,
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        make_node(root, &node, "a default device")?;
    }
    for (i, d) in devices.iter().enumerate() {
        make_node(root, &node(d, i)?, &format!("linux.devices[{i}]"))?;
    }
    symlinks(root, has_devpts(mounts))?;
    shm(root)
}

/// The last mount on /dev is a bind mount (runc's `needsSetupDev`).
fn dev_is_bind(mounts: &[Mount]) -> bool {
    mounts
        .iter()
        .rev()
        .find(|m| m.destination() == Path::new("/dev"))
        .is_some_and(|m| {
            m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| matches!(options::classify(o), Opt::Bind { .. }))
        })
}

fn has_devpts(mounts: &[Mount]) -> bool {
    mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev/pts") && m.typ().as_deref() == Some("devpts"))
}

/// `linux.devices[i]` as a node (validated already; still no panic on bad input).
fn node(d: &LinuxDevice, i: usize) -> Result<Node<'_>> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::spec(
                format!("linux.devices[{i}].type"),
                "`a` is not a device type",
            ))
        }
    };
    let number = |v: i64, field: &str| {
        u64::try_from(v).map_err(|_| {
            Error::spec(
                format!("linux.devices[{i}].{field}"),
                "must not be negative",
            )
        })
    };
    Ok(Node {
        path: d.path(),
        kind,
        major: number(d.major(), "major")?,
        minor: number(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

fn make_node(root: &Root, n: &Node<'_>, what: &str) -> Result<()> {
    let p = n.path.display();
    let (dir, name) = root.parent_of(n.path).map_err(Error::sys(format!(
        "parent directory of `{p}` in the rootfs ({what})"
    )))?;
    remove_old_node(&dir, &name).map_err(Error::sys(format!("replace `{p}` ({what})")))?;
    let dev = makedev(n.major, n.minor);
    match mknodat(
        &dir,
        name.as_os_str(),
        n.kind,
        Mode::from_bits_truncate(n.mode),
        dev,
    ) {
        // Not allowed to create device nodes (a user namespace): bind the host's node.
        Err(Errno::EPERM) if n.kind != SFlag::S_IFIFO => {
            return bind_host_node(&dir, &name, n.path)
                .map_err(Error::sys(format!("bind host device `{p}` ({what})")));
        }
        other => other.map_err(Error::sys(format!("mknod `{p}` ({what})")))?,
    }
    let (uid, gid) = (Some(Uid::from_raw(n.uid)), Some(Gid::from_raw(n.gid)));
    fchownat(
        &dir,
        name.as_os_str(),
        uid,
        gid,
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(Error::sys(format!(
        "chown `{p}` to {}:{} ({what})",
        n.uid, n.gid
    )))
}

/// A device node, fifo or symlink already at `name` is replaced; anything else is kept
/// and reported (EEXIST) rather than deleted from the image.
fn remove_old_node(dir: &OwnedFd, name: &OsStr) -> nix::Result<()> {
    let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other?,
    };
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let replaceable = [
        SFlag::S_IFCHR,
        SFlag::S_IFBLK,
        SFlag::S_IFIFO,
        SFlag::S_IFLNK,
    ];
    if !replaceable.contains(&kind) {
        return Err(Errno::EEXIST);
    }
    unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
}

fn bind_host_node(dir: &OwnedFd, name: &OsStr, host: &Path) -> nix::Result<()> {
    let create = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW;
    drop(openat(dir, name, create | OFlag::O_CLOEXEC, Mode::empty())?);
    let path = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let point = openat(dir, name, path, Mode::empty())?;
    let none: Option<&str> = None;
    mount(
        Some(host),
        fd_path(&point).as_str(),
        none,
        MsFlags::MS_BIND,
        none,
    )
}

fn symlinks(root: &Root, devpts: bool) -> Result<()> {
    let kcore = Path::new("/proc/kcore")
        .exists()
        .then_some(("/dev/core", "/proc/kcore"));
    for &(link, target) in SYMLINKS.iter().chain(kcore.iter()) {
        let (dir, name) = root.parent_of(Path::new(link)).map_err(Error::sys(format!(
            "parent directory of `{link}` in the rootfs"
        )))?;
        match symlinkat(target, &dir, name.as_os_str()) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink `{link}` -> `{target}`"))(e)),
        }
    }
    if devpts {
        // The devpts instance's own ptmx, whatever the image had there.
        let what = "symlink `/dev/ptmx` -> `pts/ptmx`";
        let (dir, name) = root
            .parent_of(Path::new("/dev/ptmx"))
            .map_err(Error::sys(what))?;
        match unlinkat(&dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys(what)(e)),
        }
        symlinkat("pts/ptmx", &dir, name.as_os_str()).map_err(Error::sys(what))?;
    }
    Ok(())
}

/// /dev/shm, if missing: world-writable and sticky like the host's.
fn shm(root: &Root) -> Result<()> {
    let what = "create `/dev/shm` in the rootfs";
    match root.resolve(Path::new("/dev/shm")) {
        Ok(_) => return Ok(()),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys(what)(e)),
    }
    let (dir, name) = root
        .parent_of(Path::new("/dev/shm"))
        .map_err(Error::sys(what))?;
    match mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(0o1777)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(Error::sys(what)(e)),
    }
}

/// Restores the process umask when dropped.
struct UmaskGuard(Mode);

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        umask(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceBuilder, MountBuilder};

    fn mnt(dest: &str, typ: &str, opts: &[&str]) -> Mount {
        let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(typ)
            .options(opts)
            .build()
            .unwrap()
    }

    #[test]
    fn dev_bind_table() {
        let tmpfs = mnt("/dev", "tmpfs", &["mode=755"]);
        let bind = mnt("/dev", "bind", &[]);
        let rbind = mnt("/dev", "none", &["rbind"]);
        let pts = mnt("/dev/pts", "devpts", &[]);
        let cases: &[(&[Mount], bool)] = &[
            (&[], false),
            (std::slice::from_ref(&tmpfs), false),
            (std::slice::from_ref(&bind), true),
            (std::slice::from_ref(&rbind), true),
            (&[bind.clone(), tmpfs.clone()], false), // the last /dev mount counts
            (&[tmpfs.clone(), rbind.clone(), pts.clone()], true),
        ];
        for (mounts, want) in cases {
            assert_eq!(dev_is_bind(mounts), *want, "{mounts:?}");
        }
        assert!(has_devpts(&[tmpfs.clone(), pts]));
        assert!(!has_devpts(&[tmpfs]));
    }

    #[test]
    fn node_from_spec() {
        let d = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .file_mode(0o20666u32)
            .uid(1u32)
            .build()
            .unwrap();
        let n = node(&d, 0).unwrap();
        assert_eq!(
            n,
            Node {
                path: Path::new("/dev/fuse"),
                kind: SFlag::S_IFCHR,
                major: 10,
                minor: 229,
                mode: 0o666,
                uid: 1,
                gid: 0
            }
        );
        let fifo = LinuxDeviceBuilder::default()
            .path("/dev/f")
            .typ(LinuxDeviceType::P)
            .build()
            .unwrap();
        assert_eq!(node(&fifo, 0).unwrap().kind, SFlag::S_IFIFO);
        let neg = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::B)
            .major(-1)
            .build()
            .unwrap();
        let e = node(&neg, 3).unwrap_err().to_string();
        assert_eq!(e, "linux.devices[3].major: must not be negative");
    }
}
