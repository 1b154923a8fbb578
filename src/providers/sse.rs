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
    /// `event` and `data` hold an event already handed out by reference: cleared (the
    /// buffer's capacity kept) before the next one is read.
    lent: bool,
}

/// One dispatched event, borrowed from the decoder until its next call.
#[derive(Debug, Clone, Copy)]
pub struct SseRef<'a> {
    pub event: Option<&'a str>,
    pub data: &'a str,
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
        self.advance().then(|| SseEvent {
            event: self.event.take(),
            data: std::mem::take(&mut self.data),
        })
    }

    /// [`Self::next_event`] lent instead of given: the decoder's own buffers are reused for
    /// every event, so a stream of events costs no allocation per event.
    pub fn next_event_ref(&mut self) -> Option<SseRef<'_>> {
        self.advance().then(|| SseRef {
            event: self.event.as_deref(),
            data: &self.data,
        })
    }

    /// Reads lines up to the end of the next event; `true` when one is complete in `event`
    /// and `data`.
    fn advance(&mut self) -> bool {
        if std::mem::take(&mut self.lent) {
            self.event = None;
            self.data.clear();
        }
        loop {
            let Some(rel) = memchr::memchr(b'\n', &self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                return false;
            };
            let end = self.scanned + rel;
            self.scanned = 0;
            let mut line = &self.buf[..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let mut dispatched = false;
            if line.is_empty() {
                if self.has_data {
                    self.has_data = false;
                    self.lent = true;
                    dispatched = true;
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
            if dispatched {
                return true;
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

    /// Lent events read the same as given ones; nothing of one is left in the next.
    #[test]
    fn lent_events_match_given_ones() {
        let text = b"event: a\ndata: 1\ndata: 2\n\ndata: 3\n\n: c\n\nevent: b\ndata: 4\n\ndata: [DONE]\n\n";
        let mut given = SseDecoder::new();
        given.push(text);
        let expected = all(&mut given);
        let mut lent = SseDecoder::new();
        let mut got = Vec::new();
        for piece in text.chunks(5) {
            lent.push(piece);
            while let Some(ev) = lent.next_event_ref() {
                got.push(SseEvent {
                    event: ev.event.map(str::to_owned),
                    data: ev.data.to_owned(),
                });
            }
        }
        assert_eq!(got, expected);
        assert_eq!(got.len(), 4);
        assert_eq!(got[1].event, None);
        // A given event after lent ones starts clean too.
        lent.push(b"data: 5\n\n");
        assert_eq!(lent.next_event().unwrap().data, "5");
        lent.push(b"data: tail");
        assert_eq!(lent.finish().unwrap().data, "tail");
    }

    #[test]
    fn finish_flushes_unterminated_event() {
        let mut d = SseDecoder::new();
        d.push(b"data: tail");
        assert!(d.next_event().is_none());
        assert_eq!(d.finish().unwrap().data, "tail");
    }
}
