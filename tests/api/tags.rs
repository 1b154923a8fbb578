//! Tag management end to end over HTTP, on SQLite and on Postgres (when `TEST_DATABASE_URL` is
//! set): the `/tag/*` routes with LiteLLM's shapes, errors and access rules, and what a tag's
//! row does to the LLM calls that carry it (budget, rpm limit, spend on the row, resets),
//! `/tag/new` tagging stored models, and a database without the tag table.

use crate::helpers::*;
use crate::keys::{backends, keys_config};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A budget that fits two mocked gpt-4o calls of `keys_config` (0.000225 each), not three.
const TWO_CALLS: f64 = 0.0004;

async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

/// Asserts an OpenAI-shaped error with this status; returns the error object.
async fn err(r: reqwest::Response, status: u16) -> Value {
    let got = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(got, status, "{v}");
    let e = v["error"].clone();
    assert!(e["message"].is_string(), "{v}");
    assert_eq!(e["code"], status.to_string(), "{v}");
    e
}

/// A chat call with `key` carrying `tags` in the body.
async fn tagged_as(gw: &Gateway, key: &str, tags: &[&str]) -> reqwest::Response {
    let mut body = chat_body("gpt-4o");
    body["tags"] = json!(tags);
    gw.post_as(key, "/v1/chat/completions", body).await
}

async fn statuses(gw: &Gateway, tags: &[&str], n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(tagged_as(gw, MASTER, tags).await.status().as_u16());
    }
    out
}

async fn tag_info(gw: &Gateway, name: &str) -> Value {
    let v = ok(gw.post("/tag/info", json!({"names": [name]})).await).await;
    v[name].clone()
}

