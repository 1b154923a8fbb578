//! Per-operation costs on the request path, measured in-process (no network but Redis):
//! the in-memory rate-limit check, the same check through Redis (one round trip), and picking
//! a deployment in a group of 50. Prints p50/p99 in microseconds.
//! Usage: `microbench [--redis redis://127.0.0.1:PORT] [--n 100000]`.

use litellm_gateway::config::load_str;
use litellm_gateway::ratelimit::{Acquired, Descriptor, FailMode, Limiter};
use litellm_gateway::redis::RedisHandle;
use litellm_gateway::routing::ModelRouter;
use std::time::{Duration, Instant};

use bench::arg;

fn report(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
    println!(
        "{name}: p50 {:.2} µs, p99 {:.2} µs ({} samples)",
        p(0.5),
        p(0.99),
        v.len()
    );
}

fn descs(i: usize) -> Vec<Descriptor> {
    vec![
        Descriptor {
            scope: "api_key",
            id: format!("k{}", i % 100),
            rpm: Some(u64::MAX / 2),
            tpm: Some(u64::MAX / 2),
            max_parallel: Some(1_000_000),
        },
        Descriptor {
            scope: "global",
            id: "max_parallel_requests".into(),
            rpm: None,
            tpm: None,
            max_parallel: Some(1_000_000),
        },
    ]
}

async fn limiter_bench(name: &str, l: std::sync::Arc<Limiter>, n: usize) {
    let mut t = Vec::with_capacity(n);
    for i in 0..n + 1000 {
        let d = descs(i);
        let start = Instant::now();
        match l.acquire(d, 100).await {
            Ok(Acquired::Ok(p, _)) => p.settle(80),
            _ => std::process::exit(1),
        }
        if i >= 1000 {
            t.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    report(name, t);
}

#[tokio::main]
async fn main() {
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(100_000);
    limiter_bench(
        "rate-limit check, in memory (2 descriptors, acquire + settle)",
        Limiter::in_memory(Duration::from_secs(60)),
        n,
    )
    .await;
    if let Some(url) = arg("--redis") {
        let h = RedisHandle::connect(&url).expect("redis url");
        h.connect_now().await.expect("redis connect");
        let l = Limiter::with_redis(h, Duration::from_secs(60), FailMode::Closed);
        limiter_bench(
            "rate-limit check, Redis (one script call)",
            l,
            n.min(20_000),
        )
        .await;
    }
    for strategy in [
        "simple-shuffle",
        "least-busy",
        "usage-based-routing-v2",
        "latency-based-routing",
        "cost-based-routing",
    ] {
        let mut yaml = String::from("model_list:\n");
        for i in 0..50 {
            yaml.push_str(&format!("  - model_name: g\n    litellm_params: {{model: openai/m{i}, api_key: k, weight: {}, rpm: 1000000000}}\n", 1 + i % 3));
        }
        yaml.push_str(&format!(
            "router_settings:\n  routing_strategy: {strategy}\n"
        ));
        let router = ModelRouter::from_config(&load_str(&yaml, "bench.yaml").expect("config"))
            .expect("router");
        let mut t = Vec::with_capacity(n);
        for i in 0..n + 1000 {
            let start = Instant::now();
            let r = router.resolve("g").expect("group");
            let d = r.group.pick(&[]).expect("deployment");
            std::hint::black_box(d);
            if i >= 1000 {
                t.push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
        report(&format!("resolve + pick, 50 deployments, {strategy}"), t);
    }
}
