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
pub(crate) use crate::policy::millis;
use crate::policy::{ExitStatus, Supervision};

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
    /// It exited and a restart is due at `Supervision::next_restart_at`.
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

/// (code, signal) of a status.
pub(crate) fn split_status(status: Option<ExitStatus>) -> (Option<i32>, Option<i32>) {
    match status {
        Some(ExitStatus::Code(c)) => (Some(c), None),
        Some(ExitStatus::Signal(s)) => (None, Some(s)),
        None => (None, None),
    }
}

/// `supervision.json`: everything `inspect` and `list` show, and what a supervisor needs
/// to take over: the engine state itself, [`Record::sup`]. Times are Unix milliseconds.
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
    pub log: Option<LogConfig>,
    /// The engine state: the one copy the supervisor drives, written as it is.
    #[serde(rename = "supervision")]
    pub sup: Supervision,
    /// Why supervision ended, once it has (`stopped by the user`, `crash loop: ...`).
    pub end_reason: Option<String>,
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
        sup: Supervision,
    ) -> Record {
        Record {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            mode,
            phase: Phase::Running,
            supervisor,
            container_pid: None,
            log,
            sup,
            end_reason: None,
            service: None,
            health: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{
        CrashLoop, Event, GiveUpReason, LastExit, RestartPolicy, Settings, Timestamp,
    };

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
            sup.clone(),
        );
        store.write_record(&record).unwrap();
        let back = store.read_record().unwrap().unwrap();
        assert_eq!(back, record);
        assert_eq!(back.sup, sup);
        assert_eq!(back.sup.restart_count, 1);
        // Times in Unix ms, the settings as people write them.
        let text = fs::read_to_string(store.file(RECORD_FILE)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let s = &v["supervision"];
        assert_eq!(
            s["lastExit"],
            serde_json::json!({"status": {"signal": 9}, "atMs": 1_000_250, "ranForMs": 250}),
            "{text}"
        );
        assert_eq!(s["settings"]["policy"], "on-failure:3", "{text}");
        assert_eq!(s["settings"]["restartLimit"], "5/30s", "{text}");
        assert_eq!(s["settings"]["restartDelay"], "100ms", "{text}");
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
            let record = Record::new("x", Path::new("/b"), Mode::Foreground, me(), None, sup);
            let text = serde_json::to_string(&record).unwrap();
            let back: Record = serde_json::from_str(&text).unwrap();
            assert_eq!(back, record, "{text}");
        }
    }

    #[test]
    fn give_up_reads_like_a_tagged_enum() {
        for (json, reason) in [
            (
                r#"{"kind":"crash-loop","exits":3,"windowMs":10}"#,
                GiveUpReason::CrashLoop {
                    exits: 3,
                    window: Duration::from_millis(10),
                },
            ),
            (
                r#"{"kind":"max-retries","retries":2}"#,
                GiveUpReason::MaxRetries { retries: 2 },
            ),
        ] {
            assert_eq!(serde_json::to_string(&reason).unwrap(), json);
            assert_eq!(serde_json::from_str::<GiveUpReason>(json).unwrap(), reason);
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
            let e = serde_json::from_str::<GiveUpReason>(bad)
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

    #[test]
    fn settings_are_validated_when_read_back() {
        let t = TempRoot::new("settings");
        let root = t.root();
        let store = Store::reserve(&root, "s").unwrap();
        let sup = Supervision::new(Settings::default());
        let record = Record::new("s", Path::new("/b"), Mode::Detached, me(), None, sup);
        let good = serde_json::to_string(&record).unwrap();
        for (field, value, why) in [
            ("\"no\"", "\"sometimes\"", "unknown policy `sometimes`"),
            ("\"1m\"", "\"50ms\"", "is shorter than the restart delay"),
            ("\"10s\"", "\"ten\"", "ten"),
        ] {
            assert!(good.contains(field), "{good}");
            fs::write(store.file(RECORD_FILE), good.replacen(field, value, 1)).unwrap();
            let err = store.read_record().unwrap_err().to_string();
            assert!(err.contains(RECORD_FILE) && err.contains(why), "{err}");
        }
        store.remove().unwrap();
    }
}
