//! `harun-bundle DIR [-- ARGS...]`: writes an OCI bundle with a busybox rootfs to DIR (which
//! must not exist or be empty). The config is `harun spec`'s with `process.terminal` false
//! and, when ARGS are given, `process.args` = ARGS.

use std::path::PathBuf;
use std::process::ExitCode;

use harun_integration::Bundle;

const USAGE: &str = "usage: harun-bundle DIR [-- ARGS...]";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (dir, args) = match parse(&argv) {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("harun-bundle: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match make(&dir, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("harun-bundle: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn parse(argv: &[String]) -> Result<(PathBuf, Vec<String>), String> {
    let (head, args) = match argv.iter().position(|a| a == "--") {
        Some(i) => (&argv[..i], argv[i + 1..].to_vec()),
        None => (argv, Vec::new()),
    };
    match head {
        [h] if h == "-h" || h == "--help" => Err("help".into()),
        [dir] if !dir.starts_with('-') => Ok((PathBuf::from(dir), args)),
        _ => Err("expected exactly one DIR".into()),
    }
}

fn make(dir: &PathBuf, args: &[String]) -> Result<(), String> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(format!("{} exists and is not empty", dir.display()));
        }
    }
    let mut bundle = Bundle::create(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !args.is_empty() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bundle.args(&args);
    }
    Ok(())
}
