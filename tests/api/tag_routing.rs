//! Tag-based routing (`router_settings.enable_tag_filtering`) and `max_fallbacks`: which
//! deployment serves a request given its tags and its key's tags, LiteLLM's refusal when none
//! may, and how the filter combines with retries, cooldowns and fallbacks.

use crate::helpers::*;
use serde_json::{json, Value};

/// One deployment per `(group, upstream model, tags)`, all on the mock.
fn tagged(deployments: &[(&str, &str, &str)], router_settings: &str) -> String {
    let mut s = String::from("model_list:\n");
    for (group, model, tags) in deployments {
        s.push_str(&format!(
            "  - model_name: {group}\n    litellm_params: {{model: openai/{model}, api_base: '{{MOCK}}', api_key: k, tags: [{tags}]}}\n"
        ));
    }
    s.push_str(&format!(
        "general_settings:\n  master_key: {MASTER}\nrouter_settings:\n  num_retries: 0\n{router_settings}"
    ));
    s
}

const TIERS: &[(&str, &str, &str)] = &[
    ("g", "free-model", "free"),
    ("g", "paid-model", "paid, fast"),
    ("g", "default-model", "default"),
];

/// The upstream models that served `n` requests built by `body`.
async fn served(gw: &Gateway, mock: &MockUpstream, n: usize, body: Value) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = gw.post("/v1/chat/completions", body.clone()).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        out.push(mock.last().body["model"].as_str().unwrap().to_string());
    }
    out.sort();
    out.dedup();
    out
}

fn with(extra: Value) -> Value {
    let mut b = chat_body("g");
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

#[tokio::test]
async fn requests_go_to_deployments_carrying_their_tags_else_to_the_default_ones() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &tagged(TIERS, "  enable_tag_filtering: true\n"),
        Some(&mock),
    )
    .await;
    assert_eq!(
        served(&gw, &mock, 12, with(json!({"tags": ["paid"]}))).await,
        ["paid-model"]
    );
    assert_eq!(
        served(
            &gw,
            &mock,
            12,
            with(json!({"metadata": {"tags": ["free"]}}))
        )
        .await,
        ["free-model"]
    );
    // Any of the request's tags is enough (tag_filtering_match_any defaults to true).
    assert_eq!(
        served(&gw, &mock, 20, with(json!({"tags": ["free", "fast"]}))).await,
        ["free-model", "paid-model"]
    );
    // Untagged requests, and tags no deployment of the group knows, use the defaults.
    assert_eq!(
        served(&gw, &mock, 12, chat_body("g")).await,
        ["default-model"]
    );
    assert_eq!(
        served(&gw, &mock, 12, with(json!({"tags": ["team-x"]}))).await,
        ["default-model"]
    );
    // `x-litellm-tags` carries tags too.
    let r = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .header("x-litellm-tags", " paid , ")
        .json(&chat_body("g"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(mock.last().body["model"], "paid-model");
    // `!tag` rules deployments out, `&tag` requires it.
    assert_eq!(
        served(
            &gw,
            &mock,
            12,
            with(json!({"tags": ["fast", "free", "!paid"]}))
        )
        .await,
        ["free-model"]
    );
    assert_eq!(
        served(&gw, &mock, 12, with(json!({"tags": ["&fast"]}))).await,
        ["paid-model"]
    );
}

#[tokio::test]
async fn a_request_no_deployment_may_serve_gets_litellms_401() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &tagged(
            &[("g", "free-model", "free"), ("g", "paid-model", "paid")],
            "  enable_tag_filtering: true\n",
        ),
        Some(&mock),
    )
    .await;
    let before = mock.count();
    let r = gw
        .post(
            "/v1/chat/completions",
            with(json!({"tags": ["team-x"], "metadata": {"tags": ["gold"]}})),
        )
        .await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {
            "message": "Not allowed to access model due to tags configuration. Passed model=g and tags=['gold', 'team-x']",
            "type": "internal_server_error",
            "param": null,
            "code": "401",
        }})
    );
    // A tag the group knows but the request's other tags rule out is refused too, even with
    // a default deployment around.
    let r = gw
        .post(
            "/v1/chat/completions",
            with(json!({"tags": ["paid", "&free"]})),
        )
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(mock.count(), before, "nothing was sent upstream");
}

