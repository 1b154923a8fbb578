//! SQL for `LiteLLM_EndUserTable` (the `/customer/*` routes and the end-user lookup of LLM
//! calls). An end user is always read joined with the budget row it links to; creating or
//! updating one together with its budget row happens in one transaction.

use super::budgets::{
    write_budget_pg, write_budget_sqlite, PG_BUDGET_COLUMNS, SQLITE_BUDGET_COLUMNS,
};
use super::rows::{self, BudgetRow, EndUserRow};
use super::{Store, StoreError, StoreResult};
use sqlx::{PgConnection, SqliteConnection};

const PG_END_USER_COLUMNS: &str = r#"e."user_id", e."alias", e."spend",
    e."allowed_model_region", e."default_model",
    COALESCE(array_to_json(e."models")::text, '[]') AS "models", e."budget_id",
    e."object_permission_id", e."blocked""#;

const SQLITE_END_USER_COLUMNS: &str = r#"e."user_id", e."alias", e."spend",
    e."allowed_model_region", e."default_model", e."models", e."budget_id",
    e."object_permission_id", e."blocked""#;

/// What happens to an end user's budget row alongside an end-user write.
#[derive(Debug, Clone)]
pub enum BudgetWrite {
    Keep,
    /// A new row (its id is the end user's new `budget_id`).
    Insert(BudgetRow),
    /// New values for the row the end user already links to.
    Update(BudgetRow),
}

fn pg_select(filter: &str) -> String {
    format!(
        r#"SELECT {PG_END_USER_COLUMNS}, {PG_BUDGET_COLUMNS} FROM "LiteLLM_EndUserTable" e LEFT JOIN "LiteLLM_BudgetTable" b ON b."budget_id" = e."budget_id" {filter}"#
    )
}

fn sqlite_select(filter: &str) -> String {
    format!(
        r#"SELECT {SQLITE_END_USER_COLUMNS}, {SQLITE_BUDGET_COLUMNS} FROM "LiteLLM_EndUserTable" e LEFT JOIN "LiteLLM_BudgetTable" b ON b."budget_id" = e."budget_id" {filter}"#
    )
}

fn conflict(e: &EndUserRow, err: sqlx::Error) -> StoreError {
    let err = StoreError::Db(err);
    if err.is_unique_violation() {
        StoreError::Conflict(format!(
            "Customer already exists, passed user_id={}. Please pass a new user_id.",
            e.user_id
        ))
    } else {
        err
    }
}

async fn write_end_user_sqlite(
    conn: &mut SqliteConnection,
    e: &EndUserRow,
    insert: bool,
) -> StoreResult<()> {
    let sql = if insert {
        r#"INSERT INTO "LiteLLM_EndUserTable" ("user_id","alias","spend","allowed_model_region","default_model","models","budget_id","object_permission_id","blocked") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"#
    } else {
        r#"UPDATE "LiteLLM_EndUserTable" SET "alias"=?2,"spend"=?3,"allowed_model_region"=?4,"default_model"=?5,"models"=?6,"budget_id"=?7,"object_permission_id"=?8,"blocked"=?9 WHERE "user_id"=?1"#
    };
    sqlx::query(sql)
        .bind(&e.user_id)
        .bind(&e.alias)
        .bind(e.spend)
        .bind(&e.allowed_model_region)
        .bind(&e.default_model)
        .bind(serde_json::to_string(&e.models).unwrap_or_else(|_| "[]".into()))
        .bind(&e.budget_id)
        .bind(&e.object_permission_id)
        .bind(e.blocked)
        .execute(conn)
        .await
        .map_err(|err| conflict(e, err))?;
    Ok(())
}

async fn write_end_user_pg(
    conn: &mut PgConnection,
    e: &EndUserRow,
    insert: bool,
) -> StoreResult<()> {
    let sql = if insert {
        r#"INSERT INTO "LiteLLM_EndUserTable" ("user_id","alias","spend","allowed_model_region","default_model","models","budget_id","object_permission_id","blocked") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"#
    } else {
        r#"UPDATE "LiteLLM_EndUserTable" SET "alias"=$2,"spend"=$3,"allowed_model_region"=$4,"default_model"=$5,"models"=$6,"budget_id"=$7,"object_permission_id"=$8,"blocked"=$9 WHERE "user_id"=$1"#
    };
    sqlx::query(sql)
        .bind(&e.user_id)
        .bind(&e.alias)
        .bind(e.spend)
        .bind(&e.allowed_model_region)
        .bind(&e.default_model)
        .bind(&e.models)
        .bind(&e.budget_id)
        .bind(&e.object_permission_id)
        .bind(e.blocked)
        .execute(conn)
        .await
        .map_err(|err| conflict(e, err))?;
    Ok(())
}

