//! Prometheus metrics, LiteLLM's `prometheus` callback: the counters, histograms and gauges a
//! LiteLLM dashboard reads, under LiteLLM's names and label names, served as Prometheus text on
//! `/metrics`.
//!
//! On only when `litellm_settings.callbacks` (or `success_callback` / `failure_callback`)
//! names `prometheus`; otherwise `AppState::metrics` is `None` and nothing here runs. Each
//! series is kept per replica, as each LiteLLM worker keeps its own.
//!
//! A metric is a [`Metric`] with its label names ([`Label`]); callers fill one [`Labels`] per
//! call and each metric picks its own labels from it. A label with no value is written `None`,
//! as LiteLLM's Python client writes it. Series live in one map per metric behind a mutex held
//! only for the update (no await inside).

use crate::api::{python_float, Usage};
use crate::error::ErrorMarker;
use crate::middleware::auth::AuthCtx;
use crate::routing::Deployment;
use crate::spend::Budgets;
use axum::http::HeaderMap;
use axum::response::Response;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Latency buckets in seconds (LiteLLM's `LATENCY_BUCKETS`; the last is `+Inf`).
const LATENCY_BUCKETS: [f64; 17] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 420.0,
    600.0,
];

/// Separates label values inside a series key (never part of a value: see [`Labels::set`]).
const SEP: char = '\u{1f}';

/// The label names LiteLLM's metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    EndUser,
    User,
    UserEmail,
    HashedApiKey,
    ApiKeyAlias,
    Team,
    TeamAlias,
    RequestedModel,
    /// The upstream model (`model` in LiteLLM's v1 label set).
    Model,
    /// The upstream model (`litellm_model_name` in LiteLLM's v2 label set).
    LitellmModelName,
    ModelGroup,
    ModelId,
    ApiBase,
    ApiProvider,
    StatusCode,
    ExceptionStatus,
    ExceptionClass,
    Route,
    ClientIp,
    UserAgent,
    ServiceTier,
}

const LABEL_COUNT: usize = 21;

impl Label {
    fn name(self) -> &'static str {
        match self {
            Self::EndUser => "end_user",
            Self::User => "user",
            Self::UserEmail => "user_email",
            Self::HashedApiKey => "hashed_api_key",
            Self::ApiKeyAlias => "api_key_alias",
            Self::Team => "team",
            Self::TeamAlias => "team_alias",
            Self::RequestedModel => "requested_model",
            Self::Model => "model",
            Self::LitellmModelName => "litellm_model_name",
            Self::ModelGroup => "model_group",
            Self::ModelId => "model_id",
            Self::ApiBase => "api_base",
            Self::ApiProvider => "api_provider",
            Self::StatusCode => "status_code",
            Self::ExceptionStatus => "exception_status",
            Self::ExceptionClass => "exception_class",
            Self::Route => "route",
            Self::ClientIp => "client_ip",
            Self::UserAgent => "user_agent",
            Self::ServiceTier => "service_tier",
        }
    }
}

/// The label values of one call, borrowed; unset ones are written `None`.
#[derive(Debug, Clone, Default)]
pub struct Labels<'a> {
    values: [Option<&'a str>; LABEL_COUNT],
}

impl<'a> Labels<'a> {
    /// Sets a label; an empty value counts as unset (LiteLLM writes `None` for both).
    pub fn set(&mut self, label: Label, value: Option<&'a str>) -> &mut Self {
        self.values[label as usize] = value.filter(|v| !v.is_empty());
        self
    }

    /// The series key of a metric: its label values in its label order.
    fn key(&self, labels: &[Label]) -> String {
        let mut key = String::with_capacity(labels.len() * 24);
        for (i, l) in labels.iter().enumerate() {
            if i > 0 {
                key.push(SEP);
            }
            let value = self.values[*l as usize].unwrap_or("None");
            if value.contains(SEP) {
                key.push_str(&value.replace(SEP, " "));
            } else {
                key.push_str(value);
            }
        }
        key
    }
}

/// A key written in [`CALL_LABELS`] order, cut down to `labels` (each of which it holds).
fn project(call_key: &str, labels: &[Label]) -> String {
    let values: Vec<&str> = call_key.split(SEP).collect();
    let mut key = String::with_capacity(call_key.len());
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        let at = CALL_LABELS.iter().position(|c| c == l);
        key.push_str(at.and_then(|a| values.get(a)).copied().unwrap_or("None"));
    }
    key
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// LiteLLM's metrics that this gateway records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    ProxyTotalRequests,
    ProxyFailedRequests,
    Requests,
    Spend,
    TotalTokens,
    InputTokens,
    OutputTokens,
    RequestTotalLatency,
    LlmApiLatency,
    DeploymentState,
    DeploymentSuccessResponses,
    DeploymentFailureResponses,
    DeploymentTotalRequests,
    RemainingApiKeyBudget,
    ApiKeyMaxBudget,
    RemainingTeamBudget,
    TeamMaxBudget,
}