async fn budget_count(gw: &Gateway) -> usize {
    ok(gw.get("/budget/list").await)
        .await
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn tag_management_on_every_backend() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;

        // A tag with inline budget fields gets a budget row of its own.
        let v = ok(gw
            .post(
                "/tag/new",
                json!({"name": "prod", "description": "Production traffic", "max_budget": 1.5,
                       "rpm_limit": 10, "tpm_limit": 1000, "budget_duration": "30d"}),
            )
            .await)
        .await;
        assert_eq!(v["message"], "Tag prod created successfully", "{name}: {v}");
        let t = &v["tag"];
        assert_eq!(t["name"], "prod");
        assert_eq!(t["description"], "Production traffic");
        assert_eq!(t["models"], json!([]));
        assert_eq!(t["model_info"], json!({}));
        assert_eq!(t["created_by"], "default_user_id");
        assert!(
            t["created_at"].as_str().unwrap().ends_with("+00:00"),
            "{name}: {t}"
        );
        let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "name",
                "description",
                "models",
                "model_info",
                "created_at",
                "updated_at",
                "created_by"
            ],
            "{name}: LiteLLM's TagConfig"
        );
        let info = tag_info(&gw, "prod").await;
        let bt = &info["litellm_budget_table"];
        assert_eq!(bt["max_budget"], 1.5, "{name}: {info}");
        assert_eq!(bt["rpm_limit"], 10);
        assert_eq!(bt["tpm_limit"], 1000);
        assert_eq!(bt["budget_duration"], "30d");
        assert!(bt["budget_reset_at"].is_string(), "{name}: {info}");
        assert_eq!(info["name"], "prod");
        let budgets = budget_count(&gw).await;

        // Duplicates: 400, and no budget row is left behind.
        let e = err(
            gw.post("/tag/new", json!({"name": "prod", "max_budget": 9.0}))
                .await,
            400,
        )
        .await;
        assert_eq!(e["message"], "Tag prod already exists", "{name}");
        assert_eq!(e["param"], "name");
        assert_eq!(budget_count(&gw).await, budgets, "{name}");

        // Bad input: 400 naming the field.
        for (body, param) in [
            (json!({"description": "no name"}), "name"),
            (json!({"name": 7}), "name"),
            (json!({"name": "x", "models": "gpt-4o"}), "models"),
            (json!({"name": "x", "max_budget": -1}), "max_budget"),
            (
                json!({"name": "x", "budget_duration": "soon"}),
                "budget_duration",
            ),
            (
                json!({"name": "x", "budget_id": "no-such-budget"}),
                "budget_id",
            ),
            (
                json!({"name": "x", "budget_id": bt["budget_id"], "max_budget": 1.0}),
                "max_budget",
            ),
        ] {
            let e = err(gw.post("/tag/new", body.clone()).await, 400).await;
            assert_eq!(e["param"], param, "{name}: {body} -> {e}");
        }
        err(gw.post("/tag/info", json!({"names": ["x"]})).await, 404).await;

        // A plain tag has no budget row, and /tag/info leaves the key out.
        ok(gw.post("/tag/new", json!({"name": "dev"})).await).await;
        let dev = tag_info(&gw, "dev").await;
        assert!(dev.get("litellm_budget_table").is_none(), "{name}: {dev}");
        assert!(dev["description"].is_null());

        // A tag can link an existing budget row.
        ok(gw
            .post(
                "/budget/new",
                json!({"budget_id": "shared", "max_budget": 5.0}),
            )
            .await)
        .await;
        ok(gw
            .post("/tag/new", json!({"name": "linked", "budget_id": "shared"}))
            .await)
        .await;
        let linked = tag_info(&gw, "linked").await;
        assert_eq!(linked["litellm_budget_table"]["budget_id"], "shared");
        assert_eq!(linked["litellm_budget_table"]["max_budget"], 5.0);

        // /tag/info: every name must exist.
        let both = ok(gw
            .post("/tag/info", json!({"names": ["prod", "dev"]}))
            .await)
        .await;
        assert_eq!(both.as_object().unwrap().len(), 2, "{name}: {both}");
        let e = err(
            gw.post("/tag/info", json!({"names": ["prod", "nope", "gone"]}))
                .await,
            404,
        )
        .await;
        assert_eq!(e["message"], "Tags not found: ['nope', 'gone']", "{name}");
        err(gw.post("/tag/info", json!({})).await, 400).await;

        // Update: budget fields change the linked row, nulls clear them, description and
        // models are replaced by what is sent.
        let v = ok(gw
            .post(
                "/tag/update",
                json!({"name": "prod", "description": "Prod v2", "max_budget": 3.0, "rpm_limit": null}),
            )
            .await)
        .await;
        assert_eq!(v["message"], "Tag prod updated successfully", "{name}: {v}");
        assert_eq!(v["tag"]["description"], "Prod v2");
        let info = tag_info(&gw, "prod").await;
        let bt2 = &info["litellm_budget_table"];
        assert_eq!(bt2["budget_id"], bt["budget_id"], "{name}: same row");
        assert_eq!(bt2["max_budget"], 3.0);
        assert!(bt2["rpm_limit"].is_null(), "{name}: {info}");
        assert_eq!(bt2["tpm_limit"], 1000);
        assert_eq!(
            budget_count(&gw).await,
            budgets + 1,
            "{name}: only `shared` was added"
        );
        ok(gw.post("/tag/update", json!({"name": "prod"})).await).await;
        assert!(tag_info(&gw, "prod").await["description"].is_null());
        // Budget fields on a tag without a row create one.
        ok(gw
            .post("/tag/update", json!({"name": "dev", "max_budget": 2.0}))
            .await)
        .await;
        let dev = tag_info(&gw, "dev").await;
        assert_eq!(
            dev["litellm_budget_table"]["max_budget"], 2.0,
            "{name}: {dev}"
        );
        let e = err(
            gw.post("/tag/update", json!({"name": "nope", "max_budget": 1.0}))
                .await,
            404,
        )
        .await;
        assert_eq!(e["message"], "Tag nope not found", "{name}");

        // A call with a tag nobody created: /tag/list shows it as a dynamic tag.
        assert_eq!(statuses(&gw, &["adhoc"], 1).await, [200]);
        gw.state.spend.flush().await;
        let list = ok(gw.get("/tag/list").await).await;
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["prod", "dev", "linked", "adhoc"], "{name}: {list}");
        let adhoc = &list[3];
        assert!(adhoc["models"].is_null(), "{name}: {adhoc}");
        assert_eq!(
            adhoc["description"],
            "This is just a spend tag that was passed dynamically in a request. It does not control any LLM models."
        );
        assert!(adhoc["created_at"].is_string());
        assert_eq!(
            list[0]["litellm_budget_table"]["max_budget"], 3.0,
            "{name}: {list}"
        );
        // A window with no activity keeps the stored tags only.
        let old = ok(gw
            .get("/tag/list?start_date=2001-01-01&end_date=2001-01-31")
            .await)
        .await;
        assert_eq!(old.as_array().unwrap().len(), 3, "{name}: {old}");
        for q in [
            "start_date=2026-01-01",
            "start_date=2026-02-01&end_date=2026-01-01",
            "start_date=yesterday&end_date=2026-01-01",
        ] {
            err(gw.get(&format!("/tag/list?{q}")).await, 400).await;
        }

        // Delete.
        let v = ok(gw.post("/tag/delete", json!({"name": "dev"})).await).await;
        assert_eq!(v["message"], "Tag dev deleted successfully", "{name}");
        let e = err(gw.post("/tag/delete", json!({"name": "dev"})).await, 404).await;
        assert_eq!(e["message"], "Tag dev not found");
        err(gw.post("/tag/info", json!({"names": ["dev"]})).await, 404).await;

        // Deleting a budget row unlinks the tags on it.
        ok(gw.post("/budget/delete", json!({"id": "shared"})).await).await;
        let linked = tag_info(&gw, "linked").await;
        assert!(
            linked.get("litellm_budget_table").is_none(),
            "{name}: {linked}"
        );
    }
}

