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

/// The label values of one call; unset ones are written `None`.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    values: [Option<String>; LABEL_COUNT],
}

impl Labels {
    /// Sets a label; an empty value counts as unset (LiteLLM writes `None` for both).
    pub fn set(&mut self, label: Label, value: Option<&str>) -> &mut Self {
        self.values[label as usize] = value.filter(|v| !v.is_empty()).map(|v| v.replace(SEP, " "));
        self
    }

    fn get(&self, label: Label) -> &str {
        self.values[label as usize].as_deref().unwrap_or("None")
    }

    /// The series key of a metric: its label values in its label order.
    fn key(&self, labels: &[Label]) -> String {
        let mut key = String::with_capacity(labels.len() * 16);
        for (i, l) in labels.iter().enumerate() {
            if i > 0 {
                key.push(SEP);
            }
            key.push_str(self.get(*l));
        }
        key
    }
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
}

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
const DEFS: [Def; 17] = [
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
    },
    Def {
        name: "litellm_total_tokens_metric",
        help: "Total number of input + output tokens from LLM requests",
        kind: Kind::Counter,
        labels: TOKEN_LABELS,
    },
    Def {
        name: "litellm_input_tokens_metric",
        help: "Total number of input tokens from LLM requests",
        kind: Kind::Counter,
        labels: TOKEN_LABELS,
    },
    Def {
        name: "litellm_output_tokens_metric",
        help: "Total number of output tokens from LLM requests",
        kind: Kind::Counter,
        labels: TOKEN_LABELS,
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
    },
    Def {
        name: "litellm_llm_api_latency_metric",
        help: "Total latency (seconds) for a models LLM API call",
        kind: Kind::Histogram,
        labels: LLM_LATENCY_LABELS,
    },
    Def {
        name: "litellm_deployment_state",
        help: "LLM Deployment Analytics - The state of the deployment: 0 = healthy, 1 = partial outage, 2 = complete outage",
        kind: Kind::Gauge,
        labels: &[L::LitellmModelName, L::ModelId, L::ApiBase, L::ApiProvider],
    },
    Def {
        name: "litellm_deployment_success_responses",
        help: "LLM Deployment Analytics - Total number of successful LLM API calls via litellm",
        kind: Kind::Counter,
        labels: DEPLOYMENT_LABELS,
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
    },
    Def {
        name: "litellm_deployment_total_requests",
        help: "LLM Deployment Analytics - Total number of LLM API calls via litellm - success + failure",
        kind: Kind::Counter,
        labels: DEPLOYMENT_LABELS,
    },
    Def {
        name: "litellm_remaining_api_key_budget_metric",
        help: "Remaining budget for api key",
        kind: Kind::Gauge,
        labels: &[L::HashedApiKey, L::ApiKeyAlias],
    },
    Def {
        name: "litellm_api_key_max_budget_metric",
        help: "Maximum budget set for api key",
        kind: Kind::Gauge,
        labels: &[L::HashedApiKey, L::ApiKeyAlias],
    },
    Def {
        name: "litellm_remaining_team_budget_metric",
        help: "Remaining budget for team",
        kind: Kind::Gauge,
        labels: &[L::Team, L::TeamAlias],
    },
    Def {
        name: "litellm_team_max_budget_metric",
        help: "Maximum budget set for team",
        kind: Kind::Gauge,
        labels: &[L::Team, L::TeamAlias],
    },
];

/// One series' value.
enum Cell {
    Value(f64),
    Histogram {
        /// Observations at or under each bucket bound (not cumulative; summed on render).
        buckets: [u64; LATENCY_BUCKETS.len()],
        count: u64,
        sum: f64,
    },
}

/// The recorded series of every metric.
pub struct Metrics {
    series: Vec<Mutex<HashMap<String, Cell>>>,
    /// Whether `/metrics` needs a key (`litellm_settings.require_auth_for_metrics_endpoint`,
    /// on unless set to false, as in LiteLLM).
    pub require_auth: bool,
}

/// Whether a config turns LiteLLM's Prometheus callback on.
pub fn enabled(s: &crate::config::LitellmSettings) -> bool {
    [&s.callbacks, &s.success_callback, &s.failure_callback]
        .iter()
        .any(|list| list.iter().any(|n| n == "prometheus"))
}

impl Metrics {
    pub fn new(require_auth: bool) -> Self {
        Self {
            series: DEFS.iter().map(|_| Mutex::new(HashMap::new())).collect(),
            require_auth,
        }
    }

