//! LiteLLM's `StandardLoggingPayload` (the JSON object `generic_api` posts and `datadog`
//! wraps) built from a [`CallbackEvent`], and the pieces of a response the sinks log.
//!
//! Pure functions, run on the sink tasks. Field names and placeholders follow LiteLLM 1.106
//! (`litellm_core_utils/litellm_logging.py`, `types/utils.py`); fields this gateway has no
//! counterpart for (guardrails, prompt management, cost breakdowns, ...) are present and null,
//! so a consumer keyed on LiteLLM's schema finds every key.

use super::capture::{CallbackEvent, REDACTED};
use chrono::{NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};

/// Options of the proxy that shape every payload.
#[derive(Debug, Clone, Default)]
pub struct PayloadOptions {
    /// `litellm_settings.redact_user_api_key_info`: no `user_api_key_*` metadata.
    pub redact_key_info: bool,
}

/// Seconds since the epoch, as LiteLLM's payload spells times (`startTime`, `endTime`).
pub fn epoch_secs(t: NaiveDateTime) -> f64 {
    Utc.from_utc_datetime(&t).timestamp_micros() as f64 / 1e6
}

/// A metadata string field, if the request's `metadata` has it as a non-empty value.
pub fn meta_str<'a>(metadata: &'a Value, key: &str) -> Option<&'a str> {
    metadata
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn opt_str(s: Option<&str>) -> Value {
    s.filter(|s| !s.is_empty())
        .map_or(Value::Null, |s| Value::String(s.to_string()))
}

fn opt_f64(x: Option<f64>) -> Value {
    x.map_or(Value::Null, Value::from)
}

/// The call's usage as LiteLLM's `usage_object` spells it.
pub fn usage_object(ev: &CallbackEvent) -> Value {
    let u = &ev.usage;
    let mut o = json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    });
    if u.cached_tokens > 0 {
        o["prompt_tokens_details"] = json!({"cached_tokens": u.cached_tokens});
        o["cache_read_input_tokens"] = json!(u.cached_tokens);
    }
    if u.cache_creation_tokens > 0 {
        o["cache_creation_input_tokens"] = json!(u.cache_creation_tokens);
    }
    if u.reasoning_tokens > 0 {
        o["completion_tokens_details"] = json!({"reasoning_tokens": u.reasoning_tokens});
    }
    o
}

/// `StandardLoggingMetadata`: who made the call (the key, its team and user) and what the
/// request said about itself.
pub fn standard_metadata(ev: &CallbackEvent, opts: &PayloadOptions) -> Map<String, Value> {
    let c = &ev.capture;
    let log = &ev.log;
    let mut m = Map::new();
    let key_fields: [(&str, Value); 19] = [
        ("user_api_key_hash", opt_str(Some(&log.api_key))),
        ("user_api_key_alias", opt_str(c.key_alias.as_deref())),
        ("user_api_key_spend", opt_f64(c.key_spend)),
        ("user_api_key_max_budget", opt_f64(c.key_max_budget)),
        (
            "user_api_key_budget_reset_at",
            opt_str(c.key_budget_reset_at.as_deref()),
        ),
        ("user_api_key_user_spend", Value::Null),
        ("user_api_key_user_max_budget", Value::Null),
        ("user_api_key_team_spend", Value::Null),
        ("user_api_key_team_max_budget", Value::Null),
        (
            "user_api_key_org_id",
            opt_str(log.organization_id.as_deref()),
        ),
        ("user_api_key_org_alias", Value::Null),
        ("user_api_key_team_id", opt_str(log.team_id.as_deref())),
        ("user_api_key_project_id", Value::Null),
        ("user_api_key_project_alias", Value::Null),
        ("user_api_key_user_id", opt_str(Some(&log.user))),
        ("user_api_key_user_email", opt_str(c.user_email.as_deref())),
        ("user_api_key_team_alias", opt_str(c.team_alias.as_deref())),
        ("user_api_key_end_user_id", opt_str(log.end_user.as_deref())),
        ("user_api_key_request_route", opt_str(Some(c.route))),
    ];
    if !opts.redact_key_info {
        for (k, v) in key_fields {
            m.insert(k.into(), v);
        }
        m.insert("user_api_key_auth_metadata".into(), Value::Null);
    }
    let requested = log.metadata.as_object().filter(|o| !o.is_empty());
    m.insert(
        "spend_logs_metadata".into(),
        log.metadata
            .get("spend_logs_metadata")
            .cloned()
            .unwrap_or(Value::Null),
    );
    m.insert("requester_ip_address".into(), Value::Null);
    m.insert("user_agent".into(), opt_str(c.user_agent.as_deref()));
    m.insert(
        "requester_metadata".into(),
        requested.map_or(Value::Null, |o| Value::Object(o.clone())),
    );
    for k in [
        "requester_custom_headers",
        "prompt_management_metadata",
        "mcp_tool_call_metadata",
        "vector_store_request_metadata",
        "routing_decision",
        "applied_guardrails",
    ] {
        m.insert(k.into(), Value::Null);
    }
    m.insert("usage_object".into(), usage_object(ev));
    for k in [
        "cold_storage_object_key",
        "team_alias",
        "team_id",
        "used_client_oauth_token",
    ] {
        m.insert(k.into(), Value::Null);
    }
    m
}

