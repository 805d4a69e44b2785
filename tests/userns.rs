//! User and time namespaces: container root is an unprivileged id on the host (seen from the
//! host in /proc/PID/status and in the owner of files it creates), exec joins both
//! namespaces, linux.timeOffsets moves CLOCK_MONOTONIC / CLOCK_BOOTTIME inside only, and bad
//! mappings or offsets are refused before anything exists.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use harun_integration::hostfs::{self, share_host_usr};
use harun_integration::procs::{parse_kv, ProcId};
use harun_integration::{harun, Bundle, Harun};
use nix::time::{clock_gettime, ClockId};
use serde_json::{json, Value};

/// Container ids 0..65535 are host ids 100000..165535.
const HOST_BASE: u32 = 100_000;

fn map() -> Value {
    json!([{"containerID": 0, "hostID": HOST_BASE, "size": 65536}])
}

fn with_userns(b: &mut Bundle) -> &mut Bundle {
    b.namespace("user")
        .set("/linux/uidMappings", map())
        .set("/linux/gidMappings", map())
}

fn status_ids(pid: i32, key: &str) -> Vec<u32> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn secs(clock: ClockId) -> f64 {
    let t = clock_gettime(clock).expect("clock_gettime");
    t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
}

/// A dir for a rw bind mount that the container's root (host uid 100000) and its user 1000
/// (host 101000) can write to.
fn shared_dir(h: &Harun) -> std::path::PathBuf {
    let dir = h.path("data");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(HOST_BASE), Some(HOST_BASE)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn container_root_is_the_mapped_id_on_the_host() {
    let h = harun!();
    let data = shared_dir(&h);
    let mut b = h.bundle();
    // The rootfs belongs to the host's root: the mapped root could not make the mount point.
    fs::create_dir(b.rootfs().join("data")).unwrap();
    with_userns(&mut b)
        .mount("/data", "bind", &data.to_string_lossy(), &["rbind", "rw"])
        .sh("touch /data/by-root; mkdir /data/dir-by-root; exec sleep 600");
    let id = h.id("userns");
    h.create(&id, &b).ok();
    h.start(&id).ok();
    let init = h.wait_status(&id, "running").pid;
    wait_for_file(&data.join("dir-by-root"));

    // From the host: the init runs as the mapped ids.
    assert_eq!(status_ids(init, "Uid"), [HOST_BASE; 4]);
    assert_eq!(status_ids(init, "Gid"), [HOST_BASE; 4]);
    // Files it creates in the bind mount belong to the mapped root on the host.
    for name in ["by-root", "dir-by-root"] {
        let md = fs::metadata(data.join(name)).unwrap();
        assert_eq!(
            (md.uid(), md.gid()),
            (HOST_BASE, HOST_BASE),
            "owner of {name}"
        );
    }

    // exec joins the user namespace: root inside, the same map, ...
    let out = h
        .exec(&[
            "exec",
            &id,
            "sh",
            "-c",
            "echo id=$(id -u):$(id -g); echo uid_map=$(cat /proc/self/uid_map); \
             echo owner=$(stat -c %u:%g /data/by-root); echo userns=$(readlink /proc/self/ns/user)",
        ])
        .ok();
    let kv = parse_kv(&out.stdout);
    assert_eq!(kv["id"], "0:0", "{out}");
    assert_eq!(kv["uid_map"], format!("0 {HOST_BASE} 65536"), "{out}");
    assert_eq!(kv["owner"], "0:0", "inside, the file is root's:\n{out}");
    let init_userns = fs::read_link(format!("/proc/{init}/ns/user")).unwrap();
    assert_eq!(kv["userns"], init_userns.to_string_lossy(), "{out}");
    // ... and a user of the container is its mapped id on the host.
    h.exec(&["exec", "--user", "1000:1000", &id, "touch", "/data/by-1000"])
        .ok();
    let md = fs::metadata(data.join("by-1000")).unwrap();
    assert_eq!((md.uid(), md.gid()), (HOST_BASE + 1000, HOST_BASE + 1000));
    let pid_file = h.path("exec.pid");
    h.cmd(["exec", "--detach", "--pid-file"])
        .arg(&pid_file)
        .args([id.as_str(), "sleep", "500"])
        .run()
        .ok();
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    h.track(pid);
    assert_eq!(
        status_ids(pid, "Uid"),
        [HOST_BASE; 4],
        "exec'd process on the host"
    );
    // It is our orphan (we are the subreaper): reap it, or the dying init waits for that.
    let p = ProcId::of(pid).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.is_alive() {
        assert!(
            Instant::now() < deadline,
            "exec'd process {pid} survived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    h.delete_force(&id).ok();
    h.assert_clean();
}

/// The bundle sits in a directory the mapped root (host uid 100000) cannot search: create
/// says so, naming the directory, before anything happens.
#[test]
fn rootfs_out_of_reach_of_the_mapped_root_is_a_clear_error() {
    let h = harun!();
    let private = h.path("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let mut b = h.bundle_at(&private.join("bundle"));
    with_userns(&mut b).args(&["true"]);
    let id = h.id("unreachable");
    h.create(&id, &b)
        .error(&["root.path", &private.to_string_lossy(), "100000"]);
    assert_no_trace(&h, &id);
    // The same bundle is fine once the directory is searchable.
    fs::set_permissions(&private, fs::Permissions::from_mode(0o711)).unwrap();
    h.run(&id, &b).ok();
    h.assert_clean();
}

/// Nothing of a refused create: no state, no cgroup named after it, no process, no mount.
fn assert_no_trace(h: &Harun, id: &str) {
    assert!(!h.root().join(id).exists(), "state dir of {id} left behind");
    for m in harun_integration::mountinfo::current() {
        if m.fstype == "cgroup2" {
            let found = find_named(Path::new(&m.mount_point), id, 4);
            assert!(found.is_none(), "cgroup {found:?} left behind");
        }
    }
    h.assert_clean();
}

fn find_named(dir: &Path, name: &str, depth: u32) -> Option<std::path::PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if e.file_name().to_string_lossy().contains(name) {
            return Some(e.path());
        }
        if depth > 0 {
            if let Some(p) = find_named(&e.path(), name, depth - 1) {
                return Some(p);
            }
        }
    }
    None
}

#[test]
fn bad_id_mappings_are_refused_before_anything_happens() {
    let h = harun!();
    let m = |c: u32, host: u32, size: u32| json!({"containerID": c, "hostID": host, "size": size});
    type Edit = Box<dyn Fn(&mut Bundle)>;
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "uid-no-userns",
            Box::new(|b: &mut Bundle| {
                b.set("/linux/uidMappings", map());
            }),
            vec!["linux.uidMappings", "user"],
        ),
        (
            "gid-no-userns",
            Box::new(|b: &mut Bundle| {
                b.set("/linux/gidMappings", map());
            }),
            vec!["linux.gidMappings", "user"],
        ),
        (
            "overlap-container",
            Box::new(move |b: &mut Bundle| {
                with_userns(b).set(
                    "/linux/uidMappings",
                    json!([m(0, 100_000, 1000), m(500, 300_000, 10)]),
                );
            }),
            vec!["linux.uidMappings[1]", "overlaps"],
        ),
        (
            "overlap-host",
            Box::new(move |b: &mut Bundle| {
                with_userns(b).set(
                    "/linux/gidMappings",
                    json!([m(0, 100_000, 1000), m(5000, 100_500, 10)]),
                );
            }),
            vec!["linux.gidMappings[1]", "overlaps"],
        ),
        (
            "size-zero",
            Box::new(move |b: &mut Bundle| {
                with_userns(b).set("/linux/uidMappings", json!([m(0, 100_000, 0)]));
            }),
            vec!["linux.uidMappings[0]", "size"],
        ),
        (
            "no-mapping",
            Box::new(|b: &mut Bundle| {
                b.namespace("user")
                    .remove("/linux/uidMappings")
                    .set("/linux/gidMappings", map());
            }),
            vec!["linux.uidMappings"],
        ),
    ];
    for (name, edit, keys) in cases {
        let mut b = h.bundle();
        b.args(&["true"]);
        edit(&mut b);
        let id = h.id(name);
        h.create(&id, &b).error(&keys);
        assert_no_trace(&h, &id);
    }
}

