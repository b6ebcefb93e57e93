//! The real [`super::Sys`]: spawns through `sys::spawn` (services, exec probes) and
//! `sys::process` (the main command), signals through `sys::process`, reaps through `sys::reaper`,
//! runs network probes in short-lived threads, and hands service output to the forwarders.
//! Also the signal thread and the status-socket [`crate::status::Backend`] of the supervisor.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{
    Control, Msg, ProbeTicket, Reply, Request, ServiceDef, ServiceInfo, Snapshot, Sys, WaitOutcome,
    WaitTicket,
};
use crate::config::role::{Probe, ServiceSpec, WaitFor};
use crate::error::{exit_code, ProcessEnd};
use crate::logs::{self, LogFormat, LogStore};
use crate::resources::OomCounter;
use crate::status::wire;
use crate::sys::signals::{ChildSignals, SignalReader};
use crate::sys::spawn::{self, SpawnSpec, Stdio};
use crate::sys::thread::{self, Lifetime};
use crate::sys::{process, reaper};
use crate::users::{resolve_service_user, UserDb, UserIds};

/// Stack of a probe thread: one connect and a small read, or a TLS handshake (docs/ha.md, "TLS":
/// rustls with an RSA client key overflowed 64 KiB). Only the pages touched become resident.
const PROBE_STACK: usize = 512 * 1024;

/// The real system.
pub struct HostSys {
    tx: Sender<Msg>,
    logs: Arc<LogStore>,
    format: LogFormat,
    users: UserDb,
    base_env: Vec<(OsString, OsString)>,
    inherited: ChildSignals,
    oom: OomCounter,
    drain: logs::OutputDrain,
}

impl HostSys {
    /// `base_env` is the environment every service starts from (its own `environment` wins);
    /// `inherited` the signal state the agent started with (for the main command). The OOM-kill
    /// counter of the agent's memory cgroup is located here, once.
    pub fn new(
        tx: Sender<Msg>,
        logs: Arc<LogStore>,
        format: LogFormat,
        users: UserDb,
        base_env: Vec<(OsString, OsString)>,
        inherited: ChildSignals,
    ) -> Self {
        Self {
            tx,
            logs,
            format,
            users,
            base_env,
            inherited,
            oom: OomCounter::locate(),
            drain: logs::OutputDrain::new(),
        }
    }

    /// What the agent waits on at exit for the services' last output (see [`logs::drain`]).
    pub fn output_drain(&self) -> logs::OutputDrain {
        self.drain.clone()
    }

    fn spec_for(&self, def: &ServiceDef, argv: &[String]) -> Result<SpawnSpec, String> {
        let spec = &def.spec;
        // A non-root agent cannot change ids: every service runs as the agent's own user (the
        // image's `spark`, or an arbitrary OpenShift uid), with no capabilities (app.rs says so once).
        let agent_is_root = crate::sys::process::current_ids().0 == 0;
        let user = if agent_is_root {
            service_user(spec, &self.users)?
        } else {
            None
        };
        let mut env = self.base_env.clone();
        if user.is_some() {
            // The agent's own identity must not leak into a service running as another user:
            // spawn sets these from the service's user (the service's `environment` still wins).
            env.retain(|(k, _)| !matches!(k.to_str(), Some("HOME" | "USER" | "LOGNAME")));
        }
        for (k, v) in &spec.environment {
            let key = OsString::from(k);
            env.retain(|(ek, _)| *ek != key);
            env.push((key, OsString::from(v)));
        }
        let mut s = SpawnSpec::new(argv.iter().map(OsString::from).collect(), env);
        s.user = user;
        if agent_is_root {
            s.capabilities.clone_from(&spec.capabilities);
        }
        s.umask = Some(service_umask(spec)?);
        s.cwd = spec.working_dir.as_ref().map(Into::into);
        Ok(s)
    }
}

/// The ids a service runs as (`None`: the agent's own). Also used to validate roles before start.
pub fn service_user(spec: &ServiceSpec, users: &UserDb) -> Result<Option<UserIds>, String> {
    resolve_service_user(
        spec.user.as_deref(),
        spec.group.as_deref(),
        spec.groups.as_deref(),
        users,
    )
}

/// The service's umask (octal text, default 022).
pub fn service_umask(spec: &ServiceSpec) -> Result<u32, String> {
    match spec.umask.as_deref() {
        None => Ok(0o022),
        Some(text) => crate::config::role::parse_octal(text, 0o777)
            .ok_or_else(|| format!("invalid umask {text:?}: expected octal such as 0022")),
    }
}

