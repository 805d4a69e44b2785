//! One size grammar and one duration grammar for every flag and annotation (README.md,
//! "Sizes and durations"): the same input gets the same answer wherever it is given.

mod supervisor_util;

use harun_integration::{harun, Out};
use serde_json::Value;

/// The one line harun printed on stderr, which must be its only output line (exit 1).
fn error_line(out: Out) -> String {
    let out = out.error(&[]);
    out.stderr.trim_end().to_string()
}

#[test]
fn a_bad_size_reads_the_same_in_every_flag_and_annotation() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    let id = h.id("size");
    h.remember_id(&id);
    let why = "invalid size `1x`: unknown unit `x` (use k, m, g, t, p, e.g. `64m`)";
    let run = |flags: &[&str]| {
        h.cmd(["run"])
            .args(flags.iter().copied())
            .arg("--bundle")
            .arg(b.dir())
            .arg(&id)
            .run()
    };
    assert_eq!(
        error_line(run(&["--upper", "tmpfs:1x"])),
        format!("harun: --upper: tmpfs size: {why}")
    );
    assert_eq!(
        error_line(run(&["-d", "--restart", "always", "--log-max-size", "1x"])),
        format!("harun: --log-max-size: {why}")
    );
    assert_eq!(
        error_line(h.exec(&["update", "--memory", "1x", &id])),
        format!("harun: --memory: {why}")
    );
    let mut annotated = h.bundle();
    annotated
        .args(&["true"])
        .set("/annotations/run.harun.overlay.upper", "tmpfs:1x");
    assert_eq!(
        error_line(
            h.cmd(["run", "--bundle"])
                .arg(annotated.dir())
                .arg(&id)
                .run()
        ),
        format!("harun: annotations[\"run.harun.overlay.upper\"]: tmpfs size: {why}")
    );
    h.assert_clean();
}

#[test]
fn sizes_take_any_case_and_a_b_or_ib_suffix() {
    let h = harun!();
    let mut b = h.bundle();
    b.set("/root/readonly", false);
    // 1 MiB of upper: writing 2 MiB must fail, so `1MiB` meant 1024 * 1024 bytes.
    b.sh("dd if=/dev/zero of=/fill bs=1024 count=2048 2>&1; echo rc=$?");
    let out = h
        .cmd(["run", "--upper", "tmpfs:1MiB", "--bundle"])
        .arg(b.dir())
        .arg(h.id("mib"))
        .run()
        .ok();
    assert!(out.stdout.contains("No space left on device"), "{out}");
    assert!(out.stdout.contains("rc=1"), "{out}");
    // `--log-max-size 1gb` and `--upper tmpfs:1GB` are accepted alike.
    let mut t = h.bundle();
    t.args(&["true"]);
    h.cmd(["run", "--upper", "tmpfs:1GB", "--bundle"])
        .arg(t.dir())
        .arg(h.id("gb"))
        .run()
        .ok();
    let id = h.id("logsize");
    supervisor_util::run_detached(
        &h,
        &id,
        &t,
        &["--restart", "on-failure", "--log-max-size", "1gb"],
    );
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn a_bad_duration_reads_the_same_in_every_flag() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    let id = h.id("dur");
    h.remember_id(&id);
    let why = "invalid duration `1.5s`: fractions are not supported (write `1500ms` for 1.5s)";
    for flag in [
        "--restart-delay",
        "--restart-max-delay",
        "--restart-reset-after",
        "--stop-timeout",
    ] {
        let out = h
            .cmd(["run", "--restart", "always", flag, "1.5s", "--bundle"])
            .arg(b.dir())
            .arg(&id)
            .run();
        assert_eq!(error_line(out), format!("harun: {flag}: {why}"));
    }
    assert_eq!(
        error_line(h.exec(&["stop", "--timeout", "1.5s", &id])),
        format!("harun: --timeout: {why}")
    );
    assert_eq!(
        error_line(h.exec(&["events", "--interval", "1.5s", &id])),
        format!("harun: --interval: {why}")
    );
    let out = h
        .cmd([
            "run",
            "--restart",
            "always",
            "--restart-limit",
            "3/1.5s",
            "--bundle",
        ])
        .arg(b.dir())
        .arg(&id)
        .run();
    assert_eq!(
        error_line(out),
        format!("harun: --restart-limit: invalid restart limit `3/1.5s`: {why}")
    );
    let mut annotated = h.bundle();
    annotated
        .args(&["true"])
        .set("/annotations/run.harun.stop-timeout", "1.5s");
    assert_eq!(
        error_line(
            h.cmd(["run", "--bundle"])
                .arg(annotated.dir())
                .arg(&id)
                .run()
        ),
        format!("harun: annotation `run.harun.stop-timeout`: {why}")
    );
    h.assert_clean();
}

/// A bare number is seconds everywhere: `--stop-timeout 10` as `stop -t 10` (runc, Docker).
#[test]
fn a_bare_number_is_seconds_in_every_duration() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("trap 'exit 0' TERM; while :; do sleep 0.1; done");
    let id = h.id("bare");
    supervisor_util::run_detached(
        &h,
        &id,
        &b,
        &[
            "--restart",
            "always",
            "--stop-timeout",
            "10",
            "--restart-delay",
            "1",
            "--restart-limit",
            "3/60",
        ],
    );
    let inspect: Value = serde_json::from_str(&h.exec(&["inspect", &id]).ok().stdout).unwrap();
    let s = &inspect["supervision"];
    assert_eq!(
        (&s["stopTimeout"], &s["restartDelay"], &s["restartLimit"]),
        (
            &Value::from("10s"),
            &Value::from("1s"),
            &Value::from("3/1m")
        ),
        "{inspect}"
    );
    let out = h.exec(&["stop", "-t", "10", &id]).ok();
    assert_eq!(
        out.stdout,
        format!("{id}: stopped (last run exited with code 0)\n")
    );
    h.delete(&id).ok();
    h.assert_clean();
}
