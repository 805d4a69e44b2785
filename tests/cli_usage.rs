//! What a new user meets first: bare `harun`, `--help`, `--version`, shell completion and the
//! man page, all generated from the same clap definitions.

use std::path::Path;
use std::process::{Command, Stdio};

use harun_integration::{harun, Harun};

/// Every command a user can call, in `--help` order.
const COMMANDS: [&str; 22] = [
    "spec",
    "create",
    "start",
    "state",
    "kill",
    "delete",
    "run",
    "exec",
    "list",
    "features",
    "ps",
    "pause",
    "resume",
    "update",
    "stop",
    "inspect",
    "logs",
    "events",
    "supervise",
    "ctl",
    "completion",
    "man",
];

/// `harun ARGS` without the test's `--root` (exit code, stdout, stderr).
fn bare(h: &Harun, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(h.bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn bare_harun_prints_the_usage_and_the_commands_as_runc_does() {
    let h = harun!();
    let (code, stdout, stderr) = bare(&h, &[]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    assert!(
        stdout.starts_with(
            "A small, fast OCI container runtime with a built-in supervisor\n\n\
             Usage: harun [OPTIONS] <COMMAND>\n\nCommands:\n"
        ),
        "{stdout}"
    );
    let listed: Vec<&str> = stdout
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut want = COMMANDS.to_vec();
    want.push("help");
    assert_eq!(listed, want, "{stdout}");
}

#[test]
fn run_help_documents_both_forms_of_its_argument() {
    let h = harun!();
    let (code, stdout, _) = bare(&h, &["run", "--help"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("Usage: harun run [OPTIONS] <ID|BUNDLE> [-- <COMMAND>...]"),
        "{stdout}"
    );
    for want in [
        "  <ID|BUNDLE>   Container ID (the bundle is --bundle or the current directory); or a \
         bundle directory holding config.json, whose name is the ID unless --name gives one",
        "  [COMMAND]...  The command and its arguments, replacing process.args (after `--`)",
        "  -e, --env <KEY[=VALUE]>",
        "  -t, --tty",
        "  -i, --interactive",
        "      --rm",
        "  -d, --detach                          Return once the container runs and print its ID",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
}

#[test]
fn version_names_the_commit_the_spec_and_the_features() {
    let h = harun!();
    let (code, long, _) = bare(&h, &["--version"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines.len(), 5, "{long}");
    assert_eq!(
        lines[0],
        format!("harun version {}", env!("CARGO_PKG_VERSION"))
    );
    let commit = lines[1].strip_prefix("commit: ").expect("commit line");
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{long}"
    );
    assert_eq!(lines[2], "spec: 1.2.0");
    assert!(
        lines[3].starts_with(
            "features: seccomp, cgroup2, cgroup-device-bpf, overlay-rootfs, supervisor"
        ),
        "{long}"
    );
    assert!(lines[4].starts_with("target: "), "{long}");
    let (_, short, _) = bare(&h, &["-V"]);
    assert_eq!(
        short,
        format!("harun {} (commit {commit})\n", env!("CARGO_PKG_VERSION"))
    );
}

/// `harun __complete -- WORDS...`, what the scripts call.
fn complete(h: &Harun, words: &[&str]) -> Vec<String> {
    let mut args = vec!["__complete", "--"];
    args.extend_from_slice(words);
    let (code, stdout, stderr) = bare(h, &args);
    assert_eq!((code, stderr.as_str()), (0, ""), "{words:?}");
    stdout.lines().map(str::to_string).collect()
}

#[test]
fn completion_offers_commands_flags_values_files_and_container_ids() {
    let h = harun!();
    let names: Vec<String> = complete(&h, &[""])
        .iter()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
    want.push("help".into());
    assert_eq!(names, want);
    assert!(complete(&h, &["de"])
        .contains(&"delete\tDelete containers (with --force even running ones)".to_string()));
    let flags = complete(&h, &["kill", "--"]);
    assert!(
        flags.contains(&"--all\tSignal every process of the container".to_string()),
        "{flags:?}"
    );
    assert!(flags.contains(&"-a\tSignal every process of the container".to_string()));
    assert!(flags.contains(&"--root\tDirectory for container state".to_string()));
    assert_eq!(complete(&h, &["--log-format", ""]), ["text\t", "json\t"]);
    assert_eq!(
        complete(&h, &["completion", ""]),
        ["bash\t", "zsh\t", "fish\t"]
    );
    assert_eq!(complete(&h, &["run", "--bundle", ""]), [":files"]);
    assert_eq!(complete(&h, &["run", ""]), [":files"]);
    // Nothing of harun's after `--`: that is the container's command line.
    assert!(complete(&h, &["run", "x", "--", ""]).is_empty());

    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let (one, two) = (h.id("one"), h.id("two"));
    h.create(&one, &b).ok();
    h.create(&two, &b).ok();
    let root = h.root().display().to_string();
    let mut ids = vec![one.clone(), two.clone()];
    ids.sort();
    for words in [
        &["--root", &root, "delete", ""][..],
        &["--root", &root, "delete", "-f", &one, ""],
        &["--root", &root, "state", ""],
        &["--root", &root, "exec", "-u", "0", ""],
        &["kill", "--root", &root, ""],
    ] {
        assert_eq!(complete(&h, words), ids, "{words:?}");
    }
    // The default root is not the test's: none of its containers there.
    assert!(!complete(&h, &["state", ""]).contains(&one));
    h.delete_force(&one).ok();
    h.delete_force(&two).ok();
    h.assert_clean();
}

/// The bash script, sourced in a real bash: what `<TAB>` would fill in.
#[test]
fn the_bash_script_completes_through_harun() {
    let h = harun!();
    let script = h.dir().join("harun.bash");
    let (code, text, _) = bare(&h, &["completion", "bash"]);
    assert_eq!(code, 0);
    std::fs::write(&script, text).unwrap();
    let bin = h.bin().display().to_string();
    let reply = |words: &str, cword: usize| -> String {
        let cmd = format!(
            "source {}; COMP_WORDS=({bin} {words}); COMP_CWORD={cword}; _harun; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash").args(["-c", &cmd]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(reply("del", 1), "delete\n");
    assert_eq!(reply("--log-format j", 2), "json\n");
    assert_eq!(reply("completion ''", 2), "bash\nzsh\nfish\n");
    let bundle_dir = h.bundle();
    let partial = bundle_dir.dir().display().to_string();
    let partial = &partial[..partial.len() - 2];
    assert!(
        reply(&format!("run -b {partial}"), 3).contains(&bundle_dir.dir().display().to_string()),
        "files for --bundle"
    );
}

/// zsh and fish: the scripts parse, and fish completes through harun (both skipped when
/// the shell is not installed).
#[test]
fn the_zsh_and_fish_scripts_parse_and_fish_completes() {
    let h = harun!();
    for (shell, check) in [("zsh", ["zsh", "-n"]), ("fish", ["fish", "-n"])] {
        if !have(shell) {
            eprintln!("{shell} not installed: skipped");
            continue;
        }
        let (code, text, _) = bare(&h, &["completion", shell]);
        assert_eq!(code, 0);
        let file = h.dir().join(format!("harun.{shell}"));
        std::fs::write(&file, text).unwrap();
        let out = Command::new(check[0])
            .arg(check[1])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if have("fish") {
        let file = h.dir().join("harun.fish");
        let cmd = format!(
            "source {}; function harun; {} $argv; end; complete -C 'harun del'; \
             complete -C 'harun --log-format '",
            file.display(),
            h.bin().display()
        );
        let out = Command::new("fish").args(["-c", &cmd]).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "delete\tDelete containers (with --force even running ones)\njson\ntext\n"
        );
    }
}

#[test]
fn the_man_page_has_every_command_and_renders_cleanly() {
    let h = harun!();
    let (code, page, stderr) = bare(&h, &["man"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert!(page.starts_with(".TH HARUN 1 \"\" \"harun "), "{page}");
    assert!(page.contains("\n.SH NAME\nharun \\- A small, fast OCI container runtime"));
    for c in COMMANDS {
        assert!(page.contains(&format!("\n.SS {c}\n")), "no section for {c}");
    }
    // The options are the ones --help shows, hyphens escaped for roff.
    assert!(page.contains("\\-\\-restart\\-max\\-delay <DURATION>"));
    for line in page.lines() {
        assert!(
            !line.starts_with('\'') && (!line.starts_with('.') || line.len() > 2),
            "a line roff would take for a request: {line:?}"
        );
    }
    if have("groff") {
        let file = h.dir().join("harun.1");
        std::fs::write(&file, &page).unwrap();
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(Path::new(&file))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warnings");
    }
}
