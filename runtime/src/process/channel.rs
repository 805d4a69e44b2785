//! The parent <-> init conversation during create, over a SOCK_SEQPACKET socketpair. (The
//! init's steps around it: process/init.rs.)
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
//! any step failing      --Error(report)--> kill + reap init, clean up, return the error
//!  (dies)               EOF                kill + reap init, say how it died
//! ```
//!
//! A failure crosses as a [`Reported`] (kind, errno, field, text), so `create` returns the
//! init's error with its kind and errno ([`Error::InContainer`]), not only its words.
//!
//! A message is JSON, sent as one or more packets (see [`PACKET`]): `Continue` carries the
//! state, whose annotations alone may be a few MiB.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::Reported;
use crate::{Error, Result};

/// Messages from the init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromInit {
    /// Mounts are done; run the runtime-namespace hooks now.
    RuntimeHooks,
    /// Everything is set up; init now waits for `start`.
    Ready,
    /// A step failed: the real cause.
    Error(Reported),
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

/// What the parent expects next: first `RuntimeHooks`, or `Ready` when the spec has no hooks
/// to run during create (`hooks::any_during_create`: the init does not ask then).
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
    /// The init failed and said why.
    Failed(Reported),
    /// The channel closed before the init was ready: it died (its exit status says how).
    Died,
    /// A message out of order: a bug of harun's.
    OutOfOrder(String),
}

impl Action {
    /// The error for a failing action (`Died`: not yet knowing how).
    pub fn error(self) -> Option<Error> {
        match self {
            Action::RunRuntimeHooks | Action::Finish => None,
            Action::Failed(r) => Some(Error::InContainer(Box::new(r))),
            Action::Died => Some(Error::Ended {
                process: INIT,
                how: None,
            }),
            Action::OutOfOrder(m) => Some(Error::Internal(format!("init channel: {m}"))),
        }
    }
}

/// What [`Error::Ended`] calls the init.
pub const INIT: &str = "the init";

impl Expect {
    /// The protocol: anything out of order is a failure naming what came instead.
    pub fn next(self, msg: Option<FromInit>) -> (Expect, Action) {
        let action = match (self, msg) {
            (_, Some(FromInit::Error(r))) => Action::Failed(r),
            (Expect::RuntimeHooks, Some(FromInit::RuntimeHooks)) => {
                return (Expect::Ready, Action::RunRuntimeHooks)
            }
            (Expect::Ready, Some(FromInit::Ready)) => Action::Finish,
            (Expect::Done, m) => {
                Action::OutOfOrder(format!("unexpected message after ready: {m:?}"))
            }
            (_, None) => Action::Died,
            (want, Some(got)) => Action::OutOfOrder(format!("expected {want:?}, got {got:?}")),
        };
        (Expect::Done, action)
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
        let data = serde_json::to_vec(msg).map_err(|e| Error::Internal(e.to_string()))?;
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
                        return Err(Error::Internal(format!(
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
    Error::Internal(format!("bad message on the init channel: {what}"))
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
        let eperm = Error::sys("mount `/proc`")(Errno::EPERM).report();
        let out_of_order = |m: &str| OutOfOrder(m.into());
        let fails = [
            (
                E::RuntimeHooks,
                Some(M::Ready),
                out_of_order("expected RuntimeHooks, got Ready"),
            ),
            (
                E::Ready,
                Some(M::RuntimeHooks),
                out_of_order("expected Ready, got RuntimeHooks"),
            ),
            (E::RuntimeHooks, None, Died),
            (E::Ready, None, Died),
            (
                E::Ready,
                Some(M::Error(eperm.clone())),
                Failed(eperm.clone()),
            ),
            (
                E::RuntimeHooks,
                Some(M::Error(eperm.clone())),
                Failed(eperm),
            ),
            (
                E::Done,
                Some(M::Ready),
                out_of_order("unexpected message after ready: Some(Ready)"),
            ),
        ];
        for (at, msg, want) in fails {
            assert_eq!(at.next(msg.clone()), (E::Done, want), "{at:?} {msg:?}");
        }
    }

    /// What `create` returns for each failing action: the init's error with its kind, errno
    /// and field; a death; a bug.
    #[test]
    fn failing_actions_become_errors_of_their_kind() {
        use crate::ErrorKind;
        let spec = Error::spec("process.args[0]", "`x`: executable file not found in $PATH");
        let e = Action::Failed(spec.report()).error().unwrap();
        assert_eq!((e.kind(), e.errno()), (ErrorKind::InvalidInput, None));
        assert_eq!(e.field(), Some("process.args[0]"));
        assert_eq!(
            e.to_string(),
            "in the container: process.args[0]: `x`: executable file not found in $PATH"
        );
        let sys = Error::sys("mount `/proc`")(Errno::EPERM).context("mounts[1]");
        let e = Action::Failed(sys.report()).error().unwrap();
        assert_eq!(
            (e.kind(), e.errno()),
            (ErrorKind::System, Some(Errno::EPERM))
        );
        assert_eq!(
            e.to_string(),
            "in the container: mounts[1]: mount `/proc`: EPERM: Operation not permitted"
        );
        // Reported again (an exec'd startContainer hook's error inside another): one prefix.
        assert_eq!(e.report().message, sys.to_string());
        let e = Action::Died.error().unwrap();
        assert!(matches!(e, Error::Ended { how: None, .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "in the container: the init ended before it was ready"
        );
        let e = Action::OutOfOrder("expected Ready, got RuntimeHooks".into())
            .error()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(
            e.to_string(),
            "internal error: init channel: expected Ready, got RuntimeHooks"
        );
        assert!(Action::Finish.error().is_none());
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
        let boom = Error::sys("boom")(Errno::ENOENT).report();
        b.send(&FromInit::Error(boom.clone())).unwrap();
        assert_eq!(a.recv::<FromInit>().unwrap(), Some(FromInit::Error(boom)));
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
