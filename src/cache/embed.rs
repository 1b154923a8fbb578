//! Embeddings in the response cache, one entry per input item as LiteLLM keeps them: an answer
//! is cut into its items to be stored, and put back together from stored items (all of them,
//! or those found plus the upstream's answer for the rest, in the order the client sent).

use crate::api::Usage;
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The input items of an embeddings request that can be cached one by one: a string, or a
/// list of strings or of token lists. `None` for anything else (a single token list, mixed
/// items), which is then not cached.
pub fn items(input: Option<&Value>) -> Option<Vec<Value>> {
    match input? {
        s @ Value::String(_) => Some(vec![s.clone()]),
        Value::Array(a)
            if !a.is_empty()
                && (a.iter().all(Value::is_string) || a.iter().all(Value::is_array)) =>
        {
            Some(a.clone())
        }
        _ => None,
    }
}

/// The entries to store for an upstream answer to `n` items: one object per item (its vector
/// and its share of the prompt tokens, the remainder to the first items), in input order.
/// `None` unless the answer holds exactly `n` embeddings.
pub fn split(answer: &[u8], n: usize) -> Option<Vec<Bytes>> {
    let v: Map<String, Value> = serde_json::from_slice(answer).ok()?;
    let mut data: Vec<&Value> = v.get("data")?.as_array()?.iter().collect();
    if data.len() != n || n == 0 {
        return None;
    }
    data.sort_by_key(|d| d.get("index").and_then(Value::as_u64).unwrap_or(0));
    let tokens = v
        .get("usage")
        .and_then(|u| u.get("prompt_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let (share, rest) = (tokens / n as u64, tokens % n as u64);
    let model = v.get("model").cloned().unwrap_or(Value::Null);
    data.iter()
        .enumerate()
        .map(|(i, d)| {
            let item = json!({
                "embedding": d.get("embedding")?,
                "index": i,
                "object": "embedding",
                "model": model,
                "prompt_tokens": share + u64::from((i as u64) < rest),
            });
            serde_json::to_vec(&item).ok().map(Bytes::from)
        })
        .collect()
}

/// The answer for a request whose items are `found` (stored entries, in input order) where
/// present and, in order, the embeddings of `fresh` (the upstream's answer for the missing
/// items) elsewhere; under `model`, with the prompt tokens of both. `None` if an entry or the
/// upstream answer does not read as expected.
pub fn merge(found: &[Option<Bytes>], fresh: Option<&[u8]>, model: &str) -> Option<(Bytes, Usage)> {
    let mut fresh_data: Vec<Value> = Vec::new();
    let mut tokens = 0u64;
    let mut fresh_usage = None;
    if let Some(f) = fresh {
        let v: Map<String, Value> = serde_json::from_slice(f).ok()?;
        fresh_data = v.get("data")?.as_array()?.clone();
        fresh_data.sort_by_key(|d| d.get("index").and_then(Value::as_u64).unwrap_or(0));
        fresh_usage = v.get("usage").cloned();
        tokens += v
            .get("usage")
            .and_then(|u| u.get("prompt_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
    }
    let mut fresh_iter = fresh_data.into_iter();
    let mut data = Vec::with_capacity(found.len());
    for (i, slot) in found.iter().enumerate() {
        let embedding = match slot {
            Some(stored) => {
                let item: Map<String, Value> = serde_json::from_slice(stored).ok()?;
                tokens += item
                    .get("prompt_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                item.get("embedding")?.clone()
            }
            None => fresh_iter.next()?.get("embedding")?.clone(),
        };
        data.push(json!({"embedding": embedding, "index": i, "object": "embedding"}));
    }
    let mut usage = match fresh_usage {
        Some(Value::Object(u)) => u,
        _ => Map::new(),
    };
    usage.insert("prompt_tokens".into(), json!(tokens));
    usage.insert("total_tokens".into(), json!(tokens));
    let out = json!({"model": model, "data": data, "object": "list", "usage": usage});
    Some((
        Bytes::from(serde_json::to_vec(&out).ok()?),
        Usage::new(tokens, 0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_strings_or_token_lists() {
        assert_eq!(items(Some(&json!("a"))), Some(vec![json!("a")]));
        assert_eq!(items(Some(&json!(["a", "b"]))).map(|v| v.len()), Some(2));
        assert_eq!(items(Some(&json!([[1, 2], [3]]))).map(|v| v.len()), Some(2));
        assert_eq!(items(Some(&json!([1, 2, 3]))), None, "one token list");
        assert_eq!(items(Some(&json!(["a", [1]]))), None);
        assert_eq!(items(Some(&json!([]))), None);
        assert_eq!(items(None), None);
    }

    #[test]
    fn an_answer_splits_into_items_and_merges_back_around_fresh_ones() {
        let upstream = br#"{"object":"list","model":"text-embedding-3-small","data":[{"object":"embedding","index":1,"embedding":[2.0]},{"object":"embedding","index":0,"embedding":[1.0]},{"object":"embedding","index":2,"embedding":[3.0]}],"usage":{"prompt_tokens":7,"total_tokens":7}}"#;
        let stored = split(upstream, 3).expect("three items");
        let first: Value = serde_json::from_slice(&stored[0]).expect("json");
        assert_eq!(
            first["embedding"],
            json!([1.0]),
            "input order, not answer order"
        );
        let shares: Vec<u64> = stored
            .iter()
            .map(|s| {
                serde_json::from_slice::<Value>(s).expect("json")["prompt_tokens"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .collect();
        assert_eq!(shares, vec![3, 2, 2]);
        assert!(split(upstream, 2).is_none(), "count mismatch");

        // Items 0 and 2 stored, item 1 fresh from a second upstream answer.
        let fresh = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[9.0]}],"usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        let found = [Some(stored[0].clone()), None, Some(stored[2].clone())];
        let (body, usage) = merge(&found, Some(fresh), "emb").expect("merged");
        let v: Value = serde_json::from_slice(&body).expect("json");
        let vectors: Vec<&Value> = v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|d| &d["embedding"])
            .collect();
        assert_eq!(vectors, vec![&json!([1.0]), &json!([9.0]), &json!([3.0])]);
        assert_eq!(v["data"][2]["index"], json!(2));
        assert_eq!(v["model"], json!("emb"));
        assert_eq!(v["usage"]["prompt_tokens"], json!(3 + 4 + 2));
        assert_eq!(usage.total_tokens, 9);
        let (all, _) = merge(&[Some(stored[1].clone())], None, "emb").expect("all stored");
        let v: Value = serde_json::from_slice(&all).expect("json");
        assert_eq!(v["data"][0]["embedding"], json!([2.0]));
        assert!(
            merge(&[None], None, "emb").is_none(),
            "a missing item with no fresh answer"
        );
    }
}
