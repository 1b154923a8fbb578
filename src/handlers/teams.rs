//! Teams: `/team/new`, `/team/info`, `/team/update`, `/team/delete`, `/team/list`,
//! `/team/member_add`, `/team/member_delete`, `/team/block`, `/team/unblock`,
//! `/team/model/add`, `/team/model/delete`, on LiteLLM's `LiteLLM_TeamTable`.
//!
//! Membership is LiteLLM's: the team row's `members_with_roles` list of `{role, user_id,
//! user_email}` plus each member's `LiteLLM_UserTable.teams`; adding an unknown member creates
//! the user. Deleting a team deletes its keys; blocking it makes its keys answer 401 (checked
//! from the auth layer's key cache, no database round trip per request). Proxy-admin only, except `/team/info` for a
//! member of the team. Key-side checks (`team_id` must exist, key models within the team's)
//! live in `handlers::keys`. SQL stays in `store::teams`.

use super::keys::{
    body_of, field_error, key_json, opt_f64, opt_i64, opt_obj, opt_str, opt_strings, require_admin,
    store_err, ts,
};
use super::users::{new_user, user_json, MAX_LISTED_KEYS};
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::spend::{now, parse_duration};
use crate::state::AppState;
use crate::store::{KeyFilter, TeamRow, UserRow};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The team row as LiteLLM returns it.
pub(crate) fn team_json(t: &TeamRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("team_id".into(), json!(t.team_id));
    m.insert("team_alias".into(), json!(t.team_alias));
    m.insert("organization_id".into(), json!(t.organization_id));
    m.insert("admins".into(), json!(t.admins));
    m.insert("members".into(), json!(t.members));
    m.insert("members_with_roles".into(), t.members_with_roles.clone());
    m.insert("metadata".into(), t.metadata.clone());
    m.insert("max_budget".into(), json!(t.max_budget));
    m.insert("soft_budget".into(), json!(t.soft_budget));
    m.insert("spend".into(), json!(t.spend));
    m.insert("models".into(), json!(t.models));
    m.insert(
        "max_parallel_requests".into(),
        json!(t.max_parallel_requests),
    );
    m.insert("tpm_limit".into(), json!(t.tpm_limit));
    m.insert("rpm_limit".into(), json!(t.rpm_limit));
    m.insert("budget_duration".into(), json!(t.budget_duration));
    m.insert("budget_reset_at".into(), ts(t.budget_reset_at));
    m.insert("blocked".into(), json!(t.blocked));
    m.insert("model_spend".into(), t.model_spend.clone());
    m.insert("model_max_budget".into(), t.model_max_budget.clone());
    m.insert("created_at".into(), ts(t.created_at));
    m.insert("updated_at".into(), ts(t.updated_at));
    m
}

fn members(t: &TeamRow) -> &[Value] {
    t.members_with_roles.as_array().map_or(&[], Vec::as_slice)
}

fn is_member(t: &TeamRow, user_id: &str) -> bool {
    members(t)
        .iter()
        .any(|m| m.get("user_id").and_then(Value::as_str) == Some(user_id))
}

/// Adds `user` to `team` with `role` (no-op on the team side if already listed) and records
/// the team on the user's `teams`; both rows are written.
pub(crate) async fn join_team(
    state: &AppState,
    team: &mut TeamRow,
    user: &mut UserRow,
    role: &str,
) -> ApiResult<()> {
    if !is_member(team, &user.user_id) {
        let mut list = members(team).to_vec();
        list.push(json!({"role": role, "user_id": user.user_id, "user_email": user.user_email}));
        team.members_with_roles = Value::Array(list);
        team.updated_at = Some(now());
        state.store.update_team(team).await.map_err(store_err)?;
    }
    if !user.teams.contains(&team.team_id) {
        user.teams.push(team.team_id.clone());
        user.updated_at = Some(now());
        state.store.update_user(user).await.map_err(store_err)?;
    }
    Ok(())
}

/// Removes a user from the team row's member list (the user row is the caller's business).
pub(crate) async fn leave_team(
    state: &AppState,
    team: &mut TeamRow,
    user_id: &str,
) -> ApiResult<()> {
    let list: Vec<Value> = members(team)
        .iter()
        .filter(|m| m.get("user_id").and_then(Value::as_str) != Some(user_id))
        .cloned()
        .collect();
    team.members_with_roles = Value::Array(list);
    team.updated_at = Some(now());
    state.store.update_team(team).await.map_err(store_err)
}

