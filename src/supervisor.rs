//! The one owner of all service state: a loop that takes events (process exits, signals, probe
//! results, timer deadlines, operator requests), steps the pure state machine and carries out actions.
//!
//! Everything that touches the system goes through the [`Sys`] seam (the real one is [`host::HostSys`];
//! unit tests use a fake). Other threads (the signal reader, probes, output forwarders, the status
//! socket) only send [`Msg`]s; they never see service state. Timers are deadlines kept in the states:
//! the loop waits with `recv_timeout(earliest deadline)`, or `recv()` when there is none, so an idle
//! agent without probes wakes up zero times.

mod gate;
pub mod host;
mod oom;
pub mod reload;
pub mod sender;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use crate::config::role::{Probe, ServiceSpec, WaitFor};
use crate::error::{exit_code, ProcessEnd};
use crate::service::{self, Action, Event, Phase, Policy, ProbeKind, ServiceState, TimerKind};

use gate::Gate;
pub use gate::{WaitOutcome, WaitTicket};
pub use reload::{CommitGate, ReloadJob, ReloadOutcome, ReloadPlan, Reloader};

/// How often a shutdown after a dead thread reaps without a SIGCHLD.
const REAP_TICK: Duration = Duration::from_millis(50);

/// Signal numbers the loop gives a meaning to (the platform's, from [`crate::sys::signals`]).
pub mod signo {
    use crate::sys::signals;
    /// SIGHUP: reload.
    pub const HUP: i32 = signals::SIGHUP;
    /// SIGINT: shutdown.
    pub const INT: i32 = signals::SIGINT;
    /// SIGKILL.
    pub const KILL: i32 = signals::SIGKILL;
    /// SIGTERM: shutdown.
    pub const TERM: i32 = signals::SIGTERM;
    /// SIGCHLD: reap.
    pub const CHLD: i32 = signals::SIGCHLD;
}

/// One service as the supervisor runs it: its expanded spec and what the state machine needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    /// Service name (unique in the role).
    pub name: String,
    /// The expanded spec (no `{{ }}` left).
    pub spec: ServiceSpec,
    /// The state machine's view of the spec.
    pub policy: Policy,
    /// Signal numbers forwarded to its process group.
    pub forward_signals: Vec<i32>,
    /// Stop/reload signal numbers this service may send the agent (`agent_signals`).
    pub agent_signals: Vec<i32>,
}

