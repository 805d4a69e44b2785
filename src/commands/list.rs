//! list: a table like runc's, JSON, or IDs only.

use crate::output::outln;
use harun_runtime::container;
use harun_runtime::state::StateRoot;
use harun_runtime::Result;

use crate::cli::ListFormat;

pub fn run(root: &StateRoot, format: ListFormat, quiet: bool) -> Result<i32> {
    let mut states = container::list(root)?;
    // Supervised containers: a `restarts` count (and a row even between a failed re-create
    // and the next attempt, when the container has no state dir).
    harun_supervisor::control::annotate_list(root, &mut states);
    let field = |v: &serde_json::Value, k: &str| match &v[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    if quiet {
        for s in &states {
            outln!("{}", field(s, "id"));
        }
    } else if format == ListFormat::Json {
        outln!("{}", serde_json::Value::Array(states));
    } else {
        let keys = [
            "id", "pid", "status", "bundle", "created", "owner", "restarts",
        ];
        let rows: Vec<[String; 7]> = states.iter().map(|s| keys.map(|k| field(s, k))).collect();
        print_table(
            &[
                "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER", "RESTARTS",
            ],
            &rows,
        );
    }
    Ok(0)
}

fn print_table(head: &[&str; 7], rows: &[[String; 7]]) {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
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
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}
