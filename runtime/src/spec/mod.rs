//! config.json: loading and whole-spec validation before any side effect.

mod example;
mod json_path;
mod validate;

#[cfg(test)]
mod proptests;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::{Error, Result};

pub use example::{example, example_json};
pub use json_path::parse as parse_json;
pub use validate::{validate, validate_process};

/// A bundle whose config.json parsed and validated.
#[derive(Debug)]
pub struct Bundle {
    /// Absolute, canonical bundle directory.
    pub dir: PathBuf,
    /// Absolute, canonical root filesystem directory.
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// Namespaces to create and to join (join paths already opened and type-checked).
    pub plan: crate::namespaces::Plan,
    /// `linux.seccomp`, compiled for the running architecture.
    pub seccomp: Option<crate::security::seccomp::Filter>,
}

/// Read `<bundle>/config.json`; errors name the file and, for bad JSON, the field path
/// (`linux.namespaces[1].type: unknown variant ...`).
pub fn load(bundle: &Path) -> Result<Bundle> {
    load_with(bundle, |_| Ok(()))
}

/// [`load`] with `edit` applied to the spec before it is validated (`harun run`'s
/// `-e`, `-t`, `-- CMD ARGS`).
pub fn load_with(bundle: &Path, edit: impl FnOnce(&mut Spec) -> Result<()>) -> Result<Bundle> {
    let dir = fs::canonicalize(bundle).map_err(Error::io("open bundle", bundle))?;
    let path = dir.join("config.json");
    let text = read_json_file(&path)?;
    let mut spec = parse(&text)
        .map_err(|(field, reason)| Error::spec(format!("{}: {field}", path.display()), reason))?;
    edit(&mut spec)?;
    let (rootfs, plan, seccomp) = validate(&spec, &dir)?;
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        plan,
        seccomp,
    })
}

/// The largest config.json (or `exec --process` file) harun reads: 8 MiB.
///
/// What real clients send is far smaller. Kubernetes caps a pod's annotations at 256 KiB
/// and a whole pod object at etcd's 1.5 MiB request limit, so a CRI config (env, mounts,
/// annotations, plus a seccomp profile of some 30-100 KB) stays under ~2 MiB; podman's and
/// containerd's own configs are a few KiB plus the same profile. 8 MiB is four times the
/// largest of those, and still an amount an edge device parses without noticing.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// Read a JSON file the caller names (config.json, `exec --process`): a regular file (a
/// symlink to one is followed, as runc does) of at most [`MAX_CONFIG_BYTES`]. A FIFO would
/// block `open` or `read` forever and a device (`/dev/zero`) would be read until memory runs
/// out: the type is checked with stat before the open, the open does not block (O_NONBLOCK),
/// and fstat checks the file actually opened, so swapping the file in between gains nothing.
pub fn read_json_file(path: &Path) -> Result<Vec<u8>> {
    let regular = |meta: &fs::Metadata| -> Result<()> {
        let ft = meta.file_type();
        let what = if ft.is_file() {
            return match meta.len() {
                n if n > MAX_CONFIG_BYTES => Err(too_big(path, &format!("{n} bytes"))),
                _ => Ok(()),
            };
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        Err(Error::InvalidArgument(format!(
            "`{}` is {what}, not a regular file",
            path.display()
        )))
    };
    regular(&fs::metadata(path).map_err(Error::io("read", path))?)?;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(Error::io("open", path))?;
    regular(&file.metadata().map_err(Error::io("stat", path))?)?;
    let mut text = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(Error::io("read", path))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big(path, "growing"));
    }
    Ok(text)
}

fn too_big(path: &Path, size: &str) -> Error {
    Error::InvalidArgument(format!(
        "`{}` is too large ({size}): harun reads at most {} MiB of JSON",
        path.display(),
        MAX_CONFIG_BYTES >> 20
    ))
}

/// Parse config.json text; on error, the JSON path of the bad field and the reason.
pub fn parse(text: &[u8]) -> std::result::Result<Spec, (String, String)> {
    json_path::parse(text)
}
