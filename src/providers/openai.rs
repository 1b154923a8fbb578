//! OpenAI-format upstreams: OpenAI, Azure OpenAI and every OpenAI-compatible provider.
//!
//! Pure translation: an OpenAI-shaped body plus a deployment in, URL + headers + body out; an
//! upstream error body in, an [`ApiError`] out. No I/O here. The body is forwarded as sent
//! (unknown fields included) with the deployment's defaults filled in, `model` set to the
//! upstream id, and the few per-provider rewrites LiteLLM applies.

use super::client::Http1Pool;
use super::compat::{KeyHeader, Quirk};
use super::Provider;
use crate::api::json_out;
use crate::api::Field;
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::routing::Deployment;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Uri};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Azure API version used when neither the deployment nor `AZURE_API_VERSION` sets one.
pub const AZURE_DEFAULT_API_VERSION: &str = "2025-02-01-preview";

/// Which OpenAI endpoint a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    /// Cohere-style rerank (`/rerank`).
    Rerank,
    /// OpenAI's Responses API (`/responses`).
    Responses,
    /// `/images/generations`.
    ImageGenerations,
    /// `/moderations`.
    Moderations,
    /// `/audio/speech` (text to speech; binary audio back).
    AudioSpeech,
    /// `/audio/transcriptions` (a multipart form in).
    AudioTranscriptions,
    /// `/images/edits` (a multipart form in).
    ImageEdits,
}

impl Endpoint {
    /// Position in [`Prebuilt`]'s table; the image, moderation and speech endpoints have none
    /// (their URLs are built when called, so deployments that never serve them carry none).
    fn prebuilt_slot(self) -> Option<usize> {
        match self {
            Self::ChatCompletions => Some(0),
            Self::Completions => Some(1),
            Self::Embeddings => Some(2),
            Self::Rerank => Some(3),
            Self::Responses => Some(4),
            Self::ImageGenerations
            | Self::Moderations
            | Self::AudioSpeech
            | Self::AudioTranscriptions
            | Self::ImageEdits => None,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat/completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
            Self::Rerank => "rerank",
            Self::Responses => "responses",
            Self::ImageGenerations => "images/generations",
            Self::Moderations => "moderations",
            Self::AudioSpeech => "audio/speech",
            Self::AudioTranscriptions => "audio/transcriptions",
            Self::ImageEdits => "images/edits",
        }
    }

    /// The endpoints of [`crate::providers::media`]: images, moderations, speech,
    /// transcriptions and image edits.
    pub fn is_media(self) -> bool {
        matches!(
            self,
            Self::ImageGenerations
                | Self::Moderations
                | Self::AudioSpeech
                | Self::AudioTranscriptions
                | Self::ImageEdits
        )
    }
}

/// Upstream request headers, typed (names and values checked once, when built).
pub type Headers = Vec<(HeaderName, HeaderValue)>;

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub url: Uri,
    pub headers: Headers,
    pub body: Bytes,
    /// The deployment's own connections, for a plain-HTTP call to its configured base.
    pub pool: Option<Arc<Http1Pool>>,
}

/// Per-request options: the credential overrides the caller is allowed to make and the
/// unsupported-parameter policy.
#[derive(Debug, Clone, Default)]
pub struct Overrides<'a> {
    pub api_key: Option<&'a str>,
    pub api_base: Option<&'a str>,
    pub api_version: Option<&'a str>,
    pub params: super::params::ParamPolicy<'a>,
    /// Size of the client's body: the upstream body is written into a buffer this large, so a
    /// long conversation is not copied again each time the buffer grows.
    pub size_hint: usize,
    /// The client's `messages` value as it came, when the request kept it (long chat
    /// requests): written to the upstream body in place of the parsed messages.
    pub raw_messages: Option<&'a [u8]>,
}

impl Overrides<'_> {
    /// Whether the request changes where or with which credentials the call goes.
    fn redirects(&self) -> bool {
        self.api_key.is_some() || self.api_base.is_some() || self.api_version.is_some()
    }
}

