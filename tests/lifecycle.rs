//! create → start → kill → delete, state semantics, list, and the exit codes callers rely on.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use harun_integration::procs::ProcId;
use harun_integration::{harun, Harun, Out};

/// Waits until the detached container has written `needle` to its create's stdout.
fn wait_output(out: &Out, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = out.stdout_now();
        if now.contains(needle) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "container never printed {needle:?}; got {now:?}"
        );
        sleep(Duration::from_millis(20));
    }
}

fn created(h: &Harun, name: &str, script: &str) -> (String, Out) {
    let mut b = h.bundle();
    b.sh(script);
    let id = h.id(name);
    let out = h.create(&id, &b).ok();
    (id, out)
}

#[test]
fn create_start_kill_delete() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo started; exec sleep 600");
    let id = h.id("life");
    let create = h.create(&id, &b).ok();

    let st = h.state_of(&id);
    assert_eq!(st.id, id);
    assert_eq!(st.status, "created");
    assert!(st.pid > 0, "{:?}", st.json);
    assert_eq!(Some(st.pid), h.pid_from_file(&id), "pid file vs state");
    assert_eq!(Path::new(&st.bundle), b.dir());
    let init = ProcId::of(st.pid).expect("the init process exists");
    assert!(h.root().join(&id).is_dir(), "no state dir under --root");
    sleep(Duration::from_millis(200));
    assert_eq!(create.stdout_now(), "", "the process ran before start");

    h.start(&id).ok();
    wait_output(&create, "started\n");
    let running = h.state_of(&id);
    assert_eq!(running.status, "running");
    assert_eq!(running.pid, st.pid);

    h.kill(&id, "KILL").ok();
    let stopped = h.wait_status(&id, "stopped");
    assert_eq!(stopped.id, id);

    h.delete(&id).ok();
    h.state(&id).error(&[&id, "does not exist"]);
    assert!(!h.root().join(&id).exists(), "state dir left after delete");
    assert!(!init.is_alive(), "the init survived delete");
    h.assert_clean();
}

#[test]
fn start_twice_fails_and_start_of_stopped_fails() {
    let h = harun!();
    let (id, _) = created(&h, "twice", "exec sleep 600");
    h.start(&id).ok();
    h.start(&id).error(&[&id]);
    h.kill(&id, "KILL").ok();
    h.wait_status(&id, "stopped");
    h.start(&id).error(&[&id]);
    h.delete(&id).ok();
    h.assert_clean();
}

/// `kill` without a signal sends SIGTERM; names with or without SIG and numbers work.
#[test]
fn kill_signal_forms() {
    let h = harun!();
    let script = "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.05; done";
    for form in [None, Some("TERM"), Some("SIGTERM"), Some("15")] {
        let (id, out) = created(&h, &format!("term{}", form.unwrap_or("default")), script);
        h.start(&id).ok();
        wait_output(&out, "ready");
        match form {
            None => h.exec(&["kill", &id]).ok(),
            Some(sig) => h.kill(&id, sig).ok(),
        };
        h.wait_status(&id, "stopped");
        wait_output(&out, "got-term");
        h.delete(&id).ok();
    }
    for form in ["KILL", "SIGKILL", "9"] {
        let (id, _) = created(&h, &format!("kill{form}"), "exec sleep 600");
        h.start(&id).ok();
        h.kill(&id, form).ok();
        h.wait_status(&id, "stopped");
        h.delete(&id).ok();
    }
    h.assert_clean();
}

/// containerd sends `kill --all ID 9` to containers that already stopped: exit 0.
/// A plain `kill` of a stopped container fails (exit 1).
#[test]
fn kill_of_a_stopped_container() {
    let h = harun!();
    let (id, _) = created(&h, "stopped", "exit 0");
    h.start(&id).ok();
    h.wait_status(&id, "stopped");
    h.exec(&["kill", "--all", &id, "9"]).ok();
    h.kill(&id, "15").error(&[]);
    assert_eq!(h.state_of(&id).status, "stopped");
    h.delete(&id).ok();
    h.assert_clean();
}

#[test]
fn kill_all_kills_every_process_of_the_container() {
    let h = harun!();
    let (id, out) = created(&h, "killall", "sleep 600 & sleep 600 & echo ready; wait");
    h.start(&id).ok();
    wait_output(&out, "ready");
    h.exec(&["kill", "--all", &id, "KILL"]).ok();
    h.wait_status(&id, "stopped");
    h.delete(&id).ok();
    h.assert_clean();
}

#[test]
fn delete_force_of_an_unknown_id_exits_0() {
    let h = harun!();
    h.delete_force(&h.id("never-created")).ok();
    h.assert_clean();
}

