//! Virtual-key management: `/key/generate`, `/key/service-account/generate`, `/key/info`
//! (`GET` for one key, `POST` for several), `/key/update`, `/key/delete`, `/key/list`,
//! `/key/block`, `/key/unblock`, `/key/regenerate` (key in the body or the path), with
//! LiteLLM's fields, defaults and response shapes. The config's key defaults and caps are
//! applied through `handlers::key_limits`.
//!
//! Keys are `sk-` + 22 URL-safe characters; only their SHA-256 is stored (LiteLLM's
//! `LiteLLM_VerificationToken.token`), so keys minted by LiteLLM verify here and vice versa.
//! APIs that take a key accept the raw `sk-...` value or its hash. Mutations invalidate the
//! key cache of this replica; other replicas converge within `user_api_key_cache_ttl`.

use super::access::{self, RouteClass};
use super::key_limits;
use super::{parse_object, read_body};
use crate::api::validate::describe;
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::{abbreviate_key, hash_key, AuthCtx};
use crate::middleware::key_routes;
use crate::spend::{now, parse_duration};
use crate::state::AppState;
use crate::store::{AliasFilter, KeyFilter, KeyRow, StoreError, TeamRow};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Random bytes in a generated key (LiteLLM's `LENGTH_OF_LITELLM_GENERATED_KEY`).
const KEY_BYTES: usize = 16;
/// Shortest custom key accepted (`MINIMUM_CUSTOM_KEY_LENGTH`).
const MIN_CUSTOM_KEY_LEN: usize = 16;

/// Proxy admins only (LiteLLM's 401 for everyone else).
pub fn require_admin(auth: &AuthCtx, route: &str) -> ApiResult<()> {
    access::gate(auth, route, RouteClass::AdminOnly, false)
}

/// Proxy admins, and admin viewers on a read-only route.
pub fn require_admin_view(auth: &AuthCtx, route: &str) -> ApiResult<()> {
    access::gate(auth, route, RouteClass::AdminOnly, true)
}

pub(crate) fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::bad_request(m),
        StoreError::NotFound(m) => ApiError::not_found(m),
        StoreError::Db(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => {
            foreign_key_error(d.as_ref())
        }
        other => ApiError::internal(format!("{other}")),
    }
}

/// A write a foreign key refused (LiteLLM's schema has them): 400 naming the column, taken from
/// the constraint name Prisma gives it (`<table>_<column>_fkey`).
fn foreign_key_error(d: &dyn sqlx::error::DatabaseError) -> ApiError {
    let constraint = d.constraint().unwrap_or_default();
    let table = d.table().unwrap_or_default();
    let field = constraint
        .strip_prefix(table)
        .and_then(|c| c.strip_prefix('_'))
        .and_then(|c| c.strip_suffix("_fkey"))
        .unwrap_or(constraint);
    if d.message().starts_with("insert or update") {
        ApiError::bad_request(format!(
            "Invalid '{field}': it refers to a row that does not exist."
        ))
        .with_param(field)
    } else {
        ApiError::bad_request(format!(
            "Cannot delete it: \"{table}\".\"{field}\" still refers to it."
        ))
    }
}

fn new_key() -> String {
    let bytes: [u8; KEY_BYTES] = rand::random();
    format!(
        "sk-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A key parameter: raw `sk-...` keys are hashed, anything else is taken as the hash.
fn token_of(k: &str) -> String {
    if k.starts_with("sk-") {
        hash_key(k)
    } else {
        k.to_string()
    }
}

fn key_name(key: &str) -> String {
    if std::env::var("DISABLE_KEY_NAME").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return String::new();
    }
    abbreviate_key(key)
}

pub(crate) fn opt_str(body: &Map<String, Value>, f: &str) -> ApiResult<Option<String>> {
    match body.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(field_error(f, "a string", v)),
    }
}

pub(crate) fn opt_f64(body: &Map<String, Value>, f: &str) -> ApiResult<Option<f64>> {
    match body.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x >= 0.0 => Ok(Some(x)),
            _ => Err(
                ApiError::bad_request(format!("Invalid value for '{f}': must be >= 0."))
                    .with_param(f),
            ),
        },
        Some(v) => Err(field_error(f, "a number", v)),
    }
}

pub(crate) fn opt_i64(body: &Map<String, Value>, f: &str) -> ApiResult<Option<i64>> {
    match body.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(x) if x >= 0 => Ok(Some(x)),
            _ => Err(field_error(f, "a non-negative integer", v)),
        },
    }
}

pub(crate) fn opt_obj(body: &Map<String, Value>, f: &str) -> ApiResult<Option<Value>> {
    match body.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(v) => Err(field_error(f, "an object", v)),
    }
}

/// `model_max_budget`, validated (`{model: {budget_limit, time_period}}`).
pub(crate) fn opt_model_max_budget(body: &Map<String, Value>) -> ApiResult<Option<Value>> {
    let v = opt_obj(body, "model_max_budget")?;
    if let Some(v) = &v {
        crate::spend::model_budget::parse(v).map_err(|e| {
            ApiError::bad_request(format!("Invalid model_max_budget: {e}"))
                .with_param("model_max_budget")
        })?;
    }
    Ok(v)
}

pub(crate) fn opt_strings(body: &Map<String, Value>, f: &str) -> ApiResult<Option<Vec<String>>> {
    match body.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(Some(
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
        )),
        Some(v) => Err(field_error(f, "a list of strings", v)),
    }
}

/// A body's `tags` (keys and teams), kept in the object's metadata as LiteLLM keeps them.
pub(crate) fn tags_into_metadata(metadata: &mut Value, body: &Map<String, Value>) -> ApiResult<()> {
    if let Some(tags) = opt_strings(body, "tags")? {
        if let Value::Object(m) = metadata {
            m.insert("tags".into(), json!(tags));
        } else {
            *metadata = json!({ "tags": tags });
        }
    }
    Ok(())
}

