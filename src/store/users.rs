//! SQL for `LiteLLM_UserTable` (the `/user/*` routes). Deleting users also deletes their keys
//! and memberships, in the same transaction, as LiteLLM's `/user/delete` does.

use super::rows::{self, UserRow};
use super::{fmt_ts, json_text, Store, StoreError, StoreResult};
use sqlx::QueryBuilder;

const PG_USER_COLUMNS: &str = r#""user_id", "user_alias", "team_id", "organization_id",
    COALESCE(array_to_json("teams")::text, '[]') AS "teams", "user_role", "max_budget", "spend",
    "user_email", COALESCE(array_to_json("models")::text, '[]') AS "models",
    "metadata"::text AS "metadata", "max_parallel_requests"::bigint AS "max_parallel_requests",
    "tpm_limit", "rpm_limit", "budget_duration",
    to_char("budget_reset_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "budget_reset_at",
    "model_spend"::text AS "model_spend", "model_max_budget"::text AS "model_max_budget",
    to_char("created_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "created_at",
    to_char("updated_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "updated_at""#;

const SQLITE_USER_COLUMNS: &str = r#""user_id", "user_alias", "team_id", "organization_id",
    "teams", "user_role", "max_budget", "spend", "user_email", "models", "metadata",
    "max_parallel_requests", "tpm_limit", "rpm_limit", "budget_duration", "budget_reset_at",
    "model_spend", "model_max_budget", "created_at", "updated_at""#;

/// Rows that refer to a user and go with it, as LiteLLM's `/user/delete` removes them: team and
/// organization memberships and (on a schema LiteLLM built) invitation links, whose foreign
/// keys would otherwise refuse the delete.
const PG_USER_REFERENCES: [&str; 3] = [
    r#"DELETE FROM "LiteLLM_TeamMembership" WHERE "user_id" = $1"#,
    r#"DELETE FROM "LiteLLM_OrganizationMembership" WHERE "user_id" = $1"#,
    r#"DELETE FROM "LiteLLM_InvitationLink" WHERE $1 IN ("user_id", "created_by", "updated_by")"#,
];

/// Filters of `/user/list`.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub role: Option<String>,
    pub user_ids: Vec<String>,
    pub user_email: Option<String>,
}

/// Appends ` WHERE ...` for a filter; every value is a bound parameter.
fn push_filter<'a, DB>(qb: &mut QueryBuilder<'a, DB>, f: &'a UserFilter)
where
    DB: sqlx::Database,
    &'a String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(" WHERE 1=1");
    if let Some(r) = &f.role {
        qb.push(r#" AND "user_role" = "#).push_bind(r);
    }
    if let Some(e) = &f.user_email {
        qb.push(r#" AND "user_email" = "#).push_bind(e);
    }
    if !f.user_ids.is_empty() {
        qb.push(r#" AND "user_id" IN ("#);
        let mut sep = qb.separated(", ");
        for id in &f.user_ids {
            sep.push_bind(id);
        }
        qb.push(")");
    }
}

fn conflict(u: &UserRow, e: sqlx::Error) -> StoreError {
    let err = StoreError::Db(e);
    if err.is_unique_violation() {
        StoreError::Conflict(format!("User with id={} already exists.", u.user_id))
    } else {
        err
    }
}

impl Store {
    pub async fn get_user(&self, user_id: &str) -> StoreResult<Option<UserRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_USER_COLUMNS} FROM "LiteLLM_UserTable" WHERE "user_id" = ?1"#
                );
                sqlx::query(&q)
                    .bind(user_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::user_from_sqlite(&r))
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_USER_COLUMNS} FROM "LiteLLM_UserTable" WHERE "user_id" = $1"#
                );
                sqlx::query(&q)
                    .bind(user_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::user_from_pg(&r))
            }
        })
    }

    pub async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_USER_COLUMNS} FROM "LiteLLM_UserTable" WHERE "user_email" = ?1 ORDER BY "created_at" LIMIT 1"#
                );
                sqlx::query(&q)
                    .bind(email)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::user_from_sqlite(&r))
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_USER_COLUMNS} FROM "LiteLLM_UserTable" WHERE "user_email" = $1 ORDER BY "created_at" LIMIT 1"#
                );
                sqlx::query(&q)
                    .bind(email)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::user_from_pg(&r))
            }
        })
    }

    /// Inserts a user; a duplicate `user_id` or `user_email` is a [`StoreError::Conflict`].
    pub async fn insert_user(&self, u: &UserRow) -> StoreResult<()> {
        self.write_user(u, true).await
    }

    /// Overwrites every column of an existing user.
    pub async fn update_user(&self, u: &UserRow) -> StoreResult<()> {
        self.write_user(u, false).await
    }

    async fn write_user(&self, u: &UserRow, insert: bool) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                write_user_sqlite(&mut tx, u, insert).await?;
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                write_user_pg(&mut tx, u, insert).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Deletes users and every key they own, in one transaction. Returns the user ids that
    /// existed and the hashes of the deleted keys (for cache invalidation).
    pub async fn delete_users(&self, ids: &[String]) -> StoreResult<(Vec<String>, Vec<String>)> {
        let mut users = Vec::new();
        let mut tokens = Vec::new();
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                for id in ids {
                    let gone: Vec<(String,)> = sqlx::query_as(
                        r#"DELETE FROM "LiteLLM_VerificationToken" WHERE "user_id" = ?1 RETURNING "token""#,
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    tokens.extend(gone.into_iter().map(|(t,)| t));
                    for sql in [
                        r#"DELETE FROM "LiteLLM_TeamMembership" WHERE "user_id" = ?1"#,
                        r#"DELETE FROM "LiteLLM_OrganizationMembership" WHERE "user_id" = ?1"#,
                    ] {
                        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                    }
                    let r = sqlx::query(r#"DELETE FROM "LiteLLM_UserTable" WHERE "user_id" = ?1"#)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if r.rows_affected() > 0 {
                        users.push(id.clone());
                    }
                }
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                // Only a schema LiteLLM built has invitation links.
                let (invitations,): (bool,) =
                    sqlx::query_as(r#"SELECT to_regclass('"LiteLLM_InvitationLink"') IS NOT NULL"#)
                        .fetch_one(&mut *tx)
                        .await?;
                for id in ids {
                    let gone: Vec<(String,)> = sqlx::query_as(
                        r#"DELETE FROM "LiteLLM_VerificationToken" WHERE "user_id" = $1 RETURNING "token""#,
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    tokens.extend(gone.into_iter().map(|(t,)| t));
                    for sql in PG_USER_REFERENCES {
                        if sql.contains("LiteLLM_InvitationLink") && !invitations {
                            continue;
                        }
                        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                    }
                    let r = sqlx::query(r#"DELETE FROM "LiteLLM_UserTable" WHERE "user_id" = $1"#)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if r.rows_affected() > 0 {
                        users.push(id.clone());
                    }
                }
                tx.commit().await?;
            }
        }
        Ok((users, tokens))
    }

    /// A page of users (oldest first, so pages are stable as users are added) and the total.
    pub async fn list_users(
        &self,
        f: &UserFilter,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<UserRow>, i64)> {
        match self {
            Self::Sqlite(p) => {
                let mut qb = QueryBuilder::<sqlx::Sqlite>::new(format!(
                    r#"SELECT {SQLITE_USER_COLUMNS} FROM "LiteLLM_UserTable""#
                ));
                push_filter(&mut qb, f);
                qb.push(r#" ORDER BY "created_at", "user_id" LIMIT "#)
                    .push_bind(limit)
                    .push(" OFFSET ")
                    .push_bind(offset);
                let rows = qb.build().fetch_all(p).await?;
                let mut cq = QueryBuilder::<sqlx::Sqlite>::new(
                    r#"SELECT COUNT(*) FROM "LiteLLM_UserTable""#,
                );
                push_filter(&mut cq, f);
                let (total,): (i64,) = cq.build_query_as().fetch_one(p).await?;
                Ok((rows.iter().map(rows::user_from_sqlite).collect(), total))
            }
            Self::Postgres(p) => {
                let mut qb = QueryBuilder::<sqlx::Postgres>::new(format!(
                    r#"SELECT {PG_USER_COLUMNS} FROM "LiteLLM_UserTable""#
                ));
                push_filter(&mut qb, f);
                qb.push(r#" ORDER BY "created_at" NULLS FIRST, "user_id" LIMIT "#)
                    .push_bind(limit)
                    .push(" OFFSET ")
                    .push_bind(offset);
                let rows = qb.build().fetch_all(p).await?;
                let mut cq = QueryBuilder::<sqlx::Postgres>::new(
                    r#"SELECT COUNT(*) FROM "LiteLLM_UserTable""#,
                );
                push_filter(&mut cq, f);
                let (total,): (i64,) = cq.build_query_as().fetch_one(p).await?;
                Ok((rows.iter().map(rows::user_from_pg).collect(), total))
            }
        }
    }
}

/// Inserts or overwrites a user on an open SQLite connection (a transaction of the caller);
/// a duplicate `user_id` or `user_email` is a [`StoreError::Conflict`].
pub(super) async fn write_user_sqlite(
    c: &mut sqlx::SqliteConnection,
    u: &UserRow,
    insert: bool,
) -> StoreResult<()> {
    let dup_email = || {
        StoreError::Conflict(format!(
            "User with email={} already exists.",
            u.user_email.as_deref().unwrap_or_default()
        ))
    };

    if let Some(email) = &u.user_email {
        let dup: Option<(String,)> = sqlx::query_as(
                        r#"SELECT "user_id" FROM "LiteLLM_UserTable" WHERE "user_email" = ?1 AND "user_id" <> ?2"#,
                    )
                    .bind(email)
                    .bind(&u.user_id)
                    .fetch_optional(&mut *c)
                    .await?;
        if dup.is_some() {
            return Err(dup_email());
        }
    }
    let sql = if insert {
        r#"INSERT INTO "LiteLLM_UserTable" ("user_id","user_alias","team_id","organization_id","teams","user_role","max_budget","spend","user_email","models","metadata","max_parallel_requests","tpm_limit","rpm_limit","budget_duration","budget_reset_at","model_spend","model_max_budget","created_at","updated_at") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20)"#
    } else {
        r#"UPDATE "LiteLLM_UserTable" SET "user_alias"=?2,"team_id"=?3,"organization_id"=?4,"teams"=?5,"user_role"=?6,"max_budget"=?7,"spend"=?8,"user_email"=?9,"models"=?10,"metadata"=?11,"max_parallel_requests"=?12,"tpm_limit"=?13,"rpm_limit"=?14,"budget_duration"=?15,"budget_reset_at"=?16,"model_spend"=?17,"model_max_budget"=?18,"created_at"=?19,"updated_at"=?20 WHERE "user_id"=?1"#
    };
    sqlx::query(sql)
        .bind(&u.user_id)
        .bind(&u.user_alias)
        .bind(&u.team_id)
        .bind(&u.organization_id)
        .bind(serde_json::to_string(&u.teams).unwrap_or_else(|_| "[]".into()))
        .bind(&u.user_role)
        .bind(u.max_budget)
        .bind(u.spend)
        .bind(&u.user_email)
        .bind(serde_json::to_string(&u.models).unwrap_or_else(|_| "[]".into()))
        .bind(json_text(&u.metadata))
        .bind(u.max_parallel_requests)
        .bind(u.tpm_limit)
        .bind(u.rpm_limit)
        .bind(&u.budget_duration)
        .bind(u.budget_reset_at.map(fmt_ts))
        .bind(json_text(&u.model_spend))
        .bind(json_text(&u.model_max_budget))
        .bind(u.created_at.map(fmt_ts))
        .bind(u.updated_at.map(fmt_ts))
        .execute(&mut *c)
        .await
        .map_err(|e| conflict(u, e))?;
    Ok(())
}

/// [`write_user_sqlite`] for Postgres.
pub(super) async fn write_user_pg(
    c: &mut sqlx::PgConnection,
    u: &UserRow,
    insert: bool,
) -> StoreResult<()> {
    let dup_email = || {
        StoreError::Conflict(format!(
            "User with email={} already exists.",
            u.user_email.as_deref().unwrap_or_default()
        ))
    };

    if let Some(email) = &u.user_email {
        let dup: Option<(String,)> = sqlx::query_as(
                        r#"SELECT "user_id" FROM "LiteLLM_UserTable" WHERE "user_email" = $1 AND "user_id" <> $2 FOR UPDATE"#,
                    )
                    .bind(email)
                    .bind(&u.user_id)
                    .fetch_optional(&mut *c)
                    .await?;
        if dup.is_some() {
            return Err(dup_email());
        }
    }
    let sql = if insert {
        r#"INSERT INTO "LiteLLM_UserTable" ("user_id","user_alias","team_id","organization_id","teams","user_role","max_budget","spend","user_email","models","metadata","max_parallel_requests","tpm_limit","rpm_limit","budget_duration","budget_reset_at","model_spend","model_max_budget","created_at","updated_at") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11::jsonb,$12,$13,$14,$15,$16,$17::jsonb,$18::jsonb,$19,$20)"#
    } else {
        r#"UPDATE "LiteLLM_UserTable" SET "user_alias"=$2,"team_id"=$3,"organization_id"=$4,"teams"=$5,"user_role"=$6,"max_budget"=$7,"spend"=$8,"user_email"=$9,"models"=$10,"metadata"=$11::jsonb,"max_parallel_requests"=$12,"tpm_limit"=$13,"rpm_limit"=$14,"budget_duration"=$15,"budget_reset_at"=$16,"model_spend"=$17::jsonb,"model_max_budget"=$18::jsonb,"created_at"=$19,"updated_at"=$20 WHERE "user_id"=$1"#
    };
    sqlx::query(sql)
        .bind(&u.user_id)
        .bind(&u.user_alias)
        .bind(&u.team_id)
        .bind(&u.organization_id)
        .bind(&u.teams)
        .bind(&u.user_role)
        .bind(u.max_budget)
        .bind(u.spend)
        .bind(&u.user_email)
        .bind(&u.models)
        .bind(json_text(&u.metadata))
        .bind(u.max_parallel_requests.map(|v| v as i32))
        .bind(u.tpm_limit)
        .bind(u.rpm_limit)
        .bind(&u.budget_duration)
        .bind(u.budget_reset_at)
        .bind(json_text(&u.model_spend))
        .bind(json_text(&u.model_max_budget))
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&mut *c)
        .await
        .map_err(|e| conflict(u, e))?;
    Ok(())
}
