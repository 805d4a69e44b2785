//! The container's process as it sees itself: pid, namespaces' names, ids, capabilities,
//! umask, rlimits, no_new_privs, oom_score_adj, env, cwd. Everything is checked from the
//! container's own output.

use harun_integration::caps::{self, CapSets};
use harun_integration::procs::{parse_kv, parse_limits};
use harun_integration::{harun, Bundle, Harun};
use serde_json::json;

fn run(h: &Harun, b: &Bundle) -> String {
    h.run_ok(b)
}

#[test]
fn pid_1_is_the_process_and_proc_shows_only_the_container() {
    let h = harun!();
    let mut b = h.bundle();
    // `set`, `echo` and the glob are shell builtins: no other process exists meanwhile.
    // (`tr` comes first: busybox sh execs a last external command in place of itself.)
    b.sh("tr '\\000' ' ' < /proc/1/cmdline; echo; set -- /proc/[0-9]*; echo \"procs=$*\"; echo pid=$$");
    let out = run(&h, &b);
    let kv = parse_kv(&out);
    assert_eq!(kv["pid"], "1");
    assert_eq!(kv["procs"], "/proc/1");
    assert!(
        out.starts_with("sh -c tr "),
        "pid 1 is not the configured process:\n{out}"
    );
    h.assert_clean();
}

#[test]
fn args_are_looked_up_in_the_container_path_with_env_and_cwd() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["env"])
        .env("GREETING=hello world")
        .set("/process/cwd", "/tmp");
    let out = run(&h, &b);
    let kv = parse_kv(&out);
    assert_eq!(kv["GREETING"], "hello world", "{out}");
    assert_eq!(
        kv["PATH"],
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    // Nothing of harun's or the test's environment leaks in.
    assert!(!kv.contains_key("CARGO_MANIFEST_DIR"), "{out}");

    b.args(&["pwd"]);
    assert_eq!(run(&h, &b), "/tmp\n");
    h.assert_clean();
}

#[test]
fn hostname_and_domainname() {
    let h = harun!();
    let mut b = h.bundle();
    b.set("/hostname", "box-one")
        .set("/domainname", "example.test")
        .sh("echo host=$(hostname); echo domain=$(cat /proc/sys/kernel/domainname)");
    let kv = parse_kv(&run(&h, &b));
    assert_eq!(kv["host"], "box-one");
    assert_eq!(kv["domain"], "example.test");
    h.assert_clean();
}

#[test]
fn uid_gid_additional_gids_and_umask() {
    let h = harun!();
    let mut b = h.bundle();
    b.set("/process/user", json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 65534], "umask": 0o027}))
        .mount("/tmp", "tmpfs", "tmpfs", &["mode=1777"])
        .sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo umask=$(umask); id; touch /tmp/f; stat -c 'file=%a %u:%g' /tmp/f");
    let out = run(&h, &b);
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no {k} in {out}"))
    };
    assert_eq!(field("Uid:"), "1000 1000 1000 1000");
    assert_eq!(field("Gid:"), "1000 1000 1000 1000");
    assert_eq!(field("Groups:"), "5 65534");
    assert!(out.contains("uid=1000(test) gid=1000(test)"), "{out}");
    let kv = parse_kv(&out);
    assert_eq!(kv["umask"], "0027");
    assert_eq!(kv["file"], "640 1000:1000");
    h.assert_clean();
}

#[test]
fn default_umask_is_0022_and_root_has_no_extra_groups() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo umask=$(umask); grep '^Groups:' /proc/self/status; id -u");
    let out = run(&h, &b);
    assert_eq!(parse_kv(&out)["umask"], "0022");
    let groups = out
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .expect("Groups line");
    assert_eq!(groups.trim(), "", "{out}");
    assert!(out.ends_with("0\n"), "{out}");
    h.assert_clean();
}

fn caps_json(c: &CapSets) -> serde_json::Value {
    let names = |m: u64| -> Vec<&str> {
        (0..caps::NAMES.len())
            .filter(|i| m & (1 << i) != 0)
            .map(|i| caps::NAMES[i])
            .collect()
    };
    json!({
        "bounding": names(c.bounding), "effective": names(c.effective),
        "permitted": names(c.permitted), "inheritable": names(c.inheritable),
        "ambient": names(c.ambient),
    })
}

