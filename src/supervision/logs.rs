//! Recent service output: a bounded ring buffer of lines per service, shared by the output
//! forwarders (writers) and the status socket (readers), and the forwarders themselves.
//!
//! Each captured pipe gets one small forwarder thread that reads lines, writes them to the
//! container's stdout/stderr in the chosen [`LogFormat`], keeps them in the [`LogStore`] and hands
//! them to followers. Supervision never waits on output: a slow reader of the container's stdout
//! only slows the forwarders (and, once the pipe is full, the service that writes), never the loop.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::status::wire::{LogLine, Stream};

pub mod drain;

pub use drain::{OutputDrain, Pending};

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

    /// Appends one line as it goes to the container's stream: `raw` is the line as the service wrote
    /// it (prefix and plain pass its bytes through unchanged), `line` its kept form (for JSON).
    pub fn append(self, raw: &[u8], line: &LogLine, out: &mut Vec<u8>) {
        match self {
            Self::Json => out.extend_from_slice(self.format(line).as_bytes()),
            Self::Prefix | Self::Plain => self.append_raw(&line.service, raw, out),
        }
    }

    /// [`Self::append`] for prefix and plain, which need only the bytes (no [`LogLine`] built).
    fn append_raw(self, service: &str, raw: &[u8], out: &mut Vec<u8>) {
        if self == Self::Prefix {
            out.extend_from_slice(service.as_bytes());
            out.extend_from_slice(b" | ");
        }
        out.extend_from_slice(raw);
        out.push(b'\n');
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

/// One kept line; its bytes are the next `len` bytes of its ring's `text`, followed by `gap` bytes
/// that belong to no line (the newline it ended with, when kept together with its successor).
struct Kept {
    time: f64,
    stream: Stream,
    len: usize,
    gap: usize,
}

/// One service's recent lines, their bytes back to back in one byte ring: keeping a batch of lines
/// is one copy of their bytes and allocates nothing once the ring has reached its steady size.
/// Bytes are kept as the service wrote them; invalid UTF-8 is replaced when lines are read back
/// (the same replacement as when kept, line by line).
#[derive(Default)]
struct Ring {
    text: VecDeque<u8>,
    lines: VecDeque<Kept>,
}

impl Ring {
    /// Keeps the lines `spans` of `bytes` (ascending, disjoint ranges, only separators between
    /// them), forgetting the oldest lines beyond `capacity`.
    fn keep(
        &mut self,
        capacity: usize,
        time: f64,
        stream: Stream,
        bytes: &[u8],
        spans: &[(usize, usize)],
    ) {
        let (Some(&(first, _)), Some(&(_, end))) = (spans.first(), spans.last()) else {
            return;
        };
        self.text.extend(bytes.get(first..end).unwrap_or_default());
        let mut next_starts = spans.iter().skip(1).map(|&(a, _)| a);
        for &(a, b) in spans {
            let gap = next_starts.next().map_or(0, |next| next - b);
            self.lines.push_back(Kept {
                time,
                stream,
                len: b - a,
                gap,
            });
        }
        let mut forget = 0;
        while self.lines.len() > capacity {
            if let Some(oldest) = self.lines.pop_front() {
                forget += oldest.len + oldest.gap;
            }
        }
        self.text.drain(..forget.min(self.text.len()));
    }

    /// The last `n` lines, oldest first.
    fn tail(&self, service: &str, n: usize) -> Vec<LogLine> {
        let skip = self.lines.len().saturating_sub(n);
        let mut offset: usize = self.lines.iter().take(skip).map(|k| k.len + k.gap).sum();
        let mut out = Vec::with_capacity(self.lines.len() - skip);
        for kept in self.lines.iter().skip(skip) {
            let bytes: Vec<u8> = self
                .text
                .range(offset..offset + kept.len)
                .copied()
                .collect();
            offset += kept.len + kept.gap;
            out.push(LogLine {
                time: kept.time,
                service: service.to_string(),
                stream: kept.stream,
                message: String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            });
        }
        out
    }
}

#[derive(Default)]
struct Inner {
    rings: BTreeMap<String, Ring>,
    followers: Vec<(Option<String>, SyncSender<LogLine>)>,
}

/// Hands a line to the followers of its service (dropping it for a follower whose buffer is full;
/// forgetting followers that went away).
fn offer(followers: &mut Vec<(Option<String>, SyncSender<LogLine>)>, line: &LogLine) {
    followers.retain(|(service, tx)| {
        if service.as_ref().is_some_and(|s| *s != line.service) {
            return true;
        }
        !matches!(
            tx.try_send(line.clone()),
            Err(TrySendError::Disconnected(_))
        )
    });
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
        self.push_all(vec![line]);
    }

    /// [`Self::push`] for many lines under one lock.
    pub fn push_all(&self, lines: Vec<LogLine>) {
        let mut inner = self.lock();
        let Inner { rings, followers } = &mut *inner;
        for line in lines {
            offer(followers, &line);
            let bytes = line.message.as_bytes();
            rings.entry(line.service.clone()).or_default().keep(
                self.capacity,
                line.time,
                line.stream,
                bytes,
                &[(0, bytes.len())],
            );
        }
    }

    /// Keeps the lines `spans` of `bytes` that one forwarder read at `time` under one lock, with one
    /// copy of their bytes and no allocation per line unless someone follows.
    fn keep_read(
        &self,
        service: &str,
        stream: Stream,
        time: f64,
        bytes: &[u8],
        spans: &[(usize, usize)],
    ) {
        let mut inner = self.lock();
        let Inner { rings, followers } = &mut *inner;
        let followed = followers
            .iter()
            .any(|(s, _)| s.as_deref().is_none_or(|s| s == service));
        if followed {
            for &(a, b) in spans {
                let line = LogLine {
                    time,
                    service: service.to_string(),
                    stream,
                    message: String::from_utf8_lossy(bytes.get(a..b).unwrap_or_default())
                        .into_owned(),
                };
                offer(followers, &line);
            }
        }
        // Lines the ring would forget within this same batch are not copied.
        let skip = spans.len().saturating_sub(self.capacity);
        rings.entry(service.to_string()).or_default().keep(
            self.capacity,
            time,
            stream,
            bytes,
            spans.get(skip..).unwrap_or_default(),
        );
    }

    /// The last `n` lines of one service, or of all services merged by time; oldest first.
    pub fn tail(&self, service: Option<&str>, n: usize) -> Vec<LogLine> {
        let inner = self.lock();
        match service {
            Some(s) => inner.rings.get(s).map(|r| r.tail(s, n)).unwrap_or_default(),
            None => {
                let mut all: Vec<LogLine> =
                    inner.rings.iter().flat_map(|(s, r)| r.tail(s, n)).collect();
                all.sort_by(|a, b| a.time.total_cmp(&b.time));
                let skip = all.len().saturating_sub(n);
                all.drain(..skip);
                all
            }
        }
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

/// Whose output a forwarder copies, and where it keeps it.
pub struct OutputOf {
    /// The service's name (the line prefix, and its key in the store).
    pub service: String,
    /// Which of its streams.
    pub stream: Stream,
    /// How lines look on the container's output.
    pub format: LogFormat,
    /// Where recent lines are kept for `sparkvisor logs`.
    pub store: Arc<LogStore>,
}

/// Starts a thread that forwards `pipe` line by line to `out` (the container's stdout or stderr)
/// and into the store, until end of file, then drops `pending`; a panic in it is reported to
/// `on_death` (see [`crate::sys::thread::spawn_critical`]).
pub fn forward(
    pipe: impl Read + Send + 'static,
    of: OutputOf,
    out: impl Write + Send + 'static,
    pending: Pending,
    on_death: impl FnOnce(String) + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    crate::sys::thread::spawn_critical(
        "output",
        format!("out-{}", of.service),
        Some(FORWARDER_STACK),
        crate::sys::thread::Lifetime::Task,
        on_death,
        move || {
            copy_lines(pipe, &of.service, of.stream, of.format, &of.store, out);
            // The pipe has ended and every line is out: the agent's exit no longer waits for us.
            drop(pending);
            Ok(())
        },
    )
}

/// Bytes read from a pipe at once: output is handled a chunk at a time (one write to the container's
/// stream and one lock of the store per chunk, not per line).
const CHUNK: usize = 64 * 1024;

/// The forwarder's body: read, keep, write; a write error (stdout closed) stops only the writing.
/// A line is forwarded once its newline (or the end of the output) arrives; longer than
/// [`MAX_LINE`], it is split.
pub fn copy_lines(
    mut pipe: impl Read,
    service: &str,
    stream: Stream,
    format: LogFormat,
    store: &LogStore,
    mut out: impl Write,
) {
    // Reads land after the unfinished line of the previous read (at most MAX_LINE bytes: longer
    // ones are forwarded in pieces), so bytes are copied once into the buffer and once out.
    let mut buf = vec![0u8; MAX_LINE + CHUNK];
    let mut filled = 0;
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut text: Vec<u8> = Vec::with_capacity(CHUNK + CHUNK / 4);
    let mut writable = true;
    loop {
        let (n, eof) = match pipe.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => (0, true),
            Ok(n) => (n, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => (0, true),
        };
        filled += n;
        let data = buf.get(..filled).unwrap_or_default();
        spans.clear();
        let mut start = 0;
        // Whether the lines are data[..start] exactly (whole lines, none split): plain output can
        // then be written straight from the read buffer.
        let mut verbatim = true;
        for newline in memchr::memchr_iter(b'\n', data) {
            verbatim &= newline - start <= MAX_LINE;
            push_pieces(&mut spans, start, newline);
            start = newline + 1;
        }
        let rest = filled - start;
        if eof && rest > 0 {
            push_pieces(&mut spans, start, filled);
            start = filled;
            verbatim = false;
        } else if rest > MAX_LINE {
            // A line longer than MAX_LINE without its newline yet: forward the full pieces now.
            let full = start + rest / MAX_LINE * MAX_LINE;
            push_pieces(&mut spans, start, full);
            start = full;
            verbatim = false;
        }
        if !spans.is_empty() {
            let time = unix_now();
            if writable && verbatim && format == LogFormat::Plain {
                let lines = data.get(..start).unwrap_or_default();
                writable = out.write_all(lines).and_then(|()| out.flush()).is_ok();
            } else if writable {
                text.clear();
                for &(a, b) in &spans {
                    let raw = data.get(a..b).unwrap_or_default();
                    if format == LogFormat::Json {
                        let line = LogLine {
                            time,
                            service: service.to_string(),
                            stream,
                            message: String::from_utf8_lossy(raw).into_owned(),
                        };
                        format.append(raw, &line, &mut text);
                    } else {
                        format.append_raw(service, raw, &mut text);
                    }
                }
                writable = out.write_all(&text).and_then(|()| out.flush()).is_ok();
            }
            store.keep_read(service, stream, time, data, &spans);
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if eof {
            return;
        }
    }
}

/// Adds the line `start..end` as pieces of at most [`MAX_LINE`] bytes (an empty line as itself).
fn push_pieces(spans: &mut Vec<(usize, usize)>, start: usize, end: usize) {
    if start == end {
        spans.push((start, end));
        return;
    }
    let mut a = start;
    while a < end {
        let b = end.min(a + MAX_LINE);
        spans.push((a, b));
        a = b;
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

    /// A reader that hands out at most 3 bytes per read, as a slow pipe does.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(3).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_split_across_reads_come_out_whole_and_bytes_pass_through() {
        let store = LogStore::new(10);
        let sink = Sink::default();
        let input = b"first line\n\nsecond \xff line\nlast";
        copy_lines(
            Trickle(input),
            "s",
            Stream::Stdout,
            LogFormat::Plain,
            &store,
            sink.clone(),
        );
        assert_eq!(
            sink.0.lock().unwrap().as_slice(),
            b"first line\n\nsecond \xff line\nlast\n"
        );
        let kept: Vec<String> = store
            .tail(Some("s"), 10)
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(kept, vec!["first line", "", "second \u{fffd} line", "last"]);
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

    /// A reader that hands out `self.1` bytes per read.
    struct Chunked<'a>(&'a [u8], usize);
    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn ring_keeps_the_same_lines_whatever_the_reads_and_followers() {
        // Short lines, an empty one, a split long line with a multi-byte character cut at the
        // split, invalid UTF-8, many lines in one read: the ring's content depends on none of it.
        let long = format!("{}é{}", "a".repeat(MAX_LINE - 1), "b".repeat(10));
        let mut input = String::new();
        for i in 0..50 {
            input.push_str(&format!("line {i}\n"));
        }
        input.push_str(&format!("\n{long}\nend"));
        let mut bytes = input.into_bytes();
        bytes.extend_from_slice(b"\n\xffbad\nlast");
        let mut want: Vec<String> = (0..50).map(|i| format!("line {i}")).collect();
        want.push(String::new());
        let (first, second) = long.as_bytes().split_at(MAX_LINE);
        want.push(String::from_utf8_lossy(first).into_owned());
        want.push(String::from_utf8_lossy(second).into_owned());
        want.extend(["end", "\u{fffd}bad", "last"].map(String::from));
        for capacity in [1, 4, 100] {
            for read_size in [1, 7, 4096, CHUNK] {
                for followed in [false, true] {
                    let store = LogStore::new(capacity);
                    let follower = followed.then(|| store.follow(Some("s")));
                    let sink = Sink::default();
                    copy_lines(
                        Chunked(&bytes, read_size),
                        "s",
                        Stream::Stdout,
                        LogFormat::Plain,
                        &store,
                        sink.clone(),
                    );
                    let kept: Vec<String> = store
                        .tail(Some("s"), usize::MAX)
                        .into_iter()
                        .map(|l| l.message)
                        .collect();
                    let skip = want.len().saturating_sub(capacity);
                    let case = format!("capacity {capacity}, reads of {read_size}, {followed}");
                    assert_eq!(kept, want[skip..], "{case}");
                    assert_eq!(store.tail(None, 2).len(), capacity.min(2), "{case}");
                    if let Some(rx) = follower {
                        let got: Vec<String> = rx.try_iter().map(|l| l.message).collect();
                        assert_eq!(got, want, "{case}");
                    }
                    let mut out = bytes.clone();
                    // The split long line gets a newline at the split; the last line gets one.
                    let at = out
                        .windows(long.len())
                        .position(|w| w == long.as_bytes())
                        .unwrap();
                    out.insert(at + MAX_LINE, b'\n');
                    out.push(b'\n');
                    assert_eq!(*sink.0.lock().unwrap(), out, "{case}");
                }
            }
        }
    }
}
