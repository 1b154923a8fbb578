//! `/v1/responses`: OpenAI's Responses API forwarded to OpenAI-format deployments (Azure's
//! resource-level URL included), plain and streamed, paid for from its usage; mocked offline;
//! refused for providers it cannot reach. Response ids are LiteLLM-managed: they name the
//! deployment that answered, `previous_response_id` goes back to it, and the routes on a stored
//! response (`GET`/`DELETE /responses/{id}`, `input_items`, `cancel`) call it with the
//! upstream's own id.

use crate::helpers::*;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use litellm_gateway::api::response_id;
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

/// `GET`/`DELETE /responses/{id}`, `.../input_items` and `.../cancel`, as OpenAI answers them:
/// the stored response under the id asked for; `resp_missing` is not found; `GET ?stream=true`
/// replays the response's events.
async fn stored(
    State(state): State<Arc<MockState>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &uri, &headers, &body);
    let mut parts = uri.path().rsplit('/');
    let last = parts.next().unwrap_or("");
    let (id, op) = match last {
        "input_items" | "cancel" => (parts.next().unwrap_or(""), last),
        id => (id, ""),
    };
    if id == "resp_missing" {
        return (
            axum::http::StatusCode::NOT_FOUND,
            [("content-type", "application/json")],
            r#"{"error":{"message":"Response with id 'resp_missing' not found.","type":"invalid_request_error","param":null,"code":null}}"#,
        )
            .into_response();
    }
    let answer = match (method.as_str(), op) {
        ("DELETE", _) => json!({"id": id, "object": "response", "deleted": true}),
        (_, "input_items") => {
            json!({"object": "list", "data": [{"id": "msg_in", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}], "first_id": "msg_in", "last_id": "msg_in", "has_more": false})
        }
        (_, "cancel") => {
            json!({"id": id, "object": "response", "status": "cancelled", "output": []})
        }
        _ if uri.query().is_some_and(|q| q.contains("stream=true")) => {
            let text = format!(
                "event: response.created\ndata: {{\"type\":\"response.created\",\"sequence_number\":0,\"response\":{{\"id\":\"{id}\",\"status\":\"in_progress\"}}}}\n\n\
                 event: response.completed\ndata: {{\"type\":\"response.completed\",\"sequence_number\":1,\"response\":{{\"id\":\"{id}\",\"status\":\"completed\",\"usage\":{USAGE}}}}}\n\n"
            );
            return ([("content-type", "text/event-stream")], text).into_response();
        }
        _ => {
            json!({"id": id, "object": "response", "status": "completed", "output": [], "usage": serde_json::from_str::<Value>(USAGE).unwrap()})
        }
    };
    ([("content-type", "application/json")], answer.to_string()).into_response()
}

async fn responses_mock() -> MockUpstream {
    serve_mock(|state| {
        let on_stored = || get(stored).delete(stored);
        Router::new()
            .route("/v1/responses", post(responses))
            .route("/openai/responses", post(responses))
            .route("/v1/responses/{id}", on_stored())
            .route("/v1/responses/{id}/input_items", get(stored))
            .route("/v1/responses/{id}/cancel", post(stored))
            .route("/openai/responses/{id}", on_stored())
            .route("/openai/responses/{id}/input_items", get(stored))
            .route("/openai/responses/{id}/cancel", post(stored))
            .with_state(state)
    })
    .await
}

