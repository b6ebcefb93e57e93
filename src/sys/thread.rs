//! The one way the agent starts a thread: [`spawn_critical`]. A thread that panics, returns an
//! error, or returns although it should run for the agent's whole life is reported through its
//! `on_death` callback (the supervisor turns that into an orderly shutdown with exit code 70), so
//! the agent is never left half-dead and silent.
//!
//! Fault injection (debug builds only, for tests): `SPARKVISOR_FAULT=KIND:MODE[,KIND:MODE...]`
//! makes every thread of that kind fail as soon as it starts; MODE is `panic`, `error` or
//! `return`, or `late`: the body runs, 300 ms late (a thread not scheduled for a while, as on a
//! loaded machine). Release builds never read the variable.

use std::any::Any;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Whether a normal return of the thread's body is a death.
#[derive(Debug, Clone)]
pub enum Lifetime {
    /// Runs until the agent ends (signal reader, file watcher, status socket): any return while the
    /// supervisor still listens is reported.
    Agent,
    /// Ends by itself when its work is done (an output forwarder at end of file, a probe attempt, a
    /// log follower whose client left): only a panic or an error is reported.
    Task,
    /// Runs until this flag is set (the status server's threads, told to stop at shutdown): a
    /// return before that is reported.
    UntilStopped(Arc<AtomicBool>),
}

/// Environment variable of the fault-injection hook (debug builds only).
pub const FAULT_ENV: &str = "SPARKVISOR_FAULT";

/// Starts `body` in a thread named `name`; `kind` groups threads for fault injection (`signals`,
/// `watcher`, `status-io`, `status-worker`, `status-follow`, `output`, `probe`). When the body
/// panics, returns `Err`, or (for [`Lifetime::Agent`]) returns at all, `on_death` gets one line
/// saying which thread and why.
pub fn spawn_critical<F, D>(
    kind: &'static str,
    name: String,
    stack: Option<usize>,
    lifetime: Lifetime,
    on_death: D,
    body: F,
) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
    D: FnOnce(String) + Send + 'static,
{
    let mut builder = std::thread::Builder::new().name(name.clone());
    if let Some(size) = stack {
        builder = builder.stack_size(size);
    }
    builder.spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| match inject_fault(kind) {
            Some(injected) => injected,
            None => body(),
        }));
        let why = match (outcome, lifetime) {
            (Ok(Ok(())), Lifetime::Task) => return,
            (Ok(Ok(())), Lifetime::UntilStopped(stop)) if stop.load(Ordering::SeqCst) => return,
            (Ok(Ok(())), _) => "ended unexpectedly".to_string(),
            (Ok(Err(e)), _) => format!("failed: {e}"),
            (Err(payload), _) => format!("panicked: {}", panic_text(payload.as_ref())),
        };
        on_death(format!("thread {name} {why}"));
    })
}

/// The message of a panic payload (`panic!("...")` gives a `&str` or a `String`).
fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Replaces the default panic message (several lines, a backtrace hint) with one log line naming
/// the thread and the place; the thread's death itself is reported by [`spawn_critical`].
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        log::error!(
            "thread {name} panicked{place}: {}",
            panic_text(info.payload())
        );
    }));
}

/// The fault configured for `kind`, as the outcome that replaces the thread's body (debug builds
/// only; see the module docs). None: run the body.
fn inject_fault(kind: &str) -> Option<Result<(), String>> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let spec = std::env::var(FAULT_ENV).ok()?;
    let mode = spec
        .split(',')
        .find_map(|entry| entry.split_once(':').filter(|(k, _)| *k == kind))?
        .1;
    if mode == "late" {
        std::thread::sleep(LATE_FAULT_DELAY);
        return None;
    }
    Some(fault(kind, mode))
}

/// How late a thread with the `late` fault starts its body.
const LATE_FAULT_DELAY: std::time::Duration = std::time::Duration::from_millis(300);

/// Carries out one injected fault: a real panic, an error, or a normal return.
#[allow(clippy::panic)] // the point of the hook: a real panic, caught by spawn_critical
fn fault(kind: &str, mode: &str) -> Result<(), String> {
    match mode {
        "panic" => panic!("injected fault in the {kind} thread"),
        "error" => Err(format!("injected fault in the {kind} thread")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn death_of(lifetime: Lifetime, body: fn() -> Result<(), String>) -> Option<String> {
        let (tx, rx) = mpsc::channel();
        let handle = spawn_critical(
            "test",
            "t".into(),
            None,
            lifetime,
            move |why| {
                let _ = tx.send(why);
            },
            body,
        )
        .unwrap();
        handle.join().unwrap();
        rx.try_recv().ok()
    }

    #[test]
    fn panics_errors_and_unexpected_returns_are_reported() {
        #[allow(clippy::panic)]
        fn boom() -> Result<(), String> {
            panic!("boom")
        }
        assert_eq!(
            death_of(Lifetime::Task, boom).as_deref(),
            Some("thread t panicked: boom")
        );
        assert_eq!(
            death_of(Lifetime::Task, || Err("bad fd".into())).as_deref(),
            Some("thread t failed: bad fd")
        );
        assert_eq!(
            death_of(Lifetime::Agent, || Ok(())).as_deref(),
            Some("thread t ended unexpectedly")
        );
        assert_eq!(death_of(Lifetime::Task, || Ok(())), None);
    }
}