pub(crate) fn field_error(f: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid value for '{f}': expected {expected}, got {}.",
        describe(got)
    ))
    .with_param(f)
}

/// Applies the settable fields of a generate/update body to a key row.
fn apply_fields(row: &mut KeyRow, body: &Map<String, Value>, is_update: bool) -> ApiResult<()> {
    if let Some(d) = opt_str(body, "duration")? {
        if is_update && d == "-1" {
            row.expires = None;
        } else {
            let dur = parse_duration(&d).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid duration '{d}'. Use a number followed by s, m, h, d, w or mo (e.g. '30d'), or hourly/daily/weekly/monthly."
                ))
                .with_param("duration")
            })?;
            row.expires = Some(now() + dur);
        }
    }
    if let Some(d) = opt_str(body, "budget_duration")? {
        let dur = parse_duration(&d).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid budget_duration '{d}'."))
                .with_param("budget_duration")
        })?;
        row.budget_duration = Some(d);
        row.budget_reset_at = Some(now() + dur);
    }
    if body.contains_key("key_alias") {
        row.key_alias = opt_str(body, "key_alias")?;
    }
    if let Some(v) = opt_strings(body, "models")? {
        row.models = v;
    }
    if let Some(v) = opt_strings(body, "allowed_cache_controls")? {
        row.allowed_cache_controls = v;
    }
    if let Some(v) = opt_strings(body, "allowed_routes")? {
        row.allowed_routes = v;
    }
    if let Some(v) = opt_obj(body, "aliases")? {
        row.aliases = v;
    }
    if let Some(v) = opt_obj(body, "config")? {
        row.config = v;
    }
    if let Some(v) = opt_obj(body, "permissions")? {
        row.permissions = v;
    }
    if let Some(v) = opt_obj(body, "metadata")? {
        row.metadata = v;
    }
    tags_into_metadata(&mut row.metadata, body)?;
    for f in ["model_rpm_limit", "model_tpm_limit"] {
        if let Some(v) = opt_obj(body, f)? {
            if let Value::Object(m) = &mut row.metadata {
                m.insert(f.to_string(), v);
            }
        }
    }
    // Kept in the key's metadata, where LiteLLM keeps it and the LLM routes read it.
    if let Some(v) = opt_strings(body, "enforced_params")? {
        if !row.metadata.is_object() {
            row.metadata = json!({});
        }
        if let Value::Object(m) = &mut row.metadata {
            m.insert("enforced_params".into(), json!(v));
        }
    }
    if let Some(v) = opt_model_max_budget(body)? {
        row.model_max_budget = v;
    }
    if body.contains_key("max_budget") {
        row.max_budget = opt_f64(body, "max_budget")?;
    }
    if body.contains_key("soft_budget") {
        // Kept, as LiteLLM keeps it, on a LiteLLM_BudgetTable row the key links to.
        row.soft_budget = opt_f64(body, "soft_budget")?;
        if row.soft_budget.is_some() && row.budget_id.is_none() {
            row.budget_id = Some(uuid::Uuid::new_v4().to_string());
        }
        row.soft_budget_cooldown = false;
    }
    if let Some(v) = opt_f64(body, "spend")? {
        row.spend = v;
    }
    if body.contains_key("user_id") {
        row.user_id = opt_str(body, "user_id")?;
    }
    if body.contains_key("team_id") {
        row.team_id = opt_str(body, "team_id")?;
    }
    if body.contains_key("organization_id") {
        row.organization_id = opt_str(body, "organization_id")?.filter(|o| !o.is_empty());
    }
    for (f, slot) in [
        ("tpm_limit", &mut row.tpm_limit),
        ("rpm_limit", &mut row.rpm_limit),
        ("max_parallel_requests", &mut row.max_parallel_requests),
    ] {
        if body.contains_key(f) {
            *slot = opt_i64(body, f)?;
        }
    }
    match body.get("blocked") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => row.blocked = Some(*b),
        Some(v) => return Err(field_error("blocked", "a boolean", v)),
    }
    if let Some(t) = opt_str(body, "key_type")? {
        if !matches!(
            t.as_str(),
            "default" | "llm_api" | "management" | "read_only"
        ) {
            return Err(
                ApiError::bad_request(format!("Invalid key_type '{t}'.")).with_param("key_type")
            );
        }
        if let Some(preset) = key_routes::key_type_routes(&t) {
            row.allowed_routes = vec![preset.to_string()];
        }
        row.key_type = Some(t);
    }
    Ok(())
}

/// Who may restrict a key's routes (LiteLLM's rule): proxy admins set any `allowed_routes`;
/// anyone else only picks a `key_type` preset for LLM calls or read-only views, and on an
/// update may move between those presets but not widen a read-only key or replace a list an
/// admin set. `stored` is the key's current list on an update.
fn check_route_rights(
    auth: &AuthCtx,
    body: &Map<String, Value>,
    stored: Option<&[String]>,
) -> ApiResult<()> {
    if auth.is_admin {
        return Ok(());
    }
    let safe = |routes: &[String]| {
        routes
            .iter()
            .all(|r| key_routes::NON_ADMIN_PRESETS.contains(&r.as_str()))
    };
    let may_set = |asked: &[String], explicit: bool| match stored {
        None => !explicit && safe(asked),
        Some(stored) => {
            safe(asked) && safe(stored) && (stored != ["info_routes"] || asked == stored)
        }
    };
    let explicit = match body.contains_key("allowed_routes") {
        true => Some(opt_strings(body, "allowed_routes")?.unwrap_or_default()),
        false => None,
    };
    let preset = opt_str(body, "key_type")?
        .as_deref()
        .and_then(key_routes::key_type_routes)
        .map(|group| vec![group.to_string()]);
    let asks = [(explicit, true), (preset, false)];
    if asks
        .iter()
        .any(|(asked, is_list)| asked.as_ref().is_some_and(|a| !may_set(a, *is_list)))
    {
        return Err(access::forbidden(
            "Only proxy admins can set `allowed_routes` on a key. Use `key_type` to pick a preset route bucket instead.",
        ));
    }
    Ok(())
}

