//! The catalogue of malformed bundles (integration/bad-bundles/, its README says the format):
//! every case makes `harun create` and `harun run` exit 1 with one line on stderr holding
//! the case's expected texts, and leaves nothing behind — no state dir, mount, process or
//! cgroup.
//!
//! With `HARUN_BAD_BUNDLES_RUNC=/usr/sbin/runc` each case also goes to runc (`runc run` of
//! the bundle, whose process is `true` unless the case changes it; 10 s at most): it
//! accepts (exit 0), refuses or hangs, and a verdict other than the one recorded in
//! `integration/bad-bundles/runc/` fails the test (`HARUN_BAD_BUNDLES_RECORD=1` records
//! them anew).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harun_integration::{harun, Bundle, Harun};
use serde_json::Value;

fn catalogue_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/bad-bundles")
}

/// The cases of one catalogue file.
fn cases(file: &str) -> Vec<Value> {
    let path = catalogue_dir().join(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    v.as_array()
        .unwrap_or_else(|| panic!("{}: not an array", path.display()))
        .clone()
}

/// `{id}` in a string value of an edit becomes the container's ID (cgroup paths that the
/// leak check must find).
fn with_id(v: &Value, id: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{id}", id)),
        Value::Array(a) => Value::Array(a.iter().map(|x| with_id(x, id)).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), with_id(x, id))).collect())
        }
        other => other.clone(),
    }
}

/// Builds the case's bundle: a good busybox bundle running `true`, then the case's files,
/// edits, raw config or special config.json.
fn make_bundle(h: &Harun, case: &Value, id: &str) -> Bundle {
    let name = case["name"].as_str().unwrap();
    let mut b = h.bundle();
    b.args(&["true"]);
    if let Some(files) = case["files"].as_object() {
        for (path, content) in files {
            match content.as_str() {
                Some(text) => {
                    b.write_file(path, text);
                }
                None => fs::create_dir_all(b.rootfs().join(path.trim_start_matches('/'))).unwrap(),
            }
        }
    }
    for edit in case["edit"].as_array().into_iter().flatten() {
        let path = edit["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: edit without path"));
        match edit["op"].as_str() {
            Some("add" | "replace") => {
                b.set(path, with_id(&edit["value"], id));
            }
            Some("remove") => {
                b.remove(path);
            }
            other => panic!("{name}: unknown op {other:?}"),
        }
    }
    if let Some(text) = case["config"].as_str() {
        b.write_raw_config(&raw_config(&b, text));
    }
    if let Some(special) = case["special"].as_str() {
        special_config(&b, special, name);
    }
    b
}

/// A raw config.json: `{config}` stands for the bundle's good config, `{config-open}` for it
/// without its closing `}` (to append members), `{deep}` for 200,000 nested arrays,
/// `{deep129}` for 129.
fn raw_config(b: &Bundle, text: &str) -> String {
    let config = b.config().to_string();
    let open = config.strip_suffix('}').unwrap().to_string();
    let deep = |n| format!("{}{}", "[".repeat(n), "]".repeat(n));
    text.replace("{config-open}", &open)
        .replace("{config}", &config)
        .replace("{deep}", &deep(200_000))
        .replace("{deep129}", &deep(129))
}

fn special_config(b: &Bundle, special: &str, name: &str) {
    let path = b.config_path();
    let cap = harun_runtime::spec::MAX_CONFIG_BYTES as usize;
    if !matches!(special, "oversize" | "invalid-utf8") {
        fs::remove_file(&path).unwrap();
    }
    match special {
        "missing" => {}
        "directory" => fs::create_dir(&path).unwrap(),
        "fifo" => {
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap()
        }
        "dev-zero" => std::os::unix::fs::symlink("/dev/zero", &path).unwrap(),
        "dangling-symlink" => std::os::unix::fs::symlink("nowhere.json", &path).unwrap(),
        "unreadable" => {
            // A socket: neither a file nor readable.
            let _ = std::os::unix::net::UnixListener::bind(&path).unwrap();
        }
        "invalid-utf8" => {
            // A lone 0xff inside the hostname: not UTF-8 at all.
            let text = b.config().to_string();
            let at = text.find("\"harun\"").unwrap() + 4;
            let mut bytes = text.into_bytes();
            bytes.insert(at, 0xff);
            fs::write(&path, bytes).unwrap();
        }
        "oversize" => {
            let mut text = b.config().to_string().into_bytes();
            text.resize(cap + 1, b' ');
            fs::write(&path, text).unwrap();
        }
        other => panic!("{name}: unknown special {other:?}"),
    }
}

