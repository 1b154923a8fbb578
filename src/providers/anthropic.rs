//! Anthropic's Messages API as an upstream: OpenAI chat request -> Anthropic request, Anthropic
//! response and stream events -> OpenAI shapes, Anthropic errors -> LiteLLM's errors.
//!
//! Pure translation, no I/O. The mapping follows LiteLLM's: `system` messages become the
//! top-level `system` blocks, tool calls and results become `tool_use` / `tool_result` blocks,
//! consecutive same-role turns are merged, `max_tokens` defaults to 4096, `response_format` is
//! served through a forced `json_tool_call` tool whose arguments come back as the message
//! content, and cache-token counts are folded into `prompt_tokens` with the details alongside.

use super::params::{self, ParamPolicy};
use super::stream::StreamItem;
use super::Provider;
use crate::api::Usage;
use crate::error::{ApiError, ApiResult};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};

/// The `anthropic-version` header LiteLLM sends.
pub const API_VERSION: &str = "2023-06-01";
/// LiteLLM's `DEFAULT_ANTHROPIC_CHAT_MAX_TOKENS`.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
/// The tool LiteLLM forces to get JSON output for `response_format`.
pub const JSON_TOOL: &str = super::shape::JSON_TOOL;

/// OpenAI parameters the adapter translates.
pub const SUPPORTED: &[&str] = &[
    "stream",
    "stream_options",
    "stop",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "tools",
    "tool_choice",
    "extra_headers",
    "parallel_tool_calls",
    "response_format",
    "user",
    "reasoning_effort",
    "thinking",
];

/// The Messages endpoint under an `api_base` given with or without `/v1` or the full path.
pub fn messages_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/messages") {
        base.to_string()
    } else if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

/// Translates an OpenAI chat body (deployment defaults already merged) into an Anthropic
/// Messages body for `model`.
pub fn chat_body(
    mut body: Map<String, Value>,
    model: &str,
    stream: bool,
    policy: &ParamPolicy<'_>,
) -> ApiResult<Map<String, Value>> {
    params::apply(&mut body, SUPPORTED, policy, Provider::Anthropic, model)?;
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    let messages = match body.remove("messages") {
        Some(Value::Array(m)) => m,
        _ => Vec::new(),
    };
    let (system, turns) = convert_messages(messages)?;
    out.insert("messages".into(), Value::Array(turns));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    let max_tokens = body
        .remove("max_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| {
            body.remove("max_completion_tokens")
                .filter(|v| !v.is_null())
        })
        .unwrap_or(json!(DEFAULT_MAX_TOKENS));
    body.remove("max_completion_tokens");
    out.insert("max_tokens".into(), max_tokens);
    match body.remove("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a));
        }
        _ => {}
    }
    if let Some(Value::String(u)) = body.remove("user") {
        out.insert("metadata".into(), json!({ "user_id": u }));
    }
    let mut tools: Vec<Value> = match body.remove("tools") {
        Some(Value::Array(t)) => t.into_iter().map(convert_tool).collect(),
        _ => Vec::new(),
    };
    let mut tool_choice = body.remove("tool_choice").and_then(convert_tool_choice);
    if body.remove("parallel_tool_calls") == Some(Value::Bool(false)) {
        let tc = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if let Some(o) = tc.as_object_mut() {
            o.insert("disable_parallel_tool_use".into(), Value::Bool(true));
        }
    }
    if let Some(schema) = body.remove("response_format").and_then(json_mode_schema) {
        tools.push(json!({"name": JSON_TOOL, "input_schema": schema}));
        tool_choice = Some(json!({"type": "tool", "name": JSON_TOOL}));
    }
    if tool_choice.as_ref().and_then(|c| c.get("type")) == Some(&json!("none")) && tools.is_empty()
    {
        tool_choice = None;
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = tool_choice {
        out.insert("tool_choice".into(), tc);
    }
    if let Some(budget) = body
        .remove("reasoning_effort")
        .as_ref()
        .and_then(Value::as_str)
        .and_then(thinking_budget)
    {
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    for k in ["stream_options", "extra_headers", "stream"] {
        body.remove(k);
    }
    if stream {
        out.insert("stream".into(), Value::Bool(true));
    }
    // temperature, top_p, thinking and provider-specific extras (`top_k`, ...) go as they are.
    for (k, v) in body {
        out.entry(k).or_insert(v);
    }
    Ok(out)
}

/// LiteLLM's thinking budgets for `reasoning_effort`.
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        _ => None,
    }
}