/// A member object: `{"role": "admin"|"user", "user_id"?, "user_email"?}`.
fn parse_member(v: &Value) -> ApiResult<(Option<String>, Option<String>, String)> {
    let Value::Object(o) = v else {
        return Err(field_error("member", "an object", v));
    };
    let role = opt_str(o, "role")?.unwrap_or_else(|| "user".into());
    if role != "admin" && role != "user" {
        return Err(ApiError::bad_request(format!(
            "Invalid member role '{role}'. Use 'admin' or 'user'."
        ))
        .with_param("member"));
    }
    let user_id = opt_str(o, "user_id")?;
    let user_email = opt_str(o, "user_email")?;
    if user_id.is_none() && user_email.is_none() {
        return Err(
            ApiError::bad_request("Each member needs a 'user_id' or a 'user_email'.")
                .with_param("member"),
        );
    }
    Ok((user_id, user_email, role))
}

/// The user a member object names, created (as an `internal_user`) when unknown.
async fn member_user(
    state: &AppState,
    user_id: Option<String>,
    user_email: Option<String>,
) -> ApiResult<(UserRow, bool)> {
    let found = match (&user_id, &user_email) {
        (Some(id), _) => state.store.get_user(id).await.map_err(store_err)?,
        (None, Some(e)) => state.store.get_user_by_email(e).await.map_err(store_err)?,
        (None, None) => None,
    };
    if let Some(u) = found {
        return Ok((u, false));
    }
    let id = user_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let u = new_user(id, user_email);
    state.store.insert_user(&u).await.map_err(store_err)?;
    Ok((u, true))
}

/// Applies the settable fields of a new/update body to a team row.
fn apply_team_fields(t: &mut TeamRow, body: &Map<String, Value>) -> ApiResult<()> {
    if body.contains_key("team_alias") {
        t.team_alias = opt_str(body, "team_alias")?;
    }
    if body.contains_key("organization_id") {
        // An empty string unsets it, as in LiteLLM.
        t.organization_id = opt_str(body, "organization_id")?.filter(|o| !o.is_empty());
    }
    if let Some(v) = opt_strings(body, "models")? {
        t.models = v;
    }
    if body.contains_key("max_budget") {
        t.max_budget = opt_f64(body, "max_budget")?;
    }
    if body.contains_key("soft_budget") {
        t.soft_budget = opt_f64(body, "soft_budget")?;
    }
    if let Some(v) = opt_f64(body, "spend")? {
        t.spend = v;
    }
    if let Some(d) = opt_str(body, "budget_duration")? {
        let dur = parse_duration(&d).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid budget_duration '{d}'."))
                .with_param("budget_duration")
        })?;
        t.budget_duration = Some(d);
        t.budget_reset_at = Some(now() + dur);
    }
    if let Some(v) = opt_obj(body, "metadata")? {
        t.metadata = v;
    }
    if let Some(v) = opt_obj(body, "model_max_budget")? {
        t.model_max_budget = v;
    }
    for (f, slot) in [
        ("tpm_limit", &mut t.tpm_limit),
        ("rpm_limit", &mut t.rpm_limit),
        ("max_parallel_requests", &mut t.max_parallel_requests),
    ] {
        if body.contains_key(f) {
            *slot = opt_i64(body, f)?;
        }
    }
    match body.get("blocked") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => t.blocked = *b,
        Some(v) => return Err(field_error("blocked", "a boolean", v)),
    }
    Ok(())
}

/// A team's organization must exist (LiteLLM checks it, and its schema has a foreign key for
/// it): 400 on `/team/new`, 404 on `/team/update`, as LiteLLM answers.
async fn check_organization(state: &AppState, org: Option<&str>, new: bool) -> ApiResult<()> {
    let Some(org) = org else { return Ok(()) };
    if state
        .store
        .organization_exists(org)
        .await
        .map_err(store_err)?
    {
        return Ok(());
    }
    let err = if new {
        ApiError::bad_request(format!("Organization not found for organization_id={org}"))
    } else {
        ApiError::not_found(format!(
            "Organization not found, passed organization_id={org}"
        ))
    };
    Err(err.with_param("organization_id"))
}

