//! create, and the checks of the flags `create` shares with `run` and `exec`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use harun_runtime::container::{self, Console, CreateOptions, ProcessOverrides};
use harun_runtime::rootfs::overlay;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};

use crate::cli::CreateArgs;
use crate::log::Logger;

pub fn run(root: &StateRoot, args: &CreateArgs, id: &str, log: &Logger) -> Result<i32> {
    check_flags(args.pid_file.as_deref(), args.preserve_fds)?;
    let bundle = bundle_or_cwd(args.bundle.as_deref())?;
    // Checked as `run` checks them, though `create` does not supervise: a bundle that
    // `create` takes must not fail in `run` for a misspelt `run.harun.*` key.
    harun_supervisor::annotations::resolve(
        &annotations(read_config(&bundle).as_ref()),
        harun_supervisor::Overrides::default(),
    )?;
    let process = ProcessOverrides::default();
    let created = container::create(root, &options(args, id, &bundle, false, &process))?;
    log.warnings(&created.warnings);
    Ok(0)
}

/// The bundle flag, or the current directory as runc does; absolute (it is recorded, and
/// `list` shows it).
pub fn bundle_or_cwd(bundle: Option<&Path>) -> Result<PathBuf> {
    let cwd = || std::env::current_dir().map_err(Error::io("get current directory", "."));
    match bundle {
        Some(b) if b.is_absolute() => Ok(b.to_path_buf()),
        Some(b) => Ok(cwd()?.join(b)),
        None => cwd(),
    }
}

/// `BUNDLE/config.json` as JSON, if it reads and parses (if not, `create` says why).
pub fn read_config(bundle: &Path) -> Option<serde_json::Value> {
    // Read as `create` reads it: a FIFO or a device is not opened for a blocking or
    // endless read.
    let text = harun_runtime::spec::read_json_file(&bundle.join("config.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The annotations of a config; none if they are not an object of strings.
pub fn annotations(config: Option<&serde_json::Value>) -> HashMap<String, String> {
    // By hand, not `from_value`: that would compile a deserializer of maps and strings from
    // a `Value` for this one use.
    let Some(map) = config.and_then(|c| c.get("annotations")?.as_object()) else {
        return HashMap::new();
    };
    map.iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect::<Option<_>>()
        .unwrap_or_default()
}

/// `--pid-file` and `--preserve-fds`, before anything is created: a pid file in a
/// directory that does not exist, or more fds than the process may have, would only fail
/// once the container is set up.
pub fn check_flags(pid_file: Option<&Path>, preserve_fds: u32) -> Result<()> {
    if let Some(file) = pid_file {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::InvalidArgument(format!(
                    "--pid-file `{}`: `{}` is not a directory",
                    file.display(),
                    dir.display()
                )))
            }
            Err(e) => {
                let flag = format!("--pid-file `{}`", file.display());
                return Err(Error::io("stat", dir)(e).context(flag));
            }
        }
    }
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    if u64::from(preserve_fds) > limit.saturating_sub(3) {
        return Err(Error::InvalidArgument(format!(
            "--preserve-fds `{preserve_fds}`: above the open file limit (RLIMIT_NOFILE \
             {limit} allows fds 3 to {})",
            limit.saturating_sub(1)
        )));
    }
    Ok(())
}

/// CreateOptions from the flags; `internal_console`: a foreground run relays the pty itself.
pub fn options<'a>(
    args: &'a CreateArgs,
    id: &'a str,
    bundle: &'a Path,
    internal_console: bool,
    process: &'a ProcessOverrides,
) -> CreateOptions<'a> {
    let console = match (&args.console_socket, internal_console) {
        (Some(p), _) => Console::Socket(p),
        (None, true) => Console::Internal,
        (None, false) => Console::None,
    };
    CreateOptions {
        id,
        bundle,
        pid_file: args.pid_file.as_deref(),
        console,
        no_pivot: args.no_pivot,
        preserve_fds: args.preserve_fds,
        overlay: overlay::Request {
            enabled: args.overlay,
            layers: &args.layers,
            upper: args.upper.as_deref(),
        },
        process,
    }
}
