//! run: create + start, and in the foreground wait, relay, delete and exit with the
//! container's code (128+N when killed by signal N). `--detach` prints the container's ID
//! (which harun may have made from the bundle directory's name) and returns.
//!
//! Which argument is what: without `--bundle`, a positional argument that is a directory
//! holding config.json is the bundle, and the ID is `--name` or the directory's name;
//! otherwise the positional argument is the ID and the bundle is `--bundle` or the current
//! directory (as in runc).

use std::path::{Path, PathBuf};

use harun_runtime::container::{self, Forwarder, ProcessOverrides};
use harun_runtime::state::{State, StateRoot};
use harun_runtime::{Error, Result};

use crate::cli::RunArgs;
use crate::log::Logger;
use crate::output::outln;

pub fn run(root: &StateRoot, args: &RunArgs, log: &Logger) -> Result<i32> {
    if args.rm && args.detach {
        return Err(Error::InvalidArgument(
            "--rm with --detach: nobody waits for a detached container to remove it \
             (`harun delete ID` once it has stopped)"
                .into(),
        ));
    }
    super::create::check_flags(args.create.pid_file.as_deref(), args.create.preserve_fds)?;
    let (id, bundle) = resolve_target(args)?;
    let process = overrides(args)?;
    if let Some(settings) = super::supervise::plan(args, &bundle)? {
        let code = super::supervise::run(root, args, &id, &bundle, &process, settings)?;
        detached(args, &id);
        return Ok(code);
    }
    if args.detach {
        let opts = super::create::options(&args.create, &id, &bundle, false, &process);
        let created = container::create(root, &opts)?;
        log.warnings(&created.warnings);
        start_or_remove(root, &created.state, log)?;
        detached(args, &id);
        return Ok(0);
    }
    let signals = Forwarder::new()?;
    let opts = super::create::options(&args.create, &id, &bundle, true, &process);
    let created = container::create(root, &opts)?;
    log.warnings(&created.warnings);
    start_or_remove(root, &created.state, log)?;
    let waited = container::wait_foreground(&created.pidfd, created.console_master, &signals);
    drop(signals);
    let warnings = container::delete_own(root, &created.state, true)?;
    log.warnings(&warnings);
    Ok(waited?.code())
}

/// After a successful detached run, its ID on stdout (README: "Command reference").
fn detached(args: &RunArgs, id: &str) {
    if args.detach {
        outln!("{id}");
    }
}

/// Start the container this run created, or remove it. Only that one: a `delete` and
/// another `create` of the ID may have got in since (then: "does not exist").
fn start_or_remove(root: &StateRoot, created: &State, log: &Logger) -> Result<()> {
    match container::start_own(root, created) {
        Ok(started) => {
            log.warnings(&started.warnings);
            Ok(())
        }
        Err(e) => {
            // The start error is what matters; the forced delete only cleans up.
            let _ = container::delete_own(root, created, true);
            Err(e)
        }
    }
}

/// `-- CMD ARGS...`, `-e`, `-t` as changes to the bundle's process.
fn overrides(args: &RunArgs) -> Result<ProcessOverrides> {
    let mut env = Vec::new();
    for e in &args.env {
        if e.is_empty() || e.starts_with('=') {
            return Err(Error::InvalidArgument(format!(
                "--env `{e}`: expected KEY=VALUE or KEY"
            )));
        }
        if e.contains('=') {
            env.push(e.clone());
        } else if let Some(value) = std::env::var_os(e) {
            // `-e KEY`: harun's own value, as Docker does; an unset KEY is left out.
            env.push(format!("{e}={}", value.to_string_lossy()));
        }
    }
    Ok(ProcessOverrides {
        args: args.command.clone(),
        env,
        terminal: args.tty,
    })
}

/// (ID, bundle) following the rule in the module doc.
fn resolve_target(args: &RunArgs) -> Result<(String, PathBuf)> {
    let positional = Path::new(&args.target);
    if args.create.bundle.is_none() {
        if positional.join("config.json").is_file() {
            let id = match &args.name {
                Some(n) => n.clone(),
                None => id_from_dir(positional)?,
            };
            return Ok((id, super::create::bundle_or_cwd(Some(positional))?));
        }
        if meant_as_bundle(positional) {
            // Say what is wrong with it as a bundle, not as a container ID.
            let config = positional.join("config.json");
            return Err(match std::fs::metadata(&config) {
                Ok(_) => Error::InvalidArgument(format!(
                    "bundle `{}`: `config.json` is not a file",
                    positional.display()
                )),
                Err(e) => Error::io("open", &config)(e).context("bundle"),
            });
        }
    }
    if args.name.is_some() {
        return Err(Error::InvalidArgument(format!(
            "--name is for `harun run BUNDLE_DIR`, but `{}` is not a directory with a config.json",
            args.target
        )));
    }
    let bundle = super::create::bundle_or_cwd(args.create.bundle.as_deref())?;
    Ok((args.target.clone(), bundle))
}

/// A positional argument without config.json that still names a bundle: a path (it has a
/// `/`), or a directory when the current directory is no bundle to run under that ID.
fn meant_as_bundle(positional: &Path) -> bool {
    let text = positional.as_os_str().as_encoded_bytes();
    text.contains(&b'/') || (positional.is_dir() && !Path::new("config.json").is_file())
}

/// An ID from a bundle directory's name: characters runc does not allow become `-`.
fn id_from_dir(dir: &Path) -> Result<String> {
    let abs = std::fs::canonicalize(dir).map_err(Error::io("open bundle", dir))?;
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+-.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.is_empty() || id == "." || id == ".." {
        return Err(Error::InvalidArgument(format!(
            "cannot make a container ID from `{}`: give one with --name",
            dir.display()
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_dir_names() {
        let d = std::env::temp_dir().join("harun run-id test+1");
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(id_from_dir(&d).unwrap(), "harun-run-id-test+1");
        std::fs::remove_dir(&d).unwrap();
    }
}
