//! Logging callbacks over real HTTP: the gateway logs to a loopback collector standing in for
//! Langfuse (OTLP protobuf spans at `/api/public/otel/v1/traces`), for an OpenTelemetry
//! collector (`otel`: OTLP/HTTP at `/v1/traces`), for Datadog's Logs intake (`datadog`: gzipped
//! JSON at `/api/v2/logs`) and for a `generic_api` endpoint (JSON arrays of LiteLLM's
//! `StandardLoggingPayload`). Settings come from the config's
//! `environment_variables`, so tests never touch the process environment.

use crate::helpers::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A collector recording every POST; the first `fail_first` answers are 503s.
async fn collector(fail_first: usize) -> MockUpstream {
    let failures = Arc::new(AtomicUsize::new(fail_first));
    serve_mock(move |state| {
        Router::new()
            .fallback(
                move |State(st): State<Arc<MockState>>,
                      uri: Uri,
                      headers: HeaderMap,
                      body: Bytes| {
                    let failures = failures.clone();
                    async move {
                        record(&st, &uri, &headers, &body);
                        let left = failures.load(Ordering::SeqCst);
                        if left > 0 {
                            failures.store(left - 1, Ordering::SeqCst);
                            return StatusCode::SERVICE_UNAVAILABLE.into_response();
                        }
                        StatusCode::OK.into_response()
                    }
                },
            )
            .with_state(state)
    })
    .await
}

fn requests(c: &MockUpstream) -> Vec<Recorded> {
    c.state.requests.lock().unwrap().clone()
}

/// Waits until the collector has at least `n` requests (or `wait` passes).
async fn wait_for(c: &MockUpstream, n: usize, wait: Duration) -> Vec<Recorded> {
    let deadline = std::time::Instant::now() + wait;
    while c.count() < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    requests(c)
}

/// A gateway with one priced OpenAI-compatible group `m` (mock upstream model `up`) and
/// `failing` (upstream model `err-429`), with `settings` under `litellm_settings` and `env`
/// under `environment_variables`.
async fn gateway_with(mock: &MockUpstream, settings: &str, env: &[(&str, String)]) -> Gateway {
    let mut yaml = String::from("model_list:\n");
    for (name, up) in [("m", "up"), ("failing", "err-429")] {
        yaml.push_str(&format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/{up}\n      api_base: {{MOCK}}\n      api_key: sk-upstream\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n"
        ));
    }
    yaml.push_str("litellm_settings:\n  num_retries: 0\n");
    yaml.push_str(settings);
    yaml.push_str(&format!("general_settings:\n  master_key: {MASTER}\n"));
    if !env.is_empty() {
        yaml.push_str("environment_variables:\n");
        for (k, v) in env {
            yaml.push_str(&format!("  {k}: \"{v}\"\n"));
        }
    }
    gateway(&yaml, Some(mock)).await
}

fn langfuse_env(c: &MockUpstream) -> Vec<(&'static str, String)> {
    vec![
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-test".into()),
        ("LANGFUSE_SECRET_KEY", "sk-lf-test".into()),
        ("LANGFUSE_HOST", format!("http://{}", c.addr)),
        // Long enough that only an explicit flush sends (the tests decide when).
        ("LANGFUSE_FLUSH_INTERVAL", "60".into()),
    ]
}

async fn flush(gw: &Gateway) {
    gw.state
        .callbacks
        .as_ref()
        .expect("callbacks on")
        .flush()
        .await;
}

// --- a minimal protobuf reader for the OTLP bodies -------------------------------------------

#[derive(Debug, Clone)]
enum Pb {
    Int(u64),
    Fixed(u64),
    Bytes(Vec<u8>),
}

fn varint(b: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*i];
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn fields(b: &[u8]) -> Vec<(u64, Pb)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let tag = varint(b, &mut i);
        let v = match tag & 7 {
            0 => Pb::Int(varint(b, &mut i)),
            1 => {
                let v = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
                i += 8;
                Pb::Fixed(v)
            }
            2 => {
                let n = varint(b, &mut i) as usize;
                let v = b[i..i + n].to_vec();
                i += n;
                Pb::Bytes(v)
            }
            5 => {
                let v = u64::from(u32::from_le_bytes(b[i..i + 4].try_into().unwrap()));
                i += 4;
                Pb::Fixed(v)
            }
            w => panic!("wire type {w}"),
        };
        out.push((tag >> 3, v));
    }
    out
}

fn msgs(b: &[u8], field: u64) -> Vec<Vec<u8>> {
    fields(b)
        .into_iter()
        .filter_map(|(f, v)| match v {
            Pb::Bytes(x) if f == field => Some(x),
            _ => None,
        })
        .collect()
}

