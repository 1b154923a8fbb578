//! Providers: the closed set of upstream APIs the gateway can call.
//!
//! A deployment's `litellm_params.model` (`"groq/llama-3.1-8b"`) is parsed into a [`Provider`]
//! once, at config load. OpenAI-compatible providers share one wire format and differ only in
//! base URL, key env vars and a few quirks, so they are rows of one table
//! ([`compat::COMPAT_PROVIDERS`]); providers with their own API get their own variant and module.
//!
//! What must not go in here: routing decisions, auth, spend.

pub mod anthropic;
pub mod aws;
pub mod bedrock;
pub mod client;
pub mod cohere;
pub mod compat;
pub mod gemini;
pub mod mock;
pub mod ollama;
pub mod openai;
pub mod params;
pub mod sse;
pub mod stream;

use crate::error::{ApiError, ApiResult};
use crate::routing::Deployment;
use compat::CompatProvider;
use openai::{Endpoint, Overrides, UpstreamRequest};
use serde_json::{Map, Value};
use stream::Dialect;

/// Which upstream API a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// OpenAI itself (`openai/`, or a bare `gpt-*` name).
    OpenAi,
    /// Azure OpenAI (`azure/<deployment>`): deployment URLs, `api-version`, `api-key` header.
    Azure,
    /// Any provider speaking OpenAI's Chat Completions format, from the compat table.
    Compat(&'static CompatProvider),
    /// Providers with their own API; their adapters live in their own modules.
    Anthropic,
    Gemini,
    VertexAi,
    Bedrock,
    Cohere,
    Ollama,
    OllamaChat,
}

impl Provider {
    /// The LiteLLM provider name (`custom_llm_provider`).
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Azure => "azure",
            Self::Compat(c) => c.name,
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::VertexAi => "vertex_ai",
            Self::Bedrock => "bedrock",
            Self::Cohere => "cohere",
            Self::Ollama => "ollama",
            Self::OllamaChat => "ollama_chat",
        }
    }

    /// Provider for a LiteLLM prefix, if known.
    pub fn from_prefix(prefix: &str) -> Option<Self> {
        Some(match prefix {
            "openai" | "text-completion-openai" => Self::OpenAi,
            "azure" => Self::Azure,
            "anthropic" => Self::Anthropic,
            "gemini" => Self::Gemini,
            "vertex_ai" | "vertex_ai_beta" => Self::VertexAi,
            "bedrock" => Self::Bedrock,
            "cohere" | "cohere_chat" => Self::Cohere,
            "ollama" => Self::Ollama,
            "ollama_chat" => Self::OllamaChat,
            other => Self::Compat(compat::lookup(other)?),
        })
    }

    /// Whether requests are forwarded in OpenAI's own format.
    pub fn speaks_openai(self) -> bool {
        matches!(self, Self::OpenAi | Self::Azure | Self::Compat(_))
    }

    /// The name LiteLLM uses in error messages (`OpenAIException`, `AzureException`, ...).
    pub fn exception_label(self) -> String {
        match self {
            Self::OpenAi => "OpenAIException".into(),
            Self::Azure => "AzureException".into(),
            Self::Anthropic => "AnthropicException".into(),
            Self::Gemini => "GeminiException".into(),
            Self::VertexAi => "VertexAIException".into(),
            Self::Bedrock => "BedrockException".into(),
            Self::Cohere => "CohereException".into(),
            Self::Ollama | Self::OllamaChat => "OllamaException".into(),
            Self::Compat(c) => format!("{}Exception", c.label),
        }
    }
}

/// Builds the upstream request for a call to `d` from an OpenAI-shaped `body` (LiteLLM-only
/// fields already removed). Async because some providers sign requests or fetch tokens.
pub async fn build_request(
    d: &Deployment,
    endpoint: Endpoint,
    upstream_model: &str,
    body: Map<String, Value>,
    stream: bool,
    ov: &Overrides<'_>,
) -> ApiResult<UpstreamRequest> {
    match d.provider {
        p if p.speaks_openai() => {
            openai::build_request(d, endpoint, upstream_model, body, stream, ov)
        }
        Provider::Anthropic => {
            require_chat(d, endpoint)?;
            let body =
                anthropic::chat_body(with_defaults(d, body), upstream_model, stream, &ov.params)?;
            Ok(anthropic_request(d, ov, &body)?)
        }
        _ => Err(no_adapter(d)),
    }
}

/// A request to Anthropic's Messages endpoint with the deployment's credentials.
pub fn anthropic_request(
    d: &Deployment,
    ov: &Overrides<'_>,
    body: &Map<String, Value>,
) -> ApiResult<UpstreamRequest> {
    let base = ov
        .api_base
        .or(d.api_base.as_deref())
        .unwrap_or("https://api.anthropic.com");
    let mut headers: Vec<(String, String)> = Vec::with_capacity(4 + d.extra_headers.len());
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("anthropic-version".into(), anthropic::API_VERSION.into()));
    if let Some(k) = ov.api_key.or(d.api_key.as_ref().map(|k| k.expose())) {
        headers.push(("x-api-key".into(), k.to_string()));
    }
    headers.extend(d.extra_headers.iter().cloned());
    Ok(UpstreamRequest {
        url: anthropic::messages_url(base),
        headers,
        body: encode(body)?,
    })
}

