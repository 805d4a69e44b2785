//! Whole-filter tests: the Docker/containerd default profile, compile cost, and filters
//! installed for real in forked children.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde_json::json;

use super::program::interp::run;
use super::*;

/// What containerd writes into config.json for a default container on amd64.
const DOCKER_DEFAULT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/seccomp/docker-default.json"
));

fn docker_default() -> LinuxSeccomp {
    serde_json::from_str(DOCKER_DEFAULT).expect("fixture parses as linux.seccomp")
}

/// What podman 4.3 writes into config.json for a default container on amd64.
const PODMAN_DEFAULT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/seccomp/podman-default.json"
));

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("test profile parses")
}

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0001;
const ENOSYS: u32 = 0x0005_0026;

#[test]
fn docker_default_profile_compiles_and_decides_like_docker() {
    for t in [Target::X86_64, Target::Aarch64] {
        let f = Filter::compile_for(&docker_default(), t).unwrap();
        assert!(
            f.len() < MAX_INSTRUCTIONS,
            "{t:?}: {} instructions",
            f.len()
        );
        let v = |name: &str, args: [u64; 6]| {
            let nr = t.syscall(name).unwrap_or_else(|| panic!("{name} on {t:?}"));
            run(&f.program, t.audit_arch(), nr as u32, args)
        };
        let a0 = |x: u64| [x, 0, 0, 0, 0, 0];
        let table = [
            ("read", a0(0), ALLOW),
            ("execve", a0(0), ALLOW),
            ("openat", a0(0), ALLOW),
            ("mount", a0(0), EPERM),
            ("reboot", a0(0), EPERM),
            ("kexec_load", a0(0), EPERM),
            ("unshare", a0(0), EPERM),
            ("clone3", a0(0), ENOSYS),
            // fork-like clone is fine, any namespace flag is not.
            ("clone", a0(0x0120_0011), ALLOW),
            ("clone", a0(0x0120_0011 | 0x1000_0000), EPERM),
            ("personality", a0(0), ALLOW),
            ("personality", a0(8), ALLOW),
            ("personality", a0(0xffff_ffff), ALLOW),
            ("personality", a0(4), EPERM),
            ("socket", a0(2), ALLOW),
            ("socket", a0(40), EPERM),
            ("chroot", a0(0), ALLOW),
        ];
        for (name, args, want) in table {
            assert_eq!(v(name, args), want, "{t:?} {name}({:#x})", args[0]);
        }
        // 32-bit names and the other architecture's are skipped, with a note each.
        assert!(
            f.notes()
                .iter()
                .any(|n| n.contains("`chown32` is not a syscall")),
            "{:?}",
            f.notes()
        );
        let x86_only = ["arch_prctl", "modify_ldt", "open", "mkdir"];
        for name in x86_only {
            let noted = f.notes().iter().any(|n| n.contains(&format!("`{name}`")));
            assert_eq!(noted, t == Target::Aarch64, "{t:?} {name}");
        }
        assert_eq!(f.flags(), 0);
    }
}

