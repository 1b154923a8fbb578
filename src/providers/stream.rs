//! Re-streaming: upstream bytes -> OpenAI chunks -> client SSE frames, one read at a time.
//!
//! A [`Dialect`] decodes a provider's stream framing into [`StreamItem`]s (OpenAI
//! `chat.completion.chunk` objects); an [`Encoder`] turns them into the client's wire format.
//! Nothing is buffered beyond the current read: each upstream read is forwarded as soon as it
//! forms complete events. [`open`] reads up to the first event before the handler answers, so an
//! upstream failure before any output is still a normal JSON error (and can be retried). A
//! [`StreamTap`] sees every chunk and reports usage exactly once, on completion, error or drop
//! (client disconnect), so spend is never lost.

use super::sse::{frame, SseDecoder, DONE_FRAME};
use super::Provider;
use crate::api::Usage;
use crate::error::{ApiError, ErrorClass};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One decoded upstream event, already in OpenAI's chunk shape.
#[derive(Debug)]
pub enum StreamItem {
    Chunk(Map<String, Value>),
    /// An upstream event forwarded as it came (same wire format on both sides), with the
    /// usage known so far and the characters of output it carried.
    Raw {
        frame: Bytes,
        usage: Option<Usage>,
        output_chars: usize,
    },
    Done,
    Error(ApiError),
}

/// Upstream stream framings.
#[derive(Debug)]
pub enum Dialect {
    /// OpenAI-format SSE (`data: {chunk}` ... `data: [DONE]`).
    OpenAi { sse: SseDecoder, provider: Provider },
    /// OpenAI-format SSE to an OpenAI client: each chunk's top level is rewritten in place
    /// (`model`, `usage`) instead of being parsed into a tree and serialised again.
    OpenAiRewrite {
        sse: SseDecoder,
        provider: Provider,
        /// The group name as a JSON string (see [`crate::api::rewrite::model_json`]).
        model: Box<[u8]>,
        include_usage: bool,
    },
    /// Anthropic Messages events, translated to OpenAI chunks.
    Anthropic {
        sse: SseDecoder,
        state: Box<super::anthropic::StreamState>,
    },
    /// Anthropic Messages events forwarded untouched (`/v1/messages` to an Anthropic
    /// deployment); only usage is read on the way.
    AnthropicRaw {
        sse: SseDecoder,
        usage: Map<String, Value>,
    },
    /// Responses API events forwarded untouched (`/responses`) but for the `id` of the
    /// response object the lifecycle events carry, managed when `ids` is set; usage is read
    /// from the closing `response.completed` (or `.incomplete` / `.failed`) event.
    ResponsesRaw {
        sse: SseDecoder,
        ids: Option<Box<crate::api::response_id::Issuer>>,
    },
    /// Gemini / Vertex AI `streamGenerateContent?alt=sse`.
    Gemini {
        sse: SseDecoder,
        state: Box<super::gemini::StreamState>,
    },
    /// Cohere v2 chat events.
    Cohere {
        sse: SseDecoder,
        state: Box<super::cohere::StreamState>,
    },
    /// Ollama's newline-delimited JSON.
    Ollama(Box<super::ollama::StreamState>),
    /// Bedrock ConverseStream: AWS event-stream binary frames.
    Bedrock {
        decoder: super::aws::EventStreamDecoder,
        state: Box<super::bedrock::StreamState>,
    },
}

impl Dialect {
    pub fn openai(provider: Provider) -> Self {
        Self::OpenAi {
            sse: SseDecoder::new(),
            provider,
        }
    }

    /// See [`Dialect::OpenAiRewrite`]: `model` is the group name the client asked for.
    pub fn openai_rewrite(provider: Provider, model: &str, include_usage: bool) -> Self {
        Self::OpenAiRewrite {
            sse: SseDecoder::new(),
            provider,
            model: crate::api::rewrite::model_json(model),
            include_usage,
        }
    }

    pub fn anthropic() -> Self {
        Self::Anthropic {
            sse: SseDecoder::new(),
            state: Box::default(),
        }
    }

    pub fn anthropic_raw() -> Self {
        Self::AnthropicRaw {
            sse: SseDecoder::new(),
            usage: Map::new(),
        }
    }

    /// See [`Dialect::ResponsesRaw`].
    pub fn responses_raw(ids: Option<crate::api::response_id::Issuer>) -> Self {
        Self::ResponsesRaw {
            sse: SseDecoder::new(),
            ids: ids.map(Box::new),
        }
    }

