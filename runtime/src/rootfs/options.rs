//! Mount options (`mounts[].options`, `linux.rootfsPropagation`) -> mount(2) flags and data.
//!
//! Pure functions, no I/O. The option names and their meaning follow mount(8) and runc's
//! `libcontainer/specconv` table; options harun does not implement (recursive attributes,
//! id-mapped mounts) are refused rather than passed on as filesystem data.

use nix::mount::MsFlags;

/// What one option string means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opt<'a> {
    /// Set (`clear == false`) or clear a mount flag.
    Flag { flag: MsFlags, clear: bool },
    /// A propagation change, applied with its own mount(2) call after the mount.
    Propagation(MsFlags),
    /// `bind` (`rec == false`) or `rbind`.
    Bind { rec: bool },
    /// Accepted and ignored (`defaults`).
    Ignored,
    /// `tmpcopyup` (true) or `notmpcopyup`: a tmpfs starts with a copy of the image's
    /// directory under it.
    CopyUp(bool),
    /// Filesystem data (`mode=755`, `newinstance`, ...), passed on in the data string. A bind
    /// mount has no filesystem to hand it to: it is accepted and dropped there, as mount(2)
    /// ignores data with MS_BIND (runc passes it on; podman sends `mode=755` on binds).
    Data(&'a str),
    /// A known option harun does not implement.
    Unsupported,
}

/// `nosymfollow` (Linux 5.10); nix's `MsFlags` has no name for it.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// Flag options: (name, flag, clears). Source: mount(8), runc `specconv.mountFlags`.
const FLAGS: &[(&str, MsFlags, bool)] = &[
    ("ro", MsFlags::MS_RDONLY, false),
    ("rw", MsFlags::MS_RDONLY, true),
    ("nosuid", MsFlags::MS_NOSUID, false),
    ("suid", MsFlags::MS_NOSUID, true),
    ("nodev", MsFlags::MS_NODEV, false),
    ("dev", MsFlags::MS_NODEV, true),
    ("noexec", MsFlags::MS_NOEXEC, false),
    ("exec", MsFlags::MS_NOEXEC, true),
    ("sync", MsFlags::MS_SYNCHRONOUS, false),
    ("async", MsFlags::MS_SYNCHRONOUS, true),
    ("dirsync", MsFlags::MS_DIRSYNC, false),
    ("remount", MsFlags::MS_REMOUNT, false),
    ("mand", MsFlags::MS_MANDLOCK, false),
    ("nomand", MsFlags::MS_MANDLOCK, true),
    ("atime", MsFlags::MS_NOATIME, true),
    ("noatime", MsFlags::MS_NOATIME, false),
    ("diratime", MsFlags::MS_NODIRATIME, true),
    ("nodiratime", MsFlags::MS_NODIRATIME, false),
    ("relatime", MsFlags::MS_RELATIME, false),
    ("norelatime", MsFlags::MS_RELATIME, true),
    ("strictatime", MsFlags::MS_STRICTATIME, false),
    ("nostrictatime", MsFlags::MS_STRICTATIME, true),
    ("lazytime", MsFlags::MS_LAZYTIME, false),
    ("nolazytime", MsFlags::MS_LAZYTIME, true),
    ("nosymfollow", MS_NOSYMFOLLOW, false),
    ("symfollow", MS_NOSYMFOLLOW, true),
    ("silent", MsFlags::MS_SILENT, false),
    ("loud", MsFlags::MS_SILENT, true),
    ("iversion", MsFlags::MS_I_VERSION, false),
    ("noiversion", MsFlags::MS_I_VERSION, true),
    ("acl", MsFlags::MS_POSIXACL, false),
    ("noacl", MsFlags::MS_POSIXACL, true),
];