    fn update(&self, metric: Metric, labels: &Labels, f: impl FnOnce(&mut Cell)) {
        let def = &DEFS[metric as usize];
        let key = labels.key(def.labels);
        let Ok(mut map) = self.series[metric as usize].lock() else {
            return;
        };
        let cell = map.entry(key).or_insert_with(|| match def.kind {
            Kind::Histogram => Cell::Histogram {
                buckets: [0; LATENCY_BUCKETS.len()],
                count: 0,
                sum: 0.0,
            },
            Kind::Counter | Kind::Gauge => Cell::Value(0.0),
        });
        f(cell);
    }

    /// Adds `by` to a counter.
    pub fn inc(&self, metric: Metric, labels: &Labels, by: f64) {
        self.update(metric, labels, |c| {
            if let Cell::Value(v) = c {
                *v += by;
            }
        });
    }

    /// Sets a gauge.
    pub fn set(&self, metric: Metric, labels: &Labels, value: f64) {
        self.update(metric, labels, |c| {
            if let Cell::Value(v) = c {
                *v = value;
            }
        });
    }

    /// Records one observation (seconds) in a histogram.
    pub fn observe(&self, metric: Metric, labels: &Labels, secs: f64) {
        self.update(metric, labels, |c| {
            if let Cell::Histogram {
                buckets,
                count,
                sum,
            } = c
            {
                if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
                    buckets[i] += 1;
                }
                *count += 1;
                *sum += secs;
            }
        });
    }

    /// Every series as Prometheus text (exposition format 0.0.4), metrics in a fixed order.
    /// Counters are written `<name>_total`, as Prometheus' Python client writes them.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        for (def, series) in DEFS.iter().zip(&self.series) {
            let Ok(map) = series.lock() else { continue };
            let kind = match def.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {} {}", def.name, def.help);
            let _ = writeln!(out, "# TYPE {} {kind}", def.name);
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let labels = label_text(def.labels, key);
                match &map[key] {
                    Cell::Value(v) => {
                        let suffix = if def.kind == Kind::Counter {
                            "_total"
                        } else {
                            ""
                        };
                        let _ =
                            writeln!(out, "{}{suffix}{{{labels}}} {}", def.name, python_float(*v));
                    }
                    Cell::Histogram {
                        buckets,
                        count,
                        sum,
                    } => {
                        let mut seen = 0;
                        for (bound, n) in LATENCY_BUCKETS.iter().zip(buckets) {
                            seen += n;
                            let _ = writeln!(
                                out,
                                "{}_bucket{{{labels},le=\"{}\"}} {}",
                                def.name,
                                python_float(*bound),
                                python_float(seen as f64)
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{}_bucket{{{labels},le=\"+Inf\"}} {}",
                            def.name,
                            python_float(*count as f64)
                        );
                        let _ = writeln!(
                            out,
                            "{}_count{{{labels}}} {}",
                            def.name,
                            python_float(*count as f64)
                        );
                        let _ =
                            writeln!(out, "{}_sum{{{labels}}} {}", def.name, python_float(*sum));
                    }
                }
            }
        }
        out
    }
}

/// What the proxy learnt of a call before routing it: the proxy-level metrics' labels.
#[derive(Debug, Clone)]
pub struct Seen {
    pub requested_model: String,
    pub end_user: Option<String>,
}

/// The caller's labels: key hash and alias, team and alias, user and email.
fn caller_labels(auth: &AuthCtx) -> Labels {
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
    labels: Labels,
    /// When the request reached the proxy (its total latency runs from here).
    request_start: std::time::Instant,
    /// The key's hash and `max_budget`, when it has one.
    key_budget: Option<(String, f64)>,
    /// The key's team's budget entry and `max_budget`, when it has one.
    team_budget: Option<(String, f64)>,
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
        let key_budget = auth
            .key
            .as_ref()
            .zip(auth.key_hash.as_ref())
            .and_then(|(k, h)| Some((h.clone(), k.max_budget?)));
        let team_budget = auth
            .key
            .as_ref()
            .and_then(|k| k.team_id.as_deref())
            .and_then(|t| {
                let scope = format!("team:{t}");
                let b = auth.shared_budgets.iter().find(|b| b.scope == scope)?;
                Some((scope, b.max_budget))
            });
        Self {
            labels,
            request_start,
            key_budget,
            team_budget,
        }
    }
}

