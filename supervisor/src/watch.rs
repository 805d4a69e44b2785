//! The supervisor's single wait: one epoll set over a signalfd, a timerfd, the container
//! init's pidfd and (detached) the container's output pipe. No thread, no timeout, no
//! polling loop: between events the process sleeps in `epoll_wait` and uses no CPU.
//!
//! The init is the supervisor's child (it cloned it), so its exit status comes from
//! `waitid(P_PIDFD)` once the pidfd turns readable. The supervisor is also a child
//! subreaper: processes orphaned inside a container without a pid namespace of its own end
//! up as its children, and [`reap`] collects them on SIGCHLD.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use harun_runtime::pidfd::PidFd;
use harun_runtime::{Error, Result};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};

use crate::policy::ExitStatus;

/// What woke the supervisor up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Signals are waiting: [`Watch::take_signals`].
    Signals,
    /// The timer expired: [`Watch::take_timer`].
    Timer,
    /// The watched init exited: [`reap`].
    Exit,
    /// The output pipe has data (or hung up).
    Output,
}

const SIGNALS: u64 = 1;
const TIMER: u64 = 2;
const EXIT: u64 = 3;
const OUTPUT: u64 = 4;

/// The epoll set and the fds it always holds. Blocks the given signals while it lives (so
/// they arrive through the signalfd) and restores the old mask on drop.
#[derive(Debug)]
pub struct Watch {
    epoll: Epoll,
    signals: SignalFd,
    timer: TimerFd,
    old_mask: SigSet,
}

impl Watch {
    /// Blocks `signals`, then makes the signalfd, the timerfd (monotonic clock) and the
    /// epoll set, all close-on-exec.
    pub fn new(signals: &[Signal]) -> Result<Watch> {
        let mut mask = SigSet::empty();
        for &s in signals {
            mask.add(s);
        }
        let old_mask = mask
            .thread_swap_mask(SigmaskHow::SIG_BLOCK)
            .map_err(Error::sys("block signals"))?;
        let restore = |e: Error| {
            let _ = old_mask.thread_set_mask();
            e
        };
        let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(Error::sys("signalfd"))
            .map_err(restore)?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
        )
        .map_err(Error::sys("timerfd_create"))
        .map_err(restore)?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(Error::sys("epoll_create1"))
            .map_err(restore)?;
        let watch = Watch {
            epoll,
            signals: sfd,
            timer,
            old_mask,
        };
        watch.add(watch.signals.as_fd(), SIGNALS, "signalfd")?;
        watch.add(watch.timer.as_fd(), TIMER, "timerfd")?;
        Ok(watch)
    }

    fn add(&self, fd: BorrowedFd<'_>, token: u64, what: &str) -> Result<()> {
        self.epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(Error::sys(format!("epoll_ctl add {what}")))
    }

    /// Wakes on the exit of the process behind `pidfd`.
    pub fn watch_exit(&self, pidfd: &PidFd) -> Result<()> {
        self.add(pidfd.as_fd(), EXIT, "pidfd")
    }

    /// Wakes when `fd` (a pipe's read end) has data.
    pub fn watch_output(&self, fd: BorrowedFd<'_>) -> Result<()> {
        self.add(fd, OUTPUT, "output pipe")
    }

    /// Stops watching `fd` (a reaped pidfd stays readable; a hung-up pipe stays ready).
    pub fn unwatch(&self, fd: BorrowedFd<'_>) {
        // Closing the fd removes it too; an fd not in the set is fine.
        let _ = self.epoll.delete(fd);
    }

    /// Arms the timer to fire once, `after` from now (replacing any earlier arming).
    pub fn arm(&self, after: Duration) -> Result<()> {
        // A zero it_value would disarm the timer: fire after 1 ns instead.
        let after = after.max(Duration::from_nanos(1));
        self.timer
            .set(
                Expiration::OneShot(TimeSpec::from_duration(after)),
                TimerSetTimeFlags::empty(),
            )
            .map_err(Error::sys("timerfd_settime"))
    }

    pub fn disarm(&self) -> Result<()> {
        self.timer.unset().map_err(Error::sys("timerfd_settime"))
    }

    /// Blocks until something is ready; returns what, in a fixed order (signals first, so a
    /// stop request is seen before an exit that arrived at the same time).
    pub fn wait(&self) -> Result<Vec<Wake>> {
        let mut events = [EpollEvent::empty(); 4];
        let n = loop {
            match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("epoll_wait")(e)),
            }
        };
        let mut wakes: Vec<Wake> = events[..n]
            .iter()
            .filter_map(|e| match e.data() {
                SIGNALS => Some(Wake::Signals),
                TIMER => Some(Wake::Timer),
                EXIT => Some(Wake::Exit),
                OUTPUT => Some(Wake::Output),
                _ => None,
            })
            .collect();
        wakes.sort_by_key(|w| *w as u8);
        Ok(wakes)
    }

    /// The signals received since the last call, in arrival order.
    pub fn take_signals(&self) -> Vec<i32> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.signals.read_signal() {
            out.push(info.ssi_signo as i32);
        }
        out
    }

    /// True when the timer expired since it was last armed (and consumes the expiry).
    pub fn take_timer(&self) -> bool {
        let mut ticks = [0u8; 8];
        matches!(nix::unistd::read(&self.timer, &mut ticks), Ok(8))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.old_mask.thread_set_mask();
    }
}

/// Collects every exited child without blocking: the init through its pidfd, then any
/// other child (orphans handed to us as subreaper). Returns the init's status if it ended
/// (its pid cannot be reused while it is an unreaped child of ours, so a pid match from
/// `waitpid(-1)` is exact).
pub fn reap(init: Option<&PidFd>) -> Result<Option<ExitStatus>> {
    let mut status = None;
    if let Some(p) = init {
        match waitid(
            Id::PIDFd(p.as_fd()),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
        ) {
            Ok(ws) => status = exit_status(ws),
            // Already collected by a `waitpid(-1)` below in an earlier call, or not ours.
            Err(Errno::ECHILD) => {}
            Err(e) => return Err(Error::sys(format!("waitid for pid {}", p.pid()))(e)),
        }
    }
    let init_pid = init.map(PidFd::pid);
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(ws) => {
                if ws.pid().map(|p| p.as_raw()) == init_pid && status.is_none() {
                    status = exit_status(ws);
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("waitpid")(e)),
        }
    }
    Ok(status)
}

fn exit_status(ws: WaitStatus) -> Option<ExitStatus> {
    match ws {
        WaitStatus::Exited(_, code) => Some(ExitStatus::Code(code)),
        WaitStatus::Signaled(_, signal, _) => Some(ExitStatus::Signal(signal as i32)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    // Signals are per process; these tests only use the timer, which needs no signal.

    #[test]
    fn the_timer_wakes_once_after_its_delay() {
        let w = Watch::new(&[]).unwrap();
        assert!(!w.take_timer(), "not armed yet");
        let t0 = Instant::now();
        w.arm(Duration::from_millis(30)).unwrap();
        assert_eq!(w.wait().unwrap(), vec![Wake::Timer]);
        assert!(t0.elapsed() >= Duration::from_millis(30));
        assert!(w.take_timer());
        assert!(!w.take_timer(), "consumed");
        // Re-arming replaces; disarming cancels.
        w.arm(Duration::from_secs(60)).unwrap();
        w.arm(Duration::ZERO).unwrap();
        assert_eq!(w.wait().unwrap(), vec![Wake::Timer]);
        assert!(w.take_timer());
        w.arm(Duration::from_millis(1)).unwrap();
        w.disarm().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(!w.take_timer());
    }
}