impl ServiceDef {
    /// Builds the definition; `signal_by_name` resolves `stop.signal`, `forward_signals` and
    /// `agent_signals`.
    pub fn new(
        name: &str,
        spec: ServiceSpec,
        signal_by_name: impl Fn(&str) -> Option<i32>,
    ) -> Result<Self, String> {
        let stop_signal = signal_by_name(&spec.stop.signal)
            .ok_or_else(|| format!("service {name}: unknown stop signal {:?}", spec.stop.signal))?;
        let numbers = |names: &[String]| {
            names
                .iter()
                .map(|s| {
                    signal_by_name(s).ok_or_else(|| format!("service {name}: unknown signal {s:?}"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let forward_signals = numbers(&spec.forward_signals)?;
        let agent_signals = numbers(&spec.agent_signals)?;
        let policy = Policy {
            restart: spec.restart,
            backoff: spec.backoff.clone(),
            stop_signal,
            grace: spec.stop.grace.0,
            ready_probe: spec.ready.is_some(),
            health_threshold: spec.health.as_ref().map(|p| p.threshold.max(1)),
            drain: match &spec.stop.drain {
                Some(d) => Some(crate::service::DrainPolicy {
                    signal: signal_by_name(&d.signal).ok_or_else(|| {
                        format!("service {name}: unknown drain signal {:?}", d.signal)
                    })?,
                    grace: d.grace.0,
                    probe: d.until.is_some(),
                }),
                None => None,
            },
        };
        Ok(Self {
            name: name.to_string(),
            spec,
            policy,
            forward_signals,
            agent_signals,
        })
    }
}

/// A probe attempt the real system runs in a short-lived thread (tcp, http) or as a process (exec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTicket {
    /// Index of the service.
    pub service: usize,
    /// Which probe.
    pub kind: ProbeKind,
    /// Results with another generation are stale and ignored.
    pub generation: u64,
}

/// The seam between the supervisor and the system.
pub trait Sys {
    /// Current monotonic time.
    fn now(&self) -> Instant;
    /// Spawns a service in its own session and process group (pid = pgid), output captured.
    /// `Err(end)` when it could not be exec'd (127 not found, 126 not executable).
    fn spawn_service(&mut self, def: &ServiceDef) -> Result<i32, ProcessEnd>;
    /// Spawns the main command (`run -- CMD`), stdio inherited.
    fn spawn_main(&mut self, argv: &[std::ffi::OsString]) -> Result<i32, ProcessEnd>;
    /// Spawns an exec probe's argv as the service's user; its end comes back through [`Sys::reap`].
    fn spawn_probe(&mut self, def: &ServiceDef, argv: &[String]) -> Result<i32, ProcessEnd>;
    /// Starts a network (tcp/http) probe attempt that sends `Msg::ProbeResult` when done.
    fn start_network_probe(&mut self, probe: &Probe, ticket: ProbeTicket);
    /// Starts waiting (off the supervisor thread) until one of `wait`'s endpoints answers or its
    /// timeout passes; sends `Msg::RemoteWaited` then.
    fn start_remote_wait(&mut self, wait: &WaitFor, ticket: WaitTicket);
    /// Sends `signo` to one process.
    fn signal_process(&mut self, pid: i32, signo: i32);
    /// Sends `signo` to a process group.
    fn signal_group(&mut self, pgid: i32, signo: i32);
    /// Reaps every ended child (the only `waitpid(-1)`), calling `on_exit` for each.
    fn reap(&mut self, on_exit: &mut dyn FnMut(i32, ProcessEnd));
    /// The OOM-kill counter of the agent's memory cgroup (services share it); None when the
    /// kernel does not provide one here.
    fn oom_kill_count(&self) -> Option<u64>;
    /// True when process `pid` is dying (zombie, exiting, SIGKILL pending): an OOM kill the
    /// counter shows may be its own ([`oom`]).
    fn process_dying(&self, pid: i32) -> bool;
    /// Runs a reload's job off the supervisor thread and sends the message it returns.
    fn start_reload(&mut self, job: ReloadJob);
}

/// What other threads tell the supervisor.
#[derive(Debug)]
pub enum Msg {
    /// A signal arrived at the agent.
    Signal(i32),
    /// A stop or reload signal from a process inside the container, with the sender's lineage
    /// ([`sender::lineage`]): ignored when it comes from one of the services.
    SignalFrom(i32, Vec<i32>),
    /// A network probe attempt finished.
    ProbeResult {
        /// Which attempt.
        ticket: ProbeTicket,
        /// Passed?
        ok: bool,
    },
    /// A `wait_for` wait ended.
    RemoteWaited {
        /// Which wait.
        ticket: WaitTicket,
        /// What answered, after how long.
        outcome: WaitOutcome,
    },
    /// An operator request; the answer goes to `reply`.
    Request(Request, Sender<Reply>),
    /// A watched input file (configmeta.json, the cluster file) was rewritten: reload as on SIGHUP.
    ConfigChanged(PathBuf),
    /// A thread of the agent panicked, failed or ended (reported by
    /// [`crate::sys::thread::spawn_critical`]): logged, every service stopped, exit code 70.
    ThreadDied(String),
    /// A reload thread ended (see [`reload`]).
    Reloaded {
        /// Which reload.
        id: u64,
        /// The new services and changed files, or why loading failed.
        result: Result<ReloadPlan, String>,
    },
}

/// Operator requests (from the status socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Every service's state.
    Snapshot,
    /// Act on one service.
    Control {
        /// The service.
        service: String,
        /// What to do.
        action: Control,
    },
}

/// Control actions on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Start a stopped/failed service.
    Start,
    /// Stop it; it stays stopped.
    Stop,
    /// Restart it now.
    Restart,
    /// Send a signal to its process group.
    Signal(i32),
}

/// Answers to [`Request`]s.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Every service.
    Snapshot(Snapshot),
    /// The service after the control action.
    Service(ServiceInfo),
    /// No such service.
    UnknownService(String),
    /// The request cannot be served now (e.g. shutting down, no process to signal).
    Refused(String),
}

/// The agent and every service, as operators see them.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Services in definition order.
    pub services: Vec<ServiceInfo>,
    /// Processes reaped that were neither services, probes nor the main command.
    pub zombies_reaped: u64,
    /// The OOM-kill counter of the agent's memory cgroup now (every process in it, services or
    /// not, since the cgroup was created); None when there is no counter.
    pub oom_kills_total: Option<u64>,
    /// The last reload's result (None: no reload yet).
    pub last_reload: Option<ReloadOutcome>,
}

