//! Process file descriptors: a handle on one exact process, immune to pid reuse.
//!
//! Signals go through pidfd_send_signal; "has it exited" is a poll on the pidfd. The one
//! place harun calls pidfd_open and pidfd_send_signal.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::procfs;
use crate::{Error, Result};

#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pid: i32,
}

impl PidFd {
    /// Wrap a pidfd we got from clone3(CLONE_PIDFD).
    pub fn from_owned(fd: OwnedFd, pid: i32) -> Self {
        PidFd { fd, pid }
    }

    /// pidfd_open: a pidfd for `pid`, whatever process that is now. Sound for a child of
    /// ours not yet waited for (its pid cannot be reused); for any other process see
    /// [`PidFd::open_checked`]. ESRCH when there is no such process.
    pub fn open(pid: i32) -> Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no pointers.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = Errno::result(fd).map_err(Error::sys(format!("pidfd_open {pid}")))?;
        // SAFETY: the syscall returned a fresh fd (close-on-exec) that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(PidFd { fd, pid })
    }

    /// Open a pidfd for `pid` and check it is the process that started at `start_time`
    /// (checked after opening, so the pidfd pins the right process). None when that process
    /// is gone (or is a zombie: it has stopped).
    pub fn open_checked(pid: i32, start_time: u64) -> Result<Option<Self>> {
        let pidfd = match PidFd::open(pid) {
            Err(e) if e.errno() == Some(Errno::ESRCH) => return Ok(None),
            other => other?,
        };
        Ok(procfs::is_alive(pid, start_time).then_some(pidfd))
    }

    /// Another pidfd of the same process (dup).
    pub fn try_clone(&self) -> Result<Self> {
        let fd = self.fd.try_clone().map_err(Error::io("dup", "pidfd"))?;
        Ok(PidFd { fd, pid: self.pid })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The fd itself, e.g. to pass to another process (SCM_RIGHTS).
    pub fn into_owned(self) -> OwnedFd {
        self.fd
    }

    /// Send `sig` (0: only check it is alive). ESRCH (exited meanwhile) is Ok(false).
    pub fn signal(&self, sig: i32) -> Result<bool> {
        // SAFETY: valid pidfd, null siginfo (the kernel fills in a default), no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        match Errno::result(r) {
            Ok(_) => Ok(true),
            Err(Errno::ESRCH) => Ok(false),
            Err(e) => Err(Error::sys(format!("signal {sig} to pid {}", self.pid))(e)),
        }
    }

    /// Wait until the process exits (becomes a zombie or is reaped), at most `timeout`.
    /// Returns true when it has exited.
    pub fn wait_exit(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, ms) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys(format!("poll pidfd of {}", self.pid))(e)),
            }
        }
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
