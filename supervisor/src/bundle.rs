//! The bundle a supervised container is created from.
//!
//! `harun supervise` creates each container from a copy of its service's config.json in
//! the container's supervision dir (`ROOT/.supervise/ID/bundle/config.json`), for three
//! reasons: the copy is the config as it was when the service was loaded (a rollback gets
//! the old config back even after the file changed in place); it tells each replica who it
//! is (`HARUN_SERVICE`, `HARUN_CONTAINER` in its environment); and it carries the notify
//! socket's mount and `NOTIFY_SOCKET` for services that speak that protocol.
//!
//! The copy lives elsewhere than the bundle, so paths that were relative to the bundle are
//! made absolute: `root.path` and the sources of bind mounts (the only two the runtime
//! resolves against the bundle directory). The rest is the file as written.

use std::path::{Path, PathBuf};

use harun_runtime::state::{replace_file, Durability};
use harun_runtime::{Error, Result};
use serde_json::{json, Value};

use crate::notify;
use crate::persist::Store;

/// The directory of the copy, in the supervision dir.
pub const BUNDLE_DIR: &str = "bundle";

/// What to add to a container's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Additions<'a> {
    /// `KEY=VALUE` entries replacing the same keys of `process.env`.
    pub env: Vec<(String, String)>,
    /// The directory holding the notify socket, to mount at `/run/notify`.
    pub notify_dir: Option<&'a Path>,
}

/// `config` (of the bundle at `bundle`) with paths made absolute and `add` applied.
pub fn derive(config: &Value, bundle: &Path, add: &Additions<'_>) -> Value {
    let mut c = config.clone();
    if let Some(path) = c.pointer_mut("/root/path") {
        absolute(path, bundle);
    }
    if let Some(Value::Array(mounts)) = c.get_mut("mounts") {
        for m in mounts.iter_mut().filter(|m| is_bind(m)) {
            if let Some(source) = m.get_mut("source") {
                absolute(source, bundle);
            }
        }
    }
    let mut env = add.env.clone();
    if add.notify_dir.is_some() {
        env.push(("NOTIFY_SOCKET".into(), notify::CONTAINER_SOCKET.into()));
    }
    if !env.is_empty() {
        if !c["process"].is_object() {
            c["process"] = json!({});
        }
        let list = c["process"]
            .as_object_mut()
            .map(|p| p.entry("env").or_insert_with(|| json!([])));
        if let Some(Value::Array(list)) = list {
            list.retain(|e| {
                let key = e.as_str().and_then(|s| s.split('=').next()).unwrap_or("");
                !env.iter().any(|(k, _)| k == key)
            });
            list.extend(env.iter().map(|(k, v)| json!(format!("{k}={v}"))));
        }
    }
    if let Some(dir) = add.notify_dir {
        let mount = json!({
            "destination": notify::CONTAINER_DIR,
            "type": "bind",
            "source": dir,
            "options": ["bind", "nosuid", "nodev", "noexec"],
        });
        match c.get_mut("mounts") {
            Some(Value::Array(mounts)) => mounts.push(mount),
            _ => c["mounts"] = json!([mount]),
        }
    }
    c
}

/// Writes the derived config into `store`; returns the bundle directory to create from.
pub fn write(store: &Store, config: &Value) -> Result<PathBuf> {
    let dir = store.file(BUNDLE_DIR);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("create", &dir)(e)),
    }
    let text = serde_json::to_vec_pretty(config)
        .map_err(|e| Error::spec("config.json copy", e.to_string()))?;
    replace_file(&dir.join("config.json"), &text, Durability::Atomic)?;
    Ok(dir)
}

fn is_bind(mount: &Value) -> bool {
    if mount.get("type").and_then(Value::as_str) == Some("bind") {
        return true;
    }
    mount
        .get("options")
        .and_then(Value::as_array)
        .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// A relative path string made absolute against `base`.
fn absolute(path: &mut Value, base: &Path) {
    if let Some(p) = path.as_str() {
        if !p.is_empty() && Path::new(p).is_relative() {
            *path = json!(base.join(p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute_and_the_rest_stays() {
        let config = json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs", "readonly": true},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind"]},
                {"destination": "/etc/x", "source": "files/x", "options": ["bind", "ro"]},
                {"destination": "/abs", "type": "bind", "source": "/srv/abs"}
            ],
            "process": {"args": ["sh"], "env": ["PATH=/bin", "HARUN_SERVICE=old"]},
            "annotations": {"run.harun.replicas": "3"}
        });
        let add = Additions {
            env: vec![
                ("HARUN_SERVICE".into(), "web".into()),
                ("HARUN_CONTAINER".into(), "web-1".into()),
            ],
            notify_dir: None,
        };
        let got = derive(&config, Path::new("/b/web"), &add);
        assert_eq!(
            got["root"],
            json!({"path": "/b/web/rootfs", "readonly": true})
        );
        assert_eq!(got["mounts"][0]["source"], "proc", "not a bind mount");
        assert_eq!(got["mounts"][1]["source"], "/b/web/data");
        assert_eq!(got["mounts"][2]["source"], "/b/web/files/x");
        assert_eq!(got["mounts"][3]["source"], "/srv/abs");
        assert_eq!(
            got["process"]["env"],
            json!(["PATH=/bin", "HARUN_SERVICE=web", "HARUN_CONTAINER=web-1"])
        );
        assert_eq!(got["annotations"], config["annotations"]);
        assert_eq!(got["ociVersion"], "1.0.2");
        // Nothing to add, absolute root: the same config.
        let plain = json!({"root": {"path": "/r"}, "process": {"args": ["x"]}});
        assert_eq!(
            derive(&plain, Path::new("/b"), &Additions::default()),
            plain
        );
    }

    #[test]
    fn notify_adds_the_socket_mount_and_its_variable() {
        let config = json!({"root": {"path": "/r"}, "process": {"args": ["x"]}});
        let add = Additions {
            env: vec![],
            notify_dir: Some(Path::new("/run/harun/.supervise/web/notify")),
        };
        let got = derive(&config, Path::new("/b"), &add);
        assert_eq!(
            got["process"]["env"],
            json!(["NOTIFY_SOCKET=/run/notify/notify.sock"])
        );
        assert_eq!(got["mounts"][0]["destination"], "/run/notify");
        assert_eq!(
            got["mounts"][0]["source"],
            "/run/harun/.supervise/web/notify"
        );
        assert_eq!(got["mounts"][0]["type"], "bind");
    }
}