/// One service, as operators see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInfo {
    /// Name.
    pub name: String,
    /// `waiting`, `starting`, `running`, `backoff`, `stopping`, `stopped`, `failed`.
    pub state: &'static str,
    /// Current pid.
    pub pid: Option<i32>,
    /// Wall-clock start of the current (or last) process.
    pub started_at: Option<SystemTime>,
    /// Time since that start while it runs.
    pub uptime: Option<Duration>,
    /// Restarts since the agent started.
    pub restarts: u32,
    /// How the last process ended.
    pub last_exit: Option<ProcessEnd>,
    /// Ready for dependents.
    pub ready: bool,
    /// Liveness probe passing (true without one).
    pub healthy: bool,
    /// Its failure for good stops the container.
    pub critical: bool,
    /// A readiness probe is configured.
    pub has_ready_probe: bool,
    /// A liveness probe is configured.
    pub has_health_probe: bool,
    /// Its processes the kernel's OOM killer killed since the agent started; None when the
    /// cgroup has no OOM-kill counter.
    pub oom_kills: Option<u64>,
}

/// Supervisor options.
pub struct Options {
    /// Total time a shutdown may take before everything left gets SIGKILL.
    pub shutdown_grace: Duration,
    /// The main command (`run -- CMD`), started once the services are ready.
    pub main: Option<Vec<std::ffi::OsString>>,
    /// SIGHUP handler, run off the supervisor thread; `None` ignores SIGHUP (logged).
    pub reload: Option<Reloader>,
    /// How long a reload may take before it is given up (the running config is kept).
    pub reload_timeout: Duration,
}

/// Why the agent is stopping.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    /// SIGTERM/SIGINT.
    Signal(i32),
    /// The main command ended.
    MainEnded(ProcessEnd),
    /// A critical service failed for good.
    CriticalFailed(String, Option<ProcessEnd>),
    /// A helper thread died or the message channel closed.
    Internal(String),
}

struct ProbeRun {
    kind: ProbeKind,
    generation: u64,
    /// Next attempt (None while one is in flight).
    next_at: Option<Instant>,
    /// An exec probe's process and its kill deadline.
    exec: Option<ExecAttempt>,
}

/// An exec probe's process in flight.
#[derive(Clone, Copy)]
struct ExecAttempt {
    pid: i32,
    /// When it gets SIGKILL for taking longer than the probe's timeout (None once sent).
    kill_at: Option<Instant>,
}

struct Managed {
    def: ServiceDef,
    deps: Vec<usize>,
    state: ServiceState,
    started_wall: Option<SystemTime>,
    stop_sent: bool,
    probe: Option<ProbeRun>,
    /// The `wait_for` gate.
    gate: Gate,
    /// An operator sent SIGKILL to the current process (its SIGKILL death is then no OOM kill).
    operator_killed: bool,
    /// OOM kills attributed to it (see [`Supervisor::note_oom_kill`]).
    oom_kills: u64,
}

struct MainProc {
    argv: Vec<std::ffi::OsString>,
    pid: Option<i32>,
    end: Option<ProcessEnd>,
    kill_at: Option<Instant>,
}

struct ShutdownState {
    reason: Reason,
    deadline: Instant,
}

/// The supervision loop and everything it owns.
pub struct Supervisor<S: Sys> {
    sys: S,
    services: Vec<Managed>,
    main: Option<MainProc>,
    shutdown: Option<ShutdownState>,
    grace: Duration,
    reloads: reload::Reloads,
    generation: u64,
    zombies_reaped: u64,
    /// The cgroup's OOM-kill counter up to which every kill is explained ([`oom`]).
    oom_seen: Option<u64>,
}

