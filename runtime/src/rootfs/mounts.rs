//! `mounts[]`: one entry at a time, onto a mount point resolved inside the rootfs.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{stat, SFlag};
use oci_spec::runtime::{Mount, Spec};

use super::copyup;
use super::options::{self, MountOptions};
use super::resolve::{fd_path, Create, Root};
use crate::{mountinfo, Error, Result};

/// How one entry is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A bind of a host path (`rec`: MS_REC).
    Bind { source: PathBuf, rec: bool },
    /// A new filesystem instance of `fstype`.
    Fs { fstype: String, source: PathBuf },
}

/// Mount every `mounts` entry, in order, inside `root`.
pub(crate) fn mount_all(
    spec: &Spec,
    root: &Root,
    bundle: &Path,
    cgroup_ns_new: bool,
) -> Result<()> {
    // Read only if a cgroup mount needs the host's cgroup2 mount point.
    let mut host_cgroup2_mount: Option<Option<PathBuf>> = None;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = options::parse(m.options().as_deref().unwrap_or_default());
        let kind = match kind(m, &opts, bundle, cgroup_ns_new) {
            Some(kind) => kind,
            None => host_cgroup2(&mut host_cgroup2_mount, i)?,
        };
        mount_one(root, i, m.destination(), &kind, &opts)?;
    }
    Ok(())
}

/// Classify an entry (validated already). `None`: a cgroup mount without a cgroup
/// namespace, to be served by a bind of the host's cgroup2 mount.
fn kind(m: &Mount, opts: &MountOptions, bundle: &Path, cgroup_ns_new: bool) -> Option<Kind> {
    let fstype = m.typ().as_deref().unwrap_or_default();
    let source = m.source().clone().unwrap_or_default();
    if fstype == "bind" || opts.bind.is_some() {
        return Some(Kind::Bind {
            source: bundle.join(source), // an absolute source replaces the bundle
            rec: opts.bind == Some(true),
        });
    }
    let (fstype, default_source) = match fstype {
        "cgroup" | "cgroup2" if !cgroup_ns_new => return None,
        "cgroup" | "cgroup2" => ("cgroup2", "cgroup2"),
        other => (other, other),
    };
    let source = if source.as_os_str().is_empty() {
        PathBuf::from(default_source)
    } else {
        source
    };
    Some(Kind::Fs {
        fstype: fstype.into(),
        source,
    })
}

fn host_cgroup2(cache: &mut Option<Option<PathBuf>>, i: usize) -> Result<Kind> {
    if cache.is_none() {
        let text = mountinfo::read()?;
        let found = mountinfo::cgroup2(mountinfo::parse(&text));
        *cache = Some(found.map(|m| PathBuf::from(&*m.mount_point)));
    }
    let source = cache.clone().flatten().ok_or_else(|| {
        Error::Unsupported(format!(
            "mounts[{i}]: a cgroup mount without a cgroup namespace on a host with no cgroup2 \
             hierarchy"
        ))
    })?;
    Ok(Kind::Bind { source, rec: true })
}

/// What mount(2) gets for one entry, and what its mount point must be.
struct Call<'a> {
    source: &'a Path,
    /// None for a bind.
    fstype: Option<&'a str>,
    flags: MsFlags,
    data: Option<&'a str>,
    create: Create,
}

impl<'a> Call<'a> {
    /// The call for mounts[`i`]; a bind's source is looked at (a file is bound onto a file).
    fn of(i: usize, kind: &'a Kind, opts: &'a MountOptions) -> Result<Call<'a>> {
        Ok(match kind {
            Kind::Bind { source, rec } => {
                let create = match stat(source) {
                    Ok(st)
                        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
                            == SFlag::S_IFDIR =>
                    {
                        Create::Dir
                    }
                    Ok(_) => Create::File,
                    Err(e) => {
                        let what = format!("bind source `{}` (mounts[{i}])", source.display());
                        return Err(Error::sys(what)(e));
                    }
                };
                let rec = if *rec {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                // Filesystem data (`mode=755`) is dropped: mount(2) ignores it for a bind.
                Call {
                    source,
                    fstype: None,
                    flags: MsFlags::MS_BIND | rec,
                    data: None,
                    create,
                }
            }
            Kind::Fs { fstype, source } => Call {
                source,
                fstype: Some(fstype.as_str()),
                // A copy-up fills the tmpfs first: mounted writable, read-only after.
                flags: match opts.copy_up {
                    true => opts.flags - MsFlags::MS_RDONLY,
                    false => opts.flags,
                },
                data: Some(opts.data.as_str()).filter(|d| !d.is_empty()),
                create: Create::Dir,
            },
        })
    }
}

fn mount_one(root: &Root, i: usize, dest: &Path, kind: &Kind, opts: &MountOptions) -> Result<()> {
    let d = dest.display();
    let call = Call::of(i, kind, opts)?;
    let what = match call.fstype {
        Some(t) => format!("mount `{t}` on `{d}` (mounts[{i}])"),
        None => format!("bind `{}` on `{d}` (mounts[{i}])", call.source.display()),
    };
    crate::trace!("{what}");
    let point = root
        .resolve_or_create(dest, call.create)
        .map_err(Error::sys(format!(
            "mount point `{d}` in the rootfs (mounts[{i}])"
        )))?;
    let target = fd_path(&point);
    mount(
        Some(call.source),
        target.as_str(),
        call.fstype,
        call.flags,
        call.data,
    )
    .map_err(Error::sys(&what))?;
    after_mount(root, i, dest, &point, call.fstype.is_some(), opts, &what)
}