/// The JSON payloads of a stream of named SSE events.
fn event_data(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// What a managed id names: (provider, deployment id, upstream id).
fn decoded(id: &Value) -> (String, String, String) {
    let m =
        response_id::decode(id.as_str().unwrap()).unwrap_or_else(|| panic!("not managed: {id}"));
    (m.provider.unwrap(), m.model_id.unwrap(), m.response_id)
}

fn config() -> String {
    format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o, api_base: '{{MOCK}}', api_key: sk-up}}\n  - model_name: az\n    litellm_params: {{model: azure/my-dep, api_base: '{{MOCK_ROOT}}', api_key: az-key, api_version: 2025-03-01-preview}}\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: '{{MOCK_ROOT}}', api_key: k}}\n  - model_name: demo\n    litellm_params: {{model: openai/gpt-4o, mock_response: 'mocked answer'}}\n    model_info: {{id: dep-demo}}\ngeneral_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 1\n"
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
    let model_id = r.headers()["x-litellm-model-id"]
        .to_str()
        .unwrap()
        .to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        decoded(&v["id"]),
        ("openai".into(), model_id.clone(), "resp_up1".into()),
        "{v}"
    );
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
    // The events carrying the response object name it by its managed id; the others pass as
    // they came.
    let managed = response_id::encode("openai", &model_id, "resp_up1");
    let events = event_data(&text);
    assert_eq!(events.len(), 4, "{text}");
    for e in &events {
        match e["type"].as_str().unwrap() {
            "response.created" | "response.completed" => {
                assert_eq!(e["response"]["id"], managed.as_str(), "{e}")
            }
            _ => assert!(e.get("response").is_none(), "{e}"),
        }
    }
    assert!(!text.contains("\"resp_up1\""), "{text}");
    assert_eq!(events[3]["response"]["usage"]["total_tokens"], 17);

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

/// Two deployments of one group on two upstreams, with their own keys.
fn two_deployments(a: &MockUpstream, b: &MockUpstream) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: sk-a}}\n    model_info: {{id: dep-a}}\n  - model_name: g\n    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: sk-b}}\n    model_info: {{id: dep-b}}\n  - model_name: other\n    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: sk-o}}\n    model_info: {{id: dep-o}}\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-haiku-4-5, api_key: k}}\n    model_info: {{id: dep-claude}}\n  - model_name: demo\n    litellm_params: {{model: openai/gpt-4o, mock_response: 'mocked answer'}}\n    model_info: {{id: dep-demo}}\ngeneral_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 1\n",
        a.base(),
        b.base(),
        a.base()
    )
}

