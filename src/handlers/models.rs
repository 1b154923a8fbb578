//! `/v1/models`, `/v1/models/{id}`, `/model/info`, `/v2/model/info` and `/model_group/info`.
//!
//! Shapes follow LiteLLM: `created` is the constant 1677610602 and `owned_by` is `"openai"`
//! for every entry; `/model/info` lists deployments with secrets removed, their `model_info`
//! completed from LiteLLM's price map (context window, prices, provider, mode, capabilities)
//! where the config leaves a field out; `/v2/model/info` pages, filters and sorts those same
//! entries; `/model_group/info` folds them per model group into LiteLLM's `ModelGroupInfo`.
//! Every one of them lists only the model groups the calling key may use.

use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::providers::Provider;
use crate::routing::{Deployment, ModelGroup, ModelRouter};
use crate::spend::prices::{ModelPrice, PriceMap};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

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
    let router = state.router.load();
    let data: Vec<Value> = visible_deployments(&router, &auth)
        .filter(|d| q.litellm_model_id.as_ref().is_none_or(|id| id == &d.id))
        .map(|d| deployment_entry(d))
        .collect();
    Json(json!({"data": data})).into_response()
}

/// The deployments of the groups the caller may use, in config order.
fn visible_deployments<'r>(
    router: &'r ModelRouter,
    auth: &'r AuthCtx,
) -> impl Iterator<Item = &'r Arc<Deployment>> + 'r {
    router
        .groups()
        .filter(|g| visible(auth, g))
        .flat_map(|g| g.deployments.iter())
}

/// One `/model/info` entry: `model_name`, `litellm_params` without secrets, `model_info`.
fn deployment_entry(d: &Deployment) -> Value {
    json!({
        "model_name": d.model_name,
        "litellm_params": d.public_params(),
        "model_info": deployment_info(d),
    })
}

/// A deployment's `model_info` as `/model/info` shows it: what the config sets wins; LiteLLM's
/// price map fills the rest (context window, prices, provider, mode, capabilities), as
/// LiteLLM's `/model/info` does.
fn deployment_info(d: &Deployment) -> Map<String, Value> {
    let mut info: Map<String, Value> = d.config.model_info.extra.clone();
    info.insert("id".into(), json!(d.id));
    info.insert("db_model".into(), json!(d.config.db_model));
    let mi = &d.config.model_info;
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
    for (flag, v) in price.into_iter().flat_map(ModelPrice::capabilities) {
        info.entry(flag).or_insert(Value::Bool(v));
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
    info
}

/// The OpenAI parameters a deployment's calls accept (see [`params_for`]).
fn supported_openai_params(d: &Deployment) -> Vec<&'static str> {
    params_for(d.provider, &d.upstream_model)
}

/// The OpenAI parameters calls to `upstream_model` at `provider` accept: every one for
/// OpenAI-format upstreams (the body goes through as sent), the adapter's list for native
/// providers.
fn params_for(provider: Provider, upstream_model: &str) -> Vec<&'static str> {
    use crate::providers::{anthropic, bedrock, cohere, gemini, ollama, params};
    match provider {
        Provider::OpenAi | Provider::Azure | Provider::Compat(_) => {
            params::OPENAI_CHAT_PARAMS.to_vec()
        }
        Provider::Anthropic => anthropic::SUPPORTED.to_vec(),
        Provider::Gemini | Provider::VertexAi => gemini::SUPPORTED.to_vec(),
        Provider::Bedrock => {
            let reasoning = bedrock::is_anthropic(upstream_model);
            bedrock::SUPPORTED
                .iter()
                .copied()
                .filter(|p| reasoning || !matches!(*p, "thinking" | "reasoning_effort"))
                .collect()
        }
        Provider::Cohere => cohere::SUPPORTED.to_vec(),
        Provider::Ollama => ollama::GENERATE_SUPPORTED.to_vec(),
        Provider::OllamaChat => ollama::SUPPORTED.to_vec(),
    }
}

#[derive(Debug, Deserialize)]
pub struct SupportedParamsQuery {
    model: Option<String>,
}

