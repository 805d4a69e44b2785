//! The shim's life as containerd drives it, apart from the Task service:
//!
//! - `start` (cwd = the bundle): work out the shim's socket (one per pod: the CRI's
//!   `io.kubernetes.cri.sandbox-id` annotation, else one per container); if a shim already
//!   serves it, say so and leave; else bind it, fork the daemon, print the address.
//! - the daemon: a session of its own, stdio on /dev/null and the bundle's `log` FIFO,
//!   forks the engine while it still has one thread, then serves ttrpc until Shutdown.
//! - `delete` (after a shim died): force-delete the container, unmount its rootfs, report
//!   the exit status the shim recorded in the bundle (137 when it never saw one).

use std::io::Write;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::ttrpc::{self, MethodHandler, Server, TtrpcContext};
use harun_runtime::state::StateRoot;

use super::args::Flags;
use super::engine::{self, Exit};
use super::events::{now, Publisher};
use super::record::Record;
use super::service::{Service, DEFAULT_ROOT};
use super::{log, mounts, tasks::lock};

/// Where shims' sockets live (containerd's runc shim uses the same directory).
const SOCKET_DIR: &str = "/run/containerd/s";
/// Annotations that put containers in one shim, first match wins.
const GROUP_LABELS: &[&str] = &[
    "io.containerd.harun.v2.group",
    "io.kubernetes.cri.sandbox-id",
];

pub fn start(f: &Flags) -> Result<(), String> {
    // CVE-2019-5736: the daemon forked below puts processes into containers; it must run
    // from a read-only mapping of the binary. May re-execute this process (same argv).
    harun_runtime::exe_guard::ensure_readonly_exe().map_err(|e| e.to_string())?;
    let group = group_of(Path::new("config.json")).unwrap_or_else(|| f.id.clone());
    let path = socket_path(&f.address, &f.namespace, &group);
    let address = format!("unix://{}", path.display());
    let listener = match bind(&path)? {
        Some(l) => l,
        None => {
            // A shim serves this pod already.
            write_address(&address)?;
            print!("{address}");
            return Ok(());
        }
    };
    write_address(&address)?;
    // SAFETY: `start` has one thread (nothing of harun starts one before this point), so
    // the child's copy holds no lock owned by another thread.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork the shim: {e}"))? {
        nix::unistd::ForkResult::Child => {
            let code = match daemon(f, listener.into(), &path) {
                Ok(()) => 0,
                Err(e) => {
                    log(&format!("shim: {e}"));
                    let _ = std::fs::remove_file(&path);
                    1
                }
            };
            std::process::exit(code)
        }
        nix::unistd::ForkResult::Parent { child } => {
            adjust_oom_score(child.as_raw());
            print!("{address}");
            let _ = std::io::stdout().flush();
            Ok(())
        }
    }
}

/// The CRI's pod (or an explicit group) from the bundle's config.json annotations.
fn group_of(config: &Path) -> Option<String> {
    let text = std::fs::read(config).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let ann = v.get("annotations")?;
    GROUP_LABELS
        .iter()
        .find_map(|k| ann.get(k)?.as_str().map(str::to_string))
}

/// `SOCKET_DIR/harun-HASH`, HASH naming containerd's socket, the namespace and the group.
fn socket_path(address: &str, ns: &str, group: &str) -> PathBuf {
    // FNV-1a, 64 bits: stable across builds, so a new binary finds an old shim.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{address}/{ns}/{group}").bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Path::new(SOCKET_DIR).join(format!("harun-{h:016x}"))
}

/// Bind the socket; None when a live shim owns it already.
fn bind(path: &Path) -> Result<Option<UnixListener>, String> {
    std::fs::create_dir_all(SOCKET_DIR).map_err(|e| format!("mkdir {SOCKET_DIR}: {e}"))?;
    match UnixListener::bind(path) {
        Ok(l) => Ok(Some(l)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Ok(None);
            }
            // Left by a shim that died.
            let _ = std::fs::remove_file(path);
            UnixListener::bind(path)
                .map(Some)
                .map_err(|e| format!("bind {}: {e}", path.display()))
        }
        Err(e) => Err(format!("bind {}: {e}", path.display())),
    }
}