struct Def {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [Label],
    /// Where the values live: the metric's own series, or a field of the per-call series
    /// ([`CallCell`]), summed over the call labels the metric does not have.
    source: Source,
}

#[derive(Clone, Copy)]
enum Source {
    Own,
    /// An index into [`CallCell::counters`].
    CallCounter(usize),
    /// An index into [`CallCell::latency`].
    CallLatency(usize),
}

/// The labels of the per-call series: every label of the metrics kept there.
const CALL_LABELS: &[Label] = &[
    L::EndUser,
    L::HashedApiKey,
    L::ApiKeyAlias,
    L::Model,
    L::Team,
    L::TeamAlias,
    L::User,
    L::UserEmail,
    L::ClientIp,
    L::UserAgent,
    L::RequestedModel,
    L::ModelId,
    L::ApiProvider,
    L::ServiceTier,
    L::ModelGroup,
    L::LitellmModelName,
    L::ApiBase,
];

/// [`CallCell::counters`] slots.
const C_REQUESTS: usize = 0;
const C_SPEND: usize = 1;
const C_TOTAL_TOKENS: usize = 2;
const C_INPUT_TOKENS: usize = 3;
const C_OUTPUT_TOKENS: usize = 4;
const C_DEPLOYMENT_SUCCESS: usize = 5;
const C_DEPLOYMENT_TOTAL: usize = 6;
/// [`CallCell::latency`] slots.
const H_REQUEST_TOTAL: usize = 0;
const H_LLM_API: usize = 1;

use Label as L;

/// Labels of LiteLLM's per-caller token metrics.
const TOKEN_LABELS: &[Label] = &[
    L::EndUser,
    L::HashedApiKey,
    L::ApiKeyAlias,
    L::Model,
    L::Team,
    L::TeamAlias,
    L::User,
    L::UserEmail,
    L::RequestedModel,
    L::ModelId,
    L::ApiProvider,
];

/// Labels of LiteLLM's per-deployment request counters.
const DEPLOYMENT_LABELS: &[Label] = &[
    L::ModelGroup,
    L::RequestedModel,
    L::LitellmModelName,
    L::ModelId,
    L::ApiBase,
    L::ApiProvider,
    L::HashedApiKey,
    L::ApiKeyAlias,
    L::Team,
    L::TeamAlias,
    L::ClientIp,
    L::UserAgent,
];

/// Labels of LiteLLM's LLM-call latency histogram.
const LLM_LATENCY_LABELS: &[Label] = &[
    L::ModelGroup,
    L::Model,
    L::HashedApiKey,
    L::ApiKeyAlias,
    L::Team,
    L::TeamAlias,
    L::RequestedModel,
    L::EndUser,
    L::User,
    L::ModelId,
    L::ApiProvider,
    L::ServiceTier,
];

