//! OTLP trace export over HTTP, shared by the `langfuse` and `otel` sinks: the
//! `ExportTraceServiceRequest` protobuf body (what LiteLLM's OpenTelemetry-based exporters post
//! with `Content-Type: application/x-protobuf`) and the request that carries it ([`Exporter`]).
//!
//! A small hand-written encoder for the few messages a span needs (resource, scope, span,
//! attributes, events, status), following `opentelemetry/proto/trace/v1/trace.proto` and
//! `common/v1/common.proto`: proto3 rules, so empty strings, zero numbers and absent messages
//! are left out, as the reference encoder does. Pure; no I/O.

use super::sink::Outgoing;
use bytes::Bytes;
use chrono::{NaiveDateTime, TimeZone, Utc};

/// An attribute value (OTLP `AnyValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum AnyValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(Vec<AnyValue>),
}

pub type Attributes = Vec<(String, AnyValue)>;

/// `Span.SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// `Status.StatusCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Unset = 0,
    Ok = 1,
    Error = 2,
}

/// A timed event on a span (`Span.Event`: an exception, for instance).
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Attributes,
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    /// The parent lives in another process (a continued trace).
    pub parent_is_remote: bool,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub attributes: Attributes,
    pub events: Vec<Event>,
    pub status: StatusCode,
    pub status_message: String,
}

/// Where and how a sink posts its spans: the endpoint, the headers (with the content type),
/// the resource and the instrumentation scope every batch is sent under.
#[derive(Debug, Clone)]
pub struct Exporter {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
}

impl Exporter {
    /// The request that exports `spans`.
    pub fn request(&self, spans: &[Span]) -> Outgoing {
        Outgoing {
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: Bytes::from(encode_traces(
                &self.resource,
                &self.scope_name,
                &self.scope_version,
                spans,
            )),
        }
    }
}

/// Nanoseconds since the Unix epoch of a UTC time (0 before it).
pub fn unix_nanos(t: NaiveDateTime) -> u64 {
    Utc.from_utc_datetime(&t)
        .timestamp_nanos_opt()
        .map_or(0, |n| n.max(0) as u64)
}

/// `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` and `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field << 3 | u32::from(wire)));
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.tag(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    /// A string field, left out when empty (proto3 default).
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }
    fn message(&mut self, field: u32, f: impl FnOnce(&mut Writer)) {
        let mut inner = Writer(Vec::new());
        f(&mut inner);
        self.bytes(field, &inner.0);
    }
    fn fixed64(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.tag(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn fixed32(&mut self, field: u32, v: u32) {
        if v != 0 {
            self.tag(field, 5);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.tag(field, 0);
            self.varint(v);
        }
    }
}

fn any_value(w: &mut Writer, v: &AnyValue) {
    // A oneof member is written even when it holds its type's default.
    match v {
        AnyValue::Str(s) => w.bytes(1, s.as_bytes()),
        AnyValue::Bool(b) => {
            w.tag(2, 0);
            w.varint(u64::from(*b));
        }
        AnyValue::Int(i) => {
            w.tag(3, 0);
            w.varint(*i as u64);
        }
        AnyValue::Double(d) => {
            w.tag(4, 1);
            w.0.extend_from_slice(&d.to_le_bytes());
        }
        AnyValue::Array(items) => w.message(5, |a| {
            for item in items {
                a.message(1, |x| any_value(x, item));
            }
        }),
    }
}

fn key_values(w: &mut Writer, field: u32, attrs: &[(String, AnyValue)]) {
    for (k, v) in attrs {
        w.message(field, |kv| {
            kv.string(1, k);
            kv.message(2, |x| any_value(x, v));
        });
    }
}

fn span(w: &mut Writer, s: &Span) {
    w.bytes(1, &s.trace_id);
    w.bytes(2, &s.span_id);
    if let Some(p) = &s.parent_span_id {
        w.bytes(4, p);
    }
    w.string(5, &s.name);
    w.uint(6, s.kind as u64);
    w.fixed64(7, s.start_unix_nano);
    w.fixed64(8, s.end_unix_nano);
    key_values(w, 9, &s.attributes);
    for e in &s.events {
        w.message(11, |ev| {
            ev.fixed64(1, e.time_unix_nano);
            ev.string(2, &e.name);
            key_values(ev, 3, &e.attributes);
        });
    }
    w.message(15, |st| {
        st.string(2, &s.status_message);
        st.uint(3, s.status as u64);
    });
    let remote = if s.parent_span_id.is_some() && s.parent_is_remote {
        IS_REMOTE
    } else {
        0
    };
    w.fixed32(16, HAS_IS_REMOTE | remote);
}

/// An `ExportTraceServiceRequest` holding `spans` under one resource and one scope.
pub fn encode_traces(
    resource: &[(String, AnyValue)],
    scope_name: &str,
    scope_version: &str,
    spans: &[Span],
) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(1024 * spans.len().max(1)));
    w.message(1, |rs| {
        rs.message(1, |r| key_values(r, 1, resource));
        rs.message(2, |ss| {
            ss.message(1, |scope| {
                scope.string(1, scope_name);
                scope.string(2, scope_version);
            });
            for s in spans {
                ss.message(2, |sp| span(sp, s));
            }
        });
    });
    w.0
}

