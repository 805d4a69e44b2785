//! Typed JSON parsing whose errors name the field: `linux.namespaces[1].type`.
//!
//! serde_json reports where in the text a value failed to deserialize (line and column);
//! [`path_at`] walks the text once more and names the innermost value at that position.
//! This replaces a path-tracking deserializer wrapper, which compiled a second copy of every
//! `Deserialize` impl of the spec into the binary (~0.3 MiB) and slowed every parse.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::error::Category;
use serde_json::Value;

/// Parse `text` as a `T`, a struct (a JSON object); on error, the JSON path of the bad value
/// (`(JSON syntax)` when the text is not JSON at all) and serde_json's reason, which ends
/// with the line and column.
///
/// serde's derived structs also take a JSON array, its items as the fields in order: `[]`
/// would be a config with every field defaulted, `"linux": []` a container without
/// namespaces. Go's encoding/json (runc) refuses both, and no client sends them, so an array
/// (or any non-object) where `T` has an object is an error too (see [`objects_stay_objects`]).
pub fn parse<T: DeserializeOwned + Serialize>(
    text: &[u8],
) -> std::result::Result<T, (String, String)> {
    // An array at the top: said so before its items are taken for fields ("[0]: invalid
    // type: string, expected a boolean" would name the wrong cause).
    if text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err((
            or_top_level(Some(String::new())),
            "expected a JSON object, found an array".to_string(),
        ));
    }
    let value: T = serde_json::from_slice(text).map_err(|e| {
        let field = match e.classify() {
            Category::Data => path_at(text, e.line(), e.column()),
            Category::Io | Category::Syntax | Category::Eof => None,
        };
        (or_top_level(field), struct_as_array(e.to_string()))
    })?;
    // The typed parse skipped unknown fields at any depth; as plain JSON, the text is held
    // to serde_json's 128 levels (runc's Go stops at 10,000): a config nested deeper than
    // any spec field is refused rather than let past the check below.
    let input = serde_json::from_slice::<Value>(text).map_err(|e| {
        let field = (e.classify() == Category::Data).then(|| path_at(text, e.line(), e.column()));
        (or_top_level(field.flatten()), e.to_string())
    })?;
    // Through bytes, not `to_value`: the spec's serializer for a byte writer is in the binary
    // anyway (state.json); one for `Value` would be another ~30 KB of it.
    let typed = serde_json::to_vec(&value).and_then(|b| serde_json::from_slice::<Value>(&b));
    if let Ok(typed) = typed {
        let mut path = Vec::new();
        if let Err(found) = objects_stay_objects(&typed, &input, &mut path) {
            return Err((
                or_top_level(Some(render(&path))),
                format!("expected a JSON object, found {found}"),
            ));
        }
    }
    Ok(value)
}

/// serde's derived `visit_seq` for a struct fails on an array too short for its fields with
/// "invalid length 1, expected struct Process with 16 elements": the array is what is wrong.
fn struct_as_array(reason: String) -> String {
    match reason.split_once(", expected struct ") {
        Some((head, tail)) if head.starts_with("invalid length ") => {
            let at = tail.find(" at line ").map_or("", |i| &tail[i..]);
            format!("expected a JSON object, found an array{at}")
        }
        _ => reason,
    }
}

fn or_top_level(field: Option<String>) -> String {
    match field {
        Some(p) if !p.is_empty() => p,
        Some(_) => "(top level)".to_string(),
        None => "(JSON syntax)".to_string(),
    }
}

