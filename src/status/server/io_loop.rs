//! The I/O thread of the status server: accepts connections (within the connection and per-uid
//! limits, [`super::fairness`]), reads requests and writes the rest of answers without blocking,
//! enforces their deadlines, and hands each complete request to a worker (root and the agent's uid
//! to their own one).

use std::io::{self, Read};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::conn::{answer_and_close, refuse, Conn, Job, Returned, Slot, Stream, Unsent};
use super::{ServerOptions, Shared};
use crate::status::api::{Listener, Peer};
use crate::status::fairness;
use crate::status::http::{self, Limits, Parsed, Response};
use crate::status::wire::ApiError;
use crate::sys::peercred;
use crate::sys::poll::Interest;

/// The I/O thread: accepting, non-blocking reads and writes, parsing, deadlines.
pub(super) struct IoLoop {
    pub(super) unix: UnixListener,
    pub(super) tcp: Option<TcpListener>,
    pub(super) wake_rx: UnixStream,
    pub(super) pending: Vec<Pending>,
    pub(super) jobs: Sender<Job>,
    /// Jobs from root and the agent's uid: their own worker ([`fairness`]).
    pub(super) priority: Sender<Job>,
    pub(super) returned: Receiver<Returned>,
    pub(super) shared: Arc<Shared>,
}

