//! The Task service (containerd's task API v2) over the shim's containers.
//!
//! Calls that make processes go to the engine (engine.rs); the others (kill, pause, resume,
//! update, pids, stats, delete) call the runtime library right here: they never clone, so
//! the shim's threads do not matter to them.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

use containerd_shim_protos::api::{self, Empty};
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskIO, TaskPaused, TaskResumed,
    TaskStart,
};
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::{Options, ProcessDetails};
use containerd_shim_protos::topics::*;
use containerd_shim_protos::ttrpc::{Code, TtrpcContext};
use containerd_shim_protos::types::task::{ProcessInfo, Status};
use harun_runtime::cgroups::{ops, Cgroup};
use harun_runtime::container;
use harun_runtime::state::StateRoot;
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources};

use super::copy::Copier;
use super::engine::{Engine, Request};
use super::errors::Failure;
use super::events::{timestamp, to_any, Publisher, METRICS, PROCESS_DETAILS};
use super::oom::Oom;
use super::record::Record;
use super::stdio::{Paths, Prepared};
use super::tasks::{lock, Container, Exits, Phase, Proc, DRAIN};
use super::{metrics, mounts};

/// Where container state lives when containerd does not say (runc's is /run/containerd/runc).
pub const DEFAULT_ROOT: &str = "/run/containerd/harun";
/// How long a delete of a created (never started) container waits for its init to die.
const KILL_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

type R<T> = Result<T, Failure>;

/// The shim's one service.
#[derive(Debug)]
pub struct Service {
    ns: String,
    engine: Engine,
    exits: Arc<Exits>,
    copier: Copier,
    oom: Oom,
    shutdown: Arc<(Mutex<bool>, Condvar)>,
}

impl Service {
    pub fn new(
        ns: String,
        engine: Engine,
        events: Arc<Publisher>,
        shutdown: Arc<(Mutex<bool>, Condvar)>,
    ) -> std::io::Result<Service> {
        Ok(Service {
            ns,
            engine,
            exits: Arc::new(Exits {
                table: Mutex::default(),
                events: events.clone(),
            }),
            copier: Copier::spawn()?,
            oom: Oom::spawn(events)?,
            shutdown,
        })
    }

    /// What the exit thread feeds.
    pub fn exits(&self) -> Arc<Exits> {
        self.exits.clone()
    }

    fn events(&self) -> &Publisher {
        &self.exits.events
    }

    fn container(&self, id: &str) -> R<Arc<Container>> {
        lock(&self.exits.table)
            .containers
            .get(id)
            .cloned()
            .ok_or_else(|| Failure::not_found(format!("container `{id}` not created")))
    }

    fn process(&self, id: &str, exec_id: &str) -> R<(Arc<Container>, Arc<Proc>)> {
        let c = self.container(id)?;
        let p = c.process(exec_id).ok_or_else(|| {
            Failure::not_found(format!("process `{exec_id}` of `{id}` does not exist"))
        })?;
        Ok((c, p))
    }

    fn root_for(
        &self,
        options: Option<&containerd_shim_protos::protobuf::well_known_types::any::Any>,
    ) -> PathBuf {
        let configured = options
            .filter(|a| a.type_url.ends_with("containerd.runc.v1.Options"))
            .and_then(|a| Options::parse_from_bytes(&a.value).ok())
            .map(|o| o.root)
            .filter(|r| !r.is_empty());
        Path::new(configured.as_deref().unwrap_or(DEFAULT_ROOT)).join(&self.ns)
    }

