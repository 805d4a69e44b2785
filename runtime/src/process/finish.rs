//! The end of every container process's setup, shared by the init, `exec` and the
//! startContainer hooks `start` runs like an exec: [`finish`] is the recipe, [`Exec`] the
//! program it leads to.
//!
//! ```text
//! rlimits -> bounding set -> cwd (as root) -> user -> cwd (as the user, if root was refused)
//!   -> program looked up -> fds closed -> signals reset
//!   -> [without no_new_privs: effective caps raised, seccomp filter installed]
//!   -> no_new_privs -> capabilities                                       (finish)
//!   ... the init: ready, wait for start ...
//!   -> [with no_new_privs: seccomp filter installed] -> execve              (Exec::run)
//! ```
//!
//! With no_new_privs the filter goes in right before execve: nothing of harun's runs under
//! it. Without no_new_privs the kernel requires CAP_SYS_ADMIN to install a filter, so it
//! goes in before the capabilities are set, and what follows runs under the container's
//! profile. That part is kept to calls runc's own init makes after its filter, so a profile
//! written for runc is enough: everything that needs a path, /proc or a newer syscall
//! (openat2, getcwd, close_range, statx, access, clone3...) comes before the filter. runc
//! enters the cwd as root before switching user and retries as the user on EPERM/EACCES;
//! harun does both before the filter, inside the root (RESOLVE_IN_ROOT, no magic links,
//! checked with getcwd: the CVE-2024-21626 class).
//!
//! Measured with `strace -f` and a default-allow profile (tests/fixtures/seccomp/README.md),
//! the calls after the filter, `noNewPrivileges: false`:
//! - runc 1.1.5 (run and exec, root and a user with a cwd and a startContainer hook):
//!   openat epoll_ctl fstatfs getdents64 fcntl close chdir capget read prctl newfstatat
//!   fstat fchown setgroups setgid setuid getcwd capset getppid faccessat2 futex write getpid
//!   pipe2 rt_sigprocmask rt_sigaction dup3 clone execve rt_sigreturn;
//! - harun before this order: prctl openat statx read close setgroups setresgid setresuid
//!   openat2 fchdir getcwd fcntl capget capset access sendto write rt_sigprocmask
//!   rt_sigaction close_range execve, and for a startContainer hook pipe2 prlimit64 mmap
//!   dup2 clone3 munmap pidfd_open poll wait4 rt_sigtimedwait;
//! - harun now: the init capget capset prctl write close execve, an exec'd process (and a
//!   startContainer hook, which `start` runs that way) capget capset prctl execve.

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

/// The fds a container process keeps: 0-2, the `preserve` ones after them (for the
/// program), and `also` (harun's own, close-on-exec: the channel, the exec fifo).
#[derive(Debug, Clone, Copy)]
pub struct Keep<'a> {
    pub preserve: u32,
    pub also: &'a [RawFd],
}

/// Run the recipe (module doc) up to the capabilities; `program` is run instead of looking
/// up `process.args[0]` (a hook's `path`). Returns the program, ready for [`Exec::run`].
pub fn finish(
    process: &Process,
    program: Option<&Path>,
    seccomp: Option<&Filter>,
    keep: Keep<'_>,
) -> Result<Exec> {
    rlimits::apply(process.rlimits().as_deref().unwrap_or(&[]))?;
    // Capabilities the running kernel does not know are skipped, as runc does (`create` and
    // `exec` returned them as warnings: capabilities::skipped).
    capabilities::drop_bounding(process.capabilities().as_ref())?;
    let entered = enter_cwd(process.cwd(), Refused::Retry)?;
    user::apply(process.user())?;
    if !entered {
        enter_cwd(process.cwd(), Refused::Fail)?;
    }
    let exec = Exec::prepare(process, program)?;
    close_fds_except(3 + keep.preserve as RawFd, keep.also)?;
    reset_signals()?;
    let caps = capabilities::Sets::of(process.capabilities().as_ref());
    if let Some(filter) = seccomp.filter(|_| !exec.seccomp_last) {
        capabilities::raise_effective()?;
        filter.install()?;
    }
    // Without no_new_privs this runs under the container's filter: capget/capset/prctl.
    if exec.seccomp_last {
        user::set_no_new_privileges()?;
    }
    caps.apply()?;
    Ok(exec)
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
    /// no_new_privs: the seccomp filter goes in right before execve (else `finish` did it).
    seccomp_last: bool,
}

