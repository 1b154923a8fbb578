//! Shared application state: the config snapshot, the model router, the one HTTP client.
//!
//! Built once at start-up ([`AppState::build`]) and cloned cheaply into every handler. Anything
//! per-request lives in request extensions, never here.

use crate::config::{LoadedConfig, Secret};
use crate::ratelimit::{Descriptor, FailMode, Limiter};
use crate::redis::RedisHandle;
use crate::routing::db_models::DbModels;
use crate::routing::deployment::secs;
use crate::routing::ModelRouter;
use crate::spend::{Budgets, CachedKey, SpendWriter};
use crate::store::Store;
use arc_swap::ArcSwap;
use dashmap::DashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// LiteLLM's default request timeout when nothing else sets one (seconds).
const DEFAULT_REQUEST_TIMEOUT_SECS: f64 = 6000.0;
/// No request size limit is set by default in LiteLLM; we still bound memory per request.
const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;
/// Connect timeout to upstreams: a dead host should fail fast and be retried elsewhere.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections are kept this long (upstreams typically close at 60-120 s).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(55);

pub struct Inner {
    pub loaded: LoadedConfig,
    /// The config's models plus, with `store_model_in_db`, the database's. Swapped whole when
    /// the stored models change; a request takes one snapshot (`load_full`, one atomic
    /// increment) and keeps it for its lifetime. Per-deployment state lives outside it or is
    /// carried over by id (see `ModelRouter::build`).
    pub router: ArcSwap<ModelRouter>,
    /// `store_model_in_db`: salt key, poll interval, reload lock.
    pub db_models: DbModels,
    /// Responses API ids bound to their caller (LiteLLM's `ResponsesIDSecurity`).
    pub response_ids: crate::api::response_owner::IdSecurity,
    /// General-purpose client (health probes, token endpoints).
    pub http: reqwest::Client,
    /// The request-path client (see `providers::client`).
    pub upstream: crate::providers::client::UpstreamClient,
    pub master_key: Option<Secret>,
    pub max_request_bytes: usize,
    pub max_response_bytes: Option<usize>,
    /// `router_settings.timeout` > `litellm_settings.request_timeout` > 6000 s.
    pub default_timeout: Duration,
    pub default_stream_timeout: Option<Duration>,
    pub drop_params: bool,
    /// Retries when neither the request nor the config sets them: `DEFAULT_MAX_RETRIES` from
    /// the environment, else LiteLLM's default of 2 (read once, not per call).
    pub default_retries: u64,
    /// Most fallback groups a failed call tries: `router_settings.max_fallbacks` >
    /// `litellm_settings.max_fallbacks` > `ROUTER_MAX_FALLBACKS` from the environment > 5
    /// (LiteLLM's order and default).
    pub max_fallbacks: usize,
    pub json_logs: bool,
    pub started_at: Instant,
    /// Shared Redis, when configured (rate limits; cooldowns and caches can share it).
    pub redis: Option<RedisHandle>,
    /// Response cache (`litellm_settings.cache`), when on.
    pub cache: Option<crate::cache::ResponseCache>,
    pub limiter: Arc<Limiter>,
    /// `background_health_checks`: probe results feed `/health` and the router.
    pub background_health: bool,
    /// Last probe result per deployment id (background health checks).
    pub health: DashMap<String, Result<(), String>>,
    /// Deployments taken out of rotation after failures (shared through Redis when set).
    pub cooldowns: Arc<crate::routing::cooldown::Cooldowns>,
    /// Proxy-wide limits (`max_parallel_requests`, `global_max_parallel_requests`).
    pub global_limits: Vec<Descriptor>,
    /// Keys, teams and spend: SQLite by default, Postgres when `database_url` is set.
    pub store: Store,
    pub budgets: Budgets,
    pub spend: SpendWriter,
    /// Virtual keys by hash, so a cached key costs no database round trip.
    pub keys: DashMap<String, CachedKey>,
    /// Key loads in flight: concurrent misses for one key share one store read.
    pub key_loads:
        crate::middleware::single_flight::SingleFlight<String, crate::middleware::auth::KeyLoad>,
    pub key_cache_ttl: Duration,
    /// End users (the `user` of LLM requests) by id, cached like keys.
    pub end_users: crate::middleware::end_user::EndUserCache,
    /// Tags of LLM calls (`LiteLLM_TagTable`) and the registry of stored tag names, cached
    /// like keys.
    pub tags: crate::middleware::tags::TagCache,
    /// Prometheus metrics, when the `prometheus` callback is on.
    pub metrics: Option<crate::metrics::Metrics>,
    /// Logging callbacks (`langfuse`, `otel`, `datadog`, `generic_api`), when any is configured.
    pub callbacks: Option<crate::callbacks::Callbacks>,
    /// `general_settings.allowed_ips`, when set.
    pub ip_gate: Option<crate::middleware::client_ip::IpGate>,
    /// Headers that name the end user ahead of the body (`user_header_mappings` entries for
    /// the `customer` role, else `user_header_name`).
    pub end_user_headers: Vec<axum::http::HeaderName>,
    /// `general_settings.pass_through_endpoints`, compiled.
    pub pass_through: crate::passthrough::custom::CustomRoutes,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Options that do not come from the config file.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--model` single-model mode: the group to send everything to.
    pub catch_all_model: Option<String>,
    /// Embedded store file when no database URL is configured (default `litellm.db`, or
    /// `LITELLM_SQLITE_PATH`).
    pub sqlite_path: Option<String>,
}

/// How often budgets are checked for reset (LiteLLM's `proxy_budget_rescheduler_min_time`).
const DEFAULT_BUDGET_RESET_CHECK: Duration = Duration::from_secs(597);
/// LiteLLM's default `health_check_interval` (seconds).
const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(300);
/// Default embedded store file, relative to the working directory.
/// LiteLLM's `ROUTER_MAX_FALLBACKS`: fallback groups tried after the requested one fails.
const DEFAULT_MAX_FALLBACKS: usize = 5;
const DEFAULT_SQLITE_PATH: &str = "litellm.db";
/// LiteLLM's default for `user_api_key_cache_ttl` (seconds).
const DEFAULT_KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// Spend batch interval when `proxy_batch_write_at` is not set. LiteLLM uses 10 s; shorter
/// keeps `/key/info` close to live at negligible cost.
const DEFAULT_BATCH_WRITE_AT: Duration = Duration::from_secs(1);

impl AppState {
    pub async fn build(loaded: LoadedConfig, opts: BuildOptions) -> Result<Self, String> {
        let mut router = ModelRouter::from_config(&loaded).map_err(|errs| errs.join("\n"))?;
        if let Some(m) = &opts.catch_all_model {
            router.set_catch_all(m);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(UPSTREAM_CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let upstream = crate::providers::client::UpstreamClient::new(
            UPSTREAM_CONNECT_TIMEOUT,
            POOL_IDLE_TIMEOUT,
        )?;
        let cfg = &loaded.config;
        let master_key = cfg
            .general_settings
            .master_key
            .clone()
            .filter(|k| !k.expose().is_empty())
            .or_else(|| {
                loaded
                    .env("LITELLM_MASTER_KEY")
                    .filter(|k| !k.is_empty())
                    .map(Secret::new)
            });
        let mb = |v: Option<f64>| {
            v.filter(|x| x.is_finite() && *x > 0.0)
                .map(|x| (x * 1024.0 * 1024.0) as usize)
        };
        let default_timeout = secs(cfg.router_settings.timeout)
            .or_else(|| secs(cfg.litellm_settings.request_timeout))
            .or_else(|| {
                loaded
                    .env("REQUEST_TIMEOUT")
                    .and_then(|s| s.parse().ok())
                    .and_then(|v| secs(Some(v)))
            })
            .unwrap_or(Duration::from_secs_f64(DEFAULT_REQUEST_TIMEOUT_SECS));
        let window = loaded
            .env("LITELLM_RATE_LIMIT_WINDOW_SIZE")
            .and_then(|s| s.trim().parse::<f64>().ok())
            .and_then(|v| secs(Some(v)))
            .unwrap_or(crate::ratelimit::DEFAULT_WINDOW);
        let fail_mode = match cfg
            .general_settings
            .rate_limit_fail_mode
            .clone()
            .or_else(|| loaded.env("LITELLM_RATE_LIMIT_FAIL_MODE"))
        {
            Some(s) => FailMode::parse(&s).ok_or_else(|| {
                format!(
                    "general_settings.rate_limit_fail_mode: expected `open` or `closed`, got {s:?}"
                )
            })?,
            None => FailMode::default(),
        };
        let redis = match crate::redis::redis_url(&loaded) {
            Some(url) => Some(RedisHandle::connect(&url)?),
            None => None,
        };
        let cache = crate::cache::ResponseCache::from_config(&loaded, redis.as_ref())?;
        let limiter = match &redis {
            Some(r) => Limiter::with_redis(r.clone(), window, fail_mode),
            None => Limiter::in_memory(window),
        };
        let cooldowns = crate::routing::cooldown::Cooldowns::new(
            crate::routing::cooldown::CooldownSettings::from_maps(
                &cfg.router_settings.extra,
                &cfg.litellm_settings.extra,
            ),
            redis.clone(),
            router.all_deployments().map(|d| d.id.clone()).collect(),
        );
        let mut global_limits = Vec::new();
        for (id, n) in [
            (
                "max_parallel_requests",
                cfg.general_settings.max_parallel_requests,
            ),
            (
                "global_max_parallel_requests",
                cfg.general_settings.global_max_parallel_requests,
            ),
        ] {
            if let Some(n) = n {
                global_limits.push(Descriptor {
                    scope: "global",
                    id: id.into(),
                    rpm: None,
                    tpm: None,
                    max_parallel: Some(n),
                });
            }
        }
        let database_url = cfg
            .general_settings
            .database_url
            .as_ref()
            .map(|s| s.expose().to_string())
            .or_else(|| loaded.env("DATABASE_URL"))
            .filter(|s| !s.is_empty());
        let sqlite_path = opts
            .sqlite_path
            .clone()
            .or_else(|| loaded.env("LITELLM_SQLITE_PATH"))
            .unwrap_or_else(|| DEFAULT_SQLITE_PATH.to_string());
        let pool = crate::store::PoolSettings::from_config(&cfg.general_settings)?;
        let store = Store::open_with(database_url.as_deref(), &sqlite_path, pool)
            .await
            .map_err(|e| format!("cannot prepare the database: {e}"))?;
        let batch_every = cfg
            .general_settings
            .proxy_batch_write_at
            .map(Duration::from_secs)
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_BATCH_WRITE_AT);
        let spend = SpendWriter::start(
            store.clone(),
            batch_every,
            cfg.general_settings.disable_spend_logs.unwrap_or(false),
        );
        let key_cache_ttl = cfg
            .general_settings
            .user_api_key_cache_ttl
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_KEY_CACHE_TTL);
        let background_health = cfg
            .general_settings
            .background_health_checks
            .unwrap_or(false);
        let health_every = cfg
            .general_settings
            .health_check_interval
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_HEALTH_CHECK_INTERVAL);
        let budget_every = cfg
            .general_settings
            .extra
            .get("proxy_budget_rescheduler_min_time")
            .and_then(serde_json::Value::as_f64)
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_BUDGET_RESET_CHECK);
        let metrics = crate::metrics::enabled(&cfg.litellm_settings).then(|| {
            crate::metrics::Metrics::new(
                cfg.litellm_settings.require_auth_for_metrics_endpoint != Some(false),
            )
        });
        let (callbacks, callback_warnings) = crate::callbacks::Callbacks::start(&loaded, &http);
        for w in callback_warnings {
            tracing::warn!("{w}");
        }
        let db_models =
            DbModels::from_config(&loaded, master_key.as_ref(), opts.catch_all_model.clone());
        let response_ids = crate::api::response_owner::IdSecurity::new(
            &cfg.general_settings,
            db_models.salt().cloned(),
            master_key.is_some(),
        );
        let (pass_through, pass_through_warnings) =
            crate::passthrough::custom::CustomRoutes::from_config(&loaded);
        for w in pass_through_warnings {
            tracing::warn!("{w}");
        }
        let state = Self(Arc::new(Inner {
            pass_through,
            metrics,
            callbacks,
            response_ids,
            ip_gate: crate::middleware::client_ip::IpGate::from_settings(&cfg.general_settings),
            end_user_headers: crate::middleware::end_user::configured_headers(
                &cfg.general_settings,
            ),
            background_health,
            health: DashMap::new(),
            store,
            budgets: Budgets::default(),
            spend,
            keys: DashMap::new(),
            key_loads: Default::default(),
            key_cache_ttl,
            end_users: crate::middleware::end_user::EndUserCache::new(key_cache_ttl),
            tags: crate::middleware::tags::TagCache::new(key_cache_ttl),
            redis,
            cache,
            limiter,
            cooldowns,
            global_limits,
            max_request_bytes: mb(cfg.general_settings.max_request_size_mb)
                .unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
            max_response_bytes: mb(cfg.general_settings.max_response_size_mb),
            default_timeout,
            default_stream_timeout: secs(cfg.router_settings.stream_timeout),
            drop_params: cfg.litellm_settings.drop_params.unwrap_or(false),
            default_retries: loaded
                .env("DEFAULT_MAX_RETRIES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(2),
            max_fallbacks: cfg
                .router_settings
                .max_fallbacks
                .or(cfg.litellm_settings.max_fallbacks)
                .or_else(|| {
                    loaded
                        .env("ROUTER_MAX_FALLBACKS")
                        .and_then(|v| v.parse().ok())
                })
                .map_or(DEFAULT_MAX_FALLBACKS, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            json_logs: cfg.litellm_settings.json_logs.unwrap_or(false)
                || loaded
                    .env("JSON_LOGS")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            db_models,
            master_key,
            router: ArcSwap::from_pointee(router),
            http,
            upstream,
            loaded,
            started_at: Instant::now(),
        }));
        if state.db_models.enabled {
            match crate::routing::db_models::reload(&state.0).await {
                Ok(n) => tracing::info!("store_model_in_db: {n} model(s) loaded from the database"),
                // LiteLLM starts with its config models when the first read fails; so do we.
                Err(e) => tracing::error!("store_model_in_db: cannot read stored models: {e}"),
            }
            tokio::spawn(crate::routing::db_models::poll_loop(
                Arc::downgrade(&state.0),
                state.db_models.interval,
            ));
        }
        tokio::spawn(crate::spend::reset_budgets_loop(
            Arc::downgrade(&state.0),
            budget_every,
        ));
        if background_health {
            tokio::spawn(crate::handlers::health::background_checks(
                Arc::downgrade(&state.0),
                health_every,
            ));
        }
        Ok(state)
    }
}