/// Lower-case hex of an id.
pub fn hex_id(b: &[u8]) -> String {
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_match_the_protobuf_encoding() {
        let mut w = Writer(Vec::new());
        w.varint(300);
        assert_eq!(w.0, [0xac, 0x02]);
        let mut w = Writer(Vec::new());
        w.string(1, "");
        w.uint(6, 0);
        assert!(w.0.is_empty(), "proto3 defaults are left out");
        let mut w = Writer(Vec::new());
        any_value(&mut w, &AnyValue::Int(-1));
        assert_eq!(w.0.len(), 11, "negative int64 is a ten-byte varint");
    }

    #[test]
    fn a_span_request_has_the_expected_bytes() {
        let s = Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: None,
            parent_is_remote: false,
            name: "g".into(),
            kind: SpanKind::Internal,
            start_unix_nano: 1,
            end_unix_nano: 2,
            attributes: vec![("k".into(), AnyValue::Str("v".into()))],
            events: Vec::new(),
            status: StatusCode::Unset,
            status_message: String::new(),
        };
        let body = encode_traces(&[], "langfuse-sdk", "", &[s]);
        // resource_spans(1) { resource(1) {} scope_spans(2) { scope(1) { name } spans(2) {...} } }
        let mut expected_span = vec![0x0a, 16];
        expected_span.extend([1u8; 16]);
        expected_span.extend([0x12, 8]);
        expected_span.extend([2u8; 8]);
        expected_span.extend([0x2a, 1, b'g', 0x30, 1]);
        expected_span.extend([0x39, 1, 0, 0, 0, 0, 0, 0, 0]);
        expected_span.extend([0x41, 2, 0, 0, 0, 0, 0, 0, 0]);
        expected_span.extend([0x4a, 8, 0x0a, 1, b'k', 0x12, 3, 0x0a, 1, b'v']);
        expected_span.extend([0x7a, 0]);
        expected_span.extend([0x85, 0x01, 0x00, 0x01, 0, 0]);
        let mut scope = vec![0x0a, 12];
        scope.extend(b"langfuse-sdk");
        let mut scope_spans = vec![0x0a, scope.len() as u8];
        scope_spans.extend(&scope);
        scope_spans.extend([0x12, expected_span.len() as u8]);
        scope_spans.extend(&expected_span);
        let mut rs = vec![0x0a, 0];
        rs.extend([0x12, scope_spans.len() as u8]);
        rs.extend(&scope_spans);
        let mut expected = vec![0x0a, rs.len() as u8];
        expected.extend(&rs);
        assert_eq!(body, expected);
    }
}
