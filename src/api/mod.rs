//! OpenAI wire types the gateway reads: the typed core of requests and `usage`.
//!
//! Requests are kept as a JSON map (so unknown fields pass through untouched) and validated
//! here field by field, so a wrong type is a 400 naming the field rather than a serde error.
//! LiteLLM-only fields are split off into [`LitellmExtras`] before anything goes upstream.

pub mod form;
pub mod json_out;
pub mod messages;
pub mod response_id;
pub mod rewrite;
pub mod usage;
pub mod validate;

pub use usage::Usage;

use crate::error::{ApiError, ApiResult};
use serde_json::{Map, Value};

/// LiteLLM-specific request fields: read by the gateway, never forwarded upstream.
#[derive(Debug, Default, Clone)]
pub struct LitellmExtras {
    pub metadata: Option<Value>,
    pub tags: Vec<String>,
    pub mock_response: Option<Value>,
    pub fallbacks: Option<Value>,
    pub num_retries: Option<u64>,
    pub timeout: Option<f64>,
    pub stream_timeout: Option<f64>,
    pub drop_params: Option<bool>,
    pub additional_drop_params: Vec<String>,
    pub api_base: Option<String>,
    pub api_key: Option<String>,
    pub api_version: Option<String>,
    pub mock_testing_fallbacks: bool,
    pub mock_testing_rate_limit_error: bool,
    /// Anything else LiteLLM strips (`cache`, `user_config`, `guardrails`, ...), kept for
    /// later stages.
    pub other: Map<String, Value>,
}

/// Request body fields that belong to LiteLLM, not to the provider.
pub(crate) const LITELLM_FIELDS: &[&str] = &[
    "metadata",
    "litellm_metadata",
    "tags",
    "mock_response",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "num_retries",
    "timeout",
    "stream_timeout",
    "cache",
    "caching",
    "user_config",
    "guardrails",
    "drop_params",
    "additional_drop_params",
    "mock_testing_fallbacks",
    "mock_testing_context_fallbacks",
    "mock_testing_rate_limit_error",
    "mock_testing_content_policy_fallbacks",
    "prompt_id",
    "prompt_variables",
    "api_key",
    "api_base",
    "base_url",
    "api_version",
    "litellm_call_id",
    "litellm_logging_obj",
    "proxy_server_request",
    "secret_fields",
    "allowed_openai_params",
];

impl LitellmExtras {
    /// Removes LiteLLM's fields from `body` and returns them, checking their types.
    pub fn split_from(body: &mut Map<String, Value>) -> ApiResult<Self> {
        let mut ex = Self::default();
        // Most bodies carry none of these fields: checking the body's few keys against the
        // list is far cheaper than removing (hashing) all 31 names from the body.
        if !body.keys().any(|k| LITELLM_FIELDS.contains(&k.as_str())) {
            return Ok(ex);
        }
        for name in LITELLM_FIELDS {
            let Some(v) = body.remove(*name) else {
                continue;
            };
            if v.is_null() {
                continue;
            }
            match *name {
                "metadata" | "litellm_metadata" => {
                    if !v.is_object() {
                        return Err(type_error(name, "an object", &v));
                    }
                    if let Some(Value::Array(t)) = v.field("tags") {
                        ex.tags
                            .extend(t.iter().filter_map(|x| x.as_str().map(String::from)));
                    }
                    ex.metadata = Some(v);
                }
                "tags" => match &v {
                    Value::Array(items) if items.iter().all(Value::is_string) => ex
                        .tags
                        .extend(items.iter().filter_map(|x| x.as_str().map(String::from))),
                    _ => return Err(type_error(name, "a list of strings", &v)),
                },
                "mock_response" => ex.mock_response = Some(v),
                "fallbacks" => ex.fallbacks = Some(v),
                "num_retries" => ex.num_retries = Some(validate::as_u64(name, &v)?),
                "timeout" => ex.timeout = Some(validate::as_f64(name, &v)?),
                "stream_timeout" => ex.stream_timeout = Some(validate::as_f64(name, &v)?),
                "drop_params" => ex.drop_params = Some(validate::as_bool(name, &v)?),
                "additional_drop_params" => match &v {
                    Value::Array(items) => ex
                        .additional_drop_params
                        .extend(items.iter().filter_map(|x| x.as_str().map(String::from))),
                    _ => return Err(type_error(name, "a list of strings", &v)),
                },
                "api_base" | "base_url" => ex.api_base = Some(validate::as_string(name, &v)?),
                "api_key" => ex.api_key = Some(validate::as_string(name, &v)?),
                "api_version" => ex.api_version = Some(validate::as_string(name, &v)?),
                "mock_testing_fallbacks" => {
                    ex.mock_testing_fallbacks = validate::as_bool(name, &v)?
                }
                "mock_testing_rate_limit_error" => {
                    ex.mock_testing_rate_limit_error = validate::as_bool(name, &v)?
                }
                _ => {
                    ex.other.insert((*name).to_string(), v);
                }
            }
        }
        Ok(ex)
    }
}

