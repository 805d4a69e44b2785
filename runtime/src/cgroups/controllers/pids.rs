//! pids: `pids.limit` → pids.max (0 or negative: no limit, `max`).

use oci_spec::runtime::LinuxResources;

use super::{field, Controller};
use crate::cgroups::resources::Plan;
use crate::Result;

pub(crate) struct Pids;

impl Controller for Pids {
    fn name(&self) -> &'static str {
        "pids"
    }

    fn plan(&self, r: &LinuxResources, plan: &mut Plan) -> Result<()> {
        if let Some(p) = r.pids() {
            let value = match p.limit() {
                l if l > 0 => l.to_string(),
                _ => "max".to_string(),
            };
            plan.push(Some("pids"), "pids.max", value, field("pids", "limit"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        for (json, want) in [("5", "5"), ("0", "max"), ("-1", "max")] {
            let r: LinuxResources =
                serde_json::from_str(&format!(r#"{{"pids": {{"limit": {json}}}}}"#)).unwrap();
            let mut p = Plan::default();
            Pids.plan(&r, &mut p).unwrap();
            assert_eq!(p.value("pids.max"), Some(want));
        }
    }
}
