//! The only place with SQL: virtual keys, users, teams, end users, budgets and spend, on SQLite
//! (embedded default) or Postgres.
//!
//! Tables and columns are LiteLLM's (`LiteLLM_VerificationToken`, `LiteLLM_SpendLogs`, ...), so
//! a database a LiteLLM proxy created is read and written as is: on it our migrations are
//! recorded, not run (`adopt`). On a database of our own they create what is missing and only
//! ever add columns, never drop, with one exception: in the embedded SQLite file (ours alone)
//! `LiteLLM_SpendLogs` is a view with LiteLLM's columns over a leaner table, which its
//! migration filled from the earlier table. The two backends are a closed enum:
//! reads share one row mapper (Postgres casts lists, JSON and timestamps to text in the query),
//! writes bind each backend's native types.

mod adopt;
mod budgets;
mod end_users;
mod membership;
mod models;
mod organizations;
mod rows;
pub mod spend_reports;
mod teams;
mod users;

pub use end_users::BudgetWrite;
pub use membership::{budget_limits_anything, new_budget, BudgetPatch, RosterChange};
pub use models::ProxyModelRow;
pub use organizations::{OrgDeletion, OrgMemberRow, OrgMemberWrite, OrgRow};
pub use rows::{
    parse_ts_str as rows_parse_ts, BudgetRow, EndUserRow, KeyRow, MembershipRow, SpendLogRow,
    TeamRow, UserRow,
};
pub use teams::{TeamListFilter, TeamSort};
pub use users::UserFilter;

use chrono::NaiveDateTime;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

/// Pool size per replica (LiteLLM's `database_connection_pool_limit` default).
const DEFAULT_POOL: u32 = 10;
/// How long an unused embedded-database connection stays open.
const SQLITE_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long start-up waits for the database before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Conflict(String),
    /// A write named rows that do not exist; nothing was written.
    #[error("{0}")]
    NotFound(String),
    /// The database or its URL cannot be used as it is.
    #[error("{0}")]
    Config(String),
}

impl StoreError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Db(sqlx::Error::Database(d)) if d.is_unique_violation())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

