//! `linux.seccomp`: the syscall filter of the container process.
//!
//! [`Filter::compile`] checks the profile and builds one BPF program for the running
//! architecture ([`convert`] turns the profile into per-syscall rules, [`program`] assembles
//! them with seccompiler's rule compiler); [`Filter::install`] loads it with seccomp(2).
//! seccompiler's own `apply_filter` is not used: it always sets no_new_privs, and the spec
//! lets a container run without it.
//!
//! Where a container process installs it (see `process::finish`):
//! - `noNewPrivileges: true`: as late as possible, right before execve, so that nothing of
//!   the runtime's own runs under the container's filter;
//! - `noNewPrivileges: false`: the kernel then requires CAP_SYS_ADMIN, so the filter goes in
//!   before the capabilities are set, after every other step; what still runs under it
//!   (capget, capset, prctl, and for the init write and close while it waits for `start`)
//!   is a subset of what runc's init does after its filter, so a profile written for runc
//!   is enough.
//!
//! Architectures: the filter is built for the running one (x86_64 or aarch64); other entries
//! of `architectures` are accepted and ignored, and a process of another ABI (32-bit x86 or
//! ARM, x32) is killed rather than let through unfiltered. Unknown syscall names are skipped
//! and reported in [`Filter::notes`]. SCMP_ACT_NOTIFY (user notification) is not supported.
//!
//! A profile is read the way runc 1.1 with libseccomp 2.5 reads it (see `convert.rs`): rules
//! giving the default action are dropped; for a syscall named by several entries, the first
//! entry without conditions decides (podman's default profile relies on it); and unless the
//! default action lets calls through, syscall numbers above the largest the profile names
//! get ENOSYS, so that libc falls back from syscalls newer than the profile.

mod convert;
mod program;

use std::fmt;
use std::sync::OnceLock;

use nix::errno::Errno;
use oci_spec::runtime::{Arch, LinuxSeccomp, Spec};

use crate::error::{Error, Result};

pub use convert::MAX_ERRNO;
pub use program::MAX_INSTRUCTIONS;

/// An architecture harun builds filters for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    X86_64,
    Aarch64,
}

impl Target {
    /// The architecture harun runs on, if it builds filters for it.
    pub fn native() -> Option<Target> {
        if cfg!(target_arch = "x86_64") {
            Some(Target::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Target::Aarch64)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::X86_64 => "x86_64",
            Target::Aarch64 => "aarch64",
        }
    }

    /// The libseccomp name of this architecture.
    pub fn arch(self) -> Arch {
        match self {
            Target::X86_64 => Arch::ScmpArchX86_64,
            Target::Aarch64 => Arch::ScmpArchAarch64,
        }
    }

    /// Whether a spec's `architectures` entry means this architecture.
    pub fn is(self, arch: Arch) -> bool {
        arch == self.arch() || (arch == Arch::ScmpArchNative && Target::native() == Some(self))
    }

    /// AUDIT_ARCH_* of this architecture (struct seccomp_data.arch). For these two,
    /// libseccomp's SCMP_ARCH_* values are the audit values.
    fn audit_arch(self) -> u32 {
        self.arch() as u32
    }

    /// The number of the syscall `name`, if this architecture has it.
    ///
    /// A lookup in a hash table of the names made once, not syscalls' `FromStr`: that is a
    /// match on every name, 13 KB of code per architecture, where `name()` is a table.
    /// Making the table takes 20–40 µs, once per process and only with a profile; a lookup
    /// ~10 ns.
    pub fn syscall(self, name: &str) -> Option<i64> {
        static X86_64: OnceLock<Names> = OnceLock::new();
        static AARCH64: OnceLock<Names> = OnceLock::new();
        let names = match self {
            Target::X86_64 => X86_64.get_or_init(|| {
                use syscalls::x86_64::Sysno;
                Names::new(Sysno::last().id(), |n| Sysno::new(n).map(|s| s.name()))
            }),
            Target::Aarch64 => AARCH64.get_or_init(|| {
                use syscalls::aarch64::Sysno;
                Names::new(Sysno::last().id(), |n| Sysno::new(n).map(|s| s.name()))
            }),
        };
        names.get(name).map(i64::from)
    }

