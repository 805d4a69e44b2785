//! Container statistics from the cgroup's files, in runc's `events --stats` shape (runc
//! types/events.go `Stats`, as containerd's go-runc reads it): cpu.stat, memory.current /
//! max / peak / stat / events, memory.swap.*, pids.current / max, io.stat, hugetlb.*.
//! A section whose controller is not enabled is left out.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::cgroup::Cgroup;
use crate::Result;

/// The stats event runc prints: `{"type": "stats", "id": ID, "data": {...}}`.
pub fn event(cg: &Cgroup, id: &str) -> Result<Value> {
    Ok(json!({"type": "stats", "id": id, "data": stats(cg)?}))
}

/// runc's `types.Stats` for the cgroup.
pub fn stats(cg: &Cgroup) -> Result<Value> {
    let mut data = Map::new();
    if let Some(cpu) = cg.keyed("cpu.stat")? {
        data.insert("cpu".into(), cpu_stats(&cpu));
    }
    if let Some(cpuset) = cpuset_stats(cg)? {
        data.insert("cpuset".into(), cpuset);
    }
    if let Some(mem) = memory_stats(cg)? {
        data.insert("memory".into(), mem);
    }
    if let Some(current) = cg.read_opt("pids.current")? {
        let limit = cg.read_opt("pids.max")?.map_or(0, |m| limit_value(&m, 0));
        data.insert(
            "pids".into(),
            json!({"current": number(&current), "limit": limit}),
        );
    }
    let io = cg.read_opt("io.stat")?.unwrap_or_default();
    data.insert("blkio".into(), io_stats(&io));
    data.insert("hugetlb".into(), hugetlb_stats(cg)?);
    data.insert("intel_rdt".into(), json!({}));
    data.insert("network_interfaces".into(), Value::Null);
    Ok(Value::Object(data))
}

/// cpu.stat (µs) → runc's cpu section (ns).
pub fn cpu_stats(s: &BTreeMap<String, u64>) -> Value {
    let ns = |k: &str| s.get(k).copied().unwrap_or(0).saturating_mul(1000);
    let n = |k: &str| s.get(k).copied().unwrap_or(0);
    json!({
        "usage": {"total": ns("usage_usec"), "kernel": ns("system_usec"), "user": ns("user_usec")},
        "throttling": {
            "periods": n("nr_periods"),
            "throttledPeriods": n("nr_throttled"),
            "throttledTime": ns("throttled_usec"),
        }
    })
}

fn cpuset_stats(cg: &Cgroup) -> Result<Option<Value>> {
    let Some(cpus) = cg.read_opt("cpuset.cpus.effective")? else {
        return Ok(None);
    };
    let mems = cg.read_opt("cpuset.mems.effective")?.unwrap_or_default();
    Ok(Some(json!({
        "cpus": parse_list(&cpus), "mems": parse_list(&mems),
        "cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
        "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0,
        "sched_load_balance": 0, "sched_relax_domain_level": 0
    })))
}

fn memory_stats(cg: &Cgroup) -> Result<Option<Value>> {
    let Some(current) = cg.read_opt("memory.current")? else {
        return Ok(None);
    };
    let usage = number(&current);
    let limit = cg
        .read_opt("memory.max")?
        .map_or(u64::MAX, |m| limit_value(&m, u64::MAX));
    let raw = cg.keyed("memory.stat")?.unwrap_or_default();
    let events = cg.keyed("memory.events")?.unwrap_or_default();
    let peak = cg.read_opt("memory.peak")?.map_or(0, |p| number(&p));
    // As runc: swap is reported as memory+swap, the way cgroup v1 did.
    let swap_usage = cg
        .read_opt("memory.swap.current")?
        .map_or(0, |s| number(&s));
    let swap_limit = match cg.read_opt("memory.swap.max")? {
        Some(m) => match limit_value(&m, u64::MAX) {
            u64::MAX => u64::MAX,
            s => s.saturating_add(limit),
        },
        None => 0,
    };
    Ok(Some(json!({
        "cache": raw.get("file").copied().unwrap_or(0),
        "usage": {"limit": limit, "usage": usage, "max": peak,
                  "failcnt": events.get("max").copied().unwrap_or(0)},
        "swap": {"limit": swap_limit, "usage": swap_usage.saturating_add(usage), "failcnt": 0},
        "kernel": {"limit": 0, "failcnt": 0},
        "kernelTCP": {"limit": 0, "failcnt": 0},
        "raw": raw,
        "event_count": events,
    })))
}

