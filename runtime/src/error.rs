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

    /// A file operation on a path failed: "open `/run/harun/x/state.json`: No such file ...".
    #[error("{op} `{path}`: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A system call failed; `what` names the call and its object: "mount `/proc`".
    #[error("{what}: {errno}")]
    Sys { what: String, errno: Errno },

    /// A container process (the init during create, or an exec) reported a failure during
    /// setup; its message is the real cause.
    #[error("in the container: {0}")]
    Init(String),

    /// A hook failed: "createRuntime hook #0 `/bin/false`: exited with status 1".
    #[error("{stage} hook #{index} `{path}`: {reason}")]
    Hook {
        stage: &'static str,
        index: usize,
        path: PathBuf,
        reason: String,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidSpec { .. } | Error::InvalidArgument(_) => ErrorKind::InvalidInput,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Io { .. } | Error::Sys { .. } | Error::Init(_) | Error::Hook { .. } => {
                ErrorKind::System
            }
        }
    }

    /// The errno behind a system failure, if there is one (callers branch on ENOENT, EBUSY...).
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error().map(Errno::from_raw),
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
        assert!(e
            .to_string()
            .starts_with("open `/x/config.json`: No such file"));
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert_eq!(e.kind(), ErrorKind::System);
        let e = Error::sys("mount `/proc`")(Errno::EPERM);
        assert_eq!(
            e.to_string(),
            "mount `/proc`: EPERM: Operation not permitted"
        );
        let e = Error::spec("process.args", "must not be empty");
        assert_eq!(e.to_string(), "process.args: must not be empty");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
