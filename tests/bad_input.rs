//! Bad input: every case exits 1 with exactly one line on stderr naming the field or path
//! and the cause, and leaves nothing behind (no state dir, no mount, no process).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use harun_integration::{harun, Bundle};
use serde_json::json;

/// Edits a good bundle, `create`s it and expects a clean failure mentioning `keys`.
fn bad_config(edit: impl FnOnce(&mut Bundle), keys: &[&str]) {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    edit(&mut b);
    let id = h.id("bad");
    h.create(&id, &b).error(keys);
    h.state(&id).error(&["does not exist"]);
    h.assert_clean();
}

#[test]
fn missing_config_json() {
    bad_config(|b| b.remove_config(), &["config.json"]);
}

/// config.json that is not a regular file: refused at once, without opening a FIFO for
/// reading (that hung `create`) or reading a device (a symlink to /dev/zero was read until
/// memory ran out). runc hangs on the FIFO and fails on /dev/zero's NUL bytes.
#[test]
fn config_json_that_is_not_a_regular_file() {
    type Case = (&'static str, fn(&Path), &'static [&'static str]);
    let cases: [Case; 4] = [
        (
            "a FIFO",
            |p| nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap(),
            &["config.json", "is a FIFO, not a regular file"],
        ),
        (
            "/dev/zero",
            |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
            &["config.json", "is a character device, not a regular file"],
        ),
        (
            "a directory",
            |p| fs::create_dir(p).unwrap(),
            &["config.json", "is a directory, not a regular file"],
        ),
        (
            "a dangling symlink",
            |p| std::os::unix::fs::symlink("nowhere.json", p).unwrap(),
            &["config.json", "No such file"],
        ),
    ];
    for (what, make, keys) in cases {
        let h = harun!();
        let b = h.bundle();
        b.remove_config();
        make(&b.config_path());
        let id = h.id("notfile");
        h.remember_id(&id);
        let started = Instant::now();
        h.cmd(["create", "--bundle"])
            .arg(b.dir())
            .arg(&id)
            .timeout(Duration::from_secs(20))
            .run()
            .error(keys);
        assert!(started.elapsed() < Duration::from_secs(10), "{what}: slow");
        h.assert_clean();
    }
}

/// A symlink to a regular file is followed, as runc does: the bundle's author chose it.
#[test]
fn config_json_may_be_a_symlink_to_a_regular_file() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo linked");
    let real = h.path("real-config.json");
    fs::rename(b.config_path(), &real).unwrap();
    std::os::unix::fs::symlink(&real, b.config_path()).unwrap();
    let out = h.run(&h.id("linked"), &b).ok();
    assert_eq!(out.stdout, "linked\n");
    h.assert_clean();
}

/// Above harun's cap (8 MiB, README "Bad input"): refused before it is parsed. A config just
/// under the cap is read (and refused for what it says, not for its size).
#[test]
fn config_json_larger_than_the_cap() {
    let cap = harun_runtime::spec::MAX_CONFIG_BYTES as usize;
    let padded = |b: &Bundle, len: usize| {
        let text = b.config().to_string();
        let mut text = text.into_bytes();
        text.resize(len, b' '); // trailing whitespace: valid JSON of any size
        fs::write(b.config_path(), text).unwrap();
    };
    bad_config(
        |b| padded(b, cap + 1),
        &["config.json", "too large", "8 MiB"],
    );
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo small enough");
    padded(&b, cap);
    let out = h.run(&h.id("cap"), &b).ok();
    assert_eq!(out.stdout, "small enough\n");
    h.assert_clean();
}

#[test]
fn broken_json() {
    bad_config(
        |b| b.write_raw_config(r#"{"ociVersion": "1.0.2", "process": {"#),
        &["config.json"],
    );
}

/// 200,000 levels of `[` (400 KB) in a field harun skips, then a bad field: one error naming
/// that field (the scan for its name recursed and overflowed the stack: SIGABRT, exit 134).
#[test]
fn deeply_nested_config() {
    bad_config(
        |b| {
            let mut text = b.config().to_string();
            text.pop(); // the closing `}`
            let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
            b.write_raw_config(&format!(r#"{text},"x":{deep},"domainname":5}}"#));
        },
        &["config.json", "domainname", "invalid type"],
    );
}

/// serde reads a JSON array as a struct's fields in order: `[]` was a config with every
/// field defaulted, `"linux": []` a container in the host's namespaces. Refused, as runc
/// ("cannot unmarshal array into Go value of type specs.Spec").
#[test]
fn array_instead_of_an_object() {
    bad_config(
        |b| b.write_raw_config("[]"),
        &[
            "config.json",
            "(top level)",
            "expected a JSON object, found an array",
        ],
    );
    bad_config(
        |b| {
            b.set("/linux", json!([]));
        },
        &[
            "config.json",
            "linux",
            "expected a JSON object, found an array",
        ],
    );
    bad_config(
        |b| {
            b.set("/process/user", json!([0, 0]));
        },
        &["process.user", "expected a JSON object, found an array"],
    );
}

#[test]
fn unknown_namespace_type() {
    bad_config(
        |b| {
            b.push("/linux/namespaces", json!({"type": "bogus"}));
        },
        &["linux.namespaces", "bogus"],
    );
}

#[test]
fn user_namespace_without_id_mappings() {
    bad_config(
        |b| {
            b.namespace("user");
        },
        &["linux.uidMappings"],
    );
}
#[test]
fn time_offsets_without_a_time_namespace() {
    bad_config(
        |b| {
            b.set("/linux/timeOffsets", json!({"boottime": {"secs": 100}}));
        },
        &["linux.timeOffsets"],
    );
}
#[test]
fn duplicate_namespace() {
    bad_config(
        |b| {
            b.push("/linux/namespaces", json!({"type": "pid"}));
        },
        &["linux.namespaces", "pid"],
    );
}

#[test]
fn root_outside_the_bundle() {
    bad_config(
        |b| {
            b.set("/root/path", "../../..");
        },
        &["root.path"],
    );
}

#[test]
fn nonexistent_root_path() {
    bad_config(
        |b| {
            b.set("/root/path", "no-such-rootfs");
        },
        &["root.path", "no-such-rootfs"],
    );
}

#[test]
fn missing_args() {
    bad_config(
        |b| {
            b.remove("/process/args");
        },
        &["process.args"],
    );
}

#[test]
fn empty_args() {
    bad_config(
        |b| {
            b.set("/process/args", json!([]));
        },
        &["process.args"],
    );
}

#[test]
fn args0_not_found_in_the_container() {
    bad_config(
        |b| {
            b.args(&["no-such-binary", "x"]);
        },
        &["process.args", "no-such-binary"],
    );
}

#[test]
fn absolute_args0_not_found_in_the_container() {
    // /usr/bin/env exists on the host, not in the busybox rootfs (which has /bin/env).
    bad_config(
        |b| {
            b.args(&["/usr/bin/env"]);
        },
        &["process.args", "/usr/bin/env"],
    );
}

/// args[0] exists but cannot run: the error says why (as Go's LookPath for runc), for a path
/// and for a PATH lookup alike, instead of "not found".
#[test]
fn args0_that_exists_but_cannot_run_says_why() {
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["/bin/plain"],
            &["process.args[0]", "/bin/plain", "Permission denied"],
        ),
        (&["/etc"], &["process.args[0]", "/etc", "Is a directory"]),
        (
            &["plain"],
            &[
                "process.args[0]",
                "`plain`",
                "/bin/plain",
                "in $PATH",
                "Permission denied",
            ],
        ),
        (
            &["adir"],
            &[
                "process.args[0]",
                "`adir`",
                "/bin/adir",
                "in $PATH",
                "Is a directory",
            ],
        ),
    ];
    for (args, keys) in cases {
        bad_config(
            |b| {
                b.write_file("/bin/plain", "#!/bin/sh\necho ran\n")
                    .write_file("/bin/adir/x", "")
                    .args(args);
            },
            keys,
        );
    }
    // Nothing at all: still "not found".
    bad_config(
        |b| {
            b.args(&["no-such-program"]);
        },
        &["process.args[0]", "no-such-program", "not found in $PATH"],
    );
}

#[test]
fn relative_cwd() {
    bad_config(
        |b| {
            b.set("/process/cwd", "tmp");
        },
        &["process.cwd"],
    );
}

#[test]
fn uid_of_the_wrong_type() {
    bad_config(
        |b| {
            b.set("/process/user/uid", "root");
        },
        &["process.user.uid"],
    );
}

/// (uid_t)-1 is "leave unchanged" to setresuid: uid 4294967295 would run the process as
/// root. Every id above 2^31-1 is refused, as runc does.
#[test]
fn ids_above_2_31_minus_1_are_refused() {
    for (pointer, value, field) in [
        (
            "/process/user/uid",
            json!(4294967295u32),
            "process.user.uid",
        ),
        (
            "/process/user/gid",
            json!(4294967295u32),
            "process.user.gid",
        ),
        (
            "/process/user/gid",
            json!(2147483648u32),
            "process.user.gid",
        ),
        (
            "/process/user/additionalGids",
            json!([5, 4294967295u32]),
            "process.user.additionalGids[1]",
        ),
    ] {
        bad_config(
            |b| {
                b.set(pointer, value.clone());
            },
            &[field, "out of range"],
        );
    }
}

#[test]
fn bad_rlimit_type() {
    bad_config(
        |b| {
            b.set(
                "/process/rlimits",
                json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
            );
        },
        &["process.rlimits", "RLIMIT_BOGUS"],
    );
}

#[test]
fn rlimit_soft_above_hard() {
    bad_config(
        |b| {
            b.set(
                "/process/rlimits",
                json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]),
            );
        },
        &["process.rlimits"],
    );
}

