//! Where a container's supervision lives on disk, and its record (`supervision.json`).
//!
//! Layout: `ROOT/.supervise/ID/` beside the container's OCI state dir `ROOT/ID`:
//!
//! ```text
//! supervision.json   the Record: settings, counters, last exit, phase, supervisor pid
//! events.jsonl       lifecycle events (events.rs), events.jsonl.1 the rotated older half
//! container.log      a detached container's stdout+stderr (logs.rs), .1 .. .N-1 older
//! stop-request       written by `harun stop` just before it signals the supervisor
//! ```
//!
//! Not inside `ROOT/ID`: a restart is delete + create of the container, which removes and
//! remakes `ROOT/ID`, and a restart whose create fails leaves no `ROOT/ID` at all; the
//! supervision (and its logs) must outlive both. `harun delete ID` removes both dirs.
//! `.supervise` is never taken for a container: `list` skips dirs without a state.json,
//! and no container can be created under that ID while the dir exists.
//!
//! The record is written like state.json: fresh temp file, fsync, rename; readers take no
//! lock and see the old or the new record, never half of one.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harun_runtime::state::{replace_file, validate_id, Durability, StateRoot};
use harun_runtime::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::logs::LogConfig;
use crate::policy::{
    Backoff, ExitStatus, GiveUpReason, LastExit, Settings, Supervision, Timestamp,
};
use crate::{format_duration, parse_duration};

/// The directory under the state root holding one dir per supervised container.
pub const SUPERVISE_DIR: &str = ".supervise";
pub const RECORD_FILE: &str = "supervision.json";
pub const STOP_REQUEST_FILE: &str = "stop-request";
/// `ROOT/.supervise/.daemon`: the state of `harun supervise` (its lock, its control socket,
/// its log); never a container's.
pub const DAEMON_DIR: &str = ".daemon";

/// One container's supervision dir, `ROOT/.supervise/ID`.
#[derive(Debug, Clone)]
pub struct Store {
    id: String,
    dir: PathBuf,
}

impl Store {
    /// `ROOT/.supervise/ID` (not checked for existence).
    pub fn at(root: &StateRoot, id: &str) -> Result<Store> {
        validate_id(id)?;
        if id == DAEMON_DIR {
            return Err(Error::InvalidArgument(format!(
                "container ID `{id}` is reserved for harun's supervisor"
            )));
        }
        Ok(Store {
            id: id.to_string(),
            dir: root.path().join(SUPERVISE_DIR).join(id),
        })
    }

    /// Makes the dir for a new supervision; `AlreadyExists` when `id` is supervised already
    /// (or a record was left behind: `harun delete ID` removes it).
    pub fn reserve(root: &StateRoot, id: &str) -> Result<Store> {
        let store = Store::at(root, id)?;
        let parent = root.path().join(SUPERVISE_DIR);
        // `remove` of another container may rmdir the (then empty) parent between our two
        // mkdirs: try again a few times.
        let mut tries = 0;
        loop {
            DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(&parent)
                .map_err(Error::io("create supervision dir", &parent))?;
            match DirBuilder::new().mode(0o700).create(&store.dir) {
                Ok(()) => return Ok(store),
                Err(e) if e.kind() == IoKind::AlreadyExists => {
                    return Err(Error::AlreadyExists(id.to_string()))
                }
                Err(e) if e.kind() == IoKind::NotFound && tries < 5 => tries += 1,
                Err(e) => return Err(Error::io("create supervision dir", &store.dir)(e)),
            }
        }
    }

    /// The supervision dir of `id` if it has one.
    pub fn open(root: &StateRoot, id: &str) -> Result<Option<Store>> {
        let store = Store::at(root, id)?;
        Ok(store.dir.is_dir().then_some(store))
    }

