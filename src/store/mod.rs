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
pub mod daily_spend;
mod end_users;
mod health_checks;
mod membership;
mod models;
mod organizations;
mod rows;
pub mod spend_reports;
mod spend_write;
mod tags;
mod teams;
mod users;

pub use end_users::BudgetWrite;
pub use health_checks::HealthCheckRow;
pub use membership::{budget_limits_anything, new_budget, BudgetPatch, RosterChange};
pub use models::ProxyModelRow;
pub use organizations::{OrgDeletion, OrgMemberRow, OrgMemberWrite, OrgRow};
pub use rows::{
    parse_ts_str as rows_parse_ts, BudgetRow, EndUserRow, KeyRow, MembershipRow, SpendLogRow,
    TeamRow, UserRow,
};
pub use spend_write::SpendSink;
pub use tags::{TagRow, UsedTag};
pub use teams::{TeamListFilter, TeamSort};
pub use users::UserFilter;

use chrono::NaiveDateTime;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Pool size per replica (LiteLLM's `database_connection_pool_limit` default).
const DEFAULT_POOL: u32 = 10;
/// How long a query waits for a free pooled connection (LiteLLM's
/// `database_connection_timeout` default, which it passes to Prisma as `pool_timeout`).
const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an unused embedded-database connection stays open.
const SQLITE_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The file name sqlx gives the database of a `sqlite::memory:` URL (a named in-memory
/// database shared by the pool's connections).
const SQLX_IN_MEMORY: &str = "file:sqlx-in-memory-";

/// The PostgreSQL pool's size and wait, from `general_settings.database_connection_pool_limit`
/// and `database_connection_timeout`. The embedded SQLite store ignores both: it keeps its own
/// small pool (one file, one writer at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a query (and start-up) waits for a connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_POOL,
            acquire_timeout: DEFAULT_POOL_TIMEOUT,
        }
    }
}

impl PoolSettings {
    /// The settings from `general_settings` (LiteLLM also reads the timeout as
    /// `database_connection_pool_timeout`); a pool of 0 connections or a timeout that is not a
    /// positive number of seconds is refused, naming the key.
    pub fn from_config(gs: &crate::config::GeneralSettings) -> Result<Self, String> {
        let mut out = Self::default();
        if let Some(n) = gs.database_connection_pool_limit {
            out.max_connections = u32::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    format!("general_settings.database_connection_pool_limit must be between 1 and {}, got {n}", u32::MAX)
                })?;
        }
        let timeout = gs
            .database_connection_timeout
            .map(|t| ("database_connection_timeout", Some(t)))
            .or_else(|| {
                gs.extra
                    .get("database_connection_pool_timeout")
                    .map(|v| ("database_connection_pool_timeout", v.as_f64()))
            });
        if let Some((key, secs)) = timeout {
            out.acquire_timeout = secs
                .filter(|s| s.is_finite() && *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| {
                    format!("general_settings.{key} must be a positive number of seconds")
                })?;
        }
        Ok(out)
    }

    fn pg_options(self) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
    }
}

#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
    "soft_budget_cooldown", "organization_id",
    COALESCE(array_to_json("allowed_cache_controls")::text, '[]') AS "allowed_cache_controls",
    COALESCE(array_to_json("allowed_routes")::text, '[]') AS "allowed_routes",
    (SELECT b."soft_budget" FROM "LiteLLM_BudgetTable" b WHERE b."budget_id" = "LiteLLM_VerificationToken"."budget_id") AS "soft_budget""#;

const SQLITE_KEY_COLUMNS: &str = r#""token", "key_name", "key_alias", "spend", "expires", "models",
    "aliases", "config", "user_id", "team_id", "permissions", "max_parallel_requests", "metadata",
    "blocked", "tpm_limit", "rpm_limit", "max_budget", "budget_duration", "budget_reset_at",
    "key_type", "model_spend", "model_max_budget", "created_at", "created_by", "updated_at",
    "updated_by", "budget_id", "soft_budget_cooldown", "organization_id", "allowed_cache_controls",
    "allowed_routes",
    (SELECT b."soft_budget" FROM "LiteLLM_BudgetTable" b WHERE b."budget_id" = "LiteLLM_VerificationToken"."budget_id") AS "soft_budget""#;

/// `YYYY-MM-DD HH:MM:SS.mmm`, the text form timestamps have in SQLite.
pub fn fmt_ts(t: NaiveDateTime) -> String {
    TsText::new(t).as_str().to_owned()
}

/// [`fmt_ts`]'s text without a heap string, for values bound and dropped at once (three per
/// spend-log row).
pub struct TsText {
    digits: [u8; 23],
    /// Years outside 0–9999, written by chrono.
    other: Option<String>,
}

