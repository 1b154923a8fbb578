//! Graceful shutdown of the real binary: SIGTERM stops new connections while an in-flight
//! stream runs to its end, then the process exits 0.

use crate::helpers::*;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn sigterm_drains_in_flight_streams() {
    let mock = mock_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        config_for(&["drip"], "")
            .replace("{MOCK}", &mock.base())
            .replace("timeout: 1.5", "timeout: 30"),
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_litellm"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .env("LITELLM_SQLITE_PATH", dir.path().join("l.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if client
            .get(format!("{base}/health/liveliness"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut b = chat_body("drip");
    b["stream"] = json!(true);
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reader = tokio::spawn(async move { resp.text().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the stream drains.
    let fresh = reqwest::Client::new()
        .get(format!("{base}/health/liveliness"))
        .send()
        .await;
    assert!(fresh.is_err(), "listener still accepting after SIGTERM");
    let text = tokio::time::timeout(Duration::from_secs(15), reader)
        .await
        .unwrap()
        .unwrap();
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "stream was cut: ...{}",
        &text[text.len().saturating_sub(200)..]
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}
