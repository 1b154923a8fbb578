//! The provider pass-through routes (`/openai/...`, `/anthropic/...`, ...): where each one
//! sends a call and with which credentials, as LiteLLM 1.106's `llm_passthrough_endpoints`
//! decides it.
//!
//! Credentials: the `api_key` of the first deployment of that provider marked
//! `use_in_pass_through: true` (config order), else the `<PROVIDER>_API_KEY` variable
//! (LiteLLM's `PassthroughEndpointRouter.get_credentials`). Base URLs come from the provider's
//! `*_API_BASE` variable or its public default, as in LiteLLM; `/azure/...` with a path segment
//! naming a model group, and `/vllm/...` with a body `model` naming one, go to that group's
//! deployment instead (LiteLLM's router-model relays).
//!
//! Not served (their paths answer 404): `/bedrock` (SigV4 signing of the caller's request),
//! `/vertex_ai` and `/vertex-ai` (project/location routing with OAuth tokens), and LiteLLM's
//! smaller ones (`/langfuse`, `/watsonx`, `/nvidia_nim`, `/deepgram`, ...).

use super::{forwarded_headers, join_url, set_header, Format, Forward, Peeked, Target};
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::providers::Provider;
use crate::routing::{Deployment, ModelRouter};
use crate::state::AppState;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use serde_json::Value;
use std::sync::Arc;

/// The upstream API a route prefix forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    OpenAi,
    Azure,
    Anthropic,
    Gemini,
    Cohere,
    Mistral,
    Vllm,
    OpenRouter,
    AssemblyAi { eu: bool },
}

/// Route prefixes served, each with the upstream it forwards to.
pub const ROUTES: [(&str, Kind); 12] = [
    ("openai", Kind::OpenAi),
    ("openai_passthrough", Kind::OpenAi),
    ("azure", Kind::Azure),
    ("azure_ai", Kind::Azure),
    ("anthropic", Kind::Anthropic),
    ("gemini", Kind::Gemini),
    ("cohere", Kind::Cohere),
    ("mistral", Kind::Mistral),
    ("vllm", Kind::Vllm),
    ("openrouter", Kind::OpenRouter),
    ("assemblyai", Kind::AssemblyAi { eu: false }),
    ("eu.assemblyai", Kind::AssemblyAi { eu: true }),
];

/// The route a request path is under: its kind and the path after the prefix (still
/// percent-encoded, `/`-prefixed or empty).
pub fn route_of(path: &str) -> Option<(Kind, &str)> {
    let rest = path.strip_prefix('/')?;
    let (prefix, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    ROUTES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, k)| (*k, tail))
}

/// Whether `path` is under a provider pass-through route (where `litellm_user_api_key`, and
/// for `/gemini` the `key` query parameter, carry the caller's key).
pub fn is_provider_path(path: &str) -> bool {
    // Runs for every authenticated request: one `match` on the first segment (compiled to a
    // length switch), not a walk of the table.
    let first = path
        .strip_prefix('/')
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("");
    matches!(
        first,
        "openai"
            | "openai_passthrough"
            | "azure"
            | "azure_ai"
            | "anthropic"
            | "gemini"
            | "cohere"
            | "mistral"
            | "vllm"
            | "openrouter"
            | "assemblyai"
            | "eu.assemblyai"
    )
}

impl Kind {
    /// LiteLLM's provider name: the credential's and the spend log's.
    fn provider(self) -> &'static str {
        match self {
            Kind::OpenAi => "openai",
            Kind::Azure => "azure",
            Kind::Anthropic => "anthropic",
            Kind::Gemini => "gemini",
            Kind::Cohere => "cohere",
            Kind::Mistral => "mistral",
            Kind::Vllm => "vllm",
            Kind::OpenRouter => "openrouter",
            Kind::AssemblyAi { .. } => "assemblyai",
        }
    }

    fn format(self) -> Format {
        match self {
            Kind::Anthropic => Format::Anthropic,
            Kind::Gemini => Format::Gemini,
            Kind::Cohere => Format::Cohere,
            Kind::AssemblyAi { .. } => Format::Unpriced,
            _ => Format::OpenAi,
        }
    }
}

