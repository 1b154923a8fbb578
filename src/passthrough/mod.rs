//! Pass-through: a request forwarded as it came to an upstream, with the proxy's credentials,
//! and the upstream's answer relayed as it comes (LiteLLM's `pass_through_endpoints` package).
//!
//! Two kinds of routes share the engine here: the provider routes (`/openai/...`,
//! `/anthropic/...`, see [`providers`]) and the custom routes of
//! `general_settings.pass_through_endpoints` (see [`custom`]). Each builds a [`Target`] (URL,
//! headers, how to price the answer); [`forward`] does the rest:
//!
//! - the body streams to the upstream as it arrives. A JSON body is read first up to
//!   [`PEEK_LIMIT`] (or whole, up to `max_request_size_mb`, when the caller's key is limited to
//!   some models and the route must see `model`) to learn `model` and `stream`; larger ones are
//!   not inspected;
//! - the answer streams back chunk by chunk (SSE included), with its status and headers, error
//!   statuses too (LiteLLM relays the provider's error as it is). The wait for the response head
//!   and each wait between two body reads are bounded by the route's timeout (LiteLLM's
//!   `pass_through_request_timeout`, 600 s); a timeout before the head is a 408, a connection
//!   failure a 500, both OpenAI-shaped;
//! - every call writes one spend-log row (`call_type: pass_through_endpoint`), priced from the
//!   answer's usage where the answer is a recognisable chat / messages / embeddings answer
//!   ([`meter`]), plus the route's `cost_per_request`.
//!
//! What must not go in here: which route a path is (the router), the caller's key (the auth
//! layer).

pub mod custom;
mod meter;
pub mod providers;

use crate::api::Usage;
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::middleware::auth::AuthCtx;
use crate::middleware::request_ctx::RequestCtx;
use crate::ratelimit::{Acquired, Descriptor, Permit};
use crate::spend::call::{CallAccount, PassThroughFacts};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub use meter::Format;

/// How much of a JSON request body is read before forwarding, to learn its `model` and
/// `stream`; a larger body is forwarded uninspected as it arrives. A megabyte holds any chat
/// request that is not carrying documents or images.
pub const PEEK_LIMIT: usize = 1024 * 1024;
/// LiteLLM's `DEFAULT_PASS_THROUGH_REQUEST_TIMEOUT_SECONDS`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Where and how one call is forwarded.
pub struct Target {
    /// The complete upstream URL, query included.
    pub url: Uri,
    /// Headers sent upstream (caller's, filtered, and the route's credentials).
    pub headers: HeaderMap,
    /// `custom_llm_provider` of the spend-log row; also the price map's provider.
    pub provider: &'static str,
    /// How the answer is read for its usage.
    pub format: Format,
    /// The model the request named, if any (the answer's own wins).
    pub model: Option<String>,
    /// Bounds the wait for the answer's head and between two reads of its body.
    pub timeout: Duration,
    /// USD charged per call on top of token costs.
    pub cost_per_request: f64,
    /// A replacement body (a router-model relay that rewrites `model`), else the caller's.
    pub body: Option<Bytes>,
}

/// The caller's request body: what was read of it, and the rest still to come.
pub struct Peeked {
    pub head: Bytes,
    /// The rest of the body, when `head` is not all of it.
    pub rest: Option<Body>,
    /// The body as a JSON object, when it was read whole and is one.
    pub json: Option<Map<String, Value>>,
}

impl Peeked {
    /// The body's `model`, if it was read and names one.
    pub fn model(&self) -> Option<&str> {
        self.json.as_ref()?.get("model")?.as_str()
    }
}

/// Reads the start of a request body: up to `limit` bytes of a JSON body (parsed when it ends
/// within them); nothing of other bodies. Refuses a body whose `content-length` exceeds `max`.
pub async fn peek(headers: &HeaderMap, body: Body, limit: usize, max: usize) -> ApiResult<Peeked> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(crate::handlers::body_too_large(max));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    if !is_json || declared == Some(0) {
        return Ok(Peeked {
            head: Bytes::new(),
            rest: Some(body),
            json: None,
        });
    }
    let mut body = body;
    let mut buf = BytesMut::new();
    let mut ended = true;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_request(format!("Failed to read request body: {e}"))
                .with_param("request_body")
        })?;
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
        if buf.len() > max {
            return Err(crate::handlers::body_too_large(max));
        }
        if buf.len() > limit {
            ended = false;
            break;
        }
    }
    let head = buf.freeze();
    if !ended {
        return Ok(Peeked {
            head,
            rest: Some(body),
            json: None,
        });
    }
    let json = match serde_json::from_slice::<Value>(&head) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    Ok(Peeked {
        head,
        rest: None,
        json,
    })
}