/// One syscall named by several entries: what `kill(arg0, 0)` gets, resolved as runc adds
/// the rules and libseccomp 2.5's `db_rule_add` keeps them.
#[test]
fn rules_for_one_syscall_resolve_like_libseccomp() {
    let eq = |v: u64| json!([{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]);
    let lt = |v: u64| json!([{"index": 0, "value": v, "op": "SCMP_CMP_LT"}]);
    let rule = |action: &str, errno: Option<u32>, args: serde_json::Value| json!({"names": ["kill"], "action": action, "errnoRet": errno, "args": args});
    let allow = |args| rule("SCMP_ACT_ALLOW", None, args);
    let err = |e: u32, args| rule("SCMP_ACT_ERRNO", Some(e), args);
    let none = serde_json::Value::Null;
    let errno = |e: u32| 0x0005_0000 | e;
    type Case = (
        &'static str,
        &'static str,
        Vec<serde_json::Value>,
        [(u64, u32); 3],
    );
    let table: Vec<Case> = vec![
        (
            "the first rule without conditions wins (podman's setns)",
            "SCMP_ACT_ERRNO",
            vec![allow(none.clone()), err(1, none.clone())],
            [(0, ALLOW), (1, ALLOW), (2, ALLOW)],
        ),
        (
            "... whichever its action",
            "SCMP_ACT_ERRNO",
            vec![
                err(5, none.clone()),
                allow(none.clone()),
                err(13, none.clone()),
            ],
            [(0, errno(5)), (1, errno(5)), (2, errno(5))],
        ),
        (
            "a rule with conditions after it is dropped",
            "SCMP_ACT_ERRNO",
            vec![allow(none.clone()), err(13, eq(1))],
            [(0, ALLOW), (1, ALLOW), (2, ALLOW)],
        ),
        (
            "it replaces the rules with conditions before it",
            "SCMP_ACT_ERRNO",
            vec![err(13, eq(1)), allow(lt(3)), err(22, none.clone())],
            [(0, errno(22)), (1, errno(22)), (2, errno(22))],
        ),
        (
            "rules with conditions only: the first that holds, else the default",
            "SCMP_ACT_ERRNO",
            vec![err(13, eq(1)), err(22, lt(2)), allow(eq(1))],
            [(0, errno(22)), (1, errno(13)), (2, EPERM)],
        ),
        (
            "a rule giving the default action is dropped first (runc's matchCall)",
            "SCMP_ACT_ERRNO",
            vec![err(1, none.clone()), allow(none.clone())],
            [(0, ALLOW), (1, ALLOW), (2, ALLOW)],
        ),
        (
            "... with conditions too",
            "SCMP_ACT_ALLOW",
            vec![allow(eq(1)), err(13, lt(2))],
            [(0, errno(13)), (1, errno(13)), (2, ALLOW)],
        ),
        (
            "... but another errno is another action",
            "SCMP_ACT_ERRNO",
            vec![err(13, none.clone()), allow(none.clone())],
            [(0, errno(13)), (1, errno(13)), (2, errno(13))],
        ),
    ];
    let t = Target::X86_64;
    let kill = t.syscall("kill").unwrap() as u32;
    for (what, default, rules, calls) in table {
        let p = profile(json!({"defaultAction": default, "syscalls": rules}));
        let f = Filter::compile_for(&p, t).unwrap_or_else(|e| panic!("{what}: {e}"));
        for (arg, want) in calls {
            let got = run(&f.program, t.audit_arch(), kill, [arg, 0, 0, 0, 0, 0]);
            assert_eq!(got, want, "{what}: kill({arg}, 0)");
        }
    }
}

/// Notes name the rules dropped with another action than the one that decides; the same
/// action again (syscalls[2]) changes nothing and is not noted.
#[test]
fn dropped_rules_that_would_change_the_verdict_are_noted() {
    let f = Filter::compile_for(
        &profile(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
            {"names": ["setns", "read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["read", "setns"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_KILL"}]}),
        ),
        Target::X86_64,
    )
    .unwrap();
    assert_eq!(
        f.notes(),
        [
            "linux.seccomp.syscalls[1].names[0]: `read` already has Allow without conditions \
             from linux.seccomp.syscalls[0]; this rule is ignored, as libseccomp ignores it",
            "linux.seccomp.syscalls[1].names[1]: `setns` already has Allow without conditions \
             from linux.seccomp.syscalls[0]; this rule is ignored, as libseccomp ignores it",
            "linux.seccomp.syscalls[4].names[0]: `kill` has no conditions here: the earlier \
             rules with conditions are replaced, as in libseccomp",
        ]
    );
}

/// podman's profile names `setns` in an allow rule and, later, in an errno rule (and
/// `socket` in four rules with conditions): it compiles, and each syscall gets what runc
/// 1.1.5 gives it on the same profile (tests/seccomp.rs compares with runc for real).
#[test]
fn podman_default_profile_resolves_like_runc() {
    let t = Target::X86_64;
    let p: LinuxSeccomp = serde_json::from_str(PODMAN_DEFAULT).expect("fixture parses");
    let f = Filter::compile_for(&p, t).unwrap();
    let v = |name: &str, args: [u64; 6]| {
        let nr = t.syscall(name).unwrap_or_else(|| panic!("{name}"));
        run(&f.program, t.audit_arch(), nr as u32, args)
    };
    let einval = 0x0005_0016;
    let table = [
        ("setns", [0; 6], ALLOW),
        ("unshare", [0; 6], ALLOW),
        ("clone3", [0; 6], ALLOW),
        ("sethostname", [0; 6], EPERM),
        ("bpf", [0; 6], EPERM),
        ("chroot", [0; 6], ALLOW),
        ("kexec_load", [0; 6], EPERM),
        ("socket", [16, 3, 9, 0, 0, 0], einval),
        ("socket", [16, 3, 0, 0, 0, 0], ALLOW),
        ("socket", [2, 1, 9, 0, 0, 0], ALLOW),
        ("socket", [2, 1, 0, 0, 0, 0], ALLOW),
        ("personality", [8, 0, 0, 0, 0, 0], ALLOW),
        ("personality", [4, 0, 0, 0, 0, 0], ENOSYS),
        ("add_key", [0; 6], ENOSYS),
        ("mount", [0; 6], ALLOW),
    ];
    for (name, args, want) in table {
        assert_eq!(v(name, args), want, "{name}({args:?})");
    }
    // The notes say which rules lost.
    let lost: Vec<&String> = f
        .notes()
        .iter()
        .filter(|n| n.contains("is ignored"))
        .collect();
    assert_eq!(lost.len(), 1, "{:?}", f.notes());
    assert!(lost[0].starts_with("linux.seccomp.syscalls[10].names[7]: `setns` already has Allow"));
}

