//! The `langfuse` callback, as LiteLLM 1.106's Langfuse logger sends it: one OTLP span per call
//! (a Langfuse "generation" carrying its trace's fields), exported as protobuf to
//! `{LANGFUSE_HOST}/api/public/otel/v1/traces` with basic auth
//! (`LANGFUSE_PUBLIC_KEY:LANGFUSE_SECRET_KEY`) and the Langfuse SDK's headers.
//!
//! Span attributes use Langfuse's `langfuse.observation.*` / `langfuse.trace.*` names; what goes
//! in them follows LiteLLM's `_log_langfuse_v2`: the request metadata's `trace_id`,
//! `session_id`, `trace_name`, `generation_name`, `generation_id`, `trace_user_id` (any
//! `trace_*` key), `existing_trace_id`, `parent_observation_id`, `version`, `mask_input` /
//! `mask_output`, also sent as `langfuse_*` request headers; usage and cost details; the
//! key's alias and team in the generation metadata; level `ERROR` with the error as status
//! message on failures. Batches: `LANGFUSE_FLUSH_AT` (512) spans or every
//! `LANGFUSE_FLUSH_INTERVAL` (1 s); transient failures retried `LANGFUSE_MAX_RETRIES` (3) times.
//!
//! Not built: linked prompts (prompt management), masking functions, guardrail and grounding
//! child spans, `LANGFUSE_SAMPLE_RATE`, per-key credentials.

use super::capture::{CallbackEvent, REDACTED};
use super::otlp::{self, AnyValue, Attributes, Span, SpanKind, StatusCode};
use super::payload::{self, PayloadOptions};
use super::sink::{Outgoing, Sink};
use crate::config::LoadedConfig;
use base64::Engine;
use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// LiteLLM's default Langfuse host.
const DEFAULT_HOST: &str = "https://cloud.langfuse.com";
/// Where Langfuse takes OTLP traces (LiteLLM's `LANGFUSE_OTEL_TRACES_EXPORT_PATH` default).
const DEFAULT_EXPORT_PATH: &str = "/api/public/otel/v1/traces";
/// The tracer scope Langfuse recognises as its SDK's (other scopes are treated as foreign
/// OpenTelemetry traffic).
const SCOPE_NAME: &str = "langfuse-sdk";
/// The SDK version sent in `x-langfuse-sdk-version`: the first Langfuse SDK whose wire format
/// LiteLLM 1.106 speaks (it requires `langfuse>=4.7,<5`).
const SDK_VERSION: &str = "4.7.0";
/// Metadata keys LiteLLM never logs (`_DENIED_STEERING_KEYS`).
const DENIED_KEYS: &[&str] = &["headers", "endpoint", "caching_groups", "previous_models"];
/// Commit variables LiteLLM reads for the release when `LANGFUSE_RELEASE` is unset.
const RELEASE_ENVS: &[&str] = &[
    "RENDER_GIT_COMMIT",
    "CI_COMMIT_SHA",
    "CIRCLE_SHA1",
    "SOURCE_VERSION",
    "TRAVIS_COMMIT",
    "GIT_COMMIT",
    "GITHUB_SHA",
    "BITBUCKET_COMMIT",
    "BUILD_SOURCEVERSION",
    "DRONE_COMMIT_SHA",
];
/// Integers beyond this travel as strings (a JSON reader would round them).
const JSON_SAFE_INT: i64 = (1 << 53) - 1;

pub struct Langfuse {
    exporter: otlp::Exporter,
    opts: PayloadOptions,
    /// `litellm_settings.langfuse_default_tags`.
    default_tags: Vec<String>,
    proxy_base_url: Option<String>,
}

