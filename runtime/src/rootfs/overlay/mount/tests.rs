//! Pure helpers by table; the mounts themselves in a child test process that `unshare`
//! puts into a private mount namespace (so nothing reaches the host's mount table and all
//! of it vanishes with the child).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{umount2, MntFlags};
use nix::sys::stat::{mknod, Mode, SFlag};

use super::*;
use crate::rootfs::overlay::{Plan, Upper};

#[test]
fn kernel_releases_with_lowerdir_plus() {
    let cases = [
        ("6.8.0", true),
        ("6.18.44-fc-v669", true),
        ("6.10.0-rc1", true),
        ("7.0.0", true),
        ("6.7.12", false),
        ("6.1.0-28-amd64", false),
        ("5.10.0", false),
        ("6", false),
        ("", false),
        ("garbage", false),
    ];
    for (release, want) in cases {
        assert_eq!(has_lowerdir_plus(release), want, "{release}");
    }
}

#[test]
fn legacy_data_lists_lowers_top_first() {
    let l = Layers {
        lowers: vec!["/proc/self/fd/9".into(), "/proc/self/fd/8".into()],
        upper: "/proc/self/fd/10".into(),
        work: "/proc/self/fd/11".into(),
    };
    assert_eq!(
        legacy_data(&l),
        "lowerdir=/proc/self/fd/9:/proc/self/fd/8,upperdir=/proc/self/fd/10,workdir=/proc/self/fd/11"
    );
}

#[test]
fn kernel_messages_name_host_paths() {
    let names = [
        ("/proc/self/fd/1".to_string(), "/one".to_string()),
        ("/proc/self/fd/12".to_string(), "/twelve".to_string()),
    ];
    assert_eq!(
        unalias("overlay: bad /proc/self/fd/12 and /proc/self/fd/1", &names),
        "overlay: bad /twelve and /one"
    );
}

const CHILD_ENV: &str = "HARUN_OVERLAY_TEST_DIR";
const CHILD_TEST: &str = "rootfs::overlay::mount::tests::child_in_private_mount_ns";

/// Runs [`child_in_private_mount_ns`] under `unshare --mount --propagation private`.
#[test]
fn mounts_in_a_private_mount_namespace() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = std::env::temp_dir().join(format!("harun-ovl-mount-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dir)
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let host_mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "child did not run:\n{text}");
    assert!(
        !host_mounts.contains(dir.to_str().unwrap()),
        "mount leaked to the host"
    );
    assert!(!dir.exists());
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"))
}

