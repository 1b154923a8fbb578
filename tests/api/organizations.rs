//! Organizations end to end over HTTP, on SQLite and on Postgres (when `TEST_DATABASE_URL` is
//! set): the `/organization/*` management API with bad input and membership, a team inside an
//! organization, and what the organization's budget and model allow-list do to the LLM calls
//! of that team's keys.

use crate::helpers::*;
use crate::keys::{backends, keys_config};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

/// Asserts an OpenAI-shaped error with this status and `param`; returns the error object.
async fn err(r: reqwest::Response, status: u16, param: Option<&str>) -> Value {
    let got = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(got, status, "{v}");
    let e = v["error"].clone();
    assert!(e["message"].is_string(), "{v}");
    if let Some(p) = param {
        assert_eq!(e["param"], p, "{v}");
    }
    e
}

async fn send(gw: &Gateway, method: reqwest::Method, path: &str, body: Value) -> reqwest::Response {
    gw.client
        .request(method, gw.url(path))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn count(gw: &Gateway, path: &str) -> usize {
    ok(gw.get(path).await).await.as_array().unwrap().len()
}

async fn chat_with(gw: &Gateway, key: &str, model: &str) -> reqwest::Response {
    gw.post_as(key, "/v1/chat/completions", chat_body(model))
        .await
}

#[tokio::test]
async fn organization_management_on_every_backend() {
    use reqwest::Method;
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;

        // Budget fields create the organization's budget row in the same call.
        let o = ok(gw
            .post(
                "/organization/new",
                json!({"organization_alias": "Acme", "organization_id": "acme",
                       "models": ["gpt-4o"], "max_budget": 2.5, "tpm_limit": 100,
                       "rpm_limit": 5, "budget_duration": "30d",
                       "metadata": {"tier": "gold"}}),
            )
            .await)
        .await;
        assert_eq!(o["organization_id"], "acme", "{name}: {o}");
        assert_eq!(o["organization_alias"], "Acme");
        assert_eq!(o["models"], json!(["gpt-4o"]));
        assert_eq!(o["spend"], 0.0);
        assert_eq!(o["metadata"], json!({"tier": "gold"}));
        let bt = &o["litellm_budget_table"];
        assert_eq!(bt["max_budget"], 2.5, "{name}: {o}");
        assert_eq!(bt["rpm_limit"], 5);
        assert_eq!(bt["tpm_limit"], 100);
        assert_eq!(bt["budget_duration"], "30d");
        assert_eq!(o["budget_id"], bt["budget_id"]);

        // Without budget fields a budget row is still created (LiteLLM requires one); the id
        // is generated when not given.
        let o2 = ok(gw
            .post("/organization/new", json!({"organization_alias": "Beta"}))
            .await)
        .await;
        let beta = o2["organization_id"].as_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&beta).is_ok(), "{name}: {o2}");
        assert!(o2["budget_id"].is_string(), "{name}: {o2}");
        assert_eq!(o2["models"], json!([]));

        // Linking an existing budget row.
        ok(gw
            .post(
                "/budget/new",
                json!({"budget_id": "tier-1", "max_budget": 9.0}),
            )
            .await)
        .await;
        let o3 = ok(gw
            .post(
                "/organization/new",
                json!({"organization_alias": "Gamma", "organization_id": "gamma", "budget_id": "tier-1"}),
            )
            .await)
        .await;
        assert_eq!(o3["budget_id"], "tier-1", "{name}: {o3}");
        assert_eq!(o3["litellm_budget_table"]["max_budget"], 9.0);

        // Bad input: 400 naming the field; nothing written (no organization, no budget row).
        let orgs_before = count(&gw, "/organization/list").await;
        let budgets_before = count(&gw, "/budget/list").await;
        for (body, param) in [
            (json!({"models": ["gpt-4o"]}), "organization_alias"),
            (json!({"organization_alias": 3}), "organization_alias"),
            (
                json!({"organization_alias": "x", "max_budget": -1}),
                "max_budget",
            ),
            (
                json!({"organization_alias": "x", "max_budget": "lots"}),
                "max_budget",
            ),
            (
                json!({"organization_alias": "x", "models": "gpt-4o"}),
                "models",
            ),
            (
                json!({"organization_alias": "x", "metadata": [1]}),
                "metadata",
            ),
            (
                json!({"organization_alias": "x", "budget_duration": "soon"}),
                "budget_duration",
            ),
            (
                json!({"organization_alias": "x", "budget_id": "no-such-budget"}),
                "budget_id",
            ),
            (
                json!({"organization_alias": "x", "organization_id": "acme", "max_budget": 1.0}),
                "organization_id",
            ),
        ] {
            err(
                gw.post("/organization/new", body.clone()).await,
                400,
                Some(param),
            )
            .await;
        }
        assert_eq!(
            count(&gw, "/organization/list").await,
            orgs_before,
            "{name}"
        );
        assert_eq!(count(&gw, "/budget/list").await, budgets_before, "{name}");

        // Info, GET and the older POST form.
        let info = ok(gw.get("/organization/info?organization_id=acme").await).await;
        assert_eq!(info["organization_alias"], "Acme", "{name}: {info}");
        assert_eq!(info["members"], json!([]));
        assert_eq!(info["teams"], json!([]));
        err(
            gw.get("/organization/info?organization_id=nope").await,
            404,
            None,
        )
        .await;
        err(
            gw.get("/organization/info").await,
            400,
            Some("organization_id"),
        )
        .await;
        let many = ok(gw
            .post(
                "/organization/info",
                json!({"organizations": ["acme", "gamma"]}),
            )
            .await)
        .await;
        assert_eq!(many.as_array().unwrap().len(), 2, "{name}: {many}");
        err(
            gw.post("/organization/info", json!({"organizations": []}))
                .await,
            400,
            Some("organizations"),
        )
        .await;

        // List with filters.
        let l = ok(gw.get("/organization/list?org_alias=acm").await).await;
        assert_eq!(l.as_array().unwrap().len(), 1, "{name}: {l}");
        let l = ok(gw.get("/organization/list?org_id=gamma").await).await;
        assert_eq!(l[0]["organization_alias"], "Gamma", "{name}: {l}");

        // Update: alias, models, merged metadata, and the budget row in place.
        let u = ok(send(
            &gw,
            Method::PATCH,
            "/organization/update",
            json!({"organization_id": "acme", "organization_alias": "Acme Inc",
                   "metadata": {"region": "eu"}, "max_budget": 3.0, "models": ["gpt-4o", "other"]}),
        )
        .await)
        .await;
        assert_eq!(u["organization_alias"], "Acme Inc", "{name}: {u}");
        assert_eq!(u["metadata"], json!({"tier": "gold", "region": "eu"}));
        assert_eq!(u["models"], json!(["gpt-4o", "other"]));
        assert_eq!(u["litellm_budget_table"]["max_budget"], 3.0);
        assert_eq!(u["litellm_budget_table"]["rpm_limit"], 5);
        assert_eq!(u["budget_id"], o["budget_id"]);
        err(
            send(
                &gw,
                Method::PATCH,
                "/organization/update",
                json!({"organization_alias": "x"}),
            )
            .await,
            400,
            Some("organization_id"),
        )
        .await;
        err(
            send(
                &gw,
                Method::PATCH,
                "/organization/update",
                json!({"organization_id": "acme", "max_budget": -2}),
            )
            .await,
            400,
            Some("max_budget"),
        )
        .await;
        err(
            send(
                &gw,
                Method::PATCH,
                "/organization/update",
                json!({"organization_id": "nope", "organization_alias": "x"}),
            )
            .await,
            404,
            None,
        )
        .await;
        let unchanged = ok(gw.get("/organization/info?organization_id=acme").await).await;
        assert_eq!(
            unchanged["litellm_budget_table"]["max_budget"], 3.0,
            "{name}"
        );

        // Membership: an unknown user is created; a known one is reused; roles are checked.
        ok(gw
            .post(
                "/user/new",
                json!({"user_id": "known", "user_email": "k@x.io"}),
            )
            .await)
        .await;
        let added = ok(gw
            .post(
                "/organization/member_add",
                json!({"organization_id": "acme", "member": [
                    {"user_id": "new-admin", "role": "org_admin"},
                    {"user_email": "k@x.io", "role": "internal_user"}]}),
            )
            .await)
        .await;
        assert_eq!(added["organization_id"], "acme", "{name}: {added}");
        let users = added["updated_users"].as_array().unwrap();
        assert_eq!(users[0]["user_id"], "new-admin");
        assert_eq!(users[1]["user_id"], "known");
        let ms = added["updated_organization_memberships"]
            .as_array()
            .unwrap();
        assert_eq!(ms[0]["user_role"], "org_admin");
        assert_eq!(ms[1]["user_role"], "internal_user");
        let u = ok(gw.get("/user/info?user_id=new-admin").await).await;
        assert_eq!(u["user_info"]["user_role"], "internal_user", "{name}: {u}");
        for (body, param) in [
            (
                json!({"organization_id": "acme", "member": {"user_id": "z", "role": "proxy_admin"}}),
                "member.role",
            ),
            (
                json!({"organization_id": "acme", "member": {"role": "internal_user"}}),
                "member",
            ),
            (json!({"organization_id": "acme"}), "member"),
            (
                json!({"organization_id": "acme", "member": {"user_id": "known", "role": "internal_user"}}),
                "member",
            ),
        ] {
            err(
                gw.post("/organization/member_add", body).await,
                400,
                Some(param),
            )
            .await;
        }
        err(
            gw.post(
                "/organization/member_add",
                json!({"organization_id": "nope", "member": {"user_id": "z", "role": "internal_user"}}),
            )
            .await,
            404,
            None,
        )
        .await;
        // A failed add wrote nothing: the unknown user "z" was not created.
        err(gw.get("/user/info?user_id=z").await, 404, None).await;

        let upd = ok(send(
            &gw,
            Method::PATCH,
            "/organization/member_update",
            json!({"organization_id": "acme", "user_id": "known", "role": "org_admin",
                   "max_budget_in_organization": 1.25}),
        )
        .await)
        .await;
        assert_eq!(upd["user_role"], "org_admin", "{name}: {upd}");
        assert_eq!(upd["litellm_budget_table"]["max_budget"], 1.25);
        err(
            send(
                &gw,
                Method::PATCH,
                "/organization/member_update",
                json!({"organization_id": "acme", "user_id": "known", "role": "boss"}),
            )
            .await,
            400,
            Some("role"),
        )
        .await;
        err(
            send(
                &gw,
                Method::PATCH,
                "/organization/member_update",
                json!({"organization_id": "acme", "user_id": "stranger", "role": "org_admin"}),
            )
            .await,
            404,
            None,
        )
        .await;
        let info = ok(gw.get("/organization/info?organization_id=acme").await).await;
        assert_eq!(
            info["members"].as_array().unwrap().len(),
            2,
            "{name}: {info}"
        );

        // An org_admin member manages their own organization, but not another one.
        let admin_key = ok(gw
            .post("/key/generate", json!({"user_id": "new-admin"}))
            .await)
        .await["key"]
            .as_str()
            .unwrap()
            .to_string();
        let r = gw
            .client
            .get(gw.url("/organization/info?organization_id=acme"))
            .bearer_auth(&admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        let r = gw
            .client
            .get(gw.url("/organization/info?organization_id=gamma"))
            .bearer_auth(&admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}");
        let r = gw
            .client
            .get(gw.url("/organization/list"))
            .bearer_auth(&admin_key)
            .send()
            .await
            .unwrap();
        let mine: Value = r.json().await.unwrap();
        assert_eq!(mine.as_array().unwrap().len(), 1, "{name}: {mine}");
        assert_eq!(mine[0]["organization_id"], "acme");
        let r = gw
            .client
            .post(gw.url("/organization/new"))
            .bearer_auth(&admin_key)
            .json(&json!({"organization_alias": "mine"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{name}");

        let del = ok(send(
            &gw,
            Method::DELETE,
            "/organization/member_delete",
            json!({"organization_id": "acme", "user_email": "k@x.io"}),
        )
        .await)
        .await;
        assert_eq!(del["user_id"], "known", "{name}: {del}");
        err(
            send(
                &gw,
                Method::DELETE,
                "/organization/member_delete",
                json!({"organization_id": "acme", "user_id": "known"}),
            )
            .await,
            404,
            None,
        )
        .await;

        // Delete: unknown ids fail the whole call; a real delete takes teams and keys along.
        let team = ok(gw
            .post(
                "/team/new",
                json!({"team_alias": "t", "organization_id": "gamma"}),
            )
            .await)
        .await;
        let team_id = team["team_id"].as_str().unwrap().to_string();
        let key = ok(gw.post("/key/generate", json!({"team_id": team_id})).await).await["key"]
            .as_str()
            .unwrap()
            .to_string();
        err(
            send(
                &gw,
                Method::DELETE,
                "/organization/delete",
                json!({"organization_ids": ["gamma", "nope"]}),
            )
            .await,
            404,
            None,
        )
        .await;
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 200, "{name}");
        err(
            send(&gw, Method::DELETE, "/organization/delete", json!({})).await,
            400,
            Some("organization_ids"),
        )
        .await;
        let gone = ok(send(
            &gw,
            Method::DELETE,
            "/organization/delete",
            json!({"organization_ids": ["gamma"]}),
        )
        .await)
        .await;
        assert_eq!(gone[0]["organization_id"], "gamma", "{name}: {gone}");
        assert_eq!(gone[0]["teams"][0]["team_id"], team_id.as_str());
        err(
            gw.get("/organization/info?organization_id=gamma").await,
            404,
            None,
        )
        .await;
        err(
            gw.get(&format!("/team/info?team_id={team_id}")).await,
            404,
            None,
        )
        .await;
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 401, "{name}");
        // The linked budget row outlives the organization.
        ok(gw
            .post("/budget/info", json!({"budgets": ["tier-1"]}))
            .await)
        .await;
    }
}