fn any_value(b: &[u8]) -> Value {
    match fields(b).into_iter().next() {
        Some((1, Pb::Bytes(s))) => Value::String(String::from_utf8(s).unwrap()),
        Some((2, Pb::Int(x))) => Value::Bool(x != 0),
        Some((3, Pb::Int(x))) => json!(x as i64),
        Some((4, Pb::Fixed(x))) => json!(f64::from_bits(x)),
        Some((5, Pb::Bytes(a))) => Value::Array(msgs(&a, 1).iter().map(|v| any_value(v)).collect()),
        other => panic!("unexpected AnyValue {other:?}"),
    }
}

fn key_values(b: &[u8], field: u64) -> serde_json::Map<String, Value> {
    msgs(b, field)
        .iter()
        .map(|kv| {
            let key = String::from_utf8(msgs(kv, 1).remove(0)).unwrap();
            (key, any_value(&msgs(kv, 2).remove(0)))
        })
        .collect()
}

/// A decoded span: name, ids (hex), times and attributes.
#[derive(Debug)]
struct SpanView {
    name: String,
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    /// `Span.SpanKind` (1 internal, 2 server).
    kind: u64,
    /// `Status.StatusCode` (0 unset, 1 ok, 2 error).
    status: u64,
    /// Names of the span's events.
    events: Vec<String>,
    start: u64,
    end: u64,
    attrs: serde_json::Map<String, Value>,
}

impl SpanView {
    fn s(&self, k: &str) -> &str {
        self.attrs
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no string attribute {k}: {:?}", self.attrs))
    }
    fn json(&self, k: &str) -> Value {
        serde_json::from_str(self.s(k)).unwrap()
    }
}

/// The scope name and spans of an `ExportTraceServiceRequest`.
fn spans(body: &[u8]) -> (String, Vec<SpanView>) {
    let mut scope_name = String::new();
    let mut out = Vec::new();
    for rs in msgs(body, 1) {
        for ss in msgs(&rs, 2) {
            if let Some(scope) = msgs(&ss, 1).first() {
                scope_name = msgs(scope, 1)
                    .first()
                    .map(|n| String::from_utf8(n.clone()).unwrap())
                    .unwrap_or_default();
            }
            for sp in msgs(&ss, 2) {
                let f = fields(&sp);
                let bytes_of = |n: u64| {
                    f.iter().find_map(|(k, v)| match v {
                        Pb::Bytes(b) if *k == n => Some(hex::encode(b)),
                        _ => None,
                    })
                };
                let fixed = |n: u64| {
                    f.iter()
                        .find_map(|(k, v)| match v {
                            Pb::Fixed(x) if *k == n => Some(*x),
                            _ => None,
                        })
                        .unwrap_or(0)
                };
                let int = |n: u64| {
                    f.iter()
                        .find_map(|(k, v)| match v {
                            Pb::Int(x) if *k == n => Some(*x),
                            _ => None,
                        })
                        .unwrap_or(0)
                };
                let status = msgs(&sp, 15)
                    .first()
                    .and_then(|st| {
                        fields(st).into_iter().find_map(|(k, v)| match v {
                            Pb::Int(x) if k == 3 => Some(x),
                            _ => None,
                        })
                    })
                    .unwrap_or(0);
                out.push(SpanView {
                    name: String::from_utf8(msgs(&sp, 5).remove(0)).unwrap(),
                    trace_id: bytes_of(1).unwrap(),
                    span_id: bytes_of(2).unwrap(),
                    parent: bytes_of(4),
                    kind: int(6),
                    status,
                    events: msgs(&sp, 11)
                        .iter()
                        .map(|e| String::from_utf8(msgs(e, 2).remove(0)).unwrap())
                        .collect(),
                    start: fixed(7),
                    end: fixed(8),
                    attrs: key_values(&sp, 9),
                });
            }
        }
    }
    (scope_name, out)
}

fn all_spans(c: &MockUpstream) -> Vec<SpanView> {
    all_spans_at(c, "/api/public/otel/v1/traces")
}

fn all_spans_at(c: &MockUpstream, path: &str) -> Vec<SpanView> {
    requests(c)
        .iter()
        .filter(|r| r.path == path)
        .flat_map(|r| spans(&r.raw).1)
        .collect()
}

// --- langfuse --------------------------------------------------------------------------------

