//! Restart policies end to end: which exits restart, the backoff read from the events'
//! timestamps, the on-failure limit, the crash-loop limit and the backoff reset.

mod supervisor_util;

use harun_integration::harun;
use supervisor_util::*;

/// The tolerance on top of a restart delay: delete + create + start of the container on a
/// loaded two-core machine.
const SLACK_MS: i64 = 2_000;

#[test]
fn on_failure_3_restarts_three_times_with_growing_delays_then_stops_with_exit_1() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo run; exit 1");
    let id = h.id("onfail3");
    run_detached(&h, &id, &b, &["--restart", "on-failure:3"]);
    let ev = wait_final(&h, &id);
    assert_eq!(
        kinds(&ev),
        [
            "created",
            "started",
            "exited",
            "restarting", // run 1
            "created",
            "started",
            "exited",
            "restarting", // run 2
            "created",
            "started",
            "exited",
            "restarting", // run 3
            "created",
            "started",
            "exited",
            "gave-up", // run 4: no more
        ],
        "{ev:#?}"
    );
    for e in of_kind(&ev, "exited") {
        assert_eq!(e["code"], 1, "{e}");
    }
    let delays: Vec<i64> = of_kind(&ev, "restarting")
        .iter()
        .map(|e| e["delayMs"].as_i64().unwrap())
        .collect();
    assert_eq!(delays, [100, 200, 400]);
    // What actually happened, from the timestamps: each restart waited its delay.
    let mut from = 0;
    for want in [100, 200, 400] {
        let (gap, next) = gap_ms(&ev, "exited", "started", from);
        assert!(
            (want..want + SLACK_MS).contains(&gap),
            "restart after {gap} ms, want {want} ms (+ up to {SLACK_MS}): {ev:#?}"
        );
        from = next;
    }
    let last = ev.last().unwrap();
    assert_eq!(last["code"], 1);
    assert!(
        last["reason"].as_str().unwrap().contains("3 restarts"),
        "{last}"
    );
    let v = inspect(&h, &id);
    assert_eq!(v["status"], "stopped");
    assert_eq!(v["supervision"]["state"], "gave-up");
    assert_eq!(v["supervision"]["restartCount"], 3);
    assert_eq!(v["supervision"]["lastExit"]["code"], 1);
    assert_eq!(v["supervision"]["supervisorPid"], serde_json::Value::Null);
    // `list` shows the restarts.
    let list = h.exec(&["list"]).ok();
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .expect("listed");
    assert!(row.ends_with(" 3"), "{list}");
    assert!(
        list.stdout.starts_with("ID ") && list.stdout.lines().next().unwrap().ends_with("RESTARTS")
    );
    delete_and_check(&h, &id);
}

/// The same policy in the foreground: events printed, exit with the last code, nothing left.
#[test]
fn foreground_on_failure_prints_events_and_exits_with_the_last_code() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo run; exit 3");
    let id = h.id("fgonfail");
    h.remember_id(&id);
    let out = h
        .cmd([
            "run",
            "--restart",
            "on-failure:2",
            "--restart-delay",
            "10ms",
            "--bundle",
        ])
        .arg(b.dir())
        .arg(&id)
        .run()
        .exit(3);
    assert_eq!(out.stdout, "run\nrun\nrun\n");
    let lines: Vec<&str> = out.stderr.lines().collect();
    let has = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(has(": started (pid "), 3, "{out}");
    assert_eq!(has(": exited with code 3 after "), 3, "{out}");
    assert_eq!(has(": restarting in 10ms (restart 1)"), 1, "{out}");
    assert_eq!(has(": restarting in 20ms (restart 2)"), 1, "{out}");
    assert_eq!(has(": gave up: failed again after 2 restarts"), 1, "{out}");
    assert!(lines.iter().all(|l| l.starts_with("harun: 20")), "{out}");
    h.exec(&["inspect", &id]).error(&["does not exist"]);
    h.assert_clean();
}

