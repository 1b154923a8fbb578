//! What a logging callback is told about one call: the request facts taken once per request
//! ([`CallCapture`], built only when a logging callback is configured) and the event recorded
//! when an attempt ends ([`CallbackEvent`]: the spend-log row plus output, error and timing).
//!
//! Nothing here runs when no logging callback is configured: the request path checks one
//! `Option` and builds none of it. Payloads (Langfuse spans, LiteLLM's
//! `StandardLoggingPayload`) are built from these by the sink tasks, off the request path.

use crate::api::Usage;
use crate::store::SpendLogRow;
use axum::http::HeaderMap;
use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use std::sync::Arc;

/// LiteLLM's placeholder for redacted messages and output (`REDACTED_BY_LITELLM`).
pub const REDACTED: &str = "redacted-by-litellm";

/// Request fields that are the call's input, not its parameters (LiteLLM's `messages` and
/// friends are logged as input; the rest as `optional_params` / `model_parameters`).
const INPUT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "input",
    "query",
    "documents",
    "system",
    "tools",
    "functions",
    "stream",
];

/// One request's facts as the logging callbacks see them. Shared by its attempts (retries,
/// fallbacks) behind an `Arc`.
#[derive(Debug, Default)]
pub struct CallCapture {
    pub stream: bool,
    /// The request's input as LiteLLM logs it (`messages`, else `prompt`, `input` or `query`);
    /// `None` when message logging is off for the call.
    pub input: Option<Value>,
    /// `tools` and `functions` of the request (part of Langfuse's input); `None` when redacted.
    pub tools: Option<Value>,
    pub functions: Option<Value>,
    /// Everything else the client sent the model (`temperature`, `max_tokens`, ...).
    pub params: Map<String, Value>,
    /// Message logging is off for this call: input and output are LiteLLM's placeholders.
    pub redact: bool,
    /// Some sink needs the response content (and it is not redacted).
    pub wants_output: bool,
    /// The deployment's `model` as configured is not known here; this is the model the client
    /// asked for.
    pub requested_model: String,
    pub route: &'static str,
    pub key_alias: Option<String>,
    pub key_spend: Option<f64>,
    pub key_max_budget: Option<f64>,
    pub key_budget_reset_at: Option<String>,
    pub team_alias: Option<Arc<str>>,
    pub user_email: Option<Arc<str>>,
    pub user_agent: Option<String>,
    /// `langfuse_*` request headers (`langfuse_trace_id: ...`): Langfuse fields by header.
    pub langfuse_headers: Vec<(String, String)>,
    /// The W3C `traceparent` header: the `otel` sink continues the caller's trace.
    pub traceparent: Option<String>,
}

/// Decides whether message logging is off for one request, as LiteLLM does: the request's
/// own `turn_off_message_logging` (body, then its `metadata`) first, then the
/// `litellm-enable-message-redaction` / `x-litellm-enable-message-redaction` headers, then the
/// proxy-wide setting. A client may only turn logging back on (a false value, or the
/// `litellm-disable-message-redaction` header) when its key or team metadata sets
/// `allow_client_message_redaction_opt_out: true`; otherwise LiteLLM strips those.
pub fn redaction(
    global: bool,
    headers: &HeaderMap,
    body_flag: Option<&Value>,
    metadata_flag: Option<&Value>,
    opt_out_allowed: bool,
) -> bool {
    let may_opt_out = opt_out_allowed || !global;
    if may_opt_out && truthy_header(headers, "litellm-disable-message-redaction") {
        return false;
    }
    for flag in [body_flag, metadata_flag].into_iter().flatten() {
        if let Some(b) = flag_value(flag) {
            if b || may_opt_out {
                return b;
            }
        }
    }
    if truthy_header(headers, "litellm-enable-message-redaction")
        || truthy_header(headers, "x-litellm-enable-message-redaction")
    {
        return true;
    }
    global
}

/// A header counts when present and not empty (LiteLLM tests `bool(value)` of its string).
fn truthy_header(headers: &HeaderMap, name: &str) -> bool {
    headers.get(name).is_some_and(|v| !v.as_bytes().is_empty())
}

