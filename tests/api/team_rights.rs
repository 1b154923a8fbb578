//! Team management as LiteLLM runs it, over HTTP on SQLite and on Postgres (when
//! `TEST_DATABASE_URL` is set): `/team/member_update`, `/v2/team/list` paging and filters, who
//! may call what (proxy admin, team admin, plain member, outsider, internal user on their own
//! keys, admin viewer, key without a user), and per-member budgets and rate limits enforced on
//! a member's keys of the team.

use crate::helpers::*;
use crate::keys::{backends, chat_with, keys_config};
use serde_json::{json, Value};

pub async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

/// Asserts the status and that the OpenAI-shaped error's message contains `needle`.
pub async fn refused(r: reqwest::Response, status: u16, needle: &str) -> Value {
    let got = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(got, status, "{v}");
    assert_eq!(v["error"]["code"], status.to_string(), "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(needle), "expected {needle:?} in {msg:?}");
    v
}

/// A request with some caller's key.
async fn as_key(
    gw: &Gateway,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    let req = match method {
        "GET" => gw.client.get(gw.url(path)),
        _ => gw.client.post(gw.url(path)).json(&body),
    };
    req.bearer_auth(key).send().await.unwrap()
}

/// Adds `user` to `team` as a plain member.
async fn join(gw: &Gateway, team: &str, user: &str) {
    let body = json!({"team_id": team, "member": {"role": "user", "user_id": user}});
    ok(gw.post("/team/member_add", body).await).await;
}

/// Creates a user (with `role`) and returns the key minted for them.
pub async fn user_key(gw: &Gateway, user_id: &str, role: &str) -> String {
    let u = ok(gw
        .post("/user/new", json!({"user_id": user_id, "user_role": role}))
        .await)
    .await;
    u["key"].as_str().unwrap().to_string()
}

async fn team_info(gw: &Gateway, team: &str) -> Value {
    ok(gw.get(&format!("/team/info?team_id={team}")).await).await
}

fn membership<'a>(info: &'a Value, user: &str) -> &'a Value {
    info["team_memberships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user)
        .unwrap_or_else(|| panic!("no membership of {user}: {info}"))
}

#[tokio::test]
async fn member_update_sets_role_and_member_budget() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw.post("/team/new", json!({"team_id": "t"})).await).await;

        // member_add with a budget: a BudgetTable row linked from the membership.
        let r = ok(gw
            .post(
                "/team/member_add",
                json!({"team_id": "t", "member": {"role": "user", "user_id": "alice", "user_email": "a@x.io"},
                       "max_budget_in_team": 5.0}),
            )
            .await)
        .await;
        let tm = &r["updated_team_memberships"][0];
        assert_eq!(tm["user_id"], "alice", "{name}: {r}");
        assert_eq!(tm["litellm_budget_table"]["max_budget"], 5.0);
        let budget_id = tm["budget_id"].as_str().unwrap().to_string();
        assert_eq!(tm["litellm_budget_table"]["budget_id"], budget_id.as_str());
        join(&gw, "t", "bob").await;
        let info = team_info(&gw, "t").await;
        assert!(membership(&info, "bob")["budget_id"].is_null(), "{name}");
        assert_eq!(membership(&info, "bob")["budget_source"], "none");

        // Role and budget in one call; the response is LiteLLM's TeamMemberUpdateResponse.
        let up = ok(gw
            .post(
                "/team/member_update",
                json!({"team_id": "t", "user_id": "alice", "role": "admin",
                       "max_budget_in_team": 7.5, "rpm_limit": 3, "tpm_limit": 100}),
            )
            .await)
        .await;
        assert_eq!(
            up,
            json!({"team_id": "t", "user_id": "alice", "user_email": null,
                   "max_budget_in_team": 7.5, "tpm_limit": 100, "rpm_limit": 3,
                   "budget_duration": null, "allowed_models": null,
                   "temp_budget_increase": null, "temp_budget_expiry": null}),
            "{name}"
        );
        let info = team_info(&gw, "t").await;
        let alice = info["team_info"]["members_with_roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == "alice")
            .unwrap()
            .clone();
        assert_eq!(alice["role"], "admin", "{name}");
        assert_eq!(alice["user_email"], "a@x.io", "{name}: the email is kept");
        let m = membership(&info, "alice");
        assert_eq!(
            m["budget_id"],
            budget_id.as_str(),
            "{name}: edited in place"
        );
        assert_eq!(m["budget_source"], "custom");
        let b = &m["litellm_budget_table"];
        assert_eq!(b["max_budget"], 7.5);
        assert_eq!(b["rpm_limit"], 3);
        assert_eq!(b["tpm_limit"], 100);

        // By email; only what is sent changes.
        let up = ok(gw
            .post(
                "/team/member_update",
                json!({"team_id": "t", "user_email": "a@x.io", "budget_duration": "30d"}),
            )
            .await)
        .await;
        assert_eq!(up["user_id"], "alice");
        assert_eq!(up["user_email"], "a@x.io");
        let info = team_info(&gw, "t").await;
        let b = &membership(&info, "alice")["litellm_budget_table"];
        assert_eq!(b["budget_duration"], "30d");
        assert!(b["budget_reset_at"].is_string(), "{name}: {b}");
        assert_eq!(b["max_budget"], 7.5, "{name}: untouched");

        // A member without a budget gets one.
        ok(gw
            .post(
                "/team/member_update",
                json!({"team_id": "t", "user_id": "bob", "max_budget_in_team": 2}),
            )
            .await)
        .await;
        let info = team_info(&gw, "t").await;
        assert_eq!(
            membership(&info, "bob")["litellm_budget_table"]["max_budget"],
            2.0,
            "{name}"
        );

        // Clearing every limit unlinks the budget.
        ok(gw
            .post(
                "/team/member_update",
                json!({"team_id": "t", "user_id": "alice", "max_budget_in_team": null,
                       "rpm_limit": null, "tpm_limit": null, "budget_duration": null}),
            )
            .await)
        .await;
        let info = team_info(&gw, "t").await;
        assert!(
            membership(&info, "alice")["budget_id"].is_null(),
            "{name}: {info}"
        );

        // Bad input.
        refused(
            gw.post(
                "/team/member_update",
                json!({"team_id": "nope", "user_id": "alice", "role": "user"}),
            )
            .await,
            400,
            "Team id=nope does not exist in db",
        )
        .await;
        refused(
            gw.post(
                "/team/member_update",
                json!({"team_id": "t", "user_id": "carol", "max_budget_in_team": 1}),
            )
            .await,
            404,
            "not a member of team t",
        )
        .await;
        refused(
            gw.post(
                "/team/member_update",
                json!({"team_id": "t", "role": "user"}),
            )
            .await,
            400,
            "Either user_id or user_email",
        )
        .await;
        refused(
            gw.post(
                "/team/member_update",
                json!({"team_id": "t", "user_id": "alice", "role": "owner"}),
            )
            .await,
            400,
            "Invalid member role",
        )
        .await;
        let v = refused(
            gw.post(
                "/team/member_update",
                json!({"team_id": "t", "user_id": "alice", "rpm_limit": "many"}),
            )
            .await,
            400,
            "rpm_limit",
        )
        .await;
        assert_eq!(v["error"]["param"], "rpm_limit");
        refused(
            gw.post(
                "/team/member_update",
                json!({"user_id": "alice", "role": "user"}),
            )
            .await,
            400,
            "team_id",
        )
        .await;
    }
}