#[tokio::test]
async fn organization_budget_and_models_hold_team_keys() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        // Two mocked gpt-4o calls (0.000225 each) fit, a third does not.
        ok(gw
            .post(
                "/organization/new",
                json!({"organization_alias": "Org", "organization_id": "org1",
                       "max_budget": 0.0004, "models": ["gpt-4o"]}),
            )
            .await)
        .await;
        let team = ok(gw
            .post(
                "/team/new",
                json!({"team_alias": "t", "organization_id": "org1"}),
            )
            .await)
        .await;
        let team_id = team["team_id"].as_str().unwrap().to_string();
        let key = ok(gw.post("/key/generate", json!({"team_id": team_id})).await).await["key"]
            .as_str()
            .unwrap()
            .to_string();

        // Models outside the organization's allow-list are refused.
        let r = chat_with(&gw, &key, "other").await;
        let e = err(r, 401, None).await;
        assert_eq!(e["type"], "org_model_access_denied", "{name}: {e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("org not allowed to access model."),
            "{name}: {e}"
        );

        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 200, "{name}");
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 200, "{name}");
        let r = chat_with(&gw, &key, "gpt-4o").await;
        let e = err(r, 400, None).await;
        assert_eq!(e["type"], "budget_exceeded", "{name}: {e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("Budget has been exceeded! Organization=org1 Current cost:"),
            "{name}: {e}"
        );

        // The spend reaches LiteLLM_OrganizationTable.spend through the batch writer.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = ok(gw.get("/organization/info?organization_id=org1").await).await;
            let spend = o["spend"].as_f64().unwrap();
            if (spend - 0.00045).abs() < 1e-9 {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: org spend {spend}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // Each spend log row names the organization.
        let logs = ok(gw.get("/spend/logs").await).await;
        let logs = logs.as_array().unwrap();
        assert_eq!(logs.len(), 2, "{name}: {logs:?}");
        assert!(
            logs.iter().all(|l| l["organization_id"] == "org1"),
            "{name}: {logs:?}"
        );

        // Raising the organization's budget lets the key call again.
        ok(send(
            &gw,
            reqwest::Method::PATCH,
            "/organization/update",
            json!({"organization_id": "org1", "max_budget": 1.0}),
        )
        .await)
        .await;
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 200, "{name}");
    }
}

