//! TaskOOM from `memory.events`: one thread, one inotify instance, a watch per container
//! cgroup. The kernel marks the file modified whenever a counter changes; a rise of
//! `oom_kill` is an OOM kill in the container, published as TaskOOM (what containerd's Go
//! shim does with the same file).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use containerd_shim_protos::events::task::TaskOOM;
use containerd_shim_protos::topics::TASK_OOM_EVENT_TOPIC;
use harun_runtime::cgroups::parse_keyed;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::events::Publisher;

#[derive(Debug)]
struct Watched {
    id: String,
    file: std::path::PathBuf,
    kills: u64,
}

/// The watcher's handle.
pub struct Oom {
    inotify: Arc<Inotify>,
    watched: Arc<Mutex<HashMap<WatchDescriptor, Watched>>>,
}

impl std::fmt::Debug for Oom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Oom")
    }
}

impl Oom {
    pub fn spawn(events: Arc<Publisher>) -> std::io::Result<Oom> {
        let inotify = Arc::new(Inotify::init(InitFlags::IN_CLOEXEC)?);
        let watched: Arc<Mutex<HashMap<WatchDescriptor, Watched>>> = Arc::default();
        let (i, w) = (inotify.clone(), watched.clone());
        std::thread::Builder::new()
            .name("oom".into())
            .stack_size(64 * 1024)
            .spawn(move || run(&i, &w, &events))?;
        Ok(Oom { inotify, watched })
    }

    /// Watch the cgroup directory `cgroup` of container `id` (no memory controller: nothing
    /// to watch).
    pub fn add(&self, id: &str, cgroup: &Path) {
        let file = cgroup.join("memory.events");
        let kills = oom_kills(&file);
        if let Ok(wd) = self.inotify.add_watch(&file, AddWatchFlags::IN_MODIFY) {
            let mut w = self.watched.lock().unwrap_or_else(|p| p.into_inner());
            w.insert(
                wd,
                Watched {
                    id: id.to_string(),
                    file,
                    kills: kills.unwrap_or(0),
                },
            );
        }
    }

    pub fn remove(&self, id: &str) {
        let mut w = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<WatchDescriptor> = w
            .iter()
            .filter(|(_, v)| v.id == id)
            .map(|(k, _)| *k)
            .collect();
        for wd in gone {
            w.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
    }
}

fn oom_kills(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    parse_keyed(&text).get("oom_kill").copied()
}

fn run(inotify: &Inotify, watched: &Mutex<HashMap<WatchDescriptor, Watched>>, events: &Publisher) {
    loop {
        let Ok(list) = inotify.read_events() else {
            return;
        };
        for ev in list {
            let mut w = watched.lock().unwrap_or_else(|p| p.into_inner());
            if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                w.remove(&ev.wd);
                continue;
            }
            let Some(entry) = w.get_mut(&ev.wd) else {
                continue;
            };
            let Some(kills) = oom_kills(&entry.file) else {
                continue;
            };
            if kills > entry.kills {
                entry.kills = kills;
                let mut e = TaskOOM::new();
                e.container_id = entry.id.clone();
                events.send(TASK_OOM_EVENT_TOPIC, e);
            }
        }
    }
}