#[tokio::test]
async fn member_add_and_delete_follow_litellm() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw.post("/team/new", json!({"team_id": "t"})).await).await;
        ok(gw
            .post(
                "/team/member_add",
                json!({"team_id": "t", "member": [{"role": "user", "user_id": "a"}]}),
            )
            .await)
        .await;
        // One duplicate: LiteLLM's 400; a list of only duplicates: 400; a mixed list adds the
        // new ones.
        let v = refused(
            gw.post(
                "/team/member_add",
                json!({"team_id": "t", "member": {"role": "user", "user_id": "a"}}),
            )
            .await,
            400,
            "User already in team",
        )
        .await;
        assert_eq!(v["error"]["type"], "team_member_already_in_team");
        refused(
            gw.post(
                "/team/member_add",
                json!({"team_id": "t", "member": [{"role": "user", "user_id": "a"}]}),
            )
            .await,
            400,
            "All users are already in team",
        )
        .await;
        let r = ok(gw
            .post(
                "/team/member_add",
                json!({"team_id": "t", "member": [{"role": "user", "user_id": "a"},
                                                  {"role": "user", "user_id": "b"}]}),
            )
            .await)
        .await;
        assert_eq!(r["updated_users"].as_array().unwrap().len(), 1, "{name}");
        assert_eq!(r["members_with_roles"].as_array().unwrap().len(), 2);

        // member_delete answers the team row and takes the member's team keys with it.
        let k = ok(gw
            .post("/key/generate", json!({"team_id": "t", "user_id": "b"}))
            .await)
        .await;
        let key = k["key"].as_str().unwrap();
        assert_eq!(chat_with(&gw, key, "gpt-4o").await.status(), 200);
        let d = ok(gw
            .post(
                "/team/member_delete",
                json!({"team_id": "t", "user_id": "b"}),
            )
            .await)
        .await;
        assert_eq!(d["team_id"], "t", "{name}: {d}");
        assert_eq!(d["members_with_roles"].as_array().unwrap().len(), 1);
        assert_eq!(chat_with(&gw, key, "gpt-4o").await.status(), 401, "{name}");
        let info = team_info(&gw, "t").await;
        let users: Vec<&str> = info["team_memberships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(users, ["a"], "{name}: b's membership row is gone");
        refused(
            gw.post(
                "/team/member_delete",
                json!({"team_id": "t", "user_id": "b"}),
            )
            .await,
            400,
            "User not found in team",
        )
        .await;
        refused(
            gw.post(
                "/team/member_delete",
                json!({"team_id": "ghost", "user_id": "a"}),
            )
            .await,
            400,
            "Team id=ghost does not exist in db",
        )
        .await;
        refused(
            gw.post("/team/member_delete", json!({"team_id": "t"}))
                .await,
            400,
            "Either user_id or user_email",
        )
        .await;
    }
}

