//! Network probe attempts: `tcp` (connect) and `http` (a minimal HTTP/1.0 GET over `TcpStream`, 2xx,
//! and optionally top-level JSON fields equal to given strings, e.g. the Spark master's
//! `/json/` with `status: ALIVE`). One attempt is bounded by the probe's `timeout` as a whole.
//! Exec probes are processes and are run by the supervisor.
//!
//! `https://` URLs, and a redirect from `http://` to `https://` on the same host (what a Spark UI's
//! plain port answers when Spark's SSL is on), are spoken with the TLS identity of [`crate::tls`].

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::role::OneOf;

mod target;
pub use target::{Check, HttpUrl, ProbePlan, TcpAddr};

/// Largest response read from an HTTP probe.
pub const MAX_RESPONSE: usize = 1024 * 1024;

/// Why a probe attempt failed (for debug logs).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// The address or URL cannot be used.
    #[error("bad probe target {0:?}")]
    BadTarget(String),
    /// Could not connect.
    #[error("cannot connect to {0}")]
    Connect(String),
    /// The attempt took longer than its timeout.
    #[error("timed out")]
    Timeout,
    /// Read or write failed.
    #[error("i/o: {0}")]
    Io(String),
    /// Not a 2xx answer.
    #[error("status {0}")]
    Status(u16),
    /// The body is not the expected JSON.
    #[error("{0}")]
    Body(String),
}

/// Runs one attempt of a tcp or http probe (its target was parsed with its plan).
pub fn attempt(probe: &ProbePlan) -> Result<(), ProbeError> {
    attempt_within(&probe.check, probe.timeout)
}

/// Runs one attempt of a tcp or http check, bounded by `timeout` as a whole.
pub fn attempt_within(check: &Check, timeout: Duration) -> Result<(), ProbeError> {
    let deadline = Instant::now() + timeout;
    match check {
        Check::Http { url, json } => http(url, json.as_ref(), deadline),
        Check::Tcp(addr) => connect(&addr.addr, deadline).map(drop),
        Check::Exec(_) => Err(ProbeError::BadTarget("an exec probe is a process".into())),
    }
}

fn remaining(deadline: Instant) -> Result<Duration, ProbeError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(ProbeError::Timeout)
    } else {
        Ok(left)
    }
}

fn connect(addr: &str, deadline: Instant) -> Result<TcpStream, ProbeError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        // Its shape was checked with the plan: a name that does not resolve (yet) fails the attempt.
        .map_err(|_| ProbeError::Connect(format!("{addr} (does not resolve)")))?
        .collect();
    for a in &addrs {
        if let Ok(s) = TcpStream::connect_timeout(a, remaining(deadline)?) {
            return Ok(s);
        }
    }
    Err(ProbeError::Connect(addr.to_string()))
}

/// `http://host[:port][/path]` or `https://...` → (`host:port`, host header, path); the port
/// defaults to 80 or 443.
pub fn parse_url(url: &str) -> Option<(String, String, String)> {
    let (rest, default_port) = match url.strip_prefix("https://") {
        Some(rest) => (rest, 443),
        None => (url.strip_prefix("http://")?, 80),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority.get(i..)?.contains(']'),
        None => false,
    };
    let addr = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    Some((addr, authority.to_string(), path.to_string()))
}

fn http(
    url: &HttpUrl,
    json: Option<&BTreeMap<String, OneOf>>,
    deadline: Instant,
) -> Result<(), ProbeError> {
    let response = get(url, deadline)?;
    // Spark's UI with SSL on: the plain port redirects every request to its HTTPS port (the
    // one URL parsed per attempt: the server names it).
    if let Some(location) = https_redirect(&url.text, &response) {
        let location = HttpUrl::parse(&location).map_err(ProbeError::BadTarget)?;
        return check_response(&get(&location, deadline)?, json);
    }
    check_response(&response, json)
}

