//! The supervision logic against a fake system: which processes it spawns and signals, when.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::config::role::{BackoffSpec, DurationSpec, Probe, RestartPolicy, ServiceSpec};
use crate::supervision::service::ProbeKind;
use crate::sys::privileges::AgentCredentials;

#[derive(Default)]
struct World {
    now: Option<Instant>,
    next_pid: i32,
    log: Vec<String>,
    pids: BTreeMap<i32, String>,
    exits: Vec<(i32, ProcessEnd)>,
    fail_spawn: BTreeMap<String, ProcessEnd>,
    /// The cgroup's OOM-kill counter (None: no counter).
    oom_kills: Option<u64>,
    /// Pids `process_dying` reports as dying.
    dying: Vec<i32>,
    /// Reload jobs started, not yet run (a test runs them, or lets them stall).
    reloads: Vec<ReloadJob>,
}

#[derive(Clone)]
struct FakeSys(Rc<RefCell<World>>);

impl FakeSys {
    fn new() -> Self {
        let w = World {
            now: Some(Instant::now()),
            next_pid: 100,
            ..World::default()
        };
        FakeSys(Rc::new(RefCell::new(w)))
    }
    fn advance(&self, d: Duration) {
        let mut w = self.0.borrow_mut();
        w.now = w.now.map(|n| n + d);
    }
    fn log(&self) -> Vec<String> {
        self.0.borrow().log.clone()
    }
    fn clear(&self) {
        self.0.borrow_mut().log.clear();
    }
    fn pid_of(&self, name: &str) -> i32 {
        let w = self.0.borrow();
        *w.pids.iter().rev().find(|(_, n)| *n == name).unwrap().0
    }
    fn exit(&self, name: &str, end: ProcessEnd) {
        let pid = self.pid_of(name);
        self.0.borrow_mut().exits.push((pid, end));
    }
    fn spawn(&self, name: String) -> Result<i32, ProcessEnd> {
        let mut w = self.0.borrow_mut();
        if let Some(end) = w.fail_spawn.get(&name).copied() {
            w.log.push(format!("spawn-failed {name}"));
            return Err(end);
        }
        w.next_pid += 1;
        let pid = w.next_pid;
        w.pids.insert(pid, name.clone());
        w.log.push(format!("spawn {name}"));
        Ok(pid)
    }
    fn set_oom_kills(&self, n: Option<u64>) {
        self.0.borrow_mut().oom_kills = n;
    }
    fn name(&self, pid: i32) -> String {
        self.0
            .borrow()
            .pids
            .get(&pid)
            .cloned()
            .unwrap_or_else(|| pid.to_string())
    }
}

impl Sys for FakeSys {
    fn now(&self) -> Instant {
        self.0.borrow().now.unwrap()
    }
    fn spawn_service(&mut self, def: &ServiceDef) -> Result<i32, ProcessEnd> {
        self.spawn(def.name.clone())
    }
    fn spawn_main(&mut self, _argv: &[OsString]) -> Result<i32, ProcessEnd> {
        self.spawn("main".into())
    }
    fn spawn_probe(&mut self, _def: &ServiceDef, argv: &[String]) -> Result<i32, ProcessEnd> {
        self.spawn(format!("probe {}", argv.join(" ")))
    }
    fn start_network_probe(&mut self, _probe: &ProbePlan, ticket: ProbeTicket) {
        let line = format!(
            "probe {} {:?} gen {}",
            ticket.service, ticket.kind, ticket.generation
        );
        self.0.borrow_mut().log.push(line);
    }
    fn start_remote_wait(&mut self, wait: &WaitPlan, ticket: WaitTicket) {
        let line = format!(
            "wait {} {} gen {}",
            ticket.service, wait.described, ticket.generation
        );
        self.0.borrow_mut().log.push(line);
    }
    fn signal_process(&mut self, pid: i32, signo: i32) {
        let line = format!("kill {} {signo}", self.name(pid));
        self.0.borrow_mut().log.push(line);
    }
    fn signal_group(&mut self, pgid: i32, signo: i32) {
        // The clean-up SIGKILL to the group of a reaped leader is not interesting here.
        if !self.0.borrow().pids.contains_key(&pgid) {
            return;
        }
        let line = format!("killpg {} {signo}", self.name(pgid));
        self.0.borrow_mut().log.push(line);
    }
    fn reap(&mut self, on_exit: &mut dyn FnMut(i32, ProcessEnd)) {
        let exits = std::mem::take(&mut self.0.borrow_mut().exits);
        for (pid, end) in exits {
            self.0.borrow_mut().pids.remove(&pid);
            on_exit(pid, end);
        }
    }
    fn oom_kill_count(&self) -> Option<u64> {
        self.0.borrow().oom_kills
    }
    fn process_dying(&self, pid: i32) -> bool {
        // Dying: marked so, or ended and not reaped yet.
        let w = self.0.borrow();
        w.dying.contains(&pid) || w.exits.iter().any(|(p, _)| *p == pid)
    }
    fn start_reload(&mut self, job: ReloadJob) {
        self.0.borrow_mut().log.push("reload started".into());
        self.0.borrow_mut().reloads.push(job);
    }
}

