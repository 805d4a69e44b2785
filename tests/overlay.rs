//! Overlay rootfs (issue 5): `--overlay`, `--layer`, `--upper` and the `run.harun.overlay*`
//! annotations. The bundle is never written; ephemeral uppers go with the container,
//! persistent ones stay; nothing of the overlay ever shows in the host's mount table.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use harun_integration::mountinfo::{self, MountEntry};
use harun_integration::{harun, Bundle, Harun, Out};
use nix::sys::stat::{mknod, Mode, SFlag};
use serde_json::json;

/// Foreground `run` with extra flags (before the ID).
fn run(h: &Harun, b: &Bundle, id: &str, flags: &[&str]) -> Out {
    h.remember_id(id);
    h.cmd(["run", "--bundle"])
        .arg(b.dir())
        .args(flags)
        .arg(id)
        .run()
}

/// `create` + `start` with extra flags; returns the init pid (tracked for leak checks).
fn start(h: &Harun, b: &Bundle, id: &str, flags: &[&str]) -> i32 {
    h.remember_id(id);
    h.cmd(["create", "--bundle"])
        .arg(b.dir())
        .arg("--pid-file")
        .arg(h.pid_file(id))
        .args(flags)
        .arg(id)
        .run()
        .ok();
    let pid = h.pid_from_file(id).expect("pid file");
    h.track(pid);
    h.start(id).ok();
    pid
}

/// A bundle whose root is writable (the default spec has root.readonly).
fn writable_bundle(h: &Harun) -> Bundle {
    let mut b = h.bundle();
    b.set("/root/readonly", false);
    b
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Everything about a tree that a write through the overlay could change: per path its
/// type, mode, owner, size, mtime, ctime, device number, link target and content hash.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let detail = if ft.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
            String::new()
        } else if ft.is_symlink() {
            path_str(&fs::read_link(&p).unwrap())
        } else if ft.is_file() {
            let mut hasher = DefaultHasher::new();
            fs::read(&p).unwrap().hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        } else {
            format!("rdev {}", m.rdev())
        };
        let line = format!(
            "{:o} {}:{} {}B m{}.{} c{}.{} {detail}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        );
        out.insert(p.strip_prefix(root).unwrap().to_path_buf(), line);
    }
    out
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}

/// The contents of `path` inside a running container, read through /proc/PID/root.
fn read_in(pid: i32, path: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/root{path}")).unwrap_or_default()
}

fn overlay_mounts() -> Vec<MountEntry> {
    mountinfo::current()
        .into_iter()
        .filter(|m| m.fstype == "overlay")
        .collect()
}

/// Asserts the host shows no overlay mount it did not show at `baseline`, and no mount
/// that mentions the test's dir; and that the container's root is an overlay.
fn assert_host_clean_while_running(h: &Harun, baseline: &[MountEntry], pid: i32) {
    let new: Vec<MountEntry> = overlay_mounts()
        .into_iter()
        .filter(|m| !baseline.contains(m))
        .collect();
    assert!(new.is_empty(), "overlay mounts on the host: {new:#?}");
    let mentioning = mountinfo::mounts_mentioning(&path_str(h.dir()));
    assert!(mentioning.is_empty(), "host mounts: {mentioning:#?}");
    let inside = mountinfo::parse(&fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap());
    let root = mountinfo::find(&inside, "/").expect("container has /");
    assert_eq!(root.fstype, "overlay", "container root: {root:?}");
}