impl Exec {
    fn prepare(p: &Process, program: Option<&Path>) -> Result<Self> {
        let args = p.args().as_deref().unwrap_or(&[]);
        let env = p.env().as_deref().unwrap_or(&[]);
        let path = match program {
            Some(path) => path.to_path_buf(),
            None => {
                let arg0 = args
                    .first()
                    .ok_or_else(|| Error::spec("process.args", "must not be empty"))?;
                lookup(arg0, env)?
            }
        };
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

    /// With no_new_privs, install the seccomp filter (the same one as given to [`finish`]):
    /// the last step before execve. Without, `finish` did.
    pub fn install_filter(&self, seccomp: Option<&Filter>) -> Result<()> {
        match seccomp.filter(|_| self.seccomp_last) {
            Some(filter) => filter.install(),
            None => Ok(()),
        }
    }

    /// execve; returns only the error.
    pub fn exec(self) -> Error {
        let e = execve(&self.path, &self.argv, &self.envp).unwrap_err();
        Error::sys(format!("exec `{}`", self.path.to_string_lossy()))(e)
    }

    /// [`Exec::install_filter`], then execve.
    pub fn run(self, seccomp: Option<&Filter>) -> Result<Infallible> {
        self.install_filter(seccomp)?;
        Err(self.exec())
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
/// keep that ignored in the container), except SIGPIPE: a write to a closed pipe or socket
/// (the channel, after the parent died) must fail with EPIPE, not kill the process. A
/// handler, unlike SIG_IGN, does not survive execve.
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
    // SAFETY: `ignore` is an async-signal-safe handler that does nothing.
    unsafe { libc::signal(libc::SIGPIPE, ignore as extern "C" fn(libc::c_int) as usize) };
    Ok(())
}

extern "C" fn ignore(_: libc::c_int) {}

/// What to do when entering the cwd is refused (EACCES, EPERM).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// As root: return false, to try again as the container's user (runc does: root may be
    /// refused where the user is not, e.g. on NFS with root squashing).
    Retry,
    Fail,
}

/// chdir into `cwd` inside the container's root without ever leaving it (CVE-2024-21626
/// class): symlinks resolve inside the root, magic links (/proc/self/fd/N, /proc/PID/cwd,
/// which could name a host directory) are refused, and the result is checked with getcwd.
/// `Ok(false)`: refused, and `refused` is `Retry`.
fn enter_cwd(cwd: &Path, refused: Refused) -> Result<bool> {
    match chdir_in_root(cwd) {
        Ok(()) => check_cwd_inside(cwd).map(|()| true),
        Err(Errno::EACCES | Errno::EPERM) if refused == Refused::Retry => Ok(false),
        Err(e) => Err(Error::sys(format!("enter process.cwd `{}`", cwd.display()))(e)),
    }
}

fn chdir_in_root(cwd: &Path) -> nix::Result<()> {
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&root, cwd, how) {
        Ok(dir) => fchdir(&dir),
        // Kernels without openat2 (< 5.6): a plain chdir, checked by the caller.
        Err(Errno::ENOSYS) => chdir(cwd),
        Err(e) => Err(e),
    }
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
    crate::sort::sort(&mut kept);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// (first fd, fds kept, the ranges closed)
    type GapCase<'a> = (RawFd, &'a [RawFd], &'a [(u32, u32)]);

    #[test]
    fn gaps_leave_out_exactly_the_kept_fds() {
        let max = u32::MAX;
        let table: [GapCase; 5] = [
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
