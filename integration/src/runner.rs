//! Runs the `harun` binary with a private `--root` per test and checks what it leaves behind.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bundle::Bundle;
use crate::mountinfo;
use crate::procs::{self, ProcId};
use crate::tempdir::TempDir;
use crate::TAG_ENV;

/// How long one harun command may take before the test fails (the host has 2 busy cores).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long leak checks wait for killed processes to disappear.
const GRACE: Duration = Duration::from_secs(5);

/// One test's harun: the binary, a temp dir holding `--root`, bundles and captured output,
/// and what the test saw (container IDs and pids) for the leak checks.
#[derive(Debug)]
pub struct Harun {
    bin: PathBuf,
    tmp: TempDir,
    root: PathBuf,
    seq: AtomicUsize,
    seen: Mutex<Vec<ProcId>>,
    ids: Mutex<BTreeSet<String>>,
}

impl Harun {
    /// A runner for the binary at `bin` (use the `harun!()` macro in tests).
    pub fn new(bin: impl Into<PathBuf>) -> Harun {
        procs::become_subreaper();
        let tmp = TempDir::new("harun-test").expect("make /tmp/harun-test-XXXXXX");
        let root = tmp.path().join("root");
        for dir in [&root, &tmp.path().join("out"), &tmp.path().join("pids")] {
            fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).expect("chmod root");
        // Traversable by other users (a user namespace maps root to another uid, which must
        // still reach the bundles); the state root stays private.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        Harun {
            bin: bin.into(),
            tmp,
            root,
            seq: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            ids: Mutex::new(BTreeSet::new()),
        }
    }

    /// The test's temp dir (`/tmp/harun-test-XXXXXX`).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// The `--root` passed to every command.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The tag in every bundle's environment (`HARUN_TEST_TAG=<tag>`): the temp dir's name.
    pub fn tag(&self) -> String {
        self.dir()
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    }

    /// A container ID unique on this host: `{name}-{suffix of the temp dir}`. Unique IDs keep
    /// parallel tests apart in host-wide places (cgroup paths) even though roots differ.
    pub fn id(&self, name: &str) -> String {
        format!("{name}-{}", self.tmp.suffix())
    }

    /// A fresh path inside the temp dir (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}-{}", self.next()))
    }

    /// A new busybox bundle in the temp dir, tagged for the leak checks.
    pub fn bundle(&self) -> Bundle {
        self.bundle_at(&self.path("bundle"))
    }

    /// A new busybox bundle at `dir`.
    pub fn bundle_at(&self, dir: &Path) -> Bundle {
        let mut b = Bundle::create(dir).unwrap_or_else(|e| panic!("bundle {}: {e}", dir.display()));
        b.env(&format!("{TAG_ENV}={}", self.tag()));
        b
    }

    /// A command `harun --root ROOT ARGS...` to adjust and run.
    pub fn cmd<S: Into<OsString>>(&self, args: impl IntoIterator<Item = S>) -> Cmd<'_> {
        Cmd {
            h: self,
            global: vec!["--root".into(), self.root.clone().into()],
            args: args.into_iter().map(Into::into).collect(),
            cwd: None,
            timeout: DEFAULT_TIMEOUT,
            wrapper: Vec::new(),
        }
    }

    /// Runs `harun --root ROOT ARGS...`.
    pub fn exec(&self, args: &[&str]) -> Out {
        self.cmd(args).run()
    }

    /// `create --bundle B --pid-file F ID`; on success the init pid is tracked.
    pub fn create(&self, id: &str, b: &Bundle) -> Out {
        let pid_file = self.pid_file(id);
        let out = self
            .cmd(["create", "--bundle"])
            .arg(b.dir())
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .run();
        self.ids.lock().unwrap().insert(id.to_string());
        if out.code == 0 {
            if let Some(pid) = self.pid_from_file(id) {
                self.track(pid);
            }
        }
        out
    }

    pub fn start(&self, id: &str) -> Out {
        self.exec(&["start", id])
    }

    /// `state ID`; a pid in a successful answer is tracked.
    pub fn state(&self, id: &str) -> Out {
        let out = self.exec(&["state", id]);
        if let Ok(s) = State::parse(&out.stdout) {
            self.track(s.pid);
        }
        out
    }

    /// `state ID`, which must succeed with valid state JSON.
    pub fn state_of(&self, id: &str) -> State {
        let out = self.state(id).ok();
        State::parse(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"))
    }

    /// Polls `state` until the status is `status` (10 s at most). A container that does
    /// not exist yet (a foreground `run` still creating it) is waited for too.
    pub fn wait_status(&self, id: &str, status: &str) -> State {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.state(id);
            let now = State::parse(&out.stdout).ok();
            if let Some(s) = &now {
                if s.status == status {
                    return s.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "container {id} never became {status:?}; last answer:\n{out}"
            );
            sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&self, id: &str, signal: &str) -> Out {
        self.exec(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Out {
        self.exec(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Out {
        self.exec(&["delete", "--force", id])
    }

    /// Foreground `run --bundle B ID`.
    pub fn run(&self, id: &str, b: &Bundle) -> Out {
        self.ids.lock().unwrap().insert(id.to_string());
        self.cmd(["run", "--bundle"]).arg(b.dir()).arg(id).run()
    }

    /// Runs the bundle in the foreground under a fresh ID; it must exit 0. Returns stdout.
    pub fn run_ok(&self, b: &Bundle) -> String {
        let id = self.id(&format!("run{}", self.next()));
        self.run(&id, b).ok().stdout
    }

    /// Where `create` writes the pid file of `id`.
    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.dir().join("pids").join(format!("{id}.pid"))
    }

    pub fn pid_from_file(&self, id: &str) -> Option<i32> {
        fs::read_to_string(self.pid_file(id))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Remembers a container process the test saw, for the leak check.
    pub fn track(&self, pid: i32) {
        if pid <= 0 {
            return;
        }
        if let Some(p) = ProcId::of(pid) {
            let mut seen = self.seen.lock().unwrap();
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
    }

    /// Remembers an ID so that a failing test's cleanup deletes it.
    pub fn remember_id(&self, id: &str) {
        self.ids.lock().unwrap().insert(id.to_string());
    }

    /// Everything the test left behind, after waiting briefly for dying processes.
    pub fn leaks(&self) -> Vec<String> {
        let deadline = Instant::now() + GRACE;
        loop {
            let leaks = self.leaks_now();
            if leaks.is_empty() || Instant::now() > deadline {
                return leaks;
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Panics listing leaks: entries in `--root`, mounts mentioning the temp dir, live
    /// container processes (tracked pids, tagged environment, command line naming the dir).
    pub fn assert_clean(&self) {
        let leaks = self.leaks();
        assert!(leaks.is_empty(), "left behind:\n  {}", leaks.join("\n  "));
    }

    fn leaks_now(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        if let Ok(dir) = fs::read_dir(&self.root) {
            for e in dir.flatten() {
                leaks.push(format!("state entry {}", e.path().display()));
            }
        }
        let dir = self.dir().to_string_lossy().into_owned();
        for m in mountinfo::mounts_mentioning(&dir) {
            leaks.push(format!(
                "mount {} ({} from {})",
                m.mount_point, m.fstype, m.source
            ));
        }
        for p in self.seen.lock().unwrap().iter().filter(|p| p.is_alive()) {
            leaks.push(format!("container process {} still alive", p.pid));
        }
        for (pid, cmdline) in procs::scan(&format!("{TAG_ENV}={}", self.tag()), &dir) {
            leaks.push(format!("process {pid} `{cmdline}`"));
        }
        leaks.sort();
        leaks.dedup();
        leaks
    }

    /// Best-effort removal of whatever a failed test left: containers, processes, mounts.
    fn cleanup(&self) {
        let ids: Vec<String> = self.ids.lock().unwrap().iter().cloned().collect();
        for id in ids {
            let _ = self
                .cmd(["delete", "--force", id.as_str()])
                .timeout(Duration::from_secs(10))
                .try_run();
        }
        let dir = self.dir().to_string_lossy().into_owned();
        let seen = self.seen.lock().unwrap().clone();
        let mut doomed: Vec<ProcId> = procs::scan(&format!("{TAG_ENV}={}", self.tag()), &dir)
            .into_iter()
            .filter_map(|(pid, _)| ProcId::of(pid))
            .collect();
        doomed.extend(seen.iter().filter(|p| p.is_alive()));
        for p in &doomed {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.pid),
                nix::sys::signal::SIGKILL,
            );
        }
        // Killed container processes are our children (subreaper): `is_alive` reaps their
        // zombies (same pid and start time only, never another thread's Child), so none
        // outlives the test process.
        let deadline = Instant::now() + Duration::from_secs(2);
        while doomed.iter().any(ProcId::is_alive) && Instant::now() < deadline {
            sleep(Duration::from_millis(10));
        }
        for m in mountinfo::mounts_under(self.dir()) {
            if let Err(e) = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH) {
                eprintln!("warning: umount {m}: {e}");
            }
        }
    }

    fn next(&self) -> usize {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
}

impl Drop for Harun {
    fn drop(&mut self) {
        let leaks = if std::thread::panicking() {
            Vec::new()
        } else {
            self.leaks()
        };
        self.cleanup();
        let removed = self.tmp.remove();
        if std::thread::panicking() {
            if let Err(e) = removed {
                eprintln!("warning: {e}");
            }
            return;
        }
        assert!(leaks.is_empty(), "left behind:\n  {}", leaks.join("\n  "));
        if let Err(e) = removed {
            panic!("{e}");
        }
    }
}

/// A harun command being put together.
#[derive(Debug)]
pub struct Cmd<'a> {
    h: &'a Harun,
    global: Vec<OsString>,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    timeout: Duration,
    wrapper: Vec<OsString>,
}

impl Cmd<'_> {
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<S: Into<OsString>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds global flags (before the command), e.g. `--log F --log-format json`.
    pub fn global<S: Into<OsString>>(mut self, flags: impl IntoIterator<Item = S>) -> Self {
        self.global.extend(flags.into_iter().map(Into::into));
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Runs harun through a wrapper command: `WRAPPER... HARUN ARGS...`, e.g.
    /// `unshare -m ...` to give harun a mount namespace the test prepared.
    pub fn wrap<S: Into<OsString>>(mut self, wrapper: impl IntoIterator<Item = S>) -> Self {
        self.wrapper = wrapper.into_iter().map(Into::into).collect();
        self
    }

    /// Runs to completion (panics on timeout).
    pub fn run(self) -> Out {
        self.try_run().unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_run(self) -> Result<Out, String> {
        self.spawn().try_wait_out()
    }

    /// Starts the command in the background.
    pub fn spawn(self) -> Running {
        let n = self.h.next();
        let out_dir = self.h.dir().join("out");
        let stdout_path = out_dir.join(format!("{n}.stdout"));
        let stderr_path = out_dir.join(format!("{n}.stderr"));
        let mut command = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&self.h.bin);
                c
            }
            None => Command::new(&self.h.bin),
        };
        command
            .args(&self.global)
            .args(&self.args)
            .stdin(Stdio::null());
        // Files, not pipes: a detached container keeps the create's stdio open, and a pipe
        // would never reach EOF while it lives.
        let file =
            |p: &Path| File::create(p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
        command
            .stdout(file(&stdout_path))
            .stderr(file(&stderr_path));
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        let args: Vec<String> = self
            .wrapper
            .iter()
            .chain(std::iter::once(&self.h.bin.clone().into_os_string()))
            .chain(&self.global)
            .chain(&self.args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.h.bin.display()));
        Running {
            child: Some(child),
            args,
            stdout_path,
            stderr_path,
            deadline: Instant::now() + self.timeout,
        }
    }
}

/// A harun command running in the background (a foreground `run`, a racing `create`).
#[derive(Debug)]
pub struct Running {
    child: Option<Child>,
    args: Vec<String>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    deadline: Instant,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Waits for the command to exit (panics on timeout, after killing it).
    pub fn wait(self) -> Out {
        self.try_wait_out().unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_wait_out(mut self) -> Result<Out, String> {
        let mut child = self.child.take().expect("not yet waited");
        match procs::wait_until(&mut child, self.deadline) {
            Ok(Some(status)) => Ok(self.out(Some(status))),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let args = self.args.join(" ");
                Err(format!("timed out: {args}\n{}", self.out(None)))
            }
            Err(e) => Err(format!("wait {}: {e}", self.args.join(" "))),
        }
    }

    fn out(&self, status: Option<ExitStatus>) -> Out {
        let code = status.map_or(-1, procs::exit_code);
        Out {
            args: self.args.clone(),
            code,
            stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
            stdout_path: self.stdout_path.clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a finished harun command did.
#[derive(Debug, Clone)]
pub struct Out {
    pub args: Vec<String>,
    /// Exit code; 128+N when killed by signal N.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    stdout_path: PathBuf,
}

impl Out {
    /// Asserts exit 0.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success:\n{self}");
        self
    }

    /// Asserts the exit code.
    pub fn exit(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit {code}:\n{self}");
        self
    }

    /// Asserts a clean failure: exit 1, exactly one line on stderr, containing every key.
    pub fn error(self, keys: &[&str]) -> Self {
        assert_eq!(self.code, 1, "expected exit 1:\n{self}");
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one line on stderr:\n{self}"
        );
        for key in keys {
            assert!(
                lines[0].contains(key),
                "stderr does not mention {key:?}:\n{self}"
            );
        }
        self
    }

    /// stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// stdout as written by now: a detached container keeps writing to its create's stdout.
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}\nexit {}", self.args.join(" "), self.code)?;
        writeln!(f, "--- stdout\n{}", clip(&self.stdout))?;
        write!(f, "--- stderr\n{}", clip(&self.stderr))
    }
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(4000) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The fields of `harun state` tests look at, plus the whole JSON.
#[derive(Debug, Clone)]
pub struct State {
    pub id: String,
    pub status: String,
    pub pid: i32,
    pub bundle: String,
    pub json: Value,
}

impl State {
    /// Parses `state` output: an object with string `id`, `status`, `bundle`, `ociVersion`
    /// and a numeric `pid` (0 or absent when stopped).
    pub fn parse(text: &str) -> Result<State, String> {
        let json: Value =
            serde_json::from_str(text).map_err(|e| format!("state is not JSON: {e}"))?;
        let s = |k: &str| {
            json.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("state has no string `{k}`: {json}"))
        };
        let _ = s("ociVersion")?;
        let pid = match json.get("pid") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| format!("state pid is not a number: {json}"))?
                as i32,
        };
        Ok(State {
            id: s("id")?,
            status: s("status")?,
            pid,
            bundle: s("bundle")?,
            json,
        })
    }
}
