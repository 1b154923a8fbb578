//! Incremental Server-Sent Events decoding and encoding.
//!
//! The decoder keeps one buffer and remembers how far it has scanned for a line break, so a
//! single 1 MB `data:` line arriving in many small reads is scanned once (linear), not
//! re-scanned on every read. It accepts `\n` and `\r\n` line endings, multi-line `data:`,
//! `event:` names and `:` comments, per the SSE specification.

use bytes::{Buf, Bytes, BytesMut};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: BytesMut,
    /// Bytes of `buf` already searched for `\n`.
    scanned: usize,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes received but not yet part of a complete line (for diagnostics and error bodies).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let Some(rel) = memchr::memchr(b'\n', &self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                return None;
            };
            let end = self.scanned + rel;
            self.scanned = 0;
            let mut line = &self.buf[..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let mut dispatched = None;
            if line.is_empty() {
                if self.has_data {
                    self.has_data = false;
                    dispatched = Some(SseEvent {
                        event: self.event.take(),
                        data: std::mem::take(&mut self.data),
                    });
                } else {
                    self.event = None;
                }
            } else if line[0] != b':' {
                let (field, value) = match memchr::memchr(b':', line) {
                    Some(i) => {
                        let v = &line[i + 1..];
                        (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                    }
                    None => (line, &b""[..]),
                };
                // Valid UTF-8 (the rule) is checked on the fast path; anything else is
                // replaced, as the specification says.
                let value = match simdutf8::basic::from_utf8(value) {
                    Ok(v) => std::borrow::Cow::Borrowed(v),
                    Err(_) => String::from_utf8_lossy(value),
                };
                match field {
                    b"data" => {
                        if self.has_data {
                            self.data.push('\n');
                        }
                        self.data.push_str(&value);
                        self.has_data = true;
                    }
                    b"event" => self.event = Some(value.into_owned()),
                    _ => {}
                }
            }
            // The line is consumed in place (no split-off buffer per line).
            self.buf.advance(end + 1);
            if dispatched.is_some() {
                return dispatched;
            }
        }
    }

    /// At end of stream: an event left without its terminating blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let rest = self.buf.split();
            self.scanned = 0;
            self.buf.extend_from_slice(&rest);
            self.buf.extend_from_slice(b"\n\n");
            if let Some(ev) = self.next_event() {
                return Some(ev);
            }
        }
        if self.has_data {
            self.has_data = false;
            return Some(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        None
    }

    /// Discards everything (after a terminal event).
    pub fn clear(&mut self) {
        self.buf.advance(self.buf.len());
        self.scanned = 0;
    }
}

/// `data: <payload>\n\n` as one buffer.
pub fn frame(payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(payload.len() + 8);
    b.extend_from_slice(b"data: ");
    b.extend_from_slice(payload);
    b.extend_from_slice(b"\n\n");
    b.freeze()
}

/// An `event: <name>\ndata: <payload>\n\n` frame (Anthropic-style streams).
pub fn named_frame(event: &str, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(payload.len() + event.len() + 16);
    b.extend_from_slice(b"event: ");
    b.extend_from_slice(event.as_bytes());
    b.extend_from_slice(b"\ndata: ");
    b.extend_from_slice(payload);
    b.extend_from_slice(b"\n\n");
    b.freeze()
}

pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut SseDecoder) -> Vec<SseEvent> {
        std::iter::from_fn(|| d.next_event()).collect()
    }

    #[test]
    fn splits_across_reads_and_crlf() {
        let mut d = SseDecoder::new();
        d.push(b"data: {\"a\"");
        assert!(all(&mut d).is_empty());
        d.push(b":1}\r\n\r\nevent: ping\ndata: x\ndata: y\n\n: comment\n\ndata: [DONE]\n\n");
        let ev = all(&mut d);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].data, "{\"a\":1}");
        assert_eq!(ev[1].event.as_deref(), Some("ping"));
        assert_eq!(ev[1].data, "x\ny");
        assert_eq!(ev[2].data, "[DONE]");
    }

    #[test]
    fn huge_line_in_small_reads_is_linear() {
        let mut d = SseDecoder::new();
        let payload = "a".repeat(1 << 20);
        let msg = format!("data: {payload}\n\n");
        for chunk in msg.as_bytes().chunks(1024) {
            d.push(chunk);
            let _ = d.next_event().map(|e| assert_eq!(e.data.len(), 1 << 20));
        }
        assert!(d.next_event().is_none());
    }

    #[test]
    fn invalid_utf8_is_replaced_and_unknown_fields_ignored() {
        let mut d = SseDecoder::new();
        d.push(b"id: 7\nretry: 10\ndata: a\xffb\n\n");
        let ev = all(&mut d);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, "a\u{fffd}b");
        assert!(d.pending().is_empty());
    }

    #[test]
    fn finish_flushes_unterminated_event() {
        let mut d = SseDecoder::new();
        d.push(b"data: tail");
        assert!(d.next_event().is_none());
        assert_eq!(d.finish().unwrap().data, "tail");
    }
}
