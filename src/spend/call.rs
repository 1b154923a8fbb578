//! Accounting for one call: the budget reservation taken before it, and the cost, spend
//! counters and spend-log row recorded when it ends (or is dropped unfinished).

use super::model_budget::{self, OwnerModelBudgets};
use super::now;
use super::prices::{PriceMap, Rates};
use crate::api::Usage;
use crate::callbacks::capture::{CallCapture, CallError, CallbackEvent, CallbackSlot, Output};
use crate::error::{ApiError, ErrorClass};
use crate::middleware::auth::{abbreviate_key, AuthCtx};
use crate::routing::deployment::SpendLabels;
use crate::routing::Deployment;
use crate::state::AppState;
use crate::store::SpendLogRow;
use chrono::NaiveDateTime;
use serde_json::Value;
use std::sync::Arc;

/// Key of the proxy-wide budget (`litellm_settings.max_budget`) in [`super::Budgets`].
pub(crate) const GLOBAL: &str = "__litellm_proxy_global__";
/// Output tokens assumed for the worst case when the request sets no `max_tokens` and the
/// price map knows no output limit.
const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4096;

pub struct CallAccount {
    state: AppState,
    call_id: String,
    call_type: &'static str,
    start: NaiveDateTime,
    key_hash: Option<String>,
    user_id: Option<String>,
    team_id: Option<String>,
    organization_id: Option<String>,
    end_user: Option<String>,
    /// Budgets reserved against: (budget key, amount).
    reserved: Vec<(String, f64)>,
    rates: Rates,
    model: Arc<str>,
    model_id: Arc<str>,
    group: Arc<str>,
    provider: &'static str,
    api_base: Arc<str>,
    metadata: Value,
    tags: Vec<String>,
    /// The key's soft budget and how to name the key, when it has one and it was not reported.
    soft_budget: Option<(f64, String)>,
    /// The response-cache key of the call, when caching is on.
    cache_key: Option<String>,
    /// Served from the response cache: costs nothing.
    cache_hit: bool,
    done: bool,
    /// Labels and budgets for the Prometheus metrics, when they are on.
    metrics: Option<Box<crate::metrics::CallMetrics>>,
    /// The status and class of the error that ended the call, when one did.
    failure: Option<(u16, &'static str)>,
    /// What the logging callbacks get of the call, when any is configured.
    callback: Option<Box<CallbackSlot>>,
}

/// LiteLLM's `call_type` of pass-through calls in spend logs.
pub const PASS_THROUGH_CALL_TYPE: &str = "pass_through_endpoint";
/// The spend log's `model` of a call that names none (LiteLLM's logging default).
const UNKNOWN_MODEL: &str = "unknown";

/// What accounting needs of a pass-through call.
pub struct PassThroughFacts<'a> {
    pub call_id: &'a str,
    /// `custom_llm_provider` of the row (`""` for `pass_through_endpoints` routes).
    pub provider: &'static str,
    /// The upstream URL called (the row's `api_base`).
    pub api_base: String,
    /// Tags of the request (`tags` / `x-litellm-tags` headers).
    pub tags: &'a [String],
    /// The endpoint's `cost_per_request` (0 for provider routes).
    pub cost_per_request: f64,
}

/// Request facts accounting needs.
pub struct CallFacts<'a> {
    pub call_id: &'a str,
    pub call_type: &'static str,
    /// The model the client named (the group may differ: aliases, wildcards).
    pub requested_model: &'a str,
    /// When the request reached the proxy.
    pub request_start: std::time::Instant,
    pub group: &'a str,
    pub upstream_model: &'a str,
    pub prompt_bytes: usize,
    pub max_tokens: Option<u64>,
    pub end_user: Option<&'a str>,
    /// What the end user may spend (its budget row, or the proxy-wide default), if limited.
    pub end_user_max_budget: Option<f64>,
    pub metadata: Option<&'a Value>,
    pub tags: &'a [String],
    /// The call's tags whose budget row sets a `max_budget` or limits.
    pub tag_gates: &'a [std::sync::Arc<crate::middleware::tags::TagGate>],
    /// A price known before the call (image generation, speech: see `spend::media`),
    /// reserved against budgets in place of the token estimate.
    pub expected_cost: Option<f64>,
    /// The request's facts for the logging callbacks, when any is configured.
    pub capture: Option<&'a Arc<CallCapture>>,
}

