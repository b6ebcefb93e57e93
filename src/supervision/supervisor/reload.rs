//! Reloads (SIGHUP, a rewritten configmeta.json or cluster file) run OFF the supervisor thread.
//!
//! Loading the new config reads injected files that can stall (a configmeta.json rewritten
//! truncated under `SPARKVISOR_CONFIGMETA_WAIT`, a slow mount), so the supervisor never runs it
//! itself: it hands a [`ReloadJob`] to [`super::Sys::start_reload`] (a thread started with
//! `spawn_critical`), keeps reaping, restarting and answering status, and gets the outcome back as
//! [`super::Msg::Reloaded`]. A reload still loading at its deadline is abandoned: it is reported as
//! failed ("reload failed, keeping the running config"), and its [`CommitGate`] refuses it the right to write files
//! should it ever finish, so a late reload can never switch files under services configured by
//! the running config. One reload runs at a time; requests meanwhile are merged into one that runs
//! after it. While an abandoned reload is still stuck, new requests fail at once (a second one would
//! only wait for the first).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::{Event, Msg, ServiceDef, Supervisor, Sys};
use crate::config::role::ServiceSpec;

/// Default time a reload may take to load, validate and render the new config.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a reload found: the newly expanded services and the rendered files that changed.
#[derive(Debug, Clone, Default)]
pub struct ReloadPlan {
    /// Every service, freshly expanded.
    pub services: Vec<ServiceDef>,
    /// Rendered files whose contents changed.
    pub changed_files: Vec<PathBuf>,
}

/// Why a reload did not produce a plan; the running config stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config, role or templates are invalid, or the node cannot be prepared.
    #[error("{0}")]
    Prepare(crate::error::Fatal),
    /// The supervisor gave the reload up (its deadline passed) before it wrote anything.
    #[error("given up before writing: nothing written")]
    GivenUp,
    /// Writing the new files failed.
    #[error("{0}")]
    Write(crate::render::RenderError),
}

/// Re-resolves config and re-renders. Runs on a reload thread, never on the supervisor's; it must
/// call [`CommitGate::begin_commit`] before writing anything and give up when that says no.
pub type Reloader = Box<dyn FnMut(&CommitGate) -> Result<ReloadPlan, ReloadError> + Send>;

/// The work of one reload, run off the supervisor thread; its result is the message to send back.
pub type ReloadJob = Box<dyn FnOnce() -> Msg + Send>;

const PREPARING: u8 = 0;
const COMMITTING: u8 = 1;
const ABANDONED: u8 = 2;

/// Decides, once, between a reload writing its files and the supervisor abandoning it at its
/// deadline: whichever comes first wins, so an abandoned reload never writes.
#[derive(Debug, Clone, Default)]
pub struct CommitGate(Arc<AtomicU8>);

