//! The control socket's requests, carried out by the engine: status, metrics, start, stop,
//! restart, reload, update. Those that take time keep their client waiting ([`Waiter`])
//! until the engine reaches the outcome; the loop serves everything else meanwhile.

use std::os::fd::AsFd;

use serde_json::{json, Value};

use super::{Engine, Source};
use crate::ctl::{Incoming, Request, Response};
use crate::events::rfc3339_ms;
use crate::metrics::{self, Sample};
use crate::persist::{split_status, Phase};
use crate::policy;
use crate::rollout::Slot;
use crate::service::{self, Service};

/// A client waiting for an outcome.
#[derive(Debug)]
pub(crate) enum Waiter {
    /// Every replica of the service stopped.
    Stop { conn: u64, service: String },
    /// Every replica ready, or one stopped for good.
    Start { conn: u64, service: String },
    /// Stop, then start.
    Restart { conn: u64, service: String },
    /// The service's update finished.
    Update { conn: u64, service: String },
    /// The shutdown's end (answered by the front end, as the engine ends).
    Shutdown { conn: u64 },
    /// The reload's services are up or updated, the removed ones gone.
    Reload {
        conn: u64,
        message: String,
        waiting_for: Vec<String>,
        removing: Vec<String>,
    },
}

impl Engine<'_> {
    /// Accepts every waiting client.
    pub(super) fn accept(&mut self) {
        let Some((listener, _)) = &self.listener else {
            return;
        };
        while let Some(conn) = listener.accept() {
            let token = self.ctx.next_token;
            self.ctx.next_token += 1;
            if self
                .ctx
                .reactor
                .add(conn.as_fd(), token, "control connection")
                .is_ok()
            {
                self.ctx.tokens.insert(token, Source::Conn(token));
                self.conns.insert(token, conn);
            }
        }
    }

    pub(super) fn on_conn(&mut self, cid: u64, writable: bool) {
        let Some(conn) = self.conns.get_mut(&cid) else {
            return;
        };
        if writable {
            if conn.flush() {
                self.close(cid);
            }
            return;
        }
        if self.waiters.iter().any(|w| w.conn() == cid) {
            // Waiting for an outcome: a readable socket now means the client hung up.
            let mut probe = [0u8; 1];
            if matches!(
                nix::sys::socket::recv(
                    std::os::fd::AsRawFd::as_raw_fd(&conn.as_fd()),
                    &mut probe,
                    nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_PEEK,
                ),
                Ok(0)
            ) {
                self.waiters.retain(|w| w.conn() != cid);
                self.close(cid);
            }
            return;
        }
        match conn.read_request() {
            Incoming::Pending => {}
            Incoming::Closed => self.close(cid),
            Incoming::Bad(why) => self.answer(cid, Response::error(why)),
            Incoming::Request(request) => self.handle(cid, request),
        }
    }

    fn close(&mut self, cid: u64) {
        if let Some(conn) = self.conns.remove(&cid) {
            self.ctx.unwatch(conn.as_fd(), cid);
        }
    }

    /// Sends `response`; the connection closes once it is out.
    pub(super) fn answer(&mut self, cid: u64, response: Response) {
        let Some(conn) = self.conns.get_mut(&cid) else {
            return;
        };
        conn.answer(&response);
        if conn.flush() {
            self.close(cid);
        } else {
            let _ = self.ctx.reactor.modify(conn.as_fd(), cid, true);
        }
    }

    fn handle(&mut self, cid: u64, request: Request) {
        if self.shutting_down {
            return self.answer(cid, Response::error("the supervisor is shutting down"));
        }
        match request {
            Request::Status => {
                let mut r = Response::ok("");
                r.status = Some(self.status_json());
                self.answer(cid, r)
            }
            Request::Metrics => {
                let mut r = Response::ok("");
                r.text = Some(self.metrics_text());
                self.answer(cid, r)
            }
            Request::Stop { service } => match self.check_service(&service) {
                Err(e) => self.answer(cid, Response::error(e)),
                Ok(()) => {
                    self.stop_service(&service);
                    self.waiters.push(Waiter::Stop { conn: cid, service });
                }
            },
            Request::Start { service } => match self.check_service(&service) {
                Err(e) => self.answer(cid, Response::error(e)),
                Ok(()) => {
                    self.start_service(&service);
                    self.waiters.push(Waiter::Start { conn: cid, service });
                }
            },
            Request::Restart { service } => match self.check_service(&service) {
                Err(e) => self.answer(cid, Response::error(e)),
                Ok(()) => {
                    self.stop_service(&service);
                    self.waiters.push(Waiter::Restart { conn: cid, service });
                }
            },
            Request::Shutdown => {
                self.shutting_down = true;
                self.waiters.push(Waiter::Shutdown { conn: cid });
            }
            Request::Reload => {
                let reloaded = self.reload_now();
                if !reloaded.response.ok
                    || (reloaded.waiting_for.is_empty() && reloaded.removing.is_empty())
                {
                    return self.answer(cid, reloaded.response);
                }
                self.waiters.push(Waiter::Reload {
                    conn: cid,
                    message: reloaded.response.message,
                    waiting_for: reloaded.waiting_for,
                    removing: reloaded.removing,
                });
            }
            Request::Update { service, bundle } => {
                if let Err(e) = self.check_service(&service) {
                    return self.answer(cid, Response::error(e));
                }
                match self.prepare_update(&service, &bundle) {
                    Err(e) => self.answer(cid, Response::error(e)),
                    Ok(new) => match self.begin_update(&service, new) {
                        Err(e) => self.answer(cid, Response::error(e)),
                        Ok(()) => self.waiters.push(Waiter::Update { conn: cid, service }),
                    },
                }
            }
        }
    }

    /// The service exists and no update runs on it.
    fn check_service(&self, name: &str) -> Result<(), String> {
        match self.services.get(name) {
            None => Err(format!(
                "no service `{name}` (services: {})",
                self.services.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            Some(s) if s.update.is_some() => Err(format!(
                "service `{name}` is being updated; try again when it is done"
            )),
            Some(_) => Ok(()),
        }
    }

    /// The bundle of `ctl update`, loaded and checked: same replica count.
    fn prepare_update(&self, name: &str, bundle: &std::path::Path) -> Result<Service, String> {
        let current = &self.services[name].spec;
        let version = service::load_version(bundle).map_err(|e| e.to_string())?;
        let behaviour = service::behaviour_of(&version).map_err(|e| e.to_string())?;
        if behaviour.replicas != current.behaviour.replicas {
            return Err(format!(
                "the new bundle asks for {} replicas and `{name}` has {}: a rolling update \
                 keeps the count (change it in the services directory and `harun ctl reload`)",
                behaviour.replicas, current.behaviour.replicas
            ));
        }
        let new = Service {
            name: name.to_string(),
            version,
            behaviour,
        };
        let mut others: Vec<Service> = self
            .services
            .values()
            .filter(|s| s.spec.name != name)
            .map(|s| s.spec.clone())
            .collect();
        others.push(new.clone());
        service::check_together(&others)?;
        Ok(new)
    }

    fn stop_service(&mut self, name: &str) {
        let ids: Vec<String> = self
            .replicas
            .values()
            .filter(|r| r.service.name == name && !r.is_final())
            .map(|r| r.id.clone())
            .collect();
        for id in ids {
            if let Some(r) = self.replicas.get_mut(&id) {
                r.request(
                    &mut self.ctx,
                    policy::Event::StopRequested { timeout: None },
                );
            }
        }
    }

    /// A manual start of every stopped replica; one whose dependencies are not ready waits.
    fn start_service(&mut self, name: &str) {
        let deps_ready = {
            let after = self.services[name].spec.behaviour.after.clone();
            after.iter().all(|d| {
                let mut rs = self.replicas_of(d).peekable();
                rs.peek().is_some() && rs.all(|r| r.ready)
            })
        };
        let ids: Vec<String> = self
            .replicas_of(name)
            .filter(|r| r.is_final() || r.phase() == Phase::Waiting)
            .map(|r| r.id.clone())
            .collect();
        for id in ids {
            let Some(r) = self.replicas.get_mut(&id) else {
                continue;
            };
            if deps_ready {
                r.manual_start(&mut self.ctx);
            } else {
                r.record.sup.reset();
                r.wait_for_dependencies(&mut self.ctx);
            }
        }
    }

    /// Answers every waiter whose outcome is there.
    pub(super) fn answer_waiters(&mut self) {
        let waiters = std::mem::take(&mut self.waiters);
        for w in waiters {
            match self.outcome(&w) {
                Some(Next::Answer(response)) => self.answer(w.conn(), response),
                Some(Next::Then(next)) => self.waiters.push(next),
                None => self.waiters.push(w),
            }
        }
    }

    fn outcome(&mut self, w: &Waiter) -> Option<Next> {
        match w {
            Waiter::Shutdown { .. } => None,
            Waiter::Stop { service, .. } => {
                let all = self.replicas_of(service).all(|r| r.is_final());
                all.then(|| Next::Answer(Response::ok(format!("{service}: stopped"))))
            }
            Waiter::Start { service, .. } => self.start_outcome(service).map(Next::Answer),
            Waiter::Restart { conn, service } => {
                if !self.replicas_of(service).all(|r| r.is_final()) {
                    return None;
                }
                self.start_service(service);
                Some(Next::Then(Waiter::Start {
                    conn: *conn,
                    service: service.clone(),
                }))
            }
            Waiter::Update { service, .. } => {
                let s = self.services.get(service)?;
                if s.update.is_some() {
                    return None;
                }
                let outcome = s.last_update.clone()?;
                let ok = outcome == crate::rollout::Outcome::Updated;
                let text = format!("{service}: {outcome}");
                Some(Next::Answer(if ok {
                    Response::ok(text)
                } else {
                    Response::error(text)
                }))
            }
            Waiter::Reload {
                message,
                waiting_for,
                removing,
                ..
            } => {
                let gone = removing
                    .iter()
                    .all(|name| !self.replicas.values().any(|r| &r.service.name == name));
                let mut failures = Vec::new();
                for name in waiting_for {
                    if self.pending.iter().any(|p| &p.name == name) {
                        return None;
                    }
                    let Some(s) = self.services.get(name) else {
                        continue;
                    };
                    if s.update.is_some() {
                        return None;
                    }
                    match &s.last_update {
                        Some(crate::rollout::Outcome::Updated) => {}
                        Some(other) => failures.push(format!("{name}: {other}")),
                        None => match self.start_outcome(name) {
                            None => return None,
                            Some(r) if !r.ok => failures.push(r.message),
                            Some(_) => {}
                        },
                    }
                }
                if !gone {
                    return None;
                }
                Some(Next::Answer(if failures.is_empty() {
                    Response::ok(message.clone())
                } else {
                    Response::error(format!("{message}; but {}", failures.join("; ")))
                }))
            }
        }
    }

    /// A start's outcome: every replica ready (ok), or one stopped for good (error).
    fn start_outcome(&self, service: &str) -> Option<Response> {
        let mut all_ready = true;
        for r in self.replicas_of(service) {
            if r.is_final() {
                let why = r.record.end_reason.clone().unwrap_or_default();
                return Some(Response::error(format!(
                    "{service}: {} {}: {why}",
                    r.id,
                    r.phase().as_str()
                )));
            }
            all_ready &= r.ready;
        }
        all_ready.then(|| Response::ok(format!("{service}: running")))
    }

    /// `harun ctl status --json`.
    pub(super) fn status_json(&self) -> Value {
        let services: Vec<Value> = self
            .services
            .values()
            .map(|s| {
                let containers: Vec<Value> = self
                    .replicas
                    .values()
                    .filter(|r| r.service.name == s.spec.name)
                    .map(|r| {
                        let last_exit = r.record.sup.last_exit.map(|e| {
                            let (code, signal) = split_status(e.status);
                            json!({
                                "code": code,
                                "signal": signal,
                                "time": rfc3339_ms(e.at.as_millis()),
                            })
                        });
                        let health = r.health.as_ref().map(|h| {
                            json!({
                                "status": h.status.as_str(),
                                "failingStreak": h.failing_streak,
                                "output": h.last_output,
                            })
                        });
                        json!({
                            "id": r.id,
                            "slot": match r.slot { Slot::Replica(i) => json!(i), Slot::Surge => json!("surge") },
                            "state": r.phase().as_str(),
                            "ready": r.ready,
                            "pid": r.pid(),
                            "health": health,
                            "notifyStatus": r.notify_status,
                            "restarts": r.record.sup.restart_count,
                            "lastExit": last_exit,
                            "reason": r.record.end_reason,
                            "bundle": r.service.version.bundle,
                        })
                    })
                    .collect();
                let mine: Vec<&super::replica::Replica> = self.replicas_of(&s.spec.name).collect();
                let ready = mine.iter().filter(|r| r.ready).count();
                let state = if s.update.is_some() {
                    "updating"
                } else if mine.iter().all(|r| r.is_final()) {
                    "stopped"
                } else if ready == mine.len() {
                    "running"
                } else if mine.iter().all(|r| r.phase() == Phase::Waiting) {
                    "waiting"
                } else {
                    "degraded"
                };
                json!({
                    "name": s.spec.name,
                    "state": state,
                    "replicas": s.spec.behaviour.replicas,
                    "ready": ready,
                    "after": s.spec.behaviour.after,
                    "bundle": s.spec.version.bundle,
                    "lastUpdate": s.last_update.as_ref().map(|o| o.to_string()),
                    "containers": containers,
                })
            })
            .collect();
        json!({
            "pid": self.ctx.me.pid,
            "dir": self.dir,
            "services": services,
        })
    }

    fn metrics_text(&self) -> String {
        let samples: Vec<Sample> = self
            .replicas
            .values()
            .map(|r| {
                let mut s = Sample {
                    service: r.service.name.clone(),
                    container: r.id.clone(),
                    up: r.is_running(),
                    restarts: r.record.sup.restart_count,
                    health: r.health.as_ref().map(|h| h.status),
                    ..Sample::default()
                };
                if r.is_running() {
                    metrics::read_cgroup(self.ctx.root, &r.id, &mut s);
                }
                s
            })
            .collect();
        metrics::render(&samples, metrics::own())
    }
}

enum Next {
    Answer(Response),
    Then(Waiter),
}

impl Waiter {
    pub(super) fn conn(&self) -> u64 {
        match self {
            Waiter::Stop { conn, .. }
            | Waiter::Start { conn, .. }
            | Waiter::Restart { conn, .. }
            | Waiter::Update { conn, .. }
            | Waiter::Shutdown { conn }
            | Waiter::Reload { conn, .. } => *conn,
        }
    }
}
