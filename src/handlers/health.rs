//! Health routes: liveliness and readiness (public), `/health` (probes every deployment).
//!
//! `/health` calls each deployment concurrently with a tiny request of the deployment's mode
//! (`model_info.mode`, else the price map's; chat and completion ask for one token), each
//! bounded by its own timeout (`model_info.health_check_timeout`), and reports LiteLLM's
//! `healthy_endpoints` / `unhealthy_endpoints` shape. Mocked deployments are healthy without a
//! call. A check of one model (`?model=` or `?model_id=`) is stored in
//! `LiteLLM_HealthCheckTable`, as background rounds are when a status changes;
//! `/health/latest` and `/health/history` read them back. With `general_settings.background_health_checks: true` the probes run every
//! `health_check_interval` seconds (default 300) in the background; `/health` then answers
//! from the last round, and the router steers away from deployments found unhealthy.

use crate::providers;
use crate::providers::openai::{Endpoint, Overrides};
use crate::routing::{Deployment, Mode};
use crate::state::AppState;
use crate::store::HealthCheckRow;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Upper bound on one deployment's probe, whatever its configured timeout.
const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn liveliness_handler() -> Response {
    Json(json!("I'm alive!")).into_response()
}

/// `GET /health/readiness` (public): `{"status": "healthy", "db": "connected"}`, or 503 with
/// `"db": "disconnected"` while the store does not answer, as LiteLLM's probe reads. With
/// `general_settings.allow_public_health_readiness_details: true` it answers the details.
pub async fn readiness_handler(State(state): State<AppState>) -> Response {
    let public_details = state
        .loaded
        .config
        .general_settings
        .extra
        .get("allow_public_health_readiness_details")
        == Some(&Value::Bool(true));
    if public_details {
        return readiness_details(&state).await;
    }
    let (status, db) = store_status(&state).await;
    (status, Json(json!({"status": "healthy", "db": db}))).into_response()
}

/// `GET /health/readiness/details` (any key): the readiness answer with LiteLLM's diagnostics
/// added: log level, whether Redis is missing (limits and cooldowns are then per replica),
/// the response cache and success callbacks (none: this gateway runs neither).
pub async fn readiness_details_handler(State(state): State<AppState>) -> Response {
    readiness_details(&state).await
}

async fn readiness_details(state: &AppState) -> Response {
    let (status, db) = store_status(state).await;
    let level = crate::telemetry::log_level_name();
    let no_redis_warning = state.redis.is_none()
        && !std::env::var("LITELLM_DISABLE_NO_REDIS_WARNING")
            .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let body = json!({
        "status": "healthy",
        "db": db,
        "cache": null,
        "litellm_version": crate::middleware::request_ctx::VERSION,
        "success_callbacks": [],
        "use_aiohttp_transport": false,
        "log_level": level,
        "is_detailed_debug": level == "DEBUG",
        "show_no_redis_warning": no_redis_warning,
        "show_env_credential_login_warning": false,
    });
    (status, Json(body)).into_response()
}

/// The store's state as LiteLLM's readiness reports its database: 503 when it does not answer.
async fn store_status(state: &AppState) -> (axum::http::StatusCode, &'static str) {
    if state.store.ping().await {
        (axum::http::StatusCode::OK, "connected")
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "disconnected")
    }
}