/// The trace id LiteLLM's payload carries: the request metadata's `session_id`, else its
/// `trace_id`, else one per request (the call id here).
pub fn trace_id(ev: &CallbackEvent) -> String {
    let md = &ev.log.metadata;
    meta_str(md, "session_id")
        .or_else(|| meta_str(md, "trace_id"))
        .unwrap_or(&ev.log.request_id)
        .to_string()
}

/// The request's input as LiteLLM logs it (`messages`), or its placeholder when redacted.
pub fn messages(ev: &CallbackEvent) -> Value {
    let c = &ev.capture;
    if c.redact {
        return json!([{"role": "user", "content": REDACTED}]);
    }
    c.input.clone().unwrap_or(Value::Null)
}

/// The response's id when it has one (LiteLLM's payload `id`), else the call id.
pub fn response_id(output: Option<&Value>, call_id: &str) -> String {
    output
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .unwrap_or(call_id)
        .to_string()
}

/// `error_information` of a failed call.
fn error_information(ev: &CallbackEvent) -> Value {
    match &ev.error {
        Some(e) => json!({
            "error_code": e.status.to_string(),
            "error_class": e.class,
            "llm_provider": e.provider,
            "traceback": "",
            "error_message": e.message,
        }),
        None if !ev.succeeded() => json!({
            "error_code": "",
            "error_class": "",
            "llm_provider": ev.log.custom_llm_provider,
            "traceback": "",
            "error_message": "",
        }),
        None => Value::Null,
    }
}

/// Python's `json.dumps` (separators `", "` and `": "`, non-ASCII escaped): LiteLLM's
/// `safe_dumps`, which the `otel` attributes and the `datadog` messages are written with.
pub fn py_json(v: &Value) -> String {
    let mut out = String::new();
    write_py_json(&mut out, v);
    out
}

fn write_py_json(out: &mut String, v: &Value) {
    match v {
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_string(out, k);
                out.push_str(": ");
                write_py_json(out, x);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_json(out, x);
            }
            out.push(']');
        }
        Value::String(s) => write_py_string(out, s),
        Value::Number(n) if n.is_f64() => {
            out.push_str(&crate::api::python_float(n.as_f64().unwrap_or_default()))
        }
        other => out.push_str(&other.to_string()),
    }
}

fn write_py_string(out: &mut String, s: &str) {
    let quoted = Value::String(s.to_string()).to_string();
    for c in quoted.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
}

