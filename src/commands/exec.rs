//! exec: run a process in a running container. Foreground: wait for it (forwarding signals,
//! relaying a tty harun holds) and exit with its code; `--detach`: return once it runs.

use std::path::PathBuf;

use clap::Args;
use harun_runtime::container::{self, Console, ExecOptions, Forwarder, ProcessFlags};
use harun_runtime::state::StateRoot;
use harun_runtime::Result;

use crate::log::Logger;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A full OCI process JSON (what containerd writes); replaces the flags below
    #[arg(long, short = 'p', value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process runs
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's pid to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Allocate a pseudo-terminal
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Working directory in the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (repeatable)
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// User and group to run as: numbers, or names from the container's /etc/passwd and
    /// /etc/group (a user name alone also sets the user's group)
    #[arg(long, short = 'u', value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Additional group ids (repeatable)
    #[arg(long, short = 'g', value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the process's sets (repeatable)
    #[arg(long, short = 'c', value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass this many extra fds (from 3 up) into the process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Container ID
    pub id: String,
    /// The command and its arguments (without --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(root: &StateRoot, a: &ExecArgs, log: &Logger) -> Result<i32> {
    super::create::check_flags(a.pid_file.as_deref(), a.preserve_fds)?;
    let process = match &a.process {
        Some(file) => container::process_from_file(file)?,
        None => {
            let st = root.read(&a.id)?;
            let user = a
                .user
                .as_deref()
                .map(|u| container::lookup_user(root, &a.id, u))
                .transpose()?;
            let base = st.config.process().clone().unwrap_or_default();
            container::process_from_flags(
                &base,
                &ProcessFlags {
                    args: a.args.clone(),
                    tty: a.tty,
                    cwd: a.cwd.clone(),
                    env: a.env.clone(),
                    user,
                    additional_gids: a.additional_gids.clone(),
                    caps: a.cap.clone(),
                    no_new_privs: a.no_new_privs,
                },
            )?
        }
    };
    let console = match (&a.console_socket, a.detach) {
        (Some(p), _) => Console::Socket(p),
        (None, false) => Console::Internal,
        (None, true) => Console::None,
    };
    let signals = if a.detach {
        None
    } else {
        Some(Forwarder::new()?)
    };
    let execed = container::exec(
        root,
        ExecOptions {
            id: &a.id,
            process,
            pid_file: a.pid_file.as_deref(),
            console,
            preserve_fds: a.preserve_fds,
        },
    )?;
    log.warnings(&execed.warnings);
    match signals {
        None => Ok(0),
        Some(s) => {
            let code = container::wait_foreground(&execed.pidfd, execed.console_master, &s)?;
            Ok(code.code())
        }
    }
}
