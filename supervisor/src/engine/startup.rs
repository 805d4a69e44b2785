//! The two front ends: [`Daemon`] (`harun supervise DIR`) and [`RunOne`] (`harun run
//! --restart ...`), and how a supervisor that starts finds what an earlier one left.
//!
//! Re-adoption: every container a supervisor ran has its record in `ROOT/.supervise/ID`,
//! naming the supervisor (pid and start time), and its OCI state in `ROOT/ID`, naming its
//! init (pid and start time). A supervisor that starts and finds records whose supervisor
//! is dead takes them over: an init still alive (pidfd_open, then the start time checked, so
//! a reused pid is never taken for it) is adopted, not restarted; a container that died
//! meanwhile is judged by its policy (its exit status is unknown: a failure). After a clean
//! shutdown (every container stopped by the supervisor itself) the next start starts
//! everything again, in dependency order, except what the user had stopped.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use harun_runtime::pidfd::PidFd;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::control::Waiter;
use super::replica::Replica;
use super::{End, Engine, Options, Source};
use crate::annotations::Overrides;
use crate::ctl::{self, Listener};
use crate::health::{self, Health};
use crate::persist::{Mode, Phase, ProcRef, Record, Store, DAEMON_DIR, SUPERVISE_DIR};
use crate::policy::{self, Decision};
use crate::rollout::Slot;
use crate::service::{self, Behaviour, Service};

/// `ROOT/.supervise/.daemon`.
pub fn daemon_dir(root: &StateRoot) -> PathBuf {
    root.path().join(SUPERVISE_DIR).join(DAEMON_DIR)
}

/// The control socket of the supervisor of `root`.
pub fn socket_path(root: &StateRoot) -> PathBuf {
    daemon_dir(root).join(ctl::SOCKET)
}

/// `daemon.json`: who serves this root.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonRecord {
    pub supervisor: ProcRef,
    pub dir: PathBuf,
}

/// `harun supervise DIR`.
pub struct Daemon<'r> {
    engine: Engine<'r>,
    lock: Option<Flock<File>>,
}

impl<'r> Daemon<'r> {
    /// Takes the root's supervisor lock, loads every service of `dir` (any error refuses
    /// the start, before anything runs), opens the control socket, adopts what an earlier
    /// supervisor left, and starts the rest in dependency order (from [`Daemon::run`]).
    pub fn start(root: &'r StateRoot, dir: &Path, echo: bool) -> Result<Daemon<'r>> {
        let dir = fs::canonicalize(dir).map_err(Error::io("open services dir", dir))?;
        let ddir = daemon_dir(root);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&ddir)
            .map_err(Error::io("create", &ddir))?;
        let lock = take_lock(&ddir)?;
        let services = service::scan(&dir)?;
        let opts = Options {
            mode: Mode::Service,
            echo,
            log: Some(crate::logs::LogConfig::default()),
            create: Default::default(),
        };
        let mut engine = Engine::new(root, opts)?;
        engine.dir = Some(dir.clone());
        let record = DaemonRecord {
            supervisor: engine.ctx.me,
            dir,
        };
        let text = serde_json::to_vec_pretty(&record).unwrap_or_default();
        harun_runtime::state::replace_file(
            &ddir.join("daemon.json"),
            &text,
            harun_runtime::state::Durability::Atomic,
        )?;
        let listener = Listener::bind(&ddir.join(ctl::SOCKET))?;
        let token = engine.ctx.watch(
            std::os::fd::AsFd::as_fd(&listener),
            Source::Listener,
            "control socket",
        )?;
        engine.listener = Some((listener, token));
        for spec in services {
            engine.take_over(spec)?;
        }
        engine.retire_strays()?;
        Ok(Daemon {
            engine,
            lock: Some(lock),
        })
    }

