//! The supervised container from outside its supervisor: what `harun stop`, `delete`,
//! `inspect`, `list`, `logs` and `events` do.
//!
//! Talking to a supervisor: its pid and start time are in the record, so a reused pid is
//! never signalled. `stop` writes the stop request (the timeout) next to the record, then
//! sends SIGTERM; the supervisor stops the container (TERM, KILL after the timeout), records
//! the end and exits, and `stop` returns once it has. The same SIGTERM from anyone else
//! (Ctrl-C, a system shutdown) stops with the configured timeout.

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

use harun_runtime::container;
use harun_runtime::pidfd::PidFd;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result, Warning};
use serde_json::{json, Value};

use crate::events::{self, rfc3339_ms, EVENTS_FILE};
use crate::follow::{self, Rotating};
use crate::format_duration;
use crate::logs::{self, LOG_FILE};
use crate::persist::{millis, split_status, Mode, Phase, Record, Store, SUPERVISE_DIR};
use crate::policy::{ExitStatus, Timestamp};

/// How long past its stop timeout a supervisor may take to finish (poststop hooks, the
/// final record) before `stop` gives up waiting.
const STOP_MARGIN: Duration = Duration::from_secs(30);
/// What `stop` waits for an unsupervised container after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// The stop timeout of an unsupervised container (Docker's).
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A container's supervision as found on disk.
#[derive(Debug)]
pub struct Supervised {
    pub store: Store,
    /// `None` only while a supervisor is writing its first record.
    pub record: Option<Record>,
    /// The supervisor process, if it is alive.
    pub supervisor: Option<PidFd>,
}

/// The supervision of `id`, if it is supervised (or was, and has not been deleted).
pub fn find(root: &StateRoot, id: &str) -> Result<Option<Supervised>> {
    let Some(store) = Store::open(root, id)? else {
        return Ok(None);
    };
    let record = store.read_record()?;
    let supervisor = match &record {
        Some(r) => PidFd::open_checked(r.supervisor.pid, r.supervisor.start_time)?,
        None => None,
    };
    Ok(Some(Supervised {
        store,
        record,
        supervisor,
    }))
}

/// What `stop` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The stopped run's status, when known (a supervised container's; an unsupervised
    /// container is not our child, so its status is not ours to read).
    pub last: Option<ExitStatus>,
    /// It was not running in the first place.
    pub already: bool,
}

impl Stopped {
    /// One line for the user: `web: stopped (exited with code 0)`.
    pub fn describe(&self, id: &str) -> String {
        let what = if self.already {
            "was not running"
        } else {
            "stopped"
        };
        match self.last {
            Some(status) => format!("{id}: {what} (last run {status})"),
            None => format!("{id}: {what}"),
        }
    }
}

/// `harun stop ID [--timeout T]`: SIGTERM, SIGKILL after the timeout, never restarted.
/// A container of `harun supervise` is stopped through `harun ctl`; one whose supervisor
/// died is stopped directly, and its record says so (a supervisor that takes it over
/// later leaves it stopped).
pub fn stop(root: &StateRoot, id: &str, timeout: Option<Duration>) -> Result<Stopped> {
    let supervised = find(root, id)?;
    if let Some(s) = &supervised {
        if let Some(supervisor) = &s.supervisor {
            refuse_service(s, id, "stop")?;
            return stop_supervised(s, supervisor, id, timeout);
        }
    }
    let stopped = stop_unsupervised(root, id, timeout);
    if let (Some(s), Ok(_) | Err(Error::NotFound(_))) = (&supervised, &stopped) {
        mark_stopped_by_user(s);
    }
    match stopped {
        // A supervision whose container is gone (a failed restart, a foreground run that
        // just ended): nothing runs.
        Err(Error::NotFound(_)) if supervised.is_some() => Ok(Stopped {
            last: last_status(supervised.as_ref()),
            already: true,
        }),
        other => other,
    }
}

/// A container of a live `harun supervise` is its business: say how to ask it.
fn refuse_service(s: &Supervised, id: &str, what: &str) -> Result<()> {
    let Some(r) = s.record.as_ref().filter(|r| r.mode == Mode::Service) else {
        return Ok(());
    };
    let service = r.service.as_deref().unwrap_or(id);
    Err(Error::FailedPrecondition(format!(
        "cannot {what} container `{id}`: it is a replica of service `{service}` of \
         `harun supervise`; use `harun ctl stop {service}` (or remove the service from its \
         directory and `harun ctl reload`)"
    )))
}

