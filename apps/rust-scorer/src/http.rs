//! A minimal HTTP/1.1 client, just enough for the Lambda Runtime API: plain HTTP to a local
//! `host:port`, one request per connection (`Connection: close`), response bodies framed by
//! `Content-Length`, by the chunked transfer coding, or by the end of the connection.
//!
//! Hand-written instead of an HTTP crate so that the dependency graph stays at serde + serde_json
//! (see README.md, "Dependencies"). Every read is bounded (line length, header count, body size).

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest status line, header line or chunk-size line accepted.
const MAX_LINE: u64 = 16 * 1024;
/// Most header lines accepted in one response.
const MAX_HEADERS: usize = 200;

#[derive(Debug)]
pub enum Error {
    /// Connecting, writing or reading failed (includes timeouts).
    Io(io::Error),
    /// The request cannot be sent as given, or the response is not valid HTTP/1.x.
    Protocol(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Protocol(e) => write!(f, "HTTP protocol error: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

fn protocol<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error::Protocol(msg.into()))
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    /// The body, or its first `max_body` bytes when `body_too_large`.
    pub body: Vec<u8>,
    /// The body was longer than the caller's limit; it was not read to the end.
    pub body_too_large: bool,
}

impl Response {
    /// First value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Up to 200 bytes of the body as text, for error messages.
    pub fn body_snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(200).collect()
    }
}

/// One request.
pub struct Request<'a> {
    pub method: &'a str,
    /// Absolute path, e.g. `/2018-06-01/runtime/invocation/next`.
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    /// `None` waits forever (the Runtime API's `next` long-polls).
    pub read_timeout: Option<Duration>,
    pub max_body: usize,
}

pub struct Client {
    /// `host:port`
    authority: String,
    connect_timeout: Duration,
    write_timeout: Duration,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// One CRLF- (or LF-) terminated line without its terminator.
fn read_line(reader: &mut impl BufRead, what: &str) -> Result<String, Error> {
    let mut buf = Vec::new();
    (&mut *reader).take(MAX_LINE).read_until(b'\n', &mut buf)?;
    if buf.last() != Some(&b'\n') {
        return if buf.is_empty() {
            Err(Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("connection closed before the {what}"),
            )))
        } else {
            protocol(format!(
                "{what} is unterminated or longer than {MAX_LINE} bytes"
            ))
        };
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).or_else(|_| protocol(format!("{what} is not UTF-8")))
}

/// Reads up to `limit` bytes, then reports whether more followed.
fn read_limited(reader: &mut impl Read, limit: usize, body: &mut Vec<u8>) -> Result<bool, Error> {
    let room = limit.saturating_sub(body.len()) as u64;
    reader.take(room + 1).read_to_end(body)?;
    if body.len() > limit {
        body.truncate(limit);
        return Ok(true);
    }
    Ok(false)
}

