//! Bundles whose container init fails, one for each kind of error the init raises, and what
//! the failure must say. tests/library.rs checks what a library caller gets back,
//! tests/cli_errors.rs what `harun create` prints and logs: the same kind, errno and field
//! either way, though the error was raised in another process.

use std::fs;

use serde_json::json;

use crate::{Bundle, Harun};

/// One failing bundle and its error.
#[derive(Debug)]
pub struct Case {
    pub name: &'static str,
    pub bundle: Bundle,
    /// `ErrorKind::name`: as `--log-format json` writes it.
    pub kind: &'static str,
    /// The errno's name (`EISDIR`).
    pub errno: Option<&'static str>,
    /// The config field at fault, for a spec error.
    pub field: Option<&'static str>,
    /// Words the message contains.
    pub message: &'static [&'static str],
}

/// The cases, each with a fresh bundle of `h`'s.
pub fn cases(h: &Harun) -> Vec<Case> {
    let mut not_found = h.bundle();
    not_found.args(&["no-such-program"]);
    let mut directory = h.bundle();
    directory.args(&["/etc"]);
    // /dev a bind of a host directory whose `null` is a plain file: masking a path over it
    // would expose that file (runc CVE-2025-52565 class), so the init refuses.
    let dev = h.path("dev");
    fs::create_dir(&dev).expect("mkdir dev");
    fs::write(dev.join("null"), "").expect("write dev/null");
    let mut fake_null = h.bundle();
    fake_null.args(&["true"]).set(
        "/mounts/1",
        json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]}),
    );
    // No pid namespace: the hook, the init's child, can kill it (a pid namespace's init
    // ignores signals from inside it).
    let mut killed = h.bundle();
    killed.args(&["true"]).without_namespace("pid").hook(
        "createContainer",
        "/bin/sh",
        &["sh", "-c", "kill -TERM $PPID; sleep 5"],
    );
    vec![
        Case {
            name: "process.args[0] not found",
            bundle: not_found,
            kind: "invalid_input",
            errno: None,
            field: Some("process.args[0]"),
            message: &[
                "in the container: process.args[0]: `no-such-program`",
                "not found in $PATH",
            ],
        },
        Case {
            name: "process.args[0] is a directory",
            bundle: directory,
            kind: "system",
            errno: Some("EISDIR"),
            field: None,
            message: &["in the container: process.args[0] `/etc`: EISDIR"],
        },
        Case {
            name: "/dev/null is not the null device",
            bundle: fake_null,
            kind: "failed_precondition",
            errno: None,
            field: None,
            message: &[
                "in the container: mask `/proc/",
                "`/dev/null` in the container is not the null device",
            ],
        },
        Case {
            name: "the init killed before it was ready",
            bundle: killed,
            kind: "system",
            errno: None,
            field: None,
            message: &["in the container: the init was killed by SIGTERM before it was ready"],
        },
    ]
}
