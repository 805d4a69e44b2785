//! Error and warning output: one line on stderr, and with `--log FILE` a line in that file
//! (`--log-format json`: runc/logrus style, which containerd's shim reads back).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use crate::cli::{Global, LogFormat};

pub struct Logger {
    file: Option<PathBuf>,
    format: LogFormat,
    debug: bool,
}

impl Logger {
    pub fn new(g: &Global) -> Self {
        Logger {
            file: g.log.clone(),
            format: g.log_format,
            debug: g.debug,
        }
    }

    pub fn error(&self, msg: &str) {
        harun_runtime::stderr::line(&format!("harun: {msg}"));
        self.to_file("error", msg);
    }

    pub fn warn(&self, msg: &str) {
        harun_runtime::stderr::line(&format!("harun: warning: {msg}"));
        self.to_file("warning", msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            harun_runtime::stderr::line(&format!("harun: debug: {msg}"));
            self.to_file("debug", msg);
        }
    }

    fn to_file(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let time = harun_runtime::time::now_rfc3339();
        let line = match self.format {
            LogFormat::Json => {
                serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
            }
            LogFormat::Text => format!("time={time:?} level={level} msg={msg:?}"),
        };
        // The log is a side channel: failing to write it must not change the outcome.
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}
