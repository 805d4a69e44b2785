//! `exec.fifo`: how a created container's init waits for `start` while holding nothing of
//! the host but the fifo itself.
//!
//! A process exec'd into a created container with CAP_SYS_PTRACE can open whatever the
//! waiting init holds through `/proc/1/fd/N`, and `..` from a directory there walks the
//! host. So the init holds no directory fd at all (no state dir, no cgroup dir), only an
//! fd of the fifo:
//!
//! - `create` opens the fifo read-write ([`open_for_init`]; unlike write-only, that never
//!   blocks), shrinks its buffer to the minimum and fills it with [`FILLER`] bytes; the init
//!   inherits the fd.
//! - To wait, the init writes one more filler byte ([`wait_for_start`]): the write blocks
//!   until `start` opens the fifo and reads the filler away.
//! - The init then writes its word ([`tell_start`]): `0` (it execs next) or `E` and the
//!   failure (a [`Reported`] as JSON: kind and errno kept), and execs or exits; either
//!   closes its fd, which is EOF for `start`.
//! - `start` reads, skips the filler and decides with [`parse`].
//!
//! No path is opened inside the container, so this works without /proc there (runc keeps an
//! O_PATH fd of the fifo and reopens it through /proc/self/fd/N), and the init's only calls
//! on it after the seccomp filter are write(2).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::write;

use crate::error::Reported;
use crate::{Error, Result};

/// What fills the fifo's buffer before the init's word.
pub const FILLER: u8 = b'\n';

/// `create`: the fifo at `path` opened read-write and close-on-exec, its buffer shrunk to
/// one page and full of [`FILLER`], blocking again (for the init's [`wait_for_start`]).
pub fn open_for_init(path: &Path) -> Result<OwnedFd> {
    let what = |op: &str| format!("{op} `{}`", path.display());
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(what("open"))(e))?;
    // The smallest buffer the kernel gives (a page); a failure only means more filler.
    let _ = fcntl(&fd, FcntlArg::F_SETPIPE_SZ(1));
    let chunk = [FILLER; 4096];
    loop {
        match write(&fd, &chunk) {
            Ok(_) => {}
            Err(Errno::EAGAIN) => break,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys(what("fill"))(e)),
        }
    }
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::empty()))
        .map_err(|e| Error::sys(what("fcntl F_SETFL"))(e))?;
    Ok(fd)
}

/// The init: block until `start` has read the filler.
pub fn wait_for_start(fifo: BorrowedFd<'_>) -> Result<()> {
    write_all(fifo, &[FILLER]).map_err(Error::sys("wait for start on exec.fifo"))
}

/// The init: tell `start` how it went (`Ok`: the process is exec'd next).
pub fn tell_start(fifo: BorrowedFd<'_>, outcome: std::result::Result<(), &Error>) -> Result<()> {
    let word = match outcome {
        Ok(()) => b"0".to_vec(),
        Err(e) => {
            let mut word = b"E".to_vec();
            serde_json::to_writer(&mut word, &e.report())
                .map_err(|e| Error::Internal(e.to_string()))?;
            word
        }
    };
    write_all(fifo, &word).map_err(Error::sys("write exec.fifo"))
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match write(fd.as_fd(), data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What `start` has seen on the fifo so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    /// Only filler (or a failure still being written): read on.
    Pending,
    /// `0`: the init execs the process.
    Go,
    /// `E...`: the init failed with this error, and exits.
    Failed(Reported),
    /// Not a word the init writes: a bug.
    Garbled(String),
    /// EOF before any word: the init died.
    Died,
}

impl Word {
    /// The error `start` returns for a failure the init wrote (None for the other words).
    pub fn error(self) -> Option<Error> {
        match self {
            Word::Pending | Word::Go | Word::Died => None,
            Word::Failed(r) => Some(Error::InContainer(Box::new(r))),
            Word::Garbled(what) => Some(Error::Internal(format!("exec.fifo: {what}"))),
        }
    }
}

/// Pure: the word in everything read from the fifo so far (`eof`: the init's end closed).
pub fn parse(read: &[u8], eof: bool) -> Word {
    let word = match read.iter().position(|&b| b != FILLER) {
        Some(i) => &read[i..],
        None if eof => return Word::Died,
        None => return Word::Pending,
    };
    match word[0] {
        b'0' => Word::Go,
        b'E' if eof => match serde_json::from_slice(&word[1..]) {
            Ok(reported) => Word::Failed(reported),
            Err(e) => Word::Garbled(format!("`{}`: {e}", String::from_utf8_lossy(&word[1..]))),
        },
        b'E' => Word::Pending,
        other => Word::Garbled(format!("unexpected byte {other:#04x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_skips_the_filler_and_reads_the_word() {
        let f = |n: usize, rest: &str| {
            let mut v = vec![FILLER; n];
            v.extend_from_slice(rest.as_bytes());
            v
        };
        let failed = Error::sys("install the seccomp filter")(Errno::EINVAL).report();
        let word = format!("E{}", serde_json::to_string(&failed).unwrap());
        let table = [
            (f(0, ""), false, Word::Pending),
            (f(4096, ""), false, Word::Pending),
            (f(4097, ""), true, Word::Died),
            (f(0, ""), true, Word::Died),
            (f(4097, "0"), false, Word::Go),
            (f(0, "0"), true, Word::Go),
            (f(10, &word), false, Word::Pending),
            (f(10, &word), true, Word::Failed(failed)),
            (
                f(1, "Enot json"),
                true,
                Word::Garbled("`not json`: expected ident at line 1 column 2".into()),
            ),
            (
                f(1, "x"),
                false,
                Word::Garbled("unexpected byte 0x78".into()),
            ),
        ];
        for (read, eof, want) in table {
            assert_eq!(parse(&read, eof), want, "{read:?} eof={eof}");
        }
    }

    #[test]
    fn the_init_blocks_until_start_reads_the_filler() {
        let dir = std::env::temp_dir().join(format!("harun-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("exec.fifo");
        let _ = std::fs::remove_file(&path);
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).unwrap();
        let init = open_for_init(&path).unwrap();
        // Full: one more byte does not fit without a reader draining it.
        let probe =
            nix::fcntl::open(&path, OFlag::O_WRONLY | OFlag::O_NONBLOCK, Mode::empty()).unwrap();
        assert_eq!(write(&probe, &[FILLER]), Err(Errno::EAGAIN));
        drop(probe);
        let waiter = std::thread::spawn(move || {
            wait_for_start(init.as_fd()).unwrap();
            tell_start(init.as_fd(), Ok(())).unwrap();
        });
        let mut start = std::fs::File::open(&path).unwrap();
        let mut read = Vec::new();
        let mut buf = [0u8; 4096];
        while parse(&read, false) == Word::Pending {
            let n = std::io::Read::read(&mut start, &mut buf).unwrap();
            read.extend_from_slice(&buf[..n]);
        }
        assert_eq!(parse(&read, false), Word::Go);
        waiter.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
