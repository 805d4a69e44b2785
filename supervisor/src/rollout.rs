//! Rolling updates (`harun ctl update SERVICE --bundle NEW`, and `reload` of a changed
//! service): replace every replica by one of the new version without ever running fewer
//! ready replicas than the service has, and go back to the old version when a new replica
//! fails. Pure: the supervisor feeds what happened to the replicas it started and stopped,
//! and carries out the actions.
//!
//! With N replicas in slots `0 .. N-1` and one extra slot, the surge (`SERVICE-next`):
//!
//! ```text
//! start surge (new), wait until ready        capacity N+1 once ready
//! for each slot i: stop i (old), wait;       N ready: the surge stands in
//!                  start i (new), wait until ready
//! stop surge, wait                           N ready, all new
//! ```
//!
//! "Ready" is the supervisor's judgement: healthy when the service has a health check
//! (`READY=1` with the notify protocol), else still running after the update window; a
//! replica that exits, turns unhealthy or is not ready within the window has failed. A
//! failure rolls back: the failed replica is stopped, its slot and every slot already
//! replaced get the old version again (the same way, one at a time, while the surge stands
//! in), then the surge goes; when the surge itself failed, only the surge goes, and no old
//! replica was ever touched. A failure while rolling back ends the update as failed and
//! leaves the replicas to their restart policy.

use std::collections::VecDeque;
use std::fmt;

/// Where a replica runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// One of the service's replicas: `SERVICE-i` (`SERVICE` for a single replica).
    Replica(u32),
    /// The extra replica of an update: `SERVICE-next`.
    Surge,
}

/// Which bundle a replica runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Old,
    New,
}

/// What the supervisor should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a replica of `version` in `slot` (its container must not exist); report
    /// [`Input::Ready`] or [`Input::Failed`].
    Start(Slot, Version),
    /// Stop the replica in `slot` for good and remove its container; report
    /// [`Input::Stopped`] (at once if nothing runs there).
    Stop(Slot),
    /// The update is over.
    Finish(Outcome),
}

/// What happened to a replica the update started or stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Ready(Slot),
    /// It exited, turned unhealthy, failed to start or was not ready in time: why.
    Failed(Slot, String),
    Stopped(Slot),
}

/// How an update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every replica runs the new version.
    Updated,
    /// A new replica failed (the reason); every replica runs the old version again.
    RolledBack(String),
    /// Rolling back failed too (the reasons); the replicas are left to their policy.
    Failed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Updated => f.write_str("updated"),
            Outcome::RolledBack(why) => write!(f, "rolled back: {why}"),
            Outcome::Failed(why) => write!(f, "update failed: {why}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Act(Action),
    AwaitReady(Slot),
    AwaitStopped(Slot),
}

/// One update of one service, from its first action to its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    replicas: u32,
    steps: VecDeque<Step>,
    /// Replica slots that got the new version (in order).
    replaced: Vec<u32>,
    /// Why it is rolling back, once it is.
    failure: Option<String>,
    outcome: Option<Outcome>,
}

impl Rollout {
    /// An update of a service with `replicas` replicas (at least 1); returns the first
    /// actions.
    pub fn start(replicas: u32) -> (Rollout, Vec<Action>) {
        let mut steps = VecDeque::new();
        steps.extend(start(Slot::Surge, Version::New));
        for i in 0..replicas {
            steps.extend(replace(Slot::Replica(i), Version::New));
        }
        steps.extend(stop(Slot::Surge));
        steps.push_back(Step::Act(Action::Finish(Outcome::Updated)));
        let mut r = Rollout {
            replicas,
            steps,
            replaced: Vec::new(),
            failure: None,
            outcome: None,
        };
        let actions = r.advance();
        (r, actions)
    }

    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// The outcome, once finished.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// True while rolling back.
    pub fn rolling_back(&self) -> bool {
        self.failure.is_some()
    }

