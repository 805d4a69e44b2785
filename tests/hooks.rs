//! OCI hooks: order, the state on stdin, the namespaces they run in, failures and timeouts.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use harun_integration::{harun, Bundle, Harun, TAG_ENV};
use serde_json::json;

/// Appends `<stage> <status> <pid> <id> <uts namespace>` to `log` next to the script,
/// reading the state JSON from stdin (runs under the host's dash and busybox sh alike).
const HOOK: &str = r#"#!/bin/sh
state=$(cat)
status=$(echo "$state" | sed -n 's/.*"status" *: *"\([a-z]*\)".*/\1/p')
pid=$(echo "$state" | sed -n 's/.*"pid" *: *\([0-9]*\).*/\1/p')
id=$(echo "$state" | sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p')
echo "$1 ${status:-none} ${pid:-0} ${id:-none} $(readlink /proc/self/ns/uts)" >> "$(dirname "$0")/log"
echo "$state" > "$(dirname "$0")/state-$1"
"#;

const STAGES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A directory holding the hook script, bind-mounted into the container at the same path
/// so the script and its log resolve alike on the host and inside (startContainer hooks
/// resolve their path in the container).
struct HookDir {
    dir: PathBuf,
}

impl HookDir {
    fn new(h: &Harun, b: &mut Bundle) -> HookDir {
        let dir = h.path("hooks");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let script = dir.join("hook.sh");
        fs::write(&script, HOOK).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let d = dir.to_string_lossy().into_owned();
        b.mount(&d, "bind", &d, &["bind", "rw"]);
        HookDir { dir }
    }

    fn script(&self) -> String {
        self.dir.join("hook.sh").to_string_lossy().into_owned()
    }

    fn log_path(&self) -> String {
        self.dir.join("log").to_string_lossy().into_owned()
    }

    /// The state JSON the hook of `stage` read.
    fn state(&self, stage: &str) -> serde_json::Value {
        let path = self.dir.join(format!("state-{stage}"));
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{stage}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{stage}: {e}: {text}"))
    }

    fn log(&self) -> Vec<Vec<String>> {
        fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    }
}

fn hook(path: &str, args: &[&str], tag: &str) -> serde_json::Value {
    json!({"path": path, "args": args, "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", format!("{TAG_ENV}={tag}")]})
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    let h = harun!();
    let mut b = h.bundle();
    let hd = HookDir::new(&h, &mut b);
    for stage in STAGES {
        b.push(
            &format!("/hooks/{stage}"),
            hook(&hd.script(), &["hook.sh", stage], &h.tag()),
        );
    }
    b.sh(&format!(
        "echo \"process - $$ - $(readlink /proc/self/ns/uts)\" >> {}",
        hd.log_path()
    ));
    let id = h.id("hooks");
    h.create(&id, &b).ok();
    let pid = h.state_of(&id).pid.to_string();
    let after_create: Vec<String> = hd.log().iter().map(|l| l[0].clone()).collect();
    assert_eq!(
        after_create,
        ["prestart", "createRuntime", "createContainer"]
    );
    h.start(&id).ok();
    h.wait_status(&id, "stopped");
    h.delete(&id).ok();

    let log = hd.log();
    let text: Vec<String> = log.iter().map(|l| l.join(" ")).collect();
    let text = text.join("\n");
    let stages: Vec<&str> = log
        .iter()
        .map(|l| l[0].as_str())
        .filter(|s| *s != "process")
        .collect();
    assert_eq!(stages, STAGES, "\n{text}");
    let line = |stage: &str| {
        log.iter()
            .find(|l| l[0] == stage)
            .unwrap_or_else(|| panic!("no {stage}:\n{text}"))
    };
    let pos = |stage: &str| log.iter().position(|l| l[0] == stage).unwrap();
    assert!(
        pos("startContainer") < pos("process"),
        "the process ran before startContainer:\n{text}"
    );

    let host_uts = fs::read_link("/proc/self/ns/uts")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let container_uts = line("process")[4].clone();
    assert_ne!(container_uts, host_uts);
    for (stage, status, uts) in [
        ("prestart", "creating", &host_uts),
        ("createRuntime", "creating", &host_uts),
        ("createContainer", "creating", &container_uts),
        ("startContainer", "created", &container_uts),
        ("poststart", "running", &host_uts),
        ("poststop", "stopped", &host_uts),
    ] {
        let l = line(stage);
        assert_eq!(l[1], status, "{stage} status:\n{text}");
        assert_eq!(l[3], id, "{stage} id:\n{text}");
        assert_eq!(
            &l[4], uts,
            "{stage} runs in the wrong uts namespace:\n{text}"
        );
        // runtime.md "State": the pid as the hook's namespace sees it — the container's
        // pid namespace for createContainer and startContainer (runc gives 1 there too).
        match stage {
            "poststop" => assert!(l[2] == "0" || l[2] == pid, "poststop pid:\n{text}"),
            "createContainer" | "startContainer" => {
                assert_eq!(l[2], "1", "{stage} pid (the container's view):\n{text}")
            }
            _ => assert_eq!(l[2], pid, "{stage} pid (the host's view):\n{text}"),
        }
    }
    h.assert_clean();
}