/// The timeout of a pass-through call: the route's own, else
/// `general_settings.pass_through_request_timeout`, else 600 s.
pub fn timeout(state: &AppState, own: Option<f64>) -> Duration {
    own.or(state
        .loaded
        .config
        .general_settings
        .pass_through_request_timeout)
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64)
}

/// Headers that describe one connection, never forwarded either way (RFC 9110 §7.6.1), and
/// `host` (the upstream's is set from its URL).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request headers that carry a LiteLLM key (LiteLLM's `litellm_credential_header_names`, and
/// `litellm_user_api_key`, which pass-through routes read a key from).
pub const CREDENTIAL_HEADERS: [&str; 7] = [
    "authorization",
    "x-litellm-api-key",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
    "litellm_user_api_key",
];

/// `x-pass-<name>: v` is sent upstream as `<name>: v` on every pass-through route, except for
/// these names (LiteLLM's protected headers) and `x-amz-*`.
const X_PASS: &str = "x-pass-";
const X_PASS_PROTECTED: [&str; 8] = [
    "authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
    "host",
    "content-length",
    "accept-encoding",
];

/// Headers in the request's `Connection` header (also connection-specific).
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// What of the caller's headers goes upstream.
pub enum Forward<'a> {
    /// All of them but connection-level ones, `accept-encoding` (the answer must stay
    /// readable for its usage) and those in `drop`.
    All { drop: &'a [&'a str] },
    /// Only those describing the body (`content-type`, `content-length`,
    /// `content-encoding`), as LiteLLM's re-encoded body would have.
    BodyOnly,
}

