//! Table tests of the policy engine: sequences of (time, event) with the decision expected
//! at each step, on a fake clock (milliseconds), plus the parsers of policy and limit.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const START: Event = Event::Started;
const STOP: Event = Event::StopRequested { timeout: None };
const FAILED_START: Event = Event::StartFailed;
const UP_RUNNING: Event = Event::DaemonRestart { running: true };
const UP_STOPPED: Event = Event::DaemonRestart { running: false };

fn code(c: i32) -> Event {
    Event::Exited {
        status: ExitStatus::Code(c),
    }
}

fn signal(s: i32) -> Event {
    Event::Exited {
        status: ExitStatus::Signal(s),
    }
}

const KEEP: Decision = Decision::KeepRunning;
const TERM: Decision = Decision::Terminate {
    grace: Duration::from_secs(10),
};
const STAY_NO: Decision = Decision::StayStopped(StopReason::PolicyNo);
const STAY_OK: Decision = Decision::StayStopped(StopReason::Succeeded);
const STAY_USER: Decision = Decision::StayStopped(StopReason::StopRequested);
const STAY_GAVE_UP: Decision = Decision::StayStopped(StopReason::GaveUp);

fn after(n: u64) -> Decision {
    Decision::RestartAfter(ms(n))
}

fn max_retries(retries: u32) -> Decision {
    Decision::GiveUp(GiveUpReason::MaxRetries { retries })
}

fn crash_loop(exits: u32, window_ms: u64) -> Decision {
    Decision::GiveUp(GiveUpReason::CrashLoop {
        exits,
        window: ms(window_ms),
    })
}

fn settings(policy: &str) -> Settings {
    Settings {
        policy: policy.parse().expect("test policy"),
        ..Settings::default()
    }
}

fn with_limit(policy: &str, limit: &str) -> Settings {
    Settings {
        crash_loop: Some(limit.parse().expect("test limit")),
        ..settings(policy)
    }
}

/// Feeds `steps` (time in ms, event, expected decision) to a fresh supervision.
fn check(settings: Settings, steps: &[(u64, Event, Decision)]) -> Supervision {
    let mut state = Supervision::new(settings);
    check_more(&mut state, steps);
    state
}

fn check_more(state: &mut Supervision, steps: &[(u64, Event, Decision)]) {
    for (i, &(at, event, want)) in steps.iter().enumerate() {
        let got = state.on_event(event, Timestamp::from_millis(at));
        assert_eq!(
            got, want,
            "step {i}: {event:?} at {at} ms, state {state:#?}"
        );
    }
}

/// Quick crashes (10 ms runs) restarted as soon as asked, starting at `t`; one step list
/// per crash, expecting `delays` in order.
fn quick_crashes(mut t: u64, delays: &[u64]) -> Vec<(u64, Event, Decision)> {
    let mut steps = Vec::new();
    for &delay in delays {
        steps.push((t, START, KEEP));
        steps.push((t + 10, code(1), after(delay)));
        t += 10 + delay;
    }
    steps
}

#[test]
fn each_policy_decides_by_exit_status() {
    let cases: &[(&str, Event, Decision)] = &[
        ("no", code(0), STAY_NO),
        ("no", code(1), STAY_NO),
        ("no", signal(9), STAY_NO),
        ("on-failure", code(0), STAY_OK),
        ("on-failure", code(1), after(100)),
        ("on-failure", code(137), after(100)),
        ("on-failure", signal(9), after(100)),
        ("on-failure:3", code(0), STAY_OK),
        ("on-failure:3", signal(15), after(100)),
        ("always", code(0), after(100)),
        ("always", code(2), after(100)),
        ("always", signal(9), after(100)),
        ("unless-stopped", code(0), after(100)),
        ("unless-stopped", signal(11), after(100)),
    ];
    for &(policy, exit, want) in cases {
        let state = check(settings(policy), &[(0, START, KEEP), (50, exit, want)]);
        let restarted = matches!(want, Decision::RestartAfter(_));
        assert_eq!(
            state.restart_count,
            u32::from(restarted),
            "{policy} {exit:?}"
        );
        assert_eq!(
            state.next_restart_at.is_some(),
            restarted,
            "{policy} {exit:?}"
        );
        let last = state.last_exit.expect("last exit recorded");
        assert_eq!(
            (last.at, last.ran_for),
            (Timestamp::from_millis(50), ms(50))
        );
        assert!(!state.is_running());
    }
}

