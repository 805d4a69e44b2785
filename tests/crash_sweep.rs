//! Crash consistency (issue 14, item 7): harun killed (SIGKILL) at any system call of
//! `create`, `start`, `run -d` or `delete --force` leaves nothing that `delete --force ID`
//! cannot remove, and the ID works again.
//!
//! How: each command runs once under `strace -o LOG` to list the system calls of the harun
//! process in order (its container init is a child strace does not follow: killing harun is
//! the crash under test). Then, once per kill point `(NAME, K)`, the command runs again
//! under `strace -e inject=NAME:signal=SIGKILL:when=K`: harun dies on entering its K-th
//! NAME call. After each, `delete --force ID` must succeed and leave no state dir, temp dir,
//! cgroup, mount or process; the next point's setup (which makes the container again under
//! the same ID) shows the ID works again. The kill run's own log shows harun died on
//! entering that very call.
//!
//! Budget: by default, every call from the first one naming the state root on (where the
//! side effects are), and one in [`STARTUP_STRIDE`] of the start-up calls before it (loading
//! libraries, the exe guard's re-exec, reading the bundle); `HARUN_CRASH_SWEEP=all`: every
//! call. Each sweep writes one line (not captured by the test harness) saying how many kill
//! points it covered and how long it took.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use harun_integration::{harun, hostfs, Bundle, Harun, Out};

/// One in this many of the calls before the first side effect, by default.
const STARTUP_STRIDE: usize = 16;

/// A command to kill, and what it needs to exist first.
struct Command {
    name: &'static str,
    /// No mount namespace: the container's mounts are made on the host (rootfs::host).
    host_mounts: bool,
    /// Brings the container to where the command starts (e.g. created, for `start`).
    setup: fn(&Sweep),
    args: fn(&Sweep) -> Vec<OsString>,
}

const COMMANDS: &[Command] = &[
    Command {
        name: "create",
        host_mounts: false,
        setup: |_| {},
        args: |s| s.with_bundle("create"),
    },
    Command {
        name: "start",
        host_mounts: false,
        setup: |s| s.create(),
        args: |s| vec!["start".into(), s.id.clone().into()],
    },
    Command {
        name: "run -d",
        host_mounts: false,
        setup: |_| {},
        args: |s| {
            let mut a = s.with_bundle("run");
            a.insert(1, "-d".into());
            a
        },
    },
    Command {
        name: "delete --force",
        host_mounts: false,
        setup: |s| {
            s.create();
            s.h.start(&s.id).ok();
        },
        args: |s| vec!["delete".into(), "--force".into(), s.id.clone().into()],
    },
    Command {
        name: "run -d, no mount namespace",
        host_mounts: true,
        setup: |_| {},
        args: |s| {
            let mut a = s.with_bundle("run");
            a.insert(1, "-d".into());
            a
        },
    },
];

struct Sweep {
    h: Harun,
    bundle: Bundle,
    id: String,
}

impl Sweep {
    fn new(cmd: &Command) -> Sweep {
        assert!(
            hostfs::host_has("strace"),
            "this test kills harun at each system call with strace: apt-get install strace"
        );
        let h = harun!();
        let mut bundle = h.bundle();
        bundle.args(&["sleep", "600"]);
        if cmd.host_mounts {
            bundle
                .without_namespace("mount")
                .remove("/linux/maskedPaths")
                .remove("/linux/readonlyPaths");
        }
        let id = h.id("crash");
        h.remember_id(&id);
        Sweep { h, bundle, id }
    }

    fn with_bundle(&self, cmd: &str) -> Vec<OsString> {
        vec![
            cmd.into(),
            "--bundle".into(),
            self.bundle.dir().into(),
            self.id.clone().into(),
        ]
    }

    fn create(&self) {
        self.h
            .cmd(["create", "--bundle"])
            .arg(self.bundle.dir())
            .arg(&self.id)
            .run()
            .ok();
    }

