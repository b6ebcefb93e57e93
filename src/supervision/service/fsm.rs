//! The service state machine: `step(policy, state, event, now) -> (state, actions)`, a pure function.
//!
//! Events that make no sense in the current phase (a stale timer, a probe result after a stop, an
//! exit already accounted for) leave the state unchanged and produce no action.

use std::time::Instant;

use super::{
    Action, AfterStop, Event, Phase, Policy, ProbeKind, ServiceState, Timer, TimerKind, Verdict,
};
use crate::config::role::RestartPolicy;
use crate::process_end::ProcessEnd;

/// Applies one event to one service.
pub fn step(
    policy: &Policy,
    mut s: ServiceState,
    event: Event,
    now: Instant,
) -> (ServiceState, Vec<Action>) {
    let mut actions = Vec::new();
    match (s.phase, event) {
        (Phase::Waiting, Event::DependenciesReady) => spawn(&mut s, &mut actions, false),

        (Phase::Starting, Event::Started { pid }) => {
            s.phase = Phase::Running;
            s.pid = Some(pid);
            s.started_at = Some(now);
            s.healthy = true;
            s.health_failures = 0;
            s.killed = false;
            if policy.ready_probe {
                s.ready = false;
                actions.push(Action::StartProbe(ProbeKind::Ready));
            } else {
                s.ready = true;
                if policy.health_threshold.is_some() {
                    actions.push(Action::StartProbe(ProbeKind::Health));
                }
            }
        }
        (Phase::Starting, Event::SpawnFailed { end }) => {
            s.started_at = Some(now);
            ended(policy, &mut s, end, now, false);
        }
        (Phase::Running, Event::Exited { end }) => {
            actions.push(Action::StopProbes);
            ended(policy, &mut s, end, now, false);
        }

        (Phase::Running, Event::ProbePassed(ProbeKind::Ready)) if !s.ready => {
            s.ready = true;
            actions.push(Action::StopProbes);
            if policy.health_threshold.is_some() {
                actions.push(Action::StartProbe(ProbeKind::Health));
            }
        }
        (Phase::Running, Event::ProbePassed(ProbeKind::Health)) => {
            s.health_failures = 0;
            s.healthy = true;
        }
        (Phase::Running, Event::ProbeFailed(ProbeKind::Health)) => {
            s.health_failures = s.health_failures.saturating_add(1);
            if s.health_failures >= policy.health_threshold.unwrap_or(1).max(1) {
                s.healthy = false;
                begin_stop(policy, &mut s, AfterStop::Recover, None, now, &mut actions);
            }
        }

        (Phase::Backoff, Event::BackoffElapsed) if timer_due(&s, TimerKind::Backoff, now) => {
            spawn(&mut s, &mut actions, true)
        }

        // A stop asked for while the spawn is in flight: the pid comes with `Started`.
        (Phase::Stopping, Event::Started { pid }) => {
            s.pid = Some(pid);
            s.started_at = Some(now);
            actions.push(Action::SignalGroup(policy.stop_signal));
        }
        (Phase::Stopping, Event::SpawnFailed { end })
        | (Phase::Stopping, Event::Exited { end }) => {
            if s.draining {
                actions.push(Action::StopProbes);
                s.draining = false;
            }
            s.pid = None;
            s.ready = false;
            s.timer = None;
            s.last_exit = Some(end);
            match s.after_stop {
                AfterStop::Stay => s.phase = Phase::Stopped,
                AfterStop::Restart => {
                    s.backoff.reset(&policy.backoff);
                    spawn(&mut s, &mut actions, true);
                }
                AfterStop::Recover => ended(policy, &mut s, end, now, true),
            }
        }
        (Phase::Stopping, Event::GraceElapsed) if timer_due(&s, TimerKind::Drain, now) => {
            end_drain(policy, &mut s, now, &mut actions)
        }
        (Phase::Stopping, Event::ProbePassed(ProbeKind::Drain)) if s.draining => {
            end_drain(policy, &mut s, now, &mut actions)
        }
        (Phase::Stopping, Event::GraceElapsed) if timer_due(&s, TimerKind::Grace, now) => {
            s.timer = None;
            if s.pid.is_some() {
                s.killed = true;
                actions.push(Action::KillGroup);
            }
        }
        (Phase::Stopping, Event::StopRequested { deadline }) => {
            s.after_stop = AfterStop::Stay;
            if let (Some(d), Some(t)) = (deadline, s.timer.as_mut()) {
                t.at = t.at.min(drain_end(policy, t.kind, d));
            }
            s.drain_deadline = deadline.or(s.drain_deadline);
        }
        (Phase::Stopping, Event::RestartRequested) => s.after_stop = AfterStop::Restart,

        (Phase::Running, Event::StopRequested { deadline }) => {
            begin_stop(policy, &mut s, AfterStop::Stay, deadline, now, &mut actions)
        }
        (Phase::Starting, Event::StopRequested { deadline }) => {
            s.phase = Phase::Stopping;
            s.after_stop = AfterStop::Stay;
            s.timer = Some(grace_timer(policy, deadline, now));
        }
        (Phase::Waiting | Phase::Backoff, Event::StopRequested { .. }) => {
            s.phase = Phase::Stopped;
            s.timer = None;
        }

        (Phase::Running, Event::RestartRequested) => {
            begin_stop(policy, &mut s, AfterStop::Restart, None, now, &mut actions)
        }
        (Phase::Backoff, Event::RestartRequested) => {
            s.backoff.reset(&policy.backoff);
            spawn(&mut s, &mut actions, true);
        }
        (Phase::Stopped | Phase::Failed, Event::StartRequested | Event::RestartRequested) => {
            s.backoff.reset(&policy.backoff);
            s.phase = Phase::Waiting;
            s.timer = None;
        }

        _ => {}
    }
    (s, actions)
}

