//! Row types and the mapping from query rows (both backends read lists, JSON and timestamps as
//! text, see `store::mod`).

use chrono::NaiveDateTime;
use serde_json::Value;
use sqlx::Row;
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyRow {
    pub token: String,
    pub key_name: Option<String>,
    pub key_alias: Option<String>,
    pub spend: f64,
    pub expires: Option<NaiveDateTime>,
    pub models: Vec<String>,
    pub aliases: Value,
    pub config: Value,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub permissions: Value,
    pub max_parallel_requests: Option<i64>,
    pub metadata: Value,
    pub blocked: Option<bool>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<NaiveDateTime>,
    pub key_type: Option<String>,
    pub model_spend: Value,
    pub model_max_budget: Value,
    pub created_at: Option<NaiveDateTime>,
    pub created_by: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
    pub updated_by: Option<String>,
    /// The `LiteLLM_BudgetTable` row the key links to (LiteLLM keeps a key's `soft_budget` there).
    pub budget_id: Option<String>,
    /// That row's `soft_budget`: crossing it is reported, never refused. Written through the
    /// budget row (see `Store::insert_key`).
    pub soft_budget: Option<f64>,
    /// LiteLLM's "soft budget alert already sent" flag.
    pub soft_budget_cooldown: bool,
    /// The organization the key belongs to directly (a team key follows its team's).
    pub organization_id: Option<String>,
    /// The request `cache` controls the key may use (empty: all).
    pub allowed_cache_controls: Vec<String>,
    /// The routes the key may call, as paths, `*` prefixes or LiteLLM's route-group names
    /// (empty: no restriction beyond the caller's role).
    pub allowed_routes: Vec<String>,
}

/// A spend-log column that usually holds one of a few fixed words (a call type, a provider,
/// `True`/`False`, `success`/`failure`): those are borrowed, not allocated per call.
pub type Label = std::borrow::Cow<'static, str>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpendLogRow {
    pub request_id: String,
    pub call_type: Label,
    pub api_key: String,
    pub spend: f64,
    pub total_tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub start_time: NaiveDateTime,
    pub end_time: NaiveDateTime,
    pub request_duration_ms: Option<i64>,
    pub completion_start_time: Option<NaiveDateTime>,
    pub model: Arc<str>,
    pub model_id: Arc<str>,
    pub model_group: Arc<str>,
    pub custom_llm_provider: Label,
    pub api_base: Arc<str>,
    pub user: String,
    pub metadata: Value,
    pub cache_hit: Label,
    /// The response-cache key, when caching is on ("" / NULL otherwise).
    pub cache_key: Option<String>,
    pub request_tags: Value,
    pub team_id: Option<String>,
    /// The organization of the key's team.
    pub organization_id: Option<String>,
    pub end_user: Option<String>,
    pub status: Label,
}

pub fn parse_ts(s: Option<String>) -> Option<NaiveDateTime> {
    parse_ts_str(&s?)
}