fn spec(after: &[&str]) -> ServiceSpec {
    let yaml = format!("command: [x]\nafter: [{}]\n", after.join(", "));
    let mut s: ServiceSpec = serde_yaml::from_str(&yaml).unwrap();
    s.backoff = BackoffSpec {
        initial: DurationSpec(Duration::from_millis(10)),
        factor: 2.0,
        limit: DurationSpec(Duration::from_millis(100)),
        max_failures: 3,
        window: DurationSpec(Duration::from_secs(10)),
    };
    s.stop.grace = DurationSpec(Duration::from_secs(2));
    s
}

/// The test process's own credentials, as the agent's.
fn agent() -> AgentCredentials {
    AgentCredentials::current().unwrap()
}

fn def(name: &str, spec: ServiceSpec) -> ServiceDef {
    ServiceDef::new(name, spec, None, &agent(), |s| match s {
        "TERM" => Some(15),
        "PWR" => Some(30),
        "USR1" => Some(10),
        _ => None,
    })
    .unwrap()
}

fn http_probe() -> Probe {
    serde_yaml::from_str("http: http://127.0.0.1:1/\ninterval: 50ms").unwrap()
}

fn supervisor(
    sys: &FakeSys,
    defs: Vec<ServiceDef>,
    main: Option<Vec<OsString>>,
) -> Supervisor<FakeSys> {
    let mut s = Supervisor::new(
        sys.clone(),
        defs,
        Options {
            shutdown_grace: Duration::from_secs(9),
            main,
            reload: None,
            reload_timeout: Duration::from_secs(5),
        },
    );
    s.advance();
    s
}

/// Delivers a message, then fires due timers and advances, as one loop iteration does.
fn deliver(s: &mut Supervisor<FakeSys>, msg: Msg) {
    s.handle(msg);
    s.fire_timers();
    s.advance();
}

fn tick(s: &mut Supervisor<FakeSys>) {
    s.fire_timers();
    s.advance();
}

fn state(s: &Supervisor<FakeSys>, name: &str) -> ServiceInfo {
    s.snapshot()
        .services
        .into_iter()
        .find(|i| i.name == name)
        .unwrap()
}

