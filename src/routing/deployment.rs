//! A deployment: one `model_list` entry, resolved once at start-up into what a call needs.
//!
//! Resolution mirrors LiteLLM: provider from the model prefix, credentials and base URL from
//! `litellm_params` or the provider's env vars, the deployment id from `model_info.id` or a
//! SHA-256 over the model name and params (LiteLLM's recipe, so ids match across the two).

use crate::config::{DeploymentConfig, LoadedConfig, Secret};
use crate::providers::{compat, parse_model, Provider};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// What kind of call a deployment serves: `model_info.mode`, else the price map's mode for
/// its model, else chat (LiteLLM's order). Read by the health probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Chat,
    Completion,
    Embedding,
    ImageGeneration,
    AudioSpeech,
    AudioTranscription,
    Rerank,
    Moderation,
    Responses,
    /// A mode this gateway has no probe for (kept by name for the health report).
    Other,
}

impl Mode {
    pub fn parse(s: &str) -> Self {
        match s {
            "chat" => Self::Chat,
            "completion" => Self::Completion,
            "embedding" => Self::Embedding,
            "image_generation" => Self::ImageGeneration,
            "audio_speech" => Self::AudioSpeech,
            "audio_transcription" => Self::AudioTranscription,
            "rerank" => Self::Rerank,
            "moderation" | "moderations" => Self::Moderation,
            "responses" => Self::Responses,
            _ => Self::Other,
        }
    }
}

/// `litellm_params` keys that steer LiteLLM itself and are never sent upstream.
const INTERNAL_PARAMS: &[&str] = &[
    "model",
    "api_key",
    "api_base",
    "base_url",
    "api_version",
    "organization",
    "custom_llm_provider",
    "rpm",
    "tpm",
    "timeout",
    "stream_timeout",
    "max_retries",
    "mock_response",
    "order",
    "weight",
    "max_parallel_requests",
    "input_cost_per_token",
    "output_cost_per_token",
    "input_cost_per_second",
    "output_cost_per_second",
    "input_cost_per_image",
    "output_cost_per_image",
    "input_cost_per_pixel",
    "input_cost_per_character",
    "input_cost_per_audio_token",
    "max_file_size_mb",
    "tags",
    "drop_params",
    "additional_drop_params",
    "region_name",
    "extra_headers",
    "use_in_pass_through",
    "use_litellm_proxy",
    "merge_reasoning_content_in_choices",
    "litellm_credential_name",
    "configurable_clientside_auth_params",
    "model_info",
    "litellm_trace_id",
    "azure_ad_token",
    "tenant_id",
    "client_id",
    "client_secret",
    "health_check_model",
    "cache_control_injection_points",
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
    "vertex_ai_project",
    "vertex_ai_location",
    "vertex_ai_credentials",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region_name",
    "aws_role_name",
    "aws_session_name",
    "aws_profile_name",
    "aws_bedrock_runtime_endpoint",
    "aws_web_identity_token",
    "aws_sts_endpoint",
];

#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: String,
    /// The model group (`model_name`), possibly a wildcard pattern.
    pub model_name: String,
    /// `litellm_params.model` as written, e.g. `openai/gpt-4o`.
    pub litellm_model: String,
    pub provider: Provider,
    /// Model id sent upstream; contains `*` for wildcard deployments.
    pub upstream_model: String,
    /// Base URL without a trailing slash; `None` when the provider has none and none was set.
    pub api_base: Option<String>,
    pub api_key: Option<Secret>,
    pub api_version: Option<String>,
    pub organization: Option<String>,
    pub timeout: Option<Duration>,
    pub stream_timeout: Option<Duration>,
    pub mock_response: Option<Value>,
    /// Per-call defaults and provider params forwarded with every request (request wins).
    pub defaults: Map<String, Value>,
    /// `extra_headers` from `litellm_params`.
    pub extra_headers: Vec<(String, String)>,
    pub drop_params: Option<bool>,
    pub weight: Option<f64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub order: Option<u64>,
    pub mode: Mode,
    pub config: DeploymentConfig,
    /// Header values that never change for this deployment, built once.
    pub headers: DeploymentHeaders,
    /// The deployment's names as its spend-log rows carry them, shared by every row.
    pub labels: SpendLabels,
    /// URLs and headers of an OpenAI-format deployment's calls, built once.
    pub openai: Option<crate::providers::openai::Prebuilt>,
    /// Vertex AI / Bedrock credentials and settings (resolved at load; errors kept for calls).
    pub native: crate::providers::credentials::NativeAuth,
    /// Live numbers the routing strategies read.
    pub stats: std::sync::Arc<super::strategy::DeploymentStats>,
    /// Context window (`model_info.max_input_tokens` or the price map), for pre-call checks.
    pub max_input_tokens: Option<u64>,
    /// Prices and output cap for `upstream_model`, looked up once at load (`rates_for`).
    pub rates: Option<(crate::spend::prices::Rates, Option<u64>)>,
}