#[tokio::test]
async fn langfuse_logs_a_generation_with_trace_fields_usage_and_cost() {
    let mock = mock_upstream().await;
    let lf = collector(0).await;
    let gw = gateway_with(&mock, "  callbacks: [langfuse]\n", &langfuse_env(&lf)).await;
    let team: Value = gw
        .post("/team/new", json!({"team_alias": "research"}))
        .await
        .json()
        .await
        .unwrap();
    let key = gw
        .new_key(json!({"key_alias": "lf-key", "team_id": team["team_id"]}))
        .await;
    let body = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hello there"}],
        "temperature": 0.3,
        "tags": ["prod"],
        "metadata": {"trace_id": "my-trace", "session_id": "sess-1",
                     "generation_name": "answer", "trace_user_id": "end-7",
                     "trace_metadata": {"source": "test"}},
    });
    let r = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("langfuse_trace_name", "from-header")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    flush(&gw).await;
    let reqs = requests(&lf);
    assert_eq!(reqs.len(), 1, "one batch: {reqs:?}");
    let req = &reqs[0];
    assert_eq!(req.path, "/api/public/otel/v1/traces");
    let basic = base64::engine::general_purpose::STANDARD.encode("pk-lf-test:sk-lf-test");
    assert_eq!(
        req.headers["authorization"],
        format!("Basic {basic}").as_str()
    );
    assert_eq!(req.headers["content-type"], "application/x-protobuf");
    assert_eq!(req.headers["x-langfuse-public-key"], "pk-lf-test");
    assert_eq!(req.headers["x-langfuse-ingestion-version"], "4");
    let (scope, spans) = spans(&req.raw);
    assert_eq!(scope, "langfuse-sdk");
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(s.name, "answer");
    assert_eq!(s.trace_id, hex::encode(&Sha256::digest(b"my-trace")[..16]));
    assert!(s.parent.is_none());
    assert!(s.end >= s.start && s.start > 1_600_000_000_000_000_000);
    assert_eq!(s.s("langfuse.observation.type"), "generation");
    assert_eq!(s.s("langfuse.observation.level"), "DEFAULT");
    assert_eq!(s.s("langfuse.trace.name"), "from-header");
    assert_eq!(s.s("session.id"), "sess-1");
    assert_eq!(s.s("user.id"), "end-7");
    assert_eq!(s.s("langfuse.trace.metadata.source"), "test");
    assert_eq!(s.attrs["langfuse.trace.tags"], json!(["prod"]));
    assert_eq!(s.s("langfuse.observation.model.name"), "openai/up");
    assert_eq!(
        s.json("langfuse.observation.input"),
        json!({"messages": [{"role": "user", "content": "hello there"}]})
    );
    assert_eq!(
        s.json("langfuse.observation.output")["content"],
        "Hello from upstream"
    );
    assert_eq!(
        s.json("langfuse.observation.model.parameters"),
        json!({"temperature": 0.3})
    );
    assert_eq!(
        s.json("langfuse.observation.usage_details"),
        json!({"input": 7, "output": 3, "total": 10,
               "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
    let cost = s.json("langfuse.observation.cost_details")["total"]
        .as_f64()
        .unwrap();
    assert!((cost - 0.013).abs() < 1e-9, "{cost}");
    assert_eq!(
        s.s("langfuse.observation.metadata.user_api_key_alias"),
        "lf-key"
    );
    assert_eq!(
        s.s("langfuse.observation.metadata.user_api_key_team_alias"),
        "research"
    );
    assert_eq!(
        s.s("langfuse.observation.metadata.user_api_key_team_id"),
        team["team_id"].as_str().unwrap()
    );
    assert_eq!(
        s.s("langfuse.observation.metadata.response_id"),
        "chatcmpl-up"
    );
    assert!(s
        .s("langfuse.observation.completion_start_time")
        .starts_with('"'));
}

#[tokio::test]
async fn langfuse_logs_failures_and_assembles_streams() {
    let mock = mock_upstream().await;
    let lf = collector(0).await;
    let gw = gateway_with(&mock, "  callbacks: [langfuse]\n", &langfuse_env(&lf)).await;
    let ready: Value = gw
        .get("/health/readiness/details")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["success_callbacks"], json!(["langfuse"]));
    let r = gw.post("/v1/chat/completions", chat_body("failing")).await;
    assert_eq!(r.status(), 429);
    let mut b = chat_body("m");
    b["stream"] = json!(true);
    b["stream_options"] = json!({"include_usage": true});
    let text = gw.post_text("/v1/chat/completions", b).await;
    assert!(text.contains("t3 "), "{text}");
    flush(&gw).await;
    let spans = all_spans(&lf);
    assert_eq!(spans.len(), 2, "{spans:?}");
    let failed = spans
        .iter()
        .find(|s| s.s("langfuse.observation.level") == "ERROR")
        .expect("a failure span");
    let message = failed.s("langfuse.observation.status_message");
    assert!(message.contains("mock failure 429"), "{message}");
    assert_eq!(failed.s("langfuse.observation.output"), message);
    assert_eq!(failed.name, "litellm-acompletion");
    assert!(!failed
        .attrs
        .contains_key("langfuse.observation.usage_details"));
    let streamed = spans
        .iter()
        .find(|s| s.s("langfuse.observation.level") == "DEFAULT")
        .unwrap();
    let out = streamed.json("langfuse.observation.output");
    assert_eq!(out["content"], "t1 t2 t3 ");
    assert_eq!(out["role"], "assistant");
    assert_eq!(
        streamed.json("langfuse.observation.usage_details")["output"],
        3
    );
    assert_eq!(
        streamed.json("langfuse.observation.model.parameters")["stream"],
        true
    );
}

#[tokio::test]
async fn turn_off_message_logging_redacts_input_and_output() {
    let mock = mock_upstream().await;
    let lf = collector(0).await;
    let gw = gateway_with(
        &mock,
        "  callbacks: [langfuse]\n  turn_off_message_logging: true\n",
        &langfuse_env(&lf),
    )
    .await;
    let r = gw.post("/v1/chat/completions", chat_body("m")).await;
    assert_eq!(r.status(), 200);
    let mut b = chat_body("m");
    b["stream"] = json!(true);
    gw.post_text("/v1/chat/completions", b).await;
    flush(&gw).await;
    let spans = all_spans(&lf);
    assert_eq!(spans.len(), 2);
    for s in &spans {
        assert_eq!(
            s.json("langfuse.observation.input"),
            json!({"messages": [{"role": "user", "content": "redacted-by-litellm"}]})
        );
        assert_eq!(
            s.json("langfuse.observation.output")["content"],
            "redacted-by-litellm"
        );
        assert!(!s
            .attrs
            .values()
            .any(|v| v.to_string().contains("Hello from upstream")
                || v.to_string().contains("\"hi\"")));
    }
}

#[tokio::test]
async fn a_request_can_turn_message_logging_off_and_the_flag_is_not_forwarded() {
    let mock = mock_upstream().await;
    let lf = collector(0).await;
    let gw = gateway_with(
        &mock,
        "  success_callback: [langfuse]\n",
        &langfuse_env(&lf),
    )
    .await;
    let mut b = chat_body("m");
    b["turn_off_message_logging"] = json!(true);
    assert_eq!(gw.post("/v1/chat/completions", b).await.status(), 200);
    assert!(mock.last().body.get("turn_off_message_logging").is_none());
    // success_callback only: the failure is not logged.
    assert_eq!(
        gw.post("/v1/chat/completions", chat_body("failing"))
            .await
            .status(),
        429
    );
    flush(&gw).await;
    let spans = all_spans(&lf);
    assert_eq!(spans.len(), 1);
    assert_eq!(
        spans[0].json("langfuse.observation.input")["messages"][0]["content"],
        "redacted-by-litellm"
    );
}

#[tokio::test]
async fn nothing_is_sent_when_no_logging_callback_is_configured() {
    let mock = mock_upstream().await;
    let lf = collector(0).await;
    let mut env = langfuse_env(&lf);
    env.push((
        "GENERIC_LOGGER_ENDPOINT",
        format!("http://{}/generic", lf.addr),
    ));
    let gw = gateway_with(&mock, "  callbacks: [prometheus]\n", &env).await;
    assert!(gw.state.callbacks.is_none());
    assert_eq!(
        gw.post("/v1/chat/completions", chat_body("m"))
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(lf.count(), 0);
}

#[tokio::test]
async fn langfuse_without_keys_is_disabled() {
    let mock = mock_upstream().await;
    let gw = gateway_with(&mock, "  callbacks: [langfuse]\n", &[]).await;
    assert!(gw.state.callbacks.is_none());
    assert_eq!(
        gw.post("/v1/chat/completions", chat_body("m"))
            .await
            .status(),
        200
    );
}

// --- otel ------------------------------------------------------------------------------------

/// The resource attributes of an `ExportTraceServiceRequest`.
fn resource_attrs(body: &[u8]) -> serde_json::Map<String, Value> {
    let rs = msgs(body, 1).remove(0);
    key_values(&msgs(&rs, 1).remove(0), 1)
}

fn otel_env(c: &MockUpstream) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER", "otlp_http".into()),
        ("OTEL_ENDPOINT", format!("http://{}", c.addr)),
        ("OTEL_HEADERS", "x-honeycomb-team=hc-key,x-other=1".into()),
        ("OTEL_SERVICE_NAME", "gw-test".into()),
        // Long enough that only an explicit flush sends.
        ("OTEL_BSP_SCHEDULE_DELAY", "600000".into()),
    ]
}

