//! The daily spend roll-ups end to end, on SQLite and on Postgres (when `TEST_DATABASE_URL` is
//! set): calls by keys of two users in two teams, with tags and two models, one failed call,
//! and rows seeded on a past day through the spend writer; then `/user`, `/team`, `/tag`,
//! `/organization` and `/customer/daily/activity`: totals, breakdowns, date filters, pages and
//! who may see what.

use crate::helpers::*;
use crate::keys::backends;
use chrono::{NaiveDate, Utc};
use litellm_gateway::middleware::auth::hash_key;
use litellm_gateway::store::{SpendBatch, SpendLogRow};
use serde_json::{json, Value};

fn config(db: Option<&str>) -> String {
    let mut s = format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o, mock_response: 'hi'}}\n  - model_name: other\n    litellm_params: {{model: openai/gpt-4o-mini, mock_response: 'other'}}\n  - model_name: dead\n    litellm_params: {{model: openai/x, api_base: 'http://127.0.0.1:1/v1', api_key: k}}\nlitellm_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 1\n  disable_spend_logs: true\n"
    );
    if let Some(db) = db {
        s.push_str(&format!("  database_url: {db}\n"));
    }
    s
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

async fn call(gw: &Gateway, key: &str, model: &str, tags: &[&str], user: Option<&str>) -> f64 {
    let mut b = chat_body(model);
    b["tags"] = json!(tags);
    if let Some(u) = user {
        b["user"] = json!(u);
    }
    let r = gw.post_as(key, "/v1/chat/completions", b).await;
    assert_eq!(r.status(), 200, "{model}");
    header_f64(&r, "x-litellm-response-cost")
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

const PAST_SPEND: f64 = 2.5;

/// `path` over today only, as the master key.
fn today_q(path: &str, today: &str, extra: &str) -> String {
    format!("{path}?start_date={today}&end_date={today}{extra}")
}

#[tokio::test]
async fn daily_activity_on_every_backend() {
    for (name, db) in backends().await {
        eprintln!("backend: {name}");
        run(db.as_deref()).await;
    }
}

async fn run(db: Option<&str>) {
    let gw = gateway(&config(db), None).await;
    ok(gw
        .post(
            "/team/new",
            json!({"team_id": "team-alpha", "team_alias": "alpha",
                   "members_with_roles": [{"role": "admin", "user_id": "u3"}]}),
        )
        .await)
    .await;
    ok(gw
        .post(
            "/team/new",
            json!({"team_id": "team-beta", "team_alias": "beta"}),
        )
        .await)
    .await;
    // u3 was created (on team alpha's roster) by `/team/new`.
    for (u, t) in [("u1", "team-alpha"), ("u2", "team-beta")] {
        ok(gw
            .post(
                "/user/new",
                json!({"user_id": u, "teams": [t], "user_role": "internal_user"}),
            )
            .await)
        .await;
    }
    let ka = gw
        .new_key(json!({"user_id": "u1", "team_id": "team-alpha"}))
        .await;
    let kb = gw
        .new_key(json!({"user_id": "u2", "team_id": "team-beta"}))
        .await;
    let k3 = gw.new_key(json!({"user_id": "u3"})).await;
    let (ha, hb) = (hash_key(&ka), hash_key(&kb));
    let c = [
        call(&gw, &ka, "gpt-4o", &["t1", "t2"], Some("cust-1")).await,
        call(&gw, &ka, "gpt-4o", &["t1"], Some("cust-1")).await,
        call(&gw, &ka, "other", &["t2"], None).await,
        call(&gw, &kb, "gpt-4o", &["t2"], Some("cust-2")).await,
    ];
    let failed = gw
        .post_as(&kb, "/v1/chat/completions", chat_body("dead"))
        .await;
    assert!(failed.status().is_server_error(), "{}", failed.status());
    // A past day's calls of key A, through the spend writer's own aggregation.
    let past = NaiveDate::from_ymd_opt(2020, 1, 5).unwrap();
    let mut batch = SpendBatch::default();
    for i in 0..2 {
        let t = past.and_hms_opt(12, 0, 0).unwrap();
        let row = SpendLogRow {
            request_id: format!("past-{i}"),
            call_type: "acompletion".into(),
            api_key: ha.clone(),
            spend: PAST_SPEND / 2.0,
            prompt_tokens: 100,
            completion_tokens: 50,
            total_tokens: 150,
            start_time: t,
            end_time: t,
            model: "gpt-4o".into(),
            model_group: "gpt-4o".into(),
            custom_llm_provider: "openai".into(),
            user: "u1".into(),
            team_id: Some("team-alpha".into()),
            request_tags: json!(["old"]),
            status: "success".into(),
            ..SpendLogRow::default()
        };
        batch.daily.add_call(&row, 4, 0);
    }
    gw.state.store.write_spend(&batch).await.unwrap();

    let today = day(Utc::now().date_naive());
    let all = c.iter().sum::<f64>();

    // --- /user/daily/activity, as the admin: every user today.
    let v = ok(gw.get(&today_q("/user/daily/activity", &today, "")).await).await;
    let m = &v["metadata"];
    assert!(close(m["total_spend"].as_f64().unwrap(), all), "{v}");
    assert_eq!(m["total_api_requests"], 5, "{v}");
    assert_eq!(m["total_successful_requests"], 4);
    assert_eq!(m["total_failed_requests"], 1);
    assert_eq!(m["page"], 1);
    assert_eq!(m["has_more"], false);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let r0 = &results[0];
    assert_eq!(r0["date"], today.as_str());
    assert_eq!(r0["metrics"]["api_requests"], 5);
    let tokens = &r0["metrics"];
    assert_eq!(
        tokens["total_tokens"].as_i64().unwrap(),
        tokens["prompt_tokens"].as_i64().unwrap() + tokens["completion_tokens"].as_i64().unwrap()
    );
    let bd = &r0["breakdown"];
    assert_eq!(bd["models"]["gpt-4o"]["metrics"]["api_requests"], 3, "{bd}");
    assert_eq!(
        bd["models"]["gpt-4o-mini"]["metrics"]["api_requests"], 1,
        "{bd}"
    );
    assert_eq!(bd["model_groups"]["other"]["metrics"]["api_requests"], 1);
    assert_eq!(bd["model_groups"]["dead"]["metrics"]["failed_requests"], 1);
    assert_eq!(bd["providers"]["openai"]["metrics"]["api_requests"], 5);
    assert_eq!(
        bd["endpoints"]["/chat/completions"]["metrics"]["api_requests"],
        5
    );
    assert!(close(
        bd["api_keys"][&ha]["metrics"]["spend"].as_f64().unwrap(),
        c[0] + c[1] + c[2]
    ));
    assert_eq!(bd["api_keys"][&hb]["metrics"]["failed_requests"], 1);
    assert_eq!(bd["api_keys"][&hb]["metadata"]["user_id"], "u2");
    assert_eq!(bd["entities"]["u1"]["metrics"]["api_requests"], 3);
    assert_eq!(bd["entities"]["u2"]["metrics"]["api_requests"], 2);
    assert!(bd["models"]["gpt-4o"]["api_key_breakdown"][&ha].is_object());

    // Filters: one user, one model, one key; the past day only through its dates.
    let v = ok(gw
        .get(&today_q("/user/daily/activity", &today, "&user_id=u2"))
        .await)
    .await;
    assert_eq!(v["metadata"]["total_api_requests"], 2);
    let v = ok(gw
        .get(&today_q(
            "/user/daily/activity",
            &today,
            "&model=gpt-4o-mini",
        ))
        .await)
    .await;
    assert!(close(v["metadata"]["total_spend"].as_f64().unwrap(), c[2]));
    let v = ok(gw
        .get(&today_q(
            "/user/daily/activity",
            &today,
            &format!("&api_key={kb}"),
        ))
        .await)
    .await;
    assert_eq!(
        v["metadata"]["total_api_requests"], 2,
        "raw keys are hashed"
    );
    let v = ok(gw
        .get("/user/daily/activity?start_date=2020-01-01&end_date=2020-01-31")
        .await)
    .await;
    assert!(close(
        v["metadata"]["total_spend"].as_f64().unwrap(),
        PAST_SPEND
    ));
    assert_eq!(v["metadata"]["total_api_requests"], 2);
    assert_eq!(v["metadata"]["total_cache_read_input_tokens"], 8);
    assert_eq!(v["results"][0]["date"], "2020-01-05");
    let v = ok(gw
        .get(&format!(
            "/user/daily/activity?start_date=2020-01-01&end_date={today}"
        ))
        .await)
    .await;
    let dates: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, [today.as_str(), "2020-01-05"], "newest first");

    // Pages run over stored rows (today: u1 x2 models, u2 x2 models; then the past row).
    let v = ok(gw
        .get(&format!(
            "/user/daily/activity?start_date=2020-01-01&end_date={today}&page_size=2"
        ))
        .await)
    .await;
    assert_eq!(v["metadata"]["total_pages"], 3, "{}", v["metadata"]);
    assert_eq!(v["metadata"]["has_more"], true);
    let v3 = ok(gw
        .get(&format!(
            "/user/daily/activity?start_date=2020-01-01&end_date={today}&page_size=2&page=3"
        ))
        .await)
    .await;
    assert_eq!(v3["metadata"]["has_more"], false);
    assert_eq!(v3["results"][0]["date"], "2020-01-05");

    // Bad parameters.
    for q in [
        "/user/daily/activity?start_date=2020-01-01",
        "/user/daily/activity?start_date=2020-1-1&end_date=2020-01-02",
        "/user/daily/activity?start_date=2020-01-01&end_date=2020-01-02&page=0",
    ] {
        assert_eq!(gw.get(q).await.status(), 400, "{q}");
    }

    // An internal user sees their own rows only, and may not ask for another's.
    let v = ok(gw
        .get_as(&ka, &today_q("/user/daily/activity", &today, ""))
        .await)
    .await;
    assert_eq!(v["metadata"]["total_api_requests"], 3);
    let r = gw
        .get_as(&ka, &today_q("/user/daily/activity", &today, "&user_id=u2"))
        .await;
    assert_eq!(r.status(), 403);

    // --- /team/daily/activity.
    let v = ok(gw.get(&today_q("/team/daily/activity", &today, "")).await).await;
    let bd = &v["results"][0]["breakdown"];
    assert_eq!(bd["entities"]["team-alpha"]["metrics"]["api_requests"], 3);
    assert_eq!(
        bd["entities"]["team-alpha"]["metadata"]["team_alias"],
        "alpha"
    );
    assert_eq!(bd["entities"]["team-beta"]["metrics"]["failed_requests"], 1);
    let v = ok(gw
        .get(&today_q(
            "/team/daily/activity",
            &today,
            "&team_ids=team-beta",
        ))
        .await)
    .await;
    assert_eq!(v["metadata"]["total_api_requests"], 2);
    let v = ok(gw
        .get(&today_q(
            "/team/daily/activity",
            &today,
            "&exclude_team_ids=team-beta",
        ))
        .await)
    .await;
    assert_eq!(v["metadata"]["total_api_requests"], 3);
    // A member sees their team through their own keys; another team is refused.
    let v = ok(gw
        .get_as(&ka, &today_q("/team/daily/activity", &today, ""))
        .await)
    .await;
    assert_eq!(v["metadata"]["total_api_requests"], 3);
    let r = gw
        .get_as(
            &ka,
            &today_q("/team/daily/activity", &today, "&team_ids=team-beta"),
        )
        .await;
    assert_eq!(r.status(), 404);
    // The team's admin (u3, whose own key made no call) sees the whole team.
    let v = ok(gw
        .get_as(
            &k3,
            &today_q("/team/daily/activity", &today, "&team_ids=team-alpha"),
        )
        .await)
    .await;
    assert_eq!(v["metadata"]["total_api_requests"], 3, "{v}");

    // --- /tag/daily/activity: one row per tag, so a call with two tags counts in both.
    let v = ok(gw.get(&today_q("/tag/daily/activity", &today, "")).await).await;
    let ents = &v["results"][0]["breakdown"]["entities"];
    assert_eq!(ents["t1"]["metrics"]["api_requests"], 2, "{ents}");
    assert_eq!(ents["t2"]["metrics"]["api_requests"], 3);
    assert!(close(
        ents["t1"]["metrics"]["spend"].as_f64().unwrap(),
        c[0] + c[1]
    ));
    let v = ok(gw
        .get(&today_q("/tag/daily/activity", &today, "&tags=t1"))
        .await)
    .await;
    assert_eq!(v["metadata"]["total_api_requests"], 2);
    // An internal user: their own keys' rows only.
    let v = ok(gw
        .get_as(&kb, &today_q("/tag/daily/activity", &today, ""))
        .await)
    .await;
    assert_eq!(v["metadata"]["total_api_requests"], 1, "{v}");
    let v = ok(gw
        .get_as(
            &kb,
            &today_q("/tag/daily/activity", &today, &format!("&api_key={ha}")),
        )
        .await)
    .await;
    assert_eq!(v["results"], json!([]));

    // --- /customer/daily/activity: admins only.
    let v = ok(gw
        .get(&today_q("/customer/daily/activity", &today, ""))
        .await)
    .await;
    let ents = &v["results"][0]["breakdown"]["entities"];
    assert_eq!(ents["cust-1"]["metrics"]["api_requests"], 2, "{ents}");
    assert_eq!(ents["cust-2"]["metrics"]["api_requests"], 1);
    let r = gw
        .get_as(&ka, &today_q("/end_user/daily/activity", &today, ""))
        .await;
    assert_eq!(r.status(), 401);

    // --- /organization/daily/activity: no call had an organization.
    let v = ok(gw
        .get(&today_q("/organization/daily/activity", &today, ""))
        .await)
    .await;
    assert_eq!(v["results"], json!([]));
    assert_eq!(v["metadata"]["total_pages"], 0);
}

/// A database without the daily tables (an older LiteLLM's): the roll-ups are skipped, and the
/// batch's spend-log rows and spend still land.
#[tokio::test]
async fn spend_is_kept_where_the_daily_tables_are_missing() {
    for (name, db) in backends().await {
        let Some(url) = db else { continue };
        let gw = gateway(
            &config(Some(&url)).replace("  disable_spend_logs: true\n", ""),
            None,
        )
        .await;
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(r#"DROP TABLE "LiteLLM_DailyUserSpend""#)
            .execute(&pool)
            .await
            .unwrap();
        let key = gw.new_key(json!({})).await;
        for _ in 0..2 {
            let r = gw
                .post_as(&key, "/v1/chat/completions", chat_body("gpt-4o"))
                .await;
            assert_eq!(r.status(), 200, "{name}");
        }
        let logs = gw.spend_logs(&key).await;
        assert_eq!(logs.len(), 2, "{name}: {logs:?}");
        let info = ok(gw.get(&format!("/key/info?key={key}")).await).await;
        assert!(
            info["info"]["spend"].as_f64().unwrap() > 0.0,
            "{name}: {info}"
        );
    }
}
