//! Kubernetes' path without a kubelet: containerd's CRI plugin with a runtime handler for
//! the runtime under test (`runtime_type = "io.containerd.runc.v2"`, `BinaryName` = the
//! runtime), driven over the CRI v1 gRPC API in the order a kubelet uses it: a pod sandbox
//! (host network), containers in it, exec, logs, stats, resource updates, stop, removal.
//!
//! With `HARUN_CLIENT_SHIM=1` the handler is harun's own shim instead
//! (`runtime_type = "io.containerd.harun.v2"`, one shim per pod).
//!
//! `cargo test -p harun-integration --test clients_cri [FILTER...]`. Needs the cpu, memory
//! and pids controllers in cgroup v2 (containerd gives every pod sandbox cpu.shares), so it
//! runs in the cgroup-v2 VM: `integration/vm/cargo-test -p harun-integration --test clients_cri`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use harun_integration::clients::check::{eventually, CheckResult, Suite};
use harun_integration::clients::containerd::{Containerd, Cri, CriRuntime};
use harun_integration::clients::host::{self, patience};
use harun_integration::clients::image::{self, Spec};
use harun_integration::clients::runtime::SHIM_RUNTIME;
use harun_integration::clients::suite::SuiteEnv;
use harun_integration::ensure;
use harun_integration::procs;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::{Channel, Endpoint, Uri};

const IMAGE: &str = "docker.io/library/busybox:local";
const PAUSE: &str = "docker.io/library/hc-pause:local";
const HANDLER: &str = "harun-under-test";
const PAUSE_CMD: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM INT; while :; do sleep 1; done",
];
/// The pods' cgroup parent, as a kubelet with the cgroupfs driver gives one.
const POD_PARENT: &str = "hc-kubepods";

/// A CRI client on containerd's socket; each call blocks.
struct CriClient {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl CriClient {
    fn connect(sock: &Path) -> Result<CriClient, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        let sock = sock.to_path_buf();
        let channel = rt
            .block_on(
                Endpoint::try_from("http://[::]:50051")
                    .map_err(|e| e.to_string())?
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let sock = sock.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(sock).await?,
                            ))
                        }
                    })),
            )
            .map_err(|e| format!("connect to containerd's CRI socket: {e}"))?;
        Ok(CriClient {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    /// Runs one call with a deadline; a gRPC error becomes its code and message.
    fn call<T, F>(&self, what: &str, f: F) -> Result<T, String>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let d = patience(Duration::from_secs(60));
        // The timer must be made inside the runtime.
        match self.rt.block_on(async { tokio::time::timeout(d, f).await }) {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(format!("{what}: {:?}: {}", s.code(), s.message())),
            Err(_) => Err(format!("{what}: no answer in {d:?}")),
        }
    }

    fn rs(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    fn container_status(&self, id: &str) -> Result<ContainerStatus, String> {
        let r = self.call(
            "ContainerStatus",
            self.rs().container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            }),
        )?;
        r.status
            .ok_or_else(|| "ContainerStatus without a status".into())
    }

    fn wait_state(&self, id: &str, want: ContainerState) -> Result<ContainerStatus, String> {
        eventually(patience(Duration::from_secs(15)), || {
            let s = self.container_status(id)?;
            if s.state == want as i32 {
                Ok(s)
            } else {
                Err(format!(
                    "container {id} is in state {}, not {want:?}",
                    s.state
                ))
            }
        })
    }

    fn remove_container(&self, id: &str) -> Result<(), String> {
        let req = RemoveContainerRequest {
            container_id: id.into(),
        };
        self.call("RemoveContainer", self.rs().remove_container(req))
            .map(drop)
    }

    fn exec_sync(&self, id: &str, cmd: &[&str]) -> Result<ExecSyncResponse, String> {
        self.call(
            "ExecSync",
            self.rs().exec_sync(ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 30,
            }),
        )
    }
}

/// What a kubelet asks for a host-network pod: the node's network, a pid namespace per
/// container, one IPC namespace for the pod.
fn namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

struct Ctx {
    env: SuiteEnv,
    ctd: Containerd,
    cri: CriClient,
    runtime_root: PathBuf,
    logs: PathBuf,
}