#[tokio::test]
async fn otel_exports_the_proxy_request_and_raw_spans_over_otlp_http() {
    let mock = mock_upstream().await;
    let col = collector(0).await;
    let gw = gateway_with(&mock, "  callbacks: [otel]\n", &otel_env(&col)).await;
    let ready: Value = gw
        .get("/health/readiness/details")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["success_callbacks"], json!(["otel"]));
    let key = gw.new_key(json!({"key_alias": "otel-key"})).await;
    let r = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(
            &json!({"model": "m", "messages": [{"role": "user", "content": "hello otel"}],
                      "temperature": 0.3, "max_tokens": 20, "user": "end-1"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        gw.post("/v1/chat/completions", chat_body("failing"))
            .await
            .status(),
        429
    );
    flush(&gw).await;
    let reqs = requests(&col);
    assert_eq!(reqs.len(), 1, "one batch: {reqs:?}");
    let req = &reqs[0];
    assert_eq!(req.path, "/v1/traces");
    assert_eq!(req.headers["content-type"], "application/x-protobuf");
    assert_eq!(req.headers["x-honeycomb-team"], "hc-key");
    assert_eq!(req.headers["x-other"], "1");
    let resource = resource_attrs(&req.raw);
    assert_eq!(resource["service.name"], "gw-test");
    assert_eq!(resource["deployment.environment"], "production");
    assert_eq!(resource["model_id"], "gw-test");
    let (scope, spans) = spans(&req.raw);
    assert_eq!(scope, "litellm");
    assert_eq!(spans.len(), 6, "{spans:?}");

    // The successful call continues the caller's trace.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let ok: Vec<&SpanView> = spans.iter().filter(|s| s.trace_id == trace).collect();
    assert_eq!(ok.len(), 3, "{spans:?}");
    let server = ok
        .iter()
        .find(|s| s.name == "Received Proxy Server Request")
        .unwrap();
    assert_eq!(server.parent.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!((server.kind, server.status), (2, 1));
    assert_eq!(server.attrs["http.response.status_code"], json!(200));
    let request = ok.iter().find(|s| s.name == "litellm_request").unwrap();
    assert_eq!(request.parent.as_ref(), Some(&server.span_id));
    assert_eq!((request.kind, request.status), (1, 1));
    assert!(request.start >= server.start && request.end <= server.end);
    assert_eq!(request.s("gen_ai.system"), "openai");
    assert_eq!(request.s("gen_ai.request.model"), "up");
    assert_eq!(request.s("litellm.model_group"), "m");
    assert_eq!(request.s("llm.request.type"), "acompletion");
    assert_eq!(request.s("llm.is_streaming"), "False");
    assert_eq!(request.s("llm.user"), "end-1");
    assert_eq!(request.attrs["gen_ai.request.temperature"], json!(0.3));
    assert_eq!(request.attrs["gen_ai.request.max_tokens"], json!(20));
    assert_eq!(request.s("gen_ai.response.id"), "chatcmpl-up");
    assert_eq!(request.attrs["gen_ai.usage.input_tokens"], json!(7));
    assert_eq!(request.attrs["gen_ai.usage.output_tokens"], json!(3));
    assert_eq!(request.attrs["gen_ai.usage.total_tokens"], json!(10));
    assert_eq!(request.s("metadata.user_api_key_alias"), "otel-key");
    assert_eq!(
        request.json("gen_ai.input.messages"),
        json!([{"role": "user", "parts": [{"type": "text", "content": "hello otel"}]}])
    );
    assert_eq!(
        request.json("gen_ai.output.messages")[0]["parts"][0]["content"],
        "Hello from upstream"
    );
    assert_eq!(
        request.json("gen_ai.response.finish_reasons"),
        json!(["stop"])
    );
    let hidden = request.json("hidden_params");
    assert_eq!(hidden["litellm_model_name"], "up");
    let raw = ok.iter().find(|s| s.name == "raw_gen_ai_request").unwrap();
    assert_eq!(raw.parent.as_ref(), Some(&request.span_id));
    assert_eq!(raw.s("llm.openai.model"), "up");
    assert_eq!(raw.s("llm.openai.id"), "chatcmpl-up");

    // The failed call: error status, error attributes, the failure span.
    let failed: Vec<&SpanView> = spans.iter().filter(|s| s.trace_id != trace).collect();
    assert_eq!(failed.len(), 3, "{spans:?}");
    let server = failed
        .iter()
        .find(|s| s.name == "Received Proxy Server Request")
        .unwrap();
    assert!(server.parent.is_none());
    assert_eq!(server.status, 2);
    assert_eq!(server.attrs["http.response.status_code"], json!(429));
    let request = failed.iter().find(|s| s.name == "litellm_request").unwrap();
    assert_eq!(request.status, 2);
    assert_eq!(request.s("error.type"), "RateLimitError");
    assert_eq!(request.s("error.code"), "429");
    assert!(request.s("error.message").contains("mock failure 429"));
    assert_eq!(request.events, ["exception"]);
    assert!(!request.attrs.contains_key("gen_ai.usage.total_tokens"));
    let exception = failed
        .iter()
        .find(|s| s.name == "Failed Proxy Server Request")
        .unwrap();
    assert_eq!(exception.parent.as_ref(), Some(&server.span_id));
    assert!(exception.s("exception").contains("mock failure 429"));
    // The upstream credential never reaches the spans.
    assert!(!req.raw.windows(11).any(|w| w == b"sk-upstream"));
}

#[tokio::test]
async fn otel_leaves_message_content_out_when_logging_is_off() {
    let mock = mock_upstream().await;
    let col = collector(0).await;
    let gw = gateway_with(
        &mock,
        "  success_callback: [otel]\n  turn_off_message_logging: true\n",
        &otel_env(&col),
    )
    .await;
    let mut b = chat_body("m");
    b["stream"] = json!(true);
    b["stream_options"] = json!({"include_usage": true});
    let text = gw.post_text("/v1/chat/completions", b).await;
    assert!(text.contains("t3 "), "{text}");
    flush(&gw).await;
    let spans = all_spans_at(&col, "/v1/traces");
    assert_eq!(spans.len(), 2, "no raw request span: {spans:?}");
    let request = spans.iter().find(|s| s.name == "litellm_request").unwrap();
    assert_eq!(request.s("llm.is_streaming"), "True");
    assert_eq!(request.attrs["gen_ai.usage.output_tokens"], json!(3));
    assert!(!request.attrs.contains_key("gen_ai.input.messages"));
    assert!(!request.attrs.contains_key("gen_ai.output.messages"));
    assert!(!request
        .attrs
        .values()
        .any(|v| v.to_string().contains("t1 t2")));
}

#[tokio::test]
async fn otel_over_grpc_is_disabled_and_console_sends_nothing() {
    let mock = mock_upstream().await;
    let col = collector(0).await;
    let mut env = otel_env(&col);
    env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()));
    let gw = gateway_with(&mock, "  callbacks: [otel]\n", &env).await;
    assert!(gw.state.callbacks.is_none());
    // No endpoint: LiteLLM's default console exporter, which posts nothing.
    let gw = gateway_with(&mock, "  callbacks: [otel]\n", &[]).await;
    assert!(gw.state.callbacks.is_some());
    assert_eq!(
        gw.post("/v1/chat/completions", chat_body("m"))
            .await
            .status(),
        200
    );
    flush(&gw).await;
    assert_eq!(col.count(), 0);
}

