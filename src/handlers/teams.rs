//! Teams: `/team/new`, `/team/info`, `/team/update`, `/team/delete`, `/team/list`,
//! `/v2/team/list`, `/team/member_add`, `/team/member_delete`, `/team/member_update`,
//! `/team/block`, `/team/unblock`, `/team/model/add`, `/team/model/delete`, on LiteLLM's
//! `LiteLLM_TeamTable`, `LiteLLM_TeamMembership` and (for per-member budgets)
//! `LiteLLM_BudgetTable`.
//!
//! Membership is LiteLLM's: the team row's `members_with_roles` list of `{role, user_id,
//! user_email}`, each member's `LiteLLM_UserTable.teams`, and one `LiteLLM_TeamMembership` row
//! per member holding the member's spend in the team and, through `budget_id`, the member's
//! `max_budget_in_team` / `rpm_limit` / `tpm_limit` (enforced from the auth layer's key cache).
//! Adding an unknown member creates the user; removing a member deletes the member's keys of
//! the team. Deleting a team deletes its keys; blocking it makes its keys answer 401.
//!
//! Rights (see `handlers::access`): proxy admins do everything; a team admin manages the
//! team's roster and member budgets and, when the proxy grants it, some team fields; members
//! read their team; everyone else gets LiteLLM's 401/403. SQL stays in `store`.

use super::access::{self, RouteClass};
use super::keys::{
    body_of, creator, field_error, key_json, opt_f64, opt_i64, opt_obj, opt_str, opt_strings,
    require_admin, store_err, ts,
};
use super::users::{new_user, user_json, MAX_LISTED_KEYS};
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::spend::{now, parse_duration};
use crate::state::AppState;
use crate::store::{
    new_budget, BudgetPatch, BudgetRow, KeyFilter, MembershipRow, RosterChange, TeamListFilter,
    TeamRow, TeamSort, UserRow,
};
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

/// A member budget as LiteLLM returns it (`litellm_budget_table`).
pub(crate) fn budget_json(b: &BudgetRow) -> Value {
    json!({
        "budget_id": b.budget_id,
        "soft_budget": b.soft_budget,
        "max_budget": b.max_budget,
        "max_parallel_requests": b.max_parallel_requests,
        "tpm_limit": b.tpm_limit,
        "rpm_limit": b.rpm_limit,
        "tpd_limit": b.tpd_limit,
        "model_max_budget": b.model_max_budget,
        "budget_duration": b.budget_duration,
        "allowed_models": b.allowed_models,
        "temp_budget_increase": b.temp_budget_increase,
        "temp_budget_expiry": ts(b.temp_budget_expiry),
        "budget_reset_at": ts(b.budget_reset_at),
        "created_at": ts(b.created_at),
    })
}

/// A `LiteLLM_TeamMembership` row as LiteLLM returns it, with its budget.
pub(crate) fn membership_json(m: &MembershipRow) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("user_id".into(), json!(m.user_id));
    o.insert("team_id".into(), json!(m.team_id));
    o.insert("budget_id".into(), json!(m.budget_id));
    o.insert("spend".into(), json!(m.spend));
    o.insert("total_spend".into(), json!(m.total_spend));
    o.insert(
        "litellm_budget_table".into(),
        m.budget.as_ref().map_or(Value::Null, budget_json),
    );
    o
}

fn members(t: &TeamRow) -> &[Value] {
    t.members_with_roles.as_array().map_or(&[], Vec::as_slice)
}

fn is_member(t: &TeamRow, user_id: &str) -> bool {
    members(t)
        .iter()
        .any(|m| m.get("user_id").and_then(Value::as_str) == Some(user_id))
}

/// Drops this replica's cached keys of some members of a team, so their membership budget
/// and limits are read again (other replicas converge within `user_api_key_cache_ttl`).
fn forget_member_keys(state: &AppState, team_id: &str, users: &[String]) {
    state.keys.retain(|_, c| {
        !(c.row.team_id.as_deref() == Some(team_id)
            && c.row.user_id.as_ref().is_some_and(|u| users.contains(u)))
    });
}

