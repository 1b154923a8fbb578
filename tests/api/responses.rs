//! `/v1/responses`: OpenAI's Responses API forwarded to OpenAI-format deployments (Azure's
//! resource-level URL included), plain and streamed, paid for from its usage; mocked offline;
//! refused for providers it cannot reach. Response ids are LiteLLM-managed: they name the
//! deployment that answered, `previous_response_id` goes back to it (when the group pins such
//! calls), and the routes on a stored response (`GET`/`DELETE /responses/{id}`, `input_items`,
//! `cancel`) call it with the upstream's own id. With a master key they are also bound to their
//! caller (LiteLLM's `ResponsesIDSecurity`): encrypted with the caller's user and team, and
//! refused to anyone else.

use crate::helpers::*;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use litellm_gateway::api::{response_id, response_owner};
use litellm_gateway::crypto::{Algorithm, SaltKey};
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

/// `POST /responses/compact`, as OpenAI answers it: a compaction with its usage.
async fn compact(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &uri, &headers, &body);
    let answer = format!(
        r#"{{"id":"resp_cmp1","object":"response.compaction","created_at":1700000000,"output":[{{"type":"compaction","id":"cmp_1","encrypted_content":"opaque"}}],"usage":{USAGE}}}"#
    );
    ([("content-type", "application/json")], answer).into_response()
}

/// `POST /responses/input_tokens`, as OpenAI answers it; an `input` of "fail" is a 500.
async fn input_tokens(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = record(&state, &uri, &headers, &body);
    if req["input"] == "fail" {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    (
        [("content-type", "application/json")],
        r#"{"object":"response.input_tokens","input_tokens":42}"#,
    )
        .into_response()
}

async fn responses_mock() -> MockUpstream {
    serve_mock(|state| {
        let on_stored = || get(stored).delete(stored);
        Router::new()
            .route("/v1/responses/input_tokens", post(input_tokens))
            .route("/v1/responses", post(responses))
            .route("/openai/responses", post(responses))
            .route("/v1/responses/compact", post(compact))
            .route("/openai/responses/compact", post(compact))
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

/// The key response ids are encrypted with in these configs: the master key (no
/// `LITELLM_SALT_KEY`).
fn salt() -> SaltKey {
    SaltKey::new(MASTER, Algorithm::default())
}

/// What an id the gateway issued names, and whom it is bound to: ((provider, deployment id,
/// upstream id), user, team).
fn issued(id: &Value) -> ((String, String, String), String, String) {
    let o = response_owner::open(&salt(), id.as_str().unwrap())
        .unwrap_or_else(|| panic!("not issued by the gateway: {id}"));
    (decoded(&Value::String(o.response_id)), o.user_id, o.team_id)
}

/// The id the gateway issues to `user` of `team` ("": none) for `upstream`, answered by `dep`.
fn issued_to(dep: &str, upstream: &str, user: &str, team: &str) -> String {
    let managed = response_id::encode("openai", dep, upstream);
    response_owner::seal(&salt(), &managed, user, team).unwrap()
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
    // Issued to the key, which has neither user nor team.
    assert_eq!(
        issued(&v["id"]),
        (
            ("openai".into(), model_id.clone(), "resp_up1".into()),
            String::new(),
            String::new()
        ),
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
    // The events carrying the response object name it by the one id issued to the key; the
    // others pass as they came.
    let events = event_data(&text);
    assert_eq!(events.len(), 4, "{text}");
    let streamed = &events[0]["response"]["id"];
    assert_eq!(
        issued(streamed).0,
        ("openai".into(), model_id.clone(), "resp_up1".into())
    );
    for e in &events {
        match e["type"].as_str().unwrap() {
            "response.created" | "response.completed" => {
                assert_eq!(&e["response"]["id"], streamed, "{e}")
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

/// Two deployments of one group on two upstreams, with their own keys; `general`: more
/// `general_settings` lines, `extra`: more top-level YAML.
fn two_deployments(a: &MockUpstream, b: &MockUpstream, general: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: sk-a}}\n    model_info: {{id: dep-a}}\n  - model_name: g\n    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: sk-b}}\n    model_info: {{id: dep-b}}\n  - model_name: other\n    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: sk-o}}\n    model_info: {{id: dep-o}}\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-haiku-4-5, api_key: k}}\n    model_info: {{id: dep-claude}}\n  - model_name: demo\n    litellm_params: {{model: openai/gpt-4o, mock_response: 'mocked answer'}}\n    model_info: {{id: dep-demo}}\ngeneral_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 1\n{general}{extra}",
        a.base(),
        b.base(),
        a.base()
    )
}

