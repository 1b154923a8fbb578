//! The `otel` callback, as LiteLLM 1.106's OpenTelemetry logger traces a proxy call, exported
//! over OTLP/HTTP in protobuf (through [`super::otlp`], shared with `langfuse`).
//!
//! Configuration is LiteLLM's: the exporter is `OTEL_EXPORTER_OTLP_PROTOCOL`, else
//! `OTEL_EXPORTER`, else `console`; an endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, else
//! `OTEL_ENDPOINT`) turns `console` into `otlp_http`. `otlp_http`, `http/protobuf` and
//! `http/json` all post protobuf (LiteLLM uses the protobuf HTTP exporter for the three) to
//! the endpoint with `/v1/traces` made its path; without an endpoint, to
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `http://localhost:4318/v1/traces`. Headers come
//! from `OTEL_EXPORTER_OTLP_HEADERS`, else `OTEL_HEADERS` (`k=v,k2=v2`). The resource is
//! `service.name` (`OTEL_SERVICE_NAME`, `litellm`), `deployment.environment`
//! (`OTEL_ENVIRONMENT_NAME`, `production`), `model_id` (`OTEL_MODEL_ID`, the service name) and
//! `OTEL_RESOURCE_ATTRIBUTES`; the scope is `OTEL_TRACER_NAME` (`litellm`). Batching follows
//! the SDK's batch processor: `OTEL_BSP_SCHEDULE_DELAY` (5000 ms),
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (512), `OTEL_EXPORTER_OTLP_TIMEOUT` (10 s).
//!
//! The `console` exporter (LiteLLM's default, which prints each span as indented JSON on stdout)
//! writes each span as one JSON line to this gateway's log (stderr, at info, from this module:
//! on by default). gRPC export
//! (`otlp_grpc`, `grpc`) is not built: the callback is disabled with a warning at start-up.
//!
//! Per call, the spans LiteLLM's proxy emits: `Received Proxy Server Request` (kind SERVER; a
//! child of the request's `traceparent` when it has one), under it `litellm_request` (or the
//! request metadata's `generation_name`) with the `metadata.*`, `gen_ai.*`, `llm.*` and
//! `litellm.*` attributes, and under that `raw_gen_ai_request` with the provider request
//! (`llm.<provider>.<param>`) when message content is captured. A failure sets status ERROR,
//! the `error.*` attributes and an `exception` event, and adds a `Failed Proxy Server Request`
//! child to the server span. Message content (`gen_ai.input.messages`, `gen_ai.output.messages`,
//! tools) is left out when message logging is off for the call or
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` keeps it out of spans.
//!
//! Not built: OTel metrics and log events (`LITELLM_OTEL_INTEGRATION_ENABLE_METRICS` /
//! `_EVENTS`), the latest-experimental GenAI semantic conventions
//! (`OTEL_SEMCONV_STABILITY_OPT_IN`), service spans (database, cache, auth), guardrail spans,
//! per-team or per-key OTel settings, `OTEL_EXPORTER_OTLP_COMPRESSION`.

use super::capture::CallbackEvent;
use super::otlp::{self, AnyValue, Attributes, Event, Span, SpanKind, StatusCode};
use super::payload::{self, py_json, PayloadOptions};
use super::sink::{Delivery, Outgoing, Sink};
use crate::config::LoadedConfig;
use serde_json::{json, Map, Value};
use std::time::Duration;

pub const PROXY_SPAN_NAME: &str = "Received Proxy Server Request";
pub const REQUEST_SPAN_NAME: &str = "litellm_request";
pub const RAW_REQUEST_SPAN_NAME: &str = "raw_gen_ai_request";
pub const FAILED_SPAN_NAME: &str = "Failed Proxy Server Request";
/// Where the OTLP/HTTP exporter posts when no endpoint is configured.
const DEFAULT_TRACES_URL: &str = "http://localhost:4318/v1/traces";

/// Where the spans go.
enum Target {
    Otlp(otlp::Exporter),
    /// One JSON line per span in the gateway's log.
    Console {
        resource: Attributes,
    },
}

pub struct Otel {
    target: Target,
    opts: PayloadOptions,
    /// Message content goes into span attributes (LiteLLM's capture mode `SPAN_ONLY` or
    /// `SPAN_AND_EVENT`, its default).
    content_in_spans: bool,
}

/// Appends `/v1/traces` the way LiteLLM normalises an OTLP endpoint for traces.
pub fn traces_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/traces") || e.contains("/v2/trace/otlp") {
        return e.to_string();
    }
    for other in ["/v1/metrics", "/v1/logs"] {
        if let Some(base) = e.strip_suffix(other) {
            return format!("{base}/v1/traces");
        }
    }
    if e.ends_with("/v1") {
        format!("{e}/traces")
    } else {
        format!("{e}/v1/traces")
    }
}

/// `k=v,k2=v2` pairs (headers, resource attributes); a part without `=` is skipped.
fn pairs(raw: &str) -> Vec<(String, String)> {
    raw.split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

impl Otel {
    /// The sink the environment describes, with its batching; `None` (and a warning) when the
    /// configured exporter is one this gateway does not build.
    pub fn from_env(
        loaded: &LoadedConfig,
        opts: &PayloadOptions,
        warnings: &mut Vec<String>,
    ) -> Option<(Self, Delivery)> {
        let env = |n: &str| loaded.env(n).filter(|v| !v.trim().is_empty());
        let endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT").or_else(|| env("OTEL_ENDPOINT"));
        let mut exporter = env("OTEL_EXPORTER_OTLP_PROTOCOL")
            .or_else(|| env("OTEL_EXPORTER"))
            .unwrap_or_else(|| "console".into());
        if endpoint.is_some() && exporter == "console" {
            exporter = "otlp_http".into();
        }
        let service = env("OTEL_SERVICE_NAME").unwrap_or_else(|| "litellm".into());
        let mut resource: Attributes = vec![
            ("service.name".into(), AnyValue::Str(service.clone())),
            (
                "deployment.environment".into(),
                AnyValue::Str(env("OTEL_ENVIRONMENT_NAME").unwrap_or_else(|| "production".into())),
            ),
            (
                "model_id".into(),
                AnyValue::Str(env("OTEL_MODEL_ID").unwrap_or_else(|| service.clone())),
            ),
        ];
        for (k, v) in pairs(&env("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default()) {
            match resource.iter_mut().find(|(have, _)| *have == k) {
                Some(slot) => slot.1 = AnyValue::Str(v),
                None => resource.push((k, AnyValue::Str(v))),
            }
        }
        let target = match exporter.as_str() {
            "otlp_http" | "http/protobuf" | "http/json" => {
                let url = match &endpoint {
                    Some(e) => traces_url(e),
                    None => env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                        .unwrap_or_else(|| DEFAULT_TRACES_URL.into()),
                };
                let mut headers = vec![(
                    "Content-Type".to_string(),
                    "application/x-protobuf".to_string(),
                )];
                let raw = env("OTEL_EXPORTER_OTLP_HEADERS").or_else(|| env("OTEL_HEADERS"));
                headers.extend(pairs(&raw.unwrap_or_default()));
                Target::Otlp(otlp::Exporter {
                    url,
                    headers,
                    resource,
                    scope_name: env("OTEL_TRACER_NAME").unwrap_or_else(|| "litellm".into()),
                    scope_version: String::new(),
                })
            }
            "otlp_grpc" | "grpc" => {
                warnings.push(format!(
                    "callback `otel` is disabled: OTLP over gRPC (exporter {exporter:?}) is not supported by this gateway; use otlp_http (http/protobuf)"
                ));
                return None;
            }
            _ => Target::Console { resource },
        };
        let capture = env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
            .map(|v| v.trim().to_ascii_uppercase());
        let content_in_spans = match capture.as_deref() {
            None => true,
            Some("SPAN_ONLY" | "SPAN_AND_EVENT") => true,
            Some("TRUE" | "1" | "FALSE" | "0" | "EVENT_ONLY" | "NO_CONTENT") => false,
            Some(_) => true,
        };
        let millis = |name: &str, default: u64| {
            env(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        let delivery = Delivery {
            flush_every: Duration::from_millis(millis("OTEL_BSP_SCHEDULE_DELAY", 5000)),
            batch_size: millis("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512) as usize,
            timeout: Duration::from_secs(millis("OTEL_EXPORTER_OTLP_TIMEOUT", 10)),
            retry_delays: super::retry_delays(super::DEFAULT_RETRIES),
            queue_capacity: super::sink::QUEUE_CAPACITY,
        };
        let sink = Self {
            target,
            opts: opts.clone(),
            content_in_spans,
        };
        Some((sink, delivery))
    }
}

impl Sink for Otel {
    type Item = Vec<Span>;

    fn label(&self) -> &'static str {
        "otel"
    }

    fn item(&self, ev: &CallbackEvent) -> Option<Vec<Span>> {
        Some(call_spans(ev, &self.opts, self.content_in_spans))
    }

    fn request(&self, batch: &[Vec<Span>]) -> Option<Outgoing> {
        let spans: Vec<Span> = batch.iter().flatten().cloned().collect();
        match &self.target {
            Target::Otlp(exporter) => Some(exporter.request(&spans)),
            Target::Console { resource } => {
                for s in &spans {
                    tracing::info!("{}", console_json(s, resource));
                }
                None
            }
        }
    }
}

/// A parent from a W3C `traceparent` header (`00-<trace>-<span>-<flags>`).
fn remote_parent(header: Option<&str>) -> Option<([u8; 16], [u8; 8])> {
    let mut parts = header?.trim().split('-');
    let version = parts.next()?;
    let (trace, span) = (parts.next()?, parts.next()?);
    parts.next()?;
    if version.len() != 2 || version == "ff" {
        return None;
    }
    let mut t = [0u8; 16];
    let mut s = [0u8; 8];
    hex::decode_to_slice(trace, &mut t).ok()?;
    hex::decode_to_slice(span, &mut s).ok()?;
    (t.iter().any(|b| *b != 0) && s.iter().any(|b| *b != 0)).then_some((t, s))
}

/// An attribute value as LiteLLM's `safe_set_attribute` casts it: `None` becomes `""`,
/// containers Python's `str()` of them.
fn primitive(v: &Value) -> AnyValue {
    match v {
        Value::Null => AnyValue::Str(String::new()),
        Value::Bool(b) => AnyValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => AnyValue::Double(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => AnyValue::Str(s.clone()),
        other => {
            let mut s = String::new();
            crate::cache::key::py_repr(&mut s, other);
            AnyValue::Str(s)
        }
    }
}

fn put(attrs: &mut Attributes, key: &str, v: AnyValue) {
    match attrs.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = v,
        None => attrs.push((key.to_string(), v)),
    }
}

fn put_str(attrs: &mut Attributes, key: &str, v: &str) {
    put(attrs, key, AnyValue::Str(v.to_string()));
}

/// A value Python counts as true (`if x:`).
fn truthy(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    })
}

/// `metadata.user_api_key_team_id` / `_alias`, when not empty, on every span of the call.
fn team_attributes(attrs: &mut Attributes, metadata: &Map<String, Value>) {
    for k in ["user_api_key_team_id", "user_api_key_team_alias"] {
        if let Some(v) = truthy(metadata.get(k)) {
            put(attrs, &format!("metadata.{k}"), primitive(v));
        }
    }
}

/// Messages in the GenAI conventions' shape: `{"role", "parts": [...]}` (LiteLLM's
/// `_transform_messages_to_otel_semantic_conventions`).
fn otel_messages(messages: &[Value]) -> Value {
    let out: Vec<Value> = messages
        .iter()
        .map(|m| {
            let role = m.get("role").cloned().unwrap_or_else(|| json!("user"));
            let parts: Vec<Value> = match m.get("content") {
                Some(Value::String(s)) => vec![json!({"type": "text", "content": s})],
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|p| match p {
                        Value::Object(_) => p.clone(),
                        Value::String(s) => json!({"type": "text", "content": s}),
                        other => json!({"type": "text", "content": other.to_string()}),
                    })
                    .collect(),
                None => vec![json!({"type": "text", "content": ""})],
                Some(_) => Vec::new(),
            };
            let mut t = Map::new();
            t.insert("role".into(), role);
            t.insert("parts".into(), Value::Array(parts));
            for k in ["id", "tool_calls", "tool_call_id"] {
                if let Some(v) = m.get(k) {
                    t.insert(k.into(), v.clone());
                }
            }
            Value::Object(t)
        })
        .collect();
    Value::Array(out)
}

/// The `litellm_request` span's attributes (LiteLLM's `set_attributes`).
fn request_attributes(ev: &CallbackEvent, slp: &Value, content: bool) -> Attributes {
    let log = &ev.log;
    let c = &ev.capture;
    let mut a = Attributes::new();
    let metadata = slp["metadata"].as_object().cloned().unwrap_or_default();
    for (k, v) in &metadata {
        put(&mut a, &format!("metadata.{k}"), primitive(v));
    }
    if truthy(Some(&slp["hidden_params"])).is_some() {
        put_str(&mut a, "hidden_params", &py_json(&slp["hidden_params"]));
    }
    if let Some(route) = truthy(metadata.get("user_api_key_request_route")) {
        put(&mut a, "http.route", primitive(route));
    }
    if !log.model_group.is_empty() {
        put_str(&mut a, "litellm.model_group", &log.model_group);
    }
    if !log.model.is_empty() {
        put_str(&mut a, "litellm.provider.model", &log.model);
        put_str(&mut a, "gen_ai.request.model", &log.model);
    }
    put_str(&mut a, "llm.request.type", &log.call_type);
    put_str(
        &mut a,
        "gen_ai.system",
        if log.custom_llm_provider.is_empty() {
            "Unknown"
        } else {
            &log.custom_llm_provider
        },
    );
    let p = &c.params;
    for (param, key) in [
        ("max_tokens", "gen_ai.request.max_tokens"),
        ("temperature", "gen_ai.request.temperature"),
        ("top_p", "gen_ai.request.top_p"),
    ] {
        if let Some(v) = truthy(p.get(param)) {
            put(&mut a, key, primitive(v));
        }
    }
    put_str(
        &mut a,
        "llm.is_streaming",
        if c.stream { "True" } else { "False" },
    );
    if let Some(u) = truthy(p.get("user")) {
        put(&mut a, "llm.user", primitive(u));
    }
    let response = if ev.succeeded() {
        ev.output.as_ref().and_then(|o| o.to_value())
    } else {
        None
    };
    let response_id = response
        .as_ref()
        .and_then(|r| truthy(r.get("id")))
        .cloned()
        .unwrap_or_else(|| slp["id"].clone());
    if truthy(Some(&response_id)).is_some() {
        put(&mut a, "gen_ai.response.id", primitive(&response_id));
    }
    put_str(&mut a, "litellm.call_id", &log.request_id);
    if let Some(m) = response.as_ref().and_then(|r| truthy(r.get("model"))) {
        put(&mut a, "gen_ai.response.model", primitive(m));
    }
    if let Some(t) = truthy(p.get("service_tier")) {
        put(&mut a, "gen_ai.openai.request.service_tier", primitive(t));
    }
    if let Some(t) = response
        .as_ref()
        .and_then(|r| truthy(r.get("service_tier")))
    {
        put(&mut a, "gen_ai.openai.response.service_tier", primitive(t));
    }
    if ev.succeeded() {
        let u = &ev.usage;
        put(
            &mut a,
            "gen_ai.usage.total_tokens",
            AnyValue::Int(u.total_tokens as i64),
        );
        put(
            &mut a,
            "gen_ai.usage.output_tokens",
            AnyValue::Int(u.completion_tokens as i64),
        );
        put(
            &mut a,
            "gen_ai.usage.input_tokens",
            AnyValue::Int(u.prompt_tokens as i64),
        );
    }
    if !content || c.redact {
        return a;
    }
    if let Some(tools) = c.tools.as_ref().and_then(Value::as_array) {
        for (i, tool) in tools.iter().enumerate() {
            let Some(f) = tool.get("function") else {
                continue;
            };
            let prefix = format!("llm.request.functions.{i}");
            put(&mut a, &format!("{prefix}.name"), primitive(&f["name"]));
            put(
                &mut a,
                &format!("{prefix}.description"),
                primitive(&f["description"]),
            );
            put_str(
                &mut a,
                &format!("{prefix}.parameters"),
                &py_json(&f["parameters"]),
            );
        }
    }
    if let Some(msgs) = c.input.as_ref().and_then(Value::as_array) {
        if !msgs.is_empty() {
            put_str(
                &mut a,
                "gen_ai.input.messages",
                &py_json(&otel_messages(msgs)),
            );
        }
    }
    let operation = match &*log.call_type {
        "completion" | "" => "chat",
        other => other,
    };
    put_str(&mut a, "gen_ai.operation.name", operation);
    if let Some(choices) = response
        .as_ref()
        .and_then(|r| truthy(r.get("choices")))
        .and_then(Value::as_array)
    {
        let transformed: Vec<Value> = choices
            .iter()
            .map(|ch| {
                let msg = ch.get("message").cloned().unwrap_or_else(|| json!({}));
                let mut t = otel_messages(std::slice::from_ref(&msg))[0].clone();
                if let Some(fr) = truthy(ch.get("finish_reason")) {
                    t["finish_reason"] = fr.clone();
                }
                t
            })
            .collect();
        put_str(
            &mut a,
            "gen_ai.output.messages",
            &py_json(&Value::Array(transformed)),
        );
        let reasons: Vec<Value> = choices
            .iter()
            .filter_map(|ch| truthy(ch.get("finish_reason")).cloned())
            .collect();
        if !reasons.is_empty() {
            put_str(
                &mut a,
                "gen_ai.response.finish_reasons",
                &py_json(&Value::Array(reasons)),
            );
        }
        for ch in choices
            .iter()
            .filter(|ch| truthy(ch.get("finish_reason")).is_some())
        {
            let calls = ch.pointer("/message/tool_calls").and_then(Value::as_array);
            for (i, call) in calls.into_iter().flatten().enumerate() {
                for k in ["arguments", "name"] {
                    if let Some(v) = truthy(call.pointer(&format!("/function/{k}"))) {
                        put(
                            &mut a,
                            &format!("gen_ai.completion.{i}.function_call.{k}"),
                            primitive(v),
                        );
                    }
                }
            }
        }
    }
    a
}

/// `error.*` attributes and the `exception` event of a failed call (LiteLLM's
/// `_record_exception_on_span`).
fn record_error(span: &mut Span, info: &Value, at: u64) {
    let s = |k: &str| {
        info.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(code) = s("error_code") {
        put_str(&mut span.attributes, "error.code", code);
        if let Ok(n) = code.parse::<i64>() {
            put(
                &mut span.attributes,
                "http.response.status_code",
                AnyValue::Int(n),
            );
        }
    }
    if let Some(class) = s("error_class") {
        put_str(&mut span.attributes, "error.type", class);
    }
    if let Some(msg) = s("error_message") {
        put_str(&mut span.attributes, "error.message", msg);
    }
    if let Some(p) = s("llm_provider") {
        put_str(&mut span.attributes, "error.llm_provider", p);
    }
    span.events.push(Event {
        name: "exception".into(),
        time_unix_nano: at,
        attributes: vec![
            (
                "exception.type".into(),
                AnyValue::Str(s("error_class").unwrap_or("Exception").into()),
            ),
            (
                "exception.message".into(),
                AnyValue::Str(s("error_message").unwrap_or_default().into()),
            ),
            ("exception.escaped".into(), AnyValue::Str("False".into())),
        ],
    });
}

fn new_span(
    trace_id: [u8; 16],
    parent: Option<[u8; 8]>,
    name: &str,
    kind: SpanKind,
    start: u64,
    end: u64,
) -> Span {
    Span {
        trace_id,
        span_id: rand::random(),
        parent_span_id: parent,
        parent_is_remote: false,
        name: name.to_string(),
        kind,
        start_unix_nano: start,
        end_unix_nano: end,
        attributes: Attributes::new(),
        events: Vec::new(),
        status: StatusCode::Unset,
        status_message: String::new(),
    }
}

/// The spans LiteLLM's proxy exports for one call: the server span, the request span under
/// it, and the raw request span (success, content captured) or the failure span.
pub fn call_spans(ev: &CallbackEvent, opts: &PayloadOptions, content: bool) -> Vec<Span> {
    let log = &ev.log;
    let c = &ev.capture;
    let slp = payload::standard_logging_payload(ev, opts);
    let metadata = slp["metadata"].as_object().cloned().unwrap_or_default();
    let start = otlp::unix_nanos(log.start_time);
    let end = otlp::unix_nanos(log.end_time);
    let succeeded = ev.succeeded();
    let remote = remote_parent(c.traceparent.as_deref());
    let trace_id = remote.map_or_else(rand::random, |(t, _)| t);

    let mut server = new_span(
        trace_id,
        remote.map(|(_, s)| s),
        PROXY_SPAN_NAME,
        SpanKind::Server,
        start,
        end,
    );
    server.parent_is_remote = remote.is_some();
    put_str(&mut server.attributes, "url.path", c.route);
    put_str(&mut server.attributes, "http.route", c.route);
    team_attributes(&mut server.attributes, &metadata);

    let generation_name = log
        .metadata
        .get("generation_name")
        .filter(|v| truthy(Some(v)).is_some())
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    let mut request = new_span(
        trace_id,
        Some(server.span_id),
        generation_name.as_deref().unwrap_or(REQUEST_SPAN_NAME),
        SpanKind::Internal,
        start,
        end,
    );
    request.attributes = request_attributes(ev, &slp, content);
    let mut spans = Vec::with_capacity(3);
    if succeeded {
        request.status = StatusCode::Ok;
        server.status = StatusCode::Ok;
        put(
            &mut server.attributes,
            "http.response.status_code",
            AnyValue::Int(200),
        );
        if content && !c.redact {
            let mut raw = new_span(
                trace_id,
                Some(request.span_id),
                generation_name.as_deref().unwrap_or(RAW_REQUEST_SPAN_NAME),
                SpanKind::Internal,
                start,
                end,
            );
            raw.status = StatusCode::Ok;
            raw.attributes = raw_request_attributes(ev);
            team_attributes(&mut raw.attributes, &metadata);
            spans.push(raw);
        }
    } else {
        request.status = StatusCode::Error;
        server.status = StatusCode::Error;
        let info = &slp["error_information"];
        record_error(&mut request, info, end);
        record_error(&mut server, info, end);
        if !server
            .attributes
            .iter()
            .any(|(k, _)| k == "http.response.status_code")
        {
            put(
                &mut server.attributes,
                "http.response.status_code",
                AnyValue::Int(500),
            );
        }
        let mut failed = new_span(
            trace_id,
            Some(server.span_id),
            FAILED_SPAN_NAME,
            SpanKind::Internal,
            end,
            end,
        );
        put_str(
            &mut failed.attributes,
            "exception",
            ev.error.as_ref().map_or("", |e| e.message.as_str()),
        );
        team_attributes(&mut failed.attributes, &metadata);
        failed.status = StatusCode::Error;
        spans.push(failed);
    }
    spans.push(request);
    spans.push(server);
    spans
}

/// `llm.<provider>.<param>` for the request the call sent upstream and, for a JSON answer, the
/// answer's top-level fields (LiteLLM's `set_raw_request_attributes`).
fn raw_request_attributes(ev: &CallbackEvent) -> Attributes {
    let c = &ev.capture;
    let provider = if ev.log.custom_llm_provider.is_empty() {
        "Unknown"
    } else {
        &ev.log.custom_llm_provider
    };
    let mut a = Attributes::new();
    let mut sent = Map::new();
    sent.insert("model".into(), Value::String(ev.log.model.to_string()));
    if let Some(input) = &c.input {
        let field = if input.is_array() && c.route.contains("chat") {
            "messages"
        } else {
            "input"
        };
        sent.insert(field.into(), input.clone());
    }
    for (k, v) in &c.params {
        sent.insert(k.clone(), v.clone());
    }
    if let Some(t) = &c.tools {
        sent.insert("tools".into(), t.clone());
    }
    for (k, v) in &sent {
        put(&mut a, &format!("llm.{provider}.{k}"), primitive(v));
    }
    if let Some(super::capture::Output::Json(body)) = &ev.output {
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) {
            for (k, v) in &m {
                put(&mut a, &format!("llm.{provider}.{k}"), primitive(v));
            }
        }
    }
    a
}

fn any_to_json(v: &AnyValue) -> Value {
    match v {
        AnyValue::Str(s) => json!(s),
        AnyValue::Bool(b) => json!(b),
        AnyValue::Int(i) => json!(i),
        AnyValue::Double(d) => json!(d),
        AnyValue::Array(items) => Value::Array(items.iter().map(any_to_json).collect()),
    }
}

fn attrs_json(attrs: &[(String, AnyValue)]) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, v)| (k.clone(), any_to_json(v)))
            .collect(),
    )
}

fn iso_nanos(n: u64) -> String {
    chrono::DateTime::from_timestamp((n / 1_000_000_000) as i64, (n % 1_000_000_000) as u32)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

/// One span as the OpenTelemetry SDK's console exporter writes it (`Span.to_json`), on one
/// line.
pub fn console_json(s: &Span, resource: &[(String, AnyValue)]) -> String {
    let kind = match s.kind {
        SpanKind::Internal => "SpanKind.INTERNAL",
        SpanKind::Server => "SpanKind.SERVER",
        SpanKind::Client => "SpanKind.CLIENT",
    };
    let status = match s.status {
        StatusCode::Unset => "UNSET",
        StatusCode::Ok => "OK",
        StatusCode::Error => "ERROR",
    };
    let events: Vec<Value> = s
        .events
        .iter()
        .map(|e| {
            json!({"name": e.name, "timestamp": iso_nanos(e.time_unix_nano),
                   "attributes": attrs_json(&e.attributes)})
        })
        .collect();
    json!({
        "name": s.name,
        "context": {
            "trace_id": format!("0x{}", otlp::hex_id(&s.trace_id)),
            "span_id": format!("0x{}", otlp::hex_id(&s.span_id)),
            "trace_state": "[]",
        },
        "kind": kind,
        "parent_id": s.parent_span_id.map(|p| format!("0x{}", otlp::hex_id(&p))),
        "start_time": iso_nanos(s.start_unix_nano),
        "end_time": iso_nanos(s.end_unix_nano),
        "status": {"status_code": status},
        "attributes": attrs_json(&s.attributes),
        "events": events,
        "links": [],
        "resource": {"attributes": attrs_json(resource), "schema_url": ""},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::capture::{CallCapture, Output};
    use crate::callbacks::payload::tests::{chat_capture, event};
    use bytes::Bytes;

    const BODY: &str = r#"{"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"héllo"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#;

    fn attr<'a>(s: &'a Span, k: &str) -> Option<&'a AnyValue> {
        s.attributes.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }
    fn text<'a>(s: &'a Span, k: &str) -> &'a str {
        match attr(s, k) {
            Some(AnyValue::Str(v)) => v,
            other => panic!("{k}: {other:?}"),
        }
    }
    fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
        spans.iter().find(|s| s.name == name).expect(name)
    }

    #[test]
    fn endpoints_get_the_traces_path() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c/v1/logs"), "http://c/v1/traces");
        assert_eq!(traces_url("http://c/v1/traces"), "http://c/v1/traces");
        assert_eq!(
            traces_url("https://ingest.x/v2/trace/otlp"),
            "https://ingest.x/v2/trace/otlp"
        );
    }

    #[test]
    fn python_json_and_casts() {
        assert_eq!(
            py_json(&json!({"a": [1, "é"], "b": null, "c": 1.0})),
            r#"{"a": [1, "\u00e9"], "b": null, "c": 1.0}"#
        );
        assert_eq!(primitive(&Value::Null), AnyValue::Str(String::new()));
        assert_eq!(
            primitive(&json!({"k": true})),
            AnyValue::Str("{'k': True}".into())
        );
        assert_eq!(primitive(&json!(0.5)), AnyValue::Double(0.5));
    }

    #[test]
    fn success_is_a_server_span_a_request_span_and_a_raw_span() {
        let ev = event(
            "success",
            chat_capture(),
            Some(Output::Json(Bytes::from_static(BODY.as_bytes()))),
        );
        let spans = call_spans(&ev, &PayloadOptions::default(), true);
        assert_eq!(spans.len(), 3);
        let server = named(&spans, PROXY_SPAN_NAME);
        // `chat_capture`'s metadata names a generation: the request and raw spans take it.
        let gen: Vec<&Span> = spans.iter().filter(|s| s.name == "gen").collect();
        assert_eq!(gen.len(), 2);
        let request = gen
            .iter()
            .find(|s| s.parent_span_id == Some(server.span_id))
            .unwrap();
        let raw = gen
            .iter()
            .find(|s| s.parent_span_id == Some(request.span_id))
            .unwrap();
        assert!(spans.iter().all(|s| s.trace_id == server.trace_id));
        assert_eq!(server.kind, SpanKind::Server);
        assert!(server.parent_span_id.is_none());
        assert_eq!(server.status, StatusCode::Ok);
        assert_eq!(
            attr(server, "http.response.status_code"),
            Some(&AnyValue::Int(200))
        );
        assert_eq!(request.status, StatusCode::Ok);
        assert_eq!(text(request, "gen_ai.system"), "openai");
        assert_eq!(text(request, "gen_ai.response.id"), "chatcmpl-1");
        assert_eq!(text(request, "gen_ai.response.model"), "gpt-4o");
        assert_eq!(text(request, "llm.is_streaming"), "False");
        assert_eq!(text(request, "metadata.user_api_key_alias"), "my-key");
        assert_eq!(
            attr(request, "gen_ai.usage.total_tokens"),
            Some(&AnyValue::Int(10))
        );
        assert_eq!(
            text(request, "gen_ai.output.messages"),
            r#"[{"role": "assistant", "parts": [{"type": "text", "content": "h\u00e9llo"}], "finish_reason": "stop"}]"#
        );
        assert_eq!(
            text(request, "gen_ai.response.finish_reasons"),
            r#"["stop"]"#
        );
        assert!(text(request, "gen_ai.input.messages").contains(r#""content": "hi""#));
        assert_eq!(text(raw, "llm.openai.id"), "chatcmpl-1");
    }

    #[test]
    fn failure_is_an_error_with_its_exception_and_no_content_when_redacted() {
        let ev = event(
            "failure",
            CallCapture {
                redact: true,
                input: None,
                traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
                ..chat_capture()
            },
            None,
        );
        let spans = call_spans(&ev, &PayloadOptions::default(), true);
        let server = named(&spans, PROXY_SPAN_NAME);
        assert_eq!(
            otlp::hex_id(&server.trace_id),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(
            server.parent_span_id.map(|p| otlp::hex_id(&p)).as_deref(),
            Some("b7ad6b7169203331")
        );
        assert!(server.parent_is_remote);
        assert_eq!(server.status, StatusCode::Error);
        let request = named(&spans, "gen");
        assert_eq!(request.status, StatusCode::Error);
        assert_eq!(text(request, "error.type"), "RateLimitError");
        assert_eq!(
            attr(request, "http.response.status_code"),
            Some(&AnyValue::Int(429))
        );
        assert_eq!(request.events[0].name, "exception");
        assert!(attr(request, "gen_ai.input.messages").is_none());
        let failed = named(&spans, FAILED_SPAN_NAME);
        assert_eq!(failed.parent_span_id, Some(server.span_id));
        assert_eq!(
            text(failed, "exception"),
            "litellm.RateLimitError: slow down"
        );
        let line = console_json(failed, &[]);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["status"]["status_code"], "ERROR");
    }
}