    /// Serves until SIGTERM/SIGINT (or `harun ctl shutdown`), then stops everything in
    /// reverse dependency order.
    pub fn run(mut self) -> Result<()> {
        let result = self.engine.run();
        // Gone with us: the record, the socket (the listener), the lock (unlinked while
        // still held, so a supervisor starting meanwhile fails to take it), the dir if empty.
        let ddir = daemon_dir(self.engine.ctx.root);
        if let Some((listener, token)) = self.engine.listener.take() {
            self.engine
                .ctx
                .unwatch(std::os::fd::AsFd::as_fd(&listener), token);
        }
        let _ = fs::remove_file(ddir.join("daemon.json"));
        let _ = fs::remove_file(ddir.join("lock"));
        drop(self.lock.take());
        if fs::remove_dir(&ddir).is_ok() {
            let _ = ddir.parent().map(fs::remove_dir);
        }
        // Last: a `ctl shutdown` that returns finds the root free for the next supervisor.
        for w in std::mem::take(&mut self.engine.waiters) {
            let response = match w {
                Waiter::Shutdown { .. } => crate::ctl::Response::ok("stopped every service"),
                _ => crate::ctl::Response::error("the supervisor shut down"),
            };
            self.engine.answer(w.conn(), response);
        }
        result
    }
}

/// The root's supervisor lock; a second supervisor is refused, naming the first.
fn take_lock(ddir: &Path) -> Result<Flock<File>> {
    let path = ddir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
        let who = fs::read(ddir.join("daemon.json"))
            .ok()
            .and_then(|t| serde_json::from_slice::<DaemonRecord>(&t).ok())
            .map(|r| format!(" (pid {}, serving {})", r.supervisor.pid, r.dir.display()))
            .unwrap_or_default();
        Error::FailedPrecondition(format!(
            "another `harun supervise`{who} uses this state root: one per --root"
        ))
    })
}

