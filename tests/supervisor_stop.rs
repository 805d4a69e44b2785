//! Intentional stops never restart: `harun stop`, `harun kill`, `harun delete --force`,
//! SIGTERM / Ctrl-C to a foreground supervisor. And what is not a stop: a signal the
//! container handles.

mod supervisor_util;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harun_integration::harun;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use supervisor_util::*;

/// A container that exits 7 on SIGTERM (sh as pid 1 only reacts to trapped signals).
const TRAPS_TERM: &str = "trap 'echo got-term; exit 7' TERM; echo up; sleep 600 & wait";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn stop_of_an_always_container_stops_it_for_good_and_reports_the_exit_code() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh(TRAPS_TERM);
    let id = h.id("stopalways");
    run_detached(&h, &id, &b, &["--restart", "always"]);
    h.wait_status(&id, "running");
    wait_starts(&h, &id, 1);
    let supervisor = supervisor_pid(&h, &id);
    let out = h.exec(&["stop", &id]).ok();
    assert_eq!(
        out.stdout,
        format!("{id}: stopped (last run exited with code 7)\n")
    );
    wait_gone(supervisor);
    let ev = events(&h, &id);
    let n = ev.len();
    assert_eq!(kinds(&ev[n - 2..]), ["exited", "stopped"], "{ev:#?}");
    assert_eq!(ev[n - 2]["code"], 7);
    assert_eq!(ev[n - 1]["reason"], "stopped by the user");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(events(&h, &id).len(), n, "nothing after the stop");
    assert_eq!(h.state_of(&id).status, "stopped");
    let v = inspect(&h, &id);
    assert_eq!(v["supervision"]["state"], "stopped");
    assert_eq!(v["supervision"]["lastExit"]["code"], 7);
    assert_eq!(v["supervision"]["restartCount"], 0);
    // Logs and events stay readable until the container is deleted.
    assert_eq!(h.exec(&["logs", &id]).ok().stdout, "up\ngot-term\n");
    h.delete(&id).ok();
    h.exec(&["inspect", &id]).error(&["does not exist"]);
    h.assert_clean();
}

/// SIGKILL after the timeout for a container that ignores SIGTERM (`sleep` as pid 1):
/// `--timeout` of stop, else the run's `--stop-timeout`.
#[test]
fn stop_kills_after_the_timeout() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    for (run_flags, stop_flags, want_ms) in [
        (vec!["--stop-timeout", "700ms"], vec![], 700),
        (vec!["--stop-timeout", "1m"], vec!["--timeout", "1"], 1000),
    ] {
        let id = h.id(&format!("stoptimeout{want_ms}"));
        let flags: Vec<&str> = ["--restart", "always"]
            .into_iter()
            .chain(run_flags)
            .collect();
        run_detached(&h, &id, &b, &flags);
        h.wait_status(&id, "running");
        let asked = now_ms();
        let out = h.cmd(["stop"]).args(stop_flags).arg(&id).run().ok();
        assert!(out.stdout.contains("killed by signal 9"), "{out}");
        let ev = events(&h, &id);
        let exited = of_kind(&ev, "exited")[0]["timeMs"].as_i64().unwrap();
        let waited = exited - asked;
        assert!(
            (want_ms - 50..want_ms + 5_000).contains(&waited),
            "killed {waited} ms after the stop request, want about {want_ms}"
        );
        delete_and_check(&h, &id);
    }
}

#[test]
fn stop_during_the_restart_delay_cancels_the_restart() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("exit 1");
    let id = h.id("stopdelay");
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
    let v = inspect(&h, &id);
    assert_eq!(v["supervision"]["state"], "restarting");
    assert!(v["supervision"]["nextRestart"].is_string(), "{v:#}");
    let t0 = Instant::now();
    let out = h.exec(&["stop", &id]).ok();
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(
        out.stdout,
        format!("{id}: was not running (last run exited with code 1)\n")
    );
    let ev = wait_final(&h, &id);
    assert_eq!(of_kind(&ev, "started").len(), 1, "{ev:#?}");
    assert_eq!(ev.last().unwrap()["reason"], "stopped by the user");
    assert_eq!(
        inspect(&h, &id)["supervision"]["nextRestart"],
        serde_json::Value::Null
    );
    delete_and_check(&h, &id);
}

#[test]
fn harun_kill_is_an_intentional_stop() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("kill");
    run_detached(&h, &id, &b, &["--restart", "always"]);
    h.wait_status(&id, "running");
    h.kill(&id, "KILL").ok();
    let ev = wait_final(&h, &id);
    assert_eq!(kinds(&ev), ["created", "started", "exited", "stopped"]);
    assert_eq!(ev[2]["signal"], 9);
    assert_eq!(ev[3]["reason"], "stopped by the user");
    delete_and_check(&h, &id);
}

