//! Users and teams end to end over HTTP, on SQLite and on Postgres (when `TEST_DATABASE_URL`
//! is set): CRUD, membership, block/unblock, keys tied to teams, cascading deletes, paging.

use crate::helpers::*;
use crate::keys::{backends, chat_with, keys_config};
use serde_json::{json, Value};

async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

async fn err(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");
    v
}

#[tokio::test]
async fn users_crud_on_every_backend() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;

        // Defaults: uuid user_id, internal_user, a key minted for the user.
        let u = ok(gw.post("/user/new", json!({"user_email": "a@x.io"})).await).await;
        let uid = u["user_id"].as_str().unwrap().to_string();
        assert_eq!(uid.len(), 36, "{name}: {u}");
        assert_eq!(u["user_role"], "internal_user");
        assert_eq!(u["user_email"], "a@x.io");
        let key = u["key"].as_str().unwrap().to_string();
        assert!(key.starts_with("sk-"), "{name}: {u}");
        assert_eq!(u["spend"], 0.0);

        // The minted key works and belongs to the user.
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 200);

        // Explicit fields, no key.
        let u2 = ok(gw
            .post(
                "/user/new",
                json!({"user_id": "bob", "user_alias": "Bob", "user_role": "proxy_admin_viewer",
                       "max_budget": 10.5, "budget_duration": "30d", "models": ["gpt-4o"],
                       "tpm_limit": 100, "rpm_limit": 5, "max_parallel_requests": 2,
                       "metadata": {"dept": "r&d"}, "auto_create_key": false}),
            )
            .await)
        .await;
        assert_eq!(u2["user_id"], "bob");
        assert!(u2["key"].is_null(), "{name}: {u2}");
        assert_eq!(u2["max_budget"], 10.5);
        assert!(u2["budget_reset_at"].is_string());

        // Duplicates and bad input: 400.
        err(gw.post("/user/new", json!({"user_id": "bob"})).await, 400).await;
        err(
            gw.post("/user/new", json!({"user_email": "a@x.io"})).await,
            400,
        )
        .await;
        err(
            gw.post("/user/new", json!({"user_role": "king"})).await,
            400,
        )
        .await;
        err(gw.post("/user/new", json!({"teams": ["nope"]})).await, 400).await;

        // Info: row, keys, teams.
        let info = ok(gw.get(&format!("/user/info?user_id={uid}")).await).await;
        assert_eq!(info["user_id"], uid.as_str());
        assert_eq!(info["user_info"]["user_email"], "a@x.io");
        assert_eq!(info["keys"].as_array().unwrap().len(), 1, "{name}: {info}");
        assert_eq!(info["keys"][0]["user_id"], uid.as_str());
        assert_eq!(info["teams"], json!([]));
        let info = ok(gw.get("/user/info?user_id=bob").await).await;
        assert_eq!(info["user_info"]["metadata"]["dept"], "r&d");
        assert_eq!(info["user_info"]["models"], json!(["gpt-4o"]));
        assert_eq!(info["user_info"]["rpm_limit"], 5);
        err(gw.get("/user/info?user_id=ghost").await, 404).await;

        // An internal user may read itself, not others.
        let me = gw
            .client
            .get(gw.url("/user/info"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(ok(me).await["user_id"], uid.as_str(), "{name}");
        let other = gw
            .client
            .get(gw.url("/user/info?user_id=bob"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let v = err(other, 403).await;
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("key not allowed to access this user's info. user_id=bob"),
            "{v}"
        );
        // ... and cannot create users.
        let r = gw
            .client
            .post(gw.url("/user/new"))
            .bearer_auth(&key)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let v = err(r, 401).await;
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Only proxy admin"));

        // Update by id and by email.
        let up = ok(gw
            .post(
                "/user/update",
                json!({"user_id": "bob", "max_budget": 20.0, "user_alias": "Robert"}),
            )
            .await)
        .await;
        assert_eq!(up["max_budget"], 20.0);
        assert_eq!(up["user_alias"], "Robert");
        assert_eq!(up["rpm_limit"], 5, "{name}: untouched fields stay");
        let up = ok(gw
            .post(
                "/user/update",
                json!({"user_email": "a@x.io", "user_role": "internal_user_viewer"}),
            )
            .await)
        .await;
        assert_eq!(up["user_id"], uid.as_str());
        assert_eq!(up["user_role"], "internal_user_viewer");
        err(
            gw.post("/user/update", json!({"user_id": "ghost", "max_budget": 1}))
                .await,
            404,
        )
        .await;
        err(gw.post("/user/update", json!({"max_budget": 1})).await, 400).await;

        // Delete takes the user's keys with it.
        let d = ok(gw.post("/user/delete", json!({"user_ids": [uid]})).await).await;
        assert_eq!(d["deleted_users"], json!([uid]));
        assert_eq!(d["deleted_keys"], 1);
        assert_eq!(chat_with(&gw, &key, "gpt-4o").await.status(), 401, "{name}");
        err(gw.get(&format!("/user/info?user_id={uid}")).await, 404).await;
        err(
            gw.post("/user/delete", json!({"user_ids": ["ghost"]}))
                .await,
            404,
        )
        .await;
        err(gw.post("/user/delete", json!({})).await, 400).await;
    }
}

#[tokio::test]
async fn user_list_pages_and_filters() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        for i in 0..5 {
            let role = if i == 0 {
                "proxy_admin"
            } else {
                "internal_user"
            };
            ok(gw
                .post(
                    "/user/new",
                    json!({"user_id": format!("u{i}"), "user_email": format!("u{i}@x.io"),
                           "user_role": role, "auto_create_key": false}),
                )
                .await)
            .await;
        }
        let all = ok(gw.get("/user/list").await).await;
        assert_eq!(all["total"], 5, "{name}");
        assert_eq!(all["page"], 1);
        assert_eq!(all["page_size"], 25);
        assert_eq!(all["total_pages"], 1);

        let mut seen = Vec::new();
        for page in 1..=3 {
            let p = ok(gw.get(&format!("/user/list?page={page}&page_size=2")).await).await;
            assert_eq!(p["total"], 5);
            assert_eq!(p["total_pages"], 3);
            let users = p["users"].as_array().unwrap();
            assert_eq!(users.len(), if page < 3 { 2 } else { 1 }, "{name}");
            seen.extend(
                users
                    .iter()
                    .map(|u| u["user_id"].as_str().unwrap().to_string()),
            );
        }
        seen.sort();
        assert_eq!(
            seen,
            ["u0", "u1", "u2", "u3", "u4"],
            "{name}: every user once"
        );

        let admins = ok(gw.get("/user/list?role=proxy_admin").await).await;
        assert_eq!(admins["total"], 1);
        assert_eq!(admins["users"][0]["user_id"], "u0");
        let some = ok(gw.get("/user/list?user_ids=u1,u3,nope").await).await;
        assert_eq!(some["total"], 2, "{name}");
        let one = ok(gw.get("/user/list?user_email=u4@x.io").await).await;
        assert_eq!(one["users"][0]["user_id"], "u4");
        err(gw.get("/user/list?page=0").await, 400).await;
        err(gw.get("/user/list?page_size=1000").await, 400).await;
    }
}