/// Wherever `typed` (what was parsed, serialized again) has an object, `input` (the text as
/// plain JSON) must have one too; `Err` names what it had, `path` says where. Only the
/// members present in both are compared, so defaulted and skipped fields do not matter.
/// The depth is the typed value's, which serde_json capped at 128 while parsing.
fn objects_stay_objects(
    typed: &Value,
    input: &Value,
    path: &mut Vec<Segment>,
) -> std::result::Result<(), &'static str> {
    match (typed, input) {
        (Value::Object(t), Value::Object(i)) => {
            for (key, t) in t {
                if let Some(i) = i.get(key) {
                    path.push(Segment::Key(key.clone()));
                    objects_stay_objects(t, i, path)?;
                    path.pop();
                }
            }
            Ok(())
        }
        (Value::Object(_), other) => Err(match other {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
            Value::Object(_) => unreachable!("matched above"),
        }),
        // A list keeps its order (a set of strings may not, but holds no objects).
        (Value::Array(t), Value::Array(i)) if t.len() == i.len() => {
            for (index, (t, i)) in t.iter().zip(i).enumerate() {
                path.push(Segment::Index(index));
                objects_stay_objects(t, i, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The path (`a.b[2].c`) of the innermost value of the JSON `text` that holds the given
/// serde_json error position (see [`offset_of`]). `None` if the text is not well-formed up to
/// that point.
///
/// The scan is a loop over an explicit stack, not a recursion: its memory grows with the
/// nesting depth (a few bytes a level), the thread's stack does not. serde_json stops typed
/// values at 128 levels, but skips an unknown field's value at any depth, so a Data error
/// can come after 200,000 levels of `[` that this scan must walk through.
pub fn path_at(text: &[u8], line: usize, column: usize) -> Option<String> {
    let target = offset_of(text, line, column)?;
    Scanner {
        text,
        pos: 0,
        target,
    }
    .find()
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

/// An object or array being scanned: the byte that closes it and its current member's index.
struct Open {
    close: u8,
    index: usize,
}

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
    target: usize,
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

    /// Scan values in text order. The answer is the first value to end at or after the
    /// target (a value spans its first byte up to one past its last), or, when the target
    /// lies in the gap before a value, the container holding that gap. `open` has an entry
    /// per container around the value being scanned, `path` the segment of each one's
    /// current member.
    fn find(&mut self) -> Option<String> {
        let mut open: Vec<Open> = Vec::new();
        let mut path: Vec<Segment> = Vec::new();
        'value: loop {
            // A value starts here: the document, or the current member of `open.last()`.
            self.peek()?;
            if self.pos > self.target {
                open.pop()?; // before the document itself: no answer
                path.pop();
                return Some(render(&path));
            }
            match self.text[self.pos] {
                open_byte @ (b'{' | b'[') => {
                    let close = if open_byte == b'{' { b'}' } else { b']' };
                    self.pos += 1;
                    if self.eat(close).is_none() {
                        open.push(Open { close, index: 0 });
                        path.push(self.member_segment(open_byte, 0)?);
                        continue 'value;
                    }
                }
                b'"' => drop(self.string()?),
                _ => self.scalar()?,
            }
            // The value just scanned is complete; so may be the containers that it closes.
            loop {
                if self.pos >= self.target {
                    return Some(render(&path));
                }
                let Some(parent) = open.last_mut() else {
                    return Some(String::new()); // the whole document lies before the target
                };
                path.pop();
                let b = self.peek()?;
                self.pos += 1;
                if b == parent.close {
                    open.pop();
                } else if b == b',' {
                    parent.index += 1;
                    let (kind, index) =
                        (if parent.close == b'}' { b'{' } else { b'[' }, parent.index);
                    path.push(self.member_segment(kind, index)?);
                    continue 'value;
                } else {
                    return None;
                }
            }
        }
    }

    /// The next member's segment: an array's index, or an object's key (scanned with its `:`).
    fn member_segment(&mut self, kind: u8, index: usize) -> Option<Segment> {
        if kind == b'[' {
            return Some(Segment::Index(index));
        }
        self.peek()?;
        let key = self.string()?;
        self.eat(b':')?;
        Some(Segment::Key(key))
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
}

fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for seg in path {
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

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Process, Spec};

    fn field_of<T: DeserializeOwned + Serialize + std::fmt::Debug>(text: &str) -> String {
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
            (r#"[1]"#, "(top level)"),
            (r#""spec""#, "(top level)"),
        ];
        for (text, want) in cases {
            let got = field_of::<Spec>(text);
            assert_eq!(&got, want, "{text}");
        }
    }

    /// serde reads an array as a struct's fields in order; harun refuses it as runc does.
    #[test]
    fn an_array_where_an_object_belongs_is_refused() {
        let cases: &[(&str, &str, &str)] = &[
            ("[]", "(top level)", "found an array"),
            (r#"["1.0.2"]"#, "(top level)", "found an array"),
            (
                r#"{"ociVersion":"1.0.2","linux":[]}"#,
                "linux",
                "found an array",
            ),
            (
                r#"{"ociVersion":"1.0.2","root":["rootfs",true]}"#,
                "root",
                "found an array",
            ),
            (
                r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":[0,0]}}"#,
                "process.user",
                "found an array",
            ),
            (
                r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/a"},["/proc","proc"]]}"#,
                "mounts[1]",
                "found an array",
            ),
            (
                r#"{"ociVersion":"1.0.2","linux":{"namespaces":[["pid"]]}}"#,
                "linux.namespaces[0]",
                "found an array",
            ),
        ];
        for (text, field, reason) in cases {
            let (got_field, got_reason) = parse::<Spec>(text.as_bytes()).unwrap_err();
            assert_eq!(
                (got_field.as_str(), got_reason.contains(reason)),
                (*field, true),
                "{text}: {got_reason}"
            );
        }
        let (field, _) = parse::<Process>(br#"["sh"]"#).unwrap_err();
        assert_eq!(field, "(top level)");
        // Too short for the struct's fields: serde's "invalid length", said as it is.
        let text = r#"{"ociVersion":"1.0.2","process":[false]}"#;
        let (field, reason) = parse::<Spec>(text.as_bytes()).unwrap_err();
        assert_eq!(field, "process");
        assert!(
            reason.starts_with("expected a JSON object, found an array at line 1"),
            "{reason}"
        );
        // Objects everywhere: parsed as before.
        let ok = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{},"mounts":[]}"#;
        parse::<Spec>(ok.as_bytes()).unwrap();
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

    /// 200,000 levels (400 KB) inside a field serde_json skips (unknown): it skips them
    /// without recursing, and the scan for the bad field after them must not recurse either
    /// (it overflowed the stack and aborted harun).
    #[test]
    fn deep_nesting_is_walked_without_recursion() {
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        let text = format!(r#"{{"ociVersion":"1.0.2","x":{deep},"hostname":5}}"#);
        assert_eq!(field_of::<Spec>(&text), "hostname");
        let text = format!(r#"{{"ociVersion":"1.0.2","x":{{"y":{deep}}},"hostname":5}}"#);
        assert_eq!(field_of::<Spec>(&text), "hostname");
        // A position inside the nesting: the path is long, and that is all.
        let inside = path_at(deep.as_bytes(), 1, 150_000).unwrap();
        assert_eq!(inside.len(), "[0]".len() * 150_000);
        // Unclosed: malformed, no answer.
        assert_eq!(path_at("[".repeat(200_000).as_bytes(), 1, 300_000), None);
    }

    /// Where a typed value holds the nesting, serde_json's own limit (128 levels) stops it:
    /// one error, no recursion. Cargo unifies features, so a crate of the workspace enabling
    /// serde_json's `unbounded_depth` would lift the limit for harun: this test says so.
    #[test]
    fn serde_json_keeps_its_recursion_limit() {
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        let e = serde_json::from_str::<serde_json::Value>(&deep).unwrap_err();
        assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
        let text = format!(r#"{{"ociVersion":"1.0.2","annotations":{{"a":{deep}}}}}"#);
        let (field, reason) = parse::<Spec>(text.as_bytes()).unwrap_err();
        assert_eq!(field, "annotations.a", "{reason}");
        // Deeper than 128 in a field the typed parse skips: refused too, so that nesting
        // cannot get a config past the object check (`linux: []` here).
        let nested = format!("{}{}", "[".repeat(129), "]".repeat(129));
        let text = format!(r#"{{"ociVersion":"1.0.2","linux":[],"x":{nested}}}"#);
        let (field, reason) = parse::<Spec>(text.as_bytes()).unwrap_err();
        assert_eq!(field, "(JSON syntax)");
        assert!(reason.contains("recursion limit exceeded"), "{reason}");
        let nested = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let text = format!(r#"{{"ociVersion":"1.0.2","x":{nested}}}"#);
        parse::<Spec>(text.as_bytes()).unwrap();
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
