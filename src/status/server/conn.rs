//! One client connection of the status server and what travels with it between the I/O thread
//! and the workers: the stream, its slots in the server's counters, a request for a worker, and
//! the rest of an answer the client has not taken yet. Every write here is non-blocking: a thread
//! that answers never waits on one client.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use crate::status::api::Peer;
use crate::status::fairness::UidSlot;
use crate::status::http::{self, Response};
use crate::status::wire::ApiError;

/// One accepted connection.
pub(super) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub(super) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }
    pub(super) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }
    pub(super) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_nonblocking(on),
            Stream::Tcp(s) => s.set_nonblocking(on),
        }
    }
    pub(super) fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }

    /// Writes as much of `bytes` as the socket takes now (the stream is non-blocking) and returns
    /// how much that was; an error means the client is gone.
    pub(super) fn write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut written = 0;
        while let Some(left) = bytes.get(written..).filter(|l| !l.is_empty()) {
            match self.write(left) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection with its peer and its slot in the connection count (released on drop).
pub(super) struct Conn {
    pub(super) stream: Stream,
    pub(super) peer: Peer,
    pub(super) _slot: Slot,
    pub(super) _uid: UidSlot,
}

/// Holds `amount` of a counter; gives it back when dropped.
pub(super) struct Slot {
    shared: Arc<Shared>,
    counter: fn(&Shared) -> &AtomicUsize,
    amount: usize,
}

impl Slot {
    /// Takes one unit, whatever the counter holds (the caller checked its bound).
    pub(super) fn take(shared: &Arc<Shared>, counter: fn(&Shared) -> &AtomicUsize) -> Self {
        counter(shared).fetch_add(1, Ordering::SeqCst);
        Slot {
            shared: shared.clone(),
            counter,
            amount: 1,
        }
    }

    /// Takes `amount` when the counter stays within `max` or holds nothing yet (so one amount
    /// larger than `max` still passes alone); `None` otherwise.
    pub(super) fn try_take(
        shared: &Arc<Shared>,
        counter: fn(&Shared) -> &AtomicUsize,
        amount: usize,
        max: usize,
    ) -> Option<Self> {
        counter(shared)
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(amount)
                    .filter(|total| held == 0 || *total <= max)
            })
            .ok()?;
        Some(Slot {
            shared: shared.clone(),
            counter,
            amount,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        (self.counter)(&self.shared).fetch_sub(self.amount, Ordering::SeqCst);
    }
}

/// The part of an answer a client has not taken yet, held for the I/O thread to send. Its size
/// is charged to the server's budget of unsent bytes until it is dropped.
pub(super) struct Unsent {
    bytes: Vec<u8>,
    sent: usize,
    _charge: Slot,
}

impl Unsent {
    /// `bytes` of which the first `sent` went out; `None` when the rest does not fit in the
    /// server's budget of unsent bytes (`max_unsent_bytes`), which other unsent answers hold.
    pub(super) fn new(mut bytes: Vec<u8>, sent: usize, shared: &Arc<Shared>) -> Option<Self> {
        if sent > 0 {
            // Keep only the rest, so what is held is what is charged.
            bytes = bytes.get(sent..).unwrap_or_default().to_vec();
        }
        let max = shared.opts.max_unsent_bytes;
        let charge = Slot::try_take(shared, |s| &s.unsent_bytes, bytes.len(), max)?;
        Some(Self {
            bytes,
            sent: 0,
            _charge: charge,
        })
    }

    /// Sends what the socket takes now; `Ok(true)` once everything is out.
    pub(super) fn send(&mut self, stream: &mut Stream) -> io::Result<bool> {
        let rest = self.bytes.get(self.sent..).unwrap_or_default();
        self.sent += stream.write_now(rest)?;
        Ok(self.sent >= self.bytes.len())
    }
}

/// A complete request for a worker, with the connection and any bytes that followed it.
pub(super) struct Job {
    pub(super) conn: Conn,
    pub(super) request: http::Request,
    pub(super) rest: Vec<u8>,
}

/// A connection a worker hands back: bytes of a next request already read, and the rest of an
/// answer the client did not take at once (then `close` says whether to close once it is sent).
pub(super) struct Returned {
    pub(super) conn: Conn,
    pub(super) rest: Vec<u8>,
    pub(super) unsent: Option<Unsent>,
    pub(super) close: bool,
}

/// Best-effort error answer on a non-blocking connection, then close.
pub(super) fn answer_and_close(mut conn: Conn, response: &Response) {
    let mut out = Vec::new();
    response.write_to(&mut out, true);
    let _ = conn.stream.write_now(&out);
}

/// Writes a 503 without waiting on the client and closes.
pub(super) fn refuse(mut stream: Stream, message: &str) {
    let mut out = Vec::new();
    Response::error(&ApiError::unavailable(message)).write_to(&mut out, true);
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_now(&out);
}