impl TsText {
    pub fn new(t: NaiveDateTime) -> Self {
        use chrono::{Datelike, Timelike};
        let year = t.year();
        let mut digits = *b"0000-00-00 00:00:00.000";
        if !(0..=9999).contains(&year) {
            return Self {
                digits,
                other: Some(t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()),
            };
        }
        // Written digit by digit into a fixed template: chrono's strftime interpreter cost
        // several times more. A leap second (nanoseconds past 1e9) prints as second 60, as
        // chrono does.
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
            crate::telemetry::fill_digits(&mut digits[start..end], u64::from(n));
            start = end + 1;
        }
        Self {
            digits,
            other: None,
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.other {
            Some(s) => s,
            // Only ASCII digits and separators are ever written into the template.
            None => std::str::from_utf8(&self.digits).unwrap_or_default(),
        }
    }
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
    /// A tag, by name (its budget row was reset).
    Tag(String),
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
    /// Tags (the spend log's `request_tags`): increments of `LiteLLM_TagTable.spend`, for the
    /// tags that have a row.
    pub tag_spend: Vec<(String, f64)>,
    /// The daily roll-ups (`LiteLLM_Daily*Spend`): one row per distinct key in the batch.
    pub daily: daily_spend::DailySpend,
}

impl Store {
    /// Opens the database named by `database_url`, or the embedded SQLite file at `sqlite_path`,
    /// and applies the migrations.
    pub async fn open(database_url: Option<&str>, sqlite_path: &str) -> StoreResult<Self> {
        Self::open_with(database_url, sqlite_path, PoolSettings::default()).await
    }

