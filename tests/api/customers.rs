//! Customers (end users) and budget tiers end to end over HTTP, on SQLite and on Postgres (when
//! `TEST_DATABASE_URL` is set): the `/customer/*` and `/budget/*` management API with bad
//! input, and what an end user's row does to LLM calls that name it in `user` (budgets,
//! blocks, model allow-lists, rate limits, auto-creation on spend, resets, global defaults).

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

/// Asserts an OpenAI-shaped error with this status and `param`; returns the error object.
async fn err(r: reqwest::Response, status: u16, param: Option<&str>) -> Value {
    let got = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(got, status, "{v}");
    let e = v["error"].clone();
    assert!(e["message"].is_string(), "{v}");
    assert_eq!(e["code"], status.to_string(), "{v}");
    if let Some(p) = param {
        assert_eq!(e["param"], p, "{v}");
    }
    e
}

/// A chat call with the master key on behalf of `user`.
async fn chat_as(gw: &Gateway, user: &str, model: &str) -> reqwest::Response {
    let mut body = chat_body(model);
    body["user"] = json!(user);
    gw.client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn statuses(gw: &Gateway, user: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(chat_as(gw, user, "gpt-4o").await.status().as_u16());
    }
    out
}

async fn count(gw: &Gateway, path: &str) -> usize {
    ok(gw.get(path).await).await.as_array().unwrap().len()
}