/// The cgroup2 mount of this host (/sys/fs/cgroup or /sys/fs/cgroup/unified).
fn cgroup2_mount() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mount_point = pre.split_whitespace().nth(4)?;
        (post.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

/// Cgroup directories whose name holds `id` (a few levels deep).
fn cgroups_named(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs: Vec<(PathBuf, usize)> = cgroup2_mount().into_iter().map(|m| (m, 0)).collect();
    while let Some((dir, depth)) = dirs.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = e.path();
            if e.file_name().to_string_lossy().contains(id) {
                found.push(path.clone());
            }
            if depth < 6 {
                dirs.push((path, depth + 1));
            }
        }
    }
    found
}

/// What runc made of a bundle.
#[derive(Debug, PartialEq)]
enum Runc {
    Accepts,
    Refuses(String),
    Hangs,
}

fn runc_verdict(runc: &Path, h: &Harun, b: &Bundle, id: &str) -> Runc {
    let root = h.dir().join("runc-root");
    let out = h.dir().join(format!("runc-{id}.out"));
    let err = h.dir().join(format!("runc-{id}.err"));
    let mut child = Command::new(runc)
        .arg("--root")
        .arg(&root)
        .args(["run", "--bundle"])
        .arg(b.dir())
        .arg(id)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn runc");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let verdict = match status {
        None => Runc::Hangs,
        Some(s) if s.success() => Runc::Accepts,
        Some(_) => Runc::Refuses(
            fs::read_to_string(&err)
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
    };
    let _ = Command::new(runc)
        .arg("--root")
        .arg(&root)
        .args(["delete", "--force", id])
        .stderr(Stdio::null())
        .status();
    verdict
}

/// runc's recorded verdicts for the cases of `file`: `integration/bad-bundles/runc/<stem>.tsv`,
/// lines of `name<TAB>accepts|refuses|hangs<TAB>what runc said`.
fn runc_tsv(file: &str) -> PathBuf {
    let stem = file.strip_suffix(".json").unwrap();
    catalogue_dir().join("runc").join(format!("{stem}.tsv"))
}

fn recorded_verdicts(file: &str) -> Vec<(String, String)> {
    fs::read_to_string(runc_tsv(file))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            (
                f.next().unwrap().to_string(),
                f.next().unwrap_or("").to_string(),
            )
        })
        .collect()
}

impl Runc {
    fn word(&self) -> &'static str {
        match self {
            Runc::Accepts => "accepts",
            Runc::Refuses(_) => "refuses",
            Runc::Hangs => "hangs",
        }
    }
}

/// The gist of runc's stderr: the `msg` of its error line, or the first line (a Go panic).
fn runc_message(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("level=error"))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("");
    let msg = match line.split_once("msg=\"") {
        Some((_, rest)) => rest.rsplit_once('"').map_or(rest, |(m, _)| m),
        None => line,
    };
    msg.replace('\t', " ")
}

