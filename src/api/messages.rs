//! Anthropic's Messages format as a client API (`/v1/messages`), for deployments that do not
//! speak it: the request becomes an OpenAI chat body, the OpenAI answer becomes an Anthropic
//! message, and OpenAI stream chunks become Anthropic stream events.
//!
//! Requests to Anthropic deployments never come through here: they are forwarded natively.
//! Pure translation, no I/O.

use super::Usage;
use crate::api::Field;
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::providers::stream::StreamItem;
use bytes::{Bytes, BytesMut};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Checks the fields the gateway itself relies on; the rest is the upstream's business.
pub fn validate(body: &Map<String, Value>) -> ApiResult<()> {
    match body.field("messages") {
        Some(Value::Array(_)) => {}
        Some(v) => return Err(super::type_error("messages", "an array", v)),
        None => {
            return Err(ApiError::bad_request("messages: Field required").with_param("messages"))
        }
    }
    if let Some(v) = body.field("max_tokens").filter(|v| !v.is_null()) {
        if !v.is_u64() {
            return Err(super::type_error("max_tokens", "an integer", v));
        }
    }
    if let Some(v) = body
        .field("system")
        .filter(|v| !(v.is_string() || v.is_array() || v.is_null()))
    {
        return Err(super::type_error(
            "system",
            "a string or a list of blocks",
            v,
        ));
    }
    Ok(())
}

