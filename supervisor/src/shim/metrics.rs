//! Task statistics as containerd's cgroup v2 metrics message (`io.containerd.cgroups.v2
//! .Metrics`, what `ctr task metrics` and the CRI's ContainerStats decode), read from the
//! container's cgroup files: cpu.stat, memory.current/max/peak/stat/events,
//! memory.swap.current/max, pids.current/max, io.stat, hugetlb.*.
//! A controller that is not enabled leaves its section out.

use std::collections::BTreeMap;

use containerd_shim_protos::cgroups_v2::metrics::{
    CPUStat, HugeTlbStat, IOEntry, IOStat, MemoryEvents, MemoryStat, Metrics, PidsStat,
};
use harun_runtime::cgroups::{parse_keyed, Cgroup};
use harun_runtime::Result;

/// The metrics of the cgroup `cg`.
pub fn read(cg: &Cgroup) -> Result<Metrics> {
    let mut m = Metrics::new();
    if let Some(current) = cg.read_opt("pids.current")? {
        let mut p = PidsStat::new();
        p.current = number(&current);
        p.limit = cg.read_opt("pids.max")?.map_or(0, |l| limit(&l, 0));
        m.pids = Some(p).into();
    }
    if let Some(cpu) = cg.keyed("cpu.stat")? {
        m.cpu = Some(cpu_stat(&cpu)).into();
    }
    if let Some(current) = cg.read_opt("memory.current")? {
        let stat = cg.keyed("memory.stat")?.unwrap_or_default();
        let mut mem = memory_stat(&stat);
        mem.usage = number(&current);
        mem.usage_limit = cg
            .read_opt("memory.max")?
            .map_or(u64::MAX, |l| limit(&l, u64::MAX));
        mem.max_usage = cg.read_opt("memory.peak")?.map_or(0, |p| number(&p));
        mem.swap_usage = cg
            .read_opt("memory.swap.current")?
            .map_or(0, |s| number(&s));
        mem.swap_limit = cg
            .read_opt("memory.swap.max")?
            .map_or(0, |l| limit(&l, u64::MAX));
        mem.swap_max_usage = cg.read_opt("memory.swap.peak")?.map_or(0, |p| number(&p));
        m.memory = Some(mem).into();
        if let Some(events) = cg.keyed("memory.events")? {
            m.memory_events = Some(memory_events(&events)).into();
        }
    }
    if let Some(io) = cg.read_opt("io.stat")? {
        let mut s = IOStat::new();
        s.usage = io_entries(&io);
        m.io = Some(s).into();
    }
    m.hugetlb = hugetlb(cg)?;
    Ok(m)
}

fn number(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

/// A limit file: a number, or `max` (= `unlimited`).
fn limit(text: &str, unlimited: u64) -> u64 {
    match text.trim() {
        "max" => unlimited,
        t => t.parse().unwrap_or(unlimited),
    }
}

fn cpu_stat(s: &BTreeMap<String, u64>) -> CPUStat {
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    let mut c = CPUStat::new();
    c.usage_usec = g("usage_usec");
    c.user_usec = g("user_usec");
    c.system_usec = g("system_usec");
    c.nr_periods = g("nr_periods");
    c.nr_throttled = g("nr_throttled");
    c.throttled_usec = g("throttled_usec");
    c.nr_bursts = g("nr_bursts");
    c.burst_usec = g("burst_usec");
    c
}

fn memory_stat(s: &BTreeMap<String, u64>) -> MemoryStat {
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    let mut m = MemoryStat::new();
    m.anon = g("anon");
    m.file = g("file");
    m.kernel_stack = g("kernel_stack");
    m.slab = g("slab");
    m.sock = g("sock");
    m.shmem = g("shmem");
    m.file_mapped = g("file_mapped");
    m.file_dirty = g("file_dirty");
    m.file_writeback = g("file_writeback");
    m.anon_thp = g("anon_thp");
    m.inactive_anon = g("inactive_anon");
    m.active_anon = g("active_anon");
    m.inactive_file = g("inactive_file");
    m.active_file = g("active_file");
    m.unevictable = g("unevictable");
    m.slab_reclaimable = g("slab_reclaimable");
    m.slab_unreclaimable = g("slab_unreclaimable");
    m.pgfault = g("pgfault");
    m.pgmajfault = g("pgmajfault");
    m.workingset_refault =
        g("workingset_refault").max(g("workingset_refault_anon") + g("workingset_refault_file"));
    m.workingset_activate =
        g("workingset_activate").max(g("workingset_activate_anon") + g("workingset_activate_file"));
    m.workingset_nodereclaim = g("workingset_nodereclaim");
    m.pgrefill = g("pgrefill");
    m.pgscan = g("pgscan");
    m.pgsteal = g("pgsteal");
    m.pgactivate = g("pgactivate");
    m.pgdeactivate = g("pgdeactivate");
    m.pglazyfree = g("pglazyfree");
    m.pglazyfreed = g("pglazyfreed");
    m.thp_fault_alloc = g("thp_fault_alloc");
    m.thp_collapse_alloc = g("thp_collapse_alloc");
    m
}

fn memory_events(s: &BTreeMap<String, u64>) -> MemoryEvents {
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    let mut e = MemoryEvents::new();
    e.low = g("low");
    e.high = g("high");
    e.max = g("max");
    e.oom = g("oom");
    e.oom_kill = g("oom_kill");
    e.oom_group_kill = g("oom_group_kill");
    e
}

/// io.stat: `MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. ...` per device.
fn io_entries(text: &str) -> Vec<IOEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        let kv: BTreeMap<&str, u64> = fields
            .filter_map(|f| f.split_once('='))
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect();
        let g = |k: &str| kv.get(k).copied().unwrap_or(0);
        let mut e = IOEntry::new();
        e.major = major;
        e.minor = minor;
        e.rbytes = g("rbytes");
        e.wbytes = g("wbytes");
        e.rios = g("rios");
        e.wios = g("wios");
        out.push(e);
    }
    out
}

