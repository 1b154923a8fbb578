//! SQL for team memberships: `LiteLLM_TeamMembership` rows (a member's spend inside a team)
//! and the `LiteLLM_BudgetTable` rows they link to through `budget_id` (the member's
//! `max_budget_in_team`, `rpm_limit`, `tpm_limit`, `budget_duration`, `allowed_models`).
//!
//! A roster change (`/team/member_add`, `/team/member_delete`) and a member update
//! (`/team/member_update`) are each written in one transaction: the team's
//! `members_with_roles`, the users' `teams`, the membership rows, the budget rows and, when a
//! member leaves, that member's keys of the team. Budget edits follow LiteLLM's merge-patch: a
//! sent field sets a column, an explicit null clears it, and a budget left with no limit at all
//! is unlinked from the membership. Only this module touches `LiteLLM_BudgetTable` for members;
//! the `/budget/*` routes are not here.

use super::rows::{self, BudgetRow, MembershipRow, UserRow};
use super::users::{write_user_pg, write_user_sqlite};
use super::{fmt_ts, json_text, Store, StoreResult};
use chrono::NaiveDateTime;
use serde_json::Value;

const SQLITE_MEMBERSHIP_SELECT: &str = r#"SELECT m."user_id", m."team_id", m."spend",
    m."total_spend", m."budget_id", b."budget_id" AS "b_budget_id",
    b."max_budget" AS "b_max_budget", b."soft_budget" AS "b_soft_budget",
    b."max_parallel_requests" AS "b_max_parallel_requests", b."tpm_limit" AS "b_tpm_limit",
    b."rpm_limit" AS "b_rpm_limit", b."tpd_limit" AS "b_tpd_limit",
    b."model_max_budget" AS "b_model_max_budget", b."budget_duration" AS "b_budget_duration",
    b."budget_reset_at" AS "b_budget_reset_at", b."allowed_models" AS "b_allowed_models",
    b."temp_budget_increase" AS "b_temp_budget_increase",
    b."temp_budget_expiry" AS "b_temp_budget_expiry", b."created_at" AS "b_created_at",
    b."created_by" AS "b_created_by", b."updated_at" AS "b_updated_at",
    b."updated_by" AS "b_updated_by"
    FROM "LiteLLM_TeamMembership" m
    LEFT JOIN "LiteLLM_BudgetTable" b ON b."budget_id" = m."budget_id""#;

