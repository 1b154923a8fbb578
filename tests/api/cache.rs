//! Response caching (`litellm_settings.cache`): hits, keys, per-request controls, streams,
//! spend-log rows, the management routes, and a Redis cache shared by two gateways.

use crate::helpers::*;
use litellm_gateway::cache::key;
use serde_json::{json, Value};

fn cached_config(params: &str) -> String {
    format!(
        "model_list:\n  - model_name: m1\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {{MOCK}}\n      api_key: sk-upstream-key\nlitellm_settings:\n  num_retries: 0\n  cache: true\n  cache_params: {params}\ngeneral_settings:\n  master_key: {MASTER}\n"
    )
}

fn chat(content: &str) -> Value {
    json!({"model": "m1", "messages": [{"role": "user", "content": content}]})
}

fn cache_key(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("x-litellm-cache-key")
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn identical_calls_are_answered_from_the_cache_at_no_cost() {
    let mock = mock_upstream().await;
    let gw = gateway(&cached_config("{type: local}"), Some(&mock)).await;
    let key = gw.new_key(json!({"rpm_limit": 100})).await;

    let first = gw
        .post_as(&key, "/v1/chat/completions", chat("hello one"))
        .await;
    assert_eq!(first.status(), 200);
    assert_eq!(cache_key(&first), None, "no key header on a miss");
    assert!(header_f64(&first, "x-litellm-response-cost") > 0.0);
    let first: Value = first.json().await.unwrap();

    let second = gw
        .post_as(&key, "/v1/chat/completions", chat("hello one"))
        .await;
    assert_eq!(second.status(), 200);
    // LiteLLM's key for this request (read from LiteLLM 1.106.2's header for the same body).
    let want =
        key::hash("model: m1messages: [{'role': 'user', 'content': 'hello one'}]stream: False");
    assert_eq!(cache_key(&second).as_deref(), Some(want.as_str()));
    assert_eq!(header_f64(&second, "x-litellm-response-cost"), 0.0);
    assert!(second.headers().contains_key("x-litellm-model-id"));
    // A hit counts against the key's limits, as in LiteLLM.
    assert_eq!(
        second.headers()["x-ratelimit-api_key-remaining-requests"],
        "98"
    );
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second, "the stored answer, as it was");
    assert_eq!(mock.count(), 1, "one upstream call for two requests");

    let rows = gw.spend_logs(&key).await;
    assert_eq!(rows.len(), 2);
    let hit = rows
        .iter()
        .find(|r| r["cache_hit"] == "True")
        .expect("a hit row");
    let miss = rows
        .iter()
        .find(|r| r["cache_hit"] == "False")
        .expect("a miss row");
    assert_eq!(hit["spend"].as_f64(), Some(0.0));
    assert_eq!(hit["total_tokens"], miss["total_tokens"], "usage as stored");
    assert!(miss["spend"].as_f64().unwrap() > 0.0);
    for r in [hit, miss] {
        assert_eq!(r["cache_key"], json!(want));
    }

    // A different prompt, temperature or model name is another entry; metadata is not.
    gw.post_as(&key, "/v1/chat/completions", chat("hello two"))
        .await;
    let mut warmer = chat("hello one");
    warmer["temperature"] = json!(0.5);
    gw.post_as(&key, "/v1/chat/completions", warmer).await;
    assert_eq!(mock.count(), 3);
    let mut tagged = chat("hello one");
    tagged["metadata"] = json!({"a": 1});
    let r = gw.post_as(&key, "/v1/chat/completions", tagged).await;
    assert!(cache_key(&r).is_some());
    assert_eq!(mock.count(), 3);
}