/// The `Location` of a 3xx answer when it moves `url` to `https://` on the same host.
fn https_redirect(url: &str, response: &[u8]) -> Option<String> {
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(response.get(..head_end)?);
    let mut lines = head.split("\r\n");
    let code: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    if !(300..400).contains(&code) || !url.starts_with("http://") {
        return None;
    }
    let location = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("location")
            .then(|| value.trim().to_string())
    })?;
    let host = |u: &str| {
        let (_, authority, _) = parse_url(u)?;
        // Without the port: the HTTPS port differs from the plain one.
        Some(match authority.rfind(':') {
            Some(i) if !authority.get(i..)?.contains(']') => authority.get(..i)?.to_string(),
            _ => authority,
        })
    };
    (location.starts_with("https://") && host(&location)? == host(url)?).then_some(location)
}

/// One GET of `url` (plain or TLS): the whole response.
fn get(url: &HttpUrl, deadline: Instant) -> Result<Vec<u8>, ProbeError> {
    let HttpUrl {
        addr, host, path, ..
    } = url;
    let stream = connect(addr, deadline)?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: sparkvisor-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if !url.tls {
        return exchange(stream, &request, deadline, |s| s);
    }
    let config = crate::tls::client().map_err(|e| ProbeError::Io(format!("https: {e}")))?;
    let name = host_name(host).ok_or_else(|| ProbeError::BadTarget(url.text.clone()))?;
    let conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| ProbeError::Io(format!("TLS: {e}")))?;
    exchange(
        rustls::StreamOwned::new(conn, stream),
        &request,
        deadline,
        |s| &mut s.sock,
    )
}

/// The TLS server name of a host header (`h`, `h:p`, `[::1]:p`).
fn host_name(authority: &str) -> Option<rustls::pki_types::ServerName<'static>> {
    let host = match authority.rfind(':') {
        Some(i) if !authority.get(i..)?.contains(']') => authority.get(..i)?,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    rustls::pki_types::ServerName::try_from(host.to_string()).ok()
}

/// Writes `request` and reads the answer to its end (or [`MAX_RESPONSE`]) within `deadline`;
/// `tcp` reaches the socket under `stream` to set its timeouts.
fn exchange<S: Read + Write>(
    mut stream: S,
    request: &str,
    deadline: Instant,
    tcp: impl Fn(&mut S) -> &mut TcpStream,
) -> Result<Vec<u8>, ProbeError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ProbeError::Timeout,
        _ => ProbeError::Io(e.to_string()),
    };
    tcp(&mut stream)
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(io)?;
    tcp(&mut stream)
        .set_read_timeout(Some(remaining(deadline)?))
        .map_err(io)?;
    stream.write_all(request.as_bytes()).map_err(io)?;
    stream.flush().map_err(io)?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        tcp(&mut stream)
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(io)?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if response.len() > MAX_RESPONSE {
                    return Err(ProbeError::Body("response too large".into()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A TLS server that closes without close_notify (Jetty after `Connection: close`):
            // the response is complete when it has a head.
            Err(e)
                if e.kind() == std::io::ErrorKind::UnexpectedEof
                    && response.windows(4).any(|w| w == b"\r\n\r\n") =>
            {
                break
            }
            Err(e) => return Err(io(e)),
        }
    }
    Ok(response)
}

