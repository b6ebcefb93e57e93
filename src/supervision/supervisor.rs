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
pub mod plan;
mod probes;
pub mod protocol;
pub mod reload;
pub mod sender;
mod shutdown;

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use crate::error::ProcessEnd;
use crate::supervision::probe::ProbePlan;
use crate::supervision::remote_wait::WaitPlan;
use crate::supervision::service::{self, Action, Event, Phase, ServiceState, TimerKind};

use gate::Gate;
pub use gate::{WaitOutcome, WaitTicket};
pub use plan::{ServiceDef, DEFAULT_UMASK};
use probes::ProbeRun;
pub use protocol::{Control, Msg, ProbeTicket, Reply, Request, ServiceInfo, Snapshot};
pub use reload::{
    restart_set, CommitGate, ReloadError, ReloadJob, ReloadOutcome, ReloadPlan, Reloader,
};
use shutdown::{Reason, ShutdownState};

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
    fn start_network_probe(&mut self, probe: &ProbePlan, ticket: ProbeTicket);
    /// Starts waiting (off the supervisor thread) until one of `wait`'s endpoints answers or its
    /// timeout passes; sends `Msg::RemoteWaited` then.
    fn start_remote_wait(&mut self, wait: &WaitPlan, ticket: WaitTicket);
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

    /// Handles one message (the unit tests drive the loop by it, step by step).
    fn handle(&mut self, msg: Msg) {
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
            state: s.public(),
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
                if let Some(sd) = self.shutdown.as_mut() {
                    sd.killed = true;
                }
            }
            Action::StartProbe(kind) => {
                self.generation += 1;
                let generation = self.generation;
                if let Some(m) = self.services.get_mut(i) {
                    m.probe = Some(ProbeRun::new(kind, generation, now));
                }
            }
            Action::StopProbes => {
                let Some(m) = self.services.get_mut(i) else {
                    return;
                };
                if let Some(pid) = m.probe.take().and_then(|p| p.exec_pid()) {
                    self.sys.signal_process(pid, signo::KILL);
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
        let probe_attempt = self.services.iter().enumerate().find_map(|(i, m)| {
            m.probe
                .as_ref()
                .filter(|p| p.exec_pid() == Some(pid))
                .map(|p| p.ticket(i))
        });
        // Not a service: a SIGKILL end explains one OOM kill the counter shows (never charged).
        self.note_other_end(end);
        if let Some(ticket) = probe_attempt {
            self.probe_result(&ticket, end.success());
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
            self.fire_probe(i, now);
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
            let probe = m.probe.as_ref().and_then(ProbeRun::deadline);
            timer.into_iter().chain(probe)
        });
        let main = self.main.as_ref().and_then(|m| m.pid.and(m.kill_at));
        let reap_tick = self.thread_died().then(|| self.sys.now() + REAP_TICK);
        let reload = self.reloads.deadline();
        services.chain(main).chain(reap_tick).chain(reload).min()
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

#[cfg(test)]
mod tests;
