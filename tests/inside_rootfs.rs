//! The container's filesystem as it sees it: every configured mount with its flags, masked
//! and read-only paths, devices, the read-only root, --no-pivot. Checked from the
//! container's own output (its /proc/self/mountinfo, stat, reads and writes).

use std::fs;

use harun_integration::mountinfo::{self, MountEntry};
use harun_integration::procs::parse_kv;
use harun_integration::{harun, Bundle, Harun};
use serde_json::{json, Value};

fn mounts_inside(h: &Harun, b: &mut Bundle) -> Vec<MountEntry> {
    b.args(&["cat", "/proc/self/mountinfo"]);
    mountinfo::parse(&h.run_ok(b))
}

fn octal(v: &str) -> Option<u32> {
    u32::from_str_radix(v, 8).ok()
}

/// What is wrong with `m` given the spec mount's type and options. Options that mountinfo
/// does not show (newinstance, bind, rbind, propagation...) are not checked here.
fn mount_problems(m: &MountEntry, typ: &str, options: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    let want_fs = match typ {
        "cgroup" => Some("cgroup2"),
        "bind" | "rbind" | "none" | "" => None,
        t => Some(t),
    };
    if let Some(fs) = want_fs {
        if m.fstype != fs {
            bad.push(format!("type {} (want {fs})", m.fstype));
        }
    }
    for &o in options {
        let ok = match o.split_once('=') {
            None => match o {
                "ro" => m.is_ro(),
                "rw" => !m.is_ro(),
                "nosuid" | "nodev" | "noexec" | "relatime" | "noatime" | "nodiratime" => m.has(o),
                "strictatime" => !m.has("relatime") && !m.has("noatime"),
                _ => true,
            },
            Some((key @ ("mode" | "ptmxmode"), v)) => {
                let shown = m.super_options.iter().find_map(|s| {
                    s.split_once('=')
                        .filter(|(k, _)| *k == key)
                        .map(|(_, got)| octal(got))
                });
                // tmpfs does not show its default mode (1777).
                let default = (m.fstype == "tmpfs" && key == "mode").then_some(Some(0o1777));
                shown.or(default) == Some(octal(v))
            }
            Some(("gid" | "uid" | "size" | "nr_inodes", _)) => {
                m.super_options.iter().any(|s| s == o)
            }
            Some(_) => true,
        };
        if !ok {
            bad.push(format!("option {o} not in effect"));
        }
    }
    bad.into_iter()
        .map(|p| format!("{}: {p} ({m:?})", m.mount_point))
        .collect()
}

