//! Ollama's native API as an upstream: OpenAI chat request -> `/api/chat` (`ollama_chat/`) or
//! `/api/generate` (`ollama/`) body, Ollama responses and NDJSON streams -> OpenAI shapes,
//! Ollama errors -> LiteLLM's errors, plus the `/api/embed` translation.
//!
//! Pure translation, no I/O. Sampling parameters go under `options` (`num_predict` <-
//! `max_tokens`, `stop` always a list, Ollama-only knobs such as `top_k`, `num_ctx`,
//! `repeat_penalty` moved there too), `response_format` becomes `format` (`"json"` or the JSON
//! schema), and `stream` is always sent because Ollama streams by default. Images must be data
//! URLs (or bare base64): Ollama takes `images: [base64]` and this module does not fetch URLs.
//! Multi-part text is joined with newlines. Ollama has no `tool_choice`: it is accepted and
//! ignored, except that `"none"` leaves the tools out. Tool calls get `call_<uuid>` ids, since
//! Ollama has none; a tool result is sent with the `tool_name` of the call it answers.

use super::params::{self, ParamPolicy};
use super::stream::StreamItem;
use super::Provider;
use crate::api::Usage;
use crate::error::{ApiError, ApiResult};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};

/// Ollama's address when the deployment sets no `api_base`.
pub const DEFAULT_API_BASE: &str = "http://localhost:11434";

/// OpenAI parameters the `/api/chat` adapter translates.
pub const SUPPORTED: &[&str] = &[
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "response_format",
    "tools",
    "tool_choice",
    "reasoning_effort",
    "extra_headers",
];

/// OpenAI parameters the `/api/generate` adapter translates (no tools there).
pub const GENERATE_SUPPORTED: &[&str] = &[
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "response_format",
    "reasoning_effort",
    "extra_headers",
];

/// Ollama model options that may arrive as top-level extras; they are moved under `options`.
const OPTION_KEYS: &[&str] = &[
    "num_keep",
    "num_predict",
    "top_k",
    "min_p",
    "typical_p",
    "repeat_last_n",
    "repeat_penalty",
    "penalize_newline",
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "use_mmap",
    "num_thread",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "tfs_z",
];

/// `{base}/api/{endpoint}` (`chat`, `generate`, `embed`) for an `api_base` given bare, with
/// `/api`, or as the full endpoint URL.
pub fn url(base: &str, endpoint: &str) -> String {
    let base = base.trim_end_matches('/');
    let full = format!("/api/{endpoint}");
    if base.ends_with(&full) {
        return base.to_string();
    }
    let root = base.strip_suffix("/api").unwrap_or(base);
    format!("{root}{full}")
}

/// Translates an OpenAI chat body (deployment defaults already merged) into an `/api/chat` body.
pub fn chat_body(
    mut body: Map<String, Value>,
    model: &str,
    stream: bool,
    policy: &ParamPolicy<'_>,
) -> ApiResult<Map<String, Value>> {
    params::apply(&mut body, SUPPORTED, policy, Provider::OllamaChat, model)?;
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    let messages = match body.remove("messages") {
        Some(Value::Array(m)) => m,
        _ => Vec::new(),
    };
    out.insert("messages".into(), Value::Array(convert_messages(messages)?));
    let tool_choice = body.remove("tool_choice");
    match body.remove("tools") {
        Some(Value::Array(t))
            if !t.is_empty() && tool_choice.as_ref().and_then(Value::as_str) != Some("none") =>
        {
            out.insert("tools".into(), Value::Array(t));
        }
        _ => {}
    }
    common(body, model, stream, out)
}

