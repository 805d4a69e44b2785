//! How the engine state is written down (in `supervision.json`, persist.rs): times as Unix
//! milliseconds, durations as milliseconds, the settings as people write them (`on-failure:3`,
//! `100ms`, `5/30s`) and checked when read back, a give-up as a record tagged by its `kind`.
//!
//! Only what serde's derives cannot say alone is here; the types derive the rest.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Backoff, GiveUpReason, Settings};
use crate::{format_duration, parse_duration};

/// `d` in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A `Duration` as milliseconds (`#[serde(with = "wire::ms")]`).
pub(super) mod ms {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(millis(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// An `Option<Duration>` as milliseconds or null.
pub(super) mod opt_ms {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(millis).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// [`Settings`] as people read and write them.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SettingsWire {
    policy: String,
    restart_delay: String,
    restart_max_delay: String,
    restart_reset_after: String,
    restart_backoff_factor: u32,
    restart_limit: Option<String>,
    stop_timeout: String,
}

impl From<Settings> for SettingsWire {
    fn from(s: Settings) -> Self {
        SettingsWire {
            policy: s.policy.to_string(),
            restart_delay: format_duration(s.backoff.initial),
            restart_max_delay: format_duration(s.backoff.max),
            restart_reset_after: format_duration(s.backoff.reset_after),
            restart_backoff_factor: s.backoff.factor,
            restart_limit: s.crash_loop.map(|l| l.to_string()),
            stop_timeout: format_duration(s.stop_timeout),
        }
    }
}

impl TryFrom<SettingsWire> for Settings {
    type Error = crate::Error;

    /// Parsed and validated as the same settings from the command line are.
    fn try_from(w: SettingsWire) -> crate::Result<Settings> {
        let settings = Settings {
            policy: w.policy.parse()?,
            backoff: Backoff {
                initial: parse_duration(&w.restart_delay)?,
                factor: w.restart_backoff_factor,
                max: parse_duration(&w.restart_max_delay)?,
                reset_after: parse_duration(&w.restart_reset_after)?,
            },
            crash_loop: w.restart_limit.as_deref().map(str::parse).transpose()?,
            stop_timeout: parse_duration(&w.stop_timeout)?,
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// A [`GiveUpReason`] as it is read (see ctl::WireRequest for why not serde's own reading
/// of an internally tagged enum, and how its texts are kept).
#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "internally tagged enum GiveUpReason"
)]
pub(super) struct WireGiveUp {
    kind: GiveUpKind,
    exits: Option<u32>,
    window_ms: Option<u64>,
    retries: Option<u32>,
}

#[derive(Deserialize)]
#[serde(variant_identifier, rename_all = "kebab-case")]
enum GiveUpKind {
    CrashLoop,
    MaxRetries,
}

impl TryFrom<WireGiveUp> for GiveUpReason {
    type Error = &'static str;

    fn try_from(w: WireGiveUp) -> Result<GiveUpReason, &'static str> {
        Ok(match w.kind {
            GiveUpKind::CrashLoop => GiveUpReason::CrashLoop {
                exits: w.exits.ok_or("missing field `exits`")?,
                window: Duration::from_millis(w.window_ms.ok_or("missing field `windowMs`")?),
            },
            GiveUpKind::MaxRetries => GiveUpReason::MaxRetries {
                retries: w.retries.ok_or("missing field `retries`")?,
            },
        })
    }
}
