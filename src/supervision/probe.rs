//! Network probe attempts: `tcp` (connect) and `http` (a minimal HTTP/1.0 GET over `TcpStream`, 2xx,
//! and optionally top-level JSON fields equal to given strings, e.g. the Spark master's
//! `/json/` with `status: ALIVE`). One attempt is bounded by the probe's `timeout` as a whole.
//! Exec probes are processes and are run by the supervisor.
//!
//! `https://` URLs, and a redirect from `http://` to `https://` on the same host (what a Spark UI's
//! plain port answers when Spark's SSL is on), are spoken with the TLS identity of [`crate::supervision::tls`].

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

/// Most header fields a probed server's answer may have.
const MAX_FIELDS: usize = 100;

/// What a probe reads of a response head (parsed by `httparse`).
struct Head {
    /// The status code.
    code: u16,
    /// Where the body starts; `None` when the head is incomplete.
    body: Option<usize>,
    /// The `Location` field of a complete head.
    location: Option<String>,
}

impl Head {
    /// The head of `response`; an error when it has no status line.
    fn parse(response: &[u8]) -> Result<Self, ProbeError> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut head = httparse::Response::new(&mut fields);
        let body = match head.parse(response) {
            Ok(httparse::Status::Complete(n)) => Some(n),
            Ok(httparse::Status::Partial) => None,
            Err(e) => return Err(ProbeError::Io(format!("bad response head: {e}"))),
        };
        // The status line is parsed before the fields, so an incomplete head may still have it.
        let code = head
            .code
            .ok_or_else(|| ProbeError::Io("no status line".into()))?;
        let location = body
            .and_then(|_| {
                head.headers
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case("location"))
            })
            .map(|f| String::from_utf8_lossy(f.value).trim().to_string());
        Ok(Self {
            code,
            body,
            location,
        })
    }
}

/// The `Location` of a 3xx answer when it moves `url` to `https://` on the same host.
fn https_redirect(url: &str, response: &[u8]) -> Option<String> {
    let head = Head::parse(response).ok()?;
    if !(300..400).contains(&head.code) || !url.starts_with("http://") {
        return None;
    }
    let location = head.location?;
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
    let config =
        crate::supervision::tls::client().map_err(|e| ProbeError::Io(format!("https: {e}")))?;
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
                    && Head::parse(&response).is_ok_and(|h| h.body.is_some()) =>
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
    let head = Head::parse(response)?;
    if !(200..300).contains(&head.code) {
        return Err(ProbeError::Status(head.code));
    }
    let Some(expected) = json.filter(|j| !j.is_empty()) else {
        return Ok(());
    };
    let body_start = head
        .body
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
        let table: [Row; 12] = [
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
            // A head cut short: its status line still counts, its body cannot.
            (b"HTTP/1.0 200 OK\r\nX-A: 1", None, true),
            (b"HTTP/1.0 200 OK\r\nX-A: 1", Some(&alive), false),
        ];
        for (i, (resp, json, want)) in table.into_iter().enumerate() {
            assert_eq!(check_response(resp, json).is_ok(), want, "row {i}");
        }
        let cores: BTreeMap<String, OneOf> = [("cores".into(), "4".into())].into();
        assert!(check_response(ok, Some(&cores)).is_ok());
    }

    #[test]
    fn only_a_redirect_to_https_on_the_same_host_is_followed() {
        let moved = |location: &str| {
            format!("HTTP/1.1 302 Found\r\nContent-Length: 0\r\nlocation:  {location} \r\n\r\n")
        };
        let url = "http://master:8080/json/";
        let table = [
            (
                moved("https://master:8480/json/"),
                Some("https://master:8480/json/"),
            ),
            (moved("https://other:8480/json/"), None),
            (moved("http://master:8081/json/"), None),
            (
                "HTTP/1.1 200 OK\r\nLocation: https://master:8480/\r\n\r\n".into(),
                None,
            ),
            // A head cut short names no location.
            (
                "HTTP/1.1 302 Found\r\nLocation: https://master:8480/".into(),
                None,
            ),
        ];
        for (response, want) in table {
            assert_eq!(
                https_redirect(url, response.as_bytes()).as_deref(),
                want,
                "{response:?}"
            );
        }
        assert_eq!(
            https_redirect(
                "https://master:8480/",
                moved("https://master:1/").as_bytes()
            ),
            None
        );
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