#[tokio::test]
async fn customer_management_on_every_backend() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;

        // Defaults.
        let c = ok(gw.post("/customer/new", json!({"user_id": "c1"})).await).await;
        assert_eq!(c["user_id"], "c1", "{name}: {c}");
        assert_eq!(c["blocked"], false);
        assert_eq!(c["spend"], 0.0);
        assert_eq!(c["models"], json!([]));
        assert!(
            c["alias"].is_null() && c["budget_id"].is_null(),
            "{name}: {c}"
        );
        assert!(c["litellm_budget_table"].is_null(), "{name}: {c}");

        // Budget fields create a budget row for the customer.
        let c2 = ok(gw
            .post(
                "/customer/new",
                json!({"user_id": "c2", "alias": "Two", "max_budget": 1.5, "soft_budget": 1.0,
                       "rpm_limit": 10, "tpm_limit": 1000, "max_parallel_requests": 2,
                       "budget_duration": "30d", "models": ["gpt-4o"],
                       "allowed_model_region": "eu", "default_model": "gpt-4o", "spend": 0.25}),
            )
            .await)
        .await;
        let bt = &c2["litellm_budget_table"];
        assert_eq!(bt["max_budget"], 1.5, "{name}: {c2}");
        assert_eq!(bt["rpm_limit"], 10);
        assert_eq!(bt["tpm_limit"], 1000);
        assert_eq!(bt["max_parallel_requests"], 2);
        assert_eq!(bt["soft_budget"], 1.0);
        assert_eq!(bt["budget_duration"], "30d");
        assert!(bt["budget_reset_at"].is_string(), "{name}: {c2}");
        assert_eq!(c2["budget_id"], bt["budget_id"]);
        assert_eq!(c2["alias"], "Two");
        assert_eq!(c2["spend"], 0.25);
        assert_eq!(c2["allowed_model_region"], "eu");
        assert_eq!(c2["default_model"], "gpt-4o");
        let c2_budget = c2["budget_id"].as_str().unwrap().to_string();
        let info = ok(gw.get("/customer/info?end_user_id=c2").await).await;
        assert_eq!(
            info["litellm_budget_table"]["budget_id"],
            c2_budget.as_str()
        );
        assert_eq!(info["litellm_budget_table"]["max_budget"], 1.5);
        assert_eq!(info["models"], json!(["gpt-4o"]));

        // The legacy path is the same route.
        ok(gw.post("/end_user/new", json!({"user_id": "c3"})).await).await;
        ok(gw.get("/end_user/info?end_user_id=c3").await).await;

        // Duplicates: 400, and the budget row of the failed call is not left behind.
        let budgets_before = count(&gw, "/budget/list").await;
        let e = err(
            gw.post("/customer/new", json!({"user_id": "c1", "max_budget": 3.0}))
                .await,
            400,
            Some("user_id"),
        )
        .await;
        assert_eq!(
            e["message"], "Customer already exists, passed user_id=c1. Please pass a new user_id.",
            "{name}"
        );
        assert_eq!(e["type"], "bad_request");
        assert_eq!(count(&gw, "/budget/list").await, budgets_before, "{name}");

        // Bad input: 400 naming the field, nothing written.
        let customers_before = count(&gw, "/customer/list").await;
        for (body, param) in [
            (json!({"alias": "no id"}), "user_id"),
            (json!({"user_id": 7}), "user_id"),
            (json!({"user_id": "x", "max_budget": -1}), "max_budget"),
            (json!({"user_id": "x", "max_budget": "lots"}), "max_budget"),
            (json!({"user_id": "x", "soft_budget": -0.5}), "soft_budget"),
            (
                json!({"user_id": "x", "budget_duration": "soon"}),
                "budget_duration",
            ),
            (
                json!({"user_id": "x", "budget_duration": 30}),
                "budget_duration",
            ),
            (json!({"user_id": "x", "rpm_limit": -1}), "rpm_limit"),
            (json!({"user_id": "x", "tpm_limit": 1.5}), "tpm_limit"),
            (
                json!({"user_id": "x", "max_parallel_requests": "2"}),
                "max_parallel_requests",
            ),
            (json!({"user_id": "x", "models": "gpt-4o"}), "models"),
            (json!({"user_id": "x", "blocked": "yes"}), "blocked"),
            (json!({"user_id": "x", "spend": -3}), "spend"),
            (
                json!({"user_id": "x", "allowed_model_region": "asia"}),
                "allowed_model_region",
            ),
            (
                json!({"user_id": "x", "budget_reset_at": "tomorrow"}),
                "budget_reset_at",
            ),
            (
                json!({"user_id": "x", "model_max_budget": [1]}),
                "model_max_budget",
            ),
            (
                json!({"user_id": "x", "max_budget": 1, "budget_id": c2_budget}),
                "max_budget",
            ),
            (
                json!({"user_id": "x", "rpm_limit": 1, "budget_id": c2_budget}),
                "rpm_limit",
            ),
            (
                json!({"user_id": "x", "budget_id": "no-such-budget"}),
                "budget_id",
            ),
            (
                json!({"user_id": "x", "object_permission": {"mcp_servers": ["s"]}}),
                "object_permission",
            ),
        ] {
            err(
                gw.post("/customer/new", body.clone()).await,
                400,
                Some(param),
            )
            .await;
        }
        let e = err(
            gw.post(
                "/customer/new",
                json!({"user_id": "x", "default_model": "nope"}),
            )
            .await,
            422,
            Some("default_model"),
        )
        .await;
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("Default Model not on proxy"),
            "{name}: {e}"
        );
        let e = err(
            gw.post("/customer/new", json!({"user_id": "x", "max_budget": -1}))
                .await,
            400,
            None,
        )
        .await;
        assert_eq!(
            e["message"],
            "max_budget must be a non-negative finite number. Received: -1"
        );
        let e = err(
            gw.post("/customer/new", json!([1])).await,
            400,
            Some("request_body"),
        )
        .await;
        assert!(e["message"].as_str().unwrap().contains("JSON object"));
        assert_eq!(
            count(&gw, "/customer/list").await,
            customers_before,
            "{name}"
        );
        assert_eq!(count(&gw, "/budget/list").await, budgets_before, "{name}");

        // Info errors.
        let e = err(
            gw.get("/customer/info?end_user_id=ghost").await,
            404,
            Some("end_user_id"),
        )
        .await;
        assert_eq!(e["message"], "End User Id=ghost does not exist in db");
        assert_eq!(e["type"], "not_found");
        err(gw.get("/customer/info").await, 400, Some("end_user_id")).await;

        // Update: budget fields create a row for a customer without one, or change its row.
        let u = ok(gw
            .post(
                "/customer/update",
                json!({"user_id": "c1", "max_budget": 2.0, "alias": "One", "blocked": true}),
            )
            .await)
        .await;
        assert_eq!(u["litellm_budget_table"]["max_budget"], 2.0, "{name}: {u}");
        assert_eq!(u["alias"], "One");
        assert_eq!(u["blocked"], true);
        assert!(u["budget_id"].is_string());
        let u = ok(gw
            .post(
                "/customer/update",
                json!({"user_id": "c2", "rpm_limit": 20, "models": [], "alias": null}),
            )
            .await)
        .await;
        assert_eq!(u["budget_id"], c2_budget.as_str(), "{name}: {u}");
        assert_eq!(u["litellm_budget_table"]["rpm_limit"], 20);
        assert_eq!(u["litellm_budget_table"]["max_budget"], 1.5, "unchanged");
        assert_eq!(
            u["models"],
            json!([]),
            "an empty list clears the allow-list"
        );
        assert_eq!(u["alias"], "Two", "null leaves a field as it is");
        assert_eq!(u["spend"], 0.25, "update keeps the spend");
        // Link to a shared budget tier.
        ok(gw
            .post(
                "/budget/new",
                json!({"budget_id": "tier-1", "max_budget": 9.0}),
            )
            .await)
        .await;
        let u = ok(gw
            .post(
                "/customer/update",
                json!({"user_id": "c3", "budget_id": "tier-1"}),
            )
            .await)
        .await;
        assert_eq!(u["litellm_budget_table"]["max_budget"], 9.0, "{name}: {u}");
        // Update errors.
        let e = err(
            gw.post(
                "/customer/update",
                json!({"user_id": "ghost", "alias": "g"}),
            )
            .await,
            404,
            Some("user_id"),
        )
        .await;
        assert_eq!(e["message"], "End User Id=ghost does not exist in db");
        for (body, param) in [
            (json!({"alias": "x"}), "user_id"),
            (
                json!({"user_id": "c3", "budget_id": "no-such"}),
                "budget_id",
            ),
            (json!({"user_id": "c3", "max_budget": -2}), "max_budget"),
            (
                json!({"user_id": "c3", "budget_duration": "1x"}),
                "budget_duration",
            ),
            (json!({"user_id": "c3", "models": [1]}), "models"),
        ] {
            err(gw.post("/customer/update", body).await, 400, Some(param)).await;
        }
        let still = ok(gw.get("/customer/info?end_user_id=c3").await).await;
        assert_eq!(
            still["budget_id"], "tier-1",
            "{name}: failed updates change nothing"
        );

        // List, in id order.
        let list = ok(gw.get("/customer/list").await).await;
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["c1", "c2", "c3"], "{name}");
        assert_eq!(list[1]["litellm_budget_table"]["rpm_limit"], 20);

        // Block upserts; unblock answers with who is still blocked.
        let b = ok(gw
            .post("/customer/block", json!({"user_ids": ["c2", "fresh"]}))
            .await)
        .await;
        let blocked = b["blocked_users"].as_array().unwrap();
        assert_eq!(blocked.len(), 2, "{name}: {b}");
        assert!(blocked.iter().all(|c| c["blocked"] == true), "{name}: {b}");
        assert_eq!(blocked[1]["user_id"], "fresh");
        let ub = ok(gw
            .post("/customer/unblock", json!({"user_ids": ["c2"]}))
            .await)
        .await;
        assert_eq!(ub["blocked_users"], json!(["c1", "fresh"]), "{name}: {ub}");
        err(
            gw.post("/customer/unblock", json!({"user_ids": ["ghost"]}))
                .await,
            404,
            Some("user_ids"),
        )
        .await;
        err(
            gw.post("/customer/block", json!({"user_ids": "c2"})).await,
            400,
            Some("user_ids"),
        )
        .await;

        // Delete: all or nothing.
        let e = err(
            gw.post("/customer/delete", json!({"user_ids": ["c1", "ghost"]}))
                .await,
            404,
            Some("user_ids"),
        )
        .await;
        assert_eq!(e["message"], "End User Id(s)=ghost do not exist in db");
        ok(gw.get("/customer/info?end_user_id=c1").await).await;
        let d = ok(gw
            .post("/customer/delete", json!({"user_ids": ["c1", "fresh"]}))
            .await)
        .await;
        assert_eq!(d["deleted_customers"], 2, "{name}: {d}");
        assert_eq!(
            d["message"],
            "Successfully deleted customers with ids: ['c1', 'fresh']"
        );
        err(gw.get("/customer/info?end_user_id=c1").await, 404, None).await;
        err(
            gw.post("/customer/delete", json!({"user_ids": []})).await,
            400,
            Some("user_ids"),
        )
        .await;
        err(
            gw.post("/customer/delete", json!({})).await,
            400,
            Some("user_ids"),
        )
        .await;
    }
}