/// Translates an OpenAI chat body into an `/api/generate` body: system messages become
/// `system`, the other messages' text is joined (blank line between turns) into `prompt`, and
/// their images are collected into `images`.
pub fn generate_body(
    mut body: Map<String, Value>,
    model: &str,
    stream: bool,
    policy: &ParamPolicy<'_>,
) -> ApiResult<Map<String, Value>> {
    params::apply(
        &mut body,
        GENERATE_SUPPORTED,
        policy,
        Provider::Ollama,
        model,
    )?;
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    let messages = match body.remove("messages") {
        Some(Value::Array(m)) => m,
        _ => Vec::new(),
    };
    let mut system = Vec::new();
    let mut prompt = Vec::new();
    let mut images = Vec::new();
    for m in messages {
        let Value::Object(mut m) = m else {
            continue;
        };
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let is_system = matches!(role, "system" | "developer");
        let (text, imgs) = split_content(m.remove("content"))?;
        images.extend(imgs);
        if text.is_empty() {
            continue;
        }
        if is_system {
            system.push(text);
        } else {
            prompt.push(text);
        }
    }
    out.insert("prompt".into(), Value::String(prompt.join("\n\n")));
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n")));
    }
    if !images.is_empty() {
        out.insert("images".into(), Value::Array(images));
    }
    common(body, model, stream, out)
}

/// `stream`, `options`, `format`, `think` and the extras, shared by both endpoints.
fn common(
    mut body: Map<String, Value>,
    model: &str,
    stream: bool,
    mut out: Map<String, Value>,
) -> ApiResult<Map<String, Value>> {
    out.insert("stream".into(), Value::Bool(stream));
    let mut options = match body.remove("options") {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    let max_tokens =
        take(&mut body, "max_tokens").or_else(|| take(&mut body, "max_completion_tokens"));
    body.remove("max_completion_tokens");
    if let Some(m) = max_tokens {
        options.insert("num_predict".into(), m);
    }
    match body.remove("stop") {
        Some(Value::String(s)) => {
            options.insert("stop".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            options.insert("stop".into(), Value::Array(a));
        }
        _ => {}
    }
    for k in [
        "temperature",
        "top_p",
        "seed",
        "frequency_penalty",
        "presence_penalty",
    ]
    .into_iter()
    .chain(OPTION_KEYS.iter().copied())
    {
        if let Some(v) = take(&mut body, k) {
            options.insert(k.into(), v);
        }
    }
    if !options.is_empty() {
        out.insert("options".into(), Value::Object(options));
    }
    if let Some(rf) = body.remove("response_format") {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                out.insert("format".into(), json!("json"));
            }
            Some("json_schema") => {
                let schema = rf
                    .pointer("/json_schema/schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"}));
                out.insert("format".into(), schema);
            }
            _ => {} // "text" is the default.
        }
    }
    if let Some(effort) = body.remove("reasoning_effort") {
        let think = match effort.as_str() {
            Some("none" | "disable") => Some(json!(false)),
            // gpt-oss takes a level; other thinking models take a boolean.
            Some(level @ ("low" | "medium" | "high")) if model.contains("gpt-oss") => {
                Some(json!(level))
            }
            Some(_) => Some(json!(true)),
            None => None,
        };
        if let Some(t) = think {
            out.insert("think".into(), t);
        }
    }
    for k in ["stream_options", "extra_headers", "stream"] {
        body.remove(k);
    }
    // Ollama's own top-level fields (`keep_alive`, `think`, `template`, `raw`, ...) pass.
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

/// OpenAI messages -> `/api/chat` messages.
fn convert_messages(messages: Vec<Value>) -> ApiResult<Vec<Value>> {
    let mut out = Vec::with_capacity(messages.len());
    // Tool call id -> function name, so tool results can carry `tool_name`.
    let mut call_names: HashMap<String, Value> = HashMap::new();
    for (i, m) in messages.into_iter().enumerate() {
        let Value::Object(mut m) = m else {
            continue;
        };
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user")
            .to_string();
        let (content, images) = split_content(m.remove("content"))?;
        let mut msg = Map::new();
        let role = match role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            "tool" | "function" => "tool",
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid 'messages[{i}].role': '{other}' is not one of system, developer, user, assistant, tool, function."
                ))
                .with_param("messages"))
            }
        };
        msg.insert("role".into(), json!(role));
        msg.insert("content".into(), Value::String(content));
        if !images.is_empty() {
            msg.insert("images".into(), Value::Array(images));
        }
        match role {
            "assistant" => {
                if let Some(Value::String(t)) = m.remove("reasoning_content") {
                    msg.insert("thinking".into(), Value::String(t));
                }
                if let Some(Value::Array(calls)) = m.remove("tool_calls") {
                    let mut converted = Vec::with_capacity(calls.len());
                    for c in calls {
                        let name = c
                            .pointer("/function/name")
                            .cloned()
                            .unwrap_or(Value::String(String::new()));
                        if let Some(id) = c.get("id").and_then(Value::as_str) {
                            call_names.insert(id.to_string(), name.clone());
                        }
                        let arguments = tool_arguments(c.pointer("/function/arguments"))?;
                        converted.push(json!({"function": {"name": name, "arguments": arguments}}));
                    }
                    if !converted.is_empty() {
                        msg.insert("tool_calls".into(), Value::Array(converted));
                    }
                }
            }
            "tool" => {
                let name = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .and_then(|id| call_names.get(id).cloned())
                    .or_else(|| m.remove("name"));
                if let Some(n) = name {
                    msg.insert("tool_name".into(), n);
                }
            }
            _ => {}
        }
        out.push(Value::Object(msg));
    }
    Ok(out)
}

