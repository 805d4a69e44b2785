//! ps: the container's processes. `--format json` prints the JSON array of their host pids
//! (what containerd calls); the table is `ps -ef` (or the given ps options) cut down to the
//! container's rows, as runc prints it.

use crate::output::outln;
use std::process::Command;

use clap::Args;
use harun_runtime::cgroups::ops;
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};

use crate::cli::ListFormat;

#[derive(Args, Debug)]
pub struct PsArgs {
    #[arg(long, short = 'f', value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Container ID
    pub id: String,
    /// Options for ps(1) in table format (default: -ef)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PS_OPTIONS"
    )]
    pub ps_options: Vec<String>,
}

pub fn run(root: &StateRoot, args: &PsArgs) -> Result<i32> {
    if args.format == ListFormat::Json && !args.ps_options.is_empty() {
        return Err(Error::InvalidArgument(
            "ps options cannot be combined with --format json".into(),
        ));
    }
    let pids = ops::pids(root, &args.id)?;
    if args.format == ListFormat::Json {
        outln!("{}", serde_json::Value::from(pids));
        return Ok(0);
    }
    let options: Vec<&str> = if args.ps_options.is_empty() {
        vec!["-ef"]
    } else {
        args.ps_options.iter().map(String::as_str).collect()
    };
    let out = Command::new("ps")
        .args(&options)
        .output()
        .map_err(Error::io("run", "ps"))?;
    if !out.status.success() {
        return Err(Error::InvalidArgument(format!(
            "ps {}: {}",
            options.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    crate::output::stdout(rows_of(&String::from_utf8_lossy(&out.stdout), &pids)?.as_bytes());
    Ok(0)
}

/// The header and the rows of ps output whose PID column holds one of `pids`.
fn rows_of(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::InvalidArgument("ps output has no PID column".into()))?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p: i32| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_header_and_the_containers_rows() {
        let ps = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                  root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                  root         420       1  0 10:01 ?        00:00:00 sleep 600\n\
                  root        4200       1  0 10:01 ?        00:00:00 sh -c 420\n";
        assert_eq!(
            rows_of(ps, &[420]).unwrap(),
            "UID          PID    PPID  C STIME TTY          TIME CMD\n\
             root         420       1  0 10:01 ?        00:00:00 sleep 600\n"
        );
        let user = "  PID TTY      STAT   TIME COMMAND\n  420 ?        S      0:00 sleep\n";
        assert_eq!(rows_of(user, &[420]).unwrap(), user);
        assert!(rows_of("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