/// A pass-through credential: the `api_key` of the first deployment of `provider` marked
/// `use_in_pass_through: true` whose region matches, else `<PROVIDER>_API_KEY`.
fn credential(state: &AppState, provider: &str, region: Option<&str>) -> Option<String> {
    let router = state.router.load();
    let from_deployment = router
        .model_names()
        .iter()
        .filter_map(|name| router.group(name))
        .flat_map(|g| g.deployments.iter())
        .find_map(|d| {
            let p = &d.config.litellm_params;
            let marked = p.extra.get("use_in_pass_through") == Some(&Value::Bool(true));
            // LiteLLM reads a region from the base URL for AssemblyAI only.
            let d_region = (provider == "assemblyai"
                && p.api_base.as_deref().is_some_and(|b| b.contains("eu")))
            .then_some("eu");
            (marked && d.provider.name() == provider && d_region == region)
                .then(|| p.api_key.as_ref().map(|k| k.expose().to_string()))
                .flatten()
        });
    from_deployment.or_else(|| {
        state
            .loaded
            .env(&format!("{}_API_KEY", provider.to_ascii_uppercase()))
    })
}

fn missing(var: &str, what: &str) -> ApiError {
    ApiError::internal(format!(
        "Required '{var}' in environment to make pass-through calls to {what}."
    ))
}

/// A deployment of the model group `name`, if it is one and a deployment can be picked.
fn group_deployment(router: &ModelRouter, name: &str) -> Option<Arc<Deployment>> {
    router.group(name)?.pick(&[]).cloned()
}

/// Refuses a body `model` outside the caller's key's or organization's models (LiteLLM keeps
/// model access checks on the provider routes); a name that is no model group is matched by
/// name and `prefix*` entries.
pub fn check_model(router: &ModelRouter, auth: &AuthCtx, model: &str) -> ApiResult<()> {
    if let Some(r) = router.resolve(model) {
        return crate::handlers::llm::check_model_access(auth, r.group, model);
    }
    crate::handlers::llm::check_model_allowed(auth, model, |list| {
        list.iter().any(|m| {
            m == "all-proxy-models"
                || m == model
                || m.strip_suffix('*').is_some_and(|p| model.starts_with(p))
        })
    })
}

/// Whether a caller's header value is the LiteLLM key it authenticated with (or the master
/// key): such values are never sent upstream.
fn is_litellm_secret(state: &AppState, presented: Option<&str>, value: &str) -> bool {
    let bare = crate::middleware::auth::strip_bearer(value).unwrap_or(value);
    presented.is_some_and(|k| k == bare)
        || state
            .master_key
            .as_ref()
            .is_some_and(|m| m.expose() == bare)
}

/// Header names that carry the caller's LiteLLM key on this gateway: LiteLLM's set and the
/// configured `litellm_key_header_name`.
fn credential_header_names(state: &AppState) -> Vec<&str> {
    let mut names: Vec<&str> = super::CREDENTIAL_HEADERS.to_vec();
    if let Some(h) = state
        .loaded
        .config
        .general_settings
        .litellm_key_header_name
        .as_deref()
    {
        names.push(h);
    }
    names
}

