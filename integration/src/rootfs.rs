//! A busybox root filesystem: Debian's static busybox, one symlink per applet, the usual
//! directories and /etc/passwd + /etc/group.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Users of the test rootfs: root, nobody (65534) and `test` (1000).
pub const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
test:x:1000:1000:test:/home/test:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";

/// Groups of the test rootfs; `tty` (5) is what the default devpts mount's gid=5 names.
pub const GROUP: &str = "\
root:x:0:
tty:x:5:
test:x:1000:
nogroup:x:65534:
";

/// The busybox binary to copy: `$HARUN_BUSYBOX`, else /bin/busybox (busybox-static).
pub fn busybox_path() -> PathBuf {
    std::env::var_os("HARUN_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"))
}

/// Fills `rootfs` (created if missing) with busybox, its applet links, dev proc sys etc tmp
/// root home/test, /etc/passwd and /etc/group. Nothing is shared with other rootfs dirs.
pub fn make_busybox_rootfs(rootfs: &Path) -> io::Result<()> {
    let busybox = busybox_path();
    let applets = applets(&busybox)?;
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home/test", 0o755),
    ] {
        let path = rootfs.join(dir);
        fs::create_dir_all(&path).map_err(ctx("mkdir", &path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(ctx("chmod", &path))?;
    }
    std::os::unix::fs::chown(rootfs.join("home/test"), Some(1000), Some(1000))?;
    let target = rootfs.join("bin/busybox");
    fs::copy(&busybox, &target).map_err(ctx("copy busybox to", &target))?;
    for applet in applets.iter().filter(|a| a.as_str() != "busybox") {
        let link = rootfs.join("bin").join(applet);
        symlink("busybox", &link).map_err(ctx("symlink", &link))?;
    }
    fs::write(rootfs.join("etc/passwd"), PASSWD)?;
    fs::write(rootfs.join("etc/group"), GROUP)?;
    Ok(())
}

/// `busybox --list`: the applet names (plain names, no slashes).
fn applets(busybox: &Path) -> io::Result<Vec<String>> {
    let out = Command::new(busybox).arg("--list").output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "run `{} --list`: {e} (install busybox-static: apt-get install -y busybox-static)",
                busybox.display()
            ),
        )
    })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`{} --list` failed",
            busybox.display()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/') && *a != "." && *a != "..")
        .map(str::to_string)
        .collect())
}

fn ctx<'a>(op: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}
