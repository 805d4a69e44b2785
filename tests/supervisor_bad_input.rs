//! Bad supervision input fails at once with one clear line naming the flag or annotation,
//! and leaves nothing behind.

mod supervisor_util;

use harun_integration::harun;

#[test]
fn bad_flags_are_named() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    let id = h.id("badflags");
    let cases: &[(&[&str], &[&str])] = &[
        (&["--restart", "sometimes"], &["--restart: invalid restart policy `sometimes`: unknown policy `sometimes`"]),
        (&["--restart", "on-failure:-1"], &["--restart: invalid restart policy `on-failure:-1`: retry count `-1` is not a whole number"]),
        (&["--restart", "on-failure:0"], &["retry count must be at least 1"]),
        (&["--restart", "always:3"], &["`always` takes no retry count"]),
        (&["--restart", "always", "--restart-delay", "-1s"], &["--restart-delay: invalid duration `-1s`: negative durations are not allowed"]),
        (&["--restart", "always", "--restart-delay", "1.5s"], &["--restart-delay: invalid duration `1.5s`: fractions are not supported (write `1500ms` for 1.5s)"]),
        (&["--restart", "always", "--restart-delay", "0", "--restart-max-delay", "0"], &["restart max delay must be at least 1ms (a container that keeps failing backs off)"]),
        (&["--restart", "always", "--restart-delay", "2m"], &["restart max delay (1m) is shorter than the restart delay (2m)"]),
        (&["--restart", "always", "--restart-limit", "5"], &["--restart-limit: invalid restart limit `5`: missing `/S`"]),
        (&["--restart", "always", "--restart-limit", "-5/10s"], &["--restart-limit: invalid restart limit `-5/10s`: exit count `-5` is not a whole number"]),
        (&["--restart", "always", "--stop-timeout", "ten"], &["--stop-timeout: invalid duration `ten`"]),
        (&["--restart", "always", "-d", "--log-max-size", "0"], &["--log-max-size: invalid size `0`: must be at least 1 byte"]),
        (&["--restart", "always", "-d", "--log-max-size", "-1m"], &["--log-max-size: invalid size `-1m`: negative sizes are not allowed"]),
        (&["--restart", "always", "-d", "--log-max-files", "-1"], &["--log-max-files: invalid file count `-1`: negative counts are not allowed"]),
        (&["--restart", "always", "--log-max-size", "1m"], &["--log-max-size is for --detach"]),
        (&["--restart-delay", "1s"], &["--restart-delay needs a restart policy"]),
        (&["--restart", "no", "--stop-timeout", "1s"], &["--stop-timeout needs a restart policy"]),
    ];
    for (flags, keys) in cases {
        h.remember_id(&id);
        h.cmd(["run"])
            .args(flags.iter().copied())
            .arg("--bundle")
            .arg(b.dir())
            .arg(&id)
            .run()
            .error(keys);
    }
    h.assert_clean();
}

#[test]
fn bad_annotations_are_named() {
    let h = harun!();
    let id = h.id("badannot");
    let cases: &[(&str, &str, &str)] = &[
        ("run.harun.restart", "sometimes", "annotation `run.harun.restart`: invalid restart policy `sometimes`"),
        ("run.harun.restart.delay", "-5s", "annotation `run.harun.restart.delay`: invalid duration `-5s`: negative durations are not allowed"),
        ("run.harun.restart.limit", "3", "annotation `run.harun.restart.limit`: invalid restart limit `3`: missing `/S`"),
        ("run.harun.restart.dealy", "1s", "annotation `run.harun.restart.dealy`: unknown supervision annotation (did you mean `run.harun.restart.delay`?)"),
        ("run.harun.stop-timout", "1s", "did you mean `run.harun.stop-timeout`?"),
    ];
    for (key, value, want) in cases {
        let mut b = h.bundle();
        b.args(&["true"])
            .set(&format!("/annotations/{}", key.replace('/', "~1")), *value);
        for detach in [false, true] {
            h.remember_id(&id);
            let mut cmd = h.cmd(["run"]);
            if detach {
                cmd = cmd.arg("--detach");
            }
            cmd.arg("--bundle")
                .arg(b.dir())
                .arg(&id)
                .run()
                .error(&[want]);
        }
    }
    h.assert_clean();
}

#[test]
fn a_supervised_container_cannot_have_a_terminal() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]).set("/process/terminal", true);
    let id = h.id("tty");
    h.remember_id(&id);
    h.cmd(["run", "--restart", "always", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .run()
        .error(&["cannot have a terminal"]);
    h.assert_clean();
}

/// A bundle that cannot start fails `run -d --restart` at once, like a plain run.
#[test]
fn a_first_start_failure_is_the_commands_error() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["/no/such/program"]);
    let id = h.id("nostart");
    for detach in [false, true] {
        h.remember_id(&id);
        let mut cmd = h.cmd(["run", "--restart", "always"]);
        if detach {
            cmd = cmd.arg("-d");
        }
        cmd.arg("--bundle")
            .arg(b.dir())
            .arg(&id)
            .run()
            .error(&["/no/such/program"]);
        h.exec(&["inspect", &id]).error(&["does not exist"]);
    }
    h.assert_clean();
}

#[test]
fn commands_on_unknown_or_unsupervised_containers() {
    let h = harun!();
    for args in [
        &["stop", "nope"][..],
        &["inspect", "nope"],
        &["logs", "nope"],
        &["delete", "nope"],
    ] {
        h.exec(args).error(&["container `nope` does not exist"]);
    }
    h.exec(&["stop", "--timeout", "soon", "nope"])
        .error(&["--timeout: invalid duration `soon`"]);
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("plain");
    supervisor_util::run_detached(&h, &id, &b, &[]);
    h.exec(&["logs", &id])
        .error(&["is not supervised, so it has no logs"]);
    h.delete_force(&id).ok();
    // A foreground supervised container has no log: its output goes to the terminal.
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let fg = h.id("fglogs");
    h.remember_id(&fg);
    let run = h
        .cmd(["run", "--restart", "always", "--bundle"])
        .arg(b.dir())
        .arg(&fg)
        .spawn();
    h.wait_status(&fg, "running");
    supervisor_util::wait_starts(&h, &fg, 1);
    h.exec(&["logs", &fg]).error(&["runs in the foreground"]);
    h.exec(&["stop", "--timeout", "0", &fg]).ok();
    run.wait().exit(137);
    h.assert_clean();
}