#[tokio::test]
async fn only_admins_manage_tags_and_internal_users_list_their_own() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw.post("/tag/new", json!({"name": "stored"})).await).await;
        for (user, role) in [
            ("iu", "internal_user"),
            ("iu2", "internal_user"),
            ("viewer", "proxy_admin_viewer"),
        ] {
            ok(gw
                .post("/user/new", json!({"user_id": user, "user_role": role}))
                .await)
            .await;
        }
        let iu_key = gw.new_key(json!({"user_id": "iu"})).await;
        let viewer_key = gw.new_key(json!({"user_id": "viewer"})).await;
        let no_user = gw.new_key(json!({})).await;

        for (path, body) in [
            ("/tag/new", json!({"name": "mine"})),
            ("/tag/update", json!({"name": "stored"})),
            ("/tag/info", json!({"names": ["stored"]})),
            ("/tag/delete", json!({"name": "stored"})),
        ] {
            let e = err(gw.post_as(&iu_key, path, body.clone()).await, 401).await;
            assert!(
                e["message"]
                    .as_str()
                    .unwrap()
                    .contains("Only proxy admin can be used"),
                "{name}: {path} {e}"
            );
            err(gw.post_as(&viewer_key, path, body).await, 403).await;
        }
        err(gw.get_as(&no_user, "/tag/list").await, 401).await;

        // The internal user sees the tags their own keys have used, stored or not.
        assert_eq!(tagged_as(&gw, &iu_key, &["stored"]).await.status(), 200);
        assert_eq!(tagged_as(&gw, &iu_key, &["mine-only"]).await.status(), 200);
        assert_eq!(tagged_as(&gw, MASTER, &["admins-only"]).await.status(), 200);
        gw.state.spend.flush().await;
        let list = ok(gw.get_as(&iu_key, "/tag/list").await).await;
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["stored", "mine-only"], "{name}: {list}");
        // Admins and admin viewers see everything.
        for key in [MASTER, viewer_key.as_str()] {
            let all = ok(gw.get_as(key, "/tag/list").await).await;
            assert_eq!(all.as_array().unwrap().len(), 3, "{name}: {all}");
        }
        // A fresh internal user with no calls sees nothing.
        let other = gw.new_key(json!({"user_id": "iu2"})).await;
        let list = ok(gw.get_as(&other, "/tag/list").await).await;
        assert_eq!(list, json!([]), "{name}");
    }
}

