//! Cohere's v2 API as an upstream: OpenAI chat request -> `/v2/chat` body, Cohere responses and
//! stream events -> OpenAI shapes, Cohere errors -> LiteLLM's errors, plus the `/v2/embed` and
//! `/v2/rerank` translations.
//!
//! Pure translation, no I/O. Chat v2 is close to OpenAI's: messages keep their roles
//! (`developer` becomes `system`), function tools and assistant `tool_calls` keep OpenAI's shape,
//! and only the sampling names differ (`p` <- `top_p`, `k` <- `top_k`, `stop_sequences` <-
//! `stop`). `tool_choice` exists only as `REQUIRED` / `NONE`; a named function is served as
//! `REQUIRED` with `tools` narrowed to that function. The model's `tool_plan` (what it means to do
//! before calling tools) is surfaced as `reasoning_content`, and an assistant message's
//! `reasoning_content` goes back as its `tool_plan`. `finish_reason` `ERROR` / `TIMEOUT` map to
//! `stop` (OpenAI has no error finish reason; LiteLLM does the same for `ERROR`) and
//! `ERROR_TOXIC` to `content_filter`.

use super::params::{self, ParamPolicy};
use super::stream::StreamItem;
use super::Provider;
use crate::api::Usage;
use crate::error::{ApiError, ApiResult, ErrorClass};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};

/// Cohere's API root when the deployment sets no `api_base`.
pub const DEFAULT_API_BASE: &str = "https://api.cohere.com";
/// The `input_type` Cohere embeddings use when the request names none (LiteLLM's default).
pub const DEFAULT_INPUT_TYPE: &str = "search_document";

/// OpenAI parameters the adapter translates.
pub const SUPPORTED: &[&str] = &[
    "stream",
    "stream_options",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "extra_headers",
    "thinking",
];

/// `{base}/v2/{endpoint}` (`chat`, `embed`, `rerank`) for an `api_base` given bare, with `/v1`
/// or `/v2`, or as the full endpoint URL.
pub fn url(base: &str, endpoint: &str) -> String {
    let base = base.trim_end_matches('/');
    let full = format!("/v2/{endpoint}");
    if base.ends_with(&full) {
        return base.to_string();
    }
    let root = base
        .strip_suffix("/v2")
        .or_else(|| base.strip_suffix("/v1"))
        .unwrap_or(base);
    format!("{root}{full}")
}

/// Translates an OpenAI chat body (deployment defaults already merged) into a Cohere `/v2/chat`
/// body for `model`.
pub fn chat_body(
    mut body: Map<String, Value>,
    model: &str,
    stream: bool,
    policy: &ParamPolicy<'_>,
) -> ApiResult<Map<String, Value>> {
    params::apply(&mut body, SUPPORTED, policy, Provider::Cohere, model)?;
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    let messages = match body.remove("messages") {
        Some(Value::Array(m)) => m,
        _ => Vec::new(),
    };
    out.insert("messages".into(), Value::Array(convert_messages(messages)?));
    let max_tokens =
        take(&mut body, "max_tokens").or_else(|| take(&mut body, "max_completion_tokens"));
    body.remove("max_completion_tokens");
    if let Some(m) = max_tokens {
        out.insert("max_tokens".into(), m);
    }
    if let Some(p) = take(&mut body, "top_p") {
        out.insert("p".into(), p);
    }
    if let Some(k) = take(&mut body, "top_k") {
        out.insert("k".into(), k);
    }
    match body.remove("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a));
        }
        _ => {}
    }
    if let Some(rf) = body.remove("response_format").and_then(response_format) {
        out.insert("response_format".into(), rf);
    }
    let mut tools = match body.remove("tools") {
        Some(Value::Array(t)) if !t.is_empty() => Some(t),
        _ => None,
    };
    match body.remove("tool_choice") {
        Some(Value::String(s)) => match s.as_str() {
            "required" | "any" => {
                out.insert("tool_choice".into(), json!("REQUIRED"));
            }
            "none" => {
                out.insert("tool_choice".into(), json!("NONE"));
            }
            _ => {} // "auto" is Cohere's default.
        },
        Some(choice @ Value::Object(_)) => {
            if let Some(name) = choice.pointer("/function/name").and_then(Value::as_str) {
                let named: Vec<Value> = tools
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name))
                    .collect();
                if named.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "Invalid 'tool_choice': function '{name}' is not one of the request's tools."
                    ))
                    .with_param("tool_choice"));
                }
                tools = Some(named);
                out.insert("tool_choice".into(), json!("REQUIRED"));
            }
        }
        _ => {}
    }
    if let Some(t) = tools {
        // Cohere v2 takes OpenAI's `{type: function, function: {name, description, parameters}}`.
        out.insert("tools".into(), Value::Array(t));
    }
    if let Some(Value::Object(mut t)) = body.remove("thinking") {
        // Anthropic-style `budget_tokens` is Cohere's `token_budget`.
        if let Some(b) = t.remove("budget_tokens") {
            t.entry("token_budget").or_insert(b);
        }
        out.insert("thinking".into(), Value::Object(t));
    }
    for k in ["stream_options", "extra_headers", "stream"] {
        body.remove(k);
    }
    if stream {
        out.insert("stream".into(), Value::Bool(true));
    }
    // temperature, seed, frequency/presence penalties and Cohere extras (`safety_mode`,
    // `documents`, `strict_tools`, ...) go as they are.
    for (k, v) in body {
        if !v.is_null() {
            out.entry(k).or_insert(v);
        }
    }
    Ok(out)
}

