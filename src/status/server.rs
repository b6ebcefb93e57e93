//! The status server: a Unix socket (and optionally a read-only TCP listener for `/metrics`), one
//! I/O thread, a fixed pool of worker threads, and hard limits, so that no client behaviour can
//! slow supervision or tie up the server.
//!
//! The I/O thread owns every connection that is not being answered: it accepts, reads and writes
//! without blocking (`poll`), parses, and enforces the deadlines; only a complete request goes to
//! a worker, which asks the [`Backend`], writes what the socket takes at once and hands the
//! connection back, with the rest of the answer when the client did not take it all. So silent,
//! slow, half-sent or unread requests cost a slot in a list, never a thread: no worker ever waits
//! on a client. Threads: the I/O thread, `workers` workers, and at most `max_followers` threads
//! streaming `logs -f`. All block while idle; the I/O thread wakes only for I/O or the nearest
//! connection deadline (none when no connection is open).
//! Limits: `max_connections` open connections (the next one is answered 503 and closed at once);
//! request head, header count and body size ([`Limits`]); a deadline for each request from its
//! first byte (`request_timeout`, then 408), for an answer to be taken (`request_timeout`, then
//! the connection is closed) and for idle connections (`idle_timeout`); the unsent answers of all
//! connections together (`max_unsent_bytes`).

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

mod conn;
mod io_loop;
mod worker;

use conn::{Job, Returned};
use io_loop::IoLoop;
use worker::worker;

use super::api::Policy;
use super::fairness::PerUid;
use super::http::Limits;
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
    /// Bytes of answers held for clients that have not taken them, all connections together; an
    /// answer whose rest does not fit while others are held closes its connection instead.
    pub max_unsent_bytes: usize,
    /// From a request's first byte to its last; and from an answer being ready to the client
    /// having taken it all.
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
            max_unsent_bytes: super::fairness::MAX_UNSENT_BYTES,
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
        unsent_bytes: AtomicUsize::new(0),
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
    /// Bytes of answers waiting for clients that have not taken them yet ([`conn::Unsent`]).
    unsent_bytes: AtomicUsize,
    /// Open connections per uid ([`fairness`]).
    per_uid: PerUid,
    stopping: Arc<AtomicBool>,
    /// Written to (one byte) to wake the I/O thread: a connection came back, or stop.
    waker: Arc<UnixStream>,
}
