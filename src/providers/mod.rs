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
pub mod credentials;
pub mod gemini;
pub mod media;
pub mod mock;
pub mod ollama;
pub mod openai;
pub mod params;
pub mod shape;
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
    body: &Map<String, Value>,
    stream: bool,
    ov: &Overrides<'_>,
) -> ApiResult<UpstreamRequest> {
    use Endpoint::{ChatCompletions as Chat, Embeddings as Embed};
    let policy = &ov.params;
    let key = ov.api_key.or(d.api_key.as_ref().map(|k| k.expose()));
    let base = |default: &str| {
        ov.api_base
            .or(d.api_base.as_deref())
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_string()
    };
    let bearer = |k: Option<&str>| {
        let mut h = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(k) = k {
            h.push(("authorization".into(), format!("Bearer {k}")));
        }
        h.extend(d.extra_headers.iter().cloned());
        h
    };
    let req = |url: String, headers: Vec<(String, String)>, body: &Map<String, Value>| {
        Ok(UpstreamRequest {
            url: openai::upstream_uri(&url)?,
            headers: openai::typed_headers(&headers)?,
            body: encode(body, ov.size_hint),
            pool: None,
        })
    };
    // The non-OpenAI adapters rewrite their own copy.
    let owned = || body.clone();
    match (d.provider, endpoint) {
        (_, e) if e.is_media() => media::request(d, endpoint, upstream_model, body, ov),
        (p, _) if p.speaks_openai() => {
            openai::build_request(d, endpoint, upstream_model, body, stream, ov)
        }
        (Provider::Anthropic, Chat) => {
            let body =
                anthropic::chat_body(with_defaults(d, owned()), upstream_model, stream, policy)?;
            anthropic_request(d, ov, &body)
        }
        (Provider::Gemini, Chat) => {
            let body = gemini::chat_body(with_defaults(d, owned()), upstream_model, policy)?;
            let url =
                gemini::gemini_url(&base(gemini::DEFAULT_API_BASE), upstream_model, stream, key);
            req(url, bearer(None), &body)
        }
        (Provider::Gemini, Embed) => {
            let body = gemini::embed_body(&with_defaults(d, owned()), upstream_model)?;
            let url = gemini::embed_url(&base(gemini::DEFAULT_API_BASE), upstream_model, key);
            req(url, bearer(None), &body)
        }
        (Provider::VertexAi, Chat) => {
            let (auth, token) = vertex_auth(d, key).await?;
            let api_base = ov.api_base.or(d.api_base.as_deref());
            let body = with_defaults(d, owned());
            let (url, body) = if upstream_model.starts_with("claude") {
                let b = anthropic::chat_body(body, upstream_model, stream, policy)?;
                (
                    gemini::vertex_anthropic_url(
                        api_base,
                        &auth.project,
                        &auth.location,
                        upstream_model,
                        stream,
                    ),
                    gemini::vertex_anthropic_body(b),
                )
            } else {
                (
                    gemini::vertex_url(
                        api_base,
                        &auth.project,
                        &auth.location,
                        upstream_model,
                        stream,
                    ),
                    gemini::vertex_chat_body(body, upstream_model, policy)?,
                )
            };
            req(url, bearer(Some(&token)), &body)
        }
        (Provider::VertexAi, Embed) => {
            let (auth, token) = vertex_auth(d, key).await?;
            let url = gemini::vertex_url(
                ov.api_base.or(d.api_base.as_deref()),
                &auth.project,
                &auth.location,
                upstream_model,
                false,
            )
            .replace(":generateContent", ":predict");
            let body = gemini::vertex_embed_body(&with_defaults(d, owned()))?;
            req(url, bearer(Some(&token)), &body)
        }
        (Provider::Bedrock, Chat | Embed) => {
            let aws = match &d.native {
                credentials::NativeAuth::Aws(Ok(a)) => a,
                credentials::NativeAuth::Aws(Err(why)) => {
                    return Err(credentials::config_error(d.provider, why))
                }
                _ => return Err(no_adapter(d)),
            };
            let endpoint_override = ov.api_base.or(aws.endpoint.as_deref());
            let (url, body) = if endpoint == Chat {
                let b = bedrock::converse_body(with_defaults(d, owned()), upstream_model, policy)?;
                (
                    bedrock::converse_url(&aws.region, endpoint_override, upstream_model, stream),
                    b,
                )
            } else {
                let input = body.get("input").cloned().unwrap_or(Value::Null);
                let dims = body.get("dimensions").and_then(Value::as_u64);
                let mut bodies = bedrock::embed_request(upstream_model, &input, dims)?;
                if bodies.len() != 1 {
                    return Err(ApiError::bad_request(format!(
                        "{upstream_model} embeds one input per call; send one input per request"
                    ))
                    .with_param("input"));
                }
                (
                    bedrock::invoke_url(&aws.region, endpoint_override, upstream_model),
                    bodies.remove(0),
                )
            };
            let bytes = encode(&body, ov.size_hint);
            let mut headers = match (&aws.credentials, &aws.bearer_token) {
                (Some(c), _) => {
                    bedrock::signed_headers(&url, &bytes, c, &aws.region, chrono::Utc::now())
                }
                (None, Some(t)) => bedrock::bearer_headers(&url, t),
                (None, None) => {
                    return Err(credentials::config_error(
                        d.provider,
                        "no AWS credentials configured",
                    ))
                }
            };
            headers.extend(d.extra_headers.iter().cloned());
            Ok(UpstreamRequest {
                url: openai::upstream_uri(&url)?,
                headers: openai::typed_headers(&headers)?,
                body: bytes,
                pool: None,
            })
        }
        (Provider::Cohere, Chat) => {
            let body =
                cohere::chat_body(with_defaults(d, owned()), upstream_model, stream, policy)?;
            req(
                cohere::url(&base(cohere::DEFAULT_API_BASE), "chat"),
                bearer(key),
                &body,
            )
        }
        (Provider::Cohere, Embed) => {
            let body = cohere::embed_body(&with_defaults(d, owned()), upstream_model)?;
            req(
                cohere::url(&base(cohere::DEFAULT_API_BASE), "embed"),
                bearer(key),
                &body,
            )
        }
        (Provider::Cohere, Endpoint::Rerank) => {
            let body = cohere::rerank_body(&with_defaults(d, owned()), upstream_model)?;
            req(
                cohere::url(&base(cohere::DEFAULT_API_BASE), "rerank"),
                bearer(key),
                &body,
            )
        }
        (Provider::OllamaChat, Chat) => {
            let body =
                ollama::chat_body(with_defaults(d, owned()), upstream_model, stream, policy)?;
            req(
                ollama::url(&base(ollama::DEFAULT_API_BASE), "chat"),
                bearer(key),
                &body,
            )
        }
        (Provider::Ollama, Chat) => {
            let body =
                ollama::generate_body(with_defaults(d, owned()), upstream_model, stream, policy)?;
            req(
                ollama::url(&base(ollama::DEFAULT_API_BASE), "generate"),
                bearer(key),
                &body,
            )
        }
        (Provider::Ollama | Provider::OllamaChat, Embed) => {
            let body = ollama::embed_body(&with_defaults(d, owned()), upstream_model);
            req(
                ollama::url(&base(ollama::DEFAULT_API_BASE), "embed"),
                bearer(key),
                &body,
            )
        }
        _ => Err(unsupported_endpoint(d, endpoint)),
    }
}

