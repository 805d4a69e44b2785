//! The measured scenarios. Each runs in rounds; a round measures every contender once, in an
//! order rotated by one each round (A B C, B C A, C A B, ...), so drift of the machine (other
//! load, caches, thermal) spreads over all contenders instead of favouring one.

use std::collections::HashMap;
use std::time::Instant;

use crate::setup::{Runtime, Spec, World};
use crate::spawn::{reap_strays, sample, wait4, wait4_any, wait_gone, Launch, Sample, R};

/// Samples of one measured quantity, per contender (in contender order).
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    /// Seconds for a whole batch rather than milliseconds per command.
    pub batch: bool,
    pub samples: Vec<(String, Vec<Sample>)>,
}

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup: usize,
    pub rounds: usize,
    /// Containers per batch (100 in the full run).
    pub batch: usize,
    pub batch_rounds: usize,
}

/// The floor of `run`: the same namespaces as the default spec, made by unshare(1), and an
/// exec of /bin/true.
const FLOOR_RUN: &[&str] = &[
    "unshare",
    "--mount",
    "--uts",
    "--ipc",
    "--net",
    "--pid",
    "--fork",
    "--cgroup",
    "/bin/true",
];

/// Containers that must be force-deleted if a scenario fails half-way.
#[derive(Default)]
struct Live(Vec<(Runtime, String)>);

impl Live {
    fn add(&mut self, rt: &Runtime, id: &str) {
        self.0.push((rt.clone(), id.to_string()));
    }
    fn done(&mut self, rt: &Runtime, id: &str) {
        self.0.retain(|(r, i)| r.name != rt.name || i != id);
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        for (rt, id) in self.0.drain(..) {
            if let Err(e) = rt.delete_force(&id).run() {
                eprintln!("harun-bench: cleanup: {e}");
            }
        }
        reap_strays();
    }
}

/// Run `rounds` interleaved rounds over `n` contenders; `measure(contender, round)` returns
/// one sample per metric. Result: [metric][contender] -> samples (warm-up rounds dropped).
fn interleave(
    n: usize,
    metrics: usize,
    plan_warmup: usize,
    rounds: usize,
    mut measure: impl FnMut(usize, usize) -> R<Vec<Sample>>,
) -> R<Vec<Vec<Vec<Sample>>>> {
    let mut out = vec![vec![Vec::new(); n]; metrics];
    for round in 0..plan_warmup + rounds {
        for k in 0..n {
            let c = (k + round) % n;
            let samples = measure(c, round)?;
            reap_strays();
            if round >= plan_warmup {
                for (m, s) in samples.into_iter().enumerate() {
                    out[m][c].push(s);
                }
            }
        }
    }
    Ok(out)
}

fn names(w: &World, floor: bool) -> Vec<String> {
    let mut v: Vec<String> = w.runtimes.iter().map(|r| r.name.clone()).collect();
    if floor {
        v.push("floor".into());
    }
    v
}

fn rows(labels: &[&str], batch: bool, names: &[String], data: Vec<Vec<Vec<Sample>>>) -> Vec<Row> {
    labels
        .iter()
        .zip(data)
        .map(|(label, per)| Row {
            label: label.to_string(),
            batch,
            samples: names.iter().cloned().zip(per).collect(),
        })
        .collect()
}

/// `run` of /bin/true with `spec`; the floor is unshare(1).
pub fn run(w: &mut World, plan: &Plan, spec: Spec, label: &str) -> R<Vec<Row>> {
    let names = names(w, true);
    let rts = w.runtimes.clone();
    let bundles: Vec<_> = rts
        .iter()
        .map(|r| w.bundle(spec, &r.name, 0))
        .collect::<R<_>>()?;
    let floor = w.plain("floor", FLOOR_RUN);
    let mut live = Live::default();
    let data = interleave(names.len(), 1, plan.warmup, plan.rounds, |c, round| {
        let Some(rt) = rts.get(c) else {
            return Ok(vec![floor.run()?]);
        };
        let id = format!("r{round}-{:?}", spec).to_lowercase();
        live.add(rt, &id);
        let s = rt.run(&bundles[c], &id).run()?;
        live.done(rt, &id);
        Ok(vec![s])
    })?;
    Ok(rows(&[label], false, &names, data))
}

/// `create`, `start` and `delete` of a /bin/true container, each timed on its own.
pub fn phases(w: &mut World, plan: &Plan) -> R<Vec<Row>> {
    let names = names(w, false);
    let rts = w.runtimes.clone();
    let bundles: Vec<_> = rts
        .iter()
        .map(|r| w.bundle(Spec::Default, &r.name, 0))
        .collect::<R<_>>()?;
    let mut live = Live::default();
    let data = interleave(names.len(), 3, plan.warmup, plan.rounds, |c, round| {
        let rt = &rts[c];
        let id = format!("p{round}");
        let pid_file = w.pid_file(&format!("{}-{id}", rt.name));
        live.add(rt, &id);
        let create = rt.create(&bundles[c], &id, &pid_file).run()?;
        let pid = read_pid(&pid_file)?;
        let start = rt.start(&id).run()?;
        wait_gone(pid)?;
        let delete = rt.delete(&id).run()?;
        live.done(rt, &id);
        Ok(vec![create, start, delete])
    })?;
    Ok(rows(&["create", "start", "delete"], false, &names, data))
}

