//! OpenAI-format upstreams: OpenAI, Azure OpenAI and every OpenAI-compatible provider.
//!
//! Pure translation: an OpenAI-shaped body plus a deployment in, URL + headers + body out; an
//! upstream error body in, an [`ApiError`] out. No I/O here. The body is forwarded as sent
//! (unknown fields included) with the deployment's defaults filled in, `model` set to the
//! upstream id, and the few per-provider rewrites LiteLLM applies.

use super::compat::{KeyHeader, Quirk};
use super::Provider;
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::routing::Deployment;
use bytes::Bytes;
use serde_json::{Map, Value};

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
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat/completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
            Self::Rerank => "rerank",
        }
    }
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Per-request options: the credential overrides the caller is allowed to make and the
/// unsupported-parameter policy.
#[derive(Debug, Clone, Default)]
pub struct Overrides<'a> {
    pub api_key: Option<&'a str>,
    pub api_base: Option<&'a str>,
    pub api_version: Option<&'a str>,
    pub params: super::params::ParamPolicy<'a>,
}

/// Builds the upstream request for an OpenAI-format deployment.
pub fn build_request(
    d: &Deployment,
    endpoint: Endpoint,
    upstream_model: &str,
    mut body: Map<String, Value>,
    stream: bool,
    ov: &Overrides<'_>,
) -> ApiResult<UpstreamRequest> {
    for (k, v) in &d.defaults {
        if !body.contains_key(k) {
            body.insert(k.clone(), v.clone());
        }
    }
    for name in ov.params.additional_drop {
        body.remove(name);
    }
    body.insert("model".into(), Value::String(upstream_model.to_string()));
    if stream {
        // Ask for the usage chunk so spend is exact; the client only sees it if it asked.
        let opts = body
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), Value::Bool(true));
        }
    } else if endpoint != Endpoint::Embeddings {
        body.remove("stream_options");
    }
    apply_quirks(d.provider, upstream_model, &mut body);

    let base = ov
        .api_base
        .map(|b| b.trim_end_matches('/').to_string())
        .or_else(|| d.api_base.clone())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "api_base is required for {} deployments (model group `{}`); set `api_base` in litellm_params",
                d.provider.name(),
                d.model_name
            ))
        })?;
    let key = ov.api_key.or(d.api_key.as_ref().map(|k| k.expose()));
    let mut headers: Vec<(String, String)> = Vec::with_capacity(4 + d.extra_headers.len());
    headers.push(("content-type".into(), "application/json".into()));
    let url = match d.provider {
        Provider::Azure => {
            let version = ov
                .api_version
                .or(d.api_version.as_deref())
                .unwrap_or(AZURE_DEFAULT_API_VERSION);
            let root = base.strip_suffix("/openai").unwrap_or(&base);
            if let Some(k) = key {
                headers.push(("api-key".into(), k.to_string()));
            }
            format!(
                "{root}/openai/deployments/{upstream_model}/{}?api-version={version}",
                endpoint.path()
            )
        }
        Provider::Compat(c) if c.key_header == KeyHeader::ApiKey => {
            if let Some(k) = key {
                headers.push(("api-key".into(), k.to_string()));
            }
            format!("{base}/{}", endpoint.path())
        }
        _ => {
            if let Some(k) = key {
                headers.push(("authorization".into(), format!("Bearer {k}")));
            }
            format!("{base}/{}", endpoint.path())
        }
    };
    if let Some(org) = &d.organization {
        headers.push(("openai-organization".into(), org.clone()));
    }
    headers.extend(d.extra_headers.iter().cloned());
    let body = serde_json::to_vec(&body)
        .map_err(|e| ApiError::internal(format!("failed to encode upstream request: {e}")))?;
    Ok(UpstreamRequest {
        url,
        headers,
        body: Bytes::from(body),
    })
}

/// OpenAI reasoning models reject `max_tokens` and non-default temperatures.
fn is_openai_reasoning_model(model: &str) -> bool {
    model.starts_with("o1")
        || model.starts_with("o3")
        || model.starts_with("o4")
        || model.starts_with("gpt-5")
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
                && body.get("tool_choice").and_then(Value::as_str) == Some("required") =>
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
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let upstream_msg = err
        .and_then(|e| e.get("message").and_then(Value::as_str).map(String::from))
        .or_else(|| err.and_then(Value::as_str).map(String::from))
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|v| v.get("message").or_else(|| v.get("detail")))
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(2000).collect());
    let code = err
        .and_then(|e| e.get("code"))
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
    if let Some(p) = err.and_then(|e| e.get("param")).and_then(Value::as_str) {
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

    fn body() -> Map<String, Value> {
        json!({"model":"g","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"custom_field":1})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn openai_request_forwards_unknown_fields_and_sets_model() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-x, api_base: 'http://127.0.0.1:9/v1/', temperature: 0.3}\n");
        let r = build_request(
            &d,
            Endpoint::ChatCompletions,
            "gpt-4o-mini",
            body(),
            true,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9/v1/chat/completions");
        assert!(r
            .headers
            .contains(&("authorization".into(), "Bearer sk-x".into())));
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["model"], "gpt-4o-mini");
        assert_eq!(b["custom_field"], 1);
        assert_eq!(b["temperature"], 0.3);
        assert_eq!(b["stream_options"]["include_usage"], true);
    }

    #[test]
    fn azure_url_and_header() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: azure/my-dep, api_key: az, api_base: 'https://x.openai.azure.com/', api_version: '2024-06-01'}\n");
        let r = build_request(
            &d,
            Endpoint::Embeddings,
            "my-dep",
            body(),
            false,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(r.url, "https://x.openai.azure.com/openai/deployments/my-dep/embeddings?api-version=2024-06-01");
        assert!(r.headers.contains(&("api-key".into(), "az".into())));
    }

    #[test]
    fn reasoning_models_use_max_completion_tokens() {
        let d = dep("model_list:\n  - model_name: g\n    litellm_params: {model: openai/o3-mini, api_key: k}\n");
        let r = build_request(
            &d,
            Endpoint::ChatCompletions,
            "o3-mini",
            body(),
            false,
            &Overrides::default(),
        )
        .unwrap();
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(b.get("max_tokens").is_none());
        assert_eq!(b["max_completion_tokens"], 5);
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
