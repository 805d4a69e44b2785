//! Acceptance: rolling updates under a client that probes the service all along. An update
//! to a bundle whose process exits at once is rolled back, as is one whose first new
//! replica works and the next fails; an update to a good bundle replaces every replica.
//! The probe never sees the service down.
//!
//! The service: 3 replicas, each touching a heartbeat file in a directory shared with the
//! host every 30 ms (`/hb/$HARUN_CONTAINER`, holding its version). The probe, a thread of
//! the test, counts the replicas whose heartbeat is younger than 300 ms, every 10 ms.

mod supervise_util;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use harun_integration::{harun, Bundle, Harun};
use supervise_util::*;

const FRESH: Duration = Duration::from_millis(300);

fn heartbeat(version: &str) -> String {
    format!(
        "trap 'exit 0' TERM; while :; do echo {version} > /hb/$HARUN_CONTAINER; usleep 30000; done"
    )
}

const ANNOTATIONS: [(&str, &str); 6] = [
    ("run.harun.restart", "always"),
    ("run.harun.replicas", "3"),
    (
        "run.harun.health.cmd",
        r#"["sh","-c","test -e /hb/$HARUN_CONTAINER"]"#,
    ),
    ("run.harun.health.interval", "200ms"),
    ("run.harun.update.window", "5s"),
    ("run.harun.restart.delay", "50ms"),
];

fn web_bundle(h: &Harun, dir: &Path, hb: &Path, script: &str) -> Bundle {
    let mut b = h.bundle_at(dir);
    b.sh(script).set("/root/readonly", false).mount(
        "/hb",
        "bind",
        &hb.to_string_lossy(),
        &["rbind", "rw"],
    );
    for (k, v) in ANNOTATIONS {
        b.set(&format!("/annotations/{k}"), v);
    }
    b
}

/// Live heartbeats: (container, version) of every file younger than [`FRESH`].
fn live(hb: &Path) -> Vec<(String, String)> {
    let now = SystemTime::now();
    let mut out = Vec::new();
    for e in fs::read_dir(hb).into_iter().flatten().flatten() {
        let Ok(meta) = e.metadata() else { continue };
        let young = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age < FRESH);
        // An empty version: read between the writer's truncate and its write.
        let version = fs::read_to_string(e.path()).unwrap_or_default();
        if young {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                version.trim().to_string(),
            ));
        }
    }
    out
}

/// The probe: the fewest live replicas seen, and every version seen.
struct Probe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Duration, BTreeSet<String>)>,
}

impl Probe {
    fn start(hb: PathBuf) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut fewest, mut longest_gap) = (usize::MAX, Duration::ZERO);
            let mut versions = BTreeSet::new();
            let mut down_since: Option<Instant> = None;
            while !flag.load(Ordering::Relaxed) {
                let now = live(&hb);
                fewest = fewest.min(now.len());
                if now.is_empty() {
                    let since = *down_since.get_or_insert_with(Instant::now);
                    longest_gap = longest_gap.max(since.elapsed());
                } else {
                    down_since = None;
                }
                versions.extend(now.into_iter().map(|(_, v)| v).filter(|v| !v.is_empty()));
                sleep(Duration::from_millis(10));
            }
            (fewest, longest_gap, versions)
        });
        Probe { stop, thread }
    }

    fn finish(self) -> (usize, Duration, BTreeSet<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("probe thread")
    }
}

