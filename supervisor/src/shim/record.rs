//! What the shim writes into the bundle for the `delete` that containerd runs after a shim
//! died: where the container's state lives, its init's pid, and its exit once known, so
//! `delete` reports the real exit status (containerd's runc shim always says 137).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// BUNDLE/harun-shim.json.
pub const FILE: &str = "harun-shim.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The runtime's state root of the container.
    pub root: PathBuf,
    pub pid: i32,
    /// Exit status and time (seconds, nanoseconds since the epoch), once the init exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<(u32, i64, i32)>,
}

impl Record {
    pub fn load(bundle: &Path) -> Option<Record> {
        let text = std::fs::read(bundle.join(FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Written whole (temp file, rename): a `delete` never reads half of it.
    pub fn save(&self, bundle: &Path) -> harun_runtime::Result<()> {
        let text = serde_json::to_vec(self).unwrap_or_default();
        harun_runtime::state::write_file_atomic(&bundle.join(FILE), &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = std::env::temp_dir().join(format!("harun-shim-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Record::load(&dir), None);
        let r = Record {
            root: "/run/containerd/harun/default".into(),
            pid: 42,
            exit: Some((3, 1700000000, 5)),
        };
        r.save(&dir).unwrap();
        assert_eq!(Record::load(&dir), Some(r));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