/// A `previous_response_id` LiteLLM issued goes back to the deployment that answered, with the
/// upstream's own id; an id that does not decode is forwarded as sent, to any deployment.
#[tokio::test]
async fn previous_response_id_goes_back_to_its_deployment() {
    let (a, b) = (responses_mock().await, responses_mock().await);
    let gw = gateway(&two_deployments(&a, &b), None).await;
    for (dep, mock) in [("dep-a", &a), ("dep-b", &b)] {
        let prev = response_id::encode("openai", dep, "resp_up1");
        let before = (a.count(), b.count());
        for _ in 0..6 {
            let r = gw
                .post(
                    "/v1/responses",
                    json!({"model": "g", "input": "more", "previous_response_id": prev}),
                )
                .await;
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["x-litellm-model-id"], dep);
            let v: Value = r.json().await.unwrap();
            assert_eq!(decoded(&v["id"]).1, dep);
        }
        let sent = (a.count() - before.0, b.count() - before.1);
        assert_eq!(sent, if dep == "dep-a" { (6, 0) } else { (0, 6) });
        assert_eq!(mock.last().body["previous_response_id"], "resp_up1");
    }
    // A deployment outside the requested group does not pin the call: the group serves it,
    // still with the upstream's own id.
    let prev = response_id::encode("openai", "dep-o", "resp_up9");
    let r = gw
        .post(
            "/v1/responses",
            json!({"model": "g", "input": "x", "previous_response_id": prev, "stream": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let served = r.headers()["x-litellm-model-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(served == "dep-a" || served == "dep-b", "{served}");
    r.text().await.unwrap();
    let all: Vec<Recorded> = [&a, &b]
        .iter()
        .flat_map(|m| m.state.requests.lock().unwrap().clone())
        .collect();
    assert!(all
        .iter()
        .any(|r| r.body["previous_response_id"] == "resp_up9"));
    // Not a managed id: forwarded untouched, the strategy picks as usual.
    for _ in 0..2 {
        let r = gw
            .post(
                "/v1/responses",
                json!({"model": "g", "input": "x", "previous_response_id": "resp_raw123"}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let last = [a.last(), b.last()];
    assert!(last
        .iter()
        .any(|r| r.body["previous_response_id"] == "resp_raw123"));
}

/// `GET`, `DELETE`, `input_items` and `cancel` on a stored response reach the deployment its id
/// names, on every prefix, with the upstream's id, that deployment's key and the client's query;
/// response objects come back under their managed id; nothing is charged.
#[tokio::test]
async fn stored_response_routes_reach_the_deployment_that_answered() {
    let (a, b) = (responses_mock().await, responses_mock().await);
    let gw = gateway(&two_deployments(&a, &b), None).await;
    let key = gw.new_key(json!({"models": ["g"]})).await;
    let client = &gw.client;
    for (dep, mock, auth) in [("dep-a", &a, "Bearer sk-a"), ("dep-b", &b, "Bearer sk-b")] {
        let id = response_id::encode("openai", dep, "resp_up1");
        for prefix in ["", "/v1", "/openai/v1"] {
            let url = gw.url(&format!("{prefix}/responses/{id}"));
            let before = (a.count(), b.count());
            let calls = [
                ("GET", client.get(&url), "/v1/responses/resp_up1", None),
                (
                    "DELETE",
                    client.delete(&url),
                    "/v1/responses/resp_up1",
                    None,
                ),
                (
                    "GET",
                    client.get(format!("{url}/input_items?limit=5&order=asc")),
                    "/v1/responses/resp_up1/input_items",
                    Some("limit=5&order=asc"),
                ),
                (
                    "POST",
                    client.post(format!("{url}/cancel")),
                    "/v1/responses/resp_up1/cancel",
                    None,
                ),
            ];
            for (method, call, path, query) in calls {
                let r = call.bearer_auth(&key).send().await.unwrap();
                assert_eq!(r.status(), 200, "{method} {path} on {prefix}");
                assert_eq!(r.headers()["x-litellm-model-id"], dep);
                let v: Value = r.json().await.unwrap();
                let up = mock.last();
                assert_eq!((up.path.as_str(), up.query.as_deref()), (path, query));
                assert_eq!(up.headers["authorization"], auth);
                if path.ends_with("/input_items") {
                    assert_eq!(v["data"][0]["id"], "msg_in", "{v}");
                } else {
                    assert_eq!(v["id"], id.as_str(), "{method} {path}: {v}");
                }
                if path.ends_with("/cancel") {
                    assert_eq!(up.body, json!({}));
                    assert_eq!(v["status"], "cancelled");
                }
                if method == "DELETE" {
                    assert_eq!(v["deleted"], true);
                }
            }
            let sent = (a.count() - before.0, b.count() - before.1);
            assert_eq!(sent, if dep == "dep-a" { (4, 0) } else { (0, 4) });
        }
    }
    // `GET ?stream=true` (a background response's events): forwarded as a stream, ids managed.
    let id = response_id::encode("openai", "dep-b", "resp_up1");
    let r = gw
        .get_as(&key, &format!("/v1/responses/{id}?stream=true"))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = event_data(&r.text().await.unwrap());
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["response"]["id"] == id.as_str()));
    assert_eq!(b.last().query.as_deref(), Some("stream=true"));
    // The upstream's own errors come back in LiteLLM's shape.
    let missing = response_id::encode("openai", "dep-a", "resp_missing");
    let r = gw.get_as(&key, &format!("/v1/responses/{missing}")).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Response with id 'resp_missing' not found."),
        "{v}"
    );
    assert!(
        gw.spend_logs(&key).await.is_empty(),
        "follow-ups are not charged"
    );
}

/// Azure keeps its resource-level form: `/openai/responses/{id}?api-version=...`, `api-key`.
#[tokio::test]
async fn azure_stored_responses_use_the_resource_url() {
    let mock = responses_mock().await;
    let gw = gateway(&config(), Some(&mock)).await;
    let r = gw
        .post("/v1/responses", json!({"model": "az", "input": "hi"}))
        .await;
    let v: Value = r.json().await.unwrap();
    let (provider, _, upstream) = decoded(&v["id"]);
    assert_eq!(
        (provider.as_str(), upstream.as_str()),
        ("azure", "resp_up1")
    );
    let id = v["id"].as_str().unwrap();
    let r = gw.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], id);
    let up = mock.last();
    assert_eq!(up.path, "/openai/responses/resp_up1");
    assert_eq!(up.query.as_deref(), Some("api-version=2025-03-01-preview"));
    assert_eq!(up.headers["api-key"], "az-key");
    let r = gw
        .get(&format!("/v1/responses/{id}/input_items?limit=2"))
        .await;
    assert_eq!(r.status(), 200);
    let up = mock.last();
    assert_eq!(up.path, "/openai/responses/resp_up1/input_items");
    assert_eq!(
        up.query.as_deref(),
        Some("api-version=2025-03-01-preview&limit=2")
    );
    let r = gw
        .client
        .delete(gw.url(&format!("/openai/v1/responses/{id}")))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(mock.last().path, "/openai/responses/resp_up1");
}

/// Ids that name no deployment get LiteLLM's 400; a key without the deployment's model group
/// gets the same 401 as for a call to it; a provider without the Responses API a 400.
#[tokio::test]
async fn stored_response_routes_refuse_what_they_cannot_serve() {
    let (a, b) = (responses_mock().await, responses_mock().await);
    let gw = gateway(&two_deployments(&a, &b), None).await;
    let message = |v: &Value| v["error"]["message"].as_str().unwrap().to_string();
    for (id, model) in [
        ("resp_raw123".to_string(), "None"),
        (
            "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b".to_string(),
            "None",
        ),
        (response_id::encode("openai", "gone", "resp_1"), "gone"),
    ] {
        let r = gw.get(&format!("/v1/responses/{id}")).await;
        assert_eq!(r.status(), 400, "{id}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            message(&v),
            format!("litellm.BadRequestError: You passed in model={model}. There are no healthy deployments for this model")
        );
    }
    assert_eq!(a.count() + b.count(), 0);

    let id = response_id::encode("openai", "dep-a", "resp_up1");
    let other_key = gw.new_key(json!({"models": ["other"]})).await;
    let r = gw.get_as(&other_key, &format!("/v1/responses/{id}")).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "key_model_access_denied", "{v}");
    assert!(message(&v).contains("Tried to access g"), "{v}");
    let r = gw
        .client
        .post(gw.url(&format!("/responses/{id}/cancel")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(a.count(), 0, "nothing reached the upstream");
    let r = gw
        .get_as("sk-not-a-key", &format!("/v1/responses/{id}"))
        .await;
    assert_eq!(r.status(), 401);

    let claude = response_id::encode("anthropic", "dep-claude", "msg_1");
    let r = gw.get(&format!("/v1/responses/{claude}")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        message(&r.json().await.unwrap()),
        "litellm.BadRequestError: GET responses is not supported for anthropic"
    );
}

/// A `mock_response` deployment issues managed ids (plain and streamed) and answers the routes
/// on a stored response offline.
#[tokio::test]
async fn mocked_responses_have_managed_ids_and_offline_follow_ups() {
    let gw = gateway(&config(), None).await;
    let v: Value = gw
        .post("/v1/responses", json!({"model": "demo", "input": "hi"}))
        .await
        .json()
        .await
        .unwrap();
    let (provider, model_id, upstream) = decoded(&v["id"]);
    assert_eq!(
        (provider.as_str(), model_id.as_str()),
        ("openai", "dep-demo")
    );
    assert!(upstream.starts_with("resp_"), "{upstream}");
    let id = v["id"].as_str().unwrap();

    let events = event_data(
        &gw.post_text(
            "/v1/responses",
            json!({"model": "demo", "input": "hi", "stream": true}),
        )
        .await,
    );
    let first = &events[0]["response"]["id"];
    assert_eq!(decoded(first).1, "dep-demo");
    assert_eq!(&events[3]["response"]["id"], first);

    let r = gw.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["id"], id);
    assert_eq!(got["status"], "completed");
    assert_eq!(got["output"][0]["content"][0]["text"], "mocked answer");
    let del: Value = gw
        .client
        .delete(gw.url(&format!("/responses/{id}")))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        del,
        json!({"id": id, "object": "response", "deleted": true})
    );
    let items: Value = gw
        .get(&format!("/v1/responses/{id}/input_items"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(items["object"], "list");
    assert_eq!(items["data"], json!([]));
    let r = gw
        .client
        .post(gw.url(&format!("/v1/responses/{id}/cancel")))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], id);
}