/// The `key` field most key routes require.
fn required_key(body: &Map<String, Value>) -> ApiResult<String> {
    opt_str(body, "key")?
        .ok_or_else(|| ApiError::bad_request("Missing required field: 'key'.").with_param("key"))
}

/// A new key's response: the stored object plus the raw key (shown this once) and its hash.
fn created(row: &KeyRow, raw: &str) -> Response {
    Json(Value::Object(created_json(row, raw))).into_response()
}

/// The fields of a freshly minted key: the stored object plus the raw key and its hash.
pub(crate) fn created_json(row: &KeyRow, raw: &str) -> Map<String, Value> {
    let mut out = key_json(row);
    out.insert("key".into(), json!(raw));
    out.insert("token".into(), json!(raw));
    out.insert("token_id".into(), json!(row.token));
    out
}

pub(crate) fn ts(t: Option<chrono::NaiveDateTime>) -> Value {
    t.map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
        .unwrap_or(Value::Null)
}

/// The key object LiteLLM returns (never the raw key).
pub(crate) fn key_json(r: &KeyRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("token".into(), json!(r.token));
    m.insert("key_name".into(), json!(r.key_name));
    m.insert("key_alias".into(), json!(r.key_alias));
    m.insert("spend".into(), json!(r.spend));
    m.insert("max_budget".into(), json!(r.max_budget));
    m.insert("expires".into(), ts(r.expires));
    m.insert("models".into(), json!(r.models));
    m.insert(
        "allowed_cache_controls".into(),
        json!(r.allowed_cache_controls),
    );
    m.insert("allowed_routes".into(), json!(r.allowed_routes));
    m.insert("aliases".into(), r.aliases.clone());
    m.insert("config".into(), r.config.clone());
    m.insert("user_id".into(), json!(r.user_id));
    m.insert("team_id".into(), json!(r.team_id));
    m.insert("permissions".into(), r.permissions.clone());
    m.insert(
        "max_parallel_requests".into(),
        json!(r.max_parallel_requests),
    );
    m.insert("metadata".into(), r.metadata.clone());
    m.insert("blocked".into(), json!(r.blocked));
    m.insert("tpm_limit".into(), json!(r.tpm_limit));
    m.insert("rpm_limit".into(), json!(r.rpm_limit));
    m.insert("budget_duration".into(), json!(r.budget_duration));
    m.insert("budget_reset_at".into(), ts(r.budget_reset_at));
    m.insert("key_type".into(), json!(r.key_type));
    m.insert("model_spend".into(), r.model_spend.clone());
    m.insert("model_max_budget".into(), r.model_max_budget.clone());
    m.insert("created_at".into(), ts(r.created_at));
    m.insert("created_by".into(), json!(r.created_by));
    m.insert("updated_at".into(), ts(r.updated_at));
    m.insert("updated_by".into(), json!(r.updated_by));
    m.insert("budget_id".into(), json!(r.budget_id));
    m.insert("organization_id".into(), json!(r.organization_id));
    m.insert("soft_budget_cooldown".into(), json!(r.soft_budget_cooldown));
    m.insert(
        "litellm_budget_table".into(),
        match &r.budget_id {
            Some(id) => json!({"budget_id": id, "soft_budget": r.soft_budget}),
            None => Value::Null,
        },
    );
    m
}

pub(crate) fn creator(auth: &AuthCtx) -> String {
    auth.key
        .as_ref()
        .and_then(|k| k.user_id.clone())
        .unwrap_or_else(|| "default_user_id".into())
}

pub(crate) async fn body_of(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Map<String, Value>> {
    let bytes = read_body(headers, body, state.max_request_bytes).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    parse_object(&bytes)
}

fn invalidate(state: &AppState, token: &str) {
    state.keys.remove(token);
}

async fn existing(state: &AppState, key_param: &str) -> ApiResult<KeyRow> {
    let token = token_of(key_param);
    state
        .store
        .get_key(&token)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::not_found(format!("Key not found: {key_param}")).with_param("key"))
}

