//! The caller's side of `--console-socket`: listen, receive the pty master over SCM_RIGHTS,
//! talk to the container's terminal.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};

/// A listening unix socket to pass as `--console-socket`.
#[derive(Debug)]
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> ConsoleSocket {
        let listener =
            UnixListener::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        ConsoleSocket {
            path: path.to_path_buf(),
            listener,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one connection and receives the pty master it sends (SCM_RIGHTS), as
    /// containerd's shim and conmon do.
    pub fn receive_master(&self, timeout: Duration) -> Result<OwnedFd, String> {
        wait_readable(self.listener.as_fd(), timeout)
            .map_err(|e| format!("no connection on the console socket: {e}"))?;
        let (stream, _) = self.listener.accept().map_err(|e| format!("accept: {e}"))?;
        wait_readable(stream.as_fd(), timeout)
            .map_err(|e| format!("no message on the console socket: {e}"))?;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let msg = recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| format!("recvmsg: {e}"))?;
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs().map_err(|e| format!("control messages: {e}"))? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                fds.extend(received);
            }
        }
        let mut owned: Vec<OwnedFd> = fds
            .into_iter()
            // SAFETY: the kernel just installed these descriptors in our table for this
            // message; nothing else owns them.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .collect();
        match owned.len() {
            1 => Ok(owned.remove(0)),
            n => Err(format!("expected one fd over the console socket, got {n}")),
        }
    }
}

fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> Result<(), String> {
    let ms = PollTimeout::try_from(timeout).map_err(|e| e.to_string())?;
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, ms) {
        Ok(0) => Err(format!("timed out after {timeout:?}")),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("poll: {e}")),
    }
}

/// Writes all of `data` to the terminal.
pub fn write_all(master: &OwnedFd, data: &str) -> Result<(), String> {
    std::fs::File::from(master.try_clone().map_err(|e| e.to_string())?)
        .write_all(data.as_bytes())
        .map_err(|e| format!("write to pty master: {e}"))
}

/// Reads the terminal until `needle` appears, the other side closes (EIO/EOF), or
/// `timeout`. Returns everything read; Err (with what was read) if the needle never came.
pub fn read_until(master: &OwnedFd, needle: &str, timeout: Duration) -> Result<String, String> {
    let mut file = std::fs::File::from(master.try_clone().map_err(|e| e.to_string())?);
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if text.contains(needle) {
            return Ok(text);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || wait_readable(master.as_fd(), left).is_err() {
            return Err(format!(
                "timed out waiting for {needle:?}; read so far: {text:?}"
            ));
        }
        match file.read(&mut buf) {
            Ok(0) => return Err(format!("EOF before {needle:?}; read: {text:?}")),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            // EIO: every slave fd is closed (the container exited).
            Err(e) => return Err(format!("read: {e} before {needle:?}; read: {text:?}")),
        }
    }
}
