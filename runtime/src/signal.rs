//! Signal names and numbers as `kill` takes them: `TERM`, `SIGTERM`, `15`, `sigkill`.

use nix::sys::signal::Signal;

use crate::{Error, Result};

/// Parse a signal given by name (with or without `SIG`, any case) or number.
/// Real-time signals are accepted by number (`34`..=`64`) and as `RTMIN+N`/`RTMAX-N`.
pub fn parse(text: &str) -> Result<i32> {
    let bad = || Error::InvalidArgument(format!("invalid signal `{text}`"));
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt_offset(rest, libc::SIGRTMIN(), 1).ok_or_else(bad);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt_offset(rest, libc::SIGRTMAX(), -1).ok_or_else(bad);
    }
    format!("SIG{name}")
        .parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

fn rt_offset(rest: &str, base: i32, dir: i32) -> Option<i32> {
    let n = if rest.is_empty() {
        base
    } else {
        let sign = if dir > 0 { '+' } else { '-' };
        base + dir * rest.strip_prefix(sign)?.parse::<i32>().ok()?
    };
    (libc::SIGRTMIN()..=libc::SIGRTMAX())
        .contains(&n)
        .then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        let ok = [
            ("TERM", 15),
            ("SIGTERM", 15),
            ("sigkill", 9),
            ("9", 9),
            ("HUP", 1),
            ("USR1", libc::SIGUSR1),
            ("WINCH", libc::SIGWINCH),
            ("RTMIN", libc::SIGRTMIN()),
            ("SIGRTMIN+2", libc::SIGRTMIN() + 2),
            ("RTMAX-1", libc::SIGRTMAX() - 1),
        ];
        for (text, want) in ok {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
        for text in [
            "",
            "0",
            "-1",
            "65",
            "TERMINATE",
            "SIGFOO",
            "RTMIN+99",
            "1.5",
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().contains("invalid signal"), "{text}: {e}");
        }
    }
}
