//! harun: the command line. Parses, dispatches to one command module, reports errors the
//! runc way (one line on stderr; with `--log` also a JSON or text line in that file).

mod cli;
mod commands;
mod log;
mod output;
mod version;

use std::time::Instant;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

/// clap's message without its usage lines, on one line.
fn one_line(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(|l| l.trim().trim_start_matches("error: "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The whole command line, as clap sees it (harun's version in it).
pub fn command() -> clap::Command {
    cli::Cli::command().long_version(version::long())
}

fn main() {
    let start = Instant::now();
    // What the completion scripts call: `harun __complete -- WORDS...`, the words of the
    // command line being completed (not a command of harun's own, so not in `--help`).
    let argv: Vec<String> = std::env::args().collect();
    // The same binary is containerd's shim when called by that name.
    #[cfg(feature = "shim")]
    if argv
        .first()
        .is_some_and(|a| harun_supervisor::shim::invoked_as_shim(a))
    {
        std::process::exit(harun_supervisor::shim::main(&argv));
    }
    if let [_, complete, dash, words @ ..] = &argv[..] {
        if complete == "__complete" && dash == "--" {
            std::process::exit(commands::completion::complete(words));
        }
    }
    let parsed = command()
        .try_get_matches()
        .and_then(|m| cli::Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        // Bare `harun`: the usage and the commands, on stdout, as runc does.
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            output::stdout(e.render().to_string().as_bytes());
            std::process::exit(0);
        }
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line, exit 1, like every other harun error.
            harun_runtime::stderr::line(&format!("harun: {}", one_line(&e.render().to_string())));
            std::process::exit(1);
        }
    };
    let logger = match log::Logger::install(&cli.global, start) {
        Ok(l) => l,
        Err(e) => {
            harun_runtime::stderr::line(&format!("harun: {e}"));
            std::process::exit(1);
        }
    };
    harun_runtime::trace!("harun {}: {}", version::SHORT, argv.join(" "));
    let code = match commands::dispatch(&cli, logger) {
        Ok(code) => code,
        Err(harun_runtime::Error::Io { path, source, .. })
            if path.as_os_str() == "stdout" && source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            output::die_of_sigpipe() // `harun events ID | head -1`
        }
        // 1 whatever the error's kind, as runc: containerd and podman read the message (the
        // kind goes to the --log line).
        Err(e) => {
            logger.error(&e);
            1
        }
    };
    std::process::exit(code);
}
