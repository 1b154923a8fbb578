//! `mock_response`: canned answers with no network, as LiteLLM's SDK produces them.
//!
//! A string becomes the assistant's content with usage 10/20/30 (LiteLLM's observed values);
//! the special strings `litellm.<ErrorClass>` raise that error instead, which is how LiteLLM
//! users test retries and fallbacks. Streams yield one content chunk and a finish chunk.
//! Image generation and edit, moderation, speech and transcription mocks answer in their own
//! shapes (an image URL, an unflagged moderation, a short silent MP3, the mock text as the
//! transcript).

use crate::api::Usage;
use crate::error::{ApiError, ErrorClass};
use serde_json::{json, Map, Value};

/// Usage LiteLLM reports for a mocked completion.
pub const MOCK_USAGE: Usage = Usage {
    prompt_tokens: 10,
    completion_tokens: 20,
    total_tokens: 30,
    cached_tokens: 0,
    cache_creation_tokens: 0,
    reasoning_tokens: 0,
};

/// If the mock value names a LiteLLM exception, the error it raises.
pub fn mock_error(v: &Value, model: &str) -> Option<ApiError> {
    let s = v.as_str()?;
    let name = s.strip_prefix("litellm.")?;
    let class = match name {
        "RateLimitError" => ErrorClass::RateLimit,
        "InternalServerError" | "APIError" => ErrorClass::Internal,
        "ContextWindowExceededError" => ErrorClass::ContextWindowExceeded,
        "ContentPolicyViolationError" => ErrorClass::ContentPolicyViolation,
        "BadRequestError" => ErrorClass::BadRequest,
        "AuthenticationError" => ErrorClass::Authentication,
        "PermissionDeniedError" => ErrorClass::PermissionDenied,
        "NotFoundError" => ErrorClass::NotFound,
        "Timeout" => ErrorClass::Timeout,
        "UnprocessableEntityError" => ErrorClass::UnprocessableEntity,
        "ServiceUnavailableError" => ErrorClass::ServiceUnavailable,
        "BadGatewayError" => ErrorClass::BadGateway,
        "APIConnectionError" => ErrorClass::ApiConnection,
        _ => return None,
    };
    let cls = class.litellm_name();
    Some(ApiError::new(
        class,
        format!(
            "litellm.{cls}: {cls}: This is a mock exception for model={model}, to trigger a {cls}."
        ),
    ))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn new_chat_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4())
}

fn content_of(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        Value::Null => Value::String(String::new()),
        other => Value::String(other.to_string()),
    }
}

/// A non-streaming chat completion.
pub fn chat_response(v: &Value, model: &str) -> Map<String, Value> {
    if let Some(obj) = v.as_object().filter(|o| o.contains_key("choices")) {
        let mut o = obj.clone();
        o.insert("model".into(), Value::String(model.into()));
        return o;
    }
    let r = json!({
        "id": new_chat_id(),
        "created": now(),
        "model": model,
        "object": "chat.completion",
        "choices": [{"finish_reason": "stop", "index": 0, "message": {"content": content_of(v), "role": "assistant"}}],
        "usage": MOCK_USAGE.to_json(),
    });
    match r {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The chunks of a streamed mock (without the `[DONE]` marker).
pub fn chat_chunks(v: &Value, model: &str) -> Vec<Map<String, Value>> {
    let id = new_chat_id();
    let created = now();
    let chunk = |choices: Value, usage: Option<Value>| {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(id.clone()));
        m.insert("created".into(), json!(created));
        m.insert("model".into(), Value::String(model.into()));
        m.insert(
            "object".into(),
            Value::String("chat.completion.chunk".into()),
        );
        m.insert("choices".into(), choices);
        if let Some(u) = usage {
            m.insert("usage".into(), u);
        }
        m
    };
    vec![
        chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": content_of(v)}}]),
            None,
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            None,
        ),
        chunk(json!([]), Some(MOCK_USAGE.to_json())),
    ]
}

