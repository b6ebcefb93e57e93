//! The operator CLI side of the status socket: `status`, `health`, `start|stop|restart`, `signal`, `logs`.
//!
//! A tiny HTTP/1.1 client over the Unix socket (`SPARKVISOR_SOCKET`): one request per connection,
//! `Connection: close`, the answer read to its end (or, for `logs -f`, chunk by chunk). The head
//! and the chunk sizes are parsed by `httparse`; only the framing (which bytes to read) is here.
//! Exit codes: 0 success; 1 a failed request (unknown service, conflict) or `health` not healthy;
//! 69 no agent on the socket; 77 control refused to this uid (README "Exit codes").

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::wire::{
    parse_signal, signal_name, ErrorBody, Health, LastExit, LogLine, ServiceState, ServiceStatus,
    Status, Stream,
};
use crate::error::{exit_code, Fatal};

/// How long the CLI waits for an answer (a follow stream waits forever).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// `sparkvisor status [--json] [SERVICE]`.
pub fn status(service: Option<&str>, json: bool) -> Result<i32, Fatal> {
    let path = match service {
        Some(name) => format!("/v1/services/{}", encode(name)),
        None => "/v1/status".to_string(),
    };
    let reply = Client::from_env().request("GET", &path, None)?;
    if reply.status != 200 {
        return reply.fail();
    }
    let mut out = io::stdout().lock();
    let colour = colour_wanted(&io::stdout());
    let text = if json {
        let value: serde_json::Value = reply.json()?;
        let mut s = serde_json::to_string_pretty(&value)
            .map_err(|e| Fatal::Internal(format!("cannot print JSON: {e}")))?;
        s.push('\n');
        s
    } else if service.is_some() {
        let svc: ServiceStatus = reply.json()?;
        service_detail(&svc, now())
    } else {
        let status: Status = reply.json()?;
        table(&status, now(), colour)
    };
    let _ = out.write_all(text.as_bytes());
    Ok(exit_code::OK)
}

/// `sparkvisor health`: 0 when every required service is ready, else 1 with the reasons.
pub fn health() -> Result<i32, Fatal> {
    let reply = Client::from_env().request("GET", "/v1/health", None)?;
    if reply.status != 200 && reply.status != 503 {
        return reply.fail();
    }
    let health: Health = reply.json()?;
    if health.healthy {
        crate::outln!("healthy");
        Ok(exit_code::OK)
    } else {
        crate::outln!("unhealthy: {}", health.reasons.join("; "));
        Ok(exit_code::FAILURE)
    }
}

/// The agent's status document, for callers that decide on it (the KubeDirector hooks).
pub fn fetch_status() -> Result<Status, Fatal> {
    let reply = Client::from_env().request("GET", "/v1/status", None)?;
    if reply.status != 200 {
        return Err(Fatal::Internal(format!(
            "status request answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body).trim()
        )));
    }
    reply.json()
}

/// The agent's health (200 healthy, 503 not yet), for callers that wait on it.
pub fn fetch_health() -> Result<Health, Fatal> {
    let reply = Client::from_env().request("GET", "/v1/health", None)?;
    if reply.status != 200 && reply.status != 503 {
        return Err(Fatal::Internal(format!(
            "health request answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body).trim()
        )));
    }
    reply.json()
}

/// `sparkvisor start|stop|restart SERVICE`.
pub fn control(service: &str, action: &str) -> Result<i32, Fatal> {
    let path = format!("/v1/services/{}/{}", encode(service), encode(action));
    let reply = Client::from_env().request("POST", &path, None)?;
    report_control(&reply)
}

