//! The container's cgroup with what every cgroup2 hierarchy has (this hybrid host's too):
//! placement, cgroupsPath rules, removal, pause/resume, kill --all, ps, events --stats,
//! device control (a BPF program, also on a hybrid host), the "controller not available"
//! error. Runs on the host and, unchanged, in the cgroup-v2 VM.

mod cgroups_support;

use std::collections::BTreeSet;
use std::fs;
use std::thread::sleep;
use std::time::Duration;

use cgroups_support::{assert_gone, cgroup_dir, cgroup_of, has, mount, own_dir, wait_for};
use harun_integration::procs::ProcId;
use harun_integration::{harun, Harun};
use serde_json::json;

/// A created and started container running `script`; returns (id, init pid).
fn running(
    h: &Harun,
    name: &str,
    script: &str,
    edit: impl FnOnce(&mut harun_integration::Bundle),
) -> (String, i32) {
    let mut b = h.bundle();
    b.sh(script);
    edit(&mut b);
    let id = h.id(name);
    h.create(&id, &b).ok();
    h.start(&id).ok();
    let pid = h.state_of(&id).pid;
    (id, pid)
}

fn pids(h: &Harun, id: &str) -> Vec<i32> {
    let out = h.exec(&["ps", "--format", "json", id]).ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ps json: {e}\n{out}"))
}

#[test]
fn the_init_is_born_in_its_cgroup_and_delete_removes_it() {
    let h = harun!();
    let (id, pid) = running(&h, "place", "exec sleep 600", |_| {});
    assert_eq!(cgroup_of(pid), format!("/harun/{id}"));
    let dir = cgroup_dir(&id);
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), pid.to_string());
    h.delete_force(&id).ok();
    assert_gone(&dir);
    h.assert_clean();
}

#[test]
fn cgroups_path_absolute_relative_and_refused() {
    let h = harun!();
    let top = format!("harun-test-{}", h.tag());
    let (abs, pid) = running(&h, "abs", "exec sleep 600", |b| {
        b.set("/linux/cgroupsPath", format!("/{top}/pod/ctr"));
    });
    assert_eq!(cgroup_of(pid), format!("/{top}/pod/ctr"));
    let rel_name = format!("{top}-rel");
    let (rel, pid) = running(&h, "rel", "exec sleep 600", |b| {
        b.set("/linux/cgroupsPath", rel_name.clone());
    });
    assert!(own_dir().join(&rel_name).join("cgroup.procs").is_file());
    assert!(
        fs::read_to_string(own_dir().join(&rel_name).join("cgroup.procs"))
            .unwrap()
            .contains(&pid.to_string())
    );
    h.delete_force(&abs).ok();
    h.delete_force(&rel).ok();
    // The parents harun made for the absolute path go with it.
    assert_gone(&mount().join(&top));
    assert_gone(&own_dir().join(&rel_name));

    let mut b = h.bundle();
    b.set("/linux/cgroupsPath", "/a/../b");
    let id = h.id("dotdot");
    h.create(&id, &b).error(&["linux.cgroupsPath", "`..`"]);
    assert!(!h.root().join(&id).exists());
    h.assert_clean();
}

#[test]
fn a_limit_whose_controller_is_missing_is_a_clear_error() {
    let h = harun!();
    if has("memory") {
        eprintln!("skipped: {} has the memory controller", mount().display());
        return;
    }
    let mut b = h.bundle();
    b.set("/linux/resources/memory", json!({"limit": 64 << 20}));
    let id = h.id("nomem");
    h.create(&id, &b).error(&[
        "linux.resources.memory.limit",
        "cgroup controller `memory` is not available in",
        &mount().display().to_string(),
    ]);
    assert!(
        !h.root().join(&id).exists(),
        "state left by a failed create"
    );
    assert_gone(&cgroup_dir(&id));
    h.assert_clean();
}

#[test]
fn a_failed_create_leaves_no_cgroup() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["/no/such/program"]);
    let id = h.id("failed");
    let out = h.create(&id, &b);
    assert_eq!(out.code, 1, "{out}");
    assert_gone(&cgroup_dir(&id));
    h.assert_clean();
}

