//! Running a client command (podman, ctr, containerd) with a timeout, its output in files.
//!
//! Output goes to files, not pipes: a detached container, conmon or a shim can inherit the
//! client's stdout and keep a pipe open long after the client exited.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A command to run: program, arguments, environment, stdin, timeout.
#[derive(Debug)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    out_dir: PathBuf,
}

impl Cmd {
    /// `program` with output files in `out_dir` (created if missing).
    pub fn new(program: impl Into<OsString>, out_dir: &Path) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout: Duration::from_secs(120),
            out_dir: out_dir.to_path_buf(),
        }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args<S: Into<OsString>>(mut self, a: impl IntoIterator<Item = S>) -> Cmd {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Cmd {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Bytes for the command's stdin (else /dev/null).
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }

    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }

    /// The command line, for messages.
    pub fn line(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Starts the command in its own process group.
    pub fn spawn(self) -> Result<Running, String> {
        fs::create_dir_all(&self.out_dir)
            .map_err(|e| format!("mkdir {}: {e}", self.out_dir.display()))?;
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = |ext: &str| {
            self.out_dir
                .join(format!("{}.{n}.{ext}", std::process::id()))
        };
        let (stdout_path, stderr_path, stdin_path) = (path("out"), path("err"), path("in"));
        let file = |p: &Path| File::create(p).map_err(|e| format!("create {}: {e}", p.display()));
        let stdin = match &self.stdin {
            Some(data) => {
                fs::write(&stdin_path, data)
                    .map_err(|e| format!("write {}: {e}", stdin_path.display()))?;
                Stdio::from(
                    File::open(&stdin_path)
                        .map_err(|e| format!("open {}: {e}", stdin_path.display()))?,
                )
            }
            None => Stdio::null(),
        };
        let line = self.line();
        let mut c = Command::new(&self.program);
        c.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stdout(file(&stdout_path)?)
            .stderr(file(&stderr_path)?)
            .process_group(0);
        let child = c.spawn().map_err(|e| format!("spawn `{line}`: {e}"))?;
        let _ = fs::remove_file(&stdin_path);
        Ok(Running {
            child: Some(child),
            line,
            stdout_path,
            stderr_path,
            deadline: Instant::now() + self.timeout,
        })
    }

    /// Runs to completion; Err on a spawn failure or timeout (the group is killed).
    pub fn run(self) -> Result<Out, String> {
        self.spawn()?.wait()
    }
}

/// A command running in the background.
#[derive(Debug)]
pub struct Running {
    child: Option<Child>,
    line: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    deadline: Instant,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Output written so far.
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Error output written so far.
    pub fn stderr_now(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Waits until it exits; on timeout kills its process group and fails.
    pub fn wait(mut self) -> Result<Out, String> {
        let mut child = self.child.take().ok_or("already waited")?;
        match crate::procs::wait_until(&mut child, self.deadline) {
            Ok(Some(status)) => Ok(self.out(crate::procs::exit_code(status))),
            Ok(None) => {
                kill_group(&mut child);
                let out = self.out(-1);
                Err(format!("timed out: {out}"))
            }
            Err(e) => Err(format!("wait `{}`: {e}", self.line)),
        }
    }

    /// Sends `signal` to the command (not its group).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal);
    }

    fn out(&self, code: i32) -> Out {
        let out = Out {
            line: self.line.clone(),
            code,
            stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
        };
        let _ = fs::remove_file(&self.stdout_path);
        let _ = fs::remove_file(&self.stderr_path);
        out
    }
}

fn kill_group(child: &mut Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::SIGKILL);
    let _ = child.wait();
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
            let _ = fs::remove_file(&self.stdout_path);
            let _ = fs::remove_file(&self.stderr_path);
        }
    }
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Out {
    pub line: String,
    /// Exit code; 128+N when killed by signal N; -1 on timeout.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Ok(self) on exit 0, else Err with the whole story.
    pub fn ok(self) -> Result<Out, String> {
        self.exit(0)
    }

    /// Ok(self) on exit `code`.
    pub fn exit(self, code: i32) -> Result<Out, String> {
        if self.code == code {
            Ok(self)
        } else {
            Err(format!("expected exit {code}:\n{self}"))
        }
    }

    /// Ok(self) on any non-zero exit.
    pub fn failed(self) -> Result<Out, String> {
        if self.code != 0 {
            Ok(self)
        } else {
            Err(format!("expected a failure:\n{self}"))
        }
    }

    /// stdout without surrounding whitespace.
    pub fn text(&self) -> &str {
        self.stdout.trim()
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clip = |s: &str| s.chars().take(3000).collect::<String>();
        writeln!(f, "$ {}\nexit {}", self.line, self.code)?;
        writeln!(f, "--- stdout\n{}", clip(&self.stdout))?;
        write!(f, "--- stderr\n{}", clip(&self.stderr))
    }
}
