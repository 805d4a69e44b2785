//! A service of `harun supervise DIR`: a subdirectory of DIR holding a bundle, named after
//! the directory, described by its `run.harun.*` annotations.
//!
//! | annotation | value | default |
//! |---|---|---|
//! | `run.harun.restart`, `.restart.*`, `run.harun.stop-timeout` | as for `harun run` ([`crate::annotations`]) | `no` |
//! | `run.harun.replicas` | number of containers, 1..=100 | `1` |
//! | `run.harun.after` | services to start after (names, comma or space separated) | none |
//! | `run.harun.notify` | `true`: ready once the process sends `READY=1` to `$NOTIFY_SOCKET` | `false` |
//! | `run.harun.health.cmd` | JSON argv run inside the container, e.g. `["sh","-c","test -f /ok"]` | no check |
//! | `run.harun.health.interval` | time between checks | `30s` |
//! | `run.harun.health.timeout` | a check taking longer fails | `30s` |
//! | `run.harun.health.retries` | failed checks in a row that make it unhealthy | `3` |
//! | `run.harun.health.start-period` | failures after a start that do not count | `0` |
//! | `run.harun.health.on-failure` | `restart`, `kill`, `stop` or `none` | `restart` |
//! | `run.harun.update.window` | a new replica without check must run this long; with one, be ready within it | `5s` |
//!
//! Containers are named `SERVICE` (one replica) or `SERVICE-0 .. SERVICE-(N-1)`, plus
//! `SERVICE-next` during an update ([`crate::rollout`]). Everything is checked when the
//! service is loaded, the whole config with the runtime's own validation, so a bad bundle
//! is refused at `harun supervise` or `harun ctl reload` with the error `create` would give,
//! before anything starts.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use harun_runtime::state::validate_id;
use serde_json::Value;

use crate::annotations::{self, Overrides};
use crate::health::{Check, OnFailure};
use crate::parse_duration;
use crate::policy::Settings;
use crate::rollout::Slot;
use crate::{Error, Result};

pub const REPLICAS: &str = "run.harun.replicas";
pub const AFTER: &str = "run.harun.after";
pub const NOTIFY: &str = "run.harun.notify";
pub const HEALTH_CMD: &str = "run.harun.health.cmd";
pub const HEALTH_INTERVAL: &str = "run.harun.health.interval";
pub const HEALTH_TIMEOUT: &str = "run.harun.health.timeout";
pub const HEALTH_RETRIES: &str = "run.harun.health.retries";
pub const HEALTH_START_PERIOD: &str = "run.harun.health.start-period";
pub const HEALTH_ON_FAILURE: &str = "run.harun.health.on-failure";
pub const UPDATE_WINDOW: &str = "run.harun.update.window";

/// Every annotation this module reads (the restart ones are [`annotations::KEYS`]).
pub const KEYS: [&str; 10] = [
    REPLICAS,
    AFTER,
    NOTIFY,
    HEALTH_CMD,
    HEALTH_INTERVAL,
    HEALTH_TIMEOUT,
    HEALTH_RETRIES,
    HEALTH_START_PERIOD,
    HEALTH_ON_FAILURE,
    UPDATE_WINDOW,
];

/// The most replicas a service may ask for.
pub const MAX_REPLICAS: u32 = 100;
const DEFAULT_UPDATE_WINDOW: Duration = Duration::from_secs(5);

/// How a service runs, from its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviour {
    pub settings: Settings,
    pub replicas: u32,
    pub after: Vec<String>,
    pub notify: bool,
    pub health: Option<Check>,
    pub update_window: Duration,
}

impl Behaviour {
    /// Reads and checks every supervision annotation; `flags` (of `harun run`) override
    /// the restart ones. Errors name the annotation.
    pub fn from_annotations(
        annotations: &HashMap<String, String>,
        flags: Overrides,
    ) -> Result<Behaviour> {
        annotations::check_unknown_keys(annotations)?;
        let settings = annotations::resolve(annotations, flags)?;
        let a = annotations;
        let replicas = value(a, REPLICAS, parse_replicas)?.unwrap_or(1);
        let after = value(a, AFTER, parse_names)?.unwrap_or_default();
        let notify = value(a, NOTIFY, parse_bool)?.unwrap_or(false);
        let update_window =
            value(a, UPDATE_WINDOW, parse_duration)?.unwrap_or(DEFAULT_UPDATE_WINDOW);
        Ok(Behaviour {
            settings,
            replicas,
            after,
            notify,
            health: health_check(a)?,
            update_window,
        })
    }
}

