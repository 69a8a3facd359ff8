//! `bootstrap`: AWS Lambda custom runtime (provided.al2023) for the stamp scorer.
//!
//! Speaks the Lambda Runtime API (2018-06-01) through `runtime.rs` (the workspace's one client):
//! init: read `AWS_LAMBDA_RUNTIME_API`, parse the embedded weights once (on failure: POST
//! `/runtime/init/error` and exit non-zero); then forever: GET `/runtime/invocation/next`, score the
//! event, POST `/runtime/invocation/{id}/response` or `/runtime/invocation/{id}/error`.
//! All scoring lives in the library (`rust_scorer::score_json`); this file is only I/O.

mod runtime;

use std::process::ExitCode;

use runtime::{Invocation, NextError, RuntimeApi};
use rust_scorer::{score_json, Timestamp, Weights};

fn handle(api: &RuntimeApi, weights: &Weights, invocation: &Invocation) -> Result<(), String> {
    match score_json(&invocation.payload, weights, Timestamp::now()) {
        Ok(output) => match serde_json::to_string(&output) {
            Ok(body) => api.respond(&invocation.request_id, body.as_bytes()),
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
