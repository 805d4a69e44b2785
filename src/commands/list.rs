//! list: a table like runc's, JSON, or IDs only. A container whose state cannot be read (a
//! corrupt state.json) is left out with a warning; the others are listed.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use harun_runtime::container;
use harun_runtime::security::passwd;
use harun_runtime::state::StateRoot;
use harun_runtime::Result;
use serde_json::Value;

use crate::cli::ListFormat;
use crate::log::Logger;
use crate::output::outln;

pub fn run(root: &StateRoot, format: ListFormat, quiet: bool, log: &Logger) -> Result<i32> {
    let mut states = Vec::new();
    for (id, listed) in container::list(root)? {
        match listed {
            Ok(v) => states.push(v),
            Err(e) => log.warn(&format!(
                "container `{id}` left out: {e} (`harun delete --force {id}` removes it)"
            )),
        }
    }
    // Supervised containers: a `restarts` count, `restarting` while a restart is due (and a
    // row even between a failed re-create and the next attempt, without a state dir).
    harun_supervisor::control::annotate_list(root, &mut states);
    let users = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for s in &mut states {
        if s["owner"].as_str().is_none_or(str::is_empty) {
            let id = s["id"].as_str().unwrap_or_default();
            s["owner"] = Value::from(owner(root, id, &users));
        }
    }
    let field = |v: &Value, k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    if quiet {
        for s in &states {
            outln!("{}", field(s, "id"));
        }
    } else if format == ListFormat::Json {
        outln!("{}", Value::Array(states));
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

/// The user owning the container's state dir (its supervision dir when it has none), by
/// name as runc shows it, else `#UID`.
fn owner(root: &StateRoot, id: &str, users: &str) -> String {
    let dirs = [
        root.dir(id),
        root.path()
            .join(harun_supervisor::persist::SUPERVISE_DIR)
            .join(id),
    ];
    let Some(uid) = dirs
        .iter()
        .find_map(|d| std::fs::metadata(Path::new(d)).ok().map(|m| m.uid()))
    else {
        return String::new();
    };
    match passwd::name_by_uid(users, uid) {
        Some(name) => name.to_string(),
        None => format!("#{uid}"),
    }
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