/// The health check of the annotations, if `run.harun.health.cmd` is there.
fn health_check(a: &HashMap<String, String>) -> Result<Option<Check>> {
    let Some(cmd) = value(a, HEALTH_CMD, parse_argv)? else {
        let mut others: Vec<&String> = a
            .keys()
            .filter(|k| k.starts_with("run.harun.health."))
            .collect();
        harun_runtime::sort::sort(&mut others);
        return match others.first() {
            Some(key) => Err(
                Error::new(format!("needs `{HEALTH_CMD}` (the check to run)"))
                    .with_origin(format!("annotation `{key}`")),
            ),
            None => Ok(None),
        };
    };
    let mut check = Check::with_cmd(cmd);
    if let Some(d) = value(a, HEALTH_INTERVAL, parse_duration)? {
        check.interval = d;
    }
    if let Some(d) = value(a, HEALTH_TIMEOUT, parse_duration)? {
        check.timeout = d;
    }
    if let Some(n) = value(a, HEALTH_RETRIES, parse_retries)? {
        check.retries = n;
    }
    if let Some(d) = value(a, HEALTH_START_PERIOD, parse_duration)? {
        check.start_period = d;
    }
    if let Some(action) = value(a, HEALTH_ON_FAILURE, str::parse::<OnFailure>)? {
        check.on_failure = action;
    }
    if let Err((field, why)) = check.validate() {
        let key = format!("run.harun.health.{field}");
        return Err(Error::new(why).with_origin(format!("annotation `{key}`")));
    }
    Ok(Some(check))
}

/// The annotation `key` parsed by `parse`, if present; errors name the key.
fn value<T, E: Into<Error>>(
    annotations: &HashMap<String, String>,
    key: &str,
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> Result<Option<T>> {
    annotations
        .get(key)
        .map(|v| parse(v).map_err(|e| e.into().with_origin(format!("annotation `{key}`"))))
        .transpose()
}

fn parse_replicas(input: &str) -> Result<u32> {
    let bad = |why: &str| Error::invalid("replica count", input, why);
    if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a whole number"));
    }
    match input.parse::<u32>() {
        Ok(0) => Err(bad("must be at least 1")),
        Ok(n) if n <= MAX_REPLICAS => Ok(n),
        _ => Err(bad(&format!("at most {MAX_REPLICAS}"))),
    }
}

fn parse_retries(input: &str) -> Result<u32> {
    let bad = |why: &str| Error::invalid("retry count", input, why);
    if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a whole number"));
    }
    match input.parse::<u32>() {
        Ok(0) => Err(bad("must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(bad("too large")),
    }
}

fn parse_bool(input: &str) -> Result<bool> {
    match input {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::invalid("value", input, "use true or false")),
    }
}

/// Service names separated by commas and/or spaces: `db`, `db, cache`, `db cache`.
fn parse_names(input: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for name in input.split([',', ' ', '\t']).filter(|n| !n.is_empty()) {
        if validate_service_name(name).is_err() {
            return Err(Error::invalid(
                "service list",
                input,
                format!("`{name}` is not a service name"),
            ));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    if names.is_empty() {
        return Err(Error::invalid(
            "service list",
            input,
            "empty (name the services, e.g. `db, cache`)",
        ));
    }
    Ok(names)
}

/// A JSON array of strings, not empty.
fn parse_argv(input: &str) -> Result<Vec<String>> {
    let argv: Vec<String> = serde_json::from_slice(input.as_bytes()).map_err(|e| {
        Error::invalid(
            "command",
            input,
            format!("not a JSON array of strings, e.g. [\"sh\",\"-c\",\"test -f /ok\"] ({e})"),
        )
    })?;
    if argv.first().is_none_or(String::is_empty) {
        return Err(Error::invalid("command", input, "empty"));
    }
    Ok(argv)
}

/// A service name: a container ID that does not start with `.`.
pub fn validate_service_name(name: &str) -> std::result::Result<(), String> {
    if name.starts_with('.') || validate_id(name).is_err() {
        return Err(format!(
            "`{name}` is not a service name (letters, digits, `_`, `+`, `-`, `.`; not \
             starting with `.`)"
        ));
    }
    Ok(())
}

/// One version of a service's bundle, as loaded: where it is and its config.json as it was
/// then (containers are created from this copy, so a rollback gets the old config back
/// even after the file changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The bundle directory, canonical.
    pub bundle: PathBuf,
    /// config.json's bytes as read at load (shared by the replicas of the version; parsed
    /// when a replica is created: kept as text it costs a fifth of the parsed tree).
    pub config: Rc<[u8]>,
    /// FNV-1a of config.json's bytes: a changed file is a new version.
    pub digest: u64,
}

/// A service as loaded from its bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub version: Version,
    pub behaviour: Behaviour,
}

