//! Anthropic upstreams and the `/v1/messages` endpoint, over real HTTP: an Anthropic-speaking
//! mock (Messages API, SSE events, Anthropic error envelopes) behind the gateway.

use crate::helpers::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Starts an Anthropic mock. By upstream model: `err-<status>` answers an Anthropic error;
/// `tool` answers with a tool call; `midstream-error` streams then sends an `error` event;
/// otherwise text. `/v1/messages/count_tokens` answers 42.
async fn anthropic_mock() -> MockUpstream {
    serve_mock(|state| {
        Router::new()
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .with_state(state)
    })
    .await
}

async fn count_tokens(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &uri, &headers, &body);
    axum::Json(json!({"input_tokens": 42})).into_response()
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

async fn messages(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(&state, &uri, &headers, &body);
    let model = v["model"].as_str().unwrap_or("").to_string();
    if let Some(code) = model.strip_prefix("err-") {
        let status: u16 = code.parse().unwrap();
        let (kind, msg) = match status {
            400 => (
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
            ),
            401 => ("authentication_error", "invalid x-api-key"),
            429 => (
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
            _ => ("overloaded_error", "Overloaded"),
        };
        return (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            json!({"type": "error", "error": {"type": kind, "message": msg}}).to_string(),
        )
            .into_response();
    }
    let usage = json!({"input_tokens": 11, "cache_read_input_tokens": 4, "output_tokens": 6});
    if v["stream"] != json!(true) {
        let content = if model == "tool" {
            json!([{"type": "text", "text": "Let me look."},
                   {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Paris"}}])
        } else {
            json!([{"type": "text", "text": "Hello from Claude"}])
        };
        let stop = if model == "tool" {
            "tool_use"
        } else {
            "end_turn"
        };
        return axum::Json(
            json!({"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage}),
        )
        .into_response();
    }
    let mut s = String::new();
    s += &event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message",
        "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 11, "cache_read_input_tokens": 4, "output_tokens": 1}}}),
    );
    s += &event("ping", json!({"type": "ping"}));
    s += &event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    for t in ["Hello", " from", " Claude"] {
        s += &event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}),
        );
    }
    s += &event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    if model == "midstream-error" {
        s += &event(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
    } else {
        let mut stop = "end_turn";
        if model == "tool" {
            stop = "tool_use";
            s += &event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {}}}),
            );
            for part in ["{\"city\":", " \"Paris\"}"] {
                s += &event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": part}}),
                );
            }
            s += &event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            );
        }
        s += &event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 6}}),
        );
        s += &event("message_stop", json!({"type": "message_stop"}));
    }
    ([("content-type", "text/event-stream")], s).into_response()
}

fn config(mock: &MockUpstream, openai: Option<&MockUpstream>, extra: &str) -> String {
    let a = mock.addr;
    let mut s = String::from("model_list:\n");
    for (name, model, base) in [
        ("claude", "claude-haiku-4-5", format!("http://{a}")),
        ("claude-tool", "tool", format!("http://{a}")),
        ("claude-err-429", "err-429", format!("http://{a}")),
        ("claude-err-400", "err-400", format!("http://{a}/v1")),
        ("claude-err-529", "err-529", format!("http://{a}")),
        ("claude-midstream", "midstream-error", format!("http://{a}")),
    ] {
        s += &format!("  - model_name: {name}\n    litellm_params: {{model: anthropic/{model}, api_base: '{base}', api_key: sk-ant-test, timeout: 5}}\n");
    }
    s += "  - model_name: demo\n    litellm_params: {model: openai/demo, mock_response: 'Hi from the mock'}\n";
    if let Some(o) = openai {
        s += &format!(
            "  - model_name: gpt\n    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: sk-up}}\n",
            o.base()
        );
    }
    s += &format!(
        "litellm_settings:\n  num_retries: 0\n{extra}general_settings:\n  master_key: {MASTER}\n"
    );
    s
}

