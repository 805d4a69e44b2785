//! `noNewPrivileges: false` with a default-deny seccomp profile that allows only what runc's
//! init calls after installing the filter (plus what busybox `sh -c 'echo ok'` needs): the
//! container starts, as with runc. Without no_new_privs the filter must go in while the
//! runtime still holds CAP_SYS_ADMIN, so whatever the runtime does between the filter and
//! execve runs under the container's profile; a profile written for runc must be enough.
//! The fixture and how it was measured: tests/fixtures/seccomp/README.md.
//!
//! The profile lists x86_64 syscalls (aarch64 has other names for some, e.g. no `readlink`),
//! so these tests are x86_64 only.
#![cfg(target_arch = "x86_64")]

use std::path::Path;
use std::process::Command;

use harun_integration::{harun, Bundle, Harun};
use serde_json::{json, Value};

const RUNC_INIT_MINIMAL: &str = include_str!("fixtures/seccomp/runc-init-minimal.json");
const RUNC: &str = "/usr/sbin/runc";

fn profile() -> Value {
    serde_json::from_str(RUNC_INIT_MINIMAL).expect("fixture is JSON")
}

/// `sh -c 'echo ok'` under the profile, without no_new_privs.
fn bundle(h: &Harun) -> Bundle {
    let mut b = h.bundle();
    b.set("/process/noNewPrivileges", false)
        .set("/linux/seccomp", profile())
        .sh("echo ok");
    b
}

/// A non-root user with an extra group, a cwd other than `/` and a startContainer hook
/// (busybox in the container, under the same profile).
fn as_user_with_cwd_and_hook(b: &mut Bundle) {
    b.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5]}),
    )
    .set("/process/cwd", "/home/test")
    .hook("startContainer", "/bin/sh", &["sh", "-c", "echo hook"])
    // Builtins only: `$(id -u)` would fork and wait, which the profile does not allow.
    .sh("echo ok $PWD");
}

/// A container process that blocks, calling nothing the profile lacks: busybox `cat` opening
/// a fifo nobody writes (sleep would need nanosleep).
fn blocking(b: &mut Bundle) {
    let fifo = b.rootfs().join("blocker");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666))
        .expect("mkfifo in the rootfs");
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod the fifo");
    b.args(&["cat", "/blocker"]);
}

/// The `Uid:` line of /proc/PID/status and the cwd, seen from the host.
fn uid_and_cwd(pid: i32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
    (uid, cwd.to_string_lossy().into_owned())
}

/// runc on the same bundle (`--root` inside the test's dir): `runc ARGS...`. stdout and
/// stderr go through files: a detached container keeps them open.
fn runc(h: &Harun, args: &[&str]) -> std::process::Output {
    let root = h.dir().join("runc-root");
    let file = |name: &str| {
        let path = h.path(name);
        (
            std::fs::File::create(&path).expect("create output file"),
            path,
        )
    };
    let ((out, out_path), (err, err_path)) = (file("runc.stdout"), file("runc.stderr"));
    let status = Command::new(RUNC)
        .arg("--root")
        .arg(&root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .expect("run runc");
    std::process::Output {
        status,
        stdout: std::fs::read(out_path).unwrap_or_default(),
        stderr: std::fs::read(err_path).unwrap_or_default(),
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Control: the profile is enough for runc 1.1.5 (when it is installed), in every case the
/// harun tests below run.
#[test]
fn runc_starts_and_execs_under_the_profile() {
    if !Path::new(RUNC).exists() {
        eprintln!("skipped: no {RUNC}");
        return;
    }
    let h = harun!();
    let mut b = bundle(&h);
    let out = runc(
        &h,
        &["run", "--bundle", &b.dir().to_string_lossy(), "plain"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        text(&out)
    );

    as_user_with_cwd_and_hook(&mut b);
    let out = runc(&h, &["run", "--bundle", &b.dir().to_string_lossy(), "user"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "ok /home/test\n", "{}", text(&out));

    let mut b = bundle(&h);
    as_user_with_cwd_and_hook(&mut b);
    blocking(&mut b);
    let bundle_dir = b.dir().to_string_lossy().into_owned();
    let out = runc(&h, &["run", "-d", "--bundle", &bundle_dir, "blocked"]);
    assert!(out.status.success(), "{}", text(&out));
    let exec = runc(&h, &["exec", "blocked", "sh", "-c", "echo ok $PWD"]);
    let root = runc(
        &h,
        &[
            "exec",
            "--user",
            "0:0",
            "--cwd",
            "/",
            "blocked",
            "sh",
            "-c",
            "echo ok $PWD",
        ],
    );
    let deleted = runc(&h, &["delete", "--force", "blocked"]);
    for (out, want) in [(&exec, "ok /home/test\n"), (&root, "ok /\n")] {
        assert!(out.status.success(), "{}", text(out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{}", text(out));
    }
    assert!(deleted.status.success(), "{}", text(&deleted));
    h.assert_clean();
}

#[test]
fn harun_starts_a_root_process_under_the_profile() {
    let h = harun!();
    let b = bundle(&h);
    let out = h.run(&h.id("plain"), &b).ok();
    assert_eq!(out.stdout, "ok\n", "{out}");
    h.assert_clean();
}

#[test]
fn harun_starts_a_user_process_with_a_cwd_and_a_start_hook_under_the_profile() {
    let h = harun!();
    let mut b = bundle(&h);
    as_user_with_cwd_and_hook(&mut b);
    let out = h.run(&h.id("user"), &b).ok();
    assert_eq!(out.stdout, "hook\nok /home/test\n", "{out}");
    h.assert_clean();
}

#[test]
fn harun_execs_into_a_container_under_the_profile() {
    let h = harun!();
    let mut b = bundle(&h);
    as_user_with_cwd_and_hook(&mut b);
    blocking(&mut b);
    let id = h.id("blocked");
    h.create(&id, &b).ok();
    // Into the created container (the container's user and cwd), then into the running one
    // (as root, in /).
    let out = h.exec(&["exec", &id, "sh", "-c", "echo ok $PWD"]).ok();
    assert_eq!(out.stdout, "ok /home/test\n", "{out}");
    let start = h.start(&id).ok();
    assert_eq!(start.stdout, "hook\n", "{start}");
    let pid = h.wait_status(&id, "running").pid;
    let (uid, cwd) = uid_and_cwd(pid);
    assert_eq!(
        (uid.as_str(), cwd.as_str()),
        ("1000 1000 1000 1000", "/home/test")
    );
    let root = [
        "exec",
        "--user",
        "0:0",
        "--cwd",
        "/",
        &id,
        "sh",
        "-c",
        "echo ok $PWD",
    ];
    let out = h.exec(&root).ok();
    assert_eq!(out.stdout, "ok /\n", "{out}");
    h.delete_force(&id).ok();
    h.assert_clean();
}

/// With no_new_privs the filter goes in right before execve: the same profile is plenty.
#[test]
fn with_no_new_privileges_the_profile_is_enough_too() {
    let h = harun!();
    let mut b = bundle(&h);
    as_user_with_cwd_and_hook(&mut b);
    b.set("/process/noNewPrivileges", true);
    let out = h.run(&h.id("nnp"), &b).ok();
    assert_eq!(out.stdout, "hook\nok /home/test\n", "{out}");
    h.assert_clean();
}