/// Where a provider route sends this call, and with what.
pub fn target(
    state: &AppState,
    auth: &AuthCtx,
    kind: Kind,
    parts: &Parts,
    rest: &str,
    body: &Peeked,
    presented: Option<&str>,
) -> ApiResult<Target> {
    let env = |n: &str| state.loaded.env(n).filter(|v| !v.is_empty());
    let lower: Vec<String> = credential_header_names(state)
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let drop: Vec<&str> = lower.iter().map(String::as_str).collect();
    let mut headers = forwarded_headers(&parts.headers, Forward::All { drop: &drop });
    let query = parts.uri.query();
    let mut provider = kind.provider();
    let mut model = body.model().map(String::from);
    let mut new_body = None;
    let url: Uri = match kind {
        Kind::OpenAi => {
            let base = env("OPENAI_API_BASE").unwrap_or_else(|| "https://api.openai.com/".into());
            let key = credential(state, "openai", None)
                .ok_or_else(|| missing("OPENAI_API_KEY", "OpenAI"))?;
            openai_headers(&mut headers, &key, rest);
            let url = join_url(&base, rest, query)?.to_string();
            // LiteLLM inserts `/v1` after api.openai.com when the path has none.
            let url = if url.contains("/v1/") {
                url
            } else {
                url.replacen("api.openai.com/", "api.openai.com/v1/", 1)
            };
            parse(&url)?
        }
        Kind::Azure => {
            let router = state.router.load();
            let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
            let relay = (segs.len() > 1)
                .then(|| {
                    segs.iter().find_map(|s| {
                        let d = group_deployment(&router, s)?;
                        (d.provider == Provider::Azure).then(|| (s.to_string(), d))
                    })
                })
                .flatten();
            match relay {
                Some((group, d)) => {
                    crate::handlers::llm::check_model_access(
                        auth,
                        router
                            .group(&group)
                            .ok_or_else(|| ApiError::internal("model group vanished"))?,
                        &group,
                    )?;
                    let base = d
                        .api_base
                        .clone()
                        .ok_or_else(|| missing("AZURE_API_BASE", "Azure"))?;
                    let key = d
                        .api_key
                        .as_ref()
                        .map(|k| k.expose().to_string())
                        .ok_or_else(|| missing("AZURE_API_KEY", "Azure"))?;
                    set_header(&mut headers, "api-key", &key);
                    let path = replace_segment(rest, &group, &d.upstream_model);
                    let has_version = query
                        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("api-version=")));
                    let query = match (&d.api_version, has_version) {
                        (Some(v), false) => Some(match query {
                            Some(q) if !q.is_empty() => format!("{q}&api-version={v}"),
                            _ => format!("api-version={v}"),
                        }),
                        _ => query.map(String::from),
                    };
                    model = Some(d.upstream_model.clone());
                    join_url(&base, &path, query.as_deref())?
                }
                None => {
                    let base =
                        env("AZURE_API_BASE").ok_or_else(|| missing("AZURE_API_BASE", "Azure"))?;
                    let key = credential(state, "azure", None)
                        .ok_or_else(|| missing("AZURE_API_KEY", "Azure"))?;
                    openai_headers(&mut headers, &key, rest);
                    join_url(&base, rest, query)?
                }
            }
        }
        Kind::Anthropic => {
            let base = env("ANTHROPIC_API_BASE")
                .or_else(|| env("ANTHROPIC_BASE_URL"))
                .unwrap_or_else(|| "https://api.anthropic.com".into());
            anthropic_headers(state, &mut headers, &parts.headers, presented)?;
            join_url(&base, rest, query)?
        }
        Kind::Gemini => {
            let base = env("GEMINI_API_BASE")
                .unwrap_or_else(|| "https://generativelanguage.googleapis.com".into());
            let key = credential(state, "gemini", None).ok_or_else(|| {
                ApiError::internal("Required 'GEMINI_API_KEY'/'GOOGLE_API_KEY' in environment to make pass-through calls to Google AI Studio.")
            })?;
            // The caller's `key` (its LiteLLM key) is replaced by the proxy's.
            let mut q: Vec<&str> = query
                .unwrap_or("")
                .split('&')
                .filter(|kv| !kv.is_empty() && !kv.starts_with("key="))
                .collect();
            let key_pair = format!("key={}", super::url_encode(&key));
            q.push(&key_pair);
            if let Some(m) = gemini_model(rest) {
                model = Some(m);
            }
            join_url(&base, rest, Some(&q.join("&")))?
        }
        Kind::Cohere | Kind::Mistral => {
            let (var, default) = match kind {
                Kind::Cohere => ("COHERE_API_BASE", "https://api.cohere.com"),
                _ => ("MISTRAL_API_BASE", "https://api.mistral.ai"),
            };
            let base = env(var).unwrap_or_else(|| default.into());
            if let Some(key) = credential(state, provider, None) {
                set_header(&mut headers, "authorization", &format!("Bearer {key}"));
            }
            join_url(&base, rest, query)?
        }
        Kind::Vllm => {
            let router = state.router.load();
            let relay = body
                .model()
                .and_then(|m| Some((m, group_deployment(&router, m)?)));
            match relay {
                Some((group, d)) => {
                    let base = d.api_base.clone().ok_or_else(|| {
                        ApiError::not_found(format!(
                            "Provider vllm api base not found for model group {group}"
                        ))
                    })?;
                    if let Some(k) = &d.api_key {
                        set_header(
                            &mut headers,
                            "authorization",
                            &format!("Bearer {}", k.expose()),
                        );
                    }
                    // The body goes with the deployment's own model id (LiteLLM's relay).
                    if let Some(mut json) = body.json.clone() {
                        json.insert("model".into(), Value::String(d.upstream_model.clone()));
                        new_body = serde_json::to_vec(&json).ok().map(bytes::Bytes::from);
                    }
                    provider = d.provider.name();
                    model = Some(d.upstream_model.clone());
                    join_url(&base, rest, query)?
                }
                None => {
                    let base = env("VLLM_API_BASE")
                        .or_else(|| env("HOSTED_VLLM_API_BASE"))
                        .ok_or_else(|| ApiError::not_found("Provider vllm api base not found"))?;
                    if let Some(key) = credential(state, "vllm", None) {
                        set_header(&mut headers, "authorization", &format!("Bearer {key}"));
                    }
                    join_url(&base, rest, query)?
                }
            }
        }
        Kind::OpenRouter => {
            let base =
                env("OPENROUTER_API_BASE").unwrap_or_else(|| "https://openrouter.ai/api/v1".into());
            let root = base.trim_end_matches('/');
            let root = root.strip_suffix("/v1").unwrap_or(root);
            if let Some(key) = credential(state, "openrouter", None) {
                set_header(&mut headers, "authorization", &format!("Bearer {key}"));
            }
            if !headers.contains_key("content-type") {
                set_header(&mut headers, "content-type", "application/json");
            }
            join_url(root, rest, query)?
        }
        Kind::AssemblyAi { eu } => {
            let base = if eu {
                "https://api.eu.assemblyai.com"
            } else {
                "https://api.assemblyai.com"
            };
            let region = eu.then_some("eu");
            if let Some(key) = credential(state, "assemblyai", region) {
                set_header(&mut headers, "authorization", &key);
            }
            join_url(base, rest, query)?
        }
    };
    Ok(Target {
        url,
        headers,
        provider,
        format: Format::for_path(kind.format(), rest),
        model,
        timeout: super::timeout(state, None),
        cost_per_request: 0.0,
        body: new_body,
    })
}

