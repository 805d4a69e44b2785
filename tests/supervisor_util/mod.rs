//! Helpers shared by the supervisor tests (`mod supervisor_util;` in each): running
//! supervised containers, reading their events and inspect output, waiting for them.
//!
//! Waiting here polls `harun events` / `harun inspect` (a test may poll; the supervisor
//! never does). Timing is always judged from the events' own timestamps.

#![allow(dead_code)]

use std::thread::sleep;
use std::time::{Duration, Instant};

use harun_integration::{Bundle, Harun, Out};
use serde_json::Value;

/// How long a test waits for a supervision to reach some point (2 loaded cores).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// `harun run --detach FLAGS --bundle B ID`, which must succeed.
pub fn run_detached(h: &Harun, id: &str, b: &Bundle, flags: &[&str]) -> Out {
    h.remember_id(id);
    h.cmd(["run", "--detach"])
        .args(flags.iter().copied())
        .arg("--bundle")
        .arg(b.dir())
        .arg(id)
        .run()
        .ok()
}

/// Every event of `id` so far (`harun events ID`).
pub fn events(h: &Harun, id: &str) -> Vec<Value> {
    let out = h.exec(&["events", id]).ok();
    parse_lines(&out.stdout)
}

pub fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}")))
        .collect()
}

/// The `event` field of each event.
pub fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The events of one kind.
pub fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// Polls the events until `done(events)` holds; returns them.
pub fn wait_events(h: &Harun, id: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ev = events(h, id);
        if done(&ev) {
            return ev;
        }
        assert!(
            Instant::now() < deadline,
            "{id}: no {what} within {PATIENCE:?}; events:\n{}",
            kinds(&ev).join(" ")
        );
        sleep(Duration::from_millis(20));
    }
}

/// Waits for the final event (`stopped` or `gave-up`) and returns all events.
pub fn wait_final(h: &Harun, id: &str) -> Vec<Value> {
    wait_events(h, id, "final event", |ev| {
        ev.last()
            .is_some_and(|e| e["event"] == "stopped" || e["event"] == "gave-up")
    })
}

/// Waits until `n` `started` events are recorded.
pub fn wait_starts(h: &Harun, id: &str, n: usize) -> Vec<Value> {
    wait_events(h, id, &format!("{n} starts"), |ev| {
        of_kind(ev, "started").len() >= n
    })
}

/// `harun inspect ID` as JSON.
pub fn inspect(h: &Harun, id: &str) -> Value {
    h.exec(&["inspect", id]).ok().json()
}

/// The supervisor's pid (while it lives).
pub fn supervisor_pid(h: &Harun, id: &str) -> i32 {
    let v = inspect(h, id);
    v["supervision"]["supervisorPid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no live supervisor: {v:#}")) as i32
}

/// Waits until `pid` is gone (or a zombie).
pub fn wait_gone(pid: i32) {
    let deadline = Instant::now() + PATIENCE;
    while harun_integration::procs::stat(pid).is_some_and(|(s, _)| s != 'Z' && s != 'X') {
        assert!(Instant::now() < deadline, "pid {pid} still alive");
        sleep(Duration::from_millis(20));
    }
}

/// Milliseconds between the first event of kind `a` at or after index `from` and the next
/// event of kind `b` after it.
pub fn gap_ms(events: &[Value], a: &str, b: &str, from: usize) -> (i64, usize) {
    let i = (from..events.len())
        .find(|&i| events[i]["event"] == a)
        .unwrap_or_else(|| panic!("no {a} after {from}: {}", kinds(events).join(" ")));
    let j = (i + 1..events.len())
        .find(|&j| events[j]["event"] == b)
        .unwrap_or_else(|| panic!("no {b} after {i}: {}", kinds(events).join(" ")));
    let t = |k: usize| events[k]["timeMs"].as_i64().expect("timeMs");
    (t(j) - t(i), j)
}

/// `harun delete --force ID`, then everything must be gone.
pub fn delete_and_check(h: &Harun, id: &str) {
    h.delete_force(id).ok();
    h.exec(&["inspect", id]).error(&["does not exist"]);
    h.assert_clean();
}
