//! The worker threads of the status server: answer a complete request through the routing in
//! [`super::api`] (and the requests pipelined after it), hand a keep-alive connection back to the
//! I/O thread, and stream `logs -f` on a follower thread of its own.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::mpsc::RecvTimeoutError;

use super::{answer_and_close, Conn, Job, Returned, Shared, Slot, Stream};
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
/// for keep-alive, or `None` when it is closed or handed to a follower.
fn answer(job: Job, shared: &Arc<Shared>) -> Option<Returned> {
    let Job {
        mut conn,
        mut request,
        mut rest,
    } = job;
    let opts = &shared.opts;
    conn.stream.set_nonblocking(false).ok()?;
    // A client that does not read its answers holds a worker at most this long per write.
    conn.stream
        .set_write_timeout(Some(fairness::WRITE_BUDGET.min(opts.request_timeout)))
        .ok()?;
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
                let close = request.close || shared.stopping.load(Ordering::SeqCst);
                let mut out = Vec::with_capacity(resp.body.len() + 160);
                resp.write_to(&mut out, close);
                if head_only {
                    out.truncate(out.len().saturating_sub(resp.body.len()));
                }
                if conn.stream.write_all(&out).is_err() || close {
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
    conn.stream.set_nonblocking(true).ok()?;
    Some(Returned { conn, rest })
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
        let _ = conn.stream.write_all(&out);
        return;
    }
    let slot = Slot::take(shared, |s| &s.followers);
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
