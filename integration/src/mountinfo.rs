//! /proc/PID/mountinfo parsing, for leak checks on the host and for tests that read a
//! container's own mountinfo from its output.

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

/// Parses mountinfo text; malformed lines are skipped (lines from a container's output may
/// be mixed with other text).
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let mount_id = l.next()?.parse().ok()?;
    let parent_id = l.next()?.parse().ok()?;
    let _dev = l.next()?;
    let root = unescape(l.next()?);
    let mount_point = unescape(l.next()?);
    let options = split_opts(l.next()?);
    let optional = l.map(str::to_string).collect();
    let mut r = right.splitn(3, ' ');
    let fstype = r.next()?.to_string();
    let source = unescape(r.next()?);
    let super_options = split_opts(r.next().unwrap_or(""));
    Some(MountEntry {
        mount_id,
        parent_id,
        root,
        mount_point,
        options,
        optional,
        fstype,
        source,
        super_options,
    })
}

fn split_opts(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