    /// The command under strace with `strace_args`.
    fn traced(&self, cmd: &Command, strace_args: &[String]) -> Out {
        let mut wrapper = vec!["strace".to_string(), "-qq".into()];
        wrapper.extend_from_slice(strace_args);
        self.h.cmd((cmd.args)(self)).wrap(wrapper).run()
    }

    /// `delete --force ID` must succeed and leave nothing of the container.
    fn recover(&self, what: &str) {
        let out = self.h.delete_force(&self.id);
        assert_eq!(out.code, 0, "{what}: delete --force failed:\n{out}");
        let mut left = self.h.leaks();
        let cgroup = cgroup_dir(&self.id);
        if cgroup.exists() {
            left.push(format!("cgroup {}", cgroup.display()));
        }
        assert!(
            left.is_empty(),
            "{what}: delete --force left behind:\n  {}",
            left.join("\n  ")
        );
    }
}

impl Drop for Sweep {
    /// A failed sweep leaves no cgroup on the host (the runner removes the rest).
    fn drop(&mut self) {
        let dir = cgroup_dir(&self.id);
        if dir.exists() {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
            for _ in 0..100 {
                if std::fs::remove_dir(&dir).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// Where harun puts container `id`'s cgroup by default.
fn cgroup_dir(id: &str) -> PathBuf {
    let unified = Path::new("/sys/fs/cgroup/unified");
    let mount = if unified.join("cgroup.procs").exists() {
        unified
    } else {
        Path::new("/sys/fs/cgroup")
    };
    mount.join("harun").join(id)
}

/// A kill point: the `nth` call of `syscall` (1-based), the `index`-th call of the run.
#[derive(Debug, Clone)]
struct Point {
    syscall: String,
    nth: usize,
    index: usize,
}

/// The calls in an strace log, in order, and the index of the first naming `marker` (other
/// than an exec: harun's command line names the root). The execve strace starts harun with
/// is none: it is over before strace can inject anything, and strace does not count it.
fn calls(log: &str, marker: &str) -> (Vec<Point>, Option<usize>) {
    let mut points: Vec<Point> = Vec::new();
    let mut first_marked = None;
    for (i, line) in log.lines().enumerate() {
        let Some((name, _)) = line.split_once('(') else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // "+++ killed by ...", "--- SIGCHLD ..."
        }
        if i == 0 && name == "execve" {
            continue;
        }
        let nth = 1 + points.iter().filter(|p| p.syscall == name).count();
        if first_marked.is_none() && !name.starts_with("exec") && line.contains(marker) {
            first_marked = Some(points.len());
        }
        points.push(Point {
            syscall: name.to_string(),
            nth,
            index: points.len(),
        });
    }
    (points, first_marked)
}

fn sweep(cmd: &Command) {
    let s = Sweep::new(cmd);
    let all = std::env::var("HARUN_CRASH_SWEEP").is_ok_and(|v| v == "all");
    let started = Instant::now();

    // 1. The calls of an undisturbed run.
    (cmd.setup)(&s);
    let log = s.h.path("strace.log");
    let out = s.traced(cmd, &["-o".into(), log.to_string_lossy().into_owned()]);
    assert_eq!(out.code, 0, "{}: the traced run failed:\n{out}", cmd.name);
    let log = std::fs::read_to_string(&log).expect("strace log");
    s.recover(&format!("{}: after the traced run", cmd.name));
    let root = format!("\"{}", s.h.root().display());
    let (points, first) = calls(&log, &root);
    let first = first.unwrap_or_else(|| panic!("{}: no call names {root}:\n{log}", cmd.name));
    let chosen: Vec<&Point> = points
        .iter()
        .filter(|p| all || p.index >= first || p.index % STARTUP_STRIDE == 0)
        .collect();

    // 2. One kill per point.
    let mut killed = 0;
    let mut finished: Vec<String> = Vec::new();
    for p in &chosen {
        let what = format!(
            "{}: SIGKILL at call #{} ({} #{})",
            cmd.name, p.index, p.syscall, p.nth
        );
        (cmd.setup)(&s);
        let kill_log = s.h.path("kill.log");
        let out = s.traced(
            cmd,
            &[
                "-o".into(),
                kill_log.to_string_lossy().into_owned(),
                "-e".into(),
                format!("trace={}", p.syscall),
                "-e".into(),
                format!("inject={}:signal=SIGKILL:when={}", p.syscall, p.nth),
            ],
        );
        match out.code {
            137 => {
                // Killed where meant: on entering the nth such call, which did not run.
                let log = std::fs::read_to_string(&kill_log).unwrap_or_default();
                let entered: Vec<&str> = log
                    .lines()
                    .filter(|l| l.starts_with(&format!("{}(", p.syscall)))
                    .collect();
                assert!(
                    entered.len() == p.nth && entered.last().is_some_and(|l| l.ends_with("= ?")),
                    "{what}: harun was killed elsewhere:\n{log}"
                );
                killed += 1;
            }
            // The run took another path (fewer such calls): it must have succeeded.
            0 => finished.push(format!("{} #{}", p.syscall, p.nth)),
            _ => panic!("{what}: harun failed instead of dying:\n{out}"),
        }
        s.recover(&what);
    }

    // 3. The ID works again after the last point (after the others, the next point's
    // setup or command showed it: an "already exists" there fails the sweep).
    s.h.cmd(["run", "-d", "--bundle"])
        .arg(s.bundle.dir())
        .arg(&s.id)
        .run()
        .ok();
    assert_eq!(s.h.state_of(&s.id).status, "running");
    s.recover(&format!("{}: after the sweep", cmd.name));
    s.h.assert_clean();
    let line = format!(
        "crash sweep: {}: {} of {} kill points ({}), {killed} killed harun, {} not \
         reached{}; {:.1}s\n",
        cmd.name,
        chosen.len(),
        points.len(),
        if all {
            "all: HARUN_CRASH_SWEEP=all".to_string()
        } else {
            format!(
                "from call #{first} on, 1 in {STARTUP_STRIDE} before; HARUN_CRASH_SWEEP=all \
                 for every one"
            )
        },
        finished.len(),
        match finished.len() {
            0 => String::new(),
            1..=4 => format!(" ({})", finished.join(", ")),
            _ => format!(" ({}, ...)", finished[..4].join(", ")),
        },
        started.elapsed().as_secs_f64()
    );
    // Straight to the stream: the harness captures only print!/eprint!.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

#[test]
fn killed_create_is_recovered_by_delete_force() {
    sweep(&COMMANDS[0]);
}

#[test]
fn killed_start_is_recovered_by_delete_force() {
    sweep(&COMMANDS[1]);
}

#[test]
fn killed_run_detached_is_recovered_by_delete_force() {
    sweep(&COMMANDS[2]);
}

#[test]
fn killed_delete_is_recovered_by_delete_force() {
    sweep(&COMMANDS[3]);
}

#[test]
fn killed_run_without_a_mount_namespace_is_recovered_by_delete_force() {
    sweep(&COMMANDS[4]);
}

#[test]
fn strace_logs_are_read_as_calls() {
    let log = "execve(\"/x\", [\"x\", \"/r\"]) = 0\n\
               mkdir(\"/r/c\", 0711) = 0\n\
               --- SIGCHLD {si_signo=SIGCHLD} ---\n\
               mkdir(\"/r/c/d\", 0711) = 0\n\
               +++ killed by SIGKILL +++\n";
    let (points, first) = calls(log, "\"/r");
    let got: Vec<(&str, usize, usize)> = points
        .iter()
        .map(|p| (p.syscall.as_str(), p.nth, p.index))
        .collect();
    assert_eq!(got, [("mkdir", 1, 0), ("mkdir", 2, 1)]);
    assert_eq!(first, Some(0));
}