/// A mocked embeddings response: LiteLLM returns the mock value itself as the embedding.
pub fn embedding_response(v: &Value, model: &str, inputs: usize) -> Map<String, Value> {
    let data: Vec<Value> = (0..inputs.max(1))
        .map(|i| json!({"embedding": v, "index": i, "object": "embedding"}))
        .collect();
    let r = json!({
        "model": model,
        "data": data,
        "object": "list",
        "usage": {"prompt_tokens": MOCK_USAGE.prompt_tokens, "total_tokens": MOCK_USAGE.prompt_tokens},
    });
    match r {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A mocked legacy text completion.
pub fn text_completion_response(v: &Value, model: &str) -> Map<String, Value> {
    let r = json!({
        "id": format!("cmpl-{}", uuid::Uuid::new_v4()),
        "created": now(),
        "model": model,
        "object": "text_completion",
        "choices": [{"finish_reason": "stop", "index": 0, "text": content_of(v), "logprobs": null}],
        "usage": MOCK_USAGE.to_json(),
    });
    match r {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Usage LiteLLM reports for a mocked Responses API call.
pub const MOCK_RESPONSES_USAGE: Usage = Usage {
    prompt_tokens: 36,
    completion_tokens: 87,
    total_tokens: 123,
    cached_tokens: 0,
    cache_creation_tokens: 0,
    reasoning_tokens: 0,
};

/// A completed Responses API object with the mock text as its one output message.
pub fn responses_response(v: &Value, model: &str) -> Map<String, Value> {
    let id = uuid::Uuid::new_v4().simple();
    let u = MOCK_RESPONSES_USAGE;
    let r = json!({
        "id": format!("resp_{id}"),
        "object": "response",
        "created_at": now(),
        "status": "completed",
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": model,
        "output": [{
            "type": "message",
            "id": format!("msg_{id}"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": content_of(v), "annotations": []}],
        }],
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": true,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": u.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": u.completion_tokens,
            "output_tokens_details": {},
            "total_tokens": u.total_tokens,
        },
        "user": null,
        "metadata": {},
    });
    match r {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The events of a streamed mock Responses API call, as (event name, payload): the response
/// created, its text in one delta, the text done, and the completed response.
pub fn responses_events(v: &Value, model: &str) -> Vec<(&'static str, Value)> {
    let done = responses_response(v, model);
    let mut started = done.clone();
    started.insert("status".into(), json!("in_progress"));
    started.insert("output".into(), json!([]));
    started.insert("usage".into(), Value::Null);
    let item_id = done
        .get("output")
        .and_then(|o| o.pointer("/0/id"))
        .cloned()
        .unwrap_or(Value::Null);
    let text = content_of(v);
    vec![
        (
            "response.created",
            json!({"type": "response.created", "sequence_number": 0, "response": started}),
        ),
        (
            "response.output_text.delta",
            json!({"type": "response.output_text.delta", "sequence_number": 1, "item_id": item_id, "output_index": 0, "content_index": 0, "delta": text}),
        ),
        (
            "response.output_text.done",
            json!({"type": "response.output_text.done", "sequence_number": 2, "item_id": item_id, "output_index": 0, "content_index": 0, "text": text}),
        ),
        (
            "response.completed",
            json!({"type": "response.completed", "sequence_number": 3, "response": done}),
        ),
    ]
}

/// A mocked image generation: LiteLLM answers one image whose `url` is the mock value (a
/// value that already has `data` is returned as it is), with zero usage.
pub fn image_response(v: &Value) -> Map<String, Value> {
    if let Some(obj) = v.as_object().filter(|o| o.contains_key("data")) {
        return obj.clone();
    }
    let r = json!({
        "created": now(),
        "data": [{"url": content_of(v)}],
        "usage": {
            "input_tokens": 0,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
            "output_tokens": 0,
            "total_tokens": 0,
        },
    });
    match r {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A mocked transcription (LiteLLM has none: its transcriptions always go upstream): the mock
/// value as the transcript, in LiteLLM's `TranscriptionResponse` shape (a value that already
/// has `text` is returned as it is).
pub fn transcription_response(v: &Value) -> Map<String, Value> {
    if let Some(obj) = v.as_object().filter(|o| o.contains_key("text")) {
        return obj.clone();
    }
    let mut m = Map::new();
    m.insert("text".into(), content_of(v));
    m.insert("usage".into(), Value::Null);
    m
}

/// OpenAI's moderation categories (omni-moderation), each reported for a mocked input.
const MODERATION_CATEGORIES: [&str; 13] = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

/// A mocked moderation (LiteLLM has none: its moderations always go upstream): OpenAI's
/// shape, one unflagged result per input item, every category false and scored 0.
pub fn moderation_response(model: &str, inputs: usize) -> Map<String, Value> {
    let categories: Map<String, Value> = MODERATION_CATEGORIES
        .iter()
        .map(|c| (c.to_string(), Value::Bool(false)))
        .collect();
    let scores: Map<String, Value> = MODERATION_CATEGORIES
        .iter()
        .map(|c| (c.to_string(), json!(0.0)))
        .collect();
    let applied: Map<String, Value> = MODERATION_CATEGORIES
        .iter()
        .map(|c| (c.to_string(), json!(["text"])))
        .collect();
    let result = json!({
        "flagged": false,
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    });
    let model = if model.is_empty() {
        "omni-moderation-latest"
    } else {
        model
    };
    let r = json!({
        "id": format!("modr-{}", uuid::Uuid::new_v4().simple()),
        "model": model,
        "results": vec![result; inputs.max(1)],
    });
    match r {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Size of one MPEG-1 Layer III frame at 128 kbit/s and 44.1 kHz, without padding:
/// 144 * 128000 / 44100 bytes.
const MP3_FRAME_BYTES: usize = 417;
/// Frames in a mocked speech answer: about a fifth of a second (26 ms each).
const MOCK_SPEECH_FRAMES: usize = 8;

/// A mocked speech answer (LiteLLM has none: its speech calls always go upstream): a short
/// silent MP3, served as `audio/mpeg`. Each frame is a header and zeroed side information,
/// which decoders play as silence.
pub fn speech_audio() -> bytes::Bytes {
    let mut frame = vec![0u8; MP3_FRAME_BYTES];
    // Sync word, MPEG-1 Layer III without CRC, 128 kbit/s, 44.1 kHz, mono.
    frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0xC4]);
    bytes::Bytes::from(frame.repeat(MOCK_SPEECH_FRAMES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_mock_shapes() {
        let r = image_response(&json!("https://example.com/cat.png"));
        assert_eq!(r["data"][0]["url"], "https://example.com/cat.png");
        assert!(r["created"].as_i64().unwrap() > 0);
        assert_eq!(r["usage"]["total_tokens"], 0);
        let own = image_response(&json!({"created": 1, "data": [{"b64_json": "AA=="}]}));
        assert_eq!(own["data"][0]["b64_json"], "AA==");
        let m = moderation_response("", 2);
        assert_eq!(m["model"], "omni-moderation-latest");
        assert_eq!(m["results"].as_array().unwrap().len(), 2);
        assert_eq!(m["results"][0]["flagged"], false);
        assert_eq!(m["results"][1]["categories"]["violence"], false);
        let t = transcription_response(&json!("hello there"));
        assert_eq!(
            Value::Object(t),
            json!({"text": "hello there", "usage": null})
        );
        let own = transcription_response(&json!({"text": "x", "duration": 1.5}));
        assert_eq!(own["duration"], 1.5);
        let audio = speech_audio();
        assert_eq!(audio.len(), MP3_FRAME_BYTES * MOCK_SPEECH_FRAMES);
        assert_eq!(&audio[..2], &[0xFF, 0xFB]);
    }

    #[test]
    fn mock_shapes() {
        let r = chat_response(&json!("hi"), "g");
        assert_eq!(r["choices"][0]["message"]["content"], "hi");
        assert_eq!(r["usage"]["total_tokens"], 30);
        assert!(r["id"].as_str().unwrap().starts_with("chatcmpl-"));
        let c = chat_chunks(&json!("hi"), "g");
        assert_eq!(c.len(), 3);
        assert_eq!(c[1]["choices"][0]["finish_reason"], "stop");
        assert!(mock_error(&json!("hi"), "g").is_none());
        let e = mock_error(&json!("litellm.RateLimitError"), "g").unwrap();
        assert_eq!(e.status(), 429);
    }
}
