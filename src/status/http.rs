//! HTTP/1.1 for the status socket: request parsing over `httparse` with hard limits, and response
//! writing. Pure (bytes in, values out), so it is unit-tested and fuzzed without sockets.

use std::fmt::Write as _;

use serde::Serialize;

use super::wire::{ApiError, ErrorBody, ErrorKind};

/// Hard bounds on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Request line plus headers, in bytes.
    pub max_head_bytes: usize,
    /// Number of header fields.
    pub max_headers: usize,
    /// Body bytes (`Content-Length`).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: 8 * 1024,
            max_headers: 32,
            max_body_bytes: 16 * 1024,
        }
    }
}

/// A parsed request. Only what the API uses is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ... as sent.
    pub method: String,
    /// The raw path (the router percent-decodes each segment).
    pub path: String,
    /// Query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// The client asked to close after this request (`Connection: close`, or HTTP/1.0 without keep-alive).
    pub close: bool,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be parsed; each becomes an error answer and the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Not HTTP/1.x, or a header or the request line is invalid.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The request line and headers exceed the limit.
    #[error("request head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// More header fields than allowed.
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    /// The body exceeds the limit.
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// `Transfer-Encoding` on a request (no endpoint takes a streamed body).
    #[error("transfer-encoding is not supported on requests")]
    TransferEncoding,
}

impl HttpError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeadTooLarge(_) | HttpError::TooManyHeaders(_) => 431,
            HttpError::BodyTooLarge(_) => 413,
            HttpError::TransferEncoding => 501,
        }
    }

    /// The error answer (always `Connection: close`).
    pub fn response(&self) -> Response {
        let kind = match self {
            HttpError::Malformed(_) | HttpError::TransferEncoding => ErrorKind::BadRequest,
            _ => ErrorKind::TooLarge,
        };
        let mut r = Response::error(&ApiError::new(kind, self.to_string()));
        r.status = self.status();
        r.close = true;
        r
    }
}

/// Result of feeding the bytes received so far to the parser.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request, and how many bytes of the buffer it used (pipelined bytes may follow).
    Complete(Request, usize),
    /// More bytes are needed.
    Partial,
}

/// Parses one request from the start of `buf`, enforcing `limits` even on partial input (so a
/// client cannot make the server buffer more than the limits by sending slowly).
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Parsed, HttpError> {
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let slots = storage
        .get_mut(..limits.max_headers.min(64))
        .unwrap_or_default();
    let mut req = httparse::Request::new(slots);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head_bytes {
                return Err(HttpError::HeadTooLarge(limits.max_head_bytes));
            }
            return Ok(Parsed::Partial);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders(limits.max_headers))
        }
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    if head_len > limits.max_head_bytes {
        return Err(HttpError::HeadTooLarge(limits.max_head_bytes));
    }
    let method = req.method.unwrap_or_default().to_string();
    let target = req.path.unwrap_or_default();
    let version = req.version.unwrap_or(1);

    let mut content_length: usize = 0;
    let mut seen_length = false;
    let mut close = version == 0;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value)
                .map_err(|_| HttpError::Malformed("content-length is not a number".into()))?;
            let n: usize = text
                .trim()
                .parse()
                .map_err(|_| HttpError::Malformed("content-length is not a number".into()))?;
            if seen_length && n != content_length {
                return Err(HttpError::Malformed("conflicting content-length".into()));
            }
            seen_length = true;
            content_length = n;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::TransferEncoding);
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            for token in v.split(',').map(str::trim) {
                match token {
                    "close" => close = true,
                    "keep-alive" => close = false,
                    _ => {}
                }
            }
        }
    }
    if content_length > limits.max_body_bytes {
        return Err(HttpError::BodyTooLarge(limits.max_body_bytes));
    }
    let total = head_len.saturating_add(content_length);
    let Some(body) = buf.get(head_len..total) else {
        return Ok(Parsed::Partial);
    };
    let (path, query) = split_target(target)?;
    Ok(Parsed::Complete(
        Request {
            method,
            path,
            query,
            close,
            body: body.to_vec(),
        },
        total,
    ))
}

/// Splits `/a/b?x=1&y=2` into the path and decoded query pairs. Absolute-form targets
/// (`http://host/a`) are accepted as curl and proxies send them.
fn split_target(target: &str) -> Result<(String, Vec<(String, String)>), HttpError> {
    let target = match target.find("://") {
        Some(i) => {
            let rest = target.get(i + 3..).unwrap_or("");
            rest.find('/').and_then(|j| rest.get(j..)).unwrap_or("/")
        }
        None => target,
    };
    if !target.starts_with('/') {
        return Err(HttpError::Malformed("request target must be a path".into()));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok((path.to_string(), pairs))
}

/// Decodes `%XX` escapes and `+` (as a space, form style) into UTF-8 text.
pub fn percent_decode(text: &str) -> Result<String, HttpError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| HttpError::Malformed("bad percent escape".into()))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| HttpError::Malformed("escape is not UTF-8".into()))
}

