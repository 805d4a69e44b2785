//! `harun exec`: a second process enters a running container. It shares every namespace and
//! the cgroup of the container's init, carries its own process config (user, env, cwd,
//! capabilities, rlimits, no_new_privs, terminal), and harun reports its exit code, its pid
//! (--detach --pid-file) or a clear error.

use std::fs;
use std::time::{Duration, Instant};

use harun_integration::caps::{self, CapSets};
use harun_integration::console::{read_until, write_all, ConsoleSocket};
use harun_integration::hostfs;
use harun_integration::procs::{self, parse_kv, ProcId};
use harun_integration::{harun, Bundle, Harun};
use serde_json::json;

const T: Duration = Duration::from_secs(20);

/// Creates and starts `b` as `name`; returns the ID and the init's host pid.
fn start(h: &Harun, name: &str, b: &Bundle) -> (String, i32) {
    let id = h.id(name);
    h.create(&id, b).ok();
    h.start(&id).ok();
    let st = h.wait_status(&id, "running");
    (id, st.pid)
}

/// A container whose init sleeps (pid 1 is `sleep 600`, exec'd directly).
fn sleeper(h: &Harun) -> Bundle {
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    b
}

fn ns_link(pid: i32, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .to_string_lossy()
        .into_owned()
}

fn status_field(pid: i32, key: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

fn read_pid(path: &std::path::Path) -> i32 {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {} holds {text:?}: {e}", path.display()))
}

fn wait_dead(p: ProcId) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.is_alive() {
        assert!(Instant::now() < deadline, "process {} did not die", p.pid);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `delete --force` while reaping `orphans`: processes exec'd with --detach are reparented
/// to the test (the subreaper, as containerd's shim would be), and the dying init waits until
/// every process of its pid namespace has been reaped by its parent.
fn delete_reaping(h: &Harun, id: &str, orphans: &[ProcId]) {
    std::thread::scope(|s| {
        let reaper = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while orphans.iter().any(ProcId::is_alive) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        h.delete_force(id).ok();
        reaper.join().unwrap();
    });
    for p in orphans {
        assert!(!p.is_alive(), "process {} outlived its container", p.pid);
    }
}

/// Reaps zombie children of this test that are harun processes inside a container's pid
/// namespace (NSpid has two entries): processes `harun exec` started but never reaped. Run
/// when a test found one, so the container can still die (its init waits until every process
/// of its namespace is reaped) and the cleanup works. The runner's own harun children have a
/// single NSpid entry and are left to their waiters.
fn reap_stray_exec_zombies() {
    let me = std::process::id().to_string();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        if field("Name") == "harun"
            && field("State").starts_with('Z')
            && field("PPid") == me
            && field("NSpid").split_whitespace().count() == 2
        {
            procs::reap(pid);
        }
    }
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup_of_the_container() {
    let h = harun!();
    let mut b = sleeper(&h);
    b.set("/hostname", "exec-box")
        .mount("/scratch", "tmpfs", "tmpfs", &["size=1m"]);
    let (id, init) = start(&h, "join", &b);
    let script = "for n in pid mnt uts ipc net cgroup; do echo ns_$n=$(readlink /proc/self/ns/$n); done; \
                  echo pid1=$(tr '\\000' ' ' < /proc/1/cmdline); \
                  echo host=$(hostname); \
                  echo scratch=$(grep ' /scratch ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1); \
                  echo cg_self=$(cat /proc/self/cgroup); echo cg_init=$(cat /proc/1/cgroup); \
                  echo written > /scratch/from-exec";
    let out = h.exec(&["exec", &id, "sh", "-c", script]).ok();
    let kv = parse_kv(&out.stdout);
    for ns in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        assert_eq!(
            kv[&format!("ns_{ns}")],
            ns_link(init, ns),
            "the exec'd process is not in the init's {ns} namespace:\n{out}"
        );
    }
    assert_eq!(
        kv["pid1"], "sleep 600",
        "pid 1 as the exec'd process sees it:\n{out}"
    );
    assert_eq!(kv["host"], "exec-box");
    assert_eq!(
        kv["scratch"], "tmpfs",
        "the init's /scratch mount is not visible:\n{out}"
    );
    assert_eq!(
        kv["cg_self"], kv["cg_init"],
        "not in the init's cgroup:\n{out}"
    );
    // The same mount, not a copy: a second exec reads what the first one wrote.
    let again = h.exec(&["exec", &id, "cat", "/scratch/from-exec"]).ok();
    assert_eq!(again.stdout, "written\n");
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn exec_runs_with_its_own_user_env_and_cwd() {
    let h = harun!();
    let (id, init) = start(&h, "own", &sleeper(&h));
    let show = "echo uid=$(id -u); echo gid=$(id -g); echo foo=$FOO; echo term=$TERM; \
                echo cwd=$(pwd); echo path=$PATH";
    let out = h
        .exec(&[
            "exec",
            "--user",
            "1000:1000",
            "--env",
            "FOO=bar",
            "--env",
            "TERM=dumb",
            "--cwd",
            "/tmp",
            &id,
            "sh",
            "-c",
            show,
        ])
        .ok();
    let kv = parse_kv(&out.stdout);
    assert_eq!(kv["uid"], "1000", "{out}");
    assert_eq!(kv["gid"], "1000", "{out}");
    assert_eq!(kv["foo"], "bar", "{out}");
    assert_eq!(
        kv["term"], "dumb",
        "--env replaces the container's TERM:\n{out}"
    );
    assert_eq!(kv["cwd"], "/tmp", "{out}");
    assert_eq!(
        kv["path"], "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "the container's other variables stay:\n{out}"
    );

    // The flags changed that process only: a plain exec gets the container's process.
    let plain = h.exec(&["exec", &id, "sh", "-c", show]).ok();
    let kv = parse_kv(&plain.stdout);
    assert_eq!(
        (kv["uid"].as_str(), kv["gid"].as_str()),
        ("0", "0"),
        "{plain}"
    );
    assert_eq!(kv["foo"], "", "{plain}");
    assert_eq!(kv["term"], "xterm", "{plain}");
    assert_eq!(kv["cwd"], "/", "{plain}");
    // ... and the init kept its own.
    let environ = fs::read(format!("/proc/{init}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains("FOO=bar"));
    assert_eq!(status_field(init, "Uid"), "0\t0\t0\t0");
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn exec_cap_adds_a_capability_to_that_process_only() {
    let h = harun!();
    let (id, _) = start(&h, "cap", &sleeper(&h));
    let ptrace = caps::mask(&["CAP_SYS_PTRACE"]);
    let with = h
        .exec(&[
            "exec",
            "--cap",
            "CAP_SYS_PTRACE",
            &id,
            "cat",
            "/proc/self/status",
        ])
        .ok();
    let sets = caps::parse_status(&with.stdout).expect("capability lines");
    for (name, set) in [
        ("bounding", sets.bounding),
        ("permitted", sets.permitted),
        ("effective", sets.effective),
    ] {
        assert_ne!(
            set & ptrace,
            0,
            "CAP_SYS_PTRACE not in the {name} set: {sets:x?}"
        );
    }
    let without = h.exec(&["exec", &id, "cat", "/proc/self/status"]).ok();
    let sets = caps::parse_status(&without.stdout).expect("capability lines");
    let default = caps::mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(sets.bounding, default, "{sets:x?}");
    assert_eq!(sets.effective, default, "{sets:x?}");
    h.exec(&["exec", "--cap", "CAP_NOT_A_CAP", &id, "true"])
        .error(&["CAP_NOT_A_CAP"]);
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn exec_exit_code_propagates() {
    let h = harun!();
    let (id, _) = start(&h, "code", &sleeper(&h));
    h.exec(&["exec", &id, "true"]).exit(0);
    h.exec(&["exec", &id, "sh", "-c", "exit 7"]).exit(7);
    // Killed by a signal: 128 + the signal number, as runc and shells report it.
    h.exec(&["exec", &id, "sh", "-c", "kill -KILL $$"])
        .exit(137);
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn exec_detach_writes_the_pid_of_a_process_inside_the_container() {
    let h = harun!();
    let (id, init) = start(&h, "detach", &sleeper(&h));
    let pid_file = h.path("exec.pid");
    let t0 = Instant::now();
    let out = h
        .cmd(["exec", "--detach", "--pid-file"])
        .arg(&pid_file)
        .args([id.as_str(), "sleep", "500"])
        .run()
        .ok();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "--detach did not return at once:\n{out}"
    );
    let pid = read_pid(&pid_file);
    h.track(pid);
    let p = ProcId::of(pid).unwrap_or_else(|| panic!("pid {pid} from the pid file is not alive"));
    assert!(p.is_alive(), "pid {pid} from the pid file is not alive");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, b"sleep\x00500\x00",
        "the pid file names another process"
    );
    for ns in ["pid", "mnt", "net", "uts", "ipc", "cgroup"] {
        assert_eq!(
            ns_link(pid, ns),
            ns_link(init, ns),
            "{ns} namespace differs"
        );
    }
    // In the container's pid namespace it has a second, small pid (not 1: that is the init).
    let nspid: Vec<String> = status_field(pid, "NSpid")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(nspid.len(), 2, "NSpid {nspid:?}");
    assert_eq!(nspid[0], pid.to_string());
    assert_ne!(nspid[1], "1");
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap(),
        "the detached process is not in the container's cgroup"
    );
    // The container sees it too.
    let seen = h
        .exec(&["exec", &id, "cat", &format!("/proc/{}/cmdline", nspid[1])])
        .ok();
    assert_eq!(seen.stdout.as_bytes(), b"sleep\x00500\x00");
    // It dies with the container (its pid namespace goes with the init).
    delete_reaping(&h, &id, &[p]);
    h.assert_clean();
}

#[test]
fn exec_with_a_tty_and_a_console_socket_drives_a_shell() {
    let h = harun!();
    let (id, _) = start(&h, "tty", &sleeper(&h));
    let sock = ConsoleSocket::bind(&h.path("console.sock"));
    let run = h
        .cmd(["exec", "--tty", "--console-socket"])
        .arg(sock.path())
        .args([id.as_str(), "sh"])
        .spawn();
    let master = match sock.receive_master(T) {
        Ok(fd) => fd,
        Err(e) => panic!("{e}\n{}", run.wait()),
    };
    write_all(&master, "tty; echo hello-$((1+2)); exit 5\n").unwrap();
    let seen = read_until(&master, "hello-3", T).unwrap();
    assert!(seen.contains("/dev/pts/"), "stdin is not a pty: {seen:?}");
    let out = run.wait().exit(5);
    assert_eq!(out.stdout, "", "output went around the terminal");
    // --tty without a console socket is refused when detached (nobody could take the pty).
    h.exec(&["exec", "--tty", "--detach", &id, "sh"])
        .error(&["console"]);
    h.delete_force(&id).ok();
    h.assert_clean();
}

/// A process JSON as containerd's shim writes it for `ctr task exec` / a Kubernetes exec.
#[test]
fn exec_process_file_like_containerd_writes_it() {
    let h = harun!();
    let (id, _) = start(&h, "procjson", &sleeper(&h));
    let nbs = ["CAP_NET_BIND_SERVICE"];
    let bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let script = "echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G); echo cwd=$(pwd); \
                  echo from=$FROM_PROCESS_JSON; echo term=$TERM; \
                  echo nofile=$(grep 'Max open files' /proc/self/limits | tr -s ' ' | cut -d' ' -f4,5); \
                  echo oom=$(cat /proc/self/oom_score_adj); cat /proc/self/status";
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
        "args": ["sh", "-c", script],
        "env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=harun",
            "FROM_PROCESS_JSON=yes",
            format!("{}={}", harun_integration::TAG_ENV, h.tag()),
        ],
        "cwd": "/home/test",
        "capabilities": {
            "bounding": bounding,
            "effective": nbs,
            "inheritable": nbs,
            "permitted": nbs,
            "ambient": nbs
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}],
        "noNewPrivileges": true,
        "oomScoreAdj": 500
    });
    let file = h.path("process.json");
    fs::write(&file, serde_json::to_string_pretty(&process).unwrap()).unwrap();
    let out = h.cmd(["exec", "--process"]).arg(&file).arg(&id).run().ok();
    let kv = parse_kv(&out.stdout);
    assert_eq!(kv["uid"], "1000", "{out}");
    assert_eq!(kv["gid"], "1000", "{out}");
    assert_eq!(kv["groups"], "1000 5", "{out}");
    assert_eq!(kv["cwd"], "/home/test", "{out}");
    assert_eq!(kv["from"], "yes", "{out}");
    assert_eq!(
        kv["term"], "",
        "the container's env leaked into a --process exec:\n{out}"
    );
    assert_eq!(kv["nofile"], "256 512", "{out}");
    assert_eq!(kv["oom"], "500", "{out}");
    let status = parse_kv(&out.stdout.replace(":\t", "="));
    assert_eq!(status["NoNewPrivs"], "1", "{out}");
    let n = caps::mask(&nbs);
    let configured = CapSets {
        inheritable: n,
        permitted: n,
        effective: n,
        bounding: caps::mask(&bounding),
        ambient: n,
    };
    let want = caps::after_exec(configured, false, true);
    let got = caps::parse_status(&out.stdout).expect("capability lines");
    assert_eq!(
        got, want,
        "capabilities (hex) got {got:x?} want {want:x?}\n{out}"
    );

    // A broken process file names the file and the field.
    let bad = h.path("bad-process.json");
    fs::write(
        &bad,
        r#"{"args": ["true"], "cwd": "/", "user": {"uid": "root"}}"#,
    )
    .unwrap();
    h.cmd(["exec", "--process"])
        .arg(&bad)
        .arg(&id)
        .run()
        .error(&["uid"]);
    h.delete_force(&id).ok();
    h.assert_clean();
}

