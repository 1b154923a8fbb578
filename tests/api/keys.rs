//! Virtual keys end to end over HTTP, on the embedded SQLite store and on Postgres (when the
//! test command provides `TEST_DATABASE_URL`): management API, auth with keys, spend, budgets.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A config with a mocked model priced at gpt-4o rates and one real upstream model.
pub fn keys_config(db: Option<&str>) -> String {
    let mut s = format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o, mock_response: 'hi'}}\n  - model_name: other\n    litellm_params: {{model: openai/gpt-4o-mini, mock_response: 'other'}}\n  - model_name: up\n    litellm_params: {{model: openai/gpt-4o, api_base: '{{MOCK}}', api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 1\n"
    );
    if let Some(db) = db {
        s.push_str(&format!("  database_url: {db}\n"));
    }
    s
}

/// A fresh Postgres database for one test, from the superuser URL the test command exports.
async fn pg_database() -> Option<String> {
    let admin = std::env::var("TEST_DATABASE_URL").ok()?;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .expect("connect TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
    Some(format!("{base}/{name}"))
}

pub async fn backends() -> Vec<(&'static str, Option<String>)> {
    let mut v = vec![("sqlite", None)];
    match pg_database().await {
        Some(url) => v.push(("postgres", Some(url))),
        None => eprintln!(
            "TEST_DATABASE_URL not set: Postgres variant skipped (the test command sets it)"
        ),
    }
    v
}

async fn generate(gw: &Gateway, body: Value) -> Value {
    let r = gw.post("/key/generate", body).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn chat_with(gw: &Gateway, key: &str, model: &str) -> reqwest::Response {
    gw.post_as(key, "/v1/chat/completions", chat_body(model))
        .await
}

#[tokio::test]
async fn key_lifecycle_on_every_backend() {
    for (name, db) in backends().await {
        let mock = mock_upstream().await;
        let gw = gateway(&keys_config(db.as_deref()), Some(&mock)).await;
        let k = generate(
            &gw,
            json!({"key_alias": "team-a", "models": ["gpt-4o"], "metadata": {"owner": "x"}}),
        )
        .await;
        let key = k["key"].as_str().unwrap().to_string();
        assert!(key.starts_with("sk-") && key.len() == 25, "{name}: {key}");
        assert_eq!(k["token"], key.as_str());
        assert_eq!(k["token_id"].as_str().unwrap().len(), 64);
        assert_eq!(k["key_name"], format!("sk-...{}", &key[key.len() - 4..]));

        // The key works for its model, and only for it.
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 200, "{name}");
        let r = chat_with(&gw, &key, "other").await;
        assert_eq!(r.status(), 401, "{name}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "key_model_access_denied");

        // Duplicate alias: 400, nothing written.
        let r = gw
            .post("/key/generate", json!({"key_alias": "team-a"}))
            .await;
        assert_eq!(r.status(), 400, "{name}");
        let list: Value = gw.get("/key/list").await.json().await.unwrap();
        assert_eq!(list["total_count"], 1, "{name}");

        // Info by raw key and by hash; never the raw key back.
        for q in [key.clone(), k["token_id"].as_str().unwrap().to_string()] {
            let r = gw.get(&format!("/key/info?key={q}")).await;
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            // `key` echoes the parameter (as LiteLLM does); the stored info never has the key.
            assert_eq!(v["key"], q.as_str());
            assert!(
                !v["info"].to_string().contains(&key[3..]),
                "raw key leaked: {v}"
            );
            assert_eq!(v["info"]["key_alias"], "team-a");
            assert_eq!(v["info"]["metadata"]["owner"], "x");
        }

        // Update, block, unblock.
        let r = gw
            .post(
                "/key/update",
                json!({"key": key, "models": ["gpt-4o", "other"]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            chat_with(&gw, &key, "other").await.status(),
            200,
            "{name}: update applies at once"
        );
        assert_eq!(
            gw.post("/key/block", json!({"key": key})).await.status(),
            200
        );
        let r = chat_with(&gw, &key, "gpt-4o").await;
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Key is blocked"));
        assert_eq!(
            gw.post("/key/unblock", json!({"key": key})).await.status(),
            200
        );
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 200);

        // A plain key cannot manage keys.
        let r = gw
            .client
            .post(gw.url("/key/generate"))
            .bearer_auth(&key)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        // But it may read its own info.
        let r = gw
            .client
            .get(gw.url("/key/info"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // Regenerate: the old key stops working, the new one works.
        let r: Value = gw
            .post("/key/regenerate", json!({"key": key}))
            .await
            .json()
            .await
            .unwrap();
        let new_key = r["key"].as_str().unwrap().to_string();
        assert_ne!(new_key, key);
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 401);
        assert_eq!(chat_with(&gw, &new_key, "gpt-4o").await.status(), 200);

        // Delete.
        let r = gw.post("/key/delete", json!({"keys": [new_key]})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(chat_with(&gw, &new_key, "gpt-4o").await.status(), 401);
        assert_eq!(
            gw.post("/key/delete", json!({"keys": ["sk-does-not-exist-000"]}))
                .await
                .status(),
            404
        );
    }
}

#[tokio::test]
async fn bad_management_input_is_400_naming_the_field() {
    let gw = gateway(&keys_config(None), None).await;
    for (body, field) in [
        (json!({"duration": "soon"}), "duration"),
        (json!({"max_budget": -1}), "max_budget"),
        (json!({"models": "gpt-4o"}), "models"),
        (json!({"rpm_limit": "ten"}), "rpm_limit"),
        (json!({"key": "not-sk-prefixed-key"}), "key"),
        (json!({"budget_duration": "1y"}), "budget_duration"),
    ] {
        let r = gw.post("/key/generate", body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], field, "{body}");
    }
    let list: Value = gw.get("/key/list").await.json().await.unwrap();
    assert_eq!(list["total_count"], 0, "nothing half-written");
    assert_eq!(
        gw.post("/key/update", json!({"key": "sk-missing-key-000000"}))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn expired_keys_are_rejected() {
    let gw = gateway(&keys_config(None), None).await;
    let k = generate(&gw, json!({"duration": "1s"})).await;
    let key = k["key"].as_str().unwrap();
    assert_eq!(chat_with(&gw, key, "gpt-4o").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // The cached row still carries the expiry, so no reload is needed.
    let r = chat_with(&gw, key, "gpt-4o").await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "expired_key");
}

#[tokio::test]
async fn spend_is_tracked_logged_and_reported() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        let k = generate(&gw, json!({})).await;
        let key = k["key"].as_str().unwrap();
        let r = chat_with(&gw, key, "gpt-4o").await;
        assert_eq!(r.status(), 200);
        // Mock usage 10/20 at gpt-4o prices: LiteLLM's 0.000225.
        let cost = header_f64(&r, "x-litellm-response-cost");
        assert!((cost - 0.000225).abs() < 1e-12, "{name}: {cost}");
        let ks = header_f64(&r, "x-litellm-key-spend");
        assert!((ks - 0.000225).abs() < 1e-12);
        // Small costs are written the way Python's `str()` writes them, as LiteLLM does:
        // 10 + 20 tokens at gpt-4o-mini prices.
        let other = generate(&gw, json!({})).await;
        let r = chat_with(&gw, other["key"].as_str().unwrap(), "other").await;
        assert_eq!(r.headers()["x-litellm-response-cost"], "1.35e-05", "{name}");
        gw.state.spend.flush().await;
        let v: Value = gw
            .get(&format!("/key/info?key={key}"))
            .await
            .json()
            .await
            .unwrap();
        assert!(
            (v["info"]["spend"].as_f64().unwrap() - 0.000225).abs() < 1e-12,
            "{name}: {v}"
        );
        let logs = gw.spend_logs(key).await;
        assert_eq!(logs.len(), 1, "{name}");
        assert_eq!(logs[0]["model_group"], "gpt-4o");
        assert_eq!(logs[0]["total_tokens"], 30);
        assert_eq!(logs[0]["status"], "success");
        assert_eq!(logs[0]["call_type"], "acompletion");
        let g: Value = gw.get("/global/spend").await.json().await.unwrap();
        assert!(g["spend"].as_f64().unwrap() > 0.0);
    }
}

/// A key's `tags` (kept in its metadata) and its team's (`metadata.tags`) join each call's own
/// tags in the spend log, after them and without repeats, as LiteLLM merges them.
#[tokio::test]
async fn key_and_team_tags_join_the_request_tags_of_their_calls() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        let r = gw
            .post(
                "/team/new",
                json!({"team_id": "tt", "tags": ["team-x", "prod"]}),
            )
            .await;
        let team: Value = r.json().await.unwrap();
        assert_eq!(
            team["metadata"]["tags"],
            json!(["team-x", "prod"]),
            "{name}: {team}"
        );
        let k = generate(&gw, json!({"tags": ["team-a", "prod"], "team_id": "tt"})).await;
        assert_eq!(
            k["metadata"]["tags"],
            json!(["team-a", "prod"]),
            "{name}: {k}"
        );
        let key = k["key"].as_str().unwrap();
        let mut body = chat_body("gpt-4o");
        body["metadata"] = json!({"tags": ["batch", "prod"]});
        assert_eq!(
            gw.post_as(key, "/v1/chat/completions", body).await.status(),
            200
        );
        assert_eq!(chat_with(&gw, key, "gpt-4o").await.status(), 200);
        let logs = gw.spend_logs(key).await;
        let mut tags: Vec<Value> = logs.iter().map(|l| l["request_tags"].clone()).collect();
        tags.sort_by_key(|t| t.as_array().map_or(0, Vec::len));
        assert_eq!(
            tags,
            [
                json!(["team-a", "prod", "team-x"]),
                json!(["batch", "prod", "team-a", "team-x"])
            ],
            "{name}: {logs:?}"
        );
    }
}

#[tokio::test]
async fn budget_is_enforced_before_the_call_and_holds_under_concurrency() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        // Each mocked call costs 0.000225 and reserves (prompt estimate + 5 output tokens).
        let k = generate(&gw, json!({"max_budget": 0.001})).await;
        let key = k["key"].as_str().unwrap().to_string();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let c = gw.client.clone();
            let url = gw.url("/v1/chat/completions");
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                let mut b = chat_body("gpt-4o");
                b["max_tokens"] = json!(5);
                c.post(url)
                    .bearer_auth(key)
                    .json(&b)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        let mut ok = 0;
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                200 => ok += 1,
                400 => refused += 1,
                s => panic!("{name}: unexpected status {s}"),
            }
        }
        assert!(refused > 0 && ok > 0, "{name}: ok={ok} refused={refused}");
        gw.state.spend.flush().await;
        let v: Value = gw
            .get(&format!("/key/info?key={key}"))
            .await
            .json()
            .await
            .unwrap();
        let spend = v["info"]["spend"].as_f64().unwrap();
        // Overshoot at most one call's cost.
        assert!(
            spend <= 0.001 + 0.000225 + 1e-12,
            "{name}: spend {spend} after {ok} calls"
        );
        let r = chat_with(&gw, &key, "gpt-4o").await;
        assert_eq!(r.status(), 400);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["type"], "budget_exceeded");
        assert!(e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Budget has been exceeded!"));
    }
}

