//! Internal users: `/user/new`, `/user/info`, `/user/update`, `/user/delete`, `/user/list`, on
//! LiteLLM's `LiteLLM_UserTable` with its field names and defaults.
//!
//! `/user/new` mints a key for the user unless `auto_create_key` is false (LiteLLM's default is
//! to mint one) and joins the teams listed in `teams`. Deleting a user deletes their keys and
//! their team memberships. All routes are proxy-admin only, except `/user/info` on oneself.
//! SQL stays in `store::users`; request parsing reuses the `/key/*` field readers.

use super::access;
use super::keys::{
    body_of, created_json, field_error, key_json, mint_key, opt_f64, opt_i64, opt_obj, opt_str,
    opt_strings, require_admin, require_admin_view, store_err, ts,
};
use super::teams::{join_team, leave_team, team_json};
use crate::config::LitellmSettings;
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::spend::{now, parse_duration};
use crate::state::AppState;
use crate::store::{new_budget, BudgetRow, KeyFilter, KeyRow, UserFilter, UserRow};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// LiteLLM's user roles (`user_role`).
const USER_ROLES: [&str; 7] = [
    "proxy_admin",
    "proxy_admin_viewer",
    "org_admin",
    "internal_user",
    "internal_user_viewer",
    "team",
    "customer",
];

/// Most keys listed by `/user/info` and `/team/info` (an admin view, not a paginated list).
pub(crate) const MAX_LISTED_KEYS: i64 = 1000;

/// Fields of `/user/new` that go to the auto-created key rather than the user row.
const KEY_FIELDS: [&str; 9] = [
    "key_alias",
    "duration",
    "models",
    "aliases",
    "config",
    "permissions",
    "key_type",
    "allowed_cache_controls",
    "allowed_routes",
];

/// The user row as LiteLLM returns it.
pub(crate) fn user_json(u: &UserRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("user_id".into(), json!(u.user_id));
    m.insert("user_alias".into(), json!(u.user_alias));
    m.insert("user_email".into(), json!(u.user_email));
    m.insert("user_role".into(), json!(u.user_role));
    m.insert("team_id".into(), json!(u.team_id));
    m.insert("organization_id".into(), json!(u.organization_id));
    m.insert("teams".into(), json!(u.teams));
    m.insert("max_budget".into(), json!(u.max_budget));
    m.insert("spend".into(), json!(u.spend));
    m.insert("models".into(), json!(u.models));
    m.insert("metadata".into(), u.metadata.clone());
    m.insert(
        "max_parallel_requests".into(),
        json!(u.max_parallel_requests),
    );
    m.insert("tpm_limit".into(), json!(u.tpm_limit));
    m.insert("rpm_limit".into(), json!(u.rpm_limit));
    m.insert("budget_duration".into(), json!(u.budget_duration));
    m.insert("budget_reset_at".into(), ts(u.budget_reset_at));
    m.insert("model_spend".into(), u.model_spend.clone());
    m.insert("model_max_budget".into(), u.model_max_budget.clone());
    m.insert("created_at".into(), ts(u.created_at));
    m.insert("updated_at".into(), ts(u.updated_at));
    m
}

/// A new user row with LiteLLM's defaults.
pub(crate) fn new_user(user_id: String, user_email: Option<String>) -> UserRow {
    let t = now();
    UserRow {
        user_id,
        user_email,
        user_role: Some("internal_user".into()),
        metadata: json!({}),
        model_spend: json!({}),
        model_max_budget: json!({}),
        created_at: Some(t),
        updated_at: Some(t),
        ..UserRow::default()
    }
}