impl Langfuse {
    /// The sink the environment describes, or `None` without both keys.
    pub fn from_env(
        loaded: &LoadedConfig,
        opts: &PayloadOptions,
        warnings: &mut Vec<String>,
    ) -> Option<Self> {
        let public = loaded
            .env("LANGFUSE_PUBLIC_KEY")
            .filter(|s| !s.is_empty())?;
        let secret = loaded
            .env("LANGFUSE_SECRET_KEY")
            .filter(|s| !s.is_empty())?;
        let host = loaded
            .env("LANGFUSE_HOST")
            .filter(|s| !s.is_empty())
            .or_else(|| loaded.env("LANGFUSE_BASE_URL").filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let host = if host.starts_with("http://") || host.starts_with("https://") {
            host
        } else {
            format!("http://{host}")
        };
        let path = loaded
            .env("LANGFUSE_OTEL_TRACES_EXPORT_PATH")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_EXPORT_PATH.to_string());
        let endpoint = format!(
            "{}/{}",
            host.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{public}:{secret}"));
        let headers = vec![
            ("Authorization".into(), format!("Basic {auth}")),
            ("Content-Type".into(), "application/x-protobuf".into()),
            ("x-langfuse-sdk-name".into(), "python".into()),
            ("x-langfuse-sdk-version".into(), SDK_VERSION.into()),
            ("x-langfuse-public-key".into(), public),
            ("x-langfuse-ingestion-version".into(), "4".into()),
        ];
        let mut resource = Attributes::new();
        if let Some(env) = loaded
            .env("LANGFUSE_TRACING_ENVIRONMENT")
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
        {
            let valid = env.len() <= 40
                && !env.starts_with("langfuse")
                && env
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            let env = if valid {
                env
            } else {
                warnings.push(format!(
                    "LANGFUSE_TRACING_ENVIRONMENT={env:?} is not a valid Langfuse environment; traces go to \"default\""
                ));
                "default".into()
            };
            resource.push(("langfuse.environment".into(), AnyValue::Str(env)));
        }
        let release = loaded
            .env("LANGFUSE_RELEASE")
            .filter(|s| !s.is_empty())
            .or_else(|| RELEASE_ENVS.iter().find_map(|n| loaded.env(n)));
        if let Some(r) = release {
            resource.push(("langfuse.release".into(), AnyValue::Str(r)));
        }
        Some(Self {
            exporter: otlp::Exporter {
                url: endpoint,
                headers,
                resource,
                scope_name: SCOPE_NAME.into(),
                scope_version: String::new(),
            },
            opts: opts.clone(),
            default_tags: loaded
                .config
                .litellm_settings
                .langfuse_default_tags
                .clone()
                .unwrap_or_default(),
            proxy_base_url: loaded.env("PROXY_BASE_URL"),
        })
    }
}

impl Sink for Langfuse {
    type Item = Span;

    fn label(&self) -> &'static str {
        "langfuse"
    }

    fn item(&self, ev: &CallbackEvent) -> Option<Span> {
        Some(generation_span(
            ev,
            &self.opts,
            &self.default_tags,
            self.proxy_base_url.as_deref(),
        ))
    }

    fn request(&self, batch: &[Span]) -> Option<Outgoing> {
        Some(self.exporter.request(batch))
    }
}

/// A trace id as Langfuse v4 needs it (32 lower-case hex characters): a caller's id that
/// already is one (dashes removed) is kept, any other is hashed, none is random.
pub fn resolve_trace_id(id: Option<&str>) -> [u8; 16] {
    let s = id.unwrap_or("");
    let normalized = s.to_ascii_lowercase().replace('-', "");
    let mut out = [0u8; 16];
    if normalized.len() == 32
        && hex::decode_to_slice(&normalized, &mut out).is_ok()
        && out.iter().any(|b| *b != 0)
    {
        return out;
    }
    if s.is_empty() {
        return rand::random();
    }
    out.copy_from_slice(&Sha256::digest(s.as_bytes())[..16]);
    out
}

/// An observation id (16 hex characters), the same way; `None` for none.
pub fn resolve_observation_id(id: Option<&str>) -> Option<[u8; 8]> {
    let s = id.filter(|s| !s.is_empty())?;
    let normalized = s.to_ascii_lowercase().replace('-', "");
    let mut out = [0u8; 8];
    if normalized.len() == 16
        && hex::decode_to_slice(&normalized, &mut out).is_ok()
        && out.iter().any(|b| *b != 0)
    {
        return Some(out);
    }
    out.copy_from_slice(&Sha256::digest(s.as_bytes())[..8]);
    Some(out)
}

