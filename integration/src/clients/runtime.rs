//! The OCI runtime a client suite hands to podman or containerd, behind a logging wrapper.
//!
//! harun by default; `HARUN_CLIENT_RUNTIME=/usr/sbin/runc` (any runc-compatible binary) runs
//! the same suite against another runtime as a control, so a red harun run means harun,
//! not the suite. The wrapper is a shell script named like the runtime (clients behave by
//! name: podman passes `--log-format json` only to runtimes it knows) that appends every
//! argument vector to a log and execs the runtime; the log is the contract the clients
//! expect (integration/clients/README.md).
//!
//! `HARUN_CLIENT_SHIM=1`: containerd drives harun through harun's own shim
//! (`containerd-shim-harun-v2`, a link to the binary in the wrapper's dir, which the suite
//! puts first on containerd's PATH) instead of its runc shim. The shim calls the runtime
//! in-process, so the contract is that no runtime binary is executed at all: the logging
//! wrapper stays on that PATH and must log nothing.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Separates arguments in the call log (a byte no argument contains).
const SEP: char = '\u{1f}';

/// The runtime under test.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// File name: `harun`, `runc`, ...
    pub name: String,
    /// The real binary.
    pub real: PathBuf,
    /// The logging wrapper the clients are given.
    pub wrapper: PathBuf,
    /// With `HARUN_CLIENT_SHIM=1`: `containerd-shim-harun-v2`, a link to the real binary,
    /// next to the wrapper.
    pub shim: Option<PathBuf>,
    log: PathBuf,
}

/// The shim's binary name and containerd's runtime name for it.
pub const SHIM_NAME: &str = "containerd-shim-harun-v2";
pub const SHIM_RUNTIME: &str = "io.containerd.harun.v2";

/// `HARUN_CLIENT_SHIM=1` (by its runtime name) or `=path` (by its absolute path): the
/// suites use harun's shim.
pub fn shim_mode() -> bool {
    std::env::var_os("HARUN_CLIENT_SHIM").is_some_and(|v| v == "1" || v == "path")
}

/// The sockets of harun's shims (`/run/containerd/s/harun-*`): a suite's must be gone when
/// its containerd has stopped.
pub fn shim_sockets() -> BTreeSet<PathBuf> {
    fs::read_dir("/run/containerd/s")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("harun-"))
        })
        .collect()
}

/// `HARUN_CLIENT_SHIM=path`: `ctr run --runtime /abs/path/containerd-shim-harun-v2`.
pub fn shim_by_path() -> bool {
    std::env::var_os("HARUN_CLIENT_SHIM").is_some_and(|v| v == "path")
}

/// The harun binary of this build: `$HARUN_BIN`, else `harun` next to the test executable's
/// `deps/` dir (target/debug/harun).
pub fn harun_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HARUN_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    profile_dir.join("harun")
}

impl Runtime {
    /// The runtime named by `HARUN_CLIENT_RUNTIME` (else harun), wrapped in `dir/bin`.
    pub fn from_env(dir: &Path) -> Result<Runtime, String> {
        let real = std::env::var_os("HARUN_CLIENT_RUNTIME")
            .map(PathBuf::from)
            .unwrap_or_else(harun_binary);
        if !real.is_file() {
            return Err(format!(
                "runtime {} not found (build harun first: cargo build)",
                real.display()
            ));
        }
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "runtime".into());
        let bin = dir.join("bin");
        fs::create_dir_all(&bin).map_err(|e| format!("mkdir {}: {e}", bin.display()))?;
        let wrapper = bin.join(&name);
        let log = dir.join("runtime-calls.log");
        let script = format!(
            "#!/bin/sh\n\
             # Logs the call, then runs the real runtime (harun client suites).\n\
             {{ for a in \"$@\"; do printf '%s\\037' \"$a\"; done; printf '\\n'; }} >>'{}'\n\
             exec '{}' \"$@\"\n",
            log.display(),
            real.display()
        );
        fs::write(&wrapper, script).map_err(|e| format!("write {}: {e}", wrapper.display()))?;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", wrapper.display()))?;
        let shim = if shim_mode() {
            if name != "harun" {
                return Err(format!(
                    "HARUN_CLIENT_SHIM=1 needs harun as the runtime, not {}",
                    real.display()
                ));
            }
            let link = bin.join(SHIM_NAME);
            std::os::unix::fs::symlink(&real, &link)
                .map_err(|e| format!("symlink {}: {e}", link.display()))?;
            Some(link)
        } else {
            None
        };
        Ok(Runtime {
            name,
            real,
            wrapper,
            shim,
            log,
        })
    }

    pub fn is_harun(&self) -> bool {
        self.name == "harun"
    }

    /// The dir of the wrapper (and of the shim link): first on a daemon's PATH.
    pub fn bin_dir(&self) -> &Path {
        self.wrapper.parent().unwrap_or(Path::new("/"))
    }

    /// Every call so far, as argument vectors.
    pub fn calls(&self) -> Vec<Vec<String>> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                l.split(SEP)
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }

    /// The calls with their values abstracted (see [`shape`]), each once, sorted.
    pub fn call_shapes(&self) -> BTreeSet<String> {
        self.calls().iter().map(|c| shape(c)).collect()
    }
}

/// One call with its variable parts named: paths → `PATH`, container IDs → `ID`; flags,
/// subcommands, signals and formats stay; `--flag=value` keeps the flag. The suites name
/// their containers `hc-...`.
pub fn shape(args: &[String]) -> String {
    args.iter()
        .map(
            |a| match a.split_once('=').filter(|_| a.starts_with("--")) {
                Some((flag, value)) => format!("{flag}={}", abstract_value(value)),
                None if a.starts_with('-') && a.len() > 1 => a.clone(),
                None => abstract_value(a),
            },
        )
        .collect::<Vec<_>>()
        .join(" ")
}

fn abstract_value(v: &str) -> String {
    let is_id = v.len() >= 12 && v.chars().all(|c| c.is_ascii_hexdigit());
    if v.contains('/') {
        "PATH".into()
    } else if is_id || v.starts_with("hc-") {
        "ID".into()
    } else {
        v.to_string()
    }
}

/// Shapes in `seen` that the contract text `documented` (one shape per line, anywhere in
/// it) does not list.
pub fn undocumented(seen: &BTreeSet<String>, documented: &str) -> Vec<String> {
    let lines: BTreeSet<&str> = documented.lines().map(str::trim).collect();
    seen.iter()
        .filter(|s| !lines.contains(s.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_keep_flags_and_name_the_variable_parts() {
        let call: Vec<String> = [
            "--root",
            "/run/x/t",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "kill",
            "--all",
            "hc-ctr-run",
            "9",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            shape(&call),
            "--root PATH --log PATH --log-format json kill --all ID 9"
        );
        let podman: Vec<String> = [
            "--log-format=json",
            "--log",
            "/x/oci-log",
            "start",
            "0123456789abcdef0123",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(shape(&podman), "--log-format=json --log PATH start ID");
    }

    #[test]
    fn undocumented_lists_what_the_contract_lacks() {
        let seen: BTreeSet<String> = ["start ID", "pause ID"].map(String::from).into();
        assert_eq!(undocumented(&seen, "x\n  start ID\n"), vec!["pause ID"]);
    }
}