#[tokio::test]
async fn v2_team_list_pages_filters_and_sorts() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        // Teams may only name an organization that exists (there is no /organization API yet).
        insert_organization(&gw, "org-1").await;
        for (id, alias, org) in [
            ("t0", "Alpha", Some("org-1")),
            ("t1", "beta", None),
            ("t2", "Gamma", Some("org-1")),
            ("t3", "alphabet", None),
            ("t4", "Delta", None),
        ] {
            ok(gw
                .post(
                    "/team/new",
                    json!({"team_id": id, "team_alias": alias, "organization_id": org}),
                )
                .await)
            .await;
        }
        let all = ok(gw.get("/v2/team/list").await).await;
        assert_eq!(all["total"], 5, "{name}: {all}");
        assert_eq!(all["page"], 1);
        assert_eq!(all["page_size"], 10);
        assert_eq!(all["total_pages"], 1);
        assert_eq!(all["teams"][0]["members_count"], 0);
        assert_eq!(all["teams"][0]["keys_count"], 0);

        // Pages of two, by team_id.
        let mut seen = Vec::new();
        for page in 1..=3 {
            let p = ok(gw
                .get(&format!(
                    "/v2/team/list?page={page}&page_size=2&sort_by=team_id&sort_order=asc"
                ))
                .await)
            .await;
            assert_eq!(p["total"], 5);
            assert_eq!(p["total_pages"], 3);
            assert_eq!(p["page"], page);
            for t in p["teams"].as_array().unwrap() {
                seen.push(t["team_id"].as_str().unwrap().to_string());
            }
        }
        assert_eq!(seen, ["t0", "t1", "t2", "t3", "t4"], "{name}");
        let desc = ok(gw
            .get("/v2/team/list?sort_by=team_id&sort_order=desc&page_size=1")
            .await)
        .await;
        assert_eq!(desc["teams"][0]["team_id"], "t4", "{name}");
        let past = ok(gw.get("/v2/team/list?page=9&page_size=2").await).await;
        assert_eq!(past["teams"], json!([]));
        assert_eq!(past["total"], 5);

        let ids = |v: &Value| -> Vec<String> {
            let mut ids: Vec<String> = v["teams"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["team_id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        };
        // Filters: alias substring (any case), org, exact id, search by id or alias.
        let v = ok(gw.get("/v2/team/list?team_alias=ALPHA").await).await;
        assert_eq!(ids(&v), ["t0", "t3"], "{name}");
        let v = ok(gw.get("/v2/team/list?organization_id=org-1").await).await;
        assert_eq!(ids(&v), ["t0", "t2"], "{name}");
        let v = ok(gw.get("/v2/team/list?team_id=t1").await).await;
        assert_eq!(ids(&v), ["t1"]);
        let v = ok(gw.get("/v2/team/list?search=t2").await).await;
        assert_eq!(ids(&v), ["t2"], "{name}");
        let v = ok(gw.get("/v2/team/list?search=elt").await).await;
        assert_eq!(ids(&v), ["t4"], "{name}: alias match");
        let v = ok(gw
            .get("/v2/team/list?search=t&search_team_id_match=prefix")
            .await)
        .await;
        assert_eq!(v["total"], 5, "{name}");

        // A user's teams, with member and key counts.
        for team in ["t1", "t3"] {
            join(&gw, team, "alice").await;
        }
        for _ in 0..2 {
            ok(gw.post("/key/generate", json!({"team_id": "t1"})).await).await;
        }
        let v = ok(gw.get("/v2/team/list?user_id=alice&sort_by=team_id").await).await;
        assert_eq!(ids(&v), ["t1", "t3"], "{name}: {v}");
        assert_eq!(v["teams"][0]["members_count"], 1);
        assert_eq!(v["teams"][0]["keys_count"], 2);
        assert_eq!(v["teams"][1]["keys_count"], 0);
        refused(
            gw.get("/v2/team/list?user_id=ghost").await,
            404,
            "User not found",
        )
        .await;
        refused(
            gw.get("/v2/team/list?user_id=alice&team_id=t0").await,
            404,
            "User is not a member of team_id=t0",
        )
        .await;

        // Non-admins list their own teams only, by naming themselves.
        let alice_key = ok(gw.post("/key/generate", json!({"user_id": "alice"})).await).await;
        let alice_key = alice_key["key"].as_str().unwrap();
        let own = ok(as_key(
            &gw,
            alice_key,
            "GET",
            "/v2/team/list?user_id=alice",
            json!({}),
        )
        .await)
        .await;
        assert_eq!(own["total"], 2, "{name}");
        for p in ["/v2/team/list", "/v2/team/list?user_id=bob"] {
            refused(
                as_key(&gw, alice_key, "GET", p, json!({})).await,
                401,
                "Only admin users can query all teams/other teams",
            )
            .await;
        }

        for p in [
            "/v2/team/list?page=0",
            "/v2/team/list?page_size=101",
            "/v2/team/list?status=archived",
            "/v2/team/list?search=x&search_team_id_match=fuzzy",
            "/v2/team/list?page=two",
        ] {
            let r = gw.get(p).await;
            assert_eq!(r.status(), 400, "{p}");
        }
    }
}

/// Everything a team admin, a plain member and an outsider may and may not do.
#[tokio::test]
async fn team_admins_members_and_outsiders() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        let adm = user_key(&gw, "adm", "internal_user").await;
        let mem = user_key(&gw, "mem", "internal_user").await;
        let out = user_key(&gw, "outsider", "internal_user").await;
        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "core", "members_with_roles": [
                    {"role": "admin", "user_id": "adm"}, {"role": "user", "user_id": "mem"}]}),
            )
            .await)
        .await;
        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "other", "members_with_roles": [
                    {"role": "admin", "user_id": "outsider"}]}),
            )
            .await)
        .await;
        let mem_team_key = ok(gw
            .post(
                "/key/generate",
                json!({"team_id": "core", "user_id": "mem"}),
            )
            .await)
        .await["key"]
            .as_str()
            .unwrap()
            .to_string();
        let shared_key = ok(gw.post("/key/generate", json!({"team_id": "core"})).await).await
            ["key"]
            .as_str()
            .unwrap()
            .to_string();

        // --- the team admin ---
        let k = ok(as_key(
            &gw,
            &adm,
            "POST",
            "/key/generate",
            json!({"team_id": "core"}),
        )
        .await)
        .await;
        assert_eq!(k["user_id"], "adm", "{name}: defaults to the caller");
        assert_eq!(k["team_id"], "core");
        let adm_team_key = k["key"].as_str().unwrap().to_string();
        refused(
            as_key(
                &gw,
                &adm,
                "POST",
                "/key/generate",
                json!({"team_id": "core", "user_id": "mem"}),
            )
            .await,
            403,
            "User can only create keys for themselves",
        )
        .await;
        refused(
            as_key(
                &gw,
                &adm,
                "POST",
                "/key/generate",
                json!({"team_id": "other"}),
            )
            .await,
            400,
            "not assigned to team=other",
        )
        .await;
        refused(
            as_key(
                &gw,
                &adm,
                "POST",
                "/key/generate",
                json!({"team_id": "ghost"}),
            )
            .await,
            400,
            "Team not found for team_id=ghost",
        )
        .await;
        // The team's shared key: the admin may change it, budget included.
        let up = ok(as_key(
            &gw,
            &adm,
            "POST",
            "/key/update",
            json!({"key": shared_key, "rpm_limit": 5, "max_budget": 1.5}),
        )
        .await)
        .await;
        assert_eq!(up["rpm_limit"], 5, "{name}");
        assert_eq!(up["max_budget"], 1.5);
        // Another member's key: not without the proxy's `member_key_budgets` grant.
        refused(
            as_key(
                &gw,
                &adm,
                "POST",
                "/key/update",
                json!({"key": mem_team_key, "max_budget": 1}),
            )
            .await,
            403,
            "cannot update budgets on other members' keys",
        )
        .await;
        // Block, unblock, regenerate and delete the team's keys.
        let b = ok(as_key(
            &gw,
            &adm,
            "POST",
            "/key/block",
            json!({"key": mem_team_key}),
        )
        .await)
        .await;
        assert_eq!(b["blocked"], true);
        assert_eq!(chat_with(&gw, &mem_team_key, "gpt-4o").await.status(), 401);
        ok(as_key(
            &gw,
            &adm,
            "POST",
            "/key/unblock",
            json!({"key": mem_team_key}),
        )
        .await)
        .await;
        assert_eq!(chat_with(&gw, &mem_team_key, "gpt-4o").await.status(), 200);
        let re = ok(as_key(
            &gw,
            &adm,
            "POST",
            "/key/regenerate",
            json!({"key": shared_key}),
        )
        .await)
        .await;
        let shared_key = re["key"].as_str().unwrap().to_string();
        assert_eq!(chat_with(&gw, &shared_key, "gpt-4o").await.status(), 200);
        // The roster and member budgets of the team.
        ok(as_key(
            &gw,
            &adm,
            "POST",
            "/team/member_add",
            json!({"team_id": "core", "member": {"role": "user", "user_id": "newbie"},
                   "max_budget_in_team": 1}),
        )
        .await)
        .await;
        ok(as_key(
            &gw,
            &adm,
            "POST",
            "/team/member_update",
            json!({"team_id": "core", "user_id": "newbie", "rpm_limit": 2}),
        )
        .await)
        .await;
        ok(as_key(
            &gw,
            &adm,
            "POST",
            "/team/member_delete",
            json!({"team_id": "core", "user_id": "newbie"}),
        )
        .await)
        .await;
        ok(as_key(&gw, &adm, "GET", "/team/info?team_id=core", json!({})).await).await;
        // Team settings: not unless the proxy lists them in team_admin_editable_team_fields.
        refused(
            as_key(
                &gw,
                &adm,
                "POST",
                "/team/update",
                json!({"team_id": "core", "rpm_limit": 9}),
            )
            .await,
            403,
            "Team admins on this proxy cannot edit team settings",
        )
        .await;
        // Not another team, and not proxy-admin routes.
        for (path, body) in [
            (
                "/team/member_add",
                json!({"team_id": "other", "member": {"role": "user", "user_id": "adm"}}),
            ),
            (
                "/team/member_update",
                json!({"team_id": "other", "user_id": "outsider", "role": "user"}),
            ),
            (
                "/team/member_delete",
                json!({"team_id": "other", "user_id": "outsider"}),
            ),
        ] {
            refused(
                as_key(&gw, &adm, "POST", path, body).await,
                403,
                "Call not allowed. User not proxy admin OR team admin",
            )
            .await;
        }
        refused(
            as_key(
                &gw,
                &adm,
                "POST",
                "/team/update",
                json!({"team_id": "other", "rpm_limit": 1}),
            )
            .await,
            403,
            "You do not have access to this team",
        )
        .await;
        refused(
            as_key(&gw, &adm, "GET", "/team/info?team_id=other", json!({})).await,
            403,
            "User=adm not authorized to access this team=other",
        )
        .await;
        for (path, body) in [
            ("/team/delete", json!({"team_ids": ["core"]})),
            ("/team/block", json!({"team_id": "core"})),
            ("/team/new", json!({})),
        ] {
            refused(
                as_key(&gw, &adm, "POST", path, body).await,
                401,
                "Only proxy admin can be used to generate, delete, update info for new keys/users/teams",
            )
            .await;
        }

        // --- a plain member ---
        let v = refused(
            as_key(
                &gw,
                &mem,
                "POST",
                "/key/generate",
                json!({"team_id": "core"}),
            )
            .await,
            401,
            "Team member does not have permissions for endpoint: /key/generate",
        )
        .await;
        assert_eq!(v["error"]["type"], "team_member_permission_error");
        ok(as_key(&gw, &mem, "GET", "/team/info?team_id=core", json!({})).await).await;
        ok(as_key(
            &gw,
            &mem,
            "GET",
            &format!("/key/info?key={adm_team_key}"),
            json!({}),
        )
        .await)
        .await;
        refused(
            as_key(
                &gw,
                &mem,
                "POST",
                "/team/member_add",
                json!({"team_id": "core", "member": {"role": "admin", "user_id": "mem2"}}),
            )
            .await,
            403,
            "Call not allowed",
        )
        .await;
        refused(
            as_key(
                &gw,
                &mem,
                "POST",
                "/key/update",
                json!({"key": adm_team_key, "key_alias": "mine"}),
            )
            .await,
            403,
            "User can only create keys for themselves",
        )
        .await;
        // Even their own key of the team: plain members lack /key/update by default.
        refused(
            as_key(
                &gw,
                &mem,
                "POST",
                "/key/update",
                json!({"key": mem_team_key, "key_alias": "mine"}),
            )
            .await,
            401,
            "Team member does not have permissions for endpoint: /key/update",
        )
        .await;
        refused(
            as_key(
                &gw,
                &mem,
                "POST",
                "/key/block",
                json!({"key": adm_team_key}),
            )
            .await,
            403,
            "Only proxy admins, team admins, or org admins can call /key/block",
        )
        .await;
        refused(
            as_key(
                &gw,
                &mem,
                "POST",
                "/key/delete",
                json!({"keys": [adm_team_key]}),
            )
            .await,
            403,
            "You are not authorized to delete this key",
        )
        .await;
        // Their own key of the team they may delete (its owner).
        ok(as_key(
            &gw,
            &mem,
            "POST",
            "/key/delete",
            json!({"keys": [mem_team_key]}),
        )
        .await)
        .await;

        // --- an outsider ---
        refused(
            as_key(&gw, &out, "GET", "/team/info?team_id=core", json!({})).await,
            403,
            "User=outsider not authorized to access this team=core",
        )
        .await;
        refused(
            as_key(
                &gw,
                &out,
                "GET",
                &format!("/key/info?key={adm_team_key}"),
                json!({}),
            )
            .await,
            403,
            "You are not allowed to access this key's info",
        )
        .await;
        refused(
            as_key(
                &gw,
                &out,
                "POST",
                "/key/generate",
                json!({"team_id": "core"}),
            )
            .await,
            400,
            "User=outsider not assigned to team=core",
        )
        .await;
        let v = refused(
            as_key(
                &gw,
                &out,
                "POST",
                "/key/regenerate",
                json!({"key": adm_team_key}),
            )
            .await,
            401,
            "User outsider does not belong to team core",
        )
        .await;
        assert_eq!(v["error"]["type"], "team_member_permission_error");
        refused(
            as_key(
                &gw,
                &out,
                "POST",
                "/key/delete",
                json!({"keys": [adm_team_key]}),
            )
            .await,
            403,
            "You are not authorized to delete this key",
        )
        .await;
        refused(
            as_key(
                &gw,
                &out,
                "POST",
                "/key/unblock",
                json!({"key": adm_team_key}),
            )
            .await,
            403,
            "Only proxy admins, team admins, or org admins can call /key/unblock",
        )
        .await;
        // Nothing above changed the admin's key.
        assert_eq!(chat_with(&gw, &adm_team_key, "gpt-4o").await.status(), 200);
    }
}

