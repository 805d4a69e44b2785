//! podman 4.3 + conmon driving the runtime under test, as a rootful podman user does:
//! `--runtime` = the runtime, the cgroupfs manager, private configuration and storage, a
//! busybox image made locally and loaded with `podman load`.
//!
//! `cargo test -p harun-integration --test clients_podman [FILTER...]`; with
//! `HARUN_CLIENT_RUNTIME=/usr/sbin/runc` the same checks run against runc (the control).
//! integration/clients/README.md lists the checks and the runtime calls podman makes.

use std::process::ExitCode;
use std::time::Duration;

use harun_integration::clients::check::{eventually, CheckResult, Suite};
use harun_integration::clients::cmd::Out;
use harun_integration::clients::host::{self, patience};
use harun_integration::clients::image::{self, Spec};
use harun_integration::clients::podman::Podman;
use harun_integration::clients::suite::SuiteEnv;
use harun_integration::ensure;

const IMAGE: &str = "docker.io/library/busybox:local";
/// A service that says it started, then idles until SIGTERM ends it cleanly.
const SERVICE: &str = "echo started; trap 'echo stopping; exit 0' TERM; while :; do sleep 1; done";

struct Ctx {
    env: SuiteEnv,
    pm: Podman,
}

impl Ctx {
    /// `podman ARGS...`, to completion.
    fn podman(&self, args: &[&str]) -> Result<Out, String> {
        self.pm.cmd(args).run()
    }

    /// `podman ARGS...` that must succeed; its trimmed stdout.
    fn ok(&self, args: &[&str]) -> Result<String, String> {
        Ok(self.podman(args)?.ok()?.text().to_string())
    }

    fn status(&self, name: &str) -> Result<String, String> {
        self.ok(&["inspect", "--format", "{{.State.Status}}", name])
    }

    fn wait_status(&self, name: &str, want: &str) -> CheckResult {
        eventually(patience(Duration::from_secs(10)), || {
            let s = self.status(name)?;
            if s == want {
                Ok(())
            } else {
                Err(format!("{name} is {s}, not {want}"))
            }
        })
    }

    fn logs_contain(&self, name: &str, text: &str, times: usize) -> CheckResult {
        eventually(patience(Duration::from_secs(10)), || {
            let logs = self.ok(&["logs", name])?;
            if logs.matches(text).count() >= times {
                Ok(())
            } else {
                Err(format!(
                    "logs of {name} have `{text}` fewer than {times} times:\n{logs}"
                ))
            }
        })
    }
}

fn main() -> ExitCode {
    let mut suite = Suite::from_args("clients_podman");
    if let Some(why) = host::lacks_programs(&["podman", "conmon"]) {
        suite.skip("podman", &why);
        return suite.finish();
    }
    let ctx = match setup() {
        Ok(c) => c,
        Err(e) => {
            suite.check("setup", || Err(e));
            return suite.finish();
        }
    };
    for n in &ctx.pm.notes {
        println!("note: {n}");
    }
    images(&mut suite, &ctx);
    run_basics(&mut suite, &ctx);
    service(&mut suite, &ctx);
    lifecycle(&mut suite, &ctx);
    terminals(&mut suite, &ctx);
    resources(&mut suite, &ctx);
    security(&mut suite, &ctx);
    suite.check("runtime calls are the documented contract", || {
        ctx.env.check_contract("podman")
    });
    suite.check("cleanup leaves nothing behind", || cleanup(&ctx));
    suite.finish()
}

fn setup() -> Result<Ctx, String> {
    let env = SuiteEnv::new("harun-clients-podman")?;
    let pm = Podman::new(env.dir.path(), &env.runtime)?;
    Ok(Ctx { env, pm })
}

fn images(s: &mut Suite, c: &Ctx) {
    let img = || {
        image::build(
            c.env.dir.path(),
            &Spec {
                name: IMAGE,
                cmd: &["sh"],
                env: &[c.env.tag_env()],
            },
        )
    };
    let built = img();
    let built = &built;
    s.check("load a docker-archive", || {
        let img = built.as_ref().map_err(Clone::clone)?;
        let out = c.ok(&["load", "-i", &img.docker_archive.to_string_lossy()])?;
        ensure!(out.contains("Loaded image"), "{out}");
        c.ok(&["image", "exists", &image::docker_name(IMAGE)])
            .map(drop)
    });
    s.check("load an oci-archive", || {
        let img = built.as_ref().map_err(Clone::clone)?;
        c.ok(&["load", "-i", &img.oci_archive.to_string_lossy()])?;
        c.ok(&["image", "exists", IMAGE]).map(drop)
    });
}