/// Adds `user` (whose row exists) to `team` with `role` and records the team on the user's
/// `teams`, with a membership row (linked to `budget`, created with it, when given); one
/// transaction.
pub(crate) async fn join_team(
    state: &AppState,
    team: &mut TeamRow,
    user: &mut UserRow,
    role: &str,
    budget: Option<BudgetRow>,
) -> ApiResult<()> {
    if !is_member(team, &user.user_id) {
        let mut list = members(team).to_vec();
        list.push(json!({"role": role, "user_id": user.user_id, "user_email": user.user_email}));
        team.members_with_roles = Value::Array(list);
        team.updated_at = Some(now());
    }
    let joining = !user.teams.contains(&team.team_id);
    if joining {
        user.teams.push(team.team_id.clone());
    }
    let change = RosterChange {
        team_id: team.team_id.clone(),
        members_with_roles: team.members_with_roles.clone(),
        updated_at: team.updated_at,
        joining: if joining {
            vec![user.user_id.clone()]
        } else {
            Vec::new()
        },
        memberships: vec![(user.user_id.clone(), budget)],
        ..RosterChange::default()
    };
    state
        .store
        .commit_roster(&change)
        .await
        .map_err(store_err)?;
    forget_member_keys(state, &team.team_id, std::slice::from_ref(&user.user_id));
    Ok(())
}

/// Takes a user off a team: roster, `teams`, membership row and the user's keys of the team.
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
    let change = RosterChange {
        team_id: team.team_id.clone(),
        members_with_roles: team.members_with_roles.clone(),
        updated_at: team.updated_at,
        leaving: vec![user_id.to_string()],
        ..RosterChange::default()
    };
    let gone = state
        .store
        .commit_roster(&change)
        .await
        .map_err(store_err)?;
    for t in &gone {
        state.keys.remove(t);
    }
    forget_member_keys(state, &team.team_id, &[user_id.to_string()]);
    Ok(())
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

