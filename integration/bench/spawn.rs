//! Running one measured command: spawn it, wait for it with wait4, keep its wall time, CPU
//! time and peak RSS (the runtime process and the children it waited for).
//!
//! On a hybrid-cgroup host every command runs in a fresh private mount namespace made between
//! fork and exec (crun refuses to run while it can see the cgroup2 mount, so for crun that
//! mount is detached there): every runtime pays the same wrapper, a single unshare(2).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

pub type R<T> = Result<T, String>;

/// One measurement.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub wall: Duration,
    /// user + system time of the process and its waited-for descendants.
    pub cpu: Duration,
    /// ru_maxrss: the largest RSS of the process or of one of its waited-for descendants.
    pub maxrss_kib: i64,
}

/// What to do between fork and exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    /// Nothing (a host with a pure cgroup2 hierarchy).
    None,
    /// unshare(CLONE_NEWNS), and with `hide_cgroup2` detach /sys/fs/cgroup/unified.
    PrivateMounts { hide_cgroup2: bool },
}

/// A command line plus how it is wrapped and where its stderr goes.
#[derive(Debug, Clone)]
pub struct Launch {
    pub argv: Vec<OsString>,
    pub wrap: Wrap,
    pub log: PathBuf,
}

/// Seconds a single command may take before it is killed and the benchmark fails.
static TIMEOUT_SECS: AtomicU32 = AtomicU32::new(120);

/// Install the SIGALRM handler the timeouts rely on (wait4 then fails with EINTR).
pub fn init_timeouts(secs: u32) -> R<()> {
    extern "C" fn on_alarm(_: libc::c_int) {}
    TIMEOUT_SECS.store(secs, Ordering::Relaxed);
    // SAFETY: the handler does nothing, which is async-signal-safe; no SA_RESTART so a
    // blocked wait4 returns EINTR when the alarm fires.
    unsafe {
        sigaction(
            Signal::SIGALRM,
            &SigAction::new(
                SigHandler::Handler(on_alarm),
                SaFlags::empty(),
                SigSet::empty(),
            ),
        )
    }
    .map_err(|e| format!("sigaction(SIGALRM): {e}"))?;
    Ok(())
}

fn timeout_secs() -> u32 {
    TIMEOUT_SECS.load(Ordering::Relaxed)
}

impl Launch {
    /// Start the command (stdin and stdout /dev/null, stderr appended to the log).
    pub fn spawn(&self) -> R<(i32, Instant)> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open {}: {e}", self.log.display()))?;
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Wrap::PrivateMounts { hide_cgroup2 } = self.wrap {
            // SAFETY: the closure only makes raw system calls (async-signal-safe) and
            // allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::unshare(libc::CLONE_NEWNS) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if hide_cgroup2
                        && libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let t0 = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.display()))?;
        // The child is reaped with wait4 below, never through std's Child.
        Ok((child.id() as i32, t0))
    }

    /// Run to completion; fails unless it exits 0 (the error quotes its stderr).
    pub fn run(&self) -> R<Sample> {
        let before = log_len(&self.log);
        let (pid, t0) = self.spawn()?;
        let (status, ru) = wait4(pid)?;
        let wall = t0.elapsed();
        self.check(status, before)?;
        Ok(sample(wall, &ru))
    }

    /// Fail with the command's stderr unless `status` is a zero exit.
    pub fn check(&self, status: libc::c_int, log_before: u64) -> R<()> {
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            return Ok(());
        }
        let how = if libc::WIFEXITED(status) {
            format!("exit code {}", libc::WEXITSTATUS(status))
        } else {
            format!("signal {}", libc::WTERMSIG(status))
        };
        Err(format!(
            "`{}` failed ({how}): {}",
            self.display(),
            log_tail(&self.log, log_before).trim()
        ))
    }

    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub fn sample(wall: Duration, ru: &libc::rusage) -> Sample {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Sample {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        maxrss_kib: ru.ru_maxrss,
    }
}

/// wait4 for `pid` (-1: any child) with the command timeout; (pid, status, rusage).
pub fn wait4_any(pid: i32) -> R<(i32, libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: alarm only schedules SIGALRM, whose handler is installed by init_timeouts.
    unsafe { libc::alarm(timeout_secs()) };
    // SAFETY: status and ru point to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let err = std::io::Error::last_os_error();
    // SAFETY: as above.
    unsafe { libc::alarm(0) };
    if r >= 0 {
        return Ok((r, status, ru));
    }
    if err.raw_os_error() == Some(libc::EINTR) && pid > 0 {
        // SAFETY: pid is our own unreaped child, so it cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = wait4_any(pid);
        return Err(format!("pid {pid} timed out after {} s", timeout_secs()));
    }
    Err(format!("wait4({pid}): {err}"))
}

pub fn wait4(pid: i32) -> R<(libc::c_int, libc::rusage)> {
    wait4_any(pid).map(|(_, s, r)| (s, r))
}

/// Reap children that are already gone (orphaned container processes reparented to us).
pub fn reap_strays() {
    loop {
        let mut status = 0;
        // SAFETY: status points to a live local; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return;
        }
    }
}

/// Wait until process `pid` (a container's init, not necessarily our child) is gone or a
/// zombie nobody but its parent can reap.
pub fn wait_gone(pid: i32) -> R<()> {
    let mut status = 0;
    // SAFETY: as in reap_strays, but blocking for our own child.
    unsafe { libc::alarm(timeout_secs()) };
    // SAFETY: status points to a live local.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    // SAFETY: cancels the alarm.
    unsafe { libc::alarm(0) };
    if r == pid {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(timeout_secs().into());
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    while Instant::now() < deadline {
        match std::fs::read_to_string(&stat) {
            Err(_) => return Ok(()),
            Ok(s)
                if s.rsplit_once(')')
                    .is_some_and(|(_, t)| t.trim_start().starts_with('Z')) =>
            {
                return Ok(())
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    Err(format!(
        "container process {pid} still runs after {} s",
        timeout_secs()
    ))
}

fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// What was appended to `log` after `from` (at most the last 2000 bytes).
fn log_tail(log: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(log) {
        let len = log_len(log);
        let start = from.max(len.saturating_sub(2000));
        let _ = f.seek(SeekFrom::Start(start));
        let _ = f.read_to_string(&mut text);
    }
    if text.trim().is_empty() {
        "(no output on stderr)".into()
    } else {
        text
    }
}