/// The whole `StandardLoggingPayload` of one call.
pub fn standard_logging_payload(ev: &CallbackEvent, opts: &PayloadOptions) -> Value {
    let log = &ev.log;
    let output = if ev.succeeded() && !ev.capture.redact {
        ev.output.as_ref().and_then(|o| o.to_value())
    } else {
        None
    };
    let response = match (&output, ev.succeeded(), ev.capture.redact) {
        (Some(v), _, _) => v.clone(),
        (None, false, _) => json!({}),
        (None, true, true) => json!({"text": REDACTED}),
        (None, true, false) => Value::Null,
    };
    let mut id = response_id(output.as_ref(), &log.request_id);
    let cache_hit = log.cache_hit == "True";
    if cache_hit {
        id = format!("{id}_cache_hit{}", epoch_secs(log.end_time));
    }
    let start = epoch_secs(log.start_time);
    let end = epoch_secs(log.end_time);
    let completion_start = ev.completion_start.map_or(end, epoch_secs);
    let response_time = if ev.capture.stream {
        completion_start - start
    } else {
        end - start
    };
    let succeeded = ev.succeeded();
    let model_name = log.model.clone();
    let mut p = Map::new();
    p.insert("id".into(), json!(id));
    p.insert("trace_id".into(), json!(trace_id(ev)));
    p.insert("session_id".into(), json!(""));
    p.insert("litellm_call_id".into(), json!(log.request_id));
    p.insert("call_type".into(), json!(log.call_type));
    p.insert(
        "stream".into(),
        if ev.capture.stream {
            Value::Bool(true)
        } else {
            Value::Null
        },
    );
    p.insert("response_cost".into(), json!(log.spend));
    p.insert("cost_breakdown".into(), Value::Null);
    p.insert("autorouter_savings".into(), Value::Null);
    p.insert("autorouter_savings_estimate".into(), Value::Null);
    p.insert("autorouter_baseline_observation".into(), Value::Null);
    p.insert("response_cost_failure_debug_info".into(), Value::Null);
    p.insert("status".into(), json!(log.status));
    p.insert(
        "status_fields".into(),
        json!({
            "llm_api_status": log.status,
            "guardrail_status": "not_run",
        }),
    );
    p.insert("custom_llm_provider".into(), json!(log.custom_llm_provider));
    p.insert("total_tokens".into(), json!(log.total_tokens));
    p.insert("prompt_tokens".into(), json!(log.prompt_tokens));
    p.insert("completion_tokens".into(), json!(log.completion_tokens));
    p.insert("startTime".into(), json!(start));
    p.insert("endTime".into(), json!(end));
    p.insert("completionStartTime".into(), json!(completion_start));
    p.insert("response_time".into(), json!(response_time));
    p.insert(
        "model_map_information".into(),
        json!({"model_map_key": model_name, "model_map_value": Value::Null}),
    );
    p.insert("model".into(), json!(model_name));
    p.insert("model_id".into(), json!(log.model_id));
    p.insert("model_group".into(), json!(log.model_group));
    p.insert("api_base".into(), json!(log.api_base.trim_end_matches('/')));
    p.insert(
        "metadata".into(),
        Value::Object(standard_metadata(ev, opts)),
    );
    p.insert("cache_hit".into(), json!(cache_hit));
    p.insert("cache_key".into(), json!(log.cache_key));
    p.insert("saved_cache_cost".into(), json!(0.0));
    p.insert("request_tags".into(), json!(log.request_tags));
    p.insert(
        "end_user".into(),
        json!(log.end_user.as_deref().filter(|u| !u.is_empty())),
    );
    p.insert("requester_ip_address".into(), Value::Null);
    p.insert("user_agent".into(), json!(ev.capture.user_agent));
    p.insert("messages".into(), messages(ev));
    p.insert("response".into(), response);
    p.insert(
        "error_str".into(),
        json!(ev.error.as_ref().map(|e| e.message.clone())),
    );
    p.insert("error_information".into(), error_information(ev));
    p.insert("model_parameters".into(), json!(ev.capture.params));
    p.insert(
        "hidden_params".into(),
        json!({
            "model_id": log.model_id,
            "cache_key": log.cache_key,
            "api_base": log.api_base,
            "response_cost": if succeeded { Value::from(log.spend) } else { Value::Null },
            "litellm_overhead_time_ms": Value::Null,
            "additional_headers": Value::Null,
            "batch_models": Value::Null,
            "litellm_model_name": log.model,
            "usage_object": usage_object(ev),
        }),
    );
    p.insert("guardrail_information".into(), Value::Null);
    p.insert("standard_built_in_tools_params".into(), Value::Null);
    Value::Object(p)
}

/// What Langfuse logs as a successful call's output, by call type (LiteLLM's
/// `_get_langfuse_input_output_content`): a chat answer's first message (as a JSON object), a
/// text completion's text, the Responses API's `output`, rerank `results`, image `data`;
/// nothing for embeddings and the types it does not recognise.
pub fn langfuse_output(call_type: &str, response: &Value) -> Option<Value> {
    match call_type {
        "acompletion" | "completion" => response.pointer("/choices/0/message").cloned(),
        "atext_completion" | "text_completion" => response.pointer("/choices/0/text").cloned(),
        "aresponses" | "responses" => response.get("output").cloned(),
        "arerank" | "rerank" => response.get("results").cloned(),
        "aimage_generation" | "image_generation" => response.get("data").cloned(),
        "aspeech" | "speech" => Some(Value::String("speech-output".into())),
        _ => None,
    }
}