/// Python's `datetime.isoformat()` of a UTC time (microseconds only when not zero).
fn iso(t: NaiveDateTime) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = t.and_utc().timestamp_subsec_micros();
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// A value as LiteLLM's Langfuse attributes carry it: strings as they are, anything else as
/// JSON; null is left out.
fn serialized(v: &Value) -> Option<AnyValue> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(AnyValue::Str(s.clone())),
        other => Some(AnyValue::Str(other.to_string())),
    }
}

/// A metadata value: strings, booleans and JSON-safe integers as themselves, the rest as JSON.
fn metadata_value(v: &Value) -> Option<AnyValue> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(AnyValue::Str(s.clone())),
        Value::Bool(b) => Some(AnyValue::Bool(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) if (-JSON_SAFE_INT..=JSON_SAFE_INT).contains(&i) => Some(AnyValue::Int(i)),
            _ => Some(AnyValue::Str(n.to_string())),
        },
        other => Some(AnyValue::Str(other.to_string())),
    }
}

/// One `<prefix>.<key>` attribute per metadata key (a non-object as `<prefix>` itself).
fn flattened(attrs: &mut Attributes, prefix: &str, metadata: &Value) {
    match metadata {
        Value::Null => {}
        Value::Object(m) => {
            for (k, v) in m {
                if let Some(a) = metadata_value(v) {
                    attrs.push((format!("{prefix}.{k}"), a));
                }
            }
        }
        other => attrs.extend(serialized(other).map(|a| (prefix.to_string(), a))),
    }
}

/// A value as Python's `str()` writes it in a tag (`True`, `None`, strings bare).
fn python_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "" | "false" | "0" | "f" | "n" | "no" | "off"
        ),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        _ => false,
    }
}

/// Sets `key` unless the value is absent (attributes with a null value are left out).
fn put(attrs: &mut Attributes, key: &str, v: Option<AnyValue>) {
    if let Some(v) = v {
        match attrs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => attrs.push((key.to_string(), v)),
        }
    }
}

fn str_attr(s: Option<&str>) -> Option<AnyValue> {
    s.map(|s| AnyValue::Str(s.to_string()))
}

