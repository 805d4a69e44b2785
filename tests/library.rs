//! The runtime library called in-process, as the containerd shim will call it.
//!
//! `harness = false` (Cargo.toml): libtest runs every test on a thread of its own, and the
//! library's create, exec and start refuse to clone from a process with more than one
//! thread. This file's `main` is the only thread, so it can call them; each case checks
//! what a library caller gets back (the error's kind and errno), and one case calls from a
//! second thread.

use std::path::Path;
use std::sync::mpsc;

use harun_integration::Bundle;
use harun_runtime::container::{self, Console, CreateOptions, Created, ProcessOverrides};
use harun_runtime::process::single_thread;
use harun_runtime::rootfs::overlay;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, ErrorKind, Result};

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cases: &[(&str, fn())] = &[
        (
            "a_second_thread_is_refused_cleanly",
            a_second_thread_is_refused_cleanly,
        ),
        (
            "a_single_threaded_caller_creates",
            a_single_threaded_caller_creates,
        ),
        (
            "a_device_program_is_reused_and_updated_in_process",
            a_device_program_is_reused_and_updated_in_process,
        ),
        (
            "init_errors_keep_their_kind_and_errno",
            init_errors_keep_their_kind_and_errno,
        ),
        (
            "exec_errors_keep_their_kind_and_errno",
            exec_errors_keep_their_kind_and_errno,
        ),
    ];
    let mut ran = 0;
    for (name, case) in cases {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        wait_for_one_thread();
        case();
        println!("test {name} ... ok");
        ran += 1;
    }
    println!("library: {ran} passed");
}

/// Threads of an earlier case (or of the test support) are gone.
fn wait_for_one_thread() {
    for _ in 0..500 {
        if single_thread::count().unwrap() == 1 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "the test process keeps {} threads",
        single_thread::count().unwrap()
    );
}

fn create(root: &StateRoot, id: &str, b: &Bundle) -> Result<Created> {
    let process = ProcessOverrides::default();
    container::create(
        root,
        &CreateOptions {
            id,
            bundle: b.dir(),
            pid_file: None,
            console: Console::None,
            no_pivot: false,
            preserve_fds: 0,
            overlay: overlay::Request::default(),
            process: &process,
        },
    )
}

/// Force-delete `created` and reap its init (our child).
fn remove(root: &StateRoot, created: Created) {
    container::delete(root, &created.state.id, true).expect("delete");
    let pid = nix::unistd::Pid::from_raw(created.state.pid);
    let _ = nix::sys::wait::waitpid(pid, None);
}

fn assert_threaded(r: Result<impl std::fmt::Debug>, op: &str) {
    match r {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::MultiThreaded, "{op}: {e}");
            assert!(
                matches!(e, Error::MultiThreaded { threads: 2.., .. }),
                "{e:?}"
            );
            assert!(e.to_string().starts_with(op), "{e}");
        }
        Ok(v) => panic!("{op} from a threaded process succeeded: {v:?}"),
    }
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// create, exec, start and the binary's guard refuse a threaded process before doing
/// anything: called from a second thread, and from the main thread while another lives.
fn a_second_thread_is_refused_cleanly() {
    let h = harun_integration::harun!();
    let root = StateRoot::new(h.root());
    let mut b = h.bundle();
    b.sh("sleep 60");
    let id = h.id("threaded");
    std::thread::scope(|s| {
        let from_thread = s.spawn(|| create(&root, &id, &b)).join().unwrap();
        assert_threaded(from_thread, "create");
        assert!(empty(h.root()), "a refused create left state behind");

        let (tx, rx) = mpsc::channel::<()>();
        s.spawn(move || rx.recv());
        assert_threaded(create(&root, &id, &b), "create");
        let exec = container::exec(
            &root,
            container::ExecOptions {
                id: &id,
                process: oci_process(&b),
                pid_file: None,
                console: Console::None,
                preserve_fds: 0,
            },
        );
        assert_threaded(exec, "exec");
        assert_threaded(
            harun_runtime::exe_guard::ensure_readonly_exe(),
            "protect the harun binary",
        );
        assert!(empty(h.root()), "a refused call left state behind");
        drop(tx);
    });
    // The container is untouched by a start refused for its startContainer hook.
    wait_for_one_thread();
    b.hook("startContainer", "/bin/true", &[]);
    let created = create(&root, &id, &b).expect("create, single-threaded");
    std::thread::scope(|s| {
        let started = s.spawn(|| container::start(&root, &id)).join().unwrap();
        assert_threaded(started, "start (startContainer hooks)");
    });
    let state = container::state(&root, &id).unwrap();
    assert_eq!(state["status"], "created", "{state}");
    remove(&root, created);
    h.assert_clean();
}