/// Compile cost of the Docker-sized profile: the median of many runs, printed for the
/// report (`cargo test -p harun-runtime --lib seccomp -- --nocapture`).
#[test]
fn docker_default_profile_compiles_fast() {
    let s = docker_default();
    let mut times: Vec<Duration> = (0..101)
        .map(|_| {
            let start = Instant::now();
            let f = Filter::compile(&s).unwrap();
            let took = start.elapsed();
            assert!(!f.is_empty());
            took
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "seccomp: docker default profile ({} instructions) compiles in {} µs (median of 101; \
         min {} µs)",
        Filter::compile(&s).unwrap().len(),
        median.as_micros(),
        times[0].as_micros()
    );
    // Generous: a debug build on a busy 2-core machine; the point is "not milliseconds".
    assert!(median < Duration::from_millis(20), "{median:?}");
}

#[test]
fn architecture_names_mean_the_target() {
    let native = Target::native().unwrap();
    assert!(native.is(Arch::ScmpArchNative));
    assert!(Target::X86_64.is(Arch::ScmpArchX86_64));
    assert!(Target::Aarch64.is(Arch::ScmpArchAarch64));
    for other in [Arch::ScmpArchX86, Arch::ScmpArchX32, Arch::ScmpArchArm] {
        assert!(
            !Target::X86_64.is(other) && !Target::Aarch64.is(other),
            "{other}"
        );
    }
    // No note when the profile names the native architecture either way.
    for name in ["SCMP_ARCH_NATIVE", &native.arch().to_string()] {
        let f = Filter::compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [name]}),
        ))
        .unwrap();
        assert!(f.notes().is_empty(), "{name}: {:?}", f.notes());
    }
}

#[test]
fn from_spec_without_seccomp_is_none() {
    let spec = crate::spec::example().unwrap();
    assert!(Filter::from_spec(&spec).unwrap().is_none());
}

#[test]
fn validate_reports_bad_profiles() {
    assert!(Filter::compile(&docker_default()).is_ok());
    let err = Filter::compile(&profile(json!({"defaultAction": "SCMP_ACT_NOTIFY"}))).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Unsupported);
    let err = Filter::compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]}]}),
    ))
    .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
}

#[test]
fn features_list_what_compiles() {
    let f = features();
    assert_eq!(f["enabled"], true);
    let native = Target::native().unwrap();
    assert_eq!(
        f["archs"],
        json!([serde_json::to_value(native.arch()).unwrap()])
    );
    // Every action and operator listed is accepted by the compiler.
    for a in f["actions"].as_array().unwrap() {
        let p = profile(
            json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
            {"names": ["read"], "action": a}]}),
        );
        assert!(Filter::compile(&p).is_ok(), "{a}");
    }
    for op in f["operators"].as_array().unwrap() {
        let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": op}]}]}));
        assert!(Filter::compile(&p).is_ok(), "{op}");
    }
    for flag in f["supportedFlags"].as_array().unwrap() {
        let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]}));
        assert!(Filter::compile(&p).is_ok(), "{flag}");
    }
}

/// Runs `child` in a forked process and returns how it ended. The child must only make
/// system calls (no allocation, no locks): the test harness is multi-threaded.
fn in_child(child: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: the child calls only async-signal-safe functions (prctl, seccomp, mkdir,
    // syscall, _exit) on memory prepared before the fork, then _exits.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = child();
            // SAFETY: _exit ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

/// In a forked child: `f` installed (after no_new_privs with `nnp`, else as root with
/// CAP_SYS_ADMIN), then `body`; exit code 100 when the install failed.
fn under_filter(f: &Filter, nnp: bool, body: impl FnOnce() -> i32) -> WaitStatus {
    in_child(|| {
        if nnp {
            no_new_privs();
        }
        if f.install().is_err() {
            return 100;
        }
        body()
    })
}

fn no_new_privs() {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) changes a flag of the calling process only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(r, 0);
}

#[test]
fn installed_filter_returns_errno_and_kills() {
    let f = Filter::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]
    })))
    .unwrap();
    let path = c"/nonexistent-harun-seccomp-test/dir";

    // ERRNO: mkdir fails with the chosen errno (it would be ENOENT without the filter).
    // Without no_new_privs too: root (CAP_SYS_ADMIN) may install it.
    for nnp in [true, false] {
        let status = under_filter(&f, nnp, || {
            // SAFETY: a valid NUL-terminated path.
            let r = unsafe { libc::mkdir(path.as_ptr(), 0o755) };
            if r == 0 {
                101
            } else {
                Errno::last_raw()
            }
        });
        assert!(
            matches!(status, WaitStatus::Exited(_, 18)),
            "{nnp}: {status:?}"
        );
    }

    // KILL_PROCESS: getppid ends the process with SIGSYS.
    let status = under_filter(&f, true, || {
        // SAFETY: getppid has no arguments and no side effects.
        unsafe { libc::syscall(libc::SYS_getppid) };
        102
    });
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "{status:?}"
    );
}

