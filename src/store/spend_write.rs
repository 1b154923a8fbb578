//! Writing spend batches: the spend-log rows, spend increments (keys, users, teams, members, end
//! users, organizations, tags) and daily roll-ups of a batch in one transaction.
//!
//! On PostgreSQL a batch goes through the pool. On the embedded SQLite file it goes through a
//! connection of its own, driven by the writer task itself, a few rows at a time with a yield
//! to the runtime between them: a call whose answer arrives while a batch is being written
//! waits for at most one such slice. (sqlx runs SQLite statements on a thread of its own; on a
//! gateway with one core, the kernel let that thread finish each statement before waking the
//! worker the answer was for, and a batch held a dozen of those stretches.) The writes land in
//! the page cache; the WAL checkpoint, which syncs to disk, runs on a blocking thread every few
//! thousand rows. The connection is closed when the writer has been idle for a while, returning
//! its page cache.

use super::{fmt_ts, SpendBatch, SpendLogRow, StoreError, StoreResult, TsText};
use rusqlite::OpenFlags;
use serde_json::Value;
use sqlx::postgres::PgPool;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the SQLite writer's connection stays open without a batch.
const SQLITE_IDLE_CLOSE: Duration = Duration::from_secs(30);
/// How long a batch waits for another connection's write transaction to end, trying again
/// every [`BUSY_RETRY`] (the writer never blocks its thread waiting for a lock).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const BUSY_RETRY: Duration = Duration::from_millis(2);
/// Spend-log rows inserted between two yields to the runtime while the gateway is not busy
/// (about 35 µs of work), and the most when it is (see [`Pace`]); also the most rows per
/// INSERT statement on PostgreSQL.
const ROWS_PER_SLICE: usize = 8;
const MAX_ROWS_PER_SLICE: usize = 64;
/// A yield that takes longer than this to come back means other tasks are queued.
const BUSY_YIELD: Duration = Duration::from_micros(200);
/// Spend-log rows written between two checkpoints of the WAL (SQLite's own default is every
/// 1,000 pages).
const CHECKPOINT_ROWS: usize = 4_000;
/// What one commit counts for towards [`CHECKPOINT_ROWS`] beyond its rows: each commit appends
/// every page it changed to the WAL (a leaf of the table and of each index at least), so under
/// light traffic, a row or two per batch, the WAL would otherwise grow by several pages per row
/// until the next checkpoint.
const COMMIT_AS_ROWS: usize = 64;

/// Where spend batches are written.
pub enum SpendSink {
    Postgres(PgPool),
    Sqlite(Box<SqliteSink>),
}

/// The embedded store's spend writer: its connection, opened on the first batch.
pub struct SqliteSink {
    file: PathBuf,
    flags: OpenFlags,
    conn: Option<rusqlite::Connection>,
    last_used: Instant,
    /// Spend-log rows committed since the last checkpoint, each commit counted as
    /// [`COMMIT_AS_ROWS`] more.
    since_checkpoint: usize,
    /// Deployment and key ids already looked up on this connection.
    ids: KnownIds,
    pace: Pace,
}

/// The `LiteLLM_SpendLogDeployments` and `LiteLLM_SpendLogKeys` ids a connection has looked
/// up, so each table is read once per deployment or key, not per row. Emptied whenever a
/// rollback may have removed ids they hold.
#[derive(Default)]
struct KnownIds {
    /// A gateway names a handful of deployments: a list is searched faster than a map.
    deployments: Vec<([String; 6], i64)>,
    /// Keys can be many; past [`KnownIds::MAX_KEYS`] the map starts over.
    keys: foldhash::HashMap<String, i64>,
}

impl KnownIds {
    const MAX_KEYS: usize = 10_000;

    fn clear(&mut self) {
        self.deployments.clear();
        self.keys.clear();
    }
}

/// How many rows the writer handles before its next yield: [`ROWS_PER_SLICE`] while yields
/// come back at once (a call arriving meanwhile waits for one short slice), doubling up to
/// [`MAX_ROWS_PER_SLICE`] each time a yield took longer than [`BUSY_YIELD`]. A busy runtime
/// gives a yielded task its next turn only after many other polls; with short slices the
/// writer would fall behind the calls it records, and there a slice's delay is lost in the
/// queueing anyway.
struct Pace {
    rows: usize,
}

impl Pace {
    async fn pause(&mut self) {
        let started = Instant::now();
        tokio::task::yield_now().await;
        self.rows = if started.elapsed() > BUSY_YIELD {
            (self.rows * 2).min(MAX_ROWS_PER_SLICE)
        } else {
            ROWS_PER_SLICE
        };
    }
}

