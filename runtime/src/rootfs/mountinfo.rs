//! The few facts harun needs from /proc/self/mountinfo: where the cgroup2 hierarchy is
//! mounted, and which mount holds the rootfs (and whether it is shared).
//!
//! Format: proc(5), "/proc/[pid]/mountinfo": `id parent major:minor root mountpoint options
//! [optional fields...] - fstype source superoptions`, paths with space, tab, newline and
//! backslash escaped as `\ooo`.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountInfo {
    pub mount_point: PathBuf,
    pub fstype: String,
    /// The optional fields include `shared:N` (a peer group member).
    pub shared: bool,
}

/// Read and parse /proc/self/mountinfo.
pub(crate) fn read() -> Result<Vec<MountInfo>> {
    let path = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
    Ok(parse(&text))
}

/// Parse mountinfo text; malformed lines are skipped.
pub(crate) fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let mut fields = line.split(' ');
    let mount_point = fields.nth(4)?;
    let _options = fields.next()?;
    let mut shared = false;
    for f in fields.by_ref() {
        if f == "-" {
            break;
        }
        shared |= f.starts_with("shared:");
    }
    let fstype = fields.next()?;
    Some(MountInfo {
        mount_point: PathBuf::from(unescape(mount_point)),
        fstype: fstype.to_string(),
        shared,
    })
}

/// Undo mountinfo's `\ooo` octal escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(v as u8);
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

/// The mount `path` lives on: the longest mount point that contains it (the last listed
/// when mounts are stacked). `path` must be canonical.
pub(crate) fn containing<'a>(mounts: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    let mut best: Option<&MountInfo> = None;
    for m in mounts.iter().filter(|m| path.starts_with(&m.mount_point)) {
        let longer = best.is_none_or(|b| {
            m.mount_point.components().count() >= b.mount_point.components().count()
        });
        if longer {
            best = Some(m);
        }
    }
    best
}

/// Where the host's cgroup2 hierarchy is mounted (`/sys/fs/cgroup` on a unified host,
/// `/sys/fs/cgroup/unified` on a hybrid one).
pub(crate) fn cgroup2(mounts: &[MountInfo]) -> Option<&Path> {
    mounts
        .iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| m.mount_point.as_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
24 27 0:6 / /dev rw,relatime shared:2 master:1 - devtmpfs devtmpfs rw,mode=755
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 27 0:40 / /var/lib/my\\040bundles rw - tmpfs tmpfs rw
51 50 0:41 / /var/lib/my\\040bundles/b1 rw - overlay overlay rw
52 50 0:42 / /var/lib/my\\040bundles/b1 rw shared:7 - overlay overlay rw
garbage line
";

    #[test]
    fn parses_fields_and_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 7);
        assert_eq!(m[0].mount_point, Path::new("/proc"));
        assert!(!m[0].shared);
        assert_eq!(m[1].fstype, "ext4");
        assert!(m[1].shared);
        assert!(m[2].shared);
        assert_eq!(m[4].mount_point, Path::new("/var/lib/my bundles"));
        assert_eq!(unescape("a\\134b\\011c\\"), "a\\b\tc\\");
    }

    #[test]
    fn containing_mount_table() {
        let m = parse(SAMPLE);
        let cases: &[(&str, &str, bool)] = &[
            ("/srv/bundle/rootfs", "/", true),
            ("/proc/1", "/proc", false),
            ("/procx", "/", true),
            (
                "/var/lib/my bundles/b2/rootfs",
                "/var/lib/my bundles",
                false,
            ),
            // Stacked mounts: the later one is on top.
            (
                "/var/lib/my bundles/b1/rootfs",
                "/var/lib/my bundles/b1",
                true,
            ),
        ];
        for &(path, mp, shared) in cases {
            let got = containing(&m, Path::new(path)).expect(path);
            assert_eq!(got.mount_point, Path::new(mp), "{path}");
            assert_eq!(got.shared, shared, "{path}");
        }
        assert_eq!(cgroup2(&m), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2(&m[..3]), None);
    }
}
