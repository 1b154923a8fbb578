//! Per-model budgets (`model_max_budget`) on keys, users and teams, and keys' soft budgets, on
//! SQLite and Postgres: enforcement per model, the team entry giving way to the key's, soft
//! budgets reported but never enforced, and validation.

use crate::helpers::*;
use crate::keys::{backends, chat_with, keys_config};
use serde_json::{json, Value};

async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

async fn key(gw: &Gateway, body: Value) -> String {
    let k = ok(gw.post("/key/generate", body).await).await;
    k["key"].as_str().unwrap().to_string()
}

async fn statuses(gw: &Gateway, key: &str, model: &str, n: usize) -> Vec<u16> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(chat_with(gw, key, model).await.status().as_u16());
    }
    v
}

#[tokio::test]
async fn key_model_budget_stops_only_that_model() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        // Each mocked gpt-4o call costs 0.000225: two fit under 0.0004, the third is refused.
        let k = key(
            &gw,
            json!({"key_alias": "mb", "model_max_budget": {"gpt-4o": {"budget_limit": 0.0004, "time_period": "1d"}}}),
        )
        .await;
        let info = ok(gw.get(&format!("/key/info?key={k}")).await).await;
        assert_eq!(
            info["info"]["model_max_budget"]["gpt-4o"]["budget_limit"], 0.0004,
            "{name}: stored as sent: {info}"
        );
        assert_eq!(
            statuses(&gw, &k, "gpt-4o", 3).await,
            [200, 200, 400],
            "{name}"
        );
        let r = chat_with(&gw, &k, "gpt-4o").await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "budget_exceeded", "{name}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with("LiteLLM Virtual Key: ")
                && msg.contains("key_alias: mb, exceeded budget for model=gpt-4o"),
            "{name}: {msg}"
        );
        // Another model is not governed by that entry.
        assert_eq!(statuses(&gw, &k, "other", 2).await, [200, 200], "{name}");
    }
}

#[tokio::test]
async fn user_and_team_model_budgets_cover_their_keys() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw
            .post(
                "/user/new",
                json!({"user_id": "mb-user", "auto_create_key": false,
                       "model_max_budget": {"gpt-4o": {"budget_limit": 0.0002}}}),
            )
            .await)
        .await;
        let (k1, k2) = (
            key(&gw, json!({"user_id": "mb-user"})).await,
            key(&gw, json!({"user_id": "mb-user"})).await,
        );
        assert_eq!(statuses(&gw, &k1, "gpt-4o", 1).await, [200], "{name}");
        assert_eq!(
            statuses(&gw, &k2, "gpt-4o", 1).await,
            [400],
            "{name}: the user's budget spans their keys"
        );

        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "mb-team", "model_max_budget": {"openai/gpt-4o-mini": {"budget_limit": 0.0}}}),
            )
            .await)
        .await;
        let tk = key(&gw, json!({"team_id": "mb-team"})).await;
        let r = chat_with(&gw, &tk, "other").await;
        assert_eq!(r.status(), 200, "{name}: 'other' is not the governed name");
        let tk2 = key(&gw, json!({"team_id": "mb-team"})).await;
        assert_eq!(statuses(&gw, &tk2, "gpt-4o", 1).await, [200], "{name}");

        ok(gw
            .post(
                "/team/update",
                json!({"team_id": "mb-team", "model_max_budget": {"gpt-4o": {"budget_limit": 0.0}}}),
            )
            .await)
        .await;
        let tk3 = key(&gw, json!({"team_id": "mb-team"})).await;
        let r = chat_with(&gw, &tk3, "gpt-4o").await;
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("LiteLLM Team: mb-team, exceeded budget for model=gpt-4o"),
            "{name}: {v}"
        );
        // A key entry for the same model overrides the team's (LiteLLM's rule).
        let own = key(
            &gw,
            json!({"team_id": "mb-team", "model_max_budget": {"gpt-4o": {"budget_limit": 1}}}),
        )
        .await;
        assert_eq!(statuses(&gw, &own, "gpt-4o", 1).await, [200], "{name}");
    }
}

#[tokio::test]
async fn bad_model_max_budget_is_a_400_naming_the_field() {
    let gw = gateway(&keys_config(None), None).await;
    for (path, extra) in [
        ("/key/generate", json!({})),
        ("/user/new", json!({"auto_create_key": false})),
        ("/team/new", json!({})),
    ] {
        for bad in [
            json!({"gpt-4o": {"budget_limit": -1}}),
            json!({"gpt-4o": {"budget_limit": 1, "time_period": "whenever"}}),
            json!({"gpt-4o": 5}),
            json!(["gpt-4o"]),
        ] {
            let mut body = extra.clone();
            body["model_max_budget"] = bad.clone();
            let r = gw.post(path, body).await;
            assert_eq!(r.status(), 400, "{path} {bad}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["param"], "model_max_budget", "{path}: {v}");
        }
    }
    // Nothing was written.
    let v = ok(gw.get("/key/list").await).await;
    assert_eq!(v["total_count"], 0, "{v}");
}

#[tokio::test]
async fn key_soft_budget_is_reported_not_enforced() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        let r = gw.post("/key/generate", json!({"soft_budget": -1})).await;
        assert_eq!(r.status(), 400, "{name}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], "soft_budget", "{name}: {v}");

        let k = key(&gw, json!({"key_alias": "soft", "soft_budget": 0.0003})).await;
        let info = ok(gw.get(&format!("/key/info?key={k}")).await).await;
        let table = &info["info"]["litellm_budget_table"];
        assert_eq!(table["soft_budget"], 0.0003, "{name}: {info}");
        assert!(table["budget_id"].is_string(), "{name}: {info}");
        assert_eq!(info["info"]["soft_budget_cooldown"], false, "{name}");

        // Each call costs 0.000225: the second crosses the soft budget, none is refused.
        assert_eq!(
            statuses(&gw, &k, "gpt-4o", 3).await,
            [200, 200, 200],
            "{name}"
        );
        let mut cooldown = Value::Null;
        for _ in 0..50 {
            let info = ok(gw.get(&format!("/key/info?key={k}")).await).await;
            cooldown = info["info"]["soft_budget_cooldown"].clone();
            if cooldown == true {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            cooldown, true,
            "{name}: the crossing is recorded on the key"
        );

        // A new soft budget re-arms the report and is kept on the same budget row.
        ok(gw
            .post("/key/update", json!({"key": k, "soft_budget": 1.0}))
            .await)
        .await;
        let after = ok(gw.get(&format!("/key/info?key={k}")).await).await;
        assert_eq!(after["info"]["soft_budget_cooldown"], false, "{name}");
        assert_eq!(
            after["info"]["litellm_budget_table"]["soft_budget"], 1.0,
            "{name}"
        );
        assert_eq!(
            after["info"]["litellm_budget_table"]["budget_id"], table["budget_id"],
            "{name}"
        );
    }
}
