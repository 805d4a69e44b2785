//! `linux.seccomp`: the container's process runs under the profile's filter. Every effect is
//! checked from what busybox in the container prints (errno texts, exit codes) and from
//! /proc/self/status; bad profiles fail `create` with the field named and nothing left.

use harun_integration::procs::parse_kv;
use harun_integration::{harun, Bundle, Harun};
use serde_json::{json, Value};

/// The profile containerd writes into config.json for a default container (amd64).
const DOCKER_DEFAULT: &str = include_str!("fixtures/seccomp/docker-default.json");

fn docker_default() -> Value {
    serde_json::from_str(DOCKER_DEFAULT).expect("fixture is JSON")
}

/// A bundle running `script` with a writable /tmp and no core dumps (SIGSYS dumps core).
fn bundle(h: &Harun, script: &str) -> Bundle {
    let mut b = h.bundle();
    b.mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev"])
        .push(
            "/process/rlimits",
            json!({"type": "RLIMIT_CORE", "soft": 0, "hard": 0}),
        )
        .sh(script);
    b
}

/// The Seccomp lines of /proc/self/status, printed by the container as `k=v`.
const STATUS: &str = "awk '/^(Seccomp|Seccomp_filters|NoNewPrivs):/ {print $1 \"=\" $2}' \
                      /proc/self/status | tr -d :";

#[test]
fn errno_ret_is_the_errno_the_call_fails_with() {
    let h = harun!();
    let script = format!(
        "{STATUS}; mkdir /tmp/d; echo mkdir=$?; [ -d /tmp/d ] && echo made; \
         touch /tmp/f && echo touch=ok"
    );
    let mut b = bundle(&h, &script);
    // Control: without the filter mkdir works.
    let out = h.run(&h.id("plain"), &b).ok();
    let kv = parse_kv(&out.stdout);
    assert_eq!(kv["mkdir"], "0", "{out}");
    assert_eq!(kv["Seccomp"], "0", "{out}");
    assert!(out.stdout.contains("made"), "{out}");

    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]}),
    );
    let out = h.run(&h.id("errno"), &b).ok();
    let kv = parse_kv(&out.stdout);
    assert_eq!(kv["mkdir"], "1", "{out}");
    assert!(!out.stdout.contains("made"), "{out}");
    // EXDEV (18): a number mkdir never fails with here on its own.
    assert!(
        out.stderr
            .contains("mkdir: can't create directory '/tmp/d': Invalid cross-device link"),
        "{out}"
    );
    assert_eq!(kv["touch"], "ok", "other calls pass: {out}");
    // One filter (not a chain), and no_new_privs from the example config.
    assert_eq!(kv["Seccomp"], "2", "{out}");
    assert_eq!(kv["Seccomp_filters"], "1", "{out}");
    assert_eq!(kv["NoNewPrivs"], "1", "{out}");
    h.assert_clean();
}

#[test]
fn kill_process_kills_with_sigsys() {
    let h = harun!();
    let mut b = bundle(&h, "mkdir /tmp/d; echo mkdir=$?");
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
    );
    // The shell survives its child: only the calling process dies, by SIGSYS (31).
    let out = h.run(&h.id("shell"), &b).ok();
    assert_eq!(parse_kv(&out.stdout)["mkdir"], "159", "{out}");

    // As the container's process itself, it ends the container: 128 + SIGSYS.
    b.args(&["mkdir", "/tmp/d"]);
    h.run(&h.id("direct"), &b).exit(159);
    h.assert_clean();
}

#[test]
fn argument_conditions_match_only_their_values() {
    let h = harun!();
    let mut b = bundle(
        &h,
        "linux64 true; echo linux64=$?; linux32 true; echo linux32=$?; \
         head -1 /etc/passwd >/tmp/copy; echo create=$?; \
         head -c 4 /etc/passwd; echo; echo read=$?",
    );
    // personality(PER_LINUX) allowed, any other persona EXDEV; opens with O_CREAT (0100 on
    // x86_64 and aarch64) EACCES, other opens pass. `open` exists on x86_64 only (skipped
    // elsewhere).
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
            {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 2, "value": 64, "valueTwo": 64, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 1, "value": 64, "valueTwo": 64, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]}),
    );
    let out = h.run(&h.id("args"), &b).ok();
    let kv = parse_kv(&out.stdout);
    assert_eq!(kv["linux64"], "0", "{out}");
    assert_eq!(kv["linux32"], "1", "{out}");
    assert!(
        out.stderr
            .contains("linux32: personality(0x8): Invalid cross-device link"),
        "{out}"
    );
    assert_ne!(kv["create"], "0", "{out}");
    assert!(
        out.stderr
            .contains("can't create /tmp/copy: Permission denied"),
        "{out}"
    );
    assert_eq!(kv["read"], "0", "{out}");
    assert!(out.stdout.contains("root\n"), "{out}");
    h.assert_clean();
}