/// Applies the settable fields of a new/update body to a user row.
fn apply_user_fields(u: &mut UserRow, body: &Map<String, Value>) -> ApiResult<()> {
    if body.contains_key("user_email") {
        u.user_email = opt_str(body, "user_email")?;
    }
    if body.contains_key("user_alias") {
        u.user_alias = opt_str(body, "user_alias")?;
    }
    if let Some(r) = opt_str(body, "user_role")? {
        if !USER_ROLES.contains(&r.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Invalid user_role '{r}'. Use one of: {}.",
                USER_ROLES.join(", ")
            ))
            .with_param("user_role"));
        }
        u.user_role = Some(r);
    }
    if body.contains_key("max_budget") {
        u.max_budget = opt_f64(body, "max_budget")?;
    }
    if let Some(v) = opt_f64(body, "spend")? {
        u.spend = v;
    }
    if let Some(d) = opt_str(body, "budget_duration")? {
        let dur = parse_duration(&d).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid budget_duration '{d}'."))
                .with_param("budget_duration")
        })?;
        u.budget_duration = Some(d);
        u.budget_reset_at = Some(now() + dur);
    }
    if let Some(v) = opt_strings(body, "models")? {
        u.models = v;
    }
    if let Some(v) = opt_obj(body, "metadata")? {
        u.metadata = v;
    }
    if let Some(v) = super::keys::opt_model_max_budget(body)? {
        u.model_max_budget = v;
    }
    for (f, slot) in [
        ("tpm_limit", &mut u.tpm_limit),
        ("rpm_limit", &mut u.rpm_limit),
        ("max_parallel_requests", &mut u.max_parallel_requests),
    ] {
        if body.contains_key(f) {
            *slot = opt_i64(body, f)?;
        }
    }
    Ok(())
}

/// Fields of LiteLLM's `/user/new` request that default to a value rather than null: a
/// default user parameter never replaces these (LiteLLM fills only absent or null fields, and
/// an empty `models`).
const NON_NULL_USER_FIELDS: [&str; 7] = [
    "spend",
    "metadata",
    "allowed_cache_controls",
    "config",
    "permissions",
    "model_max_budget",
    "aliases",
];

/// LiteLLM's defaults for new internal users, from `litellm_settings`, applied to a `/user/new`
/// body: `default_internal_user_params` (all but `available_teams`) fills the fields the body
/// leaves out or null, and an empty `models`, unless the body asks for a proxy admin; a body
/// asking for `internal_user` also gets `max_internal_user_budget` and
/// `internal_user_budget_duration` when it sets no budget or duration of its own.
fn apply_new_user_defaults(settings: &LitellmSettings, body: &mut Map<String, Value>) {
    let requested_role = body.get("user_role").and_then(Value::as_str);
    let internal_user = requested_role == Some("internal_user");
    if requested_role != Some("proxy_admin") {
        for (k, v) in settings.default_internal_user_params.iter().flatten() {
            let unset = match body.get(k.as_str()) {
                None => !NON_NULL_USER_FIELDS.contains(&k.as_str()),
                Some(Value::Null) => true,
                Some(Value::Array(a)) => k == "models" && a.is_empty(),
                Some(_) => false,
            };
            if k != "available_teams" && unset {
                body.insert(k.clone(), v.clone());
            }
        }
    }
    if internal_user {
        let defaults = [
            (
                "max_budget",
                settings.max_internal_user_budget.map(Value::from),
            ),
            (
                "budget_duration",
                settings
                    .internal_user_budget_duration
                    .clone()
                    .map(Value::from),
            ),
        ];
        for (field, v) in defaults {
            if let Some(v) = v.filter(|_| body.get(field).is_none_or(Value::is_null)) {
                body.insert(field.into(), v);
            }
        }
    }
}

/// One entry of `/user/new`'s `teams`: team id, role, `max_budget_in_team`.
type TeamEntry = (String, String, Option<f64>);

/// `teams` of `/user/new`: team ids, or `{"team_id", "user_role", "max_budget_in_team"}` objects.
fn parse_teams(body: &Map<String, Value>) -> ApiResult<Vec<TeamEntry>> {
    let Some(v) = body.get("teams").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = v else {
        return Err(field_error("teams", "a list", v));
    };
    items
        .iter()
        .map(|t| match t {
            Value::String(id) => Ok((id.clone(), "user".to_string(), None)),
            Value::Object(o) => {
                let id = opt_str(o, "team_id")?
                    .ok_or_else(|| field_error("teams", "objects with a team_id", t))?;
                let role = opt_str(o, "user_role")?.unwrap_or_else(|| "user".into());
                Ok((id, role, opt_f64(o, "max_budget_in_team")?))
            }
            other => Err(field_error("teams", "team ids or objects", other)),
        })
        .collect()
}

