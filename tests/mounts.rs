//! What real clients put in `mounts` and around it, as runc takes it: filesystem data on
//! bind mounts, propagation between the host and a container, mount labels.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use harun_integration::mountinfo;
use harun_integration::procs::parse_kv;
use harun_integration::{harun, Harun};

/// podman and the runtime-spec validation configs send `mode=755` on bind mounts. runc
/// passes such data to mount(2), which ignores it for a bind; the bind works and the
/// source keeps its own mode.
#[test]
fn bind_mounts_take_filesystem_data_options_like_runc() {
    let h = harun!();
    let src = h.path("src");
    fs::create_dir(&src).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(src.join("file"), "from the host\n").unwrap();
    let s = src.to_string_lossy().into_owned();
    let mut b = h.bundle();
    b.mount("/data", "bind", &s, &["rbind", "mode=755"])
        .mount("/ro", "none", &s, &["bind", "ro", "mode=0755", "size=1k"])
        .sh("cat /data/file; stat -c mode=%a /data; \
             touch /ro/x 2>/dev/null && echo ro=no || echo ro=yes");
    let out = h.run_ok(&b);
    assert!(out.contains("from the host\n"), "{out}");
    let kv = parse_kv(&out);
    assert_eq!(
        kv["mode"], "700",
        "the data option changed the source:\n{out}"
    );
    assert_eq!(kv["ro"], "yes", "{out}");
    let mode = fs::metadata(&src).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700);
    h.assert_clean();
}

/// A shared host directory bound `rshared` into a container with `rootfsPropagation`
/// shared (Kubernetes' Bidirectional volumes): a mount the container makes under it shows
/// on the host. With the default (rslave) it does not. Both as runc 1.1.5 on this host.
#[test]
fn a_mount_under_a_shared_bind_propagates_to_the_host_as_with_runc() {
    let h = harun!();
    for (root_prop, propagates) in [("shared", true), ("rshared", true), ("rslave", false)] {
        let src = shared_dir(&h);
        let s = src.to_string_lossy().into_owned();
        let mut b = h.bundle();
        b.set("/linux/rootfsPropagation", root_prop)
            .mount("/data", "bind", &s, &["rbind", "rshared"])
            .push("/process/capabilities/bounding", "CAP_SYS_ADMIN")
            .push("/process/capabilities/permitted", "CAP_SYS_ADMIN")
            .push("/process/capabilities/effective", "CAP_SYS_ADMIN")
            .sh("mkdir -p /data/sub && mount -t tmpfs -o size=16k tmpfs /data/sub && echo mounted");
        let out = h.run_ok(&b);
        assert!(out.contains("mounted"), "{out}");
        let sub = src.join("sub").to_string_lossy().into_owned();
        let host = mountinfo::current();
        let seen = mountinfo::find(&host, &sub).map(|m| m.fstype.clone());
        umount(&sub);
        umount(&s);
        if propagates {
            assert_eq!(
                seen.as_deref(),
                Some("tmpfs"),
                "{root_prop}: not on the host"
            );
        } else {
            assert_eq!(
                seen, None,
                "{root_prop}: the container's mount reached the host"
            );
        }
    }
    h.assert_clean();
}

/// A fresh directory bound onto itself and made shared on the host (unmount it when done).
fn shared_dir(h: &Harun) -> std::path::PathBuf {
    use nix::mount::{mount, MsFlags};
    let dir = h.path("shared");
    fs::create_dir(&dir).unwrap();
    let none: Option<&str> = None;
    mount(Some(&dir), &dir, none, MsFlags::MS_BIND, none).expect("bind the shared dir");
    mount(none, &dir, none, MsFlags::MS_SHARED, none).expect("make the dir shared");
    dir
}

fn umount(path: &str) {
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
}

/// `linux.mountLabel` on a host without SELinux: the container runs and its mounts carry no
/// `context=` (crun ignores the label; runc 1.1.5 passes it to the /dev tmpfs and fails with
/// EINVAL). Process labels fail on such a host in runc and crun alike, and in harun.
#[test]
fn mount_label_without_selinux_is_ignored_process_labels_are_refused() {
    use harun_runtime::security::lsm;
    let h = harun!();
    let label = "system_u:object_r:container_file_t:s0:c1,c2";
    let mut b = h.bundle();
    b.set("/linux/mountLabel", label)
        .args(&["cat", "/proc/self/mountinfo"]);
    let id = h.id("label");
    if lsm::selinux_enabled() {
        h.create(&id, &b)
            .error(&["linux.mountLabel", "not supported"]);
    } else {
        let out = h.run(&id, &b).ok();
        assert!(out.stdout.contains(" /dev "), "{out}");
        assert!(!out.stdout.contains("context="), "{out}");
    }
    for (field, value, lsm_on) in [
        ("selinuxLabel", label, lsm::selinux_enabled()),
        ("apparmorProfile", "docker-default", lsm::apparmor_enabled()),
    ] {
        let mut b = h.bundle();
        b.set(&format!("/process/{field}"), value).args(&["true"]);
        let why = if lsm_on {
            "not implemented"
        } else {
            "disabled or not supported on this host"
        };
        h.create(&h.id("plabel"), &b)
            .error(&[&format!("process.{field}"), why]);
    }
    h.assert_clean();
}

