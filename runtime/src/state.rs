//! The state directory: one dir per container under the root (`/run/harun/<id>`), holding
//! `state.json` (written tmp + fsync + rename) and `exec.fifo` while the container is created,
//! and the records `create` leaves for a `delete` after a crash (`cgroup.json`,
//! `host-mounts.json`).
//!
//! Writers (create/start/kill/delete...) hold an exclusive flock on the container's
//! directory; readers (`state`, `list`) take no lock: a rename is atomic, so they see the old
//! or the new file, never half of one.
//!
//! # Crashes and races
//!
//! harun can be killed at any system call, and two harun processes can work on one ID at
//! once. These rules keep both safe: whatever a killed command leaves, `delete --force ID`
//! removes, and a command only ever acts on the container whose lock it holds.
//!
//! 1. **A container dir appears locked.** `create` makes a temp dir `ROOT/.new:PID:N`,
//!    locks it, and renames it to `ROOT/ID` with RENAME_NOREPLACE (EEXIST: "already
//!    exists"). No other command ever sees a live create's dir unlocked.
//! 2. **create holds the lock until the state is complete**: it writes state.json before
//!    letting go, and when it fails it undoes what it made and removes the dir while still
//!    holding the lock. So a dir without state.json whose lock is free was left by a create
//!    that died: `delete --force` cleans what its records name and removes it.
//! 3. **Records before resources.** What `create` makes outside the dir is named in a file in
//!    the dir, written tmp + rename, *before* it exists: `cgroup.json` before the cgroup's
//!    mkdir (`cgroups::setup`), `host-mounts.json` before the first mount on the host
//!    (`rootfs::host`). A crash leaves a whole record naming what to clean, perhaps nothing
//!    yet; every removal accepts "already gone". The init, made after both, is in the cgroup
//!    from birth (CLONE_INTO_CGROUP; else it is moved there before it is told to go on, and
//!    an init whose parent died exits on the channel's EOF).
//! 4. **A lock is checked after it is taken.** Every command opens `ROOT/ID`, waits for the
//!    lock, then checks that the path still names the dir it locked (same device and inode;
//!    the open fd keeps the inode alive, so the number cannot be reused). If not, the
//!    container it waited for was deleted meanwhile: it tries again and finds the new one or
//!    none. Dirs are removed only under their lock and never renamed once in place, so after
//!    the check `ROOT/ID` is the locked dir until the lock goes: reading and removing by
//!    path act on that container and no other.
//! 5. **delete undoes in reverse**: processes, cgroup, mounts, poststop hooks, the dir last.
//!    Killed midway, it leaves a dir whose records still name what is left.
//! 6. **Temp dirs of a create killed before its rename** are empty; `.new:` names are not
//!    valid IDs (`:`), so no command takes them for a container. `delete` removes those
//!    whose lock is free ([`StateRoot::remove_stale`]); a create that had made its temp dir
//!    but not yet locked it finds it gone and makes another.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind as IoKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{renameat2, Flock, FlockArg, RenameFlags, AT_FDCWD};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::procfs;
use crate::{Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// How a create's temp dir is named: `.new:PID:N` (`:` is not allowed in IDs).
const TEMP_PREFIX: &str = ".new:";

/// Bound on retries that each need another process to make progress (a create that takes
/// a name, a delete that removes the dir we waited for).
const MAX_ATTEMPTS: u32 = 1000;

/// OCI status, plus `creating` for a container whose create has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What harun keeps about a container (state.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Host pid of the container init.
    pub pid: i32,
    /// Its start time (clock ticks since boot, /proc/PID/stat field 22).
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    /// The config the container was created from (hooks for delete, resources later).
    pub config: Spec,
    /// The container's cgroup (absent in states written before harun managed cgroups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroups::Record>,
}

