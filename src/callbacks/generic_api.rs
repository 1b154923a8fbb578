//! The `generic_api` callback: LiteLLM's `StandardLoggingPayload` of each call, posted in
//! batches to `GENERIC_LOGGER_ENDPOINT` as one JSON array (LiteLLM's default `json_array`
//! format), with `GENERIC_LOGGER_HEADERS` (`key1=value1,key2=value2`) added to
//! `Content-Type: application/json`.
//!
//! Batching as LiteLLM's `CustomBatchLogger`: every `DEFAULT_FLUSH_INTERVAL_SECONDS` (5) or
//! `DEFAULT_BATCH_SIZE` (512) events, whichever comes first.

use super::capture::CallbackEvent;
use super::payload::{standard_logging_payload, PayloadOptions};
use super::sink::{Outgoing, Sink};
use bytes::Bytes;
use serde_json::Value;

pub struct GenericApi {
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    pub opts: PayloadOptions,
}

/// `GENERIC_LOGGER_HEADERS`: `key1=value1,key2=value2`, entries without `=` ignored, keys and
/// values trimmed; they add to (or replace) `Content-Type: application/json`.
pub fn parse_headers(raw: Option<&str>) -> Vec<(String, String)> {
    let mut out = vec![("Content-Type".to_string(), "application/json".to_string())];
    for item in raw.unwrap_or("").split(',') {
        let Some((k, v)) = item.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            continue;
        }
        match out
            .iter_mut()
            .find(|(have, _)| have.eq_ignore_ascii_case(k))
        {
            Some(slot) => slot.1 = v.to_string(),
            None => out.push((k.to_string(), v.to_string())),
        }
    }
    out
}

impl Sink for GenericApi {
    type Item = Value;

    fn label(&self) -> &'static str {
        "generic_api"
    }

    fn item(&self, ev: &CallbackEvent) -> Option<Value> {
        Some(standard_logging_payload(ev, &self.opts))
    }

    fn request(&self, batch: &[Value]) -> Option<Outgoing> {
        let body = serde_json::to_vec(batch).ok()?;
        Some(Outgoing {
            url: self.endpoint.clone(),
            headers: self.headers.clone(),
            body: Bytes::from(body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_from_the_environment_form() {
        let h = parse_headers(Some("Authorization=Bearer x=y, X-Team = core ,junk"));
        assert_eq!(
            h,
            vec![
                ("Content-Type".into(), "application/json".into()),
                ("Authorization".into(), "Bearer x=y".into()),
                ("X-Team".into(), "core".into()),
            ]
        );
        let h = parse_headers(Some("content-type=application/x-ndjson"));
        assert_eq!(
            h,
            vec![("Content-Type".into(), "application/x-ndjson".into())]
        );
    }
}