/// An internal user on their own keys, an admin viewer, a proxy-admin user, a key without a
/// user; and a team admin given `team_admin_editable_team_fields`.
#[tokio::test]
async fn own_keys_viewers_and_granted_team_admins() {
    for (name, db) in backends().await {
        let cfg = keys_config(db.as_deref())
            + "  team_admin_editable_team_fields: [rpm_limit, member_key_budgets]\n";
        let gw = gateway(&cfg, None).await;
        let solo = user_key(&gw, "solo", "internal_user").await;
        let other = user_key(&gw, "someone-else", "internal_user").await;

        // Own keys: create, update (not the budget), regenerate, delete, list, info.
        let k = ok(as_key(
            &gw,
            &solo,
            "POST",
            "/key/generate",
            json!({"key_alias": "s2"}),
        )
        .await)
        .await;
        assert_eq!(k["user_id"], "solo", "{name}");
        let k2 = k["key"].as_str().unwrap().to_string();
        refused(
            as_key(
                &gw,
                &solo,
                "POST",
                "/key/generate",
                json!({"user_id": "someone-else"}),
            )
            .await,
            403,
            "User can only create keys for themselves. Got user_id=someone-else, Your ID=solo",
        )
        .await;
        let up = ok(as_key(
            &gw,
            &solo,
            "POST",
            "/key/update",
            json!({"key": k2, "key_alias": "mine", "rpm_limit": 7}),
        )
        .await)
        .await;
        assert_eq!(up["key_alias"], "mine");
        refused(
            as_key(
                &gw,
                &solo,
                "POST",
                "/key/update",
                json!({"key": k2, "max_budget": 100}),
            )
            .await,
            403,
            "Only proxy admins, team admins, or org admins can call /key/update (max_budget/spend)",
        )
        .await;
        refused(
            as_key(
                &gw,
                &solo,
                "POST",
                "/key/update",
                json!({"key": other, "rpm_limit": 1}),
            )
            .await,
            403,
            "User can only create keys for themselves. Got user_id=someone-else",
        )
        .await;
        refused(
            as_key(&gw, &solo, "POST", "/key/block", json!({"key": k2})).await,
            403,
            "Only proxy admins, team admins, or org admins can call /key/block",
        )
        .await;
        let listed = ok(as_key(&gw, &solo, "GET", "/key/list", json!({})).await).await;
        assert_eq!(listed["total_count"], 2, "{name}: {listed}");
        refused(
            as_key(
                &gw,
                &solo,
                "GET",
                "/key/list?user_id=someone-else",
                json!({}),
            )
            .await,
            403,
            "You are not authorized to check another user's keys",
        )
        .await;
        ok(as_key(&gw, &solo, "GET", &format!("/key/info?key={k2}"), json!({})).await).await;
        refused(
            as_key(
                &gw,
                &solo,
                "GET",
                &format!("/key/info?key={other}"),
                json!({}),
            )
            .await,
            403,
            "You are not allowed to access this key's info",
        )
        .await;
        let me = ok(as_key(&gw, &solo, "GET", "/user/info", json!({})).await).await;
        assert_eq!(me["user_id"], "solo");
        let re = ok(as_key(&gw, &solo, "POST", "/key/regenerate", json!({"key": k2})).await).await;
        let k3 = re["key"].as_str().unwrap().to_string();
        refused(
            as_key(&gw, &solo, "POST", "/key/regenerate", json!({"key": other})).await,
            403,
            "You are not authorized to regenerate this key",
        )
        .await;
        refused(
            as_key(&gw, &solo, "POST", "/key/delete", json!({"keys": [other]})).await,
            403,
            "You are not authorized to delete this key",
        )
        .await;
        let d = ok(as_key(&gw, &solo, "POST", "/key/delete", json!({"keys": [k3]})).await).await;
        assert_eq!(d["deleted_keys"], json!([k3]));
        let v = refused(
            as_key(&gw, &solo, "POST", "/team/new", json!({})).await,
            401,
            "Route=/team/new. Your role=internal_user. Your user_id=***",
        )
        .await;
        assert_eq!(v["error"]["type"], "auth_error");

        // An internal_user_viewer may not manage keys at all.
        let viewer_user = user_key(&gw, "iv-viewer-user", "internal_user_viewer").await;
        refused(
            as_key(&gw, &viewer_user, "POST", "/key/generate", json!({})).await,
            401,
            "Your role=internal_user_viewer. Your user_id=iv-vie******er",
        )
        .await;

        // A key without a user: LLM routes and itself only.
        let plain = ok(gw.post("/key/generate", json!({})).await).await["key"]
            .as_str()
            .unwrap()
            .to_string();
        refused(
            as_key(&gw, &plain, "POST", "/key/generate", json!({})).await,
            401,
            "Your role=unknown. Your user_id=*******",
        )
        .await;
        ok(as_key(&gw, &plain, "GET", "/key/info", json!({})).await).await;

        // The proxy admin viewer reads but does not write.
        let viewer = user_key(&gw, "viewer", "proxy_admin_viewer").await;
        ok(gw.post("/team/new", json!({"team_id": "vt"})).await).await;
        for p in [
            "/team/info?team_id=vt",
            "/v2/team/list",
            "/team/list",
            "/user/list",
            "/user/info?user_id=solo",
            "/key/list",
        ] {
            ok(as_key(&gw, &viewer, "GET", p, json!({})).await).await;
        }
        for (path, body) in [
            ("/key/generate", json!({})),
            (
                "/team/member_add",
                json!({"team_id": "vt", "member": {"role": "user", "user_id": "x"}}),
            ),
        ] {
            refused(
                as_key(&gw, &viewer, "POST", path, body).await,
                403,
                "user not allowed to access this route, role= proxy_admin_viewer",
            )
            .await;
        }

        // A proxy_admin user's keys are admin keys.
        let padm = user_key(&gw, "padm", "proxy_admin").await;
        ok(as_key(
            &gw,
            &padm,
            "POST",
            "/team/new",
            json!({"team_id": "by-padm"}),
        )
        .await)
        .await;

        // A team admin with grants: rpm_limit yes, max_budget no; member key budgets yes.
        let tadm = user_key(&gw, "tadm", "internal_user").await;
        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "g", "rpm_limit": 50, "members_with_roles": [
                    {"role": "admin", "user_id": "tadm"}, {"role": "user", "user_id": "solo"}]}),
            )
            .await)
        .await;
        let up = ok(as_key(
            &gw,
            &tadm,
            "POST",
            "/team/update",
            json!({"team_id": "g", "rpm_limit": 9}),
        )
        .await)
        .await;
        assert_eq!(up["data"]["rpm_limit"], 9, "{name}");
        // Resending unchanged values is not a change.
        ok(as_key(
            &gw,
            &tadm,
            "POST",
            "/team/update",
            json!({"team_id": "g", "rpm_limit": 10, "max_budget": null}),
        )
        .await)
        .await;
        refused(
            as_key(
                &gw,
                &tadm,
                "POST",
                "/team/update",
                json!({"team_id": "g", "max_budget": 5}),
            )
            .await,
            403,
            "do not have permission to update 'max_budget'",
        )
        .await;
        let member_key = ok(gw
            .post("/key/generate", json!({"team_id": "g", "user_id": "solo"}))
            .await)
        .await["key"]
            .as_str()
            .unwrap()
            .to_string();
        let up = ok(as_key(
            &gw,
            &tadm,
            "POST",
            "/key/update",
            json!({"key": member_key, "max_budget": 3}),
        )
        .await)
        .await;
        assert_eq!(up["max_budget"], 3.0);
        refused(
            as_key(
                &gw,
                &tadm,
                "POST",
                "/key/update",
                json!({"key": member_key, "rpm_limit": 3}),
            )
            .await,
            403,
            "may only update budget fields on other members' keys, not 'rpm_limit'",
        )
        .await;
    }
}