#[tokio::test]
async fn organization_rpm_limit_is_shared_by_its_teams_keys() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw
            .post(
                "/organization/new",
                json!({"organization_alias": "Org", "organization_id": "org-rl", "rpm_limit": 1}),
            )
            .await)
        .await;
        let mut keys = Vec::new();
        for alias in ["a", "b"] {
            let team = ok(gw
                .post(
                    "/team/new",
                    json!({"team_alias": alias, "organization_id": "org-rl"}),
                )
                .await)
            .await;
            let key = ok(gw
                .post("/key/generate", json!({"team_id": team["team_id"]}))
                .await)
            .await;
            keys.push(key["key"].as_str().unwrap().to_string());
        }
        // One request a minute for the whole organization, across teams.
        assert_eq!(
            chat_with(&gw, &keys[0], "gpt-4o").await.status(),
            200,
            "{name}"
        );
        assert_eq!(
            chat_with(&gw, &keys[1], "gpt-4o").await.status(),
            429,
            "{name}"
        );
    }
}

#[tokio::test]
async fn organization_budgets_reset_after_their_budget_duration() {
    for (name, db) in backends().await {
        let cfg = keys_config(db.as_deref()) + "  proxy_budget_rescheduler_min_time: 0.5\n";
        let gw = gateway(&cfg, None).await;
        ok(gw
            .post(
                "/organization/new",
                json!({"organization_alias": "Org", "organization_id": "org-r",
                       "max_budget": 0.0004, "budget_duration": "2s"}),
            )
            .await)
        .await;
        let team = ok(gw
            .post(
                "/team/new",
                json!({"team_alias": "t", "organization_id": "org-r"}),
            )
            .await)
        .await;
        let key = ok(gw
            .post("/key/generate", json!({"team_id": team["team_id"]}))
            .await)
        .await["key"]
            .as_str()
            .unwrap()
            .to_string();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(chat_with(&gw, &key, "gpt-4o").await.status().as_u16());
        }
        assert_eq!(got, [200, 200, 400], "{name}");
        gw.state.spend.flush().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while chat_with(&gw, &key, "gpt-4o").await.status() != 200 {
            assert!(
                Instant::now() < deadline,
                "{name}: organization budget never reset"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        gw.state.spend.flush().await;
        let o = ok(gw.get("/organization/info?organization_id=org-r").await).await;
        assert!(
            o["spend"].as_f64().unwrap() < 0.0004,
            "{name}: spend was zeroed by the reset: {o}"
        );
    }
}

#[tokio::test]
async fn a_key_outside_a_team_is_held_to_its_own_organization() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        // An unknown organization is refused and nothing is written.
        let r = gw
            .post("/key/generate", json!({"organization_id": "org-missing"}))
            .await;
        assert_eq!(r.status(), 400, "{name}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], "organization_id", "{name}: {v}");
        let listed = ok(gw.get("/key/list").await).await;
        assert_eq!(listed["total_count"], 0, "{name}: {listed}");

        ok(gw
            .post(
                "/organization/new",
                json!({"organization_alias": "Org", "organization_id": "org-key",
                       "max_budget": 0.0004, "models": ["gpt-4o"]}),
            )
            .await)
        .await;
        let k = ok(gw
            .post("/key/generate", json!({"organization_id": "org-key"}))
            .await)
        .await;
        assert_eq!(k["organization_id"], "org-key", "{name}: {k}");
        let key = k["key"].as_str().unwrap().to_string();
        // The organization's allow-list and budget apply (each call costs 0.000225).
        let r = chat_with(&gw, &key, "other").await;
        assert_eq!(r.status(), 401, "{name}");
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(chat_with(&gw, &key, "gpt-4o").await.status().as_u16());
        }
        assert_eq!(got, [200, 200, 400], "{name}");
    }
}
