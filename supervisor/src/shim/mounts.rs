//! The container's root filesystem as containerd hands it over: a list of mounts (an
//! overlay of the image's snapshots, or a bind) that the shim mounts on BUNDLE/rootfs
//! before create and unmounts after delete, as containerd's runc shim does.

use std::path::Path;

use containerd_shim_protos::api::Mount;
use harun_runtime::rootfs::options;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::errors::Failure;

/// Mount `mounts` on `target` in order.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), Failure> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            let _ = unmount_all(target);
            return Err(Failure::new(
                containerd_shim_protos::ttrpc::Code::UNKNOWN,
                format!(
                    "rootfs mount #{i} ({} on `{}`): {e}",
                    m.type_,
                    target.display()
                ),
            ));
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> nix::Result<()> {
    let o = options::parse(&m.options);
    let mut flags = o.flags;
    if let Some(rec) = o.bind {
        flags |= MsFlags::MS_BIND;
        if rec {
            flags |= MsFlags::MS_REC;
        }
    }
    let fstype = (m.type_ != "bind").then_some(m.type_.as_str());
    let data = (!o.data.is_empty()).then_some(o.data.as_str());
    mount(Some(m.source.as_str()), target, fstype, flags, data)?;
    // A bind mount takes flags such as ro only on a remount.
    let extra = flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    if flags.contains(MsFlags::MS_BIND) && !extra.is_empty() {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None::<&str>,
        )?;
    }
    for p in o.propagation {
        mount(None::<&str>, target, None::<&str>, p, None::<&str>)?;
    }
    Ok(())
}

/// Unmount everything mounted on `target` (EINVAL: nothing is).
pub fn unmount_all(target: &Path) -> Result<(), Failure> {
    for _ in 0..64 {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(Failure::internal(format!(
                    "unmount `{}`: {e}",
                    target.display()
                )))
            }
        }
    }
    Ok(())
}
