//! Time to first token through a proxy: N sequential streaming requests at concurrency 1,
//! timing the first body bytes (the first SSE event) and the whole stream.
//! Usage: `ttft --url http://127.0.0.1:P/v1/chat/completions [--key K] [--n 500] [--model M]`.
//! Prints `ttft_p50_ms ttft_p99_ms total_p50_ms total_p99_ms`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Instant;

use bench::arg;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = arg("--url").ok_or("--url is required")?;
    let key = arg("--key").unwrap_or_default();
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(500);
    let model = arg("--model").unwrap_or_else(|| "bench-model".into());
    let body = format!(
        r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let (mut ttft, mut total) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + 20 {
        let req = hyper::Request::post(url.as_str())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .body(Full::new(Bytes::from(body.clone())))?;
        let start = Instant::now();
        let mut resp = client.request(req).await?;
        let mut first = None;
        while let Some(frame) = resp.body_mut().frame().await {
            if frame?.data_ref().is_some_and(|d| !d.is_empty()) && first.is_none() {
                first = Some(start.elapsed());
            }
        }
        // The first 20 requests warm the connection pools and are not counted.
        if i >= 20 {
            ttft.push(first.unwrap_or_default().as_secs_f64() * 1000.0);
            total.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    println!(
        "{:.3} {:.3} {:.3} {:.3}",
        pct(&mut ttft, 0.5),
        pct(&mut ttft, 0.99),
        pct(&mut total, 0.5),
        pct(&mut total, 0.99)
    );
    Ok(())
}