/// The bundle's `address` file: how containerd finds the shim again after a restart.
fn write_address(address: &str) -> Result<(), String> {
    harun_runtime::state::write_file_atomic(Path::new("address"), address.as_bytes())
        .map_err(|e| e.to_string())
}

/// containerd's score + 1: under memory pressure the shim goes before containerd.
fn adjust_oom_score(pid: i32) {
    let parent = std::os::unix::process::parent_id();
    let Ok(score) = std::fs::read_to_string(format!("/proc/{parent}/oom_score_adj")) else {
        return;
    };
    if let Ok(s) = score.trim().parse::<i32>() {
        let _ = std::fs::write(
            format!("/proc/{pid}/oom_score_adj"),
            (s + 1).min(1000).to_string(),
        );
    }
}

type Methods = std::collections::HashMap<String, Box<dyn MethodHandler + Send + Sync>>;

/// The task service's methods, each telling the events thread it ran (the shim gives memory
/// back once it has been quiet for a moment: events.rs).
fn counted(methods: Methods, events: &Arc<Publisher>) -> Methods {
    methods
        .into_iter()
        .map(|(name, inner)| {
            let counted: Box<dyn MethodHandler + Send + Sync> = Box::new(Counted {
                inner,
                events: events.clone(),
            });
            (name, counted)
        })
        .collect()
}

struct Counted {
    inner: Box<dyn MethodHandler + Send + Sync>,
    events: Arc<Publisher>,
}

impl MethodHandler for Counted {
    fn handler(&self, ctx: TtrpcContext, req: ttrpc::Request) -> ttrpc::Result<()> {
        let result = self.inner.handler(ctx, req);
        self.events.work_done();
        result
    }
}

