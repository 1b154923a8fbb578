//! Rewriting an upstream JSON response without building a `Value` tree.
//!
//! OpenAI-format responses are forwarded byte for byte except the top-level `model`, which
//! LiteLLM reports as the requested model group. The top level is scanned for the byte ranges
//! of its members (strings, nesting and separators checked, nothing decoded), the new model is
//! spliced over the old value's bytes, and only `usage` is parsed (for accounting).

use super::Usage;
use crate::api::Field;
use std::ops::Range;

/// A top-level member of a JSON object, as byte ranges of the scanned text.
struct Member {
    /// The key's bytes between its quotes, escapes as written.
    key: Range<usize>,
    /// The key contains an escape sequence, so its bytes are not its text.
    escaped: bool,
    value: Range<usize>,
}

impl Member {
    /// Whether the key is `name` (a key written with escapes never matches: callers that care
    /// take the parsing path).
    fn is(&self, body: &[u8], name: &str) -> bool {
        !self.escaped && &body[self.key.clone()] == name.as_bytes()
    }
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// The first bytes of a string, up to this many, are scanned eight at a time in a register:
/// most keys and many values end within them, and a vector search's setup costs more than
/// such a scan.
const SHORT: usize = 32;

/// `b[start]` opens a string: the index just past its closing quote. Past its first
/// [`SHORT`] bytes the scan stops only at quotes: one that follows an odd run of backslashes
/// is escaped. (Stopping at every backslash as well cost a search per `\n` in long message
/// texts.)
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let (mut i, _) = match short_string_end(b, start) {
        Ok(done) => return Some(done.0),
        Err(at) => at,
    };
    loop {
        i += memchr::memchr(b'"', b.get(i..)?)?;
        // `b[i - 1]` is at least the opening quote.
        if b[i - 1] != b'\\' || even_run_before(&b[start + 1..i]) {
            return Some(i + 1);
        }
        i += 1;
    }
}

/// `b[start]` opens a string: the index just past its closing quote, and whether it holds an
/// escape. Stops at each backslash too, which tells the escape for free (keys, and values
/// whose text is wanted).
fn key_end(b: &[u8], start: usize) -> Option<(usize, bool)> {
    let (mut i, mut escaped) = match short_string_end(b, start) {
        Ok(done) => return Some(done),
        Err(at) => at,
    };
    loop {
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i] == b'"' {
            return Some((i + 1, escaped));
        }
        escaped = true;
        i += 2;
    }
}

/// The first [`SHORT`] bytes of the string opening at `b[start]`: `Ok` with the index past
/// its closing quote and whether it holds an escape, or `Err` with where the scan stopped
/// (never inside an escape) and whether it met one.
fn short_string_end(b: &[u8], start: usize) -> Result<(usize, bool), (usize, bool)> {
    let mut i = start + 1;
    let mut escaped = false;
    let limit = b.len().min(i + SHORT);
    while let Some(at) = quote_or_backslash(b, i, limit) {
        if b[at] == b'"' {
            return Ok((at + 1, escaped));
        }
        escaped = true;
        i = at + 2;
    }
    Err((i.max(limit), escaped))
}

/// The index of the first `"` or `\` in `b[i..limit]`, eight bytes at a time (a byte equal
/// to the one sought becomes a zero byte under XOR, and the lowest zero byte of a word is
/// found exactly by the borrow trick).
fn quote_or_backslash(b: &[u8], mut i: usize, limit: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    const QUOTES: u64 = ONES * b'"' as u64;
    const SLASHES: u64 = ONES * b'\\' as u64;
    while i + 8 <= limit {
        if let Some(word) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            let w = u64::from_le_bytes(word);
            let (q, s) = (w ^ QUOTES, w ^ SLASHES);
            let hit = (q.wrapping_sub(ONES) & !q | s.wrapping_sub(ONES) & !s) & HIGH;
            if hit != 0 {
                return Some(i + hit.trailing_zeros() as usize / 8);
            }
        }
        i += 8;
    }
    let tail = b.get(i..limit)?;
    tail.iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|p| i + p)
}

/// Whether `b` ends in an even number of backslashes (a quote after it closes the string).
fn even_run_before(b: &[u8]) -> bool {
    b.iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 0
}

