//! Native (non-OpenAI) providers end to end over real HTTP: one mock speaking Gemini, Vertex AI
//! (with its OAuth2 token endpoint), Bedrock Converse (SigV4-signed, binary event streams),
//! Cohere v2 and Ollama (NDJSON), each called through the gateway's OpenAI API.

use crate::helpers::*;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use litellm_gateway::providers::aws::encode_message;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

async fn native_mock() -> MockUpstream {
    serve_mock(|state| {
        Router::new()
            .route("/v1beta/models/{*rest}", post(gemini))
            .route("/v1/projects/{*rest}", post(gemini))
            .route("/token", post(token))
            .route("/model/{id}/{op}", post(bedrock))
            .route("/v2/chat", post(cohere))
            .route("/v2/embed", post(cohere_embed))
            .route("/v2/rerank", post(cohere_rerank))
            .route("/api/chat", post(ollama))
            .route("/api/generate", post(ollama))
            .route("/api/embed", post(ollama_embed))
            .with_state(state)
    })
    .await
}

fn sse(events: &[Value]) -> Response {
    let body: String = events
        .iter()
        .map(|e| format!("data: {e}\r\n\r\n"))
        .collect();
    ([("content-type", "text/event-stream")], body).into_response()
}

async fn token(
    State(s): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.finished.fetch_add(1, Ordering::SeqCst); // counts token grants
    let form = String::from_utf8_lossy(&body).to_string();
    record(
        &s,
        &uri,
        &headers,
        &Bytes::from(json!({"form": form}).to_string()),
    );
    axum::Json(
        json!({"access_token": "vertex-token-1", "expires_in": 3600, "token_type": "Bearer"}),
    )
    .into_response()
}

async fn gemini(
    State(s): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&s, &uri, &headers, &body);
    let path = uri.path();
    if path.starts_with("/v1/projects")
        && headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some("Bearer vertex-token-1")
    {
        return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}))).into_response();
    }
    if path.contains("err-429") {
        return (axum::http::StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}))).into_response();
    }
    if path.ends_with(":predict") {
        return axum::Json(json!({"predictions": [{"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": 2}}}]})).into_response();
    }
    if path.ends_with(":rawPredict") {
        return axum::Json(json!({"id": "msg_v", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": "Hello from Claude on Vertex"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 4}})).into_response();
    }
    if path.ends_with(":streamRawPredict") {
        let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let body = ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_v", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ) + &ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ) + &ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello from Claude on Vertex"}}),
        ) + &ev(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}}),
        ) + &ev("message_stop", json!({"type": "message_stop"}));
        return ([("content-type", "text/event-stream")], body).into_response();
    }
    if path.ends_with(":batchEmbedContents") {
        return axum::Json(json!({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]}))
            .into_response();
    }
    let usage = json!({"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10});
    if path.ends_with(":streamGenerateContent") {
        return sse(&[
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello"}]}}], "modelVersion": "gemini-2.5-flash"}),
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": " from Gemini"}]}, "finishReason": "STOP"}], "usageMetadata": usage}),
        ]);
    }
    axum::Json(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello from Gemini"}]}, "finishReason": "STOP"}],
        "usageMetadata": usage, "modelVersion": "gemini-2.5-flash"}))
    .into_response()
}

async fn bedrock(
    State(s): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&s, &uri, &headers, &body);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
        || !auth.contains("/us-west-2/bedrock/aws4_request")
    {
        return (
            axum::http::StatusCode::FORBIDDEN,
            axum::Json(
                json!({"message": "The security token included in the request is invalid."}),
            ),
        )
            .into_response();
    }
    if uri.path().contains("err-429") {
        return (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [("x-amzn-errortype", "ThrottlingException")],
            axum::Json(json!({"message": "Too many requests, please wait before trying again."})),
        )
            .into_response();
    }
    if uri.path().ends_with("/converse-stream") {
        let ev = |t: &str, p: Value| {
            encode_message(
                &[
                    (":event-type", t),
                    (":content-type", "application/json"),
                    (":message-type", "event"),
                ],
                p.to_string().as_bytes(),
            )
        };
        let mut out = Vec::new();
        out.extend(ev("messageStart", json!({"role": "assistant"})));
        out.extend(ev(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
        ));
        out.extend(ev(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": " from Bedrock"}}),
        ));
        out.extend(ev("contentBlockStop", json!({"contentBlockIndex": 0})));
        out.extend(ev("messageStop", json!({"stopReason": "end_turn"})));
        out.extend(ev("metadata", json!({"usage": {"inputTokens": 8, "outputTokens": 4, "totalTokens": 12}, "metrics": {"latencyMs": 10}})));
        // Awkward reads: the gateway must reassemble frames split anywhere.
        let chunks: Vec<Result<Bytes, std::io::Error>> = out
            .chunks(13)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        return (
            [("content-type", "application/vnd.amazon.eventstream")],
            axum::body::Body::from_stream(futures::stream::iter(chunks)),
        )
            .into_response();
    }
    if uri.path().ends_with("/invoke") {
        return axum::Json(json!({"embedding": [0.5, 0.25], "inputTextTokenCount": 3}))
            .into_response();
    }
    axum::Json(json!({"output": {"message": {"role": "assistant", "content": [{"text": "Hello from Bedrock"}]}}, "stopReason": "end_turn",
        "usage": {"inputTokens": 8, "outputTokens": 4, "totalTokens": 12}})).into_response()
}