#[tokio::test]
async fn customer_and_budget_routes_are_admin_only() {
    let gw = gateway(&keys_config(None), None).await;
    let k = ok(gw.post("/key/generate", json!({})).await).await;
    let key = k["key"].as_str().unwrap();
    for (method, path) in [
        ("POST", "/customer/new"),
        ("GET", "/customer/info?end_user_id=a"),
        ("POST", "/customer/update"),
        ("POST", "/customer/delete"),
        ("GET", "/customer/list"),
        ("POST", "/customer/block"),
        ("POST", "/customer/unblock"),
        ("POST", "/budget/new"),
        ("POST", "/budget/update"),
        ("POST", "/budget/info"),
        ("GET", "/budget/list"),
        ("POST", "/budget/delete"),
        ("GET", "/budget/settings?budget_id=a"),
    ] {
        let req = match method {
            "POST" => gw
                .client
                .post(gw.url(path))
                .json(&json!({"user_id": "a", "user_ids": ["a"]})),
            _ => gw.client.get(gw.url(path)),
        };
        let r = req.bearer_auth(key).send().await.unwrap();
        let e = err(r, 401, None).await;
        assert_eq!(e["type"], "auth_error", "{path}: {e}");
    }
    assert_eq!(count(&gw, "/customer/list").await, 0);
}