#[tokio::test]
async fn teams_crud_members_and_keys_on_every_backend() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;

        // Create: defaults and explicit id; duplicates refused.
        let t = ok(gw.post("/team/new", json!({"team_alias": "anon"})).await).await;
        assert_eq!(t["team_id"].as_str().unwrap().len(), 36, "{name}: {t}");
        assert_eq!(t["blocked"], false);
        assert_eq!(t["spend"], 0.0);
        assert_eq!(t["members_with_roles"], json!([]));
        let t = ok(gw
            .post(
                "/team/new",
                json!({"team_id": "core", "team_alias": "Core", "models": ["gpt-4o"],
                       "max_budget": 50.0, "budget_duration": "7d", "tpm_limit": 1000,
                       "rpm_limit": 10, "max_parallel_requests": 3, "metadata": {"cc": "42"},
                       "members_with_roles": [{"role": "admin", "user_id": "alice"}]}),
            )
            .await)
        .await;
        assert_eq!(t["team_id"], "core");
        assert_eq!(t["models"], json!(["gpt-4o"]));
        assert_eq!(t["max_budget"], 50.0);
        assert!(t["budget_reset_at"].is_string());
        assert_eq!(t["members_with_roles"][0]["user_id"], "alice");
        assert_eq!(t["members_with_roles"][0]["role"], "admin");
        let v = err(gw.post("/team/new", json!({"team_id": "core"})).await, 400).await;
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"));

        // The listed member became a user who knows the team.
        let alice = ok(gw.get("/user/info?user_id=alice").await).await;
        assert_eq!(
            alice["user_info"]["teams"],
            json!(["core"]),
            "{name}: {alice}"
        );
        assert_eq!(alice["teams"][0]["team_id"], "core");

        // Member add: one object, a list, by email; unknown users are created.
        let r = ok(gw
            .post(
                "/team/member_add",
                json!({"team_id": "core", "member": {"role": "user", "user_id": "bob"}}),
            )
            .await)
        .await;
        assert_eq!(r["members_with_roles"].as_array().unwrap().len(), 2);
        assert_eq!(r["updated_users"][0]["user_id"], "bob");
        let r = ok(gw
            .post(
                "/team/member_add",
                json!({"team_id": "core", "member": [{"role": "user", "user_email": "carol@x.io"}]}),
            )
            .await)
        .await;
        let carol = r["updated_users"][0]["user_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(r["members_with_roles"][2]["user_email"], "carol@x.io");
        assert_eq!(
            ok(gw.get(&format!("/user/info?user_id={carol}")).await).await["user_info"]
                ["user_email"],
            "carol@x.io"
        );
        // Duplicates and bad members: 400; unknown team: 404.
        err(
            gw.post(
                "/team/member_add",
                json!({"team_id": "core", "member": {"role": "user", "user_id": "bob"}}),
            )
            .await,
            400,
        )
        .await;
        err(
            gw.post(
                "/team/member_add",
                json!({"team_id": "core", "member": {"role": "owner", "user_id": "z"}}),
            )
            .await,
            400,
        )
        .await;
        err(
            gw.post(
                "/team/member_add",
                json!({"team_id": "core", "member": {"role": "user"}}),
            )
            .await,
            400,
        )
        .await;
        err(
            gw.post(
                "/team/member_add",
                json!({"team_id": "nope", "member": {"role": "user", "user_id": "z"}}),
            )
            .await,
            404,
        )
        .await;

        // List, with and without a member filter.
        let all = ok(gw.get("/team/list").await).await;
        assert_eq!(all.as_array().unwrap().len(), 2, "{name}");
        let bobs = ok(gw.get("/team/list?user_id=bob").await).await;
        assert_eq!(bobs.as_array().unwrap().len(), 1);
        assert_eq!(bobs[0]["team_id"], "core");

        // Keys tied to the team: the team must exist, key models within the team's.
        let v = err(
            gw.post("/key/generate", json!({"team_id": "ghost"})).await,
            400,
        )
        .await;
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Team doesn't exist in db. Team=ghost"),
            "{v}"
        );
        err(
            gw.post(
                "/key/generate",
                json!({"team_id": "core", "models": ["other"]}),
            )
            .await,
            400,
        )
        .await;
        let k = ok(gw
            .post(
                "/key/generate",
                json!({"team_id": "core", "models": ["gpt-4o"], "user_id": "bob"}),
            )
            .await)
        .await;
        let team_key = k["key"].as_str().unwrap().to_string();
        assert_eq!(k["team_id"], "core");
        let k2 = ok(gw.post("/key/generate", json!({"team_id": "core"})).await).await;
        let team_key2 = k2["key"].as_str().unwrap().to_string();
        err(
            gw.post("/key/update", json!({"key": team_key, "models": ["other"]}))
                .await,
            400,
        )
        .await;
        // A user_id without a user row still works, and no row is created (as in LiteLLM).
        let k3 = ok(gw.post("/key/generate", json!({"user_id": "no-row"})).await).await;
        assert_eq!(k3["user_id"], "no-row");
        let info = ok(gw.get("/user/info?user_id=no-row").await).await;
        assert!(info["user_info"].is_null(), "{name}: {info}");
        assert_eq!(info["keys"].as_array().unwrap().len(), 1);

        // Info: row and keys.
        let info = ok(gw.get("/team/info?team_id=core").await).await;
        assert_eq!(info["team_id"], "core");
        assert_eq!(info["team_info"]["metadata"]["cc"], "42");
        assert_eq!(info["keys"].as_array().unwrap().len(), 2, "{name}: {info}");
        err(gw.get("/team/info?team_id=ghost").await, 404).await;
        err(gw.get("/team/info").await, 400).await;
        // A member may read its team, and so may the team's own keys; a key of no team may
        // not.
        for k in [&team_key, &team_key2] {
            let r = gw
                .client
                .get(gw.url("/team/info?team_id=core"))
                .bearer_auth(k)
                .send()
                .await
                .unwrap();
            ok(r).await;
        }
        let r = gw
            .client
            .get(gw.url("/team/info?team_id=core"))
            .bearer_auth(k3["key"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        let v = err(r, 403).await;
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("User=no-row not authorized to access this team=core"),
            "{name}: {v}"
        );

        // Update.
        let up = ok(gw
            .post(
                "/team/update",
                json!({"team_id": "core", "team_alias": "Core2", "max_budget": 75.0}),
            )
            .await)
        .await;
        assert_eq!(up["team_id"], "core");
        assert_eq!(up["data"]["team_alias"], "Core2");
        assert_eq!(up["data"]["max_budget"], 75.0);
        assert_eq!(up["data"]["rpm_limit"], 10, "untouched fields stay");
        err(
            gw.post("/team/update", json!({"team_id": "ghost"})).await,
            404,
        )
        .await;
        err(gw.post("/team/update", json!({})).await, 400).await;

        // Models add/delete.
        let m = ok(gw
            .post(
                "/team/model/add",
                json!({"team_id": "core", "models": ["other", "gpt-4o"]}),
            )
            .await)
        .await;
        assert_eq!(m["models"], json!(["gpt-4o", "other"]));
        ok(gw
            .post(
                "/key/generate",
                json!({"team_id": "core", "models": ["other"]}),
            )
            .await)
        .await;
        let m = ok(gw
            .post(
                "/team/model/delete",
                json!({"team_id": "core", "models": ["other"]}),
            )
            .await)
        .await;
        assert_eq!(m["models"], json!(["gpt-4o"]));
        err(
            gw.post("/team/model/add", json!({"team_id": "core"})).await,
            400,
        )
        .await;

        // Block / unblock.
        assert_eq!(chat_with(&gw, &team_key, "gpt-4o").await.status(), 200);
        let b = ok(gw.post("/team/block", json!({"team_id": "core"})).await).await;
        assert_eq!(b["blocked"], true);
        let v = err(chat_with(&gw, &team_key, "gpt-4o").await, 401).await;
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Team=core is blocked"),
            "{name}: {v}"
        );
        assert_eq!(
            ok(gw.get("/team/info?team_id=core").await).await["team_info"]["blocked"],
            true
        );
        let b = ok(gw.post("/team/unblock", json!({"team_id": "core"})).await).await;
        assert_eq!(b["blocked"], false);
        assert_eq!(
            chat_with(&gw, &team_key, "gpt-4o").await.status(),
            200,
            "{name}"
        );
        err(
            gw.post("/team/block", json!({"team_id": "ghost"})).await,
            404,
        )
        .await;

        // Member delete: gone from the team and from the user's teams.
        let r = ok(gw
            .post(
                "/team/member_delete",
                json!({"team_id": "core", "user_id": "bob"}),
            )
            .await)
        .await;
        assert_eq!(
            r["members_with_roles"].as_array().unwrap().len(),
            2,
            "{name}"
        );
        let bob = ok(gw.get("/user/info?user_id=bob").await).await;
        assert_eq!(bob["user_info"]["teams"], json!([]));
        // Bob's key of the team went with him (LiteLLM deletes a removed member's team keys).
        assert_eq!(
            chat_with(&gw, &team_key, "gpt-4o").await.status(),
            401,
            "{name}"
        );
        ok(gw
            .post(
                "/team/member_delete",
                json!({"team_id": "core", "user_email": "carol@x.io"}),
            )
            .await)
        .await;
        err(
            gw.post(
                "/team/member_delete",
                json!({"team_id": "core", "user_id": "bob"}),
            )
            .await,
            400,
        )
        .await;

        // Delete cascades to the team's keys and memberships.
        assert_eq!(chat_with(&gw, &team_key2, "gpt-4o").await.status(), 200);
        let d = ok(gw.post("/team/delete", json!({"team_ids": ["core"]})).await).await;
        assert_eq!(
            d,
            json!({"deleted_teams": ["core"]}),
            "{name}: LiteLLM's shape"
        );
        let left = ok(gw.get("/key/list?team_id=core").await).await;
        assert_eq!(
            left["total_count"], 0,
            "{name}: the team's keys went with it"
        );
        assert_eq!(
            chat_with(&gw, &team_key2, "gpt-4o").await.status(),
            401,
            "{name}"
        );
        err(gw.get("/team/info?team_id=core").await, 404).await;
        let alice = ok(gw.get("/user/info?user_id=alice").await).await;
        assert_eq!(alice["user_info"]["teams"], json!([]), "{name}");
        err(
            gw.post("/team/delete", json!({"team_ids": ["core"]})).await,
            404,
        )
        .await;

        // Users may join teams at creation.
        ok(gw.post("/team/new", json!({"team_id": "t2"})).await).await;
        let u = ok(gw
            .post(
                "/user/new",
                json!({"user_id": "dan", "teams": ["t2"], "auto_create_key": false}),
            )
            .await)
        .await;
        assert_eq!(u["teams"], json!(["t2"]));
        let t2 = ok(gw.get("/team/info?team_id=t2").await).await;
        assert_eq!(
            t2["team_info"]["members_with_roles"][0]["user_id"], "dan",
            "{name}"
        );
    }
}

