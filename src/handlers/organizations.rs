//! Organizations: `/organization/new`, `/organization/update`, `/organization/delete`,
//! `/organization/info` (GET and the older POST), `/organization/list`, and
//! `/organization/member_add|member_update|member_delete`, on LiteLLM's
//! `LiteLLM_OrganizationTable` and `LiteLLM_OrganizationMembership` with its field names,
//! defaults and response shapes.
//!
//! Every organization links to a `LiteLLM_BudgetTable` row (`budget_id` is required there): the
//! budget fields of `/organization/new` create it in the same transaction, or `budget_id` names
//! an existing one. Creating and deleting organizations is for proxy admins; reading, updating
//! and managing members is also open to the organization's own `org_admin` members, and
//! `/organization/list` shows other callers the organizations they belong to. Changes drop the
//! cached keys of the organization's teams, so its budget and models apply to the next call.
//! SQL stays in `store::organizations`.

use super::access::forbidden;
use super::budgets::{budget_fields_json, new_budget_row, store_err_on, BudgetFields};
use super::keys::{
    body_of, creator, field_error, opt_f64, opt_obj, opt_str, opt_strings, require_admin,
    store_err, ts,
};
use super::teams::team_json;
use super::users::{new_user, user_json};
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::spend::now;
use crate::state::AppState;
use crate::store::{BudgetRow, BudgetWrite, OrgMemberRow, OrgMemberWrite, OrgRow, UserRow};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Roles a member may hold inside an organization (LiteLLM's `ROLES_WITHIN_ORG`).
const ORG_ROLES: [&str; 3] = ["org_admin", "internal_user", "internal_user_viewer"];

fn budget_value(b: Option<&BudgetRow>) -> Value {
    b.map(|b| Value::Object(budget_fields_json(b)))
        .unwrap_or(Value::Null)
}

/// The organization object LiteLLM returns (`LiteLLM_OrganizationTable` with its budget row).
fn org_json(o: &OrgRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("organization_id".into(), json!(o.organization_id));
    m.insert("organization_alias".into(), json!(o.organization_alias));
    m.insert("budget_id".into(), json!(o.budget_id));
    m.insert("metadata".into(), o.metadata.clone());
    m.insert("models".into(), json!(o.models));
    m.insert("spend".into(), json!(o.spend));
    m.insert("model_spend".into(), o.model_spend.clone());
    m.insert("object_permission_id".into(), json!(o.object_permission_id));
    m.insert("created_at".into(), ts(o.created_at));
    m.insert("created_by".into(), json!(o.created_by));
    m.insert("updated_at".into(), ts(o.updated_at));
    m.insert("updated_by".into(), json!(o.updated_by));
    m.insert(
        "litellm_budget_table".into(),
        budget_value(o.budget.as_ref()),
    );
    m
}

fn member_json(m: &OrgMemberRow) -> Value {
    json!({
        "user_id": m.user_id,
        "organization_id": m.organization_id,
        "user_role": m.user_role,
        "spend": m.spend,
        "budget_id": m.budget_id,
        "created_at": ts(m.created_at),
        "updated_at": ts(m.updated_at),
        "user_email": m.user_email,
    })
}

/// `LiteLLM_OrganizationTableWithMembers`: the organization with its members and teams.
async fn org_with_members(state: &AppState, o: &OrgRow) -> ApiResult<Value> {
    let members = state
        .store
        .list_org_members(&o.organization_id)
        .await
        .map_err(store_err)?;
    let teams = state.store.list_teams().await.map_err(store_err)?;
    let mut m = org_json(o);
    m.insert(
        "members".into(),
        Value::Array(members.iter().map(member_json).collect()),
    );
    m.insert(
        "teams".into(),
        Value::Array(
            teams
                .iter()
                .filter(|t| t.organization_id.as_deref() == Some(o.organization_id.as_str()))
                .map(|t| Value::Object(team_json(t)))
                .collect(),
        ),
    );
    Ok(Value::Object(m))
}

fn missing_org(id: &str) -> ApiError {
    ApiError::not_found(format!("Organization not found for organization_id={id}"))
        .with_param("organization_id")
}

fn required_str(body: &Map<String, Value>, f: &str) -> ApiResult<String> {
    opt_str(body, f)?.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::bad_request(format!("Missing required field: '{f}'.")).with_param(f)
    })
}

