//! Logging callbacks: LiteLLM's `litellm_settings.callbacks` (success and failure),
//! `success_callback` and `failure_callback`, for the integrations this gateway builds.
//!
//! This module is the one place that knows the callback names ([`BUILT`]); the config loader
//! warns about any other name and it is ignored. `prometheus` is served by `crate::metrics`;
//! the logging integrations are sinks here: `langfuse` (OTLP spans to Langfuse, as LiteLLM's
//! Langfuse v4 logger sends them), `otel` (OpenTelemetry spans over OTLP/HTTP, as LiteLLM's
//! OpenTelemetry logger emits them), `datadog` (LiteLLM's `StandardLoggingPayload` as Datadog
//! log entries) and `generic_api` (the same payload as a JSON array).
//!
//! Off the request path: when no logging callback is configured, `AppState::callbacks` is
//! `None` and a call does nothing more than check it. When one is, a request builds its
//! [`capture::CallCapture`] once (input only when message logging is on), each finished attempt
//! becomes a [`capture::CallbackEvent`] (from the same facts as its spend-log row), queued
//! without waiting to each sink that wants it; each sink's task builds the payloads and sends
//! them in batches ([`sink`]). Shutdown flushes the queues.

pub mod capture;
pub mod datadog;
pub mod generic_api;
pub mod langfuse;
pub mod otel;
pub mod otlp;
pub mod payload;
pub mod sink;

use crate::config::LoadedConfig;
use crate::middleware::auth::AuthCtx;
use axum::http::HeaderMap;
use capture::{CallCapture, CallbackEvent};
use serde_json::Value;
use sink::{Delivery, SinkHandle};
use std::sync::Arc;
use std::time::Duration;

/// Served by `crate::metrics` (`/metrics`), not a sink.
pub const PROMETHEUS: &str = "prometheus";
pub const LANGFUSE: &str = "langfuse";
pub const GENERIC_API: &str = "generic_api";
pub const OTEL: &str = "otel";
pub const DATADOG: &str = "datadog";
/// Every callback name this gateway acts on.
pub const BUILT: &[&str] = &[PROMETHEUS, LANGFUSE, GENERIC_API, OTEL, DATADOG];

/// Whether a callback name is one this gateway acts on.
pub fn is_built(name: &str) -> bool {
    BUILT.contains(&name)
}

/// LiteLLM's `DEFAULT_FLUSH_INTERVAL_SECONDS` and `DEFAULT_BATCH_SIZE` (both overridable by
/// those environment variables), used by its batching loggers (`generic_api`, `datadog`).
const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_BATCH_SIZE: usize = 512;
/// Time allowed for one delivery request. LiteLLM's Langfuse exporter uses 20 s
/// (`LANGFUSE_TIMEOUT`); the same bound serves the other sinks.
const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(20);
/// Retries of a transient delivery failure, after 1, 2 and 4 s (LiteLLM's Langfuse exporter:
/// `LANGFUSE_MAX_RETRIES`, default 3, backoff doubling from 1 s).
const DEFAULT_RETRIES: usize = 3;

/// The configured logging sinks.
pub struct Callbacks {
    sinks: Vec<SinkHandle>,
    /// `litellm_settings.turn_off_message_logging`.
    turn_off_message_logging: bool,
}

/// Starts the sink `make` builds when the config names callback `name` for successes or
/// failures (`make` runs only then; `None`: it warned and stays off).
fn start_wanted<S: sink::Sink>(
    sinks: &mut Vec<SinkHandle>,
    http: &reqwest::Client,
    loaded: &LoadedConfig,
    name: &str,
    make: impl FnOnce() -> Option<(S, Delivery)>,
) {
    let (success, failure) = wanted(loaded, name);
    if success || failure {
        if let Some((sink, delivery)) = make() {
            sinks.push(SinkHandle::start(
                sink,
                http.clone(),
                delivery,
                success,
                failure,
            ));
        }
    }
}

/// Which of a name's events the config asks for: `callbacks` both, the others one each.
fn wanted(loaded: &LoadedConfig, name: &str) -> (bool, bool) {
    let s = &loaded.config.litellm_settings;
    let has = |list: &Vec<String>| list.iter().any(|n| n == name);
    let both = has(&s.callbacks);
    (
        both || has(&s.success_callback),
        both || has(&s.failure_callback),
    )
}

/// A positive whole number from the environment, else `default` (with a warning when set but
/// unusable).
fn env_count(loaded: &LoadedConfig, name: &str, default: u64, warnings: &mut Vec<String>) -> u64 {
    match loaded.env(name) {
        None => default,
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                warnings.push(format!(
                    "{name}={raw:?} is not a whole number above 0; using {default}"
                ));
                default
            }
        },
    }
}

fn retry_delays(n: usize) -> Vec<Duration> {
    (0..n)
        .map(|i| Duration::from_secs(1u64 << i.min(6)))
        .collect()
}

