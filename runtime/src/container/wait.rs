//! The foreground `run`: wait for the init (our child) through its pidfd, forward signals
//! sent to harun, and relay the pty when harun holds the console itself.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};

use crate::pidfd::PidFd;
use crate::{Error, Result};

/// How the container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Exited(i32),
    Signaled(i32),
}

impl ExitCode {
    /// The shell convention: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Exited(c) => c,
            ExitCode::Signaled(s) => 128 + s,
        }
    }
}

/// Signals harun forwards to the container instead of dying of them.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Blocks the forwarded signals (before `start`, so none is lost) and reads them from a
/// signalfd. Dropping it unblocks them.
pub struct Forwarder {
    sfd: SignalFd,
    mask: SigSet,
}

impl Forwarder {
    pub fn new() -> Result<Self> {
        let mut mask = SigSet::empty();
        for s in FORWARDED {
            mask.add(s);
        }
        mask.thread_block().map_err(Error::sys("block signals"))?;
        let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(Error::sys("signalfd"))?;
        Ok(Forwarder { sfd, mask })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.mask.thread_unblock();
    }
}

/// Puts a terminal in raw mode and restores it on drop.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> Option<Self> {
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into ws; TIOCSWINSZ reads it. Both fds are valid;
    // failure (not a tty) leaves things as they are.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Wait for the init to exit; forward signals; relay stdin/stdout to the pty `master`.
pub fn wait_foreground(
    pidfd: &PidFd,
    master: Option<OwnedFd>,
    signals: &Forwarder,
) -> Result<ExitCode> {
    let stdin = std::io::stdin();
    let _raw = master.as_ref().and_then(|m| {
        copy_winsize(stdin.as_fd(), m.as_fd());
        RawMode::enter(stdin.as_fd())
    });
    let mut master = master.map(std::fs::File::from);
    let mut stdin_open = master.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.sfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll")(e)),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        if ready.get(2) == Some(&true) {
            if let Some(m) = master.as_mut() {
                if !relay_out(m, &mut buf) {
                    master = None;
                    continue;
                }
            }
        }
        if ready.get(3) == Some(&true) {
            if let Some(m) = master.as_mut() {
                stdin_open = relay_in(m, &mut buf);
            }
        }
        if ready[1] {
            while let Ok(Some(si)) = signals.sfd.read_signal() {
                let sig = si.ssi_signo as i32;
                match (sig == libc::SIGWINCH, &master) {
                    (true, Some(m)) => copy_winsize(stdin.as_fd(), m.as_fd()),
                    (true, None) => {}
                    (false, _) => {
                        pidfd.signal(sig)?;
                    }
                }
            }
        }
        if ready[0] {
            let status = waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED)
                .map_err(|e| Error::sys(format!("wait for pid {}", pidfd.pid()))(e))?;
            if let Some(m) = master.as_mut() {
                drain(m, &mut buf);
            }
            return match status {
                WaitStatus::Exited(_, c) => Ok(ExitCode::Exited(c)),
                WaitStatus::Signaled(_, s, _) => Ok(ExitCode::Signaled(s as i32)),
                other => Err(Error::Internal(format!("unexpected wait status {other:?}"))),
            };
        }
    }
}

/// Copy what the pty has to stdout; false once the pty is closed (EIO: no slave left).
fn relay_out(master: &mut std::fs::File, buf: &mut [u8]) -> bool {
    match master.read(buf) {
        Ok(0) => false,
        Ok(n) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf[..n]).and_then(|_| out.flush());
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
        Err(_) => false,
    }
}

/// Copy stdin to the pty; on EOF send ^D once so the program sees end of input. Returns
/// whether stdin stays open.
fn relay_in(master: &mut std::fs::File, buf: &mut [u8]) -> bool {
    match std::io::stdin().lock().read(buf) {
        Ok(0) | Err(_) => {
            let _ = master.write_all(&[4]);
            false
        }
        Ok(n) => {
            let _ = master.write_all(&buf[..n]);
            true
        }
    }
}

/// After the init exited: copy the output still buffered in the pty.
fn drain(master: &mut std::fs::File, buf: &mut [u8]) {
    // SAFETY: setting O_NONBLOCK on our own fd.
    unsafe {
        let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    while relay_out(master, buf) {}
}
