//! `harun run` with a restart policy: the flags, and the supervised branch (foreground and
//! `--detach`). A policy comes from `--restart` or from the bundle's `run.harun.restart`
//! annotation; flags override annotations field by field.

use std::path::Path;

use clap::Args;
use harun_runtime::container::ProcessOverrides;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};
use harun_supervisor::engine::{CreateParams, Options, RunOne};
use harun_supervisor::logs::{self, LogConfig};
use harun_supervisor::persist::Mode;
use harun_supervisor::{annotations, detach, parse_duration, Overrides, RestartPolicy, Settings};

use crate::cli::RunArgs;

/// The `--restart` family of `harun run`.
#[derive(Args, Debug, Default)]
pub struct SuperviseArgs {
    /// Supervise and restart the container: no, on-failure[:N], always, unless-stopped
    #[arg(long, value_name = "POLICY", allow_hyphen_values = true)]
    pub restart: Option<String>,
    /// First restart delay, doubling per restart [default: 100ms]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub restart_delay: Option<String>,
    /// Longest restart delay [default: 1m]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub restart_max_delay: Option<String>,
    /// A run this long resets the restart delay [default: 10s]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub restart_reset_after: Option<String>,
    /// Give up after N exits within S (N/S, e.g. 5/30s)
    #[arg(long, value_name = "N/S", allow_hyphen_values = true)]
    pub restart_limit: Option<String>,
    /// Time between SIGTERM and SIGKILL when stopping [default: 10s]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub stop_timeout: Option<String>,
    /// Rotate the log of a detached supervised container at this size [default: 1m]
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub log_max_size: Option<String>,
    /// Keep at most this many log files [default: 3]
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub log_max_files: Option<String>,
}

impl SuperviseArgs {
    /// The flags given, parsed; errors name the flag.
    fn overrides(&self) -> harun_supervisor::Result<Overrides> {
        fn flag<T, E: Into<harun_supervisor::Error>>(
            value: &Option<String>,
            name: &str,
            parse: impl Fn(&str) -> std::result::Result<T, E>,
        ) -> harun_supervisor::Result<Option<T>> {
            value
                .as_deref()
                .map(|v| parse(v).map_err(|e| e.into().with_origin(name)))
                .transpose()
        }
        Ok(Overrides {
            policy: flag(&self.restart, "--restart", str::parse)?,
            delay: flag(&self.restart_delay, "--restart-delay", parse_duration)?,
            max_delay: flag(
                &self.restart_max_delay,
                "--restart-max-delay",
                parse_duration,
            )?,
            reset_after: flag(
                &self.restart_reset_after,
                "--restart-reset-after",
                parse_duration,
            )?,
            limit: flag(&self.restart_limit, "--restart-limit", str::parse)?,
            stop_timeout: flag(&self.stop_timeout, "--stop-timeout", parse_duration)?,
        })
    }

    fn log_config(&self) -> harun_supervisor::Result<LogConfig> {
        let mut config = LogConfig::default();
        if let Some(size) = &self.log_max_size {
            config.max_size =
                logs::parse_size(size).map_err(|e| e.with_origin("--log-max-size"))?;
        }
        if let Some(n) = &self.log_max_files {
            config.max_files =
                logs::parse_max_files(n).map_err(|e| e.with_origin("--log-max-files"))?;
        }
        Ok(config)
    }

    /// The first supervision flag given, for "needs a policy" errors.
    fn first_given(&self) -> Option<&'static str> {
        [
            (&self.restart_delay, "--restart-delay"),
            (&self.restart_max_delay, "--restart-max-delay"),
            (&self.restart_reset_after, "--restart-reset-after"),
            (&self.restart_limit, "--restart-limit"),
            (&self.stop_timeout, "--stop-timeout"),
            (&self.log_max_size, "--log-max-size"),
            (&self.log_max_files, "--log-max-files"),
        ]
        .into_iter()
        .find_map(|(value, name)| value.as_ref().map(|_| name))
    }
}

/// The supervision settings when this run is supervised (a policy other than `no` from the
/// flags or the bundle), `None` for a plain run. Checks every flag and annotation.
pub fn plan(args: &RunArgs, bundle: &Path) -> Result<Option<Settings>> {
    let flags = &args.supervise;
    let overrides = flags.overrides()?;
    // Checked now, before anything starts; used by `run`.
    flags.log_config()?;
    let config = super::create::read_config(bundle);
    let settings = annotations::resolve(&super::create::annotations(config.as_ref()), overrides)?;
    if settings.policy == RestartPolicy::No {
        if let Some(flag) = flags.first_given() {
            return Err(Error::InvalidArgument(format!(
                "{flag} needs a restart policy (--restart POLICY, or the \
                 `run.harun.restart` annotation)"
            )));
        }
        return Ok(None);
    }
    let log_flag = [
        (&flags.log_max_size, "--log-max-size"),
        (&flags.log_max_files, "--log-max-files"),
    ]
    .into_iter()
    .find_map(|(value, name)| value.as_ref().map(|_| name));
    if let (Some(flag), false) = (log_flag, args.detach) {
        return Err(Error::InvalidArgument(format!(
            "{flag} is for --detach: in the foreground the output goes to the terminal"
        )));
    }
    let terminal = config
        .as_ref()
        .and_then(|c| c.pointer("/process/terminal"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if terminal || args.tty || args.create.console_socket.is_some() {
        return Err(Error::InvalidArgument(format!(
            "restart policy `{}`: a supervised container cannot have a terminal \
             (process.terminal, --tty, --console-socket)",
            settings.policy
        )));
    }
    Ok(Some(settings))
}

/// The supervised run: in the foreground, until supervision ends (exit with the last run's
/// code); with `--detach`, until the first start (the supervisor goes on in the background).
/// Both are the engine of `harun supervise` with one container.
pub fn run(
    root: &StateRoot,
    args: &RunArgs,
    id: &str,
    bundle: &Path,
    process: &ProcessOverrides,
    _settings: Settings,
) -> Result<i32> {
    let flags = args.supervise.overrides()?;
    let c = &args.create;
    let create = CreateParams {
        pid_file: c.pid_file.clone(),
        no_pivot: c.no_pivot,
        preserve_fds: c.preserve_fds,
        overlay: c.overlay,
        layers: c.layers.clone(),
        upper: c.upper.clone(),
        process: process.clone(),
    };
    if !args.detach {
        let opts = Options {
            mode: Mode::Foreground,
            echo: true,
            log: None,
            create,
        };
        let end = RunOne::start(root, id, bundle, flags, opts)?.run()?;
        return Ok(end.exit_code());
    }
    let opts = Options {
        mode: Mode::Detached,
        echo: false,
        log: Some(args.supervise.log_config()?),
        create,
    };
    let supervise = move |ready: detach::Ready| match RunOne::start(root, id, bundle, flags, opts) {
        Err(e) => {
            ready.fail(&e);
            1
        }
        Ok(one) => {
            ready.ok();
            match one.run() {
                Ok(_) => 0,
                Err(e) => {
                    harun_runtime::stderr::line(&format!("harun: {e}"));
                    1
                }
            }
        }
    };
    // SAFETY: the harun CLI is single-threaded (no thread is ever spawned before this).
    unsafe { detach::spawn(None, supervise) }?;
    Ok(0)
}
