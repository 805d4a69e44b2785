//! `linux.seccomp` -> per-syscall rule chains for one architecture. Pure: no system calls.
//!
//! Semantics, following runc 1.1 (libcontainer/seccomp) and the libseccomp 2.5 it builds the
//! filter with, where the spec is silent:
//! - each `syscalls[i]` entry gives its action to every name in `names`; a name the target
//!   architecture does not know is skipped with a note (runc logs it at debug level);
//! - the `args` of one entry are ANDed, except when two of them test the same argument: then
//!   each becomes a rule of its own and they are ORed (runc's "old behaviour" for that case);
//! - a rule whose action (errno included) is `defaultAction`'s is dropped before anything
//!   else (runc's `matchCall` skips it: libseccomp refuses such rules);
//! - one syscall named by several entries is resolved in profile order as libseccomp's
//!   `db_rule_add` does: the first entry without conditions decides alone (a later entry,
//!   with conditions or without, is dropped; the rules with conditions before it are
//!   replaced); rules with conditions, while there is no such entry, are tried in profile
//!   order and the first that holds decides, else `defaultAction`. Dropped rules that would
//!   have given another action are reported in the notes;
//! - unless the default action lets calls through (ALLOW, LOG, TRACE) or already is
//!   ERRNO(ENOSYS), and if `architectures` names the target, syscall numbers above the largest
//!   one the profile names get ENOSYS (runc's patchbpf stub), so that libc falls back from
//!   syscalls newer than the profile;
//! - argument values compare as 64 bits (libseccomp on 64-bit architectures);
//!   `SCMP_CMP_MASKED_EQ` is `(arg & value) == (valueTwo & value)`: libseccomp masks the
//!   datum too, so a mask of 0 always matches (runc 1.1.5 refuses mkdir under such a rule);
//!   `valueTwo` is ignored by the others.

use std::collections::btree_map::{BTreeMap, Entry};

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

use super::Target;
use crate::error::{Error, Result};

/// The kernel clamps a SECCOMP_RET_ERRNO value to this (include/linux/err.h).
pub const MAX_ERRNO: u32 = 4095;
/// Syscall arguments are numbered 0..=5 (struct seccomp_data).
const ARGS: usize = 6;

/// What the filter does, per syscall number, for one architecture.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub default: SeccompAction,
    /// SECCOMP_FILTER_FLAG_* bits for seccomp(2).
    pub flags: libc::c_ulong,
    pub chains: BTreeMap<i64, Chain>,
    /// Syscall numbers above this one get ERRNO(ENOSYS) whatever the rules say.
    pub enosys_above: Option<u32>,
    /// Debug notes: names skipped because the architecture does not know them, rules
    /// dropped because an earlier one decides.
    pub notes: Vec<String>,
}

/// What one syscall does (every rule of it gives an action other than the default).
#[derive(Debug, PartialEq)]
pub enum Chain {
    /// One action whatever the arguments: the first entry without conditions (its index).
    Always { action: SeccompAction, entry: usize },
    /// Rules with conditions, in profile order: the first that holds decides, else the
    /// default action.
    When(Vec<(SeccompRule, SeccompAction)>),
}

/// Check `seccomp` whole and turn it into a [`Plan`] for `target`.
pub fn plan(seccomp: &LinuxSeccomp, target: Target) -> Result<Plan> {
    listener(seccomp)?;
    let flags = flags(seccomp.flags().as_deref().unwrap_or_default())?;
    let default = action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;
    let mut plan = Plan {
        default,
        flags,
        chains: BTreeMap::new(),
        enosys_above: None,
        notes: Vec::new(),
    };
    let arches = seccomp.architectures().as_deref().unwrap_or_default();
    let named = arches.iter().any(|a| target.is(*a));
    if !arches.is_empty() && !named {
        plan.notes.push(format!(
            "linux.seccomp.architectures does not name {}; the filter is built for it anyway, \
             as runc does",
            target.name()
        ));
    }
    let mut largest = None;
    for (i, entry) in seccomp.syscalls().iter().flatten().enumerate() {
        let last = add_entry(&mut plan, i, entry, target)?;
        largest = largest.max(last);
    }
    if named && enosys_stub(seccomp.default_action(), &plan.default) {
        plan.enosys_above = largest
            .and_then(|nr| u32::try_from(nr).ok())
            .filter(|&n| n > 0);
    }
    Ok(plan)
}