/// Propagation names, for mount options and `linux.rootfsPropagation`.
const PROPAGATION: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// The other options harun implements.
const OTHERS: &[(&str, Opt<'static>)] = &[
    ("bind", Opt::Bind { rec: false }),
    ("rbind", Opt::Bind { rec: true }),
    ("defaults", Opt::Ignored),
    ("tmpcopyup", Opt::CopyUp(true)),
    ("notmpcopyup", Opt::CopyUp(false)),
];

/// Options runc or crun know and harun does not implement: mount_setattr(2) recursive
/// attributes, id-mapped mounts, crun's `copy-symlink`.
const UNSUPPORTED: &[&str] = &[
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
    "idmap",
    "ridmap",
    "copy-symlink",
];

/// Classify one option string.
pub(crate) fn classify(opt: &str) -> Opt<'_> {
    if let Some(&(_, flag, clear)) = FLAGS.iter().find(|(n, ..)| *n == opt) {
        return Opt::Flag { flag, clear };
    }
    if let Some(flag) = propagation(opt) {
        return Opt::Propagation(flag);
    }
    if let Some(&(_, other)) = OTHERS.iter().find(|(n, _)| *n == opt) {
        return other;
    }
    if UNSUPPORTED.contains(&opt) {
        return Opt::Unsupported;
    }
    Opt::Data(opt)
}

/// Every option name harun implements (flags, propagation, bind, tmpcopyup...), sorted:
/// the `mountOptions` of `harun features`. Filesystem data (`mode=755`) is not among them
/// (features.md: "SHOULD NOT contain filesystem-specific mount options"), nor what
/// [`UNSUPPORTED`] lists.
pub(crate) fn recognized() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = FLAGS
        .iter()
        .map(|(n, ..)| *n)
        .chain(PROPAGATION.iter().map(|(n, _)| *n))
        .chain(OTHERS.iter().map(|(n, _)| *n))
        .collect();
    crate::sort::sort(&mut names);
    names
}

/// The mount(2) flag for a propagation name (`rslave` -> `MS_SLAVE|MS_REC`).
pub(crate) fn propagation(name: &str) -> Option<MsFlags> {
    PROPAGATION
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, f)| f)
}

/// All options of one mount entry, folded in order (a later `rw` undoes an earlier `ro`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call (never propagation, never MS_BIND/MS_REC).
    pub flags: MsFlags,
    /// Propagation changes, in order, each its own mount(2) call.
    pub propagation: Vec<MsFlags>,
    /// `Some(rec)` when `bind` or `rbind` was given (the last one wins).
    pub bind: Option<bool>,
    /// Filesystem data, comma-joined (`mode=755,size=65536k`).
    pub data: String,
    /// `tmpcopyup` (the last of tmpcopyup/notmpcopyup wins).
    pub copy_up: bool,
}

/// Fold `options`. Unsupported options are skipped here; [`super::validate`] refuses them.
pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        bind: None,
        data: String::new(),
        copy_up: false,
    };
    for opt in options {
        match classify(opt.as_ref()) {
            Opt::Flag { flag, clear: false } => out.flags.insert(flag),
            Opt::Flag { flag, clear: true } => out.flags.remove(flag),
            Opt::Propagation(p) => out.propagation.push(p),
            Opt::Bind { rec } => out.bind = Some(rec),
            Opt::Data(d) => {
                if !out.data.is_empty() {
                    out.data.push(',');
                }
                out.data.push_str(d);
            }
            Opt::CopyUp(on) => out.copy_up = on,
            Opt::Ignored | Opt::Unsupported => {}
        }
    }
    out
}

/// statvfs(3) `f_flag` bits (kernel include/linux/statfs.h); libc has no ST_RELATIME or
/// ST_NOSYMFOLLOW on every target, so the table names the ABI values.
const ST_TO_MS: &[(libc::c_ulong, MsFlags)] = &[
    (0x0001, MsFlags::MS_RDONLY),
    (0x0002, MsFlags::MS_NOSUID),
    (0x0004, MsFlags::MS_NODEV),
    (0x0008, MsFlags::MS_NOEXEC),
    (0x0010, MsFlags::MS_SYNCHRONOUS),
    (0x0040, MsFlags::MS_MANDLOCK),
    (0x0400, MsFlags::MS_NOATIME),
    (0x0800, MsFlags::MS_NODIRATIME),
    (0x1000, MsFlags::MS_RELATIME),
    (0x2000, MS_NOSYMFOLLOW),
];