#[tokio::test]
async fn budget_management_on_every_backend() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        let b = ok(gw
            .post(
                "/budget/new",
                json!({"budget_id": "gold", "max_budget": 10.0, "soft_budget": 8.0,
                       "rpm_limit": 100, "tpm_limit": 10000, "tpd_limit": 100000,
                       "max_parallel_requests": 4, "budget_duration": "1d",
                       "model_max_budget": {"gpt-4o": {"budget_limit": 1.0, "time_period": "1d"}}}),
            )
            .await)
        .await;
        assert_eq!(b["budget_id"], "gold", "{name}: {b}");
        assert_eq!(b["max_budget"], 10.0);
        assert_eq!(b["tpd_limit"], 100000);
        assert_eq!(b["model_max_budget"]["gpt-4o"]["budget_limit"], 1.0);
        assert_eq!(b["created_by"], "default_user_id");
        assert!(b["budget_reset_at"].is_string() && b["created_at"].is_string());
        // A generated id.
        let anon = ok(gw.post("/budget/new", json!({"max_budget": 1})).await).await;
        assert_eq!(
            anon["budget_id"].as_str().unwrap().len(),
            36,
            "{name}: {anon}"
        );
        assert!(anon["budget_reset_at"].is_null());

        // Bad input.
        let e = err(
            gw.post("/budget/new", json!({"budget_id": "gold"})).await,
            400,
            Some("budget_id"),
        )
        .await;
        assert_eq!(e["message"], "Budget with id 'gold' already exists.");
        for (body, param) in [
            (json!({"max_budget": -1}), "max_budget"),
            (json!({"soft_budget": "x"}), "soft_budget"),
            (json!({"budget_duration": "0d"}), "budget_duration"),
            (json!({"rpm_limit": -5}), "rpm_limit"),
            (json!({"budget_id": 5}), "budget_id"),
            (
                json!({"model_max_budget": {"gpt-4o": 3}}),
                "model_max_budget",
            ),
        ] {
            err(gw.post("/budget/new", body).await, 400, Some(param)).await;
        }
        assert_eq!(count(&gw, "/budget/list").await, 2, "{name}");

        // Update: only the fields sent; null clears; a new duration moves the reset.
        let u = ok(gw
            .post(
                "/budget/update",
                json!({"budget_id": "gold", "max_budget": 12.5, "rpm_limit": null}),
            )
            .await)
        .await;
        assert_eq!(u["max_budget"], 12.5, "{name}: {u}");
        assert!(u["rpm_limit"].is_null());
        assert_eq!(u["tpm_limit"], 10000);
        assert_eq!(u["budget_duration"], "1d");
        let u = ok(gw
            .post(
                "/budget/update",
                json!({"budget_id": "gold", "budget_duration": null}),
            )
            .await)
        .await;
        assert!(u["budget_reset_at"].is_null(), "{name}: {u}");
        err(
            gw.post("/budget/update", json!({"max_budget": 1})).await,
            400,
            Some("budget_id"),
        )
        .await;
        err(
            gw.post(
                "/budget/update",
                json!({"budget_id": "nope", "max_budget": 1}),
            )
            .await,
            404,
            Some("budget_id"),
        )
        .await;
        err(
            gw.post(
                "/budget/update",
                json!({"budget_id": "gold", "max_budget": -1}),
            )
            .await,
            400,
            Some("max_budget"),
        )
        .await;

        // Info: the rows that exist.
        let i = ok(gw
            .post("/budget/info", json!({"budgets": ["gold", "nope"]}))
            .await)
        .await;
        assert_eq!(i.as_array().unwrap().len(), 1, "{name}: {i}");
        assert_eq!(i[0]["max_budget"], 12.5);
        err(
            gw.post("/budget/info", json!({"budgets": []})).await,
            400,
            Some("budgets"),
        )
        .await;
        err(
            gw.post("/budget/info", json!({"budgets": "gold"})).await,
            400,
            Some("budgets"),
        )
        .await;

        // Settings: the editable fields with their values.
        let s = ok(gw.get("/budget/settings?budget_id=gold").await).await;
        let fields: Vec<&str> = s
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field_name"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&"max_budget") && fields.contains(&"rpm_limit"),
            "{s}"
        );
        let mb = s
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field_name"] == "max_budget")
            .unwrap();
        assert_eq!(mb["field_value"], 12.5, "{name}: {s}");
        assert_eq!(mb["field_type"], "Float");
        err(gw.get("/budget/settings").await, 400, Some("budget_id")).await;

        // Delete unlinks the customers on it.
        ok(gw
            .post(
                "/customer/new",
                json!({"user_id": "on-gold", "budget_id": "gold"}),
            )
            .await)
        .await;
        let d = ok(gw.post("/budget/delete", json!({"id": "gold"})).await).await;
        assert_eq!(d["budget_id"], "gold", "{name}: {d}");
        let c = ok(gw.get("/customer/info?end_user_id=on-gold").await).await;
        assert!(
            c["budget_id"].is_null() && c["litellm_budget_table"].is_null(),
            "{name}: {c}"
        );
        err(
            gw.post("/budget/delete", json!({"id": "gold"})).await,
            404,
            Some("id"),
        )
        .await;
        err(gw.post("/budget/delete", json!({})).await, 400, Some("id")).await;
        assert_eq!(count(&gw, "/budget/list").await, 1, "{name}");
    }
}

