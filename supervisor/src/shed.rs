//! Giving back the page-table entries of clean, read-only file mappings (the binary's and
//! the C library's code and constants) once the process has gone idle.
//!
//! A shim or a supervisor spends its life waiting. What it executed to get there (the whole
//! create path; in the shim the ttrpc and protobuf code too) stays mapped, and every page of it
//! counts in each process's RSS although it is page cache shared with every other harun
//! process: ~2 MiB of text per process. MADV_DONTNEED on a private file mapping that has no
//! private (written) page drops only those mappings: the pages stay in the page cache and
//! come back as minor faults if the code runs again. Mappings that hold a written page
//! (relocated constants, the RELRO region) or are writable are left alone.

/// Drop this process's clean, read-only file-backed mappings (see the module doc) and give
/// the allocator's free memory back.
pub fn clean_file_pages() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap memory to the kernel; thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
    let ranges = match std::fs::read_to_string("/proc/self/smaps") {
        Ok(text) => candidates(&text),
        Err(_) => return,
    };
    // All at once, after the parsing: the code that runs after the first call faults back
    // in whatever it touches.
    for (start, end) in ranges {
        // SAFETY: the range is a whole read-only, file-backed private mapping of this
        // process without a written page (`candidates`): dropping it only makes the next
        // access fault the same bytes back in from the file.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// The mappings of an smaps text that qualify.
fn candidates(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut candidate: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some(range) = mapping_range(line) {
            candidate = range;
        } else if let Some(v) = line.strip_prefix("Anonymous:") {
            if v.split_whitespace().next() != Some("0") {
                candidate = None;
            }
        } else if line.starts_with("VmFlags:") {
            out.extend(candidate.take());
        }
    }
    out
}

/// The header line of a mapping: Some(Some(range)) when it is a candidate (read-only,
/// private, backed by a file), Some(None) for another mapping, None for other lines.
fn mapping_range(line: &str) -> Option<Option<(usize, usize)>> {
    let mut f = line.split_whitespace();
    let range = f.next()?;
    let (a, b) = range.split_once('-')?;
    let (start, end) = (
        usize::from_str_radix(a, 16).ok()?,
        usize::from_str_radix(b, 16).ok()?,
    );
    let perms = f.next()?;
    if perms.len() != 4 {
        return None;
    }
    let path = f.nth(3).unwrap_or("");
    let ok = perms.starts_with('r')
        && perms.as_bytes()[1] == b'-'
        && perms.ends_with('p')
        && path.starts_with('/');
    Some(ok.then_some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_readonly_private_file_mappings_qualify() {
        let r = |l: &str| mapping_range(l);
        assert_eq!(
            r("55d0-55e0 r-xp 00001000 08:01 123 /usr/bin/harun"),
            Some(Some((0x55d0, 0x55e0)))
        );
        assert_eq!(
            r("55d0-55e0 rw-p 00001000 08:01 123 /usr/bin/harun"),
            Some(None)
        );
        assert_eq!(
            r("55d0-55e0 r--s 00001000 08:01 123 /dev/shm/x"),
            Some(None)
        );
        assert_eq!(r("7ff0-7ff1 r-xp 00000000 00:00 0 [vdso]"), Some(None));
        assert_eq!(r("7ff0-7ff1 rw-p 00000000 00:00 0"), Some(None));
        assert_eq!(r("Rss:                 4 kB"), None);
        let smaps = "1000-2000 r-xp 0 08:01 1 /bin/x\nAnonymous: 0 kB\nVmFlags: rd ex\n\
                     2000-3000 r--p 0 08:01 1 /bin/x\nAnonymous: 4 kB\nVmFlags: rd\n";
        assert_eq!(candidates(smaps), vec![(0x1000, 0x2000)]);
        // Runs on this test process without harm.
        clean_file_pages();
    }
}
