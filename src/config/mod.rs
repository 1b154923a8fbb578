//! LiteLLM's `config.yaml`: the typed schema and its loading.
//!
//! Loading is two-phase (see [`load`]): YAML text -> `serde_yaml::Value` with every
//! `os.environ/NAME` string resolved, then -> the typed structs below, with every type error
//! reported with the file, line and YAML path. Only what the gateway acts on is typed; every
//! other key is kept in an `extra` map so real-world configs load, and each unimplemented key is
//! reported once as a warning. Secrets are [`Secret`]s and never reach `Debug` output.
//!
//! What must not go in here: anything that talks to the network or the database.

mod lenient;
mod load;

pub use load::{load_file, load_str, ConfigError, LoadedConfig};

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use lenient::{names, opt_bool, opt_duration, opt_f64, opt_names, opt_u64};

/// A credential from the config. `Debug` never prints it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub model_list: Vec<DeploymentConfig>,
    pub litellm_settings: LitellmSettings,
    pub router_settings: RouterSettings,
    pub general_settings: GeneralSettings,
    pub environment_variables: BTreeMap<String, Value>,
    /// Other YAML files merged in (their `model_list` entries are appended).
    pub include: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `model_list[]` entry: a deployment of a model group.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentConfig {
    pub model_name: String,
    pub litellm_params: LitellmParams,
    #[serde(default)]
    pub model_info: ModelInfoConfig,
    /// `litellm_params` as written (after `os.environ/` resolution), in file order; used for
    /// the deployment id and `/model/info`.
    #[serde(skip)]
    pub raw_params: Map<String, Value>,
    /// Loaded from `LiteLLM_ProxyModelTable` rather than the config file.
    #[serde(skip)]
    pub db_model: bool,
}

