//! Diagnostics on stderr, best effort. `eprintln!` panics when stderr is a broken pipe
//! (`harun ... 2>&1 | head -1`), and with panic=abort that would end harun — or a supervisor,
//! or a container's init — in the middle of its work. A message nobody can read is dropped.

use std::io::Write;

/// Write `line` and a newline to stderr; errors are ignored.
pub fn line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(line.as_bytes())
        .and_then(|()| err.write_all(b"\n"));
}
