//! A tiny runner for a client suite: named checks run one after the other (they share a
//! daemon and images), each passing, failing with a message, or skipped with a reason.
//!
//! The suite binaries are `harness = false` test targets; their arguments are substring
//! filters on check names (`--exact` for whole names), like libtest's. The last line is
//! `test result: ...`, which integration/run-tests collects.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What a check returns: Err carries the failure's story.
pub type CheckResult = Result<(), String>;

/// Fails the check with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

#[derive(Debug)]
enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// The checks of one suite run so far.
#[derive(Debug)]
pub struct Suite {
    name: String,
    filters: Vec<String>,
    exact: bool,
    started: Instant,
    results: Vec<(String, Outcome)>,
}

impl Suite {
    /// A suite named `name`, filtered by the command line's non-flag arguments.
    pub fn from_args(name: &str) -> Suite {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let exact = args.iter().any(|a| a == "--exact");
        let filters = args.into_iter().filter(|a| !a.starts_with('-')).collect();
        Suite {
            name: name.to_string(),
            filters,
            exact,
            started: Instant::now(),
            results: Vec::new(),
        }
    }

    /// Whether the filters select check `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.filters.is_empty()
            || self.filters.iter().any(|f| {
                if self.exact {
                    f == name
                } else {
                    name.contains(f.as_str())
                }
            })
    }

    /// Runs check `name` (if selected): Ok passes, Err or a panic fails.
    pub fn check(&mut self, name: &str, f: impl FnOnce() -> CheckResult) {
        if !self.wants(name) {
            return;
        }
        eprintln!("check {name} ...");
        let t = Instant::now();
        let outcome = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(())) => Outcome::Passed,
            Ok(Err(msg)) => Outcome::Failed(msg),
            Err(panic) => Outcome::Failed(panic_text(&panic)),
        };
        self.report(name, outcome, t.elapsed());
    }

    /// Runs check `name` unless `skip` gives a reason not to.
    pub fn check_unless(
        &mut self,
        name: &str,
        skip: Option<String>,
        f: impl FnOnce() -> CheckResult,
    ) {
        match skip {
            Some(reason) => self.skip(name, &reason),
            None => self.check(name, f),
        }
    }

    /// Records check `name` as skipped, with the reason printed.
    pub fn skip(&mut self, name: &str, reason: &str) {
        if self.wants(name) {
            self.report(name, Outcome::Skipped(reason.to_string()), Duration::ZERO);
        }
    }

    /// Number of failed checks so far.
    pub fn failures(&self) -> usize {
        self.results
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
            .count()
    }

    fn report(&mut self, name: &str, outcome: Outcome, took: Duration) {
        let secs = took.as_secs_f64();
        match &outcome {
            Outcome::Passed => println!("check {name} ... ok ({secs:.1} s)"),
            Outcome::Skipped(why) => println!("check {name} ... skipped: {why}"),
            Outcome::Failed(msg) => {
                println!("check {name} ... FAILED ({secs:.1} s)");
                for line in msg.lines() {
                    println!("    {line}");
                }
            }
        }
        self.results.push((name.to_string(), outcome));
    }

    /// Prints the summary (`test result: ...`) and the exit code: failure if any check
    /// failed (skips are printed with their reasons, and are not failures).
    pub fn finish(self) -> ExitCode {
        let count = |f: fn(&Outcome) -> bool| self.results.iter().filter(|(_, o)| f(o)).count();
        let passed = count(|o| matches!(o, Outcome::Passed));
        let failed = count(|o| matches!(o, Outcome::Failed(_)));
        let skipped = count(|o| matches!(o, Outcome::Skipped(_)));
        if failed > 0 {
            println!("\nfailed checks of {}:", self.name);
            for (name, o) in &self.results {
                if matches!(o, Outcome::Failed(_)) {
                    println!("    {name}");
                }
            }
        }
        let ok = failed == 0;
        println!(
            "\ntest result: {}. {passed} passed; {failed} failed; {skipped} skipped; {} in {:.0} s",
            if ok { "ok" } else { "FAILED" },
            self.name,
            self.started.elapsed().as_secs_f64()
        );
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

/// Polls `f` every 50 ms until it gives Ok or `timeout` passes; returns the last Err then.
pub fn eventually<T>(
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("still not so after {timeout:?}: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
