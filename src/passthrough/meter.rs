//! Reading a pass-through answer for its usage, as it streams by, and pricing it.
//!
//! LiteLLM prices pass-through answers it recognises (its `llm_provider_handlers`): Anthropic
//! `/v1/messages`, OpenAI-format `/chat/completions`, `/completions`, `/embeddings` and
//! `/responses`, Gemini `generateContent`, Cohere `/v2/chat` and `/v1/embed`; everything else
//! costs its route's `cost_per_request` only. The same answers are priced here, plain JSON or
//! SSE. A JSON answer is kept (by reference to its chunks, no copy) up to [`JSON_CAP`] to be
//! parsed at its end; an SSE answer is decoded event by event and only events that can carry
//! usage are parsed.

use crate::api::Usage;
use crate::providers::sse::SseDecoder;
use crate::spend::prices::{PriceMap, Rates};
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use serde_json::Value;

/// The largest JSON answer kept for its usage; a larger one is relayed unpriced.
const JSON_CAP: usize = 8 * 1024 * 1024;

/// Which wire format a route's answers are read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Anthropic's Messages API.
    Anthropic,
    /// OpenAI's format (chat, completions, embeddings, Responses API).
    OpenAi,
    /// Google AI Studio's `generateContent`.
    Gemini,
    /// Cohere's v2 chat and v1 embed.
    Cohere,
    /// Not priced from the answer.
    Unpriced,
}

impl Format {
    /// The format of an answer to `path` on a route speaking `family` (LiteLLM's route
    /// checks: which paths each logging handler claims).
    pub fn for_path(family: Format, path: &str) -> Format {
        let p = path.trim_end_matches('/');
        let priced = match family {
            Format::Anthropic => p.ends_with("/messages"),
            Format::OpenAi => [
                "/chat/completions",
                "/completions",
                "/embeddings",
                "/responses",
            ]
            .iter()
            .any(|s| p.ends_with(s)),
            Format::Gemini => {
                p.contains(":generateContent") || p.contains(":streamGenerateContent")
            }
            Format::Cohere => p.ends_with("/v2/chat") || p.ends_with("/v1/embed"),
            Format::Unpriced => false,
        };
        if priced {
            family
        } else {
            Format::Unpriced
        }
    }

    /// The format LiteLLM infers from a custom route's target host.
    pub fn for_host(host: &str) -> Format {
        if host == "api.anthropic.com" {
            Format::Anthropic
        } else if host.contains("openai.com") || host.ends_with("openai.azure.com") {
            Format::OpenAi
        } else if host == "generativelanguage.googleapis.com" {
            Format::Gemini
        } else {
            Format::Unpriced
        }
    }
}

/// Usage and model read so far from one answer.
pub struct Meter {
    format: Format,
    sse: Option<SseDecoder>,
    json: Vec<Bytes>,
    json_len: usize,
    usage: Option<Usage>,
    model: Option<String>,
    /// Anthropic's usage fields seen so far (a stream reports them across two events).
    anthropic_raw: Option<serde_json::Map<String, Value>>,
}

impl Meter {
    /// A meter for an answer with these headers, or `None` when it cannot be priced.
    pub fn new(format: Format, headers: &HeaderMap, model: Option<String>) -> Option<Self> {
        if format == Format::Unpriced {
            return None;
        }
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        // A compressed answer cannot be read on the way (accept-encoding is not forwarded,
        // so this is an upstream that compresses unasked).
        if headers.contains_key(header::CONTENT_ENCODING) {
            return None;
        }
        let sse = if ct.starts_with("text/event-stream") {
            Some(SseDecoder::new())
        } else if ct.contains("json") {
            None
        } else {
            return None;
        };
        Some(Self {
            format,
            sse,
            json: Vec::new(),
            json_len: 0,
            usage: None,
            model,
            anthropic_raw: None,
        })
    }