/// Every stage's state has what runtime.md "State" requires: ociVersion, id, status,
/// bundle (absolute), annotations (the config's), pid while created or running.
#[test]
fn each_stage_gets_the_full_state() {
    let h = harun!();
    let mut b = h.bundle();
    let hd = HookDir::new(&h, &mut b);
    for stage in STAGES {
        b.push(
            &format!("/hooks/{stage}"),
            hook(&hd.script(), &["hook.sh", stage], &h.tag()),
        );
    }
    b.set("/annotations", json!({"org.example.key": "value"}))
        .args(&["true"]);
    h.run_ok(&b);
    let bundle = fs::canonicalize(b.dir()).unwrap();
    for (stage, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let st = hd.state(stage);
        assert_eq!(st["status"], status, "{stage}: {st}");
        assert!(st["ociVersion"].is_string(), "{stage}: {st}");
        assert!(
            st["id"].as_str().is_some_and(|i| !i.is_empty()),
            "{stage}: {st}"
        );
        assert_eq!(
            st["bundle"],
            bundle.to_string_lossy().as_ref(),
            "{stage}: {st}"
        );
        assert_eq!(
            st["annotations"]["org.example.key"], "value",
            "{stage}: {st}"
        );
        if status != "stopped" {
            assert!(st["pid"].as_i64().is_some_and(|p| p > 0), "{stage}: {st}");
        }
    }
    h.assert_clean();
}

/// A failing hook before start fails the operation, names the hook, and leaves nothing.
fn failing_hook_fails_create(stage: &str) {
    let h = harun!();
    let mut b = h.bundle();
    b.push(
        &format!("/hooks/{stage}"),
        hook("/bin/false", &["false"], &h.tag()),
    );
    let id = h.id("badhook");
    h.create(&id, &b).error(&[stage]);
    h.state(&id).error(&["does not exist"]);
    h.assert_clean();
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    failing_hook_fails_create("createRuntime");
}

#[test]
fn failing_prestart_hook_fails_create() {
    failing_hook_fails_create("prestart");
}

#[test]
fn failing_create_container_hook_fails_create() {
    failing_hook_fails_create("createContainer");
}

#[test]
fn failing_start_container_hook_stops_the_container_before_the_process_runs() {
    let h = harun!();
    let mut b = h.bundle();
    let hd = HookDir::new(&h, &mut b);
    b.push(
        "/hooks/startContainer",
        hook("/bin/false", &["false"], &h.tag()),
    )
    .sh(&format!("echo ran >> {}", hd.log_path()));
    let id = h.id("badstart");
    h.create(&id, &b).ok();
    // The spec wants an error; runc runs these hooks in the init after the start handshake,
    // so its `start` exits 0 and the init fails. Either is accepted; the container must
    // stop without running the process.
    let start = h.start(&id);
    if start.code != 0 {
        start.error(&["startContainer"]);
    }
    h.wait_status(&id, "stopped");
    assert!(hd.log().is_empty(), "the process ran: {:?}", hd.log());
    h.delete(&id).ok();
    h.assert_clean();
}

