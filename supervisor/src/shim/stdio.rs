//! A process's stdio as containerd names it (`stdin`, `stdout`, `stderr`, `terminal` of a
//! Create or Exec request) turned into what the container gets and what the shim copies.
//!
//! - a FIFO path (or `fifo://`): the container gets a pipe, the shim copies between the pipe
//!   and the FIFO. The FIFO is never handed to the container: the container must outlive
//!   the reader (ctr, containerd) on the other side. The shim opens an output FIFO for
//!   reading and writing, so it never gets EPIPE when that reader goes away (containerd's
//!   runc shim keeps a reader open for the same reason); the container's stdin ends at the
//!   stdin FIFO's end of file or at CloseIO, whichever comes first;
//! - `file:///path`: stdout and stderr appended to one file, through pipes the shim copies;
//! - `binary:///path?k=v`: a logging binary started with the pipes' read ends as fds 3 and 4
//!   and a ready pipe as fd 5 (containerd's runc shim's protocol);
//! - empty: /dev/null.
//!
//! With a terminal the container's stdio is the pty: the shim copies stdin to the master and
//! the master to stdout once the engine hands it the master.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio as StdStdio};
use std::sync::Arc;

use nix::fcntl::OFlag;

use super::copy::{Dest, Stream};
use super::engine::StdioFds;
use super::errors::Failure;

/// The stdio fields of a Create or Exec request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// What the container gets and what the shim keeps, before the process exists.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Which streams the engine receives, in order stdin, stdout, stderr.
    pub fds: StdioFds,
    pub container: Vec<OwnedFd>,
    /// Copies to start once the process exists.
    pub streams: Vec<Stream>,
    /// For a terminal: the FIFOs the master is copied from and to.
    pub console: Console,
    pub logger: Option<Child>,
}

#[derive(Debug, Default)]
pub struct Console {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<Dest>,
}

/// Where an output stream goes.
enum Sink {
    Null,
    Fifo(String),
    File(String),
    Binary(String),
}

fn sink(uri: &str) -> Sink {
    if uri.is_empty() {
        Sink::Null
    } else if let Some(p) = uri.strip_prefix("file://") {
        Sink::File(p.to_string())
    } else if let Some(rest) = uri.strip_prefix("binary://") {
        Sink::Binary(rest.to_string())
    } else {
        Sink::Fifo(uri.strip_prefix("fifo://").unwrap_or(uri).to_string())
    }
}

impl Prepared {
    /// Set up `paths` for process `id` of namespace `ns`.
    pub fn new(paths: &Paths, ns: &str, id: &str) -> Result<Prepared, Failure> {
        let mut p = Prepared::default();
        if paths.terminal {
            if !paths.stdin.is_empty() {
                p.console.stdin = Some(open_fifo(&paths.stdin, true)?);
            }
            p.console.stdout = match sink(&paths.stdout) {
                Sink::Null => None,
                Sink::Fifo(path) => Some(Arc::new(open_output(&path)?)),
                Sink::File(path) => Some(Arc::new(open_file(&path)?)),
                Sink::Binary(_) => {
                    return Err(Failure::invalid(
                        "a terminal's output cannot go to a logging binary",
                    ))
                }
            };
            return Ok(p);
        }
        if !paths.stdin.is_empty() {
            let fifo = open_fifo(&paths.stdin, true)?;
            let (r, w) = pipe()?;
            p.fds.stdin = true;
            p.container.push(r);
            set_nonblocking(&w)?;
            p.streams.push(Stream {
                src: fifo,
                dst: Arc::new(w),
                output: false,
            });
        }
        match (sink(&paths.stdout), sink(&paths.stderr)) {
            (Sink::Binary(uri), _) | (_, Sink::Binary(uri)) => {
                let (out_r, out_w) = pipe()?;
                let (err_r, err_w) = pipe()?;
                p.logger = Some(start_logger(&uri, ns, id, out_r, err_r)?);
                p.fds.stdout = true;
                p.fds.stderr = true;
                p.container.push(out_w);
                p.container.push(err_w);
            }
            (out, err) => {
                let file_dest = match (&out, &err) {
                    (Sink::File(a), _) | (_, Sink::File(a)) => Some(Arc::new(open_file(a)?)),
                    _ => None,
                };
                for (sink, is_out) in [(out, true), (err, false)] {
                    let dst = match sink {
                        Sink::Null => continue,
                        Sink::Fifo(path) => Arc::new(open_output(&path)?),
                        Sink::File(_) => file_dest.clone().expect("opened above"),
                        Sink::Binary(_) => unreachable!("handled above"),
                    };
                    let (r, w) = pipe()?;
                    set_nonblocking(&r)?;
                    if is_out {
                        p.fds.stdout = true;
                    } else {
                        p.fds.stderr = true;
                    }
                    p.container.push(w);
                    p.streams.push(Stream {
                        src: r,
                        dst,
                        output: true,
                    });
                }
            }
        }
        Ok(p)
    }

