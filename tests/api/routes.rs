use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn models_and_model_info() {
    let mock = mock_upstream().await;
    let yaml = format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o, api_base: '{{MOCK}}', api_key: sk-very-secret}}\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o-2, api_base: '{{MOCK}}', api_key: sk-very-secret}}\n    model_info: {{id: my-fixed-id, max_input_tokens: 1000}}\n  - model_name: emb\n    litellm_params: {{model: openai/emb, api_base: '{{MOCK}}'}}\n    model_info: {{mode: embedding}}\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&yaml, Some(&mock)).await;
    for p in ["/v1/models", "/models"] {
        let v: Value = gw.get(p).await.json().await.unwrap();
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["gpt-4o", "emb"]);
        assert_eq!(v["data"][0]["created"], 1677610602);
        assert_eq!(v["data"][0]["owned_by"], "openai");
        assert_eq!(v["object"], "list");
    }
    let r = gw.get("/v1/models/gpt-4o").await;
    assert_eq!(r.status(), 200);
    assert_eq!(gw.get("/v1/models/nope").await.status(), 404);

    let text = gw.get("/model/info").await.text().await.unwrap();
    assert!(
        !text.contains("sk-very-secret"),
        "api keys must never be returned"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[1]["model_info"]["id"], "my-fixed-id");
    assert_eq!(data[0]["model_info"]["id"].as_str().unwrap().len(), 64);
    assert_eq!(data[2]["model_info"]["mode"], "embedding");
    // LiteLLM's price map fills what the config leaves out (gpt-4o's context window and
    // prices); what the config sets wins (the second deployment's input window).
    let gpt = &data[0]["model_info"];
    assert_eq!(gpt["key"], "gpt-4o", "{gpt}");
    assert_eq!(gpt["max_input_tokens"], 128000);
    assert_eq!(gpt["max_output_tokens"], 16384);
    assert_eq!(gpt["input_cost_per_token"], 2.5e-6);
    assert_eq!(gpt["cache_read_input_token_cost"], 1.25e-6);
    assert_eq!(gpt["litellm_provider"], "openai");
    assert_eq!(gpt["mode"], "chat");
    assert_eq!(data[1]["model_info"]["max_input_tokens"], 1000);
    assert_eq!(data[2]["model_info"]["max_input_tokens"], Value::Null);
    assert!(data[2]["model_info"].get("key").is_none());
    let v: Value = gw
        .get("/model/info?litellm_model_id=my-fixed-id")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn health_reports_healthy_and_unhealthy_deployments() {
    let mock = mock_upstream().await;
    let yaml = format!(
        "model_list:\n  - model_name: good\n    litellm_params: {{model: openai/good, api_base: '{{MOCK}}', api_key: sk-secret-1}}\n  - model_name: bad\n    litellm_params: {{model: openai/err-401, api_base: '{{MOCK}}', api_key: sk-secret-2}}\n  - model_name: dead\n    litellm_params: {{model: openai/x, api_base: 'http://127.0.0.1:1/v1'}}\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&yaml, Some(&mock)).await;
    let text = gw.get("/health").await.text().await.unwrap();
    assert!(!text.contains("sk-secret"));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["healthy_count"], 1, "{v}");
    assert_eq!(v["unhealthy_count"], 2, "{v}");
    assert_eq!(v["healthy_endpoints"][0]["model"], "openai/good");
    assert!(v["unhealthy_endpoints"][0]["error"].is_string());
    let v: Value = gw.get("/health?model=good").await.json().await.unwrap();
    assert_eq!(v["healthy_count"], 1);
    assert_eq!(v["unhealthy_count"], 0);
}