    /// The slot whose readiness the update waits for, if it waits for one.
    pub fn awaiting_ready(&self) -> Option<Slot> {
        match self.steps.front() {
            Some(Step::AwaitReady(slot)) => Some(*slot),
            _ => None,
        }
    }

    /// Takes what happened; returns the next actions. Inputs the update does not wait for
    /// (another replica's failure, a second report) are ignored: those replicas are left
    /// to their restart policy.
    pub fn on_input(&mut self, input: Input) -> Vec<Action> {
        match (self.steps.front(), input) {
            (Some(Step::AwaitReady(want)), Input::Ready(slot)) if *want == slot => {
                self.steps.pop_front();
                if let (Slot::Replica(i), None) = (slot, &self.failure) {
                    self.replaced.push(i);
                }
                self.advance()
            }
            (Some(Step::AwaitReady(want)), Input::Failed(slot, why)) if *want == slot => {
                self.fail(slot, why)
            }
            (Some(Step::AwaitStopped(want)), Input::Stopped(slot)) if *want == slot => {
                self.steps.pop_front();
                self.advance()
            }
            _ => Vec::new(),
        }
    }

    fn fail(&mut self, slot: Slot, why: String) -> Vec<Action> {
        if let Some(first) = &self.failure {
            let outcome = Outcome::Failed(format!("{first}; then rolling back: {why}"));
            self.steps.clear();
            self.steps.push_back(Step::Act(Action::Finish(outcome)));
            return self.advance();
        }
        self.failure = Some(why.clone());
        let mut steps = VecDeque::new();
        if let Slot::Replica(i) = slot {
            steps.extend(replace(Slot::Replica(i), Version::Old));
            for &j in self.replaced.iter().rev() {
                steps.extend(replace(Slot::Replica(j), Version::Old));
            }
        }
        steps.extend(stop(Slot::Surge));
        steps.push_back(Step::Act(Action::Finish(Outcome::RolledBack(why))));
        self.steps = steps;
        self.advance()
    }

    /// Emits actions up to the next wait.
    fn advance(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(Step::Act(action)) = self.steps.front() {
            let action = action.clone();
            self.steps.pop_front();
            if let Action::Finish(outcome) = &action {
                self.outcome = Some(outcome.clone());
                self.steps.clear();
            }
            actions.push(action);
        }
        actions
    }
}

fn start(slot: Slot, version: Version) -> [Step; 2] {
    [
        Step::Act(Action::Start(slot, version)),
        Step::AwaitReady(slot),
    ]
}

fn stop(slot: Slot) -> [Step; 2] {
    [Step::Act(Action::Stop(slot)), Step::AwaitStopped(slot)]
}

