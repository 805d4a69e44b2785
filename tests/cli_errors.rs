//! What a user sees when something is wrong: one line, the flag or field that caused it,
//! errnos in one style (`op `object`: ENOENT: No such file or directory`), nothing left
//! behind. Texts asserted exactly.

use std::fs;

use harun_integration::{harun, Harun, Out};

/// The one line harun printed on stderr (exit 1, nothing else there).
fn error_line(out: Out) -> String {
    out.error(&[]).stderr.trim_end().to_string()
}

/// A container running `sleep 600`, for the commands that need one.
fn sleeper(h: &Harun, name: &str) -> String {
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id(name);
    h.create(&id, &b).ok();
    h.start(&id).ok();
    id
}

#[test]
fn run_of_a_directory_without_config_json_names_the_bundle() {
    let h = harun!();
    let dir = h.path("not-a-bundle");
    fs::create_dir(&dir).unwrap();
    let d = dir.display();
    let out = h.cmd(["run"]).arg(&dir).run();
    assert_eq!(
        error_line(out),
        format!("harun: bundle: open `{d}/config.json`: ENOENT: No such file or directory")
    );
    // A path that does not exist at all is no container ID either.
    let out = h.cmd(["run"]).arg(format!("{d}/nope")).run();
    assert_eq!(
        error_line(out),
        format!("harun: bundle: open `{d}/nope/config.json`: ENOENT: No such file or directory")
    );
    h.assert_clean();
}

#[test]
fn exec_of_an_unknown_capability_says_so() {
    let h = harun!();
    let id = sleeper(&h, "cap");
    assert_eq!(
        error_line(h.exec(&["exec", "--cap", "CAP_FOO", &id, "true"])),
        "harun: --cap `CAP_FOO`: unknown capability (names as in capabilities(7), e.g. \
         CAP_NET_ADMIN)"
    );
    let out = h.exec(&["exec", "--cap", "CAP_NET_ADMIN", &id, "true"]);
    out.ok();
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn a_pid_file_in_a_missing_directory_fails_before_anything_is_made() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    let id = h.id("pidfile");
    h.remember_id(&id);
    let want = "harun: --pid-file `/nonexistent-harun/x.pid`: stat `/nonexistent-harun`: \
                ENOENT: No such file or directory";
    for cmd in ["create", "run"] {
        let out = h
            .cmd([cmd, "--pid-file", "/nonexistent-harun/x.pid", "--bundle"])
            .arg(b.dir())
            .arg(&id)
            .run();
        assert_eq!(error_line(out), want, "{cmd}");
        assert!(!h.root().join(&id).exists(), "{cmd} left a state dir");
    }
    let running = sleeper(&h, "pidfile-exec");
    let out = h.exec(&[
        "exec",
        "--pid-file",
        "/nonexistent-harun/x.pid",
        &running,
        "true",
    ]);
    assert_eq!(error_line(out), want);
    h.delete_force(&running).ok();
    h.assert_clean();
}