/// The mount flags a mount has now, from its statvfs `f_flag`.
pub(crate) fn flags_from_statvfs(f_flag: libc::c_ulong) -> MsFlags {
    ST_TO_MS
        .iter()
        .filter(|(st, _)| f_flag & st != 0)
        .fold(MsFlags::empty(), |acc, &(_, ms)| acc | ms)
}

const ATIME_MASK: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// Flags for a bind remount that the kernel accepts on a mount whose flags are locked
/// (a mount inherited from a more privileged mount namespace): `requested` plus the current
/// ro/nosuid/nodev/noexec, and the current atime mode in place of the requested one.
/// Source: kernel fs/namespace.c `can_change_locked_flags`; runc retries the same way.
pub(crate) fn keep_locked(requested: MsFlags, current: MsFlags) -> MsFlags {
    let sticky = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mut atime = current & ATIME_MASK;
    if !atime.intersects(MsFlags::MS_NOATIME | MsFlags::MS_RELATIME) {
        // Neither noatime nor relatime: the mount uses strictatime.
        atime |= MsFlags::MS_STRICTATIME;
    }
    (requested - ATIME_MASK) | (current & sticky) | atime
}

#[cfg(test)]
mod tests {
    use super::*;

    const RO: MsFlags = MsFlags::MS_RDONLY;
    const NOSUID: MsFlags = MsFlags::MS_NOSUID;
    const NODEV: MsFlags = MsFlags::MS_NODEV;
    const NOEXEC: MsFlags = MsFlags::MS_NOEXEC;
    const RPRIVATE: MsFlags = MsFlags::MS_PRIVATE.union(MsFlags::MS_REC);