impl IoLoop {
    pub(super) fn run(mut self) {
        loop {
            if self.shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            let returned: Vec<Returned> = self.returned.try_iter().collect();
            for r in returned {
                match r.unsent {
                    // The client has not taken its answer: send the rest before anything else.
                    Some(unsent) => self
                        .pending
                        .push(Pending::sending(r.conn, r.rest, unsent, r.close)),
                    // A connection that used its turn's budget with requests left goes to the back
                    // of the queue at once; others wait for bytes.
                    None => match next_request(r.conn, r.rest, &self.shared.opts.limits) {
                        Step::Dispatch(job) => self.dispatch(job),
                        Step::Keep(p) => self.pending.push(p),
                        Step::Done => {}
                    },
                }
            }
            let opts = &self.shared.opts;
            let now = Instant::now();
            let timeout = self
                .pending
                .iter()
                .map(|p| p.deadline(opts).saturating_duration_since(now))
                .min();
            let ready = {
                let mut fds = Vec::with_capacity(self.pending.len() + 3);
                fds.push((self.wake_rx.as_fd(), Interest::Read));
                fds.push((self.unix.as_fd(), Interest::Read));
                if let Some(t) = &self.tcp {
                    fds.push((t.as_fd(), Interest::Read));
                }
                fds.extend(
                    self.pending
                        .iter()
                        .map(|p| (p.conn.stream.as_fd(), p.interest())),
                );
                match crate::sys::poll::wait_ready(&fds, timeout) {
                    Ok(r) => r,
                    Err(e) => {
                        log::warn!("status socket: poll failed: {e}");
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                }
            };
            let mut flags = ready.into_iter();
            if flags.next() == Some(true) {
                let mut scratch = [0u8; 64];
                while matches!((&self.wake_rx).read(&mut scratch), Ok(n) if n > 0) {}
            }
            let unix_ready = flags.next() == Some(true);
            let tcp_ready = if self.tcp.is_some() {
                flags.next() == Some(true)
            } else {
                false
            };
            let conn_ready: Vec<bool> = flags.collect();

            let now = Instant::now();
            let pending = std::mem::take(&mut self.pending);
            for (p, ready) in pending.into_iter().zip(conn_ready) {
                let step = match (ready, p.interest()) {
                    (false, _) => Step::Keep(p),
                    (true, Interest::Read) => read_some(p, &self.shared.opts.limits),
                    (true, Interest::Write) => send_some(p, &self.shared.opts.limits),
                };
                // Checked after reading and writing too, so a client dripping bytes (or taking
                // them a few at a time) cannot outlive its deadline.
                let step = match step {
                    Step::Keep(p) if p.deadline(&self.shared.opts) <= now => {
                        expire(p);
                        Step::Done
                    }
                    other => other,
                };
                match step {
                    Step::Keep(p) => self.pending.push(p),
                    Step::Dispatch(job) => self.dispatch(job),
                    Step::Done => {}
                }
            }
            if unix_ready {
                self.accept_unix();
            }
            if tcp_ready {
                self.accept_tcp();
            }
        }
    }

    fn accept_unix(&mut self) {
        loop {
            match self.unix.accept() {
                Ok((stream, _)) => {
                    let peer = Peer {
                        uid: peercred::peer_uid(&stream).ok(),
                        listener: Listener::Unix,
                    };
                    self.admit(Stream::Unix(stream), peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return accept_failed(&e),
            }
        }
    }

    fn accept_tcp(&mut self) {
        let Some(listener) = &self.tcp else { return };
        let mut accepted = Vec::new();
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    accepted.push(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    accept_failed(&e);
                    break;
                }
            }
        }
        for stream in accepted {
            let peer = Peer {
                uid: None,
                listener: Listener::MetricsTcp,
            };
            self.admit(Stream::Tcp(stream), peer);
        }
    }

    /// Queues a complete request: root's and the agent's on the priority lane.
    fn dispatch(&self, job: Job) {
        let lane = if fairness::privileged(job.conn.peer.uid, self.shared.opts.agent_uid) {
            &self.priority
        } else {
            &self.jobs
        };
        // Workers outlive this thread's sender; a failed send only drops the connection.
        let _ = lane.send(job);
    }

    /// Takes a new connection into the pending list, or answers 503 at once when full.
    fn admit(&mut self, stream: Stream, peer: Peer) {
        let uid_slot = match self.shared.per_uid.admit(
            peer.uid,
            self.shared.opts.agent_uid,
            self.shared.open.load(Ordering::SeqCst),
            self.shared.opts.max_connections,
        ) {
            Ok(slot) => slot,
            Err(why) => return refuse(stream, why),
        };
        if stream.set_nonblocking(true).is_err() {
            return refuse(stream, "cannot serve this connection");
        }
        let conn = Conn {
            stream,
            peer,
            _slot: Slot::take(&self.shared, |s| &s.open),
            _uid: uid_slot,
        };
        self.pending.push(Pending::new(conn, Vec::new()));
    }
}

/// Out of file descriptors or memory: say so, and give the system a moment instead of spinning.
fn accept_failed(e: &io::Error) {
    if e.kind() == io::ErrorKind::Interrupted {
        return;
    }
    log::warn!("status socket: accept failed: {e}");
    thread::sleep(Duration::from_millis(10));
}

/// A connection the I/O thread holds: reading a request, or sending the rest of an answer.
pub(super) struct Pending {
    conn: Conn,
    /// Bytes of the next request read so far.
    buf: Vec<u8>,
    /// When it became idle (accepted, or its last answer sent), or when its answer was handed
    /// over to be sent.
    since: Instant,
    /// When the first byte of the current request arrived.
    first_byte: Option<Instant>,
    /// The rest of an answer the client has not taken yet: while there is one, the connection is
    /// written to, not read from, so a client that does not read gets no further answers.
    unsent: Option<Unsent>,
    /// Close once `unsent` is sent (the answer said `Connection: close`).
    close_after: bool,
}

impl Pending {
    /// Waiting for a request, with `buf` already read.
    fn new(conn: Conn, buf: Vec<u8>) -> Self {
        let now = Instant::now();
        let first_byte = (!buf.is_empty()).then_some(now);
        Self {
            conn,
            buf,
            since: now,
            first_byte,
            unsent: None,
            close_after: false,
        }
    }

    /// Sending the rest of an answer, with the next request's bytes `buf` already read.
    fn sending(conn: Conn, buf: Vec<u8>, unsent: Unsent, close_after: bool) -> Self {
        Self {
            unsent: Some(unsent),
            close_after,
            first_byte: None,
            ..Self::new(conn, buf)
        }
    }

