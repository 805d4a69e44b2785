//! /proc/PID/mountinfo, read once for all of harun: which mount holds the rootfs and whether
//! it is shared (rootfs/pivot.rs), where cgroup2 is mounted and its root
//! (cgroups/hierarchy.rs, rootfs/mounts.rs), and the test support's mount checks
//! (integration/src/mountinfo.rs).
//!
//! Format: proc(5), "/proc/[pid]/mountinfo": `id parent major:minor root mountpoint options
//! [optional fields...] - fstype source superoptions`, paths with space, tab, newline and
//! backslash escaped as `\ooo`. A line borrows from the text; only escaped paths allocate.

use std::borrow::Cow;
use std::path::Path;

use crate::{Error, Result};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount<'a> {
    pub id: u32,
    pub parent: u32,
    /// The root of the mount within its filesystem (field 4).
    pub root: Cow<'a, str>,
    pub mount_point: Cow<'a, str>,
    /// Per-mount options, comma-separated: `rw,nosuid,relatime`.
    pub options: &'a str,
    /// Optional fields, space-separated: `shared:N`, `master:N`, `propagate_from:N`,
    /// `unbindable` (empty when there are none).
    pub optional: &'a str,
    pub fstype: &'a str,
    pub source: Cow<'a, str>,
    /// Per-superblock options, comma-separated: `rw,size=65536k,mode=755`.
    pub super_options: &'a str,
}

impl Mount<'_> {
    /// A member of a peer group (`shared:N`): mounts under it propagate.
    pub fn shared(&self) -> bool {
        self.optional.split(' ').any(|f| f.starts_with("shared:"))
    }
}

/// The text of /proc/self/mountinfo.
pub fn read() -> Result<String> {
    let path = "/proc/self/mountinfo";
    std::fs::read_to_string(path).map_err(Error::io("read", path))
}

/// The lines of mountinfo `text`; malformed lines are skipped (a container's output may mix
/// them with other text).
pub fn parse(text: &str) -> impl Iterator<Item = Mount<'_>> {
    text.lines().filter_map(parse_line)
}

/// One line; None when it is not a mountinfo line.
pub fn parse_line(line: &str) -> Option<Mount<'_>> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.splitn(7, ' ');
    let id = l.next()?.parse().ok()?;
    let parent = l.next()?.parse().ok()?;
    let _device = l.next()?;
    let root = unescape(l.next()?);
    let mount_point = unescape(l.next()?);
    let options = l.next()?;
    let optional = l.next().unwrap_or("");
    let mut r = right.splitn(3, ' ');
    Some(Mount {
        id,
        parent,
        root,
        mount_point,
        options,
        optional,
        fstype: r.next()?,
        source: unescape(r.next()?),
        super_options: r.next().unwrap_or(""),
    })
}

/// Undo the kernel's `\ooo` octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash); borrowed when there are none.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
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
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The mount `path` lives on: the longest mount point that contains it (the last listed
/// when mounts are stacked). `path` must be canonical.
pub fn containing<'m, 'a>(mounts: &'m [Mount<'a>], path: &Path) -> Option<&'m Mount<'a>> {
    let depth = |m: &Mount<'_>| Path::new(&*m.mount_point).components().count();
    let mut best: Option<&Mount<'a>> = None;
    for m in mounts.iter().filter(|m| path.starts_with(&*m.mount_point)) {
        if best.is_none_or(|b| depth(m) >= depth(b)) {
            best = Some(m);
        }
    }
    best
}

/// The first cgroup2 mount (`/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on
/// a hybrid one).
pub fn cgroup2<'a>(mut mounts: impl Iterator<Item = Mount<'a>>) -> Option<Mount<'a>> {
    mounts.find(|m| m.fstype == "cgroup2")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
24 27 0:6 / /dev rw,relatime shared:2 master:1 - devtmpfs devtmpfs rw,mode=755
41 31 0:38 /a/b /sys/fs/cgroup/x\\040y rw,relatime - cgroup2 cgroup2 rw
50 27 0:40 / /var/lib/my\\040bundles rw - tmpfs tmpfs rw
51 50 0:41 / /var/lib/my\\040bundles/b1 rw - overlay overlay rw
52 50 0:42 / /var/lib/my\\040bundles/b1 rw shared:7 - overlay overlay rw
36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/ro\\040ot rw,errors=continue
garbage line
1 2 x / / rw - broken
";

    #[test]
    fn parses_fields_and_escapes() {
        let m: Vec<Mount> = parse(SAMPLE).collect();
        assert_eq!(m.len(), 8);
        assert_eq!((m[0].id, m[0].parent), (22, 27));
        assert_eq!(m[0].mount_point, "/proc");
        assert!(!m[0].shared() && m[1].shared() && m[2].shared());
        assert_eq!((m[1].fstype, &*m[1].source), ("ext4", "/dev/vda"));
        assert_eq!(m[2].optional, "shared:2 master:1");
        assert_eq!(m[2].super_options, "rw,mode=755");
        assert_eq!(m[4].mount_point, "/var/lib/my bundles");
        assert!(matches!(m[0].mount_point, Cow::Borrowed(_)));
        assert_eq!((&*m[7].root, &*m[7].source), ("/mnt1", "/dev/ro ot"));
        assert_eq!(m[7].options, "rw,noatime");
        assert_eq!(unescape("a\\134b\\011c\\"), "a\\b\tc\\");
        assert_eq!(unescape("\\04"), "\\04");
    }

    #[test]
    fn containing_mount_table() {
        let m: Vec<Mount> = parse(SAMPLE).collect();
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
            assert_eq!(got.mount_point, mp, "{path}");
            assert_eq!(got.shared(), shared, "{path}");
        }
    }

    #[test]
    fn finds_the_cgroup2_mount() {
        let c = cgroup2(parse(SAMPLE)).unwrap();
        assert_eq!((&*c.root, &*c.mount_point), ("/a/b", "/sys/fs/cgroup/x y"));
        assert_eq!(cgroup2(parse(SAMPLE).take(3)), None);
    }
}