    fn do_create(&self, c: &Arc<Container>, req: &api::CreateTaskRequest) -> R<i32> {
        if !req.rootfs.is_empty() {
            mounts::mount_all(&req.rootfs, &c.bundle.join("rootfs"))?;
            c.rootfs_mounted.store(true, Ordering::Relaxed);
        }
        let mut record = Record {
            root: c.root.clone(),
            ..Default::default()
        };
        record.save(&c.bundle)?;
        let (pid, st) = self.make(c, &c.init, |stdio| Request::Create {
            id: c.id.clone(),
            bundle: c.bundle.clone(),
            root: c.root.clone(),
            stdio,
        })?;
        let _ = harun_runtime::state::write_file_atomic(
            &c.bundle.join("init.pid"),
            pid.to_string().as_bytes(),
        );
        record.pid = pid;
        let _ = record.save(&c.bundle);
        if let Some(st) = st {
            c.own_pid_ns
                .store(own_pid_namespace(&st.config), Ordering::Relaxed);
            if let Some(cg) = &st.cgroup {
                self.oom.add(&c.id, &cg.path);
            }
            *lock(&c.cgroup) = st.cgroup;
        }
        Ok(pid)
    }

    /// Make process `p` of `c` through the engine with its stdio wired; registered for its
    /// exit. Also the container's state, read after a create.
    fn make(
        &self,
        c: &Arc<Container>,
        p: &Arc<Proc>,
        request: impl FnOnce(super::engine::StdioFds) -> Request,
    ) -> R<(i32, Option<harun_runtime::state::State>)> {
        let name = p.exec_id.as_deref().unwrap_or(&c.id);
        let mut prepared = Prepared::new(&p.paths, &self.ns, name)?;
        let fds: Vec<BorrowedFd<'_>> = prepared.container.iter().map(AsFd::as_fd).collect();
        let made = self.engine.make(&request(prepared.fds), &fds);
        drop(fds);
        // The container's ends are the container's now: ours must not keep its pipes open.
        prepared.container.clear();
        let made = match made {
            Ok(m) => m,
            Err(e) => {
                if let Some(mut l) = prepared.logger.take() {
                    let _ = l.kill();
                    let _ = l.wait();
                }
                return Err(e);
            }
        };
        let mut streams = std::mem::take(&mut prepared.streams);
        if let Some(m) = &made.master {
            streams.extend(prepared.console_streams(m)?);
        }
        let group = self.copier.add(streams);
        {
            let mut st = p.state();
            st.pid = made.pid;
            st.pidfd = Some(made.pidfd);
            st.master = made.master;
            if st.stdin_closed {
                self.copier.close_stdin(group.id);
            }
            st.group = Some(group);
            st.logger = prepared.logger.take();
        }
        self.exits.register(c, p, made.pid);
        let state = match p.exec_id {
            None => StateRoot::new(&c.root).read(&c.id).ok(),
            Some(_) => None,
        };
        Ok((made.pid, state))
    }

    /// Undo what a create did before it failed.
    fn undo_create(&self, c: &Container) {
        if c.rootfs_mounted.load(Ordering::Relaxed) {
            let _ = mounts::unmount_all(&c.bundle.join("rootfs"));
        }
        lock(&self.exits.table).containers.remove(&c.id);
    }

    fn start_init(&self, c: &Arc<Container>) -> R<u32> {
        let _lc = lock(&c.lifecycle);
        let (phase, pid) = {
            let st = c.init.state();
            (st.phase, st.pid)
        };
        if phase != Phase::Created {
            return Err(Failure::precondition(format!(
                "cannot start container `{}`: it is {}",
                c.id,
                if phase == Phase::Running {
                    "running"
                } else {
                    "stopped"
                }
            )));
        }
        self.engine.start(&c.id, &c.root)?;
        c.init.state().phase = Phase::Running;
        let mut e = TaskStart::new();
        e.container_id = c.id.clone();
        e.pid = pid as u32;
        self.events().send(TASK_START_EVENT_TOPIC, e);
        Ok(pid as u32)
    }

