//! Rate limiting through a real Redis: shared counters across limiter instances (replicas),
//! and the fail-open / fail-closed modes when Redis dies and comes back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use litellm_gateway::ratelimit::{Acquired, Descriptor, FailMode, Limiter};
use litellm_gateway::redis::RedisHandle;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn redis_url() -> Option<String> {
    let u = std::env::var("TEST_REDIS_URL").ok();
    if u.is_none() {
        eprintln!(
            "TEST_REDIS_URL not set: skipping Redis rate-limit test (the test command sets it)"
        );
    }
    u
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

async fn limiter(url: &str, mode: FailMode) -> Arc<Limiter> {
    let h = RedisHandle::connect(url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.connect_now().await.is_err() {
        assert!(Instant::now() < deadline, "cannot connect to {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Limiter::with_redis(h, Duration::from_secs(60), mode)
}

#[tokio::test]
async fn replicas_share_one_rpm_budget_exactly() {
    let Some(url) = redis_url() else { return };
    let a = limiter(&url, FailMode::Closed).await;
    let b = limiter(&url, FailMode::Closed).await;
    let d = Descriptor {
        scope: "api_key",
        id: unique("k"),
        rpm: Some(20),
        tpm: None,
        max_parallel: None,
    };
    let mut tasks = Vec::new();
    for i in 0..60 {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            matches!(l.acquire(vec![d], 0).await.unwrap(), Acquired::Ok(..))
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() {
            ok += 1;
        }
    }
    assert_eq!(
        ok, 20,
        "exactly rpm_limit requests may pass across replicas"
    );
}

#[tokio::test]
async fn parallel_and_tokens_reconcile_in_redis() {
    let Some(url) = redis_url() else { return };
    let l = limiter(&url, FailMode::Closed).await;
    let d = Descriptor {
        scope: "user",
        id: unique("u"),
        rpm: None,
        tpm: Some(100),
        max_parallel: Some(1),
    };
    let p = match l.acquire(vec![d.clone()], 80).await.unwrap() {
        Acquired::Ok(p, u) => {
            assert_eq!(u.counts, vec![(0, 80)]);
            p
        }
        Acquired::Refused(e) => panic!("{e:?}"),
    };
    assert!(matches!(
        l.acquire(vec![d.clone()], 0).await.unwrap(),
        Acquired::Refused(_)
    ));
    p.settle(10);
    // Release runs in the background; wait for it.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Acquired::Ok(_, u) = l.acquire(vec![d.clone()], 0).await.unwrap() {
            assert_eq!(u.counts, vec![(0, 10)]);
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: u16) -> Option<Self> {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port })
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn survives_restart(mode: FailMode) {
    if redis_url().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(server) = OwnRedis::start(port) else {
        eprintln!("redis-server not available: skipping");
        return;
    };
    let l = limiter(&format!("redis://127.0.0.1:{}", server.port), mode).await;
    let d = Descriptor {
        scope: "api_key",
        id: unique("k"),
        rpm: Some(1000),
        tpm: None,
        max_parallel: None,
    };
    assert!(matches!(
        l.acquire(vec![d.clone()], 0).await.unwrap(),
        Acquired::Ok(..)
    ));
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = l.acquire(vec![d.clone()], 0).await;
    match mode {
        FailMode::Open => {
            assert!(matches!(r, Ok(Acquired::Ok(..))));
            assert!(l.fail_open_total() >= 1);
        }
        FailMode::Closed => {
            let e = r
                .err()
                .expect("fail-closed must refuse while Redis is down");
            assert_eq!(e.status(), 503);
        }
    }
    let _server = OwnRedis::start(port).expect("restart redis");
    let deadline = Instant::now() + Duration::from_secs(10);
    let before = l.fail_open_total();
    loop {
        if let Ok(Acquired::Ok(..)) = l.acquire(vec![d.clone()], 0).await {
            if mode == FailMode::Closed || l.fail_open_total() == before {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "limiter did not recover after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn fail_open_then_recover() {
    survives_restart(FailMode::Open).await;
}

#[tokio::test]
async fn fail_closed_then_recover() {
    survives_restart(FailMode::Closed).await;
}

/// Two replicas' cooldown trackers on one Redis: a deployment one replica cools down is
/// skipped by the other within the sync interval.
#[tokio::test]
async fn replicas_share_cooldowns() {
    use litellm_gateway::error::{ApiError, ErrorClass};
    use litellm_gateway::routing::cooldown::{CooldownSettings, Cooldowns};
    let Some(url) = redis_url() else { return };
    let id = unique("dep");
    let settings = CooldownSettings::from_maps(&serde_json::Map::new(), &serde_json::Map::new());
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let h = litellm_gateway::redis::RedisHandle::connect(&url).unwrap();
        h.connect_now().await.unwrap();
        replicas.push(Cooldowns::new(settings.clone(), Some(h), vec![id.clone()]));
    }
    let e = ApiError::new(ErrorClass::RateLimit, "429").with_retry_after(5);
    replicas[0].record_failure(&id, 2, &e).await;
    assert!(replicas[0].remaining(&id).is_some());
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while replicas[1].remaining(&id).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "replica 2 never saw the cooldown"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = replicas[1].remaining(&id).unwrap();
    assert!(
        left > Duration::from_secs(3) && left <= Duration::from_secs(5),
        "{left:?}"
    );

    // Server errors are counted in Redis: two replicas' failures add up to the threshold.
    let id2 = unique("dep");
    let e500 = ApiError::new(ErrorClass::Internal, "500");
    for r in &replicas {
        r.record_failure(&id2, 2, &e500).await;
        r.record_failure(&id2, 2, &e500).await;
    }
    assert!(
        replicas[1].remaining(&id2).is_some(),
        "four failures across replicas exceed allowed_fails (3)"
    );
}