#[test]
fn backoff_doubles_per_quick_failure_up_to_the_cap() {
    let delays = [
        100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200, 60_000, 60_000, 60_000,
    ];
    for policy in ["always", "unless-stopped", "on-failure"] {
        let state = check(settings(policy), &quick_crashes(0, &delays));
        assert_eq!(state.restart_count, 13, "{policy}");
        assert_eq!(state.delay, Some(ms(60_000)), "{policy}");
    }
}

#[test]
fn custom_backoff_numbers() {
    let mut s = settings("always");
    s.backoff = Backoff {
        initial: ms(1_000),
        factor: 3,
        max: ms(5_000),
        reset_after: ms(60_000),
    };
    check(s, &quick_crashes(0, &[1_000, 3_000, 5_000, 5_000]));
    s.backoff.factor = 1;
    check(s, &quick_crashes(0, &[1_000, 1_000, 1_000]));
}

#[test]
fn zero_delay_restarts_at_once_then_backs_off() {
    let mut s = settings("always");
    s.backoff.initial = Duration::ZERO;
    // The first restart since a reset at once; a container that keeps failing still backs
    // off from 1 ms, doubling: it cannot spin.
    check(s, &quick_crashes(0, &[0, 1, 2, 4, 8]));
    s.backoff.factor = 1;
    check(s, &quick_crashes(0, &[0, 1, 1, 1]));
    // A run of reset_after starts over at zero.
    let mut steps = quick_crashes(0, &[0, 1]);
    steps.extend([(100, START, KEEP), (10_100, code(1), after(0))]);
    check(s, &steps);
}

#[test]
fn backoff_resets_after_a_long_enough_run() {
    let mut steps = quick_crashes(0, &[100, 200]);
    // t = 330: a run of exactly reset_after (10 s) resets to the first delay.
    steps.extend([
        (330, START, KEEP),
        (10_330, code(1), after(100)),
        (10_430, START, KEEP),
        (10_440, code(1), after(200)),
    ]);
    check(settings("always"), &steps);

    // One millisecond short of it does not.
    let mut steps = quick_crashes(0, &[100, 200]);
    steps.extend([(330, START, KEEP), (10_329, code(1), after(400))]);
    check(settings("always"), &steps);
}

#[test]
fn on_failure_max_retries_counts_restarts() {
    // on-failure:3 and a container that always exits 1: exactly 3 restarts, then give up.
    let mut steps = quick_crashes(0, &[100, 200, 400]);
    steps.extend([(740, START, KEEP), (750, code(1), max_retries(3))]);
    let mut state = check(settings("on-failure:3"), &steps);
    assert_eq!(state.restart_count, 3);
    assert_eq!(state.gave_up, Some(GiveUpReason::MaxRetries { retries: 3 }));
    assert_eq!(state.next_restart_at, None);
    assert_eq!(
        state.last_exit.map(|e| e.status),
        Some(Some(ExitStatus::Code(1)))
    );
    // Given up is final, whatever comes next.
    check_more(
        &mut state,
        &[
            (800, UP_STOPPED, STAY_GAVE_UP),
            (900, START, TERM),
            (950, code(1), STAY_GAVE_UP),
            (1_000, STOP, STAY_USER),
            (1_100, UP_STOPPED, STAY_GAVE_UP),
        ],
    );

    // A success in between stops on-failure without counting as a failure.
    check(
        settings("on-failure:1"),
        &[
            (0, START, KEEP),
            (10, code(1), after(100)),
            (110, START, KEEP),
            (120, code(0), STAY_OK),
        ],
    );
}

#[test]
fn a_long_run_resets_the_retry_count() {
    // Decided in `Supervision`'s doc: on-failure:N is N failed restarts in a row.
    let mut steps = quick_crashes(0, &[100, 200]);
    steps.extend([
        (330, START, KEEP),
        (20_330, code(1), after(100)), // ran 20 s: retries back to 0, then 1
        (20_430, START, KEEP),
        (20_440, code(1), after(200)),
        (20_640, START, KEEP),
        (20_650, code(1), max_retries(2)),
    ]);
    let state = check(settings("on-failure:2"), &steps);
    assert_eq!(state.restart_count, 4);
}

