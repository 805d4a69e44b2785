//! Processes seen by a test: identity (pid + start time), liveness, leak scans; waiting for
//! a command with a deadline.

use std::fs;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::Once;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// A process identity that survives pid reuse: the pid and its start time (field 22 of
/// /proc/PID/stat, in clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

/// State letter and start time from /proc/PID/stat, None if there is no such process.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces and ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    // Field 3 is the state; field 22 the start time: index 22 - 3 = 19 after the ')'.
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl ProcId {
    /// The process with this pid now, if there is one.
    pub fn of(pid: i32) -> Option<ProcId> {
        stat(pid).map(|(_, start)| ProcId { pid, start })
    }

    /// Alive = the same process (same start time) exists and is not a zombie. A zombie that
    /// is our child (we are a subreaper) is reaped on the way.
    pub fn is_alive(&self) -> bool {
        match stat(self.pid) {
            Some((state, start)) if start == self.start => {
                if state == 'Z' || state == 'X' {
                    reap(self.pid);
                    false
                } else {
                    true
                }
            }
            _ => false,
        }
    }
}

/// Reaps `pid` if it is a zombie child of ours; a no-op otherwise.
pub fn reap(pid: i32) {
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

/// Waits for `child` until `deadline`, polling from 1 ms up to every 20 ms; `None` when the
/// deadline came first (the child still runs).
pub fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait()? {
            Some(status) => return Ok(Some(status)),
            None if Instant::now() < deadline => {
                sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            None => return Ok(None),
        }
    }
}

/// The exit code as a shell reports it: the status, or 128 + the signal that killed it.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Makes this (test) process the child subreaper, as containerd's shim or conmon would be:
/// container inits orphaned by `harun create` become our children, so their zombies can be
/// reaped (PID 1 of this host does not reap orphans). Only pids the tests track are reaped,
/// never with waitpid(-1), so `std::process::Child::wait` of other threads is undisturbed.
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            eprintln!("warning: PR_SET_CHILD_SUBREAPER: {e}");
        }
    });
}

/// Live (non-zombie) processes whose environment holds `env_entry` (e.g.
/// `HARUN_TEST_TAG=harun-test-Ab12Cd`) or whose command line mentions `needle`; with their
/// command lines, for the leak report. The calling process is never listed.
pub fn scan(env_entry: &str, needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me || matches!(stat(pid), None | Some(('Z', _)) | Some(('X', _))) {
            continue;
        }
        let cmdline = read_nul_list(pid, "cmdline").join(" ");
        let tagged = read_nul_list(pid, "environ").iter().any(|e| e == env_entry);
        if tagged || cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Live processes (zombies left out) whose command line (argv) satisfies `pred`.
pub fn with_args(pred: impl Fn(i32, &[String]) -> bool) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| !matches!(stat(pid), None | Some(('Z', _)) | Some(('X', _))))
        .filter(|&pid| pred(pid, &read_nul_list(pid, "cmdline")))
        .collect()
}

/// The processes of the containerd shim binary `shim` (argv[0] ends with it) serving
/// container `id` (`-id ID` in its arguments): for harun's shim, its daemon and engine.
pub fn shim_serving(shim: &str, id: &str) -> Vec<i32> {
    with_args(|_, args| {
        args.first().is_some_and(|a| a.ends_with(shim))
            && args.windows(2).any(|w| w[0] == "-id" && w[1] == id)
    })
}

fn read_nul_list(pid: i32, file: &str) -> Vec<String> {
    fs::read(format!("/proc/{pid}/{file}"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_identified() {
        let me = ProcId::of(std::process::id() as i32).expect("own stat");
        assert!(me.is_alive());
        let reused = ProcId {
            start: me.start + 1,
            ..me
        };
        assert!(
            !reused.is_alive(),
            "a different start time is a different process"
        );
    }
}

/// /proc/PID/limits text → (name, soft, hard), e.g. ("Max open files", "512", "1024").
pub fn parse_limits(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            // Columns: name (up to col 26), soft (21 wide), hard (21 wide), units.
            let name = line.get(..26)?.trim().to_string();
            let mut rest = line.get(26..)?.split_whitespace();
            Some((name, rest.next()?.to_string(), rest.next()?.to_string()))
        })
        .collect()
}

/// `key=value` lines of a container's output (other lines are ignored; the first `=`
/// splits).
pub fn parse_kv(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn limits_and_kv() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max open files            512                  1024                 files     \n\
                    Max core file size        0                    unlimited            bytes     \n";
        let l = parse_limits(text);
        assert_eq!(l[0], ("Max open files".into(), "512".into(), "1024".into()));
        assert_eq!(l[1].2, "unlimited");
        let kv = parse_kv("a=1\nnoise\nb = x=y\n");
        assert_eq!(kv["a"], "1");
        assert_eq!(kv["b"], "x=y");
    }
}
