//! `linux.seccomp`: the container's process runs under the profile's filter. Every effect is
//! checked from what busybox or a static probe in the container prints (errno texts and
//! numbers, exit codes) and from /proc/self/status, and where it matters against runc
//! 1.1.5 on the same bundle; bad profiles fail `create` with the field named and nothing
//! left.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use harun_integration::procs::parse_kv;
use harun_integration::{harun, Bundle, Harun, Out};
use serde_json::{json, Value};

/// The profile containerd writes into config.json for a default container (amd64).
const DOCKER_DEFAULT: &str = include_str!("fixtures/seccomp/docker-default.json");
/// The profile podman 4.3 writes for a default container (amd64); see the fixtures' README.
const PODMAN_DEFAULT: &str = include_str!("fixtures/seccomp/podman-default.json");
/// The reference runtime: Debian 12's runc 1.1.5 (libseccomp 2.5.4).
const RUNC: &str = "/usr/sbin/runc";

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
    // elsewhere). (An ALLOW rule for PER_LINUX before an EXDEV rule without conditions
    // would not do: runc drops rules with the default action, and the EXDEV rule alone
    // would decide.)
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]},
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

/// Compiles the static probe (tests/fixtures/seccomp/probe.c) into the bundle's /bin/probe.
/// `cc` is there wherever cargo links Rust on Linux (`-static` needs libc.a, libc6-dev:
/// Rust's own link needs that package too); without one (the aarch64 test VM's busybox
/// guest runs prebuilt test binaries) the test is skipped, saying so: false.
fn add_probe(b: &Bundle, test: &str) -> bool {
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seccomp/probe.c"
    );
    let dst = b.rootfs().join("bin/probe");
    let out = match Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&dst)
        .arg(src)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("{test}: skipped, no C compiler (`cc`) to build the probe");
            return false;
        }
        Err(e) => panic!("run cc: {e}"),
    };
    assert!(
        out.status.success(),
        "cc -static {src}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// One system call for the probe: a label, the number and up to six integer arguments.
struct Call {
    label: &'static str,
    arg: String,
}

fn call(label: &'static str, nr: libc::c_long, args: &[u64]) -> Call {
    let args: Vec<String> = args.iter().map(|a| format!("{a:#x}")).collect();
    let arg = if args.is_empty() {
        nr.to_string()
    } else {
        format!("{nr}:{}", args.join(","))
    };
    Call { label, arg }
}

/// `probe CALLS...` as the container's command line.
fn probe_args(calls: &[Call]) -> Vec<String> {
    std::iter::once("probe".to_string())
        .chain(calls.iter().map(|c| c.arg.clone()))
        .collect()
}

/// What each call returned, by label: 0 or the errno, from the probe's `ARG=N` lines.
fn results(stdout: &str, calls: &[Call]) -> BTreeMap<&'static str, i32> {
    let kv = parse_kv(stdout);
    calls
        .iter()
        .map(|c| {
            let v = kv
                .get(&c.arg)
                .unwrap_or_else(|| panic!("no {}:\n{stdout}", c.arg));
            (c.label, v.parse().expect("errno number"))
        })
        .collect()
}

/// Runs `b` under harun, then under runc as the reference when /usr/sbin/runc exists, and
/// asserts that both printed the same; returns harun's output.
fn same_as_runc(h: &Harun, b: &Bundle, name: &str) -> Out {
    let out = h.run(&h.id(name), b).ok();
    if !Path::new(RUNC).exists() {
        eprintln!("{name}: no {RUNC}, harun's output not compared with runc's");
        return out;
    }
    let runc = Harun::new(RUNC);
    let reference = runc.run(&runc.id(name), b).ok();
    assert_eq!(
        out.stdout, reference.stdout,
        "harun and runc differ\nharun: {out}\nrunc: {reference}"
    );
    runc.assert_clean();
    eprintln!("{name}: harun and runc both printed:\n{}", out.stdout);
    out
}

