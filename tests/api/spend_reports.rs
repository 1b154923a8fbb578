//! Spend reports end to end over HTTP, on SQLite and on Postgres (when `TEST_DATABASE_URL` is
//! set): real calls through the gateway (to the mock upstream and to mocked deployments) by
//! keys of two teams, two users and no one, plus a few spend-log rows written on past days
//! through the store; then every report's figures, groupings, date windows and pages are checked
//! against the costs the calls reported, and the access rules, `/spend/calculate` and the spend
//! resets.

use crate::helpers::*;
use crate::keys::backends;
use chrono::{Duration, NaiveDate, Utc};
use litellm_gateway::middleware::auth::hash_key;
use litellm_gateway::store::{SpendBatch, SpendLogRow};
use serde_json::{json, Value};

/// Mocked gpt-4o (usage 10/20), mocked gpt-4o-mini, gpt-4o through the mock upstream (usage
/// 7/3), and a mocked model with its own prices.
fn config(db: Option<&str>) -> String {
    let mut s = format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {{model: openai/gpt-4o, mock_response: 'hi'}}\n  - model_name: other\n    litellm_params: {{model: openai/gpt-4o-mini, mock_response: 'other'}}\n  - model_name: up\n    litellm_params: {{model: openai/gpt-4o, api_base: '{{MOCK}}', api_key: k}}\n  - model_name: priced\n    litellm_params: {{model: openai/my-priced-model, mock_response: 'p', input_cost_per_token: 0.001, output_cost_per_token: 0.002}}\nlitellm_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 1\n"
    );
    if let Some(db) = db {
        s.push_str(&format!("  database_url: {db}\n"));
    }
    s
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

async fn ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

/// A 400 (or other status) whose `error.param` names `field`.
async fn err_param(r: reqwest::Response, status: u16, field: &str) {
    let got = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(got, status, "{v}");
    assert_eq!(v["error"]["param"], field, "{v}");
    assert_eq!(v["error"]["code"], status.to_string(), "{v}");
}