#[tokio::test]
async fn an_end_users_budget_is_enforced_on_every_backend() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw
            .post(
                "/customer/new",
                json!({"user_id": "cust", "max_budget": TWO_CALLS}),
            )
            .await)
        .await;
        assert_eq!(statuses(&gw, "cust", 3).await, [200, 200, 400], "{name}");
        let r = chat_as(&gw, "cust", "gpt-4o").await;
        let e = err(r, 400, None).await;
        assert_eq!(e["type"], "budget_exceeded", "{name}: {e}");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.starts_with("ExceededBudget: End User=cust over budget. Spend=")
                && msg.ends_with(&format!(", Budget={TWO_CALLS}")),
            "{name}: {msg}"
        );
        // Other end users, and calls with no end user, are not affected.
        assert_eq!(chat_as(&gw, "someone-else", "gpt-4o").await.status(), 200);
        let r = gw.post("/v1/chat/completions", chat_body("gpt-4o")).await;
        assert_eq!(r.status(), 200);
        // The spend reached the customer's row.
        gw.state.spend.flush().await;
        let info = ok(gw.get("/customer/info?end_user_id=cust").await).await;
        let spend = info["spend"].as_f64().unwrap();
        assert!(spend >= TWO_CALLS, "{name}: {info}");
        // Raising the budget applies at once.
        ok(gw
            .post(
                "/customer/update",
                json!({"user_id": "cust", "max_budget": 1.0}),
            )
            .await)
        .await;
        assert_eq!(chat_as(&gw, "cust", "gpt-4o").await.status(), 200, "{name}");
    }
}

