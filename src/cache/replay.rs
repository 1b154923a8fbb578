//! Cached chat answers and streams: a stored answer replayed as a stream, and a streamed answer
//! assembled (from the events the client received) into the answer that is stored.
//!
//! A replay is what LiteLLM sends for a cached stream: the stored id, the text cut into words
//! (each with the whitespace after it), the role on the first chunk, a closing chunk with the
//! `finish_reason`, the usage chunk when the client asked for it, then `[DONE]`.

use crate::api::Usage;
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use serde_json::{json, Map, Value};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The SSE frames replaying a stored chat answer (`chat.completion`) as a stream, under the
/// model name `model`. `None` if the stored text is not a chat answer.
pub fn replay_frames(stored: &[u8], model: &str, include_usage: bool) -> Option<Vec<Bytes>> {
    let v: Map<String, Value> = serde_json::from_slice(stored).ok()?;
    let choices = v.get("choices")?.as_array()?;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut head = Map::new();
    head.insert("id".into(), v.get("id").cloned().unwrap_or(Value::Null));
    head.insert("created".into(), json!(created));
    head.insert("model".into(), Value::String(model.to_string()));
    head.insert("object".into(), json!("chat.completion.chunk"));
    if let Some(fp) = v.get("system_fingerprint").filter(|f| !f.is_null()) {
        head.insert("system_fingerprint".into(), fp.clone());
    }
    let frame = |choices: Value, usage: Option<&Value>| {
        let mut c = head.clone();
        c.insert("choices".into(), choices);
        if let Some(u) = usage {
            c.insert("usage".into(), u.clone());
        }
        let mut out = b"data: ".to_vec();
        out.extend(serde_json::to_vec(&c).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    };
    let mut frames = Vec::new();
    for (i, ch) in choices.iter().enumerate() {
        let index = ch.get("index").cloned().unwrap_or(json!(i));
        let msg = ch.get("message").and_then(Value::as_object);
        let role = msg
            .and_then(|m| m.get("role"))
            .cloned()
            .unwrap_or(json!("assistant"));
        let content = msg.and_then(|m| m.get("content")).and_then(Value::as_str);
        let tool_calls = msg
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
            .filter(|t| !t.is_empty());
        let pieces = match content {
            Some(text) if choices.len() == 1 => words(text),
            Some(text) => vec![text],
            None => Vec::new(),
        };
        let mut first = true;
        for p in pieces {
            let mut delta = json!({"content": p});
            if std::mem::take(&mut first) {
                delta["role"] = role.clone();
            }
            frames.push(frame(json!([{"index": index, "delta": delta}]), None));
        }
        if let Some(calls) = tool_calls {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(n, c)| {
                    let mut c = c.clone();
                    c["index"] = json!(n);
                    c
                })
                .collect();
            let mut delta = json!({"tool_calls": calls});
            if std::mem::take(&mut first) {
                delta["role"] = role.clone();
            }
            frames.push(frame(json!([{"index": index, "delta": delta}]), None));
        }
        if first {
            frames.push(frame(
                json!([{"index": index, "delta": {"content": "", "role": role}}]),
                None,
            ));
        }
        let finish = ch.get("finish_reason").cloned().unwrap_or(json!("stop"));
        frames.push(frame(
            json!([{"finish_reason": finish, "index": index, "delta": {}}]),
            None,
        ));
    }
    if include_usage {
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            frames.push(frame(json!([]), Some(u)));
        }
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Some(frames)
}

/// The text cut as LiteLLM's replay cuts it (`\s*\S+\s*`): each word with the whitespace after
/// it, leading whitespace on the first. Text without a word goes whole.
fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    let mut seen_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_word = false;
        } else {
            if !in_word && seen_word {
                out.push(&text[start..i]);
                start = i;
            }
            in_word = true;
            seen_word = true;
        }
    }
    if !seen_word {
        return vec![text];
    }
    out.push(&text[start..]);
    out
}

/// Builds the answer a chat stream amounts to, from the `data:` events sent to the client.
#[derive(Default)]
pub struct Assembler {
    pending: Vec<u8>,
    /// How far `pending` is known to hold no event end (a long event arrives in many parts).
    scanned: usize,
    id: Option<Value>,
    created: Option<Value>,
    model: Option<Value>,
    fingerprint: Option<Value>,
    role: Option<Value>,
    content: String,
    saw_content: bool,
    /// (id, type, name, arguments) by tool-call index.
    tool_calls: Vec<(Value, Value, String, String)>,
    finish_reason: Option<Value>,
    usage: Option<Value>,
    done: bool,
    /// More than one choice, an error event or unreadable JSON: not stored.
    spoiled: bool,
}