#[test]
fn podman_default_profile_loads_and_decides_like_runc() {
    // podman's profile names setns in an allow rule and again in an errno rule; socket in
    // four rules with conditions. The container gets podman's capabilities plus
    // CAP_SYS_ADMIN, so that the kernel would allow sethostname: its EPERM is the filter's.
    let h = harun!();
    let mut b = bundle(&h, "");
    if !add_probe(&b, "podman_default_profile_loads_and_decides_like_runc") {
        return;
    }
    let calls = [
        call("setns", libc::SYS_setns, &[0, 0]),
        call("unshare", libc::SYS_unshare, &[0]),
        call("sethostname", libc::SYS_sethostname, &[0, 1]),
        call("bpf", libc::SYS_bpf, &[0, 0, 0]),
        call("socket_netlink_audit", libc::SYS_socket, &[16, 3, 9]),
        call("socket_netlink_route", libc::SYS_socket, &[16, 3, 0]),
        call("socket_inet", libc::SYS_socket, &[2, 1, 0]),
        call("personality_query", libc::SYS_personality, &[0xffff_ffff]),
        call("personality_uname26", libc::SYS_personality, &[0x0002_0000]),
        call(
            "personality_short_inode",
            libc::SYS_personality,
            &[0x0100_0000],
        ),
        call("add_key", libc::SYS_add_key, &[0, 0, 0, 0, 0]),
    ];
    let script = format!(
        "{STATUS}; {} 2>&1; unshare -U true 2>&1; echo unshare_user=$?; \
         hostname podman 2>&1; echo hostname=$?",
        probe_args(&calls).join(" ")
    );
    let caps: Vec<Value> = PODMAN_CAPS
        .iter()
        .chain(&["CAP_SYS_ADMIN"])
        .map(|c| json!(c))
        .collect();
    b.sh(&script).set("/linux/seccomp", podman_default()).set(
        "/process/capabilities",
        json!({"bounding": caps, "effective": caps, "permitted": caps}),
    );
    let out = same_as_runc(&h, &b, "podman");
    let (einval, eperm, enosys) = (libc::EINVAL, libc::EPERM, libc::ENOSYS);
    let want = BTreeMap::from([
        // Allowed by syscalls[1], whose rule comes first: the kernel answers (fd 0 is not
        // a namespace).
        ("setns", einval),
        ("unshare", 0),
        // syscalls[10]: EPERM, although the capability is there.
        ("sethostname", eperm),
        ("bpf", eperm),
        // syscalls[18]: EINVAL for an audit socket; [19] and [20] allow the others.
        ("socket_netlink_audit", einval),
        ("socket_netlink_route", 0),
        ("socket_inet", 0),
        ("personality_query", 0),
        ("personality_uname26", 0),
        // Not named with that argument, nor add_key at all: the default ENOSYS.
        ("personality_short_inode", enosys),
        ("add_key", enosys),
    ]);
    assert_eq!(results(&out.stdout, &calls), want, "{out}");
    let kv = parse_kv(&out.stdout);
    assert_eq!(kv["unshare_user"], "0", "{out}");
    assert_eq!(kv["hostname"], "1", "{out}");
    assert!(
        out.stdout
            .contains("hostname: sethostname: Operation not permitted"),
        "{out}"
    );
    assert_eq!(kv["Seccomp"], "2", "{out}");
    assert_eq!(kv["Seccomp_filters"], "1", "{out}");
    h.assert_clean();
}

/// podman 4.3's default capabilities (what it wrote with the fixture's profile).
const PODMAN_CAPS: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

fn podman_default() -> Value {
    serde_json::from_str(PODMAN_DEFAULT).expect("fixture is JSON")
}