/// `harun kill ID USR1` to a container that handles USR1 is no stop: when it fails later,
/// it is restarted.
#[test]
fn a_handled_signal_does_not_make_a_later_failure_a_stop() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("trap 'echo usr1' USR1; sleep 600 & wait; exit 5");
    let id = h.id("usr1");
    run_detached(&h, &id, &b, &["--restart", "on-failure"]);
    h.wait_status(&id, "running");
    wait_starts(&h, &id, 1);
    h.kill(&id, "USR1").ok();
    let ev = wait_starts(&h, &id, 2);
    assert_eq!(of_kind(&ev, "exited")[0]["code"], 5, "{ev:#?}");
    assert_eq!(of_kind(&ev, "restarting").len(), 1, "{ev:#?}");
    assert_eq!(h.exec(&["logs", &id]).ok().stdout, "usr1\n");
    delete_and_check(&h, &id);
}

#[test]
fn delete_force_of_a_running_supervised_container_removes_everything() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("delforce");
    run_detached(&h, &id, &b, &["--restart", "always"]);
    let pid = h.wait_status(&id, "running").pid;
    h.track(pid);
    let supervisor = supervisor_pid(&h, &id);
    h.delete_force(&id).ok();
    wait_gone(supervisor);
    delete_and_check(&h, &id);
}

#[test]
fn delete_without_force_is_refused_while_supervised() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh(TRAPS_TERM);
    let id = h.id("delrefused");
    run_detached(&h, &id, &b, &["--restart", "unless-stopped"]);
    h.wait_status(&id, "running");
    h.delete(&id).error(&[
        &format!("cannot delete container `{id}`: it is supervised (running)"),
        "harun stop",
    ]);
    assert_eq!(h.state_of(&id).status, "running");
    h.exec(&["stop", &id]).ok();
    h.delete(&id).ok();
    h.assert_clean();
}

/// Ctrl-C or SIGTERM to a foreground `run --restart`: TERM to the container, no restart,
/// exit with the container's code, nothing left behind.
#[test]
fn sigterm_or_ctrl_c_to_a_foreground_supervisor_stops_gracefully() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh(TRAPS_TERM);
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let id = h.id(&format!("fg{}", signal.as_str()));
        h.remember_id(&id);
        let run = h
            .cmd(["run", "--restart", "always", "--bundle"])
            .arg(b.dir())
            .arg(&id)
            .spawn();
        h.wait_status(&id, "running");
        wait_starts(&h, &id, 1);
        kill(Pid::from_raw(run.pid()), signal).unwrap();
        let out = run.wait().exit(7);
        assert_eq!(out.stdout, "up\ngot-term\n", "{out}");
        assert!(
            out.stderr
                .contains(": stopped: stopped by the user (last run exited with code 7)"),
            "{out}"
        );
        assert!(!out.stderr.contains("restarting"), "{out}");
        h.exec(&["inspect", &id]).error(&["does not exist"]);
    }
    h.assert_clean();
}

#[test]
fn harun_stop_of_a_foreground_supervised_container() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh(TRAPS_TERM);
    let id = h.id("fgstop");
    h.remember_id(&id);
    let run = h
        .cmd(["run", "--restart", "on-failure", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .spawn();
    h.wait_status(&id, "running");
    wait_starts(&h, &id, 1);
    assert_eq!(inspect(&h, &id)["supervision"]["mode"], "foreground");
    let out = h.exec(&["stop", &id]).ok();
    assert_eq!(
        out.stdout,
        format!("{id}: stopped (last run exited with code 7)\n")
    );
    run.wait().exit(7);
    h.assert_clean();
}

#[test]
fn stop_of_an_unsupervised_container() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("plainstop");
    run_detached(&h, &id, &b, &[]);
    h.wait_status(&id, "running");
    let out = h.exec(&["stop", "--timeout", "300ms", &id]).ok();
    assert_eq!(out.stdout, format!("{id}: stopped\n"));
    assert_eq!(h.state_of(&id).status, "stopped");
    assert_eq!(
        h.exec(&["stop", &id]).ok().stdout,
        format!("{id}: was not running\n")
    );
    h.delete(&id).ok();
    h.assert_clean();
}

/// `stop` of a paused container thaws it after the TERM (a frozen process never sees it),
/// so it stops at once instead of waiting out the timeout; supervised or not.
#[test]
fn stop_of_a_paused_container_does_not_wait_out_the_timeout() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh(TRAPS_TERM);
    for flags in [vec!["--restart", "always"], vec![]] {
        let id = h.id(&format!("paused{}", flags.len()));
        run_detached(&h, &id, &b, &flags);
        h.wait_status(&id, "running");
        if !flags.is_empty() {
            wait_starts(&h, &id, 1);
        }
        h.exec(&["pause", &id]).ok();
        assert_eq!(h.state_of(&id).status, "paused");
        let t0 = Instant::now();
        let out = h.exec(&["stop", "--timeout", "30s", &id]).ok();
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(10), "stop took {took:?}: {out}");
        if !flags.is_empty() {
            assert!(out.stdout.contains("exited with code 7"), "{out}");
        }
        assert_eq!(h.state_of(&id).status, "stopped");
        delete_and_check(&h, &id);
    }
}