pub async fn generate_key_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generate(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn generate(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    access::gate(auth, "/key/generate", RouteClass::KeyManagement, false)?;
    let mut body = body_of(state, headers, body).await?;
    if !auth.is_admin {
        check_route_rights(auth, &body, None)?;
        check_generate_rights(state, auth, &mut body).await?;
    }
    apply_key_settings(state, &mut body)?;
    let (row, raw) = mint_key(state, auth, &body).await?;
    Ok(created(&row, &raw))
}

/// The config's `default_key_generate_params`, then its `upperbound_key_generate_params`, on a
/// body that creates a key (LiteLLM's order: defaults first, then caps, filling what is unset).
fn apply_key_settings(state: &AppState, body: &mut Map<String, Value>) -> ApiResult<()> {
    let settings = &state.loaded.config.litellm_settings;
    if let Some(defaults) = &settings.default_key_generate_params {
        key_limits::apply_defaults(defaults, body);
    }
    if let Some(caps) = &settings.upperbound_key_generate_params {
        key_limits::check_caps(caps, body)?;
        key_limits::fill_caps(caps, body);
    }
    Ok(())
}

/// `upperbound_key_generate_params`, when set: refuses values over a cap (updates).
fn check_caps(state: &AppState, body: &Map<String, Value>) -> ApiResult<()> {
    match &state
        .loaded
        .config
        .litellm_settings
        .upperbound_key_generate_params
    {
        Some(caps) => key_limits::check_caps(caps, body),
        None => Ok(()),
    }
}

/// `POST /key/service-account/generate`: a key owned by a team and no user, so it outlives
/// any member (LiteLLM's service account). `team_id` is required and must exist; a `user_id`
/// in the body is ignored; `metadata.service_account_id` is set to the `key_alias` (else a
/// new uuid) unless the body sets it. Non-admins need the team-key right on the team.
pub async fn generate_service_account_key_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generate_service_account(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn generate_service_account(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    const ROUTE: &str = "/key/service-account/generate";
    access::gate(auth, ROUTE, RouteClass::KeyManagement, false)?;
    let mut body = body_of(state, headers, body).await?;
    if !auth.is_admin {
        check_route_rights(auth, &body, None)?;
    }
    let team_id = opt_str(&body, "team_id")?.ok_or_else(|| {
        ApiError::bad_request(
            "team_id is required for service account keys. Please specify `team_id` in the request body.",
        )
        .with_param("team_id")
    })?;
    let team = state
        .store
        .get_team(&team_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::bad_request(
                "team_id does not exist in the database. Please specify a valid `team_id` in the request body.",
            )
            .with_param("team_id")
        })?;
    access::require_team_key_right(auth, &team, ROUTE)?;
    let mut metadata = match opt_obj(&body, "metadata")? {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if metadata
        .get("service_account_id")
        .is_none_or(Value::is_null)
    {
        let id = opt_str(&body, "key_alias")?.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        metadata.insert("service_account_id".into(), json!(id));
    }
    body.insert("metadata".into(), Value::Object(metadata));
    apply_key_settings(state, &mut body)?;
    // Set after the defaults: a default `user_id` must not make this a user's key.
    body.insert("user_id".into(), Value::Null);
    let (row, raw) = mint_key(state, auth, &body).await?;
    Ok(created(&row, &raw))
}

/// LiteLLM's rules for a non-admin `/key/generate`: the key is the caller's own (`user_id`
/// defaults to the caller); a team key needs an existing team with both the caller and the
/// key's user on it, and the caller must be a team admin (plain members lack the route).
async fn check_generate_rights(
    state: &AppState,
    auth: &AuthCtx,
    body: &mut Map<String, Value>,
) -> ApiResult<()> {
    let me = auth.user_id().unwrap_or_default().to_string();
    let user_id = match opt_str(body, "user_id")? {
        Some(u) => u,
        None => {
            body.insert("user_id".into(), json!(me));
            me.clone()
        }
    };
    if let Some(team_id) = opt_str(body, "team_id")? {
        let team = state
            .store
            .get_team(&team_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Team not found for team_id={team_id}. Non-admin users cannot create keys for non-existent teams."
                ))
                .with_param("team_id")
            })?;
        let not_in_team = |u: &str| {
            ApiError::bad_request(format!("User={u} not assigned to team={team_id}"))
                .with_param("team_id")
        };
        if access::team_role(&team, Some(&user_id)).is_none() {
            return Err(not_in_team(&user_id));
        }
        match access::team_role(&team, Some(&me)) {
            None => return Err(not_in_team(&me)),
            Some("admin") => {}
            Some(_) => return Err(access::team_member_permission_error(&team, "/key/generate")),
        }
    }
    if user_id != me {
        return Err(access::forbidden(format!(
            "User can only create keys for themselves. Got user_id={user_id}, Your ID={me}"
        )));
    }
    Ok(())
}

/// The team of a team key, for rights checks (a key whose team is gone has none).
async fn key_team(state: &AppState, row: &KeyRow) -> ApiResult<Option<TeamRow>> {
    match &row.team_id {
        Some(t) => state.store.get_team(t).await.map_err(store_err),
        None => Ok(None),
    }
}

/// LiteLLM's ownership rule for deleting or regenerating a key: its owner, or an admin of its
/// team.
fn may_modify(auth: &AuthCtx, row: &KeyRow, team: Option<&TeamRow>) -> bool {
    auth.is_admin
        || team.is_some_and(|t| access::is_team_admin(auth, t))
        || (row.user_id.is_some() && row.user_id.as_deref() == auth.user_id())
}

/// Proxy admins and admins of the key's team (`/key/block`, budget changes); LiteLLM's 403
/// for others.
fn require_key_admin(auth: &AuthCtx, team: Option<&TeamRow>, route: &str) -> ApiResult<()> {
    if auth.is_admin || team.is_some_and(|t| access::is_team_admin(auth, t)) {
        return Ok(());
    }
    Err(access::forbidden(format!(
        "Only proxy admins, team admins, or org admins can call {route}. user_role={}, user_id={}",
        auth.user_role.unwrap_or("None"),
        auth.user_id().unwrap_or("None")
    )))
}

/// Creates and stores a key from a `/key/generate`-shaped body (also used by `/user/new`).
/// Returns the stored row and the raw key, which is shown only once.
pub(crate) async fn mint_key(
    state: &AppState,
    auth: &AuthCtx,
    body: &Map<String, Value>,
) -> ApiResult<(KeyRow, String)> {
    let raw = match opt_str(body, "key")? {
        Some(k) => {
            if !k.starts_with("sk-") {
                return Err(ApiError::bad_request(
                    "Invalid key format. LiteLLM Virtual Key must start with 'sk-'. Received: key",
                )
                .with_param("key"));
            }
            if k.len() < MIN_CUSTOM_KEY_LEN {
                return Err(ApiError::bad_request(format!(
                    "Invalid key: custom keys must be at least {MIN_CUSTOM_KEY_LEN} characters."
                ))
                .with_param("key"));
            }
            k
        }
        None => new_key(),
    };
    let now = now();
    let mut row = KeyRow {
        token: hash_key(&raw),
        key_name: Some(key_name(&raw)).filter(|s| !s.is_empty()),
        aliases: json!({}),
        config: json!({}),
        permissions: json!({}),
        metadata: json!({}),
        model_spend: json!({}),
        model_max_budget: json!({}),
        blocked: None,
        created_at: Some(now),
        updated_at: Some(now),
        created_by: Some(creator(auth)),
        updated_by: Some(creator(auth)),
        ..KeyRow::default()
    };
    apply_fields(&mut row, body, false)?;
    check_team(state, &row).await?;
    super::teams::check_organization(state, row.organization_id.as_deref(), true).await?;
    state.store.insert_key(&row).await.map_err(store_err)?;
    state.budgets.reset(&row.token, row.spend);
    Ok((row, raw))
}