    /// IDs of every supervised container, sorted.
    pub fn ids(root: &StateRoot) -> Vec<String> {
        let Ok(entries) = fs::read_dir(root.path().join(SUPERVISE_DIR)) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok() && id != DAEMON_DIR)
            .collect();
        harun_runtime::sort::sort(&mut ids);
        ids
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file in the dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Removes the dir and everything in it, and `ROOT/.supervise` once it is empty.
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == IoKind::NotFound => {}
            Err(e) => return Err(Error::io("remove supervision dir", &self.dir)(e)),
        }
        if let Some(parent) = self.dir.parent() {
            // Fails while other containers are supervised: that is the point.
            let _ = fs::remove_dir(parent);
        }
        Ok(())
    }

    /// Writes the record: temp file, fsync, rename.
    pub fn write_record(&self, record: &Record) -> Result<()> {
        let data = serde_json::to_vec_pretty(record)
            .map_err(|e| Error::spec("supervision record", e.to_string()))?;
        write_atomic(&self.dir, RECORD_FILE, &data)
    }

    /// The record; `None` before the first write (or after `remove`).
    pub fn read_record(&self) -> Result<Option<Record>> {
        let path = self.file(RECORD_FILE);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path)(e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| Error::spec(path.display().to_string(), e.to_string()))
    }

    /// `harun stop`'s request, read by the supervisor when the stop signal arrives.
    pub fn write_stop_request(&self, timeout: Option<Duration>) -> Result<()> {
        let request = StopRequest {
            timeout_ms: timeout.map(millis),
        };
        let data =
            serde_json::to_vec(&request).map_err(|e| Error::spec("stop request", e.to_string()))?;
        write_atomic(&self.dir, STOP_REQUEST_FILE, &data)
    }

    /// Reads and removes the stop request: `Some(timeout)` if there was one (a stop by
    /// signal alone, Ctrl-C or a plain `kill`, has none).
    pub fn take_stop_request(&self) -> Option<Option<Duration>> {
        let path = self.file(STOP_REQUEST_FILE);
        let text = fs::read(&path).ok()?;
        let _ = fs::remove_file(&path);
        let request: StopRequest = serde_json::from_slice(&text).ok()?;
        Some(request.timeout_ms.map(Duration::from_millis))
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopRequest {
    timeout_ms: Option<u64>,
}

/// `dir/name` replaced atomically and durably by `data`.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    replace_file(&dir.join(name), data, Durability::Fsync)
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How the container is supervised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// By a foreground `harun run`, which deletes everything when it ends.
    Foreground,
    /// By a detached supervisor process; the container stays (stopped) when it ends.
    Detached,
    /// By `harun supervise`, as a replica of a service.
    Service,
}

/// Where the supervision is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Not started yet: it waits for the services it starts after.
    Waiting,
    /// The container's process runs.
    Running,
    /// It was asked to stop (SIGTERM sent, SIGKILL after the grace time).
    Stopping,
    /// It exited and a restart is due at `next_restart_at_ms`.
    Restarting,
    /// Supervision ended: stopped by the user, by its policy or after a success.
    Stopped,
    /// Supervision ended: the engine gave up restarting.
    GaveUp,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Restarting => "restarting",
            Phase::Stopped => "stopped",
            Phase::GaveUp => "gave-up",
        }
    }

    /// Supervision is over: nobody will start the container again.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Stopped | Phase::GaveUp)
    }
}

/// A process by pid and start time (so a reused pid is never taken for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcRef {
    pub pid: i32,
    pub start_time: u64,
}

/// Settings as people read and write them: `on-failure:3`, `100ms`, `5/30s`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsRecord {
    pub policy: String,
    pub restart_delay: String,
    pub restart_max_delay: String,
    pub restart_reset_after: String,
    pub restart_backoff_factor: u32,
    pub restart_limit: Option<String>,
    pub stop_timeout: String,
}

impl From<&Settings> for SettingsRecord {
    fn from(s: &Settings) -> Self {
        SettingsRecord {
            policy: s.policy.to_string(),
            restart_delay: format_duration(s.backoff.initial),
            restart_max_delay: format_duration(s.backoff.max),
            restart_reset_after: format_duration(s.backoff.reset_after),
            restart_backoff_factor: s.backoff.factor,
            restart_limit: s.crash_loop.map(|l| l.to_string()),
            stop_timeout: format_duration(s.stop_timeout),
        }
    }
}

