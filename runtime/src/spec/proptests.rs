//! Property tests of config loading: a config mutated at random, a config text damaged at
//! random, or bytes at random are parsed and validated without a panic; an error names a
//! field; what parses reads back the same after being written again (state.json holds the
//! config as harun writes it, and `start`/`exec` read it back).
//!
//! CI runs proptest's default 256 cases a property; by hand, more:
//! `PROPTEST_CASES=20000 cargo test -p harun-runtime proptests`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{parse, validate};
use crate::security::seccomp::Filter;

/// runc's default config with more of the spec filled in (seccomp, hooks, resources,
/// devices, sysctl, rlimits, ...), every part valid on any host: mutations then break one
/// thing in a config that otherwise gets through every check.
fn base() -> Value {
    let mut v: Value = serde_json::from_str(super::example_json()).unwrap();
    v["process"]["terminal"] = json!(false);
    v["process"]["user"] = json!({"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6]});
    v["process"]["oomScoreAdj"] = json!(100);
    v["process"]["rlimits"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "RLIMIT_CORE", "hard": 0, "soft": 0}));
    v["annotations"] = json!({"org.example/a": "1", "run.harun.restart": "on-failure:3"});
    v["hooks"] = json!({
        "createRuntime": [{"path": "/bin/true", "args": ["true"], "timeout": 5}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 0"], "env": ["A=1"]}],
    });
    let linux = v["linux"].as_object_mut().unwrap();
    linux.insert(
        "resources".into(),
        json!({
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
            "memory": {"limit": 268435456, "reservation": 134217728},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000},
            "pids": {"limit": 100},
        }),
    );
    linux.insert(
        "devices".into(),
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]),
    );
    linux.insert("sysctl".into(), json!({"kernel.shm_rmid_forced": "1"}));
    linux.insert("cgroupsPath".into(), json!("/harun-proptest/x"));
    linux.insert(
        "seccomp".into(),
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "syscalls": [
                {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            ],
        }),
    );
    v
}

/// A bundle directory with an empty rootfs, made once for the whole test binary.
fn bundle() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("harun-proptest-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        dir
    })
}

/// Values that break configs: wrong types, boundaries of every integer width, paths with
/// `..`, control characters, long strings, nested containers.
fn nasty() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(-1),
            json!(255),
            json!(1024),
            json!(65535),
            json!(2147483647),
            json!(2147483648u64),
            json!(4294967295u64),
            json!(4294967296u64),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
        ]),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "/",
            ".",
            "..",
            "../..",
            "/..",
            "rootfs",
            "/proc",
            "/proc/self/ns/net",
            "/dev/null",
            "a\nb",
            "a\0b",
            "KEY=VALUE",
            "=x",
            "CAP_SYS_ADMIN",
            "CAP_BOGUS",
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_NOTIFY",
            "pid",
            "user",
            "network",
            "bind",
            "rbind",
            "tmpfs",
            "proc",
            "ro",
            "rw",
            "nosuid",
            "size=-1",
            "mode=99999",
            "1.0.2",
            "2.0.0",
            "é",
            "\u{1b}[0m",
            "RLIMIT_NOFILE",
            "c",
            "b",
            "p",
            "u",
            "rwm",
            "bogus",
        ])
        .prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        (0usize..5000).prop_map(|n| Value::from("x".repeat(n))),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys of the spec's objects, so that mutations add fields harun reads, not only ones it
/// ignores.
const KEYS: &[&str] = &[
    "ociVersion",
    "process",
    "root",
    "hostname",
    "domainname",
    "mounts",
    "hooks",
    "annotations",
    "linux",
    "args",
    "env",
    "cwd",
    "user",
    "uid",
    "gid",
    "umask",
    "additionalGids",
    "capabilities",
    "bounding",
    "effective",
    "ambient",
    "rlimits",
    "noNewPrivileges",
    "oomScoreAdj",
    "terminal",
    "consoleSize",
    "path",
    "readonly",
    "destination",
    "source",
    "type",
    "options",
    "uidMappings",
    "gidMappings",
    "namespaces",
    "resources",
    "memory",
    "limit",
    "cpu",
    "pids",
    "devices",
    "seccomp",
    "defaultAction",
    "syscalls",
    "names",
    "action",
    "errnoRet",
    "index",
    "value",
    "op",
    "sysctl",
    "maskedPaths",
    "readonlyPaths",
    "rootfsPropagation",
    "cgroupsPath",
    "timeOffsets",
    "createRuntime",
    "prestart",
    "poststop",
    "timeout",
    "major",
    "minor",
    "fileMode",
    "allow",
    "access",
    "unified",
    "hugepageLimits",
    "blockIO",
    "weight",
    "flags",
];

