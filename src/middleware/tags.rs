//! Tags (`LiteLLM_TagTable`) as LLM calls see them: which of a call's tags carry a budget row,
//! and what that row asks for.
//!
//! A call's tags are its own (`tags`, `metadata.tags`, `x-litellm-tags`) followed by its key's
//! and team's metadata tags, the list its spend-log row records. A tag whose budget row has a
//! `max_budget` is reserved against by `spend::call` (LiteLLM's `budget_exceeded` once the
//! tag's spend reaches it); its `rpm_limit` / `tpm_limit` are counted by the rate limiter under
//! scope `tag`, as LiteLLM's v3 limiter does (which counts no `max_parallel_requests` for tags,
//! so neither does this). Tags without a row, or whose row has none of these, cost nothing.
//!
//! Mirrors LiteLLM's tag lookup: a registry of the names that have a row (at most
//! [`REGISTRY_MAX`]) is read once per `user_api_key_cache_ttl` and only the call's tags found in
//! it are looked up, each cached for the same TTL, unknown ones included; so a call whose tags
//! have no row, or are cached, costs no database round trip, and a call with no tags never
//! reaches this module. The `/tag/*` and `/budget/*` handlers drop what they change. A failed
//! read (or a database an older LiteLLM migrated, without the table) enforces nothing, as in
//! LiteLLM, and is logged.

use crate::ratelimit::Descriptor;
use crate::spend::Budgets;
use crate::state::AppState;
use crate::store::TagRow;
use arc_swap::ArcSwapOption;
use dashmap::DashMap;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// LiteLLM's `TAG_REGISTRY_MAX_SIZE`: with more tag rows than this the registry is not used
/// and every tag of a call is looked up (then cached) by name.
pub const REGISTRY_MAX: usize = 5000;
/// Most tags cached at once. Past the registry (see [`REGISTRY_MAX`]) tag names come from
/// clients, so the cache is bounded; a miss costs one query, never a wrong answer.
const MAX_CACHED: usize = 100_000;

/// A tag whose budget row governs the calls that carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct TagGate {
    pub name: String,
    /// What calls carrying the tag may spend in total; `None` = unlimited.
    pub max_budget: Option<f64>,
    /// `rpm_limit` / `tpm_limit` of the budget row, under scope `tag`.
    pub limits: Option<Descriptor>,
}

/// The tag's entry in [`Budgets`].
pub fn budget_scope(name: &str) -> String {
    format!("tag:{name}")
}

/// The names that have a row, as last read.
struct Registry {
    /// `None`: more than [`REGISTRY_MAX`] rows, every name is looked up.
    names: Option<HashSet<String>>,
    loaded_at: Instant,
}

struct Cached {
    /// `None`: no row, or a row without budget or limits.
    gate: Option<Arc<TagGate>>,
    loaded_at: Instant,
}

/// The tag registry and the tags looked up, fresh for `ttl` after they were read.
pub struct TagCache {
    registry: ArcSwapOption<Registry>,
    /// One registry read at a time: calls arriving meanwhile wait for it instead of reading too.
    loading: tokio::sync::Mutex<()>,
    map: DashMap<String, Cached>,
    ttl: Duration,
    cap: usize,
}

impl TagCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            registry: ArcSwapOption::empty(),
            loading: tokio::sync::Mutex::new(()),
            map: DashMap::new(),
            ttl,
            cap: MAX_CACHED,
        }
    }

    fn fresh_registry(&self) -> Option<Arc<Registry>> {
        self.registry
            .load_full()
            .filter(|r| r.loaded_at.elapsed() < self.ttl)
    }

    /// The registry, read from the store when missing or stale.
    async fn registry(&self, state: &AppState) -> Arc<Registry> {
        if let Some(r) = self.fresh_registry() {
            return r;
        }
        let _one = self.loading.lock().await;
        if let Some(r) = self.fresh_registry() {
            return r;
        }
        let names = match state.store.tag_names(REGISTRY_MAX as i64 + 1).await {
            Ok(names) if names.len() > REGISTRY_MAX => None,
            Ok(names) => Some(names.into_iter().collect()),
            Err(e) => {
                tracing::warn!("reading the tag registry failed; tag budgets and limits are not enforced until the next read: {e}");
                Some(HashSet::new())
            }
        };
        let r = Arc::new(Registry {
            names,
            loaded_at: Instant::now(),
        });
        self.registry.store(Some(r.clone()));
        r
    }

    fn get(&self, name: &str) -> Option<Option<Arc<TagGate>>> {
        let c = self.map.get(name)?;
        (c.loaded_at.elapsed() < self.ttl).then(|| c.gate.clone())
    }

    fn insert(&self, name: String, gate: Option<Arc<TagGate>>, budgets: &Budgets) {
        if self.map.len() >= self.cap {
            self.shrink(budgets);
        }
        self.map.insert(
            name,
            Cached {
                gate,
                loaded_at: Instant::now(),
            },
        );
    }

    /// Makes room: stale entries go (with their idle spend figures, which the database holds
    /// by now); when that frees less than half, everything goes.
    fn shrink(&self, budgets: &Budgets) {
        let ttl = self.ttl;
        self.map.retain(|name, c| {
            let fresh = c.loaded_at.elapsed() < ttl;
            if !fresh {
                budgets.forget_idle(&budget_scope(name));
            }
            fresh
        });
        if self.map.len() >= self.cap / 2 {
            for e in self.map.iter() {
                budgets.forget_idle(&budget_scope(e.key()));
            }
            self.map.clear();
        }
    }

    /// Drops tags whose rows changed; the next call carrying them reads them again.
    pub fn invalidate<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        for n in names {
            self.map.remove(n);
        }
    }

    /// A tag row was created or deleted: the registry is read again by the next tagged call.
    pub fn names_changed(&self) {
        self.registry.store(None);
    }

    /// Drops every cached tag (a budget row changed: any of them may link to it).
    pub fn clear(&self) {
        self.map.clear();
    }
}

