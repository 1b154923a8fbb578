//! Proxy-wide concurrency limits through the real HTTP stack, in memory and shared through
//! Redis by two gateway instances.

use crate::helpers::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn open_stream(gw: &Gateway) -> reqwest::Response {
    let mut b = chat_body("drip");
    b["stream"] = json!(true);
    gw.post("/v1/chat/completions", b).await
}

async fn wait_until_ok(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = gw.post("/v1/chat/completions", chat_body("drip")).await;
        if r.status() == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "slot was not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn max_parallel_requests_counts_streams_until_they_end() {
    let mock = mock_upstream().await;
    let gw = gateway(
        &config_for(&["drip"], "  max_parallel_requests: 2\n")
            .replace("timeout: 1.5", "timeout: 30"),
        Some(&mock),
    )
    .await;
    let a = open_stream(&gw).await;
    let b = open_stream(&gw).await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let r = gw.post("/v1/chat/completions", chat_body("drip")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["rate_limit_type"], "max_parallel_requests");
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "429");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Rate limit exceeded for global: max_parallel_requests."));
    // A client that walks away frees its slot.
    let mut s = a.bytes_stream();
    let _ = s.next().await;
    drop(s);
    wait_until_ok(&gw).await;
    drop(b);
}

#[tokio::test]
async fn parallel_limit_is_shared_by_replicas_through_redis() {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("TEST_REDIS_URL not set: skipping (the test command sets it)");
        return;
    };
    let mock = mock_upstream().await;
    // Only this test uses `global_max_parallel_requests`, so its Redis counter is its own.
    let cfg = config_for(
        &["drip"],
        &format!("  global_max_parallel_requests: 2\nrouter_settings:\n  redis_url: {url}\n"),
    )
    .replace("timeout: 1.5", "timeout: 30");
    let g1 = gateway(&cfg, Some(&mock)).await;
    let g2 = gateway(&cfg, Some(&mock)).await;
    // Give both instances time to connect to Redis.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = open_stream(&g1).await;
    let b = open_stream(&g2).await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let r1 = g1.post("/v1/chat/completions", chat_body("drip")).await;
    let r2 = g2.post("/v1/chat/completions", chat_body("drip")).await;
    assert_eq!((r1.status().as_u16(), r2.status().as_u16()), (429, 429));
    drop(a);
    drop(b);
    wait_until_ok(&g1).await;
}

#[tokio::test]
async fn key_rpm_limit_is_exact_across_two_replicas_sharing_redis() {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("TEST_REDIS_URL not set: skipping (the test command sets it)");
        return;
    };
    // Both replicas share one key store (the same database file) and one Redis.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let cfg = format!(
        "model_list:\n  - model_name: demo\n    litellm_params: {{model: openai/gpt-4o, mock_response: hi}}\ngeneral_settings:\n  master_key: {MASTER}\nrouter_settings:\n  redis_url: {url}\n"
    );
    let g1 = gateway_with_db(&cfg, &db).await;
    let g2 = gateway_with_db(&cfg, &db).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = 10;
    let k: Value = g1
        .post("/key/generate", json!({"rpm_limit": n}))
        .await
        .json()
        .await
        .unwrap();
    let key = k["key"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..3 * n {
        let (client, url) = if i % 2 == 0 {
            (g1.client.clone(), g1.url("/v1/chat/completions"))
        } else {
            (g2.client.clone(), g2.url("/v1/chat/completions"))
        };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&chat_body("demo"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => limited += 1,
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(
        (ok, limited),
        (n, 2 * n),
        "exactly rpm_limit requests succeed across replicas"
    );
}

/// A `max_tokens` as large as a JSON integer goes is reserved against a key's TPM limit without
/// overflowing: each call is answered, and the reservation is handed back when it settles, so
/// the next one is admitted too.
#[tokio::test]
async fn huge_max_tokens_reserves_without_overflow() {
    let gw = gateway(&crate::keys::keys_config(None), None).await;
    let k: Value = gw
        .post("/key/generate", json!({"tpm_limit": 1000}))
        .await
        .json()
        .await
        .unwrap();
    let key = k["key"].as_str().unwrap();
    for max in [u64::MAX, 1 << 63, (1 << 63) - 1, 1 << 53] {
        let mut b = chat_body("gpt-4o");
        b["max_tokens"] = json!(max);
        let r = gw.post_as(key, "/v1/chat/completions", b).await;
        assert_eq!(r.status(), 200, "max_tokens {max}");
    }
}
