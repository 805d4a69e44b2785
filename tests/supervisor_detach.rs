//! The detached supervisor: it outlives its launching shell, logs the container's output
//! across restarts with size-capped rotation, feeds `logs -f` / `events -f`, and costs no
//! CPU while the container runs.

mod supervisor_util;

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use harun_integration::harun;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use supervisor_util::*;

/// Fields of /proc/PID/stat after the command name: index 0 is field 3 (state).
fn stat_fields(pid: i32) -> Vec<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &text[text.rfind(')').unwrap() + 2..];
    after.split(' ').map(str::to_string).collect()
}

fn status_field(pid: i32, key: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn the_supervisor_survives_its_launching_shell() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("survive");
    h.remember_id(&id);
    // A login-shell stand-in in its own process group: it launches the container, then
    // lingers like an interactive shell until its terminal goes away.
    let script = format!(
        "'{}' --root '{}' run -d --restart always --bundle '{}' '{}' && exec sleep 600",
        h.bin().display(),
        h.root().display(),
        b.dir().display(),
        id
    );
    let mut shell = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn sh");
    let shell_pgid = Pid::from_raw(shell.id() as i32);
    let pid = h.wait_status(&id, "running").pid;
    wait_starts(&h, &id, 1);
    let supervisor = supervisor_pid(&h, &id);
    let fields = stat_fields(supervisor);
    assert_eq!(
        fields[3],
        supervisor.to_string(),
        "its own session (setsid)"
    );
    // The terminal closes: SIGHUP to the shell's group, then the shell dies.
    let _ = killpg(shell_pgid, Signal::SIGHUP);
    let _ = killpg(shell_pgid, Signal::SIGKILL);
    shell.wait().expect("reap sh");
    sleep(Duration::from_millis(300));
    assert_eq!(
        supervisor_pid(&h, &id),
        supervisor,
        "the supervisor lives on"
    );
    assert_eq!(h.state_of(&id).pid, pid, "the container runs on");
    // ... and still does its job.
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    wait_starts(&h, &id, 2);
    assert_eq!(h.wait_status(&id, "running").status, "running");
    delete_and_check(&h, &id);
}

#[test]
fn logs_show_the_output_of_every_run() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo out-line; echo err-line >&2; exit 1");
    let id = h.id("logs");
    run_detached(
        &h,
        &id,
        &b,
        &["--restart", "on-failure:2", "--restart-delay", "10ms"],
    );
    wait_final(&h, &id);
    let all = h.exec(&["logs", &id]).ok();
    assert_eq!(all.stdout, "out-line\nerr-line\n".repeat(3));
    let tail = h.exec(&["logs", "--tail", "3", &id]).ok();
    assert_eq!(tail.stdout, "err-line\nout-line\nerr-line\n");
    assert_eq!(h.exec(&["logs", "-n", "0", &id]).ok().stdout, "");
    // `list --format json` carries the restarts of supervised containers.
    let list = h.exec(&["list", "--format", "json"]).ok().json();
    let me = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(me["restarts"], 2, "{me}");
    delete_and_check(&h, &id);
}

#[test]
fn the_log_rotates_at_the_configured_size_and_count() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh(
        "i=0; while [ $i -lt 300 ]; do echo \"line $i padding-padding-padding\"; i=$((i+1)); done",
    );
    let id = h.id("rotate");
    run_detached(
        &h,
        &id,
        &b,
        &[
            "--restart",
            "on-failure",
            "--log-max-size",
            "1k",
            "--log-max-files",
            "2",
        ],
    );
    wait_final(&h, &id);
    let v = inspect(&h, &id);
    assert_eq!(v["supervision"]["log"]["maxSize"], 1024);
    assert_eq!(v["supervision"]["log"]["maxFiles"], 2);
    let log = std::path::PathBuf::from(v["supervision"]["log"]["path"].as_str().unwrap());
    let dir = log.parent().unwrap();
    let mut files: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("container.log"))
        .collect();
    files.sort();
    assert_eq!(files, ["container.log", "container.log.1"]);
    for f in &files {
        let len = fs::metadata(dir.join(f)).unwrap().len();
        assert!(len <= 1024, "{f}: {len} bytes");
    }
    let out = h.exec(&["logs", &id]).ok().stdout;
    assert!(out.len() <= 2048 && out.len() > 1024, "{} bytes", out.len());
    let numbers: Vec<usize> = out
        .lines()
        .map(|l| {
            assert!(
                l.starts_with("line ") && l.ends_with(" padding-padding-padding"),
                "{l:?}"
            );
            l.split(' ').nth(1).unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(numbers.last(), Some(&299));
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "whole, consecutive lines"
    );
    delete_and_check(&h, &id);
}