#[tokio::test]
async fn openai_chat_reaches_anthropic_translated_and_comes_back_openai_shaped() {
    let mock = anthropic_mock().await;
    let gw = gateway(&config(&mock, None, ""), None).await;
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "claude", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"}], "temperature": 0.2, "top_k": 5}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let cost = r.headers()["x-litellm-response-cost"]
        .to_str()
        .unwrap()
        .to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "claude");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from Claude");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 15);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    assert!(
        cost.parse::<f64>().unwrap() > 0.0,
        "claude-haiku-4-5 is priced: {cost}"
    );
    let up = mock.last();
    assert_eq!(up.path, "/v1/messages");
    assert_eq!(up.headers["x-api-key"], "sk-ant-test");
    assert_eq!(up.headers["anthropic-version"], "2023-06-01");
    assert!(up.headers.get("authorization").is_none());
    assert_eq!(up.body["model"], "claude-haiku-4-5");
    assert_eq!(
        up.body["system"],
        json!([{"type": "text", "text": "be brief"}])
    );
    assert_eq!(up.body["max_tokens"], 4096);
    assert_eq!(up.body["top_k"], 5);
    assert_eq!(
        up.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    );
}

#[tokio::test]
async fn anthropic_tool_calls_and_streams_map_to_openai() {
    let mock = anthropic_mock().await;
    let gw = gateway(&config(&mock, None, ""), None).await;
    let tools = json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let v: Value = gw
        .post("/v1/chat/completions", json!({"model": "claude-tool", "messages": [{"role": "user", "content": "weather?"}], "tools": tools, "tool_choice": "required"}))
        .await
        .json()
        .await
        .unwrap();
    let msg = &v["choices"][0]["message"];
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(msg["tool_calls"][0]["id"], "toolu_01");
    assert_eq!(
        msg["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(mock.last().body["tool_choice"], json!({"type": "any"}));
    assert_eq!(
        mock.last().body["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );

    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "claude-tool", "messages": [{"role": "user", "content": "weather?"}],
            "tools": tools, "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello from Claude");
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"city\": \"Paris\"}");
    assert!(chunks.iter().all(|c| c["model"] == "claude-tool"));
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(15), Some(6))
    );
    assert_eq!(mock.last().body["stream"], true);
    assert!(mock.last().body.get("stream_options").is_none());
    // Each upstream stream is read to its end, so one keep-alive connection served them all.
    for _ in 0..3 {
        let body = json!({"model": "claude-tool", "messages": [{"role": "user", "content": "hi"}], "stream": true});
        let text = gw.post_text("/v1/chat/completions", body).await;
        assert_eq!(sse_data(&text).last().unwrap(), "[DONE]");
    }
    assert_eq!(mock.state.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn anthropic_errors_map_to_openai_statuses_and_params_policy_applies() {
    let mock = anthropic_mock().await;
    let gw = gateway(&config(&mock, None, ""), None).await;
    let cases = [
        ("claude-err-429", 429, "RateLimitError"),
        ("claude-err-400", 400, "ContextWindowExceededError"),
        ("claude-err-529", 503, "ServiceUnavailableError"),
    ];
    for (model, status, class) in cases {
        let r = gw.post("/v1/chat/completions", chat_body(model)).await;
        assert_eq!(r.status(), status, "{model}");
        let v: Value = r.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(class) && msg.contains("AnthropicException"),
            "{model}: {msg}"
        );
    }
    // An `/v1`-suffixed api_base reaches the same path.
    assert_eq!(mock.last().path, "/v1/messages");

    let mut body = chat_body("claude");
    body["logit_bias"] = json!({"1": 2});
    let r = gw.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not support parameters: ['logit_bias']"),
        "{v}"
    );
    body["drop_params"] = json!(true);
    let r = gw.post("/v1/chat/completions", body).await;
    assert_eq!(r.status(), 200);
    assert!(mock.last().body.get("logit_bias").is_none());

    // A failure inside the stream after the first event becomes a final error event.
    let r = gw
        .post("/v1/chat/completions", json!({"model": "claude-midstream", "messages": [{"role": "user", "content": "x"}], "stream": true}))
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("Hello") && text.contains("\"error\"") && text.contains("Overloaded"),
        "{text}"
    );
}

