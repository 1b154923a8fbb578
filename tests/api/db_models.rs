//! Models stored in the database (`store_model_in_db`) on SQLite and Postgres: the `/model/*`
//! management routes, calls through models added at run time, replicas converging through
//! the poll, encryption at rest with the salt key (including rows PyNaCl encrypted).

use crate::helpers::*;
use crate::keys::backends;
use litellm_gateway::crypto::{Algorithm, SaltKey};
use litellm_gateway::store::ProxyModelRow;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SALT: &str = "test-salt-key-3c9d";

fn fixture() -> Value {
    serde_json::from_str(include_str!("../fixtures/litellm_salt_ciphertexts.json")).unwrap()
}

/// A config with one config model, DB models on, a 1 s poll and the given salt key.
fn config(db: Option<&str>, salt: &str, store_in_db: bool) -> String {
    let mut s = format!(
        "model_list:\n  - model_name: cfg-model\n    litellm_params: {{model: openai/cfg-upstream, api_base: '{{MOCK}}', api_key: cfg-key}}\nlitellm_settings:\n  num_retries: 0\nenvironment_variables:\n  LITELLM_SALT_KEY: {salt}\ngeneral_settings:\n  master_key: {MASTER}\n  store_model_in_db: {store_in_db}\n  proxy_config_reload_interval_seconds: 1\n"
    );
    if let Some(db) = db {
        s.push_str(&format!("  database_url: {db}\n"));
    }
    s
}

/// Two gateways on one database (the SQLite file or the Postgres database).
async fn on_db(yaml: &str, mock: &MockUpstream, dir: &tempfile::TempDir) -> Gateway {
    let yaml = yaml.replace("{MOCK}", &mock.base());
    gateway_with_db(&yaml, &dir.path().join("shared.db")).await
}

async fn chat(gw: &Gateway, model: &str) -> reqwest::Response {
    gw.post("/v1/chat/completions", chat_body(model)).await
}