fn json_mode_schema(rf: Value) -> Option<Value> {
    match rf.get("type").and_then(Value::as_str)? {
        "json_object" => Some(json!({"type": "object", "additionalProperties": true})),
        "json_schema" => Some(
            rf.pointer("/json_schema/schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"})),
        ),
        _ => None,
    }
}

fn convert_tool(t: Value) -> Value {
    let Some(f) = t.get("function").and_then(Value::as_object) else {
        // Anthropic's own tool types (web search, computer use, ...) pass through.
        return t;
    };
    let mut out = Map::new();
    out.insert(
        "name".into(),
        f.get("name")
            .cloned()
            .unwrap_or(Value::String(String::new())),
    );
    if let Some(d) = f.get("description").filter(|d| !d.is_null()) {
        out.insert("description".into(), d.clone());
    }
    out.insert(
        "input_schema".into(),
        f.get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    );
    if let Some(cc) = t.get("cache_control") {
        out.insert("cache_control".into(), cc.clone());
    }
    Value::Object(out)
}

fn convert_tool_choice(tc: Value) -> Option<Value> {
    match &tc {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" | "any" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            _ => None,
        },
        Value::Object(_) => match tc.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => Some(tc),
        },
        _ => None,
    }
}

/// Splits OpenAI messages into Anthropic `system` blocks and alternating turns.
fn convert_messages(messages: Vec<Value>) -> ApiResult<(Vec<Value>, Vec<Value>)> {
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in messages.into_iter().enumerate() {
        let Value::Object(mut m) = m else {
            continue;
        };
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user")
            .to_string();
        let msg_cache = m.remove("cache_control");
        let (turn_role, mut blocks) = match role.as_str() {
            "system" | "developer" => {
                let mut b = text_blocks(m.remove("content"));
                set_last_cache_control(&mut b, msg_cache);
                system.extend(b);
                continue;
            }
            "assistant" => ("assistant", assistant_blocks(&mut m)?),
            "tool" | "function" => {
                let id = m
                    .remove("tool_call_id")
                    .or_else(|| m.remove("name"))
                    .unwrap_or(Value::String(String::new()));
                let content = match m.remove("content") {
                    Some(Value::String(s)) => Value::String(s),
                    Some(Value::Array(parts)) => Value::Array(
                        parts
                            .into_iter()
                            .filter_map(|p| user_block(p).transpose())
                            .collect::<ApiResult<Vec<_>>>()?,
                    ),
                    Some(Value::Null) | None => Value::String(String::new()),
                    Some(other) => Value::String(other.to_string()),
                };
                (
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": id, "content": content})],
                )
            }
            "user" => ("user", user_blocks(m.remove("content"))?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid 'messages[{i}].role': '{other}' is not one of system, developer, user, assistant, tool, function."
                ))
                .with_param("messages"))
            }
        };
        set_last_cache_control(&mut blocks, msg_cache);
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((r, b)) if r == turn_role => b.extend(blocks),
            _ => turns.push((turn_role.to_string(), blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, turns))
}

fn set_last_cache_control(blocks: &mut [Value], cc: Option<Value>) {
    if let (Some(cc), Some(Value::Object(last))) = (cc, blocks.last_mut()) {
        last.insert("cache_control".into(), cc);
    }
}

/// Text content (string or parts) as text blocks; empty text is left out.
fn text_blocks(content: Option<Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) if !s.is_empty() => vec![json!({"type": "text", "text": s})],
        Some(Value::Array(parts)) => parts
            .into_iter()
            .filter_map(|p| {
                let text = p
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())?;
                let mut b = json!({"type": "text", "text": text});
                if let (Some(cc), Some(o)) = (p.get("cache_control"), b.as_object_mut()) {
                    o.insert("cache_control".into(), cc.clone());
                }
                Some(b)
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn user_blocks(content: Option<Value>) -> ApiResult<Vec<Value>> {
    match content {
        Some(Value::Array(parts)) => parts
            .into_iter()
            .filter_map(|p| user_block(p).transpose())
            .collect(),
        other => Ok(text_blocks(other)),
    }
}

/// One OpenAI content part as an Anthropic block.
fn user_block(part: Value) -> ApiResult<Option<Value>> {
    let Value::Object(mut p) = part else {
        return Ok(None);
    };
    let cc = p.remove("cache_control");
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("text");
    let mut block = match kind {
        "text" => match p.get("text").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => json!({"type": "text", "text": t}),
            _ => return Ok(None),
        },
        "image_url" => {
            let url = p
                .get("image_url")
                .and_then(|u| u.get("url").or(Some(u)))
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({"type": "image", "source": media_source(url, "image/jpeg")?})
        }
        "file" => {
            let data = p
                .get("file")
                .and_then(|f| f.get("file_data"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({"type": "document", "source": media_source(data, "application/pdf")?})
        }
        // Anthropic-native blocks (image, document, tool_result, ...) pass through.
        _ => Value::Object(p),
    };
    if let (Some(cc), Some(o)) = (cc, block.as_object_mut()) {
        o.insert("cache_control".into(), cc);
    }
    Ok(Some(block))
}

/// A data URL becomes a base64 source, anything else a URL source.
fn media_source(url: &str, default_type: &str) -> ApiResult<Value> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            ApiError::bad_request("Invalid image/file data URL: expected data:<type>;base64,<data>")
        })?;
        let media_type = meta.split(';').next().filter(|t| !t.is_empty());
        return Ok(json!({
            "type": "base64",
            "media_type": media_type.unwrap_or(default_type),
            "data": data,
        }));
    }
    Ok(json!({"type": "url", "url": url}))
}