#[test]
fn delete_of_a_running_container_fails_and_keeps_it() {
    let h = harun!();
    let (id, _) = created(&h, "busy", "exec sleep 600");
    h.start(&id).ok();
    h.delete(&id).error(&[&id]);
    let st = h.state_of(&id);
    assert_eq!(st.status, "running");
    assert!(ProcId::of(st.pid).is_some_and(|p| p.is_alive()));
    h.delete_force(&id).ok();
    h.state(&id).error(&["does not exist"]);
    h.assert_clean();
}

/// A created (never started) container can be deleted: containerd does this when start fails.
#[test]
fn delete_of_a_created_container() {
    let h = harun!();
    let (id, out) = created(&h, "unstarted", "echo must-not-run");
    h.delete(&id).ok();
    h.state(&id).error(&["does not exist"]);
    h.assert_clean();
    assert_eq!(
        out.stdout_now(),
        "",
        "the process ran although never started"
    );
}

#[test]
fn state_of_an_unknown_id_fails() {
    let h = harun!();
    let id = h.id("ghost");
    h.state(&id).error(&[&id, "does not exist"]);
    h.assert_clean();
}

#[test]
fn list_table_json_and_quiet() {
    let h = harun!();
    let empty = h.exec(&["list", "--format", "json"]).ok().json();
    assert!(
        empty.is_null() || empty.as_array().is_some_and(|a| a.is_empty()),
        "{empty}"
    );
    assert_eq!(h.exec(&["list", "-q"]).ok().stdout.trim(), "");

    let (a, _) = created(&h, "list-a", "exec sleep 600");
    let (b, _) = created(&h, "list-b", "exec sleep 600");
    h.start(&b).ok();

    let table = h.exec(&["list"]).ok().stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    for col in ["ID", "PID", "STATUS", "BUNDLE"] {
        assert!(header.contains(&col), "header lacks {col}:\n{table}");
    }
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{table}"))
            .to_string()
    };
    assert!(
        row(&a).split_whitespace().any(|w| w == "created"),
        "{table}"
    );
    assert!(
        row(&b).split_whitespace().any(|w| w == "running"),
        "{table}"
    );

    let json = h.exec(&["list", "--format", "json"]).ok().json();
    let entries = json.as_array().expect("list --format json is an array");
    assert_eq!(entries.len(), 2, "{json}");
    for (id, status) in [(&a, "created"), (&b, "running")] {
        let e = entries
            .iter()
            .find(|e| e["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} in {json}"));
        assert_eq!(e["status"], status, "{json}");
        assert_eq!(e["pid"].as_i64(), Some(h.state_of(id).pid as i64), "{json}");
        assert!(
            e["bundle"].as_str().is_some_and(|s| !s.is_empty()),
            "{json}"
        );
    }

    let mut quiet: Vec<String> = h
        .exec(&["list", "-q"])
        .ok()
        .stdout
        .lines()
        .map(str::to_string)
        .collect();
    quiet.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(quiet, want);

    h.delete_force(&a).ok();
    h.delete_force(&b).ok();
    h.assert_clean();
}

/// An init that exited is stopped, also while it is an unreaped zombie (the test process is
/// the subreaper here, as a shim would be, and reaps only at the end).
#[test]
fn state_after_the_init_exited_is_stopped() {
    let h = harun!();
    let (id, _) = created(&h, "exited", "exit 0");
    let pid = h.state_of(&id).pid;
    h.start(&id).ok();
    let st = h.wait_status(&id, "stopped");
    assert!(st.pid == 0 || st.pid == pid, "{:?}", st.json);
    h.delete(&id).ok();
    h.assert_clean();
}

#[test]
fn spec_writes_the_example_config() {
    let h = harun!();
    let dir = h.path("spec");
    std::fs::create_dir(&dir).unwrap();
    h.cmd(["spec", "--bundle"]).arg(&dir).run().ok();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let example: serde_json::Value =
        serde_json::from_str(harun_runtime::spec::example_json()).unwrap();
    assert_eq!(written, example);
    h.assert_clean();
}

#[test]
fn features_prints_json() {
    let h = harun!();
    let f = h.exec(&["features"]).ok().json();
    assert!(
        f["ociVersionMin"].is_string() && f["ociVersionMax"].is_string(),
        "{f}"
    );
    let ns = f["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces");
    for t in ["pid", "mount", "uts", "ipc", "network", "cgroup"] {
        assert!(
            ns.iter().any(|n| n == t),
            "features lack namespace {t}: {f}"
        );
    }
    h.assert_clean();
}

/// `harun state ID | grep -q running`: when the reader has gone, harun ends like runc and
/// other Unix tools (killed by SIGPIPE), not with a panic message on stderr.
#[test]
fn output_into_a_closed_pipe_ends_by_sigpipe_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let h = harun!();
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    for args in [&["features"][..], &["list", "--format", "json"], &["list"]] {
        let out = std::process::Command::new(h.bin())
            .arg("--root")
            .arg(h.root())
            .args(args)
            .stdout(writer.try_clone().expect("dup"))
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("spawn harun");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?}, stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    h.assert_clean();
}