    fn start_exec(&self, c: &Arc<Container>, exec_id: &str) -> R<u32> {
        let p = c
            .process(exec_id)
            .ok_or_else(|| Failure::not_found(format!("exec `{exec_id}` does not exist")))?;
        if !c.exec_starting() {
            return Err(Failure::precondition(format!(
                "container `{}` init process is not running",
                c.id
            )));
        }
        let _lc = lock(&c.lifecycle);
        if p.state().phase != Phase::Created {
            c.exec_gone();
            return Err(Failure::precondition(format!(
                "exec `{exec_id}` was started already"
            )));
        }
        let made = self.make(c, &p, |stdio| Request::Exec {
            id: c.id.clone(),
            root: c.root.clone(),
            process: p.spec.clone(),
            stdio,
        });
        let pid = match made {
            Ok((pid, _)) => pid,
            Err(e) => {
                c.exec_gone();
                return Err(e);
            }
        };
        {
            let mut st = p.state();
            if st.phase == Phase::Created {
                st.phase = Phase::Running;
            }
        }
        let mut e = TaskExecStarted::new();
        e.container_id = c.id.clone();
        e.exec_id = exec_id.to_string();
        e.pid = pid as u32;
        self.events().send(TASK_EXEC_STARTED_EVENT_TOPIC, e);
        Ok(pid as u32)
    }

    fn delete_exec(&self, c: &Container, exec_id: &str) -> R<api::DeleteResponse> {
        let mut execs = lock(&c.execs);
        let p = execs
            .get(exec_id)
            .cloned()
            .ok_or_else(|| Failure::not_found(format!("exec `{exec_id}` does not exist")))?;
        let st = p.state();
        if st.phase == Phase::Running {
            return Err(Failure::precondition(format!(
                "cannot delete exec `{exec_id}`: it is running"
            )));
        }
        if let Some(g) = &st.group {
            self.copier.remove(g.id);
        }
        let resp = delete_response(st.pid, st.exit);
        drop(st);
        execs.remove(exec_id);
        Ok(resp)
    }