impl Service {
    /// Loads the bundle at `dir` as service `name`: the runtime's whole validation, then the
    /// supervision annotations. Errors start with "service `NAME`: ".
    pub fn load(name: &str, dir: &Path) -> harun_runtime::Result<Service> {
        let in_service = |e: harun_runtime::Error| in_service(name, e);
        validate_service_name(name).map_err(harun_runtime::Error::InvalidArgument)?;
        let version = load_version(dir).map_err(in_service)?;
        let behaviour = behaviour_of(&version).map_err(in_service)?;
        Ok(Service {
            name: name.to_string(),
            version,
            behaviour,
        })
    }

    /// The container ID of `slot`.
    pub fn container_id(&self, slot: Slot) -> String {
        container_id(&self.name, self.behaviour.replicas, slot)
    }

    /// The IDs of every replica, in slot order.
    pub fn replica_ids(&self) -> Vec<String> {
        (0..self.behaviour.replicas)
            .map(|i| self.container_id(Slot::Replica(i)))
            .collect()
    }
}

/// The runtime's validation of the bundle and a copy of its config.
pub fn load_version(dir: &Path) -> harun_runtime::Result<Version> {
    let bundle = harun_runtime::spec::load(dir)?;
    let path = bundle.dir.join("config.json");
    let text = fs::read(&path).map_err(harun_runtime::Error::io("read", &path))?;
    if let Err(e) = serde_json::from_slice::<Value>(&text) {
        return Err(harun_runtime::Error::spec(
            path.display().to_string(),
            e.to_string(),
        ));
    }
    Ok(Version {
        bundle: bundle.dir,
        digest: harun_runtime::hash::fnv1a(&text),
        config: text.into(),
    })
}

impl Version {
    /// The config, parsed.
    pub fn parsed(&self) -> harun_runtime::Result<Value> {
        serde_json::from_slice(&self.config).map_err(|e| {
            harun_runtime::Error::spec(
                self.bundle.join("config.json").display().to_string(),
                e.to_string(),
            )
        })
    }

    /// Its `annotations` (none when the config does not parse: the runtime says why).
    pub fn annotations(&self) -> HashMap<String, String> {
        #[derive(serde::Deserialize)]
        struct Annotated {
            #[serde(default)]
            annotations: HashMap<String, String>,
        }
        serde_json::from_slice::<Annotated>(&self.config)
            .map(|a| a.annotations)
            .unwrap_or_default()
    }
}

/// The behaviour a version's annotations ask for.
pub fn behaviour_of(version: &Version) -> harun_runtime::Result<Behaviour> {
    Ok(Behaviour::from_annotations(
        &version.annotations(),
        Overrides::default(),
    )?)
}

fn in_service(name: &str, e: harun_runtime::Error) -> harun_runtime::Error {
    use harun_runtime::Error as E;
    match e {
        E::InvalidArgument(m) => E::InvalidArgument(format!("service `{name}`: {m}")),
        E::InvalidSpec { field, reason } => E::InvalidSpec {
            field: format!("service `{name}`: {field}"),
            reason,
        },
        other => E::InvalidArgument(format!("service `{name}`: {other}")),
    }
}

/// `NAME` for one replica, `NAME-i` for several, `NAME-next` for the surge.
pub fn container_id(name: &str, replicas: u32, slot: Slot) -> String {
    match slot {
        Slot::Replica(_) if replicas == 1 => name.to_string(),
        Slot::Replica(i) => format!("{name}-{i}"),
        Slot::Surge => format!("{name}-next"),
    }
}

