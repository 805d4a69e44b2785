//! Property tests of the records harun reads back from disk (state.json, cgroup.json) and of
//! the overlay annotations' size grammar: damaged records are errors, never panics, and
//! what does read is usable (`state`'s status and OCI document, the cgroup's freeze state).
//! Config loading and the seccomp compiler have theirs in `spec/` and `security/seccomp/`.
//!
//! `PROPTEST_CASES=20000 cargo test -p harun-runtime proptests` for more cases.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::cgroups::hierarchy::{Record, RECORD_FILE};
use crate::rootfs::overlay::{parse_upper, UpperSpec};
use crate::state::{State, StateRoot};
use crate::test_support::TempDir;
use crate::units;

/// A state.json as `create` writes it.
fn sample_state() -> Value {
    let st = State {
        id: "p".into(),
        pid: 1,
        init_start_time: 5,
        bundle: "/b".into(),
        rootfs: "/b/rootfs".into(),
        created: "2026-01-01T00:00:00Z".into(),
        config: crate::spec::example().unwrap(),
        cgroup: Some(Record {
            path: "/sys/fs/cgroup/harun/p".into(),
            prune_to: Some("/sys/fs/cgroup/harun".into()),
        }),
    };
    serde_json::to_value(&st).unwrap()
}

/// Values that fit a record's fields badly.
fn odd_value() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!(null),
        json!(-1),
        json!(0),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5),
        json!(""),
        json!("/"),
        json!("../.."),
        json!("/proc/self"),
        json!([]),
        json!({}),
        json!({"path": "/", "prune_to": "/"}),
        json!({"ociVersion": "1.0.2"}),
    ])
}

/// Bytes changed, inserted or cut at random places.
fn damage(text: &mut Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) {
    for (at, byte, how) in edits {
        if text.is_empty() {
            return;
        }
        let i = at.index(text.len());
        match how {
            0 => text[i] = *byte,
            1 => text.insert(i, *byte),
            _ => drop(text.drain(i..(i + usize::from(byte % 16)).min(text.len()))),
        }
    }
}

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8, u8)>> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..4)
}

proptest! {
    /// A damaged state.json: `state` reads a state (and then its status and OCI document)
    /// or says what is wrong with which file.
    #[test]
    fn damaged_state_records_are_errors_not_panics(
        field in prop::option::of((any::<prop::sample::Index>(), odd_value())),
        bytes in edits(),
    ) {
        let mut v = sample_state();
        if let Some((at, value)) = field {
            let obj = v.as_object_mut().unwrap();
            let key = obj.keys().nth(at.index(obj.len())).unwrap().clone();
            obj.insert(key, value);
        }
        let mut text = serde_json::to_vec(&v).unwrap();
        damage(&mut text, &bytes);
        let tmp = TempDir::new("rec-proptest");
        let root = StateRoot::new(tmp.path());
        std::fs::create_dir(root.dir("p")).unwrap();
        std::fs::write(root.dir("p").join("state.json"), &text).unwrap();
        match root.read("p") {
            Ok(st) => {
                let status = st.status(&root.dir("p"));
                let doc = st.to_oci(status);
                prop_assert_eq!(&doc["id"], &json!(st.id));
            }
            Err(e) => prop_assert!(e.to_string().contains("state.json"), "{}", e),
        }
    }

    /// A damaged cgroup.json (what `delete --force` of a half-made container reads): no
    /// record, or a record whose cgroup can be looked at.
    #[test]
    fn damaged_cgroup_records_are_none_not_panics(
        field in prop::option::of(odd_value()),
        bytes in edits(),
    ) {
        let mut v = json!({"path": "/sys/fs/cgroup/harun/p", "prune_to": "/sys/fs/cgroup/harun"});
        if let Some(value) = field {
            v["path"] = value;
        }
        let mut text = serde_json::to_vec(&v).unwrap();
        damage(&mut text, &bytes);
        let tmp = TempDir::new("rec-proptest");
        std::fs::write(tmp.path().join(RECORD_FILE), &text).unwrap();
        if let Some(record) = Record::load(tmp.path()) {
            let _ = record.is_frozen();
        }
    }

    /// Sizes (`units::parse_size`, which `run.harun.overlay.upper` uses): `N[k|m|g|t]`,
    /// either case, powers of 1024; overflow is refused, and a tmpfs upper of 0 bytes too.
    #[test]
    fn overlay_sizes_are_powers_of_1024(
        n in prop_oneof![0u64..5000, any::<u64>()],
        unit in prop::sample::select(vec![("", 0u32), ("k", 10), ("m", 20), ("g", 30), ("t", 40)]),
        upper in any::<bool>(),
    ) {
        let mut text = format!("{n}{}", unit.0);
        if upper {
            text = text.to_uppercase();
        }
        let want = n.checked_mul(1 << unit.1);
        prop_assert_eq!(units::parse_size(&text).ok(), want, "{}", text);
        let want = want.filter(|&s| s > 0);
        let spec = format!("tmpfs:{text}");
        match (parse_upper(&spec), want) {
            (Ok(UpperSpec::Tmpfs { size }), Some(w)) => prop_assert_eq!(size, Some(w)),
            (Err(e), None) => prop_assert!(e.contains(&text), "{}", e),
            (other, _) => prop_assert!(false, "{}: {:?}", spec, other),
        }
    }

    /// Any upper spec: tmpfs, a clean absolute directory, or an error; never a panic.
    #[test]
    fn any_overlay_upper(spec in prop_oneof![
        "(tmpfs)?(:)?[0-9a-zA-Z]{0,24}",
        "/?([a-z.]{0,3}/){0,4}[a-z.]{0,3}",
        "\\PC{0,24}",
    ]) {
        match parse_upper(&spec) {
            Ok(UpperSpec::Dir(p)) => {
                prop_assert!(p.is_absolute() && p.parent().is_some(), "{}", spec);
                prop_assert!(!p.components().any(|c| c == std::path::Component::ParentDir));
            }
            Ok(UpperSpec::Tmpfs { size }) => prop_assert!(size != Some(0)),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    /// What the init writes on exec.fifo, or anything else: a word, never a panic.
    #[test]
    fn any_exec_fifo_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        eof in any::<bool>(),
    ) {
        let _ = crate::process::exec_fifo::parse(&bytes, eof);
    }
}

#[test]
fn the_sample_state_reads_back() {
    let tmp = TempDir::new("rec-proptest");
    let root = StateRoot::new(tmp.path());
    std::fs::create_dir(root.dir("p")).unwrap();
    std::fs::write(
        root.dir("p").join("state.json"),
        serde_json::to_vec(&sample_state()).unwrap(),
    )
    .unwrap();
    assert_eq!(root.read("p").unwrap().id, "p");
}