fn required_team_id(body: &Map<String, Value>) -> ApiResult<String> {
    opt_str(body, "team_id")?.ok_or_else(|| {
        ApiError::bad_request("Missing required field: 'team_id'.").with_param("team_id")
    })
}

fn team_not_found(team_id: &str) -> ApiError {
    ApiError::not_found(format!("Team not found, passed team_id={team_id}")).with_param("team_id")
}

async fn existing(state: &AppState, team_id: &str) -> ApiResult<TeamRow> {
    state
        .store
        .get_team(team_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| team_not_found(team_id))
}

/// Drops this replica's cached keys of a team, so a block or unblock applies at once (other
/// replicas converge within `user_api_key_cache_ttl`).
fn forget_team_keys(state: &AppState, team_id: &str) {
    state
        .keys
        .retain(|_, c| c.row.team_id.as_deref() != Some(team_id));
}

fn respond(v: Value) -> Response {
    Json(v).into_response()
}

macro_rules! body_handler {
    ($name:ident, $inner:ident) => {
        pub async fn $name(
            State(state): State<AppState>,
            Extension(auth): Extension<AuthCtx>,
            headers: HeaderMap,
            body: Body,
        ) -> Response {
            match body_of(&state, &headers, body).await {
                Ok(b) => $inner(&state, &auth, b)
                    .await
                    .unwrap_or_else(IntoResponse::into_response),
                Err(e) => e.into_response(),
            }
        }
    };
}

body_handler!(new_team_handler, create);
body_handler!(update_team_handler, update);
body_handler!(delete_team_handler, delete);
body_handler!(member_add_handler, member_add);
body_handler!(member_delete_handler, member_delete);
body_handler!(block_team_handler, block);
body_handler!(unblock_team_handler, unblock);
body_handler!(model_add_handler, model_add);
body_handler!(model_delete_handler, model_delete);

async fn create(state: &AppState, auth: &AuthCtx, body: Map<String, Value>) -> ApiResult<Response> {
    require_admin(auth, "/team/new")?;
    let team_id = opt_str(&body, "team_id")?.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if state
        .store
        .get_team(&team_id)
        .await
        .map_err(store_err)?
        .is_some()
    {
        return Err(ApiError::bad_request(format!(
            "Team id = {team_id} already exists. Please use a different team id."
        ))
        .with_param("team_id"));
    }
    let t = now();
    let mut team = TeamRow {
        team_id,
        members_with_roles: json!([]),
        metadata: json!({}),
        model_spend: json!({}),
        model_max_budget: json!({}),
        created_at: Some(t),
        updated_at: Some(t),
        ..TeamRow::default()
    };
    apply_team_fields(&mut team, &body)?;
    check_organization(state, team.organization_id.as_deref(), true).await?;
    let wanted = match body.get("members_with_roles") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(parse_member).collect::<ApiResult<Vec<_>>>()?,
        Some(v) => return Err(field_error("members_with_roles", "a list of members", v)),
    };
    state.store.insert_team(&team).await.map_err(store_err)?;
    for (user_id, user_email, role) in wanted {
        let (mut user, _) = member_user(state, user_id, user_email).await?;
        join_team(state, &mut team, &mut user, &role).await?;
    }
    Ok(respond(Value::Object(team_json(&team))))
}

#[derive(Debug, Deserialize)]
pub struct TeamInfoQuery {
    team_id: Option<String>,
}

