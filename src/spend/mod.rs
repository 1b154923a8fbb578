//! Cost and spend: what each call cost, budgets that hold under concurrency, and the batching
//! writer that records spend off the hot path.
//!
//! Every finished call becomes one [`SpendEvent`], pushed into a bounded channel; one writer
//! task turns them into spend-log rows and spend increments and writes them in one transaction
//! per batch (every `proxy_batch_write_at` seconds or 500 events). A failed write is kept and
//! retried, so a database blip loses nothing; shutdown flushes what is left.
//!
//! Budgets: each key's spend is also kept in memory (never below what the database says).
//! Before a call the worst-case cost (prompt estimate + `max_tokens` at the deployment's prices)
//! is reserved; a call is admitted only while spend + reservations is under `max_budget`, so
//! concurrent calls overshoot a budget by at most one call's cost. The reservation is replaced
//! by the real cost when the call ends.

pub mod audio_length;
pub mod call;
pub mod media;
pub mod model_budget;
pub mod prices;

use crate::store::{BudgetReset, KeyRow, SpendBatch, SpendLogRow, SpendSink, Store};
use chrono::NaiveDateTime;
use dashmap::DashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Wake the writer early when this many events are waiting.
const BATCH_MAX: usize = 500;
/// Failed batches are retried; beyond this many pending rows the oldest logs are dropped (the
/// spend increments are always kept).
const MAX_PENDING_LOGS: usize = 200_000;

/// One finished call, as the spend log records it.
#[derive(Debug, Clone)]
pub struct SpendEvent {
    pub log: SpendLogRow,
    pub user_id: Option<String>,
    /// Cache reads and writes of the call's usage, for the daily roll-ups (the spend log has
    /// no column for them).
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Money {
    spend: f64,
    reserved: f64,
    /// The database's `budget_reset_at` when its spend was last observed: when it moves, the
    /// budget was reset (here or on another replica) and the database figure replaces ours.
    reset_mark: Option<chrono::NaiveDateTime>,
    /// Per-model budgets only: when the current window started (unix seconds).
    window_start: Option<u64>,
    /// The soft budget was reported crossed (until the next reset).
    soft_reported: bool,
}

/// In-memory spend per key, and reservations in flight.
#[derive(Default)]
pub struct Budgets {
    keys: DashMap<String, Money>,
}

/// What over-budget looks like.
#[derive(Debug, Clone)]
pub struct OverBudget {
    pub spend: f64,
    pub max_budget: f64,
}

impl Budgets {
    /// Brings the in-memory figure up to the database's (other replicas, a restart).
    pub fn observe_db_spend(
        &self,
        key: &str,
        db_spend: f64,
        reset_at: Option<chrono::NaiveDateTime>,
    ) {
        let mut e = self.keys.entry(key.to_string()).or_default();
        if e.reset_mark != reset_at {
            e.reset_mark = reset_at;
            e.spend = db_spend;
        } else if db_spend > e.spend {
            e.spend = db_spend;
        }
    }

    pub fn spend(&self, key: &str) -> Option<f64> {
        self.keys.get(key).map(|m| m.spend)
    }

    /// Reserves `worst_case` against `max_budget`, or refuses when spend plus what is already
    /// reserved has reached the budget.
    pub fn reserve(&self, key: &str, max_budget: f64, worst_case: f64) -> Result<(), OverBudget> {
        let mut e = self.keys.entry(key.to_string()).or_default();
        if e.spend >= max_budget || e.spend + e.reserved >= max_budget {
            return Err(OverBudget {
                spend: e.spend,
                max_budget,
            });
        }
        e.reserved += worst_case;
        Ok(())
    }

    /// [`Self::reserve`] for a budget that resets every `window_secs` (a window starts with the
    /// first reservation after the previous one ended); `None` never resets.
    pub fn reserve_windowed(
        &self,
        key: &str,
        max_budget: f64,
        worst_case: f64,
        window_secs: Option<u64>,
        now_secs: u64,
    ) -> Result<(), OverBudget> {
        if let Some(w) = window_secs {
            let mut e = self.keys.entry(key.to_string()).or_default();
            let expired = e
                .window_start
                .is_none_or(|start| now_secs.saturating_sub(start) >= w);
            if expired {
                e.window_start = Some(now_secs);
                e.spend = 0.0;
            }
        }
        self.reserve(key, max_budget, worst_case)
    }