impl SettingsRecord {
    pub fn settings(&self) -> crate::Result<Settings> {
        let settings = Settings {
            policy: self.policy.parse()?,
            backoff: Backoff {
                initial: parse_duration(&self.restart_delay)?,
                factor: self.restart_backoff_factor,
                max: parse_duration(&self.restart_max_delay)?,
                reset_after: parse_duration(&self.restart_reset_after)?,
            },
            crash_loop: self.restart_limit.as_deref().map(str::parse).transpose()?,
            stop_timeout: parse_duration(&self.stop_timeout)?,
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// How a run ended, when, and how long it lasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal number, if a signal killed it. Both `None`: unknown (a failed start).
    pub signal: Option<i32>,
    pub at_ms: u64,
    pub ran_for_ms: u64,
}

impl ExitRecord {
    pub fn status(&self) -> Option<ExitStatus> {
        match (self.code, self.signal) {
            (Some(code), _) => Some(ExitStatus::Code(code)),
            (None, Some(signal)) => Some(ExitStatus::Signal(signal)),
            (None, None) => None,
        }
    }
}

impl From<&LastExit> for ExitRecord {
    fn from(e: &LastExit) -> Self {
        let (code, signal) = split_status(e.status);
        ExitRecord {
            code,
            signal,
            at_ms: e.at.as_millis(),
            ran_for_ms: millis(e.ran_for),
        }
    }
}

/// (code, signal) of a status.
pub(crate) fn split_status(status: Option<ExitStatus>) -> (Option<i32>, Option<i32>) {
    match status {
        Some(ExitStatus::Code(c)) => (Some(c), None),
        Some(ExitStatus::Signal(s)) => (None, Some(s)),
        None => (None, None),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", try_from = "WireGiveUp")]
pub enum GiveUpRecord {
    #[serde(rename_all = "camelCase")]
    CrashLoop { exits: u32, window_ms: u64 },
    #[serde(rename_all = "camelCase")]
    MaxRetries { retries: u32 },
}

/// A [`GiveUpRecord`] as it is read (see ctl::WireRequest for why not serde's own reading
/// of an internally tagged enum, and how its texts are kept).
#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "internally tagged enum GiveUpRecord"
)]
struct WireGiveUp {
    kind: GiveUpKind,
    exits: Option<u32>,
    window_ms: Option<u64>,
    retries: Option<u32>,
}

#[derive(Deserialize)]
#[serde(variant_identifier, rename_all = "kebab-case")]
enum GiveUpKind {
    CrashLoop,
    MaxRetries,
}

impl TryFrom<WireGiveUp> for GiveUpRecord {
    type Error = &'static str;

    fn try_from(w: WireGiveUp) -> std::result::Result<GiveUpRecord, &'static str> {
        Ok(match w.kind {
            GiveUpKind::CrashLoop => GiveUpRecord::CrashLoop {
                exits: w.exits.ok_or("missing field `exits`")?,
                window_ms: w.window_ms.ok_or("missing field `windowMs`")?,
            },
            GiveUpKind::MaxRetries => GiveUpRecord::MaxRetries {
                retries: w.retries.ok_or("missing field `retries`")?,
            },
        })
    }
}

impl From<GiveUpReason> for GiveUpRecord {
    fn from(r: GiveUpReason) -> Self {
        match r {
            GiveUpReason::CrashLoop { exits, window } => GiveUpRecord::CrashLoop {
                exits,
                window_ms: millis(window),
            },
            GiveUpReason::MaxRetries { retries } => GiveUpRecord::MaxRetries { retries },
        }
    }
}

impl From<GiveUpRecord> for GiveUpReason {
    fn from(r: GiveUpRecord) -> Self {
        match r {
            GiveUpRecord::CrashLoop { exits, window_ms } => GiveUpReason::CrashLoop {
                exits,
                window: Duration::from_millis(window_ms),
            },
            GiveUpRecord::MaxRetries { retries } => GiveUpReason::MaxRetries { retries },
        }
    }
}

/// `supervision.json`: everything `inspect` and `list` show, and what a supervisor needs
/// to take over (the engine state, [`Record::supervision`]). Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    pub bundle: PathBuf,
    pub mode: Mode,
    pub phase: Phase,
    /// The process supervising the container (a foreground `harun run`, or the detached
    /// supervisor).
    pub supervisor: ProcRef,
    /// The container's init while it runs.
    pub container_pid: Option<i32>,
    pub settings: SettingsRecord,
    pub log: Option<LogConfig>,
    pub restart_count: u32,
    pub retries: u32,
    pub delay_ms: Option<u64>,
    pub recent_exits_ms: Vec<u64>,
    pub started_at_ms: Option<u64>,
    pub last_exit: Option<ExitRecord>,
    pub next_restart_at_ms: Option<u64>,
    pub stop_requested: bool,
    pub gave_up: Option<GiveUpRecord>,
    /// Why supervision ended, once it has (`stopped by the user`, `crash loop: ...`).
    pub end_reason: Option<String>,
    /// A health check asked for a restart that has not happened yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced_restart: bool,
    /// Stopped by its supervisor's shutdown: the next supervisor start runs it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shutdown: bool,
    /// `harun supervise`: the service this container is a replica of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Its health check's state, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthRecord>,
}

/// A container's health as `inspect` shows it and a re-adopting supervisor resumes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthRecord {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    /// The last check's output (at most 4 KiB) and when it ended.
    pub last_output: String,
    pub last_at_ms: Option<u64>,
}