/// `sparkvisor signal SERVICE SIGNAL`.
pub fn signal(service: &str, signal: &str) -> Result<i32, Fatal> {
    let Some(number) = parse_signal(signal) else {
        crate::errln!(
            "sparkvisor: unknown signal {signal:?} (use a name like TERM or HUP, or a number)"
        );
        return Ok(exit_code::FAILURE);
    };
    let path = format!("/v1/services/{}/signal", encode(service));
    let body = format!("{{\"signal\":{number}}}");
    let reply = Client::from_env().request("POST", &path, Some(body.as_bytes()))?;
    report_control(&reply)
}

fn report_control(reply: &Reply) -> Result<i32, Fatal> {
    if reply.status != 200 {
        return reply.fail();
    }
    let svc: ServiceStatus = reply.json()?;
    match svc.pid {
        Some(pid) => crate::outln!("{}: {} (pid {pid})", svc.name, svc.state),
        None => crate::outln!("{}: {}", svc.name, svc.state),
    }
    Ok(exit_code::OK)
}

/// `sparkvisor logs [SERVICE] [-n N] [-f]`.
pub fn logs(service: Option<&str>, lines: usize, follow: bool) -> Result<i32, Fatal> {
    let mut path = format!("/v1/logs?n={lines}");
    if let Some(s) = service {
        let _ = write!(path, "&service={}", encode(s));
    }
    let client = Client::from_env();
    let mut stdout = io::stdout().lock();
    if !follow {
        let reply = client.request("GET", &path, None)?;
        if reply.status != 200 {
            return reply.fail();
        }
        for raw in reply.body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if print_log_line(&mut stdout, raw).is_err() {
                break;
            }
        }
        return Ok(exit_code::OK);
    }
    path.push_str("&follow=true");
    match client.stream(&path, |raw| print_log_line(&mut stdout, raw))? {
        Some(refused) => refused.fail(),
        None => Ok(exit_code::OK),
    }
}

/// Prints one ndjson log line as `service| message` (stderr lines marked `service!`).
fn print_log_line(out: &mut impl Write, raw: &[u8]) -> io::Result<()> {
    match serde_json::from_slice::<LogLine>(raw) {
        Ok(line) => {
            let mark = if line.stream == Stream::Stderr {
                '!'
            } else {
                '|'
            };
            writeln!(out, "{}{mark} {}", line.service, line.message)
        }
        Err(_) => {
            out.write_all(raw)?;
            out.write_all(b"\n")
        }
    }?;
    out.flush()
}

/// Percent-encodes a path segment or query value: every byte but RFC 3986's unreserved ones.
/// (Hand-written: the `percent-encoding` crate would be a new dependency for these few lines.)
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An answer read to its end.
struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Fatal> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Fatal::Internal(format!("unexpected answer from the agent: {e}")))
    }

    /// Turns an error answer into the CLI's message and exit code.
    fn fail(&self) -> Result<i32, Fatal> {
        let message = serde_json::from_slice::<ErrorBody>(&self.body)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&self.body).trim().to_string());
        if self.status == 403 {
            return Err(Fatal::NoPermission(format!(
                "{message}; run this as root or as the agent's user"
            )));
        }
        crate::errln!("sparkvisor: {message}");
        Ok(exit_code::FAILURE)
    }
}

/// The socket to talk to.
struct Client {
    socket: PathBuf,
}

impl Client {
    fn from_env() -> Self {
        Self {
            socket: super::client_socket_path(),
        }
    }

