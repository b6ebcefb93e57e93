//! Probe scheduling: when each service's readiness, liveness or drain probe runs its next attempt,
//! when an exec attempt past its timeout is killed, and what becomes of an attempt's result (an
//! event for the service's state machine).
//!
//! The schedule of one probe is a small state machine of its own ([`ProbeRun`]): [`ProbeRun::due`]
//! is its pure step (what is due at a given time), tested by a table below like `service::fsm`;
//! the supervisor only carries out what it returns.

use std::time::{Duration, Instant};

use super::ServiceDef;
use super::{signo, ProbeTicket, Supervisor, Sys};
use crate::supervision::probe::{Check, ProbePlan};
use crate::supervision::service::{Event, ProbeKind};

/// How often a probe whose spec has gone (it cannot happen while the spec is fixed) is retried.
const FALLBACK_INTERVAL: Duration = Duration::from_secs(1);

/// The schedule of the one probe a service runs at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProbeRun {
    kind: ProbeKind,
    generation: u64,
    /// Next attempt (None while one is in flight).
    next_at: Option<Instant>,
    /// An exec probe's process and its kill deadline.
    exec: Option<ExecAttempt>,
}

/// An exec probe's process in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExecAttempt {
    pid: i32,
    /// When it gets SIGKILL for taking longer than the probe's timeout (None once sent).
    kill_at: Option<Instant>,
}

/// What a probe's schedule asks for at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// The exec attempt `pid` ran past the probe's timeout: SIGKILL it (its end comes back
    /// through the reaper as a failed attempt).
    KillAttempt(i32),
    /// Start the next attempt.
    Attempt,
}

impl ProbeRun {
    /// A probe whose first attempt is due at `now`.
    pub(super) fn new(kind: ProbeKind, generation: u64, now: Instant) -> Self {
        Self {
            kind,
            generation,
            next_at: Some(now),
            exec: None,
        }
    }

    /// The pure step: what is due at `now`, with the schedule updated as if it was done (an
    /// attempt is then in flight; a killed attempt is not killed twice).
    pub(super) fn due(&mut self, now: Instant) -> Option<Due> {
        if let Some(attempt) = self.exec.as_mut() {
            if attempt.kill_at.is_some_and(|at| at <= now) {
                attempt.kill_at = None;
                return Some(Due::KillAttempt(attempt.pid));
            }
        }
        if self.next_at.is_some_and(|at| at <= now) {
            self.next_at = None;
            return Some(Due::Attempt);
        }
        None
    }

    /// The attempt in flight is the exec process `pid`, killed if still running at `kill_at`.
    pub(super) fn exec_started(&mut self, pid: i32, kill_at: Instant) {
        self.exec = Some(ExecAttempt {
            pid,
            kill_at: Some(kill_at),
        });
    }

    /// The attempt in flight ended; the next one is due at `next_at`.
    pub(super) fn attempt_ended(&mut self, next_at: Instant) {
        self.exec = None;
        self.next_at = Some(next_at);
    }

    /// The exec attempt's process, if one is in flight.
    pub(super) fn exec_pid(&self) -> Option<i32> {
        self.exec.map(|a| a.pid)
    }

    /// When [`ProbeRun::due`] next has something to do.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.next_at.or(self.exec.and_then(|a| a.kill_at))
    }

    /// The ticket of service `service`'s attempts under this schedule.
    pub(super) fn ticket(&self, service: usize) -> ProbeTicket {
        ProbeTicket {
            service,
            kind: self.kind,
            generation: self.generation,
        }
    }
}

/// The probe of `kind` in a service's plan.
fn probe_of(def: &ServiceDef, kind: ProbeKind) -> Option<&ProbePlan> {
    match kind {
        ProbeKind::Ready => def.probes.ready.as_ref(),
        ProbeKind::Health => def.probes.health.as_ref(),
        ProbeKind::Drain => def.probes.drain.as_ref(),
    }
}

impl<S: Sys> Supervisor<S> {
    /// A probe attempt ended (`ok`: it passed); stale tickets (the probe was stopped or
    /// restarted since) are ignored.
    pub(super) fn probe_result(&mut self, ticket: &ProbeTicket, ok: bool) {
        let now = self.sys.now();
        let Some(m) = self.services.get_mut(ticket.service) else {
            return;
        };
        let Some(run) = m
            .probe
            .as_mut()
            .filter(|p| p.generation == ticket.generation)
        else {
            return; // stale: the probe was stopped or restarted since
        };
        let interval = probe_of(&m.def, ticket.kind).map_or(FALLBACK_INTERVAL, |p| p.interval);
        run.attempt_ended(now + interval);
        let event = if ok {
            Event::ProbePassed(ticket.kind)
        } else {
            Event::ProbeFailed(ticket.kind)
        };
        self.feed(ticket.service, event);
    }

