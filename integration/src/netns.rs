//! Named network namespaces (`ip netns add`) for tests that join one by path, made inside
//! a private mount namespace with a tmpfs over /run: `ip netns add` bind-mounts /run/netns
//! and the namespace file, and neither the host's mount table nor its /run may change. The namespace lives as long as
//! the wrapped command (harun) runs, and vanishes with its mount namespace.

/// A wrapper for `Cmd::wrap`: in a new private mount namespace, `ip netns add NAME`, run
/// `ip -n NAME ARGS` for every entry of `setup`, print `netns-inode=<inode of
/// /var/run/netns/NAME>` on stdout, then exec the wrapped command (harun and its args).
pub fn private_netns_wrapper(name: &str, setup: &[&[&str]]) -> Vec<String> {
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "netns name {name:?}"
    );
    // A tmpfs over /run (in the private namespace only): `ip netns add` creates
    // /run/netns/NAME, which must not land on the host's filesystem.
    let mut script =
        format!("set -e; mount -t tmpfs -o mode=755 harun-netns /run; ip netns add {name}; ");
    for args in setup {
        script.push_str(&format!("ip -n {name} {}; ", shell_words(args)));
    }
    script.push_str(&format!(
        "echo netns-inode=$(stat -L -c %i /var/run/netns/{name}); exec \"$0\" \"$@\""
    ));
    [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `/var/run/netns/NAME`, the path to put in `linux.namespaces[].path`.
pub fn path(name: &str) -> String {
    format!("/var/run/netns/{name}")
}

fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrapper_script() {
        let w = super::private_netns_wrapper("t1", &[&["link", "set", "lo", "up"]]);
        assert_eq!(
            &w[..6],
            ["unshare", "-m", "--propagation", "private", "sh", "-c"]
        );
        assert!(w[6].contains("/run; ip netns add t1; ip -n t1 'link' 'set' 'lo' 'up'; "));
        assert!(w[6].ends_with("exec \"$0\" \"$@\""));
    }
}