async fn cohere(
    State(s): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(&s, &uri, &headers, &body);
    if v["stream"] == json!(true) {
        let events = [
            json!({"type": "message-start", "id": "co-1", "delta": {"message": {"role": "assistant"}}}),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hello"}}}}),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " from Cohere"}}}}),
            json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"tokens": {"input_tokens": 6, "output_tokens": 3}}}}),
        ];
        let body: String = events
            .iter()
            .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
            .collect();
        return ([("content-type", "text/event-stream")], body).into_response();
    }
    axum::Json(json!({"id": "co-1", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello from Cohere"}]},
        "usage": {"billed_units": {"input_tokens": 6, "output_tokens": 3}, "tokens": {"input_tokens": 6, "output_tokens": 3}}})).into_response()
}

async fn cohere_embed(
    State(s): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&s, &uri, &headers, &body);
    axum::Json(json!({"id": "e", "embeddings": {"float": [[0.1, 0.2]]}, "texts": ["hi"], "meta": {"billed_units": {"input_tokens": 1}}})).into_response()
}

async fn cohere_rerank(
    State(s): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&s, &uri, &headers, &body);
    axum::Json(json!({"id": "rr", "results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}],
        "meta": {"billed_units": {"search_units": 1}}})).into_response()
}

async fn ollama(
    State(s): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(&s, &uri, &headers, &body);
    let chat = uri.path() == "/api/chat";
    let piece = |text: &str, done: bool| {
        let mut o = if chat {
            json!({"model": "llama3", "message": {"role": "assistant", "content": text}, "done": done})
        } else {
            json!({"model": "llama3", "response": text, "done": done})
        };
        if done {
            o["done_reason"] = json!("stop");
            o["prompt_eval_count"] = json!(5);
            o["eval_count"] = json!(2);
        }
        o
    };
    if v["stream"] == json!(true) {
        let lines = format!(
            "{}\n{}\n{}\n",
            piece("Hello", false),
            piece(" from Ollama", false),
            piece("", true)
        );
        // One line split across reads.
        let (a, b) = lines.split_at(10);
        let parts: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(a.to_string())),
            Ok(Bytes::from(b.to_string())),
        ];
        return (
            [("content-type", "application/x-ndjson")],
            axum::body::Body::from_stream(futures::stream::iter(parts)),
        )
            .into_response();
    }
    axum::Json(piece("Hello from Ollama", true)).into_response()
}

async fn ollama_embed(
    State(s): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&s, &uri, &headers, &body);
    axum::Json(json!({"model": "nomic", "embeddings": [[0.1, 0.2, 0.3]], "prompt_eval_count": 2}))
        .into_response()
}

fn service_account(mock: &MockUpstream, dir: &std::path::Path) -> std::path::PathBuf {
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-rsa-key.pem"
    ))
    .unwrap();
    let sa = json!({"type": "service_account", "project_id": "proj-from-key", "private_key_id": "k1", "private_key": key,
        "client_email": "gw@proj.iam.gserviceaccount.com", "token_uri": format!("http://{}/token", mock.addr)});
    let path = dir.join("sa.json");
    std::fs::write(&path, sa.to_string()).unwrap();
    path
}

