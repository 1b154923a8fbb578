//! Postgres start-up: connection options and migrations, including adopting a database that
//! LiteLLM already migrated.
//!
//! LiteLLM builds its schema with Prisma migrations, recorded in `_prisma_migrations` (or with
//! `prisma db push`, which records nothing). Such a database already has every LiteLLM table
//! this gateway uses, and LiteLLM's migrations and its index job own their shape. On it the
//! migrations listed in [`LITELLM_SCHEMA_MIGRATIONS`] are recorded in `_sqlx_migrations` without
//! being run, so start-up issues no DDL at all on LiteLLM's tables: nothing is re-created,
//! altered or dropped, and no lock is taken on a large `LiteLLM_SpendLogs`. First, every column
//! those migrations declare is looked up, so a schema from an older LiteLLM stops start-up with
//! the list of what is missing rather than failing requests later.
//!
//! A database this gateway created itself runs every migration as usual. Migrations that are
//! not listed run on both kinds of database and must not touch LiteLLM's tables (checked by the
//! tests below).

use super::{StoreError, StoreResult};
use sqlx::migrate::{Migration, MigrationSource, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;

/// Our migrations that only create what LiteLLM's own schema already has (its tables, columns
/// and indexes): recorded, not run, on a database LiteLLM migrated.
pub const LITELLM_SCHEMA_MIGRATIONS: [i64; 7] = [
    20261124000001,
    20261129000001,
    20261129000002,
    20261130120000,
    20261203000001,
    20261205000001,
    20261207000001,
];

/// LiteLLM tables whose features can be off: a database from an older LiteLLM that lacks them
/// (or some of their columns) is still adopted, with a warning. Their writes are skipped there
/// (daily roll-ups and tag spend, see `spend_write`; tag resets, see `budgets`), their reads
/// find nothing (the tags of LLM calls, see `middleware::tags`) or they fail alone (stored
/// health checks, the `/tag/*` routes).
const OPTIONAL_TABLES: [&str; 7] = [
    "LiteLLM_HealthCheckTable",
    "LiteLLM_DailyUserSpend",
    "LiteLLM_DailyTeamSpend",
    "LiteLLM_DailyOrganizationSpend",
    "LiteLLM_DailyEndUserSpend",
    "LiteLLM_DailyTagSpend",
    "LiteLLM_TagTable",
];

/// The SQL recorded in place of a LiteLLM-schema migration on an adopted database.
const RECORDED_ONLY: &str = "SELECT 1";
/// Appended to the description of a migration recorded that way: later start-ups know the
/// database is LiteLLM's even without Prisma's table.
const ADOPTED: &str = " (recorded: the schema is LiteLLM's)";

/// Connection options for a Postgres URL. Prisma's `schema` parameter (how LiteLLM points at a
/// schema other than `public`) becomes the connection's `search_path`, so the tables are found
/// where LiteLLM put them.
pub fn pg_options(url: &str) -> StoreResult<PgConnectOptions> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| StoreError::Config(format!("invalid database_url parameters: {e}")))?;
    let schema = params
        .iter()
        .position(|(k, _)| k == "schema")
        .map(|i| params.remove(i).1);
    let rest = serde_urlencoded::to_string(&params)
        .map_err(|e| StoreError::Config(format!("invalid database_url parameters: {e}")))?;
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{rest}")
    };
    let opts = PgConnectOptions::from_str(&url)?;
    Ok(match schema.filter(|s| !s.is_empty()) {
        Some(s) => opts.options([("search_path", quote_ident(&s))]),
        None => opts,
    })
}

/// `name` as a quoted identifier, escaped for the startup `options` string (where a space
/// separates arguments unless a backslash precedes it).
fn quote_ident(name: &str) -> String {
    let ident = format!("\"{}\"", name.replace('"', "\"\""));
    ident.replace('\\', r"\\").replace(' ', r"\ ")
}

/// Applies the migrations, adopting a database LiteLLM migrated (see the module docs).
pub async fn migrate(pool: &PgPool) -> StoreResult<()> {
    let migrator = sqlx::migrate!("./migrations/postgres");
    if !is_litellm_database(pool).await? {
        migrator.run(pool).await?;
        return Ok(());
    }
    check_litellm_schema(pool, &migrator).await?;
    tracing::info!("the database was migrated by LiteLLM: using its tables as they are");
    Migrator::new(Recorded(recorded_only(&migrator)))
        .await?
        .run(pool)
        .await?;
    Ok(())
}