/// io.stat → runc's blkio tables: bytes (rbytes/wbytes) and operations (rios/wios).
pub fn io_stats(text: &str) -> Value {
    let mut bytes = Vec::new();
    let mut ops = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in fields {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (table, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ops, "Read"),
                "wios" => (&mut ops, "Write"),
                _ => continue,
            };
            table.push(json!({"major": major, "minor": minor, "op": op, "value": value}));
        }
    }
    let mut out = Map::new();
    if !bytes.is_empty() {
        out.insert("ioServiceBytesRecursive".into(), Value::Array(bytes));
    }
    if !ops.is_empty() {
        out.insert("ioServicedRecursive".into(), Value::Array(ops));
    }
    Value::Object(out)
}

/// hugetlb.<size>.current and .events (max) per page size.
fn hugetlb_stats(cg: &Cgroup) -> Result<Value> {
    let mut out = Map::new();
    let Ok(entries) = std::fs::read_dir(cg.path()) else {
        return Ok(Value::Object(out));
    };
    let mut sizes: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            Some(
                n.strip_prefix("hugetlb.")?
                    .strip_suffix(".current")?
                    .to_string(),
            )
        })
        .filter(|s| !s.contains('.'))
        .collect();
    crate::sort::sort(&mut sizes);
    for size in sizes {
        let usage = cg
            .read_opt(&format!("hugetlb.{size}.current"))?
            .map_or(0, |v| number(&v));
        let failcnt = cg
            .keyed(&format!("hugetlb.{size}.events"))?
            .and_then(|e| e.get("max").copied())
            .unwrap_or(0);
        out.insert(size, json!({"usage": usage, "failcnt": failcnt}));
    }
    Ok(Value::Object(out))
}

fn number(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

/// A `*.max` value: `max` is `unlimited`, else the number.
pub fn limit_value(text: &str, unlimited: u64) -> u64 {
    match text.trim() {
        "max" => unlimited,
        v => v.parse().unwrap_or(unlimited),
    }
}

/// A kernel list (`0-2,5`) as its numbers.
pub fn parse_list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for item in text.trim().split(',').filter(|s| !s.is_empty()) {
        let (a, b) = item.split_once('-').unwrap_or((item, item));
        if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
            out.extend(a..=b.min(a.saturating_add(4096)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::cgroup::parse_keyed;

    #[test]
    fn cpu_stat_in_nanoseconds() {
        let s = parse_keyed(
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 3\n\
             throttled_usec 42\n",
        );
        assert_eq!(
            cpu_stats(&s),
            json!({"usage": {"total": 1_500_000, "kernel": 500_000, "user": 1_000_000},
                   "throttling": {"periods": 10, "throttledPeriods": 3, "throttledTime": 42_000}})
        );
    }

    #[test]
    fn io_stat_tables() {
        let v =
            io_stats("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=1\n");
        assert_eq!(
            v["ioServiceBytesRecursive"],
            json!([{"major": 8, "minor": 0, "op": "Read", "value": 4096},
                   {"major": 8, "minor": 0, "op": "Write", "value": 8192},
                   {"major": 253, "minor": 1, "op": "Read", "value": 1}])
        );
        assert_eq!(v["ioServicedRecursive"].as_array().unwrap().len(), 2);
        assert_eq!(io_stats(""), json!({}));
    }

    #[test]
    fn values_and_lists() {
        assert_eq!(limit_value("max\n", 7), 7);
        assert_eq!(limit_value("100\n", 7), 100);
        assert_eq!(parse_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_list(""), Vec::<u16>::new());
    }

    #[test]
    fn stats_from_a_fixture() {
        let fx = crate::cgroups::test_support::Fixture::new("stats");
        fx.write("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\n");
        fx.write("memory.current", "4096\n");
        fx.write("memory.max", "max\n");
        fx.write("memory.stat", "anon 1024\nfile 2048\n");
        fx.write("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n");
        fx.write("pids.current", "3\n");
        fx.write("pids.max", "10\n");
        fx.write("hugetlb.2MB.current", "0\n");
        let cg = Cgroup::open(fx.path()).unwrap();
        let e = event(&cg, "c1").unwrap();
        assert_eq!(e["type"], "stats");
        assert_eq!(e["id"], "c1");
        let d = &e["data"];
        assert_eq!(d["cpu"]["usage"]["total"], 10_000);
        assert_eq!(d["memory"]["usage"]["usage"], 4096);
        assert_eq!(d["memory"]["usage"]["limit"], u64::MAX);
        assert_eq!(d["memory"]["usage"]["failcnt"], 2);
        assert_eq!(d["memory"]["cache"], 2048);
        assert_eq!(d["memory"]["raw"]["anon"], 1024);
        assert_eq!(d["memory"]["event_count"]["oom_kill"], 1);
        assert_eq!(d["pids"], json!({"current": 3, "limit": 10}));
        assert_eq!(d["hugetlb"], json!({"2MB": {"usage": 0, "failcnt": 0}}));
        assert_eq!(d["blkio"], json!({}));
    }
}
