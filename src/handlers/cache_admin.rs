//! `/cache/ping`, `/cache/redis/info`, `/cache/delete` and `/cache/flushall`: the response
//! cache's health and upkeep, for proxy admins. With caching off each answers 503, as LiteLLM
//! does.

use super::keys::{require_admin, require_admin_view};
use super::parse_object;
use crate::cache::{cache_unhealthy, ResponseCache};
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

fn configured(state: &AppState) -> ApiResult<&ResponseCache> {
    state
        .cache
        .as_ref()
        .ok_or_else(|| cache_unhealthy("Cache not initialized. litellm.cache is None".into()))
}

fn answer(r: ApiResult<Value>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /cache/ping`.
pub async fn ping_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    answer(
        async {
            require_admin_view(&auth, "/cache/ping")?;
            configured(&state)?.ping().await
        }
        .await,
    )
}

/// `GET /cache/redis/info`.
pub async fn redis_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    answer(
        async {
            require_admin_view(&auth, "/cache/redis/info")?;
            configured(&state)?.redis_info().await
        }
        .await,
    )
}

/// `POST /cache/delete` with `{"keys": [...]}`.
pub async fn delete_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    body: Bytes,
) -> Response {
    answer(
        async {
            require_admin(&auth, "/cache/delete")?;
            let cache = configured(&state)?;
            let body = parse_object(&body)?;
            let keys = match body.get("keys") {
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                    .iter()
                    .filter_map(|k| k.as_str().map(String::from))
                    .collect::<Vec<_>>(),
                _ => {
                    return Err(ApiError::bad_request(
                        "Invalid 'keys': expected a list of cache keys.",
                    )
                    .with_param("keys"))
                }
            };
            cache.delete(&keys).await?;
            Ok(json!({"status": "success"}))
        }
        .await,
    )
}

/// `POST /cache/flushall`.
pub async fn flushall_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    answer(
        async {
            require_admin(&auth, "/cache/flushall")?;
            configured(&state)?.flush_all().await?;
            Ok(json!({"status": "success"}))
        }
        .await,
    )
}