/// Removes `key`, treating an explicit `null` as absent.
fn take(body: &mut Map<String, Value>, key: &str) -> Option<Value> {
    body.remove(key).filter(|v| !v.is_null())
}

fn response_format(rf: Value) -> Option<Value> {
    match rf.get("type").and_then(Value::as_str)? {
        "json_object" => Some(json!({"type": "json_object"})),
        "json_schema" => {
            let schema = rf
                .pointer("/json_schema/schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            Some(json!({"type": "json_object", "json_schema": schema}))
        }
        _ => None, // "text" is the default.
    }
}

/// OpenAI messages -> Cohere v2 messages, keeping only the fields Cohere knows per role.
fn convert_messages(messages: Vec<Value>) -> ApiResult<Vec<Value>> {
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        let Value::Object(mut m) = m else {
            continue;
        };
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user")
            .to_string();
        let msg = match role.as_str() {
            "system" | "developer" => {
                json!({"role": "system", "content": text_content(m.remove("content"))})
            }
            "user" => json!({"role": "user", "content": user_content(m.remove("content"))}),
            "assistant" => match assistant_message(&mut m) {
                Some(a) => a,
                None => continue,
            },
            "tool" | "function" => {
                let id = m
                    .remove("tool_call_id")
                    .or_else(|| m.remove("name"))
                    .unwrap_or(Value::String(String::new()));
                json!({"role": "tool", "tool_call_id": id, "content": text_content(m.remove("content"))})
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid 'messages[{i}].role': '{other}' is not one of system, developer, user, assistant, tool, function."
                ))
                .with_param("messages"))
            }
        };
        out.push(msg);
    }
    Ok(out)
}

/// String content as it is; parts as Cohere text parts (other parts pass for Cohere to judge).
fn text_content(content: Option<Value>) -> Value {
    match content {
        Some(Value::String(s)) => Value::String(s),
        Some(Value::Array(parts)) => Value::Array(
            parts
                .into_iter()
                .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                    Some("text") | None => p
                        .get("text")
                        .and_then(Value::as_str)
                        .map(|t| json!({"type": "text", "text": t})),
                    Some(_) => Some(p),
                })
                .collect(),
        ),
        Some(Value::Null) | None => Value::String(String::new()),
        Some(other) => Value::String(other.to_string()),
    }
}

fn user_content(content: Option<Value>) -> Value {
    let Some(Value::Array(parts)) = content else {
        return text_content(content);
    };
    Value::Array(
        parts
            .into_iter()
            .map(|p| match p.get("type").and_then(Value::as_str) {
                Some("image_url") => {
                    let iu = p.get("image_url");
                    let url = iu
                        .and_then(|u| u.get("url").or(Some(u)))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let mut image = Map::new();
                    image.insert("url".into(), Value::String(url.to_string()));
                    if let Some(d) = iu.and_then(|u| u.get("detail")).filter(|d| d.is_string()) {
                        image.insert("detail".into(), d.clone());
                    }
                    json!({"type": "image_url", "image_url": image})
                }
                Some("text") | None => json!({
                    "type": "text",
                    "text": p.get("text").and_then(Value::as_str).unwrap_or_default(),
                }),
                Some(_) => p,
            })
            .collect(),
    )
}

/// An assistant turn; `None` when it carries nothing Cohere accepts (no text, no tool calls).
fn assistant_message(m: &mut Map<String, Value>) -> Option<Value> {
    let mut out = Map::new();
    out.insert("role".into(), json!("assistant"));
    match m.remove("content") {
        Some(Value::String(s)) if !s.is_empty() => {
            out.insert("content".into(), Value::String(s));
        }
        Some(Value::Array(parts)) if !parts.is_empty() => {
            out.insert("content".into(), text_content(Some(Value::Array(parts))));
        }
        _ => {}
    }
    let calls: Vec<Value> = match m.remove("tool_calls") {
        Some(Value::Array(c)) => c.into_iter().map(tool_call).collect(),
        _ => Vec::new(),
    };
    if !calls.is_empty() {
        let plan = m
            .remove("tool_plan")
            .or_else(|| m.remove("reasoning_content"))
            .filter(|p| p.as_str().is_some_and(|s| !s.is_empty()));
        if let Some(p) = plan {
            out.insert("tool_plan".into(), p);
        }
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    (out.len() > 1).then_some(Value::Object(out))
}

/// An OpenAI tool call in Cohere's (identical) shape, `arguments` always a JSON string.
fn tool_call(c: Value) -> Value {
    let args = match c.pointer("/function/arguments") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "{}".to_string(),
        Some(other) => other.to_string(),
    };
    json!({
        "id": c.get("id").cloned().unwrap_or(Value::String(String::new())),
        "type": "function",
        "function": {
            "name": c.pointer("/function/name").cloned().unwrap_or(Value::String(String::new())),
            "arguments": args,
        },
    })
}

