//! `process.rlimits`: validation and setrlimit(2) in the container init.

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use crate::error::{Error, Result};

/// The kernel resource for an OCI rlimit type (pure; config.md "POSIX process" `rlimits`,
/// getrlimit(2)). Every OCI type exists on Linux.
pub fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// Pure: soft <= hard, and each type at most once. Field: `process.rlimits[1]`.
pub fn validate(rlimits: &[PosixRlimit]) -> Result<()> {
    for (i, r) in rlimits.iter().enumerate() {
        let field = format!("process.rlimits[{i}]");
        if r.soft() > r.hard() {
            return Err(Error::spec(
                field,
                format!(
                    "{}: soft limit {} is above hard limit {}",
                    r.typ(),
                    limit(r.soft()),
                    limit(r.hard())
                ),
            ));
        }
        if let Some(j) = rlimits[..i].iter().position(|o| o.typ() == r.typ()) {
            return Err(Error::spec(
                field,
                format!("{} is set twice (also process.rlimits[{j}])", r.typ()),
            ));
        }
    }
    Ok(())
}

/// setrlimit(2) each entry, in order. A failure names the type and values:
/// "setrlimit RLIMIT_NOFILE soft=1024 hard=1048576 (above the current hard limit 20000;
/// raising a hard limit needs CAP_SYS_RESOURCE): EPERM: Operation not permitted".
pub fn apply(rlimits: &[PosixRlimit]) -> Result<()> {
    for r in rlimits {
        let res = resource(r.typ());
        setrlimit(res, r.soft(), r.hard()).map_err(|errno| Error::Sys {
            what: describe_failure(r, errno, getrlimit(res).ok().map(|(_, hard)| hard)),
            errno,
        })?;
    }
    Ok(())
}

fn describe_failure(r: &PosixRlimit, errno: Errno, current_hard: Option<u64>) -> String {
    let mut what = format!(
        "setrlimit {} soft={} hard={}",
        r.typ(),
        limit(r.soft()),
        limit(r.hard())
    );
    if errno == Errno::EPERM {
        match current_hard {
            Some(cur) if r.hard() > cur => what.push_str(&format!(
                " (above the current hard limit {}; raising a hard limit needs CAP_SYS_RESOURCE)",
                limit(cur)
            )),
            _ if r.typ() == PosixRlimitType::RlimitNofile => {
                what.push_str(" (RLIMIT_NOFILE cannot exceed fs.nr_open)")
            }
            _ => {}
        }
    }
    what
}

/// `unlimited` for RLIM_INFINITY, the number otherwise.
fn limit(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::PosixRlimitBuilder;

    fn rl(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .unwrap()
    }

    #[test]
    fn every_type_maps_to_its_kernel_resource() {
        use PosixRlimitType as T;
        let table = [
            (T::RlimitCpu, libc::RLIMIT_CPU, "RLIMIT_CPU"),
            (T::RlimitFsize, libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
            (T::RlimitData, libc::RLIMIT_DATA, "RLIMIT_DATA"),
            (T::RlimitStack, libc::RLIMIT_STACK, "RLIMIT_STACK"),
            (T::RlimitCore, libc::RLIMIT_CORE, "RLIMIT_CORE"),
            (T::RlimitRss, libc::RLIMIT_RSS, "RLIMIT_RSS"),
            (T::RlimitNproc, libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
            (T::RlimitNofile, libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
            (T::RlimitMemlock, libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
            (T::RlimitAs, libc::RLIMIT_AS, "RLIMIT_AS"),
            (T::RlimitLocks, libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
            (
                T::RlimitSigpending,
                libc::RLIMIT_SIGPENDING,
                "RLIMIT_SIGPENDING",
            ),
            (T::RlimitMsgqueue, libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
            (T::RlimitNice, libc::RLIMIT_NICE, "RLIMIT_NICE"),
            (T::RlimitRtprio, libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
            (T::RlimitRttime, libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
        ];
        let mut seen = std::collections::HashSet::new();
        for (typ, raw, name) in table {
            assert_eq!(resource(typ) as i64, raw as i64, "{name}");
            assert_eq!(typ.to_string(), name);
            assert!(seen.insert(raw as i64), "{name} mapped twice");
        }
        // Linux has 16 resources (0..=15, RLIMIT_RTTIME last): every one is covered.
        assert_eq!(seen.len(), 16);
        assert_eq!(seen.iter().max(), Some(&(libc::RLIMIT_RTTIME as i64)));
    }

    #[test]
    fn validate_accepts_good_lists() {
        use PosixRlimitType as T;
        assert!(validate(&[]).is_ok());
        let list = [
            rl(T::RlimitNofile, 1024, 1024),
            rl(T::RlimitCore, 0, libc::RLIM_INFINITY),
            rl(T::RlimitNproc, libc::RLIM_INFINITY, libc::RLIM_INFINITY),
        ];
        assert!(validate(&list).is_ok());
    }

    #[test]
    fn validate_rejects_soft_above_hard_and_duplicates() {
        use PosixRlimitType as T;
        let err = validate(&[rl(T::RlimitCore, 0, 0), rl(T::RlimitNofile, 2048, 1024)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "process.rlimits[1]: RLIMIT_NOFILE: soft limit 2048 is above hard limit 1024"
        );
        let err = validate(&[rl(T::RlimitNofile, 1, 1), rl(T::RlimitNofile, 2, 2)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "process.rlimits[1]: RLIMIT_NOFILE is set twice (also process.rlimits[0])"
        );
    }

    #[test]
    fn failure_messages_explain_eperm() {
        use PosixRlimitType as T;
        let r = rl(T::RlimitNofile, 1024, 1048576);
        assert_eq!(
            describe_failure(&r, Errno::EPERM, Some(20000)),
            "setrlimit RLIMIT_NOFILE soft=1024 hard=1048576 (above the current hard limit \
             20000; raising a hard limit needs CAP_SYS_RESOURCE)"
        );
        assert_eq!(
            describe_failure(&r, Errno::EINVAL, Some(20000)),
            "setrlimit RLIMIT_NOFILE soft=1024 hard=1048576"
        );
        let r = rl(T::RlimitCore, libc::RLIM_INFINITY, libc::RLIM_INFINITY);
        assert_eq!(
            describe_failure(&r, Errno::EPERM, Some(0)),
            "setrlimit RLIMIT_CORE soft=unlimited hard=unlimited (above the current hard \
             limit 0; raising a hard limit needs CAP_SYS_RESOURCE)"
        );
    }
}
