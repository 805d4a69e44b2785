//! The commands that act on a container's cgroup, by container ID: pause, resume, ps,
//! update, `events --stats` and `events`. Writers (pause, resume, update) hold the state
//! dir's lock; readers do not, and nothing holds it across a long wait (`events`).

use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, Spec};
use serde_json::Value;

use super::{devices, events, resources, stats, Cgroup, Hierarchy, Record};
use crate::state::{State, StateRoot, Status};
use crate::{Error, Result};

fn record(st: &State) -> Result<&Record> {
    st.cgroup.as_ref().ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "container `{}` has no cgroup (created by an older harun)",
            st.id
        ))
    })
}

fn refuse(id: &str, what: &str, status: Status) -> Error {
    Error::FailedPrecondition(format!("cannot {what} container `{id}`: it is {status}"))
}

/// Freeze every process of a running (or created) container; `state` then says "paused".
pub fn pause(root: &StateRoot, id: &str) -> Result<()> {
    let dir = root.lock(id)?;
    let st = dir.read()?;
    match st.status(dir.path()) {
        Status::Running | Status::Created => record(&st)?.cgroup()?.freeze(),
        status => Err(refuse(id, "pause", status)),
    }
}

/// Let a paused container run again.
pub fn resume(root: &StateRoot, id: &str) -> Result<()> {
    let dir = root.lock(id)?;
    let st = dir.read()?;
    match st.status(dir.path()) {
        Status::Paused => record(&st)?.cgroup()?.thaw(),
        status => Err(Error::FailedPrecondition(format!(
            "cannot resume container `{id}`: it is {status}, not paused"
        ))),
    }
}

/// The host pids of every process of the container (its cgroup and below), sorted; empty
/// when its cgroup is gone.
pub fn pids(root: &StateRoot, id: &str) -> Result<Vec<i32>> {
    let st = root.read(id)?;
    match record(&st)?.open()? {
        Some(cg) => cg.all_procs(),
        None => Ok(Vec::new()),
    }
}

fn live(root: &StateRoot, id: &str) -> Result<(State, Cgroup)> {
    let st = root.read(id)?;
    let status = st.status(&root.dir(id));
    if status == Status::Stopped {
        return Err(Error::FailedPrecondition(format!(
            "container `{id}` is not running"
        )));
    }
    let cg = record(&st)?.cgroup()?;
    Ok((st, cg))
}

/// One stats event in runc's `events --stats` format.
pub fn stats(root: &StateRoot, id: &str) -> Result<Value> {
    let (_, cg) = live(root, id)?;
    stats::event(&cg, id)
}

/// Stream stats (every `interval`) and OOM events until the container's cgroup empties.
pub fn events(
    root: &StateRoot,
    id: &str,
    interval: Duration,
    emit: &mut dyn FnMut(&Value) -> Result<()>,
) -> Result<()> {
    let (_, cg) = live(root, id)?;
    events::watch(&cg, id, interval, emit)
}

/// Change a running container's resources: `new` is laid over the resources it has (runc's
/// update semantics), the result validated as a whole, written, and kept in its state.
pub fn update(root: &StateRoot, id: &str, new: &LinuxResources) -> Result<()> {
    let dir = root.lock(id)?;
    let mut st = dir.read()?;
    let status = st.status(dir.path());
    if status == Status::Stopped {
        return Err(refuse(id, "update", status));
    }
    let rec = record(&st)?.clone();
    let current = st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let merged = merge(&current, new);
    let plan = resources::plan(&merged)?;
    let rules = match new.devices() {
        Some(_) => Some(devices::rules(merged.devices().as_deref())?),
        None => None,
    };
    let cg = rec.cgroup()?;
    check_usage(&cg, new, &merged)?;
    enable(&rec, &plan)?;
    resources::apply(&cg, &plan)?;
    if let Some(rules) = rules {
        devices::apply(&cg, &rules)?;
    }
    set_resources(&mut st.config, merged);
    dir.write(&st)
}

/// `checkBeforeUpdate`: refuse a memory limit below what the container uses now.
fn check_usage(cg: &Cgroup, new: &LinuxResources, merged: &LinuxResources) -> Result<()> {
    let asked = new.memory().as_ref().and_then(|m| m.check_before_update()) == Some(true);
    let limit = merged
        .memory()
        .as_ref()
        .and_then(|m| m.limit())
        .unwrap_or(0);
    if !asked || limit <= 0 {
        return Ok(());
    }
    let used: i64 = cg
        .read_opt("memory.current")?
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if limit < used {
        return Err(Error::FailedPrecondition(format!(
            "linux.resources.memory.limit: {limit} is below the {used} bytes the container uses \
             (checkBeforeUpdate)"
        )));
    }
    Ok(())
}

/// Enable what the new plan needs down to the cgroup (a controller first asked for now).
fn enable(rec: &Record, plan: &resources::Plan) -> Result<()> {
    let h = Hierarchy::detect()?;
    let Ok(rel) = rec.path.strip_prefix(h.mount()) else {
        return Ok(());
    };
    let available = Cgroup::open(h.mount())?.controllers()?;
    h.enable(rel, plan, &available)
}

fn set_resources(spec: &mut Spec, r: LinuxResources) {
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_resources(Some(r));
    spec.set_linux(Some(linux));
}