    fn delete_init(&self, c: &Arc<Container>) -> R<api::DeleteResponse> {
        let root = StateRoot::new(&c.root);
        let phase = c.init.state().phase;
        match phase {
            Phase::Running => {
                return Err(Failure::precondition(format!(
                    "cannot delete container `{}`: it is running",
                    c.id
                )))
            }
            Phase::Created => {
                // Never started: delete kills the waiting init; its exit follows.
                let warnings = container::delete(&root, &c.id, true)?;
                super::log_warnings(&c.id, &warnings);
                c.init.wait(Some(KILL_BOUND));
            }
            Phase::Exited => {}
        }
        match container::delete(&root, &c.id, true) {
            Ok(warnings) => super::log_warnings(&c.id, &warnings),
            Err(e) if e.kind() == harun_runtime::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.oom.remove(&c.id);
        let (pid, exit, group, logger) = {
            let mut st = c.init.state();
            (st.pid, st.exit, st.group.take(), st.logger.take())
        };
        if let Some(g) = group {
            g.drained.wait(DRAIN);
            self.copier.remove(g.id);
        }
        for p in lock(&c.execs).drain().map(|(_, p)| p) {
            if let Some(g) = p.state().group.take() {
                self.copier.remove(g.id);
            }
        }
        reap_logger(logger);
        if c.rootfs_mounted.load(Ordering::Relaxed) {
            mounts::unmount_all(&c.bundle.join("rootfs"))?;
        }
        lock(&self.exits.table).containers.remove(&c.id);
        let resp = delete_response(pid, exit);
        let mut e = TaskDelete::new();
        e.container_id = c.id.clone();
        e.id = c.id.clone();
        e.pid = resp.pid;
        e.exit_status = resp.exit_status;
        e.exited_at = resp.exited_at.clone();
        self.events().send(TASK_DELETE_EVENT_TOPIC, e);
        Ok(resp)
    }

    fn kill_process(&self, req: &api::KillRequest) -> R<()> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let gone = || {
            Failure::not_found(format!(
                "process `{}` already finished",
                p.exec_id.as_deref().unwrap_or(&c.id)
            ))
        };
        if p.exec_id.is_none() {
            if p.state().phase == Phase::Exited {
                return Err(gone());
            }
            let root = StateRoot::new(&c.root);
            return match container::kill(&root, &c.id, req.signal as i32, req.all) {
                Err(e) if e.kind() == harun_runtime::ErrorKind::FailedPrecondition => Err(gone()),
                other => other.map_err(Failure::from),
            };
        }
        let st = p.state();
        let Some(pidfd) = st.pidfd.as_ref().filter(|_| st.phase == Phase::Running) else {
            return Err(gone());
        };
        // SAFETY: pidfd_send_signal on a pidfd we own, null siginfo, no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                req.signal as i32,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        match nix::errno::Errno::result(r) {
            Ok(_) => Ok(()),
            Err(nix::errno::Errno::ESRCH) => Err(gone()),
            Err(e) => Err(Failure::internal(format!(
                "signal {} to exec: {e}",
                req.signal
            ))),
        }
    }

    fn state_of(&self, req: &api::StateRequest) -> R<api::StateResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let st = p.state();
        let status = match st.phase {
            Phase::Created => Status::CREATED,
            Phase::Exited => Status::STOPPED,
            Phase::Running if lock(&c.cgroup).as_ref().is_some_and(|cg| cg.is_frozen()) => {
                Status::PAUSED
            }
            Phase::Running => Status::RUNNING,
        };
        let mut r = api::StateResponse::new();
        r.id = p.exec_id.clone().unwrap_or_else(|| c.id.clone());
        r.bundle = c.bundle.display().to_string();
        r.pid = st.pid as u32;
        r.status = status.into();
        r.stdin = p.paths.stdin.clone();
        r.stdout = p.paths.stdout.clone();
        r.stderr = p.paths.stderr.clone();
        r.terminal = p.paths.terminal;
        if let Some((code, at)) = st.exit {
            r.exit_status = code;
            r.exited_at = Some(timestamp(at)).into();
        }
        r.exec_id = req.exec_id.clone();
        Ok(r)
    }

    fn pids_of(&self, id: &str) -> R<api::PidsResponse> {
        let c = self.container(id)?;
        let pids = ops::pids(&StateRoot::new(&c.root), id)?;
        let execs: HashMap<i32, String> = lock(&c.execs)
            .iter()
            .map(|(id, p)| (p.state().pid, id.clone()))
            .filter(|(pid, _)| *pid > 0)
            .collect();
        let mut r = api::PidsResponse::new();
        for pid in pids {
            let mut info = ProcessInfo::new();
            info.pid = pid as u32;
            if let Some(exec_id) = execs.get(&pid) {
                let mut d = ProcessDetails::new();
                d.exec_id = exec_id.clone();
                info.info = to_any(&d, PROCESS_DETAILS).ok().into();
            }
            r.processes.push(info);
        }
        Ok(r)
    }

    fn stats_of(&self, id: &str) -> R<api::StatsResponse> {
        let c = self.container(id)?;
        let cg = lock(&c.cgroup)
            .clone()
            .ok_or_else(|| Failure::not_found(format!("container `{id}` has no cgroup")))?;
        let m = metrics::read(&Cgroup::open(&cg.path)?)?;
        let mut r = api::StatsResponse::new();
        r.stats = Some(to_any(&m, METRICS).map_err(Failure::internal)?).into();
        Ok(r)
    }

    fn update_resources(&self, req: &api::UpdateTaskRequest) -> R<()> {
        let c = self.container(&req.id)?;
        let any = req
            .resources
            .as_ref()
            .ok_or_else(|| Failure::invalid("update without resources"))?;
        let r: LinuxResources = serde_json::from_slice(&any.value)
            .map_err(|e| Failure::invalid(format!("resources: {e}")))?;
        ops::update(&StateRoot::new(&c.root), &req.id, &r)?;
        Ok(())
    }

    fn resize(&self, req: &api::ResizePtyRequest) -> R<()> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let st = p.state();
        let master = st
            .master
            .as_ref()
            .ok_or_else(|| Failure::precondition("the process has no terminal"))?;
        let ws = libc::winsize {
            ws_row: req.height as u16,
            ws_col: req.width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which is valid for the call.
        let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        nix::errno::Errno::result(r)
            .map(drop)
            .map_err(|e| Failure::internal(format!("resize the terminal: {e}")))
    }
}

