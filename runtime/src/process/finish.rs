//! The end of every container process's setup, shared by the init and by `exec`:
//! credentials (rlimits, bounding set, user, cwd, no_new_privs, capabilities) and the final
//! exec (signals reset, host fds closed, seccomp, PATH lookup inside the container).
//!
//! The seccomp filter goes in as late as possible: right before execve when no_new_privs is
//! set, so nothing of harun's runs under the container's filter. Without no_new_privs the
//! kernel requires CAP_SYS_ADMIN to install it, so it goes in after the bounding set is
//! dropped and before the user and capabilities change (runc's order); the rest of the setup
//! then runs under it.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, execve, fchdir};
use oci_spec::runtime::Process;

use crate::security::seccomp::Filter;
use crate::security::{capabilities, rlimits, user};
use crate::{Error, Result};

/// rlimits, bounding set, (seccomp without no_new_privs), user, cwd, no_new_privs,
/// capabilities — in this order (raising limits and dropping the bounding set need the
/// privileges the user switch gives up; the cwd is entered as the user; capabilities last).
pub fn apply_credentials(process: &Process, seccomp: Option<&Filter>) -> Result<()> {
    rlimits::apply(process.rlimits().as_deref().unwrap_or(&[]))?;
    // Capabilities the running kernel does not know are skipped, as runc does.
    let _unknown = capabilities::drop_bounding(process.capabilities().as_ref())?;
    if let Some(filter) = seccomp.filter(|_| !no_new_privs(process)) {
        filter.install()?;
    }
    user::apply(process.user())?;
    enter_cwd(process.cwd())?;
    if no_new_privs(process) {
        user::set_no_new_privileges()?;
    }
    let _unknown = capabilities::apply(process.capabilities().as_ref())?;
    Ok(())
}

fn no_new_privs(process: &Process) -> bool {
    process.no_new_privileges() == Some(true)
}

/// The resolved program, argv and envp, prepared early so a missing binary fails the command
/// (create, exec) rather than the container later.
pub struct Exec {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// The seccomp filter goes in right before execve (else `apply_credentials` did it).
    seccomp_last: bool,
}

impl Exec {
    pub fn prepare(p: &Process) -> Result<Self> {
        let args = p.args().as_deref().unwrap_or(&[]);
        let env = p.env().as_deref().unwrap_or(&[]);
        let arg0 = args
            .first()
            .ok_or_else(|| Error::spec("process.args", "must not be empty"))?;
        let path = lookup(arg0, env)?;
        let cstr = |s: &[u8]| CString::new(s).map_err(|_| Error::spec("process", "NUL byte"));
        Ok(Exec {
            path: cstr(path.as_os_str().as_bytes())?,
            argv: args
                .iter()
                .map(|s| cstr(s.as_bytes()))
                .collect::<Result<_>>()?,
            envp: env
                .iter()
                .map(|s| cstr(s.as_bytes()))
                .collect::<Result<_>>()?,
            seccomp_last: no_new_privs(p),
        })
    }

    /// Reset signals, mark every fd from 3 + `preserve_fds` close-on-exec, install the
    /// seccomp filter (with no_new_privs; pass the same one as to `apply_credentials`),
    /// execve.
    pub fn run(self, preserve_fds: u32, seccomp: Option<&Filter>) -> Result<Infallible> {
        reset_signals()?;
        close_other_fds(3 + preserve_fds)?;
        if let Some(filter) = seccomp.filter(|_| self.seccomp_last) {
            filter.install()?;
        }
        let e = execve(&self.path, &self.argv, &self.envp).unwrap_err();
        Err(Error::sys(format!(
            "exec `{}`",
            self.path.to_string_lossy()
        ))(e))
    }
}

/// Find `arg0` as Go's exec.LookPath does for runc: with a `/` it is a path; without,
/// search the container's PATH (from process.env, else the default). A file that is there
/// but cannot be run says why (EACCES, EISDIR), for a path and for a PATH entry alike.
fn lookup(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        return match executable(Path::new(arg0)) {
            Ok(()) => Ok(PathBuf::from(arg0)),
            Err(errno) => Err(Error::Sys {
                what: format!("process.args[0] `{arg0}`"),
                errno,
            }),
        };
    }
    let path_var = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    // The first entry that exists but cannot be run, reported if none can.
    let mut unusable = None;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        match executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(Errno::ENOENT | Errno::ENOTDIR) => {}
            Err(errno) => {
                unusable.get_or_insert((candidate, errno));
            }
        }
    }
    Err(match unusable {
        Some((path, errno)) => Error::Sys {
            what: format!("process.args[0] `{arg0}`: `{}` in $PATH", path.display()),
            errno,
        },
        None => Error::spec(
            "process.args[0]",
            format!("`{arg0}`: executable file not found in $PATH"),
        ),
    })
}