/// LiteLLM migrated this database: its key table is there, and Prisma's bookkeeping table is
/// too, or we have no record of creating the table ourselves (`prisma db push`), or our record
/// says we adopted it.
async fn is_litellm_database(pool: &PgPool) -> StoreResult<bool> {
    let (prisma, keys, ours): (bool, bool, bool) = sqlx::query_as(
        r#"SELECT to_regclass('"_prisma_migrations"') IS NOT NULL,
                  to_regclass('"LiteLLM_VerificationToken"') IS NOT NULL,
                  to_regclass('"_sqlx_migrations"') IS NOT NULL"#,
    )
    .fetch_one(pool)
    .await?;
    if !keys || prisma || !ours {
        return Ok(keys);
    }
    let recorded: Option<(String,)> =
        sqlx::query_as(r#"SELECT "description" FROM "_sqlx_migrations" WHERE "version" = $1"#)
            .bind(LITELLM_SCHEMA_MIGRATIONS[0])
            .fetch_optional(pool)
            .await?;
    Ok(recorded.is_none_or(|(d,)| d.ends_with(ADOPTED)))
}

/// Fails when the schema lacks a table or column that our LiteLLM-schema migrations declare.
async fn check_litellm_schema(pool: &PgPool, migrator: &Migrator) -> StoreResult<()> {
    let wanted = declared_columns(migrator.iter().filter(|m| is_litellm_schema(m)));
    let present: Vec<(String, String)> = sqlx::query_as(
        r#"SELECT "table_name"::text, "column_name"::text FROM information_schema.columns
           WHERE "table_schema" = current_schema()"#,
    )
    .fetch_all(pool)
    .await?;
    let present: HashSet<(String, String)> = present.into_iter().collect();
    let (optional, missing): (Vec<String>, Vec<String>) = wanted
        .iter()
        .flat_map(|(t, cols)| cols.iter().map(move |c| (t, c)))
        .filter(|(t, c)| !present.contains(&((*t).clone(), (*c).clone())))
        .map(|(t, c)| format!("\"{t}\".\"{c}\""))
        .partition(|name| {
            OPTIONAL_TABLES
                .iter()
                .any(|t| name.starts_with(&format!("\"{t}\"")))
        });
    if !optional.is_empty() {
        tracing::warn!(
            "the database was migrated by an older LiteLLM (missing: {}); daily activity, \
             stored health checks and tag management stay off until LiteLLM's own migrations \
             add them",
            optional.join(", ")
        );
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(StoreError::Config(format!(
        "the database was migrated by LiteLLM, but its schema predates what this gateway reads \
         and writes (missing: {}); apply the migrations of LiteLLM 1.106.2 or later to it first",
        missing.join(", ")
    )))
}

fn is_litellm_schema(m: &Migration) -> bool {
    LITELLM_SCHEMA_MIGRATIONS.contains(&m.version)
}

/// The migrations with the LiteLLM-schema ones reduced to a no-op that keeps their version and
/// checksum (sqlx records them as applied and later start-ups accept them), marked as adopted.
fn recorded_only(migrator: &Migrator) -> Vec<Migration> {
    migrator
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if is_litellm_schema(&m) {
                m.sql = Cow::Borrowed(RECORDED_ONLY);
                m.description = Cow::Owned(format!("{}{ADOPTED}", m.description));
            }
            m
        })
        .collect()
}

/// A fixed list of migrations as a sqlx migration source.
#[derive(Debug)]
struct Recorded(Vec<Migration>);

impl<'s> MigrationSource<'s> for Recorded {
    fn resolve(
        self,
    ) -> futures::future::BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move { Ok(self.0) })
    }
}

/// The columns, per table, that `CREATE TABLE` and `ADD COLUMN` statements in these migrations
/// declare. Our migrations write one column per line, its quoted name first.
fn declared_columns<'a>(
    migrations: impl Iterator<Item = &'a Migration>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in migrations {
        for stmt in statements(&m.sql) {
            let words: Vec<&str> = stmt.split_whitespace().collect();
            let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
            let starts =
                |p: &[&str]| upper.len() >= p.len() && upper.iter().zip(p).all(|(a, b)| a == b);
            if starts(&["CREATE", "TABLE"]) {
                let Some(table) = words.iter().find_map(|w| quoted(w)) else {
                    continue;
                };
                let Some((_, body)) = stmt.split_once('(') else {
                    continue;
                };
                let cols = out.entry(table).or_default();
                for line in body.lines() {
                    if let Some(c) = line
                        .trim()
                        .strip_prefix('"')
                        .and_then(|r| r.split_once('"'))
                    {
                        cols.insert(c.0.to_string());
                    }
                }
            } else if starts(&["ALTER", "TABLE"]) && upper.iter().any(|w| w == "ADD") {
                let mut names = words.iter().filter_map(|w| quoted(w));
                if let (Some(table), Some(col)) = (names.next(), names.next()) {
                    out.entry(table).or_default().insert(col);
                }
            }
        }
    }
    out
}