/// Three lowers: `a` in each (the top wins), `gone` whited out by the top one.
fn three_layers(dir: &Path) -> Vec<PathBuf> {
    let lowers: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("l{i}"))).collect();
    for (i, l) in lowers.iter().enumerate() {
        write(&l.join("a"), &format!("l{i}"));
        write(&l.join(format!("only{i}")), "x");
    }
    write(&lowers[0].join("gone"), "x");
    mknod(&lowers[2].join("gone"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
    fs::set_permissions(&lowers[2], fs::Permissions::from_mode(0o751)).unwrap();
    lowers
}

fn bind_self(p: &Path) {
    let none: Option<&str> = None;
    nix::mount::mount(Some(p), p, none, MsFlags::MS_BIND, none).unwrap();
}

fn umount_all(p: &Path) {
    while umount2(p, MntFlags::MNT_DETACH).is_ok() {}
}

#[test]
#[ignore = "run by mounts_in_a_private_mount_namespace in its own mount namespace"]
fn child_in_private_mount_ns() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return;
    };
    // 1. The init's path: tmpfs upper of 1 MiB on the bottom lower (the "rootfs").
    let lowers = three_layers(&dir.join("stack"));
    let rootfs = lowers[0].clone();
    bind_self(&rootfs);
    let plan = Plan {
        lowers: lowers.clone(),
        upper: Upper::Tmpfs {
            size: Some(1 << 20),
        },
        upper_origin: None,
        readonly: false,
    };
    mount(&plan, &rootfs).unwrap();
    assert_eq!(read(&rootfs.join("a")), "l2", "the topmost layer wins");
    assert!(!rootfs.join("gone").exists(), "whiteout in a higher layer");
    for i in 0..3 {
        assert!(rootfs.join(format!("only{i}")).exists(), "only{i}");
    }
    let mode = fs::metadata(&rootfs).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o751, "the merged root keeps the top layer's mode");
    write(&rootfs.join("new"), "written");
    let big = fs::write(rootfs.join("big"), vec![0u8; 2 << 20]).unwrap_err();
    assert_eq!(big.raw_os_error(), Some(libc::ENOSPC), "{big}");
    umount_all(&rootfs);
    assert!(!lowers[0].join("new").exists(), "a lower was written");
    assert_eq!(read(&lowers[0].join("a")), "l0");

    // 2. mount(2) (the pre-6.8 path) with an upper on disk.
    let up = dir.join("disk");
    for d in ["upper", "work", "merged"] {
        fs::create_dir_all(up.join(d)).unwrap();
    }
    let fds: Vec<OwnedFd> = lowers.iter().map(|p| open_dir(p).unwrap()).collect();
    let (u, w) = (
        open_dir(&up.join("upper")).unwrap(),
        open_dir(&up.join("work")).unwrap(),
    );
    let layers = Layers {
        lowers: fds.iter().rev().map(fd_path).collect(),
        upper: fd_path(&u),
        work: fd_path(&w),
    };
    let merged = up.join("merged");
    mount_layers(&layers, &merged, false, &[]).unwrap();
    assert_eq!(read(&merged.join("a")), "l2");
    fs::remove_file(merged.join("only0")).unwrap();
    assert!(!merged.join("only0").exists());
    assert!(lowers[0].join("only0").exists(), "a lower was written");

    // 3. An overlay refuses an upper on an overlay; the kernel's reason reaches the error.
    if has_lowerdir_plus(&fs::read_to_string("/proc/sys/kernel/osrelease").unwrap()) {
        fs::create_dir_all(merged.join("up/upper")).unwrap();
        fs::create_dir_all(merged.join("up/work")).unwrap();
        let (u2, w2) = (
            open_dir(&merged.join("up/upper")).unwrap(),
            open_dir(&merged.join("up/work")).unwrap(),
        );
        let l2 = Layers {
            lowers: vec![fd_path(&fds[0])],
            upper: fd_path(&u2),
            work: fd_path(&w2),
        };
        let names = [(fd_path(&u2), "/the/upper".to_string())];
        let target = dir.join("nested");
        fs::create_dir_all(&target).unwrap();
        let e = mount_layers(&l2, &target, true, &names)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not supported as upperdir") && e.contains("/the/upper"),
            "{e}"
        );
    }
    umount_all(&merged);

    // 4. Many layers: one page of mount(2) options is not enough, `lowerdir+` is.
    let many: Vec<PathBuf> = (0..300).map(|i| dir.join(format!("many/{i:03}"))).collect();
    for (i, l) in many.iter().enumerate() {
        write(&l.join("top"), &i.to_string());
    }
    let fds: Vec<OwnedFd> = many.iter().map(|p| open_dir(p).unwrap()).collect();
    let layers = Layers {
        lowers: fds.iter().rev().map(fd_path).collect(),
        upper: fd_path(&u),
        work: fd_path(&w),
    };
    let e = mount_layers(&layers, &merged, false, &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("300 lower layers") && e.contains("more than one page"),
        "{e}"
    );
    if has_lowerdir_plus(&fs::read_to_string("/proc/sys/kernel/osrelease").unwrap()) {
        mount_layers(&layers, &merged, true, &[]).unwrap();
        assert_eq!(read(&merged.join("top")), "299");
        umount_all(&merged);
    }
}