const PG_MEMBERSHIP_SELECT: &str = r#"SELECT m."user_id", m."team_id", m."spend",
    m."total_spend", m."budget_id", b."budget_id" AS "b_budget_id",
    b."max_budget" AS "b_max_budget", b."soft_budget" AS "b_soft_budget",
    b."max_parallel_requests"::bigint AS "b_max_parallel_requests",
    b."tpm_limit" AS "b_tpm_limit", b."rpm_limit" AS "b_rpm_limit",
    b."tpd_limit" AS "b_tpd_limit", b."model_max_budget"::text AS "b_model_max_budget",
    b."budget_duration" AS "b_budget_duration",
    to_char(b."budget_reset_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "b_budget_reset_at",
    COALESCE(array_to_json(b."allowed_models")::text, '[]') AS "b_allowed_models",
    b."temp_budget_increase" AS "b_temp_budget_increase",
    to_char(b."temp_budget_expiry", 'YYYY-MM-DD HH24:MI:SS.MS') AS "b_temp_budget_expiry",
    to_char(b."created_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "b_created_at",
    b."created_by" AS "b_created_by",
    to_char(b."updated_at", 'YYYY-MM-DD HH24:MI:SS.MS') AS "b_updated_at",
    b."updated_by" AS "b_updated_by"
    FROM "LiteLLM_TeamMembership" m
    LEFT JOIN "LiteLLM_BudgetTable" b ON b."budget_id" = m."budget_id""#;

/// One roster change of a team, written in one transaction by [`Store::commit_roster`].
#[derive(Debug, Default, Clone)]
pub struct RosterChange {
    pub team_id: String,
    /// The team's new `members_with_roles`.
    pub members_with_roles: Value,
    pub updated_at: Option<NaiveDateTime>,
    /// Users created by this change (their `teams` already lists the team).
    pub new_users: Vec<UserRow>,
    /// Existing users who join: the team is added to their `teams`.
    pub joining: Vec<String>,
    /// Membership rows to create when missing, each with the budget row to create and link.
    pub memberships: Vec<(String, Option<BudgetRow>)>,
    /// Members who leave: the team leaves their `teams`, their membership rows and their keys
    /// of this team are deleted.
    pub leaving: Vec<String>,
}

/// The per-member budget fields a `/team/member_update` sent: `Some(None)` clears a column,
/// `None` leaves it alone.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BudgetPatch {
    pub max_budget: Option<Option<f64>>,
    pub tpm_limit: Option<Option<i64>>,
    pub rpm_limit: Option<Option<i64>>,
    /// The duration and the `budget_reset_at` it implies.
    pub budget_duration: Option<(Option<String>, Option<NaiveDateTime>)>,
    pub allowed_models: Option<Vec<String>>,
}

impl BudgetPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn apply(&self, b: &mut BudgetRow) {
        if let Some(v) = self.max_budget {
            b.max_budget = v;
        }
        if let Some(v) = self.tpm_limit {
            b.tpm_limit = v;
        }
        if let Some(v) = self.rpm_limit {
            b.rpm_limit = v;
        }
        if let Some((d, reset)) = &self.budget_duration {
            b.budget_duration = d.clone();
            b.budget_reset_at = *reset;
        }
        if let Some(v) = &self.allowed_models {
            b.allowed_models = v.clone();
        }
    }
}

/// Whether a budget still limits anything (LiteLLM unlinks budgets that do not).
pub fn budget_limits_anything(b: &BudgetRow) -> bool {
    b.max_budget.is_some()
        || b.soft_budget.is_some()
        || b.max_parallel_requests.is_some()
        || b.tpm_limit.is_some()
        || b.rpm_limit.is_some()
        || b.model_max_budget.as_ref().is_some_and(|v| !v.is_null())
        || b.budget_duration.is_some()
        || !b.allowed_models.is_empty()
        || b.temp_budget_increase.is_some()
        || b.temp_budget_expiry.is_some()
}

