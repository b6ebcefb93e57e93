//! The status server: a Unix socket (and optionally a read-only TCP listener for `/metrics`), one
//! I/O thread, a fixed pool of worker threads, and hard limits, so that no client behaviour can
//! slow supervision or tie up the server.
//!
//! The I/O thread owns every connection that is not being answered: it accepts, reads without
//! blocking (`poll`), parses, and enforces the deadlines; only a complete request goes to a
//! worker, which asks the [`Backend`], writes the answer and hands a keep-alive connection back.
//! So silent, slow or half-sent requests cost a slot in a list, never a thread. Threads: the I/O
//! thread, `workers` workers, and at most `max_followers` threads streaming `logs -f`. All block
//! while idle; the I/O thread wakes only for I/O or the nearest connection deadline (none when no
//! connection is open).
//! Limits: `max_connections` open connections (the next one is answered 503 and closed at once);
//! request head, header count and body size ([`Limits`]); a deadline for each request from its
//! first byte (`request_timeout`, then 408) and for idle connections (`idle_timeout`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::api::{self, Listener, Outcome, Peer, Policy};
use super::fairness::{self, PerUid, UidSlot};
use super::http::{self, Limits, Parsed, Response, NDJSON};
use super::wire::{ApiError, LogLine};
use super::Backend;
use crate::error::Fatal;
use crate::sys::peercred;
use crate::sys::thread::{spawn_critical, Lifetime};

/// How the server is set up. [`ServerOptions::from_env`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The Unix socket path.
    pub socket: PathBuf,
    /// `HOST:PORT` of the read-only metrics listener; `None` = off (the default).
    pub metrics_addr: Option<SocketAddr>,
    /// Worker threads answering complete requests.
    pub workers: usize,
    /// Open connections (being read, being answered, or following logs).
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
    /// The socket's directory would let another user bind the path first.
    #[error("refusing the socket directory {path}: {why}")]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// What is unsafe about it.
        why: String,
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
    /// Setting up the listeners or the wake-up pair failed (out of file descriptors).
    #[error("cannot set up the status listener: {0}")]
    Setup(io::Error),
}

impl From<ServerError> for Fatal {
    fn from(e: ServerError) -> Self {
        let source = match e {
            ServerError::CreateDir { ref source, .. }
            | ServerError::Bind { ref source, .. }
            | ServerError::Permissions { ref source, .. }
            | ServerError::MetricsBind { ref source, .. }
            | ServerError::Thread(ref source)
            | ServerError::Setup(ref source) => io::Error::new(source.kind(), e.to_string()),
            _ => io::Error::other(e.to_string()),
        };
        Fatal::Sys {
            context: "status socket".into(),
            source,
        }
    }
}

/// A running server. Dropping it (or [`Server::shutdown`]) stops it and removes the socket.
#[derive(Debug)]
pub struct Server {
    socket: PathBuf,
    socket_inode: Option<(u64, u64)>,
    metrics_addr: Option<SocketAddr>,
    stopping: Arc<AtomicBool>,
    waker: Arc<UnixStream>,
    io_thread: Option<JoinHandle<()>>,
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

