//! SQL for `LiteLLM_TeamTable` (the `/team/*` routes). The roster lives in the team row's
//! `members_with_roles` list, as in LiteLLM (membership rows and member budgets are in
//! `store::membership`); deleting a team also deletes its keys and membership rows and takes it
//! off its users' `teams`, in the same transaction.

use super::rows::{self, TeamRow};
use super::{fmt_ts, json_text, Store, StoreError, StoreResult};
use sqlx::QueryBuilder;
use std::collections::HashMap;

/// Filters of `/v2/team/list`.
#[derive(Debug, Default, Clone)]
pub struct TeamListFilter {
    pub team_id: Option<String>,
    /// Case-insensitive substring of `team_alias`.
    pub team_alias: Option<String>,
    pub organization_id: Option<String>,
    /// `team_id` equal to (or, with `search_prefix`, starting with) it, or `team_alias`
    /// containing it (case-insensitive).
    pub search: Option<String>,
    pub search_prefix: bool,
    /// Only these teams (a user's `teams`).
    pub team_ids: Option<Vec<String>>,
}

/// Sort order of `/v2/team/list`: a column LiteLLM allows (`team_id`, `team_alias`,
/// `created_at`) and whether it is descending.
#[derive(Debug, Clone, Copy)]
pub struct TeamSort {
    pub column: &'static str,
    pub desc: bool,
}

