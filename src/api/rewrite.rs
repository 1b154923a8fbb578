//! Rewriting an upstream JSON response without building a `Value` tree.
//!
//! OpenAI-format responses are forwarded byte for byte except the top-level `model`, which
//! LiteLLM reports as the requested model group. The top level is read as borrowed
//! `(key, raw value)` pairs and written back in order; only `usage` is parsed (for accounting).

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
            let mut out = Vec::with_capacity(body.len() + model.len());
            out.push(b'{');
            let mut usage = None;
            let mut wrote_model = false;
            for (i, (k, raw)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, k).ok()?;
                out.push(b':');
                if *k == "model" {
                    serde_json::to_writer(&mut out, model).ok()?;
                    wrote_model = true;
                } else {
                    if *k == "usage" {
                        usage = serde_json::from_str::<serde_json::Value>(raw.get())
                            .ok()
                            .as_ref()
                            .and_then(Usage::from_json);
                    }
                    out.extend_from_slice(raw.get().as_bytes());
                }
            }
            if !wrote_model {
                if !fields.is_empty() {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"model\":");
                serde_json::to_writer(&mut out, model).ok()?;
            }
            out.push(b'}');
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
        assert!(set_model(b"[1]", "g").is_none());
        assert!(set_model(b"not json", "g").is_none());
    }
}