#[test]
fn crash_loop_gives_up_at_the_nth_exit_within_the_window() {
    let mut steps = quick_crashes(0, &[100, 200]);
    steps.extend([(330, START, KEEP), (340, code(1), crash_loop(3, 10_000))]);
    let state = check(with_limit("always", "3/10s"), &steps);
    assert_eq!(state.restart_count, 2);
    assert_eq!(state.recent_exits.len(), 3);

    // Exits exactly one window apart are within it; one millisecond more is not.
    let spaced = |last: u64, want: Decision| {
        vec![
            (0, START, KEEP),
            (1_000, code(1), after(100)),
            (1_100, START, KEEP),
            (6_000, code(1), after(200)),
            (6_200, START, KEEP),
            (last, code(1), want),
        ]
    };
    check(
        with_limit("always", "3/10s"),
        &spaced(11_000, crash_loop(3, 10_000)),
    );
    let state = check(with_limit("always", "3/10s"), &spaced(11_001, after(400)));
    assert_eq!(state.recent_exits.len(), 2, "old exits leave the window");
}

#[test]
fn crash_loop_counts_long_runs_and_failed_starts() {
    // Runs longer than reset_after keep the delay at 100 ms but still count as exits.
    let steps = [
        (0, START, KEEP),
        (15_000, code(1), after(100)),
        (15_100, START, KEEP),
        (30_100, code(1), after(100)),
        (30_200, START, KEEP),
        (45_200, code(1), crash_loop(3, 60_000)),
    ];
    check(with_limit("always", "3/1m"), &steps);

    let steps = [
        (0, START, KEEP),
        (10, code(1), after(100)),
        (110, FAILED_START, crash_loop(2, 1_000)),
    ];
    check(with_limit("on-failure", "2/1s"), &steps);
}

#[test]
fn exits_that_are_not_restarted_do_not_count_for_the_crash_loop() {
    let steps = [
        (0, START, KEEP),
        (10, code(0), STAY_OK),
        (20, START, KEEP),
        (30, code(0), STAY_OK),
        (40, START, KEEP),
        (50, STOP, TERM),
        (60, signal(15), STAY_USER),
    ];
    let state = check(with_limit("on-failure", "2/1m"), &steps);
    assert!(state.recent_exits.is_empty());
    assert_eq!(state.gave_up, None);
}

#[test]
fn an_intentional_stop_never_restarts() {
    for policy in [
        "no",
        "on-failure",
        "on-failure:3",
        "always",
        "unless-stopped",
    ] {
        for exit in [signal(15), signal(9), code(143), code(0), code(1)] {
            let state = check(
                settings(policy),
                &[
                    (0, START, KEEP),
                    (1_000, STOP, TERM),
                    (1_500, exit, STAY_USER),
                ],
            );
            assert!(state.stop_requested, "{policy}");
            assert_eq!(state.restart_count, 0, "{policy}");
        }
    }
}

#[test]
fn stop_timeout_comes_from_the_request_or_the_settings() {
    let grace = |n| Decision::Terminate { grace: ms(n) };
    let stop_in = |n| Event::StopRequested {
        timeout: Some(ms(n)),
    };
    check(
        settings("always"),
        &[(0, START, KEEP), (5, stop_in(3_000), grace(3_000))],
    );
    check(
        settings("always"),
        &[(0, START, KEEP), (5, stop_in(0), grace(0))],
    );
    let mut s = settings("always");
    s.stop_timeout = ms(30_000);
    check(s, &[(0, START, KEEP), (5, STOP, grace(30_000))]);
}

#[test]
fn a_stop_cancels_a_pending_restart() {
    let steps = [
        (0, START, KEEP),
        (10, code(1), after(100)),
        (50, STOP, STAY_USER),
        // The restart was already underway: the engine asks to terminate it.
        (110, START, TERM),
        (200, signal(15), STAY_USER),
        (300, STOP, STAY_USER),
    ];
    let state = check(settings("always"), &steps);
    assert_eq!(state.next_restart_at, None);
    assert_eq!(state.restart_count, 1);
}