/// A URL for an upstream call, or the error naming it.
pub fn upstream_uri(url: &str) -> ApiResult<Uri> {
    url.parse::<Uri>().map_err(|e| {
        ApiError::new(
            ErrorClass::ApiConnection,
            format!(
                "litellm.APIConnectionError: APIConnectionError: invalid upstream URL `{url}`: {e}"
            ),
        )
    })
}

/// One upstream header from text (configured or computed), or the error naming it; the value
/// is never echoed, since it may be a credential.
pub fn header(name: &str, value: &str) -> ApiResult<(HeaderName, HeaderValue)> {
    let invalid = || {
        ApiError::bad_request(format!(
            "invalid upstream header `{name}`: header names and values must be visible ASCII"
        ))
    };
    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
    let mut v = HeaderValue::from_str(value).map_err(|_| invalid())?;
    if n == http::header::AUTHORIZATION
        || name.eq_ignore_ascii_case("api-key")
        || name.eq_ignore_ascii_case("x-api-key")
    {
        v.set_sensitive(true);
    }
    Ok((n, v))
}

/// Text headers (from configuration or a signer) as typed ones.
pub fn typed_headers(h: &[(String, String)]) -> ApiResult<Headers> {
    h.iter().map(|(k, v)| header(k, v)).collect()
}

/// The URL per endpoint and the headers of an OpenAI-format deployment, built once at load
/// for calls that do not override its base, key or version: most calls then build neither.
#[derive(Debug, Clone)]
pub struct Prebuilt {
    /// Indexed by [`Endpoint::prebuilt_slot`].
    urls: [Uri; 5],
    headers: Headers,
    pool: Option<Arc<Http1Pool>>,
}

impl Prebuilt {
    /// `None` when the deployment cannot be called as configured (no base URL, a header that
    /// is not valid): its calls then build, and report, their target one by one.
    pub fn new(d: &Deployment) -> Option<Self> {
        let ov = Overrides::default();
        let target = |e| target(d, e, &d.upstream_model, &ov).ok();
        let (chat, headers) = target(Endpoint::ChatCompletions)?;
        Some(Self {
            pool: Http1Pool::for_url(&chat),
            urls: [
                chat,
                target(Endpoint::Completions)?.0,
                target(Endpoint::Embeddings)?.0,
                target(Endpoint::Rerank)?.0,
                target(Endpoint::Responses)?.0,
            ],
            headers,
        })
    }
}

/// Builds the upstream request for an OpenAI-format deployment.
pub fn build_request(
    d: &Deployment,
    endpoint: Endpoint,
    upstream_model: &str,
    body: &Map<String, Value>,
    stream: bool,
    ov: &Overrides<'_>,
) -> ApiResult<UpstreamRequest> {
    let stream_options = if stream && endpoint != Endpoint::Responses {
        // Ask for the usage chunk so spend is exact; the client only sees it if it asked.
        StreamOptions::IncludeUsage
    } else if matches!(endpoint, Endpoint::Embeddings | Endpoint::Responses) {
        // The Responses API reports usage in its last event and has no `include_usage`.
        StreamOptions::Keep
    } else {
        StreamOptions::Drop
    };
    // The chat quirks (reasoning models' parameter names, ...) are Chat Completions rules.
    let body = if endpoint != Endpoint::Responses && needs_quirk(d, upstream_model, body) {
        // Rare: a copy with the defaults merged in, rewritten, then written as is.
        let mut body = body.clone();
        for (k, v) in &d.defaults {
            if !body.contains_key(k) {
                body.insert(k.clone(), v.clone());
            }
        }
        apply_quirks(d.provider, upstream_model, &mut body);
        // The quirks may rewrite messages: they are written from the copy.
        let ov = Overrides {
            raw_messages: None,
            ..*ov
        };
        forwarded_body(&body, &Map::new(), upstream_model, &ov, stream_options)
    } else {
        forwarded_body(body, &d.defaults, upstream_model, ov, stream_options)
    };
    // An Azure URL names the model, so the prebuilt one only serves the deployment's own.
    let prebuilt = d.openai.as_ref().filter(|_| {
        !ov.redirects() && (d.provider != Provider::Azure || upstream_model == d.upstream_model)
    });
    let (url, headers, pool) = match prebuilt.zip(endpoint.prebuilt_slot()) {
        Some((p, slot)) => (p.urls[slot].clone(), p.headers.clone(), p.pool.clone()),
        None => {
            let (url, headers) = target(d, endpoint, upstream_model, ov)?;
            (url, headers, None)
        }
    };
    Ok(UpstreamRequest {
        url,
        headers,
        body: Bytes::from(body),
        pool,
    })
}

