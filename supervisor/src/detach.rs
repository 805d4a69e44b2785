//! The detached supervisor process of `harun run --detach --restart ...`.
//!
//! The command forks; the child starts a new session (no controlling terminal: closing the
//! terminal sends it no SIGHUP), takes /dev/null as stdin and a fresh pipe as stdout and
//! stderr. It keeps the working directory, so relative paths given to `run` (pid file,
//! overlay layers) mean the same at every restart. Containers it creates inherit that pipe, and the
//! child pumps the pipe into the rotating log. The parent waits until the child reports the
//! first start through [`Ready`], then returns that outcome: `harun run -d` fails exactly
//! like a plain run when the bundle is bad, and returns once the container runs.
//!
//! The supervisor must be the one that creates the container: the init is cloned as a child
//! of the creating process, and only its parent can wait for it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use harun_runtime::{Error, ErrorKind, Result};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::{fork, pipe2, setsid, ForkResult};

/// The child's report of its first start, sent to the waiting parent.
#[derive(Debug)]
pub struct Ready {
    pipe: File,
}

impl Ready {
    /// The container runs: the parent returns success.
    pub fn ok(mut self) {
        let _ = self.pipe.write_all(b"ok\n");
    }

    /// The first start failed: the parent fails with this error.
    pub fn fail(mut self, error: &Error) {
        let kind = match error.kind() {
            ErrorKind::InvalidInput => "invalid",
            _ => "failed",
        };
        let _ = write!(self.pipe, "{kind}\n{error}");
    }
}

/// Forks the supervisor; in the child runs `child(output_read_end, ready)` and exits with
/// its return value. Returns in the parent once the child reported through `Ready` (or
/// exited without a report).
///
/// # Safety
/// Must be called from a single-threaded process (fork copies only the calling thread).
pub unsafe fn spawn(child: impl FnOnce(File, Ready) -> i32) -> Result<()> {
    let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).map_err(Error::sys("pipe2"))?;
    // SAFETY: the caller guarantees a single-threaded process, so the child may do
    // anything the parent could.
    match unsafe { fork() }.map_err(Error::sys("fork the supervisor"))? {
        ForkResult::Child => {
            drop(ready_r);
            let ready = Ready {
                pipe: File::from(ready_w),
            };
            let code = match become_daemon() {
                Ok(output) => child(output, ready),
                Err(e) => {
                    ready.fail(&e);
                    1
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { .. } => {
            drop(ready_w);
            let mut report = String::new();
            let _ = File::from(ready_r).read_to_string(&mut report);
            parse_report(&report)
        }
    }
}

/// The parent's view of the child's report.
fn parse_report(report: &str) -> Result<()> {
    match report.split_once('\n') {
        Some(("ok", _)) => Ok(()),
        Some(("invalid", message)) => Err(Error::InvalidArgument(message.to_string())),
        Some((_, message)) if !message.is_empty() => {
            Err(Error::FailedPrecondition(message.to_string()))
        }
        _ => Err(Error::FailedPrecondition(
            "the supervisor exited before the container started".into(),
        )),
    }
}

/// setsid, stdin from /dev/null, stdout+stderr into a new pipe; returns the pipe's
/// read end (non-blocking, close-on-exec).
fn become_daemon() -> Result<File> {
    setsid().map_err(Error::sys("setsid"))?;
    // The kernel truncates to 15 bytes; `ps` shows the supervisor apart from other harun runs.
    let _ = nix::sys::prctl::set_name(c"harun-supervise");
    let (out_r, out_w): (OwnedFd, OwnedFd) =
        pipe2(OFlag::O_CLOEXEC).map_err(Error::sys("pipe2 for the container output"))?;
    fcntl(&out_r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(Error::sys("make the output pipe non-blocking"))?;
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(Error::io("open", "/dev/null"))?;
    // dup2'd copies are not close-on-exec: containers inherit them.
    nix::unistd::dup2_stdin(&null).map_err(Error::sys("dup2 /dev/null onto stdin"))?;
    nix::unistd::dup2_stdout(&out_w).map_err(Error::sys("dup2 the output pipe onto stdout"))?;
    nix::unistd::dup2_stderr(&out_w).map_err(Error::sys("dup2 the output pipe onto stderr"))?;
    Ok(File::from(out_r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_map_to_outcomes() {
        assert!(parse_report("ok\n").is_ok());
        let e = parse_report("invalid\nbad thing").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "bad thing");
        let e = parse_report("failed\ncontainer `x` already exists").unwrap_err();
        assert_eq!(e.to_string(), "container `x` already exists");
        for silent in ["", "ok", "garbage"] {
            let e = parse_report(silent).unwrap_err();
            assert!(e.to_string().contains("exited before"), "{silent:?}: {e}");
        }
    }
}