impl Record {
    /// A record of `sup` with the rest given; `phase`, `container_pid` and `end_reason`
    /// start as running / none.
    pub fn new(
        id: &str,
        bundle: &Path,
        mode: Mode,
        supervisor: ProcRef,
        log: Option<LogConfig>,
        sup: &Supervision,
    ) -> Record {
        let mut record = Record {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            mode,
            phase: Phase::Running,
            supervisor,
            container_pid: None,
            settings: SettingsRecord::from(&sup.settings),
            log,
            restart_count: 0,
            retries: 0,
            delay_ms: None,
            recent_exits_ms: Vec::new(),
            started_at_ms: None,
            last_exit: None,
            next_restart_at_ms: None,
            stop_requested: false,
            gave_up: None,
            end_reason: None,
            forced_restart: false,
            shutdown: false,
            service: None,
            health: None,
        };
        record.capture(sup);
        record
    }

    /// Copies the engine state into the record.
    pub fn capture(&mut self, sup: &Supervision) {
        self.settings = SettingsRecord::from(&sup.settings);
        self.restart_count = sup.restart_count;
        self.retries = sup.retries;
        self.delay_ms = sup.delay.map(millis);
        self.recent_exits_ms = sup.recent_exits.iter().map(|t| t.as_millis()).collect();
        self.started_at_ms = sup.started_at.map(Timestamp::as_millis);
        self.last_exit = sup.last_exit.as_ref().map(ExitRecord::from);
        self.next_restart_at_ms = sup.next_restart_at.map(Timestamp::as_millis);
        self.stop_requested = sup.stop_requested;
        self.gave_up = sup.gave_up.map(GiveUpRecord::from);
        self.forced_restart = sup.forced_restart;
        self.shutdown = sup.shutdown;
    }