#[tokio::test]
async fn team_routes_are_admin_only() {
    let gw = gateway(&keys_config(None), None).await;
    ok(gw.post("/team/new", json!({"team_id": "x"})).await).await;
    let k = ok(gw.post("/key/generate", json!({})).await).await;
    let key = k["key"].as_str().unwrap();
    // Team self-service routes: only proxy admins and the team's admins (403 for others).
    for (path, body) in [
        ("/team/update", json!({"team_id": "x", "rpm_limit": 1})),
        (
            "/team/member_add",
            json!({"team_id": "x", "member": {"role": "user", "user_id": "u"}}),
        ),
        (
            "/team/member_delete",
            json!({"team_id": "x", "user_id": "u"}),
        ),
        (
            "/team/member_update",
            json!({"team_id": "x", "user_id": "u", "max_budget_in_team": 1}),
        ),
    ] {
        let r = gw.post_as(key, path, body).await;
        assert_eq!(r.status(), 403, "{path}");
    }
    for (path, body) in [
        ("/team/new", json!({})),
        ("/team/delete", json!({"team_ids": ["x"]})),
        ("/team/block", json!({"team_id": "x"})),
        ("/team/unblock", json!({"team_id": "x"})),
        ("/team/model/add", json!({"team_id": "x", "models": ["m"]})),
        (
            "/team/model/delete",
            json!({"team_id": "x", "models": ["m"]}),
        ),
        ("/user/update", json!({"user_id": "u"})),
        ("/user/delete", json!({"user_ids": ["u"]})),
    ] {
        let r = gw.post_as(key, path, body).await;
        assert_eq!(r.status(), 401, "{path}");
    }
    for path in ["/team/list", "/v2/team/list", "/user/list"] {
        let r = gw
            .client
            .get(gw.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn a_teams_rpm_limit_is_shared_by_its_keys() {
    let gw = gateway(&keys_config(None), None).await;
    ok(gw
        .post("/team/new", json!({"team_id": "t-lim", "rpm_limit": 3}))
        .await)
    .await;
    let mut keys = Vec::new();
    for _ in 0..2 {
        let k = ok(gw.post("/key/generate", json!({"team_id": "t-lim"})).await).await;
        keys.push(k["key"].as_str().unwrap().to_string());
    }
    let mut statuses = Vec::new();
    for i in 0..5 {
        let r = chat_with(&gw, &keys[i % 2], "gpt-4o").await;
        if r.status() == 200 {
            assert_eq!(r.headers()["x-ratelimit-team-limit-requests"], "3");
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429],
        "three requests a minute for the whole team"
    );
    // A key of another team is not affected.
    ok(gw.post("/team/new", json!({"team_id": "t-free"})).await).await;
    let k = ok(gw.post("/key/generate", json!({"team_id": "t-free"})).await).await;
    assert_eq!(
        chat_with(&gw, k["key"].as_str().unwrap(), "gpt-4o")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_users_rpm_limit_is_shared_by_their_keys_and_updates_apply_at_once() {
    let gw = gateway(&keys_config(None), None).await;
    let u = ok(gw
        .post("/user/new", json!({"user_id": "u-lim", "rpm_limit": 2}))
        .await)
    .await;
    let k1 = u["key"].as_str().unwrap().to_string();
    let k2 = ok(gw.post("/key/generate", json!({"user_id": "u-lim"})).await).await;
    let k2 = k2["key"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    for k in [&k1, &k2, &k1] {
        statuses.push(chat_with(&gw, k, "gpt-4o").await.status().as_u16());
    }
    assert_eq!(
        statuses,
        [200, 200, 429],
        "two requests a minute for the user"
    );
    ok(gw
        .post("/user/update", json!({"user_id": "u-lim", "rpm_limit": 10}))
        .await)
    .await;
    assert_eq!(
        chat_with(&gw, &k2, "gpt-4o").await.status(),
        200,
        "the new limit applies at once"
    );
}

#[tokio::test]
async fn team_and_user_budgets_cover_all_their_keys() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        // Each mocked gpt-4o call costs 0.000225: two fit in 0.0004, the third is refused.
        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "t-budget", "max_budget": 0.0004}),
            )
            .await)
        .await;
        let keys: Vec<String> = two_keys(&gw, json!({"team_id": "t-budget"})).await;
        let mut statuses = Vec::new();
        for k in [&keys[0], &keys[1], &keys[0]] {
            statuses.push(chat_with(&gw, k, "gpt-4o").await.status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 400], "{name}: the team's budget");
        let r = chat_with(&gw, &keys[1], "gpt-4o").await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "budget_exceeded", "{name}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Team=t-budget"),
            "{name}: {v}"
        );

        ok(gw
            .post(
                "/user/new",
                json!({"user_id": "u-budget", "max_budget": 0.0004, "auto_create_key": false}),
            )
            .await)
        .await;
        let keys: Vec<String> = two_keys(&gw, json!({"user_id": "u-budget"})).await;
        let mut statuses = Vec::new();
        for k in [&keys[0], &keys[1], &keys[0]] {
            statuses.push(chat_with(&gw, k, "gpt-4o").await.status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 400], "{name}: the user's budget");
    }
}

