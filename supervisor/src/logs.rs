//! A detached container's stdout and stderr: read by its supervisor (from the output FIFO,
//! [`crate::stdio`]) into `ROOT/.supervise/ID/container.log`, rotated by size.
//!
//! Rotation keeps at most `max_files` files of at most `max_size` bytes each:
//! `container.log` (newest), `container.log.1`, ... `container.log.<max_files - 1>` (oldest).
//! A chunk that does not fit is split after its last newline that fits, so lines stay whole
//! unless one line alone is longer than `max_size`. The state root is usually a tmpfs
//! (`/run`): logs cost memory, hence the small defaults (1 MiB x 3 files).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind as IoKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use harun_runtime::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::persist::Store;

pub const LOG_FILE: &str = "container.log";
pub const DEFAULT_MAX_SIZE: u64 = 1024 * 1024;
pub const DEFAULT_MAX_FILES: u32 = 3;

/// `--log-max-size` and `--log-max-files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfig {
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// `--log-max-size`: a size in harun's grammar (`512`, `100k`, `10m`, `1MiB`), at least one
/// byte.
pub fn parse_size(input: &str) -> crate::Result<u64> {
    match harun_runtime::units::parse_size(input)? {
        0 => Err(crate::Error::invalid(
            "size",
            input,
            "must be at least 1 byte",
        )),
        n => Ok(n),
    }
}

/// `--log-max-files`: a whole number, at least 1 (1: only the current file).
pub fn parse_max_files(input: &str) -> crate::Result<u32> {
    let bad = |reason: &str| crate::Error::invalid("file count", input, reason);
    if input.starts_with('-') {
        return Err(bad("negative counts are not allowed"));
    }
    match input.parse::<u32>() {
        Ok(0) => Err(bad("must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(bad("not a whole number")),
    }
}

/// The writing side: appends, rotating by size.
#[derive(Debug)]
pub struct RotatingLog {
    path: PathBuf,
    file: File,
    size: u64,
    config: LogConfig,
}

impl RotatingLog {
    pub fn open(store: &Store, config: LogConfig) -> Result<RotatingLog> {
        RotatingLog::open_at(&store.file(LOG_FILE), config)
    }

    fn open_at(path: &Path, config: LogConfig) -> Result<RotatingLog> {
        let file = open_append(path, 0o640)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingLog {
            path: path.to_path_buf(),
            file,
            size,
            config,
        })
    }

    pub fn config(&self) -> LogConfig {
        self.config
    }

    /// Appends `data`, rotating so that no file grows past `max_size`.
    pub fn write(&mut self, mut data: &[u8]) -> Result<()> {
        let max = self.config.max_size.max(1);
        while !data.is_empty() {
            let room = usize::try_from(max.saturating_sub(self.size)).unwrap_or(usize::MAX);
            if data.len() <= room {
                return self.append(data);
            }
            let take = match data[..room].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                // One line longer than a whole file: split it.
                None if self.size == 0 => room,
                // Start the line in a fresh file.
                None => 0,
            };
            let (now, later) = data.split_at(take);
            self.append(now)?;
            data = later;
            self.rotate()?;
        }
        Ok(())
    }

    fn append(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(data)
            .map_err(Error::io("write", &self.path))?;
        self.size += data.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        shift_files(&self.path, self.config.max_files)?;
        self.file = open_append(&self.path, 0o640)?;
        self.size = 0;
        Ok(())
    }
}

/// Rotation by renames, for every rotated file harun writes (this log and the event log):
/// `path` -> `path.1` -> `path.2` ...; at most `keep` files stay (`path` included, at least
/// one), the oldest beyond them is removed. `path` is gone afterwards: reopen it.
pub(crate) fn shift_files(path: &Path, keep: u32) -> Result<()> {
    let keep = keep.max(1);
    if keep == 1 {
        return remove_if_exists(path);
    }
    remove_if_exists(&numbered(path, keep - 1))?;
    for n in (1..keep - 1).rev() {
        rename_if_exists(&numbered(path, n), &numbered(path, n + 1))?;
    }
    rename_if_exists(path, &numbered(path, 1))
}

/// Open `path` for appending (created with `mode`), close-on-exec.
pub(crate) fn open_append(path: &Path, mode: u32) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(Error::io("open", path))
}

/// `path.N`.
pub(crate) fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != IoKind::NotFound => Err(Error::io("remove", path)(e)),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != IoKind::NotFound => Err(Error::io("rotate", from)(e)),
        _ => Ok(()),
    }
}

/// The log files of a store, oldest first: `container.log.N` ... `.1`, `container.log`.
pub fn files(store: &Store) -> Vec<PathBuf> {
    let mut numbered: Vec<(u32, PathBuf)> = fs::read_dir(store.dir())
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let name = e.ok()?.file_name().into_string().ok()?;
                    let n = name
                        .strip_prefix(LOG_FILE)?
                        .strip_prefix('.')?
                        .parse()
                        .ok()?;
                    Some((n, store.file(&name)))
                })
                .collect()
        })
        .unwrap_or_default();
    harun_runtime::sort::sort_by_key(&mut numbered, |n| std::cmp::Reverse(n.0));
    let mut out: Vec<PathBuf> = numbered.into_iter().map(|(_, p)| p).collect();
    let current = store.file(LOG_FILE);
    if current.exists() {
        out.push(current);
    }
    out
}

