//! The engine: the shim's single-threaded helper process, forked before the shim starts its
//! first thread. It makes every container process (create, the start that releases the
//! init, exec) by calling the runtime library in-process, is their parent and the shim's
//! child subreaper, and reports their exits. See the module doc of `shim` for the picture.
//!
//! Two socketpairs join it to the shim: requests and their replies on one (the shim holds it
//! under a lock: one request at a time, as the engine works one at a time), exits on the
//! other, read by the shim's exit thread. An exit is only ever sent after the reply that
//! introduced its pid, and only for pids the engine made (orphans reparented to it are
//! reaped silently).

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Mutex;

use harun_runtime::container::{self, Console, CreateOptions, ExecOptions, ProcessOverrides};
use harun_runtime::rootfs::overlay;
use harun_runtime::state::StateRoot;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::errors::Failure;
use super::wire::{self, Wire};

/// How long the engine waits after a request before it gives back what it ran.
const IDLE_MS: u16 = 300;

/// Which of a process's stdio streams come with a request, in this order, as fds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct StdioFds {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl StdioFds {
    fn flags(self) -> [bool; 3] {
        [self.stdin, self.stdout, self.stderr]
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// `container::create` of bundle `bundle` under the state root `root`.
    Create {
        id: String,
        bundle: PathBuf,
        root: PathBuf,
        stdio: StdioFds,
    },
    /// `container::start`: the init execs the container's process.
    Start { id: String, root: PathBuf },
    /// `container::exec` of `process` (OCI process JSON).
    Exec {
        id: String,
        root: PathBuf,
        process: String,
        stdio: StdioFds,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// A process was made: fds [pidfd, pty master if `terminal`].
    Made {
        pid: i32,
        terminal: bool,
    },
    Started,
    Failed(Failure),
}

/// A process the engine made has exited: its status as a shell reports it (128 + signal).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Exit {
    pub pid: i32,
    pub status: u32,
}

/// The shim's side: requests go one at a time.
#[derive(Debug)]
pub struct Engine {
    requests: Mutex<Wire>,
}

/// A process the engine made, as the shim receives it.
#[derive(Debug)]
pub struct Made {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub master: Option<OwnedFd>,
}

impl Engine {
    /// Send `req` with `fds`, wait for the reply.
    pub fn call(
        &self,
        req: &Request,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(Reply, Vec<OwnedFd>), Failure> {
        let wire = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let gone = |e: io::Error| Failure::internal(format!("the shim's engine: {e}"));
        wire.send(req, fds).map_err(gone)?;
        match wire.recv::<Reply>().map_err(gone)? {
            Some(r) => Ok(r),
            None => Err(Failure::internal("the shim's engine has exited".into())),
        }
    }

    /// A create or exec: the new process.
    pub fn make(&self, req: &Request, fds: &[BorrowedFd<'_>]) -> Result<Made, Failure> {
        match self.call(req, fds)? {
            (Reply::Made { pid, terminal }, mut fds) if fds.len() == 1 + terminal as usize => {
                let master = terminal.then(|| fds.pop()).flatten();
                let pidfd = fds.pop().expect("checked length");
                Ok(Made { pid, pidfd, master })
            }
            (Reply::Failed(f), _) => Err(f),
            (other, _) => Err(Failure::internal(format!(
                "engine: unexpected reply {other:?}"
            ))),
        }
    }

    pub fn start(&self, id: &str, root: &std::path::Path) -> Result<(), Failure> {
        let req = Request::Start {
            id: id.into(),
            root: root.into(),
        };
        match self.call(&req, &[])? {
            (Reply::Started, _) => Ok(()),
            (Reply::Failed(f), _) => Err(f),
            (other, _) => Err(Failure::internal(format!(
                "engine: unexpected reply {other:?}"
            ))),
        }
    }
}

/// Fork the engine. Must be called while this process has one thread (checked: the engine
/// is a fork, and a fork of a threaded process may inherit a lock held for ever). Returns
/// the shim's handle and the exits wire.
pub fn spawn(keep: &[RawFd]) -> io::Result<(Engine, Wire)> {
    if threads()? != 1 {
        return Err(io::Error::other(
            "the shim's engine must be forked before the shim starts a thread",
        ));
    }
    let (req_ours, req_theirs) = wire::pair()?;
    let (exit_ours, exit_theirs) = wire::pair()?;
    // SAFETY: this process has one thread (checked above), so the child's copy of memory
    // holds no lock another thread owned; the child runs `serve` and never returns.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            drop(req_ours);
            drop(exit_ours);
            let mut own = vec![req_theirs.as_raw_fd(), exit_theirs.as_raw_fd()];
            own.extend_from_slice(keep);
            let code = match serve(&req_theirs, &exit_theirs, &own) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: _exit ends this process without running the shim's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { .. } => Ok((
            Engine {
                requests: Mutex::new(req_ours),
            },
            exit_ours,
        )),
    }
}

/// The number of threads of this process (link count of /proc/self/task, minus 2).
pub fn threads() -> io::Result<u64> {
    let st = nix::sys::stat::stat("/proc/self/task")?;
    #[allow(clippy::unnecessary_cast)] // nlink_t is u32 on some targets
    Ok((st.st_nlink as u64).saturating_sub(2))
}