/// Proxy admins (and admin viewers, for reads) reach every organization; anyone else only
/// those where they are an `org_admin` member.
async fn org_access(state: &AppState, auth: &AuthCtx, org_id: &str, read: bool) -> ApiResult<()> {
    if auth.is_admin || (read && auth.user_role == Some("proxy_admin_viewer")) {
        return Ok(());
    }
    let Some(user_id) = auth.user_id() else {
        return Err(forbidden("You do not have access to this organization"));
    };
    let memberships = state
        .store
        .user_org_memberships(user_id)
        .await
        .map_err(store_err)?;
    if memberships
        .iter()
        .any(|m| m.organization_id == org_id && m.user_role.as_deref() == Some("org_admin"))
    {
        Ok(())
    } else {
        Err(forbidden("You do not have access to this organization"))
    }
}

/// Drops cached keys whose team belongs to the organization; the next call reads it again.
fn forget_org_keys(state: &AppState, org_id: &str) {
    state.keys.retain(|_, c| {
        c.organization
            .as_ref()
            .is_none_or(|o| o.organization_id != org_id)
    });
}

async fn existing_budget(state: &AppState, id: &str) -> ApiResult<BudgetRow> {
    state
        .store
        .get_budget(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Budget id={id} does not exist in db. Create it with /budget/new first."
            ))
            .with_param("budget_id")
        })
}

fn reply(r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

pub async fn new_organization_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply(create(&state, &auth, &headers, body).await)
}

async fn create(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_admin(auth, "/organization/new")?;
    let body = body_of(state, headers, body).await?;
    let alias = required_str(&body, "organization_alias")?;
    let org_id = match opt_str(&body, "organization_id")? {
        Some(id) if id.is_empty() => {
            return Err(ApiError::bad_request("organization_id must not be empty.")
                .with_param("organization_id"))
        }
        Some(id) => id,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let fields = BudgetFields::parse(&body)?;
    let budget_id = opt_str(&body, "budget_id")?;
    let models = opt_strings(&body, "models")?.unwrap_or_default();
    let metadata = opt_obj(&body, "metadata")?.unwrap_or_else(|| json!({}));
    if state
        .store
        .get_organization(&org_id)
        .await
        .map_err(store_err)?
        .is_some()
    {
        return Err(ApiError::bad_request(format!(
            "Organization id={org_id} already exists. Pass a new organization_id."
        ))
        .with_param("organization_id"));
    }
    // Every organization needs a budget row: the one named, else a new one from the fields.
    let (budget, new_budget) = match &budget_id {
        Some(id) => (existing_budget(state, id).await?, None),
        None => {
            let mut b = new_budget_row(uuid::Uuid::new_v4().to_string(), auth);
            fields.apply(&mut b, false);
            (b.clone(), Some(b))
        }
    };
    let t = now();
    let row = OrgRow {
        organization_id: org_id.clone(),
        organization_alias: alias,
        budget_id: budget.budget_id.clone(),
        metadata,
        models,
        spend: 0.0,
        model_spend: json!({}),
        object_permission_id: None,
        created_at: Some(t),
        created_by: creator(auth),
        updated_at: Some(t),
        updated_by: creator(auth),
        budget: Some(budget),
    };
    state
        .store
        .insert_organization(&row, new_budget.as_ref())
        .await
        .map_err(store_err_on("organization_id"))?;
    state.budgets.reset(&org_scope(&org_id), 0.0);
    Ok(Json(Value::Object(org_json(&row))).into_response())
}

/// The shared-budget scope of an organization's spend.
fn org_scope(id: &str) -> String {
    format!("org:{id}")
}

pub async fn update_organization_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply(update(&state, &auth, &headers, body).await)
}

