//! What harun reads from /proc about a process: its state and start time.
//!
//! The start time (field 22 of /proc/PID/stat, in clock ticks since boot) is recorded with
//! the pid so a reused pid is never mistaken for the container's init.

use std::fs;
use std::io::ErrorKind as IoKind;

/// The parts of /proc/PID/stat harun needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// One-letter state: R, S, D, Z, T, t, X, I...
    pub state: char,
    pub start_time: u64,
}

impl Stat {
    /// A zombie (or dead) process has stopped, even if nobody reaped it yet.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parse the text of /proc/PID/stat. `comm` (field 2) may hold spaces and parentheses, so
/// fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    // After comm: field 3 is the state, field 22 the start time (19 fields later).
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

/// Stat of `pid`, or None when the process does not exist (any more).
pub fn stat(pid: i32) -> std::io::Result<Option<Stat>> {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => Ok(parse_stat(&text)),
        Err(e) if e.kind() == IoKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        Err(e) => Err(e),
    }
}

/// True when `pid` is alive (not a zombie) and is the process that started at `start_time`.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    matches!(stat(pid), Ok(Some(s)) if s.start_time == start_time && !s.is_dead())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines() {
        let cases: &[(&str, Option<(char, u64)>)] = &[
            (
                "1234 (sh) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3",
                Some(('S', 987654)),
            ),
            (
                "7 (a b) c)) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0",
                Some(('Z', 42)),
            ),
            ("7 (sh) S 1 2", None),
            ("garbage", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = parse_stat(text).map(|s| (s.state, s.start_time));
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn own_process_is_alive_and_other_start_time_is_not() {
        let me = std::process::id() as i32;
        let st = stat(me).unwrap().unwrap();
        assert!(is_alive(me, st.start_time));
        assert!(!is_alive(me, st.start_time + 1));
        assert_eq!(stat(i32::MAX).unwrap(), None);
    }
}
