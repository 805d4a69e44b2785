//! Helpers for the `harun supervise` tests (`mod supervise_util;` in each): a services
//! directory of busybox bundles, the supervisor in the foreground, `harun ctl status`,
//! waiting for the services to reach a state, and the clean-up.
//!
//! Waiting polls `harun ctl status` (a test may poll; the supervisor never does).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use harun_integration::{Bundle, Harun, Out, Running};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// How long a test waits for the supervisor to reach some point (2 loaded cores).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A service's process: up at once, TERM ends it at once (sh as PID 1 only reacts to
/// trapped signals), `sh` stays the init.
pub const SERVE: &str = "trap 'exit 0' TERM; while :; do sleep 1 & wait; done";

/// The services directory of a test.
pub struct Services {
    pub dir: PathBuf,
}

impl Services {
    pub fn new(h: &Harun) -> Services {
        let dir = h.path("services");
        fs::create_dir_all(&dir).expect("mkdir services");
        Services { dir }
    }

    /// Adds service `name` running `script` with `annotations`; a writable rootfs. Its
    /// containers are remembered: a failing test's clean-up deletes them (the supervisor,
    /// a `Running`, is killed first as the test unwinds).
    pub fn add(&self, h: &Harun, name: &str, script: &str, annotations: &[(&str, &str)]) -> Bundle {
        let replicas: u32 = annotations
            .iter()
            .find(|(k, _)| *k == "run.harun.replicas")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1);
        h.remember_id(name);
        h.remember_id(&format!("{name}-next"));
        for i in 0..replicas.min(100) {
            h.remember_id(&format!("{name}-{i}"));
        }
        let mut b = h.bundle_at(&self.dir.join(name));
        b.sh(script).set("/root/readonly", false);
        for (k, v) in annotations {
            b.set(&format!("/annotations/{}", k.replace('/', "~1")), *v);
        }
        b
    }

    /// Removes service `name`'s directory.
    pub fn remove(&self, name: &str) {
        fs::remove_dir_all(self.dir.join(name)).expect("remove service dir");
    }
}

/// `harun supervise DIR` in the foreground (its events on stderr).
pub fn start(h: &Harun, services: &Services) -> Running {
    let running = h
        .cmd(["supervise"])
        .arg(&services.dir)
        .timeout(Duration::from_secs(900))
        .spawn();
    wait_socket(h);
    running
}

/// Waits until `harun ctl status` answers.
pub fn wait_socket(h: &Harun) {
    let deadline = Instant::now() + PATIENCE;
    while h.exec(&["ctl", "status"]).code != 0 {
        assert!(Instant::now() < deadline, "the supervisor never answered");
        sleep(Duration::from_millis(20));
    }
}

/// SIGTERM to the supervisor; it stops everything and exits 0.
pub fn stop(running: Running) -> Out {
    kill(Pid::from_raw(running.pid()), Signal::SIGTERM).expect("kill supervisor");
    running.wait().ok()
}

/// `harun ctl status --json`.
pub fn status(h: &Harun) -> Value {
    h.exec(&["ctl", "status", "--json"]).ok().json()
}

/// Every container of the status, by ID.
pub fn containers(status: &Value) -> BTreeMap<String, Value> {
    status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["containers"].as_array().cloned().unwrap_or_default())
        .map(|c| (c["id"].as_str().unwrap_or("?").to_string(), c))
        .collect()
}

/// A service of the status.
pub fn service<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name} in {status:#}"))
}

/// Polls the status until `done(status)`; returns it.
pub fn wait_for(h: &Harun, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = status(h);
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {PATIENCE:?}; status:\n{s:#}"
        );
        sleep(Duration::from_millis(25));
    }
}

/// Every service of the status is running with every replica ready.
pub fn all_running(status: &Value) -> bool {
    status["services"]
        .as_array()
        .is_some_and(|a| a.iter().all(|s| s["state"] == "running"))
}

/// The pid of container `id` in the status (0 when it has none).
pub fn pid_of(status: &Value, id: &str) -> i32 {
    containers(status)
        .get(id)
        .and_then(|c| c["pid"].as_i64())
        .unwrap_or(0) as i32
}

/// Every event of container `id`.
pub fn events(h: &Harun, id: &str) -> Vec<Value> {
    let out = h.exec(&["events", id]).ok();
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event {l:?}: {e}")))
        .collect()
}

pub fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

pub fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["event"] == kind).count()
}

/// Time of the first event of `kind`.
pub fn first_time(events: &[Value], kind: &str) -> i64 {
    events
        .iter()
        .find(|e| e["event"] == kind)
        .and_then(|e| e["timeMs"].as_i64())
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(events)))
}

/// Time of the last event of `kind`.
pub fn last_time(events: &[Value], kind: &str) -> i64 {
    events
        .iter()
        .rev()
        .find(|e| e["event"] == kind)
        .and_then(|e| e["timeMs"].as_i64())
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(events)))
}

/// After the supervisor ended: deletes the containers, the supervisor's dir, and checks
/// nothing is left.
pub fn clean_up(h: &Harun, ids: &[String]) {
    for id in ids {
        h.delete_force(id).ok();
    }
    let _ = fs::remove_dir_all(h.root().join(".supervise/.daemon"));
    let _ = fs::remove_dir(h.root().join(".supervise"));
    h.assert_clean();
}

/// A small deterministic random number generator (xorshift64*), seeded and printed by the
/// test so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn from_time() -> Rng {
        let seed = std::env::var("HARUN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        println!("random seed {seed} (HARUN_TEST_SEED={seed} replays it)");
        Rng(seed)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// Writes a datagram to a container's notify socket, as a process inside would.
pub fn notify(root: &Path, id: &str, message: &str) {
    use std::os::unix::net::UnixDatagram;
    let path = root.join(".supervise").join(id).join("notify/notify.sock");
    let sock = UnixDatagram::unbound().expect("socket");
    sock.send_to(message.as_bytes(), &path)
        .unwrap_or_else(|e| panic!("send to {}: {e}", path.display()));
}
