//! Test harness: a scriptable OpenAI-compatible mock upstream and a gateway spawned in-process
//! on 127.0.0.1:0, each test with its own instances (tests run in parallel).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use litellm_gateway::config::load_str;
use litellm_gateway::{start, AppState, BuildOptions};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body's bytes as received.
    pub raw: Bytes,
}

#[derive(Default)]
pub struct MockState {
    pub requests: Mutex<Vec<Recorded>>,
    /// Streams whose body was dropped before finishing (client went away).
    pub cancelled: AtomicUsize,
    /// Streams that ran to completion.
    pub finished: AtomicUsize,
    /// TCP connections accepted.
    pub connections: AtomicUsize,
}

pub struct MockUpstream {
    pub addr: SocketAddr,
    pub state: Arc<MockState>,
}

impl MockUpstream {
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
    pub fn last(&self) -> Recorded {
        self.state
            .requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no request reached the mock")
    }
    pub fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }
    /// Streams cancelled so far, once at least one is or `wait` has passed.
    pub async fn cancelled_within(&self, wait: Duration) -> usize {
        let deadline = std::time::Instant::now() + wait;
        while self.state.cancelled.load(Ordering::SeqCst) == 0
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.state.cancelled.load(Ordering::SeqCst)
    }
}

/// Starts the mock. Behaviour is chosen by the `model` the gateway sends upstream:
/// `err-<status>` answers that status with an OpenAI error body; `content-filter` a content
/// policy error; `ctx-overflow` a context
/// window error; `slow` sleeps 3 s; `drip` streams 100 chunks 50 ms apart; `linger` streams one
/// chunk and `data: [DONE]` but never ends its body; otherwise a normal completion (or stream
/// when `stream: true`).
pub async fn mock_upstream() -> MockUpstream {
    serve_mock(|state| {
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .route("/openai/deployments/{dep}/chat/completions", post(chat))
            .route("/openai/deployments/{dep}/embeddings", post(embeddings))
            .with_state(state)
    })
    .await
}

/// Serves a scripted mock (built around its recording state) on a random loopback port.
pub async fn serve_mock(app: impl FnOnce(Arc<MockState>) -> Router) -> MockUpstream {
    let state = Arc::new(MockState::default());
    let app = app(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counted = state.clone();
    let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
        counted.connections.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    MockUpstream { addr, state }
}

/// Records a request the mock received; returns its JSON body (`null` if not JSON).
pub fn record(state: &MockState, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    state.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_string(),
        query: uri.query().map(String::from),
        headers: headers.clone(),
        body: v.clone(),
        raw: body.clone(),
    });
    v
}

fn error_response(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap();
    (
        code,
        [("content-type", "application/json"), ("retry-after", "1")],
        json!({"error": {"message": format!("mock failure {status}"), "type": "mock_error", "param": null, "code": null}}).to_string(),
    )
        .into_response()
}

struct DropGuard {
    state: Arc<MockState>,
    done: bool,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if self.done {
            self.state.finished.fetch_add(1, Ordering::SeqCst);
        } else {
            self.state.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn chunk(id: &str, model: &str, delta: Value, finish: Value) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": id, "object": "chat.completion.chunk", "created": 1, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

async fn chat(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(&state, &uri, &headers, &body);
    let model = v["model"].as_str().unwrap_or("").to_string();
    if let Some(code) = model.strip_prefix("err-") {
        return error_response(code.parse().unwrap_or(500));
    }
    if model == "content-filter" {
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            json!({"error": {"message": "The response was filtered due to the prompt triggering content management policy.", "type": "invalid_request_error", "param": "prompt", "code": "content_filter"}}).to_string(),
        )
            .into_response();
    }
    if model == "ctx-overflow" {
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            json!({"error": {"message": "This model's maximum context length is 8192 tokens.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}).to_string(),
        )
            .into_response();
    }
    if model == "slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let stream = v["stream"].as_bool().unwrap_or(false);
    if !stream {
        let mut r = (
            StatusCode::OK,
            [("content-type", "application/json"), ("x-ratelimit-remaining-requests", "42")],
            json!({"id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": model,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from upstream"}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})
            .to_string(),
        )
            .into_response();
        r.headers_mut()
            .insert("x-upstream-marker", "m1".parse().unwrap());
        return r;
    }
    if model == "stall" {
        // One chunk, then nothing: neither more data nor the end of the body.
        let first = chunk("c1", &model, json!({"content": "hi"}), Value::Null);
        let s = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(first))])
            .chain(futures::stream::pending());
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(s))
            .unwrap();
    }
    if model == "linger" {
        let guard = DropGuard {
            state: state.clone(),
            done: false,
        };
        let events = [
            chunk("c1", &model, json!({"content": "hi"}), json!("stop")),
            "data: [DONE]\n\n".to_string(),
        ];
        let s = futures::stream::iter(events.map(|e| Ok::<_, std::io::Error>(Bytes::from(e))))
            .chain(futures::stream::pending())
            // The body owns the guard: dropped before its end, it counts as cancelled.
            .map(move |e| {
                let _ = &guard;
                e
            });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(s))
            .unwrap();
    }
    let include_usage = v["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let (n, gap) = match model.as_str() {
        "drip" => (100, Duration::from_millis(50)),
        "trickle" => (10, Duration::from_millis(60)),
        _ => (3, Duration::ZERO),
    };
    let st = state.clone();
    let s = async_stream(n, gap, model, include_usage, st);
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(s))
        .unwrap()
}

