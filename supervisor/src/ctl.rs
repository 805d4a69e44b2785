//! The control socket of `harun supervise`: `ROOT/.supervise/.daemon/ctl.sock`, a unix
//! stream socket, one request per connection.
//!
//! The client sends one JSON line and reads one JSON line back:
//!
//! ```text
//! → {"op":"stop","service":"web"}
//! ← {"ok":true,"message":"web: stopped"}
//! → {"op":"update","service":"web","bundle":"/srv/web-v2"}
//! ← {"ok":false,"message":"web: rolled back: web-next exited with code 1 before it was ready"}
//! ```
//!
//! Requests that take time (start, stop, restart, update, reload) are answered when done;
//! the supervisor keeps serving everything else meanwhile (the connection waits in its
//! epoll set). Only root and the supervisor's own user may connect (the directory is 0700
//! and the peer's uid is checked).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harun_runtime::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::socket::{
    accept4, bind, connect, getsockopt, listen, socket, sockopt, AddressFamily, Backlog, SockFlag,
    SockType, UnixAddr,
};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SOCKET: &str = "ctl.sock";
/// The longest request line taken.
const MAX_REQUEST: usize = 64 * 1024;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", try_from = "WireRequest")]
pub enum Request {
    /// Every service and container.
    Status,
    /// Start a stopped service (a manual start: counters reset).
    Start { service: String },
    /// Stop every replica of a service for good (until `start`).
    Stop { service: String },
    /// Stop, then start.
    Restart { service: String },
    /// Rescan the services directory.
    Reload,
    /// Roll a service to another bundle.
    Update { service: String, bundle: PathBuf },
    /// Prometheus text.
    Metrics,
    /// Stop every service (in reverse start order) and exit; answered once all stopped.
    Shutdown,
}

/// A request as it is read: one object with every field any request has. serde's own
/// reading of an internally tagged enum buffers the object in its `Content` tree first and
/// compiles a deserializer for that tree (~25 KB of the static binary for this enum and
/// policy's `GiveUpReason`). `expecting` and the `op` read as a variant identifier keep
/// serde's texts for a non-object, a missing, unknown or mistyped `op` and a missing field.
#[derive(Deserialize)]
#[serde(expecting = "internally tagged enum Request")]
struct WireRequest {
    op: Op,
    service: Option<String>,
    bundle: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(variant_identifier, rename_all = "kebab-case")]
enum Op {
    Status,
    Start,
    Stop,
    Restart,
    Reload,
    Update,
    Metrics,
    Shutdown,
}

impl TryFrom<WireRequest> for Request {
    type Error = &'static str;

    fn try_from(w: WireRequest) -> std::result::Result<Request, &'static str> {
        let service = || w.service.clone().ok_or("missing field `service`");
        Ok(match w.op {
            Op::Status => Request::Status,
            Op::Start => Request::Start {
                service: service()?,
            },
            Op::Stop => Request::Stop {
                service: service()?,
            },
            Op::Restart => Request::Restart {
                service: service()?,
            },
            Op::Reload => Request::Reload,
            Op::Update => Request::Update {
                service: service()?,
                bundle: w.bundle.ok_or("missing field `bundle`")?,
            },
            Op::Metrics => Request::Metrics,
            Op::Shutdown => Request::Shutdown,
        })
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// One line for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// `status`: the services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    /// `metrics`: the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Response {
    pub fn ok(message: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: message.into(),
            status: None,
            text: None,
        }
    }

    pub fn error(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            ..Response::ok(message)
        }
    }
}

