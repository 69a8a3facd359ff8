//! Runs the real `bootstrap` binary against a fake Lambda Runtime API on 127.0.0.1:<free port>.
//! Every wait is bounded; the child is killed on drop, so a failing assertion cannot leave it behind.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tiny_http::{Header, Method, Request, Response, Server};

const STEP_TIMEOUT: Duration = Duration::from_secs(20);
const ADDRESS: &str = "0xAbCdEf0123456789abcdef0123456789ABCDEF01";

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

fn request_header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

fn body(req: &mut Request) -> String {
    let mut s = String::new();
    req.as_reader().read_to_string(&mut s).unwrap();
    s
}

/// Next request from the binary, or a test failure after `STEP_TIMEOUT`.
fn recv(server: &Server, child: &mut KillOnDrop, what: &str) -> Request {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("bootstrap exited ({status}) while waiting for {what}");
        }
        if let Some(req) = server.recv_timeout(Duration::from_millis(200)).unwrap() {
            return req;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

fn serve_invocation(server: &Server, child: &mut KillOnDrop, request_id: &str, event: &Value) {
    let req = recv(server, child, "GET /invocation/next");
    assert_eq!(*req.method(), Method::Get);
    assert_eq!(req.url(), "/2018-06-01/runtime/invocation/next");
    let response = Response::from_string(event.to_string())
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Lambda-Runtime-Aws-Request-Id", request_id))
        .with_header(header("Lambda-Runtime-Deadline-Ms", "4102444800000"))
        .with_header(header(
            "Lambda-Runtime-Invoked-Function-Arn",
            "arn:aws:lambda:us-east-1:123456789012:function:rust-scorer",
        ))
        .with_header(header(
            "Lambda-Runtime-Trace-Id",
            "Root=1-00000000-000000000000000000000000",
        ));
    req.respond(response).unwrap();
}

/// Receives the binary's POST for `request_id`; returns (url, error-type header, parsed body).
fn receive_result(
    server: &Server,
    child: &mut KillOnDrop,
    request_id: &str,
) -> (String, Option<String>, Value) {
    let mut req = recv(server, child, &format!("POST for {request_id}"));
    assert_eq!(*req.method(), Method::Post);
    let url = req.url().to_string();
    let error_type = request_header(&req, "Lambda-Runtime-Function-Error-Type");
    let text = body(&mut req);
    let value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: body {text:?}: {e}"));
    req.respond(Response::from_string(r#"{"status":"OK"}"#).with_status_code(202))
        .unwrap();
    (url, error_type, value)
}

#[test]
fn serves_a_valid_and_an_invalid_invocation() {
    let server = Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();

    let child = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);

    // 1. valid event: two known providers (one duplicated), one unknown, one expired.
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
    serve_invocation(&server, &mut child, "req-1", &valid);
    let (url, error_type, out) = receive_result(&server, &mut child, "req-1");
    assert_eq!(url, "/2018-06-01/runtime/invocation/req-1/response");
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

    // 2. invalid event: bad address → error endpoint, errorType InvalidInput.
    let invalid = json!({ "address": "0xnot-an-address", "stamps": [] });
    serve_invocation(&server, &mut child, "req-2", &invalid);
    let (url, error_type, err) = receive_result(&server, &mut child, "req-2");
    assert_eq!(url, "/2018-06-01/runtime/invocation/req-2/error");
    assert_eq!(error_type.as_deref(), Some("InvalidInput"));
    assert_eq!(err["errorType"], "InvalidInput");
    assert!(
        err["errorMessage"].as_str().unwrap().contains("address"),
        "{err}"
    );

    // 3. the runtime keeps polling after an error.
    let req = recv(&server, &mut child, "third GET /invocation/next");
    assert_eq!(req.url(), "/2018-06-01/runtime/invocation/next");
    drop(req);
    // `child` is killed when it goes out of scope.
}

#[test]
fn exits_non_zero_without_runtime_api() {
    let child = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + STEP_TIMEOUT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "bootstrap did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
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
fn exits_non_zero_when_runtime_api_goes_away() {
    // Bind a port, then free it: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + STEP_TIMEOUT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "bootstrap did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
}
