//! One error type for the runtime library.
//!
//! Every variant says what failed and where: the OCI field, the path, the operation and
//! the errno. The CLI prints `Display` once, at the top; nothing below logs and re-wraps.

use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

pub type Result<T> = std::result::Result<T, Error>;

/// Broad classes callers branch on (exit codes, ttrpc codes, "already gone" handling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// A container process (the init during create, or an exec) reported a failure during
    /// setup; its message is the real cause.
    #[error("in the container: {0}")]
    Init(String),

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
    #[error("{stage} hook #{index} `{path}`: {reason}")]
    Hook {
        stage: &'static str,
        index: usize,
        path: PathBuf,
        reason: String,
    },
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
            Error::Io { .. }
            | Error::Sys { .. }
            | Error::Init(_)
            | Error::Hook { .. }
            | Error::Corrupt { .. } => ErrorKind::System,
            Error::MultiThreaded { .. } => ErrorKind::MultiThreaded,
            Error::Context { source, .. } => source.kind(),
        }
    }

    /// The errno behind a system failure, if there is one (callers branch on ENOENT, EBUSY...).
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error().map(Errno::from_raw),
            Error::Context { source, .. } => source.errno(),
            _ => None,
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
