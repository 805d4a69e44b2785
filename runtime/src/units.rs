//! The one size grammar and the one duration grammar of every flag and annotation
//! (README.md, "Sizes and durations").
//!
//! Sizes: `<digits>[unit]`; units `k`, `m`, `g`, `t`, `p` are powers of 1024, in either case,
//! optionally followed by `b` or `ib` (`64m` = `64M` = `64MB` = `64MiB`); no unit, or a bare
//! `b`, is bytes. No fractions, signs or spaces.
//!
//! Durations: `<digits><unit>` repeated, units `h`, `m`, `s`, `ms` (lower case), each at
//! most once and largest first (`1m30s`, not `30s1m`); a bare number is seconds (`10` =
//! `10s`, as `stop -t 10` in runc and Docker). No fractions, signs or spaces: one spelling
//! per value, so [`format_duration`] round-trips whatever [`parse_duration`] accepts.
//! Resolution is one millisecond.
//!
//! Callers decide the range (a tmpfs size of 0, a log size of 0, a zero interval) and add
//! where the value came from (the flag or the annotation) to the error.

use std::fmt;
use std::time::Duration;

/// A value that does not follow its grammar: "invalid duration `10x`: unknown unit `x` (use
/// ms, s, m, h)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    what: &'static str,
    input: String,
    reason: String,
}

impl Invalid {
    pub fn new(what: &'static str, input: &str, reason: impl Into<String>) -> Invalid {
        Invalid {
            what,
            input: input.to_string(),
            reason: reason.into(),
        }
    }

    /// Why the input is wrong, without "invalid WHAT `INPUT`".
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} `{}`: {}", self.what, self.input, self.reason)
    }
}

impl std::error::Error for Invalid {}

const SIZE_UNITS: &str = "use k, m, g, t, p, e.g. `64m`";

/// Bytes from `512`, `100k`, `64m`, `64MiB`, `1g` (see the module doc).
pub fn parse_size(input: &str) -> Result<u64, Invalid> {
    let bad = |reason: String| Invalid::new("size", input, reason);
    let (digits, unit) = split_prefix(input, |b| b.is_ascii_digit());
    if digits.is_empty() {
        return Err(bad(match input.chars().next() {
            Some('-') => "negative sizes are not allowed".into(),
            Some(c) if c != '.' => {
                format!("expected a number of bytes, found `{c}` ({SIZE_UNITS})")
            }
            _ => format!("expected a number of bytes ({SIZE_UNITS})"),
        }));
    }
    let lower = unit.to_ascii_lowercase();
    let prefix = lower
        .strip_suffix("ib")
        .filter(|p| !p.is_empty())
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let shift = match prefix {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ if unit.starts_with(['.', ',']) => {
            return Err(bad(
                "fractions are not supported (write `1536m` for 1.5g)".into()
            ))
        }
        _ => return Err(bad(format!("unknown unit `{unit}` ({SIZE_UNITS})"))),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| bad("too large".into()))
}

/// Units, largest first, with their length in milliseconds.
const DURATION_UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

const DURATION_HINT: &str = "use ms, s, m, h";

/// Parses `100ms`, `10s`, `1m`, `1h`, `1m30s`, `10` (seconds), `0`.
pub fn parse_duration(input: &str) -> Result<Duration, Invalid> {
    let bad = |reason: String| Invalid::new("duration", input, reason);
    if input.is_empty() {
        return Err(bad("empty (write e.g. `100ms`, `10s`, `1m30s`)".into()));
    }
    if input.bytes().all(|b| b.is_ascii_digit()) {
        return input
            .parse::<u64>()
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .map(Duration::from_millis)
            .ok_or_else(|| bad("too large".into()));
    }
    let mut rest = input;
    let mut total_ms: u64 = 0;
    let mut previous_unit: Option<usize> = None;
    while !rest.is_empty() {
        let (digits, after) = split_prefix(rest, |b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(bad(not_a_number(after)));
        }
        let (unit, after) = split_prefix(after, |b| b.is_ascii_alphabetic());
        if unit.is_empty() {
            return Err(bad(missing_unit(digits, after)));
        }
        let index = DURATION_UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(|| bad(format!("unknown unit `{unit}` ({DURATION_HINT})")))?;
        if let Some(previous) = previous_unit.filter(|&p| index <= p) {
            let before = DURATION_UNITS[previous].0;
            return Err(bad(format!(
                "unit `{unit}` after `{before}` (write each unit once, largest first, e.g. `1m30s`)"
            )));
        }
        previous_unit = Some(index);
        total_ms = digits
            .parse::<u64>()
            .ok()
            .and_then(|value| value.checked_mul(DURATION_UNITS[index].1))
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| bad("too large".into()))?;
        rest = after;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way [`parse_duration`] reads it: `0s`, `100ms`, `1m30s`, `25h`.
/// Anything below a millisecond is dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (name, unit_ms) in DURATION_UNITS {
        let unit_ms = u128::from(unit_ms);
        let count = ms / unit_ms;
        if count > 0 {
            out.push_str(&count.to_string());
            out.push_str(name);
            ms -= count * unit_ms;
        }
    }
    out
}