    #[test]
    fn classify_table() {
        let cases: &[(&str, Opt)] = &[
            (
                "ro",
                Opt::Flag {
                    flag: RO,
                    clear: false,
                },
            ),
            (
                "rw",
                Opt::Flag {
                    flag: RO,
                    clear: true,
                },
            ),
            (
                "nosuid",
                Opt::Flag {
                    flag: NOSUID,
                    clear: false,
                },
            ),
            (
                "exec",
                Opt::Flag {
                    flag: NOEXEC,
                    clear: true,
                },
            ),
            (
                "atime",
                Opt::Flag {
                    flag: MsFlags::MS_NOATIME,
                    clear: true,
                },
            ),
            (
                "strictatime",
                Opt::Flag {
                    flag: MsFlags::MS_STRICTATIME,
                    clear: false,
                },
            ),
            (
                "nosymfollow",
                Opt::Flag {
                    flag: MS_NOSYMFOLLOW,
                    clear: false,
                },
            ),
            (
                "remount",
                Opt::Flag {
                    flag: MsFlags::MS_REMOUNT,
                    clear: false,
                },
            ),
            ("private", Opt::Propagation(MsFlags::MS_PRIVATE)),
            (
                "rslave",
                Opt::Propagation(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            ),
            (
                "runbindable",
                Opt::Propagation(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            ),
            ("bind", Opt::Bind { rec: false }),
            ("rbind", Opt::Bind { rec: true }),
            ("defaults", Opt::Ignored),
            ("mode=755", Opt::Data("mode=755")),
            ("newinstance", Opt::Data("newinstance")),
            ("rro", Opt::Unsupported),
            ("idmap", Opt::Unsupported),
            ("tmpcopyup", Opt::CopyUp(true)),
            ("notmpcopyup", Opt::CopyUp(false)),
        ];
        for (opt, want) in cases {
            assert_eq!(classify(opt), *want, "option `{opt}`");
        }
    }

    #[test]
    fn parse_table() {
        struct Case {
            opts: &'static [&'static str],
            flags: MsFlags,
            prop: &'static [MsFlags],
            bind: Option<bool>,
            data: &'static str,
        }
        let cases = [
            Case {
                opts: &[],
                flags: MsFlags::empty(),
                prop: &[],
                bind: None,
                data: "",
            },
            Case {
                opts: &["nosuid", "strictatime", "mode=755", "size=65536k"],
                flags: NOSUID | MsFlags::MS_STRICTATIME,
                prop: &[],
                bind: None,
                data: "mode=755,size=65536k",
            },
            Case {
                opts: &["ro", "rw", "nodev"],
                flags: NODEV,
                prop: &[],
                bind: None,
                data: "",
            },
            Case {
                opts: &["rbind", "rprivate", "ro", "nosuid", "noexec", "nodev"],
                flags: RO | NOSUID | NOEXEC | NODEV,
                prop: &[RPRIVATE],
                bind: Some(true),
                data: "",
            },
            Case {
                opts: &["bind", "shared", "slave"],
                flags: MsFlags::empty(),
                prop: &[MsFlags::MS_SHARED, MsFlags::MS_SLAVE],
                bind: Some(false),
                data: "",
            },
            Case {
                opts: &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
                flags: NOSUID | NOEXEC,
                prop: &[],
                bind: None,
                data: "newinstance,ptmxmode=0666,mode=0620,gid=5",
            },
        ];
        for c in cases {
            let got = parse(c.opts);
            assert_eq!(got.flags, c.flags, "{:?}", c.opts);
            assert_eq!(got.propagation, c.prop, "{:?}", c.opts);
            assert_eq!(got.bind, c.bind, "{:?}", c.opts);
            assert_eq!(got.data, c.data, "{:?}", c.opts);
        }
    }

    #[test]
    fn recognized_options_are_classified_as_implemented() {
        let names = recognized();
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        for n in &names {
            let opt = classify(n);
            assert!(
                !matches!(opt, Opt::Data(_) | Opt::Unsupported),
                "`{n}` is {opt:?}"
            );
        }
        for n in UNSUPPORTED {
            assert_eq!(classify(n), Opt::Unsupported);
            assert!(!names.contains(n), "`{n}` is listed and refused");
        }
        for n in ["tmpcopyup", "rbind", "rslave", "acl", "nosymfollow"] {
            assert!(names.contains(&n), "`{n}` is missing");
        }
    }

    #[test]
    fn propagation_names() {
        assert_eq!(
            propagation("rshared"),
            Some(MsFlags::MS_SHARED | MsFlags::MS_REC)
        );
        assert_eq!(propagation("slave"), Some(MsFlags::MS_SLAVE));
        assert_eq!(propagation("rbind"), None);
        assert_eq!(propagation(""), None);
    }

    #[test]
    fn statvfs_flags_table() {
        let cases: &[(libc::c_ulong, MsFlags)] = &[
            (0, MsFlags::empty()),
            (0x0001, RO),
            (
                0x0001 | 0x0002 | 0x0004 | 0x0008,
                RO | NOSUID | NODEV | NOEXEC,
            ),
            (0x1000 | 0x0020, MsFlags::MS_RELATIME), // ST_VALID (0x20) is dropped
            (
                0x0400 | 0x0800,
                MsFlags::MS_NOATIME | MsFlags::MS_NODIRATIME,
            ),
            (0x2000, MS_NOSYMFOLLOW),
        ];
        for &(st, want) in cases {
            assert_eq!(flags_from_statvfs(st), want, "f_flag {st:#x}");
        }
    }

    #[test]
    fn keep_locked_table() {
        let rel = MsFlags::MS_RELATIME;
        let cases: &[(MsFlags, MsFlags, MsFlags)] = &[
            // (requested, current, result)
            (RO, NOSUID | NODEV | rel, RO | NOSUID | NODEV | rel),
            (RO | MsFlags::MS_NOATIME, rel, RO | rel),
            (
                NOEXEC,
                RO | MsFlags::MS_NOATIME,
                NOEXEC | RO | MsFlags::MS_NOATIME,
            ),
            (RO, MsFlags::empty(), RO | MsFlags::MS_STRICTATIME),
        ];
        for &(req, cur, want) in cases {
            assert_eq!(
                keep_locked(req, cur),
                want,
                "requested {req:?}, current {cur:?}"
            );
        }
    }
}