/// Checks a whole HTTP response: a 2xx status and, with `json`, the fields of the body.
pub fn check_response(
    response: &[u8],
    json: Option<&BTreeMap<String, OneOf>>,
) -> Result<(), ProbeError> {
    let status_line_end = response
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| ProbeError::Io("no status line".into()))?;
    let status_line = String::from_utf8_lossy(response.get(..status_line_end).unwrap_or_default());
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let code: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .filter(|_| version.starts_with("HTTP/"))
        .ok_or_else(|| ProbeError::Io(format!("bad status line {status_line:?}")))?;
    if !(200..300).contains(&code) {
        return Err(ProbeError::Status(code));
    }
    let Some(expected) = json.filter(|j| !j.is_empty()) else {
        return Ok(());
    };
    let body_start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .ok_or_else(|| ProbeError::Body("no body".into()))?;
    let body: serde_json::Value =
        serde_json::from_slice(response.get(body_start..).unwrap_or_default())
            .map_err(|e| ProbeError::Body(format!("body is not JSON: {e}")))?;
    for (key, want) in expected {
        let matches = match body.get(key) {
            Some(serde_json::Value::String(s)) => want.accepts(s),
            // Numbers and booleans compare by their JSON text (`cores: 4`).
            Some(other) => serde_json::to_string(other).is_ok_and(|text| want.accepts(&text)),
            None => false,
        };
        if !matches {
            return Err(ProbeError::Body(format!("{key} is not {want}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::net::TcpListener;

    use super::*;

    fn probe(yaml: &str) -> ProbePlan {
        ProbePlan::new(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn urls_parse() {
        let table = [
            (
                "http://127.0.0.1:8080/json/",
                Some(("127.0.0.1:8080", "/json/")),
            ),
            ("http://localhost/", Some(("localhost:80", "/"))),
            ("http://h:1", Some(("h:1", "/"))),
            ("http://[::1]:81/x", Some(("[::1]:81", "/x"))),
            ("https://h/", Some(("h:443", "/"))),
            ("ftp://h/", None),
            ("http:///x", None),
        ];
        for (url, want) in table {
            let got = parse_url(url);
            assert_eq!(
                got.as_ref().map(|(a, _, p)| (a.as_str(), p.as_str())),
                want,
                "{url}"
            );
        }
    }

    #[test]
    fn responses_are_checked() {
        let alive: BTreeMap<String, OneOf> = [("status".into(), "ALIVE".into())].into();
        let either: BTreeMap<String, OneOf> = [(
            "status".into(),
            OneOf(vec!["ALIVE".into(), "STANDBY".into()]),
        )]
        .into();
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"status\":\"ALIVE\",\"cores\":4}";
        let standby = b"HTTP/1.1 200 OK\r\n\r\n{\"status\":\"STANDBY\"}";
        type Row<'a> = (&'a [u8], Option<&'a BTreeMap<String, OneOf>>, bool);
        let table: [Row; 10] = [
            (standby, Some(&either), true),
            (ok, Some(&either), true),
            (
                b"HTTP/1.1 200 OK\r\n\r\n{\"status\":\"RECOVERING\"}",
                Some(&either),
                false,
            ),
            (ok, None, true),
            (ok, Some(&alive), true),
            (standby, Some(&alive), false),
            (b"HTTP/1.0 503 Unavailable\r\n\r\n", None, false),
            (b"HTTP/1.0 204 No Content\r\n\r\n", None, true),
            (b"HTTP/1.1 200 OK\r\n\r\nnot json", Some(&alive), false),
            (b"garbage", None, false),
        ];
        for (i, (resp, json, want)) in table.into_iter().enumerate() {
            assert_eq!(check_response(resp, json).is_ok(), want, "row {i}");
        }
        let cores: BTreeMap<String, OneOf> = [("cores".into(), "4".into())].into();
        assert!(check_response(ok, Some(&cores)).is_ok());
    }

    #[test]
    fn tcp_and_http_against_a_real_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.0 200 OK\r\n\r\n{\"status\":\"ALIVE\"}")
                .unwrap();
            req
        });
        let p = probe(&format!(
            "http: http://{addr}/json/\njson: {{status: ALIVE}}"
        ));
        assert_eq!(attempt(&p), Ok(()));
        assert!(server
            .join()
            .unwrap()
            .starts_with("GET /json/ HTTP/1.0\r\n"));
        // Nobody listens any more.
        let mut p = probe(&format!("tcp: {addr}"));
        p.timeout = Duration::from_millis(200);
        assert!(attempt(&p).is_err());
    }

    #[test]
    fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut p = probe(&format!("http: http://{addr}/"));
        p.timeout = Duration::from_millis(100);
        let started = Instant::now();
        assert_eq!(attempt(&p), Err(ProbeError::Timeout));
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }
}