#[test]
fn supervisor_restart_after_a_user_stop_always_vs_unless_stopped() {
    let stopped = [
        (0, START, KEEP),
        (1_000, STOP, TERM),
        (1_100, signal(15), STAY_USER),
    ];
    // always: restarted at once when the supervisor starts again, and supervised as before.
    let mut state = check(settings("always"), &stopped);
    check_more(
        &mut state,
        &[
            (5_000, UP_STOPPED, after(0)),
            (5_010, START, KEEP),
            (5_020, code(1), after(100)),
        ],
    );
    assert!(!state.stop_requested);
    assert_eq!(state.restart_count, 2);

    // unless-stopped (and on-failure, no): stays stopped, however often the supervisor starts.
    for policy in ["unless-stopped", "on-failure", "no"] {
        let mut state = check(settings(policy), &stopped);
        check_more(
            &mut state,
            &[
                (5_000, UP_STOPPED, STAY_USER),
                (6_000, UP_STOPPED, STAY_USER),
            ],
        );
        assert!(state.stop_requested, "{policy}");
    }

    // The supervisor died mid-stop and the container died meanwhile: same rule.
    let steps = [
        (0, START, KEEP),
        (1_000, STOP, TERM),
        (5_000, UP_STOPPED, STAY_USER),
    ];
    let state = check(settings("unless-stopped"), &steps);
    assert_eq!(state.last_exit.map(|e| e.status), Some(None));
    assert!(!state.is_running());
    let steps = [
        (0, START, KEEP),
        (1_000, STOP, TERM),
        (5_000, UP_STOPPED, after(0)),
    ];
    check(settings("always"), &steps);
}

#[test]
fn supervisor_restart_readopts_a_live_container() {
    // The run keeps its original start time.
    let state = check(
        settings("always"),
        &[(0, START, KEEP), (1_000, UP_RUNNING, KEEP)],
    );
    assert_eq!(state.started_at, Some(Timestamp::from_millis(0)));

    // Started by a restart the old supervisor did not see confirmed: counted from now.
    let steps = [
        (0, START, KEEP),
        (10, code(1), after(100)),
        (500, UP_RUNNING, KEEP),
    ];
    let state = check(settings("always"), &steps);
    assert_eq!(state.started_at, Some(Timestamp::from_millis(500)));
    assert_eq!(state.next_restart_at, None);

    // A stop was in progress: finish it.
    let steps = [(0, START, KEEP), (100, STOP, TERM), (200, UP_RUNNING, TERM)];
    check(settings("unless-stopped"), &steps);
}

#[test]
fn supervisor_restart_finds_the_container_dead() {
    // It died while nobody watched: an unknown status counts as a failure.
    for (policy, want) in [
        ("no", STAY_NO),
        ("on-failure", after(100)),
        ("always", after(100)),
        ("unless-stopped", after(100)),
    ] {
        let state = check(
            settings(policy),
            &[(0, START, KEEP), (1_000, UP_STOPPED, want)],
        );
        assert_eq!(state.last_exit.map(|e| e.status), Some(None), "{policy}");
    }

    // A pending restart resumes with the time left.
    let mut steps = quick_crashes(0, &[100, 200, 400]); // last restart due at 730
    steps.extend([(500, UP_STOPPED, after(230)), (2_000, UP_STOPPED, after(0))]);
    let state = check(settings("always"), &steps);
    assert_eq!(state.restart_count, 3, "resuming is not another restart");

    // Stopped by its policy: stays stopped.
    check(
        settings("no"),
        &[
            (0, START, KEEP),
            (10, code(1), STAY_NO),
            (20, UP_STOPPED, STAY_NO),
        ],
    );
    let steps = [
        (0, START, KEEP),
        (10, code(0), STAY_OK),
        (20, UP_STOPPED, STAY_OK),
    ];
    check(settings("on-failure"), &steps);

    // Never started: start it now (not counted as a restart).
    for policy in ["no", "on-failure", "always", "unless-stopped"] {
        let state = check(
            settings(policy),
            &[(0, UP_STOPPED, after(0)), (5, START, KEEP)],
        );
        assert_eq!(state.restart_count, 0, "{policy}");
    }
}

const LOST: Event = Event::Lost;
const UNHEALTHY: Event = Event::Unhealthy;
const SHUTDOWN: Event = Event::Shutdown { timeout: None };
const STAY_SHUTDOWN: Decision = Decision::StayStopped(StopReason::Shutdown);

#[test]
fn a_lost_container_is_a_failure_of_unknown_status() {
    for (policy, want) in [
        ("no", STAY_NO),
        ("on-failure", after(100)),
        ("always", after(100)),
        ("unless-stopped", after(100)),
    ] {
        let state = check(settings(policy), &[(0, START, KEEP), (700, LOST, want)]);
        let last = state.last_exit.expect("an exit");
        assert_eq!((last.status, last.ran_for), (None, ms(700)), "{policy}");
    }
    // After a stop request it is the stop's exit.
    check(
        settings("always"),
        &[(0, START, KEEP), (5, STOP, TERM), (9, LOST, STAY_USER)],
    );
}