fn list_text(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

async fn write_budget_sqlite(
    c: &mut sqlx::SqliteConnection,
    b: &BudgetRow,
    insert: bool,
) -> StoreResult<()> {
    let sql = if insert {
        r#"INSERT INTO "LiteLLM_BudgetTable" ("budget_id","max_budget","soft_budget","max_parallel_requests","tpm_limit","rpm_limit","tpd_limit","model_max_budget","budget_duration","budget_reset_at","allowed_models","temp_budget_increase","temp_budget_expiry","created_at","created_by","updated_at","updated_by") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"#
    } else {
        r#"UPDATE "LiteLLM_BudgetTable" SET "max_budget"=?2,"soft_budget"=?3,"max_parallel_requests"=?4,"tpm_limit"=?5,"rpm_limit"=?6,"tpd_limit"=?7,"model_max_budget"=?8,"budget_duration"=?9,"budget_reset_at"=?10,"allowed_models"=?11,"temp_budget_increase"=?12,"temp_budget_expiry"=?13,"created_at"=COALESCE(?14,"created_at"),"created_by"=?15,"updated_at"=?16,"updated_by"=?17 WHERE "budget_id"=?1"#
    };
    sqlx::query(sql)
        .bind(&b.budget_id)
        .bind(b.max_budget)
        .bind(b.soft_budget)
        .bind(b.max_parallel_requests)
        .bind(b.tpm_limit)
        .bind(b.rpm_limit)
        .bind(b.tpd_limit)
        .bind(b.model_max_budget.as_ref().map(json_text))
        .bind(&b.budget_duration)
        .bind(b.budget_reset_at.map(fmt_ts))
        .bind(list_text(&b.allowed_models))
        .bind(b.temp_budget_increase)
        .bind(b.temp_budget_expiry.map(fmt_ts))
        .bind(b.created_at.map(fmt_ts))
        .bind(&b.created_by)
        .bind(b.updated_at.map(fmt_ts))
        .bind(&b.updated_by)
        .execute(&mut *c)
        .await?;
    Ok(())
}

async fn write_budget_pg(
    c: &mut sqlx::PgConnection,
    b: &BudgetRow,
    insert: bool,
) -> StoreResult<()> {
    let sql = if insert {
        r#"INSERT INTO "LiteLLM_BudgetTable" ("budget_id","max_budget","soft_budget","max_parallel_requests","tpm_limit","rpm_limit","tpd_limit","model_max_budget","budget_duration","budget_reset_at","allowed_models","temp_budget_increase","temp_budget_expiry","created_at","created_by","updated_at","updated_by") VALUES ($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9,$10,$11,$12,$13,COALESCE($14,CURRENT_TIMESTAMP),$15,COALESCE($16,CURRENT_TIMESTAMP),$17)"#
    } else {
        r#"UPDATE "LiteLLM_BudgetTable" SET "max_budget"=$2,"soft_budget"=$3,"max_parallel_requests"=$4,"tpm_limit"=$5,"rpm_limit"=$6,"tpd_limit"=$7,"model_max_budget"=$8::jsonb,"budget_duration"=$9,"budget_reset_at"=$10,"allowed_models"=$11,"temp_budget_increase"=$12,"temp_budget_expiry"=$13,"created_at"=COALESCE($14,"created_at"),"created_by"=$15,"updated_at"=COALESCE($16,CURRENT_TIMESTAMP),"updated_by"=$17 WHERE "budget_id"=$1"#
    };
    sqlx::query(sql)
        .bind(&b.budget_id)
        .bind(b.max_budget)
        .bind(b.soft_budget)
        .bind(b.max_parallel_requests.map(|v| v as i32))
        .bind(b.tpm_limit)
        .bind(b.rpm_limit)
        .bind(b.tpd_limit)
        .bind(b.model_max_budget.as_ref().map(json_text))
        .bind(&b.budget_duration)
        .bind(b.budget_reset_at)
        .bind(&b.allowed_models)
        .bind(b.temp_budget_increase)
        .bind(b.temp_budget_expiry)
        .bind(b.created_at)
        .bind(&b.created_by)
        .bind(b.updated_at)
        .bind(&b.updated_by)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Membership upsert: a missing row is created linked to `budget_id`; an existing row gets the
/// new link only when `relink` (member_add keeps an existing member's budget).
const SQLITE_UPSERT_MEMBERSHIP: &str = r#"INSERT INTO "LiteLLM_TeamMembership" ("user_id","team_id","spend","total_spend","budget_id") VALUES (?1,?2,0.0,0.0,?3) ON CONFLICT("user_id","team_id") DO UPDATE SET "budget_id" = CASE WHEN ?4 THEN excluded."budget_id" ELSE "LiteLLM_TeamMembership"."budget_id" END"#;
const PG_UPSERT_MEMBERSHIP: &str = r#"INSERT INTO "LiteLLM_TeamMembership" ("user_id","team_id","spend","total_spend","budget_id") VALUES ($1,$2,0.0,0.0,$3) ON CONFLICT ("user_id","team_id") DO UPDATE SET "budget_id" = CASE WHEN $4 THEN EXCLUDED."budget_id" ELSE "LiteLLM_TeamMembership"."budget_id" END"#;

impl Store {
    /// One member's membership row and budget, if the row exists.
    pub async fn get_membership(
        &self,
        team_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<MembershipRow>> {
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"{SQLITE_MEMBERSHIP_SELECT} WHERE m."team_id" = ?1 AND m."user_id" = ?2"#
                );
                sqlx::query(&q)
                    .bind(team_id)
                    .bind(user_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::membership_from_sqlite(&r))
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"{PG_MEMBERSHIP_SELECT} WHERE m."team_id" = $1 AND m."user_id" = $2"#
                );
                sqlx::query(&q)
                    .bind(team_id)
                    .bind(user_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| rows::membership_from_pg(&r))
            }
        })
    }

    /// The membership rows of some teams (optionally of one user), by team then user.
    pub async fn list_memberships(
        &self,
        team_ids: &[String],
        user_id: Option<&str>,
    ) -> StoreResult<Vec<MembershipRow>> {
        if team_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match self {
            Self::Sqlite(p) => {
                let q = format!(
                    r#"{SQLITE_MEMBERSHIP_SELECT} WHERE m."team_id" IN (SELECT value FROM json_each(?1)) AND (?2 IS NULL OR m."user_id" = ?2) ORDER BY m."team_id", m."user_id""#
                );
                sqlx::query(&q)
                    .bind(list_text(team_ids))
                    .bind(user_id)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(rows::membership_from_sqlite)
                    .collect()
            }
            Self::Postgres(p) => {
                let q = format!(
                    r#"{PG_MEMBERSHIP_SELECT} WHERE m."team_id" = ANY($1) AND ($2::text IS NULL OR m."user_id" = $2) ORDER BY m."team_id", m."user_id""#
                );
                sqlx::query(&q)
                    .bind(team_ids)
                    .bind(user_id)
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(rows::membership_from_pg)
                    .collect()
            }
        })
    }

    /// Writes a roster change in one transaction; returns the hashes of the keys deleted with
    /// the members who left.
    pub async fn commit_roster(&self, ch: &RosterChange) -> StoreResult<Vec<String>> {
        let mut gone_keys = Vec::new();
        let now = ch.updated_at.map(fmt_ts);
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(r#"UPDATE "LiteLLM_TeamTable" SET "members_with_roles" = ?1, "updated_at" = COALESCE(?2, "updated_at") WHERE "team_id" = ?3"#)
                    .bind(json_text(&ch.members_with_roles))
                    .bind(&now)
                    .bind(&ch.team_id)
                    .execute(&mut *tx)
                    .await?;
                for u in &ch.new_users {
                    write_user_sqlite(&mut tx, u, true).await?;
                }
                for u in &ch.joining {
                    sqlx::query(r#"UPDATE "LiteLLM_UserTable" SET "teams" = json_insert(COALESCE("teams", '[]'), '$[#]', ?1), "updated_at" = COALESCE(?3, "updated_at") WHERE "user_id" = ?2 AND NOT EXISTS (SELECT 1 FROM json_each(COALESCE("teams", '[]')) WHERE value = ?1)"#)
                        .bind(&ch.team_id)
                        .bind(u)
                        .bind(&now)
                        .execute(&mut *tx)
                        .await?;
                }
                for (user, budget) in &ch.memberships {
                    if let Some(b) = budget {
                        write_budget_sqlite(&mut tx, b, true).await?;
                    }
                    sqlx::query(SQLITE_UPSERT_MEMBERSHIP)
                        .bind(user)
                        .bind(&ch.team_id)
                        .bind(budget.as_ref().map(|b| &b.budget_id))
                        .bind(false)
                        .execute(&mut *tx)
                        .await?;
                }
                for u in &ch.leaving {
                    sqlx::query(r#"UPDATE "LiteLLM_UserTable" SET "teams" = (SELECT json_group_array(value) FROM json_each(COALESCE("teams", '[]')) WHERE value <> ?1), "updated_at" = COALESCE(?3, "updated_at") WHERE "user_id" = ?2"#)
                        .bind(&ch.team_id)
                        .bind(u)
                        .bind(&now)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(r#"DELETE FROM "LiteLLM_TeamMembership" WHERE "team_id" = ?1 AND "user_id" = ?2"#)
                        .bind(&ch.team_id)
                        .bind(u)
                        .execute(&mut *tx)
                        .await?;
                    let keys: Vec<(String,)> = sqlx::query_as(r#"DELETE FROM "LiteLLM_VerificationToken" WHERE "team_id" = ?1 AND "user_id" = ?2 RETURNING "token""#)
                        .bind(&ch.team_id)
                        .bind(u)
                        .fetch_all(&mut *tx)
                        .await?;
                    gone_keys.extend(keys.into_iter().map(|(t,)| t));
                }
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(r#"UPDATE "LiteLLM_TeamTable" SET "members_with_roles" = $1::jsonb, "updated_at" = COALESCE($2, "updated_at") WHERE "team_id" = $3"#)
                    .bind(json_text(&ch.members_with_roles))
                    .bind(ch.updated_at)
                    .bind(&ch.team_id)
                    .execute(&mut *tx)
                    .await?;
                for u in &ch.new_users {
                    write_user_pg(&mut tx, u, true).await?;
                }
                for u in &ch.joining {
                    sqlx::query(r#"UPDATE "LiteLLM_UserTable" SET "teams" = array_append(COALESCE("teams", ARRAY[]::text[]), $1), "updated_at" = COALESCE($3, "updated_at") WHERE "user_id" = $2 AND NOT ($1 = ANY(COALESCE("teams", ARRAY[]::text[])))"#)
                        .bind(&ch.team_id)
                        .bind(u)
                        .bind(ch.updated_at)
                        .execute(&mut *tx)
                        .await?;
                }
                for (user, budget) in &ch.memberships {
                    if let Some(b) = budget {
                        write_budget_pg(&mut tx, b, true).await?;
                    }
                    sqlx::query(PG_UPSERT_MEMBERSHIP)
                        .bind(user)
                        .bind(&ch.team_id)
                        .bind(budget.as_ref().map(|b| &b.budget_id))
                        .bind(false)
                        .execute(&mut *tx)
                        .await?;
                }
                for u in &ch.leaving {
                    sqlx::query(r#"UPDATE "LiteLLM_UserTable" SET "teams" = array_remove("teams", $1), "updated_at" = COALESCE($3, "updated_at") WHERE "user_id" = $2"#)
                        .bind(&ch.team_id)
                        .bind(u)
                        .bind(ch.updated_at)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(r#"DELETE FROM "LiteLLM_TeamMembership" WHERE "team_id" = $1 AND "user_id" = $2"#)
                        .bind(&ch.team_id)
                        .bind(u)
                        .execute(&mut *tx)
                        .await?;
                    let keys: Vec<(String,)> = sqlx::query_as(r#"DELETE FROM "LiteLLM_VerificationToken" WHERE "team_id" = $1 AND "user_id" = $2 RETURNING "token""#)
                        .bind(&ch.team_id)
                        .bind(u)
                        .fetch_all(&mut *tx)
                        .await?;
                    gone_keys.extend(keys.into_iter().map(|(t,)| t));
                }
                tx.commit().await?;
            }
        }
        Ok(gone_keys)
    }

    /// `/team/member_update` in one transaction: the new roster (when the role changed) and the
    /// member's budget, patched as LiteLLM does — the member's own budget row is edited in
    /// place; a member without one gets a new row (when the patch limits anything); a budget
    /// the patch leaves without any limit is unlinked.
    pub async fn update_member(
        &self,
        team_id: &str,
        user_id: &str,
        roster: Option<&Value>,
        patch: &BudgetPatch,
        actor: &str,
        now: NaiveDateTime,
    ) -> StoreResult<()> {
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                if let Some(r) = roster {
                    sqlx::query(r#"UPDATE "LiteLLM_TeamTable" SET "members_with_roles" = ?1, "updated_at" = ?2 WHERE "team_id" = ?3"#)
                        .bind(json_text(r))
                        .bind(fmt_ts(now))
                        .bind(team_id)
                        .execute(&mut *tx)
                        .await?;
                }
                if !patch.is_empty() {
                    let q = format!(
                        r#"{SQLITE_MEMBERSHIP_SELECT} WHERE m."team_id" = ?1 AND m."user_id" = ?2"#
                    );
                    let current = sqlx::query(&q)
                        .bind(team_id)
                        .bind(user_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| rows::membership_from_sqlite(&r));
                    match plan_budget(current, patch, actor, now) {
                        BudgetPlan::Unlink => {
                            sqlx::query(r#"UPDATE "LiteLLM_TeamMembership" SET "budget_id" = NULL WHERE "team_id" = ?1 AND "user_id" = ?2"#)
                                .bind(team_id)
                                .bind(user_id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        BudgetPlan::Nothing => {}
                        BudgetPlan::Write(b, insert) => {
                            write_budget_sqlite(&mut tx, &b, insert).await?;
                            sqlx::query(SQLITE_UPSERT_MEMBERSHIP)
                                .bind(user_id)
                                .bind(team_id)
                                .bind(&b.budget_id)
                                .bind(true)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                if let Some(r) = roster {
                    sqlx::query(r#"UPDATE "LiteLLM_TeamTable" SET "members_with_roles" = $1::jsonb, "updated_at" = $2 WHERE "team_id" = $3"#)
                        .bind(json_text(r))
                        .bind(now)
                        .bind(team_id)
                        .execute(&mut *tx)
                        .await?;
                }
                if !patch.is_empty() {
                    let q = format!(
                        r#"{PG_MEMBERSHIP_SELECT} WHERE m."team_id" = $1 AND m."user_id" = $2 FOR UPDATE OF m"#
                    );
                    let current = sqlx::query(&q)
                        .bind(team_id)
                        .bind(user_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| rows::membership_from_pg(&r));
                    match plan_budget(current, patch, actor, now) {
                        BudgetPlan::Unlink => {
                            sqlx::query(r#"UPDATE "LiteLLM_TeamMembership" SET "budget_id" = NULL WHERE "team_id" = $1 AND "user_id" = $2"#)
                                .bind(team_id)
                                .bind(user_id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        BudgetPlan::Nothing => {}
                        BudgetPlan::Write(b, insert) => {
                            write_budget_pg(&mut tx, &b, insert).await?;
                            sqlx::query(PG_UPSERT_MEMBERSHIP)
                                .bind(user_id)
                                .bind(team_id)
                                .bind(&b.budget_id)
                                .bind(true)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

/// What a budget patch does to a membership.
enum BudgetPlan {
    Nothing,
    Unlink,
    /// Write this budget row (insert when new) and link it.
    Write(Box<BudgetRow>, bool),
}

fn plan_budget(
    current: Option<MembershipRow>,
    patch: &BudgetPatch,
    actor: &str,
    now: NaiveDateTime,
) -> BudgetPlan {
    let linked = current.as_ref().and_then(|m| m.budget_id.clone());
    match current.and_then(|m| m.budget) {
        Some(mut b) => {
            patch.apply(&mut b);
            if !budget_limits_anything(&b) {
                return BudgetPlan::Unlink;
            }
            b.updated_by = actor.to_string();
            b.updated_at = Some(now);
            BudgetPlan::Write(Box::new(b), false)
        }
        None => {
            let mut b = new_budget(actor, now);
            patch.apply(&mut b);
            if budget_limits_anything(&b) {
                BudgetPlan::Write(Box::new(b), true)
            } else if linked.is_some() {
                // The link points at a budget row that no longer exists.
                BudgetPlan::Unlink
            } else {
                BudgetPlan::Nothing
            }
        }
    }
}

/// An empty budget row with a fresh id, as created by `actor`.
pub fn new_budget(actor: &str, now: NaiveDateTime) -> BudgetRow {
    BudgetRow {
        budget_id: uuid::Uuid::new_v4().to_string(),
        created_at: Some(now),
        created_by: actor.to_string(),
        updated_at: Some(now),
        updated_by: actor.to_string(),
        ..BudgetRow::default()
    }
}
