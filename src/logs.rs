//! Recent service output: a bounded ring buffer of lines per service, shared by the output
//! forwarders (writers) and the status socket (readers), and the forwarders themselves.
//!
//! Each captured pipe gets one small forwarder thread that reads lines, writes them to the
//! container's stdout/stderr in the chosen [`LogFormat`], keeps them in the [`LogStore`] and hands
//! them to followers. Supervision never waits on output: a slow reader of the container's stdout
//! only slows the forwarders (and, once the pipe is full, the service that writes), never the loop.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::status::wire::{LogLine, Stream};

/// Lines kept per service by default.
pub const DEFAULT_LINES_PER_SERVICE: usize = 1000;
/// Longest line forwarded as one; longer output is split (a binary without newlines never grows
/// memory without bound).
pub const MAX_LINE: usize = 16 * 1024;
/// Lines buffered per follower before new lines are dropped for it (never blocks the writer).
pub const FOLLOW_BUFFER: usize = 4096;
/// Environment variable choosing the output format.
pub const FORMAT_ENV: &str = "SPARKVISOR_LOG_FORMAT";
/// Stack of a forwarder thread: it only reads, formats and writes lines.
const FORWARDER_STACK: usize = 64 * 1024;

/// How forwarded lines look on the container's stdout/stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `name | line` (the default).
    #[default]
    Prefix,
    /// The line as the service wrote it.
    Plain,
    /// One JSON object per line: `{"time":..,"service":..,"stream":..,"message":..}`.
    Json,
}

impl LogFormat {
    /// Parses `prefix`, `plain` or `json`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "prefix" | "" => Some(Self::Prefix),
            "plain" => Some(Self::Plain),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// Formats one line, newline included.
    pub fn format(self, line: &LogLine) -> String {
        match self {
            Self::Prefix => format!("{} | {}\n", line.service, line.message),
            Self::Plain => format!("{}\n", line.message),
            Self::Json => match serde_json::to_string(line) {
                Ok(mut s) => {
                    s.push('\n');
                    s
                }
                Err(_) => format!("{}\n", line.message),
            },
        }
    }
}

#[derive(Default)]
struct Inner {
    lines: BTreeMap<String, VecDeque<LogLine>>,
    followers: Vec<(Option<String>, SyncSender<LogLine>)>,
}

/// The ring buffers of every service and the live followers.
pub struct LogStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl LogStore {
    /// A store keeping `capacity` lines per service.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A forwarder that panicked cannot leave the buffers inconsistent (pushes are whole).
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a line and hands it to the followers of its service (dropping it for a follower whose
    /// buffer is full; forgetting followers that went away).
    pub fn push(&self, line: LogLine) {
        let mut inner = self.lock();
        inner.followers.retain(|(service, tx)| {
            if service.as_ref().is_some_and(|s| *s != line.service) {
                return true;
            }
            !matches!(
                tx.try_send(line.clone()),
                Err(TrySendError::Disconnected(_))
            )
        });
        let capacity = self.capacity;
        let ring = inner.lines.entry(line.service.clone()).or_default();
        if ring.len() >= capacity {
            ring.pop_front();
        }
        ring.push_back(line);
    }

    /// The last `n` lines of one service, or of all services merged by time; oldest first.
    pub fn tail(&self, service: Option<&str>, n: usize) -> Vec<LogLine> {
        let inner = self.lock();
        let mut out: Vec<LogLine> = match service {
            Some(s) => inner
                .lines
                .get(s)
                .map(|r| r.iter().cloned().collect())
                .unwrap_or_default(),
            None => {
                let mut all: Vec<LogLine> = inner.lines.values().flatten().cloned().collect();
                all.sort_by(|a, b| a.time.total_cmp(&b.time));
                all
            }
        };
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
        out
    }

    /// New lines of one service (or all) from now on.
    pub fn follow(&self, service: Option<&str>) -> Receiver<LogLine> {
        let (tx, rx) = std::sync::mpsc::sync_channel(FOLLOW_BUFFER);
        self.lock()
            .followers
            .push((service.map(str::to_string), tx));
        rx
    }
}

/// Seconds since the epoch, fractional.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Starts a thread that forwards `pipe` line by line to `out` (the container's stdout or stderr)
/// and into `store`, until end of file.
pub fn forward(
    pipe: impl Read + Send + 'static,
    service: String,
    stream: Stream,
    format: LogFormat,
    store: Arc<LogStore>,
    out: impl Write + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("out-{service}"))
        .stack_size(FORWARDER_STACK)
        .spawn(move || copy_lines(pipe, &service, stream, format, &store, out))
}

