//! The copier: one thread, one epoll, every stream of every process of the shim.
//!
//! A copy moves bytes from a source (the container's stdout pipe, its pty master, the stdin
//! FIFO) to a destination (the FIFO containerd reads, a log file, the container's stdin
//! pipe). All fds are non-blocking; a destination that is full (nobody reads the FIFO)
//! stops its copy from reading until it drains, so the container blocks on its own pipe
//! rather than the shim buffering without bound (one buffer per copy).
//!
//! A process's output copies share a [`Drained`] latch: the exit path waits on it (with a
//! bound) so every byte written before the exit is out before TaskExit is published.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

const BUF: usize = 32 * 1024;
const WAKE: u64 = u64::MAX;

/// Counts a process's output copies still running; wakes waiters at zero.
#[derive(Debug, Default)]
pub struct Drained {
    left: Mutex<usize>,
    cond: Condvar,
}

impl Drained {
    fn add(&self) {
        *self.left.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn done(&self) {
        let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.cond.notify_all();
        }
    }

    /// Wait until every output copy has reached end of file, at most `bound`. True if so.
    pub fn wait(&self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        while *left > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            left = self
                .cond
                .wait_timeout(left, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// Where a copy writes. Shared when stdout and stderr go to one file.
pub type Dest = Arc<OwnedFd>;

/// One stream to copy.
#[derive(Debug)]
pub struct Stream {
    pub src: OwnedFd,
    pub dst: Dest,
    /// An output stream: counts in the process's [`Drained`].
    pub output: bool,
}

/// The copies of one process, as the shim refers to them.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: u64,
    pub drained: Arc<Drained>,
}

enum Cmd {
    Add(u64, Vec<Stream>, Arc<Drained>),
    /// Stop the group's input copy after what the FIFO holds now is written; close the
    /// container's stdin.
    CloseStdin(u64),
    /// Drop every copy of the group (the process is deleted).
    Remove(u64),
}

/// The shim's handle on the copier thread.
#[derive(Debug)]
pub struct Copier {
    tx: Mutex<Sender<Cmd>>,
    wake: Arc<EventFd>,
    next: Mutex<u64>,
}

impl Copier {
    pub fn spawn() -> std::io::Result<Copier> {
        let wake = Arc::new(EventFd::from_flags(
            EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC,
        )?);
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        let (tx, rx) = channel();
        let w = wake.clone();
        std::thread::Builder::new()
            .name("copier".into())
            .stack_size(64 * 1024)
            .spawn(move || Loop::new(epoll, w, rx).run())?;
        Ok(Copier {
            tx: Mutex::new(tx),
            wake,
            next: Mutex::new(1),
        })
    }

    fn send(&self, cmd: Cmd) {
        let _ = self.tx.lock().unwrap_or_else(|p| p.into_inner()).send(cmd);
        let _ = self.wake.write(1);
    }

    /// Start copying `streams`; their group.
    pub fn add(&self, streams: Vec<Stream>) -> Group {
        let id = {
            let mut n = self.next.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        let drained = Arc::new(Drained::default());
        for s in &streams {
            if s.output {
                drained.add();
            }
        }
        self.send(Cmd::Add(id, streams, drained.clone()));
        Group { id, drained }
    }

    pub fn close_stdin(&self, group: u64) {
        self.send(Cmd::CloseStdin(group));
    }

    pub fn remove(&self, group: u64) {
        self.send(Cmd::Remove(group));
    }
}

struct Copy {
    group: u64,
    src: OwnedFd,
    dst: Dest,
    buf: Vec<u8>,
    /// Bytes of `buf` not yet written: `buf[start..end]`.
    start: usize,
    end: usize,
    drained: Option<Arc<Drained>>,
    /// Waiting for the destination to take `buf[start..end]`.
    blocked: bool,
    /// Close once the pending bytes are written (stdin after CloseIO).
    closing: bool,
}

impl Drop for Copy {
    fn drop(&mut self) {
        if let Some(d) = &self.drained {
            d.done();
        }
    }
}

struct Loop {
    epoll: Epoll,
    wake: Arc<EventFd>,
    rx: Receiver<Cmd>,
    copies: HashMap<u64, Copy>,
    next: u64,
}

/// What one step of a copy came to.
enum Step {
    Going,
    Finished,
}

impl Loop {
    fn new(epoll: Epoll, wake: Arc<EventFd>, rx: Receiver<Cmd>) -> Loop {
        Loop {
            epoll,
            wake,
            rx,
            copies: HashMap::new(),
            next: 0,
        }
    }

    fn run(mut self) {
        let mut events = [EpollEvent::empty(); 32];
        loop {
            let n = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            };
            for ev in &events[..n] {
                let key = ev.data();
                if key == WAKE {
                    let _ = self.wake.read();
                    while let Ok(cmd) = self.rx.try_recv() {
                        self.command(cmd);
                    }
                    continue;
                }
                let step = match self.copies.get_mut(&key) {
                    Some(c) => c.step(),
                    None => continue,
                };
                self.settle(key, step);
            }
        }
    }

    fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Add(group, streams, drained) => {
                for s in streams {
                    self.next += 1;
                    let key = self.next;
                    let copy = Copy {
                        group,
                        src: s.src,
                        dst: s.dst,
                        buf: Vec::new(),
                        start: 0,
                        end: 0,
                        drained: s.output.then(|| drained.clone()),
                        blocked: false,
                        closing: false,
                    };
                    let ev = EpollEvent::new(EpollFlags::EPOLLIN, key);
                    if self.epoll.add(copy.src.as_fd(), ev).is_ok() {
                        self.copies.insert(key, copy);
                    }
                }
            }
            Cmd::CloseStdin(group) => {
                let keys: Vec<u64> = self
                    .copies
                    .iter()
                    .filter(|(_, c)| c.group == group && c.drained.is_none())
                    .map(|(k, _)| *k)
                    .collect();
                for key in keys {
                    let step = match self.copies.get_mut(&key) {
                        Some(c) => {
                            c.closing = true;
                            c.step()
                        }
                        None => continue,
                    };
                    self.settle(key, step);
                }
            }
            Cmd::Remove(group) => {
                let keys: Vec<u64> = self
                    .copies
                    .iter()
                    .filter(|(_, c)| c.group == group)
                    .map(|(k, _)| *k)
                    .collect();
                for key in keys {
                    self.finish(key);
                }
            }
        }
    }