    /// The name of syscall number `nr`, if this architecture has it.
    pub fn name_of(self, nr: u32) -> Option<&'static str> {
        let nr = usize::try_from(nr).ok()?;
        match self {
            Target::X86_64 => syscalls::x86_64::Sysno::new(nr).map(|s| s.name()),
            Target::Aarch64 => syscalls::aarch64::Sysno::new(nr).map(|s| s.name()),
        }
    }
}

/// An architecture's syscall names and numbers: open addressing, linear probing, at most
/// half full.
struct Names {
    slots: Vec<(&'static str, i32)>,
}

impl Names {
    /// Every syscall number up to `last` that has a `name`.
    fn new(last: i32, name: impl Fn(usize) -> Option<&'static str>) -> Names {
        let size = (2 * (last as usize + 1)).next_power_of_two();
        let mut names = Names {
            slots: vec![("", -1); size],
        };
        for nr in 0..=last {
            if let Some(n) = name(nr as usize) {
                let at = names.slot(n);
                names.slots[at] = (n, nr);
            }
        }
        names
    }

    /// Where `name` is, or the empty slot where it would go.
    fn slot(&self, name: &str) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = crate::hash::fnv1a(name.as_bytes()) as usize & mask;
        while !self.slots[at].0.is_empty() && self.slots[at].0 != name {
            at = (at + 1) & mask;
        }
        at
    }

    fn get(&self, name: &str) -> Option<i32> {
        let (n, nr) = self.slots[self.slot(name)];
        (!n.is_empty()).then_some(nr)
    }
}

/// A compiled filter, ready to install.
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    notes: Vec<String>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &self.flags)
            .field("notes", &self.notes)
            .finish()
    }
}

impl Filter {
    /// The filter of `spec`'s `linux.seccomp`, for the running architecture; None without one.
    pub fn from_spec(spec: &Spec) -> Result<Option<Filter>> {
        match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Filter::compile(s).map(Some),
            None => Ok(None),
        }
    }

    /// Check `seccomp` and build its program for the running architecture.
    pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter> {
        let target = Target::native().ok_or_else(|| {
            Error::Unsupported(format!(
                "linux.seccomp on {} (harun builds filters for x86_64 and aarch64)",
                std::env::consts::ARCH
            ))
        })?;
        Filter::compile_for(seccomp, target)
    }

    /// Check `seccomp` and build its program for `target`.
    pub fn compile_for(seccomp: &LinuxSeccomp, target: Target) -> Result<Filter> {
        let plan = convert::plan(seccomp, target)?;
        let program = program::assemble(&plan, target)?;
        Ok(Filter {
            program,
            flags: plan.flags,
            notes: plan.notes,
        })
    }

    /// Debug notes: syscall names skipped because the architecture does not have them,
    /// rules dropped or replaced because another rule for the same syscall decides.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// SECCOMP_FILTER_FLAG_* bits passed to seccomp(2).
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// Load the filter into the calling thread with seccomp(SECCOMP_SET_MODE_FILTER).
    ///
    /// Without no_new_privs set, the kernel requires CAP_SYS_ADMIN (EACCES otherwise).
    /// Allocates nothing: safe to call in the init right before execve.
    pub fn install(&self) -> Result<()> {
        let len = u16::try_from(self.program.len()).map_err(|_| {
            Error::spec(
                "linux.seccomp",
                format!("{} BPF instructions are too many", self.program.len()),
            )
        })?;
        let prog = libc::sock_fprog {
            len,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points to `len` initialised instructions that outlive the call; the
        // kernel only reads them (it copies the program). No memory of ours is written.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        match r {
            0 => Ok(()),
            r if r > 0 => Err(Error::Sys {
                what: format!("install the seccomp filter: thread {r} cannot be synchronised"),
                errno: Errno::ESRCH,
            }),
            _ => {
                let errno = Errno::last();
                let hint = if errno == Errno::EACCES {
                    " (without noNewPrivileges this needs CAP_SYS_ADMIN)"
                } else {
                    ""
                };
                Err(Error::Sys {
                    what: format!("install the seccomp filter{hint}"),
                    errno,
                })
            }
        }
    }
}

