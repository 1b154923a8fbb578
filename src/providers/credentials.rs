//! Credentials of providers that do not take a plain API key: Vertex AI (a service account whose
//! signed JWT is exchanged for an OAuth2 access token, cached until shortly before it expires)
//! and Bedrock (AWS keys or a Bedrock API key, region, endpoint).
//!
//! Settings are resolved once per deployment at config load ([`resolve`]); a problem there is
//! kept and reported on that deployment's requests, not at start-up, as LiteLLM does. The token
//! exchange is the only I/O here; the service account's `token_uri` says where it goes, so
//! tests point it at a local server.

use super::{bedrock, gemini, Provider};
use crate::error::{ApiError, ApiResult, ErrorClass};
use dashmap::DashMap;
use serde_json::{Map, Value};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// Vertex AI location when none is configured (LiteLLM's default).
pub const DEFAULT_VERTEX_LOCATION: &str = "us-central1";
/// Tokens are refreshed this long before they expire.
const TOKEN_EARLY_REFRESH: Duration = Duration::from_secs(300);
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct VertexAuth {
    pub project: String,
    pub location: String,
    pub account: Option<Arc<gemini::ServiceAccount>>,
}

/// What a deployment needs beyond `api_key` / `api_base`.
#[derive(Debug, Clone, Default)]
pub enum NativeAuth {
    #[default]
    None,
    Vertex(Result<VertexAuth, String>),
    Aws(Result<Arc<bedrock::AwsSettings>, String>),
}

/// Resolves a deployment's native credentials from its `litellm_params` and the environment.
pub fn resolve(
    provider: Provider,
    params: &Map<String, Value>,
    env: impl Fn(&str) -> Option<String>,
) -> NativeAuth {
    match provider {
        Provider::VertexAi => NativeAuth::Vertex(vertex(params, &env)),
        Provider::Bedrock => NativeAuth::Aws(bedrock::settings(params, &env).map(Arc::new)),
        _ => NativeAuth::None,
    }
}

fn vertex(
    params: &Map<String, Value>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<VertexAuth, String> {
    let param = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| params.get(*k).filter(|v| !v.is_null()))
    };
    let account = match param(&["vertex_credentials", "vertex_ai_credentials"]) {
        Some(Value::Object(o)) => Some(Value::Object(o.clone()).to_string()),
        Some(Value::String(s)) => Some(load_credentials(s)?),
        Some(other) => {
            return Err(format!(
                "vertex_credentials must be a JSON string, a file path or a mapping, got {other}"
            ))
        }
        None => match env("GOOGLE_APPLICATION_CREDENTIALS") {
            Some(path) => Some(load_credentials(&path)?),
            None => None,
        },
    }
    .map(|json| gemini::parse_service_account(&json).map(Arc::new))
    .transpose()?;
    let project = param(&["vertex_project", "vertex_ai_project"])
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| {
            ["VERTEXAI_PROJECT", "VERTEX_PROJECT", "GOOGLE_CLOUD_PROJECT"]
                .iter()
                .find_map(|n| env(n))
        })
        .or_else(|| account.as_ref().and_then(|a| a.project_id.clone()))
        .ok_or("vertex_project is not set (litellm_params.vertex_project, VERTEXAI_PROJECT or the credentials' project_id)")?;
    let location = param(&["vertex_location", "vertex_ai_location"])
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| {
            ["VERTEXAI_LOCATION", "VERTEX_LOCATION"]
                .iter()
                .find_map(|n| env(n))
        })
        .unwrap_or_else(|| DEFAULT_VERTEX_LOCATION.to_string());
    Ok(VertexAuth {
        project,
        location,
        account,
    })
}

/// Inline JSON, or the path of a key file.
fn load_credentials(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.starts_with('{') {
        return Ok(t.to_string());
    }
    std::fs::read_to_string(t).map_err(|e| format!("cannot read vertex credentials file {t}: {e}"))
}

/// A provider configuration problem, reported on the request.
pub fn config_error(provider: Provider, why: &str) -> ApiError {
    ApiError::new(
        ErrorClass::Authentication,
        format!(
            "litellm.AuthenticationError: {} - {why}",
            provider.exception_label()
        ),
    )
}

struct CachedToken {
    token: Arc<str>,
    refresh_at: Instant,
}

static TOKENS: LazyLock<DashMap<String, CachedToken>> = LazyLock::new(DashMap::new);
static TOKEN_CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(TOKEN_TIMEOUT)
        .build()
        .unwrap_or_default()
});

/// An access token for the service account: from the cache, or a fresh JWT grant.
pub async fn vertex_token(sa: &gemini::ServiceAccount) -> ApiResult<Arc<str>> {
    let cache_key = format!("{}|{}", sa.client_email, sa.token_uri);
    if let Some(t) = TOKENS.get(&cache_key) {
        if Instant::now() < t.refresh_at {
            return Ok(t.token.clone());
        }
    }
    let fail = |why: String| config_error(Provider::VertexAi, &why);
    let jwt = gemini::signed_jwt(
        sa,
        gemini::CLOUD_PLATFORM_SCOPE,
        chrono::Utc::now().timestamp(),
    )
    .map_err(fail)?;
    let resp = TOKEN_CLIENT
        .post(&sa.token_uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(gemini::token_request_body(&jwt))
        .send()
        .await
        .map_err(|e| fail(format!("token request to {} failed: {e}", sa.token_uri)))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| fail(format!("token response unreadable: {e}")))?;
    if !status.is_success() {
        return Err(fail(format!(
            "token endpoint answered {status}: {}",
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(500)
                .collect::<String>()
        )));
    }
    let (token, expires_in) = gemini::parse_token_response(&bytes).map_err(fail)?;
    let token: Arc<str> = Arc::from(token);
    let life = Duration::from_secs(expires_in);
    TOKENS.insert(
        cache_key,
        CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + life.saturating_sub(TOKEN_EARLY_REFRESH),
        },
    );
    Ok(token)
}
