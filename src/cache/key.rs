//! The cache key of a request, spelled as LiteLLM spells it, so that a LiteLLM proxy and this
//! gateway sharing one Redis find each other's entries.
//!
//! LiteLLM joins `"{param}: {value}"` for every request parameter it knows (a fixed list of
//! OpenAI-style names; LiteLLM's own fields and unknown fields are left out), with no separator,
//! and hashes the text with SHA-256. Values are written as Python's `str()` writes the decoded
//! JSON: a top-level string as it is, containers in Python's `repr` (`{'role': 'user'}`),
//! `True`/`False`/`None`, floats as Python prints them. The order is `model` (the model group
//! as requested), the prompt field (`messages`, `prompt` or `input`), then the body's other
//! fields in the order the client sent them; chat calls end with the `stream_options` LiteLLM
//! injects for streams and `stream: True|False`.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Request parameters that count towards the key (LiteLLM's `get_all_llm_api_params()`),
/// sorted for binary search.
const KEY_PARAMS: &[&str] = &[
    "audio",
    "background",
    "best_of",
    "cache_control",
    "chunking_strategy",
    "compaction",
    "container",
    "context_management",
    "conversation",
    "dimensions",
    "documents",
    "echo",
    "encoding_format",
    "file",
    "frequency_penalty",
    "function_call",
    "functions",
    "include",
    "inference_geo",
    "input",
    "instruction",
    "instructions",
    "keywords",
    "known_speaker_names",
    "known_speaker_references",
    "language",
    "languages",
    "logit_bias",
    "logprobs",
    "max_chunks_per_doc",
    "max_completion_tokens",
    "max_output_tokens",
    "max_tokens",
    "max_tokens_per_doc",
    "max_tokens_per_query",
    "max_tool_calls",
    "mcp_servers",
    "messages",
    "modalities",
    "model",
    "moderation",
    "n",
    "output_config",
    "output_format",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "previous_response_id",
    "prompt",
    "prompt_cache_key",
    "prompt_cache_options",
    "prompt_cache_retention",
    "query",
    "rank_fields",
    "reasoning",
    "reasoning_effort",
    "response_format",
    "return_documents",
    "safeguards",
    "safety_identifier",
    "seed",
    "service_tier",
    "speed",
    "stop",
    "stop_sequences",
    "store",
    "stream",
    "stream_options",
    "suffix",
    "system",
    "temperature",
    "text",
    "thinking",
    "timestamp_granularities",
    "tool_choice",
    "tools",
    "top_k",
    "top_logprobs",
    "top_n",
    "top_p",
    "truncate_prompt_tokens",
    "truncation",
    "truncation_side",
    "user",
    "verbosity",
    "web_search_options",
];

fn counts(param: &str) -> bool {
    KEY_PARAMS.binary_search(&param).is_ok()
}

/// Which request shape the key is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShape {
    /// Chat completions: `stream` always last; a stream's `stream_options` carry
    /// `include_usage: True`.
    Chat { stream: bool },
    /// Legacy completions (`prompt`).
    Text,
    /// Embeddings, one key per input item.
    Embedding,
}

/// The text LiteLLM hashes for `body` (the request as the client sent it, LiteLLM's own fields
/// still in place: they are skipped here). `model` is the model group as requested; for
/// embeddings `input` is the one item the key is for.
pub fn key_text(
    model: &str,
    body: &Map<String, Value>,
    shape: KeyShape,
    input: Option<&Value>,
) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("model: ");
    s.push_str(model);
    let prompt = match shape {
        KeyShape::Chat { .. } => "messages",
        KeyShape::Text => "prompt",
        KeyShape::Embedding => "input",
    };
    let first = match shape {
        KeyShape::Embedding => input,
        _ => body.get(prompt),
    };
    if let Some(v) = first.filter(|v| !v.is_null()) {
        entry(&mut s, prompt, v);
    }
    let mut saw_stream_options = false;
    for (k, v) in body {
        if k == "model" || k == prompt || !counts(k) || v.is_null() {
            continue;
        }
        match (shape, k.as_str()) {
            (KeyShape::Chat { .. }, "stream") => {}
            (KeyShape::Chat { stream: true }, "stream_options") => {
                saw_stream_options = true;
                let mut o = v.as_object().cloned().unwrap_or_default();
                o.insert("include_usage".into(), Value::Bool(true));
                entry(&mut s, k, &Value::Object(o));
            }
            _ => entry(&mut s, k, v),
        }
    }
    if let KeyShape::Chat { stream } = shape {
        if stream && !saw_stream_options {
            s.push_str("stream_options: {'include_usage': True}");
        }
        s.push_str(if stream {
            "stream: True"
        } else {
            "stream: False"
        });
    }
    s
}

/// A list of names as Python writes it (`['gpt-4o', 'gpt-4o-alias']`).
pub fn py_list(names: &[String]) -> String {
    let mut s = String::new();
    py_repr(
        &mut s,
        &Value::Array(names.iter().cloned().map(Value::String).collect()),
    );
    s
}

/// SHA-256 of [`key_text`], lower-case hex.
pub fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn entry(s: &mut String, k: &str, v: &Value) {
    s.push_str(k);
    s.push_str(": ");
    match v {
        Value::String(t) => s.push_str(t),
        other => py_repr(s, other),
    }
}