#[tokio::test]
async fn key_rate_limits_apply() {
    let gw = gateway(&keys_config(None), None).await;
    let k = generate(&gw, json!({"rpm_limit": 2})).await;
    let key = k["key"].as_str().unwrap();
    let r = chat_with(&gw, key, "gpt-4o").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-api_key-remaining-requests"], "1");
    assert_eq!(chat_with(&gw, key, "gpt-4o").await.status(), 200);
    let r = chat_with(&gw, key, "gpt-4o").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["rate_limit_type"], "requests");
}

#[tokio::test]
async fn spend_of_a_stream_cut_by_the_client_is_recorded() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &keys_config(None).replace(
            "model: openai/gpt-4o, api_base",
            "model: openai/drip, api_base",
        ),
        Some(&mock),
    )
    .await;
    let k = generate(&gw, json!({})).await;
    let key = k["key"].as_str().unwrap();
    let mut b = chat_body("up");
    b["stream"] = json!(true);
    let r = gw.post_as(key, "/v1/chat/completions", b).await;
    assert_eq!(r.status(), 200);
    let mut s = r.bytes_stream();
    use futures::StreamExt;
    for _ in 0..3 {
        let _ = s.next().await;
    }
    drop(s);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = gw.spend_logs(key).await;
    assert_eq!(
        logs.len(),
        1,
        "the cut stream must still produce a spend row"
    );
    assert!(
        logs[0]["completion_tokens"].as_i64().unwrap() > 0,
        "{logs:?}"
    );
}