/// The daemonised shim: never returns before Shutdown.
fn daemon(f: &Flags, listener: OwnedFd, socket: &Path) -> Result<(), String> {
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    detach_stdio();
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; no thread exists yet. One arena:
    // the shim's threads allocate little, and each arena of its own would cost resident
    // memory per container.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let (engine, exit_wire) = engine::spawn(&[]).map_err(|e| format!("start the engine: {e}"))?;
    let ttrpc_address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
    let (events, events_thread) = Publisher::spawn(
        ttrpc_address,
        f.namespace.clone(),
        crate::shed::clean_file_pages,
    )
    .map_err(|e| format!("events thread: {e}"))?;
    let events = Arc::new(events);
    let shutdown = Arc::new((Mutex::new(false), Condvar::new()));
    let service = Arc::new(
        Service::new(
            f.namespace.clone(),
            engine,
            events.clone(),
            shutdown.clone(),
        )
        .map_err(|e| format!("start the service: {e}"))?,
    );
    let exits = service.exits();
    let (done, sock) = (shutdown.clone(), socket.to_path_buf());
    std::thread::Builder::new()
        .name("exits".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            match exit_wire.recv::<Exit>() {
                Ok(Some((e, _))) => exits.exited(e.pid, e.status),
                // At shutdown the engine goes when the service (its requests) is dropped.
                _ if *lock(&done.0) => return,
                Ok(None) | Err(_) => {
                    // Nothing can make or reap a container process any more: containerd
                    // sees the shim die and cleans up with `delete`.
                    log("shim: the engine is gone; exiting");
                    let _ = std::fs::remove_file(&sock);
                    std::process::exit(1);
                }
            }
        })
        .map_err(|e| format!("exits thread: {e}"))?;
    let task = counted(containerd_shim_protos::create_task(service), &events);
    let mut server = Server::new()
        .set_thread_count_default(2)
        .set_thread_count_min(1)
        .set_thread_count_max(3)
        .add_listener(listener.into_raw_fd())
        .map_err(|e| format!("ttrpc listener: {e}"))?
        .register_service(task);
    server.start().map_err(|e| format!("ttrpc server: {e}"))?;
    {
        let (m, cv) = &*shutdown;
        let mut done = lock(m);
        while !*done {
            done = cv.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
    server.shutdown();
    // By the path in hand: containerd may have removed the bundle (its `address`) by now.
    let _ = std::fs::remove_file(socket);
    // What is still queued goes out, for a while: an event for a containerd that does not
    // come back must not keep the shim alive.
    events.close();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !events_thread.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

/// stdin and stdout to /dev/null; stderr to the bundle's `log` FIFO, which containerd reads
/// into its own log (non-blocking: a line is dropped rather than the shim stalled while
/// containerd is away).
fn detach_stdio() {
    let Ok(null) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let log = std::fs::File::options()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
        .ok();
    let err: &dyn AsRawFd = match &log {
        Some(l) => l,
        None => &null,
    };
    // SAFETY: dup2 onto this process's own stdio fds.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(null.as_raw_fd(), 1);
        libc::dup2(err.as_raw_fd(), 2);
    }
}

/// `delete`: clean up after a shim that is gone; the DeleteResponse on stdout.
pub fn delete(f: &Flags) -> Result<(), String> {
    let bundle = match &f.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir().map_err(|e| e.to_string())?,
    };
    let record = Record::load(&bundle).unwrap_or_default();
    let root = if record.root.as_os_str().is_empty() {
        Path::new(DEFAULT_ROOT).join(&f.namespace)
    } else {
        record.root.clone()
    };
    match harun_runtime::container::delete(&StateRoot::new(&root), &f.id, true) {
        Ok(warnings) => super::log_warnings(&f.id, &warnings),
        Err(e) => log(&format!("delete {}: {e}", f.id)),
    }
    if let Err(e) = mounts::unmount_all(&bundle.join("rootfs")) {
        log(&format!("delete {}: {}", f.id, e.message));
    }
    // The socket of a shim that was killed (one that still answers serves other containers
    // of its pod).
    if let Ok(address) = std::fs::read_to_string(bundle.join("address")) {
        let path = Path::new(address.trim().trim_start_matches("unix://"));
        if path.starts_with(SOCKET_DIR) && UnixStream::connect(path).is_err() {
            let _ = std::fs::remove_file(path);
        }
    }
    let mut r = DeleteResponse::new();
    r.pid = match record.pid {
        0 => std::fs::read_to_string(bundle.join("init.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0),
        p => p as u32,
    };
    match record.exit {
        Some((status, secs, nanos)) => {
            r.exit_status = status;
            let mut t = now();
            t.seconds = secs;
            t.nanos = nanos;
            r.exited_at = Some(t).into();
        }
        None => {
            r.exit_status = 128 + libc::SIGKILL as u32;
            r.exited_at = Some(now()).into();
        }
    }
    let bytes = r.write_to_bytes().map_err(|e| e.to_string())?;
    std::io::stdout()
        .write_all(&bytes)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_socket_per_group_and_namespace() {
        let a = socket_path("/run/containerd/containerd.sock", "k8s.io", "pod1");
        assert_eq!(
            a,
            socket_path("/run/containerd/containerd.sock", "k8s.io", "pod1")
        );
        assert_ne!(
            a,
            socket_path("/run/containerd/containerd.sock", "k8s.io", "pod2")
        );
        assert_ne!(
            a,
            socket_path("/run/containerd/containerd.sock", "default", "pod1")
        );
        assert!(a.starts_with(SOCKET_DIR));
        assert!(a.as_os_str().len() < 108, "{}", a.display());
    }

    #[test]
    fn the_pod_annotation_groups() {
        let dir = std::env::temp_dir().join(format!("harun-shim-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.json");
        std::fs::write(
            &config,
            r#"{"annotations": {"io.kubernetes.cri.sandbox-id": "pod7"}}"#,
        )
        .unwrap();
        assert_eq!(group_of(&config).as_deref(), Some("pod7"));
        std::fs::write(&config, r#"{"annotations": {}}"#).unwrap();
        assert_eq!(group_of(&config), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
