//! Device access control on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program generated from
//! `linux.resources.devices` followed by runc's default allow list, attached to the
//! container's cgroup.
//!
//! Semantics (what [`allows`] computes and the program implements): for each access bit the
//! kernel asks about (mknod, read, write), the *last* rule that matches the device and names
//! that bit decides; no matching rule means deny. An access is allowed when all its bits are.
//! runc appends its defaults after the spec's rules, so they cannot be denied; the same here.
//! (runc emulates cgroup v1's exception lists first; for the rules containers use —
//! "deny all", then allows, then specific denies — both give the same answers.)

mod attach;
mod bpf;

use std::os::fd::OwnedFd;
use std::sync::{Mutex, PoisonError};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::cgroup::Cgroup;
use crate::{Error, Result};

pub use bpf::{program, Insn};

/// Access bits, as the kernel passes them to the program (BPF_DEVCG_ACC_*).
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
const ALL_ACCESS: u8 = MKNOD | READ | WRITE;

/// Device types, with the kernel's numbers for block and char (BPF_DEVCG_DEV_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    All,
    Block,
    Char,
}

impl Kind {
    /// The kernel's number; None for `All`.
    pub fn number(self) -> Option<u32> {
        match self {
            Kind::All => None,
            Kind::Block => Some(1),
            Kind::Char => Some(2),
        }
    }
}

/// One rule: allow or deny `access` to devices of `kind` with `major`:`minor` (None = any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

const fn allow(kind: Kind, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
    Rule {
        allow: true,
        kind,
        major,
        minor,
        access,
    }
}

/// runc's default allow list (libcontainer/specconv `AllowedDevices`), appended after the
/// spec's rules: mknod of any char or block device; null, random, full, tty, zero, urandom;
/// the pty slaves (136:*) and /dev/ptmx (5:2); /dev/net/tun (10:200).
pub const DEFAULTS: &[Rule] = &[
    allow(Kind::Char, None, None, MKNOD),
    allow(Kind::Block, None, None, MKNOD),
    allow(Kind::Char, Some(1), Some(3), ALL_ACCESS),
    allow(Kind::Char, Some(1), Some(8), ALL_ACCESS),
    allow(Kind::Char, Some(1), Some(7), ALL_ACCESS),
    allow(Kind::Char, Some(5), Some(0), ALL_ACCESS),
    allow(Kind::Char, Some(1), Some(5), ALL_ACCESS),
    allow(Kind::Char, Some(1), Some(9), ALL_ACCESS),
    allow(Kind::Char, Some(136), None, ALL_ACCESS),
    allow(Kind::Char, Some(5), Some(2), ALL_ACCESS),
    allow(Kind::Char, Some(10), Some(200), ALL_ACCESS),
];

/// At most this many spec rules (the program's jumps are 16-bit).
const MAX_RULES: usize = 1000;

/// The container's rules: `linux.resources.devices` (validated), then [`DEFAULTS`].
pub fn rules(spec: Option<&[LinuxDeviceCgroup]>) -> Result<Vec<Rule>> {
    let spec = spec.unwrap_or(&[]);
    if spec.len() > MAX_RULES {
        return Err(Error::spec(
            "linux.resources.devices",
            format!("{} rules; harun takes at most {MAX_RULES}", spec.len()),
        ));
    }
    let mut out = Vec::with_capacity(spec.len() + DEFAULTS.len());
    for (i, d) in spec.iter().enumerate() {
        out.push(rule(&format!("linux.resources.devices[{i}]"), d)?);
    }
    out.extend_from_slice(DEFAULTS);
    Ok(out)
}