/// A foreground supervisor whose stderr reader has gone (`... 2>&1 | head -1`) keeps
/// supervising: all three runs happen and it exits with the last code, no panic.
#[test]
fn foreground_supervision_survives_a_closed_stderr() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo run; exit 3");
    let id = h.id("fgclosed");
    h.remember_id(&id);
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(h.bin())
        .arg("--root")
        .arg(h.root())
        .args([
            "run",
            "--restart",
            "on-failure:2",
            "--restart-delay",
            "10ms",
        ])
        .arg("--bundle")
        .arg(b.dir())
        .arg(&id)
        .stderr(writer)
        .output()
        .expect("spawn harun");
    assert_eq!(out.status.code(), Some(3), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "run\nrun\nrun\n");
    h.exec(&["inspect", &id]).error(&["does not exist"]);
    h.assert_clean();
}

#[test]
fn on_failure_does_not_restart_a_success() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("exit 0");
    let id = h.id("onfail0");
    run_detached(&h, &id, &b, &["--restart", "on-failure"]);
    let ev = wait_final(&h, &id);
    assert_eq!(kinds(&ev), ["created", "started", "exited", "stopped"]);
    assert_eq!(ev[2]["code"], 0);
    assert!(ev[3]["reason"]
        .as_str()
        .unwrap()
        .contains("exited successfully"));
    assert_eq!(inspect(&h, &id)["supervision"]["restartCount"], 0);
    delete_and_check(&h, &id);
}

#[test]
fn always_restarts_a_success() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("exit 0");
    let id = h.id("always0");
    run_detached(
        &h,
        &id,
        &b,
        &["--restart", "always", "--restart-delay", "50ms"],
    );
    let ev = wait_starts(&h, &id, 3);
    let exits = of_kind(&ev, "exited");
    assert!(
        exits.len() >= 2 && exits.iter().all(|e| e["code"] == 0),
        "{ev:#?}"
    );
    assert!(of_kind(&ev, "restarting").len() >= 2);
    delete_and_check(&h, &id);
}

/// `--restart no` (over an annotation saying `always`): a plain run, never restarted.
#[test]
fn no_never_restarts() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("exit 1")
        .set("/annotations/run.harun.restart", "always");
    let id = h.id("no");
    run_detached(&h, &id, &b, &["--restart", "no"]);
    h.wait_status(&id, "stopped");
    let v = inspect(&h, &id);
    assert_eq!(v["supervision"], serde_json::Value::Null, "{v:#}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(h.state_of(&id).status, "stopped");
    h.delete(&id).ok();
    h.assert_clean();
}

/// The bundle's annotations alone make a run supervised.
#[test]
fn annotations_set_the_policy_and_flags_override_them() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("exit 2")
        .set("/annotations/run.harun.restart", "on-failure:5")
        .set("/annotations/run.harun.restart.delay", "30ms");
    let id = h.id("annot");
    run_detached(&h, &id, &b, &["--restart", "on-failure:1"]);
    let ev = wait_final(&h, &id);
    let delays: Vec<_> = of_kind(&ev, "restarting")
        .iter()
        .map(|e| e["delayMs"].clone())
        .collect();
    assert_eq!(
        delays,
        [30],
        "flag's limit 1, annotation's delay 30ms: {ev:#?}"
    );
    let v = inspect(&h, &id);
    assert_eq!(v["supervision"]["policy"], "on-failure:1");
    assert_eq!(v["supervision"]["restartDelay"], "30ms");
    delete_and_check(&h, &id);
}

/// SIGKILL from outside harun (the host's `kill`) is a failure: restarted under on-failure
/// and always.
#[test]
fn a_sigkill_from_outside_is_restarted() {
    let h = harun!();
    for policy in ["on-failure", "always"] {
        let mut b = h.bundle();
        b.args(&["sleep", "600"]);
        let id = h.id(&format!("outkill-{policy}"));
        run_detached(&h, &id, &b, &["--restart", policy]);
        let pid = h.wait_status(&id, "running").pid;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
            .expect("kill -9");
        let ev = wait_starts(&h, &id, 2);
        let exit = of_kind(&ev, "exited")[0];
        assert_eq!(exit["signal"], 9, "{policy}: {ev:#?}");
        assert_eq!(of_kind(&ev, "restarting")[0]["delayMs"], 100);
        let st = h.wait_status(&id, "running");
        assert_ne!(st.pid, pid, "a new init");
        assert_eq!(inspect(&h, &id)["supervision"]["restartCount"], 1);
        delete_and_check(&h, &id);
    }
}

