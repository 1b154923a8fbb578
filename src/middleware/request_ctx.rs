//! Per-request context (call id, start time), response decoration and the access log.
//!
//! A client-supplied `x-litellm-call-id` is echoed, as LiteLLM does; otherwise the call gets a
//! fresh time-ordered UUID (version 7, where LiteLLM uses version 4; see `new_call_id`). The
//! access log line carries method, path, status, duration and call id, never headers or
//! bodies (they hold keys and prompts). [`tracked`] does this for the router's routes (through
//! `track_request`) and for the LLM calls served ahead of it.

use crate::error::ErrorMarker;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub call_id: String,
    pub start: Instant,
    /// The requested model and end user, once the LLM handler has parsed them (kept only when
    /// the Prometheus metrics are on).
    pub seen: std::sync::OnceLock<crate::metrics::Seen>,
}

impl RequestCtx {
    pub fn elapsed_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }
}

static CALL_ID: HeaderName = HeaderName::from_static("x-litellm-call-id");
static VERSION_H: HeaderName = HeaderName::from_static("x-litellm-version");
static DURATION: HeaderName = HeaderName::from_static("x-litellm-response-duration-ms");
static FRAME_OPTIONS: HeaderName = HeaderName::from_static("x-frame-options");
static CSP: HeaderName = HeaderName::from_static("content-security-policy");
static NOSNIFF: HeaderName = HeaderName::from_static("x-content-type-options");

/// The headers every response carries: the gateway's version and the security headers.
pub fn standard_headers(h: &mut axum::http::HeaderMap) {
    h.insert(VERSION_H.clone(), HeaderValue::from_static(VERSION));
    h.insert(FRAME_OPTIONS.clone(), HeaderValue::from_static("DENY"));
    h.insert(
        CSP.clone(),
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert(NOSNIFF.clone(), HeaderValue::from_static("nosniff"));
}

/// A millisecond figure with three decimals as a header value, without a heap string.
pub fn float_header(ms: f64) -> HeaderValue {
    let mut buf = [0u8; 24];
    if let Some(text) = crate::telemetry::millis_text(ms, &mut buf) {
        return HeaderValue::from_bytes(text).unwrap_or_else(|_| HeaderValue::from_static("0"));
    }
    HeaderValue::from_str(&format!("{ms:.3}")).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Valid call ids are short and printable; anything else is replaced.
fn client_call_id(req: &Request) -> Option<String> {
    let v = crate::handlers::request_header(req.headers(), &CALL_ID)?
        .to_str()
        .ok()?;
    (!v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| v.to_string())
}

/// A fresh call id: a time-ordered UUID (version 7) from the thread-local generator (no
/// getrandom syscall per request). Time order matters for the spend log, whose primary key is
/// the call id: ids that grow with time are appended at the end of its index, where random
/// (version 4) ids dirtied a different index page for nearly every row of a batch, so each
/// batch rewrote most of the index.
fn new_call_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random())
        .into_uuid()
        .to_string()
}

pub async fn track_request(req: Request, next: Next) -> Response {
    tracked(req, |mut req, ctx| {
        req.extensions_mut().insert(ctx);
        next.run(req)
    })
    .await
}

/// Runs `inner` with the request's context and decorates and logs what it answers: the body
/// of [`track_request`]; routes served outside the router use [`Tracking`] directly.
pub async fn tracked<F, Fut>(req: Request, inner: F) -> Response
where
    F: FnOnce(Request, RequestCtx) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let t = Tracking::begin(&req);
    let resp = inner(req, t.ctx.clone()).await;
    t.finish(resp)
}

/// One request from its arrival to its answer: its context, and what the access log needs
/// of the request once it has been handed on.
pub struct Tracking {
    pub ctx: RequestCtx,
    method: axum::http::Method,
    path: String,
}

impl Tracking {
    pub fn begin(req: &Request) -> Self {
        let start = Instant::now();
        let call_id = client_call_id(req).unwrap_or_else(new_call_id);
        Self {
            ctx: RequestCtx {
                call_id,
                start,
                seen: std::sync::OnceLock::new(),
            },
            method: req.method().clone(),
            path: req.uri().path().to_string(),
        }
    }

    /// Adds the call id, version, duration and security headers to `resp` and writes the
    /// access-log line.
    pub fn finish(self, mut resp: Response) -> Response {
        let Self { ctx, method, path } = self;
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&ctx.call_id) {
            h.insert(CALL_ID.clone(), v);
        }
        let elapsed_ms = ctx.start.elapsed().as_secs_f64() * 1000.0;
        // An LLM answer starts from its deployment's header template, which holds the standard
        // headers, and has its duration already.
        if !h.contains_key(&VERSION_H) {
            standard_headers(h);
            if !h.contains_key(&DURATION) {
                h.insert(DURATION.clone(), float_header(elapsed_ms));
            }
        }
        let status = resp.status().as_u16();
        let error = resp
            .extensions()
            .get::<ErrorMarker>()
            .map(|m| m.0.type_str());
        crate::telemetry::access(&crate::telemetry::AccessLine {
            method: method.as_str(),
            path: &path,
            status,
            duration_ms: elapsed_ms,
            call_id: &ctx.call_id,
            error,
        });
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_headers_have_three_decimals() {
        for (ms, text) in [
            (0.0, "0.000"),
            (1.5, "1.500"),
            (12.3456, "12.346"),
            (0.0004, "0.000"),
            (999.9996, "1000.000"),
            (86_400_000.25, "86400000.250"),
            (-1.0, "-1.000"),
            (1e12, "1000000000000.000"),
        ] {
            assert_eq!(float_header(ms), text, "{ms}");
        }
        assert_eq!(float_header(f64::NAN), "NaN");
    }

    #[test]
    fn generated_call_ids_are_time_ordered_uuids() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let id = uuid::Uuid::parse_str(&new_call_id()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        let millis = secs * 1000 + u64::from(nanos) / 1_000_000;
        assert!(
            millis >= before && millis < before + 5_000,
            "{millis} vs {before}"
        );
        // Later ids sort after earlier ones (the millisecond prefix grows).
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(new_call_id() > id.to_string());
        assert_ne!(new_call_id(), new_call_id());
    }
}