#[test]
fn an_unhealthy_container_is_stopped_then_restarted_whatever_the_policy() {
    for policy in ["no", "on-failure", "always", "unless-stopped"] {
        // Even an exit 0 after the TERM restarts it.
        let state = check(
            settings(policy),
            &[
                (0, START, KEEP),
                (5_000, UNHEALTHY, TERM),
                (5_100, code(0), after(100)),
                (5_200, START, KEEP),
                (
                    6_000,
                    code(0),
                    if policy == "no" {
                        STAY_NO
                    } else if policy == "on-failure" {
                        STAY_OK
                    } else {
                        after(200)
                    },
                ),
            ],
        );
        assert!(!state.forced_restart, "{policy}: used once");
    }
    // Retries and the crash-loop limit still count.
    check(
        settings("on-failure:1"),
        &[
            (0, START, KEEP),
            (10, UNHEALTHY, TERM),
            (20, signal(15), after(100)),
            (120, START, KEEP),
            (130, UNHEALTHY, TERM),
            (140, signal(15), max_retries(1)),
        ],
    );
    // Not running, stopped or shutting down: nothing more.
    check(settings("always"), &[(0, UNHEALTHY, KEEP)]);
    check(
        settings("always"),
        &[
            (0, START, KEEP),
            (5, STOP, TERM),
            (6, UNHEALTHY, TERM),
            (7, code(0), STAY_USER),
        ],
    );
}

#[test]
fn shutdown_stops_without_a_user_stop_and_the_next_start_runs_it_again() {
    for policy in [
        "no",
        "on-failure",
        "on-failure:2",
        "always",
        "unless-stopped",
    ] {
        let mut state = check(
            settings(policy),
            &[
                (0, START, KEEP),
                (1_000, SHUTDOWN, TERM),
                (1_050, signal(15), STAY_SHUTDOWN),
            ],
        );
        assert!(!state.stop_requested && state.shutdown, "{policy}");
        check_more(
            &mut state,
            &[(9_000, UP_STOPPED, after(0)), (9_010, START, KEEP)],
        );
        assert_eq!(state.restart_count, 0, "{policy}: a start, not a restart");
        assert!(!state.shutdown);
    }
    // What the user stopped stays stopped, except under `always`.
    for (policy, want) in [
        ("on-failure", STAY_USER),
        ("unless-stopped", STAY_USER),
        ("always", after(0)),
    ] {
        check(
            settings(policy),
            &[
                (0, START, KEEP),
                (10, STOP, TERM),
                (20, code(0), STAY_USER),
                (30, SHUTDOWN, STAY_SHUTDOWN),
                (90, UP_STOPPED, want),
            ],
        );
    }
    // A pending restart is cancelled; a restart that was underway is stopped at once.
    check(
        settings("always"),
        &[
            (0, START, KEEP),
            (10, code(1), after(100)),
            (20, SHUTDOWN, STAY_SHUTDOWN),
            (30, START, TERM),
            (40, code(0), STAY_SHUTDOWN),
            (50, UP_STOPPED, after(0)),
        ],
    );
    // Killed while shutting down: the new supervisor adopts what still runs.
    let state = check(
        settings("always"),
        &[
            (0, START, KEEP),
            (10, SHUTDOWN, TERM),
            (20, UP_RUNNING, KEEP),
        ],
    );
    assert!(!state.shutdown);
    // Given up stays given up.
    check(
        with_limit("always", "2/1s"),
        &[
            (0, START, KEEP),
            (10, code(1), after(100)),
            (110, START, KEEP),
            (120, code(1), crash_loop(2, 1_000)),
            (130, SHUTDOWN, STAY_SHUTDOWN),
            (140, UP_STOPPED, STAY_GAVE_UP),
        ],
    );
}

#[test]
fn failed_starts_count_as_failed_runs() {
    let steps = [
        (0, START, KEEP),
        (10, code(1), after(100)),
        (110, FAILED_START, after(200)),
        (310, FAILED_START, after(400)),
    ];
    check(settings("always"), &steps);
    let steps = [
        (0, START, KEEP),
        (10, code(1), after(100)),
        (110, FAILED_START, max_retries(1)),
    ];
    check(settings("on-failure:1"), &steps);
    check(settings("no"), &[(0, FAILED_START, STAY_NO)]);
}

