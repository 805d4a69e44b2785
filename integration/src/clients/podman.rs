//! podman with private configuration and storage: rootful, the cgroupfs manager, the runtime
//! under test given with `--runtime`; nothing of the host's podman state is used or changed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::resource::Resource;

use super::cmd::Cmd;
use super::host::{self, patience};
use super::runtime::Runtime;

/// podman set up for one suite.
#[derive(Debug)]
pub struct Podman {
    dir: PathBuf,
    runtime: Runtime,
    conf: PathBuf,
    storage_conf: PathBuf,
    out: PathBuf,
    /// Said once at the start: how this host changed the configuration.
    pub notes: Vec<String>,
}

/// Runtimes podman passes `--log-format=json --log FILE` to: its built-in list plus harun
/// (what a harun user puts in containers.conf too, see integration/clients/README.md).
const SUPPORTS_JSON: &str = r#"["crun", "runc", "kata", "runsc", "youki", "krun", "harun"]"#;

impl Podman {
    /// Writes containers.conf and storage.conf under `dir`.
    pub fn new(dir: &Path, runtime: &Runtime) -> Result<Podman, String> {
        let mut notes = Vec::new();
        let d = dir.display();
        let mut ulimits = String::new();
        if !host::has_cap_sys_resource() {
            // podman asks for nofile/nproc 1048576 by default; without CAP_SYS_RESOURCE no
            // runtime can raise a hard limit (runc fails the same way).
            let nofile = host::hard_limit(Resource::RLIMIT_NOFILE);
            let pid_max: u64 = fs::read_to_string("/proc/sys/kernel/pid_max")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(32768);
            let nproc = host::hard_limit(Resource::RLIMIT_NPROC).min(pid_max);
            ulimits = format!(
                r#"default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]"#
            );
            notes.push(format!(
                "no CAP_SYS_RESOURCE here: containers get nofile={nofile} and nproc={nproc} \
                 (podman's 1048576 cannot be granted by any runtime)"
            ));
        }
        let mut pids = "";
        if let Some(why) = host::lacks_controllers(&["pids"]) {
            // podman limits every container to 2048 processes by default.
            pids = "pids_limit = 0";
            notes.push(format!("podman's default pids limit is off: {why}"));
        }
        let conf = dir.join("containers.conf");
        let text = format!(
            r#"# podman for harun's client suites (integration/clients).
[containers]
# The runtime joins or makes the network namespace either way; bridge networking would
# change the host's interfaces, iptables and /var/lib/cni, which a test must not.
netns = "none"
{ulimits}
{pids}
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
tmp_dir = "{d}/libpod-tmp"
runtime_supports_json = {SUPPORTS_JSON}
[network]
network_config_dir = "{d}/networks"
"#
        );
        fs::write(&conf, text).map_err(|e| format!("write {}: {e}", conf.display()))?;
        let storage_conf = dir.join("storage.conf");
        let text = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/storage\"\nrunroot = \"{d}/runroot\"\n"
        );
        fs::write(&storage_conf, text)
            .map_err(|e| format!("write {}: {e}", storage_conf.display()))?;
        Ok(Podman {
            dir: dir.to_path_buf(),
            runtime: runtime.clone(),
            conf,
            storage_conf,
            out: dir.join("out"),
            notes,
        })
    }

    /// `podman --runtime WRAPPER ARGS...` with the private configuration.
    pub fn cmd<S: Into<std::ffi::OsString>>(&self, args: impl IntoIterator<Item = S>) -> Cmd {
        Cmd::new("podman", &self.out)
            .env("CONTAINERS_CONF", &self.conf)
            .env("CONTAINERS_STORAGE_CONF", &self.storage_conf)
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .arg("--runtime")
            .arg(&self.runtime.wrapper)
            .args(args)
            .timeout(patience(Duration::from_secs(60)))
    }

    /// Removes every container and the storage; unmounts what podman left below the dir.
    pub fn shutdown(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let left = self
            .cmd(["ps", "-aq"])
            .run()
            .map(|o| o.stdout)
            .unwrap_or_default();
        if !left.trim().is_empty() {
            problems.push(format!(
                "containers still there: {}",
                left.trim().replace('\n', " ")
            ));
            let _ = self.cmd(["rm", "-af", "-t", "0"]).run();
        }
        if let Err(e) = self
            .cmd(["system", "reset", "-f"])
            .run()
            .and_then(|o| o.ok())
        {
            problems.push(format!("podman system reset: {e}"));
        }
        super::suite::unmount_below(&self.dir);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}
