//! `process.capabilities`: the bounding set, then effective, inheritable, permitted and
//! ambient (capabilities(7)).
//!
//! Order in the container process: see `process::finish` (the module doc of
//! process/finish.rs has the whole recipe).
//!
//! As runc does: a missing `capabilities` object means no capabilities at all; a
//! capability the running kernel does not know is skipped, and so is an ambient capability
//! that is not both permitted and inheritable (the kernel refuses it). `create` and `exec`
//! work out the same list beforehand ([`skipped`]) and return it as warnings.

use std::fmt;

use caps::{CapSet, CapsHashSet};
use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use crate::error::{Error, Result};

/// A capability that is not applied, and why (a warning for the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// "bounding", "effective", "inheritable", "permitted" or "ambient".
    pub set: &'static str,
    pub cap: caps::Capability,
    pub reason: Why,
}

/// Why a capability is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// The running kernel does not know it (older than the capability).
    UnknownToKernel,
    /// An ambient capability that is not both permitted and inheritable: the kernel
    /// refuses it. runc's and crun's default specs ask for such ones.
    AmbientNotPermittedAndInheritable,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            Why::UnknownToKernel => "not known to the running kernel",
            Why::AmbientNotPermittedAndInheritable => {
                "an ambient capability must be permitted and inheritable"
            }
        };
        write!(f, "{} {}: {why}, skipped", self.set, self.cap)
    }
}

/// The `caps` crate's capability for an OCI one (pure; both follow capability.h).
pub fn to_caps(cap: Capability) -> caps::Capability {
    use caps::Capability as K;
    use Capability as C;
    match cap {
        C::AuditControl => K::CAP_AUDIT_CONTROL,
        C::AuditRead => K::CAP_AUDIT_READ,
        C::AuditWrite => K::CAP_AUDIT_WRITE,
        C::BlockSuspend => K::CAP_BLOCK_SUSPEND,
        C::Bpf => K::CAP_BPF,
        C::CheckpointRestore => K::CAP_CHECKPOINT_RESTORE,
        C::Chown => K::CAP_CHOWN,
        C::DacOverride => K::CAP_DAC_OVERRIDE,
        C::DacReadSearch => K::CAP_DAC_READ_SEARCH,
        C::Fowner => K::CAP_FOWNER,
        C::Fsetid => K::CAP_FSETID,
        C::IpcLock => K::CAP_IPC_LOCK,
        C::IpcOwner => K::CAP_IPC_OWNER,
        C::Kill => K::CAP_KILL,
        C::Lease => K::CAP_LEASE,
        C::LinuxImmutable => K::CAP_LINUX_IMMUTABLE,
        C::MacAdmin => K::CAP_MAC_ADMIN,
        C::MacOverride => K::CAP_MAC_OVERRIDE,
        C::Mknod => K::CAP_MKNOD,
        C::NetAdmin => K::CAP_NET_ADMIN,
        C::NetBindService => K::CAP_NET_BIND_SERVICE,
        C::NetBroadcast => K::CAP_NET_BROADCAST,
        C::NetRaw => K::CAP_NET_RAW,
        C::Perfmon => K::CAP_PERFMON,
        C::Setgid => K::CAP_SETGID,
        C::Setfcap => K::CAP_SETFCAP,
        C::Setpcap => K::CAP_SETPCAP,
        C::Setuid => K::CAP_SETUID,
        C::SysAdmin => K::CAP_SYS_ADMIN,
        C::SysBoot => K::CAP_SYS_BOOT,
        C::SysChroot => K::CAP_SYS_CHROOT,
        C::SysModule => K::CAP_SYS_MODULE,
        C::SysNice => K::CAP_SYS_NICE,
        C::SysPacct => K::CAP_SYS_PACCT,
        C::SysPtrace => K::CAP_SYS_PTRACE,
        C::SysRawio => K::CAP_SYS_RAWIO,
        C::SysResource => K::CAP_SYS_RESOURCE,
        C::SysTime => K::CAP_SYS_TIME,
        C::SysTtyConfig => K::CAP_SYS_TTY_CONFIG,
        C::Syslog => K::CAP_SYSLOG,
        C::WakeAlarm => K::CAP_WAKE_ALARM,
    }
}