impl<S: Sys> Supervisor<S> {
    /// Builds a supervisor over `defs`; `after` names must exist (validated earlier by the roles
    /// loader; unknown names are ignored here) and must not form a cycle.
    pub fn new(sys: S, defs: Vec<ServiceDef>, options: Options) -> Self {
        let index: BTreeMap<String, usize> = defs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), i))
            .collect();
        let services = defs
            .into_iter()
            .enumerate()
            .map(|(i, def)| {
                let deps = def
                    .spec
                    .after
                    .iter()
                    .filter_map(|n| index.get(n).copied())
                    .filter(|&d| d != i)
                    .collect();
                let seed = (i as u64 + 1) ^ u64::from(std::process::id()).rotate_left(32);
                let state = ServiceState::new(&def.policy, seed);
                Managed {
                    def,
                    deps,
                    state,
                    started_wall: None,
                    stop_sent: false,
                    probe: None,
                    gate: Gate::default(),
                    operator_killed: false,
                    oom_kills: 0,
                }
            })
            .collect();
        let oom_seen = sys.oom_kill_count();
        Self {
            sys,
            services,
            main: options.main.map(|argv| MainProc {
                argv,
                pid: None,
                end: None,
                kill_at: None,
            }),
            shutdown: None,
            grace: options.shutdown_grace,
            reloads: reload::Reloads::new(options.reload, options.reload_timeout),
            generation: 0,
            zombies_reaped: 0,
            oom_seen,
        }
    }

    /// Runs until every service (and the main command) has stopped; returns the exit code.
    pub fn run(mut self, rx: &Receiver<Msg>) -> i32 {
        self.advance();
        loop {
            if let Some(code) = self.finished() {
                return code;
            }
            let msg = match self.next_deadline() {
                Some(at) => {
                    let wait = at.saturating_duration_since(self.sys.now());
                    match rx.recv_timeout(wait) {
                        Ok(m) => Some(m),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => {
                            Some(Msg::ThreadDied("every event sender is gone".into()))
                        }
                    }
                }
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => Some(Msg::ThreadDied("every event sender is gone".into())),
                },
            };
            match msg {
                Some(msg) => self.handle(msg),
                // The dead thread may be the signal reader: SIGCHLD may never come again.
                None if self.thread_died() => self.reap(),
                None => {}
            }
            self.fire_timers();
            self.advance();
        }
    }

    /// Handles one message (public for tests driving the loop step by step).
    pub fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Signal(signo::CHLD) => self.reap(),
            Msg::Signal(sig @ (signo::TERM | signo::INT)) => {
                if self.shutdown.is_some() {
                    // A second request: no more grace.
                    log::warn!("second {} during shutdown: killing everything now", sig);
                    let now = self.sys.now();
                    if let Some(sd) = self.shutdown.as_mut() {
                        sd.deadline = now;
                    }
                    for i in 0..self.services.len() {
                        self.feed(
                            i,
                            Event::StopRequested {
                                deadline: Some(now),
                            },
                        );
                    }
                    if let Some(m) = self.main.as_mut() {
                        m.kill_at = Some(now);
                    }
                } else {
                    log::info!("signal {sig}: stopping every service");
                    self.begin_shutdown(Reason::Signal(sig));
                    if let Some(pid) = self.main.as_ref().and_then(|m| m.pid) {
                        self.sys.signal_process(pid, sig);
                    }
                }
            }
            Msg::SignalFrom(sig, lineage) => self.signal_from(sig, &lineage),
            Msg::Signal(signo::HUP) => self.reload("SIGHUP"),
            Msg::ConfigChanged(path) => self.reload(&format!("{} changed", path.display())),
            Msg::Reloaded { id, result } => self.reloaded(id, result),
            Msg::Signal(sig) => self.forward(sig),
            Msg::ProbeResult { ticket, ok } => self.probe_result(&ticket, ok),
            Msg::RemoteWaited { ticket, outcome } => self.remote_waited(ticket, &outcome),
            Msg::Request(req, reply) => {
                let answer = self.request(req);
                // The requester may have gone away: nothing to do then.
                let _ = reply.send(answer);
            }
            Msg::ThreadDied(what) => {
                log::error!("{what}: stopping every service");
                match self.shutdown.as_mut() {
                    Some(sd) => sd.reason = Reason::Internal(what),
                    None => self.begin_shutdown(Reason::Internal(what)),
                }
            }
        }
    }

    /// The current state of every service.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.sys.now();
        let oom_kills_total = self.sys.oom_kill_count();
        Snapshot {
            services: (0..self.services.len())
                .filter_map(|i| self.info(i, now, oom_kills_total.is_some()))
                .collect(),
            zombies_reaped: self.zombies_reaped,
            oom_kills_total,
            last_reload: self.reloads.last.clone(),
        }
    }

    /// Service `i` as operators see it; `oom_counted`: the cgroup has an OOM-kill counter.
    fn info(&self, i: usize, now: Instant, oom_counted: bool) -> Option<ServiceInfo> {
        let m = self.services.get(i)?;
        let s = &m.state;
        Some(ServiceInfo {
            name: m.def.name.clone(),
            state: s.label(),
            pid: s.pid,
            started_at: m.started_wall,
            uptime: s
                .pid
                .and(s.started_at)
                .map(|t| now.saturating_duration_since(t)),
            restarts: s.restarts,
            last_exit: s.last_exit,
            ready: s.ready,
            healthy: s.healthy,
            critical: m.def.spec.critical,
            has_ready_probe: m.def.policy.ready_probe,
            has_health_probe: m.def.policy.health_threshold.is_some(),
            oom_kills: oom_counted.then_some(m.oom_kills),
        })
    }

    fn request(&mut self, req: Request) -> Reply {
        let (name, action) = match req {
            Request::Snapshot => {
                self.settle_oom_kills();
                return Reply::Snapshot(self.snapshot());
            }
            Request::Control { service, action } => (service, action),
        };
        let Some(i) = self.services.iter().position(|m| m.def.name == name) else {
            return Reply::UnknownService(name);
        };
        if self.shutdown.is_some() && matches!(action, Control::Start | Control::Restart) {
            return Reply::Refused("the agent is shutting down".into());
        }
        match action {
            Control::Start => self.feed(i, Event::StartRequested),
            Control::Stop => self.feed(i, Event::StopRequested { deadline: None }),
            Control::Restart => self.feed(i, Event::RestartRequested),
            Control::Signal(sig) => {
                let Some(m) = self.services.get_mut(i).filter(|m| m.state.pid.is_some()) else {
                    return Reply::Refused(format!("service {name} has no process"));
                };
                m.operator_killed |= sig == signo::KILL;
                if let Some(pid) = m.state.pid {
                    self.sys.signal_group(pid, sig);
                }
            }
        }
        self.advance();
        let now = self.sys.now();
        let oom_counted = self.sys.oom_kill_count().is_some();
        match self.info(i, now, oom_counted) {
            Some(info) => Reply::Service(info),
            None => Reply::UnknownService(name),
        }
    }

    /// Steps one service's state machine and carries out the actions.
    fn feed(&mut self, i: usize, event: Event) {
        let now = self.sys.now();
        let Some(m) = self.services.get_mut(i) else {
            return;
        };
        let before = m.state.phase;
        let placeholder = ServiceState::new(&m.def.policy, 1);
        let state = std::mem::replace(&mut m.state, placeholder);
        let (state, actions) = service::step(&m.def.policy, state, event, now);
        m.state = state;
        if before != m.state.phase {
            log::debug!("{}: {:?} -> {:?}", m.def.name, before, m.state.phase);
        }
        for action in actions {
            self.act(i, action, now);
        }
        self.check_critical(i);
    }

    fn act(&mut self, i: usize, action: Action, now: Instant) {
        match action {
            Action::Spawn => {
                let Some(m) = self.services.get(i) else {
                    return;
                };
                let result = self.sys.spawn_service(&m.def);
                if let Some(m) = self.services.get_mut(i) {
                    m.started_wall = Some(SystemTime::now());
                    m.operator_killed = false;
                }
                match result {
                    Ok(pid) => {
                        log::info!("{}: started, pid {pid}", self.name(i));
                        self.feed(i, Event::Started { pid });
                    }
                    Err(end) => {
                        log::warn!("{}: could not start ({})", self.name(i), end.code());
                        self.feed(i, Event::SpawnFailed { end });
                    }
                }
            }
            Action::SignalGroup(sig) => {
                if let Some(pid) = self.services.get(i).and_then(|m| m.state.pid) {
                    self.sys.signal_group(pid, sig);
                }
            }
            Action::KillGroup => {
                if let Some(pid) = self.services.get(i).and_then(|m| m.state.pid) {
                    log::warn!("{}: still running after its grace: SIGKILL", self.name(i));
                    self.sys.signal_group(pid, signo::KILL);
                }
            }
            Action::StartProbe(kind) => {
                self.generation += 1;
                let generation = self.generation;
                if let Some(m) = self.services.get_mut(i) {
                    m.probe = Some(ProbeRun {
                        kind,
                        generation,
                        next_at: Some(now),
                        exec: None,
                    });
                }
            }
            Action::StopProbes => {
                let Some(m) = self.services.get_mut(i) else {
                    return;
                };
                if let Some(attempt) = m.probe.take().and_then(|p| p.exec) {
                    self.sys.signal_process(attempt.pid, signo::KILL);
                }
            }
        }
    }

    fn name(&self, i: usize) -> &str {
        self.services.get(i).map_or("?", |m| m.def.name.as_str())
    }

    fn check_critical(&mut self, i: usize) {
        if self.shutdown.is_some() {
            return;
        }
        let Some(m) = self.services.get(i) else {
            return;
        };
        if m.state.phase == Phase::Failed && m.def.spec.critical {
            let (name, end) = (m.def.name.clone(), m.state.last_exit);
            log::error!("{name}: critical service failed for good: stopping the container");
            self.begin_shutdown(Reason::CriticalFailed(name, end));
        }
    }

    fn begin_shutdown(&mut self, reason: Reason) {
        let deadline = self.sys.now() + self.grace;
        let signalled = matches!(reason, Reason::Signal(_));
        // Only SIGKILLs of this shutdown count for its exit code.
        for m in &mut self.services {
            m.state.killed = false;
        }
        self.shutdown = Some(ShutdownState { reason, deadline });
        if let Some(m) = self.main.as_mut() {
            m.kill_at = Some(deadline);
            if let Some(pid) = m.pid.filter(|_| !signalled) {
                // The main command goes first (a received TERM/INT is forwarded by the caller).
                self.sys.signal_process(pid, signo::TERM);
            }
        }
    }

    fn reap(&mut self) {
        let mut ended = Vec::new();
        self.sys.reap(&mut |pid, end| ended.push((pid, end)));
        for (pid, end) in ended {
            self.child_ended(pid, end);
        }
    }

    fn child_ended(&mut self, pid: i32, end: ProcessEnd) {
        if let Some(i) = self.services.iter().position(|m| m.state.pid == Some(pid)) {
            log::info!("{}: pid {pid} ended ({})", self.name(i), describe(end));
            self.note_oom_kill(i, end);
            // What is left of its process group does not outlive it.
            self.sys.signal_group(pid, signo::KILL);
            self.feed(i, Event::Exited { end });
            return;
        }
        let probe_owner = self.services.iter().position(|m| {
            m.probe
                .as_ref()
                .and_then(|p| p.exec)
                .is_some_and(|attempt| attempt.pid == pid)
        });
        // Not a service: a SIGKILL end explains one OOM kill the counter shows (never charged).
        self.note_other_end(end);
        if let Some(i) = probe_owner {
            let ticket = self
                .services
                .get(i)
                .and_then(|m| m.probe.as_ref())
                .map(|p| ProbeTicket {
                    service: i,
                    kind: p.kind,
                    generation: p.generation,
                });
            if let Some(ticket) = ticket {
                self.probe_result(&ticket, end.success());
            }
            return;
        }
        if let Some(m) = self.main.as_mut().filter(|m| m.pid == Some(pid)) {
            log::info!("main command ended ({})", describe(end));
            m.pid = None;
            m.end = Some(end);
            match self.shutdown.as_mut() {
                Some(_) => {}
                None => self.begin_shutdown(Reason::MainEnded(end)),
            }
            return;
        }
        self.zombies_reaped += 1;
        log::debug!("reaped orphan pid {pid}");
    }

    fn probe_result(&mut self, ticket: &ProbeTicket, ok: bool) {
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
        let interval = match ticket.kind {
            ProbeKind::Ready => m.def.spec.ready.as_ref(),
            ProbeKind::Health => m.def.spec.health.as_ref(),
            ProbeKind::Drain => m
                .def
                .spec
                .stop
                .drain
                .as_ref()
                .and_then(|d| d.until.as_ref()),
        }
        .map_or(Duration::from_secs(1), |p| p.interval.0);
        run.exec = None;
        run.next_at = Some(now + interval);
        let event = if ok {
            Event::ProbePassed(ticket.kind)
        } else {
            Event::ProbeFailed(ticket.kind)
        };
        self.feed(ticket.service, event);
    }

    fn start_probe_attempt(&mut self, i: usize, now: Instant) {
        let Some(m) = self.services.get_mut(i) else {
            return;
        };
        let Some(run) = m.probe.as_mut() else { return };
        let Some(probe) = (match run.kind {
            ProbeKind::Ready => m.def.spec.ready.clone(),
            ProbeKind::Health => m.def.spec.health.clone(),
            ProbeKind::Drain => m.def.spec.stop.drain.as_ref().and_then(|d| d.until.clone()),
        }) else {
            m.probe = None;
            return;
        };
        run.next_at = None;
        let ticket = ProbeTicket {
            service: i,
            kind: run.kind,
            generation: run.generation,
        };
        if let Some(argv) = &probe.exec {
            let result = match self.services.get(i) {
                Some(m) => self.sys.spawn_probe(&m.def, argv),
                None => return,
            };
            match result {
                Ok(pid) => {
                    if let Some(run) = self.services.get_mut(i).and_then(|m| m.probe.as_mut()) {
                        run.exec = Some(ExecAttempt {
                            pid,
                            kill_at: Some(now + probe.timeout.0),
                        });
                    }
                }
                Err(_) => self.probe_result(&ticket, false),
            }
        } else {
            self.sys.start_network_probe(&probe, ticket);
        }
    }

    fn forward(&mut self, sig: i32) {
        for m in &self.services {
            if let Some(pid) = m.state.pid.filter(|_| m.def.forward_signals.contains(&sig)) {
                self.sys.signal_group(pid, sig);
            }
        }
        if let Some(pid) = self.main.as_ref().and_then(|m| m.pid) {
            self.sys.signal_process(pid, sig);
        }
    }

    /// Fires every due timer: service backoff/grace, probe attempts, exec probe timeouts, main kill.
    fn fire_timers(&mut self) {
        let now = self.sys.now();
        self.reloads.expire(now);
        for i in 0..self.services.len() {
            let Some(m) = self.services.get(i) else {
                continue;
            };
            if let Some(t) = m.state.timer.filter(|t| t.at <= now) {
                match t.kind {
                    TimerKind::Backoff if self.shutdown.is_some() => {
                        self.feed(i, Event::StopRequested { deadline: None })
                    }
                    TimerKind::Backoff => self.feed(i, Event::BackoffElapsed),
                    TimerKind::Grace | TimerKind::Drain => self.feed(i, Event::GraceElapsed),
                }
            }
            let Some(run) = self.services.get(i).and_then(|m| m.probe.as_ref()) else {
                continue;
            };
            let timed_out = run
                .exec
                .filter(|a| a.kill_at.is_some_and(|at| at <= now))
                .map(|a| a.pid);
            if let Some(pid) = timed_out {
                // Its end (SIGKILL) comes back through the reaper as a failed attempt.
                self.sys.signal_process(pid, signo::KILL);
                if let Some(a) = self
                    .services
                    .get_mut(i)
                    .and_then(|m| m.probe.as_mut())
                    .and_then(|p| p.exec.as_mut())
                {
                    a.kill_at = None;
                }
            } else if run.next_at.is_some_and(|at| at <= now) {
                self.start_probe_attempt(i, now);
            }
        }
        if let Some(m) = self.main.as_mut() {
            if let (Some(pid), Some(at)) = (m.pid, m.kill_at) {
                if at <= now {
                    m.kill_at = None;
                    self.sys.signal_process(pid, signo::KILL);
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let services = self.services.iter().flat_map(|m| {
            let timer = m.state.timer.map(|t| t.at);
            let probe = m
                .probe
                .as_ref()
                .and_then(|p| p.next_at.or(p.exec.and_then(|a| a.kill_at)));
            timer.into_iter().chain(probe)
        });
        let main = self.main.as_ref().and_then(|m| m.pid.and(m.kill_at));
        let reap_tick = self.thread_died().then(|| self.sys.now() + REAP_TICK);
        let reload = self.reloads.deadline();
        services.chain(main).chain(reap_tick).chain(reload).min()
    }

    /// A thread of the agent died: the shutdown then reaps on a [`REAP_TICK`] instead of waiting
    /// for SIGCHLD (the only polling of the agent, and only on this failure path).
    fn thread_died(&self) -> bool {
        self.shutdown
            .as_ref()
            .is_some_and(|sd| matches!(sd.reason, Reason::Internal(_)))
    }

    /// Starts what can start, and during shutdown stops what can stop (reverse dependency order).
    fn advance(&mut self) {
        loop {
            let mut progressed = false;
            if self.shutdown.is_none() {
                for i in 0..self.services.len() {
                    if self
                        .services
                        .get(i)
                        .is_some_and(|m| m.state.phase == Phase::Waiting)
                        && self.deps_ready(i)
                        && self.remote_gate_open(i)
                    {
                        self.feed(i, Event::DependenciesReady);
                        progressed = true;
                    }
                }
                self.start_main_when_ready();
            } else {
                progressed |= self.shutdown_step();
            }
            if !progressed {
                break;
            }
        }
    }

    fn deps_ready(&self, i: usize) -> bool {
        self.services.get(i).is_some_and(|m| {
            m.deps.iter().all(|&d| {
                self.services.get(d).is_some_and(|dep| {
                    (dep.state.phase == Phase::Running && dep.state.ready)
                        || (dep.state.phase == Phase::Stopped
                            && dep.state.last_exit.is_some_and(ProcessEnd::success))
                })
            })
        })
    }

    fn start_main_when_ready(&mut self) {
        let settled = self.services.iter().all(|m| {
            (m.state.phase == Phase::Running && m.state.ready)
                || matches!(m.state.phase, Phase::Stopped | Phase::Failed)
        });
        let Some(main) = self.main.as_mut() else {
            return;
        };
        if !settled || main.pid.is_some() || main.end.is_some() {
            return;
        }
        match self.sys.spawn_main(&main.argv) {
            Ok(pid) => {
                log::info!("main command started, pid {pid}");
                main.pid = Some(pid);
            }
            Err(end) => {
                main.end = Some(end);
                self.begin_shutdown(Reason::MainEnded(end));
            }
        }
    }

    /// One round of the shutdown: the main command first, then every service none of whose
    /// dependents still has a process (reverse dependency order). Idle services stop at once.
    fn shutdown_step(&mut self) -> bool {
        let Some(deadline) = self.shutdown.as_ref().map(|s| s.deadline) else {
            return false;
        };
        let main_running = self.main.as_ref().is_some_and(|m| m.pid.is_some());
        let mut progressed = false;
        for i in 0..self.services.len() {
            let Some(m) = self.services.get(i) else {
                continue;
            };
            if m.stop_sent {
                continue;
            }
            let busy = has_process(&m.state);
            let dependents_busy = self
                .services
                .iter()
                .any(|other| other.deps.contains(&i) && has_process(&other.state));
            if busy && (main_running || dependents_busy) {
                continue;
            }
            let down = matches!(m.state.phase, Phase::Stopped | Phase::Failed);
            if let Some(m) = self.services.get_mut(i) {
                m.stop_sent = true;
            }
            if !down {
                self.feed(
                    i,
                    Event::StopRequested {
                        deadline: Some(deadline),
                    },
                );
            }
            progressed = true;
        }
        progressed
    }

    /// The exit code once everything has stopped, else None.
    fn finished(&self) -> Option<i32> {
        let sd = self.shutdown.as_ref()?;
        if self.main.as_ref().is_some_and(|m| m.pid.is_some()) {
            return None;
        }
        if !self
            .services
            .iter()
            .all(|m| m.state.is_down() && m.state.pid.is_none())
        {
            return None;
        }
        let main_end = self.main.as_ref().and_then(|m| m.end);
        Some(match &sd.reason {
            Reason::Internal(_) => exit_code::INTERNAL,
            Reason::CriticalFailed(_, end) => match end.map(ProcessEnd::code) {
                Some(0) | None => exit_code::FAILURE,
                Some(code) => code,
            },
            Reason::MainEnded(end) => end.code(),
            Reason::Signal(_) => match main_end {
                Some(end) => end.code(),
                None if self.services.iter().any(|m| m.state.killed) => {
                    exit_code::SIGNAL_BASE + signo::KILL
                }
                None => exit_code::OK,
            },
        })
    }
}

/// A process exists or is being started for it.
fn has_process(s: &ServiceState) -> bool {
    matches!(s.phase, Phase::Starting | Phase::Running | Phase::Stopping)
}

/// `exit code 3` / `killed by signal 36 (RTMIN+2)` for logs.
pub fn describe(end: ProcessEnd) -> String {
    match end {
        ProcessEnd::Exited(c) => format!("exit code {c}"),
        ProcessEnd::Signaled(s) => match crate::signal_names::short_signal_name(s) {
            Some(name) => format!("killed by signal {s} ({name})"),
            None => format!("killed by signal {s}"),
        },
    }
}

/// Services to restart after a reload: those whose expanded spec changed, and those whose strings
/// (command, environment, working directory) mention a changed file or its directory. When files
/// changed but no service mentions any of them, every service is restarted (it may read them
/// indirectly, e.g. spark-env.sh sourced by spark-class).
pub fn restart_set(current: &[ServiceDef], plan: &ReloadPlan) -> Vec<usize> {
    let mut out = Vec::new();
    let mut any_file_match = false;
    let mut file_matches = Vec::new();
    for (i, old) in current.iter().enumerate() {
        let Some(new) = plan.services.iter().find(|n| n.name == old.name) else {
            continue;
        };
        if new.spec != old.spec {
            out.push(i);
            continue;
        }
        let mentions = plan.changed_files.iter().any(|f| {
            let dir = f.parent().map(|d| d.to_string_lossy().into_owned());
            let file = f.to_string_lossy().into_owned();
            service_strings(&new.spec).any(|s| {
                s.contains(file.as_str())
                    || dir
                        .as_deref()
                        .is_some_and(|d| !d.is_empty() && d != "/" && s.contains(d))
            })
        });
        if mentions {
            any_file_match = true;
            file_matches.push(i);
        }
    }
    if !plan.changed_files.is_empty() {
        if any_file_match {
            out.extend(file_matches);
        } else {
            out.extend(
                current
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| plan.services.iter().any(|n| n.name == d.name))
                    .map(|(i, _)| i),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn service_strings(spec: &ServiceSpec) -> impl Iterator<Item = &String> {
    spec.command
        .iter()
        .chain(spec.environment.values())
        .chain(spec.working_dir.iter())
}

#[cfg(test)]
mod tests;
