//! Retries across a model group's deployments and fallbacks to other groups.

use crate::helpers::*;
use serde_json::{json, Value};

fn two_deployments(extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/err-500, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: g\n    litellm_params: {{model: openai/good, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: backup\n    litellm_params: {{model: openai/backup-model, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: broken\n    litellm_params: {{model: openai/err-503, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: bad-input\n    litellm_params: {{model: openai/err-400, api_base: '{{MOCK}}', api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\n{extra}"
    )
}

#[tokio::test]
async fn a_failing_deployment_is_retried_on_the_other_one() {
    let mock = mock_upstream().await;
    let gw = gateway(&two_deployments(""), Some(&mock)).await;
    for _ in 0..10 {
        let r = gw.post("/v1/chat/completions", chat_body("g")).await;
        assert_eq!(r.status(), 200);
        let retries: u64 = r.headers()["x-litellm-attempted-retries"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retries <= 1);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["model"], "g");
    }
}

#[tokio::test]
async fn retries_stop_for_errors_that_cannot_succeed_and_count_otherwise() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &two_deployments("router_settings:\n  num_retries: 1\n  retry_after: 0\n"),
        Some(&mock),
    )
    .await;
    let before = mock.count();
    let r = gw
        .post("/v1/chat/completions", chat_body("bad-input"))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(mock.count() - before, 1, "a 400 is not retried");
    let before = mock.count();
    let mut b = chat_body("broken");
    b["num_retries"] = json!(2);
    let r = gw.post("/v1/chat/completions", b).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        mock.count() - before,
        3,
        "one call and two retries (per-request num_retries)"
    );
}

#[tokio::test]
async fn fallbacks_serve_under_the_fallback_group() {
    let mock = mock_upstream().await;
    let cfg = two_deployments(
        "router_settings:\n  num_retries: 0\n  fallbacks: [{\"broken\": [\"backup\"]}]\n",
    );
    let gw = gateway(&cfg, Some(&mock)).await;
    let r = gw.post("/v1/chat/completions", chat_body("broken")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-attempted-fallbacks"], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "backup");
    assert_eq!(mock.last().body["model"], "backup-model");
    // Per-request fallbacks, and LiteLLM's mock_testing_fallbacks switch.
    let mut b = chat_body("g");
    b["mock_testing_fallbacks"] = json!(true);
    b["fallbacks"] = json!(["backup"]);
    let r = gw.post("/v1/chat/completions", b).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "backup");
    // A bad request does not fall back.
    let mut b = chat_body("bad-input");
    b["fallbacks"] = json!(["backup"]);
    assert_eq!(gw.post("/v1/chat/completions", b).await.status(), 400);
}

fn mock_calls(mock: &MockUpstream, model: &str) -> usize {
    mock.state
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.body["model"] == model)
        .count()
}

#[tokio::test]
async fn a_rate_limited_deployment_cools_down_and_comes_back() {
    let mock = mock_upstream().await;
    let cfg = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/err-429, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: g\n    litellm_params: {{model: openai/good, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: solo\n    litellm_params: {{model: openai/err-429, api_base: '{{MOCK}}', api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\nrouter_settings:\n  num_retries: 1\n"
    );
    let gw = gateway(&cfg, Some(&mock)).await;
    // Until the 429ing deployment is hit once, then it is skipped for its cooldown (the
    // mock's retry-after: 1 s).
    for _ in 0..30 {
        let r = gw.post("/v1/chat/completions", chat_body("g")).await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        mock_calls(&mock, "err-429"),
        1,
        "cooled down after its first 429"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    for _ in 0..30 {
        let r = gw.post("/v1/chat/completions", chat_body("g")).await;
        assert_eq!(r.status(), 200);
        if mock_calls(&mock, "err-429") == 2 {
            break;
        }
    }
    assert_eq!(
        mock_calls(&mock, "err-429"),
        2,
        "back in rotation after the cooldown"
    );

    // A group whose only deployment is cooling down answers LiteLLM's 429 without a call.
    let mut b = chat_body("solo");
    b["num_retries"] = json!(0);
    let r = gw.post("/v1/chat/completions", b.clone()).await;
    assert_eq!(r.status(), 429);
    let before = mock.count();
    let r = gw.post("/v1/chat/completions", b).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let v: Value = r.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("No deployments available for selected model, Try again in 1 seconds. Passed model=solo"), "{msg}");
    assert_eq!(mock.count(), before, "no upstream call while cooling down");
}

#[tokio::test]
async fn server_errors_cool_down_after_allowed_fails_and_cooldowns_can_be_disabled() {
    let mock = mock_upstream().await;
    let cfg = |extra: &str| {
        format!(
            "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/err-500, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: g\n    litellm_params: {{model: openai/good, api_base: '{{MOCK}}', api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\nrouter_settings:\n  num_retries: 1\n  allowed_fails: 2\n  cooldown_time: 30\n{extra}"
        )
    };
    let gw = gateway(&cfg(""), Some(&mock)).await;
    for _ in 0..40 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat_body("g"))
                .await
                .status(),
            200
        );
    }
    // The third failure within the minute cools it down (allowed_fails: 2).
    assert_eq!(mock_calls(&mock, "err-500"), 3);

    let mock = mock_upstream().await;
    let gw = gateway(&cfg("  disable_cooldowns: true\n"), Some(&mock)).await;
    for _ in 0..40 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat_body("g"))
                .await
                .status(),
            200
        );
    }
    assert!(mock_calls(&mock, "err-500") > 5, "never cooled down");
}