/// The gate of a stored tag, if its budget row sets a budget or a limit. Seeing the row brings
/// this replica's figure of the tag's spend up to the database's.
fn gate_of(row: TagRow, budgets: &Budgets) -> Option<Arc<TagGate>> {
    let b = row.budget?;
    let pos = |v: Option<i64>| v.filter(|x| *x >= 0).map(|x| x as u64);
    let limits = Some(Descriptor {
        scope: "tag",
        id: row.tag_name.clone(),
        rpm: pos(b.rpm_limit),
        tpm: pos(b.tpm_limit),
        max_parallel: None,
    })
    .filter(Descriptor::is_limited);
    if b.max_budget.is_none() && limits.is_none() {
        return None;
    }
    if b.max_budget.is_some() {
        budgets.observe_db_spend(&budget_scope(&row.tag_name), row.spend, b.budget_reset_at);
    }
    Some(Arc::new(TagGate {
        name: row.tag_name,
        max_budget: b.max_budget,
        limits,
    }))
}

/// The gates of a call's tags (`own`, then `owners` — its key's and team's), in that order and
/// once each: from the cache while fresh, else read in one query and cached, unknown names
/// included. Tags the registry does not hold are never looked up.
pub async fn resolve(
    state: &AppState,
    own: &[String],
    owners: Option<&[String]>,
) -> Vec<Arc<TagGate>> {
    let cache = &state.tags;
    let registry = cache.registry(state).await;
    if registry.names.as_ref().is_some_and(HashSet::is_empty) {
        return Vec::new();
    }
    let mut candidates: Vec<&String> = Vec::new();
    for t in own.iter().chain(owners.into_iter().flatten()) {
        let known = registry.names.as_ref().is_none_or(|n| n.contains(t));
        if known && !candidates.contains(&t) {
            candidates.push(t);
        }
    }
    if candidates.is_empty() {
        return Vec::new();
    }
    let missing: Vec<String> = candidates
        .iter()
        .filter(|t| cache.get(t).is_none())
        .map(|t| (*t).clone())
        .collect();
    let mut loaded: Vec<(String, Option<Arc<TagGate>>)> = Vec::new();
    if !missing.is_empty() {
        match state.store.get_tags(&missing).await {
            Ok(rows) => {
                let mut rows = rows;
                for name in missing {
                    let row = rows
                        .iter()
                        .position(|r| r.tag_name == name)
                        .map(|i| rows.swap_remove(i));
                    let gate = row.and_then(|r| gate_of(r, &state.budgets));
                    cache.insert(name.clone(), gate.clone(), &state.budgets);
                    loaded.push((name, gate));
                }
            }
            Err(e) => {
                tracing::warn!(
                    "tag lookup failed; this call's tag budgets and limits are not enforced: {e}"
                );
            }
        }
    }
    candidates
        .into_iter()
        .filter_map(|t| match loaded.iter().find(|(n, _)| n == t) {
            Some((_, g)) => g.clone(),
            None => cache.get(t).flatten(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BudgetRow;

    fn row(name: &str, budget: Option<BudgetRow>) -> TagRow {
        TagRow {
            tag_name: name.into(),
            spend: 0.25,
            budget_id: budget.as_ref().map(|b| b.budget_id.clone()),
            budget,
            ..TagRow::default()
        }
    }

    fn budget(max: Option<f64>, rpm: Option<i64>) -> BudgetRow {
        BudgetRow {
            budget_id: "b1".into(),
            max_budget: max,
            rpm_limit: rpm,
            max_parallel_requests: Some(3),
            ..BudgetRow::default()
        }
    }

    #[test]
    fn only_rows_with_a_budget_or_a_limit_govern_calls() {
        let budgets = Budgets::default();
        assert!(gate_of(row("plain", None), &budgets).is_none());
        assert!(gate_of(row("empty", Some(budget(None, None))), &budgets).is_none());
        let g = gate_of(row("capped", Some(budget(Some(2.0), None))), &budgets).unwrap();
        assert_eq!(g.max_budget, Some(2.0));
        assert!(
            g.limits.is_none(),
            "max_parallel_requests is not a tag limit"
        );
        assert_eq!(budgets.spend("tag:capped"), Some(0.25));
        let g = gate_of(row("fast", Some(budget(None, Some(5)))), &budgets).unwrap();
        let d = g.limits.as_ref().unwrap();
        assert_eq!((d.scope, d.id.as_str(), d.rpm), ("tag", "fast", Some(5)));
        assert!(budgets.spend("tag:fast").is_none(), "no budget, no figure");
    }

    #[test]
    fn entries_expire_and_invalidate() {
        let budgets = Budgets::default();
        let cache = TagCache::new(Duration::from_millis(200));
        cache.insert("a".into(), None, &budgets);
        cache.insert(
            "b".into(),
            gate_of(row("b", Some(budget(Some(1.0), None))), &budgets),
            &budgets,
        );
        assert_eq!(cache.get("a"), Some(None));
        assert!(cache.get("b").flatten().is_some());
        cache.invalidate([&"b".to_string()]);
        assert!(cache.get("b").is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get("a").is_none(), "stale");
    }
}