fn assistant_blocks(m: &mut Map<String, Value>) -> ApiResult<Vec<Value>> {
    let mut blocks = Vec::new();
    if let Some(Value::Array(tb)) = m.remove("thinking_blocks") {
        blocks.extend(tb);
    }
    blocks.extend(text_blocks(m.remove("content")));
    let legacy_id = || format!("call_{}", uuid::Uuid::new_v4().simple());
    for c in super::shape::take_assistant_calls(m, legacy_id)? {
        blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.input}));
    }
    Ok(blocks)
}

/// Anthropic `stop_reason` -> OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Anthropic `usage` -> OpenAI `usage` (cache tokens folded into `prompt_tokens`).
pub fn usage_json(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (input, read, created, output) = (
        n("input_tokens"),
        n("cache_read_input_tokens"),
        n("cache_creation_input_tokens"),
        n("output_tokens"),
    );
    super::shape::cached_usage(input, read, created, output)
}

/// A non-streaming Anthropic response as an OpenAI chat completion.
pub fn parse_chat(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad_body(&e.to_string()))?;
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_body("no `content` array"))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""));
                thinking_blocks.push(b.clone());
            }
            Some("redacted_thinking") => thinking_blocks.push(b.clone()),
            Some("tool_use") => tool_calls.push(json!({
                "id": b.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": b.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": b.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into()),
                },
            })),
            _ => {}
        }
    }
    let (message, finish) = super::shape::assistant_message(
        text,
        tool_calls,
        reasoning,
        thinking_blocks,
        finish_reason(v.get("stop_reason").and_then(Value::as_str).unwrap_or("")),
    );
    Ok(super::shape::completion(
        v.get("id")
            .cloned()
            .unwrap_or_else(|| json!(super::mock::new_chat_id())),
        v.get("model").cloned().unwrap_or(Value::Null),
        json!([{"finish_reason": finish, "index": 0, "message": message}]),
        usage_json(v.get("usage").unwrap_or(&Value::Null)),
    ))
}

fn bad_body(why: &str) -> ApiError {
    ApiError::internal(format!(
        "litellm.APIError: APIError: AnthropicException - unexpected response body: {why}"
    ))
}

/// Maps an Anthropic error response. Anthropic's envelope
/// (`{"type":"error","error":{"type","message"}}`) carries the message where OpenAI's does;
/// `overloaded_error` (529) is a retryable 503.
pub fn map_error(status: u16, body: &[u8]) -> ApiError {
    super::openai::map_error(Provider::Anthropic, status, body)
}

/// Anthropic stream events -> OpenAI chunks.
#[derive(Debug, Default)]
pub struct StreamState {
    id: String,
    model: String,
    created: i64,
    usage: Map<String, Value>,
    /// Content block index -> tool call index (OpenAI numbers tool calls from 0).
    tool_index: HashMap<u64, u64>,
    next_tool: u64,
    /// Content block index of the forced JSON tool, whose arguments stream as content.
    json_block: Option<u64>,
    finish: Option<&'static str>,
}