/// Whether numbers above the profile's largest get ENOSYS (runc's patchbpf `generatePatch`):
/// not when the default lets calls through (a tracer handles new syscalls itself), nor when
/// it answers ENOSYS anyway.
fn enosys_stub(default: LinuxSeccompAction, action: &SeccompAction) -> bool {
    use LinuxSeccompAction as A;
    let permissive = matches!(default, A::ScmpActAllow | A::ScmpActLog | A::ScmpActTrace);
    !permissive && *action != SeccompAction::Errno(libc::ENOSYS as u32)
}

/// Checks entry `i` and adds its rules to `plan`; returns the largest syscall number it
/// names on `target`, whatever its action.
fn add_entry(
    plan: &mut Plan,
    i: usize,
    entry: &LinuxSyscall,
    target: Target,
) -> Result<Option<i64>> {
    let field = format!("linux.seccomp.syscalls[{i}]");
    let act = action(
        entry.action(),
        entry.errno_ret(),
        &format!("{field}.action"),
        &format!("{field}.errnoRet"),
    )?;
    let rules = rules(entry.args().as_deref().unwrap_or_default(), &field)?;
    if entry.names().is_empty() {
        return Err(Error::spec(
            format!("{field}.names"),
            "must name at least one syscall",
        ));
    }
    let mut largest = None;
    for (j, name) in entry.names().iter().enumerate() {
        let field = format!("{field}.names[{j}]");
        if name.is_empty() {
            return Err(Error::spec(field, "must not be empty"));
        }
        let Some(nr) = target.syscall(name) else {
            plan.notes.push(format!(
                "{field}: `{name}` is not a syscall on {}, skipped",
                target.name()
            ));
            continue;
        };
        largest = largest.max(Some(nr));
        if act != plan.default {
            let rule = Rule {
                nr,
                entry: i,
                rules: &rules,
                action: &act,
            };
            if let Some(note) = rule.resolve(&mut plan.chains) {
                plan.notes.push(format!("{field}: `{name}` {note}"));
            }
        }
    }
    Ok(largest)
}

/// One entry's rule(s) for one syscall, about to join what earlier entries gave it.
struct Rule<'a> {
    nr: i64,
    entry: usize,
    /// Empty: no conditions.
    rules: &'a [SeccompRule],
    action: &'a SeccompAction,
}

impl Rule<'_> {
    /// Adds the rule as libseccomp's `db_rule_add` does; a note when it is dropped although
    /// its action differs from the one that decides, or when it replaces earlier rules.
    fn resolve(self, chains: &mut BTreeMap<i64, Chain>) -> Option<String> {
        let chain = match chains.entry(self.nr) {
            Entry::Vacant(slot) => {
                slot.insert(self.chain());
                return None;
            }
            Entry::Occupied(slot) => slot.into_mut(),
        };
        match (chain, self.rules) {
            (Chain::Always { action, entry }, _) => (action != self.action).then(|| {
                format!(
                    "already has {action:?} without conditions from \
                     linux.seccomp.syscalls[{entry}]; this rule is ignored, as libseccomp \
                     ignores it"
                )
            }),
            (chain, []) => {
                *chain = self.chain();
                Some(
                    "has no conditions here: the earlier rules with conditions are replaced, \
                     as in libseccomp"
                        .to_string(),
                )
            }
            (Chain::When(earlier), rules) => {
                earlier.extend(self.with_action(rules));
                None
            }
        }
    }

    /// The chain of a syscall that has only this rule.
    fn chain(&self) -> Chain {
        match self.rules {
            [] => Chain::Always {
                action: self.action.clone(),
                entry: self.entry,
            },
            rules => Chain::When(self.with_action(rules)),
        }
    }

    fn with_action(&self, rules: &[SeccompRule]) -> Vec<(SeccompRule, SeccompAction)> {
        rules
            .iter()
            .map(|r| (r.clone(), self.action.clone()))
            .collect()
    }
}