/// The user a member object names: the existing row, or a new `internal_user` row (not yet
/// stored; `true` when new).
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
    Ok((new_user(id, user_email), true))
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
    super::keys::tags_into_metadata(&mut t.metadata, body)?;
    if let Some(v) = super::keys::opt_model_max_budget(body)? {
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
pub(crate) async fn check_organization(
    state: &AppState,
    org: Option<&str>,
    new: bool,
) -> ApiResult<()> {
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

/// LiteLLM's answer for `/team/member_delete` and `/team/member_update` on an unknown team.
async fn existing_for_member_change(state: &AppState, team_id: &str) -> ApiResult<TeamRow> {
    state
        .store
        .get_team(team_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::bad_request(format!("Team id={team_id} does not exist in db"))
                .with_param("team_id")
        })
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
body_handler!(member_update_handler, member_update);
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
        let (mut user, new) = member_user(state, user_id, user_email).await?;
        if new {
            state.store.insert_user(&user).await.map_err(store_err)?;
        }
        join_team(state, &mut team, &mut user, &role, None).await?;
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

/// LiteLLM's `/team/info` rule: admins and admin viewers, the team's own keys, and the team's
/// members.
fn check_team_read(auth: &AuthCtx, team: &TeamRow) -> ApiResult<()> {
    if access::can_view_all(auth) {
        return Ok(());
    }
    let key_team = auth.key.as_ref().and_then(|k| k.team_id.as_deref());
    if key_team == Some(team.team_id.as_str()) {
        return Ok(());
    }
    let t = &team.team_id;
    match (auth.user_id(), key_team) {
        (None, Some(kt)) => Err(access::forbidden(format!(
            "Team key for team={kt} not authorized to access this team={t}"
        ))),
        (None, None) => Err(access::forbidden(format!(
            "API key not authorized to access this team={t}. No user_id or team_id associated with this key."
        ))),
        (Some(u), _) if is_member(team, u) => Ok(()),
        (Some(u), _) => Err(access::forbidden(format!(
            "User={u} not authorized to access this team={t}"
        ))),
    }
}

async fn info(state: &AppState, auth: &AuthCtx, q: TeamInfoQuery) -> ApiResult<Response> {
    access::gate(auth, "/team/info", RouteClass::Info, true)?;
    let team_id = q.team_id.ok_or_else(|| {
        ApiError::bad_request("Malformed request. No team id passed in.").with_param("team_id")
    })?;
    let team = state
        .store
        .get_team(&team_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::not_found(format!("Team not found, passed team id: {team_id}."))
                .with_param("team_id")
        })?;
    check_team_read(auth, &team)?;
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
    let memberships: Vec<Value> = state
        .store
        .list_memberships(std::slice::from_ref(&team_id), None)
        .await
        .map_err(store_err)?
        .iter()
        .map(|m| {
            let mut o = membership_json(m);
            // No team-wide default member budget here: a member's budget is their own or none.
            let source = if m.budget_id.is_some() {
                "custom"
            } else {
                "none"
            };
            o.insert("budget_source".into(), json!(source));
            Value::Object(o)
        })
        .collect();
    Ok(respond(json!({
        "team_id": team_id,
        "team_info": team_json(&team),
        "keys": keys,
        "team_memberships": memberships,
    })))
}

async fn update(state: &AppState, auth: &AuthCtx, body: Map<String, Value>) -> ApiResult<Response> {
    access::gate(auth, "/team/update", RouteClass::SelfManaged, false)?;
    let team_id = required_team_id(&body)?;
    let denied = || access::forbidden("You do not have access to this team");
    let Some(mut team) = state.store.get_team(&team_id).await.map_err(store_err)? else {
        // Non-admins cannot probe which teams exist.
        return Err(if auth.is_admin {
            team_not_found(&team_id)
        } else {
            denied()
        });
    };
    let mut fields = body;
    if !auth.is_admin {
        if !access::is_team_admin(auth, &team) {
            return Err(denied());
        }
        let changed = access::changed_fields(&fields, &team_json(&team), &["team_id"]);
        access::check_team_admin_update(state, &changed)?;
        // Values sent unchanged are not re-applied (a resent budget_duration would move the
        // reset date).
        fields.retain(|k, _| changed.contains(k));
    }
    apply_team_fields(&mut team, &fields)?;
    if fields.contains_key("organization_id") {
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
    for id in &ids {
        existing(state, id).await?;
    }
    let (deleted, tokens) = state.store.delete_teams(&ids).await.map_err(store_err)?;
    for t in &tokens {
        state.keys.remove(t);
    }
    Ok(respond(json!({ "deleted_teams": deleted })))
}

#[derive(Debug, Deserialize)]
pub struct TeamListQuery {
    user_id: Option<String>,
    organization_id: Option<String>,
}

/// `GET /team/available`: the teams a user may join on their own, as LiteLLM lists them: those
/// named in `litellm_settings.default_internal_user_params.available_teams` that exist and that
/// the caller's user is not a member of yet; `[]` when the setting is absent.
pub async fn available_teams_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
) -> Response {
    available(&state, &auth)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn available(state: &AppState, auth: &AuthCtx) -> ApiResult<Response> {
    let Some(listed) = state
        .loaded
        .config
        .litellm_settings
        .default_internal_user_params
        .as_ref()
        .and_then(|p| p.get("available_teams"))
        .and_then(Value::as_array)
    else {
        return Ok(Json(json!([])).into_response());
    };
    let user = match auth.user_id() {
        Some(id) => state.store.get_user(id).await.map_err(store_err)?,
        None => None,
    };
    let user = user.ok_or_else(|| ApiError::not_found("User not found").with_param("user_id"))?;
    let mut teams = Vec::new();
    for id in listed.iter().filter_map(Value::as_str) {
        if user.teams.iter().any(|t| t == id) {
            continue;
        }
        if let Some(team) = state.store.get_team(id).await.map_err(store_err)? {
            teams.push(Value::Object(team_json(&team)));
        }
    }
    Ok(Json(Value::Array(teams)).into_response())
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

/// LiteLLM's refusal of a non-admin listing teams other than their own.
fn only_admins_list(auth: &AuthCtx) -> ApiError {
    ApiError::proxy_auth(format!(
        "Only admin users can query all teams/other teams. Your user role={}",
        auth.user_role.unwrap_or("None")
    ))
}

/// LiteLLM's "teams without an organization" filter value.
const DEFAULT_ORGANIZATION: &str = "default_organization";

async fn list(state: &AppState, auth: &AuthCtx, q: TeamListQuery) -> ApiResult<Response> {
    access::gate(auth, "/team/list", RouteClass::Info, true)?;
    let own_query = q.user_id.is_some() && q.user_id.as_deref() == auth.user_id();
    if !access::can_view_all(auth) && !own_query {
        return Err(only_admins_list(auth));
    }
    let mut teams: Vec<TeamRow> = state
        .store
        .list_teams()
        .await
        .map_err(store_err)?
        .into_iter()
        .filter(|t| q.user_id.as_deref().is_none_or(|u| is_member(t, u)))
        .filter(|t| match q.organization_id.as_deref() {
            None => true,
            Some(DEFAULT_ORGANIZATION) => t.organization_id.is_none(),
            Some(o) => t.organization_id.as_deref() == Some(o),
        })
        .collect();
    teams.sort_by(|a, b| {
        a.team_alias
            .as_deref()
            .unwrap_or_default()
            .cmp(b.team_alias.as_deref().unwrap_or_default())
    });
    let ids: Vec<String> = teams.iter().map(|t| t.team_id.clone()).collect();
    let memberships = state
        .store
        .list_memberships(&ids, q.user_id.as_deref())
        .await
        .map_err(store_err)?;
    let mut out = Vec::with_capacity(teams.len());
    for t in &teams {
        let filter = KeyFilter {
            team_id: Some(t.team_id.clone()),
            ..KeyFilter::default()
        };
        let (keys, _) = state
            .store
            .list_keys(&filter, 0, MAX_LISTED_KEYS)
            .await
            .map_err(store_err)?;
        let mut o = team_json(t);
        let tm: Vec<Value> = memberships
            .iter()
            .filter(|m| m.team_id == t.team_id)
            .map(|m| Value::Object(membership_json(m)))
            .collect();
        o.insert("team_memberships".into(), Value::Array(tm));
        o.insert(
            "keys".into(),
            Value::Array(keys.iter().map(|k| Value::Object(key_json(k))).collect()),
        );
        out.push(Value::Object(o));
    }
    Ok(respond(Value::Array(out)))
}

#[derive(Debug, Deserialize)]
pub struct TeamListV2Query {
    user_id: Option<String>,
    organization_id: Option<String>,
    team_id: Option<String>,
    team_alias: Option<String>,
    search: Option<String>,
    search_team_id_match: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    status: Option<String>,
}

pub async fn list_teams_v2_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<TeamListV2Query>,
) -> Response {
    list_v2(&state, &auth, q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `/v2/team/list`: a page of teams with `members_count` and `keys_count`, LiteLLM's filters
/// (`team_id`, `team_alias` substring, `organization_id`, `search`, `user_id`) and sort
/// (`team_id`, `team_alias` or `created_at`; newest first by default). Non-admins may only list
/// their own teams, by passing their own `user_id`.
async fn list_v2(state: &AppState, auth: &AuthCtx, q: TeamListV2Query) -> ApiResult<Response> {
    access::gate(auth, "/v2/team/list", RouteClass::Info, true)?;
    if !access::can_view_all(auth)
        && (q.user_id.is_none() || q.user_id.as_deref() != auth.user_id())
    {
        return Err(only_admins_list(auth));
    }
    let (page, page_size) = super::page_bounds(q.page, q.page_size, "page_size", 10)?;
    match q.status.as_deref() {
        None => {}
        Some("deleted") => {
            return Err(ApiError::bad_request(
                "status=deleted is not available: this gateway does not keep deleted teams.",
            )
            .with_param("status"))
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid status value. Currently only 'deleted' is supported.",
            )
            .with_param("status"))
        }
    }
    let search_prefix = match q.search_team_id_match.as_deref() {
        None | Some("exact") => false,
        Some("prefix") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid search_team_id_match '{other}'. Use 'exact' or 'prefix'."
            ))
            .with_param("search_team_id_match"))
        }
    };
    let sort = match q.sort_by.as_deref() {
        Some(c @ ("team_id" | "team_alias" | "created_at")) => TeamSort {
            column: match c {
                "team_id" => "team_id",
                "team_alias" => "team_alias",
                _ => "created_at",
            },
            desc: q
                .sort_order
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case("desc")),
        },
        _ => TeamSort {
            column: "created_at",
            desc: true,
        },
    };
    let empty = || {
        respond(json!({
            "teams": [], "total": 0, "page": page, "page_size": page_size, "total_pages": 0,
        }))
    };
    let mut filter = TeamListFilter {
        team_id: q.team_id.filter(|s| !s.is_empty()),
        team_alias: q.team_alias.filter(|s| !s.is_empty()),
        organization_id: q.organization_id.filter(|s| !s.is_empty()),
        search: q.search.filter(|s| !s.is_empty()),
        search_prefix,
        team_ids: None,
    };
    if let Some(user_id) = q.user_id.filter(|s| !s.is_empty()) {
        let user = state
            .store
            .get_user(&user_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                ApiError::not_found(format!("User not found, passed user_id={user_id}"))
                    .with_param("user_id")
            })?;
        if user.teams.is_empty() {
            return Ok(empty());
        }
        if let Some(t) = &filter.team_id {
            if !user.teams.contains(t) {
                return Err(
                    ApiError::not_found(format!("User is not a member of team_id={t}"))
                        .with_param("team_id"),
                );
            }
        }
        filter.team_ids = Some(user.teams);
    }
    let (teams, total) = state
        .store
        .list_teams_page(&filter, sort, (page - 1) * page_size, page_size)
        .await
        .map_err(store_err)?;
    let ids: Vec<String> = teams.iter().map(|t| t.team_id.clone()).collect();
    let key_counts = state
        .store
        .count_keys_by_team(&ids)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = teams
        .iter()
        .map(|t| {
            let mut o = team_json(t);
            o.insert("members_count".into(), json!(members(t).len()));
            o.insert(
                "keys_count".into(),
                json!(key_counts.get(&t.team_id).copied().unwrap_or(0)),
            );
            Value::Object(o)
        })
        .collect();
    Ok(respond(json!({
        "teams": items,
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": (total + page_size - 1) / page_size,
    })))
}

