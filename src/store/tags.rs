//! SQL for `LiteLLM_TagTable` (the `/tag/*` routes and the tag lookup of LLM calls). A tag is
//! always read joined with the budget row it links to; creating or updating one together with
//! its budget row happens in one transaction.
//!
//! A database migrated by a LiteLLM from before tag management lacks the table (see `adopt`). There the routes fail with a message saying so, and the statements other work runs
//! on the side (unlinking a deleted budget, resetting a due one) are skipped behind a savepoint
//! instead of failing that work.

use super::budgets::{
    write_budget_pg, write_budget_sqlite, PG_BUDGET_COLUMNS, SQLITE_BUDGET_COLUMNS,
};
use super::rows::{budget_from_pg, budget_from_sqlite, parse_ts, BudgetRow};
use super::{fmt_ts, BudgetWrite, Store, StoreError, StoreResult};
use chrono::NaiveDateTime;
use serde_json::Value;
use sqlx::{PgConnection, QueryBuilder, Row, SqliteConnection};

/// PostgreSQL's code for a table that does not exist.
const UNDEFINED_TABLE: &str = "42P01";

/// A `LiteLLM_TagTable` row, with the budget row it links to when read through the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagRow {
    pub tag_name: String,
    pub description: Option<String>,
    /// Model ids or model group names the tag was created for.
    pub models: Vec<String>,
    /// `{model_id: model_name}` for the `models` that are stored models.
    pub model_info: Option<Value>,
    pub spend: f64,
    pub budget_id: Option<String>,
    pub created_at: Option<NaiveDateTime>,
    pub created_by: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
    /// The joined `LiteLLM_BudgetTable` row of `budget_id` (`None` when unlinked or dangling).
    pub budget: Option<BudgetRow>,
}

/// A tag seen in the daily tag roll-ups, with its first and last activity.
#[derive(Debug, Clone, PartialEq)]
pub struct UsedTag {
    pub tag: String,
    pub first_created_at: Option<NaiveDateTime>,
    pub last_updated_at: Option<NaiveDateTime>,
}

const PG_TAG_COLUMNS: &str = r#"t."tag_name", t."description",
    COALESCE(array_to_json(t."models")::text, '[]') AS "models", t."model_info"::text AS "model_info",
    t."spend", t."budget_id",
    to_char(t."created_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "created_at", t."created_by",
    to_char(t."updated_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "updated_at""#;

const SQLITE_TAG_COLUMNS: &str = r#"t."tag_name", t."description", t."models", t."model_info",
    t."spend", t."budget_id", t."created_at", t."created_by", t."updated_at""#;

macro_rules! tag_from_row {
    ($r:expr, $budget:expr) => {{
        let r = $r;
        TagRow {
            tag_name: r.try_get("tag_name").unwrap_or_default(),
            description: r.try_get("description").ok().flatten(),
            models: r
                .try_get::<Option<String>, _>("models")
                .ok()
                .flatten()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
            model_info: r
                .try_get::<Option<String>, _>("model_info")
                .ok()
                .flatten()
                .and_then(|t| serde_json::from_str(&t).ok())
                .filter(|v: &Value| !v.is_null()),
            spend: r
                .try_get::<Option<f64>, _>("spend")
                .ok()
                .flatten()
                .unwrap_or(0.0),
            budget_id: r.try_get("budget_id").ok().flatten(),
            created_at: parse_ts(r.try_get("created_at").ok().flatten()),
            created_by: r.try_get("created_by").ok().flatten(),
            updated_at: parse_ts(r.try_get("updated_at").ok().flatten()),
            budget: $budget,
        }
    }};
}

fn tag_from_sqlite(r: &sqlx::sqlite::SqliteRow) -> TagRow {
    tag_from_row!(r, budget_from_sqlite(r))
}

fn tag_from_pg(r: &sqlx::postgres::PgRow) -> TagRow {
    tag_from_row!(r, budget_from_pg(r))
}

fn pg_select() -> String {
    format!(
        r#"SELECT {PG_TAG_COLUMNS}, {PG_BUDGET_COLUMNS} FROM "LiteLLM_TagTable" t LEFT JOIN "LiteLLM_BudgetTable" b ON b."budget_id" = t."budget_id""#
    )
}

fn sqlite_select() -> String {
    format!(
        r#"SELECT {SQLITE_TAG_COLUMNS}, {SQLITE_BUDGET_COLUMNS} FROM "LiteLLM_TagTable" t LEFT JOIN "LiteLLM_BudgetTable" b ON b."budget_id" = t."budget_id""#
    )
}

fn is_undefined_table(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some(UNDEFINED_TABLE))
}

/// A database error, told apart when it is the tag table missing from an older LiteLLM schema.
fn db_err(e: sqlx::Error) -> StoreError {
    if is_undefined_table(&e) {
        StoreError::Config(
            "this database has no LiteLLM_TagTable (an older LiteLLM migrated it): apply \
             LiteLLM's current migrations to it to manage tags"
                .into(),
        )
    } else {
        StoreError::Db(e)
    }
}

fn conflict(t: &TagRow, e: sqlx::Error) -> StoreError {
    let err = db_err(e);
    if err.is_unique_violation() {
        StoreError::Conflict(format!("Tag {} already exists", t.tag_name))
    } else {
        err
    }
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("Tag {name} not found"))
}