/// A bundle that can run host perl to read the clocks.
fn clock_bundle(h: &Harun, offsets: Value) -> Bundle {
    assert!(
        Path::new("/usr/bin/perl").exists(),
        "this test reads CLOCK_MONOTONIC with the host's perl (Time::HiRes): install perl"
    );
    let mut b = h.bundle();
    share_host_usr(&mut b);
    hostfs::set_env(&mut b, "PATH", "/bin:/usr/bin");
    b.namespace("time")
        .set("/linux/timeOffsets", offsets)
        .sh(CLOCKS);
    b
}

/// Prints mono=, boot= (clock_gettime in perl), uptime= (/proc/uptime) and the offsets.
const CLOCKS: &str = "perl -MTime::HiRes=clock_gettime,CLOCK_MONOTONIC,CLOCK_BOOTTIME \
     -e 'printf \"mono=%.6f\\nboot=%.6f\\n\", clock_gettime(CLOCK_MONOTONIC), clock_gettime(CLOCK_BOOTTIME)'; \
     echo uptime=$(cut -d' ' -f1 /proc/uptime); \
     echo offsets=$(tr '\\n' ' ' < /proc/self/timens_offsets)";

struct Clocks {
    mono: f64,
    boot: f64,
    uptime: f64,
    offsets: String,
}

