//! LiteLLM's daily spend roll-ups (`LiteLLM_DailyUserSpend`, `..TeamSpend`,
//! `..OrganizationSpend`, `..EndUserSpend`, `..TagSpend`): the per-batch aggregation the spend
//! writer fills, the upserts that add a batch to the tables (inside the batch's transaction),
//! and the page reads behind the `/<entity>/daily/activity` routes.
//!
//! Mirrors LiteLLM's writer: every call, failed ones included, adds to one row per entity it
//! belongs to (the key's user, '' when it has none; its team, organization and end user when
//! set; each distinct tag), keyed like LiteLLM's unique index by (entity, UTC day, key hash,
//! model, provider, MCP tool, endpoint). Unique-key columns hold '' rather than NULL so that
//! the conflict target always matches. A failed call counts one request and one failure and
//! no spend; response time is summed over successful calls only. The response shapes belong to
//! `handlers::daily_activity`; nothing here knows about callers or access rules.

use super::{fmt_ts, SpendLogRow, StoreResult};
use chrono::NaiveDate;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

/// The daily tables, in the order a batch writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DailyTable {
    User,
    Team,
    Organization,
    EndUser,
    Tag,
}

impl DailyTable {
    pub const ALL: [DailyTable; 5] = [
        Self::User,
        Self::Team,
        Self::Organization,
        Self::EndUser,
        Self::Tag,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Self::User => "LiteLLM_DailyUserSpend",
            Self::Team => "LiteLLM_DailyTeamSpend",
            Self::Organization => "LiteLLM_DailyOrganizationSpend",
            Self::EndUser => "LiteLLM_DailyEndUserSpend",
            Self::Tag => "LiteLLM_DailyTagSpend",
        }
    }

    /// The entity's column (LiteLLM's `entity_id_field`).
    pub fn entity_column(self) -> &'static str {
        match self {
            Self::User => "user_id",
            Self::Team => "team_id",
            Self::Organization => "organization_id",
            Self::EndUser => "end_user_id",
            Self::Tag => "tag",
        }
    }
}

/// LiteLLM's `endpoint` for a spend log's `call_type` (its `ROUTE_ENDPOINT_MAPPING`; '' for
/// call types it does not map).
pub fn endpoint_of(call_type: &str) -> &'static str {
    match call_type {
        "acompletion" => "/chat/completions",
        "atext_completion" => "/completions",
        "aembedding" => "/embeddings",
        "aimage_generation" => "/image/generations",
        "aspeech" => "/audio/speech",
        "atranscription" => "/audio/transcriptions",
        "amoderation" => "/moderations",
        "arerank" => "/rerank",
        "aresponses" => "/responses",
        "aimage_edit" => "/images/edits",
        _ => "",
    }
}

/// The value of an optional entity column, when it names one.
fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// The counters of a daily row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DailyCounts {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cache_read_input_tokens: i64,
    pub cache_creation_input_tokens: i64,
    pub spend: f64,
    pub api_requests: i64,
    pub successful_requests: i64,
    pub failed_requests: i64,
    pub total_response_time_ms: i64,
    pub timed_requests: i64,
}

impl DailyCounts {
    pub fn add(&mut self, o: &DailyCounts) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.cache_read_input_tokens += o.cache_read_input_tokens;
        self.cache_creation_input_tokens += o.cache_creation_input_tokens;
        self.spend += o.spend;
        self.api_requests += o.api_requests;
        self.successful_requests += o.successful_requests;
        self.failed_requests += o.failed_requests;
        self.total_response_time_ms += o.total_response_time_ms;
        self.timed_requests += o.timed_requests;
    }

    /// What one call adds (LiteLLM's daily transaction for a spend-log payload).
    fn of_call(l: &SpendLogRow, cache_read: u64, cache_creation: u64) -> Self {
        let ok = l.status == "success";
        let timed = l.request_duration_ms.filter(|ms| ok && *ms >= 0);
        Self {
            prompt_tokens: l.prompt_tokens,
            completion_tokens: l.completion_tokens,
            cache_read_input_tokens: cache_read as i64,
            cache_creation_input_tokens: cache_creation as i64,
            spend: l.spend,
            api_requests: 1,
            successful_requests: i64::from(ok),
            failed_requests: i64::from(!ok),
            total_response_time_ms: timed.unwrap_or(0),
            timed_requests: i64::from(timed.is_some()),
        }
    }
}