/// Runs `cat /proc/self/status` (a plain exec of busybox) and compares the five sets with
/// what the kernel derives from the configured ones at that exec.
fn check_caps(configured: CapSets, user: serde_json::Value, uid0: bool, nnp: bool) {
    let h = harun!();
    let mut b = h.bundle();
    b.set("/process/capabilities", caps_json(&configured))
        .set("/process/user", user)
        .set("/process/noNewPrivileges", nnp)
        .args(&["cat", "/proc/self/status"]);
    let status = run(&h, &b);
    let got = caps::parse_status(&status).unwrap_or_else(|| panic!("no Cap* lines:\n{status}"));
    let want = caps::after_exec(configured, uid0, nnp);
    assert_eq!(
        got, want,
        "\n got {got:x?}\nwant {want:x?}\nconfigured {configured:x?}"
    );
    let nnp_line = status
        .lines()
        .find(|l| l.starts_with("NoNewPrivs:"))
        .expect("NoNewPrivs line");
    assert_eq!(
        nnp_line.split_whitespace().nth(1),
        Some(if nnp { "1" } else { "0" })
    );
    h.assert_clean();
}

#[test]
fn capabilities_of_root_with_no_new_privileges() {
    let bounding = caps::mask(&[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_AUDIT_WRITE",
    ]);
    let permitted = caps::mask(&[
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
    ]);
    let kill = caps::mask(&["CAP_KILL"]);
    let c = CapSets {
        bounding,
        permitted,
        effective: permitted,
        inheritable: kill,
        ambient: kill,
    };
    check_caps(c, json!({"uid": 0, "gid": 0}), true, true);
}

#[test]
fn capabilities_of_root_without_no_new_privileges() {
    let bounding = caps::mask(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"]);
    let permitted = caps::mask(&["CAP_CHOWN", "CAP_KILL"]);
    let c = CapSets {
        bounding,
        permitted,
        effective: permitted,
        inheritable: 0,
        ambient: 0,
    };
    check_caps(c, json!({"uid": 0, "gid": 0}), true, false);
}

/// A non-root user keeps exactly its ambient set across exec: ambient, inheritable and
/// bounding show up unchanged, permitted and effective become the ambient set.
#[test]
fn capabilities_of_a_user_with_ambient() {
    let bounding = caps::mask(&[
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
        "CAP_NET_RAW",
    ]);
    let permitted = caps::mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]);
    let inheritable = caps::mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let ambient = caps::mask(&["CAP_NET_BIND_SERVICE"]);
    let effective = caps::mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let c = CapSets {
        bounding,
        permitted,
        effective,
        inheritable,
        ambient,
    };
    check_caps(c, json!({"uid": 1000, "gid": 1000}), false, true);
}

/// With no capabilities at all, root cannot do what root usually can.
#[test]
fn no_capabilities_means_no_privilege() {
    let h = harun!();
    let mut b = h.bundle();
    b.remove("/process/capabilities")
        .set("/root/readonly", false)
        .sh("grep -E '^Cap(Eff|Bnd)' /proc/self/status; touch /tmp/x; chown 1000 /tmp/x && echo chown=ok || echo chown=denied");
    let out = run(&h, &b);
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("CapBnd:\t0000000000000000"), "{out}");
    assert_eq!(parse_kv(&out)["chown"], "denied", "{out}");
    h.assert_clean();
}

#[test]
fn rlimits() {
    let h = harun!();
    let mut b = h.bundle();
    b.set(
        "/process/rlimits",
        json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
            {"type": "RLIMIT_MSGQUEUE", "soft": 8192, "hard": 16384},
        ]),
    )
    .args(&["cat", "/proc/self/limits"]);
    let limits = parse_limits(&run(&h, &b));
    let get = |name: &str| {
        limits
            .iter()
            .find(|l| l.0 == name)
            .map(|l| (l.1.as_str(), l.2.as_str()))
            .unwrap_or_else(|| panic!("no {name} in {limits:?}"))
    };
    assert_eq!(get("Max open files"), ("512", "1024"));
    assert_eq!(get("Max core file size"), ("0", "4096"));
    assert_eq!(get("Max msgqueue size"), ("8192", "16384"));
    h.assert_clean();
}

#[test]
fn oom_score_adj() {
    let h = harun!();
    let mut b = h.bundle();
    b.set("/process/oomScoreAdj", 123)
        .args(&["cat", "/proc/self/oom_score_adj"]);
    assert_eq!(run(&h, &b), "123\n");
    b.set("/process/oomScoreAdj", 500);
    assert_eq!(run(&h, &b), "500\n");
    h.assert_clean();
}

/// No file descriptor of harun or of the test process reaches the container: besides 0-2
/// only the directory `ls` itself opens to list /proc/self/fd.
#[test]
fn only_stdio_is_inherited() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["ls", "-l", "/proc/self/fd/"]);
    let out = run(&h, &b);
    let links: Vec<(u32, &str)> = out
        .lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            Some((left.split_whitespace().last()?.parse().ok()?, target))
        })
        .collect();
    assert!(links.iter().any(|(fd, _)| *fd == 2), "{out}");
    let extra: Vec<_> = links
        .iter()
        .filter(|(fd, t)| *fd > 2 && !t.ends_with("/fd"))
        .collect();
    assert!(
        extra.is_empty(),
        "fds leaked into the container: {extra:?}\n{out}"
    );
    h.assert_clean();
}