fn parse(url: &str) -> ApiResult<Uri> {
    url.parse()
        .map_err(|_| ApiError::internal(format!("invalid pass-through URL: {url}")))
}

/// OpenAI's and Azure's credential headers (LiteLLM sends both forms), and the Assistants
/// API's beta header unless the caller sent one.
fn openai_headers(headers: &mut HeaderMap, key: &str, path: &str) {
    set_header(headers, "authorization", &format!("Bearer {key}"));
    set_header(headers, "api-key", key);
    if (path.contains("thread") || path.contains("assistant"))
        && !headers.contains_key("openai-beta")
    {
        set_header(headers, "openai-beta", "assistants=v2");
    }
}

/// LiteLLM's beta flag for Anthropic OAuth tokens.
const ANTHROPIC_OAUTH_BETA: &str = "oauth-2025-04-20";

/// Anthropic's credential: the proxy's key (`x-api-key`, or a bearer token for an OAuth key,
/// `sk-ant-oat...`), else `ANTHROPIC_AUTH_TOKEN`, else the caller's own Anthropic credential
/// (never its LiteLLM key), else LiteLLM's 401.
fn anthropic_headers(
    state: &AppState,
    headers: &mut HeaderMap,
    incoming: &HeaderMap,
    presented: Option<&str>,
) -> ApiResult<()> {
    if let Some(key) = credential(state, "anthropic", None) {
        if key.starts_with("sk-ant-oat") {
            set_header(headers, "authorization", &format!("Bearer {key}"));
            let beta = match headers.get("anthropic-beta").and_then(|v| v.to_str().ok()) {
                Some(b) if !b.contains(ANTHROPIC_OAUTH_BETA) => {
                    format!("{b},{ANTHROPIC_OAUTH_BETA}")
                }
                Some(b) => b.to_string(),
                None => ANTHROPIC_OAUTH_BETA.to_string(),
            };
            set_header(headers, "anthropic-beta", &beta);
        } else {
            set_header(headers, "x-api-key", &key);
        }
        return Ok(());
    }
    if let Some(token) = state
        .loaded
        .env("ANTHROPIC_AUTH_TOKEN")
        .filter(|t| !t.is_empty())
    {
        set_header(headers, "authorization", &format!("Bearer {token}"));
        return Ok(());
    }
    let mut own = false;
    for name in ["authorization", "x-api-key"] {
        for v in incoming
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            if !is_litellm_secret(state, presented, v) {
                set_header(headers, name, v);
                own = true;
            }
        }
    }
    if own {
        return Ok(());
    }
    Err(ApiError::proxy_auth(
        "No Anthropic credential is configured on this proxy and the request carried no upstream Anthropic credential. The LiteLLM virtual key is not forwarded to Anthropic. Configure an Anthropic credential (ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN, or a model with use_in_pass_through: true), or send your own Anthropic API key in the x-api-key header or your own Anthropic OAuth token in the Authorization header.",
    ))
}

