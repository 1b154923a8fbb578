//! Rewriting an upstream JSON response without building a `Value` tree.
//!
//! OpenAI-format responses are forwarded byte for byte except the top-level `model`, which
//! LiteLLM reports as the requested model group. The top level is read as borrowed
//! `(key, raw value)` pairs, the new model is spliced over the old value's bytes, and only
//! `usage` is parsed (for accounting).

use super::Usage;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

struct TopLevel<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(8);
                while let Some((k, raw)) = m.next_entry::<&'de str, &'de RawValue>()? {
                    v.push((k, raw));
                }
                Ok(TopLevel(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Returns the body with its top-level `model` replaced by `model`, and the parsed `usage`.
/// `None` if the body is not a JSON object (keys with escape sequences fall back to a full
/// parse).
pub fn set_model(body: &[u8], model: &str) -> Option<(Vec<u8>, Option<Usage>)> {
    match serde_json::from_slice::<TopLevel<'_>>(body) {
        Ok(TopLevel(fields)) => {
            // The raw values borrow from `body`: splice the new model over the old one's bytes
            // and copy the rest as it is.
            let base = body.as_ptr() as usize;
            let span = |raw: &RawValue| {
                let start = (raw.get().as_ptr() as usize).checked_sub(base)?;
                let end = start + raw.get().len();
                (end <= body.len()).then_some((start, end))
            };
            let mut usage = None;
            let mut out = Vec::with_capacity(body.len() + model.len() + 12);
            let mut copied = 0;
            for (k, raw) in &fields {
                if *k == "model" {
                    let (start, end) = span(raw)?;
                    out.extend_from_slice(&body[copied..start]);
                    serde_json::to_writer(&mut out, model).ok()?;
                    copied = end;
                } else if *k == "usage" {
                    usage = Usage::from_raw(raw.get());
                }
            }
            if copied == 0 {
                // No `model` field: add one before the closing brace.
                let close = body.iter().rposition(|&c| c == b'}')?;
                out.extend_from_slice(&body[..close]);
                if !fields.is_empty() {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"model\":");
                serde_json::to_writer(&mut out, model).ok()?;
                copied = close;
            }
            out.extend_from_slice(&body[copied..]);
            Some((out, usage))
        }
        Err(_) => {
            let mut v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(body).ok()?;
            v.insert("model".into(), serde_json::Value::String(model.into()));
            let usage = v.get("usage").and_then(Usage::from_json);
            Some((serde_json::to_vec(&v).ok()?, usage))
        }
    }
}

/// One OpenAI stream chunk as the client gets it, with what accounting needs from it.
#[derive(Debug, Default)]
pub struct ChunkRewrite {
    /// The SSE frame (`data: ...\n\n`), or `None` when the chunk is only usage the client did
    /// not ask for.
    pub frame: Option<bytes::Bytes>,
    pub usage: Option<Usage>,
    /// Characters of content, reasoning and tool-call arguments (for estimates when the
    /// stream ends without usage).
    pub output_chars: usize,
}

#[derive(serde::Deserialize)]
struct ChoiceLite {
    #[serde(default)]
    delta: Option<DeltaLite>,
}

#[derive(serde::Deserialize)]
struct DeltaLite {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolLite>>,
}

#[derive(serde::Deserialize)]
struct ToolLite {
    #[serde(default)]
    function: Option<FnLite>,
}

#[derive(serde::Deserialize)]
struct FnLite {
    #[serde(default)]
    arguments: Option<String>,
}

/// Rewrites one OpenAI `chat.completion.chunk` for the client without building a JSON tree:
/// `model` becomes the requested group, `usage` is removed unless `keep_usage` (and a chunk that
/// only carries usage is dropped). `None` when the chunk is not a plain object or carries an
/// `error` (the caller then takes the general path).
pub fn stream_chunk(data: &[u8], model: &str, keep_usage: bool) -> Option<ChunkRewrite> {
    let TopLevel(fields) = serde_json::from_slice::<TopLevel<'_>>(data).ok()?;
    let mut r = ChunkRewrite::default();
    let mut no_choices = false;
    for (k, raw) in &fields {
        match *k {
            "error" => return None,
            "usage" if raw.get() != "null" => r.usage = Usage::from_raw(raw.get()),
            "choices" => {
                let choices: Vec<ChoiceLite> = serde_json::from_str(raw.get()).ok()?;
                no_choices = choices.is_empty();
                for d in choices.iter().filter_map(|c| c.delta.as_ref()) {
                    r.output_chars += d.content.as_ref().map_or(0, String::len)
                        + d.reasoning_content.as_ref().map_or(0, String::len);
                    for t in d.tool_calls.iter().flatten() {
                        r.output_chars += t
                            .function
                            .as_ref()
                            .and_then(|f| f.arguments.as_ref())
                            .map_or(0, String::len);
                    }
                }
            }
            _ => {}
        }
    }
    if !keep_usage && no_choices && r.usage.is_some() {
        return Some(r);
    }
    let mut out = bytes::BytesMut::with_capacity(data.len() + model.len() + 8);
    out.extend_from_slice(b"data: {");
    let mut first = true;
    for (k, raw) in &fields {
        if *k == "usage" && !keep_usage {
            continue;
        }
        if !first {
            out.extend_from_slice(b",");
        }
        first = false;
        out.extend_from_slice(b"\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        if *k == "model" {
            let mut w = Vec::with_capacity(model.len() + 2);
            serde_json::to_writer(&mut w, model).ok()?;
            out.extend_from_slice(&w);
        } else {
            out.extend_from_slice(raw.get().as_bytes());
        }
    }
    out.extend_from_slice(b"}\n\n");
    r.frame = Some(out.freeze());
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn replaces_model_and_keeps_everything_else() {
        let body = br#"{"id":"x","model":"up-model","choices":[{"index":0,"message":{"content":"a\"b"}}],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5},"extra":null}"#;
        let (out, usage) = set_model(body, "group").unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "group");
        assert_eq!(v["choices"][0]["message"]["content"], "a\"b");
        assert_eq!(v["extra"], Value::Null);
        assert_eq!(usage.unwrap().total_tokens, 5);
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["id", "model", "choices", "usage", "extra"]);
    }

    #[test]
    fn adds_model_when_missing_and_handles_escaped_keys() {
        let (out, _) = set_model(br#"{"data":[]}"#, "g").unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            json!({"data": [], "model": "g"})
        );
        let (out, _) = set_model(br#"{"we\u0069rd":1,"model":"m"}"#, "g").unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            json!({"weird": 1, "model": "g"})
        );
        // Pretty-printed upstream bodies keep their layout; only the value changes.
        let (out, _) =
            set_model(b"{\n  \"model\" : \"up\",\n  \"x\": [1, 2]\n}\n", "g\"q").unwrap();
        assert_eq!(out, b"{\n  \"model\" : \"g\\\"q\",\n  \"x\": [1, 2]\n}\n");
        let (out, _) = set_model(b" { } ", "g").unwrap();
        assert_eq!(out, b" { \"model\":\"g\"} ");
        assert!(set_model(b"[1]", "g").is_none());
        assert!(set_model(b"not json", "g").is_none());
    }

    #[test]
    fn stream_chunks_are_rewritten_in_place() {
        let c = br#"{"id":"c","object":"chat.completion.chunk","model":"up","choices":[{"index":0,"delta":{"content":"H\u00e9","tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}],"usage":null}"#;
        let r = stream_chunk(c, "grp", false).unwrap();
        let frame = r.frame.unwrap();
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.starts_with("data: ") && text.ends_with("\n\n"));
        let v: Value = serde_json::from_str(&text[6..]).unwrap();
        assert_eq!(v["model"], "grp");
        assert!(v.get("usage").is_none());
        assert_eq!(v["choices"][0]["delta"]["content"], "H\u{e9}");
        assert_eq!(r.output_chars, 3 + 2);
        // A usage-only chunk: dropped unless asked for, usage reported either way.
        let u = br#"{"id":"c","model":"up","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let r = stream_chunk(u, "grp", false).unwrap();
        assert!(r.frame.is_none());
        assert_eq!(r.usage.unwrap().total_tokens, 5);
        let r = stream_chunk(u, "grp", true).unwrap();
        assert!(std::str::from_utf8(&r.frame.unwrap())
            .unwrap()
            .contains("\"total_tokens\":5"));
        assert!(stream_chunk(br#"{"error":{"message":"x"}}"#, "g", true).is_none());
    }
}