#[tokio::test]
async fn plain_keys_cannot_probe_health_or_read_spend() {
    let gw = gateway(&keys_config(None), None).await;
    let k = generate(&gw, json!({})).await;
    let key = k["key"].as_str().unwrap();
    for p in [
        "/health",
        "/spend/logs",
        "/global/spend",
        "/key/list?size=5",
    ] {
        let r = gw.get_as(key, p).await;
        if p.starts_with("/key/list") {
            // Listing keys takes a user: a key without one is refused (LiteLLM's 403).
            assert_eq!(r.status(), 403, "{p}");
            let v: Value = r.json().await.unwrap();
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("No 'user_id' is associated with your API key"),
                "{v}"
            );
        } else {
            assert_eq!(r.status(), 401, "{p}");
        }
    }
    // Models list shows only what the key may use.
    let k2 = generate(&gw, json!({"models": ["other"]})).await;
    let v: Value = gw
        .client
        .get(gw.url("/v1/models"))
        .bearer_auth(k2["key"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["other"]);
}

#[tokio::test]
async fn bad_query_strings_are_json_400s() {
    let gw = gateway(&keys_config(None), None).await;
    for p in [
        "/key/list?page=abc",
        "/key/list?size=1000",
        "/key/list?page=0",
    ] {
        let r = gw.get(p).await;
        assert_eq!(r.status(), 400, "{p}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "400", "{p}");
    }
}