async fn two_keys(gw: &Gateway, body: Value) -> Vec<String> {
    let mut keys = Vec::new();
    for _ in 0..2 {
        let k = ok(gw.post("/key/generate", body.clone()).await).await;
        keys.push(k["key"].as_str().unwrap().to_string());
    }
    keys
}

#[tokio::test]
async fn budgets_reset_after_their_budget_duration() {
    for (name, db) in backends().await {
        let cfg = keys_config(db.as_deref()) + "  proxy_budget_rescheduler_min_time: 0.5\n";
        let gw = gateway(&cfg, None).await;
        // 0.0004 allows two mocked calls (0.000225 each); the budget resets every 2 s.
        let k = ok(gw
            .post(
                "/key/generate",
                json!({"max_budget": 0.0004, "budget_duration": "2s"}),
            )
            .await)
        .await;
        let key = k["key"].as_str().unwrap().to_string();
        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "t-reset", "max_budget": 0.0004, "budget_duration": "2s"}),
            )
            .await)
        .await;
        let tk = ok(gw
            .post("/key/generate", json!({"team_id": "t-reset"}))
            .await)
        .await;
        let team_key = tk["key"].as_str().unwrap().to_string();
        for k in [&key, &team_key] {
            let mut statuses = Vec::new();
            for _ in 0..3 {
                statuses.push(chat_with(&gw, k, "gpt-4o").await.status().as_u16());
            }
            assert_eq!(statuses, [200, 200, 400], "{name}: spent");
        }
        gw.state.spend.flush().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
        for k in [&key, &team_key] {
            loop {
                if chat_with(&gw, k, "gpt-4o").await.status() == 200 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{name}: budget never reset"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
        let info = ok(gw.get(&format!("/key/info?key={key}")).await).await;
        assert!(
            info["info"]["budget_reset_at"].is_string(),
            "{name}: {info}"
        );
    }
}

