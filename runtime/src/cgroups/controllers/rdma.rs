//! rdma: each `rdma` entry → an rdma.max line `DEVICE hca_handle=N hca_object=M`.

use oci_spec::runtime::LinuxResources;

use super::Controller;
use crate::cgroups::resources::Plan;
use crate::{Error, Result};

pub(crate) struct Rdma;

impl Controller for Rdma {
    fn name(&self) -> &'static str {
        "rdma"
    }

    fn plan(&self, r: &LinuxResources, plan: &mut Plan) -> Result<()> {
        let Some(map) = r.rdma() else { return Ok(()) };
        let mut devices: Vec<_> = map.iter().collect();
        crate::sort::sort_by(&mut devices, |a, b| a.0 < b.0);
        for (dev, l) in devices {
            let f = format!("linux.resources.rdma[{dev:?}]");
            let bad = |c: char| c.is_whitespace() || c.is_control() || "/=".contains(c);
            if dev.is_empty() || dev.chars().any(bad) {
                return Err(Error::spec(f, "is not an RDMA device name"));
            }
            let mut line = dev.clone();
            if let Some(n) = l.hca_handles() {
                line.push_str(&format!(" hca_handle={n}"));
            }
            if let Some(n) = l.hca_objects() {
                line.push_str(&format!(" hca_object={n}"));
            }
            if line.len() > dev.len() {
                plan.push(Some("rdma"), "rdma.max", line, f);
            }
        }
        Ok(())
    }
}