impl SpendSink {
    pub(super) fn sqlite(file: PathBuf, in_memory: bool) -> Self {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if in_memory {
            // The pool's in-memory database is a named, shared-cache one: this opens the same.
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        Self::Sqlite(Box::new(SqliteSink {
            file,
            flags,
            conn: None,
            last_used: Instant::now(),
            since_checkpoint: 0,
            ids: KnownIds::default(),
            pace: Pace {
                rows: ROWS_PER_SLICE,
            },
        }))
    }

    /// Writes `b` in one transaction. On success `b` is left empty; on failure it is left as
    /// it was, to be retried.
    pub async fn write(&mut self, b: &mut SpendBatch) -> StoreResult<()> {
        match self {
            Self::Postgres(p) => {
                write_postgres(p, b).await?;
                *b = SpendBatch::default();
                Ok(())
            }
            Self::Sqlite(s) => s.write(b).await,
        }
    }

    /// Checkpoints and closes the SQLite connection when no batch has used it for a while.
    pub async fn close_if_idle(&mut self) {
        if let Self::Sqlite(s) = self {
            if s.last_used.elapsed() >= SQLITE_IDLE_CLOSE {
                if let Some(conn) = s.conn.take() {
                    s.since_checkpoint = 0;
                    s.ids.clear();
                    // Closing the last connection to a WAL database checkpoints it.
                    let _ = tokio::task::spawn_blocking(move || drop(conn)).await;
                }
            }
        }
    }
}

impl SqliteSink {
    async fn write(&mut self, b: &mut SpendBatch) -> StoreResult<()> {
        self.last_used = Instant::now();
        self.begin().await?;
        let mut written = 0;
        let mut result = Ok(());
        while written < b.logs.len() {
            // One statement: the largest power of two within the pace and the rows left.
            let mut n = self.pace.rows;
            while written + n > b.logs.len() {
                n /= 2;
            }
            let end = written + n;
            result = self.insert_logs(&b.logs[written..end]);
            if result.is_err() {
                break;
            }
            written = end;
            self.pace.pause().await;
        }
        let conn = self.conn()?;
        let result = result
            .and_then(|()| write_increments(conn, b))
            .and_then(|()| super::daily_spend::write_sqlite(conn, &b.daily))
            .and_then(|()| conn.execute_batch("COMMIT"));
        if let Err(e) = result {
            let _ = conn.execute_batch("ROLLBACK");
            // A failed insert may have added deployment or key ids that the rollback removed.
            self.ids.clear();
            return Err(e.into());
        }
        self.since_checkpoint += b.logs.len() + COMMIT_AS_ROWS;
        // The rows are freed a slice at a time too: dropping a batch's strings and JSON
        // values at once was one more long stretch.
        let mut logs = std::mem::take(&mut b.logs);
        *b = SpendBatch::default();
        while !logs.is_empty() {
            logs.truncate(logs.len().saturating_sub(self.pace.rows * 8));
            self.pace.pause().await;
        }
        if self.since_checkpoint >= CHECKPOINT_ROWS {
            self.checkpoint().await;
        }
        Ok(())
    }