/// `path` with each whole segment `from` replaced by `to`.
fn replace_segment(path: &str, from: &str, to: &str) -> String {
    path.split('/')
        .map(|s| if s == from { to } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The model of a Google AI Studio path (`/v1beta/models/<model>:generateContent`).
fn gemini_model(path: &str) -> Option<String> {
    let after = path.split("/models/").nth(1)?;
    let m = after.split([':', '/']).next()?;
    (!m.is_empty()).then(|| m.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_split_prefix_and_rest() {
        assert_eq!(
            route_of("/anthropic/v1/messages"),
            Some((Kind::Anthropic, "/v1/messages"))
        );
        assert_eq!(
            route_of("/eu.assemblyai/v2/transcript"),
            Some((Kind::AssemblyAi { eu: true }, "/v2/transcript"))
        );
        assert_eq!(route_of("/openai"), Some((Kind::OpenAi, "")));
        assert_eq!(route_of("/bedrock/model/x/invoke"), None);
        assert_eq!(route_of("/v1/chat/completions"), None);
        // The fast check agrees with the table.
        for (prefix, _) in ROUTES {
            assert!(is_provider_path(&format!("/{prefix}/x")), "{prefix}");
        }
        assert!(!is_provider_path("/v1/chat/completions"));
        assert!(!is_provider_path("/bedrock/x"));
    }

    #[test]
    fn helpers() {
        assert_eq!(
            replace_segment("/openai/deployments/grp/chat/completions", "grp", "gpt-4o"),
            "/openai/deployments/gpt-4o/chat/completions"
        );
        assert_eq!(
            gemini_model("/v1beta/models/gemini-2.5-flash:generateContent").as_deref(),
            Some("gemini-2.5-flash")
        );
    }
}