async fn update(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = body_of(state, headers, body).await?;
    let org_id = opt_str(&body, "organization_id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("organization_id is required").with_param("organization_id")
        })?;
    org_access(state, auth, &org_id, false).await?;
    // LiteLLM also accepts the budget fields nested under `litellm_budget_table`.
    let mut flat = body.clone();
    if let Some(Value::Object(nested)) = body.get("litellm_budget_table") {
        for (k, v) in nested {
            if k != "budget_id" {
                flat.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    let fields = BudgetFields::parse(&flat)?;
    let budget_id = opt_str(&flat, "budget_id")?;
    let alias = opt_str(&flat, "organization_alias")?;
    if alias.as_deref() == Some("") {
        return Err(
            ApiError::bad_request("organization_alias must not be empty.")
                .with_param("organization_alias"),
        );
    }
    let models = opt_strings(&flat, "models")?;
    let metadata = opt_obj(&flat, "metadata")?;
    let mut row = state
        .store
        .get_organization(&org_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| missing_org(&org_id))?;
    if let Some(a) = alias {
        row.organization_alias = a;
    }
    if let Some(m) = models {
        row.models = m;
    }
    if let Some(Value::Object(new)) = metadata {
        // Merged into the stored metadata, as LiteLLM does.
        let mut merged = row.metadata.as_object().cloned().unwrap_or_default();
        merged.extend(new);
        row.metadata = Value::Object(merged);
    }
    let write = match &budget_id {
        Some(id) if id != &row.budget_id => {
            let b = existing_budget(state, id).await?;
            row.budget_id = b.budget_id.clone();
            row.budget = Some(b);
            BudgetWrite::Keep
        }
        _ if fields.with_values().is_empty() && !fields_sent_null(&flat) => BudgetWrite::Keep,
        _ => match row.budget.take() {
            Some(mut b) => {
                fields.apply(&mut b, true);
                b.updated_at = Some(now());
                b.updated_by = creator(auth);
                row.budget = Some(b.clone());
                BudgetWrite::Update(b)
            }
            None => {
                // The linked row is gone: give the organization a new one.
                let mut b = new_budget_row(uuid::Uuid::new_v4().to_string(), auth);
                fields.apply(&mut b, false);
                row.budget_id = b.budget_id.clone();
                row.budget = Some(b.clone());
                BudgetWrite::Insert(b)
            }
        },
    };
    row.updated_at = Some(now());
    row.updated_by = creator(auth);
    state
        .store
        .update_organization(&row, &write)
        .await
        .map_err(store_err_on("organization_id"))?;
    if matches!(write, BudgetWrite::Update(_)) {
        // The row may be shared with other organizations or end users.
        state.keys.clear();
        state.end_users.clear();
    } else {
        forget_org_keys(state, &org_id);
    }
    let fresh = state
        .store
        .get_organization(&org_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| missing_org(&org_id))?;
    Ok(Json(org_with_members(state, &fresh).await?).into_response())
}

/// Whether the body clears a budget field with an explicit `null`.
fn fields_sent_null(body: &Map<String, Value>) -> bool {
    [
        "max_budget",
        "soft_budget",
        "max_parallel_requests",
        "tpm_limit",
        "rpm_limit",
        "tpd_limit",
        "budget_duration",
        "model_max_budget",
    ]
    .iter()
    .any(|f| matches!(body.get(*f), Some(Value::Null)))
}

pub async fn delete_organization_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply(delete(&state, &auth, &headers, body).await)
}

async fn delete(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_admin(auth, "/organization/delete")?;
    let body = body_of(state, headers, body).await?;
    let ids = opt_strings(&body, "organization_ids")?.ok_or_else(|| {
        ApiError::bad_request(
            "Missing required field: 'organization_ids' (a list of organization ids).",
        )
        .with_param("organization_ids")
    })?;
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "Pass 'organization_ids', the organizations to delete (a non-empty list).",
        )
        .with_param("organization_ids"));
    }
    // The response lists each organization as it was, with its members and teams.
    let mut before = Vec::new();
    for id in &ids {
        if let Some(o) = state.store.get_organization(id).await.map_err(store_err)? {
            before.push(org_with_members(state, &o).await?);
        }
    }
    let gone = state
        .store
        .delete_organizations(&ids)
        .await
        .map_err(store_err_on("organization_ids"))?;
    for h in &gone.key_hashes {
        state.keys.remove(h);
    }
    for t in &gone.team_ids {
        state.budgets.reset(&crate::spend::team_scope(t), 0.0);
    }
    for id in &ids {
        forget_org_keys(state, id);
        state.budgets.reset(&org_scope(id), 0.0);
    }
    Ok(Json(Value::Array(before)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct OrgInfoQuery {
    organization_id: Option<String>,
}

pub async fn organization_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<OrgInfoQuery>,
) -> Response {
    reply(info(&state, &auth, q).await)
}

async fn info(state: &AppState, auth: &AuthCtx, q: OrgInfoQuery) -> ApiResult<Response> {
    let id = q.organization_id.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "Pass the organization to look up: /organization/info?organization_id=<id>",
        )
        .with_param("organization_id")
    })?;
    org_access(state, auth, &id, true).await?;
    let row = state
        .store
        .get_organization(&id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::not_found("Organization not found").with_param("organization_id")
        })?;
    Ok(Json(org_with_members(state, &row).await?).into_response())
}

