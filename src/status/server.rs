//! The status server: a Unix socket (and optionally a read-only TCP listener for `/metrics`), a
//! fixed pool of worker threads, and hard limits, so that no client behaviour can slow supervision.
//!
//! Threads: one acceptor per listener, `workers` connection workers, and at most `max_followers`
//! threads streaming `logs -f`. All of them block in `accept`/`recv`/`read` (no timers while idle).
//! Limits: `max_connections` accepted-but-unfinished connections (the next one is answered 503 and
//! closed by the acceptor); request head, header count and body size ([`Limits`]); a deadline for
//! each request from its first byte (`request_timeout`) and for idle keep-alive connections
//! (`idle_timeout`); a keep-alive connection is closed after an answer whenever other connections
//! are queued, so a few clients cannot starve the rest.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::api::{self, Listener, Outcome, Peer, Policy};
use super::http::{self, Limits, Parsed, Response, NDJSON};
use super::wire::{ApiError, LogLine};
use super::Backend;
use crate::error::Fatal;
use crate::sys::peercred;

/// How the server is set up. [`ServerOptions::from_env`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The Unix socket path.
    pub socket: PathBuf,
    /// `HOST:PORT` of the read-only metrics listener; `None` = off (the default).
    pub metrics_addr: Option<SocketAddr>,
    /// Connection worker threads.
    pub workers: usize,
    /// Connections accepted and not yet finished (queued, being served, following logs).
    pub max_connections: usize,
    /// Concurrent `logs?follow=true` streams.
    pub max_followers: usize,
    /// Request size bounds.
    pub limits: Limits,
    /// From a request's first byte to its last.
    pub request_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// The agent's uid: it and uid 0 may control services.
    pub agent_uid: u32,
}

impl ServerOptions {
    /// Defaults for `socket`, no metrics listener.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            metrics_addr: None,
            workers: 4,
            max_connections: 512,
            max_followers: 16,
            limits: Limits::default(),
            request_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            agent_uid: peercred::effective_uid(),
        }
    }

    /// `SPARKVISOR_SOCKET` (default `/run/sparkvisor/sparkvisor.sock`) and
    /// `SPARKVISOR_METRICS_ADDR` (`HOST:PORT`; unset or empty = no TCP listener).
    pub fn from_env() -> Result<Self, ServerError> {
        let mut opts = Self::new(super::socket_path());
        if let Some(value) = std::env::var_os(super::METRICS_ADDR_ENV) {
            opts.metrics_addr = parse_metrics_addr(&value.to_string_lossy())?;
        }
        Ok(opts)
    }
}

