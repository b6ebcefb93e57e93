//! The agent's wait, at exit, for the output forwarders to copy what the services wrote last.
//!
//! A service's last lines (an error message before `exit 3`) are still in its pipe when its exit is
//! reaped; the forwarder copies them only after that. Without this wait the agent could exit first
//! and the lines that explain the exit code would be lost. The wait is bounded: a process that
//! escaped its service (a daemon still holding the pipe) must not hold up the container's exit.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Counts the forwarders still copying; cloned into whoever starts them.
#[derive(Clone, Default)]
pub struct OutputDrain {
    open: Arc<(Mutex<usize>, Condvar)>,
}

/// One forwarder still copying: dropped when its pipe has ended (or the forwarder died), which
/// wakes [`OutputDrain::wait`].
pub struct Pending {
    open: Arc<(Mutex<usize>, Condvar)>,
}

impl OutputDrain {
    /// A drain with no forwarder open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers one forwarder; keep the [`Pending`] in the forwarder until its pipe ends.
    pub fn pending(&self) -> Pending {
        let (count, _) = &*self.open;
        *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Pending {
            open: Arc::clone(&self.open),
        }
    }

    /// Waits until every forwarder has finished or `limit` has passed; returns how many are
    /// still open.
    pub fn wait(&self, limit: Duration) -> usize {
        let (count, finished) = &*self.open;
        let guard = count.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = finished
            .wait_timeout_while(guard, limit, |open| *open > 0)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let (count, finished) = &*self.open;
        let mut open = count.lock().unwrap_or_else(PoisonError::into_inner);
        *open = open.saturating_sub(1);
        finished.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn wait_returns_once_every_pending_is_dropped() {
        let drain = OutputDrain::new();
        let pendings: Vec<Pending> = (0..3).map(|_| drain.pending()).collect();
        let done = std::thread::spawn(move || drop(pendings));
        assert_eq!(drain.wait(Duration::from_secs(30)), 0);
        done.join().unwrap();
    }

    #[test]
    fn wait_gives_up_at_its_limit_and_counts_what_is_open() {
        let drain = OutputDrain::new();
        let _held = drain.pending();
        let _done = drain.pending();
        drop(_done);
        let start = Instant::now();
        assert_eq!(drain.wait(Duration::from_millis(20)), 1);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn nothing_open_returns_at_once() {
        assert_eq!(OutputDrain::new().wait(Duration::from_secs(30)), 0);
    }
}
