//! SQL for `LiteLLM_OrganizationTable` and `LiteLLM_OrganizationMembership` (the
//! `/organization/*` routes, and the organization budget loaded with a key). An organization is
//! always read joined with the `LiteLLM_BudgetTable` row it must link to; creating or updating
//! one together with that row, deleting one with its teams, keys and memberships, and adding
//! members (creating unknown users) each happen in one transaction.

use super::budgets::{
    write_budget_pg, write_budget_sqlite, PG_BUDGET_COLUMNS, SQLITE_BUDGET_COLUMNS,
};
use super::rows::{self, parse_ts, BudgetRow, UserRow};
use super::users::{write_user_pg, write_user_sqlite};
use super::{BudgetWrite, Store, StoreError, StoreResult};
use chrono::NaiveDateTime;
use serde_json::Value;
use sqlx::Row;

/// A `LiteLLM_OrganizationTable` row with its budget row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgRow {
    pub organization_id: String,
    pub organization_alias: String,
    pub budget_id: String,
    pub metadata: Value,
    pub models: Vec<String>,
    pub spend: f64,
    pub model_spend: Value,
    pub object_permission_id: Option<String>,
    pub created_at: Option<NaiveDateTime>,
    pub created_by: String,
    pub updated_at: Option<NaiveDateTime>,
    pub updated_by: String,
    pub budget: Option<BudgetRow>,
}

/// A `LiteLLM_OrganizationMembership` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgMemberRow {
    pub user_id: String,
    pub organization_id: String,
    pub user_role: Option<String>,
    pub spend: f64,
    pub budget_id: Option<String>,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
    /// The member's `user_email` (joined from `LiteLLM_UserTable`).
    pub user_email: Option<String>,
}