fn config(mock: &MockUpstream, sa: &std::path::Path) -> String {
    let a = mock.addr;
    format!(
        "model_list:
  - model_name: gemini
    litellm_params: {{model: gemini/gemini-2.5-flash, api_key: g-key, api_base: 'http://{a}'}}
  - model_name: gemini-err
    litellm_params: {{model: gemini/err-429, api_key: g-key, api_base: 'http://{a}'}}
  - model_name: gemini-emb
    litellm_params: {{model: gemini/text-embedding-004, api_key: g-key, api_base: 'http://{a}'}}
    model_info: {{mode: embedding}}
  - model_name: vertex
    litellm_params: {{model: vertex_ai/gemini-2.5-pro, vertex_project: my-proj, vertex_location: europe-west4, vertex_credentials: '{sa}', api_base: 'http://{a}'}}
  - model_name: vertex-claude
    litellm_params: {{model: vertex_ai/claude-haiku-4-5@20251001, vertex_project: my-proj, vertex_location: us-east5, vertex_credentials: '{sa}', api_base: 'http://{a}'}}
  - model_name: vertex-emb
    litellm_params: {{model: vertex_ai/text-embedding-005, vertex_project: my-proj, vertex_credentials: '{sa}', api_base: 'http://{a}'}}
    model_info: {{mode: embedding}}
  - model_name: cohere-rerank
    litellm_params: {{model: cohere/rerank-v3.5, api_key: co-key, api_base: 'http://{a}'}}
  - model_name: bedrock
    litellm_params: {{model: bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0, aws_access_key_id: AKIDTEST, aws_secret_access_key: secret, aws_region_name: us-west-2, aws_bedrock_runtime_endpoint: 'http://{a}'}}
  - model_name: bedrock-err
    litellm_params: {{model: bedrock/err-429, aws_access_key_id: AKIDTEST, aws_secret_access_key: secret, aws_region_name: us-west-2, aws_bedrock_runtime_endpoint: 'http://{a}'}}
  - model_name: bedrock-badcreds
    litellm_params: {{model: bedrock/amazon.nova-lite-v1:0, aws_access_key_id: AKIDWRONG, aws_secret_access_key: secret, aws_region_name: us-west-2, aws_bedrock_runtime_endpoint: 'http://{a}'}}
  - model_name: titan
    litellm_params: {{model: bedrock/amazon.titan-embed-text-v2:0, aws_access_key_id: AKIDTEST, aws_secret_access_key: secret, aws_region_name: us-west-2, aws_bedrock_runtime_endpoint: 'http://{a}'}}
    model_info: {{mode: embedding}}
  - model_name: cohere
    litellm_params: {{model: cohere/command-r-plus, api_key: co-key, api_base: 'http://{a}'}}
  - model_name: cohere-emb
    litellm_params: {{model: cohere/embed-english-v3.0, api_key: co-key, api_base: 'http://{a}'}}
    model_info: {{mode: embedding}}
  - model_name: ollama-chat
    litellm_params: {{model: ollama_chat/llama3, api_base: 'http://{a}'}}
  - model_name: ollama
    litellm_params: {{model: ollama/llama3, api_base: 'http://{a}'}}
  - model_name: ollama-emb
    litellm_params: {{model: ollama/nomic-embed-text, api_base: 'http://{a}'}}
    model_info: {{mode: embedding}}
litellm_settings:
  num_retries: 0
general_settings:
  master_key: {MASTER}
",
        sa = sa.display()
    )
}