fn push_team_filter_sqlite<'a>(qb: &mut QueryBuilder<'a, sqlx::Sqlite>, f: &'a TeamListFilter) {
    qb.push(" WHERE 1=1");
    if let Some(v) = &f.team_id {
        qb.push(r#" AND "team_id" = "#).push_bind(v);
    }
    if let Some(v) = &f.team_alias {
        qb.push(r#" AND instr(lower(COALESCE("team_alias", '')), lower("#)
            .push_bind(v)
            .push(")) > 0");
    }
    if let Some(v) = &f.organization_id {
        qb.push(r#" AND "organization_id" = "#).push_bind(v);
    }
    if let Some(v) = &f.search {
        if f.search_prefix {
            qb.push(r#" AND (substr("team_id", 1, length("#)
                .push_bind(v)
                .push(")) = ")
                .push_bind(v);
        } else {
            qb.push(r#" AND ("team_id" = "#).push_bind(v);
        }
        qb.push(r#" OR instr(lower(COALESCE("team_alias", '')), lower("#)
            .push_bind(v)
            .push(")) > 0)");
    }
    if let Some(ids) = &f.team_ids {
        qb.push(r#" AND "team_id" IN (SELECT value FROM json_each("#)
            .push_bind(list_text(ids))
            .push("))");
    }
}

fn push_team_filter_pg<'a>(qb: &mut QueryBuilder<'a, sqlx::Postgres>, f: &'a TeamListFilter) {
    qb.push(" WHERE 1=1");
    if let Some(v) = &f.team_id {
        qb.push(r#" AND "team_id" = "#).push_bind(v);
    }
    if let Some(v) = &f.team_alias {
        qb.push(r#" AND strpos(lower(COALESCE("team_alias", '')), lower("#)
            .push_bind(v)
            .push(")) > 0");
    }
    if let Some(v) = &f.organization_id {
        qb.push(r#" AND "organization_id" = "#).push_bind(v);
    }
    if let Some(v) = &f.search {
        if f.search_prefix {
            qb.push(r#" AND (starts_with("team_id", "#)
                .push_bind(v)
                .push(")");
        } else {
            qb.push(r#" AND ("team_id" = "#).push_bind(v);
        }
        qb.push(r#" OR strpos(lower(COALESCE("team_alias", '')), lower("#)
            .push_bind(v)
            .push(")) > 0)");
    }
    if let Some(ids) = &f.team_ids {
        qb.push(r#" AND "team_id" = ANY("#).push_bind(ids).push(")");
    }
}

const PG_TEAM_COLUMNS: &str = r#""team_id", "team_alias", "organization_id",
    COALESCE(array_to_json("admins")::text, '[]') AS "admins",
    COALESCE(array_to_json("members")::text, '[]') AS "members",
    "members_with_roles"::text AS "members_with_roles", "metadata"::text AS "metadata",
    "max_budget", "soft_budget", "spend", COALESCE(array_to_json("models")::text, '[]') AS "models",
    "max_parallel_requests"::bigint AS "max_parallel_requests", "tpm_limit", "rpm_limit",
    "budget_duration", to_char("budget_reset_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "budget_reset_at",
    "blocked", "model_spend"::text AS "model_spend", "model_max_budget"::text AS "model_max_budget",
    to_char("created_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "created_at",
    to_char("updated_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "updated_at""#;

const SQLITE_TEAM_COLUMNS: &str = r#""team_id", "team_alias", "organization_id", "admins",
    "members", "members_with_roles", "metadata", "max_budget", "soft_budget", "spend", "models",
    "max_parallel_requests", "tpm_limit", "rpm_limit", "budget_duration", "budget_reset_at",
    "blocked", "model_spend", "model_max_budget", "created_at", "updated_at""#;

fn conflict(t: &TeamRow, e: sqlx::Error) -> StoreError {
    let err = StoreError::Db(e);
    if err.is_unique_violation() {
        StoreError::Conflict(format!(
            "Team id = {} already exists. Please use a different team id.",
            t.team_id
        ))
    } else {
        err
    }
}

fn list_text(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Whether `LiteLLM_OrganizationTable` has this organization.
    pub async fn organization_exists(&self, organization_id: &str) -> StoreResult<bool> {
        const SQL_SQLITE: &str =
            r#"SELECT 1 FROM "LiteLLM_OrganizationTable" WHERE "organization_id" = ?1"#;
        const SQL_PG: &str =
            r#"SELECT 1 FROM "LiteLLM_OrganizationTable" WHERE "organization_id" = $1"#;
        let found: Option<(i32,)> = match self {
            Self::Sqlite(p) => {
                sqlx::query_as(SQL_SQLITE)
                    .bind(organization_id)
                    .fetch_optional(p)
                    .await?
            }
            Self::Postgres(p) => {
                sqlx::query_as(SQL_PG)
                    .bind(organization_id)
                    .fetch_optional(p)
                    .await?
            }
        };
        Ok(found.is_some())
    }

    pub async fn get_team(&self, team_id: &str) -> StoreResult<Option<TeamRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_TEAM_COLUMNS} FROM "LiteLLM_TeamTable" WHERE "team_id" = ?1"#
                );
                sqlx::query(&q)
                    .bind(team_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::team_from_sqlite(&r))
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_TEAM_COLUMNS} FROM "LiteLLM_TeamTable" WHERE "team_id" = $1"#
                );
                sqlx::query(&q)
                    .bind(team_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::team_from_pg(&r))
            }
        })
    }

    /// Every team, oldest first.
    pub async fn list_teams(&self) -> StoreResult<Vec<TeamRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"SELECT {SQLITE_TEAM_COLUMNS} FROM "LiteLLM_TeamTable" ORDER BY "created_at", "team_id""#
                );
                sqlx::query(&q)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(rows::team_from_sqlite)
                    .collect()
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"SELECT {PG_TEAM_COLUMNS} FROM "LiteLLM_TeamTable" ORDER BY "created_at", "team_id""#
                );
                sqlx::query(&q)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(rows::team_from_pg)
                    .collect()
            }
        })
    }

    /// Inserts a team; a duplicate `team_id` is a [`StoreError::Conflict`].
    pub async fn insert_team(&self, t: &TeamRow) -> StoreResult<()> {
        self.write_team(t, true).await
    }

    /// Overwrites every column of an existing team.
    pub async fn update_team(&self, t: &TeamRow) -> StoreResult<()> {
        self.write_team(t, false).await
    }

    async fn write_team(&self, t: &TeamRow, insert: bool) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let sql = if insert {
                    r#"INSERT INTO "LiteLLM_TeamTable" ("team_id","team_alias","organization_id","admins","members","members_with_roles","metadata","max_budget","soft_budget","spend","models","max_parallel_requests","tpm_limit","rpm_limit","budget_duration","budget_reset_at","blocked","model_spend","model_max_budget","created_at","updated_at") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)"#
                } else {
                    r#"UPDATE "LiteLLM_TeamTable" SET "team_alias"=?2,"organization_id"=?3,"admins"=?4,"members"=?5,"members_with_roles"=?6,"metadata"=?7,"max_budget"=?8,"soft_budget"=?9,"spend"=?10,"models"=?11,"max_parallel_requests"=?12,"tpm_limit"=?13,"rpm_limit"=?14,"budget_duration"=?15,"budget_reset_at"=?16,"blocked"=?17,"model_spend"=?18,"model_max_budget"=?19,"created_at"=?20,"updated_at"=?21 WHERE "team_id"=?1"#
                };
                sqlx::query(sql)
                    .bind(&t.team_id)
                    .bind(&t.team_alias)
                    .bind(&t.organization_id)
                    .bind(list_text(&t.admins))
                    .bind(list_text(&t.members))
                    .bind(json_text(&t.members_with_roles))
                    .bind(json_text(&t.metadata))
                    .bind(t.max_budget)
                    .bind(t.soft_budget)
                    .bind(t.spend)
                    .bind(list_text(&t.models))
                    .bind(t.max_parallel_requests)
                    .bind(t.tpm_limit)
                    .bind(t.rpm_limit)
                    .bind(&t.budget_duration)
                    .bind(t.budget_reset_at.map(fmt_ts))
                    .bind(t.blocked)
                    .bind(json_text(&t.model_spend))
                    .bind(json_text(&t.model_max_budget))
                    .bind(t.created_at.map(fmt_ts))
                    .bind(t.updated_at.map(fmt_ts))
                    .execute(p)
                    .await
                    .map_err(|e| conflict(t, e))?;
            }
            Self::Postgres(p) => {
                let sql = if insert {
                    r#"INSERT INTO "LiteLLM_TeamTable" ("team_id","team_alias","organization_id","admins","members","members_with_roles","metadata","max_budget","soft_budget","spend","models","max_parallel_requests","tpm_limit","rpm_limit","budget_duration","budget_reset_at","blocked","model_spend","model_max_budget","created_at","updated_at") VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7::jsonb,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18::jsonb,$19::jsonb,COALESCE($20,CURRENT_TIMESTAMP),COALESCE($21,CURRENT_TIMESTAMP))"#
                } else {
                    r#"UPDATE "LiteLLM_TeamTable" SET "team_alias"=$2,"organization_id"=$3,"admins"=$4,"members"=$5,"members_with_roles"=$6::jsonb,"metadata"=$7::jsonb,"max_budget"=$8,"soft_budget"=$9,"spend"=$10,"models"=$11,"max_parallel_requests"=$12,"tpm_limit"=$13,"rpm_limit"=$14,"budget_duration"=$15,"budget_reset_at"=$16,"blocked"=$17,"model_spend"=$18::jsonb,"model_max_budget"=$19::jsonb,"created_at"=COALESCE($20,"created_at"),"updated_at"=COALESCE($21,CURRENT_TIMESTAMP) WHERE "team_id"=$1"#
                };
                sqlx::query(sql)
                    .bind(&t.team_id)
                    .bind(&t.team_alias)
                    .bind(&t.organization_id)
                    .bind(&t.admins)
                    .bind(&t.members)
                    .bind(json_text(&t.members_with_roles))
                    .bind(json_text(&t.metadata))
                    .bind(t.max_budget)
                    .bind(t.soft_budget)
                    .bind(t.spend)
                    .bind(&t.models)
                    .bind(t.max_parallel_requests.map(|v| v as i32))
                    .bind(t.tpm_limit)
                    .bind(t.rpm_limit)
                    .bind(&t.budget_duration)
                    .bind(t.budget_reset_at)
                    .bind(t.blocked)
                    .bind(json_text(&t.model_spend))
                    .bind(json_text(&t.model_max_budget))
                    .bind(t.created_at)
                    .bind(t.updated_at)
                    .execute(p)
                    .await
                    .map_err(|e| conflict(t, e))?;
            }
        }
        Ok(())
    }

    /// Deletes teams with every key that belongs to them and their membership rows, and takes
    /// the teams off their users' `teams`, in one transaction. Returns the team ids that existed
    /// and the hashes of the deleted keys (for cache invalidation).
    pub async fn delete_teams(&self, ids: &[String]) -> StoreResult<(Vec<String>, Vec<String>)> {
        let mut teams = Vec::new();
        let mut tokens = Vec::new();
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                for id in ids {
                    let gone: Vec<(String,)> = sqlx::query_as(
                        r#"DELETE FROM "LiteLLM_VerificationToken" WHERE "team_id" = ?1 RETURNING "token""#,
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    tokens.extend(gone.into_iter().map(|(t,)| t));
                    sqlx::query(r#"DELETE FROM "LiteLLM_TeamMembership" WHERE "team_id" = ?1"#)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(r#"UPDATE "LiteLLM_UserTable" SET "teams" = (SELECT json_group_array(value) FROM json_each("teams") WHERE value <> ?1) WHERE EXISTS (SELECT 1 FROM json_each("teams") WHERE value = ?1)"#)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    let r = sqlx::query(r#"DELETE FROM "LiteLLM_TeamTable" WHERE "team_id" = ?1"#)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if r.rows_affected() > 0 {
                        teams.push(id.clone());
                    }
                }
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                for id in ids {
                    let gone: Vec<(String,)> = sqlx::query_as(
                        r#"DELETE FROM "LiteLLM_VerificationToken" WHERE "team_id" = $1 RETURNING "token""#,
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    tokens.extend(gone.into_iter().map(|(t,)| t));
                    sqlx::query(r#"DELETE FROM "LiteLLM_TeamMembership" WHERE "team_id" = $1"#)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(r#"UPDATE "LiteLLM_UserTable" SET "teams" = array_remove("teams", $1) WHERE $1 = ANY("teams")"#)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    let r = sqlx::query(r#"DELETE FROM "LiteLLM_TeamTable" WHERE "team_id" = $1"#)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if r.rows_affected() > 0 {
                        teams.push(id.clone());
                    }
                }
                tx.commit().await?;
            }
        }
        Ok((teams, tokens))
    }

    /// A page of teams matching a filter, and how many match in all.
    pub async fn list_teams_page(
        &self,
        f: &TeamListFilter,
        sort: TeamSort,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<TeamRow>, i64)> {
        let dir = if sort.desc { "DESC" } else { "ASC" };
        match self {
            Self::Sqlite(p) => {
                let mut qb = QueryBuilder::<sqlx::Sqlite>::new(format!(
                    r#"SELECT {SQLITE_TEAM_COLUMNS} FROM "LiteLLM_TeamTable""#
                ));
                push_team_filter_sqlite(&mut qb, f);
                qb.push(format!(
                    r#" ORDER BY "{}" {dir}, "team_id" LIMIT "#,
                    sort.column
                ))
                .push_bind(limit)
                .push(" OFFSET ")
                .push_bind(offset);
                let rows = qb.build().fetch_all(p).await?;
                let mut cq = QueryBuilder::<sqlx::Sqlite>::new(
                    r#"SELECT COUNT(*) FROM "LiteLLM_TeamTable""#,
                );
                push_team_filter_sqlite(&mut cq, f);
                let (total,): (i64,) = cq.build_query_as().fetch_one(p).await?;
                Ok((rows.iter().map(rows::team_from_sqlite).collect(), total))
            }
            Self::Postgres(p) => {
                let mut qb = QueryBuilder::<sqlx::Postgres>::new(format!(
                    r#"SELECT {PG_TEAM_COLUMNS} FROM "LiteLLM_TeamTable""#
                ));
                push_team_filter_pg(&mut qb, f);
                let nulls = if sort.desc {
                    "NULLS LAST"
                } else {
                    "NULLS FIRST"
                };
                qb.push(format!(
                    r#" ORDER BY "{}" {dir} {nulls}, "team_id" LIMIT "#,
                    sort.column
                ))
                .push_bind(limit)
                .push(" OFFSET ")
                .push_bind(offset);
                let rows = qb.build().fetch_all(p).await?;
                let mut cq = QueryBuilder::<sqlx::Postgres>::new(
                    r#"SELECT COUNT(*) FROM "LiteLLM_TeamTable""#,
                );
                push_team_filter_pg(&mut cq, f);
                let (total,): (i64,) = cq.build_query_as().fetch_one(p).await?;
                Ok((rows.iter().map(rows::team_from_pg).collect(), total))
            }
        }
    }

    /// How many keys each of these teams has (teams without keys are absent).
    pub async fn count_keys_by_team(
        &self,
        team_ids: &[String],
    ) -> StoreResult<HashMap<String, i64>> {
        if team_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, i64)> = match self {
            Self::Sqlite(p) => {
                sqlx::query_as(r#"SELECT "team_id", COUNT(*) FROM "LiteLLM_VerificationToken" WHERE "team_id" IN (SELECT value FROM json_each(?1)) GROUP BY "team_id""#)
                    .bind(list_text(team_ids))
                    .fetch_all(p)
                    .await?
            }
            Self::Postgres(p) => {
                sqlx::query_as(r#"SELECT "team_id", COUNT(*) FROM "LiteLLM_VerificationToken" WHERE "team_id" = ANY($1) GROUP BY "team_id""#)
                    .bind(team_ids)
                    .fetch_all(p)
                    .await?
            }
        };
        Ok(rows.into_iter().collect())
    }
}