#[test]
fn odd_event_orders_stay_sane() {
    // A clock going backwards reads as a zero-length run.
    let state = check(
        settings("always"),
        &[(1_000, START, KEEP), (500, code(1), after(100))],
    );
    assert_eq!(state.last_exit.map(|e| e.ran_for), Some(Duration::ZERO));

    // A second Started keeps the first start time; an exit without Started is a 0 ms run.
    let steps = [
        (0, START, KEEP),
        (100, START, KEEP),
        (10_000, code(1), after(100)),
    ];
    let state = check(settings("always"), &steps);
    assert_eq!(state.last_exit.map(|e| e.ran_for), Some(ms(10_000)));
    let state = check(settings("always"), &[(10_000, code(1), after(100))]);
    assert_eq!(state.last_exit.map(|e| e.ran_for), Some(Duration::ZERO));

    // Extreme numbers saturate instead of overflowing.
    let mut s = settings("always");
    s.backoff = Backoff {
        initial: Duration::MAX,
        factor: u32::MAX,
        max: Duration::MAX,
        reset_after: Duration::MAX,
    };
    let steps = [
        (u64::MAX - 1, START, KEEP),
        (u64::MAX, code(1), Decision::RestartAfter(Duration::MAX)),
        (u64::MAX, code(1), Decision::RestartAfter(Duration::MAX)),
    ];
    let state = check(s, &steps);
    assert_eq!(
        state.next_restart_at,
        Some(Timestamp::from_millis(u64::MAX))
    );
}

#[test]
fn a_manual_start_resets_everything_but_the_settings() {
    let mut steps = quick_crashes(0, &[100]);
    steps.extend([(110, START, KEEP), (120, code(1), max_retries(1))]);
    let mut state = check(settings("on-failure:1"), &steps);
    state.reset();
    assert_eq!(state, Supervision::new(settings("on-failure:1")));
    check_more(
        &mut state,
        &[(1_000, START, KEEP), (1_010, code(1), after(100))],
    );
}

#[test]
fn parses_restart_policies() {
    let cases: &[(&str, RestartPolicy)] = &[
        ("no", RestartPolicy::No),
        ("on-failure", RestartPolicy::OnFailure { max_retries: None }),
        (
            "on-failure:5",
            RestartPolicy::OnFailure {
                max_retries: Some(5),
            },
        ),
        (
            "on-failure:4294967295",
            RestartPolicy::OnFailure {
                max_retries: Some(u32::MAX),
            },
        ),
        ("always", RestartPolicy::Always),
        ("unless-stopped", RestartPolicy::UnlessStopped),
    ];
    for &(input, want) in cases {
        assert_eq!(input.parse::<RestartPolicy>(), Ok(want), "{input}");
        assert_eq!(want.to_string(), input);
    }
    assert_eq!(RestartPolicy::default(), RestartPolicy::No);
}

#[test]
fn rejects_bad_restart_policies() {
    const HINT: &str = "(use no, on-failure, on-failure:N, always, unless-stopped)";
    let cases: &[(&str, &str)] = &[
        ("", &format!("empty {HINT}")),
        ("sometimes", &format!("unknown policy `sometimes` {HINT}")),
        ("Always", &format!("unknown policy `Always` {HINT}")),
        ("on_failure", &format!("unknown policy `on_failure` {HINT}")),
        ("yes:3", &format!("unknown policy `yes` {HINT}")),
        (
            "on-failure:",
            "missing retry count after `:` (write e.g. on-failure:5)",
        ),
        (
            "on-failure:0",
            "retry count must be at least 1 (`on-failure` alone has no limit, `no` never restarts)",
        ),
        ("on-failure:-1", "retry count `-1` is not a whole number"),
        ("on-failure:x", "retry count `x` is not a whole number"),
        ("on-failure:5:6", "retry count `5:6` is not a whole number"),
        ("on-failure: 5", "retry count ` 5` is not a whole number"),
        (
            "on-failure:4294967296",
            "retry count `4294967296` is too large",
        ),
        (
            "always:3",
            "`always` takes no retry count (only on-failure:N does)",
        ),
        ("no:1", "`no` takes no retry count (only on-failure:N does)"),
        (
            "unless-stopped:",
            "`unless-stopped` takes no retry count (only on-failure:N does)",
        ),
    ];
    for &(input, reason) in cases {
        let err = input.parse::<RestartPolicy>().expect_err(input);
        assert_eq!(
            err.to_string(),
            format!("invalid restart policy `{input}`: {reason}")
        );
    }
}