/// A boolean as LiteLLM's `str_to_bool` reads it (`true`/`false`, `1`/`0`, `yes`/`no`, ...).
fn flag_value(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "t" | "y" | "yes" | "on" => Some(true),
            "false" | "0" | "f" | "n" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

impl CallCapture {
    /// The request's input and parameters, split the way LiteLLM logs them. `body` is the
    /// request with LiteLLM's own fields already removed.
    pub fn split_body(&mut self, body: &Map<String, Value>, native: Option<&Map<String, Value>>) {
        let source = native.unwrap_or(body);
        if !self.redact {
            self.input = ["messages", "prompt", "input", "query"]
                .iter()
                .find_map(|k| source.get(*k))
                .cloned();
            self.tools = source.get("tools").cloned();
            self.functions = source.get("functions").cloned();
        }
        self.params = source
            .iter()
            .filter(|(k, _)| !INPUT_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if self.stream {
            self.params.insert("stream".into(), Value::Bool(true));
        }
    }

    /// Keeps the `langfuse_*` headers, `traceparent` and the user agent.
    pub fn note_headers(&mut self, headers: &HeaderMap) {
        for (name, value) in headers {
            let n = name.as_str();
            if n.starts_with("langfuse_") {
                if let Ok(v) = value.to_str() {
                    self.langfuse_headers.push((n.to_string(), v.to_string()));
                }
            }
        }
        self.traceparent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        self.user_agent = headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
    }
}

/// A response's content as the call produced it, read by the sinks (never on the request
/// path).
#[derive(Debug, Clone)]
pub enum Output {
    /// An OpenAI-format JSON body as it came from upstream (parsed by the sink task).
    Json(bytes::Bytes),
    /// A response already built as a tree (translated providers, mocks).
    Value(Value),
    /// A stream's pieces put back together: a `chat.completion`-shaped object.
    Assembled(Value),
}

impl Output {
    /// The response as JSON, if it is any.
    pub fn to_value(&self) -> Option<Value> {
        match self {
            Self::Json(b) => serde_json::from_slice(b).ok(),
            Self::Value(v) | Self::Assembled(v) => Some(v.clone()),
        }
    }
}

/// The error that ended a failed attempt.
#[derive(Debug, Clone)]
pub struct CallError {
    pub status: u16,
    /// LiteLLM's exception class (`RateLimitError`, `BadRequestError`, ...).
    pub class: &'static str,
    pub message: String,
    pub provider: &'static str,
}

/// What the accounting of one attempt keeps for the callbacks until the attempt ends.
#[derive(Debug)]
pub struct CallbackSlot {
    pub capture: Arc<CallCapture>,
    /// The deployment's `model` as configured (`openai/gpt-4o`): Langfuse's model name.
    pub deployment_model: String,
    pub output: Option<Output>,
    pub error: Option<CallError>,
    /// When the first streamed chunk arrived.
    pub completion_start: Option<NaiveDateTime>,
}

/// One finished attempt, handed to the sink tasks.
#[derive(Debug)]
pub struct CallbackEvent {
    pub log: SpendLogRow,
    pub usage: Usage,
    pub capture: Arc<CallCapture>,
    pub deployment_model: String,
    pub output: Option<Output>,
    pub error: Option<CallError>,
    pub completion_start: Option<NaiveDateTime>,
}

impl CallbackEvent {
    pub fn succeeded(&self) -> bool {
        self.log.status == "success"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn redaction_follows_litellm_priorities() {
        let none = HeaderMap::new();
        assert!(!redaction(false, &none, None, None, false));
        assert!(redaction(true, &none, None, None, false));
        // A request may always turn logging off.
        assert!(redaction(false, &none, Some(&json!(true)), None, false));
        assert!(redaction(false, &none, None, Some(&json!("yes")), false));
        let enable = headers(&[("x-litellm-enable-message-redaction", "true")]);
        assert!(redaction(false, &enable, None, None, false));
        // Turning it back on under a proxy-wide setting needs the key's permission.
        assert!(redaction(true, &none, Some(&json!(false)), None, false));
        assert!(!redaction(true, &none, Some(&json!(false)), None, true));
        let disable = headers(&[("litellm-disable-message-redaction", "true")]);
        assert!(redaction(true, &disable, None, None, false));
        assert!(!redaction(true, &disable, None, None, true));
        // The body flag outranks the enable header.
        assert!(!redaction(false, &enable, Some(&json!(false)), None, false));
    }

    #[test]
    fn body_splits_into_input_and_parameters() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                          "temperature": 0.2, "tools": [{"type": "function"}], "stream": true});
        let mut c = CallCapture {
            stream: true,
            ..Default::default()
        };
        c.split_body(body.as_object().unwrap(), None);
        assert_eq!(c.input, Some(json!([{"role": "user", "content": "hi"}])));
        assert_eq!(c.tools, Some(json!([{"type": "function"}])));
        assert_eq!(
            Value::Object(c.params.clone()),
            json!({"temperature": 0.2, "stream": true})
        );
        let mut r = CallCapture {
            redact: true,
            ..Default::default()
        };
        r.split_body(body.as_object().unwrap(), None);
        assert!(r.input.is_none() && r.tools.is_none());
        assert_eq!(r.params.get("temperature"), Some(&json!(0.2)));
    }
}