/// One daily row of a batch: its unique key, `model_group` (the first call's, as LiteLLM keeps
/// it), `request_id` (tags only: the last contributing call) and counters.
#[derive(Debug, Clone)]
pub struct DailyRow {
    pub table: DailyTable,
    pub entity: String,
    pub date: NaiveDate,
    pub api_key: String,
    pub model: String,
    pub custom_llm_provider: String,
    pub endpoint: &'static str,
    pub model_group: String,
    pub request_id: Option<String>,
    pub counts: DailyCounts,
    /// The next row whose key hashes alike (see [`DailySpend`]).
    next: Option<usize>,
}

/// The daily rows of a batch, aggregated in memory: each call adds to one row per entity, and
/// the batch writes one upsert per distinct row. A call whose rows are already there allocates
/// nothing: each table's last row is compared first (consecutive calls usually share their
/// rows), then rows are found by a hash of the borrowed key fields and compared field by field.
#[derive(Default, Clone)]
pub struct DailySpend {
    hasher: RandomState,
    /// Key hash -> the first row with that hash (rows with the same hash are chained).
    index: HashMap<u64, usize>,
    rows: Vec<DailyRow>,
    /// The row each table added to last.
    last: [Option<usize>; DailyTable::ALL.len()],
}

impl std::fmt::Debug for DailySpend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DailySpend")
            .field("rows", &self.rows.len())
            .finish()
    }
}

/// The unique key of a row, borrowed from the call.
struct Key<'a> {
    table: DailyTable,
    entity: &'a str,
    date: NaiveDate,
    api_key: &'a str,
    model: &'a str,
    provider: &'a str,
    endpoint: &'static str,
}

impl Key<'_> {
    fn matches(&self, r: &DailyRow) -> bool {
        r.table == self.table
            && r.date == self.date
            && r.endpoint == self.endpoint
            && r.entity == self.entity
            && r.api_key == self.api_key
            && r.model == self.model
            && r.custom_llm_provider == self.provider
    }
}

impl DailySpend {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn rows(&self) -> &[DailyRow] {
        &self.rows
    }

    /// Adds one finished call to the rows of its day: its user's (always; '' when the key has
    /// no user), team's, organization's and end user's when set, and each distinct tag's.
    pub fn add_call(&mut self, l: &SpendLogRow, cache_read: u64, cache_creation: u64) {
        let counts = DailyCounts::of_call(l, cache_read, cache_creation);
        let date = l.start_time.date();
        let endpoint = endpoint_of(&l.call_type);
        let mut add = |table, entity: &str, request_id: Option<&str>| {
            let key = Key {
                table,
                entity,
                date,
                api_key: &l.api_key,
                model: &l.model,
                provider: &l.custom_llm_provider,
                endpoint,
            };
            self.add(key, &l.model_group, request_id, &counts);
        };
        add(DailyTable::User, &l.user, None);
        if let Some(t) = set(&l.team_id) {
            add(DailyTable::Team, t, None);
        }
        if let Some(o) = set(&l.organization_id) {
            add(DailyTable::Organization, o, None);
        }
        if let Some(u) = set(&l.end_user) {
            add(DailyTable::EndUser, u, None);
        }
        if let Some(tags) = l.request_tags.as_array() {
            for (i, tag) in tags.iter().enumerate() {
                let Some(tag) = tag.as_str() else { continue };
                // Each distinct tag once per call (LiteLLM de-duplicates a call's tags).
                if tags[..i].iter().any(|t| t.as_str() == Some(tag)) {
                    continue;
                }
                add(DailyTable::Tag, tag, Some(&l.request_id));
            }
        }
    }

    fn hash(&self, k: &Key<'_>) -> u64 {
        self.hasher.hash_one((
            k.table, k.entity, k.date, k.api_key, k.model, k.provider, k.endpoint,
        ))
    }

