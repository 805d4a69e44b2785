//! run: create + start, and in the foreground wait, relay, delete and exit with the
//! container's code (128+N when killed by signal N).
//!
//! Which argument is what: without `--bundle`, a positional argument that is a directory
//! holding config.json is the bundle, and the ID is `--name` or the directory's name;
//! otherwise the positional argument is the ID and the bundle is `--bundle` or the current
//! directory (as in runc).

use std::path::{Path, PathBuf};

use harun_runtime::container::{self, Forwarder};
use harun_runtime::state::{State, StateRoot};
use harun_runtime::{Error, Result};

use crate::cli::RunArgs;
use crate::log::Logger;

pub fn run(root: &StateRoot, args: &RunArgs, log: &Logger) -> Result<i32> {
    let (id, bundle) = resolve_target(args)?;
    if let Some(settings) = super::supervise::plan(args, &bundle)? {
        return super::supervise::run(root, args, &id, &bundle, settings);
    }
    if args.detach {
        let opts = super::create::options(&args.create, &id, &bundle, false);
        let created = container::create(root, &opts)?;
        return start_or_remove(root, &created.state, log).map(|_| 0);
    }
    let signals = Forwarder::new()?;
    let opts = super::create::options(&args.create, &id, &bundle, true);
    let created = container::create(root, &opts)?;
    start_or_remove(root, &created.state, log)?;
    let waited = container::wait_foreground(&created.pidfd, created.console_master, &signals);
    drop(signals);
    let warnings = container::delete_own(root, &created.state, true)?;
    super::warn_all(log, &warnings);
    Ok(waited?.code())
}

/// Start the container this run created, or remove it. Only that one: a `delete` and
/// another `create` of the ID may have got in since (then: "does not exist").
fn start_or_remove(root: &StateRoot, created: &State, log: &Logger) -> Result<()> {
    match container::start_own(root, created) {
        Ok(started) => {
            super::warn_all(log, &started.warnings);
            Ok(())
        }
        Err(e) => {
            // The start error is what matters; the forced delete only cleans up.
            let _ = container::delete_own(root, created, true);
            Err(e)
        }
    }
}

/// (ID, bundle) following the rule in the module doc.
fn resolve_target(args: &RunArgs) -> Result<(String, PathBuf)> {
    let positional = Path::new(&args.create.id);
    let is_bundle = args.create.bundle.is_none() && positional.join("config.json").is_file();
    if is_bundle {
        let id = match &args.name {
            Some(n) => n.clone(),
            None => id_from_dir(positional)?,
        };
        return Ok((id, positional.to_path_buf()));
    }
    if args.name.is_some() {
        return Err(Error::InvalidArgument(format!(
            "--name is for `harun run BUNDLE_DIR`, but `{}` is not a directory with a config.json",
            args.create.id
        )));
    }
    let bundle = super::create::bundle_or_cwd(args.create.bundle.as_deref())?;
    Ok((args.create.id.clone(), bundle))
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
