//! `harun run`: output, exit codes, and how the positional argument picks the bundle.

use harun_integration::harun;

#[test]
fn run_prints_the_output_and_exits_0() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo hello from $(hostname); echo to-stderr >&2");
    let out = h.run(&h.id("ok"), &b).ok();
    assert_eq!(out.stdout, "hello from harun\n");
    assert!(out.stderr.contains("to-stderr"), "{out}");
    h.assert_clean();
}

#[test]
fn run_returns_the_exit_code_3() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo before; exit 3");
    let out = h.run(&h.id("three"), &b).exit(3);
    assert_eq!(out.stdout, "before\n");
    h.assert_clean();
}

/// A process that SIGKILLs itself: 128 + 9. pid 1 of a pid namespace cannot be killed by
/// itself (the kernel ignores it), so this container shares the host's pid namespace.
#[test]
fn run_of_a_process_killed_by_sigkill_exits_137() {
    let h = harun!();
    let mut b = h.bundle();
    b.without_namespace("pid")
        .sh("echo dying; kill -9 $$; echo survived");
    let out = h.run(&h.id("sigkill"), &b).exit(137);
    assert_eq!(out.stdout, "dying\n");
    h.assert_clean();
}

/// The same through `harun kill` while `run` waits in the foreground, with a pid namespace.
#[test]
fn run_killed_by_harun_kill_exits_137() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("killed");
    h.remember_id(&id);
    let run = h.cmd(["run", "--bundle"]).arg(b.dir()).arg(&id).spawn();
    h.wait_status(&id, "running");
    h.kill(&id, "KILL").ok();
    let out = run.wait().exit(137);
    assert_eq!(out.stdout, "");
    h.assert_clean();
}

#[test]
fn run_with_sigterm_exits_143() {
    let h = harun!();
    let mut b = h.bundle();
    // In the host's pid namespace sh is not pid 1, so its own SIGTERM kills it.
    b.without_namespace("pid").sh("kill -TERM $$; sleep 5");
    h.run(&h.id("term"), &b).exit(143);
    h.assert_clean();
}

/// `harun run DIR`: a directory holding config.json is the bundle; the ID is its name.
#[test]
fn run_positional_bundle_dir_uses_the_dir_name_as_id() {
    let h = harun!();
    let dir = h.dir().join(h.id("posbundle"));
    let mut b = h.bundle_at(&dir);
    b.sh("echo from positional bundle; exit 4");
    let out = h.cmd(["run"]).arg(&dir).cwd(h.dir()).run().exit(4);
    assert_eq!(out.stdout, "from positional bundle\n");

    // Detached, the container can be looked up under the directory's name.
    b.args(&["sleep", "600"]);
    let id = h.id("posbundle");
    h.remember_id(&id);
    h.cmd(["run", "--detach"]).arg(&dir).cwd(h.dir()).run().ok();
    let st = h.state_of(&id);
    assert_eq!(st.status, "running");
    assert_eq!(st.bundle, dir.to_string_lossy());
    h.kill(&id, "KILL").ok();
    h.wait_status(&id, "stopped");
    h.delete(&id).ok();
    h.assert_clean();
}

#[test]
fn run_positional_bundle_dir_with_name() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("named");
    h.remember_id(&id);
    h.cmd(["run", "--detach", "--name", &id])
        .arg(b.dir())
        .run()
        .ok();
    assert_eq!(h.state_of(&id).status, "running");
    h.delete_force(&id).ok();
    h.state(&id).error(&["does not exist"]);
    h.assert_clean();
}

/// runc's rule: without `--bundle`, a positional that is not a bundle directory is the ID
/// and the bundle is the current directory.
#[test]
fn run_positional_id_uses_the_cwd_as_bundle() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo from cwd bundle");
    let out = h.cmd(["run", &h.id("cwd")]).cwd(b.dir()).run().ok();
    assert_eq!(out.stdout, "from cwd bundle\n");
    h.assert_clean();
}

#[test]
fn run_detach_writes_the_pid_file() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("detach");
    h.remember_id(&id);
    let pid_file = h.pid_file(&id);
    h.cmd(["run", "--detach", "--bundle"])
        .arg(b.dir())
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&id)
        .run()
        .ok();
    let st = h.state_of(&id);
    assert_eq!(st.status, "running");
    assert_eq!(Some(st.pid), h.pid_from_file(&id));
    h.kill(&id, "9").ok();
    h.wait_status(&id, "stopped");
    h.delete(&id).ok();
    h.assert_clean();
}

/// A process that exits at once: foreground run must not miss the exit (youki's hang).
#[test]
fn run_of_an_instant_exit_returns() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    for i in 0..5 {
        h.run(&h.id(&format!("true{i}")), &b).ok();
    }
    b.args(&["false"]);
    h.run(&h.id("false"), &b).exit(1);
    h.assert_clean();
}