    /// Carries out what service `i`'s probe schedule has due at `now`.
    pub(super) fn fire_probe(&mut self, i: usize, now: Instant) {
        let Some(due) = self
            .services
            .get_mut(i)
            .and_then(|m| m.probe.as_mut())
            .and_then(|run| run.due(now))
        else {
            return;
        };
        match due {
            Due::KillAttempt(pid) => self.sys.signal_process(pid, signo::KILL),
            Due::Attempt => self.start_probe_attempt(i, now),
        }
    }

    fn start_probe_attempt(&mut self, i: usize, now: Instant) {
        let Some(m) = self.services.get_mut(i) else {
            return;
        };
        let Some(run) = m.probe.as_ref() else { return };
        let Some(probe) = probe_of(&m.def, run.kind).cloned() else {
            m.probe = None;
            return;
        };
        let ticket = run.ticket(i);
        if let Check::Exec(argv) = &probe.check {
            let result = match self.services.get(i) {
                Some(m) => self.sys.spawn_probe(&m.def, argv),
                None => return,
            };
            match result {
                Ok(pid) => {
                    if let Some(run) = self.services.get_mut(i).and_then(|m| m.probe.as_mut()) {
                        run.exec_started(pid, now + probe.timeout);
                    }
                }
                Err(_) => self.probe_result(&ticket, false),
            }
        } else {
            self.sys.start_network_probe(&probe, ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// The schedule after a step, as (next attempt, in-flight exec pid, its kill deadline) in
    /// seconds from the table's origin.
    type Shape = (Option<u64>, Option<i32>, Option<u64>);

    fn shape(run: &ProbeRun, t0: Instant) -> Shape {
        let secs = |t: Instant| t.duration_since(t0).as_secs();
        (
            run.next_at.map(secs),
            run.exec.map(|a| a.pid),
            run.exec.and_then(|a| a.kill_at).map(secs),
        )
    }

    fn run_with(t0: Instant, (next, pid, kill): Shape) -> ProbeRun {
        ProbeRun {
            kind: ProbeKind::Ready,
            generation: 1,
            next_at: next.map(|s| t0 + S * s as u32),
            exec: pid.map(|pid| ExecAttempt {
                pid,
                kill_at: kill.map(|s| t0 + S * s as u32),
            }),
        }
    }

    #[test]
    fn due_table() {
        let t0 = Instant::now();
        // (what, schedule before, now, due, schedule after)
        let table: &[(&str, Shape, u64, Option<Due>, Shape)] = &[
            (
                "new probe: first attempt at once",
                (Some(0), None, None),
                0,
                Some(Due::Attempt),
                (None, None, None),
            ),
            (
                "next attempt not yet due",
                (Some(5), None, None),
                4,
                None,
                (Some(5), None, None),
            ),
            (
                "next attempt due",
                (Some(5), None, None),
                5,
                Some(Due::Attempt),
                (None, None, None),
            ),
            (
                "network attempt in flight: nothing",
                (None, None, None),
                100,
                None,
                (None, None, None),
            ),
            (
                "exec within its timeout",
                (None, Some(7), Some(3)),
                2,
                None,
                (None, Some(7), Some(3)),
            ),
            (
                "exec past its timeout: killed",
                (None, Some(7), Some(3)),
                3,
                Some(Due::KillAttempt(7)),
                (None, Some(7), None),
            ),
            (
                "killed exec: not killed twice",
                (None, Some(7), None),
                9,
                None,
                (None, Some(7), None),
            ),
        ];
        for (what, before, now, due, after) in table {
            let mut run = run_with(t0, *before);
            assert_eq!(run.due(t0 + S * *now as u32), *due, "{what}");
            assert_eq!(shape(&run, t0), *after, "{what}");
        }
    }

    #[test]
    fn deadline_is_the_next_attempt_or_the_kill() {
        let t0 = Instant::now();
        let table: &[(Shape, Option<u64>)] = &[
            ((Some(4), None, None), Some(4)),
            ((None, Some(7), Some(3)), Some(3)),
            ((None, Some(7), None), None),
            ((None, None, None), None),
        ];
        for (before, deadline) in table {
            let run = run_with(t0, *before);
            assert_eq!(
                run.deadline().map(|t| t.duration_since(t0).as_secs()),
                *deadline,
                "{before:?}"
            );
        }
    }

    #[test]
    fn an_ended_attempt_schedules_the_next_and_forgets_the_process() {
        let t0 = Instant::now();
        let mut run = ProbeRun::new(ProbeKind::Health, 3, t0);
        assert_eq!(run.due(t0), Some(Due::Attempt));
        run.exec_started(42, t0 + S * 2);
        assert_eq!(run.exec_pid(), Some(42));
        run.attempt_ended(t0 + S * 10);
        assert_eq!(shape(&run, t0), (Some(10), None, None));
        assert_eq!(
            run.ticket(5),
            ProbeTicket {
                service: 5,
                kind: ProbeKind::Health,
                generation: 3
            }
        );
    }
}
