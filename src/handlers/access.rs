//! Who may call which management route, as LiteLLM decides it: the caller's role (the key's
//! user row, see `middleware::auth::AuthCtx::user_role`) and, for team-scoped work, the
//! caller's role inside the team (`members_with_roles`).
//!
//! Route classes follow LiteLLM's route check for non-admins: key-management routes are open to
//! `internal_user`s, the team self-service routes (`/team/update`, `/team/member_*`) and the
//! info routes to any key (the handler then decides), everything else to proxy admins only.
//! A `proxy_admin_viewer` may read but not write. What each handler then allows (own keys,
//! team admins on their team's keys and roster, team members on their team's info) is checked
//! with the helpers below; anything not explicitly allowed is refused. Handlers own the
//! per-object checks; this module owns the rules and LiteLLM's error messages.

use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::middleware::auth::AuthCtx;
use crate::state::AppState;
use crate::store::TeamRow;
use axum::http::StatusCode;
use serde_json::Value;

/// LiteLLM's `general_settings` key listing what team admins may change.
const TEAM_ADMIN_EDITABLE: &str = "team_admin_editable_team_fields";
/// Team fields a team admin can be allowed to change with `/team/update`.
const TEAM_ADMIN_EDITABLE_SUPPORTED: [&str; 3] = ["tpm_limit", "rpm_limit", "max_budget"];
/// The grant that lets team admins change budgets on other members' keys.
const MEMBER_KEY_BUDGETS: &str = "member_key_budgets";
/// Where LiteLLM tells the admin to grant these (its UI); kept verbatim in messages.
const SETTINGS_LOCATION: &str = "Settings > UI > Team admin editable fields";
/// What a plain team member (`role: "user"`) may do on the team's keys without
/// `team_member_permissions` (not stored here): LiteLLM's baseline.
const TEAM_MEMBER_BASELINE: [&str; 2] = ["/key/info", "/key/health"];

/// How LiteLLM's route check treats a management route for callers who are not proxy admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// Proxy admins only.
    AdminOnly,
    /// `/key/generate|update|delete|regenerate|block|unblock`: `internal_user`s too.
    KeyManagement,
    /// `/team/update`, `/team/member_add|member_delete|member_update`: any key; the handler
    /// checks the caller is an admin of the team.
    SelfManaged,
    /// `/key/info`, `/key/list`, `/team/info`, `/team/list`, `/v2/team/list`, `/user/info`:
    /// any key; the handler narrows what it shows.
    Info,
}

pub fn is_viewer(auth: &AuthCtx) -> bool {
    auth.user_role == Some("proxy_admin_viewer")
}

/// Proxy admins and admin viewers read everything.
pub fn can_view_all(auth: &AuthCtx) -> bool {
    auth.is_admin || is_viewer(auth)
}

/// LiteLLM masks user ids in the admin-only message: the first 6 and last 2 characters stay.
fn mask_user_id(id: &str) -> String {
    let n = id.chars().count();
    if n <= 8 {
        return "*".repeat(if n <= 4 { 3 } else { n });
    }
    let head: String = id.chars().take(6).collect();
    let tail: String = id.chars().skip(n - 2).collect();
    format!("{head}{}{tail}", "*".repeat(n - 8))
}

/// LiteLLM's 401 for a route only proxy admins may call.
pub fn admin_only(auth: &AuthCtx, route: &str) -> ApiError {
    let (role, user) = match auth.user_role {
        Some(role) => (role, auth.user_id().unwrap_or("unknown")),
        None => ("unknown", "unknown"),
    };
    ApiError::proxy_auth(format!(
        "Authentication Error, Only proxy admin can be used to generate, delete, update info for new keys/users/teams. Route={route}. Your role={role}. Your user_id={}",
        mask_user_id(user)
    ))
}

/// A 403 the way LiteLLM's management routes send it.
pub fn forbidden(message: impl Into<String>) -> ApiError {
    let mut e = ApiError::new(ErrorClass::ProxyAuth, message).with_param("None");
    e.status_override = Some(StatusCode::FORBIDDEN);
    e
}