#[tokio::test]
async fn messages_endpoint_passes_through_to_anthropic_and_accounts_spend() {
    let mock = anthropic_mock().await;
    let gw = gateway(&config(&mock, None, ""), None).await;
    let body = json!({"model": "claude", "max_tokens": 100, "metadata": {"user_id": "u-7"},
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}]});
    let r = gw
        .client
        .post(gw.url("/v1/messages"))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(header_f64(&r, "x-litellm-response-cost") > 0.0);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "claude");
    assert_eq!(v["content"][0]["text"], "Hello from Claude");
    assert_eq!(v["usage"]["cache_read_input_tokens"], 4);
    let up = mock.last();
    // Forwarded as sent: system blocks with cache_control, Anthropic's metadata, the beta header.
    assert_eq!(up.body["system"], body["system"]);
    assert_eq!(up.body["metadata"], json!({"user_id": "u-7"}));
    assert_eq!(up.body["messages"], body["messages"]);
    assert_eq!(up.body["model"], "claude-haiku-4-5");
    assert_eq!(up.headers["anthropic-beta"], "prompt-caching-2024-07-31");

    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let r = gw.post("/v1/messages", sbody).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert!(
        text.contains("event: ping")
            && text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{text}"
    );
    assert!(!text.contains("[DONE]"));

    gw.state.spend.flush().await;
    let logs: Value = gw.get("/spend/logs").await.json().await.unwrap();
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 2, "{logs:?}");
    for l in logs {
        assert_eq!(l["call_type"], "anthropic_messages");
        assert_eq!(l["prompt_tokens"], 15, "{l}");
        assert_eq!(l["completion_tokens"], 6, "{l}");
    }
}

#[tokio::test]
async fn messages_endpoint_translates_for_openai_deployments_and_mocks() {
    let mock = anthropic_mock().await;
    let openai = mock_upstream().await;
    let gw = gateway(&config(&mock, Some(&openai), ""), None).await;
    let r = gw
        .post(
            "/v1/messages",
            json!({"model": "gpt", "max_tokens": 50, "system": "sys", "stop_sequences": ["X"],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "gpt");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let up = openai.last();
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(
        up.body["messages"],
        json!([{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}])
    );
    assert_eq!(up.body["stop"], json!(["X"]));
    assert_eq!(up.body["max_tokens"], 50);

    let r = gw
        .post("/v1/messages", json!({"model": "gpt", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    assert!(names.contains(&"content_block_delta"), "{text}");

    for stream in [false, true] {
        let r = gw
            .post("/v1/messages", json!({"model": "demo", "max_tokens": 5, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains("Hi from the mock"), "{text}");
    }

    // count_tokens: Anthropic deployments ask Anthropic; others are estimated.
    let v: Value = gw
        .post(
            "/v1/messages/count_tokens",
            json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"input_tokens": 42}));
    assert_eq!(mock.last().path, "/v1/messages/count_tokens");
    assert_eq!(mock.last().body["model"], "claude-haiku-4-5");
    let v: Value = gw
        .post(
            "/v1/messages/count_tokens",
            json!({"model": "gpt", "messages": [{"role": "user", "content": "hello there"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() > 0);

    // Bad input is an OpenAI-shaped 400 naming the field; unknown models list what exists.
    let r = gw
        .post("/v1/messages", json!({"model": "gpt", "messages": "hi"}))
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "messages");
    let r = gw
        .post("/v1/messages", json!({"model": "nope", "messages": []}))
        .await;
    assert_eq!(r.status(), 400);
    // Without a key: 401.
    let r = gw
        .client
        .post(gw.url("/v1/messages"))
        .json(&json!({"model": "gpt", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
