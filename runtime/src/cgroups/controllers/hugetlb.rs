//! hugetlb: each `hugepageLimits` entry → hugetlb.<pageSize>.max.

use oci_spec::runtime::LinuxResources;

use super::Controller;
use crate::cgroups::resources::Plan;
use crate::{Error, Result};

pub(crate) struct Hugetlb;

impl Controller for Hugetlb {
    fn name(&self) -> &'static str {
        "hugetlb"
    }

    fn plan(&self, r: &LinuxResources, plan: &mut Plan) -> Result<()> {
        for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
            let f = format!("linux.resources.hugepageLimits[{i}]");
            let size = h.page_size();
            if !page_size_ok(size) {
                return Err(Error::spec(
                    format!("{f}.pageSize"),
                    format!("`{size}` is not a page size like `2MB` or `1GB`"),
                ));
            }
            let value = match h.limit() {
                -1 => "max".to_string(),
                l if l >= 0 => l.to_string(),
                l => {
                    return Err(Error::spec(
                        format!("{f}.limit"),
                        format!("{l} is not a limit"),
                    ))
                }
            };
            plan.push(Some("hugetlb"), format!("hugetlb.{size}.max"), value, f);
        }
        Ok(())
    }
}

/// The kernel's names: a number and KB, MB or GB (`2MB`, `1GB`, `64KB`).
fn page_size_ok(s: &str) -> bool {
    let Some(num) = ["KB", "MB", "GB"].iter().find_map(|u| s.strip_suffix(u)) else {
        return false;
    };
    !num.is_empty()
        && !num.starts_with('0')
        && num.len() < 6
        && num.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        for ok in ["2MB", "1GB", "64KB", "512MB"] {
            assert!(page_size_ok(ok), "{ok}");
        }
        for bad in ["", "2M", "MB", "02MB", "2mb", "../2MB", "2MB/x", "1TB"] {
            assert!(!page_size_ok(bad), "{bad}");
        }
    }
}