fn parse_clocks(text: &str) -> Clocks {
    let kv = parse_kv(text);
    let f = |k: &str| -> f64 {
        kv.get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number {k}= in:\n{text}"))
    };
    Clocks {
        mono: f("mono"),
        boot: f("boot"),
        uptime: f("uptime"),
        offsets: kv.get("offsets").cloned().unwrap_or_default(),
    }
}

/// Asserts `inside - offset` lies within the host readings around the run (with slack for
/// /proc/uptime's 10 ms resolution).
fn assert_between(what: &str, inside: f64, offset: f64, before: f64, after: f64) {
    let v = inside - offset;
    assert!(
        v >= before - 0.02 && v <= after + 0.02,
        "{what}: inside {inside}, minus offset {offset} = {v}, host was {before}..{after}"
    );
}

const TEN_DAYS: i64 = 864_000;

#[test]
fn monotonic_offset_moves_clock_monotonic_inside_only() {
    let h = harun!();
    let b = clock_bundle(
        &h,
        json!({"monotonic": {"secs": TEN_DAYS, "nanosecs": 250_000_000}}),
    );
    let (m0, b0) = (
        secs(ClockId::CLOCK_MONOTONIC),
        secs(ClockId::CLOCK_BOOTTIME),
    );
    let out = h.run_ok(&b);
    let (m1, b1) = (
        secs(ClockId::CLOCK_MONOTONIC),
        secs(ClockId::CLOCK_BOOTTIME),
    );
    let c = parse_clocks(&out);
    assert_between("CLOCK_MONOTONIC", c.mono, TEN_DAYS as f64 + 0.25, m0, m1);
    assert_between("CLOCK_BOOTTIME", c.boot, 0.0, b0, b1);
    assert_between("/proc/uptime", c.uptime, 0.0, b0, b1);
    assert_eq!(
        c.offsets, "monotonic 864000 250000000 boottime 0 0",
        "{out}"
    );
    // The host's clock did not move.
    assert!(m1 < TEN_DAYS as f64, "host CLOCK_MONOTONIC {m1}");

    // The control: the same measurement without a time namespace shows no offset.
    let mut plain = clock_bundle(&h, json!(null));
    plain.without_namespace("time").remove("/linux/timeOffsets");
    let m0 = secs(ClockId::CLOCK_MONOTONIC);
    let out = h.run_ok(&plain);
    let m1 = secs(ClockId::CLOCK_MONOTONIC);
    assert_between(
        "CLOCK_MONOTONIC without a time namespace",
        parse_clocks(&out).mono,
        0.0,
        m0,
        m1,
    );
    h.assert_clean();
}

