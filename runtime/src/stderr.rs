//! Diagnostics on stderr, best effort. `eprintln!` panics when stderr is a broken pipe
//! (`harun ... 2>&1 | head -1`), and with panic=abort that would end harun — or a supervisor,
//! or a container's init — in the middle of its work. A message nobody can read is dropped.
//!
//! A diagnostic is one line whatever it quotes: a container ID, a path, an env entry or a
//! hook's output with a newline in it would split it, and callers (containerd, conmon, a
//! test) read the last line, or the first, as the error. Control characters are escaped.

use std::borrow::Cow;
use std::io::Write;

/// Write `line` and a newline to stderr, its control characters escaped (see
/// [`escape_controls`]); errors are ignored.
pub fn line(line: &str) {
    let line = escape_controls(line);
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(line.as_bytes())
        .and_then(|()| err.write_all(b"\n"));
}

/// `text` with every control character (C0, DEL, C1) written as Rust writes it in a string
/// literal: `\n`, `\t`, `\u{1b}`. Everything else, non-ASCII letters included, is kept.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_nothing_else() {
        let cases = [
            ("plain `id` é ü 日本", "plain `id` é ü 日本"),
            ("a\nb", "a\\nb"),
            ("a\tb\r", "a\\tb\\r"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("nul\0", "nul\\0"),
            ("del\u{7f} c1\u{85}", "del\\u{7f} c1\\u{85}"),
            ("quote \" and \\ stay", "quote \" and \\ stay"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_controls(input), want, "{input:?}");
        }
        assert!(matches!(escape_controls("x"), Cow::Borrowed(_)));
    }
}
