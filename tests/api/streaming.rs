use crate::helpers::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A mock upstream, a gateway serving `model` from it, and a streaming request body for it.
async fn streaming_to(model: &str) -> (MockUpstream, Gateway, Value) {
    let mock = mock_upstream().await;
    let gw = gateway(&config_for(&[model], ""), Some(&mock)).await;
    let mut b = chat_body(model);
    b["stream"] = json!(true);
    (mock, gw, b)
}

#[tokio::test]
async fn stream_is_reframed_with_done_and_hides_usage_unless_asked() {
    let (mock, gw, mut b) = streaming_to("gpt-4o").await;
    let r = gw.post("/v1/chat/completions", b.clone()).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    let events = sse_data(&text);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["model"] == "gpt-4o"));
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "{text}");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "t1 t2 t3 ");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    // The gateway always asks upstream for usage (for spend), whatever the client asked.
    assert_eq!(mock.last().body["stream_options"]["include_usage"], true);

    b["stream_options"] = json!({"include_usage": true});
    let text = gw.post_text("/v1/chat/completions", b).await;
    let events = sse_data(&text);
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 8);
}

#[tokio::test]
async fn streams_read_to_the_end_reuse_the_upstream_connection() {
    let (mock, gw, mut b) = streaming_to("gpt-4o").await;
    for _ in 0..5 {
        let text = gw.post_text("/v1/chat/completions", b.clone()).await;
        assert_eq!(sse_data(&text).last().unwrap(), "[DONE]");
    }
    b["stream"] = json!(false);
    assert_eq!(gw.post("/v1/chat/completions", b).await.status(), 200);
    // The upstream body is read past `data: [DONE]` to its end, so its keep-alive connection
    // serves the next call instead of being closed and a new one opened each time.
    assert_eq!(mock.count(), 6);
    assert_eq!(mock.state.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_upstream_body_left_open_after_done_is_dropped_soon() {
    let (mock, gw, b) = streaming_to("linger").await;
    let start = Instant::now();
    let text = gw.post_text("/v1/chat/completions", b).await;
    // The client's stream ends cleanly once the drain bound (1 s) has passed, not at the
    // deployment's timeout, and the upstream connection that never finished its body is closed.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(sse_data(&text).last().unwrap(), "[DONE]");
    assert!(!text.contains("error"), "{text}");
    assert_eq!(mock.cancelled_within(Duration::from_secs(3)).await, 1);
}

#[tokio::test]
async fn chunks_are_forwarded_as_they_arrive() {
    let (_mock, gw, b) = streaming_to("drip").await;
    let start = Instant::now();
    let r = gw.post("/v1/chat/completions", b).await;
    assert_eq!(r.status(), 200);
    let mut s = r.bytes_stream();
    let mut seen = 0;
    while let Some(c) = s.next().await {
        seen += String::from_utf8_lossy(&c.unwrap())
            .matches("data: ")
            .count();
        if seen >= 3 {
            break;
        }
    }
    // 100 chunks 50 ms apart take 5 s upstream; the first few must arrive long before that.
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request() {
    let (mock, gw, b) = streaming_to("drip").await;
    let r = gw.post("/v1/chat/completions", b).await;
    let mut s = r.bytes_stream();
    let _ = s.next().await;
    drop(s);
    assert_eq!(
        mock.cancelled_within(Duration::from_secs(3)).await,
        1,
        "upstream stream was not cancelled"
    );
    assert_eq!(mock.state.finished.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn stream_errors_before_first_event_are_json_errors() {
    let (_mock, gw, b) = streaming_to("err-429").await;
    let r = gw.post("/v1/chat/completions", b).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "429");
}

#[tokio::test]
async fn mock_response_streams() {
    let yaml = format!(
        "model_list:\n  - model_name: demo\n    litellm_params: {{model: openai/gpt-4o, mock_response: 'streamed hello'}}\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let gw = gateway(&yaml, None).await;
    let mut b = chat_body("demo");
    b["stream"] = json!(true);
    b["stream_options"] = json!({"include_usage": true});
    let text = gw.post_text("/v1/chat/completions", b).await;
    let events = sse_data(&text);
    assert_eq!(events.len(), 4, "{text}");
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["choices"][0]["delta"]["content"], "streamed hello");
    let usage: Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(usage["usage"]["total_tokens"], 30);
}

#[tokio::test]
async fn stream_timeout_is_the_longest_silence_not_the_whole_stream() {
    let mock = mock_upstream().await;
    let gw = gateway(&config_for(&["stall", "trickle"], ""), Some(&mock)).await;
    // Chunks 60 ms apart for about 0.7 s, under a 0.25 s stream timeout: it runs to its end.
    let mut b = chat_body("trickle");
    b["stream"] = json!(true);
    b["stream_timeout"] = json!(0.25);
    let text = gw.post_text("/v1/chat/completions", b).await;
    let events = sse_data(&text);
    assert_eq!(events.last().unwrap(), "[DONE]", "{text}");
    assert_eq!(events.len(), 13, "{text}");

    // One chunk, then silence: the stream ends with a timeout error soon after the limit.
    let mut b = chat_body("stall");
    b["stream"] = json!(true);
    b["stream_timeout"] = json!(0.3);
    let t = Instant::now();
    let r = gw.post("/v1/chat/completions", b).await;
    assert_eq!(r.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(5), r.text())
        .await
        .expect("the stalled stream was not ended")
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(text.contains("\"content\":\"hi\""), "{text}");
    assert!(text.contains("litellm.Timeout"), "{text}");
}