// --- datadog ---------------------------------------------------------------------------------

fn datadog_env(c: &MockUpstream) -> Vec<(&'static str, String)> {
    vec![
        ("DD_API_KEY", "dd-test-key".into()),
        ("DD_SITE", "us5.datadoghq.com".into()),
        // The override LiteLLM offers for tests and custom intakes.
        ("DD_BASE_URL", format!("http://{}", c.addr)),
        ("DD_ENV", "staging".into()),
        ("DD_SERVICE", "gw".into()),
        ("DD_VERSION", "1.2.3".into()),
        ("DD_SOURCE", "litellm-rs-test".into()),
        ("DEFAULT_FLUSH_INTERVAL_SECONDS", "600".into()),
    ]
}

/// The JSON array of a gzip-compressed Datadog batch.
fn gunzip_json(raw: &[u8]) -> Value {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(raw)
        .read_to_string(&mut text)
        .expect("a gzip body");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn datadog_posts_gzipped_log_entries_to_the_logs_intake() {
    let mock = mock_upstream().await;
    let dd = collector(0).await;
    let gw = gateway_with(&mock, "  callbacks: [datadog]\n", &datadog_env(&dd)).await;
    let team: Value = gw
        .post("/team/new", json!({"team_alias": "Core Team"}))
        .await
        .json()
        .await
        .unwrap();
    let key = gw
        .new_key(json!({"key_alias": "dd-key", "team_id": team["team_id"]}))
        .await;
    let r = gw
        .post_as(
            &key,
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "hello dd"}],
                   "tags": ["Prod App"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        gw.post("/v1/chat/completions", chat_body("failing"))
            .await
            .status(),
        429
    );
    flush(&gw).await;
    let reqs = requests(&dd);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let req = &reqs[0];
    assert_eq!(req.path, "/api/v2/logs");
    assert_eq!(req.headers["content-encoding"], "gzip");
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(req.headers["dd-api-key"], "dd-test-key");
    let batch = gunzip_json(&req.raw);
    let entries = batch.as_array().expect("a JSON array");
    assert_eq!(entries.len(), 2);
    let ok = entries.iter().find(|e| e["status"] == "info").unwrap();
    assert_eq!(ok["ddsource"], "litellm-rs-test");
    assert_eq!(ok["service"], "gw");
    assert_eq!(
        ok["ddtags"],
        "env:staging,service:gw,version:1.2.3,HOSTNAME:,POD_NAME:unknown,request_tag:prod_app,team:core_team"
    );
    let message: Value = serde_json::from_str(ok["message"].as_str().unwrap()).unwrap();
    assert_eq!(message["status"], "success");
    assert_eq!(message["model_group"], "m");
    assert_eq!(message["messages"][0]["content"], "hello dd");
    assert_eq!(message["metadata"]["user_api_key_alias"], "dd-key");
    let failed = entries.iter().find(|e| e["status"] == "error").unwrap();
    let message: Value = serde_json::from_str(failed["message"].as_str().unwrap()).unwrap();
    assert_eq!(message["status"], "failure");
    assert_eq!(
        message["error_information"]["error_class"],
        "RateLimitError"
    );
}