/// Pure: the effective set must lie within the permitted set (capset(2) refuses otherwise,
/// so this only moves the failure before any side effect, with a better message).
pub fn validate(caps: Option<&LinuxCapabilities>) -> Result<()> {
    let Some(caps) = caps else { return Ok(()) };
    let effective = converted(caps.effective().as_ref());
    let permitted = converted(caps.permitted().as_ref());
    if let Some(cap) = sorted(&effective)
        .into_iter()
        .find(|c| !permitted.contains(c))
    {
        return Err(Error::spec(
            "process.capabilities.effective",
            format!("{cap} is not in process.capabilities.permitted (effective must be a subset)"),
        ));
    }
    Ok(())
}

/// Drop from the bounding set every capability the spec's `bounding` list does not keep
/// (all of them when `caps` is None). Runs as root, before the user changes. Capabilities
/// the `caps` crate does not name (newer than CAP_CHECKPOINT_RESTORE) are dropped too.
pub fn drop_bounding(caps: Option<&LinuxCapabilities>) -> Result<()> {
    let known = caps::runtime::thread_all_supported();
    let keep = wanted(
        caps.and_then(|c| c.bounding().as_ref()),
        &known,
        "bounding",
        &mut Vec::new(),
    );
    let keep_mask: u64 = keep.iter().fold(0, |m, c| m | c.bitmask());
    for index in 0..64u8 {
        match bounding_has(index) {
            Ok(false) => {}
            Ok(true) if keep_mask & (1u64 << index) != 0 => {}
            Ok(true) => bounding_drop(index)?,
            // EINVAL: past the kernel's last capability.
            Err(Errno::EINVAL) => break,
            Err(errno) => {
                return Err(Error::Sys {
                    what: format!("prctl PR_CAPBSET_READ {}", cap_name(index)),
                    errno,
                })
            }
        }
    }
    Ok(())
}

/// What [`drop_bounding`] and [`Sets::of`] skip of `caps` on the running kernel, in that
/// order: for `create` and `exec` to report before the process applies them.
pub fn skipped(caps: Option<&LinuxCapabilities>) -> Vec<Skipped> {
    let known = caps::runtime::thread_all_supported();
    let mut skipped = Vec::new();
    let bounding = caps.and_then(|c| c.bounding().as_ref());
    wanted(bounding, &known, "bounding", &mut skipped);
    skipped.extend(Sets::of(caps).skipped);
    skipped
}

fn bounding_has(index: u8) -> std::result::Result<bool, Errno> {
    // SAFETY: PR_CAPBSET_READ takes a capability number by value and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(index), 0, 0, 0) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r == 1)
    }
}

fn bounding_drop(index: u8) -> Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes a capability number by value and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(index), 0, 0, 0) };
    if r < 0 {
        return Err(Error::Sys {
            what: format!("drop {} from the bounding set", cap_name(index)),
            errno: Errno::last(),
        });
    }
    Ok(())
}

/// The four sets to set, worked out beforehand: [`Sets::apply`] then makes only the
/// capget/capset/prctl calls (it may run under the container's seccomp filter).
#[derive(Debug)]
pub struct Sets {
    effective: CapsHashSet,
    inheritable: CapsHashSet,
    permitted: CapsHashSet,
    /// In capability-number order.
    ambient: Vec<caps::Capability>,
    pub skipped: Vec<Skipped>,
}

impl Sets {
    /// The spec's sets, less what the kernel does not know (and ambient capabilities that
    /// are not both permitted and inheritable), those listed in `skipped`.
    pub fn of(caps: Option<&LinuxCapabilities>) -> Sets {
        let known = caps::runtime::thread_all_supported();
        let mut skipped = Vec::new();
        let mut list = |get: fn(&LinuxCapabilities) -> &Option<Capabilities>, set| {
            wanted(
                caps.and_then(|c| get(c).as_ref()),
                &known,
                set,
                &mut skipped,
            )
        };
        let effective = list(LinuxCapabilities::effective, "effective");
        let inheritable = list(LinuxCapabilities::inheritable, "inheritable");
        let permitted = list(LinuxCapabilities::permitted, "permitted");
        let ambient = list(LinuxCapabilities::ambient, "ambient");
        let ambient = sorted(&ambient_subset(
            ambient,
            &permitted,
            &inheritable,
            &mut skipped,
        ));
        Sets {
            effective,
            inheritable,
            permitted,
            ambient,
            skipped,
        }
    }

