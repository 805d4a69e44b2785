//! Command output. `println!` panics when stdout is a closed pipe (`harun state ID | grep -q
//! running`); harun ends there the way runc and other Unix tools do, killed by SIGPIPE, with
//! nothing on stderr. Diagnostics on stderr are best effort: a closed stderr is no reason to
//! fail a command.

use std::io::{ErrorKind, Write};

/// `println!` for command output.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::stdout(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}
pub(crate) use outln;

/// Write `bytes` to stdout and flush.
pub fn stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => die_of_sigpipe(),
        Err(e) => {
            let e = harun_runtime::error::Cause(&e);
            harun_runtime::stderr::line(&format!("harun: write to stdout: {e}"));
            std::process::exit(1);
        }
    }
}

/// End harun the way a closed pipe ends a Unix tool that does not handle SIGPIPE.
pub fn die_of_sigpipe() -> ! {
    // SAFETY: plain libc calls; harun's CLI is single-threaded here and about to end.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
        libc::_exit(128 + libc::SIGPIPE)
    }
}
