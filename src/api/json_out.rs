//! Writing JSON the gateway builds (upstream bodies, translated answers and stream chunks):
//! the same bytes `serde_json` writes, faster.
//!
//! A chat request is mostly message text, and every upstream call writes it out again.
//! `serde_json` checks each byte of a string against its escape table one at a time; here
//! eight bytes are checked at once and the runs without anything to escape are copied whole.
//! The output is byte for byte what `serde_json::to_vec` gives (tests compare the two), so
//! upstreams and recorded fixtures see no difference.

use serde_json::{Map, Value};

/// Appends `v` as compact JSON.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(m) => write_map(out, m),
    }
}

/// Appends `m` as a compact JSON object.
pub fn write_map(out: &mut Vec<u8>, m: &Map<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

/// `m` as compact JSON, in a buffer sized for it when `size_hint` is the size it was read at.
pub fn map_to_vec(m: &Map<String, Value>, size_hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint.max(64));
    write_map(&mut out, m);
    out
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    // serde_json's own formatting (integers as they are, floats shortest round trip); writing
    // to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, n);
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// A word with the high bit set in each byte that JSON requires escaped (`"`, `\`, or a
/// control character below 0x20). The lowest flagged byte is always exact; bytes above it
/// may be flagged spuriously (borrows), which only matters after the first real hit.
#[inline]
fn escape_mask(w: u64) -> u64 {
    let quote = w ^ (LO * u64::from(b'"'));
    let backslash = w ^ (LO * u64::from(b'\\'));
    let zero_byte = |x: u64| x.wrapping_sub(LO) & !x;
    (zero_byte(quote) | zero_byte(backslash) | (w.wrapping_sub(LO * 0x20) & !w)) & HI
}

/// Index of the first byte of `b` at or after `from` that needs escaping, or `b.len()`.
#[inline]
fn next_escape(b: &[u8], mut from: usize) -> usize {
    while from + 8 <= b.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&b[from..from + 8]);
        let m = escape_mask(u64::from_le_bytes(word));
        if m != 0 {
            return from + (m.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while from < b.len() && !needs_escape(b[from]) {
        from += 1;
    }
    from
}

#[inline]
fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// Appends `s` as a JSON string, escaped the way `serde_json` escapes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    loop {
        let at = next_escape(b, start);
        out.extend_from_slice(&b[start..at]);
        let Some(&c) = b.get(at) else { break };
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
            }
        }
        start = at + 1;
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_as_serde(v: &Value) {
        let mut ours = Vec::new();
        write_value(&mut ours, v);
        let theirs = serde_json::to_vec(v).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    #[test]
    fn every_byte_value_is_escaped_like_serde_json() {
        // Each ASCII byte alone, at every offset of an 8-byte word and in a longer run.
        for c in 0u8..0x80 {
            for pad in 0..17 {
                let mut s = "a".repeat(pad);
                s.push(char::from(c));
                s.push_str("tail");
                same_as_serde(&Value::String(s));
            }
        }
    }

    #[test]
    fn text_with_unicode_quotes_and_newlines_matches() {
        let long = "Here is \"quoted\" text, a tab\there, é and 日本語 and 🦀, a backslash \\ and\nnew lines\r\n, \u{7f} and \u{1}. ".repeat(50);
        for s in [
            "",
            "\"",
            "\\",
            "\u{0}",
            "plain",
            "12345678",
            "1234567\"",
            long.as_str(),
        ] {
            same_as_serde(&Value::String(s.to_string()));
        }
    }

    #[test]
    fn pseudo_random_strings_match() {
        // A fixed-seed generator over a byte alphabet rich in characters that need escaping.
        let alphabet: Vec<char> = "ab \"\\\n\t\r\u{0}\u{1f}\u{7f}é€🦀/0".chars().collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let s: String = (0..len)
                .map(|i| alphabet[((x >> (i % 50)) as usize + i) % alphabet.len()])
                .collect();
            same_as_serde(&Value::String(s));
        }
    }

    #[test]
    fn whole_requests_match() {
        let v = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief.\nAlways."},
                {"role": "user", "content": [{"type": "text", "text": "hi \"there\""},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "f", "arguments": "{\"a\":1}"}}]}
            ],
            "temperature": 0.2, "top_p": 1.0, "n": 1, "seed": -42, "max_tokens": 18446744073709551615u64,
            "logit_bias": {"50256": -100}, "stream": false, "stop": ["\n\n", "END"],
            "tiny": 1e-7, "big": 1.5e300, "neg": -0.0, "empty": {}, "none": []
        });
        same_as_serde(&v);
        let m = v.as_object().unwrap();
        assert_eq!(map_to_vec(m, 10), serde_json::to_vec(m).unwrap());
    }
}