impl Assembler {
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.spoiled {
            return;
        }
        self.pending.extend_from_slice(bytes);
        loop {
            let from = self.scanned.saturating_sub(1);
            let Some(at) = self.pending[from..].windows(2).position(|w| w == b"\n\n") else {
                self.scanned = self.pending.len();
                return;
            };
            let end = from + at;
            self.scanned = 0;
            let event: Vec<u8> = self.pending.drain(..end + 2).collect();
            for line in event.split(|b| *b == b'\n') {
                if let Some(data) = line.strip_prefix(b"data: ") {
                    self.on_data(data);
                }
            }
        }
    }

    fn on_data(&mut self, data: &[u8]) {
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        let Ok(Value::Object(c)) = serde_json::from_slice::<Value>(data) else {
            self.spoiled = true;
            return;
        };
        if c.contains_key("error") {
            self.spoiled = true;
            return;
        }
        for (field, slot) in [
            ("id", &mut self.id),
            ("created", &mut self.created),
            ("model", &mut self.model),
            ("system_fingerprint", &mut self.fingerprint),
        ] {
            if slot.is_none() {
                *slot = c.get(field).filter(|v| !v.is_null()).cloned();
            }
        }
        if let Some(u) = c.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        for ch in c
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if ch.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                self.spoiled = true;
                return;
            }
            if let Some(f) = ch.get("finish_reason").filter(|f| !f.is_null()) {
                self.finish_reason = Some(f.clone());
            }
            let Some(delta) = ch.get("delta") else {
                continue;
            };
            if let Some(r) = delta.get("role").filter(|r| !r.is_null()) {
                self.role.get_or_insert_with(|| r.clone());
            }
            if let Some(t) = delta.get("content").and_then(Value::as_str) {
                self.saw_content |= !t.is_empty();
                self.content.push_str(t);
            }
            for tc in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let i = tc.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                if i > 64 {
                    self.spoiled = true;
                    return;
                }
                while self.tool_calls.len() <= i {
                    self.tool_calls.push((
                        Value::Null,
                        json!("function"),
                        String::new(),
                        String::new(),
                    ));
                }
                let slot = &mut self.tool_calls[i];
                if let Some(id) = tc.get("id").filter(|v| !v.is_null()) {
                    slot.0 = id.clone();
                }
                if let Some(t) = tc.get("type").filter(|v| !v.is_null()) {
                    slot.1 = t.clone();
                }
                if let Some(n) = tc.pointer("/function/name").and_then(Value::as_str) {
                    slot.2.push_str(n);
                }
                if let Some(a) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                    slot.3.push_str(a);
                }
            }
        }
    }

    /// The assembled `chat.completion`, if the stream ended with `[DONE]` and said something.
    /// `usage` stands in when the client's events carried none.
    pub fn finish(self, usage: Option<Usage>) -> Option<Bytes> {
        if self.spoiled || !self.done || (!self.saw_content && self.tool_calls.is_empty()) {
            return None;
        }
        let mut message = Map::new();
        message.insert(
            "content".into(),
            if self.saw_content {
                Value::String(self.content)
            } else {
                Value::Null
            },
        );
        message.insert(
            "role".into(),
            self.role.unwrap_or_else(|| json!("assistant")),
        );
        if !self.tool_calls.is_empty() {
            let calls: Vec<Value> = self
                .tool_calls
                .into_iter()
                .map(|(id, kind, name, args)| {
                    json!({"id": id, "type": kind, "function": {"name": name, "arguments": args}})
                })
                .collect();
            message.insert("tool_calls".into(), Value::Array(calls));
        }
        let mut out = Map::new();
        out.insert("id".into(), self.id.unwrap_or(Value::Null));
        out.insert("created".into(), self.created.unwrap_or(json!(0)));
        out.insert("model".into(), self.model.unwrap_or(Value::Null));
        out.insert("object".into(), json!("chat.completion"));
        if let Some(fp) = self.fingerprint {
            out.insert("system_fingerprint".into(), fp);
        }
        out.insert(
            "choices".into(),
            json!([{
                "finish_reason": self.finish_reason.unwrap_or(json!("stop")),
                "index": 0,
                "message": message,
            }]),
        );
        let usage = self.usage.or_else(|| {
            usage.map(|u| {
                json!({
                    "completion_tokens": u.completion_tokens,
                    "prompt_tokens": u.prompt_tokens,
                    "total_tokens": u.total_tokens,
                })
            })
        });
        if let Some(u) = usage {
            out.insert("usage".into(), u);
        }
        serde_json::to_vec(&out).ok().map(Bytes::from)
    }
}

/// Where a stream's tap leaves the usage it learned, for the assembler.
pub type UsageSlot = Arc<Mutex<Option<Usage>>>;

/// Passes a client stream through unchanged while assembling it; when it ends, `store` gets
/// the assembled answer (nothing if the stream was cut short or failed).
pub fn tee(
    inner: BoxStream<'static, Result<Bytes, std::io::Error>>,
    usage: UsageSlot,
    store: Box<dyn FnOnce(Bytes) + Send>,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    Tee {
        inner,
        asm: Some(Assembler::default()),
        usage,
        store: Some(store),
    }
    .boxed()
}

