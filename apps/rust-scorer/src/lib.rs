//! Passport-style stamp scoring.
//!
//! Everything here is pure: no I/O, no clock, no globals. `src/main.rs` owns the Lambda Runtime API
//! loop and passes the current time in, so every rule below is unit-testable with a fixed `now`.
//!
//! Rules (see README.md):
//! - `address` must be `0x` followed by exactly 40 hex digits (any case); it is echoed lowercased.
//! - `stamps` must be an array of objects `{ provider: string, credential_id?: string|null,
//!   expires_at: RFC3339 string }`. Every stamp is validated, even ones that end up not counting.
//! - A stamp counts when `expires_at > now` and its provider is in the weights table. Unknown providers
//!   are ignored (weight 0, not listed in the output, no effect on `expiration`). Provider names are
//!   matched exactly (case-sensitive).
//! - One stamp per provider: duplicates count once. Of several unexpired stamps of one provider the one
//!   expiring last is kept, so the result does not depend on the order of the array.
//! - `score` = sum of the counted providers' weights (added in provider-name order), rounded half away
//!   from zero to [`SCORE_DECIMALS`] decimals. `passing_score = score >= threshold`, on the rounded
//!   score, so float noise (0.1 + 0.7 = 0.7999999999999999) cannot flip a boundary case.
//! - `expiration` = the earliest `expires_at` among the counted stamps, as RFC3339 in UTC (`Z`), or
//!   null when nothing counts.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;

pub mod timestamp;

pub use timestamp::Timestamp;

/// The weights table compiled into the binary. Changing weights means changing this file (and its
/// `version`), which changes the build's inputs and therefore the artifact version.
pub const EMBEDDED_WEIGHTS_JSON: &str = include_str!("../weights.json");

/// Number of decimals the score is rounded to.
pub const SCORE_DECIMALS: i32 = 5;

/// `errorType` (and `Lambda-Runtime-Function-Error-Type`) for every rejected event.
pub const INVALID_INPUT: &str = "InvalidInput";

/// Longest piece of caller input echoed back in an error message.
const MAX_ECHO_CHARS: usize = 64;

// ---------------------------------------------------------------------------------------------------
// Weights

/// A versioned weights table (`weights.json`): exactly the keys `version`, `threshold`, `weights`.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Version of the table, e.g. `2026-11-01`; echoed in every response as `weights_version`.
    pub version: String,
    /// Minimum (rounded) score that passes.
    pub threshold: f64,
    /// Provider name → weight.
    pub weights: BTreeMap<String, f64>,
}

/// The weights table is unusable. Only happens at init, never per invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsError(pub String);

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid weights: {}", self.0)
    }
}

impl std::error::Error for WeightsError {}

impl Weights {
    /// Parses and validates the table embedded at compile time. Call once at init.
    pub fn embedded() -> Result<Self, WeightsError> {
        Self::from_json(EMBEDDED_WEIGHTS_JSON)
    }

    /// Parses and validates a weights table.
    pub fn from_json(json: &str) -> Result<Self, WeightsError> {
        let value: Value = serde_json::from_str(json).map_err(|e| WeightsError(e.to_string()))?;
        let obj = value
            .as_object()
            .ok_or_else(|| WeightsError("must be a JSON object".into()))?;
        if let Some(unknown) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "version" | "threshold" | "weights"))
        {
            return Err(WeightsError(format!("unknown field `{unknown}`")));
        }
        let version = match obj.get("version") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(WeightsError("`version` must be a string".into())),
        };
        let threshold = obj
            .get("threshold")
            .and_then(Value::as_f64)
            .ok_or_else(|| WeightsError("`threshold` must be a number".into()))?;
        let table = obj
            .get("weights")
            .and_then(Value::as_object)
            .ok_or_else(|| WeightsError("`weights` must be an object".into()))?;
        let mut weights = BTreeMap::new();
        for (provider, weight) in table {
            let weight = weight
                .as_f64()
                .ok_or_else(|| WeightsError(format!("weight of {provider} must be a number")))?;
            weights.insert(provider.clone(), weight);
        }
        let weights = Weights {
            version,
            threshold,
            weights,
        };
        weights.validate()?;
        Ok(weights)
    }

    fn validate(&self) -> Result<(), WeightsError> {
        if self.version.trim().is_empty() {
            return Err(WeightsError("version must be a non-empty string".into()));
        }
        if !self.threshold.is_finite() || self.threshold < 0.0 {
            return Err(WeightsError(format!(
                "threshold must be a finite number >= 0, got {}",
                self.threshold
            )));
        }
        for (provider, weight) in &self.weights {
            if provider.is_empty() {
                return Err(WeightsError("provider names must be non-empty".into()));
            }
            // Bounded so that no sum of weights can overflow to infinity.
            if !weight.is_finite() || *weight < 0.0 || *weight > 1e9 {
                return Err(WeightsError(format!(
                    "weight of {provider} must be a finite number in [0, 1e9], got {weight}"
                )));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------
// Input

/// A validated stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub provider: String,
    pub credential_id: Option<String>,
    pub expires_at: Timestamp,
}

/// A validated event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Lowercased `0x…` address.
    pub address: String,
    pub stamps: Vec<Stamp>,
}

/// Why an event was rejected. Every variant is the caller's fault and maps to `errorType`
/// [`INVALID_INPUT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScoreError {
    /// The payload is not JSON.
    InvalidJson(String),
    /// The payload is JSON but not an object.
    NotAnObject,
    /// `address` is missing, not a string, or not `0x` + 40 hex digits.
    InvalidAddress(String),
    /// `stamps` is missing or not an array.
    InvalidStamps(String),
    /// One stamp is malformed.
    InvalidStamp { index: usize, reason: String },
}