    /// Set effective, inheritable and permitted to exactly the spec's lists (empty when
    /// `caps` is None), then the ambient set. Runs after `user::apply`. A capability that
    /// cannot be raised (e.g. CAP_SYS_RESOURCE when harun itself lacks it) is an error
    /// naming it and the set.
    pub fn apply(&self) -> Result<()> {
        // Effective first (still within the old permitted set), permitted last (the new
        // effective set must lie within it).
        set_base(CapSet::Effective, "effective", &self.effective)?;
        set_base(CapSet::Inheritable, "inheritable", &self.inheritable)?;
        set_base(CapSet::Permitted, "permitted", &self.permitted)?;

        caps::clear(None, CapSet::Ambient).map_err(|_| Error::Sys {
            what: "clear the ambient capability set".into(),
            errno: Errno::last(),
        })?;
        for &cap in &self.ambient {
            caps::raise(None, CapSet::Ambient, cap).map_err(|_| Error::Sys {
                what: format!("raise {cap} in the ambient set"),
                errno: Errno::last(),
            })?;
        }
        Ok(())
    }
}

/// Make every permitted capability effective again. Changing the uid from 0 empties the
/// effective set (PR_SET_KEEPCAPS keeps only the permitted one); installing a seccomp filter
/// without no_new_privs needs CAP_SYS_ADMIN effective. [`Sets::apply`] sets the final sets.
pub fn raise_effective() -> Result<()> {
    let permitted = caps::read(None, CapSet::Permitted).map_err(|_| Error::Sys {
        what: "read the permitted capability set".into(),
        errno: Errno::last(),
    })?;
    set_base(CapSet::Effective, "effective", &permitted)
}

fn set_base(set: CapSet, name: &'static str, value: &CapsHashSet) -> Result<()> {
    caps::set(None, set, value).map_err(|_| {
        // The caps crate keeps only a message; errno is still the failed capset's.
        let errno = Errno::last();
        let what = match unavailable(set, value) {
            Some(missing) => format!(
                "raise {missing} in the {name} set: harun itself does not hold it \
                 (not in its permitted set; missing from the host's bounding set?)"
            ),
            None => format!("set the {name} capability set"),
        };
        Error::Sys { what, errno }
    })
}