/// `--preserve-fds N` passes fds 3..3+N of harun's caller into the process; without it no
/// fd of the caller's beyond stdio gets in.
#[test]
fn exec_preserve_fds_passes_exactly_the_extra_fds() {
    let h = harun!();
    let (id, _) = start(&h, "fds", &sleeper(&h));
    let input = h.path("fd3-input");
    let output = h.path("fd4-output");
    fs::write(&input, "from-fd-3\n").unwrap();
    let wrapper = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!(
            "exec 3<'{}' 4>'{}'; exec \"$0\" \"$@\"",
            input.display(),
            output.display()
        ),
    ];
    // `ls` lists the fds it has, plus the one it opened on /proc/self/fd (the next free).
    let out = h
        .cmd(["exec", "--preserve-fds", "2", &id, "sh", "-c"])
        .arg("cat <&3; echo via-fd-4 >&4; ls /proc/self/fd | tr '\\n' ' '")
        .wrap(wrapper.clone())
        .run()
        .ok();
    assert_eq!(out.stdout, "from-fd-3\n0 1 2 3 4 5 ", "{out}");
    assert_eq!(fs::read_to_string(&output).unwrap(), "via-fd-4\n");

    let out = h
        .cmd(["exec", &id, "ls", "/proc/self/fd"])
        .wrap(wrapper)
        .run()
        .ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "fds of harun's caller reached the process without --preserve-fds:\n{out}"
    );
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn exec_into_an_unknown_or_stopped_container_is_a_clear_error() {
    let h = harun!();
    let unknown = h.id("no-such");
    h.exec(&["exec", &unknown, "true"])
        .error(&[&unknown, "does not exist"]);

    let mut b = h.bundle();
    b.args(&["true"]);
    let id = h.id("stopped");
    h.create(&id, &b).ok();
    h.start(&id).ok();
    h.wait_status(&id, "stopped");
    h.exec(&["exec", &id, "true"]).error(&[&id, "stopped"]);
    h.exec(&["exec", "--detach", &id, "true"])
        .error(&[&id, "stopped"]);
    h.delete(&id).ok();
    h.assert_clean();
}

