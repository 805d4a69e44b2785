//! create.

use std::path::{Path, PathBuf};

use harun_runtime::container::{self, Console, CreateOptions};
use harun_runtime::rootfs::overlay;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};

use crate::cli::CreateArgs;

pub fn run(root: &StateRoot, args: &CreateArgs) -> Result<i32> {
    let bundle = bundle_or_cwd(args.bundle.as_deref())?;
    container::create(root, &options(args, &args.id, &bundle, false))?;
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

/// CreateOptions from the flags; `internal_console`: a foreground run relays the pty itself.
pub fn options<'a>(
    args: &'a CreateArgs,
    id: &'a str,
    bundle: &'a Path,
    internal_console: bool,
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
    }
}
