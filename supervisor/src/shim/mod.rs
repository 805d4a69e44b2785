//! The containerd shim v2 (`containerd-shim-harun-v2`: the harun binary called by that
//! name), task API v2 over ttrpc, the runtime library called in-process.
//!
//! # Processes and threads
//!
//! ```text
//! containerd --exec--> harun (as containerd-shim-harun-v2) start
//!                        binds the socket, forks:
//!                        shim (daemon, threaded)  -- ttrpc Task service, copier, events,
//!                          |  ^                       OOM watch, one thread per exit
//!                 requests |  | replies, exits (socketpairs, fds by SCM_RIGHTS)
//!                          v  |
//!                        engine (single-threaded, child subreaper)
//!                          +-- container inits, exec'd processes (its children)
//! ```
//!
//! The library's create, start (startContainer hooks) and exec clone, which is only sound in
//! a process with one thread; a ttrpc server has many. So the daemon forks the **engine**
//! first thing, while it still has one thread (checked), and the engine makes every
//! container process by calling `container::create` / `start` / `exec` in-process, one
//! request at a time: no `harun` subprocess per call. The processes it makes are its
//! children; it is their child subreaper (orphans of a container without a pid namespace
//! come back to it), reaps them, and reports each exit of a process it made, after the
//! reply that gave the shim its pid. It also hands the shim each process's pidfd (held from
//! clone time: an exec is signalled through it, never by a pid that may be reused) and its
//! pty master. The engine dies with the shim (PDEATHSIG); the shim exits if the engine dies
//! (containerd then runs `delete`, which cleans up).
//!
//! Everything that does not clone (kill, pause, resume, update, pids, stats, delete, state)
//! the shim calls directly from its ttrpc threads.
//!
//! # IO
//!
//! The container never gets containerd's FIFOs: it gets pipes (or a pty), and one copier
//! thread moves the bytes (copy.rs, stdio.rs). So a container outlives containerd and
//! whatever read its FIFOs, and its output keeps flowing into a `file://` log meanwhile.
//!
//! # Events and exits
//!
//! In containerd's order (tasks.rs): TaskCreate, TaskStart, TaskExit, TaskDelete; for an
//! exec ExecAdded, ExecStarted, TaskExit; an exit that comes before the start call has
//! returned is published after TaskStart; the init's exit after its execs'; output drained
//! (bounded) before the exit is published. Exits are never lost: the engine holds the
//! processes as their parent from clone time.
//!
//! # Not supported
//!
//! Checkpoint and restore (CRIU): NotImplemented. Runtime options other than runc's `Root`
//! (BinaryName, SystemdCgroup, IoUid/IoGid, ShimCgroup) are ignored.

mod args;
mod copy;
mod engine;
mod errors;
mod events;
mod lifecycle;
mod metrics;
mod mounts;
mod oom;
mod record;
mod service;
mod stdio;
mod tasks;
mod wire;

pub use errors::code_of;

/// True when `argv0` names a containerd shim (`containerd-shim-harun-v2`, or any
/// `containerd-shim-NAME-v2` link to harun: containerd derives the name from the runtime).
pub fn invoked_as_shim(argv0: &str) -> bool {
    let name = argv0.rsplit('/').next().unwrap_or(argv0);
    name.starts_with("containerd-shim-") && name.ends_with("-v2")
}

/// The shim's main: `start`, `delete`, or serve. The exit code.
pub fn main(argv: &[String]) -> i32 {
    let flags = match args::parse(argv.get(1..).unwrap_or_default()) {
        Ok(f) => f,
        Err(e) => {
            log(&format!("containerd-shim-harun-v2: {e}"));
            return 1;
        }
    };
    if flags.version {
        println!(
            "containerd-shim-harun-v2:\n  Version: {}\n  Task API: v2",
            env!("CARGO_PKG_VERSION")
        );
        return 0;
    }
    if flags.namespace.is_empty() {
        log("containerd-shim-harun-v2: -namespace is required");
        return 1;
    }
    let result = match flags.action.as_str() {
        "start" => lifecycle::start(&flags),
        "delete" => lifecycle::delete(&flags),
        other => Err(format!(
            "unknown action `{other}` (containerd runs `start` and `delete`)"
        )),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            log(&format!("containerd-shim-harun-v2: {e}"));
            1
        }
    }
}

/// One line on stderr, dropped if stderr cannot take it (the log FIFO while containerd is
/// away): the shim must never stall or panic on its own log.
pub(crate) fn log(line: &str) {
    let mut text = line.replace('\n', " ");
    text.push('\n');
    // SAFETY: write(2) of a valid buffer to fd 2; the result is ignored on purpose.
    let _ = unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
}

/// The runtime's warnings for container `id`, one line each in the shim log (containerd
/// copies it into its own log). Debug-level ones (expected with common profiles) are left out,
/// as the CLI leaves them out without `--debug`.
pub(crate) fn log_warnings(id: &str, warnings: &[harun_runtime::Warning]) {
    for w in warnings {
        if w.level() == harun_runtime::warning::Level::Warning {
            log(&format!("container {id}: warning: {w}"));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shim_names() {
        assert!(super::invoked_as_shim(
            "/usr/local/bin/containerd-shim-harun-v2"
        ));
        assert!(super::invoked_as_shim("containerd-shim-harun-edge-v2"));
        assert!(!super::invoked_as_shim("/usr/bin/harun"));
        assert!(!super::invoked_as_shim("containerd-shim-harun-v1"));
    }
}