/// The record of a container whose supervisor died, after the user stopped it: stopped by
/// the user, for good.
fn mark_stopped_by_user(s: &Supervised) {
    let Some(mut r) = s.record.clone() else {
        return;
    };
    if r.phase.is_final() {
        return;
    }
    r.sup.stop_requested = true;
    r.sup.next_restart_at = None;
    r.container_pid = None;
    r.phase = Phase::Stopped;
    r.end_reason = Some("stopped by the user (its supervisor had died)".into());
    let _ = s.store.write_record(&r);
}

fn last_status(s: Option<&Supervised>) -> Option<ExitStatus> {
    s?.record.as_ref()?.sup.last_exit?.status
}

fn stop_supervised(
    s: &Supervised,
    supervisor: &PidFd,
    id: &str,
    timeout: Option<Duration>,
) -> Result<Stopped> {
    let phase = s.record.as_ref().map(|r| r.phase);
    // Opened before the stop: a foreground supervisor removes the file at its end, and its
    // final event (with the exit status) is still read through this fd.
    let events_file = File::open(s.store.file(EVENTS_FILE)).ok();
    s.store.write_stop_request(timeout)?;
    supervisor.signal(libc::SIGTERM)?;
    let grace = timeout
        .or_else(|| Some(s.record.as_ref()?.sup.settings.stop_timeout))
        .unwrap_or(DEFAULT_STOP_TIMEOUT);
    if !supervisor.wait_exit(grace + STOP_MARGIN)? {
        return Err(Error::FailedPrecondition(format!(
            "the supervisor of container `{id}` (pid {}) did not finish stopping it within {}s",
            supervisor.pid(),
            (grace + STOP_MARGIN).as_secs()
        )));
    }
    Ok(Stopped {
        last: events_file.and_then(final_status),
        already: phase.is_some_and(|p| p.is_final() || p == Phase::Restarting),
    })
}

/// The last run's status from the final event (`stopped`, `gave-up`) of an events file.
fn final_status(mut file: File) -> Option<ExitStatus> {
    let mut text = Vec::new();
    file.read_to_end(&mut text).ok()?;
    let last = events::parse(&text)
        .into_iter()
        .rev()
        .find(|e| e.event.is_final())?;
    match (last.code, last.signal) {
        (Some(code), _) => Some(ExitStatus::Code(code)),
        (None, Some(signal)) => Some(ExitStatus::Signal(signal)),
        (None, None) => None,
    }
}

fn stop_unsupervised(root: &StateRoot, id: &str, timeout: Option<Duration>) -> Result<Stopped> {
    let st = root.read(id)?;
    let stopped = Stopped {
        last: None,
        already: true,
    };
    let Some(init) = PidFd::open_checked(st.pid, st.init_start_time)? else {
        return Ok(stopped);
    };
    match container::kill(root, id, libc::SIGTERM, false) {
        Ok(()) => {}
        Err(Error::FailedPrecondition(_)) => return Ok(stopped), // stopped meanwhile
        Err(e) => return Err(e),
    }
    // A frozen process never sees the TERM: thaw it (as Docker does), or the whole
    // timeout passes before the KILL.
    let _ = harun_runtime::cgroups::ops::resume(root, id);
    if !init.wait_exit(timeout.unwrap_or(DEFAULT_STOP_TIMEOUT))? {
        container::kill(root, id, libc::SIGKILL, true)?;
        if !init.wait_exit(KILL_WAIT)? {
            return Err(Error::FailedPrecondition(format!(
                "container `{id}` (pid {}) did not die within {}s of SIGKILL",
                st.pid,
                KILL_WAIT.as_secs()
            )));
        }
    }
    Ok(Stopped {
        last: None,
        already: false,
    })
}