/// Every metric, in [`Metric`] order.
static DEFS: [Def; 17] = [
    Def {
        name: "litellm_proxy_total_requests_metric",
        help: "Total number of requests made to the proxy server - track number of client side requests",
        kind: Kind::Counter,
        labels: &[
            L::EndUser,
            L::HashedApiKey,
            L::ApiKeyAlias,
            L::RequestedModel,
            L::Team,
            L::TeamAlias,
            L::User,
            L::StatusCode,
            L::UserEmail,
            L::Route,
            L::ClientIp,
            L::UserAgent,
            L::ModelId,
            L::ApiProvider,
        ],
        source: Source::Own,
    },
    Def {
        name: "litellm_proxy_failed_requests_metric",
        help: "Total number of failed responses from proxy - the client did not get a success response from litellm proxy",
        kind: Kind::Counter,
        labels: &[
            L::EndUser,
            L::HashedApiKey,
            L::ApiKeyAlias,
            L::RequestedModel,
            L::Team,
            L::TeamAlias,
            L::User,
            L::UserEmail,
            L::ExceptionStatus,
            L::ExceptionClass,
            L::Route,
            L::ClientIp,
            L::UserAgent,
            L::ModelId,
            L::ApiProvider,
        ],
        source: Source::Own,
    },
    Def {
        name: "litellm_requests_metric",
        help: "Total number of LLM calls to litellm - track total per API Key, team, user",
        kind: Kind::Counter,
        labels: &[
            L::EndUser,
            L::HashedApiKey,
            L::ApiKeyAlias,
            L::Model,
            L::Team,
            L::TeamAlias,
            L::User,
            L::UserEmail,
            L::ClientIp,
            L::UserAgent,
            L::RequestedModel,
            L::ModelId,
            L::ApiProvider,
        ],
        source: Source::CallCounter(C_REQUESTS),
    },
    Def {
        name: "litellm_spend_metric",
        help: "Total spend on LLM requests",
        kind: Kind::Counter,
        labels: &[
            L::EndUser,
            L::HashedApiKey,
            L::ApiKeyAlias,
            L::Model,
            L::Team,
            L::TeamAlias,
            L::User,
            L::UserEmail,
            L::ClientIp,
            L::UserAgent,
            L::RequestedModel,
            L::ModelId,
            L::ApiProvider,
            L::ServiceTier,
        ],
        source: Source::CallCounter(C_SPEND),
    },
    Def {
        name: "litellm_total_tokens_metric",
        help: "Total number of input + output tokens from LLM requests",
        kind: Kind::Counter,
        labels: TOKEN_LABELS,
        source: Source::CallCounter(C_TOTAL_TOKENS),
    },
    Def {
        name: "litellm_input_tokens_metric",
        help: "Total number of input tokens from LLM requests",
        kind: Kind::Counter,
        labels: TOKEN_LABELS,
        source: Source::CallCounter(C_INPUT_TOKENS),
    },
    Def {
        name: "litellm_output_tokens_metric",
        help: "Total number of output tokens from LLM requests",
        kind: Kind::Counter,
        labels: TOKEN_LABELS,
        source: Source::CallCounter(C_OUTPUT_TOKENS),
    },
    Def {
        name: "litellm_request_total_latency_metric",
        help: "End-to-end latency (seconds) for a request to LiteLLM Proxy Server, from the moment the request reached the proxy through the end of processing",
        kind: Kind::Histogram,
        labels: &[
            L::ModelGroup,
            L::EndUser,
            L::HashedApiKey,
            L::ApiKeyAlias,
            L::RequestedModel,
            L::Team,
            L::TeamAlias,
            L::User,
            L::Model,
            L::ModelId,
            L::ApiProvider,
            L::ServiceTier,
        ],
        source: Source::CallLatency(H_REQUEST_TOTAL),
    },
    Def {
        name: "litellm_llm_api_latency_metric",
        help: "Total latency (seconds) for a models LLM API call",
        kind: Kind::Histogram,
        labels: LLM_LATENCY_LABELS,
        source: Source::CallLatency(H_LLM_API),
    },
    Def {
        name: "litellm_deployment_state",
        help: "LLM Deployment Analytics - The state of the deployment: 0 = healthy, 1 = partial outage, 2 = complete outage",
        kind: Kind::Gauge,
        labels: &[L::LitellmModelName, L::ModelId, L::ApiBase, L::ApiProvider],
        source: Source::Own,
    },
    Def {
        name: "litellm_deployment_success_responses",
        help: "LLM Deployment Analytics - Total number of successful LLM API calls via litellm",
        kind: Kind::Counter,
        labels: DEPLOYMENT_LABELS,
        source: Source::CallCounter(C_DEPLOYMENT_SUCCESS),
    },
    Def {
        name: "litellm_deployment_failure_responses",
        help: "LLM Deployment Analytics - Total number of failed LLM API calls for a specific LLM deploymeny. exception_status is the status of the exception from the llm api",
        kind: Kind::Counter,
        labels: &[
            L::ModelGroup,
            L::RequestedModel,
            L::LitellmModelName,
            L::ModelId,
            L::ApiBase,
            L::ApiProvider,
            L::ExceptionStatus,
            L::ExceptionClass,
            L::HashedApiKey,
            L::ApiKeyAlias,
            L::Team,
            L::TeamAlias,
            L::ClientIp,
            L::UserAgent,
        ],
        source: Source::Own,
    },
    Def {
        name: "litellm_deployment_total_requests",
        help: "LLM Deployment Analytics - Total number of LLM API calls via litellm - success + failure",
        kind: Kind::Counter,
        labels: DEPLOYMENT_LABELS,
        source: Source::CallCounter(C_DEPLOYMENT_TOTAL),
    },
    Def {
        name: "litellm_remaining_api_key_budget_metric",
        help: "Remaining budget for api key",
        kind: Kind::Gauge,
        labels: &[L::HashedApiKey, L::ApiKeyAlias],
        source: Source::Own,
    },
    Def {
        name: "litellm_api_key_max_budget_metric",
        help: "Maximum budget set for api key",
        kind: Kind::Gauge,
        labels: &[L::HashedApiKey, L::ApiKeyAlias],
        source: Source::Own,
    },
    Def {
        name: "litellm_remaining_team_budget_metric",
        help: "Remaining budget for team",
        kind: Kind::Gauge,
        labels: &[L::Team, L::TeamAlias],
        source: Source::Own,
    },
    Def {
        name: "litellm_team_max_budget_metric",
        help: "Maximum budget set for team",
        kind: Kind::Gauge,
        labels: &[L::Team, L::TeamAlias],
        source: Source::Own,
    },
];

