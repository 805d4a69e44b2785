//! The parent <-> init conversation during create, over a SOCK_SEQPACKET socketpair.
//!
//! The order is fixed and checked on the parent side by [`Expect::next`], a pure state
//! machine with unit tests:
//!
//! ```text
//! init                                   parent
//!  (new user ns)        <--Mapped--        uid_map, gid_map written
//!  rootfs prepared      --RuntimeHooks-->  run prestart + createRuntime hooks
//!                       <--Continue(state)--
//!  createContainer hooks, pivot_root, ...
//!  (terminal: pty master over the console socket)
//!                       --Ready-->         write state.json + pid file, return
//!  wait on exec.fifo for `start`
//! any step failing      --Error(msg)-->    kill + reap init, clean up, report msg
//! ```
//!
//! A message is JSON, sent as one or more packets (see [`PACKET`]): `Continue` carries the
//! state, whose annotations alone may be a few MiB.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Messages from the init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromInit {
    /// Mounts are done; run the runtime-namespace hooks now.
    RuntimeHooks,
    /// Everything is set up; init now waits for `start`.
    Ready,
    /// A step failed: the real cause, for the user.
    Error(String),
}

/// Messages to the init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToInit {
    /// The uid/gid maps of the init's new user namespace are written (sent first, only when
    /// the container has a new user namespace).
    Mapped,
    /// Hooks ran; carry on. `state` is the OCI state JSON hooks in the container receive.
    Continue { state: String },
}

/// What the parent expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    RuntimeHooks,
    Ready,
    Done,
}

/// What the parent does on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    RunRuntimeHooks,
    Finish,
    Fail(String),
}

impl Expect {
    /// The protocol: anything out of order is a failure naming what came instead.
    pub fn next(self, msg: Option<FromInit>) -> (Expect, Action) {
        match (self, msg) {
            (_, Some(FromInit::Error(m))) => (Expect::Done, Action::Fail(m)),
            (Expect::RuntimeHooks, Some(FromInit::RuntimeHooks)) => {
                (Expect::Ready, Action::RunRuntimeHooks)
            }
            (Expect::Ready, Some(FromInit::Ready)) => (Expect::Done, Action::Finish),
            (Expect::Done, m) => (
                Expect::Done,
                Action::Fail(format!("unexpected message after ready: {m:?}")),
            ),
            (want, None) => (
                Expect::Done,
                Action::Fail(format!(
                    "exited before it was {}",
                    if want == Expect::RuntimeHooks {
                        "ready for hooks"
                    } else {
                        "ready"
                    }
                )),
            ),
            (want, Some(got)) => (
                Expect::Done,
                Action::Fail(format!("protocol error: expected {want:?}, got {got:?}")),
            ),
        }
    }
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent end, init end). Both close on exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(Error::sys("socketpair for the init channel"))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// The most a packet carries. SOCK_SEQPACKET sends a packet whole or not at all, and one
/// larger than the socket's send buffer (net.core.wmem_default, ~208 KiB) fails with
/// EMSGSIZE: a message (the state JSON holds the config's annotations, up to
/// [`MAX_MESSAGE`]) goes as a run of packets of at most this many bytes after a flag byte.
const PACKET: usize = 32 * 1024;
/// Flag byte of a packet: more of the message follows, or this is its last part.
const MORE: u8 = b'+';
const LAST: u8 = b'.';
/// The largest message either side accepts: the state JSON of the largest config harun
/// reads, twice over. Both ends are harun's, so this bounds a bug, not an attack.
const MAX_MESSAGE: usize = 2 * crate::spec::MAX_CONFIG_BYTES as usize;

impl Channel {
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        self.send_packets(msg, |packet| {
            send(self.fd.as_raw_fd(), packet, MsgFlags::MSG_NOSIGNAL)
        })
    }

    /// [`Channel::send`] with write(2), for the processes in the container (the init, an
    /// exec'd process): their last messages may go under the container's seccomp filter
    /// (without no_new_privs), and a profile written for runc allows write (runc's init
    /// writes its sync socket) but need not allow sendto. A closed peer is EPIPE, not a
    /// signal: those processes ignore SIGPIPE, or catch it (`finish::reset_signals`).
    pub fn send_by_write<T: Serialize>(&self, msg: &T) -> Result<()> {
        self.send_packets(msg, |packet| nix::unistd::write(&self.fd, packet))
    }

    /// `msg` as JSON, in packets of at most [`PACKET`] bytes each led by [`MORE`] or [`LAST`].
    fn send_packets<T: Serialize>(
        &self,
        msg: &T,
        mut send_one: impl FnMut(&[u8]) -> nix::Result<usize>,
    ) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| Error::Init(e.to_string()))?;
        let mut packet = Vec::with_capacity(PACKET.min(data.len()) + 1);
        let mut parts = data.chunks(PACKET).peekable();
        while let Some(part) = parts.next() {
            packet.clear();
            packet.push(if parts.peek().is_some() { MORE } else { LAST });
            packet.extend_from_slice(part);
            loop {
                match send_one(&packet) {
                    Ok(n) if n == packet.len() => break,
                    Ok(n) => {
                        return Err(Error::Init(format!(
                            "short send on the init channel: {n} of {} bytes",
                            packet.len()
                        )))
                    }
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("send on the init channel")(e)),
                }
            }
        }
        Ok(())
    }

    /// Next message; None when the other side closed (exited), also in the middle of one.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>> {
        let mut buf = vec![0u8; PACKET + 1];
        let mut data = Vec::new();
        loop {
            // MSG_TRUNC: the packet's real length, so a longer one is an error, not cut short.
            let n = loop {
                match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_TRUNC) {
                    Ok(n) => break n,
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("receive on the init channel")(e)),
                }
            };
            let (flag, part) = match buf.get(..n) {
                None => return Err(bad_message(format!("a packet of {n} bytes"))),
                Some([]) => return Ok(None),
                Some([flag, part @ ..]) => (*flag, part),
            };
            if data.len() + part.len() > MAX_MESSAGE {
                return Err(bad_message(format!("a message over {MAX_MESSAGE} bytes")));
            }
            data.extend_from_slice(part);
            match flag {
                MORE => continue,
                LAST => break,
                other => return Err(bad_message(format!("a packet flagged {other:#x}"))),
            }
        }
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| bad_message(e.to_string()))
    }
}