#[test]
fn default_deny_profile_with_an_allow_list_runs_busybox() {
    let h = harun!();
    let mut b = bundle(
        &h,
        "echo hello; mkdir /tmp/d; echo mkdir=$?; cat /proc/self/comm",
    );
    // What busybox sh, echo and cat need on x86_64 and aarch64 (names of the other
    // architecture are skipped). mkdir and mkdirat are not in it.
    let allow = [
        "execve",
        "brk",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "readlink",
        "readlinkat",
        "getrandom",
        "mmap",
        "munmap",
        "mprotect",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "getpid",
        "getppid",
        "prctl",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "read",
        "write",
        "writev",
        "open",
        "openat",
        "close",
        "fcntl",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "statx",
        "lseek",
        "sendfile",
        "clone",
        "clone3",
        "fork",
        "vfork",
        "wait4",
        "exit",
        "exit_group",
        "uname",
        "getcwd",
        "chdir",
        "dup2",
        "dup3",
    ];
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ERRNO",
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
               "syscalls": [{"names": &allow[..], "action": "SCMP_ACT_ALLOW"}]}),
    );
    let out = h.run(&h.id("deny"), &b).ok();
    let kv = parse_kv(&out.stdout);
    assert!(out.stdout.starts_with("hello\n"), "{out}");
    assert_eq!(kv["mkdir"], "1", "{out}");
    assert!(
        out.stderr
            .contains("mkdir: can't create directory '/tmp/d': Operation not permitted"),
        "{out}"
    );
    assert!(out.stdout.ends_with("cat\n"), "{out}");
    h.assert_clean();
}

#[test]
fn docker_default_profile_is_accepted_and_runs_a_shell() {
    let h = harun!();
    let mut b = bundle(
        &h,
        &format!(
            "{STATUS}; echo hello > /tmp/f; cat /tmp/f; mkdir /tmp/d && echo mkdir=ok; \
             linux32 true && echo linux32=ok; unshare -U true; echo unshare=$?"
        ),
    );
    b.set("/linux/seccomp", docker_default());
    let out = h.run(&h.id("docker"), &b).ok();
    let kv = parse_kv(&out.stdout);
    assert!(out.stdout.contains("hello\n"), "{out}");
    assert_eq!(kv["mkdir"], "ok", "{out}");
    assert_eq!(kv["linux32"], "ok", "{out}");
    // Creating a user namespace needs no capability, but the profile refuses unshare.
    assert_eq!(kv["unshare"], "1", "{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    assert_eq!(kv["Seccomp"], "2", "{out}");
    assert_eq!(kv["Seccomp_filters"], "1", "{out}");
    h.assert_clean();
}

#[test]
fn without_no_new_privileges_the_filter_is_installed_before_the_user_change() {
    // Docker's usual case: no no_new_privs, a non-root user without CAP_SYS_ADMIN. The
    // kernel only lets a process holding CAP_SYS_ADMIN install a filter then.
    let h = harun!();
    let mut b = bundle(
        &h,
        &format!("{STATUS}; id -u; unshare -U true; echo unshare=$?"),
    );
    b.set("/linux/seccomp", docker_default())
        .set("/process/noNewPrivileges", false)
        .set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let out = h.run(&h.id("nonnp"), &b).ok();
    let kv = parse_kv(&out.stdout);
    assert_eq!(kv["Seccomp"], "2", "{out}");
    assert_eq!(kv["NoNewPrivs"], "0", "{out}");
    assert!(out.stdout.contains("\n1000\n"), "{out}");
    assert_eq!(kv["unshare"], "1", "{out}");
    h.assert_clean();
}

/// Edits a good bundle's seccomp profile, `create`s it and expects a clean failure.
fn bad_profile(profile: Value, keys: &[&str]) {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]).set("/linux/seccomp", profile);
    let id = h.id("bad");
    h.create(&id, &b).error(keys);
    h.state(&id).error(&["does not exist"]);
    h.assert_clean();
}

fn one_rule(rule: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"}, rule]})
}

#[test]
fn unknown_action_fails_create() {
    bad_profile(
        one_rule(json!({"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"})),
        &["linux.seccomp.syscalls[1].action", "SCMP_ACT_EXPLODE"],
    );
}

#[test]
fn unknown_architecture_fails_create() {
    bad_profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]}),
        &["linux.seccomp.architectures[0]", "SCMP_ARCH_PDP11"],
    );
}

#[test]
fn unknown_operator_fails_create() {
    bad_profile(
        one_rule(json!({"names": ["kill"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_ALMOST"}]})),
        &["linux.seccomp.syscalls[1].args[0].op", "SCMP_CMP_ALMOST"],
    );
}

#[test]
fn notify_is_not_supported() {
    bad_profile(
        one_rule(json!({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"})),
        &[
            "linux.seccomp.syscalls[1].action",
            "SCMP_ACT_NOTIFY",
            "not supported",
        ],
    );
}

#[test]
fn argument_index_out_of_range_fails_create() {
    bad_profile(
        one_rule(json!({"names": ["kill"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 6, "value": 9, "op": "SCMP_CMP_EQ"}]})),
        &["linux.seccomp.syscalls[1].args[0].index", "6"],
    );
}

#[test]
fn errno_ret_on_allow_fails_create() {
    bad_profile(
        one_rule(json!({"names": ["kill"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1})),
        &["linux.seccomp.syscalls[1].errnoRet"],
    );
}