/// OpenAI's JSON-string arguments as the object Ollama expects.
fn tool_arguments(args: Option<&Value>) -> ApiResult<Value> {
    match args {
        Some(Value::String(s)) if !s.trim().is_empty() => serde_json::from_str(s).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid tool call arguments in an assistant message (not JSON: {e})"
            ))
            .with_param("messages")
        }),
        Some(Value::Object(o)) => Ok(Value::Object(o.clone())),
        _ => Ok(json!({})),
    }
}

/// Message content -> (text, base64 images). Text parts are joined with newlines.
fn split_content(content: Option<Value>) -> ApiResult<(String, Vec<Value>)> {
    let parts = match content {
        Some(Value::String(s)) => return Ok((s, Vec::new())),
        Some(Value::Array(parts)) => parts,
        Some(Value::Null) | None => return Ok((String::new(), Vec::new())),
        Some(other) => return Ok((other.to_string(), Vec::new())),
    };
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for p in parts {
        match p.get("type").and_then(Value::as_str) {
            Some("image_url") => {
                let url = p
                    .get("image_url")
                    .and_then(|u| u.get("url").or(Some(u)))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                images.push(Value::String(image_data(url)?));
            }
            Some("text") | None => {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    texts.push(t.to_string());
                }
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                "Ollama does not support '{other}' content parts; send text and image_url parts."
            ))
                .with_param("messages"))
            }
        }
    }
    Ok((texts.join("\n"), images))
}

/// The base64 payload of an image given as a data URL (or already as bare base64).
fn image_data(url: &str) -> ApiResult<String> {
    if let Some(rest) = url.strip_prefix("data:") {
        return rest
            .split_once(',')
            .map(|(_, data)| data.to_string())
            .ok_or_else(|| {
                ApiError::bad_request("Invalid image data URL: expected data:<type>;base64,<data>")
                    .with_param("messages")
            });
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(ApiError::bad_request(
            "Ollama takes images as base64: send the image as a data URL (data:image/png;base64,...), not a link.",
        )
        .with_param("messages"));
    }
    Ok(url.to_string())
}

/// Ollama `done_reason` -> OpenAI `finish_reason` (`tool_calls` when the answer called tools).
pub fn finish_reason(done_reason: &str, called_tools: bool) -> &'static str {
    if called_tools {
        return "tool_calls";
    }
    match done_reason {
        "length" => "length",
        _ => "stop",
    }
}

/// `prompt_eval_count` / `eval_count` as OpenAI `usage`.
pub fn usage_json(v: &Value) -> Value {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage::new(n("prompt_eval_count"), n("eval_count")).to_json()
}

fn new_call_id() -> String {
    format!("call_{}", uuid::Uuid::new_v4().simple())
}

/// One Ollama tool call (object arguments) as an OpenAI tool call.
fn openai_tool_call(c: &Value) -> Value {
    let args = match c.pointer("/function/arguments") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "{}".to_string(),
        Some(other) => other.to_string(),
    };
    json!({
        "id": new_call_id(),
        "type": "function",
        "function": {
            "name": c.pointer("/function/name").cloned().unwrap_or(Value::String(String::new())),
            "arguments": args,
        },
    })
}