impl StreamState {
    pub fn new() -> Self {
        Self {
            created: chrono::Utc::now().timestamp(),
            ..Self::default()
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> StreamItem {
        super::shape::chunk(&self.id, self.created, &self.model, delta, finish)
    }

    /// Handles one SSE event's `data`.
    pub fn on_event(&mut self, data: &str, out: &mut VecDeque<StreamItem>) {
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                out.push_back(StreamItem::Error(bad_body(&format!(
                    "invalid stream event: {e}"
                ))));
                return;
            }
        };
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let m = v.get("message").unwrap_or(&Value::Null);
                self.id = m
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.model = m
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(Value::Object(u)) = m.get("usage") {
                    self.usage.extend(u.clone());
                }
                out.push_back(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            "content_block_start" => {
                let idx = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let b = v.get("content_block").unwrap_or(&Value::Null);
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_use")
                        if b.get("name").and_then(Value::as_str) == Some(JSON_TOOL) =>
                    {
                        self.json_block = Some(idx);
                    }
                    Some("tool_use") => {
                        let k = self.next_tool;
                        self.next_tool += 1;
                        self.tool_index.insert(idx, k);
                        out.push_back(self.chunk(
                            json!({"tool_calls": [{
                                "index": k,
                                "id": b.get("id").cloned().unwrap_or(Value::Null),
                                "type": "function",
                                "function": {"name": b.get("name").cloned().unwrap_or(Value::Null), "arguments": ""},
                            }]}),
                            None,
                        ));
                    }
                    Some("text") => {
                        if let Some(t) = b
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push_back(self.chunk(json!({"content": t}), None));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let idx = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let d = v.get("delta").unwrap_or(&Value::Null);
                let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
                let delta = match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => json!({"content": s("text")}),
                    Some("input_json_delta") if self.json_block == Some(idx) => {
                        json!({"content": s("partial_json")})
                    }
                    Some("input_json_delta") => json!({"tool_calls": [{
                        "index": self.tool_index.get(&idx).copied().unwrap_or(0),
                        "function": {"arguments": s("partial_json")},
                    }]}),
                    Some("thinking_delta") => json!({
                        "reasoning_content": s("thinking"),
                        "thinking_blocks": [{"type": "thinking", "thinking": s("thinking")}],
                    }),
                    Some("signature_delta") => json!({
                        "thinking_blocks": [{"type": "thinking", "thinking": "", "signature": s("signature")}],
                    }),
                    _ => return,
                };
                out.push_back(self.chunk(delta, None));
            }
            "message_delta" => {
                if let Some(Value::Object(u)) = v.get("usage") {
                    for (k, val) in u {
                        if !val.is_null() {
                            self.usage.insert(k.clone(), val.clone());
                        }
                    }
                }
                let reason = v
                    .pointer("/delta/stop_reason")
                    .and_then(Value::as_str)
                    .map(finish_reason);
                let reason = match reason {
                    Some("tool_calls") if self.json_block.is_some() && self.next_tool == 0 => {
                        Some("stop")
                    }
                    r => r,
                };
                self.finish = reason.or(self.finish);
                out.push_back(self.chunk(json!({}), Some(self.finish.unwrap_or("stop"))));
            }
            "message_stop" => {
                out.push_back(super::shape::usage_chunk(
                    &self.id,
                    self.created,
                    &self.model,
                    usage_json(&Value::Object(self.usage.clone())),
                ));
                out.push_back(StreamItem::Done);
            }
            "error" => {
                let kind = v
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                out.push_back(StreamItem::Error(map_error(
                    error_type_status(kind),
                    data.as_bytes(),
                )));
            }
            _ => {} // ping, content_block_stop
        }
    }
}

