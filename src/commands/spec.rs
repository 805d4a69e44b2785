//! spec: write runc's example config.json into a bundle directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use harun_runtime::{spec, Error, Result};

pub fn run(bundle: &Path) -> Result<i32> {
    let path = bundle.join("config.json");
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::InvalidArgument(format!(
                "`{}` exists already: remove it first",
                path.display()
            )),
            _ => Error::io("create", &path)(e),
        })?;
    let pretty: serde_json::Value = serde_json::from_slice(spec::example_json().as_bytes())
        .map_err(|e| Error::Internal(format!("the example config: {e}")))?;
    let text = serde_json::to_string_pretty(&pretty).unwrap_or_default();
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .map_err(Error::io("write", &path))?;
    Ok(0)
}