/// `new` laid over `cur`: every field `new` sets replaces the old value; `unified` keys are
/// merged; lists (devices, throttles, hugepage limits) are replaced whole.
pub fn merge(cur: &LinuxResources, new: &LinuxResources) -> LinuxResources {
    let mut out = cur.clone();
    if let Some(n) = new.memory() {
        out.set_memory(Some(merge_memory(cur.memory().unwrap_or_default(), n)));
    }
    if let Some(n) = new.cpu() {
        out.set_cpu(Some(merge_cpu(cur.cpu().clone().unwrap_or_default(), n)));
    }
    if let Some(p) = new.pids() {
        out.set_pids(Some(*p));
    }
    if let Some(n) = new.block_io() {
        let b = merge_block_io(cur.block_io().clone().unwrap_or_default(), n);
        out.set_block_io(Some(b));
    }
    if new.hugepage_limits().is_some() {
        out.set_hugepage_limits(new.hugepage_limits().clone());
    }
    if new.network().is_some() {
        out.set_network(new.network().clone());
    }
    if new.rdma().is_some() {
        out.set_rdma(new.rdma().clone());
    }
    if let Some(n) = new.unified() {
        let mut u = cur.unified().clone().unwrap_or_default();
        u.extend(n.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.set_unified(Some(u));
    }
    if new.devices().is_some() {
        out.set_devices(new.devices().clone());
    }
    out
}

fn merge_memory(mut m: LinuxMemory, n: &LinuxMemory) -> LinuxMemory {
    m.set_limit(n.limit().or(m.limit()));
    m.set_reservation(n.reservation().or(m.reservation()));
    m.set_swap(n.swap().or(m.swap()));
    #[allow(deprecated)]
    m.set_kernel(n.kernel().or(m.kernel()));
    m.set_kernel_tcp(n.kernel_tcp().or(m.kernel_tcp()));
    m.set_swappiness(n.swappiness().or(m.swappiness()));
    m.set_disable_oom_killer(n.disable_oom_killer().or(m.disable_oom_killer()));
    m.set_use_hierarchy(n.use_hierarchy().or(m.use_hierarchy()));
    m.set_check_before_update(None);
    m
}

fn merge_cpu(mut c: LinuxCpu, n: &LinuxCpu) -> LinuxCpu {
    c.set_shares(n.shares().or(c.shares()));
    c.set_quota(n.quota().or(c.quota()));
    c.set_period(n.period().or(c.period()));
    c.set_burst(n.burst().or(c.burst()));
    c.set_idle(n.idle().or(c.idle()));
    c.set_realtime_runtime(n.realtime_runtime().or(c.realtime_runtime()));
    c.set_realtime_period(n.realtime_period().or(c.realtime_period()));
    c.set_cpus(n.cpus().clone().or(c.cpus().clone()));
    c.set_mems(n.mems().clone().or(c.mems().clone()));
    c
}

fn merge_block_io(mut b: LinuxBlockIo, n: &LinuxBlockIo) -> LinuxBlockIo {
    let or = |new: &Option<Vec<_>>, old: &Option<Vec<_>>| new.clone().or(old.clone());
    b.set_weight(n.weight().or(b.weight()));
    b.set_leaf_weight(n.leaf_weight().or(b.leaf_weight()));
    b.set_weight_device(n.weight_device().clone().or(b.weight_device().clone()));
    b.set_throttle_read_bps_device(or(
        n.throttle_read_bps_device(),
        b.throttle_read_bps_device(),
    ));
    b.set_throttle_write_bps_device(or(
        n.throttle_write_bps_device(),
        b.throttle_write_bps_device(),
    ));
    b.set_throttle_read_iops_device(or(
        n.throttle_read_iops_device(),
        b.throttle_read_iops_device(),
    ));
    b.set_throttle_write_iops_device(or(
        n.throttle_write_iops_device(),
        b.throttle_write_iops_device(),
    ));
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn update_lays_new_values_over_old_ones() {
        let cur = res(
            r#"{"memory": {"limit": 1000, "swap": 2000}, "cpu": {"shares": 512, "cpus": "0"},
                "pids": {"limit": 10}, "unified": {"memory.high": "900", "pids.max": "9"},
                "devices": [{"allow": false, "access": "rwm"}]}"#,
        );
        let new = res(
            r#"{"memory": {"limit": 1500, "checkBeforeUpdate": true}, "cpu": {"quota": 20000},
                "unified": {"memory.high": "1400"}, "blockIO": {"weight": 100}}"#,
        );
        let m = merge(&cur, &new);
        let want = res(r#"{"memory": {"limit": 1500, "swap": 2000},
                "cpu": {"shares": 512, "quota": 20000, "cpus": "0"},
                "pids": {"limit": 10}, "blockIO": {"weight": 100},
                "unified": {"memory.high": "1400", "pids.max": "9"},
                "devices": [{"allow": false, "access": "rwm"}]}"#);
        assert_eq!(m, want);
        // The merged whole is what gets validated and written.
        let plan = resources::plan(&m).unwrap();
        assert_eq!(plan.value("memory.max"), Some("1500"));
        assert_eq!(plan.value("memory.swap.max"), Some("500"));
        assert_eq!(plan.value("cpu.max"), Some("20000 100000"));
        assert_eq!(plan.value("memory.high"), Some("1400"));
        // Nothing new: nothing changes.
        assert_eq!(merge(&cur, &LinuxResources::default()), cur);
    }
}
