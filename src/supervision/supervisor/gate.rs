//! The `wait_for:` gate of each service: before a service leaves `Waiting`, the endpoints of its
//! `wait_for` must answer (or its timeout pass). The wait itself runs off this thread ([`Sys::start_remote_wait`]
//!, a thread in the real system) and comes back as [`Msg::RemoteWaited`], so
//! the loop never polls and the state machine stays pure: the gate only decides when
//! `DependenciesReady` is fed, like `after:` does.

use std::time::Duration;

use super::{Supervisor, Sys};
pub use crate::supervision::remote_wait::WaitOutcome;
use crate::supervision::service::Phase;

/// Where a service's remote gate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Gate {
    /// No wait started for the next start.
    #[default]
    Closed,
    /// A wait with this generation is in flight.
    Pending(u64),
    /// The wait ended: the next `DependenciesReady` may be fed (the gate closes again then, so a
    /// start after an operator stop waits again; restarts after a crash do not wait).
    Open,
}

/// Names one wait, so a late answer for an older one is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTicket {
    /// Index of the service.
    pub service: usize,
    /// Results with another generation are stale.
    pub generation: u64,
}

impl<S: Sys> Supervisor<S> {
    /// Whether service `i` may start as far as its `wait_for` is concerned; starts the wait when
    /// none is in flight. An open gate is consumed here.
    pub(super) fn remote_gate_open(&mut self, i: usize) -> bool {
        let Some(m) = self.services.get_mut(i) else {
            return false;
        };
        let Some(wait) = m.def.wait.clone() else {
            return true;
        };
        match m.gate {
            Gate::Open => {
                m.gate = Gate::Closed;
                true
            }
            Gate::Pending(_) => false,
            Gate::Closed => {
                self.generation += 1;
                let generation = self.generation;
                m.gate = Gate::Pending(generation);
                log::info!(
                    "{}: waiting for {} (at most {:?})",
                    m.def.name,
                    wait.described,
                    wait.timeout
                );
                self.sys.start_remote_wait(
                    &wait,
                    WaitTicket {
                        service: i,
                        generation,
                    },
                );
                false
            }
        }
    }

    /// A remote wait ended: open the gate (the caller's `advance` then starts the service).
    pub(super) fn remote_waited(&mut self, ticket: WaitTicket, outcome: &WaitOutcome) {
        let Some(m) = self.services.get_mut(ticket.service) else {
            return;
        };
        if m.gate != Gate::Pending(ticket.generation) {
            return; // stale
        }
        if m.state.phase != Phase::Waiting {
            // Stopped while waiting: the next start waits again.
            m.gate = Gate::Closed;
            return;
        }
        m.gate = Gate::Open;
        let waited =
            Duration::from_millis(u64::try_from(outcome.waited.as_millis()).unwrap_or(u64::MAX));
        match &outcome.reached {
            Some(endpoint) => log::info!(
                "{}: {endpoint} answers after {waited:?}: starting",
                m.def.name
            ),
            None => log::warn!(
                "{}: nothing answered on {} within {waited:?}: starting anyway",
                m.def.name,
                m.def
                    .wait
                    .as_ref()
                    .map(|w| w.described.as_str())
                    .unwrap_or_default()
            ),
        }
    }
}