#[tokio::test]
async fn request_controls_skip_the_lookup_the_write_or_old_entries() {
    let mock = mock_upstream().await;
    let gw = gateway(&cached_config("{type: local}"), Some(&mock)).await;
    let call = |body: Value| gw.post("/v1/chat/completions", body);
    let with = |content: &str, cache: Value| {
        let mut b = chat(content);
        b["cache"] = cache;
        b
    };

    call(chat("c1")).await;
    let r = call(with("c1", json!({"no-cache": true}))).await;
    assert_eq!(
        (cache_key(&r), mock.count()),
        (None, 2),
        "no-cache: looked up never"
    );
    assert!(cache_key(&call(chat("c1")).await).is_some(), "but written");

    call(with("c2", json!({"no-store": true}))).await;
    assert!(
        cache_key(&call(chat("c2")).await).is_none(),
        "no-store: not written"
    );
    assert_eq!(mock.count(), 4);

    let r = call(with("c1", json!({"s-maxage": 0}))).await;
    assert!(cache_key(&r).is_none(), "older than s-maxage: a miss");
    assert_eq!(mock.count(), 5);

    let mut off = chat("c1");
    off["caching"] = json!(false);
    assert!(
        cache_key(&call(off).await).is_none(),
        "caching: false skips the lookup"
    );

    call(with("c3", json!({"namespace": "team-a"}))).await;
    let r = call(with("c3", json!({"namespace": "team-a"}))).await;
    let plain = key::hash("model: m1messages: [{'role': 'user', 'content': 'c3'}]stream: False");
    assert_eq!(cache_key(&r), Some(format!("team-a:{plain}")));
    assert!(
        cache_key(&call(chat("c3")).await).is_none(),
        "another namespace, another entry"
    );

    let many: Vec<Value> = (0..5)
        .map(|i| json!({"role": "user", "content": format!("m{i}")}))
        .collect();
    let long = json!({"model": "m1", "messages": many});
    call(long.clone()).await;
    assert!(
        cache_key(&call(long).await).is_none(),
        "more than four messages: never cached"
    );
}

#[tokio::test]
async fn a_key_uses_only_the_cache_controls_it_is_allowed() {
    let mock = mock_upstream().await;
    let gw = gateway(&cached_config("{type: local}"), Some(&mock)).await;
    let limited = gw
        .new_key(json!({"allowed_cache_controls": ["no-cache"]}))
        .await;
    let info: Value = gw
        .get(&format!("/key/info?key={limited}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["info"]["allowed_cache_controls"], json!(["no-cache"]));
    let mut body = chat("k1");
    body["cache"] = json!({"no-store": true});
    let r = gw
        .post_as(&limited, "/v1/chat/completions", body.clone())
        .await;
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["message"],
        "Not allowed to set no-store as a cache control. Contact admin to change permissions."
    );
    assert_eq!(e["error"]["type"], "permission_error");
    assert_eq!(mock.count(), 0);
    body["cache"] = json!({"no-cache": true});
    assert_eq!(
        gw.post_as(&limited, "/v1/chat/completions", body.clone())
            .await
            .status(),
        200
    );
    // Keys without a list (and the master key) may use any control.
    let open = gw.new_key(json!({})).await;
    body["cache"] = json!({"no-store": true});
    assert_eq!(
        gw.post_as(&open, "/v1/chat/completions", body)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn default_off_caches_only_calls_that_opt_in() {
    let mock = mock_upstream().await;
    let gw = gateway(&cached_config("{mode: default_off}"), Some(&mock)).await;
    for _ in 0..2 {
        let mut b = chat("d1");
        b["caching"] = json!(true);
        assert!(cache_key(&gw.post("/v1/chat/completions", b).await).is_none());
    }
    let mut opted = chat("d1");
    opted["cache"] = json!({"use-cache": true});
    gw.post("/v1/chat/completions", opted.clone()).await;
    let r = gw.post("/v1/chat/completions", opted).await;
    assert!(cache_key(&r).is_some());
    assert_eq!(mock.count(), 3);
}

#[tokio::test]
async fn a_streamed_answer_is_stored_and_replayed_as_a_stream() {
    let mock = mock_upstream().await;
    let gw = gateway(&cached_config("{type: local}"), Some(&mock)).await;
    let mut body = chat("stream me");
    body["stream"] = json!(true);
    let first = gw.post_text("/v1/chat/completions", body.clone()).await;
    let text = |sse: &str| -> String {
        sse_data(sse)
            .iter()
            .filter(|d| *d != "[DONE]")
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(String::from)
            })
            .collect()
    };
    assert!(!text(&first).is_empty());

    body["stream_options"] = json!({"include_usage": true});
    let r = gw.post("/v1/chat/completions", body).await;
    assert_eq!(r.status(), 200);
    let want = key::hash("model: m1messages: [{'role': 'user', 'content': 'stream me'}]stream_options: {'include_usage': True}stream: True");
    assert_eq!(cache_key(&r).as_deref(), Some(want.as_str()));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let replay = r.text().await.unwrap();
    assert_eq!(
        mock.count(),
        1,
        "the stream was replayed, not requested again"
    );
    assert_eq!(text(&replay), text(&first), "the same text");
    let data = sse_data(&replay);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert!(
        usage["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "usage chunk as asked"
    );
    let first_chunk: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(first_chunk["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(first_chunk["model"], "m1");

    // A plain call with the same messages is another entry (LiteLLM keeps them apart).
    let r = gw.post("/v1/chat/completions", chat("stream me")).await;
    assert!(cache_key(&r).is_none());
    assert_eq!(mock.count(), 2);
}

#[tokio::test]
async fn cache_routes_report_the_cache_or_that_there_is_none() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &cached_config("{type: local, namespace: ns1, ttl: 5}"),
        Some(&mock),
    )
    .await;
    let r = gw.get("/cache/ping").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (&v["status"], &v["cache_type"]),
        (&json!("healthy"), &json!("local"))
    );
    let params: Value = serde_json::from_str(v["litellm_cache_params"].as_str().unwrap()).unwrap();
    assert_eq!(
        (&params["namespace"], &params["ttl"]),
        (&json!("ns1"), &json!(5))
    );
    let r = gw.get("/cache/redis/info").await;
    assert_eq!(r.status(), 503, "a local cache has no Redis to describe");
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("does not support redis info"));
    let r = gw.post("/cache/delete", json!({"keys": ["x"]})).await;
    assert_eq!(
        r.status(),
        500,
        "the local cache cannot delete (as in LiteLLM)"
    );
    let r = gw.post("/cache/flushall", json!({})).await;
    assert_eq!(r.status(), 503);
    let user_key = gw.new_key(json!({})).await;
    assert_eq!(gw.get_as(&user_key, "/cache/ping").await.status(), 401);
    assert_eq!(
        gw.get_as(&user_key, "/cache/redis/info").await.status(),
        401
    );

    let off = gateway(&config_for(&["m1"], ""), Some(&mock)).await;
    let r = off.get("/cache/ping").await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Cache not initialized"));
    assert_eq!(off.get("/cache/redis/info").await.status(), 503);
}

