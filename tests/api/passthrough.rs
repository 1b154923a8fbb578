//! Pass-through routes over real HTTP: provider routes (`/anthropic/...`, `/openai/...`) and
//! `general_settings.pass_through_endpoints`, against a recording mock upstream.

use crate::helpers::*;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the mock received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Option<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct Upstream {
    seen: Mutex<Vec<Seen>>,
    /// Released by the test to let a gated stream send its second event.
    gate: tokio::sync::Notify,
}

struct Mock {
    addr: std::net::SocketAddr,
    state: Arc<Upstream>,
}

impl Mock {
    fn root(&self) -> String {
        format!("http://{}", self.addr)
    }
    fn last(&self) -> Seen {
        self.state
            .seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no request reached the mock")
    }
    fn count(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }
}

fn sse(events: &[String]) -> String {
    events.concat()
}

/// One mock for every test: answers by path.
/// `/v1/messages`: an Anthropic message (SSE when `stream: true`); `/v1/chat/completions`: an
/// OpenAI completion, or with `stream: true` a stream whose second event waits for the gate;
/// `/err/<status>`: that status with an error body; `/slow`: waits 2 s; anything else echoes
/// what it received as JSON.
async fn mock() -> Mock {
    let state = Arc::new(Upstream::default());
    let app = Router::new().fallback(answer).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Mock { addr, state }
}

async fn answer(State(state): State<Arc<Upstream>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(String::from),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    state.seen.lock().unwrap().push(seen.clone());
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let stream = v["stream"] == json!(true);
    let path = parts.uri.path();
    if let Some(code) = path.strip_prefix("/err/") {
        return (
            StatusCode::from_u16(code.parse().unwrap()).unwrap(),
            [("content-type", "application/json"), ("x-upstream-error", "yes")],
            json!({"error": {"message": format!("upstream says {code}"), "type": "upstream_error"}}).to_string(),
        )
            .into_response();
    }
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if path.ends_with("/v1/messages") {
        let model = v["model"]
            .as_str()
            .unwrap_or("claude-haiku-4-5")
            .to_string();
        if !stream {
            return (
                [
                    ("content-type", "application/json"),
                    ("x-upstream", "anthropic"),
                ],
                json!({"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                       "content": [{"type": "text", "text": "Hello from Claude"}],
                       "stop_reason": "end_turn", "stop_sequence": null,
                       "usage": {"input_tokens": 1000, "output_tokens": 200}})
                .to_string(),
            )
                .into_response();
        }
        let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let text = sse(&[
            ev(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [], "usage": {"input_tokens": 1000, "output_tokens": 1}}}),
            ),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
            ),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            ev(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 200}}),
            ),
            ev("message_stop", json!({"type": "message_stop"})),
        ]);
        return ([("content-type", "text/event-stream")], text).into_response();
    }
    if path.ends_with("/chat/completions") {
        let model = v["model"].as_str().unwrap_or("gpt-4o-mini").to_string();
        if !stream {
            return axum::Json(json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}}))
            .into_response();
        }
        let chunk = |delta: Value, usage: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": null}], "usage": usage})
            )
        };
        let first = chunk(
            json!({"role": "assistant", "content": "first"}),
            Value::Null,
        );
        let second = chunk(json!({"content": " second"}), Value::Null);
        let usage = format!(
            "data: {}\n\ndata: [DONE]\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [],
                   "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}})
        );
        let gate = state.clone();
        let s = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first)) })
            .chain(futures::stream::once(async move {
                gate.gate.notified().await;
                Ok(Bytes::from(second))
            }))
            .chain(futures::stream::once(async move { Ok(Bytes::from(usage)) }));
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(s))
            .unwrap();
    }
    axum::Json(
        json!({"method": seen.method, "path": seen.path, "query": seen.query, "bytes": body.len()}),
    )
    .into_response()
}