fn async_stream(
    n: usize,
    gap: Duration,
    model: String,
    include_usage: bool,
    state: Arc<MockState>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let guard = DropGuard { state, done: false };
    futures::stream::unfold((0usize, guard), move |(i, mut guard)| {
        let model = model.clone();
        async move {
            if i > n + 2 {
                return None;
            }
            if i == n + 2 {
                guard.done = true;
            }
            if i > 0 && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            let text = if i == 0 {
                chunk(
                    "c1",
                    &model,
                    json!({"role": "assistant", "content": ""}),
                    Value::Null,
                )
            } else if i <= n {
                chunk(
                    "c1",
                    &model,
                    json!({"content": format!("t{i} ")}),
                    Value::Null,
                )
            } else if i == n + 1 {
                let mut s = chunk("c1", &model, json!({}), json!("stop"));
                if include_usage {
                    s.push_str(&format!(
                        "data: {}\n\n",
                        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [],
                               "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}})
                    ));
                }
                s
            } else {
                "data: [DONE]\n\n".to_string()
            };
            Some((Ok(Bytes::from(text)), (i + 1, guard)))
        }
    })
}

async fn embeddings(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(&state, &uri, &headers, &body);
    let model = v["model"].as_str().unwrap_or("");
    if let Some(code) = model.strip_prefix("err-") {
        return error_response(code.parse().unwrap_or(500));
    }
    let n = v["input"].as_array().map(|a| a.len()).unwrap_or(1);
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 4, "total_tokens": 4}})).into_response()
}

pub struct Gateway {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub const MASTER: &str = "sk-test-master-key-0001";

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.post_as(MASTER, path, body).await
    }
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(MASTER, path).await
    }
    /// `POST` as the master key and read the whole answer as text (a stream to its end).
    pub async fn post_text(&self, path: &str, body: Value) -> String {
        self.post(path, body).await.text().await.unwrap()
    }
    /// `POST` with `key` as the bearer token.
    pub async fn post_as(&self, key: &str, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
    /// Mints a virtual key with the master key; returns the key.
    pub async fn new_key(&self, body: Value) -> String {
        let r = self.post("/key/generate", body).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["key"].as_str().unwrap().to_string()
    }
    /// `GET` with no key at all, read as JSON (public routes).
    pub async fn get_public_json(&self, path: &str) -> Value {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        r.json().await.unwrap()
    }
    /// The spend-log rows of a key (`/spend/logs?api_key=`), once the spend writer has flushed.
    pub async fn spend_logs(&self, key: &str) -> Vec<Value> {
        self.state.spend.flush().await;
        let v: Value = self
            .get(&format!("/spend/logs?api_key={key}"))
            .await
            .json()
            .await
            .unwrap();
        match v {
            Value::Array(rows) => rows,
            other => panic!("/spend/logs answered {other}"),
        }
    }
    /// `GET` with `key` as the bearer token.
    pub async fn get_as(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }
}

/// Spawns the gateway on a config; `{MOCK}` in the YAML is replaced by the mock's base URL.
pub async fn gateway(yaml: &str, mock: Option<&MockUpstream>) -> Gateway {
    let yaml = match mock {
        Some(m) => yaml
            .replace("{MOCK}", &m.base())
            .replace("{MOCK_ROOT}", &format!("http://{}", m.addr)),
        None => yaml.to_string(),
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("litellm.db");
    spawn_gateway(&yaml, &db, dir).await
}

/// A gateway whose embedded store is the given file (replicas sharing a database).
pub async fn gateway_with_db(yaml: &str, db: &std::path::Path) -> Gateway {
    spawn_gateway(yaml, db, tempfile::tempdir().unwrap()).await
}

async fn spawn_gateway(yaml: &str, db: &std::path::Path, dir: tempfile::TempDir) -> Gateway {
    let loaded = load_str(yaml, "test.yaml").unwrap();
    let opts = BuildOptions {
        sqlite_path: Some(db.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let state = AppState::build(loaded, opts).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, stop, _join) = start(state.clone(), listener).await.unwrap();
    Gateway {
        addr,
        client: reqwest::Client::new(),
        state,
        _dir: dir,
        _stop: stop,
    }
}

/// A config with one OpenAI-compatible deployment per upstream model name, each its own group.
pub fn config_for(models: &[&str], extra: &str) -> String {
    let mut s = String::from("model_list:\n");
    for m in models {
        s.push_str(&format!(
            "  - model_name: {m}\n    litellm_params:\n      model: openai/{m}\n      api_base: {{MOCK}}\n      api_key: sk-upstream-key\n      timeout: 1.5\n"
        ));
    }
    // Retries are tested on their own (tests/api/retries.rs); here each error must surface as is.
    s.push_str("litellm_settings:\n  num_retries: 0\n");
    s.push_str(&format!("general_settings:\n  master_key: {MASTER}\n"));
    s.push_str(extra);
    s
}

/// A response header read as a number (`x-litellm-response-cost`, ...).
pub fn header_f64(r: &reqwest::Response, name: &str) -> f64 {
    r.headers()[name].to_str().unwrap().parse().unwrap()
}

pub fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// Parses an SSE body into its `data:` payloads.
pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: ").map(String::from))
        .collect()
}