/// The HTTP status Anthropic uses for an error `type` (for errors inside a stream).
pub fn error_type_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// Anthropic-native usage (from `message_start` / `message_delta` events or a response body)
/// as the gateway's [`Usage`].
pub fn native_usage(u: &Value) -> Option<Usage> {
    u.is_object()
        .then(|| Usage::from_json(&usage_json(u)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn request_translation_covers_system_tools_images_and_params() {
        let body = obj(json!({
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "and kind", "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": "https://x.test/cat.jpg"}
                ]},
                {"role": "assistant", "content": "let me check", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "lookup", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "a dog"}]},
            ],
            "max_completion_tokens": 100,
            "stop": "END",
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 3,
            "user": "u-1",
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "find", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "stream_options": {"include_usage": true},
        }));
        let out = chat_body(
            body,
            "claude-3-5-haiku-20241022",
            true,
            &ParamPolicy::default(),
        )
        .unwrap();
        let expected = json!({
            "model": "claude-3-5-haiku-20241022",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "text", "text": "what is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "let me check"},
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "cat"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "a dog"}]}
                ]}
            ],
            "system": [
                {"type": "text", "text": "be brief"},
                {"type": "text", "text": "and kind", "cache_control": {"type": "ephemeral"}}
            ],
            "max_tokens": 100,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u-1"},
            "tools": [{"name": "lookup", "description": "find", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stream": true,
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 3
        });
        assert_eq!(Value::Object(out), expected);
    }

    #[test]
    fn defaults_json_mode_reasoning_and_unsupported_params() {
        let out = chat_body(
            obj(json!({"messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
                "reasoning_effort": "medium"})),
            "claude-x",
            false,
            &ParamPolicy::default(),
        )
        .unwrap();
        assert_eq!(out["max_tokens"], 4096);
        assert_eq!(
            out["tool_choice"],
            json!({"type": "tool", "name": JSON_TOOL})
        );
        assert_eq!(
            out["tools"][0]["input_schema"]["properties"]["a"]["type"],
            "integer"
        );
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 2048})
        );
        assert!(out.get("stream").is_none());

        let e = chat_body(
            obj(json!({"messages": [], "n": 2, "presence_penalty": 1})),
            "claude-x",
            false,
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.message.contains("['n', 'presence_penalty']"),
            "{}",
            e.message
        );
    }

    #[test]
    fn response_maps_text_tools_thinking_and_cached_usage() {
        let body = br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-3-7-sonnet-20250219",
          "content":[{"type":"thinking","thinking":"hmm","signature":"sig"},{"type":"text","text":"Checking."},
                     {"type":"tool_use","id":"toolu_9","name":"lookup","input":{"q":"cat"}}],
          "stop_reason":"tool_use","stop_sequence":null,
          "usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":5,"output_tokens":7}}"#;
        let r = parse_chat(body).unwrap();
        assert_eq!(r["id"], "msg_01");
        let ch = &r["choices"][0];
        assert_eq!(ch["finish_reason"], "tool_calls");
        assert_eq!(ch["message"]["content"], "Checking.");
        assert_eq!(ch["message"]["reasoning_content"], "hmm");
        assert_eq!(ch["message"]["thinking_blocks"][0]["signature"], "sig");
        assert_eq!(
            ch["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"q\":\"cat\"}"
        );
        let u = Usage::from_json(&r["usage"]).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (115, 7, 122)
        );
        assert_eq!((u.cached_tokens, u.cache_creation_tokens), (100, 5));

        let json_mode = br#"{"id":"m","content":[{"type":"tool_use","id":"t","name":"json_tool_call","input":{"a":1}}],
          "stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}"#;
        let r = parse_chat(json_mode).unwrap();
        assert_eq!(r["choices"][0]["message"]["content"], "{\"a\":1}");
        assert_eq!(r["choices"][0]["finish_reason"], "stop");
        assert!(r["choices"][0]["message"].get("tool_calls").is_none());

        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
        ] {
            assert_eq!(finish_reason(stop), finish);
        }
    }

    /// A recorded stream with text, a tool call in two fragments, and usage.
    const STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n\
event: ping\ndata: {\"type\":\"ping\"}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"lookup\",\"input\":{}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"cat\\\"}\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    pub(crate) fn decode_all(raw: &str) -> Vec<StreamItem> {
        let mut sse = super::super::sse::SseDecoder::new();
        sse.push(raw.as_bytes());
        let mut st = StreamState::new();
        let mut out = VecDeque::new();
        while let Some(ev) = sse.next_event() {
            st.on_event(&ev.data, &mut out);
        }
        out.into_iter().collect()
    }

    #[test]
    fn stream_events_become_openai_chunks() {
        let items = decode_all(STREAM);
        let chunks: Vec<&Map<String, Value>> = items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Chunk(c) => Some(c),
                _ => None,
            })
            .collect();
        assert!(matches!(items.last(), Some(StreamItem::Done)));
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(
            chunks[2]["choices"][0]["delta"]["tool_calls"][0]["id"],
            "toolu_1"
        );
        let args: String = chunks
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(args, "{\"q\":\"cat\"}");
        let fin = chunks
            .iter()
            .find(|c| !c["choices"][0]["finish_reason"].is_null())
            .unwrap();
        assert_eq!(fin["choices"][0]["finish_reason"], "tool_calls");
        let u = Usage::from_json(&chunks.last().unwrap()["usage"]).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (15, 9, 3)
        );
        assert!(chunks.iter().all(|c| c["id"] == "msg_1"));
    }

    #[test]
    fn stream_error_event_and_error_bodies_map() {
        let items = decode_all("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
        match &items[0] {
            StreamItem::Error(e) => {
                assert_eq!(e.status(), 503);
                assert!(e.message.contains("AnthropicException - Overloaded"));
            }
            other => panic!("{other:?}"),
        }
        let e = map_error(400, br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 200001 tokens > 200000 maximum"}}"#);
        assert_eq!(e.class, ErrorClass::ContextWindowExceeded);
        assert_eq!(map_error(401, br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#).status(), 401);
        assert_eq!(map_error(429, b"{}").status(), 429);
    }
}