/// `exec` of /bin/true into a running container (one per runtime, running `sleep`); the
/// floor is nsenter(1) into every namespace of harun's container.
pub fn exec(w: &mut World, plan: &Plan) -> R<Vec<Row>> {
    let names = names(w, true);
    let rts = w.runtimes.clone();
    let mut live = Live::default();
    let mut pids = Vec::new();
    for rt in &rts {
        let bundle = w.bundle(Spec::Sleeper, &rt.name, 0)?;
        let id = "exec-target";
        let pid_file = w.pid_file(&format!("{}-{id}", rt.name));
        live.add(rt, id);
        rt.create(&bundle, id, &pid_file).run()?;
        rt.start(id).run()?;
        pids.push(read_pid(&pid_file)?);
    }
    let target = pids[0].to_string();
    let floor = w.plain(
        "floor",
        &["nsenter", "--target", &target, "--all", "/bin/true"],
    );
    let data = interleave(names.len(), 1, plan.warmup, plan.rounds, |c, _| {
        match rts.get(c) {
            Some(rt) => Ok(vec![rt.exec_true("exec-target").run()?]),
            None => Ok(vec![floor.run()?]),
        }
    })?;
    for (rt, pid) in rts.iter().zip(pids) {
        rt.delete_force("exec-target").run()?;
        wait_gone(pid)?;
        live.done(rt, "exec-target");
    }
    Ok(rows(&["exec"], false, &names, data))
}

/// `plan.batch` runs of /bin/true one after the other, and two at a time.
pub fn batches(w: &mut World, plan: &Plan) -> R<Vec<Row>> {
    let names = names(w, true);
    let rts = w.runtimes.clone();
    let mut bundles = HashMap::new();
    for rt in &rts {
        for slot in 0..2 {
            bundles.insert(
                (rt.name.clone(), slot),
                w.bundle(Spec::Default, &rt.name, slot)?,
            );
        }
    }
    let floor = w.plain("floor", FLOOR_RUN);
    let n = plan.batch;
    let launch = |c: usize, round: usize, i: usize, slot: usize| -> (Launch, Option<Owned>) {
        match rts.get(c) {
            Some(rt) => {
                let id = format!("b{round}-{i}");
                let l = rt.run(&bundles[&(rt.name.clone(), slot)], &id);
                (l, Some((rt.clone(), id)))
            }
            None => (floor.clone(), None),
        }
    };
    let data = interleave(names.len(), 2, 0, plan.batch_rounds, |c, round| {
        let seq = batch(n, 1, |i, slot| launch(c, round, i, slot))?;
        let par = batch(n, 2, |i, slot| launch(c, round, n + i, slot))?;
        Ok(vec![seq, par])
    })?;
    let labels = [
        format!("{n} × run, in sequence"),
        format!("{n} × run, 2 at a time"),
    ];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    Ok(rows(&labels, true, &names, data))
}

/// A container a command may leave behind: its runtime and ID.
type Owned = (Runtime, String);

/// Run `n` commands, `width` at a time; one sample: total wall time, summed CPU, max RSS.
/// On a failure the commands still running are waited for and their containers removed.
fn batch(
    n: usize,
    width: usize,
    mut launch: impl FnMut(usize, usize) -> (Launch, Option<Owned>),
) -> R<Sample> {
    let mut running: HashMap<i32, (usize, Launch, Option<Owned>)> = HashMap::new();
    let result = batch_in(n, width, &mut launch, &mut running);
    if result.is_err() {
        let mut live = Live::default();
        for (pid, (_, _, owned)) in running.drain() {
            let _ = wait4(pid);
            if let Some((rt, id)) = owned {
                live.add(&rt, &id);
            }
        }
    }
    result
}

fn batch_in(
    n: usize,
    width: usize,
    launch: &mut impl FnMut(usize, usize) -> (Launch, Option<Owned>),
    running: &mut HashMap<i32, (usize, Launch, Option<Owned>)>,
) -> R<Sample> {
    let t0 = Instant::now();
    let mut free: Vec<usize> = (0..width).rev().collect();
    let (mut next, mut done) = (0, 0);
    let mut total = Sample {
        wall: Default::default(),
        cpu: Default::default(),
        maxrss_kib: 0,
    };
    while done < n {
        while next < n {
            let Some(slot) = free.pop() else { break };
            let (l, owned) = launch(next, slot);
            let (pid, _) = l.spawn()?;
            running.insert(pid, (slot, l, owned));
            next += 1;
        }
        let (pid, status, ru) = wait4_any(-1)?;
        let Some((slot, l, _)) = running.remove(&pid) else {
            continue; // an orphaned container process reparented to us
        };
        l.check(status, 0)?;
        let s = sample(Default::default(), &ru);
        total.cpu += s.cpu;
        total.maxrss_kib = total.maxrss_kib.max(s.maxrss_kib);
        free.push(slot);
        done += 1;
    }
    total.wall = t0.elapsed();
    Ok(total)
}

fn read_pid(file: &std::path::Path) -> R<i32> {
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("read {}: {e}", file.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{}: not a pid: {text:?}", file.display()))
}