impl ScoreError {
    /// Value for `errorType` and the `Lambda-Runtime-Function-Error-Type` header.
    pub fn error_type(&self) -> &'static str {
        INVALID_INPUT
    }
}

impl fmt::Display for ScoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScoreError::InvalidJson(e) => write!(f, "event is not valid JSON: {e}"),
            ScoreError::NotAnObject => write!(f, "event must be a JSON object"),
            ScoreError::InvalidAddress(e) => write!(f, "invalid address: {e}"),
            ScoreError::InvalidStamps(e) => write!(f, "invalid stamps: {e}"),
            ScoreError::InvalidStamp { index, reason } => {
                write!(f, "invalid stamps[{index}]: {reason}")
            }
        }
    }
}

impl std::error::Error for ScoreError {}

/// Shortens caller input before it is echoed in an error message.
fn echo(s: &str) -> String {
    if s.chars().count() <= MAX_ECHO_CHARS {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX_ECHO_CHARS).collect();
        format!("{head:?}…")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `0x` + exactly 40 ASCII hex digits; returns the lowercased address.
pub fn parse_address(v: Option<&Value>) -> Result<String, ScoreError> {
    let s = match v {
        None => return Err(ScoreError::InvalidAddress("missing field `address`".into())),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(ScoreError::InvalidAddress(format!(
                "must be a string, got {}",
                type_name(other)
            )))
        }
    };
    let valid =
        s.len() == 42 && s.starts_with("0x") && s.bytes().skip(2).all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(ScoreError::InvalidAddress(format!(
            "expected 0x followed by 40 hex characters, got {}",
            echo(s)
        )));
    }
    Ok(s.to_ascii_lowercase())
}

/// Parses `expires_at` (RFC3339, see [`timestamp`]); the error names the field and echoes the input.
pub fn parse_expires_at(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| {
        format!(
            "expires_at must be an RFC3339 timestamp, got {}: {e}",
            echo(s)
        )
    })
}

fn parse_stamp(index: usize, v: &Value) -> Result<Stamp, ScoreError> {
    let bad = |reason: String| ScoreError::InvalidStamp { index, reason };
    let obj = v
        .as_object()
        .ok_or_else(|| bad(format!("must be an object, got {}", type_name(v))))?;
    let provider = match obj.get("provider") {
        Some(Value::String(s)) => s.clone(),
        None => return Err(bad("missing field `provider`".into())),
        Some(other) => {
            return Err(bad(format!(
                "provider must be a string, got {}",
                type_name(other)
            )))
        }
    };
    let credential_id = match obj.get("credential_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(bad(format!(
                "credential_id must be a string, got {}",
                type_name(other)
            )))
        }
    };
    let expires_at = match obj.get("expires_at") {
        Some(Value::String(s)) => parse_expires_at(s).map_err(bad)?,
        None => return Err(bad("missing field `expires_at`".into())),
        Some(other) => {
            return Err(bad(format!(
                "expires_at must be an RFC3339 string, got {}",
                type_name(other)
            )))
        }
    };
    Ok(Stamp {
        provider,
        credential_id,
        expires_at,
    })
}