#[test]
fn pause_freezes_every_process_and_resume_lets_them_run() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("sleep 600 & i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done");
    let id = h.id("pause");
    let create = h.create(&id, &b).ok();
    h.start(&id).ok();
    wait_for(20, "output", || {
        (create.stdout_now().lines().count() > 2).then_some(())
    });
    h.exec(&["pause", &id]).ok();
    assert_eq!(h.state_of(&id).status, "paused");
    assert_eq!(cgroups_support::read(&id, "cgroup.freeze"), "1");
    assert_eq!(
        cgroups_support::keyed(&cgroup_dir(&id).join("cgroup.events"), "frozen"),
        Some(1)
    );
    // sh, sleep 600, and maybe the loop's current `sleep 0.05`.
    let all = pids(&h, &id);
    assert!(all.len() >= 2, "{all:?}");
    for pid in &all {
        // Frozen tasks sleep in the freezer trap of the signal code.
        let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        let state = harun_integration::procs::stat(*pid).map(|s| s.0);
        assert!(
            state == Some('S') && ["get_signal", "do_freezer_trap"].contains(&wchan.as_str()),
            "pid {pid}: state {state:?}, wchan {wchan:?}"
        );
    }
    let frozen_at = create.stdout_now().len();
    sleep(Duration::from_millis(400));
    assert_eq!(
        create.stdout_now().len(),
        frozen_at,
        "output went on while paused"
    );
    h.exec(&["pause", &id]).error(&[&id, "paused"]);

    h.exec(&["resume", &id]).ok();
    assert_eq!(h.state_of(&id).status, "running");
    wait_for(20, "output after resume", || {
        (create.stdout_now().len() > frozen_at).then_some(())
    });
    h.exec(&["resume", &id]).error(&[&id, "not paused"]);

    // A paused container can be killed and deleted.
    h.exec(&["pause", &id]).ok();
    h.delete_force(&id).ok();
    assert_gone(&cgroup_dir(&id));
    h.exec(&["pause", &id]).error(&[&id, "does not exist"]);
    h.assert_clean();
}

/// The container's two processes once the one started by `(sleep 600 &)` has left the
/// init's tree (its parent, the subshell, gone; seen earlier, the pair is init + subshell).
fn escaped(h: &Harun, id: &str, init: i32) -> Vec<i32> {
    wait_for(20, "the escaped sleep", || {
        let p = pids(h, id);
        let other = *p.iter().find(|q| **q != init)?;
        let stat = fs::read_to_string(format!("/proc/{other}/stat")).ok()?;
        let ppid: i32 = stat
            .rsplit(')')
            .next()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        (p.len() == 2 && ppid != init).then_some(p)
    })
}

#[test]
fn kill_all_reaches_processes_that_escaped_the_pid_tree() {
    let h = harun!();
    // No pid namespace: a double fork leaves the init's tree for good.
    let (id, init) = running(&h, "escape", "(sleep 600 &); exec sleep 600", |b| {
        b.without_namespace("pid");
    });
    let all = escaped(&h, &id, init);
    let ids: Vec<ProcId> = all.iter().filter_map(|p| ProcId::of(*p)).collect();
    for p in &all {
        h.track(*p);
    }
    // TERM through freeze + signal each + thaw, then KILL through cgroup.kill.
    h.exec(&["kill", "--all", &id, "TERM"]).ok();
    wait_for(20, "every process to die of TERM", || {
        ids.iter().all(|p| !p.is_alive()).then_some(())
    });
    h.delete(&id).ok();
    assert_gone(&cgroup_dir(&id));

    let (id, init) = running(&h, "escape2", "(sleep 600 &); exec sleep 600", |b| {
        b.without_namespace("pid");
    });
    let all = escaped(&h, &id, init);
    let ids: Vec<ProcId> = all.iter().filter_map(|p| ProcId::of(*p)).collect();
    for p in &all {
        h.track(*p);
    }
    assert!(all.contains(&init));
    h.exec(&["kill", "--all", &id, "KILL"]).ok();
    wait_for(20, "every process to die of KILL", || {
        ids.iter().all(|p| !p.is_alive()).then_some(())
    });
    h.delete(&id).ok();
    assert_gone(&cgroup_dir(&id));
    h.assert_clean();
}

#[test]
fn delete_of_a_stopped_container_kills_what_its_init_left() {
    let h = harun!();
    let (id, _) = running(&h, "orphans", "(sleep 600 &); sleep 0.2", |b| {
        b.without_namespace("pid");
    });
    h.wait_status(&id, "stopped");
    let left = pids(&h, &id);
    assert_eq!(left.len(), 1, "{left:?}");
    let orphan = ProcId::of(left[0]).unwrap();
    h.track(left[0]);
    h.delete(&id).ok();
    assert!(!orphan.is_alive(), "delete left the init's orphan alive");
    assert_gone(&cgroup_dir(&id));
    h.assert_clean();
}

#[test]
fn ps_lists_exactly_the_containers_processes() {
    let h = harun!();
    let (id, init) = running(&h, "ps", "sleep 600 & sleep 601 & exec sleep 602", |_| {});
    let tag = format!("{}={}", harun_integration::TAG_ENV, h.tag());
    let want: BTreeSet<i32> = wait_for(20, "three processes", || {
        let found: BTreeSet<i32> = harun_integration::procs::scan(&tag, "\u{0}never")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        (found.len() == 3).then_some(found)
    });
    let got: BTreeSet<i32> = pids(&h, &id).into_iter().collect();
    assert_eq!(got, want);
    assert!(got.contains(&init));

    let table = h.exec(&["ps", &id]).ok().stdout;
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .expect("PID column");
    let rows: BTreeSet<i32> = lines
        .map(|l| l.split_whitespace().nth(col).unwrap().parse().unwrap())
        .collect();
    assert_eq!(rows, want, "{table}");
    h.exec(&["ps", "--format", "json", &id, "-o", "pid"])
        .error(&["--format json"]);
    h.delete_force(&id).ok();
    // After delete: the container is gone.
    h.exec(&["ps", &id]).error(&[&id, "does not exist"]);
    h.assert_clean();
}