/// Two gateways on one Redis: an answer one stored is a hit on the other; `/cache/delete`
/// removes it from Redis.
#[tokio::test]
async fn replicas_share_answers_through_redis() {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!(
            "TEST_REDIS_URL not set: skipping the Redis cache test (the test command sets it)"
        );
        return;
    };
    let ns = format!("t{}", std::process::id());
    let params = format!("{{type: redis, url: \"{url}\", namespace: {ns}}}");
    let mock = mock_upstream().await;
    let a = gateway(&cached_config(&params), Some(&mock)).await;
    let b = gateway(&cached_config(&params), Some(&mock)).await;
    let c = gateway(&cached_config(&params), Some(&mock)).await;
    let mut ping = a.get("/cache/ping").await;
    for _ in 0..50 {
        if ping.status() == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        ping = a.get("/cache/ping").await;
    }
    let v: Value = ping.json().await.unwrap();
    assert_eq!(
        (&v["cache_type"], &v["ping_response"]),
        (&json!("redis"), &json!(true))
    );
    // The ping's test entry, stored as LiteLLM stores it.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let raw: String = redis::cmd("GET")
        .arg("86d4ac816220d30f86882fe349625d1b1a9a2b7b4821e2ae1c9e5ee050c5896a")
        .query_async(&mut conn)
        .await
        .unwrap();
    let entry: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(entry["response"], json!("test_key"));
    let r = a.get("/cache/redis/info").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let clients = v["clients"].as_array().unwrap();
    assert!(!clients.is_empty() && v["num_clients"] == json!(clients.len()));
    assert!(clients.iter().all(|c| c["id"].is_string()), "{clients:?}");
    assert!(v["info"]["redis_version"].is_string() && v["info"]["tcp_port"].is_u64());

    a.post("/v1/chat/completions", chat("shared")).await;
    // The Redis write runs behind the answer.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = b.post("/v1/chat/completions", chat("shared")).await;
    let hit = cache_key(&r);
    assert_eq!(mock.count(), 1);
    let k = hit.expect("replica b found replica a's answer in Redis");
    assert!(k.starts_with(&format!("{ns}:")));
    let upstream_calls = mock.count();
    let r = b.post("/cache/delete", json!({"keys": [k]})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "success"})
    );
    let r = c.post("/v1/chat/completions", chat("shared")).await;
    assert!(
        cache_key(&r).is_none(),
        "deleted from Redis: a fresh replica misses"
    );
    assert_eq!(mock.count(), upstream_calls + 1);
}

