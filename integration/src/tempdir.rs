//! A temp dir that is removed on drop, but never across a mount point.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::mountinfo;

/// `/tmp/PREFIX-XXXXXX` (or under another parent), removed on drop unless something is
/// still mounted below it (removing across a leaked bind mount could delete host files).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    removed: bool,
}

impl TempDir {
    /// Makes `/tmp/{prefix}-XXXXXX`.
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        TempDir::new_in(Path::new("/tmp"), prefix)
    }

    /// Makes `{parent}/{prefix}-XXXXXX`.
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<TempDir> {
        let template = parent.join(format!("{prefix}-XXXXXX"));
        let path = nix::unistd::mkdtemp(&template).map_err(io::Error::from)?;
        Ok(TempDir {
            path,
            removed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The random suffix mkdtemp chose (6 alphanumerics): unique among live temp dirs.
    pub fn suffix(&self) -> &str {
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.rsplit('-').next().unwrap_or(name)
    }

    /// Removes the tree; refuses (and keeps it) while anything is mounted below it.
    pub fn remove(&mut self) -> Result<(), String> {
        if self.removed {
            return Ok(());
        }
        let mounts = mountinfo::mounts_under(&self.path);
        if !mounts.is_empty() {
            return Err(format!(
                "not removing {}: still mounted below it: {}",
                self.path.display(),
                mounts.join(", ")
            ));
        }
        match fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("remove {}: {e}", self.path.display())),
        }
        self.removed = true;
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("warning: {e}");
        }
    }
}
