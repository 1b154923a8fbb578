//! SQL for the spend reports (`/spend/*`, `/global/spend/*`, `/key|user|team/spend/report`) and
//! the manual spend resets. Every figure is aggregated by the database (`GROUP BY`): a report
//! never loads the spend-log rows it sums. Handlers nest the grouped rows into LiteLLM's shapes.
//!
//! Queries are assembled from fixed SQL fragments plus bound values ([`Sql`]); the few dialect
//! differences (day of a timestamp, JSON paths, request-tag expansion, list membership) live in
//! [`Sql`]'s helpers, so both backends run the same query text otherwise. Timestamps are bound as
//! `TIMESTAMP` on Postgres and as the stores' `YYYY-MM-DD HH:MM:SS.mmm` text on SQLite, whose
//! ordering is the timestamps' ordering.

use super::{fmt_ts, Store, StoreResult};
use chrono::NaiveDateTime;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::FromRow;

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Real(f64),
    Int(i64),
    Ts(NaiveDateTime),
    /// A list for a membership test (see [`Sql::in_list`]).
    Texts(Vec<String>),
}

/// A query under construction: text with numbered placeholders and the values they bind.
#[derive(Debug)]
struct Sql {
    pg: bool,
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn new(store: &Store) -> Self {
        Self {
            pg: matches!(store, Store::Postgres(_)),
            text: String::new(),
            args: Vec::new(),
        }
    }

    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Registers a value and returns its placeholder.
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        if self.pg {
            format!("${}", self.args.len())
        } else {
            format!("?{}", self.args.len())
        }
    }

    fn bind(&mut self, a: Arg) -> &mut Self {
        let p = self.arg(a);
        self.push(&p)
    }

    /// `col` is one of `values`.
    fn in_list(&mut self, col: &str, values: Vec<String>) -> &mut Self {
        let p = self.arg(Arg::Texts(values));
        let cond = if self.pg {
            format!("{col} = ANY({p})")
        } else {
            format!("{col} IN (SELECT value FROM json_each({p}))")
        };
        self.push(&cond)
    }

    /// The `YYYY-MM-DD` day of a timestamp column.
    fn day(&self, col: &str) -> String {
        if self.pg {
            format!("to_char({col}, 'YYYY-MM-DD')")
        } else {
            format!("substr({col}, 1, 10)")
        }
    }

    /// A float sum that is 0 over no rows and decodes as `f64` on both backends.
    fn sum_real(&self, e: &str) -> String {
        if self.pg {
            format!("COALESCE(SUM({e}), 0)::float8")
        } else {
            format!("TOTAL({e})")
        }
    }

    /// An integer sum that is 0 over no rows and decodes as `i64` on both backends.
    fn sum_int(&self, e: &str) -> String {
        if self.pg {
            format!("COALESCE(SUM({e}), 0)::bigint")
        } else {
            format!("COALESCE(SUM({e}), 0)")
        }
    }

    /// The text at a JSON path of a JSON column (`path` as keys), NULL when absent or invalid.
    fn json_text(&self, col: &str, path: &[&str]) -> String {
        if self.pg {
            let (last, init) = path.split_last().map_or(("", &[][..]), |(l, i)| (*l, i));
            let mut s = col.to_string();
            for k in init {
                s.push_str(&format!("->'{k}'"));
            }
            format!("({s}->>'{last}')")
        } else {
            format!(
                "json_extract(CASE WHEN json_valid({col}) THEN {col} END, '$.{}')",
                path.join(".")
            )
        }
    }

    /// A `FROM` item that yields one row per request tag of `s` (the spend-log alias), as `tag`.
    /// Rows whose `request_tags` is not a JSON list contribute nothing.
    fn tags_join(&self) -> &'static str {
        if self.pg {
            r#" CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(s."request_tags") = 'array' THEN s."request_tags" ELSE '[]'::jsonb END) AS tg(tag)"#
        } else {
            r#" JOIN json_each(CASE WHEN json_valid(s."request_tags") AND json_type(s."request_tags") = 'array' THEN s."request_tags" ELSE '[]' END) AS tg"#
        }
    }

    /// The expanded tag's value (see [`Sql::tags_join`]).
    fn tag_col(&self) -> &'static str {
        if self.pg {
            "tg.tag"
        } else {
            "tg.value"
        }
    }

    async fn fetch<T>(self, store: &Store) -> StoreResult<Vec<T>>
    where
        T: Send + Unpin + for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>,
    {
        let Sql { text, args, .. } = self;
        match store {
            Store::Sqlite(p) => {
                let mut q = sqlx::query_as::<_, T>(&text);
                for a in args {
                    q = match a {
                        Arg::Text(s) => q.bind(s),
                        Arg::Real(x) => q.bind(x),
                        Arg::Int(i) => q.bind(i),
                        Arg::Ts(t) => q.bind(fmt_ts(t)),
                        Arg::Texts(v) => {
                            q.bind(serde_json::to_string(&v).unwrap_or_else(|_| "[]".into()))
                        }
                    };
                }
                Ok(q.fetch_all(p).await?)
            }
            Store::Postgres(p) => {
                let mut q = sqlx::query_as::<_, T>(&text);
                for a in args {
                    q = match a {
                        Arg::Text(s) => q.bind(s),
                        Arg::Real(x) => q.bind(x),
                        Arg::Int(i) => q.bind(i),
                        Arg::Ts(t) => q.bind(t),
                        Arg::Texts(v) => q.bind(v),
                    };
                }
                Ok(q.fetch_all(p).await?)
            }
        }
    }
}