/// `/v1/messages` to an Anthropic deployment: the client's Anthropic body, forwarded with the
/// upstream model id, the deployment's defaults and the client's `anthropic-beta` headers.
pub fn anthropic_native_request(
    d: &Deployment,
    upstream_model: &str,
    body: Map<String, Value>,
    forward_headers: &[(String, String)],
    ov: &Overrides<'_>,
) -> ApiResult<UpstreamRequest> {
    let mut body = with_defaults(d, body);
    body.insert("model".into(), Value::String(upstream_model.to_string()));
    for name in ov.params.additional_drop {
        body.remove(name);
    }
    let mut up = anthropic_request(d, ov, &body)?;
    up.headers.extend(forward_headers.iter().cloned());
    Ok(up)
}

/// The deployment's `litellm_params` defaults under the request's own fields.
fn with_defaults(d: &Deployment, mut body: Map<String, Value>) -> Map<String, Value> {
    for (k, v) in &d.defaults {
        if !body.contains_key(k) {
            body.insert(k.clone(), v.clone());
        }
    }
    body
}

fn encode(body: &Map<String, Value>) -> ApiResult<bytes::Bytes> {
    serde_json::to_vec(body)
        .map(bytes::Bytes::from)
        .map_err(|e| ApiError::internal(format!("failed to encode upstream request: {e}")))
}

fn require_chat(d: &Deployment, endpoint: Endpoint) -> ApiResult<()> {
    if endpoint == Endpoint::ChatCompletions {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "litellm.BadRequestError: {} does not support {:?} (model group `{}`)",
        d.provider.name(),
        endpoint,
        d.model_name
    )))
}

/// Turns a successful non-streaming upstream body into the OpenAI response object.
pub fn parse_response(
    d: &Deployment,
    _endpoint: Endpoint,
    bytes: &[u8],
) -> ApiResult<Map<String, Value>> {
    match d.provider {
        Provider::Anthropic => anthropic::parse_chat(bytes),
        p if p.speaks_openai() => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(ApiError::internal(format!(
                "litellm.APIError: APIError: {} - upstream returned a body that is not a JSON object",
                d.provider.exception_label()
            ))),
        },
        _ => Err(no_adapter(d)),
    }
}

/// Maps an upstream error response to LiteLLM's error.
pub fn map_error(provider: Provider, status: u16, body: &[u8]) -> ApiError {
    match provider {
        Provider::Anthropic => anthropic::map_error(status, body),
        _ => openai::map_error(provider, status, body),
    }
}

/// The stream decoder for a provider's streaming format.
pub fn stream_dialect(provider: Provider, _endpoint: Endpoint) -> Dialect {
    match provider {
        Provider::Anthropic => Dialect::anthropic(),
        _ => Dialect::openai(provider),
    }
}

fn no_adapter(d: &Deployment) -> ApiError {
    ApiError::bad_request(format!(
        "The {} provider (model group `{}`) has no adapter in this build yet; only OpenAI-format providers are served.",
        d.provider.name(),
        d.model_name
    ))
}

/// Splits `"<provider>/<model>"` into its provider and upstream model id. Without a known
/// prefix, guesses from well-known model name shapes as LiteLLM's price-map lookup would.
pub fn parse_model(model: &str, custom_provider: Option<&str>) -> Option<(Provider, String)> {
    if let Some(p) = custom_provider {
        let provider = Provider::from_prefix(p)?;
        let rest = model
            .strip_prefix(p)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(model);
        return Some((provider, rest.to_string()));
    }
    if let Some((prefix, rest)) = model.split_once('/') {
        if let Some(p) = Provider::from_prefix(prefix) {
            return Some((p, rest.to_string()));
        }
    }
    infer_provider(model).map(|p| (p, model.to_string()))
}

fn infer_provider(model: &str) -> Option<Provider> {
    const OPENAI_PREFIXES: &[&str] = &[
        "gpt-",
        "o1",
        "o3",
        "o4",
        "chatgpt-",
        "text-embedding-",
        "davinci",
        "babbage",
        "dall-e",
        "whisper",
        "tts-",
        "omni-moderation",
        "text-moderation",
        "codex-",
    ];
    if OPENAI_PREFIXES.iter().any(|p| model.starts_with(p)) {
        Some(Provider::OpenAi)
    } else if model.starts_with("claude-") {
        Some(Provider::Anthropic)
    } else if model.starts_with("gemini-") {
        Some(Provider::Gemini)
    } else if model.starts_with("command-") {
        Some(Provider::Cohere)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse() {
        let (p, m) = parse_model("together_ai/meta-llama/Llama-3-8b", None).unwrap();
        assert_eq!(p.name(), "together_ai");
        assert_eq!(m, "meta-llama/Llama-3-8b");
        assert_eq!(parse_model("gpt-4o", None).unwrap().0, Provider::OpenAi);
        assert_eq!(
            parse_model("azure/my-dep", None).unwrap().0,
            Provider::Azure
        );
        assert!(parse_model("mystery-model", None).is_none());
        let (p, m) = parse_model("my-model", Some("hosted_vllm")).unwrap();
        assert_eq!((p.name(), m.as_str()), ("hosted_vllm", "my-model"));
    }
}