/// The span LiteLLM's Langfuse logger exports for one call.
pub fn generation_span(
    ev: &CallbackEvent,
    opts: &PayloadOptions,
    default_tags: &[String],
    proxy_base_url: Option<&str>,
) -> Span {
    let log = &ev.log;
    let c = &ev.capture;
    let succeeded = ev.succeeded();
    // The request's metadata, with `langfuse_*` headers laid over it.
    let mut metadata: Map<String, Value> = log.metadata.as_object().cloned().unwrap_or_default();
    for (name, value) in &c.langfuse_headers {
        if let Some(k) = name.strip_prefix("langfuse_") {
            metadata.insert(k.to_string(), Value::String(value.clone()));
        }
    }
    let standard = payload::standard_metadata(ev, opts);
    // What LiteLLM's proxy metadata holds besides the request's own keys.
    let key_alias = c.key_alias.as_deref();
    let mut tags: Vec<String> = log
        .request_tags
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut clean = Map::new();
    for (k, v) in &metadata {
        if default_tags.iter().any(|t| t == k) {
            tags.push(format!("{k}:{}", python_str(v)));
        }
        if !DENIED_KEYS.contains(&k.as_str()) {
            clean.insert(k.clone(), v.clone());
        }
    }
    if let Some(alias) =
        key_alias.filter(|_| default_tags.iter().any(|t| t == "user_api_key_alias"))
    {
        tags.push(format!("user_api_key_alias:{alias}"));
    }
    let cache_hit = log.cache_hit == "True";
    if default_tags.iter().any(|t| t == "cache_hit") {
        tags.push(format!(
            "cache_hit:{}",
            if cache_hit { "True" } else { "False" }
        ));
    }
    if default_tags.iter().any(|t| t == "cache_key") {
        tags.push(format!(
            "cache_key:{}",
            log.cache_key.as_deref().unwrap_or("None")
        ));
    }
    if let Some(url) = proxy_base_url.filter(|_| default_tags.iter().any(|t| t == "proxy_base_url"))
    {
        tags.push(format!("proxy_base_url:{url}"));
    }
    let session_id = clean.remove("session_id");
    let mut trace_name = clean.remove("trace_name");
    let trace_id = clean
        .remove("trace_id")
        .filter(|v| !v.is_null())
        .map(|v| python_str(&v))
        .unwrap_or_else(|| payload::trace_id(ev));
    let existing_trace_id = clean
        .remove("existing_trace_id")
        .filter(|v| !v.is_null())
        .map(|v| python_str(&v));
    let trace_id = existing_trace_id.clone().unwrap_or(trace_id);
    clean.remove("update_trace_keys");
    clean.remove("debug_langfuse");
    let mask_input = flag(clean.remove("mask_input").as_ref());
    let mask_output = flag(clean.remove("mask_output").as_ref());
    clean.remove("langfuse_masking_function");

    // Input and output.
    let call_type = &*log.call_type;
    let mut prompt = Map::new();
    prompt.insert("messages".into(), payload::messages(ev));
    if let Some(f) = &c.functions {
        prompt.insert("functions".into(), f.clone());
    }
    if let Some(t) = &c.tools {
        prompt.insert("tools".into(), t.clone());
    }
    let input = Value::Object(prompt);
    let status_message = ev.error.as_ref().map(|e| e.message.clone());
    let output: Option<Value> = if !succeeded {
        Some(Value::String(status_message.clone().unwrap_or_default()))
    } else if c.redact {
        payload::redacted_langfuse_output(call_type)
    } else {
        ev.output
            .as_ref()
            .and_then(|o| o.to_value())
            .and_then(|r| payload::langfuse_output(call_type, &r))
    };
    let gen_input = if mask_input {
        Value::String(REDACTED.into())
    } else {
        input
    };
    let gen_output = if mask_output {
        Some(Value::String(REDACTED.into()))
    } else {
        output
    };

    if trace_name.is_none() && existing_trace_id.is_none() {
        trace_name = Some(Value::String(format!("litellm-{call_type}")));
    }
    // Trace fields (a continued trace is appended to, never renamed).
    let mut trace = Map::new();
    if existing_trace_id.is_none() {
        trace.insert("name".into(), trace_name.unwrap_or(Value::Null));
        trace.insert("session_id".into(), session_id.unwrap_or(Value::Null));
        trace.insert("input".into(), gen_input.clone());
        let version = clean
            .remove("trace_version")
            .or_else(|| clean.get("version").cloned());
        trace.insert("version".into(), version.unwrap_or(Value::Null));
        trace.insert(
            "user_id".into(),
            standard
                .get("user_api_key_end_user_id")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    let trace_keys: Vec<String> = clean
        .keys()
        .filter(|k| k.starts_with("trace_"))
        .cloned()
        .collect();
    for k in trace_keys {
        let v = clean.remove(&k).unwrap_or(Value::Null);
        if existing_trace_id.is_none() {
            trace.insert(k.replace("trace_", ""), v);
        }
    }
    if existing_trace_id.is_none() {
        trace.insert("output".into(), gen_output.clone().unwrap_or(Value::Null));
        trace.insert(
            "tags".into(),
            Value::Array(tags.into_iter().map(Value::String).collect()),
        );
    }

    // Usage and cost, for an answer that reported them.
    let usage_details = succeeded.then(|| {
        let u = &ev.usage;
        json!({
            "input": u.prompt_tokens.saturating_sub(u.cached_tokens),
            "output": u.completion_tokens,
            "total": u.total_tokens,
            "cache_creation_input_tokens": u.cache_creation_tokens,
            "cache_read_input_tokens": u.cached_tokens,
        })
    });
    let cost_details = succeeded.then(|| json!({"total": log.spend}));

    let response = if succeeded {
        ev.output.as_ref().and_then(|o| o.to_value())
    } else {
        None
    };
    let response_id = response
        .as_ref()
        .and_then(|r| r.get("id"))
        .and_then(Value::as_str)
        .map(String::from);
    let requested_generation_name = clean.remove("generation_name");
    let generation_name = match (&requested_generation_name, key_alias) {
        (Some(n), _) if !n.is_null() => python_str(n),
        (_, Some(alias)) => format!("litellm:{alias}"),
        _ => format!("litellm-{call_type}"),
    };
    let generation_id = clean
        .remove("generation_id")
        .filter(|v| !v.is_null())
        .map(|v| python_str(&v))
        .or_else(|| {
            response_id
                .as_ref()
                .map(|id| format!("time-{}_{id}", log.start_time.format("%H-%M-%S-%6f")))
        });
    let mut model_parameters = c.params.clone();
    if let Some(fp) = response.as_ref().and_then(|r| r.get("system_fingerprint")) {
        if !fp.is_null() {
            model_parameters.insert("system_fingerprint".into(), fp.clone());
        }
    }
    let model_name = if ev.deployment_model.contains('/') {
        ev.deployment_model.clone()
    } else {
        log.model.to_string()
    };

    // Generation metadata: the standard metadata (requester metadata last), enrichments, ids.
    let requester = standard
        .get("requester_metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut gen_meta = Map::new();
    for (k, v) in &standard {
        if k != "requester_metadata" && !requester.contains_key(k) {
            gen_meta.insert(k.clone(), v.clone());
        }
    }
    gen_meta.insert("requester_metadata".into(), Value::Object(requester));
    gen_meta.insert("litellm_response_cost".into(), json!(log.spend));
    gen_meta.insert(
        "hidden_params".into(),
        json!({
            "model_id": log.model_id,
            "cache_key": log.cache_key,
            "api_base": log.api_base,
            "response_cost": if succeeded { json!(log.spend) } else { Value::Null },
            "litellm_overhead_time_ms": Value::Null,
            "additional_headers": Value::Null,
            "batch_models": Value::Null,
            "litellm_model_name": log.model,
            "usage_object": payload::usage_object(ev),
        }),
    );
    if !log.api_base.is_empty() {
        gen_meta.insert("api_base".into(), Value::String(log.api_base.to_string()));
    }
    gen_meta.insert("cache_hit".into(), Value::Bool(cache_hit));
    gen_meta.insert(
        "litellm_call_id".into(),
        Value::String(log.request_id.clone()),
    );
    if let Some(id) = &response_id {
        gen_meta.insert("response_id".into(), Value::String(id.clone()));
    }
    let generation_version = clean.remove("version");

    let mut attrs = Attributes::new();
    put(
        &mut attrs,
        "langfuse.observation.type",
        str_attr(Some("generation")),
    );
    put(
        &mut attrs,
        "langfuse.observation.level",
        str_attr(Some(if succeeded { "DEFAULT" } else { "ERROR" })),
    );
    if !succeeded {
        put(
            &mut attrs,
            "langfuse.observation.status_message",
            gen_output
                .as_ref()
                .and_then(Value::as_str)
                .map(|s| AnyValue::Str(s.to_string())),
        );
    }
    put(
        &mut attrs,
        "langfuse.version",
        generation_version
            .as_ref()
            .and_then(|v| (!v.is_null()).then(|| AnyValue::Str(python_str(v)))),
    );
    put(
        &mut attrs,
        "langfuse.observation.input",
        serialized(&gen_input),
    );
    put(
        &mut attrs,
        "langfuse.observation.output",
        gen_output.as_ref().and_then(serialized),
    );
    put(
        &mut attrs,
        "langfuse.observation.model.name",
        str_attr(Some(&model_name)),
    );
    put(
        &mut attrs,
        "langfuse.observation.model.parameters",
        serialized(&Value::Object(model_parameters)),
    );
    put(
        &mut attrs,
        "langfuse.observation.usage_details",
        usage_details.as_ref().and_then(serialized),
    );
    put(
        &mut attrs,
        "langfuse.observation.cost_details",
        cost_details.as_ref().and_then(serialized),
    );
    let completion_start = ev.completion_start.unwrap_or(log.end_time);
    put(
        &mut attrs,
        "langfuse.observation.completion_start_time",
        Some(AnyValue::Str(
            Value::String(iso(completion_start)).to_string(),
        )),
    );
    flattened(
        &mut attrs,
        "langfuse.observation.metadata",
        &Value::Object(gen_meta),
    );

    // Trace-level attributes ride on the generation (the trace's root observation, unless it
    // continues another trace or hangs under a parent).
    let parent_observation_id = metadata
        .get("parent_observation_id")
        .filter(|v| !v.is_null())
        .map(python_str);
    let is_root = existing_trace_id.is_none() && parent_observation_id.is_none();
    let t = |k: &str| trace.get(k).filter(|v| !v.is_null());
    put(
        &mut attrs,
        "langfuse.trace.name",
        t("name").map(|v| AnyValue::Str(python_str(v))),
    );
    put(
        &mut attrs,
        "user.id",
        t("user_id").map(|v| AnyValue::Str(python_str(v))),
    );
    put(
        &mut attrs,
        "session.id",
        t("session_id").map(|v| AnyValue::Str(python_str(v))),
    );
    put(
        &mut attrs,
        "langfuse.version",
        t("version").map(|v| AnyValue::Str(python_str(v))),
    );
    put(
        &mut attrs,
        "langfuse.release",
        t("release").map(|v| AnyValue::Str(python_str(v))),
    );
    put(
        &mut attrs,
        "langfuse.trace.public",
        t("public").map(|v| AnyValue::Bool(flag(Some(v)))),
    );
    if !(is_root && t("input") == Some(&gen_input)) {
        put(
            &mut attrs,
            "langfuse.trace.input",
            t("input").and_then(serialized),
        );
    }
    if !(is_root && t("output") == gen_output.as_ref()) {
        put(
            &mut attrs,
            "langfuse.trace.output",
            t("output").and_then(serialized),
        );
    }
    if let Some(tags) = t("tags")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        put(
            &mut attrs,
            "langfuse.trace.tags",
            Some(AnyValue::Array(
                tags.iter().map(|v| AnyValue::Str(python_str(v))).collect(),
            )),
        );
    }
    if let Some(m) = t("metadata") {
        flattened(&mut attrs, "langfuse.trace.metadata", m);
    }

    let parent = parent_observation_id
        .as_deref()
        .and_then(|p| resolve_observation_id(Some(p)))
        .or_else(|| existing_trace_id.as_ref().map(|_| rand::random()));
    Span {
        trace_id: resolve_trace_id(Some(&trace_id)),
        span_id: resolve_observation_id(generation_id.as_deref()).unwrap_or_else(rand::random),
        parent_is_remote: parent.is_some(),
        parent_span_id: parent,
        name: generation_name,
        kind: SpanKind::Internal,
        start_unix_nano: otlp::unix_nanos(log.start_time),
        end_unix_nano: otlp::unix_nanos(log.end_time),
        attributes: attrs,
        events: Vec::new(),
        status: StatusCode::Unset,
        status_message: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::capture::{CallCapture, Output};
    use crate::callbacks::payload::tests::{chat_capture, event};
    use bytes::Bytes;

    fn attr<'a>(s: &'a Span, k: &str) -> Option<&'a AnyValue> {
        s.attributes.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }
    fn str_of<'a>(s: &'a Span, k: &str) -> &'a str {
        match attr(s, k) {
            Some(AnyValue::Str(v)) => v,
            other => panic!("{k}: {other:?}"),
        }
    }

    const BODY: &str = r#"{"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#;

    #[test]
    fn ids_follow_langfuse_v4_rules() {
        let uuid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(
            hex::encode(resolve_trace_id(Some(uuid))),
            "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b"
        );
        let hashed = resolve_trace_id(Some("my-trace"));
        assert_eq!(
            hex::encode(hashed),
            hex::encode(&Sha256::digest(b"my-trace")[..16])
        );
        assert_eq!(resolve_observation_id(None), None);
        assert_eq!(
            hex::encode(resolve_observation_id(Some("00000000000000ff")).unwrap()),
            "00000000000000ff"
        );
    }

    #[test]
    fn success_span_carries_generation_and_trace_fields() {
        let ev = event(
            "success",
            chat_capture(),
            Some(Output::Json(Bytes::from_static(BODY.as_bytes()))),
        );
        let s = generation_span(&ev, &PayloadOptions::default(), &[], None);
        assert_eq!(s.name, "gen");
        assert_eq!(s.trace_id, resolve_trace_id(Some("tr-9")));
        assert_eq!(str_of(&s, "langfuse.observation.type"), "generation");
        assert_eq!(str_of(&s, "langfuse.observation.level"), "DEFAULT");
        assert_eq!(str_of(&s, "langfuse.trace.name"), "litellm-acompletion");
        assert_eq!(
            str_of(&s, "langfuse.observation.model.name"),
            "openai/gpt-4o"
        );
        let input: Value = serde_json::from_str(str_of(&s, "langfuse.observation.input")).unwrap();
        assert_eq!(input["messages"][0]["content"], "hi");
        let output: Value =
            serde_json::from_str(str_of(&s, "langfuse.observation.output")).unwrap();
        assert_eq!(output["content"], "hello");
        let usage: Value =
            serde_json::from_str(str_of(&s, "langfuse.observation.usage_details")).unwrap();
        assert_eq!(
            usage,
            json!({"input": 7, "output": 3, "total": 10,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
        );
        let cost: Value =
            serde_json::from_str(str_of(&s, "langfuse.observation.cost_details")).unwrap();
        assert_eq!(cost["total"], 0.00025);
        assert_eq!(
            str_of(&s, "langfuse.observation.metadata.user_api_key_alias"),
            "my-key"
        );
        assert_eq!(
            str_of(&s, "langfuse.observation.metadata.user_api_key_team_alias"),
            "team-a"
        );
        assert_eq!(
            str_of(&s, "langfuse.observation.metadata.response_id"),
            "chatcmpl-1"
        );
        assert_eq!(
            str_of(&s, "langfuse.observation.completion_start_time"),
            "\"2025-01-02T03:04:06.500000+00:00\""
        );
        assert_eq!(
            attr(&s, "langfuse.trace.tags"),
            Some(&AnyValue::Array(vec![
                AnyValue::Str("a".into()),
                AnyValue::Str("b".into())
            ]))
        );
        // The trace's input and output are the root generation's: not repeated.
        assert!(attr(&s, "langfuse.trace.input").is_none());
        assert!(s.parent_span_id.is_none());
    }

    #[test]
    fn failure_span_is_an_error_with_its_message() {
        let ev = event("failure", chat_capture(), None);
        let s = generation_span(&ev, &PayloadOptions::default(), &[], None);
        assert_eq!(str_of(&s, "langfuse.observation.level"), "ERROR");
        assert_eq!(
            str_of(&s, "langfuse.observation.status_message"),
            "litellm.RateLimitError: slow down"
        );
        assert_eq!(
            str_of(&s, "langfuse.observation.output"),
            "litellm.RateLimitError: slow down"
        );
        assert!(attr(&s, "langfuse.observation.usage_details").is_none());
    }

    #[test]
    fn metadata_steers_the_trace() {
        let mut ev = event("success", chat_capture(), None);
        ev.log.metadata = json!({"existing_trace_id": "t-old", "trace_user_id": "u-7",
                                 "session_id": "s-1", "mask_input": true});
        let s = generation_span(
            &ev,
            &PayloadOptions::default(),
            &["user_api_key_alias".into()],
            None,
        );
        assert_eq!(s.trace_id, resolve_trace_id(Some("t-old")));
        assert!(s.parent_span_id.is_some() && s.parent_is_remote);
        // A continued trace is not renamed.
        assert!(attr(&s, "langfuse.trace.name").is_none());
        assert!(attr(&s, "user.id").is_none());
        assert_eq!(str_of(&s, "langfuse.observation.input"), REDACTED);
        assert_eq!(s.name, "litellm:my-key");

        let mut ev = event(
            "success",
            CallCapture {
                redact: true,
                input: None,
                ..chat_capture()
            },
            None,
        );
        ev.log.metadata =
            json!({"trace_user_id": "u-7", "session_id": "s-1", "trace_metadata": {"x": 1}});
        let s = generation_span(&ev, &PayloadOptions::default(), &[], None);
        assert_eq!(str_of(&s, "user.id"), "u-7");
        assert_eq!(str_of(&s, "session.id"), "s-1");
        assert_eq!(
            attr(&s, "langfuse.trace.metadata.x"),
            Some(&AnyValue::Int(1))
        );
        let input: Value = serde_json::from_str(str_of(&s, "langfuse.observation.input")).unwrap();
        assert_eq!(input["messages"][0]["content"], REDACTED);
        let output: Value =
            serde_json::from_str(str_of(&s, "langfuse.observation.output")).unwrap();
        assert_eq!(output["content"], REDACTED);
    }
}
