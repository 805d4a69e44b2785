//! cgroup v2 resources on a kernel with every controller: run in the VM with
//! `integration/vm/cargo-test cgroups_vm`. Each test is named `vm_*` and first checks that
//! the controllers it needs exist (see tests/cgroups_support/mod.rs for the scheme).

mod cgroups_support;

use std::fs;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::Duration;

use cgroups_support::{assert_gone, cgroup_dir, keyed, read, require, wait_for};
use harun_integration::{harun, Bundle, Harun};
use serde_json::json;

fn running(h: &Harun, name: &str, b: &Bundle) -> (String, harun_integration::Out) {
    let id = h.id(name);
    let out = h.create(&id, b).ok();
    h.start(&id).ok();
    (id, out)
}

/// A block device for io.max and per-device io.weight (the loop driver's).
fn block_device() -> String {
    let dev = PathBuf::from("/sys/block/loop0/dev");
    if !dev.exists() {
        let _ = std::process::Command::new("modprobe").arg("loop").status();
    }
    fs::read_to_string(&dev)
        .unwrap_or_else(|e| panic!("no block device for io tests ({}: {e})", dev.display()))
        .trim()
        .to_string()
}

/// True when the io cost model is on for `dev` (per-device io.weight needs it). Inside the
/// throw-away test VM (hostname harun-vm) it is switched on; a real host is left alone.
fn io_cost_enabled(dev: &str) -> bool {
    let qos = cgroups_support::mount().join("io.cost.qos");
    let on = || {
        fs::read_to_string(&qos)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(&format!("{dev} enable=1")))
    };
    if !on()
        && fs::read_to_string("/proc/sys/kernel/hostname").is_ok_and(|h| h.trim() == "harun-vm")
    {
        let _ = fs::write(&qos, format!("{dev} enable=1"));
    }
    on()
}

#[test]
fn vm_every_resource_lands_in_its_file_and_update_changes_it() {
    if !require(&["cpu", "cpuset", "memory", "pids", "io", "hugetlb"]) {
        return;
    }
    let h = harun!();
    let dev = block_device();
    let (major, minor) = dev.split_once(':').unwrap();
    let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
    let d = |rate: u64| json!([{"major": major, "minor": minor, "rate": rate}]);
    let weight_device = json!([{"major": major, "minor": minor, "weight": 1000}]);
    let per_device = io_cost_enabled(&dev);
    let mut b = h.bundle();
    b.args(&["sleep", "600"]).set(
        "/linux/resources",
        json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 100 << 20, "reservation": 10 << 20, "swap": 150 << 20},
            "cpu": {"shares": 512, "quota": 30000, "period": 60000, "burst": 1000,
                    "idle": 0, "cpus": "0", "mems": "0"},
            "pids": {"limit": 42},
            "blockIO": {"weight": 500,
                "weightDevice": if per_device { weight_device.clone() } else { json!([]) },
                "throttleReadBpsDevice": d(1 << 20), "throttleWriteBpsDevice": d(2 << 20),
                "throttleReadIOPSDevice": d(300), "throttleWriteIOPSDevice": d(400)},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
            "unified": {"memory.high": "94371840", "memory.oom.group": "1"}
        }),
    );
    let (id, _) = running(&h, "resources", &b);
    let expect: &[(&str, String)] = &[
        ("memory.max", (100u64 << 20).to_string()),
        ("memory.low", (10u64 << 20).to_string()),
        ("memory.swap.max", (50u64 << 20).to_string()), // swap - limit
        ("memory.high", "94371840".into()),
        ("memory.oom.group", "1".into()),
        ("cpu.weight", "59".into()), // shares 512, runc/crun's conversion
        ("cpu.max", "30000 60000".into()),
        ("cpu.max.burst", "1000".into()),
        ("cpu.idle", "0".into()),
        ("cpuset.cpus", "0".into()),
        ("cpuset.mems", "0".into()),
        ("pids.max", "42".into()),
        ("hugetlb.2MB.max", (4u64 << 20).to_string()),
    ];
    for (file, want) in expect {
        assert_eq!(&read(&id, file), want, "{file}");
    }
    // blkio weight 500 -> io.weight 4950; the device's 1000 -> 10000.
    let weight = read(&id, "io.weight");
    assert!(weight.contains("default 4950"), "io.weight: {weight}");
    if per_device {
        assert!(
            weight.contains(&format!("{dev} 10000")),
            "io.weight: {weight}"
        );
    } else {
        // Without the io cost model for the device the kernel refuses: a clear error.
        let mut b2 = h.bundle();
        b2.set(
            "/linux/resources/blockIO",
            json!({"weightDevice": weight_device}),
        );
        h.create(&h.id("weightdev"), &b2)
            .error(&["blockIO.weightDevice[0]", "io.cost.qos"]);
    }
    let io_max = read(&id, "io.max");
    assert_eq!(
        io_max,
        format!("{dev} rbps=1048576 wbps=2097152 riops=300 wiops=400"),
        "io.max"
    );

    // update: runc's flags, then a resources file (what containerd passes).
    h.exec(&[
        "update",
        "--memory",
        "200m",
        "--memory-swap",
        "300m",
        "--cpu-quota",
        "45000",
        "--cpu-period",
        "90000",
        "--cpu-shares",
        "2048",
        "--pids-limit",
        "64",
        "--blkio-weight",
        "1000",
        "--cpuset-cpus",
        "0-1",
        &id,
    ])
    .ok();
    let expect: &[(&str, String)] = &[
        ("memory.max", (200u64 << 20).to_string()),
        ("memory.swap.max", (100u64 << 20).to_string()),
        ("memory.low", (10u64 << 20).to_string()), // kept
        ("cpu.max", "45000 90000".into()),
        ("cpu.weight", "174".into()),
        ("pids.max", "64".into()),
        ("cpuset.cpus", "0-1".into()),
    ];
    for (file, want) in expect {
        assert_eq!(&read(&id, file), want, "after update: {file}");
    }
    assert!(read(&id, "io.weight").contains("default 10000"));
    let file = h.path("resources.json");
    fs::write(
        &file,
        json!({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": 0},
               "unified": {"memory.high": "max"}})
        .to_string(),
    )
    .unwrap();
    h.cmd(["update", "--resources"])
        .arg(&file)
        .arg(&id)
        .run()
        .ok();
    for (f, want) in [
        ("memory.max", "max"),
        ("memory.swap.max", "max"),
        ("pids.max", "max"),
        ("memory.high", "max"),
    ] {
        assert_eq!(read(&id, f), want, "after update -r: {f}");
    }
    // A bad value changes nothing and names the field.
    h.exec(&["update", "--cpu-period", "10", &id])
        .error(&["linux.resources.cpu.period"]);
    assert_eq!(read(&id, "cpu.max"), "45000 90000");
    // The state keeps what update set: a second update builds on it.
    h.exec(&["update", "--memory", "300m", &id]).ok();
    assert_eq!(read(&id, "memory.max"), (300u64 << 20).to_string());
    assert_eq!(read(&id, "pids.max"), "max");
    h.delete_force(&id).ok();
    assert_gone(&cgroup_dir(&id));
    h.assert_clean();
}

