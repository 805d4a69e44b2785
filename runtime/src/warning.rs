//! What went wrong or was left out without failing the operation.
//!
//! The library prints nothing and drops nothing: `create`, `start`, `exec` and `delete`
//! return their warnings with their result, and the caller shows them (the CLI: src/log.rs,
//! `harun: warning: ...` on stderr and a `--log` line; [`Level::Debug`] ones only with
//! `--debug`).

use std::fmt;

use crate::security::capabilities::{Skipped, Why};
use crate::security::seccomp::Filter;
use crate::Error;

/// One warning.
#[derive(Debug)]
pub enum Warning {
    /// A poststart or poststop hook failed: runtime.md says the lifecycle goes on.
    Hook(Error),
    /// A capability of `process.capabilities` is not applied (the kernel does not know it;
    /// an ambient one that is not permitted and inheritable).
    Capability(Skipped),
    /// The seccomp filter differs from the profile's words: a syscall name this
    /// architecture does not have, a rule another rule for the same syscall overrides.
    Seccomp(String),
}

/// How loudly to show a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Always: the container does not get something its config asks for.
    Warning,
    /// With `--debug`: expected with common configs (Docker's and podman's seccomp
    /// profiles name syscalls of every architecture), dropped silently by runc or logged
    /// at its debug level.
    Debug,
}

impl Warning {
    pub fn level(&self) -> Level {
        match self {
            Warning::Hook(_) => Level::Warning,
            // runc warns of these ("ignoring unknown or unavailable capabilities").
            Warning::Capability(Skipped {
                reason: Why::UnknownToKernel,
                ..
            }) => Level::Warning,
            // runc and crun drop these silently, and their default specs (harun's too) ask
            // for ambient capabilities without inheritable ones.
            Warning::Capability(_) | Warning::Seccomp(_) => Level::Debug,
        }
    }

    /// The notes of a compiled filter.
    pub fn of_seccomp(filter: Option<&Filter>) -> impl Iterator<Item = Warning> + '_ {
        filter
            .into_iter()
            .flat_map(|f| f.notes())
            .map(|note| Warning::Seccomp(note.clone()))
    }

    /// The capabilities `process` asks for that it will not get on this kernel.
    pub fn of_capabilities(process: &oci_spec::runtime::Process) -> impl Iterator<Item = Warning> {
        crate::security::capabilities::skipped(process.capabilities().as_ref())
            .into_iter()
            .map(Warning::Capability)
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Hook(e) => write!(f, "{e}"),
            Warning::Capability(s) => write!(f, "process.capabilities: {s}"),
            Warning::Seccomp(note) => write!(f, "{note}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_caller_must_see_and_what_only_with_debug() {
        let cap = |reason| {
            Warning::Capability(Skipped {
                set: "ambient",
                cap: caps::Capability::CAP_KILL,
                reason,
            })
        };
        let hook = Warning::Hook(Error::Internal("x".into()));
        let table = [
            (hook, Level::Warning),
            (cap(Why::UnknownToKernel), Level::Warning),
            (cap(Why::AmbientNotPermittedAndInheritable), Level::Debug),
            (Warning::Seccomp("linux.seccomp: x".into()), Level::Debug),
        ];
        for (w, level) in table {
            assert_eq!(w.level(), level, "{w}");
        }
        assert_eq!(
            cap(Why::UnknownToKernel).to_string(),
            "process.capabilities: ambient CAP_KILL: not known to the running kernel, skipped"
        );
    }
}