fn oci_process(b: &Bundle) -> oci_spec::runtime::Process {
    serde_json::from_value(b.config()["process"].clone()).unwrap()
}

/// The other side: one thread, and the library creates and deletes a container.
fn a_single_threaded_caller_creates() {
    let h = harun_integration::harun!();
    let root = StateRoot::new(h.root());
    let mut b = h.bundle();
    b.sh("sleep 60");
    let created = create(&root, &h.id("single"), &b).expect("create");
    let state = container::state(&root, &created.state.id).unwrap();
    assert_eq!(state["status"], "created", "{state}");
    remove(&root, created);
    h.assert_clean();
}

/// A process creating containers of one spec (the supervisor, the shim) loads their device
/// program once and attaches it to each new cgroup (cgroups/devices/mod.rs); an `update`
/// that keeps the rules must still work (the kernel refuses a program attached twice to
/// one cgroup), and a container created after it too.
fn a_device_program_is_reused_and_updated_in_process() {
    let h = harun_integration::harun!();
    let root = StateRoot::new(h.root());
    let mut b = h.bundle();
    b.sh("sleep 60");
    let first = create(&root, &h.id("dev-a"), &b).expect("create a");
    let second = create(&root, &h.id("dev-b"), &b).expect("create b (program reused)");
    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_value(b.config()["linux"]["resources"].clone()).unwrap();
    assert!(resources.devices().is_some(), "{resources:?}");
    for created in [&first, &second] {
        harun_runtime::cgroups::ops::update(&root, &created.state.id, &resources)
            .expect("update with the same device rules");
    }
    let third = create(&root, &h.id("dev-c"), &b).expect("create c after the updates");
    for created in [first, second, third] {
        remove(&root, created);
    }
    h.assert_clean();
}

/// An error raised inside the container's init reaches the library caller with its kind,
/// errno and field, one of each kind the init raises (ErrorKind::Unsupported and Internal
/// have no bundle that makes the init raise them on this host; process/channel.rs checks
/// every kind crosses the channel). tests/cli_errors.rs checks the same errors reach the
/// CLI's `--log`.
fn init_errors_keep_their_kind_and_errno() {
    let h = harun_integration::harun!();
    let root = StateRoot::new(h.root());
    for case in harun_integration::init_errors::cases(&h) {
        let e = match create(&root, &h.id("init-error"), &case.bundle) {
            Err(e) => e,
            Ok(c) => panic!("{}: created {c:?}", case.name),
        };
        let got = (
            e.kind().name(),
            e.errno().map(|n| format!("{n:?}")),
            e.field(),
        );
        let want = (case.kind, case.errno.map(str::to_string), case.field);
        assert_eq!(got, want, "{}: {e}", case.name);
        for text in case.message {
            assert!(e.to_string().contains(text), "{}: {e}", case.name);
        }
        assert!(empty(h.root()), "{}: left state behind", case.name);
    }
    h.assert_clean();
}

/// The same for a process `exec` starts: its failure comes back through the joiner's
/// channel with its kind, errno and field.
fn exec_errors_keep_their_kind_and_errno() {
    let h = harun_integration::harun!();
    let root = StateRoot::new(h.root());
    let mut b = h.bundle();
    b.sh("sleep 60");
    let created = create(&root, &h.id("exec-error"), &b).expect("create");
    container::start(&root, &created.state.id).expect("start");
    type Case<'a> = (&'a [&'a str], &'a str, Option<&'a str>, Option<&'a str>);
    let cases: [Case; 2] = [
        (
            &["no-such-program"],
            "invalid_input",
            None,
            Some("process.args[0]"),
        ),
        (&["/etc"], "system", Some("EISDIR"), None),
    ];
    for (args, kind, errno, field) in cases {
        let mut process = oci_process(&b);
        process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
        let e = container::exec(
            &root,
            container::ExecOptions {
                id: &created.state.id,
                process,
                pid_file: None,
                console: Console::None,
                preserve_fds: 0,
            },
        )
        .expect_err("exec of a program that cannot run");
        let got = (
            e.kind().name(),
            e.errno().map(|n| format!("{n:?}")),
            e.field(),
        );
        assert_eq!(
            got,
            (kind, errno.map(str::to_string), field),
            "{args:?}: {e}"
        );
        assert!(
            e.to_string()
                .starts_with("in the container: process.args[0]"),
            "{e}"
        );
    }
    remove(&root, created);
    h.assert_clean();
}