/// The SQL statements of a migration, without `--` comments.
fn statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `"name"` (possibly followed by `(` or `,`) as `name`.
fn quoted(word: &str) -> Option<String> {
    let rest = word.strip_prefix('"')?;
    rest.split_once('"').map(|(name, _)| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrator() -> Migrator {
        sqlx::migrate!("./migrations/postgres")
    }

    #[test]
    fn every_listed_migration_exists() {
        let m = migrator();
        for v in LITELLM_SCHEMA_MIGRATIONS {
            assert!(m.iter().any(|x| x.version == v), "no migration {v}");
        }
    }

    #[test]
    fn unlisted_migrations_leave_litellm_tables_alone() {
        for m in migrator().iter().filter(|m| !is_litellm_schema(m)) {
            assert!(
                !m.sql.contains("\"LiteLLM_"),
                "migration {} touches a LiteLLM table: list it in LITELLM_SCHEMA_MIGRATIONS",
                m.version
            );
        }
    }

    /// Migrations after the first run on databases whose spend log may be large: no ALTER of
    /// it and no index build that blocks its writes.
    #[test]
    fn later_migrations_never_lock_the_spend_log() {
        let m = migrator();
        let first = m.iter().map(|x| x.version).min().unwrap_or_default();
        for mig in m.iter().filter(|x| x.version != first) {
            for stmt in statements(&mig.sql) {
                if !stmt.contains("\"LiteLLM_SpendLogs\"") {
                    continue;
                }
                let upper = stmt.to_ascii_uppercase();
                assert!(
                    !upper.contains("ALTER TABLE"),
                    "migration {} alters the spend log: {stmt}",
                    mig.version
                );
                if upper.contains("CREATE INDEX") || upper.contains("CREATE UNIQUE INDEX") {
                    assert!(
                        upper.contains("CONCURRENTLY") && mig.no_tx,
                        "migration {} must build its spend-log index CONCURRENTLY, in a \
                         `-- no-transaction` migration: {stmt}",
                        mig.version
                    );
                }
            }
        }
    }

    #[test]
    fn declared_columns_cover_tables_and_added_columns() {
        let m = migrator();
        let cols = declared_columns(m.iter().filter(|x| is_litellm_schema(x)));
        let keys = &cols["LiteLLM_VerificationToken"];
        for c in [
            "token",
            "spend",
            "models",
            "metadata",
            "updated_by",
            "total_spend",
            "last_active",
        ] {
            assert!(keys.contains(c), "{c} missing from {keys:?}");
        }
        assert!(cols["LiteLLM_SpendLogs"].contains("startTime"));
        assert!(cols["LiteLLM_TeamMembership"].contains("total_spend"));
        assert!(!keys.contains("PRIMARY"));
        assert!(
            cols.keys().all(|t| t.starts_with("LiteLLM_")),
            "{:?}",
            cols.keys()
        );
    }

    #[test]
    fn recorded_only_keeps_checksums() {
        let m = migrator();
        for (a, b) in m.iter().zip(recorded_only(&m)) {
            assert_eq!(a.checksum, b.checksum);
            assert_eq!(a.version, b.version);
            assert_eq!(b.sql == RECORDED_ONLY, is_litellm_schema(a));
            assert_eq!(b.description.ends_with(ADOPTED), is_litellm_schema(a));
        }
    }

    #[test]
    fn prisma_schema_parameter_becomes_the_search_path() -> StoreResult<()> {
        let o = pg_options("postgres://u@h:5432/db?schema=lite%20llm&sslmode=disable")?;
        assert_eq!(o.get_options(), Some(r#"-c search_path="lite\ llm""#));
        assert_eq!(o.get_database(), Some("db"));
        let plain = pg_options("postgres://u@h/db")?;
        assert_eq!(plain.get_options(), None);
        Ok(())
    }
}