/// Validates an event (already parsed as JSON). Unknown top-level fields are ignored.
pub fn parse_event(event: &Value) -> Result<Event, ScoreError> {
    let obj = event.as_object().ok_or(ScoreError::NotAnObject)?;
    let address = parse_address(obj.get("address"))?;
    let raw_stamps = match obj.get("stamps") {
        Some(Value::Array(a)) => a,
        None => return Err(ScoreError::InvalidStamps("missing field `stamps`".into())),
        Some(other) => {
            return Err(ScoreError::InvalidStamps(format!(
                "must be an array, got {}",
                type_name(other)
            )))
        }
    };
    let stamps = raw_stamps
        .iter()
        .enumerate()
        .map(|(i, s)| parse_stamp(i, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Event { address, stamps })
}

// ---------------------------------------------------------------------------------------------------
// Scoring

/// The response body (serialized with its fields in this order).
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub address: String,
    pub score: f64,
    pub passing_score: bool,
    pub threshold: f64,
    /// Earliest `expires_at` among the counted stamps (RFC3339, UTC), or null.
    pub expiration: Option<String>,
    /// Counted provider → its weight.
    pub stamps: BTreeMap<String, f64>,
    /// `version` of the weights table used.
    pub weights_version: String,
}

/// Rounds half away from zero to [`SCORE_DECIMALS`] decimals.
pub fn round_score(x: f64) -> f64 {
    let factor = 10f64.powi(SCORE_DECIMALS);
    (x * factor).round() / factor
}

impl Serialize for Output {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Output", 7)?;
        s.serialize_field("address", &self.address)?;
        s.serialize_field("score", &self.score)?;
        s.serialize_field("passing_score", &self.passing_score)?;
        s.serialize_field("threshold", &self.threshold)?;
        s.serialize_field("expiration", &self.expiration)?;
        s.serialize_field("stamps", &self.stamps)?;
        s.serialize_field("weights_version", &self.weights_version)?;
        s.end()
    }
}

/// Scores a validated event at instant `now`. Infallible: all checks happen in [`parse_event`].
pub fn score_event(event: &Event, weights: &Weights, now: Timestamp) -> Output {
    // provider → (weight, latest expiry among its unexpired stamps)
    let mut counted: BTreeMap<&str, (f64, Timestamp)> = BTreeMap::new();
    for stamp in &event.stamps {
        if stamp.expires_at <= now {
            continue;
        }
        let weight = match weights.weights.get(&stamp.provider) {
            Some(w) => *w,
            None => continue,
        };
        counted
            .entry(stamp.provider.as_str())
            .and_modify(|(_, exp)| {
                if stamp.expires_at > *exp {
                    *exp = stamp.expires_at;
                }
            })
            .or_insert((weight, stamp.expires_at));
    }

    let mut sum = 0.0;
    let mut earliest: Option<Timestamp> = None;
    let mut stamps = BTreeMap::new();
    for (provider, (weight, expires_at)) in &counted {
        sum += weight;
        earliest = Some(match earliest {
            Some(e) if e <= *expires_at => e,
            _ => *expires_at,
        });
        stamps.insert((*provider).to_string(), *weight);
    }
    let score = round_score(sum);

    Output {
        address: event.address.clone(),
        score,
        passing_score: score >= weights.threshold,
        threshold: weights.threshold,
        expiration: earliest.map(|t| t.to_rfc3339()),
        stamps,
        weights_version: weights.version.clone(),
    }
}

/// Validates and scores an event given as a JSON value.
pub fn score(event: &Value, weights: &Weights, now: Timestamp) -> Result<Output, ScoreError> {
    let event = parse_event(event)?;
    Ok(score_event(&event, weights, now))
}