/// `GET /metrics`: every Prometheus series as text (mounted only when the `prometheus`
/// callback is on, as in LiteLLM).
pub async fn metrics_handler(State(state): State<AppState>) -> Response {
    let body = state
        .metrics
        .as_ref()
        .map(crate::metrics::Metrics::render)
        .unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

pub async fn test_handler() -> Response {
    Json(json!({"route": "/test"})).into_response()
}

pub async fn root_handler() -> Response {
    Json(json!({"message": "LiteLLM-compatible gateway", "version": crate::middleware::request_ctx::VERSION}))
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct HealthQuery {
    model: Option<String>,
    model_id: Option<String>,
}

pub async fn health_handler(
    State(state): State<AppState>,
    axum::Extension(auth): axum::Extension<crate::middleware::auth::AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<HealthQuery>,
) -> Response {
    // LiteLLM: `/health` calls every deployment, so only admins may trigger it.
    if let Err(e) = super::keys::require_admin(&auth, "/health") {
        return e.into_response();
    }
    let targets: Vec<Arc<Deployment>> = state
        .router
        .load()
        .all_deployments()
        .filter(|d| q.model.as_ref().is_none_or(|m| m == &d.model_name))
        .filter(|d| q.model_id.as_ref().is_none_or(|id| id == &d.id))
        .cloned()
        .collect();
    let started = std::time::Instant::now();
    let results: Vec<Result<(), String>> = if state.background_health {
        targets
            .iter()
            .map(|d| match state.health.get(&d.id) {
                Some(r) => r.clone(),
                None => Err("not checked yet (background health checks)".into()),
            })
            .collect()
    } else {
        let results = futures::future::join_all(targets.iter().map(|d| probe(&state, d))).await;
        // A check of one model is stored, as LiteLLM stores it (in the background: the answer
        // does not wait for the write).
        let one_model = match (&q.model, &q.model_id) {
            (Some(m), _) => Some(m.as_str()),
            (None, Some(_)) => targets.first().map(|d| d.model_name.as_str()),
            (None, None) => None,
        };
        if let Some(name) = one_model {
            let healthy = results.iter().filter(|r| r.is_ok()).count();
            let error = results.iter().find_map(|r| r.as_ref().err());
            let row = HealthCheckRow::new(
                name,
                q.model_id.as_deref(),
                healthy,
                results.len() - healthy,
                error.map(String::as_str),
                started.elapsed().as_secs_f64() * 1000.0,
                auth.user_id(),
            );
            let store = state.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.save_health_checks(&[row]).await {
                    tracing::warn!("could not store a health check: {e}");
                }
            });
        }
        results
    };
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    for (d, res) in targets.iter().zip(results) {
        let mut entry: Map<String, Value> = d.public_params();
        entry.insert("model_id".into(), json!(d.id));
        match res {
            Ok(()) => healthy.push(Value::Object(entry)),
            Err(e) => {
                entry.insert("error".into(), json!(e));
                unhealthy.push(Value::Object(entry));
            }
        }
    }
    Json(json!({
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
    }))
    .into_response()
}

/// Probes every deployment once and records the results for the router and `/health`, and
/// in `LiteLLM_HealthCheckTable` where a deployment's status changed or its last stored check
/// is an hour old (LiteLLM's rule, which keeps a stable fleet to one row per hour each).
pub async fn check_all(state: &AppState) {
    let started = std::time::Instant::now();
    let targets: Vec<Arc<Deployment>> = state.router.load().all_deployments().cloned().collect();
    let results = futures::future::join_all(targets.iter().map(|d| probe(state, d))).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let rows: Vec<HealthCheckRow> = targets
        .iter()
        .zip(&results)
        .map(|(d, r)| {
            let healthy = usize::from(r.is_ok());
            let error = r.as_ref().err().map(String::as_str);
            HealthCheckRow::new(
                &d.model_name,
                Some(&d.id),
                healthy,
                1 - healthy,
                error,
                ms,
                None,
            )
        })
        .collect();
    for (d, r) in targets.iter().zip(results) {
        if let Err(e) = &r {
            tracing::warn!(deployment = %d.id, model = %d.model_name, "health check failed: {e}");
        }
        state.health.insert(d.id.clone(), r);
    }
    if let Err(e) = store_changed(state, rows).await {
        tracing::warn!("could not store health checks: {e}");
    }
}

/// Stores the rows whose status differs from the deployment's last stored one, or whose last
/// one is at least an hour old.
async fn store_changed(
    state: &AppState,
    rows: Vec<HealthCheckRow>,
) -> crate::store::StoreResult<()> {
    let latest = state.store.latest_health_checks().await?;
    let now = chrono::Utc::now().naive_utc();
    let due: Vec<HealthCheckRow> = rows
        .into_iter()
        .filter(|row| {
            let last = latest.iter().find(|l| match &row.model_id {
                Some(id) => l.model_id.as_ref() == Some(id),
                None => l.model_id.is_none() && l.model_name == row.model_name,
            });
            last.is_none_or(|l| {
                l.status != row.status
                    || l.checked_at
                        .is_none_or(|at| (now - at).num_seconds() >= STORED_CHECK_REFRESH_SECS)
            })
        })
        .collect();
    state.store.save_health_checks(&due).await
}

