//! Supervision settings from bundle annotations, with CLI flags on top.
//!
//! A bundle describes its own supervision (`run.harun.restart: on-failure:5`, ...); the
//! flags of `harun run` (`--restart`, `--restart-delay`, ...) override it field by field.
//! Both become an [`Overrides`]; [`resolve`] layers flags over annotations over the
//! defaults and validates the result as a whole (a delay from the bundle and a max delay
//! from a flag must still fit together).

use std::collections::HashMap;
use std::time::Duration;

use crate::parse_duration;
use crate::policy::{Backoff, CrashLoop, RestartPolicy, Settings};
use crate::{Error, Result};

/// `no`, `on-failure[:N]`, `always`, `unless-stopped` (flag `--restart`).
pub const RESTART: &str = "run.harun.restart";
/// First restart delay, e.g. `100ms` (flag `--restart-delay`).
pub const RESTART_DELAY: &str = "run.harun.restart.delay";
/// Cap of the doubling delay, e.g. `1m` (flag `--restart-max-delay`).
pub const RESTART_MAX_DELAY: &str = "run.harun.restart.max-delay";
/// A run this long resets the backoff, e.g. `10s` (flag `--restart-reset-after`).
pub const RESTART_RESET_AFTER: &str = "run.harun.restart.reset-after";
/// Crash-loop limit `N/S`, e.g. `5/30s` (flag `--restart-limit`).
pub const RESTART_LIMIT: &str = "run.harun.restart.limit";
/// SIGTERM → SIGKILL grace when stopping, e.g. `10s` (flag `--stop-timeout`).
pub const STOP_TIMEOUT: &str = "run.harun.stop-timeout";

/// Every supervision annotation this module reads.
pub const KEYS: [&str; 6] = [
    RESTART,
    RESTART_DELAY,
    RESTART_MAX_DELAY,
    RESTART_RESET_AFTER,
    RESTART_LIMIT,
    STOP_TIMEOUT,
];

/// Supervision settings given explicitly (by flags or annotations); `None` = not given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub policy: Option<RestartPolicy>,
    pub delay: Option<Duration>,
    pub max_delay: Option<Duration>,
    pub reset_after: Option<Duration>,
    pub limit: Option<CrashLoop>,
    pub stop_timeout: Option<Duration>,
}

impl Overrides {
    /// Reads the supervision annotations; other annotations are ignored, except that a key
    /// that looks like a misspelt supervision annotation is an error naming it.
    pub fn from_annotations(annotations: &HashMap<String, String>) -> Result<Overrides> {
        check_unknown_keys(annotations)?;
        let a = annotations;
        Ok(Overrides {
            policy: value(a, RESTART, str::parse)?,
            delay: value(a, RESTART_DELAY, parse_duration)?,
            max_delay: value(a, RESTART_MAX_DELAY, parse_duration)?,
            reset_after: value(a, RESTART_RESET_AFTER, parse_duration)?,
            limit: value(a, RESTART_LIMIT, str::parse)?,
            stop_timeout: value(a, STOP_TIMEOUT, parse_duration)?,
        })
    }

    /// `self`'s values where given, `lower`'s elsewhere (flags `.or(annotations)`).
    pub fn or(self, lower: Overrides) -> Overrides {
        Overrides {
            policy: self.policy.or(lower.policy),
            delay: self.delay.or(lower.delay),
            max_delay: self.max_delay.or(lower.max_delay),
            reset_after: self.reset_after.or(lower.reset_after),
            limit: self.limit.or(lower.limit),
            stop_timeout: self.stop_timeout.or(lower.stop_timeout),
        }
    }