#[tokio::test]
async fn datadog_sends_to_an_agent_and_needs_a_destination() {
    let mock = mock_upstream().await;
    let gw = gateway_with(&mock, "  callbacks: [datadog]\n", &[]).await;
    assert!(gw.state.callbacks.is_none(), "no DD_API_KEY / DD_SITE");
    let agent = collector(0).await;
    let env = vec![
        ("LITELLM_DD_AGENT_HOST", "127.0.0.1".to_string()),
        ("LITELLM_DD_AGENT_PORT", agent.addr.port().to_string()),
        ("DD_BATCH_SIZE", "2".into()),
    ];
    let gw = gateway_with(&mock, "  success_callback: [datadog]\n", &env).await;
    for _ in 0..2 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat_body("m"))
                .await
                .status(),
            200
        );
    }
    let reqs = wait_for(&agent, 1, Duration::from_secs(5)).await;
    assert_eq!(reqs.len(), 1, "a full batch goes out at once");
    assert_eq!(reqs[0].path, "/api/v2/logs");
    assert!(reqs[0].headers.get("dd-api-key").is_none());
    assert_eq!(gunzip_json(&reqs[0].raw).as_array().unwrap().len(), 2);
}

// --- generic_api -----------------------------------------------------------------------------

fn generic_env(c: &MockUpstream) -> Vec<(&'static str, String)> {
    vec![
        (
            "GENERIC_LOGGER_ENDPOINT",
            format!("http://{}/ingest", c.addr),
        ),
        (
            "GENERIC_LOGGER_HEADERS",
            "Authorization=Bearer gtok,X-Team=core".into(),
        ),
        ("DEFAULT_FLUSH_INTERVAL_SECONDS", "60".into()),
    ]
}

