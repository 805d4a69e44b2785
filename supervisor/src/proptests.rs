//! Property tests of what the supervisor reads from people and from disk: the duration and
//! size grammars, the `run.harun.*` annotations, the supervision record and the event log.
//! Anything at all is an answer or an error, never a panic; grammars agree with a plain
//! reference and round-trip.
//!
//! The grammars are reached through [`grammar`] only, so that moving them (one size and one
//! duration grammar for the whole CLI) means changing those lines, not the properties.
//!
//! `PROPTEST_CASES=20000 cargo test -p harun-supervisor proptests` for more cases.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use harun_runtime::state::StateRoot;
use proptest::prelude::*;

use crate::annotations::{self, Overrides, KEYS};
use crate::persist::{Store, RECORD_FILE};

/// The grammars under test.
mod grammar {
    pub use harun_runtime::units::{format_duration, parse_duration};

    /// A size of logs (`--log-max-size`): harun_runtime::units' grammar, at least 1 byte.
    pub fn parse_size(text: &str) -> Option<u64> {
        crate::logs::parse_size(text).ok()
    }
}

const MS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Strings near the grammars: digits, units, signs, spaces, fractions, huge numbers.
fn grammar_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,22}(h|m|s|ms|us|d|k|m|g|t|kb|mb|gb|KiB|b|B|M|G)?",
        "([0-9]{1,6}(h|m|s|ms)){1,5}",
        "[-+ .0-9a-zA-Z:/]{0,16}",
        "\\PC{0,12}",
        "18446744073709551615[0-9]?(ms|s|h|k|m|g)?",
    ]
}

proptest! {
    /// `parse_duration` reads each unit once, largest first; the value is the sum.
    #[test]
    fn durations_sum_their_units(parts in prop::array::uniform4(prop::option::of(0u64..100_000))) {
        let mut text = String::new();
        let mut total: u64 = 0;
        for ((unit, ms), n) in MS.iter().zip(parts) {
            if let Some(n) = n {
                text.push_str(&format!("{n}{unit}"));
                total += n * ms;
            }
        }
        let got = grammar::parse_duration(&text);
        if text.is_empty() {
            prop_assert!(got.is_err());
        } else {
            prop_assert_eq!(got.unwrap(), Duration::from_millis(total), "{}", text);
        }
    }

    /// What `format_duration` writes, `parse_duration` reads back (to the millisecond).
    #[test]
    fn durations_round_trip(ms in prop_oneof![0u64..10_000_000, any::<u64>()]) {
        let d = Duration::from_millis(ms);
        let text = grammar::format_duration(d);
        prop_assert_eq!(grammar::parse_duration(&text).unwrap(), d, "{}", text);
    }

    /// Anything: a duration or an error naming the input, never a panic; what parses is
    /// written back in canonical form and parses to the same.
    #[test]
    fn any_duration_text(text in grammar_like()) {
        match grammar::parse_duration(&text) {
            Ok(d) => {
                let again = grammar::format_duration(d);
                prop_assert_eq!(grammar::parse_duration(&again).unwrap(), d);
            }
            Err(e) => prop_assert!(e.to_string().contains(&text), "{}", e),
        }
    }

    /// `N[k|m|g][b]` in either case is N times a power of 1024; 0 and overflow are errors.
    #[test]
    fn sizes_are_powers_of_1024(
        n in prop_oneof![0u64..5000, any::<u64>()],
        unit in prop::sample::select(vec![("", 0u32), ("k", 10), ("m", 20), ("g", 30)]),
        b in any::<bool>(),
        upper in any::<bool>(),
    ) {
        let mut text = format!("{n}{}{}", unit.0, if b { "b" } else { "" });
        if upper {
            text = text.to_uppercase();
        }
        let want = n.checked_mul(1 << unit.1).filter(|&s| s > 0);
        prop_assert_eq!(grammar::parse_size(&text), want, "{}", text);
    }

    #[test]
    fn any_size_text(text in grammar_like()) {
        if let Some(size) = grammar::parse_size(&text) {
            prop_assert!(size > 0);
            prop_assert!(text.starts_with(|c: char| c.is_ascii_digit()), "{}", text);
        }
    }

    /// Any annotations, supervision keys and near misses among them: settings or an error
    /// naming the key, never a panic; flags on top give settings or an error too.
    #[test]
    fn any_annotations_resolve_or_fail_cleanly(
        pairs in prop::collection::vec((annotation_key(), annotation_value()), 0..8),
        delay in prop::option::of(any::<u64>()),
    ) {
        let map: HashMap<String, String> = pairs.into_iter().collect();
        match Overrides::from_annotations(&map) {
            Ok(o) => {
                let flags = Overrides {
                    delay: delay.map(Duration::from_millis),
                    ..Overrides::default()
                };
                let _ = flags.or(o).apply(crate::policy::Settings::default());
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(map.keys().any(|k| e.contains(k.as_str())), "{}", e);
            }
        }
        let _ = annotations::resolve(&map, Overrides::default());
    }

    /// A damaged supervision.json (bytes changed, cut, inserted, or a field given another
    /// value, at the top, in the engine state or in its settings) is read as a record (the
    /// engine state with it) or an error naming the file. Never a panic.
    #[test]
    fn damaged_supervision_records_are_errors_not_panics(
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..4),
        field in prop::option::of((0usize..3, any::<prop::sample::Index>(), numberish())),
    ) {
        let mut record: serde_json::Value = serde_json::from_str(&sample_record()).unwrap();
        if let Some((depth, at, value)) = field {
            let mut obj = &mut record;
            for key in ["supervision", "settings"].into_iter().take(depth) {
                obj = &mut obj[key];
            }
            let obj = obj.as_object_mut().unwrap();
            let key = obj.keys().nth(at.index(obj.len())).unwrap().clone();
            obj.insert(key, value);
        }
        let mut text = serde_json::to_vec_pretty(&record).unwrap();
        for (at, byte, how) in damage {
            if text.is_empty() {
                break;
            }
            let i = at.index(text.len());
            match how {
                0 => text[i] = byte,
                1 => text.insert(i, byte),
                _ => drop(text.drain(i..(i + usize::from(byte % 16)).min(text.len()))),
            }
        }
        let (_dir, store) = store_with(&text);
        match store.read_record() {
            Ok(Some(_)) => {}
            Ok(None) => prop_assert!(false, "the record was written"),
            Err(e) => prop_assert!(e.to_string().contains(RECORD_FILE), "{}", e),
        }
        let _ = crate::events::parse(&text);
    }
}