/// How old a deployment's last stored check may get while its status holds.
const STORED_CHECK_REFRESH_SECS: i64 = 3600;

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    model: Option<String>,
    status_filter: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /health/history`: stored checks, newest first (`model`, `status_filter`, `limit` 1 to
/// 1,000, default 100, `offset`).
pub async fn history_handler(
    State(state): State<AppState>,
    axum::Extension(auth): axum::Extension<crate::middleware::auth::AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<HistoryQuery>,
) -> Response {
    if let Err(e) = super::keys::require_admin_view(&auth, "/health/history") {
        return e.into_response();
    }
    let limit = q.limit.unwrap_or(100);
    let offset = q.offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) || offset < 0 {
        return crate::error::ApiError::bad_request(
            "limit must be between 1 and 1000 and offset at least 0",
        )
        .with_param(if offset < 0 { "offset" } else { "limit" })
        .into_response();
    }
    match state
        .store
        .health_check_history(
            q.model.as_deref(),
            q.status_filter.as_deref(),
            limit,
            offset,
        )
        .await
    {
        Ok(rows) => Json(json!({
            "health_checks": rows.iter().map(HealthCheckRow::to_json).collect::<Vec<_>>(),
            "total_records": rows.len(),
            "limit": limit,
            "offset": offset,
        }))
        .into_response(),
        Err(e) => super::keys::store_err(e).into_response(),
    }
}

/// `GET /health/latest`: the newest stored check of each model, keyed by deployment id (the
/// model name for checks of a whole model).
pub async fn latest_handler(
    State(state): State<AppState>,
    axum::Extension(auth): axum::Extension<crate::middleware::auth::AuthCtx>,
) -> Response {
    if let Err(e) = super::keys::require_admin_view(&auth, "/health/latest") {
        return e.into_response();
    }
    match state.store.latest_health_checks().await {
        Ok(rows) => {
            let mut checks = Map::new();
            for r in &rows {
                let key = r.model_id.clone().unwrap_or_else(|| r.model_name.clone());
                checks.entry(key).or_insert_with(|| r.to_json());
            }
            let n = checks.len();
            Json(json!({"latest_health_checks": checks, "total_models": n})).into_response()
        }
        Err(e) => super::keys::store_err(e).into_response(),
    }
}

/// The background loop: one round now, then every `every`, until the state is dropped.
pub async fn background_checks(state: std::sync::Weak<crate::state::Inner>, every: Duration) {
    loop {
        let Some(inner) = state.upgrade() else { return };
        check_all(&AppState(inner)).await;
        tokio::time::sleep(every).await;
    }
}

/// LiteLLM's probe text (`DEFAULT_HEALTH_CHECK_PROMPT`).
const PROBE_TEXT: &str = "test from litellm";

/// The endpoint and body that probe `d`, by its mode (LiteLLM's mode handlers: the smallest
/// call of each kind). Chat and completion probes ask for one token.
fn probe_call(d: &Deployment) -> Result<(Endpoint, Map<String, Value>), String> {
    let body = match d.mode {
        Mode::Chat => {
            json!({"messages": [{"role": "user", "content": PROBE_TEXT}], "max_tokens": 1})
        }
        Mode::Completion => json!({"prompt": PROBE_TEXT, "max_tokens": 1}),
        Mode::Embedding => json!({"input": [PROBE_TEXT]}),
        Mode::ImageGeneration => json!({"prompt": PROBE_TEXT}),
        Mode::AudioSpeech => {
            let voice = d.defaults.get("voice").cloned().unwrap_or(json!("alloy"));
            json!({"input": PROBE_TEXT, "voice": voice})
        }
        Mode::Rerank => json!({"query": PROBE_TEXT, "documents": ["my sample text"]}),
        Mode::Moderation => json!({"input": PROBE_TEXT}),
        Mode::Responses => json!({"input": PROBE_TEXT}),
        Mode::AudioTranscription | Mode::Other => {
            let mode = d
                .config
                .model_info
                .mode
                .as_deref()
                .unwrap_or("audio_transcription");
            return Err(format!(
                "Mode {mode} not supported by this gateway's health checks"
            ));
        }
    };
    let endpoint = match d.mode {
        Mode::Completion => Endpoint::Completions,
        Mode::Embedding => Endpoint::Embeddings,
        Mode::ImageGeneration => Endpoint::ImageGenerations,
        Mode::AudioSpeech => Endpoint::AudioSpeech,
        Mode::Rerank => Endpoint::Rerank,
        Mode::Moderation => Endpoint::Moderations,
        Mode::Responses => Endpoint::Responses,
        _ => Endpoint::ChatCompletions,
    };
    match body {
        Value::Object(m) => Ok((endpoint, m)),
        _ => Err("internal: probe body".into()),
    }
}

async fn probe(state: &AppState, d: &Deployment) -> Result<(), String> {
    if d.mock_response.is_some() || d.upstream_model.contains('*') {
        return Ok(());
    }
    let (endpoint, body) = probe_call(d)?;
    let up = providers::build_request(
        d,
        endpoint,
        &d.upstream_model,
        &body,
        false,
        &Overrides::default(),
    )
    .await
    .map_err(|e| e.message)?;
    let timeout = d
        .config
        .model_info
        .extra
        .get("health_check_timeout")
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .or(d.timeout)
        .unwrap_or(HEALTH_PROBE_TIMEOUT)
        .min(HEALTH_PROBE_TIMEOUT);
    let mut rb = state
        .http
        .post(up.url.to_string())
        .body(up.body)
        .timeout(timeout);
    for (k, v) in up.headers {
        rb = rb.header(k, v);
    }
    let resp = rb
        .send()
        .await
        .map_err(|e| format!("connection error: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    Err(providers::map_error(d.provider, status.as_u16(), &bytes).message)
}
