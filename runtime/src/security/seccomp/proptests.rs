//! Property tests of the seccomp compiler: random profiles compile or fail with an error,
//! never a panic; a compiled program fits the kernel's limit, always ends in a verdict
//! (no jump out of it, run by [`interp::run`]), and decides every call as a plain reading
//! of the profile does ([`model`], convert.rs's rules written as directly as possible).
//!
//! `PROPTEST_CASES=20000 cargo test -p harun-runtime seccomp::proptests` for more cases.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::program::interp;
use super::{Filter, Target, MAX_INSTRUCTIONS};

/// Syscalls both architectures have (and a few only one has, or none).
const NAMES: &[&str] = &[
    "read",
    "write",
    "openat",
    "close",
    "mount",
    "umount2",
    "personality",
    "clone",
    "clone3",
    "socket",
    "ioctl",
    "kill",
    "getpid",
    "ptrace",
    "bpf",
    "unshare",
    "setns",
    "keyctl",
    "open",
    "fork",
    "no_such_syscall",
];
const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_NOTIFY",
];
const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
/// Argument values at the edges of 32 and 64 bits (the filter compares both halves).
const VALUES: &[u64] = &[
    0,
    1,
    2,
    8,
    0xff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x8000_0000_0000_0000,
    u64::MAX,
];

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![prop::sample::select(VALUES), any::<u64>()]
}

/// An action, and an errnoRet mostly where the action takes one. Rare: SCMP_ACT_NOTIFY and
/// errnoRet where it does not belong or is too large (refused).
fn action() -> impl Strategy<Value = (&'static str, Option<u32>)> {
    let valid = &ACTIONS[..ACTIONS.len() - 1];
    let errno = prop_oneof![20 => 0u32..5, 5 => Just(38u32), 2 => 4090u32..4100, 1 => Just(70000)];
    (
        prop_oneof![30 => prop::sample::select(valid), 1 => Just("SCMP_ACT_NOTIFY")],
        prop::option::of(errno),
        0u8..40,
    )
        .prop_map(|(action, errno, dice)| {
            let takes = matches!(action, "SCMP_ACT_ERRNO" | "SCMP_ACT_TRACE");
            let keep = if takes { dice < 20 } else { dice == 0 };
            (action, errno.filter(|_| keep))
        })
}

fn arg() -> impl Strategy<Value = Value> {
    let index = prop_oneof![30 => 0usize..6, 1 => Just(6usize)];
    (
        index,
        value(),
        prop::option::of(value()),
        prop::sample::select(OPS),
    )
        .prop_map(|(index, value, two, op)| {
            let mut a = json!({"index": index, "value": value, "op": op});
            if let Some(two) = two {
                a["valueTwo"] = json!(two);
            }
            a
        })
}

fn entry() -> impl Strategy<Value = Value> {
    let names = prop_oneof![
        30 => prop::collection::vec(prop::sample::select(NAMES), 1..4),
        1 => Just(Vec::new()),
    ];
    (names, action(), prop::collection::vec(arg(), 0..3)).prop_map(
        |(names, (action, errno), args)| {
            let mut e = json!({"names": names, "action": action});
            if let Some(n) = errno {
                e["errnoRet"] = json!(n);
            }
            if !args.is_empty() {
                e["args"] = json!(args);
            }
            e
        },
    )
}

fn profile() -> impl Strategy<Value = Value> {
    (
        action(),
        prop::sample::subsequence(
            vec![
                "SCMP_ARCH_X86_64",
                "SCMP_ARCH_AARCH64",
                "SCMP_ARCH_X86",
                "SCMP_ARCH_X32",
            ],
            0..3,
        ),
        prop::collection::vec(entry(), 0..10),
    )
        .prop_map(|((default, errno), arches, syscalls)| {
            let mut p = json!({"defaultAction": default, "syscalls": syscalls});
            if let Some(n) = errno {
                p["defaultErrnoRet"] = json!(n);
            }
            if !arches.is_empty() {
                p["architectures"] = json!(arches);
            }
            p
        })
}

/// A profile read the way convert.rs documents it, without BPF: what the filter must answer.
mod model {
    use serde_json::Value;

    use super::Target;

    const ENOSYS: u32 = 38;

    /// The SECCOMP_RET_* value of an OCI action; `None` for one harun refuses.
    pub fn verdict(action: &str, errno: Option<u64>) -> Option<u32> {
        let data = errno.unwrap_or(1) as u32; // EPERM when not given, as runc
        Some(match action {
            "SCMP_ACT_ALLOW" => 0x7fff_0000,
            "SCMP_ACT_ERRNO" => 0x0005_0000 | data,
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => 0,
            "SCMP_ACT_KILL_PROCESS" => 0x8000_0000,
            "SCMP_ACT_TRAP" => 0x0003_0000,
            "SCMP_ACT_LOG" => 0x7ffc_0000,
            "SCMP_ACT_TRACE" => 0x7ff0_0000 | data,
            _ => return None,
        })
    }