/// `litellm_params` of a deployment. Unknown keys are provider params or call defaults
/// (`temperature`, `extra_headers`, `aws_region_name`, ...) and are kept in `extra`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LitellmParams {
    pub model: String,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_base: Option<String>,
    #[serde(default, alias = "base_url")]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub custom_llm_provider: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub rpm: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub tpm: Option<u64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub timeout: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub stream_timeout: Option<f64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_retries: Option<u64>,
    #[serde(default)]
    pub mock_response: Option<Value>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub order: Option<u64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub weight: Option<f64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_parallel_requests: Option<u64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub input_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub output_cost_per_token: Option<f64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub drop_params: Option<bool>,
    /// Everything else: provider-specific params and per-call defaults.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `model_info` of a deployment.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelInfoConfig {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub base_model: Option<String>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub input_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub output_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_tokens: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub access_groups: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `litellm_settings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LitellmSettings {
    #[serde(deserialize_with = "opt_bool")]
    pub drop_params: Option<bool>,
    #[serde(deserialize_with = "opt_u64")]
    pub num_retries: Option<u64>,
    #[serde(deserialize_with = "opt_f64")]
    pub request_timeout: Option<f64>,
    #[serde(deserialize_with = "opt_bool")]
    pub json_logs: Option<bool>,
    #[serde(deserialize_with = "opt_bool")]
    pub set_verbose: Option<bool>,
    #[serde(deserialize_with = "opt_f64")]
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    /// What an end user (the request's `user`) with no budget row of its own may spend.
    #[serde(deserialize_with = "opt_f64")]
    pub max_end_user_budget: Option<f64>,
    /// A `LiteLLM_BudgetTable` row applied to end users with no budget row of their own
    /// (takes precedence over `max_end_user_budget`).
    pub max_end_user_budget_id: Option<String>,
    pub fallbacks: Option<Value>,
    pub context_window_fallbacks: Option<Value>,
    pub content_policy_fallbacks: Option<Value>,
    pub default_fallbacks: Option<Value>,
    /// `litellm.max_fallbacks`: used when `router_settings.max_fallbacks` is unset.
    #[serde(deserialize_with = "opt_u64")]
    pub max_fallbacks: Option<u64>,
    /// What `/user/new` gives a new user the request leaves unset (`max_budget`, `user_role`,
    /// `models`, `teams`, ...), and `available_teams`: teams users may join on their own.
    pub default_internal_user_params: Option<Map<String, Value>>,
    /// `max_budget` of a user created as `internal_user` with none of its own.
    #[serde(deserialize_with = "opt_f64")]
    pub max_internal_user_budget: Option<f64>,
    /// `budget_duration` of a user created as `internal_user` with none of its own.
    pub internal_user_budget_duration: Option<String>,
    /// Response caching on (`cache_params` says where and how; see `crate::cache`).
    #[serde(deserialize_with = "opt_bool")]
    pub cache: Option<bool>,
    pub cache_params: Option<Map<String, Value>>,
    /// Logging integrations by name (`callbacks`: on success and failure; the other two: on
    /// one of them). `prometheus` serves `/metrics`; the logging integrations this gateway
    /// builds are listed in `crate::callbacks`; other names are warned about and ignored.
    #[serde(default, deserialize_with = "names")]
    pub callbacks: Vec<String>,
    #[serde(default, deserialize_with = "names")]
    pub success_callback: Vec<String>,
    #[serde(default, deserialize_with = "names")]
    pub failure_callback: Vec<String>,
    /// Logging callbacks get no request messages or response content (LiteLLM's
    /// `redacted-by-litellm` placeholders instead), unless a request opts out where allowed.
    #[serde(deserialize_with = "opt_bool")]
    pub turn_off_message_logging: Option<bool>,
    /// Logging callbacks get no `user_api_key_*` metadata.
    #[serde(deserialize_with = "opt_bool")]
    pub redact_user_api_key_info: Option<bool>,
    /// Metadata keys (and `cache_hit`, `cache_key`, `proxy_base_url`) the langfuse callback
    /// turns into `key:value` trace tags.
    #[serde(deserialize_with = "opt_names")]
    pub langfuse_default_tags: Option<Vec<String>>,
    /// `/metrics` needs a key unless this is false (LiteLLM's default: it does).
    #[serde(deserialize_with = "opt_bool")]
    pub require_auth_for_metrics_endpoint: Option<bool>,
    /// What `/key/generate` gives a new key for the fields the request leaves unset.
    pub default_key_generate_params: Option<KeyGenerateDefaults>,
    /// Caps on what a key may be given (`/key/generate`, `/key/update`, `/key/regenerate`).
    pub upperbound_key_generate_params: Option<KeyGenerateCaps>,
    /// Model groups `/model_group/info` marks `is_public_model_group` (LiteLLM's model hub
    /// list).
    pub public_model_groups: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `litellm_settings.default_key_generate_params`: LiteLLM fills these into a `/key/generate`
/// request that leaves them unset (null or absent; `models` also when `[]`, `metadata` also
/// when `{}`). Other keys have no effect in LiteLLM either and are reported as unimplemented.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KeyGenerateDefaults {
    #[serde(deserialize_with = "opt_f64")]
    pub max_budget: Option<f64>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    #[serde(deserialize_with = "opt_u64")]
    pub max_parallel_requests: Option<u64>,
    #[serde(deserialize_with = "opt_u64")]
    pub tpm_limit: Option<u64>,
    #[serde(deserialize_with = "opt_u64")]
    pub rpm_limit: Option<u64>,
    #[serde(deserialize_with = "opt_duration")]
    pub budget_duration: Option<String>,
    #[serde(deserialize_with = "opt_duration")]
    pub duration: Option<String>,
    pub models: Option<Vec<String>>,
    pub metadata: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `litellm_settings.upperbound_key_generate_params`: the most a key may be given. A request