/// A chat call; returns the cost the gateway reported for it.
async fn call(gw: &Gateway, key: &str, model: &str, tags: &[&str], user: Option<&str>) -> f64 {
    let mut b = chat_body(model);
    if !tags.is_empty() {
        b["tags"] = json!(tags);
    }
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

/// One seeded spend-log row of key A (user `u1`, team alpha) at noon of `d`.
fn past_row(
    id: &str,
    ha: &str,
    d: NaiveDate,
    spend: f64,
    tag: &str,
    end_user: &str,
) -> SpendLogRow {
    let t = d.and_hms_opt(12, 0, 0).unwrap();
    SpendLogRow {
        request_id: id.into(),
        call_type: "acompletion".into(),
        api_key: ha.into(),
        spend,
        total_tokens: 150,
        prompt_tokens: 100,
        completion_tokens: 50,
        start_time: t,
        end_time: t + Duration::seconds(1),
        request_duration_ms: Some(1000),
        model: "gpt-4o".into(),
        model_group: "gpt-4o".into(),
        custom_llm_provider: "openai".into(),
        user: "u1".into(),
        metadata: json!({}),
        cache_hit: "False".into(),
        request_tags: json!([tag]),
        team_id: Some("team-alpha".into()),
        end_user: Some(end_user.into()),
        status: "success".into(),
        ..SpendLogRow::default()
    }
}

/// The scene every report is checked against.
struct Scene {
    gw: Gateway,
    _mock: MockUpstream,
    /// Raw keys: A (user u1, team alpha), B (user u2, team beta), C (no user, no team),
    /// K3 (user u3, an admin of team alpha, no team of its own).
    ka: String,
    kb: String,
    kc: String,
    k3: String,
    ha: String,
    hb: String,
    hc: String,
    /// Costs of the six calls, in order.
    c: [f64; 6],
    today: NaiveDate,
}

impl Scene {
    fn a_today(&self) -> f64 {
        self.c[0] + self.c[1] + self.c[2]
    }
    fn b_today(&self) -> f64 {
        self.c[3] + self.c[4]
    }
    fn total_today(&self) -> f64 {
        self.c.iter().sum()
    }
}

const OLD1: f64 = 1.5;
const OLD2: f64 = 2.5;
const RECENT: f64 = 1.234;

async fn scene(db: Option<&str>) -> Scene {
    let mock = mock_upstream().await;
    let gw = gateway(&config(db), Some(&mock)).await;
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
    for u in ["u1", "u2"] {
        ok(gw.post("/user/new", json!({"user_id": u})).await).await;
    }
    let ka = gw
        .new_key(json!({"user_id": "u1", "team_id": "team-alpha", "key_alias": "alias-a"}))
        .await;
    let kb = gw
        .new_key(json!({"user_id": "u2", "team_id": "team-beta", "key_alias": "alias-b"}))
        .await;
    let kc = gw.new_key(json!({})).await;
    let k3 = gw.new_key(json!({"user_id": "u3"})).await;
    let c = [
        call(&gw, &ka, "up", &["t1", "t2"], Some("cust-1")).await,
        call(&gw, &ka, "up", &["t1", "t2"], Some("cust-1")).await,
        call(&gw, &ka, "other", &["t1"], None).await,
        call(&gw, &kb, "up", &["t2"], Some("cust-2")).await,
        call(&gw, &kb, "gpt-4o", &[], None).await,
        call(&gw, &kc, "gpt-4o", &[], Some("cust-1")).await,
    ];
    assert!(c.iter().all(|x| *x > 0.0), "{c:?}");
    // The mock upstream's usage (7/3) and the mocked usage (10/20) cost what the price map says.
    assert!(close(c[0], c[1]) && close(c[0], c[3]) && close(c[4], c[5]));
    let ha = hash_key(&ka);
    let today = Utc::now().date_naive();
    let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
    gw.state
        .store
        .write_spend(&SpendBatch {
            logs: vec![
                past_row("old-1", &ha, d(2020, 1, 5), OLD1, "old", ""),
                past_row("old-2", &ha, d(2020, 1, 7), OLD2, "old", ""),
                past_row(
                    "recent-1",
                    &ha,
                    today - Duration::days(2),
                    RECENT,
                    "recent",
                    "cust-9",
                ),
            ],
            ..SpendBatch::default()
        })
        .await
        .unwrap();
    gw.state.spend.flush().await;
    Scene {
        hb: hash_key(&kb),
        hc: hash_key(&kc),
        ha,
        gw,
        _mock: mock,
        ka,
        kb,
        kc,
        k3,
        c,
        today,
    }
}

#[tokio::test]
async fn spend_logs_summary_and_v2_pages_on_every_backend() {
    for (name, db) in backends().await {
        let s = scene(db.as_deref()).await;
        let gw = &s.gw;

        // Rows of one key, newest first: three calls today, three seeded rows.
        let v = ok(gw.get(&format!("/spend/logs?api_key={}", s.ka)).await).await;
        let rows = v.as_array().unwrap();
        assert_eq!(rows.len(), 6, "{name}: {v}");
        assert_eq!(rows[5]["request_id"], "old-1");
        assert_eq!(rows[4]["request_id"], "old-2");
        assert_eq!(rows[3]["request_id"], "recent-1");
        assert_eq!(rows[0]["user"], "u1");
        assert_eq!(rows[0]["team_id"], "team-alpha");
        assert_eq!(rows[5]["startTime"], "2020-01-05T12:00:00.000Z");
        assert_eq!(rows[5]["request_tags"], json!(["old"]));
        assert_eq!(rows[5]["request_duration_ms"], 1000);
        let today_models: Vec<&str> = rows[..3]
            .iter()
            .map(|r| r["model"].as_str().unwrap())
            .collect();
        assert_eq!(today_models.iter().filter(|m| **m == "gpt-4o").count(), 2);
        assert!(today_models.contains(&"gpt-4o-mini"));
        let by_user = ok(gw.get("/spend/logs?user_id=u2").await).await;
        assert_eq!(by_user.as_array().unwrap().len(), 2, "{name}");
        let one = ok(gw.get("/spend/logs?request_id=old-2").await).await;
        assert_eq!(one.as_array().unwrap().len(), 1);
        assert!(close(f(&one[0]["spend"]), OLD2));

        // Summary per day: the key's spend by hash, per user and model; days after the last
        // one with spend are padded up to end_date.
        let v = ok(gw
            .get("/spend/logs?start_date=2020-01-01&end_date=2020-01-09")
            .await)
        .await;
        let days = v.as_array().unwrap();
        let dates: Vec<&str> = days
            .iter()
            .map(|d| d["startTime"].as_str().unwrap())
            .collect();
        assert_eq!(
            dates,
            ["2020-01-05", "2020-01-07", "2020-01-08", "2020-01-09"],
            "{name}: {v}"
        );
        assert!(close(f(&days[0]["spend"]), OLD1));
        assert!(close(f(&days[0][s.ha.as_str()]), OLD1));
        assert!(close(f(&days[0]["users"]["u1"]), OLD1));
        assert!(close(f(&days[1]["models"]["gpt-4o"]), OLD2));
        assert_eq!(
            days[2],
            json!({"startTime": "2020-01-08", "spend": 0, "users": {}, "models": {}})
        );
        // LiteLLM compares startTime with end_date's midnight: that day's rows fall outside.
        let v = ok(gw
            .get("/spend/logs?start_date=2020-01-01&end_date=2020-01-07")
            .await)
        .await;
        let dates: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["startTime"].as_str().unwrap())
            .collect();
        assert_eq!(dates, ["2020-01-05", "2020-01-06", "2020-01-07"], "{name}");
        assert_eq!(v[2]["spend"], 0);
        // summarize=false: the rows of the window.
        let v = ok(gw
            .get("/spend/logs?start_date=2020-01-01&end_date=2020-01-09&summarize=false")
            .await)
        .await;
        let ids: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["request_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["old-2", "old-1"], "{name}");
        // A lone date is ignored, as in LiteLLM.
        let v = ok(gw.get("/spend/logs?start_date=2030-01-01").await).await;
        assert_eq!(v.as_array().unwrap().len(), 9, "{name}");

        // v2: today's six calls, paged.
        let win = format!(
            "start_date={}&end_date={}%2023:59:59",
            day(s.today - Duration::days(1)),
            day(s.today + Duration::days(1))
        );
        let v = ok(gw.get(&format!("/spend/logs/v2?{win}&page_size=4")).await).await;
        assert_eq!(v["total"], 6, "{name}: {v}");
        assert_eq!(v["page"], 1);
        assert_eq!(v["page_size"], 4);
        assert_eq!(v["total_pages"], 2);
        assert_eq!(v["total_is_capped"], false);
        assert_eq!(v["data"].as_array().unwrap().len(), 4);
        let p2 = ok(gw
            .get(&format!("/spend/logs/v2?{win}&page_size=4&page=2"))
            .await)
        .await;
        assert_eq!(p2["data"].as_array().unwrap().len(), 2);
        let mut seen: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .chain(p2["data"].as_array().unwrap())
            .map(|r| r["request_id"].as_str().unwrap().to_string())
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 6, "pages overlap: {seen:?}");
        // A window wide enough for the seeded past rows too.
        let all = ok(gw
            .get("/spend/logs/v2?start_date=2020-01-01&end_date=2031-01-01")
            .await)
        .await;
        assert_eq!(all["total"], 9);
        // Sorted ascending by spend.
        let v = ok(gw
            .get(&format!(
                "/spend/logs/v2?{win}&sort_by=spend&sort_order=asc"
            ))
            .await)
        .await;
        let spends: Vec<f64> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| f(&r["spend"]))
            .collect();
        assert!(spends.windows(2).all(|w| w[0] <= w[1]), "{spends:?}");
        assert!(close(spends.iter().sum(), s.total_today()));
        // Filters.
        for (q, n) in [
            (format!("api_key={}", s.ka), 3),
            (format!("api_key={}", s.hb), 2),
            ("team_id=team-alpha".to_string(), 3),
            ("user_id=u2".to_string(), 2),
            ("model=gpt-4o-mini".to_string(), 1),
            ("model_group=up".to_string(), 3),
            ("end_user=cust-1".to_string(), 3),
            ("key_alias=alias-b".to_string(), 2),
            ("status_filter=success".to_string(), 6),
            ("status_filter=failure".to_string(), 0),
            (format!("min_spend={}", s.c[4] - 1e-9), 2),
            (format!("max_spend={}", s.c[2] + 1e-12), 1),
            ("search=u2".to_string(), 2),
            ("cache_hit_filter=miss".to_string(), 6),
            ("span_type=llm".to_string(), 6),
            ("exclude_internal_health_checks=true".to_string(), 6),
        ] {
            let v = ok(gw.get(&format!("/spend/logs/v2?{win}&{q}")).await).await;
            assert_eq!(v["total"], n, "{name}: {q}: {v}");
            assert_eq!(v["data"].as_array().unwrap().len(), n as usize, "{q}");
        }
        let id = rows[0]["request_id"].as_str().unwrap();
        let v = ok(gw
            .get(&format!("/spend/logs/v2?{win}&request_id={id}"))
            .await)
        .await;
        assert_eq!(v["total"], 1);
        assert_eq!(v["data"][0]["request_id"], id);
        // Old rows are out of today's window.
        let v = ok(gw
            .get(&format!("/spend/logs/v2?{win}&request_id=old-1"))
            .await)
        .await;
        assert_eq!(v["total"], 0);
    }
}

