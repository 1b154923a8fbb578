//! `/metrics` with LiteLLM's `prometheus` callback: who may scrape it, and what the proxy-level,
//! per-call and per-deployment series count after real calls through the gateway.

use crate::helpers::*;
use crate::keys::chat_with;
use crate::team_rights::ok;
use serde_json::{json, Value};
use std::time::Duration;

fn config(litellm_settings: &str) -> String {
    format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: broken\n    litellm_params: {{model: openai/err-503, api_base: '{{MOCK}}', api_key: k}}\nlitellm_settings:\n  num_retries: 0\n{litellm_settings}general_settings:\n  master_key: {MASTER}\n"
    )
}

/// The value of the one sample of `name` whose labels include every `label="value"` given.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let mut found = text.lines().filter(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{'))
            && wanted.iter().all(|w| l.contains(w.as_str()))
    });
    let line = found.next()?;
    assert!(
        found.next().is_none(),
        "more than one {name} sample for {labels:?}:\n{text}"
    );
    line.rsplit(' ').next()?.parse().ok()
}

async fn scrape(gw: &Gateway, key: &str) -> String {
    let r = gw.get_as(key, "/metrics").await;
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_calls_tokens_spend_and_failures() {
    let mock = mock_upstream().await;
    let gw = gateway(&config("  callbacks: [\"prometheus\"]\n"), Some(&mock)).await;

    // A scrape needs a key unless the config says otherwise.
    let r = gw.client.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Unauthorized access to metrics endpoint: "),
        "{msg}"
    );
    assert!(
        msg.contains("require_auth_for_metrics_endpoint: false"),
        "{msg}"
    );

    let k = ok(gw
        .post(
            "/key/generate",
            json!({"key_alias": "ci-key", "max_budget": 10}),
        )
        .await)
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    let hash = k["token_id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 200);
    }
    let mut streamed = chat_body("gpt-4o");
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let body = gw
        .post_as(&key, "/v1/chat/completions", streamed)
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("[DONE]"));
    assert_eq!(chat_with(&gw, &key, "broken").await.status(), 503);
    assert_eq!(
        chat_with(&gw, "sk-not-a-key-000000", "gpt-4o")
            .await
            .status(),
        401
    );

    // The streamed call is counted when its stream ends: wait for it.
    let caller = [
        ("hashed_api_key", hash.as_str()),
        ("api_key_alias", "ci-key"),
    ];
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(&gw, &key).await;
        let calls = sample(
            &text,
            "litellm_requests_metric_total",
            &[caller[0], ("model", "gpt-4o")],
        );
        if calls == Some(3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ok_calls = [
        caller[0],
        caller[1],
        ("requested_model", "gpt-4o"),
        ("status_code", "200"),
    ];
    assert_eq!(
        sample(
            &text,
            "litellm_proxy_total_requests_metric_total",
            &ok_calls
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "litellm_proxy_total_requests_metric_total",
            &[caller[0], ("status_code", "503")]
        ),
        Some(1.0),
        "{text}"
    );
    let failed = [
        caller[0],
        ("requested_model", "broken"),
        ("exception_status", "503"),
        ("exception_class", "ServiceUnavailableError"),
    ];
    assert_eq!(
        sample(&text, "litellm_proxy_failed_requests_metric_total", &failed),
        Some(1.0),
        "{text}"
    );
    // A caller with no valid key is counted as a failed request with no caller labels (and
    // the key it sent appears nowhere).
    assert!(!text.contains("sk-not-a-key"), "{text}");
    let refused = [
        ("hashed_api_key", "None"),
        ("route", "/v1/chat/completions"),
        ("exception_status", "401"),
    ];
    assert_eq!(
        sample(
            &text,
            "litellm_proxy_failed_requests_metric_total",
            &refused
        ),
        Some(1.0),
        "{text}"
    );

    // Tokens: two plain calls (7 in, 3 out) and one stream (5 in).
    let tokens = [caller[0], ("model", "gpt-4o"), ("api_provider", "openai")];
    let input = sample(&text, "litellm_input_tokens_metric_total", &tokens).unwrap();
    let output = sample(&text, "litellm_output_tokens_metric_total", &tokens).unwrap();
    let total = sample(&text, "litellm_total_tokens_metric_total", &tokens).unwrap();
    assert_eq!(input, 19.0, "{text}");
    assert!(output > 6.0, "{text}");
    assert_eq!(total, input + output, "{text}");
    let spend = sample(&text, "litellm_spend_metric_total", &tokens).unwrap();
    assert!(spend > 0.0, "{text}");
    assert_eq!(
        sample(
            &text,
            "litellm_request_total_latency_metric_count",
            &[caller[0], ("model_group", "gpt-4o")]
        ),
        Some(3.0),
        "{text}"
    );

    // Per deployment: successes, the failure with its status, and each deployment's state.
    let dep = [
        ("requested_model", "gpt-4o"),
        ("litellm_model_name", "gpt-4o"),
    ];
    assert_eq!(
        sample(&text, "litellm_deployment_success_responses_total", &dep),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "litellm_deployment_total_requests_total", &dep),
        Some(3.0),
        "{text}"
    );
    let broken = [
        ("litellm_model_name", "err-503"),
        ("exception_status", "503"),
    ];
    assert_eq!(
        sample(&text, "litellm_deployment_failure_responses_total", &broken),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "litellm_deployment_state",
            &[("litellm_model_name", "gpt-4o")]
        ),
        Some(0.0)
    );
    assert!(
        sample(
            &text,
            "litellm_deployment_state",
            &[("litellm_model_name", "err-503")]
        )
        .unwrap()
            >= 1.0
    );

    // The key's budget as it stands after the calls.
    assert_eq!(
        sample(&text, "litellm_api_key_max_budget_metric", &caller),
        Some(10.0),
        "{text}"
    );
    let left = sample(&text, "litellm_remaining_api_key_budget_metric", &caller).unwrap();
    assert!(
        (left - (10.0 - spend)).abs() < 1e-9,
        "{left} vs {spend}: {text}"
    );

    // The master key may scrape too.
    assert!(scrape(&gw, MASTER)
        .await
        .contains("# TYPE litellm_spend_metric counter"));
}

#[tokio::test]
async fn metrics_exist_only_with_the_callback_and_may_be_public() {
    let gw = gateway(&config(""), None).await;
    assert_eq!(gw.get("/metrics").await.status(), 404);

    let public = "  success_callback: prometheus\n  require_auth_for_metrics_endpoint: false\n";
    let gw = gateway(&config(public), None).await;
    let r = gw.client.get(gw.url("/metrics/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("# TYPE litellm_requests_metric counter"));
}