#[tokio::test]
async fn cors_preflight_is_answered() {
    let gw = gateway(&config_for(&[], ""), None).await;
    let r = gw
        .client
        .request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
        .header("origin", "http://example.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert!(r.headers().contains_key("access-control-allow-origin"));
    // A browser's call gets the CORS headers, errors included; a call without `Origin` (SDKs,
    // servers) gets none, as through LiteLLM's CORS middleware.
    let r = gw
        .client
        .get(gw.url("/health/liveliness"))
        .header("origin", "http://example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://example.test"
    );
    let r = gw
        .client
        .get(gw.url("/no/such/route"))
        .header("origin", "http://example.test")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert!(r.headers().contains_key("access-control-allow-origin"));
    let r = gw
        .client
        .get(gw.url("/health/liveliness"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    assert!(!r.headers().contains_key("vary"));
}

/// `POST` to the LLM paths is served ahead of the router (no `Origin`) or through it (with
/// one): both answer the same way, and other methods and near-miss paths still get the
/// router's JSON errors.
#[tokio::test]
async fn llm_calls_answer_alike_ahead_of_and_through_the_router() {
    let yaml = format!(
        "model_list:\n  - model_name: demo\n    litellm_params: {{model: openai/demo, mock_response: hi}}\n  - model_name: emb\n    litellm_params: {{model: openai/emb, mock_response: hi}}\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&yaml, None).await;
    for origin in [None, Some("http://example.test")] {
        for (path, body) in [
            ("/v1/chat/completions", chat_body("demo")),
            ("/chat/completions", chat_body("demo")),
            (
                "/v1/completions",
                serde_json::json!({"model": "demo", "prompt": "hi"}),
            ),
            (
                "/embeddings",
                serde_json::json!({"model": "emb", "input": "hi"}),
            ),
        ] {
            let send = |key: Option<&str>| {
                let mut rq = gw.client.post(gw.url(path)).json(&body);
                if let Some(k) = key {
                    rq = rq.bearer_auth(k);
                }
                if let Some(o) = origin {
                    rq = rq.header("origin", o);
                }
                rq.send()
            };
            let r = send(Some(MASTER)).await.unwrap();
            assert_eq!(r.status(), 200, "{path} {origin:?}");
            for h in [
                "x-litellm-call-id",
                "x-litellm-version",
                "x-litellm-response-duration-ms",
                "x-content-type-options",
            ] {
                assert!(r.headers().contains_key(h), "{path} {origin:?}: {h}");
            }
            assert_eq!(
                r.headers().contains_key("access-control-allow-origin"),
                origin.is_some()
            );
            let r = send(None).await.unwrap();
            assert_eq!(r.status(), 401, "{path} {origin:?}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["type"], "auth_error");
            let r = send(Some("sk-wrong")).await.unwrap();
            assert_eq!(r.status(), 401, "{path} {origin:?}");
        }
    }
    let r = gw.get("/v1/chat/completions").await;
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not allowed"));
    for path in [
        "/v1/v1/chat/completions",
        "/v1chat/completions",
        "/chat/completions/",
    ] {
        let r = gw.post(path, chat_body("demo")).await;
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn unknown_routes_answer_404_before_any_key_is_asked_for() {
    let gw = gateway(&config_for(&[], ""), None).await;
    for path in ["/no/such/route", "/metrics", "/v1/nothing"] {
        let r = gw.client.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            body["error"]["message"],
            format!("Route not found: {path}"),
            "{path}"
        );
    }
    // A served route still wants a key, whatever the method.
    let r = gw.client.get(gw.url("/key/list")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = gw.client.delete(gw.url("/key/list")).send().await.unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 405), "{}", r.status());
}

/// Each deployment is probed with the call of its mode: `model_info.mode`, else the price
/// map's mode for its model (LiteLLM's order), with LiteLLM's probe text.
#[tokio::test]
async fn health_probes_each_deployment_by_its_mode() {
    async fn any(
        axum::extract::State(s): axum::extract::State<std::sync::Arc<crate::helpers::MockState>>,
        uri: axum::http::Uri,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::Json<Value> {
        crate::helpers::record(&s, &uri, &headers, &body);
        axum::Json(serde_json::json!({"ok": true}))
    }
    let mock =
        crate::helpers::serve_mock(|s| axum::Router::new().fallback(any).with_state(s)).await;
    let m = format!("http://{}/v1", mock.addr);
    let yaml = format!(
        "model_list:
  - model_name: emb
    litellm_params: {{model: openai/text-embedding-3-small, api_base: '{m}', api_key: k}}
  - model_name: tts
    litellm_params: {{model: openai/tts-1, api_base: '{m}', api_key: k}}
  - model_name: img
    litellm_params: {{model: openai/gpt-image-1, api_base: '{m}', api_key: k}}
  - model_name: mod
    litellm_params: {{model: openai/omni-moderation-latest, api_base: '{m}', api_key: k}}
  - model_name: own-mode
    litellm_params: {{model: openai/text-embedding-3-small, api_base: '{m}', api_key: k}}
    model_info: {{mode: completion}}
  - model_name: stt
    litellm_params: {{model: openai/whisper-1, api_base: '{m}', api_key: k}}
  - model_name: chat
    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{m}', api_key: k}}
general_settings:
  master_key: {MASTER}
"
    );
    let gw = gateway(&yaml, None).await;
    let v: Value = gw.get("/health").await.json().await.unwrap();
    assert_eq!(v["healthy_count"], 6, "{v}");
    assert_eq!(v["unhealthy_count"], 1, "{v}");
    assert_eq!(v["unhealthy_endpoints"][0]["model"], "openai/whisper-1");
    assert!(v["unhealthy_endpoints"][0]["error"]
        .as_str()
        .unwrap()
        .contains("audio_transcription"));
    let seen: Vec<(String, Value)> = mock
        .state
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.path.clone(), r.body.clone()))
        .collect();
    let body_of = |path: &str, model: &str| {
        seen.iter()
            .find(|(p, b)| p == path && b["model"] == model)
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("no probe of {model} at {path}: {seen:?}"))
    };
    let b = body_of("/v1/embeddings", "text-embedding-3-small");
    assert_eq!(b["input"], serde_json::json!(["test from litellm"]));
    let b = body_of("/v1/audio/speech", "tts-1");
    assert_eq!(
        (b["input"].as_str(), b["voice"].as_str()),
        (Some("test from litellm"), Some("alloy"))
    );
    body_of("/v1/images/generations", "gpt-image-1");
    body_of("/v1/moderations", "omni-moderation-latest");
    let b = body_of("/v1/completions", "text-embedding-3-small");
    assert_eq!(b["max_tokens"], 1);
    let b = body_of("/v1/chat/completions", "gpt-4o-mini");
    assert_eq!(b["messages"][0]["content"], "test from litellm");
    assert_eq!(seen.len(), 6, "{seen:?}");
}
