//! `harun features` tells the truth: what it lists, `create` accepts, and what `create`
//! accepts, it lists (containerd's CRI reads the document to decide what to send).

use std::fs;

use harun_integration::{harun, Bundle, Harun};
use serde_json::{json, Value};

fn features(h: &Harun) -> Value {
    h.exec(&["features"]).ok().json()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// Every option name runc 1.1.5's `features` lists (the runtime-spec features.md example),
/// plus the ones crun knows: the names a client may send.
const CLIENT_OPTIONS: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
    "notmpcopyup",
    "idmap",
    "ridmap",
    "copy-symlink",
];

/// A mount that can carry `opt`: a tmpfs for the tmpfs-only options, else a bind of `src`
/// (a bind drops unknown filesystem data, so an unlisted name it accepts would show).
fn mount_with(b: &mut Bundle, dest: &str, src: &str, opt: &str) {
    if opt.ends_with("tmpcopyup") {
        b.mount(dest, "tmpfs", "tmpfs", &[opt]);
    } else {
        b.mount(dest, "bind", src, &["rbind", opt]);
    }
}

#[test]
fn every_listed_mount_option_is_accepted_and_every_accepted_one_listed() {
    let h = harun!();
    let listed = strings(&features(&h)["mountOptions"]);
    for opt in &listed {
        assert!(
            CLIENT_OPTIONS.contains(&opt.as_str()),
            "unknown name `{opt}` listed"
        );
    }
    let src = h.path("src");
    fs::create_dir(&src).unwrap();
    let src = src.to_string_lossy().into_owned();
    // Every listed option, each on a mount of its own, in one container.
    let mut b = h.bundle();
    for (i, opt) in listed.iter().enumerate() {
        mount_with(&mut b, &format!("/opt{i}"), &src, opt);
    }
    b.args(&["true"]);
    h.run_ok(&b);
    // Every other name a client may send: refused, naming the option.
    for opt in CLIENT_OPTIONS
        .iter()
        .filter(|o| !listed.iter().any(|l| l == *o))
    {
        let mut b = h.bundle();
        mount_with(&mut b, "/x", &src, opt);
        let id = h.id("opt");
        h.create(&id, &b).error(&["mounts[", opt, "not supported"]);
    }
    h.assert_clean();
}

#[test]
fn the_namespace_list_is_what_create_takes() {
    let h = harun!();
    let listed = strings(&features(&h)["linux"]["namespaces"]);
    assert_eq!(
        listed,
        ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
    );
    for ns in &listed {
        let mut b = h.bundle();
        b.namespace(ns).args(&["true"]);
        if ns == "user" {
            let map = json!([{"containerID": 0, "hostID": 100_000, "size": 65536}]);
            b.set("/linux/uidMappings", map.clone())
                .set("/linux/gidMappings", map);
        }
        let id = h.id(ns);
        h.run(&id, &b).ok();
    }
    let mut b = h.bundle();
    b.push("/linux/namespaces", json!({"type": "bogus"}));
    h.create(&h.id("bogus"), &b)
        .error(&["linux.namespaces", "bogus"]);
    h.assert_clean();
}

/// The rest of the document: hooks, cgroup v2 only, seccomp from the converter, idmap as
/// unsupported (mounts[].uidMappings is refused), no property newer than ociVersionMax.
#[test]
fn the_rest_of_the_document_matches_create() {
    let h = harun!();
    let f = features(&h);
    assert_eq!(f["ociVersionMax"], "1.2.0");
    assert_eq!(
        strings(&f["hooks"]),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let linux = &f["linux"];
    assert_eq!(linux["cgroup"]["v2"], true);
    assert_eq!(linux["cgroup"]["v1"], false);
    assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], false);
    assert!(linux.get("netDevices").is_none() && linux.get("memoryPolicy").is_none());
    assert!(!strings(&linux["seccomp"]["actions"]).contains(&"SCMP_ACT_NOTIFY".into()));

    let mut b = h.bundle();
    b.push(
        "/mounts",
        json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs",
               "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
               "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
    );
    h.create(&h.id("idmap"), &b)
        .error(&["mounts[", "uidMappings", "not supported"]);
    let mut b = h.bundle();
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    h.create(&h.id("notify"), &b)
        .error(&["SCMP_ACT_NOTIFY", "not supported"]);
    h.assert_clean();
}
