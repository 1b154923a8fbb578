//! Token usage as reported by upstreams (OpenAI's `usage` object), normalised.

use crate::api::Field;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};
use std::fmt;

/// `visit_*` methods answering `None` for the JSON kinds a visitor does not read (arrays and,
/// where listed, objects are skipped over), as `Value::as_*` gives `None` for a wrong type.
macro_rules! none_for_other_values {
    ($($kind:ident),*) => { $(none_for_other_values!(@ $kind);)* };
    (@ seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
            while s.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    };
    (@ map) => {
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    };
    (@ bool) => { fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> { Ok(None) } };
    (@ i64) => { fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> { Ok(None) } };
    (@ u64) => { fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> { Ok(None) } };
    (@ f64) => { fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> { Ok(None) } };
    (@ str) => { fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> { Ok(None) } };
    (@ unit) => { fn visit_unit<E>(self) -> Result<Self::Value, E> { Ok(None) } };
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// `prompt_tokens_details.cached_tokens` (cache reads).
    pub cached_tokens: u64,
    /// Anthropic-style cache writes (`cache_creation_input_tokens`).
    pub cache_creation_tokens: u64,
    /// `completion_tokens_details.reasoning_tokens`.
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn new(prompt: u64, completion: u64) -> Self {
        Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            ..Self::default()
        }
    }

    /// Reads an OpenAI `usage` object; `None` if absent or not an object.
    pub fn from_json(v: &Value) -> Option<Self> {
        let o = v.as_object()?;
        let n = |k: &str| o.get(k).and_then(Value::as_u64).unwrap_or(0);
        let prompt = n("prompt_tokens");
        let completion = n("completion_tokens");
        let total = o
            .field("total_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(prompt.saturating_add(completion));
        let cached = v
            .pointer("/prompt_tokens_details/cached_tokens")
            .and_then(Value::as_u64)
            .or_else(|| o.field("cache_read_input_tokens").and_then(Value::as_u64))
            .unwrap_or(0);
        Some(Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total,
            cached_tokens: cached,
            cache_creation_tokens: n("cache_creation_input_tokens"),
            reasoning_tokens: v
                .pointer("/completion_tokens_details/reasoning_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    }

    /// Usage as the Responses API reports it (`input_tokens`, `output_tokens`, their details).
    pub fn from_responses(v: &Value) -> Option<Self> {
        let o = v.as_object()?;
        let n = |k: &str| o.get(k).and_then(Value::as_u64).unwrap_or(0);
        let (input, output) = (n("input_tokens"), n("output_tokens"));
        let detail = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        Some(Self {
            prompt_tokens: input,
            completion_tokens: output,
            total_tokens: o
                .field("total_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(input.saturating_add(output)),
            cached_tokens: detail("/input_tokens_details/cached_tokens"),
            cache_creation_tokens: 0,
            reasoning_tokens: detail("/output_tokens_details/reasoning_tokens"),
        })
    }

    /// [`Self::from_json`] straight from the JSON text of a `usage` object, without building a
    /// `Value` tree (this runs on every response and on the last chunk of every stream). Same
    /// result for every input: unsigned integers count, anything else is absent, and a repeated
    /// key's last value wins, as in a parsed map.
    pub fn from_raw(raw: &[u8]) -> Option<Self> {
        let w = match flat::read(raw) {
            Some(w) => w,
            None => {
                let mut de = serde_json::Deserializer::from_slice(raw);
                let w = de.deserialize_any(WireVisitor).ok()??;
                de.end().ok()?;
                w
            }
        };
        let prompt = w.prompt.unwrap_or(0);
        let completion = w.completion.unwrap_or(0);
        Some(Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: w.total.unwrap_or(prompt.saturating_add(completion)),
            cached_tokens: w.cached.or(w.cache_read).unwrap_or(0),
            cache_creation_tokens: w.cache_creation.unwrap_or(0),
            reasoning_tokens: w.reasoning.unwrap_or(0),
        })
    }

    pub fn to_json(self) -> Value {
        json!({
            "completion_tokens": self.completion_tokens,
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.total_tokens,
        })
    }
}

/// The usual shape of a `usage` object read without the JSON parser: unescaped ASCII keys
/// whose values are unsigned integers, `null`, or (one level down) objects of those. Anything
/// else, including whatever the parser would reject, answers `None` and is left to the parser,
/// so both paths give the same result for every input they both accept.
mod flat {
    use super::Wire;
    use crate::api::rewrite::skip_ws as ws;

    /// A value this reader accepts, and the index just past it.
    enum Val {
        Count(Option<u64>),
        /// A nested object: the `cached_tokens` and `reasoning_tokens` it holds (last wins).
        Object(Option<u64>, Option<u64>),
    }

    fn key(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let start = i + 1;
        let mut j = start;
        loop {
            match *b.get(j)? {
                b'"' => return Some((&b[start..j], j + 1)),
                // Escapes, control and non-ASCII characters: the parser decides.
                b'\\' | 0..0x20 | 0x80.. => return None,
                _ => j += 1,
            }
        }
    }

    fn scalar(b: &[u8], i: usize) -> Option<(Option<u64>, usize)> {
        if b.get(i..i + 4) == Some(b"null") {
            return Some((None, i + 4));
        }
        let mut j = i;
        let mut n: u64 = 0;
        while let Some(d) = b.get(j).filter(|c| c.is_ascii_digit()) {
            // A count too big for u64 goes to the parser.
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            j += 1;
        }
        // A leading zero is only valid alone; fractions, exponents and other spellings go to
        // the parser.
        if j == i || (j > i + 1 && b[i] == b'0') || matches!(b.get(j), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some((Some(n), j))
    }

    /// The members of the object opening at `b[i]`, passed to `each`; the index past it.
    fn members(
        b: &[u8],
        i: usize,
        mut each: impl FnMut(&[u8], &[u8], usize) -> Option<usize>,
    ) -> Option<usize> {
        if b.get(i) != Some(&b'{') {
            return None;
        }
        let mut i = ws(b, i + 1);
        if b.get(i) == Some(&b'}') {
            return Some(i + 1);
        }
        loop {
            let (k, after) = key(b, i)?;
            i = ws(b, after);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = ws(b, each(b, k, ws(b, i + 1))?);
            match b.get(i)? {
                b',' => i = ws(b, i + 1),
                b'}' => return Some(i + 1),
                _ => return None,
            }
        }
    }

    /// A top-level value: a count, or an object of counts.
    fn value(b: &[u8], i: usize) -> Option<(Val, usize)> {
        if b.get(i) == Some(&b'{') {
            let (mut cached, mut reasoning) = (None, None);
            let end = members(b, i, |b, k, at| {
                let (n, end) = scalar(b, at)?;
                match k {
                    b"cached_tokens" => cached = n,
                    b"reasoning_tokens" => reasoning = n,
                    _ => {}
                }
                Some(end)
            })?;
            return Some((Val::Object(cached, reasoning), end));
        }
        let (n, end) = scalar(b, i)?;
        Some((Val::Count(n), end))
    }

    pub(super) fn read(b: &[u8]) -> Option<Wire> {
        let mut w = Wire::default();
        let end = members(b, ws(b, 0), |b, k, at| {
            let (v, end) = value(b, at)?;
            let count = match v {
                Val::Count(n) => n,
                Val::Object(..) => None,
            };
            match k {
                b"prompt_tokens" => w.prompt = count,
                b"completion_tokens" => w.completion = count,
                b"total_tokens" => w.total = count,
                b"cache_read_input_tokens" => w.cache_read = count,
                b"cache_creation_input_tokens" => w.cache_creation = count,
                b"prompt_tokens_details" => {
                    w.cached = match v {
                        Val::Object(cached, _) => cached,
                        Val::Count(_) => None,
                    }
                }
                b"completion_tokens_details" => {
                    w.reasoning = match v {
                        Val::Object(_, reasoning) => reasoning,
                        Val::Count(_) => None,
                    }
                }
                _ => {}
            }
            Some(end)
        })?;
        (ws(b, end) == b.len()).then_some(w)
    }
}

/// The fields of a `usage` object [`Usage::from_raw`] reads.
#[derive(Default)]
struct Wire {
    prompt: Option<u64>,
    completion: Option<u64>,
    total: Option<u64>,
    cached: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
    reasoning: Option<u64>,
}

/// A `usage` value: `Some` for an object, `None` for any other JSON value.
struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = Option<Wire>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a usage object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut w = Wire::default();
        while let Some(key) = m.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "prompt_tokens" => w.prompt = m.next_value::<Count>()?.0,
                "completion_tokens" => w.completion = m.next_value::<Count>()?.0,
                "total_tokens" => w.total = m.next_value::<Count>()?.0,
                "cache_read_input_tokens" => w.cache_read = m.next_value::<Count>()?.0,
                "cache_creation_input_tokens" => w.cache_creation = m.next_value::<Count>()?.0,
                "prompt_tokens_details" => {
                    w.cached = m.next_value::<Detail<CachedTokens>>()?.0;
                }
                "completion_tokens_details" => {
                    w.reasoning = m.next_value::<Detail<ReasoningTokens>>()?.0;
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(w))
    }

    none_for_other_values!(seq, bool, i64, u64, f64, str, unit);
}

/// A token count: an unsigned integer, or absent for any other value (`Value::as_u64`).
struct Count(Option<u64>);

impl<'de> serde::Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<u64>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Some(v))
            }
            none_for_other_values!(seq, map, bool, i64, f64, str, unit);
        }
        d.deserialize_any(V).map(Count)
    }
}

