//! A container without a mount namespace of its own (no `mount` in linux.namespaces): its
//! rootfs is prepared in the host's mount namespace, so its mounts are the host's, and
//! nothing takes them away when the container ends. runc 1.1.5 leaves them mounted after
//! `delete`; harun removes them.
//!
//! What is done in the host's namespace is what runc does there, less what would change
//! the host's own mounts: the rootfs bound onto itself, `mounts` and /dev under it, then
//! chroot (pivot_root, and MS_MOVE with --no-pivot, would replace the host's `/`). Not done:
//! runc's rslave of the host's `/` and private of the rootfs's parent mount (crun skips
//! them too), rootfsPropagation (runc would apply it to the host's `/`: refused),
//! maskedPaths/readonlyPaths (runc refuses them: "unable to restrict sys entries without a
//! private MNT namespace").
//!
//! Clean-up: before the init exists, `create` records which mount the rootfs path is on
//! ([`record`]); [`remove`] detaches whatever has been stacked on that path since — the
//! rootfs bind and every mount under it — on `delete`, and when `create` fails.

use std::fs;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The record in the state dir.
const FILE: &str = "host-mounts.json";

/// More stacked mounts than a container makes on its rootfs path: a bound on the loop.
const MAX_STACKED: usize = 16;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    rootfs: PathBuf,
    /// The mount id of the rootfs path before the container (statx STATX_MNT_ID).
    below: u64,
}

/// Whether the container gets a mount namespace (new or joined).
pub fn has_mount_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Mount))
}

/// The fields that need a mount namespace; see the module doc. Pure.
pub(crate) fn validate(spec: &Spec) -> Result<()> {
    if has_mount_namespace(spec) {
        return Ok(());
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let needs = "needs a `mount` namespace in linux.namespaces";
    for (field, paths) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        if paths.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(Error::spec(
                field,
                format!("{needs} (runc refuses this too)"),
            ));
        }
    }
    if linux
        .rootfs_propagation()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(Error::spec(
            "linux.rootfsPropagation",
            format!("{needs}: without one it would change the host's `/`"),
        ));
    }
    Ok(())
}

/// Note in `state_dir` the mount `rootfs` is on now, before anything is mounted there.
pub fn record(state_dir: &Path, rootfs: &Path) -> Result<()> {
    let below =
        mount_id(rootfs).map_err(|e| Error::sys(format!("statx `{}`", rootfs.display()))(e))?;
    let record = Record {
        rootfs: rootfs.to_path_buf(),
        below,
    };
    let text = serde_json::to_vec(&record).map_err(|e| Error::Internal(e.to_string()))?;
    // Whole or not at all: `delete --force` after a crash must be able to read it.
    crate::state::replace_file(
        &state_dir.join(FILE),
        &text,
        crate::state::Durability::Fsync,
    )
}

/// Detach every mount stacked on the recorded rootfs path since [`record`]. Without a
/// record (a container with a mount namespace) there is nothing to do.
pub fn remove(state_dir: &Path) -> Result<()> {
    let path = state_dir.join(FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read", &path)(e)),
    };
    let record: Record = serde_json::from_slice(&text)
        .map_err(|e| Error::spec(path.display().to_string(), e.to_string()))?;
    let r = record.rootfs.display();
    for _ in 0..MAX_STACKED {
        let top = mount_id(&record.rootfs).map_err(|e| Error::sys(format!("statx `{r}`"))(e))?;
        if top == record.below {
            return Ok(());
        }
        // MNT_DETACH takes the mount with everything under it, even while busy.
        umount2(&record.rootfs, MntFlags::MNT_DETACH)
            .map_err(|e| Error::sys(format!("unmount the container's rootfs `{r}`"))(e))?;
    }
    Err(Error::sys(format!(
        "unmount the container's rootfs `{r}`: still more than {MAX_STACKED} mounts on it"
    ))(Errno::EBUSY))
}

/// The id of the mount `path` is on (statx STATX_MNT_ID, Linux 5.8).
fn mount_id(path: &Path) -> nix::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut stx = std::mem::MaybeUninit::<libc::statx>::uninit();
    // SAFETY: `c` is a NUL-terminated path that outlives the call and `stx` points to
    // writable memory of the right type, which statx fills on success.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_MNT_ID,
            stx.as_mut_ptr(),
        )
    };
    Errno::result(rc)?;
    // SAFETY: statx returned 0, so it initialised the struct.
    let stx = unsafe { stx.assume_init() };
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(Errno::ENOSYS);
    }
    Ok(stx.stx_mnt_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(linux: serde_json::Value) -> Spec {
        serde_json::from_value(json!({
            "ociVersion": "1.2.0", "root": {"path": "rootfs"}, "linux": linux
        }))
        .unwrap()
    }

    #[test]
    fn fields_that_need_a_mount_namespace() {
        let cases = [
            (
                json!({"maskedPaths": ["/proc/kcore"]}),
                Some("linux.maskedPaths: needs"),
            ),
            (
                json!({"readonlyPaths": ["/proc/sys"]}),
                Some("linux.readonlyPaths: needs"),
            ),
            (
                json!({"rootfsPropagation": "shared"}),
                Some("linux.rootfsPropagation: needs"),
            ),
            (json!({"maskedPaths": [], "rootfsPropagation": ""}), None),
            (
                json!({"namespaces": [{"type": "mount"}], "maskedPaths": ["/x"]}),
                None,
            ),
        ];
        for (linux, want) in cases {
            let got = validate(&spec(linux.clone())).err().map(|e| e.to_string());
            match want {
                None => assert_eq!(got, None, "{linux}"),
                Some(w) => assert!(got.as_deref().is_some_and(|g| g.starts_with(w)), "{got:?}"),
            }
        }
    }

    #[test]
    fn mount_ids_differ_across_mounts() {
        let root = mount_id(Path::new("/")).unwrap();
        let proc = mount_id(Path::new("/proc")).unwrap();
        assert_ne!(root, proc);
        assert_eq!(mount_id(Path::new("/proc/self")).unwrap(), proc);
    }
}
