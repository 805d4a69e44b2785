//! The benchmark's world: a private mount namespace for the driver, a work dir with one
//! busybox rootfs and small bundles pointing at it, the runtimes' command lines, a
//! read-only copy of harun, the cgroup parent every container's cgroup goes under.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use serde_json::{json, Value};

use crate::spawn::{Launch, Wrap, R};

/// Every container's cgroup lives under this one (absolute `linux.cgroupsPath`, so runc's v1
/// cgroups on a hybrid host never nest under the machine's own cgroups).
pub const CGROUP_PARENT: &str = "harun-bench";

/// Docker's default seccomp profile, as the tests use it.
const DOCKER_SECCOMP: &str = include_str!("../../tests/fixtures/seccomp/docker-default.json");

/// One runtime under test: its command prefix (binary and global flags).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub name: String,
    pub bin: PathBuf,
    prefix: Vec<OsString>,
    wrap: Wrap,
    log: PathBuf,
}

impl Runtime {
    fn launch(&self, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Launch {
        let mut argv = self.prefix.clone();
        argv.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        Launch {
            argv,
            wrap: self.wrap,
            log: self.log.clone(),
        }
    }

    pub fn run(&self, bundle: &Path, id: &str) -> Launch {
        self.launch(&[&"run", &"--bundle", &bundle, &id])
    }

    pub fn create(&self, bundle: &Path, id: &str, pid_file: &Path) -> Launch {
        self.launch(&[
            &"create",
            &"--bundle",
            &bundle,
            &"--pid-file",
            &pid_file,
            &id,
        ])
    }

    pub fn start(&self, id: &str) -> Launch {
        self.launch(&[&"start", &id])
    }

    pub fn delete(&self, id: &str) -> Launch {
        self.launch(&[&"delete", &id])
    }

    pub fn delete_force(&self, id: &str) -> Launch {
        self.launch(&[&"delete", &"--force", &id])
    }

    pub fn exec_true(&self, id: &str) -> Launch {
        self.launch(&[&"exec", &id, &"/bin/true"])
    }
}

/// Which spec a bundle gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spec {
    /// runc's default spec running /bin/true.
    Default,
    /// The same with Docker's seccomp profile, and memory + pids limits where the host's
    /// cgroup2 hierarchy has those controllers.
    Limited,
    /// The default spec running `sleep` (a container to exec into).
    Sleeper,
}

#[derive(Debug)]
pub struct World {
    pub work: PathBuf,
    /// The cgroup2 hierarchy is the only one (in the VM) rather than hybrid (this host).
    pub unified: bool,
    /// The cgroup2 mount: /sys/fs/cgroup or /sys/fs/cgroup/unified.
    pub cgroup2: PathBuf,
    /// memory and pids controllers are available for `Spec::Limited`.
    pub limits: bool,
    pub runtimes: Vec<Runtime>,
    rootfs: PathBuf,
    bundles: HashMap<(Spec, String), PathBuf>,
    ro_mount: PathBuf,
    tmpfs: PathBuf,
    made_parent: Option<PathBuf>,
}

/// Another harun build to compare, copied into the writable bin dir or onto the read-only
/// mount.
#[derive(Debug, Clone)]
pub struct Also {
    pub name: String,
    pub path: PathBuf,
    pub readonly: bool,
}

impl Also {
    fn copy_in(&self, work: &Path) -> PathBuf {
        work.join(if self.readonly { "ro" } else { "bin" })
            .join(&self.name)
    }
}

/// The binaries to compare.
pub struct Binaries<'a> {
    pub harun: &'a Path,
    /// Other harun builds to compare.
    pub also: &'a [Also],
    pub crun: Option<&'a Path>,
    pub runc: Option<&'a Path>,
}