/// An Anthropic Messages request as an OpenAI chat body.
pub fn to_openai(body: &Map<String, Value>) -> Map<String, Value> {
    let mut messages = Vec::new();
    match body.field("system") {
        Some(Value::String(s)) if !s.is_empty() => {
            messages.push(json!({"role": "system", "content": s}))
        }
        Some(Value::Array(blocks)) => {
            let text = join_text(blocks);
            if !text.is_empty() {
                messages.push(json!({"role": "system", "content": text}));
            }
        }
        _ => {}
    }
    for m in body
        .field("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = m.field("role").and_then(Value::as_str).unwrap_or("user");
        match m.field("content") {
            Some(Value::Array(blocks)) if role == "assistant" => {
                messages.push(assistant_message(blocks))
            }
            Some(Value::Array(blocks)) => user_messages(blocks, &mut messages),
            Some(c) => messages.push(json!({"role": role, "content": c})),
            None => {}
        }
    }
    let mut out = Map::new();
    if let Some(m) = body.field("model") {
        out.insert("model".into(), m.clone());
    }
    out.insert("messages".into(), Value::Array(messages));
    for k in ["max_tokens", "temperature", "top_p", "top_k", "stream"] {
        if let Some(v) = body.field(k).filter(|v| !v.is_null()) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(s) = body.field("stop_sequences").filter(|v| v.is_array()) {
        out.insert("stop".into(), s.clone());
    }
    if let Some(u) = body
        .field("metadata")
        .and_then(|m| m.field("user_id"))
        .filter(|v| v.is_string())
    {
        out.insert("user".into(), u.clone());
    }
    let tools: Vec<Value> = body
        .field("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        // Anthropic's server tools (web search, ...) have no OpenAI equivalent.
        .filter(|t| t.field("input_schema").is_some())
        .map(|t| {
            let mut f = Map::new();
            f.insert(
                "name".into(),
                t.field("name").cloned().unwrap_or(Value::Null),
            );
            if let Some(d) = t.field("description") {
                f.insert("description".into(), d.clone());
            }
            f.insert(
                "parameters".into(),
                t.field("input_schema").cloned().unwrap_or(Value::Null),
            );
            json!({"type": "function", "function": f})
        })
        .collect();
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = body.field("tool_choice") {
        let choice = match tc.field("type").and_then(Value::as_str) {
            Some("any") => Some(json!("required")),
            Some("none") => Some(json!("none")),
            Some("tool") => {
                Some(json!({"type": "function", "function": {"name": tc.field("name")}}))
            }
            Some("auto") => Some(json!("auto")),
            _ => None,
        };
        if let Some(c) = choice {
            out.insert("tool_choice".into(), c);
        }
        if tc.field("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    if let Some(budget) = body
        .field("thinking")
        .filter(|t| t.field("type").and_then(Value::as_str) == Some("enabled"))
        .and_then(|t| t.field("budget_tokens"))
        .and_then(Value::as_u64)
    {
        let effort = match budget {
            0..=1024 => "low",
            1025..=2048 => "medium",
            _ => "high",
        };
        out.insert("reasoning_effort".into(), json!(effort));
    }
    out
}

fn join_text(blocks: &[Value]) -> String {
    let mut s = String::new();
    for b in blocks {
        if let Some(t) = b.field("text").and_then(Value::as_str) {
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(t);
        }
    }
    s
}

fn data_url(source: &Value) -> Option<String> {
    match source.field("type").and_then(Value::as_str)? {
        "base64" => Some(format!(
            "data:{};base64,{}",
            source
                .field("media_type")
                .and_then(Value::as_str)
                .unwrap_or("application/octet-stream"),
            source.field("data").and_then(Value::as_str).unwrap_or("")
        )),
        "url" => source
            .field("url")
            .and_then(Value::as_str)
            .map(String::from),
        _ => None,
    }
}

/// A user turn: `tool_result` blocks become `tool` messages (they answer the previous
/// assistant turn, so they come first), the rest one user message.
fn user_messages(blocks: &[Value], out: &mut Vec<Value>) {
    let mut parts = Vec::new();
    for b in blocks {
        match b.field("type").and_then(Value::as_str) {
            Some("tool_result") => {
                let content = match b.field("content") {
                    Some(Value::Array(inner)) => Value::String(join_text(inner)),
                    Some(Value::String(s)) => Value::String(s.clone()),
                    _ => Value::String(String::new()),
                };
                out.push(json!({
                    "role": "tool",
                    "tool_call_id": b.field("tool_use_id").cloned().unwrap_or(Value::Null),
                    "content": content,
                }));
            }
            Some("text") => parts.push(json!({"type": "text", "text": b.field("text")})),
            Some("image") => {
                if let Some(url) = b.field("source").and_then(data_url) {
                    parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                }
            }
            Some("document") => {
                if let Some(url) = b.field("source").and_then(data_url) {
                    parts.push(json!({"type": "file", "file": {"file_data": url}}));
                }
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        return;
    }
    let content = if parts.iter().all(|p| p["type"] == "text") {
        Value::String(join_text(&parts))
    } else {
        Value::Array(parts)
    };
    out.push(json!({"role": "user", "content": content}));
}

fn assistant_message(blocks: &[Value]) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.field("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.field("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(json!({
                "id": b.field("id"),
                "type": "function",
                "function": {
                    "name": b.field("name"),
                    "arguments": b.field("input").map(Value::to_string).unwrap_or_else(|| "{}".into()),
                },
            })),
            _ => {}
        }
    }
    let mut m = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    }
    m
}

/// OpenAI `finish_reason` -> Anthropic `stop_reason`.
fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's `usage` for an OpenAI usage: cache reads and writes are reported apart from
/// `input_tokens`, as Anthropic does.
fn anthropic_usage(u: &Usage) -> Value {
    let mut v = json!({
        "input_tokens": u.prompt_tokens.saturating_sub(u.cached_tokens + u.cache_creation_tokens),
        "output_tokens": u.completion_tokens,
    });
    if u.cached_tokens > 0 {
        v["cache_read_input_tokens"] = json!(u.cached_tokens);
    }
    if u.cache_creation_tokens > 0 {
        v["cache_creation_input_tokens"] = json!(u.cache_creation_tokens);
    }
    v
}

fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// An OpenAI chat completion as an Anthropic message, reporting `model`.
pub fn from_openai(resp: &Map<String, Value>, model: &str) -> Map<String, Value> {
    let choice = resp
        .field("choices")
        .and_then(|c| c.get(0))
        .unwrap_or(&Value::Null);
    let msg = choice.field("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    if let Some(r) = msg
        .field("reasoning_content")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    if let Some(t) = msg
        .field("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "text", "text": t}));
    }
    for c in msg
        .field("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let args = c
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        content.push(json!({
            "type": "tool_use",
            "id": c.field("id"),
            "name": c.pointer("/function/name"),
            "input": serde_json::from_str::<Value>(args).unwrap_or_else(|_| json!({})),
        }));
    }
    let usage = resp
        .field("usage")
        .and_then(Usage::from_json)
        .unwrap_or_default();
    let finish = choice
        .field("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("stop");
    let mut out = Map::new();
    out.insert("id".into(), json!(new_message_id()));
    out.insert("type".into(), json!("message"));
    out.insert("role".into(), json!("assistant"));
    out.insert("model".into(), json!(model));
    out.insert("content".into(), Value::Array(content));
    out.insert("stop_reason".into(), json!(stop_reason(finish)));
    out.insert("stop_sequence".into(), Value::Null);
    out.insert("usage".into(), anthropic_usage(&usage));
    out
}

/// Anthropic's error `type` for one of the gateway's errors.
fn error_type(e: &ApiError) -> &'static str {
    match e.class {
        ErrorClass::Authentication | ErrorClass::ProxyAuth => "authentication_error",
        ErrorClass::PermissionDenied => "permission_error",
        ErrorClass::NotFound => "not_found_error",
        ErrorClass::RateLimit => "rate_limit_error",
        ErrorClass::PayloadTooLarge => "request_too_large",
        ErrorClass::ServiceUnavailable => "overloaded_error",
        c if c.status().is_client_error() => "invalid_request_error",
        _ => "api_error",
    }
}

/// An `event: error` frame for a failure after the stream started.
pub fn error_frame(e: &ApiError) -> Bytes {
    let data = json!({"type": "error", "error": {"type": error_type(e), "message": e.message}});
    crate::providers::sse::named_frame("error", data.to_string().as_bytes())
}

/// The kind of the content block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A tool call, by its OpenAI `tool_calls[].index`.
    Tool(u64),
}

/// OpenAI chunks -> Anthropic stream events (`message_start`, `content_block_*`,
/// `message_delta`, `message_stop`).
#[derive(Debug)]
pub struct EventEncoder {
    model: Arc<str>,
    started: bool,
    open: Option<(u64, Block)>,
    next_index: u64,
    finish: Option<String>,
    usage: Option<Usage>,
}

impl EventEncoder {
    pub fn new(model: Arc<str>) -> Self {
        Self {
            model,
            started: false,
            open: None,
            next_index: 0,
            finish: None,
            usage: None,
        }
    }

    fn event(out: &mut BytesMut, name: &str, data: &Value) {
        out.extend_from_slice(&crate::providers::sse::named_frame(
            name,
            data.to_string().as_bytes(),
        ));
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let msg = json!({"type": "message_start", "message": {
            "id": new_message_id(), "type": "message", "role": "assistant", "model": &*self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }});
        Self::event(out, "message_start", &msg);
    }

    fn close(&mut self, out: &mut BytesMut) {
        if let Some((i, _)) = self.open.take() {
            Self::event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": i}),
            );
        }
    }

    /// Makes `kind` the open block (opening it with `start` if it is new); returns its index.
    fn ensure(&mut self, out: &mut BytesMut, kind: Block, start: Value) -> u64 {
        if let Some((i, k)) = self.open {
            if k == kind {
                return i;
            }
        }
        self.close(out);
        let i = self.next_index;
        self.next_index += 1;
        self.open = Some((i, kind));
        Self::event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": i, "content_block": start}),
        );
        i
    }

    fn delta(out: &mut BytesMut, index: u64, delta: Value) {
        Self::event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    pub fn encode(&mut self, item: StreamItem) -> Option<Bytes> {
        let mut out = BytesMut::new();
        match item {
            StreamItem::Chunk(c) => self.chunk(&c, &mut out),
            StreamItem::Done => {
                self.start(&mut out);
                self.close(&mut out);
                let usage = self.usage.unwrap_or_default();
                Self::event(
                    &mut out,
                    "message_delta",
                    &json!({"type": "message_delta",
                        "delta": {"stop_reason": stop_reason(self.finish.as_deref().unwrap_or("stop")), "stop_sequence": null},
                        "usage": anthropic_usage(&usage)}),
                );
                Self::event(&mut out, "message_stop", &json!({"type": "message_stop"}));
            }
            StreamItem::Error(e) => return Some(error_frame(&e)),
            StreamItem::Raw { frame, .. } => return Some(frame),
        }
        (!out.is_empty()).then(|| out.freeze())
    }

    fn chunk(&mut self, c: &Map<String, Value>, out: &mut BytesMut) {
        self.start(out);
        if let Some(u) = c.field("usage").and_then(Usage::from_json) {
            self.usage = Some(u);
        }
        let Some(choice) = c.field("choices").and_then(|ch| ch.get(0)) else {
            return;
        };
        let delta = choice.field("delta").unwrap_or(&Value::Null);
        if let Some(r) = delta
            .field("reasoning_content")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let i = self.ensure(
                out,
                Block::Thinking,
                json!({"type": "thinking", "thinking": ""}),
            );
            Self::delta(out, i, json!({"type": "thinking_delta", "thinking": r}));
        }
        if let Some(t) = delta
            .field("content")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let i = self.ensure(out, Block::Text, json!({"type": "text", "text": ""}));
            Self::delta(out, i, json!({"type": "text_delta", "text": t}));
        }
        for tc in delta
            .field("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let k = tc.field("index").and_then(Value::as_u64).unwrap_or(0);
            if tc.field("id").is_some_and(|id| !id.is_null())
                && self.open != Some((self.next_index.saturating_sub(1), Block::Tool(k)))
            {
                // A new call: close whatever is open so the call gets its own block.
                self.close(out);
            }
            let i = self.ensure(
                out,
                Block::Tool(k),
                json!({"type": "tool_use", "id": tc.field("id"), "name": tc.pointer("/function/name"), "input": {}}),
            );
            if let Some(a) = tc
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                Self::delta(
                    out,
                    i,
                    json!({"type": "input_json_delta", "partial_json": a}),
                );
            }
        }
        if let Some(f) = choice.field("finish_reason").and_then(Value::as_str) {
            self.finish = Some(f.to_string());
        }
    }
}

