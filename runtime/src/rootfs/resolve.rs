//! Paths inside the container root, resolved and created without ever leaving it.
//!
//! A mount destination or device path comes from config.json but is walked through the
//! image's own directories, which may hold symlinks such as `/proc -> /` or
//! `/var/run -> ../../../etc` (CVE-2021-30465 class). Every lookup here starts at a dirfd on
//! the root and interprets each symlink as if that dirfd were `/`: openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS) when the kernel has it (5.6+), else a component-by-component walk
//! with openat(O_NOFOLLOW). The result is an O_PATH fd; callers mount onto
//! `/proc/self/fd/N`, so no path string is ever resolved again.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{open, openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};

/// Symlinks followed in one lookup before giving up with ELOOP (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

/// What to create when the last component of a path does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// Nothing: a missing path is ENOENT.
    Nothing,
    /// A directory (mode 0755), and any missing parent directories.
    Dir,
    /// An empty regular file (mode 0644, a bind-mount point), and missing parents.
    File,
}

/// A directory that lookups cannot leave.
pub(crate) struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Open `path` (a directory) as the root of later lookups.
    pub(crate) fn open(path: &Path) -> nix::Result<Root> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = open(path, flags, Mode::empty())?;
        Ok(Root { fd })
    }

    /// O_PATH fd of `path` (absolute or not, always taken inside the root). Symlinks are
    /// followed inside the root; magic links (/proc/N/root, ...) are refused.
    pub(crate) fn resolve(&self, path: &Path) -> nix::Result<OwnedFd> {
        self.resolve_or_create(path, Create::Nothing)
    }

    /// Like [`Root::resolve`], creating what is missing as `create` says.
    pub(crate) fn resolve_or_create(&self, path: &Path, create: Create) -> nix::Result<OwnedFd> {
        match self.openat2(path) {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOENT) if create != Create::Nothing => self.walk(path, create),
            // No openat2 (kernel < 5.6, or a seccomp filter that refuses it).
            Err(Errno::ENOSYS | Errno::EPERM) => self.walk(path, create),
            Err(e) => Err(e),
        }
    }

    /// The directory holding `path` (created if missing) and `path`'s last component, for
    /// mknodat/symlinkat/unlinkat, which never follow that last component.
    pub(crate) fn parent_of(&self, path: &Path) -> nix::Result<(OwnedFd, OsString)> {
        let name = match path.components().next_back() {
            Some(Component::Normal(name)) => name.to_os_string(),
            _ => return Err(Errno::EINVAL),
        };
        let parent = path.parent().unwrap_or(Path::new("/"));
        Ok((self.resolve_or_create(parent, Create::Dir)?, name))
    }

    fn openat2(&self, path: &Path) -> nix::Result<OwnedFd> {
        let rel = in_root(path);
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        // EAGAIN: a rename or mount raced with the lookup; the kernel asks for a retry.
        let mut tries = 0;
        loop {
            match openat2(&self.fd, rel, how) {
                Err(Errno::EAGAIN) if tries < 8 => tries += 1,
                other => return other,
            }
        }
    }

    /// Walk `path` one component at a time from the root, following symlinks by hand as
    /// RESOLVE_IN_ROOT would (an absolute target restarts at the root, `..` stops there),
    /// creating missing components when `create` asks for it.
    fn walk(&self, path: &Path, create: Create) -> nix::Result<OwnedFd> {
        // Components still to visit, the next one last.
        let mut todo: Vec<OsString> = Vec::new();
        push_components(&mut todo, path);
        // Directories entered so far below the root (for `..`).
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut links = 0;
        while let Some(name) = todo.pop() {
            if name == ".." {
                dirs.pop();
                continue;
            }
            let cur = dirs.last().map_or(self.fd.as_fd(), |d| d.as_fd());
            let fd = match open_nofollow(cur, &name) {
                Err(Errno::ENOENT) if create != Create::Nothing => {
                    let file = create == Create::File && todo.is_empty();
                    make(cur, &name, file)?;
                    open_nofollow(cur, &name)?
                }
                other => other?,
            };
            let kind = SFlag::from_bits_truncate(fstat(&fd)?.st_mode) & SFlag::S_IFMT;
            if kind == SFlag::S_IFLNK {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let target = readlinkat(&fd, "")?;
                if target.as_bytes().first() == Some(&b'/') {
                    dirs.clear();
                }
                push_components(&mut todo, Path::new(&target));
            } else if kind == SFlag::S_IFDIR {
                dirs.push(fd);
            } else if todo.is_empty() {
                return Ok(fd);
            } else {
                return Err(Errno::ENOTDIR);
            }
        }
        match dirs.pop() {
            Some(fd) => Ok(fd),
            None => open_nofollow(self.fd.as_fd(), OsStr::new(".")),
        }
    }
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `path` as seen from the root: leading `/` dropped, `.` for the root itself.
fn in_root(path: &Path) -> &Path {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

/// Push the components of `path` onto `todo` so that the first one is popped first.
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    let start = todo.len();
    for c in path.components() {
        match c {
            Component::Normal(n) => todo.push(n.to_os_string()),
            Component::ParentDir => todo.push(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    todo[start..].reverse();
}

fn open_nofollow(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir, name, flags, Mode::empty())
}

/// Create `name` in `dir`: a directory, or an empty file when `file`. Losing a race to
/// another creator is fine (EEXIST); the caller opens whatever is there.
fn make(dir: BorrowedFd<'_>, name: &OsStr, file: bool) -> nix::Result<()> {
    let made = if file {
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        openat(dir, name, flags, Mode::from_bits_truncate(0o644)).map(drop)
    } else {
        mkdirat(dir, name, Mode::from_bits_truncate(0o755))
    };
    match made {
        Err(Errno::EEXIST) => Ok(()),
        other => other,
    }
}

/// `/proc/self/fd/N`: a path to what `fd` refers to, for calls that take only paths
/// (mount(2)). Before pivot_root this goes through the host's /proc, after it through the
/// container's (the caller checks that one is a procfs).
pub(crate) fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    /// A scratch directory in the temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let pid = std::process::id();
            let dir = std::env::temp_dir().join(format!("harun-resolve-{name}-{pid}"));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("root")).expect("create scratch dir");
            Scratch(dir)
        }
        fn root(&self) -> PathBuf {
            self.0.join("root")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Where an fd points, through /proc/self/fd.
    fn target(fd: &OwnedFd) -> PathBuf {
        fs::read_link(fd_path(fd)).expect("readlink /proc/self/fd")
    }

    #[test]
    fn in_root_strips_the_leading_slash() {
        assert_eq!(in_root(Path::new("/")), Path::new("."));
        assert_eq!(in_root(Path::new("")), Path::new("."));
        assert_eq!(in_root(Path::new("/a/b")), Path::new("a/b"));
        assert_eq!(in_root(Path::new("a")), Path::new("a"));
    }

    #[test]
    fn components_pop_in_order() {
        let mut todo = vec![OsString::from("later")];
        push_components(&mut todo, Path::new("/a/./b/../c"));
        let order: Vec<_> = todo
            .iter()
            .rev()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(order, ["a", "b", "..", "c", "later"]);
    }

    /// Both lookups (openat2 and the hand walk) keep symlinks inside the root and create
    /// the dangling target inside it, never on the host.
    #[test]
    fn symlinks_stay_inside_the_root() {
        let s = Scratch::new("symlinks");
        let r = s.root();
        fs::create_dir_all(r.join("var")).unwrap();
        symlink("/run", r.join("var/run")).unwrap(); // dangling, absolute
        symlink("../../../../..", r.join("up")).unwrap(); // climbs past the root
        symlink(s.0.join("outside"), r.join("abs")).unwrap(); // host path
        let root = Root::open(&r).unwrap();

        for walk in [false, true] {
            let get = |p: &str, c: Create| {
                if walk {
                    root.walk(Path::new(p), c)
                } else {
                    root.resolve_or_create(Path::new(p), c)
                }
            };
            let fd = get("/var/run/x", Create::Dir).unwrap();
            assert_eq!(target(&fd), r.join("run/x"));
            let fd = get("/up/etc", Create::Dir).unwrap();
            assert_eq!(target(&fd), r.join("etc"));
            let fd = get("/abs/f", Create::File).unwrap();
            let inside = r.join(s.0.strip_prefix("/").unwrap()).join("outside/f");
            assert_eq!(target(&fd), inside);
            assert!(!s.0.join("outside").exists(), "created on the host");
            assert_eq!(get("/missing", Create::Nothing).unwrap_err(), Errno::ENOENT);
            assert_eq!(target(&get("/", Create::Nothing).unwrap()), r);
        }
    }

    #[test]
    fn walk_refuses_loops_and_files_as_dirs() {
        let s = Scratch::new("loops");
        let r = s.root();
        symlink("b", r.join("a")).unwrap();
        symlink("a", r.join("b")).unwrap();
        fs::write(r.join("file"), b"").unwrap();
        let root = Root::open(&r).unwrap();
        assert_eq!(
            root.walk(Path::new("/a/x"), Create::Dir).unwrap_err(),
            Errno::ELOOP
        );
        let err = root.walk(Path::new("/file/x"), Create::Dir).unwrap_err();
        assert_eq!(err, Errno::ENOTDIR);
        let (dir, name) = root.parent_of(Path::new("/d/e/node")).unwrap();
        assert_eq!(target(&dir), r.join("d/e"));
        assert_eq!(name, "node");
    }
}