    /// Stops accepting and reading, removes the socket file. Requests being answered finish.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Only join the I/O thread when it was told; a failed wake-up must not hang the exit.
        if (&*self.waker).write(&[1]).is_ok() {
            if let Some(t) = self.io_thread.take() {
                let _ = t.join();
            }
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

/// Starts a thread of the server through [`spawn_critical`]: its end before the server was told to
/// stop (or a panic) is reported to the backend as a dead thread.
fn spawn_status_thread(
    kind: &'static str,
    name: String,
    shared: &Arc<Shared>,
    body: impl FnOnce() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let backend = shared.backend.clone();
    spawn_critical(
        kind,
        name,
        None,
        Lifetime::UntilStopped(shared.stopping.clone()),
        move |why| backend.thread_died(why),
        move || {
            body();
            Ok(())
        },
    )
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
    let setup = |r: io::Result<()>| r.map_err(ServerError::Setup);
    setup(unix.set_nonblocking(true))?;
    if let Some(l) = &tcp {
        setup(l.set_nonblocking(true))?;
    }
    let (wake_rx, wake_tx) = UnixStream::pair().map_err(ServerError::Setup)?;
    setup(wake_rx.set_nonblocking(true))?;
    setup(wake_tx.set_nonblocking(true))?;
    let waker = Arc::new(wake_tx);

    let stopping = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        backend,
        policy: Policy {
            agent_uid: opts.agent_uid,
        },
        opts: opts.clone(),
        open: AtomicUsize::new(0),
        followers: AtomicUsize::new(0),
        per_uid: PerUid::default(),
        stopping: stopping.clone(),
        waker: waker.clone(),
    });
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (back_tx, back_rx) = mpsc::channel::<Returned>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (priority_tx, priority_rx) = mpsc::channel::<Job>();
    {
        let priority_rx = Arc::new(Mutex::new(priority_rx));
        let back_tx = back_tx.clone();
        let shared = shared.clone();
        spawn_status_thread(
            "status-priority",
            "status-priority".into(),
            &shared.clone(),
            move || worker(&priority_rx, &back_tx, &shared),
        )
        .map_err(ServerError::Thread)?;
    }
    for i in 0..opts.workers.max(1) {
        let job_rx = job_rx.clone();
        let back_tx = back_tx.clone();
        let shared = shared.clone();
        let name = format!("status-worker-{i}");
        spawn_status_thread("status-worker", name, &shared.clone(), move || {
            worker(&job_rx, &back_tx, &shared);
        })
        .map_err(ServerError::Thread)?;
    }
    let io = IoLoop {
        unix,
        tcp,
        wake_rx,
        pending: Vec::new(),
        jobs: job_tx,
        priority: priority_tx,
        returned: back_rx,
        shared,
    };
    let io_thread = spawn_status_thread(
        "status-io",
        "status-io".into(),
        &io.shared.clone(),
        move || {
            io.run();
        },
    )
    .map_err(ServerError::Thread)?;
    Ok(Server {
        socket: opts.socket,
        socket_inode,
        metrics_addr,
        stopping,
        waker,
        io_thread: Some(io_thread),
    })
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
        let uid = crate::sys::peercred::effective_uid();
        // Only the image's own directory is taken over: any other (say /tmp, or a directory the
        // operator named) is refused when unsafe, never changed.
        if uid == 0 && Some(dir) == Path::new(super::DEFAULT_SOCKET).parent() {
            super::trust::take_over_dir(dir);
        }
        if let Some(why) = super::trust::unsafe_dir(dir, uid) {
            return Err(ServerError::UnsafeDir {
                path: dir.to_path_buf(),
                why,
            });
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
    /// Open connections (waiting in the I/O thread, being answered, or following logs).
    open: AtomicUsize,
    /// Live follow streams.
    followers: AtomicUsize,
    /// Open connections per uid ([`fairness`]).
    per_uid: PerUid,
    stopping: Arc<AtomicBool>,
    /// Written to (one byte) to wake the I/O thread: a connection came back, or stop.
    waker: Arc<UnixStream>,
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
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
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
    _uid: UidSlot,
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

/// A complete request for a worker, with the connection and any bytes that followed it.
struct Job {
    conn: Conn,
    request: http::Request,
    rest: Vec<u8>,
}

/// A keep-alive connection a worker hands back, with bytes of a next request already read.
struct Returned {
    conn: Conn,
    rest: Vec<u8>,
}

/// A connection the I/O thread is reading a request from.
struct Pending {
    conn: Conn,
    buf: Vec<u8>,
    /// When it became idle (accepted, or its last answer was written).
    since: Instant,
    /// When the first byte of the current request arrived.
    first_byte: Option<Instant>,
}

impl Pending {
    fn new(conn: Conn, buf: Vec<u8>) -> Self {
        let now = Instant::now();
        let first_byte = (!buf.is_empty()).then_some(now);
        Self {
            conn,
            buf,
            since: now,
            first_byte,
        }
    }

    fn deadline(&self, opts: &ServerOptions) -> Instant {
        match self.first_byte {
            Some(t) => t + opts.request_timeout,
            None => self.since + opts.idle_timeout,
        }
    }
}

/// What reading from a pending connection led to.
enum Step {
    /// Still waiting for bytes.
    Keep(Pending),
    /// A complete request, for a worker.
    Dispatch(Job),
    /// Closed (by the client, or after an error answer).
    Done,
}

/// The I/O thread: accepting, non-blocking reads, parsing, deadlines.
struct IoLoop {
    unix: UnixListener,
    tcp: Option<TcpListener>,
    wake_rx: UnixStream,
    pending: Vec<Pending>,
    jobs: Sender<Job>,
    /// Jobs from root and the agent's uid: their own worker ([`fairness`]).
    priority: Sender<Job>,
    returned: Receiver<Returned>,
    shared: Arc<Shared>,
}

impl IoLoop {
    fn run(mut self) {
        loop {
            if self.shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            let returned: Vec<Returned> = self.returned.try_iter().collect();
            for r in returned {
                // A connection that used its turn's budget with requests left goes to the back
                // of the queue at once; others wait for bytes.
                match http::parse(&r.rest, &self.shared.opts.limits) {
                    Ok(Parsed::Complete(request, used)) => {
                        let mut rest = r.rest;
                        let rest = rest.split_off(used.min(rest.len()));
                        self.dispatch(Job {
                            conn: r.conn,
                            request,
                            rest,
                        });
                    }
                    _ => self.pending.push(Pending::new(r.conn, r.rest)),
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
                let mut fds: Vec<BorrowedFd<'_>> = Vec::with_capacity(self.pending.len() + 3);
                fds.push(self.wake_rx.as_fd());
                fds.push(self.unix.as_fd());
                if let Some(t) = &self.tcp {
                    fds.push(t.as_fd());
                }
                fds.extend(self.pending.iter().map(|p| p.conn.stream.as_fd()));
                match crate::sys::poll::wait_readable(&fds, timeout) {
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
            for (p, readable) in pending.into_iter().zip(conn_ready) {
                let step = if readable {
                    read_some(p, &self.shared.opts.limits)
                } else {
                    Step::Keep(p)
                };
                // Checked after reading too, so a client dripping bytes cannot outlive its deadline.
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

/// A connection past its deadline: 408 when a request had begun, silence when it was idle.
fn expire(p: Pending) {
    if p.first_byte.is_some() {
        let mut r = Response::error(&ApiError::bad_request("request not received in time"));
        r.status = 408;
        answer_and_close(p.conn, &r);
    }
}

/// Best-effort error answer on a non-blocking connection, then close.
fn answer_and_close(mut conn: Conn, response: &Response) {
    let mut out = Vec::new();
    response.write_to(&mut out, true);
    let _ = conn.stream.set_nonblocking(true);
    let _ = conn.stream.write(&out);
}

/// Writes a 503 without waiting on the client and closes.
fn refuse(mut stream: Stream, message: &str) {
    let mut out = Vec::new();
    Response::error(&ApiError::unavailable(message)).write_to(&mut out, true);
    let _ = stream.set_nonblocking(true);
    let _ = stream.write(&out);
}

fn worker(jobs: &Mutex<Receiver<Job>>, back: &Sender<Returned>, shared: &Arc<Shared>) {
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