impl State {
    /// Current status, derived from the init process and the exec fifo (as runc does):
    /// dead, zombie or a different process under the pid → stopped; fifo present → created.
    pub fn status(&self, dir: &Path) -> Status {
        if !procfs::is_alive(self.pid, self.init_start_time) {
            Status::Stopped
        } else if self.cgroup.as_ref().is_some_and(|c| c.is_frozen()) {
            Status::Paused
        } else if dir.join(EXEC_FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    pub fn annotations(&self) -> HashMap<String, String> {
        self.config.annotations().clone().unwrap_or_default()
    }

    /// The OCI state document (runtime.md "State"), with runc's extra fields
    /// (rootfs, created, owner), as `harun state` prints it and hooks receive it.
    pub fn to_oci(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        serde_json::json!({
            "ociVersion": crate::OCI_VERSION,
            "id": self.id,
            "pid": pid,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
            "annotations": self.annotations(),
        })
    }
}

/// The directory holding every container's state dir.
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

/// A container's state dir, locked exclusively while this value lives.
#[derive(Debug)]
pub struct LockedDir {
    path: PathBuf,
    _lock: Flock<File>,
}

/// Container IDs as runc accepts them: letters, digits, `_ + - .`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    // runc's rule (`^[\w+-\.]+$`, not `.` or `..`), but for `,`, which its class admits by
    // a range (`+-\.`): an ID ends up in overlay mount options, where `,` separates them.
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_+-.".contains(c);
    let why = if id.is_empty() {
        "it is empty".to_string()
    } else if id == "." || id == ".." {
        format!("`{id}` is not a name")
    } else if id.len() > 1024 {
        format!("it is {} bytes long (1024 at most)", id.len())
    } else if let Some(c) = id.chars().find(|&c| !ok_char(c)) {
        if c.is_control() {
            format!(
                "the control character `{}` is not allowed",
                c.escape_debug()
            )
        } else {
            format!("`{c}` is not allowed")
        }
    } else {
        return Ok(());
    };
    Err(Error::InvalidArgument(format!(
        "invalid container ID `{}`: {why} (use letters, digits, `_`, `+`, `-` and `.`)",
        crate::stderr::escape_controls(id)
    )))
}

impl StateRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateRoot { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Make and lock a new container dir; AlreadyExists when the ID is taken. The dir
    /// appears at `ROOT/ID` already locked (module doc, rule 1).
    pub fn create(&self, id: &str) -> Result<LockedDir> {
        validate_id(id)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.path)
            .map_err(Error::io("create state root", &self.path))?;
        let dir = self.dir(id);
        for n in 0..MAX_ATTEMPTS {
            let tmp = self
                .path
                .join(format!("{TEMP_PREFIX}{}:{n}", std::process::id()));
            match DirBuilder::new().mode(0o711).create(&tmp) {
                Ok(()) => {}
                // Left by a dead process with our pid, or another pid namespace's.
                Err(e) if e.kind() == IoKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create state dir", &tmp)(e)),
            }
            let locked = match LockedDir::lock(tmp.clone()) {
                Ok(l) => l,
                // A `delete` took it for a dead create's (rule 6): make another.
                Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            let renamed = renameat2(
                AT_FDCWD,
                &tmp,
                AT_FDCWD,
                &dir,
                RenameFlags::RENAME_NOREPLACE,
            );
            return match renamed {
                Ok(()) => Ok(LockedDir {
                    path: dir,
                    _lock: locked._lock,
                }),
                Err(e) => {
                    let _ = fs::remove_dir(&tmp);
                    match e {
                        Errno::EEXIST | Errno::ENOTEMPTY => Err(Error::AlreadyExists(id.into())),
                        e => Err(Error::sys(format!(
                            "rename `{}` to `{}` (RENAME_NOREPLACE)",
                            tmp.display(),
                            dir.display()
                        ))(e)),
                    }
                }
            };
        }
        Err(Error::sys(format!(
            "create a state dir in `{}`: {MAX_ATTEMPTS} temp names taken or removed",
            self.path.display()
        ))(Errno::EAGAIN))
    }

    /// Lock an existing container's dir; NotFound when there is none (module doc, rule 4).
    pub fn lock(&self, id: &str) -> Result<LockedDir> {
        validate_id(id)?;
        let dir = self.dir(id);
        match LockedDir::lock(dir) {
            Err(e) if e.errno() == Some(Errno::ENOENT) => Err(Error::NotFound(id.to_string())),
            other => other,
        }
    }