/// Parses the timestamp forms the stores and clients use.
pub fn parse_ts_str(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().trim_end_matches('Z');
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

fn json(s: Option<String>, default: Value) -> Value {
    s.and_then(|t| serde_json::from_str(&t).ok())
        .filter(|v: &Value| !v.is_null())
        .unwrap_or(default)
}

fn strings(s: Option<String>) -> Vec<String> {
    s.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

macro_rules! key_from_row {
    ($r:expr) => {{
        let r = $r;
        KeyRow {
            token: r.try_get("token").unwrap_or_default(),
            key_name: r.try_get("key_name").ok().flatten(),
            key_alias: r.try_get("key_alias").ok().flatten(),
            spend: r
                .try_get::<Option<f64>, _>("spend")
                .ok()
                .flatten()
                .unwrap_or(0.0),
            expires: parse_ts(r.try_get("expires").ok().flatten()),
            models: strings(r.try_get("models").ok().flatten()),
            allowed_cache_controls: strings(r.try_get("allowed_cache_controls").ok().flatten()),
            allowed_routes: strings(r.try_get("allowed_routes").ok().flatten()),
            aliases: json(
                r.try_get("aliases").ok().flatten(),
                Value::Object(Default::default()),
            ),
            config: json(
                r.try_get("config").ok().flatten(),
                Value::Object(Default::default()),
            ),
            user_id: r.try_get("user_id").ok().flatten(),
            team_id: r.try_get("team_id").ok().flatten(),
            permissions: json(
                r.try_get("permissions").ok().flatten(),
                Value::Object(Default::default()),
            ),
            max_parallel_requests: r.try_get("max_parallel_requests").ok().flatten(),
            metadata: json(
                r.try_get("metadata").ok().flatten(),
                Value::Object(Default::default()),
            ),
            blocked: r.try_get("blocked").ok().flatten(),
            tpm_limit: r.try_get("tpm_limit").ok().flatten(),
            rpm_limit: r.try_get("rpm_limit").ok().flatten(),
            max_budget: r.try_get("max_budget").ok().flatten(),
            budget_duration: r.try_get("budget_duration").ok().flatten(),
            budget_reset_at: parse_ts(r.try_get("budget_reset_at").ok().flatten()),
            key_type: r.try_get("key_type").ok().flatten(),
            model_spend: json(
                r.try_get("model_spend").ok().flatten(),
                Value::Object(Default::default()),
            ),
            model_max_budget: json(
                r.try_get("model_max_budget").ok().flatten(),
                Value::Object(Default::default()),
            ),
            created_at: parse_ts(r.try_get("created_at").ok().flatten()),
            created_by: r.try_get("created_by").ok().flatten(),
            updated_at: parse_ts(r.try_get("updated_at").ok().flatten()),
            updated_by: r.try_get("updated_by").ok().flatten(),
            budget_id: r.try_get("budget_id").ok().flatten(),
            soft_budget: r.try_get("soft_budget").ok().flatten(),
            soft_budget_cooldown: r
                .try_get::<Option<bool>, _>("soft_budget_cooldown")
                .ok()
                .flatten()
                .unwrap_or(false),
            organization_id: r.try_get("organization_id").ok().flatten(),
        }
    }};
}

pub fn key_from_sqlite(r: &sqlx::sqlite::SqliteRow) -> KeyRow {
    key_from_row!(r)
}

pub fn key_from_pg(r: &sqlx::postgres::PgRow) -> KeyRow {
    key_from_row!(r)
}

/// A `LiteLLM_UserTable` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRow {
    pub user_id: String,
    pub user_alias: Option<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    pub teams: Vec<String>,
    pub user_role: Option<String>,
    pub max_budget: Option<f64>,
    pub spend: f64,
    pub user_email: Option<String>,
    pub models: Vec<String>,
    pub metadata: Value,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<NaiveDateTime>,
    pub model_spend: Value,
    pub model_max_budget: Value,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
}

/// A `LiteLLM_TeamTable` row. `members_with_roles` is LiteLLM's JSON list of
/// `{"role", "user_id", "user_email"}` objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamRow {
    pub team_id: String,
    pub team_alias: Option<String>,
    pub organization_id: Option<String>,
    pub admins: Vec<String>,
    pub members: Vec<String>,
    pub members_with_roles: Value,
    pub metadata: Value,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub spend: f64,
    pub models: Vec<String>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<NaiveDateTime>,
    pub blocked: bool,
    pub model_spend: Value,
    pub model_max_budget: Value,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
}

fn obj(s: Option<String>) -> Value {
    json(s, Value::Object(Default::default()))
}

macro_rules! user_from_row {
    ($r:expr) => {{
        let r = $r;
        UserRow {
            user_id: r.try_get("user_id").unwrap_or_default(),
            user_alias: r.try_get("user_alias").ok().flatten(),
            team_id: r.try_get("team_id").ok().flatten(),
            organization_id: r.try_get("organization_id").ok().flatten(),
            teams: strings(r.try_get("teams").ok().flatten()),
            user_role: r.try_get("user_role").ok().flatten(),
            max_budget: r.try_get("max_budget").ok().flatten(),
            spend: r
                .try_get::<Option<f64>, _>("spend")
                .ok()
                .flatten()
                .unwrap_or(0.0),
            user_email: r.try_get("user_email").ok().flatten(),
            models: strings(r.try_get("models").ok().flatten()),
            metadata: obj(r.try_get("metadata").ok().flatten()),
            max_parallel_requests: r.try_get("max_parallel_requests").ok().flatten(),
            tpm_limit: r.try_get("tpm_limit").ok().flatten(),
            rpm_limit: r.try_get("rpm_limit").ok().flatten(),
            budget_duration: r.try_get("budget_duration").ok().flatten(),
            budget_reset_at: parse_ts(r.try_get("budget_reset_at").ok().flatten()),
            model_spend: obj(r.try_get("model_spend").ok().flatten()),
            model_max_budget: obj(r.try_get("model_max_budget").ok().flatten()),
            created_at: parse_ts(r.try_get("created_at").ok().flatten()),
            updated_at: parse_ts(r.try_get("updated_at").ok().flatten()),
        }
    }};
}

