//! Attacks from inside a container that must fail, one per class of known runtime escape:
//!
//! 1. exe overwrite (CVE-2019-5736): a container process opens /proc/PID/exe of a harun
//!    process entering the container, and writes the host's harun binary through it later.
//! 2. leaked host fds (CVE-2024-21626): a host fd that survives into the container, or a cwd
//!    reached through one (/proc/self/fd/N), puts the process outside its rootfs.
//! 3. symlinked mount destinations (CVE-2021-30465): a mount target that is a symlink to a
//!    host path must be resolved inside the rootfs.
//! 4. masked /proc paths, read-only /proc/sys, no_new_privs against setuid binaries.
//!
//! Each attack has a control showing the check can see the attack work when the defence is
//! not there (a process it can open, an unmasked path, a writable /proc/sys, setuid without
//! no_new_privs). The exe tests run a copy of the harun binary, so a successful attack
//! damages only the copy.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harun_integration::hostfs::{self, install, share_host_usr};
use harun_integration::procs::parse_kv;
use harun_integration::{busybox_path, harun, mountinfo, Bundle, Harun, TempDir};
use serde_json::json;

fn wait_for(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn fds_of(pid: i32) -> Vec<(u32, String)> {
    let mut fds: Vec<(u32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"))
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?;
            Some((n, target.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort();
    fds
}

// ---------------------------------------------------------------------------------------
// 1. exe overwrite (CVE-2019-5736 class)

/// The attacker, pid 1 of the container: scans /proc/[0-9]*/exe over and over. Every exe it
/// can open that is not busybox is logged (OPEN; the control program: CONTROL) and a
/// background job keeps that fd and tries to reopen it for writing through /proc/self/fd/3
/// until the file is no longer busy, appending a line on success (WROTE). A harun process it
/// sees but cannot open is logged as DENIED. /results/stop ends the scan.
const ATTACK: &str = r#"
log=/results/log
echo started > /results/started
while [ ! -e /results/stop ]; do
  for p in /proc/[0-9]*; do
    [ "$p" = "/proc/$$" ] && continue
    if ! {
      t=$(readlink /proc/self/fd/3)
      case "$t" in
        /bin/busybox) ;;
        /ctl/sleep) echo "CONTROL $p $t" >> $log ;;
        *)
          echo "OPEN $p $t" >> $log
          ( i=0
            while [ $i -lt 100 ]; do
              i=$((i+1))
              if { echo ATTACKED-FROM-THE-CONTAINER; } 2>/dev/null >> /proc/self/fd/3; then
                echo "WROTE $t" >> $log
                exit 0
              fi
              sleep 0.05
            done
            echo "NOWRITE $t" >> $log ) &
          ;;
      esac
      true
    } 2>/dev/null 3< "$p/exe"; then
      case "$(tr '\000' ' ' < "$p/cmdline" 2>/dev/null)" in
        *harun*) echo "DENIED $p" >> $log ;;
      esac
    fi
  done
done
wait
echo stopped > /results/stopped
"#;

/// A harun runner on a private copy of the binary, and the copy's path.
fn harun_copy() -> (TempDir, Harun, PathBuf) {
    let dir = TempDir::new("harun-bin").expect("temp dir for the harun copy");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("harun");
    install(Path::new(env!("CARGO_BIN_EXE_harun")), &copy, 0o755).expect("copy harun");
    let h = Harun::new(&copy);
    (dir, h, copy)
}

struct Attack {
    id: String,
    results: PathBuf,
}

/// Starts the attacker container: an image with a glibc userland (the host's /usr), so the
/// harun binary could run in it, and a copy of busybox at /ctl/sleep as the control.
fn start_attacker(h: &Harun, extra: impl FnOnce(&mut Bundle)) -> Attack {
    let results = h.path("results");
    fs::create_dir(&results).unwrap();
    fs::set_permissions(&results, fs::Permissions::from_mode(0o777)).unwrap();
    let mut b = h.bundle();
    share_host_usr(&mut b);
    hostfs::set_env(&mut b, "PATH", "/bin:/usr/bin");
    fs::create_dir(b.rootfs().join("results")).unwrap();
    install(&busybox_path(), &b.rootfs().join("ctl/sleep"), 0o755).unwrap();
    b.write_file("attack.sh", ATTACK)
        .mount(
            "/results",
            "bind",
            &results.to_string_lossy(),
            &["rbind", "rw"],
        )
        .args(&["/bin/sh", "/attack.sh"]);
    extra(&mut b);
    let id = h.id("attacker");
    h.create(&id, &b).ok();
    h.start(&id).ok();
    assert!(
        wait_for(&results.join("started"), Duration::from_secs(10)),
        "the attacker did not start"
    );
    // The control: a process that is not protected; the scan must catch it within 1 s.
    h.exec(&["exec", &id, "/ctl/sleep", "1"]).ok();
    Attack { id, results }
}

