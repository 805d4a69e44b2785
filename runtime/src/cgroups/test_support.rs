//! A tempdir standing in for a cgroup2 mount in unit tests: plain files where the kernel
//! would have cgroup files (a write replaces a file's content, as `echo > file` would).

use std::fs;
use std::path::{Path, PathBuf};

/// Every controller a full cgroup v2 kernel offers.
pub const ALL: &str = "cpuset cpu io memory hugetlb pids rdma misc\n";

pub struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    /// A fresh root with `cgroup.controllers` (all of them), an empty
    /// `cgroup.subtree_control` and `cgroup.procs`.
    pub fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("harun-cgfx-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let fx = Fixture { dir };
        fx.cgroup("");
        fx
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Make the cgroup directory `rel` with the core files.
    pub fn cgroup(&self, rel: &str) {
        fs::create_dir_all(self.dir.join(rel)).unwrap();
        for (f, v) in [
            ("cgroup.controllers", ALL),
            ("cgroup.subtree_control", ""),
            ("cgroup.procs", ""),
        ] {
            self.write(&format!("{rel}/{f}"), v);
        }
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.dir.join(rel.trim_start_matches('/'));
        fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    pub fn read(&self, rel: &str) -> String {
        let p = self.dir.join(rel.trim_start_matches('/'));
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
