//! The status socket's [`Backend`] over the supervisor: each request becomes a [`Msg`] to the one
//! owner loop, and its [`Reply`] is mapped to the API's wire types (the only place that maps
//! service state to the API's state).

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{wire, Backend};
use crate::supervision::logs::LogStore;
use crate::supervision::service::PublicState;
use crate::supervision::supervisor::{Control, Msg, Reply, Request, ServiceInfo, Snapshot};

/// What the status socket shows besides the services (fixed at start).
#[derive(Debug, Clone)]
pub struct NodeFacts {
    /// Identity.
    pub node: wire::Node,
    /// Detected resources (JSON).
    pub resources: serde_json::Value,
    /// Sizing (JSON).
    pub sizing: serde_json::Value,
}

/// The supervisor as the status socket sees it: requests become messages to the one owner loop.
pub struct SupervisorHandle {
    tx: Mutex<Sender<Msg>>,
    logs: Arc<LogStore>,
    facts: NodeFacts,
    services: BTreeSet<String>,
    started_at: u64,
}

/// How long a status request waits for the supervisor loop.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

impl SupervisorHandle {
    /// A handle sending to `tx`; `services` are the names of the role's services.
    pub fn new(
        tx: Sender<Msg>,
        logs: Arc<LogStore>,
        facts: NodeFacts,
        services: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            tx: Mutex::new(tx),
            logs,
            facts,
            services: services.into_iter().collect(),
            started_at: unix_secs(SystemTime::now()),
        }
    }

    fn ask(&self, request: Request) -> Result<Reply, wire::ApiError> {
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Msg::Request(request, reply_tx));
        if sent.is_err() {
            return Err(wire::ApiError::unavailable("the supervisor has stopped"));
        }
        wait_reply(&reply_rx)
    }

    fn known(&self, service: Option<&str>) -> Result<(), wire::ApiError> {
        match service {
            Some(s) if !self.services.contains(s) => Err(wire::ApiError::unknown_service(s)),
            _ => Ok(()),
        }
    }
}

fn wait_reply(rx: &Receiver<Reply>) -> Result<Reply, wire::ApiError> {
    rx.recv_timeout(REPLY_TIMEOUT)
        .map_err(|_| wire::ApiError::unavailable("the supervisor did not answer"))
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The one mapping of a service's state to the API's: a running service with a readiness probe
/// that passed is `ready`.
fn wire_state(state: PublicState, has_ready_probe: bool) -> wire::ServiceState {
    use wire::ServiceState as W;
    match state {
        PublicState::Waiting => W::Waiting,
        PublicState::Starting => W::Starting,
        PublicState::Running if has_ready_probe => W::Ready,
        PublicState::Running => W::Running,
        PublicState::Backoff => W::Backoff,
        PublicState::Stopping => W::Stopping,
        PublicState::Stopped => W::Stopped,
        PublicState::Failed => W::Failed,
    }
}

/// The wire view of one service.
pub fn to_wire(info: &ServiceInfo) -> wire::ServiceStatus {
    let state = wire_state(info.state, info.has_ready_probe);
    wire::ServiceStatus {
        name: info.name.clone(),
        state,
        pid: info.pid.and_then(|p| u32::try_from(p).ok()),
        started_at: info.started_at.map(unix_secs),
        uptime_secs: info.uptime.map(|d| d.as_secs()),
        restarts: info.restarts,
        last_exit: info.last_exit.map(wire::LastExit::from_end),
        ready: info.ready,
        healthy: info.has_health_probe.then_some(info.healthy),
        critical: info.critical,
        // Only critical services decide health: a failed optional service must not make the
        // container unhealthy (HEALTHCHECK, liveness probes).
        required: info.critical && state != wire::ServiceState::Stopped,
        oom_kills: info.oom_kills,
    }
}

fn agent_rss() -> u64 {
    crate::sys::procfs::read("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

impl SupervisorHandle {
    fn status_from(&self, snap: &Snapshot) -> wire::Status {
        wire::Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            node: self.facts.node.clone(),
            resources: self.facts.resources.clone(),
            sizing: self.facts.sizing.clone(),
            services: snap.services.iter().map(to_wire).collect(),
            agent: wire::Agent {
                pid: std::process::id(),
                rss_bytes: agent_rss(),
                zombies_reaped: snap.zombies_reaped,
                started_at: self.started_at,
                oom_kills_total: snap.oom_kills_total,
                last_reload: snap.last_reload.as_ref().map(|r| wire::LastReload {
                    at: unix_secs(r.at),
                    ok: r.ok,
                    message: r.message.clone(),
                }),
            },
        }
    }
}

impl Backend for SupervisorHandle {
    fn status(&self) -> Result<wire::Status, wire::ApiError> {
        match self.ask(Request::Snapshot)? {
            Reply::Snapshot(snap) => Ok(self.status_from(&snap)),
            other => Err(wire::ApiError::internal(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    fn control(
        &self,
        service: &str,
        action: wire::Action,
    ) -> Result<wire::ServiceStatus, wire::ApiError> {
        let action = match action {
            wire::Action::Start => Control::Start,
            wire::Action::Stop => Control::Stop,
            wire::Action::Restart => Control::Restart,
            wire::Action::Signal(n) => Control::Signal(n),
        };
        let request = Request::Control {
            service: service.to_string(),
            action,
        };
        match self.ask(request)? {
            Reply::Service(info) => Ok(to_wire(&info)),
            Reply::UnknownService(name) => Err(wire::ApiError::unknown_service(&name)),
            Reply::Refused(why) => Err(wire::ApiError::conflict(why)),
            Reply::Snapshot(_) => Err(wire::ApiError::internal("unexpected reply")),
        }
    }

    fn logs(
        &self,
        service: Option<&str>,
        lines: usize,
    ) -> Result<Vec<wire::LogLine>, wire::ApiError> {
        self.known(service)?;
        Ok(self.logs.tail(service, lines))
    }

    fn follow(&self, service: Option<&str>) -> Result<Receiver<wire::LogLine>, wire::ApiError> {
        self.known(service)?;
        Ok(self.logs.follow(service))
    }

    fn thread_died(&self, why: String) {
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Msg::ThreadDied(why));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, state: PublicState, critical: bool) -> ServiceInfo {
        ServiceInfo {
            name: name.into(),
            state,
            pid: None,
            started_at: None,
            uptime: None,
            restarts: 3,
            last_exit: None,
            ready: state == "running",
            healthy: true,
            critical,
            has_ready_probe: false,
            has_health_probe: false,
            oom_kills: None,
        }
    }

    #[test]
    fn a_failed_optional_service_leaves_the_node_healthy() {
        let services = vec![
            to_wire(&info("spark-worker", PublicState::Running, true)),
            to_wire(&info("extra", PublicState::Failed, false)),
        ];
        let status = wire::Status {
            version: "t".into(),
            node: wire::Node {
                hostname: "h".into(),
                fqdn: "h".into(),
                role: "r".into(),
            },
            resources: serde_json::Value::Null,
            sizing: serde_json::Value::Null,
            services,
            agent: wire::Agent {
                pid: 1,
                rss_bytes: 1,
                zombies_reaped: 0,
                started_at: 0,
                oom_kills_total: None,
                last_reload: None,
            },
        };
        assert_eq!(wire::Health::of(&status).reasons, Vec::<String>::new());
        let mut failing = status.clone();
        failing.services[0] = to_wire(&info("spark-worker", PublicState::Failed, true));
        assert!(!wire::Health::of(&failing).healthy);
    }
}