#[test]
fn dependents_wait_for_readiness_and_independent_services_start_together() {
    let sys = FakeSys::new();
    let mut a = spec(&[]);
    a.ready = Some(http_probe());
    let defs = vec![def("a", a), def("b", spec(&["a"])), def("c", spec(&[]))];
    let mut s = supervisor(&sys, defs, None);
    assert_eq!(sys.log(), vec!["spawn a", "spawn c"]);
    tick(&mut s);
    assert_eq!(sys.log().last().unwrap(), "probe 0 Ready gen 1");
    assert_eq!(state(&s, "b").state, "waiting");
    // A failed attempt: still not ready, the next attempt after the interval.
    let ticket = ProbeTicket {
        service: 0,
        kind: ProbeKind::Ready,
        generation: 1,
    };
    deliver(
        &mut s,
        Msg::ProbeResult {
            ticket: ticket.clone(),
            ok: false,
        },
    );
    assert_eq!(
        s.next_deadline(),
        Some(sys.now() + Duration::from_millis(50))
    );
    sys.advance(Duration::from_millis(50));
    sys.clear();
    tick(&mut s);
    assert_eq!(sys.log(), vec!["probe 0 Ready gen 1"]);
    deliver(&mut s, Msg::ProbeResult { ticket, ok: true });
    assert_eq!(sys.log().last().unwrap(), "spawn b");
    assert!(state(&s, "a").ready);
    // No probes left, no timers: the loop would block in recv() (zero wakeups).
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn stale_probe_results_are_ignored() {
    let sys = FakeSys::new();
    let mut a = spec(&[]);
    a.ready = Some(http_probe());
    let mut s = supervisor(&sys, vec![def("a", a), def("b", spec(&["a"]))], None);
    tick(&mut s);
    let stale = ProbeTicket {
        service: 0,
        kind: ProbeKind::Ready,
        generation: 99,
    };
    deliver(
        &mut s,
        Msg::ProbeResult {
            ticket: stale,
            ok: true,
        },
    );
    assert!(!state(&s, "a").ready);
    assert!(!sys.log().contains(&"spawn b".to_string()));
}

#[test]
fn a_crash_is_restarted_after_the_backoff_and_a_crash_loop_fails() {
    let sys = FakeSys::new();
    let mut a = spec(&[]);
    a.critical = false;
    let mut s = supervisor(&sys, vec![def("a", a)], None);
    for round in 1..=2 {
        sys.exit("a", ProcessEnd::Signaled(9));
        sys.clear();
        deliver(&mut s, Msg::Signal(signo::CHLD));
        assert_eq!(state(&s, "a").state, "backoff", "round {round}");
        let due = s.next_deadline().unwrap();
        sys.advance(due - sys.now());
        tick(&mut s);
        assert_eq!(sys.log().last().unwrap(), "spawn a");
        assert_eq!(state(&s, "a").restarts, round);
    }
    sys.exit("a", ProcessEnd::Exited(4));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    let info = state(&s, "a");
    assert_eq!(
        (info.state.label(), info.last_exit),
        ("failed", Some(ProcessEnd::Exited(4)))
    );
    // Not critical: the agent keeps running.
    assert_eq!(s.finished(), None);
}

#[test]
fn a_critical_failure_stops_everything_in_reverse_order_with_its_code() {
    let sys = FakeSys::new();
    let mut worker = spec(&["master"]);
    worker.restart = RestartPolicy::Never;
    let defs = vec![
        def("master", spec(&[])),
        def("worker", worker),
        def("other", spec(&[])),
    ];
    let mut s = supervisor(&sys, defs, None);
    sys.clear();
    sys.exit("worker", ProcessEnd::Exited(3));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    // master and other both have no running dependents: both get TERM now.
    let log = sys.log();
    assert!(log.contains(&"killpg master 15".to_string()), "{log:?}");
    assert!(log.contains(&"killpg other 15".to_string()), "{log:?}");
    sys.exit("master", ProcessEnd::Signaled(15));
    sys.exit("other", ProcessEnd::Exited(0));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(s.finished(), Some(3));
}

#[test]
fn shutdown_stops_dependents_first_and_kills_after_the_grace() {
    let sys = FakeSys::new();
    let defs = vec![def("master", spec(&[])), def("worker", spec(&["master"]))];
    let mut s = supervisor(&sys, defs, None);
    sys.clear();
    deliver(&mut s, Msg::Signal(signo::TERM));
    assert_eq!(sys.log(), vec!["killpg worker 15"]);
    assert_eq!(state(&s, "master").state, "running");
    // The worker ignores TERM: SIGKILL to its group after its 2 s grace, not before.
    sys.advance(Duration::from_millis(1999));
    tick(&mut s);
    assert_eq!(sys.log().len(), 1);
    sys.advance(Duration::from_millis(1));
    tick(&mut s);
    assert_eq!(sys.log().last().unwrap(), "killpg worker 9");
    sys.exit("worker", ProcessEnd::Signaled(9));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert!(sys.log().contains(&"killpg master 15".to_string()));
    assert_eq!(s.finished(), None);
    sys.exit("master", ProcessEnd::Exited(143));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    // A service needed SIGKILL: 137 tells the shutdown was not clean.
    assert_eq!(s.finished(), Some(137));
}

#[test]
fn a_clean_shutdown_exits_zero_and_a_crash_during_it_does_not_respawn() {
    let sys = FakeSys::new();
    let defs = vec![def("master", spec(&[])), def("worker", spec(&["master"]))];
    let mut s = supervisor(&sys, defs, None);
    deliver(&mut s, Msg::Signal(signo::INT));
    // The master crashes while the worker is still stopping: it is not restarted.
    sys.exit("master", ProcessEnd::Exited(1));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    sys.advance(Duration::from_secs(1));
    tick(&mut s);
    assert_eq!(state(&s, "master").state, "stopped");
    sys.exit("worker", ProcessEnd::Exited(143));
    sys.clear();
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert!(!sys.log().iter().any(|l| l.starts_with("spawn")));
    assert_eq!(s.finished(), Some(0));
}

#[test]
fn the_total_grace_caps_every_service_grace() {
    let sys = FakeSys::new();
    let mut a = spec(&[]);
    a.stop.grace = DurationSpec(Duration::from_secs(60));
    let mut s = supervisor(&sys, vec![def("a", a)], None);
    deliver(&mut s, Msg::Signal(signo::TERM));
    assert_eq!(s.next_deadline(), Some(sys.now() + Duration::from_secs(9)));
}

#[test]
fn main_command_starts_when_services_are_ready_and_its_code_is_the_exit_code() {
    let sys = FakeSys::new();
    let mut a = spec(&[]);
    a.ready = Some(http_probe());
    let mut s = supervisor(&sys, vec![def("a", a)], Some(vec!["cmd".into()]));
    tick(&mut s);
    assert!(!sys.log().contains(&"spawn main".to_string()));
    let ticket = ProbeTicket {
        service: 0,
        kind: ProbeKind::Ready,
        generation: 1,
    };
    deliver(&mut s, Msg::ProbeResult { ticket, ok: true });
    assert_eq!(sys.log().last().unwrap(), "spawn main");
    // Signals other than TERM/INT/HUP/CHLD go to the main command.
    deliver(&mut s, Msg::Signal(10));
    assert_eq!(sys.log().last().unwrap(), "kill main 10");
    sys.exit("main", ProcessEnd::Exited(5));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(sys.log().last().unwrap(), "killpg a 15");
    sys.exit("a", ProcessEnd::Exited(0));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(s.finished(), Some(5));
}

#[test]
fn sigterm_with_a_main_command_stops_it_first_and_exits_with_its_code() {
    let sys = FakeSys::new();
    let mut s = supervisor(&sys, vec![def("a", spec(&[]))], Some(vec!["cmd".into()]));
    sys.clear();
    deliver(&mut s, Msg::Signal(signo::TERM));
    assert_eq!(sys.log(), vec!["kill main 15"]);
    sys.exit("main", ProcessEnd::Signaled(15));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(sys.log().last().unwrap(), "killpg a 15");
    sys.exit("a", ProcessEnd::Signaled(15));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(s.finished(), Some(143));
}

#[test]
fn a_missing_main_command_exits_127_after_stopping_services() {
    let sys = FakeSys::new();
    sys.0
        .borrow_mut()
        .fail_spawn
        .insert("main".into(), ProcessEnd::Exited(127));
    let mut s = supervisor(&sys, vec![def("a", spec(&[]))], Some(vec!["nope".into()]));
    sys.exit("a", ProcessEnd::Exited(0));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(s.finished(), Some(127));
}

#[test]
fn forwarded_signals_reach_only_the_services_that_ask_for_them() {
    let sys = FakeSys::new();
    let mut w = spec(&[]);
    w.forward_signals = vec!["PWR".into()];
    let mut s = supervisor(&sys, vec![def("w", w), def("m", spec(&[]))], None);
    sys.clear();
    deliver(&mut s, Msg::Signal(30));
    assert_eq!(sys.log(), vec!["killpg w 30"]);
}

#[test]
fn operator_control_and_unknown_services() {
    let sys = FakeSys::new();
    let mut s = supervisor(&sys, vec![def("a", spec(&[]))], None);
    let (tx, rx) = std::sync::mpsc::channel();
    let ctl = |action| Request::Control {
        service: "a".into(),
        action,
    };
    deliver(&mut s, Msg::Request(ctl(Control::Stop), tx.clone()));
    let Reply::Service(info) = rx.recv().unwrap() else {
        panic!()
    };
    assert_eq!(info.state, "stopping");
    sys.exit("a", ProcessEnd::Signaled(15));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(state(&s, "a").state, "stopped");
    assert_eq!(
        s.finished(),
        None,
        "an operator stop does not end the agent"
    );
    sys.clear();
    deliver(&mut s, Msg::Request(ctl(Control::Start), tx.clone()));
    let Reply::Service(info) = rx.recv().unwrap() else {
        panic!()
    };
    assert_eq!(info.state, "running");
    assert_eq!(sys.log(), vec!["spawn a"]);
    deliver(&mut s, Msg::Request(ctl(Control::Signal(10)), tx.clone()));
    assert!(matches!(rx.recv().unwrap(), Reply::Service(_)));
    assert_eq!(sys.log().last().unwrap(), "killpg a 10");
    let bad = Request::Control {
        service: "zz".into(),
        action: Control::Stop,
    };
    deliver(&mut s, Msg::Request(bad, tx.clone()));
    assert_eq!(rx.recv().unwrap(), Reply::UnknownService("zz".into()));
    deliver(&mut s, Msg::Request(Request::Snapshot, tx));
    let Reply::Snapshot(snap) = rx.recv().unwrap() else {
        panic!()
    };
    assert_eq!(snap.services.len(), 1);
}

#[test]
fn orphans_are_counted_and_exec_probes_come_back_through_the_reaper() {
    let sys = FakeSys::new();
    let mut a = spec(&[]);
    a.ready = Some(serde_yaml::from_str("exec: [check]\ninterval: 10ms").unwrap());
    let mut s = supervisor(&sys, vec![def("a", a), def("b", spec(&["a"]))], None);
    tick(&mut s);
    assert_eq!(sys.log().last().unwrap(), "spawn probe check");
    sys.0.borrow_mut().exits.push((9999, ProcessEnd::Exited(0)));
    sys.exit("probe check", ProcessEnd::Exited(0));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert!(state(&s, "a").ready);
    assert_eq!(sys.log().last().unwrap(), "spawn b");
    assert_eq!(s.snapshot().zombies_reaped, 1);
}

#[test]
fn thread_death_shuts_down_with_70() {
    let sys = FakeSys::new();
    let mut s = supervisor(&sys, vec![def("a", spec(&[]))], None);
    deliver(&mut s, Msg::ThreadDied("signal thread".into()));
    sys.exit("a", ProcessEnd::Exited(0));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(s.finished(), Some(70));
}

#[test]
fn reload_restarts_only_changed_services() {
    let a = def("a", spec(&[]));
    let b = def("b", spec(&[]));
    let mut a2 = a.clone();
    a2.spec.environment.insert("X".into(), "2".into());
    let plan = ReloadPlan {
        services: vec![a2, b.clone()],
        changed_files: vec![],
    };
    assert_eq!(restart_set(&[a.clone(), b.clone()], &plan), vec![0]);
    // A changed file mentioned by b's environment: only b.
    let mut b_conf = b.clone();
    b_conf
        .spec
        .environment
        .insert("SPARK_CONF_DIR".into(), "/etc/b".into());
    let plan = ReloadPlan {
        services: vec![a.clone(), b_conf.clone()],
        changed_files: vec!["/etc/b/b.conf".into()],
    };
    assert_eq!(restart_set(&[a.clone(), b_conf.clone()], &plan), vec![1]);
    // A changed file no service mentions: everyone.
    let plan = ReloadPlan {
        services: vec![a.clone(), b.clone()],
        changed_files: vec!["/x/y".into()],
    };
    assert_eq!(restart_set(&[a.clone(), b.clone()], &plan), vec![0, 1]);
    // Nothing changed: nobody.
    let plan = ReloadPlan {
        services: vec![a.clone(), b.clone()],
        changed_files: vec![],
    };
    assert!(restart_set(&[a, b], &plan).is_empty());
}

#[test]
fn sighup_reload_restarts_the_changed_service() {
    let sys = FakeSys::new();
    let a = def("a", spec(&[]));
    let b = def("b", spec(&[]));
    let mut a2 = a.clone();
    a2.spec.command = vec!["y".into()];
    let plan = ReloadPlan {
        services: vec![a2, b.clone()],
        changed_files: vec![],
    };
    let mut s = Supervisor::new(
        sys.clone(),
        vec![a, b],
        Options {
            shutdown_grace: Duration::from_secs(9),
            main: None,
            reload: Some(Box::new(move |_| Ok(plan.clone()))),
            reload_timeout: Duration::from_secs(5),
        },
    );
    s.advance();
    sys.clear();
    deliver(&mut s, Msg::Signal(signo::HUP));
    assert_eq!(
        sys.log(),
        vec!["reload started"],
        "the reload runs off the loop"
    );
    let job = sys.0.borrow_mut().reloads.pop().unwrap();
    deliver(&mut s, job());
    assert_eq!(sys.log(), vec!["reload started", "killpg a 15"]);
    assert!(s.snapshot().last_reload.unwrap().ok);
    sys.exit("a", ProcessEnd::Signaled(15));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(sys.log().last().unwrap(), "spawn a");
    assert_eq!(s.services[0].def.spec.command, vec!["y".to_string()]);
}

#[test]
fn an_exec_probe_past_its_timeout_is_killed_and_counts_as_failed() {
    let sys = FakeSys::new();
    let mut a = spec(&[]);
    a.ready = Some(serde_yaml::from_str("exec: [check]\ninterval: 10ms\ntimeout: 50ms").unwrap());
    let mut s = supervisor(&sys, vec![def("a", a)], None);
    tick(&mut s);
    assert_eq!(sys.log().last().unwrap(), "spawn probe check");
    assert_eq!(
        s.next_deadline(),
        Some(sys.now() + Duration::from_millis(50))
    );
    sys.advance(Duration::from_millis(50));
    tick(&mut s);
    assert_eq!(sys.log().last().unwrap(), "kill probe check 9");
    assert_eq!(
        s.next_deadline(),
        None,
        "no timer while waiting for the killed probe"
    );
    sys.exit("probe check", ProcessEnd::Signaled(9));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert!(!state(&s, "a").ready);
    assert_eq!(
        s.next_deadline(),
        Some(sys.now() + Duration::from_millis(10))
    );
}

/// A supervisor over services `a` and `b` (restarted on any end) with the cgroup counter at 3.
fn oom_supervisor(sys: &FakeSys) -> Supervisor<FakeSys> {
    sys.set_oom_kills(Some(3));
    let defs = vec![def("a", spec(&[])), def("b", spec(&[]))];
    supervisor(sys, defs, None)
}

/// Ends `name` with `end` while the cgroup counter becomes `counter`, and restarts it.
fn end_with(s: &mut Supervisor<FakeSys>, sys: &FakeSys, name: &str, end: ProcessEnd, counter: u64) {
    sys.set_oom_kills(Some(counter));
    sys.exit(name, end);
    deliver(s, Msg::Signal(signo::CHLD));
    if let Some(due) = s.next_deadline() {
        sys.advance(due.saturating_duration_since(sys.now()));
        tick(s);
    }
}

fn oom_kills(s: &Supervisor<FakeSys>) -> Vec<(String, Option<u64>)> {
    s.snapshot()
        .services
        .into_iter()
        .map(|i| (i.name, i.oom_kills))
        .collect()
}

#[test]
fn an_unexplained_sigkill_while_the_counter_rises_counts_for_that_service_only() {
    let sys = FakeSys::new();
    let mut s = oom_supervisor(&sys);
    assert_eq!(
        oom_kills(&s),
        vec![("a".into(), Some(0)), ("b".into(), Some(0))]
    );
    end_with(&mut s, &sys, "a", ProcessEnd::Signaled(signo::KILL), 4);
    assert_eq!(
        oom_kills(&s),
        vec![("a".into(), Some(1)), ("b".into(), Some(0))]
    );
    assert_eq!(state(&s, "a").restarts, 1, "an OOM kill is still a crash");
    // Two kills counted by the kernel since the last reading (e.g. a child of b's too): b's
    // process died once, so b is charged one.
    end_with(&mut s, &sys, "b", ProcessEnd::Signaled(signo::KILL), 6);
    assert_eq!(
        oom_kills(&s),
        vec![("a".into(), Some(1)), ("b".into(), Some(1))]
    );
    assert_eq!(s.snapshot().oom_kills_total, Some(6));
}

/// Sends a status request, as `status` and `health` do.
fn status_request(s: &mut Supervisor<FakeSys>) {
    let (tx, rx) = std::sync::mpsc::channel();
    deliver(s, Msg::Request(Request::Snapshot, tx));
    assert!(matches!(rx.recv().unwrap(), Reply::Snapshot(_)));
}

#[test]
fn kills_of_other_processes_are_never_charged_to_a_service_that_ends_later() {
    let sys = FakeSys::new();
    let mut s = oom_supervisor(&sys);
    // An orphan the agent reaps was OOM-killed: that kill is explained, not charged.
    sys.set_oom_kills(Some(4));
    sys.0
        .borrow_mut()
        .exits
        .push((999, ProcessEnd::Signaled(signo::KILL)));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    // Someone's `kill -9` of a: not an OOM kill.
    end_with(&mut s, &sys, "a", ProcessEnd::Signaled(signo::KILL), 4);
    // A child of b's (an executor, reaped by b itself) was OOM-killed: a status request sees the
    // rise while no service is dying, so it is not b's.
    sys.set_oom_kills(Some(5));
    status_request(&mut s);
    end_with(&mut s, &sys, "b", ProcessEnd::Signaled(signo::KILL), 5);
    assert_eq!(
        oom_kills(&s),
        vec![("a".into(), Some(0)), ("b".into(), Some(0))]
    );
    // A status request between the kernel's count and the reap, while a is dying, leaves the kill
    // for a.
    sys.set_oom_kills(Some(6));
    sys.exit("a", ProcessEnd::Signaled(signo::KILL));
    status_request(&mut s);
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(
        oom_kills(&s),
        vec![("a".into(), Some(1)), ("b".into(), Some(0))]
    );
    assert_eq!(s.snapshot().oom_kills_total, Some(6));
}

#[test]
fn no_oom_kill_without_a_counter_rise_or_for_other_deaths() {
    let sys = FakeSys::new();
    let mut s = oom_supervisor(&sys);
    // `kill -9` by someone else: the counter did not move.
    end_with(&mut s, &sys, "a", ProcessEnd::Signaled(signo::KILL), 3);
    // Other deaths never count, even if the counter rose meanwhile (another process's OOM kill).
    end_with(&mut s, &sys, "a", ProcessEnd::Exited(137), 4);
    end_with(&mut s, &sys, "a", ProcessEnd::Signaled(signo::TERM), 5);
    assert_eq!(
        oom_kills(&s),
        vec![("a".into(), Some(0)), ("b".into(), Some(0))]
    );
    assert_eq!(s.snapshot().oom_kills_total, Some(5));
}

#[test]
fn sigkills_sparkvisor_sent_are_not_oom_kills() {
    let sys = FakeSys::new();
    let mut s = oom_supervisor(&sys);
    let (tx, rx) = std::sync::mpsc::channel();
    let ctl = |service: &str, action| Request::Control {
        service: service.into(),
        action,
    };
    // An operator's `signal KILL`.
    deliver(
        &mut s,
        Msg::Request(ctl("a", Control::Signal(9)), tx.clone()),
    );
    assert!(matches!(rx.recv().unwrap(), Reply::Service(_)));
    end_with(&mut s, &sys, "a", ProcessEnd::Signaled(signo::KILL), 4);
    assert_eq!(state(&s, "a").state, "running", "restarted");
    // The restarted process is counted again: the operator's SIGKILL was for the previous one.
    end_with(&mut s, &sys, "a", ProcessEnd::Signaled(signo::KILL), 5);
    assert_eq!(state(&s, "a").oom_kills, Some(1));
    // A stop escalated to SIGKILL after the grace.
    deliver(&mut s, Msg::Request(ctl("b", Control::Stop), tx));
    assert!(matches!(rx.recv().unwrap(), Reply::Service(_)));
    let due = s.next_deadline().unwrap();
    sys.advance(due - sys.now());
    sys.clear();
    tick(&mut s);
    assert_eq!(sys.log(), vec!["killpg b 9"]);
    end_with(&mut s, &sys, "b", ProcessEnd::Signaled(signo::KILL), 6);
    assert_eq!(state(&s, "b").state, "stopped");
    assert_eq!(state(&s, "b").oom_kills, Some(0));
    // A shutdown escalated to SIGKILL.
    deliver(&mut s, Msg::Signal(signo::TERM));
    let due = s.next_deadline().unwrap();
    sys.advance(due - sys.now());
    tick(&mut s);
    end_with(&mut s, &sys, "a", ProcessEnd::Signaled(signo::KILL), 7);
    assert_eq!(
        oom_kills(&s),
        vec![("a".into(), Some(1)), ("b".into(), Some(0))]
    );
}

#[test]
fn without_a_counter_oom_kills_are_unknown() {
    let sys = FakeSys::new();
    let mut s = supervisor(&sys, vec![def("a", spec(&[]))], None);
    sys.exit("a", ProcessEnd::Signaled(signo::KILL));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(oom_kills(&s), vec![("a".into(), None)]);
    assert_eq!(s.snapshot().oom_kills_total, None);
}

fn waited(service: usize, generation: u64, reached: Option<&str>) -> Msg {
    Msg::RemoteWaited {
        ticket: WaitTicket {
            service,
            generation,
        },
        outcome: WaitOutcome {
            reached: reached.map(str::to_string),
            waited: Duration::from_millis(700),
        },
    }
}

#[test]
fn wait_for_gates_the_first_start_until_the_remote_wait_reports() {
    let sys = FakeSys::new();
    let mut w = spec(&["a"]);
    w.wait_for = Some(serde_yaml::from_str("tcp: [\"spark://m1:7077,m2:7077\"]").unwrap());
    let mut s = supervisor(&sys, vec![def("a", spec(&[])), def("w", w)], None);
    // Its `after` first (a has no probe: ready once exec'd), then the wait starts; w stays waiting.
    assert_eq!(
        sys.log(),
        vec!["spawn a", "wait 1 spark://m1:7077,m2:7077 gen 1"]
    );
    assert_eq!(state(&s, "w").state, "waiting");
    // Nothing polls meanwhile: no deadline while only the remote wait is pending.
    assert_eq!(s.next_deadline(), None);
    sys.clear();
    deliver(&mut s, waited(1, 99, Some("m1:7077")));
    assert!(
        sys.log().is_empty(),
        "a stale answer started it: {:?}",
        sys.log()
    );
    deliver(&mut s, waited(1, 1, Some("m2:7077")));
    assert_eq!(sys.log(), vec!["spawn w"]);
    // A crash restarts through the backoff without waiting again.
    sys.exit("w", ProcessEnd::Exited(1));
    sys.clear();
    deliver(&mut s, Msg::Signal(signo::CHLD));
    sys.advance(Duration::from_secs(1));
    tick(&mut s);
    assert_eq!(sys.log(), vec!["spawn w"]);
}

#[test]
fn a_wait_that_times_out_starts_the_service_anyway_and_a_stop_rearms_it() {
    let sys = FakeSys::new();
    let mut w = spec(&[]);
    w.wait_for = Some(serde_yaml::from_str("tcp: [m:1]\ntimeout: 5s").unwrap());
    let mut s = supervisor(&sys, vec![def("w", w)], None);
    assert_eq!(sys.log(), vec!["wait 0 m:1 gen 1"]);
    sys.clear();
    deliver(&mut s, waited(0, 1, None));
    assert_eq!(sys.log(), vec!["spawn w"]);
    // Stopped and started by an operator: it waits again before the new start.
    let (tx, _rx) = std::sync::mpsc::channel();
    deliver(
        &mut s,
        Msg::Request(
            Request::Control {
                service: "w".into(),
                action: Control::Stop,
            },
            tx.clone(),
        ),
    );
    sys.exit("w", ProcessEnd::Signaled(15));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(state(&s, "w").state, "stopped");
    sys.clear();
    deliver(
        &mut s,
        Msg::Request(
            Request::Control {
                service: "w".into(),
                action: Control::Start,
            },
            tx,
        ),
    );
    assert_eq!(sys.log(), vec!["wait 0 m:1 gen 2"]);
    // A shutdown while waiting stops it at once; the late answer starts nothing.
    deliver(&mut s, Msg::Signal(signo::TERM));
    sys.clear();
    deliver(&mut s, waited(0, 2, Some("m:1")));
    assert!(sys.log().is_empty(), "{:?}", sys.log());
    assert_eq!(state(&s, "w").state, "stopped");
}

fn drained(drain_yaml: &str) -> ServiceDef {
    let mut w = spec(&[]);
    w.stop =
        serde_yaml::from_str(&format!("signal: TERM\ngrace: 2s\ndrain: {drain_yaml}")).unwrap();
    def("w", w)
}

#[test]
fn a_stop_drains_first_and_the_drain_probe_ends_it_early() {
    let sys = FakeSys::new();
    let until = "{signal: PWR, grace: 20s, until: {http: \"http://127.0.0.1:1/json/\", json: {executors: \"[]\"}, interval: 1s}}";
    let mut s = supervisor(&sys, vec![drained(until)], None);
    sys.clear();
    // A shutdown with 9 s in all: PWR, the drain probe; the drain may last until 9 - 2 s.
    deliver(&mut s, Msg::Signal(signo::TERM));
    assert_eq!(sys.log(), vec!["killpg w 30"]);
    tick(&mut s);
    assert_eq!(sys.log(), vec!["killpg w 30", "probe 0 Drain gen 1"]);
    assert_eq!(state(&s, "w").state, "stopping");
    assert_eq!(s.next_deadline(), Some(sys.now() + Duration::from_secs(7)));
    let ticket = ProbeTicket {
        service: 0,
        kind: ProbeKind::Drain,
        generation: 1,
    };
    sys.clear();
    deliver(
        &mut s,
        Msg::ProbeResult {
            ticket: ticket.clone(),
            ok: false,
        },
    );
    assert!(sys.log().is_empty(), "{:?}", sys.log());
    deliver(&mut s, Msg::ProbeResult { ticket, ok: true });
    // Drained: the stop signal, with its own grace.
    assert_eq!(sys.log(), vec!["killpg w 15"]);
    assert_eq!(s.next_deadline(), Some(sys.now() + Duration::from_secs(2)));
    sys.exit("w", ProcessEnd::Exited(0));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(state(&s, "w").state, "stopped");
}

#[test]
fn a_drain_that_never_finishes_ends_at_its_grace_then_term_then_kill() {
    let sys = FakeSys::new();
    let mut s = supervisor(&sys, vec![drained("{signal: PWR, grace: 3s}")], None);
    sys.clear();
    // An operator stop: no total deadline, the drain's own grace.
    let (tx, _rx) = std::sync::mpsc::channel();
    deliver(
        &mut s,
        Msg::Request(
            Request::Control {
                service: "w".into(),
                action: Control::Stop,
            },
            tx.clone(),
        ),
    );
    assert_eq!(sys.log(), vec!["killpg w 30"]);
    sys.advance(Duration::from_secs(3));
    sys.clear();
    tick(&mut s);
    assert_eq!(sys.log(), vec!["killpg w 15"]);
    sys.advance(Duration::from_secs(2));
    sys.clear();
    tick(&mut s);
    assert_eq!(sys.log(), vec!["killpg w 9"]);
    sys.exit("w", ProcessEnd::Signaled(9));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    assert_eq!(state(&s, "w").state, "stopped");
    // A restart does not drain: straight to the stop signal.
    sys.clear();
    deliver(
        &mut s,
        Msg::Request(
            Request::Control {
                service: "w".into(),
                action: Control::Start,
            },
            tx.clone(),
        ),
    );
    sys.clear();
    deliver(
        &mut s,
        Msg::Request(
            Request::Control {
                service: "w".into(),
                action: Control::Restart,
            },
            tx,
        ),
    );
    assert_eq!(sys.log(), vec!["killpg w 15"]);
}

#[test]
fn a_stalled_reload_is_given_up_at_its_deadline_and_never_applied() {
    let sys = FakeSys::new();
    let a = def("a", spec(&[]));
    let mut a2 = a.clone();
    a2.spec.command = vec!["y".into()];
    let plan = ReloadPlan {
        services: vec![a2],
        changed_files: vec![],
    };
    let mut s = Supervisor::new(
        sys.clone(),
        vec![a],
        Options {
            shutdown_grace: Duration::from_secs(9),
            main: None,
            reload: Some(Box::new(move |gate: &CommitGate| {
                assert!(!gate.begin_commit(), "an abandoned reload may not write");
                Ok(plan.clone())
            })),
            reload_timeout: Duration::from_secs(5),
        },
    );
    s.advance();
    sys.clear();
    deliver(&mut s, Msg::Signal(signo::HUP));
    assert_eq!(s.next_deadline(), Some(sys.now() + Duration::from_secs(5)));
    // Meanwhile the service crashes and is restarted as usual.
    sys.exit("a", ProcessEnd::Exited(1));
    deliver(&mut s, Msg::Signal(signo::CHLD));
    sys.advance(Duration::from_millis(200));
    tick(&mut s);
    assert_eq!(sys.log().last().unwrap(), "spawn a");
    // A second SIGHUP while the first runs does not start another thread.
    deliver(&mut s, Msg::Signal(signo::HUP));
    assert_eq!(
        sys.log().iter().filter(|l| *l == "reload started").count(),
        1
    );
    sys.advance(Duration::from_secs(5));
    tick(&mut s);
    let last = s.snapshot().last_reload.unwrap();
    assert!(!last.ok);
    assert!(last.message.contains("did not finish"), "{}", last.message);
    assert_eq!(s.reloads.deadline(), None);
    // It ends late: its result is discarded.
    let job = sys.0.borrow_mut().reloads.pop().unwrap();
    sys.clear();
    deliver(&mut s, job());
    assert!(sys.log().is_empty(), "{:?}", sys.log());
    assert_eq!(s.services[0].def.spec.command, vec!["x".to_string()]);
}

#[test]
fn a_definition_parses_its_umask_once_and_reports_every_problem() {
    let mut s = spec(&[]);
    assert_eq!(def("a", s.clone()).umask, DEFAULT_UMASK);
    s.umask = Some("0077".into());
    let d = def("a", s.clone());
    assert_eq!((d.umask, d.user.clone()), (0o077, None));
    let ids = crate::sys::users::UserIds {
        uid: 185,
        gid: 185,
        groups: vec![],
        name: "spark".into(),
        home: "/home/spark".into(),
    };
    let d = ServiceDef::new("a", s.clone(), Some(ids.clone()), &agent(), |_| Some(15)).unwrap();
    assert_eq!(d.user, Some(ids));
    s.umask = Some("0999".into());
    s.stop.signal = "NOPE".into();
    let errors = ServiceDef::new("a", s, None, &agent(), |_| None).unwrap_err();
    assert_eq!(
        errors,
        vec![
            "service a: invalid umask \"0999\": expected octal such as 0022".to_string(),
            "service a: unknown stop signal \"NOPE\"".to_string(),
        ]
    );
}

#[test]
fn a_definition_types_its_capabilities_once() {
    use crate::sys::caps::CapabilitySet;
    let mut s = spec(&[]);
    assert_eq!(def("a", s.clone()).capabilities, CapabilitySet::EMPTY);
    s.capabilities = vec![
        "cap_chown".into(),
        " NET_BIND_SERVICE ".into(),
        "CHOWN".into(),
    ];
    assert_eq!(def("a", s.clone()).capabilities.mask(), 1 | 1 << 10);
    s.capabilities = vec!["NET_BIND".into(), "KILL".into(), "BOGUS".into()];
    s.umask = Some("0999".into());
    let errors = ServiceDef::new("a", s, None, &agent(), |_| Some(15)).unwrap_err();
    assert_eq!(
        errors,
        vec![
            "service a: invalid umask \"0999\": expected octal such as 0022".to_string(),
            "service a: unknown capability `NET_BIND`, `BOGUS`".to_string(),
        ]
    );
}
