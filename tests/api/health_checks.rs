//! Stored health checks (`LiteLLM_HealthCheckTable`): what `/health?model=` and background
//! rounds store, and `/health/latest` and `/health/history`, on SQLite and on Postgres.

use crate::helpers::*;
use crate::keys::backends;
use serde_json::{json, Value};
use std::time::Duration;

fn config(db: Option<&str>, extra: &str) -> String {
    let mut s = format!(
        "model_list:\n  - model_name: good\n    litellm_params: {{model: openai/good, api_base: '{{MOCK}}', api_key: k}}\n    model_info: {{id: good-1}}\n  - model_name: bad\n    litellm_params: {{model: openai/err-401, api_base: '{{MOCK}}', api_key: k}}\n    model_info: {{id: bad-1}}\ngeneral_settings:\n  master_key: {MASTER}\n{extra}"
    );
    if let Some(db) = db {
        s.push_str(&format!("  database_url: {db}\n"));
    }
    s
}

/// `/health/history` once it holds `n` rows (stored checks are written in the background).
async fn history(gw: &Gateway, query: &str, n: usize) -> Value {
    for _ in 0..100 {
        let v: Value = gw
            .get(&format!("/health/history{query}"))
            .await
            .json()
            .await
            .unwrap();
        if v["health_checks"].as_array().map(Vec::len) == Some(n) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("/health/history{query} never held {n} rows");
}

#[tokio::test]
async fn checks_of_one_model_are_stored_and_read_back() {
    for (name, db) in backends().await {
        let mock = mock_upstream().await;
        let gw = gateway(&config(db.as_deref(), ""), Some(&mock)).await;
        // A check of every model is not stored (LiteLLM stores checks of one model).
        assert_eq!(gw.get("/health").await.status(), 200);
        assert_eq!(gw.get("/health?model=good").await.status(), 200);
        history(&gw, "", 1).await;
        assert_eq!(gw.get("/health?model=bad").await.status(), 200);
        let v = history(&gw, "", 2).await;
        let rows = v["health_checks"].as_array().unwrap();
        assert_eq!(rows[0]["model_name"], "bad", "{name}: newest first: {v}");
        assert_eq!(rows[0]["status"], "unhealthy");
        assert_eq!(rows[0]["unhealthy_count"], 1);
        assert!(rows[0]["error_message"].is_string(), "{name}: {v}");
        assert_eq!(rows[1]["model_name"], "good");
        assert_eq!(rows[1]["status"], "healthy");
        assert_eq!(rows[1]["healthy_count"], 1);
        assert!(rows[1]["response_time_ms"].as_f64().unwrap() >= 0.0);
        assert!(rows[1]["checked_at"].as_str().unwrap().ends_with("+00:00"));
        assert_eq!(
            (v["total_records"].clone(), v["limit"].clone()),
            (json!(2), json!(100))
        );

        let v = history(&gw, "?model=good", 1).await;
        assert_eq!(v["health_checks"][0]["model_name"], "good");
        let v = history(&gw, "?status_filter=unhealthy", 1).await;
        assert_eq!(v["health_checks"][0]["model_name"], "bad");
        let v = history(&gw, "?limit=1&offset=1", 1).await;
        assert_eq!(v["health_checks"][0]["model_name"], "good", "{name}");
        assert_eq!(gw.get("/health/history?limit=0").await.status(), 400);

        // A second check of a model: latest shows the newest of each.
        assert_eq!(gw.get("/health?model=good").await.status(), 200);
        history(&gw, "", 3).await;
        let v: Value = gw.get("/health/latest").await.json().await.unwrap();
        assert_eq!(v["total_models"], 2, "{name}: {v}");
        assert_eq!(v["latest_health_checks"]["good"]["status"], "healthy");
        assert_eq!(v["latest_health_checks"]["bad"]["status"], "unhealthy");

        // Management keys only (admins and admin viewers).
        let u = gw
            .post("/user/new", json!({"user_role": "internal_user"}))
            .await
            .json::<Value>()
            .await
            .unwrap();
        let uk = gw.new_key(json!({"user_id": u["user_id"]})).await;
        for path in ["/health/latest", "/health/history"] {
            let s = gw.get_as(&uk, path).await.status();
            assert!(s == 401 || s == 403, "{name}: {path} {s}");
        }
    }
}

#[tokio::test]
async fn background_rounds_store_only_what_changed() {
    for (name, db) in backends().await {
        let mock = mock_upstream().await;
        let gw = gateway(
            &config(
                db.as_deref(),
                "  background_health_checks: true\n  health_check_interval: 1\n",
            ),
            Some(&mock),
        )
        .await;
        // The first round stores each deployment, keyed by its id.
        history(&gw, "", 2).await;
        let v: Value = gw.get("/health/latest").await.json().await.unwrap();
        assert_eq!(
            v["latest_health_checks"]["good-1"]["status"], "healthy",
            "{name}: {v}"
        );
        assert_eq!(v["latest_health_checks"]["bad-1"]["status"], "unhealthy");
        assert_eq!(v["latest_health_checks"]["bad-1"]["model_name"], "bad");
        // Later rounds find nothing changed: nothing more is stored.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let v: Value = gw.get("/health/history").await.json().await.unwrap();
        assert_eq!(v["total_records"], 2, "{name}: {v}");
    }
}
