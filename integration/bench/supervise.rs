//! harun-bench-supervise: what `harun supervise` costs. `integration/bench/supervise` is the
//! documented way to call it (it builds harun as it ships and this driver).
//!
//! Measures, with N idle services (default 10) under one supervisor:
//! - the supervisor's resident memory (VmRSS, and its anonymous / file-backed parts) and
//!   open fds;
//! - its CPU time while nothing happens (utime + stime ticks over `--idle` seconds, and its
//!   voluntary context switches: each is a wake-up);
//! - restart latency with the shortest backoff (1 ms, the least a policy allows): from the
//!   `kill -9` of a container's init to the supervisor's `started` event for its new init,
//!   seen through inotify on the events file (so the figure includes the event's write);
//!   the supervisor's own view (its `exited` to `started` timestamps, in ms) beside it.
//!
//! `--soak DURATION` instead runs a container that restarts every 50 ms (it exits at once,
//! with a 50 ms restart delay) beside the idle ones for DURATION, and samples the
//! supervisor's RSS and fd count every `--every` seconds: both must stay flat.
//!
//! Root, on a host with busybox-static. Works in a tmpfs under `--work-in` (default /run),
//! removes its containers and work dir at the end.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use harun_integration::Bundle;
use serde_json::{json, Value};

type R<T> = Result<T, String>;

const USAGE: &str = "\
usage: harun-bench-supervise --harun PATH [OPTIONS]
  --services N        idle services (default 10)
  --idle SECS         idle CPU window (default 10)
  --samples N         restart latency samples (default 50)
  --soak DURATION     soak instead: a container restarting every 50 ms for DURATION
                      (e.g. 10m, 30s), sampled every --every seconds (default 10)
  --work-in DIR       parent of the work dir (default /run)";

