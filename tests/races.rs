//! Races (issue 14, item 8): `run -d` and `delete --force` of the same IDs at once. A delete
//! only ever acts on the container whose lock it holds; a create racing a delete either wins
//! cleanly or says "already exists" (another create has the ID) and a start "does not exist"
//! (a delete got there first). Never an error from inside (EPIPE on the init channel, a
//! record or cgroup file gone, "exited before it was ready"), and nothing left at the end.
//!
//! Budget: [`DEFAULT_SECS`] seconds by default, `HARUN_RACE_SECS=N` for longer; the test
//! writes one line (not captured by the test harness) with what it covered.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use harun_integration::{harun, Harun, Out};

const DEFAULT_SECS: u64 = 12;
const IDS: usize = 3;
/// Per ID: this many threads loop on `run -d`, as many on `delete --force`.
const THREADS_EACH: usize = 2;

/// What `run -d` may answer while another `run -d` and a `delete --force` of its ID run:
/// "ok", "already exists", "does not exist"; anything else is an error.
fn check_run(out: &Out, id: &str) -> Result<&'static str, String> {
    if out.code == 0 {
        return Ok("ok");
    }
    let err = out.stderr.trim();
    let one_line = out.code == 1 && !err.is_empty() && !err.contains('\n');
    let clean = |msg: &str| one_line && err.contains(id) && err.contains(msg);
    if clean("already exists") {
        Ok("already exists")
    } else if clean("does not exist") {
        Ok("does not exist")
    } else {
        Err(format!("{out}"))
    }
}

/// Where harun puts container `id`'s cgroup by default.
fn cgroup_dir(id: &str) -> PathBuf {
    let unified = Path::new("/sys/fs/cgroup/unified");
    let mount = if unified.join("cgroup.procs").exists() {
        unified
    } else {
        Path::new("/sys/fs/cgroup")
    };
    mount.join("harun").join(id)
}

#[test]
fn concurrent_run_detached_and_delete_force_of_the_same_ids() {
    let h = harun!();
    let secs = std::env::var("HARUN_RACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let ids: Vec<String> = (0..IDS).map(|i| h.id(&format!("race{i}"))).collect();
    for id in &ids {
        h.remember_id(id);
    }
    let _cgroups = RemoveCgroups(&ids);
    let outcomes = Mutex::new(BTreeMap::<&str, usize>::new());
    let deletes = Mutex::new(0usize);
    let failures = Mutex::new(Vec::<String>::new());
    let end = Instant::now() + Duration::from_secs(secs);
    thread::scope(|s| {
        for id in &ids {
            for _ in 0..THREADS_EACH {
                s.spawn(|| {
                    while Instant::now() < end {
                        let out = run_detached(&h, id, b.dir());
                        match check_run(&out, id) {
                            Ok(what) => *outcomes.lock().unwrap().entry(what).or_default() += 1,
                            Err(e) => failures.lock().unwrap().push(e),
                        }
                    }
                });
                s.spawn(|| {
                    while Instant::now() < end {
                        let out = h.delete_force(id);
                        if out.code != 0 {
                            failures.lock().unwrap().push(format!("{out}"));
                        }
                        *deletes.lock().unwrap() += 1;
                        thread::sleep(Duration::from_millis(5));
                    }
                });
            }
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} commands failed in the race; the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(6)].join("\n")
    );
    for id in &ids {
        h.delete_force(id).ok();
        assert!(
            !cgroup_dir(id).exists(),
            "cgroup {} left",
            cgroup_dir(id).display()
        );
    }
    h.assert_clean();
    let outcomes = outcomes.into_inner().unwrap();
    let runs: usize = outcomes.values().sum();
    assert!(
        outcomes.get("ok").is_some_and(|&n| n > 0),
        "no run -d won a single race: {outcomes:?}"
    );
    let line = format!(
        "races: {secs}s, {IDS} IDs, {} threads: {runs} run -d ({}), {} delete --force; \
         HARUN_RACE_SECS=N for longer\n",
        IDS * THREADS_EACH * 2,
        outcomes
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        deletes.into_inner().unwrap(),
    );
    // Straight to the stream: the harness captures only print!/eprint!.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A failed race leaves no cgroup on the host (the runner removes the rest).
struct RemoveCgroups<'a>(&'a [String]);

impl Drop for RemoveCgroups<'_> {
    fn drop(&mut self) {
        for dir in self
            .0
            .iter()
            .map(|id| cgroup_dir(id))
            .filter(|d| d.exists())
        {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
            for _ in 0..100 {
                if std::fs::remove_dir(&dir).is_ok() {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn run_detached(h: &Harun, id: &str, bundle: &Path) -> Out {
    h.cmd(["run", "-d", "--bundle"]).arg(bundle).arg(id).run()
}