/// The Vertex AI project settings and a bearer token (the deployment's `api_key` if set,
/// else a service-account access token).
async fn vertex_auth<'d>(
    d: &'d Deployment,
    key: Option<&str>,
) -> ApiResult<(&'d credentials::VertexAuth, std::sync::Arc<str>)> {
    let auth = match &d.native {
        credentials::NativeAuth::Vertex(Ok(a)) => a,
        credentials::NativeAuth::Vertex(Err(why)) => {
            return Err(credentials::config_error(d.provider, why))
        }
        _ => return Err(no_adapter(d)),
    };
    let token = match (key, &auth.account) {
        (Some(k), _) => std::sync::Arc::from(k),
        (None, Some(sa)) => credentials::vertex_token(sa).await?,
        (None, None) => {
            return Err(credentials::config_error(
                d.provider,
                "no credentials: set vertex_credentials or GOOGLE_APPLICATION_CREDENTIALS",
            ))
        }
    };
    Ok((auth, token))
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
        url: openai::upstream_uri(&anthropic::messages_url(base))?,
        headers: openai::typed_headers(&headers)?,
        body: encode(body, ov.size_hint),
        pool: None,
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
    up.headers.extend(openai::typed_headers(forward_headers)?);
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

/// A translated body as the upstream gets it; `size_hint` is the client's body size.
fn encode(body: &Map<String, Value>, size_hint: usize) -> bytes::Bytes {
    crate::api::json_out::map_to_vec(body, size_hint).into()
}

pub(crate) fn unsupported_endpoint(d: &Deployment, endpoint: Endpoint) -> ApiError {
    ApiError::bad_request(format!(
        "litellm.BadRequestError: {} does not support {} (model group `{}`)",
        d.provider.name(),
        match endpoint {
            Endpoint::ChatCompletions => "chat completions",
            Endpoint::Completions => "text completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Rerank => "rerank",
            Endpoint::Responses => "the Responses API",
            Endpoint::ImageGenerations => "image generation (/images/generations)",
            Endpoint::Moderations => "moderations (/moderations)",
            Endpoint::AudioSpeech => "text to speech (/audio/speech)",
            Endpoint::AudioTranscriptions => "audio transcription (/audio/transcriptions)",
            Endpoint::ImageEdits => "image edits (/images/edits)",
        },
        d.model_name
    ))
}

/// Whether a Vertex AI deployment serves an Anthropic model (Anthropic's wire format).
fn vertex_claude(d: &Deployment) -> bool {
    d.provider == Provider::VertexAi && d.upstream_model.starts_with("claude")
}

/// Turns a successful non-streaming upstream body into the OpenAI response object.
pub fn parse_response(
    d: &Deployment,
    endpoint: Endpoint,
    bytes: &[u8],
) -> ApiResult<Map<String, Value>> {
    use Endpoint::{ChatCompletions as Chat, Embeddings as Embed};
    let model = d.upstream_model.as_str();
    match (d.provider, endpoint) {
        (p, _) if p.speaks_openai() => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(ApiError::internal(format!(
                "litellm.APIError: APIError: {} - upstream returned a body that is not a JSON object",
                d.provider.exception_label()
            ))),
        },
        (Provider::Anthropic, _) => anthropic::parse_chat(bytes),
        (Provider::VertexAi, _) if vertex_claude(d) => anthropic::parse_chat(bytes),
        (Provider::Gemini | Provider::VertexAi, Chat) => gemini::parse_chat(bytes),
        (Provider::Gemini, Embed) => gemini::parse_embed(bytes),
        (Provider::VertexAi, Embed) => gemini::parse_vertex_embed(bytes),
        (Provider::Cohere, Endpoint::Rerank) => cohere::parse_rerank(bytes),
        (Provider::Bedrock, Chat) => bedrock::parse_converse(bytes, model),
        (Provider::Bedrock, Embed) => {
            bedrock::parse_embed(model, &[bytes::Bytes::copy_from_slice(bytes)])
        }
        (Provider::Cohere, Chat) => cohere::parse_chat(bytes, model),
        (Provider::Cohere, Embed) => cohere::parse_embed(bytes, model),
        (Provider::Ollama | Provider::OllamaChat, Chat) => ollama::parse_chat(bytes, model),
        (Provider::Ollama | Provider::OllamaChat, Embed) => ollama::parse_embed(bytes, model),
        _ => Err(unsupported_endpoint(d, endpoint)),
    }
}

