//! Client of the AWS Lambda Runtime API, version 2018-06-01
//! (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), on the `ureq` HTTP/1.1 client:
//! bodies framed by `Content-Length` or by the chunked transfer coding (what AWS's runtime interface
//! emulator sends above 2 KiB), connections kept alive between requests, every event read up to
//! Lambda's 6 MiB payload limit and no further.
//!
//! One source for every Rust Lambda of the workspace: apps/rust-scorer/src/runtime.rs is the original,
//! the rust-lambda generator ships a byte-equal copy (a test in the generator checks it). Nothing in
//! here may know what the function does.

use std::fmt;
use std::io::Read;
use std::time::Duration;

const API_VERSION: &str = "2018-06-01";
const REQUEST_ID_HEADER: &str = "Lambda-Runtime-Aws-Request-Id";
const TRACE_ID_HEADER: &str = "Lambda-Runtime-Trace-Id";
const TRACE_ID_ENV: &str = "_X_AMZN_TRACE_ID";
const ERROR_TYPE_HEADER: &str = "Lambda-Runtime-Function-Error-Type";
/// Lambda's synchronous invocation payload limit (6 MiB); a larger event is refused, not buffered.
pub const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;
/// Most of a reply to a POST that is kept (for error messages).
const MAX_REPLY_BYTES: u64 = 64 * 1024;
/// Bound for each POST. `next` has no read timeout: it long-polls until an invocation arrives.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One invocation handed out by `GET /runtime/invocation/next`.
#[derive(Debug)]
pub struct Invocation {
    pub request_id: String,
    /// The event, at most [`MAX_EVENT_BYTES`] bytes.
    pub payload: Vec<u8>,
}

/// Why `next` produced no invocation.
#[derive(Debug)]
pub enum NextError {
    /// The Runtime API cannot be reached or answered badly: the runtime must exit.
    Fatal(String),
    /// One invocation could not be read (too large, cut short), but it has a request id, so it can
    /// be answered with an error and the runtime goes on.
    Payload { request_id: String, message: String },
}

impl fmt::Display for NextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextError::Fatal(message) => write!(f, "{message}"),
            NextError::Payload {
                request_id,
                message,
            } => write!(f, "request {request_id}: {message}"),
        }
    }
}

/// The Runtime API at `host:port` (the value of `AWS_LAMBDA_RUNTIME_API`).
pub struct RuntimeApi {
    agent: ureq::Agent,
    base: String,
}

impl RuntimeApi {
    pub fn new(host_port: &str) -> Self {
        RuntimeApi {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(CONNECT_TIMEOUT)
                .timeout_write(WRITE_TIMEOUT)
                .build(),
            base: format!("http://{host_port}/{API_VERSION}/runtime"),
        }
    }

    /// `GET /runtime/invocation/next`: waits (long poll) for the next invocation.
    pub fn next(&self) -> Result<Invocation, NextError> {
        let url = format!("{}/invocation/next", self.base);
        let response = match self.agent.get(&url).call() {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                return Err(NextError::Fatal(format!(
                    "GET {url}: HTTP {status}: {}",
                    snippet(response)
                )))
            }
            Err(e) => return Err(NextError::Fatal(format!("GET {url}: {e}"))),
        };
        let request_id = match response.header(REQUEST_ID_HEADER) {
            Some(id) if is_valid_request_id(id) => id.to_string(),
            Some(id) => {
                return Err(NextError::Fatal(format!(
                    "GET {url}: unusable {REQUEST_ID_HEADER} header {id:?}"
                )))
            }
            None => {
                return Err(NextError::Fatal(format!(
                    "GET {url}: response has no {REQUEST_ID_HEADER} header"
                )))
            }
        };
        // What a custom runtime does with the X-Ray header (AWS: "Propagate the tracing header").
        match response.header(TRACE_ID_HEADER) {
            Some(trace_id) => std::env::set_var(TRACE_ID_ENV, trace_id),
            None => std::env::remove_var(TRACE_ID_ENV),
        }
        let mut payload = Vec::new();
        let read = response
            .into_reader()
            .take(MAX_EVENT_BYTES as u64 + 1)
            .read_to_end(&mut payload);
        let failed = |message: String| NextError::Payload {
            request_id: request_id.clone(),
            message,
        };
        if let Err(e) = read {
            return Err(failed(format!("reading the event failed: {e}")));
        }
        if payload.len() > MAX_EVENT_BYTES {
            return Err(failed(format!(
                "event is larger than {MAX_EVENT_BYTES} bytes"
            )));
        }
        Ok(Invocation {
            request_id,
            payload,
        })
    }

    /// `POST /runtime/invocation/{id}/response` with the function's result.
    pub fn respond(&self, request_id: &str, body: &[u8]) -> Result<(), String> {
        self.post(&format!("invocation/{request_id}/response"), None, body)
    }

    /// `POST /runtime/invocation/{id}/error`: `{"errorMessage", "errorType"}` plus the
    /// `Lambda-Runtime-Function-Error-Type` header.
    pub fn fail(&self, request_id: &str, error_type: &str, message: &str) -> Result<(), String> {
        self.post(
            &format!("invocation/{request_id}/error"),
            Some(error_type),
            error_body(error_type, message).as_bytes(),
        )
    }

    /// `POST /runtime/init/error`: the function could not start.
    // Not every function has an init phase that can fail (the generated handler has none).
    #[allow(dead_code)]
    pub fn init_error(&self, error_type: &str, message: &str) -> Result<(), String> {
        self.post(
            "init/error",
            Some(error_type),
            error_body(error_type, message).as_bytes(),
        )
    }

    fn post(&self, path: &str, error_type: Option<&str>, body: &[u8]) -> Result<(), String> {
        let url = format!("{}/{path}", self.base);
        let mut request = self
            .agent
            .post(&url)
            .timeout(POST_TIMEOUT)
            .set("Content-Type", "application/json");
        if let Some(error_type) = error_type {
            request = request.set(ERROR_TYPE_HEADER, error_type);
        }
        match request.send_bytes(body) {
            Ok(response) => {
                // Read the reply to its end so that the connection goes back to the pool.
                let mut sink = Vec::new();
                let _ = response
                    .into_reader()
                    .take(MAX_REPLY_BYTES)
                    .read_to_end(&mut sink);
                Ok(())
            }
            Err(ureq::Error::Status(status, response)) => {
                Err(format!("POST {url}: HTTP {status}: {}", snippet(response)))
            }
            Err(e) => Err(format!("POST {url}: {e}")),
        }
    }
}

