//! harun-bench: harun against crun, runc and the bare cost of the namespaces, measured in
//! interleaved rounds on the machine it runs on. Prints markdown tables (medians, ratios) on
//! stdout; `--json FILE` keeps every sample. `integration/bench/run` is the documented way
//! to call it (it builds, installs the peers and runs it on the host and in the cgroup-v2
//! VM); see integration/bench/README.md.
//!
//! The driver is the parent of every measured command and reaps it with wait4, so a
//! command's peak RSS and CPU time come from the kernel; it is a child subreaper, so the
//! container processes of `create`d containers are its children too.

mod report;
mod scenarios;
mod setup;
mod shim;
mod spawn;

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use scenarios::Plan;
use setup::{Binaries, Spec, World};
use spawn::R;

const USAGE: &str = "\
usage: harun-bench --harun PATH [OPTIONS]
  --crun PATH | --no-crun     crun to compare with (default: crun in PATH, if any)
  --runc PATH | --no-runc     runc to compare with (default: runc in PATH, if any)
  --also NAME=PATH            another harun build to compare, installed on a writable
                              file system like `harun` (repeatable; NAME: [A-Za-z0-9-]+)
  --also-ro NAME=PATH         the same, on the read-only mount like `harun-ro`
  --quick                     3 rounds, batches of 4 (a smoke test, not a measurement)
  --rounds N                  measured rounds per scenario (default 40)
  --warmup N                  unrecorded rounds first (default 3)
  --batch N                   containers per batch (default 100)
  --batch-rounds N            rounds of the batch scenarios (default 3)
  --shim-harun PATH           the harun build with the containerd shim (the `shim` feature,
                              on by default; edge builds leave it out) for the shim
                              scenario (default: --harun)
  --only LIST                 scenarios, comma-separated: run,limited,phases,exec,batch,
                              shim
  --timeout SECS              longest a single command may take (default 120)
  --json FILE                 write every sample as JSON
  --work-in DIR               parent of the work dir (default /run)";

const SCENARIOS: [&str; 6] = ["run", "limited", "phases", "exec", "batch", "shim"];

#[derive(Debug)]
struct Args {
    harun: PathBuf,
    shim_harun: Option<PathBuf>,
    also: Vec<setup::Also>,
    crun: Option<PathBuf>,
    runc: Option<PathBuf>,
    plan: Plan,
    only: Vec<String>,
    timeout: u32,
    json: Option<PathBuf>,
    work_in: PathBuf,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("harun-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("harun-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(argv: Vec<String>) -> R<Args> {
    let mut a = Args {
        harun: PathBuf::new(),
        shim_harun: None,
        also: Vec::new(),
        crun: which("crun"),
        runc: which("runc"),
        plan: Plan {
            warmup: 3,
            rounds: 40,
            batch: 100,
            batch_rounds: 3,
        },
        only: SCENARIOS.map(String::from).to_vec(),
        timeout: 120,
        json: None,
        work_in: PathBuf::from("/run"),
    };
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--harun" => a.harun = value()?.into(),
            "--shim-harun" => a.shim_harun = Some(value()?.into()),
            "--also" => a.also.push(parse_also(&value()?, false)?),
            "--also-ro" => a.also.push(parse_also(&value()?, true)?),
            "--crun" => a.crun = Some(value()?.into()),
            "--runc" => a.runc = Some(value()?.into()),
            "--no-crun" => a.crun = None,
            "--no-runc" => a.runc = None,
            "--quick" => {
                a.plan = Plan {
                    warmup: 1,
                    rounds: 3,
                    batch: 4,
                    batch_rounds: 1,
                }
            }
            "--rounds" => a.plan.rounds = num(value()?)?.max(1),
            "--warmup" => a.plan.warmup = num(value()?)?,
            "--batch" => a.plan.batch = num(value()?)?.max(1),
            "--batch-rounds" => a.plan.batch_rounds = num(value()?)?.max(1),
            "--only" => a.only = value()?.split(',').map(String::from).collect(),
            "--timeout" => a.timeout = num(value()?)?.clamp(1, 86400) as u32,
            "--json" => a.json = Some(value()?.into()),
            "--work-in" => a.work_in = value()?.into(),
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    for (i, x) in a.also.iter().enumerate() {
        if a.also[..i].iter().any(|y| y.name == x.name) {
            return Err(format!("--also: `{}` given twice", x.name));
        }
    }
    if a.harun.as_os_str().is_empty() {
        return Err("--harun PATH is required".into());
    }
    for s in &a.only {
        if !SCENARIOS.contains(&s.as_str()) {
            return Err(format!("--only: unknown scenario `{s}`"));
        }
    }
    Ok(a)
}

fn parse_also(v: &str, readonly: bool) -> R<setup::Also> {
    let (name, path) = v
        .split_once('=')
        .ok_or(format!("--also {v}: expected NAME=PATH"))?;
    let reserved = ["harun", "harun-ro", "crun", "runc", "floor", "bin", "ro"];
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !reserved.contains(&name);
    if !ok {
        return Err(format!("--also {v}: bad or reserved name `{name}`"));
    }
    Ok(setup::Also {
        name: name.to_string(),
        path: PathBuf::from(path),
        readonly,
    })
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn bench(a: &Args) -> R<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err("run as root: it creates containers".into());
    }
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only changes how our orphaned descendants are
    // reparented.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "PR_SET_CHILD_SUBREAPER: {}",
            std::io::Error::last_os_error()
        ));
    }
    spawn::init_timeouts(a.timeout)?;
    let mut tmp = harun_integration::TempDir::new_in(&a.work_in, "harun-bench")
        .map_err(|e| format!("temp dir in {}: {e}", a.work_in.display()))?;
    let bins = Binaries {
        harun: &a.harun,
        also: &a.also,
        crun: a.crun.as_deref(),
        runc: a.runc.as_deref(),
    };
    let load_before = loadavg();
    let mut world = World::new(tmp.path(), &bins).inspect_err(|_| {
        setup::unmount_after_failure(tmp.path());
    })?;
    let measured = measure(&mut world, a);
    let shim = if a.only.iter().any(|o| o == "shim") && measured.is_ok() {
        eprintln!("harun-bench: shim");
        let harun = a.shim_harun.as_deref().unwrap_or(&a.harun);
        Some(shim::measure(&a.plan, tmp.path(), harun, a.runc.as_deref()))
    } else {
        None
    };
    // Before teardown: the binaries live on the work dir's tmpfs.
    let (mut meta, sizes) = (machine(&world, a), sizes(&world));
    meta["load"] = json!([load_before, loadavg()]);
    let left = world.teardown();
    let rows = measured?;
    if !left.is_empty() {
        return Err(format!("left behind: {}", left.join("; ")));
    }
    println!("{}", meta_lines(&meta));
    println!("{}", report::wall_table(&rows));
    println!("{}", report::resource_table(&rows, &sizes));
    match shim {
        Some(Ok(tables)) => println!("{tables}"),
        Some(Err(e)) if e.starts_with("skipped") => println!("containerd shim scenario {e}\n"),
        Some(Err(e)) => return Err(format!("shim scenario: {e}")),
        None => {}
    }
    if let Some(file) = &a.json {
        let text =
            serde_json::to_string_pretty(&report::json(&rows, meta)).map_err(|e| e.to_string())?;
        std::fs::write(file, text).map_err(|e| format!("write {}: {e}", file.display()))?;
    }
    tmp.remove()
}