/// A deployment's id, upstream model, group and API base ("" when none), shared by the
/// spend-log rows of its calls instead of copied into each one.
#[derive(Debug, Clone)]
pub struct SpendLabels {
    pub id: Arc<str>,
    pub upstream_model: Arc<str>,
    pub group: Arc<str>,
    pub api_base: Arc<str>,
}

impl SpendLabels {
    /// The empty label, built once and shared.
    pub fn empty() -> Arc<str> {
        static EMPTY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        EMPTY.get_or_init(|| Arc::from("")).clone()
    }

    /// `name` as a shared string: the label's own when it is that text.
    pub fn shared(label: &Arc<str>, name: &str) -> Arc<str> {
        if **label == *name {
            label.clone()
        } else {
            name.into()
        }
    }
}

/// Precomputed `x-litellm-*` header values of a deployment.
#[derive(Debug, Clone)]
pub struct DeploymentHeaders {
    pub id: http::HeaderValue,
    pub model_name: http::HeaderValue,
    pub group: Option<http::HeaderValue>,
    pub api_base: Option<http::HeaderValue>,
    /// These under their header names, with the rest every answer carries: built by the LLM
    /// handler on the deployment's first answer, cloned for each one after.
    pub template: std::sync::OnceLock<AnswerTemplates>,
}

/// The header maps a deployment's answers start from (see [`DeploymentHeaders::template`]).
#[derive(Debug, Clone)]
pub struct AnswerTemplates {
    /// For any answer: its own headers go over these.
    pub any: http::HeaderMap,
    /// `any` with `content-type: application/json`: a JSON answer's whole starting set.
    pub json: http::HeaderMap,
}

impl DeploymentHeaders {
    fn new(id: &str, litellm_model: &str, group: &str, api_base: Option<&str>) -> Self {
        let hv = |s: &str| http::HeaderValue::from_str(s).ok();
        Self {
            id: hv(id).unwrap_or_else(|| http::HeaderValue::from_static("")),
            model_name: hv(litellm_model).unwrap_or_else(|| http::HeaderValue::from_static("")),
            group: hv(group),
            api_base: api_base.and_then(hv),
            template: std::sync::OnceLock::new(),
        }
    }
}

/// Seconds from the config to a `Duration`, ignoring nonsense (negative, NaN).
pub fn secs(v: Option<f64>) -> Option<Duration> {
    v.filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
}

