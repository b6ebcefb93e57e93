//! Fair service on the status socket, so that no client can starve `health` or control requests:
//! - **per-uid caps**: one uid (other than root and the agent's) holds at most
//!   [`MAX_PER_UID`] connections;
//! - **reserved room**: the last [`RESERVED`] connection slots (beyond `max_connections`) are only
//!   for root and the agent's uid, so the CLI works even when another uid holds every other slot;
//! - **a priority lane**: requests from root and the agent's uid go to their own worker, never
//!   queued behind other clients' requests;
//! - **per-connection budgets**: a worker answers at most [`PIPELINE_BUDGET`] pipelined requests of
//!   one connection in a turn, then puts the connection back at the end of the queue;
//! - **no waiting on a client**: a worker writes only what the socket takes at once; the rest of an
//!   answer goes to the I/O thread, which sends it as the client reads, and no further request of
//!   that connection is answered until it has. A client that does not take its answer within the
//!   request timeout is closed, and the unsent answers of all connections together are bounded
//!   ([`MAX_UNSENT_BYTES`]). Before, a worker waited up to 500 ms on each client that pipelined
//!   requests and never read, so 32 such clients of the agent's uid delayed `health` by 16 s.
//!   A `logs -f` follower has a thread of its own, which waits at most [`FOLLOW_WRITE_BUDGET`]
//!   per write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most open connections for one uid (other than root and the agent's uid).
pub const MAX_PER_UID: usize = 32;
/// Connection slots beyond `max_connections` kept for root and the agent's uid.
pub const RESERVED: usize = 16;
/// Pipelined requests of one connection answered per turn.
pub const PIPELINE_BUDGET: usize = 8;
/// Longest a `logs -f` follower thread waits for its client to take one write.
pub const FOLLOW_WRITE_BUDGET: Duration = Duration::from_millis(500);
/// Most bytes of answers held for clients that have not taken them, all connections together (the
/// default of `ServerOptions::max_unsent_bytes`); an answer whose rest does not fit while others
/// are held closes its connection instead. A single answer larger than this still passes alone.
pub const MAX_UNSENT_BYTES: usize = 32 << 20;

/// The uid key of a peer: its uid, or `u32::MAX` for the TCP metrics listener (no uid).
fn key(uid: Option<u32>) -> u32 {
    uid.unwrap_or(u32::MAX)
}

/// True for root and the agent's uid.
pub fn privileged(uid: Option<u32>, agent_uid: u32) -> bool {
    matches!(uid, Some(u) if u == 0 || u == agent_uid)
}

/// Open connections per uid, shared by the I/O thread (which admits) and whoever drops a
/// connection (which releases through [`UidSlot`]).
#[derive(Debug, Default, Clone)]
pub struct PerUid(Arc<Mutex<HashMap<u32, usize>>>);

impl PerUid {
    /// Admits a connection from `uid` when `open` connections are open of `max` (`Err` with the
    /// reason otherwise); the returned slot releases it on drop.
    pub fn admit(
        &self,
        uid: Option<u32>,
        agent_uid: u32,
        open: usize,
        max: usize,
    ) -> Result<UidSlot, &'static str> {
        let vip = privileged(uid, agent_uid);
        if open >= max + RESERVED || (!vip && open >= max) {
            return Err("too many connections to the status socket; try again");
        }
        let mut map = self
            .0
            .lock()
            .map_err(|_| "the status socket is shutting down")?;
        let count = map.entry(key(uid)).or_insert(0);
        if !vip && *count >= MAX_PER_UID {
            return Err("too many connections from this uid to the status socket");
        }
        *count += 1;
        Ok(UidSlot {
            map: self.clone(),
            uid: key(uid),
        })
    }
}

/// One connection's place in [`PerUid`]; released when dropped.
#[derive(Debug)]
pub struct UidSlot {
    map: PerUid,
    uid: u32,
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.0.lock() {
            if let Some(c) = map.get_mut(&self.uid) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    map.remove(&self.uid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_uid_and_room_for_root() {
        let per = PerUid::default();
        let mut held = Vec::new();
        for _ in 0..MAX_PER_UID {
            held.push(per.admit(Some(1000), 185, held.len(), 512).unwrap());
        }
        assert!(per.admit(Some(1000), 185, held.len(), 512).is_err());
        assert!(per.admit(Some(1001), 185, held.len(), 512).is_ok());
        // Full: only root and the agent get in, up to the reserve.
        assert!(per.admit(Some(1001), 185, 512, 512).is_err());
        assert!(per.admit(Some(0), 185, 512, 512).is_ok());
        assert!(per.admit(Some(185), 185, 512 + RESERVED - 1, 512).is_ok());
        assert!(per.admit(Some(0), 185, 512 + RESERVED, 512).is_err());
        held.clear();
        assert!(per.admit(Some(1000), 185, 0, 512).is_ok());
    }
}