#[tokio::test]
async fn blocked_customers_are_refused_until_unblocked() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        assert_eq!(chat_as(&gw, "blk", "gpt-4o").await.status(), 200);
        ok(gw
            .post("/customer/block", json!({"user_ids": ["blk"]}))
            .await)
        .await;
        let e = err(chat_as(&gw, "blk", "gpt-4o").await, 400, None).await;
        assert_eq!(
            e["message"], "User blocked from making LLM API Calls. User=blk",
            "{name}: {e}"
        );
        assert_eq!(e["type"], "invalid_request_error");
        // The customer-id header names the end user too, on any key.
        let k = ok(gw.post("/key/generate", json!({})).await).await;
        let r = gw
            .client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(k["key"].as_str().unwrap())
            .header("x-litellm-customer-id", "blk")
            .json(&chat_body("gpt-4o"))
            .send()
            .await
            .unwrap();
        err(r, 400, None).await;
        // Embeddings and the Anthropic route check the end user as well.
        let r = gw
            .post(
                "/v1/embeddings",
                json!({"model": "gpt-4o", "input": "x", "user": "blk"}),
            )
            .await;
        err(r, 400, None).await;
        let r = gw
            .post(
                "/v1/messages",
                json!({"model": "gpt-4o", "max_tokens": 10, "metadata": {"user_id": "blk"},
                       "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        err(r, 400, None).await;
        ok(gw
            .post("/customer/unblock", json!({"user_ids": ["blk"]}))
            .await)
        .await;
        assert_eq!(chat_as(&gw, "blk", "gpt-4o").await.status(), 200, "{name}");
        // Blocking through /customer/update applies at once too.
        ok(gw
            .post(
                "/customer/update",
                json!({"user_id": "blk", "blocked": true}),
            )
            .await)
        .await;
        assert_eq!(chat_as(&gw, "blk", "gpt-4o").await.status(), 400, "{name}");
    }
}

#[tokio::test]
async fn a_customers_model_allow_list_is_enforced() {
    let gw = gateway(&keys_config(None), None).await;
    ok(gw
        .post(
            "/customer/new",
            json!({"user_id": "narrow", "models": ["other"]}),
        )
        .await)
    .await;
    let e = err(chat_as(&gw, "narrow", "gpt-4o").await, 401, Some("model")).await;
    assert_eq!(e["type"], "customer_model_access_denied", "{e}");
    assert_eq!(
        e["message"],
        "customer not allowed to access model. This customer can only access models=[\"other\"]. Tried to access gpt-4o"
    );
    assert_eq!(chat_as(&gw, "narrow", "other").await.status(), 200);
    // No allow-list: every model.
    assert_eq!(chat_as(&gw, "wide", "gpt-4o").await.status(), 200);
    ok(gw
        .post(
            "/customer/update",
            json!({"user_id": "narrow", "models": []}),
        )
        .await)
    .await;
    assert_eq!(chat_as(&gw, "narrow", "gpt-4o").await.status(), 200);
}

#[tokio::test]
async fn a_customers_rpm_limit_gives_429() {
    let gw = gateway(&keys_config(None), None).await;
    ok(gw
        .post("/customer/new", json!({"user_id": "slow", "rpm_limit": 2}))
        .await)
    .await;
    let r = chat_as(&gw, "slow", "gpt-4o").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-end_user-limit-requests"], "2");
    assert_eq!(r.headers()["x-ratelimit-end_user-remaining-requests"], "1");
    assert_eq!(chat_as(&gw, "slow", "gpt-4o").await.status(), 200);
    let r = chat_as(&gw, "slow", "gpt-4o").await;
    assert!(r.headers().contains_key("retry-after"));
    let e = err(r, 429, None).await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit exceeded for end_user: slow. Limit type: requests."),
        "{e}"
    );
    // The limit is the end user's, not the caller's.
    assert_eq!(chat_as(&gw, "fast", "gpt-4o").await.status(), 200);
    // A higher limit on its budget row applies at once.
    ok(gw
        .post(
            "/customer/update",
            json!({"user_id": "slow", "rpm_limit": 10}),
        )
        .await)
    .await;
    assert_eq!(chat_as(&gw, "slow", "gpt-4o").await.status(), 200);
}

