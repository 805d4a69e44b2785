//! Services: replicas that wait for their dependencies, rolling updates, replicas that
//! leave (an update's old ones, a removed service's), reload of the services directory,
//! and the shutdown in reverse start order.

use std::collections::BTreeMap;

use harun_runtime::container;
use harun_runtime::Result;

use super::replica::{Candidate, Replica};
use super::{Engine, Note, Timer};
use crate::ctl::Response;
use crate::deps;
use crate::persist::{Mode, Record, Store};
use crate::policy::{self, Supervision};
use crate::rollout::{Action, Input, Outcome, Rollout, Slot, Version};
use crate::service::{self, Service};

/// A service as the engine keeps it.
#[derive(Debug)]
pub(crate) struct ServiceState {
    /// The version new replicas get (after an update: the new one).
    pub spec: Service,
    /// The digest of `DIR/NAME/config.json` when last loaded: `reload` rolls the service
    /// when the file changed since.
    pub source_digest: u64,
    pub update: Option<Update>,
    /// How the last update ended.
    pub last_update: Option<Outcome>,
}

/// A rolling update in progress.
#[derive(Debug)]
pub(crate) struct Update {
    pub rollout: Rollout,
    pub old: Service,
    pub new: Service,
}

impl Engine<'_> {
    /// Replicas of `name` (not the surge), in slot order.
    pub(super) fn replicas_of<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Replica> + 'a {
        self.replicas
            .values()
            .filter(move |r| r.service.name == name && r.slot != Slot::Surge)
    }

    /// Every replica of every dependency of `name` is ready.
    fn dependencies_ready(&self, name: &str) -> bool {
        let Some(s) = self.services.get(name) else {
            return true;
        };
        s.spec.behaviour.after.iter().all(|dep| {
            let mut replicas = self.replicas_of(dep).peekable();
            replicas.peek().is_some() && replicas.all(|r| r.ready)
        })
    }

    /// The `after` graph of the services.
    pub(super) fn graph(&self) -> BTreeMap<String, Vec<String>> {
        deps::graph(
            self.services
                .iter()
                .map(|(n, s)| (n, &s.spec.behaviour.after)),
        )
    }

    /// A new replica of `spec` in `slot`, in a fresh or reused supervision dir, not started.
    pub(super) fn new_replica(&mut self, spec: &Service, slot: Slot) -> Result<Replica> {
        let id = spec.container_id(slot);
        let store = match Store::open(self.ctx.root, &id)? {
            Some(store) => store,
            None => Store::reserve(self.ctx.root, &id)?,
        };
        let mut record = Record::new(
            &id,
            &spec.version.bundle,
            self.ctx.opts.mode,
            self.ctx.me,
            self.ctx.opts.log,
            Supervision::new(spec.behaviour.settings),
        );
        if self.ctx.opts.mode == Mode::Service {
            record.service = Some(spec.name.clone());
        }
        Replica::new(&mut self.ctx, &id, slot, spec.clone(), store, record)
    }

    /// Adds a service whose replicas wait for its dependencies.
    pub(super) fn add_service(&mut self, spec: Service) -> Result<()> {
        for i in 0..spec.behaviour.replicas {
            let mut r = self.new_replica(&spec, Slot::Replica(i))?;
            r.wait_for_dependencies(&mut self.ctx);
            self.replicas.insert(r.id.clone(), r);
        }
        let digest = spec.version.digest;
        self.services.insert(
            spec.name.clone(),
            ServiceState {
                spec,
                source_digest: digest,
                update: None,
                last_update: None,
            },
        );
        Ok(())
    }

    /// Starts the replicas that wait, once their dependencies are ready.
    pub(super) fn start_waiting_services(&mut self) {
        if self.shutting_down {
            return;
        }
        let waiting: Vec<(String, String)> = self
            .replicas
            .values()
            .filter(|r| r.phase() == crate::persist::Phase::Waiting)
            .map(|r| (r.id.clone(), r.service.name.clone()))
            .collect();
        for (id, service) in waiting {
            if self.dependencies_ready(&service) {
                if let Some(r) = self.replicas.get_mut(&id) {
                    r.launch_or_fail(&mut self.ctx);
                }
            }
        }
    }

    /// What a note means for updates and leaving replicas.
    pub(super) fn on_note(&mut self, note: &Note) {
        match note {
            Note::Ready(id) => {
                let has_check = self.replicas.get(id).is_some_and(|r| {
                    r.candidate.is_some()
                        && (r.service.behaviour.health.is_some() || r.service.behaviour.notify)
                });
                if has_check {
                    self.accept_candidate(id);
                }
            }
            Note::Exited(id, why) | Note::Unhealthy(id, why) => {
                let failed = self
                    .replicas
                    .get(id)
                    .is_some_and(|r| r.candidate.is_some() && !r.retiring);
                if failed {
                    self.reject_candidate(id, format!("{id} {why}"));
                }
            }
            Note::Final(id) => {
                if self.replicas.get(id).is_some_and(|r| r.retiring) {
                    self.remove_replica(id);
                }
            }
        }
    }

    /// An update's window for a new replica ended.
    pub(super) fn on_window(&mut self, id: String) {
        let Some(r) = self.replicas.get(&id) else {
            return;
        };
        if r.candidate.is_none() || r.retiring {
            return;
        }
        let has_check = r.service.behaviour.health.is_some() || r.service.behaviour.notify;
        let window = crate::format_duration(r.service.behaviour.update_window);
        match (has_check, r.ready, r.is_running()) {
            (false, _, true) => self.accept_candidate(&id),
            (true, true, _) => self.accept_candidate(&id),
            (true, false, _) => {
                self.reject_candidate(&id, format!("{id} was not ready within {window}"))
            }
            (false, _, false) => {
                self.reject_candidate(&id, format!("{id} was not running after {window}"))
            }
        }
    }

    fn accept_candidate(&mut self, id: &str) {
        let Some(r) = self.replicas.get_mut(id) else {
            return;
        };
        r.candidate = None;
        self.ctx.timers.cancel(&Timer::Window(id.to_string()));
        let (service, slot) = (r.service.name.clone(), r.slot);
        self.feed_update(&service, Input::Ready(slot));
    }

    fn reject_candidate(&mut self, id: &str, why: String) {
        let Some(r) = self.replicas.get_mut(id) else {
            return;
        };
        r.candidate = None;
        self.ctx.timers.cancel(&Timer::Window(id.to_string()));
        let (service, slot) = (r.service.name.clone(), r.slot);
        self.feed_update(&service, Input::Failed(slot, why));
    }

    /// Starts a rolling update of `name` to `new`.
    pub(super) fn begin_update(
        &mut self,
        name: &str,
        new: Service,
    ) -> std::result::Result<(), String> {
        let Some(s) = self.services.get_mut(name) else {
            return Err(format!("no service `{name}`"));
        };
        if s.update.is_some() {
            return Err(format!("service `{name}` is being updated already"));
        }
        let (rollout, actions) = Rollout::start(s.spec.behaviour.replicas);
        s.update = Some(Update {
            rollout,
            old: s.spec.clone(),
            new,
        });
        s.last_update = None;
        self.run_update_actions(name, actions);
        Ok(())
    }

    fn feed_update(&mut self, name: &str, input: Input) {
        let Some(update) = self.services.get_mut(name).and_then(|s| s.update.as_mut()) else {
            return;
        };
        let actions = update.rollout.on_input(input);
        self.run_update_actions(name, actions);
    }

    fn run_update_actions(&mut self, name: &str, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Start(slot, version) => self.update_start(name, slot, version),
                Action::Stop(slot) => self.update_stop(name, slot),
                Action::Finish(outcome) => {
                    let Some(s) = self.services.get_mut(name) else {
                        return;
                    };
                    if let Some(update) = s.update.take() {
                        if outcome == Outcome::Updated {
                            s.spec = update.new;
                        }
                    }
                    harun_runtime::stderr::line(&format!("harun: {name}: {outcome}"));
                    s.last_update = Some(outcome);
                }
            }
        }
    }

    fn update_start(&mut self, name: &str, slot: Slot, version: Version) {
        let Some(update) = self.services.get(name).and_then(|s| s.update.as_ref()) else {
            return;
        };
        let spec = match version {
            Version::Old => update.old.clone(),
            Version::New => update.new.clone(),
        };
        let id = spec.container_id(slot);
        let mut r = match self.new_replica(&spec, slot) {
            Ok(r) => r,
            Err(e) => {
                self.ctx
                    .notes
                    .push(Note::Exited(id.clone(), format!("failed to start: {e}")));
                // Nobody to carry the failure: report it to the update directly.
                self.feed_update(name, Input::Failed(slot, format!("{id}: {e}")));
                return;
            }
        };
        let mono = self.ctx.mono();
        r.candidate = Some(Candidate { since: mono });
        let window = crate::persist::millis(spec.behaviour.update_window);
        self.ctx
            .timers
            .set(Timer::Window(id.clone()), mono + window);
        self.replicas.insert(id.clone(), r);
        if let Some(r) = self.replicas.get_mut(&id) {
            r.launch_or_fail(&mut self.ctx);
        }
    }

    fn update_stop(&mut self, name: &str, slot: Slot) {
        let Some(update) = self.services.get(name).and_then(|s| s.update.as_ref()) else {
            return;
        };
        let id = update.old.container_id(slot);
        if self.replicas.contains_key(&id) {
            self.retire(&id, slot == Slot::Surge);
        } else {
            self.feed_update(name, Input::Stopped(slot));
        }
    }

    /// Stops a replica for good; once final it is deleted (and its supervision dir with
    /// `remove_store`), and an update waiting for it hears of it.
    pub(super) fn retire(&mut self, id: &str, remove_store: bool) {
        let Some(r) = self.replicas.get_mut(id) else {
            return;
        };
        r.retiring = true;
        r.remove_store |= remove_store;
        r.candidate = None;
        if r.is_final() {
            self.remove_replica(id);
        } else {
            r.request(
                &mut self.ctx,
                policy::Event::StopRequested { timeout: None },
            );
        }
    }

    fn remove_replica(&mut self, id: &str) {
        let Some(mut r) = self.replicas.remove(id) else {
            return;
        };
        r.release(&mut self.ctx);
        if let Err(e) = container::delete(self.ctx.root, id, true) {
            harun_runtime::stderr::line(&format!("harun: warning: {id}: {e}"));
        }
        if r.remove_store {
            let _ = r.store.remove();
        }
        let (service, slot) = (r.service.name.clone(), r.slot);
        self.feed_update(&service, Input::Stopped(slot));
    }

    /// `harun ctl reload` and SIGHUP: rescans the directory, checks it whole, then adds new
    /// services, removes gone ones and rolls changed ones. Returns the answer and the
    /// services whose changes to wait for.
    pub(super) fn reload_now(&mut self) -> Reloaded {
        let Some(dir) = self.dir.clone() else {
            return Reloaded::error("this supervisor has no services directory");
        };
        let scanned = match service::scan(&dir) {
            Ok(s) => s,
            Err(e) => return Reloaded::error(format!("reload refused, nothing changed: {e}")),
        };
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        let mut replaced = Vec::new();
        let names: Vec<String> = scanned.iter().map(|s| s.name.clone()).collect();
        for name in self.services.keys() {
            if !names.contains(name) {
                removed.push(name.clone());
            }
        }
        for spec in scanned {
            match self.services.get(&spec.name) {
                None => added.push(spec),
                Some(s) if s.source_digest == spec.version.digest => {}
                Some(s) if s.update.is_some() => {
                    return Reloaded::error(format!(
                        "reload refused, nothing changed: service `{}` is being updated",
                        spec.name
                    ))
                }
                Some(s) if s.spec.behaviour.replicas != spec.behaviour.replicas => {
                    replaced.push(spec)
                }
                Some(_) => changed.push(spec),
            }
        }
        let mut waiting_for = Vec::new();
        let mut summary = Vec::new();
        for name in &removed {
            self.retire_service(name);
        }
        if !removed.is_empty() {
            summary.push(format!("removed {}", removed.join(", ")));
        }
        for (what, list) in [("added", added), ("replaced", replaced)] {
            if list.is_empty() {
                continue;
            }
            let names: Vec<String> = list.iter().map(|s| s.name.clone()).collect();
            summary.push(format!("{what} {}", names.join(", ")));
            for spec in list {
                // Its replicas come once the old ones (of the same names, maybe) are gone.
                self.retire_service(&spec.name);
                waiting_for.push(spec.name.clone());
                self.pending.push(spec);
            }
        }
        if !changed.is_empty() {
            let names: Vec<String> = changed.iter().map(|s| s.name.clone()).collect();
            summary.push(format!("updating {}", names.join(", ")));
        }
        for spec in changed {
            let name = spec.name.clone();
            let digest = spec.version.digest;
            waiting_for.push(name.clone());
            if let Some(s) = self.services.get_mut(&name) {
                s.source_digest = digest;
            }
            if let Err(e) = self.begin_update(&name, spec) {
                return Reloaded::error(format!("reload: {e}"));
            }
        }
        let message = if summary.is_empty() {
            "reloaded: nothing changed".to_string()
        } else {
            format!("reloaded: {}", summary.join("; "))
        };
        Reloaded {
            response: Response::ok(message),
            waiting_for,
            removing: removed,
        }
    }

    /// Stops and removes every replica of a service, and forgets the service.
    fn retire_service(&mut self, name: &str) {
        let ids: Vec<String> = self
            .replicas
            .values()
            .filter(|r| r.service.name == name)
            .map(|r| r.id.clone())
            .collect();
        for id in ids {
            self.retire(&id, true);
        }
        self.services.remove(name);
    }

    /// Adds the services that waited for their old replicas to go.
    pub(super) fn add_pending_services(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for spec in pending {
            let still_there = self.replicas.values().any(|r| r.service.name == spec.name);
            if still_there || self.shutting_down {
                self.pending.push(spec);
                continue;
            }
            let name = spec.name.clone();
            if let Err(e) = self.add_service(spec) {
                harun_runtime::stderr::line(&format!("harun: service `{name}`: {e}"));
            }
        }
    }

    /// One step of the shutdown: every service whose dependents have all stopped is asked
    /// to stop (services stop in reverse start order; independent ones together).
    pub(super) fn shutdown_step(&mut self) {
        let graph = self.graph();
        let mut ready_to_stop = Vec::new();
        for name in graph.keys() {
            let dependents_down = deps::dependents(&graph, name).into_iter().all(|d| {
                self.replicas
                    .values()
                    .filter(|r| r.service.name == d)
                    .all(|r| r.is_final())
            });
            if dependents_down {
                ready_to_stop.push(name.clone());
            }
        }
        for s in self.services.values_mut() {
            s.update = None; // an update does not survive a shutdown
        }
        let ids: Vec<String> = self
            .replicas
            .values()
            .filter(|r| {
                !r.is_final()
                    && !r.record.sup.shutdown
                    && (ready_to_stop.contains(&r.service.name)
                        || !graph.contains_key(&r.service.name))
            })
            .map(|r| r.id.clone())
            .collect();
        for id in ids {
            if let Some(r) = self.replicas.get_mut(&id) {
                r.request(&mut self.ctx, policy::Event::Shutdown { timeout: None });
            }
        }
    }
}

/// What a reload did.
#[derive(Debug)]
pub(crate) struct Reloaded {
    pub response: Response,
    /// Services added or changed: answer once their replicas are up (or updated).
    pub waiting_for: Vec<String>,
    /// Services removed: answer once their replicas are gone.
    pub removing: Vec<String>,
}

impl Reloaded {
    fn error(message: impl Into<String>) -> Reloaded {
        Reloaded {
            response: Response::error(message),
            waiting_for: Vec::new(),
            removing: Vec::new(),
        }
    }
}