impl Deployment {
    /// Resolves one `model_list` entry. `index` only serves error messages.
    pub fn from_config(
        dc: &DeploymentConfig,
        index: usize,
        loaded: &LoadedConfig,
    ) -> Result<Self, String> {
        let p = &dc.litellm_params;
        let (provider, upstream_model) = parse_model(&p.model, p.custom_llm_provider.as_deref())
            .ok_or_else(|| {
                format!(
                    "model_list[{index}].litellm_params.model: LLM Provider NOT provided for `{}`. Prefix it with a provider, e.g. `openai/{}`",
                    p.model, p.model
                )
            })?;
        let env_first = |names: &[&str]| names.iter().find_map(|n| loaded.env(n));
        let (base_envs, key_envs, default_base): (&[&str], &[&str], Option<&str>) = match provider {
            Provider::OpenAi => (
                &["OPENAI_BASE_URL", "OPENAI_API_BASE"],
                &["OPENAI_API_KEY"],
                Some("https://api.openai.com/v1"),
            ),
            Provider::Azure => (
                &["AZURE_API_BASE"],
                &["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"],
                None,
            ),
            Provider::Compat(c) => (c.base_envs, c.key_envs, c.default_base),
            Provider::Anthropic => (
                &["ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"],
                &["ANTHROPIC_API_KEY"],
                Some("https://api.anthropic.com"),
            ),
            Provider::Gemini => (
                &["GEMINI_API_BASE"],
                &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
                Some("https://generativelanguage.googleapis.com"),
            ),
            Provider::VertexAi => (&[], &[], None),
            Provider::Bedrock => (&[], &[], None),
            Provider::Cohere => (
                &["COHERE_API_BASE"],
                &["COHERE_API_KEY", "CO_API_KEY"],
                Some("https://api.cohere.com"),
            ),
            Provider::Ollama | Provider::OllamaChat => (
                &["OLLAMA_API_BASE"],
                &["OLLAMA_API_KEY"],
                Some("http://localhost:11434"),
            ),
        };
        let api_base = p
            .api_base
            .clone()
            .or_else(|| p.base_url.clone())
            .or_else(|| env_first(base_envs))
            .or_else(|| default_base.map(str::to_string))
            .map(|b| b.trim_end_matches('/').to_string());
        let api_key = p
            .api_key
            .clone()
            .or_else(|| env_first(key_envs).map(Secret::new));
        let api_version = p.api_version.clone().or_else(|| {
            matches!(provider, Provider::Azure)
                .then(|| loaded.env("AZURE_API_VERSION"))
                .flatten()
        });
        if matches!(provider, Provider::Azure) && api_base.is_none() {
            return Err(format!(
                "model_list[{index}] ({}): azure deployments need `api_base` (or AZURE_API_BASE)",
                dc.model_name
            ));
        }

        let mut defaults = Map::new();
        for (k, v) in &p.extra {
            if !INTERNAL_PARAMS.contains(&k.as_str()) && !v.is_null() {
                defaults.insert(k.clone(), v.clone());
            }
        }
        let mut extra_headers: Vec<(String, String)> = match p.extra.get("extra_headers") {
            Some(Value::Object(h)) => h
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect(),
            _ => Vec::new(),
        };
        if let Provider::Compat(c) = provider {
            if c.quirk == compat::Quirk::OpenRouter {
                // OpenRouter's attribution headers, from the env vars LiteLLM reads.
                if let Some(site) = loaded.env("OR_SITE_URL") {
                    extra_headers.push(("HTTP-Referer".into(), site));
                }
                if let Some(app) = loaded.env("OR_APP_NAME") {
                    extra_headers.push(("X-Title".into(), app));
                }
            }
        }
        let mut native_params = p.extra.clone();
        if let Some(k) = &p.api_key {
            native_params.insert("api_key".into(), Value::String(k.expose().to_string()));
        }
        let native =
            crate::providers::credentials::resolve(provider, &native_params, |n| loaded.env(n));
        let mut d = Self::assemble(
            dc,
            provider,
            upstream_model,
            api_base,
            api_key,
            api_version,
            defaults,
            extra_headers,
        );
        d.native = native;
        if provider.speaks_openai() {
            d.openai = crate::providers::openai::Prebuilt::new(&d);
        }
        d.rates = Some(crate::spend::call::rates_for(&d, &d.upstream_model));
        let priced = crate::spend::prices::PriceMap::global()
            .lookup(
                dc.model_info.base_model.as_deref(),
                provider.name(),
                &d.upstream_model,
            )
            .map(|(_, p)| p);
        d.max_input_tokens = dc
            .model_info
            .max_input_tokens
            .or_else(|| priced.and_then(|p| p.max_input_tokens.map(|v| v as u64)));
        d.mode = dc
            .model_info
            .mode
            .as_deref()
            .or_else(|| priced.and_then(|p| p.mode.as_deref()))
            .map_or(Mode::Chat, Mode::parse);
        Ok(d)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "private constructor assembling resolved parts"
    )]
    fn assemble(
        dc: &DeploymentConfig,
        provider: Provider,
        mut upstream_model: String,
        api_base: Option<String>,
        api_key: Option<Secret>,
        api_version: Option<String>,
        defaults: Map<String, Value>,
        extra_headers: Vec<(String, String)>,
    ) -> Self {
        let p = &dc.litellm_params;
        if let Provider::Compat(c) = provider {
            if c.quirk == compat::Quirk::Fireworks
                && !upstream_model.contains('/')
                && !upstream_model.contains('*')
            {
                upstream_model = format!("accounts/fireworks/models/{upstream_model}");
            }
        }
        let id = dc
            .model_info
            .id
            .clone()
            .unwrap_or_else(|| deployment_id(&dc.model_name, &dc.raw_params));
        Self {
            headers: DeploymentHeaders::new(&id, &p.model, &dc.model_name, api_base.as_deref()),
            labels: SpendLabels {
                id: id.as_str().into(),
                upstream_model: upstream_model.as_str().into(),
                group: dc.model_name.as_str().into(),
                api_base: api_base.as_deref().unwrap_or_default().into(),
            },
            id,
            model_name: dc.model_name.clone(),
            litellm_model: p.model.clone(),
            provider,
            upstream_model,
            api_base,
            api_key,
            api_version,
            organization: p.organization.clone(),
            timeout: secs(p.timeout),
            stream_timeout: secs(p.stream_timeout),
            mock_response: p.mock_response.clone(),
            defaults,
            extra_headers,
            drop_params: p.drop_params,
            weight: p.weight,
            rpm: p.rpm,
            tpm: p.tpm,
            order: p.order,
            mode: Mode::Chat,
            config: dc.clone(),
            native: Default::default(),
            openai: None,
            stats: Default::default(),
            max_input_tokens: None,
            rates: None,
        }
    }

    /// The upstream model id for a request that matched this deployment, substituting the
    /// wildcard capture (`openai/*` + `gpt-4o` -> `gpt-4o`).
    /// Borrowed unless there is a capture to substitute.
    pub fn upstream_model_for(&self, capture: Option<&str>) -> std::borrow::Cow<'_, str> {
        match capture {
            Some(c) if self.upstream_model.contains('*') => {
                self.upstream_model.replacen('*', c, 1).into()
            }
            _ => self.upstream_model.as_str().into(),
        }
    }

    /// Input + output price per token (cost-based routing).
    pub fn unit_cost(&self) -> f64 {
        self.rates.map_or(0.0, |(r, _)| r.input + r.output)
    }

    /// `litellm_params` with secrets removed, for `/model/info` and `/health`.
    pub fn public_params(&self) -> Map<String, Value> {
        let mut m = self.config.raw_params.clone();
        for secret in [
            "api_key",
            "aws_secret_access_key",
            "aws_session_token",
            "vertex_credentials",
            "azure_ad_token",
            "client_secret",
            "aws_access_key_id",
        ] {
            m.remove(secret);
        }
        m
    }
}

