//! Where a supervised container's stdio goes.
//!
//! The runtime gives a container (and a process `exec`'d into one) the caller's fds 0, 1
//! and 2. The supervisor, one thread and no other user of those fds, points them at the
//! right place for the duration of one `create` or `exec` ([`with_stdio`]) and puts its own
//! back afterwards.
//!
//! A container's stdout and stderr go to a FIFO in its supervision dir (`output`), not to a
//! pipe: the supervisor reads it into the rotating log, and a supervisor killed with -9
//! loses nothing, because
//!
//! - the container holds the FIFO open read-write, so it is never the last reader: with no
//!   supervisor it writes into the FIFO's buffer (256 KiB) and then blocks, where a pipe
//!   would have killed it with SIGPIPE at its next line;
//! - the next supervisor opens the same FIFO and drains what was written meanwhile.
//!
//! The supervisor holds its own end read-write too, so the FIFO never reports a hang-up
//! between two runs of the container.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind as IoKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::PathBuf;

use harun_runtime::{Error, Result};
use nix::errno::Errno;
use nix::sys::stat::Mode;

use crate::persist::Store;

/// The FIFO's name in the supervision dir.
pub const OUTPUT_FIFO: &str = "output";
/// How much a container may write while no supervisor reads.
const FIFO_BUFFER: i32 = 256 * 1024;

/// The supervisor's end of a container's output FIFO.
#[derive(Debug)]
pub struct OutputFifo {
    path: PathBuf,
    reader: File,
}

impl OutputFifo {
    /// Opens (makes, the first time) the FIFO of `store`.
    pub fn open(store: &Store) -> Result<OutputFifo> {
        let path = store.file(OUTPUT_FIFO);
        match nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("mkfifo `{}`", path.display()))(e)),
        }
        let meta = std::fs::symlink_metadata(&path).map_err(Error::io("stat", &path))?;
        if !meta.file_type().is_fifo() {
            return Err(Error::FailedPrecondition(format!(
                "`{}` is not a FIFO",
                path.display()
            )));
        }
        let reader = open_rw(&path, libc::O_NONBLOCK)?;
        // SAFETY: F_SETPIPE_SZ on an fd we own; a failure leaves the default size.
        unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, FIFO_BUFFER) };
        Ok(OutputFifo { path, reader })
    }

    /// The end a container writes to: read-write (never the last reader), blocking.
    pub fn writer(&self) -> Result<File> {
        open_rw(&self.path, 0)
    }

    pub fn reader(&mut self) -> &mut File {
        &mut self.reader
    }
}

impl AsFd for OutputFifo {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.reader.as_fd()
    }
}

fn open_rw(path: &std::path::Path, flags: i32) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | flags)
        .open(path)
        .map_err(Error::io("open", path))
}

/// `/dev/null`, read-write, close-on-exec.
pub fn dev_null() -> Result<File> {
    open_rw(std::path::Path::new("/dev/null"), 0)
}

/// Runs `f` with fds 0, 1 and 2 pointing at `stdin`, `stdout` and `stderr`, then restores
/// them (an fd that was closed is closed again). Only for a single-threaded process: every
/// thread shares the fd table.
pub fn with_stdio<T>(
    stdin: BorrowedFd<'_>,
    stdout: BorrowedFd<'_>,
    stderr: BorrowedFd<'_>,
    f: impl FnOnce() -> T,
) -> Result<T> {
    let targets = [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()];
    let mut saved: Vec<(RawFd, Option<OwnedFd>)> = Vec::with_capacity(3);
    let restore = |saved: Vec<(RawFd, Option<OwnedFd>)>| {
        for (fd, old) in saved {
            match old {
                // SAFETY: dup2 of an fd we own onto a standard fd number.
                Some(old) => unsafe {
                    libc::dup2(old.as_raw_fd(), fd);
                },
                // SAFETY: it was closed before; close what we put there.
                None => unsafe {
                    libc::close(fd);
                },
            }
        }
    };
    for (fd, target) in targets.into_iter().enumerate() {
        let fd = fd as RawFd;
        // SAFETY: F_DUPFD_CLOEXEC returns a new fd (or -1: fd was closed).
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        // SAFETY: a fresh fd from the kernel that nothing else owns.
        let old = (copy >= 0).then(|| unsafe { OwnedFd::from_raw_fd(copy) });
        saved.push((fd, old));
        // SAFETY: dup2 onto a standard fd; both fds are valid.
        if unsafe { libc::dup2(target, fd) } < 0 {
            let e = Errno::last();
            restore(saved);
            return Err(Error::sys(format!("dup2 onto fd {fd}"))(e));
        }
    }
    let out = f();
    restore(saved);
    Ok(out)
}

/// Reads what a non-blocking fd holds; false at end of file.
pub fn drain(file: &mut File, buf: &mut [u8], mut sink: impl FnMut(&[u8])) -> Result<bool> {
    use std::io::Read;
    loop {
        match file.read(buf) {
            Ok(0) => return Ok(false),
            Ok(n) => sink(&buf[..n]),
            Err(e) if e.kind() == IoKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == IoKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", "container output")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_fifo_keeps_what_was_written_while_nobody_read() {
        let dir = std::env::temp_dir().join(format!("harun-stdio-{}", std::process::id()));
        let root = harun_runtime::state::StateRoot::new(&dir);
        let store = Store::reserve(&root, "c").unwrap();
        let fifo = OutputFifo::open(&store).unwrap();
        let mut w = fifo.writer().unwrap();
        w.write_all(b"one\n").unwrap();
        // The supervisor goes away; the container goes on writing (no SIGPIPE: it is a
        // reader itself).
        drop(fifo);
        w.write_all(b"two\n").unwrap();
        let mut again = OutputFifo::open(&store).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        assert!(drain(again.reader(), &mut buf, |b| got.extend_from_slice(b)).unwrap());
        assert_eq!(got, b"one\ntwo\n");
        // The container exits: no hang-up, nothing to read.
        drop(w);
        assert!(drain(again.reader(), &mut buf, |_| panic!("data")).unwrap());
        store.remove().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