/// The older `POST /organization/info` with `{"organizations": [ids]}`.
pub async fn organizations_info_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply(info_many(&state, &auth, &headers, body).await)
}

async fn info_many(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = body_of(state, headers, body).await?;
    let ids = opt_strings(&body, "organizations")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Specify list of organization id's to query. Passed in={ids:?}"
        ))
        .with_param("organizations"));
    }
    for id in &ids {
        org_access(state, auth, id, true).await?;
    }
    let rows = state
        .store
        .list_organizations(Some(&ids))
        .await
        .map_err(store_err)?;
    Ok(Json(Value::Array(
        rows.iter().map(|o| Value::Object(org_json(o))).collect(),
    ))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct OrgListQuery {
    org_id: Option<String>,
    org_alias: Option<String>,
}

pub async fn list_organizations_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    super::JsonQuery(q): super::JsonQuery<OrgListQuery>,
) -> Response {
    reply(list(&state, &auth, q).await)
}

async fn list(state: &AppState, auth: &AuthCtx, q: OrgListQuery) -> ApiResult<Response> {
    let admin_view = auth.is_admin || auth.user_role == Some("proxy_admin_viewer");
    let mine: Option<Vec<String>> = if admin_view {
        None
    } else {
        let memberships = match auth.user_id() {
            Some(u) => state
                .store
                .user_org_memberships(u)
                .await
                .map_err(store_err)?,
            None => Vec::new(),
        };
        Some(memberships.into_iter().map(|m| m.organization_id).collect())
    };
    let rows = state
        .store
        .list_organizations(mine.as_deref())
        .await
        .map_err(store_err)?;
    let alias = q.org_alias.map(|a| a.to_lowercase());
    let mut out = Vec::new();
    for o in rows.iter().filter(|o| {
        q.org_id.as_ref().is_none_or(|id| &o.organization_id == id)
            && alias
                .as_ref()
                .is_none_or(|a| o.organization_alias.to_lowercase().contains(a.as_str()))
    }) {
        out.push(org_with_members(state, o).await?);
    }
    Ok(Json(Value::Array(out)).into_response())
}