#[test]
fn installed_filter_answers_enosys_above_the_largest_syscall() {
    // The largest named: exit_group on x86_64 (231), getpid on aarch64 (172).
    let f = Filter::compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_NATIVE"],
        "syscalls": [{"names": ["exit", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    let status = under_filter(&f, true, || {
        // clone3 is newer than all of them: ENOSYS, as from a kernel without it.
        // SAFETY: clone3(NULL, 0) creates nothing: the filter or the kernel refuses it.
        let r = unsafe { libc::syscall(libc::SYS_clone3, 0, 0) };
        if r != -1 || Errno::last() != Errno::ENOSYS {
            return 101;
        }
        // close is older, and not listed: the default EPERM.
        // SAFETY: closing fd -1 closes nothing.
        let r = unsafe { libc::syscall(libc::SYS_close, -1) };
        if r != -1 || Errno::last() != Errno::EPERM {
            return 102;
        }
        // SAFETY: getpid has no arguments.
        if unsafe { libc::getpid() } <= 0 {
            return 103;
        }
        0
    });
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn installed_docker_default_profile_is_one_filter() {
    let f = Filter::compile(&docker_default()).unwrap();
    let status = under_filter(&f, true, || {
        // mount is denied with EPERM, getpid allowed.
        // SAFETY: null pointers are valid arguments; the filter answers before the kernel
        // looks at them.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
                0,
                std::ptr::null(),
            )
        };
        if r == 0 || Errno::last() != Errno::EPERM {
            return 101;
        }
        // SAFETY: getpid has no arguments.
        if unsafe { libc::getpid() } <= 0 {
            return 102;
        }
        0
    });
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

/// Cost per system call with the Docker profile installed, against none (for the report:
/// `cargo test -p harun-runtime --lib seccomp_overhead -- --ignored --nocapture`).
#[test]
#[ignore]
fn seccomp_overhead() {
    const N: u32 = 2_000_000;
    let f = Filter::compile(&docker_default()).unwrap();
    let mut fds = [0; 2];
    // SAFETY: pipe writes two fds into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    for (label, filter) in [("none", None), ("docker default", Some(&f))] {
        for name in ["getppid", "read"] {
            in_child(|| {
                if let Some(f) = filter {
                    no_new_privs();
                    if f.install().is_err() {
                        return 100;
                    }
                }
                let start = Instant::now();
                for _ in 0..N {
                    // SAFETY: getppid has no arguments; read(-1) fails at once with EBADF.
                    unsafe {
                        if name == "read" {
                            libc::read(-1, std::ptr::null_mut(), 0);
                        } else {
                            libc::syscall(libc::SYS_getppid);
                        }
                    }
                }
                let ns = (start.elapsed().as_nanos() / u128::from(N)) as u64;
                // SAFETY: writing 8 bytes from a local to the pipe.
                unsafe { libc::write(fds[1], (&ns as *const u64).cast(), 8) };
                0
            });
            let mut ns = 0u64;
            // SAFETY: reading 8 bytes into a local.
            unsafe { libc::read(fds[0], (&mut ns as *mut u64).cast(), 8) };
            eprintln!("seccomp overhead: filter {label}: {name}: {ns} ns per call");
        }
    }
    // SAFETY: closing the pipe we opened.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}

#[test]
fn every_syscall_name_finds_its_number_on_both_architectures() {
    use std::str::FromStr;
    for name in [
        "read",
        "openat",
        "file_setattr",
        "io_uring_setup",
        "not_a_syscall",
        "",
    ] {
        assert_eq!(
            Target::X86_64.syscall(name),
            syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| i64::from(s.id())),
            "{name}"
        );
    }
    for nr in 0..1024 {
        if let Some(s) = syscalls::x86_64::Sysno::new(nr) {
            assert_eq!(Target::X86_64.syscall(s.name()), Some(i64::from(s.id())));
        }
        if let Some(s) = syscalls::aarch64::Sysno::new(nr) {
            assert_eq!(Target::Aarch64.syscall(s.name()), Some(i64::from(s.id())));
        }
    }
    assert_eq!(
        Target::Aarch64.syscall("open"),
        None,
        "aarch64 has only openat"
    );
}
