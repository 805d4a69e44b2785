//! What the shim knows of its containers and their processes, and how an exit becomes a
//! TaskExit.
//!
//! Ordering rules (containerd's runc shim's, which containerd and its clients rely on):
//! - a process's TaskExit comes after its TaskStart / TaskExecStarted: starting holds the
//!   container's `lifecycle` lock until the start event is queued; an exit takes the same
//!   lock before it queues TaskExit;
//! - an exit the engine reports before the shim has registered the pid (the process died
//!   at once) waits in `Table::early` until registration picks it up;
//! - the init's TaskExit comes after the TaskExit of every exec: once the init is gone no
//!   exec may start (`ExecCount::init_exited`), the execs still running are killed with it
//!   (a container without its own pid namespace: SIGKILL to its cgroup), and the init's
//!   exit waits until their count is zero;
//! - every byte a process wrote before it exited is copied out (bounded by [`DRAIN`])
//!   before its exit is published.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use containerd_shim_protos::events::task::TaskExit;
use containerd_shim_protos::topics::TASK_EXIT_EVENT_TOPIC;

use super::copy::Group;
use super::events::{timestamp, Publisher};
use super::record::Record;
use super::stdio::Paths;

/// How long an exit waits for the process's output to be copied out.
pub const DRAIN: Duration = Duration::from_secs(2);
/// How long the init's exit waits for its execs' exits (they are being killed).
const EXECS_BOUND: Duration = Duration::from_secs(10);

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Created (the init waits for start) or added (an exec not started yet).
    #[default]
    Created,
    Running,
    Exited,
}

#[derive(Debug, Default)]
pub struct ProcState {
    pub phase: Phase,
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
    pub master: Option<OwnedFd>,
    pub group: Option<Group>,
    pub logger: Option<Child>,
    /// CloseIO came (it may come before the copies exist: ctr sends it as soon as its own
    /// stdin ends, while Create is still running).
    pub stdin_closed: bool,
    /// Exit status and time.
    pub exit: Option<(u32, SystemTime)>,
}

/// The init or an exec.
#[derive(Debug)]
pub struct Proc {
    /// None: the container's init.
    pub exec_id: Option<String>,
    pub paths: Paths,
    /// An exec's OCI process JSON.
    pub spec: String,
    pub st: Mutex<ProcState>,
    exited: Condvar,
}