    /// [`Store::open`] with the PostgreSQL pool sized and timed by `pool`.
    pub async fn open_with(
        database_url: Option<&str>,
        sqlite_path: &str,
        pool: PoolSettings,
    ) -> StoreResult<Self> {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let pool = pool
                    .pg_options()
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
                // The spend writer opens the database by its file name (see `spend_sink`): an
                // in-memory one only as `sqlite::memory:`, which names it.
                if url.contains("mode=memory") {
                    return Err(StoreError::Config(format!(
                        "database_url {url:?}: an in-memory SQLite database is written `sqlite::memory:`"
                    )));
                }
                let opts = SqliteConnectOptions::from_str(&url)?
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    // WAL + NORMAL: a commit survives a crash of the process, without an fsync
                    // per spend batch.
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    // Statement journals and temporary tables in memory: a multi-row write
                    // that may abort keeps the pages it changes to undo itself, and past 64 kB
                    // SQLite spilled them to a temporary file (the spend log's INSERTs, written
                    // `OR IGNORE`, no longer need one).
                    .pragma("temp_store", "memory")
                    .busy_timeout(Duration::from_secs(5));
                // Idle connections close after a while: each holds a page cache and prepared
                // statements, which would otherwise stay allocated after a burst. Not for an
                // in-memory database, which lives only as long as its connections.
                let in_memory = url.contains(":memory:");
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
                    r#"INSERT INTO "LiteLLM_VerificationToken" ("token","key_name","key_alias","spend","expires","models","aliases","config","user_id","team_id","permissions","max_parallel_requests","metadata","blocked","tpm_limit","rpm_limit","max_budget","budget_duration","budget_reset_at","key_type","model_spend","model_max_budget","created_at","created_by","updated_at","updated_by","budget_id","soft_budget_cooldown","organization_id","allowed_cache_controls","allowed_routes") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,?28,?29,?30,?31)"#
                } else {
                    r#"UPDATE "LiteLLM_VerificationToken" SET "key_name"=?2,"key_alias"=?3,"spend"=?4,"expires"=?5,"models"=?6,"aliases"=?7,"config"=?8,"user_id"=?9,"team_id"=?10,"permissions"=?11,"max_parallel_requests"=?12,"metadata"=?13,"blocked"=?14,"tpm_limit"=?15,"rpm_limit"=?16,"max_budget"=?17,"budget_duration"=?18,"budget_reset_at"=?19,"key_type"=?20,"model_spend"=?21,"model_max_budget"=?22,"created_at"=?23,"created_by"=?24,"updated_at"=?25,"updated_by"=?26,"budget_id"=?27,"soft_budget_cooldown"=?28,"organization_id"=?29,"allowed_cache_controls"=?30,"allowed_routes"=?31 WHERE "token"=?1"#
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
                    .bind(
                        serde_json::to_string(&k.allowed_cache_controls)
                            .unwrap_or_else(|_| "[]".into()),
                    )
                    .bind(serde_json::to_string(&k.allowed_routes).unwrap_or_else(|_| "[]".into()))
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
                    r#"INSERT INTO "LiteLLM_VerificationToken" ("token","key_name","key_alias","spend","expires","models","aliases","config","user_id","team_id","permissions","max_parallel_requests","metadata","blocked","tpm_limit","rpm_limit","max_budget","budget_duration","budget_reset_at","key_type","model_spend","model_max_budget","created_at","created_by","updated_at","updated_by","budget_id","soft_budget_cooldown","organization_id","allowed_cache_controls","allowed_routes") VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,$8::jsonb,$9,$10,$11::jsonb,$12,$13::jsonb,$14,$15,$16,$17,$18,$19,$20,$21::jsonb,$22::jsonb,$23,$24,$25,$26,$27,$28,$29,$30,$31)"#
                } else {
                    r#"UPDATE "LiteLLM_VerificationToken" SET "key_name"=$2,"key_alias"=$3,"spend"=$4,"expires"=$5,"models"=$6,"aliases"=$7::jsonb,"config"=$8::jsonb,"user_id"=$9,"team_id"=$10,"permissions"=$11::jsonb,"max_parallel_requests"=$12,"metadata"=$13::jsonb,"blocked"=$14,"tpm_limit"=$15,"rpm_limit"=$16,"max_budget"=$17,"budget_duration"=$18,"budget_reset_at"=$19,"key_type"=$20,"model_spend"=$21::jsonb,"model_max_budget"=$22::jsonb,"created_at"=$23,"created_by"=$24,"updated_at"=$25,"updated_by"=$26,"budget_id"=$27,"soft_budget_cooldown"=$28,"organization_id"=$29,"allowed_cache_controls"=$30,"allowed_routes"=$31 WHERE "token"=$1"#
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
                    .bind(&k.allowed_cache_controls)
                    .bind(&k.allowed_routes)
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

    /// Where the spend writer writes batches (see [`SpendSink`]).
    pub fn spend_sink(&self) -> SpendSink {
        match self {
            Self::Sqlite(p) => {
                let file = p.connect_options().get_filename().to_path_buf();
                let in_memory = file.to_string_lossy().starts_with(SQLX_IN_MEMORY);
                SpendSink::sqlite(file, in_memory)
            }
            Self::Postgres(p) => SpendSink::Postgres(p.clone()),
        }
    }

    /// Writes one accounting batch in one transaction (through a [`SpendSink`] of its own).
    pub async fn write_spend(&self, b: &SpendBatch) -> StoreResult<()> {
        self.spend_sink().write(&mut b.clone()).await
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
            out.extend(r.tags.into_iter().map(BudgetReset::Tag));
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

    #[test]
    fn pool_settings_come_from_general_settings() {
        let gs = |yaml: &str| {
            crate::config::load_str(&format!("general_settings:\n{yaml}"), "t.yaml")
                .unwrap()
                .config
                .general_settings
        };
        assert_eq!(
            PoolSettings::from_config(&gs("  {}\n")).unwrap(),
            PoolSettings::default()
        );
        let p = PoolSettings::from_config(&gs(
            "  database_connection_pool_limit: 25\n  database_connection_timeout: 2.5\n",
        ))
        .unwrap();
        assert_eq!(p.max_connections, 25);
        assert_eq!(p.acquire_timeout, Duration::from_millis(2500));
        let opts = p.pg_options();
        assert_eq!(opts.get_max_connections(), 25);
        assert_eq!(opts.get_acquire_timeout(), Duration::from_millis(2500));
        // LiteLLM's older name for the timeout.
        let p = PoolSettings::from_config(&gs("  database_connection_pool_timeout: 7\n")).unwrap();
        assert_eq!(p.acquire_timeout, Duration::from_secs(7));
        for bad in [
            "  database_connection_pool_limit: 0\n",
            "  database_connection_timeout: 0\n",
            "  database_connection_timeout: -1\n",
            "  database_connection_pool_timeout: soon\n",
        ] {
            let e = PoolSettings::from_config(&gs(bad)).unwrap_err();
            assert!(e.starts_with("general_settings.database_connection"), "{e}");
        }
    }
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
            cache_key: None,
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
            cache_key: None,
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
        let (n,): (i64,) = sqlx::query_as(r#"SELECT COUNT(*) FROM "LiteLLM_SpendLogKeys""#)
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn lean_spend_log_migrations_keep_every_value() {
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
        // Keys as ids: the view reads the same.
        sqlx::raw_sql(include_str!(
            "../../migrations/sqlite/20261202000001_spend_log_key_ids.sql"
        ))
        .execute(&mut c)
        .await
        .unwrap();
        assert_eq!(spend_log_snapshot(&mut c).await, after);
        let (n,): (i64,) = sqlx::query_as(r#"SELECT COUNT(*) FROM "LiteLLM_SpendLogKeys""#)
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 3);
        // Filters on the view's time and key columns use the row table's indexes (the key's
        // through its id).
        for (filter, index) in [
            (
                r#""startTime" >= '2026-11-29'"#,
                "LiteLLM_SpendLogRows_startTime_idx",
            ),
            (
                r#""api_key" = 'hash'"#,
                "LiteLLM_SpendLogRows_key_startTime_idx",
            ),
            (
                r#""api_key" = 'hash' AND "startTime" >= '2026-11-29'"#,
                "LiteLLM_SpendLogRows_key_startTime_idx",
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
}