async fn chat_text(gw: &Gateway, model: &str) -> (Value, String) {
    let r = gw.post("/v1/chat/completions", json!({"model": model, "max_tokens": 20, "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status(), 200, "{model}");
    let v: Value = r.json().await.unwrap();
    let r = gw
        .post("/v1/chat/completions", json!({"model": model, "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 200, "{model} stream");
    let text = r.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "{model}: {text}"
    );
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        chunks.iter().all(|c| c["model"] == model),
        "{model}: {text}"
    );
    let usage = chunks
        .iter()
        .rev()
        .find(|c| c["usage"].is_object())
        .map(|c| c["usage"].clone())
        .unwrap_or_default();
    assert!(
        usage["total_tokens"].as_u64().unwrap_or(0) > 0,
        "{model} stream usage: {text}"
    );
    (v, streamed)
}

#[tokio::test]
async fn every_native_provider_answers_openai_shaped_streaming_and_not() {
    let mock = native_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let sa = service_account(&mock, dir.path());
    let gw = gateway(&config(&mock, &sa), None).await;
    for (model, text) in [
        ("gemini", "Hello from Gemini"),
        ("vertex", "Hello from Gemini"),
        ("vertex-claude", "Hello from Claude on Vertex"),
        ("bedrock", "Hello from Bedrock"),
        ("cohere", "Hello from Cohere"),
        ("ollama-chat", "Hello from Ollama"),
        ("ollama", "Hello from Ollama"),
    ] {
        let (v, streamed) = chat_text(&gw, model).await;
        assert_eq!(v["object"], "chat.completion", "{model}");
        assert_eq!(v["model"], model);
        assert_eq!(v["choices"][0]["message"]["content"], text, "{model}: {v}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{model}");
        assert!(
            v["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
            "{model}: {v}"
        );
        assert_eq!(streamed, text, "{model}");
    }
    let reqs = mock.state.requests.lock().unwrap().clone();
    let find = |p: &str| {
        reqs.iter()
            .find(|r| r.path.contains(p))
            .unwrap_or_else(|| panic!("no request to {p}"))
            .clone()
    };
    // Gemini: key in the query, system instruction, maxOutputTokens.
    let g = find("/v1beta/models/gemini-2.5-flash:generateContent");
    assert!(g.query.as_deref().unwrap().contains("key=g-key"));
    assert_eq!(g.body["systemInstruction"]["parts"][0]["text"], "be brief");
    assert_eq!(g.body["generationConfig"]["maxOutputTokens"], 20);
    assert!(find(":streamGenerateContent")
        .query
        .unwrap()
        .contains("alt=sse"));
    // Vertex: project/location in the path, bearer token from one JWT grant.
    let v = find("/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent");
    assert_eq!(v.headers["authorization"], "Bearer vertex-token-1");
    let grant = find("/token");
    let form = grant.body["form"].as_str().unwrap();
    assert!(
        form.starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
        ),
        "{form}"
    );
    assert_eq!(
        mock.state.finished.load(Ordering::SeqCst),
        1,
        "the access token is cached"
    );
    // Bedrock: model id encoded in the path, SigV4-signed, Converse body.
    let b = find("/converse");
    assert_eq!(
        b.path,
        "/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/converse"
    );
    assert!(b.headers.contains_key("x-amz-date"));
    assert_eq!(b.body["system"], json!([{"text": "be brief"}]));
    assert_eq!(b.body["inferenceConfig"]["maxTokens"], 20);
    // Cohere v2 with a bearer key; Ollama always says whether to stream.
    let c = find("/v2/chat");
    assert_eq!(c.headers["authorization"], "Bearer co-key");
    let o = find("/api/chat");
    assert_eq!(o.body["stream"], false);
    assert_eq!(o.body["options"]["num_predict"], 20);
    assert!(find("/api/generate").body["prompt"]
        .as_str()
        .unwrap()
        .contains("hi"));
}

#[tokio::test]
async fn native_embeddings_and_errors() {
    let mock = native_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let sa = service_account(&mock, dir.path());
    let gw = gateway(&config(&mock, &sa), None).await;
    for (model, input, n) in [
        ("gemini-emb", json!(["a", "b"]), 2),
        ("titan", json!("a"), 1),
        ("cohere-emb", json!(["hi"]), 1),
        ("ollama-emb", json!("hi"), 1),
    ] {
        let r = gw
            .post("/v1/embeddings", json!({"model": model, "input": input}))
            .await;
        assert_eq!(r.status(), 200, "{model}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["object"], "list", "{model}: {v}");
        assert_eq!(v["model"], model);
        assert_eq!(v["data"].as_array().unwrap().len(), n, "{model}: {v}");
        assert!(v["data"][0]["embedding"].is_array(), "{model}: {v}");
    }
    for (model, status, class, label) in [
        ("gemini-err", 429, "RateLimitError", "GeminiException"),
        ("bedrock-err", 429, "RateLimitError", "BedrockException"),
        (
            "bedrock-badcreds",
            403,
            "PermissionDeniedError",
            "BedrockException",
        ),
    ] {
        let r = gw.post("/v1/chat/completions", chat_body(model)).await;
        assert_eq!(r.status(), status, "{model}");
        let v: Value = r.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(class) && msg.contains(label), "{model}: {msg}");
    }
    // Unsupported OpenAI params are refused with their names, or dropped on request.
    let mut body = chat_body("cohere");
    body["logit_bias"] = json!({"1": 1});
    let r = gw.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(r.status(), 400);
    body["drop_params"] = json!(true);
    assert_eq!(gw.post("/v1/chat/completions", body).await.status(), 200);
    // Cohere rerank, with the documents attached when asked for.
    let r = gw
        .post("/v1/rerank", json!({"model": "cohere-rerank", "query": "which?", "documents": ["doc a", "doc b"], "top_n": 2, "return_documents": true}))
        .await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["results"][0]["index"], 1, "{v}");
    assert_eq!(v["results"][0]["document"]["text"], "doc b", "{v}");
    let up = mock.last();
    assert_eq!(up.path, "/v2/rerank");
    assert_eq!(up.body["query"], "which?");
    let r = gw
        .post("/rerank", json!({"model": "cohere-rerank", "query": "x"}))
        .await;
    assert_eq!(r.status(), 400, "documents are required");
    // Chat-only providers say so for embeddings.
    let r = gw
        .post("/v1/embeddings", json!({"model": "bedrock", "input": "x"}))
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn vertex_credential_problems_are_reported_on_the_request() {
    let mock = native_mock().await;
    let cfg = format!(
        "model_list:\n  - model_name: v\n    litellm_params: {{model: vertex_ai/gemini-2.5-pro, vertex_project: p, vertex_credentials: /nonexistent/sa.json, api_base: 'http://{}'}}\ngeneral_settings:\n  master_key: {MASTER}\n",
        mock.addr
    );
    let gw = gateway(&cfg, None).await;
    let r = gw.post("/v1/chat/completions", chat_body("v")).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot read vertex credentials file /nonexistent/sa.json"),
        "{v}"
    );
    assert_eq!(mock.count(), 0);
}
