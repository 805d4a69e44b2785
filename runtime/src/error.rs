//! One error type for the runtime library.
//!
//! Every variant says what failed and where: the OCI field, the path, the operation and
//! the errno. The CLI prints `Display` once, at the top; nothing below logs and re-wraps.
//! Callers branch on [`Error::kind`] (the CLI's `--log` lines, the shim's ttrpc codes) and
//! [`Error::errno`], never on the text. Both survive the processes of a container: the
//! init and an exec'd process send a failure as a [`Reported`], which comes back as
//! [`Error::InContainer`] with the same kind, errno and field.

use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::hooks::HookFailure;

pub type Result<T> = std::result::Result<T, Error>;

/// Broad classes callers branch on (exit codes, ttrpc codes, "already gone" handling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The bundle or a flag is invalid; nothing was done.
    InvalidInput,
    /// No container with that ID.
    NotFound,
    /// A container with that ID exists already.
    AlreadyExists,
    /// The container is in the wrong state for the operation.
    FailedPrecondition,
    /// Asked for something harun does not do (yet).
    Unsupported,
    /// A system call or file operation failed.
    System,
    /// The call forks or clones (or changes the environment), which is sound only in a
    /// single-threaded process, and the caller has more threads (process/single_thread.rs).
    MultiThreaded,
    /// harun's own processes disagreed (a message out of order or that does not parse, a
    /// panic): a bug in harun.
    Internal,
}

impl ErrorKind {
    /// The kind as a word (`invalid_input`, `not_found`...), as `--log-format json` writes it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::FailedPrecondition => "failed_precondition",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::System => "system",
            ErrorKind::MultiThreaded => "multi_threaded",
            ErrorKind::Internal => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of config.json (or a flag standing for one) is invalid.
    #[error("{field}: {reason}")]
    InvalidSpec { field: String, reason: String },

    /// Any other bad input (container ID, signal name, CLI argument).
    #[error("{0}")]
    InvalidArgument(String),

    #[error("container `{0}` does not exist")]
    NotFound(String),

    #[error("container `{0}` already exists")]
    AlreadyExists(String),

    /// e.g. "cannot start container `x`: it is running, not created".
    #[error("{0}")]
    FailedPrecondition(String),

    #[error("{0}: not supported by harun")]
    Unsupported(String),

    /// A file operation on a path failed: "open `/run/harun/x/state.json`: ENOENT: No such
    /// file or directory".
    #[error("{op} `{path}`: {}", Cause(source))]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A file harun wrote itself does not parse: "state `/run/harun/x/state.json` is
    /// corrupt: expected value at line 1 column 1".
    #[error("{what} `{path}` is corrupt: {reason}")]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// A system call failed; `what` names the call and its object: "mount `/proc`".
    #[error("{what}: {errno}")]
    Sys { what: String, errno: Errno },

    /// A process in the container (the init during `create`, the process `exec` starts)
    /// failed during its setup and said why: its error's kind, errno and field, kept.
    #[error("in the container: {}", .0.message)]
    InContainer(Box<Reported>),

    /// A process in the container ended before it was ready, without a word: how, when its
    /// exit status tells ("exited with status 1", "was killed by SIGSEGV").
    #[error("in the container: {process} {} before it was ready", how.as_deref().unwrap_or("ended"))]
    Ended {
        /// "the init", "the process to exec".
        process: &'static str,
        how: Option<String>,
    },

    /// harun's own processes disagreed: a message out of order or that does not parse, a
    /// panic in a container process. A bug.
    #[error("internal error: {0}")]
    Internal(String),

    /// `source`, with what it concerns in front: "--upper: create directory `/proc/up`:
    /// ENOENT: No such file or directory". Kind and errno are the source's.
    #[error("{what}: {source}")]
    Context { what: String, source: Box<Error> },

    /// `op` forks or clones (or changes the environment), and the calling process has
    /// `threads` threads (process/single_thread.rs).
    #[error(
        "{op}: needs a single-threaded process, this one has {threads} threads (call it \
         before any thread starts, or from a single-threaded helper process)"
    )]
    MultiThreaded { op: &'static str, threads: u64 },

    /// A hook failed: "createRuntime hook #0 `/bin/false`: exited with status 1".
    #[error("{stage} hook #{index} `{path}`: {failure}")]
    Hook {
        stage: &'static str,
        index: usize,
        path: PathBuf,
        failure: HookFailure,
    },
}