/// Stops the scan, waits for pending write attempts, and returns the log.
fn finish_attack(h: &Harun, a: &Attack) -> String {
    fs::write(a.results.join("stop"), "").unwrap();
    assert!(
        wait_for(&a.results.join("stopped"), Duration::from_secs(30)),
        "the attacker did not stop"
    );
    let log = fs::read_to_string(a.results.join("log")).unwrap_or_default();
    h.delete_force(&a.id).ok();
    h.assert_clean();
    log
}

/// Runs `harun exec` under strace with a second of delay injected at `syscall`: the
/// processes harun forks stay in place there (right before the exec into the container's
/// program, or right before exit), as an attacker who can slow the runtime down would
/// arrange. This makes the window the race above must hit certain.
fn held_exec(h: &Harun, syscall: &str, args: &[&str]) -> i32 {
    let wrapper = hostfs::strace_delay(syscall, false, 1_000_000);
    h.cmd(["exec"])
        .args(args.iter().copied())
        .wrap(wrapper)
        .run()
        .code
}

fn lines<'a>(log: &'a str, tag: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.starts_with(tag)).collect()
}

/// The log for a failure message: the first distinct lines and how many of each kind.
fn summary(log: &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for l in log.lines() {
        if !seen.contains(&l) && seen.len() < 12 {
            seen.push(l);
        }
    }
    let counts: Vec<String> = ["CONTROL", "DENIED", "OPEN", "WROTE", "NOWRITE"]
        .iter()
        .map(|t| format!("{t}: {}", lines(log, t).len()))
        .collect();
    format!("{}\n{}", counts.join(", "), seen.join("\n"))
}

/// Processes entering the container (`harun exec`) are never open-able through
/// /proc/PID/exe, not even while held still right before their exec.
#[test]
fn exe_of_processes_entering_the_container_cannot_be_opened() {
    let (_bin_dir, h, copy) = harun_copy();
    let before = fs::read(&copy).unwrap();
    let a = start_attacker(&h, |_| {});
    for _ in 0..30 {
        h.exec(&["exec", &a.id, "true"]).ok();
    }
    for _ in 0..2 {
        assert_eq!(held_exec(&h, "execve", &[&a.id, "true"]), 0);
    }
    let log = finish_attack(&h, &a);
    assert!(
        !lines(&log, "CONTROL").is_empty(),
        "the scan never opened the control process: the attack does not work, so it proves \
         nothing\n{}",
        summary(&log)
    );
    assert!(
        !lines(&log, "DENIED").is_empty(),
        "the scan never saw a held harun process\n{}",
        summary(&log)
    );
    assert!(
        lines(&log, "OPEN").is_empty() && lines(&log, "WROTE").is_empty(),
        "a container process opened a harun exe:\n{}",
        summary(&log)
    );
    assert!(
        fs::read(&copy).unwrap() == before,
        "the harun binary changed"
    );
}