/// A rough input-token count (about four characters per token) for `count_tokens` when the
/// deployment cannot count itself.
pub fn estimate_input_tokens(body: &Map<String, Value>) -> u64 {
    fn chars(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len(),
            Value::Array(a) => a.iter().map(chars).sum(),
            Value::Object(o) => o
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "type" | "cache_control" | "source"))
                .map(|(_, v)| chars(v))
                .sum(),
            _ => 0,
        }
    }
    let total: usize = ["system", "messages", "tools"]
        .iter()
        .filter_map(|k| body.field(k))
        .map(chars)
        .sum();
    (total as u64).div_ceil(4).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic;
    use crate::providers::params::ParamPolicy;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn request_becomes_openai_and_round_trips_through_the_anthropic_adapter() {
        let req = obj(json!({
            "model": "claude-group",
            "system": [{"type": "text", "text": "be brief"}],
            "max_tokens": 64,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u1"},
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "checking"},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
                    {"type": "text", "text": "thanks"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
                ]}
            ],
            "tools": [{"name": "weather", "description": "w", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        }));
        validate(&req).unwrap();
        let oa = to_openai(&req);
        let expected = json!({
            "model": "claude-group",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": "checking", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
                {"role": "user", "content": [
                    {"type": "text", "text": "thanks"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                ]}
            ],
            "max_tokens": 64,
            "stop": ["END"],
            "user": "u1",
            "tools": [{"type": "function", "function": {"name": "weather", "description": "w", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
        });
        assert_eq!(Value::Object(oa.clone()), expected);
        // And back: the Anthropic adapter rebuilds the same conversation.
        let back = anthropic::chat_body(oa, "claude-x", false, &ParamPolicy::default()).unwrap();
        assert_eq!(
            back["messages"][1]["content"][1]["input"],
            json!({"city": "Paris"})
        );
        assert_eq!(back["messages"][2]["content"][0]["type"], "tool_result");
        assert_eq!(
            back["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
    }

    #[test]
    fn bad_requests_name_the_field() {
        let e = validate(&obj(json!({"model": "m"}))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = validate(&obj(
            json!({"model": "m", "messages": [], "max_tokens": "x"}),
        ))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
    }

    #[test]
    fn response_becomes_an_anthropic_message() {
        let resp = obj(
            json!({"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "ok", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25, "prompt_tokens_details": {"cached_tokens": 8}}}),
        );
        let m = from_openai(&resp, "grp");
        assert_eq!(m["type"], "message");
        assert_eq!(m["model"], "grp");
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(m["content"][0], json!({"type": "text", "text": "ok"}));
        assert_eq!(m["content"][1]["input"], json!({"a": 1}));
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 12, "output_tokens": 5, "cache_read_input_tokens": 8})
        );
    }

    fn events(frames: &[Bytes]) -> Vec<(String, Value)> {
        let mut sse = crate::providers::sse::SseDecoder::new();
        for f in frames {
            sse.push(f);
        }
        std::iter::from_fn(|| sse.next_event())
            .map(|e| {
                (
                    e.event.unwrap_or_default(),
                    serde_json::from_str(&e.data).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn openai_chunks_become_anthropic_events() {
        let mut enc = EventEncoder::new("grp".into());
        let chunk = |d: Value, f: Value| {
            StreamItem::Chunk(obj(
                json!({"id": "c", "choices": [{"index": 0, "delta": d, "finish_reason": f}]}),
            ))
        };
        let mut frames = Vec::new();
        for item in [
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Hel"}), Value::Null),
            chunk(json!({"content": "lo"}), Value::Null),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls")),
            StreamItem::Chunk(obj(
                json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}),
            )),
            StreamItem::Done,
        ] {
            frames.extend(enc.encode(item));
        }
        let ev = events(&frames);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[0].1["message"]["model"], "grp");
        assert_eq!(
            ev[5].1["content_block"],
            json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {}})
        );
        assert_eq!(ev[5].1["index"], 1);
        assert_eq!(ev[9].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            ev[9].1["usage"],
            json!({"input_tokens": 9, "output_tokens": 4})
        );
    }

    #[test]
    fn token_estimate_counts_text_only() {
        let n = estimate_input_tokens(&obj(
            json!({"model": "m", "messages": [{"role": "user", "content": "abcdefgh"}]}),
        ));
        assert_eq!(n, 3); // "user" + "abcdefgh" = 12 chars
    }
}
