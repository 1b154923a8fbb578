use crate::helpers::*;
use serde_json::{json, Value};

fn assert_envelope(v: &Value, code: &str) {
    let e = &v["error"];
    assert!(e["message"].is_string(), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some(), "{v}");
    assert_eq!(e["code"], code, "{v}");
}

#[tokio::test]
async fn upstream_statuses_map_like_litellm() {
    let models = [
        "err-400", "err-401", "err-403", "err-404", "err-408", "err-422", "err-429", "err-500",
        "err-503",
    ];
    let mock = mock_upstream().await;
    let gw = gateway(&config_for(&models, ""), Some(&mock)).await;
    let expected = [
        (400, "invalid_request_error", "BadRequestError"),
        (401, "authentication_error", "AuthenticationError"),
        (403, "permission_denied_error", "PermissionDeniedError"),
        (404, "not_found_error", "NotFoundError"),
        (408, "timeout_error", "Timeout"),
        (
            422,
            "unprocessable_entity_error",
            "UnprocessableEntityError",
        ),
        (429, "throttling_error", "RateLimitError"),
        (500, "internal_server_error", "InternalServerError"),
        (503, "service_unavailable_error", "ServiceUnavailableError"),
    ];
    for (m, (status, ty, class)) in models.iter().zip(expected) {
        let r = gw.post("/v1/chat/completions", chat_body(m)).await;
        assert_eq!(r.status().as_u16(), status, "{m}");
        let v: Value = r.json().await.unwrap();
        assert_envelope(&v, &status.to_string());
        assert_eq!(v["error"]["type"], ty, "{m}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with(&format!(
                "litellm.{class}: {class}: OpenAIException - mock failure"
            )),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn context_window_errors_are_recognised() {
    let mock = mock_upstream().await;
    let gw = gateway(&config_for(&["ctx-overflow"], ""), Some(&mock)).await;
    let r = gw
        .post("/v1/chat/completions", chat_body("ctx-overflow"))
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("litellm.ContextWindowExceededError"));
    assert_eq!(v["error"]["param"], "messages");
}

#[tokio::test]
async fn upstream_timeout_is_408() {
    let mock = mock_upstream().await;
    let gw = gateway(&config_for(&["slow"], ""), Some(&mock)).await;
    let t = std::time::Instant::now();
    let r = gw.post("/v1/chat/completions", chat_body("slow")).await;
    assert_eq!(r.status(), 408);
    assert!(t.elapsed() < std::time::Duration::from_millis(2900));
    let v: Value = r.json().await.unwrap();
    assert_envelope(&v, "408");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("litellm.Timeout"));
    // A per-request timeout overrides the deployment's.
    let mut b = chat_body("slow");
    b["timeout"] = json!(0.2);
    let t = std::time::Instant::now();
    assert_eq!(gw.post("/v1/chat/completions", b).await.status(), 408);
    assert!(t.elapsed() < std::time::Duration::from_millis(1200));
}

#[tokio::test]
async fn connection_refused_is_a_500_connection_error() {
    let yaml = format!(
        "model_list:\n  - model_name: dead\n    litellm_params: {{model: openai/x, api_base: 'http://127.0.0.1:1/v1', api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&yaml, None).await;
    let r = gw.post("/v1/chat/completions", chat_body("dead")).await;
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert_envelope(&v, "500");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("APIConnectionError"));
}

#[tokio::test]
async fn bad_requests_name_the_problem() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &config_for(&["m"], "  max_request_size_mb: 0.01\n"),
        Some(&mock),
    )
    .await;
    // Unknown model: 400 naming the models the caller may use.
    let r = gw.post("/v1/chat/completions", chat_body("nope")).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_envelope(&v, "400");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("Invalid model name passed in model=nope")
            && msg.contains("Available models: m"),
        "{msg}"
    );
    // Malformed JSON, and bytes that are not UTF-8 inside a string: a 400 on the body that
    // says where it breaks.
    let mut not_utf8 = br#"{"model": "m", "messages": [{"role": "user", "content": "caf"#.to_vec();
    not_utf8.extend_from_slice(b"\xe9\"}]}");
    for raw in [b"{\"model\": ".to_vec(), not_utf8] {
        let r = gw
            .client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(MASTER)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], "request_body");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with("Invalid JSON payload") && msg.contains("column"),
            "{msg}"
        );
    }
    // Wrong types name the field.
    for (field, val) in [
        ("temperature", json!("hot")),
        ("max_tokens", json!(1.5)),
        ("stream", json!("yes")),
        ("messages", json!("hi")),
    ] {
        let mut b = chat_body("m");
        b[field] = val;
        let r = gw.post("/v1/chat/completions", b).await;
        assert_eq!(r.status(), 400, "{field}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], field);
    }
    // Missing messages.
    let r = gw.post("/v1/chat/completions", json!({"model": "m"})).await;
    assert_eq!(r.status(), 400);
    // Body over max_request_size_mb (0.01 MB).
    let mut b = chat_body("m");
    b["messages"][0]["content"] = json!("x".repeat(20_000));
    let r = gw.post("/v1/chat/completions", b).await;
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_envelope(&v, "413");
    // Not a JSON object.
    let r = gw.post("/v1/chat/completions", json!([1, 2])).await;
    assert_eq!(r.status(), 400);
    assert_eq!(mock.count(), 0, "no bad request reached the upstream");
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let gw = gateway(&config_for(&[], ""), None).await;
    let r = gw.get("/v1/nonexistent").await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_envelope(&v, "404");
    let r = gw.get("/v1/chat/completions").await;
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert_envelope(&v, "405");
}
