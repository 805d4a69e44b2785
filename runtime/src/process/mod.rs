//! Making the container's init process: clone, the parent <-> init channel, the init recipe.

pub mod channel;
pub mod clone;
pub mod exec_fifo;
pub mod finish;
pub mod init;
pub mod joiner;
pub mod single_thread;

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
        Err(crate::Error::Init(format!(
            "internal error (panic): {what}"
        )))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn catch_panic_turns_a_panic_into_an_error() {
        let r: crate::Result<()> = super::catch_panic(|| panic!("boom {}", 7));
        assert_eq!(
            r.unwrap_err().to_string(),
            crate::Error::Init("internal error (panic): boom 7".into()).to_string()
        );
        assert_eq!(super::catch_panic(|| Ok(5)).unwrap(), 5);
    }
}
