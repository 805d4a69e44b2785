//! `--debug`: the steps of create, start, exec and delete with their times, on stderr and in
//! the `--log` file; nothing without it; never in the container's own output.

use std::fs;

use harun_integration::{harun, Harun};

/// The `--debug` lines of `stderr` without their prefix and time, checking both.
fn steps(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(|l| {
            let rest = l
                .strip_prefix("harun: debug: ")
                .unwrap_or_else(|| panic!("not a debug line: {l:?}\n{stderr}"));
            let (time, step) = rest.split_once("ms ").expect("a time in ms");
            let (whole, frac) = time.split_once('.').expect("ms with a fraction");
            assert!(
                whole.bytes().all(|b| b.is_ascii_digit())
                    && frac.len() == 3
                    && frac.bytes().all(|b| b.is_ascii_digit()),
                "bad time in {l:?}"
            );
            step.to_string()
        })
        .collect()
}

fn has(steps: &[String], prefix: &str) -> bool {
    steps.iter().any(|s| s.starts_with(prefix))
}

fn debug_run(h: &Harun, b: &harun_integration::Bundle, id: &str) -> (String, Vec<String>) {
    h.remember_id(id);
    let out = h
        .cmd(["--debug", "run", "--bundle"])
        .arg(b.dir())
        .arg(id)
        .run()
        .ok();
    (out.stdout.clone(), steps(&out.stderr))
}

#[test]
fn debug_traces_namespaces_mounts_hooks_and_the_lifecycle() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo container-output")
        .hook("prestart", "/bin/true", &[]);
    let id = h.id("trace");
    let (stdout, steps) = debug_run(&h, &b, &id);
    assert_eq!(stdout, "container-output\n");
    let rootfs = b.rootfs().canonicalize().unwrap();
    for want in [
        format!("harun {}", env!("CARGO_PKG_VERSION")),
        format!(
            "create `{id}`: bundle `{}`, rootfs `{}`; namespaces: new mount cgroup uts ipc \
             pid network",
            b.dir().canonicalize().unwrap().display(),
            rootfs.display()
        ),
        "cgroup `".into(),
        "cloned the init: pid ".into(),
        "init: mount `proc` on `/proc` (mounts[0])".into(),
        "init: mount `tmpfs` on `/dev` (mounts[1])".into(),
        "prestart hook #0 `/bin/true`".into(),
        format!("init: switch root to `{}`", rootfs.display()),
        "init: mask ".into(),
        "init: rlimits, cwd, user 0:0".into(),
        "the init is ready".into(),
        format!("start `{id}`: init pid "),
        "exec.fifo read: the init execs the process".into(),
        format!("delete `{id}`: stopped"),
    ] {
        assert!(
            has(&steps, &want),
            "no step {want:?} in\n{}",
            steps.join("\n")
        );
    }
    h.assert_clean();
}

#[test]
fn debug_traces_cgroup_writes_and_exec() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("cgw");
    h.create(&id, &b).ok();
    h.start(&id).ok();
    let out = h.cmd(["--debug", "pause", &id]).run().ok();
    let paused = steps(&out.stderr);
    assert!(
        paused
            .iter()
            .any(|s| s.starts_with("cgroup: write `1` to `") && s.ends_with("/cgroup.freeze`")),
        "{paused:?}"
    );
    h.exec(&["resume", &id]).ok();
    let out = h.cmd(["--debug", "exec", &id, "echo", "hi"]).run().ok();
    assert_eq!(out.stdout, "hi\n");
    assert!(has(
        &steps(&out.stderr),
        &format!("exec in `{id}`: join the namespaces")
    ));
    let out = h.cmd(["--debug", "kill", &id, "KILL"]).run().ok();
    assert!(has(&steps(&out.stderr), &format!("kill `{id}`: signal 9")));
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn debug_lines_go_to_the_log_file_too_and_nothing_without_debug() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    let id = h.id("quiet");
    h.remember_id(&id);
    let out = h.cmd(["run", "--bundle"]).arg(b.dir()).arg(&id).run().ok();
    assert_eq!(out.stderr, "");

    let log = h.dir().join("debug.json");
    let out = h
        .cmd(["run", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .global(["--debug", "--log-format", "json", "--log"])
        .global([&log])
        .run()
        .ok();
    let mut on_stderr = steps(&out.stderr);
    let mut in_file: Vec<String> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["level"], "debug", "{l}");
            let msg = v["msg"].as_str().unwrap();
            msg.split_once("ms ").unwrap().1.to_string()
        })
        .collect();
    // The init's lines too, written after it left the host's mount namespace.
    assert!(has(&in_file, "init: switch root"), "{in_file:?}");
    // The same lines; harun and its init write at once, so not always in the same order.
    in_file.sort();
    on_stderr.sort();
    assert_eq!(in_file, on_stderr);
    h.assert_clean();
}

/// The init hands stdio to the container: its trace goes to harun's own stderr, never into
/// the container's terminal or output.
#[test]
fn debug_never_writes_into_the_container() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["echo", "on-the-tty"])
        .set("/process/terminal", true);
    let id = h.id("tty");
    h.remember_id(&id);
    let out = h
        .cmd(["--debug", "run", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .run()
        .ok();
    assert_eq!(out.stdout.replace('\r', ""), "on-the-tty\n");
    let steps = steps(&out.stderr);
    assert!(has(&steps, "init: switch root"), "{steps:?}");
    h.assert_clean();
}

/// What the library reports without failing, one way: a capability the process does not
/// get (an ambient one without inheritable, as runc's default spec asks: runc drops it
/// silently) and a seccomp note (a syscall name this architecture lacks, as in Docker's and
/// podman's profiles) are `--debug` lines, on stderr and in `--log`; nothing without
/// `--debug`. (Warnings proper, a failing poststart hook: tests/hooks.rs.)
#[test]
fn library_notes_are_debug_lines() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"])
        .set(
            "/process/capabilities/ambient",
            serde_json::json!(["CAP_KILL"]),
        )
        .set("/process/capabilities/inheritable", serde_json::json!([]))
        .set(
            "/linux/seccomp",
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["arm_fadvise64_64"], "action": "SCMP_ACT_ERRNO"}]
            }),
        );
    let id = h.id("notes");
    h.remember_id(&id);
    let cap = "process.capabilities: ambient CAP_KILL: an ambient capability must be \
               permitted and inheritable, skipped";
    let note = "linux.seccomp.syscalls[0].names[0]: `arm_fadvise64_64` is not a syscall on";
    let out = h.cmd(["run", "--bundle"]).arg(b.dir()).arg(&id).run().ok();
    assert_eq!(out.stderr, "");

    let log = h.dir().join("notes.json");
    let out = h
        .cmd(["--debug", "--log-format", "json", "--log"])
        .arg(&log)
        .args(["run", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .run()
        .ok();
    let steps = steps(&out.stderr);
    assert!(has(&steps, cap) && has(&steps, note), "{}", out.stderr);
    let lines: Vec<serde_json::Value> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logged = |text: &str| {
        lines
            .iter()
            .any(|l| l["level"] == "debug" && l["msg"].as_str().unwrap().contains(text))
    };
    assert!(logged(cap) && logged(note), "{lines:?}");
    h.assert_clean();
}