/// The (content, thinking, tool calls) of one `/api/chat` or `/api/generate` object.
fn parts(v: &Value) -> (&str, &str, &[Value]) {
    let msg = v.get("message");
    let s = |k: &str| {
        msg.and_then(|m| m.get(k))
            .or_else(|| v.get(if k == "content" { "response" } else { k }))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let calls = msg
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    (s("content"), s("thinking"), calls)
}

/// A non-streaming `/api/chat` or `/api/generate` response as an OpenAI chat completion.
pub fn parse_chat(bytes: &[u8], model: &str) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad_body(&e.to_string()))?;
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        return Err(map_error(error_status(err), bytes));
    }
    if !v.get("message").is_some_and(Value::is_object) && v.get("response").is_none() {
        return Err(bad_body("neither `message` nor `response`"));
    }
    let (content, thinking, calls) = parts(&v);
    let tool_calls: Vec<Value> = calls.iter().map(openai_tool_call).collect();
    let mut message = Map::new();
    message.insert(
        "content".into(),
        if content.is_empty() && !tool_calls.is_empty() {
            Value::Null
        } else {
            Value::String(content.to_string())
        },
    );
    message.insert("role".into(), json!("assistant"));
    if !thinking.is_empty() {
        message.insert("reasoning_content".into(), json!(thinking));
    }
    let finish = finish_reason(
        v.get("done_reason").and_then(Value::as_str).unwrap_or(""),
        !tool_calls.is_empty(),
    );
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    Ok(super::shape::completion(
        json!(super::mock::new_chat_id()),
        Value::String(model.to_string()),
        json!([{"finish_reason": finish, "index": 0, "message": message}]),
        usage_json(&v),
    ))
}

fn bad_body(why: &str) -> ApiError {
    ApiError::internal(format!(
        "litellm.APIError: APIError: OllamaException - unexpected response body: {why}"
    ))
}

/// The HTTP status an Ollama error text implies, for errors that arrive without one (inside a
/// stream or a 200 body): 500 unless the text says otherwise.
pub fn error_status(text: &str) -> u16 {
    let t = text.to_ascii_lowercase();
    if t.contains("not found") {
        404
    } else if t.contains("unauthorized") {
        401
    } else if t.contains("does not support") || t.contains("invalid") {
        400
    } else {
        500
    }
}

/// Maps an Ollama error response (`{"error": "model 'x' not found"}`).
pub fn map_error(status: u16, body: &[u8]) -> ApiError {
    super::openai::map_error(Provider::Ollama, status, body)
}

/// Ollama NDJSON stream (`/api/chat` or `/api/generate`) -> OpenAI chunks.
///
/// Bytes are buffered until a `\n`; `scanned` remembers how far the buffer has been searched,
/// so a long line arriving in many reads is scanned once, and consumed lines are removed once
/// per read. Splitting on the `\n` byte never cuts a UTF-8 character.
#[derive(Debug)]
pub struct StreamState {
    id: String,
    model: String,
    created: i64,
    buf: Vec<u8>,
    scanned: usize,
    started: bool,
    next_tool: u64,
    done: bool,
}

impl StreamState {
    pub fn new(model: &str) -> Self {
        Self {
            id: super::mock::new_chat_id(),
            model: model.to_string(),
            created: chrono::Utc::now().timestamp(),
            buf: Vec::new(),
            scanned: 0,
            started: false,
            next_tool: 0,
            done: false,
        }
    }