/// `max_budget_in_team`: the member's spend through their keys of the team counts against it
/// (batched into `LiteLLM_TeamMembership.spend`); other members and the member's other keys
/// are not affected; raising it applies at once.
#[tokio::test]
async fn member_budget_blocks_the_member_in_that_team() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw.post("/team/new", json!({"team_id": "t-mb"})).await).await;
        // Each mocked gpt-4o call costs 0.000225: two fit in 0.0004, the third is refused.
        ok(gw
            .post(
                "/team/member_add",
                json!({"team_id": "t-mb", "member": [{"role": "user", "user_id": "alice"}],
                       "max_budget_in_team": 0.0004}),
            )
            .await)
        .await;
        join(&gw, "t-mb", "bob").await;
        let key_of = |body: Value| {
            let gw = &gw;
            async move {
                ok(gw.post("/key/generate", body).await).await["key"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let a1 = key_of(json!({"team_id": "t-mb", "user_id": "alice"})).await;
        let a2 = key_of(json!({"team_id": "t-mb", "user_id": "alice"})).await;
        let a_personal = key_of(json!({"user_id": "alice"})).await;
        let b1 = key_of(json!({"team_id": "t-mb", "user_id": "bob"})).await;

        let mut statuses = Vec::new();
        for k in [&a1, &a2, &a1] {
            statuses.push(chat_with(&gw, k, "gpt-4o").await.status().as_u16());
        }
        assert_eq!(
            statuses,
            [200, 200, 400],
            "{name}: alice's budget in the team"
        );
        let r = chat_with(&gw, &a2, "gpt-4o").await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "budget_exceeded", "{name}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with("Budget has been exceeded! User=alice in Team=t-mb Current cost: ")
                && msg.ends_with("Max budget: 0.0004"),
            "{name}: {msg}"
        );
        assert_eq!(chat_with(&gw, &b1, "gpt-4o").await.status(), 200, "{name}");
        assert_eq!(
            chat_with(&gw, &a_personal, "gpt-4o").await.status(),
            200,
            "{name}: outside the team"
        );

        // The spend writer records the members' spend on their membership rows.
        gw.state.spend.flush().await;
        let info = team_info(&gw, "t-mb").await;
        let a = membership(&info, "alice");
        let b = membership(&info, "bob");
        assert!(
            (a["spend"].as_f64().unwrap() - 0.00045).abs() < 1e-9,
            "{name}: {a}"
        );
        assert_eq!(a["total_spend"], a["spend"]);
        assert!(
            (b["spend"].as_f64().unwrap() - 0.000225).abs() < 1e-9,
            "{name}: {b}"
        );

        // A fresh replica on the same database reads the member's spend from the table.
        if let Some(db) = &db {
            let gw2 = gateway(&keys_config(Some(db)), None).await;
            assert_eq!(
                chat_with(&gw2, &a1, "gpt-4o").await.status(),
                400,
                "{name}: spend seeded from LiteLLM_TeamMembership"
            );
        }

        ok(gw
            .post(
                "/team/member_update",
                json!({"team_id": "t-mb", "user_id": "alice", "max_budget_in_team": 1.0}),
            )
            .await)
        .await;
        assert_eq!(
            chat_with(&gw, &a1, "gpt-4o").await.status(),
            200,
            "{name}: the raised budget applies at once"
        );
    }
}