/// The forwarder's body: read, keep, write; a write error (stdout closed) stops only the writing.
pub fn copy_lines(
    pipe: impl Read,
    service: &str,
    stream: Stream,
    format: LogFormat,
    store: &LogStore,
    mut out: impl Write,
) {
    let mut reader = BufReader::with_capacity(MAX_LINE, pipe);
    let mut buf = Vec::with_capacity(256);
    let mut writable = true;
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let line = LogLine {
            time: unix_now(),
            service: service.to_string(),
            stream,
            message: String::from_utf8_lossy(&buf).into_owned(),
        };
        if writable {
            let text = format.format(&line);
            writable = out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_ok();
        }
        store.push(line);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(sink: &Sink) -> String {
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn formats_prefix_plain_and_json() {
        let input = "one\ntwo \"q\"\nlast-without-newline";
        let table = [
            (
                LogFormat::Prefix,
                "svc | one\nsvc | two \"q\"\nsvc | last-without-newline\n",
            ),
            (LogFormat::Plain, "one\ntwo \"q\"\nlast-without-newline\n"),
        ];
        for (format, want) in table {
            let store = LogStore::new(10);
            let sink = Sink::default();
            copy_lines(
                input.as_bytes(),
                "svc",
                Stream::Stdout,
                format,
                &store,
                sink.clone(),
            );
            assert_eq!(text(&sink), want, "{format:?}");
        }
        let store = LogStore::new(10);
        let sink = Sink::default();
        copy_lines(
            input.as_bytes(),
            "svc",
            Stream::Stderr,
            LogFormat::Json,
            &store,
            sink.clone(),
        );
        let lines: Vec<serde_json::Value> = text(&sink)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["message"], "two \"q\"");
        assert_eq!(lines[1]["stream"], "stderr");
        assert_eq!(lines[1]["service"], "svc");
        assert_eq!(LogFormat::parse("JSON"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("xml"), None);
    }

    #[test]
    fn ring_buffer_keeps_the_last_lines_and_long_lines_are_split() {
        let store = LogStore::new(3);
        let input: String = (1..=5).map(|i| format!("l{i}\n")).collect();
        copy_lines(
            input.as_bytes(),
            "a",
            Stream::Stdout,
            LogFormat::Plain,
            &store,
            io::sink(),
        );
        let tail: Vec<String> = store
            .tail(Some("a"), 10)
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(tail, vec!["l3", "l4", "l5"]);
        assert_eq!(store.tail(Some("a"), 1)[0].message, "l5");
        assert!(store.tail(Some("nobody"), 5).is_empty());
        let long = "x".repeat(MAX_LINE * 2 + 5);
        copy_lines(
            long.as_bytes(),
            "b",
            Stream::Stdout,
            LogFormat::Plain,
            &store,
            io::sink(),
        );
        let parts: Vec<usize> = store
            .tail(Some("b"), 10)
            .iter()
            .map(|l| l.message.len())
            .collect();
        assert_eq!(parts, vec![MAX_LINE, MAX_LINE, 5]);
        assert_eq!(store.tail(None, 100).len(), 6);
    }

    #[test]
    fn followers_get_new_lines_of_their_service_only_and_never_block() {
        let store = LogStore::new(10);
        let a = store.follow(Some("a"));
        let all = store.follow(None);
        copy_lines(
            &b"x\n"[..],
            "a",
            Stream::Stdout,
            LogFormat::Plain,
            &store,
            io::sink(),
        );
        copy_lines(
            &b"y\n"[..],
            "b",
            Stream::Stdout,
            LogFormat::Plain,
            &store,
            io::sink(),
        );
        assert_eq!(a.try_recv().unwrap().message, "x");
        assert!(a.try_recv().is_err());
        assert_eq!(all.try_iter().count(), 2);
        drop(a);
        // A full follower drops lines instead of blocking the writer.
        let many: String = "z\n".repeat(FOLLOW_BUFFER + 10);
        copy_lines(
            many.as_bytes(),
            "a",
            Stream::Stdout,
            LogFormat::Plain,
            &store,
            io::sink(),
        );
        assert_eq!(all.try_iter().count(), FOLLOW_BUFFER);
    }
}