/// Cohere `finish_reason` -> OpenAI `finish_reason`.
pub fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "TOOL_CALL" => "tool_calls",
        "ERROR_TOXIC" => "content_filter",
        // COMPLETE, STOP_SEQUENCE, and ERROR / TIMEOUT, which OpenAI cannot express.
        _ => "stop",
    }
}

/// Cohere `usage` -> OpenAI `usage`: `tokens` (what the model saw), else `billed_units`.
pub fn usage_json(u: &Value) -> Value {
    let counts = u
        .get("tokens")
        .filter(|t| t.get("input_tokens").is_some() || t.get("output_tokens").is_some())
        .or_else(|| u.get("billed_units"))
        .unwrap_or(&Value::Null);
    let n = |k: &str| {
        counts
            .get(k)
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
            .unwrap_or(0)
    };
    Usage::new(n("input_tokens"), n("output_tokens")).to_json()
}

fn openai_tool_calls(calls: Option<&Value>) -> Vec<Value> {
    calls
        .and_then(Value::as_array)
        .map(|c| c.iter().cloned().map(tool_call).collect())
        .unwrap_or_default()
}

/// A non-streaming Cohere `/v2/chat` response as an OpenAI chat completion.
pub fn parse_chat(bytes: &[u8], model: &str) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad_body(&e.to_string()))?;
    let msg = v
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| bad_body("no `message` object"))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    for part in msg
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match part.get("type").and_then(Value::as_str) {
            Some("thinking") => {
                reasoning.push_str(part.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            _ => text.push_str(part.get("text").and_then(Value::as_str).unwrap_or("")),
        }
    }
    if let Some(plan) = msg.get("tool_plan").and_then(Value::as_str) {
        reasoning.push_str(plan);
    }
    let tool_calls = openai_tool_calls(msg.get("tool_calls"));
    let mut message = Map::new();
    message.insert(
        "content".into(),
        if text.is_empty() && !tool_calls.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        },
    );
    message.insert("role".into(), json!("assistant"));
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    let finish = finish_reason(v.get("finish_reason").and_then(Value::as_str).unwrap_or(""));
    Ok(super::shape::completion(
        v.get("id")
            .filter(|i| i.is_string())
            .cloned()
            .unwrap_or_else(|| json!(super::mock::new_chat_id())),
        Value::String(model.to_string()),
        json!([{"finish_reason": finish, "index": 0, "message": message}]),
        usage_json(v.get("usage").unwrap_or(&Value::Null)),
    ))
}

fn bad_body(why: &str) -> ApiError {
    ApiError::internal(format!(
        "litellm.APIError: APIError: CohereException - unexpected response body: {why}"
    ))
}

/// Maps a Cohere error response (`{"message": "..."}`). A 400 saying the prompt has too many
/// tokens is a context-window error.
pub fn map_error(status: u16, body: &[u8]) -> ApiError {
    let mut e = super::openai::map_error(Provider::Cohere, status, body);
    if e.class == ErrorClass::BadRequest
        && e.message.to_ascii_lowercase().contains("too many tokens")
    {
        let (from, to) = (
            ErrorClass::BadRequest.litellm_name(),
            ErrorClass::ContextWindowExceeded.litellm_name(),
        );
        e.message = e.message.replacen(
            &format!("litellm.{from}: {from}:"),
            &format!("litellm.{to}: {to}:"),
            1,
        );
        e.class = ErrorClass::ContextWindowExceeded;
    }
    e
}

/// Cohere v2 stream events (SSE `data` of each event) -> OpenAI chunks.
#[derive(Debug)]
pub struct StreamState {
    id: String,
    model: String,
    created: i64,
    /// Cohere tool call index -> OpenAI tool call index.
    tool_index: HashMap<u64, u64>,
    next_tool: u64,
    done: bool,
}

impl StreamState {
    pub fn new(model: &str) -> Self {
        Self {
            id: super::mock::new_chat_id(),
            model: model.to_string(),
            created: chrono::Utc::now().timestamp(),
            tool_index: HashMap::new(),
            next_tool: 0,
            done: false,
        }
    }