impl Callbacks {
    /// Starts the sinks the config names; `None` when it names none (the request path then
    /// does nothing for logging). Problems that disable a sink are returned as warnings.
    pub fn start(loaded: &LoadedConfig, http: &reqwest::Client) -> (Option<Self>, Vec<String>) {
        let mut warnings = Vec::new();
        let mut sinks = Vec::new();
        let settings = &loaded.config.litellm_settings;
        let opts = payload::PayloadOptions {
            redact_key_info: settings.redact_user_api_key_info.unwrap_or(false),
        };
        start_wanted(&mut sinks, http, loaded, LANGFUSE, || {
            let Some(lf) = langfuse::Langfuse::from_env(loaded, &opts, &mut warnings) else {
                warnings.push(
                    "callback `langfuse` is disabled: LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY must both be set".into(),
                );
                return None;
            };
            let delivery = Delivery {
                flush_every: Duration::from_secs(env_count(
                    loaded,
                    "LANGFUSE_FLUSH_INTERVAL",
                    1,
                    &mut warnings,
                )),
                batch_size: env_count(loaded, "LANGFUSE_FLUSH_AT", 512, &mut warnings) as usize,
                timeout: loaded
                    .env("LANGFUSE_TIMEOUT")
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .filter(|t| t.is_finite() && *t > 0.0)
                    .map_or(DEFAULT_SEND_TIMEOUT, Duration::from_secs_f64),
                retry_delays: retry_delays(
                    loaded
                        .env("LANGFUSE_MAX_RETRIES")
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .unwrap_or(DEFAULT_RETRIES)
                        .min(10),
                ),
                queue_capacity: sink::QUEUE_CAPACITY,
            };
            Some((lf, delivery))
        });
        start_wanted(&mut sinks, http, loaded, OTEL, || {
            otel::Otel::from_env(loaded, &opts, &mut warnings)
        });
        start_wanted(&mut sinks, http, loaded, DATADOG, || {
            datadog::Datadog::from_env(loaded, &opts, &mut warnings)
        });
        start_wanted(&mut sinks, http, loaded, GENERIC_API, || {
            let Some(endpoint) = loaded
                .env("GENERIC_LOGGER_ENDPOINT")
                .filter(|e| !e.is_empty())
            else {
                warnings.push(
                    "callback `generic_api` is disabled: GENERIC_LOGGER_ENDPOINT is not set".into(),
                );
                return None;
            };
            let sink = generic_api::GenericApi {
                endpoint,
                headers: generic_api::parse_headers(
                    loaded.env("GENERIC_LOGGER_HEADERS").as_deref(),
                ),
                opts: opts.clone(),
            };
            let delivery = Delivery {
                flush_every: Duration::from_secs(env_count(
                    loaded,
                    "DEFAULT_FLUSH_INTERVAL_SECONDS",
                    DEFAULT_FLUSH_INTERVAL.as_secs(),
                    &mut warnings,
                )),
                batch_size: env_count(
                    loaded,
                    "DEFAULT_BATCH_SIZE",
                    DEFAULT_BATCH_SIZE as u64,
                    &mut warnings,
                ) as usize,
                timeout: DEFAULT_SEND_TIMEOUT,
                retry_delays: retry_delays(DEFAULT_RETRIES),
                queue_capacity: sink::QUEUE_CAPACITY,
            };
            Some((sink, delivery))
        });
        if sinks.is_empty() {
            return (None, warnings);
        }
        let cb = Self {
            sinks,
            turn_off_message_logging: settings.turn_off_message_logging.unwrap_or(false),
        };
        (Some(cb), warnings)
    }

    /// The facts of one request the sinks need, taken once (its input only when message
    /// logging is on for it). `body` is the request without LiteLLM's own fields.
    #[expect(
        clippy::too_many_arguments,
        reason = "the request facts the handler holds; they are taken apart here once"
    )]
    pub fn capture(
        &self,
        auth: &AuthCtx,
        headers: &HeaderMap,
        route: &'static str,
        requested_model: &str,
        stream: bool,
        body: &serde_json::Map<String, Value>,
        native: Option<&serde_json::Map<String, Value>>,
        metadata: Option<&Value>,
        turn_off_flag: Option<&Value>,
    ) -> Arc<CallCapture> {
        let key = auth.key.as_deref();
        let opt_out_allowed = key.is_some_and(|k| {
            k.metadata.get("allow_client_message_redaction_opt_out") == Some(&Value::Bool(true))
        });
        let redact = capture::redaction(
            self.turn_off_message_logging,
            headers,
            turn_off_flag,
            metadata.and_then(|m| m.get("turn_off_message_logging")),
            opt_out_allowed,
        );
        let mut c = CallCapture {
            stream,
            redact,
            wants_output: !redact,
            requested_model: requested_model.to_string(),
            route,
            key_alias: key.and_then(|k| k.key_alias.clone()),
            key_spend: key.map(|k| k.spend),
            key_max_budget: key.and_then(|k| k.max_budget),
            key_budget_reset_at: key
                .and_then(|k| k.budget_reset_at)
                .map(|t| t.and_utc().to_rfc3339()),
            team_alias: auth.team_alias.clone(),
            user_email: auth.user_email.clone(),
            ..Default::default()
        };
        c.split_body(body, native);
        c.note_headers(headers);
        Arc::new(c)
    }

    /// Whether any sink logs calls that ended this way.
    pub fn wants(&self, success: bool) -> bool {
        self.sinks
            .iter()
            .any(|s| if success { s.success } else { s.failure })
    }

    /// Queues a finished call for every sink that logs it (never waits).
    pub fn dispatch(&self, ev: CallbackEvent) {
        let success = ev.succeeded();
        let ev = Arc::new(ev);
        for s in &self.sinks {
            if (success && s.success) || (!success && s.failure) {
                s.offer(&ev);
            }
        }
    }

    /// Sends everything queued so far, every sink at once.
    pub async fn flush(&self) {
        futures::future::join_all(self.sinks.iter().map(SinkHandle::flush)).await;
    }

    /// The sinks that log successful calls, by name.
    pub fn success_names(&self) -> Vec<&'static str> {
        self.sinks
            .iter()
            .filter(|s| s.success)
            .map(|s| s.label)
            .collect()
    }

    /// Events dropped so far because a sink's queue was full.
    pub fn dropped(&self) -> u64 {
        self.sinks.iter().map(SinkHandle::dropped).sum()
    }
}