#[tokio::test]
async fn a_tags_budget_is_enforced_and_its_spend_recorded_on_every_backend() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw
            .post(
                "/tag/new",
                json!({"name": "capped", "max_budget": TWO_CALLS}),
            )
            .await)
        .await;
        ok(gw.post("/tag/new", json!({"name": "counted"})).await).await;
        assert_eq!(
            statuses(&gw, &["capped", "counted"], 3).await,
            [200, 200, 400],
            "{name}"
        );
        let e = err(tagged_as(&gw, MASTER, &["capped"]).await, 400).await;
        assert_eq!(e["type"], "budget_exceeded", "{name}: {e}");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.starts_with("Budget has been exceeded! Tag=capped Current cost: ")
                && msg.ends_with(&format!(", Max budget: {TWO_CALLS}")),
            "{name}: {msg}"
        );
        // Every way of naming the tag is covered: metadata.tags, the header, the key's tags.
        let mut body = chat_body("gpt-4o");
        body["metadata"] = json!({"tags": ["capped"]});
        err(gw.post("/v1/chat/completions", body).await, 400).await;
        let r = gw
            .client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(MASTER)
            .header("x-litellm-tags", "other, capped")
            .json(&chat_body("gpt-4o"))
            .send()
            .await
            .unwrap();
        err(r, 400).await;
        let tagged_key = gw.new_key(json!({"tags": ["capped"]})).await;
        let r = gw
            .post_as(&tagged_key, "/v1/chat/completions", chat_body("gpt-4o"))
            .await;
        err(r, 400).await;
        // Calls without the tag, or with tags that have no budget, go on.
        assert_eq!(statuses(&gw, &[], 1).await, [200]);
        assert_eq!(statuses(&gw, &["counted", "free"], 1).await, [200]);

        // The spend reached the rows (LiteLLM's `/tag/info` shows none): the capped tag's two
        // calls, all three of `counted`, none for `free`, which has no row.
        gw.state.spend.flush().await;
        let rows = gw
            .state
            .store
            .get_tags(&["capped".into(), "counted".into(), "free".into()])
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{name}");
        let capped_spend = rows.iter().find(|r| r.tag_name == "capped").unwrap().spend;
        let counted_spend = rows.iter().find(|r| r.tag_name == "counted").unwrap().spend;
        assert!(
            (capped_spend - 0.00045).abs() < 1e-9,
            "{name}: {capped_spend}"
        );
        assert!(
            (counted_spend - 0.000675).abs() < 1e-9,
            "{name}: {counted_spend}"
        );

        // Raising the budget applies at once.
        ok(gw
            .post("/tag/update", json!({"name": "capped", "max_budget": 1.0}))
            .await)
        .await;
        assert_eq!(statuses(&gw, &["capped"], 1).await, [200], "{name}");
        // So does deleting the tag.
        ok(gw
            .post(
                "/tag/update",
                json!({"name": "capped", "max_budget": 0.0001}),
            )
            .await)
        .await;
        assert_eq!(statuses(&gw, &["capped"], 1).await, [400], "{name}");
        ok(gw.post("/tag/delete", json!({"name": "capped"})).await).await;
        assert_eq!(statuses(&gw, &["capped"], 1).await, [200], "{name}");
    }
}

#[tokio::test]
async fn a_tags_rpm_limit_gives_429_on_every_backend() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw
            .post("/tag/new", json!({"name": "slow", "rpm_limit": 2}))
            .await)
        .await;
        let r = tagged_as(&gw, MASTER, &["slow"]).await;
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.headers()["x-ratelimit-tag-limit-requests"], "2");
        assert_eq!(r.headers()["x-ratelimit-tag-remaining-requests"], "1");
        assert_eq!(tagged_as(&gw, MASTER, &["slow"]).await.status(), 200);
        let r = tagged_as(&gw, MASTER, &["other", "slow"]).await;
        assert!(r.headers().contains_key("retry-after"));
        let e = err(r, 429).await;
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("Rate limit exceeded for tag: slow. Limit type: requests."),
            "{name}: {e}"
        );
        // The limit is the tag's: other calls go on.
        assert_eq!(tagged_as(&gw, MASTER, &["other"]).await.status(), 200);
        assert_eq!(statuses(&gw, &[], 1).await, [200]);
        // A higher limit applies at once.
        ok(gw
            .post("/tag/update", json!({"name": "slow", "rpm_limit": 10}))
            .await)
        .await;
        assert_eq!(
            tagged_as(&gw, MASTER, &["slow"]).await.status(),
            200,
            "{name}"
        );
    }
}

#[tokio::test]
async fn tag_budgets_reset_after_their_budget_duration_on_every_backend() {
    for (name, db) in backends().await {
        let cfg = keys_config(db.as_deref()) + "  proxy_budget_rescheduler_min_time: 0.5\n";
        let gw = gateway(&cfg, None).await;
        ok(gw
            .post(
                "/tag/new",
                json!({"name": "daily", "max_budget": TWO_CALLS, "budget_duration": "2s"}),
            )
            .await)
        .await;
        assert_eq!(
            statuses(&gw, &["daily"], 3).await,
            [200, 200, 400],
            "{name}"
        );
        gw.state.spend.flush().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tagged_as(&gw, MASTER, &["daily"]).await.status() != 200 {
            assert!(Instant::now() < deadline, "{name}: budget never reset");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// DB models on, one config deployment and tag filtering, so a tag's deployments are seen.
fn db_models_config(db: Option<&str>) -> String {
    let mut s = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/cfg-upstream, api_base: '{{MOCK}}', api_key: k}}\nlitellm_settings:\n  num_retries: 0\nenvironment_variables:\n  LITELLM_SALT_KEY: tag-test-salt\nrouter_settings:\n  enable_tag_filtering: true\ngeneral_settings:\n  master_key: {MASTER}\n  store_model_in_db: true\n"
    );
    if let Some(db) = db {
        s.push_str(&format!("  database_url: {db}\n"));
    }
    s
}

