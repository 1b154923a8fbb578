//! The `datadog` callback, as LiteLLM 1.106's DataDog logger sends it: each call's
//! `StandardLoggingPayload` as one Datadog log entry, posted in batches as a gzip-compressed JSON
//! array to the Logs intake (`/api/v2/logs`).
//!
//! Destination, as LiteLLM picks it: a Datadog Agent when `LITELLM_DD_AGENT_HOST` is set
//! (`http://{host}:{LITELLM_DD_AGENT_PORT or 10518}/api/v2/logs`, `DD_API_KEY` optional),
//! otherwise the direct API, which needs `DD_API_KEY` and `DD_SITE`
//! (`https://http-intake.logs.{DD_SITE}/api/v2/logs`); `DD_BASE_URL` then replaces the base
//! (`{DD_BASE_URL}/api/v2/logs`). Requests carry `Content-Encoding: gzip`,
//! `Content-Type: application/json` and `DD-API-KEY` when there is a key.
//!
//! Each entry: `ddsource` (`DD_SOURCE`, `litellm`), `service` (`DD_SERVICE`,
//! `litellm-server`), `hostname` (`HOSTNAME`), `status` (`info`, `error` for failures),
//! `ddtags` (`env:` `DD_ENV`, `service:`, `version:` `DD_VERSION`, `HOSTNAME:`, `POD_NAME:`, a
//! `request_tag:` per request tag and `team:` the key's team alias or id), and `message`: the
//! payload as JSON, its `messages`, `response` and `error_str` cut to 10,000 characters. Batches
//! of `DD_BATCH_SIZE` (at most and by default 1,000) entries or every
//! `DEFAULT_FLUSH_INTERVAL_SECONDS` (5).
//!
//! Not built: the separate proxy-failure entry LiteLLM's post-call failure hook adds for
//! requests that fail before or outside an LLM call, Datadog APM trace ids (`dd.trace_id`),
//! `datadog_params`, team- or key-scoped Datadog settings, and the other Datadog integrations
//! (`datadog_llm_observability`, metrics, cost management).

use super::capture::CallbackEvent;
use super::payload::{self, py_json, PayloadOptions};
use super::sink::{Delivery, Outgoing, Sink};
use crate::config::LoadedConfig;
use bytes::Bytes;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

/// LiteLLM's `DD_MAX_BATCH_SIZE`: most entries per request.
const MAX_BATCH_SIZE: usize = 1000;
/// Characters of `messages`, `response` and `error_str` kept in a log entry.
const MAX_FIELD_CHARS: usize = 10_000;
const TRUNCATED: &str = "...truncated by litellm, this logger does not support large content";

pub struct Datadog {
    url: String,
    api_key: Option<String>,
    source: String,
    service: String,
    hostname: String,
    /// The tags every entry carries (`env:...,service:...,...`).
    base_tags: Vec<String>,
    opts: PayloadOptions,
}

/// A tag value as LiteLLM normalises it: lower case, characters other than letters, digits and
/// `_-:./` replaced by `_`, runs of `_` collapsed, `_` trimmed.
pub fn normalize_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.to_lowercase().chars() {
        let c = if c.is_alphanumeric() || "_-:./".contains(c) {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('_').to_string()
}

impl Datadog {
    /// The sink the environment describes, with its batching; `None` (and a warning) without a
    /// destination.
    pub fn from_env(
        loaded: &LoadedConfig,
        opts: &PayloadOptions,
        warnings: &mut Vec<String>,
    ) -> Option<(Self, Delivery)> {
        let env = |n: &str| loaded.env(n).filter(|v| !v.is_empty());
        let api_key = env("DD_API_KEY");
        let mut url = match env("LITELLM_DD_AGENT_HOST") {
            Some(host) => {
                let port = env("LITELLM_DD_AGENT_PORT").unwrap_or_else(|| "10518".into());
                format!("http://{host}:{port}/api/v2/logs")
            }
            None => match (&api_key, env("DD_SITE")) {
                (Some(_), Some(site)) => format!("https://http-intake.logs.{site}/api/v2/logs"),
                _ => {
                    warnings.push(
                        "callback `datadog` is disabled: DD_API_KEY and DD_SITE must both be set (or LITELLM_DD_AGENT_HOST)".into(),
                    );
                    return None;
                }
            },
        };
        if let Some(base) = env("DD_BASE_URL") {
            url = format!("{}/api/v2/logs", base.trim_end_matches('/'));
        }
        let service = env("DD_SERVICE").unwrap_or_else(|| "litellm-server".into());
        let hostname = env("HOSTNAME").unwrap_or_default();
        let base_tags = vec![
            format!("env:{}", env("DD_ENV").unwrap_or_else(|| "unknown".into())),
            format!("service:{service}"),
            format!(
                "version:{}",
                env("DD_VERSION").unwrap_or_else(|| "unknown".into())
            ),
            format!("HOSTNAME:{hostname}"),
            format!(
                "POD_NAME:{}",
                env("POD_NAME").unwrap_or_else(|| "unknown".into())
            ),
        ];
        let batch_size = match loaded.env("DD_BATCH_SIZE") {
            None => MAX_BATCH_SIZE,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) => n.clamp(1, MAX_BATCH_SIZE as i64) as usize,
                Err(_) => {
                    warnings.push(format!(
                        "DD_BATCH_SIZE={raw:?} is not a whole number; using {MAX_BATCH_SIZE}"
                    ));
                    MAX_BATCH_SIZE
                }
            },
        };
        let delivery = Delivery {
            flush_every: Duration::from_secs(super::env_count(
                loaded,
                "DEFAULT_FLUSH_INTERVAL_SECONDS",
                super::DEFAULT_FLUSH_INTERVAL.as_secs(),
                warnings,
            )),
            batch_size,
            timeout: super::DEFAULT_SEND_TIMEOUT,
            retry_delays: super::retry_delays(super::DEFAULT_RETRIES),
            queue_capacity: super::sink::QUEUE_CAPACITY,
        };
        let sink = Self {
            url,
            api_key,
            source: env("DD_SOURCE").unwrap_or_else(|| "litellm".into()),
            service,
            hostname,
            base_tags,
            opts: opts.clone(),
        };
        Some((sink, delivery))
    }

    /// The log entry for one call.
    pub fn entry(&self, ev: &CallbackEvent) -> Value {
        let mut slp = payload::standard_logging_payload(ev, &self.opts);
        for field in ["error_str", "messages", "response"] {
            if let Some(cut) = truncated(&slp[field]) {
                slp[field] = Value::String(cut);
            }
        }
        let mut tags = self.base_tags.clone();
        if let Some(request_tags) = slp["request_tags"].as_array() {
            for t in request_tags {
                let text = match t {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                tags.push(format!("request_tag:{}", normalize_tag(&text)));
            }
        }
        let md = &slp["metadata"];
        let team = [
            "user_api_key_team_alias",
            "team_alias",
            "user_api_key_team_id",
            "team_id",
        ]
        .iter()
        .find_map(|k| md[*k].as_str().filter(|s| !s.is_empty()));
        if let Some(team) = team {
            tags.push(format!("team:{}", normalize_tag(team)));
        }
        json!({
            "ddsource": self.source,
            "ddtags": tags.join(","),
            "hostname": self.hostname,
            "message": py_json(&slp),
            "service": self.service,
            "status": if ev.succeeded() { "info" } else { "error" },
        })
    }
}