fn timer_due(s: &ServiceState, kind: TimerKind, now: Instant) -> bool {
    s.timer.is_some_and(|t| t.kind == kind && t.at <= now)
}

fn spawn(s: &mut ServiceState, actions: &mut Vec<Action>, is_restart: bool) {
    s.phase = Phase::Starting;
    s.timer = None;
    s.ready = false;
    if is_restart {
        s.restarts = s.restarts.saturating_add(1);
    }
    actions.push(Action::Spawn);
}

fn grace_timer(policy: &Policy, deadline: Option<Instant>, now: Instant) -> Timer {
    let at = now + policy.grace;
    Timer {
        kind: TimerKind::Grace,
        at: deadline.map_or(at, |d| d.min(at)),
    }
}

fn begin_stop(
    policy: &Policy,
    s: &mut ServiceState,
    then: AfterStop,
    deadline: Option<Instant>,
    now: Instant,
    actions: &mut Vec<Action>,
) {
    s.phase = Phase::Stopping;
    s.after_stop = then;
    s.ready = false;
    actions.push(Action::StopProbes);
    // Only a stop drains: a restart or a failed health check wants the service back soon.
    if let Some(drain) = policy.drain.filter(|_| then == AfterStop::Stay) {
        let at = now + drain.grace;
        s.draining = true;
        s.drain_deadline = deadline;
        s.timer = Some(Timer {
            kind: TimerKind::Drain,
            at: deadline.map_or(at, |d| at.min(drain_end(policy, TimerKind::Drain, d))),
        });
        actions.push(Action::SignalGroup(drain.signal));
        if drain.probe {
            actions.push(Action::StartProbe(ProbeKind::Drain));
        }
        return;
    }
    s.timer = Some(grace_timer(policy, deadline, now));
    actions.push(Action::SignalGroup(policy.stop_signal));
}

/// The latest end of a `kind` timer under the total `deadline`: a drain leaves the stop's own grace.
fn drain_end(policy: &Policy, kind: TimerKind, deadline: Instant) -> Instant {
    match kind {
        TimerKind::Drain => deadline.checked_sub(policy.grace).unwrap_or(deadline),
        _ => deadline,
    }
}

/// The drain is over (done or out of time): the stop signal, and its grace.
fn end_drain(policy: &Policy, s: &mut ServiceState, now: Instant, actions: &mut Vec<Action>) {
    s.draining = false;
    s.timer = Some(grace_timer(policy, s.drain_deadline, now));
    actions.push(Action::StopProbes);
    actions.push(Action::SignalGroup(policy.stop_signal));
}