const PG_KEY_COLUMNS: &str = r#""token", "key_name", "key_alias", "spend",
    to_char("expires", 'YYYY-MM-DD HH24:MI:SS.MS') AS "expires",
    COALESCE(array_to_json("models")::text, '[]') AS "models", "aliases"::text AS "aliases",
    "config"::text AS "config", "user_id", "team_id", "permissions"::text AS "permissions",
    "max_parallel_requests"::bigint AS "max_parallel_requests", "metadata"::text AS "metadata",
    "blocked", "tpm_limit", "rpm_limit", "max_budget", "budget_duration",
    to_char("budget_reset_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "budget_reset_at", "key_type",
    "model_spend"::text AS "model_spend", "model_max_budget"::text AS "model_max_budget",
    to_char("created_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "created_at", "created_by",
    to_char("updated_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "updated_at", "updated_by", "budget_id",
    "soft_budget_cooldown", "organization_id", (SELECT b."soft_budget" FROM "LiteLLM_BudgetTable" b WHERE b."budget_id" = "LiteLLM_VerificationToken"."budget_id") AS "soft_budget""#;

const SQLITE_KEY_COLUMNS: &str = r#""token", "key_name", "key_alias", "spend", "expires", "models",
    "aliases", "config", "user_id", "team_id", "permissions", "max_parallel_requests", "metadata",
    "blocked", "tpm_limit", "rpm_limit", "max_budget", "budget_duration", "budget_reset_at",
    "key_type", "model_spend", "model_max_budget", "created_at", "created_by", "updated_at",
    "updated_by", "budget_id", "soft_budget_cooldown", "organization_id",
    (SELECT b."soft_budget" FROM "LiteLLM_BudgetTable" b WHERE b."budget_id" = "LiteLLM_VerificationToken"."budget_id") AS "soft_budget""#;

/// Spend-log rows per INSERT statement (19 parameters each in SQLite, 24 in PostgreSQL; well
/// under both databases' limits).
/// A batch is cut into statements of this many rows and then of halving sizes for the rest
/// (see [`statement_chunks`]), so only seven distinct statements exist and each is prepared once
/// per connection (sqlx caches prepared statements by their SQL). A statement sized to each
/// batch was parsed anew every time, which cost more than inserting its rows.
const LOG_ROWS_PER_STATEMENT: usize = 64;
const PG_LOG_INSERT_COLUMNS: &str = r#"INSERT INTO "LiteLLM_SpendLogs" ("request_id","call_type","api_key","spend","total_tokens","prompt_tokens","completion_tokens","startTime","endTime","request_duration_ms","completionStartTime","model","model_id","model_group","custom_llm_provider","api_base","user","metadata","cache_hit","request_tags","team_id","organization_id","end_user","status") "#;
/// Bound values per spend-log row in PostgreSQL (the columns above).
const PG_LOG_INSERT_PARAMS: usize = 24;
/// The embedded store's lean spend-log table (see its migration): the deployment's columns are
/// one id into `LiteLLM_SpendLogDeployments`, and NULL stands for the usual `user`, `metadata`,
/// `cache_hit`, `request_tags` and `status`.
const SQLITE_LOG_INSERT_COLUMNS: &str = r#"INSERT INTO "LiteLLM_SpendLogRows" ("request_id","deployment","api_key","spend","total_tokens","prompt_tokens","completion_tokens","startTime","endTime","request_duration_ms","completionStartTime","user","metadata","cache_hit","request_tags","team_id","organization_id","end_user","status") "#;
/// Bound values per spend-log row in SQLite (the columns above).
const SQLITE_LOG_INSERT_PARAMS: usize = 19;

/// The spend-log INSERT for `rows` rows (a power of two up to [`LOG_ROWS_PER_STATEMENT`]),
/// built once per size and backend: the text never changes, so building it per batch was
/// wasted work.
fn log_insert_sql(postgres: bool, rows: usize) -> &'static str {
    const SIZES: usize = LOG_ROWS_PER_STATEMENT.trailing_zeros() as usize + 1;
    static SQL: [OnceLock<String>; 2 * SIZES] = [const { OnceLock::new() }; 2 * SIZES];
    let size = (rows.trailing_zeros() as usize).min(SIZES - 1);
    SQL[usize::from(postgres) * SIZES + size].get_or_init(|| {
        let rows = 1usize << size;
        let (columns, params) = if postgres {
            (PG_LOG_INSERT_COLUMNS, PG_LOG_INSERT_PARAMS)
        } else {
            (SQLITE_LOG_INSERT_COLUMNS, SQLITE_LOG_INSERT_PARAMS)
        };
        let mut sql = String::with_capacity(columns.len() + rows * 200);
        sql.push_str(columns);
        sql.push_str("VALUES ");
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ",(" });
            for c in 0..params {
                if c > 0 {
                    sql.push(',');
                }
                if postgres {
                    sql.push('$');
                    sql.push_str(&(r * params + c + 1).to_string());
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
        }
        // Postgres: no conflict target, since a spend log partitioned on "startTime" (LiteLLM's
        // runbook) can only have unique indexes that include it, none on "request_id" alone.
        sql.push_str(if postgres {
            " ON CONFLICT DO NOTHING"
        } else {
            " ON CONFLICT(\"request_id\") DO NOTHING"
        });
        sql
    })
}

/// A member's spend in a team (`LiteLLM_TeamMembership`, where LiteLLM keeps per-member
/// figures): added to the member's row, which is created only while the user is on the team's
/// roster, so spend flushed after a removal never brings the member back. `total_spend` is
/// never reset.
const PG_TEAM_MEMBER_SPEND: &str = r#"INSERT INTO "LiteLLM_TeamMembership" ("user_id", "team_id", "spend", "total_spend")
    SELECT $1, $2, $3, $3
    WHERE EXISTS (SELECT 1 FROM "LiteLLM_TeamTable" t WHERE t."team_id" = $2
                    AND t."members_with_roles" @> jsonb_build_array(jsonb_build_object('user_id', $1::text)))
       OR EXISTS (SELECT 1 FROM "LiteLLM_TeamMembership" m WHERE m."user_id" = $1 AND m."team_id" = $2)
    ON CONFLICT ("user_id", "team_id") DO UPDATE
    SET "spend" = "LiteLLM_TeamMembership"."spend" + EXCLUDED."spend",
        "total_spend" = "LiteLLM_TeamMembership"."total_spend" + EXCLUDED."total_spend""#;
const SQLITE_TEAM_MEMBER_SPEND: &str = r#"INSERT INTO "LiteLLM_TeamMembership" ("user_id", "team_id", "spend", "total_spend")
    SELECT ?1, ?2, ?3, ?3
    WHERE EXISTS (SELECT 1 FROM "LiteLLM_TeamTable" t, json_each(CASE json_type(t."members_with_roles")
                      WHEN 'array' THEN t."members_with_roles" ELSE '[]' END) j
                    WHERE t."team_id" = ?2 AND json_extract(j.value, '$.user_id') = ?1)
       OR EXISTS (SELECT 1 FROM "LiteLLM_TeamMembership" m WHERE m."user_id" = ?1 AND m."team_id" = ?2)
    ON CONFLICT ("user_id", "team_id") DO UPDATE
    SET "spend" = "spend" + excluded."spend", "total_spend" = "total_spend" + excluded."total_spend""#;

/// `YYYY-MM-DD HH:MM:SS.mmm`, the text form timestamps have in SQLite.
pub fn fmt_ts(t: NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    }
    // Written digit by digit into a fixed template: this runs three times per spend-log row,
    // and chrono's strftime interpreter cost several times more. A leap second (nanoseconds
    // past 1e9) prints as second 60, as chrono does.
    let mut out = *b"0000-00-00 00:00:00.000";
    let fields = [
        (4, year as u32),
        (7, t.month()),
        (10, t.day()),
        (13, t.hour()),
        (16, t.minute()),
        (19, t.second() + t.nanosecond() / 1_000_000_000),
        (23, t.nanosecond() % 1_000_000_000 / 1_000_000),
    ];
    let mut start = 0;
    for (end, n) in fields {
        crate::telemetry::fill_digits(&mut out[start..end], u64::from(n));
        start = end + 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Cuts `rows` into slices of [`LOG_ROWS_PER_STATEMENT`] rows, then of 32, 16, ... 1 for the rest.
fn statement_chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut n = LOG_ROWS_PER_STATEMENT;
        while n > rest.len() {
            n /= 2;
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// One spend-log row's values for the SQLite INSERT, in [`SQLITE_LOG_INSERT_COLUMNS`] order;
/// `deployment` is the row's id in `LiteLLM_SpendLogDeployments`.
fn bind_sqlite_log<'q>(
    args: &mut sqlx::sqlite::SqliteArguments<'q>,
    l: &'q SpendLogRow,
    deployment: i64,
) -> Result<(), sqlx::error::BoxDynError> {
    use sqlx::Arguments;
    /// NULL for the value the view shows when the column is NULL.
    fn unless<'a>(v: &'a str, usual: &str) -> Option<&'a str> {
        (v != usual).then_some(v)
    }
    args.add(l.request_id.as_str())?;
    args.add(deployment)?;
    args.add(l.api_key.as_str())?;
    args.add(l.spend)?;
    args.add(l.total_tokens)?;
    args.add(l.prompt_tokens)?;
    args.add(l.completion_tokens)?;
    args.add(fmt_ts(l.start_time))?;
    args.add(fmt_ts(l.end_time))?;
    args.add(l.request_duration_ms)?;
    args.add(l.completion_start_time.map(fmt_ts))?;
    args.add(unless(&l.user, ""))?;
    args.add(non_empty_json(&l.metadata))?;
    args.add(unless(&l.cache_hit, "False"))?;
    args.add(non_empty_json(&l.request_tags))?;
    args.add(l.team_id.as_deref())?;
    args.add(l.organization_id.as_deref())?;
    args.add(l.end_user.as_deref())?;
    args.add(unless(&l.status, "success"))?;
    Ok(())
}

/// The JSON text of a spend-log object or list column, or None for an empty one (which the
/// embedded store's view shows as `{}` / `[]`).
fn non_empty_json(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) if m.is_empty() => None,
        Value::Array(a) if a.is_empty() => None,
        _ => Some(v.to_string()),
    }
}

/// The columns a spend-log row shares with every call to the same deployment: its key in
/// `LiteLLM_SpendLogDeployments`.
fn deployment_key(l: &SpendLogRow) -> [&str; 6] {
    [
        &l.call_type,
        &l.model,
        &l.model_id,
        &l.model_group,
        &l.custom_llm_provider,
        &l.api_base,
    ]
}