fn read_chunked(
    reader: &mut impl BufRead,
    limit: usize,
    body: &mut Vec<u8>,
) -> Result<bool, Error> {
    loop {
        let line = read_line(reader, "chunk size line")?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .or_else(|_| protocol(format!("bad chunk size {size_text:?}")))?;
        if size == 0 {
            // trailer section, then the end of the message
            for _ in 0..=MAX_HEADERS {
                if read_line(reader, "chunked trailer")?.is_empty() {
                    return Ok(false);
                }
            }
            return protocol("too many trailer lines");
        }
        if body.len().saturating_add(size) > limit {
            // Keep the first `limit` bytes for diagnostics; the rest is not read.
            read_limited(&mut (&mut *reader).take(size as u64), limit, body)?;
            return Ok(true);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(body.get_mut(start..).unwrap_or_default())?;
        if !read_line(reader, "chunk terminator")?.is_empty() {
            return protocol("chunk data longer than its size");
        }
    }
}

impl Client {
    pub fn new(authority: &str, connect_timeout: Duration, write_timeout: Duration) -> Self {
        Client {
            authority: authority.to_string(),
            connect_timeout,
            write_timeout,
        }
    }

    fn connect(&self) -> Result<TcpStream, Error> {
        let mut last = None;
        for addr in self.authority.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::Io(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} resolves to no address", self.authority),
            )
        })))
    }

    fn head(&self, req: &Request<'_>) -> Result<String, Error> {
        if !is_token(req.method) {
            return protocol(format!("bad method {:?}", req.method));
        }
        if !req.path.starts_with('/') || !req.path.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
            return protocol(format!("bad request path {:?}", req.path));
        }
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rust-scorer/{}\r\nConnection: close\r\n",
            req.method,
            req.path,
            self.authority,
            env!("CARGO_PKG_VERSION")
        );
        for (name, value) in req.headers {
            if !is_token(name) || !is_field_value(value) {
                return protocol(format!("bad header {name:?}: {value:?}"));
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if req.method != "GET" || !req.body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
        }
        head.push_str("\r\n");
        Ok(head)
    }

    /// Sends `req` on a new connection and reads the whole response (body bounded by `max_body`).
    pub fn send(&self, req: &Request<'_>) -> Result<Response, Error> {
        let head = self.head(req)?;
        let mut stream = self.connect()?;
        stream.set_write_timeout(Some(self.write_timeout))?;
        stream.set_read_timeout(req.read_timeout)?;
        stream.write_all(head.as_bytes())?;
        stream.write_all(req.body)?;
        stream.flush()?;

        let mut reader = BufReader::new(stream);
        // Skip interim 1xx responses (e.g. 100 Continue).
        let (status, headers) = loop {
            let status_line = read_line(&mut reader, "status line")?;
            let mut parts = status_line.splitn(3, ' ');
            let version = parts.next().unwrap_or("");
            let code = parts.next().unwrap_or("");
            if !version.starts_with("HTTP/1.") || code.len() != 3 {
                return protocol(format!("bad status line {status_line:?}"));
            }
            let status: u16 = code
                .parse()
                .or_else(|_| protocol(format!("bad status line {status_line:?}")))?;
            let mut headers = Vec::new();
            loop {
                let line = read_line(&mut reader, "header line")?;
                if line.is_empty() {
                    break;
                }
                if headers.len() >= MAX_HEADERS {
                    return protocol("too many header lines");
                }
                let (name, value) = match line.split_once(':') {
                    Some((n, v)) if is_token(n) => (n.to_string(), v.trim().to_string()),
                    _ => return protocol(format!("bad header line {line:?}")),
                };
                headers.push((name, value));
            }
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            break (status, headers);
        };

        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            body_too_large: false,
        };
        if req.method == "HEAD" || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response.header("Transfer-Encoding").map(|te| {
            te.rsplit(',')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("chunked")
        });
        let lengths: Vec<&str> = response
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .collect();
        let mut body = Vec::new();
        let too_large = match chunked {
            Some(true) => read_chunked(&mut reader, req.max_body, &mut body)?,
            // another transfer coding: the body ends with the connection
            Some(false) => read_limited(&mut reader, req.max_body, &mut body)?,
            None => match lengths.first() {
                None => read_limited(&mut reader, req.max_body, &mut body)?,
                Some(first) => {
                    if lengths.iter().any(|l| l != first) {
                        return protocol("conflicting Content-Length headers");
                    }
                    let length: u64 = first
                        .parse()
                        .or_else(|_| protocol(format!("bad Content-Length {first:?}")))?;
                    let mut limited = (&mut reader).take(length);
                    let too_large = read_limited(&mut limited, req.max_body, &mut body)?;
                    if !too_large && (body.len() as u64) < length {
                        return Err(Error::Io(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("body ended after {} of {length} bytes", body.len()),
                        )));
                    }
                    too_large
                }
            },
        };
        response.body = body;
        response.body_too_large = too_large;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// Serves one connection with `raw` as the response; returns the client's address and the
    /// request bytes the server saw (joined from the server thread).
    fn serve_once(raw: &'static [u8]) -> (String, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = Vec::new();
            let mut content_length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    content_length = v.trim().parse().unwrap();
                }
                request.extend_from_slice(line.as_bytes());
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body).unwrap();
            request.extend_from_slice(&body);
            stream.write_all(raw).unwrap();
            request
        });
        (addr, handle)
    }

    fn get(addr: &str, max_body: usize) -> Result<Response, Error> {
        Client::new(addr, Duration::from_secs(5), Duration::from_secs(5)).send(&Request {
            method: "GET",
            path: "/x",
            headers: &[],
            body: b"",
            read_timeout: Some(Duration::from_secs(5)),
            max_body,
        })
    }

    #[test]
    fn content_length_body_and_headers() {
        let (addr, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nX-Id: abc\r\ncontent-length: 5\r\n\r\nhello");
        let r = get(&addr, 100).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-id"), Some("abc"));
        assert_eq!(r.body, b"hello");
        assert!(!r.body_too_large);
        let request = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(request.starts_with("GET /x HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("\r\nConnection: close\r\n"));
        assert!(!request.contains("Content-Length"));
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let (addr, _server) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
        );
        let r = get(&addr, 100).unwrap();
        assert_eq!(r.body, b"hello 0123456789");
    }

    #[test]
    fn body_until_close_and_interim_100() {
        let (addr, _server) = serve_once(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 202 Accepted\r\n\r\n{\"status\":\"OK\"}",
        );
        let r = get(&addr, 100).unwrap();
        assert_eq!(r.status, 202);
        assert_eq!(r.body, b"{\"status\":\"OK\"}");
    }

    #[test]
    fn oversized_bodies_are_flagged_not_buffered() {
        let (addr, _s) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
        let r = get(&addr, 4).unwrap();
        assert!(r.body_too_large);
        assert_eq!(r.body, b"0123");
        let (addr, _s) =
            serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n");
        let r = get(&addr, 4).unwrap();
        assert!(r.body_too_large);
        let (addr, _s) = serve_once(b"HTTP/1.1 200 OK\r\n\r\n0123456789");
        assert!(get(&addr, 9).unwrap().body_too_large);
        let (addr, _s) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
        assert!(!get(&addr, 10).unwrap().body_too_large);
    }

    #[test]
    fn malformed_responses_are_errors() {
        for raw in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"",
        ] {
            let (addr, _s) = serve_once(raw);
            assert!(
                get(&addr, 100).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn post_sends_headers_and_body() {
        let (addr, server) = serve_once(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        let r = Client::new(&addr, Duration::from_secs(5), Duration::from_secs(5))
            .send(&Request {
                method: "POST",
                path: "/2018-06-01/runtime/invocation/abc/error",
                headers: &[("Lambda-Runtime-Function-Error-Type", "InvalidInput")],
                body: b"{\"a\":1}",
                read_timeout: Some(Duration::from_secs(5)),
                max_body: 100,
            })
            .unwrap();
        assert_eq!(r.status, 202);
        let request = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(request.starts_with("POST /2018-06-01/runtime/invocation/abc/error HTTP/1.1\r\n"));
        assert!(request.contains("\r\nLambda-Runtime-Function-Error-Type: InvalidInput\r\n"));
        assert!(request.contains("\r\nContent-Length: 7\r\n"));
        assert!(request.ends_with("\r\n\r\n{\"a\":1}"));
    }

    #[test]
    fn refuses_to_send_injected_headers_or_paths() {
        // Nothing listens on port 9; validation happens before connecting.
        let c = Client::new(
            "127.0.0.1:9",
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        for (path, headers) in [
            ("/ok", vec![("X", "a\r\nInjected: 1")]),
            ("/a b", vec![]),
            ("no-slash", vec![]),
            ("/ok", vec![("Bad Name", "v")]),
        ] {
            let r = c.send(&Request {
                method: "POST",
                path,
                headers: &headers,
                body: b"",
                read_timeout: None,
                max_body: 0,
            });
            assert!(matches!(r, Err(Error::Protocol(_))), "{path} {headers:?}");
        }
    }

    #[test]
    fn connection_refused_is_an_io_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(matches!(
            get(&format!("127.0.0.1:{port}"), 10),
            Err(Error::Io(_))
        ));
    }
}