/// N exits within S: gives up, and the event and the final state say so.
#[test]
fn a_crash_loop_gives_up() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("exit 1");
    let id = h.id("crashloop");
    run_detached(
        &h,
        &id,
        &b,
        &[
            "--restart",
            "always",
            "--restart-delay",
            "20ms",
            "--restart-limit",
            "3/30s",
        ],
    );
    let ev = wait_final(&h, &id);
    assert_eq!(of_kind(&ev, "exited").len(), 3, "{ev:#?}");
    assert_eq!(of_kind(&ev, "restarting").len(), 2);
    let last = ev.last().unwrap();
    assert_eq!(last["event"], "gave-up");
    assert_eq!(last["reason"], "crash loop: 3 exits within 30s");
    let v = inspect(&h, &id);
    assert_eq!(v["supervision"]["state"], "gave-up");
    assert_eq!(v["supervision"]["reason"], "crash loop: 3 exits within 30s");
    assert_eq!(v["supervision"]["restartLimit"], "3/30s");
    delete_and_check(&h, &id);
}

/// A run longer than reset-after brings the delay back to the first one.
#[test]
fn the_backoff_resets_after_a_long_run() {
    let h = harun!();
    let data = h.path("data");
    std::fs::create_dir(&data).unwrap();
    let mut b = h.bundle();
    // Runs 1, 2 and 4 fail at once, run 3 fails after 2 s, run 5 succeeds.
    b.mount("/data", "bind", &data.to_string_lossy(), &["rbind", "rw"])
        .sh(
            "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; \
             case $n in 3) sleep 2; exit 1;; 5) exit 0;; *) exit 1;; esac",
        );
    let id = h.id("reset");
    run_detached(
        &h,
        &id,
        &b,
        &["--restart", "on-failure", "--restart-reset-after", "1s"],
    );
    let ev = wait_final(&h, &id);
    let delays: Vec<i64> = of_kind(&ev, "restarting")
        .iter()
        .map(|e| e["delayMs"].as_i64().unwrap())
        .collect();
    assert_eq!(delays, [100, 200, 100, 200], "{ev:#?}");
    let long = of_kind(&ev, "exited")[2]["ranForMs"].as_i64().unwrap();
    assert!(long >= 1_000, "run 3 lasted {long} ms");
    assert_eq!(ev.last().unwrap()["code"], 0);
    delete_and_check(&h, &id);
}

/// `harun run --restart` is the engine of `harun supervise` with one container: a bundle's
/// health check works there too, and an unhealthy container is restarted.
#[test]
fn a_health_check_works_under_run_too() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("rm -f /sick; trap 'exit 0' TERM; while :; do sleep 1 & wait; done")
        .set("/root/readonly", false)
        .set(
            "/annotations/run.harun.health.cmd",
            r#"["sh","-c","test ! -e /sick"]"#,
        )
        .set("/annotations/run.harun.health.interval", "200ms")
        .set("/annotations/run.harun.health.retries", "1");
    let id = h.id("runhealth");
    run_detached(
        &h,
        &id,
        &b,
        &["--restart", "on-failure", "--restart-delay", "10ms"],
    );
    wait_events(&h, &id, "healthy", |ev| {
        ev.iter()
            .any(|e| e["event"] == "health" && e["health"] == "healthy")
    });
    assert_eq!(
        inspect(&h, &id)["supervision"]["health"]["status"],
        "healthy"
    );
    h.exec(&["exec", &id, "touch", "/sick"]).ok();
    // Restarted although it exits 0 on the TERM and the policy is on-failure: a health
    // restart is not an exit to judge.
    let ev = wait_starts(&h, &id, 2);
    assert!(
        ev.iter()
            .any(|e| e["event"] == "health" && e["health"] == "unhealthy"),
        "{ev:#?}"
    );
    delete_and_check(&h, &id);
}