    fn base(&self) -> Map<String, Value> {
        super::shape::chunk_map(&self.id, self.created, &self.model, json!([]))
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> StreamItem {
        super::shape::chunk(&self.id, self.created, &self.model, delta, finish)
    }

    /// Handles one SSE event's `data`.
    pub fn on_event(&mut self, data: &str, out: &mut VecDeque<StreamItem>) {
        if self.done || data.trim().is_empty() {
            return;
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                out.push_back(StreamItem::Error(bad_body(&format!(
                    "invalid stream event: {e}"
                ))));
                return;
            }
        };
        let delta = v.pointer("/delta/message").unwrap_or(&Value::Null);
        let s = |p: &str| delta.pointer(p).and_then(Value::as_str).unwrap_or("");
        match v.get("type").and_then(Value::as_str) {
            Some("message-start") => {
                if let Some(id) = v.get("id").and_then(Value::as_str) {
                    self.id = id.to_string();
                }
                out.push_back(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            Some("content-start" | "content-delta") => {
                let (text, thinking) = (s("/content/text"), s("/content/thinking"));
                if !text.is_empty() {
                    out.push_back(self.chunk(json!({"content": text}), None));
                }
                if !thinking.is_empty() {
                    out.push_back(self.chunk(json!({"reasoning_content": thinking}), None));
                }
            }
            Some("tool-plan-delta") => {
                let plan = s("/tool_plan");
                if !plan.is_empty() {
                    out.push_back(self.chunk(json!({"reasoning_content": plan}), None));
                }
            }
            Some("tool-call-start") => {
                let k = self.next_tool;
                self.next_tool += 1;
                if let Some(idx) = v.get("index").and_then(Value::as_u64) {
                    self.tool_index.insert(idx, k);
                }
                let call = delta.get("tool_calls").unwrap_or(&Value::Null);
                out.push_back(self.chunk(
                    json!({"tool_calls": [{
                        "index": k,
                        "id": call.get("id").cloned().unwrap_or(Value::Null),
                        "type": "function",
                        "function": {
                            "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
                            "arguments": call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or(""),
                        },
                    }]}),
                    None,
                ));
            }
            Some("tool-call-delta") => {
                let k = v
                    .get("index")
                    .and_then(Value::as_u64)
                    .and_then(|i| self.tool_index.get(&i).copied())
                    .unwrap_or(self.next_tool.saturating_sub(1));
                out.push_back(self.chunk(
                    json!({"tool_calls": [{
                        "index": k,
                        "function": {"arguments": s("/tool_calls/function/arguments")},
                    }]}),
                    None,
                ));
            }
            Some("message-end") => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                let finish =
                    finish_reason(d.get("finish_reason").and_then(Value::as_str).unwrap_or(""));
                out.push_back(self.chunk(json!({}), Some(finish)));
                let mut c = self.base();
                c.insert("choices".into(), json!([]));
                c.insert(
                    "usage".into(),
                    usage_json(d.get("usage").unwrap_or(&Value::Null)),
                );
                out.push_back(StreamItem::Chunk(c));
                out.push_back(StreamItem::Done);
                self.done = true;
            }
            // An error object in place of an event.
            None if v.get("message").is_some_and(Value::is_string) => {
                out.push_back(StreamItem::Error(map_error(500, data.as_bytes())));
            }
            // tool-call-end, content-end, citation-start/end, debug.
            _ => {}
        }
    }
}

/// An OpenAI embeddings body -> a Cohere `/v2/embed` body (float embeddings; `dimensions` ->
/// `output_dimension`; `input_type` and `truncate` from the request when given).
pub fn embed_body(body: &Map<String, Value>, model: &str) -> ApiResult<Map<String, Value>> {
    let texts: Vec<Value> = match body.get("input") {
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "Cohere embeddings take `input` as a string or a list of strings (token arrays are not supported).",
            )
            .with_param("input"))
        }
    };
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    out.insert("texts".into(), Value::Array(texts));
    out.insert(
        "input_type".into(),
        body.get("input_type")
            .filter(|t| t.is_string())
            .cloned()
            .unwrap_or_else(|| json!(DEFAULT_INPUT_TYPE)),
    );
    out.insert("embedding_types".into(), json!(["float"]));
    if let Some(d) = body.get("dimensions").filter(|d| d.is_u64()) {
        out.insert("output_dimension".into(), d.clone());
    }
    if let Some(t) = body.get("truncate").filter(|t| t.is_string()) {
        out.insert("truncate".into(), t.clone());
    }
    Ok(out)
}

/// A Cohere `/v2/embed` response as an OpenAI embeddings list.
pub fn parse_embed(bytes: &[u8], model: &str) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad_body(&e.to_string()))?;
    let vectors = v
        .pointer("/embeddings/float")
        .or_else(|| v.get("embeddings").filter(|e| e.is_array()))
        .and_then(Value::as_array)
        .ok_or_else(|| bad_body("no `embeddings.float` array"))?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"object": "embedding", "index": i, "embedding": e}))
        .collect();
    let tokens = v
        .pointer("/meta/billed_units/input_tokens")
        .and_then(|t| t.as_u64().or_else(|| t.as_f64().map(|f| f as u64)))
        .unwrap_or(0);
    let mut out = Map::new();
    out.insert("object".into(), json!("list"));
    out.insert("data".into(), Value::Array(data));
    out.insert("model".into(), Value::String(model.to_string()));
    out.insert(
        "usage".into(),
        json!({"prompt_tokens": tokens, "total_tokens": tokens}),
    );
    Ok(out)
}

