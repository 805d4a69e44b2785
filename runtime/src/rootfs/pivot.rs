//! The rootfs as a mount: isolate it from the host's mount propagation, make it a mount
//! point, and switch the process root to it.

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use crate::mountinfo;
use crate::{Error, Result};

/// Step 1's first part, in the new mount namespace: `/` recursively slave (or
/// `propagation`), the rootfs's parent mount private when it is shared (pivot_root and
/// MS_MOVE refuse a shared parent; a bind below a shared mount would reach the host), then
/// the rootfs bound onto itself so that it is a mount point.
///
/// An unbindable `propagation` is left to [`super::finalize`]: nothing can be bound from an
/// unbindable mount (EINVAL), not the rootfs, not a volume, not /dev/null over a masked
/// path. Until then `/` is recursively slave, the default. (runc 1.1.5 applies it here and
/// fails; crun applies `unbindable` after pivot_root and fails `runbindable`.)
pub(crate) fn make_root_mount(rootfs: &Path, propagation: Option<MsFlags>) -> Result<()> {
    let none: Option<&str> = None;
    let flags = propagation
        .filter(|p| !p.contains(MsFlags::MS_UNBINDABLE))
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(none, "/", none, flags, none).map_err(Error::sys(format!(
        "set the propagation of `/` to {flags:?}"
    )))?;
    // After a recursive slave/private/unbindable, no mount is shared any more.
    let all_unshared = flags.contains(MsFlags::MS_REC) && !flags.contains(MsFlags::MS_SHARED);
    if !all_unshared {
        parent_private(rootfs)?;
    }
    bind_onto_itself(rootfs)
}

/// The rootfs bound onto itself, so that it is a mount point of its own. Without a mount
/// namespace this is all of step 1's first part (see [`super::host`]).
pub(crate) fn bind_onto_itself(rootfs: &Path) -> Result<()> {
    let none: Option<&str> = None;
    mount(
        Some(rootfs),
        rootfs,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(Error::sys(format!(
        "bind the rootfs `{}` onto itself",
        rootfs.display()
    )))
}

fn parent_private(rootfs: &Path) -> Result<()> {
    let text = mountinfo::read()?;
    let mounts: Vec<_> = mountinfo::parse(&text).collect();
    let Some(parent) = mountinfo::containing(&mounts, rootfs) else {
        return Ok(());
    };
    if !parent.shared() {
        return Ok(());
    }
    let none: Option<&str> = None;
    let mp = &*parent.mount_point;
    mount(none, mp, none, MsFlags::MS_PRIVATE, none).map_err(Error::sys(format!(
        "make `{mp}` (the mount holding the rootfs) private"
    )))
}

/// Step 2: make `rootfs` the process root. See [`super::enter`].
pub(crate) fn enter(rootfs: &Path, no_pivot: bool, own_mount_ns: bool) -> Result<()> {
    if !own_mount_ns {
        chroot_into(rootfs)
    } else if no_pivot {
        move_root(rootfs)
    } else {
        pivot(rootfs)
    }
}

/// In the host's mount namespace: pivot_root or MS_MOVE would take the host's `/` with
/// them, so only this process changes its root (runc and crun chroot there too).
fn chroot_into(rootfs: &Path) -> Result<()> {
    let r = rootfs.display();
    chdir(rootfs).map_err(Error::sys(format!("chdir to the rootfs `{r}`")))?;
    chroot(".").map_err(Error::sys(format!("chroot to `{r}`")))?;
    chdir("/").map_err(Error::sys("chdir to the new root"))
}

/// pivot_root(".", "."): the old root ends up stacked on the new one; detach it.
/// The fds make sure "." is the old root when unmounting (runc's way; the man page's
/// sanctioned `pivot_root(".", ".")` pattern).
fn pivot(rootfs: &Path) -> Result<()> {
    let r = rootfs.display();
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", dir, Mode::empty()).map_err(Error::sys("open the old root `/`"))?;
    let new = open(rootfs, dir, Mode::empty()).map_err(Error::sys(format!("open rootfs `{r}`")))?;
    fchdir(&new).map_err(Error::sys(format!("chdir to the rootfs `{r}`")))?;
    pivot_root(".", ".").map_err(Error::sys(format!("pivot_root to `{r}`")))?;
    fchdir(&old).map_err(Error::sys("chdir to the old root"))?;
    let none: Option<&str> = None;
    // Slave first: the detach must not propagate to the host's mounts.
    mount(none, ".", none, MsFlags::MS_SLAVE | MsFlags::MS_REC, none)
        .map_err(Error::sys("make the old root rslave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(Error::sys("detach the old root"))?;
    chdir("/").map_err(Error::sys("chdir to the new root"))
}

/// For a rootfs that cannot be pivoted (e.g. on a ramfs): move it over `/` and chroot.
fn move_root(rootfs: &Path) -> Result<()> {
    let r = rootfs.display();
    chdir(rootfs).map_err(Error::sys(format!("chdir to the rootfs `{r}`")))?;
    let none: Option<&str> = None;
    mount(Some(rootfs), "/", none, MsFlags::MS_MOVE, none)
        .map_err(Error::sys(format!("move the rootfs `{r}` to `/`")))?;
    chroot(".").map_err(Error::sys(format!("chroot to `{r}`")))?;
    chdir("/").map_err(Error::sys("chdir to the new root"))
}