impl Proc {
    pub fn new(exec_id: Option<String>, paths: Paths, spec: String) -> Proc {
        Proc {
            exec_id,
            paths,
            spec,
            st: Mutex::new(ProcState::default()),
            exited: Condvar::new(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, ProcState> {
        lock(&self.st)
    }

    /// Wait for the exit (at most `bound`, if given); the exit status and time.
    pub fn wait(&self, bound: Option<Duration>) -> Option<(u32, SystemTime)> {
        let deadline = bound.map(|b| Instant::now() + b);
        let mut st = self.state();
        loop {
            if let Some(e) = st.exit {
                return Some(e);
            }
            st = match deadline {
                None => self.exited.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    self.exited
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

/// Execs running in a container, and whether its init is gone (no new ones then).
#[derive(Debug, Default)]
pub struct ExecCount {
    pub running: usize,
    pub init_exited: bool,
}

#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    /// The runtime's state root for this container.
    pub root: PathBuf,
    pub rootfs_mounted: AtomicBool,
    /// False when the container shares a pid namespace: its processes outlive the init.
    pub own_pid_ns: AtomicBool,
    /// Its cgroup, as create recorded it (stats, paused or not).
    pub cgroup: Mutex<Option<harun_runtime::cgroups::Record>>,
    pub init: Arc<Proc>,
    pub execs: Mutex<HashMap<String, Arc<Proc>>>,
    /// Held by start (create, start, exec start) until its event is queued; taken by an
    /// exit before it publishes.
    pub lifecycle: Mutex<()>,
    pub exec_count: Mutex<ExecCount>,
    exec_count_changed: Condvar,
}

impl Container {
    pub fn new(id: String, bundle: PathBuf, root: PathBuf, init: Proc) -> Container {
        Container {
            id,
            bundle,
            root,
            rootfs_mounted: AtomicBool::new(false),
            own_pid_ns: AtomicBool::new(true),
            cgroup: Mutex::new(None),
            init: Arc::new(init),
            execs: Mutex::default(),
            lifecycle: Mutex::default(),
            exec_count: Mutex::default(),
            exec_count_changed: Condvar::new(),
        }
    }

    /// The process `exec_id` ("" is the init).
    pub fn process(&self, exec_id: &str) -> Option<Arc<Proc>> {
        if exec_id.is_empty() {
            Some(self.init.clone())
        } else {
            lock(&self.execs).get(exec_id).cloned()
        }
    }

    /// An exec will start: counted, unless the init is gone.
    pub fn exec_starting(&self) -> bool {
        let mut n = lock(&self.exec_count);
        if n.init_exited {
            return false;
        }
        n.running += 1;
        true
    }

    /// An exec started and exited, or failed to start.
    pub fn exec_gone(&self) {
        let mut n = lock(&self.exec_count);
        n.running = n.running.saturating_sub(1);
        self.exec_count_changed.notify_all();
    }

    fn init_gone_wait_execs(&self) {
        let deadline = Instant::now() + EXECS_BOUND;
        let mut n = lock(&self.exec_count);
        n.init_exited = true;
        while n.running > 0 {
            let now = Instant::now();
            if now >= deadline {
                super::log(&format!(
                    "harun shim: {}: {} exec(s) still running after the init exited",
                    self.id, n.running
                ));
                return;
            }
            n = self
                .exec_count_changed
                .wait_timeout(n, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Every container of the shim, and the pids whose exits it waits for.
#[derive(Debug, Default)]
pub struct Table {
    pub containers: HashMap<String, Arc<Container>>,
    running: HashMap<i32, (Arc<Container>, Arc<Proc>)>,
    early: HashMap<i32, (u32, SystemTime)>,
}

/// What the exit path needs of the shim.
#[derive(Debug)]
pub struct Exits {
    pub table: Mutex<Table>,
    pub events: Arc<Publisher>,
}

impl Exits {
    /// `pid` (just made) belongs to `p`: its exit is handled from now on, or now if it came
    /// already.
    pub fn register(self: &Arc<Self>, c: &Arc<Container>, p: &Arc<Proc>, pid: i32) {
        let mut t = lock(&self.table);
        match t.early.remove(&pid) {
            Some((status, at)) => {
                drop(t);
                self.spawn_exit(c.clone(), p.clone(), status, at);
            }
            None => {
                t.running.insert(pid, (c.clone(), p.clone()));
            }
        }
    }

    /// The engine reports that `pid` exited.
    pub fn exited(self: &Arc<Self>, pid: i32, status: u32) {
        let at = SystemTime::now();
        let mut t = lock(&self.table);
        match t.running.remove(&pid) {
            Some((c, p)) => {
                drop(t);
                self.spawn_exit(c, p, status, at);
            }
            None => {
                t.early.insert(pid, (status, at));
            }
        }
    }

    fn spawn_exit(self: &Arc<Self>, c: Arc<Container>, p: Arc<Proc>, status: u32, at: SystemTime) {
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("exit".into())
            .stack_size(128 * 1024)
            .spawn(move || me.handle_exit(&c, &p, status, at));
        if let Err(e) = spawned {
            super::log(&format!("harun shim: cannot start an exit thread: {e}"));
        }
    }

    fn handle_exit(&self, c: &Container, p: &Proc, status: u32, at: SystemTime) {
        let is_init = p.exec_id.is_none();
        if is_init && !c.own_pid_ns.load(std::sync::atomic::Ordering::Relaxed) {
            // Its processes outlive it in a shared pid namespace: end them (and the execs).
            let root = harun_runtime::state::StateRoot::new(&c.root);
            let _ = harun_runtime::container::kill(&root, &c.id, libc::SIGKILL, true);
        }
        let drained = p.state().group.as_ref().map(|g| g.drained.clone());
        if let Some(d) = drained {
            if !d.wait(DRAIN) {
                super::log(&format!(
                    "harun shim: {}: output not drained within {DRAIN:?} of the exit",
                    c.id
                ));
            }
        }
        if is_init {
            c.init_gone_wait_execs();
        }
        let _lc = lock(&c.lifecycle);
        let pid = {
            let mut st = p.state();
            st.phase = Phase::Exited;
            st.exit = Some((status, at));
            st.pidfd = None;
            st.pid
        };
        p.exited.notify_all();
        if is_init {
            if let Some(mut r) = Record::load(&c.bundle) {
                let t = timestamp(at);
                r.exit = Some((status, t.seconds, t.nanos));
                let _ = r.save(&c.bundle);
            }
        }
        let mut e = TaskExit::new();
        e.container_id = c.id.clone();
        e.id = p.exec_id.clone().unwrap_or_else(|| c.id.clone());
        e.pid = pid as u32;
        e.exit_status = status;
        e.exited_at = Some(timestamp(at)).into();
        self.events.send(TASK_EXIT_EVENT_TOPIC, e);
        if !is_init {
            c.exec_gone();
        }
    }
}