/// `GET /utils/supported_openai_params?model=`: `{"supported_openai_params": [...]}` for a
/// model, as LiteLLM answers it. A model group (or alias, or a name a wildcard group serves)
/// is answered for its first deployment; any other name for the provider its
/// `provider/model` prefix (or its well-known shape, `gpt-*`, `claude-*`...) names. A name
/// that maps to no provider is LiteLLM's 400 "Could not map model=...". Any valid key may ask.
pub async fn supported_openai_params_handler(
    State(state): State<AppState>,
    super::JsonQuery(q): super::JsonQuery<SupportedParamsQuery>,
) -> Response {
    match supported_params_answer(&state.router.load(), q.model.as_deref()) {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn supported_params_answer(router: &ModelRouter, model: Option<&str>) -> ApiResult<Value> {
    // FastAPI's answer to a missing required query parameter is a 422.
    let Some(model) = model else {
        return Err(ApiError::new(
            crate::error::ErrorClass::UnprocessableEntity,
            "Missing required query parameter: 'model'.",
        )
        .with_param("model"));
    };
    let params = match router
        .resolve(model)
        .and_then(|r| r.group.deployments.first().map(|d| (r, d)))
    {
        Some((r, d)) => params_for(d.provider, &d.upstream_model_for(r.capture.as_deref())),
        None => match crate::providers::parse_model(model, None) {
            Some((provider, upstream)) => params_for(provider, &upstream),
            None => {
                return Err(
                    ApiError::bad_request(format!("Could not map model={model}"))
                        .with_param("model"),
                )
            }
        },
    };
    Ok(json!({ "supported_openai_params": params }))
}

/// Capabilities `/model_group/info` reports: true when any deployment of the group has them.
const GROUP_FLAGS: [&str; 6] = [
    "supports_parallel_function_calling",
    "supports_vision",
    "supports_web_search",
    "supports_url_context",
    "supports_reasoning",
    "supports_function_calling",
];

/// A whole number of a deployment's `litellm_params`, else of its `model_info` (LiteLLM reads
/// `tpm`, `rpm`, `itpm`, `otpm` from either).
fn deployment_limit(d: &Deployment, field: &str, typed: Option<u64>) -> Option<u64> {
    typed
        .or_else(|| d.config.litellm_params.extra.get(field)?.as_u64())
        .or_else(|| d.config.model_info.extra.get(field)?.as_u64())
}

/// LiteLLM's `ModelGroupInfo` of a group, under the name the caller knows it by: the largest
/// context window and prices among its deployments, the first deployment's mode, every
/// provider, summed `tpm`/`rpm` limits (null when no deployment sets one), capabilities any
/// deployment has, and the last deployment's supported parameters (as LiteLLM keeps them).
fn group_info(state: &AppState, public_name: &str, group: &ModelGroup) -> Value {
    let mut providers: Vec<&str> = Vec::new();
    let mut max_in: Option<f64> = None;
    let mut max_out: Option<f64> = None;
    let mut cost_in: Option<f64> = None;
    let mut cost_out: Option<f64> = None;
    let mut cost_pixel: Option<f64> = None;
    let mut mode: Option<Value> = None;
    let mut totals: [Option<u64>; 4] = [None; 4];
    let mut flags = [false; GROUP_FLAGS.len()];
    let mut fast_mode = true;
    let mut params: Vec<&'static str> = Vec::new();
    let mut clientside_auth: Option<Value> = None;
    let larger = |acc: &mut Option<f64>, v: Option<f64>| {
        if let Some(v) = v {
            if acc.is_none_or(|a| v > a) {
                *acc = Some(v);
            }
        }
    };
    for d in &group.deployments {
        let info = deployment_info(d);
        let provider = d.provider.name();
        if !providers.contains(&provider) {
            providers.push(provider);
        }
        let f = |k: &str| info.get(k).and_then(Value::as_f64);
        larger(&mut max_in, f("max_input_tokens"));
        larger(&mut max_out, f("max_output_tokens"));
        larger(&mut cost_in, f("input_cost_per_token"));
        larger(&mut cost_out, f("output_cost_per_token"));
        larger(&mut cost_pixel, f("input_cost_per_pixel"));
        if mode.is_none() {
            mode = info.get("mode").cloned();
        }
        let limits = [
            ("tpm", d.tpm),
            ("rpm", d.rpm),
            ("itpm", None),
            ("otpm", None),
        ];
        for (total, (field, typed)) in totals.iter_mut().zip(limits) {
            if let Some(v) = deployment_limit(d, field, typed) {
                *total = Some(total.unwrap_or(0).saturating_add(v));
            }
        }
        for (on, flag) in flags.iter_mut().zip(GROUP_FLAGS) {
            *on |= info.get(flag).and_then(Value::as_bool).unwrap_or(false);
        }
        fast_mode &= provider == "anthropic"
            && info.get("supports_fast_mode").and_then(Value::as_bool) == Some(true);
        params = supported_openai_params(d);
        if let Some(v) = d
            .config
            .litellm_params
            .extra
            .get("configurable_clientside_auth_params")
            .filter(|v| !v.is_null())
        {
            clientside_auth = Some(v.clone());
        }
    }
    let public = state
        .loaded
        .config
        .litellm_settings
        .public_model_groups
        .as_ref()
        .is_some_and(|groups| groups.iter().any(|g| g == public_name));
    let mut out = Map::new();
    out.insert("model_group".into(), json!(public_name));
    out.insert("providers".into(), json!(providers));
    out.insert("max_input_tokens".into(), json!(max_in));
    out.insert("max_output_tokens".into(), json!(max_out));
    out.insert("input_cost_per_token".into(), json!(cost_in));
    out.insert("output_cost_per_token".into(), json!(cost_out));
    out.insert("input_cost_per_pixel".into(), json!(cost_pixel));
    out.insert("mode".into(), mode.unwrap_or_else(|| json!("chat")));
    for (field, total) in ["tpm", "rpm", "itpm", "otpm"].into_iter().zip(totals) {
        out.insert(field.into(), json!(total));
    }
    for (flag, on) in GROUP_FLAGS.into_iter().zip(flags) {
        out.insert(flag.into(), json!(on));
    }
    out.insert(
        "supports_fast_mode".into(),
        json!(fast_mode && !group.deployments.is_empty()),
    );
    // Unknown here: the price map's per-level reasoning flags are not read.
    out.insert("supported_reasoning_efforts".into(), Value::Null);
    out.insert("supported_openai_params".into(), json!(params));
    out.insert(
        "configurable_clientside_auth_params".into(),
        clientside_auth.unwrap_or(Value::Null),
    );
    out.insert("is_public_model_group".into(), json!(public));
    // LiteLLM's endpoint leaves the health fields unset too.
    for field in ["health_status", "health_response_time", "health_checked_at"] {
        out.insert(field.into(), Value::Null);
    }
    Value::Object(out)
}

#[derive(Debug, Deserialize)]
pub struct ModelGroupInfoQuery {
    model_group: Option<String>,
}

/// `GET /model_group/info` (`?model_group=`): one entry per model group the caller may use
/// (visible aliases under their own name, wildcard patterns left out), or only the one asked
/// for (which may be a name a wildcard group serves); an unknown, hidden or forbidden name
/// gives an empty list, as in LiteLLM.
pub async fn model_group_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ModelGroupInfoQuery>,
) -> Response {
    let router = state.router.load();
    let mut names: Vec<String> = router
        .model_names()
        .into_iter()
        .filter(|n| !n.contains('*'))
        .filter(|n| q.model_group.as_ref().is_none_or(|m| m == n))
        .collect();
    // A name only a wildcard group serves is answered when asked for by name.
    if let Some(asked) = q.model_group.as_ref().filter(|_| names.is_empty()) {
        if router.resolve(asked).is_some_and(|r| r.capture.is_some()) {
            names.push(asked.clone());
        }
    }
    let data: Vec<Value> = names
        .iter()
        .filter_map(|n| {
            let resolved = router.resolve(n)?;
            visible(&auth, resolved.group).then(|| group_info(&state, n, resolved.group))
        })
        .collect();
    Json(json!({"data": data})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfoV2Query {
    model: Option<String>,
    page: Option<i64>,
    size: Option<i64>,
    search: Option<String>,
    model_id: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    #[serde(rename = "access_group")]
    access_group: Option<String>,
    #[serde(rename = "wildcard_only")]
    wildcard_only: Option<bool>,
    #[serde(rename = "exclude_auto_routers")]
    exclude_auto_routers: Option<bool>,
}

/// Default page size of `/v2/model/info` (LiteLLM's).
const V2_PAGE_SIZE: i64 = 50;

/// `GET /v2/model/info`: `/model/info`'s entries, filtered (`model`, `search`, `modelId`,
/// `access_group`, `wildcard_only`, `exclude_auto_routers`), sorted (`sortBy` of
/// `model_name`, `costs`, `status`, `created_at`, `updated_at`; `sortOrder` `asc` or `desc`)
/// and paged (`page` from 1, `size` default 50):
/// `{"data", "total_count", "current_page", "total_pages", "size"}`.
pub async fn model_info_v2_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<ModelInfoV2Query>,
) -> Response {
    model_info_v2(&state, &auth, q).unwrap_or_else(IntoResponse::into_response)
}

fn model_info_v2(state: &AppState, auth: &AuthCtx, q: ModelInfoV2Query) -> ApiResult<Response> {
    let page = q.page.unwrap_or(1);
    let size = q.size.unwrap_or(V2_PAGE_SIZE);
    if page < 1 {
        return Err(ApiError::bad_request("page must be >= 1").with_param("page"));
    }
    if size < 1 {
        return Err(ApiError::bad_request("size must be >= 1").with_param("size"));
    }
    let order = q.sort_order.as_deref().unwrap_or("asc");
    let descending = match order.to_ascii_lowercase().as_str() {
        "asc" => false,
        "desc" => true,
        _ => {
            return Err(ApiError::bad_request(format!(
                "Invalid sortOrder: {order}. Must be 'asc' or 'desc'"
            ))
            .with_param("sortOrder"))
        }
    };
    let search = q
        .search
        .as_deref()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let router = state.router.load();
    let mut entries: Vec<Value> = visible_deployments(&router, auth)
        .filter(|d| q.model.as_ref().is_none_or(|m| m == &d.model_name))
        .filter(|d| q.model_id.as_ref().is_none_or(|id| id == &d.id))
        .filter(|d| {
            search
                .as_ref()
                .is_none_or(|s| d.model_name.to_lowercase().contains(s))
        })
        .filter(|d| {
            q.access_group
                .as_ref()
                .is_none_or(|g| d.config.model_info.access_groups.contains(g))
        })
        .filter(|d| q.wildcard_only != Some(true) || d.model_name.contains('*'))
        .filter(|d| {
            q.exclude_auto_routers != Some(true) || !d.litellm_model.starts_with("auto_router/")
        })
        .map(|d| deployment_entry(d))
        .collect();
    if let Some(by) = q.sort_by.as_deref() {
        sort_entries(&mut entries, by, descending);
    }
    let total = entries.len() as i64;
    let total_pages = (total + size - 1) / size;
    let skip = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
    let data: Vec<Value> = entries
        .into_iter()
        .skip(skip)
        .take(usize::try_from(size).unwrap_or(usize::MAX))
        .collect();
    Ok(Json(json!({
        "data": data,
        "total_count": total,
        "current_page": page,
        "total_pages": total_pages,
        "size": size,
    }))
    .into_response())
}

/// LiteLLM's sort of `/v2/model/info`: by name (case-insensitive), by input plus output price
/// (unpriced entries last either way), by config-before-database (`status`), or by the
/// `created_at`/`updated_at` of `model_info` (entries without one last). An unknown field
/// keeps the order.
fn sort_entries(entries: &mut [Value], by: &str, descending: bool) {
    let info = |e: &Value, k: &str| e["model_info"].get(k).cloned().unwrap_or(Value::Null);
    let cmp_f64 = |a: f64, b: f64| a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal);
    match by {
        "model_name" => {
            entries.sort_by_key(|e| e["model_name"].as_str().unwrap_or_default().to_lowercase())
        }
        "costs" => entries.sort_by(|a, b| {
            let cost = |e: &Value| {
                let c = info(e, "input_cost_per_token").as_f64().unwrap_or(0.0)
                    + info(e, "output_cost_per_token").as_f64().unwrap_or(0.0);
                // Unpriced last whichever the direction (reversed below).
                match (c == 0.0, descending) {
                    (true, false) => f64::INFINITY,
                    (true, true) => f64::NEG_INFINITY,
                    _ => c,
                }
            };
            cmp_f64(cost(a), cost(b))
        }),
        "status" => entries.sort_by_key(|e| info(e, "db_model").as_bool().unwrap_or(false)),
        "created_at" | "updated_at" => entries.sort_by(|a, b| {
            let at = |e: &Value| info(e, by).as_str().map(str::to_string);
            match (at(a), at(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) if !descending => std::cmp::Ordering::Less,
                (None, Some(_)) if !descending => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (None, Some(_)) => std::cmp::Ordering::Less,
                (None, None) => std::cmp::Ordering::Equal,
            }
        }),
        _ => return,
    }
    if descending {
        entries.reverse();
    }
}
