use crate::helpers::*;
use serde_json::{json, Value};

#[tokio::test]
async fn non_stream_chat_passes_through_and_rewrites_model() {
    let mock = mock_upstream().await;
    let gw = gateway(&config_for(&["gpt-4o-mini"], ""), Some(&mock)).await;
    let mut body = chat_body("gpt-4o-mini");
    body["custom_vendor_field"] = json!({"x": 1});
    body["metadata"] = json!({"trace": "t"});
    body["temperature"] = json!(0.2);
    let r = gw.post("/v1/chat/completions", body).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["id"], "chatcmpl-up");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from upstream");
    assert_eq!(v["usage"]["total_tokens"], 10);
    for name in [
        "x-litellm-call-id",
        "x-litellm-model-id",
        "x-litellm-model-api-base",
        "x-litellm-response-duration-ms",
        "x-litellm-overhead-duration-ms",
        "x-litellm-version",
    ] {
        assert!(h.contains_key(name), "missing {name}");
    }
    assert_eq!(h["x-litellm-model-api-base"], mock.base().as_str());
    assert_eq!(h["llm_provider-x-upstream-marker"], "m1");
    assert_eq!(h["x-ratelimit-remaining-requests"], "42");
    assert_eq!(h["x-litellm-model-id"].len(), 64);
    let up = mock.last();
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(up.headers["authorization"], "Bearer sk-upstream-key");
    assert_eq!(
        up.body["custom_vendor_field"],
        json!({"x": 1}),
        "unknown fields are forwarded"
    );
    assert_eq!(up.body["temperature"], json!(0.2));
    assert!(
        up.body.get("metadata").is_none(),
        "LiteLLM-only fields are stripped"
    );
}

#[tokio::test]
async fn call_id_from_client_is_echoed() {
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/x, mock_response: hi}}\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&yaml, None).await;
    let r = gw
        .client
        .post(gw.url("/chat/completions"))
        .bearer_auth(MASTER)
        .header("x-litellm-call-id", "my-call-123")
        .json(&chat_body("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-call-id"], "my-call-123");
}