impl CommitGate {
    /// The reload is about to write its files: true when it may (it has not been abandoned).
    pub fn begin_commit(&self) -> bool {
        self.0
            .compare_exchange(PREPARING, COMMITTING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The deadline passed: true when the reload had not started writing (it never will now).
    fn abandon(&self) -> bool {
        self.0
            .compare_exchange(PREPARING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// The last reload's result, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// When it ended (or was given up).
    pub at: SystemTime,
    /// The new config is running.
    pub ok: bool,
    /// What happened, in one line.
    pub message: String,
}

struct InFlight {
    id: u64,
    why: String,
    /// None once the reload is writing its files (it is let finish).
    deadline: Option<Instant>,
    gate: CommitGate,
}

/// The supervisor's reload bookkeeping.
pub(super) struct Reloads {
    reloader: Option<Arc<Mutex<Reloader>>>,
    timeout: Duration,
    next_id: u64,
    in_flight: Option<InFlight>,
    /// An abandoned reload whose thread has not returned yet.
    stalled: Option<u64>,
    /// Why a reload was asked for while one ran (merged into one).
    pending: Option<String>,
    /// The last reload's result.
    pub last: Option<ReloadOutcome>,
}

impl Reloads {
    pub(super) fn new(reloader: Option<Reloader>, timeout: Duration) -> Self {
        Self {
            reloader: reloader.map(|r| Arc::new(Mutex::new(r))),
            timeout,
            next_id: 0,
            in_flight: None,
            stalled: None,
            pending: None,
            last: None,
        }
    }

    /// A reload was asked for: the job to start, or None (no reloader, one already running, or
    /// an abandoned one still stuck).
    pub(super) fn request(&mut self, why: &str, now: Instant) -> Option<ReloadJob> {
        let Some(reloader) = self.reloader.as_ref().map(Arc::clone) else {
            log::info!("{why}: no reload configured");
            return None;
        };
        if self.in_flight.is_some() {
            log::info!("{why}: a reload is running; another follows it");
            self.pending = Some(why.to_string());
            return None;
        }
        if self.stalled.is_some() {
            self.failed(
                why,
                "the previous reload is still stuck loading its input, so this one cannot run",
            );
            return None;
        }
        self.next_id += 1;
        let id = self.next_id;
        let gate = CommitGate::default();
        self.in_flight = Some(InFlight {
            id,
            why: why.to_string(),
            deadline: Some(now + self.timeout),
            gate: gate.clone(),
        });
        log::info!("{why}: reloading the config");
        Some(Box::new(move || {
            let mut reloader = reloader.lock().unwrap_or_else(PoisonError::into_inner);
            Msg::Reloaded {
                id,
                result: (*reloader)(&gate),
            }
        }))
    }

    /// When the running reload is given up.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.in_flight.as_ref().and_then(|f| f.deadline)
    }

    /// Gives up the running reload when its deadline has passed (unless it is already writing).
    pub(super) fn expire(&mut self, now: Instant) {
        let Some(flight) = self.in_flight.as_mut() else {
            return;
        };
        if flight.deadline.is_none_or(|d| d > now) {
            return;
        }
        if !flight.gate.abandon() {
            // Loading is done and the files are being written: a bounded step, let it finish.
            flight.deadline = None;
            return;
        }
        let (id, why) = (flight.id, flight.why.clone());
        self.in_flight = None;
        self.stalled = Some(id);
        self.pending = None;
        let message = format!(
            "loading the new config did not finish within {:?}; given up, it will write nothing",
            self.timeout
        );
        self.failed(&why, &message);
    }

    /// A reload thread ended: the plan to apply (with why it ran), or None (failed or abandoned).
    pub(super) fn finished(
        &mut self,
        id: u64,
        result: Result<ReloadPlan, ReloadError>,
    ) -> Option<(String, ReloadPlan)> {
        if self.stalled == Some(id) {
            self.stalled = None;
            log::info!("the abandoned reload ended; its result was discarded and nothing written");
            return None;
        }
        let flight = self.in_flight.take_if(|f| f.id == id)?;
        match result {
            Ok(plan) => Some((flight.why, plan)),
            Err(e) => {
                self.failed(&flight.why, &e.to_string());
                None
            }
        }
    }

    /// Records a reload that applied; `message` says what changed.
    pub(super) fn succeeded(&mut self, message: String) {
        self.last = Some(ReloadOutcome {
            at: SystemTime::now(),
            ok: true,
            message,
        });
    }

    /// A reload asked for while another ran, now that none runs.
    pub(super) fn take_pending(&mut self) -> Option<String> {
        if self.in_flight.is_some() || self.stalled.is_some() {
            return None;
        }
        self.pending.take()
    }

    fn failed(&mut self, why: &str, error: &str) {
        log::error!("{why}: reload failed, keeping the running config: {error}");
        self.last = Some(ReloadOutcome {
            at: SystemTime::now(),
            ok: false,
            message: format!("{why}: {error}"),
        });
    }
}

impl<S: Sys> Supervisor<S> {
    /// A reload was asked for (SIGHUP, a rewritten input file): starts it off the loop.
    pub(super) fn reload(&mut self, why: &str) {
        if self.shutdown.is_some() {
            return;
        }
        let now = self.sys.now();
        if let Some(job) = self.reloads.request(why, now) {
            self.sys.start_reload(job);
        }
    }

    /// A reload thread ended: applies its plan (or records its failure), then runs a reload asked
    /// for meanwhile.
    pub(super) fn reloaded(&mut self, id: u64, result: Result<ReloadPlan, ReloadError>) {
        if let Some((why, plan)) = self.reloads.finished(id, result) {
            self.apply_reload(&why, plan);
        }
        if let Some(why) = self.reloads.take_pending() {
            self.reload(&why);
        }
    }

    fn apply_reload(&mut self, why: &str, plan: ReloadPlan) {
        if self.shutdown.is_some() {
            log::info!("{why}: config reloaded during shutdown: nothing restarted");
            return;
        }
        let restart = restart_set(
            &self
                .services
                .iter()
                .map(|m| m.def.clone())
                .collect::<Vec<_>>(),
            &plan,
        );
        let message = format!(
            "config reloaded ({} rendered file(s) changed), restarting {} service(s)",
            plan.changed_files.len(),
            restart.len()
        );
        log::info!("{why}: {message}");
        self.reloads.succeeded(format!("{why}: {message}"));
        for new in plan.services {
            let Some(i) = self.services.iter().position(|m| m.def.name == new.name) else {
                log::warn!(
                    "{why}: new service {} needs a restart of the agent",
                    new.name
                );
                continue;
            };
            if let Some(m) = self.services.get_mut(i) {
                m.def = new;
            }
            if restart.contains(&i) {
                log::info!("{}: config changed: restarting", self.name(i));
                self.feed(i, Event::RestartRequested);
            }
        }
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
                // Rendered paths are normalised: `a//b` in a command names `a/b` too.
                let s = collapse_slashes(s);
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

/// `s` with every run of `/` made one (`/x//conf` → `/x/conf`), as a path normalises.
fn collapse_slashes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}