/// `harun delete [--force] ID` for any container: a supervised one is stopped through its
/// supervisor first (only with `--force` while supervision goes on), then the container and
/// its supervision (record, events, logs) are removed. Returns poststop hook warnings.
pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<Vec<Warning>> {
    if id == SUPERVISE_DIR {
        // It looks like a container dir to the runtime; deleting it would drop every
        // container's supervision.
        return Err(Error::InvalidArgument(format!(
            "`{id}` is harun's supervision directory, not a container"
        )));
    }
    let Some(s) = find(root, id)? else {
        return container::delete(root, id, force);
    };
    if s.supervisor.is_some() {
        refuse_service(&s, id, "delete")?;
        let phase = s.record.as_ref().map(|r| r.phase);
        if !force && !phase.is_some_and(Phase::is_final) {
            let phase = phase.map_or("starting", Phase::as_str);
            return Err(Error::FailedPrecondition(format!(
                "cannot delete container `{id}`: it is supervised ({phase}); stop it first \
                 (`harun stop {id}`) or use --force"
            )));
        }
        stop(root, id, Some(Duration::ZERO))?;
    }
    let warnings = match container::delete(root, id, force) {
        // The supervision outlived its container (a restart whose create failed).
        Err(Error::NotFound(_)) => Vec::new(),
        other => other?,
    };
    s.store.remove()?;
    Ok(warnings)
}

