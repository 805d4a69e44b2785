//! `unified`: cgroup v2 files written verbatim, after every typed field. Keys are checked
//! (a file name `controller.name`: no `/`, no `..`, nothing that moves or kills processes);
//! that the file exists is checked against the cgroup before the first write.

use oci_spec::runtime::LinuxResources;

use super::Controller;
use crate::cgroups::resources::Plan;
use crate::{Error, Result};

pub(crate) struct Unified;

/// Core files a container config must not write: they move or kill processes.
const REFUSED: &[&str] = &["cgroup.procs", "cgroup.threads", "cgroup.kill"];

impl Controller for Unified {
    fn name(&self) -> &'static str {
        "unified"
    }

    fn plan(&self, r: &LinuxResources, plan: &mut Plan) -> Result<()> {
        let Some(map) = r.unified() else {
            return Ok(());
        };
        let mut keys: Vec<&String> = map.keys().collect();
        crate::sort::sort(&mut keys);
        for key in keys {
            let f = format!("linux.resources.unified[{key:?}]");
            let controller = controller_of(key).map_err(|why| Error::spec(&f, why))?;
            plan.push(controller, key.as_str(), map[key].as_str(), f);
        }
        Ok(())
    }
}

/// The controller a unified key belongs to (None for `cgroup.*`), or why it is refused.
fn controller_of(key: &str) -> std::result::Result<Option<&str>, String> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    };
    let Some((controller, rest)) = key.split_once('.') else {
        return Err("is not a cgroup file name (`controller.file`)".into());
    };
    if !name_ok(controller) || !name_ok(rest) || key.contains("..") || rest.ends_with('.') {
        return Err("is not a cgroup file name (no `/`, no `..`)".into());
    }
    if REFUSED.contains(&key) {
        return Err(format!("`{key}` cannot be set from a container's config"));
    }
    Ok((controller != "cgroup").then_some(controller))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_file_names_in_the_cgroup() {
        let ok: &[(&str, Option<&str>)] = &[
            ("memory.high", Some("memory")),
            ("memory.oom.group", Some("memory")),
            ("cpu.max.burst", Some("cpu")),
            ("misc.max", Some("misc")),
            ("cgroup.max.depth", None),
            ("io.bfq.weight", Some("io")),
            ("hugetlb.2MB.rsvd.max", Some("hugetlb")),
        ];
        for (key, want) in ok {
            assert_eq!(controller_of(key).unwrap(), *want, "{key}");
        }
        for bad in [
            "",
            "memory",
            ".max",
            "memory.",
            "../memory.max",
            "memory/../x",
            "memory..max",
            "a/b.c",
            "memory.max\n",
            "memory. max",
            "cgroup.procs",
            "cgroup.kill",
            "cgroup.threads",
            "/memory.max",
        ] {
            assert!(controller_of(bad).is_err(), "{bad:?}");
        }
    }
}