fn replace(slot: Slot, version: Version) -> [Step; 4] {
    let [a, b] = stop(slot);
    let [c, d] = start(slot, version);
    [a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::{Finish, Start, Stop};
    use Slot::{Replica as R, Surge};
    use Version::{New, Old};

    fn ready(s: Slot) -> Input {
        Input::Ready(s)
    }

    fn stopped(s: Slot) -> Input {
        Input::Stopped(s)
    }

    fn failed(s: Slot) -> Input {
        Input::Failed(s, format!("{s:?} exited"))
    }

    /// Starts an update of `n` replicas and feeds `steps` (input, expected actions).
    fn check(n: u32, first: &[Action], steps: &[(Input, &[Action])]) -> Rollout {
        let (mut r, actions) = Rollout::start(n);
        assert_eq!(actions, first);
        for (i, (input, want)) in steps.iter().enumerate() {
            let got = r.on_input(input.clone());
            assert_eq!(got, *want, "step {i}: {input:?}");
        }
        r
    }

    #[test]
    fn a_good_update_replaces_every_replica_behind_the_surge() {
        let r = check(
            3,
            &[Start(Surge, New)],
            &[
                (ready(Surge), &[Stop(R(0))]),
                (stopped(R(0)), &[Start(R(0), New)]),
                (ready(R(0)), &[Stop(R(1))]),
                (stopped(R(1)), &[Start(R(1), New)]),
                (ready(R(1)), &[Stop(R(2))]),
                (stopped(R(2)), &[Start(R(2), New)]),
                (ready(R(2)), &[Stop(Surge)]),
                (stopped(Surge), &[Finish(Outcome::Updated)]),
            ],
        );
        assert_eq!(r.outcome(), Some(&Outcome::Updated));
        assert_eq!(r.awaiting_ready(), None);
    }

    #[test]
    fn a_failed_surge_touches_no_old_replica() {
        let why = "Surge exited".to_string();
        let r = check(
            2,
            &[Start(Surge, New)],
            &[
                (failed(Surge), &[Stop(Surge)]),
                (stopped(Surge), &[Finish(Outcome::RolledBack(why.clone()))]),
            ],
        );
        assert_eq!(r.outcome(), Some(&Outcome::RolledBack(why)));
    }

    #[test]
    fn a_failure_midway_puts_the_old_version_back_in_every_replaced_slot() {
        let why = "Replica(1) exited".to_string();
        let r = check(
            3,
            &[Start(Surge, New)],
            &[
                (ready(Surge), &[Stop(R(0))]),
                (stopped(R(0)), &[Start(R(0), New)]),
                (ready(R(0)), &[Stop(R(1))]),
                (stopped(R(1)), &[Start(R(1), New)]),
                (failed(R(1)), &[Stop(R(1))]),
                (stopped(R(1)), &[Start(R(1), Old)]),
                (ready(R(1)), &[Stop(R(0))]),
                (stopped(R(0)), &[Start(R(0), Old)]),
                (ready(R(0)), &[Stop(Surge)]),
                (stopped(Surge), &[Finish(Outcome::RolledBack(why))]),
            ],
        );
        assert!(r.rolling_back());
    }

    #[test]
    fn a_failure_while_rolling_back_ends_the_update() {
        let r = check(
            1,
            &[Start(Surge, New)],
            &[
                (ready(Surge), &[Stop(R(0))]),
                (stopped(R(0)), &[Start(R(0), New)]),
                (failed(R(0)), &[Stop(R(0))]),
                (stopped(R(0)), &[Start(R(0), Old)]),
                (
                    failed(R(0)),
                    &[Finish(Outcome::Failed(
                        "Replica(0) exited; then rolling back: Replica(0) exited".into(),
                    ))],
                ),
            ],
        );
        assert!(matches!(r.outcome(), Some(Outcome::Failed(_))));
    }

    #[test]
    fn inputs_not_waited_for_are_ignored() {
        let (mut r, _) = Rollout::start(2);
        assert_eq!(r.awaiting_ready(), Some(Surge));
        for input in [ready(R(0)), failed(R(1)), stopped(Surge), stopped(R(0))] {
            assert_eq!(r.on_input(input), Vec::new());
        }
        assert_eq!(r.on_input(ready(Surge)), [Stop(R(0))]);
        // Waiting for a stop: a failure of the slot being stopped is not a failure of the
        // update.
        assert_eq!(r.on_input(failed(R(0))), Vec::new());
        assert_eq!(r.on_input(stopped(R(0))), [Start(R(0), New)]);
        // After the end, nothing.
        let (mut done, _) = Rollout::start(1);
        done.on_input(failed(Surge));
        done.on_input(stopped(Surge));
        assert!(done.outcome().is_some());
        assert_eq!(done.on_input(ready(Surge)), Vec::new());
    }

    #[test]
    fn outcomes_read_well() {
        assert_eq!(Outcome::Updated.to_string(), "updated");
        assert_eq!(
            Outcome::RolledBack("web-next exited with code 1".into()).to_string(),
            "rolled back: web-next exited with code 1"
        );
    }
}