    fn conn(&self) -> StoreResult<&rusqlite::Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Config("spend writer connection is closed".into()))
    }

    /// Opens the connection if needed and starts a write transaction, waiting (without
    /// blocking the thread) while another connection holds the write lock.
    async fn begin(&mut self) -> StoreResult<()> {
        if self.conn.is_none() {
            self.conn = Some(open(&self.file, self.flags)?);
        }
        let waited = Instant::now();
        loop {
            let conn = self.conn()?;
            // A batch interrupted before its end (the task was cancelled) left its transaction.
            let interrupted = !conn.is_autocommit();
            if interrupted {
                conn.execute_batch("ROLLBACK")?;
            }
            let begun = conn.execute_batch("BEGIN IMMEDIATE");
            if interrupted {
                self.ids.clear();
            }
            match begun {
                Ok(()) => return Ok(()),
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && waited.elapsed() < SQLITE_BUSY_TIMEOUT =>
                {
                    tokio::time::sleep(BUSY_RETRY).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One statement's worth of rows (a power of two up to [`MAX_ROWS_PER_SLICE`]).
    fn insert_logs(&mut self, logs: &[SpendLogRow]) -> rusqlite::Result<()> {
        let Some(conn) = self.conn.as_ref() else {
            return Err(rusqlite::Error::InvalidQuery);
        };
        let (shape, params) = if logs.iter().all(is_lean) {
            (LogShape::SqliteLean, SQLITE_LEAN_PARAMS)
        } else {
            (LogShape::Sqlite, SQLITE_LOG_PARAMS)
        };
        let mut insert = conn.prepare_cached(log_insert_sql(shape, logs.len()))?;
        for (i, l) in logs.iter().enumerate() {
            let deployment = deployment_id(conn, &mut self.ids.deployments, l)?;
            let key = key_id(conn, &mut self.ids.keys, &l.api_key)?;
            bind_sqlite_log(&mut insert, i * params, params, l, deployment, key)?;
        }
        insert.raw_execute()?;
        Ok(())
    }

    /// A passive checkpoint of the WAL on a blocking thread (it writes the database file and
    /// syncs it). A failure is left to the next one.
    async fn checkpoint(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let job = tokio::task::spawn_blocking(move || {
            let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            (conn, r)
        });
        if let Ok((conn, r)) = job.await {
            if let Err(e) = r {
                tracing::warn!("spend log checkpoint failed: {e}");
            }
            self.conn = Some(conn);
            self.since_checkpoint = 0;
        }
    }
}

fn open(file: &std::path::Path, flags: OpenFlags) -> StoreResult<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(file, flags)?;
    // Never wait for a lock inside SQLite (that would block the runtime's thread): see
    // `SqliteSink::begin`. As the pool's connections have them: `synchronous`, `temp_store`,
    // `foreign_keys` (per connection; the WAL journal is the file's). Checkpoints are this
    // writer's own (`SqliteSink::checkpoint`), not done inside a commit.
    conn.busy_timeout(Duration::ZERO)?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
    )?;
    Ok(conn)
}

/// The embedded store's lean spend-log table (see its migrations): the deployment's columns are
/// one id into `LiteLLM_SpendLogDeployments`, the key one id into `LiteLLM_SpendLogKeys`, and
/// NULL stands for the usual `user`, `metadata`, `cache_hit`, `request_tags` and `status`.
///
/// `OR IGNORE` (a row whose `request_id` is already there is skipped) rather than
/// `ON CONFLICT ... DO NOTHING`: with only the unique key able to fail, it is the same rule,
/// but a multi-row statement that cannot abort needs no statement journal, and copying each
/// touched page into one cost SQLite about a fifth of a row's insert. A batch is one
/// transaction rolled back whole on any error, so a statement-level undo buys nothing. Every
/// NOT NULL column is bound from a value that cannot be NULL, so IGNORE skips nothing else.
const SQLITE_LOG_INSERT_COLUMNS: &str = r#"INSERT OR IGNORE INTO "LiteLLM_SpendLogRows" ("request_id","deployment","key_id","spend","total_tokens","prompt_tokens","completion_tokens","startTime","endTime","request_duration_ms","completionStartTime","user","metadata","cache_hit","cache_key","request_tags","team_id","organization_id","end_user","status") VALUES "#;
/// Bound values per spend-log row (the columns above).
const SQLITE_LOG_PARAMS: usize = 20;
/// The same INSERT for rows whose columns after `request_duration_ms` would all be bound NULL
/// but `end_user` (a successful call without streaming, cache, tags, metadata, user or team):
/// those are left to their default, NULL, rather than bound one by one.
const SQLITE_LEAN_INSERT_COLUMNS: &str = r#"INSERT OR IGNORE INTO "LiteLLM_SpendLogRows" ("request_id","deployment","key_id","spend","total_tokens","prompt_tokens","completion_tokens","startTime","endTime","request_duration_ms","end_user") VALUES "#;
/// Bound values per lean row.
const SQLITE_LEAN_PARAMS: usize = 11;
/// Where a lean row's values sit among a full row's ([`SQLITE_LOG_INSERT_COLUMNS`] order).
const SQLITE_LEAN_COLUMNS: [usize; SQLITE_LEAN_PARAMS] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 18];

/// Which spend-log INSERT a statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogShape {
    Postgres,
    Sqlite,
    SqliteLean,
}

/// A member's spend in a team (`LiteLLM_TeamMembership`, where LiteLLM keeps per-member
/// figures): added to the member's row, which is created only while the user is on the team's
/// roster, so spend flushed after a removal never brings the member back. `total_spend` is
/// never reset.
const SQLITE_TEAM_MEMBER_SPEND: &str = r#"INSERT INTO "LiteLLM_TeamMembership" ("user_id", "team_id", "spend", "total_spend")
    SELECT ?1, ?2, ?3, ?3
    WHERE EXISTS (SELECT 1 FROM "LiteLLM_TeamTable" t, json_each(CASE json_type(t."members_with_roles")
                      WHEN 'array' THEN t."members_with_roles" ELSE '[]' END) j
                    WHERE t."team_id" = ?2 AND json_extract(j.value, '$.user_id') = ?1)
       OR EXISTS (SELECT 1 FROM "LiteLLM_TeamMembership" m WHERE m."user_id" = ?1 AND m."team_id" = ?2)
    ON CONFLICT ("user_id", "team_id") DO UPDATE
    SET "spend" = "spend" + excluded."spend", "total_spend" = "total_spend" + excluded."total_spend""#;
const PG_TEAM_MEMBER_SPEND: &str = r#"INSERT INTO "LiteLLM_TeamMembership" ("user_id", "team_id", "spend", "total_spend")
    SELECT $1, $2, $3, $3
    WHERE EXISTS (SELECT 1 FROM "LiteLLM_TeamTable" t WHERE t."team_id" = $2
                    AND t."members_with_roles" @> jsonb_build_array(jsonb_build_object('user_id', $1::text)))
       OR EXISTS (SELECT 1 FROM "LiteLLM_TeamMembership" m WHERE m."user_id" = $1 AND m."team_id" = $2)
    ON CONFLICT ("user_id", "team_id") DO UPDATE
    SET "spend" = "LiteLLM_TeamMembership"."spend" + EXCLUDED."spend",
        "total_spend" = "LiteLLM_TeamMembership"."total_spend" + EXCLUDED."total_spend""#;