#[test]
fn rolling_updates_roll_back_bad_bundles_and_never_leave_the_service_down() {
    let h = harun!();
    let services = Services::new(&h);
    let web = h.id("web");
    let hb = h.path("hb");
    fs::create_dir(&hb).unwrap();
    fs::set_permissions(&hb, fs::Permissions::from_mode(0o777)).unwrap();
    web_bundle(&h, &services.dir.join(&web), &hb, &heartbeat("v1"));
    let bad = web_bundle(&h, &h.path("bad"), &hb, "echo broken >&2; exit 1");
    // Fine as the extra replica, broken as any other: the failure comes midway.
    let script = format!(
        "[ \"$HARUN_CONTAINER\" = {web}-next ] || exit 3; {}",
        heartbeat("v1.5")
    );
    let treacherous = web_bundle(&h, &h.path("treacherous"), &hb, &script);
    let good = web_bundle(&h, &h.path("good"), &hb, &heartbeat("v2"));
    let supervisor = start(&h, &services);
    let st = wait_for(&h, "web running", all_running);
    let before: Vec<i32> = (0..3).map(|i| pid_of(&st, &format!("{web}-{i}"))).collect();
    // The probe sees all three before anything happens.
    let deadline = Instant::now() + PATIENCE;
    while live(&hb).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "no heartbeats in {}",
            hb.display()
        );
        sleep(Duration::from_millis(20));
    }
    let probe = Probe::start(hb.clone());
    let t0 = Instant::now();

    // 1. A bundle whose process exits at once: the extra replica fails, nothing else is
    // touched.
    let out = h
        .cmd(["ctl", "update", &web, "--bundle"])
        .arg(bad.dir())
        .run();
    out.error(&[&format!(
        "{web}: rolled back: {web}-next exited with code 1"
    )]);
    let st = status(&h);
    let now: Vec<i32> = (0..3).map(|i| pid_of(&st, &format!("{web}-{i}"))).collect();
    assert_eq!(now, before, "an old replica was touched");
    let surge = format!("{web}-next");
    assert!(!containers(&st).contains_key(&surge), "{st:#}");
    assert_eq!(
        h.exec(&["inspect", &surge]).code,
        1,
        "the extra replica is gone"
    );
    let t1 = t0.elapsed();

    // 2. A bundle that fails in the first replaced slot: that slot gets the old version
    // back, the extra replica goes.
    h.cmd(["ctl", "update", &web, "--bundle"])
        .arg(treacherous.dir())
        .run()
        .error(&[&format!("{web}: rolled back: {web}-0 exited with code 3")]);
    let st = wait_for(&h, "web running after the rollback", all_running);
    for c in containers(&st).values() {
        assert_eq!(
            c["bundle"],
            services.dir.join(&web).to_string_lossy().as_ref()
        );
    }
    let replica = |i: usize| format!("{web}-{i}");
    assert_ne!(
        pid_of(&st, &replica(0)),
        before[0],
        "slot 0 was replaced and put back"
    );
    assert_eq!(pid_of(&st, &replica(1)), before[1]);
    assert_eq!(pid_of(&st, &replica(2)), before[2]);
    let t2 = t0.elapsed();

    // 3. A good bundle: every replica replaced.
    let out = h
        .cmd(["ctl", "update", &web, "--bundle"])
        .arg(good.dir())
        .run()
        .ok();
    assert_eq!(out.stdout, format!("{web}: updated\n"));
    let st = status(&h);
    let s = service(&st, &web);
    assert_eq!(s["state"], "running");
    assert_eq!(s["bundle"], good.dir().to_string_lossy().as_ref());
    assert_eq!(s["lastUpdate"], "updated");
    let ids: Vec<String> = containers(&st).keys().cloned().collect();
    assert_eq!(ids, [replica(0), replica(1), replica(2)]);
    for (i, c) in containers(&st).values().enumerate() {
        assert_eq!(c["bundle"], good.dir().to_string_lossy().as_ref());
        assert_ne!(c["pid"], before[i]);
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let versions: BTreeSet<String> = live(&hb)
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
            .collect();
        if versions == BTreeSet::from(["v2".to_string()]) {
            break;
        }
        assert!(Instant::now() < deadline, "still {versions:?}");
        sleep(Duration::from_millis(20));
    }
    let (fewest, gap, versions) = probe.finish();
    println!(
        "probe over {:?} (bad update done at {t1:?}, treacherous at {t2:?}): at least \
         {fewest} replicas alive at every look, longest gap {gap:?}, versions {versions:?}",
        t0.elapsed()
    );
    assert!(gap.is_zero(), "the service was down for {gap:?}");
    assert!(fewest >= 2, "only {fewest} replicas alive at one point");
    assert!(
        versions.contains("v1") && versions.contains("v2"),
        "{versions:?}"
    );
    assert!(!versions.contains("broken"));
    let ev = events(&h, &replica(0));
    assert!(count(&ev, "started") >= 3, "{:?}", kinds(&ev));
    stop(supervisor);
    clean_up(&h, &ids);
}
