//! Detached supervisors: `harun run --detach --restart ...` and `harun supervise --detach`.
//!
//! The command forks; the child starts a new session (no controlling terminal: closing the
//! terminal sends it no SIGHUP), takes /dev/null as stdin, /dev/null or a log file as
//! stdout and stderr, and closes every other fd it inherited: a caller's pipe must not stay
//! open in a process that lives for months (`x=$(harun run -d --restart always ...)` would
//! never return, its `$(...)` waiting for an EOF that never comes). It keeps the working
//! directory, so relative paths given to `run` (pid file, overlay layers) mean the same at
//! every restart. The parent waits until the child reports through [`Ready`], then returns
//! that outcome: `harun run -d` fails exactly like a plain run when the bundle is bad, and
//! returns once the container runs.
//!
//! The supervisor must be the one that creates the containers: an init is cloned as a child
//! of the creating process, and only its parent can read its exit status.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use harun_runtime::{Error, ErrorKind, Result};
use nix::fcntl::OFlag;
use nix::unistd::{fork, pipe2, setsid, ForkResult};

/// The child's report of its start, sent to the waiting parent.
#[derive(Debug)]
pub struct Ready {
    pipe: File,
}

impl Ready {
    /// It runs: the parent returns success.
    pub fn ok(mut self) {
        let _ = self.pipe.write_all(b"ok\n");
    }

    /// The start failed: the parent fails with this error.
    pub fn fail(mut self, error: &Error) {
        let kind = match error.kind() {
            ErrorKind::InvalidInput => "invalid",
            ErrorKind::AlreadyExists => "exists",
            _ => "failed",
        };
        let _ = write!(self.pipe, "{kind}\n{error}");
    }
}

/// Forks the supervisor; in the child runs `child(ready)` and exits with its return value;
/// the child's stdout and stderr go to `log` (appended) or /dev/null. Returns in the parent
/// once the child reported through `Ready` (or exited without a report).
///
/// # Safety
/// Must be called from a single-threaded process (fork copies only the calling thread).
pub unsafe fn spawn(log: Option<&Path>, child: impl FnOnce(Ready) -> i32) -> Result<()> {
    let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).map_err(Error::sys("pipe2"))?;
    // SAFETY: the caller guarantees a single-threaded process, so the child may do
    // anything the parent could.
    match unsafe { fork() }.map_err(Error::sys("fork the supervisor"))? {
        ForkResult::Child => {
            drop(ready_r);
            let code = match become_daemon(ready_w, log) {
                Ok(ready) => child(ready),
                Err((ready, e)) => {
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
        Some(("exists", message)) => Err(Error::FailedPrecondition(message.to_string())),
        Some((_, message)) if !message.is_empty() => {
            Err(Error::FailedPrecondition(message.to_string()))
        }
        _ => Err(Error::FailedPrecondition(
            "the supervisor exited before it was ready".into(),
        )),
    }
}

/// setsid, stdin from /dev/null, stdout+stderr into `log` or /dev/null, every other fd
/// but the report pipe closed.
fn become_daemon(ready: OwnedFd, log: Option<&Path>) -> std::result::Result<Ready, (Ready, Error)> {
    // The report pipe moves to fd 3; everything above it closes.
    // SAFETY: dup3 onto fd 3 of an fd we own; O_CLOEXEC keeps it from the containers.
    let moved = unsafe { libc::dup3(ready.as_raw_fd(), 3, libc::O_CLOEXEC) };
    let ready = if moved == 3 {
        drop(ready);
        // SAFETY: fd 3 is now ours alone.
        Ready {
            pipe: unsafe { File::from_raw_fd(3) },
        }
    } else {
        Ready {
            pipe: File::from(ready),
        }
    };
    let fail = |ready: Ready, e: Error| (ready, e);
    if let Err(e) = setsid() {
        return Err(fail(ready, Error::sys("setsid")(e)));
    }
    // The kernel truncates to 15 bytes; `ps` shows the supervisor apart from other harun runs.
    let _ = nix::sys::prctl::set_name(c"harun-supervise");
    let null = match OpenOptions::new().read(true).write(true).open("/dev/null") {
        Ok(f) => f,
        Err(e) => return Err(fail(ready, Error::io("open", "/dev/null")(e))),
    };
    let out = match log {
        Some(path) => match crate::logs::open_append(path, 0o600) {
            Ok(f) => f,
            Err(e) => return Err(fail(ready, e)),
        },
        None => match null.try_clone() {
            Ok(f) => f,
            Err(e) => return Err(fail(ready, Error::io("dup", "/dev/null")(e))),
        },
    };
    // dup2'd copies are not close-on-exec; the runtime gives containers what they need.
    for (fd, target) in [
        (0, null.as_raw_fd()),
        (1, out.as_raw_fd()),
        (2, out.as_raw_fd()),
    ] {
        // SAFETY: dup2 of an fd we own onto a standard fd.
        if unsafe { libc::dup2(target, fd) } < 0 {
            let e = nix::errno::Errno::last();
            return Err(fail(ready, Error::sys(format!("dup2 onto fd {fd}"))(e)));
        }
    }
    drop((null, out));
    close_from(ready.pipe.as_raw_fd().max(2) + 1);
    Ok(ready)
}

/// Closes every fd from `first` up.
fn close_from(first: i32) {
    // SAFETY: close_range takes plain numbers; closing fds nothing in this fresh child uses.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    // Before Linux 5.9: one by one, as /proc lists them.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd >= first)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // SAFETY: as above.
        unsafe { libc::close(fd) };
    }
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
        let e = parse_report("exists\ncontainer `x` already exists").unwrap_err();
        assert_eq!(e.to_string(), "container `x` already exists");
        for silent in ["", "ok", "garbage"] {
            let e = parse_report(silent).unwrap_err();
            assert!(e.to_string().contains("exited before"), "{silent:?}: {e}");
        }
    }
}