fn measure(w: &mut World, a: &Args) -> R<Vec<scenarios::Row>> {
    let want = |s: &str| a.only.iter().any(|o| o == s);
    let mut rows = Vec::new();
    let step = |s: &str| eprintln!("harun-bench: {s}");
    if want("run") {
        step("run");
        rows.extend(scenarios::run(
            w,
            &a.plan,
            Spec::Default,
            "run, default spec",
        )?);
    }
    if want("limited") {
        step("run, limited");
        let label = w.limited_label();
        rows.extend(scenarios::run(w, &a.plan, Spec::Limited, label)?);
    }
    if want("phases") {
        step("create, start, delete");
        rows.extend(scenarios::phases(w, &a.plan)?);
    }
    if want("exec") {
        step("exec");
        rows.extend(scenarios::exec(w, &a.plan)?);
    }
    if want("batch") {
        step("batches");
        rows.extend(scenarios::batches(w, &a.plan)?);
    }
    Ok(rows)
}

fn machine(w: &World, a: &Args) -> serde_json::Value {
    let uts = nix::sys::utsname::uname().ok();
    let kernel = uts
        .map(|u| {
            format!(
                "{} {}",
                u.release().to_string_lossy(),
                u.machine().to_string_lossy()
            )
        })
        .unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .unwrap_or("?")
        .trim()
        .to_string();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let versions: Vec<(String, String)> = w
        .runtimes
        .iter()
        .filter(|r| r.name != "harun-ro")
        .map(|r| {
            (
                r.name.clone(),
                format!("{}: {}", r.name, setup::version(&r.bin)),
            )
        })
        .collect();
    json!({
        "kernel": kernel,
        "cpu": model,
        "cpus": cpus,
        "cgroups": if w.unified { "cgroup v2 only" } else { "hybrid (v1 + v2 at /sys/fs/cgroup/unified)" },
        "limits": w.limits,
        "wrapped": !w.unified,
        "rounds": a.plan.rounds,
        "warmup": a.plan.warmup,
        "batch": a.plan.batch,
        "batch_rounds": a.plan.batch_rounds,
        "versions": versions,
    })
}

/// The 1-minute load average (other work on the machine during the measurement).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

fn meta_lines(m: &serde_json::Value) -> String {
    let versions: Vec<String> = m["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v[1].as_str().unwrap_or("?").to_string())
        .collect();
    let mut s = format!(
        "Kernel {}, {} × {}, cgroups: {}. {} ({} rounds after {} warm-up, batches: {} rounds).\n",
        m["kernel"].as_str().unwrap_or("?"),
        m["cpus"],
        m["cpu"].as_str().unwrap_or("?"),
        m["cgroups"].as_str().unwrap_or("?"),
        versions.join("; "),
        m["rounds"],
        m["warmup"],
        m["batch_rounds"],
    );
    s += &format!(
        "Load average (1 min) before and after: {} and {}.\n",
        m["load"][0].as_str().unwrap_or("?"),
        m["load"][1].as_str().unwrap_or("?")
    );
    if m["wrapped"].as_bool() == Some(true) {
        s += "Every command runs in its own private mount namespace (one unshare(2) between \
              fork and exec); crun's also has the cgroup2 mount detached, as it refuses a \
              hybrid host, and runs with `--cgroup-manager=disabled`.\n";
    }
    s
}

fn sizes(w: &World) -> Vec<(String, String)> {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    w.runtimes
        .iter()
        .map(|r| {
            let (size, libs, lib_bytes) = setup::binary_size(&r.bin);
            let text = if libs == 0 {
                format!("{:.2} MiB, static", mib(size))
            } else {
                format!(
                    "{:.2} MiB + {libs} libs {:.2} MiB",
                    mib(size),
                    mib(lib_bytes)
                )
            };
            (r.name.clone(), text)
        })
        .collect()
}