/// A tag's spend: added to its row; tags without a row (sent with calls but never created
/// through `/tag/new`) change nothing, as in LiteLLM.
const SQLITE_TAG_SPEND: &str =
    r#"UPDATE "LiteLLM_TagTable" SET "spend" = "spend" + ?2 WHERE "tag_name" = ?1"#;
const PG_TAG_SPEND: &str =
    r#"UPDATE "LiteLLM_TagTable" SET "spend" = "spend" + $2 WHERE "tag_name" = $1"#;

/// One table's increments: its statement in SQLite's and PostgreSQL's spelling, and the (id,
/// amount) pairs.
type Increment<'b> = (&'static str, &'static str, &'b [(String, f64)]);

/// The spend increments of a batch: the UPDATE (or upsert) of each table, in SQLite's and
/// PostgreSQL's spelling, with the batch's (id, amount) pairs.
fn increments(b: &SpendBatch) -> [Increment<'_>; 4] {
    [
        (
            r#"UPDATE "LiteLLM_UserTable" SET "spend" = "spend" + ?2 WHERE "user_id" = ?1"#,
            r#"UPDATE "LiteLLM_UserTable" SET "spend" = "spend" + $2 WHERE "user_id" = $1"#,
            &b.user_spend,
        ),
        (
            r#"UPDATE "LiteLLM_TeamTable" SET "spend" = "spend" + ?2 WHERE "team_id" = ?1"#,
            r#"UPDATE "LiteLLM_TeamTable" SET "spend" = "spend" + $2 WHERE "team_id" = $1"#,
            &b.team_spend,
        ),
        (
            r#"UPDATE "LiteLLM_OrganizationTable" SET "spend" = "spend" + ?2 WHERE "organization_id" = ?1"#,
            r#"UPDATE "LiteLLM_OrganizationTable" SET "spend" = "spend" + $2 WHERE "organization_id" = $1"#,
            &b.org_spend,
        ),
        (
            r#"INSERT INTO "LiteLLM_EndUserTable" ("user_id", "spend", "blocked") VALUES (?1, ?2, 0) ON CONFLICT ("user_id") DO UPDATE SET "spend" = "spend" + excluded."spend""#,
            r#"INSERT INTO "LiteLLM_EndUserTable" ("user_id", "spend", "blocked") VALUES ($1, $2, false) ON CONFLICT ("user_id") DO UPDATE SET "spend" = "LiteLLM_EndUserTable"."spend" + excluded."spend""#,
            &b.end_user_spend,
        ),
    ]
}

/// The spend increments of a batch on the embedded store, inside its transaction.
fn write_increments(conn: &rusqlite::Connection, b: &SpendBatch) -> rusqlite::Result<()> {
    if !b.key_spend.is_empty() {
        let now = fmt_ts(chrono::Utc::now().naive_utc());
        let mut key = conn.prepare_cached(r#"UPDATE "LiteLLM_VerificationToken" SET "spend" = "spend" + ?2, "total_spend" = "total_spend" + ?2, "last_active" = ?3 WHERE "token" = ?1"#)?;
        for (t, s) in &b.key_spend {
            key.execute(rusqlite::params![t, s, now])?;
        }
    }
    for (sql, _, rows) in increments(b) {
        if rows.is_empty() {
            continue;
        }
        let mut st = conn.prepare_cached(sql)?;
        for (id, s) in rows {
            st.execute(rusqlite::params![id, s])?;
        }
    }
    if !b.member_spend.is_empty() {
        let mut st = conn.prepare_cached(SQLITE_TEAM_MEMBER_SPEND)?;
        for (t, u, s) in &b.member_spend {
            st.execute(rusqlite::params![u, t, s])?;
        }
    }
    if !b.tag_spend.is_empty() {
        let mut st = conn.prepare_cached(SQLITE_TAG_SPEND)?;
        for (t, s) in &b.tag_spend {
            st.execute(rusqlite::params![t, s])?;
        }
    }
    Ok(())
}

/// Binds one spend-log row's values after the first `at` parameters of a spend-log INSERT, in
/// [`SQLITE_LOG_INSERT_COLUMNS`] order, or only [`SQLITE_LEAN_COLUMNS`] when `params` is
/// [`SQLITE_LEAN_PARAMS`]; `deployment` and `key` are the row's ids in
/// `LiteLLM_SpendLogDeployments` and `LiteLLM_SpendLogKeys`.
fn bind_sqlite_log(
    st: &mut rusqlite::CachedStatement<'_>,
    at: usize,
    params: usize,
    l: &SpendLogRow,
    deployment: i64,
    key: i64,
) -> rusqlite::Result<()> {
    let (start, end) = (TsText::new(l.start_time), TsText::new(l.end_time));
    let first_chunk = l.completion_start_time.map(TsText::new);
    let values: [&dyn rusqlite::ToSql; SQLITE_LOG_PARAMS] = [
        &l.request_id,
        &deployment,
        &key,
        &l.spend,
        &l.total_tokens,
        &l.prompt_tokens,
        &l.completion_tokens,
        &start.as_str(),
        &end.as_str(),
        &l.request_duration_ms,
        &first_chunk.as_ref().map(TsText::as_str),
        &unless(&l.user, ""),
        &non_empty_json(&l.metadata),
        &unless(&l.cache_hit, "False"),
        &l.cache_key,
        &non_empty_json(&l.request_tags),
        &l.team_id,
        &l.organization_id,
        &l.end_user,
        &unless(&l.status, "success"),
    ];
    // Parameters are numbered from 1.
    if params == SQLITE_LEAN_PARAMS {
        for (i, c) in SQLITE_LEAN_COLUMNS.into_iter().enumerate() {
            st.raw_bind_parameter(at + i + 1, values[c])?;
        }
    } else {
        for (i, v) in values.into_iter().enumerate() {
            st.raw_bind_parameter(at + i + 1, v)?;
        }
    }
    Ok(())
}

/// NULL for the value the view shows when the column is NULL.
fn unless<'a>(v: &'a str, usual: &str) -> Option<&'a str> {
    (v != usual).then_some(v)
}