/// `router_settings` turning on LiteLLM's `previous_response_id` pinning for every group.
const PIN_ALL: &str =
    "router_settings:\n  optional_pre_call_checks: [responses_api_deployment_check]\n";

/// With `responses_api_deployment_check`, a `previous_response_id` LiteLLM issued goes back to
/// the deployment that answered, with the upstream's own id; an id that does not decode is
/// forwarded as sent, to any deployment. (The master key may send the managed id itself.)
#[tokio::test]
async fn previous_response_id_goes_back_to_its_deployment() {
    let (a, b) = (responses_mock().await, responses_mock().await);
    let gw = gateway(&two_deployments(&a, &b, "", PIN_ALL), None).await;
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
            assert_eq!(issued(&v["id"]).0 .1, dep);
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
/// response objects come back under the id asked for; nothing is charged.
#[tokio::test]
async fn stored_response_routes_reach_the_deployment_that_answered() {
    let (a, b) = (responses_mock().await, responses_mock().await);
    let gw = gateway(&two_deployments(&a, &b, "", ""), None).await;
    let key = gw.new_key(json!({"models": ["g"]})).await;
    let client = &gw.client;
    for (dep, mock, auth) in [("dep-a", &a, "Bearer sk-a"), ("dep-b", &b, "Bearer sk-b")] {
        // As issued to this key (no user, no team).
        let id = issued_to(dep, "resp_up1", "", "");
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
    // `GET ?stream=true` (a background response's events): forwarded as a stream, under the
    // id asked for.
    let id = issued_to("dep-b", "resp_up1", "", "");
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
    let missing = issued_to("dep-a", "resp_missing", "", "");
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
    let ((provider, _, upstream), user, _) = issued(&v["id"]);
    assert_eq!(
        (provider.as_str(), upstream.as_str(), user.as_str()),
        ("azure", "resp_up1", "default_user_id")
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
    let gw = gateway(&two_deployments(&a, &b, "", ""), None).await;
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

    let id = issued_to("dep-a", "resp_up1", "", "");
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

/// A `mock_response` deployment issues ids (plain and streamed) and answers the routes on a
/// stored response offline.
#[tokio::test]
async fn mocked_responses_have_managed_ids_and_offline_follow_ups() {
    let gw = gateway(&config(), None).await;
    let v: Value = gw
        .post("/v1/responses", json!({"model": "demo", "input": "hi"}))
        .await
        .json()
        .await
        .unwrap();
    let ((provider, model_id, upstream), _, _) = issued(&v["id"]);
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
    assert_eq!(issued(first).0 .1, "dep-demo");
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

/// The error body of a refused id: LiteLLM's 403 `permission_error`, whose message says why.
async fn refused(r: reqwest::Response, why: &str) {
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "permission_error", "{v}");
    assert_eq!(v["error"]["code"], "403", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains(why), "{message}");
}

/// The four routes on a stored response, as `key`: their statuses.
async fn follow_ups(gw: &Gateway, key: &str, id: &str) -> Vec<reqwest::Response> {
    let url = gw.url(&format!("/v1/responses/{id}"));
    let mut out = Vec::new();
    for call in [
        gw.client.get(&url),
        gw.client.get(format!("{url}/input_items")),
        gw.client.post(format!("{url}/cancel")),
        gw.client.delete(&url),
    ] {
        out.push(call.bearer_auth(key).send().await.unwrap());
    }
    out
}

/// Ids are issued bound to the caller's user and team: the same user (any of its keys), a key
/// of the same team naming no user, the master key and a `proxy_admin` user's key may use them;
/// another user or team gets LiteLLM's 403 on `previous_response_id` and on every route on the
/// stored response, and nothing reaches the upstream. An unencrypted id is refused to a key.
#[tokio::test]
async fn response_ids_are_bound_to_their_caller() {
    let (a, b) = (responses_mock().await, responses_mock().await);
    let gw = gateway(&two_deployments(&a, &b, "", PIN_ALL), None).await;
    for team in ["team-1", "team-2"] {
        let r = gw.post("/team/new", json!({"team_id": team})).await;
        assert_eq!(r.status(), 200);
    }
    let r = gw
        .post(
            "/user/new",
            json!({"user_id": "boss", "user_role": "proxy_admin"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let alice = gw
        .new_key(json!({"user_id": "alice", "team_id": "team-1"}))
        .await;
    let alice2 = gw
        .new_key(json!({"user_id": "alice", "team_id": "team-1"}))
        .await;
    let bob = gw
        .new_key(json!({"user_id": "bob", "team_id": "team-1"}))
        .await;
    let team1 = gw.new_key(json!({"team_id": "team-1"})).await;
    let team2 = gw.new_key(json!({"team_id": "team-2"})).await;
    let boss = gw.new_key(json!({"user_id": "boss"})).await;

    let r = gw
        .post_as(
            &alice,
            "/v1/responses",
            json!({"model": "g", "input": "hi"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let dep = r.headers()["x-litellm-model-id"]
        .to_str()
        .unwrap()
        .to_string();
    let id = r.json::<Value>().await.unwrap()["id"].clone();
    assert_eq!(
        issued(&id),
        (
            ("openai".into(), dep.clone(), "resp_up1".into()),
            "alice".into(),
            "team-1".into()
        )
    );
    let id = id.as_str().unwrap().to_string();
    // Streamed: the events carrying the response name it by one id, bound the same way.
    let text = gw
        .post_as(
            &alice,
            "/v1/responses",
            json!({"model": "g", "input": "hi", "stream": true}),
        )
        .await
        .text()
        .await
        .unwrap();
    let events = event_data(&text);
    let streamed = &events[0]["response"]["id"];
    assert_eq!(&events[3]["response"]["id"], streamed, "{text}");
    assert_eq!(
        (issued(streamed).1.as_str(), issued(streamed).2.as_str()),
        ("alice", "team-1")
    );
    refused(
        gw.get_as(
            &bob,
            &format!("/v1/responses/{}", streamed.as_str().unwrap()),
        )
        .await,
        "another user",
    )
    .await;

    // The owner, on another key of the same user: continued on the same deployment, with the
    // upstream's own id; the routes answer under the id asked for.
    let r = gw
        .post_as(
            &alice2,
            "/v1/responses",
            json!({"model": "g", "input": "more", "previous_response_id": id}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-model-id"], dep.as_str());
    let up = if dep == "dep-a" { &a } else { &b };
    assert_eq!(up.last().body["previous_response_id"], "resp_up1");
    for (i, r) in follow_ups(&gw, &alice2, &id).await.into_iter().enumerate() {
        assert_eq!(r.status(), 200, "route {i}");
        let v: Value = r.json().await.unwrap();
        if i != 1 {
            assert_eq!(v["id"], id.as_str(), "route {i}: {v}");
        }
    }
    // Admins: the master key and a proxy_admin user's key.
    for admin in [MASTER, boss.as_str()] {
        let r = gw.get_as(admin, &format!("/v1/responses/{id}")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["id"], id.as_str());
    }
    // Another user of the same team.
    let before = a.count() + b.count();
    let r = gw
        .post_as(
            &bob,
            "/v1/responses",
            json!({"model": "g", "input": "x", "previous_response_id": id}),
        )
        .await;
    refused(r, "another user").await;
    for r in follow_ups(&gw, &bob, &id).await {
        refused(r, "another user").await;
    }
    // A key naming no user is not alice, whatever its team.
    for k in [&team1, &team2] {
        refused(
            gw.get_as(k, &format!("/v1/responses/{id}")).await,
            "another user",
        )
        .await;
    }
    assert_eq!(
        a.count() + b.count(),
        before,
        "refused calls reach no upstream"
    );
    // An id issued to a key naming no user is held to its team only.
    let r = gw
        .post_as(
            &team1,
            "/v1/responses",
            json!({"model": "g", "input": "hi"}),
        )
        .await;
    let team_id = r.json::<Value>().await.unwrap()["id"].clone();
    assert_eq!(issued(&team_id).1, "");
    assert_eq!(issued(&team_id).2, "team-1");
    let team_id = team_id.as_str().unwrap();
    refused(
        gw.get_as(&team2, &format!("/v1/responses/{team_id}")).await,
        "another team",
    )
    .await;
    assert_eq!(
        gw.get_as(&bob, &format!("/v1/responses/{team_id}"))
            .await
            .status(),
        200
    );
    let before = a.count() + b.count();
    // Unencrypted ids (managed or not) are the master key's and admins' only.
    let managed = response_id::encode("openai", "dep-a", "resp_up1");
    refused(
        gw.get_as(&alice, &format!("/v1/responses/{managed}")).await,
        "allow_unmanaged_response_ids",
    )
    .await;
    let r = gw
        .post_as(
            &alice,
            "/v1/responses",
            json!({"model": "g", "input": "x", "previous_response_id": "resp_raw123"}),
        )
        .await;
    refused(r, "allow_unmanaged_response_ids").await;
    assert_eq!(
        gw.get_as(&boss, &format!("/v1/responses/{managed}"))
            .await
            .status(),
        200
    );
    assert_eq!(a.count() + b.count(), before + 1, "the admin's call only");
}

/// `allow_unmanaged_response_ids` lets keys use unencrypted ids (answers stay bound);
/// `disable_responses_id_security` issues plain managed ids and lets anyone use any id.
#[tokio::test]
async fn response_id_security_settings() {
    let (a, b) = (responses_mock().await, responses_mock().await);
    let managed = response_id::encode("openai", "dep-a", "resp_up1");
    let alices = issued_to("dep-a", "resp_up1", "alice", "");

    let gw = gateway(
        &two_deployments(&a, &b, "  allow_unmanaged_response_ids: true\n", ""),
        None,
    )
    .await;
    let bob = gw.new_key(json!({"user_id": "bob"})).await;
    let r = gw.get_as(&bob, &format!("/v1/responses/{managed}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], managed.as_str());
    refused(
        gw.get_as(&bob, &format!("/v1/responses/{alices}")).await,
        "another user",
    )
    .await;
    let r = gw
        .post_as(&bob, "/v1/responses", json!({"model": "g", "input": "hi"}))
        .await;
    assert_eq!(issued(&r.json::<Value>().await.unwrap()["id"]).1, "bob");

    let gw = gateway(
        &two_deployments(&a, &b, "  disable_responses_id_security: true\n", ""),
        None,
    )
    .await;
    let bob = gw.new_key(json!({"user_id": "bob"})).await;
    let r = gw
        .post_as(&bob, "/v1/responses", json!({"model": "g", "input": "hi"}))
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(decoded(&v["id"]).2, "resp_up1", "a plain managed id: {v}");
    for id in [managed.as_str(), alices.as_str()] {
        let r = gw.get_as(&bob, &format!("/v1/responses/{id}")).await;
        assert_eq!(r.status(), 200, "{id}");
        assert_eq!(a.last().path, "/v1/responses/resp_up1");
    }
}

/// Without a master key (and without `LITELLM_SALT_KEY`) nothing can be encrypted: ids go out
/// as plain managed ids and every id is accepted. With a salt key but no master key, ids are
/// encrypted and bound to nobody (every caller is an anonymous internal user), and unencrypted
/// ids are refused, as in LiteLLM.
#[tokio::test]
async fn response_ids_without_a_master_key() {
    let mock = responses_mock().await;
    let open = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: sk-a}}\n    model_info: {{id: dep-a}}\n",
        mock.base()
    );
    let gw = gateway(&open, None).await;
    let r = gw
        .client
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "g", "input": "hi"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        decoded(&v["id"]),
        ("openai".into(), "dep-a".into(), "resp_up1".into())
    );
    let id = v["id"].as_str().unwrap();
    let r = gw
        .client
        .get(gw.url(&format!("/v1/responses/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], id);

    let salted = format!("{open}environment_variables:\n  LITELLM_SALT_KEY: salt-only\n");
    let gw = gateway(&salted, None).await;
    let v: Value = gw
        .client
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "g", "input": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap();
    let o = response_owner::open(&SaltKey::new("salt-only", Algorithm::default()), id).unwrap();
    assert_eq!(
        (
            o.response_id.as_str(),
            o.user_id.as_str(),
            o.team_id.as_str()
        ),
        (
            response_id::encode("openai", "dep-a", "resp_up1").as_str(),
            "",
            ""
        )
    );
    let r = gw
        .client
        .get(gw.url(&format!("/v1/responses/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let managed = response_id::encode("openai", "dep-a", "resp_up1");
    let r = gw
        .client
        .get(gw.url(&format!("/v1/responses/{managed}")))
        .send()
        .await
        .unwrap();
    refused(r, "allow_unmanaged_response_ids").await;
}

/// Ids a LiteLLM 1.106.2 proxy issued (tests/fixtures/litellm_response_ids.json: both
/// encryption algorithms) work here under the same salt key: opened to the deployment and
/// upstream id they name, for the user and team they are bound to only.
#[tokio::test]
async fn ids_issued_by_litellm_work_here() {
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/litellm_response_ids.json")).unwrap();
    let mock = responses_mock().await;
    let yaml = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: sk-a}}\n    model_info: {{id: dep-a}}\nenvironment_variables:\n  LITELLM_SALT_KEY: {}\ngeneral_settings:\n  master_key: {MASTER}\n",
        mock.base(),
        fixture["salt_key"].as_str().unwrap()
    );
    let gw = gateway(&yaml, None).await;
    let r = gw.post("/team/new", json!({"team_id": "team-1"})).await;
    assert_eq!(r.status(), 200);
    let alice = gw
        .new_key(json!({"user_id": "alice@example.com", "team_id": "team-1"}))
        .await;
    let stranger = gw.new_key(json!({"user_id": "mallory"})).await;
    let mut tried = 0;
    for case in fixture["issued_by_litellm"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let (user, team) = (
            case["user_id"].as_str().unwrap(),
            case["team_id"].as_str().unwrap(),
        );
        let names_dep_a =
            case["inner"] == response_id::encode("openai", "dep-a", "resp_upstream123").as_str();
        let alice_may = (user.is_empty() || user == "alice@example.com")
            && (team.is_empty() || team == "team-1");
        let r = gw.get_as(&alice, &format!("/v1/responses/{id}")).await;
        if !alice_may {
            refused(r, "another").await;
            continue;
        }
        if !names_dep_a {
            // Opened, but what it holds names no deployment.
            assert_eq!(r.status(), 400, "{id}");
            continue;
        }
        assert_eq!(r.status(), 200, "{id}");
        assert_eq!(r.json::<Value>().await.unwrap()["id"], id);
        assert_eq!(mock.last().path, "/v1/responses/resp_upstream123");
        let bound = !user.is_empty() || !team.is_empty();
        let status = gw
            .get_as(&stranger, &format!("/v1/responses/{id}"))
            .await
            .status();
        assert_eq!(status, if bound { 403 } else { 200 }, "{id}");
        tried += 1;
    }
    assert_eq!(
        tried, 6,
        "alice's, team-1's and nobody's, in both algorithms"
    );
}

/// LiteLLM pins a `previous_response_id` to its deployment only when asked
/// (`responses_api_deployment_check` in `optional_pre_call_checks`, or in the group's entry of
/// `model_group_affinity_config`); otherwise the strategy picks as for any call.
#[tokio::test]
async fn previous_response_id_pinning_is_opt_in() {
    let (a, b) = (responses_mock().await, responses_mock().await);
    let prev = response_id::encode("openai", "dep-a", "resp_up1");
    let by_group = "router_settings:\n  model_group_affinity_config:\n    g: [responses_api_deployment_check]\n";
    let overridden = "router_settings:\n  optional_pre_call_checks: [responses_api_deployment_check]\n  model_group_affinity_config:\n    g: [deployment_affinity]\n";
    for (extra, pinned) in [
        ("", false),
        (by_group, true),
        (PIN_ALL, true),
        (overridden, false),
    ] {
        let gw = gateway(&two_deployments(&a, &b, "", extra), None).await;
        let before = (a.count(), b.count());
        for _ in 0..24 {
            let r = gw
                .post(
                    "/v1/responses",
                    json!({"model": "g", "input": "more", "previous_response_id": prev}),
                )
                .await;
            assert_eq!(r.status(), 200);
        }
        let sent = (a.count() - before.0, b.count() - before.1);
        if pinned {
            assert_eq!(sent, (24, 0), "{extra}");
        } else {
            assert!(sent.0 > 0 && sent.1 > 0, "{extra}: {sent:?}");
        }
    }
}

/// The routes on a stored response are gated like any LLM route: a key over its budget is
/// refused, each call takes one request from the key's rate limit, and each is counted in the
/// proxy's request metrics under its route template.
#[tokio::test]
async fn stored_response_routes_count_against_limits_and_metrics() {
    let (a, b) = (responses_mock().await, responses_mock().await);
    let gw = gateway(
        &two_deployments(
            &a,
            &b,
            "",
            "litellm_settings:\n  callbacks: [\"prometheus\"]\n",
        ),
        None,
    )
    .await;
    let limited = gw.new_key(json!({"rpm_limit": 2})).await;
    let id = issued_to("dep-a", "resp_up1", "", "");
    for _ in 0..2 {
        let r = gw.get_as(&limited, &format!("/v1/responses/{id}")).await;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()
                .keys()
                .any(|h| h.as_str().starts_with("x-ratelimit-")
                    && h.as_str().ends_with("remaining-requests")),
            "{:?}",
            r.headers()
        );
    }
    let r = gw
        .get_as(&limited, &format!("/v1/responses/{id}/input_items"))
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(a.count(), 2);

    // A create call spends more than the key's budget; the routes are refused afterwards.
    let poor = gw.new_key(json!({"max_budget": 0.00001})).await;
    let r = gw
        .post_as(&poor, "/v1/responses", json!({"model": "g", "input": "hi"}))
        .await;
    assert_eq!(r.status(), 200);
    let r = gw.get_as(&poor, &format!("/v1/responses/{id}")).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "budget_exceeded", "{v}");

    let text = gw.get("/metrics").await.text().await.unwrap();
    let count = |route: &str, status: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with("litellm_proxy_total_requests_metric_total{")
                    && l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("status_code=\"{status}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(count("/v1/responses/{response_id}", "200"), 2.0, "{text}");
    assert_eq!(count("/v1/responses/{response_id}", "400"), 1.0, "{text}");
    assert_eq!(
        count("/v1/responses/{response_id}/input_items", "429"),
        1.0,
        "{text}"
    );
    assert!(!text.contains(&id), "ids stay out of the labels");
}

/// `POST /v1/responses/compact` goes through the pipeline like a Responses call: to the
/// deployment's Responses URL plus `/compact` (Azure's query kept), `previous_response_id`
/// checked against its caller and opened, the answer's id issued to the caller, paid for from
/// its usage as `acompact_responses`.
#[tokio::test]
async fn compaction_is_a_responses_call() {
    let mock = responses_mock().await;
    let gw = gateway(&config(), Some(&mock)).await;
    let alice = gw.new_key(json!({"user_id": "alice"})).await;
    let bob = gw.new_key(json!({"user_id": "bob"})).await;
    let r = gw
        .post_as(
            &alice,
            "/v1/responses",
            json!({"model": "gpt-4o", "input": "hi"}),
        )
        .await;
    let prev = r.json::<Value>().await.unwrap()["id"].clone();
    for path in [
        "/v1/responses/compact",
        "/responses/compact",
        "/openai/v1/responses/compact",
    ] {
        let r = gw
            .post_as(
                &alice,
                path,
                json!({"model": "gpt-4o", "input": [{"role": "user", "content": "hi"}], "previous_response_id": prev}),
            )
            .await;
        assert_eq!(r.status(), 200, "{path}");
        let model_id = r.headers()["x-litellm-model-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(header_f64(&r, "x-litellm-response-cost") > 0.0);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["object"], "response.compaction");
        assert_eq!(v["output"][0]["encrypted_content"], "opaque");
        assert_eq!(
            issued(&v["id"]),
            (
                ("openai".into(), model_id, "resp_cmp1".into()),
                "alice".into(),
                String::new()
            )
        );
        let up = mock.last();
        assert_eq!(up.path, "/v1/responses/compact");
        assert_eq!(up.body["model"], "gpt-4o");
        assert_eq!(up.body["previous_response_id"], "resp_up1");
    }
    let logs = gw.spend_logs(&alice).await;
    let compactions: Vec<&Value> = logs
        .iter()
        .filter(|l| l["call_type"] == "acompact_responses")
        .collect();
    assert_eq!(compactions.len(), 3, "{logs:?}");
    assert!(compactions.iter().all(|l| l["total_tokens"] == 17));

    let before = mock.count();
    let r = gw
        .post_as(
            &bob,
            "/v1/responses/compact",
            json!({"model": "gpt-4o", "input": "x", "previous_response_id": prev}),
        )
        .await;
    refused(r, "another user").await;
    let r = gw
        .post_as(&alice, "/v1/responses/compact", json!({"model": "gpt-4o"}))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], "input");
    assert_eq!(mock.count(), before);

    let r = gw
        .post(
            "/v1/responses/compact",
            json!({"model": "az", "input": "hi"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let up = mock.last();
    assert_eq!(up.path, "/openai/responses/compact");
    assert_eq!(up.query.as_deref(), Some("api-version=2025-03-01-preview"));
    assert_eq!(up.body["model"], "my-dep");
}

/// `POST /v1/responses/input_tokens`: an OpenAI deployment counts for itself; other
/// deployments (and a failed count) are estimated; LiteLLM's 400s for a missing `model` or
/// `input`; the key must be allowed the model.
#[tokio::test]
async fn input_tokens_are_counted_by_openai_or_estimated() {
    let mock = responses_mock().await;
    let gw = gateway(&config(), Some(&mock)).await;
    let body = json!({"model": "gpt-4o", "input": [{"role": "user", "content": "hello there"}], "instructions": "be brief", "tools": [], "temperature": 0.2});
    for path in [
        "/v1/responses/input_tokens",
        "/responses/input_tokens",
        "/openai/v1/responses/input_tokens",
    ] {
        let r = gw.post(path, body.clone()).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"object": "response.input_tokens", "input_tokens": 42, "litellm_count_source": "provider"})
        );
    }
    let up = mock.last();
    assert_eq!(up.path, "/v1/responses/input_tokens");
    assert_eq!(up.headers["authorization"], "Bearer sk-up");
    assert_eq!(
        up.body,
        json!({"model": "gpt-4o", "input": [{"role": "user", "content": "hello there"}], "instructions": "be brief", "tools": []})
    );
    let count = mock.count();
    // Estimated: another provider, a mock deployment, a failed count.
    for (model, input) in [
        ("az", "x".repeat(40)),
        ("demo", "x".repeat(40)),
        ("gpt-4o", "fail".into()),
    ] {
        let r = gw
            .post(
                "/v1/responses/input_tokens",
                json!({"model": model, "input": input}),
            )
            .await;
        assert_eq!(r.status(), 200, "{model}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["litellm_count_source"], "local_estimate", "{model}: {v}");
        let n = v["input_tokens"].as_u64().unwrap();
        assert!((1..=10).contains(&n), "{model}: {v}");
    }
    assert_eq!(
        mock.count(),
        count + 1,
        "only the failing OpenAI count went out"
    );

    for (body, param) in [
        (json!({"input": "hi"}), json!("model")),
        (json!({"model": "gpt-4o"}), json!("input")),
        (json!({"model": "gpt-4o", "input": []}), Value::Null),
        (json!({"model": "gpt-4o", "input": ""}), Value::Null),
    ] {
        let r = gw.post("/v1/responses/input_tokens", body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "missing_required_parameter", "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert_eq!(v["error"]["param"], param, "{v}");
    }
    let key = gw.new_key(json!({"models": ["demo"]})).await;
    let r = gw
        .post_as(
            &key,
            "/v1/responses/input_tokens",
            json!({"model": "gpt-4o", "input": "hi"}),
        )
        .await;
    assert_eq!(r.status(), 401);
}