fn caller_user_id(auth: &AuthCtx) -> Option<String> {
    auth.key.as_ref().and_then(|k| k.user_id.clone())
}

pub async fn new_user_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    create(&state, &auth, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn create(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_admin(auth, "/user/new")?;
    let mut body = body_of(state, headers, body).await?;
    apply_new_user_defaults(&state.loaded.config.litellm_settings, &mut body);
    let user_id = opt_str(&body, "user_id")?.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut user = new_user(user_id.clone(), None);
    apply_user_fields(&mut user, &body)?;
    let teams = parse_teams(&body)?;
    // Every listed team must exist before anything is written.
    let mut team_rows = Vec::with_capacity(teams.len());
    for (team_id, role, max_budget_in_team) in &teams {
        let team = state
            .store
            .get_team(team_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Team doesn't exist in db. Team={team_id}. Create team via `/team/new` call."
                ))
                .with_param("teams")
            })?;
        let budget = max_budget_in_team.map(|max| BudgetRow {
            max_budget: Some(max),
            ..new_budget(&super::keys::creator(auth), now())
        });
        team_rows.push((team, role.clone(), budget));
    }
    state.store.insert_user(&user).await.map_err(store_err)?;
    for (mut team, role, budget) in team_rows {
        join_team(state, &mut team, &mut user, &role, budget).await?;
    }

    let auto_key = match body.get("auto_create_key") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(field_error("auto_create_key", "a boolean", v)),
    };
    let mut out = Map::new();
    if auto_key {
        let mut key_body: Map<String, Value> = KEY_FIELDS
            .iter()
            .filter_map(|f| body.get(*f).map(|v| (f.to_string(), v.clone())))
            .collect();
        key_body.insert("user_id".into(), json!(user.user_id));
        match mint_key(state, auth, &key_body).await {
            Ok((row, raw)) => out = created_json(&row, &raw),
            Err(e) => {
                // No half-created user: the key's error (e.g. a duplicate alias) is the answer.
                let _ = state
                    .store
                    .delete_users(std::slice::from_ref(&user.user_id))
                    .await;
                return Err(e);
            }
        }
    } else {
        out.insert("key".into(), Value::Null);
    }
    // User fields win over the key's same-named ones (models, max_budget, metadata...).
    out.extend(user_json(&user));
    Ok(Json(Value::Object(out)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct UserInfoQuery {
    user_id: Option<String>,
}

pub async fn user_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<UserInfoQuery>,
) -> Response {
    info(&state, &auth, q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn info(state: &AppState, auth: &AuthCtx, q: UserInfoQuery) -> ApiResult<Response> {
    let own = caller_user_id(auth);
    let user_id = q.user_id.or_else(|| own.clone()).ok_or_else(|| {
        ApiError::bad_request("Pass the user to look up: /user/info?user_id=<id>")
            .with_param("user_id")
    })?;
    if !access::can_view_all(auth) && own.as_deref() != Some(user_id.as_str()) {
        return Err(access::forbidden(format!(
            "key not allowed to access this user's info. user_id={user_id}, key's user_id={}",
            own.as_deref().unwrap_or("None")
        )));
    }
    let user = state.store.get_user(&user_id).await.map_err(store_err)?;
    let keys = user_keys(state, &user_id).await?;
    // A user id that only appears on keys (LiteLLM does not create a row for those) still
    // answers, with `user_info: null`; a wholly unknown id is a 404.
    if user.is_none() && keys.is_empty() {
        return Err(ApiError::not_found(format!("User={user_id} not found")).with_param("user_id"));
    }
    let mut teams = Vec::new();
    if let Some(u) = &user {
        for t in &u.teams {
            if let Some(team) = state.store.get_team(t).await.map_err(store_err)? {
                teams.push(Value::Object(team_json(&team)));
            }
        }
    }
    let keys: Vec<Value> = keys.iter().map(|k| Value::Object(key_json(k))).collect();
    Ok(Json(json!({
        "user_id": user_id,
        "user_info": user.as_ref().map(|u| Value::Object(user_json(u))),
        "keys": keys,
        "teams": teams,
    }))
    .into_response())
}

async fn user_keys(state: &AppState, user_id: &str) -> ApiResult<Vec<KeyRow>> {
    let filter = KeyFilter {
        user_id: Some(user_id.to_string()),
        ..KeyFilter::default()
    };
    let (rows, _) = state
        .store
        .list_keys(&filter, 0, MAX_LISTED_KEYS)
        .await
        .map_err(store_err)?;
    Ok(rows)
}

pub async fn update_user_handler(
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
    require_admin(auth, "/user/update")?;
    let body = body_of(state, headers, body).await?;
    let user = match (opt_str(&body, "user_id")?, opt_str(&body, "user_email")?) {
        (Some(id), _) => state.store.get_user(&id).await.map_err(store_err)?,
        (None, Some(email)) => state
            .store
            .get_user_by_email(&email)
            .await
            .map_err(store_err)?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "Pass 'user_id' or 'user_email' of the user to update.",
            )
            .with_param("user_id"))
        }
    };
    let mut user = user.ok_or_else(|| {
        ApiError::not_found("User not found; create it with /user/new first.").with_param("user_id")
    })?;
    let mut fields = body.clone();
    // `user_email` selects the user when `user_id` is absent; it is not an update then.
    if !body.contains_key("user_id") {
        fields.remove("user_email");
    }
    apply_user_fields(&mut user, &fields)?;
    user.updated_at = Some(now());
    state.store.update_user(&user).await.map_err(store_err)?;
    // Limits are cached with each key: drop this user's keys so new limits apply at once.
    state
        .keys
        .retain(|_, c| c.row.user_id.as_deref() != Some(user.user_id.as_str()));
    Ok(Json(Value::Object(user_json(&user))).into_response())
}

