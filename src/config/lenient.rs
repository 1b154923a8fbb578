//! Lenient scalar deserializers for config fields.
//!
//! LiteLLM is Python and coerces `"30"` to `30`; values that come from `os.environ/NAME` are
//! always strings. These accept a number or a numeric string (and `true`/`"True"` for bools)
//! and reject anything else with a message naming the expected type.

use serde::de::{Deserializer, Error};
use serde::Deserialize;
use serde_json::Value;

fn as_f64<E: Error>(v: &Value) -> Result<Option<f64>, E> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| E::custom("expected a number")),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        // YAML 1.1 (PyYAML, which LiteLLM uses) reads `20_000` as a number; YAML 1.2 as text.
        Value::String(s) => s
            .trim()
            .replace('_', "")
            .parse::<f64>()
            .map(Some)
            .map_err(|_| E::custom(format!("expected a number, got string {s:?}"))),
        other => Err(E::custom(format!("expected a number, got {}", kind(other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Value::deserialize(d)?;
    as_f64(&v)
}

pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Value::deserialize(d)?;
    match as_f64::<D::Error>(&v)? {
        None => Ok(None),
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => Ok(Some(f as u64)),
        Some(f) => Err(D::Error::custom(format!(
            "expected a non-negative whole number, got {f}"
        ))),
    }
}

/// A list of names, also accepted as a single name (`callbacks: prometheus`).
pub fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(D::Error::custom(format!(
                    "expected a list of names, got an item that is {}",
                    kind(&other)
                ))),
            })
            .collect(),
        other => Err(D::Error::custom(format!(
            "expected a list of names, got {}",
            kind(&other)
        ))),
    }
}

/// Like [`names`], but an absent or `null` list stays `None`: for settings where an empty
/// list means something (`allowed_ips: []` lets nobody in).
pub fn opt_names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    names(v).map(Some).map_err(D::Error::custom)
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            "" => Ok(None),
            _ => Err(D::Error::custom(format!(
                "expected a boolean, got string {s:?}"
            ))),
        },
        other => Err(D::Error::custom(format!(
            "expected a boolean, got {}",
            kind(other)
        ))),
    }
}

/// A LiteLLM duration (`30s`, `30m`, `30h`, `30d`, `2w`, `1mo`, `hourly`, `daily`, `weekly`,
/// `monthly`), checked when the config loads rather than on the first request that needs it.
pub fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) if crate::spend::parse_duration(s).is_some() => Ok(Some(s.trim().into())),
        Value::String(s) => Err(D::Error::custom(format!(
            "expected a duration such as 30s, 30m, 30h, 30d, 2w or 1mo, got {s:?}"
        ))),
        other => Err(D::Error::custom(format!(
            "expected a duration string, got {}",
            kind(other)
        ))),
    }
}
