//! harun: the command line. Parses, dispatches to one command module, reports errors the
//! runc way (one line on stderr; with `--log` also a JSON or text line in that file).

mod cli;
mod commands;
mod log;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let logger = log::Logger::new(&cli.global);
    let code = match commands::dispatch(&cli, &logger) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&e.to_string());
            1
        }
    };
    std::process::exit(code);
}