fn check_spec_mounts(b: &Bundle, mounts: &[MountEntry]) {
    let mut problems = Vec::new();
    for sm in b.get("/mounts").and_then(Value::as_array).expect("mounts") {
        let dest = sm["destination"].as_str().unwrap();
        let opts: Vec<&str> = sm["options"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match mountinfo::find(mounts, dest) {
            None => problems.push(format!("{dest}: not mounted")),
            Some(m) => problems.extend(mount_problems(m, sm["type"].as_str().unwrap_or(""), &opts)),
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn default_mounts_are_present_with_their_flags() {
    let h = harun!();
    let mut b = h.bundle();
    let mounts = mounts_inside(&h, &mut b);
    check_spec_mounts(&b, &mounts);
    let root = mountinfo::find(&mounts, "/").expect("a root mount");
    assert!(root.is_ro(), "root.readonly: {root:?}");
    h.assert_clean();
}

#[test]
fn configured_mounts_with_options() {
    let h = harun!();
    let host = h.path("hostdir");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("greeting"), "hi from the host\n").unwrap();
    let shared_dir = h.path("rwdir");
    fs::create_dir(&shared_dir).unwrap();
    let (host_s, rw_s) = (
        host.to_string_lossy().into_owned(),
        shared_dir.to_string_lossy().into_owned(),
    );

    let mut b = h.bundle();
    b.mount(
        "/data",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "noexec", "mode=1770", "size=2048k"],
    )
    .mount("/atime", "tmpfs", "tmpfs", &["noatime", "rw"])
    .mount("/strict", "tmpfs", "tmpfs", &["strictatime"])
    .mount("/mnt/ro", "bind", &host_s, &["rbind", "ro", "nosuid"])
    .mount("/mnt/rw", "none", &rw_s, &["bind", "rw", "nodev"])
    .mount(
        "/deep/er/mq",
        "mqueue",
        "mqueue",
        &["nosuid", "noexec", "nodev"],
    )
    .mount("/pub", "tmpfs", "tmpfs", &["shared"])
    .mount("/single", "tmpfs", "tmpfs", &["unbindable"]);
    let mounts = mounts_inside(&h, &mut b);
    check_spec_mounts(&b, &mounts);
    let prop = |p: &str| mountinfo::find(&mounts, p).map(|m| m.propagation());
    assert_eq!(prop("/pub"), Some("shared"));
    assert_eq!(prop("/single"), Some("unbindable"));

    // The bind mounts carry the host directories, read-only and read-write.
    b.sh(
        "cat /mnt/ro/greeting; echo x > /mnt/ro/new && echo ro-write=yes || echo ro-write=no; \
          echo written > /mnt/rw/out && echo rw-write=yes",
    );
    let out = h.run_ok(&b);
    assert!(out.starts_with("hi from the host\n"), "{out}");
    let kv = parse_kv(&out);
    assert_eq!(kv["ro-write"], "no", "{out}");
    assert_eq!(kv["rw-write"], "yes", "{out}");
    assert!(!host.join("new").exists());
    assert_eq!(
        fs::read_to_string(shared_dir.join("out")).unwrap(),
        "written\n"
    );
    h.assert_clean();
}

/// A mount destination under a symlink that points out of the rootfs stays inside it.
#[test]
fn mount_destinations_do_not_follow_symlinks_out_of_the_rootfs() {
    let h = harun!();
    let mut b = h.bundle();
    let name = format!("harun-escape-{}", h.tag());
    std::os::unix::fs::symlink("../../../../../../../../etc", b.rootfs().join("escape")).unwrap();
    b.mount(&format!("/escape/{name}"), "tmpfs", "tmpfs", &[]);
    let mounts = mounts_inside(&h, &mut b);
    assert!(
        !std::path::Path::new("/etc").join(&name).exists(),
        "created /etc/{name} on the host"
    );
    assert!(
        mountinfo::find(&mounts, &format!("/etc/{name}")).is_some(),
        "the mount should land on the rootfs's /etc/{name}: {mounts:#?}"
    );
    h.assert_clean();
}

#[test]
fn masked_paths_are_empty() {
    let h = harun!();
    let mut b = h.bundle();
    b.write_file("/etc/secret", "top secret\n")
        .write_file("/secretdir/file", "also secret\n")
        .write_file("/etc/visible", "visible\n");
    b.push("/linux/maskedPaths", "/etc/secret")
        .push("/linux/maskedPaths", "/secretdir");
    // Each masked path: absent, or a file reading 0 bytes, or an empty dir.
    let defaults = [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
    ];
    let script = format!(
        r#"for p in {} /etc/secret /secretdir; do
  if [ ! -e $p ]; then echo "$p=absent"
  elif [ -d $p ]; then echo "$p=$(ls -A $p | wc -l) entries"
  else echo "$p=$(cat $p 2>/dev/null | wc -c) bytes"; fi
done
echo /etc/visible=$(cat /etc/visible)"#,
        defaults.join(" ")
    );
    b.sh(&script);
    let out = h.run_ok(&b);
    let kv = parse_kv(&out);
    let masked = |p: &str| matches!(kv.get(p).map(String::as_str), Some("0 bytes" | "0 entries"));
    let mut checked = 0;
    for p in defaults {
        // Present on the host (this kernel may lack some): must be masked inside.
        if std::path::Path::new(p).exists() {
            assert!(masked(p), "{p} is not masked:\n{out}");
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "too few default masked paths exist on this host to check:\n{out}"
    );
    assert!(masked("/etc/secret") && masked("/secretdir"), "{out}");
    assert_eq!(kv["/etc/visible"], "visible", "{out}");
    h.assert_clean();
}
#[test]
fn readonly_paths_are_read_only() {
    let h = harun!();
    let mut b = h.bundle();
    b.set("/root/readonly", false)
        .write_file("/rodir/keep", "")
        .write_file("/rwdir/keep", "")
        .push("/linux/readonlyPaths", "/rodir");
    b.sh(
        "touch /rodir/new && echo rodir=writable || echo rodir=readonly; \
         touch /rwdir/new && echo rwdir=writable || echo rwdir=readonly; \
         echo x > /proc/sys/kernel/domainname && echo procsys=writable || echo procsys=readonly; \
         cat /proc/self/mountinfo",
    );
    let out = h.run_ok(&b);
    let kv = parse_kv(&out);
    assert_eq!(kv["rodir"], "readonly", "{out}");
    assert_eq!(kv["rwdir"], "writable", "{out}");
    assert_eq!(kv["procsys"], "readonly", "{out}");
    let mounts = mountinfo::parse(&out);
    let defaults = [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ];
    // The defaults that exist on this kernel, and the configured one.
    let present = defaults
        .into_iter()
        .filter(|p| std::path::Path::new(p).exists());
    for p in present.chain(["/rodir"]) {
        let m = mountinfo::find(&mounts, p).unwrap_or_else(|| panic!("{p} not a mount:\n{out}"));
        assert!(m.is_ro(), "{p} not ro: {m:?}");
    }
    assert!(b.rootfs().join("rwdir/new").exists());
    assert!(!b.rootfs().join("rodir/new").exists());
    h.assert_clean();
}
#[test]
fn read_only_root_and_writable_root() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("touch /newfile && echo root=writable || echo root=readonly");
    assert_eq!(parse_kv(&h.run_ok(&b))["root"], "readonly");
    assert!(!b.rootfs().join("newfile").exists());
    b.set("/root/readonly", false);
    assert_eq!(parse_kv(&h.run_ok(&b))["root"], "writable");
    assert!(b.rootfs().join("newfile").exists());
    h.assert_clean();
}

#[test]
fn default_devices_and_links() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh(
        "for d in null zero full random urandom tty; do stat -c \"$d=%F %t:%T %a\" /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do echo \"link-$l=$(readlink /dev/$l)\"; done; \
         echo x > /dev/null && echo null-write=ok; \
         echo zero-read=$(head -c 5 /dev/zero | wc -c); echo urandom-read=$(head -c 7 /dev/urandom | wc -c); \
         echo x > /dev/full 2>/dev/null && echo full-write=ok || echo full-write=fails; \
         [ -c /dev/pts/ptmx ] && echo pts-ptmx=ok",
    );
    let out = h.run_ok(&b);
    let kv = parse_kv(&out);
    for (dev, nums) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        assert_eq!(
            kv.get(dev).map(String::as_str),
            Some(format!("character special file {nums} 666").as_str()),
            "{out}"
        );
    }
    for (l, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        assert_eq!(kv[&format!("link-{l}")], target, "{out}");
    }
    for (k, v) in [
        ("null-write", "ok"),
        ("zero-read", "5"),
        ("urandom-read", "7"),
        ("full-write", "fails"),
        ("pts-ptmx", "ok"),
    ] {
        assert_eq!(kv.get(k).map(String::as_str), Some(v), "{k}:\n{out}");
    }
    h.assert_clean();
}