/// Bytes that open or close a string, object or array.
static STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

/// The index just past the JSON value starting at `b[i]`. Strings must close and brackets
/// must nest and match; scalars are taken as the run of characters a number or literal uses
/// (their spelling is the upstream's business, as with any byte we forward).
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            // Open brackets as a stack of bits (1 = `{`), as deep as serde_json parses.
            let mut open: u128 = 0;
            let mut depth = 0u32;
            let mut j = i;
            loop {
                // Skip to the next quote or bracket: everything else is scalars and separators.
                j += b
                    .get(j..)?
                    .iter()
                    .position(|c| STRUCTURAL[usize::from(*c)])?;
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    c @ (b'{' | b'[') => {
                        if depth == u128::BITS {
                            return None;
                        }
                        open = open << 1 | u128::from(c == b'{');
                        depth += 1;
                    }
                    c => {
                        if depth == 0 || (open & 1 == 1) != (c == b'}') {
                            return None;
                        }
                        open >>= 1;
                        depth -= 1;
                    }
                }
                j += 1;
                if depth == 0 {
                    return Some(j);
                }
            }
        }
        _ => {
            let len = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
                .count();
            (len > 0).then_some(i + len)
        }
    }
}

/// Where the value of the top-level member `name` sits in `b`, a JSON object the parser has
/// accepted: the last such member, as a parsed map keeps the last of repeated keys. `None`
/// when a key is written with escapes (its text could be `name` too) or `name` is absent.
pub fn member_value(b: &[u8], name: &str) -> Option<Range<usize>> {
    let members = members(b)?;
    if members.iter().any(|m| m.escaped) {
        return None;
    }
    members
        .iter()
        .rev()
        .find(|m| m.is(b, name))
        .map(|m| m.value.clone())
}

/// The members of the JSON object `b` (whitespace allowed around it), without building
/// values or validating what is inside them beyond their extent. `None` if `b` is not one
/// object.
fn members(b: &[u8]) -> Option<Vec<Member>> {
    members_with(b, |_, _| None)
}

/// [`members`], where `end_of(key, start)` may walk a member's value itself and say where it
/// ends (a caller that reads a value gets its end from that read, instead of the value being
/// scanned twice); `None` leaves it to the scanner. Keys written with escapes are not offered.
fn members_with(
    b: &[u8],
    mut end_of: impl FnMut(&[u8], usize) -> Option<usize>,
) -> Option<Vec<Member>> {
    let mut out = Vec::with_capacity(8);
    let end = walk_object(b, skip_ws(b, 0), |key, escaped, start| {
        let read = if escaped {
            None
        } else {
            end_of(&b[key.clone()], start)
        };
        let end = match read {
            Some(end) => end,
            None => value_end(b, start)?,
        };
        out.push(Member {
            key,
            escaped,
            value: start..end,
        });
        Some(end)
    })?;
    (skip_ws(b, end) == b.len()).then_some(out)
}

/// Walks the JSON object opening at `b[i]`: `member(key, escaped, start)` gets each member's
/// key (the bytes between its quotes), whether the key holds escapes and where its value
/// starts, and returns where that value ends. The index just past the closing brace, or `None`
/// if the object is malformed or `member` says `None`.
fn walk_object(
    b: &[u8],
    mut i: usize,
    mut member: impl FnMut(Range<usize>, bool, usize) -> Option<usize>,
) -> Option<usize> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (key_end, escaped) = key_end(b, i)?;
        let key = i + 1..key_end - 1;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, member(key, escaped, skip_ws(b, i + 1))?);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Walks the JSON array opening at `b[i]`: `element(start)` returns where the element starting
/// there ends. The index just past the closing bracket and the number of elements, or `None`.
fn walk_array(
    b: &[u8],
    mut i: usize,
    mut element: impl FnMut(usize) -> Option<usize>,
) -> Option<(usize, usize)> {
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b']') {
        return Some((i + 1, 0));
    }
    let mut n = 0;
    loop {
        i = skip_ws(b, element(i)?);
        n += 1;
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b']') => return Some((i + 1, n)),
            _ => return None,
        }
    }
}