#[test]
fn two_containers_on_one_bundle_each_see_their_own_file() {
    let h = harun!();
    let mut b = writable_bundle(&h);
    b.write_file("/etc/shared", "from the image\n");
    b.sh("cat /proc/sys/kernel/random/uuid > /etc/shared && mkdir -p /new/dir && rm /etc/passwd && exec sleep 1000");
    let before = snapshot(&b.rootfs());
    let (a, c) = (h.id("a"), h.id("c"));
    let pid_a = start(&h, &b, &a, &["--overlay"]);
    let pid_c = start(&h, &b, &c, &["--overlay"]);
    for pid in [pid_a, pid_c] {
        wait_for("the uuid file", || read_in(pid, "/etc/shared").len() == 37);
    }
    let (in_a, in_c) = (read_in(pid_a, "/etc/shared"), read_in(pid_c, "/etc/shared"));
    assert_ne!(in_a, in_c, "the containers share a file");
    // Each write went to its own ephemeral upper in its state dir.
    let upper = |id: &str| h.root().join(id).join("overlay/upper/etc/shared");
    assert_eq!(fs::read_to_string(upper(&a)).unwrap(), in_a);
    assert_eq!(fs::read_to_string(upper(&c)).unwrap(), in_c);
    h.delete_force(&a).ok();
    h.delete_force(&c).ok();
    let after = snapshot(&b.rootfs());
    assert_eq!(before, after, "the bundle rootfs changed");
    assert_eq!(
        fs::read_to_string(b.rootfs().join("etc/shared")).unwrap(),
        "from the image\n"
    );
    h.assert_clean();
}

