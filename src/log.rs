//! Error, warning and `--debug` output: one line on stderr, and with `--log FILE` a line in
//! that file (`--log-format json`: runc/logrus style, which containerd's shim reads back;
//! an error's line also has its `kind` and, for a system error, its `errno`, as logrus
//! fields: `{"level":"error","msg":"...","time":"...","kind":"system","errno":"ENOENT"}`).
//!
//! The log file is opened once, at start (a path that cannot be opened is an error, as in
//! runc), and kept open: the container init, a clone of harun, writes its `--debug` lines
//! through the same fd after it has left the host's mount namespace. `--debug` lines on
//! stderr go through a copy of fd 2 for the same reason: the init hands fd 2 to the
//! container. Both fds are CLOEXEC; the init stops tracing before it closes them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;
use std::time::Instant;

use harun_runtime::warning::{Level, Warning};
use harun_runtime::{Error, Result};

use crate::cli::{Global, LogFormat};

pub struct Logger {
    file: Option<File>,
    format: LogFormat,
    debug: bool,
    /// A copy of stderr for `--debug` lines (none when stderr is closed).
    debug_err: Option<File>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

impl Logger {
    /// The logger of this process: opens `--log`; with `--debug` also turns on the
    /// runtime's step trace. Call once.
    pub fn install(g: &Global, start: Instant) -> Result<&'static Logger> {
        let file = match &g.log {
            Some(path) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Error::io("open", path)(e).context("--log"))?,
            ),
            None => None,
        };
        let debug_err = match g.debug {
            true => dup_stderr(),
            false => None,
        };
        let logger = LOGGER.get_or_init(|| Logger {
            file,
            format: g.log_format,
            debug: g.debug,
            debug_err,
        });
        if g.debug {
            harun_runtime::trace::enable(debug_line, start);
        }
        Ok(logger)
    }

    pub fn error(&self, e: &Error) {
        let msg = e.to_string();
        harun_runtime::stderr::line(&format!("harun: {msg}"));
        self.to_file("error", &msg, Some(e));
    }

    /// The library's warnings, each as [`Logger::warn`]; those of [`Level::Debug`] are
    /// `--debug` lines (with their time, as the runtime's steps).
    pub fn warnings(&self, warnings: &[Warning]) {
        for w in warnings {
            match w.level() {
                Level::Warning => self.warn(&w.to_string()),
                Level::Debug => harun_runtime::trace!("{w}"),
            }
        }
    }

    pub fn warn(&self, msg: &str) {
        harun_runtime::stderr::line(&format!("harun: warning: {msg}"));
        self.to_file("warning", msg, None);
    }

    pub fn debug(&self, msg: &str) {
        if !self.debug {
            return;
        }
        if let Some(mut err) = self.debug_err.as_ref() {
            let _ = err.write_all(format!("harun: debug: {msg}\n").as_bytes());
        }
        self.to_file("debug", msg, None);
    }

    fn to_file(&self, level: &str, msg: &str, error: Option<&Error>) {
        let Some(mut f) = self.file.as_ref() else {
            return;
        };
        let time = harun_runtime::time::now_rfc3339();
        let mut line = match self.format {
            LogFormat::Json => {
                let mut entry = serde_json::json!({"level": level, "msg": msg, "time": time});
                if let Some(e) = error {
                    entry["kind"] = e.kind().name().into();
                    if let Some(errno) = e.errno() {
                        entry["errno"] = format!("{errno:?}").into();
                    }
                }
                entry.to_string()
            }
            // Fields after msg could be read as part of it by tools that match `msg=".*"`.
            LogFormat::Text => format!("time={time:?} level={level} msg={msg:?}"),
        };
        line.push('\n');
        // The log is a side channel: failing to write it must not change the outcome. One
        // write per line: O_APPEND keeps lines of harun and its init whole.
        let _ = f.write_all(line.as_bytes());
    }
}

/// The runtime's trace sink.
fn debug_line(msg: &str) {
    if let Some(l) = LOGGER.get() {
        l.debug(msg);
    }
}

/// fd 2, duplicated (CLOEXEC, above the stdio fds); `None` if it is not open.
fn dup_stderr() -> Option<File> {
    let fd: OwnedFd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    Some(File::from(fd))
}
