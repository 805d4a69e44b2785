//! The `shim` scenario: containerd's `ctr run --rm` of /bin/true through three shim and
//! runtime pairs, paired in interleaved rounds, and the shim's memory per running container.
//!
//! - **harun shim**: `--runtime io.containerd.harun.v2` (harun's shim, the runtime
//!   in-process; a `containerd-shim-harun-v2` link to the harun binary on containerd's PATH);
//! - **runc shim + runc**: containerd's Go runc shim (`containerd-shim-runc-v2`) running runc;
//! - **runc shim + harun**: the same shim running harun (`--runc-binary`).
//!
//! A private containerd (config, sockets, root and state in the work dir) imports the test
//! busybox image made locally; nothing of the host's containerd is used. The wall time is
//! ctr's, from its start to its exit: containerd's work and the shim's are in it.
//!
//! Memory: three containers per pair run `sleep`; each shim's processes (the Go shim: one;
//! harun's: the daemon and its engine) are found by the container ID in their command line,
//! and their RSS (VmRSS) and PSS (smaps_rollup: shared pages divided among the processes
//! that map them, so the engine's copy-on-write pages are not counted twice) summed.

use std::path::Path;

use harun_integration::clients::containerd::Containerd;
use harun_integration::clients::image;

use crate::report::quantile;
use crate::scenarios::Plan;
use crate::spawn::{reap_strays, Launch, Sample, Wrap, R};

const IMAGE: &str = "docker.io/library/busybox:bench";
const NS: &str = "bench";
const RUNNING: usize = 3;

struct Pair {
    name: &'static str,
    flags: Vec<String>,
    /// The shim binary's name, as its processes' command lines start.
    shim: &'static str,
}

/// The scenario's tables (markdown), or why it cannot run here.
pub fn measure(plan: &Plan, work: &Path, harun: &Path, runc: Option<&Path>) -> R<String> {
    for p in ["containerd", "ctr", "containerd-shim-runc-v2"] {
        if crate::which(p).is_none() {
            return Err(format!("skipped: no {p} on this machine"));
        }
    }
    let runc = runc.ok_or("skipped: no runc to compare with")?;
    let harun = &std::fs::canonicalize(harun).map_err(|e| format!("{}: {e}", harun.display()))?;
    let dir = work.join("shim");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("mkdir {}: {e}", bin.display()))?;
    std::os::unix::fs::symlink(harun, bin.join("containerd-shim-harun-v2"))
        .map_err(|e| format!("symlink the shim: {e}"))?;
    let img = image::build(
        &dir,
        &image::Spec {
            name: IMAGE,
            cmd: &["sh"],
            env: &[],
        },
    )?;
    let cgroups = harun_integration::clients::leaks::Snapshot::take();
    let mut ctd = Containerd::start(&dir.join("containerd"), None, &bin)?;
    let result = (|| -> R<String> {
        ctd.ctr(NS)
            .args(["images", "import"])
            .arg(&img.oci_archive)
            .run()?
            .ok()?;
        let mut common = Vec::new();
        if !harun_integration::clients::host::v2_controllers()
            .iter()
            .any(|c| c == "cpu")
        {
            // As in the client suite: ctr asks for cpu.shares 1024 unless told otherwise,
            // which a cgroup-v2 runtime cannot honour without the cpu controller.
            common = vec!["--cpu-shares".to_string(), "0".into()];
        }
        let pairs = [
            Pair {
                name: "harun shim",
                flags: vec!["--runtime".into(), "io.containerd.harun.v2".into()],
                shim: "containerd-shim-harun-v2",
            },
            Pair {
                name: "runc shim + runc",
                flags: vec!["--runc-binary".into(), runc.display().to_string()],
                shim: "containerd-shim-runc-v2",
            },
            Pair {
                name: "runc shim + harun",
                flags: vec!["--runc-binary".into(), harun.display().to_string()],
                shim: "containerd-shim-runc-v2",
            },
        ];
        let times = run_rm(plan, &ctd, &dir, &pairs, &common)?;
        let memory = memory(&ctd, &dir, &pairs, &common)?;
        Ok(tables(&pairs, &times, &memory))
    })();
    let down = ctd.shutdown(&[NS]);
    reap_strays();
    // containerd's parent cgroup of the namespace's containers, and the shims' state roots
    // for the namespace, all left empty.
    cgroups.remove_client_cgroups(&[NS]);
    for root in ["/run/containerd/runc", "/run/containerd/harun"] {
        let _ = std::fs::remove_dir(Path::new(root).join(NS));
    }
    let tables = result?;
    down.map_err(|e| format!("containerd shutdown: {e}"))?;
    Ok(tables)
}