pub async fn team_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<TeamInfoQuery>,
) -> Response {
    info(&state, &auth, q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn info(state: &AppState, auth: &AuthCtx, q: TeamInfoQuery) -> ApiResult<Response> {
    let team_id = q.team_id.ok_or_else(|| {
        ApiError::bad_request("Pass the team to look up: /team/info?team_id=<id>")
            .with_param("team_id")
    })?;
    let team = state.store.get_team(&team_id).await.map_err(store_err)?;
    let own = auth.key.as_ref().and_then(|k| k.user_id.clone());
    let member = match (&team, &own) {
        (Some(t), Some(u)) => is_member(t, u),
        _ => false,
    };
    if !auth.is_admin && !member {
        require_admin(auth, "/team/info")?;
    }
    let team = team.ok_or_else(|| team_not_found(&team_id))?;
    let filter = KeyFilter {
        team_id: Some(team_id.clone()),
        ..KeyFilter::default()
    };
    let (keys, _) = state
        .store
        .list_keys(&filter, 0, MAX_LISTED_KEYS)
        .await
        .map_err(store_err)?;
    let keys: Vec<Value> = keys.iter().map(|k| Value::Object(key_json(k))).collect();
    Ok(respond(json!({
        "team_id": team_id,
        "team_info": team_json(&team),
        "keys": keys,
        "team_memberships": [],
    })))
}

async fn update(state: &AppState, auth: &AuthCtx, body: Map<String, Value>) -> ApiResult<Response> {
    require_admin(auth, "/team/update")?;
    let team_id = required_team_id(&body)?;
    let mut team = existing(state, &team_id).await?;
    apply_team_fields(&mut team, &body)?;
    if body.contains_key("organization_id") {
        check_organization(state, team.organization_id.as_deref(), false).await?;
    }
    team.updated_at = Some(now());
    state.store.update_team(&team).await.map_err(store_err)?;
    forget_team_keys(state, &team_id);
    Ok(respond(
        json!({"team_id": team_id, "data": team_json(&team)}),
    ))
}

async fn delete(state: &AppState, auth: &AuthCtx, body: Map<String, Value>) -> ApiResult<Response> {
    require_admin(auth, "/team/delete")?;
    let ids = opt_strings(&body, "team_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(
            ApiError::bad_request("Pass 'team_ids', the teams to delete.").with_param("team_ids"),
        );
    }
    let mut teams = Vec::with_capacity(ids.len());
    for id in &ids {
        teams.push(existing(state, id).await?);
    }
    let (deleted, tokens) = state.store.delete_teams(&ids).await.map_err(store_err)?;
    for t in &tokens {
        state.keys.remove(t);
    }
    for team in &teams {
        for m in members(team) {
            let Some(uid) = m.get("user_id").and_then(Value::as_str) else {
                continue;
            };
            if let Some(mut u) = state.store.get_user(uid).await.map_err(store_err)? {
                u.teams.retain(|t| t != &team.team_id);
                u.updated_at = Some(now());
                state.store.update_user(&u).await.map_err(store_err)?;
            }
        }
    }
    Ok(respond(
        json!({"deleted_teams": deleted, "deleted_keys": tokens.len()}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct TeamListQuery {
    user_id: Option<String>,
    organization_id: Option<String>,
}

pub async fn list_teams_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<TeamListQuery>,
) -> Response {
    list(&state, &auth, q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn list(state: &AppState, auth: &AuthCtx, q: TeamListQuery) -> ApiResult<Response> {
    require_admin(auth, "/team/list")?;
    let teams = state.store.list_teams().await.map_err(store_err)?;
    let out: Vec<Value> = teams
        .iter()
        .filter(|t| q.user_id.as_deref().is_none_or(|u| is_member(t, u)))
        .filter(|t| {
            q.organization_id
                .as_deref()
                .is_none_or(|o| t.organization_id.as_deref() == Some(o))
        })
        .map(|t| Value::Object(team_json(t)))
        .collect();
    Ok(respond(Value::Array(out)))
}

async fn member_add(
    state: &AppState,
    auth: &AuthCtx,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    require_admin(auth, "/team/member_add")?;
    let team_id = required_team_id(&body)?;
    let mut team = existing(state, &team_id).await?;
    let wanted = match body.get("member") {
        Some(Value::Array(a)) => a.iter().map(parse_member).collect::<ApiResult<Vec<_>>>()?,
        Some(v @ Value::Object(_)) => vec![parse_member(v)?],
        Some(v) => {
            return Err(field_error(
                "member",
                "a member object or a list of them",
                v,
            ))
        }
        None => {
            return Err(
                ApiError::bad_request("Missing required field: 'member'.").with_param("member")
            )
        }
    };
    // Duplicates are refused before anything is written.
    for (user_id, user_email, _) in &wanted {
        let dup = members(&team).iter().any(|m| {
            (user_id.is_some() && m.get("user_id").and_then(Value::as_str) == user_id.as_deref())
                || (user_id.is_none()
                    && user_email.is_some()
                    && m.get("user_email").and_then(Value::as_str) == user_email.as_deref())
        });
        if dup {
            let who = user_id
                .as_deref()
                .or(user_email.as_deref())
                .unwrap_or_default();
            return Err(ApiError::bad_request(format!(
                "User={who} is already a member of team={team_id}."
            ))
            .with_param("member"));
        }
    }
    let mut updated = Vec::with_capacity(wanted.len());
    for (user_id, user_email, role) in wanted {
        let (mut user, _) = member_user(state, user_id, user_email).await?;
        if is_member(&team, &user.user_id) {
            return Err(ApiError::bad_request(format!(
                "User={} is already a member of team={team_id}.",
                user.user_id
            ))
            .with_param("member"));
        }
        join_team(state, &mut team, &mut user, &role).await?;
        updated.push(Value::Object(user_json(&user)));
    }
    let mut out = team_json(&team);
    out.insert("updated_users".into(), Value::Array(updated));
    out.insert("updated_team_memberships".into(), json!([]));
    Ok(respond(Value::Object(out)))
}

async fn member_delete(
    state: &AppState,
    auth: &AuthCtx,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    require_admin(auth, "/team/member_delete")?;
    let team_id = required_team_id(&body)?;
    let mut team = existing(state, &team_id).await?;
    let user_id = match (opt_str(&body, "user_id")?, opt_str(&body, "user_email")?) {
        (Some(id), _) => Some(id),
        (None, Some(email)) => members(&team)
            .iter()
            .find(|m| m.get("user_email").and_then(Value::as_str) == Some(email.as_str()))
            .and_then(|m| m.get("user_id").and_then(Value::as_str).map(String::from)),
        (None, None) => {
            return Err(ApiError::bad_request(
                "Pass 'user_id' or 'user_email' of the member to remove.",
            )
            .with_param("user_id"))
        }
    };
    let user_id = user_id.filter(|u| is_member(&team, u)).ok_or_else(|| {
        ApiError::bad_request(format!("User is not a member of team={team_id}."))
            .with_param("user_id")
    })?;
    leave_team(state, &mut team, &user_id).await?;
    if let Some(mut u) = state.store.get_user(&user_id).await.map_err(store_err)? {
        u.teams.retain(|t| t != &team_id);
        u.updated_at = Some(now());
        state.store.update_user(&u).await.map_err(store_err)?;
    }
    Ok(respond(Value::Object(team_json(&team))))
}

async fn set_blocked(
    state: &AppState,
    auth: &AuthCtx,
    body: Map<String, Value>,
    blocked: bool,
) -> ApiResult<Response> {
    require_admin(
        auth,
        if blocked {
            "/team/block"
        } else {
            "/team/unblock"
        },
    )?;
    let team_id = required_team_id(&body)?;
    let mut team = existing(state, &team_id).await?;
    team.blocked = blocked;
    team.updated_at = Some(now());
    state.store.update_team(&team).await.map_err(store_err)?;
    forget_team_keys(state, &team_id);
    Ok(respond(Value::Object(team_json(&team))))
}

async fn block(state: &AppState, auth: &AuthCtx, body: Map<String, Value>) -> ApiResult<Response> {
    set_blocked(state, auth, body, true).await
}

async fn unblock(
    state: &AppState,
    auth: &AuthCtx,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    set_blocked(state, auth, body, false).await
}

async fn change_models(
    state: &AppState,
    auth: &AuthCtx,
    body: Map<String, Value>,
    add: bool,
) -> ApiResult<Response> {
    require_admin(
        auth,
        if add {
            "/team/model/add"
        } else {
            "/team/model/delete"
        },
    )?;
    let team_id = required_team_id(&body)?;
    let models = opt_strings(&body, "models")?
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("Missing required field: 'models'.").with_param("models")
        })?;
    let mut team = existing(state, &team_id).await?;
    if add {
        for m in models {
            if !team.models.contains(&m) {
                team.models.push(m);
            }
        }
    } else {
        team.models.retain(|m| !models.contains(m));
    }
    team.updated_at = Some(now());
    state.store.update_team(&team).await.map_err(store_err)?;
    Ok(respond(Value::Object(team_json(&team))))
}

async fn model_add(
    state: &AppState,
    auth: &AuthCtx,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    change_models(state, auth, body, true).await
}

async fn model_delete(
    state: &AppState,
    auth: &AuthCtx,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    change_models(state, auth, body, false).await
}