macro_rules! team_from_row {
    ($r:expr) => {{
        let r = $r;
        TeamRow {
            team_id: r.try_get("team_id").unwrap_or_default(),
            team_alias: r.try_get("team_alias").ok().flatten(),
            organization_id: r.try_get("organization_id").ok().flatten(),
            admins: strings(r.try_get("admins").ok().flatten()),
            members: strings(r.try_get("members").ok().flatten()),
            // A LiteLLM-created row may hold `{}` (the column default) instead of a list.
            members_with_roles: match json(
                r.try_get("members_with_roles").ok().flatten(),
                Value::Array(Vec::new()),
            ) {
                v @ Value::Array(_) => v,
                _ => Value::Array(Vec::new()),
            },
            metadata: obj(r.try_get("metadata").ok().flatten()),
            max_budget: r.try_get("max_budget").ok().flatten(),
            soft_budget: r.try_get("soft_budget").ok().flatten(),
            spend: r
                .try_get::<Option<f64>, _>("spend")
                .ok()
                .flatten()
                .unwrap_or(0.0),
            models: strings(r.try_get("models").ok().flatten()),
            max_parallel_requests: r.try_get("max_parallel_requests").ok().flatten(),
            tpm_limit: r.try_get("tpm_limit").ok().flatten(),
            rpm_limit: r.try_get("rpm_limit").ok().flatten(),
            budget_duration: r.try_get("budget_duration").ok().flatten(),
            budget_reset_at: parse_ts(r.try_get("budget_reset_at").ok().flatten()),
            blocked: r
                .try_get::<Option<bool>, _>("blocked")
                .ok()
                .flatten()
                .unwrap_or(false),
            model_spend: obj(r.try_get("model_spend").ok().flatten()),
            model_max_budget: obj(r.try_get("model_max_budget").ok().flatten()),
            created_at: parse_ts(r.try_get("created_at").ok().flatten()),
            updated_at: parse_ts(r.try_get("updated_at").ok().flatten()),
        }
    }};
}

pub fn user_from_sqlite(r: &sqlx::sqlite::SqliteRow) -> UserRow {
    user_from_row!(r)
}

pub fn user_from_pg(r: &sqlx::postgres::PgRow) -> UserRow {
    user_from_row!(r)
}

pub fn team_from_sqlite(r: &sqlx::sqlite::SqliteRow) -> TeamRow {
    team_from_row!(r)
}

pub fn team_from_pg(r: &sqlx::postgres::PgRow) -> TeamRow {
    team_from_row!(r)
}

/// A `LiteLLM_BudgetTable` row: a reusable budget and rate-limit tier (end users, and in
/// LiteLLM also keys, organizations and memberships, link to it by `budget_id`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetRow {
    pub budget_id: String,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub tpd_limit: Option<i64>,
    /// LiteLLM's `{model: {budget_limit, time_period}}` map; `None` when the column is NULL.
    pub model_max_budget: Option<Value>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<NaiveDateTime>,
    pub allowed_models: Vec<String>,
    pub temp_budget_increase: Option<f64>,
    pub temp_budget_expiry: Option<NaiveDateTime>,
    pub created_at: Option<NaiveDateTime>,
    pub created_by: String,
    pub updated_at: Option<NaiveDateTime>,
    pub updated_by: String,
}

/// A `LiteLLM_EndUserTable` row (a customer: the `user` of LLM requests), with the budget row
/// it links to when read through the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndUserRow {
    pub user_id: String,
    pub alias: Option<String>,
    pub spend: f64,
    pub allowed_model_region: Option<String>,
    pub default_model: Option<String>,
    pub models: Vec<String>,
    pub budget_id: Option<String>,
    pub object_permission_id: Option<String>,
    pub blocked: bool,
    /// The joined `LiteLLM_BudgetTable` row of `budget_id` (`None` when unlinked or dangling).
    pub budget: Option<BudgetRow>,
}