/// Looks a field up in a JSON object of a request or response. Those objects hold a handful
/// of members, and with the key order kept, `Map::get` hashes the key with SipHash (about 250
/// instructions) before probing; comparing against each key is a tenth of that. Larger
/// objects take the hash. A parsed object holds each key once, so both find the same member.
pub(crate) trait Field {
    fn field(&self, key: &str) -> Option<&Value>;
}

/// Up to this many members, a lookup walks the keys.
const WALK_AT_MOST: usize = 16;

impl Field for Map<String, Value> {
    #[inline]
    fn field(&self, key: &str) -> Option<&Value> {
        if self.len() <= WALK_AT_MOST {
            self.iter().find_map(|(k, v)| (k == key).then_some(v))
        } else {
            self.get(key)
        }
    }
}

impl Field for Value {
    #[inline]
    fn field(&self, key: &str) -> Option<&Value> {
        self.as_object()?.field(key)
    }
}

pub(crate) fn type_error(field: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid value for '{field}': expected {expected}, got {}.",
        validate::describe(got)
    ))
    .with_param(field)
}

/// A float as Python's `str()` spells it, which is how LiteLLM writes its cost headers: the
/// shortest digits that read back to the same value, in positional notation for decimal
/// exponents -4 to 15 (`0.000225`, `123.0`) and in scientific notation outside them
/// (`2.5e-05`, `1e+16`). Checked against Python on 20,000 random values: the only differences
/// are in the last digit of values above 10^13 that lie exactly halfway between two shortest
/// spellings (Python rounds those to even), far beyond any cost.
pub(crate) fn python_float(x: f64) -> String {
    use std::io::Write;
    if !x.is_finite() {
        return if x.is_nan() {
            "nan"
        } else if x > 0.0 {
            "inf"
        } else {
            "-inf"
        }
        .into();
    }
    // `{:e}` gives the same shortest digits (`-1.2345e3`, `2.5e-5`, `0e0`), written on the
    // stack: the only allocation is the returned text.
    let mut sci = [0u8; 32];
    let mut w = &mut sci[..];
    let _ = write!(w, "{x:e}");
    let len = 32 - w.len();
    let sci = &sci[..len];
    let e = sci.iter().position(|&b| b == b'e').unwrap_or(len);
    let exp: i32 = std::str::from_utf8(sci.get(e + 1..).unwrap_or_default())
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let negative = sci.first() == Some(&b'-');
    let digits = sci[..e].iter().copied().filter(u8::is_ascii_digit);
    let n = digits.clone().count();
    let mut out = String::with_capacity(n + 8);
    if negative {
        out.push('-');
    }
    if !(-4..16).contains(&exp) {
        for (i, d) in digits.enumerate() {
            if i == 1 {
                out.push('.');
            }
            out.push(char::from(d));
        }
        let _ = std::fmt::Write::write_fmt(
            &mut out,
            format_args!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs()),
        );
        return out;
    }
    if exp < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.extend(digits.map(char::from));
    } else {
        let whole = exp as usize + 1;
        for (i, d) in digits.enumerate() {
            if i == whole {
                out.push('.');
            }
            out.push(char::from(d));
        }
        if n <= whole {
            out.extend(std::iter::repeat_n('0', whole - n));
            out.push_str(".0");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Field;
    use serde_json::{json, Map, Value};

    #[test]
    fn field_finds_what_get_finds_in_small_and_large_objects() {
        for n in [0, 1, 2, super::WALK_AT_MOST, super::WALK_AT_MOST + 1, 40] {
            let m: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
            for i in 0..n + 2 {
                let k = format!("k{i}");
                assert_eq!(m.field(&k), m.get(&k), "{n} members, key {k}");
            }
            assert_eq!(m.field(""), None);
        }
        assert_eq!(json!({"a": 1}).field("a"), Some(&json!(1)));
        assert_eq!(json!([1]).field("a"), None);
        assert_eq!(json!("a").field("a"), None);
    }
}