#[tokio::test]
async fn match_all_needs_every_tag() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &tagged(
            TIERS,
            "  enable_tag_filtering: true\n  tag_filtering_match_any: false\n",
        ),
        Some(&mock),
    )
    .await;
    assert_eq!(
        served(&gw, &mock, 12, with(json!({"tags": ["paid", "fast"]}))).await,
        ["paid-model"]
    );
    let r = gw
        .post(
            "/v1/chat/completions",
            with(json!({"tags": ["free", "fast"]})),
        )
        .await;
    assert_eq!(
        r.status(),
        401,
        "both tags are known, no deployment has both"
    );
}

#[tokio::test]
async fn key_and_team_tags_route_the_keys_requests() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &tagged(TIERS, "  enable_tag_filtering: true\n"),
        Some(&mock),
    )
    .await;
    let key = gw.new_key(json!({"metadata": {"tags": ["paid"]}})).await;
    for _ in 0..8 {
        let r = gw
            .post_as(&key, "/v1/chat/completions", chat_body("g"))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(mock.last().body["model"], "paid-model");
    }
    let r = gw
        .post("/team/new", json!({"metadata": {"tags": ["free"]}}))
        .await;
    assert_eq!(r.status(), 200);
    let team: Value = r.json().await.unwrap();
    let key = gw.new_key(json!({"team_id": team["team_id"]})).await;
    let r = gw
        .post_as(&key, "/v1/chat/completions", chat_body("g"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(mock.last().body["model"], "free-model");
}

#[tokio::test]
async fn without_tag_filtering_tags_change_nothing() {
    let mock = mock_upstream().await;
    let gw = gateway(&tagged(TIERS, ""), Some(&mock)).await;
    assert_eq!(
        served(&gw, &mock, 60, with(json!({"tags": ["paid"]}))).await,
        ["default-model", "free-model", "paid-model"]
    );
    let gw = gateway(
        &tagged(
            &[("g", "free-model", "free"), ("g", "paid-model", "paid")],
            "  enable_tag_filtering: false\n",
        ),
        Some(&mock),
    )
    .await;
    let r = gw
        .post("/v1/chat/completions", with(json!({"tags": ["team-x"]})))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_groups_model_info_can_turn_tag_filtering_on() {
    let mock = mock_upstream().await;
    let cfg = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/free-model, api_base: '{{MOCK}}', api_key: k, tags: [free]}}\n    model_info: {{enable_tag_filtering: true}}\n  - model_name: g\n    litellm_params: {{model: openai/paid-model, api_base: '{{MOCK}}', api_key: k, tags: [paid]}}\n  - model_name: h\n    litellm_params: {{model: openai/free-model, api_base: '{{MOCK}}', api_key: k, tags: [free]}}\n  - model_name: h\n    litellm_params: {{model: openai/paid-model, api_base: '{{MOCK}}', api_key: k, tags: [paid]}}\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&cfg, Some(&mock)).await;
    assert_eq!(
        served(&gw, &mock, 12, with(json!({"tags": ["paid"]}))).await,
        ["paid-model"]
    );
    let mut b = with(json!({"tags": ["paid"]}));
    b["model"] = json!("h");
    assert_eq!(
        served(&gw, &mock, 40, b).await,
        ["free-model", "paid-model"],
        "group h keeps the router-wide default (off)"
    );
}