#[test]
fn boottime_offset_moves_uptime_and_clock_boottime_only() {
    let h = harun!();
    let off = 1_000_000i64;
    let b = clock_bundle(&h, json!({"boottime": {"secs": off}}));
    let (m0, b0) = (
        secs(ClockId::CLOCK_MONOTONIC),
        secs(ClockId::CLOCK_BOOTTIME),
    );
    let out = h.run_ok(&b);
    let (m1, b1) = (
        secs(ClockId::CLOCK_MONOTONIC),
        secs(ClockId::CLOCK_BOOTTIME),
    );
    let c = parse_clocks(&out);
    assert_between("CLOCK_BOOTTIME", c.boot, off as f64, b0, b1);
    assert_between("/proc/uptime", c.uptime, off as f64, b0, b1);
    assert_between("CLOCK_MONOTONIC", c.mono, 0.0, m0, m1);
    assert_eq!(c.offsets, "monotonic 0 0 boottime 1000000 0", "{out}");
    h.assert_clean();
}

#[test]
fn exec_joins_the_time_namespace() {
    let h = harun!();
    let mut b = clock_bundle(&h, json!({"monotonic": {"secs": TEN_DAYS}}));
    b.args(&["sleep", "600"]);
    let id = h.id("timens");
    h.create(&id, &b).ok();
    h.start(&id).ok();
    let init = h.wait_status(&id, "running").pid;
    let m0 = secs(ClockId::CLOCK_MONOTONIC);
    let out = h
        .exec(&[
            "exec",
            &id,
            "sh",
            "-c",
            &format!("{CLOCKS}; echo timens=$(readlink /proc/self/ns/time)"),
        ])
        .ok();
    let m1 = secs(ClockId::CLOCK_MONOTONIC);
    let c = parse_clocks(&out.stdout);
    assert_between("CLOCK_MONOTONIC in exec", c.mono, TEN_DAYS as f64, m0, m1);
    let init_ns = fs::read_link(format!("/proc/{init}/ns/time")).unwrap();
    assert_eq!(
        parse_kv(&out.stdout)["timens"],
        init_ns.to_string_lossy(),
        "{out}"
    );
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn bad_time_offsets_are_refused() {
    let h = harun!();
    let cases = [
        (
            "realtime",
            json!({"realtime": {"secs": 10}}),
            vec!["linux.timeOffsets.realtime"],
        ),
        (
            "nanos",
            json!({"monotonic": {"secs": 1, "nanosecs": 1_000_000_000u64}}),
            vec!["linux.timeOffsets.monotonic", "nanosecs"],
        ),
    ];
    for (name, offsets, keys) in cases {
        let mut b = h.bundle();
        b.namespace("time")
            .set("/linux/timeOffsets", offsets)
            .args(&["true"]);
        let id = h.id(name);
        h.create(&id, &b).error(&keys);
        assert_no_trace(&h, &id);
    }
    // Offsets need a new time namespace, not a joined one.
    let mut b = h.bundle();
    b.namespace_path("time", "/proc/self/ns/time")
        .set("/linux/timeOffsets", json!({"boottime": {"secs": 10}}))
        .args(&["true"]);
    let id = h.id("joined");
    h.create(&id, &b).error(&["linux.timeOffsets"]);
    assert_no_trace(&h, &id);
}
