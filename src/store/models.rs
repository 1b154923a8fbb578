//! SQL for `LiteLLM_ProxyModelTable`: models added through `/model/new` when
//! `store_model_in_db` is on.
//!
//! Rows are kept exactly as LiteLLM writes them: `litellm_params` holds the encrypted string
//! values (encryption is the caller's business, see `crate::crypto`), `model_info` is free JSON.
//! Read-modify-write updates run in one transaction (row locked on Postgres).

use super::{fmt_ts, json_text, Store, StoreError, StoreResult};
use chrono::NaiveDateTime;
use serde_json::Value;
use sqlx::Row;

/// One stored model, as in the table.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyModelRow {
    pub model_id: String,
    pub model_name: String,
    /// Stored form: string values are ciphertexts.
    pub litellm_params: Value,
    pub model_info: Option<Value>,
    pub blocked: bool,
    pub created_at: Option<NaiveDateTime>,
    pub created_by: String,
    pub updated_at: Option<NaiveDateTime>,
    pub updated_by: String,
}

const PG_COLUMNS: &str = r#""model_id", "model_name", "litellm_params"::text AS "litellm_params",
    "model_info"::text AS "model_info", "blocked",
    to_char("created_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "created_at", "created_by",
    to_char("updated_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "updated_at", "updated_by""#;

const SQLITE_COLUMNS: &str = r#""model_id", "model_name", "litellm_params", "model_info",
    "blocked", "created_at", "created_by", "updated_at", "updated_by""#;

/// Parses a JSON column. A value that is itself a JSON string holding an object (a client that
/// double-encoded it) is unwrapped, so such rows read like any other.
fn json_of(text: Option<String>) -> Option<Value> {
    let v: Value = serde_json::from_str(&text?).ok()?;
    match v {
        Value::String(inner) => match serde_json::from_str::<Value>(&inner) {
            Ok(o @ Value::Object(_)) => Some(o),
            _ => Some(Value::String(inner)),
        },
        other => Some(other),
    }
}

macro_rules! model_from_row {
    ($r:expr) => {{
        let r = $r;
        ProxyModelRow {
            model_id: r.try_get("model_id").unwrap_or_default(),
            model_name: r.try_get("model_name").unwrap_or_default(),
            litellm_params: json_of(r.try_get("litellm_params").ok()).unwrap_or(Value::Null),
            model_info: json_of(r.try_get("model_info").ok().flatten()),
            blocked: r.try_get("blocked").unwrap_or(false),
            created_at: r
                .try_get::<Option<String>, _>("created_at")
                .ok()
                .flatten()
                .and_then(|s| super::rows_parse_ts(&s)),
            created_by: r.try_get("created_by").unwrap_or_default(),
            updated_at: r
                .try_get::<Option<String>, _>("updated_at")
                .ok()
                .flatten()
                .and_then(|s| super::rows_parse_ts(&s)),
            updated_by: r.try_get("updated_by").unwrap_or_default(),
        }
    }};
}

fn from_sqlite(r: &sqlx::sqlite::SqliteRow) -> ProxyModelRow {
    model_from_row!(r)
}

fn from_pg(r: &sqlx::postgres::PgRow) -> ProxyModelRow {
    model_from_row!(r)
}

fn conflict(m: &ProxyModelRow, e: sqlx::Error) -> StoreError {
    let err = StoreError::Db(e);
    if err.is_unique_violation() {
        StoreError::Conflict(format!(
            "Model with id={} already exists in db. Use /model/update to change it.",
            m.model_id
        ))
    } else {
        err
    }
}

fn info_text(m: &ProxyModelRow) -> Option<String> {
    m.model_info.as_ref().map(json_text)
}

impl Store {
    /// Every stored model, oldest first (LiteLLM reads them all on each poll).
    pub async fn list_proxy_models(&self) -> StoreResult<Vec<ProxyModelRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_COLUMNS} FROM "LiteLLM_ProxyModelTable" ORDER BY "created_at", "model_id""#
                );
                sqlx::query(&q)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(from_sqlite)
                    .collect()
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_COLUMNS} FROM "LiteLLM_ProxyModelTable" ORDER BY "created_at", "model_id""#
                );
                sqlx::query(&q)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(from_pg)
                    .collect()
            }
        })
    }

    pub async fn get_proxy_model(&self, model_id: &str) -> StoreResult<Option<ProxyModelRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_COLUMNS} FROM "LiteLLM_ProxyModelTable" WHERE "model_id" = ?1"#
                );
                sqlx::query(&q)
                    .bind(model_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| from_sqlite(&r))
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_COLUMNS} FROM "LiteLLM_ProxyModelTable" WHERE "model_id" = $1"#
                );
                sqlx::query(&q)
                    .bind(model_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| from_pg(&r))
            }
        })
    }

    /// Inserts a model; a duplicate `model_id` is a [`StoreError::Conflict`].
    pub async fn insert_proxy_model(&self, m: &ProxyModelRow) -> StoreResult<()> {
        let created = m
            .created_at
            .unwrap_or_else(|| chrono::Utc::now().naive_utc());
        let updated = m.updated_at.unwrap_or(created);
        match self {
            Self::Sqlite(p) => {
                sqlx::query(
                    r#"INSERT INTO "LiteLLM_ProxyModelTable" ("model_id","model_name","litellm_params","model_info","blocked","created_at","created_by","updated_at","updated_by") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"#,
                )
                .bind(&m.model_id)
                .bind(&m.model_name)
                .bind(json_text(&m.litellm_params))
                .bind(info_text(m))
                .bind(m.blocked)
                .bind(fmt_ts(created))
                .bind(&m.created_by)
                .bind(fmt_ts(updated))
                .bind(&m.updated_by)
                .execute(p)
                .await
                .map_err(|e| conflict(m, e))?;
            }
            Self::Postgres(p) => {
                sqlx::query(
                    r#"INSERT INTO "LiteLLM_ProxyModelTable" ("model_id","model_name","litellm_params","model_info","blocked","created_at","created_by","updated_at","updated_by") VALUES ($1,$2,$3::jsonb,$4::jsonb,$5,$6,$7,$8,$9)"#,
                )
                .bind(&m.model_id)
                .bind(&m.model_name)
                .bind(json_text(&m.litellm_params))
                .bind(info_text(m))
                .bind(m.blocked)
                .bind(created)
                .bind(&m.created_by)
                .bind(updated)
                .bind(&m.updated_by)
                .execute(p)
                .await
                .map_err(|e| conflict(m, e))?;
            }
        }
        Ok(())
    }

    /// Reads the row, lets `change` edit it, and writes it back, in one transaction. `None`
    /// when no such model exists; an error from `change` rolls back.
    pub async fn update_proxy_model<E, F>(
        &self,
        model_id: &str,
        change: F,
    ) -> Result<Option<ProxyModelRow>, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut ProxyModelRow) -> Result<(), E>,
    {
        let db = |e: sqlx::Error| E::from(StoreError::Db(e));
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await.map_err(db)?;
                let q = format!(
                    r#"SELECT {SQLITE_COLUMNS} FROM "LiteLLM_ProxyModelTable" WHERE "model_id" = ?1"#
                );
                let Some(mut row) = sqlx::query(&q)
                    .bind(model_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?
                    .map(|r| from_sqlite(&r))
                else {
                    return Ok(None);
                };
                change(&mut row)?;
                sqlx::query(
                    r#"UPDATE "LiteLLM_ProxyModelTable" SET "model_name"=?2,"litellm_params"=?3,"model_info"=?4,"blocked"=?5,"updated_at"=?6,"updated_by"=?7 WHERE "model_id"=?1"#,
                )
                .bind(&row.model_id)
                .bind(&row.model_name)
                .bind(json_text(&row.litellm_params))
                .bind(info_text(&row))
                .bind(row.blocked)
                .bind(row.updated_at.map(fmt_ts))
                .bind(&row.updated_by)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(Some(row))
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await.map_err(db)?;
                let q = format!(
                    r#"SELECT {PG_COLUMNS} FROM "LiteLLM_ProxyModelTable" WHERE "model_id" = $1 FOR UPDATE"#
                );
                let Some(mut row) = sqlx::query(&q)
                    .bind(model_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?
                    .map(|r| from_pg(&r))
                else {
                    return Ok(None);
                };
                change(&mut row)?;
                sqlx::query(
                    r#"UPDATE "LiteLLM_ProxyModelTable" SET "model_name"=$2,"litellm_params"=$3::jsonb,"model_info"=$4::jsonb,"blocked"=$5,"updated_at"=COALESCE($6, CURRENT_TIMESTAMP),"updated_by"=$7 WHERE "model_id"=$1"#,
                )
                .bind(&row.model_id)
                .bind(&row.model_name)
                .bind(json_text(&row.litellm_params))
                .bind(info_text(&row))
                .bind(row.blocked)
                .bind(row.updated_at)
                .bind(&row.updated_by)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(Some(row))
            }
        }
    }

    /// Deletes a model and returns the row it removed, if there was one.
    pub async fn delete_proxy_model(&self, model_id: &str) -> StoreResult<Option<ProxyModelRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"DELETE FROM "LiteLLM_ProxyModelTable" WHERE "model_id" = ?1 RETURNING {SQLITE_COLUMNS}"#
                );
                sqlx::query(&q)
                    .bind(model_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| from_sqlite(&r))
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"DELETE FROM "LiteLLM_ProxyModelTable" WHERE "model_id" = $1 RETURNING {PG_COLUMNS}"#
                );
                sqlx::query(&q)
                    .bind(model_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| from_pg(&r))
            }
        })
    }
}