    /// Takes one upstream read. SSE dialects only buffer it (their events are decoded one at a
    /// time by [`Self::decode_next`]); the others decode it whole into `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut VecDeque<StreamItem>) {
        match self {
            Self::Ollama(state) => state.push(bytes, out),
            Self::Bedrock { decoder, state } => state.feed(decoder, bytes, out),
            _ => {
                if let Some(sse) = self.sse() {
                    sse.push(bytes);
                }
            }
        }
    }

    /// Decodes the next buffered SSE event into `out`; `false` when none is complete. A read
    /// holding many events is thus translated as the client consumes it, and the first event
    /// goes out without waiting for the others to be rewritten.
    pub fn decode_next(&mut self, out: &mut VecDeque<StreamItem>) -> bool {
        // The common case reads each event where the decoder keeps it.
        if let Self::OpenAiRewrite {
            sse,
            provider,
            model,
            include_usage,
        } = self
        {
            return match sse.next_event_ref() {
                Some(ev) => {
                    out.push_back(rewrite_item(ev.data, *provider, model, *include_usage));
                    true
                }
                None => false,
            };
        }
        match self.sse().and_then(SseDecoder::next_event) {
            Some(ev) => {
                self.on_event(ev, out);
                true
            }
            None => false,
        }
    }

    /// Decodes one upstream read whole.
    pub fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<StreamItem>) {
        self.push(bytes, out);
        while self.decode_next(out) {}
    }

    /// The upstream closed: flush whatever is left.
    pub fn finish(&mut self, out: &mut VecDeque<StreamItem>) {
        match self {
            Self::Ollama(state) => state.finish(out),
            Self::Bedrock { .. } => {}
            _ => {
                if let Some(ev) = self.sse().and_then(SseDecoder::finish) {
                    self.on_event(ev, out);
                }
            }
        }
    }

    fn sse(&mut self) -> Option<&mut SseDecoder> {
        match self {
            Self::OpenAi { sse, .. }
            | Self::OpenAiRewrite { sse, .. }
            | Self::Anthropic { sse, .. }
            | Self::AnthropicRaw { sse, .. }
            | Self::ResponsesRaw { sse, .. }
            | Self::Gemini { sse, .. }
            | Self::Cohere { sse, .. } => Some(sse),
            Self::Ollama(_) | Self::Bedrock { .. } => None,
        }
    }

    fn on_event(&mut self, ev: super::sse::SseEvent, out: &mut VecDeque<StreamItem>) {
        match self {
            Self::OpenAi { provider, .. } => out.push_back(openai_item(&ev.data, *provider)),
            Self::OpenAiRewrite {
                provider,
                model,
                include_usage,
                ..
            } => out.push_back(rewrite_item(&ev.data, *provider, model, *include_usage)),
            Self::Anthropic { state, .. } => state.on_event(&ev.data, out),
            Self::AnthropicRaw { usage, .. } => raw_anthropic_item(ev, usage, out),
            Self::ResponsesRaw { ids, .. } => raw_responses_item(ev, ids.as_deref(), out),
            Self::Gemini { state, .. } => state.on_event(&ev.data, out),
            Self::Cohere { state, .. } => state.on_event(&ev.data, out),
            Self::Ollama(_) | Self::Bedrock { .. } => {}
        }
    }
}

/// One OpenAI chunk for an OpenAI client (see [`Dialect::OpenAiRewrite`]).
fn rewrite_item(data: &str, provider: Provider, model: &[u8], include_usage: bool) -> StreamItem {
    // The chunk scan allows whitespace around the object, so only a short event is trimmed
    // to look for the end marker (a longer one, if ever, reaches `openai_item`, which trims).
    if data.len() < 16 && data.trim() == "[DONE]" {
        return StreamItem::Done;
    }
    match crate::api::rewrite::stream_chunk(data.as_bytes(), model, include_usage) {
        Some(r) => StreamItem::Raw {
            frame: r.frame.unwrap_or_default(),
            usage: r.usage,
            output_chars: r.output_chars,
        },
        // Errors and unusual chunks take the general path.
        None => openai_item(data, provider),
    }
}

