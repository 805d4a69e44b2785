//! Messages between the shim's two processes: JSON over a SOCK_SEQPACKET socketpair, file
//! descriptors (pipes, pidfds, pty masters) attached with SCM_RIGHTS.
//!
//! A message is one or more packets of at most [`PACKET`] bytes, the first byte of each
//! saying whether more follow; the fds ride on the first packet. An exec's process JSON can
//! be as large as a config.json, so the size is only bounded by [`MAX_MESSAGE`].

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

const PACKET: usize = 32 * 1024;
const MORE: u8 = b'+';
const LAST: u8 = b'.';
const MAX_MESSAGE: usize = 16 << 20;
/// The most fds one message carries (a process's three stdio ends and its console).
pub const MAX_FDS: usize = 4;

/// One end of the socketpair.
#[derive(Debug)]
pub struct Wire {
    fd: OwnedFd,
}

/// A connected pair (close-on-exec: no container process inherits either end).
pub fn pair() -> io::Result<(Wire, Wire)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Wire { fd: a }, Wire { fd: b }))
}

impl AsRawFd for Wire {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Wire {
    /// Send `msg` with `fds` (at most [`MAX_FDS`]).
    pub fn send<T: Serialize>(&self, msg: &T, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let data = serde_json::to_vec(msg).map_err(io::Error::other)?;
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let mut parts = data.chunks(PACKET).peekable();
        let mut first = true;
        loop {
            let part = parts.next().unwrap_or_default();
            let flag = [if parts.peek().is_some() { MORE } else { LAST }];
            let iov = [IoSlice::new(&flag), IoSlice::new(part)];
            let rights = [ControlMessage::ScmRights(&raw)];
            let cmsg: &[ControlMessage<'_>] = if first && !raw.is_empty() {
                &rights
            } else {
                &[]
            };
            loop {
                match sendmsg::<()>(
                    self.fd.as_raw_fd(),
                    &iov,
                    cmsg,
                    MsgFlags::MSG_NOSIGNAL,
                    None,
                ) {
                    Ok(_) => break,
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            first = false;
            if flag[0] == LAST {
                return Ok(());
            }
        }
    }

    /// The next message and its fds; None when the other end has closed.
    pub fn recv<T: DeserializeOwned>(&self) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
        let mut buf = vec![0u8; PACKET + 1];
        let mut data = Vec::new();
        let mut fds = Vec::new();
        loop {
            let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = loop {
                match recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Ok(m) => break m,
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(list) = c {
                    // SAFETY: the kernel installed these fds for us just now; nothing else
                    // owns them.
                    fds.extend(
                        list.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
            let n = msg.bytes;
            if n == 0 {
                return Ok(None);
            }
            let (flag, part) = (buf[0], &buf[1..n]);
            if data.len() + part.len() > MAX_MESSAGE {
                return Err(io::Error::other(format!(
                    "a message over {MAX_MESSAGE} bytes"
                )));
            }
            data.extend_from_slice(part);
            match flag {
                MORE => continue,
                LAST => break,
                other => return Err(io::Error::other(format!("a packet flagged {other:#x}"))),
            }
        }
        serde_json::from_slice(&data)
            .map(|m| Some((m, fds)))
            .map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn messages_and_fds_cross_whole() {
        let (a, b) = pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        let big = "x".repeat(3 * PACKET + 7);
        a.send(&("hello", big.clone()), &[r.as_fd(), w.as_fd()])
            .unwrap();
        a.send(&7u32, &[]).unwrap();
        let ((word, text), fds): ((String, String), _) = b.recv().unwrap().unwrap();
        assert_eq!(
            (word.as_str(), text.len(), fds.len()),
            ("hello", big.len(), 2)
        );
        nix::unistd::write(&fds[1], b"!").unwrap();
        let mut one = [0u8; 1];
        nix::unistd::read(&r, &mut one).unwrap();
        assert_eq!(&one, b"!");
        let (n, none): (u32, _) = b.recv().unwrap().unwrap();
        assert_eq!((n, none.len()), (7, 0));
        drop(a);
        assert!(b.recv::<u32>().unwrap().is_none());
    }
}
