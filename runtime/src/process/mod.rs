//! Making the container's init process: clone, the parent <-> init channel, the init recipe.

pub mod channel;
pub mod clone;
pub mod exec_fifo;
pub mod finish;
pub mod init;
pub mod joiner;
pub mod single_thread;

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;

/// How a container process ended, in words, for [`crate::Error::Ended`]: `None` when its
/// status does not tell (killed by SIGKILL, ours or the kernel's, without an OOM kill in
/// the cgroup).
pub(crate) fn ended_how(status: WaitStatus, oom_killed: bool) -> Option<String> {
    Some(match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, Signal::SIGKILL, _) if oom_killed => {
            "was killed by the kernel's OOM killer (linux.resources.memory.limit is too low \
             for the container to start)"
                .to_string()
        }
        WaitStatus::Signaled(_, Signal::SIGKILL, _) => return None,
        WaitStatus::Signaled(_, sig, _) => format!("was killed by {sig}"),
        _ => return None,
    })
}

/// Run the body of a forked child (the init, the joiner and its child). A panic there (debug
/// builds unwind; release builds abort) becomes an error for the child to report and `_exit`
/// on, instead of unwinding into the frames of harun it was forked from.
pub(crate) fn catch_panic<T>(body: impl FnOnce() -> crate::Result<T>) -> crate::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        Err(crate::Error::Internal(format!("panic: {what}")))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn catch_panic_turns_a_panic_into_an_error() {
        let r: crate::Result<()> = super::catch_panic(|| panic!("boom {}", 7));
        let e = r.unwrap_err();
        assert_eq!(e.to_string(), "internal error: panic: boom 7");
        assert_eq!(e.kind(), crate::ErrorKind::Internal);
        assert_eq!(super::catch_panic(|| Ok(5)).unwrap(), 5);
    }
}