/// Who a non-admin reader may see: their own rows (`user`) and those of teams they may read.
#[derive(Debug, Clone, Default)]
pub struct OwnedScope {
    pub user_id: String,
    pub team_ids: Vec<String>,
}

/// LiteLLM's `span_type` classes of `call_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanType {
    Llm,
    Agent,
    Mcp,
    Batch,
}

impl SpanType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "llm" => Self::Llm,
            "agent" => Self::Agent,
            "mcp" => Self::Mcp,
            "batch" => Self::Batch,
            _ => return None,
        })
    }

    fn condition(self) -> &'static str {
        match self {
            Self::Mcp => r#""call_type" IN ('call_mcp_tool', 'list_mcp_tools')"#,
            Self::Agent => r#""call_type" = 'asend_message'"#,
            Self::Batch => {
                r#""call_type" IN ('acreate_batch', 'create_batch', 'aretrieve_batch', 'retrieve_batch')"#
            }
            Self::Llm => {
                // Everything that is not one of the other three.
                r#"("call_type" NOT IN ('call_mcp_tool', 'list_mcp_tools') AND "call_type" <> 'asend_message' AND "call_type" NOT IN ('acreate_batch', 'create_batch', 'aretrieve_batch', 'retrieve_batch'))"#
            }
        }
    }
}

/// Filters of the spend-log listings (`/spend/logs`, `/spend/logs/v2`). `None` = no filter.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// `startTime >= start`.
    pub start: Option<NaiveDateTime>,
    /// `startTime <= end`.
    pub end: Option<NaiveDateTime>,
    pub api_key: Option<String>,
    pub user: Option<String>,
    pub request_id: Option<String>,
    pub team_id: Option<String>,
    pub model: Option<String>,
    pub model_id: Option<String>,
    pub model_group: Option<String>,
    pub end_user: Option<String>,
    /// `success` also matches rows with no status, as in LiteLLM.
    pub status: Option<String>,
    pub min_spend: Option<f64>,
    pub max_spend: Option<f64>,
    /// Substring of `session_id`.
    pub session_id: Option<String>,
    /// `Some(true)`: cache hits only; `Some(false)`: everything else.
    pub cache_hit: Option<bool>,
    pub span_type: Option<SpanType>,
    /// Rows of these keys are left out.
    pub exclude_api_keys: Vec<String>,
    /// Substring of the key alias (spend-log metadata or the key's current alias).
    pub key_alias: Option<String>,
    pub error_code: Option<String>,
    /// Substring of the logged error message.
    pub error_message: Option<String>,
    /// Equals the request id, key hash, team, user, end user, session or deployment id.
    pub search: Option<String>,
    /// Non-admin readers: only rows they own.
    pub scope: Option<OwnedScope>,
}

/// Sort column of `/spend/logs/v2` (`sort_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSort {
    Spend,
    TotalTokens,
    StartTime,
    EndTime,
    RequestDurationMs,
    Model,
    TtftMs,
}

