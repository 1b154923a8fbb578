//! OpenAI response shapes that the native adapters build: completion objects, stream chunks,
//! and the assistant message (with LiteLLM's JSON-mode unwrapping). One place, so every
//! provider's answers look the same to clients.

use super::stream::StreamItem;
use serde_json::{json, Map, Value};

/// The tool LiteLLM forces for `response_format` on providers without a native JSON mode.
pub const JSON_TOOL: &str = "json_tool_call";

/// A `chat.completion.chunk` with these `choices`.
pub fn chunk_map(id: &str, created: i64, model: &str, choices: Value) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("id".into(), Value::String(id.to_string()));
    c.insert("object".into(), json!("chat.completion.chunk"));
    c.insert("created".into(), json!(created));
    c.insert("model".into(), Value::String(model.to_string()));
    c.insert("choices".into(), choices);
    c
}

/// A one-choice chunk (index 0).
pub fn chunk(
    id: &str,
    created: i64,
    model: &str,
    delta: Value,
    finish: Option<&str>,
) -> StreamItem {
    StreamItem::Chunk(chunk_map(
        id,
        created,
        model,
        json!([{"index": 0, "delta": delta, "finish_reason": finish}]),
    ))
}

/// The usage-only chunk that closes a translated stream.
pub fn usage_chunk(id: &str, created: i64, model: &str, usage: Value) -> StreamItem {
    let mut c = chunk_map(id, created, model, json!([]));
    c.insert("usage".into(), usage);
    StreamItem::Chunk(c)
}

/// OpenAI `usage` for providers that report cache reads and writes apart from the other input
/// tokens (Anthropic, Bedrock): both are folded into `prompt_tokens`, with the details alongside.
pub fn cached_usage(input: u64, read: u64, written: u64, output: u64) -> Value {
    // Counts come from the upstream: an absurd one saturates instead of overflowing.
    let prompt = input.saturating_add(read).saturating_add(written);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt.saturating_add(output),
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": written},
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
    })
}

/// A non-streaming `chat.completion`, created now.
pub fn completion(id: Value, model: Value, choices: Value, usage: Value) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), id);
    out.insert("created".into(), json!(chrono::Utc::now().timestamp()));
    out.insert("model".into(), model);
    out.insert("object".into(), json!("chat.completion"));
    out.insert("choices".into(), choices);
    out.insert("usage".into(), usage);
    out
}

/// The assistant message of a one-choice answer, and its finish reason. When the only tool call
/// is the forced [`JSON_TOOL`], its arguments become the content and the call is removed.
pub fn assistant_message(
    mut text: String,
    mut tool_calls: Vec<Value>,
    reasoning: String,
    thinking_blocks: Vec<Value>,
    mut finish: &'static str,
) -> (Map<String, Value>, &'static str) {
    if tool_calls.len() == 1
        && tool_calls[0]
            .pointer("/function/name")
            .and_then(Value::as_str)
            == Some(JSON_TOOL)
    {
        if let Some(args) = tool_calls[0]
            .pointer("/function/arguments")
            .and_then(Value::as_str)
        {
            text = args.to_string();
        }
        tool_calls.clear();
        finish = "stop";
    }
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
    if !thinking_blocks.is_empty() {
        message.insert("reasoning_content".into(), Value::String(reasoning));
        message.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    (message, finish)
}

/// One tool call from an assistant message in the request, with its arguments parsed.
pub struct AssistantCall {
    pub id: String,
    pub name: String,
    pub input: Value,
}

/// Removes an assistant message's `tool_calls` (and legacy `function_call`, given `legacy_id`)
/// and parses each call's JSON arguments (empty means `{}`); arguments that are not JSON are
/// a 400 naming `messages`.
pub fn take_assistant_calls(
    m: &mut Map<String, Value>,
    legacy_id: impl FnOnce() -> String,
) -> crate::error::ApiResult<Vec<AssistantCall>> {
    let mut calls = match m.remove("tool_calls") {
        Some(Value::Array(c)) => c,
        _ => Vec::new(),
    };
    if let Some(fc) = m.remove("function_call").filter(Value::is_object) {
        calls.push(json!({"id": legacy_id(), "function": fc}));
    }
    calls
        .into_iter()
        .map(|c| {
            let s = |p: &str| {
                c.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let args = s("/function/arguments");
            let input = if args.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str::<Value>(&args).map_err(|e| {
                    crate::error::ApiError::bad_request(format!(
                        "Invalid tool call arguments in an assistant message (not JSON: {e})"
                    ))
                    .with_param("messages")
                })?
            };
            Ok(AssistantCall {
                id: s("/id"),
                name: s("/function/name"),
                input,
            })
        })
        .collect()
}