    fn holds(arg: &Value, args: &[u64; 6]) -> bool {
        let a = args[arg["index"].as_u64().unwrap() as usize];
        let v = arg["value"].as_u64().unwrap();
        match arg["op"].as_str().unwrap() {
            "SCMP_CMP_NE" => a != v,
            "SCMP_CMP_LT" => a < v,
            "SCMP_CMP_LE" => a <= v,
            "SCMP_CMP_EQ" => a == v,
            "SCMP_CMP_GE" => a >= v,
            "SCMP_CMP_GT" => a > v,
            // libseccomp masks the datum too (runc refuses mkdir under a MASKED_EQ rule
            // with mask 0 and datum 1, checked by hand with runc 1.1.5).
            _ => a & v == arg["valueTwo"].as_u64().unwrap_or(0) & v,
        }
    }

    /// An entry's conditions: ANDed, or ORed when two test the same argument.
    fn conditions_hold(entry: &Value, args: &[u64; 6]) -> bool {
        let list = entry["args"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let mut indexes: Vec<u64> = list.iter().map(|a| a["index"].as_u64().unwrap()).collect();
        indexes.sort_unstable();
        let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
        if repeated {
            list.iter().any(|a| holds(a, args))
        } else {
            list.iter().all(|a| holds(a, args))
        }
    }

    /// What a call of `nr` with `args` gets from the (valid) `profile` on `target`.
    pub fn decide(profile: &Value, target: Target, nr: i64, args: &[u64; 6]) -> u32 {
        let entry_verdict =
            |e: &Value| verdict(e["action"].as_str().unwrap(), e["errnoRet"].as_u64()).unwrap();
        let default = entry_verdict(&serde_json::json!({
            "action": profile["defaultAction"], "errnoRet": profile["defaultErrnoRet"],
        }));
        let entries = profile["syscalls"].as_array().unwrap();
        let names = |e: &Value| -> Vec<i64> {
            e["names"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|n| target.syscall(n.as_str().unwrap()))
                .collect()
        };
        let arch_named = profile["architectures"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == target_arch(target)));
        let permissive = matches!(
            profile["defaultAction"].as_str().unwrap(),
            "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" | "SCMP_ACT_TRACE"
        );
        let largest = entries.iter().flat_map(&names).max().filter(|&n| n > 0);
        if arch_named && !permissive && default != 0x0005_0000 | ENOSYS {
            if let Some(largest) = largest {
                if nr > largest {
                    return 0x0005_0000 | ENOSYS;
                }
            }
        }
        let mine: Vec<&Value> = entries
            .iter()
            .filter(|e| names(e).contains(&nr) && entry_verdict(e) != default)
            .collect();
        let unconditional = |e: &&&Value| e["args"].as_array().is_none_or(Vec::is_empty);
        if let Some(first) = mine.iter().find(unconditional) {
            return entry_verdict(first);
        }
        mine.iter()
            .find(|e| conditions_hold(e, args))
            .map_or(default, |e| entry_verdict(e))
    }

    pub fn target_arch(target: Target) -> &'static str {
        match target {
            Target::X86_64 => "SCMP_ARCH_X86_64",
            Target::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }
}

proptest! {
    #[test]
    fn profiles_compile_to_programs_that_decide_as_the_profile_reads(
        profile in profile(),
        calls in prop::collection::vec(
            (prop::sample::select(NAMES), prop::array::uniform6(value())), 1..12),
        other_nr in 0u32..600,
    ) {
        let Ok(seccomp) = serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(profile.clone())
        else {
            return Ok(()); // oci-spec refuses it (an errnoRet above u32...): not ours to compile
        };
        for target in [Target::X86_64, Target::Aarch64] {
            let filter = match Filter::compile_for(&seccomp, target) {
                Ok(f) => f,
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty());
                    continue;
                }
            };
            prop_assert!(filter.len() <= MAX_INSTRUCTIONS);
            let arch = target.audit_arch();
            let mut calls: Vec<(i64, [u64; 6])> = calls
                .iter()
                .filter_map(|(name, args)| Some((target.syscall(name)?, *args)))
                .collect();
            calls.push((i64::from(other_nr), [0; 6]));
            for (nr, args) in calls {
                let got = interp::run(&filter.program, arch, nr as u32, args);
                let want = model::decide(&profile, target, nr, &args);
                prop_assert_eq!(
                    got, want,
                    "{} nr {} args {:x?} on {:?}", profile, nr, args, target
                );
            }
            // Another ABI is killed, whatever it calls.
            let got = interp::run(&filter.program, arch ^ 1, 0, [0; 6]);
            prop_assert_eq!(got, 0x8000_0000);
        }
    }
}