fn run_basics(s: &mut Suite, c: &Ctx) {
    s.check("run --rm prints and is removed", || {
        let out = c.ok(&["run", "--rm", "--name", "hc-rm", IMAGE, "echo", "hello"])?;
        ensure!(out == "hello", "stdout: {out:?}");
        let left = c.ok(&["ps", "-a", "--format", "{{.Names}}"])?;
        ensure!(!left.contains("hc-rm"), "hc-rm still listed: {left}");
        Ok(())
    });
    s.check("run exit code", || {
        c.podman(&["run", "--rm", IMAGE, "sh", "-c", "exit 3"])?
            .exit(3)
            .map(drop)
    });
    s.check("run of a missing command exits 127 naming it", || {
        let out = c
            .podman(&["run", "--rm", IMAGE, "hc-no-such-cmd"])?
            .exit(127)?;
        ensure!(out.stderr.contains("hc-no-such-cmd"), "{out}");
        Ok(())
    });
    s.check("run -i passes stdin", || {
        let out =
            c.pm.cmd(["run", "--rm", "-i", IMAGE, "sh", "-c", "cat; echo done"])
                .stdin("line one\nline two\n")
                .run()?
                .ok()?;
        ensure!(out.stdout == "line one\nline two\ndone\n", "{out}");
        Ok(())
    });
    s.check("create, init, start", || {
        c.ok(&[
            "create",
            "--name",
            "hc-cis",
            IMAGE,
            "sh",
            "-c",
            "echo from-cis",
        ])?;
        c.ok(&["init", "hc-cis"])?;
        let st = c.status("hc-cis")?;
        ensure!(st == "initialized" || st == "created", "after init: {st}");
        let out = c.ok(&["start", "-a", "hc-cis"])?;
        ensure!(out == "from-cis", "{out:?}");
        c.ok(&["rm", "hc-cis"]).map(drop)
    });
    let ns_file = c.env.path("netns");
    s.check("--network ns:PATH joins that namespace", || {
        let ns = ns_file.to_string_lossy().to_string();
        std::fs::write(&ns_file, "").map_err(|e| e.to_string())?;
        let made = harun_integration::clients::cmd::Cmd::new("unshare", &c.env.path("out"))
            .arg(format!("--net={ns}"))
            .arg("true")
            .run()?;
        made.ok()?;
        let want = std::fs::metadata(&ns_file).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let got = c.ok(&[
            "run",
            "--rm",
            "--network",
            &format!("ns:{ns}"),
            IMAGE,
            "stat",
            "-L",
            "-c",
            "%i",
            "/proc/self/ns/net",
        ]);
        let _ = nix::mount::umount2(ns_file.as_path(), nix::mount::MntFlags::MNT_DETACH);
        let want = want.map_err(|e| e.to_string())?;
        ensure!(
            got? == want.to_string(),
            "the container's netns is not {ns} (inode {want})"
        );
        Ok(())
    });
}