fn spawn_failure(what: &str, e: &spawn::SpawnError) -> ProcessEnd {
    log::error!("{what}: cannot start: {e}");
    ProcessEnd::Exited(e.exit_code())
}

impl Sys for HostSys {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn spawn_service(&mut self, def: &ServiceDef) -> Result<i32, ProcessEnd> {
        let spec = self.spec_for(def, &def.spec.command).map_err(|e| {
            log::error!("{}: {e}", def.name);
            ProcessEnd::Exited(exit_code::CANNOT_EXECUTE)
        })?;
        let spawned = spawn::spawn(&spec).map_err(|e| spawn_failure(&def.name, &e))?;
        // Each stream goes to the agent's own stream of the same kind (boxed: one call site for two
        // writer types; one virtual call per forwarded chunk).
        let outputs: [(_, _, Box<dyn std::io::Write + Send>); 2] = [
            (
                spawned.stdout,
                wire::Stream::Stdout,
                Box::new(std::io::stdout()),
            ),
            (
                spawned.stderr,
                wire::Stream::Stderr,
                Box::new(std::io::stderr()),
            ),
        ];
        for (pipe, stream, out) in outputs {
            let Some(pipe) = pipe else { continue };
            let of = logs::OutputOf {
                service: def.name.clone(),
                stream,
                format: self.format,
                store: Arc::clone(&self.logs),
            };
            let started = logs::forward(
                pipe,
                of,
                out,
                self.drain.pending(),
                on_death(self.tx.clone()),
            );
            if let Err(e) = started {
                log::error!("{}: cannot start its output forwarder: {e}", def.name);
            }
        }
        Ok(spawned.pid)
    }

    fn spawn_main(&mut self, argv: &[OsString]) -> Result<i32, ProcessEnd> {
        spawn::spawn(&SpawnSpec::foreground(
            argv.to_vec(),
            self.inherited.clone(),
        ))
        .map(|s| s.pid)
        .map_err(|e| {
            crate::errln!("sparkvisor: {e}");
            ProcessEnd::Exited(e.exit_code())
        })
    }

    fn spawn_probe(&mut self, def: &ServiceDef, argv: &[String]) -> Result<i32, ProcessEnd> {
        let mut spec = self.spec_for(def, argv).map_err(|e| {
            log::error!("{}: probe: {e}", def.name);
            ProcessEnd::Exited(exit_code::CANNOT_EXECUTE)
        })?;
        spec.stdio = Stdio::Null;
        spawn::spawn(&spec)
            .map(|s| s.pid)
            .map_err(|e| spawn_failure(&format!("{} probe", def.name), &e))
    }

    fn start_network_probe(&mut self, probe: &Probe, ticket: ProbeTicket) {
        let tx = self.tx.clone();
        let probe = probe.clone();
        let fallback = ticket.clone();
        let died = self.tx.clone();
        let started = thread::spawn_critical(
            "probe",
            "probe".into(),
            Some(PROBE_STACK),
            Lifetime::Task,
            on_death(died),
            move || {
                let result = crate::probe::attempt(&probe);
                if let Err(e) = &result {
                    log::debug!("probe of service #{}: {e}", ticket.service);
                }
                let _ = tx.send(Msg::ProbeResult {
                    ticket,
                    ok: result.is_ok(),
                });
                Ok(())
            },
        );
        if let Err(e) = started {
            log::error!("cannot start a probe thread: {e}");
            let _ = self.tx.send(Msg::ProbeResult {
                ticket: fallback,
                ok: false,
            });
        }
    }

    fn start_remote_wait(&mut self, wait: &WaitFor, ticket: WaitTicket) {
        let tx = self.tx.clone();
        // Validated when the role was expanded (`check` and `run` refuse bad endpoints).
        let targets = wait.targets().unwrap_or_default();
        let json = wait.json.clone();
        let (timeout, interval) = (wait.timeout.0, wait.interval.0);
        let started = std::thread::Builder::new()
            .name("wait-for".into())
            .stack_size(PROBE_STACK)
            .spawn(move || {
                let outcome =
                    crate::remote_wait::wait_any(&targets, json.as_ref(), timeout, interval);
                let _ = tx.send(Msg::RemoteWaited { ticket, outcome });
            });
        if let Err(e) = started {
            // Without the thread the gate would stay shut: start the service now instead.
            log::error!("cannot start a wait_for thread: {e}");
            let _ = self.tx.send(Msg::RemoteWaited {
                ticket,
                outcome: WaitOutcome {
                    reached: None,
                    waited: Duration::ZERO,
                },
            });
        }
    }