    fn add(&mut self, k: Key<'_>, group: &str, request_id: Option<&str>, c: &DailyCounts) {
        let table = k.table as usize;
        let add_to = |r: &mut DailyRow| {
            r.counts.add(c);
            if let (Some(slot), Some(id)) = (r.request_id.as_mut(), request_id) {
                id.clone_into(slot);
            }
        };
        if let Some(i) = self.last[table].filter(|i| k.matches(&self.rows[*i])) {
            add_to(&mut self.rows[i]);
            return;
        }
        let h = self.hash(&k);
        let mut at = self.index.get(&h).copied();
        while let Some(i) = at {
            let r = &mut self.rows[i];
            if k.matches(r) {
                add_to(r);
                self.last[table] = Some(i);
                return;
            }
            at = r.next;
        }
        self.last[table] = Some(self.rows.len());
        let next = self.index.insert(h, self.rows.len());
        self.rows.push(DailyRow {
            table: k.table,
            entity: k.entity.to_owned(),
            date: k.date,
            api_key: k.api_key.to_owned(),
            model: k.model.to_owned(),
            custom_llm_provider: k.provider.to_owned(),
            endpoint: k.endpoint,
            model_group: group.to_owned(),
            request_id: request_id.map(str::to_owned),
            counts: *c,
            next,
        });
    }

    /// The rows in a fixed order (table, then key), so concurrent writers lock rows in the same
    /// sequence.
    pub fn sorted(&self) -> Vec<&DailyRow> {
        let mut v: Vec<&DailyRow> = self.rows.iter().collect();
        v.sort_by(|a, b| {
            (a.table, &a.entity, a.date, &a.api_key, &a.model)
                .cmp(&(b.table, &b.entity, b.date, &b.api_key, &b.model))
                .then_with(|| a.custom_llm_provider.cmp(&b.custom_llm_provider))
                .then_with(|| a.endpoint.cmp(b.endpoint))
        });
        v
    }
}

/// Counter columns in bind order, after the key columns.
const COUNTER_COLUMNS: [&str; 10] = [
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "spend",
    "api_requests",
    "successful_requests",
    "failed_requests",
    "total_response_time_ms",
    "timed_requests",
];

/// The upsert adding one row to `t`, in SQLite's (`?n`) or PostgreSQL's (`$n`) spelling. Built
/// once per table and backend.
pub(super) fn upsert_sql(t: DailyTable, postgres: bool) -> &'static str {
    use std::sync::OnceLock;
    static SQL: [OnceLock<String>; 10] = [const { OnceLock::new() }; 10];
    let slot = usize::from(postgres) * 5 + t as usize;
    SQL[slot].get_or_init(|| {
        let table = t.table();
        let mut cols: Vec<&str> = vec![
            "id",
            t.entity_column(),
            "date",
            "api_key",
            "model",
            "custom_llm_provider",
            "mcp_namespaced_tool_name",
            "endpoint",
            "model_group",
        ];
        cols.extend(COUNTER_COLUMNS);
        if t == DailyTable::Tag {
            cols.push("request_id");
        }
        cols.push("updated_at");
        let list = cols
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let params = (1..=cols.len())
            .map(|i| if postgres { format!("${i}") } else { format!("?{i}") })
            .collect::<Vec<_>>()
            .join(", ");
        let target = cols[1..8]
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut set: Vec<String> = COUNTER_COLUMNS
            .iter()
            .map(|c| format!("\"{c}\" = \"{table}\".\"{c}\" + excluded.\"{c}\""))
            .collect();
        if t == DailyTable::Tag {
            set.push(format!(
                "\"request_id\" = COALESCE(excluded.\"request_id\", \"{table}\".\"request_id\")"
            ));
        }
        set.push("\"updated_at\" = excluded.\"updated_at\"".into());
        format!(
            "INSERT INTO \"{table}\" ({list}) VALUES ({params}) ON CONFLICT ({target}) DO UPDATE SET {}",
            set.join(", ")
        )
    })
}

/// `YYYY-MM-DD`, the text form of a daily row's `date`.
pub fn day_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Adds a batch's daily rows on the embedded store's writer connection, inside its transaction.
pub(super) fn write_sqlite(conn: &rusqlite::Connection, d: &DailySpend) -> rusqlite::Result<()> {
    if d.is_empty() {
        return Ok(());
    }
    let now = fmt_ts(chrono::Utc::now().naive_utc());
    for r in d.sorted() {
        let mut st = conn.prepare_cached(upsert_sql(r.table, false))?;
        let c = &r.counts;
        let id = uuid::Uuid::new_v4().to_string();
        let date = day_text(r.date);
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![
            &id,
            &r.entity,
            &date,
            &r.api_key,
            &r.model,
            &r.custom_llm_provider,
            &"",
            &r.endpoint,
            &r.model_group,
            &c.prompt_tokens,
            &c.completion_tokens,
            &c.cache_read_input_tokens,
            &c.cache_creation_input_tokens,
            &c.spend,
            &c.api_requests,
            &c.successful_requests,
            &c.failed_requests,
            &c.total_response_time_ms,
            &c.timed_requests,
        ];
        if r.table == DailyTable::Tag {
            values.push(&r.request_id);
        }
        values.push(&now);
        st.execute(values.as_slice())?;
    }
    Ok(())
}