fn bad_message(what: String) -> Error {
    Error::Init(format!("bad message on the init channel: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_order_is_enforced() {
        use Action::*;
        use Expect as E;
        use FromInit as M;
        let ok = [
            (E::RuntimeHooks, M::RuntimeHooks, E::Ready, RunRuntimeHooks),
            (E::Ready, M::Ready, E::Done, Finish),
        ];
        for (at, msg, to, act) in ok {
            assert_eq!(at.next(Some(msg)), (to, act));
        }
        let fails = [
            (
                E::RuntimeHooks,
                Some(M::Ready),
                "expected RuntimeHooks, got Ready",
            ),
            (
                E::Ready,
                Some(M::RuntimeHooks),
                "expected Ready, got RuntimeHooks",
            ),
            (
                E::RuntimeHooks,
                None,
                "exited before it was ready for hooks",
            ),
            (E::Ready, None, "exited before it was ready"),
            (
                E::Ready,
                Some(M::Error("mount `/proc`: EPERM".into())),
                "mount `/proc`: EPERM",
            ),
            (E::Done, Some(M::Ready), "unexpected message after ready"),
        ];
        for (at, msg, want) in fails {
            match at.next(msg.clone()) {
                (E::Done, Fail(m)) => assert!(m.contains(want), "{at:?} {msg:?}: {m}"),
                other => panic!("{at:?} {msg:?}: {other:?}"),
            }
        }
    }

    /// Messages of any size a config can make cross in packets (64 KiB of annotations was
    /// cut at the 64 KiB receive buffer, ~210 KiB was EMSGSIZE): sizes around the packet
    /// size, and 10 MiB, by send and by write. A thread sends while we receive.
    #[test]
    fn large_messages_cross_in_packets() {
        let (a, b) = pair().unwrap();
        let sizes = [
            0,
            1,
            PACKET - 20,
            PACKET,
            PACKET + 1,
            3 * PACKET + 7,
            10 << 20,
        ];
        let states: Vec<String> = sizes.iter().map(|&n| "x".repeat(n)).collect();
        let sent = states.clone();
        let sender = std::thread::spawn(move || {
            for (i, state) in sent.into_iter().enumerate() {
                let msg = ToInit::Continue { state };
                if i % 2 == 0 {
                    a.send(&msg).unwrap();
                } else {
                    a.send_by_write(&msg).unwrap();
                }
            }
        });
        for state in states {
            assert_eq!(
                b.recv::<ToInit>().unwrap(),
                Some(ToInit::Continue { state })
            );
        }
        sender.join().unwrap();
        assert_eq!(b.recv::<ToInit>().unwrap(), None);
    }

    #[test]
    fn a_peer_gone_in_the_middle_of_a_message_is_the_end() {
        let (a, b) = pair().unwrap();
        send(a.as_raw_fd(), b"+{\"Continue\"", MsgFlags::empty()).unwrap();
        drop(a);
        assert_eq!(b.recv::<ToInit>().unwrap(), None);
        let (a, b) = pair().unwrap();
        send(a.as_raw_fd(), b"?{}", MsgFlags::empty()).unwrap();
        let e = b.recv::<ToInit>().unwrap_err().to_string();
        assert!(
            e.contains("bad message on the init channel: a packet flagged 0x3f"),
            "{e}"
        );
        send(a.as_raw_fd(), &vec![b'+'; PACKET + 2], MsgFlags::empty()).unwrap();
        let e = b.recv::<ToInit>().unwrap_err().to_string();
        assert!(
            e.contains(&format!("a packet of {} bytes", PACKET + 2)),
            "{e}"
        );
    }

    #[test]
    fn messages_cross_the_socketpair() {
        let (a, b) = pair().unwrap();
        b.send(&FromInit::Error("boom".into())).unwrap();
        assert_eq!(
            a.recv::<FromInit>().unwrap(),
            Some(FromInit::Error("boom".into()))
        );
        a.send(&ToInit::Continue { state: "{}".into() }).unwrap();
        assert_eq!(
            b.recv::<ToInit>().unwrap(),
            Some(ToInit::Continue { state: "{}".into() })
        );
        b.send_by_write(&FromInit::Ready).unwrap();
        assert_eq!(a.recv::<FromInit>().unwrap(), Some(FromInit::Ready));
        drop(b);
        assert_eq!(a.recv::<FromInit>().unwrap(), None);
    }
}