#[tokio::test]
async fn grouped_reports_sum_what_the_calls_cost_on_every_backend() {
    for (name, db) in backends().await {
        let s = scene(db.as_deref()).await;
        let gw = &s.gw;
        let c = s.c;
        let yesterday = day(s.today - Duration::days(1));
        let today = day(s.today);
        let range = format!("start_date={yesterday}&end_date={today}");

        // /spend/tags: every request tag, all time.
        let v = ok(gw.get("/spend/tags").await).await;
        let tag = |v: &Value, t: &str| {
            v.as_array()
                .unwrap()
                .iter()
                .find(|x| x["individual_request_tag"] == t)
                .cloned()
                .unwrap_or_else(|| panic!("{name}: no tag {t} in {v}"))
        };
        assert_eq!(v.as_array().unwrap().len(), 4, "{name}: {v}");
        assert_eq!(tag(&v, "t1")["log_count"], 3);
        assert!(close(f(&tag(&v, "t1")["total_spend"]), c[0] + c[1] + c[2]));
        assert_eq!(tag(&v, "t2")["log_count"], 3);
        assert!(close(f(&tag(&v, "t2")["total_spend"]), c[0] + c[1] + c[3]));
        assert_eq!(tag(&v, "old")["log_count"], 2);
        assert!(close(f(&tag(&v, "old")["total_spend"]), OLD1 + OLD2));
        assert!(close(f(&tag(&v, "recent")["total_spend"]), RECENT));
        let v = ok(gw
            .get("/spend/tags?start_date=2020-01-06&end_date=2020-01-07")
            .await)
        .await;
        assert_eq!(v.as_array().unwrap().len(), 1, "{name}: {v}");
        assert_eq!(tag(&v, "old")["log_count"], 1);
        assert!(close(f(&tag(&v, "old")["total_spend"]), OLD2));

        // /global/spend/tags: both days whole, the most spent first, rounded to 4 places.
        let v = ok(gw.get(&format!("/global/spend/tags?{range}")).await).await;
        let tags = v["spend_per_tag"].as_array().unwrap();
        assert_eq!(tags.len(), 2, "{name}: {v}");
        assert_eq!(tags[0]["name"], "t2");
        assert_eq!(tags[0]["log_count"], 3);
        let r4 = |x: f64| (x * 1e4).round() / 1e4;
        assert_eq!(f(&tags[0]["spend"]), r4(c[0] + c[1] + c[3]));
        assert_eq!(tags[1]["name"], "t1");
        let v = ok(gw
            .get(&format!("/global/spend/tags?{range}&tags=t1,nope"))
            .await)
        .await;
        assert_eq!(v["spend_per_tag"].as_array().unwrap().len(), 1);
        assert_eq!(v["spend_per_tag"][0]["name"], "t1");

        // /global/spend/report, by team (default): one day, three teams.
        let v = ok(gw.get(&format!("/global/spend/report?{range}")).await).await;
        let days = v.as_array().unwrap();
        assert_eq!(days.len(), 1, "{name}: {v}");
        assert_eq!(days[0]["group_by_day"], format!("{today}T00:00:00+00:00"));
        let teams = days[0]["teams"].as_array().unwrap();
        assert_eq!(teams.len(), 3, "{name}: {v}");
        let team = |n: &str| {
            teams
                .iter()
                .find(|t| t["team_name"] == n)
                .unwrap_or_else(|| panic!("{name}: no team {n} in {v}"))
        };
        assert!(close(f(&team("alpha")["total_spend"]), s.a_today()));
        assert_eq!(team("alpha")["metadata"].as_array().unwrap().len(), 2);
        assert!(close(f(&team("beta")["total_spend"]), s.b_today()));
        // Both of B's calls were gpt-4o: one (model, key) entry with their tokens.
        assert_eq!(team("beta")["metadata"].as_array().unwrap().len(), 1);
        assert_eq!(team("beta")["metadata"][0]["total_tokens"], 10 + 30);
        assert_eq!(team("beta")["metadata"][0]["api_key"], s.hb);
        assert!(close(f(&team("Unassigned Team")["total_spend"]), c[5]));
        let v = ok(gw
            .get(&format!("/global/spend/report?{range}&team_id=team-beta"))
            .await)
        .await;
        assert_eq!(v[0]["teams"].as_array().unwrap().len(), 1);
        assert_eq!(v[0]["teams"][0]["team_name"], "beta");

        // By customer (the request's `user`; "" for none).
        let v = ok(gw
            .get(&format!("/global/spend/report?{range}&group_by=customer"))
            .await)
        .await;
        let custs = v[0]["customers"].as_array().unwrap();
        assert_eq!(custs.len(), 3, "{name}: {v}");
        let cust = |n: &str| custs.iter().find(|t| t["customer"] == n).unwrap();
        assert!(close(f(&cust("cust-1")["total_spend"]), c[0] + c[1] + c[5]));
        assert_eq!(cust("cust-1")["metadata"].as_array().unwrap().len(), 2);
        assert!(close(f(&cust("cust-2")["total_spend"]), c[3]));
        assert!(close(f(&cust("")["total_spend"]), c[2] + c[4]));

        // One team and one customer.
        let v = ok(gw
            .get(&format!(
                "/global/spend/report?{range}&team_id=team-alpha&customer_id=cust-1"
            ))
            .await)
        .await;
        let tc = v[0]["teams_customers"].as_array().unwrap();
        assert_eq!(tc.len(), 1, "{name}: {v}");
        assert_eq!(tc[0]["team_name"], "alpha");
        assert_eq!(tc[0]["customer"], "cust-1");
        assert!(close(f(&tc[0]["total_spend"]), c[0] + c[1]));
        assert_eq!(tc[0]["metadata"][0]["total_tokens"], 20);

        // By key: the most spent first, with the per-model breakdown.
        let v = ok(gw
            .get(&format!("/global/spend/report?{range}&group_by=api_key"))
            .await)
        .await;
        let keys = v.as_array().unwrap();
        assert_eq!(keys.len(), 3, "{name}: {v}");
        let totals: Vec<f64> = keys.iter().map(|k| f(&k["total_cost"])).collect();
        assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");
        let ka = keys.iter().find(|k| k["api_key"] == s.ha).unwrap();
        assert!(close(f(&ka["total_cost"]), s.a_today()));
        assert_eq!(ka["total_input_tokens"], 7 + 7 + 10);
        assert_eq!(ka["total_output_tokens"], 3 + 3 + 20);
        let details = ka["model_details"].as_array().unwrap();
        assert_eq!(details.len(), 2);
        let mini = details
            .iter()
            .find(|d| d["model"] == "gpt-4o-mini")
            .unwrap();
        assert!(close(f(&mini["total_cost"]), c[2]));
        assert_eq!(mini["total_input_tokens"], 10);
        // One key (raw or hash), one user.
        for q in [format!("api_key={}", s.ka), format!("api_key={}", s.ha)] {
            let v = ok(gw.get(&format!("/global/spend/report?{range}&{q}")).await).await;
            assert_eq!(v.as_array().unwrap().len(), 1, "{q}");
            assert!(close(f(&v[0]["total_cost"]), s.a_today()));
        }
        let v = ok(gw
            .get(&format!("/global/spend/report?{range}&internal_user_id=u2"))
            .await)
        .await;
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["api_key"], s.hb);
        assert!(close(f(&v[0]["total_cost"]), s.b_today()));
        // A past day.
        let v = ok(gw
            .get("/global/spend/report?start_date=2020-01-05&end_date=2020-01-05&group_by=api_key")
            .await)
        .await;
        assert_eq!(v.as_array().unwrap().len(), 1, "{name}: {v}");
        assert!(close(f(&v[0]["total_cost"]), OLD1));
        assert_eq!(v[0]["total_input_tokens"], 100);

        // The per-caller reports: a key's own, its user's, its team's.
        for (path, q) in [
            ("/key/spend/report", String::new()),
            ("/key/spend/report", format!("&api_key={}", s.ha)),
            ("/user/spend/report", String::new()),
            ("/team/spend/report", String::new()),
        ] {
            let v = ok(gw.get_as(&s.ka, &format!("{path}?{range}{q}")).await).await;
            assert_eq!(v.as_array().unwrap().len(), 1, "{name}: {path}{q}: {v}");
            assert_eq!(v[0]["api_key"], s.ha);
            assert!(close(f(&v[0]["total_cost"]), s.a_today()), "{path}");
            assert_eq!(v[0]["model_details"].as_array().unwrap().len(), 2);
        }
        let v = ok(gw
            .get(&format!("/team/spend/report?{range}&team_id=team-beta"))
            .await)
        .await;
        assert_eq!(v[0]["api_key"], s.hb);
        let v = ok(gw
            .get(&format!("/user/spend/report?{range}&internal_user_id=u1"))
            .await)
        .await;
        assert_eq!(v[0]["api_key"], s.ha);

        // Last 30 days: keys, teams, models, end users, days.
        let v = ok(gw.get("/global/spend/keys").await).await;
        let keys = v.as_array().unwrap();
        assert_eq!(keys.len(), 3, "{name}: {v}");
        assert_eq!(keys[0]["api_key"], s.ha);
        assert_eq!(keys[0]["key_alias"], "alias-a");
        assert!(keys[0]["key_name"].as_str().unwrap().starts_with("sk-..."));
        assert!(close(f(&keys[0]["total_spend"]), s.a_today() + RECENT));
        assert_eq!(keys[1]["api_key"], s.hb);
        assert!(close(f(&keys[1]["total_spend"]), s.b_today()));
        assert_eq!(keys[2]["api_key"], s.hc);
        assert_eq!(keys[2]["key_alias"], Value::Null);
        let v = ok(gw.get("/global/spend/keys?limit=1").await).await;
        assert_eq!(v.as_array().unwrap().len(), 1);

        let v = ok(gw.get("/global/spend/teams").await).await;
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        let two_days_ago = day(s.today - Duration::days(2));
        assert_eq!(
            v["daily_spend"],
            json!([
                {"date": two_days_ago, "alpha": r2(RECENT)},
                {"date": today, "Unassigned": r2(c[5]), "alpha": r2(s.a_today()), "beta": r2(s.b_today())},
            ]),
            "{name}: {v}"
        );
        assert_eq!(v["teams"], json!(["Unassigned", "alpha", "beta"]));
        assert_eq!(v["total_spend_per_team"][0]["team_id"], "alpha");
        assert!(close(
            f(&v["total_spend_per_team"][0]["total_spend"]),
            r2(RECENT) + r2(s.a_today())
        ));
        assert_eq!(v["total_spend_per_team"].as_array().unwrap().len(), 3);

        let v = ok(gw.get("/global/spend/models").await).await;
        assert_eq!(v.as_array().unwrap().len(), 2, "{name}: {v}");
        assert_eq!(v[0]["model"], "gpt-4o");
        assert!(close(
            f(&v[0]["total_spend"]),
            c[0] + c[1] + c[3] + c[4] + c[5] + RECENT
        ));
        assert_eq!(v[1]["model"], "gpt-4o-mini");
        assert!(close(f(&v[1]["total_spend"]), c[2]));
        let v = ok(gw.get("/global/spend/models?limit=1").await).await;
        assert_eq!(v.as_array().unwrap().len(), 1);

        let v = ok(gw.post("/global/spend/end_users", json!({})).await).await;
        let eu = v.as_array().unwrap();
        assert_eq!(eu.len(), 4, "{name}: {v}");
        assert_eq!(eu[0]["end_user"], "cust-9");
        let end_user = |n: &str| eu.iter().find(|x| x["end_user"] == n).unwrap();
        assert_eq!(end_user("cust-1")["total_count"], 3);
        assert!(close(
            f(&end_user("cust-1")["total_spend"]),
            c[0] + c[1] + c[5]
        ));
        assert_eq!(end_user("")["total_count"], 2);
        let v = ok(gw
            .post("/global/spend/end_users", json!({"api_key": s.kb}))
            .await)
        .await;
        assert_eq!(v.as_array().unwrap().len(), 2, "{name}: {v}");
        let v = ok(gw
            .post(
                "/global/spend/end_users",
                json!({"startTime": "2020-01-01T00:00:00Z", "endTime": "2020-02-01T00:00:00+00:00"}),
            )
            .await)
        .await;
        assert_eq!(
            v,
            json!([{"end_user": "", "total_count": 2, "total_spend": OLD1 + OLD2}])
        );

        let v = ok(gw.get("/global/spend/logs").await).await;
        assert_eq!(v.as_array().unwrap().len(), 2, "{name}: {v}");
        assert_eq!(v[0]["date"], two_days_ago);
        assert!(close(f(&v[0]["spend"]), RECENT));
        assert_eq!(v[1]["date"], today);
        assert!(close(f(&v[1]["spend"]), s.total_today()));
        let v = ok(gw
            .get(&format!("/global/spend/logs?api_key={}", s.ka))
            .await)
        .await;
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["api_key"], s.ha);
        assert!(close(f(&v[1]["spend"]), s.a_today()));

        let v = ok(gw.get("/global/spend").await).await;
        assert!(
            close(f(&v["spend"]), s.total_today() + RECENT),
            "{name}: {v}"
        );
    }
}