#[tokio::test]
async fn tag_new_adds_the_tag_to_stored_models_on_every_backend() {
    for (name, db) in backends().await {
        let mock = mock_upstream().await;
        let gw = gateway(&db_models_config(db.as_deref()), Some(&mock)).await;
        let m = ok(gw
            .post(
                "/model/new",
                json!({"model_name": "g", "litellm_params": {"model": "openai/db-upstream", "api_base": mock.base(), "api_key": "k2"}}),
            )
            .await)
        .await;
        let id = m["model_id"].as_str().unwrap().to_string();

        // By model group: the stored deployment of `g` gets the tag (the config one cannot).
        let v = ok(gw
            .post("/tag/new", json!({"name": "team-a", "models": ["g"]}))
            .await)
        .await;
        assert_eq!(v["tag"]["models"], json!(["g"]), "{name}: {v}");
        assert_eq!(v["tag"]["model_info"], json!({}), "{name}: not a model id");
        // By model id: `model_info` maps it to its name.
        let v = ok(gw
            .post("/tag/new", json!({"name": "team-b", "models": [id]}))
            .await)
        .await;
        assert_eq!(
            v["tag"]["model_info"],
            json!({ id.clone(): "g" }),
            "{name}: {v}"
        );
        let row = gw.state.store.get_proxy_model(&id).await.unwrap().unwrap();
        assert_eq!(
            row.litellm_params["tags"],
            json!(["team-a", "team-b"]),
            "{name}: {row:?}"
        );
        // Tagging again adds nothing twice.
        ok(gw
            .post("/tag/new", json!({"name": "team-c", "models": ["g", id]}))
            .await)
        .await;
        let row = gw.state.store.get_proxy_model(&id).await.unwrap().unwrap();
        assert_eq!(
            row.litellm_params["tags"],
            json!(["team-a", "team-b", "team-c"])
        );

        // The router was reloaded: tagged calls go to the stored deployment.
        for _ in 0..4 {
            let r = tagged_group(&gw, &["team-a"]).await;
            assert_eq!(r.status(), 200, "{name}");
            assert_eq!(mock.last().body["model"], "db-upstream", "{name}");
        }
        let info = tag_info(&gw, "team-b").await;
        assert_eq!(info["model_info"], json!({ id: "g" }), "{name}: {info}");
    }
}

async fn tagged_group(gw: &Gateway, tags: &[&str]) -> reqwest::Response {
    let mut body = chat_body("g");
    body["tags"] = json!(tags);
    gw.post("/v1/chat/completions", body).await
}

/// A database an older LiteLLM migrated, without the tag table: tagged calls and their spend
/// go on, budget work that touches tags still runs, and the routes say what is missing.
#[tokio::test]
async fn calls_and_budgets_carry_on_where_the_tag_table_is_missing() {
    for (name, db) in backends().await {
        let Some(url) = db else { continue };
        let cfg = keys_config(Some(&url)) + "  proxy_budget_rescheduler_min_time: 0.5\n";
        let gw = gateway(&cfg, None).await;
        ok(gw
            .post(
                "/customer/new",
                json!({"user_id": "c", "max_budget": 1.0, "budget_duration": "1s"}),
            )
            .await)
        .await;
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(r#"DROP TABLE "LiteLLM_TagTable""#)
            .execute(&pool)
            .await
            .unwrap();
        let key = gw.new_key(json!({"tags": ["from-key"]})).await;
        for _ in 0..2 {
            assert_eq!(tagged_as(&gw, &key, &["t1"]).await.status(), 200, "{name}");
        }
        let logs = gw.spend_logs(&key).await;
        assert_eq!(logs.len(), 2, "{name}: {logs:?}");
        let e = err(gw.post("/tag/new", json!({"name": "t1"})).await, 500).await;
        assert!(
            e["message"].as_str().unwrap().contains("LiteLLM_TagTable"),
            "{name}: {e}"
        );
        // The customer's budget row still resets, and can be deleted.
        let c = ok(gw.get("/customer/info?end_user_id=c").await).await;
        let first = c["litellm_budget_table"]["budget_reset_at"].clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = ok(gw.get("/customer/info?end_user_id=c").await).await;
            if c["litellm_budget_table"]["budget_reset_at"] != first {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: never reset");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let budget = c["budget_id"].as_str().unwrap();
        ok(gw.post("/budget/delete", json!({"id": budget})).await).await;
    }
}