/// over a cap is refused; `/key/generate` gives a key that omits a capped field the cap itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KeyGenerateCaps {
    #[serde(deserialize_with = "opt_f64")]
    pub max_budget: Option<f64>,
    #[serde(deserialize_with = "opt_duration")]
    pub budget_duration: Option<String>,
    #[serde(deserialize_with = "opt_duration")]
    pub duration: Option<String>,
    #[serde(deserialize_with = "opt_u64")]
    pub max_parallel_requests: Option<u64>,
    #[serde(deserialize_with = "opt_u64")]
    pub tpm_limit: Option<u64>,
    #[serde(deserialize_with = "opt_u64")]
    pub rpm_limit: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `router_settings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RouterSettings {
    pub routing_strategy: Option<String>,
    #[serde(deserialize_with = "opt_u64")]
    pub num_retries: Option<u64>,
    #[serde(deserialize_with = "opt_f64")]
    pub timeout: Option<f64>,
    #[serde(deserialize_with = "opt_f64")]
    pub stream_timeout: Option<f64>,
    pub model_group_alias: BTreeMap<String, Value>,
    pub redis_host: Option<String>,
    pub redis_port: Option<Value>,
    pub redis_password: Option<Secret>,
    pub redis_url: Option<Secret>,
    /// LiteLLM's tag-based routing: a request's tags choose among a group's deployments.
    #[serde(deserialize_with = "opt_bool")]
    pub enable_tag_filtering: Option<bool>,
    /// With tag filtering: a deployment qualifies when it has any of the request's tags
    /// (`true`, LiteLLM's default) or only when it has all of them (`false`).
    #[serde(deserialize_with = "opt_bool")]
    pub tag_filtering_match_any: Option<bool>,
    /// How many fallback groups a failed call may try (LiteLLM's default: 5).
    #[serde(deserialize_with = "opt_u64")]
    pub max_fallbacks: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `general_settings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GeneralSettings {
    pub master_key: Option<Secret>,
    pub database_url: Option<Secret>,
    #[serde(deserialize_with = "opt_f64")]
    pub max_request_size_mb: Option<f64>,
    #[serde(deserialize_with = "opt_f64")]
    pub max_response_size_mb: Option<f64>,
    #[serde(deserialize_with = "opt_bool")]
    pub background_health_checks: Option<bool>,
    #[serde(deserialize_with = "opt_u64")]
    pub health_check_interval: Option<u64>,
    pub litellm_key_header_name: Option<String>,
    #[serde(deserialize_with = "opt_u64")]
    pub user_api_key_cache_ttl: Option<u64>,
    #[serde(deserialize_with = "opt_u64")]
    pub proxy_batch_write_at: Option<u64>,
    #[serde(deserialize_with = "opt_bool")]
    pub disable_spend_logs: Option<bool>,
    #[serde(deserialize_with = "opt_u64")]
    pub max_parallel_requests: Option<u64>,
    #[serde(deserialize_with = "opt_u64")]
    pub global_max_parallel_requests: Option<u64>,
    /// `open` (default) or `closed`: what the rate limiter does while Redis is unreachable.
    pub rate_limit_fail_mode: Option<String>,
    /// Size of the PostgreSQL connection pool (LiteLLM's default: 10). Not used by the
    /// embedded SQLite store.
    #[serde(deserialize_with = "opt_u64")]
    pub database_connection_pool_limit: Option<u64>,
    /// Seconds a database call waits for a free pool connection (LiteLLM's Prisma
    /// `pool_timeout`; default 60). Not used by the embedded SQLite store.
    #[serde(deserialize_with = "opt_f64")]
    pub database_connection_timeout: Option<f64>,
    /// Client addresses allowed to call any authenticated route (LiteLLM compares the peer's
    /// address, or with `use_x_forwarded_for` the `X-Forwarded-For` header, with each entry;
    /// an entry may also be a CIDR block here). Unset: every address.
    #[serde(deserialize_with = "opt_names")]
    pub allowed_ips: Option<Vec<String>>,
    #[serde(deserialize_with = "opt_bool")]
    pub use_x_forwarded_for: Option<bool>,
    /// Request fields every LLM call must carry (`user`, `metadata.generation_name`, ...).
    #[serde(deserialize_with = "opt_names")]
    pub enforced_params: Option<Vec<String>>,
    /// Settings for service-account keys (`/key/service-account/generate`); only its
    /// `enforced_params` is read.
    pub service_account_settings: Option<ServiceAccountSettings>,
    /// A request header that names the end user (LiteLLM's older setting).
    pub user_header_name: Option<String>,
    /// Headers mapped to roles; those mapped to `customer` name the end user.
    pub user_header_mappings: Option<Vec<HeaderMapping>>,
    /// Custom reverse-proxy routes (see `crate::passthrough::custom`).
    pub pass_through_endpoints: Option<Vec<PassThroughEndpoint>>,
    /// Seconds a pass-through call waits for the upstream's answer, and between two reads of
    /// its body (LiteLLM's default: 600), unless the endpoint sets its own `timeout`.
    #[serde(deserialize_with = "opt_f64")]
    pub pass_through_request_timeout: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `general_settings.pass_through_endpoints`: requests to `path` (and, with
/// `include_subpath`, below it) are forwarded to `target` (LiteLLM's `PassThroughGenericEndpoint`).
#[derive(Debug, Clone, Deserialize)]
pub struct PassThroughEndpoint {
    pub path: String,
    /// An entry without a target only registers its path (LiteLLM skips it too).
    #[serde(default)]
    pub target: Option<String>,
    /// Headers sent upstream. Values may hold `os.environ/NAME` anywhere in the text; the keys
    /// `LANGFUSE_PUBLIC_KEY` and `LANGFUSE_SECRET_KEY` become one Basic `Authorization`
    /// header; `litellm_user_api_key` names the request header carrying the caller's key.
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// Forward the caller's headers too (the configured ones win).
    #[serde(default, deserialize_with = "opt_bool")]
    pub forward_headers: Option<bool>,
    /// Merge the caller's query with the target's own query parameters.
    #[serde(default, deserialize_with = "opt_bool")]
    pub merge_query_params: Option<bool>,
    /// Query parameters sent unless the caller (or the target URL) sets them.
    #[serde(default)]
    pub default_query_params: Map<String, Value>,
    /// Whether a key is needed. Unset counts as `true` (LiteLLM 1.106's runtime check);
    /// `false` makes the exact path a public forwarder.
    #[serde(default, deserialize_with = "opt_bool")]
    pub auth: Option<bool>,
    /// `langfuse`: the caller's key is the user part of a Basic `Authorization` header.
    #[serde(default)]
    pub custom_auth_parser: Option<String>,
    /// Also forward `path/<anything>` to `target/<anything>`.
    #[serde(default, deserialize_with = "opt_bool")]
    pub include_subpath: Option<bool>,
    /// USD charged per call (spend log and budgets).
    #[serde(default, deserialize_with = "opt_f64")]
    pub cost_per_request: Option<f64>,
    /// Seconds, overriding `pass_through_request_timeout`.
    #[serde(default, deserialize_with = "opt_f64")]
    pub timeout: Option<f64>,
    /// HTTP methods served (unset or empty: GET, POST, PUT, DELETE, PATCH).
    #[serde(default, deserialize_with = "opt_names")]
    pub methods: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `general_settings.service_account_settings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServiceAccountSettings {
    #[serde(deserialize_with = "opt_names")]
    pub enforced_params: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `general_settings.user_header_mappings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HeaderMapping {
    pub header_name: String,
    pub litellm_user_role: String,
}

/// Keys of each section that the gateway understands even though they are not typed above
/// (they are read by later stages or are documented no-ops). Everything else in an `extra`
/// map produces one "accepted but not implemented" warning.
pub(crate) const KNOWN_UNTYPED: &[(&str, &[&str])] = &[
    (
        "general_settings",
        &[
            "dangerously_permit_weak_or_unset_master_key",
            "allow_client_side_credentials",
            "proxy_budget_rescheduler_min_time",
            "team_admin_editable_team_fields",
            "store_model_in_db",
            "proxy_config_reload_interval_seconds",
            "encryption_algorithm",
            "allow_public_health_readiness_details",
            "database_connection_pool_timeout",
            "image_generation_model",
            "moderation_model",
        ],
    ),
    (
        "router_settings",
        &[
            "caching_groups",
            "fallbacks",
            "context_window_fallbacks",
            "content_policy_fallbacks",
            "default_fallbacks",
            "retry_after",
            "allowed_fails",
            "cooldown_time",
            "disable_cooldowns",
            "allowed_fails_policy",
            "retry_policy",
            "model_group_retry_policy",
            "enable_pre_call_checks",
            "routing_strategy_args",
        ],
    ),
    (
        "litellm_settings",
        &["allowed_fails", "cooldown_time", "disable_cooldowns"],
    ),
];