#[tokio::test]
async fn generic_api_posts_standard_logging_payloads() {
    let mock = mock_upstream().await;
    let sink = collector(0).await;
    let gw = gateway_with(&mock, "  callbacks: [generic_api]\n", &generic_env(&sink)).await;
    let key = gw.new_key(json!({"key_alias": "g-key"})).await;
    let r = gw
        .post_as(
            &key,
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "hello"}],
                   "max_tokens": 20, "metadata": {"session_id": "s-9"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        gw.post("/v1/chat/completions", chat_body("failing"))
            .await
            .status(),
        429
    );
    flush(&gw).await;
    let reqs = requests(&sink);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let req = &reqs[0];
    assert_eq!(req.path, "/ingest");
    assert_eq!(req.headers["authorization"], "Bearer gtok");
    assert_eq!(req.headers["x-team"], "core");
    assert_eq!(req.headers["content-type"], "application/json");
    let batch = req.body.as_array().expect("a JSON array");
    assert_eq!(batch.len(), 2);
    let ok = batch.iter().find(|p| p["status"] == "success").unwrap();
    assert_eq!(ok["call_type"], "acompletion");
    assert_eq!(ok["model_group"], "m");
    assert_eq!(ok["model"], "up");
    assert_eq!(ok["custom_llm_provider"], "openai");
    assert_eq!(ok["id"], "chatcmpl-up");
    assert_eq!(ok["trace_id"], "s-9");
    assert_eq!(ok["prompt_tokens"], 7);
    assert_eq!(ok["completion_tokens"], 3);
    assert!((ok["response_cost"].as_f64().unwrap() - 0.013).abs() < 1e-9);
    assert_eq!(ok["messages"][0]["content"], "hello");
    assert_eq!(
        ok["response"]["choices"][0]["message"]["content"],
        "Hello from upstream"
    );
    assert_eq!(ok["model_parameters"]["max_tokens"], 20);
    assert_eq!(ok["metadata"]["user_api_key_alias"], "g-key");
    assert_eq!(ok["metadata"]["requester_metadata"]["session_id"], "s-9");
    assert_eq!(
        ok["metadata"]["user_api_key_hash"].as_str().unwrap().len(),
        64
    );
    assert!(ok["startTime"].as_f64().unwrap() <= ok["endTime"].as_f64().unwrap());
    assert_eq!(ok["error_information"], Value::Null);
    let failed = batch.iter().find(|p| p["status"] == "failure").unwrap();
    assert_eq!(failed["error_information"]["error_code"], "429");
    assert_eq!(failed["error_information"]["error_class"], "RateLimitError");
    assert!(failed["error_str"]
        .as_str()
        .unwrap()
        .contains("mock failure 429"));
    assert_eq!(failed["response"], json!({}));
    // The upstream credential never reaches the logs.
    assert!(!req.body.to_string().contains("sk-upstream"));
}