/// Whether `p` can be executed by this process: a directory is EISDIR, a file without an x
/// bit for us (or on a noexec mount) EACCES, a missing one ENOENT.
fn executable(p: &Path) -> std::result::Result<(), Errno> {
    let st = nix::sys::stat::stat(p)?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return Err(Errno::EISDIR);
    }
    nix::unistd::access(p, nix::unistd::AccessFlags::X_OK)
}

/// Unblock every signal and restore default dispositions (Rust ignores SIGPIPE; exec would
/// keep that ignored in the container).
fn reset_signals() -> Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(Error::sys("reset signal mask"))?;
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL for a valid signal number; failures (for signals the
        // kernel reserves) are harmless.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    Ok(())
}

/// chdir into `cwd` inside the container's root without ever leaving it (CVE-2024-21626
/// class): symlinks resolve inside the root, magic links (/proc/self/fd/N, /proc/PID/cwd,
/// which could name a host directory) are refused, and the result is checked with getcwd.
fn enter_cwd(cwd: &Path) -> Result<()> {
    let what = || format!("enter process.cwd `{}`", cwd.display());
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(what())(e))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let dir = match openat2(&root, cwd, how) {
        Ok(fd) => fd,
        // Kernels without openat2 (< 5.6): a plain chdir, checked below.
        Err(Errno::ENOSYS) => {
            chdir(cwd).map_err(|e| Error::sys(what())(e))?;
            return check_cwd_inside(cwd);
        }
        Err(e) => return Err(Error::sys(what())(e)),
    };
    fchdir(&dir).map_err(|e| Error::sys(what())(e))?;
    check_cwd_inside(cwd)
}

/// A cwd outside the root reads back as "(unreachable)/..." or fails: refuse either.
fn check_cwd_inside(cwd: &Path) -> Result<()> {
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::spec(
            "process.cwd",
            format!("`{}` leads outside the container", cwd.display()),
        )),
    }
}

/// Close (really close, not only on exec) every fd from `first` up except those in `keep`:
/// fds the caller of harun leaked must be gone before any path lookup in the container, and
/// a waiting init holds nothing of the host. close_range over the gaps between the kept
/// fds (no /proc needed: the container may have none); /proc/self/fd where the kernel lacks
/// close_range (< 5.9).
pub fn close_fds_except(first: RawFd, keep: &[RawFd]) -> Result<()> {
    for (lo, hi) in gaps(first, keep) {
        // SAFETY: close_range only closes fds of this process; the kept ones are outside
        // [lo, hi], and nothing else in this process refers to the others any more.
        if unsafe { libc::close_range(lo, hi, 0) } != 0 {
            return close_fds_listed(first, keep);
        }
    }
    Ok(())
}

/// Pure: the ranges from `first` up to u32::MAX that leave out every fd in `keep`.
fn gaps(first: RawFd, keep: &[RawFd]) -> Vec<(u32, u32)> {
    let first = first.max(0) as u32;
    let mut kept: Vec<u32> = keep
        .iter()
        .filter_map(|&k| u32::try_from(k).ok())
        .filter(|&k| k >= first)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let mut ranges = Vec::new();
    let mut lo = first;
    for k in kept {
        if k > lo {
            ranges.push((lo, k - 1));
        }
        lo = k + 1;
    }
    ranges.push((lo, u32::MAX));
    ranges
}

fn close_fds_listed(first: RawFd, keep: &[RawFd]) -> Result<()> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(Error::io("read", "/proc/self/fd"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd: &RawFd| *fd >= first && !keep.contains(fd))
        .collect();
    for fd in fds {
        // SAFETY: closing fds nothing in this process refers to any more (the listing's own
        // dir fd is closed already; anything else left is a leaked caller fd).
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Mark every fd from `first` up close-on-exec (CVE-2024-21626 class: no host fd may reach
/// the container). close_range(CLOSE_RANGE_CLOEXEC) where the kernel has it, else /proc.
fn close_other_fds(first: u32) -> Result<()> {
    // SAFETY: close_range only changes fd flags of this process.
    let r = unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) };
    if r == 0 {
        return Ok(());
    }
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(Error::io("read", "/proc/self/fd"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| fd >= first as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on an fd number; a closed one just returns EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_leave_out_exactly_the_kept_fds() {
        let max = u32::MAX;
        let table: [(RawFd, &[RawFd], &[(u32, u32)]); 5] = [
            (3, &[], &[(3, max)]),
            (3, &[7], &[(3, 6), (8, max)]),
            (3, &[3, 4, 9, 1, 4], &[(5, 8), (10, max)]),
            (5, &[6, 5, 2], &[(7, max)]),
            (0, &[0], &[(1, max)]),
        ];
        for (first, keep, want) in table {
            assert_eq!(gaps(first, keep), want, "{first} {keep:?}");
        }
    }
}