/// The per-token prices of a deployment: its own overrides, else the price map.
pub fn rates_for(d: &Deployment, upstream_model: &str) -> (Rates, Option<u64>) {
    if let Some(r) = d.rates.filter(|_| upstream_model == d.upstream_model) {
        return r;
    }
    let p = &d.config.litellm_params;
    let mi = &d.config.model_info;
    let found =
        PriceMap::global().lookup(mi.base_model.as_deref(), d.provider.name(), upstream_model);
    let mut rates = found.map(|(_, p)| Rates::from_price(p)).unwrap_or_default();
    if let Some(v) = mi.input_cost_per_token.or(p.input_cost_per_token) {
        rates.input = v;
    }
    if let Some(v) = mi.output_cost_per_token.or(p.output_cost_per_token) {
        rates.output = v;
    }
    let max_out = mi.max_output_tokens.or_else(|| {
        found.and_then(|(_, p)| p.max_output_tokens.or(p.max_tokens).map(|v| v as u64))
    });
    (rates, max_out)
}

/// Gives back what [`reserve_owner_budgets`] (or a call's other budgets) reserved.
fn release_all(state: &AppState, reserved: &[(String, f64)]) {
    for (k, amt) in reserved {
        state.budgets.settle(k, *amt, 0.0);
    }
}

/// Reserves `worst` against the proxy-wide budget and the caller's key, team and user budgets,
/// in LiteLLM's order, or refuses with its `budget_exceeded` error for the first one reached
/// (nothing stays reserved then).
fn reserve_owner_budgets(
    state: &AppState,
    auth: &AuthCtx,
    worst: f64,
    reserved: &mut Vec<(String, f64)>,
) -> Result<(), ApiError> {
    if let Some(max) = state.loaded.config.litellm_settings.max_budget {
        if let Err(o) = state.budgets.reserve(GLOBAL, max, worst) {
            return Err(budget_error(format!(
                "Budget has been exceeded! Proxy Current cost: {}, Max budget: {}",
                o.spend, o.max_budget
            )));
        }
        reserved.push((GLOBAL.to_string(), worst));
    }
    if let (Some(row), Some(hash)) = (auth.key.as_ref(), auth.key_hash.as_ref()) {
        if let Some(max) = row.max_budget {
            if let Err(o) = state.budgets.reserve(hash, max, worst) {
                release_all(state, reserved);
                let name = key_label(row, hash);
                return Err(budget_error(format!(
                    "Budget has been exceeded! Key={name} Current cost: {}, Max budget: {}",
                    o.spend, o.max_budget
                )));
            }
            reserved.push((hash.clone(), worst));
        }
    }
    for b in &auth.shared_budgets {
        if let Err(o) = state.budgets.reserve(&b.scope, b.max_budget, worst) {
            release_all(state, reserved);
            return Err(budget_error(format!(
                "Budget has been exceeded! {} Current cost: {}, Max budget: {}",
                b.label, o.spend, o.max_budget
            )));
        }
        reserved.push((b.scope.clone(), worst));
    }
    Ok(())
}

/// The budget gate of a call that costs nothing (the Responses API's routes on a stored
/// response): refused like any call once the proxy's, the key's, its team's or its user's
/// budget is reached (LiteLLM checks them when it authenticates any LLM route); nothing is
/// reserved or charged.
pub fn check_owner_budgets(state: &AppState, auth: &AuthCtx) -> Result<(), ApiError> {
    let mut reserved = Vec::new();
    reserve_owner_budgets(state, auth, 0.0, &mut reserved)?;
    release_all(state, &reserved);
    Ok(())
}

