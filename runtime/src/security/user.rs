//! `process.user` (uid, gid, additionalGids, umask), no_new_privs and oom_score_adj.
//!
//! The container init runs as real root; [`apply`] switches it to the configured user,
//! between `capabilities::drop_bounding` and `capabilities::Sets::apply` (process/finish.rs
//! has the order): PR_SET_KEEPCAPS keeps the permitted set across the uid change so
//! `Sets::apply` can then set exactly the configured sets.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;

use crate::error::{Error, Result};

const SETGROUPS: &str = "/proc/self/setgroups";
const OOM_SCORE_ADJ: &str = "/proc/self/oom_score_adj";

/// The largest uid or gid a process may be given (2^31-1, runc's limit). Above it is
/// (uid_t)-1, which setresuid/setresgid take for "leave unchanged": a container asking for
/// uid 4294967295 would keep running as root.
pub const MAX_ID: u32 = i32::MAX as u32;

/// Pure: `process.user`: uid, gid and every additionalGids entry at most [`MAX_ID`], the
/// umask a permission mask (at most 0o777).
pub fn validate(user: &User) -> Result<()> {
    validate_ids(user, "process.user")?;
    if let Some(mask) = user.umask() {
        if mask > 0o777 {
            return Err(Error::spec(
                "process.user.umask",
                format!("{mask:#o} is not a permission mask (at most 0o777)"),
            ));
        }
    }
    Ok(())
}

/// Pure: the ids of `user` at most [`MAX_ID`]; `field` names the user object in errors
/// (`process.user`, or `user` in an exec `--process` file).
pub fn validate_ids(user: &User, field: &str) -> Result<()> {
    let gids = user.additional_gids().iter().flatten();
    let ids = [
        ("uid".to_string(), user.uid()),
        ("gid".to_string(), user.gid()),
    ]
    .into_iter()
    .chain(
        gids.enumerate()
            .map(|(i, &g)| (format!("additionalGids[{i}]"), g)),
    );
    for (name, id) in ids {
        check_id(id).map_err(|reason| Error::spec(format!("{field}.{name}"), reason))?;
    }
    Ok(())
}

/// Pure: why `id` cannot be a uid or gid, if it cannot.
pub fn check_id(id: u32) -> std::result::Result<(), String> {
    if id > MAX_ID {
        return Err(format!(
            "{id} is out of range (uids and gids must be 0-{MAX_ID}; {} is \"unchanged\" to \
             setresuid)",
            u32::MAX
        ));
    }
    Ok(())
}

/// PR_SET_KEEPCAPS(1), setgroups(additionalGids, or none), setresgid, setresuid,
/// PR_SET_KEEPCAPS(0), then the umask if set.
///
/// setgroups is skipped only when `/proc/self/setgroups` says `deny` (a user namespace
/// whose gid map was written without setgroups); asking for additionalGids there is an
/// error rather than a silent drop.
pub fn apply(user: &User) -> Result<()> {
    prctl::set_keepcaps(true).map_err(Error::sys("prctl PR_SET_KEEPCAPS 1"))?;
    let gids: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|&g| Gid::from_raw(g))
        .collect();
    set_groups(&gids)?;
    let (uid, gid) = (user.uid(), user.gid());
    let g = Gid::from_raw(gid);
    setresgid(g, g, g).map_err(|errno| Error::Sys {
        what: format!("setresgid {gid}{}", unmapped_hint(errno, "gid", gid)),
        errno,
    })?;
    let u = Uid::from_raw(uid);
    setresuid(u, u, u).map_err(|errno| Error::Sys {
        what: format!("setresuid {uid}{}", unmapped_hint(errno, "uid", uid)),
        errno,
    })?;
    prctl::set_keepcaps(false).map_err(Error::sys("prctl PR_SET_KEEPCAPS 0"))?;
    if let Some(mask) = user.umask() {
        umask(Mode::from_bits_truncate(mask));
    }
    Ok(())
}