/// A member object: `role` (one of [`ORG_ROLES`]) and `user_id` and/or `user_email`.
fn parse_member(v: &Value) -> ApiResult<(Option<String>, Option<String>, String)> {
    let Value::Object(m) = v else {
        return Err(field_error(
            "member",
            "an object {role, user_id, user_email} or a list of them",
            v,
        ));
    };
    let user_id = opt_str(m, "user_id")?.filter(|s| !s.is_empty());
    let user_email = opt_str(m, "user_email")?.filter(|s| !s.is_empty());
    if user_id.is_none() && user_email.is_none() {
        return Err(
            ApiError::bad_request("Either user id or user email must be provided")
                .with_param("member"),
        );
    }
    let role = opt_str(m, "role")?.ok_or_else(|| {
        ApiError::bad_request("Missing required field: 'member.role'.").with_param("member.role")
    })?;
    check_role(&role, "member.role")?;
    Ok((user_id, user_email, role))
}

fn check_role(role: &str, param: &str) -> ApiResult<()> {
    if ORG_ROLES.contains(&role) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid role '{role}' for an organization member. Use one of: {}.",
            ORG_ROLES.join(", ")
        ))
        .with_param(param))
    }
}

pub async fn org_member_add_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply(member_add(&state, &auth, &headers, body).await)
}

async fn member_add(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = body_of(state, headers, body).await?;
    let org_id = required_str(&body, "organization_id")?;
    let members = match body.get("member") {
        None | Some(Value::Null) => {
            return Err(
                ApiError::bad_request("Missing required field: 'member'.").with_param("member")
            )
        }
        Some(Value::Array(a)) => a.iter().map(parse_member).collect::<ApiResult<Vec<_>>>()?,
        Some(v) => vec![parse_member(v)?],
    };
    opt_f64(&body, "max_budget_in_organization")?;
    org_access(state, auth, &org_id, false).await?;
    state
        .store
        .get_organization(&org_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| missing_org(&org_id))?;
    let existing: Vec<String> = state
        .store
        .list_org_members(&org_id)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let t = now();
    let mut writes = Vec::new();
    let mut users: Vec<UserRow> = Vec::new();
    for (user_id, user_email, role) in members {
        let found = match &user_id {
            Some(id) => state.store.get_user(id).await.map_err(store_err)?,
            None => None,
        };
        let found = match (found, &user_email) {
            (None, Some(e)) => state.store.get_user_by_email(e).await.map_err(store_err)?,
            (f, _) => f,
        };
        let (user, is_new) = match found {
            Some(u) => (u, false),
            None => (
                new_user(
                    user_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                    user_email,
                ),
                true,
            ),
        };
        if existing.contains(&user.user_id) || users.iter().any(|u| u.user_id == user.user_id) {
            return Err(ApiError::bad_request(format!(
                "User id={} is already a member of organization={org_id}. Use /organization/member_update to change their role.",
                user.user_id
            ))
            .with_param("member"));
        }
        writes.push(OrgMemberWrite {
            new_user: is_new.then(|| user.clone()),
            member: OrgMemberRow {
                user_id: user.user_id.clone(),
                organization_id: org_id.clone(),
                user_role: Some(role),
                spend: 0.0,
                budget_id: None,
                created_at: Some(t),
                updated_at: Some(t),
                user_email: user.user_email.clone(),
            },
            budget: BudgetWrite::Keep,
        });
        users.push(user);
    }
    state
        .store
        .write_org_members(&writes)
        .await
        .map_err(store_err_on("member"))?;
    Ok(Json(json!({
        "organization_id": org_id,
        "updated_users": users.iter().map(|u| Value::Object(user_json(u))).collect::<Vec<_>>(),
        "updated_organization_memberships": writes.iter().map(|w| member_json(&w.member)).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// The member a request names by `user_id` or `user_email`.
async fn named_user(state: &AppState, body: &Map<String, Value>) -> ApiResult<String> {
    if let Some(id) = opt_str(body, "user_id")?.filter(|s| !s.is_empty()) {
        return Ok(id);
    }
    let Some(email) = opt_str(body, "user_email")?.filter(|s| !s.is_empty()) else {
        return Err(
            ApiError::bad_request("Either user id or user email must be provided")
                .with_param("user_id"),
        );
    };
    state
        .store
        .get_user_by_email(&email)
        .await
        .map_err(store_err)?
        .map(|u| u.user_id)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Unique user not found for user_email={email}. Potential duplicate OR non-existent user_email in LiteLLM_UserTable. Use 'user_id' instead."
            ))
            .with_param("user_email")
        })
}

pub async fn org_member_update_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply(member_update(&state, &auth, &headers, body).await)
}

