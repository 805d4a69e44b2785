//! memory: limit → memory.max, reservation → memory.low, swap → memory.swap.max (converted:
//! OCI's swap is memory+swap). Fields cgroup v2 cannot express are refused.

use oci_spec::runtime::LinuxResources;

use super::{field, limit, no_v2_equivalent, Controller};
use crate::cgroups::resources::Plan;
use crate::{Error, Result};

pub(crate) struct Memory;

impl Controller for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn plan(&self, r: &LinuxResources, plan: &mut Plan) -> Result<()> {
        let Some(m) = r.memory() else { return Ok(()) };
        #[allow(deprecated)] // kernel memory limits: gone from the kernel since 5.4
        let kernel = m.kernel();
        let refused = [
            (
                kernel.is_some_and(|v| v != 0),
                "kernel",
                "kernel memory limits were removed from the kernel",
            ),
            (
                m.kernel_tcp().is_some_and(|v| v != 0),
                "kernelTCP",
                "tcp memory is part of memory.max",
            ),
            (
                m.swappiness().is_some(),
                "swappiness",
                "there is no per-cgroup swappiness",
            ),
            (
                m.disable_oom_killer() == Some(true),
                "disableOOMKiller",
                "the OOM killer cannot be disabled per cgroup",
            ),
            (
                m.use_hierarchy() == Some(false),
                "useHierarchy",
                "cgroup v2 is always hierarchical",
            ),
        ];
        if let Some((_, name, why)) = refused.iter().find(|(set, _, _)| *set) {
            return Err(no_v2_equivalent(&field("memory", name), why));
        }
        let mem = m.limit().unwrap_or(0);
        let max = limit(&field("memory", "limit"), mem)?;
        if let Some(swap) = m.swap() {
            let f = field("memory", "swap");
            if let Some(v) = swap_to_v2(swap, mem).map_err(|why| Error::spec(&f, why))? {
                plan.push(Some("memory"), "memory.swap.max", v, f);
            }
        }
        if let Some(v) = max {
            plan.push(Some("memory"), "memory.max", v, field("memory", "limit"));
        }
        let f = field("memory", "reservation");
        if let Some(v) = limit(&f, m.reservation().unwrap_or(0))? {
            plan.push(Some("memory"), "memory.low", v, f);
        }
        Ok(())
    }
}

/// OCI `memory.swap` (memory+swap, as cgroup v1's memsw) → cgroup v2 memory.swap.max (swap
/// alone), given the memory limit. None = leave memory.swap.max alone.
///
/// Source: opencontainers/cgroups `ConvertMemorySwapToCgroupV2Value` (runc, crun): -1 is
/// no limit; 0 is not set, except that memory -1 with swap unset means both unlimited;
/// with memory unlimited swap is taken as is; otherwise swap - memory, so swap == memory
/// disables swap ("0").
pub fn swap_to_v2(swap: i64, memory: i64) -> std::result::Result<Option<String>, String> {
    match (swap, memory) {
        (0, -1) | (-1, _) => Ok(Some("max".into())),
        (0, _) => Ok(None),
        (s, _) if s < -1 => Err(format!("{s} is not a limit (use -1 for none)")),
        (s, -1) => Ok(Some(s.to_string())),
        (_, 0) => Err("a swap limit needs memory.limit (swap is memory+swap)".into()),
        (_, m) if m < 0 => Err(format!("memory.limit {m} is not a limit")),
        (s, m) if s < m => Err(format!(
            "{s} is below memory.limit {m} (swap is the memory+swap limit)"
        )),
        (s, m) => Ok(Some((s - m).to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_converts_as_in_runc() {
        // (swap, memory) -> memory.swap.max; the table of opencontainers/cgroups
        // TestConvertMemorySwapToCgroupV2Value, with None for "leave it".
        let cases: &[(i64, i64, Option<&str>)] = &[
            (0, 0, None),
            (-1, 0, Some("max")),
            (-1, -1, Some("max")),
            (0, -1, Some("max")),
            (-1, 1000, Some("max")),
            (1000, 1000, Some("0")),
            (500, 200, Some("300")),
            (300, -1, Some("300")),
            (0, 1000, None),
        ];
        for (swap, mem, want) in cases {
            let got = swap_to_v2(*swap, *mem).unwrap();
            assert_eq!(got.as_deref(), *want, "swap {swap} memory {mem}");
        }
        for (swap, mem) in [(-2, 0), (300, 400), (300, 0), (300, -5)] {
            assert!(swap_to_v2(swap, mem).is_err(), "swap {swap} memory {mem}");
        }
    }
}