/// LiteLLM's default deployment id: SHA-256 hex of the model name followed by each
/// `litellm_params` key and its Python `str()` (mappings JSON-encoded), in file order.
pub fn deployment_id(model_name: &str, params: &Map<String, Value>) -> String {
    let mut s = String::from(model_name);
    for (k, v) in params {
        s.push_str(k);
        match v {
            Value::String(x) => s.push_str(x),
            Value::Object(_) => s.push_str(&py_json_dumps(v)),
            other => s.push_str(&py_str(other)),
        }
    }
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Python's `json.dumps` default separators (`", "` and `": "`).
fn py_json_dumps(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), py_json_dumps(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(py_json_dumps).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// Python's `str()` of a JSON-like value.
fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or_default();
                if f.fract() == 0.0 && f.abs() < 1e16 {
                    format!("{f:.1}")
                } else {
                    format!("{f}")
                }
            } else {
                n.to_string()
            }
        }
        Value::String(s) => format!("'{s}'"),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(py_str).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(_) => py_json_dumps(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn id_is_stable_and_order_sensitive() {
        let a = json!({"model": "openai/gpt-4o", "rpm": 10});
        let b = json!({"rpm": 10, "model": "openai/gpt-4o"});
        let ia = deployment_id("g", a.as_object().unwrap());
        assert_eq!(ia.len(), 64);
        assert_eq!(ia, deployment_id("g", a.as_object().unwrap()));
        assert_ne!(ia, deployment_id("g", b.as_object().unwrap()));
        // model_name + "model" + value + "rpm" + "10"
        let expect = hex::encode(Sha256::digest(b"gmodelopenai/gpt-4orpm10"));
        assert_eq!(ia, expect);
    }
}