pub async fn delete_user_handler(
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
    require_admin(auth, "/user/delete")?;
    let body = body_of(state, headers, body).await?;
    let ids = opt_strings(&body, "user_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(
            ApiError::bad_request("Pass 'user_ids', the users to delete.").with_param("user_ids"),
        );
    }
    let mut users = Vec::with_capacity(ids.len());
    for id in &ids {
        let u = state.store.get_user(id).await.map_err(store_err)?;
        users.push(u.ok_or_else(|| {
            ApiError::not_found(format!("User={id} not found")).with_param("user_ids")
        })?);
    }
    let (deleted, tokens) = state.store.delete_users(&ids).await.map_err(store_err)?;
    for t in &tokens {
        state.keys.remove(t);
    }
    // Memberships go too, so team rows do not list deleted users.
    for u in &users {
        for team_id in &u.teams {
            if let Some(mut team) = state.store.get_team(team_id).await.map_err(store_err)? {
                leave_team(state, &mut team, &u.user_id).await?;
            }
        }
    }
    Ok(Json(json!({"deleted_users": deleted, "deleted_keys": tokens.len()})).into_response())
}

#[derive(Debug, Deserialize)]
pub struct UserListQuery {
    page: Option<i64>,
    page_size: Option<i64>,
    role: Option<String>,
    user_ids: Option<String>,
    user_email: Option<String>,
}

pub async fn list_users_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<UserListQuery>,
) -> Response {
    list(&state, &auth, q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn list(state: &AppState, auth: &AuthCtx, q: UserListQuery) -> ApiResult<Response> {
    require_admin_view(auth, "/user/list")?;
    let (page, page_size) = super::page_bounds(q.page, q.page_size, "page_size", 25)?;
    let filter = UserFilter {
        role: q.role,
        user_ids: q
            .user_ids
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        user_email: q.user_email,
    };
    let (rows, total) = state
        .store
        .list_users(&filter, (page - 1) * page_size, page_size)
        .await
        .map_err(store_err)?;
    let users: Vec<Value> = rows.iter().map(|u| Value::Object(user_json(u))).collect();
    let total_pages = (total + page_size - 1) / page_size;
    Ok(Json(json!({
        "users": users,
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": total_pages,
    }))
    .into_response())
}