#[derive(Debug, Clone)]
enum Edit {
    /// Replace the node chosen by the index (among all nodes, in document order).
    Set(prop::sample::Index, Value),
    Remove(prop::sample::Index),
    /// Add a key to the object chosen (or an item to the array chosen).
    Add(prop::sample::Index, prop::sample::Index, Value),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<prop::sample::Index>(), nasty()).prop_map(|(i, v)| Edit::Set(i, v)),
        any::<prop::sample::Index>().prop_map(Edit::Remove),
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            nasty()
        )
            .prop_map(|(i, k, v)| Edit::Add(i, k, v)),
    ];
    prop::collection::vec(edit, 1..5)
}

/// JSON pointers of every node but the root, in document order.
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, c)| (k.replace('~', "~0").replace('/', "~1"), c))
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect(),
        _ => return,
    };
    for (seg, child) in children {
        let p = format!("{at}/{seg}");
        out.push(p.clone());
        pointers(child, &p, out);
    }
}

fn apply(v: &mut Value, edit: &Edit) {
    let mut all = Vec::new();
    pointers(v, "", &mut all);
    let Some(first) = all.first() else { return };
    let pick = |i: &prop::sample::Index| all.get(i.index(all.len())).unwrap_or(first).clone();
    match edit {
        Edit::Set(i, value) => {
            if let Some(node) = v.pointer_mut(&pick(i)) {
                *node = value.clone();
            }
        }
        Edit::Remove(i) => {
            let p = pick(i);
            let (parent, last) = p.rsplit_once('/').unwrap();
            match v.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(a)) => {
                    if let Ok(n) = last.parse::<usize>() {
                        if n < a.len() {
                            a.remove(n);
                        }
                    }
                }
                _ => {}
            }
        }
        Edit::Add(i, k, value) => match v.pointer_mut(&pick(i)) {
            Some(Value::Object(m)) => {
                m.insert(KEYS[k.index(KEYS.len())].to_string(), value.clone());
            }
            Some(Value::Array(a)) => a.push(value.clone()),
            _ => {}
        },
    }
}

/// Parse and validate `text` as `create` does; every outcome is fine but a panic, an error
/// without a field, or a config that does not read back as it was.
fn load(text: &[u8]) -> Result<(), TestCaseError> {
    let spec = match parse(text) {
        Ok(spec) => spec,
        Err((field, reason)) => {
            prop_assert!(!field.is_empty() && !reason.is_empty());
            return Ok(());
        }
    };
    let again = serde_json::to_vec(&spec).unwrap();
    let back = parse(&again).map_err(|e| TestCaseError::fail(format!("{e:?} in {spec:?}")))?;
    prop_assert_eq!(&back, &spec);
    if let Err(e) = validate(&spec, bundle()) {
        prop_assert!(!e.to_string().is_empty());
    }
    Ok(())
}

#[test]
fn the_base_config_is_valid() {
    let text = serde_json::to_vec(&base()).unwrap();
    let spec = parse(&text).unwrap();
    let (_, _, seccomp) = validate(&spec, bundle()).unwrap();
    assert!(seccomp.is_some_and(|f: Filter| !f.is_empty()));
}

proptest! {
    /// A few edits (replace, remove, add a key) anywhere in a valid config.
    #[test]
    fn mutated_configs_load_or_fail_cleanly(edits in edits()) {
        let mut v = base();
        for e in &edits {
            apply(&mut v, e);
        }
        load(&serde_json::to_vec(&v).unwrap())?;
    }

    /// The text of a valid config with bytes changed, inserted or cut: mostly broken JSON,
    /// the field-path scanner's input.
    #[test]
    fn damaged_config_text_loads_or_fails_cleanly(
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)
    ) {
        let mut text = serde_json::to_vec_pretty(&base()).unwrap();
        for (at, byte, how) in damage {
            let i = at.index(text.len());
            match how {
                0 => text[i] = byte,
                1 => text.insert(i, byte),
                _ => drop(text.drain(i..(i + usize::from(byte % 16)).min(text.len()))),
            }
        }
        load(&text)?;
    }

    /// Anything at all, JSON-ish bytes weighted in.
    #[test]
    fn arbitrary_bytes_load_or_fail_cleanly(
        text in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            prop::collection::vec(
                prop::sample::select(b"{}[]\":,0123 -.aetrunlf\\\n".to_vec()),
                0..512,
            ),
        ]
    ) {
        load(&text)?;
    }

    /// The scanner answers any position in any text without panicking.
    #[test]
    fn path_at_any_position(
        text in prop::collection::vec(prop::sample::select(b"{}[]\":,0a \n\\".to_vec()), 0..256),
        line in 0usize..8,
        column in 0usize..300,
    ) {
        let _ = super::json_path::path_at(&text, line, column);
    }
}
