//! Capability names and the masks /proc/PID/status shows (an oracle independent of the
//! runtime's own tables: numbers from linux/capability.h).

/// `CAP_*` names in kernel order: index = capability number.
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The mask of named capabilities. Panics on an unknown name (a test bug).
pub fn mask(names: &[&str]) -> u64 {
    names.iter().fold(0, |m, n| {
        let bit = NAMES
            .iter()
            .position(|c| c == n)
            .unwrap_or_else(|| panic!("unknown capability {n}"));
        m | 1 << bit
    })
}

/// The five capability sets of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
}

/// Reads CapInh/CapPrm/CapEff/CapBnd/CapAmb from /proc/PID/status text (None if any of
/// them is missing).
pub fn parse_status(text: &str) -> Option<CapSets> {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    Some(CapSets {
        inheritable: get("CapInh")?,
        permitted: get("CapPrm")?,
        effective: get("CapEff")?,
        bounding: get("CapBnd")?,
        ambient: get("CapAmb")?,
    })
}

/// The sets a process has after it execs a plain binary (no file capabilities, not setuid),
/// given the sets the runtime configured before the exec. capabilities(7) and
/// security/commoncap.c `cap_bprm_creds_from_file`:
/// - root (euid 0): P' = (bounding | inheritable), clamped to the old P under
///   no_new_privs when that would gain anything; then P' |= ambient; E' = P'.
/// - other users: P' = E' = ambient.
///
/// Inheritable, bounding and ambient carry over unchanged.
pub fn after_exec(configured: CapSets, uid0: bool, no_new_privs: bool) -> CapSets {
    let c = configured;
    let mut permitted = if uid0 { c.bounding | c.inheritable } else { 0 };
    if no_new_privs && permitted & !c.permitted != 0 {
        permitted &= c.permitted;
    }
    permitted |= c.ambient;
    let effective = if uid0 { permitted } else { c.ambient };
    CapSets {
        permitted,
        effective,
        ..c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_status() {
        assert_eq!(mask(&["CAP_CHOWN", "CAP_KILL"]), 0x21);
        assert_eq!(mask(&["CAP_CHECKPOINT_RESTORE"]), 1 << 40);
        let status = "Name:\tcat\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\n\
                      CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000020\n";
        let s = parse_status(status).expect("all five sets");
        assert_eq!(s.permitted, 0xa80425fb);
        assert_eq!(s.ambient, 0x20);
        assert_eq!(parse_status("CapInh:\t0\n"), None);
    }

    #[test]
    fn exec_transformation() {
        let c = CapSets {
            bounding: 0b1111,
            permitted: 0b0011,
            effective: 0b0001,
            inheritable: 0b0100,
            ambient: 0b0100,
        };
        // (root, nnp, expected permitted, expected effective)
        let table = [
            (true, false, 0b1111, 0b1111),
            (true, true, 0b0111, 0b0111),
            (false, true, 0b0100, 0b0100),
            (false, false, 0b0100, 0b0100),
        ];
        for (uid0, nnp, p, e) in table {
            let s = after_exec(c, uid0, nnp);
            assert_eq!((s.permitted, s.effective), (p, e), "uid0={uid0} nnp={nnp}");
            assert_eq!(
                (s.bounding, s.inheritable, s.ambient),
                (0b1111, 0b0100, 0b0100)
            );
        }
    }
}