/// The caller's headers as the upstream should see them, before the route adds its own
/// (`x-pass-*` headers are unwrapped in both cases).
pub fn forwarded_headers(incoming: &HeaderMap, how: Forward<'_>) -> HeaderMap {
    let listed = connection_listed(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 4);
    for (name, value) in incoming {
        let n = name.as_str();
        if let Some(inner) = n.strip_prefix(X_PASS) {
            if !X_PASS_PROTECTED.contains(&inner) && !inner.starts_with("x-amz-") {
                if let Ok(inner) = HeaderName::from_bytes(inner.as_bytes()) {
                    out.insert(inner, value.clone());
                }
            }
            continue;
        }
        if HOP_BY_HOP.contains(&n) || n == "host" || listed.iter().any(|l| l == n) {
            continue;
        }
        let keep = match &how {
            Forward::All { drop } => n != "accept-encoding" && !drop.contains(&n),
            Forward::BodyOnly => {
                matches!(n, "content-type" | "content-length" | "content-encoding")
            }
        };
        if keep {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Sets `name: value` on `headers` (replacing what the caller sent), skipping values that are
/// not valid header text.
pub fn set_header(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(n, v);
    }
}

/// `base` (a URL) joined with `path` (the route's remainder, still percent-encoded) and
/// `query`: the base's own path kept, `.` and `..` segments of `path` resolved so it cannot
/// climb above it (LiteLLM's `join_base_and_endpoint_path`), a trailing `/` kept.
pub fn join_url(base: &str, path: &str, query: Option<&str>) -> ApiResult<Uri> {
    let base_uri: Uri = base
        .parse()
        .map_err(|_| ApiError::internal(format!("invalid pass-through target URL: {base}")))?;
    let scheme = base_uri.scheme_str().unwrap_or("https");
    let authority = base_uri
        .authority()
        .ok_or_else(|| ApiError::internal(format!("pass-through target has no host: {base}")))?;
    let base_path = base_uri.path().trim_end_matches('/');
    let mut joined = format!("{base_path}{}", normalize_path(path));
    if joined.is_empty() {
        joined.push('/');
    }
    let mut query_text = String::new();
    for q in [base_uri.query(), query].into_iter().flatten() {
        if q.is_empty() {
            continue;
        }
        if !query_text.is_empty() {
            query_text.push('&');
        }
        query_text.push_str(q);
    }
    let full = if query_text.is_empty() {
        format!("{scheme}://{authority}{joined}")
    } else {
        format!("{scheme}://{authority}{joined}?{query_text}")
    };
    full.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid pass-through path: {path}")))
}

/// `/`-prefixed `path` with `.` and `..` segments resolved (never above the root) and a
/// trailing `/` kept; `""` for an empty path.
fn normalize_path(path: &str) -> String {
    let trailing = path.ends_with('/') && path.len() > 1;
    let mut segs: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    if segs.is_empty() {
        return if path.is_empty() {
            String::new()
        } else {
            "/".into()
        };
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in segs {
        out.push('/');
        out.push_str(s);
    }
    if trailing {
        out.push('/');
    }
    out
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request's tags from its `tags` and `x-litellm-tags` headers (comma-separated), as
/// LiteLLM adds them to pass-through calls' metadata.
fn header_tags(headers: &HeaderMap) -> Vec<String> {
    let mut tags = Vec::new();
    for name in ["tags", "x-litellm-tags"] {
        for v in headers.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
            tags.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from),
            );
        }
    }
    tags
}

/// Takes the caller's rate-limit counters (proxy-wide, key, user, team): a pass-through call
/// counts one request and holds a parallel slot while it runs; its tokens are counted when
/// its answer reports them.
async fn rate_limits(state: &AppState, auth: &AuthCtx) -> ApiResult<Option<Permit>> {
    let mut descs: Vec<Descriptor> = state.global_limits.clone();
    descs.extend(auth.rate_limits.iter().cloned());
    if descs.is_empty() {
        return Ok(None);
    }
    match state.limiter.acquire(descs, 0).await? {
        Acquired::Ok(p, _) => Ok(Some(p)),
        Acquired::Refused(e) => Err(e.to_error(state.limiter.window())),
    }
}

/// Forwards the call to `target` and relays the answer.
pub async fn forward(
    state: &AppState,
    ctx: &RequestCtx,
    auth: &AuthCtx,
    method: Method,
    incoming: &HeaderMap,
    body: Peeked,
    target: Target,
) -> ApiResult<Response> {
    let permit = rate_limits(state, auth).await?;
    let tags = header_tags(incoming);
    let api_base = {
        let mut u = target.url.to_string();
        if let Some(i) = u.find('?') {
            u.truncate(i);
        }
        u
    };
    let mut account = CallAccount::begin_pass_through(
        state,
        auth,
        PassThroughFacts {
            call_id: &ctx.call_id,
            provider: target.provider,
            api_base,
            tags: &tags,
            cost_per_request: target.cost_per_request,
        },
    )?;
    if let Some(m) = &target.model {
        account.set_model(m);
    }
    let mut headers = target.headers;
    let out_body = match target.body {
        Some(b) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
            Body::from(b)
        }
        None => request_body(body, state.max_request_bytes),
    };
    let mut req = hyper::Request::new(out_body);
    *req.method_mut() = method;
    *req.uri_mut() = target.url.clone();
    *req.headers_mut() = headers;
    let sent = tokio::time::timeout(target.timeout, state.upstream.send_streaming(req)).await;
    let resp = match sent {
        Err(_) => {
            let e = ApiError::new(
                ErrorClass::Timeout,
                format!(
                    "litellm.Timeout: Timeout Error: pass-through request to {} timed out. Timeout passed={:.1}s",
                    target.url.host().unwrap_or_default(),
                    target.timeout.as_secs_f64()
                ),
            );
            account.failed(&e);
            return Err(e);
        }
        Ok(Err(e)) => {
            let e = ApiError::new(
                ErrorClass::ApiConnection,
                format!(
                    "litellm.APIConnectionError: pass-through request to {} failed: {}",
                    target.url.host().unwrap_or_default(),
                    crate::handlers::llm::error_chain(e.as_ref())
                ),
            );
            account.failed(&e);
            return Err(e);
        }
        Ok(Ok(r)) => r,
    };
    let (parts, upstream_body) = resp.into_parts();
    let status = parts.status;
    let mut out = Response::builder().status(status);
    if let Some(h) = out.headers_mut() {
        let listed = connection_listed(&parts.headers);
        for (name, value) in &parts.headers {
            let n = name.as_str();
            if HOP_BY_HOP.contains(&n) || listed.iter().any(|l| l == n) {
                continue;
            }
            h.append(name.clone(), value.clone());
        }
    }
    let meter = status
        .is_success()
        .then(|| meter::Meter::new(target.format, &parts.headers, target.model.clone()))
        .flatten();
    let relay = Relay {
        body: upstream_body,
        idle: target.timeout,
        sleep: Box::pin(tokio::time::sleep(target.timeout)),
        meter,
        end: Some(End {
            account,
            permit,
            provider: target.provider,
            cost_per_request: target.cost_per_request,
            success: status.is_success() || status.is_redirection(),
        }),
    };
    out.body(Body::from_stream(relay))
        .map_err(|e| ApiError::internal(format!("failed to relay the upstream answer: {e}")))
}

/// The caller's body as the upstream gets it: what was read, then the rest as it arrives
/// (cut with an error past `max` bytes). A body not read at all keeps its framing (an empty
/// one stays empty, a sized one sized), so a `GET` is not sent with a chunked body.
fn request_body(p: Peeked, max: usize) -> Body {
    let Some(rest) = p.rest else {
        return Body::from(p.head);
    };
    if p.head.is_empty() {
        return Body::new(http_body_util::Limited::new(rest, max));
    }
    let head = p.head;
    let rest = http_body_util::Limited::new(rest, max.saturating_sub(head.len()));
    let rest = http_body_util::BodyDataStream::new(rest).map(|c| c.map_err(std::io::Error::other));
    Body::from_stream(futures::stream::once(async move { Ok(head) }).chain(rest))
}