/// Adds a batch's daily rows on PostgreSQL, inside the batch's transaction.
pub(super) async fn write_postgres(
    tx: &mut sqlx::PgConnection,
    d: &DailySpend,
) -> Result<(), sqlx::Error> {
    let now = chrono::Utc::now().naive_utc();
    for r in d.sorted() {
        let c = &r.counts;
        let mut q = sqlx::query(upsert_sql(r.table, true))
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&r.entity)
            .bind(day_text(r.date))
            .bind(&r.api_key)
            .bind(&r.model)
            .bind(&r.custom_llm_provider)
            .bind("")
            .bind(r.endpoint)
            .bind(&r.model_group)
            .bind(c.prompt_tokens)
            .bind(c.completion_tokens)
            .bind(c.cache_read_input_tokens)
            .bind(c.cache_creation_input_tokens)
            .bind(c.spend)
            .bind(c.api_requests)
            .bind(c.successful_requests)
            .bind(c.failed_requests)
            .bind(c.total_response_time_ms)
            .bind(c.timed_requests);
        if r.table == DailyTable::Tag {
            q = q.bind(&r.request_id);
        }
        q.bind(now).execute(&mut *tx).await?;
    }
    Ok(())
}

/// One stored daily row, as the activity routes read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DailyRecord {
    pub entity: Option<String>,
    pub date: String,
    pub api_key: String,
    pub model: Option<String>,
    pub model_group: Option<String>,
    pub custom_llm_provider: Option<String>,
    pub mcp_namespaced_tool_name: Option<String>,
    pub endpoint: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cache_read_input_tokens: i64,
    pub cache_creation_input_tokens: i64,
    pub spend: f64,
    pub api_requests: i64,
    pub successful_requests: i64,
    pub failed_requests: i64,
    pub total_response_time_ms: i64,
    pub timed_requests: i64,
}

/// What an activity page reads: the table, a day range (inclusive `YYYY-MM-DD` days), and the
/// optional filters LiteLLM applies (`Some(empty)` matches nothing).
#[derive(Debug, Clone)]
pub struct DailyFilter {
    pub table: DailyTable,
    pub start: String,
    pub end: String,
    pub entities: Option<Vec<String>>,
    pub exclude_entities: Vec<String>,
    pub model: Option<String>,
    pub api_keys: Option<Vec<String>>,
}

/// The SELECT list of a page read.
fn select_list(t: DailyTable) -> String {
    format!(
        r#"SELECT "{}" AS "entity", "date", "api_key", "model", "model_group", "custom_llm_provider",
           "mcp_namespaced_tool_name", "endpoint", "prompt_tokens", "completion_tokens",
           "cache_read_input_tokens", "cache_creation_input_tokens", "spend", "api_requests",
           "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests"
           FROM "{}""#,
        t.entity_column(),
        t.table()
    )
}