async fn member_update(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = body_of(state, headers, body).await?;
    let org_id = required_str(&body, "organization_id")?;
    let role = opt_str(&body, "role")?;
    if let Some(r) = &role {
        check_role(r, "role")?;
    }
    let max_budget = match body.get("max_budget_in_organization") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Some(x),
            _ => {
                return Err(field_error(
                    "max_budget_in_organization",
                    "a non-negative number",
                    v,
                ))
            }
        },
        Some(v) => return Err(field_error("max_budget_in_organization", "a number", v)),
    };
    let user_id = named_user(state, &body).await?;
    org_access(state, auth, &org_id, false).await?;
    state
        .store
        .get_organization(&org_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| missing_org(&org_id))?;
    let mut member = state
        .store
        .list_org_members(&org_id)
        .await
        .map_err(store_err)?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Member not found in organization for user_id={user_id}"
            ))
            .with_param("user_id")
        })?;
    if !auth.is_admin {
        let target = state.store.get_user(&user_id).await.map_err(store_err)?;
        if target.is_some_and(|u| {
            matches!(
                u.user_role.as_deref(),
                Some("proxy_admin" | "proxy_admin_viewer")
            )
        }) {
            return Err(forbidden(
                "Only PROXY_ADMIN may modify the organization role of a user who is a global PROXY_ADMIN.",
            ));
        }
    }
    if let Some(r) = role {
        member.user_role = Some(r);
    }
    let budget = match max_budget {
        None => BudgetWrite::Keep,
        Some(max) => {
            let current = match &member.budget_id {
                Some(id) => state.store.get_budget(id).await.map_err(store_err)?,
                None => None,
            };
            match current {
                Some(mut b) => {
                    b.max_budget = Some(max);
                    b.updated_at = Some(now());
                    b.updated_by = creator(auth);
                    BudgetWrite::Update(b)
                }
                None => {
                    let mut b = new_budget_row(uuid::Uuid::new_v4().to_string(), auth);
                    b.max_budget = Some(max);
                    member.budget_id = Some(b.budget_id.clone());
                    BudgetWrite::Insert(b)
                }
            }
        }
    };
    member.updated_at = Some(now());
    let budget_row = match &budget {
        BudgetWrite::Insert(b) | BudgetWrite::Update(b) => Some(b.clone()),
        BudgetWrite::Keep => match &member.budget_id {
            Some(id) => state.store.get_budget(id).await.map_err(store_err)?,
            None => None,
        },
    };
    state
        .store
        .write_org_members(&[OrgMemberWrite {
            new_user: None,
            member: member.clone(),
            budget,
        }])
        .await
        .map_err(store_err_on("user_id"))?;
    let mut out = member_json(&member);
    out["litellm_budget_table"] = budget_value(budget_row.as_ref());
    Ok(Json(out).into_response())
}

pub async fn org_member_delete_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply(member_delete(&state, &auth, &headers, body).await)
}

async fn member_delete(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = body_of(state, headers, body).await?;
    let org_id = required_str(&body, "organization_id")?;
    let user_id = named_user(state, &body).await?;
    org_access(state, auth, &org_id, false).await?;
    let removed = state
        .store
        .delete_org_member(&org_id, &user_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Member not found in organization for user_id={user_id}"
            ))
            .with_param("user_id")
        })?;
    Ok(Json(member_json(&removed)).into_response())
}