impl CallAccount {
    /// Reserves the call's worst-case cost against every budget that applies, or refuses with
    /// LiteLLM's `budget_exceeded` error before anything is sent upstream.
    pub fn begin(
        state: &AppState,
        auth: &AuthCtx,
        d: &Deployment,
        f: CallFacts<'_>,
    ) -> Result<Self, ApiError> {
        let (rates, max_out) = rates_for(d, f.upstream_model);
        let out_tokens = f
            .max_tokens
            .or(max_out)
            .unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS);
        let worst = f
            .expected_cost
            .unwrap_or_else(|| rates.cost(&Usage::new((f.prompt_bytes / 4) as u64, out_tokens)));
        let mut reserved = Vec::new();
        let release = |reserved: &Vec<(String, f64)>| release_all(state, reserved);
        reserve_owner_budgets(state, auth, worst, &mut reserved)?;
        if let Some(owners) = &auth.model_budgets {
            if let Err(e) = reserve_model_budgets(state, owners, f.group, worst, &mut reserved) {
                release(&reserved);
                return Err(e);
            }
        }
        if let (Some(id), Some(max)) = (f.end_user, f.end_user_max_budget) {
            let scope = crate::middleware::end_user::EndUser::budget_scope(id);
            if let Err(o) = state.budgets.reserve(&scope, max, worst) {
                release(&reserved);
                return Err(budget_error(format!(
                    "ExceededBudget: End User={id} over budget. Spend={}, Budget={}",
                    o.spend, o.max_budget
                )));
            }
            reserved.push((scope, worst));
        }
        for g in f.tag_gates {
            let Some(max) = g.max_budget else { continue };
            let scope = crate::middleware::tags::budget_scope(&g.name);
            if let Err(o) = state.budgets.reserve(&scope, max, worst) {
                release(&reserved);
                return Err(budget_error(format!(
                    "Budget has been exceeded! Tag={} Current cost: {}, Max budget: {}",
                    g.name,
                    crate::api::python_float(o.spend),
                    crate::api::python_float(o.max_budget)
                )));
            }
            reserved.push((scope, worst));
        }
        let mut account = Self::open(state, auth, reserved, f.call_id, f.call_type, f.tags);
        account.end_user = f.end_user.map(String::from);
        account.rates = rates;
        let labels = &d.labels;
        account.model = SpendLabels::shared(&labels.upstream_model, f.upstream_model);
        account.model_id = labels.id.clone();
        account.group = SpendLabels::shared(&labels.group, f.group);
        account.provider = d.provider.name();
        account.api_base = labels.api_base.clone();
        if let Some(m) = f.metadata {
            account.metadata = m.clone();
        }
        account.metrics = state.metrics.as_ref().map(|_| {
            Box::new(crate::metrics::CallMetrics::new(
                auth,
                d,
                f.requested_model,
                f.request_start,
                f.group,
                f.upstream_model,
                f.end_user,
            ))
        });
        account.callback = f.capture.map(|c| {
            Box::new(CallbackSlot {
                capture: c.clone(),
                deployment_model: d.config.litellm_params.model.clone(),
                output: None,
                error: None,
                completion_start: None,
            })
        });
        Ok(account)
    }

    /// A pass-through call (`crate::passthrough`): its `cost_per_request` is reserved against
    /// the caller's budgets (so a spent budget refuses it, as LiteLLM's auth checks do); the
    /// model and cost are known only from the answer (see [`Self::set_model`]).
    pub fn begin_pass_through(
        state: &AppState,
        auth: &AuthCtx,
        f: PassThroughFacts<'_>,
    ) -> Result<Self, ApiError> {
        let mut reserved = Vec::new();
        reserve_owner_budgets(state, auth, f.cost_per_request, &mut reserved)?;
        let mut account = Self::open(
            state,
            auth,
            reserved,
            f.call_id,
            PASS_THROUGH_CALL_TYPE,
            f.tags,
        );
        account.model = UNKNOWN_MODEL.into();
        account.provider = f.provider;
        account.api_base = f.api_base.into();
        Ok(account)
    }

    /// An account with nothing known of the call but its caller and reservations.
    fn open(
        state: &AppState,
        auth: &AuthCtx,
        reserved: Vec<(String, f64)>,
        call_id: &str,
        call_type: &'static str,
        tags: &[String],
    ) -> Self {
        let key = auth.key.as_ref();
        Self {
            state: state.clone(),
            call_id: call_id.to_string(),
            call_type,
            start: now(),
            key_hash: auth.key_hash.clone(),
            user_id: key.and_then(|k| k.user_id.clone()),
            team_id: key.and_then(|k| k.team_id.clone()),
            organization_id: auth
                .organization
                .as_ref()
                .map(|o| o.organization_id.clone()),
            end_user: None,
            reserved,
            rates: Rates::default(),
            model: SpendLabels::empty(),
            model_id: SpendLabels::empty(),
            group: SpendLabels::empty(),
            provider: "",
            api_base: SpendLabels::empty(),
            metadata: Value::Object(Default::default()),
            tags: with_owner_tags(tags, auth.tags.as_deref()),
            soft_budget: key.and_then(|k| {
                let soft = k.soft_budget.filter(|_| !k.soft_budget_cooldown)?;
                Some((
                    soft,
                    key_label(k, auth.key_hash.as_deref().unwrap_or_default()),
                ))
            }),
            cache_key: None,
            cache_hit: false,
            done: false,
            metrics: None,
            failure: None,
            callback: None,
        }
    }

    /// The model a pass-through call's answer (or request) named, for its spend-log row.
    pub fn set_model(&mut self, model: &str) {
        self.model = model.into();
    }

    /// Notes the error that ended the call (its failure metrics and logging callbacks name it).
    pub fn failed(&mut self, e: &ApiError) {
        self.failure = Some((e.status().as_u16(), e.class.litellm_name()));
        if let Some(cb) = self.callback.as_deref_mut() {
            cb.error = Some(CallError {
                status: e.status().as_u16(),
                class: e.class.litellm_name(),
                message: e.message.clone(),
                provider: self.provider,
            });
        }
    }

    /// Keeps the call's response for the logging callbacks (no-op when none is configured).
    pub fn set_output(&mut self, output: Output) {
        if let Some(cb) = self.callback.as_deref_mut() {
            cb.output = Some(output);
        }
    }

    /// Notes when a stream's first chunk arrived (for the logging callbacks).
    pub fn set_completion_start(&mut self, at: NaiveDateTime) {
        if let Some(cb) = self.callback.as_deref_mut() {
            cb.completion_start = Some(at);
        }
    }

    /// Records the call's response-cache key in its spend-log row.
    pub fn set_cache_key(&mut self, key: &str) {
        self.cache_key = Some(key.to_string());
    }

    /// Records a call answered from the response cache: no cost, `cache_hit` "True".
    pub fn finish_cached(mut self, usage: Usage) -> (f64, Option<f64>) {
        self.cache_hit = true;
        self.finish_ref(usage)
    }

    /// Records a successful call; returns its cost and the key's spend after it.
    pub fn finish_ref(mut self, usage: Usage) -> (f64, Option<f64>) {
        let cost = self.record(usage, "success", None);
        (cost, self.key_spend())
    }

    /// Records a call that failed after using tokens (a stream cut after its first event):
    /// they are charged, and the spend-log row and logging callbacks say `failure`.
    pub fn finish_failed(mut self, usage: Usage) -> f64 {
        self.record(usage, "failure", None)
    }

    /// Records a successful call whose cost is not a matter of token rates (images, speech:
    /// `spend::media`); returns it and the key's spend after it.
    pub fn finish_priced(mut self, usage: Usage, cost: f64) -> (f64, Option<f64>) {
        let cost = self.record(usage, "success", Some(cost));
        (cost, self.key_spend())
    }

    /// The key's spend as this replica knows it (for `x-litellm-key-spend`).
    pub fn key_spend(&self) -> Option<f64> {
        self.key_hash
            .as_ref()
            .and_then(|h| self.state.budgets.spend(h))
    }

    fn record(&mut self, usage: Usage, status: &'static str, priced: Option<f64>) -> f64 {
        if self.done {
            return 0.0;
        }
        self.done = true;
        let cost = if self.cache_hit {
            0.0
        } else {
            priced.unwrap_or_else(|| self.rates.cost(&usage))
        };
        let reserved = std::mem::take(&mut self.reserved);
        for (k, amt) in &reserved {
            self.state.budgets.settle(k, *amt, cost);
        }
        if let Some(h) = &self.key_hash {
            if !reserved.iter().any(|(k, _)| k == h) {
                self.state.budgets.add(h, cost);
            }
            if let Some((soft, label)) = &self.soft_budget {
                if self.state.budgets.soft_budget_crossed(h, *soft) {
                    report_soft_budget(&self.state, h, *soft, label);
                }
            }
        }
        // The account is finished: its strings move into the row instead of being copied; the
        // deployment's labels are shared with it (a reference count, not a copy).
        let end = now();
        if let (Some(m), Some(c)) = (&self.state.metrics, self.metrics.as_deref()) {
            let secs = (end - self.start)
                .num_microseconds()
                .map_or(0.0, |us| us as f64 / 1e6);
            let failure = match status {
                "success" => None,
                _ => Some(self.failure.unwrap_or((500, "InternalServerError"))),
            };
            m.llm_call(c, &usage, cost, secs, failure, &self.state.budgets);
        }
        let user_id = self.user_id.take();
        let log = SpendLogRow {
            request_id: std::mem::take(&mut self.call_id),
            call_type: self.call_type.into(),
            api_key: self.key_hash.clone().unwrap_or_default(),
            spend: cost,
            total_tokens: usage.total_tokens as i64,
            prompt_tokens: usage.prompt_tokens as i64,
            completion_tokens: usage.completion_tokens as i64,
            start_time: self.start,
            end_time: end,
            request_duration_ms: Some((end - self.start).num_milliseconds()),
            completion_start_time: None,
            model: self.model.clone(),
            model_id: self.model_id.clone(),
            model_group: self.group.clone(),
            custom_llm_provider: self.provider.into(),
            api_base: self.api_base.clone(),
            // LiteLLM's columns: `user` is the key owner, `end_user` the request's `user` (""
            // when none), which `/global/spend/report?group_by=customer` groups by.
            user: user_id.clone().unwrap_or_default(),
            metadata: std::mem::take(&mut self.metadata),
            cache_hit: if self.cache_hit { "True" } else { "False" }.into(),
            cache_key: self.cache_key.take(),
            request_tags: Value::Array(
                std::mem::take(&mut self.tags)
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ),
            team_id: self.team_id.take(),
            organization_id: self.organization_id.take(),
            end_user: Some(self.end_user.take().unwrap_or_default()),
            status: status.into(),
        };
        if let Some(cb) = self.callback.take() {
            self.dispatch_callbacks(*cb, &log, usage, status);
        }
        self.state.spend.record(super::SpendEvent {
            log,
            user_id,
            cache_read_tokens: usage.cached_tokens,
            cache_creation_tokens: usage.cache_creation_tokens,
        });
        cost
    }
}

