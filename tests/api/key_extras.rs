//! Key features beyond the basic lifecycle, over HTTP on SQLite and on Postgres (when
//! `TEST_DATABASE_URL` is set): the config's `default_key_generate_params` and
//! `upperbound_key_generate_params`, `POST /key/info` (and `/v2/key/info`),
//! `POST /key/{key}/regenerate` and `POST /key/service-account/generate`.

use crate::helpers::*;
use crate::keys::{backends, chat_with, keys_config};
use crate::team_rights::{ok, refused, user_key};
use serde_json::{json, Value};

/// Seconds from now until an ISO timestamp the gateway returned.
fn seconds_until(ts: &Value) -> i64 {
    let t = chrono::NaiveDateTime::parse_from_str(ts.as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.3fZ")
        .unwrap();
    (t - chrono::Utc::now().naive_utc()).num_seconds()
}

const WEEK: i64 = 7 * 86_400;

#[tokio::test]
async fn key_defaults_fill_and_caps_bound_generate_update_and_regenerate() {
    for (name, db) in backends().await {
        let config = format!(
            "{}litellm_settings:\n  default_key_generate_params:\n    max_budget: 5\n    models: [gpt-4o]\n    metadata: {{env: dev}}\n    budget_duration: 1d\n  upperbound_key_generate_params:\n    max_budget: 10\n    duration: 7d\n    tpm_limit: 1000\n    rpm_limit: 50\n",
            keys_config(db.as_deref())
        );
        let gw = gateway(&config, None).await;

        // Nothing asked: the defaults, then the caps for what is still unset.
        let k = ok(gw.post("/key/generate", json!({})).await).await;
        assert_eq!(k["max_budget"], 5.0, "{name}: {k}");
        assert_eq!(k["models"], json!(["gpt-4o"]));
        assert_eq!(k["metadata"]["env"], "dev");
        assert_eq!(k["budget_duration"], "1d");
        assert_eq!(k["tpm_limit"], 1000);
        assert_eq!(k["rpm_limit"], 50);
        assert_eq!(
            k["max_parallel_requests"],
            Value::Null,
            "no cap, no default"
        );
        let left = seconds_until(&k["expires"]);
        assert!(
            (WEEK - 60..=WEEK).contains(&left),
            "{name}: expires in {left}s"
        );
        let key = k["key"].as_str().unwrap().to_string();
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 200);
        assert_eq!(chat_with(&gw, &key, "other").await.status(), 401);

        // What the request sets wins over the defaults; an explicit null budget_duration stays.
        let k2 = ok(gw
            .post(
                "/key/generate",
                json!({"max_budget": 10, "models": ["other"], "metadata": {"a": 1},
                       "budget_duration": null, "duration": "168h", "tpm_limit": 1000}),
            )
            .await)
        .await;
        assert_eq!(k2["max_budget"], 10.0, "{name}: {k2}");
        assert_eq!(k2["models"], json!(["other"]));
        assert_eq!(k2["metadata"], json!({"a": 1}));
        assert_eq!(k2["budget_duration"], Value::Null);
        assert!(seconds_until(&k2["expires"]) <= WEEK);

        // Over a cap: LiteLLM's 400 and message, and no key.
        for (body, msg) in [
            (
                json!({"max_budget": 20}),
                "max_budget is over max limit set in config - user_value=20.0; max_value=10.0",
            ),
            (
                json!({"duration": "2w"}),
                "duration is over max limit set in config - user_value=2w; max_value=7d",
            ),
            (
                json!({"tpm_limit": 1001}),
                "tpm_limit is over max limit set in config - user_value=1001; max_value=1000",
            ),
            (
                json!({"key_alias": "capped", "rpm_limit": 51}),
                "rpm_limit is over max limit set in config - user_value=51; max_value=50",
            ),
        ] {
            let e = refused(gw.post("/key/generate", body).await, 400, msg).await;
            assert_eq!(e["error"]["message"], msg, "{name}");
            assert_eq!(e["error"]["type"], "invalid_request_error");
        }
        let aliases = ok(gw.get("/key/aliases").await).await;
        assert!(
            !aliases["aliases"].to_string().contains("capped"),
            "{name}: {aliases}"
        );

        // Updates are checked, not filled.
        let r = gw
            .post("/key/update", json!({"key": key, "rpm_limit": 51}))
            .await;
        refused(r, 400, "rpm_limit is over max limit set in config").await;
        let r = gw
            .post("/key/update", json!({"key": key, "duration": "-1"}))
            .await;
        refused(
            r,
            400,
            "duration is over max limit set in config - user_value=-1",
        )
        .await;
        let u = ok(gw
            .post("/key/update", json!({"key": key, "max_budget": 9}))
            .await)
        .await;
        assert_eq!(u["max_budget"], 9.0, "{name}: {u}");
        assert_eq!(u["rpm_limit"], 50);

        let r = gw
            .post("/key/regenerate", json!({"key": key, "max_budget": 11}))
            .await;
        refused(r, 400, "max_budget is over max limit set in config").await;
        // The refused regeneration left the key as it was.
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 200);

        let b = ok(gw
            .post(
                "/key/bulk_update",
                json!({"keys": [{"key": key, "max_budget": 50}]}),
            )
            .await)
        .await;
        assert_eq!(b["successful_updates"], json!([]), "{name}: {b}");
        let reason = b["failed_updates"][0]["failed_reason"].as_str().unwrap();
        assert!(reason.contains("max_budget is over max limit"), "{reason}");
    }
}

