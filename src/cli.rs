//! Command-line definitions, runc-compatible: the flags containerd's runc shim and
//! podman/conmon pass (see shared/notes/clients.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `--root` when not given.
pub const DEFAULT_ROOT: &str = "/run/harun";

#[derive(Parser, Debug)]
#[command(
    name = "harun",
    version = crate::version::SHORT,
    about = "A small, fast OCI container runtime with a built-in supervisor",
    long_about = "A small, fast OCI container runtime with a built-in supervisor.\n\n\
        Runs an OCI bundle (a directory with config.json and a root file system) as runc \
        does, with runc's commands and flags; `harun run --restart POLICY` keeps it alive.\n\n\
        To run a container:  harun run [-b BUNDLE] ID   or   harun run BUNDLE_DIR",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Directory for container state
    #[arg(long, global = true, default_value = DEFAULT_ROOT, value_name = "DIR")]
    pub root: PathBuf,
    /// Also write errors, warnings and --debug lines to this file (appended)
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of --log lines
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Trace the steps (namespaces, mounts, cgroup writes, hooks) with timings on stderr
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd (not supported)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write an example config.json (runc's defaults) into the bundle
    Spec {
        /// Bundle directory
        #[arg(long, short = 'b', default_value = ".", value_name = "DIR")]
        bundle: PathBuf,
    },
    /// Create a container: set it up and leave its process waiting for `start`
    Create {
        #[command(flatten)]
        create: CreateArgs,
        /// Container ID
        id: String,
    },
    /// Start a created container's process
    Start {
        /// Container ID
        id: String,
    },
    /// Print a container's state as JSON
    State {
        /// Container ID
        id: String,
    },
    /// Send a signal (default TERM) to a container's init, or with --all to all its processes
    Kill {
        /// Signal every process of the container
        #[arg(long, short = 'a')]
        all: bool,
        /// Container ID
        id: String,
        /// Signal name (TERM, SIGTERM) or number
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete containers (with --force even running ones)
    Delete {
        /// Kill a running container first; an unknown ID is no error
        #[arg(long, short = 'f')]
        force: bool,
        /// Container IDs
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Create and start a container; in the foreground wait for it and exit with its code
    Run(RunArgs),
    /// Run a process in a running container
    Exec(crate::commands::exec::ExecArgs),
    /// List containers
    List {
        /// Output format
        #[arg(long, short = 'f', value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print only the IDs
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Print what this runtime supports, as JSON (OCI features document)
    Features,
    /// List a container's processes (--format json: their host pids)
    Ps(crate::commands::ps::PsArgs),
    /// Freeze every process of a container
    Pause(crate::commands::pause::PauseArgs),
    /// Let a paused container's processes run again
    Resume(crate::commands::resume::ResumeArgs),
    /// Change a running container's cgroup resources
    Update(crate::commands::update::UpdateArgs),
    /// Stop containers: SIGTERM, SIGKILL after a timeout; a supervised one is not restarted
    Stop(crate::commands::stop::StopArgs),
    /// Print a container's state and supervision (policy, restarts, last exit) as JSON
    Inspect {
        /// Container ID
        id: String,
    },
    /// Print the output of a detached supervised container
    Logs(crate::commands::logs::LogsArgs),
    /// Print a supervised container's lifecycle events as JSON lines
    Events(crate::commands::events::EventsArgs),
    /// Supervise every service of a directory (replicas, health checks, rolling updates)
    Supervise(crate::commands::supervise_dir::SuperviseDirArgs),
    /// Control the `harun supervise` of this --root: status, start, stop, update, metrics
    Ctl(crate::commands::ctl::CtlArgs),
    /// Print a shell completion script: `source <(harun completion bash)`
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print harun's man page (roff): `harun man | man -l -`
    Man,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Bundle directory (default: the current directory)
    #[arg(long, short = 'b', value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Write the init's pid to this file
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (process.terminal)
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Pass this many extra fds (from 3 up) into the container
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Run on an overlay of root.path; writes go to an upper layer (ephemeral by default)
    #[arg(long)]
    pub overlay: bool,
    /// Extra read-only layer above root.path (repeatable; the last one lies on top)
    #[arg(long = "layer", value_name = "DIR")]
    pub layers: Vec<PathBuf>,
    /// Upper layer: `tmpfs`, `tmpfs:SIZE` (e.g. 64m) or an absolute DIR (persistent)
    #[arg(long, value_name = "SPEC")]
    pub upper: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container runs and print its ID, instead of waiting for it
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Container ID when the positional argument is a bundle directory
    #[arg(long, value_name = "ID")]
    pub name: Option<String>,
    /// Add or replace a variable of process.env: KEY=VALUE, or KEY for harun's own value
    #[arg(long, short = 'e', value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Give the process a terminal (process.terminal)
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Keep stdin open: accepted, a foreground container always gets harun's stdin
    #[arg(long, short = 'i')]
    pub interactive: bool,
    /// Remove the container when it exits: accepted, what a foreground run always does
    #[arg(long)]
    pub rm: bool,
    /// Container ID (the bundle is --bundle or the current directory); or a bundle
    /// directory holding config.json, whose name is the ID unless --name gives one
    #[arg(value_name = "ID|BUNDLE")]
    pub target: String,
    /// The command and its arguments, replacing process.args (after `--`)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub supervise: crate::commands::supervise::SuperviseArgs,
}