    fn signal_process(&mut self, pid: i32, signo: i32) {
        if let Err(e) = process::send_signal(pid, signo) {
            if e.raw_os_error() != Some(libc_esrch()) {
                log::warn!("cannot send signal {signo} to pid {pid}: {e}");
            }
        }
    }

    fn signal_group(&mut self, pgid: i32, signo: i32) {
        if let Err(e) = process::signal_group(pgid, signo) {
            if e.raw_os_error() != Some(libc_esrch()) {
                log::warn!("cannot send signal {signo} to process group {pgid}: {e}");
            }
        }
    }

    fn reap(&mut self, on_exit: &mut dyn FnMut(i32, ProcessEnd)) {
        reaper::reap_children(on_exit);
    }

    fn oom_kill_count(&self) -> Option<u64> {
        self.oom.read()
    }

    fn start_reload(&mut self, job: crate::supervisor::ReloadJob) {
        let tx = self.tx.clone();
        // A panic in the reloader is a bug, reported like any thread's death (orderly stop, 70).
        let started = thread::spawn_critical(
            "reload",
            "reload".into(),
            None,
            Lifetime::Task,
            on_death(self.tx.clone()),
            move || {
                // The supervisor may have finished meanwhile: nobody is left to tell.
                let _ = tx.send(job());
                Ok(())
            },
        );
        if let Err(e) = started {
            // The reload's deadline reports it as failed.
            log::error!("cannot start a reload thread: {e}");
        }
    }
}

/// ESRCH ("no such process"): the target already ended, which is not worth a warning.
const fn libc_esrch() -> i32 {
    3
}

/// Starts the thread that reads signals (signalfd) and forwards their numbers to the supervisor.
/// Its death (the signalfd failing) is reported as [`Msg::ThreadDied`].
pub fn spawn_signal_thread(tx: Sender<Msg>) -> std::io::Result<JoinHandle<()>> {
    let mut reader = SignalReader::new()?;
    let died = tx.clone();
    thread::spawn_critical(
        "signals",
        "signals".into(),
        Some(64 * 1024),
        Lifetime::Agent,
        on_death(died),
        move || loop {
            let (sig, sender) = reader
                .next_with_sender()
                .map_err(|e| format!("reading signals: {e}"))?;
            // A stop or reload from inside the container carries its sender's lineage: the
            // supervisor ignores it when it comes from a service (see `sender`).
            let lineage = if sender > 0 && super::sender::is_request(sig) {
                super::sender::lineage(sender)
            } else {
                Vec::new()
            };
            if lineage.is_empty() && (sig == super::signo::TERM || sig == super::signo::INT) {
                // A reload blocked on a wait must not keep the supervisor from stopping.
                crate::sys::interrupt::request_stop(sig);
            }
            let msg = if lineage.is_empty() {
                Msg::Signal(sig)
            } else {
                Msg::SignalFrom(sig, lineage)
            };
            if tx.send(msg).is_err() {
                // The supervisor has finished: nobody is left to tell.
                return Ok(());
            }
        },
    )
}

/// The death report of a thread started with [`thread::spawn_critical`]: a [`Msg::ThreadDied`]
/// to the supervisor (which shuts down with exit code 70). Ignored once the supervisor is gone.
pub fn on_death(tx: Sender<Msg>) -> impl FnOnce(String) + Send + 'static {
    move |why| {
        let _ = tx.send(Msg::ThreadDied(why));
    }
}

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

/// The wire view of one service.
pub fn to_wire(info: &ServiceInfo) -> wire::ServiceStatus {
    use wire::ServiceState as W;
    let state = match info.state {
        "waiting" => W::Waiting,
        "starting" => W::Starting,
        "running" if info.has_ready_probe => W::Ready,
        "running" => W::Running,
        "backoff" => W::Backoff,
        "stopping" => W::Stopping,
        "stopped" => W::Stopped,
        _ => W::Failed,
    };
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
        required: info.critical && state != W::Stopped,
        oom_kills: info.oom_kills,
    }
}

fn agent_rss() -> u64 {
    crate::procfs::read("/proc/self/status")
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

impl crate::status::Backend for SupervisorHandle {
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

    fn info(name: &str, state: &'static str, critical: bool) -> ServiceInfo {
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
            to_wire(&info("spark-worker", "running", true)),
            to_wire(&info("extra", "failed", false)),
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
        failing.services[0] = to_wire(&info("spark-worker", "failed", true));
        assert!(!wire::Health::of(&failing).healthy);
    }
}