/// Runs every case of `file`; with HARUN_BAD_BUNDLES_RUNC, runc's verdicts are compared
/// with the recorded ones, or recorded anew with HARUN_BAD_BUNDLES_RECORD=1.
fn check_file(file: &str) {
    let runc = std::env::var_os("HARUN_BAD_BUNDLES_RUNC").map(PathBuf::from);
    let record = std::env::var_os("HARUN_BAD_BUNDLES_RECORD").is_some();
    let recorded = recorded_verdicts(file);
    let mut tsv = String::from(
        "# case\t`runc run` (1.1.5) of the bundle\t\
         what runc said (tests/bad_bundles.rs records it)\n",
    );
    let mut mismatches = Vec::new();
    for case in cases(file) {
        let name = case["name"].as_str().expect("case name");
        let keys: Vec<&str> = case["error"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no `error`"))
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let h = harun!();
        let id = h.id("bad");
        let b = make_bundle(&h, &case, &id);
        let started = Instant::now();
        let out = h.create(&id, &b);
        let shown = format!("case `{name}` ({file})");
        if std::env::var_os("HARUN_BAD_BUNDLES_SHOW").is_some() {
            // Writing a case: what harun says, without checking it.
            eprintln!("SHOW {name}: exit {} {}", out.code, out.stderr.trim());
            let _ = h.delete_force(&id);
            continue;
        }
        assert_eq!(out.code, 1, "{shown}: create\n{out}");
        std::panic::catch_unwind(|| out.clone().error(&keys))
            .unwrap_or_else(|_| panic!("{shown}: create"));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{shown}: create took {:?}",
            started.elapsed()
        );
        if case["run"].as_bool() != Some(false) {
            let run_id = format!("{id}r");
            let ran = h.run(&run_id, &b);
            assert_eq!(ran.code, 1, "{shown}: run\n{ran}");
            std::panic::catch_unwind(|| ran.clone().error(&keys))
                .unwrap_or_else(|_| panic!("{shown}: run"));
        }
        h.state(&id).error(&["does not exist"]);
        h.assert_clean();
        let left = cgroups_named(&id);
        assert!(left.is_empty(), "{shown}: cgroups left: {left:?}");
        if let Some(runc) = &runc {
            let got = runc_verdict(runc, &h, &b, &format!("{id}-runc"));
            let said = match &got {
                Runc::Refuses(m) => runc_message(m),
                _ => String::new(),
            };
            tsv.push_str(&format!("{name}\t{}\t{said}\n", got.word()));
            let was = recorded
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str());
            eprintln!("runc {name}: {} (recorded: {was:?}) {said}", got.word());
            if !record && was != Some(got.word()) {
                mismatches.push(format!("{name}: runc {got:?}, recorded {was:?}"));
            }
        }
    }
    if runc.is_some() && record {
        fs::create_dir_all(runc_tsv(file).parent().unwrap()).unwrap();
        fs::write(runc_tsv(file), tsv).unwrap();
    }
    assert!(
        mismatches.is_empty(),
        "runc verdicts differ:\n{}",
        mismatches.join("\n")
    );
}

macro_rules! catalogue {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_file($file);
            }
        )*

        /// Every file of the catalogue has its test above, and there are at least 100 cases
        /// in all, each with a unique name.
        #[test]
        fn the_catalogue_is_complete() {
            let listed = [$($file),*];
            let mut on_disk: Vec<String> = fs::read_dir(catalogue_dir())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect();
            on_disk.sort();
            let mut sorted = listed.to_vec();
            sorted.sort();
            assert_eq!(on_disk, sorted, "a catalogue file without a test (or the reverse)");
            let mut names = Vec::new();
            for file in listed {
                let runc = recorded_verdicts(file);
                for case in cases(file) {
                    let name = case["name"].as_str().unwrap().to_string();
                    let verdict = runc.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
                    match verdict {
                        Some("refuses") => {}
                        Some("accepts" | "hangs") => assert!(
                            case["note"].is_string(),
                            "{name}: runc does not refuse it; \
                             the case needs a `note` saying why harun does"
                        ),
                        other => panic!("{name}: no runc verdict recorded in {} ({other:?})",
                            runc_tsv(file).display()),
                    }
                    names.push(name);
                }
            }
            let total = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), total, "duplicate case names");
            assert!(total >= 100, "only {total} cases");
        }
    };
}

catalogue! {
    config_file => "file.json",
    root_and_version => "root-and-version.json",
    process => "process.json",
    mounts => "mounts.json",
    namespaces => "namespaces.json",
    security => "security.json",
    resources => "resources.json",
    hooks => "hooks.json",
}
