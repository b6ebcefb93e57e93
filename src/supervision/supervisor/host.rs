//! The real [`super::Sys`]: spawns through `sys::spawn` (services, exec probes) and
//! `sys::process` (the main command), signals through `sys::process`, reaps through `sys::reaper`,
//! runs network probes in short-lived threads, and hands service output to the forwarders.
//! Also the signal thread of the supervisor (its status-socket backend is
//! [`crate::status::backend`]).

use std::ffi::OsString;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Msg, ProbeTicket, ServiceDef, Sys, WaitOutcome, WaitTicket};
use crate::error::ProcessEnd;
use crate::resources::OomCounter;
use crate::status::wire;
use crate::supervision::logs::{self, LogFormat, LogStore};
use crate::supervision::probe::ProbePlan;
use crate::supervision::remote_wait::WaitPlan;
use crate::sys::signals::{ChildSignals, SignalReader};
use crate::sys::spawn::{self, SpawnSpec, Stdio};
use crate::sys::thread::{self, Lifetime};
use crate::sys::{process, reaper};

/// Stack of a probe thread: one connect and a small read, or a TLS handshake (docs/ha.md, "TLS":
/// rustls with an RSA client key overflowed 64 KiB). Only the pages touched become resident.
const PROBE_STACK: usize = 512 * 1024;

/// The real system.
pub struct HostSys {
    tx: Sender<Msg>,
    logs: Arc<LogStore>,
    format: LogFormat,
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
        base_env: Vec<(OsString, OsString)>,
        inherited: ChildSignals,
    ) -> Self {
        Self {
            tx,
            logs,
            format,
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

    /// The spawn of `argv` for service `def`: its plan mapped to a [`SpawnSpec`], nothing left to
    /// resolve or read of the agent's state (its privilege drop and umask were made with its
    /// definition); its environment is the agent's base one under its own.
    fn spec_for(&self, def: &ServiceDef, argv: &[String]) -> SpawnSpec {
        let spec = &def.spec;
        let mut env = self.base_env.clone();
        if def.privileges.user().is_some() {
            // The agent's own identity must not leak into a service running as another user:
            // spawn sets these from the service's user (the service's `environment` still wins).
            env.retain(|(k, _)| !matches!(k.to_str(), Some("HOME" | "USER" | "LOGNAME")));
        }
        for (k, v) in &spec.environment {
            let key = OsString::from(k);
            env.retain(|(ek, _)| *ek != key);
            env.push((key, OsString::from(v)));
        }
        let mut s = SpawnSpec::new(
            argv.iter().map(OsString::from).collect(),
            env,
            def.privileges.clone(),
        );
        s.umask = Some(def.umask);
        s.cwd = spec.working_dir.as_ref().map(Into::into);
        s
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
        let spec = self.spec_for(def, &def.spec.command);
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
        let mut spec = self.spec_for(def, argv);
        spec.stdio = Stdio::Null;
        spawn::spawn(&spec)
            .map(|s| s.pid)
            .map_err(|e| spawn_failure(&format!("{} probe", def.name), &e))
    }

    fn start_network_probe(&mut self, probe: &ProbePlan, ticket: ProbeTicket) {
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
                let result = crate::supervision::probe::attempt(&probe);
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

    fn start_remote_wait(&mut self, wait: &WaitPlan, ticket: WaitTicket) {
        let tx = self.tx.clone();
        let wait = wait.clone();
        let started = std::thread::Builder::new()
            .name("wait-for".into())
            .stack_size(PROBE_STACK)
            .spawn(move || {
                let outcome = crate::supervision::remote_wait::wait_any(&wait);
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

    fn process_dying(&self, pid: i32) -> bool {
        crate::sys::procfs::dying(pid)
    }

    fn start_reload(&mut self, job: crate::supervision::supervisor::ReloadJob) {
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