/// Langfuse's output of a call whose content is redacted: the chat message with its content
/// replaced (other call types keep no output).
pub fn redacted_langfuse_output(call_type: &str) -> Option<Value> {
    match call_type {
        "acompletion" | "completion" => Some(json!({"content": REDACTED, "role": "assistant"})),
        "atext_completion" | "text_completion" => Some(Value::String(REDACTED.into())),
        "aspeech" | "speech" => Some(Value::String("speech-output".into())),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::Usage;
    use crate::callbacks::capture::{CallCapture, CallError, Output};
    use crate::store::SpendLogRow;
    use std::sync::Arc;

    pub(crate) fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    pub(crate) fn event(
        status: &str,
        capture: CallCapture,
        output: Option<Output>,
    ) -> CallbackEvent {
        CallbackEvent {
            log: SpendLogRow {
                request_id: "call-1".into(),
                call_type: "acompletion".into(),
                api_key: "abc123".into(),
                spend: 0.00025,
                total_tokens: 10,
                prompt_tokens: 7,
                completion_tokens: 3,
                start_time: ts("2025-01-02 03:04:05.000"),
                end_time: ts("2025-01-02 03:04:06.500"),
                request_duration_ms: Some(1500),
                completion_start_time: None,
                model: "gpt-4o".into(),
                model_id: "dep-1".into(),
                model_group: "gpt-4o".into(),
                custom_llm_provider: "openai".into(),
                api_base: "https://api.example/v1/".into(),
                user: "user-1".into(),
                metadata: json!({"trace_id": "tr-9", "generation_name": "gen"}),
                cache_hit: "False".into(),
                cache_key: None,
                request_tags: json!(["a", "b"]),
                team_id: Some("team-1".into()),
                organization_id: None,
                end_user: Some(String::new()),
                status: status.to_owned().into(),
            },
            usage: Usage::new(7, 3),
            capture: Arc::new(capture),
            deployment_model: "openai/gpt-4o".into(),
            output,
            error: (status != "success").then(|| CallError {
                status: 429,
                class: "RateLimitError",
                message: "litellm.RateLimitError: slow down".into(),
                provider: "openai",
            }),
            completion_start: None,
        }
    }

    pub(crate) fn chat_capture() -> CallCapture {
        CallCapture {
            input: Some(json!([{"role": "user", "content": "hi"}])),
            params: json!({"temperature": 0.1}).as_object().unwrap().clone(),
            key_alias: Some("my-key".into()),
            team_alias: Some(Arc::from("team-a")),
            route: "/chat/completions",
            ..Default::default()
        }
    }

    const BODY: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#;

    #[test]
    fn success_payload_has_litellm_fields() {
        let ev = event(
            "success",
            chat_capture(),
            Some(Output::Json(bytes::Bytes::from_static(BODY.as_bytes()))),
        );
        let p = standard_logging_payload(&ev, &PayloadOptions::default());
        assert_eq!(p["id"], "chatcmpl-1");
        assert_eq!(p["litellm_call_id"], "call-1");
        assert_eq!(p["trace_id"], "tr-9");
        assert_eq!(p["status"], "success");
        assert_eq!(p["response_cost"], 0.00025);
        assert_eq!(p["prompt_tokens"], 7);
        assert_eq!(p["startTime"], 1735787045.0);
        assert_eq!(p["endTime"], 1735787046.5);
        assert_eq!(p["completionStartTime"], 1735787046.5);
        assert_eq!(p["response_time"], 1.5);
        assert_eq!(p["api_base"], "https://api.example/v1");
        assert_eq!(p["messages"][0]["content"], "hi");
        assert_eq!(p["response"]["choices"][0]["message"]["content"], "hello");
        assert_eq!(p["metadata"]["user_api_key_alias"], "my-key");
        assert_eq!(p["metadata"]["user_api_key_team_alias"], "team-a");
        assert_eq!(p["metadata"]["user_api_key_end_user_id"], Value::Null);
        assert_eq!(
            p["metadata"]["requester_metadata"]["generation_name"],
            "gen"
        );
        assert_eq!(p["model_parameters"]["temperature"], 0.1);
        assert_eq!(p["error_information"], Value::Null);
        assert_eq!(p["request_tags"], json!(["a", "b"]));
    }

    #[test]
    fn failure_and_redaction() {
        let ev = event("failure", chat_capture(), None);
        let p = standard_logging_payload(&ev, &PayloadOptions::default());
        assert_eq!(p["status"], "failure");
        assert_eq!(p["response"], json!({}));
        assert_eq!(p["error_str"], "litellm.RateLimitError: slow down");
        assert_eq!(p["error_information"]["error_code"], "429");
        assert_eq!(p["error_information"]["error_class"], "RateLimitError");
        let redacted = CallCapture {
            redact: true,
            ..chat_capture()
        };
        let ev = event(
            "success",
            CallCapture {
                input: None,
                ..redacted
            },
            None,
        );
        let p = standard_logging_payload(
            &ev,
            &PayloadOptions {
                redact_key_info: true,
            },
        );
        assert_eq!(
            p["messages"],
            json!([{"role": "user", "content": REDACTED}])
        );
        assert_eq!(p["response"], json!({"text": REDACTED}));
        assert!(p["metadata"].get("user_api_key_alias").is_none());
    }

    #[test]
    fn langfuse_output_by_call_type() {
        let r: Value = serde_json::from_str(BODY).unwrap();
        assert_eq!(
            langfuse_output("acompletion", &r),
            Some(json!({"role": "assistant", "content": "hello"}))
        );
        assert_eq!(langfuse_output("aembedding", &r), None);
        let t = json!({"choices": [{"text": "abc"}]});
        assert_eq!(langfuse_output("atext_completion", &t), Some(json!("abc")));
    }
}