fn rule(field: &str, d: &LinuxDeviceCgroup) -> Result<Rule> {
    let kind = match d.typ() {
        None | Some(LinuxDeviceType::A) => Kind::All,
        Some(LinuxDeviceType::B) => Kind::Block,
        Some(LinuxDeviceType::C) => Kind::Char,
        Some(other) => {
            return Err(Error::spec(
                format!("{field}.type"),
                format!(
                    "`{}` is not a cgroup device type (a, b or c)",
                    other.as_str()
                ),
            ))
        }
    };
    let number = |name: &str, v: Option<i64>| match v {
        None | Some(-1) => Ok(None),
        // Below 2^31: the program compares 32-bit immediates (majors have 12 bits,
        // minors 20).
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(Error::spec(
            format!("{field}.{name}"),
            format!("{n} is not a device number"),
        )),
    };
    let access = match d.access().as_deref() {
        None | Some("") => ALL_ACCESS,
        Some(a) => access_bits(a).ok_or_else(|| {
            Error::spec(
                format!("{field}.access"),
                format!("`{a}` is not a combination of r, w and m"),
            )
        })?,
    };
    Ok(Rule {
        allow: d.allow(),
        kind,
        major: number("major", d.major())?,
        minor: number("minor", d.minor())?,
        access,
    })
}

fn access_bits(s: &str) -> Option<u8> {
    s.chars().try_fold(0u8, |acc, c| match c {
        'r' => Some(acc | READ),
        'w' => Some(acc | WRITE),
        'm' => Some(acc | MKNOD),
        _ => None,
    })
}

impl Rule {
    /// True when the rule is about device `kind` `major`:`minor` (`kind` is Block or Char).
    pub fn matches(&self, kind: Kind, major: u32, minor: u32) -> bool {
        (self.kind == Kind::All || self.kind == kind)
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }

    /// True when the rule matches every device.
    pub fn is_wildcard(&self) -> bool {
        self.kind == Kind::All && self.major.is_none() && self.minor.is_none()
    }
}

/// The reference decision: may a process open (`access`) device `kind` `major`:`minor`?
pub fn allows(rules: &[Rule], kind: Kind, major: u32, minor: u32, access: u8) -> bool {
    [MKNOD, READ, WRITE]
        .into_iter()
        .filter(|bit| access & bit != 0)
        .all(|bit| {
            rules
                .iter()
                .rev()
                .find(|r| r.access & bit != 0 && r.matches(kind, major, minor))
                .is_some_and(|r| r.allow)
        })
}

/// Generate the program for `rules`, attach it to `cg`, then detach the programs attached
/// before (an `update`): between the two both apply, which only ever denies more.
pub fn apply(cg: &Cgroup, rules: &[Rule]) -> Result<()> {
    let before = attach::attached(cg)?;
    let insns = program(rules)?;
    {
        let mut last = LAST_LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        // Only into a cgroup without programs (a create): the kernel refuses to attach a
        // program twice to one cgroup, which an `update` with unchanged rules would do.
        let prog = match last.take() {
            Some((loaded, prog)) if loaded == insns && before.is_empty() => prog,
            _ => attach::load(&insns)?,
        };
        let attached = attach::attach(cg, &prog);
        *last = Some((insns, prog));
        attached?;
    }
    for id in before {
        attach::detach(cg, id)?;
    }
    Ok(())
}