/// Forwards one Anthropic event, noting usage (`message_start` carries the input side,
/// `message_delta` the output) and the end of the message.
fn raw_anthropic_item(
    ev: super::sse::SseEvent,
    usage: &mut Map<String, Value>,
    out: &mut VecDeque<StreamItem>,
) {
    let v: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "error" {
        let status = super::anthropic::error_type_status(
            v.pointer("/error/type")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        out.push_back(StreamItem::Error(super::anthropic::map_error(
            status,
            ev.data.as_bytes(),
        )));
        return;
    }
    let found = match kind {
        "message_start" => v.pointer("/message/usage"),
        "message_delta" => v.get("usage"),
        _ => None,
    };
    if let Some(Value::Object(u)) = found {
        for (k, val) in u {
            if !val.is_null() {
                usage.insert(k.clone(), val.clone());
            }
        }
    }
    let output_chars = match v.get("delta") {
        Some(d) if kind == "content_block_delta" => ["text", "partial_json", "thinking"]
            .iter()
            .filter_map(|k| d.get(*k).and_then(Value::as_str))
            .map(str::len)
            .sum(),
        _ => 0,
    };
    let name = ev.event.as_deref().unwrap_or(kind);
    out.push_back(StreamItem::Raw {
        frame: super::sse::named_frame(name, ev.data.as_bytes()),
        usage: found.and_then(|_| super::anthropic::native_usage(&Value::Object(usage.clone()))),
        output_chars,
    });
    if kind == "message_stop" {
        out.push_back(StreamItem::Done);
    }
}

/// Forwards one Responses API event as it came (an event carrying the response object with
/// that object's `id` managed, when `ids` is set), noting the output text it carries and, on
/// the closing event, the response's usage; the closing event (or an `error` event) ends the
/// stream.
fn raw_responses_item(
    ev: super::sse::SseEvent,
    ids: Option<&crate::api::response_id::Issuer>,
    out: &mut VecDeque<StreamItem>,
) {
    let v: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    // Only the events whose response object has an id are touched (LiteLLM rewrites every
    // event carrying `response`).
    let rewritten = ids
        .filter(|_| v.pointer("/response/id").is_some_and(Value::is_string))
        .and_then(|ids| ids.event(ev.data.as_bytes()));
    let data = rewritten.as_deref().unwrap_or(ev.data.as_bytes());
    let closing = matches!(
        kind,
        "response.completed" | "response.incomplete" | "response.failed"
    );
    let usage = closing
        .then(|| v.pointer("/response/usage").and_then(Usage::from_responses))
        .flatten();
    let output_chars = match kind {
        "response.output_text.delta" | "response.function_call_arguments.delta" => {
            v.get("delta").and_then(Value::as_str).map_or(0, str::len)
        }
        _ => 0,
    };
    let name = ev.event.as_deref().unwrap_or(kind);
    let frame = if name.is_empty() {
        frame(data)
    } else {
        super::sse::named_frame(name, data)
    };
    out.push_back(StreamItem::Raw {
        frame,
        usage,
        output_chars,
    });
    if closing || kind == "error" {
        out.push_back(StreamItem::Done);
    }
}

fn openai_item(data: &str, provider: Provider) -> StreamItem {
    let data = data.trim();
    if data == "[DONE]" {
        return StreamItem::Done;
    }
    match serde_json::from_str::<Map<String, Value>>(data) {
        Ok(m) if m.contains_key("error") => {
            let status = m
                .get("error")
                .and_then(|e| e.get("code"))
                .and_then(|c| {
                    c.as_str()
                        .and_then(|s| s.parse().ok())
                        .or_else(|| c.as_u64().map(|x| x as u16))
                })
                .unwrap_or(500);
            StreamItem::Error(super::openai::map_error(provider, status, data.as_bytes()))
        }
        Ok(m) => StreamItem::Chunk(m),
        Err(e) => StreamItem::Error(ApiError::new(
            ErrorClass::Internal,
            format!(
                "litellm.APIError: APIError: {} - invalid stream chunk from upstream: {e}",
                provider.exception_label()
            ),
        )),
    }
}

/// Client wire formats.
#[derive(Debug)]
pub enum Encoder {
    /// OpenAI SSE. `model` is the group name the client asked for.
    OpenAi {
        model: Arc<str>,
        include_usage: bool,
    },
    /// Anthropic Messages events built from OpenAI chunks (`/v1/messages` served by a
    /// non-Anthropic deployment).
    Anthropic(Box<crate::api::messages::EventEncoder>),
    /// Upstream frames forwarded as they are ([`StreamItem::Raw`]).
    Passthrough,
}

impl Encoder {
    fn encode(&mut self, item: StreamItem) -> Option<Bytes> {
        if let StreamItem::Raw { frame, .. } = item {
            return (!frame.is_empty()).then_some(frame);
        }
        match self {
            Self::Passthrough => match item {
                StreamItem::Error(e) => Some(crate::api::messages::error_frame(&e)),
                _ => None,
            },
            Self::Anthropic(enc) => enc.encode(item),
            Self::OpenAi {
                model,
                include_usage,
            } => match item {
                StreamItem::Done => Some(Bytes::from_static(DONE_FRAME)),
                StreamItem::Error(e) => Some(frame(e.to_json().to_string().as_bytes())),
                StreamItem::Raw { .. } => None,
                StreamItem::Chunk(mut c) => {
                    if c.contains_key("model") {
                        c.insert("model".into(), Value::String(model.to_string()));
                    }
                    if !*include_usage {
                        let usage_only = c
                            .get("choices")
                            .and_then(Value::as_array)
                            .is_some_and(Vec::is_empty)
                            && c.get("usage").is_some_and(|u| !u.is_null());
                        if usage_only {
                            return None;
                        }
                        c.remove("usage");
                    }
                    Some(frame(&crate::api::json_out::map_to_vec(&c, 256)))
                }
            },
        }
    }

    /// A failure after the stream started, in the client's format.
    fn error_frame(&mut self, e: &ApiError) -> Bytes {
        match self {
            Self::OpenAi { .. } => frame(e.to_json().to_string().as_bytes()),
            Self::Anthropic(_) | Self::Passthrough => crate::api::messages::error_frame(e),
        }
    }
}

/// What a finished stream reports to whoever accounts for it.
#[derive(Debug, Clone)]
pub struct StreamSummary {
    pub usage: Option<Usage>,
    /// The upstream reached its end marker (`[DONE]` or equivalent).
    pub completed: bool,
    /// Characters of content/tool-call text streamed, to estimate tokens if usage is missing.
    pub output_chars: usize,
    pub error: Option<ApiError>,
    pub first_chunk_at: Option<Instant>,
    pub ended_at: Instant,
    /// The streamed answer put back together, when [`StreamTap::collect_output`] asked for it.
    pub output: Option<Value>,
}

pub type OnFinish = Box<dyn FnOnce(StreamSummary) + Send + 'static>;

/// Watches chunks; fires `on_finish` exactly once (end, error or drop).
pub struct StreamTap {
    usage: Option<Usage>,
    completed: bool,
    output_chars: usize,
    error: Option<ApiError>,
    first_chunk_at: Option<Instant>,
    on_finish: Option<OnFinish>,
    /// Assembles the answer for the logging callbacks; `None` (the default) costs nothing.
    collector: Option<Box<OutputCollector>>,
}

impl StreamTap {
    pub fn new(on_finish: Option<OnFinish>) -> Self {
        Self {
            usage: None,
            completed: false,
            output_chars: 0,
            error: None,
            first_chunk_at: None,
            on_finish,
            collector: None,
        }
    }

    /// Also puts the streamed answer back together (reported in [`StreamSummary::output`]).
    /// The client's stream is unchanged: the pieces are copied as they pass.
    pub fn collect_output(&mut self) {
        self.collector = Some(Box::default());
    }

    fn observe(&mut self, item: &StreamItem) {
        if let Some(c) = self.collector.as_deref_mut() {
            c.observe(item);
        }
        match item {
            StreamItem::Chunk(c) => {
                self.first_chunk_at.get_or_insert_with(Instant::now);
                if let Some(u) = c.get("usage").and_then(Usage::from_json) {
                    self.usage = Some(u);
                }
                if let Some(choices) = c.get("choices").and_then(Value::as_array) {
                    for ch in choices {
                        let Some(delta) = ch.get("delta") else {
                            continue;
                        };
                        if let Some(s) = delta.get("content").and_then(Value::as_str) {
                            self.output_chars += s.len();
                        }
                        if let Some(tcs) = delta.get("tool_calls").and_then(Value::as_array) {
                            for tc in tcs {
                                if let Some(a) =
                                    tc.pointer("/function/arguments").and_then(Value::as_str)
                                {
                                    self.output_chars += a.len();
                                }
                            }
                        }
                    }
                }
            }
            StreamItem::Raw {
                usage,
                output_chars,
                ..
            } => {
                self.first_chunk_at.get_or_insert_with(Instant::now);
                if usage.is_some() {
                    self.usage = *usage;
                }
                self.output_chars += output_chars;
            }
            StreamItem::Done => self.completed = true,
            StreamItem::Error(e) => self.error = Some(e.clone()),
        }
    }

    fn fire(&mut self) {
        if let Some(f) = self.on_finish.take() {
            f(StreamSummary {
                usage: self.usage,
                completed: self.completed,
                output_chars: self.output_chars,
                error: self.error.take(),
                first_chunk_at: self.first_chunk_at,
                ended_at: Instant::now(),
                output: self.collector.take().map(|c| c.finish()),
            });
        }
    }
}

impl Drop for StreamTap {
    fn drop(&mut self) {
        self.fire();
    }
}

/// Puts a streamed answer back together as a `chat.completion` object (or, for the Responses
/// API, the closing event's response object), from OpenAI chunks and from frames forwarded as
/// they came (OpenAI chunks, Anthropic Messages events, Responses API events).
#[derive(Debug, Default)]
pub struct OutputCollector {
    id: Option<Value>,
    model: Option<Value>,
    created: Option<Value>,
    system_fingerprint: Option<Value>,
    role: Option<Value>,
    content: String,
    reasoning: String,
    /// Tool calls by index: id, name and the arguments streamed so far.
    tool_calls: Vec<(Option<Value>, Option<Value>, String)>,
    finish_reason: Option<Value>,
    usage: Option<Value>,
    /// The Responses API's own final object (`response.completed` and friends).
    response: Option<Value>,
}

impl OutputCollector {
    fn observe(&mut self, item: &StreamItem) {
        match item {
            StreamItem::Chunk(c) => self.chunk(c),
            StreamItem::Raw { frame, .. } => {
                for line in frame.split(|b| *b == b'\n') {
                    let Some(data) = line.strip_prefix(b"data:") else {
                        continue;
                    };
                    if let Ok(Value::Object(ev)) = serde_json::from_slice::<Value>(data) {
                        self.event(&ev);
                    }
                }
            }
            StreamItem::Done | StreamItem::Error(_) => {}
        }
    }

    fn keep(slot: &mut Option<Value>, v: Option<&Value>) {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            slot.get_or_insert_with(|| v.clone());
        }
    }

    /// One OpenAI `chat.completion.chunk`.
    fn chunk(&mut self, c: &Map<String, Value>) {
        Self::keep(&mut self.id, c.get("id"));
        Self::keep(&mut self.model, c.get("model"));
        Self::keep(&mut self.created, c.get("created"));
        Self::keep(&mut self.system_fingerprint, c.get("system_fingerprint"));
        if let Some(u) = c.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = c
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        else {
            return;
        };
        if let Some(f) = choice.get("finish_reason").filter(|f| !f.is_null()) {
            self.finish_reason = Some(f.clone());
        }
        let Some(delta) = choice.get("delta") else {
            return;
        };
        Self::keep(&mut self.role, delta.get("role"));
        if let Some(s) = delta.get("content").and_then(Value::as_str) {
            self.content.push_str(s);
        }
        if let Some(s) = delta.get("reasoning_content").and_then(Value::as_str) {
            self.reasoning.push_str(s);
        }
        for tc in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = tc.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            if i >= self.tool_calls.len() {
                self.tool_calls.resize(i + 1, (None, None, String::new()));
            }
            let slot = &mut self.tool_calls[i];
            Self::keep(&mut slot.0, tc.get("id"));
            Self::keep(&mut slot.1, tc.pointer("/function/name"));
            if let Some(a) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                slot.2.push_str(a);
            }
        }
    }

    /// One event forwarded as it came.
    fn event(&mut self, ev: &Map<String, Value>) {
        if ev.contains_key("choices") {
            return self.chunk(ev);
        }
        match ev.get("type").and_then(Value::as_str).unwrap_or("") {
            "response.completed" | "response.incomplete" | "response.failed" => {
                self.response = ev.get("response").cloned();
            }
            "message_start" => {
                let m = ev.get("message");
                Self::keep(&mut self.id, m.and_then(|m| m.get("id")));
                Self::keep(&mut self.model, m.and_then(|m| m.get("model")));
                Self::keep(&mut self.role, m.and_then(|m| m.get("role")));
            }
            "content_block_start" => {
                if let Some(b) = ev
                    .get("content_block")
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
                {
                    self.tool_calls.push((
                        b.get("id").cloned(),
                        b.get("name").cloned(),
                        String::new(),
                    ));
                }
            }
            "content_block_delta" => {
                let d = ev.get("delta");
                if let Some(s) = d.and_then(|d| d.get("text")).and_then(Value::as_str) {
                    self.content.push_str(s);
                }
                if let Some(s) = d.and_then(|d| d.get("thinking")).and_then(Value::as_str) {
                    self.reasoning.push_str(s);
                }
                if let Some(s) = d
                    .and_then(|d| d.get("partial_json"))
                    .and_then(Value::as_str)
                {
                    if let Some(last) = self.tool_calls.last_mut() {
                        last.2.push_str(s);
                    }
                }
            }
            "message_delta" => {
                if let Some(r) = ev
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .filter(|r| !r.is_null())
                {
                    self.finish_reason = Some(r.clone());
                }
            }
            _ => {}
        }
    }

    fn finish(self) -> Value {
        if let Some(r) = self.response {
            return r;
        }
        let mut message = Map::new();
        message.insert(
            "content".into(),
            if self.content.is_empty() && !self.tool_calls.is_empty() {
                Value::Null
            } else {
                Value::String(self.content)
            },
        );
        message.insert(
            "role".into(),
            self.role
                .unwrap_or_else(|| Value::String("assistant".into())),
        );
        if !self.tool_calls.is_empty() {
            let calls: Vec<Value> = self
                .tool_calls
                .into_iter()
                .map(|(id, name, args)| {
                    serde_json::json!({
                        "id": id,
                        "type": "function",
                        "function": {"name": name, "arguments": args},
                    })
                })
                .collect();
            message.insert("tool_calls".into(), Value::Array(calls));
        }
        if !self.reasoning.is_empty() {
            message.insert("reasoning_content".into(), Value::String(self.reasoning));
        }
        let mut out = Map::new();
        out.insert("id".into(), self.id.unwrap_or(Value::Null));
        out.insert("object".into(), Value::String("chat.completion".into()));
        out.insert("created".into(), self.created.unwrap_or(Value::Null));
        out.insert("model".into(), self.model.unwrap_or(Value::Null));
        if let Some(fp) = self.system_fingerprint {
            out.insert("system_fingerprint".into(), fp);
        }
        out.insert(
            "choices".into(),
            serde_json::json!([{
                "index": 0,
                "message": Value::Object(message),
                "finish_reason": self.finish_reason,
            }]),
        );
        if let Some(u) = self.usage {
            out.insert("usage".into(), u);
        }
        Value::Object(out)
    }
}

