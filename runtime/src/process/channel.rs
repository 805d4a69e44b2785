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

impl Channel {
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| Error::Init(e.to_string()))?;
        loop {
            match send(self.fd.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("send on the init channel")(e)),
            }
        }
    }

    /// [`Channel::send`] with write(2), for the processes in the container (the init, an
    /// exec'd process): their last messages may go under the container's seccomp filter
    /// (without no_new_privs), and a profile written for runc allows write (runc's init
    /// writes its sync socket) but need not allow sendto. A closed peer is EPIPE, not a
    /// signal: those processes ignore SIGPIPE, or catch it (`finish::reset_signals`).
    pub fn send_by_write<T: Serialize>(&self, msg: &T) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| Error::Init(e.to_string()))?;
        loop {
            match nix::unistd::write(&self.fd, &data) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("send on the init channel")(e)),
            }
        }
    }

    /// Next message; None when the other side closed (exited).
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("receive on the init channel")(e)),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Init(format!("bad message on the init channel: {e}")))
    }
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