/// A long-running container for exec, top, stats, pause and the rest.
fn service(s: &mut Suite, c: &Ctx) {
    let svc = "hc-svc";
    s.check("run -d, ps, logs", || {
        c.ok(&["run", "-d", "--name", svc, IMAGE, "sh", "-c", SERVICE])?;
        c.wait_status(svc, "running")?;
        let ps = c.ok(&["ps", "--format", "{{.Names}}"])?;
        ensure!(ps.lines().any(|l| l == svc), "ps: {ps}");
        c.logs_contain(svc, "started", 1)
    });
    s.check("exec", || {
        let out = c.ok(&["exec", svc, "echo", "in-container"])?;
        ensure!(out == "in-container", "{out:?}");
        Ok(())
    });
    s.check("exec exit code", || {
        c.podman(&["exec", svc, "sh", "-c", "exit 5"])?
            .exit(5)
            .map(drop)
    });
    s.check("exec -u -w -e", || {
        let out = c.ok(&[
            "exec",
            "-u",
            "1000",
            "-w",
            "/tmp",
            "-e",
            "HC=yes",
            svc,
            "sh",
            "-c",
            "id -u; pwd; echo $HC",
        ])?;
        ensure!(out == "1000\n/tmp\nyes", "{out:?}");
        Ok(())
    });
    s.check("exec -t gets a terminal", || {
        let out = c
            .podman(&["exec", "-t", svc, "sh", "-c", "tty; echo x"])?
            .ok()?;
        ensure!(
            out.stdout.contains("/dev/pts/") && out.stdout.contains("x\r\n"),
            "{out}"
        );
        Ok(())
    });
    s.check("exec -d", || {
        c.ok(&[
            "exec",
            "-d",
            svc,
            "sh",
            "-c",
            "echo detached > /tmp/hc-exec-d",
        ])?;
        eventually(patience(Duration::from_secs(10)), || {
            let out = c.ok(&["exec", svc, "cat", "/tmp/hc-exec-d"])?;
            if out == "detached" {
                Ok(())
            } else {
                Err(out)
            }
        })
    });
    s.check("top", || {
        let out = c.ok(&["top", svc])?;
        ensure!(out.contains("sh -c") && out.contains("sleep"), "{out}");
        Ok(())
    });
    s.check_unless("stats", host::lacks_unified(), || {
        let out = c.ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
            svc,
        ])?;
        ensure!(out.starts_with(svc) && !out.contains("--"), "stats: {out}");
        Ok(())
    });
    s.check("pause, unpause", || {
        c.ok(&["pause", svc])?;
        c.wait_status(svc, "paused")?;
        c.ok(&["unpause", svc])?;
        c.wait_status(svc, "running")?;
        let out = c.ok(&["exec", svc, "echo", "thawed"])?;
        ensure!(out == "thawed", "{out:?}");
        Ok(())
    });
    s.check_unless(
        "update --memory --cpus",
        host::lacks_controllers(&["memory", "cpu"]),
        || {
            c.ok(&["update", "--memory", "100m", "--cpus", "0.25", svc])?;
            let out = c.ok(&[
                "exec",
                svc,
                "cat",
                "/sys/fs/cgroup/memory.max",
                "/sys/fs/cgroup/cpu.max",
            ])?;
            ensure!(out == "104857600\n25000 100000", "{out:?}");
            Ok(())
        },
    );
    s.check("stop, start, restart", || {
        c.ok(&["stop", "-t", "10", svc])?;
        c.wait_status(svc, "exited")?;
        c.logs_contain(svc, "stopping", 1)?;
        let code = c.ok(&["inspect", "--format", "{{.State.ExitCode}}", svc])?;
        ensure!(code == "0", "exit code after a clean stop: {code}");
        c.ok(&["start", svc])?;
        c.wait_status(svc, "running")?;
        c.logs_contain(svc, "started", 2)?;
        c.ok(&["restart", "-t", "10", svc])?;
        c.wait_status(svc, "running")?;
        c.logs_contain(svc, "started", 3)
    });
    s.check("rm -f of a running container", || {
        c.ok(&["rm", "-f", "-t", "0", svc])?;
        let left = c.ok(&["ps", "-a", "--format", "{{.Names}}"])?;
        ensure!(!left.lines().any(|l| l == svc), "still listed: {left}");
        Ok(())
    });
}