#[test]
fn relative_mount_destination() {
    bad_config(
        |b| {
            b.mount("relative/dir", "tmpfs", "tmpfs", &[]);
        },
        &["mounts[7].destination"],
    );
}

#[test]
fn bad_capability_name() {
    bad_config(
        |b| {
            b.push("/process/capabilities/bounding", "CAP_BOGUS");
        },
        &["process.capabilities", "CAP_BOGUS"],
    );
}

#[test]
fn hostname_without_a_uts_namespace() {
    bad_config(
        |b| {
            b.without_namespace("uts");
        },
        &["hostname"],
    );
}

#[test]
fn nonexistent_namespace_path() {
    bad_config(
        |b| {
            b.namespace_path("network", "/var/run/netns/harun-no-such-ns");
        },
        &["linux.namespaces", "/var/run/netns/harun-no-such-ns"],
    );
}

#[test]
fn namespace_path_of_the_wrong_type() {
    bad_config(
        |b| {
            b.namespace_path("network", "/proc/self/ns/uts");
        },
        &["linux.namespaces", "/proc/self/ns/uts"],
    );
}

#[test]
fn sysctl_not_allowed() {
    bad_config(
        |b| {
            b.set("/linux/sysctl/vm.swappiness", "10");
        },
        &["vm.swappiness"],
    );
}