/// An error as it crosses from a process in the container to harun: kind, errno and field
/// kept, the rest as text (its `Display`). Sent over the init's and the joiner's channel;
/// back in harun it is [`Error::InContainer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    pub kind: ErrorKind,
    /// The raw errno.
    pub errno: Option<i32>,
    /// The config.json field at fault, for a spec error (`process.args[0]`).
    pub field: Option<String>,
    pub message: String,
}

/// An I/O error shown the way harun shows every errno, nix's "ENOENT: No such file or
/// directory" (std's own is "No such file or directory (os error 2)"): one style in every
/// message, whichever API failed.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a>(pub &'a io::Error);

impl std::fmt::Display for Cause<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.raw_os_error() {
            Some(n) => write!(f, "{}", Errno::from_raw(n)),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidSpec { .. } | Error::InvalidArgument(_) => ErrorKind::InvalidInput,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Io { .. } | Error::Sys { .. } | Error::Ended { .. } | Error::Corrupt { .. } => {
                ErrorKind::System
            }
            Error::MultiThreaded { .. } => ErrorKind::MultiThreaded,
            Error::Internal(_) => ErrorKind::Internal,
            Error::InContainer(r) => r.kind,
            Error::Hook { failure, .. } => failure.kind(),
            Error::Context { source, .. } => source.kind(),
        }
    }

    /// The errno behind a system failure, if there is one (callers branch on ENOENT, EBUSY...).
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error().map(Errno::from_raw),
            Error::InContainer(r) => r.errno.map(Errno::from_raw),
            Error::Hook { failure, .. } => failure.errno(),
            Error::Context { source, .. } => source.errno(),
            _ => None,
        }
    }

    /// The config.json field at fault, for a spec error (`process.args[0]`).
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidSpec { field, .. } => Some(field),
            Error::InContainer(r) => r.field.as_deref(),
            Error::Context { source, .. } => source.field(),
            _ => None,
        }
    }

    /// This error as a process in the container sends it to harun.
    pub fn report(&self) -> Reported {
        if let Error::InContainer(r) = self {
            return (**r).clone(); // not "in the container: in the container: ..."
        }
        Reported {
            kind: self.kind(),
            errno: self.errno().map(|e| e as i32),
            field: self.field().map(str::to_string),
            message: self.to_string(),
        }
    }

    /// `InvalidSpec` for `field`.
    pub fn spec(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidSpec {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// This error with what it concerns in front (the flag or field the user gave).
    pub fn context(self, what: impl Into<String>) -> Self {
        Error::Context {
            what: what.into(),
            source: Box::new(self),
        }
    }

    /// For `map_err`: `fs::read(&p).map_err(Error::io("read", &p))`.
    pub fn io(op: &'static str, path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> Error {
        let path = path.as_ref().to_path_buf();
        move |source| Error::Io { op, path, source }
    }

    /// For `map_err` on nix calls: `mount(..).map_err(Error::sys(format!("mount `{d}`")))`.
    pub fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> Error {
        let what = what.into();
        move |errno| Error::Sys { what, errno }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_operation_object_and_cause() {
        let e = Error::io("open", "/x/config.json")(io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(
            e.to_string(),
            "open `/x/config.json`: ENOENT: No such file or directory"
        );
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert_eq!(e.kind(), ErrorKind::System);
        let e = Error::sys("mount `/proc`")(Errno::EPERM);
        assert_eq!(
            e.to_string(),
            "mount `/proc`: EPERM: Operation not permitted"
        );
        let e = Error::sys("mkdir `/proc/up`")(Errno::ENOENT).context("--upper");
        assert_eq!(
            e.to_string(),
            "--upper: mkdir `/proc/up`: ENOENT: No such file or directory"
        );
        assert_eq!(
            (e.kind(), e.errno()),
            (ErrorKind::System, Some(Errno::ENOENT))
        );
        let e = Error::spec("process.args", "must not be empty");
        assert_eq!(e.to_string(), "process.args: must not be empty");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
