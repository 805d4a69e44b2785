//! io (OCI `blockIO`): weight → io.weight (converted from the v1 range), weightDevice →
//! per-device io.weight lines, throttle*Device → io.max. Leaf weights have no v2 file.
//!
//! Unlike runc, harun always uses io.weight (not io.bfq.weight when the bfq scheduler is
//! loaded): the value in the cgroup then does not depend on the host's I/O scheduler.

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use super::{device, field, no_v2_equivalent, Controller};
use crate::cgroups::resources::Plan;
use crate::{Error, Result};

pub(crate) struct Io;

impl Controller for Io {
    fn name(&self) -> &'static str {
        "io"
    }

    fn plan(&self, r: &LinuxResources, plan: &mut Plan) -> Result<()> {
        let Some(b) = r.block_io() else { return Ok(()) };
        if b.leaf_weight().is_some() {
            return Err(no_v2_equivalent(
                &field("blockIO", "leafWeight"),
                "blkio.leaf_weight exists only in cgroup v1",
            ));
        }
        if let Some(w) = b.weight() {
            let f = field("blockIO", "weight");
            plan.push(Some("io"), "io.weight", weight(&f, w)?.to_string(), f);
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let f = field("blockIO", &format!("weightDevice[{i}]"));
            if d.leaf_weight().is_some() {
                return Err(no_v2_equivalent(
                    &format!("{f}.leafWeight"),
                    "blkio.leaf_weight_device exists only in cgroup v1",
                ));
            }
            if let Some(w) = d.weight() {
                let dev = device(&f, d.major(), d.minor())?;
                let value = format!("{dev} {}", weight(&format!("{f}.weight"), w)?);
                plan.push(Some("io"), "io.weight", value, f);
            }
        }
        let throttles = [
            (
                "throttleReadBpsDevice",
                "rbps",
                b.throttle_read_bps_device(),
            ),
            (
                "throttleWriteBpsDevice",
                "wbps",
                b.throttle_write_bps_device(),
            ),
            (
                "throttleReadIOPSDevice",
                "riops",
                b.throttle_read_iops_device(),
            ),
            (
                "throttleWriteIOPSDevice",
                "wiops",
                b.throttle_write_iops_device(),
            ),
        ];
        for (name, key, list) in throttles {
            for (i, t) in list.iter().flatten().enumerate() {
                let f = field("blockIO", &format!("{name}[{i}]"));
                plan.push(Some("io"), "io.max", io_max_line(&f, key, t)?, f);
            }
        }
        Ok(())
    }
}

/// A v1 weight (10..=1000; 0 = not set is refused here: say nothing instead) as io.weight.
fn weight(field: &str, w: u16) -> Result<u64> {
    if !(10..=1000).contains(&w) {
        return Err(Error::spec(
            field,
            format!("{w} is outside blkio's weight range 10..=1000"),
        ));
    }
    Ok(blkio_weight_to_io_weight(w))
}

/// blkio.weight (cgroup v1, 10..=1000) → io.weight (1..=10000), linearly:
/// `1 + (w - 10) * 9999 / 990`. Source: opencontainers/cgroups `ConvertBlkIOToIOWeightValue`
/// (runc, crun). 0 means "not set" and stays 0.
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    let w = u64::from(w.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// `MAJ:MIN key=rate`; a rate of 0 (v1: no throttle) is `max` (v2 refuses 0).
fn io_max_line(field: &str, key: &str, t: &LinuxThrottleDevice) -> Result<String> {
    let dev = device(field, t.major(), t.minor())?;
    let rate = match t.rate() {
        0 => "max".to_string(),
        r => r.to_string(),
    };
    Ok(format!("{dev} {key}={rate}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_weight_converts_as_in_runc() {
        // opencontainers/cgroups TestConvertBlkIOToIOWeightValue, plus the default 500.
        for (w, want) in [(0, 0), (10, 1), (500, 4950), (1000, 10_000)] {
            assert_eq!(blkio_weight_to_io_weight(w), want, "{w}");
        }
    }

    #[test]
    fn weights_outside_the_v1_range_are_refused() {
        assert!(weight("f", 9).is_err());
        assert!(weight("f", 1001).is_err());
        assert_eq!(weight("f", 100).unwrap(), 910);
    }
}