#[test]
fn vm_memory_limit_is_enforced_and_events_report_the_oom() {
    if !require(&["memory"]) {
        return;
    }
    let h = harun!();
    let mut b = h.bundle();
    // dd's 64 MiB buffer does not fit in 32 MiB without swap.
    b.sh("while [ ! -e /dev/shm/go ]; do sleep 0.1; done; \
          dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?; exec sleep 600")
        .set(
            "/linux/resources/memory",
            json!({"limit": 32 << 20, "swap": 32 << 20}),
        );
    let (id, out) = running(&h, "oom", &b);
    let events = h
        .cmd(["events", "--interval", "1s", &id])
        .timeout(Duration::from_secs(600))
        .spawn();
    // Give `events` time to start (slow under TCG), then let the container allocate.
    sleep(Duration::from_secs(5));
    let init = h.state_of(&id).pid;
    fs::write(format!("/proc/{init}/root/dev/shm/go"), "").unwrap();
    let printed = wait_for(180, "dd to be OOM-killed", || {
        let s = out.stdout_now();
        s.contains("dd=").then_some(s)
    });
    assert!(
        printed.contains("dd=137"),
        "dd was not killed by SIGKILL: {printed}"
    );
    let mem_events = cgroup_dir(&id).join("memory.events");
    assert!(
        keyed(&mem_events, "oom_kill").unwrap_or(0) >= 1,
        "{:?}",
        fs::read_to_string(&mem_events)
    );
    // events exits once the container's cgroup is empty.
    sleep(Duration::from_secs(3));
    h.delete_force(&id).ok();
    let lines = events.wait().ok().stdout;
    let parsed: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        parsed
            .iter()
            .any(|e| e["type"] == "oom" && e["id"] == id.as_str()),
        "no oom event in:\n{lines}"
    );
    let stats = parsed
        .iter()
        .find(|e| e["type"] == "stats")
        .expect("a stats event");
    assert_eq!(stats["data"]["memory"]["usage"]["limit"], 32u64 << 20);
    assert_gone(&cgroup_dir(&id));
    h.assert_clean();
}