/// The live state of one re-streamed response.
pub struct ChatStream {
    upstream: super::client::ByteStream,
    dialect: Dialect,
    encoder: Encoder,
    items: VecDeque<StreamItem>,
    finished: bool,
    /// The upstream body has ended (or failed): nothing left to read from it.
    upstream_ended: bool,
    idle_timeout: Option<Duration>,
    /// The timer behind `idle_timeout`, armed once and moved on only when it fires early (see
    /// [`ChatStream::read_within`]).
    idle: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    tap: StreamTap,
    provider: Provider,
}

/// After the upstream's end marker, how long [`ChatStream`] waits for the rest of its body
/// (normally just the closing chunk of the HTTP message) when no stream timeout is set.
const DRAIN_WAIT: Duration = Duration::from_secs(1);
/// How much more an upstream may send after its end marker before its connection is dropped
/// instead of read to the end.
const DRAIN_MAX_BYTES: usize = 64 * 1024;

/// A frame for the client, or a failure before anything was sent.
enum Next {
    Frame(Bytes),
    Failed(ApiError),
}

impl ChatStream {
    pub fn new(
        upstream: super::client::ByteStream,
        dialect: Dialect,
        encoder: Encoder,
        idle_timeout: Option<Duration>,
        tap: StreamTap,
        provider: Provider,
    ) -> Self {
        Self {
            upstream,
            dialect,
            encoder,
            items: VecDeque::new(),
            finished: false,
            upstream_ended: false,
            idle_timeout,
            idle: None,
            tap,
            provider,
        }
    }

