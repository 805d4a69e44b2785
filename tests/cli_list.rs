//! `list` as a user reads it: every column filled, `restarting` while a supervised container
//! waits for its restart, and one corrupt state.json neither hides the other containers nor
//! blocks `delete --force`.

mod supervisor_util;

use std::fs;

use harun_integration::{harun, Harun, Out};
use serde_json::Value;

fn error_line(out: Out) -> String {
    out.error(&[]).stderr.trim_end().to_string()
}

/// `list --format json`, by ID.
fn listed(h: &Harun) -> Vec<Value> {
    let out = h.exec(&["list", "--format", "json"]).ok();
    serde_json::from_str::<Vec<Value>>(&out.stdout).unwrap()
}

fn row<'a>(rows: &'a [Value], id: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row for {id} in {rows:?}"))
}

#[test]
fn every_column_is_filled_and_the_bundle_is_absolute() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("cols");
    h.remember_id(&id);
    // A bundle given relative to the current directory.
    let rel = b.dir().strip_prefix(h.dir()).unwrap().to_path_buf();
    h.cmd(["create", "--bundle"])
        .arg(&rel)
        .arg(&id)
        .cwd(h.dir())
        .run()
        .ok();
    h.state(&id);
    let rows = listed(&h);
    let r = row(&rows, &id);
    assert_eq!(r["bundle"], b.dir().display().to_string());
    assert_eq!(r["owner"], "root");
    assert!(
        r["created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{r}"
    );
    let table = h.exec(&["list"]).ok().stdout;
    let line = table.lines().find(|l| l.starts_with(&id)).unwrap();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[2], "created", "{table}");
    assert_eq!(cells[3], b.dir().display().to_string());
    assert_eq!(cells[5], "root");
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn a_container_waiting_for_its_restart_is_restarting() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("exit 1");
    let id = h.id("waits");
    supervisor_util::run_detached(
        &h,
        &id,
        &b,
        &["--restart", "always", "--restart-delay", "1m"],
    );
    supervisor_util::wait_events(&h, &id, "restarting", |ev| {
        supervisor_util::kinds(ev).contains(&"restarting".to_string())
    });
    let rows = listed(&h);
    let r = row(&rows, &id);
    assert_eq!(
        (&r["status"], &r["restarts"]),
        (&Value::from("restarting"), &Value::from(1))
    );
    assert!(r["created"].as_str().is_some_and(|c| !c.is_empty()), "{r}");
    let table = h.exec(&["list"]).ok().stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains(" restarting ")),
        "{table}"
    );
    h.exec(&["stop", &id]).ok();
    assert_eq!(row(&listed(&h), &id)["status"], "stopped");
    h.delete(&id).ok();
    h.assert_clean();
}

/// Between a failed re-create and the next attempt there is no state dir: the row comes
/// from the supervision record, with every column filled.
#[test]
fn a_supervised_container_without_a_state_dir_still_has_a_full_row() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("sleep 1; exit 1");
    let id = h.id("gone");
    supervisor_util::run_detached(
        &h,
        &id,
        &b,
        &[
            "--restart",
            "always",
            "--restart-delay",
            "1s",
            "--restart-max-delay",
            "1s",
        ],
    );
    // The next create fails: its bundle has no rootfs any more.
    fs::rename(b.rootfs(), b.dir().join("moved")).unwrap();
    supervisor_util::wait_events(&h, &id, "a failed restart", |ev| {
        supervisor_util::kinds(ev).contains(&"start-failed".to_string())
    });
    // The next attempt is a second away.
    assert!(!h.root().join(&id).exists());
    let rows = listed(&h);
    let r = row(&rows, &id);
    assert_eq!(r["status"], "restarting", "{r}");
    assert_eq!(r["bundle"], b.dir().display().to_string());
    assert_eq!(r["owner"], "root");
    assert!(
        r["created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{r}"
    );
    h.exec(&["stop", &id]).ok();
    h.delete(&id).ok();
    h.assert_clean();
}

#[test]
fn a_corrupt_state_file_is_skipped_by_list_and_removed_by_delete_force() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let (bad, good) = (h.id("bad"), h.id("good"));
    h.create(&bad, &b).ok();
    h.create(&good, &b).ok();
    let state = h.root().join(&bad).join("state.json");
    fs::write(&state, "{ not json").unwrap();
    let s = state.display();

    let out = h.exec(&["list"]).ok();
    assert_eq!(
        out.stderr,
        format!(
            "harun: warning: container `{bad}` left out: state `{s}` is corrupt: key must be \
             a string at line 1 column 3 (`harun delete --force {bad}` removes it)\n"
        )
    );
    assert!(
        out.stdout.contains(&good) && !out.stdout.contains(&bad),
        "{out}"
    );
    assert_eq!(h.exec(&["list", "-q"]).ok().stdout, format!("{good}\n"));

    // The other container is untouched by it.
    assert_eq!(h.state_of(&good).status, "created");
    assert_eq!(
        error_line(h.exec(&["state", &bad])),
        format!("harun: state `{s}` is corrupt: key must be a string at line 1 column 3")
    );
    assert_eq!(
        error_line(h.delete(&bad)),
        format!(
            "harun: cannot delete container `{bad}` without --force: state `{s}` is corrupt: \
             key must be a string at line 1 column 3"
        )
    );
    h.delete_force(&bad).ok();
    assert!(!h.root().join(&bad).exists());
    h.delete(&good).ok();
    // Its init was killed with its cgroup (the leak check looks for it).
    h.assert_clean();
}