/// A member's spend and lifetime spend in `LiteLLM_TeamMembership`, read from the database.
async fn member_spend(gw: &Gateway, user: &str, team: &str) -> Option<(f64, f64)> {
    const SQL: &str =
        r#"SELECT "spend", "total_spend" FROM "LiteLLM_TeamMembership" WHERE "user_id" = "#;
    match &gw.state.store {
        litellm_gateway::store::Store::Sqlite(p) => {
            sqlx::query_as(&format!(r#"{SQL}?1 AND "team_id" = ?2"#))
                .bind(user)
                .bind(team)
                .fetch_optional(p)
                .await
        }
        litellm_gateway::store::Store::Postgres(p) => {
            sqlx::query_as(&format!(r#"{SQL}$1 AND "team_id" = $2"#))
                .bind(user)
                .bind(team)
                .fetch_optional(p)
                .await
        }
    }
    .unwrap()
}

#[tokio::test]
async fn a_members_spend_in_a_team_is_kept_per_member() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "t-m", "members_with_roles": [{"role": "user", "user_id": "u-in"}]}),
            )
            .await)
        .await;
        ok(gw
            .post(
                "/user/new",
                json!({"user_id": "u-out", "auto_create_key": false}),
            )
            .await)
        .await;
        let member = two_keys(&gw, json!({"team_id": "t-m", "user_id": "u-in"})).await;
        let outsider = two_keys(&gw, json!({"team_id": "t-m", "user_id": "u-out"})).await;
        for k in [&member[0], &member[1], &outsider[0]] {
            assert_eq!(chat_with(&gw, k, "gpt-4o").await.status(), 200, "{name}");
        }
        gw.state.spend.flush().await;
        // Each mocked gpt-4o call costs 0.000225.
        let (spend, total) = member_spend(&gw, "u-in", "t-m")
            .await
            .unwrap_or_else(|| panic!("{name}: no membership row"));
        assert!((spend - 0.00045).abs() < 1e-9, "{name}: {spend}");
        assert!((total - 0.00045).abs() < 1e-9, "{name}: {total}");
        assert_eq!(
            member_spend(&gw, "u-out", "t-m").await,
            None,
            "{name}: not on the team's roster, so no membership row"
        );
    }
}