    /// `base` with the given values replaced, validated as a whole.
    pub fn apply(self, base: Settings) -> Result<Settings> {
        let settings = Settings {
            policy: self.policy.unwrap_or(base.policy),
            backoff: Backoff {
                initial: self.delay.unwrap_or(base.backoff.initial),
                factor: base.backoff.factor,
                max: self.max_delay.unwrap_or(base.backoff.max),
                reset_after: self.reset_after.unwrap_or(base.backoff.reset_after),
            },
            crash_loop: self.limit.or(base.crash_loop),
            stop_timeout: self.stop_timeout.unwrap_or(base.stop_timeout),
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// The settings for a container: `flags` over its bundle's `annotations` over the defaults.
pub fn resolve(annotations: &HashMap<String, String>, flags: Overrides) -> Result<Settings> {
    let bundle = Overrides::from_annotations(annotations)?;
    flags.or(bundle).apply(Settings::default())
}

/// The annotation `key` parsed by `parse`, if present; errors name the key.
fn value<T, E: Into<Error>>(
    annotations: &HashMap<String, String>,
    key: &str,
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> Result<Option<T>> {
    annotations
        .get(key)
        .map(|value| parse(value).map_err(|e| in_annotation(e.into(), key)))
        .transpose()
}

fn in_annotation(error: Error, key: &str) -> Error {
    error.with_origin(format!("annotation `{key}`"))
}

/// Every `run.harun.*` supervision annotation: the restart ones here and the service ones
/// of `harun supervise` ([`crate::service::KEYS`]). One list, one misspelling check.
fn all_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().chain(crate::service::KEYS.iter()).copied()
}

/// Prefixes under which any key but a known one is a misspelling.
const FAMILIES: [&str; 4] = [
    "run.harun.restart",
    "run.harun.stop",
    "run.harun.health",
    "run.harun.update",
];

/// Rejects keys that are probably a misspelt supervision annotation: any other key under
/// one of [`FAMILIES`], or a `run.harun.` key within two edits of a known one. Checked in
/// sorted order, so the error does not depend on hash order. (The overlay's
/// `run.harun.overlay*` keys have their own check in the runtime.)
pub(crate) fn check_unknown_keys(annotations: &HashMap<String, String>) -> Result<()> {
    let mut suspects: Vec<&str> = annotations
        .keys()
        .map(String::as_str)
        .filter(|key| !all_keys().any(|k| k == *key) && looks_like_ours(key))
        .collect();
    harun_runtime::sort::sort(&mut suspects);
    match suspects.first() {
        None => Ok(()),
        Some(key) => Err(in_annotation(Error::new(unknown_key_hint(key)), key)),
    }
}

fn looks_like_ours(key: &str) -> bool {
    FAMILIES.iter().any(|f| key.starts_with(f))
        || (key.starts_with("run.harun.") && nearest_key(key).1 <= 2)
}

fn unknown_key_hint(key: &str) -> String {
    // A small typo first, else a known key the name extends (`run.harun.restart.policy`),
    // else a bigger typo (`run.harun.health.command`).
    let (nearest, distance) = nearest_key(key);
    let extended = || {
        all_keys()
            .filter(|known| key.starts_with(known))
            .max_by_key(|known| known.len())
    };
    let hint = if distance <= 2 {
        Some(nearest)
    } else {
        extended().or((distance <= 4).then_some(nearest))
    };
    match hint {
        Some(known) => format!("unknown supervision annotation (did you mean `{known}`?)"),
        None => format!(
            "unknown supervision annotation (known: {})",
            all_keys().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The known key closest to `key` and its edit distance.
fn nearest_key(key: &str) -> (&'static str, usize) {
    all_keys()
        .map(|known| (known, edit_distance(key, known)))
        .min_by_key(|&(_, distance)| distance)
        .unwrap_or((RESTART, usize::MAX))
}

/// Levenshtein distance in characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_annotations_give_the_defaults() {
        let unrelated = map(&[
            ("org.opencontainers.image.ref.name", "v1"),
            ("run.harun.rootfs.overlay", "persistent:/data"),
            ("io.kubernetes.cri.container-type", "container"),
        ]);
        for annotations in [HashMap::new(), unrelated] {
            assert_eq!(
                Overrides::from_annotations(&annotations),
                Ok(Overrides::default())
            );
            assert_eq!(
                resolve(&annotations, Overrides::default()),
                Ok(Settings::default())
            );
        }
    }

    #[test]
    fn reads_every_annotation() {
        let annotations = map(&[
            (RESTART, "on-failure:5"),
            (RESTART_DELAY, "1s"),
            (RESTART_MAX_DELAY, "5m"),
            (RESTART_RESET_AFTER, "10m"),
            (RESTART_LIMIT, "5/30s"),
            (STOP_TIMEOUT, "30s"),
        ]);
        let want = Settings {
            policy: RestartPolicy::OnFailure {
                max_retries: Some(5),
            },
            backoff: Backoff {
                initial: ms(1_000),
                factor: 2,
                max: ms(300_000),
                reset_after: ms(600_000),
            },
            crash_loop: Some(CrashLoop {
                max_exits: 5,
                window: ms(30_000),
            }),
            stop_timeout: ms(30_000),
        };
        assert_eq!(resolve(&annotations, Overrides::default()), Ok(want));
    }

    #[test]
    fn bad_values_name_the_annotation() {
        let cases: &[(&str, &str, &str)] = &[
            (
                RESTART,
                "sometimes",
                "invalid restart policy `sometimes`: unknown policy",
            ),
            (RESTART, "", "invalid restart policy ``: empty"),
            (
                RESTART,
                "on-failure:-1",
                "retry count `-1` is not a whole number",
            ),
            (
                RESTART_DELAY,
                "10x",
                "invalid duration `10x`: unknown unit `x`",
            ),
            (
                RESTART_MAX_DELAY,
                "-1m",
                "negative durations are not allowed",
            ),
            (RESTART_RESET_AFTER, "10.5", "fractions are not supported"),
            (
                RESTART_LIMIT,
                "5",
                "invalid restart limit `5`: missing `/S`",
            ),
            (
                STOP_TIMEOUT,
                "ten seconds",
                "invalid duration `ten seconds`",
            ),
        ];
        for &(key, value, want) in cases {
            let err = Overrides::from_annotations(&map(&[(key, value)])).expect_err(value);
            assert_eq!(err.origin(), Some(format!("annotation `{key}`").as_str()));
            let shown = err.to_string();
            let prefix = format!("annotation `{key}`: invalid ");
            assert!(
                shown.starts_with(&prefix) && shown.contains(want),
                "{shown}"
            );
        }
    }

    #[test]
    fn misspelt_keys_are_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "run.harun.restart.dealy",
                "did you mean `run.harun.restart.delay`?",
            ),
            (
                "run.harun.restart.max_delay",
                "did you mean `run.harun.restart.max-delay`?",
            ),
            ("run.harun.restarts", "did you mean `run.harun.restart`?"),
            ("run.harun.retsart", "did you mean `run.harun.restart`?"),
            (
                "run.harun.stop-timout",
                "did you mean `run.harun.stop-timeout`?",
            ),
            (
                "run.harun.stop_timeout",
                "did you mean `run.harun.stop-timeout`?",
            ),
            (
                "run.harun.restart.limit.count",
                "did you mean `run.harun.restart.limit`?",
            ),
            (
                "run.harun.restart.policy",
                "did you mean `run.harun.restart`?",
            ),
            (
                "run.harun.restart-delay",
                "did you mean `run.harun.restart.delay`?",
            ),
            (
                "run.harun.stop.signal.please",
                "known: run.harun.restart, run.harun.restart.delay, \
                 run.harun.restart.max-delay, run.harun.restart.reset-after, \
                 run.harun.restart.limit, run.harun.stop-timeout, run.harun.replicas, \
                 run.harun.after, run.harun.notify, run.harun.health.cmd, \
                 run.harun.health.interval, run.harun.health.timeout, \
                 run.harun.health.retries, run.harun.health.start-period, \
                 run.harun.health.on-failure, run.harun.update.window",
            ),
        ];
        for &(key, hint) in cases {
            let annotations = map(&[(key, "1s"), (RESTART, "always")]);
            let err = Overrides::from_annotations(&annotations).expect_err(key);
            assert_eq!(
                err.to_string(),
                format!("annotation `{key}`: unknown supervision annotation ({hint})")
            );
        }
        // The first misspelling in sorted order is reported, whatever the hash order.
        let annotations = map(&[
            ("run.harun.stop-timout", "1s"),
            ("run.harun.restart.dealy", "1s"),
        ]);
        let err = Overrides::from_annotations(&annotations).expect_err("two typos");
        assert_eq!(err.origin(), Some("annotation `run.harun.restart.dealy`"));
    }

    #[test]
    fn flags_override_annotations_field_by_field() {
        let annotations = map(&[
            (RESTART, "always"),
            (RESTART_DELAY, "2s"),
            (RESTART_LIMIT, "5/30s"),
            (STOP_TIMEOUT, "30s"),
        ]);
        let flags = Overrides {
            policy: Some(RestartPolicy::OnFailure {
                max_retries: Some(3),
            }),
            stop_timeout: Some(ms(1_000)),
            max_delay: Some(ms(120_000)),
            ..Overrides::default()
        };
        let settings = resolve(&annotations, flags).expect("valid");
        assert_eq!(
            settings.policy,
            RestartPolicy::OnFailure {
                max_retries: Some(3)
            }
        );
        assert_eq!(settings.stop_timeout, ms(1_000), "flag wins");
        assert_eq!(settings.backoff.initial, ms(2_000), "annotation kept");
        assert_eq!(settings.backoff.max, ms(120_000), "flag alone");
        assert_eq!(settings.backoff.reset_after, ms(10_000), "default");
        assert_eq!(settings.crash_loop.map(|l| l.max_exits), Some(5));
    }

    #[test]
    fn settings_are_validated_after_merging() {
        // A 2 min delay from the bundle exceeds the default 1 min cap...
        let annotations = map(&[(RESTART_DELAY, "2m")]);
        let err = resolve(&annotations, Overrides::default()).expect_err("delay above cap");
        assert_eq!(
            err.to_string(),
            "restart max delay (1m) is shorter than the restart delay (2m)"
        );
        // ...unless a flag raises the cap.
        let flags = Overrides {
            max_delay: Some(ms(300_000)),
            ..Overrides::default()
        };
        assert!(resolve(&annotations, flags).is_ok());
        // A zero delay is allowed (the first restart at once), a zero cap refused, wherever
        // they come from.
        let flags = Overrides {
            delay: Some(Duration::ZERO),
            ..Overrides::default()
        };
        assert!(resolve(&HashMap::new(), flags).is_ok());
        let flags = Overrides {
            delay: Some(Duration::ZERO),
            max_delay: Some(Duration::ZERO),
            ..Overrides::default()
        };
        let err = resolve(&HashMap::new(), flags).expect_err("zero max delay");
        assert_eq!(
            err.to_string(),
            "restart max delay must be at least 1ms (a container that keeps failing backs off)"
        );
    }

    #[test]
    fn edit_distances() {
        let cases = [
            ("", "", 0),
            ("abc", "abc", 0),
            ("abc", "", 3),
            ("", "ab", 2),
            ("dealy", "delay", 2),
            ("kitten", "sitting", 3),
            ("stop-timout", "stop-timeout", 1),
        ];
        for (a, b, want) in cases {
            assert_eq!(edit_distance(a, b), want, "{a} {b}");
        }
    }
}