#[test]
fn an_upper_that_cannot_be_made_names_the_flag() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    let id = h.id("upper");
    h.remember_id(&id);
    let out = h
        .cmd(["run", "--upper", "/proc/up", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .run();
    assert_eq!(
        error_line(out),
        "harun: --upper: create directory `/proc/up`: ENOENT: No such file or directory"
    );
    assert!(!h.root().join(&id).exists());
    h.assert_clean();
}

#[test]
fn a_log_file_that_cannot_be_opened_is_an_error_as_in_runc() {
    let h = harun!();
    for format in ["text", "json"] {
        let out = h
            .cmd(["list"])
            .global([
                "--log",
                "/nonexistent-harun/dir/x.log",
                "--log-format",
                format,
            ])
            .run();
        assert_eq!(
            error_line(out),
            "harun: --log: open `/nonexistent-harun/dir/x.log`: ENOENT: No such file or \
             directory"
        );
    }
    // An openable one gets the error lines, in the chosen format.
    let log = h.dir().join("harun.log");
    let out = h
        .cmd(["state", "nope"])
        .global(["--log-format", "json", "--log"])
        .global([&log])
        .run();
    assert_eq!(error_line(out), "harun: container `nope` does not exist");
    let line: serde_json::Value =
        serde_json::from_str(fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(
        line,
        serde_json::json!({
            "level": "error",
            "msg": "container `nope` does not exist",
            "kind": "not_found",
            "time": line["time"],
        })
    );
    h.assert_clean();
}

/// An error raised inside the container's init (another process) reaches the CLI with its
/// kind and errno: one line on stderr, and in the `--log-format json` line the `kind` and
/// `errno` fields, for one error of each kind the init raises (integration/src/
/// init_errors.rs; tests/library.rs checks the library caller's view).
#[test]
fn init_errors_reach_the_log_with_their_kind_and_errno() {
    let h = harun!();
    let log = h.dir().join("init-errors.log");
    for (i, case) in harun_integration::init_errors::cases(&h)
        .into_iter()
        .enumerate()
    {
        let id = h.id(&format!("init-error{i}"));
        h.remember_id(&id);
        let out = h
            .cmd(["create", "--bundle"])
            .arg(case.bundle.dir())
            .arg(&id)
            .global(["--log-format", "json", "--log"])
            .global([&log])
            .run();
        let stderr = error_line(out);
        for text in case.message {
            assert!(stderr.contains(text), "{}: {stderr}", case.name);
        }
        let text = fs::read_to_string(&log).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(
            (&line["level"], &line["msg"]),
            (
                &serde_json::json!("error"),
                &serde_json::json!(stderr.trim_start_matches("harun: "))
            ),
            "{}",
            case.name
        );
        assert_eq!(line["kind"], case.kind, "{}: {line}", case.name);
        let errno = line.get("errno").and_then(|e| e.as_str());
        assert_eq!(errno, case.errno, "{}: {line}", case.name);
        assert!(
            !h.root().join(&id).exists(),
            "{}: left a state dir",
            case.name
        );
    }
    h.assert_clean();
}

#[test]
fn errnos_read_the_same_everywhere() {
    let h = harun!();
    let id = h.id("errno");
    h.remember_id(&id);
    let out = h
        .cmd(["run", "--bundle", "/nonexistent-harun"])
        .arg(&id)
        .run();
    assert_eq!(
        error_line(out),
        "harun: open bundle `/nonexistent-harun`: ENOENT: No such file or directory"
    );
    // A hook that cannot run (std's spawn error), in the same style.
    let mut b = h.bundle();
    b.args(&["true"])
        .hook("prestart", "/nonexistent-harun/hook", &[]);
    let out = h.cmd(["run", "--bundle"]).arg(b.dir()).arg(&id).run();
    assert_eq!(
        error_line(out),
        "harun: prestart hook #0 `/nonexistent-harun/hook`: cannot execute: ENOENT: No such \
         file or directory"
    );
    h.assert_clean();
}

#[test]
fn preserve_fds_beyond_the_open_file_limit_is_refused() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    let id = h.id("fds");
    h.remember_id(&id);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    let soft = limit.rlim_cur;
    let want = format!(
        "harun: --preserve-fds `4294967295`: above the open file limit (RLIMIT_NOFILE {soft} \
         allows fds 3 to {})",
        soft - 1
    );
    for cmd in ["create", "run"] {
        let out = h
            .cmd([cmd, "--preserve-fds", "4294967295", "--bundle"])
            .arg(b.dir())
            .arg(&id)
            .run();
        assert_eq!(error_line(out), want, "{cmd}");
    }
    let running = sleeper(&h, "fds-exec");
    let out = h.exec(&["exec", "--preserve-fds", "4294967295", &running, "true"]);
    assert_eq!(error_line(out), want);
    h.delete_force(&running).ok();
    h.assert_clean();
}

/// `--rm` is what a foreground run does anyway: accepted, and no misleading suggestion.
#[test]
fn run_rm_is_accepted_and_refused_with_detach() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo removed-anyway");
    let id = h.id("rm");
    h.remember_id(&id);
    let out = h
        .cmd(["run", "--rm", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .run()
        .ok();
    assert_eq!(out.stdout, "removed-anyway\n");
    assert!(!h.root().join(&id).exists());
    let out = h
        .cmd(["run", "--rm", "-d", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .run();
    assert_eq!(
        error_line(out),
        "harun: --rm with --detach: nobody waits for a detached container to remove it \
         (`harun delete ID` once it has stopped)"
    );
    h.assert_clean();
}

/// Every "after D" in a supervised run's event lines carries its unit (`after 0s`, not
/// `after 0`).
#[test]
fn exit_events_give_the_run_time_with_a_unit() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("exit 3");
    let id = h.id("unit");
    h.remember_id(&id);
    let out = h
        .cmd(["run", "--restart", "on-failure:1", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .run()
        .exit(3);
    let afters: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains(": exited with code 3 after "))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(afters.len(), 2, "{out}");
    for d in afters {
        let number = d.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        assert!(
            !number.is_empty()
                && number != d
                && ["ms", "s", "m", "h"].iter().any(|u| d.ends_with(u)),
            "no unit in `{d}`:\n{out}"
        );
    }
    h.assert_clean();
}