/// What follows the mount of mounts[`i`] on `dest` (`point`: the directory under it): the
/// copy-up into a tmpfs, the remount of a bind with its flags, the propagation.
fn after_mount(
    root: &Root,
    i: usize,
    dest: &Path,
    point: &OwnedFd,
    is_fs: bool,
    opts: &MountOptions,
    what: &str,
) -> Result<()> {
    let d = dest.display();
    let copy_up = opts.copy_up && is_fs;
    let remount = !is_fs && !opts.flags.is_empty();
    if !remount && !copy_up && opts.propagation.is_empty() {
        return Ok(());
    }
    // The new mount, not the directory under it.
    let top = root.resolve(dest).map_err(Error::sys(format!(
        "reopen `{d}` after mounting (mounts[{i}])"
    )))?;
    if copy_up {
        // `point` still is the image's directory, under the new tmpfs.
        copyup::copy_dir_contents(point.as_fd(), top.as_fd()).map_err(|(entry, e)| {
            Error::sys(format!(
                "tmpcopyup: copy `{}` into the tmpfs on `{d}` (mounts[{i}])",
                dest.join(&entry).display()
            ))(e)
        })?;
        if opts.flags.contains(MsFlags::MS_RDONLY) {
            remount_bind(&fd_path(&top), &top, opts.flags)
                .map_err(Error::sys(format!("remount read-only: {what}")))?;
        }
    }
    if remount {
        remount_bind(&fd_path(&top), &top, opts.flags)
            .map_err(Error::sys(format!("remount {what}")))?;
    }
    for &p in &opts.propagation {
        set_propagation(&top, p).map_err(Error::sys(format!(
            "set propagation {p:?} of `{d}` (mounts[{i}])"
        )))?;
    }
    Ok(())
}

/// Change the propagation type of the mount `fd` is the root of.
fn set_propagation(fd: &OwnedFd, flags: MsFlags) -> nix::Result<()> {
    let none: Option<&str> = None;
    mount(none, fd_path(fd).as_str(), none, flags, none)
}

/// Remount the bind mount `fd` is the root of with `flags` (ro, nosuid, ...). A mount whose
/// flags the kernel locked (inherited from a more privileged mount namespace) refuses to
/// lose them (EPERM): then retry keeping them, as runc does.
/// `target` names the mount for mount(2) (`/proc/self/fd/N` of `fd`, or a plain path).
pub(crate) fn remount_bind(target: &str, fd: &impl AsFd, flags: MsFlags) -> nix::Result<()> {
    let none: Option<&str> = None;
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(none, target, none, base | flags, none) {
        Err(Errno::EPERM) => {
            let kept = options::keep_locked(flags, current_flags(fd)?);
            mount(none, target, none, base | kept, none)
        }
        other => other,
    }
}

/// The mount flags of the mount `fd` is on (fstatvfs works on O_PATH fds since Linux 3.12).
pub(crate) fn current_flags(fd: &impl AsFd) -> nix::Result<MsFlags> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: the fd is open for the duration of the call (borrowed), and `st` points to
    // writable memory of the right type, which fstatvfs fills on success.
    let rc = unsafe { libc::fstatvfs(fd.as_fd().as_raw_fd(), st.as_mut_ptr()) };
    Errno::result(rc)?;
    // SAFETY: fstatvfs returned 0, so it initialised the whole struct.
    let st = unsafe { st.assume_init() };
    Ok(options::flags_from_statvfs(st.f_flag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::MountBuilder;

    fn entry(typ: Option<&str>, source: Option<&str>, opts: &[&str]) -> Mount {
        let mut b = MountBuilder::default().destination("/x");
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some(s) = source {
            b = b.source(s);
        }
        let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        b.options(opts).build().expect("mount entry")
    }

    #[test]
    fn kind_table() {
        let bundle = Path::new("/b");
        let bind = |s: &str, rec| {
            Some(Kind::Bind {
                source: PathBuf::from(s),
                rec,
            })
        };
        let fs = |t: &str, s: &str| {
            Some(Kind::Fs {
                fstype: t.into(),
                source: PathBuf::from(s),
            })
        };
        let cases: &[(Mount, bool, Option<Kind>)] = &[
            (
                entry(Some("proc"), Some("proc"), &[]),
                false,
                fs("proc", "proc"),
            ),
            (
                entry(Some("tmpfs"), None, &["mode=755"]),
                false,
                fs("tmpfs", "tmpfs"),
            ),
            (
                entry(Some("bind"), Some("data"), &[]),
                false,
                bind("/b/data", false),
            ),
            (
                entry(None, Some("/etc/hosts"), &["rbind", "ro"]),
                false,
                bind("/etc/hosts", true),
            ),
            (
                entry(Some("none"), Some("/d"), &["bind"]),
                false,
                bind("/d", false),
            ),
            (
                entry(Some("cgroup"), Some("cgroup"), &["ro"]),
                true,
                fs("cgroup2", "cgroup"),
            ),
            (
                entry(Some("cgroup2"), None, &[]),
                true,
                fs("cgroup2", "cgroup2"),
            ),
            (entry(Some("cgroup"), Some("cgroup"), &[]), false, None),
        ];
        for (m, cgns, want) in cases {
            let opts = options::parse(m.options().as_deref().unwrap_or_default());
            assert_eq!(kind(m, &opts, bundle, *cgns), *want, "{m:?}");
        }
    }
}