    /// The copies for a terminal, once the master is known.
    pub fn console_streams(&mut self, master: &OwnedFd) -> Result<Vec<Stream>, Failure> {
        let mut out = Vec::new();
        let dup = |fd: &OwnedFd| -> Result<OwnedFd, Failure> {
            let d = fd.as_fd().try_clone_to_owned()?;
            Ok(d)
        };
        set_nonblocking(master)?;
        if let Some(stdin) = self.console.stdin.take() {
            out.push(Stream {
                src: stdin,
                dst: Arc::new(dup(master)?),
                output: false,
            });
        }
        if let Some(dst) = self.console.stdout.take() {
            out.push(Stream {
                src: dup(master)?,
                dst,
                output: true,
            });
        }
        Ok(out)
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Failure> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(std::io::Error::from)?)
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), Failure> {
    use nix::fcntl::{fcntl, FcntlArg};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(std::io::Error::from)?;
    Ok(())
}

/// A FIFO, non-blocking: the open never waits for the other side.
///
/// An output FIFO is opened for reading and writing: the shim never gets EPIPE because
/// the reader went away (ctr exited, containerd restarts); the container then blocks on a
/// full pipe rather than losing its output. The stdin FIFO is opened for reading only:
/// its end of file (the writer closed it) is the end of the container's stdin, as with
/// containerd's runc shim; ctr may close it before its CloseIO can reach the shim (it
/// sends none while the task does not exist yet). A reader that opens before any writer
/// is not woken (Linux reports POLLHUP only once a writer has come and gone), so the copy
/// waits for the writer.
fn open_fifo(path: &str, input: bool) -> Result<OwnedFd, Failure> {
    let f = OpenOptions::new()
        .read(true)
        .write(!input)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Failure::invalid(format!("open stdio FIFO `{path}`: {e}")))?;
    Ok(f.into())
}

/// An output path: a FIFO as above, else a file appended to (containerd's runc shim treats a
/// path that is not a FIFO as a file).
fn open_output(path: &str) -> Result<OwnedFd, Failure> {
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    if is_fifo {
        open_fifo(path, false)
    } else {
        let f = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Failure::invalid(format!("open stdio `{path}`: {e}")))?;
        Ok(f.into())
    }
}

/// `file://PATH`: created if missing, appended to.
fn open_file(path: &str) -> Result<OwnedFd, Failure> {
    let path = percent_decode(path.split('?').next().unwrap_or(path));
    if let Some(dir) = Path::new(&path).parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::invalid(format!("log directory `{}`: {e}", dir.display())))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(&path)
        .map_err(|e| Failure::invalid(format!("open log file `{path}`: {e}")))?;
    Ok(f.into())
}

/// Start `binary://PATH?k=v...` with stdout and stderr as fds 3 and 4 and a ready pipe as
/// fd 5; wait until it says it is ready (a byte, or closing the pipe).
fn start_logger(
    uri: &str,
    ns: &str,
    id: &str,
    out: OwnedFd,
    err: OwnedFd,
) -> Result<Child, Failure> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path = percent_decode(path);
    let mut args = Vec::new();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        args.push(percent_decode(k));
        if !v.is_empty() {
            args.push(percent_decode(v));
        }
    }
    let (ready_r, ready_w) = pipe()?;
    let fds = [out.as_raw_fd(), err.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = Command::new(&path);
    cmd.args(&args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", ns)
        .stdin(StdStdio::null())
        .stdout(StdStdio::null())
        .stderr(StdStdio::null());
    // SAFETY: between fork and exec the child only calls dup2 and fcntl, which are
    // async-signal-safe; `fds` is a plain array copied into the child.
    unsafe {
        cmd.pre_exec(move || {
            // Above 5 first, so no source is overwritten by an earlier target.
            let mut high = [0; 3];
            for (i, fd) in fds.iter().enumerate() {
                high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                if high[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, fd) in high.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| Failure::invalid(format!("start logging binary `{path}`: {e}")))?;
    drop(ready_w);
    drop(out);
    drop(err);
    let mut byte = [0u8; 1];
    let _ = File::from(ready_r).read(&mut byte);
    Ok(child)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_their_sink() {
        assert!(matches!(sink(""), Sink::Null));
        assert!(matches!(sink("/run/x/stdout"), Sink::Fifo(p) if p == "/run/x/stdout"));
        assert!(matches!(sink("fifo:///run/x"), Sink::Fifo(p) if p == "/run/x"));
        assert!(matches!(sink("file:///var/log/a b"), Sink::File(p) if p == "/var/log/a b"));
        assert!(matches!(sink("binary:///bin/log?x=1"), Sink::Binary(p) if p == "/bin/log?x=1"));
        assert_eq!(percent_decode("/a%20b%2Fc%zz"), "/a b/c%zz");
    }

    #[test]
    fn a_file_takes_stdout_and_stderr_through_pipes() {
        let dir = std::env::temp_dir().join(format!("harun-shim-stdio-{}", std::process::id()));
        let log = dir.join("sub/log");
        let uri = format!("file://{}", log.display());
        let paths = Paths {
            stdout: uri.clone(),
            stderr: uri,
            ..Default::default()
        };
        let p = Prepared::new(&paths, "ns", "id").unwrap();
        assert!(!p.fds.stdin && p.fds.stdout && p.fds.stderr);
        assert_eq!((p.container.len(), p.streams.len()), (2, 2));
        assert!(Arc::ptr_eq(&p.streams[0].dst, &p.streams[1].dst));
        assert!(log.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