/// Validates and scores a raw event payload (what the Runtime API hands over).
pub fn score_json(payload: &[u8], weights: &Weights, now: Timestamp) -> Result<Output, ScoreError> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| ScoreError::InvalidJson(e.to_string()))?;
    score(&value, weights, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ADDR: &str = "0x1234567890AbCdEf1234567890abcdef12345678";

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-15T12:00:00Z").unwrap()
    }

    fn weights() -> Weights {
        Weights::from_json(
            r#"{ "version": "test-1", "threshold": 10.0,
                 "weights": { "Google": 2.25, "Github": 7.1, "Ens": 0.65, "A": 0.1, "B": 0.7 } }"#,
        )
        .unwrap()
    }

    fn stamp(provider: &str, expires_at: &str) -> Value {
        json!({ "provider": provider, "credential_id": format!("cred-{provider}"), "expires_at": expires_at })
    }

    fn run(event: Value) -> Result<Output, ScoreError> {
        score(&event, &weights(), now())
    }

    #[test]
    fn embedded_weights_parse() {
        let w = Weights::embedded().unwrap();
        assert!(!w.version.is_empty());
        assert!(w.threshold > 0.0);
        assert!(!w.weights.is_empty());
    }

    #[test]
    fn scores_valid_stamps() {
        let out = run(json!({ "address": ADDR, "stamps": [
            stamp("Google", "2027-01-01T00:00:00Z"),
            stamp("Github", "2027-02-01T00:00:00Z"),
        ]}))
        .unwrap();
        assert_eq!(out.address, ADDR.to_ascii_lowercase());
        assert_eq!(out.score, 9.35);
        assert!(!out.passing_score);
        assert_eq!(out.threshold, 10.0);
        assert_eq!(out.expiration.as_deref(), Some("2027-01-01T00:00:00Z"));
        assert_eq!(out.stamps.len(), 2);
        assert_eq!(out.stamps["Google"], 2.25);
        assert_eq!(out.stamps["Github"], 7.1);
        assert_eq!(out.weights_version, "test-1");
    }

    #[test]
    fn output_json_shape() {
        let out =
            run(json!({ "address": ADDR, "stamps": [stamp("Google", "2027-01-01T00:00:00Z")] }))
                .unwrap();
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(
            v,
            json!({
                "address": ADDR.to_ascii_lowercase(),
                "score": 2.25,
                "passing_score": false,
                "threshold": 10.0,
                "expiration": "2027-01-01T00:00:00Z",
                "stamps": { "Google": 2.25 },
                "weights_version": "test-1"
            })
        );
    }

    /// Scores one stamp per `(provider, expires_at)` and checks the score, the counted providers (in
    /// name order) and the expiration.
    fn assert_counted(stamps: &[(&str, &str)], score: f64, counted: &[&str], expiration: &str) {
        let stamps: Vec<Value> = stamps.iter().map(|(p, at)| stamp(p, at)).collect();
        let out = run(json!({ "address": ADDR, "stamps": stamps })).unwrap();
        assert_eq!(out.score, score);
        assert_eq!(out.stamps.keys().collect::<Vec<_>>(), counted);
        assert_eq!(out.expiration.as_deref(), Some(expiration));
    }

    #[test]
    fn expired_stamps_are_ignored() {
        let stamps = [
            ("Google", "2026-11-15T11:59:59Z"),
            // expires exactly now: expired (expires_at <= now)
            ("Github", "2026-11-15T12:00:00Z"),
            ("Ens", "2026-11-15T12:00:01Z"),
        ];
        assert_counted(&stamps, 0.65, &["Ens"], "2026-11-15T12:00:01Z");
    }

    #[test]
    fn duplicate_provider_counts_once_and_keeps_latest_expiry() {
        let stamps = [
            ("Github", "2027-01-01T00:00:00Z"),
            ("Github", "2027-06-01T00:00:00Z"),
            ("Github", "2020-01-01T00:00:00Z"),
            ("Ens", "2027-09-01T00:00:00Z"),
        ];
        // Github's kept stamp expires 2027-06-01, which is earlier than Ens.
        assert_counted(&stamps, 7.75, &["Ens", "Github"], "2027-06-01T00:00:00Z");
    }

    #[test]
    fn duplicate_result_does_not_depend_on_order() {
        let a = run(json!({ "address": ADDR, "stamps": [
            stamp("Github", "2027-01-01T00:00:00Z"), stamp("Github", "2027-06-01T00:00:00Z") ]}))
        .unwrap();
        let b = run(json!({ "address": ADDR, "stamps": [
            stamp("Github", "2027-06-01T00:00:00Z"), stamp("Github", "2027-01-01T00:00:00Z") ]}))
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn unknown_provider_is_ignored() {
        let stamps = [
            ("NotAProvider", "2026-12-01T00:00:00Z"),
            ("google", "2026-12-01T00:00:00Z"), // case-sensitive
            ("Google", "2027-01-01T00:00:00Z"),
        ];
        // unknown providers do not affect the expiration either
        assert_counted(&stamps, 2.25, &["Google"], "2027-01-01T00:00:00Z");
    }

    #[test]
    fn no_counted_stamps() {
        let out = run(json!({ "address": ADDR, "stamps": [] })).unwrap();
        assert_eq!(out.score, 0.0);
        assert!(!out.passing_score);
        assert_eq!(out.expiration, None);
        assert!(out.stamps.is_empty());
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["expiration"], Value::Null);
    }

    #[test]
    fn threshold_compares_the_rounded_score() {
        // (weights table, score of one unexpired stamp of each of its providers, passing_score)
        for (table, expected, passes) in [
            // exactly at the threshold: passes
            (
                r#"{ "version": "t", "threshold": 9.35, "weights": { "Google": 2.25, "Github": 7.1 } }"#,
                9.35,
                true,
            ),
            // just above it: fails
            (
                r#"{ "version": "t", "threshold": 9.35001, "weights": { "Google": 2.25, "Github": 7.1 } }"#,
                9.35,
                false,
            ),
            // 0.1 + 0.7 == 0.7999999999999999 in f64; rounded to 5 decimals it is 0.8.
            (
                r#"{ "version": "t", "threshold": 0.8, "weights": { "A": 0.1, "B": 0.7 } }"#,
                0.8,
                true,
            ),
        ] {
            let w = Weights::from_json(table).unwrap();
            let stamps: Vec<Value> = w
                .weights
                .keys()
                .map(|provider| stamp(provider, "2027-01-01T00:00:00Z"))
                .collect();
            let out = score(&json!({ "address": ADDR, "stamps": stamps }), &w, now()).unwrap();
            assert_eq!(out.score, expected, "{table}");
            assert_eq!(out.passing_score, passes, "{table}");
        }
    }

    #[test]
    fn rounding_to_five_decimals() {
        assert_eq!(round_score(1.234564), 1.23456);
        assert_eq!(round_score(1.234566), 1.23457);
        assert_eq!(round_score(0.1 + 0.2), 0.3);
    }

    #[test]
    fn expiration_is_earliest_and_normalized_to_utc() {
        let out = run(json!({ "address": ADDR, "stamps": [
            stamp("Google", "2027-03-01T00:00:00Z"),
            stamp("Github", "2027-01-01T02:30:00.250+02:00"),
            stamp("Ens", "2027-02-01T00:00:00Z"),
        ]}))
        .unwrap();
        assert_eq!(out.expiration.as_deref(), Some("2027-01-01T00:30:00.250Z"));
    }

    #[test]
    fn invalid_address() {
        for bad in [
            json!("0x123"),
            json!("1234567890abcdef1234567890abcdef1234567890"),
            json!("0X1234567890abcdef1234567890abcdef12345678"),
            json!("0x1234567890abcdef1234567890abcdef1234567g"),
            json!("0x1234567890abcdef1234567890abcdef123456789"),
            json!(" 0x1234567890abcdef1234567890abcdef12345678"),
            json!("0x1234567890abcdef1234567890abcdef1234567é"),
            json!(42),
            Value::Null,
        ] {
            let err = run(json!({ "address": bad, "stamps": [] })).unwrap_err();
            assert!(
                matches!(err, ScoreError::InvalidAddress(_)),
                "{bad}: {err:?}"
            );
            assert_eq!(err.error_type(), "InvalidInput");
        }
        let err = run(json!({ "stamps": [] })).unwrap_err();
        assert!(matches!(err, ScoreError::InvalidAddress(_)));
    }

    #[test]
    fn invalid_date() {
        for bad in [
            "2027-01-01",
            "2027-01-01 00:00:00",
            "2027-01-01T00:00:00",
            "2027-13-01T00:00:00Z",
            "tomorrow",
            "",
        ] {
            let err = run(json!({ "address": ADDR, "stamps": [
                stamp("Google", "2027-01-01T00:00:00Z"), stamp("Github", bad) ]}))
            .unwrap_err();
            match &err {
                ScoreError::InvalidStamp { index, reason } => {
                    assert_eq!(*index, 1);
                    assert!(reason.contains("RFC3339"), "{reason}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        // an unknown provider's stamp is still validated
        let err = run(json!({ "address": ADDR, "stamps": [stamp("Nope", "soon")] })).unwrap_err();
        assert!(matches!(err, ScoreError::InvalidStamp { index: 0, .. }));
        // non-string expires_at
        let err = run(json!({ "address": ADDR, "stamps": [
            { "provider": "Google", "expires_at": 1700000000 } ]}))
        .unwrap_err();
        assert!(matches!(err, ScoreError::InvalidStamp { index: 0, .. }));
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        // UTC year 10000: rejected, not formatted as a non-RFC3339 string.
        let err = run(
            json!({ "address": ADDR, "stamps": [stamp("Google", "9999-12-31T23:59:59-23:59")] }),
        )
        .unwrap_err();
        assert!(matches!(err, ScoreError::InvalidStamp { index: 0, .. }));
        // UTC year -1: rejected as well.
        assert!(run(
            json!({ "address": ADDR, "stamps": [stamp("Google", "0000-01-01T00:00:00+23:59")] })
        )
        .is_err());
        // leap second and long fractions parse
        let out = run(json!({ "address": ADDR, "stamps": [
            stamp("Google", "2027-06-30T23:59:60Z"),
            stamp("Github", "2027-01-01T00:00:00.123456789123Z") ]}))
        .unwrap();
        assert_eq!(out.score, 9.35);
        assert_eq!(
            out.expiration.as_deref(),
            Some("2027-01-01T00:00:00.123456789Z")
        );
    }

    #[test]
    fn missing_or_malformed_stamps_field() {
        let err = run(json!({ "address": ADDR })).unwrap_err();
        assert_eq!(
            err,
            ScoreError::InvalidStamps("missing field `stamps`".into())
        );
        for bad in [json!({}), json!("Google"), Value::Null, json!(3)] {
            let err = run(json!({ "address": ADDR, "stamps": bad })).unwrap_err();
            assert!(matches!(err, ScoreError::InvalidStamps(_)), "{err:?}");
        }
    }

    #[test]
    fn malformed_stamp_entries() {
        for (bad, needle) in [
            (json!("Google"), "must be an object"),
            (json!({ "expires_at": "2027-01-01T00:00:00Z" }), "provider"),
            (
                json!({ "provider": 1, "expires_at": "2027-01-01T00:00:00Z" }),
                "provider",
            ),
            (json!({ "provider": "Google" }), "expires_at"),
            (
                json!({ "provider": "Google", "credential_id": 5, "expires_at": "2027-01-01T00:00:00Z" }),
                "credential_id",
            ),
        ] {
            let err = run(json!({ "address": ADDR, "stamps": [bad] })).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
        // credential_id is optional and may be null
        assert!(run(json!({ "address": ADDR, "stamps": [
            { "provider": "Google", "expires_at": "2027-01-01T00:00:00Z" },
            { "provider": "Github", "credential_id": null, "expires_at": "2027-01-01T00:00:00Z" } ]}))
        .is_ok());
    }

    #[test]
    fn raw_payload_errors() {
        let w = weights();
        assert!(matches!(
            score_json(b"{not json", &w, now()),
            Err(ScoreError::InvalidJson(_))
        ));
        assert!(matches!(
            score_json(b"[]", &w, now()),
            Err(ScoreError::NotAnObject)
        ));
        assert!(matches!(
            score_json(b"", &w, now()),
            Err(ScoreError::InvalidJson(_))
        ));
        assert!(matches!(
            score_json(&[0xff, 0xfe], &w, now()),
            Err(ScoreError::InvalidJson(_))
        ));
        let ok = format!(r#"{{"address":"{ADDR}","stamps":[],"extra":true}}"#);
        assert!(score_json(ok.as_bytes(), &w, now()).is_ok());
    }

    #[test]
    fn long_input_is_truncated_in_messages() {
        let long = "x".repeat(10_000);
        let err = run(json!({ "address": long, "stamps": [] })).unwrap_err();
        assert!(err.to_string().len() < 200, "{}", err.to_string().len());
    }

    #[test]
    fn invalid_weights_are_rejected() {
        for bad in [
            r#"{ "version": "", "threshold": 1, "weights": {} }"#,
            r#"{ "version": "v", "threshold": -1, "weights": {} }"#,
            r#"{ "version": "v", "threshold": 1, "weights": { "A": -0.5 } }"#,
            r#"{ "version": "v", "threshold": 1, "weights": { "A": 1e300 } }"#,
            r#"{ "version": "v", "threshold": 1, "weights": { "": 1 } }"#,
            r#"{ "version": "v", "treshold": 1, "weights": {} }"#,
            r#"{ "version": "v", "threshold": 1 }"#,
            "not json",
        ] {
            assert!(Weights::from_json(bad).is_err(), "{bad}");
        }
    }
}