/// A key's `team_id` must name an existing team, and when the team restricts its models the
/// key's models must be among them (LiteLLM's checks at `/key/generate`).
async fn check_team(state: &AppState, row: &KeyRow) -> ApiResult<()> {
    let Some(team_id) = &row.team_id else {
        return Ok(());
    };
    let team = state
        .store
        .get_team(team_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Team doesn't exist in db. Team={team_id}. Create team via `/team/new` call."
            ))
            .with_param("team_id")
        })?;
    if team.models.is_empty() || team.models.iter().any(|m| m == "all-proxy-models") {
        return Ok(());
    }
    let allowed = |m: &str| {
        m == "all-team-models"
            || team.models.iter().any(|t| {
                t == m
                    || t.strip_suffix('*')
                        .is_some_and(|prefix| m.starts_with(prefix))
            })
    };
    if let Some(bad) = row.models.iter().find(|m| !allowed(m)) {
        return Err(ApiError::bad_request(format!(
            "Model not in allowed team models. Team={team_id}, Model={bad}. Allowed team models={:?}",
            team.models
        ))
        .with_param("models"));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct KeyInfoQuery {
    key: Option<String>,
}

pub async fn key_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<KeyInfoQuery>,
) -> Response {
    key_info(&state, &auth, q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn key_info(state: &AppState, auth: &AuthCtx, q: KeyInfoQuery) -> ApiResult<Response> {
    let (param, token) = match (&q.key, &auth.key_hash) {
        (Some(k), _) => (k.clone(), token_of(k)),
        (None, Some(h)) => (h.clone(), h.clone()),
        (None, None) => {
            return Err(ApiError::bad_request(
                "Pass the key to look up: /key/info?key=<sk-... or hash>",
            )
            .with_param("key"))
        }
    };
    let mut row = existing(state, &token).await?;
    if !may_view(state, auth, &row).await? {
        return Err(access::forbidden(format!(
            "You are not allowed to access this key's info. Your role={}",
            auth.user_role.unwrap_or("None")
        )));
    }
    if let Some(mem) = state.budgets.spend(&row.token) {
        row.spend = row.spend.max(mem);
    }
    Ok(Json(json!({"key": param, "info": key_json(&row)})).into_response())
}

/// `POST /key/info` (and LiteLLM's path for it, `POST /v2/key/info`): several keys at once,
/// `{"keys": [...], "key_aliases": [...]}` -> `{"key": <keys as passed>, "info": [...]}`.
/// Keys the caller may not see (not an admin or viewer, not the calling key, not their own,
/// not of a team they are in) and unknown keys are left out, as LiteLLM leaves them out;
/// each entry is the key object without its hash.
pub async fn key_info_many_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    key_info_many(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn key_info_many(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    access::gate(auth, "/key/info", RouteClass::Info, true)?;
    let body = body_of(state, headers, body).await?;
    let keys = opt_strings(&body, "keys")?;
    let aliases = opt_strings(&body, "key_aliases")?.unwrap_or_default();
    if keys.as_ref().is_none_or(Vec::is_empty) && aliases.is_empty() {
        return Err(ApiError::new(
            crate::error::ErrorClass::UnprocessableEntity,
            "At least one of 'keys' or 'key_aliases' must be provided.",
        )
        .with_param("keys"));
    }
    let mut rows: Vec<KeyRow> = Vec::new();
    for k in keys.iter().flatten() {
        if let Some(row) = state.store.get_key(&token_of(k)).await.map_err(store_err)? {
            rows.push(row);
        }
    }
    for a in &aliases {
        if let Some(row) = state.store.get_key_by_alias(a).await.map_err(store_err)? {
            rows.push(row);
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut info = Vec::new();
    for mut row in rows {
        if !seen.insert(row.token.clone()) || !may_view(state, auth, &row).await? {
            continue;
        }
        if let Some(mem) = state.budgets.spend(&row.token) {
            row.spend = row.spend.max(mem);
        }
        let mut m = key_json(&row);
        m.remove("token");
        info.push(Value::Object(m));
    }
    Ok(Json(json!({"key": keys, "info": info})).into_response())
}

/// LiteLLM's rule for reading a key's info: admins and admin viewers, the key itself, its
/// owner, and members of its team.
async fn may_view(state: &AppState, auth: &AuthCtx, row: &KeyRow) -> ApiResult<bool> {
    if access::can_view_all(auth) || auth.key_hash.as_deref() == Some(row.token.as_str()) {
        return Ok(true);
    }
    if row.user_id.is_some() && row.user_id.as_deref() == auth.user_id() {
        return Ok(true);
    }
    Ok(match key_team(state, row).await? {
        Some(t) => access::team_role(&t, auth.user_id()).is_some(),
        None => false,
    })
}

pub async fn update_key_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    update(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn update(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    access::gate(auth, "/key/update", RouteClass::KeyManagement, false)?;
    let body = body_of(state, headers, body).await?;
    let row = update_one(state, auth, &body).await?;
    Ok(Json(Value::Object(key_json(&row))).into_response())
}

/// One key's update (`/key/update`, and each item of `/key/bulk_update`): the caller's rights,
/// the fields, the team and organization checks, then the write; returns the updated row.
async fn update_one(
    state: &AppState,
    auth: &AuthCtx,
    body: &Map<String, Value>,
) -> ApiResult<KeyRow> {
    let key = required_key(body)?;
    let mut row = existing(state, &key).await?;
    if !auth.is_admin {
        check_update_rights(state, auth, &row, body).await?;
        check_route_rights(auth, body, Some(&row.allowed_routes))?;
    }
    check_caps(state, body)?;
    apply_fields(&mut row, body, true)?;
    if body.contains_key("team_id") || body.contains_key("models") {
        check_team(state, &row).await?;
    }
    if body.contains_key("organization_id") {
        super::teams::check_organization(state, row.organization_id.as_deref(), false).await?;
    }
    row.updated_at = Some(now());
    row.updated_by = Some(creator(auth));
    state.store.update_key(&row).await.map_err(store_err)?;
    invalidate(state, &row.token);
    if body.contains_key("spend") {
        state.budgets.reset(&row.token, row.spend);
    }
    Ok(row)
}

/// The fields a `/key/bulk_update` item may carry (LiteLLM's item model); others are ignored.
const BULK_UPDATE_FIELDS: [&str; 6] = [
    "key",
    "max_budget",
    "team_id",
    "tags",
    "budget_id",
    "object_permission",
];
/// Most keys one `/key/bulk_update` may change (LiteLLM's bound).
const BULK_UPDATE_MAX: usize = 500;

/// `POST /key/bulk_update` (proxy admins): `{"keys": [{"key", "max_budget", "team_id", "tags",
/// ...}]}`, each item applied as `/key/update` applies it, independently: the answer lists the
/// updated keys and, for the others, why not (with the key as it stands, when it exists).
pub async fn bulk_update_keys_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    bulk_update(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn bulk_update(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if !auth.is_admin {
        return Err(access::forbidden(
            "Only proxy admins can perform bulk key updates",
        ));
    }
    let body = body_of(state, headers, body).await?;
    let items = match body.get("keys") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("Missing required field: 'keys'.").with_param("keys"))
        }
        Some(v) => return Err(field_error("keys", "a list of key updates", v)),
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("No keys provided for update").with_param("keys"));
    }
    if items.len() > BULK_UPDATE_MAX {
        return Err(ApiError::bad_request(format!(
            "Maximum {BULK_UPDATE_MAX} keys can be updated at once. Found {} keys.",
            items.len()
        ))
        .with_param("keys"));
    }
    // Every item is checked for shape before any is applied.
    let mut updates = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(item) = item else {
            return Err(field_error("keys", "objects with a key", item));
        };
        let fields: Map<String, Value> = item
            .iter()
            .filter(|(k, _)| BULK_UPDATE_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        updates.push((required_key(&fields)?, fields));
    }
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (key, fields) in updates {
        match update_one(state, auth, &fields).await {
            Ok(row) => successful.push(json!({"key": key, "key_info": key_json(&row)})),
            Err(e) => {
                let key_info = existing(state, &key).await.ok().map(|row| {
                    let mut m = key_json(&row);
                    m.remove("token");
                    Value::Object(m)
                });
                failed.push(json!({"key": key, "key_info": key_info, "failed_reason": e.message}));
            }
        }
    }
    Ok(Json(json!({
        "total_requested": items.len(),
        "successful_updates": successful,
        "failed_updates": failed,
    }))
    .into_response())
}

/// LiteLLM's rules for a non-admin `/key/update`: a key's owner may change it, except its budget
/// (`max_budget`, `spend`), which takes an admin of the key's team; on a team key the caller
/// must be a team admin (plain members lack the route); a team admin may change only the
/// budget of another member's key, and only with the `member_key_budgets` grant.
async fn check_update_rights(
    state: &AppState,
    auth: &AuthCtx,
    row: &KeyRow,
    body: &Map<String, Value>,
) -> ApiResult<()> {
    let me = auth.user_id().unwrap_or_default();
    let team = key_team(state, row).await?;
    let stored = key_json(row);
    let changed = access::changed_fields(body, &stored, &["key", "token", "metadata"]);
    let acting_as_team_admin = row.user_id.as_deref().is_some_and(|u| u != me)
        && team
            .as_ref()
            .is_some_and(|t| access::is_team_admin(auth, t));
    if acting_as_team_admin {
        let mut edits = changed.clone();
        if body.contains_key("spend") && !edits.iter().any(|f| f == "spend") {
            edits.push("spend".into());
        }
        access::check_team_admin_member_key_update(state, &edits)?;
    }
    let owner = if acting_as_team_admin {
        Some(me)
    } else {
        row.user_id.as_deref()
    };
    for claimed in [owner, opt_str(body, "user_id")?.as_deref()]
        .into_iter()
        .flatten()
    {
        if claimed != me {
            return Err(access::forbidden(format!(
                "User can only create keys for themselves. Got user_id={claimed}, Your ID={me}"
            )));
        }
    }
    if let Some(t) = &team {
        access::require_team_key_right(auth, t, "/key/update")?;
    }
    if let Some(new_team) = opt_str(body, "team_id")?.filter(|t| Some(t) != row.team_id.as_ref()) {
        let target = state
            .store
            .get_team(&new_team)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Team not found for team_id={new_team}. Non-admin users cannot set keys to non-existent teams."
                ))
                .with_param("team_id")
            })?;
        access::require_team_key_right(auth, &target, "/key/update")?;
    }
    let budget_change = changed.iter().any(|f| f == "max_budget") || body.contains_key("spend");
    if budget_change {
        let route = "/key/update (max_budget/spend)";
        require_key_admin(auth, team.as_ref(), route)?;
    }
    Ok(())
}

