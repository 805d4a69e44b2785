//! `harun supervise DIR`: one supervisor for every service of a directory (foreground, for
//! an init script, a systemd unit or PID 1; `--detach` to daemonise).

use std::path::PathBuf;

use clap::Args;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};
use harun_supervisor::detach;
use harun_supervisor::engine::{daemon_dir, Daemon};

#[derive(Args, Debug)]
pub struct SuperviseDirArgs {
    /// Run in the background; return once every service is loaded and `harun ctl` answers
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Services directory: each subdirectory holding a config.json is a service
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn run(root: &StateRoot, args: &SuperviseDirArgs) -> Result<i32> {
    let dir =
        std::fs::canonicalize(&args.dir).map_err(Error::io("open services dir", &args.dir))?;
    if !args.detach {
        Daemon::start(root, &dir, true)?.run()?;
        return Ok(0);
    }
    let log_dir = daemon_dir(root);
    std::fs::create_dir_all(&log_dir).map_err(Error::io("create", &log_dir))?;
    let log = log_dir.join("daemon.log");
    let serve = |ready: detach::Ready| match Daemon::start(root, &dir, false) {
        Err(e) => {
            ready.fail(&e);
            1
        }
        Ok(daemon) => {
            ready.ok();
            match daemon.run() {
                Ok(()) => 0,
                Err(e) => {
                    harun_runtime::stderr::line(&format!("harun: {e}"));
                    1
                }
            }
        }
    };
    // SAFETY: the harun CLI is single-threaded (no thread is ever spawned before this).
    unsafe { detach::spawn(Some(&log), serve) }?;
    Ok(0)
}