/// The `linux.seccomp` object of the OCI features document, from the converter itself:
/// `actions`, `operators` and `supportedFlags` are the values [`convert`] accepts out of
/// every value oci-spec knows (`knownFlags`); `archs` the one filters are built for.
pub fn features() -> serde_json::Value {
    use oci_spec::runtime::LinuxSeccompArgBuilder;
    let archs: Vec<String> = Target::native()
        .map(|t| t.arch().to_string())
        .into_iter()
        .collect();
    let actions = names(&known::ACTIONS, |a| {
        convert::action(*a, None, "", "").is_ok()
    });
    let operators = names(&known::OPERATORS, |op| {
        LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(0u64)
            .op(*op)
            .build()
            .is_ok_and(|arg| convert::condition(&arg, "").is_ok())
    });
    let supported = names(&known::FLAGS, |f| convert::flags(&[*f]).is_ok());
    serde_json::json!({
        "enabled": Target::native().is_some(),
        "actions": actions,
        "operators": operators,
        "archs": archs,
        "knownFlags": names(&known::FLAGS, |_| true),
        "supportedFlags": supported,
    })
}

/// The names of the values of `all` that `keep` keeps, sorted.
fn names<T: fmt::Display>(all: &[T], keep: impl Fn(&T) -> bool) -> Vec<String> {
    let mut out: Vec<String> = all.iter().filter(|v| keep(v)).map(T::to_string).collect();
    crate::sort::sort(&mut out);
    out
}

/// Every action, operator and filter flag oci-spec knows. The `exhaustive_*` matches break
/// the build when an oci-spec update adds one, so that it is classified, not forgotten.
mod known {
    use oci_spec::runtime::{
        LinuxSeccompAction as A, LinuxSeccompFilterFlag as F, LinuxSeccompOperator as O,
    };

    pub const ACTIONS: [A; 9] = [
        A::ScmpActKill,
        A::ScmpActKillProcess,
        A::ScmpActKillThread,
        A::ScmpActTrap,
        A::ScmpActErrno,
        A::ScmpActTrace,
        A::ScmpActAllow,
        A::ScmpActLog,
        A::ScmpActNotify,
    ];
    pub const OPERATORS: [O; 7] = [
        O::ScmpCmpNe,
        O::ScmpCmpLt,
        O::ScmpCmpLe,
        O::ScmpCmpEq,
        O::ScmpCmpGe,
        O::ScmpCmpGt,
        O::ScmpCmpMaskedEq,
    ];
    pub const FLAGS: [F; 4] = [
        F::SeccompFilterFlagTsync,
        F::SeccompFilterFlagLog,
        F::SeccompFilterFlagSpecAllow,
        F::SeccompFilterFlagWaitKillableRecv,
    ];

    #[allow(dead_code)]
    fn exhaustive_actions(a: A) {
        match a {
            A::ScmpActKill
            | A::ScmpActKillProcess
            | A::ScmpActKillThread
            | A::ScmpActTrap
            | A::ScmpActErrno
            | A::ScmpActTrace
            | A::ScmpActAllow
            | A::ScmpActLog
            | A::ScmpActNotify => {}
        }
    }

    #[allow(dead_code)]
    fn exhaustive_operators(o: O) {
        match o {
            O::ScmpCmpNe
            | O::ScmpCmpLt
            | O::ScmpCmpLe
            | O::ScmpCmpEq
            | O::ScmpCmpGe
            | O::ScmpCmpGt
            | O::ScmpCmpMaskedEq => {}
        }
    }

    #[allow(dead_code)]
    fn exhaustive_flags(f: F) {
        match f {
            F::SeccompFilterFlagTsync
            | F::SeccompFilterFlagLog
            | F::SeccompFilterFlagSpecAllow
            | F::SeccompFilterFlagWaitKillableRecv => {}
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