#[test]
fn linux_devices_are_created() {
    let h = harun!();
    let mut b = h.bundle();
    b.set(
        "/linux/devices",
        json!([
            {"path": "/dev/harun-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 5},
            {"path": "/dev/sub/dir/harun-loop", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600, "uid": 0, "gid": 0},
            {"path": "/dev/harun-fifo", "type": "p", "fileMode": 0o644},
            {"path": "/dev/harun-u", "type": "u", "major": 1, "minor": 5, "fileMode": 0o444},
        ]),
    )
    .sh(
        "for d in harun-null sub/dir/harun-loop harun-fifo harun-u; do stat -c \"$d=%F %t:%T %a %u:%g\" /dev/$d; done; \
         echo x > /dev/harun-null && echo null-write=ok",
    );
    let out = h.run_ok(&b);
    let kv = parse_kv(&out);
    assert_eq!(
        kv["harun-null"], "character special file 1:3 640 0:5",
        "{out}"
    );
    assert_eq!(
        kv["sub/dir/harun-loop"], "block special file 7:0 600 0:0",
        "{out}"
    );
    assert!(kv["harun-fifo"].starts_with("fifo 0:0 644"), "{out}");
    assert_eq!(kv["harun-u"], "character special file 1:5 444 0:0", "{out}");
    assert_eq!(kv["null-write"], "ok", "{out}");
    h.assert_clean();
}

#[test]
fn no_pivot_uses_the_rootfs_too() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo first-user=$(head -1 /etc/passwd); ls /bin/busybox; grep -c . /proc/self/mountinfo");
    let id = h.id("nopivot");
    let create = h
        .cmd(["create", "--no-pivot", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .run()
        .ok();
    h.remember_id(&id);
    h.start(&id).ok();
    h.wait_status(&id, "stopped");
    h.delete(&id).ok();
    let out = create.stdout_now();
    assert_eq!(
        parse_kv(&out).get("first-user").map(String::as_str),
        Some("root:x:0:0:root:/root:/bin/sh"),
        "{out}"
    );
    assert!(out.contains("/bin/busybox\n"), "{out}");
    h.assert_clean();
}

/// rootfsPropagation decides how the container's `/` propagates. This host's mounts are all
/// private (so slave would look private), hence harun runs in a mount namespace of its own
/// whose mounts the test first makes shared, as on a systemd host. Every value runc knows
/// runs; the root shows it as crun 1.8.1 gives it (runc 1.1.5 leaves a private root for
/// shared, and fails unbindable and runbindable: the rootfs cannot be bound from an
/// unbindable `/`); "" is the default (rslave), as in runc.
#[test]
fn rootfs_propagation() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["cat", "/proc/self/mountinfo"]);
    let shared_host = [
        "unshare",
        "-m",
        "--propagation",
        "unchanged",
        "sh",
        "-c",
        r#"mount --make-rshared / && exec "$0" "$@""#,
    ];
    for (prop, want) in [
        ("private", "private"),
        ("rprivate", "private"),
        ("slave", "slave"),
        ("rslave", "slave"),
        ("shared", "shared"),
        ("rshared", "shared"),
        ("unbindable", "unbindable"),
        ("runbindable", "unbindable"),
        ("", "slave"),
    ] {
        b.set("/linux/rootfsPropagation", prop);
        let id = h.id(if prop.is_empty() { "default" } else { prop });
        h.remember_id(&id);
        let out = h
            .cmd(["run", "--bundle"])
            .arg(b.dir())
            .arg(&id)
            .wrap(shared_host)
            .run()
            .ok();
        let mounts = mountinfo::parse(&out.stdout);
        let root = mountinfo::find(&mounts, "/").expect("root mount");
        assert_eq!(
            root.propagation(),
            want,
            "rootfsPropagation {prop}: {root:?}\n{out}"
        );
    }
    h.assert_clean();
}