impl super::Store {
    /// One page of daily rows (newest day first, as LiteLLM orders them) and how many rows
    /// match in all.
    pub async fn daily_rows(
        &self,
        f: &DailyFilter,
        page: i64,
        page_size: i64,
    ) -> StoreResult<(Vec<DailyRecord>, i64)> {
        let postgres = matches!(self, Self::Postgres(_));
        let mut n = 0;
        let mut p = || {
            n += 1;
            if postgres {
                format!("${n}")
            } else {
                format!("?{n}")
            }
        };
        let entity = format!("\"{}\"", f.table.entity_column());
        let mut wh = format!(r#"WHERE "date" >= {} AND "date" <= {}"#, p(), p());
        let mut binds: Vec<&str> = vec![&f.start, &f.end];
        if let Some(es) = &f.entities {
            if es.is_empty() {
                wh.push_str(" AND 1 = 0");
            } else {
                let ps: Vec<String> = es.iter().map(|_| p()).collect();
                wh.push_str(&format!(" AND {entity} IN ({})", ps.join(", ")));
                binds.extend(es.iter().map(String::as_str));
            }
        }
        if !f.exclude_entities.is_empty() {
            let ps: Vec<String> = f.exclude_entities.iter().map(|_| p()).collect();
            wh.push_str(&format!(
                " AND ({entity} IS NULL OR {entity} NOT IN ({}))",
                ps.join(", ")
            ));
            binds.extend(f.exclude_entities.iter().map(String::as_str));
        }
        if let Some(m) = &f.model {
            wh.push_str(&format!(r#" AND "model" = {}"#, p()));
            binds.push(m);
        }
        if let Some(ks) = &f.api_keys {
            if ks.is_empty() {
                wh.push_str(" AND 1 = 0");
            } else {
                let ps: Vec<String> = ks.iter().map(|_| p()).collect();
                wh.push_str(&format!(r#" AND "api_key" IN ({})"#, ps.join(", ")));
                binds.extend(ks.iter().map(String::as_str));
            }
        }
        let (limit, offset) = (p(), p());
        let page_sql = format!(
            r#"{} {wh} ORDER BY "date" DESC, "id" ASC LIMIT {limit} OFFSET {offset}"#,
            select_list(f.table)
        );
        let count_sql = format!(r#"SELECT COUNT(*) FROM "{}" {wh}"#, f.table.table());
        let offset_rows = (page - 1).saturating_mul(page_size);
        match self {
            Self::Postgres(pool) => {
                let mut q = sqlx::query_as::<_, DailyRecord>(&page_sql);
                let mut c = sqlx::query_scalar::<_, i64>(&count_sql);
                for b in &binds {
                    q = q.bind(*b);
                    c = c.bind(*b);
                }
                let rows = q.bind(page_size).bind(offset_rows).fetch_all(pool).await?;
                Ok((rows, c.fetch_one(pool).await?))
            }
            Self::Sqlite(pool) => {
                let mut q = sqlx::query_as::<_, DailyRecord>(&page_sql);
                let mut c = sqlx::query_scalar::<_, i64>(&count_sql);
                for b in &binds {
                    q = q.bind(*b);
                    c = c.bind(*b);
                }
                let rows = q.bind(page_size).bind(offset_rows).fetch_all(pool).await?;
                Ok((rows, c.fetch_one(pool).await?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(user: &str, key: &str, model: &str, status: &str, tags: &[&str]) -> SpendLogRow {
        let t = NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|d| d.and_hms_opt(23, 59, 0))
            .unwrap_or_default();
        SpendLogRow {
            request_id: format!("r-{user}-{key}-{model}"),
            call_type: "acompletion".into(),
            api_key: key.into(),
            spend: if status == "success" { 0.5 } else { 0.0 },
            prompt_tokens: 10,
            completion_tokens: 5,
            total_tokens: 15,
            start_time: t,
            end_time: t,
            request_duration_ms: Some(40),
            model: model.into(),
            model_group: format!("{model}-group").into(),
            custom_llm_provider: "openai".into(),
            user: user.into(),
            team_id: Some("team-1".into()),
            organization_id: None,
            end_user: Some(String::new()),
            request_tags: json!(tags),
            status: status.to_owned().into(),
            ..SpendLogRow::default()
        }
    }

    fn row<'a>(d: &'a DailySpend, t: DailyTable, entity: &str, model: &str) -> &'a DailyRow {
        d.rows()
            .iter()
            .find(|r| r.table == t && r.entity == entity && r.model == model)
            .unwrap_or_else(|| panic!("no {t:?} row for {entity}/{model}"))
    }

    #[test]
    fn calls_of_one_row_are_summed_and_failures_counted() {
        let mut d = DailySpend::default();
        for _ in 0..3 {
            d.add_call(&call("u1", "k1", "gpt", "success", &[]), 2, 1);
        }
        d.add_call(&call("u1", "k1", "gpt", "failure", &[]), 0, 0);
        // user + team rows only: no organization, an empty end user, no tags.
        assert_eq!(d.len(), 2);
        let r = row(&d, DailyTable::User, "u1", "gpt");
        assert_eq!(
            r.date,
            NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default()
        );
        assert_eq!(r.endpoint, "/chat/completions");
        assert_eq!(r.model_group, "gpt-group");
        let c = r.counts;
        assert_eq!(
            (c.api_requests, c.successful_requests, c.failed_requests),
            (4, 3, 1)
        );
        assert_eq!((c.prompt_tokens, c.completion_tokens), (40, 20));
        assert_eq!(
            (c.cache_read_input_tokens, c.cache_creation_input_tokens),
            (6, 3)
        );
        assert!((c.spend - 1.5).abs() < 1e-9);
        assert_eq!((c.total_response_time_ms, c.timed_requests), (120, 3));
        assert_eq!(row(&d, DailyTable::Team, "team-1", "gpt").counts, c);
    }

    #[test]
    fn each_key_part_makes_its_own_row() {
        let mut d = DailySpend::default();
        d.add_call(&call("u1", "k1", "gpt", "success", &["a", "b", "a"]), 0, 0);
        d.add_call(&call("u2", "k1", "gpt", "success", &["a"]), 0, 0);
        d.add_call(&call("u1", "k2", "gpt", "success", &[]), 0, 0);
        d.add_call(&call("u1", "k1", "claude", "success", &[]), 0, 0);
        let mut next_day = call("u1", "k1", "gpt", "success", &[]);
        next_day.start_time += chrono::Duration::minutes(2);
        d.add_call(&next_day, 0, 0);
        let users = d.rows().iter().filter(|r| r.table == DailyTable::User);
        assert_eq!(users.count(), 5);
        // A repeated tag counts once per call; both calls tagged "a" share its row.
        let a = row(&d, DailyTable::Tag, "a", "gpt");
        assert_eq!(a.counts.api_requests, 2);
        assert_eq!(a.request_id.as_deref(), Some("r-u2-k1-gpt"));
        assert_eq!(row(&d, DailyTable::Tag, "b", "gpt").counts.api_requests, 1);
        let teams: i64 = d
            .rows()
            .iter()
            .filter(|r| r.table == DailyTable::Team)
            .map(|r| r.counts.api_requests)
            .sum();
        assert_eq!(teams, 5);
        // Back to an earlier row (found by its hash), then the same again (the last row).
        for n in [2, 3] {
            d.add_call(&call("u1", "k1", "gpt", "success", &[]), 0, 0);
            let users = d.rows().iter().filter(|r| r.table == DailyTable::User);
            assert_eq!(users.count(), 5);
            let first = d.rows().iter().find(|r| {
                r.table == DailyTable::User
                    && r.entity == "u1"
                    && r.api_key == "k1"
                    && r.model == "gpt"
            });
            assert_eq!(first.unwrap().counts.api_requests, n);
        }
    }

    #[test]
    fn keyless_users_and_other_entities() {
        let mut d = DailySpend::default();
        let mut c = call("", "", "gpt", "success", &[]);
        c.team_id = None;
        c.organization_id = Some("org".into());
        c.end_user = Some("cust".into());
        c.call_type = "anthropic_messages".into();
        d.add_call(&c, 0, 0);
        assert_eq!(d.len(), 3);
        assert_eq!(row(&d, DailyTable::User, "", "gpt").endpoint, "");
        row(&d, DailyTable::Organization, "org", "gpt");
        row(&d, DailyTable::EndUser, "cust", "gpt");
    }

    #[test]
    fn sorted_rows_follow_table_then_key() {
        let mut d = DailySpend::default();
        d.add_call(&call("u2", "k1", "gpt", "success", &["t"]), 0, 0);
        d.add_call(&call("u1", "k1", "gpt", "success", &[]), 0, 0);
        let order: Vec<(DailyTable, &str)> = d
            .sorted()
            .iter()
            .map(|r| (r.table, r.entity.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (DailyTable::User, "u1"),
                (DailyTable::User, "u2"),
                (DailyTable::Team, "team-1"),
                (DailyTable::Tag, "t"),
            ]
        );
    }

    #[test]
    fn upserts_bind_every_column_once() {
        for t in DailyTable::ALL {
            for pg in [false, true] {
                let sql = upsert_sql(t, pg);
                let n = 20 + usize::from(t == DailyTable::Tag);
                let last = if pg {
                    format!("${n})")
                } else {
                    format!("?{n})")
                };
                assert!(sql.contains(&last), "{sql}");
                assert!(sql.contains(&format!("ON CONFLICT (\"{}\", \"date\"", t.entity_column())));
            }
        }
    }
}