/// A limit too low for the container to start: one clear error naming the cause, not the
/// init's raw wait status or a broken pipe; nothing left behind.
#[test]
fn vm_a_memory_limit_too_low_to_start_says_so() {
    if !require(&["memory"]) {
        return;
    }
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"])
        .set("/linux/resources/memory", json!({"limit": 32 << 10}));
    let out = h.run(&h.id("starved"), &b);
    assert_ne!(out.code, 0, "ran in 32 KiB?\n{out}");
    let err = out.stderr.trim();
    assert!(
        err.contains("OOM killer") && err.contains("linux.resources.memory.limit"),
        "{out}"
    );
    assert_eq!(err.lines().count(), 1, "{out}");
    h.assert_clean();
}

#[test]
fn vm_pids_limit_stops_a_fork_bomb() {
    if !require(&["pids"]) {
        return;
    }
    let h = harun!();
    let mut b = h.bundle();
    // The loop runs in a subshell: ash gives up (exits) when a fork fails.
    b.sh(
        "(i=0; while [ $i -lt 60 ]; do sleep 600 & i=$((i+1)); done) 2>/dev/null; \
          echo forked; exec sleep 600",
    )
    .set("/linux/resources/pids", json!({"limit": 16}));
    let (id, out) = running(&h, "forkbomb", &b);
    wait_for(180, "the loop to end", || {
        out.stdout_now().contains("forked").then_some(())
    });
    let dir = cgroup_dir(&id);
    assert!(
        keyed(&dir.join("pids.events"), "max").unwrap_or(0) > 0,
        "no fork was refused"
    );
    // The init and the sleeps that fit (the subshell is gone): never more than 16.
    let current: u64 = read(&id, "pids.current").parse().unwrap();
    assert!((14..=16).contains(&current), "pids.current {current}");
    let listed = h.exec(&["ps", "--format", "json", &id]).ok().json();
    assert_eq!(listed.as_array().unwrap().len() as u64, current);
    let stats = h.exec(&["events", "--stats", &id]).ok().json();
    assert_eq!(
        stats["data"]["pids"],
        json!({"current": current, "limit": 16})
    );
    h.delete_force(&id).ok();
    assert_gone(&dir);
    h.assert_clean();
}

#[test]
fn vm_cpu_max_throttles() {
    if !require(&["cpu"]) {
        return;
    }
    let h = harun!();
    let mut b = h.bundle();
    b.sh("while :; do :; done").set(
        "/linux/resources/cpu",
        json!({"quota": 10000, "period": 100000}),
    );
    let (id, _) = running(&h, "throttle", &b);
    let stat = cgroup_dir(&id).join("cpu.stat");
    wait_for(120, "throttled periods", || {
        (keyed(&stat, "nr_throttled")? >= 3).then_some(())
    });
    let stats = h.exec(&["events", "--stats", &id]).ok().json();
    let t = &stats["data"]["cpu"]["throttling"];
    assert!(t["throttledPeriods"].as_u64().unwrap() >= 3, "{t}");
    assert!(
        t["periods"].as_u64().unwrap() >= t["throttledPeriods"].as_u64().unwrap(),
        "{t}"
    );
    assert!(t["throttledTime"].as_u64().unwrap() > 0, "{t}");
    h.delete_force(&id).ok();
    assert_gone(&cgroup_dir(&id));
    h.assert_clean();
}

#[test]
fn vm_events_stats_numbers_are_sane() {
    if !require(&["memory", "pids", "cpu"]) {
        return;
    }
    let h = harun!();
    let mut b = h.bundle();
    b.sh("sleep 600 & exec sleep 601")
        .set("/linux/resources/memory", json!({"limit": 256 << 20}))
        .set("/linux/resources/pids", json!({"limit": 100}));
    let (id, _) = running(&h, "sane", &b);
    let s = wait_for(60, "two processes", || {
        let v = h.exec(&["events", "--stats", &id]).ok().json();
        (v["data"]["pids"]["current"] == 2).then_some(v)
    });
    let d = &s["data"];
    assert_eq!(d["pids"]["limit"], 100);
    let usage = d["memory"]["usage"]["usage"].as_u64().unwrap();
    assert!(usage > 0 && usage < 256 << 20, "{d}");
    assert_eq!(d["memory"]["usage"]["limit"], 256u64 << 20);
    assert!(d["memory"]["raw"]["anon"].is_u64(), "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    h.delete_force(&id).ok();
    assert_gone(&cgroup_dir(&id));
    h.assert_clean();
}