impl Metrics {
    /// One client request to an LLM route, as it was answered: LiteLLM's proxy-level counters.
    pub fn proxy_request(
        &self,
        auth: &AuthCtx,
        route: &str,
        headers: &HeaderMap,
        seen: Option<&Seen>,
        resp: &Response,
    ) {
        let mut l = caller_labels(auth);
        let status = resp.status();
        l.set(L::EndUser, seen.and_then(|s| s.end_user.as_deref()))
            .set(L::RequestedModel, seen.map(|s| s.requested_model.as_str()))
            .set(L::Route, Some(route))
            .set(L::UserAgent, header_text(headers, "user-agent"))
            .set(
                L::ModelId,
                header_text(resp.headers(), "x-litellm-model-id"),
            )
            .set(L::StatusCode, Some(status.as_str()));
        self.inc(Metric::ProxyTotalRequests, &l, 1.0);
        if status.is_client_error() || status.is_server_error() {
            let class = resp
                .extensions()
                .get::<ErrorMarker>()
                .map(|m| m.0.litellm_name());
            l.set(L::ExceptionStatus, Some(status.as_str()))
                .set(L::ExceptionClass, class);
            self.inc(Metric::ProxyFailedRequests, &l, 1.0);
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
        let l = &call.labels;
        self.inc(Metric::Requests, l, 1.0);
        self.inc(Metric::DeploymentTotalRequests, l, 1.0);
        match failure {
            None => {
                self.inc(Metric::Spend, l, cost);
                self.inc(Metric::TotalTokens, l, usage.total_tokens as f64);
                self.inc(Metric::InputTokens, l, usage.prompt_tokens as f64);
                self.inc(Metric::OutputTokens, l, usage.completion_tokens as f64);
                self.inc(Metric::DeploymentSuccessResponses, l, 1.0);
                let total = call.request_start.elapsed().as_secs_f64();
                self.observe(Metric::RequestTotalLatency, l, total);
                self.observe(Metric::LlmApiLatency, l, secs);
                self.set(Metric::DeploymentState, l, 0.0);
            }
            Some((status, class)) => {
                let mut l = l.clone();
                let status = status.to_string();
                l.set(L::ExceptionStatus, Some(&status))
                    .set(L::ExceptionClass, Some(class));
                self.inc(Metric::DeploymentFailureResponses, &l, 1.0);
                self.set(Metric::DeploymentState, &l, 1.0);
            }
        }
        if let Some((hash, max)) = &call.key_budget {
            let spent = budgets.spend(hash).unwrap_or(0.0);
            self.set(Metric::RemainingApiKeyBudget, l, max - spent);
            self.set(Metric::ApiKeyMaxBudget, l, *max);
        }
        if let Some((scope, max)) = &call.team_budget {
            let spent = budgets.spend(scope).unwrap_or(0.0);
            self.set(Metric::RemainingTeamBudget, l, max - spent);
            self.set(Metric::TeamMaxBudget, l, *max);
        }
    }

    /// A deployment taken out of rotation (cooldown): LiteLLM's "complete outage" state.
    pub fn deployment_cooled_down(&self, d: &Deployment) {
        let mut l = Labels::default();
        l.set(L::LitellmModelName, Some(&d.upstream_model))
            .set(L::ModelId, Some(&d.id))
            .set(L::ApiBase, d.api_base.as_deref())
            .set(L::ApiProvider, Some(d.provider.name()));
        self.set(Metric::DeploymentState, &l, 2.0);
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

    fn labels() -> Labels {
        let mut l = Labels::default();
        l.set(L::HashedApiKey, Some("abc"))
            .set(L::ApiKeyAlias, Some("team \"a\""))
            .set(L::Team, Some(""));
        l
    }

    #[test]
    fn counters_render_with_total_and_none_for_unset_labels() {
        let m = Metrics::new(true);
        m.inc(Metric::RemainingApiKeyBudget, &labels(), 1.0);
        m.inc(Metric::Spend, &labels(), 0.25);
        m.inc(Metric::Spend, &labels(), 0.5);
        let text = m.render();
        assert!(
            text.contains("# TYPE litellm_spend_metric counter\n"),
            "{text}"
        );
        assert!(
            text.contains("litellm_spend_metric_total{end_user=\"None\",hashed_api_key=\"abc\",api_key_alias=\"team \\\"a\\\"\",model=\"None\",team=\"None\","),
            "{text}"
        );
        assert!(text.contains("service_tier=\"None\"} 0.75\n"), "{text}");
        // A gauge has no suffix.
        assert!(
            text.contains("litellm_remaining_api_key_budget_metric{hashed_api_key=\"abc\",api_key_alias=\"team \\\"a\\\"\"} 1.0\n"),
            "{text}"
        );
    }

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::new(true);
        for secs in [0.00390625, 0.015625, 0.015625, 700.0] {
            m.observe(Metric::RequestTotalLatency, &labels(), secs);
        }
        let text = m.render();
        let line = |le: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("litellm_request_total_latency_metric_bucket")
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
        assert!(text.contains("_count{"), "{text}");
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
    }
}