pub async fn delete_key_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    delete(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn delete(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    access::gate(auth, "/key/delete", RouteClass::KeyManagement, false)?;
    let body = body_of(state, headers, body).await?;
    let keys = opt_strings(&body, "keys")?.unwrap_or_default();
    let aliases = opt_strings(&body, "key_aliases")?.unwrap_or_default();
    if keys.is_empty() && aliases.is_empty() {
        return Err(
            ApiError::bad_request("Pass 'keys' or 'key_aliases' to delete.").with_param("keys"),
        );
    }
    let mut tokens: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), token_of(k))).collect();
    for a in &aliases {
        let row = state.store.get_key_by_alias(a).await.map_err(store_err)?;
        let row = row.ok_or_else(|| {
            ApiError::not_found(format!("Key with alias '{a}' not found")).with_param("key_aliases")
        })?;
        tokens.push((a.clone(), row.token));
    }
    if !auth.is_admin {
        // Owners and admins of the key's team only; nothing is deleted unless every key may be.
        for (given, t) in &tokens {
            let Some(row) = state.store.get_key(t).await.map_err(store_err)? else {
                return Err(
                    ApiError::not_found(format!("Key not found: {given}")).with_param("keys")
                );
            };
            let team = key_team(state, &row).await?;
            if !may_modify(auth, &row, team.as_ref()) {
                return Err(access::forbidden(
                    "You are not authorized to delete this key",
                ));
            }
        }
    }
    let hashes: Vec<String> = tokens.iter().map(|(_, t)| t.clone()).collect();
    let deleted = state.store.delete_keys(&hashes).await.map_err(store_err)?;
    for (given, t) in &tokens {
        if !deleted.contains(t) {
            return Err(ApiError::not_found(format!("Key not found: {given}")).with_param("keys"));
        }
    }
    for t in &deleted {
        invalidate(state, t);
    }
    let passed: Vec<&String> = tokens.iter().map(|(g, _)| g).collect();
    Ok(Json(json!({"deleted_keys": passed})).into_response())
}