fn delete_response(pid: i32, exit: Option<(u32, std::time::SystemTime)>) -> api::DeleteResponse {
    let mut r = api::DeleteResponse::new();
    r.pid = pid as u32;
    if let Some((code, at)) = exit {
        r.exit_status = code;
        r.exited_at = Some(timestamp(at)).into();
    }
    r
}

/// A logging binary ends when the pipes it reads close; reap it without waiting here.
fn reap_logger(logger: Option<std::process::Child>) {
    if let Some(mut l) = logger {
        let _ = std::thread::Builder::new()
            .name("logger".into())
            .stack_size(64 * 1024)
            .spawn(move || l.wait());
    }
}

/// True when the config makes a new pid namespace (not shared with the host or another).
fn own_pid_namespace(config: &oci_spec::runtime::Spec) -> bool {
    config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
        })
}

fn paths(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Paths {
    Paths {
        stdin: stdin.into(),
        stdout: stdout.into(),
        stderr: stderr.into(),
        terminal,
    }
}

impl containerd_shim_protos::Task for Service {
    fn create(
        &self,
        _: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> ttrpc::Result<api::CreateTaskResponse> {
        if !req.checkpoint.is_empty() {
            return Err(Failure::new(
                Code::UNIMPLEMENTED,
                "checkpoint/restore is not supported by harun",
            )
            .into());
        }
        let init = Proc::new(
            None,
            paths(&req.stdin, &req.stdout, &req.stderr, req.terminal),
            String::new(),
        );
        let c = Arc::new(Container::new(
            req.id.clone(),
            PathBuf::from(&req.bundle),
            self.root_for(req.options.as_ref()),
            init,
        ));
        let _lc = lock(&c.lifecycle);
        {
            let mut t = lock(&self.exits.table);
            if t.containers.contains_key(&req.id) {
                return Err(Failure::new(
                    Code::ALREADY_EXISTS,
                    format!("container `{}` already exists", req.id),
                )
                .into());
            }
            t.containers.insert(req.id.clone(), c.clone());
        }
        let pid = match self.do_create(&c, &req) {
            Ok(pid) => pid,
            Err(e) => {
                self.undo_create(&c);
                return Err(e.into());
            }
        };
        let mut io = TaskIO::new();
        io.stdin = req.stdin.clone();
        io.stdout = req.stdout.clone();
        io.stderr = req.stderr.clone();
        io.terminal = req.terminal;
        let mut e = TaskCreate::new();
        e.container_id = req.id.clone();
        e.bundle = req.bundle.clone();
        e.rootfs = req.rootfs.clone();
        e.io = Some(io).into();
        e.checkpoint = req.checkpoint.clone();
        e.pid = pid as u32;
        self.events().send(TASK_CREATE_EVENT_TOPIC, e);
        let mut r = api::CreateTaskResponse::new();
        r.pid = pid as u32;
        Ok(r)
    }

    fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> ttrpc::Result<api::StartResponse> {
        let c = self.container(&req.id)?;
        let pid = if req.exec_id.is_empty() {
            self.start_init(&c)?
        } else {
            self.start_exec(&c, &req.exec_id)?
        };
        let mut r = api::StartResponse::new();
        r.pid = pid;
        Ok(r)
    }

    fn delete(
        &self,
        _: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> ttrpc::Result<api::DeleteResponse> {
        let c = self.container(&req.id)?;
        Ok(if req.exec_id.is_empty() {
            self.delete_init(&c)?
        } else {
            self.delete_exec(&c, &req.exec_id)?
        })
    }

    fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> ttrpc::Result<api::PidsResponse> {
        Ok(self.pids_of(&req.id)?)
    }

    fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> ttrpc::Result<Empty> {
        let c = self.container(&req.id)?;
        ops::pause(&StateRoot::new(&c.root), &req.id).map_err(Failure::from)?;
        let mut e = TaskPaused::new();
        e.container_id = req.id;
        self.events().send(TASK_PAUSED_EVENT_TOPIC, e);
        Ok(Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> ttrpc::Result<Empty> {
        let c = self.container(&req.id)?;
        ops::resume(&StateRoot::new(&c.root), &req.id).map_err(Failure::from)?;
        let mut e = TaskResumed::new();
        e.container_id = req.id;
        self.events().send(TASK_RESUMED_EVENT_TOPIC, e);
        Ok(Empty::new())
    }

    fn checkpoint(&self, _: &TtrpcContext, _: api::CheckpointTaskRequest) -> ttrpc::Result<Empty> {
        Err(Failure::new(Code::UNIMPLEMENTED, "checkpoint is not supported by harun").into())
    }

    fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> ttrpc::Result<Empty> {
        self.kill_process(&req)?;
        Ok(Empty::new())
    }

    fn exec(&self, _: &TtrpcContext, req: api::ExecProcessRequest) -> ttrpc::Result<Empty> {
        let c = self.container(&req.id)?;
        let spec = req
            .spec
            .as_ref()
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
            .ok_or_else(|| Failure::invalid("exec without a process spec"))?;
        let p = Proc::new(
            Some(req.exec_id.clone()),
            paths(&req.stdin, &req.stdout, &req.stderr, req.terminal),
            spec,
        );
        {
            let mut execs = lock(&c.execs);
            if execs.contains_key(&req.exec_id) {
                return Err(Failure::new(
                    Code::ALREADY_EXISTS,
                    format!("exec `{}` already exists", req.exec_id),
                )
                .into());
            }
            execs.insert(req.exec_id.clone(), Arc::new(p));
        }
        let mut e = TaskExecAdded::new();
        e.container_id = req.id;
        e.exec_id = req.exec_id;
        self.events().send(TASK_EXEC_ADDED_EVENT_TOPIC, e);
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: api::ResizePtyRequest) -> ttrpc::Result<Empty> {
        self.resize(&req)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> ttrpc::Result<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        if req.stdin {
            let mut st = p.state();
            st.stdin_closed = true;
            if let Some(g) = &st.group {
                self.copier.close_stdin(g.id);
            }
        }
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> ttrpc::Result<Empty> {
        self.update_resources(&req)?;
        Ok(Empty::new())
    }

    fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> ttrpc::Result<api::WaitResponse> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let (code, at) = p.wait(None).expect("waits without a bound");
        let mut r = api::WaitResponse::new();
        r.exit_status = code;
        r.exited_at = Some(timestamp(at)).into();
        Ok(r)
    }

    fn stats(&self, _: &TtrpcContext, req: api::StatsRequest) -> ttrpc::Result<api::StatsResponse> {
        Ok(self.stats_of(&req.id)?)
    }

    fn connect(
        &self,
        _: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> ttrpc::Result<api::ConnectResponse> {
        let mut r = api::ConnectResponse::new();
        r.shim_pid = std::process::id();
        if let Ok(c) = self.container(&req.id) {
            r.task_pid = c.init.state().pid as u32;
        }
        Ok(r)
    }

    fn shutdown(&self, _: &TtrpcContext, req: api::ShutdownRequest) -> ttrpc::Result<Empty> {
        if req.now || lock(&self.exits.table).containers.is_empty() {
            let (m, cv) = &*self.shutdown;
            *lock(m) = true;
            cv.notify_all();
        }
        Ok(Empty::new())
    }

    fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> ttrpc::Result<api::StateResponse> {
        Ok(self.state_of(&req)?)
    }
}

use containerd_shim_protos::ttrpc;