    /// After a step: re-arm the copy for what it waits on, or drop it.
    fn settle(&mut self, key: u64, step: Step) {
        let Some(c) = self.copies.get(&key) else {
            return;
        };
        match step {
            Step::Finished => self.finish(key),
            Step::Going => {
                let (fd, other) = if c.blocked {
                    (c.dst.as_fd(), c.src.as_fd())
                } else {
                    (c.src.as_fd(), c.dst.as_fd())
                };
                let flags = if c.blocked {
                    EpollFlags::EPOLLOUT
                } else {
                    EpollFlags::EPOLLIN
                };
                // Only one of the two is registered at a time, under the copy's key.
                let _ = self.epoll.delete(other);
                let ev = EpollEvent::new(flags, key);
                if self.epoll.modify(fd, &mut ev.clone()).is_err() {
                    let _ = self.epoll.add(fd, ev);
                }
            }
        }
    }

    fn finish(&mut self, key: u64) {
        if let Some(c) = self.copies.remove(&key) {
            let _ = self.epoll.delete(c.src.as_fd());
            // A shared destination (one log file for stdout and stderr) is only registered
            // while blocked; removing an fd that is not there is harmless.
            let _ = self.epoll.delete(c.dst.as_fd());
        }
    }
}

impl Copy {
    /// Move what can be moved now.
    fn step(&mut self) -> Step {
        loop {
            if self.start < self.end {
                match nix::unistd::write(&*self.dst, &self.buf[self.start..self.end]) {
                    Ok(n) => self.start += n,
                    Err(Errno::EINTR) => continue,
                    Err(Errno::EAGAIN) => {
                        self.blocked = true;
                        return Step::Going;
                    }
                    // The reader is gone for good (a closed stdin, a removed file): keep
                    // draining the source so the container never blocks on it.
                    Err(_) => self.start = self.end,
                }
                continue;
            }
            self.blocked = false;
            if self.buf.is_empty() {
                self.buf = vec![0; BUF];
            }
            match nix::unistd::read(&self.src, &mut self.buf) {
                Ok(0) => return Step::Finished,
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) if self.closing => return Step::Finished,
                Err(Errno::EAGAIN) => {
                    // Nothing pending: the buffer goes until the next burst (a quiet
                    // container costs no buffer).
                    self.buf = Vec::new();
                    return Step::Going;
                }
                // EIO: a pty master whose last slave fd closed (the process exited).
                Err(_) => return Step::Finished,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::{Read, Write};

    /// A pipe whose ends are non-blocking as asked.
    fn pipe(nb_read: bool, nb_write: bool) -> (File, File) {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let (r, w) = nix::unistd::pipe().unwrap();
        for (fd, nb) in [(&r, nb_read), (&w, nb_write)] {
            if nb {
                fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
            }
        }
        (File::from(r), File::from(w))
    }

    #[test]
    fn output_is_copied_and_the_latch_opens_at_eof() {
        let copier = Copier::spawn().unwrap();
        let (src_r, mut src_w) = pipe(true, false);
        let (mut dst_r, dst_w) = pipe(false, true);
        let g = copier.add(vec![Stream {
            src: src_r.into(),
            dst: Arc::new(dst_w.into()),
            output: true,
        }]);
        // More than two pipes hold: the copy must wait for the reader.
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let writer = {
            let data = data.clone();
            std::thread::spawn(move || src_w.write_all(&data).unwrap())
        };
        assert!(!g.drained.wait(Duration::from_millis(50)));
        let mut got = Vec::new();
        dst_r.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got, data);
        assert!(g.drained.wait(Duration::from_secs(5)));
    }

    #[test]
    fn close_stdin_flushes_then_closes() {
        let copier = Copier::spawn().unwrap();
        let (fifo_r, mut fifo_w) = pipe(true, false);
        let (mut stdin_r, stdin_w) = pipe(false, true);
        let g = copier.add(vec![Stream {
            src: fifo_r.into(),
            dst: Arc::new(stdin_w.into()),
            output: false,
        }]);
        fifo_w.write_all(b"last words").unwrap();
        copier.close_stdin(g.id);
        let mut got = String::new();
        stdin_r.read_to_string(&mut got).unwrap();
        assert_eq!(got, "last words");
    }
}