async fn write_tag_sqlite(
    conn: &mut SqliteConnection,
    t: &TagRow,
    insert: bool,
) -> StoreResult<u64> {
    let now = crate::spend::now();
    let models = serde_json::to_string(&t.models).unwrap_or_else(|_| "[]".into());
    let info = t.model_info.as_ref().map(Value::to_string);
    let updated = fmt_ts(t.updated_at.unwrap_or(now));
    let q = if insert {
        sqlx::query(r#"INSERT INTO "LiteLLM_TagTable" ("tag_name","description","models","model_info","spend","budget_id","created_at","created_by","updated_at") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"#)
            .bind(&t.tag_name)
            .bind(&t.description)
            .bind(models)
            .bind(info)
            .bind(t.spend)
            .bind(&t.budget_id)
            .bind(fmt_ts(t.created_at.unwrap_or(now)))
            .bind(&t.created_by)
            .bind(updated)
    } else {
        sqlx::query(r#"UPDATE "LiteLLM_TagTable" SET "description"=?2,"models"=?3,"model_info"=?4,"budget_id"=?5,"updated_at"=?6 WHERE "tag_name"=?1"#)
            .bind(&t.tag_name)
            .bind(&t.description)
            .bind(models)
            .bind(info)
            .bind(&t.budget_id)
            .bind(updated)
    };
    let r = q.execute(conn).await.map_err(|e| conflict(t, e))?;
    Ok(r.rows_affected())
}

async fn write_tag_pg(conn: &mut PgConnection, t: &TagRow, insert: bool) -> StoreResult<u64> {
    let info = t.model_info.as_ref().map(Value::to_string);
    let q = if insert {
        sqlx::query(r#"INSERT INTO "LiteLLM_TagTable" ("tag_name","description","models","model_info","spend","budget_id","created_at","created_by","updated_at") VALUES ($1,$2,$3,$4::jsonb,$5,$6,COALESCE($7,CURRENT_TIMESTAMP),$8,COALESCE($9,CURRENT_TIMESTAMP))"#)
            .bind(&t.tag_name)
            .bind(&t.description)
            .bind(&t.models)
            .bind(info)
            .bind(t.spend)
            .bind(&t.budget_id)
            .bind(t.created_at)
            .bind(&t.created_by)
            .bind(t.updated_at)
    } else {
        sqlx::query(r#"UPDATE "LiteLLM_TagTable" SET "description"=$2,"models"=$3,"model_info"=$4::jsonb,"budget_id"=$5,"updated_at"=COALESCE($6,CURRENT_TIMESTAMP) WHERE "tag_name"=$1"#)
            .bind(&t.tag_name)
            .bind(&t.description)
            .bind(&t.models)
            .bind(info)
            .bind(&t.budget_id)
            .bind(t.updated_at)
    };
    let r = q.execute(conn).await.map_err(|e| conflict(t, e))?;
    Ok(r.rows_affected())
}

/// Runs `sql` (a statement on the tag table taking one text parameter and returning the
/// `tag_name`s it touched) inside a PostgreSQL transaction, behind a savepoint: where the table
/// does not exist (an older LiteLLM's schema) nothing happens and the transaction goes on.
pub(super) async fn pg_tag_side_statement(
    conn: &mut PgConnection,
    sql: &str,
    arg: &str,
) -> StoreResult<Vec<String>> {
    sqlx::query("SAVEPOINT tag_table")
        .execute(&mut *conn)
        .await?;
    match sqlx::query_scalar::<_, String>(sql)
        .bind(arg)
        .fetch_all(&mut *conn)
        .await
    {
        Ok(names) => {
            sqlx::query("RELEASE SAVEPOINT tag_table")
                .execute(&mut *conn)
                .await?;
            Ok(names)
        }
        Err(e) if is_undefined_table(&e) => {
            sqlx::query("ROLLBACK TO SAVEPOINT tag_table")
                .execute(&mut *conn)
                .await?;
            Ok(Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// The tags among `names` that exist, with their budget rows, by name.
    pub async fn get_tags(&self, names: &[String]) -> StoreResult<Vec<TagRow>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match self {
            Self::Sqlite(p) => {
                let mut qb = QueryBuilder::<sqlx::Sqlite>::new(sqlite_select());
                qb.push(r#" WHERE t."tag_name" IN ("#);
                let mut sep = qb.separated(", ");
                for n in names {
                    sep.push_bind(n);
                }
                qb.push(r#") ORDER BY t."tag_name""#);
                qb.build()
                    .fetch_all(p)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(tag_from_sqlite)
                    .collect()
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"{} WHERE t."tag_name" = ANY($1) ORDER BY t."tag_name""#,
                    pg_select()
                );
                sqlx::query(&q)
                    .bind(names)
                    .fetch_all(p)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(tag_from_pg)
                    .collect()
            }
        })
    }

    /// Every tag (or, with `only`, those among `only`) with its budget row, oldest first.
    pub async fn list_tags(&self, only: Option<&[String]>) -> StoreResult<Vec<TagRow>> {
        if only.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        Ok(match self {
            Self::Sqlite(p) => {
                let mut qb = QueryBuilder::<sqlx::Sqlite>::new(sqlite_select());
                if let Some(names) = only {
                    qb.push(r#" WHERE t."tag_name" IN ("#);
                    let mut sep = qb.separated(", ");
                    for n in names {
                        sep.push_bind(n);
                    }
                    qb.push(")");
                }
                qb.push(r#" ORDER BY t."created_at", t."tag_name""#);
                qb.build()
                    .fetch_all(p)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(tag_from_sqlite)
                    .collect()
            }
            Self::Postgres(p) => {
                let filter = if only.is_some() {
                    r#" WHERE t."tag_name" = ANY($1)"#
                } else {
                    ""
                };
                let q = format!(
                    r#"{}{filter} ORDER BY t."created_at", t."tag_name""#,
                    pg_select()
                );
                let mut query = sqlx::query(&q);
                if let Some(names) = only {
                    query = query.bind(names);
                }
                query
                    .fetch_all(p)
                    .await
                    .map_err(db_err)?
                    .iter()
                    .map(tag_from_pg)
                    .collect()
            }
        })
    }

    /// The names of at most `limit` tags (the registry LLM calls consult before looking a tag
    /// up).
    pub async fn tag_names(&self, limit: i64) -> StoreResult<Vec<String>> {
        const SQL: &str = r#"SELECT "tag_name" FROM "LiteLLM_TagTable" ORDER BY "tag_name" LIMIT "#;
        Ok(match self {
            Self::Sqlite(p) => {
                sqlx::query_scalar(&format!("{SQL}?1"))
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
            Self::Postgres(p) => {
                sqlx::query_scalar(&format!("{SQL}$1"))
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
        })
    }

    /// Inserts a tag, with a new budget row first when one is given, in one transaction. A
    /// duplicate name is a [`StoreError::Conflict`].
    pub async fn insert_tag(&self, t: &TagRow, budget: Option<&BudgetRow>) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                if let Some(b) = budget {
                    write_budget_sqlite(&mut tx, b, true).await?;
                }
                write_tag_sqlite(&mut tx, t, true).await?;
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                if let Some(b) = budget {
                    write_budget_pg(&mut tx, b, true).await?;
                }
                write_tag_pg(&mut tx, t, true).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Overwrites a tag's description, models, model info and budget link (not its spend,
    /// which the spend writer owns), writing its budget row in the same transaction. An
    /// unknown tag is a [`StoreError::NotFound`] and nothing changes.
    pub async fn update_tag(&self, t: &TagRow, budget: &BudgetWrite) -> StoreResult<()> {
        let n = match self {
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
                let n = write_tag_sqlite(&mut tx, t, false).await?;
                if n > 0 {
                    tx.commit().await?;
                }
                n
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
                let n = write_tag_pg(&mut tx, t, false).await?;
                if n > 0 {
                    tx.commit().await?;
                }
                n
            }
        };
        if n == 0 {
            return Err(not_found(&t.tag_name));
        }
        Ok(())
    }

    /// Deletes a tag (its budget row stays, as in LiteLLM); `false` when there was none.
    pub async fn delete_tag(&self, name: &str) -> StoreResult<bool> {
        let n = match self {
            Self::Sqlite(p) => {
                sqlx::query(r#"DELETE FROM "LiteLLM_TagTable" WHERE "tag_name" = ?1"#)
                    .bind(name)
                    .execute(p)
                    .await
                    .map_err(db_err)?
                    .rows_affected()
            }
            Self::Postgres(p) => {
                sqlx::query(r#"DELETE FROM "LiteLLM_TagTable" WHERE "tag_name" = $1"#)
                    .bind(name)
                    .execute(p)
                    .await
                    .map_err(db_err)?
                    .rows_affected()
            }
        };
        Ok(n > 0)
    }

    /// The tags of the daily tag roll-ups (LiteLLM's "dynamic" tags: sent with calls, stored
    /// or not), each with its earliest `created_at` and latest `updated_at`; only rows of
    /// `keys` when given, and only days from `dates.0` to `dates.1` when given.
    pub async fn used_tags(
        &self,
        keys: Option<&[String]>,
        dates: Option<(&str, &str)>,
    ) -> StoreResult<Vec<UsedTag>> {
        if keys.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        Ok(match self {
            Self::Sqlite(p) => {
                let mut qb = QueryBuilder::<sqlx::Sqlite>::new(
                    r#"SELECT "tag", MIN("created_at") AS "first", MAX("updated_at") AS "last" FROM "LiteLLM_DailyTagSpend" WHERE "tag" IS NOT NULL"#,
                );
                if let Some(keys) = keys {
                    qb.push(r#" AND "api_key" IN ("#);
                    let mut sep = qb.separated(", ");
                    for k in keys {
                        sep.push_bind(k);
                    }
                    qb.push(")");
                }
                if let Some((from, to)) = dates {
                    qb.push(r#" AND "date" >= "#).push_bind(from);
                    qb.push(r#" AND "date" <= "#).push_bind(to);
                }
                qb.push(r#" GROUP BY "tag" ORDER BY "tag""#);
                qb.build()
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| UsedTag {
                        tag: r.try_get("tag").unwrap_or_default(),
                        first_created_at: parse_ts(r.try_get("first").ok().flatten()),
                        last_updated_at: parse_ts(r.try_get("last").ok().flatten()),
                    })
                    .collect()
            }
            Self::Postgres(p) => {
                let mut qb = QueryBuilder::<sqlx::Postgres>::new(
                    r#"SELECT "tag", to_char(MIN("created_at"), 'YYYY-MM-DD HH24:MI:SS.MS') AS "first", to_char(MAX("updated_at"), 'YYYY-MM-DD HH24:MI:SS.MS') AS "last" FROM "LiteLLM_DailyTagSpend" WHERE "tag" IS NOT NULL"#,
                );
                if let Some(keys) = keys {
                    qb.push(r#" AND "api_key" = ANY("#)
                        .push_bind(keys)
                        .push(")");
                }
                if let Some((from, to)) = dates {
                    qb.push(r#" AND "date" >= "#).push_bind(from);
                    qb.push(r#" AND "date" <= "#).push_bind(to);
                }
                qb.push(r#" GROUP BY "tag" ORDER BY "tag""#);
                qb.build()
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| UsedTag {
                        tag: r.try_get("tag").unwrap_or_default(),
                        first_created_at: parse_ts(r.try_get("first").ok().flatten()),
                        last_updated_at: parse_ts(r.try_get("last").ok().flatten()),
                    })
                    .collect()
            }
        })
    }

    /// `(model_id, model_name)` of the stored models among `ids`.
    pub async fn proxy_model_names(&self, ids: &[String]) -> StoreResult<Vec<(String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match self {
            Self::Sqlite(p) => {
                let mut qb = QueryBuilder::<sqlx::Sqlite>::new(
                    r#"SELECT "model_id", "model_name" FROM "LiteLLM_ProxyModelTable" WHERE "model_id" IN ("#,
                );
                let mut sep = qb.separated(", ");
                for id in ids {
                    sep.push_bind(id);
                }
                qb.push(r#") ORDER BY "model_id""#);
                qb.build_query_as().fetch_all(p).await?
            }
            Self::Postgres(p) => {
                sqlx::query_as(r#"SELECT "model_id", "model_name" FROM "LiteLLM_ProxyModelTable" WHERE "model_id" = ANY($1) ORDER BY "model_id""#)
                    .bind(ids)
                    .fetch_all(p)
                    .await?
            }
        })
    }
}