async fn set_blocked(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
    blocked: bool,
) -> ApiResult<Response> {
    let route = if blocked {
        "/key/block"
    } else {
        "/key/unblock"
    };
    access::gate(auth, route, RouteClass::KeyManagement, false)?;
    let body = body_of(state, headers, body).await?;
    let key = required_key(&body)?;
    let mut row = existing(state, &key).await?;
    if !auth.is_admin {
        let team = key_team(state, &row).await?;
        require_key_admin(auth, team.as_ref(), route)?;
    }
    row.blocked = Some(blocked);
    row.updated_at = Some(now());
    state.store.update_key(&row).await.map_err(store_err)?;
    invalidate(state, &row.token);
    Ok(Json(Value::Object(key_json(&row))).into_response())
}

pub async fn block_key_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    set_blocked(&state, &auth, &headers, body, true)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn unblock_key_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    set_blocked(&state, &auth, &headers, body, false)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn regenerate_key_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    regenerate(&state, &auth, &headers, body, None)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /key/{key}/regenerate`: `/key/regenerate` with the key taken from the path (a `key`
/// in the body wins, as in LiteLLM).
pub async fn regenerate_key_by_path_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    regenerate(&state, &auth, &headers, body, Some(key))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn regenerate(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
    path_key: Option<String>,
) -> ApiResult<Response> {
    access::gate(auth, "/key/regenerate", RouteClass::KeyManagement, false)?;
    let mut body = body_of(state, headers, body).await?;
    if let Some(k) = path_key {
        if body.get("key").is_none_or(Value::is_null) {
            body.insert("key".into(), Value::String(k));
        }
    }
    let key = required_key(&body)?;
    let old = existing(state, &key).await?;
    if !auth.is_admin {
        let team = key_team(state, &old).await?;
        if let Some(t) = &team {
            access::require_team_key_right(auth, t, "/key/regenerate")?;
        }
        if !may_modify(auth, &old, team.as_ref()) {
            return Err(access::forbidden(
                "You are not authorized to regenerate this key",
            ));
        }
        if opt_str(&body, "user_id")?.is_some_and(|u| Some(u.as_str()) != auth.user_id()) {
            return Err(access::forbidden(
                "Only a proxy admin can give a key to another user.",
            ));
        }
    }
    let raw = match opt_str(&body, "new_key")? {
        Some(k) if k.starts_with("sk-") && k.len() >= MIN_CUSTOM_KEY_LEN => k,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid new_key: must start with 'sk-' and be at least 16 characters.",
            )
            .with_param("new_key"))
        }
        None => new_key(),
    };
    check_caps(state, &body)?;
    let mut row = old.clone();
    row.token = hash_key(&raw);
    row.key_name = Some(key_name(&raw)).filter(|s| !s.is_empty());
    apply_fields(&mut row, &body, true)?;
    row.updated_at = Some(now());
    // New row first, then the old one goes: the alias is carried over.
    let alias = row.key_alias.take();
    state.store.insert_key(&row).await.map_err(store_err)?;
    state
        .store
        .delete_keys(std::slice::from_ref(&old.token))
        .await
        .map_err(store_err)?;
    row.key_alias = alias;
    state.store.update_key(&row).await.map_err(store_err)?;
    invalidate(state, &old.token);
    state.budgets.reset(&row.token, row.spend);
    Ok(created(&row, &raw))
}

#[derive(Debug, Deserialize)]
pub struct KeyListQuery {
    page: Option<i64>,
    size: Option<i64>,
    user_id: Option<String>,
    team_id: Option<String>,
    key_alias: Option<String>,
    key_hash: Option<String>,
    return_full_object: Option<bool>,
}

pub async fn list_keys_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<KeyListQuery>,
) -> Response {
    list(&state, &auth, q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn list(state: &AppState, auth: &AuthCtx, q: KeyListQuery) -> ApiResult<Response> {
    let (page, size) = super::page_bounds(q.page, q.size, "size", 10)?;
    let mut filter = KeyFilter {
        user_id: q.user_id,
        team_id: q.team_id,
        key_alias: q.key_alias,
        key_hash: q.key_hash.map(|k| token_of(&k)),
    };
    if !access::can_view_all(auth) {
        // Non-admins see only their own keys (LiteLLM's checks and messages).
        let no_user = || {
            access::forbidden(
                "You are not authorized to access this endpoint. No 'user_id' is associated with your API key.",
            )
            .with_param("user_id")
        };
        let me = auth.user_id().ok_or_else(no_user)?;
        let user = state
            .store
            .get_user(me)
            .await
            .map_err(store_err)?
            .ok_or_else(no_user)?;
        if filter.user_id.as_deref().is_some_and(|u| u != me) {
            return Err(
                access::forbidden("You are not authorized to check another user's keys")
                    .with_param("user_id"),
            );
        }
        if filter
            .team_id
            .as_ref()
            .is_some_and(|t| !user.teams.contains(t))
        {
            return Err(
                access::forbidden("You are not authorized to check this team's keys")
                    .with_param("team_id"),
            );
        }
        filter.user_id = Some(me.to_string());
    }
    let (rows, total) = state
        .store
        .list_keys(&filter, (page - 1) * size, size)
        .await
        .map_err(store_err)?;
    let keys: Vec<Value> = if q.return_full_object.unwrap_or(false) {
        rows.iter().map(|r| Value::Object(key_json(r))).collect()
    } else {
        rows.iter().map(|r| json!(r.token)).collect()
    };
    let total_pages = (total + size - 1) / size;
    Ok(Json(json!({"keys": keys, "total_count": total, "current_page": page, "total_pages": total_pages})).into_response())
}

/// `POST /key/health`: LiteLLM's check of the calling key. The only thing it checks is the
/// key's own logging callbacks (`metadata.logging`); this gateway sends no logs to such
/// callbacks, so a key that names any is reported unhealthy, saying why, and any other key is
/// healthy.
pub async fn key_health_handler(Extension(auth): Extension<AuthCtx>) -> Response {
    let logging = auth
        .key
        .as_ref()
        .and_then(|k| k.metadata.get("logging"))
        .filter(|l| !l.is_null());
    let Some(logging) = logging else {
        return Json(json!({"key": "healthy", "logging_callbacks": null})).into_response();
    };
    let callbacks: Vec<&str> = logging
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("callback_name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    Json(json!({
        "key": "unhealthy",
        "logging_callbacks": {
            "callbacks": callbacks,
            "status": "unhealthy",
            "details": format!(
                "Key-based logging callbacks are not supported by this gateway; no logs are sent to {callbacks:?}"
            ),
        },
    }))
    .into_response()
}

/// Query of `GET /key/aliases`.
#[derive(Debug, Deserialize)]
pub struct KeyAliasesQuery {
    page: Option<i64>,
    size: Option<i64>,
    search: Option<String>,
    team_id: Option<String>,
}

/// `GET /key/aliases`: the aliases of the keys the caller may see, alphabetically, one page at
/// a time (default 50). Admins see every key's; others the aliases of their own keys and of
/// their teams' keys. The admin UI's session keys are left out.
pub async fn key_aliases_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<KeyAliasesQuery>,
) -> Response {
    aliases(&state, &auth, q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn aliases(state: &AppState, auth: &AuthCtx, q: KeyAliasesQuery) -> ApiResult<Response> {
    access::gate(auth, "/key/aliases", RouteClass::KeyManagement, true)?;
    let (page, size) = super::page_bounds(q.page, q.size, "size", 50)?;
    let scope = if access::can_view_all(auth) {
        None
    } else {
        let user_id = auth.user_id().map(str::to_string);
        let teams = match &user_id {
            Some(u) => state
                .store
                .get_user(u)
                .await
                .map_err(store_err)?
                .map(|row| row.teams)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Some((user_id, teams))
    };
    let filter = AliasFilter {
        search: q.search.filter(|s| !s.is_empty()),
        team_id: q.team_id.filter(|t| !t.is_empty()),
        scope,
    };
    let (aliases, total) = state
        .store
        .key_aliases(&filter, (page - 1) * size, size)
        .await
        .map_err(store_err)?;
    let total_pages = (total + size - 1) / size;
    Ok(Json(json!({
        "aliases": aliases,
        "total_count": total,
        "current_page": page,
        "total_pages": total_pages,
        "size": size,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::error::{DatabaseError, ErrorKind};

    /// A foreign-key error as the Postgres driver reports it.
    #[derive(Debug)]
    struct FkError {
        message: &'static str,
        table: &'static str,
        constraint: &'static str,
    }

    impl std::fmt::Display for FkError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.message)
        }
    }

    impl std::error::Error for FkError {}

    impl DatabaseError for FkError {
        fn message(&self) -> &str {
            self.message
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn constraint(&self) -> Option<&str> {
            Some(self.constraint)
        }
        fn table(&self) -> Option<&str> {
            Some(self.table)
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::ForeignKeyViolation
        }
    }

    fn mapped(e: FkError) -> serde_json::Value {
        let err = store_err(StoreError::Db(sqlx::Error::Database(Box::new(e))));
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        err.to_json()
    }

    #[test]
    fn a_missing_referenced_row_is_a_400_naming_the_column() {
        let body = mapped(FkError {
            message:
                "insert or update on table \"LiteLLM_TeamTable\" violates foreign key constraint",
            table: "LiteLLM_TeamTable",
            constraint: "LiteLLM_TeamTable_organization_id_fkey",
        });
        assert_eq!(body["error"]["param"], "organization_id");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("'organization_id'")));
    }

    #[test]
    fn a_delete_of_a_referenced_row_is_a_400_naming_the_reference() {
        let body = mapped(FkError {
            message:
                "update or delete on table \"LiteLLM_UserTable\" violates foreign key constraint",
            table: "LiteLLM_InvitationLink",
            constraint: "LiteLLM_InvitationLink_created_by_fkey",
        });
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"LiteLLM_InvitationLink\".\"created_by\"")));
    }
}