/// LiteLLM's route check: refuses callers whose role does not reach the route's class.
pub fn gate(auth: &AuthCtx, route: &str, class: RouteClass, read: bool) -> ApiResult<()> {
    if auth.is_admin {
        return Ok(());
    }
    if is_viewer(auth) {
        return if read {
            Ok(())
        } else {
            Err(forbidden(format!(
                "user not allowed to access this route, role= proxy_admin_viewer. Trying to access: {route}"
            )))
        };
    }
    match class {
        RouteClass::Info | RouteClass::SelfManaged => Ok(()),
        RouteClass::KeyManagement if auth.user_role == Some("internal_user") => Ok(()),
        RouteClass::KeyManagement | RouteClass::AdminOnly => Err(admin_only(auth, route)),
    }
}

/// A member's role in a team (`admin` or `user`), from `members_with_roles`.
pub fn team_role<'a>(team: &'a TeamRow, user_id: Option<&str>) -> Option<&'a str> {
    let user_id = user_id?;
    team.members_with_roles
        .as_array()?
        .iter()
        .find(|m| m.get("user_id").and_then(Value::as_str) == Some(user_id))
        .map(|m| m.get("role").and_then(Value::as_str).unwrap_or("user"))
}

pub fn is_team_admin(auth: &AuthCtx, team: &TeamRow) -> bool {
    team_role(team, auth.user_id()) == Some("admin")
}

/// Proxy admins and the team's admins; others get LiteLLM's 403 naming the route.
pub fn require_team_admin(auth: &AuthCtx, team: &TeamRow, route: &str) -> ApiResult<()> {
    if auth.is_admin || is_team_admin(auth, team) {
        return Ok(());
    }
    Err(forbidden(format!(
        "Call not allowed. User not proxy admin OR team admin. route={route}, team_id={}",
        team.team_id
    )))
}

/// LiteLLM's check before a non-admin acts on a team's key through a key-management route:
/// team admins may; plain members only on the baseline routes; outsiders not at all (401).
pub fn require_team_key_right(auth: &AuthCtx, team: &TeamRow, route: &str) -> ApiResult<()> {
    if auth.is_admin {
        return Ok(());
    }
    let user = auth.user_id().unwrap_or_default();
    match team_role(team, auth.user_id()) {
        Some("admin") => Ok(()),
        Some(_) if TEAM_MEMBER_BASELINE.contains(&route) => Ok(()),
        Some(_) => Err(team_member_permission_error(team, route)),
        None => {
            let mut e = ApiError::new(
                ErrorClass::ProxyAuth,
                format!(
                    "User {user} does not belong to team {}. Team-scoped key management endpoints can only be used for keys in your own team.",
                    team.team_id
                ),
            )
            .with_param(route);
            e.type_override = Some("team_member_permission_error");
            Err(e)
        }
    }
}

/// LiteLLM's 401 for a plain team member calling a key route the team did not grant.
pub fn team_member_permission_error(team: &TeamRow, route: &str) -> ApiError {
    let mut e = ApiError::new(
        ErrorClass::ProxyAuth,
        format!(
            "Team member does not have permissions for endpoint: {route}. You only have access to the following endpoints: {TEAM_MEMBER_BASELINE:?} for team {}. To create keys for this team, please ask your proxy admin to check the team member permission settings and update the settings to allow team member users to create keys.",
            team.team_id
        ),
    )
    .with_param(route);
    e.type_override = Some("team_member_permission_error");
    e
}