/// Layers l1 and l2 over a rootfs: `/etc/layered` in all three, `/etc/gone` in the rootfs
/// and l1 and whited out in l2, `/only-*` in one each.
fn three_layers(h: &Harun, b: &mut Bundle) -> (PathBuf, PathBuf) {
    b.write_file("/etc/layered", "rootfs\n");
    b.write_file("/etc/gone", "rootfs\n");
    b.write_file("/only-rootfs", "rootfs\n");
    // `:` and `,` separate overlay options: layers reach the kernel as fds, never as names.
    let (l1, l2) = (h.dir().join("l1:odd,name"), h.path("l2"));
    for (l, name) in [(&l1, "l1"), (&l2, "l2")] {
        fs::create_dir_all(l.join("etc")).unwrap();
        fs::write(l.join("etc/layered"), format!("{name}\n")).unwrap();
        fs::write(l.join(format!("only-{name}")), format!("{name}\n")).unwrap();
    }
    fs::write(l1.join("etc/gone"), "l1\n").unwrap();
    mknod(&l2.join("etc/gone"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
    (l1, l2)
}

const SHOW_STACK: &str = "cat /etc/layered; [ -e /etc/gone ] && echo present || echo gone; \
     cat /only-rootfs /only-l1 /only-l2; rm /only-rootfs && [ ! -e /only-rootfs ] && echo removed";

#[test]
fn three_layer_stack_topmost_wins_and_whiteouts_hide() {
    let h = harun!();
    let mut b = writable_bundle(&h);
    let (l1, l2) = three_layers(&h, &mut b);
    b.sh(SHOW_STACK);
    let before = snapshot(&b.rootfs());
    let (s1, s2) = (path_str(&l1), path_str(&l2));
    let want = "l2\ngone\nrootfs\nl1\nl2\nremoved\n";

    let out = run(&h, &b, &h.id("flags"), &["--layer", &s1, "--layer", &s2]).ok();
    assert_eq!(out.stdout, want, "{out}");

    // The same stack from the annotation (bottom first).
    b.set(
        "/annotations/run.harun.overlay.layers",
        json!([s1, s2]).to_string(),
    );
    let out = run(&h, &b, &h.id("ann"), &[]).ok();
    assert_eq!(out.stdout, want, "{out}");

    // Order matters: l1 on top brings /etc/gone back and wins /etc/layered.
    b.set(
        "/annotations/run.harun.overlay.layers",
        json!([s2, s1]).to_string(),
    );
    let out = run(&h, &b, &h.id("rev"), &[]).ok();
    assert_eq!(
        out.stdout, "l1\npresent\nrootfs\nl1\nl2\nremoved\n",
        "{out}"
    );
    // ...and flags override the annotation.
    let out = run(&h, &b, &h.id("override"), &["--layer", &s1, "--layer", &s2]).ok();
    assert_eq!(out.stdout, want, "{out}");

    assert_eq!(before, snapshot(&b.rootfs()), "the bundle rootfs changed");
    assert!(l2
        .join("etc/gone")
        .metadata()
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(!l1.join("only-rootfs").exists() && !l2.join("only-rootfs").exists());
    h.assert_clean();
}

#[test]
fn ephemeral_uppers_are_gone_in_the_next_run_and_after_delete() {
    let h = harun!();
    let mut b = writable_bundle(&h);
    b.sh("[ -e /eph ] && echo seen || echo fresh; echo data > /eph");
    for flags in [
        &["--overlay"][..],
        &["--upper", "tmpfs"],
        &["--upper", "tmpfs:4m"],
    ] {
        for round in 0..2 {
            let out = run(&h, &b, &h.id(&format!("eph{round}")), flags).ok();
            assert_eq!(
                out.stdout, "fresh\n",
                "round {round} with {flags:?}:\n{out}"
            );
        }
    }
    // The same from the annotation alone.
    b.set("/annotations/run.harun.overlay", "true");
    let out = run(&h, &b, &h.id("ann"), &[]).ok();
    assert_eq!(out.stdout, "fresh\n", "{out}");
    assert!(!b.rootfs().join("eph").exists());

    // While it runs, the state-dir upper holds the writes; delete removes it.
    b.sh("echo data > /eph && exec sleep 1000");
    let id = h.id("held");
    let pid = start(&h, &b, &id, &[]);
    let upper = h.root().join(&id).join("overlay/upper");
    // The shell creates the file before it writes to it: wait for the content.
    wait_for("the upper file", || {
        fs::read_to_string(upper.join("eph")).is_ok_and(|t| t == "data\n")
    });
    assert!(h.root().join(&id).join("overlay/work").is_dir());
    assert_eq!(read_in(pid, "/eph"), "data\n");
    h.delete_force(&id).ok();
    assert!(!h.root().join(&id).exists(), "delete left the state dir");
    h.assert_clean();
}

#[test]
fn persistent_upper_survives_delete_and_sigkill() {
    let h = harun!();
    let mut b = writable_bundle(&h);
    let dir = h.path("persist");
    let flags = ["--upper", &path_str(&dir)];
    b.sh("cat /data 2>/dev/null || echo none; echo \"$0\" >> /data");
    b.push("/process/args", "first");
    let out = run(&h, &b, &h.id("p1"), &flags).ok();
    assert_eq!(out.stdout, "none\n", "{out}");
    assert_eq!(
        fs::read_to_string(dir.join("upper/data")).unwrap(),
        "first\n"
    );
    // Reused by the next create naming it, here through the annotation.
    b.set("/annotations/run.harun.overlay.upper", path_str(&dir));
    b.set("/process/args/3", "second");
    let out = run(&h, &b, &h.id("p2"), &[]).ok();
    assert_eq!(out.stdout, "first\n", "{out}");

    // Written, then SIGKILL: the data is there for the next container.
    b.sh("echo killed > /killed && exec sleep 1000");
    let id = h.id("killed");
    let pid = start(&h, &b, &id, &flags);
    wait_for("the write", || {
        fs::read_to_string(dir.join("upper/killed")).is_ok_and(|s| s == "killed\n")
    });
    h.kill(&id, "KILL").ok();
    h.wait_status(&id, "stopped");
    harun_integration::procs::reap(pid);
    h.delete(&id).ok();
    assert!(
        dir.join("upper/killed").exists(),
        "delete removed a persistent upper"
    );
    b.sh("cat /killed /data");
    let out = run(&h, &b, &h.id("p3"), &flags).ok();
    assert_eq!(out.stdout, "killed\nfirst\nsecond\n", "{out}");
    assert!(!b.rootfs().join("data").exists() && !b.rootfs().join("killed").exists());
    h.assert_clean();
}

#[test]
fn tmpfs_upper_size_limit_is_enospc_inside() {
    let h = harun!();
    let mut b = writable_bundle(&h);
    b.sh("dd if=/dev/zero of=/big bs=64k count=64 2>&1; echo rc=$?; exec sleep 1000");
    let id = h.id("full");
    let pid = start(&h, &b, &id, &["--upper", "tmpfs:1m"]);
    let out_file = h.dir().join("out");
    wait_for("dd", || {
        fs::read_dir(&out_file)
            .unwrap()
            .flatten()
            .any(|e| fs::read_to_string(e.path()).is_ok_and(|s| s.contains("rc=")))
    });
    let all: String = fs::read_dir(&out_file)
        .unwrap()
        .flatten()
        .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(all.contains("No space left on device"), "{all}");
    assert!(all.contains("rc=1"), "{all}");
    let size = fs::metadata(format!("/proc/{pid}/root/big")).unwrap().len();
    assert!(size <= 1 << 20, "wrote {size} bytes into a 1 MiB upper");
    // Nothing of it on the host: no upper in the state dir, no tmpfs in the mount table.
    assert!(!h.root().join(&id).join("overlay").exists());
    assert!(!b.rootfs().join("big").exists());
    assert!(mountinfo::mounts_mentioning(&path_str(h.dir())).is_empty());
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn no_overlay_mount_is_ever_visible_on_the_host() {
    let h = harun!();
    let baseline = overlay_mounts();
    let mut b = writable_bundle(&h);
    let layer = h.path("layer");
    fs::create_dir(&layer).unwrap();
    let persist = path_str(&h.path("persist"));
    let layer = path_str(&layer);
    b.sh("exec sleep 1000");
    let cases: [&[&str]; 3] = [
        &["--layer", &layer],
        &["--layer", &layer, "--upper", "tmpfs:8m"],
        &["--upper", &persist],
    ];
    for (i, flags) in cases.iter().enumerate() {
        let id = h.id(&format!("c{i}"));
        h.remember_id(&id);
        h.cmd(["create", "--bundle"])
            .arg(b.dir())
            .arg("--pid-file")
            .arg(h.pid_file(&id))
            .args(*flags)
            .arg(&id)
            .run()
            .ok();
        let pid = h.pid_from_file(&id).unwrap();
        h.track(pid);
        assert_host_clean_while_running(&h, &baseline, pid);
        h.start(&id).ok();
        assert_host_clean_while_running(&h, &baseline, pid);
        h.delete_force(&id).ok();
    }
    let new: Vec<MountEntry> = overlay_mounts()
        .into_iter()
        .filter(|m| !baseline.contains(m))
        .collect();
    assert!(new.is_empty(), "{new:#?}");
    h.assert_clean();
}

/// `root.readonly` (true in every default spec) does not apply to an overlay root: the
/// upper takes the writes and the bundle stays as it is. A read-only merged root is asked
/// for explicitly, with `run.harun.overlay.readonly`.
#[test]
fn an_overlay_root_is_writable_unless_asked_read_only() {
    let h = harun!();
    let mut b = h.bundle();
    b.set("/root/readonly", true);
    b.sh("echo written > /x && cat /x; grep ' / / ' /proc/self/mountinfo");
    let out = run(&h, &b, &h.id("rw"), &["--overlay"]).ok();
    assert!(out.stdout.starts_with("written\n"), "{out}");
    let root = mountinfo::parse(&out.stdout);
    let root = mountinfo::find(&root, "/").expect("root line");
    assert_eq!(
        (root.fstype.as_str(), root.is_ro()),
        ("overlay", false),
        "{out}"
    );
    assert!(!b.rootfs().join("x").exists());

    b.set("/annotations/run.harun.overlay.readonly", "true");
    b.sh("touch /x 2>&1; grep ' / / ' /proc/self/mountinfo");
    let out = run(&h, &b, &h.id("ro"), &["--overlay"]).ok();
    assert!(out.stdout.contains("Read-only file system"), "{out}");
    let root = mountinfo::parse(&out.stdout);
    let root = mountinfo::find(&root, "/").expect("root line");
    assert_eq!(
        (root.fstype.as_str(), root.is_ro()),
        ("overlay", true),
        "{out}"
    );
    assert!(!b.rootfs().join("x").exists());

    b.set("/annotations/run.harun.overlay.readonly", "yes");
    let id = h.id("bad");
    h.remember_id(&id);
    let out = h
        .cmd(["run", "--overlay", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .run();
    assert_eq!(
        out.error(&[]).stderr,
        "harun: annotations[\"run.harun.overlay.readonly\"]: unknown value `yes` (want \
         `true` or `false`)\n"
    );
    h.assert_clean();
}

#[test]
fn hundreds_of_long_layer_paths_beyond_one_page() {
    let h = harun!();
    let mut b = writable_bundle(&h);
    let long = "a-rather-long-layer-directory-name-to-overflow-one-page-of-mount-options";
    let layers: Vec<String> = (0..300)
        .map(|i| {
            let l = h.dir().join(format!("layers/{long}-{i:03}"));
            fs::create_dir_all(&l).unwrap();
            fs::write(l.join("top"), format!("{i}\n")).unwrap();
            fs::write(l.join(format!("f-{i:03}")), "").unwrap();
            path_str(&l)
        })
        .collect();
    assert!(layers.iter().map(|l| l.len() + 1).sum::<usize>() > 4 * 4096);
    b.sh("cat /top; ls / | grep -c '^f-'");
    let flags: Vec<&str> = layers
        .iter()
        .flat_map(|l| ["--layer", l.as_str()])
        .collect();
    let out = run(&h, &b, &h.id("many"), &flags).ok();
    assert_eq!(out.stdout, "299\n300\n", "{out}");
    // The same through the annotation.
    b.set(
        "/annotations/run.harun.overlay.layers",
        json!(layers).to_string(),
    );
    let out = run(&h, &b, &h.id("many-ann"), &[]).ok();
    assert_eq!(out.stdout, "299\n300\n", "{out}");
    h.assert_clean();
}

/// Runs `create` expecting a clean failure mentioning `keys`; nothing may be left.
fn create_fails(h: &Harun, b: &Bundle, flags: &[&str], keys: &[&str]) {
    let id = h.id("bad");
    h.remember_id(&id);
    h.cmd(["create", "--bundle"])
        .arg(b.dir())
        .args(flags)
        .arg(&id)
        .run()
        .error(keys);
    assert!(!h.root().join(&id).exists(), "state dir left by {flags:?}");
    h.assert_clean();
}

#[test]
fn bad_inputs_fail_cleanly_and_leave_nothing() {
    let h = harun!();
    let mut b = writable_bundle(&h);
    let layer = h.path("layer");
    fs::create_dir_all(layer.join("sub")).unwrap();
    fs::write(layer.join("file"), "").unwrap();
    let (ls, root) = (path_str(&layer), path_str(&b.rootfs()));
    let missing = path_str(&h.path("missing"));
    let new_upper = path_str(&h.path("new-upper"));
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec!["--layer".into(), missing.clone()],
            vec!["--layer", "does not exist"],
        ),
        (
            vec!["--layer".into(), "relative/dir".into()],
            vec!["--layer", "absolute"],
        ),
        (
            vec!["--layer".into(), format!("{ls}/file")],
            vec!["not a directory"],
        ),
        (
            vec!["--layer".into(), ls.clone(), "--layer".into(), ls.clone()],
            vec!["already a lower"],
        ),
        (
            vec!["--layer".into(), root.clone()],
            vec!["already a lower"],
        ),
        (
            vec!["--upper".into(), format!("{root}/up")],
            vec!["--upper", "inside the lower layer"],
        ),
        (
            vec![
                "--layer".into(),
                format!("{ls}/sub"),
                "--upper".into(),
                ls.clone(),
            ],
            vec!["--upper", "is inside upper"],
        ),
        (
            vec!["--upper".into(), "up".into()],
            vec!["--upper", "absolute"],
        ),
        (
            vec!["--upper".into(), "tmpfs:12q".into()],
            vec!["--upper: tmpfs size: invalid size `12q`: unknown unit `q`"],
        ),
        (
            vec!["--upper".into(), "tmpfs:0".into()],
            vec!["--upper: tmpfs size: invalid size `0`: must be at least 1 byte"],
        ),
        (
            vec!["--upper".into(), format!("{missing}/x")],
            vec!["parent directory", "does not exist"],
        ),
        (
            vec!["--upper".into(), format!("{ls}/file")],
            vec!["not a directory"],
        ),
    ];
    for (flags, keys) in &cases {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        create_fails(&h, &b, &flags, keys);
    }

    let annotations: [(&str, String, &[&str]); 5] = [
        (
            "run.harun.overlay",
            "yes".into(),
            &["annotations[\"run.harun.overlay\"]", "`yes`"],
        ),
        (
            "run.harun.overlay.layers",
            "/a:/b".into(),
            &["run.harun.overlay.layers", "JSON array"],
        ),
        (
            "run.harun.overlay.layers",
            json!([missing]).to_string(),
            &[
                "annotations[\"run.harun.overlay.layers\"][0]",
                "does not exist",
            ],
        ),
        (
            "run.harun.overlay.upper",
            "tmpfs:lots".into(),
            &["run.harun.overlay.upper", "tmpfs size: invalid size `lots`"],
        ),
        (
            "run.harun.overlay.uper",
            "tmpfs".into(),
            &["run.harun.overlay.uper", "unknown overlay annotation"],
        ),
    ];
    for (key, value, keys) in &annotations {
        let mut map = serde_json::Map::new();
        map.insert(key.to_string(), json!(value));
        b.set("/annotations", map);
        create_fails(&h, &b, &[], keys);
    }
    b.remove("/annotations");

    // Too many layers for the kernel: refused before anything happens.
    let many: Vec<String> = (0..500)
        .map(|i| {
            let l = h.dir().join(format!("many/{i}"));
            fs::create_dir_all(&l).unwrap();
            path_str(&l)
        })
        .collect();
    let flags: Vec<&str> = many.iter().flat_map(|l| ["--layer", l.as_str()]).collect();
    create_fails(&h, &b, &flags, &["501 lower layers", "at most 500"]);

    // A user namespace: not supported with an overlay (yet).
    b.namespace("user");
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    create_fails(&h, &b, &["--overlay"], &["user namespace", "not supported"]);
    b.without_namespace("user")
        .remove("/linux/uidMappings")
        .remove("/linux/gidMappings");

    // A failure in the init after the upper was made removes a new persistent upper.
    b.args(&["/no/such/program"]);
    create_fails(&h, &b, &["--upper", &new_upper], &["/no/such/program"]);
    assert!(
        !Path::new(&new_upper).exists(),
        "a failed create left {new_upper}"
    );
    h.assert_clean();
}

/// `create` run by `sh -c SCRIPT` inside `unshare -m` (a private mount namespace where
/// SCRIPT prepares mounts); the script gets `$0` = `dir` and execs harun.
fn create_in_private_ns(h: &Harun, b: &Bundle, dir: &Path, script: &str, flags: &[&str]) -> Out {
    let id = h.id("ns");
    h.remember_id(&id);
    let script = format!("{script} && exec \"$@\"");
    h.cmd(["create", "--bundle"])
        .arg(b.dir())
        .args(flags)
        .arg(&id)
        .wrap([
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            &path_str(dir),
        ])
        .run()
}

#[test]
fn uppers_on_file_systems_overlay_refuses_are_clear_errors() {
    let h = harun!();
    let b = writable_bundle(&h);
    let dir = h.path("fs");
    fs::create_dir_all(&dir).unwrap();
    let upper = path_str(&dir.join("u"));

    // Read-only file system: refused before anything is made.
    let ro = "mount -t tmpfs -o ro tmpfs \"$0\"";
    create_in_private_ns(&h, &b, &dir, ro, &["--upper", &upper])
        .error(&["--upper", "read-only file system"]);
    // An overlay as the upper's file system.
    let ovl = "mkdir -p \"$0/l\" \"$0/u0\" \"$0/w0\" && mount -t overlay overlay \
               -o \"lowerdir=$0/l,upperdir=$0/u0,workdir=$0/w0\" \"$0\"";
    create_in_private_ns(&h, &b, &dir, ovl, &["--upper", &upper])
        .error(&["--upper", "overlay file system"]);
    // work on another file system than upper.
    let split = "mkdir -p \"$0/u/upper\" \"$0/u/work\" && mount -t tmpfs tmpfs \"$0/u/work\"";
    create_in_private_ns(&h, &b, &dir, split, &["--upper", &upper]).error(&[
        "--upper",
        &format!("`{upper}/work` is on another file system"),
    ]);
    // Only the kernel knows: work on another mount (of the same file system) than upper.
    // The error comes from the init, after the state dir was made: still nothing is left.
    let bind = "mount --bind \"$0/u/work\" \"$0/u/work\"";
    create_in_private_ns(&h, &b, &dir, bind, &["--upper", &upper]).error(&[
        "mount the overlay rootfs",
        "EINVAL",
        "kernel log",
    ]);
    // The pre-existing dirs are kept, nothing else is left.
    assert!(dir.join("u/upper").is_dir() && dir.join("u/work").is_dir());
    assert!(fs::read_dir(h.root()).unwrap().next().is_none());
    h.assert_clean();
}

#[test]
fn a_create_killed_midway_is_cleaned_by_delete_force() {
    let h = harun!();
    let mut b = writable_bundle(&h);
    let (hook_pid, state) = (h.path("hook.pid"), h.path("state.json"));
    let script = format!(
        "cat > {} && echo $$ > {} && exec sleep 60",
        path_str(&state),
        path_str(&hook_pid)
    );
    b.hook("createRuntime", "/bin/sh", &["sh", "-c", &script]);
    let id = h.id("crash");
    h.remember_id(&id);
    let create = h
        .cmd(["create", "--bundle"])
        .arg(b.dir())
        .args(["--overlay"])
        .arg(&id)
        .spawn();
    // The hook runs after the init mounted the overlay: the upper is in use now.
    wait_for("the hook", || {
        fs::read_to_string(&hook_pid).is_ok_and(|s| s.ends_with('\n'))
    });
    assert!(h.root().join(&id).join("overlay/upper").is_dir());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(create.pid()),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let out = create.wait();
    assert_eq!(out.code, 128 + 9, "{out}");
    let hook: i32 = fs::read_to_string(&hook_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(hook), nix::sys::signal::SIGKILL);
    // The init died with its parent (PR_SET_PDEATHSIG); we are its subreaper now.
    let state: serde_json::Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
    let init = state["pid"].as_i64().unwrap() as i32;
    for pid in [hook, init] {
        wait_for("death", || {
            harun_integration::procs::stat(pid).is_none_or(|(s, _)| s == 'Z')
        });
        harun_integration::procs::reap(pid);
    }
    assert!(
        h.root().join(&id).exists(),
        "the crash left no state dir to clean"
    );
    h.delete_force(&id).ok();
    assert!(!h.root().join(&id).exists());
    let names: BTreeSet<String> = fs::read_dir(h.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.is_empty(), "{names:?}");
    h.assert_clean();
}

#[test]
fn a_persistent_upper_serves_one_container_at_a_time() {
    let h = harun!();
    let mut b = writable_bundle(&h);
    let dir = path_str(&h.path("shared-upper"));
    let flags = ["--upper", dir.as_str()];
    b.sh("exec sleep 1000");
    let first = h.id("first");
    h.remember_id(&first);
    h.cmd(["create", "--bundle"])
        .arg(b.dir())
        .arg("--pid-file")
        .arg(h.pid_file(&first))
        .args(flags)
        .arg(&first)
        .run()
        .ok();
    h.track(h.pid_from_file(&first).unwrap());
    // Even before start, the upper is taken: a second overlay on it would corrupt it.
    let second = h.id("second");
    h.remember_id(&second);
    h.cmd(["create", "--bundle"])
        .arg(b.dir())
        .args(flags)
        .arg(&second)
        .run()
        .error(&["persistent upper", "in use by container", &first]);
    assert!(!h.root().join(&second).exists());
    h.delete_force(&first).ok();
    // Free again once that container is gone.
    b.sh("echo ok");
    assert_eq!(run(&h, &b, &second, &flags).ok().stdout, "ok\n");
    h.assert_clean();
}