#[tokio::test]
async fn spend_routes_follow_litellms_access_rules_on_every_backend() {
    for (name, db) in backends().await {
        let s = scene(db.as_deref()).await;
        let gw = &s.gw;
        let win = format!(
            "start_date={}&end_date={}",
            day(s.today - Duration::days(1)),
            day(s.today + Duration::days(1))
        );
        let range = format!(
            "start_date={}&end_date={}",
            day(s.today - Duration::days(1)),
            day(s.today)
        );

        // A key with no user: LLM routes and /spend/calculate only.
        for p in [
            "/spend/logs".to_string(),
            format!("/spend/logs/v2?{win}"),
            "/spend/tags".to_string(),
            format!("/key/spend/report?{range}"),
            format!("/global/spend/report?{range}"),
            "/global/spend/keys".to_string(),
            "/global/spend/teams".to_string(),
            "/global/spend".to_string(),
        ] {
            let r = gw.get_as(&s.kc, &p).await;
            assert_eq!(r.status(), 401, "{name}: {p}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["type"], "auth_error", "{p}");
        }
        let r = gw
            .post_as(
                &s.kc,
                "/spend/calculate",
                json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            gw.post_as(&s.kc, "/global/spend/reset", json!({}))
                .await
                .status(),
            401
        );

        // An internal user sees their own rows, whatever user_id they ask for.
        for q in ["", "?user_id=u2"] {
            let v = ok(gw.get_as(&s.ka, &format!("/spend/logs{q}")).await).await;
            let rows = v.as_array().unwrap();
            assert_eq!(rows.len(), 6, "{name}: {q}");
            assert!(rows.iter().all(|r| r["user"] == "u1"));
        }
        let v = ok(gw.get_as(&s.ka, &format!("/spend/logs/v2?{win}")).await).await;
        assert_eq!(v["total"], 3, "{name}: {v}");
        assert!(v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["api_key"] == s.ha));
        let r = gw
            .get_as(&s.ka, &format!("/spend/logs/v2?{win}&team_id=team-beta"))
            .await;
        assert_eq!(r.status(), 403, "{name}");
        let v = ok(gw.get_as(&s.kb, "/spend/tags").await).await;
        assert_eq!(v.as_array().unwrap().len(), 1, "{name}: {v}");
        assert_eq!(v[0]["individual_request_tag"], "t2");
        assert_eq!(v[0]["log_count"], 1);
        // ... and their own scope in the per-caller reports only.
        err_param(
            gw.get_as(
                &s.ka,
                &format!("/key/spend/report?{range}&api_key={}", s.kb),
            )
            .await,
            403,
            "api_key",
        )
        .await;
        err_param(
            gw.get_as(
                &s.ka,
                &format!("/team/spend/report?{range}&team_id=team-beta"),
            )
            .await,
            403,
            "team_id",
        )
        .await;
        // K3's user administers team alpha but its key has no team of its own.
        err_param(
            gw.get_as(&s.k3, &format!("/team/spend/report?{range}"))
                .await,
            400,
            "team_id",
        )
        .await;
        // The global routes are for admins.
        for p in [
            format!("/global/spend/report?{range}"),
            "/global/spend/keys".to_string(),
            "/global/spend/logs".to_string(),
        ] {
            assert_eq!(gw.get_as(&s.ka, &p).await.status(), 401, "{name}: {p}");
        }

        // A team admin reads the team's rows in v2.
        let v = ok(gw.get_as(&s.k3, &format!("/spend/logs/v2?{win}")).await).await;
        assert_eq!(v["total"], 3, "{name}: {v}");
        assert!(v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["team_id"] == "team-alpha"));
        let v = ok(gw
            .get_as(&s.k3, &format!("/spend/logs/v2?{win}&team_id=team-alpha"))
            .await)
        .await;
        assert_eq!(v["total"], 3);
        let r = gw
            .get_as(&s.k3, &format!("/spend/logs/v2?{win}&team_id=team-beta"))
            .await;
        assert_eq!(r.status(), 403);

        // `get_spend_routes` opens the global routes to a key.
        let kp = gw
            .new_key(json!({"permissions": {"get_spend_routes": true}}))
            .await;
        let v = ok(gw.get_as(&kp, "/global/spend/keys").await).await;
        assert_eq!(v.as_array().unwrap().len(), 3, "{name}: {v}");
        assert_eq!(gw.get_as(&kp, "/spend/logs").await.status(), 401);
    }
}

