use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn models_and_model_info() {
    let mock = mock_upstream().await;
    let yaml = format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o, api_base: '{{MOCK}}', api_key: sk-very-secret}}\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o-2, api_base: '{{MOCK}}', api_key: sk-very-secret}}\n    model_info: {{id: my-fixed-id}}\n  - model_name: emb\n    litellm_params: {{model: openai/emb, api_base: '{{MOCK}}'}}\n    model_info: {{mode: embedding}}\ngeneral_settings:\n  master_key: {MASTER}\n"
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