/// Reads a budget row whose columns carry the `b_` prefix (see `store::budgets`).
macro_rules! budget_from_row {
    ($r:expr) => {{
        let r = $r;
        let budget_id: Option<String> = r.try_get("b_budget_id").ok().flatten();
        budget_id.map(|budget_id| BudgetRow {
            budget_id,
            max_budget: r.try_get("b_max_budget").ok().flatten(),
            soft_budget: r.try_get("b_soft_budget").ok().flatten(),
            max_parallel_requests: r.try_get("b_max_parallel_requests").ok().flatten(),
            tpm_limit: r.try_get("b_tpm_limit").ok().flatten(),
            rpm_limit: r.try_get("b_rpm_limit").ok().flatten(),
            tpd_limit: r.try_get("b_tpd_limit").ok().flatten(),
            model_max_budget: r
                .try_get::<Option<String>, _>("b_model_max_budget")
                .ok()
                .flatten()
                .and_then(|t| serde_json::from_str(&t).ok())
                .filter(|v: &Value| !v.is_null()),
            budget_duration: r.try_get("b_budget_duration").ok().flatten(),
            budget_reset_at: parse_ts(r.try_get("b_budget_reset_at").ok().flatten()),
            allowed_models: strings(r.try_get("b_allowed_models").ok().flatten()),
            temp_budget_increase: r.try_get("b_temp_budget_increase").ok().flatten(),
            temp_budget_expiry: parse_ts(r.try_get("b_temp_budget_expiry").ok().flatten()),
            created_at: parse_ts(r.try_get("b_created_at").ok().flatten()),
            created_by: r
                .try_get::<Option<String>, _>("b_created_by")
                .ok()
                .flatten()
                .unwrap_or_default(),
            updated_at: parse_ts(r.try_get("b_updated_at").ok().flatten()),
            updated_by: r
                .try_get::<Option<String>, _>("b_updated_by")
                .ok()
                .flatten()
                .unwrap_or_default(),
        })
    }};
}

macro_rules! end_user_from_row {
    ($r:expr, $budget:expr) => {{
        let r = $r;
        EndUserRow {
            user_id: r.try_get("user_id").unwrap_or_default(),
            alias: r.try_get("alias").ok().flatten(),
            spend: r
                .try_get::<Option<f64>, _>("spend")
                .ok()
                .flatten()
                .unwrap_or(0.0),
            allowed_model_region: r.try_get("allowed_model_region").ok().flatten(),
            default_model: r.try_get("default_model").ok().flatten(),
            models: strings(r.try_get("models").ok().flatten()),
            budget_id: r.try_get("budget_id").ok().flatten(),
            object_permission_id: r.try_get("object_permission_id").ok().flatten(),
            blocked: r
                .try_get::<Option<bool>, _>("blocked")
                .ok()
                .flatten()
                .unwrap_or(false),
            budget: $budget,
        }
    }};
}

pub fn budget_from_sqlite(r: &sqlx::sqlite::SqliteRow) -> Option<BudgetRow> {
    budget_from_row!(r)
}

pub fn budget_from_pg(r: &sqlx::postgres::PgRow) -> Option<BudgetRow> {
    budget_from_row!(r)
}

pub fn end_user_from_sqlite(r: &sqlx::sqlite::SqliteRow) -> EndUserRow {
    end_user_from_row!(r, budget_from_sqlite(r))
}

pub fn end_user_from_pg(r: &sqlx::postgres::PgRow) -> EndUserRow {
    end_user_from_row!(r, budget_from_pg(r))
}

/// A `LiteLLM_TeamMembership` row with its budget (`budget_id` -> `LiteLLM_BudgetTable`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MembershipRow {
    pub user_id: String,
    pub team_id: String,
    pub spend: f64,
    pub total_spend: f64,
    pub budget_id: Option<String>,
    pub budget: Option<BudgetRow>,
}

/// Reads a membership joined with its budget; the budget's columns carry a `b_` prefix.
macro_rules! membership_from_row {
    ($r:expr, $budget:expr) => {{
        let r = $r;
        let f = |c: &str| r.try_get::<Option<f64>, _>(c).ok().flatten().unwrap_or(0.0);
        MembershipRow {
            user_id: r.try_get("user_id").unwrap_or_default(),
            team_id: r.try_get("team_id").unwrap_or_default(),
            spend: f("spend"),
            total_spend: f("total_spend"),
            budget_id: r.try_get("budget_id").ok().flatten(),
            budget: $budget,
        }
    }};
}

pub fn membership_from_sqlite(r: &sqlx::sqlite::SqliteRow) -> MembershipRow {
    membership_from_row!(r, budget_from_sqlite(r))
}

pub fn membership_from_pg(r: &sqlx::postgres::PgRow) -> MembershipRow {
    membership_from_row!(r, budget_from_pg(r))
}
