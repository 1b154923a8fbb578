//! SQL for `LiteLLM_HealthCheckTable`: stored health-check results, one row per model and
//! check, read back by `/health/latest` and `/health/history`.
//!
//! Rows are written as LiteLLM writes them (an error message cut to 500 characters, `details`
//! left empty) and read newest first. "Latest" is the newest row per (`model_id`,
//! `model_name`), as LiteLLM deduplicates them.

use super::{fmt_ts, Store, StoreResult};
use chrono::NaiveDateTime;
use sqlx::Row;

/// One stored check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckRow {
    pub health_check_id: String,
    pub model_name: String,
    pub model_id: Option<String>,
    /// `healthy` or `unhealthy`.
    pub status: String,
    pub healthy_count: i64,
    pub unhealthy_count: i64,
    pub error_message: Option<String>,
    pub response_time_ms: Option<f64>,
    pub checked_by: Option<String>,
    pub checked_at: Option<NaiveDateTime>,
    pub created_at: Option<NaiveDateTime>,
}

impl HealthCheckRow {
    /// A new row for a check that ended now.
    pub fn new(
        model_name: &str,
        model_id: Option<&str>,
        healthy_count: usize,
        unhealthy_count: usize,
        error_message: Option<&str>,
        response_time_ms: f64,
        checked_by: Option<&str>,
    ) -> Self {
        let now = chrono::Utc::now().naive_utc();
        Self {
            health_check_id: uuid::Uuid::new_v4().to_string(),
            model_name: model_name.to_string(),
            model_id: model_id.map(String::from),
            status: if healthy_count > 0 {
                "healthy"
            } else {
                "unhealthy"
            }
            .into(),
            healthy_count: healthy_count as i64,
            unhealthy_count: unhealthy_count as i64,
            error_message: error_message.map(|e| e.chars().take(500).collect()),
            response_time_ms: Some(response_time_ms).filter(|t| t.is_finite() && *t >= 0.0),
            checked_by: checked_by.map(String::from),
            checked_at: Some(now),
            created_at: Some(now),
        }
    }

    /// The row as LiteLLM's routes show it.
    pub fn to_json(&self) -> serde_json::Value {
        let iso = |t: &Option<NaiveDateTime>| {
            t.map(|t| {
                t.and_utc()
                    .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
                    .to_string()
            })
        };
        serde_json::json!({
            "health_check_id": self.health_check_id,
            "model_name": self.model_name,
            "model_id": self.model_id,
            "status": self.status,
            "healthy_count": self.healthy_count,
            "unhealthy_count": self.unhealthy_count,
            "error_message": self.error_message,
            "response_time_ms": self.response_time_ms,
            "details": null,
            "checked_by": self.checked_by,
            "checked_at": iso(&self.checked_at),
            "created_at": iso(&self.created_at),
        })
    }
}