/// Every service of `dir`: each subdirectory (not starting with `.`) holding a config.json,
/// sorted by name; then the names checked together: no container ID claimed twice, every
/// `after` a service, no cycle.
pub fn scan(dir: &Path) -> harun_runtime::Result<Vec<Service>> {
    let entries = fs::read_dir(dir).map_err(harun_runtime::Error::io("read services dir", dir))?;
    let mut names: Vec<String> = Vec::new();
    for e in entries {
        let e = e.map_err(harun_runtime::Error::io("read services dir", dir))?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !e.path().join("config.json").is_file() {
            continue;
        }
        names.push(name);
    }
    harun_runtime::sort::sort(&mut names);
    let services = names
        .iter()
        .map(|n| Service::load(n, &dir.join(n)))
        .collect::<harun_runtime::Result<Vec<_>>>()?;
    check_together(&services).map_err(harun_runtime::Error::InvalidArgument)?;
    Ok(services)
}

/// Checks that hold between services: unique container IDs, known `after` names, no cycle.
pub fn check_together(services: &[Service]) -> std::result::Result<(), String> {
    let mut owner: HashMap<String, &str> = HashMap::new();
    for s in services {
        let ids = s
            .replica_ids()
            .into_iter()
            .chain([s.container_id(Slot::Surge)]);
        for id in ids {
            if let Some(other) = owner.insert(id.clone(), &s.name) {
                return Err(format!(
                    "services `{other}` and `{}` both name a container `{id}`; rename one",
                    s.name
                ));
            }
        }
    }
    let graph = crate::deps::graph(services.iter().map(|s| (&s.name, &s.behaviour.after)));
    crate::deps::start_order(&graph).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::OnFailure;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn behaviour(pairs: &[(&str, &str)]) -> Result<Behaviour> {
        Behaviour::from_annotations(&map(pairs), Overrides::default())
    }

    #[test]
    fn defaults_without_annotations() {
        let b = behaviour(&[("org.example", "x")]).unwrap();
        assert_eq!(
            b,
            Behaviour {
                settings: Settings::default(),
                replicas: 1,
                after: vec![],
                notify: false,
                health: None,
                update_window: Duration::from_secs(5),
            }
        );
    }

    #[test]
    fn reads_every_annotation() {
        let b = behaviour(&[
            ("run.harun.restart", "always"),
            (REPLICAS, "3"),
            (AFTER, "db, cache db"),
            (NOTIFY, "true"),
            (HEALTH_CMD, r#"["sh","-c","test -f /ok"]"#),
            (HEALTH_INTERVAL, "1s"),
            (HEALTH_TIMEOUT, "500ms"),
            (HEALTH_RETRIES, "2"),
            (HEALTH_START_PERIOD, "10s"),
            (HEALTH_ON_FAILURE, "kill"),
            (UPDATE_WINDOW, "2s"),
        ])
        .unwrap();
        assert_eq!(b.replicas, 3);
        assert_eq!(b.after, ["db", "cache"]);
        assert!(b.notify);
        assert_eq!(b.update_window, Duration::from_secs(2));
        assert_eq!(b.settings.policy, crate::RestartPolicy::Always);
        let h = b.health.unwrap();
        assert_eq!(h.cmd, ["sh", "-c", "test -f /ok"]);
        assert_eq!(h.interval, Duration::from_secs(1));
        assert_eq!(h.timeout, Duration::from_millis(500));
        assert_eq!(h.retries, 2);
        assert_eq!(h.start_period, Duration::from_secs(10));
        assert_eq!(h.on_failure, OnFailure::Kill);
    }

    #[test]
    fn bad_values_name_the_annotation() {
        let cases: &[(&str, &str, &str)] = &[
            (
                REPLICAS,
                "0",
                "invalid replica count `0`: must be at least 1",
            ),
            (REPLICAS, "101", "invalid replica count `101`: at most 100"),
            (
                REPLICAS,
                "-1",
                "invalid replica count `-1`: not a whole number",
            ),
            (AFTER, " , ", "invalid service list ` , `: empty"),
            (AFTER, "db/x", "`db/x` is not a service name"),
            (NOTIFY, "yes", "invalid value `yes`: use true or false"),
            (
                HEALTH_CMD,
                "test -f /ok",
                "invalid command `test -f /ok`: not a JSON array",
            ),
            (HEALTH_CMD, "[]", "invalid command `[]`: empty"),
            (
                UPDATE_WINDOW,
                "5x",
                "invalid duration `5x`: unknown unit `x`",
            ),
            ("run.harun.restart", "sometimes", "invalid restart policy"),
        ];
        for &(key, value, want) in cases {
            let err = behaviour(&[(key, value)]).expect_err(value).to_string();
            let prefix = format!("annotation `{key}`: ");
            assert!(err.starts_with(&prefix) && err.contains(want), "{err}");
        }
        let health = |k: &str, v: &str| {
            behaviour(&[(HEALTH_CMD, r#"["true"]"#), (k, v)])
                .expect_err(v)
                .to_string()
        };
        assert_eq!(
            health(HEALTH_RETRIES, "0"),
            format!("annotation `{HEALTH_RETRIES}`: invalid retry count `0`: must be at least 1")
        );
        assert_eq!(
            health(HEALTH_INTERVAL, "0"),
            format!("annotation `{HEALTH_INTERVAL}`: must be at least 1ms")
        );
        assert!(health(HEALTH_ON_FAILURE, "reboot").contains("use restart, kill, stop or none"));
        // A check setting without a check.
        let err = behaviour(&[(HEALTH_INTERVAL, "1s")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("annotation `{HEALTH_INTERVAL}`: needs `{HEALTH_CMD}` (the check to run)")
        );
    }

    #[test]
    fn misspelt_keys_are_errors() {
        let cases: &[(&str, &str)] = &[
            ("run.harun.replica", "did you mean `run.harun.replicas`?"),
            (
                "run.harun.health.command",
                "did you mean `run.harun.health.cmd`?",
            ),
            (
                "run.harun.health.intervall",
                "did you mean `run.harun.health.interval`?",
            ),
            (
                "run.harun.health.onfailure",
                "did you mean `run.harun.health.on-failure`?",
            ),
            (
                "run.harun.update.windows",
                "did you mean `run.harun.update.window`?",
            ),
            ("run.harun.notfy", "did you mean `run.harun.notify`?"),
            ("run.harun.aftr", "did you mean `run.harun.after`?"),
        ];
        for &(key, hint) in cases {
            let err = behaviour(&[(key, "1"), (HEALTH_CMD, "[\"true\"]")])
                .expect_err(key)
                .to_string();
            assert_eq!(
                err,
                format!("annotation `{key}`: unknown supervision annotation ({hint})")
            );
        }
        // Other run.harun keys are someone else's.
        assert!(behaviour(&[("run.harun.overlay", "true")]).is_ok());
    }

    #[test]
    fn container_ids() {
        assert_eq!(container_id("web", 1, Slot::Replica(0)), "web");
        assert_eq!(container_id("web", 3, Slot::Replica(2)), "web-2");
        assert_eq!(container_id("web", 1, Slot::Surge), "web-next");
        assert_eq!(container_id("web", 3, Slot::Surge), "web-next");
    }

    fn svc(name: &str, replicas: u32, after: &[&str]) -> Service {
        Service {
            name: name.into(),
            version: Version {
                bundle: PathBuf::from("/b"),
                config: Rc::from(&b"{}"[..]),
                digest: 0,
            },
            behaviour: Behaviour {
                replicas,
                after: after.iter().map(|s| s.to_string()).collect(),
                ..behaviour(&[]).unwrap()
            },
        }
    }

    #[test]
    fn services_are_checked_together() {
        assert_eq!(
            check_together(&[svc("a", 1, &[]), svc("b", 2, &["a"])]),
            Ok(())
        );
        let clash = check_together(&[svc("web", 3, &[]), svc("web-1", 1, &[])]);
        assert_eq!(
            clash.unwrap_err(),
            "services `web` and `web-1` both name a container `web-1`; rename one"
        );
        let cycle = check_together(&[svc("a", 1, &["b"]), svc("b", 1, &["a"])]);
        assert!(cycle.unwrap_err().contains("wait for each other"));
        assert!(validate_service_name(".hidden").is_err());
        assert!(validate_service_name("a b").is_err());
        assert!(validate_service_name("web_1.x").is_ok());
    }
}
