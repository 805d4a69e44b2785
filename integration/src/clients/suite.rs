//! What every client suite shares: its temp dir, the runtime under test, the image tag that
//! finds its container processes, the snapshot for leak checks and the call contract.

use std::path::PathBuf;
use std::time::Duration;

use super::check::CheckResult;
use super::leaks::Snapshot;
use super::runtime::{self, Runtime};
use crate::TempDir;

/// The README whose `<!-- calls: CLIENT -->` blocks list the runtime calls each client makes.
pub const CONTRACT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/README.md");

/// One suite's surroundings.
#[derive(Debug)]
pub struct SuiteEnv {
    pub dir: TempDir,
    pub runtime: Runtime,
    snapshot: Snapshot,
    /// harun shim sockets that existed before the suite.
    sockets: std::collections::BTreeSet<PathBuf>,
}

impl SuiteEnv {
    /// A temp dir `/tmp/PREFIX-XXXXXX`, the runtime (wrapped inside it), a leak snapshot.
    pub fn new(prefix: &str) -> Result<SuiteEnv, String> {
        let snapshot = Snapshot::take();
        let dir = TempDir::new(prefix).map_err(|e| format!("temp dir: {e}"))?;
        let runtime = Runtime::from_env(dir.path())?;
        println!(
            "{prefix}: runtime {} ({}), {}, temp dir {}",
            runtime.name,
            runtime.real.display(),
            if super::host::in_test_vm() {
                "in the cgroup-v2 VM"
            } else {
                "on the host"
            },
            dir.path().display()
        );
        Ok(SuiteEnv {
            dir,
            runtime,
            snapshot,
            sockets: runtime::shim_sockets(),
        })
    }

    /// `HARUN_CLIENT_TAG=<temp dir name>`: in the image's environment, so every container
    /// process (and exec) of this suite carries it.
    pub fn tag_env(&self) -> String {
        let name = self.dir.path().file_name().unwrap_or_default();
        format!("HARUN_CLIENT_TAG={}", name.to_string_lossy())
    }

    /// A path in the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The runtime calls made so far, each abstracted, must all be in the README's block
    /// for `client`.
    pub fn check_contract(&self, client: &str) -> CheckResult {
        let seen = self.runtime.call_shapes();
        if self.runtime.shim.is_some() {
            // harun's shim: the runtime in-process. Its wrapper was first on containerd's
            // PATH all along; no runtime binary may have been run.
            println!(
                "runtime calls made by {client} through harun's shim: {}",
                seen.len()
            );
            return if seen.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "harun's shim ran the runtime binary:\n{}",
                    seen.into_iter().collect::<Vec<_>>().join("\n")
                ))
            };
        }
        println!("runtime calls made by {client} (abstracted):");
        for s in &seen {
            println!("    {s}");
        }
        let text =
            std::fs::read_to_string(CONTRACT).map_err(|e| format!("read {CONTRACT}: {e}"))?;
        let block = contract_block(&text, client)
            .ok_or_else(|| format!("{CONTRACT} has no `<!-- calls: {client} -->` block"))?;
        let missing = runtime::undocumented(&seen, block);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "calls not in {CONTRACT} (`{client}` block): the contract changed, document it:\n{}",
                missing.join("\n")
            ))
        }
    }

    /// What the suite left behind (after its own cleanup), with the runtime's state roots;
    /// first the client's own cgroups (`client_cgroups`, deepest first) are removed.
    pub fn leaks(&self, state_dirs: &[PathBuf], client_cgroups: &[&str]) -> Vec<String> {
        self.snapshot.remove_client_cgroups(client_cgroups);
        let mut left = self
            .snapshot
            .leaks(self.dir.path(), &self.tag_env(), state_dirs);
        for s in runtime::shim_sockets().difference(&self.sockets) {
            left.push(format!("shim socket {}", s.display()));
        }
        left
    }
}

impl SuiteEnv {
    /// The cleanup check every suite ends with: the client's own shutdown went well
    /// (`shutdown`), then nothing is left ([`SuiteEnv::leaks`], waited for briefly).
    pub fn check_clean(
        &self,
        shutdown: Result<(), String>,
        state_dirs: &[PathBuf],
        client_cgroups: &[&str],
    ) -> CheckResult {
        let left = super::check::eventually(super::host::patience(Duration::from_secs(5)), || {
            let l = self.leaks(state_dirs, client_cgroups);
            if l.is_empty() {
                Ok(())
            } else {
                Err(l.join("\n"))
            }
        });
        let problems: Vec<String> = [shutdown, left]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// Unmounts (detached) whatever is still mounted at or below `dir`.
pub fn unmount_below(dir: &std::path::Path) {
    for m in crate::mountinfo::mounts_under(dir) {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The fenced block after `<!-- calls: CLIENT -->`.
fn contract_block<'a>(text: &'a str, client: &str) -> Option<&'a str> {
    let marker = format!("<!-- calls: {client} -->");
    let rest = &text[text.find(&marker)? + marker.len()..];
    let start = rest.find("```")?;
    let body = &rest[start + 3..];
    let body = &body[body.find('\n')? + 1..];
    Some(&body[..body.find("```")?])
}