/// A call on one stored response of an OpenAI-format deployment (`GET`/`DELETE
/// /responses/{id}`, `/responses/{id}/input_items`, `/responses/{id}/cancel`): the deployment's
/// Responses URL with the upstream id (and `suffix`) added to its path, so Azure keeps its
/// resource-level `/openai/responses/{id}?api-version=...` form; `query` (the client's) is
/// appended to the URL's own.
pub fn response_item_request(
    d: &Deployment,
    response_id: &str,
    suffix: &str,
    query: Option<&str>,
    body: Bytes,
) -> ApiResult<UpstreamRequest> {
    let prebuilt = d.openai.as_ref().zip(Endpoint::Responses.prebuilt_slot());
    let (base, headers, pool) = match prebuilt {
        Some((p, slot)) => (p.urls[slot].clone(), p.headers.clone(), p.pool.clone()),
        None => {
            let (url, headers) = target(
                d,
                Endpoint::Responses,
                &d.upstream_model,
                &Overrides::default(),
            )?;
            (url, headers, None)
        }
    };
    let mut url = String::with_capacity(160 + response_id.len());
    if let (Some(scheme), Some(authority)) = (base.scheme_str(), base.authority()) {
        url.push_str(scheme);
        url.push_str("://");
        url.push_str(authority.as_str());
    }
    url.push_str(base.path().trim_end_matches('/'));
    url.push('/');
    push_path_segment(&mut url, response_id);
    url.push_str(suffix);
    let queries: Vec<&str> = [base.query(), query]
        .into_iter()
        .flatten()
        .filter(|q| !q.is_empty())
        .collect();
    if !queries.is_empty() {
        url.push('?');
        url.push_str(&queries.join("&"));
    }
    Ok(UpstreamRequest {
        url: upstream_uri(&url)?,
        headers,
        body,
        pool,
    })
}