impl LogSort {
    pub const NAMES: [&'static str; 7] = [
        "endTime",
        "model",
        "request_duration_ms",
        "spend",
        "startTime",
        "total_tokens",
        "ttft_ms",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "spend" => Self::Spend,
            "total_tokens" => Self::TotalTokens,
            "startTime" => Self::StartTime,
            "endTime" => Self::EndTime,
            "request_duration_ms" => Self::RequestDurationMs,
            "model" => Self::Model,
            "ttft_ms" => Self::TtftMs,
            _ => return None,
        })
    }
}

/// One spend-log row as the listings return it.
#[derive(Debug, Clone, FromRow)]
pub struct LogRow {
    pub request_id: String,
    pub call_type: String,
    pub api_key: String,
    pub spend: f64,
    pub total_tokens: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    #[sqlx(rename = "startTime")]
    pub start_time: Option<String>,
    #[sqlx(rename = "endTime")]
    pub end_time: Option<String>,
    #[sqlx(rename = "completionStartTime")]
    pub completion_start_time: Option<String>,
    pub model: Option<String>,
    pub model_id: Option<String>,
    pub model_group: Option<String>,
    pub custom_llm_provider: Option<String>,
    pub api_base: Option<String>,
    pub user: Option<String>,
    pub metadata: Option<String>,
    pub cache_hit: Option<String>,
    pub cache_key: Option<String>,
    pub request_tags: Option<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    pub end_user: Option<String>,
    pub requester_ip_address: Option<String>,
    pub session_id: Option<String>,
    pub status: Option<String>,
    pub request_duration_ms: Option<i64>,
}

const SQLITE_LOG_COLUMNS: &str = r#""request_id", "call_type", "api_key", "spend", "total_tokens",
    "prompt_tokens", "completion_tokens", "startTime", "endTime", "completionStartTime", "model",
    "model_id", "model_group", "custom_llm_provider", "api_base", "user", "metadata", "cache_hit",
    "cache_key", "request_tags", "team_id", "organization_id", "end_user", "requester_ip_address",
    "session_id", "status",
    COALESCE("request_duration_ms",
        CAST(ROUND((julianday("endTime") - julianday("startTime")) * 86400000) AS INTEGER)) AS "request_duration_ms""#;

const PG_LOG_COLUMNS: &str = r#""request_id", "call_type", "api_key", "spend",
    "total_tokens"::bigint AS "total_tokens", "prompt_tokens"::bigint AS "prompt_tokens",
    "completion_tokens"::bigint AS "completion_tokens",
    to_char("startTime", 'YYYY-MM-DD HH24:MI:SS.MS') AS "startTime",
    to_char("endTime", 'YYYY-MM-DD HH24:MI:SS.MS') AS "endTime",
    to_char("completionStartTime", 'YYYY-MM-DD HH24:MI:SS.MS') AS "completionStartTime",
    "model", "model_id", "model_group", "custom_llm_provider", "api_base", "user",
    "metadata"::text AS "metadata", "cache_hit", "cache_key", "request_tags"::text AS "request_tags",
    "team_id", "organization_id", "end_user", "requester_ip_address", "session_id", "status",
    COALESCE("request_duration_ms",
        (EXTRACT(EPOCH FROM ("endTime" - "startTime")) * 1000)::integer)::bigint AS "request_duration_ms""#;

/// One row of `/spend/logs`'s daily summary: spend of a (day, key, user, model).
#[derive(Debug, Clone, FromRow)]
pub struct DaySummaryRow {
    pub day: String,
    pub api_key: String,
    pub user: Option<String>,
    pub model: Option<String>,
    pub spend: f64,
}

/// Spend and request count of one request tag.
#[derive(Debug, Clone, FromRow)]
pub struct TagSpendRow {
    pub tag: String,
    pub log_count: i64,
    pub total_spend: f64,
}

/// How `/global/spend/report` groups its days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayGroup {
    /// By team alias (`Unassigned Team` without one).
    Team,
    /// By end user.
    Customer,
    /// By team alias and end user.
    TeamCustomer,
}

/// Spend of one (day, group, model, key) for `/global/spend/report`.
#[derive(Debug, Clone, FromRow)]
pub struct DayGroupRow {
    pub day: String,
    pub team_name: Option<String>,
    pub customer: Option<String>,
    pub model: Option<String>,
    pub api_key: String,
    pub spend: f64,
    pub total_tokens: i64,
}

/// Which column scopes a per-key report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportScope {
    ApiKey,
    User,
    Team,
}

