//! /proc/PID/mountinfo as tests look at it, for leak checks on the host and for tests that
//! read a container's own mountinfo from its output: harun_runtime::mountinfo's parser,
//! its lines as owned entries with the options split.

use std::fs;
use std::path::Path;

/// One line of mountinfo (proc(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    /// The root of the mount within its filesystem (field 4).
    pub root: String,
    pub mount_point: String,
    /// Per-mount options: rw/ro, nosuid, nodev, noexec, relatime...
    pub options: Vec<String>,
    /// Optional fields: shared:N, master:N, propagate_from:N, unbindable.
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options: mode=755, size=65536k, gid=5...
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// Whether `opt` is among the per-mount or the superblock options.
    pub fn has(&self, opt: &str) -> bool {
        self.options
            .iter()
            .chain(&self.super_options)
            .any(|o| o == opt)
    }

    /// Whether the mount is read-only.
    pub fn is_ro(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }

    /// Propagation as the kernel shows it: "shared", "slave", "private" or "unbindable".
    pub fn propagation(&self) -> &'static str {
        let has = |p: &str| self.optional.iter().any(|o| o.starts_with(p));
        if has("unbindable") {
            "unbindable"
        } else if has("shared:") {
            "shared"
        } else if has("master:") {
            "slave"
        } else {
            "private"
        }
    }
}

/// Parses mountinfo text (with the runtime's parser); malformed lines are skipped (lines
/// from a container's output may be mixed with other text).
pub fn parse(text: &str) -> Vec<MountEntry> {
    harun_runtime::mountinfo::parse(text)
        .map(|m| MountEntry {
            mount_id: m.id,
            parent_id: m.parent,
            root: m.root.into_owned(),
            mount_point: m.mount_point.into_owned(),
            options: split_opts(m.options),
            optional: m.optional.split_whitespace().map(str::to_string).collect(),
            fstype: m.fstype.to_string(),
            source: m.source.into_owned(),
            super_options: split_opts(m.super_options),
        })
        .collect()
}

fn split_opts(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

/// The mount table of this process.
pub fn current() -> Vec<MountEntry> {
    parse(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// Mount points (of this process's mount table) at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    let mut found: Vec<String> = current()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| *p == dir || p.starts_with(&prefix))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.len()));
    found
}

/// Mount entries whose mount point or source mentions `needle` (a test's temp dir name).
pub fn mounts_mentioning(needle: &str) -> Vec<MountEntry> {
    current()
        .into_iter()
        .filter(|m| {
            m.mount_point.contains(needle) || m.source.contains(needle) || m.root.contains(needle)
        })
        .collect()
}

/// The entry for `mount_point` (the last one, i.e. the visible mount, if stacked).
pub fn find<'a>(mounts: &'a [MountEntry], mount_point: &str) -> Option<&'a MountEntry> {
    mounts.iter().rev().find(|m| m.mount_point == mount_point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_with_optional_fields_and_escapes() {
        let text = "\
36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue
22 1 0:21 / /dev rw,nosuid,relatime shared:2 - tmpfs tmpfs rw,size=65536k,mode=755
not a mountinfo line
";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, "/mnt two");
        assert_eq!(m[0].root, "/mnt1");
        assert_eq!(m[0].propagation(), "slave");
        assert_eq!(m[0].fstype, "ext3");
        assert!(m[0].has("noatime") && m[0].has("errors=continue"));
        assert_eq!(m[1].propagation(), "shared");
        assert!(m[1].has("nosuid") && m[1].has("mode=755") && !m[1].is_ro());
        assert_eq!(find(&m, "/dev").map(|e| e.mount_id), Some(22));
    }
}