#[test]
fn events_stats_returns_runc_shaped_numbers() {
    let h = harun!();
    let (id, _) = running(
        &h,
        "stats",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 600",
        |_| {},
    );
    let stats = wait_for(60, "cpu time", || {
        let v = h.exec(&["events", "--stats", &id]).ok().json();
        (v["data"]["cpu"]["usage"]["total"].as_u64()? > 0).then_some(v)
    });
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["id"], id.as_str());
    let cpu = &stats["data"]["cpu"];
    let total = cpu["usage"]["total"].as_u64().unwrap();
    let (user, kernel) = (
        cpu["usage"]["user"].as_u64().unwrap(),
        cpu["usage"]["kernel"].as_u64().unwrap(),
    );
    assert!(user + kernel <= total + 2_000_000, "{cpu}");
    assert!(total < 600_000_000_000, "{cpu}");
    if has("memory") {
        let m = &stats["data"]["memory"];
        let usage = m["usage"]["usage"].as_u64().unwrap();
        assert!(usage > 0 && usage < 1 << 34, "{m}");
    }
    if has("pids") {
        assert_eq!(stats["data"]["pids"]["current"], 1, "{stats}");
    }
    h.delete_force(&id).ok();
    h.exec(&["events", "--stats", &id]).error(&[&id]);
    h.assert_clean();
}

#[test]
fn devices_denied_unless_a_rule_allows_them() {
    let h = harun!();
    // /dev/kmsg (1:11) opened write-only needs no capability: only the device cgroup
    // decides. It is not in the default allow list.
    let script = "true > /dev/harun-kmsg && echo open=ok; head -c 3 /dev/zero | wc -c";
    let node = json!([{"path": "/dev/harun-kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600}]);
    let mut b = h.bundle();
    b.set("/linux/devices", node.clone()).sh(script);
    let id = h.id("denied");
    let out = h.run(&id, &b).ok();
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    assert!(!out.stdout.contains("open=ok"), "{out}");
    assert_eq!(out.stdout.lines().last(), Some("3"), "{out}");

    let mut b = h.bundle();
    b.set("/linux/devices", node.clone())
        .push(
            "/linux/resources/devices",
            json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}),
        )
        .sh(script);
    let out = h.run(&h.id("allowed"), &b).ok();
    assert!(out.stdout.contains("open=ok"), "{out}");
    assert_gone(&cgroup_dir(&id));

    // Rules that differ from the access in one field only (the kernel's context, not just
    // the unit tests' model of it: runtime/src/cgroups/devices/bpf.rs): still denied.
    let near_misses = [
        json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rm"}),
        json!({"allow": true, "type": "b", "major": 1, "minor": 11, "access": "w"}),
        json!({"allow": true, "type": "c", "major": 2, "minor": 11, "access": "w"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 12, "access": "w"}),
    ];
    for (n, rule) in near_misses.into_iter().enumerate() {
        let mut b = h.bundle();
        b.set("/linux/devices", node.clone())
            .push("/linux/resources/devices", rule.clone())
            .sh(script);
        let out = h.run(&h.id(&format!("miss{n}")), &b).ok();
        assert!(!out.stdout.contains("open=ok"), "allowed by {rule}: {out}");
        assert_eq!(out.stdout.lines().last(), Some("3"), "{rule}: {out}");
    }
    h.assert_clean();
}

#[test]
fn update_of_a_missing_controller_is_refused_and_changes_nothing() {
    let h = harun!();
    if has("pids") {
        eprintln!("skipped: {} has the pids controller", mount().display());
        return;
    }
    let (id, _) = running(&h, "upd", "exec sleep 600", |_| {});
    h.exec(&["update", "--pids-limit", "10", &id])
        .error(&["linux.resources.pids.limit", "`pids` is not available"]);
    let st = h.state_of(&id);
    assert_eq!(st.status, "running");
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn delete_removes_cgroups_the_container_made_inside_its_own() {
    let h = harun!();
    let (id, _) = running(
        &h,
        "nested",
        "mkdir /sys/fs/cgroup/inner; \
         sh -c 'echo $$ > /sys/fs/cgroup/inner/cgroup.procs; exec sleep 600' & exec sleep 601",
        |b| {
            b.edit(|c| {
                for m in c["mounts"].as_array_mut().unwrap() {
                    if m["destination"] == "/sys/fs/cgroup" {
                        m["options"] = json!(["nosuid", "noexec", "nodev", "rw"]);
                    }
                }
            });
        },
    );
    let inner = cgroup_dir(&id).join("inner");
    let pid = wait_for(20, "a process in the inner cgroup", || {
        let procs = fs::read_to_string(inner.join("cgroup.procs")).ok()?;
        procs.trim().parse::<i32>().ok()
    });
    assert_eq!(cgroup_of(pid), format!("/harun/{id}/inner"));
    assert_eq!(
        pids(&h, &id).len(),
        2,
        "ps counts the inner cgroup's process too"
    );
    h.delete_force(&id).ok();
    assert_gone(&cgroup_dir(&id));
    h.assert_clean();
}