/// A unix socket address for `path`, through a directory fd when the path is too long for
/// `sun_path` (the fd must stay open while the address is used).
fn address(path: &Path) -> Result<(UnixAddr, Option<OwnedFd>)> {
    if let Ok(addr) = UnixAddr::new(path) {
        if path.as_os_str().len() < 100 {
            return Ok((addr, None));
        }
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let dirfd = open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(Error::sys(format!("open `{}`", dir.display())))?;
    let short = format!("/proc/self/fd/{}/{name}", dirfd.as_raw_fd());
    let addr = UnixAddr::new(short.as_str()).map_err(Error::sys("unix socket address"))?;
    Ok((addr, Some(dirfd)))
}

/// The listening socket.
#[derive(Debug)]
pub struct Listener {
    sock: OwnedFd,
    path: PathBuf,
}

impl Listener {
    /// Binds `path` (replacing a stale socket: the caller holds the daemon lock), mode 0600.
    pub fn bind(path: &Path) -> Result<Listener> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", path)(e))
            }
            _ => {}
        }
        let sock = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(Error::sys("socket AF_UNIX SOCK_STREAM"))?;
        let (addr, _dirfd) = address(path)?;
        bind(sock.as_raw_fd(), &addr).map_err(Error::sys(format!("bind `{}`", path.display())))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(Error::io("chmod", path))?;
        listen(&sock, Backlog::new(64).unwrap_or(Backlog::MAXCONN))
            .map_err(Error::sys(format!("listen on `{}`", path.display())))?;
        Ok(Listener {
            sock,
            path: path.to_path_buf(),
        })
    }

    /// The next waiting connection from an allowed peer, if any.
    pub fn accept(&self) -> Option<Conn> {
        loop {
            let fd = match accept4(
                self.sock.as_raw_fd(),
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            ) {
                Ok(fd) => fd,
                Err(Errno::EINTR | Errno::ECONNABORTED) => continue,
                Err(_) => return None,
            };
            // SAFETY: accept4 returned a fresh fd that nothing else owns.
            let sock = unsafe { OwnedFd::from_raw_fd(fd) };
            let allowed = getsockopt(&sock, sockopt::PeerCredentials)
                .is_ok_and(|c| c.uid() == 0 || c.uid() == nix::unistd::geteuid().as_raw());
            if allowed {
                return Some(Conn {
                    sock,
                    input: Vec::new(),
                    output: Vec::new(),
                    written: 0,
                });
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What reading a connection gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// Not a whole line yet.
    Pending,
    Request(Request),
    /// A line that is no request: answer with this error.
    Bad(String),
    /// The client went away.
    Closed,
}

/// One client connection, non-blocking.
#[derive(Debug)]
pub struct Conn {
    sock: OwnedFd,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
}

impl Conn {
    /// Reads what arrived; a request once its line is complete.
    pub fn read_request(&mut self) -> Incoming {
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(&self.sock, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    if self.input.len() > MAX_REQUEST {
                        return Incoming::Bad(format!("request longer than {MAX_REQUEST} bytes"));
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    if !self.input.contains(&b'\n') {
                        return Incoming::Pending;
                    }
                    break;
                }
                Err(_) => return Incoming::Closed,
            }
        }
        let line = match self.input.iter().position(|&b| b == b'\n') {
            Some(end) => &self.input[..end],
            None if self.input.is_empty() => return Incoming::Closed,
            None => &self.input[..],
        };
        match serde_json::from_slice::<Request>(line) {
            Ok(r) => Incoming::Request(r),
            Err(e) => Incoming::Bad(format!("bad request: {e}")),
        }
    }

    /// Queues the answer; [`Conn::flush`] sends it.
    pub fn answer(&mut self, response: &Response) {
        self.output = serde_json::to_vec(response).unwrap_or_default();
        self.output.push(b'\n');
        self.written = 0;
    }

    /// Sends what it can; true when everything was sent (or the client is gone).
    pub fn flush(&mut self) -> bool {
        while self.written < self.output.len() {
            match nix::unistd::write(&self.sock, &self.output[self.written..]) {
                Ok(n) => self.written += n,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return false,
                Err(_) => return true,
            }
        }
        true
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// Sends `request` to the supervisor listening at `path` and waits for its answer (as long
/// as it takes: an update may take minutes).
pub fn call(path: &Path, request: &Request) -> Result<Response> {
    let not_running = || {
        Error::FailedPrecondition(format!(
            "no supervisor answers at `{}` (is `harun supervise` running with this --root?)",
            path.display()
        ))
    };
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(Error::sys("socket AF_UNIX SOCK_STREAM"))?;
    let (addr, _dirfd) = match address(path) {
        Ok(a) => a,
        Err(_) => return Err(not_running()),
    };
    match connect(sock.as_raw_fd(), &addr) {
        Ok(()) => {}
        Err(Errno::ENOENT | Errno::ECONNREFUSED) => return Err(not_running()),
        Err(e) => return Err(Error::sys(format!("connect to `{}`", path.display()))(e)),
    }
    let mut stream = std::os::unix::net::UnixStream::from(sock);
    let mut line = serde_json::to_vec(request).unwrap_or_default();
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(Error::io("write to", path))?;
    let _ = stream.set_read_timeout(None::<Duration>);
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(Error::io("read from", path))?;
    if answer.is_empty() {
        return Err(Error::FailedPrecondition(
            "the supervisor closed the connection without an answer (did it exit?)".into(),
        ));
    }
    serde_json::from_slice(&answer)
        .map_err(|e| Error::FailedPrecondition(format!("bad answer from the supervisor: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_json_lines() {
        let cases = [
            (Request::Status, r#"{"op":"status"}"#),
            (
                Request::Stop {
                    service: "web".into(),
                },
                r#"{"op":"stop","service":"web"}"#,
            ),
            (
                Request::Update {
                    service: "web".into(),
                    bundle: "/b".into(),
                },
                r#"{"op":"update","service":"web","bundle":"/b"}"#,
            ),
            (Request::Metrics, r#"{"op":"metrics"}"#),
        ];
        for (request, json) in cases {
            assert_eq!(serde_json::to_string(&request).unwrap(), json);
            assert_eq!(serde_json::from_str::<Request>(json).unwrap(), request);
        }
        // serde's own texts (its internally tagged enum), position included: clients see them.
        for (bad, why) in [
            (
                r#"{"service":"web"}"#,
                "missing field `op` at line 1 column 17",
            ),
            (r#"{}"#, "missing field `op` at line 1 column 2"),
            (r#"{"op":"stop"}"#, "missing field `service`"),
            (
                r#"{"op":"update","service":"web"}"#,
                "missing field `bundle`",
            ),
            (
                r#"{"op":"halt"}"#,
                "unknown variant `halt`, expected one of `status`, `start`, `stop`, `restart`, \
                 `reload`, `update`, `metrics`, `shutdown` at line 1 column 12",
            ),
            (
                r#"{"op":1}"#,
                "invalid type: integer `1`, expected variant identifier at line 1 column 7",
            ),
            (
                r#"{"op":null}"#,
                "invalid type: null, expected variant identifier at line 1 column 10",
            ),
            (
                r#"{"op":"stop","op":"start","service":"a"}"#,
                "duplicate field `op` at line 1 column 17",
            ),
            (
                r#""status""#,
                "invalid type: string \"status\", expected internally tagged enum Request \
                 at line 1 column 8",
            ),
            (
                "null",
                "invalid type: null, expected internally tagged enum Request at line 1 column 4",
            ),
        ] {
            let e = serde_json::from_str::<Request>(bad)
                .unwrap_err()
                .to_string();
            assert_eq!(e, why, "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&Response::ok("done")).unwrap(),
            r#"{"ok":true,"message":"done"}"#
        );
    }

    #[test]
    fn a_request_and_its_answer_over_the_socket() {
        let dir = std::env::temp_dir().join(format!(
            "harun-ctl-{}-{}",
            std::process::id(),
            "long".repeat(30)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SOCKET);
        let listener = Listener::bind(&path).unwrap();
        let client = {
            let path = path.clone();
            std::thread::spawn(move || call(&path, &Request::Reload))
        };
        let mut conn = loop {
            if let Some(c) = listener.accept() {
                break c;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let request = loop {
            match conn.read_request() {
                Incoming::Pending => std::thread::sleep(Duration::from_millis(2)),
                other => break other,
            }
        };
        assert_eq!(request, Incoming::Request(Request::Reload));
        conn.answer(&Response::error("nope"));
        assert!(conn.flush());
        drop(conn);
        assert_eq!(client.join().unwrap().unwrap(), Response::error("nope"));
        drop(listener);
        assert!(!path.exists(), "the socket goes with the listener");
        let e = call(&path, &Request::Status).unwrap_err().to_string();
        assert!(e.contains("no supervisor answers"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