/// A latency histogram: observations per bucket (not cumulative; summed on render).
#[derive(Debug, Clone, Copy, Default)]
struct Hist {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Hist {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }

    fn add(&mut self, other: &Hist) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

/// One series of a metric kept on its own.
enum Cell {
    Value(f64),
    Histogram(Hist),
}

/// Everything recorded for one combination of [`CALL_LABELS`]: one map update per call covers
/// the call, spend, token, latency and per-deployment counters.
#[derive(Debug, Clone, Copy, Default)]
struct CallCell {
    counters: [f64; 7],
    latency: [Hist; 2],
}

/// The recorded series of every metric.
pub struct Metrics {
    /// Series of the metrics kept on their own ([`Source::Own`]), by metric.
    series: Vec<Mutex<HashMap<String, Cell>>>,
    /// The per-call series, keyed in [`CALL_LABELS`] order.
    calls: Mutex<HashMap<String, CallCell>>,
    /// Whether `/metrics` needs a key (`litellm_settings.require_auth_for_metrics_endpoint`,
    /// on unless set to false, as in LiteLLM).
    pub require_auth: bool,
}

/// Whether a config turns LiteLLM's Prometheus callback on.
pub fn enabled(s: &crate::config::LitellmSettings) -> bool {
    [&s.callbacks, &s.success_callback, &s.failure_callback]
        .iter()
        .any(|list| list.iter().any(|n| n == crate::callbacks::PROMETHEUS))
}

impl Metrics {
    pub fn new(require_auth: bool) -> Self {
        Self {
            series: DEFS.iter().map(|_| Mutex::new(HashMap::new())).collect(),
            calls: Mutex::new(HashMap::new()),
            require_auth,
        }
    }

    /// Updates a metric kept on its own, under a key already in its label order.
    fn update(&self, metric: Metric, key: &str, f: impl FnOnce(&mut Cell)) {
        let def = &DEFS[metric as usize];
        let Ok(mut map) = self.series[metric as usize].lock() else {
            return;
        };
        if let Some(cell) = map.get_mut(key) {
            return f(cell);
        }
        let mut cell = match def.kind {
            Kind::Histogram => Cell::Histogram(Hist::default()),
            Kind::Counter | Kind::Gauge => Cell::Value(0.0),
        };
        f(&mut cell);
        map.insert(key.to_string(), cell);
    }

    /// Adds `by` to a counter.
    fn inc(&self, metric: Metric, key: &str, by: f64) {
        self.update(metric, key, |c| {
            if let Cell::Value(v) = c {
                *v += by;
            }
        });
    }

    /// Sets a gauge.
    fn set(&self, metric: Metric, key: &str, value: f64) {
        self.update(metric, key, |c| {
            if let Cell::Value(v) = c {
                *v = value;
            }
        });
    }