/// The process ended on its own (or could not start): restart per policy and backoff, or give up.
/// `force_restart`: a failed health check restarts whatever the policy says.
fn ended(
    policy: &Policy,
    s: &mut ServiceState,
    end: ProcessEnd,
    now: Instant,
    force_restart: bool,
) {
    s.pid = None;
    s.ready = false;
    s.timer = None;
    s.last_exit = Some(end);
    let restart = force_restart
        || match policy.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !end.success(),
            RestartPolicy::Never => false,
        };
    if !restart {
        s.phase = if end.success() {
            Phase::Stopped
        } else {
            Phase::Failed
        };
        return;
    }
    match s.backoff.on_end(&policy.backoff, s.started_at, now) {
        Verdict::GiveUp => s.phase = Phase::Failed,
        // Even a zero delay goes through the timer: the respawn then happens in the next loop
        // turn, so a command that keeps failing to exec cannot recurse without bound.
        Verdict::RestartAfter(delay) => {
            s.phase = Phase::Backoff;
            s.timer = Some(Timer {
                kind: TimerKind::Backoff,
                at: now + delay,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use std::time::Duration;

    use super::*;
    use crate::config::role::{BackoffSpec, DurationSpec};

    const TERM: i32 = 15;
    const PID: i32 = 4242;

    fn policy(restart: RestartPolicy) -> Policy {
        Policy {
            restart,
            backoff: BackoffSpec {
                initial: DurationSpec(Duration::from_millis(100)),
                factor: 2.0,
                limit: DurationSpec(Duration::from_secs(1)),
                max_failures: 3,
                window: DurationSpec(Duration::from_secs(10)),
            },
            stop_signal: TERM,
            grace: Duration::from_secs(2),
            ready_probe: false,
            health_threshold: None,
            drain: None,
        }
    }

    fn running(p: &Policy, t0: Instant) -> ServiceState {
        let s = ServiceState::new(p, 1);
        let (s, _) = step(p, s, Event::DependenciesReady, t0);
        let (s, _) = step(p, s, Event::Started { pid: PID }, t0);
        s
    }

    /// Table: (restart policy, how it ended) -> phase after the exit, actions.
    #[test]
    fn exit_in_running_follows_the_restart_policy() {
        use ProcessEnd::*;
        use RestartPolicy::*;
        let table: &[(RestartPolicy, ProcessEnd, Phase)] = &[
            (Always, Exited(0), Phase::Backoff),
            (Always, Exited(3), Phase::Backoff),
            (Always, Signaled(9), Phase::Backoff),
            (OnFailure, Exited(0), Phase::Stopped),
            (OnFailure, Exited(1), Phase::Backoff),
            (OnFailure, Signaled(9), Phase::Backoff),
            (Never, Exited(0), Phase::Stopped),
            (Never, Exited(2), Phase::Failed),
            (Never, Signaled(15), Phase::Failed),
        ];
        let t0 = Instant::now();
        for &(restart, end, want) in table {
            let p = policy(restart);
            let (s, actions) = step(&p, running(&p, t0), Event::Exited { end }, t0);
            assert_eq!(s.phase, want, "{restart:?} {end:?}");
            assert_eq!(s.last_exit, Some(end));
            assert_eq!(s.pid, None);
            assert_eq!(actions, vec![Action::StopProbes], "{restart:?} {end:?}");
            assert_eq!(s.timer.is_some(), want == Phase::Backoff);
        }
    }

    /// A service that keeps crashing: backoff, respawn, backoff ... and Failed at max_failures.
    #[test]
    fn crash_loop_backs_off_then_fails() {
        let p = policy(RestartPolicy::Always);
        let t0 = Instant::now();
        let mut s = running(&p, t0);
        let mut now = t0;
        for round in 1..=2u32 {
            now += Duration::from_millis(10);
            let (s2, _) = step(
                &p,
                s,
                Event::Exited {
                    end: ProcessEnd::Exited(1),
                },
                now,
            );
            assert_eq!(s2.phase, Phase::Backoff, "round {round}");
            let due = s2.timer.unwrap().at;
            let base = p.backoff.initial.0 * 2u32.pow(round - 1);
            assert!(
                due - now >= base && due - now <= base.mul_f64(1.1),
                "round {round}"
            );
            // A timer event before the deadline is stale: nothing happens.
            let (s3, a) = step(&p, s2, Event::BackoffElapsed, now);
            assert_eq!((s3.phase, a.len()), (Phase::Backoff, 0));
            let (s4, a) = step(&p, s3, Event::BackoffElapsed, due);
            assert_eq!((s4.phase, a), (Phase::Starting, vec![Action::Spawn]));
            assert_eq!(s4.restarts, round);
            let (s5, _) = step(
                &p,
                s4,
                Event::Started {
                    pid: PID + round as i32,
                },
                due,
            );
            s = s5;
            now = due;
        }
        let (s, a) = step(
            &p,
            s,
            Event::Exited {
                end: ProcessEnd::Signaled(9),
            },
            now,
        );
        assert_eq!(s.phase, Phase::Failed);
        assert_eq!(s.last_exit, Some(ProcessEnd::Signaled(9)));
        assert_eq!(a, vec![Action::StopProbes]);
    }

    #[test]
    fn zero_backoff_still_goes_through_the_timer() {
        let mut p = policy(RestartPolicy::Always);
        p.backoff.initial = DurationSpec(Duration::ZERO);
        p.backoff.max_failures = 0;
        let t0 = Instant::now();
        let (s, _) = step(&p, ServiceState::new(&p, 1), Event::DependenciesReady, t0);
        let (s, a) = step(
            &p,
            s,
            Event::SpawnFailed {
                end: ProcessEnd::Exited(127),
            },
            t0,
        );
        assert_eq!((s.phase, a.len()), (Phase::Backoff, 0));
        assert_eq!(s.timer.map(|t| t.at), Some(t0));
        let (s, a) = step(&p, s, Event::BackoffElapsed, t0);
        assert_eq!((s.phase, a), (Phase::Starting, vec![Action::Spawn]));
    }

    #[test]
    fn spawn_failure_counts_like_an_exit() {
        let p = policy(RestartPolicy::Never);
        let t0 = Instant::now();
        let (s, _) = step(&p, ServiceState::new(&p, 1), Event::DependenciesReady, t0);
        let (s, _) = step(
            &p,
            s,
            Event::SpawnFailed {
                end: ProcessEnd::Exited(127),
            },
            t0,
        );
        assert_eq!(s.phase, Phase::Failed);
        assert_eq!(s.last_exit.map(ProcessEnd::code), Some(127));
    }

    /// Stop: signal, grace, SIGKILL; the exit then leads to Stopped (Stay) or a respawn (Restart).
    #[test]
    fn stop_signals_then_kills_after_grace() {
        let p = policy(RestartPolicy::Always);
        let t0 = Instant::now();
        let (s, a) = step(
            &p,
            running(&p, t0),
            Event::StopRequested { deadline: None },
            t0,
        );
        assert_eq!(s.phase, Phase::Stopping);
        assert_eq!(a, vec![Action::StopProbes, Action::SignalGroup(TERM)]);
        let due = s.timer.unwrap().at;
        assert_eq!(due, t0 + p.grace);
        let (s, a) = step(&p, s, Event::GraceElapsed, t0 + Duration::from_secs(1));
        assert!(a.is_empty() && !s.killed, "grace elapsed early");
        let (s, a) = step(&p, s, Event::GraceElapsed, due);
        assert_eq!(a, vec![Action::KillGroup]);
        assert!(s.killed);
        let (s, a) = step(
            &p,
            s,
            Event::Exited {
                end: ProcessEnd::Signaled(9),
            },
            due,
        );
        assert_eq!((s.phase, a.len()), (Phase::Stopped, 0));
    }

    #[test]
    fn shutdown_deadline_caps_the_grace() {
        let p = policy(RestartPolicy::Always);
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_millis(500);
        let (s, _) = step(
            &p,
            running(&p, t0),
            Event::StopRequested {
                deadline: Some(deadline),
            },
            t0,
        );
        assert_eq!(s.timer.unwrap().at, deadline);
    }

    /// Table: (phase reached by a prefix of events, request) -> phase after, first action.
    #[test]
    fn operator_requests_in_every_phase() {
        let p = policy(RestartPolicy::Never);
        let t0 = Instant::now();
        let stop = Event::StopRequested { deadline: None };
        let exit1 = Event::Exited {
            end: ProcessEnd::Exited(1),
        };
        let exit0 = Event::Exited {
            end: ProcessEnd::Exited(0),
        };
        let started = Event::Started { pid: PID };
        let table: Vec<(Vec<Event>, Event, Phase, Option<Action>)> = vec![
            (vec![], stop, Phase::Stopped, None),
            (vec![], Event::RestartRequested, Phase::Waiting, None),
            (
                vec![Event::DependenciesReady, started],
                stop,
                Phase::Stopping,
                Some(Action::StopProbes),
            ),
            (
                vec![Event::DependenciesReady, started],
                Event::RestartRequested,
                Phase::Stopping,
                Some(Action::StopProbes),
            ),
            (
                vec![Event::DependenciesReady, started],
                Event::StartRequested,
                Phase::Running,
                None,
            ),
            (
                vec![Event::DependenciesReady, started, exit1],
                Event::StartRequested,
                Phase::Waiting,
                None,
            ),
            (
                vec![Event::DependenciesReady, started, exit0],
                Event::RestartRequested,
                Phase::Waiting,
                None,
            ),
            (
                vec![Event::DependenciesReady, started, exit0],
                stop,
                Phase::Stopped,
                None,
            ),
            (vec![Event::DependenciesReady], stop, Phase::Stopping, None),
        ];
        for (prefix, request, want, first) in table {
            let mut s = ServiceState::new(&p, 1);
            for e in &prefix {
                s = step(&p, s, *e, t0).0;
            }
            let (s, a) = step(&p, s, request, t0);
            assert_eq!(s.phase, want, "{prefix:?} then {request:?}");
            assert_eq!(a.first().copied(), first, "{prefix:?} then {request:?}");
        }
    }

    #[test]
    fn restart_request_respawns_at_once_after_the_exit() {
        let p = policy(RestartPolicy::Never);
        let t0 = Instant::now();
        let (s, _) = step(&p, running(&p, t0), Event::RestartRequested, t0);
        let (s, a) = step(
            &p,
            s,
            Event::Exited {
                end: ProcessEnd::Signaled(TERM),
            },
            t0,
        );
        assert_eq!((s.phase, a), (Phase::Starting, vec![Action::Spawn]));
        assert_eq!(s.restarts, 1);
    }

    #[test]
    fn stop_during_spawn_signals_once_the_pid_is_known() {
        let p = policy(RestartPolicy::Always);
        let t0 = Instant::now();
        let (s, _) = step(&p, ServiceState::new(&p, 1), Event::DependenciesReady, t0);
        let (s, _) = step(&p, s, Event::StopRequested { deadline: None }, t0);
        let (s, a) = step(&p, s, Event::Started { pid: PID }, t0);
        assert_eq!(
            (s.phase, a),
            (Phase::Stopping, vec![Action::SignalGroup(TERM)])
        );
        let (s, _) = step(
            &p,
            s,
            Event::Exited {
                end: ProcessEnd::Exited(0),
            },
            t0,
        );
        assert_eq!(s.phase, Phase::Stopped);
    }

    #[test]
    fn readiness_probe_gates_ready_then_liveness_takes_over() {
        let mut p = policy(RestartPolicy::Always);
        p.ready_probe = true;
        p.health_threshold = Some(2);
        let t0 = Instant::now();
        let (s, _) = step(&p, ServiceState::new(&p, 1), Event::DependenciesReady, t0);
        let (s, a) = step(&p, s, Event::Started { pid: PID }, t0);
        assert!(!s.ready);
        assert_eq!(a, vec![Action::StartProbe(ProbeKind::Ready)]);
        let (s, a) = step(&p, s, Event::ProbeFailed(ProbeKind::Ready), t0);
        assert!(!s.ready && a.is_empty());
        let (s, a) = step(&p, s, Event::ProbePassed(ProbeKind::Ready), t0);
        assert!(s.ready);
        assert_eq!(
            a,
            vec![Action::StopProbes, Action::StartProbe(ProbeKind::Health)]
        );
        // (result, phase after, healthy after)
        let table = [
            (Event::ProbeFailed(ProbeKind::Health), Phase::Running, true),
            (Event::ProbePassed(ProbeKind::Health), Phase::Running, true),
            (Event::ProbeFailed(ProbeKind::Health), Phase::Running, true),
            (
                Event::ProbeFailed(ProbeKind::Health),
                Phase::Stopping,
                false,
            ),
        ];
        let mut s = s;
        for (i, (e, phase, healthy)) in table.into_iter().enumerate() {
            s = step(&p, s, e, t0).0;
            assert_eq!((s.phase, s.healthy), (phase, healthy), "row {i}");
        }
        // A liveness failure restarts through the backoff even with restart: never.
        p.restart = RestartPolicy::Never;
        let (s, _) = step(
            &p,
            s,
            Event::Exited {
                end: ProcessEnd::Signaled(TERM),
            },
            t0,
        );
        assert_eq!(s.phase, Phase::Backoff);
    }

    #[test]
    fn stale_events_change_nothing() {
        let p = policy(RestartPolicy::Always);
        let t0 = Instant::now();
        let events = [
            Event::Exited {
                end: ProcessEnd::Exited(0),
            },
            Event::GraceElapsed,
            Event::BackoffElapsed,
            Event::ProbePassed(ProbeKind::Ready),
            Event::Started { pid: 1 },
        ];
        for e in events {
            let s = ServiceState::new(&p, 1);
            let (s2, a) = step(&p, s.clone(), e, t0);
            assert_eq!((s2, a.len()), (s, 0), "{e:?} in Waiting");
        }
    }
}
