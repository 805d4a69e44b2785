//! Build facts for `harun --version`: the commit (from git, or `HARUN_COMMIT` for a build
//! without a git checkout, e.g. from a release tarball), the target and the profile.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HARUN_COMMIT");
    println!("cargo:rerun-if-changed=src/build.rs");
    let commit = std::env::var("HARUN_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HARUN_COMMIT={commit}");
    for var in ["TARGET", "PROFILE"] {
        let value = std::env::var(var).unwrap_or_default();
        println!("cargo:rustc-env=HARUN_{var}={value}");
    }
}

/// `git rev-parse HEAD` (12 digits) of the checkout this package is the top of; `None`
/// without git or outside a checkout (a tarball unpacked inside some other repository does
/// not take that repository's commit).
fn git_commit() -> Option<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        out.status.success().then(|| text.trim().to_string())
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != Path::new(&dir).canonicalize().ok()? {
        return None;
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Build again when HEAD moves: HEAD itself, the branch it names, packed refs.
    let git_dir = git(&["rev-parse", "--absolute-git-dir"])?;
    let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])?;
    let head = Path::new(&git_dir).join("HEAD");
    let mut watch = vec![head.clone(), Path::new(&common).join("packed-refs")];
    if let Some(branch) = std::fs::read_to_string(&head)
        .ok()
        .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
    {
        watch.push(Path::new(&common).join(branch));
    }
    for path in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    Some(commit)
}