    /// The next read from the upstream, or `Err` when it sends nothing for `limit`.
    ///
    /// One timer serves the whole stream: each read notes when it started waiting, and the
    /// timer, when it fires, either ends the wait or is set again to `limit` after that start.
    /// A timer made and dropped per read (what `tokio::time::timeout` does) registered with the
    /// runtime's timer wheel and left it again for every chunk.
    async fn read_within(
        &mut self,
        limit: Duration,
    ) -> Result<Option<Result<Bytes, super::client::BoxError>>, ()> {
        let started = Instant::now();
        let idle = self
            .idle
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until((started + limit).into())));
        loop {
            tokio::select! {
                biased;
                read = self.upstream.next() => return Ok(read),
                () = idle.as_mut() => {
                    let deadline = started + limit;
                    if Instant::now() >= deadline {
                        return Err(());
                    }
                    idle.as_mut().reset(deadline.into());
                }
            }
        }
    }

    async fn next(&mut self) -> Option<Next> {
        loop {
            while let Some(item) = self.items.pop_front() {
                self.tap.observe(&item);
                match item {
                    StreamItem::Error(e) => {
                        self.finished = true;
                        self.items.clear();
                        return Some(Next::Failed(e));
                    }
                    StreamItem::Done => {
                        self.finished = true;
                        self.items.clear();
                        let done = self.encoder.encode(StreamItem::Done);
                        self.tap.fire();
                        return done.map(Next::Frame);
                    }
                    chunk => {
                        if let Some(b) = self.encoder.encode(chunk) {
                            return Some(Next::Frame(b));
                        }
                    }
                }
            }
            if self.finished {
                self.tap.fire();
                self.drain_upstream().await;
                return None;
            }
            if self.dialect.decode_next(&mut self.items) {
                continue;
            }
            let read = match self.idle_timeout {
                Some(d) => match self.read_within(d).await {
                    Ok(r) => r,
                    Err(_) => {
                        // A stalled upstream is not waited for again to drain it.
                        self.upstream_ended = true;
                        self.items.push_back(StreamItem::Error(ApiError::new(
                            ErrorClass::Timeout,
                            format!(
                                "litellm.Timeout: Timeout Error: {} - no data from upstream for {:.1}s",
                                self.provider.exception_label(),
                                d.as_secs_f64()
                            ),
                        )));
                        continue;
                    }
                },
                None => self.upstream.next().await,
            };
            match read {
                Some(Ok(bytes)) => self.dialect.push(&bytes, &mut self.items),
                Some(Err(e)) => {
                    self.upstream_ended = true;
                    self.items.push_back(StreamItem::Error(ApiError::new(
                        ErrorClass::ApiConnection,
                        format!(
                            "litellm.APIConnectionError: APIConnectionError: {} - stream interrupted: {e}",
                            self.provider.exception_label()
                        ),
                    )));
                }
                None => {
                    self.upstream_ended = true;
                    self.dialect.finish(&mut self.items);
                    if self.items.is_empty()
                        || !self
                            .items
                            .iter()
                            .any(|i| matches!(i, StreamItem::Done | StreamItem::Error(_)))
                    {
                        // Upstream closed without its end marker: end the client stream cleanly.
                        self.items.push_back(StreamItem::Done);
                    }
                }
            }
        }
    }

    /// Reads the upstream body to its end after its end marker (`data: [DONE]`,
    /// `message_stop`, ...), so that its keep-alive connection goes back to the pool instead
    /// of being closed and a new one opened for the next call. The client has its last event
    /// by then (and spend is reported); only the end of the HTTP message waits, as it does
    /// behind LiteLLM, whose upstream SDK reads the stream to its end. Bounded in time and
    /// size: past either bound the body is dropped with the stream, closing its connection.
    async fn drain_upstream(&mut self) {
        if std::mem::replace(&mut self.upstream_ended, true) {
            return;
        }
        let upstream = &mut self.upstream;
        let wait = self.idle_timeout.map_or(DRAIN_WAIT, |d| d.min(DRAIN_WAIT));
        let _ = tokio::time::timeout(wait, async {
            let mut left = DRAIN_MAX_BYTES;
            while let Some(Ok(bytes)) = upstream.next().await {
                match left.checked_sub(bytes.len()) {
                    Some(l) => left = l,
                    None => return,
                }
            }
        })
        .await;
    }
}

