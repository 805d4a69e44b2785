//! Typed JSON parsing whose errors name the field: `linux.namespaces[1].type`.
//!
//! serde_json reports where in the text a value failed to deserialize (line and column);
//! [`path_at`] walks the text once more and names the innermost value at that position.
//! This replaces a path-tracking deserializer wrapper, which compiled a second copy of every
//! `Deserialize` impl of the spec into the binary (~0.3 MiB) and slowed every parse.

use serde::de::DeserializeOwned;
use serde_json::error::Category;

/// Parse `text` as a `T`; on error, the JSON path of the bad value (`(JSON syntax)` when the
/// text is not JSON at all) and serde_json's reason, which ends with the line and column.
pub fn parse<T: DeserializeOwned>(text: &[u8]) -> std::result::Result<T, (String, String)> {
    serde_json::from_slice(text).map_err(|e| {
        let field = match e.classify() {
            Category::Data => path_at(text, e.line(), e.column()),
            Category::Io | Category::Syntax | Category::Eof => None,
        };
        let field = match field {
            Some(p) if !p.is_empty() => p,
            Some(_) => "(top level)".to_string(),
            None => "(JSON syntax)".to_string(),
        };
        (field, e.to_string())
    })
}

/// The path (`a.b[2].c`) of the innermost value of the JSON `text` that contains the given
/// given serde_json error position (see [`offset_of`]). `None` if the text is not well-formed up to that point.
pub fn path_at(text: &[u8], line: usize, column: usize) -> Option<String> {
    let target = offset_of(text, line, column)?;
    let mut scan = Scanner {
        text,
        pos: 0,
        target,
        path: Vec::new(),
        found: None,
        stop: false,
    };
    match scan.value() {
        Some(()) => Some(String::new()), // the position lies after the whole document
        None => scan.found,
    }
}

/// Byte offset of serde_json's line (one-based) and column. serde_json's column counts the
/// bytes of the line it consumed: it is the 0-based offset of the next byte, i.e. one past
/// the bad value, or the bad value's first byte when it was only peeked at (a sequence or
/// map of the wrong type).
fn offset_of(text: &[u8], line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += text.get(start..)?.iter().position(|&b| b == b'\n')? + 1;
    }
    Some(start + column)
}

enum Segment {
    Key(String),
    Index(usize),
}

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
    target: usize,
    path: Vec<Segment>,
    /// The path of the innermost value holding the target, once known.
    found: Option<String>,
    /// Set once the scan reached the target: every caller unwinds with `None`.
    stop: bool,
}