fn ctr(ctd: &Containerd, dir: &Path, args: Vec<String>) -> Launch {
    let mut argv: Vec<std::ffi::OsString> = vec![
        "ctr".into(),
        "--address".into(),
        ctd.sock.clone().into(),
        "-n".into(),
        NS.into(),
    ];
    argv.extend(args.into_iter().map(Into::into));
    Launch {
        argv,
        wrap: Wrap::None,
        log: dir.join("ctr.log"),
    }
}

fn run_args(p: &Pair, common: &[String], extra: &[&str], id: &str, cmd: &[&str]) -> Vec<String> {
    let mut a = vec!["run".to_string()];
    a.extend(extra.iter().map(|s| s.to_string()));
    a.extend(p.flags.iter().cloned());
    a.extend(common.iter().cloned());
    a.push(IMAGE.into());
    a.push(id.into());
    a.extend(cmd.iter().map(|s| s.to_string()));
    a
}

/// Interleaved rounds of `ctr run --rm IMAGE ID /bin/true` per pair.
fn run_rm(
    plan: &Plan,
    ctd: &Containerd,
    dir: &Path,
    pairs: &[Pair],
    common: &[String],
) -> R<Vec<Vec<Sample>>> {
    let mut out = vec![Vec::new(); pairs.len()];
    for round in 0..plan.warmup + plan.rounds {
        for k in 0..pairs.len() {
            let i = (k + round) % pairs.len();
            let id = format!("b{round}-{i}");
            let s = ctr(
                ctd,
                dir,
                run_args(&pairs[i], common, &["--rm"], &id, &["/bin/true"]),
            )
            .run()?;
            reap_strays();
            if round >= plan.warmup {
                out[i].push(s);
            }
        }
    }
    Ok(out)
}

/// (RSS, PSS) in KiB per running container, per pair.
fn memory(ctd: &Containerd, dir: &Path, pairs: &[Pair], common: &[String]) -> R<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let ids: Vec<String> = (0..RUNNING).map(|k| format!("m{i}-{k}")).collect();
        for id in &ids {
            ctr(
                ctd,
                dir,
                run_args(p, common, &["-d"], id, &["sleep", "1000"]),
            )
            .run()?;
        }
        // Let each shim settle (its threads started, its first requests served, a harun
        // shim's memory given back 300 ms after its last request): the steady state of a
        // running container, not the moment after its start.
        std::thread::sleep(std::time::Duration::from_secs(2));
        let (mut rss, mut pss) = (0, 0);
        for id in &ids {
            for pid in harun_integration::procs::shim_serving(p.shim, id) {
                let (r, s) = memory_of(pid);
                rss += r;
                pss += s;
            }
        }
        for id in &ids {
            let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            ctr(ctd, dir, args(&["task", "kill", "-s", "SIGKILL", id])).run()?;
            ctr(ctd, dir, args(&["task", "delete", "-f", id])).run()?;
            ctr(ctd, dir, args(&["container", "rm", id])).run()?;
        }
        reap_strays();
        out.push((rss / RUNNING as u64, pss / RUNNING as u64));
    }
    Ok(out)
}

/// (VmRSS, Pss) of `pid` in KiB.
fn memory_of(pid: i32) -> (u64, u64) {
    let field = |file: &str, key: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
            .unwrap_or(0)
    };
    (field("status", "VmRSS:"), field("smaps_rollup", "Pss:"))
}

fn tables(pairs: &[Pair], times: &[Vec<Sample>], memory: &[(u64, u64)]) -> String {
    let ms = |s: &[Sample]| -> Vec<f64> { s.iter().map(|x| x.wall.as_secs_f64() * 1e3).collect() };
    let median = |s: &[Sample]| quantile(&ms(s), 0.5).unwrap_or(f64::NAN);
    let mut t = String::from("| `ctr run --rm` of /bin/true (median ±½IQR) |");
    for p in pairs {
        t += &format!(" {} |", p.name);
    }
    t += " harun shim / runc shim + runc |\n|---|";
    t += &"---:|".repeat(pairs.len() + 1);
    t += "\n| wall time, ms |";
    for s in times {
        let v = ms(s);
        let half = (quantile(&v, 0.75).unwrap_or(0.0) - quantile(&v, 0.25).unwrap_or(0.0)) / 2.0;
        t += &format!(" {:.1} ±{:.1} |", median(s), half);
    }
    t += &format!(" {:.2} |\n\n", median(&times[0]) / median(&times[1]));
    t += "| shim memory per running container (sleep) |";
    for p in pairs {
        t += &format!(" {} |", p.name);
    }
    t += "\n|---|";
    t += &"---:|".repeat(pairs.len());
    let mib = |kib: u64| kib as f64 / 1024.0;
    t += "\n| RSS, MiB |";
    for (rss, _) in memory {
        t += &format!(" {:.2} |", mib(*rss));
    }
    t += "\n| PSS, MiB |";
    for (_, pss) in memory {
        t += &format!(" {:.2} |", mib(*pss));
    }
    t.push('\n');
    t
}