    pub fn feed(&mut self, chunk: &Bytes) {
        match self.sse.take() {
            Some(mut dec) => {
                dec.push(chunk);
                while let Some(ev) = dec.next_event() {
                    self.on_event(&ev.data);
                }
                self.sse = Some(dec);
            }
            None => {
                if self.json_len <= JSON_CAP {
                    self.json_len += chunk.len();
                    self.json.push(chunk.clone());
                }
            }
        }
    }

    /// The usage and model seen, once the answer has ended.
    pub fn finish(mut self) -> (Usage, Option<String>) {
        if let Some(mut dec) = self.sse.take() {
            if let Some(ev) = dec.finish() {
                self.on_event(&ev.data);
            }
        } else if self.json_len <= JSON_CAP {
            let whole: Vec<u8> = self.json.concat();
            if let Ok(v) = serde_json::from_slice::<Value>(&whole) {
                self.on_object(&v);
            }
        }
        (self.usage.unwrap_or_default(), self.model)
    }

    /// One SSE event's data: parsed only when it may carry usage or the model.
    fn on_event(&mut self, data: &str) {
        let interesting = ["usage", "usageMetadata", "billed_units", "message_start"]
            .iter()
            .any(|k| data.contains(k));
        if !interesting {
            return;
        }
        if let Ok(v) = serde_json::from_str::<Value>(data) {
            self.on_object(&v);
        }
    }

    /// A JSON answer, or one event of a stream.
    fn on_object(&mut self, v: &Value) {
        match self.format {
            Format::Anthropic => {
                // `message_start` carries the model and input usage; `message_delta` the
                // output tokens so far (and, in newer API versions, input counts again).
                let (msg, usage) = match v.get("type").and_then(Value::as_str) {
                    Some("message_start") => (v.get("message"), v.pointer("/message/usage")),
                    Some("message_delta") => (None, v.get("usage")),
                    _ => (Some(v), v.get("usage")),
                };
                self.take_model(msg.and_then(|m| m.get("model")));
                if let Some(u) = usage.filter(|u| u.is_object()) {
                    let mut merged = self.anthropic_raw.take().unwrap_or_default();
                    if let Some(o) = u.as_object() {
                        for (k, val) in o {
                            if !val.is_null() {
                                merged.insert(k.clone(), val.clone());
                            }
                        }
                    }
                    self.usage =
                        crate::providers::anthropic::native_usage(&Value::Object(merged.clone()));
                    self.anthropic_raw = Some(merged);
                }
            }
            Format::OpenAi => {
                // A Responses API stream event wraps the response.
                let obj = v.get("response").filter(|r| r.is_object()).unwrap_or(v);
                self.take_model(obj.get("model"));
                if let Some(u) = obj.get("usage").filter(|u| u.is_object()) {
                    self.usage = if u.get("input_tokens").is_some() {
                        Usage::from_responses(u)
                    } else {
                        Usage::from_json(u)
                    };
                }
            }
            Format::Gemini => {
                self.take_model(v.get("modelVersion"));
                if let Some(u) = v.get("usageMetadata").filter(|u| u.is_object()) {
                    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
                    let mut usage = Usage::new(
                        n("promptTokenCount"),
                        n("candidatesTokenCount") + n("thoughtsTokenCount"),
                    );
                    usage.cached_tokens = n("cachedContentTokenCount");
                    usage.reasoning_tokens = n("thoughtsTokenCount");
                    self.usage = Some(usage);
                }
            }
            Format::Cohere => {
                let units = v
                    .pointer("/usage/billed_units")
                    .or_else(|| v.pointer("/meta/billed_units"))
                    .or_else(|| v.pointer("/delta/usage/billed_units"));
                if let Some(b) = units {
                    let n = |k: &str| b.get(k).and_then(Value::as_f64).unwrap_or(0.0) as u64;
                    self.usage = Some(Usage::new(n("input_tokens"), n("output_tokens")));
                }
            }
            Format::Unpriced => {}
        }
    }

