use crate::helpers::*;
use serde_json::{json, Value};

async fn demo_gateway(master: bool) -> Gateway {
    let mut yaml = String::from(
        "model_list:\n  - model_name: demo\n    litellm_params: {model: openai/gpt-4o, mock_response: hi}\n",
    );
    if master {
        yaml.push_str(&format!("general_settings:\n  master_key: {MASTER}\n"));
    }
    gateway(&yaml, None).await
}

#[tokio::test]
async fn keys_are_required_and_checked() {
    let gw = demo_gateway(true).await;
    let url = gw.url("/v1/chat/completions");
    let body = chat_body("demo");
    let r = gw.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "Authentication Error, No api key passed in."
    );
    assert_eq!(v["error"]["type"], "auth_error");
    assert_eq!(v["error"]["param"], "None");
    assert_eq!(v["error"]["code"], "401");

    let r = gw
        .client
        .post(&url)
        .bearer_auth("sk-wrong-key-123456")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Invalid proxy server token passed"));
    assert!(
        !v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sk-wrong-key-123456"),
        "key must not be echoed"
    );

    let r = gw
        .client
        .post(&url)
        .header("authorization", MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Malformed API Key"));

    for (h, val) in [
        ("authorization", format!("Bearer {MASTER}")),
        ("x-litellm-api-key", MASTER.to_string()),
        ("x-litellm-api-key", format!("Bearer {MASTER}")),
        ("api-key", MASTER.to_string()),
        ("x-api-key", MASTER.to_string()),
    ] {
        let r = gw
            .client
            .post(&url)
            .header(h, val)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{h}");
    }
}

#[tokio::test]
async fn health_probes_are_public_everything_else_is_not() {
    let gw = demo_gateway(true).await;
    for p in [
        "/health/liveliness",
        "/health/liveness",
        "/health/readiness",
    ] {
        let r = gw.client.get(gw.url(p)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{p}");
    }
    // The public probe says only whether the store answers, as LiteLLM 1.106.2's does.
    let v = gw.get_public_json("/health/readiness").await;
    assert_eq!(v, json!({"status": "healthy", "db": "connected"}));
    assert_eq!(gw.get_public_json("/health/liveliness").await, "I'm alive!");
    for p in [
        "/v1/models",
        "/models",
        "/model/info",
        "/health",
        "/health/readiness/details",
    ] {
        let r = gw.client.get(gw.url(p)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{p}");
    }
    // With a key, readiness plus LiteLLM's diagnostics; no Redis configured here (unless the
    // environment names one), so the warning that limits are per replica is on.
    let v: Value = gw
        .get("/health/readiness/details")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "healthy", "{v}");
    assert_eq!(v["db"], "connected");
    let env_redis = [
        "REDIS_HOST",
        "REDIS_URL",
        "LITELLM_DISABLE_NO_REDIS_WARNING",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok());
    assert_eq!(v["show_no_redis_warning"], !env_redis, "{v}");
    assert_eq!(v["is_detailed_debug"], v["log_level"] == "DEBUG");
    assert!(v["litellm_version"].is_string() && v["success_callbacks"].is_array());
}

#[tokio::test]
async fn readiness_details_can_be_made_public() {
    let gw = gateway(
        &format!(
            "model_list:\n  - model_name: demo\n    litellm_params: {{model: openai/gpt-4o, mock_response: hi}}\n\
             general_settings:\n  master_key: {MASTER}\n  allow_public_health_readiness_details: true\n"
        ),
        None,
    )
    .await;
    let r = gw
        .client
        .get(gw.url("/health/readiness"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "healthy", "{v}");
    assert_eq!(v["db"], "connected");
    assert!(
        v["log_level"].is_string() && v["litellm_version"].is_string(),
        "{v}"
    );
}

#[tokio::test]
async fn no_master_key_means_open() {
    let gw = demo_gateway(false).await;
    let r = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .json(&chat_body("demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