#[test]
fn exec_bad_requests_are_clear_errors_and_leave_the_container_alone() {
    let h = harun!();
    let (id, init) = start(&h, "badexec", &sleeper(&h));
    h.exec(&["exec", &id]).error(&["command"]);
    h.exec(&["exec", &id, "no-such-program"])
        .error(&["no-such-program"]);
    h.exec(&["exec", &id, "/etc"])
        .error(&["process.args[0]", "/etc", "Is a directory"]);
    h.exec(&["exec", &id, "/etc/passwd"]).error(&[
        "process.args[0]",
        "/etc/passwd",
        "Permission denied",
    ]);
    h.exec(&["exec", "--cwd", "/no/such/dir", &id, "true"])
        .error(&["/no/such/dir"]);
    h.exec(&["exec", "--user", "no-such-user", &id, "true"])
        .error(&["--user `no-such-user`: no user `no-such-user`"]);
    h.exec(&["exec", "--cwd", "relative/dir", &id, "true"])
        .error(&["cwd"]);
    assert_eq!(h.state_of(&id).status, "running");
    assert!(ProcId::of(init).is_some_and(|p| p.is_alive()));
    // (A failed exec may leave an unreaped process: exec_leaves_nothing_behind checks that.)
    reap_stray_exec_zombies();
    h.delete_force(&id).ok();
    h.assert_clean();
}