impl CallAccount {
    /// Hands the finished call to the logging callbacks that log calls ending this way.
    fn dispatch_callbacks(&self, cb: CallbackSlot, log: &SpendLogRow, usage: Usage, status: &str) {
        let Some(callbacks) = &self.state.callbacks else {
            return;
        };
        if !callbacks.wants(status == "success") {
            return;
        }
        callbacks.dispatch(CallbackEvent {
            log: log.clone(),
            usage,
            capture: cb.capture,
            deployment_model: cb.deployment_model,
            output: cb.output,
            error: cb.error,
            completion_start: cb.completion_start,
        });
    }
}

impl Drop for CallAccount {
    /// A call that never reported usage (an error, or a stream cut before any usage) releases
    /// its reservation and is logged as a failure with no cost.
    fn drop(&mut self) {
        if !self.done {
            self.record(Usage::default(), "failure", None);
        }
    }
}

/// Reserves `worst` against every `model_max_budget` entry governing `model` (a team's entry
/// gives way to the key's own for the same model, as in LiteLLM).
/// The request's tags followed by those of its key and the key's team that it does not repeat,
/// as LiteLLM merges them into the spend log's `request_tags`.
fn with_owner_tags(request: &[String], owners: Option<&[String]>) -> Vec<String> {
    let mut tags = request.to_vec();
    append_new_tags(&mut tags, owners.into_iter().flatten().map(String::as_str));
    tags
}

