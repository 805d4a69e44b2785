//! harun: the command line. Parses, dispatches to one command module, reports errors the
//! runc way (one line on stderr; with `--log` also a JSON or text line in that file).

mod cli;
mod commands;
mod log;
mod output;

use std::time::Instant;

use clap::Parser;

/// clap's message without its usage lines, on one line.
fn one_line(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(|l| l.trim().trim_start_matches("error: "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let start = Instant::now();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
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
    if harun_runtime::trace::on() {
        let argv: Vec<String> = std::env::args().collect();
        harun_runtime::trace!("harun {}: {}", env!("CARGO_PKG_VERSION"), argv.join(" "));
    }
    let code = match commands::dispatch(&cli, logger) {
        Ok(code) => code,
        Err(harun_runtime::Error::Io { path, source, .. })
            if path.as_os_str() == "stdout" && source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            output::die_of_sigpipe() // `harun events ID | head -1`
        }
        Err(e) => {
            logger.error(&e.to_string());
            1
        }
    };
    std::process::exit(code);
}