fn config(mock: &Mock, extra_general: &str) -> String {
    format!(
        "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {root}/v1\n      api_key: sk-upstream-key\n\
environment_variables:\n  ANTHROPIC_API_BASE: {root}\n  ANTHROPIC_API_KEY: sk-ant-proxy\n  OPENAI_API_BASE: {root}\n  OPENAI_API_KEY: sk-openai-proxy\n  SVC_KEY: svc-secret\n\
litellm_settings:\n  num_retries: 0\n\
general_settings:\n  master_key: {MASTER}\n{extra_general}",
        root = mock.root()
    )
}

fn header<'a>(s: &'a Seen, name: &str) -> Option<&'a str> {
    s.headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn anthropic_route_forwards_with_the_proxy_credential_and_logs_spend() {
    let m = mock().await;
    let gw = gateway(&config(&m, ""), None).await;
    let key = gw.new_key(json!({})).await;
    let body = json!({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let raw = serde_json::to_vec(&body).unwrap();
    let r = gw
        .client
        .post(gw.url("/anthropic/v1/messages?beta=true"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "tools-2024")
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-upstream"], "anthropic");
    assert!(r.headers().contains_key("x-litellm-call-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "Hello from Claude");

    let seen = m.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.query.as_deref(), Some("beta=true"));
    assert_eq!(header(&seen, "x-api-key"), Some("sk-ant-proxy"));
    assert_eq!(header(&seen, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(header(&seen, "anthropic-beta"), Some("tools-2024"));
    assert!(seen.headers.get("authorization").is_none());
    assert!(seen.headers.get("x-litellm-api-key").is_none());
    assert_eq!(
        seen.body,
        Bytes::from(raw),
        "the body goes upstream as sent"
    );

    let rows = gw.spend_logs(&key).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["call_type"], "pass_through_endpoint");
    assert_eq!(row["model"], "claude-haiku-4-5");
    assert_eq!(row["custom_llm_provider"], "anthropic");
    assert_eq!(row["prompt_tokens"], 1000);
    assert_eq!(row["completion_tokens"], 200);
    // 1000 * 1e-6 + 200 * 5e-6
    let spend = row["spend"].as_f64().unwrap();
    assert!((spend - 0.002).abs() < 1e-9, "{spend}");
    assert!(row["api_base"].as_str().unwrap().ends_with("/v1/messages"));
}

#[tokio::test]
async fn anthropic_streams_are_priced_from_their_events() {
    let m = mock().await;
    let gw = gateway(&config(&m, ""), None).await;
    let key = gw.new_key(json!({})).await;
    let r = gw
        .client
        .post(gw.url("/anthropic/v1/messages"))
        .header("x-api-key", &key)
        .json(
            &json!({"model": "claude-haiku-4-5", "max_tokens": 10, "stream": true, "messages": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert!(text.contains("event: message_stop"));
    let rows = gw.spend_logs(&key).await;
    assert_eq!(rows[0]["completion_tokens"], 200);
    assert!(rows[0]["spend"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn openai_route_relays_sse_chunk_by_chunk() {
    let m = mock().await;
    let gw = gateway(&config(&m, ""), None).await;
    let key = gw.new_key(json!({})).await;
    let r = gw
        .post_as(
            &key,
            "/openai/v1/chat/completions",
            json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    // The first event arrives while the upstream still holds the second back.
    let first = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("the first chunk was not relayed before the stream ended")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("first"));
    m.state.gate.notify_one();
    let mut rest = Vec::new();
    while let Some(c) = body.next().await {
        rest.extend_from_slice(&c.unwrap());
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(
        rest.contains(" second") && rest.ends_with("data: [DONE]\n\n"),
        "{rest}"
    );

    let seen = m.last();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        header(&seen, "authorization"),
        Some("Bearer sk-openai-proxy")
    );
    assert_eq!(header(&seen, "api-key"), Some("sk-openai-proxy"));
    let rows = gw.spend_logs(&key).await;
    assert_eq!(rows[0]["model"], "gpt-4o-mini");
    assert_eq!(rows[0]["total_tokens"], 1100);
    // 1000 * 1.5e-7 + 100 * 6e-7
    assert!((rows[0]["spend"].as_f64().unwrap() - 0.00021).abs() < 1e-12);
}

#[tokio::test]
async fn other_methods_paths_and_queries_pass_as_sent() {
    let m = mock().await;
    let gw = gateway(&config(&m, ""), None).await;
    let r = gw
        .client
        .delete(gw.url("/openai/v1/files/file-abc?x=1"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "DELETE");
    assert_eq!(v["path"], "/v1/files/file-abc");
    assert_eq!(v["query"], "x=1");
    let seen = m.last();
    assert!(
        seen.headers.get("transfer-encoding").is_none() && seen.body.is_empty(),
        "a bodiless request stays bodiless"
    );
}

#[tokio::test]
async fn upstream_errors_come_back_with_their_status_and_body() {
    let m = mock().await;
    let gw = gateway(&config(&m, ""), None).await;
    let key = gw.new_key(json!({})).await;
    let r = gw
        .post_as(&key, "/openai/err/429", json!({"model": "x"}))
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-upstream-error"], "yes");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "upstream says 429");
    let rows = gw.spend_logs(&key).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "failure");
    assert_eq!(rows[0]["spend"], 0.0);
}

#[tokio::test]
async fn existing_routes_win_over_the_pass_through_prefixes() {
    let m = mock().await;
    let gw = gateway(&config(&m, ""), None).await;
    // Azure-style LLM route: served by the gateway's own handler (translated answer).
    let r = gw
        .post(
            "/openai/deployments/gpt-4o-mini/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-litellm-model-id"));
    let seen = m.last();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        header(&seen, "authorization"),
        Some("Bearer sk-upstream-key")
    );
    // The Responses API route under /openai/v1 is still the gateway's (an unknown id is its 400).
    let r = gw.get("/openai/v1/responses/resp_unknown").await;
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    // A path under the gateway's own prefixes that none of its routes serves goes through.
    let r = gw
        .get("/openai/deployments/gpt-4o-mini/extensions/chat")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(m.last().path, "/deployments/gpt-4o-mini/extensions/chat");
    let before = m.count();
    // Unknown routes are 404 for anyone, unserved providers too.
    for path in [
        "/nope",
        "/bedrock/model/x/invoke",
        "/vertex_ai/v1/projects/p",
    ] {
        let r = gw.client.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    assert_eq!(m.count(), before);
}

#[tokio::test]
async fn keys_without_access_are_refused() {
    let m = mock().await;
    let gw = gateway(&config(&m, ""), None).await;
    // No key at all.
    let r = gw
        .client
        .post(gw.url("/anthropic/v1/messages"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A key limited to other routes.
    let key = gw
        .new_key(json!({"allowed_routes": ["/chat/completions"]}))
        .await;
    let r = gw.post_as(&key, "/anthropic/v1/messages", json!({})).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/anthropic/v1/messages"));
    // A key limited to other models.
    let key = gw.new_key(json!({"models": ["gpt-4o-mini"]})).await;
    let r = gw
        .post_as(
            &key,
            "/anthropic/v1/messages",
            json!({"model": "claude-haiku-4-5"}),
        )
        .await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "key_model_access_denied");
    assert_eq!(m.count(), 0, "nothing reached the upstream");
    // An LLM-API key may use the provider routes.
    let key = gw.new_key(json!({"key_type": "llm_api"})).await;
    let r = gw
        .post_as(
            &key,
            "/anthropic/v1/messages",
            json!({"model": "claude-haiku-4-5"}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

const CUSTOM: &str = r#"  pass_through_endpoints:
    - path: /public
      target: {ROOT}/echo
      auth: false
      headers:
        X-Svc: Bearer os.environ/SVC_KEY
    - path: /private
      target: {ROOT}/base
      auth: true
      include_subpath: true
      forward_headers: true
      cost_per_request: 0.5
    - path: /default
      target: {ROOT}/d
    - path: /slowpoke
      target: {ROOT}/slow
      auth: false
      timeout: 0.3
    - path: /down
      target: http://127.0.0.1:9/x
      auth: false
"#;

#[tokio::test]
async fn custom_endpoints_with_and_without_auth() {
    let m = mock().await;
    let general = CUSTOM.replace("{ROOT}", &m.root());
    let gw = gateway(&config(&m, &general), None).await;

    // auth: false, no key; headers resolve os.environ/ inside the value.
    let r = gw
        .client
        .post(gw.url("/public?a=1"))
        .header("x-not-forwarded", "1")
        .json(&json!({"hello": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/echo");
    assert_eq!(v["query"], "a=1");
    let seen = m.last();
    assert_eq!(header(&seen, "x-svc"), Some("Bearer svc-secret"));
    assert!(seen.headers.get("x-not-forwarded").is_none());
    assert_eq!(header(&seen, "content-type"), Some("application/json"));

    // auth: true: no key is refused; the master key passes, sub-paths included.
    let r = gw.client.get(gw.url("/private")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = gw
        .client
        .get(gw.url("/private/sub/x?q=1"))
        .bearer_auth(MASTER)
        .header("x-custom", "c1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/base/sub/x");
    assert_eq!(v["query"], "q=1");
    let seen = m.last();
    assert_eq!(header(&seen, "x-custom"), Some("c1"), "forward_headers");
    assert!(
        seen.headers.get("authorization").is_none(),
        "the caller's key stays here"
    );

    // A virtual key needs the route in its allowed_passthrough_routes.
    let plain = gw.new_key(json!({})).await;
    let r = gw.get_as(&plain, "/private/sub").await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("allowed_passthrough_routes"));
    let granted = gw
        .new_key(json!({"metadata": {"allowed_passthrough_routes": ["/private"]}}))
        .await;
    let r = gw.get_as(&granted, "/private/sub").await;
    assert_eq!(r.status(), 200);
    let rows = gw.spend_logs(&granted).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["call_type"], "pass_through_endpoint");
    assert_eq!(rows[0]["spend"], 0.5, "cost_per_request");

    // auth unset: a key is needed (LiteLLM 1.106's default).
    let r = gw.client.get(gw.url("/default")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = gw.get("/default").await;
    assert_eq!(r.status(), 200);

    // Methods outside the route's, and paths beside it.
    let r = gw.client.get(gw.url("/publicx")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn timeouts_and_connection_errors_are_openai_shaped() {
    let m = mock().await;
    let general = CUSTOM.replace("{ROOT}", &m.root());
    let gw = gateway(&config(&m, &general), None).await;
    let r = gw.client.get(gw.url("/slowpoke")).send().await.unwrap();
    assert_eq!(r.status(), 408);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "timeout_error");
    let r = gw.client.get(gw.url("/down")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("APIConnectionError"));
}

#[tokio::test]
async fn large_bodies_stream_through_unchanged() {
    let m = mock().await;
    let general = CUSTOM.replace("{ROOT}", &m.root());
    let gw = gateway(&config(&m, &general), None).await;
    // 3 MB of JSON: past the inspection limit, forwarded as it arrives.
    let big = format!("{{\"data\":\"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let r = gw
        .client
        .post(gw.url("/public"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["bytes"], big.len());
    assert_eq!(m.last().body.len(), big.len());
}

#[tokio::test]
async fn deployments_marked_for_pass_through_supply_the_credential() {
    let m = mock().await;
    let yaml = format!(
        "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: sk-ant-from-deployment\n      use_in_pass_through: true\n\
environment_variables:\n  ANTHROPIC_API_BASE: {root}\n  ANTHROPIC_API_KEY: sk-ant-env\n\
general_settings:\n  master_key: {MASTER}\n",
        root = m.root()
    );
    let gw = gateway(&yaml, None).await;
    let r = gw
        .client
        .post(gw.url("/anthropic/v1/messages"))
        .header("x-litellm-api-key", MASTER)
        .json(&json!({"model": "claude-haiku-4-5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&m.last(), "x-api-key"),
        Some("sk-ant-from-deployment")
    );
}