    /// The series of one metric as (label key, value), in label order: its own, or the
    /// per-call series summed over the labels it does not have.
    fn collect(&self, index: usize) -> Vec<(String, Sample)> {
        let def = &DEFS[index];
        let mut out: Vec<(String, Sample)> = match def.source {
            Source::Own => {
                let Ok(map) = self.series[index].lock() else {
                    return Vec::new();
                };
                map.iter()
                    .map(|(k, c)| {
                        let v = match c {
                            Cell::Value(v) => Sample::Value(*v),
                            Cell::Histogram(h) => Sample::Histogram(*h),
                        };
                        (k.clone(), v)
                    })
                    .collect()
            }
            Source::CallCounter(_) | Source::CallLatency(_) => {
                let Ok(calls) = self.calls.lock() else {
                    return Vec::new();
                };
                let mut merged: HashMap<String, Sample> = HashMap::new();
                for (key, cell) in calls.iter() {
                    let entry = merged.entry(project(key, def.labels));
                    match def.source {
                        Source::CallCounter(i) => {
                            if let Sample::Value(v) = entry.or_insert(Sample::Value(0.0)) {
                                *v += cell.counters[i];
                            }
                        }
                        Source::CallLatency(i) => {
                            if let Sample::Histogram(h) =
                                entry.or_insert(Sample::Histogram(Hist::default()))
                            {
                                h.add(&cell.latency[i]);
                            }
                        }
                        Source::Own => {}
                    }
                }
                merged.into_iter().collect()
            }
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every series as Prometheus text (exposition format 0.0.4), metrics in a fixed order.
    /// Counters are written `<name>_total`, as Prometheus' Python client writes them.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        for (index, def) in DEFS.iter().enumerate() {
            let kind = match def.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {} {}", def.name, def.help);
            let _ = writeln!(out, "# TYPE {} {kind}", def.name);
            for (key, sample) in self.collect(index) {
                let labels = label_text(def.labels, &key);
                let name = def.name;
                match sample {
                    Sample::Value(v) => {
                        let suffix = if def.kind == Kind::Counter {
                            "_total"
                        } else {
                            ""
                        };
                        let _ = writeln!(out, "{name}{suffix}{{{labels}}} {}", python_float(v));
                    }
                    Sample::Histogram(h) => {
                        let mut seen = 0;
                        for (bound, n) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
                            seen += n;
                            let _ = writeln!(
                                out,
                                "{name}_bucket{{{labels},le=\"{}\"}} {}",
                                python_float(*bound),
                                python_float(seen as f64)
                            );
                        }
                        let count = python_float(h.count as f64);
                        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
                        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
                        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", python_float(h.sum));
                    }
                }
            }
        }
        out
    }
}

/// A series' value as rendered.
enum Sample {
    Value(f64),
    Histogram(Hist),
}

/// What the proxy learnt of a call before routing it: the proxy-level metrics' labels.
#[derive(Debug, Clone)]
pub struct Seen {
    pub requested_model: String,
    pub end_user: Option<String>,
}

/// The caller's labels: key hash and alias, team and alias, user and email.
fn caller_labels(auth: &AuthCtx) -> Labels<'_> {
    let mut l = Labels::default();
    let key = auth.key.as_deref();
    l.set(L::HashedApiKey, auth.key_hash.as_deref())
        .set(L::ApiKeyAlias, key.and_then(|k| k.key_alias.as_deref()))
        .set(L::Team, key.and_then(|k| k.team_id.as_deref()))
        .set(L::TeamAlias, auth.team_alias.as_deref())
        .set(L::User, auth.user_id())
        .set(L::UserEmail, auth.user_email.as_deref());
    l
}

/// What one LLM call's metrics need, taken when the call starts.
#[derive(Debug)]
pub struct CallMetrics {
    /// The call's labels, as a key in [`CALL_LABELS`] order.
    key: String,
    /// Its `litellm_deployment_state` series.
    state_key: String,
    /// When the request reached the proxy (its total latency runs from here).
    request_start: std::time::Instant,
    /// The key's hash, `max_budget` and budget series, when it has a budget.
    key_budget: Option<Budget>,
    /// The key's team's budget entry, `max_budget` and budget series, when it has a budget.
    team_budget: Option<Budget>,
}

/// A budget whose remainder is reported after each call.
#[derive(Debug)]
struct Budget {
    /// The [`Budgets`] entry.
    scope: String,
    max: f64,
    /// The series of its two gauges (they share their labels).
    series: String,
}

impl CallMetrics {
    /// `requested_model` is the model the client named; `group` the model group serving it.
    pub fn new(
        auth: &AuthCtx,
        d: &Deployment,
        requested_model: &str,
        request_start: std::time::Instant,
        group: &str,
        upstream_model: &str,
        end_user: Option<&str>,
    ) -> Self {
        let mut labels = caller_labels(auth);
        labels
            .set(L::EndUser, end_user)
            .set(L::RequestedModel, Some(requested_model))
            .set(L::ModelGroup, Some(group))
            .set(L::Model, Some(upstream_model))
            .set(L::LitellmModelName, Some(upstream_model))
            .set(L::ModelId, Some(&d.id))
            .set(L::ApiBase, d.api_base.as_deref())
            .set(L::ApiProvider, Some(d.provider.name()));
        let own = |m: Metric| labels.key(DEFS[m as usize].labels);
        let key_budget = auth
            .key
            .as_ref()
            .zip(auth.key_hash.as_ref())
            .and_then(|(k, h)| {
                Some(Budget {
                    scope: h.clone(),
                    max: k.max_budget?,
                    series: own(Metric::ApiKeyMaxBudget),
                })
            });
        let team_budget = auth
            .key
            .as_ref()
            .and_then(|k| k.team_id.as_deref())
            .and_then(|t| {
                let scope = crate::spend::team_scope(t);
                let b = auth.shared_budgets.iter().find(|b| b.scope == scope)?;
                Some(Budget {
                    scope,
                    max: b.max_budget,
                    series: own(Metric::TeamMaxBudget),
                })
            });
        Self {
            key: labels.key(CALL_LABELS),
            state_key: own(Metric::DeploymentState),
            request_start,
            key_budget,
            team_budget,
        }
    }
}

