//! Open-loop load at a fixed rate: request i is due at start + i/rate, whatever happened to the
//! ones before it (a slow answer does not slow the sender down). Latency counts from when the
//! request was sent; how late sends were against their due time is reported apart (the timer
//! wakes at millisecond granularity, which would otherwise add up to 1 ms to every figure).
//! Usage: `paced --url URL [--key K] [--rate 1000] [--secs 10] [--conns 32] [--model M]`.
//! Prints `sent ok errors p50_us p90_us p99_us max_us achieved_rps send_late_p99_us`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::arg;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn pct(v: &[u64], p: f64) -> u64 {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0)
}

/// Sends one request; `Some(latency in µs)` when it got a 200 and a whole body.
async fn one(client: &HttpClient, url: &str, key: &str, body: &Bytes) -> Option<u64> {
    let sent = Instant::now();
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(body.clone()))
        .ok()?;
    let resp = client.request(req).await.ok()?;
    let ok = resp.status() == 200;
    resp.into_body().collect().await.ok()?;
    ok.then(|| sent.elapsed().as_micros() as u64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = arg("--url").ok_or("--url is required")?;
    let key = arg("--key").unwrap_or_default();
    let rate: f64 = arg("--rate").and_then(|v| v.parse().ok()).unwrap_or(1000.0);
    let secs: f64 = arg("--secs").and_then(|v| v.parse().ok()).unwrap_or(10.0);
    let conns: usize = arg("--conns").and_then(|v| v.parse().ok()).unwrap_or(32);
    let model = arg("--model").unwrap_or_else(|| "bench-model".into());
    let body = Bytes::from(format!(
        r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#
    ));
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(conns)
        .build(connector);

    // Warm-up: open the connections and the gateway's caches; not counted.
    for _ in 0..200 {
        one(&client, &url, &key, &body).await;
    }

    let total = (rate * secs).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(10);
    let mut tasks = Vec::with_capacity(total);
    let mut late = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        late.push(due.elapsed().as_micros() as u64);
        // Never more than `conns` requests outstanding: beyond that the target is saturated
        // and the run is reported as such (errors), not queued without bound.
        if in_flight.load(Ordering::Relaxed) >= conns {
            tasks.push(None);
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (client, url, key, body, in_flight) = (
            client.clone(),
            url.clone(),
            key.clone(),
            body.clone(),
            in_flight.clone(),
        );
        tasks.push(Some(tokio::spawn(async move {
            let r = one(&client, &url, &key, &body).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            r
        })));
    }
    let mut lat = Vec::with_capacity(total);
    let mut errors = 0usize;
    for t in tasks {
        match t {
            Some(h) => match h.await.ok().flatten() {
                Some(us) => lat.push(us),
                None => errors += 1,
            },
            None => errors += 1,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    late.sort_unstable();
    println!(
        "{} {} {} {} {} {} {} {:.0} {}",
        total,
        lat.len(),
        errors,
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0),
        lat.len() as f64 / elapsed,
        pct(&late, 0.99)
    );
    Ok(())
}