#[test]
fn network_sysctl_without_a_network_namespace() {
    bad_config(
        |b| {
            b.without_namespace("network")
                .set("/linux/sysctl/net.ipv4.ip_forward", "1");
        },
        &["net.ipv4.ip_forward"],
    );
}

#[test]
fn relative_hook_path() {
    bad_config(
        |b| {
            b.hook("createRuntime", "bin/true", &["true"]);
        },
        &["hooks.createRuntime[0].path"],
    );
}

#[test]
fn failing_hook() {
    bad_config(
        |b| {
            b.hook("createRuntime", "/bin/false", &["false"]);
        },
        &["createRuntime", "/bin/false"],
    );
}

#[test]
fn bad_device_type() {
    bad_config(
        |b| {
            b.set(
                "/linux/devices",
                json!([{"path": "/dev/x", "type": "z", "major": 1, "minor": 3}]),
            );
        },
        &["linux.devices"],
    );
}

#[test]
fn oom_score_adj_out_of_range() {
    bad_config(
        |b| {
            b.set("/process/oomScoreAdj", 1001);
        },
        &["oomScoreAdj"],
    );
}

#[test]
fn nonexistent_bundle_dir() {
    let h = harun!();
    let dir = h.path("no-such-bundle");
    let id = h.id("nobundle");
    h.cmd(["create", "--bundle"])
        .arg(&dir)
        .arg(&id)
        .run()
        .error(&["no-such-bundle"]);
    h.assert_clean();
}