/// The `route` label of a request path: LiteLLM's, with the id of the Responses API's routes on
/// a stored response written as `{response_id}` (one series per route, not per response).
fn route_label(path: &str) -> std::borrow::Cow<'_, str> {
    for base in ["/v1/responses/", "/openai/v1/responses/", "/responses/"] {
        let Some(rest) = path.strip_prefix(base) else {
            continue;
        };
        let (id, tail) = match rest.split_once('/') {
            Some((id, tail)) => (id, Some(tail)),
            None => (rest, None),
        };
        return match tail {
            _ if id.is_empty() => path.into(),
            None => format!("{base}{{response_id}}").into(),
            Some(t @ ("input_items" | "cancel")) => format!("{base}{{response_id}}/{t}").into(),
            Some(_) => path.into(),
        };
    }
    path.into()
}

impl Metrics {
    /// One client request to an LLM route, as it was answered: LiteLLM's proxy-level counters.
    /// `auth` is `None` for a request refused before its caller was known (bad or no key).
    pub fn proxy_request(
        &self,
        auth: Option<&AuthCtx>,
        route: &str,
        headers: &HeaderMap,
        seen: Option<&Seen>,
        resp: &Response,
    ) {
        let mut l = auth.map(caller_labels).unwrap_or_default();
        let status = resp.status();
        let route = route_label(route);
        l.set(L::EndUser, seen.and_then(|s| s.end_user.as_deref()))
            .set(L::RequestedModel, seen.map(|s| s.requested_model.as_str()))
            .set(L::Route, Some(route.as_ref()))
            .set(L::UserAgent, header_text(headers, "user-agent"))
            .set(
                L::ModelId,
                header_text(resp.headers(), "x-litellm-model-id"),
            )
            .set(L::StatusCode, Some(status.as_str()));
        let def = |m: Metric| DEFS[m as usize].labels;
        self.inc(
            Metric::ProxyTotalRequests,
            &l.key(def(Metric::ProxyTotalRequests)),
            1.0,
        );
        if status.is_client_error() || status.is_server_error() {
            let class = resp
                .extensions()
                .get::<ErrorMarker>()
                .map(|m| m.0.litellm_name());
            l.set(L::ExceptionStatus, Some(status.as_str()))
                .set(L::ExceptionClass, class);
            let key = l.key(def(Metric::ProxyFailedRequests));
            self.inc(Metric::ProxyFailedRequests, &key, 1.0);
        }
    }

