//! `GET /utils/supported_openai_params?model=`: the OpenAI parameters a model accepts, for a
//! configured model group or a provider-qualified name, and LiteLLM's errors.

use crate::helpers::*;
use serde_json::{json, Value};

fn config() -> String {
    format!(
        "model_list:\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-3-5-haiku-20241022, api_key: k}}\n  - model_name: chat\n    litellm_params: {{model: openai/gpt-4o-mini, api_key: k}}\n  - model_name: 'cohere/*'\n    litellm_params: {{model: 'cohere/*', api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\n"
    )
}

async fn params(gw: &Gateway, key: &str, model: &str) -> Vec<String> {
    let r = gw
        .get_as(
            key,
            &format!("/utils/supported_openai_params?model={model}"),
        )
        .await;
    assert_eq!(r.status(), 200, "{model}");
    let v: Value = r.json().await.unwrap();
    serde_json::from_value(v["supported_openai_params"].clone()).unwrap()
}

#[tokio::test]
async fn answers_for_groups_and_provider_names_to_any_key() {
    let gw = gateway(&config(), None).await;
    let key = gw.new_key(json!({"models": ["chat"]})).await;
    // A group answers for its deployment's provider, whatever the group is called.
    let claude = params(&gw, &key, "claude").await;
    assert!(claude.contains(&"max_tokens".to_string()));
    assert!(!claude.contains(&"logit_bias".to_string()), "{claude:?}");
    let chat = params(&gw, MASTER, "chat").await;
    assert!(chat.contains(&"logit_bias".to_string()) && chat.contains(&"tools".to_string()));
    // Names no group serves: by provider prefix or well-known shape.
    assert_eq!(params(&gw, &key, "anthropic/claude-opus-4").await, claude);
    assert_eq!(params(&gw, &key, "claude-3-opus-20240229").await, claude);
    assert_eq!(params(&gw, &key, "gpt-4.1").await, chat);
    // A wildcard group serves the name.
    let cohere = params(&gw, &key, "cohere/command-r").await;
    assert!(!cohere.is_empty() && cohere != chat, "{cohere:?}");
}

#[tokio::test]
async fn unknown_or_missing_models_and_missing_keys_are_refused() {
    let gw = gateway(&config(), None).await;
    let r = gw
        .get("/utils/supported_openai_params?model=my-own-thing")
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {"message": "Could not map model=my-own-thing", "type": "invalid_request_error", "param": "model", "code": "400"}})
    );
    let r = gw.get("/utils/supported_openai_params").await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "model");
    let r = gw
        .client
        .get(gw.url("/utils/supported_openai_params?model=chat"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");
}