/// `segment` percent-encoded for one URL path segment (RFC 3986 unreserved characters as
/// they are, every other byte escaped), as LiteLLM encodes a response id in a path.
fn push_path_segment(out: &mut String, segment: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// What the forwarded body carries as `stream_options`.
#[derive(Clone, Copy)]
enum StreamOptions {
    /// The client's, with `include_usage: true` (added when absent).
    IncludeUsage,
    /// The client's, as sent.
    Keep,
    /// None.
    Drop,
}

/// The body as sent (unknown fields included), then the deployment's defaults the body does
/// not set, with `model` set to the upstream id and dropped parameters left out. Written
/// straight from the request's map: no copy of it is made to edit.
fn forwarded_body(
    body: &Map<String, Value>,
    defaults: &Map<String, Value>,
    upstream_model: &str,
    ov: &Overrides<'_>,
    stream_options: StreamOptions,
) -> Vec<u8> {
    let dropped = |k: &str| ov.params.additional_drop.iter().any(|n| n == k);
    let mut out = Vec::with_capacity(ov.size_hint.max(192) + 64);
    out.extend_from_slice(b"{\"model\":");
    json_out::write_str(&mut out, upstream_model);
    let member = |out: &mut Vec<u8>, k: &str, v: &Value| {
        out.push(b',');
        json_out::write_str(out, k);
        out.push(b':');
        json_out::write_value(out, v);
    };
    let defaults = defaults.iter().filter(|(k, _)| !body.contains_key(*k));
    let mut options = None;
    for (k, v) in body.iter().chain(defaults) {
        if k == "model" || dropped(k) {
            continue;
        }
        if k == "stream_options" {
            options = Some(v);
            continue;
        }
        if let Some(raw) = ov.raw_messages.filter(|_| k == "messages") {
            out.push(b',');
            json_out::write_str(&mut out, k);
            out.push(b':');
            out.extend_from_slice(raw);
            continue;
        }
        member(&mut out, k, v);
    }
    match (stream_options, options) {
        (StreamOptions::IncludeUsage, Some(Value::Object(o))) => {
            out.extend_from_slice(b",\"stream_options\":{");
            for (k, v) in o.iter().filter(|(k, _)| *k != "include_usage") {
                json_out::write_str(&mut out, k);
                out.push(b':');
                json_out::write_value(&mut out, v);
                out.push(b',');
            }
            out.extend_from_slice(b"\"include_usage\":true}");
        }
        (StreamOptions::IncludeUsage, None) => {
            out.extend_from_slice(b",\"stream_options\":{\"include_usage\":true}");
        }
        // Not an object: forwarded as sent, for the upstream to judge.
        (StreamOptions::IncludeUsage | StreamOptions::Keep, Some(v)) => {
            member(&mut out, "stream_options", v)
        }
        (StreamOptions::Keep | StreamOptions::Drop, _) => {}
    }
    out.push(b'}');
    out
}

/// The URL and headers of a call to `d` on `endpoint` (its base, key and version unless
/// overridden), for a body that is not JSON: the caller replaces the `content-type`.
pub fn target_of(
    d: &Deployment,
    endpoint: Endpoint,
    upstream_model: &str,
    ov: &Overrides<'_>,
) -> ApiResult<(Uri, Headers)> {
    target(d, endpoint, upstream_model, ov)
}

/// The URL and headers of a call to `d` (its base, key and version unless overridden).
fn target(
    d: &Deployment,
    endpoint: Endpoint,
    upstream_model: &str,
    ov: &Overrides<'_>,
) -> ApiResult<(Uri, Headers)> {
    let base = ov
        .api_base
        .map(|b| b.trim_end_matches('/'))
        .or(d.api_base.as_deref())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "api_base is required for {} deployments (model group `{}`); set `api_base` in litellm_params",
                d.provider.name(),
                d.model_name
            ))
        })?;
    let key = ov.api_key.or(d.api_key.as_ref().map(|k| k.expose()));
    let mut headers: Headers = Vec::with_capacity(4 + d.extra_headers.len());
    headers.push((
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    let url = match d.provider {
        Provider::Azure => {
            let version = ov
                .api_version
                .or(d.api_version.as_deref())
                .unwrap_or(AZURE_DEFAULT_API_VERSION);
            let root = base.strip_suffix("/openai").unwrap_or(base);
            if let Some(k) = key {
                headers.push(header("api-key", k)?);
            }
            if endpoint == Endpoint::Responses {
                // Azure's Responses API is not per deployment: the body names it.
                format!("{root}/openai/responses?api-version={version}")
            } else {
                format!(
                    "{root}/openai/deployments/{upstream_model}/{}?api-version={version}",
                    endpoint.path()
                )
            }
        }
        Provider::Compat(c) if c.key_header == KeyHeader::ApiKey => {
            if let Some(k) = key {
                headers.push(header("api-key", k)?);
            }
            format!("{base}/{}", endpoint.path())
        }
        _ => {
            if let Some(k) = key {
                headers.push(header("authorization", &format!("Bearer {k}"))?);
            }
            format!("{base}/{}", endpoint.path())
        }
    };
    if let Some(org) = &d.organization {
        headers.push(header("openai-organization", org)?);
    }
    headers.extend(typed_headers(&d.extra_headers)?);
    let url = upstream_uri(&url)?;
    // Set here, the pooled client keeps it instead of formatting `host:port` on every call;
    // a `Host` among the configured `extra_headers` stays the only one.
    if !headers.iter().any(|(n, _)| n == http::header::HOST) {
        if let Some(host) = host_header(&url) {
            headers.push((http::header::HOST, host));
        }
    }
    Ok((url, headers))
}

/// The `Host` header for `url`: its host, with the port when it is not the scheme's default.
fn host_header(url: &Uri) -> Option<HeaderValue> {
    let host = url.host()?;
    let default_port = match url.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    match url.port_u16() {
        Some(p) if Some(p) != default_port => HeaderValue::from_str(&format!("{host}:{p}")).ok(),
        _ => HeaderValue::from_str(host).ok(),
    }
}

/// OpenAI reasoning models reject `max_tokens` and non-default temperatures.
fn is_openai_reasoning_model(model: &str) -> bool {
    model.starts_with("o1")
        || model.starts_with("o3")
        || model.starts_with("o4")
        || model.starts_with("gpt-5")
}

/// Whether [`apply_quirks`] would change `body` with the deployment's defaults under it.
fn needs_quirk(d: &Deployment, upstream_model: &str, body: &Map<String, Value>) -> bool {
    let get = |k: &str| body.field(k).or_else(|| d.defaults.get(k));
    match d.provider {
        Provider::OpenAi | Provider::Azure => {
            is_openai_reasoning_model(upstream_model) && get("max_tokens").is_some()
        }
        Provider::Compat(c) => {
            c.quirk == Quirk::Mistral
                && get("tool_choice").and_then(Value::as_str) == Some("required")
        }
        _ => false,
    }
}

fn apply_quirks(provider: Provider, upstream_model: &str, body: &mut Map<String, Value>) {
    match provider {
        Provider::OpenAi | Provider::Azure if is_openai_reasoning_model(upstream_model) => {
            if let Some(v) = body.remove("max_tokens") {
                body.entry("max_completion_tokens").or_insert(v);
            }
        }
        Provider::Compat(c)
            if c.quirk == Quirk::Mistral
                && body.field("tool_choice").and_then(Value::as_str) == Some("required") =>
        {
            body.insert("tool_choice".into(), Value::String("any".into()));
        }
        _ => {}
    }
}

/// Maps an upstream error response (status + body) to LiteLLM's error, with LiteLLM's message
/// prefix `litellm.<Class>: <Class>: <Provider>Exception - <upstream message>`.
pub fn map_error(provider: Provider, status: u16, body: &[u8]) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.field("error"));
    let upstream_msg = err
        .and_then(|e| e.field("message").and_then(Value::as_str).map(String::from))
        .or_else(|| err.and_then(Value::as_str).map(String::from))
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|v| v.field("message").or_else(|| v.field("detail")))
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(2000).collect());
    let code = err
        .and_then(|e| e.field("code"))
        .and_then(|c| c.as_str().map(String::from).or_else(|| Some(c.to_string())))
        .unwrap_or_default();
    let mut class = ErrorClass::from_upstream_status(status);
    let lower = upstream_msg.to_ascii_lowercase();
    if status == 400 || status == 413 {
        if code == "context_length_exceeded"
            || lower.contains("maximum context length")
            || lower.contains("context_length_exceeded")
            || lower.contains("prompt is too long")
            || lower.contains("context window")
        {
            class = ErrorClass::ContextWindowExceeded;
        } else if code == "content_filter"
            || code == "content_policy_violation"
            || lower.contains("content management policy")
        {
            class = ErrorClass::ContentPolicyViolation;
        }
    }
    let name = class.litellm_name();
    let mut e = ApiError::new(
        class,
        format!(
            "litellm.{name}: {name}: {} - {upstream_msg}",
            provider.exception_label()
        ),
    );
    if let Some(p) = err.and_then(|e| e.field("param")).and_then(Value::as_str) {
        e = e.with_param(p);
    }
    if matches!(class, ErrorClass::UnprocessableEntity) {
        e.status_override = Some(axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::routing::ModelRouter;
    use serde_json::json;

    fn dep(yaml: &str) -> std::sync::Arc<Deployment> {
        let r = ModelRouter::from_config(&load_str(yaml, "t.yaml").unwrap()).unwrap();
        let d = r.all_deployments().next().unwrap().clone();
        d
    }

    fn has(r: &UpstreamRequest, name: &str, value: &str) -> bool {
        r.headers
            .iter()
            .any(|(n, v)| n.as_str() == name && v.to_str().ok() == Some(value))
    }

    /// The request for [`body`] to `d`.
    fn build(
        d: &Deployment,
        endpoint: Endpoint,
        model: &str,
        stream: bool,
        ov: &Overrides<'_>,
    ) -> UpstreamRequest {
        build_request(d, endpoint, model, &body(), stream, ov).unwrap()
    }

    fn body() -> Map<String, Value> {
        json!({"model":"g","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"custom_field":1})
            .as_object()
            .unwrap()
            .clone()
    }

    /// The stored-response URL is the Responses URL plus the escaped id, with the
    /// deployment's own query (Azure's `api-version`) first and the client's after it.
    #[test]
    fn stored_response_urls_keep_the_deployment_form() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: openai/gpt-4o, api_key: sk-x, api_base: 'https://up.example/v1/'}\n");
        let r = response_item_request(
            &d,
            "resp_a b/c;d~e",
            "/input_items",
            Some("limit=2"),
            Bytes::new(),
        )
        .unwrap();
        assert_eq!(
            r.url.to_string(),
            "https://up.example/v1/responses/resp_a%20b%2Fc%3Bd~e/input_items?limit=2"
        );
        assert!(has(&r, "authorization", "Bearer sk-x"));
        let d = dep("model_list:\n  - model_name: az\n    litellm_params: {model: azure/dep, api_key: az, api_base: 'https://res.example/openai', api_version: 2025-03-01-preview}\n");
        let r = response_item_request(&d, "resp_1", "/cancel", None, Bytes::from_static(b"{}"))
            .unwrap();
        assert_eq!(
            r.url.to_string(),
            "https://res.example/openai/responses/resp_1/cancel?api-version=2025-03-01-preview"
        );
        assert!(has(&r, "api-key", "az"));
        let r = response_item_request(&d, "resp_1", "", Some(""), Bytes::new()).unwrap();
        assert_eq!(
            r.url.to_string(),
            "https://res.example/openai/responses/resp_1?api-version=2025-03-01-preview"
        );
    }

    #[test]
    fn openai_request_forwards_unknown_fields_and_sets_model() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-x, api_base: 'http://127.0.0.1:9/v1/', temperature: 0.3}\n");
        let r = build(
            &d,
            Endpoint::ChatCompletions,
            "gpt-4o-mini",
            true,
            &Overrides::default(),
        );
        assert_eq!(r.url, "http://127.0.0.1:9/v1/chat/completions");
        assert!(has(&r, "authorization", "Bearer sk-x"));
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["model"], "gpt-4o-mini");
        assert_eq!(b["custom_field"], 1);
        assert_eq!(b["temperature"], 0.3);
        assert_eq!(b["stream_options"]["include_usage"], true);
    }

    #[test]
    fn azure_url_and_header() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: azure/my-dep, api_key: az, api_base: 'https://x.openai.azure.com/', api_version: '2024-06-01'}\n");
        let r = build(
            &d,
            Endpoint::Embeddings,
            "my-dep",
            false,
            &Overrides::default(),
        );
        assert_eq!(r.url, "https://x.openai.azure.com/openai/deployments/my-dep/embeddings?api-version=2024-06-01");
        assert!(has(&r, "api-key", "az"));
    }

    #[test]
    fn reasoning_models_use_max_completion_tokens() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: openai/o3-mini, api_key: k}\n");
        let r = build(
            &d,
            Endpoint::ChatCompletions,
            "o3-mini",
            false,
            &Overrides::default(),
        );
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(b.field("max_tokens").is_none());
        assert_eq!(b["max_completion_tokens"], 5);
    }

    /// The body as the gateway used to build it: a copy of the request with the defaults
    /// merged in, dropped names removed, `model` replaced and `stream_options` adjusted.
    fn reference_body(
        d: &Deployment,
        body: &Map<String, Value>,
        model: &str,
        drop: &[String],
        stream: bool,
        endpoint: Endpoint,
    ) -> Value {
        let mut b = body.clone();
        for (k, v) in &d.defaults {
            if !b.contains_key(k) {
                b.insert(k.clone(), v.clone());
            }
        }
        for n in drop {
            b.remove(n);
        }
        b.insert("model".into(), Value::String(model.into()));
        if stream {
            let o = b
                .entry("stream_options")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(o) = o {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        } else if endpoint != Endpoint::Embeddings {
            b.remove("stream_options");
        }
        Value::Object(b)
    }

    #[test]
    fn forwarded_bodies_match_an_edited_copy_of_the_request() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: openai/gpt-4o-mini, api_key: k, temperature: 0.3, top_p: 0.5, seed: 7}\n");
        let bodies = [
            json!({"model":"g","messages":[{"role":"user","content":"hi"}]}),
            json!({"model":"g","messages":[],"temperature":1,"custom":{"a":[1,"x\"y"]},"stream":true}),
            json!({"messages":[],"stream_options":{"include_usage":false,"other":1}}),
            json!({"messages":[],"stream_options":{"continuous_usage_stats":true}}),
            json!({"messages":[],"stream_options":null,"seed":1}),
            json!({"input":"x","stream_options":{"k":1}}),
            json!({"messages":[],"logit_bias":{"12":-1},"n":2,"user":"u\u{e9}"}),
        ];
        let drops: [Vec<String>; 3] = [
            vec![],
            vec!["top_p".into(), "custom".into()],
            vec!["stream_options".into(), "seed".into()],
        ];
        let mut checked = 0;
        for b in &bodies {
            let b = b.as_object().unwrap();
            for drop in &drops {
                for stream in [false, true] {
                    for endpoint in [Endpoint::ChatCompletions, Endpoint::Embeddings] {
                        let ov = Overrides {
                            params: crate::providers::params::ParamPolicy {
                                additional_drop: drop,
                                ..Default::default()
                            },
                            ..Default::default()
                        };
                        let r = build_request(&d, endpoint, "up-model", b, stream, &ov).unwrap();
                        let got: Value = serde_json::from_slice(&r.body).unwrap();
                        let want = reference_body(&d, b, "up-model", drop, stream, endpoint);
                        assert_eq!(got, want, "body {b:?} drop {drop:?} stream {stream}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 7 * 3 * 2 * 2);
    }

    #[test]
    fn kept_messages_bytes_go_out_as_the_client_wrote_them() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: openai/m, api_key: k, api_base: 'http://127.0.0.1:9/v1'}\n");
        let text = r#"{"model":"g", "messages" : [ {"role":"user","content":"caf\u00e9"} ],"temperature":0.5}"#;
        let body: Map<String, Value> = serde_json::from_str(text).unwrap();
        let at = crate::api::rewrite::member_value(text.as_bytes(), "messages").unwrap();
        let raw = &text.as_bytes()[at];
        assert_eq!(raw, br#"[ {"role":"user","content":"caf\u00e9"} ]"#);
        let ov = Overrides {
            raw_messages: Some(raw),
            ..Default::default()
        };
        let r = build_request(&d, Endpoint::ChatCompletions, "m", &body, false, &ov).unwrap();
        let sent = std::str::from_utf8(&r.body).unwrap();
        assert!(
            sent.contains(r#""messages":[ {"role":"user","content":"caf\u00e9"} ]"#),
            "{sent}"
        );
        let plain = build_request(
            &d,
            Endpoint::ChatCompletions,
            "m",
            &body,
            false,
            &Overrides::default(),
        )
        .unwrap();
        let parsed = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap();
        assert_eq!(parsed(&r.body), parsed(&plain.body));

        // A rewrite of the body (a reasoning model's `max_tokens`) writes from the parsed copy.
        let body: Map<String, Value> = serde_json::from_str(
            r#"{"model":"g","messages":[{"role":"user","content":"caf\u00e9"}],"max_tokens":5}"#,
        )
        .unwrap();
        let r = build_request(&d, Endpoint::ChatCompletions, "o3-mini", &body, false, &ov).unwrap();
        let sent = std::str::from_utf8(&r.body).unwrap();
        assert!(sent.contains(r#""content":"café""#), "{sent}");
        assert!(sent.contains(r#""max_completion_tokens":5"#), "{sent}");
    }

    #[test]
    fn prebuilt_targets_give_way_to_request_overrides() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: openai/m, api_key: sk-conf, api_base: 'http://127.0.0.1:9/v1', organization: org-1, extra_headers: {x-team: blue}}\n");
        assert!(d.openai.is_some());
        let plain = build(&d, Endpoint::Embeddings, "m", false, &Overrides::default());
        assert_eq!(plain.url, "http://127.0.0.1:9/v1/embeddings");
        assert!(has(&plain, "authorization", "Bearer sk-conf"));
        assert!(has(&plain, "openai-organization", "org-1"));
        assert!(has(&plain, "x-team", "blue"));
        assert!(has(&plain, "content-type", "application/json"));
        assert!(has(&plain, "host", "127.0.0.1:9"));
        let ov = Overrides {
            api_key: Some("sk-client"),
            api_base: Some("http://127.0.0.1:10/other/"),
            ..Default::default()
        };
        let moved = build(&d, Endpoint::ChatCompletions, "m", false, &ov);
        assert_eq!(moved.url, "http://127.0.0.1:10/other/chat/completions");
        assert!(has(&moved, "authorization", "Bearer sk-client"));
        assert!(!has(&moved, "authorization", "Bearer sk-conf"));
        assert!(has(&moved, "x-team", "blue"));
        assert!(has(&moved, "host", "127.0.0.1:10"));
        // The credential is marked sensitive (kept out of debug output).
        assert!(plain
            .headers
            .iter()
            .any(|(n, v)| n == "authorization" && v.is_sensitive()));

        // Azure names the model in its URL: a wildcard's capture gets its own URL.
        let az = dep("model_list:\n  - model_name: 'az/*'\n    litellm_params: {model: 'azure/*', api_key: az, api_base: 'https://x.openai.azure.com', api_version: '2024-06-01'}\n");
        let r = build(
            &az,
            Endpoint::ChatCompletions,
            "dep-7",
            false,
            &Overrides::default(),
        );
        assert_eq!(r.url, "https://x.openai.azure.com/openai/deployments/dep-7/chat/completions?api-version=2024-06-01");
        assert!(has(&r, "host", "x.openai.azure.com"));
        let r = build_request(
            &az,
            Endpoint::ChatCompletions,
            "dep-7",
            &body(),
            false,
            &Overrides {
                api_version: Some("2025-01-01"),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(r.url.to_string().ends_with("?api-version=2025-01-01"));
    }

    #[test]
    fn a_configured_host_header_is_kept_alone() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: openai/m, api_key: k, api_base: 'http://127.0.0.1:9/v1', extra_headers: {Host: llm.internal}}\n");
        let r = build(
            &d,
            Endpoint::ChatCompletions,
            "m",
            false,
            &Overrides::default(),
        );
        let hosts: Vec<_> = r.headers.iter().filter(|(n, _)| n == "host").collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].1, "llm.internal");
    }

    #[test]
    fn bad_configured_headers_fail_the_call_with_a_clear_error() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: openai/m, api_key: \"sk-with\\nnewline\", api_base: 'http://127.0.0.1:9/v1'}\n");
        assert!(d.openai.is_none());
        let e = build_request(
            &d,
            Endpoint::ChatCompletions,
            "m",
            &body(),
            false,
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.message
                .contains("invalid upstream header `authorization`"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("sk-with"));
    }

    #[test]
    fn errors_map_with_litellm_prefix() {
        let e = map_error(
            Provider::OpenAi,
            429,
            br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit"}}"#,
        );
        assert_eq!(e.status(), 429);
        assert_eq!(
            e.message,
            "litellm.RateLimitError: RateLimitError: OpenAIException - slow down"
        );
        let e = map_error(Provider::OpenAi, 400, br#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#);
        assert_eq!(e.class, ErrorClass::ContextWindowExceeded);
        let e = map_error(Provider::OpenAi, 503, b"upstream down");
        assert_eq!(e.status(), 503);
        assert!(e.message.ends_with("upstream down"));
    }
}