const PG_ORG_COLUMNS: &str = r#"o."organization_id", o."organization_alias", o."budget_id",
    o."metadata"::text AS "metadata", COALESCE(array_to_json(o."models")::text, '[]') AS "models",
    o."spend", o."model_spend"::text AS "model_spend", o."object_permission_id",
    to_char(o."created_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "created_at", o."created_by",
    to_char(o."updated_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "updated_at", o."updated_by""#;

const SQLITE_ORG_COLUMNS: &str = r#"o."organization_id", o."organization_alias", o."budget_id",
    o."metadata", o."models", o."spend", o."model_spend", o."object_permission_id",
    o."created_at", o."created_by", o."updated_at", o."updated_by""#;

const PG_MEMBER_COLUMNS: &str = r#"m."user_id", m."organization_id", m."user_role", m."spend",
    m."budget_id", to_char(m."created_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "created_at",
    to_char(m."updated_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "updated_at", u."user_email""#;

const SQLITE_MEMBER_COLUMNS: &str = r#"m."user_id", m."organization_id", m."user_role", m."spend",
    m."budget_id", m."created_at", m."updated_at", u."user_email""#;

const MEMBER_FROM: &str = r#"FROM "LiteLLM_OrganizationMembership" m LEFT JOIN "LiteLLM_UserTable" u ON u."user_id" = m."user_id""#;

fn json_of(s: Option<String>) -> Value {
    s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| Value::Object(Default::default()))
}

macro_rules! org_from_row {
    ($r:expr, $budget:expr) => {{
        let r = $r;
        let s = |c: &str| r.try_get::<Option<String>, _>(c).ok().flatten();
        OrgRow {
            organization_id: s("organization_id").unwrap_or_default(),
            organization_alias: s("organization_alias").unwrap_or_default(),
            budget_id: s("budget_id").unwrap_or_default(),
            metadata: json_of(s("metadata")),
            models: s("models")
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or_default(),
            spend: r
                .try_get::<Option<f64>, _>("spend")
                .ok()
                .flatten()
                .unwrap_or(0.0),
            model_spend: json_of(s("model_spend")),
            object_permission_id: s("object_permission_id"),
            created_at: parse_ts(s("created_at")),
            created_by: s("created_by").unwrap_or_default(),
            updated_at: parse_ts(s("updated_at")),
            updated_by: s("updated_by").unwrap_or_default(),
            budget: $budget,
        }
    }};
}

macro_rules! member_from_row {
    ($r:expr) => {{
        let r = $r;
        let s = |c: &str| r.try_get::<Option<String>, _>(c).ok().flatten();
        OrgMemberRow {
            user_id: s("user_id").unwrap_or_default(),
            organization_id: s("organization_id").unwrap_or_default(),
            user_role: s("user_role"),
            spend: r
                .try_get::<Option<f64>, _>("spend")
                .ok()
                .flatten()
                .unwrap_or(0.0),
            budget_id: s("budget_id"),
            created_at: parse_ts(s("created_at")),
            updated_at: parse_ts(s("updated_at")),
            user_email: s("user_email"),
        }
    }};
}

fn org_sqlite(r: &sqlx::sqlite::SqliteRow) -> OrgRow {
    org_from_row!(r, rows::budget_from_sqlite(r))
}

fn org_pg(r: &sqlx::postgres::PgRow) -> OrgRow {
    org_from_row!(r, rows::budget_from_pg(r))
}

fn member_sqlite(r: &sqlx::sqlite::SqliteRow) -> OrgMemberRow {
    member_from_row!(r)
}

fn member_pg(r: &sqlx::postgres::PgRow) -> OrgMemberRow {
    member_from_row!(r)
}

fn pg_select(filter: &str) -> String {
    format!(
        r#"SELECT {PG_ORG_COLUMNS}, {PG_BUDGET_COLUMNS} FROM "LiteLLM_OrganizationTable" o LEFT JOIN "LiteLLM_BudgetTable" b ON b."budget_id" = o."budget_id" {filter}"#
    )
}

fn sqlite_select(filter: &str) -> String {
    format!(
        r#"SELECT {SQLITE_ORG_COLUMNS}, {SQLITE_BUDGET_COLUMNS} FROM "LiteLLM_OrganizationTable" o LEFT JOIN "LiteLLM_BudgetTable" b ON b."budget_id" = o."budget_id" {filter}"#
    )
}

fn conflict(o: &OrgRow, err: sqlx::Error) -> StoreError {
    let err = StoreError::Db(err);
    if err.is_unique_violation() {
        StoreError::Conflict(format!(
            "Organization id={} already exists. Pass a new organization_id.",
            o.organization_id
        ))
    } else {
        err
    }
}

async fn insert_org_sqlite(c: &mut sqlx::SqliteConnection, o: &OrgRow) -> StoreResult<()> {
    sqlx::query(
        r#"INSERT INTO "LiteLLM_OrganizationTable" ("organization_id","organization_alias","budget_id","metadata","models","spend","model_spend","object_permission_id","created_at","created_by","updated_at","updated_by") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"#,
    )
    .bind(&o.organization_id)
    .bind(&o.organization_alias)
    .bind(&o.budget_id)
    .bind(o.metadata.to_string())
    .bind(serde_json::to_string(&o.models).unwrap_or_else(|_| "[]".into()))
    .bind(o.spend)
    .bind(o.model_spend.to_string())
    .bind(&o.object_permission_id)
    .bind(o.created_at.map(super::fmt_ts))
    .bind(&o.created_by)
    .bind(o.updated_at.map(super::fmt_ts))
    .bind(&o.updated_by)
    .execute(c)
    .await
    .map_err(|e| conflict(o, e))?;
    Ok(())
}

/// Writes the columns `/organization/update` may change; spend and creation stay as stored.
async fn update_org_sqlite(c: &mut sqlx::SqliteConnection, o: &OrgRow) -> StoreResult<()> {
    sqlx::query(
        r#"UPDATE "LiteLLM_OrganizationTable" SET "organization_alias"=?2,"budget_id"=?3,"metadata"=?4,"models"=?5,"updated_at"=?6,"updated_by"=?7 WHERE "organization_id"=?1"#,
    )
    .bind(&o.organization_id)
    .bind(&o.organization_alias)
    .bind(&o.budget_id)
    .bind(o.metadata.to_string())
    .bind(serde_json::to_string(&o.models).unwrap_or_else(|_| "[]".into()))
    .bind(o.updated_at.map(super::fmt_ts))
    .bind(&o.updated_by)
    .execute(c)
    .await?;
    Ok(())
}

async fn insert_org_pg(c: &mut sqlx::PgConnection, o: &OrgRow) -> StoreResult<()> {
    sqlx::query(
        r#"INSERT INTO "LiteLLM_OrganizationTable" ("organization_id","organization_alias","budget_id","metadata","models","spend","model_spend","object_permission_id","created_at","created_by","updated_at","updated_by") VALUES ($1,$2,$3,$4::jsonb,$5,$6,$7::jsonb,$8,COALESCE($9,CURRENT_TIMESTAMP),$10,COALESCE($11,CURRENT_TIMESTAMP),$12)"#,
    )
    .bind(&o.organization_id)
    .bind(&o.organization_alias)
    .bind(&o.budget_id)
    .bind(o.metadata.to_string())
    .bind(&o.models)
    .bind(o.spend)
    .bind(o.model_spend.to_string())
    .bind(&o.object_permission_id)
    .bind(o.created_at)
    .bind(&o.created_by)
    .bind(o.updated_at)
    .bind(&o.updated_by)
    .execute(c)
    .await
    .map_err(|e| conflict(o, e))?;
    Ok(())
}

/// [`update_org_sqlite`] for Postgres.
async fn update_org_pg(c: &mut sqlx::PgConnection, o: &OrgRow) -> StoreResult<()> {
    sqlx::query(
        r#"UPDATE "LiteLLM_OrganizationTable" SET "organization_alias"=$2,"budget_id"=$3,"metadata"=$4::jsonb,"models"=$5,"updated_at"=COALESCE($6,CURRENT_TIMESTAMP),"updated_by"=$7 WHERE "organization_id"=$1"#,
    )
    .bind(&o.organization_id)
    .bind(&o.organization_alias)
    .bind(&o.budget_id)
    .bind(o.metadata.to_string())
    .bind(&o.models)
    .bind(o.updated_at)
    .bind(&o.updated_by)
    .execute(c)
    .await?;
    Ok(())
}

/// What `/organization/delete` removed besides the organizations: the hashes of the keys
/// deleted with them and the ids of their teams.
#[derive(Debug, Default, Clone)]
pub struct OrgDeletion {
    pub key_hashes: Vec<String>,
    pub team_ids: Vec<String>,
}

/// One member write of `/organization/member_add|member_update`.
#[derive(Debug, Clone)]
pub struct OrgMemberWrite {
    /// A user row to create first (the member was unknown).
    pub new_user: Option<UserRow>,
    pub member: OrgMemberRow,
    /// A budget row to create (`max_budget_in_organization`) or overwrite.
    pub budget: BudgetWrite,
}

impl Store {
    /// An organization with its budget row.
    pub async fn get_organization(&self, id: &str) -> StoreResult<Option<OrgRow>> {
        Ok(match self {
            Self::Sqlite(p) => sqlx::query(&sqlite_select(r#"WHERE o."organization_id" = ?1"#))
                .bind(id)
                .fetch_optional(p)
                .await?
                .map(|r| org_sqlite(&r)),
            Self::Postgres(p) => sqlx::query(&pg_select(r#"WHERE o."organization_id" = $1"#))
                .bind(id)
                .fetch_optional(p)
                .await?
                .map(|r| org_pg(&r)),
        })
    }

    /// Organizations with their budget rows, oldest first; `ids` limits them to those ids.
    pub async fn list_organizations(&self, ids: Option<&[String]>) -> StoreResult<Vec<OrgRow>> {
        let all = match self {
            Self::Sqlite(p) => sqlx::query(&sqlite_select(
                r#"ORDER BY o."created_at", o."organization_id""#,
            ))
            .fetch_all(p)
            .await?
            .iter()
            .map(org_sqlite)
            .collect::<Vec<_>>(),
            Self::Postgres(p) => sqlx::query(&pg_select(
                r#"ORDER BY o."created_at", o."organization_id""#,
            ))
            .fetch_all(p)
            .await?
            .iter()
            .map(org_pg)
            .collect(),
        };
        Ok(match ids {
            Some(ids) => all
                .into_iter()
                .filter(|o| ids.contains(&o.organization_id))
                .collect(),
            None => all,
        })
    }

    /// The members of an organization, by user id.
    pub async fn list_org_members(&self, organization_id: &str) -> StoreResult<Vec<OrgMemberRow>> {
        Ok(match self {
            Self::Sqlite(p) => sqlx::query(&format!(
                r#"SELECT {SQLITE_MEMBER_COLUMNS} {MEMBER_FROM} WHERE m."organization_id" = ?1 ORDER BY m."user_id""#
            ))
            .bind(organization_id)
            .fetch_all(p)
            .await?
            .iter()
            .map(member_sqlite)
            .collect(),
            Self::Postgres(p) => sqlx::query(&format!(
                r#"SELECT {PG_MEMBER_COLUMNS} {MEMBER_FROM} WHERE m."organization_id" = $1 ORDER BY m."user_id""#
            ))
            .bind(organization_id)
            .fetch_all(p)
            .await?
            .iter()
            .map(member_pg)
            .collect(),
        })
    }

    /// The organizations a user belongs to, as membership rows.
    pub async fn user_org_memberships(&self, user_id: &str) -> StoreResult<Vec<OrgMemberRow>> {
        Ok(match self {
            Self::Sqlite(p) => sqlx::query(&format!(
                r#"SELECT {SQLITE_MEMBER_COLUMNS} {MEMBER_FROM} WHERE m."user_id" = ?1"#
            ))
            .bind(user_id)
            .fetch_all(p)
            .await?
            .iter()
            .map(member_sqlite)
            .collect(),
            Self::Postgres(p) => sqlx::query(&format!(
                r#"SELECT {PG_MEMBER_COLUMNS} {MEMBER_FROM} WHERE m."user_id" = $1"#
            ))
            .bind(user_id)
            .fetch_all(p)
            .await?
            .iter()
            .map(member_pg)
            .collect(),
        })
    }

    /// Inserts an organization, with a new budget row first when one is given, in one
    /// transaction. A duplicate `organization_id` is a [`StoreError::Conflict`].
    pub async fn insert_organization(
        &self,
        o: &OrgRow,
        budget: Option<&BudgetRow>,
    ) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                if let Some(b) = budget {
                    write_budget_sqlite(&mut tx, b, true).await?;
                }
                insert_org_sqlite(&mut tx, o).await?;
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                if let Some(b) = budget {
                    write_budget_pg(&mut tx, b, true).await?;
                }
                insert_org_pg(&mut tx, o).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Overwrites an organization's columns (not its spend or creation) and writes its budget
    /// row, in one transaction.
    pub async fn update_organization(&self, o: &OrgRow, budget: &BudgetWrite) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                match budget {
                    BudgetWrite::Keep => {}
                    BudgetWrite::Insert(b) => {
                        write_budget_sqlite(&mut tx, b, true).await?;
                    }
                    BudgetWrite::Update(b) => {
                        write_budget_sqlite(&mut tx, b, false).await?;
                    }
                }
                update_org_sqlite(&mut tx, o).await?;
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                match budget {
                    BudgetWrite::Keep => {}
                    BudgetWrite::Insert(b) => {
                        write_budget_pg(&mut tx, b, true).await?;
                    }
                    BudgetWrite::Update(b) => {
                        write_budget_pg(&mut tx, b, false).await?;
                    }
                }
                update_org_pg(&mut tx, o).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Deletes organizations as LiteLLM does: their teams (with those teams' keys and
    /// memberships), the keys naming the organization, its memberships, then the row; all in
    /// one transaction. An unknown id is a [`StoreError::NotFound`] and nothing changes.
    pub async fn delete_organizations(&self, ids: &[String]) -> StoreResult<OrgDeletion> {
        let mut out = OrgDeletion::default();
        for id in ids {
            if self.get_organization(id).await?.is_none() {
                return Err(StoreError::NotFound(format!("Organization={id} not found")));
            }
        }
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                for id in ids {
                    let teams: Vec<(String,)> = sqlx::query_as(
                        r#"SELECT "team_id" FROM "LiteLLM_TeamTable" WHERE "organization_id" = ?1"#,
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let keys: Vec<(String,)> = sqlx::query_as(
                        r#"SELECT "token" FROM "LiteLLM_VerificationToken" WHERE "organization_id" = ?1 OR "team_id" IN (SELECT "team_id" FROM "LiteLLM_TeamTable" WHERE "organization_id" = ?1)"#,
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    for sql in [
                        r#"DELETE FROM "LiteLLM_VerificationToken" WHERE "organization_id" = ?1 OR "team_id" IN (SELECT "team_id" FROM "LiteLLM_TeamTable" WHERE "organization_id" = ?1)"#,
                        r#"DELETE FROM "LiteLLM_TeamMembership" WHERE "team_id" IN (SELECT "team_id" FROM "LiteLLM_TeamTable" WHERE "organization_id" = ?1)"#,
                        r#"DELETE FROM "LiteLLM_TeamTable" WHERE "organization_id" = ?1"#,
                        r#"DELETE FROM "LiteLLM_OrganizationMembership" WHERE "organization_id" = ?1"#,
                        r#"DELETE FROM "LiteLLM_OrganizationTable" WHERE "organization_id" = ?1"#,
                    ] {
                        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                    }
                    out.team_ids.extend(teams.into_iter().map(|t| t.0));
                    out.key_hashes.extend(keys.into_iter().map(|k| k.0));
                }
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                for id in ids {
                    let teams: Vec<(String,)> = sqlx::query_as(
                        r#"SELECT "team_id" FROM "LiteLLM_TeamTable" WHERE "organization_id" = $1"#,
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let keys: Vec<(String,)> = sqlx::query_as(
                        r#"SELECT "token" FROM "LiteLLM_VerificationToken" WHERE "organization_id" = $1 OR "team_id" IN (SELECT "team_id" FROM "LiteLLM_TeamTable" WHERE "organization_id" = $1)"#,
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                    for sql in [
                        r#"DELETE FROM "LiteLLM_VerificationToken" WHERE "organization_id" = $1 OR "team_id" IN (SELECT "team_id" FROM "LiteLLM_TeamTable" WHERE "organization_id" = $1)"#,
                        r#"DELETE FROM "LiteLLM_TeamMembership" WHERE "team_id" IN (SELECT "team_id" FROM "LiteLLM_TeamTable" WHERE "organization_id" = $1)"#,
                        r#"DELETE FROM "LiteLLM_TeamTable" WHERE "organization_id" = $1"#,
                        r#"DELETE FROM "LiteLLM_OrganizationMembership" WHERE "organization_id" = $1"#,
                        r#"DELETE FROM "LiteLLM_OrganizationTable" WHERE "organization_id" = $1"#,
                    ] {
                        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                    }
                    out.team_ids.extend(teams.into_iter().map(|t| t.0));
                    out.key_hashes.extend(keys.into_iter().map(|k| k.0));
                }
                tx.commit().await?;
            }
        }
        Ok(out)
    }

    /// Writes members of an organization (creating unknown users and member budgets first),
    /// in one transaction: membership rows are inserted, or their role and budget replaced.
    pub async fn write_org_members(&self, writes: &[OrgMemberWrite]) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                for w in writes {
                    if let Some(u) = &w.new_user {
                        write_user_sqlite(&mut tx, u, true).await?;
                    }
                    match &w.budget {
                        BudgetWrite::Keep => {}
                        BudgetWrite::Insert(b) => {
                            write_budget_sqlite(&mut tx, b, true).await?;
                        }
                        BudgetWrite::Update(b) => {
                            write_budget_sqlite(&mut tx, b, false).await?;
                        }
                    }
                    let m = &w.member;
                    sqlx::query(
                        r#"INSERT INTO "LiteLLM_OrganizationMembership" ("user_id","organization_id","user_role","spend","budget_id","created_at","updated_at") VALUES (?1,?2,?3,0.0,?4,?5,?5)
                        ON CONFLICT ("user_id","organization_id") DO UPDATE SET "user_role"=excluded."user_role","budget_id"=excluded."budget_id","updated_at"=excluded."updated_at""#,
                    )
                    .bind(&m.user_id)
                    .bind(&m.organization_id)
                    .bind(&m.user_role)
                    .bind(&m.budget_id)
                    .bind(m.updated_at.map(super::fmt_ts))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                for w in writes {
                    if let Some(u) = &w.new_user {
                        write_user_pg(&mut tx, u, true).await?;
                    }
                    match &w.budget {
                        BudgetWrite::Keep => {}
                        BudgetWrite::Insert(b) => {
                            write_budget_pg(&mut tx, b, true).await?;
                        }
                        BudgetWrite::Update(b) => {
                            write_budget_pg(&mut tx, b, false).await?;
                        }
                    }
                    let m = &w.member;
                    sqlx::query(
                        r#"INSERT INTO "LiteLLM_OrganizationMembership" ("user_id","organization_id","user_role","spend","budget_id","created_at","updated_at") VALUES ($1,$2,$3,0.0,$4,COALESCE($5,CURRENT_TIMESTAMP),COALESCE($5,CURRENT_TIMESTAMP))
                        ON CONFLICT ("user_id","organization_id") DO UPDATE SET "user_role"=excluded."user_role","budget_id"=excluded."budget_id","updated_at"=excluded."updated_at""#,
                    )
                    .bind(&m.user_id)
                    .bind(&m.organization_id)
                    .bind(&m.user_role)
                    .bind(&m.budget_id)
                    .bind(m.updated_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Removes a user from an organization; the removed row, or `None` when there was none.
    pub async fn delete_org_member(
        &self,
        organization_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<OrgMemberRow>> {
        let found = self
            .list_org_members(organization_id)
            .await?
            .into_iter()
            .find(|m| m.user_id == user_id);
        if found.is_none() {
            return Ok(None);
        }
        match self {
            Self::Sqlite(p) => {
                sqlx::query(r#"DELETE FROM "LiteLLM_OrganizationMembership" WHERE "organization_id" = ?1 AND "user_id" = ?2"#)
                    .bind(organization_id)
                    .bind(user_id)
                    .execute(p)
                    .await?;
            }
            Self::Postgres(p) => {
                sqlx::query(r#"DELETE FROM "LiteLLM_OrganizationMembership" WHERE "organization_id" = $1 AND "user_id" = $2"#)
                    .bind(organization_id)
                    .bind(user_id)
                    .execute(p)
                    .await?;
            }
        }
        Ok(found)
    }
}