impl Ctx {
    fn sandbox_config(&self, name: &str) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "hc".into(),
                attempt: 0,
            }),
            // A host-network pod shares the node's UTS namespace: no hostname of its own.
            hostname: String::new(),
            log_directory: self.logs.join(name).to_string_lossy().into_owned(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("/{POD_PARENT}/pod-{name}"),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn container_config(&self, name: &str, command: &[&str]) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: IMAGE.into(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            envs: vec![KeyValue {
                key: "HC".into(),
                value: "yes".into(),
            }],
            log_path: format!("{name}.log"),
            linux: Some(LinuxContainerConfig {
                resources: Some(LinuxContainerResources {
                    memory_limit_in_bytes: 64 << 20,
                    cpu_shares: 512,
                    ..Default::default()
                }),
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(namespaces()),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    fn create_container(
        &self,
        pod: &str,
        pod_config: &PodSandboxConfig,
        name: &str,
        command: &[&str],
    ) -> Result<String, String> {
        let r = self.cri.call(
            "CreateContainer",
            self.cri.rs().create_container(CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(self.container_config(name, command)),
                sandbox_config: Some(pod_config.clone()),
            }),
        )?;
        Ok(r.container_id)
    }

    fn start_container(&self, id: &str) -> CheckResult {
        self.cri
            .call(
                "StartContainer",
                self.cri.rs().start_container(StartContainerRequest {
                    container_id: id.into(),
                }),
            )
            .map(drop)
    }
}

fn main() -> ExitCode {
    let mut suite = Suite::from_args("clients_cri");
    if let Some(why) = host::lacks_programs(&["containerd", "ctr", "containerd-shim-runc-v2"]) {
        suite.skip("cri", &why);
        return suite.finish();
    }
    if let Some(why) = host::lacks_controllers(&["cpu", "memory", "pids"]) {
        suite.skip(
            "cri",
            &format!("containerd's CRI sets cpu.shares on every pod sandbox: {why}"),
        );
        return suite.finish();
    }
    let mut ctx = match setup() {
        Ok(c) => c,
        Err(e) => {
            suite.check("setup", || Err(e));
            return suite.finish();
        }
    };
    pod_lifecycle(&mut suite, &ctx);
    suite.check("runtime calls are the documented contract", || {
        ctx.env.check_contract("cri")
    });
    suite.check("cleanup leaves nothing behind", || cleanup(&mut ctx));
    suite.finish()
}

fn setup() -> Result<Ctx, String> {
    let env = SuiteEnv::new("harun-clients-cri")?;
    let runtime_root = match env.runtime.shim {
        // The shim's default root: CRI passes no runc options to another runtime type.
        Some(_) => PathBuf::from("/run/containerd/harun"),
        None => env.path("runtime-root"),
    };
    let logs = env.path("pod-logs");
    let tag = env.tag_env();
    let busybox = image::build(
        env.dir.path(),
        &Spec {
            name: IMAGE,
            cmd: &["sh"],
            env: std::slice::from_ref(&tag),
        },
    )?;
    let pause = image::build(
        env.dir.path(),
        &Spec {
            name: PAUSE,
            cmd: PAUSE_CMD,
            env: &[tag],
        },
    )?;
    let runtime = match &env.runtime.shim {
        Some(_) => CriRuntime::Shim {
            runtime_type: SHIM_RUNTIME,
        },
        None => CriRuntime::RuncShim {
            binary: &env.runtime.wrapper,
            root: &runtime_root,
        },
    };
    let ctd = Containerd::start(
        &env.path("containerd"),
        Some(&Cri {
            handler: HANDLER,
            runtime,
            sandbox_image: PAUSE,
        }),
        env.runtime.bin_dir(),
    )?;
    for img in [&busybox, &pause] {
        ctd.ctr("k8s.io")
            .args(["images", "import"])
            .arg(&img.oci_archive)
            .run()?
            .ok()?;
    }
    let cri = CriClient::connect(&ctd.sock)?;
    Ok(Ctx {
        env,
        ctd,
        cri,
        runtime_root,
        logs,
    })
}

fn pod_lifecycle(s: &mut Suite, c: &Ctx) {
    let cri = &c.cri;
    s.check("Version", || {
        let v = cri.call(
            "Version",
            cri.rs().version(VersionRequest {
                version: "v1".into(),
            }),
        )?;
        ensure!(
            v.runtime_name == "containerd" && v.runtime_api_version == "v1",
            "{v:?}"
        );
        Ok(())
    });
    s.check("Status: runtime ready", || {
        let st = cri.call("Status", cri.rs().status(StatusRequest { verbose: false }))?;
        let ready = st
            .status
            .iter()
            .flat_map(|s| &s.conditions)
            .any(|c| c.r#type == "RuntimeReady" && c.status);
        ensure!(ready, "{st:?}");
        Ok(())
    });
    s.check("ImageStatus of the local images", || {
        for img in [IMAGE, PAUSE] {
            let st = cri.call(
                "ImageStatus",
                cri.images.clone().image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image: img.into(),
                        ..Default::default()
                    }),
                    verbose: false,
                }),
            )?;
            ensure!(st.image.is_some(), "{img} unknown to CRI");
        }
        Ok(())
    });
    let pod_config = c.sandbox_config("hc-pod");
    let pod = std::cell::RefCell::new(String::new());
    s.check("RunPodSandbox", || {
        let r = cri.call(
            "RunPodSandbox",
            cri.rs().run_pod_sandbox(RunPodSandboxRequest {
                config: Some(pod_config.clone()),
                runtime_handler: HANDLER.into(),
            }),
        )?;
        *pod.borrow_mut() = r.pod_sandbox_id;
        Ok(())
    });
    let pod = pod.into_inner();
    s.check("PodSandboxStatus: ready", || {
        let st = cri.call(
            "PodSandboxStatus",
            cri.rs().pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: false,
            }),
        )?;
        let state = st.status.as_ref().map(|s| s.state);
        ensure!(
            state == Some(PodSandboxState::SandboxReady as i32),
            "{st:?}"
        );
        Ok(())
    });
    let svc = std::cell::RefCell::new(String::new());
    s.check("CreateContainer, StartContainer, ContainerStatus", || {
        let script = "echo out-line; echo err-line >&2; trap 'echo stopping; exit 0' TERM; while :; do sleep 1; done";
        let id = c.create_container(&pod, &pod_config, "svc", &["sh", "-c", script])?;
        let st = cri.container_status(&id)?;
        ensure!(st.state == ContainerState::ContainerCreated as i32, "after create: {st:?}");
        c.start_container(&id)?;
        cri.wait_state(&id, ContainerState::ContainerRunning)?;
        *svc.borrow_mut() = id;
        Ok(())
    });
    let svc = svc.into_inner();
    let why_not = c
        .env
        .runtime
        .shim
        .is_none()
        .then(|| "harun's shim only (HARUN_CLIENT_SHIM=1)".to_string());
    s.check_unless("one shim serves the pod", why_not, || {
        // The sandbox and the container: one daemon (and its engine), found by this
        // suite's containerd socket in their command lines.
        let sock = c.ctd.sock.to_string_lossy().into_owned();
        let daemons = shim_daemons(&sock);
        ensure!(daemons.len() == 1, "shim daemons for the pod: {daemons:?}");
        Ok(())
    });
    s.check("ExecSync: output, stderr, exit code", || {
        let r = cri.exec_sync(&svc, &["sh", "-c", "echo $HC; echo oops >&2; exit 3"])?;
        ensure!(
            r.stdout == b"yes\n" && r.stderr == b"oops\n" && r.exit_code == 3,
            "{r:?}"
        );
        Ok(())
    });
    s.check("the container log file CRI writes", || {
        let path = c.logs.join("hc-pod").join("svc.log");
        eventually(patience(Duration::from_secs(10)), || {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let has = |stream: &str, line: &str| {
                text.lines()
                    .any(|l| l.contains(&format!(" {stream} F {line}")))
            };
            if has("stdout", "out-line") && has("stderr", "err-line") {
                Ok(())
            } else {
                Err(text)
            }
        })
    });
    s.check("the resources reach the cgroup", || {
        let r = cri.exec_sync(
            &svc,
            &[
                "cat",
                "/sys/fs/cgroup/memory.max",
                "/sys/fs/cgroup/cpu.weight",
            ],
        )?;
        let out = String::from_utf8_lossy(&r.stdout);
        let mut lines = out.lines();
        ensure!(
            lines.next() == Some("67108864"),
            "memory.max: {out:?} {r:?}"
        );
        // cpu_shares 512: weight 59 by the conversion of runc >= 1.3.2 and crun >= 1.23
        // (harun's), 20 by runc 1.1's linear one; the control may give either.
        let weight = lines.next().unwrap_or_default();
        let allowed: &[&str] = if c.env.runtime.is_harun() {
            &["59"]
        } else {
            &["59", "20"]
        };
        ensure!(
            allowed.contains(&weight),
            "cpu.weight {weight:?}, expected one of {allowed:?}"
        );
        Ok(())
    });
    s.check("ContainerStats", || {
        eventually(patience(Duration::from_secs(15)), || {
            let r = cri.call(
                "ContainerStats",
                cri.rs().container_stats(ContainerStatsRequest {
                    container_id: svc.clone(),
                }),
            )?;
            let st = r.stats.ok_or("no stats")?;
            let cpu = st
                .cpu
                .and_then(|c| c.usage_core_nano_seconds)
                .map_or(0, |v| v.value);
            let mem = st
                .memory
                .and_then(|m| m.working_set_bytes)
                .map_or(0, |v| v.value);
            if cpu > 0 && mem > 0 {
                Ok(())
            } else {
                Err(format!("cpu {cpu} ns, working set {mem} B"))
            }
        })
    });
    s.check("UpdateContainerResources", || {
        cri.call(
            "UpdateContainerResources",
            cri.rs()
                .update_container_resources(UpdateContainerResourcesRequest {
                    container_id: svc.clone(),
                    linux: Some(LinuxContainerResources {
                        memory_limit_in_bytes: 100 << 20,
                        cpu_shares: 1024,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
        )?;
        let r = cri.exec_sync(&svc, &["cat", "/sys/fs/cgroup/memory.max"])?;
        ensure!(r.stdout == b"104857600\n", "{r:?}");
        Ok(())
    });
    s.check("a container that exits: state and exit code", || {
        let id = c.create_container(&pod, &pod_config, "quitter", &["sh", "-c", "exit 4"])?;
        c.start_container(&id)?;
        let st = cri.wait_state(&id, ContainerState::ContainerExited)?;
        ensure!(st.exit_code == 4, "{st:?}");
        cri.remove_container(&id)
    });
    s.check("a missing command fails with the runtime's reason", || {
        let id = c.create_container(&pod, &pod_config, "missing", &["hc-no-such-cmd"]);
        let err = match id {
            Err(e) => e,
            Ok(id) => {
                let started = c.start_container(&id);
                let _ = cri.remove_container(&id);
                started
                    .err()
                    .ok_or("StartContainer of a missing command succeeded")?
            }
        };
        ensure!(err.contains("hc-no-such-cmd"), "{err}");
        Ok(())
    });
    s.check("StopContainer: TERM, then exited 0", || {
        cri.call(
            "StopContainer",
            cri.rs().stop_container(StopContainerRequest {
                container_id: svc.clone(),
                timeout: 10,
            }),
        )?;
        let st = cri.wait_state(&svc, ContainerState::ContainerExited)?;
        ensure!(st.exit_code == 0, "{st:?}");
        Ok(())
    });
    s.check("RemoveContainer, ListContainers", || {
        cri.remove_container(&svc)?;
        let l = cri.call(
            "ListContainers",
            cri.rs()
                .list_containers(ListContainersRequest { filter: None }),
        )?;
        ensure!(l.containers.is_empty(), "{l:?}");
        Ok(())
    });
    s.check("StopPodSandbox, RemovePodSandbox", || {
        cri.call(
            "StopPodSandbox",
            cri.rs().stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            }),
        )?;
        cri.call(
            "RemovePodSandbox",
            cri.rs().remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            }),
        )?;
        let l = cri.call(
            "ListPodSandbox",
            cri.rs()
                .list_pod_sandbox(ListPodSandboxRequest { filter: None }),
        )?;
        ensure!(l.items.is_empty(), "{l:?}");
        Ok(())
    });
}

/// harun shim daemons started by the containerd at `sock` (the engine, a fork of each,
/// is named `harun-shim-eng`).
fn shim_daemons(sock: &str) -> Vec<i32> {
    procs::with_args(|pid, args| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        comm.trim() != "harun-shim-eng"
            && args
                .first()
                .is_some_and(|a| a.ends_with("containerd-shim-harun-v2"))
            && args.iter().any(|a| a == sock)
    })
}

fn cleanup(c: &mut Ctx) -> CheckResult {
    let shutdown = c.ctd.shutdown(&["k8s.io"]);
    let pod_cgroup = format!("{POD_PARENT}/pod-hc-pod");
    c.env.check_clean(
        shutdown,
        &[c.runtime_root.join("k8s.io")],
        &[&pod_cgroup, POD_PARENT],
    )
}