    /// Decodes one upstream read.
    pub fn push(&mut self, bytes: &[u8], out: &mut VecDeque<StreamItem>) {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            let end = self.scanned + pos;
            let line = std::mem::take(&mut self.buf);
            self.on_line(&line[start..end], out);
            self.buf = line;
            start = end + 1;
            self.scanned = start;
        }
        self.scanned = self.buf.len();
        if start > 0 {
            self.buf.drain(..start);
            self.scanned -= start;
        }
    }

    /// The upstream closed: decodes a last line that had no trailing newline.
    pub fn finish(&mut self, out: &mut VecDeque<StreamItem>) {
        let rest = std::mem::take(&mut self.buf);
        self.scanned = 0;
        self.on_line(&rest, out);
    }

    fn base(&self) -> Map<String, Value> {
        super::shape::chunk_map(&self.id, self.created, &self.model, json!([]))
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> StreamItem {
        super::shape::chunk(&self.id, self.created, &self.model, delta, finish)
    }

    fn on_line(&mut self, line: &[u8], out: &mut VecDeque<StreamItem>) {
        let line = line.trim_ascii();
        if self.done || line.is_empty() {
            return;
        }
        let v: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                out.push_back(StreamItem::Error(bad_body(&format!(
                    "invalid stream line: {e}"
                ))));
                return;
            }
        };
        if let Some(err) = v.get("error").and_then(Value::as_str) {
            out.push_back(StreamItem::Error(map_error(error_status(err), line)));
            return;
        }
        let (content, thinking, calls) = parts(&v);
        let mut delta = Map::new();
        if !self.started {
            delta.insert("role".into(), json!("assistant"));
        }
        if !content.is_empty() || !self.started {
            delta.insert("content".into(), json!(content));
        }
        if !thinking.is_empty() {
            delta.insert("reasoning_content".into(), json!(thinking));
        }
        if !calls.is_empty() {
            let calls: Vec<Value> = calls
                .iter()
                .map(|c| {
                    let mut tc = openai_tool_call(c);
                    if let Some(o) = tc.as_object_mut() {
                        o.insert("index".into(), json!(self.next_tool));
                    }
                    self.next_tool += 1;
                    tc
                })
                .collect();
            delta.insert("tool_calls".into(), Value::Array(calls));
        }
        self.started = true;
        // Objects with nothing new (the final one usually) give no delta chunk.
        if !delta.is_empty() {
            out.push_back(self.chunk(Value::Object(delta), None));
        }
        let done = v.get("done").and_then(Value::as_bool).unwrap_or(false);
        if done {
            let finish = finish_reason(
                v.get("done_reason").and_then(Value::as_str).unwrap_or(""),
                self.next_tool > 0,
            );
            out.push_back(self.chunk(json!({}), Some(finish)));
            let mut c = self.base();
            c.insert("choices".into(), json!([]));
            c.insert("usage".into(), usage_json(&v));
            out.push_back(StreamItem::Chunk(c));
            out.push_back(StreamItem::Done);
            self.done = true;
        }
    }
}

/// An OpenAI embeddings body -> an `/api/embed` body (`input` string or list as given).
pub fn embed_body(body: &Map<String, Value>, model: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    out.insert(
        "input".into(),
        body.get("input")
            .cloned()
            .unwrap_or(Value::String(String::new())),
    );
    if let Some(d) = body.get("dimensions").filter(|d| d.is_u64()) {
        out.insert("dimensions".into(), d.clone());
    }
    for k in ["truncate", "keep_alive", "options"] {
        if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
            out.insert(k.into(), v.clone());
        }
    }
    out
}

