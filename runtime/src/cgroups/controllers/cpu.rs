//! cpu: shares → cpu.weight, quota/period → cpu.max, burst → cpu.max.burst, idle → cpu.idle.
//! The realtime fields have no cgroup v2 file.

use oci_spec::runtime::LinuxResources;

use super::{field, no_v2_equivalent, Controller};
use crate::cgroups::resources::Plan;
use crate::{Error, Result};

pub(crate) struct Cpu;

/// The kernel's default and bounds for cpu.max, in µs (cgroup-v2.rst "cpu.max";
/// kernel/sched/core.c: periods of 1 ms to 1 s, quotas of at least 1 ms).
const DEFAULT_PERIOD: u64 = 100_000;
const MIN_US: u64 = 1_000;
const MAX_PERIOD: u64 = 1_000_000;

impl Controller for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn plan(&self, r: &LinuxResources, plan: &mut Plan) -> Result<()> {
        let Some(cpu) = r.cpu() else { return Ok(()) };
        if cpu.realtime_runtime().is_some_and(|v| v != 0) {
            return Err(no_v2_equivalent(
                &field("cpu", "realtimeRuntime"),
                "cpu.rt_runtime_us exists only in cgroup v1",
            ));
        }
        if cpu.realtime_period().is_some_and(|v| v != 0) {
            return Err(no_v2_equivalent(
                &field("cpu", "realtimePeriod"),
                "cpu.rt_period_us exists only in cgroup v1",
            ));
        }
        if let Some(s) = cpu.shares().filter(|s| *s != 0) {
            plan.push(
                Some("cpu"),
                "cpu.weight",
                shares_to_weight(s).to_string(),
                field("cpu", "shares"),
            );
        }
        if cpu.quota().is_some() || cpu.period().is_some() {
            let f = if cpu.quota().is_some() {
                "quota"
            } else {
                "period"
            };
            plan.push(
                Some("cpu"),
                "cpu.max",
                cpu_max(cpu.quota(), cpu.period())?,
                field("cpu", f),
            );
        }
        if let Some(b) = cpu.burst() {
            plan.push(
                Some("cpu"),
                "cpu.max.burst",
                b.to_string(),
                field("cpu", "burst"),
            );
        }
        if let Some(i) = cpu.idle() {
            if !(0..=1).contains(&i) {
                return Err(Error::spec(
                    field("cpu", "idle"),
                    format!("{i} is not 0 or 1"),
                ));
            }
            plan.push(Some("cpu"), "cpu.idle", i.to_string(), field("cpu", "idle"));
        }
        Ok(())
    }
}

/// cpu.shares (cgroup v1: 2..=262144, default 1024) → cpu.weight (1..=10000, default 100).
///
/// The conversion runc (>= 1.3.2) and crun (>= 1.23) use, from opencontainers/cgroups
/// `ConvertCPUSharesToCgroupV2Value` (runc PR #4785, crun issue #1721): a quadratic in log2
/// space through (2, 1), (1024, 100) and (262144, 10000). It replaced the linear
/// `1 + (shares - 2) * 9999 / 262142`, which put the default 1024 shares at weight 39.
/// 0 means "not set" and stays 0.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// cpu.max from OCI quota and period (µs): "QUOTA PERIOD"; a quota of 0 or -1 is `max`
/// (unlimited), a missing period is the kernel's default 100 ms (runc fs2 `setCpu`).
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Result<String> {
    let period = match period {
        None | Some(0) => DEFAULT_PERIOD,
        Some(p) if (MIN_US..=MAX_PERIOD).contains(&p) => p,
        Some(p) => {
            return Err(Error::spec(
                field("cpu", "period"),
                format!("{p} µs is outside the kernel's {MIN_US}..={MAX_PERIOD}"),
            ))
        }
    };
    let quota = match quota {
        None | Some(0) | Some(-1) => "max".to_string(),
        Some(q) if q >= MIN_US as i64 => q.to_string(),
        Some(q) => {
            return Err(Error::spec(
                field("cpu", "quota"),
                format!("{q} µs is below the kernel's minimum of {MIN_US} (or -1 for none)"),
            ))
        }
    };
    Ok(format!("{quota} {period}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_as_in_runc_and_crun() {
        // Table from opencontainers/cgroups utils_test.go, plus points on the curve.
        let cases: &[(u64, u64)] = &[
            (0, 0),
            (1, 1),
            (2, 1),
            (3, 2),
            (512, 59),
            (1024, 100),
            (2048, 174),
            (262_143, 10_000),
            (262_144, 10_000),
            (262_145, 10_000),
        ];
        for (shares, weight) in cases {
            assert_eq!(shares_to_weight(*shares), *weight, "shares {shares}");
        }
        // Monotonic and in range everywhere.
        let mut last = 0;
        for s in (2..262_144).step_by(97) {
            let w = shares_to_weight(s);
            assert!((1..=10_000).contains(&w) && w >= last, "{s} -> {w}");
            last = w;
        }
    }

    #[test]
    fn cpu_max_values() {
        let cases: &[(Option<i64>, Option<u64>, &str)] = &[
            (Some(50_000), Some(100_000), "50000 100000"),
            (Some(50_000), None, "50000 100000"),
            (None, Some(20_000), "max 20000"),
            (Some(-1), Some(20_000), "max 20000"),
            (Some(0), None, "max 100000"),
            (Some(250_000), Some(100_000), "250000 100000"),
            (Some(1_000), Some(1_000_000), "1000 1000000"),
        ];
        for (q, p, want) in cases {
            assert_eq!(cpu_max(*q, *p).unwrap(), *want, "{q:?} {p:?}");
        }
        assert!(cpu_max(Some(999), None).is_err());
        assert!(cpu_max(Some(-2), None).is_err());
        assert!(cpu_max(None, Some(999)).is_err());
        assert!(cpu_max(None, Some(1_000_001)).is_err());
    }
}
