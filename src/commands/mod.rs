//! One module per command; each is a thin layer over harun_runtime.

pub mod completion;
mod create;
pub mod ctl;
pub mod events;
pub mod exec;
mod features;
mod inspect;
mod list;
pub mod logs;
pub mod pause;
pub mod ps;
pub mod resume;
mod run;
mod simple;
mod spec;
pub mod stop;
pub mod supervise;
pub mod supervise_dir;
pub mod update;

use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};

use crate::cli::{Cli, Command};
use crate::log::Logger;

/// Run the command; Ok(exit code).
pub fn dispatch(cli: &Cli, log: &Logger) -> Result<i32> {
    if cli.global.systemd_cgroup {
        return Err(Error::Unsupported(
            "--systemd-cgroup (harun manages cgroups itself, through cgroupfs)".into(),
        ));
    }
    if matches!(
        cli.command,
        Command::Create { .. } | Command::Run(_) | Command::Exec(_) | Command::Supervise(_)
    ) {
        // Before any process can enter a container (CVE-2019-5736); may re-exec harun.
        harun_runtime::exe_guard::ensure_readonly_exe()?;
    }
    let root = StateRoot::new(&cli.global.root);
    match &cli.command {
        Command::Spec { bundle } => spec::run(bundle),
        Command::Create { create, id } => create::run(&root, create, id, log),
        Command::Start { id } => simple::start(&root, id, log),
        Command::State { id } => simple::state(&root, id),
        Command::Kill { all, id, signal } => simple::kill(&root, id, signal, *all),
        Command::Delete { force, ids } => simple::delete(&root, ids, *force, log),
        Command::Run(args) => run::run(&root, args, log),
        Command::Exec(args) => exec::run(&root, args, log),
        Command::List { format, quiet } => list::run(&root, *format, *quiet, log),
        Command::Stop(args) => stop::run(&root, args, log),
        Command::Inspect { id } => inspect::run(&root, id),
        Command::Logs(args) => logs::run(&root, args),
        Command::Events(args) => events::run(&root, args),
        Command::Features => features::run(),
        Command::Ps(args) => ps::run(&root, args),
        Command::Pause(args) => pause::run(&root, args),
        Command::Resume(args) => resume::run(&root, args),
        Command::Update(args) => update::run(&root, args),
        Command::Supervise(args) => supervise_dir::run(&root, args),
        Command::Ctl(args) => ctl::run(&root, args),
        Command::Completion { shell } => completion::script(*shell),
        Command::Man => completion::man(),
    }
}

/// `act` on every ID in turn; a failure is printed and the others still get their turn.
/// Exit 1 if any failed.
fn each(ids: &[String], log: &Logger, mut act: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    let mut code = 0;
    for id in ids {
        if let Err(e) = act(id) {
            log.error(&e);
            code = 1;
        }
    }
    Ok(code)
}