/// Which count a `*_tokens_details` object holds for [`Detail`].
trait DetailKey {
    const KEY: &'static str;
}
struct CachedTokens;
impl DetailKey for CachedTokens {
    const KEY: &'static str = "cached_tokens";
}
struct ReasoningTokens;
impl DetailKey for ReasoningTokens {
    const KEY: &'static str = "reasoning_tokens";
}

/// One count inside a details object (`Value::pointer`): absent when the value is not an
/// object or lacks the key; a repeated key's last value wins.
struct Detail<K>(Option<u64>, std::marker::PhantomData<K>);

impl<'de, K: DetailKey> serde::Deserialize<'de> for Detail<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<K>(std::marker::PhantomData<K>);
        impl<'de, K: DetailKey> Visitor<'de> for V<K> {
            type Value = Option<u64>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a details object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                while let Some(key) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == K::KEY {
                        found = m.next_value::<Count>()?.0;
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(found)
            }
            none_for_other_values!(seq, bool, i64, u64, f64, str, unit);
        }
        d.deserialize_any(V::<K>(std::marker::PhantomData))
            .map(|v| Detail(v, std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_reading_matches_the_tree_reading() {
        let cases = [
            r#"{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}"#,
            r#"{"prompt_tokens":9,"completion_tokens":7}"#,
            r#"{"prompt_tokens":9.0,"completion_tokens":-1,"total_tokens":"16"}"#,
            r#"{"prompt_tokens":1,"prompt_tokens":2,"completion_tokens":null}"#,
            r#"{"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},"cache_read_input_tokens":6}"#,
            r#"{"prompt_tokens_details":null,"cache_read_input_tokens":6}"#,
            r#"{"prompt_tokens_details":[1,2],"cache_read_input_tokens":6}"#,
            r#"{"prompt_tokens_details":{"cached_tokens":4},"prompt_tokens_details":{}}"#,
            r#"{"completion_tokens_details":{"reasoning_tokens":3,"reasoning_tokens":5}}"#,
            r#"{"cache_creation_input_tokens":12,"x":{"y":[1,{"z":2}]},"total_tokens":18446744073709551615}"#,
            r#"{"prompt_tokens":3}"#,
            r#"{}"#,
            r#"[]"#,
            r#"null"#,
            r#"5"#,
            r#""usage""#,
            r#"{"prompt_tokens":1"#,
            r#"{"prompt_tokens":1} trailing"#,
            r#" { "prompt_tokens" : 0 , "completion_tokens" : 12 } "#,
            r#"{"prompt_tokens":01}"#,
            r#"{"prompt_tokens":1e2,"completion_tokens":2}"#,
            r#"{"prompt_tokens":18446744073709551616}"#,
            r#"{"prompt_tokens":nul}"#,
            r#"{"prompt\u005ftokens":5}"#,
            r#"{"prompt_tokens":5,}"#,
            r#"{"prompt_tokens":5 "completion_tokens":1}"#,
            r#"{"completion_tokens_details":{"reasoning_tokens":null},"prompt_tokens_details":7}"#,
            r#"{"completion_tokens_details":{"x":{"reasoning_tokens":1}}}"#,
            r#"{"héllo":1,"prompt_tokens":2}"#,
            r#"{"prompt_tokens":18446744073709551615,"completion_tokens":7}"#,
        ];
        for raw in cases {
            let tree = serde_json::from_str::<Value>(raw)
                .ok()
                .as_ref()
                .and_then(Usage::from_json);
            assert_eq!(Usage::from_raw(raw.as_bytes()), tree, "{raw}");
        }
    }

    /// A usage-like object: known and unknown keys, counts in several spellings (some the
    /// parser-free reader hands to the parser), nested objects, spacing.
    fn generated_usage(rng: &mut rand::rngs::StdRng, depth: u32) -> String {
        use rand::Rng;
        const KEYS: [&str; 10] = [
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
            "cached_tokens",
            "reasoning_tokens",
            "audio_tokens",
        ];
        const SCALARS: [&str; 13] = [
            "0",
            "7",
            "42",
            "null",
            "-3",
            "1.5",
            "2e1",
            "007",
            "\"9\"",
            "true",
            "[]",
            "18446744073709551615",
            "18446744073709551616",
        ];
        const SPACES: [&str; 3] = ["", " ", "\n\t"];
        let sp = SPACES[rng.gen_range(0..SPACES.len())];
        let members: Vec<String> = (0..rng.gen_range(0..5))
            .map(|_| {
                let k = KEYS[rng.gen_range(0..KEYS.len())];
                let v = if depth < 2 && rng.gen_bool(0.25) {
                    generated_usage(rng, depth + 1)
                } else {
                    SCALARS[rng.gen_range(0..SCALARS.len())].to_string()
                };
                format!("{sp}\"{k}\"{sp}:{sp}{v}{sp}")
            })
            .collect();
        format!("{{{}}}", members.join(","))
    }

    /// Generated usage objects read the same as through a parsed tree, and most of the
    /// well-formed ones never reach the parser.
    #[test]
    fn raw_reading_matches_the_tree_reading_for_generated_objects() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut without_parser = 0;
        for _ in 0..5000 {
            let raw = generated_usage(&mut rng, 0);
            let tree = serde_json::from_str::<Value>(&raw)
                .ok()
                .as_ref()
                .and_then(Usage::from_json);
            assert_eq!(Usage::from_raw(raw.as_bytes()), tree, "{raw}");
            without_parser += usize::from(flat::read(raw.as_bytes()).is_some());
        }
        assert!(
            without_parser > 1000,
            "{without_parser} of 5000 read without the parser"
        );
    }
}