/// An `/api/embed` response as an OpenAI embeddings list.
pub fn parse_embed(bytes: &[u8], model: &str) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad_body(&e.to_string()))?;
    let vectors = v
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_body("no `embeddings` array"))?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"object": "embedding", "index": i, "embedding": e}))
        .collect();
    let tokens = v
        .get("prompt_eval_count")
        .and_then(Value::as_u64)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn conversation() -> Map<String, Value> {
        obj(json!({
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "text", "text": "and the weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "22C"}
            ],
            "max_tokens": 64,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "seed": 1,
            "stop": "END",
            "num_ctx": 8192,
            "repeat_penalty": 1.1,
            "frequency_penalty": 0.5,
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object", "properties": {"t": {"type": "string"}}}}},
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "auto",
            "keep_alive": "5m",
            "stream_options": {"include_usage": true}
        }))
    }

    #[test]
    fn urls_accept_bare_and_full_bases() {
        assert_eq!(
            url(DEFAULT_API_BASE, "chat"),
            "http://localhost:11434/api/chat"
        );
        assert_eq!(
            url("http://h:1/api/", "generate"),
            "http://h:1/api/generate"
        );
        assert_eq!(url("http://h:1/api/embed", "embed"), "http://h:1/api/embed");
    }

    #[test]
    fn chat_request_translation() {
        let out = chat_body(conversation(), "llama3.1", false, &ParamPolicy::default()).unwrap();
        let expected = json!({
            "model": "llama3.1",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "what is this?\nand the weather?", "images": ["iVBORw0KGgo="]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                ]},
                {"role": "tool", "content": "22C", "tool_name": "get_weather"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "stream": false,
            "options": {"num_predict": 64, "stop": ["END"], "temperature": 0.2, "top_p": 0.9,
                        "seed": 1, "frequency_penalty": 0.5, "top_k": 40, "repeat_penalty": 1.1, "num_ctx": 8192},
            "format": {"type": "object", "properties": {"t": {"type": "string"}}},
            "keep_alive": "5m"
        });
        assert_eq!(Value::Object(out), expected);

        let out = chat_body(
            obj(json!({"messages": [], "response_format": {"type": "json_object"}, "tools": [{"type": "function"}], "tool_choice": "none", "reasoning_effort": "low"})),
            "qwen3",
            true,
            &ParamPolicy::default(),
        )
        .unwrap();
        assert_eq!(out["stream"], true);
        assert_eq!(out["format"], "json");
        assert_eq!(out["think"], true);
        assert!(out.get("tools").is_none() && out.get("options").is_none());
    }

    #[test]
    fn generate_request_translation() {
        let mut body = conversation();
        body.remove("tools");
        body.remove("tool_choice");
        let out = generate_body(body, "llava", true, &ParamPolicy::default()).unwrap();
        assert_eq!(out["prompt"], "what is this?\nand the weather?\n\n22C");
        assert_eq!(out["system"], "be brief");
        assert_eq!(out["images"], json!(["iVBORw0KGgo="]));
        assert_eq!(out["stream"], true);
        assert_eq!(out["options"]["num_predict"], 64);
        assert_eq!(out["format"]["type"], "object");
        assert!(out.get("messages").is_none());
        // Tools are a chat-endpoint feature.
        let e = generate_body(conversation(), "llava", true, &ParamPolicy::default()).unwrap_err();
        assert!(
            e.message
                .contains("ollama does not support parameters: ['tools', 'tool_choice']"),
            "{}",
            e.message
        );
    }

    #[test]
    fn images_must_be_inline_and_args_json() {
        let e = chat_body(
            obj(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]}),
            ),
            "llava",
            false,
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        let e = chat_body(
            obj(
                json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{nope"}}]}]}),
            ),
            "m",
            false,
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn unsupported_params_rejected_then_dropped() {
        let body = json!({"messages": [{"role": "user", "content": "x"}], "n": 2, "logit_bias": {"1": 1}, "max_tokens": 5});
        let e = chat_body(obj(body.clone()), "llama3", false, &ParamPolicy::default()).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.message
                .contains("ollama_chat does not support parameters: ['n', 'logit_bias']"),
            "{}",
            e.message
        );
        let policy = ParamPolicy {
            drop_params: true,
            ..ParamPolicy::default()
        };
        let out = chat_body(obj(body.clone()), "llama3", false, &policy).unwrap();
        assert!(out.get("n").is_none() && out.get("logit_bias").is_none());
        assert_eq!(out["options"], json!({"num_predict": 5}));
        let out = generate_body(obj(body), "llama3", false, &policy).unwrap();
        assert_eq!(out["prompt"], "x");
    }

    #[test]
    fn chat_response_with_tool_calls_thinking_and_usage() {
        let body = br#"{"model":"qwen3","created_at":"2025-05-01T12:00:00.000Z",
          "message":{"role":"assistant","content":"","thinking":"Need weather.",
            "tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},
          "done_reason":"stop","done":true,"total_duration":4883583458,"load_duration":1334875,
          "prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}"#;
        let r = parse_chat(body, "qwen3").unwrap();
        assert_eq!(r["object"], "chat.completion");
        assert!(r["id"].as_str().unwrap().starts_with("chatcmpl-"));
        let ch = &r["choices"][0];
        assert_eq!(ch["finish_reason"], "tool_calls");
        assert!(ch["message"]["content"].is_null());
        assert_eq!(ch["message"]["reasoning_content"], "Need weather.");
        let tc = &ch["message"]["tool_calls"][0];
        assert_eq!(tc["type"], "function");
        assert_eq!(tc["function"]["name"], "get_weather");
        assert_eq!(tc["function"]["arguments"], "{\"city\":\"Paris\"}");
        let id = tc["id"].as_str().unwrap();
        assert!(id.starts_with("call_") && id.len() == 37, "{id}");
        assert_eq!(
            r["usage"],
            json!({"prompt_tokens": 26, "completion_tokens": 282, "total_tokens": 308})
        );
    }

    #[test]
    fn generate_response_and_length_finish() {
        let body = br#"{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","response":"The sky is blue.",
          "done":true,"done_reason":"length","context":[1,2,3],"prompt_eval_count":10,"eval_count":5}"#;
        let r = parse_chat(body, "llama3.2").unwrap();
        assert_eq!(r["choices"][0]["message"]["content"], "The sky is blue.");
        assert_eq!(r["choices"][0]["finish_reason"], "length");
        assert_eq!(r["usage"]["total_tokens"], 15);
        assert_eq!(parse_chat(b"{}", "m").unwrap_err().status(), 500);
        let e = parse_chat(br#"{"error":"model 'nope' not found"}"#, "m").unwrap_err();
        assert_eq!(e.status(), 404);
    }

    /// A recorded `/api/chat` stream: text with a multi-byte character, then a tool call,
    /// then the final object with counts.
    const CHAT_STREAM: &str = concat!(
        r#"{"model":"llama3.2","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"Bonjour"},"done":false}"#,
        "\n",
        r#"{"model":"llama3.2","created_at":"2025-01-01T00:00:01Z","message":{"role":"assistant","content":" à toi 👋"},"done":false}"#,
        "\n",
        r#"{"model":"llama3.2","created_at":"2025-01-01T00:00:02Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},"done":false}"#,
        "\n",
        r#"{"model":"llama3.2","created_at":"2025-01-01T00:00:03Z","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":100,"prompt_eval_count":12,"eval_count":7}"#,
        "\n",
    );

    fn feed(raw: &[u8], cuts: &[usize]) -> Vec<StreamItem> {
        let mut st = StreamState::new("llama3.2");
        let mut out = VecDeque::new();
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&raw.len())) {
            st.push(&raw[prev..c], &mut out);
            prev = c;
        }
        st.finish(&mut out);
        out.into_iter().collect()
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
    fn ndjson_stream_in_awkward_slices() {
        let raw = CHAT_STREAM.as_bytes();
        // Cut inside the 4-byte emoji, inside "à", right after a newline, and byte by byte.
        let emoji = CHAT_STREAM.find('👋').unwrap();
        let agrave = CHAT_STREAM.find('à').unwrap();
        let nl = CHAT_STREAM.find('\n').unwrap();
        let slicings: Vec<Vec<usize>> = vec![
            vec![],
            vec![agrave + 1, emoji + 1, emoji + 3, nl + 1],
            (1..raw.len()).collect(),
        ];
        for mut cuts in slicings {
            cuts.sort_unstable();
            let items = feed(raw, &cuts);
            let c = chunks(&items);
            assert_eq!(c.len(), 5, "{items:?}");
            assert!(c.iter().all(|x| x["id"] == c[0]["id"]
                && x["model"] == "llama3.2"
                && x["object"] == "chat.completion.chunk"));
            assert_eq!(
                c[0]["choices"][0]["delta"],
                json!({"role": "assistant", "content": "Bonjour"})
            );
            assert_eq!(c[1]["choices"][0]["delta"], json!({"content": " à toi 👋"}));
            let tc = &c[2]["choices"][0]["delta"]["tool_calls"][0];
            assert_eq!(tc["index"], 0);
            assert_eq!(tc["function"]["arguments"], "{\"city\":\"Paris\"}");
            assert!(tc["id"].as_str().unwrap().starts_with("call_"));
            assert_eq!(c[3]["choices"][0]["finish_reason"], "tool_calls");
            assert_eq!(c[4]["choices"], json!([]));
            assert_eq!(
                c[4]["usage"],
                json!({"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19})
            );
            assert!(matches!(items.last(), Some(StreamItem::Done)));
        }
    }

    #[test]
    fn generate_stream_without_trailing_newline() {
        let raw = concat!(
            r#"{"model":"m","response":"Hi","done":false}"#,
            "\r\n\n",
            r#"{"model":"m","response":"","thinking":"hmm","done":false}"#,
            "\n",
            r#"{"model":"m","response":"","done":true,"done_reason":"length","prompt_eval_count":3,"eval_count":1}"#,
        );
        let items = feed(raw.as_bytes(), &[5]);
        let c = chunks(&items);
        assert_eq!(c[0]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(
            c[1]["choices"][0]["delta"],
            json!({"reasoning_content": "hmm"})
        );
        assert_eq!(c[2]["choices"][0]["finish_reason"], "length");
        assert_eq!(c[3]["usage"]["total_tokens"], 4);
        assert!(matches!(items.last(), Some(StreamItem::Done)));
    }

    #[test]
    fn long_line_in_many_reads_is_scanned_once() {
        let text = "x".repeat(200_000);
        let raw = format!(
            "{{\"response\":\"{text}\",\"done\":false}}\n{{\"response\":\"\",\"done\":true,\"done_reason\":\"stop\"}}\n"
        );
        let mut st = StreamState::new("m");
        let mut out = VecDeque::new();
        for piece in raw.as_bytes().chunks(7) {
            st.push(piece, &mut out);
            assert!(st.scanned == st.buf.len());
        }
        let c: Vec<StreamItem> = out.into_iter().collect();
        assert_eq!(
            chunks(&c)[0]["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .len(),
            200_000
        );
        assert!(matches!(c.last(), Some(StreamItem::Done)));
        assert!(st.buf.is_empty());
    }

    #[test]
    fn stream_error_lines_and_garbage() {
        let items = feed(
            b"{\"error\":\"model 'x' not found, try pulling it first\"}\n{\"error\":\"out of memory\"}\nnot json\n",
            &[],
        );
        match &items[0] {
            StreamItem::Error(e) => {
                assert_eq!(e.status(), 404);
                assert!(e.message.contains("OllamaException - model 'x' not found"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&items[1], StreamItem::Error(e) if e.status() == 500));
        assert!(matches!(&items[2], StreamItem::Error(e) if e.status() == 500));
    }

    #[test]
    fn errors_map() {
        let e = map_error(404, br#"{"error":"model 'llama9' not found"}"#);
        assert_eq!(e.class, ErrorClass::NotFound);
        assert_eq!(
            e.message,
            "litellm.NotFoundError: NotFoundError: OllamaException - model 'llama9' not found"
        );
        assert_eq!(
            map_error(
                400,
                br#"{"error":"registry.ollama.ai/library/gemma does not support tools"}"#
            )
            .status(),
            400
        );
        assert_eq!(
            map_error(500, br#"{"error":"llama runner process has terminated"}"#).status(),
            500
        );
        assert_eq!(error_status("invalid options"), 400);
        assert_eq!(error_status("something broke"), 500);
    }

    #[test]
    fn embeddings_translate_both_ways() {
        let b = embed_body(
            &obj(
                json!({"input": ["a", "b"], "model": "g", "encoding_format": "float", "keep_alive": "1m"}),
            ),
            "all-minilm",
        );
        assert_eq!(
            Value::Object(b),
            json!({"model": "all-minilm", "input": ["a", "b"], "keep_alive": "1m"})
        );
        let b = embed_body(&obj(json!({"input": "a", "dimensions": 128})), "m");
        assert_eq!(
            Value::Object(b),
            json!({"model": "m", "input": "a", "dimensions": 128})
        );
        let resp = br#"{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862],[-0.0098027075,0.06042469]],
          "total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8}"#;
        let r = parse_embed(resp, "all-minilm").unwrap();
        assert_eq!(
            Value::Object(r),
            json!({"object": "list", "data": [
                {"object": "embedding", "index": 0, "embedding": [0.010071029, -0.0017594862]},
                {"object": "embedding", "index": 1, "embedding": [-0.0098027075, 0.06042469]}
            ], "model": "all-minilm", "usage": {"prompt_tokens": 8, "total_tokens": 8}})
        );
        assert_eq!(parse_embed(b"{}", "m").unwrap_err().status(), 500);
    }
}