const PG_COLUMNS: &str = r#""health_check_id", "model_name", "model_id", "status",
    "healthy_count"::BIGINT AS "healthy_count", "unhealthy_count"::BIGINT AS "unhealthy_count",
    "error_message", "response_time_ms", "checked_by",
    to_char("checked_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "checked_at",
    to_char("created_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "created_at""#;

const SQLITE_COLUMNS: &str = r#""health_check_id", "model_name", "model_id", "status",
    "healthy_count", "unhealthy_count", "error_message", "response_time_ms", "checked_by",
    "checked_at", "created_at""#;

macro_rules! check_from_row {
    ($r:expr) => {{
        let r = $r;
        let ts = |c: &str| {
            r.try_get::<Option<String>, _>(c)
                .ok()
                .flatten()
                .and_then(|s| super::rows_parse_ts(&s))
        };
        HealthCheckRow {
            health_check_id: r.try_get("health_check_id").unwrap_or_default(),
            model_name: r.try_get("model_name").unwrap_or_default(),
            model_id: r.try_get("model_id").ok().flatten(),
            status: r.try_get("status").unwrap_or_default(),
            healthy_count: r.try_get("healthy_count").unwrap_or_default(),
            unhealthy_count: r.try_get("unhealthy_count").unwrap_or_default(),
            error_message: r.try_get("error_message").ok().flatten(),
            response_time_ms: r.try_get("response_time_ms").ok().flatten(),
            checked_by: r.try_get("checked_by").ok().flatten(),
            checked_at: ts("checked_at"),
            created_at: ts("created_at"),
        }
    }};
}

/// The newest row of each (`model_id`, `model_name`).
const LATEST: &str = r#"WHERE NOT EXISTS (SELECT 1 FROM "LiteLLM_HealthCheckTable" n
    WHERE n."model_name" = h."model_name"
      AND (n."model_id" = h."model_id" OR (n."model_id" IS NULL AND h."model_id" IS NULL))
      AND (n."checked_at" > h."checked_at"
           OR (n."checked_at" = h."checked_at" AND n."health_check_id" > h."health_check_id")))
    ORDER BY h."checked_at" DESC"#;

impl Store {
    /// Stores checks (one statement each; a handful per health-check round).
    pub async fn save_health_checks(&self, rows: &[HealthCheckRow]) -> StoreResult<()> {
        for c in rows {
            let at = c
                .checked_at
                .unwrap_or_else(|| chrono::Utc::now().naive_utc());
            match self {
                Self::Sqlite(p) => {
                    sqlx::query(
                        r#"INSERT INTO "LiteLLM_HealthCheckTable" ("health_check_id", "model_name",
                            "model_id", "status", "healthy_count", "unhealthy_count", "error_message",
                            "response_time_ms", "checked_by", "checked_at", "created_at", "updated_at")
                           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?10)"#,
                    )
                    .bind(&c.health_check_id)
                    .bind(&c.model_name)
                    .bind(&c.model_id)
                    .bind(&c.status)
                    .bind(c.healthy_count)
                    .bind(c.unhealthy_count)
                    .bind(&c.error_message)
                    .bind(c.response_time_ms)
                    .bind(&c.checked_by)
                    .bind(fmt_ts(at))
                    .execute(p)
                    .await?;
                }
                Self::Postgres(p) => {
                    sqlx::query(
                        r#"INSERT INTO "LiteLLM_HealthCheckTable" ("health_check_id", "model_name",
                            "model_id", "status", "healthy_count", "unhealthy_count", "error_message",
                            "response_time_ms", "checked_by", "checked_at", "created_at", "updated_at")
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10)"#,
                    )
                    .bind(&c.health_check_id)
                    .bind(&c.model_name)
                    .bind(&c.model_id)
                    .bind(&c.status)
                    .bind(c.healthy_count as i32)
                    .bind(c.unhealthy_count as i32)
                    .bind(&c.error_message)
                    .bind(c.response_time_ms)
                    .bind(&c.checked_by)
                    .bind(at)
                    .execute(p)
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Stored checks, newest first, optionally of one model and one status.
    pub async fn health_check_history(
        &self,
        model_name: Option<&str>,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<HealthCheckRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_COLUMNS} FROM "LiteLLM_HealthCheckTable"
                       WHERE (?1 IS NULL OR "model_name" = ?1) AND (?2 IS NULL OR "status" = ?2)
                       ORDER BY "checked_at" DESC, "health_check_id" DESC LIMIT ?3 OFFSET ?4"#
                );
                sqlx::query(&q)
                    .bind(model_name)
                    .bind(status)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| check_from_row!(r))
                    .collect()
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_COLUMNS} FROM "LiteLLM_HealthCheckTable"
                       WHERE ($1::TEXT IS NULL OR "model_name" = $1) AND ($2::TEXT IS NULL OR "status" = $2)
                       ORDER BY "checked_at" DESC, "health_check_id" DESC LIMIT $3 OFFSET $4"#
                );
                sqlx::query(&q)
                    .bind(model_name)
                    .bind(status)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| check_from_row!(r))
                    .collect()
            }
        })
    }

    /// The newest stored check of each model (by id, else name), newest first.
    pub async fn latest_health_checks(&self) -> StoreResult<Vec<HealthCheckRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_COLUMNS} FROM "LiteLLM_HealthCheckTable" h {LATEST}"#
                );
                sqlx::query(&q)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| check_from_row!(r))
                    .collect()
            }
            Self::Postgres(p) => {
                let q =
                    format!(r#"SELECT {PG_COLUMNS} FROM "LiteLLM_HealthCheckTable" h {LATEST}"#);
                sqlx::query(&q)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| check_from_row!(r))
                    .collect()
            }
        })
    }
}
