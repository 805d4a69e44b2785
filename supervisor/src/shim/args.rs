//! The command line containerd gives a shim, in Go's `flag` syntax:
//! `SHIM -namespace NS -address SOCK -publish-binary BIN -id ID [-debug] [-bundle DIR] ACTION`
//! (`-name value`, `-name=value`, `--name value`; the action is the first non-flag word).

use std::path::PathBuf;

/// What containerd asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags {
    pub namespace: String,
    pub id: String,
    /// containerd's gRPC socket (only used to name the shim's socket).
    pub address: String,
    pub publish_binary: String,
    pub bundle: Option<PathBuf>,
    pub socket: Option<String>,
    pub debug: bool,
    pub version: bool,
    /// `start`, `delete`, or empty: serve.
    pub action: String,
}

/// Parse `args` (without argv[0]).
pub fn parse(args: &[String]) -> Result<Flags, String> {
    let mut f = Flags::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            if f.action.is_empty() {
                f.action = arg.clone();
                continue;
            }
            return Err(format!("unexpected argument `{arg}`"));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if let Some(b) = bool_flag(&mut f, name) {
            *b = match inline.as_deref() {
                None | Some("true" | "1") => true,
                Some("false" | "0") => false,
                Some(v) => return Err(format!("-{name}: not a boolean: `{v}`")),
            };
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("-{name} needs a value"))?,
        };
        match name {
            "namespace" => f.namespace = value,
            "id" => f.id = value,
            "address" => f.address = value,
            "publish-binary" => f.publish_binary = value,
            "bundle" => f.bundle = Some(PathBuf::from(value)),
            "socket" => f.socket = Some(value),
            _ => return Err(format!("unknown flag `{arg}`")),
        }
    }
    Ok(f)
}

fn bool_flag<'a>(f: &'a mut Flags, name: &str) -> Option<&'a mut bool> {
    match name {
        "debug" => Some(&mut f.debug),
        "v" => Some(&mut f.version),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn containerds_start_and_delete_lines() {
        let f = parse(&args(
            "-namespace hc -address /run/c.sock -publish-binary /usr/bin/containerd -id x1 -debug start",
        ))
        .unwrap();
        assert_eq!(
            (
                f.namespace.as_str(),
                f.id.as_str(),
                f.debug,
                f.action.as_str()
            ),
            ("hc", "x1", true, "start")
        );
        assert_eq!(f.address, "/run/c.sock");
        let f = parse(&args("-namespace=k8s.io --id x2 -bundle /b delete")).unwrap();
        assert_eq!(f.bundle.as_deref(), Some(std::path::Path::new("/b")));
        assert_eq!(
            (f.namespace.as_str(), f.action.as_str()),
            ("k8s.io", "delete")
        );
        assert!(!parse(&args("-v")).unwrap().debug);
        assert!(parse(&args("-v")).unwrap().version);
        assert!(parse(&args("-id")).is_err());
        assert!(parse(&args("-nope 1")).is_err());
        assert!(parse(&args("start delete")).is_err());
        assert!(parse(&args("-debug=maybe")).is_err());
    }
}