struct Tee {
    inner: BoxStream<'static, Result<Bytes, std::io::Error>>,
    asm: Option<Assembler>,
    usage: UsageSlot,
    store: Option<Box<dyn FnOnce(Bytes) + Send>>,
}

impl Stream for Tee {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(b))) => {
                if let Some(a) = this.asm.as_mut() {
                    a.feed(&b);
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(None) => {
                if let (Some(a), Some(store)) = (this.asm.take(), this.store.take()) {
                    let usage = this.usage.lock().ok().and_then(|u| *u);
                    if let Some(answer) = a.finish(usage) {
                        store(answer);
                    }
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.asm = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(frames: &[Bytes]) -> Vec<Value> {
        frames
            .iter()
            .filter_map(|f| f.strip_prefix(b"data: "))
            .filter(|d| !d.starts_with(b"[DONE]"))
            .map(|d| serde_json::from_slice(d).expect("json"))
            .collect()
    }

    #[test]
    fn words_keep_their_whitespace() {
        assert_eq!(words("mock reply #4"), vec!["mock ", "reply ", "#4"]);
        assert_eq!(words("  a  b\n"), vec!["  a  ", "b\n"]);
        assert_eq!(words("one"), vec!["one"]);
        assert_eq!(words("   "), vec!["   "]);
        assert_eq!(words(""), vec![""]);
    }

    #[test]
    fn a_stored_answer_replays_word_by_word() {
        let stored = br#"{"id":"chatcmpl-4","created":1,"model":"gpt-4o-2024","object":"chat.completion","system_fingerprint":"fp","choices":[{"finish_reason":"stop","index":0,"message":{"content":"mock reply #4","role":"assistant"}}],"usage":{"completion_tokens":4,"prompt_tokens":11,"total_tokens":15}}"#;
        let frames = replay_frames(stored, "gpt-4o", true).expect("chat answer");
        assert_eq!(
            frames.last().map(|b| &b[..]),
            Some(&b"data: [DONE]\n\n"[..])
        );
        let ev = events(&frames);
        assert_eq!(ev.len(), 5);
        assert_eq!(
            ev[0]["choices"][0]["delta"],
            json!({"content": "mock ", "role": "assistant"})
        );
        assert_eq!(ev[1]["choices"][0]["delta"], json!({"content": "reply "}));
        assert_eq!(ev[3]["choices"][0]["finish_reason"], json!("stop"));
        assert_eq!(ev[4]["usage"]["total_tokens"], json!(15));
        for e in &ev {
            assert_eq!(
                (&e["id"], &e["model"], &e["system_fingerprint"]),
                (&json!("chatcmpl-4"), &json!("gpt-4o"), &json!("fp"))
            );
        }
        let without = replay_frames(stored, "gpt-4o", false).expect("chat answer");
        assert_eq!(events(&without).len(), 4, "no usage chunk unless asked");
    }

    #[test]
    fn a_stream_assembles_into_the_answer_it_replays_as() {
        let stored = br#"{"id":"c1","created":7,"model":"m","object":"chat.completion","choices":[{"finish_reason":"tool_calls","index":0,"message":{"content":"Hi there","role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}}],"usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5}}"#;
        let frames = replay_frames(stored, "m", true).expect("frames");
        let mut a = Assembler::default();
        // Frames split at odd places, as a network would.
        let all: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        for part in all.chunks(7) {
            a.feed(part);
        }
        let answer: Value =
            serde_json::from_slice(&a.finish(None).expect("assembled")).expect("json");
        let want: Value = serde_json::from_slice(stored).expect("json");
        assert_eq!(answer["choices"], want["choices"]);
        assert_eq!(answer["usage"], want["usage"]);
        assert_eq!(answer["id"], json!("c1"));
    }

    #[test]
    fn unfinished_empty_or_failed_streams_are_not_stored() {
        let mut cut = Assembler::default();
        cut.feed(
            b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
        );
        assert!(cut.finish(None).is_none(), "no [DONE]");
        let mut empty = Assembler::default();
        empty.feed(b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\ndata: [DONE]\n\n");
        assert!(empty.finish(None).is_none(), "nothing said");
        let mut failed = Assembler::default();
        failed.feed(b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"error\":{\"message\":\"boom\"}}\n\ndata: [DONE]\n\n");
        assert!(failed.finish(None).is_none(), "error event");
        let mut ok = Assembler::default();
        ok.feed(b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n");
        let v: Value = serde_json::from_slice(&ok.finish(Some(Usage::new(3, 1))).expect("stored"))
            .expect("json");
        assert_eq!(
            v["usage"]["total_tokens"],
            json!(4),
            "the tap's usage stands in"
        );
    }
}