    /// One finished LLM call to a deployment: calls, spend, tokens, latency, the deployment's
    /// counters and state, and the budgets left. `secs` is the call's own time (from the
    /// deployment being chosen to the last byte); `failure` is the error's status and class.
    pub fn llm_call(
        &self,
        call: &CallMetrics,
        usage: &Usage,
        cost: f64,
        secs: f64,
        failure: Option<(u16, &'static str)>,
        budgets: &Budgets,
    ) {
        if let Ok(mut calls) = self.calls.lock() {
            let cell = match calls.get_mut(&call.key) {
                Some(c) => c,
                None => calls.entry(call.key.clone()).or_default(),
            };
            cell.counters[C_REQUESTS] += 1.0;
            cell.counters[C_DEPLOYMENT_TOTAL] += 1.0;
            if failure.is_none() {
                cell.counters[C_SPEND] += cost;
                cell.counters[C_TOTAL_TOKENS] += usage.total_tokens as f64;
                cell.counters[C_INPUT_TOKENS] += usage.prompt_tokens as f64;
                cell.counters[C_OUTPUT_TOKENS] += usage.completion_tokens as f64;
                cell.counters[C_DEPLOYMENT_SUCCESS] += 1.0;
                cell.latency[H_REQUEST_TOTAL].observe(call.request_start.elapsed().as_secs_f64());
                cell.latency[H_LLM_API].observe(secs);
            }
        }
        let state = match failure {
            None => 0.0,
            Some((status, class)) => {
                let status = status.to_string();
                let values: Vec<&str> = call.key.split(SEP).collect();
                let mut l = Labels::default();
                for (label, value) in CALL_LABELS.iter().zip(values) {
                    l.set(*label, Some(value).filter(|v| *v != "None"));
                }
                l.set(L::ExceptionStatus, Some(&status))
                    .set(L::ExceptionClass, Some(class));
                let key = l.key(DEFS[Metric::DeploymentFailureResponses as usize].labels);
                self.inc(Metric::DeploymentFailureResponses, &key, 1.0);
                1.0
            }
        };
        self.set(Metric::DeploymentState, &call.state_key, state);
        for (b, remaining, max) in [
            (
                &call.key_budget,
                Metric::RemainingApiKeyBudget,
                Metric::ApiKeyMaxBudget,
            ),
            (
                &call.team_budget,
                Metric::RemainingTeamBudget,
                Metric::TeamMaxBudget,
            ),
        ] {
            if let Some(b) = b {
                let spent = budgets.spend(&b.scope).unwrap_or(0.0);
                self.set(remaining, &b.series, b.max - spent);
                self.set(max, &b.series, b.max);
            }
        }
    }

    /// A deployment taken out of rotation (cooldown): LiteLLM's "complete outage" state.
    pub fn deployment_cooled_down(&self, d: &Deployment) {
        let mut l = Labels::default();
        l.set(L::LitellmModelName, Some(&d.upstream_model))
            .set(L::ModelId, Some(&d.id))
            .set(L::ApiBase, d.api_base.as_deref())
            .set(L::ApiProvider, Some(d.provider.name()));
        let key = l.key(DEFS[Metric::DeploymentState as usize].labels);
        self.set(Metric::DeploymentState, &key, 2.0);
    }
}

fn header_text<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `name="value",...` for a series key, values escaped as the exposition format asks.
fn label_text(labels: &[Label], key: &str) -> String {
    let mut s = String::with_capacity(key.len() + labels.len() * 16);
    for (i, (label, value)) in labels.iter().zip(key.split(SEP)).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(label.name());
        s.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_on_a_stored_response_are_labelled_by_their_template() {
        for (path, label) in [
            ("/v1/responses/resp_abc", "/v1/responses/{response_id}"),
            (
                "/responses/resp_abc/cancel",
                "/responses/{response_id}/cancel",
            ),
            (
                "/openai/v1/responses/resp_abc/input_items",
                "/openai/v1/responses/{response_id}/input_items",
            ),
            ("/v1/responses", "/v1/responses"),
            ("/v1/responses/", "/v1/responses/"),
            ("/v1/responses/a/b", "/v1/responses/a/b"),
            ("/chat/completions", "/chat/completions"),
        ] {
            assert_eq!(route_label(path), label, "{path}");
        }
    }

    fn labels() -> Labels<'static> {
        let mut l = Labels::default();
        l.set(L::HashedApiKey, Some("abc"))
            .set(L::ApiKeyAlias, Some("team \"a\""))
            .set(L::Team, Some(""));
        l
    }

    fn own(m: Metric, l: &Labels) -> String {
        l.key(DEFS[m as usize].labels)
    }

    #[test]
    fn counters_render_with_total_and_none_for_unset_labels() {
        let m = Metrics::new(true);
        let l = labels();
        m.set(
            Metric::RemainingApiKeyBudget,
            &own(Metric::RemainingApiKeyBudget, &l),
            1.0,
        );
        m.inc(
            Metric::ProxyTotalRequests,
            &own(Metric::ProxyTotalRequests, &l),
            1.0,
        );
        m.inc(
            Metric::ProxyTotalRequests,
            &own(Metric::ProxyTotalRequests, &l),
            2.0,
        );
        let text = m.render();
        assert!(
            text.contains("# TYPE litellm_proxy_total_requests_metric counter\n"),
            "{text}"
        );
        assert!(
            text.contains("litellm_proxy_total_requests_metric_total{end_user=\"None\",hashed_api_key=\"abc\",api_key_alias=\"team \\\"a\\\"\",requested_model=\"None\",team=\"None\","),
            "{text}"
        );
        assert!(text.contains("api_provider=\"None\"} 3.0\n"), "{text}");
        // A gauge has no suffix.
        assert!(
            text.contains("litellm_remaining_api_key_budget_metric{hashed_api_key=\"abc\",api_key_alias=\"team \\\"a\\\"\"} 1.0\n"),
            "{text}"
        );
    }

