//! SQL for `LiteLLM_BudgetTable` (the `/budget/*` routes, and the budget tiers end users link
//! to), plus the reset of due budget rows.
//!
//! Budget columns are always selected from the alias `b` with a `b_` prefix, so the same row
//! mapper reads a budget on its own and joined to an end user. Deleting a budget does what
//! LiteLLM's foreign keys do: rows that link to it (end users, keys, memberships, tags) are
//! unlinked, and a budget an organization still uses cannot be deleted.

use super::rows::{self, BudgetRow};
use super::tags::pg_tag_side_statement;
use super::{fmt_ts, Store, StoreError, StoreResult};
use chrono::NaiveDateTime;
use sqlx::{PgConnection, QueryBuilder, SqliteConnection};

/// Budget columns (Postgres casts lists, JSON and timestamps to text for the shared mapper).
pub(super) const PG_BUDGET_COLUMNS: &str = r#"b."budget_id" AS "b_budget_id",
    b."max_budget" AS "b_max_budget", b."soft_budget" AS "b_soft_budget",
    b."max_parallel_requests"::bigint AS "b_max_parallel_requests",
    b."tpm_limit" AS "b_tpm_limit", b."rpm_limit" AS "b_rpm_limit", b."tpd_limit" AS "b_tpd_limit",
    b."model_max_budget"::text AS "b_model_max_budget", b."budget_duration" AS "b_budget_duration",
    to_char(b."budget_reset_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "b_budget_reset_at",
    COALESCE(array_to_json(b."allowed_models")::text, '[]') AS "b_allowed_models",
    b."temp_budget_increase" AS "b_temp_budget_increase",
    to_char(b."temp_budget_expiry", 'YYYY-MM-DD HH24:MI:SS.MS') AS "b_temp_budget_expiry",
    to_char(b."created_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "b_created_at",
    b."created_by" AS "b_created_by",
    to_char(b."updated_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "b_updated_at",
    b."updated_by" AS "b_updated_by""#;

pub(super) const SQLITE_BUDGET_COLUMNS: &str = r#"b."budget_id" AS "b_budget_id",
    b."max_budget" AS "b_max_budget", b."soft_budget" AS "b_soft_budget",
    b."max_parallel_requests" AS "b_max_parallel_requests",
    b."tpm_limit" AS "b_tpm_limit", b."rpm_limit" AS "b_rpm_limit", b."tpd_limit" AS "b_tpd_limit",
    b."model_max_budget" AS "b_model_max_budget", b."budget_duration" AS "b_budget_duration",
    b."budget_reset_at" AS "b_budget_reset_at", b."allowed_models" AS "b_allowed_models",
    b."temp_budget_increase" AS "b_temp_budget_increase",
    b."temp_budget_expiry" AS "b_temp_budget_expiry", b."created_at" AS "b_created_at",
    b."created_by" AS "b_created_by", b."updated_at" AS "b_updated_at",
    b."updated_by" AS "b_updated_by""#;

fn conflict(b: &BudgetRow, e: sqlx::Error) -> StoreError {
    let err = StoreError::Db(e);
    if err.is_unique_violation() {
        StoreError::Conflict(format!("Budget with id '{}' already exists.", b.budget_id))
    } else {
        err
    }
}

fn json_opt(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(serde_json::Value::to_string)
}

/// Inserts (or overwrites) a budget row inside a SQLite transaction.
pub(super) async fn write_budget_sqlite(
    conn: &mut SqliteConnection,
    b: &BudgetRow,
    insert: bool,
) -> StoreResult<u64> {
    let sql = if insert {
        r#"INSERT INTO "LiteLLM_BudgetTable" ("budget_id","max_budget","soft_budget","max_parallel_requests","tpm_limit","rpm_limit","tpd_limit","model_max_budget","budget_duration","budget_reset_at","allowed_models","temp_budget_increase","temp_budget_expiry","created_at","created_by","updated_at","updated_by") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"#
    } else {
        r#"UPDATE "LiteLLM_BudgetTable" SET "max_budget"=?2,"soft_budget"=?3,"max_parallel_requests"=?4,"tpm_limit"=?5,"rpm_limit"=?6,"tpd_limit"=?7,"model_max_budget"=?8,"budget_duration"=?9,"budget_reset_at"=?10,"allowed_models"=?11,"temp_budget_increase"=?12,"temp_budget_expiry"=?13,"created_at"=COALESCE(?14,"created_at"),"created_by"=?15,"updated_at"=?16,"updated_by"=?17 WHERE "budget_id"=?1"#
    };
    let r = sqlx::query(sql)
        .bind(&b.budget_id)
        .bind(b.max_budget)
        .bind(b.soft_budget)
        .bind(b.max_parallel_requests)
        .bind(b.tpm_limit)
        .bind(b.rpm_limit)
        .bind(b.tpd_limit)
        .bind(json_opt(&b.model_max_budget))
        .bind(&b.budget_duration)
        .bind(b.budget_reset_at.map(fmt_ts))
        .bind(serde_json::to_string(&b.allowed_models).unwrap_or_else(|_| "[]".into()))
        .bind(b.temp_budget_increase)
        .bind(b.temp_budget_expiry.map(fmt_ts))
        .bind(b.created_at.map(fmt_ts))
        .bind(&b.created_by)
        .bind(b.updated_at.map(fmt_ts))
        .bind(&b.updated_by)
        .execute(conn)
        .await
        .map_err(|e| conflict(b, e))?;
    Ok(r.rows_affected())
}

/// Inserts (or overwrites) a budget row inside a Postgres transaction.
pub(super) async fn write_budget_pg(
    conn: &mut PgConnection,
    b: &BudgetRow,
    insert: bool,
) -> StoreResult<u64> {
    let sql = if insert {
        r#"INSERT INTO "LiteLLM_BudgetTable" ("budget_id","max_budget","soft_budget","max_parallel_requests","tpm_limit","rpm_limit","tpd_limit","model_max_budget","budget_duration","budget_reset_at","allowed_models","temp_budget_increase","temp_budget_expiry","created_at","created_by","updated_at","updated_by") VALUES ($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9,$10,$11,$12,$13,COALESCE($14,CURRENT_TIMESTAMP),$15,COALESCE($16,CURRENT_TIMESTAMP),$17)"#
    } else {
        r#"UPDATE "LiteLLM_BudgetTable" SET "max_budget"=$2,"soft_budget"=$3,"max_parallel_requests"=$4,"tpm_limit"=$5,"rpm_limit"=$6,"tpd_limit"=$7,"model_max_budget"=$8::jsonb,"budget_duration"=$9,"budget_reset_at"=$10,"allowed_models"=$11,"temp_budget_increase"=$12,"temp_budget_expiry"=$13,"created_at"=COALESCE($14,"created_at"),"created_by"=$15,"updated_at"=COALESCE($16,CURRENT_TIMESTAMP),"updated_by"=$17 WHERE "budget_id"=$1"#
    };
    let r = sqlx::query(sql)
        .bind(&b.budget_id)
        .bind(b.max_budget)
        .bind(b.soft_budget)
        .bind(b.max_parallel_requests.map(|v| v as i32))
        .bind(b.tpm_limit)
        .bind(b.rpm_limit)
        .bind(b.tpd_limit)
        .bind(json_opt(&b.model_max_budget))
        .bind(&b.budget_duration)
        .bind(b.budget_reset_at)
        .bind(&b.allowed_models)
        .bind(b.temp_budget_increase)
        .bind(b.temp_budget_expiry)
        .bind(b.created_at)
        .bind(&b.created_by)
        .bind(b.updated_at)
        .bind(&b.updated_by)
        .execute(conn)
        .await
        .map_err(|e| conflict(b, e))?;
    Ok(r.rows_affected())
}

/// A due budget row's tags go back to 0 spend (LiteLLM's reset job does the same).
const TAG_RESET_SQLITE: &str =
    r#"UPDATE "LiteLLM_TagTable" SET "spend" = 0 WHERE "budget_id" = ?1 RETURNING "tag_name""#;
const TAG_RESET_PG: &str =
    r#"UPDATE "LiteLLM_TagTable" SET "spend" = 0 WHERE "budget_id" = $1 RETURNING "tag_name""#;
/// A deleted budget row's tags are unlinked (LiteLLM's foreign key is `ON DELETE SET NULL`).
const TAG_UNLINK_SQLITE: &str = r#"UPDATE "LiteLLM_TagTable" SET "budget_id" = NULL WHERE "budget_id" = ?1 RETURNING "tag_name""#;
const TAG_UNLINK_PG: &str = r#"UPDATE "LiteLLM_TagTable" SET "budget_id" = NULL WHERE "budget_id" = $1 RETURNING "tag_name""#;

/// One budget row reset by [`Store::reset_due_budget_rows`], with what was zeroed with it.
pub(super) struct DueReset {
    pub budget_id: String,
    /// (team, user) memberships linked to the row.
    pub members: Vec<(String, String)>,
    pub organizations: Vec<String>,
    /// Tags linked to the row, whose spend went back to 0 with it.
    pub tags: Vec<String>,
}

impl Store {
    pub async fn get_budget(&self, budget_id: &str) -> StoreResult<Option<BudgetRow>> {
        Ok(self
            .get_budgets(std::slice::from_ref(&budget_id.to_string()))
            .await?
            .into_iter()
            .next())
    }

    /// The budgets among `ids` that exist, in id order.
    pub async fn get_budgets(&self, ids: &[String]) -> StoreResult<Vec<BudgetRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match self {
            Self::Sqlite(p) => {
                let mut qb = QueryBuilder::<sqlx::Sqlite>::new(format!(
                    r#"SELECT {SQLITE_BUDGET_COLUMNS} FROM "LiteLLM_BudgetTable" b WHERE b."budget_id" IN ("#
                ));
                let mut sep = qb.separated(", ");
                for id in ids {
                    sep.push_bind(id);
                }
                qb.push(r#") ORDER BY b."budget_id""#);
                qb.build()
                    .fetch_all(p)
                    .await?
                    .iter()
                    .filter_map(rows::budget_from_sqlite)
                    .collect()
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_BUDGET_COLUMNS} FROM "LiteLLM_BudgetTable" b WHERE b."budget_id" = ANY($1) ORDER BY b."budget_id""#
                );
                sqlx::query(&q)
                    .bind(ids)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .filter_map(rows::budget_from_pg)
                    .collect()
            }
        })
    }

    /// Every budget, oldest first.
    pub async fn list_budgets(&self) -> StoreResult<Vec<BudgetRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_BUDGET_COLUMNS} FROM "LiteLLM_BudgetTable" b ORDER BY b."created_at", b."budget_id""#
                );
                sqlx::query(&q)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .filter_map(rows::budget_from_sqlite)
                    .collect()
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_BUDGET_COLUMNS} FROM "LiteLLM_BudgetTable" b ORDER BY b."created_at", b."budget_id""#
                );
                sqlx::query(&q)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .filter_map(rows::budget_from_pg)
                    .collect()
            }
        })
    }

    /// Inserts a budget; a duplicate `budget_id` is a [`StoreError::Conflict`].
    pub async fn insert_budget(&self, b: &BudgetRow) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let mut conn = p.acquire().await?;
                write_budget_sqlite(&mut conn, b, true).await?;
            }
            Self::Postgres(p) => {
                let mut conn = p.acquire().await?;
                write_budget_pg(&mut conn, b, true).await?;
            }
        }
        Ok(())
    }

    /// Overwrites every column of a budget; `false` when no such budget exists.
    pub async fn update_budget(&self, b: &BudgetRow) -> StoreResult<bool> {
        let n = match self {
            Self::Sqlite(p) => {
                let mut conn = p.acquire().await?;
                write_budget_sqlite(&mut conn, b, false).await?
            }
            Self::Postgres(p) => {
                let mut conn = p.acquire().await?;
                write_budget_pg(&mut conn, b, false).await?
            }
        };
        Ok(n > 0)
    }

    /// Deletes a budget in one transaction, unlinking the end users, keys, memberships and tags
    /// that pointed at it. Returns the deleted row (`None` when it did not exist); a budget still
    /// used by an organization is a [`StoreError::Conflict`] and nothing changes.
    pub async fn delete_budget(&self, budget_id: &str) -> StoreResult<Option<BudgetRow>> {
        const UNLINK: [&str; 4] = [
            "LiteLLM_EndUserTable",
            "LiteLLM_VerificationToken",
            "LiteLLM_TeamMembership",
            "LiteLLM_OrganizationMembership",
        ];
        let in_use = |n: i64| {
            StoreError::Conflict(format!(
                "Budget id={budget_id} is still used by {n} organization(s); give them another budget first."
            ))
        };
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                let q = format!(
                    r#"SELECT {SQLITE_BUDGET_COLUMNS} FROM "LiteLLM_BudgetTable" b WHERE b."budget_id" = ?1"#
                );
                let Some(row) = sqlx::query(&q)
                    .bind(budget_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .and_then(|r| rows::budget_from_sqlite(&r))
                else {
                    return Ok(None);
                };
                let (orgs,): (i64,) = sqlx::query_as(
                    r#"SELECT COUNT(*) FROM "LiteLLM_OrganizationTable" WHERE "budget_id" = ?1"#,
                )
                .bind(budget_id)
                .fetch_one(&mut *tx)
                .await?;
                if orgs > 0 {
                    return Err(in_use(orgs));
                }
                for table in UNLINK {
                    sqlx::query(&format!(
                        r#"UPDATE "{table}" SET "budget_id" = NULL WHERE "budget_id" = ?1"#
                    ))
                    .bind(budget_id)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(TAG_UNLINK_SQLITE)
                    .bind(budget_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(r#"DELETE FROM "LiteLLM_BudgetTable" WHERE "budget_id" = ?1"#)
                    .bind(budget_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(row))
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                let q = format!(
                    r#"SELECT {PG_BUDGET_COLUMNS} FROM "LiteLLM_BudgetTable" b WHERE b."budget_id" = $1 FOR UPDATE"#
                );
                let Some(row) = sqlx::query(&q)
                    .bind(budget_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .and_then(|r| rows::budget_from_pg(&r))
                else {
                    return Ok(None);
                };
                let (orgs,): (i64,) = sqlx::query_as(
                    r#"SELECT COUNT(*) FROM "LiteLLM_OrganizationTable" WHERE "budget_id" = $1"#,
                )
                .bind(budget_id)
                .fetch_one(&mut *tx)
                .await?;
                if orgs > 0 {
                    return Err(in_use(orgs));
                }
                for table in UNLINK {
                    sqlx::query(&format!(
                        r#"UPDATE "{table}" SET "budget_id" = NULL WHERE "budget_id" = $1"#
                    ))
                    .bind(budget_id)
                    .execute(&mut *tx)
                    .await?;
                }
                pg_tag_side_statement(&mut tx, TAG_UNLINK_PG, budget_id).await?;
                sqlx::query(r#"DELETE FROM "LiteLLM_BudgetTable" WHERE "budget_id" = $1"#)
                    .bind(budget_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(row))
            }
        }
    }

    /// Budget rows past their `budget_reset_at`: the end users that link to each (and, for
    /// `default_end_user_budget`, the end users linked to no budget, which ride that tier) go
    /// back to 0 spend and the row gets its next reset one `budget_duration` later, in one
    /// transaction per row; so do the team memberships linked to it (`max_budget_in_team`).
    /// Organizations and tags linked to the row go back to 0 spend too, as in LiteLLM.
    /// Returns the ids of the rows this call reset with the (team, user) memberships, the
    /// organizations and the tags it zeroed; a row another replica reset first is skipped.
    pub(super) async fn reset_due_budget_rows(
        &self,
        now: NaiveDateTime,
        default_end_user_budget: Option<&str>,
    ) -> StoreResult<Vec<DueReset>> {
        let due: Vec<(String, Option<String>)> = match self {
            Self::Sqlite(p) => {
                sqlx::query_as(r#"SELECT "budget_id", "budget_duration" FROM "LiteLLM_BudgetTable" WHERE "budget_reset_at" IS NOT NULL AND "budget_reset_at" <= ?1"#)
                    .bind(fmt_ts(now))
                    .fetch_all(p)
                    .await?
            }
            Self::Postgres(p) => {
                sqlx::query_as(r#"SELECT "budget_id", "budget_duration" FROM "LiteLLM_BudgetTable" WHERE "budget_reset_at" IS NOT NULL AND "budget_reset_at" <= $1"#)
                    .bind(now)
                    .fetch_all(p)
                    .await?
            }
        };
        let mut out = Vec::new();
        for (id, duration) in due {
            let next = duration
                .as_deref()
                .and_then(crate::spend::parse_duration)
                .map(|d| now + d);
            let is_default = default_end_user_budget == Some(id.as_str());
            let mut members = Vec::new();
            let mut orgs: Vec<(String,)> = Vec::new();
            let mut tags: Vec<String> = Vec::new();
            let claimed = match self {
                Self::Sqlite(p) => {
                    let mut tx = p.begin().await?;
                    let n = sqlx::query(r#"UPDATE "LiteLLM_BudgetTable" SET "budget_reset_at" = ?1, "updated_at" = ?2 WHERE "budget_id" = ?3 AND "budget_reset_at" <= ?2"#)
                        .bind(next.map(fmt_ts))
                        .bind(fmt_ts(now))
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if n > 0 {
                        sqlx::query(r#"UPDATE "LiteLLM_EndUserTable" SET "spend" = 0 WHERE ("budget_id" = ?1 OR (?2 AND "budget_id" IS NULL)) AND "spend" <> 0"#)
                            .bind(&id)
                            .bind(is_default)
                            .execute(&mut *tx)
                            .await?;
                        members = sqlx::query_as(r#"UPDATE "LiteLLM_TeamMembership" SET "spend" = 0 WHERE "budget_id" = ?1 RETURNING "team_id", "user_id""#)
                            .bind(&id)
                            .fetch_all(&mut *tx)
                            .await?;
                        orgs = sqlx::query_as(r#"UPDATE "LiteLLM_OrganizationTable" SET "spend" = 0 WHERE "budget_id" = ?1 RETURNING "organization_id""#)
                            .bind(&id)
                            .fetch_all(&mut *tx)
                            .await?;
                        tags = sqlx::query_scalar(TAG_RESET_SQLITE)
                            .bind(&id)
                            .fetch_all(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    n > 0
                }
                Self::Postgres(p) => {
                    let mut tx = p.begin().await?;
                    let n = sqlx::query(r#"UPDATE "LiteLLM_BudgetTable" SET "budget_reset_at" = $1, "updated_at" = $2 WHERE "budget_id" = $3 AND "budget_reset_at" <= $2"#)
                        .bind(next)
                        .bind(now)
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if n > 0 {
                        sqlx::query(r#"UPDATE "LiteLLM_EndUserTable" SET "spend" = 0 WHERE ("budget_id" = $1 OR ($2 AND "budget_id" IS NULL)) AND "spend" <> 0"#)
                            .bind(&id)
                            .bind(is_default)
                            .execute(&mut *tx)
                            .await?;
                        members = sqlx::query_as(r#"UPDATE "LiteLLM_TeamMembership" SET "spend" = 0 WHERE "budget_id" = $1 RETURNING "team_id", "user_id""#)
                            .bind(&id)
                            .fetch_all(&mut *tx)
                            .await?;
                        orgs = sqlx::query_as(r#"UPDATE "LiteLLM_OrganizationTable" SET "spend" = 0 WHERE "budget_id" = $1 RETURNING "organization_id""#)
                            .bind(&id)
                            .fetch_all(&mut *tx)
                            .await?;
                        tags = pg_tag_side_statement(&mut tx, TAG_RESET_PG, &id).await?;
                    }
                    tx.commit().await?;
                    n > 0
                }
            };
            if claimed {
                out.push(DueReset {
                    budget_id: id,
                    members,
                    organizations: orgs.into_iter().map(|o| o.0).collect(),
                    tags,
                });
            }
        }
        Ok(out)
    }
}