/// Python's `repr` of a decoded JSON value.
pub(crate) fn py_repr(s: &mut String, v: &Value) {
    match v {
        Value::Null => s.push_str("None"),
        Value::Bool(true) => s.push_str("True"),
        Value::Bool(false) => s.push_str("False"),
        Value::Number(n) => {
            if n.is_f64() {
                s.push_str(&crate::api::python_float(n.as_f64().unwrap_or_default()));
            } else {
                s.push_str(&n.to_string());
            }
        }
        Value::String(t) => py_str_repr(s, t),
        Value::Array(items) => {
            s.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                py_repr(s, x);
            }
            s.push(']');
        }
        Value::Object(m) => {
            s.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                py_str_repr(s, k);
                s.push_str(": ");
                py_repr(s, x);
            }
            s.push('}');
        }
    }
}

/// Python's `repr` of a string: single quotes unless the text holds `'` and no `"`; control
/// characters escaped; printable non-ASCII kept. Which non-ASCII characters Python counts as
/// unprintable is approximated by the common ones (C1 controls, no-break and other special
/// spaces, format characters, line and paragraph separators, private use).
fn py_str_repr(s: &mut String, t: &str) {
    let quote = if t.contains('\'') && !t.contains('"') {
        '"'
    } else {
        '\''
    };
    s.push(quote);
    for c in t.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c == quote => {
                s.push('\\');
                s.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x7f => s.push(c),
            c if unprintable(c) => {
                let n = c as u32;
                if n <= 0xff {
                    s.push_str(&format!("\\x{n:02x}"));
                } else if n <= 0xffff {
                    s.push_str(&format!("\\u{n:04x}"));
                } else {
                    s.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => s.push(c),
        }
    }
    s.push(quote);
}

fn unprintable(c: char) -> bool {
    matches!(c as u32,
        0x80..=0xa0
        | 0xad
        | 0x1680
        | 0x2000..=0x200f
        | 0x2028..=0x202f
        | 0x205f..=0x206f
        | 0x3000
        | 0xd800..=0xf8ff
        | 0xfeff
        | 0xfff9..=0xfffb
        | 0xf0000..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// Keys read from LiteLLM 1.106.2's `x-litellm-cache-key` headers for these requests.
    #[test]
    fn keys_match_litellm() {
        let cases = [
            (
                json!({"model":"gpt-4o","messages":[{"role":"user","content":"hello one"}]}),
                KeyShape::Chat { stream: false },
                "01d30b713b8acf3eaf116a83d5567653db8b66459fb0562a374ec27ffee003a2",
            ),
            (
                json!({"model":"gpt-4o","messages":[{"role":"user","content":"hello one"}],"stream":true}),
                KeyShape::Chat { stream: true },
                "38890d6aad72d498eceb1f1265af34f7b1ec7d4331872721d5835e48c308b8b0",
            ),
            (
                json!({"model":"gpt-4o","messages":[{"role":"user","content":"k1"}],"seed":1,"temperature":0.5,"max_tokens":10,"user":"u","top_p":0.9,"metadata":{"a":1},"cache":{"no-cache":true}}),
                KeyShape::Chat { stream: false },
                "4567ca0b30e52648dbdf955ad9b941cbaafd7e371284bc0c4c531716b9eb0c42",
            ),
            (
                json!({"model":"gpt-4o","messages":[{"role":"user","content":"héllo \"q\" it's"}]}),
                KeyShape::Chat { stream: false },
                "f86f4fab8aeb298e9d3497be08cd634cd77d8a3094f3d3d6fc0318889f496f56",
            ),
            (
                json!({"model":"instruct","prompt":"say hi"}),
                KeyShape::Text,
                "71109e36786dbaf7e956de6153ae28994aa3ad37f69e74c6694dd93843800ef8",
            ),
            (
                json!({"model":"gpt-4o","messages":[{"role":"user","content":"hello"}],"foo_unknown":"bar"}),
                KeyShape::Chat { stream: false },
                "2944f00d8b25d9d845926a1960c3bc2e3b47b4d031ceb80ffb3a56c0da7ceb33",
            ),
        ];
        for (b, shape, want) in cases {
            let b = body(b);
            let model = b["model"].as_str().unwrap_or_default().to_string();
            assert_eq!(hash(&key_text(&model, &b, shape, None)), want, "{b:?}");
        }
    }

    #[test]
    fn texts_follow_litellm_order_and_spelling() {
        // Body order kept; model and messages first; stream_options at the client's place,
        // include_usage forced; stream last.
        let b = body(
            json!({"stream_options":{"include_usage":false},"temperature":0.5,"model":"m","messages":[{"role":"user","content":"k1"}],"stream":true}),
        );
        assert_eq!(
            key_text("m", &b, KeyShape::Chat { stream: true }, None),
            "model: mmessages: [{'role': 'user', 'content': 'k1'}]stream_options: {'include_usage': True}temperature: 0.5stream: True"
        );
        let b = body(
            json!({"model":"m","messages":[],"temperature":1,"n":1.0,"stop":null,"logprobs":true,"response_format":{"type":"json_object","x":null},"tools":[{"a":"it's"}]}),
        );
        assert_eq!(
            key_text("m", &b, KeyShape::Chat { stream: false }, None),
            "model: mmessages: []temperature: 1n: 1.0logprobs: Trueresponse_format: {'type': 'json_object', 'x': None}tools: [{'a': \"it's\"}]stream: False"
        );
        let b = body(json!({"model":"e","input":["a","b"],"dimensions":3,"user":"u"}));
        assert_eq!(
            key_text("e", &b, KeyShape::Embedding, Some(&json!("b"))),
            "model: einput: bdimensions: 3user: u"
        );
        let mut s = String::new();
        py_str_repr(&mut s, "a\nb\\c\u{1}\u{a0}é\u{2028}'\"");
        assert_eq!(s, "'a\\nb\\\\c\\x01\\xa0é\\u2028\\'\"'");
    }
}
