//! `/v1/responses`: OpenAI's Responses API forwarded to OpenAI-format deployments (Azure's
//! resource-level URL included), plain and streamed, paid for from its usage; mocked offline;
//! refused for providers it cannot reach.

use crate::helpers::*;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;

const USAGE: &str = r#"{"input_tokens":12,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":17}"#;

async fn responses(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = record(&state, &uri, &headers, &body);
    let done = format!(
        r#"{{"id":"resp_up1","object":"response","status":"completed","model":"gpt-4o-2024-08-06","output":[{{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{{"type":"output_text","text":"Hello","annotations":[]}}]}}],"usage":{USAGE}}}"#
    );
    if req["stream"] != true {
        return ([("content-type", "application/json")], done).into_response();
    }
    let events = [
        (
            "response.created",
            r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_up1","object":"response","status":"in_progress","output":[]}}"#.to_string(),
        ),
        (
            "response.output_text.delta",
            r#"{"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hel"}"#.to_string(),
        ),
        (
            "response.output_text.delta",
            r#"{"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"lo"}"#.to_string(),
        ),
        (
            "response.completed",
            format!(r#"{{"type":"response.completed","sequence_number":3,"response":{done}}}"#),
        ),
    ];
    let text: String = events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect();
    ([("content-type", "text/event-stream")], Body::from(text)).into_response()
}

async fn responses_mock() -> MockUpstream {
    serve_mock(|state| {
        Router::new()
            .route("/v1/responses", post(responses))
            .route("/openai/responses", post(responses))
            .with_state(state)
    })
    .await
}

fn config() -> String {
    format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o, api_base: '{{MOCK}}', api_key: sk-up}}\n  - model_name: az\n    litellm_params: {{model: azure/my-dep, api_base: '{{MOCK_ROOT}}', api_key: az-key, api_version: 2025-03-01-preview}}\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: '{{MOCK_ROOT}}', api_key: k}}\n  - model_name: demo\n    litellm_params: {{model: openai/gpt-4o, mock_response: 'mocked answer'}}\ngeneral_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 1\n"
    )
}

#[tokio::test]
async fn responses_are_forwarded_and_paid_for() {
    let mock = responses_mock().await;
    let gw = gateway(&config(), Some(&mock)).await;
    let key = &gw.new_key(json!({})).await;

    let r = gw
        .post_as(
            key,
            "/v1/responses",
            json!({"model": "gpt-4o", "input": "hi"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let cost = header_f64(&r, "x-litellm-response-cost");
    // 12 input and 5 output tokens at gpt-4o's prices.
    assert!(
        (cost - (12.0 * 2.5e-6 + 5.0 * 1e-5)).abs() < 1e-12,
        "{cost}"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "resp_up1", "{v}");
    assert_eq!(v["output"][0]["content"][0]["text"], "Hello");
    let up = mock.last();
    assert_eq!(up.path, "/v1/responses");
    assert_eq!(up.body["model"], "gpt-4o");
    assert_eq!(up.body["input"], "hi");
    assert!(up.body.get("stream_options").is_none(), "{}", up.body);

    let r = gw
        .post_as(
            key,
            "/v1/responses",
            json!({"model": "gpt-4o", "input": "hi", "stream": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains("event: response.output_text.delta\ndata: {")
            && text.contains("\"delta\":\"Hel\""),
        "{text}"
    );
    assert!(text.trim_end().ends_with('}') && text.contains("event: response.completed"));
    assert!(mock.last().body.get("stream_options").is_none());

    // The other paths LiteLLM serves it on.
    for path in ["/responses", "/openai/v1/responses"] {
        let r = gw
            .post_as(key, path, json!({"model": "gpt-4o", "input": "hi"}))
            .await;
        assert_eq!(r.status(), 200, "{path}");
    }

    let logs = gw.spend_logs(key).await;
    assert_eq!(logs.len(), 4, "{logs:?}");
    for l in &logs {
        assert_eq!(l["call_type"], "aresponses", "{l}");
        assert_eq!(l["total_tokens"], 17, "{l}");
        assert_eq!(l["prompt_tokens"], 12, "{l}");
    }
}

#[tokio::test]
async fn azure_responses_go_to_the_resource_url() {
    let mock = responses_mock().await;
    let gw = gateway(&config(), Some(&mock)).await;
    let r = gw
        .post("/v1/responses", json!({"model": "az", "input": "hi"}))
        .await;
    assert_eq!(r.status(), 200);
    let up = mock.last();
    assert_eq!(up.path, "/openai/responses");
    assert_eq!(up.query.as_deref(), Some("api-version=2025-03-01-preview"));
    assert_eq!(up.body["model"], "my-dep");
    assert_eq!(up.headers["api-key"], "az-key");
}

#[tokio::test]
async fn responses_are_mocked_offline_and_refused_where_unsupported() {
    let gw = gateway(&config(), None).await;
    let r = gw
        .post("/v1/responses", json!({"model": "demo", "input": "hi"}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["content"][0]["text"], "mocked answer");
    assert_eq!(v["usage"]["total_tokens"], 123);

    let text = gw
        .post_text(
            "/v1/responses",
            json!({"model": "demo", "input": "hi", "stream": true}),
        )
        .await;
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.output_text.delta",
            "response.output_text.done",
            "response.completed"
        ],
        "{text}"
    );

    let r = gw
        .post("/v1/responses", json!({"model": "claude", "input": "hi"}))
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not support the Responses API"),
        "{v}"
    );
    let r = gw.post("/v1/responses", json!({"input": "hi"})).await;
    assert_eq!(r.status(), 400);
}

/// The budget check reserves a Responses call's worst case from its `max_output_tokens`: while
/// a call that may write 100,000 tokens ($1 at gpt-4o's prices) is in flight, a key with $0.01
/// left admits no other call; while one capped at 10 tokens is, it does.
#[tokio::test]
async fn responses_budget_reservation_reads_max_output_tokens() {
    let release = Arc::new(tokio::sync::Notify::new());
    let held = release.clone();
    let mock = serve_mock(move |state| {
        Router::new()
            .route(
                "/v1/responses",
                post(
                    move |s: State<Arc<MockState>>, uri: Uri, h: HeaderMap, b: Bytes| {
                        let held = held.clone();
                        async move {
                            let first = s.requests.lock().unwrap().is_empty();
                            let r = responses(s, uri, h, b).await;
                            if first {
                                held.notified().await;
                            }
                            r
                        }
                    },
                ),
            )
            .with_state(state)
    })
    .await;
    for (cap, second) in [(100_000, 400), (10, 200)] {
        mock.state.requests.lock().unwrap().clear();
        let gw = gateway(&config(), Some(&mock)).await;
        let key = gw.new_key(json!({"max_budget": 0.01})).await;
        let (client, url, k1) = (gw.client.clone(), gw.url("/v1/responses"), key.clone());
        let first = tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(k1)
                .json(&json!({"model": "gpt-4o", "input": "hi", "max_output_tokens": cap}))
                .send()
                .await
                .unwrap()
                .status()
        });
        while mock.count() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let r = gw
            .post_as(
                &key,
                "/v1/responses",
                json!({"model": "gpt-4o", "input": "hi", "max_output_tokens": 10}),
            )
            .await;
        assert_eq!(r.status(), second, "first call capped at {cap} tokens");
        release.notify_one();
        assert_eq!(first.await.unwrap(), 200);
    }
}