/// The engine's life: dies with the shim, adopts orphans, serves until the shim hangs up.
fn serve(requests: &Wire, exits: &Wire, own: &[RawFd]) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; affects this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"harun-shim-eng".as_ptr(), 0, 0, 0);
    }
    close_other_fds(own);
    let null = File::options().read(true).write(true).open("/dev/null")?;
    set_stdio(&null, &[None, None, None])?;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()?;
    let sigchld = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    let mut mine = HashSet::new();
    // Set after a request: the first quiet moment gives back the code it ran (shed.rs).
    let mut worked = false;
    loop {
        let mut fds = [
            PollFd::new(requests.as_fd_borrow(), PollFlags::POLLIN),
            PollFd::new(sigchld.as_fd(), PollFlags::POLLIN),
        ];
        let timeout = if worked {
            PollTimeout::from(IDLE_MS)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(0) => {
                worked = false;
                crate::shed::clean_file_pages();
                continue;
            }
            Ok(_) => {}
        }
        while sigchld.read_signal().ok().flatten().is_some() {}
        reap(exits, &mut mine)?;
        if fds[0].any().unwrap_or(false) {
            let Some((req, fds)) = requests.recv::<Request>()? else {
                return Ok(()); // the shim is gone
            };
            let (reply, out) = handle(req, fds, &null);
            if let Reply::Made { pid, .. } = reply {
                mine.insert(pid);
            }
            let borrowed: Vec<BorrowedFd<'_>> = out.iter().map(AsFd::as_fd).collect();
            requests.send(&reply, &borrowed)?;
            worked = true;
        }
    }
}

trait AsFdBorrow {
    fn as_fd_borrow(&self) -> BorrowedFd<'_>;
}

impl AsFdBorrow for Wire {
    fn as_fd_borrow(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd lives as long as the Wire it is borrowed from.
        unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) }
    }
}

/// Reap every child that has exited; report the ones the engine made.
fn reap(exits: &Wire, mine: &mut HashSet<i32>) -> io::Result<()> {
    loop {
        let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code as u32),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as u32),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(()),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if mine.remove(&pid) {
            exits.send(&Exit { pid, status }, &[])?;
        }
    }
}

fn handle(req: Request, fds: Vec<OwnedFd>, null: &File) -> (Reply, Vec<OwnedFd>) {
    let result = match req {
        Request::Create {
            id,
            bundle,
            root,
            stdio,
        } => with_stdio(null, stdio, fds, || {
            let opts = CreateOptions {
                id: &id,
                bundle: &bundle,
                pid_file: None,
                console: Console::Internal,
                no_pivot: false,
                preserve_fds: 0,
                overlay: overlay::Request {
                    enabled: false,
                    layers: &[],
                    upper: None,
                },
                process: &ProcessOverrides::default(),
            };
            container::create(&StateRoot::new(root), &opts).map(|c| {
                super::log_warnings(&id, &c.warnings);
                (c.state.pid, c.pidfd.into_owned(), c.console_master)
            })
        }),
        Request::Start { id, root } => {
            return match container::start(&StateRoot::new(root), &id) {
                // Poststart hook failures are warnings (OCI runtime.md): the shim does not
                // fail the start for them.
                Ok(started) => {
                    super::log_warnings(&id, &started.warnings);
                    (Reply::Started, Vec::new())
                }
                Err(e) => (Reply::Failed(Failure::from(&e)), Vec::new()),
            };
        }
        Request::Exec {
            id,
            root,
            process,
            stdio,
        } => with_stdio(null, stdio, fds, || {
            let process = container::process_from_json(process.as_bytes(), "exec process")?;
            let opts = ExecOptions {
                id: &id,
                process,
                pid_file: None,
                console: Console::Internal,
                preserve_fds: 0,
            };
            container::exec(&StateRoot::new(root), opts).map(|e| {
                super::log_warnings(&id, &e.warnings);
                let pid = e.pidfd.pid();
                (pid, e.pidfd.into_owned(), e.console_master)
            })
        }),
    };
    match result {
        Ok((pid, pidfd, master)) => (
            Reply::Made {
                pid,
                terminal: master.is_some(),
            },
            std::iter::once(pidfd).chain(master).collect(),
        ),
        Err(e) => (Reply::Failed(Failure::from(&e)), Vec::new()),
    }
}

/// Run `f` with the request's stdio as this process's 0, 1, 2 (what the library hands a
/// new process), /dev/null for the streams not given; /dev/null again afterwards.
fn with_stdio<T>(
    null: &File,
    stdio: StdioFds,
    fds: Vec<OwnedFd>,
    f: impl FnOnce() -> harun_runtime::Result<T>,
) -> harun_runtime::Result<T> {
    let mut given = fds.into_iter();
    let streams: Vec<Option<OwnedFd>> = stdio
        .flags()
        .iter()
        .map(|&on| if on { given.next() } else { None })
        .collect();
    let refs: Vec<Option<BorrowedFd<'_>>> = streams
        .iter()
        .map(|s| s.as_ref().map(AsFd::as_fd))
        .collect();
    set_stdio(null, &refs).map_err(|e| harun_runtime::Error::io("dup2", "stdio")(e))?;
    let out = f();
    let _ = set_stdio(null, &[None, None, None]);
    out
}

fn set_stdio(null: &File, streams: &[Option<BorrowedFd<'_>>]) -> io::Result<()> {
    let pick = |i: usize| streams.get(i).copied().flatten().unwrap_or(null.as_fd());
    dup2_stdin(pick(0))?;
    dup2_stdout(pick(1))?;
    dup2_stderr(pick(2))?;
    Ok(())
}

/// Close every fd but 0, 1, 2 and `keep` (the shim's listener and the other ends of its
/// wires were inherited).
fn close_other_fds(keep: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let open: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing an fd this process owns and no Rust object of the engine uses
            // (the engine's own wires are in `keep`); the dir's fd is already closed.
            unsafe { libc::close(fd) };
        }
    }
}
