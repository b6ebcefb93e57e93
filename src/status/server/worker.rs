//! The worker threads of the status server: answer a complete request through the routing in
//! [`super::api`] (and the requests pipelined after it), write what the client takes at once and
//! hand the connection back to the I/O thread (with the rest of an answer the client did not take),
//! and stream `logs -f` on a follower thread of its own.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::mpsc::RecvTimeoutError;

use super::conn::{answer_and_close, Conn, Job, Returned, Slot, Stream, Unsent};
use super::Shared;
use crate::status::api::{self, Outcome};
use crate::status::fairness;
use crate::status::http::{self, Parsed, Response, NDJSON};
use crate::status::wire::{ApiError, LogLine};
use crate::sys::thread::{spawn_critical, Lifetime};

/// A worker thread: answers the jobs it takes, and hands keep-alive connections back to the
/// I/O thread.
pub(super) fn worker(jobs: &Mutex<Receiver<Job>>, back: &Sender<Returned>, shared: &Arc<Shared>) {
    loop {
        let next = match jobs.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else { return };
        if let Some(returned) = answer(job, shared) {
            if back.send(returned).is_err() {
                return;
            }
            let _ = (&*shared.waker).write(&[1]);
        }
    }
}

/// Answers a request (and any complete requests pipelined after it); gives the connection back
/// for keep-alive or to send the rest of an answer, or `None` when it is closed or handed to a
/// follower. Never waits on the client: the stream is non-blocking, and at the first answer the
/// client does not take whole, the rest goes to the I/O thread and no further request is answered
/// until the client has taken it.
fn answer(job: Job, shared: &Arc<Shared>) -> Option<Returned> {
    let Job {
        mut conn,
        mut request,
        mut rest,
    } = job;
    let opts = &shared.opts;
    let mut answered = 0;
    loop {
        let head_only = request.method == "HEAD";
        match api::handle(
            &request,
            &conn.peer,
            &shared.policy,
            shared.backend.as_ref(),
        ) {
            Outcome::Reply(resp) => {
                let close = request.close || resp.close || shared.stopping.load(Ordering::SeqCst);
                let mut out = Vec::with_capacity(resp.body.len() + 160);
                resp.write_to(&mut out, close);
                if head_only {
                    out.truncate(out.len().saturating_sub(resp.body.len()));
                }
                let sent = conn.stream.write_now(&out).ok()?;
                if sent < out.len() {
                    // Over the budget of unsent bytes: the client loses this connection.
                    let unsent = Some(Unsent::new(out, sent, shared)?);
                    return Some(Returned {
                        conn,
                        rest,
                        unsent,
                        close,
                    });
                }
                if close {
                    return None;
                }
            }
            Outcome::Follow { backlog, lines } => {
                start_follower(conn, backlog, lines, shared);
                return None;
            }
        }
        answered += 1;
        if answered >= fairness::PIPELINE_BUDGET {
            // Turn over: back to the end of the queue with what is left.
            break;
        }
        match http::parse(&rest, &opts.limits) {
            Ok(Parsed::Complete(next, used)) => {
                rest.drain(..used.min(rest.len()));
                request = next;
            }
            Ok(Parsed::Partial) => break,
            Err(e) => {
                answer_and_close(conn, &e.response());
                return None;
            }
        }
    }
    Some(Returned {
        conn,
        rest,
        unsent: None,
        close: false,
    })
}

/// Hands a follow stream to its own thread (bounded by `max_followers`), freeing the worker.
fn start_follower(
    mut conn: Conn,
    backlog: Vec<LogLine>,
    lines: Receiver<LogLine>,
    shared: &Arc<Shared>,
) {
    if shared.followers.load(Ordering::SeqCst) >= shared.opts.max_followers {
        let mut out = Vec::new();
        Response::error(&ApiError::unavailable(
            "too many clients following logs; try again later",
        ))
        .write_to(&mut out, true);
        let _ = conn.stream.write_now(&out);
        return;
    }
    let slot = Slot::take(shared, |s| &s.followers);
    // The follower thread is this client's alone: it may block writing, up to its budget.
    let budget = fairness::FOLLOW_WRITE_BUDGET.min(shared.opts.request_timeout);
    if conn.stream.set_nonblocking(false).is_err()
        || conn.stream.set_write_timeout(Some(budget)).is_err()
    {
        return;
    }
    let _ = conn.stream.set_read_timeout(None);
    let backend = shared.backend.clone();
    let spawned = spawn_critical(
        "status-follow",
        "status-follow".into(),
        None,
        Lifetime::Task,
        move |why| backend.thread_died(why),
        move || {
            let _slot = slot;
            follow(conn, &backlog, &lines);
            Ok(())
        },
    );
    if let Err(e) = spawned {
        log::warn!("status socket: cannot start a log follower: {e}");
    }
}

/// How often a follower with no new lines checks whether its client is still there.
const FOLLOW_CHECK: Duration = Duration::from_secs(1);

fn follow(mut conn: Conn, backlog: &[LogLine], lines: &Receiver<LogLine>) {
    let mut out = http::stream_head(200, NDJSON);
    http::write_chunk(&mut out, &api::ndjson(backlog));
    if conn.stream.write_all(&out).is_err() {
        return;
    }
    loop {
        match lines.recv_timeout(FOLLOW_CHECK) {
            Ok(first) => {
                let mut batch = vec![first];
                batch.extend(lines.try_iter().take(1023));
                out.clear();
                http::write_chunk(&mut out, &api::ndjson(&batch));
                if conn.stream.write_all(&out).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if client_gone(&mut conn.stream) {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = conn.stream.write_all(http::LAST_CHUNK);
                return;
            }
        }
    }
}

/// True when the client closed its end (a follower's client sends nothing, so EOF means gone).
fn client_gone(stream: &mut Stream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut scratch = [0u8; 64];
    let gone = match stream.read(&mut scratch) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    gone
}
