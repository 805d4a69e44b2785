//! [`Plan`] -> one classic-BPF program for seccomp(2).
//!
//! seccompiler compiles each rule (the 64-bit argument comparisons and their jumps) and
//! gives the action values; its `SeccompFilter` has one match action for all rules, so the
//! program around the rules is assembled here, giving every rule its own action:
//!
//! ```text
//! A = arch;  A != AUDIT_ARCH_<target>      -> KILL_PROCESS   (other ABIs never pass)
//! A = nr;    (x86_64) A >= __X32_SYSCALL_BIT -> KILL_PROCESS (x32 calls never pass)
//! (stub)     A > largest named syscall -> ERRNO(ENOSYS)
//! binary search on nr over the syscalls that have rules (JGE + JA per level), then in a
//! leaf, per syscall:  A == nr ? RET action                                    (Always)
//!                     A == nr ? [rule 1][RET action 1] ... [rule n][RET action n]
//!                               RET default                                    (When)
//! leaf end:           RET default
//! ```
//!
//! A rule that fails jumps to the next rule, the last one to the RET default; a syscall
//! number that does not match jumps over the whole block (seccompiler's rule layout
//! guarantees both, given exactly one instruction after each rule). One program keeps
//! `/proc/PID/status` at `Seccomp_filters: 1` and the kernel runs one filter per syscall.
//!
//! The ENOSYS stub is runc's (libcontainer/seccomp/patchbpf), for the native ABI only: it
//! comes after the x32 check, so x32 calls are still killed rather than told ENOSYS.

use seccompiler::{BpfProgram, SeccompAction};

use super::convert::{Chain, Plan};
use super::Target;
use crate::error::{Error, Result};

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;
/// x86_64 system calls of the x32 ABI have this bit set in their number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// At most this many syscalls are compared one after the other.
const LEAF: usize = 4;
/// What the ENOSYS stub answers.
const ENOSYS: u32 = libc::ENOSYS as u32;

type Insn = seccompiler::sock_filter;