#[tokio::test]
async fn embeddings_route_and_azure_style_paths() {
    let mock = mock_upstream().await;
    let gw = gateway(&config_for(&["text-embedding-3-small"], ""), Some(&mock)).await;
    let r = gw
        .post(
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["model"], "text-embedding-3-small");
    // Azure form: the model comes from the path.
    let r = gw
        .post(
            "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-02-01",
            json!({"input": "x"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = gw
        .post(
            "/openai/deployments/text-embedding-3-small/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(mock.last().body["model"], "text-embedding-3-small");
}

#[tokio::test]
async fn azure_deployment_uses_deployment_url_api_version_and_api_key() {
    let mock = mock_upstream().await;
    let yaml = format!(
        "model_list:\n  - model_name: az\n    litellm_params:\n      model: azure/my-dep\n      api_base: {{MOCK_ROOT}}\n      api_key: azure-secret\n      api_version: '2024-06-01'\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&yaml, Some(&mock)).await;
    let r = gw.post("/chat/completions", chat_body("az")).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let up = mock.last();
    assert_eq!(up.path, "/openai/deployments/my-dep/chat/completions");
    assert_eq!(up.query.as_deref(), Some("api-version=2024-06-01"));
    assert_eq!(up.headers["api-key"], "azure-secret");
    assert!(!up.headers.contains_key("authorization"));
}

#[tokio::test]
async fn wildcard_routes_substitute_the_model() {
    let mock = mock_upstream().await;
    let yaml = format!(
        "model_list:\n  - model_name: 'openai/*'\n    litellm_params:\n      model: 'openai/*'\n      api_base: {{MOCK}}\n      api_key: k\n  - model_name: 'team-a/*'\n    litellm_params:\n      model: 'openai/*'\n      api_base: {{MOCK}}\n      api_key: k\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&yaml, Some(&mock)).await;
    let r = gw
        .post("/v1/chat/completions", chat_body("openai/gpt-4.1-nano"))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "openai/gpt-4.1-nano");
    assert_eq!(mock.last().body["model"], "gpt-4.1-nano");
    let r = gw
        .post("/v1/chat/completions", chat_body("team-a/llama-3"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(mock.last().body["model"], "llama-3");
}

#[tokio::test]
async fn mock_response_from_config_and_request() {
    let yaml = format!(
        "model_list:\n  - model_name: demo\n    litellm_params: {{model: openai/gpt-4o, mock_response: 'canned'}}\n  - model_name: real\n    litellm_params: {{model: openai/gpt-4o, api_base: 'http://127.0.0.1:9/v1', api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&yaml, None).await;
    let v: Value = gw
        .post("/v1/chat/completions", chat_body("demo"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "canned");
    assert_eq!(
        v["usage"],
        json!({"completion_tokens": 20, "prompt_tokens": 10, "total_tokens": 30})
    );
    let mut b = chat_body("real");
    b["mock_response"] = json!("per request");
    let v: Value = gw
        .post("/v1/chat/completions", b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "per request");
    let mut b = chat_body("demo");
    b["mock_response"] = json!("litellm.RateLimitError");
    // The deployment-level value wins over the request-level one, as in LiteLLM.
    assert_eq!(gw.post("/v1/chat/completions", b).await.status(), 200);
    let mut b = chat_body("real");
    b["mock_response"] = json!("litellm.RateLimitError");
    let r = gw.post("/v1/chat/completions", b).await;
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn single_model_mode_serves_every_name() {
    use clap::Parser;
    use litellm_gateway::cli::Cli;
    let cli = Cli::parse_from(["litellm", "--model", "openai/gpt-4o", "--alias", "quick"]);
    let (mut loaded, opts) = litellm_gateway::load_config(&cli).unwrap();
    loaded.config.model_list[0].litellm_params.mock_response = Some(json!("quick start"));
    let dir = tempfile::tempdir().unwrap();
    let opts = litellm_gateway::BuildOptions {
        sqlite_path: Some(dir.path().join("l.db").to_string_lossy().into_owned()),
        ..opts
    };
    let state = litellm_gateway::AppState::build(loaded, opts)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, _stop, _j) = litellm_gateway::start(state, listener).await.unwrap();
    let v: Value = reqwest::Client::new()
        .post(format!("http://{addr}/chat/completions"))
        .json(&chat_body("anything-at-all"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "quick start");
}

#[tokio::test]
async fn comma_separated_models_answer_with_a_list_and_user_config_routes_one_request() {
    let mock = mock_upstream().await;
    let gw = gateway(&config_for(&["gpt-a", "gpt-b"], ""), Some(&mock)).await;
    let r = gw
        .post("/v1/chat/completions", chat_body("gpt-a,gpt-b"))
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let list = v.as_array().expect("a JSON array");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["model"], "gpt-a");
    assert_eq!(list[1]["model"], "gpt-b");
    assert_eq!(list[0]["object"], "chat.completion");

    // user_config: a model_list for this request only (admin key here).
    let mut body = chat_body("private");
    body["user_config"] = serde_json::json!({"model_list": [{"model_name": "private",
        "litellm_params": {"model": "openai/private-upstream", "api_base": mock.base(), "api_key": "sk-mine"}}]});
    let r = gw.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(mock.last().body["model"], "private-upstream");
    assert_eq!(mock.last().headers["authorization"], "Bearer sk-mine");
    // It cannot read the gateway's environment.
    body["user_config"]["model_list"][0]["litellm_params"]["api_key"] =
        serde_json::json!("os.environ/HOME");
    let r = gw.post("/v1/chat/completions", body).await;
    assert_eq!(r.status(), 400);
}

/// A long conversation's `messages` reach an OpenAI-format upstream byte for byte as the client
/// wrote them (escapes and spacing included); the rest of the body is written by the gateway
/// (upstream model name, LiteLLM's fields removed, usage asked for on streams).
#[tokio::test]
async fn long_conversations_forward_their_messages_as_written() {
    let mock = mock_upstream().await;
    let gw = gateway(&config_for(&["gpt-4o-mini"], ""), Some(&mock)).await;
    let mut messages = String::from("[\n  {\"role\": \"system\", \"content\": \"Be brief.\"}");
    for i in 0..40 {
        messages.push_str(&format!(
            ",\n  {{\"role\": \"user\", \"content\": \"caf\\u00e9 \\\"{i}\\\" line\\nnext\"}}"
        ));
    }
    messages.push_str("\n]");
    for stream in [false, true] {
        let text = format!(
            "{{\"model\": \"gpt-4o-mini\", \"messages\": {messages}, \"metadata\": {{\"a\": 1}}, \"stream\": {stream}}}"
        );
        assert!(text.len() > 2048);
        let r = gw
            .client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(MASTER)
            .header("content-type", "application/json")
            .body(text.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.text().await.unwrap();
        let got = mock.last();
        let sent = std::str::from_utf8(&got.raw).unwrap();
        assert!(sent.contains(&format!("\"messages\":{messages}")), "{sent}");
        let want: Value = serde_json::from_str(&messages).unwrap();
        assert_eq!(got.body["messages"], want);
        assert_eq!(got.body["model"], "gpt-4o-mini");
        assert!(got.body.get("metadata").is_none(), "{sent}");
        assert_eq!(got.body["stream"], stream);
        if stream {
            assert_eq!(got.body["stream_options"], json!({"include_usage": true}));
        }
    }
}