    /// Remove the temp dirs of creates killed before they renamed theirs into place: those
    /// whose lock nobody holds (module doc, rule 6). Best effort.
    pub fn remove_stale(&self) {
        let Ok(entries) = fs::read_dir(&self.path) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
                continue;
            }
            let path = e.path();
            let Ok(file) = open_dir(&path) else { continue };
            // Held: a live create (or another sweep) has it.
            let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
                continue;
            };
            if same_dir(&lock, &path) {
                let _ = fs::remove_dir_all(&path);
            }
        }
    }

    /// Read a container's state without locking. NotFound when it has none (also while its
    /// create is still running: it does not exist yet).
    pub fn read(&self, id: &str) -> Result<State> {
        validate_id(id)?;
        read_state(&self.dir(id), id)
    }

    /// IDs of every container with a state dir, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read state root", &self.path)(e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            // Not temp dirs of creates (rule 6), nor anything else that is no ID.
            .filter(|name| validate_id(name).is_ok())
            .collect();
        crate::sort::sort(&mut ids);
        Ok(ids)
    }
}

fn read_state(dir: &Path, id: &str) -> Result<State> {
    let path = dir.join(STATE_FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == IoKind::NotFound => return Err(Error::NotFound(id.to_string())),
        Err(e) => return Err(Error::io("read", &path)(e)),
    };
    serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
        what: "state",
        path,
        reason: e.to_string(),
    })
}

fn open_dir(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
}

/// True when `path` names the dir `locked` is open on (same device and inode).
fn same_dir(locked: &File, path: &Path) -> bool {
    match (locked.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl LockedDir {
    /// Open and lock the dir at `path`, then check `path` still names it (rule 4); a dir
    /// removed while we waited for its lock: again, with whatever is there now. ENOENT when
    /// nothing is.
    fn lock(path: PathBuf) -> Result<Self> {
        for _ in 0..MAX_ATTEMPTS {
            let file = open_dir(&path).map_err(Error::io("open state dir", &path))?;
            let lock = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, e)| Error::sys(format!("flock `{}`", path.display()))(e))?;
            if same_dir(&lock, &path) {
                return Ok(LockedDir { path, _lock: lock });
            }
        }
        Err(Error::sys(format!(
            "lock `{}`: replaced {MAX_ATTEMPTS} times while waiting",
            path.display()
        ))(Errno::EAGAIN))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw fd of the lock: the container init must close it right after clone.
    pub fn lock_fd(&self) -> i32 {
        self._lock.as_raw_fd()
    }

    pub fn id(&self) -> &str {
        self.path.file_name().and_then(|n| n.to_str()).unwrap_or("")
    }

    pub fn read(&self) -> Result<State> {
        read_state(&self.path, self.id())
    }

    /// Write state.json: fresh temp file, fsync, rename over the real one.
    pub fn write(&self, state: &State) -> Result<()> {
        let data = serde_json::to_vec(state)
            .map_err(|e| Error::Internal(format!("serialize the state: {e}")))?;
        replace_file(&self.path.join(STATE_FILE), &data, Durability::Fsync)
    }

    /// Remove the dir and everything in it (state, fifo, temp files).
    pub fn remove(self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == IoKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove state dir", &self.path)(e)),
        }
    }
}

/// Whether [`replace_file`] fsyncs before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// State that must survive a crash as a whole file (state.json, supervision records).
    Fsync,
    /// Files read only while the system runs (pid files): atomic, not synced.
    Atomic,
}