/// OCI action (+ errnoRet) -> seccompiler action. ERRNO and TRACE default to EPERM, as in
/// runc; SCMP_ACT_KILL is SECCOMP_RET_KILL_THREAD, as in libseccomp.
pub fn action(
    act: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<SeccompAction> {
    use LinuxSeccompAction as A;
    let data = |max: u32| {
        let v = errno_ret.unwrap_or(libc::EPERM as u32);
        if v > max {
            Err(Error::spec(errno_field, format!("{v} is above {max}")))
        } else {
            Ok(v)
        }
    };
    let converted = match act {
        A::ScmpActKill | A::ScmpActKillThread => SeccompAction::KillThread,
        A::ScmpActKillProcess => SeccompAction::KillProcess,
        A::ScmpActTrap => SeccompAction::Trap,
        A::ScmpActErrno => SeccompAction::Errno(data(MAX_ERRNO)?),
        A::ScmpActTrace => SeccompAction::Trace(data(u32::from(u16::MAX))?),
        A::ScmpActLog => SeccompAction::Log,
        A::ScmpActAllow => SeccompAction::Allow,
        A::ScmpActNotify => {
            return Err(Error::Unsupported(format!(
                "{field}: SCMP_ACT_NOTIFY (seccomp user notification)"
            )))
        }
    };
    if errno_ret.is_some() && !matches!(act, A::ScmpActErrno | A::ScmpActTrace) {
        return Err(Error::spec(
            errno_field,
            format!("only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one, not {act}"),
        ));
    }
    Ok(converted)
}

/// One entry's `args` -> the rules it stands for (none: no conditions).
fn rules(args: &[LinuxSeccompArg], field: &str) -> Result<Vec<SeccompRule>> {
    let conds = args
        .iter()
        .enumerate()
        .map(|(k, a)| condition(a, &format!("{field}.args[{k}]")))
        .collect::<Result<Vec<_>>>()?;
    if conds.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = [false; ARGS];
    let repeated = args
        .iter()
        .any(|a| std::mem::replace(&mut seen[a.index()], true));
    let groups: Vec<Vec<SeccompCondition>> = if repeated {
        conds.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conds]
    };
    groups
        .into_iter()
        .map(|g| {
            SeccompRule::new(g).map_err(|e| Error::spec(format!("{field}.args"), e.to_string()))
        })
        .collect()
}

/// One argument comparison. Pure.
pub fn condition(arg: &LinuxSeccompArg, field: &str) -> Result<SeccompCondition> {
    use LinuxSeccompOperator as O;
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|&i| usize::from(i) < ARGS)
        .ok_or_else(|| {
            Error::spec(
                format!("{field}.index"),
                format!("{} is not a syscall argument (0 to 5)", arg.index()),
            )
        })?;
    let (op, value) = match arg.op() {
        O::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        O::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        O::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        O::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        O::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        O::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        O::ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| Error::spec(field, e.to_string()))
}

pub(super) fn flags(flags: &[LinuxSeccompFilterFlag]) -> Result<libc::c_ulong> {
    use LinuxSeccompFilterFlag as F;
    let mut bits = 0;
    for (i, f) in flags.iter().enumerate() {
        bits |= match f {
            F::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            F::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            F::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            F::SeccompFilterFlagWaitKillableRecv => {
                return Err(Error::Unsupported(format!(
                    "linux.seccomp.flags[{i}]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV \
                     (seccomp user notification)"
                )))
            }
        };
    }
    Ok(bits)
}