#[tokio::test]
async fn retries_cooldowns_and_fallbacks_stay_within_the_allowed_deployments() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &tagged(
            &[
                ("g", "err-500", "paid"),
                ("g", "good", "paid"),
                ("g", "free-model", "free"),
                ("limited", "err-429", "paid"),
                ("limited", "free-model", "free"),
                ("broken", "err-503", "paid"),
                ("backup", "backup-model", "default"),
            ],
            "  enable_tag_filtering: true\n  retry_after: 0\n  fallbacks: [{\"broken\": [\"backup\"]}]\n",
        ),
        Some(&mock),
    )
    .await;
    // The failing paid deployment is retried on the other paid one, never on the free one.
    for _ in 0..8 {
        let mut b = with(json!({"tags": ["paid"]}));
        b["num_retries"] = json!(1);
        let r = gw.post("/v1/chat/completions", b).await;
        assert_eq!(r.status(), 200);
        assert_eq!(mock.last().body["model"], "good");
    }
    // The only paid deployment is rate limited and cools down: the free one is not used.
    let paid_limited = || {
        let mut b = with(json!({"tags": ["paid"]}));
        b["model"] = json!("limited");
        b
    };
    let r = gw.post("/v1/chat/completions", paid_limited()).await;
    assert_eq!(r.status(), 429);
    let before = mock.count();
    let r = gw.post("/v1/chat/completions", paid_limited()).await;
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No deployments available for selected model"),
        "{v}"
    );
    assert_eq!(mock.count(), before, "cooling down, nothing sent");
    // A failed group falls back; the fallback group is filtered by the same tags.
    let mut b = with(json!({"tags": ["paid"]}));
    b["model"] = json!("broken");
    let r = gw.post("/v1/chat/completions", b).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-attempted-fallbacks"], "1");
    assert_eq!(mock.last().body["model"], "backup-model");
    // So does a refusal by tags.
    let mut b = with(json!({"tags": ["gold"]}));
    b["model"] = json!("broken");
    let r = gw.post("/v1/chat/completions", b).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-model-group"], "backup");
}

/// Groups `g` (failing) and `f1`..`f3`, where only `f3` answers.
fn fallback_chain(max_fallbacks: &str) -> String {
    format!(
        "{}router_settings:\n  fallbacks: [{{\"g\": [\"f1\", \"f2\", \"f3\"]}}]\n{max_fallbacks}",
        config_for(&["err-503", "f1", "f2", "f3"], "")
            .replace("model_name: err-503", "model_name: g")
            .replace(
                "model_name: f1\n    litellm_params:\n      model: openai/f1",
                "model_name: f1\n    litellm_params:\n      model: openai/err-500"
            )
            .replace(
                "model_name: f2\n    litellm_params:\n      model: openai/f2",
                "model_name: f2\n    litellm_params:\n      model: openai/err-502"
            )
    )
}

#[tokio::test]
async fn max_fallbacks_limits_the_groups_tried() {
    let mock = mock_upstream().await;
    let gw = gateway(&fallback_chain(""), Some(&mock)).await;
    let r = gw.post("/v1/chat/completions", chat_body("g")).await;
    assert_eq!(r.status(), 200, "the default (5) reaches f3");
    assert_eq!(r.headers()["x-litellm-attempted-fallbacks"], "3");

    let gw = gateway(&fallback_chain("  max_fallbacks: 2\n"), Some(&mock)).await;
    let before = mock.count();
    let r = gw.post("/v1/chat/completions", chat_body("g")).await;
    assert_eq!(r.status(), 502, "f2's error, f3 never tried");
    assert_eq!(mock.count() - before, 3);
    assert_eq!(mock.last().body["model"], "err-502");

    let gw = gateway(&fallback_chain("  max_fallbacks: 0\n"), Some(&mock)).await;
    let r = gw.post("/v1/chat/completions", chat_body("g")).await;
    assert_eq!(r.status(), 503, "no fallback at all");

    // litellm_settings.max_fallbacks applies when router_settings has none.
    let cfg = fallback_chain("").replace(
        "litellm_settings:\n",
        "litellm_settings:\n  max_fallbacks: 1\n",
    );
    let gw = gateway(&cfg, Some(&mock)).await;
    let r = gw.post("/v1/chat/completions", chat_body("g")).await;
    assert_eq!(r.status(), 500, "f1's error");
}