/// The CVE-2019-5736 exploit itself: the image's program is `#!/proc/self/exe`, so when
/// harun execs it the kernel runs the binary harun itself was started from — in the
/// container, with the container's credentials and dumpable again after exec. A container
/// process that opens that process's /proc/PID/exe then holds the host's harun binary and can
/// write it once harun exits.
#[test]
fn an_image_program_that_is_proc_self_exe_cannot_reach_the_harun_binary() {
    let (_bin_dir, h, copy) = harun_copy();
    let before = fs::read(&copy).unwrap();
    let a = start_attacker(&h, |b| {
        b.write_file("opt/app/run", "#!/proc/self/exe\n");
        let run = b.rootfs().join("opt/app/run");
        fs::set_permissions(run, fs::Permissions::from_mode(0o755)).unwrap();
    });
    for _ in 0..20 {
        // Whatever the program does, harun's answer does not matter here.
        let _ = h.exec(&["exec", &a.id, "/opt/app/run"]);
    }
    let _ = held_exec(&h, "exit_group", &[&a.id, "/opt/app/run"]);
    let log = finish_attack(&h, &a);
    assert!(
        !lines(&log, "CONTROL").is_empty(),
        "the scan never opened the control process: the attack does not work, so it proves \
         nothing\n{}",
        summary(&log)
    );
    let changed = fs::read(&copy).unwrap() != before;
    // The container can run harun's binary this way and read it (as with runc's read-only
    // bind); what it must never do is open it for writing: harun maps itself from a read-only
    // mount, so every attempt ends in NOWRITE (EROFS), none in WROTE.
    let opened = lines(&log, "OPEN");
    assert!(
        lines(&log, "WROTE").is_empty() && lines(&log, "NOWRITE").len() == opened.len() && !changed,
        "a container process could write the harun binary {} (binary changed: {changed}):\n{}",
        copy.display(),
        summary(&log)
    );
}

/// What the exe guard must leave as it found it, apart from the binary's mount, in a harun
/// process that re-executed itself (runtime/src/exe_guard.rs): its pid `pid` runs `copy`
/// from a read-only mount, keeps its name and argv, holds no fd on the binary.
fn assert_reexecuted(pid: i32, copy: &Path, what: &str) {
    let exe = format!("/proc/{pid}/exe");
    let st = nix::sys::statvfs::statvfs(exe.as_str()).unwrap();
    assert!(
        st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "{what}: {exe} is on a writable mount"
    );
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim_end(), "harun", "{what}: the process name");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap();
    assert_eq!(
        argv0,
        copy.as_os_str().as_encoded_bytes(),
        "{what}: argv[0]"
    );
    let bin = fs::metadata(copy).unwrap();
    for (n, target) in fds_of(pid) {
        let Ok(m) = fs::metadata(format!("/proc/{pid}/fd/{n}")) else {
            continue;
        };
        assert!(
            (m.dev(), m.ino()) != (bin.dev(), bin.ino()),
            "{what}: fd {n} ({target}) is the harun binary"
        );
    }
}