/// A rerank request (LiteLLM's Cohere-style body) -> a Cohere `/v2/rerank` body. Documents given
/// as objects are sent as their `text` (or, without one, as their JSON).
pub fn rerank_body(body: &Map<String, Value>, model: &str) -> ApiResult<Map<String, Value>> {
    let query = body.get("query").and_then(Value::as_str).ok_or_else(|| {
        ApiError::bad_request("rerank requires a string `query`").with_param("query")
    })?;
    let documents: Vec<Value> = body
        .get("documents")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::bad_request("rerank requires a list of `documents`").with_param("documents")
        })?
        .iter()
        .map(|d| match d {
            Value::String(_) => d.clone(),
            other => match other.get("text").and_then(Value::as_str) {
                Some(t) => Value::String(t.to_string()),
                None => Value::String(other.to_string()),
            },
        })
        .collect();
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    out.insert("query".into(), Value::String(query.to_string()));
    out.insert("documents".into(), Value::Array(documents));
    for k in ["top_n", "max_tokens_per_doc"] {
        if let Some(v) = body.get(k).filter(|v| v.is_u64()) {
            out.insert(k.into(), v.clone());
        }
    }
    Ok(out)
}

/// A Cohere `/v2/rerank` response as LiteLLM's rerank response
/// (`{id, results: [{index, relevance_score, document?}], meta}`).
pub fn parse_rerank(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad_body(&e.to_string()))?;
    let results: Vec<Value> = v
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_body("no `results` array"))?
        .iter()
        .map(|r| {
            let mut o = Map::new();
            o.insert(
                "index".into(),
                r.get("index").cloned().unwrap_or(Value::Null),
            );
            o.insert(
                "relevance_score".into(),
                r.get("relevance_score").cloned().unwrap_or(Value::Null),
            );
            if let Some(d) = r.get("document").filter(|d| !d.is_null()) {
                o.insert("document".into(), d.clone());
            }
            Value::Object(o)
        })
        .collect();
    let mut out = Map::new();
    out.insert(
        "id".into(),
        v.get("id")
            .filter(|i| i.is_string())
            .cloned()
            .unwrap_or_else(|| json!(uuid::Uuid::new_v4().to_string())),
    );
    out.insert("results".into(), Value::Array(results));
    out.insert(
        "meta".into(),
        v.get("meta").cloned().unwrap_or_else(|| json!({})),
    );
    Ok(out)
}