/// What is settled when the answer ends (or the client goes away).
struct End {
    account: CallAccount,
    permit: Option<Permit>,
    provider: &'static str,
    cost_per_request: f64,
    success: bool,
}

impl End {
    /// Records the call: priced from `found` (usage and model) when the answer was metered.
    fn settle(mut self, found: Option<(Usage, Option<String>)>) {
        let (usage, model) = found.unwrap_or_default();
        if let Some(p) = self.permit.take() {
            p.settle(usage.total_tokens);
        }
        if !self.success {
            // Dropped unfinished: LiteLLM's failure row, no cost.
            return;
        }
        let mut cost = self.cost_per_request;
        if let Some(m) = &model {
            self.account.set_model(m);
            cost += meter::token_cost(self.provider, m, &usage);
        }
        let _ = self.account.finish_priced(usage, cost);
    }
}

/// The upstream's answer as the client's body: chunks relayed as they come, each wait bounded
/// by `idle`, read for usage on the way; the call is settled at the end, on an error, or when
/// the client goes away (with what was seen by then).
struct Relay {
    body: hyper::body::Incoming,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    meter: Option<meter::Meter>,
    end: Option<End>,
}

impl Relay {
    fn finish(&mut self) {
        if let Some(end) = self.end.take() {
            let found = self.meter.take().map(meter::Meter::finish);
            end.settle(found);
        }
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let deadline = tokio::time::Instant::now() + this.idle;
                    this.sleep.as_mut().reset(deadline);
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    if let Some(m) = this.meter.as_mut() {
                        m.feed(&data);
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finish();
                    return Poll::Ready(Some(Err(std::io::Error::other(e))));
                }
                Poll::Ready(None) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    if this.sleep.as_mut().poll(cx).is_ready() {
                        this.finish();
                        return Poll::Ready(Some(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "upstream stopped sending",
                        ))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.finish();
    }
}

/// An error before anything was sent upstream, with a zero cost header (as LLM routes do).
pub fn error_response(e: ApiError) -> Response {
    let mut r = e.into_response();
    r.headers_mut().insert(
        HeaderName::from_static("x-litellm-response-cost"),
        HeaderValue::from_static("0"),
    );
    r
}

/// `405` for a method a custom route does not serve.
pub fn method_not_allowed(method: &Method, path: &str) -> ApiError {
    let mut e = ApiError::new(
        ErrorClass::BadRequest,
        format!("Method {method} is not allowed for pass-through endpoint {path}."),
    );
    e.status_override = Some(StatusCode::METHOD_NOT_ALLOWED);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_without_climbing_above_the_base() {
        let u = |b: &str, p: &str, q: Option<&str>| join_url(b, p, q).unwrap().to_string();
        assert_eq!(
            u("https://api.anthropic.com", "/v1/messages", None),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            u(
                "https://openrouter.ai/api",
                "/v1/chat/completions",
                Some("a=1")
            ),
            "https://openrouter.ai/api/v1/chat/completions?a=1"
        );
        assert_eq!(
            u("http://h:1/base/", "/../../etc/passwd", None),
            "http://h:1/base/etc/passwd"
        );
        assert_eq!(
            u("http://h:1/x?k=v", "/y/", Some("a=b")),
            "http://h:1/x/y/?k=v&a=b"
        );
        assert_eq!(u("http://h:1", "", None), "http://h:1/");
        assert_eq!(
            u("http://h:1/a", "/files/f%2Fx", None),
            "http://h:1/a/files/f%2Fx"
        );
    }

    #[test]
    fn forwarded_headers_drop_connection_level_and_unwrap_x_pass() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("host", "gateway"),
            ("transfer-encoding", "chunked"),
            ("accept-encoding", "gzip"),
            ("authorization", "Bearer sk-litellm"),
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
            ("x-pass-anthropic-beta", "b1"),
            ("x-pass-authorization", "Bearer evil"),
        ] {
            h.append(k, v.parse().unwrap());
        }
        let all = forwarded_headers(
            &h,
            Forward::All {
                drop: &CREDENTIAL_HEADERS,
            },
        );
        let names: Vec<&str> = all.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["content-type", "anthropic-version", "anthropic-beta"]
        );
        let body_only = forwarded_headers(&h, Forward::BodyOnly);
        let names: Vec<&str> = body_only.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "anthropic-beta"]);
    }

    #[test]
    fn tags_come_from_both_headers() {
        let mut h = HeaderMap::new();
        h.insert("tags", "a, b".parse().unwrap());
        h.insert("x-litellm-tags", "c".parse().unwrap());
        assert_eq!(header_tags(&h), ["a", "b", "c"]);
    }
}