/// Runs the exe guard's checks through `wrapper` (empty: none): a `create` (its init,
/// blocked before the exec, is a clone of the re-executed harun) and a foreground `run`
/// (the harun process itself, looked at while its container sleeps).
fn check_exe_guard(h: &Harun, copy: &Path, wrapper: &[String], what: &str) {
    let cwd = h.path("cwd");
    fs::create_dir(&cwd).unwrap();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);

    // A relative pid file lands in the caller's working directory.
    let id = h.id("guard-create");
    h.remember_id(&id);
    h.cmd(["create", "--pid-file", "init.pid", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .cwd(&cwd)
        .wrap(wrapper.to_vec())
        .run()
        .ok();
    let init: i32 = fs::read_to_string(cwd.join("init.pid"))
        .unwrap_or_else(|e| panic!("{what}: no pid file in the working directory: {e}"))
        .trim()
        .parse()
        .unwrap();
    h.track(init);
    assert_reexecuted(init, copy, &format!("{what}, the created init"));
    h.delete_force(&id).ok();

    let id = h.id("guard-run");
    h.remember_id(&id);
    let run = h
        .cmd(["run", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .cwd(&cwd)
        .wrap(wrapper.to_vec())
        .spawn();
    let init = h.wait_status(&id, "running").pid;
    // Once the container's program runs, its environment is the spec's only.
    let environ = fs::read(format!("/proc/{init}/environ")).unwrap();
    assert!(
        !String::from_utf8_lossy(&environ).contains("_HARUN_RO"),
        "{what}: the exe guard's variable reached the container"
    );
    let pid = run.pid();
    assert_reexecuted(pid, copy, &format!("{what}, `run`"));
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
    assert_eq!(
        ns(&pid.to_string()),
        ns("self"),
        "{what}: `run` is not in its caller's mount namespace"
    );
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        cwd,
        "{what}: `run` changed its working directory"
    );
    h.kill(&id, "KILL").ok();
    run.wait();
    h.assert_clean();
    assert!(
        mountinfo::mounts_under(Path::new("/"))
            .iter()
            .all(|m| !m.contains("harun-bin")),
        "{what}: a mount of the harun copy was left in the caller's namespace"
    );
}

/// Linux >= 5.12: harun runs itself from a detached read-only mount of its binary.
#[test]
fn harun_reexecutes_itself_from_a_read_only_mount_and_changes_nothing_else() {
    let (_bin_dir, h, copy) = harun_copy();
    check_exe_guard(&h, &copy, &[], "open_tree");
}

/// Without open_tree(2) or mount_setattr(2) (older kernels, seccomp filters) harun falls
/// back to a read-only bind in a throwaway mount namespace, and the same holds.
#[test]
fn without_the_new_mount_api_harun_falls_back_to_a_read_only_bind() {
    assert!(
        hostfs::host_has("strace"),
        "this test injects syscall errors with strace: apt-get install strace"
    );
    let (_bin_dir, h, copy) = harun_copy();
    for (syscall, errno) in [("open_tree", "ENOSYS"), ("mount_setattr", "EPERM")] {
        let log = h.path(&format!("strace-{syscall}"));
        // -D: strace runs as a grandchild, harun keeps the spawned pid; -A: one log for
        // both commands.
        let wrapper: Vec<String> = [
            "strace",
            "-D",
            "-qq",
            "-A",
            "-o",
            &log.to_string_lossy(),
            "-e",
            "trace=open_tree,mount_setattr,unshare",
            "-e",
            &format!("inject={syscall}:error={errno}"),
        ]
        .map(String::from)
        .into();
        let what = format!("{syscall} failing with {errno}");
        check_exe_guard(&h, &copy, &wrapper, &what);
        let log = fs::read_to_string(&log).unwrap();
        let count = |call: &str, end: &str| {
            let hit = |l: &&str| l.starts_with(call) && l.ends_with(end);
            log.lines().filter(hit).count()
        };
        assert!(
            count(syscall, "(INJECTED)") == 2 && count("unshare(CLONE_NEWNS)", "= 0") == 2,
            "{what}: the fallback was not taken by both commands:\n{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. leaked host fds (CVE-2024-21626 class)

/// `sh -c` wrapper for harun that leaks three host directory fds (3: /, 4: `dir`, 5: /etc)
/// into it, without close-on-exec: a careless caller.
fn leaky_caller(dir: &Path) -> Vec<String> {
    let script = format!("exec 3</ 4<'{}' 5</etc; exec \"$0\" \"$@\"", dir.display());
    vec!["sh".into(), "-c".into(), script]
}

#[test]
fn no_host_fd_reaches_the_init_or_an_exec_process() {
    let h = harun!();
    let leak = leaky_caller(h.dir());
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("fds");
    h.remember_id(&id);
    let pid_file = h.pid_file(&id);
    h.cmd(["create", "--bundle"])
        .arg(b.dir())
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&id)
        .wrap(leak.clone())
        .run()
        .ok();
    h.cmd(["start", id.as_str()]).wrap(leak.clone()).run().ok();
    let init = h.wait_status(&id, "running").pid;
    let fds: Vec<u32> = fds_of(init).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        fds,
        [0, 1, 2],
        "the init holds more than stdio: {:?}",
        fds_of(init)
    );

    // Inside: ls sees stdio and its own directory fd (3), nothing else.
    let out = h
        .cmd(["exec", id.as_str(), "ls", "/proc/self/fd"])
        .wrap(leak.clone())
        .run()
        .ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "{out}"
    );
    // A detached exec, seen from the host.
    let exec_pid = h.path("exec.pid");
    h.cmd(["exec", "--detach", "--pid-file"])
        .arg(&exec_pid)
        .args([id.as_str(), "sleep", "300"])
        .wrap(leak.clone())
        .run()
        .ok();
    let pid: i32 = fs::read_to_string(&exec_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    h.track(pid);
    let fds: Vec<u32> = fds_of(pid).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        fds,
        [0, 1, 2],
        "the exec'd process holds more than stdio: {:?}",
        fds_of(pid)
    );
    // Kill and reap it (we are its subreaper), then the container.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while harun_integration::procs::stat(pid).is_some_and(|(s, _)| s != 'Z') {
        assert!(Instant::now() < deadline, "exec'd process survived SIGKILL");
        std::thread::sleep(Duration::from_millis(10));
    }
    harun_integration::procs::reap(pid);
    h.delete_force(&id).ok();

    // A foreground run's process, from inside.
    let mut b = h.bundle();
    b.args(&["ls", "/proc/self/fd"]);
    let id = h.id("runfds");
    let out = h
        .cmd(["run", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .wrap(leak)
        .run()
        .ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "{out}"
    );
    h.assert_clean();
}

/// A created container's init waits for `start` holding nothing of the host: a process
/// exec'd into it with CAP_SYS_PTRACE (which lets it look into /proc/1/fd) finds no directory
/// there, and no `..` walk from any of those fds shows the host, even when harun's caller
/// leaked directories into `create`. `start` then works.
#[test]
fn a_created_containers_init_holds_no_host_directory() {
    let h = harun!();
    fs::write(h.dir().join("HOST-MARKER"), "host").unwrap();
    let mut b = h.bundle();
    b.sh("echo started");
    let id = h.id("waiting");
    h.remember_id(&id);
    let pid_file = h.pid_file(&id);
    let created = h
        .cmd(["create", "--bundle"])
        .arg(b.dir())
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&id)
        .wrap(leaky_caller(h.dir()))
        .run()
        .ok();
    let script = "for f in /proc/1/fd/*; do n=${f##*/}; echo fd=$n; \
                    [ -d \"$f\" ] && echo dir=$n; \
                    for up in '' /.. /../.. /../../.. /../../../..; do \
                      ls -a \"$f$up\" 2>/dev/null | grep -q HOST-MARKER && echo host=$n$up; \
                    done; \
                  done; true";
    let out = h
        .cmd([
            "exec",
            "--cap",
            "CAP_SYS_PTRACE",
            id.as_str(),
            "sh",
            "-c",
            script,
        ])
        .run()
        .ok();
    let seen: Vec<&str> = out.stdout.lines().collect();
    for fd in ["fd=0", "fd=1", "fd=2"] {
        assert!(seen.contains(&fd), "/proc/1/fd was not readable:\n{out}");
    }
    let bad: Vec<&&str> = seen.iter().filter(|l| !l.starts_with("fd=")).collect();
    assert!(
        bad.is_empty(),
        "the waiting init holds host directories: {bad:?}\n{out}\ninit fds: {:?}",
        fds_of(h.state_of(&id).pid)
    );
    h.start(&id).ok();
    h.wait_status(&id, "stopped");
    assert_eq!(created.stdout_now(), "started\n");
    h.delete(&id).ok();
    h.assert_clean();
}

/// `exec --cwd` through `..` or through /proc/self/fd/N — where N is a host directory fd
/// harun's caller leaked (3: /, 4: the test's dir, 5: /etc) — either fails or lands inside
/// the container: the cwd's path, looked up from the container's root, is the cwd itself,
/// and nothing of the host is listed.
#[test]
fn exec_cwd_cannot_leave_the_rootfs() {
    let h = harun!();
    fs::write(h.dir().join("HOST-MARKER"), "host").unwrap();
    let mut b = h.bundle();
    b.write_file("marker-in-rootfs", "container")
        .args(&["sleep", "600"]);
    let id = h.id("cwd");
    h.create(&id, &b).ok();
    h.start(&id).ok();
    let leak = leaky_caller(h.dir());
    let script = "here=$(stat -c %d:%i .); there=$(cd \"$(readlink /proc/self/cwd)\" 2>/dev/null && stat -c %d:%i .); \
                  [ \"$here\" = \"$there\" ] && echo inroot=yes || echo inroot=no; \
                  echo cwd=$(readlink /proc/self/cwd); echo ls=$(ls -a | tr '\\n' ' ')";
    let cwds = [
        "/../../..",
        "/tmp/../../../..",
        "/proc/self/fd/3",
        "/proc/self/fd/4",
        "/proc/self/fd/5",
        "/proc/self/fd/3/etc",
        "/proc/self/cwd/..",
        "/proc/1/root/..",
        "/proc/1/cwd/../..",
    ];
    for cwd in cwds {
        let out = h
            .cmd(["exec", "--cwd", cwd, id.as_str(), "sh", "-c", script])
            .wrap(leak.clone())
            .run();
        if out.code != 0 {
            // Refused: that is fine, if it is a clean error.
            out.error(&[]);
            continue;
        }
        let kv = parse_kv(&out.stdout);
        assert_eq!(
            kv["inroot"], "yes",
            "--cwd {cwd} is outside the container:\n{out}"
        );
        assert!(
            !kv["ls"].contains("HOST-MARKER"),
            "--cwd {cwd} shows the host:\n{out}"
        );
        if cwd.starts_with("/..") || cwd.starts_with("/tmp") {
            assert_eq!(kv["cwd"], "/", "{out}");
            assert!(kv["ls"].contains("marker-in-rootfs"), "{out}");
        }
    }
    h.delete_force(&id).ok();
    h.assert_clean();
}

// ---------------------------------------------------------------------------------------
// 3. symlinked mount destinations (CVE-2021-30465 class)

#[test]
fn a_symlinked_mount_destination_stays_inside_the_rootfs() {
    let h = harun!();
    let mut b = h.bundle();
    let rootfs = b.rootfs();
    let host_abs = h.path("host-abs");
    let host_rel = h.path("host-rel");
    let host_bind = h.path("host-bind");
    let source = h.path("bind-source");
    for d in [&host_abs, &host_rel, &host_bind, &source] {
        fs::create_dir(d).unwrap();
        fs::write(d.join("HOST-FILE"), "host").unwrap();
    }
    // Absolute and climbing relative links to host directories, and a link below a link.
    let climb = format!(
        "{}{}",
        "../".repeat(20),
        host_rel.display().to_string().trim_start_matches('/')
    );
    std::os::unix::fs::symlink(&host_abs, rootfs.join("evil-abs")).unwrap();
    std::os::unix::fs::symlink(&climb, rootfs.join("evil-rel")).unwrap();
    std::os::unix::fs::symlink(&host_bind, rootfs.join("evil-bind")).unwrap();
    let host_before: Vec<String> = [&host_abs, &host_rel, &host_bind]
        .iter()
        .map(|d| listing(d))
        .collect();
    b.mount("/evil-abs", "tmpfs", "tmpfs", &["size=1m"])
        .mount("/evil-rel", "tmpfs", "tmpfs", &["size=1m"])
        .mount(
            "/evil-bind",
            "bind",
            &source.to_string_lossy(),
            &["rbind", "rw"],
        )
        .sh(
            "echo abs > /evil-abs/written; echo rel > /evil-rel/written; \
             echo fs_abs=$(stat -f -c %T /evil-abs/); echo fs_rel=$(stat -f -c %T /evil-rel/); \
             echo bind=$(ls /evil-bind | tr '\\n' ' '); cat /proc/self/mountinfo",
        );
    let out = h.run_ok(&b);
    let kv = parse_kv(&out);
    assert_eq!(kv["fs_abs"], "tmpfs", "{out}");
    assert_eq!(kv["fs_rel"], "tmpfs", "{out}");
    assert_eq!(
        kv["bind"], "HOST-FILE",
        "the bind source is not at /evil-bind:\n{out}"
    );
    // Inside, the mounts sit where the links point within the rootfs.
    let mounts = mountinfo::parse(&out);
    for d in [&host_abs, &host_rel, &host_bind] {
        let p = d.to_string_lossy();
        assert!(
            mountinfo::find(&mounts, &p).is_some(),
            "no mount at {p} inside the container:\n{out}"
        );
        let inside = rootfs.join(p.trim_start_matches('/'));
        assert!(
            inside.is_dir(),
            "{} was not made inside the rootfs",
            inside.display()
        );
    }
    // The host's directories are untouched and nothing is mounted on them.
    let host_after: Vec<String> = [&host_abs, &host_rel, &host_bind]
        .iter()
        .map(|d| listing(d))
        .collect();
    assert_eq!(host_after, host_before, "a host directory changed");
    for d in [&host_abs, &host_rel, &host_bind] {
        let m = mountinfo::mounts_mentioning(&d.to_string_lossy());
        assert!(m.is_empty(), "mounted on the host: {m:?}");
    }
    h.assert_clean();
}

fn listing(dir: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.join(" ")
}

// ---------------------------------------------------------------------------------------
// 4. masked /proc paths, read-only /proc/sys, no_new_privs

const PROBE_MASKED: &str = "for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/timer_stats /proc/latency_stats; do \
       if [ -e $f ]; then n=$(cat $f 2>/dev/null | wc -c); echo \"$f=$n\"; fi; done; \
     for d in /proc/acpi /proc/scsi /proc/asound /sys/firmware; do \
       if [ -d $d ]; then echo \"$d=$(ls -A $d | wc -l)\"; fi; done";

#[test]
fn masked_paths_show_nothing() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh(PROBE_MASKED);
    let masked = parse_kv(&h.run_ok(&b));
    assert!(!masked.is_empty(), "none of the masked paths exists here");
    for (path, n) in &masked {
        assert_eq!(
            n, "0",
            "{path} shows {n} bytes/entries inside the container: {masked:?}"
        );
    }
    // The control: unmasked, the same probe sees content (so it would see a leak).
    b.set("/linux/maskedPaths", json!([]));
    let open = parse_kv(&h.run_ok(&b));
    let shown: Vec<_> = open.iter().filter(|(_, n)| n.as_str() != "0").collect();
    assert!(
        !shown.is_empty(),
        "the probe sees nothing even unmasked: {open:?}"
    );
    h.assert_clean();
}

