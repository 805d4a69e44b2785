//! config.json: loading and whole-spec validation before any side effect.

mod example;
mod json_path;
mod validate;

use std::fs;
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
    let text = fs::read(&path).map_err(Error::io("read", &path))?;
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

/// Parse config.json text; on error, the JSON path of the bad field and the reason.
pub fn parse(text: &[u8]) -> std::result::Result<Spec, (String, String)> {
    json_path::parse(text)
}