/// LiteLLM's 400 for adding members who are already on the team.
fn already_in_team(message: String) -> ApiError {
    let mut e = ApiError::bad_request(message).with_param("member");
    e.type_override = Some("team_member_already_in_team");
    e
}

/// `budget_duration` of a member: validated, with the `budget_reset_at` it implies.
fn member_budget_duration(
    body: &Map<String, Value>,
) -> ApiResult<Option<(Option<String>, Option<chrono::NaiveDateTime>)>> {
    if !body.contains_key("budget_duration") {
        return Ok(None);
    }
    Ok(Some(match opt_str(body, "budget_duration")? {
        None => (None, None),
        Some(d) => {
            let dur = parse_duration(&d).ok_or_else(|| {
                ApiError::bad_request(format!("Invalid budget_duration '{d}'."))
                    .with_param("budget_duration")
            })?;
            (Some(d), Some(now() + dur))
        }
    }))
}

async fn member_add(
    state: &AppState,
    auth: &AuthCtx,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    access::gate(auth, "/team/member_add", RouteClass::SelfManaged, false)?;
    let team_id = required_team_id(&body)?;
    let (wanted, single) = match body.get("member") {
        Some(Value::Array(a)) => (
            a.iter().map(parse_member).collect::<ApiResult<Vec<_>>>()?,
            false,
        ),
        Some(v @ Value::Object(_)) => (vec![parse_member(v)?], true),
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
    let max_budget_in_team = opt_f64(&body, "max_budget_in_team")?;
    let allowed_models = opt_strings(&body, "allowed_models")?;
    let duration = member_budget_duration(&body)?.and_then(|(d, r)| d.map(|d| (d, r)));
    let mut team = state
        .store
        .get_team(&team_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::not_found(format!("Team not found for team_id={team_id}"))
                .with_param("team_id")
        })?;
    access::require_team_admin(auth, &team, "/team/member_add")?;

    let on_roster = |team: &TeamRow, id: &Option<String>, email: &Option<String>| {
        members(team).iter().any(|m| {
            (id.is_some() && m.get("user_id").and_then(Value::as_str) == id.as_deref())
                || (email.is_some()
                    && m.get("user_email").and_then(Value::as_str) == email.as_deref())
        })
    };
    let dups = wanted
        .iter()
        .filter(|(id, email, _)| on_roster(&team, id, email))
        .count();
    if single && dups == 1 {
        let (id, email, _) = &wanted[0];
        return Err(already_in_team(format!(
            "User already in team. Member: user_id={}, user_email={}. Existing members={}",
            id.as_deref().unwrap_or("None"),
            email.as_deref().unwrap_or("None"),
            team.members_with_roles
        )));
    }
    if !single && dups == wanted.len() {
        return Err(already_in_team(format!(
            "All users are already in team. Existing members={}",
            team.members_with_roles
        )));
    }

    let t = now();
    let actor = creator(auth);
    let mut change = RosterChange {
        team_id: team_id.clone(),
        updated_at: Some(t),
        ..RosterChange::default()
    };
    let mut roster = members(&team).to_vec();
    let mut updated_users = Vec::new();
    let mut updated_memberships = Vec::new();
    for (user_id, user_email, role) in wanted {
        if on_roster(&team, &user_id, &user_email) {
            continue; // some of a list were members already: the others are added
        }
        let (mut user, is_new) = member_user(state, user_id, user_email.clone()).await?;
        let uid = user.user_id.clone();
        let listed = roster
            .iter()
            .any(|m| m.get("user_id").and_then(Value::as_str) == Some(uid.as_str()));
        if listed {
            continue;
        }
        roster.push(json!({
            "role": role,
            "user_id": uid,
            "user_email": user_email.or_else(|| user.user_email.clone()),
        }));
        if !user.teams.contains(&team_id) {
            user.teams.push(team_id.clone());
            if !is_new {
                change.joining.push(uid.clone());
            }
        }
        if is_new {
            change.new_users.push(user.clone());
        }
        let budget =
            if max_budget_in_team.is_some() || allowed_models.is_some() || duration.is_some() {
                let mut b = new_budget(&actor, t);
                b.max_budget = max_budget_in_team;
                b.allowed_models = allowed_models.clone().unwrap_or_default();
                if let Some((d, reset)) = &duration {
                    b.budget_duration = Some(d.clone());
                    b.budget_reset_at = *reset;
                }
                Some(b)
            } else {
                None
            };
        updated_memberships.push(Value::Object(membership_json(&MembershipRow {
            user_id: uid.clone(),
            team_id: team_id.clone(),
            budget_id: budget.as_ref().map(|b| b.budget_id.clone()),
            budget: budget.clone(),
            ..MembershipRow::default()
        })));
        change.memberships.push((uid, budget));
        updated_users.push(Value::Object(user_json(&user)));
    }
    team.members_with_roles = Value::Array(roster);
    team.updated_at = Some(t);
    change.members_with_roles = team.members_with_roles.clone();
    state
        .store
        .commit_roster(&change)
        .await
        .map_err(store_err)?;
    let added: Vec<String> = change.memberships.iter().map(|(u, _)| u.clone()).collect();
    forget_member_keys(state, &team_id, &added);
    let mut out = team_json(&team);
    out.insert("updated_users".into(), Value::Array(updated_users));
    out.insert(
        "updated_team_memberships".into(),
        Value::Array(updated_memberships),
    );
    Ok(respond(Value::Object(out)))
}

