//! One cgroup directory, opened once: every file is read and written relative to its fd
//! (no path races, fewer lookups). Processes, freeze/thaw, kill, emptiness.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::{Error, Result};

/// How long freeze/thaw wait for the kernel to report the new state.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    dir: OwnedFd,
}

impl Cgroup {
    /// Open the cgroup directory at `path` (absolute, in the cgroup2 hierarchy).
    pub fn open(path: &Path) -> Result<Cgroup> {
        let dir = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("open cgroup `{}`", path.display()))(e))?;
        Ok(Cgroup {
            path: path.to_path_buf(),
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory fd (for clone3's CLONE_INTO_CGROUP and BPF attachment).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    fn file(&self, name: &str, flags: OFlag) -> nix::Result<OwnedFd> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Errno::EINVAL);
        }
        openat(&self.dir, name, flags | OFlag::O_CLOEXEC, Mode::empty())
    }

    /// Open the file `name` for reading (to poll it for changes with [`reread`]).
    pub fn open_read(&self, name: &str) -> nix::Result<OwnedFd> {
        self.file(name, OFlag::O_RDONLY)
    }

    /// Write `value` to the file `name` (open, one write, close); the bare errno on failure.
    pub fn write_raw(&self, name: &str, value: &str) -> nix::Result<()> {
        let fd = self.file(name, OFlag::O_WRONLY | OFlag::O_TRUNC)?;
        let n = nix::unistd::write(&fd, value.as_bytes())?;
        if n != value.len() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// Write `value` to `name`; the error names the file.
    pub fn write(&self, name: &str, value: &str) -> Result<()> {
        crate::trace!("cgroup: write `{value}` to `{}`", self.show(name));
        self.write_raw(name, value)
            .map_err(|e| Error::sys(format!("write `{value}` to `{}`", self.show(name)))(e))
    }

    /// The contents of `name`; None when the file does not exist.
    pub fn read_opt(&self, name: &str) -> Result<Option<String>> {
        let fd = match self.file(name, OFlag::O_RDONLY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(Error::sys(format!("open `{}`", self.show(name)))(e)),
        };
        read_all(&fd)
            .map(Some)
            .map_err(|e| Error::sys(format!("read `{}`", self.show(name)))(e))
    }

    /// The contents of `name`, which must exist.
    pub fn read(&self, name: &str) -> Result<String> {
        self.read_opt(name)?
            .ok_or_else(|| Error::sys(format!("read `{}`", self.show(name)))(Errno::ENOENT))
    }

    /// True when the file `name` exists in the cgroup.
    pub fn has(&self, name: &str) -> bool {
        nix::sys::stat::fstatat(&self.dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }

    fn show(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }

    /// The controllers enabled for this cgroup (`cgroup.controllers`).
    pub fn controllers(&self) -> Result<Vec<String>> {
        Ok(words(&self.read("cgroup.controllers")?))
    }

    /// A flat-keyed file (`key value` lines) as a map; None when absent.
    pub fn keyed(&self, name: &str) -> Result<Option<BTreeMap<String, u64>>> {
        Ok(self.read_opt(name)?.map(|t| parse_keyed(&t)))
    }

    /// The processes directly in this cgroup.
    pub fn procs(&self) -> Result<Vec<i32>> {
        Ok(parse_pids(&self.read("cgroup.procs")?))
    }

    /// The processes in this cgroup and every cgroup below it, sorted.
    pub fn all_procs(&self) -> Result<Vec<i32>> {
        let mut pids = self.procs()?;
        for child in self.children()? {
            match Cgroup::open(&child) {
                Ok(cg) => pids.extend(cg.all_procs()?),
                Err(e) if e.errno() == Some(Errno::ENOENT) => {} // removed meanwhile
                Err(e) => return Err(e),
            }
        }
        crate::sort::sort(&mut pids);
        pids.dedup();
        Ok(pids)
    }

    fn children(&self) -> Result<Vec<PathBuf>> {
        let entries = std::fs::read_dir(&self.path).map_err(Error::io("read", &self.path))?;
        Ok(entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect())
    }

    /// Move `pid` into this cgroup.
    pub fn add_proc(&self, pid: i32) -> Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// True while any process is in this cgroup or below (`cgroup.events` populated).
    pub fn populated(&self) -> Result<bool> {
        Ok(self.event("populated")?.is_some_and(|n| n > 0))
    }

    fn event(&self, key: &str) -> Result<Option<u64>> {
        Ok(self
            .keyed("cgroup.events")?
            .and_then(|m| m.get(key).copied()))
    }

    /// True when the cgroup is asked to be frozen (`cgroup.freeze` is 1).
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(self
            .read_opt("cgroup.freeze")?
            .is_some_and(|v| v.trim() == "1"))
    }

    /// Freeze every process in the cgroup; returns once the kernel reports them frozen.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Let a frozen cgroup run again; returns once the kernel reports it thawed.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        self.write("cgroup.freeze", if frozen { "1" } else { "0" })?;
        let want = u64::from(frozen);
        let done = self.wait_event("frozen", want, FREEZE_TIMEOUT)?;
        if !done {
            return Err(Error::FailedPrecondition(format!(
                "cgroup {} did not become {} within {}s",
                self.path.display(),
                if frozen { "frozen" } else { "thawed" },
                FREEZE_TIMEOUT.as_secs()
            )));
        }
        Ok(())
    }

    /// Wait until `cgroup.events` says `key value` (or the cgroup is gone); false on timeout.
    /// The kernel signals a change of the file with POLLPRI.
    pub fn wait_event(&self, key: &str, value: u64, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let fd = match self.file("cgroup.events", OFlag::O_RDONLY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENODEV) => return Ok(true),
            Err(e) => return Err(Error::sys(format!("open `{}`", self.show("cgroup.events")))(e)),
        };
        loop {
            let text = match reread(&fd) {
                Ok(t) => t,
                Err(Errno::ENODEV | Errno::ENOENT) => return Ok(true), // removed
                Err(e) => {
                    return Err(Error::sys(format!("read `{}`", self.show("cgroup.events")))(e))
                }
            };
            if parse_keyed(&text).get(key) == Some(&value) {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            // A regular file (a test fixture) is always "ready": do not spin on it.
            let step = left.min(Duration::from_millis(100));
            let ms = PollTimeout::try_from(step.as_millis() as i32).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLPRI)];
            match poll(&mut fds, ms) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll cgroup.events")(e)),
            }
        }
    }

    /// SIGKILL every process in the cgroup and below: `cgroup.kill` (Linux 5.14), else freeze,
    /// kill each process, thaw. A frozen cgroup is thawed afterwards so the killed
    /// processes can exit.
    pub fn kill_all(&self) -> Result<()> {
        match self.write_raw("cgroup.kill", "1") {
            Ok(()) => {
                if self.is_frozen()? {
                    self.thaw()?;
                }
                Ok(())
            }
            Err(Errno::ENOENT) => self.signal_each(Signal::SIGKILL),
            Err(e) => Err(Error::sys(format!(
                "write `1` to `{}`",
                self.show("cgroup.kill")
            ))(e)),
        }
    }

    /// Send `signal` to every process in the cgroup and below.
    pub fn signal_all(&self, signal: Signal) -> Result<()> {
        if signal == Signal::SIGKILL {
            self.kill_all()
        } else {
            self.signal_each(signal)
        }
    }

    /// Freeze (so nothing forks meanwhile), signal every process, then thaw unless the
    /// cgroup was frozen before (a paused container stays paused; a SIGKILL still thaws it).
    fn signal_each(&self, signal: Signal) -> Result<()> {
        let was_frozen = self.is_frozen()?;
        let can_freeze = self.has("cgroup.freeze");
        if can_freeze && !was_frozen {
            self.freeze()?;
        }
        let result = self.all_procs().map(|pids| {
            for pid in pids {
                // A process exiting meanwhile is fine.
                let _ = kill(Pid::from_raw(pid), signal);
            }
        });
        if can_freeze && (!was_frozen || signal == Signal::SIGKILL) {
            self.thaw()?;
        }
        result
    }
}