/// Up to 200 characters of a reply, for error messages.
fn snippet(response: ureq::Response) -> String {
    let mut body = Vec::new();
    let _ = response
        .into_reader()
        .take(MAX_REPLY_BYTES)
        .read_to_end(&mut body);
    String::from_utf8_lossy(&body).chars().take(200).collect()
}

/// Request ids are UUIDs; anything that could leave the URL path is refused.
fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn error_body(error_type: &str, message: &str) -> String {
    serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string()
}

#[cfg(test)]
#[path = "../tests/fake_http/mod.rs"]
mod fake_http;

/// A fake Runtime API on 127.0.0.1 (std's `TcpListener`, no dev-dependencies) that frames bodies the
/// way real servers do: chunked (odd chunk sizes, a chunk extension), by Content-Length, over one
/// kept-alive connection; every wait is bounded.
#[cfg(test)]
mod tests {
    use super::fake_http::Request;
    use super::*;
    use std::io::{BufReader, ErrorKind, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread;
    use std::time::Instant;

    const STEP: Duration = Duration::from_secs(30);

    struct Conn {
        reader: BufReader<TcpStream>,
        stream: TcpStream,
    }

    fn accept(listener: &TcpListener) -> Conn {
        let deadline = Instant::now() + STEP;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_read_timeout(Some(STEP)).unwrap();
                    let reader = BufReader::new(stream.try_clone().unwrap());
                    return Conn { reader, stream };
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no connection from the client");
                    thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    impl Conn {
        fn recv(&mut self) -> Request {
            Request::read(&mut self.reader)
        }

        /// Chunked when `chunk` is `Some(size)`: chunks of `size`, `size + 1`, `size + 2`, ... bytes.
        fn send(
            &mut self,
            status: &str,
            headers: &[(&str, &str)],
            body: &[u8],
            chunk: Option<usize>,
        ) {
            let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
            for (n, v) in headers {
                out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            match chunk {
                Some(mut size) => {
                    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    let mut rest = body;
                    while !rest.is_empty() {
                        let (c, r) = rest.split_at(size.min(rest.len()));
                        out.extend_from_slice(format!("{:x};ext=1\r\n", c.len()).as_bytes());
                        out.extend_from_slice(c);
                        out.extend_from_slice(b"\r\n");
                        rest = r;
                        size += 1;
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                }
                None => {
                    out.extend_from_slice(
                        format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                    );
                    out.extend_from_slice(body);
                }
            }
            // A client that stops reading (an oversized event) closes the connection under the write.
            let _ = self
                .stream
                .write_all(&out)
                .and_then(|()| self.stream.flush());
        }

        fn invoke(&mut self, request_id: &str, event: &[u8], chunk: Option<usize>) {
            let req = self.recv();
            assert_eq!(
                (req.method.as_str(), req.path.as_str()),
                ("GET", "/2018-06-01/runtime/invocation/next")
            );
            self.send(
                "200 OK",
                &[
                    ("Content-Type", "application/json"),
                    (REQUEST_ID_HEADER, request_id),
                    ("Lambda-Runtime-Deadline-Ms", "4102444800000"),
                    (TRACE_ID_HEADER, "Root=1-00000000-000000000000000000000000"),
                ],
                event,
                chunk,
            );
        }

        fn accept_post(&mut self) -> Request {
            let req = self.recv();
            assert_eq!(req.method, "POST");
            self.send("202 Accepted", &[], br#"{"status":"OK"}"#, Some(4));
            req
        }
    }

    fn listen() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        (listener, address)
    }

    /// An event of exactly `size` bytes of valid JSON.
    fn event(size: usize) -> Vec<u8> {
        let mut e = br#"{"pad":""#.to_vec();
        e.resize(size - 2, b'x');
        e.extend_from_slice(br#""}"#);
        e
    }

    #[test]
    fn reads_chunked_and_6_mib_events_over_one_kept_alive_connection() {
        let (listener, address) = listen();
        let small = event(3 * 1024);
        let large = event(MAX_EVENT_BYTES);
        let (s, l) = (small.clone(), large.clone());
        let server = thread::spawn(move || {
            let mut conn = accept(&listener);
            conn.invoke("req-1", &s, Some(7));
            let r1 = conn.accept_post();
            conn.invoke("req-2", &l, Some(64 * 1024 - 1));
            let r2 = conn.accept_post();
            conn.invoke("req-3", &s, None);
            let r3 = conn.accept_post();
            // Everything above went over the first connection: no second one was opened.
            assert!(matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock));
            (r1, r2, r3)
        });
        let api = RuntimeApi::new(&address);
        let i1 = api.next().unwrap();
        assert_eq!(i1.request_id, "req-1");
        assert_eq!(i1.payload, small);
        assert_eq!(
            std::env::var(TRACE_ID_ENV).as_deref(),
            Ok("Root=1-00000000-000000000000000000000000")
        );
        api.respond("req-1", b"{\"ok\":1}").unwrap();
        let i2 = api.next().unwrap();
        assert_eq!(i2.request_id, "req-2");
        assert_eq!(i2.payload.len(), MAX_EVENT_BYTES);
        assert!(i2.payload == large);
        api.respond("req-2", b"{\"ok\":2}").unwrap();
        let i3 = api.next().unwrap();
        assert_eq!(i3.payload, small);
        api.fail("req-3", "InvalidInput", "bad \"input\"").unwrap();

        let (r1, r2, r3) = server.join().unwrap();
        assert_eq!(r1.path, "/2018-06-01/runtime/invocation/req-1/response");
        assert_eq!(r1.body, b"{\"ok\":1}");
        assert_eq!(r2.path, "/2018-06-01/runtime/invocation/req-2/response");
        assert_eq!(r3.path, "/2018-06-01/runtime/invocation/req-3/error");
        assert_eq!(r3.header(ERROR_TYPE_HEADER), Some("InvalidInput"));
        let err: serde_json::Value = serde_json::from_slice(&r3.body).unwrap();
        assert_eq!(
            err,
            serde_json::json!({ "errorType": "InvalidInput", "errorMessage": "bad \"input\"" })
        );
    }

    #[test]
    fn refuses_oversized_and_cut_short_events_by_request_id_and_fails_on_api_errors() {
        let (listener, address) = listen();
        let server = thread::spawn(move || {
            let mut conn = accept(&listener);
            conn.invoke("too-big", &event(MAX_EVENT_BYTES + 1), Some(1 << 20));
            // The client stops reading at the limit and drops that connection.
            let mut conn = accept(&listener);
            let req = conn.recv();
            assert_eq!(req.method, "GET");
            conn.stream
                .write_all(format!("HTTP/1.1 200 OK\r\n{REQUEST_ID_HEADER}: cut\r\nContent-Length: 100\r\n\r\n{{\"a\":").as_bytes())
                .unwrap();
            drop(conn);
            let mut conn = accept(&listener);
            conn.recv();
            conn.send("500 Internal Server Error", &[], b"going away", None);
            // The error reply was read to its end: the same connection serves the next request.
            conn.recv();
            conn.send(
                "200 OK",
                &[(REQUEST_ID_HEADER, "../init/error")],
                b"{}",
                None,
            );
        });
        let api = RuntimeApi::new(&address);
        match api.next() {
            Err(NextError::Payload {
                request_id,
                message,
            }) => {
                assert_eq!(request_id, "too-big");
                assert!(message.contains("larger than 6291456 bytes"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match api.next() {
            Err(NextError::Payload { request_id, .. }) => assert_eq!(request_id, "cut"),
            other => panic!("{other:?}"),
        }
        match api.next() {
            Err(NextError::Fatal(message)) => {
                assert!(message.contains("HTTP 500: going away"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        match api.next() {
            Err(NextError::Fatal(message)) => assert!(message.contains("unusable"), "{message}"),
            other => panic!("{other:?}"),
        }
        server.join().unwrap();
    }

    #[test]
    fn refuses_request_ids_that_leave_the_path() {
        assert!(is_valid_request_id("8476a536-e9f4-11e8-9739-2dfe598c3fcd"));
        assert!(!is_valid_request_id("../init/error"));
        assert!(!is_valid_request_id(".."));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id(&"a".repeat(129)));
    }
}
