//! The single-thread invariant, checked.
//!
//! fork and clone copy only the calling thread: a lock another thread holds at that moment
//! (malloc's, stdio's, the environment's) stays locked for ever in the child, which runs
//! harun code (the init's recipe, the exec joiner) until it execs. setenv and unsetenv race
//! every other thread's getenv (why `std::env::set_var` is unsafe). So every library entry
//! that clones, forks or changes the environment calls [`ensure`] first and fails with
//! [`Error::MultiThreaded`] ([`ErrorKind::MultiThreaded`](crate::ErrorKind)) before any
//! side effect: `container::create`, `container::exec`, `container::start` when the
//! container has startContainer hooks (it runs them like an exec), and
//! `exe_guard::ensure_readonly_exe`. The functions that clone are `unsafe` and say so
//! (process/clone.rs).
//!
//! The harun CLI and its supervisor never start a thread. A threaded caller (the containerd
//! shim) calls those entries from a single-threaded helper process.
//!
//! The count is the link count of /proc/self/task: 2 + the number of threads (procfs's
//! `proc_task_getattr`). One statx, ~0.5 µs, where reading `Threads:` of /proc/self/status
//! costs ~5 µs.
//!
//! A guard against misuse, not a lock: a thread the caller starts after the check is not
//! seen. A thread that has just been joined is still counted for a moment (the kernel
//! releases it after `join` returns, measured up to ~1 ms under load), so a count above one
//! is read again for up to [`SETTLE`] before it is an error.

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How long a count above one may take to fall to one (threads that have exited, not yet
/// released by the kernel) before it is an error.
pub const SETTLE: Duration = Duration::from_millis(20);

const TASK_DIR: &str = "/proc/self/task";

/// The number of threads of this process.
pub fn count() -> Result<u64> {
    let st = nix::sys::stat::stat(TASK_DIR)
        .map_err(Error::sys(format!("stat `{TASK_DIR}` (counting threads)")))?;
    #[allow(clippy::unnecessary_cast)] // nlink_t is u32 on some targets
    Ok((st.st_nlink as u64).saturating_sub(2))
}

/// Ok when this process has one thread; else [`Error::MultiThreaded`] naming `op`.
pub fn ensure(op: &'static str) -> Result<()> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let threads = count()?;
        if threads <= 1 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::MultiThreaded { op, threads });
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::sync::mpsc;

    /// The test harness runs each test on a thread of its own: with one more of ours, this
    /// process has three threads at least. (tests/library.rs checks a single-threaded
    /// process and a call from a second thread.)
    #[test]
    fn counts_threads_and_refuses_more_than_one() {
        let (tx, rx) = mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        assert!(count().unwrap() >= 3, "{}", count().unwrap());
        let e = ensure("create").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MultiThreaded);
        let text = e.to_string();
        assert!(
            text.starts_with("create: needs a single-threaded process, this one has "),
            "{text}"
        );
        drop(tx);
        let _ = t.join();
    }
}
