//! The container's filesystem view: mounts, devices, pivot_root, masked and read-only paths.
//!
//! [`validate`] (before any side effect, in `create`), then in the container init, in its
//! new mount namespace: [`prepare`] (still in the host root), [`enter`] (switch root),
//! [`finalize`] (inside the new root). What comes between them: process/init.rs.
//!
//! Every path inside the rootfs is resolved without leaving it ([`resolve`]): mounts go
//! onto `/proc/self/fd/N` of an O_PATH fd, never onto a path string the image could
//! redirect with a symlink.

mod copyup;
mod devices;
pub mod host;
mod mounts;
pub mod options;
pub mod overlay;
mod paths;
mod pivot;
pub(crate) mod resolve;
mod validate;

use std::path::Path;

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

use crate::{Error, Result};
use resolve::{Create, Root};

/// The mount option names harun implements, sorted (`harun features` `mountOptions`).
pub fn mount_options() -> Vec<&'static str> {
    options::recognized()
}

/// Pure validation, before any side effect: mounts (destination absolute and clean — no
/// `..` components; known option names; type needed for non-bind mounts; source present for
/// bind), linux.devices (absolute path under /dev, type c/b/u/p, major/minor present for
/// c/b/u), maskedPaths/readonlyPaths absolute, rootfsPropagation one of
/// shared/slave/private/unbindable/rshared/rslave/rprivate/runbindable or "" (the default),
/// root.path present.
/// Error fields name the JSON path: `mounts[2].options[1]`, `linux.devices[0].type`, ...
pub fn validate(spec: &Spec) -> Result<()> {
    validate::validate(spec)?;
    host::validate(spec)
}

/// Step 1, in the container's (new) mount namespace, still in the host root: isolate `/`
/// from the host (rslave, or linux.rootfsPropagation), make `rootfs` (absolute, canonical)
/// a mount point, mount every `mounts` entry in order (bind sources relative to `bundle`;
/// a cgroup mount is a cgroup2 instance when `cgroup_ns_new`, else a bind of the host's
/// cgroup2 mount), populate /dev unless it is a bind mount, create process.cwd.
/// With an `overlay`, the overlay is stacked on the rootfs mount point first and everything
/// after happens in it ([`overlay`]). Without a mount namespace, in the host's: the
/// propagation of the host's mounts is left alone ([`host`]).
pub fn prepare(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    cgroup_ns_new: bool,
    overlay: Option<&overlay::Plan>,
) -> Result<()> {
    if host::has_mount_namespace(spec) {
        pivot::make_root_mount(rootfs, root_propagation(spec)?)?;
    } else {
        pivot::bind_onto_itself(rootfs)?;
    }
    if let Some(plan) = overlay {
        crate::trace!(
            "overlay root on `{}`: {} lower layers, upper in `{}`",
            rootfs.display(),
            plan.lowers.len(),
            plan.upper
                .host_dir()
                .unwrap_or(Path::new("tmpfs"))
                .display()
        );
        overlay::mount(plan, rootfs)?;
    }
    let root =
        Root::open(rootfs).map_err(Error::sys(format!("open rootfs `{}`", rootfs.display())))?;
    mounts::mount_all(spec, &root, bundle, cgroup_ns_new)?;
    devices::setup(spec, &root)?;
    if let Some(process) = spec.process() {
        let cwd = process.cwd();
        root.resolve_or_create(cwd, Create::Dir)
            .map_err(Error::sys(format!(
                "create process.cwd `{}` in the rootfs",
                cwd.display()
            )))?;
    }
    Ok(())
}

/// Step 2: switch root. pivot_root: chdir(rootfs); pivot_root(".", "."); make the old root
/// MS_SLAVE|MS_REC then umount2(".", MNT_DETACH); chdir("/"). With `no_pivot`: MS_MOVE
/// rootfs to "/" then chroot(".") and chdir("/"). Without a mount namespace of its own, in
/// the host's: chroot only, whatever `no_pivot` says.
pub fn enter(spec: &Spec, rootfs: &Path, no_pivot: bool) -> Result<()> {
    crate::trace!(
        "switch root to `{}` (no_pivot: {no_pivot})",
        rootfs.display()
    );
    pivot::enter(rootfs, no_pivot, host::has_mount_namespace(spec))
}

/// Step 3, inside the new root: maskedPaths (bind /dev/null over a file, a read-only empty
/// tmpfs over a directory; missing paths are skipped), readonlyPaths (bind onto itself,
/// remount ro+nosuid+nodev+noexec; missing skipped), root.readonly (remount "/" read-only
/// keeping its other flags), then rootfsPropagation applied to "/" if set.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let masked = linux.and_then(|l| l.masked_paths().as_deref());
    let readonly = linux.and_then(|l| l.readonly_paths().as_deref());
    let root_readonly = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    crate::trace!(
        "mask {} paths, make {} read-only, root read-only: {root_readonly}",
        masked.map_or(0, <[String]>::len),
        readonly.map_or(0, <[String]>::len)
    );
    paths::finalize(
        masked.unwrap_or_default(),
        readonly.unwrap_or_default(),
        root_readonly,
        root_propagation(spec)?,
    )
}

/// linux.rootfsPropagation as mount flags; unset or "" (runc's default) is `None`.
fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    let Some(name) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    options::propagation(name)
        .map(Some)
        .ok_or_else(|| Error::spec("linux.rootfsPropagation", format!("unknown value `{name}`")))
}
