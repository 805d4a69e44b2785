//! A private containerd for one suite: config, sockets, root and state in the suite's temp
//! dir, started and stopped by the suite; nothing of the host's containerd is used.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cmd::{Cmd, Running};
use super::host::patience;
use crate::procs;

/// containerd's CRI plugin, set up the way a Kubernetes node uses it, with one runtime
/// handler for the runtime under test.
#[derive(Debug, Clone)]
pub struct Cri<'a> {
    /// The RuntimeClass handler name.
    pub handler: &'a str,
    pub runtime: CriRuntime<'a>,
    /// An image already imported into the `k8s.io` namespace, never pulled.
    pub sandbox_image: &'a str,
}

/// How the handler runs the runtime.
#[derive(Debug, Clone)]
pub enum CriRuntime<'a> {
    /// Through containerd's runc shim: `options.BinaryName` (the runtime's wrapper) and
    /// `options.Root` (its state root).
    RuncShim { binary: &'a Path, root: &'a Path },
    /// A shim of its own: `runtime_type`, found on containerd's PATH.
    Shim { runtime_type: &'a str },
}

/// A running private containerd.
#[derive(Debug)]
pub struct Containerd {
    dir: PathBuf,
    pub sock: PathBuf,
    out: PathBuf,
    /// The daemon's PATH.
    path: std::ffi::OsString,
    daemon: Option<Running>,
}

impl Containerd {
    /// Starts containerd with everything under `dir`; the CRI plugin only with `cri`;
    /// `bin` first on its PATH (where it looks for shims, `containerd-shim-NAME-v2`).
    pub fn start(dir: &Path, cri: Option<&Cri<'_>>, bin: &Path) -> Result<Containerd, String> {
        fs::create_dir_all(dir.join("cni")).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let config = dir.join("config.toml");
        fs::write(&config, config_toml(dir, cri))
            .map_err(|e| format!("write {}: {e}", config.display()))?;
        let path = match std::env::var_os("PATH") {
            Some(p) => {
                let mut dirs = vec![bin.to_path_buf()];
                dirs.extend(std::env::split_paths(&p));
                std::env::join_paths(dirs).map_err(|e| e.to_string())?
            }
            None => bin.as_os_str().to_owned(),
        };
        let mut c = Containerd {
            dir: dir.to_path_buf(),
            sock: dir.join("containerd.sock"),
            out: dir.join("out"),
            path,
            daemon: None,
        };
        c.restart()?;
        Ok(c)
    }

    /// Starts the daemon (again, after [`Containerd::kill`]) and waits until it answers.
    pub fn restart(&mut self) -> Result<(), String> {
        let daemon = Cmd::new("containerd", &self.out)
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .arg("--log-level")
            .arg("info")
            .env("PATH", &self.path)
            .timeout(Duration::from_secs(24 * 3600))
            .spawn()?;
        self.daemon = Some(daemon);
        super::check::eventually(patience(Duration::from_secs(20)), || {
            self.ctr("default")
                .arg("version")
                .timeout(patience(Duration::from_secs(5)))
                .run()?
                .ok()
        })
        .map(drop)
        .map_err(|e| format!("containerd did not come up: {e}"))
    }

    /// Kills the daemon with SIGKILL, as a crash would; its shims and tasks live on.
    pub fn kill(&mut self) -> Result<(), String> {
        let d = self.daemon.take().ok_or("containerd is not running")?;
        d.signal(nix::sys::signal::SIGKILL);
        d.wait().map(drop)
    }

    /// `ctr --address SOCK -n NS ...`.
    pub fn ctr(&self, namespace: &str) -> Cmd {
        Cmd::new("ctr", &self.out)
            .arg("--address")
            .arg(&self.sock)
            .args(["-n", namespace])
            .timeout(patience(Duration::from_secs(60)))
    }

    /// The daemon's log (stderr so far).
    pub fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(Running::stderr_now)
            .unwrap_or_default()
    }

    /// Removes every task and container of `namespaces`, stops the daemon and any shim it
    /// left, unmounts what is still mounted below the dir.
    pub fn shutdown(&mut self, namespaces: &[&str]) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.daemon.is_some() {
            for ns in namespaces {
                self.remove_all(ns, &mut problems);
            }
        }
        if let Some(d) = self.daemon.take() {
            d.signal(nix::sys::signal::SIGTERM);
            if let Err(e) = d.wait() {
                problems.push(format!("containerd did not stop: {e}"));
            }
        }
        let dir = self.dir.to_string_lossy().into_owned();
        for (pid, cmdline) in procs::scan("HARUN_NO_SUCH_ENTRY=", &dir) {
            problems.push(format!("left running: {pid} `{cmdline}`"));
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        super::suite::unmount_below(&self.dir);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    fn remove_all(&self, ns: &str, problems: &mut Vec<String>) {
        let list = |what: &str| -> Vec<String> {
            self.ctr(ns)
                .args([what, "ls", "-q"])
                .run()
                .map(|o| o.stdout.lines().map(str::to_string).collect())
                .unwrap_or_default()
        };
        for task in list("task") {
            problems.push(format!("task {ns}/{task} still there at shutdown"));
            let _ = self
                .ctr(ns)
                .args(["task", "kill", "-a", "-s", "SIGKILL", &task])
                .run();
            let _ = self.ctr(ns).args(["task", "delete", "-f", &task]).run();
        }
        for c in list("container") {
            let _ = self.ctr(ns).args(["container", "rm", &c]).run();
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let _ = self.shutdown(&["default", "k8s.io"]);
        }
    }
}

fn config_toml(dir: &Path, cri: Option<&Cri<'_>>) -> String {
    let d = dir.display();
    let mut t = format!(
        r#"# A private containerd for harun's client suites (integration/clients).
version = 2
root = "{d}/root"
state = "{d}/state"
{disabled}
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#,
        disabled = if cri.is_some() {
            ""
        } else {
            r#"disabled_plugins = ["io.containerd.grpc.v1.cri"]"#
        }
    );
    if let Some(c) = cri {
        let p = r#"plugins."io.containerd.grpc.v1.cri""#;
        let h = c.handler;
        let runtime = match &c.runtime {
            CriRuntime::RuncShim { binary, root } => format!(
                r#"[{p}.containerd.runtimes.{h}]
  runtime_type = "io.containerd.runc.v2"
[{p}.containerd.runtimes.{h}.options]
  BinaryName = "{bin}"
  Root = "{root}"
  SystemdCgroup = false
"#,
                bin = binary.display(),
                root = root.display(),
            ),
            CriRuntime::Shim { runtime_type } => format!(
                r#"[{p}.containerd.runtimes.{h}]
  runtime_type = "{runtime_type}"
"#
            ),
        };
        t.push_str(&format!(
            r#"[{p}]
  sandbox_image = "{image}"
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
[{p}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "{h}"
{runtime}[{p}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{d}/cni"
"#,
            image = c.sandbox_image,
        ));
    }
    t
}