/// Where the top-level members `names` of the JSON object `b` hold their values, as byte
/// ranges of `b` (`None` for a member that is absent). `None` if `b` is not one object or one
/// of its keys is written with escapes (the caller then parses it whole).
pub fn find_members<const N: usize>(
    b: &[u8],
    names: [&str; N],
) -> Option<[Option<Range<usize>>; N]> {
    let fields = members(b)?;
    if fields.iter().any(|m| m.escaped) {
        return None;
    }
    let mut out: [Option<Range<usize>>; N] = std::array::from_fn(|_| None);
    for m in &fields {
        if let Some(i) = names.iter().position(|n| m.is(b, n)) {
            out[i] = Some(m.value.clone());
        }
    }
    Some(out)
}

/// Returns the body with its top-level `model` replaced by `model`, and the parsed `usage`.
/// `None` if the body is not a JSON object (a body with escaped keys is parsed whole, so a
/// key spelled with escapes is still found).
pub fn set_model(body: &[u8], model: &str) -> Option<(Vec<u8>, Option<Usage>)> {
    let fields = members(body)?;
    if fields.iter().any(|m| m.escaped) {
        let mut v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(body).ok()?;
        v.insert("model".into(), serde_json::Value::String(model.into()));
        let usage = v.field("usage").and_then(Usage::from_json);
        return Some((serde_json::to_vec(&v).ok()?, usage));
    }
    // Splice the new model over the old one's bytes and copy the rest as it is.
    let mut usage = None;
    let mut out = Vec::with_capacity(body.len() + model.len() + 12);
    let mut copied = 0;
    for m in &fields {
        if m.is(body, "model") {
            out.extend_from_slice(&body[copied..m.value.start]);
            crate::api::json_out::write_str(&mut out, model);
            copied = m.value.end;
        } else if m.is(body, "usage") {
            usage = Usage::from_raw(&body[m.value.clone()]);
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
        crate::api::json_out::write_str(&mut out, model);
        copied = close;
    }
    out.extend_from_slice(&body[copied..]);
    Some((out, usage))
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

/// The group name as the JSON string a rewritten chunk carries, encoded once per stream.
pub fn model_json(model: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(model.len() + 2);
    crate::api::json_out::write_str(&mut out, model);
    out.into_boxed_slice()
}

/// Rewrites one OpenAI `chat.completion.chunk` for the client without building a JSON tree:
/// `model` becomes the requested group (`model_json`, see [`model_json`]), `usage` is removed
/// unless `keep_usage` (and a chunk that only carries usage is dropped). `None` when the chunk
/// is not a plain object, carries an `error`, or has choices the accounting cannot read (the
/// caller then takes the general path).
pub fn stream_chunk(data: &[u8], model_json: &[u8], keep_usage: bool) -> Option<ChunkRewrite> {
    let mut r = ChunkRewrite::default();
    let (mut no_choices, mut unreadable) = (false, false);
    // `choices` is read for the accounting where the scan meets it (its end known from that).
    let fields = members_with(data, |key, start| {
        if key != b"choices" {
            return None;
        }
        let walked = walk_choices(data, start, &mut r.output_chars);
        unreadable |= walked.is_none();
        let (end, n) = walked?;
        no_choices = n == 0;
        Some(end)
    })?;
    if unreadable || fields.iter().any(|m| m.escaped) {
        return None;
    }
    // What the frame carries of a member: its value (the group for `model`), or nothing for
    // a `usage` the client did not ask for.
    let carried = |m: &Member| match &data[m.key.clone()] {
        b"usage" if !keep_usage => None,
        b"model" => Some(model_json),
        _ => Some(&data[m.value.clone()]),
    };
    const OPEN: &[u8] = b"data: {";
    const CLOSE: &[u8] = b"}\n\n";
    // The frame's exact length, so that it is one allocation the `Bytes` takes over as is.
    let empty = OPEN.len() + CLOSE.len();
    let mut len = empty;
    for m in &fields {
        let raw = &data[m.value.clone()];
        match &data[m.key.clone()] {
            b"error" => return None,
            b"usage" if raw != b"null" => r.usage = Usage::from_raw(raw),
            _ => {}
        }
        if let Some(v) = carried(m) {
            // `"key":value` and the comma before all but the first.
            len += usize::from(len > empty) + m.key.len() + 3 + v.len();
        }
    }
    if !keep_usage && no_choices && r.usage.is_some() {
        return Some(r);
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(OPEN);
    for (m, v) in fields.iter().filter_map(|m| Some((m, carried(m)?))) {
        if out.len() > OPEN.len() {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(&data[m.key.clone()]);
        out.extend_from_slice(b"\":");
        out.extend_from_slice(v);
    }
    out.extend_from_slice(CLOSE);
    debug_assert_eq!(out.len(), len);
    r.frame = Some(bytes::Bytes::from(out));
    Some(r)
}

/// Walks a chunk's `choices` array opening at `b[i]`, adding to `chars` the characters of
/// output each choice's `delta` carries (`content`, `reasoning_content`, tool-call `arguments`).
/// Where it ends and the number of choices; `None` where a member is not the type OpenAI sends
/// or a key is written with escapes, for the general path to decide. Every byte is looked at
/// once: members that do not count are skipped, the others walked into.
fn walk_choices(b: &[u8], i: usize, chars: &mut usize) -> Option<(usize, usize)> {
    walk_array(b, i, |choice| {
        walk_object(b, choice, |key, escaped, start| match &b[key] {
            _ if escaped => None,
            b"delta" if is_null(b, start) => Some(start + 4),
            b"delta" => walk_delta(b, start, chars),
            _ => value_end(b, start),
        })
    })
}

fn walk_delta(b: &[u8], i: usize, chars: &mut usize) -> Option<usize> {
    walk_object(b, i, |key, escaped, start| match &b[key] {
        _ if escaped => None,
        b"content" | b"reasoning_content" => string_or_null(b, start, chars),
        b"tool_calls" if is_null(b, start) => Some(start + 4),
        b"tool_calls" => walk_array(b, start, |call| {
            walk_object(b, call, |key, escaped, start| match &b[key] {
                _ if escaped => None,
                b"function" if is_null(b, start) => Some(start + 4),
                b"function" => walk_object(b, start, |key, escaped, start| match &b[key] {
                    _ if escaped => None,
                    b"arguments" => string_or_null(b, start, chars),
                    _ => value_end(b, start),
                }),
                _ => value_end(b, start),
            })
        })
        .map(|(end, _)| end),
        _ => value_end(b, start),
    })
}

/// Whether the value at `b[i]` is `null` (as [`value_end`] delimits a literal).
fn is_null(b: &[u8], i: usize) -> bool {
    b.get(i..i + 4) == Some(b"null") && value_end(b, i) == Some(i + 4)
}

/// The string (or `null`) at `b[i]`: adds its decoded length in bytes to `chars` and returns
/// where it ends; `None` for any other value.
fn string_or_null(b: &[u8], i: usize, chars: &mut usize) -> Option<usize> {
    if is_null(b, i) {
        return Some(i + 4);
    }
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (end, escaped) = key_end(b, i)?;
    let raw = &b[i..end];
    *chars += match escaped {
        false => raw.len() - 2,
        true => serde_json::from_slice::<String>(raw).ok()?.len(),
    };
    Some(end)
}

#[cfg(test)]
mod tests {
    #[test]
    fn member_values_are_found_as_a_parsed_map_would_keep_them() {
        let b = br#" {"model":"m","messages":[{"c":"a\"}"}],"n":1} "#;
        let at = member_value(b, "messages").unwrap();
        assert_eq!(&b[at], br#"[{"c":"a\"}"}]"#);
        assert_eq!(member_value(b, "missing"), None);
        // The last of repeated keys, as in a parsed map.
        let b = br#"{"messages":[1],"messages":[2]}"#;
        assert_eq!(&b[member_value(b, "messages").unwrap()], b"[2]");
        // A key written with escapes could be the name: not decided here.
        assert_eq!(
            member_value(br#"{"messages":[1],"m\u0065ssages":[2]}"#, "messages"),
            None
        );
        assert_eq!(member_value(b"[1]", "messages"), None);
    }

    use super::*;
    use serde_json::{json, Value};

    /// Both string scans agree with a plain byte-at-a-time reading on every string of quotes,
    /// backslashes and letters up to 7 long, placed to straddle the short-scan limit.
    #[test]
    fn string_scans_agree_with_a_plain_reading() {
        fn plain(b: &[u8], start: usize) -> Option<(usize, bool)> {
            let (mut i, mut escaped) = (start + 1, false);
            while i < b.len() {
                match b[i] {
                    b'"' => return Some((i + 1, escaped)),
                    b'\\' => {
                        escaped = true;
                        i += 2;
                    }
                    _ => i += 1,
                }
            }
            None
        }
        let alphabet = [b'a', b'\\', b'"'];
        for pad in [
            0,
            SHORT - 4,
            SHORT - 2,
            SHORT - 1,
            SHORT,
            SHORT + 1,
            SHORT + 3,
        ] {
            for len in 0..=7u32 {
                for mut code in 0..3usize.pow(len) {
                    let mut b = vec![b'"'];
                    b.extend(std::iter::repeat_n(b'x', pad));
                    for _ in 0..len {
                        b.push(alphabet[code % 3]);
                        code /= 3;
                    }
                    let want = plain(&b, 0);
                    assert_eq!(key_end(&b, 0), want, "{}", String::from_utf8_lossy(&b));
                    assert_eq!(string_end(&b, 0), want.map(|w| w.0));
                }
            }
        }
    }

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
    fn scanner_finds_top_level_members_and_rejects_broken_structure() {
        let body =
            br#" {"a" : "x\"}]\\", "b":{"c":[1,{"d":"]"}]}, "n":-1.5e+3,"t":true,"z":null} "#;
        let m = members(body).unwrap();
        let got: Vec<(&[u8], &[u8])> = m
            .iter()
            .map(|m| (&body[m.key.clone()], &body[m.value.clone()]))
            .collect();
        assert_eq!(
            got,
            [
                (&b"a"[..], &br#""x\"}]\\""#[..]),
                (b"b", br#"{"c":[1,{"d":"]"}]}"#),
                (b"n", b"-1.5e+3"),
                (b"t", b"true"),
                (b"z", b"null"),
            ]
        );
        assert!(m.iter().all(|m| !m.escaped));
        assert!(members(br#"{"k\"":1}"#).unwrap()[0].escaped);
        assert!(members(br#"{"k\\\\":1}"#).unwrap()[0].escaped);
        // Quotes after runs of backslashes: odd runs escape the quote, even runs do not.
        let runs = br#"{"s":"\\\\\"q\\\\","t":"\\\\\\\"","u":1}"#;
        assert!(serde_json::from_slice::<Value>(runs).is_ok());
        let m = members(runs).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(&runs[m[0].value.clone()], br#""\\\\\"q\\\\""#);
        assert_eq!(&runs[m[1].value.clone()], br#""\\\\\\\"""#);
        assert!(members(b"{}").unwrap().is_empty());
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\":1",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{\"a\":}",
            b"{\"a\":[1}",
            b"{\"a\":{\"b\":1]}",
            b"{\"a\":\"open}",
            b"{\"a\":1} x",
            b"{a:1}",
            b"{\"a\":1}}",
            b"[{\"a\":1}]",
        ] {
            assert!(members(bad).is_none(), "{}", String::from_utf8_lossy(bad));
            assert!(set_model(bad, "g").is_none());
        }
        // Nesting is tracked as deep as serde_json parses (128), mixed brackets included.
        let nested = |depth: usize| {
            let open: String = (0..depth)
                .map(|i| if i % 3 == 0 { "{\"k\":" } else { "[" })
                .collect();
            let close: String = (0..depth)
                .rev()
                .map(|i| if i % 3 == 0 { "}" } else { "]" })
                .collect();
            format!("{{\"a\":{open}1{close}}}")
        };
        assert_eq!(members(nested(128).as_bytes()).unwrap().len(), 1);
        assert!(members(nested(129).as_bytes()).is_none());
    }

    #[test]
    fn stream_chunk_choices_are_scanned_for_output() {
        // Members after `choices`, whitespace around it, a bracket inside a string.
        let c =
            br#"{"model":"up", "choices" : [ {"delta":{"content":"a]b"}} ] ,"x":[1,{"y":"}"}]}"#;
        let r = stream_chunk(c, &model_json("grp"), true).unwrap();
        let frame = r.frame.unwrap();
        let v: Value = serde_json::from_slice(&frame[6..]).unwrap();
        assert_eq!(v["choices"][0]["delta"]["content"], "a]b");
        assert_eq!(v["x"], json!([1, {"y": "}"}]));
        assert_eq!(r.output_chars, 3);
        // Both of two `choices` count, as before.
        let c =
            br#"{"choices":[{"delta":{"content":"ab"}}],"choices":[{"delta":{"content":"c"}}]}"#;
        assert_eq!(
            stream_chunk(c, &model_json("grp"), true)
                .unwrap()
                .output_chars,
            3
        );
        // Choices the accounting cannot read, or that do not end: the general path.
        assert!(stream_chunk(
            br#"{"choices":[{"delta":5}],"model":"m"}"#,
            &model_json("g"),
            true
        )
        .is_none());
        assert!(stream_chunk(br#"{"choices":[{"delta":{}}"#, &model_json("g"), true).is_none());
        assert!(stream_chunk(br#"{"choices":[{"delta":{}}]]}"#, &model_json("g"), true).is_none());
    }

    #[test]
    fn stream_chunks_are_rewritten_in_place() {
        let c = br#"{"id":"c","object":"chat.completion.chunk","model":"up","choices":[{"index":0,"delta":{"content":"H\u00e9","tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}],"usage":null}"#;
        let r = stream_chunk(c, &model_json("grp"), false).unwrap();
        let frame = r.frame.unwrap();
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.starts_with("data: ") && text.ends_with("\n\n"));
        let v: Value = serde_json::from_str(&text[6..]).unwrap();
        assert_eq!(v["model"], "grp");
        assert!(v.field("usage").is_none());
        assert_eq!(v["choices"][0]["delta"]["content"], "H\u{e9}");
        assert_eq!(r.output_chars, 3 + 2);
        // A usage-only chunk: dropped unless asked for, usage reported either way.
        let u = br#"{"id":"c","model":"up","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let r = stream_chunk(u, &model_json("grp"), false).unwrap();
        assert!(r.frame.is_none());
        assert_eq!(r.usage.unwrap().total_tokens, 5);
        let r = stream_chunk(u, &model_json("grp"), true).unwrap();
        assert!(std::str::from_utf8(&r.frame.unwrap())
            .unwrap()
            .contains("\"total_tokens\":5"));
        assert!(stream_chunk(br#"{"error":{"message":"x"}}"#, &model_json("g"), true).is_none());
    }

    /// The scan counts what a decoded chunk holds (escapes decoded, every choice, reasoning
    /// and tool-call arguments) and leaves chunks of another shape to the general path.
    #[test]
    fn stream_chunk_output_is_counted_as_decoded() {
        let g = model_json("g");
        let count = |c: &[u8]| stream_chunk(c, &g, true).map(|r| r.output_chars);
        let c = br#"{"choices":[{"index":0,"delta":{"content":"a\nb\u00e9","reasoning_content":"xy"}},
            {"index":1,"delta":{"content":null,"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"q\":1}"}},
            {"index":1,"function":null},{"index":2}]}},{"index":2,"delta":null},{"index":3}]}"#;
        assert_eq!(count(c), Some(5 + 2 + 7));
        assert_eq!(
            count(br#"{"choices":[{"delta":{"tool_calls":null}}]}"#),
            Some(0)
        );
        for odd in [
            &br#"{"choices":null}"#[..],
            br#"{"choices":[{"delta":{"content":["a"]}}]}"#,
            br#"{"choices":[{"delta":{"c\u006fntent":"a"}}]}"#,
            br#"{"choices":[{"delta":{"tool_calls":[1]}}]}"#,
            br#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":2}}]}}]}"#,
            br#"{"choices":[5]}"#,
        ] {
            assert_eq!(count(odd), None, "{}", String::from_utf8_lossy(odd));
        }
        // The group name is written as a JSON string, escapes and all.
        let r = stream_chunk(br#"{"model":"up","choices":[]}"#, &model_json("a\"b"), true);
        let frame = r.unwrap().frame.unwrap();
        assert_eq!(
            &frame[..],
            b"data: {\"model\":\"a\\\"b\",\"choices\":[]}\n\n"
        );
    }
}