/// Replace `path` atomically: a fresh temp file beside it (O_TRUNC, mode 0600), optionally
/// fsynced, renamed over it. Readers see the old or the new file, never half of one.
pub fn replace_file(path: &Path, data: &[u8], durability: Durability) -> Result<()> {
    let name = path.file_name().ok_or_else(|| {
        Error::InvalidArgument(format!("`{}` is not a file path", path.display()))
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(Error::io("create", &tmp))
        .and_then(|mut f| {
            f.write_all(data).map_err(Error::io("write", &tmp))?;
            if durability == Durability::Fsync {
                f.sync_all().map_err(Error::io("fsync", &tmp))?;
            }
            Ok(())
        });
    let renamed =
        written.and_then(|()| fs::rename(&tmp, path).map_err(Error::io("rename to", path)));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

/// Write a file atomically without fsync, e.g. the `--pid-file`. Errors name `path`, not
/// the temp file beside it: that is the file the caller asked for.
pub fn write_file_atomic(path: &Path, data: &[u8]) -> Result<()> {
    replace_file(path, data, Durability::Atomic).map_err(|e| match e {
        Error::Io { source, .. } => Error::io("write", path)(source),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_root(name: &str) -> StateRoot {
        let p =
            std::env::temp_dir().join(format!("harun-state-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        StateRoot::new(p)
    }

    #[test]
    fn ids_are_checked() {
        for ok in ["a", "abc-1.2_3+x", "0"] {
            validate_id(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a b",
            "é",
            "a,b",
            &"x".repeat(1025),
        ] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
        // One line, naming the character.
        for (bad, why) in [
            (
                "a\nb",
                "`a\\nb`: the control character `\\n` is not allowed",
            ),
            ("a\tb", "the control character `\\t`"),
            ("\u{1b}[0m", "`\\u{1b}[0m`: the control character `\\u{1b}`"),
            ("a,b", "`,` is not allowed"),
            ("..", "`..` is not a name"),
            ("", "it is empty"),
        ] {
            let e = validate_id(bad).unwrap_err().to_string();
            assert!(e.contains(why) && !e.contains('\n'), "{bad:?}: {e}");
        }
    }

    #[test]
    fn create_twice_is_already_exists_and_missing_is_not_found() {
        let root = tmp_root("twice");
        let d = root.create("c1").unwrap();
        assert_eq!(
            root.create("c1").unwrap_err().to_string(),
            "container `c1` already exists"
        );
        // No state file yet: readers see "does not exist".
        assert!(matches!(root.read("c1"), Err(Error::NotFound(_))));
        assert!(matches!(root.lock("nope"), Err(Error::NotFound(_))));
        assert_eq!(root.ids().unwrap(), vec!["c1".to_string()]);
        d.remove().unwrap();
        assert!(root.ids().unwrap().is_empty());
        fs::remove_dir_all(root.path()).unwrap();
    }

    #[test]
    fn a_new_dir_appears_locked_and_no_temp_dir_stays() {
        let root = tmp_root("appears");
        let d = root.create("c3").unwrap();
        let names: Vec<String> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["c3"]);
        let other = open_dir(d.path()).unwrap();
        assert!(
            Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err(),
            "the dir is in place before it is locked"
        );
        d.remove().unwrap();
        fs::remove_dir_all(root.path()).unwrap();
    }

    /// A command waiting for a container's lock while it is deleted and made again ends
    /// up holding the new container's dir, never the removed one.
    #[test]
    fn a_lock_taken_on_a_replaced_dir_follows_the_path() {
        let root = tmp_root("replaced");
        let old = root.create("c4").unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let d = root.lock("c4").unwrap();
                fs::read_to_string(d.path().join("generation")).unwrap()
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            // What delete + create do, with the old lock still held meanwhile.
            fs::remove_dir_all(old.path()).unwrap();
            let new = root.create("c4").unwrap();
            drop(old);
            std::thread::sleep(std::time::Duration::from_millis(50));
            fs::write(new.path().join("generation"), "2").unwrap();
            drop(new);
            assert_eq!(waiter.join().unwrap(), "2");
        });
        fs::remove_dir_all(root.path()).unwrap();
    }

    #[test]
    fn temp_dirs_are_swept_when_their_creator_is_gone() {
        let root = tmp_root("stale");
        fs::create_dir_all(root.path().join(".new:1:0")).unwrap();
        let live = root.path().join(".new:2:0");
        fs::create_dir(&live).unwrap();
        let held = Flock::lock(open_dir(&live).unwrap(), FlockArg::LockExclusive).unwrap();
        root.create("c5").unwrap();
        assert_eq!(root.ids().unwrap(), ["c5"], "temp dirs are no containers");
        root.remove_stale();
        assert!(!root.path().join(".new:1:0").exists());
        assert!(
            live.exists(),
            "a temp dir whose create is alive was removed"
        );
        drop(held);
        root.remove_stale();
        assert!(!live.exists());
        fs::remove_dir_all(root.path()).unwrap();
    }

    #[test]
    fn state_round_trips_and_dead_pid_is_stopped() {
        let root = tmp_root("rt");
        let d = root.create("c2").unwrap();
        let st = State {
            id: "c2".into(),
            pid: i32::MAX,
            init_start_time: 1,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: crate::time::now_rfc3339(),
            config: crate::spec::example().unwrap(),
            cgroup: None,
        };
        d.write(&st).unwrap();
        let back = root.read("c2").unwrap();
        assert_eq!(back.pid, st.pid);
        assert_eq!(back.status(d.path()), Status::Stopped);
        assert_eq!(back.to_oci(Status::Stopped)["pid"], 0);
        d.remove().unwrap();
        fs::remove_dir_all(root.path()).unwrap();
    }
}