#[tokio::test]
async fn end_users_are_created_on_first_spend_on_every_backend() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        err(gw.get("/customer/info?end_user_id=auto-1").await, 404, None).await;
        for _ in 0..2 {
            assert_eq!(chat_as(&gw, "auto-1", "gpt-4o").await.status(), 200);
        }
        // A failed call creates nothing.
        let r = chat_as(&gw, "auto-2", "no-such-model").await;
        assert_eq!(r.status(), 400);
        gw.state.spend.flush().await;
        let c = ok(gw.get("/customer/info?end_user_id=auto-1").await).await;
        assert_eq!(c["blocked"], false, "{name}: {c}");
        assert!(c["litellm_budget_table"].is_null());
        let spend = c["spend"].as_f64().unwrap();
        assert!(spend > 0.0 && spend < TWO_CALLS * 2.0, "{name}: {c}");
        err(gw.get("/customer/info?end_user_id=auto-2").await, 404, None).await;
        // The spend log names the end user.
        let logs = ok(gw.get("/spend/logs").await).await;
        assert!(
            logs.as_array()
                .unwrap()
                .iter()
                .any(|l| l["end_user"] == "auto-1"),
            "{name}: {logs}"
        );
        // Spend keeps accruing on the existing row.
        assert_eq!(chat_as(&gw, "auto-1", "gpt-4o").await.status(), 200);
        gw.state.spend.flush().await;
        let c = ok(gw.get("/customer/info?end_user_id=auto-1").await).await;
        assert!(c["spend"].as_f64().unwrap() > spend, "{name}: {c}");
    }
}

#[tokio::test]
async fn max_end_user_budget_covers_end_users_without_a_budget() {
    for (name, db) in backends().await {
        let cfg = keys_config(db.as_deref())
            + &format!("litellm_settings:\n  max_end_user_budget: {TWO_CALLS}\n");
        let gw = gateway(&cfg, None).await;
        // Unknown end users, and customers without a budget row, get the default.
        assert_eq!(statuses(&gw, "anyone", 3).await, [200, 200, 400], "{name}");
        ok(gw.post("/customer/new", json!({"user_id": "plain"})).await).await;
        assert_eq!(statuses(&gw, "plain", 3).await, [200, 200, 400], "{name}");
        // A customer's own budget wins over the default.
        ok(gw
            .post(
                "/customer/new",
                json!({"user_id": "rich", "max_budget": 1.0}),
            )
            .await)
        .await;
        assert_eq!(statuses(&gw, "rich", 3).await, [200, 200, 200], "{name}");
        let e = err(chat_as(&gw, "anyone", "gpt-4o").await, 400, None).await;
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("ExceededBudget: End User=anyone over budget."),
            "{name}: {e}"
        );
        // Requests without an end user are not limited.
        for _ in 0..3 {
            let r = gw.post("/v1/chat/completions", chat_body("gpt-4o")).await;
            assert_eq!(r.status(), 200);
        }
    }
}