/// A member's `rpm_limit` inside a team is shared by all their keys of the team (LiteLLM's
/// `team_member` limiter), and touches nobody else.
#[tokio::test]
async fn member_rpm_limit_covers_their_team_keys() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "t-rl", "members_with_roles": [
                    {"role": "user", "user_id": "alice"}, {"role": "user", "user_id": "bob"}]}),
            )
            .await)
        .await;
        ok(gw
            .post(
                "/team/member_update",
                json!({"team_id": "t-rl", "user_id": "alice", "rpm_limit": 2}),
            )
            .await)
        .await;
        let mut keys = Vec::new();
        for user in ["alice", "alice", "bob"] {
            let k = ok(gw
                .post("/key/generate", json!({"team_id": "t-rl", "user_id": user}))
                .await)
            .await;
            keys.push(k["key"].as_str().unwrap().to_string());
        }
        let r = chat_with(&gw, &keys[0], "gpt-4o").await;
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.headers()["x-ratelimit-team_member-limit-requests"], "2");
        assert_eq!(chat_with(&gw, &keys[1], "gpt-4o").await.status(), 200);
        refused(
            chat_with(&gw, &keys[0], "gpt-4o").await,
            429,
            "Rate limit exceeded for team_member: t-rl:alice",
        )
        .await;
        assert_eq!(
            chat_with(&gw, &keys[2], "gpt-4o").await.status(),
            200,
            "{name}: bob is not limited"
        );
    }
}

/// A member budget with a `budget_duration` starts over when it is due: the reset job zeroes
/// the membership's spend and moves the budget's `budget_reset_at`.
#[tokio::test]
async fn member_budgets_reset_after_their_duration() {
    for (name, db) in backends().await {
        let cfg = keys_config(db.as_deref()) + "  proxy_budget_rescheduler_min_time: 0.5\n";
        let gw = gateway(&cfg, None).await;
        ok(gw.post("/team/new", json!({"team_id": "t-rs"})).await).await;
        ok(gw
            .post(
                "/team/member_add",
                json!({"team_id": "t-rs", "member": {"role": "user", "user_id": "alice"},
                       "max_budget_in_team": 0.0004, "budget_duration": "2s"}),
            )
            .await)
        .await;
        let before = team_info(&gw, "t-rs").await;
        let first_reset = membership(&before, "alice")["litellm_budget_table"]["budget_reset_at"]
            .as_str()
            .unwrap()
            .to_string();
        let k = ok(gw
            .post(
                "/key/generate",
                json!({"team_id": "t-rs", "user_id": "alice"}),
            )
            .await)
        .await;
        let key = k["key"].as_str().unwrap().to_string();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(chat_with(&gw, &key, "gpt-4o").await.status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 400], "{name}: spent");
        gw.state.spend.flush().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
        while chat_with(&gw, &key, "gpt-4o").await.status() != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: member budget never reset"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let after = team_info(&gw, "t-rs").await;
        let b = &membership(&after, "alice")["litellm_budget_table"];
        assert_ne!(b["budget_reset_at"], first_reset.as_str(), "{name}: {b}");
    }
}

/// An organization row as LiteLLM writes it (alias, budget and audit columns are required).
async fn insert_organization(gw: &Gateway, id: &str) {
    const SQL: &str = r#"INSERT INTO "LiteLLM_OrganizationTable" ("organization_id", "organization_alias", "budget_id", "created_by", "updated_by") VALUES ($1, $1, 'b', 'admin', 'admin')"#;
    match &gw.state.store {
        litellm_gateway::store::Store::Sqlite(p) => {
            sqlx::query(SQL).bind(id).execute(p).await.unwrap();
        }
        litellm_gateway::store::Store::Postgres(p) => {
            sqlx::query(SQL).bind(id).execute(p).await.unwrap();
        }
    }
}