#[test]
fn logs_and_events_follow_until_the_supervision_ends() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh(
        "sleep 0.5; i=0; while [ $i -lt 5 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done; exit 4",
    );
    let id = h.id("follow");
    run_detached(
        &h,
        &id,
        &b,
        &["--restart", "on-failure:1", "--restart-delay", "10ms"],
    );
    let logs = h.cmd(["logs", "-f", &id]).spawn();
    let events = h.cmd(["events", "--follow", &id]).spawn();
    let logs = logs.wait().ok();
    let ticks: String = (0..5).map(|i| format!("tick {i}\n")).collect();
    assert_eq!(logs.stdout, ticks.repeat(2));
    let events = events.wait().ok();
    let ev = parse_lines(&events.stdout);
    assert_eq!(
        kinds(&ev),
        [
            "created",
            "started",
            "exited",
            "restarting",
            "created",
            "started",
            "exited",
            "gave-up"
        ]
    );
    assert_eq!(ev.last().unwrap()["code"], 4);
    delete_and_check(&h, &id);
}

/// No CPU at all while the container runs (sampled from /proc/PID/stat), one thread, and
/// the resident size, reported.
#[test]
fn the_supervisor_is_idle_while_the_container_runs() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("idle");
    run_detached(&h, &id, &b, &["--restart", "always"]);
    h.wait_status(&id, "running");
    wait_starts(&h, &id, 1);
    let supervisor = supervisor_pid(&h, &id);
    // It wakes once, a second after the create, to give memory back (the engine's idle
    // timer); from then on nothing.
    sleep(Duration::from_millis(1500));
    let ticks = || {
        let f = stat_fields(supervisor);
        // utime and stime: fields 14 and 15.
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let voluntary = || status_field(supervisor, "voluntary_ctxt_switches:");
    let (t0, v0, start) = (ticks(), voluntary(), Instant::now());
    sleep(Duration::from_secs(3));
    let (t1, v1) = (ticks(), voluntary());
    let rss = status_field(supervisor, "VmRSS:");
    let threads = status_field(supervisor, "Threads:");
    println!(
        "supervisor pid {supervisor}: {} CPU ticks and {} wake-ups in {:?} idle; VmRSS {rss}; \
         threads {threads}",
        t1 - t0,
        v1.parse::<u64>().unwrap_or(0) - v0.parse::<u64>().unwrap_or(0),
        start.elapsed()
    );
    assert_eq!(t1, t0, "the supervisor used CPU while idle");
    assert_eq!(v1, v0, "the supervisor woke up while idle");
    assert_eq!(threads, "1");
    delete_and_check(&h, &id);
}

/// Without a pid namespace of its own, a container's orphans are handed to the supervisor
/// (a child subreaper), which reaps them: no zombies pile up under it.
#[test]
fn the_supervisor_reaps_orphans_of_a_container_without_a_pid_namespace() {
    let h = harun!();
    let mut b = h.bundle();
    b.without_namespace("pid").sh("sleep 0.2 & exit 1");
    let id = h.id("orphans");
    run_detached(
        &h,
        &id,
        &b,
        &[
            "--restart",
            "always",
            "--restart-delay",
            "50ms",
            "--restart-max-delay",
            "50ms",
        ],
    );
    wait_starts(&h, &id, 4);
    let supervisor = supervisor_pid(&h, &id);
    // (pid, state, command line) of the supervisor's children.
    let children = || -> Vec<(i32, String, String)> {
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| {
                let f = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let after = &f[f.rfind(')')? + 2..];
                let mut it = after.split(' ');
                let state = it.next()?.to_string();
                let ppid: i32 = it.next()?.parse().ok()?;
                let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                (ppid == supervisor).then_some((pid, state, cmd))
            })
            .collect()
    };
    // The orphaned `sleep`s do become the supervisor's children...
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children()
        .iter()
        .any(|(_, _, cmd)| cmd.starts_with("sleep 0.2"))
    {
        assert!(
            Instant::now() < deadline,
            "no orphan handed to the supervisor"
        );
        sleep(Duration::from_millis(5));
    }
    // ... and none stays a zombie (one may exist for the moment the supervisor is busy
    // restarting: a zombie still there half a second later was never reaped).
    let zombies = || -> Vec<i32> {
        children()
            .into_iter()
            .filter(|(_, s, _)| s == "Z")
            .map(|(pid, _, _)| pid)
            .collect()
    };
    let before = zombies();
    sleep(Duration::from_millis(500));
    let lasting: Vec<i32> = zombies()
        .into_iter()
        .filter(|p| before.contains(p))
        .collect();
    assert!(
        lasting.is_empty(),
        "zombies under the supervisor: {lasting:?}"
    );
    assert_eq!(supervisor_pid(&h, &id), supervisor);
    delete_and_check(&h, &id);
}