impl AsRawFd for Cgroup {
    fn as_raw_fd(&self) -> i32 {
        self.dir.as_raw_fd()
    }
}

fn read_all(fd: &OwnedFd) -> nix::Result<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Read a file from its start again (kernfs re-arms POLLPRI on a read).
pub fn reread(fd: &OwnedFd) -> nix::Result<String> {
    nix::unistd::lseek(fd, 0, nix::unistd::Whence::SeekSet)?;
    read_all(fd)
}

/// Whitespace-separated words.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// `key value` lines (cgroup.events, memory.events, cpu.stat, memory.stat); lines that do
/// not parse are skipped.
pub fn parse_keyed(text: &str) -> BTreeMap<String, u64> {
    // Inserts, not `collect()`, which would compile a sort (crate::sort says why not).
    let mut map = BTreeMap::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        if let (Some(k), Some(Ok(v))) = (it.next(), it.next().map(str::parse)) {
            map.insert(k.to_string(), v);
        }
    }
    map
}

/// cgroup.procs: one pid per line.
pub fn parse_pids(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        let m = parse_keyed("populated 1\nfrozen 0\nbad\nx y\n");
        assert_eq!(m.get("populated"), Some(&1));
        assert_eq!(m.get("frozen"), Some(&0));
        assert_eq!(m.len(), 2);
        assert_eq!(parse_pids("12\n7\n\nx\n"), vec![12, 7]);
        assert_eq!(words("cpu io  memory\n"), vec!["cpu", "io", "memory"]);
    }

    #[test]
    fn files_outside_the_directory_are_refused() {
        let dir = crate::cgroups::test_support::Fixture::new("escape");
        let cg = Cgroup::open(dir.path()).unwrap();
        for bad in ["../x", "a/b", "..", ""] {
            assert_eq!(cg.write_raw(bad, "1"), Err(Errno::EINVAL), "{bad}");
        }
        std::fs::write(dir.path().join("cgroup.freeze"), "0").unwrap();
        cg.write("cgroup.freeze", "1").unwrap();
        assert!(cg.is_frozen().unwrap());
        assert_eq!(cg.read_opt("nope").unwrap(), None);
        let e = cg.write("nope", "1").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert!(e.to_string().contains("/nope`"), "{e}");
    }
}