    /// The engine state back from the record.
    pub fn supervision(&self) -> crate::Result<Supervision> {
        let ms = Timestamp::from_millis;
        Ok(Supervision {
            settings: self.settings.settings()?,
            restart_count: self.restart_count,
            retries: self.retries,
            delay: self.delay_ms.map(Duration::from_millis),
            recent_exits: self.recent_exits_ms.iter().copied().map(ms).collect(),
            started_at: self.started_at_ms.map(ms),
            last_exit: self.last_exit.map(|e| LastExit {
                status: e.status(),
                at: ms(e.at_ms),
                ran_for: Duration::from_millis(e.ran_for_ms),
            }),
            next_restart_at: self.next_restart_at_ms.map(ms),
            stop_requested: self.stop_requested,
            gave_up: self.gave_up.map(GiveUpReason::from),
            forced_restart: self.forced_restart,
            shutdown: self.shutdown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{CrashLoop, Event, RestartPolicy};

    struct TempRoot(PathBuf);

    impl TempRoot {
        fn new(name: &str) -> TempRoot {
            let p = std::env::temp_dir()
                .join(format!("harun-persist-test-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            TempRoot(p)
        }

        fn root(&self) -> StateRoot {
            StateRoot::new(&self.0)
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn me() -> ProcRef {
        ProcRef {
            pid: 1,
            start_time: 2,
        }
    }

    #[test]
    fn reserve_is_exclusive_and_remove_cleans_up() {
        let t = TempRoot::new("reserve");
        let root = t.root();
        let a = Store::reserve(&root, "a").unwrap();
        let b = Store::reserve(&root, "b").unwrap();
        assert!(matches!(
            Store::reserve(&root, "a"),
            Err(Error::AlreadyExists(id)) if id == "a"
        ));
        assert!(Store::reserve(&root, "../x").is_err(), "IDs are validated");
        assert_eq!(Store::ids(&root), vec!["a".to_string(), "b".to_string()]);
        assert!(Store::open(&root, "a").unwrap().is_some());
        assert!(Store::open(&root, "c").unwrap().is_none());
        a.remove().unwrap();
        assert!(root.path().join(SUPERVISE_DIR).is_dir(), "b is still there");
        b.remove().unwrap();
        b.remove().unwrap(); // twice is fine
        assert!(
            !root.path().join(SUPERVISE_DIR).exists(),
            "empty parent removed"
        );
        assert!(Store::ids(&root).is_empty());
    }

    #[test]
    fn record_round_trips_through_the_file() {
        let t = TempRoot::new("record");
        let root = t.root();
        let store = Store::reserve(&root, "c1").unwrap();
        assert_eq!(store.read_record().unwrap(), None);
        let settings = Settings {
            policy: RestartPolicy::OnFailure {
                max_retries: Some(3),
            },
            crash_loop: Some(CrashLoop {
                max_exits: 5,
                window: Duration::from_secs(30),
            }),
            ..Settings::default()
        };
        let mut sup = Supervision::new(settings);
        let t0 = Timestamp::from_millis(1_000_000);
        sup.on_event(Event::Started, t0);
        sup.on_event(
            Event::Exited {
                status: ExitStatus::Signal(9),
            },
            Timestamp::from_millis(1_000_250),
        );
        let record = Record::new(
            "c1",
            Path::new("/b"),
            Mode::Detached,
            me(),
            Some(LogConfig {
                max_size: 1024,
                max_files: 2,
            }),
            &sup,
        );
        store.write_record(&record).unwrap();
        let back = store.read_record().unwrap().unwrap();
        assert_eq!(back, record);
        assert_eq!(back.supervision().unwrap(), sup);
        assert_eq!(back.restart_count, 1);
        assert_eq!(
            back.last_exit,
            Some(ExitRecord {
                code: None,
                signal: Some(9),
                at_ms: 1_000_250,
                ran_for_ms: 250
            })
        );
        assert_eq!(back.settings.policy, "on-failure:3");
        assert_eq!(back.settings.restart_limit.as_deref(), Some("5/30s"));
        // No temp file is left next to the record.
        let names: Vec<String> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![RECORD_FILE.to_string()]);
        store.remove().unwrap();
    }

    #[test]
    fn gave_up_state_round_trips() {
        for reason in [
            GiveUpReason::CrashLoop {
                exits: 4,
                window: Duration::from_millis(1500),
            },
            GiveUpReason::MaxRetries { retries: 7 },
        ] {
            let mut sup = Supervision::new(Settings::default());
            sup.gave_up = Some(reason);
            sup.last_exit = Some(LastExit {
                status: None,
                at: Timestamp::from_millis(5),
                ran_for: Duration::ZERO,
            });
            let record = Record::new("x", Path::new("/b"), Mode::Foreground, me(), None, &sup);
            let text = serde_json::to_string(&record).unwrap();
            let back: Record = serde_json::from_str(&text).unwrap();
            assert_eq!(back.supervision().unwrap(), sup, "{text}");
        }
    }

    #[test]
    fn give_up_record_reads_like_a_tagged_enum() {
        for (json, record) in [
            (
                r#"{"kind":"crash-loop","exits":3,"windowMs":10}"#,
                GiveUpRecord::CrashLoop {
                    exits: 3,
                    window_ms: 10,
                },
            ),
            (
                r#"{"kind":"max-retries","retries":2}"#,
                GiveUpRecord::MaxRetries { retries: 2 },
            ),
        ] {
            assert_eq!(serde_json::to_string(&record).unwrap(), json);
            assert_eq!(serde_json::from_str::<GiveUpRecord>(json).unwrap(), record);
        }
        // serde's own texts for its internally tagged enum.
        for (bad, why) in [
            (r#"{"exits":3}"#, "missing field `kind` at line 1 column 11"),
            (
                r#"{"kind":"crash-loop","exits":3}"#,
                "missing field `windowMs`",
            ),
            (
                r#"{"kind":"crash-loop","windowMs":3}"#,
                "missing field `exits`",
            ),
            (r#"{"kind":"max-retries"}"#, "missing field `retries`"),
            (
                r#"{"kind":"x"}"#,
                "unknown variant `x`, expected `crash-loop` or `max-retries` at line 1 column 11",
            ),
            (
                r#"{"kind":1}"#,
                "invalid type: integer `1`, expected variant identifier at line 1 column 9",
            ),
        ] {
            let e = serde_json::from_str::<GiveUpRecord>(bad)
                .unwrap_err()
                .to_string();
            assert_eq!(e, why, "{bad}");
        }
    }

    #[test]
    fn stop_request_is_taken_once() {
        let t = TempRoot::new("stopreq");
        let root = t.root();
        let store = Store::reserve(&root, "s").unwrap();
        assert_eq!(store.take_stop_request(), None);
        store
            .write_stop_request(Some(Duration::from_millis(2500)))
            .unwrap();
        assert_eq!(
            store.take_stop_request(),
            Some(Some(Duration::from_millis(2500)))
        );
        assert_eq!(store.take_stop_request(), None);
        store.write_stop_request(None).unwrap();
        assert_eq!(store.take_stop_request(), Some(None));
        store.remove().unwrap();
    }

    #[test]
    fn a_broken_record_names_the_file() {
        let t = TempRoot::new("broken");
        let root = t.root();
        let store = Store::reserve(&root, "b").unwrap();
        fs::write(store.file(RECORD_FILE), "{not json").unwrap();
        let err = store.read_record().unwrap_err().to_string();
        assert!(err.contains("supervision.json"), "{err}");
        store.remove().unwrap();
    }
}