/// `kill -9` of a detached supervisor: `inspect` says so, the container runs on and keeps
/// its output (a FIFO, not a pipe: no SIGPIPE at its next line), and `harun run` of the
/// same ID takes it over instead of saying it exists; the new supervisor does its job.
#[test]
fn a_killed_supervisor_is_reported_and_run_again_takes_the_container_over() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("i=0; while :; do echo line $i; i=$((i+1)); usleep 20000; done");
    let id = h.id("takeover");
    run_detached(&h, &id, &b, &["--restart", "always"]);
    let pid = h.wait_status(&id, "running").pid;
    wait_starts(&h, &id, 1);
    let supervisor = supervisor_pid(&h, &id);
    kill(Pid::from_raw(supervisor), Signal::SIGKILL).unwrap();
    wait_gone(supervisor);
    let v = inspect(&h, &id);
    assert_eq!(v["supervision"]["state"], "orphaned", "{v:#}");
    assert_eq!(v["supervision"]["supervisorPid"], serde_json::Value::Null);
    assert!(v["supervision"]["supervisorDied"]
        .as_str()
        .is_some_and(|s| s.contains("harun run")));
    // It writes all along, with nobody reading: it must not die of it.
    sleep(Duration::from_millis(600));
    assert_eq!(
        h.state_of(&id).pid,
        pid,
        "the container died without its supervisor"
    );
    run_detached(&h, &id, &b, &["--restart", "always"]);
    let v = inspect(&h, &id);
    assert_eq!(v["supervision"]["state"], "running", "{v:#}");
    assert_eq!(v["pid"], pid, "taken over, not restarted");
    let ev = events(&h, &id);
    assert_eq!(kinds(&ev), ["created", "started", "adopted"], "{ev:#?}");
    // What it wrote while nobody read is in the log: consecutive lines.
    sleep(Duration::from_millis(200));
    let log = h.exec(&["logs", &id]).ok().stdout;
    let numbers: Vec<u64> = log
        .lines()
        .map(|l| l.trim_start_matches("line ").parse().expect("a line"))
        .collect();
    assert!(numbers.len() > 30, "{} lines", numbers.len());
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "lines lost: {numbers:?}"
    );
    // The new supervisor restarts it (its status unknown: not our child).
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let ev = wait_starts(&h, &id, 2);
    let exited = of_kind(&ev, "exited");
    assert_eq!(exited.len(), 1);
    assert_eq!(exited[0]["signal"], serde_json::Value::Null, "{ev:#?}");
    assert!(supervisor_pid(&h, &id) != supervisor);
    delete_and_check(&h, &id);
}

/// A crash-looping container whose supervisor dies during a restart delay: `inspect` does
/// not promise a restart nobody will make, and `delete --force` cleans it all.
#[test]
fn a_dead_supervisor_promises_no_restart() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("exit 1");
    let id = h.id("deadloop");
    run_detached(
        &h,
        &id,
        &b,
        &[
            "--restart",
            "always",
            "--restart-delay",
            "30s",
            "--restart-max-delay",
            "1m",
        ],
    );
    wait_events(&h, &id, "restarting", |ev| {
        !of_kind(ev, "restarting").is_empty()
    });
    let supervisor = supervisor_pid(&h, &id);
    assert!(inspect(&h, &id)["supervision"]["nextRestart"].is_string());
    kill(Pid::from_raw(supervisor), Signal::SIGKILL).unwrap();
    wait_gone(supervisor);
    let v = inspect(&h, &id);
    assert_eq!(v["supervision"]["state"], "orphaned", "{v:#}");
    assert_eq!(v["supervision"]["nextRestart"], serde_json::Value::Null);
    delete_and_check(&h, &id);
}

/// The detached supervisor keeps none of its caller's fds: a shell capturing the output of
/// `harun run -d --restart ...` gets its EOF.
#[test]
fn run_detach_in_a_command_substitution_returns() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("capture");
    h.remember_id(&id);
    let script = format!(
        "x=$('{}' --root '{}' run -d --restart always --bundle '{}' '{}' 3>&1); echo \"done [$x]\"",
        h.bin().display(),
        h.root().display(),
        b.dir().display(),
        id
    );
    let t0 = Instant::now();
    let out = Command::new("timeout")
        .args(["20", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("sh");
    assert!(out.status.success(), "{out:?}");
    // `run -d` prints the container's ID (README "Command reference").
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("done [{id}]\n")
    );
    assert!(t0.elapsed() < Duration::from_secs(15));
    let supervisor = supervisor_pid(&h, &id);
    let fds: Vec<String> = fs::read_dir(format!("/proc/{supervisor}/fd"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let target = fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    assert!(
        !fds.iter().any(|f| f.contains("pipe:")),
        "the supervisor holds a pipe: {fds:#?}"
    );
    delete_and_check(&h, &id);
}
