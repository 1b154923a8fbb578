//! `litellm_settings.default_key_generate_params` and `upperbound_key_generate_params`, applied
//! to key request bodies before the key handlers read them.
//!
//! Mirrors LiteLLM's key management: `/key/generate` (and `/key/service-account/generate`)
//! first fills the defaults into the fields the request leaves unset, then gives every capped
//! field the request still leaves unset the cap itself, and refuses a value over its cap with
//! a 400; `/key/update`, `/key/bulk_update` and `/key/regenerate` only refuse values over a cap.
//! Durations are compared by their length in seconds; `"-1"` (never expire) is longer than any
//! cap. What must not go in here: rights checks and storage (see `handlers::keys`).

use crate::config::{KeyGenerateCaps, KeyGenerateDefaults};
use crate::error::{ApiError, ApiResult};
use crate::spend::parse_duration;
use serde_json::{json, Map, Number, Value};

/// Fills `defaults` into a `/key/generate` body as LiteLLM does: scalar fields when absent or
/// null (`budget_duration` only when absent: an explicit null means "no reset"), `models` also
/// when `[]`, `metadata` also when `{}`.
pub fn apply_defaults(defaults: &KeyGenerateDefaults, body: &mut Map<String, Value>) {
    let scalars = [
        ("max_budget", defaults.max_budget.map(Value::from)),
        ("user_id", defaults.user_id.clone().map(Value::from)),
        ("team_id", defaults.team_id.clone().map(Value::from)),
        (
            "max_parallel_requests",
            defaults.max_parallel_requests.map(Value::from),
        ),
        ("tpm_limit", defaults.tpm_limit.map(Value::from)),
        ("rpm_limit", defaults.rpm_limit.map(Value::from)),
        (
            "budget_duration",
            defaults.budget_duration.clone().map(Value::from),
        ),
        ("duration", defaults.duration.clone().map(Value::from)),
    ];
    for (field, value) in scalars {
        let Some(value) = value else { continue };
        let unset = match body.get(field) {
            None => true,
            Some(Value::Null) => field != "budget_duration",
            Some(_) => false,
        };
        if unset {
            body.insert(field.into(), value);
        }
    }
    if let Some(models) = &defaults.models {
        let unset = match body.get("models") {
            None | Some(Value::Null) => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        if unset {
            body.insert("models".into(), json!(models));
        }
    }
    if let Some(metadata) = &defaults.metadata {
        let unset = match body.get("metadata") {
            None | Some(Value::Null) => true,
            Some(Value::Object(m)) => m.is_empty(),
            Some(_) => false,
        };
        if unset {
            body.insert("metadata".into(), Value::Object(metadata.clone()));
        }
    }
}

/// A capped field and its cap.
enum Cap<'a> {
    /// `max_budget` (a float in LiteLLM, so shown as one).
    Float(f64),
    /// `max_parallel_requests`, `tpm_limit`, `rpm_limit`.
    Int(u64),
    /// `duration`, `budget_duration`.
    Duration(&'a str),
}

fn caps_of(caps: &KeyGenerateCaps) -> Vec<(&'static str, Cap<'_>)> {
    let mut out = Vec::new();
    if let Some(v) = caps.max_budget {
        out.push(("max_budget", Cap::Float(v)));
    }
    if let Some(v) = caps.budget_duration.as_deref() {
        out.push(("budget_duration", Cap::Duration(v)));
    }
    if let Some(v) = caps.duration.as_deref() {
        out.push(("duration", Cap::Duration(v)));
    }
    for (field, v) in [
        ("max_parallel_requests", caps.max_parallel_requests),
        ("tpm_limit", caps.tpm_limit),
        ("rpm_limit", caps.rpm_limit),
    ] {
        if let Some(v) = v {
            out.push((field, Cap::Int(v)));
        }
    }
    out
}

/// Gives each capped field a key-creation body leaves unset (absent or null) the cap itself.
pub fn fill_caps(caps: &KeyGenerateCaps, body: &mut Map<String, Value>) {
    for (field, cap) in caps_of(caps) {
        if body.get(field).is_none_or(Value::is_null) {
            let v = match cap {
                Cap::Float(v) => Value::from(v),
                Cap::Int(v) => Value::from(v),
                Cap::Duration(d) => Value::from(d),
            };
            body.insert(field.into(), v);
        }
    }
}

/// Refuses a body with a value over its cap (LiteLLM's 400 and message). Unset fields pass;
/// values of the wrong type are left for the field parser to refuse.
pub fn check_caps(caps: &KeyGenerateCaps, body: &Map<String, Value>) -> ApiResult<()> {
    for (field, cap) in caps_of(caps) {
        let Some(given) = body.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        let over = match (&cap, given) {
            (Cap::Float(max), Value::Number(n)) => n.as_f64().is_some_and(|v| v > *max),
            (Cap::Int(max), Value::Number(n)) => n.as_f64().is_some_and(|v| v > *max as f64),
            (Cap::Duration(max), Value::String(s)) => match (seconds(s), seconds(max)) {
                (Some(v), Some(max)) => v > max,
                _ => false,
            },
            _ => false,
        };
        if over {
            let (user_value, max_value) = match (&cap, given) {
                (Cap::Float(max), Value::Number(n)) => (py_float(n), py_float_of(*max)),
                (Cap::Float(max), v) => (plain(v), py_float_of(*max)),
                (Cap::Int(max), v) => (plain(v), max.to_string()),
                (Cap::Duration(max), v) => (plain(v), (*max).to_string()),
            };
            return Err(ApiError::bad_request(format!(
                "{field} is over max limit set in config - user_value={user_value}; max_value={max_value}"
            ))
            .with_param(field));
        }
    }
    Ok(())
}

/// Seconds in a duration; `"-1"` (never expire) is infinite. `None` when unparsable.
fn seconds(d: &str) -> Option<f64> {
    if d.trim() == "-1" {
        return Some(f64::INFINITY);
    }
    parse_duration(d).map(|d| d.num_seconds() as f64)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON number as Python prints the float it becomes (`200` -> `200.0`).
fn py_float(n: &Number) -> String {
    n.as_f64().map_or_else(|| n.to_string(), py_float_of)
}

fn py_float_of(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn caps() -> KeyGenerateCaps {
        KeyGenerateCaps {
            max_budget: Some(100.0),
            duration: Some("7d".into()),
            budget_duration: Some("30d".into()),
            tpm_limit: Some(1000),
            ..KeyGenerateCaps::default()
        }
    }

    #[test]
    fn defaults_fill_only_unset_fields() {
        let d = KeyGenerateDefaults {
            max_budget: Some(5.0),
            budget_duration: Some("1d".into()),
            models: Some(vec!["gpt-4o".into()]),
            metadata: Some(body(json!({"env": "dev"}))),
            ..KeyGenerateDefaults::default()
        };
        let mut b = body(json!({"max_budget": null, "budget_duration": null, "models": []}));
        apply_defaults(&d, &mut b);
        assert_eq!(b["max_budget"], 5.0);
        assert_eq!(b["budget_duration"], Value::Null, "explicit null is kept");
        assert_eq!(b["models"], json!(["gpt-4o"]));
        assert_eq!(b["metadata"], json!({"env": "dev"}));

        let mut b = body(json!({"max_budget": 1, "models": ["x"], "metadata": {"a": 1}}));
        apply_defaults(&d, &mut b);
        assert_eq!(b["max_budget"], 1);
        assert_eq!(b["budget_duration"], "1d");
        assert_eq!(b["models"], json!(["x"]));
        assert_eq!(b["metadata"], json!({"a": 1}));
    }

    #[test]
    fn caps_fill_unset_fields_and_refuse_values_over_them() {
        let mut b = body(json!({"max_budget": null, "tpm_limit": 5}));
        fill_caps(&caps(), &mut b);
        assert_eq!(b["max_budget"], 100.0);
        assert_eq!(b["duration"], "7d");
        assert_eq!(b["tpm_limit"], 5);
        assert!(check_caps(&caps(), &Map::new()).is_ok());

        let e = check_caps(&caps(), &body(json!({"max_budget": 200}))).unwrap_err();
        assert_eq!(
            e.message,
            "max_budget is over max limit set in config - user_value=200.0; max_value=100.0"
        );
        let e = check_caps(&caps(), &body(json!({"tpm_limit": 1001}))).unwrap_err();
        assert_eq!(
            e.message,
            "tpm_limit is over max limit set in config - user_value=1001; max_value=1000"
        );
        // Durations compare by length, whatever their unit.
        assert!(check_caps(&caps(), &body(json!({"duration": "168h"}))).is_ok());
        let e = check_caps(&caps(), &body(json!({"duration": "2w"}))).unwrap_err();
        assert_eq!(
            e.message,
            "duration is over max limit set in config - user_value=2w; max_value=7d"
        );
        assert!(check_caps(&caps(), &body(json!({"duration": "-1"}))).is_err());
        // At the cap is allowed.
        assert!(check_caps(&caps(), &body(json!({"max_budget": 100.0}))).is_ok());
    }
}