/// (uid_t)-1 is "leave unchanged" to setresuid: `--user 4294967295` would run the process as
/// root. Ids above 2^31-1 are refused from the flags and from a `--process` file alike,
/// before anything runs.
#[test]
fn exec_refuses_ids_above_2_31_minus_1() {
    let h = harun!();
    let (id, init) = start(&h, "bigid", &sleeper(&h));
    // Had it run, the process would print its uid.
    let probe = ["sh", "-c", "id -u"];
    for flags in [
        &["--user", "4294967295:4294967295"][..],
        &["--user", "1000:2147483648"],
        &["--additional-gids", "4294967295"],
    ] {
        let out = h
            .cmd(["exec"])
            .args(flags)
            .arg(&id)
            .args(probe)
            .run()
            .error(&[flags[0], "out of range"]);
        assert_eq!(out.stdout, "", "{out}");
    }
    let process = json!({
        "args": probe,
        "cwd": "/",
        "user": {"uid": 4294967295u32, "gid": 4294967295u32},
        "env": [format!("{}={}", harun_integration::TAG_ENV, h.tag())]
    });
    let file = h.path("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = h
        .cmd(["exec", "--process"])
        .arg(&file)
        .arg(&id)
        .run()
        .error(&["user.uid", "out of range", &file.to_string_lossy()]);
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(h.state_of(&id).status, "running");
    assert!(ProcId::of(init).is_some_and(|p| p.is_alive()));
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn exec_after_the_init_died_is_a_clear_error() {
    let h = harun!();
    let (id, init) = start(&h, "dead", &sleeper(&h));
    let p = ProcId::of(init).expect("init alive");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(init), nix::sys::signal::SIGKILL).unwrap();
    wait_dead(p);
    h.exec(&["exec", &id, "true"]).error(&[&id, "stopped"]);
    assert_eq!(h.state_of(&id).status, "stopped");
    h.delete(&id).ok();
    h.assert_clean();
}

/// Execs that succeed, fail and detach leave no process, file or state behind in the
/// container or its state dir.
#[test]
fn exec_leaves_nothing_behind() {
    let h = harun!();
    let (id, _) = start(&h, "tidy", &sleeper(&h));
    let state_dir = h.root().join(&id);
    let listing = |dir: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let before = listing(&state_dir);
    h.exec(&["exec", &id, "true"]).ok();
    h.exec(&["exec", &id, "sh", "-c", "exit 3"]).exit(3);
    // Processes that fail before their exec (the failure races with harun learning their
    // pid): none may stay behind, not even as a zombie.
    for _ in 0..10 {
        h.exec(&["exec", &id, "no-such-program"])
            .error(&["no-such-program"]);
        h.exec(&["exec", "--cwd", "/no/such/dir", &id, "true"])
            .error(&["/no/such/dir"]);
    }
    // The same, certain: the joining process is held still right after it forked the
    // process, so the process's error reaches harun before its pid does.
    h.cmd(["exec", id.as_str(), "no-such-program"])
        .wrap(hostfs::strace_delay("clone3", true, 300_000))
        .run()
        .error(&["no-such-program"]);
    let pid_file = h.path("short.pid");
    h.cmd(["exec", "--detach", "--pid-file"])
        .arg(&pid_file)
        .args([id.as_str(), "true"])
        .run()
        .ok();
    let short = read_pid(&pid_file);
    let deadline = Instant::now() + Duration::from_secs(10);
    while procs::stat(short).is_some_and(|(s, _)| s != 'Z') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    procs::reap(short);
    assert_eq!(listing(&state_dir), before, "exec changed the state dir");
    // Only the init and the lister itself are in the container.
    let out = h
        .exec(&[
            "exec",
            &id,
            "sh",
            "-c",
            "set -- /proc/[0-9]*; echo \"$*\"; head -c 40 /proc/[0-9]*/stat >&2",
        ])
        .ok();
    let procs: Vec<&str> = out.stdout.split_whitespace().collect();
    if procs.len() != 2 {
        reap_stray_exec_zombies();
    }
    assert_eq!(
        procs.len(),
        2,
        "processes left in the container: {procs:?}\n{out}"
    );
    assert!(procs.contains(&"/proc/1"), "{procs:?}");
    h.delete_force(&id).ok();
    h.assert_clean();
}