/// `GET /key/aliases`: alphabetical pages, case-insensitive search, a team filter; admins see
/// every alias, an internal user those of their own keys and their teams' keys, a key without a
/// user is refused; the admin UI's session keys never show.
#[tokio::test]
async fn key_aliases_page_search_and_scope() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        for team in ["t1", "t2", "litellm-dashboard"] {
            ok(gw.post("/team/new", json!({"team_id": team})).await).await;
        }
        let alice = user_key(&gw, "alice", "internal_user").await;
        user_key(&gw, "bob", "internal_user").await;
        join(&gw, "t1", "alice").await;
        for body in [
            json!({"key_alias": "zeta-admin"}),
            json!({"key_alias": "Alpha-team", "team_id": "t1"}),
            json!({"key_alias": "delta-t2", "team_id": "t2"}),
            json!({"key_alias": "beta-alice", "user_id": "alice"}),
            json!({"key_alias": "gamma-bob", "user_id": "bob"}),
            json!({"key_alias": "ui-session", "team_id": "litellm-dashboard"}),
            json!({}),
        ] {
            ok(gw.post("/key/generate", body).await).await;
        }
        let all = ok(gw.get("/key/aliases").await).await;
        assert_eq!(
            all,
            json!({"aliases": ["Alpha-team", "beta-alice", "delta-t2", "gamma-bob", "zeta-admin"],
                   "total_count": 5, "current_page": 1, "total_pages": 1, "size": 50}),
            "{name}"
        );
        let page = ok(gw.get("/key/aliases?size=2&page=3").await).await;
        assert_eq!(page["aliases"], json!(["zeta-admin"]), "{name}: {page}");
        assert_eq!(page["total_pages"], 3);
        let found = ok(gw.get("/key/aliases?search=ALPHA").await).await;
        assert_eq!(found["aliases"], json!(["Alpha-team"]), "{name}: {found}");
        let team = ok(gw.get("/key/aliases?team_id=t2").await).await;
        assert_eq!(team["aliases"], json!(["delta-t2"]), "{name}: {team}");

        let own = ok(as_key(&gw, &alice, "GET", "/key/aliases", json!({})).await).await;
        assert_eq!(
            own["aliases"],
            json!(["Alpha-team", "beta-alice"]),
            "{name}: {own}"
        );
        assert_eq!(own["total_count"], 2);

        let plain = ok(gw.post("/key/generate", json!({})).await).await;
        let plain = plain["key"].as_str().unwrap();
        refused(
            as_key(&gw, plain, "GET", "/key/aliases", json!({})).await,
            401,
            "Route=/key/aliases",
        )
        .await;
        refused(gw.get("/key/aliases?size=101").await, 400, "size").await;
    }
}