#[test]
fn proc_sys_is_read_only() {
    let h = harun!();
    let mut b = h.bundle();
    b.set("/hostname", "before")
        .sh("{ echo after > /proc/sys/kernel/hostname; } 2>&1; echo rc=$?; echo host=$(hostname)");
    let out = h.run_ok(&b);
    let kv = parse_kv(&out);
    assert_ne!(kv["rc"], "0", "{out}");
    assert_eq!(kv["host"], "before", "{out}");
    assert!(
        out.contains("Read-only file system"),
        "not refused by a read-only mount:\n{out}"
    );
    // The control: without readonlyPaths the same write works (in the container's own uts
    // namespace).
    b.set("/linux/readonlyPaths", json!([]));
    let kv = parse_kv(&h.run_ok(&b));
    assert_eq!((kv["rc"].as_str(), kv["host"].as_str()), ("0", "after"));
    h.assert_clean();
}

/// A setuid-root binary (a copy of the host's coreutils `id`, with the host's /usr for its
/// libraries) run by uid 1000: without no_new_privs it gains euid 0, with it it does not —
/// for the init and for exec.
#[test]
fn no_new_privileges_blocks_setuid_gain() {
    let h = harun!();
    let id_bin = Path::new("/usr/bin/id");
    assert!(
        id_bin.exists(),
        "this test needs the host's /usr/bin/id (coreutils)"
    );
    let mut b = h.bundle();
    share_host_usr(&mut b);
    install(id_bin, &b.rootfs().join("suid/id"), 0o4755).unwrap();
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}))
        .args(&["/suid/id"]);

    b.set("/process/noNewPrivileges", false);
    let out = h.run_ok(&b);
    assert!(
        out.contains("euid=0"),
        "the setuid control did not gain root: {out}"
    );
    b.set("/process/noNewPrivileges", true);
    let out = h.run_ok(&b);
    assert!(
        out.starts_with("uid=1000") && !out.contains("euid="),
        "{out}"
    );

    // exec: inherits the container's setting, or sets it with --no-new-privs.
    b.set("/process/noNewPrivileges", false)
        .args(&["sleep", "600"]);
    let id = h.id("nnp");
    h.create(&id, &b).ok();
    h.start(&id).ok();
    let out = h
        .exec(&["exec", "--user", "1000:1000", &id, "/suid/id"])
        .ok();
    assert!(
        out.stdout.contains("euid=0"),
        "the setuid control did not gain root:\n{out}"
    );
    let out = h
        .exec(&[
            "exec",
            "--no-new-privs",
            "--user",
            "1000:1000",
            &id,
            "/suid/id",
        ])
        .ok();
    assert!(
        !out.stdout.contains("euid="),
        "--no-new-privs did not stop setuid:\n{out}"
    );
    h.delete_force(&id).ok();
    h.assert_clean();
}