#[test]
fn parses_crash_loop_limits() {
    let cases: &[(&str, u32, u64, &str)] = &[
        ("5/30s", 5, 30_000, "5/30s"),
        ("2/1m30s", 2, 90_000, "2/1m30s"),
        ("10/500ms", 10, 500, "10/500ms"),
        ("3/60s", 3, 60_000, "3/1m"),
        ("5/30", 5, 30_000, "5/30s"),
    ];
    for &(input, max_exits, window, shown) in cases {
        let want = CrashLoop {
            max_exits,
            window: ms(window),
        };
        assert_eq!(input.parse::<CrashLoop>(), Ok(want), "{input}");
        assert_eq!(want.to_string(), shown);
    }
}

#[test]
fn rejects_bad_crash_loop_limits() {
    let cases: &[(&str, &str)] = &[
        (
            "5",
            "missing `/S` (write N/S: N exits within S, e.g. `5/30s`)",
        ),
        (
            "",
            "missing `/S` (write N/S: N exits within S, e.g. `5/30s`)",
        ),
        ("/30s", "exit count `` is not a whole number"),
        ("x/30s", "exit count `x` is not a whole number"),
        ("-1/30s", "exit count `-1` is not a whole number"),
        (
            "0/30s",
            "exit count must be at least 2 (0 would give up at the first exit)",
        ),
        (
            "1/30s",
            "exit count must be at least 2 (1 would give up at the first exit)",
        ),
        ("99999999999/1s", "exit count `99999999999` is too large"),
        (
            "5/",
            "invalid duration ``: empty (write e.g. `100ms`, `10s`, `1m30s`)",
        ),
        (
            "5/1.5",
            "invalid duration `1.5`: fractions are not supported (write `1500ms` for 1.5s)",
        ),
        (
            "5/-1s",
            "invalid duration `-1s`: negative durations are not allowed",
        ),
        (
            "5/30s/2",
            "invalid duration `30s/2`: expected a number, found `/`",
        ),
        ("5/0", "window must be longer than 0"),
        ("5/0s", "window must be longer than 0"),
    ];
    for &(input, reason) in cases {
        let err = input.parse::<CrashLoop>().expect_err(input);
        assert_eq!(
            err.to_string(),
            format!("invalid restart limit `{input}`: {reason}")
        );
    }
}

#[test]
fn validates_backoff() {
    assert_eq!(Backoff::default().validate(), Ok(()));
    assert_eq!(Settings::default().validate(), Ok(()));
    let bad = |b: Backoff| b.validate().expect_err("invalid").to_string();
    let base = Backoff::default();
    // Zero: the first restart at once (then 1 ms, doubling); a zero cap is refused.
    assert_eq!(
        Backoff {
            initial: Duration::ZERO,
            ..base
        }
        .validate(),
        Ok(())
    );
    assert_eq!(
        bad(Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            ..base
        }),
        "restart max delay must be at least 1ms (a container that keeps failing backs off)"
    );
    assert_eq!(
        bad(Backoff {
            max: ms(50),
            ..base
        }),
        "restart max delay (50ms) is shorter than the restart delay (100ms)"
    );
    assert_eq!(
        bad(Backoff { factor: 0, ..base }),
        "restart backoff factor must be at least 1"
    );
    let equal = Backoff {
        max: base.initial,
        reset_after: Duration::ZERO,
        ..base
    };
    assert_eq!(equal.validate(), Ok(()));
}

#[test]
fn reasons_read_well() {
    let cases: &[(String, &str)] = &[
        (ExitStatus::Code(1).to_string(), "exited with code 1"),
        (ExitStatus::Signal(9).to_string(), "killed by signal 9"),
        (
            GiveUpReason::CrashLoop {
                exits: 5,
                window: ms(30_000),
            }
            .to_string(),
            "crash loop: 5 exits within 30s",
        ),
        (
            GiveUpReason::MaxRetries { retries: 3 }.to_string(),
            "failed again after 3 restarts (on-failure:3)",
        ),
        (StopReason::StopRequested.to_string(), "stopped by the user"),
        (StopReason::PolicyNo.to_string(), "restart policy is `no`"),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
    assert!(!ExitStatus::Signal(0).success());
    assert!(!ExitStatus::Code(-1).success());
}