fn listener(seccomp: &LinuxSeccomp) -> Result<()> {
    let path = seccomp
        .listener_path()
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty());
    let meta = seccomp
        .listener_metadata()
        .as_ref()
        .is_some_and(|m| !m.is_empty());
    let field = match (path, meta) {
        (true, _) => "linux.seccomp.listenerPath",
        (false, true) => "linux.seccomp.listenerMetadata",
        (false, false) => return Ok(()),
    };
    Err(Error::Unsupported(format!(
        "{field} (seccomp user notification)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seccomp(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).expect("test profile parses")
    }

    fn plan_x86(v: serde_json::Value) -> std::result::Result<Plan, String> {
        plan(&seccomp(v), Target::X86_64).map_err(|e| e.to_string())
    }

    fn nr(name: &str) -> i64 {
        Target::X86_64.syscall(name).expect("known syscall")
    }

    fn cond(index: u8, op: SeccompCmpOp, value: u64) -> SeccompCondition {
        SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).unwrap()
    }

    #[test]
    fn actions_map_to_kernel_actions() {
        use LinuxSeccompAction as A;
        let table = [
            (A::ScmpActKill, None, SeccompAction::KillThread),
            (A::ScmpActKillThread, None, SeccompAction::KillThread),
            (A::ScmpActKillProcess, None, SeccompAction::KillProcess),
            (A::ScmpActTrap, None, SeccompAction::Trap),
            (A::ScmpActErrno, None, SeccompAction::Errno(1)),
            (A::ScmpActErrno, Some(38), SeccompAction::Errno(38)),
            (A::ScmpActErrno, Some(4095), SeccompAction::Errno(4095)),
            (A::ScmpActTrace, None, SeccompAction::Trace(1)),
            (A::ScmpActTrace, Some(65535), SeccompAction::Trace(65535)),
            (A::ScmpActLog, None, SeccompAction::Log),
            (A::ScmpActAllow, None, SeccompAction::Allow),
        ];
        for (act, ret, want) in table {
            assert_eq!(action(act, ret, "f", "r").unwrap(), want, "{act} {ret:?}");
        }
        // The kernel values, as libseccomp defines them.
        assert_eq!(u32::from(SeccompAction::Errno(38)), 0x0005_0026);
        assert_eq!(u32::from(SeccompAction::KillProcess), 0x8000_0000);
        assert_eq!(u32::from(SeccompAction::Allow), 0x7fff_0000);
    }

    #[test]
    fn bad_actions_name_the_field() {
        use LinuxSeccompAction as A;
        let table = [
            (
                A::ScmpActNotify,
                None,
                "f: SCMP_ACT_NOTIFY (seccomp user notification): not supported",
            ),
            (A::ScmpActErrno, Some(4096), "r: 4096 is above 4095"),
            (A::ScmpActTrace, Some(65536), "r: 65536 is above 65535"),
            (
                A::ScmpActAllow,
                Some(1),
                "r: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one, not SCMP_ACT_ALLOW",
            ),
        ];
        for (act, ret, want) in table {
            let err = action(act, ret, "f", "r").unwrap_err().to_string();
            assert!(err.starts_with(want), "{act}: got {err}");
        }
    }

    #[test]
    fn operators_map_to_comparisons() {
        use LinuxSeccompOperator as O;
        let table = [
            (O::ScmpCmpNe, 5, None, SeccompCmpOp::Ne, 5),
            (O::ScmpCmpLt, 5, None, SeccompCmpOp::Lt, 5),
            (O::ScmpCmpLe, 5, None, SeccompCmpOp::Le, 5),
            (O::ScmpCmpEq, 5, Some(9), SeccompCmpOp::Eq, 5),
            (O::ScmpCmpGe, 5, None, SeccompCmpOp::Ge, 5),
            (O::ScmpCmpGt, u64::MAX, None, SeccompCmpOp::Gt, u64::MAX),
            (
                O::ScmpCmpMaskedEq,
                0x7e02_0000,
                Some(0),
                SeccompCmpOp::MaskedEq(0x7e02_0000),
                0,
            ),
            (
                O::ScmpCmpMaskedEq,
                0xf0,
                None,
                SeccompCmpOp::MaskedEq(0xf0),
                0,
            ),
        ];
        for (op, value, two, want_op, want_value) in table {
            let arg: LinuxSeccompArg = serde_json::from_value(
                json!({"index": 2, "value": value, "valueTwo": two, "op": op.to_string()}),
            )
            .unwrap();
            assert_eq!(
                condition(&arg, "a").unwrap(),
                cond(2, want_op, want_value),
                "{op}"
            );
        }
        let arg: LinuxSeccompArg =
            serde_json::from_value(json!({"index": 6, "value": 0, "op": "SCMP_CMP_EQ"})).unwrap();
        assert_eq!(
            condition(&arg, "x.args[0]").unwrap_err().to_string(),
            "x.args[0].index: 6 is not a syscall argument (0 to 5)"
        );
    }

    #[test]
    fn args_on_distinct_indexes_are_anded_repeated_ones_ored() {
        let p = plan_x86(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 3, "op": "SCMP_CMP_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]}
            ]
        }))
        .unwrap();
        let eq = |i, v| cond(i, SeccompCmpOp::Eq, v);
        assert_eq!(
            p.chains[&nr("socket")],
            Chain::When(vec![(
                SeccompRule::new(vec![eq(0, 2), eq(1, 3)]).unwrap(),
                SeccompAction::Errno(1)
            )])
        );
        assert_eq!(
            p.chains[&nr("kill")],
            Chain::When(vec![
                (
                    SeccompRule::new(vec![eq(1, 9)]).unwrap(),
                    SeccompAction::Errno(1)
                ),
                (
                    SeccompRule::new(vec![eq(1, 15)]).unwrap(),
                    SeccompAction::Errno(1)
                ),
            ])
        );
    }

    #[test]
    fn plan_collects_chains_flags_and_notes() {
        let p = plan_x86(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                      "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [
                {"names": ["read", "write", "chown32", "read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_LOG"},
                {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}
            ]
        }))
        .unwrap();
        assert_eq!(p.default, SeccompAction::Errno(38));
        assert_eq!(
            p.flags,
            libc::SECCOMP_FILTER_FLAG_LOG
                | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                | libc::SECCOMP_FILTER_FLAG_TSYNC
        );
        assert_eq!(p.chains.len(), 4);
        let always = |action, entry| Chain::Always { action, entry };
        assert_eq!(p.chains[&nr("read")], always(SeccompAction::Allow, 0));
        assert_eq!(p.chains[&nr("personality")], always(SeccompAction::Log, 2));
        assert!(matches!(&p.chains[&nr("kill")], Chain::When(r) if r.len() == 1));
        // The default answers ENOSYS already: no stub.
        assert_eq!(p.enosys_above, None);
        assert_eq!(
            p.notes,
            [
                "linux.seccomp.syscalls[0].names[2]: `chown32` is not a syscall on x86_64, \
                 skipped",
                "linux.seccomp.syscalls[2].names[0]: `personality` has no conditions here: the \
                 earlier rules with conditions are replaced, as in libseccomp"
            ]
        );
    }

    #[test]
    fn names_resolve_per_architecture() {
        // mkdir exists on x86_64 only; mkdirat on both, with different numbers.
        let v = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]});
        let x86 = plan(&seccomp(v.clone()), Target::X86_64).unwrap();
        let arm = plan(&seccomp(v), Target::Aarch64).unwrap();
        assert_eq!(
            x86.chains.keys().copied().collect::<Vec<_>>(),
            [
                i64::from(libc_nr_x86("mkdir")),
                i64::from(libc_nr_x86("mkdirat"))
            ]
        );
        assert_eq!(x86.notes.len(), 1, "{:?}", x86.notes);
        assert!(x86.notes[0].contains("does not name x86_64"));
        assert_eq!(arm.chains.keys().copied().collect::<Vec<_>>(), [34]);
        assert_eq!(
            arm.notes,
            ["linux.seccomp.syscalls[0].names[0]: `mkdir` is not a syscall on aarch64, skipped"]
        );
    }

    /// Numbers from the libc crate for the host (x86_64 CI): a second source for the table.
    fn libc_nr_x86(name: &str) -> i32 {
        match name {
            #[cfg(target_arch = "x86_64")]
            "mkdir" => libc::SYS_mkdir as i32,
            #[cfg(target_arch = "x86_64")]
            "mkdirat" => libc::SYS_mkdirat as i32,
            #[cfg(not(target_arch = "x86_64"))]
            "mkdir" => 83,
            #[cfg(not(target_arch = "x86_64"))]
            "mkdirat" => 258,
            _ => unreachable!(),
        }
    }

    #[test]
    fn bad_profiles_name_the_field() {
        let table = [
            (
                json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
                "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY (seccomp user notification): \
                 not supported by harun",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}),
                "linux.seccomp.defaultErrnoRet: 70000 is above 4095",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}),
                "linux.seccomp.defaultErrnoRet: only SCMP_ACT_ERRNO",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": [], "action": "SCMP_ACT_ERRNO"}]}),
                "linux.seccomp.syscalls[0].names: must name at least one syscall",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read", ""], "action": "SCMP_ACT_ERRNO"}]}),
                "linux.seccomp.syscalls[0].names[1]: must not be empty",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [
                        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                        {"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
                "linux.seccomp.syscalls[0].args[1].index: 7 is not a syscall argument",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                       "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
                "linux.seccomp.flags[1]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}),
                "linux.seccomp.listenerPath (seccomp user notification): not supported",
            ),
        ];
        for (v, want) in table {
            let err = plan_x86(v.clone()).unwrap_err();
            assert!(err.starts_with(want), "{v}:\n got  {err}\n want {want}");
        }
    }
}