impl Engine<'_> {
    /// Adds a service at supervisor start, taking over what an earlier supervisor left.
    fn take_over(&mut self, spec: Service) -> Result<()> {
        for i in 0..spec.behaviour.replicas {
            let slot = Slot::Replica(i);
            let id = spec.container_id(slot);
            let r = self.found_or_new(&spec, slot, &id)?;
            self.replicas.insert(id, r);
        }
        // An update the earlier supervisor did not finish: its extra replica goes.
        let surge = spec.container_id(Slot::Surge);
        if Store::open(self.ctx.root, &surge)?.is_some() {
            let r = self.found_or_new(&spec, Slot::Surge, &surge)?;
            self.replicas.insert(surge.clone(), r);
            self.retire(&surge, true);
        }
        let digest = spec.version.digest;
        self.services.insert(
            spec.name.clone(),
            super::services::ServiceState {
                spec,
                source_digest: digest,
                update: None,
                last_update: None,
            },
        );
        Ok(())
    }

    /// The replica for `id`: adopted, resumed by its policy, or new (waiting to start).
    fn found_or_new(&mut self, spec: &Service, slot: Slot, id: &str) -> Result<Replica> {
        let found = match Store::open(self.ctx.root, id)? {
            Some(store) => store.read_record().ok().flatten().map(|r| (store, r)),
            None => None,
        };
        let Some((store, record)) = found else {
            if self.ctx.root.read(id).is_ok() {
                return Err(Error::FailedPrecondition(format!(
                    "container `{id}` already exists and was not started by harun \
                     supervise: delete it or rename service `{}`",
                    spec.name
                )));
            }
            let mut r = self.new_replica(spec, slot)?;
            r.wait_for_dependencies(&mut self.ctx);
            return Ok(r);
        };
        check_owner(id, &record, self.ctx.me, Mode::Service)?;
        let mut r = self.resume(spec, slot, id, store, record)?;
        if r.phase() == Phase::Waiting {
            r.wait_for_dependencies(&mut self.ctx);
        }
        Ok(r)
    }

    /// A replica from its record: adopted when its init lives, else as its policy says
    /// (after a clean shutdown: waiting for its dependencies, like a first start).
    fn resume(
        &mut self,
        spec: &Service,
        slot: Slot,
        id: &str,
        store: Store,
        mut record: Record,
    ) -> Result<Replica> {
        let health = resumed_health(&record);
        let was_waiting = record.phase == Phase::Waiting;
        record.mode = self.ctx.opts.mode;
        record.log = self.ctx.opts.log;
        let mut r = Replica::new(&mut self.ctx, id, slot, spec.clone(), store, record)?;
        if let Some(pidfd) = live_init(self.ctx.root, id) {
            r.adopt(&mut self.ctx, pidfd, health)?;
            return Ok(r);
        }
        if was_waiting {
            r.record.phase = Phase::Waiting;
            return Ok(r);
        }
        if r.record.sup.shutdown && self.ctx.opts.mode == Mode::Service {
            // A clean shutdown: start again in dependency order, unless the user stopped it.
            let decision = r.record.sup.on_event(
                policy::Event::DaemonRestart { running: false },
                self.ctx.now(),
            );
            if let Decision::RestartAfter(_) = decision {
                r.record.sup.next_restart_at = None;
                r.record.phase = Phase::Waiting;
            } else {
                r.record.supervisor = self.ctx.me;
                r.apply(&mut self.ctx, decision);
            }
            return Ok(r);
        }
        r.resume_stopped(&mut self.ctx);
        Ok(r)
    }

    /// Supervision dirs of `harun supervise` containers that no service claims any more
    /// (a service removed, replicas reduced, while no supervisor ran): stopped and removed.
    fn retire_strays(&mut self) -> Result<()> {
        for id in Store::ids(self.ctx.root) {
            if self.replicas.contains_key(&id) {
                continue;
            }
            let Some(store) = Store::open(self.ctx.root, &id)? else {
                continue;
            };
            let Some(record) = store.read_record().ok().flatten() else {
                continue;
            };
            if record.mode != Mode::Service
                || check_owner(&id, &record, self.ctx.me, Mode::Service).is_err()
            {
                continue;
            }
            let name = record.service.clone().unwrap_or_else(|| id.clone());
            let spec = match service::load_version(&record.bundle)
                .and_then(|v| Ok((service::behaviour_of(&v)?, v)))
            {
                Ok((behaviour, version)) => Service {
                    name,
                    version,
                    behaviour,
                },
                Err(_) => Service {
                    name,
                    version: service::Version {
                        bundle: record.bundle.clone(),
                        config: std::rc::Rc::from(&b"{}"[..]),
                        digest: 0,
                    },
                    behaviour: Behaviour::from_annotations(
                        &Default::default(),
                        Overrides::default(),
                    )
                    .map_err(harun_runtime::Error::from)?,
                },
            };
            let r = self.resume(&spec, Slot::Surge, &id, store, record)?;
            self.replicas.insert(id.clone(), r);
            self.retire(&id, true);
        }
        Ok(())
    }
}

/// Refuses a record another live supervisor owns, or one of another kind of supervision.
fn check_owner(id: &str, record: &Record, me: ProcRef, mode: Mode) -> Result<()> {
    let owner = record.supervisor;
    if owner != me && harun_runtime::procfs::is_alive(owner.pid, owner.start_time) {
        return Err(Error::FailedPrecondition(format!(
            "container `{id}` already exists (supervised by pid {})",
            owner.pid
        )));
    }
    let ours = match mode {
        Mode::Service => record.mode == Mode::Service,
        Mode::Foreground | Mode::Detached => record.mode != Mode::Service,
    };
    if !ours {
        let by = match record.mode {
            Mode::Service => "harun supervise",
            _ => "harun run",
        };
        return Err(Error::FailedPrecondition(format!(
            "container `{id}` already exists (supervised by {by}; delete it first: \
             harun delete --force {id})"
        )));
    }
    Ok(())
}