fn lifecycle(s: &mut Suite, c: &Ctx) {
    s.check("kill, wait", || {
        c.ok(&["run", "-d", "--name", "hc-kill", IMAGE, "sleep", "1000"])?;
        c.wait_status("hc-kill", "running")?;
        c.ok(&["kill", "hc-kill"])?;
        let code = c.ok(&["wait", "hc-kill"])?;
        ensure!(code == "137", "wait after kill (SIGKILL): {code}");
        c.ok(&["rm", "hc-kill"]).map(drop)
    });
    s.check("kill -s TERM", || {
        c.ok(&["run", "-d", "--name", "hc-term", IMAGE, "sh", "-c", SERVICE])?;
        c.logs_contain("hc-term", "started", 1)?;
        c.ok(&["kill", "-s", "TERM", "hc-term"])?;
        let code = c.ok(&["wait", "hc-term"])?;
        ensure!(code == "0", "exit after its TERM trap: {code}");
        c.logs_contain("hc-term", "stopping", 1)?;
        c.ok(&["rm", "hc-term"]).map(drop)
    });
    s.check("wait returns the exit code", || {
        c.ok(&[
            "run",
            "-d",
            "--name",
            "hc-wait",
            IMAGE,
            "sh",
            "-c",
            "sleep 1; exit 4",
        ])?;
        let code = c.ok(&["wait", "hc-wait"])?;
        ensure!(code == "4", "{code}");
        c.ok(&["rm", "hc-wait"]).map(drop)
    });
    s.check("exec into a stopped container fails", || {
        c.ok(&["create", "--name", "hc-stopped", IMAGE, "true"])?;
        c.ok(&["start", "-a", "hc-stopped"])?;
        c.podman(&["exec", "hc-stopped", "true"])?.failed()?;
        c.ok(&["rm", "hc-stopped"]).map(drop)
    });
}

fn terminals(s: &mut Suite, c: &Ctx) {
    s.check("run -t gets a terminal", || {
        let out = c
            .podman(&["run", "--rm", "-t", IMAGE, "sh", "-c", "tty; stty size"])?
            .ok()?;
        ensure!(out.stdout.contains("/dev/pts/0\r\n"), "{out}");
        Ok(())
    });
}

fn resources(s: &mut Suite, c: &Ctx) {
    let cat = |flags: &[&str], file: &str| -> Result<String, String> {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "cat", file]);
        c.ok(&args)
    };
    s.check_unless("--memory", host::lacks_controllers(&["memory"]), || {
        let v = cat(&["--memory", "64m"], "/sys/fs/cgroup/memory.max")?;
        ensure!(v == "67108864", "memory.max {v}");
        Ok(())
    });
    s.check_unless("--pids-limit", host::lacks_controllers(&["pids"]), || {
        let v = cat(&["--pids-limit", "42"], "/sys/fs/cgroup/pids.max")?;
        ensure!(v == "42", "pids.max {v}");
        Ok(())
    });
    s.check_unless("--cpus", host::lacks_controllers(&["cpu"]), || {
        let v = cat(&["--cpus", "0.5"], "/sys/fs/cgroup/cpu.max")?;
        ensure!(v == "50000 100000", "cpu.max {v}");
        Ok(())
    });
}

fn security(s: &mut Suite, c: &Ctx) {
    s.check("--read-only --user --cap-drop all", || {
        let out = c
            .podman(&[
                "run",
                "--rm",
                "--read-only",
                "--user",
                "1000:1000",
                "--cap-drop",
                "all",
                IMAGE,
                "sh",
                "-c",
                "id -u; id -g; touch /hc 2>&1; grep CapEff /proc/self/status",
            ])?
            .ok()?;
        let o = &out.stdout;
        ensure!(o.starts_with("1000\n1000\n"), "{out}");
        ensure!(o.contains("Read-only file system"), "{out}");
        ensure!(o.contains("CapEff:\t0000000000000000"), "{out}");
        Ok(())
    });
    s.check("--tmpfs", || {
        let out = c.ok(&[
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/scratch",
            IMAGE,
            "sh",
            "-c",
            "echo ok > /scratch/f && cat /scratch/f && grep ' /scratch ' /proc/self/mountinfo",
        ])?;
        ensure!(
            out.starts_with("ok\n") && out.contains(" - tmpfs "),
            "{out}"
        );
        Ok(())
    });
    s.check("default seccomp profile is in force", || {
        // podman's profile refuses these for a container without CAP_SYS_ADMIN.
        let out = c
            .podman(&[
                "run",
                "--rm",
                IMAGE,
                "sh",
                "-c",
                "grep '^Seccomp:' /proc/self/status",
            ])?
            .ok()?;
        ensure!(out.stdout.contains("Seccomp:\t2"), "{out}");
        Ok(())
    });
}

fn cleanup(c: &Ctx) -> CheckResult {
    let state_root = if c.env.runtime.is_harun() {
        "/run/harun"
    } else {
        "/run/runc"
    };
    c.env.check_clean(
        c.pm.shutdown(),
        &[state_root.into()],
        &["libpod_parent/conmon", "libpod_parent", "podman_probe"],
    )
}
