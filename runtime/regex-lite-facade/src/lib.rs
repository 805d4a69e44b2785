//! regex-lite under regex's name; see this crate's Cargo.toml for why.

pub use regex_lite::{Captures, Error, Regex, RegexBuilder};

#[cfg(test)]
mod tests {
    use super::Regex;

    /// oci-spec's only pattern, with its answers under the full regex crate.
    #[test]
    fn exec_cpu_affinity_pattern() {
        let re = Regex::new(r"^(\d+(-\d+)?)(,\d+(-\d+)?)*$").unwrap();
        for ok in ["0", "0-3", "1,3", "0-1,4-7,9", "12"] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in ["", "a", "1-", "-1", "1,,2", "1 ,2", "1-2-3", "1,", "٣"] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }
}