/// Whether every column of `l` after `request_duration_ms` but `end_user` would be bound NULL
/// (see [`SQLITE_LEAN_INSERT_COLUMNS`]); kept in step with [`bind_sqlite_log`].
fn is_lean(l: &SpendLogRow) -> bool {
    l.completion_start_time.is_none()
        && unless(&l.user, "").is_none()
        && non_empty_json_value(&l.metadata).is_none()
        && unless(&l.cache_hit, "False").is_none()
        && l.cache_key.is_none()
        && non_empty_json_value(&l.request_tags).is_none()
        && l.team_id.is_none()
        && l.organization_id.is_none()
        && unless(&l.status, "success").is_none()
}

/// The JSON text of a spend-log object or list column, or None for an empty one (which the
/// embedded store's view shows as `{}` / `[]`).
fn non_empty_json(v: &Value) -> Option<String> {
    non_empty_json_value(v).map(Value::to_string)
}

/// `v`, unless it is an empty object or list.
fn non_empty_json_value(v: &Value) -> Option<&Value> {
    match v {
        Value::Object(m) if m.is_empty() => None,
        Value::Array(a) if a.is_empty() => None,
        _ => Some(v),
    }
}

/// The `LiteLLM_SpendLogDeployments` id of a row's deployment (call type, model, deployment,
/// group, provider, API base), adding it when it is not there yet. `known` holds the ids this
/// connection has looked up: a gateway names a handful of deployments, so the table is read
/// once per deployment, not per row.
fn deployment_id(
    conn: &rusqlite::Connection,
    known: &mut Vec<([String; 6], i64)>,
    l: &SpendLogRow,
) -> rusqlite::Result<i64> {
    let key: [&str; 6] = [
        &l.call_type,
        &l.model,
        &l.model_id,
        &l.model_group,
        &l.custom_llm_provider,
        &l.api_base,
    ];
    if let Some((_, id)) = known
        .iter()
        .find(|(k, _)| k.iter().zip(key).all(|(a, b)| a == b))
    {
        return Ok(*id);
    }
    conn.prepare_cached(r#"INSERT OR IGNORE INTO "LiteLLM_SpendLogDeployments" ("call_type", "model", "model_id", "model_group", "custom_llm_provider", "api_base") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"#)?
        .execute(key)?;
    let id = conn
        .prepare_cached(r#"SELECT "id" FROM "LiteLLM_SpendLogDeployments" WHERE "call_type" = ?1 AND "model" = ?2 AND "model_id" = ?3 AND "model_group" = ?4 AND "custom_llm_provider" = ?5 AND "api_base" = ?6"#)?
        .query_row(key, |r| r.get(0))?;
    known.push((key.map(str::to_owned), id));
    Ok(id)
}

const PG_LOG_INSERT_COLUMNS: &str = r#"INSERT INTO "LiteLLM_SpendLogs" ("request_id","call_type","api_key","spend","total_tokens","prompt_tokens","completion_tokens","startTime","endTime","request_duration_ms","completionStartTime","model","model_id","model_group","custom_llm_provider","api_base","user","metadata","cache_hit","cache_key","request_tags","team_id","organization_id","end_user","status") VALUES "#;
/// Bound values per spend-log row in PostgreSQL (the columns above).
const PG_LOG_INSERT_PARAMS: usize = 25;

/// The `LiteLLM_SpendLogKeys` id of a row's `api_key` ('' for a call without a virtual key),
/// adding it when it is not there yet.
fn key_id(
    conn: &rusqlite::Connection,
    known: &mut foldhash::HashMap<String, i64>,
    api_key: &str,
) -> rusqlite::Result<i64> {
    if let Some(id) = known.get(api_key) {
        return Ok(*id);
    }
    conn.prepare_cached(r#"INSERT OR IGNORE INTO "LiteLLM_SpendLogKeys" ("api_key") VALUES (?1)"#)?
        .execute([api_key])?;
    let id = conn
        .prepare_cached(r#"SELECT "id" FROM "LiteLLM_SpendLogKeys" WHERE "api_key" = ?1"#)?
        .query_row([api_key], |r| r.get(0))?;
    if known.len() >= KnownIds::MAX_KEYS {
        known.clear();
    }
    known.insert(api_key.to_owned(), id);
    Ok(id)
}

/// The spend-log INSERT for `rows` rows (a power of two up to [`MAX_ROWS_PER_SLICE`]), built
/// once per size and backend. On SQLite a slice is one statement (SQLite's cost per statement
/// run is shared by its rows) and the end of a batch one statement per remaining power of two;
/// PostgreSQL takes a batch in statements of the largest size (see [`statement_chunks`]). Few
/// distinct statements, each prepared once per connection.
fn log_insert_sql(shape: LogShape, rows: usize) -> &'static str {
    const SIZES: usize = MAX_ROWS_PER_SLICE.trailing_zeros() as usize + 1;
    static SQL: [OnceLock<String>; 3 * SIZES] = [const { OnceLock::new() }; 3 * SIZES];
    let size = (rows.trailing_zeros() as usize).min(SIZES - 1);
    SQL[shape as usize * SIZES + size].get_or_init(|| {
        let rows = 1usize << size;
        let postgres = shape == LogShape::Postgres;
        let (columns, params) = match shape {
            LogShape::Postgres => (PG_LOG_INSERT_COLUMNS, PG_LOG_INSERT_PARAMS),
            LogShape::Sqlite => (SQLITE_LOG_INSERT_COLUMNS, SQLITE_LOG_PARAMS),
            LogShape::SqliteLean => (SQLITE_LEAN_INSERT_COLUMNS, SQLITE_LEAN_PARAMS),
        };
        let mut sql = String::with_capacity(columns.len() + rows * params * 5);
        sql.push_str(columns);
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
        // PostgreSQL: no conflict target, since a spend log partitioned on "startTime"
        // (LiteLLM's runbook) can only have unique indexes that include it, none on
        // "request_id" alone. SQLite's statement says `OR IGNORE` up front.
        if postgres {
            sql.push_str(" ON CONFLICT DO NOTHING");
        }
        sql
    })
}

/// Cuts `rows` into slices of [`MAX_ROWS_PER_SLICE`] rows, then of 32, 16, ... 1 for the rest.
fn statement_chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut n = MAX_ROWS_PER_SLICE;
        while n > rest.len() {
            n /= 2;
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

async fn write_postgres(p: &PgPool, b: &SpendBatch) -> Result<(), sqlx::Error> {
    let mut tx = p.begin().await?;
    for chunk in statement_chunks(&b.logs) {
        let mut q = sqlx::query(log_insert_sql(LogShape::Postgres, chunk.len()));
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
                .bind(&*l.model)
                .bind(&*l.model_id)
                .bind(&*l.model_group)
                .bind(&l.custom_llm_provider)
                .bind(&*l.api_base)
                .bind(&l.user)
                .bind(sqlx::types::Json(&l.metadata))
                .bind(&l.cache_hit)
                .bind(l.cache_key.as_deref().unwrap_or_default())
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
        sqlx::query(r#"UPDATE "LiteLLM_VerificationToken" SET "spend" = "spend" + $2, "total_spend" = "total_spend" + $2, "last_active" = $3 WHERE "token" = $1"#)
            .bind(t).bind(s).bind(now).execute(&mut *tx).await?;
    }
    for (_, sql, rows) in increments(b) {
        for (id, s) in rows {
            sqlx::query(sql).bind(id).bind(s).execute(&mut *tx).await?;
        }
    }
    for (t, u, s) in &b.member_spend {
        sqlx::query(PG_TEAM_MEMBER_SPEND)
            .bind(u)
            .bind(t)
            .bind(s)
            .execute(&mut *tx)
            .await?;
    }
    write_tag_spend_postgres(&mut tx, b).await?;
    write_daily_postgres(&mut tx, b).await?;
    tx.commit().await
}

/// The batch's tag spend, behind a savepoint: on a database LiteLLM migrated before it had
/// `LiteLLM_TagTable` it is skipped with one warning rather than failing the batch.
async fn write_tag_spend_postgres(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    b: &SpendBatch,
) -> Result<(), sqlx::Error> {
    if b.tag_spend.is_empty() {
        return Ok(());
    }
    sqlx::query("SAVEPOINT tag_spend")
        .execute(&mut **tx)
        .await?;
    let mut result = Ok(());
    for (t, s) in &b.tag_spend {
        result = sqlx::query(PG_TAG_SPEND)
            .bind(t)
            .bind(s)
            .execute(&mut **tx)
            .await
            .map(|_| ());
        if result.is_err() {
            break;
        }
    }
    match result {
        Ok(()) => {
            sqlx::query("RELEASE SAVEPOINT tag_spend")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "LiteLLM_TagTable is missing ({e}); tag spend is not recorded until LiteLLM's migrations add it"
                )
            });
            sqlx::query("ROLLBACK TO SAVEPOINT tag_spend")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The batch's daily roll-ups, behind a savepoint: on a database LiteLLM migrated before it had
/// these tables (or all their columns), they are skipped with one warning rather than failing
/// the batch, so spend keeps being recorded (start-up warned about the missing columns).
async fn write_daily_postgres(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    b: &SpendBatch,
) -> Result<(), sqlx::Error> {
    if b.daily.is_empty() {
        return Ok(());
    }
    sqlx::query("SAVEPOINT daily_spend")
        .execute(&mut **tx)
        .await?;
    match super::daily_spend::write_postgres(tx, &b.daily).await {
        Ok(()) => {
            sqlx::query("RELEASE SAVEPOINT daily_spend")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P01" | "42703")) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "daily spend tables are missing or incomplete ({e}); daily activity is not recorded until LiteLLM's migrations add them"
                )
            });
            sqlx::query("ROLLBACK TO SAVEPOINT daily_spend")
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn rows(n: usize, prefix: &str) -> SpendBatch {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap();
        SpendBatch {
            logs: (0..n)
                .map(|i| SpendLogRow {
                    request_id: format!("{prefix}{i}"),
                    call_type: "acompletion".into(),
                    spend: 0.25,
                    start_time: t,
                    end_time: t,
                    model: "gpt".into(),
                    model_id: "dep".into(),
                    model_group: "gpt".into(),
                    custom_llm_provider: "openai".into(),
                    metadata: serde_json::json!({}),
                    cache_hit: "False".into(),
                    cache_key: None,
                    request_tags: serde_json::json!([]),
                    status: "success".into(),
                    ..SpendLogRow::default()
                })
                .collect(),
            ..SpendBatch::default()
        }
    }

    async fn count(store: &Store, table: &str) -> i64 {
        let Store::Sqlite(p) = store else {
            unreachable!("no database_url opens SQLite")
        };
        sqlx::query_scalar(&format!(r#"SELECT COUNT(*) FROM "{table}""#))
            .fetch_one(p)
            .await
            .unwrap()
    }

    async fn embedded() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(None, path.to_str().unwrap()).await.unwrap();
        (dir, store)
    }

    /// A row failing in the middle of a batch (after several slices and yields) rolls the whole
    /// batch back and leaves it to be retried; the retry writes every row once.
    #[tokio::test]
    async fn a_failed_batch_is_kept_whole_and_written_once_on_retry() {
        let (_dir, store) = embedded().await;
        let Store::Sqlite(p) = &store else {
            unreachable!()
        };
        sqlx::raw_sql(r#"CREATE TRIGGER "refuse" BEFORE INSERT ON "LiteLLM_SpendLogRows" WHEN NEW."request_id" = 'r-37' BEGIN SELECT RAISE(ABORT, 'refused'); END"#)
            .execute(p)
            .await
            .unwrap();
        let mut sink = store.spend_sink();
        let mut batch = rows(50, "r-");
        batch.key_spend.push(("hash".into(), 1.0));
        let err = sink.write(&mut batch).await.unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        assert_eq!(batch.logs.len(), 50, "the batch is kept for a retry");
        assert_eq!(batch.key_spend.len(), 1);
        assert_eq!(count(&store, "LiteLLM_SpendLogRows").await, 0);
        assert_eq!(count(&store, "LiteLLM_SpendLogDeployments").await, 0);
        sqlx::raw_sql(r#"DROP TRIGGER "refuse""#)
            .execute(p)
            .await
            .unwrap();
        sink.write(&mut batch).await.unwrap();
        assert!(batch.logs.is_empty() && batch.key_spend.is_empty());
        assert_eq!(count(&store, "LiteLLM_SpendLogRows").await, 50);
        assert_eq!(count(&store, "LiteLLM_SpendLogDeployments").await, 1);
        // The next batch reuses the deployment's id.
        sink.write(&mut rows(3, "s-")).await.unwrap();
        assert_eq!(count(&store, "LiteLLM_SpendLogRows").await, 53);
        assert_eq!(count(&store, "LiteLLM_SpendLogDeployments").await, 1);
    }

    /// Rows whose optional columns are all at their usual values go in with the lean INSERT
    /// (those columns left NULL), others with the full one, also when both kinds share a
    /// batch; the view shows each row's own values either way.
    #[tokio::test]
    async fn lean_and_full_rows_read_back_the_same_through_the_view() {
        let (_dir, store) = embedded().await;
        let mut sink = store.spend_sink();
        // 3 rows: a statement of 2 (lean + full), then one of 1 (lean); then 4 lean rows.
        let mut batch = rows(3, "a-");
        let full = &mut batch.logs[1];
        full.team_id = Some("team-1".into());
        full.end_user = Some("cust".into());
        full.status = "failure".into();
        full.metadata = serde_json::json!({"k": 1});
        full.request_tags = serde_json::json!(["t"]);
        full.user = "u-1".into();
        batch.logs[2].end_user = Some(String::new());
        assert!(is_lean(&batch.logs[0]) && !is_lean(&batch.logs[1]) && is_lean(&batch.logs[2]));
        sink.write(&mut batch).await.unwrap();
        sink.write(&mut rows(4, "b-")).await.unwrap();
        let Store::Sqlite(p) = &store else {
            unreachable!()
        };
        type Shown = (
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            String,
        );
        let got: Vec<Shown> = sqlx::query_as(
            r#"SELECT "request_id", "team_id", "end_user", "status", "metadata", "request_tags", "user" FROM "LiteLLM_SpendLogs" ORDER BY "request_id""#,
        )
        .fetch_all(p)
        .await
        .unwrap();
        let usual = |id: &str| -> Shown {
            (
                id.into(),
                None,
                None,
                "success".into(),
                "{}".into(),
                "[]".into(),
                String::new(),
            )
        };
        let mut want = vec![
            usual("a-0"),
            (
                "a-1".into(),
                Some("team-1".into()),
                Some("cust".into()),
                "failure".into(),
                r#"{"k":1}"#.into(),
                r#"["t"]"#.into(),
                "u-1".into(),
            ),
            (
                "a-2".into(),
                None,
                Some(String::new()),
                "success".into(),
                "{}".into(),
                "[]".into(),
                String::new(),
            ),
        ];
        want.extend(["b-0", "b-1", "b-2", "b-3"].map(usual));
        assert_eq!(got, want);
    }

    /// `sqlite::memory:`: the writer's connection opens the pool's named in-memory database,
    /// not a file of that name.
    #[tokio::test]
    async fn an_in_memory_store_gets_its_spend() {
        let store = Store::open(Some("sqlite::memory:"), "unused.db")
            .await
            .unwrap();
        let mut sink = store.spend_sink();
        sink.write(&mut rows(3, "m-")).await.unwrap();
        // Counted through the pool: the rows are in the database the pool reads.
        assert_eq!(count(&store, "LiteLLM_SpendLogRows").await, 3);
    }

    /// While another connection holds the write lock, the writer waits without holding up its
    /// thread (this test runs on a single-threaded runtime), and writes once the lock is free.
    #[tokio::test]
    async fn waiting_for_the_write_lock_leaves_the_thread_free() {
        let (_dir, store) = embedded().await;
        let Store::Sqlite(p) = &store else {
            unreachable!()
        };
        let mut holder = p.acquire().await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *holder)
            .await
            .unwrap();
        let mut sink = store.spend_sink();
        let writer = tokio::spawn(async move {
            let mut batch = rows(20, "r-");
            sink.write(&mut batch).await.map(|()| batch.logs.len())
        });
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "the thread was held for {:?}",
            started.elapsed()
        );
        assert!(!writer.is_finished());
        sqlx::raw_sql("COMMIT").execute(&mut *holder).await.unwrap();
        assert_eq!(writer.await.unwrap().unwrap(), 0);
        assert_eq!(count(&store, "LiteLLM_SpendLogRows").await, 20);
    }

    /// Slices grow while other tasks keep the runtime busy, and shrink back once it is idle.
    #[tokio::test]
    async fn the_pace_follows_how_busy_the_runtime_is() {
        let mut pace = Pace {
            rows: ROWS_PER_SLICE,
        };
        pace.pause().await;
        assert_eq!(pace.rows, ROWS_PER_SLICE, "nothing else to run");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let spin = Instant::now();
                        while spin.elapsed() < BUSY_YIELD {}
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for _ in 0..10 {
            pace.pause().await;
        }
        assert_eq!(pace.rows, MAX_ROWS_PER_SLICE);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in busy {
            t.await.unwrap();
        }
        pace.pause().await;
        assert_eq!(pace.rows, ROWS_PER_SLICE);
    }

    #[test]
    fn chunks_are_full_statements_then_halving_sizes() {
        let rows: Vec<usize> = (0..1000).collect();
        let sizes: Vec<usize> = statement_chunks(&rows).map(<[usize]>::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
        assert!(sizes[..15].iter().all(|n| *n == MAX_ROWS_PER_SLICE));
        let flat: Vec<usize> = statement_chunks(&rows).flatten().copied().collect();
        assert_eq!(flat, rows, "every row once, in order");
        assert_eq!(statement_chunks(&rows[..0]).count(), 0);
    }

    #[test]
    fn insert_statements_have_one_placeholder_per_value() {
        for size in [1, 2, 4, 8, 16, 32, 64] {
            for (shape, params) in [
                (LogShape::Sqlite, SQLITE_LOG_PARAMS),
                (LogShape::SqliteLean, SQLITE_LEAN_PARAMS),
            ] {
                let lite = log_insert_sql(shape, size);
                assert_eq!(lite.matches('?').count(), size * params, "{lite}");
                assert!(lite.starts_with("INSERT OR IGNORE INTO") && lite.ends_with(')'));
                let columns = lite[..lite.find(" VALUES ").unwrap()].matches(',').count() + 1;
                assert_eq!(columns, params, "{lite}");
                assert!(std::ptr::eq(lite, log_insert_sql(shape, size)));
            }
            let pg = log_insert_sql(LogShape::Postgres, size);
            let last = format!("${})", size * PG_LOG_INSERT_PARAMS);
            assert!(pg.contains(&last) && !pg.contains('?'), "{pg}");
            assert_eq!(pg.matches('(').count(), size + 1);
            // Built once: the same text every time.
            assert!(std::ptr::eq(pg, log_insert_sql(LogShape::Postgres, size)));
        }
    }
}
