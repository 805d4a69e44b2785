//! update: change a running container's cgroup resources. `--resources FILE` (or `-` for
//! stdin) is OCI `linux.resources` JSON (what containerd passes); runc's flags set single
//! fields (and override the file's). What is not given keeps its value.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use harun_runtime::cgroups::ops;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// OCI linux.resources JSON: a FILE, or `-` for stdin
    #[arg(long, short = 'r', value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit (a SIZE: 512m, 1g, bytes; -1: none)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory+swap limit (a SIZE; -1: unlimited swap)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit, memory.low (a SIZE)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// CPU shares (relative weight, converted to cpu.weight)
    #[arg(long, alias = "cpu-share", value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPU time per period in µs (-1: no limit)
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU period in µs
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPU burst in µs (cpu.max.burst)
    #[arg(long, value_name = "US")]
    pub cpu_burst: Option<u64>,
    /// 1: SCHED_IDLE for the cgroup (cpu.idle)
    #[arg(long, value_name = "0|1")]
    pub cpu_idle: Option<i64>,
    /// CPUs to run on (e.g. 0-2,4)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (0 or -1: none)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight, 10..=1000 (converted to io.weight)
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// Container ID
    pub id: String,
}

pub fn run(root: &StateRoot, args: &UpdateArgs) -> Result<i32> {
    let mut r = match &args.resources {
        Some(path) => read_resources(path)?,
        None => LinuxResources::default(),
    };
    apply_flags(args, &mut r)?;
    ops::update(root, &args.id, &r)?;
    Ok(0)
}

fn read_resources(path: &std::path::Path) -> Result<LinuxResources> {
    let mut text = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut text)
            .map_err(Error::io("read", "stdin"))?;
    } else {
        text = std::fs::read(path).map_err(Error::io("read", path))?;
    }
    serde_json::from_slice(&text).map_err(|e| {
        Error::InvalidArgument(format!(
            "--resources {}: not OCI linux.resources JSON: {e}",
            path.display()
        ))
    })
}

/// Lay runc's flags over `r`.
fn apply_flags(a: &UpdateArgs, r: &mut LinuxResources) -> Result<()> {
    let size = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| parse_size(s).map_err(|e| Error::InvalidArgument(format!("--{flag}: {e}"))))
            .transpose()
    };
    let (limit, swap, reservation) = (
        size("memory", &a.memory)?,
        size("memory-swap", &a.memory_swap)?,
        size("memory-reservation", &a.memory_reservation)?,
    );
    if limit.is_some() || swap.is_some() || reservation.is_some() {
        let mut m: LinuxMemory = r.memory().unwrap_or_default();
        m.set_limit(limit.or(m.limit()));
        m.set_swap(swap.or(m.swap()));
        m.set_reservation(reservation.or(m.reservation()));
        r.set_memory(Some(m));
    }
    let cpu_set = a.cpu_shares.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpu_burst.is_some()
        || a.cpu_idle.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some();
    if cpu_set {
        let mut c: LinuxCpu = r.cpu().clone().unwrap_or_default();
        c.set_shares(a.cpu_shares.or(c.shares()));
        c.set_quota(a.cpu_quota.or(c.quota()));
        c.set_period(a.cpu_period.or(c.period()));
        c.set_burst(a.cpu_burst.or(c.burst()));
        c.set_idle(a.cpu_idle.or(c.idle()));
        c.set_cpus(a.cpuset_cpus.clone().or(c.cpus().clone()));
        c.set_mems(a.cpuset_mems.clone().or(c.mems().clone()));
        r.set_cpu(Some(c));
    }
    if let Some(n) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(n);
        r.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        let mut b: LinuxBlockIo = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(())
}

/// A memory size in harun's grammar (`512m`, `1g`, bytes), or `-1`: no limit.
fn parse_size(s: &str) -> std::result::Result<i64, harun_runtime::units::Invalid> {
    if s == "-1" {
        return Ok(-1);
    }
    let bytes = harun_runtime::units::parse_size(s)?;
    i64::try_from(bytes).map_err(|_| harun_runtime::units::Invalid::new("size", s, "too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_and_no_limit() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1024", Some(1024)),
            ("-1", Some(-1)),
            ("512k", Some(512 << 10)),
            ("100M", Some(100 << 20)),
            ("1GiB", Some(1 << 30)),
            ("-2", None),
            ("1.5g", None),
            ("8p", Some(8 << 50)),
            ("8192p", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_size(s).ok(), *want, "{s:?}");
        }
    }

    #[test]
    fn flags_override_the_file() {
        let mut r: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 1000, "swap": 5000}, "cpu": {"shares": 2}}"#,
        )
        .unwrap();
        let a = UpdateArgs {
            resources: None,
            memory: Some("2k".into()),
            memory_swap: None,
            memory_reservation: None,
            cpu_shares: None,
            cpu_quota: Some(-1),
            cpu_period: None,
            cpu_burst: None,
            cpu_idle: None,
            cpuset_cpus: Some("0".into()),
            cpuset_mems: None,
            pids_limit: Some(50),
            blkio_weight: Some(300),
            id: "x".into(),
        };
        apply_flags(&a, &mut r).unwrap();
        let want: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 2048, "swap": 5000},
                "cpu": {"shares": 2, "quota": -1, "cpus": "0"},
                "pids": {"limit": 50}, "blockIO": {"weight": 300}}"#,
        )
        .unwrap();
        assert_eq!(r, want);
    }
}
