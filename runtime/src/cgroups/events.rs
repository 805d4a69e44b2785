//! `events` without `--stats`: a stats event every interval and an `oom` event whenever the
//! kernel OOM-kills a process of the container (memory.events `oom_kill` grows), until the
//! cgroup has no process left. Changes of memory.events and cgroup.events wake the loop
//! (POLLPRI); no sleeping.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::{json, Value};

use super::cgroup::{parse_keyed, reread, Cgroup};
use super::stats;
use crate::{Error, Result};

/// Emit events for container `id` until its cgroup empties or disappears. `emit` failing
/// (stdout closed) ends the watch with its error.
pub fn watch(
    cg: &Cgroup,
    id: &str,
    interval: Duration,
    emit: &mut dyn FnMut(&Value) -> Result<()>,
) -> Result<()> {
    let gone = |e: &Errno| matches!(e, Errno::ENODEV | Errno::ENOENT);
    let open = |name: &str| match cg.open_read(name) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(Error::sys(format!(
            "open `{}`",
            cg.path().join(name).display()
        ))(e)),
    };
    let Some(cgroup_events) = open("cgroup.events")? else {
        return Ok(());
    };
    let memory_events = open("memory.events")?;
    let oom_kills = |fd: &OwnedFd| -> Option<u64> {
        reread(fd)
            .ok()
            .map(|t| parse_keyed(&t).get("oom_kill").copied().unwrap_or(0))
    };
    let mut seen_ooms = memory_events.as_ref().and_then(oom_kills).unwrap_or(0);
    let mut next = Instant::now();
    loop {
        if let Some(fd) = &memory_events {
            if let Some(n) = oom_kills(fd).filter(|n| *n > seen_ooms) {
                seen_ooms = n;
                emit(&json!({"type": "oom", "id": id}))?;
            }
        }
        match reread(&cgroup_events) {
            Ok(t) if parse_keyed(&t).get("populated") == Some(&0) => return Ok(()),
            Ok(_) => {}
            Err(e) if gone(&e) => return Ok(()),
            Err(e) => return Err(Error::sys("read cgroup.events")(e)),
        }
        let now = Instant::now();
        if now >= next {
            match stats::event(cg, id) {
                Ok(v) => emit(&v)?,
                Err(e) if e.errno().is_some_and(|e| gone(&e)) => return Ok(()),
                Err(e) => return Err(e),
            }
            next = now + interval;
        }
        let wait = next.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(wait.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = vec![PollFd::new(cgroup_events.as_fd(), PollFlags::POLLPRI)];
        if let Some(fd) = &memory_events {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLPRI));
        }
        match poll(&mut fds, ms) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll the cgroup's event files")(e)),
        }
    }
}