/// Assemble the program for `plan` on `target`.
pub fn assemble(plan: &Plan, target: Target) -> Result<Vec<libc::sock_filter>> {
    let default = u32::from(plan.default.clone());
    let blocks: Vec<(u32, Vec<Insn>)> = plan
        .chains
        .iter()
        .filter(|(_, c)| !is_default(c, &plan.default))
        .map(|(&nr, chain)| Ok((syscall_nr(nr)?, block(nr, chain, &plan.default)?)))
        .collect::<Result<_>>()?;

    let kill = u32::from(SeccompAction::KillProcess);
    let mut out = vec![
        stmt(LD_W_ABS, DATA_ARCH),
        jump(JEQ_K, target.audit_arch(), 1, 0),
        stmt(RET_K, kill),
        stmt(LD_W_ABS, DATA_NR),
    ];
    if target == Target::X86_64 {
        out.push(jump(JGE_K, X32_SYSCALL_BIT, 0, 1));
        out.push(stmt(RET_K, kill));
    }
    if let Some(largest) = plan.enosys_above {
        out.push(jump(JGT_K, largest, 0, 1));
        out.push(stmt(RET_K, u32::from(SeccompAction::Errno(ENOSYS))));
    }
    dispatch(&blocks, default, &mut out);
    if out.len() > MAX_INSTRUCTIONS {
        return Err(Error::spec(
            "linux.seccomp",
            format!(
                "the filter needs {} BPF instructions, more than the kernel's {MAX_INSTRUCTIONS}",
                out.len()
            ),
        ));
    }
    Ok(out
        .into_iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// A syscall whose every path ends in the default action needs no code.
fn is_default(chain: &Chain, default: &SeccompAction) -> bool {
    match chain {
        Chain::Always { action, .. } => action == default,
        Chain::When(rules) => rules.iter().all(|(_, a)| a == default),
    }
}

fn syscall_nr(nr: i64) -> Result<u32> {
    u32::try_from(nr)
        .ok()
        .filter(|&n| n < X32_SYSCALL_BIT)
        .ok_or_else(|| Error::spec("linux.seccomp", format!("bad syscall number {nr}")))
}

/// `A == nr ? rules..., default : skip` (the layout seccompiler's rules expect).
fn block(nr: i64, chain: &Chain, default: &SeccompAction) -> Result<Vec<Insn>> {
    let mut out = vec![jump(JEQ_K, syscall_nr(nr)?, 0, 1)];
    let last = match chain {
        Chain::Always { action, .. } => action,
        Chain::When(rules) => {
            for (rule, action) in rules {
                out.extend(BpfProgram::from(rule.clone()));
                out.push(stmt(RET_K, u32::from(action.clone())));
            }
            default
        }
    };
    out.push(stmt(RET_K, u32::from(last.clone())));
    Ok(out)
}

/// Binary search over the sorted blocks: `A >= nr[mid] ? right : left`.
fn dispatch(blocks: &[(u32, Vec<Insn>)], default: u32, out: &mut Vec<Insn>) {
    if blocks.len() <= LEAF {
        for (_, b) in blocks {
            out.extend_from_slice(b);
        }
        out.push(stmt(RET_K, default));
        return;
    }
    let mid = blocks.len() / 2;
    let mut left = Vec::new();
    dispatch(&blocks[..mid], default, &mut left);
    out.push(jump(JGE_K, blocks[mid].0, 0, 1));
    // Cannot overflow: the whole program is checked against MAX_INSTRUCTIONS later, and
    // a Vec longer than u32::MAX instructions would not fit in memory first.
    out.push(stmt(JA, u32::try_from(left.len()).unwrap_or(u32::MAX)));
    out.extend(left);
    dispatch(&blocks[mid..], default, out);
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const DATA_NR: u32 = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
const DATA_ARCH: u32 = std::mem::offset_of!(libc::seccomp_data, arch) as u32;

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// A classic-BPF interpreter for the instructions seccomp programs use: tests run compiled
/// filters on made-up syscalls without installing them.
#[cfg(test)]
pub mod interp {
    /// Runs `prog` on (arch, nr, args); returns the filter's 32-bit verdict. Panics on an
    /// instruction it does not know, a jump out of the program or running off its end.
    pub fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u32; 16];
        data[0] = nr;
        data[1] = arch;
        for (i, a) in args.iter().enumerate() {
            data[4 + 2 * i] = *a as u32;
            data[5 + 2 * i] = (*a >> 32) as u32;
        }
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = prog.get(pc).expect("pc inside the program");
            pc += 1;
            let class = u32::from(i.code) & 0x07;
            let op = u32::from(i.code) & 0xf0;
            match class {
                libc::BPF_LD => {
                    assert_eq!(
                        u32::from(i.code),
                        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS
                    );
                    assert_eq!(i.k % 4, 0);
                    a = data[(i.k / 4) as usize];
                }
                libc::BPF_ALU => {
                    assert_eq!(op, libc::BPF_AND);
                    a &= i.k;
                }
                libc::BPF_JMP => {
                    let taken = match op {
                        libc::BPF_JA => {
                            pc += i.k as usize;
                            continue;
                        }
                        libc::BPF_JEQ => a == i.k,
                        libc::BPF_JGT => a > i.k,
                        libc::BPF_JGE => a >= i.k,
                        other => panic!("jump op {other:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                libc::BPF_RET => return i.k,
                other => panic!("instruction class {other:#x}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::interp::run;
    use super::*;
    use crate::security::seccomp::convert::plan;
    use oci_spec::runtime::LinuxSeccomp;
    use serde_json::json;

    const ALLOW: u32 = 0x7fff_0000;
    const KILL_PROCESS: u32 = 0x8000_0000;
    const KILL_THREAD: u32 = 0;
    const TRAP: u32 = 0x0003_0000;
    const LOG: u32 = 0x7ffc_0000;
    fn errno(e: u32) -> u32 {
        0x0005_0000 | e
    }
    fn trace(e: u32) -> u32 {
        0x7ff0_0000 | e
    }

    fn compile(v: serde_json::Value, t: Target) -> Vec<libc::sock_filter> {
        let s: LinuxSeccomp = serde_json::from_value(v).unwrap();
        assemble(&plan(&s, t).unwrap(), t).unwrap()
    }

    fn nr(t: Target, name: &str) -> u32 {
        t.syscall(name).unwrap() as u32
    }

    #[test]
    fn every_action_reaches_its_syscall_on_both_architectures() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
                {"names": ["unlinkat"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["gettid"], "action": "SCMP_ACT_KILL"},
                {"names": ["getppid"], "action": "SCMP_ACT_KILL_THREAD"},
                {"names": ["getuid"], "action": "SCMP_ACT_TRAP"},
                {"names": ["getgid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                {"names": ["geteuid"], "action": "SCMP_ACT_TRACE"},
                {"names": ["getegid"], "action": "SCMP_ACT_LOG"}
            ]
        });
        for t in [Target::X86_64, Target::Aarch64] {
            let prog = compile(profile.clone(), t);
            let verdict = |name: &str| run(&prog, t.audit_arch(), nr(t, name), [0; 6]);
            let table = [
                ("read", ALLOW),
                ("write", ALLOW),
                ("mkdirat", errno(18)),
                ("unlinkat", errno(1)),
                ("getpid", KILL_PROCESS),
                ("gettid", KILL_THREAD),
                ("getppid", KILL_THREAD),
                ("getuid", TRAP),
                ("getgid", trace(7)),
                ("geteuid", trace(1)),
                ("getegid", LOG),
                ("close", errno(38)),
                ("openat", errno(38)),
            ];
            for (name, want) in table {
                assert_eq!(verdict(name), want, "{t:?} {name}");
            }
            // Another ABI never passes.
            let other = match t {
                Target::X86_64 => Target::Aarch64,
                Target::Aarch64 => Target::X86_64,
            };
            assert_eq!(run(&prog, other.audit_arch(), 0, [0; 6]), KILL_PROCESS);
        }
    }

    #[test]
    fn x32_numbers_are_killed_on_x86_64() {
        let t = Target::X86_64;
        let prog = compile(json!({"defaultAction": "SCMP_ACT_ALLOW"}), t);
        assert_eq!(run(&prog, t.audit_arch(), nr(t, "mkdir"), [0; 6]), ALLOW);
        let x32_mkdir = X32_SYSCALL_BIT | nr(t, "mkdir");
        assert_eq!(run(&prog, t.audit_arch(), x32_mkdir, [0; 6]), KILL_PROCESS);
    }

    /// Classic syscalls only: the largest is `mkdirat` on x86_64 (258), `wait4` on
    /// aarch64 (260).
    fn classic(default: &str, errno_ret: Option<u32>, arches: &[&str]) -> serde_json::Value {
        json!({"defaultAction": default, "defaultErrnoRet": errno_ret, "architectures": arches,
               "syscalls": [
                   {"names": ["read", "write", "getdents64", "wait4"], "action": "SCMP_ACT_ALLOW"},
                   {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]})
    }

    #[test]
    fn numbers_above_the_largest_named_get_enosys() {
        for (t, arch, largest, its_verdict) in [
            (Target::X86_64, "SCMP_ARCH_X86_64", 258, errno(18)),
            (Target::Aarch64, "SCMP_ARCH_AARCH64", 260, ALLOW),
        ] {
            let prog = compile(classic("SCMP_ACT_ERRNO", None, &[arch]), t);
            let v = |nr: u32| run(&prog, t.audit_arch(), nr, [0; 6]);
            let table = [
                (nr(t, "read"), ALLOW),
                (nr(t, "mkdirat"), errno(18)),
                (nr(t, "close"), errno(1)),
                (largest, its_verdict),
                (largest + 1, errno(38)),
                (nr(t, "clone3"), errno(38)),
                (nr(t, "openat2"), errno(38)),
                (X32_SYSCALL_BIT - 1, errno(38)),
                (
                    u32::MAX,
                    if t == Target::X86_64 {
                        KILL_PROCESS
                    } else {
                        errno(38)
                    },
                ),
            ];
            for (n, want) in table {
                assert_eq!(v(n), want, "{t:?} {n}");
            }
        }
    }

    #[test]
    fn x32_calls_are_killed_not_told_enosys() {
        let t = Target::X86_64;
        let prog = compile(
            classic(
                "SCMP_ACT_ERRNO",
                None,
                &["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            ),
            t,
        );
        for n in [0, 258, 259, 435] {
            let got = run(&prog, t.audit_arch(), X32_SYSCALL_BIT | n, [0; 6]);
            assert_eq!(got, KILL_PROCESS, "x32 {n}");
        }
        assert_eq!(run(&prog, t.audit_arch(), 259, [0; 6]), errno(38));
    }

    #[test]
    fn the_stub_only_where_runc_adds_it() {
        let t = Target::X86_64;
        let above = 259;
        let x86 = ["SCMP_ARCH_X86_64"];
        let table = [
            // Defaults that let calls through: a new syscall passes.
            (classic("SCMP_ACT_ALLOW", None, &x86), ALLOW),
            (classic("SCMP_ACT_LOG", None, &x86), LOG),
            (classic("SCMP_ACT_TRACE", Some(3), &x86), trace(3)),
            // Restrictive defaults: ENOSYS instead.
            (classic("SCMP_ACT_ERRNO", Some(13), &x86), errno(38)),
            (classic("SCMP_ACT_KILL_PROCESS", None, &x86), errno(38)),
            (classic("SCMP_ACT_KILL", None, &x86), errno(38)),
            (classic("SCMP_ACT_TRAP", None, &x86), errno(38)),
            // SCMP_ARCH_NATIVE is the running architecture: x86_64 only on an x86_64 host
            // (the edge suite runs this on aarch64).
            (
                classic("SCMP_ACT_ERRNO", None, &["SCMP_ARCH_NATIVE"]),
                if Target::native() == Some(t) {
                    errno(38)
                } else {
                    errno(1)
                },
            ),
            // Only for the architectures the profile names (runc's findLastSyscalls).
            (classic("SCMP_ACT_ERRNO", None, &[]), errno(1)),
            (
                classic("SCMP_ACT_ERRNO", None, &["SCMP_ARCH_X86"]),
                errno(1),
            ),
            (
                classic("SCMP_ACT_ERRNO", None, &["SCMP_ARCH_X32"]),
                errno(1),
            ),
        ];
        for (profile, want) in table {
            let prog = compile(profile.clone(), t);
            assert_eq!(run(&prog, t.audit_arch(), above, [0; 6]), want, "{profile}");
        }
        // A default of ERRNO(ENOSYS) says the same without the stub.
        let with = compile(classic("SCMP_ACT_ERRNO", None, &x86), t);
        let without = compile(classic("SCMP_ACT_ERRNO", Some(38), &x86), t);
        assert_eq!(with.len(), without.len() + 2);
        assert_eq!(run(&without, t.audit_arch(), above, [0; 6]), errno(38));
    }

    #[test]
    fn the_largest_counts_every_name_the_architecture_knows() {
        let t = Target::X86_64;
        let largest = |syscalls: serde_json::Value| {
            let s: LinuxSeccomp = serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64"], "syscalls": syscalls}))
            .unwrap();
            plan(&s, t).unwrap().enosys_above
        };
        // Rules with the default action or with conditions count; unknown names do not.
        let table = [
            (
                json!([{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]),
                None,
            ),
            (
                json!([{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]),
                Some(1),
            ),
            (
                json!([{"names": ["write"], "action": "SCMP_ACT_ALLOW"},
                       {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}]),
                Some(258),
            ),
            (
                json!([{"names": ["write", "chown32", "getdents64"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
                Some(217),
            ),
            (
                json!([{"names": ["write"], "action": "SCMP_ACT_ALLOW"},
                       {"names": ["unlinkat"], "action": "SCMP_ACT_ALLOW"},
                       {"names": ["unlinkat"], "action": "SCMP_ACT_ERRNO"}]),
                Some(263),
            ),
        ];
        for (syscalls, want) in table {
            assert_eq!(largest(syscalls.clone()), want, "{syscalls}");
        }
    }

    #[test]
    fn argument_conditions_match_only_the_right_arguments() {
        let t = Target::X86_64;
        let prog = compile(
            // Not ALLOW: rules giving the default action are dropped (runc's matchCall).
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
                // personality: query allowed, 0 allowed, anything else ENOSYS.
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                // clone: any namespace flag -> ENOSYS (Docker's mask).
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0x7e02_0000u64, "valueTwo": 0,
                           "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 0, "value": 0x200, "op": "SCMP_CMP_NE"}]},
                // Two args ANDed, 64-bit compares.
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_LE"},
                    {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [
                    {"index": 1, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GE"}]},
                {"names": ["mmap"], "action": "SCMP_ACT_ERRNO", "errnoRet": 12, "args": [
                    {"index": 1, "value": 4096, "op": "SCMP_CMP_GT"},
                    {"index": 5, "value": 1, "op": "SCMP_CMP_LT"}]}
            ]}),
            t,
        );
        let v = |name: &str, args: [u64; 6]| run(&prog, t.audit_arch(), nr(t, name), args);
        let a0 = |x: u64| [x, 0, 0, 0, 0, 0];
        let other = errno(38);
        assert_eq!(v("personality", a0(0xffff_ffff)), ALLOW);
        assert_eq!(v("personality", a0(0)), ALLOW);
        assert_eq!(v("personality", a0(8)), other);
        // The upper half counts: 0x1_ffff_ffff is not 0xffff_ffff.
        assert_eq!(v("personality", a0(0x1_ffff_ffff)), other);
        assert_eq!(v("clone", a0(0x0001_1200)), ALLOW);
        assert_eq!(v("clone", a0(0x0001_1200 | 0x2000_0000)), other);
        assert_eq!(v("unshare", a0(0x200)), other);
        assert_eq!(v("unshare", a0(0x0002_0000)), errno(13));
        assert_eq!(v("unshare", a0(0x1_0000_0200)), errno(13));
        assert_eq!(v("kill", [1, 9, 0, 0, 0, 0]), errno(3));
        assert_eq!(v("kill", [0, 9, 0, 0, 0, 0]), errno(3));
        assert_eq!(v("kill", [2, 9, 0, 0, 0, 0]), other);
        assert_eq!(v("kill", [1, 15, 0, 0, 0, 0]), other);
        assert_eq!(v("kill", [u64::MAX, 9, 0, 0, 0, 0]), other);
        assert_eq!(v("lseek", [3, 0xffff_ffff, 0, 0, 0, 0]), other);
        assert_eq!(v("lseek", [3, 0x1_0000_0000, 0, 0, 0, 0]), errno(22));
        assert_eq!(v("mmap", [0, 8192, 0, 0, 0, 0]), errno(12));
        assert_eq!(v("mmap", [0, 8192, 0, 0, 0, 1]), other);
        assert_eq!(v("mmap", [0, 4096, 0, 0, 0, 0]), other);
        assert_eq!(v("read", [0; 6]), other);
    }

    #[test]
    fn every_syscall_of_a_large_profile_gets_its_own_action() {
        // Many syscalls with alternating actions exercise the search tree's edges.
        for t in [Target::X86_64, Target::Aarch64] {
            let names: Vec<String> = (0..470u32)
                .filter_map(|n| t.name_of(n).map(str::to_string))
                .collect();
            let syscalls: Vec<_> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    json!({"names": [n], "action": "SCMP_ACT_ERRNO",
                                     "errnoRet": (i % 4000) + 1})
                })
                .collect();
            let prog = compile(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls}),
                t,
            );
            for (i, n) in names.iter().enumerate() {
                let got = run(&prog, t.audit_arch(), nr(t, n), [0; 6]);
                assert_eq!(got, errno((i % 4000) as u32 + 1), "{t:?} {n}");
            }
            // Numbers between and beyond the known ones take the default.
            for n in [0x3fff_ffff, 1000, 469] {
                if t.name_of(n).is_none() {
                    assert_eq!(run(&prog, t.audit_arch(), n, [0; 6]), ALLOW, "{n}");
                }
            }
        }
    }

    #[test]
    fn syscalls_with_only_the_default_action_cost_nothing() {
        let t = Target::X86_64;
        let empty = compile(json!({"defaultAction": "SCMP_ACT_ERRNO"}), t);
        let same = compile(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_ERRNO"}]}),
            t,
        );
        assert_eq!(empty.len(), same.len());
        // ... but ERRNO with another errno is not the default.
        let other = compile(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}]}),
            t,
        );
        assert!(other.len() > empty.len());
        assert_eq!(
            run(&other, t.audit_arch(), nr(t, "mkdir"), [0; 6]),
            errno(2)
        );
    }

    #[test]
    fn too_many_instructions_is_an_error() {
        let t = Target::X86_64;
        let args: Vec<_> = (0..600)
            .map(|i| json!({"index": 0, "value": i, "op": "SCMP_CMP_EQ"}))
            .collect();
        let s: LinuxSeccomp = serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": args}]}))
        .unwrap();
        let err = assemble(&plan(&s, t).unwrap(), t).unwrap_err().to_string();
        assert!(
            err.starts_with("linux.seccomp: the filter needs ")
                && err.ends_with("BPF instructions, more than the kernel's 4096"),
            "{err}"
        );
    }
}