impl World {
    /// Enter a private mount namespace (so the read-only bind of harun never reaches the
    /// host) and set everything up under `work` (an empty directory).
    pub fn new(work: &Path, bins: &Binaries<'_>) -> R<World> {
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| format!("make / private: {e}"))?;
        // State roots, bundles and binaries on a tmpfs, as /run is on a usual host: no
        // runtime pays for a disk's fsync.
        mount(
            Some("tmpfs"),
            work,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        )
        .map_err(|e| format!("mount a tmpfs on {}: {e}", work.display()))?;
        let unified = is_cgroup2("/sys/fs/cgroup");
        let cgroup2 = if unified {
            PathBuf::from("/sys/fs/cgroup")
        } else if is_cgroup2("/sys/fs/cgroup/unified") {
            PathBuf::from("/sys/fs/cgroup/unified")
        } else {
            return Err("no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified".into());
        };
        let controllers =
            std::fs::read_to_string(cgroup2.join("cgroup.controllers")).unwrap_or_default();
        let has = |c: &str| controllers.split_whitespace().any(|w| w == c);
        let limits = has("memory") && has("pids");
        let rootfs = work.join("rootfs");
        harun_integration::make_busybox_rootfs(&rootfs)
            .map_err(|e| format!("busybox rootfs in {}: {e}", rootfs.display()))?;
        for d in ["bin", "ro", "logs", "bundles", "pids"] {
            mkdir(&work.join(d))?;
        }
        let rw_harun = work.join("bin/harun");
        let ro_mount = work.join("ro");
        let ro_harun = ro_mount.join("harun");
        let mut copies = vec![
            (bins.harun, rw_harun.clone()),
            (bins.harun, ro_harun.clone()),
        ];
        for also in bins.also {
            copies.push((&also.path, also.copy_in(work)));
        }
        for (from, to) in &copies {
            std::fs::copy(from, to)
                .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))?;
        }
        bind_readonly(&ro_mount)?;
        let mut world = World {
            work: work.to_path_buf(),
            unified,
            cgroup2,
            limits,
            runtimes: Vec::new(),
            rootfs,
            bundles: HashMap::new(),
            ro_mount,
            tmpfs: work.to_path_buf(),
            made_parent: None,
        };
        let wrap = |hide| {
            if unified {
                Wrap::None
            } else {
                Wrap::PrivateMounts { hide_cgroup2: hide }
            }
        };
        world.add("harun", &rw_harun, &[], wrap(false))?;
        world.add("harun-ro", &ro_harun, &[], wrap(false))?;
        for also in bins.also {
            world.add(&also.name, &also.copy_in(work), &[], wrap(false))?;
        }
        if let Some(crun) = bins.crun {
            // crun 1.8 refuses a hybrid host even with its cgroups off; hidden from the
            // cgroup2 mount it runs, without cgroups (it has no v1 support to offer here).
            let flags: &[&str] = if unified {
                &[]
            } else {
                &["--cgroup-manager=disabled"]
            };
            world.add("crun", crun, flags, wrap(true))?;
        }
        if let Some(runc) = bins.runc {
            world.add("runc", runc, &[], wrap(false))?;
        }
        world.make_cgroup_parent()?;
        Ok(world)
    }

    fn add(&mut self, name: &str, bin: &Path, flags: &[&str], wrap: Wrap) -> R<()> {
        let root = self.work.join(format!("root-{name}"));
        mkdir(&root)?;
        let mut prefix: Vec<OsString> = vec![bin.into(), "--root".into(), root.into()];
        prefix.extend(flags.iter().map(OsString::from));
        self.runtimes.push(Runtime {
            name: name.into(),
            bin: bin.to_path_buf(),
            prefix,
            wrap,
            log: self.work.join(format!("logs/{name}.stderr")),
        });
        Ok(())
    }

    /// The wrapper the runtimes get, for the floor commands.
    pub fn wrap(&self) -> Wrap {
        if self.unified {
            Wrap::None
        } else {
            Wrap::PrivateMounts {
                hide_cgroup2: false,
            }
        }
    }

    /// A command outside any runtime (the floors), logging to `logs/NAME.stderr`.
    pub fn plain(&self, name: &str, argv: &[&str]) -> Launch {
        Launch {
            argv: argv.iter().map(OsString::from).collect(),
            wrap: self.wrap(),
            log: self.work.join(format!("logs/{name}.stderr")),
        }
    }

    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.work.join("pids").join(id)
    }

    /// The bundle of `spec` for runtime `rt` in parallel slot `slot` (each has its own
    /// cgroup path, so two containers at once never share a cgroup).
    pub fn bundle(&mut self, spec: Spec, rt: &str, slot: usize) -> R<PathBuf> {
        let key = (spec, format!("{rt}-{slot}"));
        if let Some(b) = self.bundles.get(&key) {
            return Ok(b.clone());
        }
        let dir = self
            .work
            .join(format!("bundles/{spec:?}-{rt}-{slot}").to_lowercase());
        mkdir(&dir)?;
        let config = self.config(spec, &format!("/{CGROUP_PARENT}/{rt}-{slot}"))?;
        let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
        let path = dir.join("config.json");
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        self.bundles.insert(key, dir.clone());
        Ok(dir)
    }

    fn config(&self, spec: Spec, cgroups_path: &str) -> R<Value> {
        let mut c: Value =
            serde_json::from_str(harun_runtime::spec::example_json()).map_err(|e| e.to_string())?;
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = match spec {
            Spec::Sleeper => json!(["/bin/sleep", "1000000"]),
            _ => json!(["/bin/true"]),
        };
        c["root"] = json!({ "path": self.rootfs, "readonly": true });
        c["linux"]["cgroupsPath"] = json!(cgroups_path);
        if spec == Spec::Limited {
            let seccomp: Value = serde_json::from_str(DOCKER_SECCOMP).map_err(|e| e.to_string())?;
            c["linux"]["seccomp"] = seccomp;
            if self.limits {
                c["linux"]["resources"]["memory"] = json!({ "limit": 256u64 << 20 });
                c["linux"]["resources"]["pids"] = json!({ "limit": 128 });
            }
        }
        Ok(c)
    }

    /// What the limited spec holds here, for the report.
    pub fn limited_label(&self) -> &'static str {
        if self.limits {
            "run, Docker seccomp + memory/pids limits"
        } else {
            "run, Docker seccomp (no v2 memory/pids here)"
        }
    }

    fn make_cgroup_parent(&mut self) -> R<()> {
        let dir = self.cgroup2.join(CGROUP_PARENT);
        match std::fs::create_dir(&dir) {
            Ok(()) => self.made_parent = Some(dir.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("mkdir {}: {e}", dir.display())),
        }
        if self.limits {
            let ctl = dir.join("cgroup.subtree_control");
            std::fs::write(&ctl, "+memory +pids")
                .map_err(|e| format!("write {}: {e}", ctl.display()))?;
        }
        Ok(())
    }

    /// Undo what `new` made outside the work dir, and unmount inside it; returns what could
    /// not be removed.
    pub fn teardown(&mut self) -> Vec<String> {
        let mut left = Vec::new();
        for m in [&self.ro_mount, &self.tmpfs] {
            if let Err(e) = umount2(m, MntFlags::MNT_DETACH) {
                left.push(format!("umount {}: {e}", m.display()));
            }
        }
        // runc's v1 cgroups on a hybrid host: empty `harun-bench` dirs in every hierarchy.
        let mut parents: Vec<PathBuf> = self.made_parent.take().into_iter().collect();
        if !self.unified {
            if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
                for d in dirs.flatten() {
                    let p = d.path().join(CGROUP_PARENT);
                    if p.is_dir() && !parents.contains(&p) {
                        parents.push(p);
                    }
                }
            }
        }
        for p in parents {
            if let Err(e) = std::fs::remove_dir(&p) {
                left.push(format!("rmdir {}: {e}", p.display()));
            }
        }
        left
    }
}

/// After a failed [`World::new`]: undo its mounts under `work` (best effort).
pub fn unmount_after_failure(work: &Path) {
    for m in [work.join("ro"), work.to_path_buf()] {
        let _ = umount2(&m, MntFlags::MNT_DETACH);
    }
}

fn mkdir(p: &Path) -> R<()> {
    std::fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()))
}

fn is_cgroup2(p: &str) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

fn bind_readonly(dir: &Path) -> R<()> {
    let err = |what: &str| {
        let what = format!("{what} {}", dir.display());
        move |e: nix::Error| format!("{what}: {e}")
    };
    mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(err("bind"))?;
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(err("remount read-only"))
}

/// File size and, for a dynamic binary, the shared libraries it loads (count, total bytes).
pub fn binary_size(bin: &Path) -> (u64, usize, u64) {
    let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    let out = std::process::Command::new("ldd").arg(bin).output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let libs: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split("=> ").nth(1))
        .filter_map(|r| r.split(" (").next())
        .filter_map(|p| std::fs::metadata(p.trim()).ok())
        .map(|m| m.len())
        .collect();
    (size, libs.len(), libs.iter().sum())
}

/// First line of `BIN --version`.
pub fn version(bin: &Path) -> String {
    std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "?".into())
}
