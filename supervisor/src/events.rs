//! Lifecycle events of a supervised container, one JSON object per line in
//! `ROOT/.supervise/ID/events.jsonl`:
//!
//! ```text
//! {"time":"2026-11-22T10:00:00.100Z","timeMs":1795341600100,"id":"web","event":"exited","code":1,"ranForMs":12}
//! {"time":"2026-11-22T10:00:00.101Z","timeMs":1795341600101,"id":"web","event":"restarting","delayMs":100,"restartCount":1}
//! ```
//!
//! Events: `created`, `started` (with `pid`), `exited` (`code` or `signal`, `ranForMs`; an
//! adopted container's exit has neither), `restarting` (`delayMs`, `restartCount`),
//! `start-failed` (`reason`), `adopted` (a new supervisor took over, `pid`), `ready`
//! (`READY=1` on the notify socket), `health` (`health`: starting / healthy / unhealthy,
//! the check's output in `reason`), and a final event: `gave-up` or `stopped` (`reason`,
//! and the last exit's `code`/`signal`).
//!
//! The file is capped: past [`MAX_EVENTS_SIZE`] it moves to `events.jsonl.1` (replacing the
//! older one) and a new file starts, so a container crash-looping for months costs at most
//! twice that. Each event is one `write` to an O_APPEND file: readers never see half a line
//! from a live writer.

use std::fmt;
use std::fs::{self, File};
use std::io::{ErrorKind as IoKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harun_runtime::{time, Error, Result};
use serde::{Deserialize, Serialize};

use crate::format_duration;
use crate::persist::{millis, split_status, Store};
use crate::policy::ExitStatus;

pub const EVENTS_FILE: &str = "events.jsonl";
/// Size at which the events file is rotated.
pub const MAX_EVENTS_SIZE: u64 = 1024 * 1024;

/// Wall-clock milliseconds since the Unix epoch: the supervisor's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0)
}

/// `ms` (Unix milliseconds) as RFC 3339 UTC with milliseconds: `2026-11-22T10:00:00.100Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(ms % 1000).unwrap_or(0) * 1_000_000;
    let full = time::format_rfc3339(secs, nanos);
    // `...:00.100000000Z` -> `...:00.100Z`
    match full.len().checked_sub(7) {
        Some(cut) if full.is_char_boundary(cut) => format!("{}Z", &full[..cut]),
        _ => full,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Created,
    Started,
    Exited,
    Restarting,
    StartFailed,
    GaveUp,
    Stopped,
    /// A new supervisor took over the running container.
    Adopted,
    /// It said `READY=1` on its notify socket.
    Ready,
    /// Its health status changed (`health`; the check's output in `reason`).
    Health,
}

impl Kind {
    /// `gave-up` and `stopped` end a supervision.
    pub fn is_final(self) -> bool {
        matches!(self, Kind::GaveUp | Kind::Stopped)
    }
}

/// One event line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub time: String,
    pub time_ms: u64,
    pub id: String,
    pub event: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_for_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

impl Event {
    pub fn new(id: &str, event: Kind, time_ms: u64) -> Event {
        Event {
            time: rfc3339_ms(time_ms),
            time_ms,
            id: id.to_string(),
            event,
            pid: None,
            code: None,
            signal: None,
            ran_for_ms: None,
            delay_ms: None,
            restart_count: None,
            reason: None,
            health: None,
        }
    }

    pub fn pid(mut self, pid: i32) -> Event {
        self.pid = Some(pid);
        self
    }

    /// The exit code or signal of `status` (nothing if unknown).
    pub fn status(mut self, status: Option<ExitStatus>) -> Event {
        (self.code, self.signal) = split_status(status);
        self
    }

    pub fn ran_for(mut self, d: Duration) -> Event {
        self.ran_for_ms = Some(millis(d));
        self
    }

    pub fn delay(mut self, d: Duration, restart_count: u32) -> Event {
        self.delay_ms = Some(millis(d));
        self.restart_count = Some(restart_count);
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Event {
        self.reason = Some(reason.into());
        self
    }

    /// A health status: `starting`, `healthy`, `unhealthy`.
    pub fn health(mut self, status: &str) -> Event {
        self.health = Some(status.to_string());
        self
    }

    /// The JSON line, without the newline.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    fn status_text(&self) -> Option<String> {
        match (self.code, self.signal) {
            (Some(code), _) => Some(ExitStatus::Code(code).to_string()),
            (None, Some(signal)) => Some(ExitStatus::Signal(signal).to_string()),
            (None, None) => None,
        }
    }
}