#[tokio::test]
async fn post_key_info_answers_for_the_keys_the_caller_may_see() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        let a = ok(gw
            .post(
                "/key/generate",
                json!({"key_alias": "alias-a", "max_budget": 3}),
            )
            .await)
        .await;
        let key_a = a["key"].as_str().unwrap().to_string();
        let hash_b = ok(gw.post("/key/generate", json!({})).await).await["token_id"]
            .as_str()
            .unwrap()
            .to_string();
        let u1 = user_key(&gw, "u1", "internal_user").await;
        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "t1", "members_with_roles": [{"role": "user", "user_id": "u1"}]}),
            )
            .await)
        .await;
        let team_key = gw.new_key(json!({"team_id": "t1"})).await;
        let missing = "sk-not-a-key-at-all-0000";

        // Admin: every known key, in the order asked; unknown ones left out; no hashes.
        let keys = json!([key_a, hash_b, missing]);
        let v = ok(gw.post("/key/info", json!({"keys": keys})).await).await;
        assert_eq!(v["key"], keys, "{name}: {v}");
        let info = v["info"].as_array().unwrap();
        assert_eq!(info.len(), 2, "{name}: {v}");
        assert_eq!(info[0]["key_alias"], "alias-a");
        assert_eq!(info[0]["max_budget"], 3.0);
        assert!(info.iter().all(|i| i.get("token").is_none()), "{v}");
        assert!(info.iter().all(|i| i["key_name"].is_string()), "{v}");

        // By alias; a key named twice is listed once; LiteLLM's `/v2/key/info` path too.
        let v = ok(gw
            .post(
                "/v2/key/info",
                json!({"keys": [key_a], "key_aliases": ["alias-a", "no-such-alias"]}),
            )
            .await)
        .await;
        assert_eq!(v["info"].as_array().unwrap().len(), 1, "{name}: {v}");
        let v = ok(gw
            .post("/key/info", json!({"key_aliases": ["alias-a"]}))
            .await)
        .await;
        assert_eq!(v["key"], Value::Null, "{name}: {v}");
        assert_eq!(v["info"][0]["key_alias"], "alias-a");

        // A member sees their own key and their team's, not the admin's.
        let asked = json!([u1, team_key, key_a]);
        let v = ok(gw.post_as(&u1, "/key/info", json!({"keys": asked})).await).await;
        let info = v["info"].as_array().unwrap();
        assert_eq!(info.len(), 2, "{name}: {v}");
        assert_eq!(info[0]["user_id"], "u1");
        assert_eq!(info[1]["team_id"], "t1");
        // A key without a user sees itself only.
        let v = ok(gw
            .post_as(&team_key, "/key/info", json!({"keys": [team_key, hash_b]}))
            .await)
        .await;
        assert_eq!(v["info"].as_array().unwrap().len(), 1, "{name}: {v}");
        assert_eq!(v["info"][0]["team_id"], "t1");

        // Bad bodies.
        refused(
            gw.post("/key/info", json!({})).await,
            422,
            "At least one of 'keys' or 'key_aliases'",
        )
        .await;
        refused(
            gw.post("/key/info", json!({"keys": []})).await,
            422,
            "At least one of",
        )
        .await;
        refused(
            gw.post("/key/info", json!({"keys": "sk-x"})).await,
            400,
            "'keys'",
        )
        .await;
        let r = gw
            .client
            .post(gw.url("/key/info"))
            .bearer_auth(MASTER)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{name}");
        let r = gw
            .client
            .post(gw.url("/key/info"))
            .json(&json!({"keys": [key_a]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{name}: no key, no answer");
    }
}

#[tokio::test]
async fn regenerate_by_path_replaces_the_key() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        let old = ok(gw
            .post(
                "/key/generate",
                json!({"key_alias": "rot", "models": ["gpt-4o"]}),
            )
            .await)
        .await;
        let old_key = old["key"].as_str().unwrap().to_string();

        let n = ok(gw
            .post(
                &format!("/key/{old_key}/regenerate"),
                json!({"max_budget": 3}),
            )
            .await)
        .await;
        let new_key = n["key"].as_str().unwrap().to_string();
        assert_ne!(new_key, old_key, "{name}");
        assert_ne!(n["token_id"], old["token_id"]);
        assert_eq!(n["key_alias"], "rot", "{name}: {n}");
        assert_eq!(n["max_budget"], 3.0);
        assert_eq!(n["models"], json!(["gpt-4o"]));
        assert_eq!(chat_with(&gw, &old_key, "gpt-4o").await.status(), 401);
        assert_eq!(chat_with(&gw, &new_key, "gpt-4o").await.status(), 200);

        // By hash, with no body at all.
        let hash = n["token_id"].as_str().unwrap();
        let r = gw
            .client
            .post(gw.url(&format!("/key/{hash}/regenerate")))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap();
        let third = ok(r).await;
        assert_eq!(chat_with(&gw, &new_key, "gpt-4o").await.status(), 401);
        let third_key = third["key"].as_str().unwrap();
        assert_eq!(chat_with(&gw, third_key, "gpt-4o").await.status(), 200);

        refused(
            gw.post("/key/sk-unknown-key-123456/regenerate", json!({}))
                .await,
            404,
            "Key not found",
        )
        .await;
        // Someone else's key: refused, and it still works.
        let u1 = user_key(&gw, "u1", "internal_user").await;
        let r = gw
            .post_as(&u1, &format!("/key/{third_key}/regenerate"), json!({}))
            .await;
        refused(r, 403, "not authorized to regenerate").await;
        assert_eq!(chat_with(&gw, third_key, "gpt-4o").await.status(), 200);
        // Their own: allowed.
        let mine = ok(gw
            .post_as(&u1, &format!("/key/{u1}/regenerate"), json!({}))
            .await)
        .await;
        assert_eq!(mine["user_id"], "u1", "{name}: {mine}");
    }
}

