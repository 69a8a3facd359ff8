//! Runs the real `bootstrap` binary against a fake Lambda Runtime API on 127.0.0.1:<free port>
//! (a std `TcpListener`; no dev-dependencies, see Cargo.toml). Every wait is bounded and the child is
//! killed on drop, so a failing assertion can neither hang nor leave the process behind.

// All of this file is test code: marked so for clippy.toml's allow-*-in-tests (cargo compiles it with
// cfg(test) in any case).
#![cfg(test)]

mod fake_http;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use fake_http::Request;

const STEP_TIMEOUT: Duration = Duration::from_secs(20);
const ADDRESS: &str = "0xAbCdEf0123456789abcdef0123456789ABCDEF01";

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl KillOnDrop {
    fn spawn(runtime_api: Option<String>, stderr: Stdio) -> KillOnDrop {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bootstrap"));
        match runtime_api {
            Some(api) => cmd.env("AWS_LAMBDA_RUNTIME_API", api),
            None => cmd.env_remove("AWS_LAMBDA_RUNTIME_API"),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        KillOnDrop(child)
    }

    fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "bootstrap did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A request from the binary and the connection to answer it on.
struct HttpRequest {
    request: Request,
    stream: TcpStream,
}

impl HttpRequest {
    fn json(&self) -> Value {
        let Request { path, body, .. } = &self.request;
        serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{path} body {:?}: {e}", String::from_utf8_lossy(body)))
    }

    /// Responds with `body`, framed by Content-Length or (when `chunked`) in 7-byte chunks.
    fn respond(mut self, status: &str, headers: &[(&str, &str)], body: &[u8], chunked: bool) {
        let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for (n, v) in headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        let mut bytes = Vec::new();
        if chunked {
            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
            bytes.extend_from_slice(out.as_bytes());
            for chunk in body.chunks(7) {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            bytes.extend_from_slice(out.as_bytes());
            bytes.extend_from_slice(body);
        }
        self.stream.write_all(&bytes).unwrap();
        self.stream.flush().unwrap();
    }
}

struct FakeRuntimeApi {
    listener: TcpListener,
}

impl FakeRuntimeApi {
    fn start() -> FakeRuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        FakeRuntimeApi { listener }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.listener.local_addr().unwrap().port())
    }

    /// Next request from the binary; fails the test after `STEP_TIMEOUT` or if the binary exits.
    fn recv(&self, child: &mut KillOnDrop, what: &str) -> HttpRequest {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if let Some(status) = child.0.try_wait().unwrap() {
                        panic!("bootstrap exited ({status}) while waiting for {what}");
                    }
                    assert!(Instant::now() < deadline, "timed out waiting for {what}");
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
        let request = Request::read(&mut BufReader::new(stream.try_clone().unwrap()));
        HttpRequest { request, stream }
    }

    /// Answers one `GET /invocation/next` with `event`.
    fn invoke(&self, child: &mut KillOnDrop, request_id: &str, event: &Value, chunked: bool) {
        let req = self.recv(child, "GET /invocation/next");
        assert_eq!(req.request.method, "GET");
        assert_eq!(req.request.path, "/2018-06-01/runtime/invocation/next");
        req.respond(
            "200 OK",
            &[
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", request_id),
                ("Lambda-Runtime-Deadline-Ms", "4102444800000"),
                (
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:rust-scorer",
                ),
                (
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-00000000-000000000000000000000000",
                ),
            ],
            event.to_string().as_bytes(),
            chunked,
        );
    }

    /// Receives the binary's POST with the result of one invocation and acknowledges it (202).
    fn result(&self, child: &mut KillOnDrop, request_id: &str) -> (String, Option<String>, Value) {
        let req = self.recv(child, &format!("the result POST of {request_id}"));
        assert_eq!(req.request.method, "POST");
        let path = req.request.path.clone();
        let error_type = req
            .request
            .header("Lambda-Runtime-Function-Error-Type")
            .map(str::to_string);
        let body = req.json();
        req.respond(
            "202 Accepted",
            &[("Content-Type", "application/json")],
            br#"{"status":"OK"}"#,
            false,
        );
        (path, error_type, body)
    }
}

#[test]
fn serves_a_valid_and_an_invalid_invocation() {
    let api = FakeRuntimeApi::start();
    let mut child = KillOnDrop::spawn(Some(api.address()), Stdio::inherit());

    // 1. valid event (sent chunked): two known providers (one duplicated), one unknown, one expired.
    let valid = json!({
        "address": ADDRESS,
        "stamps": [
            { "provider": "Google", "credential_id": "c1", "expires_at": "2999-01-01T00:00:00Z" },
            { "provider": "Github", "credential_id": "c2", "expires_at": "2998-06-01T00:00:00+02:00" },
            { "provider": "Github", "credential_id": "c3", "expires_at": "2997-01-01T00:00:00Z" },
            { "provider": "NotAProvider", "expires_at": "2999-01-01T00:00:00Z" },
            { "provider": "Ens", "expires_at": "2001-01-01T00:00:00Z" }
        ]
    });
    api.invoke(&mut child, "req-1", &valid, true);
    let (path, error_type, out) = api.result(&mut child, "req-1");
    assert_eq!(path, "/2018-06-01/runtime/invocation/req-1/response");
    assert_eq!(error_type, None);

    let weights = rust_scorer::Weights::embedded().unwrap();
    let google = weights.weights["Google"];
    let github = weights.weights["Github"];
    let expected_score = rust_scorer::round_score(github + google);
    assert_eq!(out["address"], ADDRESS.to_ascii_lowercase());
    assert_eq!(out["score"].as_f64().unwrap(), expected_score);
    assert_eq!(
        out["passing_score"],
        json!(expected_score >= weights.threshold)
    );
    assert_eq!(out["threshold"].as_f64().unwrap(), weights.threshold);
    assert_eq!(out["expiration"], "2998-05-31T22:00:00Z");
    assert_eq!(out["stamps"], json!({ "Github": github, "Google": google }));
    assert_eq!(out["weights_version"], weights.version.as_str());

    // 2. invalid event (Content-Length framed): bad address → /error, errorType InvalidInput.
    let invalid = json!({ "address": "0xnot-an-address", "stamps": [] });
    api.invoke(&mut child, "req-2", &invalid, false);
    let (path, error_type, err) = api.result(&mut child, "req-2");
    assert_eq!(path, "/2018-06-01/runtime/invocation/req-2/error");
    assert_eq!(error_type.as_deref(), Some("InvalidInput"));
    assert_eq!(err["errorType"], "InvalidInput");
    assert!(
        err["errorMessage"].as_str().unwrap().contains("address"),
        "{err}"
    );

    // 3. the runtime keeps polling after an error; when the Runtime API fails, it exits non-zero.
    let req = api.recv(&mut child, "the third GET /invocation/next");
    assert_eq!(req.request.path, "/2018-06-01/runtime/invocation/next");
    req.respond(
        "500 Internal Server Error",
        &[],
        b"{\"errorMessage\":\"going away\"}",
        false,
    );
    assert!(!child.wait_for_exit().success());
}

#[test]
fn exits_non_zero_without_runtime_api() {
    let mut child = KillOnDrop::spawn(None, Stdio::piped());
    assert!(!child.wait_for_exit().success());
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("AWS_LAMBDA_RUNTIME_API"), "{stderr}");
}

#[test]
fn exits_non_zero_when_runtime_api_is_unreachable() {
    // Bind a port, then free it: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = KillOnDrop::spawn(Some(format!("127.0.0.1:{port}")), Stdio::null());
    assert!(!child.wait_for_exit().success());
}