    fn connect(&self) -> Result<UnixStream, Fatal> {
        let stream =
            UnixStream::connect(&self.socket).map_err(|e| connect_error(&self.socket, &e))?;
        // Believe only the agent: a squatter on the path could forge any answer.
        let peer = crate::sys::peercred::peer_uid(&stream).map_err(|e| lost(&self.socket, &e))?;
        let me = crate::sys::peercred::effective_uid();
        if !super::trust::trusted_peer(&self.socket, peer, me) {
            return Err(Fatal::Unavailable(format!(
                "refusing the answer on {}: it comes from uid {peer}, not root, uid {me} or the owner of the socket's directory (another user holds the socket path?)",
                self.socket.display()
            )));
        }
        Ok(stream)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<BufReader<UnixStream>, Fatal> {
        let mut stream = self.connect()?;
        let _ = stream.set_write_timeout(Some(ANSWER_TIMEOUT));
        let body = body.unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: sparkvisor\r\nConnection: close\r\nUser-Agent: sparkvisor-cli\r\n"
        )
        .into_bytes();
        if !body.is_empty() {
            req.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        stream.write_all(&req).map_err(|e| lost(&self.socket, &e))?;
        Ok(BufReader::new(stream))
    }

    fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Reply, Fatal> {
        let mut reader = self.send(method, path, body)?;
        let _ = reader.get_ref().set_read_timeout(Some(ANSWER_TIMEOUT));
        let head = read_head(&mut reader).map_err(|e| lost(&self.socket, &e))?;
        let mut body = Vec::new();
        if head.chunked {
            read_chunks(&mut reader, |chunk| {
                body.extend_from_slice(chunk);
                Ok(())
            })
        } else if let Some(n) = head.content_length {
            body.resize(n, 0);
            reader.read_exact(&mut body)
        } else {
            reader.read_to_end(&mut body).map(|_| ())
        }
        .map_err(|e| lost(&self.socket, &e))?;
        Ok(Reply {
            status: head.status,
            body,
        })
    }

    /// Sends a GET and hands each line of a streamed (chunked) answer to `on_line` until the
    /// stream ends or `on_line` fails (stdout closed). An answer that is not a stream (an error)
    /// is returned whole.
    fn stream(
        &self,
        path: &str,
        mut on_line: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<Option<Reply>, Fatal> {
        let mut reader = self.send("GET", path, None)?;
        let head = read_head(&mut reader).map_err(|e| lost(&self.socket, &e))?;
        if head.status != 200 || !head.chunked {
            let mut body = Vec::new();
            let _ = reader.read_to_end(&mut body);
            return Ok(Some(Reply {
                status: head.status,
                body,
            }));
        }
        let mut pending: Vec<u8> = Vec::new();
        let result = read_chunks(&mut reader, |chunk| {
            pending.extend_from_slice(chunk);
            while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                on_line(line.get(..i).unwrap_or_default())?;
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(None),
            // stdout closed (`logs -f | head`) or the agent went away: both end the stream.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(None),
            Err(e) => Err(lost(&self.socket, &e)),
        }
    }
}

/// The one-line error for a socket the CLI cannot reach, saying what to do.
fn connect_error(socket: &Path, e: &io::Error) -> Fatal {
    let s = socket.display();
    Fatal::Unavailable(match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => format!(
            "no agent at {s} (is sparkvisor running in this container? set SPARKVISOR_SOCKET)"
        ),
        io::ErrorKind::PermissionDenied => {
            format!("permission denied on {s} (run as root or as a member of the socket's group)")
        }
        _ => format!("cannot reach the agent at {s}: {e} (set SPARKVISOR_SOCKET?)"),
    })
}

fn lost(socket: &Path, e: &io::Error) -> Fatal {
    Fatal::Unavailable(format!(
        "the agent at {} did not answer properly: {e}",
        socket.display()
    ))
}

/// What the CLI needs of a response head.
struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Most header fields an answer may have.
const MAX_FIELDS: usize = 100;

/// Reads the status line and header fields (bounded: [`MAX_FIELDS`] lines of 8 KiB) and parses
/// them with `httparse`.
fn read_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let mut raw = Vec::new();
    let mut ended = false;
    for _ in 0..=MAX_FIELDS + 1 {
        let start = raw.len();
        read_line(reader, &mut raw)?;
        if matches!(raw.get(start..), Some(b"\r\n" | b"\n")) {
            ended = true;
            break;
        }
    }
    if !ended {
        return Err(bad("too many header fields"));
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut answer = httparse::Response::new(&mut fields);
    match answer.parse(&raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => return Err(bad("not an HTTP answer")),
    }
    let status = answer.code.ok_or_else(|| bad("not an HTTP answer"))?;
    let mut head = Head {
        status,
        content_length: None,
        chunked: false,
    };
    for field in answer.headers.iter() {
        let value = std::str::from_utf8(field.value).map(str::trim);
        if field.name.eq_ignore_ascii_case("content-length") {
            let n = value.ok().and_then(|v| v.parse().ok());
            head.content_length = Some(n.ok_or_else(|| bad("bad content-length"))?);
        } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.is_ok_and(|v| v.eq_ignore_ascii_case("chunked"));
        }
    }
    Ok(head)
}

/// Appends one line (at most 8 KiB, with its line break) to `buf`.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<()> {
    let n = reader.take(8192).read_until(b'\n', buf)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(())
}