#[test]
fn duplicate_id() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("dup");
    h.create(&id, &b).ok();
    let first = h.state_of(&id);
    let mut other = h.bundle();
    other.args(&["true"]);
    h.create(&id, &other).error(&[&id, "already exists"]);
    h.cmd(["run", "--bundle"])
        .arg(other.dir())
        .arg(&id)
        .run()
        .error(&[&id, "already exists"]);
    let again = h.state_of(&id);
    assert_eq!(
        (again.status.as_str(), again.pid, &again.bundle),
        ("created", first.pid, &first.bundle)
    );
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn unknown_id_for_every_command() {
    let h = harun!();
    let id = h.id("ghost");
    for args in [
        vec!["start", &id],
        vec!["state", &id],
        vec!["kill", &id],
        vec!["kill", &id, "KILL"],
        vec!["kill", "--all", &id, "9"],
        vec!["delete", &id],
    ] {
        h.exec(&args).error(&[&id, "does not exist"]);
    }
    h.assert_clean();
}

#[test]
fn bad_container_ids() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    for id in ["a/b", "..", "../escape", "."] {
        h.cmd(["create", "--bundle"])
            .arg(b.dir())
            .arg(id)
            .run()
            .error(&[id]);
        h.cmd(["run", "--bundle"])
            .arg(b.dir())
            .arg(id)
            .run()
            .error(&[id]);
        for cmd in ["state", "start", "delete"] {
            h.exec(&[cmd, id]).error(&[id]);
        }
    }
    assert!(!h.dir().join("escape").exists());
    h.assert_clean();
}

/// Control characters in an ID: refused on one line naming the character (a newline split
/// the error over two lines). runc refuses them too ("invalid container ID format").
#[test]
fn container_ids_with_control_characters() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    for (id, shown) in [
        ("a\nb", r"`a\nb`: the control character `\n`"),
        ("a\tb", r"`a\tb`: the control character `\t`"),
        (
            "x\u{1b}[31m",
            r"`x\u{1b}[31m`: the control character `\u{1b}`",
        ),
        ("cr\r", r"`cr\r`"),
        ("del\u{7f}", r"`del\u{7f}`"),
    ] {
        for cmd in ["create", "run"] {
            h.cmd([cmd, "--bundle"])
                .arg(b.dir())
                .arg(id)
                .run()
                .error(&["invalid container ID", shown]);
        }
        for cmd in ["state", "start", "delete", "kill"] {
            h.exec(&[cmd, id]).error(&["invalid container ID", shown]);
        }
    }
    h.assert_clean();
}

#[test]
fn bad_signal() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("sig");
    h.create(&id, &b).ok();
    for sig in ["SIGBOGUS", "BOGUS", "999", "9x"] {
        h.kill(&id, sig).error(&[sig]);
    }
    assert_eq!(h.state_of(&id).status, "created");
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn bad_log_format() {
    let h = harun!();
    let id = h.id("x");
    h.cmd(["state", &id])
        .global(["--log-format", "xml"])
        .run()
        .error(&["xml"]);
    h.assert_clean();
}

#[test]
fn systemd_cgroup_is_not_supported() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    let id = h.id("systemd");
    h.remember_id(&id);
    h.cmd(["create", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .global(["--systemd-cgroup"])
        .run()
        .error(&["systemd", "not supported"]);
    h.state(&id).error(&["does not exist"]);
    h.assert_clean();
}

#[test]
fn create_without_an_id() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    h.cmd(["create", "--bundle"]).arg(b.dir()).run().error(&[]);
    h.assert_clean();
}

