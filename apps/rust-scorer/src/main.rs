//! `bootstrap`: AWS Lambda custom runtime (provided.al2023) for the stamp scorer.
//!
//! Implements the Lambda Runtime API (2018-06-01) directly:
//! init: read `AWS_LAMBDA_RUNTIME_API`, parse the embedded weights once (on failure: POST
//! `/runtime/init/error` and exit non-zero); then forever: GET `/runtime/invocation/next`, score the
//! event, POST `/runtime/invocation/{id}/response` or `/runtime/invocation/{id}/error`.
//! All scoring lives in the library (`rust_scorer::score_json`); this file is only I/O.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod http;

use std::process::ExitCode;
use std::time::Duration;

use rust_scorer::{score_json, Timestamp, Weights};

const API_VERSION: &str = "2018-06-01";
const REQUEST_ID_HEADER: &str = "Lambda-Runtime-Aws-Request-Id";
const ERROR_TYPE_HEADER: &str = "Lambda-Runtime-Function-Error-Type";
/// Lambda's synchronous invocation payload limit is 6 MB; anything larger is rejected, not buffered.
const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;
/// Most of a Runtime API reply to a POST that is kept (for error messages).
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Bound for the POSTs. `next` has no read timeout: it long-polls until an invocation arrives.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

struct Invocation {
    request_id: String,
    payload: Vec<u8>,
}

enum NextError {
    /// The Runtime API cannot be reached or refused: the runtime must exit.
    Fatal(String),
    /// One invocation could not be read, but it has a request id, so it can be answered with an error.
    Payload { request_id: String, message: String },
}

struct RuntimeApi {
    client: http::Client,
    base: String,
}

impl RuntimeApi {
    fn new(host_port: &str) -> Self {
        RuntimeApi {
            client: http::Client::new(host_port, CONNECT_TIMEOUT, WRITE_TIMEOUT),
            base: format!("/{API_VERSION}/runtime"),
        }
    }

    fn next(&self) -> Result<Invocation, NextError> {
        let path = format!("{}/invocation/next", self.base);
        let response = self
            .client
            .send(&http::Request {
                method: "GET",
                path: &path,
                headers: &[],
                body: b"",
                read_timeout: None,
                max_body: MAX_EVENT_BYTES,
            })
            .map_err(|e| NextError::Fatal(format!("GET {path}: {e}")))?;
        if response.status != 200 {
            return Err(NextError::Fatal(format!(
                "GET {path}: HTTP {}: {}",
                response.status,
                response.body_snippet()
            )));
        }
        let request_id = match response.header(REQUEST_ID_HEADER) {
            Some(id) if is_valid_request_id(id) => id.to_string(),
            Some(id) => {
                return Err(NextError::Fatal(format!(
                    "GET {path}: unusable {REQUEST_ID_HEADER} header {id:?}"
                )))
            }
            None => {
                return Err(NextError::Fatal(format!(
                    "GET {path}: response has no {REQUEST_ID_HEADER} header"
                )))
            }
        };
        if response.body_too_large {
            return Err(NextError::Payload {
                request_id,
                message: format!("event is larger than {MAX_EVENT_BYTES} bytes"),
            });
        }
        Ok(Invocation {
            request_id,
            payload: response.body,
        })
    }

    fn post(&self, path: &str, error_type: Option<&str>, body: &str) -> Result<(), String> {
        let path = format!("{}/{path}", self.base);
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(error_type) = error_type {
            headers.push((ERROR_TYPE_HEADER, error_type));
        }
        let response = self
            .client
            .send(&http::Request {
                method: "POST",
                path: &path,
                headers: &headers,
                body: body.as_bytes(),
                read_timeout: Some(POST_TIMEOUT),
                max_body: MAX_REPLY_BYTES,
            })
            .map_err(|e| format!("POST {path}: {e}"))?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(format!(
                "POST {path}: HTTP {}: {}",
                response.status,
                response.body_snippet()
            ))
        }
    }

    fn respond(&self, request_id: &str, body: &str) -> Result<(), String> {
        self.post(&format!("invocation/{request_id}/response"), None, body)
    }

    fn fail(&self, request_id: &str, error_type: &str, message: &str) -> Result<(), String> {
        self.post(
            &format!("invocation/{request_id}/error"),
            Some(error_type),
            &error_body(error_type, message),
        )
    }

    fn init_error(&self, error_type: &str, message: &str) -> Result<(), String> {
        self.post(
            "init/error",
            Some(error_type),
            &error_body(error_type, message),
        )
    }
}

/// Request ids are UUIDs; anything that could break out of the URL path is refused.
fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && id != "."
        && id != ".."
}

fn error_body(error_type: &str, message: &str) -> String {
    serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string()
}

fn handle(api: &RuntimeApi, weights: &Weights, invocation: &Invocation) -> Result<(), String> {
    match score_json(&invocation.payload, weights, Timestamp::now()) {
        Ok(output) => match serde_json::to_string(&output) {
            Ok(body) => api.respond(&invocation.request_id, &body),
            Err(e) => api.fail(
                &invocation.request_id,
                "Runtime.SerializationError",
                &e.to_string(),
            ),
        },
        Err(e) => api.fail(&invocation.request_id, e.error_type(), &e.to_string()),
    }
}

fn main() -> ExitCode {
    let host_port = match std::env::var("AWS_LAMBDA_RUNTIME_API") {
        Ok(v) if !v.trim().is_empty() => v,
        _ => {
            // Without the variable there is nobody to report an init error to.
            eprintln!(
                "init error: AWS_LAMBDA_RUNTIME_API is not set; \
                 bootstrap must be started by the Lambda runtime (or an emulator)"
            );
            return ExitCode::FAILURE;
        }
    };
    let api = RuntimeApi::new(host_port.trim());

    let weights = match Weights::embedded() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("init error: {e}");
            if let Err(post) = api.init_error("Runtime.InvalidWeights", &e.to_string()) {
                eprintln!("could not report the init error: {post}");
            }
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "rust-scorer {} ready (weights {}, {} providers, threshold {})",
        env!("CARGO_PKG_VERSION"),
        weights.version,
        weights.weights.len(),
        weights.threshold
    );

    loop {
        let invocation = match api.next() {
            Ok(invocation) => invocation,
            Err(NextError::Payload {
                request_id,
                message,
            }) => {
                eprintln!("request {request_id}: {message}");
                if let Err(e) = api.fail(&request_id, rust_scorer::INVALID_INPUT, &message) {
                    eprintln!("request {request_id}: {e}");
                }
                continue;
            }
            Err(NextError::Fatal(message)) => {
                eprintln!("runtime API error, exiting: {message}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = handle(&api, &weights, &invocation) {
            // The invocation was scored, but the result could not be delivered. Lambda times the
            // invocation out; keep serving the next ones.
            eprintln!("request {}: {e}", invocation.request_id);
        }
    }
}