/// A bundle without a `mount` namespace and without what needs one (masked and read-only
/// paths, which runc refuses there too).
fn host_mount_ns_bundle(h: &Harun) -> harun_integration::Bundle {
    let mut b = h.bundle();
    b.without_namespace("mount")
        .remove("/linux/maskedPaths")
        .remove("/linux/readonlyPaths");
    b
}

/// No `mount` in linux.namespaces: the container runs, as with runc: its mounts are made
/// in the host's mount namespace under the rootfs (runc's too), it is chrooted there (ls /
/// shows the image), `exec` lands in the same root (runc's exec lands in the host's `/`),
/// the host's own mounts keep their propagation, and delete removes every mount it made
/// (runc 1.1.5 leaves them).
#[test]
fn a_container_without_a_mount_namespace_runs_and_delete_unmounts() {
    let h = harun!();
    let host_root_before = mountinfo::find(&mountinfo::current(), "/").cloned();
    let mut b = host_mount_ns_bundle(&h);
    b.set("/root/readonly", true).args(&["sleep", "600"]);
    let rootfs = b.rootfs().to_string_lossy().into_owned();
    let id = h.id("nomntns");
    h.create(&id, &b).ok();
    h.start(&id).ok();
    let under: Vec<String> = mountinfo::current()
        .into_iter()
        .filter(|m| m.mount_point.starts_with(&rootfs))
        .map(|m| m.mount_point)
        .collect();
    for want in ["", "/proc", "/dev", "/dev/pts", "/sys"] {
        let p = format!("{rootfs}{want}");
        assert!(
            under.contains(&p),
            "{p} is not mounted on the host: {under:?}"
        );
    }
    let out = h
        .exec(&[
            "exec",
            &id,
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt; ls /; touch /x 2>/dev/null || echo ro=yes",
        ])
        .ok();
    let host_mnt = fs::read_link("/proc/self/ns/mnt").unwrap();
    assert!(
        out.stdout.starts_with(&*host_mnt.to_string_lossy()),
        "{out}"
    );
    assert!(
        out.stdout.contains("\nbin\n"),
        "exec is not in the rootfs:\n{out}"
    );
    assert!(
        !out.stdout.contains("\nwork\n"),
        "exec sees the host's `/`:\n{out}"
    );
    assert!(out.stdout.contains("ro=yes"), "root.readonly:\n{out}");
    h.kill(&id, "KILL").ok();
    h.wait_status(&id, "stopped");
    h.delete(&id).ok();
    let host_root_after = mountinfo::find(&mountinfo::current(), "/").cloned();
    assert_eq!(
        host_root_before.map(|m| m.optional),
        host_root_after.map(|m| m.optional),
        "the host's `/` changed propagation"
    );
    // Foreground run: the same, ending with the delete.
    let mut b = host_mount_ns_bundle(&h);
    b.sh("ls /proc/self/ns >/dev/null && echo ran");
    assert!(h.run_ok(&b).contains("ran"));
    h.assert_clean();
}

/// Without a mount namespace: masked and read-only paths are refused (as runc:
/// "unable to restrict sys entries without a private MNT namespace"), so is
/// rootfsPropagation (runc would apply it to the host's `/`); a create failing after
/// some mounts were made in the host's namespace leaves none behind.
#[test]
fn without_a_mount_namespace_what_needs_one_is_refused_and_failures_clean_up() {
    let h = harun!();
    for (field, value) in [
        ("maskedPaths", serde_json::json!(["/proc/kcore"])),
        ("readonlyPaths", serde_json::json!(["/proc/sys"])),
        ("rootfsPropagation", serde_json::json!("shared")),
    ] {
        let mut b = host_mount_ns_bundle(&h);
        b.set(&format!("/linux/{field}"), value);
        h.create(&h.id("needsmnt"), &b)
            .error(&[&format!("linux.{field}"), "mount` namespace"]);
    }
    let mut b = host_mount_ns_bundle(&h);
    b.mount("/late", "bind", "/nonexistent/harun-source", &["rbind"]);
    h.create(&h.id("latefail"), &b)
        .error(&["mounts[", "/nonexistent/harun-source"]);
    h.assert_clean();
}