/// Maps an upstream error response to LiteLLM's error.
pub fn map_error(provider: Provider, status: u16, body: &[u8]) -> ApiError {
    match provider {
        Provider::Anthropic => anthropic::map_error(status, body),
        Provider::Gemini => gemini::map_error(status, body),
        Provider::VertexAi => gemini::map_vertex_error(status, body),
        Provider::Bedrock => bedrock::map_error(status, body),
        Provider::Cohere => cohere::map_error(status, body),
        Provider::Ollama | Provider::OllamaChat => ollama::map_error(status, body),
        _ => openai::map_error(provider, status, body),
    }
}

/// The stream decoder for a deployment's streaming format.
pub fn stream_dialect(d: &Deployment, _endpoint: Endpoint) -> Dialect {
    match d.provider {
        Provider::Anthropic => Dialect::anthropic(),
        Provider::VertexAi if vertex_claude(d) => Dialect::anthropic(),
        Provider::Gemini => Dialect::Gemini {
            sse: sse::SseDecoder::new(),
            state: Box::new(gemini::StreamState::new()),
        },
        Provider::VertexAi => Dialect::Gemini {
            sse: sse::SseDecoder::new(),
            state: Box::new(gemini::StreamState::vertex()),
        },
        Provider::Cohere => Dialect::Cohere {
            sse: sse::SseDecoder::new(),
            state: Box::new(cohere::StreamState::new(&d.upstream_model)),
        },
        Provider::Ollama | Provider::OllamaChat => {
            Dialect::Ollama(Box::new(ollama::StreamState::new(&d.upstream_model)))
        }
        Provider::Bedrock => Dialect::Bedrock {
            decoder: aws::EventStreamDecoder::new(),
            state: Box::new(bedrock::StreamState::new(&d.upstream_model)),
        },
        _ => Dialect::openai(d.provider),
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
