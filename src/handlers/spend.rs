//! Spend reports: `/spend/logs` (rows of `LiteLLM_SpendLogs`, filtered) and `/global/spend`.
//! Admin only, as in LiteLLM.

use super::keys::require_admin;
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::{hash_key, AuthCtx};
use crate::state::AppState;
use crate::store::{SpendFilter, SpendLogRow};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// Most rows `/spend/logs` returns at once.
const MAX_ROWS: i64 = 1000;

#[derive(Debug, Deserialize)]
pub struct SpendLogsQuery {
    api_key: Option<String>,
    user_id: Option<String>,
    request_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
}

fn date(
    s: &Option<String>,
    field: &str,
    end_of_day: bool,
) -> ApiResult<Option<chrono::NaiveDateTime>> {
    let Some(s) = s else { return Ok(None) };
    if let Some(t) = crate::store::rows_parse_ts(s) {
        return Ok(Some(t));
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(format!("Invalid {field} '{s}': expected YYYY-MM-DD"))
            .with_param(field)
    })?;
    Ok(if end_of_day {
        d.and_hms_opt(23, 59, 59)
    } else {
        d.and_hms_opt(0, 0, 0)
    })
}

fn row_json(r: &SpendLogRow) -> Value {
    let ts = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    json!({
        "request_id": r.request_id, "call_type": r.call_type, "api_key": r.api_key, "spend": r.spend,
        "total_tokens": r.total_tokens, "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "startTime": ts(r.start_time), "endTime": ts(r.end_time), "request_duration_ms": r.request_duration_ms,
        "completionStartTime": r.completion_start_time.map(ts), "model": r.model, "model_id": r.model_id,
        "model_group": r.model_group, "custom_llm_provider": r.custom_llm_provider, "api_base": r.api_base,
        "user": r.user, "metadata": r.metadata, "cache_hit": r.cache_hit, "request_tags": r.request_tags,
        "team_id": r.team_id, "end_user": r.end_user, "status": r.status,
    })
}

pub async fn spend_logs_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<SpendLogsQuery>,
) -> Response {
    logs(&state, &auth, q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn logs(state: &AppState, auth: &AuthCtx, q: SpendLogsQuery) -> ApiResult<Response> {
    require_admin(auth, "/spend/logs")?;
    let f = SpendFilter {
        api_key: q.api_key.map(|k| {
            if k.starts_with("sk-") {
                hash_key(&k)
            } else {
                k
            }
        }),
        request_id: q.request_id,
        user_id: q.user_id,
        start: date(&q.start_date, "start_date", false)?,
        end: date(&q.end_date, "end_date", true)?,
        limit: MAX_ROWS,
    };
    // What is still queued for the database belongs in the answer too.
    state.spend.flush().await;
    let rows = state
        .store
        .spend_logs(&f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(Value::Array(rows.iter().map(row_json).collect())).into_response())
}

pub async fn global_spend_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    let r: ApiResult<Response> = async {
        require_admin(&auth, "/global/spend")?;
        state.spend.flush().await;
        let total = state
            .store
            .global_spend()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let max = state.loaded.config.litellm_settings.max_budget;
        Ok(Json(json!({"spend": total, "max_budget": max})).into_response())
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}