    /// Replaces a reservation by the real cost.
    pub fn settle(&self, key: &str, reserved: f64, cost: f64) {
        let mut e = self.keys.entry(key.to_string()).or_default();
        e.reserved = (e.reserved - reserved).max(0.0);
        e.spend += cost;
    }

    /// True once, the first time `key`'s spend has reached `soft_budget` (again after a reset).
    pub fn soft_budget_crossed(&self, key: &str, soft_budget: f64) -> bool {
        match self.keys.get_mut(key) {
            Some(mut e) if !e.soft_reported && e.spend >= soft_budget => {
                e.soft_reported = true;
                true
            }
            _ => false,
        }
    }

    /// Adds spend with no reservation (keys without a budget).
    pub fn add(&self, key: &str, cost: f64) {
        self.keys.entry(key.to_string()).or_default().spend += cost;
    }

    /// A manual spend reset: the budget's spend becomes `spend`; calls in flight keep their
    /// reservations and settle against the new figure.
    pub fn set_spend(&self, key: &str, spend: f64) {
        self.keys.entry(key.to_string()).or_default().spend = spend;
    }

    /// `/global/spend/reset`: every key's and team's spend back to 0 (users', tags' and the
    /// proxy-wide budgets are left as they are, as LiteLLM leaves them).
    pub fn zero_keys_and_teams(&self) {
        for mut e in self.keys.iter_mut() {
            let k = e.key();
            if !k.starts_with("user:") && !k.starts_with("tag:") && k != call::GLOBAL {
                e.spend = 0.0;
            }
        }
    }

    /// Forgets a figure no call is holding a reservation on (it is read again from the
    /// database when next needed).
    pub fn forget_idle(&self, key: &str) {
        self.keys.remove_if(key, |_, m| m.reserved <= 0.0);
    }