/// hugetlb.SIZE.current / .max / .events (`max` = failcnt), per page size the cgroup has.
fn hugetlb(cg: &Cgroup) -> Result<Vec<HugeTlbStat>> {
    let mut sizes: Vec<String> = match std::fs::read_dir(cg.path()) {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| {
                n.strip_prefix("hugetlb.")?
                    .strip_suffix(".current")
                    .filter(|s| !s.contains('.'))
                    .map(str::to_string)
            })
            .collect(),
        Err(_) => return Ok(Vec::new()),
    };
    sizes.sort();
    let mut out = Vec::new();
    for size in sizes {
        let mut h = HugeTlbStat::new();
        h.current = cg
            .read_opt(&format!("hugetlb.{size}.current"))?
            .map_or(0, |v| number(&v));
        h.max = cg
            .read_opt(&format!("hugetlb.{size}.max"))?
            .map_or(0, |v| limit(&v, u64::MAX));
        h.failcnt = cg
            .read_opt(&format!("hugetlb.{size}.events"))?
            .map_or(0, |t| parse_keyed(&t).get("max").copied().unwrap_or(0));
        h.pagesize = size;
        out.push(h);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_stat_lines_become_entries() {
        let e = io_entries("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\nbad\n");
        assert_eq!(e.len(), 1);
        assert_eq!(
            (
                e[0].major,
                e[0].minor,
                e[0].rbytes,
                e[0].wbytes,
                e[0].rios,
                e[0].wios
            ),
            (8, 0, 4096, 8192, 1, 2)
        );
        assert_eq!(limit("max\n", 7), 7);
        assert_eq!(limit("100\n", 7), 100);
    }

    #[test]
    fn a_cgroup_dir_reads_as_metrics() {
        let dir = std::env::temp_dir().join(format!("harun-shim-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (f, text) in [
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
            ("cpu.stat", "usage_usec 100\nuser_usec 60\nsystem_usec 40\n"),
            ("memory.current", "4096\n"),
            ("memory.max", "8192\n"),
            ("memory.stat", "anon 1024\nfile 2048\n"),
            ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
            ("hugetlb.2MB.current", "0\n"),
            ("hugetlb.2MB.max", "max\n"),
            ("hugetlb.2MB.events", "max 0\n"),
        ] {
            std::fs::write(dir.join(f), text).unwrap();
        }
        let m = read(&Cgroup::open(&dir).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((m.pids.current, m.pids.limit), (3, 0));
        assert_eq!(m.cpu.usage_usec, 100);
        assert_eq!(
            (m.memory.usage, m.memory.usage_limit, m.memory.anon),
            (4096, 8192, 1024)
        );
        assert_eq!(m.memory_events.oom_kill, 1);
        assert!(m.io.is_none());
        assert_eq!(m.hugetlb.len(), 1);
        assert_eq!(m.hugetlb[0].pagesize, "2MB");
    }
}
