//! The shim's errors as containerd sees them: a ttrpc status code and one line. containerd
//! branches on the code (errdefs: NotFound for a process already gone, AlreadyExists,
//! FailedPrecondition...); the message is what `ctr` prints.

use containerd_shim_protos::protobuf::Enum;
use containerd_shim_protos::ttrpc::{self, Code};
use harun_runtime::ErrorKind;
use serde::{Deserialize, Serialize};

/// The one mapping from the runtime's error kinds to ttrpc codes.
pub fn code_of(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidInput => Code::INVALID_ARGUMENT,
        ErrorKind::NotFound => Code::NOT_FOUND,
        ErrorKind::AlreadyExists => Code::ALREADY_EXISTS,
        ErrorKind::FailedPrecondition => Code::FAILED_PRECONDITION,
        ErrorKind::Unsupported => Code::UNIMPLEMENTED,
        // containerd's errdefs turn an unknown error into Unknown, as the runc shim's
        // failed runc calls are.
        ErrorKind::System => Code::UNKNOWN,
        // Kinds the runtime adds later are failures of the system until mapped here.
        #[allow(unreachable_patterns)]
        _ => Code::UNKNOWN,
    }
}

/// A failed request: its code and message (what crosses from the engine, too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Failure {
            code: code as i32,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NOT_FOUND, message)
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(Code::FAILED_PRECONDITION, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::INVALID_ARGUMENT, message)
    }

    /// A failure of the shim itself (an fd, a thread, the engine).
    pub fn internal(message: String) -> Self {
        Self::new(Code::INTERNAL, message)
    }
}

impl From<&harun_runtime::Error> for Failure {
    fn from(e: &harun_runtime::Error) -> Self {
        Failure::new(code_of(e.kind()), e.to_string())
    }
}

impl From<harun_runtime::Error> for Failure {
    fn from(e: harun_runtime::Error) -> Self {
        Failure::from(&e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::internal(e.to_string())
    }
}

impl From<Failure> for ttrpc::Error {
    fn from(f: Failure) -> Self {
        let code = Code::from_i32(f.code).unwrap_or(Code::UNKNOWN);
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, f.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_codes_containerd_branches_on() {
        let cases = [
            (harun_runtime::Error::NotFound("x".into()), Code::NOT_FOUND),
            (
                harun_runtime::Error::AlreadyExists("x".into()),
                Code::ALREADY_EXISTS,
            ),
            (
                harun_runtime::Error::FailedPrecondition("x".into()),
                Code::FAILED_PRECONDITION,
            ),
            (
                harun_runtime::Error::spec("process.args", "empty"),
                Code::INVALID_ARGUMENT,
            ),
            (
                harun_runtime::Error::Unsupported("x".into()),
                Code::UNIMPLEMENTED,
            ),
            (
                harun_runtime::Error::sys("mount `/x`")(nix::errno::Errno::EPERM),
                Code::UNKNOWN,
            ),
        ];
        for (e, code) in cases {
            let f = Failure::from(&e);
            assert_eq!(f.code, code as i32, "{e}");
            match ttrpc::Error::from(f) {
                ttrpc::Error::RpcStatus(s) => {
                    assert_eq!(s.code(), code);
                    assert_eq!(s.message(), e.to_string());
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