    fn take_model(&mut self, m: Option<&Value>) {
        if let Some(m) = m.and_then(Value::as_str).filter(|m| !m.is_empty()) {
            self.model = Some(m.to_string());
        }
    }
}

/// What `usage` of `model` costs at the price map's rates for `provider` (0 if unknown).
pub fn token_cost(provider: &str, model: &str, usage: &Usage) -> f64 {
    PriceMap::global()
        .lookup(None, provider, model)
        .map_or(0.0, |(_, p)| Rates::from_price(p).cost(usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
        h
    }

    fn run(format: Format, ct: &str, chunks: &[&str]) -> (Usage, Option<String>) {
        let mut m = Meter::new(format, &headers(ct), None).unwrap();
        for c in chunks {
            m.feed(&Bytes::copy_from_slice(c.as_bytes()));
        }
        m.finish()
    }

    #[test]
    fn anthropic_answers_and_streams() {
        let (u, m) = run(
            Format::Anthropic,
            "application/json",
            &[
                r#"{"type":"message","model":"claude-x","usage":{"input_tokens":11,"#,
                r#""cache_read_input_tokens":4,"output_tokens":6}}"#,
            ],
        );
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (15, 6, 4)
        );
        assert_eq!(m.as_deref(), Some("claude-x"));
        let (u, m) = run(
            Format::Anthropic,
            "text/event-stream",
            &[
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-y\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",",
                "\"usage\":{\"output_tokens\":4}}\n\n",
            ],
        );
        assert_eq!((u.prompt_tokens, u.completion_tokens), (9, 4));
        assert_eq!(m.as_deref(), Some("claude-y"));
    }

    #[test]
    fn openai_answers_streams_and_responses() {
        let (u, m) = run(
            Format::OpenAi,
            "application/json",
            &[
                r#"{"model":"gpt-4o","usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#,
            ],
        );
        assert_eq!((u.prompt_tokens, u.completion_tokens), (7, 3));
        assert_eq!(m.as_deref(), Some("gpt-4o"));
        let (u, _) = run(
            Format::OpenAi,
            "text/event-stream",
            &["data: {\"model\":\"gpt-4o\",\"choices\":[]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n"],
        );
        assert_eq!(u.total_tokens, 7);
        let (u, m) = run(
            Format::OpenAi,
            "text/event-stream",
            &["event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"o3\",\"usage\":{\"input_tokens\":4,\"output_tokens\":8}}}\n\n"],
        );
        assert_eq!((u.prompt_tokens, u.completion_tokens), (4, 8));
        assert_eq!(m.as_deref(), Some("o3"));
    }

    #[test]
    fn gemini_and_cohere_usage() {
        let (u, _) = run(
            Format::Gemini,
            "application/json",
            &[r#"{"usageMetadata":{"promptTokenCount":6,"candidatesTokenCount":3}}"#],
        );
        assert_eq!((u.prompt_tokens, u.completion_tokens), (6, 3));
        let (u, _) = run(
            Format::Cohere,
            "application/json",
            &[r#"{"usage":{"billed_units":{"input_tokens":2,"output_tokens":5}}}"#],
        );
        assert_eq!((u.prompt_tokens, u.completion_tokens), (2, 5));
    }

    #[test]
    fn unrecognised_answers_are_not_metered() {
        assert!(Meter::new(Format::Unpriced, &headers("application/json"), None).is_none());
        assert!(Meter::new(Format::OpenAi, &headers("audio/mpeg"), None).is_none());
        assert_eq!(
            Format::for_path(Format::Anthropic, "/v1/messages"),
            Format::Anthropic
        );
        assert_eq!(
            Format::for_path(Format::OpenAi, "/v1/files"),
            Format::Unpriced
        );
        assert_eq!(
            Format::for_path(Format::Gemini, "/v1beta/models/g:streamGenerateContent"),
            Format::Gemini
        );
    }
}