/// The member a `/team/member_delete` or `/team/member_update` body names.
fn member_selector(body: &Map<String, Value>) -> ApiResult<(Option<String>, Option<String>)> {
    let user_id = opt_str(body, "user_id")?;
    let user_email = opt_str(body, "user_email")?;
    if user_id.is_none() && user_email.is_none() {
        return Err(
            ApiError::bad_request("Either user_id or user_email needs to be passed in")
                .with_param("user_id"),
        );
    }
    Ok((user_id, user_email))
}

/// Removes the members a body names (by `user_id` or `user_email`) with their membership rows
/// and their keys of the team; answers the team row, as LiteLLM does.
async fn member_delete(
    state: &AppState,
    auth: &AuthCtx,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    access::gate(auth, "/team/member_delete", RouteClass::SelfManaged, false)?;
    let team_id = required_team_id(&body)?;
    let (user_id, user_email) = member_selector(&body)?;
    let mut team = existing_for_member_change(state, &team_id).await?;
    access::require_team_admin(auth, &team, "/team/member_delete")?;
    let addressed = |m: &Value| {
        (user_id.is_some() && m.get("user_id").and_then(Value::as_str) == user_id.as_deref())
            || (user_email.is_some()
                && m.get("user_email").and_then(Value::as_str) == user_email.as_deref())
    };
    let (removed, kept): (Vec<Value>, Vec<Value>) =
        members(&team).iter().cloned().partition(|m| addressed(m));
    let mut leaving: Vec<String> = removed
        .iter()
        .filter_map(|m| m.get("user_id").and_then(Value::as_str).map(String::from))
        .collect();
    if removed.is_empty() {
        // A user row that still lists the team after its roster entry went is cleaned up too.
        let stale = match &user_id {
            Some(u) => state
                .store
                .get_user(u)
                .await
                .map_err(store_err)?
                .is_some_and(|row| row.teams.contains(&team_id)),
            None => false,
        };
        if !stale {
            return Err(ApiError::bad_request("User not found in team").with_param("user_id"));
        }
    }
    if let Some(u) = &user_id {
        if !leaving.contains(u) {
            leaving.push(u.clone());
        }
    }
    team.members_with_roles = Value::Array(kept);
    team.updated_at = Some(now());
    let change = RosterChange {
        team_id: team_id.clone(),
        members_with_roles: team.members_with_roles.clone(),
        updated_at: team.updated_at,
        leaving: leaving.clone(),
        ..RosterChange::default()
    };
    let gone = state
        .store
        .commit_roster(&change)
        .await
        .map_err(store_err)?;
    for t in &gone {
        state.keys.remove(t);
    }
    forget_member_keys(state, &team_id, &leaving);
    Ok(respond(Value::Object(team_json(&team))))
}