impl Scanner<'_> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.text.get(self.pos) {
            if !b.is_ascii_whitespace() {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.pos += 1)
    }

    /// One value at `pos` and its children. `Some` when it ended before the target; `None`
    /// when the scan stops (target reached: `found` is set) or the text is malformed.
    fn value(&mut self) -> Option<()> {
        self.peek()?;
        if self.pos > self.target {
            // The target lay in the gap before this value: the enclosing value holds it.
            self.stop = true;
            return None;
        }
        let scanned = match self.text[self.pos] {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(drop),
            _ => self.scalar(),
        };
        if self.stop {
            if self.found.is_none() {
                self.found = Some(self.render());
            }
            return None;
        }
        scanned?;
        // The value spans [start, pos]: its first byte up to one past its last.
        if self.pos >= self.target {
            self.found = Some(self.render());
            self.stop = true;
            return None;
        }
        Some(())
    }

    /// A member's value, with its key or index on the path while it is scanned.
    fn member(&mut self, segment: Segment) -> Option<()> {
        self.path.push(segment);
        let r = self.value();
        self.path.pop();
        r
    }

    fn object(&mut self) -> Option<()> {
        self.pos += 1; // '{'
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.peek()?;
            let key = self.string()?;
            self.eat(b':')?;
            self.member(Segment::Key(key))?;
            if self.after_member(b'}')? {
                return Some(());
            }
        }
    }

    fn array(&mut self) -> Option<()> {
        self.pos += 1; // '['
        if self.eat(b']').is_some() {
            return Some(());
        }
        for index in 0.. {
            self.member(Segment::Index(index))?;
            if self.after_member(b']')? {
                return Some(());
            }
        }
        None
    }

    /// After a member: `,` (more follow: false) or `close` (the container ends: true).
    fn after_member(&mut self, close: u8) -> Option<bool> {
        let b = self.peek()?;
        self.pos += 1;
        match b {
            b',' => Some(false),
            _ if b == close => Some(true),
            _ => None,
        }
    }

    /// A string at `pos` (which is `"`), unescaped enough to serve as a key.
    fn string(&mut self) -> Option<String> {
        if self.text.get(self.pos) != Some(&b'"') {
            return None;
        }
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            let b = *self.text.get(self.pos)?;
            self.pos += 1;
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => break,
                _ => {}
            }
        }
        let raw = &self.text[start..self.pos - 1];
        Some(String::from_utf8_lossy(raw).into_owned())
    }

    fn scalar(&mut self) -> Option<()> {
        let start = self.pos;
        while let Some(&b) = self.text.get(self.pos) {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.') {
                self.pos += 1;
            } else {
                break;
            }
        }
        (self.pos > start).then_some(())
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Process, Spec};

    fn field_of<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        parse::<T>(text.as_bytes()).unwrap_err().0
    }

    #[test]
    fn names_the_bad_field_of_a_spec() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#,
                "linux.namespaces[1].type",
            ),
            (
                r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},
                "capabilities":{"bounding":["CAP_NOPE"]}}}"#,
                "process.capabilities.bounding", // checked after the whole list
            ),
            (
                r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":"x","gid":0}}}"#,
                "process.user.uid",
            ),
            (
                "{\n  \"ociVersion\": \"1.0.2\",\n  \"linux\": {\n    \"resources\": {\n      \"memory\": {\"limit\": \"lots\"}\n    }\n  }\n}",
                "linux.resources.memory.limit",
            ),
            (
                r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/a"},{"destination":7}]}"#,
                "mounts[1].destination",
            ),
            // A missing field is reported at the end of the object that lacks it.
            (
                r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"path":"/x"}]}}"#,
                "linux.namespaces[1]",
            ),
            (r#"{"ociVersion": "1.0.2", "#, "(JSON syntax)"),
            (r#"[1]"#, "[0]"),
            (r#""spec""#, "(top level)"),
        ];
        for (text, want) in cases {
            let got = field_of::<Spec>(text);
            assert_eq!(&got, want, "{text}");
        }
    }

    #[test]
    fn names_the_bad_field_of_a_process() {
        let text = r#"{"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["sh", 5]}"#;
        assert_eq!(field_of::<Process>(text), "args[1]");
    }

    #[test]
    fn the_reason_keeps_serde_json_words_and_position() {
        let (_, reason) = parse::<Spec>(br#"{"ociVersion":"1.0.2","hostname":false}"#).unwrap_err();
        assert!(reason.contains("invalid type: boolean"), "{reason}");
        assert!(reason.contains("line 1 column"), "{reason}");
    }

    #[test]
    fn keys_with_escapes_and_strings_with_brackets() {
        let text = r#"{"ociVersion":"1.0.2","annotations":{"a\"]":"x{["},"hostname":[]}"#;
        assert_eq!(field_of::<Spec>(text), "hostname");
    }

    #[test]
    fn path_at_never_panics_on_odd_positions() {
        let text = br#"{"a": [1, {"b": "c"}]}"#;
        for line in 0..4 {
            for column in 0..40 {
                let _ = path_at(text, line, column);
            }
        }
        assert_eq!(path_at(text, 1, 19).as_deref(), Some("a[1].b"));
        assert_eq!(path_at(text, 1, 10).as_deref(), Some("a[1]"));
        assert_eq!(path_at(b"", 1, 1), None);
    }
}