/// Spend and tokens of one (key, model).
#[derive(Debug, Clone, FromRow)]
pub struct KeyModelRow {
    pub api_key: String,
    pub model: Option<String>,
    pub cost: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// A key's spend with its alias and display name.
#[derive(Debug, Clone, FromRow)]
pub struct KeySpendRow {
    pub api_key: String,
    pub key_alias: Option<String>,
    pub key_name: Option<String>,
    pub total_spend: f64,
}

/// Spend of a team alias on one day.
#[derive(Debug, Clone, FromRow)]
pub struct TeamDayRow {
    pub team_alias: Option<String>,
    pub spend_date: String,
    pub total_spend: f64,
}

/// Spend (and tokens) of one model.
#[derive(Debug, Clone, FromRow)]
pub struct ModelSpendRow {
    pub model: Option<String>,
    pub total_spend: f64,
    pub total_tokens: i64,
}

/// Spend and request count of one end user.
#[derive(Debug, Clone, FromRow)]
pub struct EndUserSpendRow {
    pub end_user: Option<String>,
    pub total_count: i64,
    pub total_spend: f64,
}

/// Spend on one day (per key and user when asked).
#[derive(Debug, Clone, FromRow)]
pub struct DaySpendRow {
    pub date: String,
    pub spend: f64,
    pub api_key: Option<String>,
    pub user: Option<String>,
}

#[derive(Debug, FromRow)]
struct CountRow {
    n: i64,
}

#[derive(Debug, FromRow)]
struct TotalRow {
    total: f64,
}

/// Appends ` WHERE ...` for a log filter (`TRUE` when empty).
fn push_log_filter(q: &mut Sql, f: &LogFilter) {
    q.push(" WHERE TRUE");
    if let Some(t) = f.start {
        q.push(r#" AND "startTime" >= "#).bind(Arg::Ts(t));
    }
    if let Some(t) = f.end {
        q.push(r#" AND "startTime" <= "#).bind(Arg::Ts(t));
    }
    for (col, v) in [
        (r#""api_key""#, &f.api_key),
        (r#""user""#, &f.user),
        (r#""request_id""#, &f.request_id),
        (r#""team_id""#, &f.team_id),
        (r#""model""#, &f.model),
        (r#""model_id""#, &f.model_id),
        (r#""model_group""#, &f.model_group),
        (r#""end_user""#, &f.end_user),
    ] {
        if let Some(v) = v {
            q.push(" AND ")
                .push(col)
                .push(" = ")
                .bind(Arg::Text(v.clone()));
        }
    }
    match f.status.as_deref() {
        None => {}
        Some("success") => {
            q.push(r#" AND ("status" = 'success' OR "status" IS NULL)"#);
        }
        Some(s) => {
            q.push(r#" AND "status" = "#).bind(Arg::Text(s.to_string()));
        }
    }
    if let Some(x) = f.min_spend {
        q.push(r#" AND "spend" >= "#).bind(Arg::Real(x));
    }
    if let Some(x) = f.max_spend {
        q.push(r#" AND "spend" <= "#).bind(Arg::Real(x));
    }
    if let Some(s) = &f.session_id {
        q.push(r#" AND "session_id" LIKE "#)
            .bind(Arg::Text(format!("%{}%", like_escape(s))))
            .push(r" ESCAPE '\'");
    }
    match f.cache_hit {
        Some(true) => {
            q.push(r#" AND LOWER("cache_hit") = 'true'"#);
        }
        Some(false) => {
            q.push(r#" AND ("cache_hit" IS NULL OR LOWER("cache_hit") <> 'true')"#);
        }
        None => {}
    }
    if let Some(s) = f.span_type {
        q.push(" AND ").push(s.condition());
    }
    if !f.exclude_api_keys.is_empty() {
        q.push(" AND NOT (");
        q.in_list(r#""api_key""#, f.exclude_api_keys.clone());
        q.push(")");
    }
    if let Some(a) = &f.key_alias {
        let pattern = format!("%{}%", like_escape(a));
        let alias = q.json_text(r#""metadata""#, &["user_api_key_alias"]);
        q.push(" AND (")
            .push(&alias)
            .push(" LIKE ")
            .bind(Arg::Text(pattern.clone()))
            .push(r" ESCAPE '\'")
            .push(r#" OR "api_key" IN (SELECT "token" FROM "LiteLLM_VerificationToken" WHERE "key_alias" LIKE "#)
            .bind(Arg::Text(pattern))
            .push(r" ESCAPE '\'))");
    }
    if let Some(c) = &f.error_code {
        let col = q.json_text(r#""metadata""#, &["error_information", "error_code"]);
        q.push(" AND ")
            .push(&col)
            .push(" = ")
            .bind(Arg::Text(c.clone()));
    }
    if let Some(m) = &f.error_message {
        let col = q.json_text(r#""metadata""#, &["error_information", "error_message"]);
        q.push(" AND ")
            .push(&col)
            .push(" LIKE ")
            .bind(Arg::Text(format!("%{}%", like_escape(m))))
            .push(r" ESCAPE '\'");
    }
    if let Some(s) = &f.search {
        let p = q.arg(Arg::Text(s.clone()));
        let cond = format!(
            r#" AND ("request_id" = {p} OR "api_key" = {p} OR "team_id" = {p} OR "user" = {p} OR "end_user" = {p} OR "session_id" = {p} OR "model_id" = {p})"#
        );
        q.push(&cond);
    }
    if let Some(scope) = &f.scope {
        q.push(r#" AND ("user" = "#)
            .bind(Arg::Text(scope.user_id.clone()));
        if !scope.team_ids.is_empty() {
            q.push(" OR ");
            q.in_list(r#""team_id""#, scope.team_ids.clone());
        }
        q.push(")");
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// UTC midnight `days` days before today: the start of LiteLLM's "last 30 days" views
/// (`CURRENT_DATE - INTERVAL '30 days'`).
pub fn days_ago(days: i64) -> NaiveDateTime {
    let today = chrono::Utc::now().date_naive();
    (today - chrono::Duration::days(days))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
}

impl Store {
    /// A page of spend-log rows matching `f`, sorted by `sort` (then request id).
    pub async fn list_spend_logs(
        &self,
        f: &LogFilter,
        sort: LogSort,
        descending: bool,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<LogRow>> {
        let mut q = Sql::new(self);
        let cols = if q.pg {
            PG_LOG_COLUMNS
        } else {
            SQLITE_LOG_COLUMNS
        };
        q.push("SELECT ")
            .push(cols)
            .push(r#" FROM "LiteLLM_SpendLogs""#);
        push_log_filter(&mut q, f);
        let dir = if descending { "DESC" } else { "ASC" };
        let order = match sort {
            LogSort::Spend => format!(r#""spend" {dir}"#),
            LogSort::TotalTokens => format!(r#""total_tokens" {dir}"#),
            LogSort::StartTime => format!(r#""startTime" {dir}"#),
            LogSort::EndTime => format!(r#""endTime" {dir}"#),
            LogSort::RequestDurationMs => format!(r#""request_duration_ms" {dir}"#),
            LogSort::Model => format!(r#""model" {dir}"#),
            LogSort::TtftMs => {
                // Time to first token; rows that did not stream sort last either way.
                let ms = if q.pg {
                    r#"EXTRACT(EPOCH FROM ("completionStartTime" - "startTime")) * 1000"#
                } else {
                    r#"(julianday("completionStartTime") - julianday("startTime")) * 86400000"#
                };
                format!(
                    r#"CASE WHEN "completionStartTime" IS NULL OR "completionStartTime" = "endTime" THEN NULL ELSE {ms} END {dir} NULLS LAST"#
                )
            }
        };
        q.push(" ORDER BY ")
            .push(&order)
            .push(r#", "request_id" LIMIT "#)
            .bind(Arg::Int(limit))
            .push(" OFFSET ")
            .bind(Arg::Int(offset));
        q.fetch(self).await
    }

    /// How many rows match `f`, counting at most `cap + 1` (so a caller can tell it was capped).
    pub async fn count_spend_logs(&self, f: &LogFilter, cap: i64) -> StoreResult<i64> {
        let mut q = Sql::new(self);
        q.push(r#"SELECT COUNT(*) AS n FROM (SELECT 1 FROM "LiteLLM_SpendLogs""#);
        push_log_filter(&mut q, f);
        q.push(" LIMIT ").bind(Arg::Int(cap + 1)).push(") AS m");
        let rows: Vec<CountRow> = q.fetch(self).await?;
        Ok(rows.first().map_or(0, |r| r.n))
    }

    /// Spend per (day, key, user, model) of the rows matching `f`, by day.
    pub async fn spend_daily_summary(&self, f: &LogFilter) -> StoreResult<Vec<DaySummaryRow>> {
        let mut q = Sql::new(self);
        let day = q.day(r#""startTime""#);
        let spend = q.sum_real(r#""spend""#);
        q.push(&format!(
            r#"SELECT {day} AS day, "api_key", "user", "model", {spend} AS spend FROM "LiteLLM_SpendLogs""#
        ));
        push_log_filter(&mut q, f);
        q.push(r#" GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"#);
        q.fetch(self).await
    }

    /// Spend and requests per request tag of rows in `[start, end)` (each bound when given),
    /// only the tags in `only` and rows of `user` when given; the most spent first.
    pub async fn spend_per_tag(
        &self,
        start: Option<NaiveDateTime>,
        end: Option<NaiveDateTime>,
        only: Option<Vec<String>>,
        user: Option<&str>,
    ) -> StoreResult<Vec<TagSpendRow>> {
        let mut q = Sql::new(self);
        let tag = q.tag_col();
        let spend = q.sum_real(r#"s."spend""#);
        let tags = q.tags_join();
        q.push(&format!(
            r#"SELECT {tag} AS tag, COUNT(*) AS log_count, {spend} AS total_spend FROM "LiteLLM_SpendLogs" s{tags} WHERE TRUE"#
        ));
        if let Some(t) = start {
            q.push(r#" AND s."startTime" >= "#).bind(Arg::Ts(t));
        }
        if let Some(t) = end {
            q.push(r#" AND s."startTime" < "#).bind(Arg::Ts(t));
        }
        if let Some(u) = user {
            q.push(r#" AND s."user" = "#).bind(Arg::Text(u.to_string()));
        }
        if let Some(tags) = only {
            q.push(" AND ");
            q.in_list(tag, tags);
        }
        q.push(&format!(" GROUP BY {tag} ORDER BY total_spend DESC, tag"));
        q.fetch(self).await
    }

    /// Spend and tokens per (day, group, model, key) of rows in `[start, end)`, for
    /// `/global/spend/report`; `team_id` and `customer` narrow the rows.
    pub async fn spend_by_day_group(
        &self,
        start: NaiveDateTime,
        end: NaiveDateTime,
        group: DayGroup,
        team_id: Option<&str>,
        customer: Option<&str>,
    ) -> StoreResult<Vec<DayGroupRow>> {
        let mut q = Sql::new(self);
        let day = q.day(r#"s."startTime""#);
        let spend = q.sum_real(r#"s."spend""#);
        let tokens = q.sum_int(r#"s."total_tokens""#);
        let team = r#"COALESCE(t."team_alias", 'Unassigned Team')"#;
        const NONE: &str = "CAST(NULL AS TEXT)";
        let (team_col, customer_col, group_by) = match group {
            DayGroup::Team => (team, NONE, "1, 2, 4, 5"),
            DayGroup::Customer => (NONE, r#"s."end_user""#, "1, 3, 4, 5"),
            DayGroup::TeamCustomer => (team, r#"s."end_user""#, "1, 2, 3, 4, 5"),
        };
        q.push(&format!(
            r#"SELECT {day} AS day, {team_col} AS team_name, {customer_col} AS customer, s."model", s."api_key", {spend} AS spend, {tokens} AS total_tokens FROM "LiteLLM_SpendLogs" s LEFT JOIN "LiteLLM_TeamTable" t ON s."team_id" = t."team_id" WHERE s."startTime" >= "#
        ))
        .bind(Arg::Ts(start))
        .push(r#" AND s."startTime" < "#)
        .bind(Arg::Ts(end));
        if let Some(t) = team_id {
            q.push(r#" AND s."team_id" = "#)
                .bind(Arg::Text(t.to_string()));
        }
        if let Some(c) = customer {
            q.push(r#" AND s."end_user" = "#)
                .bind(Arg::Text(c.to_string()));
        }
        q.push(&format!(" GROUP BY {group_by} ORDER BY {group_by}"));
        q.fetch(self).await
    }

    /// Spend and tokens per (key, model) of rows in `[start, end)`, optionally of one key,
    /// user or team.
    pub async fn spend_by_key_model(
        &self,
        start: NaiveDateTime,
        end: NaiveDateTime,
        scope: Option<(ReportScope, &str)>,
    ) -> StoreResult<Vec<KeyModelRow>> {
        let mut q = Sql::new(self);
        let cost = q.sum_real(r#""spend""#);
        let input = q.sum_int(r#""prompt_tokens""#);
        let output = q.sum_int(r#""completion_tokens""#);
        q.push(&format!(
            r#"SELECT "api_key", "model", {cost} AS cost, {input} AS input_tokens, {output} AS output_tokens FROM "LiteLLM_SpendLogs" WHERE "startTime" >= "#
        ))
        .bind(Arg::Ts(start))
        .push(r#" AND "startTime" < "#)
        .bind(Arg::Ts(end));
        if let Some((col, v)) = scope {
            let col = match col {
                ReportScope::ApiKey => r#""api_key""#,
                ReportScope::User => r#""user""#,
                ReportScope::Team => r#""team_id""#,
            };
            q.push(" AND ")
                .push(col)
                .push(" = ")
                .bind(Arg::Text(v.to_string()));
        }
        q.push(r#" GROUP BY "api_key", "model" ORDER BY "api_key", "model""#);
        q.fetch(self).await
    }

    /// Keys by spend (since `since` when given) with alias and name, the most spent first;
    /// only the owner's rows when `user` is given.
    pub async fn spend_per_key(
        &self,
        since: Option<NaiveDateTime>,
        user: Option<&str>,
        limit: Option<i64>,
    ) -> StoreResult<Vec<KeySpendRow>> {
        let mut q = Sql::new(self);
        let spend = q.sum_real(r#"l."spend""#);
        q.push(&format!(
            r#"SELECT l."api_key", v."key_alias", v."key_name", {spend} AS total_spend FROM "LiteLLM_SpendLogs" l LEFT JOIN "LiteLLM_VerificationToken" v ON l."api_key" = v."token" WHERE TRUE"#
        ));
        if let Some(t) = since {
            q.push(r#" AND l."startTime" >= "#).bind(Arg::Ts(t));
        }
        if let Some(u) = user {
            q.push(r#" AND l."user" = "#).bind(Arg::Text(u.to_string()));
        }
        q.push(r#" GROUP BY l."api_key", v."key_alias", v."key_name" ORDER BY total_spend DESC, l."api_key""#);
        if let Some(n) = limit {
            q.push(" LIMIT ").bind(Arg::Int(n));
        }
        q.fetch(self).await
    }

    /// Spend per (team alias, day) since `since`, by day.
    pub async fn spend_per_team_day(&self, since: NaiveDateTime) -> StoreResult<Vec<TeamDayRow>> {
        let mut q = Sql::new(self);
        let day = q.day(r#"s."startTime""#);
        let spend = q.sum_real(r#"s."spend""#);
        q.push(&format!(
            r#"SELECT t."team_alias", {day} AS spend_date, {spend} AS total_spend FROM "LiteLLM_SpendLogs" s LEFT JOIN "LiteLLM_TeamTable" t ON s."team_id" = t."team_id" WHERE s."startTime" >= "#
        ))
        .bind(Arg::Ts(since))
        .push(" GROUP BY 1, 2 ORDER BY 2, 1");
        q.fetch(self).await
    }

    /// Models by spend since `since` (all time for a user's view), the most spent first.
    pub async fn spend_per_model(
        &self,
        since: Option<NaiveDateTime>,
        user: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ModelSpendRow>> {
        let mut q = Sql::new(self);
        let spend = q.sum_real(r#""spend""#);
        let tokens = q.sum_int(r#""total_tokens""#);
        q.push(&format!(
            r#"SELECT "model", {spend} AS total_spend, {tokens} AS total_tokens FROM "LiteLLM_SpendLogs" WHERE "model" <> ''"#
        ));
        if let Some(t) = since {
            q.push(r#" AND "startTime" >= "#).bind(Arg::Ts(t));
        }
        if let Some(u) = user {
            q.push(r#" AND "user" = "#).bind(Arg::Text(u.to_string()));
        }
        q.push(r#" GROUP BY "model" ORDER BY total_spend DESC, "model" LIMIT "#)
            .bind(Arg::Int(limit));
        q.fetch(self).await
    }

    /// End users by spend in `[start, end)`, optionally of one key; at most `limit`.
    pub async fn spend_per_end_user(
        &self,
        start: NaiveDateTime,
        end: NaiveDateTime,
        api_key: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<EndUserSpendRow>> {
        let mut q = Sql::new(self);
        let spend = q.sum_real(r#""spend""#);
        q.push(&format!(
            r#"SELECT "end_user", COUNT(*) AS total_count, {spend} AS total_spend FROM "LiteLLM_SpendLogs" WHERE "startTime" >= "#
        ))
        .bind(Arg::Ts(start))
        .push(r#" AND "startTime" < "#)
        .bind(Arg::Ts(end));
        if let Some(k) = api_key {
            q.push(r#" AND "api_key" = "#)
                .bind(Arg::Text(k.to_string()));
        }
        q.push(r#" GROUP BY "end_user" ORDER BY total_spend DESC, "end_user" LIMIT "#)
            .bind(Arg::Int(limit));
        q.fetch(self).await
    }

    /// Spend per day since `since` (per key, or per key and user, when those narrow it), by day.
    pub async fn spend_per_day(
        &self,
        since: NaiveDateTime,
        api_key: Option<&str>,
        user: Option<&str>,
    ) -> StoreResult<Vec<DaySpendRow>> {
        let mut q = Sql::new(self);
        let day = q.day(r#""startTime""#);
        let spend = q.sum_real(r#""spend""#);
        const NONE: &str = "CAST(NULL AS TEXT)";
        let (key_col, user_col, group_by) = match (api_key.is_some(), user.is_some()) {
            (false, false) => (NONE, NONE, "1"),
            (true, false) => (r#""api_key""#, NONE, "1, 3"),
            (_, true) => (r#""api_key""#, r#""user""#, "1, 3, 4"),
        };
        q.push(&format!(
            r#"SELECT {day} AS "date", {spend} AS spend, {key_col} AS api_key, {user_col} AS "user" FROM "LiteLLM_SpendLogs" WHERE "startTime" >= "#
        ))
        .bind(Arg::Ts(since));
        if let Some(k) = api_key {
            q.push(r#" AND "api_key" = "#)
                .bind(Arg::Text(k.to_string()));
        }
        if let Some(u) = user {
            q.push(r#" AND "user" = "#).bind(Arg::Text(u.to_string()));
        }
        q.push(&format!(" GROUP BY {group_by} ORDER BY {group_by}"));
        q.fetch(self).await
    }

    /// Total spend of the logs since `since`.
    pub async fn global_spend(&self, since: NaiveDateTime) -> StoreResult<f64> {
        let mut q = Sql::new(self);
        let spend = q.sum_real(r#""spend""#);
        q.push(&format!(
            r#"SELECT {spend} AS total FROM "LiteLLM_SpendLogs" WHERE "startTime" >= "#
        ))
        .bind(Arg::Ts(since));
        let rows: Vec<TotalRow> = q.fetch(self).await?;
        Ok(rows.first().map_or(0.0, |r| r.total))
    }

    /// `/global/spend/reset`: every key's and team's spend back to 0, in one transaction (the
    /// spend logs and users' spend are kept, as in LiteLLM).
    pub async fn reset_all_spend(&self) -> StoreResult<()> {
        const KEYS: &str = r#"UPDATE "LiteLLM_VerificationToken" SET "spend" = 0"#;
        const TEAMS: &str = r#"UPDATE "LiteLLM_TeamTable" SET "spend" = 0"#;
        match self {
            Self::Sqlite(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(KEYS).execute(&mut *tx).await?;
                sqlx::query(TEAMS).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            Self::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(KEYS).execute(&mut *tx).await?;
                sqlx::query(TEAMS).execute(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Sets one key's spend; false when the key does not exist.
    pub async fn set_key_spend(&self, token: &str, spend: f64) -> StoreResult<bool> {
        let done = match self {
            Self::Sqlite(p) => sqlx::query(
                r#"UPDATE "LiteLLM_VerificationToken" SET "spend" = ?1 WHERE "token" = ?2"#,
            )
            .bind(spend)
            .bind(token)
            .execute(p)
            .await?
            .rows_affected(),
            Self::Postgres(p) => sqlx::query(
                r#"UPDATE "LiteLLM_VerificationToken" SET "spend" = $1 WHERE "token" = $2"#,
            )
            .bind(spend)
            .bind(token)
            .execute(p)
            .await?
            .rows_affected(),
        };
        Ok(done > 0)
    }
}