#[tokio::test]
async fn max_end_user_budget_id_applies_a_budget_tier() {
    let cfg = keys_config(None) + "litellm_settings:\n  max_end_user_budget_id: free-tier\n";
    let gw = gateway(&cfg, None).await;
    // The tier does not exist yet: no limit.
    assert_eq!(statuses(&gw, "u1", 3).await, [200, 200, 200]);
    gw.state.spend.flush().await;
    ok(gw
        .post(
            "/budget/new",
            json!({"budget_id": "free-tier", "max_budget": TWO_CALLS, "rpm_limit": 100}),
        )
        .await)
    .await;
    // Creating it applies at once; u1 has spent three calls already.
    let r = chat_as(&gw, "u1", "gpt-4o").await;
    assert_eq!(r.status(), 400);
    let r = chat_as(&gw, "u2", "gpt-4o").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-end_user-limit-requests"], "100");
}

#[tokio::test]
async fn end_user_budgets_reset_after_their_budget_duration_on_every_backend() {
    for (name, db) in backends().await {
        let cfg = keys_config(db.as_deref()) + "  proxy_budget_rescheduler_min_time: 0.5\n";
        let gw = gateway(&cfg, None).await;
        let c = ok(gw
            .post(
                "/customer/new",
                json!({"user_id": "monthly", "max_budget": TWO_CALLS, "budget_duration": "2s"}),
            )
            .await)
        .await;
        let first_reset = c["litellm_budget_table"]["budget_reset_at"].clone();
        assert!(first_reset.is_string(), "{name}: {c}");
        assert_eq!(statuses(&gw, "monthly", 3).await, [200, 200, 400], "{name}");
        gw.state.spend.flush().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while chat_as(&gw, "monthly", "gpt-4o").await.status() != 200 {
            assert!(Instant::now() < deadline, "{name}: budget never reset");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let c = ok(gw.get("/customer/info?end_user_id=monthly").await).await;
        assert_ne!(
            c["litellm_budget_table"]["budget_reset_at"], first_reset,
            "{name}: the next reset is scheduled"
        );
    }
}

#[tokio::test]
async fn an_end_users_rpm_limit_is_shared_by_replicas_through_redis() {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("TEST_REDIS_URL not set: skipping (the test command sets it)");
        return;
    };
    // Two replicas on one database and one Redis; the end user id is unique to this run, so
    // its Redis counter is its own.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let cfg = keys_config(None) + &format!("router_settings:\n  redis_url: {url}\n");
    let g1 = gateway_with_db(&cfg, &db).await;
    let g2 = gateway_with_db(&cfg, &db).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let user = format!("shared-{}", uuid::Uuid::new_v4().simple());
    ok(g1
        .post("/customer/new", json!({"user_id": user, "rpm_limit": 3}))
        .await)
    .await;
    let mut got = Vec::new();
    for i in 0..6 {
        let gw = if i % 2 == 0 { &g1 } else { &g2 };
        got.push(chat_as(gw, &user, "gpt-4o").await.status().as_u16());
    }
    assert_eq!(got, [200, 200, 200, 429, 429, 429], "three a minute in all");
}

#[tokio::test]
async fn end_users_are_served_from_the_cache_until_its_ttl() {
    // Two replicas on one database: a block made on the second reaches the first only when its
    // cached answer (here a negative one: the end user was unknown) expires.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let cfg = keys_config(None) + "  user_api_key_cache_ttl: 1\n";
    let g1 = gateway_with_db(&cfg, &db).await;
    let g2 = gateway_with_db(&cfg, &db).await;
    assert_eq!(chat_as(&g1, "cached", "gpt-4o").await.status(), 200);
    ok(g2
        .post("/customer/block", json!({"user_ids": ["cached"]}))
        .await)
    .await;
    assert_eq!(chat_as(&g2, "cached", "gpt-4o").await.status(), 400);
    assert_eq!(
        chat_as(&g1, "cached", "gpt-4o").await.status(),
        200,
        "g1 answers from its cache, without reading the row"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(chat_as(&g1, "cached", "gpt-4o").await.status(), 400);
}