/// The program [`apply`] loaded last, with its instructions. A supervisor restarting a
/// container (or a shim creating containers of one spec) asks for the same program every
/// time, and loading it (the kernel's verifier) is about 0.2 ms of each create. A loaded
/// program cannot change and may be attached to any number of cgroups; its fd is
/// close-on-exec (every BPF fd is), and the container's init closes it with the rest.
static LAST_LOADED: Mutex<Option<(Vec<Insn>, OwnedFd)>> = Mutex::new(None);

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_rules(json: &str) -> Vec<Rule> {
        let d: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        rules(Some(&d)).unwrap()
    }

    /// (kind, major, minor, access, allowed) for runc's default config: deny all, defaults.
    pub(super) const DEFAULT_CASES: &[(Kind, u32, u32, u8, bool)] = &[
        (Kind::Char, 1, 3, READ | WRITE, true),    // /dev/null
        (Kind::Char, 1, 5, READ, true),            // /dev/zero
        (Kind::Char, 1, 9, READ, true),            // /dev/urandom
        (Kind::Char, 5, 0, READ | WRITE, true),    // /dev/tty
        (Kind::Char, 136, 4, READ | WRITE, true),  // /dev/pts/4
        (Kind::Char, 5, 2, READ | WRITE, true),    // /dev/ptmx
        (Kind::Char, 10, 200, READ | WRITE, true), // /dev/net/tun
        (Kind::Char, 7, 0, MKNOD, true),           // any char mknod
        (Kind::Block, 8, 0, MKNOD, true),          // any block mknod
        (Kind::Block, 8, 0, READ, false),          // /dev/sda
        (Kind::Char, 1, 1, READ, false),           // /dev/mem
        (Kind::Char, 1, 11, WRITE, false),         // /dev/kmsg
        (Kind::Char, 5, 1, READ | WRITE, false),   // /dev/console (not in runc's list)
        (Kind::Char, 1, 3, READ | WRITE | MKNOD, true),
        (Kind::Char, 10, 229, READ | WRITE, false), // /dev/fuse
    ];

    #[test]
    fn runc_defaults_after_deny_all() {
        let r = spec_rules(r#"[{"allow": false, "access": "rwm"}]"#);
        assert_eq!(r.len(), 1 + DEFAULTS.len());
        for (kind, maj, min, acc, want) in DEFAULT_CASES {
            assert_eq!(
                allows(&r, *kind, *maj, *min, *acc),
                *want,
                "{kind:?} {maj}:{min} {acc}"
            );
        }
        // No rules at all: the same (default deny).
        let none = rules(None).unwrap();
        for (kind, maj, min, acc, want) in DEFAULT_CASES {
            assert_eq!(allows(&none, *kind, *maj, *min, *acc), *want);
        }
    }

    #[test]
    fn later_rules_win_per_access_bit() {
        let r = spec_rules(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 1, "access": "rw"},
                {"allow": false, "type": "c", "major": 1, "minor": 1, "access": "w"},
                {"allow": true, "type": "b", "major": 8, "access": "r"},
                {"allow": true, "type": "a", "access": "rwm"},
                {"allow": false, "type": "c", "major": 4, "access": "w"}]"#,
        );
        let cases: &[(Kind, u32, u32, u8, bool)] = &[
            // After "allow a rwm" everything is allowed again...
            (Kind::Char, 1, 1, READ | WRITE, true),
            (Kind::Block, 9, 9, READ | WRITE, true),
            // ...except what later rules deny: writes to char 4:*.
            (Kind::Char, 4, 1, READ, true),
            (Kind::Char, 4, 1, WRITE, false),
            (Kind::Char, 4, 1, READ | WRITE, false),
        ];
        for (kind, maj, min, acc, want) in cases {
            assert_eq!(
                allows(&r, *kind, *maj, *min, *acc),
                *want,
                "{kind:?} {maj}:{min} {acc}"
            );
        }
        let r = spec_rules(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 1, "access": "rw"},
                {"allow": false, "type": "c", "major": 1, "minor": 1, "access": "w"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]"#,
        );
        assert!(allows(&r, Kind::Char, 1, 1, READ));
        assert!(!allows(&r, Kind::Char, 1, 1, WRITE));
        assert!(!allows(&r, Kind::Char, 1, 1, READ | WRITE));
        // The defaults come last: /dev/null cannot be denied (as in runc).
        assert!(allows(&r, Kind::Char, 1, 3, READ | WRITE));
    }

    #[test]
    fn bad_rules_name_their_field() {
        let cases: &[(&str, &str)] = &[
            (
                r#"[{"allow": true, "type": "p"}]"#,
                "linux.resources.devices[0].type",
            ),
            (
                r#"[{"allow": true, "access": "rwx"}]"#,
                "linux.resources.devices[0].access",
            ),
            (
                r#"[{"allow": true}, {"allow": true, "major": -7}]"#,
                "linux.resources.devices[1].major",
            ),
            (
                r#"[{"allow": true, "minor": 4294967296}]"#,
                "linux.resources.devices[0].minor",
            ),
        ];
        for (json, field) in cases {
            let d: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
            let e = rules(Some(&d)).unwrap_err();
            assert!(e.to_string().starts_with(field), "{json}: {e}");
        }
        // A missing access means all of them (as crun; runc refuses it).
        let d: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow": true, "type": "c", "major": 99, "minor": 1}]"#)
                .unwrap();
        assert_eq!(rules(Some(&d)).unwrap()[0].access, ALL_ACCESS);
    }
}