/// `/team/member_update`: a member's role and per-member budget (`max_budget_in_team`,
/// `rpm_limit`, `tpm_limit`, `budget_duration`, `allowed_models`), merge-patched as LiteLLM
/// does (a sent field sets, an explicit null clears, an absent one stays).
async fn member_update(
    state: &AppState,
    auth: &AuthCtx,
    body: Map<String, Value>,
) -> ApiResult<Response> {
    access::gate(auth, "/team/member_update", RouteClass::SelfManaged, false)?;
    let team_id = required_team_id(&body)?;
    let (user_id, user_email) = member_selector(&body)?;
    let role = opt_str(&body, "role")?;
    if let Some(r) = &role {
        if r != "admin" && r != "user" {
            return Err(ApiError::bad_request(format!(
                "Invalid member role '{r}'. Use 'admin' or 'user'."
            ))
            .with_param("role"));
        }
    }
    let patch = BudgetPatch {
        max_budget: body
            .contains_key("max_budget_in_team")
            .then(|| opt_f64(&body, "max_budget_in_team"))
            .transpose()?,
        tpm_limit: body
            .contains_key("tpm_limit")
            .then(|| opt_i64(&body, "tpm_limit"))
            .transpose()?,
        rpm_limit: body
            .contains_key("rpm_limit")
            .then(|| opt_i64(&body, "rpm_limit"))
            .transpose()?,
        budget_duration: member_budget_duration(&body)?,
        allowed_models: body
            .contains_key("allowed_models")
            .then(|| opt_strings(&body, "allowed_models"))
            .transpose()?
            .map(Option::unwrap_or_default),
    };
    let mut team = existing_for_member_change(state, &team_id).await?;
    access::require_team_admin(auth, &team, "/team/member_update")?;
    let target = match (&user_id, &user_email) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(e)) => members(&team)
            .iter()
            .find(|m| m.get("user_email").and_then(Value::as_str) == Some(e.as_str()))
            .and_then(|m| m.get("user_id").and_then(Value::as_str).map(String::from)),
        (None, None) => None,
    };
    let target = target.ok_or_else(|| {
        ApiError::bad_request(format!(
            "User id doesn't exist in team table. user_email={}",
            user_email.as_deref().unwrap_or("None")
        ))
        .with_param("user_email")
    })?;
    if !is_member(&team, &target) {
        return Err(ApiError::not_found(format!(
            "User {target} is not a member of team {team_id}"
        ))
        .with_param("user_id"));
    }
    let t = now();
    let roster = match &role {
        Some(r) => {
            let list: Vec<Value> = members(&team)
                .iter()
                .map(|m| {
                    if m.get("user_id").and_then(Value::as_str) != Some(target.as_str()) {
                        return m.clone();
                    }
                    let email = user_email
                        .clone()
                        .map(Value::String)
                        .or_else(|| m.get("user_email").cloned())
                        .unwrap_or(Value::Null);
                    json!({"role": r, "user_id": target, "user_email": email})
                })
                .collect();
            team.members_with_roles = Value::Array(list);
            Some(&team.members_with_roles)
        }
        None => None,
    };
    state
        .store
        .update_member(&team_id, &target, roster, &patch, &creator(auth), t)
        .await
        .map_err(store_err)?;
    forget_member_keys(state, &team_id, std::slice::from_ref(&target));
    let field = |f: &str| body.get(f).cloned().unwrap_or(Value::Null);
    Ok(respond(json!({
        "team_id": team_id,
        "user_id": target,
        "user_email": user_email,
        "max_budget_in_team": field("max_budget_in_team"),
        "tpm_limit": field("tpm_limit"),
        "rpm_limit": field("rpm_limit"),
        "budget_duration": field("budget_duration"),
        "allowed_models": field("allowed_models"),
        "temp_budget_increase": Value::Null,
        "temp_budget_expiry": Value::Null,
    })))
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