#[tokio::test]
async fn embeddings_are_cached_item_by_item() {
    let mock = mock_upstream().await;
    let yaml = format!(
        "model_list:\n  - model_name: emb\n    litellm_params:\n      model: openai/text-embedding-3-small\n      api_base: {{MOCK}}\n      api_key: sk-upstream-key\nlitellm_settings:\n  cache: true\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&yaml, Some(&mock)).await;
    let key = gw.new_key(json!({})).await;
    let embed = |input: Value| {
        gw.post_as(
            &key,
            "/v1/embeddings",
            json!({"model": "emb", "input": input}),
        )
    };

    let first: Value = embed(json!("alpha")).await.json().await.unwrap();
    let r = embed(json!("alpha")).await;
    assert_eq!(r.status(), 200);
    assert!(
        cache_key(&r).is_none(),
        "LiteLLM sends no key header for embeddings"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["data"], first["data"]);
    assert_eq!(mock.count(), 1);

    // Only the items not stored go upstream; the answer keeps the client's order.
    let r = embed(json!(["gamma", "alpha", "delta"])).await;
    assert_eq!(r.status(), 200);
    assert_eq!(mock.count(), 2);
    assert_eq!(mock.last().body["input"], json!(["gamma", "delta"]));
    let v: Value = r.json().await.unwrap();
    let indices: Vec<&Value> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["index"])
        .collect();
    assert_eq!(indices, vec![&json!(0), &json!(1), &json!(2)]);
    assert_eq!(v["model"], "emb");
    assert_eq!(
        v["usage"]["prompt_tokens"],
        json!(4 + 4),
        "fresh tokens plus the stored item's"
    );

    let r = embed(json!(["gamma", "alpha", "delta"])).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(mock.count(), 2, "every item stored");

    let rows = gw.spend_logs(&key).await;
    assert_eq!(rows.len(), 4);
    assert_eq!(rows.iter().filter(|r| r["cache_hit"] == "True").count(), 2);
}

/// With Redis unreachable, calls are served as usual and the in-process tier still answers
/// repeats; `/cache/ping` says the cache is unhealthy.
#[tokio::test]
async fn a_redis_cache_that_is_down_fails_no_call() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mock = mock_upstream().await;
    let gw = gateway(
        &cached_config(&format!("{{type: redis, host: 127.0.0.1, port: {closed}}}")),
        Some(&mock),
    )
    .await;
    let r = gw.post("/v1/chat/completions", chat("redis down")).await;
    assert_eq!(r.status(), 200);
    let r = gw.post("/v1/chat/completions", chat("redis down")).await;
    assert_eq!(r.status(), 200);
    assert!(cache_key(&r).is_some(), "served from the in-process tier");
    assert_eq!(mock.count(), 1);
    assert_eq!(gw.get("/cache/ping").await.status(), 503);
}

/// `router_settings.caching_groups`: model groups in one entry share answers.
#[tokio::test]
async fn caching_groups_share_answers() {
    let mock = mock_upstream().await;
    let yaml = cached_config("{type: local}").replace(
        "litellm_settings:",
        "  - model_name: m1-alias\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {MOCK}\n      api_key: sk-upstream-key\nrouter_settings:\n  caching_groups: [[m1, m1-alias]]\nlitellm_settings:",
    );
    let gw = gateway(&yaml, Some(&mock)).await;
    gw.post("/v1/chat/completions", chat("grouped")).await;
    let mut other = chat("grouped");
    other["model"] = json!("m1-alias");
    let r = gw.post("/v1/chat/completions", other).await;
    let want = key::hash(
        "model: ['m1', 'm1-alias']messages: [{'role': 'user', 'content': 'grouped'}]stream: False",
    );
    assert_eq!(cache_key(&r), Some(want));
    assert_eq!(mock.count(), 1);
    assert_eq!(r.json::<Value>().await.unwrap()["model"], "m1-alias");
}