fn annotation_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KEYS.to_vec()).prop_map(str::to_string),
        prop::sample::select(KEYS.to_vec()).prop_flat_map(|k| {
            // a near miss: one character changed, added or cut
            (Just(k), 0..k.len(), any::<char>(), 0u8..3).prop_map(|(k, i, c, how)| {
                let mut chars: Vec<char> = k.chars().collect();
                match how {
                    0 => chars[i] = c,
                    1 => chars.insert(i, c),
                    _ => drop(chars.remove(i)),
                }
                chars.into_iter().collect()
            })
        }),
        "run\\.harun\\.[a-z.-]{0,20}",
        "\\PC{0,20}",
    ]
}

fn annotation_value() -> impl Strategy<Value = String> {
    prop_oneof![
        grammar_like(),
        "(no|always|unless-stopped|on-failure)(:[0-9]{0,21})?",
        "[0-9]{0,21}/[0-9]{0,21}(ms|s|m|h)?",
    ]
}

/// JSON values that fit a record's fields badly: huge, negative, fractional, wrong types.
fn numberish() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop::sample::select(vec![
        json!(u64::MAX),
        json!(i64::MIN),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(null),
        json!("x"),
        json!([]),
        json!({}),
        json!([u64::MAX, 0]),
        json!({"status": {"code": u64::MAX}, "atMs": u64::MAX, "ranForMs": u64::MAX}),
        json!({"status": {"signal": -1, "code": 1}, "atMs": 0, "ranForMs": 0}),
        json!({"kind": "crash-loop", "exits": -1, "windowMs": u64::MAX}),
        json!({"policy": "on-failure:99999999999", "delay": "99999999999h"}),
    ])
}

/// A record as a supervisor writes it, with every optional part present.
fn sample_record() -> String {
    use crate::persist::{Mode, ProcRef, Record};
    use crate::policy::{CrashLoop, LastExit, RestartPolicy, Settings, Supervision, Timestamp};
    let mut sup = Supervision::new(Settings {
        policy: RestartPolicy::OnFailure {
            max_retries: Some(3),
        },
        crash_loop: Some(CrashLoop {
            max_exits: 5,
            window: Duration::from_secs(30),
        }),
        ..Settings::default()
    });
    sup.restart_count = 2;
    sup.retries = 2;
    sup.delay = Some(Duration::from_millis(200));
    sup.recent_exits = vec![Timestamp::from_millis(1000), Timestamp::from_millis(2000)];
    sup.last_exit = Some(LastExit {
        status: Some(crate::policy::ExitStatus::Code(1)),
        at: Timestamp::from_millis(2000),
        ran_for: Duration::from_millis(1500),
    });
    sup.next_restart_at = Some(Timestamp::from_millis(2200));
    sup.gave_up = Some(crate::policy::GiveUpReason::CrashLoop {
        exits: 5,
        window: Duration::from_secs(30),
    });
    let me = ProcRef {
        pid: 1,
        start_time: 2,
    };
    let log = Some(crate::logs::LogConfig::default());
    let mut record = Record::new(
        "p",
        std::path::Path::new("/b"),
        Mode::Detached,
        me,
        log,
        sup,
    );
    record.container_pid = Some(42);
    record.end_reason = Some("crash loop".into());
    serde_json::to_string_pretty(&record).unwrap()
}

/// A state root in a fresh temp dir with `text` as the record of container `p`.
fn store_with(text: &[u8]) -> (TempDir, Store) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = TempDir(
        std::env::temp_dir().join(format!("harun-sup-proptest-{}-{n}", std::process::id())),
    );
    let store = Store::reserve(&StateRoot::new(&dir.0), "p").unwrap();
    std::fs::write(store.file(RECORD_FILE), text).unwrap();
    (dir, store)
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_sample_record_reads_back() {
    let (_dir, store) = store_with(sample_record().as_bytes());
    store.read_record().unwrap().unwrap();
}