/// Diagnosis after a failed capset: the requested capabilities the process cannot gain
/// (new permitted/effective within the old permitted; new inheritable within the old
/// inheritable and permitted).
fn unavailable(set: CapSet, value: &CapsHashSet) -> Option<String> {
    let mut allowed = caps::read(None, CapSet::Permitted).ok()?;
    if matches!(set, CapSet::Inheritable) {
        allowed.extend(caps::read(None, CapSet::Inheritable).ok()?);
    }
    let missing: Vec<String> = sorted(value)
        .into_iter()
        .filter(|c| !allowed.contains(c))
        .map(|c| c.to_string())
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The spec's list as `caps` values the kernel knows; the others go to `skipped` (pure
/// given `known`).
fn wanted(
    list: Option<&Capabilities>,
    known: &CapsHashSet,
    set: &'static str,
    skipped: &mut Vec<Skipped>,
) -> CapsHashSet {
    let all = converted(list);
    for cap in sorted(&all) {
        if !known.contains(&cap) {
            skipped.push(Skipped {
                set,
                cap,
                reason: Why::UnknownToKernel,
            });
        }
    }
    all.into_iter().filter(|c| known.contains(c)).collect()
}

/// The ambient capabilities the kernel will accept: those both permitted and inheritable
/// (pure). runc and crun silently ignore the others; harun reports them.
fn ambient_subset(
    ambient: CapsHashSet,
    permitted: &CapsHashSet,
    inheritable: &CapsHashSet,
    skipped: &mut Vec<Skipped>,
) -> CapsHashSet {
    for cap in sorted(&ambient) {
        if !(permitted.contains(&cap) && inheritable.contains(&cap)) {
            skipped.push(Skipped {
                set: "ambient",
                cap,
                reason: Why::AmbientNotPermittedAndInheritable,
            });
        }
    }
    ambient
        .into_iter()
        .filter(|c| permitted.contains(c) && inheritable.contains(c))
        .collect()
}

fn converted(list: Option<&Capabilities>) -> CapsHashSet {
    list.into_iter().flatten().map(|&c| to_caps(c)).collect()
}

/// Capability-number order, for deterministic errors and logs.
fn sorted(set: &CapsHashSet) -> Vec<caps::Capability> {
    let mut v: Vec<_> = set.iter().copied().collect();
    crate::sort::sort_by_key(&mut v, |c| c.index());
    v
}

/// "CAP_SYS_ADMIN", or "capability 41" for one the `caps` crate does not name.
fn cap_name(index: u8) -> String {
    caps::all()
        .into_iter()
        .find(|c| c.index() == index)
        .map_or_else(|| format!("capability {index}"), |c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use caps::Capability as K;
    use oci_spec::runtime::LinuxCapabilitiesBuilder;
    use Capability as C;

    /// Every OCI variant (the match in `to_caps` is exhaustive, so a new variant fails to
    /// compile until it is mapped; this table checks the mapping itself).
    const TABLE: [(Capability, K); 41] = [
        (C::AuditControl, K::CAP_AUDIT_CONTROL),
        (C::AuditRead, K::CAP_AUDIT_READ),
        (C::AuditWrite, K::CAP_AUDIT_WRITE),
        (C::BlockSuspend, K::CAP_BLOCK_SUSPEND),
        (C::Bpf, K::CAP_BPF),
        (C::CheckpointRestore, K::CAP_CHECKPOINT_RESTORE),
        (C::Chown, K::CAP_CHOWN),
        (C::DacOverride, K::CAP_DAC_OVERRIDE),
        (C::DacReadSearch, K::CAP_DAC_READ_SEARCH),
        (C::Fowner, K::CAP_FOWNER),
        (C::Fsetid, K::CAP_FSETID),
        (C::IpcLock, K::CAP_IPC_LOCK),
        (C::IpcOwner, K::CAP_IPC_OWNER),
        (C::Kill, K::CAP_KILL),
        (C::Lease, K::CAP_LEASE),
        (C::LinuxImmutable, K::CAP_LINUX_IMMUTABLE),
        (C::MacAdmin, K::CAP_MAC_ADMIN),
        (C::MacOverride, K::CAP_MAC_OVERRIDE),
        (C::Mknod, K::CAP_MKNOD),
        (C::NetAdmin, K::CAP_NET_ADMIN),
        (C::NetBindService, K::CAP_NET_BIND_SERVICE),
        (C::NetBroadcast, K::CAP_NET_BROADCAST),
        (C::NetRaw, K::CAP_NET_RAW),
        (C::Perfmon, K::CAP_PERFMON),
        (C::Setgid, K::CAP_SETGID),
        (C::Setfcap, K::CAP_SETFCAP),
        (C::Setpcap, K::CAP_SETPCAP),
        (C::Setuid, K::CAP_SETUID),
        (C::SysAdmin, K::CAP_SYS_ADMIN),
        (C::SysBoot, K::CAP_SYS_BOOT),
        (C::SysChroot, K::CAP_SYS_CHROOT),
        (C::SysModule, K::CAP_SYS_MODULE),
        (C::SysNice, K::CAP_SYS_NICE),
        (C::SysPacct, K::CAP_SYS_PACCT),
        (C::SysPtrace, K::CAP_SYS_PTRACE),
        (C::SysRawio, K::CAP_SYS_RAWIO),
        (C::SysResource, K::CAP_SYS_RESOURCE),
        (C::SysTime, K::CAP_SYS_TIME),
        (C::SysTtyConfig, K::CAP_SYS_TTY_CONFIG),
        (C::Syslog, K::CAP_SYSLOG),
        (C::WakeAlarm, K::CAP_WAKE_ALARM),
    ];

    #[test]
    fn every_oci_capability_maps_to_the_same_kernel_capability() {
        let mut seen = CapsHashSet::new();
        for (oci, kernel) in TABLE {
            assert_eq!(to_caps(oci), kernel, "{oci}");
            // Same name on both sides: the JSON name is the kernel's.
            let json = serde_json::to_string(&oci).unwrap();
            assert_eq!(json, format!("\"{kernel}\""));
            assert!(seen.insert(kernel), "{kernel} mapped twice");
        }
        // Nothing the caps crate knows is unreachable from a spec.
        assert_eq!(seen, caps::all());
        // Spot-check kernel numbers (capability.h).
        assert_eq!(to_caps(C::Chown).index(), 0);
        assert_eq!(to_caps(C::SysAdmin).index(), 21);
        assert_eq!(to_caps(C::SysResource).index(), 24);
        assert_eq!(to_caps(C::CheckpointRestore).index(), 40);
    }

    fn set(list: &[Capability]) -> Option<Capabilities> {
        Some(list.iter().copied().collect())
    }

    #[test]
    fn effective_must_be_within_permitted() {
        assert!(validate(None).is_ok());
        let ok = LinuxCapabilitiesBuilder::default()
            .effective(set(&[C::Kill]).unwrap())
            .permitted(set(&[C::Kill, C::Chown]).unwrap())
            .build()
            .unwrap();
        assert!(validate(Some(&ok)).is_ok());
        let bad = LinuxCapabilitiesBuilder::default()
            .effective(set(&[C::Kill, C::NetRaw, C::SysAdmin]).unwrap())
            .permitted(set(&[C::Kill]).unwrap())
            .build()
            .unwrap();
        assert_eq!(
            validate(Some(&bad)).unwrap_err().to_string(),
            "process.capabilities.effective: CAP_NET_RAW is not in \
             process.capabilities.permitted (effective must be a subset)"
        );
        // Only effective given (permitted missing = empty): refused too. (From JSON: the
        // builder's default is the three-capability default set, not empty.)
        let bad: LinuxCapabilities =
            serde_json::from_str(r#"{"effective": ["CAP_KILL"]}"#).unwrap();
        assert!(validate(Some(&bad)).is_err());
    }

    #[test]
    fn capabilities_unknown_to_the_kernel_are_skipped() {
        let known: CapsHashSet = [K::CAP_KILL, K::CAP_CHOWN].into_iter().collect();
        let mut skipped = Vec::new();
        let list = set(&[C::Kill, C::CheckpointRestore, C::Bpf]);
        let got = wanted(list.as_ref(), &known, "bounding", &mut skipped);
        assert_eq!(got, [K::CAP_KILL].into_iter().collect());
        let text: Vec<String> = skipped.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            text,
            [
                "bounding CAP_BPF: not known to the running kernel, skipped",
                "bounding CAP_CHECKPOINT_RESTORE: not known to the running kernel, skipped",
            ]
        );
        // A missing list means the empty set.
        assert!(wanted(None, &known, "effective", &mut skipped).is_empty());
    }

    #[test]
    fn ambient_needs_permitted_and_inheritable() {
        let p: CapsHashSet = [K::CAP_KILL, K::CAP_NET_RAW].into_iter().collect();
        let i: CapsHashSet = [K::CAP_KILL, K::CAP_CHOWN].into_iter().collect();
        let a: CapsHashSet = [K::CAP_KILL, K::CAP_NET_RAW, K::CAP_CHOWN]
            .into_iter()
            .collect();
        let mut skipped = Vec::new();
        let got = ambient_subset(a, &p, &i, &mut skipped);
        assert_eq!(got, [K::CAP_KILL].into_iter().collect());
        let caps: Vec<K> = skipped.iter().map(|s| s.cap).collect();
        assert_eq!(caps, [K::CAP_CHOWN, K::CAP_NET_RAW]);
        assert!(skipped.iter().all(|s| s.set == "ambient"));
    }

    #[test]
    fn capability_names_by_number() {
        assert_eq!(cap_name(21), "CAP_SYS_ADMIN");
        assert_eq!(cap_name(41), "capability 41");
    }
}
