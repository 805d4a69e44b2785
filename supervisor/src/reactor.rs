//! The supervisor's single wait: one epoll set over one signalfd, one timerfd and whatever
//! fds the engine adds (container pidfds, output FIFOs, notify and control sockets, health
//! check pipes), each under a token the engine picks. No thread, no timeout, no polling:
//! between events the process sleeps in `epoll_wait` and uses no CPU.
//!
//! The timerfd is armed at an absolute time of the monotonic clock: the earliest deadline of
//! the engine's [`crate::timers::Timers`].

use std::os::fd::{AsFd, BorrowedFd};

use harun_runtime::{Error, Result};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::time::{clock_gettime, ClockId as Clock};

/// Token of the signalfd.
pub const SIGNALS: u64 = 0;
/// Token of the timerfd.
pub const TIMER: u64 = 1;
/// The first token free for the engine.
pub const FIRST_FREE: u64 = 2;

/// Milliseconds of the monotonic clock (the timers' clock).
pub fn mono_ms() -> u64 {
    clock_gettime(Clock::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

/// The epoll set, the signalfd and the timerfd. Blocks the given signals while it lives (so
/// they arrive through the signalfd) and restores the old mask on drop.
#[derive(Debug)]
pub struct Reactor {
    epoll: Epoll,
    signals: SignalFd,
    timer: TimerFd,
    armed: Option<u64>,
    old_mask: SigSet,
}

impl Reactor {
    /// Blocks `signals`, then makes the signalfd, the timerfd (monotonic clock) and the
    /// epoll set, all close-on-exec.
    pub fn new(signals: &[Signal]) -> Result<Reactor> {
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
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
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
        let r = Reactor {
            epoll,
            signals,
            timer,
            armed: None,
            old_mask,
        };
        r.add(r.signals.as_fd(), SIGNALS, "signalfd")?;
        r.add(r.timer.as_fd(), TIMER, "timerfd")?;
        Ok(r)
    }

    /// Wakes with `token` when `fd` is readable (or hung up).
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64, what: &str) -> Result<()> {
        self.epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(Error::sys(format!("epoll_ctl add {what}")))
    }

    /// Wakes with `token` when `fd` is readable, and also when writable if `write`.
    pub fn modify(&self, fd: BorrowedFd<'_>, token: u64, write: bool) -> Result<()> {
        let mut flags = EpollFlags::EPOLLIN;
        if write {
            flags |= EpollFlags::EPOLLOUT;
        }
        let mut ev = EpollEvent::new(flags, token);
        self.epoll
            .modify(fd, &mut ev)
            .map_err(Error::sys("epoll_ctl mod"))
    }

    /// Stops watching `fd` (closing it does too; an fd not in the set is fine).
    pub fn remove(&self, fd: BorrowedFd<'_>) {
        let _ = self.epoll.delete(fd);
    }

    /// Arms the timer for `deadline` (monotonic ms; `None` disarms). Does nothing when it is
    /// armed for that time already.
    pub fn arm_at(&mut self, deadline: Option<u64>) -> Result<()> {
        if deadline == self.armed {
            return Ok(());
        }
        match deadline {
            None => self.timer.unset().map_err(Error::sys("timerfd_settime"))?,
            Some(ms) => {
                // Zero would disarm: the clock's first nanosecond is long past anyway.
                let ts = TimeSpec::new((ms / 1000) as i64, ((ms % 1000) * 1_000_000).max(1) as i64);
                self.timer
                    .set(
                        Expiration::OneShot(ts),
                        TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                    )
                    .map_err(Error::sys("timerfd_settime"))?;
            }
        }
        self.armed = deadline;
        Ok(())
    }

    /// Blocks until something is ready; returns the tokens (signals first, then the timer,
    /// then the rest in the kernel's order).
    pub fn wait(&self, events: &mut [EpollEvent]) -> Result<Vec<(u64, bool)>> {
        let n = loop {
            match self.epoll.wait(events, EpollTimeout::NONE) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("epoll_wait")(e)),
            }
        };
        // A stable partition by token, up to FIRST_FREE (no sort: its code is large).
        let mut ready: Vec<(u64, bool)> = Vec::with_capacity(n);
        for pass in 0..=FIRST_FREE {
            ready.extend(
                events[..n]
                    .iter()
                    .filter(|e| e.data().min(FIRST_FREE) == pass)
                    .map(|e| (e.data(), e.events().contains(EpollFlags::EPOLLOUT))),
            );
        }
        Ok(ready)
    }

    /// The signals received since the last call, in arrival order.
    pub fn take_signals(&self) -> Vec<i32> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.signals.read_signal() {
            out.push(info.ssi_signo as i32);
        }
        out
    }

    /// Consumes the timer's expiry; the engine then looks at its deadlines.
    pub fn take_timer(&mut self) {
        let mut ticks = [0u8; 8];
        if matches!(nix::unistd::read(&self.timer, &mut ticks), Ok(8)) {
            self.armed = None;
        }
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        let _ = self.old_mask.thread_set_mask();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    // Signals are per process; these tests only use the timer, which needs no signal.

    #[test]
    fn the_timer_fires_at_its_deadline() {
        let mut r = Reactor::new(&[]).unwrap();
        let mut events = [EpollEvent::empty(); 4];
        let t0 = Instant::now();
        r.arm_at(Some(mono_ms() + 30)).unwrap();
        assert_eq!(r.wait(&mut events).unwrap(), vec![(TIMER, false)]);
        assert!(t0.elapsed() >= Duration::from_millis(25));
        r.take_timer();
        // A deadline in the past fires at once; disarming cancels.
        r.arm_at(Some(mono_ms().saturating_sub(5))).unwrap();
        assert_eq!(r.wait(&mut events).unwrap(), vec![(TIMER, false)]);
        r.take_timer();
        r.arm_at(Some(mono_ms() + 1)).unwrap();
        r.arm_at(None).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let fds = [nix::poll::PollFd::new(
            r.timer.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let mut fds = fds;
        assert_eq!(
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap(),
            0
        );
    }
}