/// The ids of `ids` that have no end-user row, as LiteLLM's not-found message lists them.
fn missing_error(ids: &[String], found: &[String]) -> Option<StoreError> {
    let missing: Vec<&str> = ids
        .iter()
        .filter(|id| !found.contains(id))
        .map(String::as_str)
        .collect();
    (!missing.is_empty()).then(|| {
        StoreError::NotFound(format!(
            "End User Id(s)={} do not exist in db",
            missing.join(", ")
        ))
    })
}

impl Store {
    /// An end user with its budget row.
    pub async fn get_end_user(&self, user_id: &str) -> StoreResult<Option<EndUserRow>> {
        Ok(match self {
            Self::Sqlite(p) => sqlx::query(&sqlite_select(r#"WHERE e."user_id" = ?1"#))
                .bind(user_id)
                .fetch_optional(p)
                .await?
                .map(|r| rows::end_user_from_sqlite(&r)),
            Self::Postgres(p) => sqlx::query(&pg_select(r#"WHERE e."user_id" = $1"#))
                .bind(user_id)
                .fetch_optional(p)
                .await?
                .map(|r| rows::end_user_from_pg(&r)),
        })
    }

    /// Every end user with its budget row, by id.
    pub async fn list_end_users(&self) -> StoreResult<Vec<EndUserRow>> {
        Ok(match self {
            Self::Sqlite(p) => sqlx::query(&sqlite_select(r#"ORDER BY e."user_id""#))
                .fetch_all(p)
                .await?
                .iter()
                .map(rows::end_user_from_sqlite)
                .collect(),
            Self::Postgres(p) => sqlx::query(&pg_select(r#"ORDER BY e."user_id""#))
                .fetch_all(p)
                .await?
                .iter()
                .map(rows::end_user_from_pg)
                .collect(),
        })
    }

    /// Inserts an end user, with a new budget row first when one is given, in one
    /// transaction. A duplicate `user_id` (or budget id) is a [`StoreError::Conflict`].
    pub async fn insert_end_user(
        &self,
        e: &EndUserRow,
        budget: Option<&BudgetRow>,
    ) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                if let Some(b) = budget {
                    write_budget_sqlite(&mut tx, b, true).await?;
                }
                write_end_user_sqlite(&mut tx, e, true).await?;
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                if let Some(b) = budget {
                    write_budget_pg(&mut tx, b, true).await?;
                }
                write_end_user_pg(&mut tx, e, true).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Overwrites an end user's columns (not its spend, which the spend writer owns) and
    /// writes its budget row, in one transaction.
    pub async fn update_end_user(&self, e: &EndUserRow, budget: &BudgetWrite) -> StoreResult<()> {
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
                let (spend,): (f64,) = sqlx::query_as(
                    r#"SELECT "spend" FROM "LiteLLM_EndUserTable" WHERE "user_id" = ?1"#,
                )
                .bind(&e.user_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("End User Id={} does not exist in db", e.user_id))
                })?;
                let row = EndUserRow { spend, ..e.clone() };
                write_end_user_sqlite(&mut tx, &row, false).await?;
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
                let (spend,): (f64,) = sqlx::query_as(
                    r#"SELECT "spend" FROM "LiteLLM_EndUserTable" WHERE "user_id" = $1 FOR UPDATE"#,
                )
                .bind(&e.user_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("End User Id={} does not exist in db", e.user_id))
                })?;
                let row = EndUserRow { spend, ..e.clone() };
                write_end_user_pg(&mut tx, &row, false).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Deletes end users in one transaction; if any id has no row, nothing is deleted and the
    /// missing ids come back as a [`StoreError::NotFound`]. Returns the number deleted.
    pub async fn delete_end_users(&self, ids: &[String]) -> StoreResult<u64> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                let found = existing_sqlite(&mut tx, ids).await?;
                if let Some(e) = missing_error(ids, &found) {
                    return Err(e);
                }
                let mut deleted = 0;
                for id in &found {
                    deleted +=
                        sqlx::query(r#"DELETE FROM "LiteLLM_EndUserTable" WHERE "user_id" = ?1"#)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                }
                tx.commit().await?;
                Ok(deleted)
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                let found = existing_pg(&mut tx, ids).await?;
                if let Some(e) = missing_error(ids, &found) {
                    return Err(e);
                }
                let deleted =
                    sqlx::query(r#"DELETE FROM "LiteLLM_EndUserTable" WHERE "user_id" = ANY($1)"#)
                        .bind(&found)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                tx.commit().await?;
                Ok(deleted)
            }
        }
    }

    /// Sets `blocked` on end users in one transaction and returns their rows. With `create`,
    /// unknown ids get a new row (LiteLLM's `/customer/block` upserts); without it, any
    /// unknown id is a [`StoreError::NotFound`] and nothing changes.
    pub async fn set_end_users_blocked(
        &self,
        ids: &[String],
        blocked: bool,
        create: bool,
    ) -> StoreResult<Vec<EndUserRow>> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                if !create {
                    let found = existing_sqlite(&mut tx, ids).await?;
                    if let Some(e) = missing_error(ids, &found) {
                        return Err(e);
                    }
                }
                for id in ids {
                    sqlx::query(r#"INSERT INTO "LiteLLM_EndUserTable" ("user_id", "blocked") VALUES (?1, ?2) ON CONFLICT ("user_id") DO UPDATE SET "blocked" = excluded."blocked""#)
                        .bind(id)
                        .bind(blocked)
                        .execute(&mut *tx)
                        .await?;
                }
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(r) = sqlx::query(&sqlite_select(r#"WHERE e."user_id" = ?1"#))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                    {
                        out.push(rows::end_user_from_sqlite(&r));
                    }
                }
                tx.commit().await?;
                Ok(out)
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                if !create {
                    let found = existing_pg(&mut tx, ids).await?;
                    if let Some(e) = missing_error(ids, &found) {
                        return Err(e);
                    }
                }
                for id in ids {
                    sqlx::query(r#"INSERT INTO "LiteLLM_EndUserTable" ("user_id", "blocked") VALUES ($1, $2) ON CONFLICT ("user_id") DO UPDATE SET "blocked" = excluded."blocked""#)
                        .bind(id)
                        .bind(blocked)
                        .execute(&mut *tx)
                        .await?;
                }
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(r) = sqlx::query(&pg_select(r#"WHERE e."user_id" = $1"#))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                    {
                        out.push(rows::end_user_from_pg(&r));
                    }
                }
                tx.commit().await?;
                Ok(out)
            }
        }
    }

    /// The ids of every blocked end user.
    pub async fn blocked_end_user_ids(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = match self {
            Self::Sqlite(p) => {
                sqlx::query_as(r#"SELECT "user_id" FROM "LiteLLM_EndUserTable" WHERE "blocked" ORDER BY "user_id""#)
                    .fetch_all(p)
                    .await?
            }
            Self::Postgres(p) => {
                sqlx::query_as(r#"SELECT "user_id" FROM "LiteLLM_EndUserTable" WHERE "blocked" ORDER BY "user_id""#)
                    .fetch_all(p)
                    .await?
            }
        };
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

/// The ids among `ids` that have an end-user row.
async fn existing_sqlite(conn: &mut SqliteConnection, ids: &[String]) -> StoreResult<Vec<String>> {
    let mut found = Vec::new();
    for id in ids {
        let row: Option<(String,)> =
            sqlx::query_as(r#"SELECT "user_id" FROM "LiteLLM_EndUserTable" WHERE "user_id" = ?1"#)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some((id,)) = row {
            if !found.contains(&id) {
                found.push(id);
            }
        }
    }
    Ok(found)
}

async fn existing_pg(conn: &mut PgConnection, ids: &[String]) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        r#"SELECT "user_id" FROM "LiteLLM_EndUserTable" WHERE "user_id" = ANY($1) FOR UPDATE"#,
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