/// `tmpcopyup` (podman's `--tmpfs`): the tmpfs starts with a copy of the image's directory —
/// contents, modes, owners, symlinks as links, nested directories — and writes stay in the
/// tmpfs; with `ro` the copy is there and read-only. Not a tmpfs: refused.
#[test]
fn tmpfs_copy_up_fills_the_tmpfs_with_the_image_directory() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let h = harun!();
    let mut b = h.bundle();
    b.write_file("/data/hello", "hi from the image\n")
        .write_file("/data/sub/deep/file", "deep\n");
    let data = b.rootfs().join("data");
    // chown first: it clears setuid. Readable by others: the container's root has no
    // CAP_DAC_OVERRIDE in the default spec.
    std::os::unix::fs::chown(data.join("hello"), Some(123), Some(456)).unwrap();
    fs::set_permissions(data.join("hello"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(data.join("sub"), fs::Permissions::from_mode(0o710)).unwrap();
    symlink("/etc/passwd", data.join("link")).unwrap();
    b.mount("/data", "tmpfs", "tmpfs", &["tmpcopyup", "nosuid"]);
    b.sh("cat /data/hello /data/sub/deep/file; \
          stat -c 'hello=%a:%u:%g' /data/hello; stat -c 'sub=%a' /data/sub; \
          echo link=$(readlink /data/link); \
          grep ' /data ' /proc/self/mountinfo | grep -q tmpfs && echo fs=tmpfs; \
          echo new > /data/new && echo wrote=yes");
    let out = h.run_ok(&b);
    assert!(out.contains("hi from the image\ndeep\n"), "{out}");
    let kv = parse_kv(&out);
    // nosuid applies to the mount, not the copied mode bits.
    assert_eq!(kv["hello"], "4755:123:456", "{out}");
    assert_eq!(kv["sub"], "710", "{out}");
    assert_eq!(kv["link"], "/etc/passwd", "{out}");
    assert_eq!(kv["fs"], "tmpfs", "{out}");
    assert_eq!(kv["wrote"], "yes", "{out}");
    assert!(!data.join("new").exists(), "a write reached the image");

    // Read-only: filled, then made read-only.
    let mut b = h.bundle();
    b.write_file("/data/hello", "ro copy\n");
    b.mount("/data", "tmpfs", "tmpfs", &["ro", "tmpcopyup"]);
    b.sh("cat /data/hello; touch /data/x 2>/dev/null && echo wrote=yes || echo wrote=no");
    let out = h.run_ok(&b);
    assert!(out.contains("ro copy"), "{out}");
    assert_eq!(parse_kv(&out)["wrote"], "no", "{out}");

    // tmpcopyup on anything but a tmpfs: one clear error, nothing left behind.
    let mut b = h.bundle();
    b.mount("/data", "bind", "/tmp", &["rbind", "tmpcopyup"]);
    let id = h.id("copyup-bad");
    h.create(&id, &b).error(&["mounts[", "tmpcopyup", "tmpfs"]);
    h.assert_clean();
}