/// The `LiteLLM_SpendLogDeployments` id of each row's deployment, adding the ones not there
/// yet. A batch names a handful of deployments, so this is two short statements per distinct
/// deployment, not per row.
async fn sqlite_deployment_ids(
    tx: &mut sqlx::SqliteConnection,
    logs: &[SpendLogRow],
) -> Result<Vec<i64>, sqlx::Error> {
    let mut known: Vec<([&str; 6], i64)> = Vec::new();
    let mut ids = Vec::with_capacity(logs.len());
    for l in logs {
        let key = deployment_key(l);
        let id = match known.iter().find(|(k, _)| *k == key) {
            Some((_, id)) => *id,
            None => {
                let [call_type, model, model_id, model_group, provider, api_base] = key;
                sqlx::query(r#"INSERT OR IGNORE INTO "LiteLLM_SpendLogDeployments" ("call_type", "model", "model_id", "model_group", "custom_llm_provider", "api_base") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"#)
                    .bind(call_type).bind(model).bind(model_id).bind(model_group).bind(provider).bind(api_base)
                    .execute(&mut *tx)
                    .await?;
                let (id,): (i64,) = sqlx::query_as(r#"SELECT "id" FROM "LiteLLM_SpendLogDeployments" WHERE "call_type" = ?1 AND "model" = ?2 AND "model_id" = ?3 AND "model_group" = ?4 AND "custom_llm_provider" = ?5 AND "api_base" = ?6"#)
                    .bind(call_type).bind(model).bind(model_id).bind(model_group).bind(provider).bind(api_base)
                    .fetch_one(&mut *tx)
                    .await?;
                known.push((key, id));
                id
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

fn json_text(v: &Value) -> String {
    match v {
        // Empty containers (the usual key metadata, aliases and member lists): no serializer.
        Value::Object(m) if m.is_empty() => "{}".to_string(),
        Value::Array(a) if a.is_empty() => "[]".to_string(),
        _ => v.to_string(),
    }
}

/// Filters of `/key/list`.
#[derive(Debug, Default, Clone)]
pub struct KeyFilter {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub key_alias: Option<String>,
    pub key_hash: Option<String>,
}

/// Filters of `/key/aliases`.
#[derive(Debug, Default, Clone)]
pub struct AliasFilter {
    /// A case-insensitive part of the alias (`%` and `_` keep their SQL `LIKE` meaning, as in
    /// LiteLLM).
    pub search: Option<String>,
    pub team_id: Option<String>,
    /// For callers who are not admins: only keys of this user or of these teams; with neither,
    /// none.
    pub scope: Option<(Option<String>, Vec<String>)>,
}

/// The team of the admin UI's session keys, which `/key/aliases` leaves out (LiteLLM's
/// `UI_SESSION_TOKEN_TEAM_ID`).
const UI_SESSION_TEAM: &str = "litellm-dashboard";

/// `WHERE ...` of `/key/aliases`, for either database; `like` is its case-insensitive `LIKE`.
fn push_alias_filter<'a, DB>(qb: &mut sqlx::QueryBuilder<'a, DB>, f: &'a AliasFilter, like: &str)
where
    DB: sqlx::Database,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(r#" WHERE "key_alias" IS NOT NULL AND "key_alias" <> '' AND ("team_id" IS NULL OR "team_id" <> "#)
        .push_bind(UI_SESSION_TEAM)
        .push(")");
    if let Some((user_id, teams)) = &f.scope {
        let mut any = false;
        qb.push(" AND (");
        if let Some(u) = user_id {
            qb.push(r#""user_id" = "#).push_bind(u.as_str());
            any = true;
        }
        if !teams.is_empty() {
            if any {
                qb.push(" OR ");
            }
            qb.push(r#""team_id" IN ("#);
            let mut list = qb.separated(", ");
            for t in teams {
                list.push_bind(t.as_str());
            }
            qb.push(")");
            any = true;
        }
        qb.push(if any { ")" } else { "1 = 0)" });
    }
    if let Some(s) = &f.search {
        qb.push(format!(r#" AND "key_alias" {like} "#))
            .push_bind(format!("%{s}%"));
    }
    if let Some(t) = &f.team_id {
        qb.push(r#" AND "team_id" = "#).push_bind(t.as_str());
    }
}

/// A budget the reset job reset.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetReset {
    /// A key, by hash.
    Key(String),
    User(String),
    Team(String),
    /// A `LiteLLM_BudgetTable` row (its end users were reset with it).
    Budget(String),
    /// An organization (its budget row was reset).
    Organization(String),
    /// A user's budget inside a team.
    Member {
        team: String,
        user: String,
    },
}

/// One batch of accounting written in one transaction.
#[derive(Debug, Default, Clone)]
pub struct SpendBatch {
    pub logs: Vec<SpendLogRow>,
    /// Increments: (key hash, amount).
    pub key_spend: Vec<(String, f64)>,
    pub user_spend: Vec<(String, f64)>,
    pub team_spend: Vec<(String, f64)>,
    /// A user's spend inside a team: (team id, user id, amount), added to
    /// `LiteLLM_TeamMembership.spend` and `total_spend`.
    pub member_spend: Vec<(String, String, f64)>,
    /// End users (the request's `user`): increments, creating the row when it is missing.
    pub end_user_spend: Vec<(String, f64)>,
    /// Organizations (of the key, or of its team): increments of
    /// `LiteLLM_OrganizationTable.spend`.
    pub org_spend: Vec<(String, f64)>,
}

impl Store {
    /// Opens the database named by `database_url`, or the embedded SQLite file at `sqlite_path`,
    /// and applies the migrations.
    pub async fn open(database_url: Option<&str>, sqlite_path: &str) -> StoreResult<Self> {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let pool = PgPoolOptions::new()
                    .max_connections(DEFAULT_POOL)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(adopt::pg_options(url)?)
                    .await?;
                adopt::migrate(&pool).await?;
                Ok(Self::Postgres(pool))
            }
            other => {
                let url = match other {
                    Some(u) => u.to_string(),
                    None => format!("sqlite://{sqlite_path}"),
                };
                let opts = SqliteConnectOptions::from_str(&url)?
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    // WAL + NORMAL: a commit survives a crash of the process, without an fsync
                    // per spend batch.
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    // A multi-row spend-log INSERT inside a transaction keeps a statement
                    // journal (the pages it changes, to undo it alone); past 64 kB SQLite
                    // spilled it to a temporary file, about one 4 kB write per 30 rows.
                    .pragma("temp_store", "memory")
                    .busy_timeout(Duration::from_secs(5));
                // Idle connections close after a while: each holds a page cache and prepared
                // statements, which would otherwise stay allocated after a burst. Not for an
                // in-memory database, which lives only as long as its connections.
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    // A local file needs no ping before each use: that was one more round
                    // trip to the connection's thread per spend batch and per lookup.
                    .test_before_acquire(false)
                    .idle_timeout((!in_memory).then_some(SQLITE_IDLE_TIMEOUT))
                    .connect_with(opts)
                    .await?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    pub async fn ping(&self) -> bool {
        match self {
            Self::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
            Self::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
        }
    }

    pub async fn get_key(&self, token: &str) -> StoreResult<Option<KeyRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_KEY_COLUMNS} FROM "LiteLLM_VerificationToken" WHERE "token" = ?1"#
                );
                sqlx::query(&q)
                    .bind(token)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::key_from_sqlite(&r))
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_KEY_COLUMNS} FROM "LiteLLM_VerificationToken" WHERE "token" = $1"#
                );
                sqlx::query(&q)
                    .bind(token)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::key_from_pg(&r))
            }
        })
    }

    pub async fn get_key_by_alias(&self, alias: &str) -> StoreResult<Option<KeyRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_KEY_COLUMNS} FROM "LiteLLM_VerificationToken" WHERE "key_alias" = ?1"#
                );
                sqlx::query(&q)
                    .bind(alias)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::key_from_sqlite(&r))
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_KEY_COLUMNS} FROM "LiteLLM_VerificationToken" WHERE "key_alias" = $1"#
                );
                sqlx::query(&q)
                    .bind(alias)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::key_from_pg(&r))
            }
        })
    }

    /// Inserts a new key. A duplicate `key_alias` (checked in the same transaction) or token is
    /// a [`StoreError::Conflict`].
    pub async fn insert_key(&self, k: &KeyRow) -> StoreResult<()> {
        self.write_key(k, true).await
    }

    /// Sets LiteLLM's `soft_budget_cooldown` flag of a key ("soft budget alert sent").
    pub async fn set_soft_budget_cooldown(&self, token: &str, on: bool) -> StoreResult<()> {
        const SQL: &str = r#"UPDATE "LiteLLM_VerificationToken" SET "soft_budget_cooldown" = $1 WHERE "token" = $2"#;
        match self {
            Self::Sqlite(p) => {
                sqlx::query(SQL).bind(on).bind(token).execute(p).await?;
            }
            Self::Postgres(p) => {
                sqlx::query(SQL).bind(on).bind(token).execute(p).await?;
            }
        }
        Ok(())
    }

    /// Overwrites every column of an existing key.
    pub async fn update_key(&self, k: &KeyRow) -> StoreResult<()> {
        self.write_key(k, false).await
    }

    async fn write_key(&self, k: &KeyRow, insert: bool) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                if let Some(alias) = &k.key_alias {
                    let dup: Option<(String,)> = sqlx::query_as(
                        r#"SELECT "token" FROM "LiteLLM_VerificationToken" WHERE "key_alias" = ?1 AND "token" <> ?2"#,
                    )
                    .bind(alias)
                    .bind(&k.token)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if dup.is_some() {
                        return Err(StoreError::Conflict(format!(
                            "Key with alias '{alias}' already exists."
                        )));
                    }
                }
                if let Some(id) = &k.budget_id {
                    let now = chrono::Utc::now().naive_utc();
                    let actor = k
                        .updated_by
                        .as_deref()
                        .or(k.created_by.as_deref())
                        .unwrap_or("default_user_id");
                    sqlx::query(r#"INSERT INTO "LiteLLM_BudgetTable" ("budget_id","soft_budget","created_at","created_by","updated_at","updated_by") VALUES (?1,?2,?3,?4,?3,?4) ON CONFLICT ("budget_id") DO UPDATE SET "soft_budget" = excluded."soft_budget", "updated_at" = excluded."updated_at", "updated_by" = excluded."updated_by""#)
                        .bind(id)
                        .bind(k.soft_budget)
                        .bind(fmt_ts(now))
                        .bind(actor)
                        .execute(&mut *tx)
                        .await?;
                }
                let sql = if insert {
                    r#"INSERT INTO "LiteLLM_VerificationToken" ("token","key_name","key_alias","spend","expires","models","aliases","config","user_id","team_id","permissions","max_parallel_requests","metadata","blocked","tpm_limit","rpm_limit","max_budget","budget_duration","budget_reset_at","key_type","model_spend","model_max_budget","created_at","created_by","updated_at","updated_by","budget_id","soft_budget_cooldown","organization_id") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,?28,?29)"#
                } else {
                    r#"UPDATE "LiteLLM_VerificationToken" SET "key_name"=?2,"key_alias"=?3,"spend"=?4,"expires"=?5,"models"=?6,"aliases"=?7,"config"=?8,"user_id"=?9,"team_id"=?10,"permissions"=?11,"max_parallel_requests"=?12,"metadata"=?13,"blocked"=?14,"tpm_limit"=?15,"rpm_limit"=?16,"max_budget"=?17,"budget_duration"=?18,"budget_reset_at"=?19,"key_type"=?20,"model_spend"=?21,"model_max_budget"=?22,"created_at"=?23,"created_by"=?24,"updated_at"=?25,"updated_by"=?26,"budget_id"=?27,"soft_budget_cooldown"=?28,"organization_id"=?29 WHERE "token"=?1"#
                };
                let r = sqlx::query(sql)
                    .bind(&k.token)
                    .bind(&k.key_name)
                    .bind(&k.key_alias)
                    .bind(k.spend)
                    .bind(k.expires.map(fmt_ts))
                    .bind(serde_json::to_string(&k.models).unwrap_or_else(|_| "[]".into()))
                    .bind(json_text(&k.aliases))
                    .bind(json_text(&k.config))
                    .bind(&k.user_id)
                    .bind(&k.team_id)
                    .bind(json_text(&k.permissions))
                    .bind(k.max_parallel_requests)
                    .bind(json_text(&k.metadata))
                    .bind(k.blocked)
                    .bind(k.tpm_limit)
                    .bind(k.rpm_limit)
                    .bind(k.max_budget)
                    .bind(&k.budget_duration)
                    .bind(k.budget_reset_at.map(fmt_ts))
                    .bind(&k.key_type)
                    .bind(json_text(&k.model_spend))
                    .bind(json_text(&k.model_max_budget))
                    .bind(k.created_at.map(fmt_ts))
                    .bind(&k.created_by)
                    .bind(k.updated_at.map(fmt_ts))
                    .bind(&k.updated_by)
                    .bind(&k.budget_id)
                    .bind(k.soft_budget_cooldown)
                    .bind(&k.organization_id)
                    .execute(&mut *tx)
                    .await;
                map_write(r)?;
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                if let Some(alias) = &k.key_alias {
                    let dup: Option<(String,)> = sqlx::query_as(
                        r#"SELECT "token" FROM "LiteLLM_VerificationToken" WHERE "key_alias" = $1 AND "token" <> $2 FOR UPDATE"#,
                    )
                    .bind(alias)
                    .bind(&k.token)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if dup.is_some() {
                        return Err(StoreError::Conflict(format!(
                            "Key with alias '{alias}' already exists."
                        )));
                    }
                }
                if let Some(id) = &k.budget_id {
                    let now = chrono::Utc::now().naive_utc();
                    let actor = k
                        .updated_by
                        .as_deref()
                        .or(k.created_by.as_deref())
                        .unwrap_or("default_user_id");
                    sqlx::query(r#"INSERT INTO "LiteLLM_BudgetTable" ("budget_id","soft_budget","created_at","created_by","updated_at","updated_by") VALUES ($1,$2,$3,$4,$3,$4) ON CONFLICT ("budget_id") DO UPDATE SET "soft_budget" = excluded."soft_budget", "updated_at" = excluded."updated_at", "updated_by" = excluded."updated_by""#)
                        .bind(id)
                        .bind(k.soft_budget)
                        .bind(now)
                        .bind(actor)
                        .execute(&mut *tx)
                        .await?;
                }
                let sql = if insert {
                    r#"INSERT INTO "LiteLLM_VerificationToken" ("token","key_name","key_alias","spend","expires","models","aliases","config","user_id","team_id","permissions","max_parallel_requests","metadata","blocked","tpm_limit","rpm_limit","max_budget","budget_duration","budget_reset_at","key_type","model_spend","model_max_budget","created_at","created_by","updated_at","updated_by","budget_id","soft_budget_cooldown","organization_id") VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,$8::jsonb,$9,$10,$11::jsonb,$12,$13::jsonb,$14,$15,$16,$17,$18,$19,$20,$21::jsonb,$22::jsonb,$23,$24,$25,$26,$27,$28,$29)"#
                } else {
                    r#"UPDATE "LiteLLM_VerificationToken" SET "key_name"=$2,"key_alias"=$3,"spend"=$4,"expires"=$5,"models"=$6,"aliases"=$7::jsonb,"config"=$8::jsonb,"user_id"=$9,"team_id"=$10,"permissions"=$11::jsonb,"max_parallel_requests"=$12,"metadata"=$13::jsonb,"blocked"=$14,"tpm_limit"=$15,"rpm_limit"=$16,"max_budget"=$17,"budget_duration"=$18,"budget_reset_at"=$19,"key_type"=$20,"model_spend"=$21::jsonb,"model_max_budget"=$22::jsonb,"created_at"=$23,"created_by"=$24,"updated_at"=$25,"updated_by"=$26,"budget_id"=$27,"soft_budget_cooldown"=$28,"organization_id"=$29 WHERE "token"=$1"#
                };
                let r = sqlx::query(sql)
                    .bind(&k.token)
                    .bind(&k.key_name)
                    .bind(&k.key_alias)
                    .bind(k.spend)
                    .bind(k.expires)
                    .bind(&k.models)
                    .bind(json_text(&k.aliases))
                    .bind(json_text(&k.config))
                    .bind(&k.user_id)
                    .bind(&k.team_id)
                    .bind(json_text(&k.permissions))
                    .bind(k.max_parallel_requests.map(|v| v as i32))
                    .bind(json_text(&k.metadata))
                    .bind(k.blocked)
                    .bind(k.tpm_limit)
                    .bind(k.rpm_limit)
                    .bind(k.max_budget)
                    .bind(&k.budget_duration)
                    .bind(k.budget_reset_at)
                    .bind(&k.key_type)
                    .bind(json_text(&k.model_spend))
                    .bind(json_text(&k.model_max_budget))
                    .bind(k.created_at)
                    .bind(&k.created_by)
                    .bind(k.updated_at)
                    .bind(&k.updated_by)
                    .bind(&k.budget_id)
                    .bind(k.soft_budget_cooldown)
                    .bind(&k.organization_id)
                    .execute(&mut *tx)
                    .await;
                map_write(r)?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Deletes keys by token; returns the tokens that existed.
    pub async fn delete_keys(&self, tokens: &[String]) -> StoreResult<Vec<String>> {
        let mut deleted = Vec::new();
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                for t in tokens {
                    let r = sqlx::query(
                        r#"DELETE FROM "LiteLLM_VerificationToken" WHERE "token" = ?1"#,
                    )
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
                    if r.rows_affected() > 0 {
                        deleted.push(t.clone());
                    }
                }
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                for t in tokens {
                    let r = sqlx::query(
                        r#"DELETE FROM "LiteLLM_VerificationToken" WHERE "token" = $1"#,
                    )
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
                    if r.rows_affected() > 0 {
                        deleted.push(t.clone());
                    }
                }
                tx.commit().await?;
            }
        }
        Ok(deleted)
    }

    /// A page of keys (newest first) and the total count.
    pub async fn list_keys(
        &self,
        f: &KeyFilter,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<KeyRow>, i64)> {
        // Filters are bound as nullable parameters: `(? IS NULL OR col = ?)`.
        match self {
            Self::Sqlite(p) => {
                let cond = r#"(?1 IS NULL OR "user_id" = ?1) AND (?2 IS NULL OR "team_id" = ?2) AND (?3 IS NULL OR "key_alias" = ?3) AND (?4 IS NULL OR "token" = ?4)"#;
                let q = format!(
                    r#"SELECT {SQLITE_KEY_COLUMNS} FROM "LiteLLM_VerificationToken" WHERE {cond} ORDER BY "created_at" DESC, "token" LIMIT ?5 OFFSET ?6"#
                );
                let rows = sqlx::query(&q)
                    .bind(&f.user_id)
                    .bind(&f.team_id)
                    .bind(&f.key_alias)
                    .bind(&f.key_hash)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(p)
                    .await?;
                let (total,): (i64,) = sqlx::query_as(&format!(
                    r#"SELECT COUNT(*) FROM "LiteLLM_VerificationToken" WHERE {cond}"#
                ))
                .bind(&f.user_id)
                .bind(&f.team_id)
                .bind(&f.key_alias)
                .bind(&f.key_hash)
                .fetch_one(p)
                .await?;
                Ok((rows.iter().map(rows::key_from_sqlite).collect(), total))
            }
            Self::Postgres(p) => {
                let cond = r#"($1::text IS NULL OR "user_id" = $1) AND ($2::text IS NULL OR "team_id" = $2) AND ($3::text IS NULL OR "key_alias" = $3) AND ($4::text IS NULL OR "token" = $4)"#;
                let q = format!(
                    r#"SELECT {PG_KEY_COLUMNS} FROM "LiteLLM_VerificationToken" WHERE {cond} ORDER BY "created_at" DESC NULLS LAST, "token" LIMIT $5 OFFSET $6"#
                );
                let rows = sqlx::query(&q)
                    .bind(&f.user_id)
                    .bind(&f.team_id)
                    .bind(&f.key_alias)
                    .bind(&f.key_hash)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(p)
                    .await?;
                let (total,): (i64,) = sqlx::query_as(&format!(
                    r#"SELECT COUNT(*) FROM "LiteLLM_VerificationToken" WHERE {cond}"#
                ))
                .bind(&f.user_id)
                .bind(&f.team_id)
                .bind(&f.key_alias)
                .bind(&f.key_hash)
                .fetch_one(p)
                .await?;
                Ok((rows.iter().map(rows::key_from_pg).collect(), total))
            }
        }
    }

    /// One page of key aliases in alphabetical order, and how many match in all.
    pub async fn key_aliases(
        &self,
        f: &AliasFilter,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<String>, i64)> {
        const SELECT: &str = r#"SELECT "key_alias" FROM "LiteLLM_VerificationToken""#;
        const COUNT: &str = r#"SELECT COUNT(*) FROM "LiteLLM_VerificationToken""#;
        const PAGE: &str = r#" ORDER BY "key_alias" ASC LIMIT "#;
        Ok(match self {
            Self::Sqlite(p) => {
                // SQLite's LIKE ignores case (ASCII), as PostgreSQL's ILIKE does.
                let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(SELECT);
                push_alias_filter(&mut qb, f, "LIKE");
                qb.push(PAGE)
                    .push_bind(limit)
                    .push(" OFFSET ")
                    .push_bind(offset);
                let aliases = qb.build_query_scalar().fetch_all(p).await?;
                let mut cq = sqlx::QueryBuilder::<sqlx::Sqlite>::new(COUNT);
                push_alias_filter(&mut cq, f, "LIKE");
                (aliases, cq.build_query_scalar().fetch_one(p).await?)
            }
            Self::Postgres(p) => {
                let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(SELECT);
                push_alias_filter(&mut qb, f, "ILIKE");
                qb.push(PAGE)
                    .push_bind(limit)
                    .push(" OFFSET ")
                    .push_bind(offset);
                let aliases = qb.build_query_scalar().fetch_all(p).await?;
                let mut cq = sqlx::QueryBuilder::<sqlx::Postgres>::new(COUNT);
                push_alias_filter(&mut cq, f, "ILIKE");
                (aliases, cq.build_query_scalar().fetch_one(p).await?)
            }
        })
    }

    /// Writes one accounting batch in one transaction.
    pub async fn write_spend(&self, b: &SpendBatch) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                let deployments = sqlite_deployment_ids(&mut tx, &b.logs).await?;
                // Multi-row inserts: one statement per chunk instead of one per row. SQLite
                // allows at most 32766 bound parameters per statement.
                let mut at = 0;
                for chunk in statement_chunks(&b.logs) {
                    // Sized once for the whole statement; strings bound as borrowed `&str`
                    // (sqlx copies a bound `&String` into a new `String` first).
                    let mut args = sqlx::sqlite::SqliteArguments::default();
                    sqlx::Arguments::reserve(&mut args, chunk.len() * SQLITE_LOG_INSERT_PARAMS, 0);
                    for (l, &deployment) in chunk.iter().zip(&deployments[at..]) {
                        bind_sqlite_log(&mut args, l, deployment).map_err(sqlx::Error::Encode)?;
                    }
                    at += chunk.len();
                    sqlx::query_with(log_insert_sql(false, chunk.len()), args)
                        .execute(&mut *tx)
                        .await?;
                }
                let now = fmt_ts(chrono::Utc::now().naive_utc());
                for (t, s) in &b.key_spend {
                    sqlx::query(r#"UPDATE "LiteLLM_VerificationToken" SET "spend" = "spend" + ?1, "total_spend" = "total_spend" + ?1, "last_active" = ?3 WHERE "token" = ?2"#)
                        .bind(s).bind(t).bind(&now).execute(&mut *tx).await?;
                }
                for (u, s) in &b.user_spend {
                    sqlx::query(r#"UPDATE "LiteLLM_UserTable" SET "spend" = "spend" + ?1 WHERE "user_id" = ?2"#)
                        .bind(s).bind(u).execute(&mut *tx).await?;
                }
                for (t, s) in &b.team_spend {
                    sqlx::query(r#"UPDATE "LiteLLM_TeamTable" SET "spend" = "spend" + ?1 WHERE "team_id" = ?2"#)
                        .bind(s).bind(t).execute(&mut *tx).await?;
                }
                for (o, s) in &b.org_spend {
                    sqlx::query(r#"UPDATE "LiteLLM_OrganizationTable" SET "spend" = "spend" + ?1 WHERE "organization_id" = ?2"#)
                        .bind(s).bind(o).execute(&mut *tx).await?;
                }
                for (t, u, s) in &b.member_spend {
                    sqlx::query(SQLITE_TEAM_MEMBER_SPEND)
                        .bind(u)
                        .bind(t)
                        .bind(s)
                        .execute(&mut *tx)
                        .await?;
                }
                for (u, s) in &b.end_user_spend {
                    sqlx::query(r#"INSERT INTO "LiteLLM_EndUserTable" ("user_id", "spend", "blocked") VALUES (?1, ?2, 0) ON CONFLICT ("user_id") DO UPDATE SET "spend" = "spend" + excluded."spend""#)
                        .bind(u).bind(s).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                for chunk in statement_chunks(&b.logs) {
                    let mut q = sqlx::query(log_insert_sql(true, chunk.len()));
                    for l in chunk {
                        q = q
                            .bind(&l.request_id)
                            .bind(&l.call_type)
                            .bind(&l.api_key)
                            .bind(l.spend)
                            .bind(l.total_tokens as i32)
                            .bind(l.prompt_tokens as i32)
                            .bind(l.completion_tokens as i32)
                            .bind(l.start_time)
                            .bind(l.end_time)
                            .bind(l.request_duration_ms.map(|v| v as i32))
                            .bind(l.completion_start_time)
                            .bind(&l.model)
                            .bind(&l.model_id)
                            .bind(&l.model_group)
                            .bind(&l.custom_llm_provider)
                            .bind(&l.api_base)
                            .bind(&l.user)
                            .bind(sqlx::types::Json(&l.metadata))
                            .bind(&l.cache_hit)
                            .bind(sqlx::types::Json(&l.request_tags))
                            .bind(&l.team_id)
                            .bind(&l.organization_id)
                            .bind(&l.end_user)
                            .bind(&l.status);
                    }
                    q.execute(&mut *tx).await?;
                }
                let now = chrono::Utc::now().naive_utc();
                for (t, s) in &b.key_spend {
                    sqlx::query(r#"UPDATE "LiteLLM_VerificationToken" SET "spend" = "spend" + $1, "total_spend" = "total_spend" + $1, "last_active" = $3 WHERE "token" = $2"#)
                        .bind(s).bind(t).bind(now).execute(&mut *tx).await?;
                }
                for (u, s) in &b.user_spend {
                    sqlx::query(r#"UPDATE "LiteLLM_UserTable" SET "spend" = "spend" + $1 WHERE "user_id" = $2"#)
                        .bind(s).bind(u).execute(&mut *tx).await?;
                }
                for (t, s) in &b.team_spend {
                    sqlx::query(r#"UPDATE "LiteLLM_TeamTable" SET "spend" = "spend" + $1 WHERE "team_id" = $2"#)
                        .bind(s).bind(t).execute(&mut *tx).await?;
                }
                for (o, s) in &b.org_spend {
                    sqlx::query(r#"UPDATE "LiteLLM_OrganizationTable" SET "spend" = "spend" + $1 WHERE "organization_id" = $2"#)
                        .bind(s).bind(o).execute(&mut *tx).await?;
                }
                for (t, u, s) in &b.member_spend {
                    sqlx::query(PG_TEAM_MEMBER_SPEND)
                        .bind(u)
                        .bind(t)
                        .bind(s)
                        .execute(&mut *tx)
                        .await?;
                }
                for (u, s) in &b.end_user_spend {
                    sqlx::query(r#"INSERT INTO "LiteLLM_EndUserTable" ("user_id", "spend", "blocked") VALUES ($1, $2, false) ON CONFLICT ("user_id") DO UPDATE SET "spend" = "LiteLLM_EndUserTable"."spend" + excluded."spend""#)
                        .bind(u).bind(s).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Budgets whose `budget_reset_at` has passed, on keys, users, teams and budget rows: spend
    /// back to 0 and the next reset one `budget_duration` later. A due budget row resets the
    /// end users linked to it (and, when it is `default_end_user_budget`, the end users linked
    /// to none) and the team memberships linked to it. Returns what this call reset; a row
    /// another replica reset first is skipped.
    pub async fn reset_due_budgets(
        &self,
        now: NaiveDateTime,
        default_end_user_budget: Option<&str>,
    ) -> StoreResult<Vec<BudgetReset>> {
        type Kind = fn(String) -> BudgetReset;
        const TABLES: [(Kind, &str, &str); 3] = [
            (BudgetReset::Key, "LiteLLM_VerificationToken", "token"),
            (BudgetReset::User, "LiteLLM_UserTable", "user_id"),
            (BudgetReset::Team, "LiteLLM_TeamTable", "team_id"),
        ];
        let mut out = Vec::new();
        for (kind, table, id_col) in TABLES {
            let select = format!(
                r#"SELECT "{id_col}", "budget_duration" FROM "{table}" WHERE "budget_reset_at" IS NOT NULL AND "budget_reset_at" <= "#
            );
            let due: Vec<(String, Option<String>)> = match self {
                Self::Sqlite(p) => {
                    sqlx::query_as(&format!("{select}?1"))
                        .bind(fmt_ts(now))
                        .fetch_all(p)
                        .await?
                }
                Self::Postgres(p) => {
                    sqlx::query_as(&format!("{select}$1"))
                        .bind(now)
                        .fetch_all(p)
                        .await?
                }
            };
            for (id, duration) in due {
                let next = duration
                    .as_deref()
                    .and_then(crate::spend::parse_duration)
                    .map(|d| now + d);
                let update = format!(r#"UPDATE "{table}" SET "spend" = 0, "budget_reset_at" = "#);
                let done = match self {
                    Self::Sqlite(p) => sqlx::query(&format!(
                        r#"{update}?1 WHERE "{id_col}" = ?2 AND "budget_reset_at" <= ?3"#
                    ))
                    .bind(next.map(fmt_ts))
                    .bind(&id)
                    .bind(fmt_ts(now))
                    .execute(p)
                    .await?
                    .rows_affected(),
                    Self::Postgres(p) => sqlx::query(&format!(
                        r#"{update}$1 WHERE "{id_col}" = $2 AND "budget_reset_at" <= $3"#
                    ))
                    .bind(next)
                    .bind(&id)
                    .bind(now)
                    .execute(p)
                    .await?
                    .rows_affected(),
                };
                if done > 0 {
                    out.push(kind(id));
                }
            }
        }
        for r in self
            .reset_due_budget_rows(now, default_end_user_budget)
            .await?
        {
            out.push(BudgetReset::Budget(r.budget_id));
            out.extend(
                r.members
                    .into_iter()
                    .map(|(team, user)| BudgetReset::Member { team, user }),
            );
            out.extend(r.organizations.into_iter().map(BudgetReset::Organization));
        }
        Ok(out)
    }
}

fn map_write<T>(r: Result<T, sqlx::Error>) -> StoreResult<T> {
    r.map_err(|e| {
        let err = StoreError::Db(e);
        if err.is_unique_violation() {
            StoreError::Conflict("a key with this value already exists".into())
        } else {
            err
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_chrono_does() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 9).unwrap();
        let times = [
            day.and_hms_milli_opt(0, 0, 0, 0).unwrap(),
            day.and_hms_nano_opt(23, 59, 59, 999_999_999).unwrap(),
            day.and_hms_nano_opt(7, 5, 3, 40_100_000).unwrap(),
            // A leap second.
            day.and_hms_milli_opt(23, 59, 59, 1_500).unwrap(),
            chrono::NaiveDate::from_ymd_opt(12, 3, 4)
                .unwrap()
                .and_hms_opt(1, 2, 3)
                .unwrap(),
            chrono::NaiveDate::from_ymd_opt(-5, 3, 4)
                .unwrap()
                .and_hms_opt(1, 2, 3)
                .unwrap(),
            chrono::NaiveDate::from_ymd_opt(12345, 3, 4)
                .unwrap()
                .and_hms_opt(1, 2, 3)
                .unwrap(),
        ];
        for t in times {
            assert_eq!(fmt_ts(t), t.format("%Y-%m-%d %H:%M:%S%.3f").to_string());
        }
        assert_eq!(fmt_ts(times[2]), "2026-01-09 07:05:03.040");
    }

    #[test]
    fn batches_use_a_few_statement_sizes() {
        let rows: Vec<usize> = (0..1000).collect();
        let sizes: Vec<usize> = statement_chunks(&rows).map(<[usize]>::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
        assert_eq!(&sizes[15..], &[32, 8]);
        assert!(sizes[..15].iter().all(|n| *n == LOG_ROWS_PER_STATEMENT));
        let flat: Vec<usize> = statement_chunks(&rows).flatten().copied().collect();
        assert_eq!(flat, rows, "every row once, in order");
        assert_eq!(statement_chunks(&rows[..0]).count(), 0);
    }

    #[tokio::test]
    async fn embedded_store_keeps_temporary_data_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(None, path.to_str().unwrap()).await.unwrap();
        let Store::Sqlite(pool) = &store else {
            unreachable!("no database_url opens SQLite")
        };
        // 2 = MEMORY; the pool's connections all run the connect options' pragmas.
        let mut conns = Vec::new();
        for _ in 0..2 {
            let mut c = pool.acquire().await.unwrap();
            let (mode,): (i64,) = sqlx::query_as("PRAGMA temp_store")
                .fetch_one(&mut *c)
                .await
                .unwrap();
            assert_eq!(mode, 2);
            let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode")
                .fetch_one(&mut *c)
                .await
                .unwrap();
            assert_eq!(journal, "wal");
            conns.push(c);
        }
    }

    /// Every column of every spend-log row, as SQL literals, in request-id order.
    async fn spend_log_snapshot(c: &mut sqlx::SqliteConnection) -> Vec<String> {
        const COLS: [&str; 27] = [
            "request_id",
            "call_type",
            "api_key",
            "spend",
            "total_tokens",
            "prompt_tokens",
            "completion_tokens",
            "startTime",
            "endTime",
            "request_duration_ms",
            "completionStartTime",
            "model",
            "model_id",
            "model_group",
            "custom_llm_provider",
            "api_base",
            "user",
            "metadata",
            "cache_hit",
            "cache_key",
            "request_tags",
            "team_id",
            "organization_id",
            "end_user",
            "requester_ip_address",
            "session_id",
            "status",
        ];
        let row = COLS
            .iter()
            .map(|c| format!(r#"quote("{c}")"#))
            .collect::<Vec<_>>()
            .join(" || ',' || ");
        let sql = format!(r#"SELECT {row} FROM "LiteLLM_SpendLogs" ORDER BY "request_id""#);
        sqlx::query_as::<_, (String,)>(&sql)
            .fetch_all(c)
            .await
            .unwrap()
            .into_iter()
            .map(|(r,)| r)
            .collect()
    }

    #[tokio::test]
    async fn embedded_spend_log_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(None, path.to_str().unwrap()).await.unwrap();
        let t = |s: &str| rows::parse_ts_str(s).unwrap();
        let usual = SpendLogRow {
            request_id: "r1".into(),
            call_type: "acompletion".into(),
            api_key: "".into(),
            spend: 0.5,
            total_tokens: 30,
            prompt_tokens: 10,
            completion_tokens: 20,
            start_time: t("2026-11-29 10:00:00.000"),
            end_time: t("2026-11-29 10:00:01.250"),
            request_duration_ms: Some(1250),
            completion_start_time: None,
            model: "gpt".into(),
            model_id: "dep1".into(),
            model_group: "gpt".into(),
            custom_llm_provider: "openai".into(),
            api_base: "https://api".into(),
            user: "".into(),
            metadata: serde_json::json!({}),
            cache_hit: "False".into(),
            request_tags: serde_json::json!([]),
            team_id: None,
            organization_id: None,
            end_user: None,
            status: "success".into(),
        };
        let other = SpendLogRow {
            request_id: "r2".into(),
            api_key: "hash".into(),
            completion_start_time: Some(t("2026-11-29 10:00:00.500")),
            model_id: "dep2".into(),
            user: "u1".into(),
            metadata: serde_json::json!({"k": 1}),
            cache_hit: "True".into(),
            request_tags: serde_json::json!(["t"]),
            team_id: Some("team".into()),
            organization_id: Some("org".into()),
            end_user: Some("eu".into()),
            status: "failure".into(),
            ..usual.clone()
        };
        let third = SpendLogRow {
            request_id: "r3".into(),
            ..usual.clone()
        };
        let batch = SpendBatch {
            logs: vec![usual, other, third],
            ..SpendBatch::default()
        };
        store.write_spend(&batch).await.unwrap();
        // Written again (a retried batch): no duplicate rows.
        store.write_spend(&batch).await.unwrap();
        let Store::Sqlite(pool) = &store else {
            unreachable!("no database_url opens SQLite")
        };
        let mut c = pool.acquire().await.unwrap();
        let got = spend_log_snapshot(&mut c).await;
        assert_eq!(
            got,
            [
                "'r1','acompletion','',0.5,30,10,20,'2026-11-29 10:00:00.000','2026-11-29 10:00:01.250',1250,NULL,'gpt','dep1','gpt','openai','https://api','','{}','False','','[]',NULL,NULL,NULL,NULL,NULL,'success'",
                "'r2','acompletion','hash',0.5,30,10,20,'2026-11-29 10:00:00.000','2026-11-29 10:00:01.250',1250,'2026-11-29 10:00:00.500','gpt','dep2','gpt','openai','https://api','u1','{\"k\":1}','True','','[\"t\"]','team','org','eu',NULL,NULL,'failure'",
                "'r3','acompletion','',0.5,30,10,20,'2026-11-29 10:00:00.000','2026-11-29 10:00:01.250',1250,NULL,'gpt','dep1','gpt','openai','https://api','','{}','False','','[]',NULL,NULL,NULL,NULL,NULL,'success'",
            ]
        );
        let (n,): (i64,) = sqlx::query_as(r#"SELECT COUNT(*) FROM "LiteLLM_SpendLogDeployments""#)
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn lean_spend_log_migration_keeps_every_value() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for sql in [
            include_str!("../../migrations/sqlite/20261124000001_litellm_core.sql"),
            include_str!("../../migrations/sqlite/20261129000001_budgets_end_users_orgs.sql"),
            include_str!("../../migrations/sqlite/20261129000002_proxy_model_table.sql"),
            include_str!("../../migrations/sqlite/20261130120000_key_total_spend.sql"),
        ] {
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
        // The usual row, a second call to the same deployment, and one with every column set
        // to something else (the deployment's nullable columns NULL).
        sqlx::raw_sql(
            r#"INSERT INTO "LiteLLM_SpendLogs" VALUES
            ('a', 'acompletion', '', 0.5, 30, 10, 20, '2026-11-29 10:00:00.000', '2026-11-29 10:00:01.000', 1000, NULL,
             'gpt', 'dep1', 'gpt', 'openai', 'https://api', '', '{}', 'False', '', '[]', NULL, NULL, '', NULL, NULL, 'success'),
            ('b', 'acompletion', 'hash', 0.25, 3, 1, 2, '2026-11-29 11:00:00.000', '2026-11-29 11:00:02.000', 2000, '2026-11-29 11:00:01.000',
             'gpt', 'dep1', 'gpt', 'openai', 'https://api', '', '{}', 'False', '', '[]', NULL, NULL, NULL, NULL, NULL, 'success'),
            ('c', 'aembedding', 'hash2', 0.0, 0, 0, 0, '2026-11-28 09:00:00.000', '2026-11-28 09:00:00.500', NULL, NULL,
             'emb', NULL, NULL, NULL, NULL, 'u1', '{"k":1}', 'True', 'ck', '["t"]', 'team', 'org', 'eu', '10.0.0.1', 's1', 'failure')"#,
        )
        .execute(&mut c)
        .await
        .unwrap();
        let before = spend_log_snapshot(&mut c).await;
        sqlx::raw_sql(include_str!(
            "../../migrations/sqlite/20261201000001_lean_spend_log.sql"
        ))
        .execute(&mut c)
        .await
        .unwrap();
        let after = spend_log_snapshot(&mut c).await;
        assert_eq!(after[..2], before[..2]);
        // The deployment's missing values read as empty text, as the gateway writes them.
        assert_eq!(
            after[2],
            before[2].replace("'emb',NULL,NULL,NULL,NULL", "'emb','','','',''")
        );
        let (n,): (i64,) = sqlx::query_as(r#"SELECT COUNT(*) FROM "LiteLLM_SpendLogDeployments""#)
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 2);
        // Filters on the view's time and key columns use the row table's indexes.
        for (filter, index) in [
            (
                r#""startTime" >= '2026-11-29'"#,
                "LiteLLM_SpendLogRows_startTime_idx",
            ),
            (
                r#""api_key" = 'hash'"#,
                "LiteLLM_SpendLogRows_api_key_startTime_idx",
            ),
        ] {
            let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!(
                r#"EXPLAIN QUERY PLAN SELECT "request_id", "model" FROM "LiteLLM_SpendLogs" WHERE {filter}"#
            ))
            .fetch_all(&mut c)
            .await
            .unwrap();
            assert!(
                plan.iter().any(|(_, _, _, d)| d.contains(index)),
                "{filter}: {plan:?}"
            );
        }
    }

    #[test]
    fn insert_statements_have_one_placeholder_per_value() {
        for size in [1, 2, 4, 8, 16, 32, 64] {
            let lite = log_insert_sql(false, size);
            assert_eq!(
                lite.matches('?').count(),
                size * SQLITE_LOG_INSERT_PARAMS,
                "{lite}"
            );
            assert!(lite.ends_with(r#"ON CONFLICT("request_id") DO NOTHING"#));
            let pg = log_insert_sql(true, size);
            let last = format!("${})", size * PG_LOG_INSERT_PARAMS);
            assert!(pg.contains(&last) && !pg.contains('?'), "{pg}");
            assert_eq!(pg.matches('(').count(), size + 1);
            // Built once: the same text every time.
            assert!(std::ptr::eq(pg, log_insert_sql(true, size)));
        }
    }
}