/// An answer with a complete body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra header fields.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Close the connection after this answer.
    pub close: bool,
}

/// `Content-Type` of JSON answers.
pub const JSON: &str = "application/json";
/// `Content-Type` of log answers: one JSON object per line.
pub const NDJSON: &str = "application/x-ndjson";
/// `Content-Type` of the Prometheus text exposition format.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Response {
    /// A JSON answer. Serialisation of the wire types cannot fail; if it ever did, a 500 says so.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(mut body) => {
                body.push(b'\n');
                Self::with_body(status, JSON, body)
            }
            Err(e) => Self::error(&ApiError::internal(format!("cannot encode answer: {e}"))),
        }
    }

    /// An error answer with the status of its kind.
    pub fn error(error: &ApiError) -> Self {
        let body = ErrorBody {
            error: error.clone(),
        };
        let mut body = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        body.push(b'\n');
        Self::with_body(error.kind.http_status(), JSON, body)
    }

    /// An answer with any body.
    pub fn with_body(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body,
            close: false,
        }
    }

    /// Appends the serialised answer to `out`; `close` adds `Connection: close`.
    pub fn write_to(&self, out: &mut Vec<u8>, close: bool) {
        let mut head = String::with_capacity(128);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if close || self.close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.body);
    }
}

/// The head of a streamed (chunked) answer; the stream ends with [`LAST_CHUNK`] or a close.
pub fn stream_head(status: u16, content_type: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        reason(status)
    )
    .into_bytes()
}

/// Appends one chunk of a chunked body.
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let _ = write!(VecWriter(out), "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The terminating chunk of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Request, usize) {
        match parse(buf, &Limits::default()) {
            Ok(Parsed::Complete(r, n)) => (r, n),
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    #[test]
    fn parses_get_with_query_and_keep_alive() {
        let buf =
            b"GET /v1/logs?service=spark%2Dworker&n=5&follow=true HTTP/1.1\r\nHost: x\r\n\r\nGET /";
        let (r, n) = complete(buf);
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/v1/logs");
        assert_eq!(r.param("service"), Some("spark-worker"));
        assert_eq!(r.param("n"), Some("5"));
        assert_eq!(r.param("follow"), Some("true"));
        assert!(!r.close);
        assert_eq!(
            n,
            buf.len() - 5,
            "pipelined bytes are left for the next request"
        );
    }

    #[test]
    fn parses_body_and_connection_close() {
        let buf = b"POST http://localhost/v1/services/a/signal HTTP/1.1\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"signal\":\"HUP\"}\n";
        let (r, n) = complete(buf);
        assert_eq!(r.path, "/v1/services/a/signal");
        assert_eq!(r.body, b"{\"signal\":\"HUP\"}\n");
        assert!(r.close);
        assert_eq!(n, buf.len());
    }

    #[test]
    fn http10_closes_by_default() {
        let (r, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert!(r.close);
    }

    #[test]
    fn partial_until_body_arrives() {
        let l = Limits::default();
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost", &l), Ok(Parsed::Partial));
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab", &l),
            Ok(Parsed::Partial)
        );
    }

    #[test]
    fn limits_are_enforced_even_on_partial_input() {
        let l = Limits {
            max_head_bytes: 64,
            max_headers: 4,
            max_body_bytes: 8,
        };
        let long = [b'a'; 100];
        let mut buf = b"GET /".to_vec();
        buf.extend_from_slice(&long);
        assert_eq!(parse(&buf, &l), Err(HttpError::HeadTooLarge(64)));
        let many = b"GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n";
        assert_eq!(parse(many, &l), Err(HttpError::TooManyHeaders(4)));
        let big = b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(parse(big, &l), Err(HttpError::BodyTooLarge(8)));
    }

    #[test]
    fn garbage_is_malformed() {
        let l = Limits::default();
        for g in [
            &b"\x00\x01\x02\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET /?a=%ff HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            let r = parse(g, &l);
            assert!(
                matches!(r, Err(HttpError::Malformed(_))),
                "{:?} -> {r:?}",
                String::from_utf8_lossy(g)
            );
        }
        let te = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse(te, &l), Err(HttpError::TransferEncoding));
    }

    #[test]
    fn writes_responses_and_chunks() {
        let mut out = Vec::new();
        Response::with_body(200, JSON, b"{}".to_vec()).write_to(&mut out, true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
        let mut out = Vec::new();
        write_chunk(&mut out, &[b'x'; 26]);
        write_chunk(&mut out, b"");
        assert!(out.starts_with(b"1a\r\nxxxx"));
        assert!(out.ends_with(b"x\r\n"));
        let e = Response::error(&ApiError::unknown_service("nope"));
        assert_eq!(e.status, 404);
        let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(v["error"]["kind"], "not_found");
    }
}