#[tokio::test]
async fn generic_api_sends_a_full_batch_without_waiting_for_the_interval() {
    let mock = mock_upstream().await;
    let sink = collector(0).await;
    let mut env = generic_env(&sink);
    env.push(("DEFAULT_BATCH_SIZE", "2".into()));
    let gw = gateway_with(&mock, "  success_callback: [generic_api]\n", &env).await;
    for _ in 0..2 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat_body("m"))
                .await
                .status(),
            200
        );
    }
    let reqs = wait_for(&sink, 1, Duration::from_secs(5)).await;
    assert_eq!(reqs.len(), 1, "a full batch goes out at once");
    assert_eq!(reqs[0].body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn transient_delivery_failures_are_retried() {
    let mock = mock_upstream().await;
    let sink = collector(1).await;
    let gw = gateway_with(&mock, "  callbacks: [generic_api]\n", &generic_env(&sink)).await;
    assert_eq!(
        gw.post("/v1/chat/completions", chat_body("m"))
            .await
            .status(),
        200
    );
    flush(&gw).await;
    let reqs = requests(&sink);
    assert_eq!(reqs.len(), 2, "a 503, then the same batch again");
    assert_eq!(reqs[0].raw, reqs[1].raw);
}

/// An upstream that streams a first piece of the answer, then an in-stream error event.
async fn failing_stream_upstream() -> MockUpstream {
    serve_mock(|state| {
        Router::new()
            .fallback(
                |State(st): State<Arc<MockState>>, uri: Uri, headers: HeaderMap, body: Bytes| async move {
                    record(&st, &uri, &headers, &body);
                    let piece = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                        "model": "up", "choices": [{"index": 0,
                        "delta": {"role": "assistant", "content": "partial "}, "finish_reason": null}]});
                    let error = json!({"error": {"message": "upstream overloaded midway",
                        "type": "server_error", "code": "503"}});
                    let text = format!("data: {piece}\n\ndata: {error}\n\n");
                    axum::response::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(axum::body::Body::from(text))
                        .unwrap()
                },
            )
            .with_state(state)
    })
    .await
}

#[tokio::test]
async fn a_stream_that_fails_midway_is_logged_as_a_failure() {
    let up = failing_stream_upstream().await;
    let sink = collector(0).await;
    let gw = gateway_with(&up, "  callbacks: [generic_api]\n", &generic_env(&sink)).await;
    let key = gw.new_key(json!({})).await;
    let mut b = chat_body("m");
    b["stream"] = json!(true);
    let r = gw.post_as(&key, "/v1/chat/completions", b).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("partial") && text.contains("upstream overloaded midway"),
        "{text}"
    );
    flush(&gw).await;
    let reqs = requests(&sink);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let batch = reqs[0].body.as_array().expect("a JSON array");
    assert_eq!(batch.len(), 1, "{batch:?}");
    let p = &batch[0];
    assert_eq!(p["status"], "failure", "{p}");
    assert!(
        p["error_str"]
            .as_str()
            .unwrap()
            .contains("upstream overloaded midway"),
        "{p}"
    );
    assert_eq!(p["error_information"]["error_code"], "503", "{p}");
    // The spend log says the same.
    let rows = gw.spend_logs(&key).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "failure");
}

// --- shutdown --------------------------------------------------------------------------------

#[tokio::test]
async fn sigterm_flushes_queued_events_before_exit() {
    use std::process::{Command, Stdio};
    let mock = mock_upstream().await;
    let sink = collector(0).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    let yaml = config_for(&["m"], "")
        .replace("{MOCK}", &mock.base())
        .replace(
            "litellm_settings:\n  num_retries: 0\n",
            "litellm_settings:\n  num_retries: 0\n  callbacks: [generic_api]\n",
        );
    let yaml = format!(
        "{yaml}environment_variables:\n  GENERIC_LOGGER_ENDPOINT: \"http://{}/ingest\"\n  DEFAULT_FLUSH_INTERVAL_SECONDS: \"600\"\n",
        sink.addr
    );
    std::fs::write(&cfg, yaml).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_litellm"))
        .args(["--config", cfg.to_str().unwrap(), "--host", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .env("LITELLM_SQLITE_PATH", dir.path().join("l.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client
        .get(format!("{base}/health/liveliness"))
        .send()
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "gateway did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&chat_body("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sink.count(), 0, "the flush interval has not passed");
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let reqs = requests(&sink);
    assert_eq!(reqs.len(), 1, "the queued event was sent at shutdown");
    assert_eq!(reqs[0].body[0]["model_group"], "m");
}