/// The container's init, if it still runs (never a reused pid).
fn live_init(root: &StateRoot, id: &str) -> Option<PidFd> {
    let st = root.read(id).ok()?;
    PidFd::open_checked(st.pid, st.init_start_time)
        .ok()
        .flatten()
}

fn resumed_health(record: &Record) -> Option<Health> {
    let h = record.health.as_ref()?;
    let status: health::Status = h.status.parse().ok()?;
    Some(Health::resumed(
        status,
        h.failing_streak,
        policy::Timestamp::from_millis(crate::events::now_ms()),
    ))
}

/// `harun run --restart ...`: the engine with one container.
pub struct RunOne<'r> {
    engine: Engine<'r>,
}

impl<'r> RunOne<'r> {
    /// Starts supervising container `id` of `bundle`: the first start, or the take-over of
    /// a container whose supervisor died (`harun run` again after a `kill -9` of it). A
    /// failure here is the caller's error (bad bundle, ID taken, ...): nothing is left
    /// behind and nothing restarts.
    pub fn start(
        root: &'r StateRoot,
        id: &str,
        bundle: &Path,
        flags: Overrides,
        opts: Options,
    ) -> Result<RunOne<'r>> {
        let version = service::load_version(bundle)?;
        let annotations = version.annotations();
        let mut behaviour = Behaviour::from_annotations(&annotations, flags)?;
        behaviour.replicas = 1;
        behaviour.after.clear();
        let spec = Service {
            name: id.to_string(),
            version,
            behaviour,
        };
        let mut engine = Engine::new(root, opts)?;
        let slot = Slot::Replica(0);
        if let Some(store) = Store::open(root, id)? {
            let record = store
                .read_record()?
                .ok_or_else(|| Error::AlreadyExists(id.into()))?;
            check_owner(id, &record, engine.ctx.me, engine.ctx.opts.mode)?;
            if record.phase.is_final() {
                return Err(Error::AlreadyExists(id.into()));
            }
            let r = engine.resume(&spec, slot, id, store, record)?;
            engine.replicas.insert(id.to_string(), r);
            return Ok(RunOne { engine });
        }
        let store = Store::reserve(root, id)?;
        let mut r = match engine.new_replica(&spec, slot) {
            Ok(r) => r,
            Err(e) => {
                let _ = store.remove();
                return Err(e);
            }
        };
        r.persist(&engine.ctx);
        if let Err(e) = r.launch(&mut engine.ctx) {
            r.release(&mut engine.ctx);
            let _ = store.remove();
            return Err(e);
        }
        engine.replicas.insert(id.to_string(), r);
        Ok(RunOne { engine })
    }

    /// Watches and acts until supervision ends. Foreground: the container and its
    /// supervision are deleted at the end; detached: they stay for `inspect`, `logs`,
    /// `events` until `harun delete`.
    pub fn run(mut self) -> Result<End> {
        let outcome = self.engine.run();
        let root = self.engine.ctx.root;
        let mode = self.engine.ctx.opts.mode;
        let end = match outcome {
            Ok(()) => self.engine.end.clone().unwrap_or(End {
                phase: Phase::Stopped,
                reason: String::new(),
                last: None,
                deleted: false,
            }),
            Err(e) => {
                // We cannot watch any more: stop the container rather than leave it
                // unsupervised, and say why.
                for r in self.engine.replicas.values_mut() {
                    r.kill_now(&mut self.engine.ctx);
                }
                return Err(e);
            }
        };
        let ids: Vec<String> = self.engine.replicas.keys().cloned().collect();
        for id in ids {
            if let Some(mut r) = self.engine.replicas.remove(&id) {
                r.pump_output(&mut self.engine.ctx);
                r.release(&mut self.engine.ctx);
                if mode == Mode::Foreground || end.deleted {
                    // Best effort: the container's own exit code is what matters now.
                    let _ = harun_runtime::container::delete(root, &id, true);
                    let _ = r.store.remove();
                }
            }
        }
        Ok(end)
    }
}