#[test]
fn rules_for_one_syscall_resolve_like_runc() {
    // Default ALLOW: each syscall's rules decide alone, with errnos the kernel would not
    // give these calls (EACCES, ENOTDIR, EXDEV).
    let h = harun!();
    let mut b = h.bundle();
    if !add_probe(&b, "rules_for_one_syscall_resolve_like_runc") {
        return;
    }
    let rule = |name: &str, errno: u32, args: Value| json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": errno, "args": args});
    let arg0 = |op: &str, v: u64| json!([{"index": 0, "value": v, "op": op}]);
    let none = Value::Null;
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            // The first rule without conditions wins, a later one is dropped.
            rule("getsid", 13, none.clone()),
            rule("getsid", 20, none.clone()),
            // ... so is a later rule with conditions.
            rule("getpgid", 13, none.clone()),
            rule("getpgid", 20, arg0("SCMP_CMP_EQ", 7)),
            // A rule without conditions replaces the rules with conditions before it.
            rule("sched_getscheduler", 13, arg0("SCMP_CMP_EQ", 7)),
            rule("sched_getscheduler", 20, none.clone()),
            // Rules with conditions only: the first that holds decides, else the default.
            rule("sched_getparam", 13, arg0("SCMP_CMP_EQ", 7)),
            rule("sched_getparam", 20, arg0("SCMP_CMP_LT", 9)),
            // A rule with the default action is dropped first (runc skips it).
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]},
            rule("personality", 18, none)
        ]}),
    );
    let calls = [
        call("getsid", libc::SYS_getsid, &[7]),
        call("getpgid_7", libc::SYS_getpgid, &[7]),
        call("getpgid_8", libc::SYS_getpgid, &[8]),
        call("sched_getscheduler_7", libc::SYS_sched_getscheduler, &[7]),
        call("sched_getscheduler_8", libc::SYS_sched_getscheduler, &[8]),
        call("sched_getparam_7", libc::SYS_sched_getparam, &[7, 0]),
        call("sched_getparam_8", libc::SYS_sched_getparam, &[8, 0]),
        call("sched_getparam_9", libc::SYS_sched_getparam, &[9, 0]),
        call("personality_query", libc::SYS_personality, &[0xffff_ffff]),
        call("getppid", libc::SYS_getppid, &[]),
    ];
    let args = probe_args(&calls);
    b.args(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = same_as_runc(&h, &b, "resolve");
    let want = BTreeMap::from([
        ("getsid", libc::EACCES),
        ("getpgid_7", libc::EACCES),
        ("getpgid_8", libc::EACCES),
        ("sched_getscheduler_7", libc::ENOTDIR),
        ("sched_getscheduler_8", libc::ENOTDIR),
        ("sched_getparam_7", libc::EACCES),
        ("sched_getparam_8", libc::ENOTDIR),
        // Through the filter: the kernel refuses the null pointer.
        ("sched_getparam_9", libc::EINVAL),
        ("personality_query", libc::EXDEV),
        ("getppid", 0),
    ]);
    assert_eq!(results(&out.stdout, &calls), want, "{out}");
    h.assert_clean();
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys_like_runc() {
    // Default EPERM, an allow-list of what the static probe needs, nothing newer than rseq
    // (x86_64 334, aarch64 293): a later syscall gets ENOSYS, as from an older kernel, so
    // that libc falls back; an older one the list lacks gets EPERM.
    let h = harun!();
    let mut b = h.bundle();
    if !add_probe(&b, "syscalls_newer_than_the_profile_get_enosys_like_runc") {
        return;
    }
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
        "mprotect",
        "mmap",
        "munmap",
        "futex",
        "getpid",
        "newfstatat",
        "fstat",
        "write",
        "exit",
        "exit_group",
        // runc's init, between the filter and execve: close its pipes, open and write the
        // exec fifo, mark every fd close-on-exec (CVE-2024-21626).
        "close",
        "openat",
        "fstatfs",
        "fcntl",
        "getdents64",
        // ... and the Go runtime there: a preemption signal (SIGURG) handled on that thread
        // returns through rt_sigreturn (denied: SIGSEGV, exit 139 now and then).
        "rt_sigreturn",
        "rt_sigprocmask",
        "sigaltstack",
        "gettid",
        "tgkill",
        "sched_yield",
        "nanosleep",
        "madvise",
    ];
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ERRNO",
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
               "syscalls": [{"names": &allow[..], "action": "SCMP_ACT_ALLOW"}]}),
    );
    let calls = [
        call("getpid", libc::SYS_getpid, &[]),
        call("mkdirat", libc::SYS_mkdirat, &[0, 0, 0]),
        call("getppid", libc::SYS_getppid, &[]),
        call("clone3", libc::SYS_clone3, &[0, 0]),
        call("openat2", libc::SYS_openat2, &[0, 0, 0, 0]),
        call("number_1000", 1000, &[]),
    ];
    let args = probe_args(&calls);
    b.args(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = same_as_runc(&h, &b, "enosys");
    let want = BTreeMap::from([
        ("getpid", 0),
        ("mkdirat", libc::EPERM),
        ("getppid", libc::EPERM),
        ("clone3", libc::ENOSYS),
        ("openat2", libc::ENOSYS),
        ("number_1000", libc::ENOSYS),
    ]);
    assert_eq!(results(&out.stdout, &calls), want, "{out}");
    h.assert_clean();
}
