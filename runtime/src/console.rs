//! process.terminal: the init allocates a pty inside the container and hands the master to
//! the caller over the `--console-socket` unix socket (SCM_RIGHTS), as runc does.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{
    connect, recvmsg, sendmsg, socket, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::unistd::{dup3, fchown, setsid, Uid};
use oci_spec::runtime::Box as ConsoleSize;

use crate::{Error, Result};

/// Connect to the caller's console socket (done by the parent, before clone, while the host
/// path is reachable).
pub fn connect_socket(path: &Path) -> Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(Error::sys("socket for the console"))?;
    let addr = UnixAddr::new(path).map_err(|e| {
        Error::InvalidArgument(format!("--console-socket `{}`: {e}", path.display()))
    })?;
    connect(fd.as_raw_fd(), &addr).map_err(|e| {
        Error::InvalidArgument(format!(
            "--console-socket: connect `{}`: {e}",
            path.display()
        ))
    })?;
    Ok(fd)
}

/// In the init, after the container's /dev/pts is mounted and the root switched: make a pty,
/// send its master over `socket`, and make the slave the controlling terminal and stdio.
pub fn setup_in_init(socket: &OwnedFd, size: Option<ConsoleSize>, uid: u32) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(Error::sys("open /dev/ptmx"))?;
    grantpt(&master).map_err(Error::sys("grantpt"))?;
    unlockpt(&master).map_err(Error::sys("unlockpt"))?;
    let name = ptsname_r(&master).map_err(Error::sys("ptsname"))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open pty `{name}`"))(e))?;
    if let Some(sz) = size {
        let ws = libc::winsize {
            ws_row: sz.height() as u16,
            ws_col: sz.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize struct from the pointer, which is valid.
        let r = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        nix::errno::Errno::result(r).map_err(Error::sys("set console size"))?;
    }
    fchown(slave.as_fd(), Some(Uid::from_raw(uid)), None)
        .map_err(|e| Error::sys(format!("chown pty `{name}`"))(e))?;
    send_fd(socket.as_raw_fd(), name.as_bytes(), master.as_raw_fd())?;
    drop(master);
    setsid().map_err(Error::sys("setsid"))?;
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal); the fd is a valid tty.
    let r = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    nix::errno::Errno::result(r).map_err(Error::sys("make the pty the controlling terminal"))?;
    for target in 0..3 {
        // SAFETY: stdio fds 0..2 are ours to replace; dup3 closes what they held.
        let mut t = unsafe { OwnedFd::from_raw_fd(target) };
        dup3(&slave, &mut t, OFlag::empty()).map_err(Error::sys("dup pty to stdio"))?;
        std::mem::forget(t);
    }
    Ok(())
}

/// Send one fd with a small payload (the pty name) over a unix socket.
pub fn send_fd(socket: RawFd, payload: &[u8], fd: RawFd) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload)];
    sendmsg::<()>(socket, &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(Error::sys("send the pty master over the console socket"))?;
    Ok(())
}

/// Receive one fd sent with [`send_fd`] (the foreground `run` uses this on its own pair).
pub fn recv_fd(socket: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(Error::sys("receive the pty master"))?;
    for c in msg.cmsgs().map_err(Error::sys("read control message"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel installed this fd for us just now.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Internal(
        "no pty master received on the console socket".into(),
    ))
}