/// Fills `document: {text}` on each rerank result from the request's `documents` (Cohere v2
/// does not echo them; call this when the client asked for `return_documents`).
pub fn attach_documents(resp: &mut Map<String, Value>, documents: &[Value]) {
    let Some(Value::Array(results)) = resp.get_mut("results") else {
        return;
    };
    for r in results {
        let Some(o) = r.as_object_mut() else {
            continue;
        };
        if o.contains_key("document") {
            continue;
        }
        let doc = o
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| documents.get(i));
        let text = match doc {
            Some(Value::String(s)) => s.clone(),
            Some(d) => match d.get("text").and_then(Value::as_str) {
                Some(t) => t.to_string(),
                None => d.to_string(),
            },
            None => continue,
        };
        o.insert("document".into(), json!({ "text": text }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn chunks(items: &[StreamItem]) -> Vec<&Map<String, Value>> {
        items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Chunk(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn urls_accept_bare_versioned_and_full_bases() {
        assert_eq!(
            url(DEFAULT_API_BASE, "chat"),
            "https://api.cohere.com/v2/chat"
        );
        assert_eq!(
            url("https://api.cohere.ai/v1/", "embed"),
            "https://api.cohere.ai/v2/embed"
        );
        assert_eq!(
            url("https://x.test/v2/rerank", "rerank"),
            "https://x.test/v2/rerank"
        );
    }

    #[test]
    fn request_translation_covers_system_tools_images_and_params() {
        let body = obj(json!({
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "and kind"}]},
                {"role": "user", "name": "ann", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                    {"type": "image_url", "image_url": "https://x.test/cat.jpg"}
                ]},
                {"role": "assistant", "content": null, "reasoning_content": "I will look it up.", "tool_calls": [
                    {"id": "lookup_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "lookup_1", "content": "a cat"},
                {"role": "assistant", "content": "A cat."},
                {"role": "user", "content": "thanks"}
            ],
            "max_completion_tokens": 100,
            "temperature": 0.3,
            "top_p": 0.9,
            "top_k": 40,
            "stop": "END",
            "seed": 7,
            "frequency_penalty": 0.1,
            "presence_penalty": 0.2,
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "find", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
            "tool_choice": "required",
            "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
            "stream_options": {"include_usage": true},
            "safety_mode": "STRICT"
        }));
        let out = chat_body(body, "command-a-03-2025", true, &ParamPolicy::default()).unwrap();
        let expected = json!({
            "model": "command-a-03-2025",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "system", "content": [{"type": "text", "text": "and kind"}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}}
                ]},
                {"role": "assistant", "tool_plan": "I will look it up.", "tool_calls": [
                    {"id": "lookup_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "lookup_1", "content": "a cat"},
                {"role": "assistant", "content": "A cat."},
                {"role": "user", "content": "thanks"}
            ],
            "max_tokens": 100,
            "p": 0.9,
            "k": 40,
            "stop_sequences": ["END"],
            "response_format": {"type": "json_object", "json_schema": {"type": "object", "properties": {"a": {"type": "integer"}}}},
            "tool_choice": "REQUIRED",
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "find", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
            "stream": true,
            "temperature": 0.3,
            "seed": 7,
            "frequency_penalty": 0.1,
            "presence_penalty": 0.2,
            "safety_mode": "STRICT"
        });
        assert_eq!(Value::Object(out), expected);
    }

    #[test]
    fn tool_choice_json_mode_and_stop_lists() {
        let tools = json!([
            {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "b", "parameters": {"type": "object"}}}
        ]);
        let out = chat_body(
            obj(
                json!({"messages": [{"role": "user", "content": "x"}], "tools": tools,
                "tool_choice": {"type": "function", "function": {"name": "b"}},
                "stop": ["x", "y"], "response_format": {"type": "json_object"}}),
            ),
            "command-r",
            false,
            &ParamPolicy::default(),
        )
        .unwrap();
        assert_eq!(out["tool_choice"], "REQUIRED");
        assert_eq!(out["tools"].as_array().unwrap().len(), 1);
        assert_eq!(out["tools"][0]["function"]["name"], "b");
        assert_eq!(out["stop_sequences"], json!(["x", "y"]));
        assert_eq!(out["response_format"], json!({"type": "json_object"}));
        assert!(out.get("stream").is_none());

        let auto = chat_body(
            obj(json!({"messages": [], "tools": tools, "tool_choice": "auto"})),
            "command-r",
            false,
            &ParamPolicy::default(),
        )
        .unwrap();
        assert!(auto.get("tool_choice").is_none());
        let none = chat_body(
            obj(json!({"messages": [], "tools": tools, "tool_choice": "none"})),
            "command-r",
            false,
            &ParamPolicy::default(),
        )
        .unwrap();
        assert_eq!(none["tool_choice"], "NONE");
        let e = chat_body(
            obj(
                json!({"messages": [], "tools": tools, "tool_choice": {"type": "function", "function": {"name": "zz"}}}),
            ),
            "command-r",
            false,
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn unsupported_params_rejected_then_dropped() {
        let body = json!({"messages": [{"role": "user", "content": "x"}], "n": 2, "logit_bias": {"1": 1}, "temperature": 0.1});
        let e = chat_body(
            obj(body.clone()),
            "command-r",
            false,
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.message
                .contains("cohere does not support parameters: ['n', 'logit_bias']"),
            "{}",
            e.message
        );
        let out = chat_body(
            obj(body),
            "command-r",
            false,
            &ParamPolicy {
                drop_params: true,
                ..ParamPolicy::default()
            },
        )
        .unwrap();
        assert!(out.get("n").is_none() && out.get("logit_bias").is_none());
        assert_eq!(out["temperature"], 0.1);
    }

    #[test]
    fn response_maps_text_tools_and_usage() {
        let body = br#"{"id":"c14c80c3-18eb-4519-9460-6c92edd8cfb4","finish_reason":"TOOL_CALL",
          "message":{"role":"assistant","tool_plan":"I will look up the weather.",
            "tool_calls":[{"id":"get_weather_1byjy32y4hvq","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Toronto\"}"}}]},
          "usage":{"billed_units":{"input_tokens":37,"output_tokens":20},"tokens":{"input_tokens":1001,"output_tokens":54}}}"#;
        let r = parse_chat(body, "command-a-03-2025").unwrap();
        assert_eq!(r["id"], "c14c80c3-18eb-4519-9460-6c92edd8cfb4");
        assert_eq!(r["object"], "chat.completion");
        assert_eq!(r["model"], "command-a-03-2025");
        let ch = &r["choices"][0];
        assert_eq!(ch["finish_reason"], "tool_calls");
        assert!(ch["message"]["content"].is_null());
        assert_eq!(
            ch["message"]["reasoning_content"],
            "I will look up the weather."
        );
        assert_eq!(
            ch["message"]["tool_calls"][0],
            json!({"id": "get_weather_1byjy32y4hvq", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\"location\":\"Toronto\"}"}})
        );
        let u = Usage::from_json(&r["usage"]).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (1001, 54, 1055)
        );

        let text = br#"{"id":"x","finish_reason":"COMPLETE","message":{"role":"assistant",
          "content":[{"type":"text","text":"Hello"},{"type":"text","text":" world"}]},
          "usage":{"billed_units":{"input_tokens":5,"output_tokens":2}}}"#;
        let r = parse_chat(text, "command-r").unwrap();
        assert_eq!(r["choices"][0]["message"]["content"], "Hello world");
        assert_eq!(r["choices"][0]["finish_reason"], "stop");
        assert!(r["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(r["usage"]["prompt_tokens"], 5);
        assert_eq!(r["usage"]["completion_tokens"], 2);

        for (reason, finish) in [
            ("COMPLETE", "stop"),
            ("STOP_SEQUENCE", "stop"),
            ("MAX_TOKENS", "length"),
            ("TOOL_CALL", "tool_calls"),
            ("ERROR", "stop"),
            ("TIMEOUT", "stop"),
            ("ERROR_TOXIC", "content_filter"),
        ] {
            assert_eq!(finish_reason(reason), finish);
        }
        assert_eq!(parse_chat(b"{}", "m").unwrap_err().status(), 500);
    }

    /// Event datas of a recorded v2 stream: a tool plan, a tool call in two fragments, usage.
    const TOOL_STREAM: &[&str] = &[
        r#"{"id":"29f14a5a-11de-4cae-9800-25e4747408ea","type":"message-start","delta":{"message":{"role":"assistant","content":[],"tool_plan":"","tool_calls":[],"citations":[]}}}"#,
        r#"{"type":"tool-plan-delta","delta":{"message":{"tool_plan":"I will search"}}}"#,
        r#"{"type":"tool-plan-delta","delta":{"message":{"tool_plan":" for it."}}}"#,
        r#"{"type":"tool-call-start","index":0,"delta":{"message":{"tool_calls":{"id":"get_weather_nsz5zm3w56q3","type":"function","function":{"name":"get_weather","arguments":""}}}}}"#,
        r#"{"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":"{\"location\":"}}}}}"#,
        r#"{"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":"\"Toronto\"}"}}}}}"#,
        r#"{"type":"tool-call-end","index":0}"#,
        r#"{"type":"message-end","delta":{"finish_reason":"TOOL_CALL","usage":{"billed_units":{"input_tokens":37,"output_tokens":28},"tokens":{"input_tokens":913,"output_tokens":83}}}}"#,
    ];

    const TEXT_STREAM: &[&str] = &[
        r#"{"id":"abc","type":"message-start","delta":{"message":{"role":"assistant","content":[],"tool_plan":"","tool_calls":[],"citations":[]}}}"#,
        r#"{"type":"content-start","index":0,"delta":{"message":{"content":{"type":"text","text":""}}}}"#,
        r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"Hel"}}}}"#,
        r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"lo ✓"}}}}"#,
        r#"{"type":"content-end","index":0}"#,
        r#"{"type":"message-end","delta":{"finish_reason":"MAX_TOKENS","usage":{"billed_units":{"input_tokens":3,"output_tokens":2}}}}"#,
    ];

    fn run(events: &[&str]) -> Vec<StreamItem> {
        let mut st = StreamState::new("command-a-03-2025");
        let mut out = VecDeque::new();
        for e in events {
            st.on_event(e, &mut out);
        }
        out.into_iter().collect()
    }

    #[test]
    fn tool_stream_becomes_openai_chunks() {
        let items = run(TOOL_STREAM);
        assert!(matches!(items.last(), Some(StreamItem::Done)));
        let c = chunks(&items);
        assert!(c
            .iter()
            .all(|x| x["id"] == "29f14a5a-11de-4cae-9800-25e4747408ea"
                && x["object"] == "chat.completion.chunk"
                && x["model"] == "command-a-03-2025"
                && x["created"] == c[0]["created"]));
        assert_eq!(
            c[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(
            c[1]["choices"][0]["delta"]["reasoning_content"],
            "I will search"
        );
        assert_eq!(
            c[3]["choices"][0]["delta"]["tool_calls"][0],
            json!({"index": 0, "id": "get_weather_nsz5zm3w56q3", "type": "function",
                   "function": {"name": "get_weather", "arguments": ""}})
        );
        let args: String = c
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(args, "{\"location\":\"Toronto\"}");
        let fin = &c[c.len() - 2];
        assert_eq!(fin["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(fin["choices"][0]["delta"], json!({}));
        let last = c[c.len() - 1];
        assert_eq!(last["choices"], json!([]));
        assert_eq!(
            last["usage"],
            json!({"prompt_tokens": 913, "completion_tokens": 83, "total_tokens": 996})
        );
    }

    #[test]
    fn text_stream_and_events_after_the_end() {
        let mut events = TEXT_STREAM.to_vec();
        events.push(r#"{"type":"content-delta","delta":{"message":{"content":{"text":"late"}}}}"#);
        let items = run(&events);
        let c = chunks(&items);
        let text: String = c
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Hello ✓");
        assert_eq!(c.len(), 5); // role, 2 deltas, finish, usage
        assert_eq!(c[3]["choices"][0]["finish_reason"], "length");
        assert_eq!(c[4]["usage"]["total_tokens"], 5);
        assert!(matches!(items.last(), Some(StreamItem::Done)));
    }

    #[test]
    fn stream_garbage_and_error_objects_are_errors() {
        let items = run(&["not json", r#"{"message":"internal server error"}"#]);
        assert!(matches!(&items[0], StreamItem::Error(e) if e.status() == 500));
        match &items[1] {
            StreamItem::Error(e) => {
                assert!(e
                    .message
                    .contains("CohereException - internal server error"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_map() {
        let e = map_error(401, br#"{"message":"invalid api token"}"#);
        assert_eq!(e.status(), 401);
        assert_eq!(
            e.message,
            "litellm.AuthenticationError: AuthenticationError: CohereException - invalid api token"
        );
        assert_eq!(map_error(429, br#"{"message":"You are using a Trial key, which is limited to 10 API calls / minute."}"#).status(), 429);
        let e = map_error(
            400,
            br#"{"message":"too many tokens: total number of tokens in the prompt cannot exceed 128000 - received 130000."}"#,
        );
        assert_eq!(e.class, ErrorClass::ContextWindowExceeded);
        assert!(e.message.starts_with(
            "litellm.ContextWindowExceededError: ContextWindowExceededError: CohereException - too many tokens"
        ));
        assert_eq!(
            map_error(404, br#"{"message":"model 'x' not found"}"#).status(),
            404
        );
        assert_eq!(map_error(500, b"oops").status(), 500);
    }

    #[test]
    fn embeddings_translate_both_ways() {
        let b = embed_body(
            &obj(json!({"input": ["a", "b"], "dimensions": 256, "input_type": "search_query", "encoding_format": "float"})),
            "embed-v4.0",
        )
        .unwrap();
        assert_eq!(
            Value::Object(b),
            json!({"model": "embed-v4.0", "texts": ["a", "b"], "input_type": "search_query",
                   "embedding_types": ["float"], "output_dimension": 256})
        );
        let b = embed_body(&obj(json!({"input": "a"})), "embed-english-v3.0").unwrap();
        assert_eq!(b["texts"], json!(["a"]));
        assert_eq!(b["input_type"], "search_document");
        assert!(b.get("output_dimension").is_none());
        assert_eq!(
            embed_body(&obj(json!({"input": [[1, 2]]})), "m")
                .unwrap_err()
                .status(),
            400
        );

        let resp = br#"{"id":"da6e531f","embeddings":{"float":[[0.1,-0.2],[0.3,0.4]]},"texts":["a","b"],
          "meta":{"api_version":{"version":"2"},"billed_units":{"input_tokens":2}},"response_type":"embeddings_by_type"}"#;
        let r = parse_embed(resp, "embed-v4.0").unwrap();
        assert_eq!(
            Value::Object(r),
            json!({"object": "list", "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, -0.2]},
                {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]}
            ], "model": "embed-v4.0", "usage": {"prompt_tokens": 2, "total_tokens": 2}})
        );
    }

    #[test]
    fn rerank_translates_both_ways() {
        let req = obj(json!({"model": "g", "query": "capital of the US?",
            "documents": ["Carson City is in Nevada.", {"text": "Washington, D.C. is the capital."}, {"title": "x"}],
            "top_n": 2, "return_documents": true, "max_tokens_per_doc": 512}));
        let b = rerank_body(&req, "rerank-v3.5").unwrap();
        assert_eq!(
            Value::Object(b),
            json!({"model": "rerank-v3.5", "query": "capital of the US?",
                   "documents": ["Carson City is in Nevada.", "Washington, D.C. is the capital.", "{\"title\":\"x\"}"],
                   "top_n": 2, "max_tokens_per_doc": 512})
        );
        assert_eq!(
            rerank_body(&obj(json!({"documents": []})), "m")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            rerank_body(&obj(json!({"query": "q"})), "m")
                .unwrap_err()
                .status(),
            400
        );

        let resp = br#"{"results":[{"index":1,"relevance_score":0.999},{"index":0,"relevance_score":0.32}],
          "id":"07734bd2-2473-4f07-94e1-0d9f0e6843cf","meta":{"api_version":{"version":"2"},"billed_units":{"search_units":1}}}"#;
        let mut r = parse_rerank(resp).unwrap();
        assert_eq!(r["id"], "07734bd2-2473-4f07-94e1-0d9f0e6843cf");
        assert_eq!(
            r["results"],
            json!([{"index": 1, "relevance_score": 0.999}, {"index": 0, "relevance_score": 0.32}])
        );
        assert_eq!(r["meta"]["billed_units"]["search_units"], 1);
        attach_documents(&mut r, req["documents"].as_array().unwrap());
        assert_eq!(
            r["results"][0]["document"],
            json!({"text": "Washington, D.C. is the capital."})
        );
        assert_eq!(
            r["results"][1]["document"],
            json!({"text": "Carson City is in Nevada."})
        );
    }
}
