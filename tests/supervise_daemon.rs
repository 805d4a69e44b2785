//! `harun supervise DIR` end to end: many services, replicas, health checks, a dependency,
//! random kills; the supervisor killed and started again; health restarts; reload; the
//! control socket; readiness through the notify socket.

mod supervise_util;

use std::collections::BTreeMap;
use std::thread::sleep;
use std::time::Duration;

use harun_integration::harun;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use supervise_util::*;

const FAST: [(&str, &str); 3] = [
    ("run.harun.restart", "always"),
    ("run.harun.restart.delay", "10ms"),
    ("run.harun.restart.max-delay", "200ms"),
];

fn with<'a>(base: &[(&'a str, &'a str)], more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(more).copied().collect()
}

const HEALTHY: [(&str, &str); 3] = [
    ("run.harun.health.cmd", r#"["sh","-c","test ! -e /sick"]"#),
    ("run.harun.health.interval", "200ms"),
    ("run.harun.health.retries", "2"),
];

/// Acceptance: 10 services, two of them with 3 replicas and a health check, one starting
/// after another: all come up in order; 50 `kill -9` of random containers each bring back
/// exactly that container (one new start per kill, never two); SIGTERM stops everything,
/// the dependent service before its dependency.
#[test]
fn ten_services_come_back_from_fifty_random_kills() {
    let h = harun!();
    let services = Services::new(&h);
    let (db, web, api) = (h.id("db"), h.id("web"), h.id("api"));
    let replicated = with(&with(&FAST, &HEALTHY), &[("run.harun.replicas", "3")]);
    services.add(&h, &db, SERVE, &FAST);
    services.add(&h, &web, SERVE, &replicated);
    services.add(
        &h,
        &api,
        SERVE,
        &with(&replicated, &[("run.harun.after", &db)]),
    );
    for i in 3..10 {
        services.add(&h, &h.id(&format!("s{i}")), SERVE, &FAST);
    }
    let supervisor = start(&h, &services);
    let st = wait_for(&h, "all services running", all_running);
    let ids: Vec<String> = containers(&st).keys().cloned().collect();
    assert_eq!(ids.len(), 14, "{ids:?}");
    assert_eq!(service(&st, &web)["ready"], 3);
    // api waited for db.
    let db_started = first_time(&events(&h, &db), "started");
    for i in 0..3 {
        let created = first_time(&events(&h, &format!("{api}-{i}")), "created");
        assert!(created >= db_started, "{api}-{i} created before db started");
    }
    let mut rng = Rng::from_time();
    let mut kills: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..50 {
        let id = &ids[rng.below(ids.len())];
        let st = status(&h);
        let pid = pid_of(&st, id);
        assert!(pid > 0, "round {round}: {id} has no pid:\n{st:#}");
        kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill -9");
        *kills.entry(id.clone()).or_default() += 1;
        wait_for(&h, &format!("{id} back after kill {round}"), |s| {
            let c = &containers(s)[id.as_str()];
            c["state"] == "running" && c["ready"] == true && c["pid"].as_i64() != Some(pid.into())
        });
    }
    let st = wait_for(&h, "all services running again", all_running);
    for id in &ids {
        let ev = events(&h, id);
        let killed = kills.get(id).copied().unwrap_or(0);
        assert_eq!(count(&ev, "started"), killed + 1, "{id}: {:?}", kinds(&ev));
        assert_eq!(count(&ev, "exited"), killed, "{id}: {:?}", kinds(&ev));
        // Never started twice: every start after the first follows an exit.
        let mut running = false;
        for kind in kinds(&ev) {
            match kind.as_str() {
                "started" => {
                    assert!(!running, "{id} started while running: {:?}", kinds(&ev));
                    running = true;
                }
                "exited" => running = false,
                _ => {}
            }
        }
        assert_eq!(containers(&st)[id.as_str()]["restarts"], killed, "{id}");
    }
    println!("kills per container: {kills:?}");
    let out = stop(supervisor);
    assert!(
        out.stderr
            .contains(&format!("{db}: stopped: the supervisor shut down")),
        "{out}"
    );
    // Stopped in reverse order: every api replica before db.
    let db_exit = last_time(&events(&h, &db), "exited");
    for i in 0..3 {
        let api_stop = last_time(&events(&h, &format!("{api}-{i}")), "stopped");
        assert!(api_stop <= db_exit, "{api}-{i} stopped after db exited");
    }
    for id in &ids {
        assert_eq!(h.state_of(id).status, "stopped", "{id}");
    }
    clean_up(&h, &ids);
}

/// Acceptance: the supervisor killed with -9 and started again restarts nothing that still
/// runs, reports every container right, and judges what died meanwhile by its policy; what
/// the user had stopped stays stopped unless the policy is `always`.
#[test]
fn a_new_supervisor_takes_over_what_a_killed_one_left() {
    let h = harun!();
    let services = Services::new(&h);
    let [db, web, job, once, keep, rest] =
        ["db", "web", "job", "once", "keep", "rest"].map(|n| h.id(n));
    let (web0, web1) = (format!("{web}-0"), format!("{web}-1"));
    services.add(&h, &db, SERVE, &FAST);
    services.add(
        &h,
        &web,
        SERVE,
        &with(&with(&FAST, &HEALTHY), &[("run.harun.replicas", "2")]),
    );
    services.add(&h, &job, SERVE, &[("run.harun.restart", "on-failure")]);
    services.add(&h, &once, SERVE, &[("run.harun.restart", "no")]);
    services.add(&h, &keep, SERVE, &[("run.harun.restart", "always")]);
    services.add(&h, &rest, SERVE, &[("run.harun.restart", "unless-stopped")]);
    let first = start(&h, &services);
    wait_for(&h, "all services running", all_running);
    for name in [&keep, &rest] {
        let out = h.exec(&["ctl", "stop", name]).ok();
        assert_eq!(out.stdout, format!("{name}: stopped\n"));
    }
    let before = status(&h);
    kill(Pid::from_raw(first.pid()), Signal::SIGKILL).unwrap();
    first.wait().exit(128 + 9);
    // Reported as dead while nobody watches.
    let v = h.exec(&["inspect", &db]).ok().json();
    assert_eq!(v["supervision"]["state"], "orphaned", "{v:#}");
    assert_eq!(v["supervision"]["supervisorPid"], Value::Null);
    assert_eq!(v["status"], "running");
    // Two containers die while no supervisor runs.
    for id in [&job, &once] {
        kill(Pid::from_raw(pid_of(&before, id)), Signal::SIGKILL).unwrap();
    }
    sleep(Duration::from_millis(200));
    let second = start(&h, &services);
    let st = wait_for(&h, "the take-over", |s| {
        let c = containers(s);
        c[&job]["state"] == "running" && c[&web0]["ready"] == true && c[&web1]["ready"] == true
    });
    let c = containers(&st);
    for id in [&db, &web0, &web1] {
        assert_eq!(
            c[id]["pid"],
            containers(&before)[id]["pid"],
            "{id} restarted"
        );
        let ev = events(&h, id);
        assert_eq!(count(&ev, "started"), 1, "{id}: {:?}", kinds(&ev));
        assert_eq!(count(&ev, "adopted"), 1, "{id}: {:?}", kinds(&ev));
        assert_eq!(c[id]["restarts"], 0, "{id}");
    }
    // Died meanwhile: a failure of unknown status, judged by its policy.
    assert_ne!(c[&job]["pid"], containers(&before)[&job]["pid"]);
    assert_eq!(c[&job]["restarts"], 1);
    assert_eq!(c[&job]["lastExit"]["code"], Value::Null);
    assert_eq!(c[&once]["state"], "stopped");
    assert_eq!(c[&once]["reason"], "restart policy is `no`");
    let once_events = events(&h, &once);
    assert!(once_events.iter().any(|e| e["event"] == "exited"
        && e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no supervisor watched"))));
    // Stopped by the user before: `always` starts again, `unless-stopped` does not.
    assert_eq!(c[&keep]["state"], "running");
    assert_eq!(c[&rest]["state"], "stopped");
    assert_eq!(service(&st, &db)["state"], "running");
    let table = h.exec(&["ctl", "status"]).ok().stdout;
    assert!(table.starts_with("SERVICE "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("{once} (stopped 0/1)"))),
        "{table}"
    );
    let ids: Vec<String> = c.keys().cloned().collect();
    stop(second);
    clean_up(&h, &ids);
}

/// Acceptance: a health check that starts failing gets its container restarted
/// (`on-failure` = restart, the default), and the restarted one is healthy again.
#[test]
fn an_unhealthy_container_is_restarted() {
    let h = harun!();
    let services = Services::new(&h);
    // /sick lives in the rootfs (shared by the runs): each run starts healthy.
    let script = format!("rm -f /sick; {SERVE}");
    let app = h.id("app");
    services.add(&h, &app, &script, &with(&FAST, &HEALTHY));
    let supervisor = start(&h, &services);
    let st = wait_for(&h, "app healthy", all_running);
    let pid = pid_of(&st, &app);
    h.exec(&["exec", &app, "touch", "/sick"]).ok();
    let st = wait_for(&h, "app restarted and healthy", |s| {
        let c = &containers(s)[&app];
        c["ready"] == true && c["pid"].as_i64() != Some(pid.into())
    });
    assert_eq!(containers(&st)[&app]["restarts"], 1);
    let ev = events(&h, &app);
    let seq: Vec<String> = ev
        .iter()
        .map(|e| match e["event"].as_str() {
            Some("health") => format!("health:{}", e["health"].as_str().unwrap_or("?")),
            other => other.unwrap_or("?").to_string(),
        })
        .collect();
    let want = [
        "created",
        "started",
        "health:healthy",
        "health:unhealthy",
        "exited",
        "restarting",
        "created",
        "started",
        "health:healthy",
    ];
    assert_eq!(seq, want, "{ev:#?}");
    // The exit was the TERM it asked for (the script exits 0 on TERM), restarted anyway.
    assert_eq!(ev[4]["code"], 0);
    let v = h.exec(&["inspect", &app]).ok().json();
    assert_eq!(v["supervision"]["health"]["status"], "healthy", "{v:#}");
    assert_eq!(v["supervision"]["service"], app.as_str());
    stop(supervisor);
    clean_up(&h, &[app]);
}

/// `harun ctl`: start and stop wait for their outcome, errors name what is wrong, the
/// replicas of a service are refused to `harun stop`, metrics say what they leave out.
#[test]
fn the_control_socket_starts_stops_and_reports() {
    let h = harun!();
    let services = Services::new(&h);
    let web = h.id("web");
    let (web0, web1) = (format!("{web}-0"), format!("{web}-1"));
    services.add(
        &h,
        &web,
        SERVE,
        &with(&FAST, &[("run.harun.replicas", "2")]),
    );
    let supervisor = start(&h, &services);
    wait_for(&h, "web running", all_running);
    assert_eq!(
        h.exec(&["ctl", "stop", &web]).ok().stdout,
        format!("{web}: stopped\n")
    );
    let st = status(&h);
    assert_eq!(service(&st, &web)["state"], "stopped");
    assert_eq!(h.state_of(&web0).status, "stopped");
    assert_eq!(
        h.exec(&["ctl", "start", &web]).ok().stdout,
        format!("{web}: running\n")
    );
    assert_eq!(
        h.exec(&["ctl", "restart", &web]).ok().stdout,
        format!("{web}: running\n")
    );
    let ev = events(&h, &web1);
    assert_eq!(count(&ev, "started"), 3, "{:?}", kinds(&ev));
    h.exec(&["ctl", "stop", "nope"])
        .error(&["no service `nope`", &web]);
    let hint = format!("harun ctl stop {web}");
    h.exec(&["stop", &web0])
        .error(&[&format!("replica of service `{web}`"), &hint]);
    h.exec(&["delete", "--force", &web1])
        .error(&[&format!("replica of service `{web}`")]);
    let mut other = h.bundle();
    other.sh(SERVE).set("/annotations/run.harun.replicas", "3");
    h.cmd(["ctl", "update", &web, "--bundle"])
        .arg(other.dir())
        .run()
        .error(&["asks for 3 replicas", "has 2"]);
    let metrics = h.exec(&["ctl", "metrics"]).ok().stdout;
    for want in [
        format!("harun_container_up{{service=\"{web}\",container=\"{web0}\"}} 1"),
        format!("harun_container_restarts_total{{service=\"{web}\",container=\"{web1}\"}} "),
        "# TYPE harun_container_cpu_seconds_total counter".to_string(),
        "harun_supervisor_resident_bytes ".to_string(),
    ] {
        assert!(metrics.contains(&want), "no {want:?} in\n{metrics}");
    }
    // This host's cgroup v2 has no memory controller: said, not faked.
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let want = format!("# omitted for {web0}, {web1}: the memory controller");
        assert!(metrics.contains(&want), "{metrics}");
    }
    // A second supervisor on the same root is refused.
    h.cmd(["supervise"])
        .arg(&services.dir)
        .run()
        .error(&["another `harun supervise`", "one per --root"]);
    // `ctl shutdown` returns once everything stopped and the root is free again.
    let out = h.exec(&["ctl", "shutdown"]).ok();
    assert_eq!(out.stdout, "stopped every service\n");
    assert_eq!(h.state_of(&web0).status, "stopped");
    assert!(!h.root().join(".supervise/.daemon").exists());
    supervisor.wait().ok();
    h.exec(&["ctl", "status"]).error(&["no supervisor answers"]);
    clean_up(&h, &[web0, web1]);
}

/// `harun ctl reload`: a new service starts, a removed one goes, a changed one rolls; a
/// directory with a bad service changes nothing.
#[test]
fn reload_applies_the_directory() {
    let h = harun!();
    let services = Services::new(&h);
    let [a, b, gone, new, bad] = ["a", "b", "gone", "new", "bad"].map(|n| h.id(n));
    services.add(&h, &a, SERVE, &FAST);
    let mut bundle_b = services.add(&h, &b, SERVE, &FAST);
    services.add(&h, &gone, SERVE, &FAST);
    let supervisor = start(&h, &services);
    wait_for(&h, "all running", all_running);
    let a_pid = pid_of(&status(&h), &a);
    services.add(&h, &new, SERVE, &FAST);
    services.remove(&gone);
    bundle_b.set("/annotations/run.harun.update.window", "300ms");
    services.add(&h, &bad, SERVE, &[("run.harun.replicas", "zero")]);
    h.exec(&["ctl", "reload"]).error(&[
        "nothing changed",
        &format!("service `{bad}`"),
        "invalid replica count `zero`",
    ]);
    services.remove(&bad);
    let out = h.exec(&["ctl", "reload"]).ok();
    assert_eq!(
        out.stdout,
        format!("reloaded: removed {gone}; added {new}; updating {b}\n"),
        "{out}"
    );
    let st = status(&h);
    let c = containers(&st);
    assert!(!c.contains_key(&gone), "{st:#}");
    assert_eq!(c[&new]["state"], "running");
    assert_eq!(c[&a]["pid"], a_pid, "an unchanged service is left alone");
    assert_eq!(service(&st, &b)["lastUpdate"], "updated");
    assert_eq!(h.exec(&["inspect", &gone]).code, 1, "removed entirely");
    assert_eq!(
        h.exec(&["ctl", "reload"]).ok().stdout,
        "reloaded: nothing changed\n"
    );
    stop(supervisor);
    clean_up(&h, &[a, b, new]);
}

/// `run.harun.notify`: the container gets `$NOTIFY_SOCKET`, and is ready (its dependents
/// start) only once `READY=1` arrives there.
#[test]
fn a_notify_service_is_ready_when_it_says_so() {
    let h = harun!();
    let services = Services::new(&h);
    let (db, app) = (h.id("db"), h.id("app"));
    services.add(&h, &db, SERVE, &[("run.harun.notify", "true")]);
    services.add(&h, &app, SERVE, &[("run.harun.after", &db)]);
    let supervisor = start(&h, &services);
    sleep(Duration::from_millis(500));
    let st = status(&h);
    let c = containers(&st);
    assert_eq!(c[&db]["state"], "running");
    assert_eq!(c[&db]["ready"], false);
    assert_eq!(c[&app]["state"], "waiting", "{st:#}");
    let seen = h
        .exec(&[
            "exec",
            &db,
            "sh",
            "-c",
            "echo $NOTIFY_SOCKET; ls /run/notify",
        ])
        .ok();
    assert_eq!(seen.stdout, "/run/notify/notify.sock\nnotify.sock\n");
    notify(h.root(), &db, "STATUS=warming up");
    notify(h.root(), &db, "READY=1\nSTATUS=serving");
    let st = wait_for(&h, "app started", all_running);
    assert_eq!(containers(&st)[&db]["notifyStatus"], "serving");
    let app_created = first_time(&events(&h, &app), "created");
    assert!(app_created >= first_time(&events(&h, &db), "ready"));
    stop(supervisor);
    clean_up(&h, &[db, app]);
}

/// As PID 1 (of a pid namespace here, as of a minimal system): orphans handed to it are
/// reaped, and SIGTERM stops every service, the dependent first, then it exits 0.
#[test]
fn as_pid_1_it_reaps_orphans_and_stops_everything_on_sigterm() {
    let h = harun!();
    let services = Services::new(&h);
    let (db, app) = (h.id("db"), h.id("app"));
    services.add(&h, &db, SERVE, &FAST);
    // No pid namespace of its own: its background sleeps are orphaned to PID 1.
    services
        .add(
            &h,
            &app,
            "sleep 0.1 & sleep 0.1 & exit 1",
            &with(&FAST, &[("run.harun.after", &db)]),
        )
        .without_namespace("pid");
    let init = h
        .cmd(["supervise"])
        .arg(&services.dir)
        .wrap(["unshare", "--pid", "--fork", "--mount-proc"])
        .timeout(Duration::from_secs(300))
        .spawn();
    wait_socket(&h);
    let st = wait_for(&h, "app restarting", |s| {
        containers(s)
            .get(&app)
            .is_some_and(|c| c["restarts"].as_u64() >= Some(5))
    });
    assert_eq!(st["pid"], 1, "not PID 1 of its namespace: {st:#}");
    // The supervisor, seen from here: unshare's child.
    let supervisor =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", init.pid(), init.pid()))
            .expect("unshare's children")
            .split_whitespace()
            .next()
            .expect("a child")
            .parse::<i32>()
            .unwrap();
    // Orphans keep coming; none stays a zombie under it.
    let zombies = || -> Vec<i32> {
        std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .filter(|&p| harun_integration::procs::stat(p).is_some_and(|(s, _)| s == 'Z'))
            .collect()
    };
    let before = zombies();
    sleep(Duration::from_millis(500));
    let lasting: Vec<i32> = zombies()
        .into_iter()
        .filter(|p| before.contains(p))
        .collect();
    assert!(lasting.is_empty(), "zombies under PID 1: {lasting:?}");
    kill(Pid::from_raw(supervisor), Signal::SIGTERM).unwrap();
    let out = init.wait().ok();
    assert!(
        out.stderr
            .contains(&format!("{db}: stopped: the supervisor shut down")),
        "{out}"
    );
    clean_up(&h, &[db, app]);
}

/// A short soak (the long one is `integration/bench/supervise --soak 10m`): a container
/// restarting every 50 ms for 10 s leaves the supervisor's fd count and memory flat.
#[test]
fn a_flapping_container_leaks_nothing() {
    let h = harun!();
    let services = Services::new(&h);
    let flap = h.id("flap");
    services.add(
        &h,
        &flap,
        "exit 1",
        &[
            ("run.harun.restart", "always"),
            ("run.harun.restart.delay", "50ms"),
            ("run.harun.restart.max-delay", "50ms"),
        ],
    );
    let supervisor = start(&h, &services);
    let sample = || {
        let text = h.exec(&["ctl", "metrics"]).ok().stdout;
        let value = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        };
        let restarts: u64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("harun_container_restarts_total")
                    .map(|r| r.rsplit(' ').next().unwrap_or("0").parse().unwrap_or(0))
            })
            .unwrap_or(0);
        (
            restarts,
            value("harun_supervisor_open_fds "),
            value("harun_supervisor_resident_bytes "),
        )
    };
    sleep(Duration::from_secs(3)); // past the first allocations
    let first = sample();
    sleep(Duration::from_secs(10));
    let last = sample();
    println!("restarts, fds, RSS: {first:?} -> {last:?}");
    assert!(
        last.0 >= first.0 + 40,
        "too few restarts: {first:?} -> {last:?}"
    );
    assert_eq!(last.1, first.1, "fd count changed");
    assert!(
        last.2 <= first.2 + 256 * 1024,
        "RSS grew by {} KiB",
        (last.2 - first.2) / 1024
    );
    stop(supervisor);
    clean_up(&h, &[flap]);
}