/// `GET /team/available`: the configured self-join teams that exist and that the caller's user
/// has not joined; `[]` without the setting; 404 for a key with no user.
#[tokio::test]
async fn available_teams_leave_out_joined_and_unknown_teams() {
    for (name, db) in backends().await {
        let config = format!(
            "{}litellm_settings:\n  default_internal_user_params:\n    available_teams: [t1, ghost, t2]\n",
            keys_config(db.as_deref())
        );
        let gw = gateway(&config, None).await;
        for (team, alias) in [("t1", "one"), ("t2", "two"), ("t3", "three")] {
            ok(gw
                .post("/team/new", json!({"team_id": team, "team_alias": alias}))
                .await)
            .await;
        }
        let alice = user_key(&gw, "alice", "internal_user").await;
        let open = ok(as_key(&gw, &alice, "GET", "/team/available", json!({})).await).await;
        let ids: Vec<&str> = open
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["team_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["t1", "t2"], "{name}: {open}");
        assert_eq!(open[0]["team_alias"], "one");
        join(&gw, "t1", "alice").await;
        let open = ok(as_key(&gw, &alice, "GET", "/team/available", json!({})).await).await;
        assert_eq!(open.as_array().unwrap().len(), 1, "{name}: {open}");
        assert_eq!(open[0]["team_id"], "t2");

        let plain = ok(gw.post("/key/generate", json!({})).await).await;
        refused(
            as_key(
                &gw,
                plain["key"].as_str().unwrap(),
                "GET",
                "/team/available",
                json!({}),
            )
            .await,
            404,
            "User not found",
        )
        .await;

        let bare = gateway(&keys_config(db.as_deref()), None).await;
        let alice = user_key(&bare, "alice2", "internal_user").await;
        let none = ok(as_key(&bare, &alice, "GET", "/team/available", json!({})).await).await;
        assert_eq!(none, json!([]), "{name}");
    }
}

/// `/user/new` applies `litellm_settings.default_internal_user_params` to what the body leaves
/// unset (and to an empty `models`), except for proxy admins; `max_internal_user_budget` and
/// `internal_user_budget_duration` apply to users created as `internal_user`, after the
/// defaults; `teams` objects may carry `max_budget_in_team`.
#[tokio::test]
async fn new_users_get_the_configured_defaults() {
    for (name, db) in backends().await {
        let config = format!(
            "{}litellm_settings:\n  default_internal_user_params:\n    user_role: internal_user_viewer\n    max_budget: 25\n    models: [gpt-4o]\n    teams: [t1]\n    available_teams: [t2]\n  max_internal_user_budget: 7\n  internal_user_budget_duration: 30d\n",
            keys_config(db.as_deref())
        );
        let gw = gateway(&config, None).await;
        for team in ["t1", "t2"] {
            ok(gw.post("/team/new", json!({"team_id": team})).await).await;
        }
        let u1 = ok(gw.post("/user/new", json!({"user_id": "u1"})).await).await;
        assert_eq!(u1["user_role"], "internal_user_viewer", "{name}: {u1}");
        assert_eq!(u1["max_budget"], 25.0);
        assert_eq!(u1["models"], json!(["gpt-4o"]));
        assert_eq!(u1["teams"], json!(["t1"]));
        assert_eq!(u1["budget_duration"], Value::Null);

        let u2 = ok(gw
            .post(
                "/user/new",
                json!({"user_id": "u2", "user_role": "internal_user", "max_budget": 3, "models": []}),
            )
            .await)
        .await;
        assert_eq!(u2["user_role"], "internal_user", "{name}: {u2}");
        assert_eq!(u2["max_budget"], 3.0);
        assert_eq!(u2["models"], json!(["gpt-4o"]));
        assert_eq!(u2["budget_duration"], "30d");

        let u3 = ok(gw
            .post(
                "/user/new",
                json!({"user_id": "u3", "user_role": "proxy_admin"}),
            )
            .await)
        .await;
        assert_eq!(u3["max_budget"], Value::Null, "{name}: {u3}");
        assert_eq!(u3["models"], json!([]));
        assert_eq!(u3["teams"], json!([]));

        let u4 = ok(gw
            .post(
                "/user/new",
                json!({"user_id": "u4", "teams": [{"team_id": "t2", "max_budget_in_team": 4}]}),
            )
            .await)
        .await;
        assert_eq!(u4["teams"], json!(["t2"]), "{name}: {u4}");
        let t2 = ok(gw.get("/team/info?team_id=t2").await).await;
        let m = t2["team_memberships"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == "u4")
            .unwrap_or_else(|| panic!("{name}: {t2}"));
        assert_eq!(m["litellm_budget_table"]["max_budget"], 4.0, "{name}: {m}");
    }
}

/// `POST /key/bulk_update` (proxy admins): each item applied as `/key/update` applies it (only
/// LiteLLM's item fields: `models` here is ignored), independently; failures name their reason
/// and carry the key as it stands (without its hash) when it exists.
#[tokio::test]
async fn bulk_key_updates_apply_each_item_on_its_own() {
    for (name, db) in backends().await {
        let gw = gateway(&keys_config(db.as_deref()), None).await;
        ok(gw.post("/team/new", json!({"team_id": "t1"})).await).await;
        let k1 = ok(gw
            .post("/key/generate", json!({"models": ["gpt-4o"]}))
            .await)
        .await;
        let k2 = ok(gw.post("/key/generate", json!({"max_budget": 2})).await).await;
        let (k1, k2) = (k1["key"].as_str().unwrap(), k2["key"].as_str().unwrap());
        let missing = "sk-missing-key-000000";
        let r = ok(gw
            .post(
                "/key/bulk_update",
                json!({"keys": [
                    {"key": k1, "max_budget": 5, "tags": ["prod"], "team_id": "t1", "models": ["other"]},
                    {"key": missing, "max_budget": 1},
                    {"key": k2, "team_id": "ghost"},
                ]}),
            )
            .await)
        .await;
        assert_eq!(r["total_requested"], 3, "{name}: {r}");
        let done = r["successful_updates"].as_array().unwrap();
        assert_eq!(done.len(), 1, "{name}: {r}");
        assert_eq!(done[0]["key"], k1);
        let info = &done[0]["key_info"];
        assert_eq!(info["max_budget"], 5.0, "{name}: {info}");
        assert_eq!(info["team_id"], "t1");
        assert_eq!(info["metadata"]["tags"], json!(["prod"]));
        assert_eq!(
            info["models"],
            json!(["gpt-4o"]),
            "models is not a bulk field"
        );
        let failed = r["failed_updates"].as_array().unwrap();
        assert_eq!(failed.len(), 2, "{name}: {r}");
        assert_eq!(failed[0]["key"], missing);
        assert_eq!(failed[0]["key_info"], Value::Null);
        assert!(failed[0]["failed_reason"]
            .as_str()
            .unwrap()
            .contains("not found"));
        assert_eq!(failed[1]["key"], k2);
        assert!(
            failed[1]["failed_reason"]
                .as_str()
                .unwrap()
                .contains("ghost"),
            "{name}: {r}"
        );
        assert_eq!(failed[1]["key_info"]["max_budget"], 2.0);
        assert_eq!(failed[1]["key_info"]["team_id"], Value::Null);
        assert!(failed[1]["key_info"].get("token").is_none());
        // The failed item changed nothing; the applied one is stored.
        let k2_info = ok(gw.get(&format!("/key/info?key={k2}")).await).await;
        assert_eq!(k2_info["info"]["team_id"], Value::Null, "{name}: {k2_info}");
        let k1_info = ok(gw.get(&format!("/key/info?key={k1}")).await).await;
        assert_eq!(k1_info["info"]["max_budget"], 5.0, "{name}: {k1_info}");

        refused(
            gw.post("/key/bulk_update", json!({"keys": []})).await,
            400,
            "No keys provided for update",
        )
        .await;
        let many: Vec<Value> = (0..501).map(|_| json!({"key": k1})).collect();
        refused(
            gw.post("/key/bulk_update", json!({"keys": many})).await,
            400,
            "Maximum 500 keys can be updated at once. Found 501 keys.",
        )
        .await;
        let v = refused(
            gw.post("/key/bulk_update", json!({"keys": [{"max_budget": 1}]}))
                .await,
            400,
            "key",
        )
        .await;
        assert_eq!(v["error"]["param"], "key");
        let v = refused(
            gw.post("/key/bulk_update", json!({"keys": "all"})).await,
            400,
            "keys",
        )
        .await;
        assert_eq!(v["error"]["param"], "keys");
        let alice = user_key(&gw, "alice", "internal_user").await;
        refused(
            as_key(
                &gw,
                &alice,
                "POST",
                "/key/bulk_update",
                json!({"keys": [{"key": k1, "max_budget": 0}]}),
            )
            .await,
            403,
            "Only proxy admins can perform bulk key updates",
        )
        .await;
    }
}

/// `POST /key/health` checks the calling key: healthy unless it names logging callbacks of its
/// own, which this gateway does not send logs to (reported as unhealthy, naming them).
#[tokio::test]
async fn key_health_reports_key_logging_callbacks() {
    let gw = gateway(&keys_config(None), None).await;
    let healthy = json!({"key": "healthy", "logging_callbacks": null});
    assert_eq!(ok(gw.post("/key/health", json!({})).await).await, healthy);
    let plain = ok(gw.post("/key/generate", json!({})).await).await;
    let plain = plain["key"].as_str().unwrap();
    let r = ok(as_key(&gw, plain, "POST", "/key/health", json!({})).await).await;
    assert_eq!(r, healthy);
    let logged = ok(gw
        .post(
            "/key/generate",
            json!({"metadata": {"logging": [{"callback_name": "langfuse", "callback_type": "success",
                   "callback_vars": {"langfuse_host": "https://example.invalid"}}]}}),
        )
        .await)
    .await;
    let r = ok(as_key(
        &gw,
        logged["key"].as_str().unwrap(),
        "POST",
        "/key/health",
        json!({}),
    )
    .await)
    .await;
    assert_eq!(r["key"], "unhealthy", "{r}");
    assert_eq!(r["logging_callbacks"]["callbacks"], json!(["langfuse"]));
    assert_eq!(r["logging_callbacks"]["status"], "unhealthy");
    assert!(r["logging_callbacks"]["details"]
        .as_str()
        .unwrap()
        .contains("not supported"));
}