/// The human line a foreground `harun run` prints: `TIME ID: what happened`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.time, self.id)?;
        let pid = self.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        let reason = self.reason.as_deref().unwrap_or("");
        match self.event {
            Kind::Created => write!(f, "created{pid}"),
            Kind::Started => write!(f, "started{pid}"),
            Kind::Exited => {
                let status = self.status_text().unwrap_or_else(|| "exited".into());
                write!(f, "{status}")?;
                match self.ran_for_ms {
                    Some(ms) => write!(f, " after {}", format_duration(Duration::from_millis(ms))),
                    None => Ok(()),
                }
            }
            Kind::Restarting => write!(
                f,
                "restarting in {} (restart {})",
                format_duration(Duration::from_millis(self.delay_ms.unwrap_or(0))),
                self.restart_count.unwrap_or(0)
            ),
            Kind::StartFailed => write!(f, "start failed: {reason}"),
            Kind::Adopted => write!(f, "adopted by a new supervisor{pid}"),
            Kind::Ready => write!(f, "ready ({reason})"),
            Kind::Health => {
                let status = self.health.as_deref().unwrap_or("?");
                match reason {
                    "" => write!(f, "{status}"),
                    output => write!(f, "{status}: {output}"),
                }
            }
            Kind::GaveUp | Kind::Stopped => {
                let word = if self.event == Kind::GaveUp {
                    "gave up"
                } else {
                    "stopped"
                };
                write!(f, "{word}: {reason}")?;
                match self.status_text() {
                    Some(status) => write!(f, " (last run {status})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The append side of a container's events file.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
}

impl EventLog {
    /// Opens (creates) `events.jsonl` in the store for appending.
    pub fn open(store: &Store) -> Result<EventLog> {
        EventLog::open_at(&store.file(EVENTS_FILE), MAX_EVENTS_SIZE)
    }

    fn open_at(path: &Path, max_size: u64) -> Result<EventLog> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(EventLog {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
        })
    }

    /// Appends one event (one write of one line); rotates first when the file is full.
    pub fn append(&mut self, event: &Event) -> Result<()> {
        let mut line = event.to_json();
        line.push('\n');
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        self.file
            .write_all(line.as_bytes())
            .map_err(Error::io("append to", &self.path))?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let old = rotated(&self.path);
        fs::rename(&self.path, &old).map_err(Error::io("rotate", &self.path))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File> {
    crate::logs::open_append(path, 0o600)
}

/// `events.jsonl.1`.
pub(crate) fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Everything recorded, oldest first (the rotated file, then the current one).
pub fn read_all(store: &Store) -> Result<Vec<u8>> {
    let path = store.file(EVENTS_FILE);
    let mut out = Vec::new();
    for p in [rotated(&path), path] {
        match fs::read(&p) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(e) if e.kind() == IoKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &p)(e)),
        }
    }
    Ok(out)
}

/// Parses event lines; lines that are not events are skipped.
pub fn parse(text: &[u8]) -> Vec<Event> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("harun-events-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn formats_times_with_milliseconds() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_316_645_123), "2026-11-22T03:04:05.123Z");
    }

    #[test]
    fn json_lines_carry_only_what_is_known() {
        let e = Event::new("web", Kind::Exited, 1_795_316_645_123)
            .status(Some(ExitStatus::Code(1)))
            .ran_for(Duration::from_millis(12));
        assert_eq!(
            e.to_json(),
            r#"{"time":"2026-11-22T03:04:05.123Z","timeMs":1795316645123,"id":"web","event":"exited","code":1,"ranForMs":12}"#
        );
        let r = Event::new("web", Kind::Restarting, 5).delay(Duration::from_millis(200), 2);
        assert!(r
            .to_json()
            .ends_with(r#""event":"restarting","delayMs":200,"restartCount":2}"#));
        let k = Event::new("w", Kind::StartFailed, 5).reason("boom");
        assert!(k
            .to_json()
            .ends_with(r#""event":"start-failed","reason":"boom"}"#));
        assert_eq!(parse(format!("{}\n", e.to_json()).as_bytes()), vec![e]);
    }

    #[test]
    fn human_lines() {
        let t = 1_795_316_645_123;
        let cases = [
            (
                Event::new("w", Kind::Started, t).pid(42),
                "started (pid 42)",
            ),
            (
                Event::new("w", Kind::Exited, t)
                    .status(Some(ExitStatus::Signal(9)))
                    .ran_for(Duration::from_millis(1500)),
                "killed by signal 9 after 1s500ms",
            ),
            (
                Event::new("w", Kind::Exited, t)
                    .status(Some(ExitStatus::Code(3)))
                    .ran_for(Duration::ZERO),
                "exited with code 3 after 0s",
            ),
            (
                Event::new("w", Kind::Restarting, t).delay(Duration::from_millis(400), 3),
                "restarting in 400ms (restart 3)",
            ),
            (
                Event::new("w", Kind::GaveUp, t)
                    .reason("crash loop: 3 exits within 10s")
                    .status(Some(ExitStatus::Code(1))),
                "gave up: crash loop: 3 exits within 10s (last run exited with code 1)",
            ),
            (
                Event::new("w", Kind::Stopped, t).reason("stopped by the user"),
                "stopped: stopped by the user",
            ),
        ];
        for (event, want) in cases {
            assert_eq!(
                event.to_string(),
                format!("2026-11-22T03:04:05.123Z w: {want}")
            );
        }
    }

    #[test]
    fn the_log_rotates_and_reads_back_in_order() {
        let dir = tmp("rotate");
        let path = dir.join(EVENTS_FILE);
        let mut log = EventLog::open_at(&path, 300).unwrap();
        let events: Vec<Event> = (0..10)
            .map(|i| Event::new("c", Kind::Started, i).pid(i as i32))
            .collect();
        for e in &events {
            log.append(e).unwrap();
        }
        let current = fs::read(&path).unwrap();
        let older = fs::read(rotated(&path)).unwrap();
        assert!(current.len() <= 300 && older.len() <= 300);
        let mut both = older.clone();
        both.extend_from_slice(&current);
        let back = parse(&both);
        // The newest events are all there, in order, ending with the last one.
        assert!(back.len() >= 3, "{back:?}");
        assert_eq!(back.last(), events.last());
        assert!(back.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
        // A reopened log appends after what is there.
        drop(log);
        let mut log = EventLog::open_at(&path, 300).unwrap();
        log.append(&Event::new("c", Kind::Stopped, 99)).unwrap();
        let text = fs::read(&path).unwrap();
        assert_eq!(parse(&text).last().map(|e| e.event), Some(Kind::Stopped));
        fs::remove_dir_all(&dir).unwrap();
    }
}
