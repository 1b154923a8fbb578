//! Thin axum handlers. The LLM routes share one pipeline ([`llm`]); the rest are small.
//!
//! Helpers here read and parse request bodies with OpenAI-shaped errors (413 for size, 400
//! naming `request_body` for malformed JSON), so no route ever answers with axum's plain-text
//! rejections.

pub mod access;
pub mod budgets;
pub mod cache_admin;
pub mod customers;
pub mod daily_activity;
pub mod health;
pub mod key_limits;
pub mod keys;
pub mod llm;
mod media;
pub mod model_admin;
pub mod models;
pub mod organizations;
pub mod passthrough;
pub mod responses;
pub mod spend;
pub mod spend_reports;
pub mod tags;
pub mod teams;
pub mod users;

use crate::error::{ApiError, ApiResult, ErrorClass};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use serde_json::{Map, Value};

/// The future `make` builds, on the heap. Built inside this plain function, the future never
/// sits in the caller's own state machine: rustc keeps room there for a temporary future even
/// after it has been moved into a box, and a future awaited inline is stored twice, so the
/// LLM call's state doubled at every level of nesting (about 60 KB, copied on every move).
pub(crate) fn boxed<F: std::future::Future>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    Box::pin(make())
}

/// `headers.get(name)` for a request's headers, usually a handful: compared name by name,
/// which costs less than hashing a long custom name (`x-litellm-...`) for a map this small.
/// Larger maps are looked up as usual. The first value, as `get` returns.
///
/// Most names asked for are absent (timeouts, tags, call ids, the other key headers): the
/// names alone are scanned first, a tighter loop than the (name, value) iterator, which
/// steps through each name's extra values.
pub fn request_header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    const SCAN_UP_TO: usize = 12;
    if headers.len() > SCAN_UP_TO {
        return headers.get(name);
    }
    if !headers.keys().any(|k| k == name) {
        return None;
    }
    headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// Reads a request body up to `limit` bytes.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<Bytes> {
    let too_large = || body_too_large(limit);
    if let Some(len) = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(too_large());
        }
    }
    collect(body, Some(limit)).await.map_err(|e| match e {
        Collect::TooLarge => too_large(),
        Collect::Failed(e) => ApiError::bad_request(format!("Failed to read request body: {e}"))
            .with_param("request_body"),
    })
}

/// Why [`collect`] stopped.
pub(crate) enum Collect<E> {
    /// The body went past the limit.
    TooLarge,
    /// Reading a frame failed.
    Failed(E),
}

/// The data of `body`, at most `limit` bytes. A body that arrives in one frame (the usual
/// case) is returned as that frame's bytes, without a copy or an intermediate list.
pub(crate) async fn collect<B>(
    mut body: B,
    limit: Option<usize>,
) -> Result<Bytes, Collect<B::Error>>
where
    B: axum::body::HttpBody<Data = Bytes> + Unpin,
{
    use http_body_util::BodyExt;
    let mut first: Option<Bytes> = None;
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(Collect::Failed)?.into_data() else {
            continue; // trailers
        };
        let len = if first.is_none() && buf.is_empty() {
            let len = chunk.len();
            first = Some(chunk);
            len
        } else {
            if let Some(f) = first.take() {
                buf.extend_from_slice(&f);
            }
            buf.extend_from_slice(&chunk);
            buf.len()
        };
        if limit.is_some_and(|l| len > l) {
            return Err(Collect::TooLarge);
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// The 413 for a request body past `max_request_size_mb` (`limit` bytes).
pub(crate) fn body_too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorClass::PayloadTooLarge,
        format!(
            "Request body is too large. Request size exceeds the maximum allowed size of {:.2} MB (max_request_size_mb).",
            limit as f64 / (1024.0 * 1024.0)
        ),
    )
    .with_param("request_body")
}

/// A list route's page number (from 1) and page size (1 to 100), defaults applied; `size_param`
/// is the size's query parameter (`size` or `page_size`), named in the 400.
pub(crate) fn page_bounds(
    page: Option<i64>,
    size: Option<i64>,
    size_param: &'static str,
    default_size: i64,
) -> ApiResult<(i64, i64)> {
    let (page, size) = (page.unwrap_or(1), size.unwrap_or(default_size));
    if page < 1 {
        return Err(ApiError::bad_request("page must be >= 1").with_param("page"));
    }
    if !(1..=100).contains(&size) {
        return Err(
            ApiError::bad_request(format!("{size_param} must be between 1 and 100"))
                .with_param(size_param),
        );
    }
    Ok((page, size))
}

/// Parses a JSON object body.
pub fn parse_object(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(
            ApiError::bad_request("Invalid JSON payload: request body is empty")
                .with_param("request_body"),
        );
    }
    // Checking the whole body as UTF-8 once is cheaper than checking each string of it as the
    // parser meets it (what parsing bytes does), and the SIMD check keeps its pace through
    // non-ASCII text where `std::str::from_utf8` slows down. A body that is not UTF-8 is
    // parsed as bytes so the error names where it breaks.
    let parsed = match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => serde_json::from_str::<Value>(text),
        Err(_) => serde_json::from_slice::<Value>(bytes),
    };
    match parsed {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::bad_request(format!(
            "Invalid JSON payload: expected a JSON object, got {}",
            crate::api::validate::describe(&other)
        ))
        .with_param("request_body")),
        Err(e) => {
            Err(ApiError::bad_request(format!("Invalid JSON payload: {e}"))
                .with_param("request_body"))
        }
    }
}

/// Query-string extractor whose rejection is an OpenAI-shaped 400 naming the problem (axum's
/// own `Query` answers in plain text).
pub struct JsonQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for JsonQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(q).map(JsonQuery).map_err(|e| {
            ApiError::bad_request(format!("Invalid query parameters: {e}")).with_param("query")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_answers_as_get_does_in_small_and_large_maps() {
        let names: Vec<HeaderName> = [
            "x-litellm-tags",
            "x-litellm-call-id",
            "authorization",
            "content-type",
            "x-missing",
        ]
        .iter()
        .map(|n| HeaderName::from_static(n))
        .collect();
        for extra in [0usize, 20] {
            let mut h = HeaderMap::new();
            h.insert("content-type", HeaderValue::from_static("application/json"));
            h.append("x-litellm-tags", HeaderValue::from_static("a"));
            h.append("x-litellm-tags", HeaderValue::from_static("b"));
            h.insert("Authorization", HeaderValue::from_static("Bearer k"));
            h.insert("x-litellm-call-id", HeaderValue::from_static("id-1"));
            for i in 0..extra {
                h.insert(
                    HeaderName::try_from(format!("x-filler-{i}")).unwrap(),
                    HeaderValue::from_static("v"),
                );
            }
            for n in &names {
                assert_eq!(request_header(&h, n), h.get(n), "{n} with {extra} more");
            }
            assert_eq!(request_header(&h, &names[0]).unwrap(), "a");
        }
    }

    #[test]
    fn parse_object_reads_text_and_rejects_what_is_not_utf8() {
        let m = parse_object("{\"content\": \"café \\u00e9 \\\"q\\\" 日本\"}".as_bytes()).unwrap();
        assert_eq!(m["content"], "café é \"q\" 日本");
        let e = parse_object(b"{\"content\": \"caf\xe9\"}").unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert!(e.to_string().contains("Invalid JSON payload"), "{e}");
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"  ").is_err());
    }
}