/// Reads a `SPARKVISOR_METRICS_ADDR` value: `HOST:PORT` with a literal IP (`0.0.0.0:9090`,
/// `[::]:9090`); empty means off.
pub fn parse_metrics_addr(text: &str) -> Result<Option<SocketAddr>, ServerError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<SocketAddr>()
        .map(Some)
        .map_err(|e| ServerError::MetricsAddr {
            value: text.to_string(),
            reason: e.to_string(),
        })
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket's directory could not be created.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Binding the socket failed.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another agent answers on the socket.
    #[error("{path} is in use: another sparkvisor answers on it")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not a socket is in the way.
    #[error("{path} exists and is not a socket; not replacing it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Setting the socket's mode failed.
    #[error("cannot set the mode of {path}: {source}")]
    Permissions {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `SPARKVISOR_METRICS_ADDR` is not `HOST:PORT`.
    #[error("SPARKVISOR_METRICS_ADDR={value:?} is not an address like 0.0.0.0:9090 ({reason})")]
    MetricsAddr {
        /// The value given.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Binding the metrics listener failed.
    #[error("cannot listen on {addr} for metrics: {source}")]
    MetricsBind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A server thread could not be started.
    #[error("cannot start a status server thread: {0}")]
    Thread(io::Error),
    /// The listening socket could not be duplicated (out of file descriptors).
    #[error("cannot duplicate the status listener: {0}")]
    Dup(io::Error),
}

impl From<ServerError> for Fatal {
    fn from(e: ServerError) -> Self {
        let source = match e {
            ServerError::CreateDir { ref source, .. }
            | ServerError::Bind { ref source, .. }
            | ServerError::Permissions { ref source, .. }
            | ServerError::MetricsBind { ref source, .. }
            | ServerError::Thread(ref source)
            | ServerError::Dup(ref source) => io::Error::new(source.kind(), e.to_string()),
            _ => io::Error::other(e.to_string()),
        };
        Fatal::Sys {
            context: "status socket".into(),
            source,
        }
    }
}

/// A running server. Dropping it (or [`Server::shutdown`]) stops accepting and removes the socket.
#[derive(Debug)]
pub struct Server {
    socket: PathBuf,
    socket_inode: Option<(u64, u64)>,
    metrics_addr: Option<SocketAddr>,
    stopping: Arc<AtomicBool>,
    acceptors: Vec<JoinHandle<()>>,
    /// Duplicates of the listening sockets, shut down to wake the acceptors.
    wake: Vec<std::os::fd::OwnedFd>,
}

impl Server {
    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The bound metrics address (with the real port when `:0` was asked for).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops accepting, lets workers finish their current request, removes the socket file.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the acceptors blocked in accept(); they see `stopping` and return. Only join
        // them when the wake-up worked, so a failed shutdown can never hang the agent's exit.
        let woke = self
            .wake
            .iter()
            .all(|fd| peercred::wake_acceptor(fd).is_ok());
        if !woke {
            log::warn!("status socket: cannot wake the acceptor; leaving it");
            self.acceptors.clear();
        }
        for a in self.acceptors.drain(..) {
            let _ = a.join();
        }
        // Remove the socket only if it is still ours (another agent may have replaced it).
        if let (Ok(meta), Some(ino)) = (std::fs::symlink_metadata(&self.socket), self.socket_inode)
        {
            if (meta.dev(), meta.ino()) == ino {
                let _ = std::fs::remove_file(&self.socket);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds the socket (and the metrics listener), starts the threads and returns at once.
pub fn serve(backend: Arc<dyn Backend>, opts: ServerOptions) -> Result<Server, ServerError> {
    let unix = bind_unix(&opts.socket)?;
    let socket_inode = std::fs::symlink_metadata(&opts.socket)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let tcp = match opts.metrics_addr {
        Some(addr) => Some(
            TcpListener::bind(addr).map_err(|source| ServerError::MetricsBind { addr, source })?,
        ),
        None => None,
    };
    let metrics_addr = tcp.as_ref().and_then(|l| l.local_addr().ok());
    let mut wake = vec![dup_fd(unix.as_fd())?];
    if let Some(l) = &tcp {
        wake.push(dup_fd(l.as_fd())?);
    }

    let stopping = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        backend,
        policy: Policy {
            agent_uid: opts.agent_uid,
        },
        opts: opts.clone(),
        active: AtomicUsize::new(0),
        queued: AtomicUsize::new(0),
        followers: AtomicUsize::new(0),
        stopping: stopping.clone(),
    });
    let (tx, rx) = mpsc::sync_channel::<Conn>(opts.max_connections.max(1));
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..opts.workers.max(1) {
        let rx = rx.clone();
        let shared = shared.clone();
        thread::Builder::new()
            .name(format!("status-worker-{i}"))
            .spawn(move || worker(&rx, &shared))
            .map_err(ServerError::Thread)?;
    }

    let mut acceptors = Vec::new();
    {
        let shared = shared.clone();
        let tx = tx.clone();
        acceptors.push(
            thread::Builder::new()
                .name("status-accept".into())
                .spawn(move || accept_unix(&unix, &tx, &shared))
                .map_err(ServerError::Thread)?,
        );
    }
    if let Some(tcp) = tcp {
        let shared = shared.clone();
        acceptors.push(
            thread::Builder::new()
                .name("metrics-accept".into())
                .spawn(move || accept_tcp(&tcp, &tx, &shared))
                .map_err(ServerError::Thread)?,
        );
    }
    Ok(Server {
        socket: opts.socket,
        socket_inode,
        metrics_addr,
        stopping,
        acceptors,
        wake,
    })
}

fn dup_fd(fd: std::os::fd::BorrowedFd<'_>) -> Result<std::os::fd::OwnedFd, ServerError> {
    fd.try_clone_to_owned().map_err(ServerError::Dup)
}

/// Creates the parent directory (0755), replaces a stale socket nobody answers on, binds, and sets
/// the socket's mode to 0660.
fn bind_unix(path: &Path) -> Result<UnixListener, ServerError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|source| ServerError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
    }
    let listener = match UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let meta = std::fs::symlink_metadata(path).map_err(|source| ServerError::Bind {
                path: path.to_path_buf(),
                source,
            })?;
            if !meta.file_type().is_socket() {
                return Err(ServerError::NotASocket {
                    path: path.to_path_buf(),
                });
            }
            if UnixStream::connect(path).is_ok() {
                return Err(ServerError::InUse {
                    path: path.to_path_buf(),
                });
            }
            log::info!("replacing stale status socket {}", path.display());
            std::fs::remove_file(path).map_err(|source| ServerError::Bind {
                path: path.to_path_buf(),
                source,
            })?;
            UnixListener::bind(path).map_err(|source| ServerError::Bind {
                path: path.to_path_buf(),
                source,
            })?
        }
        Err(source) => {
            return Err(ServerError::Bind {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(|source| {
        ServerError::Permissions {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(listener)
}

/// State every server thread shares.
struct Shared {
    backend: Arc<dyn Backend>,
    policy: Policy,
    opts: ServerOptions,
    /// Accepted connections not yet finished.
    active: AtomicUsize,
    /// Accepted connections waiting for a worker.
    queued: AtomicUsize,
    /// Live follow streams.
    followers: AtomicUsize,
    stopping: Arc<AtomicBool>,
}

/// One accepted connection.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_nonblocking(on),
            Stream::Tcp(s) => s.set_nonblocking(on),
        }
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
struct Conn {
    stream: Stream,
    peer: Peer,
    _slot: Slot,
}

/// Holds one unit of a counter; gives it back when dropped.
struct Slot(Arc<Shared>, fn(&Shared) -> &AtomicUsize);

impl Slot {
    fn take(shared: &Arc<Shared>, counter: fn(&Shared) -> &AtomicUsize) -> Self {
        counter(shared).fetch_add(1, Ordering::SeqCst);
        Slot(shared.clone(), counter)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        (self.1)(&self.0).fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_unix(listener: &UnixListener, tx: &SyncSender<Conn>, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                let uid = peercred::peer_uid(&stream).ok();
                let peer = Peer {
                    uid,
                    listener: Listener::Unix,
                };
                admit(Stream::Unix(stream), peer, tx, shared);
            }
            Err(e) => accept_failed(&e),
        }
    }
}

fn accept_tcp(listener: &TcpListener, tx: &SyncSender<Conn>, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let peer = Peer {
                    uid: None,
                    listener: Listener::MetricsTcp,
                };
                admit(Stream::Tcp(stream), peer, tx, shared);
            }
            Err(e) => accept_failed(&e),
        }
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

/// Queues a connection for the workers, or answers 503 at once when the server is full.
fn admit(stream: Stream, peer: Peer, tx: &SyncSender<Conn>, shared: &Arc<Shared>) {
    if shared.active.load(Ordering::SeqCst) >= shared.opts.max_connections {
        refuse(
            stream,
            "too many connections to the status socket; try again",
        );
        return;
    }
    let slot = Slot::take(shared, |s| &s.active);
    shared.queued.fetch_add(1, Ordering::SeqCst);
    let conn = Conn {
        stream,
        peer,
        _slot: slot,
    };
    if let Err(e) = tx.try_send(conn) {
        shared.queued.fetch_sub(1, Ordering::SeqCst);
        let conn = match e {
            mpsc::TrySendError::Full(c) | mpsc::TrySendError::Disconnected(c) => c,
        };
        refuse(conn.stream, "the status server is busy; try again");
    }
}

/// Writes a 503 without waiting on the client and closes.
fn refuse(mut stream: Stream, message: &str) {
    let mut out = Vec::new();
    Response::error(&ApiError::unavailable(message)).write_to(&mut out, true);
    let _ = stream.set_nonblocking(true);
    let _ = stream.write(&out);
}

fn worker(rx: &Mutex<Receiver<Conn>>, shared: &Arc<Shared>) {
    loop {
        let next = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok(conn) = next else { return };
        shared.queued.fetch_sub(1, Ordering::SeqCst);
        serve_connection(conn, shared);
    }
}

/// Why reading a request ended without one.
enum ReadEnd {
    /// The client closed, or stayed idle past the idle timeout: just close.
    Closed,
    /// The request was bad or too slow: answer this, then close.
    Answer(Response),
}

fn serve_connection(mut conn: Conn, shared: &Arc<Shared>) {
    let opts = &shared.opts;
    let _ = conn.stream.set_write_timeout(Some(opts.request_timeout));
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let req = match read_request(&mut conn.stream, &mut buf, opts) {
            Ok(r) => r,
            Err(ReadEnd::Closed) => return,
            Err(ReadEnd::Answer(resp)) => {
                let mut out = Vec::new();
                resp.write_to(&mut out, true);
                let _ = conn.stream.write_all(&out);
                return;
            }
        };
        let head_only = req.method == "HEAD";
        match api::handle(&req, &conn.peer, &shared.policy, shared.backend.as_ref()) {
            Outcome::Reply(resp) => {
                // Close after answering when others wait for a worker, so a few keep-alive
                // clients cannot starve the rest; and when shutting down.
                let close = req.close
                    || shared.queued.load(Ordering::SeqCst) > 0
                    || shared.stopping.load(Ordering::SeqCst);
                let mut out = Vec::with_capacity(resp.body.len() + 160);
                resp.write_to(&mut out, close);
                if head_only {
                    out.truncate(out.len().saturating_sub(resp.body.len()));
                }
                if conn.stream.write_all(&out).is_err() || close {
                    return;
                }
            }
            Outcome::Follow { backlog, lines } => {
                start_follower(conn, backlog, lines, shared);
                return;
            }
        }
    }
}

/// Reads until `buf` holds a whole request, enforcing the limits and deadlines.
fn read_request(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    opts: &ServerOptions,
) -> Result<http::Request, ReadEnd> {
    let idle_since = Instant::now();
    let mut first_byte: Option<Instant> = (!buf.is_empty()).then(Instant::now);
    let mut chunk = [0u8; 4096];
    loop {
        match http::parse(buf, &opts.limits) {
            Ok(Parsed::Complete(req, used)) => {
                buf.drain(..used.min(buf.len()));
                return Ok(req);
            }
            Ok(Parsed::Partial) => {}
            Err(e) => return Err(ReadEnd::Answer(e.response())),
        }
        let deadline = match first_byte {
            Some(t) => t + opts.request_timeout,
            None => idle_since + opts.idle_timeout,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out(first_byte.is_some()));
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return Err(ReadEnd::Closed);
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(if buf.is_empty() {
                    ReadEnd::Closed
                } else {
                    ReadEnd::Answer(
                        http::HttpError::Malformed("connection closed mid-request".into())
                            .response(),
                    )
                })
            }
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                first_byte.get_or_insert_with(Instant::now);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out(first_byte.is_some()));
            }
            Err(_) => return Err(ReadEnd::Closed),
        }
    }
}

fn timed_out(mid_request: bool) -> ReadEnd {
    if mid_request {
        let mut r = Response::error(&ApiError::bad_request("request not received in time"));
        r.status = 408;
        ReadEnd::Answer(r)
    } else {
        ReadEnd::Closed
    }
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
    let spawned = thread::Builder::new()
        .name("status-follow".into())
        .spawn(move || {
            let _slot = slot;
            follow(conn, &backlog, &lines);
        });
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