/// `harun inspect ID`: the OCI state's main fields and the supervision, as JSON.
pub fn inspect(root: &StateRoot, id: &str) -> Result<Value> {
    let oci = match container::state(root, id) {
        Ok(v) => Some(v),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let supervised = find(root, id)?;
    if oci.is_none() && supervised.is_none() {
        return Err(Error::NotFound(id.to_string()));
    }
    let supervision = supervised.as_ref().map_or(Value::Null, supervision_json);
    let record = supervised.as_ref().and_then(|s| s.record.as_ref());
    let field = |k: &str| oci.as_ref().map_or(Value::Null, |v| v[k].clone());
    Ok(json!({
        "id": id,
        "status": oci.as_ref().map_or(json!("stopped"), |v| v["status"].clone()),
        "pid": oci.as_ref().map_or(json!(0), |v| v["pid"].clone()),
        "bundle": match (&oci, record) {
            (Some(v), _) => v["bundle"].clone(),
            (None, Some(r)) => json!(r.bundle),
            (None, None) => Value::Null,
        },
        "created": field("created"),
        "supervision": supervision,
    }))
}

fn supervision_json(s: &Supervised) -> Value {
    let Some(r) = &s.record else {
        return json!({ "state": "starting" });
    };
    let log = r.log.map(|l| {
        json!({
            "path": s.store.file(LOG_FILE),
            "maxSize": l.max_size,
            "maxFiles": l.max_files,
        })
    });
    let sup = &r.sup;
    let last_exit = sup.last_exit.map(|e| {
        let (code, signal) = split_status(e.status);
        json!({
            "code": code,
            "signal": signal,
            "time": rfc3339_ms(e.at.as_millis()),
            "ranForMs": millis(e.ran_for),
        })
    });
    let settings = &sup.settings;
    let orphaned = s.supervisor.is_none() && !r.phase.is_final();
    let health = r.health.as_ref().map(|h| {
        json!({
            "status": h.status,
            "failingStreak": h.failing_streak,
            "output": h.last_output,
            "time": h.last_at_ms.map(rfc3339_ms),
        })
    });
    json!({
        // A supervisor that died (kill -9) left its last word; say it is dead.
        "state": if orphaned { "orphaned" } else { r.phase.as_str() },
        "supervisorDied": orphaned.then(|| format!(
            "supervisor pid {} is gone; `harun run` the container again to take it over \
             (or `harun supervise` for a service), `harun stop` or `harun delete --force` it",
            r.supervisor.pid
        )),
        "service": r.service,
        "health": health,
        "mode": match r.mode { Mode::Foreground => "foreground", Mode::Detached => "detached", Mode::Service => "service" },
        "policy": settings.policy.to_string(),
        "restartDelay": format_duration(settings.backoff.initial),
        "restartMaxDelay": format_duration(settings.backoff.max),
        "restartResetAfter": format_duration(settings.backoff.reset_after),
        "restartLimit": settings.crash_loop.map(|l| l.to_string()),
        "stopTimeout": format_duration(settings.stop_timeout),
        "restartCount": sup.restart_count,
        "lastExit": last_exit,
        "nextRestart": if orphaned { None } else { sup.next_restart_at.map(|t| rfc3339_ms(t.as_millis())) },
        "reason": r.end_reason,
        "supervisorPid": s.supervisor.as_ref().map(PidFd::pid),
        "containerPid": r.container_pid,
        "events": s.store.file(EVENTS_FILE),
        "log": log,
    })
}

/// `list`: adds `restarts` to the state of every supervised container, and a row for
/// each supervised container that has no state dir right now (its re-create failed).
pub fn annotate_list(root: &StateRoot, states: &mut Vec<Value>) {
    for id in Store::ids(root) {
        let Ok(Some(s)) = find(root, &id) else {
            continue;
        };
        let Some(r) = &s.record else { continue };
        // Between an exit and the restart the container is stopped, or gone (a failed
        // re-create); either way a restart is coming.
        let restarting = r.phase == Phase::Restarting && s.supervisor.is_some();
        match states.iter_mut().find(|v| v["id"] == id.as_str()) {
            Some(v) => {
                v["restarts"] = json!(r.sup.restart_count);
                if restarting && v["status"] == "stopped" {
                    v["status"] = json!("restarting");
                }
            }
            None => states.push(json!({
                "ociVersion": harun_runtime::OCI_VERSION,
                "id": id,
                "pid": 0,
                "status": if restarting { "restarting" } else { "stopped" },
                "bundle": r.bundle,
                "created": created(&s, r),
                "owner": "",
                "restarts": r.sup.restart_count,
            })),
        }
    }
    harun_runtime::sort::sort_by(states, |a, b| a["id"].as_str() < b["id"].as_str());
}

/// When the container without a state dir was last created: the start of its last run,
/// else its last exit, else when its supervision began.
fn created(s: &Supervised, r: &Record) -> String {
    let ms = r
        .sup
        .started_at
        .or(r.sup.last_exit.map(|e| e.at))
        .map(Timestamp::as_millis)
        .or_else(|| {
            let made = std::fs::metadata(s.store.dir()).ok()?.modified().ok()?;
            let since = made.duration_since(std::time::UNIX_EPOCH).ok()?;
            u64::try_from(since.as_millis()).ok()
        });
    ms.map(rfc3339_ms).unwrap_or_default()
}

/// `harun events ID [-f]`: the JSON lines, following while the supervisor lives.
pub fn events(root: &StateRoot, id: &str, follow_on: bool, out: &mut dyn Write) -> Result<()> {
    let s = find(root, id)?.ok_or_else(|| not_supervised(root, id, "events"))?;
    let current = s.store.file(EVENTS_FILE);
    let older_path = events::rotated(&current);
    let older = move || vec![older_path.clone()];
    let files = Rotating {
        current,
        older: &older,
    };
    copy_then_follow(&files, None, follow_on, s.supervisor.as_ref(), out)
}

/// `harun logs ID [-f] [--tail N]`: a detached supervised container's output.
pub fn logs(
    root: &StateRoot,
    id: &str,
    follow_on: bool,
    tail: Option<usize>,
    out: &mut dyn Write,
) -> Result<()> {
    let s = find(root, id)?.ok_or_else(|| not_supervised(root, id, "logs"))?;
    if s.record.as_ref().is_some_and(|r| r.log.is_none()) {
        return Err(Error::FailedPrecondition(format!(
            "container `{id}` has no log: it runs in the foreground, its output goes to \
             the terminal of its `harun run`"
        )));
    }
    let store = s.store.clone();
    let older = move || {
        let mut files = logs::files(&store);
        files.retain(|p| !p.ends_with(LOG_FILE));
        files
    };
    let files = Rotating {
        current: s.store.file(LOG_FILE),
        older: &older,
    };
    copy_then_follow(&files, tail, follow_on, s.supervisor.as_ref(), out)
}

fn copy_then_follow(
    files: &Rotating<'_>,
    tail: Option<usize>,
    follow_on: bool,
    writer: Option<&PidFd>,
    out: &mut dyn Write,
) -> Result<()> {
    let (data, file) = follow::read_all(files)?;
    let shown = match tail {
        Some(n) => logs::last_lines(&data, n),
        None => &data,
    };
    if out.write_all(shown).and_then(|()| out.flush()).is_err() {
        return Ok(()); // the reader went away (`| head`)
    }
    if follow_on {
        follow::follow(files, file, writer, out)?;
    }
    Ok(())
}

/// NotFound for an unknown ID; for a container without supervision, why it has no `what`.
fn not_supervised(root: &StateRoot, id: &str, what: &str) -> Error {
    match root.read(id) {
        Ok(_) => Error::FailedPrecondition(format!(
            "container `{id}` is not supervised, so it has no {what} (start it with \
             `harun run --detach --restart POLICY`)"
        )),
        Err(e) => e,
    }
}