/// Splits `s` after its longest prefix of ASCII bytes matching `pred`.
fn split_prefix(s: &str, pred: impl Fn(u8) -> bool) -> (&str, &str) {
    let len = s.bytes().take_while(|&b| pred(b)).count();
    s.split_at(len)
}

/// Why `rest` (which does not start with a digit) is not a number.
fn not_a_number(rest: &str) -> String {
    match rest.chars().next() {
        Some('-') => "negative durations are not allowed".to_string(),
        Some(c) => format!("expected a number, found `{c}`"),
        None => "expected a number".to_string(),
    }
}

/// Why `digits` followed by `rest` lacks a unit (a bare number is seconds only alone).
fn missing_unit(digits: &str, rest: &str) -> String {
    match rest.chars().next() {
        None => format!("missing unit after `{digits}` ({DURATION_HINT}, e.g. `{digits}s`)"),
        Some('.' | ',') => "fractions are not supported (write `1500ms` for 1.5s)".into(),
        Some(c) => format!("unexpected character `{c}` after `{digits}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1;
    const SEC: u64 = 1_000;
    const MIN: u64 = 60 * SEC;
    const HOUR: u64 = 60 * MIN;

    #[test]
    fn sizes() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("1", 1),
            ("4096", 4096),
            ("7b", 7),
            ("7B", 7),
            ("100k", 100 << 10),
            ("100K", 100 << 10),
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("64mb", 64 << 20),
            ("64MB", 64 << 20),
            ("64MiB", 64 << 20),
            ("64mib", 64 << 20),
            ("1g", 1 << 30),
            ("1gb", 1 << 30),
            ("2T", 2 << 40),
            ("1p", 1 << 50),
            ("007k", 7 << 10),
        ];
        for &(input, want) in ok {
            assert_eq!(parse_size(input), Ok(want), "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "invalid size ``: expected a number of bytes (use k, m, g, t, p, e.g. `64m`)"),
            ("m", "invalid size `m`: expected a number of bytes, found `m` (use k, m, g, t, p, e.g. `64m`)"),
            ("-1m", "invalid size `-1m`: negative sizes are not allowed"),
            ("+1m", "invalid size `+1m`: expected a number of bytes, found `+` (use k, m, g, t, p, e.g. `64m`)"),
            (" 64m", "invalid size ` 64m`: expected a number of bytes, found ` ` (use k, m, g, t, p, e.g. `64m`)"),
            ("64m ", "invalid size `64m `: unknown unit `m ` (use k, m, g, t, p, e.g. `64m`)"),
            ("2 m", "invalid size `2 m`: unknown unit ` m` (use k, m, g, t, p, e.g. `64m`)"),
            ("1.5g", "invalid size `1.5g`: fractions are not supported (write `1536m` for 1.5g)"),
            ("12q", "invalid size `12q`: unknown unit `q` (use k, m, g, t, p, e.g. `64m`)"),
            ("10mm", "invalid size `10mm`: unknown unit `mm` (use k, m, g, t, p, e.g. `64m`)"),
            ("1ib", "invalid size `1ib`: unknown unit `ib` (use k, m, g, t, p, e.g. `64m`)"),
            ("99999999999999999999", "invalid size `99999999999999999999`: too large"),
            ("16384p", "invalid size `16384p`: too large"),
        ];
        for &(input, want) in bad {
            let err = parse_size(input).expect_err(input);
            assert_eq!(err.to_string(), want, "{input}");
        }
    }

    #[test]
    fn parses_valid_durations() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("0ms", 0),
            ("0s", 0),
            ("10", 10 * SEC),
            ("007", 7 * SEC),
            ("1ms", MS),
            ("100ms", 100 * MS),
            ("10s", 10 * SEC),
            ("1m", MIN),
            ("1h", HOUR),
            ("1m30s", MIN + 30 * SEC),
            ("1h2m3s4ms", HOUR + 2 * MIN + 3 * SEC + 4),
            ("1h500ms", HOUR + 500),
            ("90s", 90 * SEC),
            ("1500ms", 1500),
            ("48h", 48 * HOUR),
        ];
        for &(input, ms) in cases {
            assert_eq!(
                parse_duration(input),
                Ok(Duration::from_millis(ms)),
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_bad_durations_naming_the_input() {
        let cases: &[(&str, &str)] = &[
            ("10x", "invalid duration `10x`: unknown unit `x` (use ms, s, m, h)"),
            ("", "invalid duration ``: empty (write e.g. `100ms`, `10s`, `1m30s`)"),
            ("-1s", "invalid duration `-1s`: negative durations are not allowed"),
            ("-1", "invalid duration `-1`: negative durations are not allowed"),
            ("1.5s", "invalid duration `1.5s`: fractions are not supported (write `1500ms` for 1.5s)"),
            ("1.5", "invalid duration `1.5`: fractions are not supported (write `1500ms` for 1.5s)"),
            ("s", "invalid duration `s`: expected a number, found `s`"),
            ("+1s", "invalid duration `+1s`: expected a number, found `+`"),
            (" 1s", "invalid duration ` 1s`: expected a number, found ` `"),
            ("1s ", "invalid duration `1s `: expected a number, found ` `"),
            ("1 s", "invalid duration `1 s`: unexpected character ` ` after `1`"),
            ("10S", "invalid duration `10S`: unknown unit `S` (use ms, s, m, h)"),
            ("10us", "invalid duration `10us`: unknown unit `us` (use ms, s, m, h)"),
            ("1d", "invalid duration `1d`: unknown unit `d` (use ms, s, m, h)"),
            ("10sec", "invalid duration `10sec`: unknown unit `sec` (use ms, s, m, h)"),
            ("30s1m", "invalid duration `30s1m`: unit `m` after `s` (write each unit once, largest first, e.g. `1m30s`)"),
            ("1s1s", "invalid duration `1s1s`: unit `s` after `s` (write each unit once, largest first, e.g. `1m30s`)"),
            ("1m1", "invalid duration `1m1`: missing unit after `1` (use ms, s, m, h, e.g. `1s`)"),
            ("99999999999999999999ms", "invalid duration `99999999999999999999ms`: too large"),
            ("9999999999999999h", "invalid duration `9999999999999999h`: too large"),
            ("99999999999999999", "invalid duration `99999999999999999`: too large"),
            ("1µs", "invalid duration `1µs`: unexpected character `µ` after `1`"),
        ];
        for &(input, want) in cases {
            let err = parse_duration(input).expect_err(input);
            assert_eq!(err.to_string(), want, "{input}");
        }
    }

    #[test]
    fn formats_canonically() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ms"),
            (100, "100ms"),
            (1_500, "1s500ms"),
            (10 * SEC, "10s"),
            (90 * SEC, "1m30s"),
            (MIN, "1m"),
            (HOUR, "1h"),
            (25 * HOUR + 1, "25h1ms"),
            (HOUR + 2 * MIN + 3 * SEC + 4, "1h2m3s4ms"),
        ];
        for &(ms, want) in cases {
            assert_eq!(format_duration(Duration::from_millis(ms)), want);
        }
        assert_eq!(format_duration(Duration::from_nanos(999_999)), "0s");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1ms");
    }

    #[test]
    fn format_round_trips_through_parse() {
        for ms in [
            0,
            1,
            999,
            1_000,
            59_999,
            60_000,
            3_599_999,
            3_600_000,
            90_061_001,
            u64::MAX,
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms} ms");
        }
    }
}