#[tokio::test]
async fn spend_calculate_prices_known_models() {
    let gw = gateway(&config(None), None).await;
    // 36 characters of content plus the role: 40 characters, 10 estimated prompt tokens.
    let msgs = json!([{"role": "user", "content": "abcdefghijklmnopqrstuvwxyz0123456789"}]);
    let v = ok(gw
        .post(
            "/spend/calculate",
            json!({"model": "priced", "messages": msgs}),
        )
        .await)
    .await;
    assert!(close(f(&v["cost"]), 10.0 * 0.001), "{v}");
    let v = ok(gw
        .post(
            "/spend/calculate",
            json!({"completion_response": {"id": "x", "object": "chat.completion", "model": "priced",
                   "choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}}}),
        )
        .await)
    .await;
    assert!(close(f(&v["cost"]), 100.0 * 0.001 + 50.0 * 0.002), "{v}");
    // A model only the price map knows: the same figure a gpt-4o call with that usage costs.
    let v = ok(gw
        .post(
            "/spend/calculate",
            json!({"completion_response": {"model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": 20}}}),
        )
        .await)
    .await;
    assert!((f(&v["cost"]) - 0.000225).abs() < 1e-12, "{v}");
    let k = gw.new_key(json!({})).await;
    let cost = call(&gw, &k, "gpt-4o", &[], None).await;
    assert!((f(&v["cost"]) - cost).abs() < 1e-12);
    let v = ok(gw
        .post(
            "/spend/calculate",
            json!({"model": "openai/gpt-4o", "messages": msgs}),
        )
        .await)
    .await;
    assert!(f(&v["cost"]) > 0.0);

    for (body, field) in [
        (json!({}), "model"),
        (json!({"model": "priced"}), "messages"),
        (json!({"model": 5, "messages": []}), "model"),
        (json!({"model": "priced", "messages": "hi"}), "messages"),
        (
            json!({"model": "no-such-model-anywhere", "messages": msgs}),
            "model",
        ),
        (json!({"completion_response": "x"}), "completion_response"),
        (
            json!({"completion_response": {"usage": {}}}),
            "completion_response",
        ),
    ] {
        err_param(gw.post("/spend/calculate", body.clone()).await, 400, field).await;
    }
}

#[tokio::test]
async fn spend_resets_let_keys_spend_again_on_every_backend() {
    for (name, db) in backends().await {
        let gw = gateway(&config(db.as_deref()), None).await;
        ok(gw
            .post(
                "/team/new",
                json!({"team_id": "tr", "team_alias": "resets",
                       "members_with_roles": [{"role": "admin", "user_id": "boss"}]}),
            )
            .await)
        .await;
        ok(gw.post("/user/new", json!({"user_id": "worker"})).await).await;
        let boss = gw.new_key(json!({"user_id": "boss"})).await;
        let worker = gw
            .new_key(json!({"user_id": "worker", "team_id": "tr"}))
            .await;
        let plain = gw.new_key(json!({})).await;

        // Two calls of 0.000225 reach a 0.0003 budget; the third is refused.
        let kr = gw
            .new_key(json!({"max_budget": 0.0003, "team_id": "tr"}))
            .await;
        let c = call(&gw, &kr, "gpt-4o", &[], None).await;
        call(&gw, &kr, "gpt-4o", &[], None).await;
        let r = gw
            .post_as(&kr, "/v1/chat/completions", chat_body("gpt-4o"))
            .await;
        assert_eq!(r.status(), 400, "{name}");
        let path = format!("/key/{kr}/reset_spend");
        for (body, status, field) in [
            (json!({"reset_to": -1}), 400, "reset_to"),
            (json!({"reset_to": "zero"}), 400, "reset_to"),
            (json!({"reset_to": true}), 400, "reset_to"),
            (json!({}), 400, "reset_to"),
            (json!({"reset_to": 1.0}), 400, "reset_to"),
            // Under the spend (0.00045) but over the budget.
            (json!({"reset_to": 0.0004}), 400, "reset_to"),
        ] {
            err_param(gw.post(&path, body.clone()).await, status, field).await;
        }
        err_param(
            gw.post(
                "/key/sk-no-such-key-000000/reset_spend",
                json!({"reset_to": 0}),
            )
            .await,
            404,
            "key",
        )
        .await;
        // Keys without the right: a plain key, a member who is not the team's admin.
        assert_eq!(
            gw.post_as(&plain, &path, json!({"reset_to": 0}))
                .await
                .status(),
            401
        );
        assert_eq!(
            gw.post_as(&worker, &path, json!({"reset_to": 0}))
                .await
                .status(),
            403
        );

        let v = ok(gw.post(&path, json!({"reset_to": 0.0001})).await).await;
        assert_eq!(v["key_hash"], hash_key(&kr), "{name}: {v}");
        assert_eq!(v["spend"], 0.0001);
        assert!(close(f(&v["previous_spend"]), 2.0 * c));
        assert_eq!(v["max_budget"], 0.0003);
        // The next request sees the reset at once.
        call(&gw, &kr, "gpt-4o", &[], None).await;
        gw.state.spend.flush().await;
        let info = ok(gw.get(&format!("/key/info?key={kr}")).await).await;
        assert!(
            close(f(&info["info"]["spend"]), 0.0001 + c),
            "{name}: {info}"
        );
        let r = gw
            .post_as(&kr, "/v1/chat/completions", chat_body("gpt-4o"))
            .await;
        assert_eq!(r.status(), 400, "{name}: over budget again");
        // The team's admin may reset the team's keys, by hash too; not keys of other teams.
        let v = ok(gw
            .post_as(
                &boss,
                &format!("/key/{}/reset_spend", hash_key(&kr)),
                json!({"reset_to": 0}),
            )
            .await)
        .await;
        assert_eq!(v["spend"], 0.0);
        call(&gw, &kr, "gpt-4o", &[], None).await;
        let other = gw.new_key(json!({"max_budget": 1.0})).await;
        call(&gw, &other, "gpt-4o", &[], None).await;
        gw.state.spend.flush().await;
        assert_eq!(
            gw.post_as(
                &boss,
                &format!("/key/{other}/reset_spend"),
                json!({"reset_to": 0})
            )
            .await
            .status(),
            403
        );

        // Global reset: master key only; keys and teams back to 0, users keep theirs.
        let kg = gw
            .new_key(json!({"max_budget": 0.0002, "user_id": "worker"}))
            .await;
        call(&gw, &kg, "gpt-4o", &[], None).await;
        let r = gw
            .post_as(&kg, "/v1/chat/completions", chat_body("gpt-4o"))
            .await;
        assert_eq!(r.status(), 400);
        call(&gw, &worker, "gpt-4o", &[], None).await;
        gw.state.spend.flush().await;
        let r = gw.post_as(&worker, "/global/spend/reset", json!({})).await;
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only for MASTER KEY"));
        let user_before = ok(gw.get("/user/info?user_id=worker").await).await;
        let user_spend = f(&user_before["user_info"]["spend"]);
        assert!(user_spend > 0.0);
        let v = ok(gw.post("/global/spend/reset", json!({})).await).await;
        assert_eq!(
            v,
            json!({"message": "Spend for all API Keys and Teams reset successfully", "status": "success"})
        );
        for k in [&kr, &kg, &worker, &other] {
            let info = ok(gw.get(&format!("/key/info?key={k}")).await).await;
            assert_eq!(info["info"]["spend"], 0.0, "{name}: {info}");
        }
        let team = ok(gw.get("/team/info?team_id=tr").await).await;
        assert_eq!(team["team_info"]["spend"], 0.0, "{name}: {team}");
        let user_after = ok(gw.get("/user/info?user_id=worker").await).await;
        assert!(close(f(&user_after["user_info"]["spend"]), user_spend));
        // The key that was over its budget spends again.
        call(&gw, &kg, "gpt-4o", &[], None).await;
        // The logs are kept.
        let logs = ok(gw.get(&format!("/spend/logs?api_key={kg}")).await).await;
        // Its two calls (the refused one never reached the upstream, so it has no row).
        assert_eq!(logs.as_array().unwrap().len(), 2, "{name}: {logs}");
    }
}

#[tokio::test]
async fn bad_spend_report_input_is_400_naming_the_field() {
    let gw = gateway(&config(None), None).await;
    for (path, field) in [
        (
            "/spend/logs?start_date=2024-13-01&end_date=2024-01-02",
            "start_date",
        ),
        (
            "/spend/logs?start_date=2024-01-01&end_date=01/02/2024",
            "end_date",
        ),
        ("/spend/logs?summarize=maybe", "summarize"),
        ("/spend/logs/v2", "start_date"),
        ("/spend/logs/v2?start_date=2024-01-01", "end_date"),
        (
            "/spend/logs/v2?start_date=yesterday&end_date=2024-01-01",
            "start_date",
        ),
        (
            "/spend/logs/v2?start_date=2024-01-01&end_date=2024-01-02&page=0",
            "page",
        ),
        (
            "/spend/logs/v2?start_date=2024-01-01&end_date=2024-01-02&page=abc",
            "page",
        ),
        (
            "/spend/logs/v2?start_date=2024-01-01&end_date=2024-01-02&page_size=5000",
            "page_size",
        ),
        (
            "/spend/logs/v2?start_date=2024-01-01&end_date=2024-01-02&sort_by=cost",
            "sort_by",
        ),
        (
            "/spend/logs/v2?start_date=2024-01-01&end_date=2024-01-02&sort_order=up",
            "sort_order",
        ),
        (
            "/spend/logs/v2?start_date=2024-01-01&end_date=2024-01-02&min_spend=lots",
            "min_spend",
        ),
        (
            "/spend/logs/v2?start_date=2024-01-01&end_date=2024-01-02&cache_hit_filter=x",
            "cache_hit_filter",
        ),
        (
            "/spend/logs/v2?start_date=2024-01-01&end_date=2024-01-02&span_type=x",
            "span_type",
        ),
        (
            "/spend/tags?start_date=2024-01-01&end_date=never",
            "end_date",
        ),
        ("/global/spend/tags?start_date=2024-01-01", "end_date"),
        ("/global/spend/report", "start_date"),
        (
            "/global/spend/report?start_date=2024-01-01&end_date=2024-02-30",
            "end_date",
        ),
        (
            "/global/spend/report?start_date=2024-01-01&end_date=2024-01-02&group_by=model",
            "group_by",
        ),
        (
            "/key/spend/report?start_date=2024-02-01&end_date=2024-01-01&api_key=x",
            "end_date",
        ),
        (
            "/user/spend/report?start_date=2020-01-01&end_date=2024-01-01&internal_user_id=x",
            "end_date",
        ),
        (
            "/team/spend/report?start_date=2024-01-01&end_date=2024-01-02",
            "team_id",
        ),
        ("/global/spend/keys?limit=0", "limit"),
        ("/global/spend/keys?limit=ten", "limit"),
        ("/global/spend/models?limit=-1", "limit"),
    ] {
        err_param(gw.get(path).await, 400, field).await;
    }
    for (body, field) in [
        (json!({"startTime": "yesterday"}), "startTime"),
        (json!({"endTime": 5}), "endTime"),
        (json!({"api_key": 5}), "api_key"),
    ] {
        err_param(gw.post("/global/spend/end_users", body).await, 400, field).await;
    }
}