/// `--log F --log-format json`: the failure is appended to F as a runc-style line.
#[test]
fn log_json_gets_a_runc_style_error_line() {
    let h = harun!();
    let mut b = h.bundle();
    b.remove("/process/args");
    let log = h.path("log.json");
    let earlier = r#"{"level":"info","msg":"an earlier line","time":"2026-11-22T00:00:00Z"}"#;
    fs::write(&log, format!("{earlier}\n")).unwrap();
    let id = h.id("logged");
    h.remember_id(&id);
    let out = h
        .cmd(["create", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .global(["--log-format", "json", "--log"])
        .global([&log])
        .run();
    assert_eq!(out.code, 1, "{out}");
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&earlier),
        "the log was not appended to:\n{text}"
    );
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap())
        .unwrap_or_else(|e| panic!("last log line is not JSON ({e}):\n{text}"));
    assert_eq!(last["level"], "error", "{text}");
    assert!(
        last["msg"]
            .as_str()
            .is_some_and(|m| m.contains("process.args")),
        "{text}"
    );
    let time = last["time"]
        .as_str()
        .unwrap_or_else(|| panic!("no time:\n{text}"));
    assert!(
        time.len() >= 20 && time.as_bytes()[4] == b'-' && time.as_bytes()[10] == b'T',
        "time {time:?} is not RFC 3339"
    );
    h.assert_clean();
}

#[test]
fn log_text_gets_the_error_too() {
    let h = harun!();
    let log = h.path("log.txt");
    let id = h.id("ghost");
    let out = h.cmd(["state", &id]).global(["--log"]).global([&log]).run();
    assert_eq!(out.code, 1, "{out}");
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("error") && text.contains("does not exist"),
        "{text:?}"
    );
    h.assert_clean();
}

/// runtime-spec 1.3 fields harun does not implement: refused with the field named, never
/// ignored (oci-spec parses them, so a silent no-op was the old behaviour).
#[test]
fn net_devices_are_refused() {
    bad_config(
        |b| {
            b.set("/linux/netDevices", json!({"eth1": {"name": "eth1"}}));
        },
        &["linux.netDevices", "not supported"],
    );
}

#[test]
fn memory_policy_is_refused() {
    bad_config(
        |b| {
            b.set(
                "/linux/memoryPolicy",
                json!({"mode": "MPOL_BIND", "nodes": "0"}),
            );
        },
        &["linux.memoryPolicy", "not supported"],
    );
}

/// An `exec`'d process is checked like the container's: fields harun cannot apply are
/// refused there too (they were ignored).
#[test]
fn exec_refuses_what_create_refuses() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("execbad");
    h.create(&id, &b).ok();
    h.start(&id).ok();
    for (field, value) in [
        (
            "ioPriority",
            json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}),
        ),
        ("selinuxLabel", json!("system_u:system_r:container_t:s0")),
    ] {
        let mut process = b.config()["process"].clone();
        process["args"] = json!(["true"]);
        process[field] = value;
        let path = h.path("process.json");
        fs::write(&path, process.to_string()).unwrap();
        h.cmd(["exec", "--process"])
            .arg(&path)
            .arg(&id)
            .run()
            .error(&[&format!("process.{field}")]);
    }
    h.delete_force(&id).ok();
    h.assert_clean();
}

/// `exec --process FILE` reads its file as create reads config.json: a FIFO is refused at
/// once instead of hanging the exec.
#[test]
fn exec_process_file_that_is_a_fifo() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("execfifo");
    h.create(&id, &b).ok();
    let fifo = h.path("process.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    h.cmd(["exec", "--process"])
        .arg(&fifo)
        .arg(&id)
        .timeout(Duration::from_secs(20))
        .run()
        .error(&["process.json", "is a FIFO, not a regular file"]);
    h.delete_force(&id).ok();
    h.assert_clean();
}
