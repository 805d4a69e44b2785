//! systemd's readiness protocol (`sd_notify`, man 3 sd_notify) for services that speak it
//! (`run.harun.notify: "true"`): the process sends datagrams like `READY=1\nSTATUS=up` to
//! the unix socket named by `$NOTIFY_SOCKET`.
//!
//! Each such container gets its own socket, `ROOT/.supervise/ID/notify/notify.sock`; the
//! directory is bind-mounted at `/run/notify` in the container (where podman puts it too)
//! and `NOTIFY_SOCKET=/run/notify/notify.sock` is added to its environment. One socket per
//! container means the sender needs no credentials check: whatever arrives on it comes from
//! that container. The socket is bound again by a re-adopting supervisor (same directory,
//! so the container's mount sees the new socket).
//!
//! Understood: `READY=1` (the container is ready), `STATUS=...` (shown by `ctl status`).
//! Everything else (`RELOADING`, `STOPPING`, `WATCHDOG`, `MAINPID`, fd passing) is ignored.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

use harun_runtime::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::socket::{bind, recv, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use nix::sys::stat::Mode;

use crate::persist::Store;

/// The directory in the supervision dir, bind-mounted into the container.
pub const NOTIFY_DIR: &str = "notify";
pub const SOCKET_NAME: &str = "notify.sock";
/// Where the directory appears in the container.
pub const CONTAINER_DIR: &str = "/run/notify";
/// `NOTIFY_SOCKET` as the container sees it.
pub const CONTAINER_SOCKET: &str = "/run/notify/notify.sock";

/// What a container said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub ready: bool,
    pub status: Option<String>,
}

/// One container's notify socket.
#[derive(Debug)]
pub struct NotifySocket {
    sock: OwnedFd,
}

impl NotifySocket {
    /// The directory to bind-mount into the container, made if missing.
    pub fn dir(store: &Store) -> Result<PathBuf> {
        let dir = store.file(NOTIFY_DIR);
        match std::fs::DirBuilder::new().mode(0o755).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create", &dir)(e)),
        }
        Ok(dir)
    }

    /// Binds the socket afresh (an old one, a dead supervisor's, is replaced). Any user may
    /// send to it (a container with a user namespace runs as another uid).
    pub fn bind(store: &Store) -> Result<NotifySocket> {
        let dir = Self::dir(store)?;
        let path = dir.join(SOCKET_NAME);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", &path)(e))
            }
            _ => {}
        }
        let sock = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(Error::sys("socket AF_UNIX SOCK_DGRAM"))?;
        // A unix socket path holds at most 107 bytes; a state root can be longer. Through
        // the directory's fd the path is short whatever the root.
        let dirfd = open(
            &dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(Error::sys(format!("open `{}`", dir.display())))?;
        let short = format!("/proc/self/fd/{}/{SOCKET_NAME}", dirfd.as_raw_fd());
        let addr = UnixAddr::new(short.as_str()).map_err(Error::sys("unix socket address"))?;
        bind(sock.as_raw_fd(), &addr).map_err(Error::sys(format!("bind `{}`", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
            .map_err(Error::io("chmod", &path))?;
        Ok(NotifySocket { sock })
    }

    /// Every datagram waiting, merged: ready if any said so, the last status.
    pub fn receive(&self) -> Message {
        let mut msg = Message::default();
        let mut buf = [0u8; 4096];
        loop {
            match recv(self.sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => {
                    let m = parse(&buf[..n]);
                    msg.ready |= m.ready;
                    if m.status.is_some() {
                        msg.status = m.status;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => return msg, // EAGAIN: all read
            }
        }
    }
}

impl AsFd for NotifySocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// Parses one datagram: newline-separated `KEY=VALUE` assignments.
pub fn parse(datagram: &[u8]) -> Message {
    let text = String::from_utf8_lossy(datagram);
    let mut msg = Message::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("READY", "1")) => msg.ready = true,
            Some(("STATUS", status)) => msg.status = Some(status.chars().take(256).collect()),
            _ => {}
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{sendto, MsgFlags};

    #[test]
    fn parses_assignments() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=serving 3 clients\n"),
            Message {
                ready: true,
                status: Some("serving 3 clients".into())
            }
        );
        assert_eq!(parse(b"READY=0"), Message::default());
        assert_eq!(parse(b"WATCHDOG=1\nMAINPID=4"), Message::default());
        assert!(!parse(b"\xff\xfeREADY=1").ready);
        assert!(parse(b"x\nREADY=1").ready);
    }

    #[test]
    fn receives_what_was_sent_and_rebinds() {
        let dir = std::env::temp_dir().join(format!(
            "harun-notify-{}-{}",
            std::process::id(),
            "x".repeat(60) // a long root: the socket path would not fit in sun_path
        ));
        let root = harun_runtime::state::StateRoot::new(&dir);
        let store = Store::reserve(&root, &"c".repeat(40)).unwrap();
        let sock = NotifySocket::bind(&store).unwrap();
        assert_eq!(sock.receive(), Message::default());
        let path = store.file(NOTIFY_DIR).join(SOCKET_NAME);
        let dirfd = std::fs::File::open(store.file(NOTIFY_DIR)).unwrap();
        let short = format!("/proc/self/fd/{}/{SOCKET_NAME}", dirfd.as_raw_fd());
        let client = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let addr = UnixAddr::new(short.as_str()).unwrap();
        for m in [&b"STATUS=starting"[..], b"READY=1\nSTATUS=up"] {
            sendto(client.as_raw_fd(), m, &addr, MsgFlags::empty()).unwrap();
        }
        assert_eq!(
            sock.receive(),
            Message {
                ready: true,
                status: Some("up".into())
            }
        );
        assert!(path.exists());
        drop(sock);
        let again = NotifySocket::bind(&store).unwrap();
        sendto(client.as_raw_fd(), b"READY=1", &addr, MsgFlags::empty()).unwrap();
        assert!(again.receive().ready);
        store.remove().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