/// Appends the tags `tags` does not hold yet, in order (LiteLLM's tag merge).
pub(crate) fn append_new_tags<'a>(tags: &mut Vec<String>, more: impl IntoIterator<Item = &'a str>) {
    for t in more {
        if !tags.iter().any(|have| have == t) {
            tags.push(t.to_string());
        }
    }
}

fn reserve_model_budgets(
    state: &AppState,
    owners: &[OwnerModelBudgets],
    model: &str,
    worst: f64,
    reserved: &mut Vec<(String, f64)>,
) -> Result<(), ApiError> {
    let now_secs = crate::routing::strategy::unix_secs();
    let key_governs = owners
        .iter()
        .any(|o| o.owner.starts_with("key:") && model_budget::resolve(model, &o.entries).is_some());
    for o in owners {
        if o.yields_to_key && key_governs {
            continue;
        }
        let Some(e) = model_budget::resolve(model, &o.entries) else {
            continue;
        };
        let counter = o.counter(e);
        if let Err(over) =
            state
                .budgets
                .reserve_windowed(&counter, e.max_budget, worst, e.window_secs, now_secs)
        {
            return Err(budget_error(format!(
                "{}, exceeded budget for model={model}. Current cost: {}, Max budget: {}",
                o.label, over.spend, over.max_budget
            )));
        }
        reserved.push((counter, worst));
    }
    Ok(())
}

/// How errors and reports name a key: its alias, else its name, else the abbreviated hash.
fn key_label(k: &crate::store::KeyRow, hash: &str) -> String {
    k.key_alias
        .clone()
        .or_else(|| k.key_name.clone())
        .unwrap_or_else(|| abbreviate_key(hash))
}

/// A key's spend reached its soft budget: calls go on (it is not a limit); the crossing is
/// logged once and recorded on the key (`soft_budget_cooldown`, LiteLLM's "alert sent" flag),
/// so other replicas and restarts do not report it again until the budget is reset.
fn report_soft_budget(state: &AppState, hash: &str, soft: f64, label: &str) {
    tracing::warn!(key = %label, soft_budget = soft, "virtual key crossed its soft budget");
    let (state, hash) = (state.clone(), hash.to_string());
    tokio::spawn(async move {
        if let Err(e) = state.store.set_soft_budget_cooldown(&hash, true).await {
            tracing::warn!("could not record the soft budget alert: {e}");
        }
        state.keys.remove(&hash);
    });
}

fn budget_error(message: String) -> ApiError {
    ApiError::new(ErrorClass::BudgetExceeded, message)
}
