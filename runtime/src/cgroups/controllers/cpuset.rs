//! cpuset: `cpu.cpus` → cpuset.cpus, `cpu.mems` → cpuset.mems.

use oci_spec::runtime::LinuxResources;

use super::{field, Controller};
use crate::cgroups::resources::Plan;
use crate::{Error, Result};

pub(crate) struct Cpuset;

impl Controller for Cpuset {
    fn name(&self) -> &'static str {
        "cpuset"
    }

    fn plan(&self, r: &LinuxResources, plan: &mut Plan) -> Result<()> {
        let Some(cpu) = r.cpu() else { return Ok(()) };
        for (name, file, value) in [
            ("cpus", "cpuset.cpus", cpu.cpus()),
            ("mems", "cpuset.mems", cpu.mems()),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                let f = field("cpu", name);
                check_list(&f, v)?;
                plan.push(Some("cpuset"), file, v, f);
            }
        }
        Ok(())
    }
}

/// A kernel list: `0-3,5,7-8`, each range ascending.
fn check_list(field: &str, list: &str) -> Result<()> {
    let number = |s: &str| !s.is_empty() && s.len() < 8 && s.bytes().all(|b| b.is_ascii_digit());
    let ok = list.split(',').all(|item| match item.split_once('-') {
        None => number(item),
        Some((a, b)) => number(a) && number(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
    });
    if ok {
        Ok(())
    } else {
        Err(Error::spec(
            field,
            format!("`{list}` is not a list like `0-3,5`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_checked() {
        for ok in ["0", "0-3", "0-3,5,7-8", "12", "1-1"] {
            check_list("f", ok).unwrap();
        }
        for bad in ["", "a", "0-", "-1", "3-1", "0,,1", "0 1", "1-2-3", "0,"] {
            assert!(check_list("f", bad).is_err(), "{bad:?}");
        }
    }
}