    /// A call's series as [`CallMetrics::new`] keys it, from explicit label values.
    fn call(values: &[(Label, &str)]) -> CallMetrics {
        let mut l = Labels::default();
        for (label, v) in values {
            l.set(*label, Some(v));
        }
        CallMetrics {
            key: l.key(CALL_LABELS),
            state_key: l.key(DEFS[Metric::DeploymentState as usize].labels),
            request_start: std::time::Instant::now(),
            key_budget: None,
            team_budget: None,
        }
    }

    #[test]
    fn per_call_series_are_summed_into_each_metric() {
        let m = Metrics::new(true);
        let budgets = Budgets::default();
        let usage = Usage::new(7, 3);
        // Two user agents: separate call series, one `litellm_total_tokens_metric` series
        // (it has no user_agent label), two `litellm_requests_metric` series (it has).
        let a = call(&[
            (L::HashedApiKey, "k"),
            (L::Model, "gpt"),
            (L::UserAgent, "a"),
        ]);
        let b = call(&[
            (L::HashedApiKey, "k"),
            (L::Model, "gpt"),
            (L::UserAgent, "b"),
        ]);
        m.llm_call(&a, &usage, 0.5, 0.02, None, &budgets);
        m.llm_call(&b, &usage, 0.25, 0.02, None, &budgets);
        m.llm_call(
            &b,
            &Usage::default(),
            0.0,
            0.02,
            Some((503, "ServiceUnavailableError")),
            &budgets,
        );
        let text = m.render();
        let lines = |name: &str| -> Vec<&str> {
            text.lines()
                .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
                .collect()
        };
        let tokens = lines("litellm_total_tokens_metric_total");
        assert_eq!(tokens.len(), 1, "{text}");
        assert!(tokens[0].ends_with("} 20.0"), "{text}");
        let spend = lines("litellm_spend_metric_total");
        assert_eq!(spend.len(), 2, "{text}");
        let requests = lines("litellm_requests_metric_total");
        assert!(
            requests
                .iter()
                .any(|l| l.contains("user_agent=\"b\"") && l.ends_with("} 2.0")),
            "{text}"
        );
        let failures = lines("litellm_deployment_failure_responses_total");
        assert_eq!(failures.len(), 1, "{text}");
        assert!(
            failures[0]
                .contains("exception_status=\"503\",exception_class=\"ServiceUnavailableError\""),
            "{text}"
        );
        assert!(failures[0].contains("user_agent=\"b\""), "{text}");
        let state = lines("litellm_deployment_state");
        assert_eq!(state.len(), 1, "{text}");
        assert!(state[0].ends_with("} 1.0"), "the last call failed: {text}");
    }

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::new(true);
        let c = call(&[(L::ModelGroup, "g")]);
        for secs in [0.00390625, 0.015625, 0.015625, 700.0] {
            m.llm_call(&c, &Usage::default(), 0.0, secs, None, &Budgets::default());
        }
        let text = m.render();
        let line = |le: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("litellm_llm_api_latency_metric_bucket")
                        && l.contains(&format!("le=\"{le}\""))
                })
                .unwrap_or_else(|| panic!("no bucket {le}: {text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(line("0.005"), "1.0");
        assert_eq!(line("0.01"), "1.0");
        assert_eq!(line("0.025"), "3.0");
        assert_eq!(line("600.0"), "3.0");
        assert_eq!(line("+Inf"), "4.0");
        assert!(
            text.contains("litellm_llm_api_latency_metric_count{"),
            "{text}"
        );
        assert!(text.contains("} 700.03515625\n"), "{text}");
    }

    #[test]
    fn every_metric_is_described_once_in_order() {
        let text = Metrics::new(false).render();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(names.len(), DEFS.len());
        assert_eq!(names[0], "litellm_proxy_total_requests_metric");
        assert_eq!(Metric::TeamMaxBudget as usize, DEFS.len() - 1);
        assert_eq!(
            DEFS[Metric::DeploymentState as usize].name,
            "litellm_deployment_state"
        );
        // Every label of a metric kept per call is a call label (projection needs it).
        for def in &DEFS {
            if !matches!(def.source, Source::Own) {
                for l in def.labels {
                    assert!(CALL_LABELS.contains(l), "{} {l:?}", def.name);
                }
            }
        }
    }
}
