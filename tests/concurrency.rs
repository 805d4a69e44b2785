//! Two commands on one ID at once never corrupt its state: one create wins, the other says
//! "already exists"; concurrent state/kill/delete --force see valid state or a clean
//! "does not exist".

use std::thread;

use harun_integration::{harun, Harun, Out, State};

/// A `state` answer is valid state JSON (exit 0) or a clean "does not exist" (exit 1).
fn check_state_answer(out: &Out, id: &str) {
    match out.code {
        0 => {
            let s =
                State::parse(&out.stdout).unwrap_or_else(|e| panic!("corrupt state: {e}\n{out}"));
            assert_eq!(s.id, id, "{out}");
            assert!(
                ["creating", "created", "running", "stopped"].contains(&s.status.as_str()),
                "{out}"
            );
        }
        _ => {
            out.clone().error(&[id, "does not exist"]);
        }
    }
}

#[test]
fn concurrent_create_of_one_id() {
    let h = harun!();
    let mut a = h.bundle();
    let mut b = h.bundle();
    a.args(&["sleep", "600"]);
    b.args(&["sleep", "600"]);
    for round in 0..4 {
        let id = h.id(&format!("race{round}"));
        h.remember_id(&id);
        let (pa, pb) = (h.path("a.pid"), h.path("b.pid"));
        let create = |bundle: &std::path::Path, pid: &std::path::Path| {
            h.cmd(["create", "--bundle"])
                .arg(bundle)
                .arg("--pid-file")
                .arg(pid)
                .arg(&id)
                .spawn()
        };
        let (ra, rb) = (create(a.dir(), &pa), create(b.dir(), &pb));
        let outs = thread::scope(|s| {
            let watch = s.spawn(|| {
                for _ in 0..10 {
                    check_state_answer(&h.state(&id), &id);
                }
            });
            let outs = [ra.wait(), rb.wait()];
            watch.join().expect("state watcher");
            outs
        });
        let winners: Vec<usize> = (0..2).filter(|&i| outs[i].code == 0).collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one create must win:\n{}\n{}",
            outs[0],
            outs[1]
        );
        let (win, lose) = (winners[0], 1 - winners[0]);
        outs[lose].clone().error(&[&id, "already exists"]);
        let st = h.state_of(&id);
        assert_eq!(st.status, "created");
        let (pid_file, bundle) = if win == 0 {
            (&pa, a.dir())
        } else {
            (&pb, b.dir())
        };
        let pid: i32 = std::fs::read_to_string(pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(st.pid, pid, "state pid vs the winner's pid file");
        assert_eq!(
            std::path::Path::new(&st.bundle),
            bundle,
            "state names the loser's bundle"
        );
        h.delete_force(&id).ok();
    }
    h.assert_clean();
}

fn start_sleeper(h: &Harun, name: &str) -> String {
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id(name);
    h.create(&id, &b).ok();
    h.start(&id).ok();
    id
}

#[test]
fn concurrent_state_kill_and_delete_force() {
    let h = harun!();
    for round in 0..3 {
        let id = start_sleeper(&h, &format!("churn{round}"));
        thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..30 {
                    check_state_answer(&h.state(&id), &id);
                }
            });
            s.spawn(|| {
                for _ in 0..10 {
                    let out = h.kill(&id, "KILL");
                    if out.code != 0 {
                        out.error(&[&id]);
                    }
                }
            });
            s.spawn(|| {
                for _ in 0..5 {
                    h.delete_force(&id).ok();
                }
            });
        });
        h.delete_force(&id).ok();
        h.state(&id).error(&["does not exist"]);
    }
    h.assert_clean();
}

/// Two `start`s of one created container: one starts it, the other fails; it runs once.
#[test]
fn concurrent_start_runs_the_process_once() {
    let h = harun!();
    let mut b = h.bundle();
    let marks = h.path("marks");
    std::fs::create_dir(&marks).unwrap();
    let m = marks.to_string_lossy().into_owned();
    b.mount("/marks", "bind", &m, &["bind", "rw"])
        .sh("echo ran >> /marks/log; sleep 600");
    for round in 0..3 {
        let id = h.id(&format!("start{round}"));
        h.create(&id, &b).ok();
        let (r1, r2) = (
            h.cmd(["start", id.as_str()]).spawn(),
            h.cmd(["start", id.as_str()]).spawn(),
        );
        let outs = [r1.wait(), r2.wait()];
        let ok = outs.iter().filter(|o| o.code == 0).count();
        assert_eq!(
            ok, 1,
            "exactly one start must succeed:\n{}\n{}",
            outs[0], outs[1]
        );
        let failed = outs.iter().find(|o| o.code != 0).unwrap().clone();
        failed.error(&[&id]);
        assert_eq!(h.wait_status(&id, "running").status, "running");
        wait_lines(&marks.join("log"), round + 1);
        h.delete_force(&id).ok();
    }
    let log = std::fs::read_to_string(marks.join("log")).unwrap_or_default();
    assert_eq!(
        log, "ran\nran\nran\n",
        "each container's process must run exactly once"
    );
    h.assert_clean();
}

fn wait_lines(path: &std::path::Path, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
        < n
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the process did not run"
        );
        thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn concurrent_delete_force_of_many_containers() {
    let h = harun!();
    let ids: Vec<String> = (0..4)
        .map(|i| start_sleeper(&h, &format!("many{i}")))
        .collect();
    thread::scope(|s| {
        for id in &ids {
            s.spawn(|| h.delete_force(id).ok());
            s.spawn(|| h.delete_force(id).ok());
        }
    });
    assert_eq!(h.exec(&["list", "-q"]).ok().stdout.trim(), "");
    h.assert_clean();
}