#[tokio::test]
async fn pre_call_checks_send_long_prompts_to_the_context_window_fallback() {
    let mock = mock_upstream().await;
    let cfg = format!(
        "model_list:\n  - model_name: small\n    litellm_params: {{model: openai/small-model, api_base: '{{MOCK}}', api_key: k}}\n    model_info: {{max_input_tokens: 50}}\n  - model_name: big\n    litellm_params: {{model: openai/big-model, api_base: '{{MOCK}}', api_key: k}}\n    model_info: {{max_input_tokens: 100000}}\ngeneral_settings:\n  master_key: {MASTER}\nrouter_settings:\n  enable_pre_call_checks: true\n  routing_strategy: least-busy\n  context_window_fallbacks: [{{\"small\": [\"big\"]}}]\n"
    );
    let gw = gateway(&cfg, Some(&mock)).await;
    let long = "word ".repeat(400);
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "small", "messages": [{"role": "user", "content": long}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-model-group"], "big");
    assert_eq!(
        mock_calls(&mock, "small-model"),
        0,
        "the small deployment is never called"
    );
    let r = gw.post("/v1/chat/completions", chat_body("small")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock_calls(&mock, "small-model"),
        1,
        "short prompts still fit"
    );
}

#[tokio::test]
async fn retry_policy_sets_retries_per_error_class() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &two_deployments("router_settings:\n  num_retries: 0\n  retry_after: 0\n  retry_policy: {InternalServerErrorRetries: 2, BadRequestErrorRetries: 1}\n  model_group_retry_policy: {broken: {InternalServerErrorRetries: 1}}\n  disable_cooldowns: true\n"),
        Some(&mock),
    )
    .await;
    let before = mock.count();
    assert_eq!(
        gw.post("/v1/chat/completions", chat_body("bad-input"))
            .await
            .status(),
        400
    );
    assert_eq!(mock.count() - before, 2, "BadRequestErrorRetries: 1");
    let before = mock.count();
    assert_eq!(
        gw.post("/v1/chat/completions", chat_body("broken"))
            .await
            .status(),
        503
    );
    assert_eq!(mock.count() - before, 2, "the group's own policy wins");
}

#[tokio::test]
async fn background_health_checks_feed_health_and_the_router() {
    let mock = mock_upstream().await;
    let cfg = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/err-500, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: g\n    litellm_params: {{model: openai/good, api_base: '{{MOCK}}', api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\n  background_health_checks: true\n  health_check_interval: 60\nrouter_settings:\n  num_retries: 1\n  disable_cooldowns: true\n"
    );
    let gw = gateway(&cfg, Some(&mock)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while gw.state.health.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no background health round"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let probes = mock_calls(&mock, "err-500");
    for _ in 0..20 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat_body("g"))
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        mock_calls(&mock, "err-500"),
        probes,
        "the unhealthy deployment is avoided"
    );
    let before = mock.count();
    let v: Value = gw.get("/health").await.json().await.unwrap();
    assert_eq!(
        mock.count(),
        before,
        "/health answers from the last background round"
    );
    assert_eq!(
        (v["healthy_count"].as_u64(), v["unhealthy_count"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
}

#[tokio::test]
async fn each_fallback_kind_goes_where_it_should() {
    let mock = mock_upstream().await;
    let cfg = format!(
        "model_list:\n  - model_name: ctx\n    litellm_params: {{model: openai/ctx-overflow, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: filtered\n    litellm_params: {{model: openai/content-filter, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: down\n    litellm_params: {{model: openai/err-500, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: long-ctx\n    litellm_params: {{model: openai/long-ctx-model, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: safe\n    litellm_params: {{model: openai/safe-model, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: anywhere\n    litellm_params: {{model: openai/default-model, api_base: '{{MOCK}}', api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\nrouter_settings:\n  num_retries: 0\n  context_window_fallbacks: [{{\"ctx\": [\"long-ctx\"]}}]\n  content_policy_fallbacks: [{{\"filtered\": [\"safe\"]}}]\n  default_fallbacks: [\"anywhere\"]\n"
    );
    let gw = gateway(&cfg, Some(&mock)).await;
    for (asked, served) in [
        ("ctx", "long-ctx"),
        ("filtered", "safe"),
        ("down", "anywhere"),
    ] {
        let r = gw.post("/v1/chat/completions", chat_body(asked)).await;
        assert_eq!(r.status(), 200, "{asked}");
        assert_eq!(r.headers()["x-litellm-model-group"], served, "{asked}");
        assert_eq!(r.headers()["x-litellm-attempted-fallbacks"], "1");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["model"], served);
    }
}
