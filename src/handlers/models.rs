//! `/v1/models`, `/v1/models/{id}` and `/model/info`.
//!
//! Shapes follow LiteLLM: `created` is the constant 1677610602 and `owned_by` is `"openai"`
//! for every entry; `/model/info` lists deployments with secrets removed, their `model_info`
//! completed from LiteLLM's price map (context window, prices, provider, mode) where the config
//! leaves a field out.

use crate::error::ApiError;
use crate::middleware::auth::AuthCtx;
use crate::routing::ModelGroup;
use crate::spend::prices::{ModelPrice, PriceMap};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

const MODEL_CREATED: i64 = 1677610602;

fn visible(auth: &AuthCtx, group: &ModelGroup) -> bool {
    auth.allowed_models.is_empty()
        || auth
            .allowed_models
            .iter()
            .any(|m| m == &group.name || m == "all-proxy-models" || group.access_groups.contains(m))
}

fn model_entry(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": MODEL_CREATED, "owned_by": "openai"})
}

pub async fn list_models_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    let router = state.router.load();
    let data: Vec<Value> = router
        .model_names()
        .iter()
        .filter(|name| {
            router
                .resolve(name)
                .is_some_and(|r| visible(&auth, r.group))
        })
        .map(|n| model_entry(n))
        .collect();
    Json(json!({"data": data, "object": "list"})).into_response()
}

pub async fn get_model_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    Path(id): Path<String>,
) -> Response {
    match state.router.load().resolve(&id) {
        Some(r) if visible(&auth, r.group) => Json(model_entry(&id)).into_response(),
        _ => ApiError::not_found(format!("The model `{id}` does not exist"))
            .with_param("model")
            .into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ModelInfoQuery {
    litellm_model_id: Option<String>,
}

pub async fn model_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ModelInfoQuery>,
) -> Response {
    let mut data = Vec::new();
    let router = state.router.load();
    for group in router.groups() {
        if !visible(&auth, group) {
            continue;
        }
        for d in &group.deployments {
            if q.litellm_model_id.as_ref().is_some_and(|id| id != &d.id) {
                continue;
            }
            let mut info: serde_json::Map<String, Value> = d.config.model_info.extra.clone();
            info.insert("id".into(), json!(d.id));
            info.insert("db_model".into(), json!(d.config.db_model));
            let mi = &d.config.model_info;
            // What the config sets wins; LiteLLM's price map fills the rest (context window,
            // prices, provider, mode), as LiteLLM's `/model/info` does.
            let priced = PriceMap::global().lookup(
                mi.base_model.as_deref(),
                d.provider.name(),
                &d.upstream_model,
            );
            let price = priced.map(|(_, p)| p);
            let num = |own: Option<f64>, map: fn(&ModelPrice) -> Option<f64>| {
                own.or_else(|| price.and_then(map))
                    .map_or(Value::Null, Value::from)
            };
            // Token counts as integers, as the map writes them.
            let tokens = |own: Option<u64>, map: fn(&ModelPrice) -> Option<f64>| {
                own.or_else(|| price.and_then(map).map(|v| v as u64))
                    .map_or(Value::Null, Value::from)
            };
            let fields = [
                ("max_tokens", tokens(mi.max_tokens, |p| p.max_tokens)),
                (
                    "max_input_tokens",
                    tokens(mi.max_input_tokens, |p| p.max_input_tokens),
                ),
                (
                    "max_output_tokens",
                    tokens(mi.max_output_tokens, |p| p.max_output_tokens),
                ),
                (
                    "input_cost_per_token",
                    num(
                        mi.input_cost_per_token
                            .or(d.config.litellm_params.input_cost_per_token),
                        |p| p.input_cost_per_token,
                    ),
                ),
                (
                    "output_cost_per_token",
                    num(
                        mi.output_cost_per_token
                            .or(d.config.litellm_params.output_cost_per_token),
                        |p| p.output_cost_per_token,
                    ),
                ),
            ];
            for (k, v) in fields {
                info.insert(k.into(), v);
            }
            let cached = [
                (
                    "cache_read_input_token_cost",
                    price.and_then(|p| p.cache_read_input_token_cost),
                ),
                (
                    "cache_creation_input_token_cost",
                    price.and_then(|p| p.cache_creation_input_token_cost),
                ),
                (
                    "output_cost_per_reasoning_token",
                    price.and_then(|p| p.output_cost_per_reasoning_token),
                ),
            ];
            for (k, v) in cached {
                if let Some(v) = v {
                    info.entry(k).or_insert(Value::from(v));
                }
            }
            if let Some((key, _)) = priced {
                info.entry("key").or_insert(json!(key));
            }
            let provider = price
                .and_then(|p| p.litellm_provider.as_deref())
                .unwrap_or(d.provider.name());
            info.entry("litellm_provider").or_insert(json!(provider));
            let mode = mi
                .mode
                .as_deref()
                .or_else(|| price.and_then(|p| p.mode.as_deref()))
                .unwrap_or("chat");
            info.insert("mode".into(), json!(mode));
            info.insert("base_model".into(), json!(mi.base_model));
            if !mi.access_groups.is_empty() {
                info.insert("access_groups".into(), json!(mi.access_groups));
            }
            data.push(json!({
                "model_name": d.model_name,
                "litellm_params": d.public_params(),
                "model_info": info,
            }));
        }
    }
    Json(json!({"data": data})).into_response()
}