/// Everything logged, oldest first; with `tail`, only the last `tail` lines.
pub fn read(store: &Store, tail: Option<usize>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for path in files(store) {
        match fs::read(&path) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            // Rotated away between listing and reading.
            Err(e) if e.kind() == IoKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &path)(e)),
        }
    }
    Ok(match tail {
        Some(n) => last_lines(&out, n).to_vec(),
        None => out,
    })
}

/// The last `n` lines of `data` (a final line without newline counts as a line).
pub fn last_lines(data: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &data[data.len()..];
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|&(_, &b)| b == b'\n')
        .nth(n - 1)
        .map_or(0, |(i, _)| i + 1);
    &data[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("harun-logs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn sizes() {
        let ok: &[(&str, u64)] = &[
            ("1", 1),
            ("512", 512),
            ("100k", 100 << 10),
            ("100K", 100 << 10),
            ("10m", 10 << 20),
            ("10MB", 10 << 20),
            ("10MiB", 10 << 20),
            ("1g", 1 << 30),
            ("2kb", 2048),
        ];
        for &(input, want) in ok {
            assert_eq!(parse_size(input), Ok(want), "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("0", "invalid size `0`: must be at least 1 byte"),
            ("-1m", "invalid size `-1m`: negative sizes are not allowed"),
            (
                "10x",
                "invalid size `10x`: unknown unit `x` (use k, m, g, t, p, e.g. `64m`)",
            ),
        ];
        for &(input, want) in bad {
            assert_eq!(parse_size(input).expect_err(input).to_string(), want);
        }
        assert_eq!(parse_max_files("3"), Ok(3));
        for (input, want) in [
            ("0", "at least 1"),
            ("-1", "negative"),
            ("x", "not a whole number"),
            ("", "not a whole number"),
        ] {
            let err = parse_max_files(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn rotation_keeps_max_files_of_max_size() {
        let dir = tmp("rotate");
        let path = dir.join(LOG_FILE);
        let config = LogConfig {
            max_size: 64,
            max_files: 3,
        };
        let mut log = RotatingLog::open_at(&path, config).unwrap();
        let mut all = Vec::new();
        for i in 0..100 {
            let line = format!("line {i:03}\n");
            all.extend_from_slice(line.as_bytes());
            log.write(line.as_bytes()).unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["container.log", "container.log.1", "container.log.2"]
        );
        let mut kept = Vec::new();
        for name in ["container.log.2", "container.log.1", "container.log"] {
            let bytes = fs::read(dir.join(name)).unwrap();
            assert!(bytes.len() <= 64, "{name}: {} bytes", bytes.len());
            assert!(bytes.ends_with(b"\n"), "{name} ends mid-line");
            kept.extend_from_slice(&bytes);
        }
        // What is kept is exactly the end of what was written.
        assert!(all.ends_with(&kept));
        assert!(kept.len() > 64 * 2 - 20, "kept {} bytes", kept.len());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn long_lines_are_split_and_one_file_means_truncation() {
        let dir = tmp("long");
        let path = dir.join(LOG_FILE);
        let config = LogConfig {
            max_size: 10,
            max_files: 1,
        };
        let mut log = RotatingLog::open_at(&path, config).unwrap();
        log.write(b"abc\n").unwrap();
        log.write(b"0123456789ABCDEFGHIJ-tail").unwrap();
        let names: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert_eq!(fs::read(&path).unwrap(), b"-tail");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_chunk_of_lines_splits_after_the_last_newline_that_fits() {
        let dir = tmp("chunk");
        let path = dir.join(LOG_FILE);
        let config = LogConfig {
            max_size: 12,
            max_files: 4,
        };
        let mut log = RotatingLog::open_at(&path, config).unwrap();
        log.write(b"aa\nbb\ncc\ndd\nee\n").unwrap();
        assert_eq!(fs::read(numbered(&path, 1)).unwrap(), b"aa\nbb\ncc\ndd\n");
        assert_eq!(fs::read(&path).unwrap(), b"ee\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tails() {
        let cases: &[(&str, usize, &str)] = &[
            ("a\nb\nc\n", 2, "b\nc\n"),
            ("a\nb\nc\n", 3, "a\nb\nc\n"),
            ("a\nb\nc\n", 9, "a\nb\nc\n"),
            ("a\nb\nc", 1, "c"),
            ("a\nb\nc", 2, "b\nc"),
            ("a\n\nc\n", 2, "\nc\n"),
            ("", 3, ""),
            ("a\nb\n", 0, ""),
        ];
        for &(data, n, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(last_lines(data.as_bytes(), n)),
                want,
                "{data:?} {n}"
            );
        }
    }
}
