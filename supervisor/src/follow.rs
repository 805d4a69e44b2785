//! Reading a supervised container's log or events as they grow: `harun logs -f`,
//! `harun events -f`.
//!
//! The reader opens the current file first and keeps that fd, so nothing written after the
//! first read is missed; rotation is seen as the path naming a new file, and the old fd is
//! read to its end before switching. Waiting is inotify on the supervision dir plus the
//! writer's pidfd; following ends when the writer (the supervisor) has exited and everything
//! it wrote was copied, or when the output is closed (`| head`).

use std::fs::{self, File};
use std::io::{ErrorKind as IoKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use harun_runtime::pidfd::PidFd;
use harun_runtime::{Error, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// A file that rotates: the current one at `current`, older ones named by `older()`.
pub struct Rotating<'a> {
    pub current: PathBuf,
    /// The rotated files, oldest first.
    pub older: &'a dyn Fn() -> Vec<PathBuf>,
}

/// What was written so far (older files, then the current one from `current`'s fd), and
/// that fd, positioned at its end, to follow from.
pub fn read_all(files: &Rotating<'_>) -> Result<(Vec<u8>, Option<File>)> {
    // Open first: whatever is written after this is read through the fd.
    let mut current = open_if_exists(&files.current)?;
    let mut data = Vec::new();
    for path in (files.older)() {
        match fs::read(&path) {
            Ok(bytes) => data.extend_from_slice(&bytes),
            // Rotated away meanwhile.
            Err(e) if e.kind() == IoKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &path)(e)),
        }
    }
    if let Some(f) = &mut current {
        f.read_to_end(&mut data)
            .map_err(Error::io("read", &files.current))?;
    }
    Ok((data, current))
}

fn open_if_exists(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("open", path)(e)),
    }
}

/// Copies what `files` get from here on to `out`, until `writer` has exited (everything
/// copied) or `out` is closed. `file` is the current file as [`read_all`] left it.
pub fn follow(
    files: &Rotating<'_>,
    mut file: Option<File>,
    writer: Option<&PidFd>,
    out: &mut dyn Write,
) -> Result<()> {
    let Some(writer) = writer else {
        return Ok(()); // nobody writes any more
    };
    let dir = files.current.parent().unwrap_or(Path::new("/"));
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .map_err(Error::sys("inotify_init1"))?;
    let watched = inotify.add_watch(
        dir,
        AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE_SELF,
    );
    match watched {
        Ok(_) => {}
        // The supervision is gone already (a foreground run that ended).
        Err(Errno::ENOENT) => return drain(file.as_mut(), out).map(|_| ()),
        Err(e) => return Err(Error::sys(format!("inotify_add_watch `{}`", dir.display()))(e)),
    }
    let mut writer_gone = false;
    loop {
        if !drain(file.as_mut(), out)? {
            return Ok(());
        }
        if let Some(newer) = reopen_if_replaced(&files.current, file.as_ref())? {
            file = Some(newer);
            continue;
        }
        if writer_gone {
            return Ok(());
        }
        let mut fds = [
            PollFd::new(inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(writer.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll")(e)),
        }
        // One more round after the writer exited picks up its last words.
        writer_gone = fds[1].any().unwrap_or(false);
        let _ = inotify.read_events();
    }
}

/// Copies `file` from its position to its end into `out`; false when `out` is closed.
fn drain(file: Option<&mut File>, out: &mut dyn Write) -> Result<bool> {
    let Some(file) = file else {
        return Ok(true);
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == IoKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", "followed file")(e)),
        };
        if out.write_all(&buf[..n]).is_err() {
            return Ok(false);
        }
    }
    Ok(out.flush().is_ok())
}

/// The file now at `path`, if it is not the one we hold (rotation, or first creation).
fn reopen_if_replaced(path: &Path, held: Option<&File>) -> Result<Option<File>> {
    let Some(now) = fs::metadata(path).ok() else {
        return Ok(None); // between rotation's rename and the new file's creation
    };
    let same = held
        .and_then(|f| f.metadata().ok())
        .is_some_and(|m| m.ino() == now.ino() && m.dev() == now.dev());
    if same {
        return Ok(None);
    }
    open_if_exists(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_older_files_first_and_keeps_the_current_fd() {
        let dir = std::env::temp_dir().join(format!("harun-follow-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f.2"), "one\n").unwrap();
        fs::write(dir.join("f.1"), "two\n").unwrap();
        fs::write(dir.join("f"), "three\n").unwrap();
        let d = dir.clone();
        let older = move || vec![d.join("f.2"), d.join("f.1"), d.join("f.9")];
        let files = Rotating {
            current: dir.join("f"),
            older: &older,
        };
        let (data, file) = read_all(&files).unwrap();
        assert_eq!(data, b"one\ntwo\nthree\n");
        let mut file = file.expect("current file");
        // Appended later: read through the kept fd.
        fs::OpenOptions::new()
            .append(true)
            .open(dir.join("f"))
            .unwrap()
            .write_all(b"four\n")
            .unwrap();
        let mut out = Vec::new();
        assert!(drain(Some(&mut file), &mut out).unwrap());
        assert_eq!(out, b"four\n");
        // Rotation: the path names another file now.
        assert!(reopen_if_replaced(&dir.join("f"), Some(&file))
            .unwrap()
            .is_none());
        fs::rename(dir.join("f"), dir.join("f.1")).unwrap();
        assert!(reopen_if_replaced(&dir.join("f"), Some(&file))
            .unwrap()
            .is_none());
        fs::write(dir.join("f"), "five\n").unwrap();
        let mut newer = reopen_if_replaced(&dir.join("f"), Some(&file))
            .unwrap()
            .expect("the new file");
        out.clear();
        drain(Some(&mut newer), &mut out).unwrap();
        assert_eq!(out, b"five\n");
        // Without a writer there is nothing to follow.
        follow(&files, Some(newer), None, &mut out).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
