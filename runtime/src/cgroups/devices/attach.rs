//! The bpf(2) calls: load a device program, attach it to a cgroup (BPF_F_ALLOW_MULTI, as
//! runc and systemd), list and detach the programs attached before.
//!
//! The `bpf_attr` layouts below are the prefixes of the kernel's union members
//! (include/uapi/linux/bpf.h) that harun uses; the kernel accepts a shorter attr and
//! zero-fills the rest.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::bpf::Insn;
use crate::cgroups::cgroup::Cgroup;
use crate::{Error, Result};

// enum bpf_cmd
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
// enum bpf_prog_type, enum bpf_attach_type, attach flags
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct Attach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct Query {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr): the syscall's return value.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> nix::Result<i64> {
    // SAFETY: attr is a live, initialized repr(C) prefix of `union bpf_attr` for `cmd`, and
    // its size is passed; the kernel reads (and for QUERY writes) only within that size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    Errno::result(r)
}

/// Load the device program; a verifier refusal carries the verifier's log.
pub fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"harun_dev");
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: the kernel returned a fresh program fd that nothing else owns.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(errno) => {
            // Again with the verifier's log, for the message.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let text = String::from_utf8_lossy(log.split(|b| *b == 0).next().unwrap_or(&[]))
                .lines()
                .last()
                .unwrap_or("")
                .to_string();
            Err(Error::Sys {
                what: format!(
                    "load the device cgroup BPF program ({} instructions){}",
                    insns.len(),
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!(": {text}")
                    }
                ),
                errno,
            })
        }
    }
}

/// Attach `prog` to `cg` as a device program, next to any already attached.
pub fn attach(cg: &Cgroup, prog: &OwnedFd) -> Result<()> {
    let mut attr = Attach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop).map_err(|e| {
        Error::sys(format!(
            "attach the device BPF program to `{}`",
            cg.path().display()
        ))(e)
    })
}

/// The ids of the device programs attached to `cg` itself.
pub fn attached(cg: &Cgroup) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = Query {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|e| {
        Error::sys(format!(
            "query the device BPF programs of `{}`",
            cg.path().display()
        ))(e)
    })?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Detach the program `id` from `cg` (gone meanwhile is fine).
pub fn detach(cg: &Cgroup, id: u32) -> Result<()> {
    let mut get = GetFdById {
        prog_id: id,
        ..Default::default()
    };
    let fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut get) {
        // SAFETY: a fresh program fd that nothing else owns.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd as i32) },
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("open BPF program {id}"))(e)),
    };
    let mut attr = Attach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    match bpf(BPF_PROG_DETACH, &mut attr) {
        Ok(_) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys(format!(
            "detach BPF program {id} from `{}`",
            cg.path().display()
        ))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_kernel() {
        // Offsets of include/uapi/linux/bpf.h.
        assert_eq!(std::mem::offset_of!(ProgLoad, insns), 8);
        assert_eq!(std::mem::offset_of!(ProgLoad, log_buf), 32);
        assert_eq!(std::mem::offset_of!(ProgLoad, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoad, expected_attach_type), 68);
        assert_eq!(std::mem::offset_of!(Attach, replace_bpf_fd), 16);
        assert_eq!(std::mem::offset_of!(Query, prog_ids), 16);
        assert_eq!(std::mem::offset_of!(Query, prog_cnt), 24);
        assert_eq!(std::mem::size_of::<GetFdById>(), 12);
    }
}