    pub fn reset(&self, key: &str, spend: f64) {
        self.keys.insert(
            key.to_string(),
            Money {
                spend,
                reserved: 0.0,
                reset_mark: None,
                window_start: None,
                soft_reported: false,
            },
        );
    }
}

/// The budget reset job: every `every`, budgets past their `budget_reset_at` (keys, users,
/// teams, team members, and budget rows with the end users, organizations and tags on them) go
/// back to 0 in the store and in this replica's memory, and the affected cached keys, end users
/// and tags are dropped. Other replicas see the moved `budget_reset_at` when they next load the
/// key, end user or tag.
pub async fn reset_budgets_loop(state: std::sync::Weak<crate::state::Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(state) = state.upgrade() else { return };
        let now = chrono::Utc::now().naive_utc();
        let default_end_user_budget = state
            .loaded
            .config
            .litellm_settings
            .max_end_user_budget_id
            .as_deref();
        match state
            .store
            .reset_due_budgets(now, default_end_user_budget)
            .await
        {
            Ok(reset) => {
                for r in reset {
                    tracing::info!(reset = ?r, "budget reset");
                    match r {
                        BudgetReset::Team(id) => {
                            state.budgets.reset(&team_scope(&id), 0.0);
                            state
                                .keys
                                .retain(|_, c| c.row.team_id.as_deref() != Some(&id));
                        }
                        BudgetReset::Budget(id) => {
                            state.end_users.on_budget_reset(&id, &state.budgets)
                        }
                        BudgetReset::Tag(name) => {
                            state
                                .budgets
                                .reset(&crate::middleware::tags::budget_scope(&name), 0.0);
                            state.tags.invalidate(std::iter::once(&name));
                        }
                        BudgetReset::User(id) => {
                            state.budgets.reset(&format!("user:{id}"), 0.0);
                            state
                                .keys
                                .retain(|_, c| c.row.user_id.as_deref() != Some(&id));
                        }
                        BudgetReset::Organization(id) => {
                            state.budgets.reset(&format!("org:{id}"), 0.0);
                            state.keys.retain(|_, c| {
                                c.organization
                                    .as_ref()
                                    .is_none_or(|o| o.organization_id != id)
                            });
                        }
                        BudgetReset::Member { team, user } => {
                            state.budgets.reset(&member_scope(&team, &user), 0.0);
                            state.keys.retain(|_, c| {
                                !(c.row.team_id.as_deref() == Some(team.as_str())
                                    && c.row.user_id.as_deref() == Some(user.as_str()))
                            });
                        }
                        BudgetReset::Key(id) => {
                            state.budgets.reset(&id, 0.0);
                            state.keys.remove(&id);
                            // A new budget period: the soft budget may be reported again.
                            if let Err(e) = state.store.set_soft_budget_cooldown(&id, false).await {
                                tracing::warn!("could not clear a soft budget alert: {e}");
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("budget reset check failed, will retry: {e}"),
        }
    }
}

/// The [`Budgets`] entry of a team's budget (`max_budget`), shared by all its keys.
pub fn team_scope(team_id: &str) -> String {
    format!("team:{team_id}")
}

/// The [`Budgets`] entry of a user's budget inside a team (`max_budget_in_team`).
pub fn member_scope(team_id: &str, user_id: &str) -> String {
    format!("member:{team_id}:{user_id}")
}

/// Handle to the writer task.
///
/// Calls append their events to a shared buffer (a std mutex held only for a push; never across
/// an await) and do not wake the writer: it drains the buffer on its own tick, or early when the
/// buffer reaches a batch. A per-event channel send measured as a cross-thread wake-up on every
/// request.
#[derive(Clone)]
pub struct SpendWriter {
    shared: Arc<WriterShared>,
    /// Flush requests; when every handle is gone the writer writes what is left and stops.
    flush_tx: mpsc::Sender<oneshot::Sender<()>>,
}

struct WriterShared {
    buffer: Mutex<Vec<SpendEvent>>,
    wake: tokio::sync::Notify,
}

impl SpendWriter {
    /// Starts the writer. `interval` is `proxy_batch_write_at`.
    pub fn start(store: Store, interval: Duration, disable_spend_logs: bool) -> Self {
        let (flush_tx, flush_rx) = mpsc::channel(16);
        let shared = Arc::new(WriterShared {
            buffer: Mutex::new(Vec::with_capacity(BATCH_MAX)),
            wake: tokio::sync::Notify::new(),
        });
        tokio::spawn(run_writer(
            store,
            shared.clone(),
            flush_rx,
            interval,
            disable_spend_logs,
        ));
        Self { shared, flush_tx }
    }

    /// Queues an event for the next batch.
    pub fn record(&self, ev: SpendEvent) {
        let len = match self.shared.buffer.lock() {
            Ok(mut b) => {
                b.push(ev);
                b.len()
            }
            Err(_) => {
                tracing::error!("spend buffer poisoned; a spend event was not recorded");
                return;
            }
        };
        if len == BATCH_MAX {
            self.shared.wake.notify_one();
        }
    }

    /// Writes everything queued so far; returns when done (or the writer is gone).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.flush_tx.send(tx).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run_writer(
    store: Store,
    shared: Arc<WriterShared>,
    mut flush_rx: mpsc::Receiver<oneshot::Sender<()>>,
    interval: Duration,
    disable_logs: bool,
) {
    let mut pending = SpendBatch::default();
    let mut sink = store.spend_sink();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let drain = |pending: &mut SpendBatch| {
        let events = match shared.buffer.lock() {
            // The next buffer starts with room for half as many events again as this one
            // held, instead of regrowing (and copying) from empty call by call, or again
            // whenever a drain finds a few more events than the last; an idle tick leaves it
            // empty. Not capped at a batch: under load more than a batch arrives while one is
            // written, and each regrowth copied hundreds of events.
            Ok(mut b) => {
                let n = b.len();
                std::mem::replace(&mut *b, Vec::with_capacity(n + n / 2))
            }
            Err(_) => Vec::new(),
        };
        if !disable_logs {
            pending.logs.reserve(events.len());
        }
        for ev in events {
            add(pending, ev, disable_logs);
        }
    };
    loop {
        tokio::select! {
            done = flush_rx.recv() => {
                drain(&mut pending);
                write(&mut sink, &mut pending).await;
                match done {
                    Some(done) => { let _ = done.send(()); }
                    None => return,
                }
            }
            _ = shared.wake.notified() => {
                drain(&mut pending);
                write(&mut sink, &mut pending).await;
            }
            _ = ticker.tick() => {
                drain(&mut pending);
                write(&mut sink, &mut pending).await;
                sink.close_if_idle().await;
            }
        }
    }
}

fn add(b: &mut SpendBatch, ev: SpendEvent, disable_logs: bool) {
    let cost = ev.log.spend;
    if cost > 0.0 {
        if !ev.log.api_key.is_empty() {
            bump(&mut b.key_spend, &ev.log.api_key, cost);
        }
        if let Some(u) = &ev.user_id {
            bump(&mut b.user_spend, u, cost);
        }
        if let Some(o) = &ev.log.organization_id {
            bump(&mut b.org_spend, o, cost);
        }
        // Each tag of the call once, even when the request named it twice.
        if let serde_json::Value::Array(tags) = &ev.log.request_tags {
            for (i, t) in tags.iter().enumerate() {
                if let Some(name) = t.as_str().filter(|_| !tags[..i].contains(t)) {
                    bump(&mut b.tag_spend, name, cost);
                }
            }
        }
        if let Some(t) = &ev.log.team_id {
            bump(&mut b.team_spend, t, cost);
            if let Some(u) = &ev.user_id {
                match b
                    .member_spend
                    .iter_mut()
                    .find(|(team, user, _)| team == t && user == u)
                {
                    Some((_, _, s)) => *s += cost,
                    None => b.member_spend.push((t.clone(), u.clone(), cost)),
                }
            }
        }
    }
    // Every successful call of an end user is counted, free ones too: that is what creates
    // the end user's row (LiteLLM upserts it on spend).
    if ev.log.status == "success" {
        if let Some(u) = ev.log.end_user.as_deref().filter(|u| !u.is_empty()) {
            bump(&mut b.end_user_spend, u, cost.max(0.0));
        }
    }
    // The daily roll-ups are kept whether or not spend logs are (as in LiteLLM).
    b.daily
        .add_call(&ev.log, ev.cache_read_tokens, ev.cache_creation_tokens);
    if !disable_logs {
        if b.logs.len() >= MAX_PENDING_LOGS {
            b.logs.remove(0);
            tracing::error!(
                "spend log backlog full; dropping the oldest row (spend counters are kept)"
            );
        }
        b.logs.push(ev.log);
    }
}

fn bump(v: &mut Vec<(String, f64)>, id: &str, amount: f64) {
    match v.iter_mut().find(|(k, _)| k == id) {
        Some((_, s)) => *s += amount,
        None => v.push((id.to_string(), amount)),
    }
}

async fn write(sink: &mut SpendSink, pending: &mut SpendBatch) {
    if pending.logs.is_empty()
        && pending.key_spend.is_empty()
        && pending.user_spend.is_empty()
        && pending.team_spend.is_empty()
        && pending.member_spend.is_empty()
        && pending.end_user_spend.is_empty()
        && pending.org_spend.is_empty()
        && pending.tag_spend.is_empty()
        && pending.daily.is_empty()
    {
        return;
    }
    if let Err(e) = sink.write(pending).await {
        tracing::warn!(
            rows = pending.logs.len(),
            "spend write failed, will retry: {e}"
        );
    }
}

/// A team's, user's or team member's budget, as [`Budgets`] tracks it.
#[derive(Debug, Clone)]
pub struct SharedBudget {
    /// The [`Budgets`] entry: `team:<id>`, `user:<id>` or [`member_scope`].
    pub scope: String,
    pub max_budget: f64,
    /// How the error names it (`Team=<id>`, `User=<id>`, `User=<id> in Team=<id>`).
    pub label: String,
}

/// A key as the auth layer caches it.
#[derive(Debug, Clone)]
pub struct CachedKey {
    pub row: Arc<KeyRow>,
    /// The `tags` of the key's and its team's metadata (see `AuthCtx::tags`).
    pub tags: Option<Arc<[String]>>,
    /// The alias of the key's team and the email of its user (see `AuthCtx::team_alias`).
    pub team_alias: Option<Arc<str>>,
    pub user_email: Option<Arc<str>>,
    /// The key's team was blocked when the key was loaded.
    pub team_blocked: bool,
    /// The limits of the key's team and user (`rpm_limit`, `tpm_limit`,
    /// `max_parallel_requests`) when the key was loaded: shared by all their keys.
    pub shared_limits: Vec<crate::ratelimit::Descriptor>,
    /// The `max_budget` of the key's team and user, and the key's user's `max_budget_in_team`,
    /// checked with the key's own.
    pub shared_budgets: Vec<SharedBudget>,
    /// The `model_max_budget` of the key, its user and its team (those that set one).
    pub model_budgets: Option<Arc<[model_budget::OwnerModelBudgets]>>,
    /// The organization of the key's team (or of the key), when it belongs to one.
    pub organization: Option<Arc<crate::middleware::auth::OrgGate>>,
    /// The `user_role` of the key's user row (`None`: no user row).
    pub user_role: Option<&'static str>,
    /// The pass-through routes the key's or its team's metadata grant or deny.
    pub pass_through: Option<Arc<crate::middleware::auth::PassThroughGrants>>,
    pub loaded_at: std::time::Instant,
}

/// Parses LiteLLM durations: `30s`, `30m`, `30h`, `30d`, `2w`, `1mo`, and the words
/// `hourly`/`daily`/`weekly`/`monthly`. `None` for anything else.
pub fn parse_duration(s: &str) -> Option<chrono::Duration> {
    let s = s.trim();
    match s {
        "hourly" => return Some(chrono::Duration::hours(1)),
        "daily" => return Some(chrono::Duration::days(1)),
        "weekly" => return Some(chrono::Duration::weeks(1)),
        "monthly" => return Some(chrono::Duration::days(30)),
        _ => {}
    }
    let (num, unit) = if let Some(n) = s.strip_suffix("mo") {
        (n, "mo")
    } else {
        let idx = s.find(|c: char| !c.is_ascii_digit())?;
        (&s[..idx], &s[idx..])
    };
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    Some(match unit {
        "s" => chrono::Duration::seconds(n),
        "m" => chrono::Duration::minutes(n),
        "h" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        "w" => chrono::Duration::weeks(n),
        "mo" => chrono::Duration::days(30 * n),
        _ => return None,
    })
}

pub fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Keeps a value in a mutex-guarded slot until taken once.
pub type Once<T> = Arc<Mutex<Option<T>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windowed_budget_resets_when_its_window_ends() {
        let b = Budgets::default();
        let w = Some(60);
        assert!(b.reserve_windowed("m", 1.0, 0.1, w, 1_000).is_ok());
        b.settle("m", 0.1, 1.0);
        // Same window: spent.
        assert!(b.reserve_windowed("m", 1.0, 0.1, w, 1_059).is_err());
        // Next window: spend starts again from zero.
        assert!(b.reserve_windowed("m", 1.0, 0.1, w, 1_060).is_ok());
        b.settle("m", 0.1, 0.5);
        assert_eq!(b.spend("m"), Some(0.5));
        // No window: never resets.
        assert!(b.reserve_windowed("n", 1.0, 0.0, None, 0).is_ok());
        b.settle("n", 0.0, 1.0);
        assert!(b.reserve_windowed("n", 1.0, 0.0, None, u64::MAX).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(chrono::Duration::seconds(30)));
        assert_eq!(parse_duration("2w"), Some(chrono::Duration::weeks(2)));
        assert_eq!(parse_duration("1mo"), Some(chrono::Duration::days(30)));
        assert_eq!(parse_duration("daily"), Some(chrono::Duration::days(1)));
        assert!(parse_duration("0d").is_none());
        assert!(parse_duration("soon").is_none());
        assert!(parse_duration("-1d").is_none());
    }

    #[test]
    fn reservations_bound_overshoot_to_one_call() {
        let b = Budgets::default();
        b.reset("k", 0.9);
        // Budget 1.0, each call may cost up to 0.2: only one can be in flight past 0.9.
        assert!(b.reserve("k", 1.0, 0.2).is_ok());
        assert!(b.reserve("k", 1.0, 0.2).is_err());
        b.settle("k", 0.2, 0.15);
        assert!(b.reserve("k", 1.0, 0.2).is_err(), "spend 1.05 >= budget");
        assert!((b.spend("k").unwrap() - 1.05).abs() < 1e-9);
    }
}