struct Args {
    harun: PathBuf,
    services: usize,
    idle: u64,
    samples: usize,
    soak: Option<Duration>,
    every: u64,
    work_in: PathBuf,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("harun-bench-supervise: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let work = args
        .work_in
        .join(format!("harun-bench-supervise-{}", std::process::id()));
    let outcome = World::new(&work, &args).and_then(|mut w| {
        let result = if args.soak.is_some() {
            w.soak(&args)
        } else {
            w.measure(&args)
        };
        w.teardown();
        result
    });
    let _ = fs::remove_dir_all(&work);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("harun-bench-supervise: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(argv: Vec<String>) -> R<Args> {
    let mut a = Args {
        harun: PathBuf::new(),
        services: 10,
        idle: 10,
        samples: 50,
        soak: None,
        every: 10,
        work_in: PathBuf::from("/run"),
    };
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|_| format!("not a number: {v}"));
        match flag.as_str() {
            "--harun" => a.harun = value()?.into(),
            "--services" => a.services = num(value()?)?.max(1) as usize,
            "--idle" => a.idle = num(value()?)?.max(1),
            "--samples" => a.samples = num(value()?)?.max(1) as usize,
            "--soak" => a.soak = Some(duration(&value()?)?),
            "--every" => a.every = num(value()?)?.max(1),
            "--work-in" => a.work_in = value()?.into(),
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.harun.as_os_str().is_empty() {
        return Err("--harun PATH is required".into());
    }
    Ok(a)
}

/// `30s`, `10m`, `1h`.
fn duration(text: &str) -> R<Duration> {
    let (n, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let n: u64 = n.parse().map_err(|_| format!("bad duration {text}"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("bad duration {text} (use s, m, h)")),
    };
    Ok(Duration::from_secs(secs))
}

struct World {
    harun: PathBuf,
    work: PathBuf,
    root: PathBuf,
    services: PathBuf,
    rootfs: PathBuf,
    template: Value,
    names: Vec<String>,
    supervisor: Option<Child>,
}

impl World {
    fn new(work: &Path, args: &Args) -> R<World> {
        fs::create_dir_all(work).map_err(|e| format!("mkdir {}: {e}", work.display()))?;
        let shared = Bundle::create(&work.join("shared")).map_err(|e| format!("bundle: {e}"))?;
        let mut template = shared.config().clone();
        template["root"] = json!({"path": shared.rootfs(), "readonly": true});
        let w = World {
            harun: args.harun.clone(),
            work: work.to_path_buf(),
            root: work.join("root"),
            services: work.join("services"),
            rootfs: shared.rootfs(),
            template,
            names: Vec::new(),
            supervisor: None,
        };
        fs::create_dir_all(&w.services).map_err(|e| format!("mkdir: {e}"))?;
        Ok(w)
    }

    /// A service running `script`, restart `always` with `delay` every time (a run of
    /// 10 ms resets the backoff; the cap is `delay`, or 1 ms, the least a cap can be).
    fn add(&mut self, name: &str, script: &str, delay: &str) -> R<()> {
        let dir = self.services.join(name);
        fs::create_dir_all(&dir).map_err(|e| format!("mkdir: {e}"))?;
        let mut c = self.template.clone();
        c["process"]["args"] = json!(["sh", "-c", script]);
        c["annotations"] = json!({
            "run.harun.restart": "always",
            "run.harun.restart.delay": delay,
            "run.harun.restart.max-delay": if delay == "0" { "1ms" } else { delay },
            "run.harun.restart.reset-after": "10ms",
        });
        let text = serde_json::to_vec_pretty(&c).map_err(|e| e.to_string())?;
        fs::write(dir.join("config.json"), text).map_err(|e| format!("write config: {e}"))?;
        let _ = &self.rootfs;
        self.names.push(name.to_string());
        Ok(())
    }

    fn harun(&self) -> Command {
        let mut c = Command::new(&self.harun);
        c.arg("--root").arg(&self.root);
        c.stdin(Stdio::null());
        c
    }

    /// `harun supervise` of the services, in the background; its pid.
    fn spawn(&mut self) -> R<i32> {
        let child = self
            .harun()
            .arg("supervise")
            .arg(&self.services)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn harun supervise: {e}"))?;
        let pid = child.id() as i32;
        self.supervisor = Some(child);
        Ok(pid)
    }

    /// [`spawn`](Self::spawn), then wait until every service runs.
    fn start(&mut self) -> R<i32> {
        let pid = self.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(st) = self.status() {
                let running = st["services"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|s| s["state"] == "running"));
                if running {
                    return Ok(pid);
                }
            }
            if Instant::now() > deadline {
                return Err("the services did not all start within 60 s".into());
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn status(&self) -> R<Value> {
        let out = self
            .harun()
            .args(["ctl", "status", "--json"])
            .stderr(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err("ctl status failed".into());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    fn measure(&mut self, args: &Args) -> R<()> {
        let idle = "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done";
        self.add("lat", idle, "0")?;
        for i in 1..args.services {
            self.add(&format!("svc{i}"), idle, "100ms")?;
        }
        let pid = self.start()?;
        sleep(Duration::from_secs(1));
        let mem = proc_status(pid);
        let fds = fd_count(pid);
        let (t0, v0) = (cpu_ticks(pid), switches(pid));
        let start = Instant::now();
        sleep(Duration::from_secs(args.idle));
        let (t1, v1) = (cpu_ticks(pid), switches(pid));
        let idle_secs = start.elapsed().as_secs_f64();
        let mut latencies = Vec::new();
        let mut own_ms = Vec::new();
        for _ in 0..args.samples {
            let (l, o) = self.restart_once("lat")?;
            latencies.push(l);
            own_ms.push(o);
            sleep(Duration::from_millis(30));
        }
        let mem_after = proc_status(pid);
        println!("## harun supervise, {} idle services\n", args.services);
        println!("| measure | value |\n|---|---:|");
        println!(
            "| supervisor VmRSS, MiB | {:.2} (anon {:.2}, file {:.2}) |",
            mib(mem["VmRSS"]),
            mib(mem["RssAnon"]),
            mib(mem["RssFile"])
        );
        println!(
            "| supervisor VmRSS after {} restarts, MiB | {:.2} |",
            args.samples,
            mib(mem_after["VmRSS"])
        );
        println!("| open fds | {fds} |");
        println!(
            "| CPU while idle, ticks in {idle_secs:.1} s | {} |",
            t1.saturating_sub(t0)
        );
        println!(
            "| wake-ups while idle (voluntary switches) | {} |",
            v1.saturating_sub(v0)
        );
        latencies.sort_by(f64::total_cmp);
        own_ms.sort_unstable();
        println!(
            "| restart latency, kill -9 → new init's `started` event, ms (median / p90 / min / max of {}) | {:.2} / {:.2} / {:.2} / {:.2} |",
            latencies.len(),
            pct(&latencies, 50),
            pct(&latencies, 90),
            latencies[0],
            latencies[latencies.len() - 1]
        );
        println!(
            "| the same from the supervisor's own events (exited → started), ms (median / p90) | {} / {} |",
            own_ms[own_ms.len() / 2],
            own_ms[own_ms.len() * 9 / 10]
        );
        println!(
            "\nZero backoff: the restart delay is 0 and each killed container had run longer than \
             the backoff's reset time (10 ms)."
        );
        Ok(())
    }

    /// Kills the init of `id` and times the `started` event of its successor.
    fn restart_once(&self, id: &str) -> R<(f64, i64)> {
        let state: Value = serde_json::from_slice(
            &fs::read(self.root.join(id).join("state.json")).map_err(|e| format!("state: {e}"))?,
        )
        .map_err(|e| e.to_string())?;
        let pid = state["pid"].as_i64().ok_or("no pid")? as i32;
        let events = self.root.join(".supervise").join(id).join("events.jsonl");
        let mut file = fs::File::open(&events).map_err(|e| format!("open events: {e}"))?;
        let mut pos = file.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
        let watch = Inotify::new(&events)?;
        let t0 = Instant::now();
        // SAFETY: kill takes plain numbers.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            return Err(format!("kill {pid}: {}", std::io::Error::last_os_error()));
        }
        let mut text = String::new();
        loop {
            let mut chunk = String::new();
            file.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
            file.read_to_string(&mut chunk).map_err(|e| e.to_string())?;
            pos += chunk.len() as u64;
            text.push_str(&chunk);
            if text.contains("\"event\":\"started\"") {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(format!("no restart of {id} within 30 s: {text}"));
            }
            watch.wait(Duration::from_secs(1));
        }
        let latency = t0.elapsed().as_secs_f64() * 1000.0;
        let times: HashMap<String, i64> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| {
                (
                    e["event"].as_str().unwrap_or("").to_string(),
                    e["timeMs"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        let own =
            times.get("started").copied().unwrap_or(0) - times.get("exited").copied().unwrap_or(0);
        Ok((latency, own))
    }

    fn soak(&mut self, args: &Args) -> R<()> {
        let total = args.soak.unwrap_or_default();
        let idle = "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done";
        self.add("flap", "exit 1", "50ms")?;
        for i in 1..args.services {
            self.add(&format!("svc{i}"), idle, "100ms")?;
        }
        // The flapping one is never "running" for long: start, then look at it by hand.
        let pid = self.spawn()?;
        sleep(Duration::from_secs(2));
        println!(
            "## harun supervise soak: `flap` exits at once and restarts after 50 ms, beside {} idle services, for {:?}\n",
            args.services - 1,
            total
        );
        println!(
            "| elapsed, s | restarts of flap | VmRSS, KiB | RssAnon, KiB | open fds | CPU, ticks |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        let start = Instant::now();
        let mut rows = Vec::new();
        loop {
            let restarts = self
                .status()
                .ok()
                .and_then(|s| {
                    s["services"]
                        .as_array()?
                        .iter()
                        .find(|x| x["name"] == "flap")
                        .map(|x| x["containers"][0]["restarts"].as_u64().unwrap_or(0))
                })
                .unwrap_or(0);
            let mem = proc_status(pid);
            let row = (
                start.elapsed().as_secs(),
                restarts,
                mem["VmRSS"] / 1024,
                mem["RssAnon"] / 1024,
                fd_count(pid),
                cpu_ticks(pid),
            );
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                row.0, row.1, row.2, row.3, row.4, row.5
            );
            rows.push(row);
            if start.elapsed() >= total {
                break;
            }
            sleep(
                Duration::from_secs(args.every)
                    .min(total.saturating_sub(start.elapsed()) + Duration::from_millis(1)),
            );
        }
        let (first, last) = (rows[0], rows[rows.len() - 1]);
        let rss_max = rows.iter().map(|r| r.2).max().unwrap_or(0);
        let fds: Vec<usize> = rows.iter().map(|r| r.4).collect();
        println!(
            "\n{} restarts in {} s ({:.1}/s). VmRSS {} → {} KiB (max {}), RssAnon {} → {} KiB, fds {}–{}.",
            last.1 - first.1,
            last.0 - first.0,
            (last.1 - first.1) as f64 / (last.0 - first.0).max(1) as f64,
            first.2,
            last.2,
            rss_max,
            first.3,
            last.3,
            fds.iter().min().unwrap_or(&0),
            fds.iter().max().unwrap_or(&0)
        );
        Ok(())
    }

    fn teardown(&mut self) {
        if let Some(mut child) = self.supervisor.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        let ids: Vec<String> = fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        for id in ids {
            let _ = self
                .harun()
                .args(["delete", "--force", &id])
                .stderr(Stdio::null())
                .status();
        }
        let _ = fs::remove_dir_all(&self.work);
    }
}

/// An inotify watch on one file's modifications.
struct Inotify(OwnedFd);

impl Inotify {
    fn new(path: &Path) -> R<Inotify> {
        // SAFETY: inotify_init1 takes flags and returns a new fd or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(format!(
                "inotify_init1: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a fresh fd nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|e| e.to_string())?;
        // SAFETY: a valid fd and a NUL-terminated path.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) } < 0 {
            return Err(format!(
                "inotify_add_watch: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Inotify(fd))
    }

    fn wait(&self, timeout: Duration) {
        let mut pfd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
        let mut buf = [0u8; 4096];
        // SAFETY: reading into our buffer from our fd.
        unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    }
}

/// Fields of /proc/PID/status in bytes (the kB ones).
fn proc_status(pid: i32) -> HashMap<String, u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mut out: HashMap<String, u64> = ["VmRSS", "RssAnon", "RssFile"]
        .iter()
        .map(|k| (k.to_string(), 0))
        .collect();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if let Some(kb) = v.trim().strip_suffix(" kB") {
                out.insert(k.to_string(), kb.trim().parse::<u64>().unwrap_or(0) * 1024);
            }
        }
    }
    out
}

fn switches(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// utime + stime of /proc/PID/stat.
fn cpu_ticks(pid: i32) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(after) = text.rfind(')').map(|i| &text[i + 2..]) else {
        return 0;
    };
    let f: Vec<&str> = after.split(' ').collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn pct(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}