/// `general_settings.team_admin_editable_team_fields`, as listed in the config.
fn team_admin_grants(state: &AppState) -> Vec<String> {
    state
        .loaded
        .config
        .general_settings
        .extra
        .get(TEAM_ADMIN_EDITABLE)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// A team admin's `/team/update`: only the fields the proxy admin granted
/// (`team_admin_editable_team_fields`, among `tpm_limit`, `rpm_limit`, `max_budget`) may
/// change; `changed` are the fields whose stored value the request would change.
pub fn check_team_admin_update(state: &AppState, changed: &[String]) -> ApiResult<()> {
    let permitted: Vec<String> = team_admin_grants(state)
        .into_iter()
        .filter(|f| TEAM_ADMIN_EDITABLE_SUPPORTED.contains(&f.as_str()))
        .collect();
    if permitted.is_empty() {
        return Err(forbidden(format!(
            "Team admins on this proxy cannot edit team settings. Ask a proxy admin to enable fields under {SETTINGS_LOCATION}."
        )));
    }
    let mut blocked: Vec<&String> = changed.iter().filter(|f| !permitted.contains(f)).collect();
    blocked.sort();
    match blocked.first() {
        Some(field) => Err(forbidden(format!(
            "Team admins on this proxy do not have permission to update '{field}'. Ask a proxy admin to add it under {SETTINGS_LOCATION}."
        ))),
        None => Ok(()),
    }
}

/// A team admin's `/key/update` on another member's key: only with the `member_key_budgets`
/// grant, and only budget fields (`max_budget`, `budget_duration`, `soft_budget`,
/// `budget_limits`).
pub fn check_team_admin_member_key_update(state: &AppState, changed: &[String]) -> ApiResult<()> {
    const BUDGET_FIELDS: [&str; 4] = [
        "max_budget",
        "budget_duration",
        "soft_budget",
        "budget_limits",
    ];
    if !team_admin_grants(state)
        .iter()
        .any(|g| g == MEMBER_KEY_BUDGETS)
    {
        return Err(forbidden(format!(
            "Team admins on this proxy cannot update budgets on other members' keys. Ask a proxy admin to enable '{MEMBER_KEY_BUDGETS}' under {SETTINGS_LOCATION}."
        )));
    }
    let mut blocked: Vec<&String> = changed
        .iter()
        .filter(|f| !BUDGET_FIELDS.contains(&f.as_str()))
        .collect();
    blocked.sort();
    match blocked.first() {
        Some(field) => Err(forbidden(format!(
            "Team admins on this proxy may only update budget fields on other members' keys, not '{field}'. Ask a proxy admin to add it under {SETTINGS_LOCATION}."
        ))),
        None => Ok(()),
    }
}

/// The body fields whose value differs from the stored object's (`ignore`d fields aside):
/// what a request would change.
pub fn changed_fields(
    body: &serde_json::Map<String, Value>,
    stored: &serde_json::Map<String, Value>,
    ignore: &[&str],
) -> Vec<String> {
    body.iter()
        .filter(|(k, _)| !ignore.contains(&k.as_str()))
        .filter(|(k, v)| {
            stored.get(k.as_str()) != Some(v) && !same_number(stored.get(k.as_str()), v)
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// `10` and `10.0` are the same value to a client.
fn same_number(a: Option<&Value>, b: &Value) -> bool {
    match (a.and_then(Value::as_f64), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_user_ids_like_litellm() {
        assert_eq!(mask_user_id("abc"), "***");
        assert_eq!(mask_user_id("unknown"), "*******");
        assert_eq!(mask_user_id("alice-the-admin"), "alice-*******in");
    }

    #[test]
    fn team_roles_come_from_the_roster() {
        let team = TeamRow {
            team_id: "t".into(),
            members_with_roles: serde_json::json!([
                {"role": "admin", "user_id": "a"},
                {"role": "user", "user_id": "b"},
                {"user_email": "c@x.io", "role": "admin"}
            ]),
            ..TeamRow::default()
        };
        assert_eq!(team_role(&team, Some("a")), Some("admin"));
        assert_eq!(team_role(&team, Some("b")), Some("user"));
        assert_eq!(team_role(&team, Some("c")), None);
        assert_eq!(team_role(&team, None), None);
    }
}