fn set_groups(gids: &[Gid]) -> Result<()> {
    if setgroups_denied()? {
        if gids.is_empty() {
            return Ok(());
        }
        return Err(Error::Sys {
            what: format!(
                "setgroups for process.user.additionalGids ({SETGROUPS} is `deny` in this \
                 user namespace)"
            ),
            errno: Errno::EPERM,
        });
    }
    setgroups(gids).map_err(|errno| Error::Sys {
        what: format!(
            "setgroups [{}] (process.user.additionalGids)",
            gids.iter()
                .map(|g| g.as_raw().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        errno,
    })
}

/// Whether `/proc/self/setgroups` says `deny`. A missing file (no /proc, old kernel) means
/// setgroups is allowed as far as we can tell; the call itself then decides.
fn setgroups_denied() -> Result<bool> {
    match std::fs::read_to_string(SETGROUPS) {
        Ok(s) => Ok(s.trim() == "deny"),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("read", SETGROUPS)(e)),
    }
}

fn unmapped_hint(errno: Errno, kind: &str, id: u32) -> String {
    if errno == Errno::EINVAL {
        format!(" ({kind} {id} is not mapped in the container's user namespace)")
    } else {
        String::new()
    }
}

/// PR_SET_NO_NEW_PRIVS. The result is never ignored: a container asked to run without new
/// privileges must not start if this fails.
pub fn set_no_new_privileges() -> Result<()> {
    prctl::set_no_new_privs().map_err(Error::sys("prctl PR_SET_NO_NEW_PRIVS"))
}

/// Write `value` to `/proc/self/oom_score_adj` (range checked by `security::validate`).
pub fn set_oom_score_adj(value: i32) -> Result<()> {
    write_oom_score_adj(Path::new(OOM_SCORE_ADJ), value)
}

fn write_oom_score_adj(path: &Path, value: i32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    file.write_all(value.to_string().as_bytes())
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == libc::EACCES || code == libc::EPERM => Error::Sys {
                what: format!(
                    "write {value} to `{}` (lowering oom_score_adj needs CAP_SYS_RESOURCE)",
                    path.display()
                ),
                errno: Errno::from_raw(code),
            },
            _ => Error::io("write", path)(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::UserBuilder;

    #[test]
    fn umask_must_be_a_permission_mask() {
        let ok = UserBuilder::default()
            .uid(1u32)
            .gid(1u32)
            .umask(0o022u32)
            .build()
            .unwrap();
        assert!(validate(&ok).is_ok());
        let none = UserBuilder::default().build().unwrap();
        assert!(validate(&none).is_ok());
        let bad = UserBuilder::default().umask(0o1777u32).build().unwrap();
        assert_eq!(
            validate(&bad).unwrap_err().to_string(),
            "process.user.umask: 0o1777 is not a permission mask (at most 0o777)"
        );
    }

    #[test]
    fn ids_above_2_31_minus_1_are_refused() {
        let user = |uid: u32, gid: u32, extra: Vec<u32>| {
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .additional_gids(extra)
                .build()
                .unwrap()
        };
        assert!(validate(&user(MAX_ID, MAX_ID, vec![0, MAX_ID])).is_ok());
        let table = [
            (
                user(u32::MAX, 0, vec![]),
                "process.user.uid: 4294967295 is out of range",
            ),
            (
                user(0, 1 << 31, vec![]),
                "process.user.gid: 2147483648 is out of range",
            ),
            (
                user(0, 0, vec![5, u32::MAX]),
                "process.user.additionalGids[1]: 4294967295 is out of range",
            ),
        ];
        for (u, want) in table {
            let err = validate(&u).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
            assert!(err.contains("0-2147483647"), "{err}");
        }
        let err = validate_ids(&user(u32::MAX, 0, vec![]), "user").unwrap_err();
        assert!(err.to_string().starts_with("user.uid: "), "{err}");
    }

    #[test]
    fn unmapped_ids_get_a_hint() {
        assert_eq!(
            unmapped_hint(Errno::EINVAL, "uid", 1000),
            " (uid 1000 is not mapped in the container's user namespace)"
        );
        assert_eq!(unmapped_hint(Errno::EPERM, "uid", 1000), "");
    }

    #[test]
    fn oom_score_adj_write_names_the_file() {
        // A regular file stands in for procfs: the value is written as decimal text.
        let dir = std::env::temp_dir().join(format!("harun-oom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("oom_score_adj");
        std::fs::write(&file, "").unwrap();
        write_oom_score_adj(&file, -500).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "-500");
        let missing = dir.join("missing");
        let err = write_oom_score_adj(&missing, 1).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("open `{}`", missing.display())),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
