//! A valid config of any size harun reads (up to its 8 MiB cap) runs: 1 MiB of annotations
//! through create (its hooks get the state with every annotation), start, exec, state and
//! delete. 64 KiB of annotations used to fail create ("bad message on the init channel"), and
//! ~210 KiB with EMSGSIZE: the state crosses the init channel, which now sends packets.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use harun_integration::{harun, TAG_ENV};
use serde_json::{json, Value};

/// Copies the state JSON from stdin to `state-<stage>` next to the script (busybox sh in the
/// container, the host's sh outside).
const HOOK: &str = "#!/bin/sh\ncat > \"$(dirname \"$0\")/state-$1\"\n";

/// 256 annotations of 4 KiB: 1 MiB, four times what Kubernetes lets a pod have.
fn annotations() -> BTreeMap<String, String> {
    (0..256)
        .map(|i| {
            let key = format!("io.harun.test/large-{i:03}");
            let value = format!("{i:03}-{}", "v".repeat(4096 - 4));
            (key, value)
        })
        .collect()
}

#[test]
fn a_megabyte_of_annotations_goes_through_create_start_exec_and_hooks() {
    let h = harun!();
    let mut b = h.bundle();
    let want = annotations();
    b.set("/annotations", json!(want));
    b.args(&["sleep", "600"]);

    let dir = h.path("hooks");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let script = dir.join("hook.sh");
    fs::write(&script, HOOK).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.to_string_lossy().into_owned();
    b.mount(&d, "bind", &d, &["bind", "rw"]);
    let stages = [
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ];
    for stage in stages {
        b.push(
            &format!("/hooks/{stage}"),
            json!({
                "path": script.to_string_lossy(),
                "args": ["hook.sh", stage],
                "env": [format!("{TAG_ENV}={}", h.tag())],
            }),
        );
    }
    let config_len = fs::metadata(b.config_path()).unwrap().len();
    assert!(config_len > 1 << 20, "{config_len}");

    let id = h.id("large");
    h.create(&id, &b).ok();
    let state = h.state_of(&id);
    assert_eq!(
        state.json["annotations"],
        json!(want),
        "`state` lost annotations"
    );
    h.start(&id).ok();
    h.wait_status(&id, "running");
    let out = h.exec(&["exec", &id, "echo", "exec ok"]).ok();
    assert_eq!(out.stdout, "exec ok\n");

    for stage in stages {
        let path = dir.join(format!("state-{stage}"));
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{stage}: {e}"));
        let got: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{stage}: {e}"));
        assert_eq!(got["id"], json!(id), "{stage}");
        assert_eq!(got["annotations"], json!(want), "{stage}: annotations");
    }
    h.delete_force(&id).ok();
    h.assert_clean();
}
