//! `harun ctl`: talk to the `harun supervise` of this state root through its control socket.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use harun_runtime::state::StateRoot;
use harun_runtime::{Error, Result};
use harun_supervisor::ctl::{self, Request};
use harun_supervisor::engine::socket_path;
use serde_json::Value;

use crate::output::outln;

#[derive(Args, Debug)]
pub struct CtlArgs {
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Subcommand, Debug)]
pub enum CtlCommand {
    /// Every service and container: state, health, restarts, last exit
    Status {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Start a stopped service (after the services it starts after); waits until it is ready
    Start { service: String },
    /// Stop every replica of a service (TERM, KILL after its stop timeout); no restarts
    Stop { service: String },
    /// Stop a service, then start it
    Restart { service: String },
    /// Rescan the services directory: new services start, removed ones stop, changed ones roll
    Reload,
    /// Roll a service to another bundle, one replica at a time; rolls back when one fails
    Update {
        service: String,
        /// The new bundle directory
        #[arg(long, value_name = "DIR")]
        bundle: PathBuf,
    },
    /// Prometheus metrics of every container (up, restarts, health, cpu, memory)
    Metrics,
    /// Stop every service (dependents first) and end the supervisor; waits until done
    Shutdown,
}

pub fn run(root: &StateRoot, args: &CtlArgs) -> Result<i32> {
    let request = match &args.command {
        CtlCommand::Status { .. } => Request::Status,
        CtlCommand::Start { service } => Request::Start {
            service: service.clone(),
        },
        CtlCommand::Stop { service } => Request::Stop {
            service: service.clone(),
        },
        CtlCommand::Restart { service } => Request::Restart {
            service: service.clone(),
        },
        CtlCommand::Reload => Request::Reload,
        CtlCommand::Update { service, bundle } => Request::Update {
            service: service.clone(),
            // The supervisor's working directory is not ours.
            bundle: std::fs::canonicalize(bundle).map_err(Error::io("open bundle", bundle))?,
        },
        CtlCommand::Metrics => Request::Metrics,
        CtlCommand::Shutdown => Request::Shutdown,
    };
    let response = ctl::call(&socket_path(root), &request)?;
    if !response.ok {
        return Err(Error::FailedPrecondition(response.message));
    }
    match &args.command {
        CtlCommand::Status { json: true } => {
            let status = response.status.unwrap_or(Value::Null);
            outln!(
                "{}",
                serde_json::to_string_pretty(&status).unwrap_or_default()
            );
        }
        CtlCommand::Status { json: false } => print_status(&response.status.unwrap_or(Value::Null)),
        CtlCommand::Metrics => crate::output::stdout(response.text.unwrap_or_default().as_bytes()),
        _ => outln!("{}", response.message),
    }
    Ok(0)
}

/// One row per container, the service's state on its first row.
fn print_status(status: &Value) {
    let head = [
        "SERVICE",
        "CONTAINER",
        "STATE",
        "HEALTH",
        "RESTARTS",
        "PID",
        "LAST EXIT",
    ];
    let mut rows: Vec<[String; 7]> = Vec::new();
    for s in status["services"].as_array().into_iter().flatten() {
        let summary = format!(
            "{} ({} {}/{})",
            text(&s["name"]),
            text(&s["state"]),
            s["ready"],
            s["replicas"]
        );
        for (i, c) in s["containers"].as_array().into_iter().flatten().enumerate() {
            let last = &c["lastExit"];
            let last_exit = match (&last["code"], &last["signal"]) {
                (Value::Number(n), _) => format!("code {n}"),
                (_, Value::Number(n)) => format!("signal {n}"),
                _ if last.is_object() => "unknown".into(),
                _ => "-".into(),
            };
            rows.push([
                if i == 0 {
                    summary.clone()
                } else {
                    String::new()
                },
                text(&c["id"]),
                text(&c["state"]),
                text(&c["health"]["status"]),
                c["restarts"].to_string(),
                text(&c["pid"]),
                last_exit,
            ]);
        }
    }
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", s.join("   ").trim_end());
    };
    line(head.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