#[test]
fn hook_timeout_is_honoured() {
    let h = harun!();
    let mut b = h.bundle();
    let mut slow = hook("/bin/sleep", &["sleep", "60"], &h.tag());
    slow["timeout"] = json!(1);
    b.push("/hooks/createRuntime", slow);
    let id = h.id("slowhook");
    let t0 = Instant::now();
    h.create(&id, &b).error(&["createRuntime"]);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "timeout 1 s took {:?}",
        t0.elapsed()
    );
    h.assert_clean();
}

/// poststart and poststop failures are warnings (runtime.md "Lifecycle" steps 9 and 13):
/// on stderr and in the `--log` file, every other hook of the stage still runs, and start
/// and delete exit 0. (runc 1.1.5 runs poststart hooks during create and fails it, and
/// stops a stage at its first failure; delete exits 0 there too. crun: as here.)
#[test]
fn failing_poststart_and_poststop_hooks_are_warnings() {
    let h = harun!();
    let mut b = h.bundle();
    let hd = HookDir::new(&h, &mut b);
    for stage in ["poststart", "poststop"] {
        b.push(
            &format!("/hooks/{stage}"),
            hook("/bin/sh", &["sh", "-c", "exit 3"], &h.tag()),
        )
        .push(
            &format!("/hooks/{stage}"),
            hook(&hd.script(), &["hook.sh", stage], &h.tag()),
        );
    }
    b.args(&["sleep", "600"]);
    let id = h.id("warnhooks");
    let log = h.path("log.json");
    let logged = |cmd: &str| {
        h.cmd([cmd, id.as_str()])
            .global(["--log-format", "json", "--log"])
            .global([&log])
            .run()
    };
    h.create(&id, &b).ok();
    let start = logged("start").ok();
    assert!(
        start.stderr.contains("warning") && start.stderr.contains("poststart hook #0"),
        "{start}"
    );
    assert_eq!(h.state_of(&id).status, "running");
    h.kill(&id, "KILL").ok();
    h.wait_status(&id, "stopped");
    let delete = logged("delete").ok();
    assert!(delete.stderr.contains("poststop hook #0"), "{delete}");
    h.state(&id).error(&["does not exist"]);
    let stages: Vec<String> = hd.log().into_iter().map(|l| l[0].clone()).collect();
    assert_eq!(
        stages,
        ["poststart", "poststop"],
        "the second hooks did not run"
    );
    let lines: Vec<serde_json::Value> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, stage) in lines.iter().zip(["poststart", "poststop"]) {
        assert_eq!(line["level"], "warning", "{line}");
        let msg = line["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(&format!("{stage} hook #0")), "{line}");
        assert!(msg.contains("exited with status 3"), "{line}");
    }
    h.assert_clean();
}

/// A create that fails on a hook stops the container and goes on at step 12: the poststop
/// hooks run, with a stopped container's state (runtime.md "Lifecycle"; runc 1.1.5 too).
#[test]
fn failed_create_runs_the_poststop_hooks() {
    let h = harun!();
    let mut b = h.bundle();
    let hd = HookDir::new(&h, &mut b);
    b.push(
        "/hooks/createRuntime",
        hook("/bin/sh", &["sh", "-c", "exit 5"], &h.tag()),
    )
    .push(
        "/hooks/poststop",
        hook(&hd.script(), &["hook.sh", "poststop"], &h.tag()),
    );
    let id = h.id("failpoststop");
    h.create(&id, &b)
        .error(&["createRuntime", "exited with status 5"]);
    let st = hd.state("poststop");
    assert_eq!(
        (st["status"].as_str(), st["id"].as_str()),
        (Some("stopped"), Some(id.as_str()))
    );
    h.assert_clean();
}

/// Foreground `run` runs every hook too, poststop included (run deletes the container).
#[test]
fn run_runs_all_hooks() {
    let h = harun!();
    let mut b = h.bundle();
    let hd = HookDir::new(&h, &mut b);
    for stage in STAGES {
        b.push(
            &format!("/hooks/{stage}"),
            hook(&hd.script(), &["hook.sh", stage], &h.tag()),
        );
    }
    b.args(&["true"]);
    h.run_ok(&b);
    let stages: Vec<String> = hd.log().into_iter().map(|l| l[0].clone()).collect();
    assert_eq!(stages, STAGES);
    h.assert_clean();
}
