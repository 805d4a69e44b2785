//! `exec --user NAME[:GROUP]`: names looked up in the container's own `/etc/passwd` and
//! `/etc/group`, as Docker does (runc 1.1.5 takes numbers only).
//!
//! The files are read from the running container's root (`/proc/PID/root` of its init,
//! checked through the pidfd to be the container's), resolved inside it: an image whose
//! `/etc/passwd` is a symlink to `/etc/shadow` gets its own `/etc/shadow`, never the host's.
//! Only a regular file is read, and at most [`MAX_FILE`] of it (a FIFO or a huge file in
//! the image cannot stall or swamp harun).

use std::io::Read;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::pidfd::PidFd;
use crate::rootfs::resolve::{fd_path, Root};
use crate::security::passwd;
use crate::state::StateRoot;
use crate::{Error, Result};

/// The most of `/etc/passwd` or `/etc/group` read.
const MAX_FILE: u64 = 4 << 20;

/// `USER[:GROUP]` with names replaced by numbers: `UID[:GID]`. A user name without a group
/// gets the user's primary group from `/etc/passwd`; numbers stay as they are.
pub fn lookup_user(root: &StateRoot, id: &str, text: &str) -> Result<String> {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (user, group) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    if numeric(user) && group.is_none_or(numeric) {
        return Ok(text.to_string());
    }
    let bad = |why: String| Error::InvalidArgument(format!("--user `{text}`: {why}"));
    if user.is_empty() || group == Some("") {
        return Err(bad("expected USER, USER:GROUP (names or numbers)".into()));
    }
    let files = ContainerRoot::open(root, id)?;
    let (uid, primary_gid) = match numeric(user) {
        true => (user.to_string(), None),
        false => {
            let text = files.read("/etc/passwd")?;
            let (uid, gid) = passwd::user_by_name(&text, user)
                .ok_or_else(|| bad(format!("no user `{user}` in the container's /etc/passwd")))?;
            (uid.to_string(), Some(gid.to_string()))
        }
    };
    let gid = match group {
        Some(g) if numeric(g) => Some(g.to_string()),
        Some(g) => {
            let text = files.read("/etc/group")?;
            let gid = passwd::group_by_name(&text, g)
                .ok_or_else(|| bad(format!("no group `{g}` in the container's /etc/group")))?;
            Some(gid.to_string())
        }
        None => primary_gid,
    };
    Ok(match gid {
        Some(gid) => format!("{uid}:{gid}"),
        None => uid,
    })
}

/// The root of a running or created container, as its init sees it.
struct ContainerRoot {
    root: Root,
    id: String,
}

impl ContainerRoot {
    fn open(root: &StateRoot, id: &str) -> Result<ContainerRoot> {
        let st = root.read(id)?;
        let stopped = || Error::FailedPrecondition(format!("container `{id}` is stopped"));
        let init = PidFd::open_checked(st.pid, st.init_start_time)?.ok_or_else(stopped)?;
        let path = format!("/proc/{}/root", st.pid);
        let dir = Root::open(Path::new(&path))
            .map_err(Error::sys(format!("open the container's root `{path}`")))?;
        // The pid was the init's when the pidfd was opened; it still is if the init lives.
        if !init.signal(0)? {
            return Err(stopped());
        }
        Ok(ContainerRoot {
            root: dir,
            id: id.to_string(),
        })
    }

    /// The text of the regular file `path` in the container.
    fn read(&self, path: &str) -> Result<String> {
        let what = || format!("read `{path}` in container `{}`", self.id);
        let found = self
            .root
            .resolve(Path::new(path))
            .map_err(Error::sys(what()))?;
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd =
            open(fd_path(&found).as_str(), flags, Mode::empty()).map_err(Error::sys(what()))?;
        let file = std::fs::File::from(fd);
        let meta = file.metadata().map_err(Error::io("stat", path))?;
        if !meta.is_file() {
            return Err(Error::InvalidArgument(format!(
                "{}: not a regular file",
                what()
            )));
        }
        let mut text = Vec::new();
        file.take(MAX_FILE)
            .read_to_end(&mut text)
            .map_err(Error::io("read", path))?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }
}
