//! The container lifecycle, runc-compatible: create, start, state, kill, delete, list, and the
//! foreground `run` wait.

mod create;
mod exec;
mod lifecycle;
mod start_hooks;
mod users;
mod wait;

pub use create::{create, Console, CreateOptions, Created, ProcessOverrides};
pub use exec::{
    exec, process_from_file, process_from_flags, process_from_json, ExecOptions, Execed,
    ProcessFlags,
};
pub use lifecycle::{
    delete, delete_own, kill, list, start, start_or_remove, start_own, state, Started, STOP_MARKER,
};
pub use users::lookup_user;
pub use wait::{wait_foreground, ExitCode, Forwarder};