    fn interest(&self) -> Interest {
        if self.unsent.is_some() {
            Interest::Write
        } else {
            Interest::Read
        }
    }

    fn deadline(&self, opts: &ServerOptions) -> Instant {
        match (&self.unsent, self.first_byte) {
            (Some(_), _) => self.since + opts.request_timeout,
            (None, Some(t)) => t + opts.request_timeout,
            (None, None) => self.since + opts.idle_timeout,
        }
    }
}

/// What reading from or writing to a pending connection led to.
enum Step {
    /// Still waiting for bytes, or for room to write.
    Keep(Pending),
    /// A complete request, for a worker.
    Dispatch(Job),
    /// Closed (by the client, after an error answer, or once its last answer went out).
    Done,
}

/// A connection that has no answer left to send: its next request when `buf` holds a whole one,
/// else a wait for more bytes.
fn next_request(conn: Conn, mut buf: Vec<u8>, limits: &Limits) -> Step {
    match http::parse(&buf, limits) {
        Ok(Parsed::Complete(request, used)) => {
            let rest = buf.split_off(used.min(buf.len()));
            Step::Dispatch(Job {
                conn,
                request,
                rest,
            })
        }
        // Errors are found (and answered) once the connection is read from again.
        _ => Step::Keep(Pending::new(conn, buf)),
    }
}

/// Sends what the client takes now of its unsent answer (never blocks).
fn send_some(mut p: Pending, limits: &Limits) -> Step {
    let Some(unsent) = p.unsent.as_mut() else {
        return Step::Keep(p);
    };
    match unsent.send(&mut p.conn.stream) {
        Ok(false) => Step::Keep(p),
        Ok(true) if p.close_after => Step::Done,
        Ok(true) => next_request(p.conn, p.buf, limits),
        Err(_) => Step::Done,
    }
}

/// Reads what is available (never blocks) and parses.
fn read_some(mut p: Pending, limits: &Limits) -> Step {
    let mut chunk = [0u8; 4096];
    loop {
        match p.conn.stream.read(&mut chunk) {
            Ok(0) => {
                // The client half-closed: a complete request still gets its answer.
                if let Ok(Parsed::Complete(mut request, used)) = http::parse(&p.buf, limits) {
                    request.close = true;
                    let rest = p.buf.split_off(used.min(p.buf.len()));
                    return Step::Dispatch(Job {
                        conn: p.conn,
                        request,
                        rest,
                    });
                }
                if !p.buf.is_empty() {
                    let e = http::HttpError::Malformed("connection closed mid-request".into());
                    answer_and_close(p.conn, &e.response());
                }
                return Step::Done;
            }
            Ok(n) => {
                p.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                p.first_byte.get_or_insert_with(Instant::now);
                // Parse as soon as there is enough, so a flood cannot grow the buffer unbounded.
                if p.buf.len() > limits.max_head_bytes + limits.max_body_bytes {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Step::Done,
        }
    }
    match http::parse(&p.buf, limits) {
        Ok(Parsed::Complete(request, used)) => {
            let rest = p.buf.split_off(used.min(p.buf.len()));
            Step::Dispatch(Job {
                conn: p.conn,
                request,
                rest,
            })
        }
        Ok(Parsed::Partial) => Step::Keep(p),
        Err(e) => {
            answer_and_close(p.conn, &e.response());
            Step::Done
        }
    }
}

/// A connection past its deadline: 408 when a request had begun, silence when it was idle or
/// had not taken its answer.
fn expire(p: Pending) {
    if p.unsent.is_some() {
        log::debug!("status socket: closing a connection that did not take its answer in time");
    } else if p.first_byte.is_some() {
        let mut r = Response::error(&ApiError::bad_request("request not received in time"));
        r.status = 408;
        answer_and_close(p.conn, &r);
    }
}