/// Decodes a chunked body, handing each chunk to `on_chunk` as it arrives.
fn read_chunks(
    reader: &mut impl BufRead,
    mut on_chunk: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut line = Vec::new();
    let mut data = Vec::new();
    loop {
        line.clear();
        match read_line(reader, &mut line) {
            Ok(()) => {}
            // The server closes a follow stream without a last chunk when the agent stops.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let size = match httparse::parse_chunk_size(&line) {
            Ok(httparse::Status::Complete((_, size))) => {
                usize::try_from(size).map_err(|_| bad("bad chunk"))?
            }
            Ok(httparse::Status::Partial) | Err(_) => return Err(bad("bad chunk")),
        };
        if size == 0 {
            return Ok(());
        }
        data.resize(size, 0);
        reader.read_exact(&mut data)?;
        line.clear();
        read_line(reader, &mut line)?;
        on_chunk(&data)?;
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (no-color.org).
fn colour_wanted(out: &io::Stdout) -> bool {
    out.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `1d04h`, `3h07m`, `5m03s`, `42s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `code 1`, `signal 9 (KILL)`, or `-` before the first exit.
pub fn describe_exit(exit: Option<&LastExit>) -> String {
    match exit {
        Some(LastExit {
            code: Some(code), ..
        }) => format!("code {code}"),
        Some(LastExit {
            signal: Some(sig), ..
        }) => match signal_name(*sig) {
            Some(name) => format!("signal {sig} ({name})"),
            None => format!("signal {sig}"),
        },
        _ => "-".to_string(),
    }
}

fn uptime(s: &ServiceStatus, now: u64) -> String {
    if !s.state.is_up() {
        return "-".into();
    }
    s.uptime_secs
        .or_else(|| s.started_at.map(|t| now.saturating_sub(t)))
        .map_or_else(|| "-".into(), human_duration)
}

/// ANSI colour for a state: green when ready/running, yellow on the way, red when failed.
fn state_colour(state: ServiceState) -> &'static str {
    match state {
        ServiceState::Ready | ServiceState::Running => "\x1b[32m",
        ServiceState::Starting | ServiceState::Waiting | ServiceState::Stopping => "\x1b[33m",
        ServiceState::Backoff | ServiceState::Failed => "\x1b[31m",
        ServiceState::Stopped => "\x1b[2m",
    }
}

/// The `status` table: service, state, pid, uptime, restarts, last exit.
pub fn table(status: &Status, now: u64, colour: bool) -> String {
    let header = ["SERVICE", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT"];
    let rows: Vec<[String; 6]> = status
        .services
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.state.to_string(),
                s.pid.map_or_else(|| "-".into(), |p| p.to_string()),
                uptime(s, now),
                s.restarts.to_string(),
                describe_exit(s.last_exit.as_ref()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &[String], state: Option<ServiceState>| {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let last = i + 1 == cells.len();
            let pad = if last {
                String::new()
            } else {
                " ".repeat(w.saturating_sub(cell.chars().count()) + 2)
            };
            match (i, state, colour) {
                (1, Some(st), true) => {
                    let _ = write!(line, "{}{cell}\x1b[0m{pad}", state_colour(st));
                }
                _ => {
                    let _ = write!(line, "{cell}{pad}");
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    let header_cells = header.map(String::from);
    push_row(&header_cells, None);
    for (row, s) in rows.iter().zip(&status.services) {
        push_row(row, Some(s.state));
    }
    if let Some(r) = &status.agent.last_reload {
        let _ = writeln!(
            out,
            "last reload: {} {}s ago: {}",
            if r.ok {
                "ok"
            } else {
                "FAILED (running config kept)"
            },
            now.saturating_sub(r.at),
            r.message
        );
    }
    out
}

/// `status SERVICE`: one field per line.
pub fn service_detail(s: &ServiceStatus, now: u64) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let fields: [(&str, String); 10] = [
        ("service", s.name.clone()),
        ("state", s.state.to_string()),
        ("pid", s.pid.map_or_else(|| "-".into(), |p| p.to_string())),
        ("uptime", uptime(s, now)),
        ("restarts", s.restarts.to_string()),
        ("last exit", describe_exit(s.last_exit.as_ref())),
        ("ready", yes_no(s.ready).into()),
        (
            "healthy",
            s.healthy
                .map_or_else(|| "no check".into(), |h| yes_no(h).into()),
        ),
        ("critical", yes_no(s.critical).into()),
        (
            "oom kills",
            s.oom_kills
                .map_or_else(|| "unknown".into(), |n| n.to_string()),
        ),
    ];
    let mut out = String::new();
    for (k, v) in fields {
        let _ = writeln!(out, "{:<10} {v}", format!("{k}:"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::wire::*;
    use super::*;

    fn svc(name: &str, state: ServiceState, pid: Option<u32>) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            state,
            pid,
            started_at: Some(1000),
            uptime_secs: None,
            restarts: 3,
            last_exit: Some(LastExit {
                code: None,
                signal: Some(9),
            }),
            ready: true,
            healthy: None,
            critical: true,
            required: true,
            oom_kills: None,
        }
    }

    #[test]
    fn table_is_aligned_and_plain_without_colour() {
        let status = Status {
            version: "v".into(),
            node: Node {
                hostname: "h".into(),
                fqdn: "h".into(),
                role: "r".into(),
            },
            resources: serde_json::Value::Null,
            sizing: serde_json::Value::Null,
            services: vec![
                svc("spark-master", ServiceState::Ready, Some(42)),
                svc("w", ServiceState::Failed, None),
            ],
            agent: Agent {
                pid: 1,
                rss_bytes: 0,
                zombies_reaped: 0,
                started_at: 0,
                oom_kills_total: Some(0),
                last_reload: None,
            },
        };
        let plain = table(&status, 1000 + 3723, false);
        assert_eq!(
            plain,
            "SERVICE       STATE   PID  UPTIME  RESTARTS  LAST EXIT\n\
             spark-master  ready   42   1h02m   3         signal 9 (KILL)\n\
             w             failed  -    -       3         signal 9 (KILL)\n"
        );
        let coloured = table(&status, 1000, true);
        assert!(coloured.contains("\x1b[32mready\x1b[0m"));
        assert!(coloured.contains("\x1b[31mfailed\x1b[0m"));
    }

    #[test]
    fn durations_and_encoding() {
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(303), "5m03s");
        assert_eq!(human_duration(90_000), "1d01h");
        assert_eq!(encode("my worker/x"), "my%20worker%2Fx");
        assert_eq!(describe_exit(None), "-");
    }

    #[test]
    fn chunked_answers_decode() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab\n\r\n2;x=y\r\nc\n\r\n0\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        let head = read_head(&mut r).unwrap();
        assert!(head.chunked);
        assert_eq!(head.status, 200);
        let mut got = Vec::new();
        read_chunks(&mut r, |c| {
            got.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, b"ab\nc\n");
    }
}