/// A field longer than [`MAX_FIELD_CHARS`] as Python's `str()` writes it, cut; `None` when it
/// fits.
fn truncated(v: &Value) -> Option<String> {
    let text = match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        other => {
            let mut s = String::new();
            crate::cache::key::py_repr(&mut s, other);
            s
        }
    };
    if text.chars().count() <= MAX_FIELD_CHARS {
        return None;
    }
    let mut cut: String = text.chars().take(MAX_FIELD_CHARS).collect();
    cut.push_str(TRUNCATED);
    Some(cut)
}

/// `data` gzip-compressed.
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::default(),
    );
    enc.write_all(data)?;
    enc.finish()
}

impl Sink for Datadog {
    type Item = Value;

    fn label(&self) -> &'static str {
        "datadog"
    }

    fn item(&self, ev: &CallbackEvent) -> Option<Value> {
        Some(self.entry(ev))
    }

    fn request(&self, batch: &[Value]) -> Option<Outgoing> {
        let body = py_json(&Value::Array(batch.to_vec()));
        let body = match gzip(body.as_bytes()) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(callback = "datadog", error = %e, "could not compress a batch; dropping it");
                return None;
            }
        };
        let mut headers = vec![
            ("Content-Encoding".to_string(), "gzip".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
        ];
        if let Some(k) = &self.api_key {
            headers.push(("DD-API-KEY".into(), k.clone()));
        }
        Some(Outgoing {
            url: self.url.clone(),
            headers,
            body: Bytes::from(body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::payload::tests::{chat_capture, event};
    use std::io::Read;

    fn sink() -> Datadog {
        Datadog {
            url: "http://dd/api/v2/logs".into(),
            api_key: Some("dd-key".into()),
            source: "litellm".into(),
            service: "litellm-server".into(),
            hostname: String::new(),
            base_tags: vec!["env:unknown".into()],
            opts: PayloadOptions::default(),
        }
    }

    #[test]
    fn tags_are_normalised_as_litellm_does() {
        assert_eq!(normalize_tag("Team A / (prod)!"), "team_a_/_prod");
        assert_eq!(normalize_tag("__x__y__"), "x_y");
    }

    #[test]
    fn an_entry_carries_the_payload_and_a_batch_is_gzipped_json() {
        let dd = sink();
        let ok = dd.entry(&event("success", chat_capture(), None));
        assert_eq!(ok["status"], "info");
        assert_eq!(
            ok["ddtags"],
            "env:unknown,request_tag:a,request_tag:b,team:team-a"
        );
        let message: Value = serde_json::from_str(ok["message"].as_str().unwrap()).unwrap();
        assert_eq!(message["litellm_call_id"], "call-1");
        let failed = dd.entry(&event("failure", chat_capture(), None));
        assert_eq!(failed["status"], "error");

        let req = dd.request(&[ok, failed]).unwrap();
        assert!(req
            .headers
            .contains(&("DD-API-KEY".to_string(), "dd-key".to_string())));
        let mut text = String::new();
        flate2::read::GzDecoder::new(&req.body[..])
            .read_to_string(&mut text)
            .unwrap();
        let batch: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(batch.as_array().unwrap().len(), 2);
    }

    #[test]
    fn long_fields_are_cut() {
        let long = "x".repeat(MAX_FIELD_CHARS + 5);
        let cut = truncated(&Value::String(long)).unwrap();
        assert!(cut.ends_with(TRUNCATED));
        assert_eq!(cut.chars().count(), MAX_FIELD_CHARS + TRUNCATED.len());
        assert!(truncated(&json!([{"role": "user", "content": "short"}])).is_none());
    }
}