async fn model_ids(gw: &Gateway) -> Vec<String> {
    let v: Value = gw.get("/v1/models").await.json().await.unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (up to 10 s, well past two 1 s polls) until `/v1/models` does or does not list `name`.
async fn wait_listed(gw: &Gateway, name: &str, listed: bool) {
    let start = Instant::now();
    while model_ids(gw).await.contains(&name.to_string()) != listed {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "`{name}` listed={} never reached",
            listed
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn bearer(r: &Recorded) -> String {
    r.headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

async fn add_model(gw: &Gateway, mock: &MockUpstream, name: &str, key: &str) -> Value {
    let r = gw
        .post(
            "/model/new",
            json!({"model_name": name, "litellm_params": {"model": "openai/db-upstream", "api_base": mock.base(), "api_key": key, "rpm": 100}, "model_info": {"mode": "chat", "note": "added"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn add_call_update_rename_delete_without_restart() {
    for (name, db) in backends().await {
        let mock = mock_upstream().await;
        let gw = gateway(&config(db.as_deref(), SALT, true), Some(&mock)).await;
        let salt = SaltKey::new(SALT, Algorithm::default());

        let created = add_model(&gw, &mock, "db-gpt", "sk-db-upstream").await;
        let id = created["model_id"].as_str().unwrap().to_string();
        assert_eq!(created["model_name"], "db-gpt", "{name}");
        assert_eq!(created["model_info"]["id"], id.as_str());
        assert_eq!(created["litellm_params"]["rpm"], 100);
        assert_eq!(created["created_by"], "default_user_id");
        // Secrets are never answered in clear; the response carries the stored ciphertext.
        let answered = created["litellm_params"]["api_key"].as_str().unwrap();
        assert_ne!(answered, "sk-db-upstream");
        assert_eq!(salt.decrypt(answered).unwrap(), "sk-db-upstream");

        // At rest: every string value of litellm_params is encrypted with the salt key.
        let row = gw.state.store.get_proxy_model(&id).await.unwrap().unwrap();
        for (field, plain) in [
            ("api_key", "sk-db-upstream"),
            ("model", "openai/db-upstream"),
        ] {
            let stored = row.litellm_params[field].as_str().unwrap();
            assert!(!stored.contains(plain), "{name}: {field} stored in clear");
            assert_eq!(salt.decrypt(stored).unwrap(), plain, "{name}: {field}");
        }
        assert_eq!(row.model_info.as_ref().unwrap()["note"], "added");

        let r = chat(&gw, "db-gpt").await;
        assert_eq!(r.status(), 200, "{name}: {}", r.text().await.unwrap());
        assert_eq!(bearer(&mock.last()), "Bearer sk-db-upstream");
        assert_eq!(mock.last().body["model"], "db-upstream");
        assert_eq!(
            r.headers()
                .get("x-litellm-model-id")
                .unwrap()
                .to_str()
                .unwrap(),
            id
        );

        // Both kinds of model are listed; /model/info marks the DB one and hides its key.
        let ids = model_ids(&gw).await;
        assert!(ids.contains(&"db-gpt".into()) && ids.contains(&"cfg-model".into()));
        let info: Value = gw.get("/model/info").await.json().await.unwrap();
        let entries = info["data"].as_array().unwrap();
        let db_entry = entries
            .iter()
            .find(|e| e["model_name"] == "db-gpt")
            .unwrap();
        assert_eq!(db_entry["model_info"]["db_model"], true);
        assert_eq!(db_entry["model_info"]["id"], id.as_str());
        assert!(db_entry["litellm_params"].get("api_key").is_none());
        assert_eq!(db_entry["litellm_params"]["model"], "openai/db-upstream");
        let cfg_entry = entries
            .iter()
            .find(|e| e["model_name"] == "cfg-model")
            .unwrap();
        assert_eq!(cfg_entry["model_info"]["db_model"], false);

        // POST /model/update rotates the key (other params stay).
        let r = gw
            .post(
                "/model/update",
                json!({"model_info": {"id": id}, "litellm_params": {"api_key": "sk-rotated", "api_base": null}}),
            )
            .await;
        assert_eq!(r.status(), 200, "{name}");
        let updated: Value = r.json().await.unwrap();
        assert_eq!(
            salt.decrypt(updated["litellm_params"]["api_key"].as_str().unwrap())
                .unwrap(),
            "sk-rotated"
        );
        assert_eq!(chat(&gw, "db-gpt").await.status(), 200);
        assert_eq!(bearer(&mock.last()), "Bearer sk-rotated");

        // PATCH renames and merges model_info.
        let r = gw
            .client
            .patch(gw.url(&format!("/model/{id}/update")))
            .bearer_auth(MASTER)
            .json(&json!({"model_name": "db-renamed", "model_info": {"team": "x"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        let patched: Value = r.json().await.unwrap();
        assert_eq!(patched["model_info"]["team"], "x");
        assert_eq!(patched["model_info"]["note"], "added");
        assert_eq!(chat(&gw, "db-renamed").await.status(), 200);
        assert_eq!(chat(&gw, "db-gpt").await.status(), 400);

        // PATCH can pause the model.
        let r = gw
            .client
            .patch(gw.url(&format!("/model/{id}/update")))
            .bearer_auth(MASTER)
            .json(&json!({"blocked": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(chat(&gw, "db-renamed").await.status(), 400);
        let r = gw
            .client
            .patch(gw.url(&format!("/model/{id}/update")))
            .bearer_auth(MASTER)
            .json(&json!({"blocked": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(chat(&gw, "db-renamed").await.status(), 200);

        let r = gw.post("/model/delete", json!({"id": id})).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["message"], format!("Model: {id} deleted successfully"));
        assert_eq!(chat(&gw, "db-renamed").await.status(), 400);
        assert!(gw.state.store.get_proxy_model(&id).await.unwrap().is_none());
        let r = gw.post("/model/delete", json!({"id": id})).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["error"]["message"],
            format!("Model with id={id} not found in db")
        );
        // The config model was never disturbed.
        assert_eq!(chat(&gw, "cfg-model").await.status(), 200);
    }
}

#[tokio::test]
async fn a_second_replica_converges_through_the_poll() {
    for (name, db) in backends().await {
        let mock = mock_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let yaml = config(db.as_deref(), SALT, true);
        let a = on_db(&yaml, &mock, &dir).await;
        let b = on_db(&yaml, &mock, &dir).await;
        let created = add_model(&a, &mock, "shared-model", "sk-shared").await;
        let id = created["model_id"].as_str().unwrap().to_string();
        wait_listed(&b, "shared-model", true).await;
        let r = chat(&b, "shared-model").await;
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(bearer(&mock.last()), "Bearer sk-shared");

        // An update on A reaches B too.
        let r = a
            .post(
                "/model/update",
                json!({"model_info": {"id": id}, "model_name": "shared-renamed", "litellm_params": {}}),
            )
            .await;
        assert_eq!(r.status(), 200, "{name}");
        wait_listed(&b, "shared-renamed", true).await;
        assert!(!model_ids(&b).await.contains(&"shared-model".into()));

        assert_eq!(
            a.post("/model/delete", json!({"id": id})).await.status(),
            200
        );
        wait_listed(&b, "shared-renamed", false).await;
        assert_eq!(chat(&b, "shared-renamed").await.status(), 400);
    }
}

fn fixture_row(id: &str, name: &str, model_ct: &str, key_ct: &str, base: &str) -> ProxyModelRow {
    ProxyModelRow {
        model_id: id.into(),
        model_name: name.into(),
        litellm_params: json!({"model": model_ct, "api_key": key_ct, "api_base": base}),
        model_info: Some(json!({"id": id, "db_model": false})),
        blocked: false,
        created_at: None,
        created_by: "default_user_id".into(),
        updated_at: None,
        updated_by: "default_user_id".into(),
    }
}

#[tokio::test]
async fn rows_litellm_encrypted_are_served_and_a_wrong_salt_key_skips_them() {
    let f = fixture();
    let fixture_salt = f["salt_key"].as_str().unwrap();
    let ct = |section: &str, i: usize| f[section][i]["ciphertext"].as_str().unwrap().to_string();
    for (name, db) in backends().await {
        let mock = mock_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let good = on_db(&config(db.as_deref(), fixture_salt, true), &mock, &dir).await;
        // Rows as LiteLLM writes them: PyNaCl SecretBox by default, AES-GCM when opted in.
        for (id, model, section) in [
            ("nacl-row", "nacl-model", "xsalsa20_poly1305"),
            ("gcm-row", "gcm-model", "aes_256_gcm"),
        ] {
            let row = fixture_row(id, model, &ct(section, 0), &ct(section, 1), &mock.base());
            good.state.store.insert_proxy_model(&row).await.unwrap();
        }
        // The same params written as a JSON string holding the object (double-encoded).
        let mut row = fixture_row(
            "str-row",
            "str-model",
            &ct("xsalsa20_poly1305", 0),
            &ct("xsalsa20_poly1305", 1),
            &mock.base(),
        );
        row.litellm_params = Value::String(row.litellm_params.to_string());
        good.state.store.insert_proxy_model(&row).await.unwrap();
        wait_listed(&good, "nacl-model", true).await;
        wait_listed(&good, "gcm-model", true).await;
        wait_listed(&good, "str-model", true).await;
        for model in ["nacl-model", "gcm-model", "str-model"] {
            let r = chat(&good, model).await;
            assert_eq!(r.status(), 200, "{name}: {model}");
            let last = mock.last();
            assert_eq!(bearer(&last), "Bearer sk-fixture-upstream-key");
            assert_eq!(last.body["model"], "gpt-4o-mini");
        }

        // A replica with another salt key starts, serves its config, and leaves the rows out.
        let wrong = on_db(&config(db.as_deref(), "some-other-salt", true), &mock, &dir).await;
        let ids = model_ids(&wrong).await;
        assert!(ids.contains(&"cfg-model".into()), "{name}: {ids:?}");
        assert!(!ids.contains(&"nacl-model".into()) && !ids.contains(&"gcm-model".into()));
        assert_eq!(chat(&wrong, "nacl-model").await.status(), 400);
        assert_eq!(chat(&wrong, "cfg-model").await.status(), 200);
        // ...and keeps doing so across polls without disturbing the other replica.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!model_ids(&wrong).await.contains(&"nacl-model".into()));
        assert_eq!(chat(&good, "nacl-model").await.status(), 200);
    }
}

#[tokio::test]
async fn without_store_model_in_db_the_routes_answer_as_litellm() {
    for (name, db) in backends().await {
        let mock = mock_upstream().await;
        let gw = gateway(&config(db.as_deref(), SALT, false), Some(&mock)).await;
        let r = gw
            .post(
                "/model/new",
                json!({"model_name": "m", "litellm_params": {"model": "openai/x"}}),
            )
            .await;
        assert_eq!(r.status(), 500, "{name}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("STORE_MODEL_IN_DB"));
        let r = gw
            .client
            .patch(gw.url("/model/abc/update"))
            .bearer_auth(MASTER)
            .json(&json!({"model_name": "n"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = gw.post("/model/delete", json!({"id": "nope"})).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["message"], "Model with id=nope not found in db");
        let info: Value = gw.get("/model/info").await.json().await.unwrap();
        assert_eq!(info["data"][0]["model_info"]["db_model"], false);
    }
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_only_admins_may_write() {
    for (name, db) in backends().await {
        let mock = mock_upstream().await;
        let gw = gateway(&config(db.as_deref(), SALT, true), Some(&mock)).await;
        let cases = [
            (
                json!({"litellm_params": {"model": "openai/x"}}),
                "model_name",
            ),
            (
                json!({"model_name": 5, "litellm_params": {"model": "openai/x"}}),
                "model_name",
            ),
            (json!({"model_name": "m"}), "litellm_params"),
            (
                json!({"model_name": "m", "litellm_params": "openai/x"}),
                "litellm_params",
            ),
            (
                json!({"model_name": "m", "litellm_params": {"api_key": "k"}}),
                "litellm_params.model",
            ),
            (
                json!({"model_name": "m", "litellm_params": {"model": 3}}),
                "litellm_params.model",
            ),
            (
                json!({"model_name": "m", "litellm_params": {"model": "no-provider-model"}}),
                "litellm_params.model",
            ),
            (
                json!({"model_name": "m", "litellm_params": {"model": "openai/x", "rpm": "lots"}}),
                "litellm_params.rpm",
            ),
            (
                json!({"model_name": "m", "litellm_params": {"model": "openai/x"}, "model_info": []}),
                "model_info",
            ),
            (
                json!({"model_name": "m", "litellm_params": {"model": "openai/x"}, "model_info": {"id": 7}}),
                "model_info.id",
            ),
            (
                json!({"model_name": "m", "litellm_params": {"model": "openai/x"}, "blocked": "yes"}),
                "blocked",
            ),
        ];
        for (body, param) in cases {
            let r = gw.post("/model/new", body.clone()).await;
            assert_eq!(r.status(), 400, "{name}: {body}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["param"], param, "{name}: {body} -> {v}");
        }
        let r = gw.post("/model/delete", json!({"id": 5})).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], "id");
        let r = gw
            .post("/model/update", json!({"litellm_params": {}}))
            .await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], "model_info");

        // A duplicate id, and an edit that would break the model, are refused.
        let body = json!({"model_name": "m", "litellm_params": {"model": "openai/x", "api_base": mock.base()}, "model_info": {"id": "fixed-id"}});
        assert_eq!(gw.post("/model/new", body.clone()).await.status(), 200);
        let r = gw.post("/model/new", body).await;
        assert_eq!(r.status(), 400, "{name}");
        let r = gw
            .post(
                "/model/update",
                json!({"model_info": {"id": "fixed-id"}, "litellm_params": {"model": "no-provider"}}),
            )
            .await;
        assert_eq!(r.status(), 400, "{name}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], "litellm_params.model");
        assert_eq!(
            chat(&gw, "m").await.status(),
            200,
            "the failed edit rolled back"
        );
        // Editing a config model is refused like LiteLLM does.
        let cfg_id = gw
            .state
            .router
            .load()
            .group("cfg-model")
            .unwrap()
            .deployments[0]
            .id
            .clone();
        let r = gw
            .post(
                "/model/update",
                json!({"model_info": {"id": cfg_id}, "litellm_params": {"api_key": "x"}}),
            )
            .await;
        assert_eq!(r.status(), 400);
        let r = gw
            .client
            .patch(gw.url("/model/unknown-id/update"))
            .bearer_auth(MASTER)
            .json(&json!({"model_name": "n"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);

        // A virtual key cannot manage models.
        let key = &gw.new_key(json!({})).await;
        let r = gw
            .post_as(
                key,
                "/model/new",
                json!({"model_name": "x", "litellm_params": {"model": "openai/x"}}),
            )
            .await;
        assert_eq!(r.status(), 401, "{name}");
        let r = gw
            .post_as(key, "/model/delete", json!({"id": "fixed-id"}))
            .await;
        assert_eq!(r.status(), 401);
        assert_eq!(chat(&gw, "m").await.status(), 200);
    }
}