/// Reads up to the first client frame. `Err` if the upstream failed before producing any
/// output; otherwise the first frame and a stream of the rest (errors after this point become
/// a final `data: {"error": ...}` event).
pub async fn open(
    mut s: ChatStream,
) -> Result<BoxStream<'static, Result<Bytes, std::io::Error>>, ApiError> {
    let first = match s.next().await {
        Some(Next::Frame(b)) => b,
        Some(Next::Failed(e)) => return Err(e),
        None => {
            return Err(ApiError::new(
                ErrorClass::Internal,
                "upstream closed the stream without sending any event",
            ))
        }
    };
    // Boxed: the state moves in and out of each step's future, a pointer instead of the
    // whole stream state.
    let rest = futures::stream::unfold(Box::new(s), |mut s| async move {
        match s.next().await? {
            Next::Frame(b) => Some((Ok(b), s)),
            Next::Failed(e) => {
                let f = s.encoder.error_frame(&e);
                Some((Ok(f), s))
            }
        }
    });
    // After the first frame the body reports "not ready" once (and is polled again at once):
    // the server writes out the head and the first event then, instead of first collecting
    // every frame the upstream has already sent.
    let flush_point =
        futures::stream::once(tokio::task::yield_now()).filter_map(|()| async { None });
    Ok(futures::stream::once(async move { Ok(first) })
        .chain(flush_point)
        .chain(rest)
        .boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn upstream(parts: Vec<&'static [u8]>) -> super::super::client::ByteStream {
        futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p)))).boxed()
    }

    /// Responses API events pass through byte for byte (named frames kept); the closing event
    /// carries the usage and ends the stream.
    #[test]
    fn responses_events_pass_through_with_usage_from_the_closing_event() {
        let text = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n\
                    event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hello\"}\n\n\
                    event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":12,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":5,\"total_tokens\":17}}}\n\n";
        let mut d = Dialect::responses_raw(None);
        let mut out = VecDeque::new();
        d.feed(text.as_bytes(), &mut out);
        let items: Vec<StreamItem> = out.into_iter().collect();
        assert_eq!(items.len(), 4, "{items:?}");
        let mut forwarded = Vec::new();
        let mut usages = 0;
        for item in &items[..3] {
            let StreamItem::Raw {
                frame,
                usage,
                output_chars,
            } = item
            else {
                panic!("{item:?}")
            };
            forwarded.extend_from_slice(frame);
            if let Some(u) = usage {
                assert_eq!((u.prompt_tokens, u.completion_tokens), (12, 5));
                assert_eq!((u.total_tokens, u.cached_tokens), (17, 4));
                usages += 1;
            }
            if frame.starts_with(b"event: response.output_text.delta") {
                assert_eq!(*output_chars, 5);
            }
        }
        assert_eq!(forwarded, text.as_bytes());
        assert_eq!(usages, 1, "usage comes with the closing event only");
        assert!(matches!(items[3], StreamItem::Done));
    }

    /// With an issuer, the events carrying the response object name it by its managed id, one
    /// event at a time; every other frame is forwarded byte for byte.
    #[test]
    fn responses_events_carry_managed_ids() {
        use crate::api::response_id::{encode, Issuer};
        let text = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\"}}\n\n\
                    event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"resp_1\",\"delta\":\"Hi\"}\n\n\
                    event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1,\"total_tokens\":2}}}\n\n";
        let mut d = Dialect::responses_raw(Some(Issuer::new("openai", "dep-1")));
        let mut forwarded = Vec::new();
        let mut out = VecDeque::new();
        // Byte by byte: an event is rewritten once it is whole, never before.
        for b in text.as_bytes() {
            d.feed(std::slice::from_ref(b), &mut out);
        }
        for item in out {
            if let StreamItem::Raw { frame, .. } = item {
                forwarded.extend_from_slice(&frame);
            }
        }
        let expected = text.replace(
            "\"id\":\"resp_1\"",
            &format!("\"id\":\"{}\"", encode("openai", "dep-1", "resp_1")),
        );
        assert_eq!(String::from_utf8(forwarded).unwrap(), expected);
    }

    fn collect_summary() -> (Arc<Mutex<Option<StreamSummary>>>, OnFinish) {
        let slot = Arc::new(Mutex::new(None));
        let s2 = slot.clone();
        (slot, Box::new(move |s| *s2.lock().unwrap() = Some(s)))
    }

    #[tokio::test]
    async fn rewrites_model_hides_usage_chunk_and_reports_usage() {
        let (slot, f) = collect_summary();
        let s = ChatStream::new(
            upstream(vec![
                b"data: {\"id\":\"c\",\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
                b"data: {\"id\":\"c\",\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"c\",\"model\":\"up\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n",
                b"data: [DONE]\n\n",
            ]),
            Dialect::openai(Provider::OpenAi),
            Encoder::OpenAi { model: "group".into(), include_usage: false },
            None,
            StreamTap::new(Some(f)),
            Provider::OpenAi,
        );
        let body: Vec<Bytes> = open(s).await.unwrap().map(|r| r.unwrap()).collect().await;
        let text: String = body
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_eq!(text.matches("data: ").count(), 3, "{text}");
        assert!(text.contains("\"model\":\"group\"") && !text.contains("usage"));
        assert!(text.ends_with("data: [DONE]\n\n"));
        let sum = slot.lock().unwrap().clone().unwrap();
        assert!(sum.completed);
        assert_eq!(sum.usage.unwrap().total_tokens, 5);
        assert_eq!(sum.output_chars, 5);
    }

    /// What follows the end marker is read (so the connection can be reused), up to the byte
    /// bound: an upstream that keeps sending is not read further.
    #[tokio::test(start_paused = true)]
    async fn after_done_the_upstream_is_read_up_to_the_bound() {
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = read.clone();
        let tail = futures::stream::iter((0..3).map(|_| Ok(Bytes::from(vec![b' '; 40 * 1024]))))
            .inspect(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .chain(futures::stream::pending());
        let s = ChatStream::new(
            upstream(vec![
                b"data: {\"id\":\"c\",\"choices\":[]}\n\ndata: [DONE]\n\n",
            ])
            .chain(tail)
            .boxed(),
            Dialect::openai(Provider::OpenAi),
            Encoder::OpenAi {
                model: "g".into(),
                include_usage: false,
            },
            None,
            StreamTap::new(None),
            Provider::OpenAi,
        );
        let body: Vec<Bytes> = open(s).await.unwrap().map(|r| r.unwrap()).collect().await;
        assert!(String::from_utf8_lossy(body.last().unwrap()).contains("[DONE]"));
        // 40 KiB fits the 64 KiB bound, the second read passes it, the third is never asked for.
        assert_eq!(read.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn error_before_output_is_an_err_and_drop_reports() {
        let (slot, f) = collect_summary();
        let s = ChatStream::new(
            upstream(vec![
                b"data: {\"error\":{\"message\":\"boom\",\"code\":\"429\"}}\n\n",
            ]),
            Dialect::openai(Provider::OpenAi),
            Encoder::OpenAi {
                model: "g".into(),
                include_usage: true,
            },
            None,
            StreamTap::new(Some(f)),
            Provider::OpenAi,
        );
        let err = open(s).await.err().unwrap();
        assert_eq!(err.status(), 429);
        let sum = slot.lock().unwrap().clone().unwrap();
        assert!(!sum.completed && sum.error.is_some());
    }
    #[test]
    fn collector_assembles_chunks_tool_calls_and_forwarded_events() {
        let mut c = OutputCollector::default();
        let chunk = |v: Value| StreamItem::Chunk(v.as_object().unwrap().clone());
        c.observe(&chunk(serde_json::json!({"id": "x", "model": "m", "choices": [{"delta": {"role": "assistant", "content": "He"}}]})));
        c.observe(&chunk(serde_json::json!({"choices": [{"delta": {"content": "llo", "tool_calls": [{"index": 0, "id": "t1", "function": {"name": "f", "arguments": "{\"a\""}}]}}]})));
        c.observe(&chunk(serde_json::json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}, "finish_reason": "tool_calls"}]})));
        let v = c.finish();
        assert_eq!(v["id"], "x");
        assert_eq!(v["choices"][0]["message"]["content"], "Hello");
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

        // Anthropic events forwarded as they came.
        let mut c = OutputCollector::default();
        for (name, data) in [
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"msg_1","model":"claude","role":"assistant"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi there"}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#,
            ),
        ] {
            c.observe(&StreamItem::Raw {
                frame: super::super::sse::named_frame(name, data.as_bytes()),
                usage: None,
                output_chars: 0,
            });
        }
        let v = c.finish();
        assert_eq!(v["id"], "msg_1");
        assert_eq!(v["choices"][0]["message"]["content"], "Hi there");
        assert_eq!(v["choices"][0]["finish_reason"], "end_turn");

        // The Responses API's closing event carries the whole response.
        let mut c = OutputCollector::default();
        c.observe(&StreamItem::Raw {
            frame: frame(
                br#"{"type":"response.completed","response":{"id":"resp_1","output":[]}}"#,
            ),
            usage: None,
            output_chars: 0,
        });
        assert_eq!(c.finish()["id"], "resp_1");
    }
}