#[tokio::test]
async fn service_account_keys_belong_to_a_team_and_no_user() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        const ROUTE: &str = "/key/service-account/generate";
        refused(
            gw.post(ROUTE, json!({})).await,
            400,
            "team_id is required for service account keys. Please specify `team_id` in the request body.",
        )
        .await;
        refused(
            gw.post(ROUTE, json!({"team_id": "nope"})).await,
            400,
            "team_id does not exist in the database. Please specify a valid `team_id` in the request body.",
        )
        .await;
        let boss = user_key(&gw, "boss", "internal_user").await;
        let pleb = user_key(&gw, "pleb", "internal_user").await;
        let outsider = user_key(&gw, "outsider", "internal_user").await;
        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "t1", "models": ["gpt-4o"], "members_with_roles": [
                    {"role": "admin", "user_id": "boss"}, {"role": "user", "user_id": "pleb"}]}),
            )
            .await)
        .await;

        let k = ok(gw
            .post(
                ROUTE,
                json!({"team_id": "t1", "key_alias": "svc", "user_id": "someone", "models": ["gpt-4o"]}),
            )
            .await)
        .await;
        assert_eq!(k["user_id"], Value::Null, "{name}: {k}");
        assert_eq!(k["team_id"], "t1");
        assert_eq!(k["metadata"]["service_account_id"], "svc");
        let key = k["key"].as_str().unwrap();
        assert_eq!(chat_with(&gw, key, "gpt-4o").await.status(), 200, "{name}");

        let k = ok(gw
            .post(
                ROUTE,
                json!({"team_id": "t1", "metadata": {"owner": "ops"}}),
            )
            .await)
        .await;
        let id = k["metadata"]["service_account_id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{name}: {k}");
        assert_eq!(k["metadata"]["owner"], "ops");
        let k = ok(gw
            .post(
                ROUTE,
                json!({"team_id": "t1", "metadata": {"service_account_id": "mine"}}),
            )
            .await)
        .await;
        assert_eq!(k["metadata"]["service_account_id"], "mine");
        // The team's model list still binds.
        refused(
            gw.post(ROUTE, json!({"team_id": "t1", "models": ["other"]}))
                .await,
            400,
            "Model not in allowed team models",
        )
        .await;

        // Team admins may; plain members and outsiders may not.
        let k = ok(gw.post_as(&boss, ROUTE, json!({"team_id": "t1"})).await).await;
        assert_eq!(k["user_id"], Value::Null, "{name}: {k}");
        assert_eq!(k["created_by"], "boss");
        refused(
            gw.post_as(&pleb, ROUTE, json!({"team_id": "t1"})).await,
            401,
            "Team member does not have permissions for endpoint: /key/service-account/generate",
        )
        .await;
        refused(
            gw.post_as(&outsider, ROUTE, json!({"team_id": "t1"})).await,
            401,
            "does not belong to team t1",
        )
        .await;
    }
}
