//! Host programs inside a busybox test container, for tests that need more than busybox:
//! the host's /usr bind-mounted read-only and its /lib* entries mirrored, as in an image
//! built on a glibc distribution (so host perl, coreutils `id` or the harun binary itself
//! can run in the container). Also small bundle edits those tests share.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use serde_json::Value;

use crate::Bundle;

/// Top-level entries of the host that dynamic binaries need besides /usr (the loader
/// lives in /lib64 or /lib, which are symlinks into /usr on merged-/usr systems).
const LIB_DIRS: [&str; 4] = ["lib", "lib64", "lib32", "libx32"];

/// Makes host binaries runnable in the bundle's container: /usr read-only bind-mounted,
/// each host /lib* symlink copied into the rootfs, each real /lib* directory read-only
/// bind-mounted. The container's own /bin (busybox) stays as it was.
pub fn share_host_usr(b: &mut Bundle) {
    let rootfs = b.rootfs();
    fs::create_dir_all(rootfs.join("usr")).expect("mkdir rootfs/usr");
    b.mount("/usr", "bind", "/usr", &["rbind", "ro", "nosuid", "nodev"]);
    for name in LIB_DIRS {
        let host = Path::new("/").join(name);
        let Ok(md) = fs::symlink_metadata(&host) else {
            continue;
        };
        let inside = rootfs.join(name);
        if md.file_type().is_symlink() {
            let target = fs::read_link(&host).expect("readlink host lib dir");
            symlink(&target, &inside)
                .unwrap_or_else(|e| panic!("symlink {}: {e}", inside.display()));
        } else if md.is_dir() {
            fs::create_dir_all(&inside).expect("mkdir rootfs lib dir");
            let dest = format!("/{name}");
            let src = host.to_string_lossy().into_owned();
            b.mount(&dest, "bind", &src, &["rbind", "ro", "nosuid", "nodev"]);
        }
    }
}

/// Sets `KEY=VALUE` in process.env, replacing every earlier `KEY=` entry (Bundle::env only
/// appends, and the first PATH would win).
pub fn set_env(b: &mut Bundle, key: &str, value: &str) {
    let prefix = format!("{key}=");
    b.edit(|c| {
        let env = c
            .pointer_mut("/process/env")
            .and_then(Value::as_array_mut)
            .expect("process.env is an array");
        env.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
        env.push(Value::from(format!("{prefix}{value}")));
    });
}

/// Copies `src` to `dst` (parents created) with permission bits `mode`, set after the
/// copy so setuid survives.
pub fn install(src: &Path, dst: &Path, mode: u32) -> io::Result<()> {
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(src, dst)?;
    fs::set_permissions(dst, fs::Permissions::from_mode(mode))
}

/// Whether `program` is found in the host's PATH (for a clear message when a test needs it).
pub fn host_has(program: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    path.split(':')
        .map(|d| Path::new(d).join(program))
        .any(|p| p.is_file())
}

/// A `Cmd::wrap` wrapper that runs harun under strace, following forks, with `micros` of
/// delay injected at every `syscall`'s entry (`exit: false`) or exit (`exit: true`): holds
/// harun's processes still at a chosen point, to make a race window certain. Panics with an
/// install hint when strace is missing.
pub fn strace_delay(syscall: &str, exit: bool, micros: u64) -> Vec<String> {
    assert!(
        host_has("strace"),
        "this test holds harun processes still with strace: apt-get install strace"
    );
    let at = if exit { "delay_exit" } else { "delay_enter" };
    [
        "strace".to_string(),
        "-f".into(),
        "-qq".into(),
        "-o".into(),
        "/dev/null".into(),
        "-e".into(),
        format!("trace={syscall}"),
        "-e".into(),
        format!("inject={syscall}:{at}={micros}"),
    ]
    .into()
}
