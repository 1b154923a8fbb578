//! A deliberately cheap OpenAI-shaped upstream for benchmarks.
//!
//! `POST /v1/chat/completions` answers a fixed completion, or, when the body contains
//! `"stream":true`, a fixed SSE stream (`--chunks N`, `--chunk-delay-ms D` between chunks).
//! `POST /v1/embeddings` answers a fixed vector. `POST /v1/messages` answers the same in
//! Anthropic's Messages format (events when streaming). A request for model `big-tool` streams
//! one tool call whose arguments are 1 MB: on `/v1/chat/completions` as a single SSE event
//! written in 1 KB pieces, on `/v1/messages` as 1,024 `input_json_delta` events. Everything else
//! is 404. TCP_NODELAY is on so small frames are not delayed.
//! Usage: `mock-upstream --port P [--chunks N] [--chunk-delay-ms D]`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;

const CHAT: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the bench upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}"#;
const EMB: &str = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}],"model":"bench-emb","usage":{"prompt_tokens":2,"total_tokens":2}}"#;

const MESSAGE: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"Hello from the bench upstream."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":7}}"#;

/// Size of the `big-tool` argument.
const BIG: usize = 1 << 20;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn arg(name: &str, default: u64) -> u64 {
    bench::arg(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn full(status: u16, ctype: &str, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = ctype.parse() {
        r.headers_mut().insert("content-type", v);
    }
    r
}

fn stream(chunks: u64, delay: Duration) -> Response<Body> {
    let frames = (0..chunks + 3).map(move |i| {
        let text = if i == 0 {
            r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"bench-model","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#.to_string() + "\n\n"
        } else if i <= chunks {
            format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench-model\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}}}}]}}\n\n")
        } else if i == chunks + 1 {
            r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"bench-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}"#.to_string() + "\n\n"
        } else {
            "data: [DONE]\n\n".to_string()
        };
        (i, text)
    });
    sse(frames, delay)
}

fn anthropic_event(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn anthropic_stream(chunks: u64, delay: Duration) -> Response<Body> {
    let frames = (0..chunks + 4).map(move |i| {
        let text = if i == 0 {
            anthropic_event("message_start", r#"{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":1}}}"#)
                + &anthropic_event("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
        } else if i <= chunks {
            anthropic_event("content_block_delta", &format!(r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"tok{i} "}}}}"#))
        } else if i == chunks + 1 {
            anthropic_event("content_block_stop", r#"{"type":"content_block_stop","index":0}"#)
        } else if i == chunks + 2 {
            anthropic_event("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}"#)
        } else {
            anthropic_event("message_stop", r#"{"type":"message_stop"}"#)
        };
        (i, text)
    });
    sse(frames, delay)
}

/// One tool call with a 1 MB argument: a single OpenAI chunk written in 1 KB pieces, or
/// 1,024 Anthropic `input_json_delta` events.
fn big_tool(anthropic: bool) -> Response<Body> {
    let piece = "a".repeat(1024);
    let frames: Vec<String> = if anthropic {
        let mut v = vec![
            anthropic_event(
                "message_start",
                r#"{"type":"message_start","message":{"id":"msg_big","type":"message","role":"assistant","model":"big-tool","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":1}}}"#,
            ),
            anthropic_event(
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_big","name":"store","input":{}}}"#,
            ),
            anthropic_event(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"data\":\""}}"#,
            ),
        ];
        for _ in 0..BIG / 1024 {
            v.push(anthropic_event("content_block_delta", &format!(r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"input_json_delta","partial_json":"{piece}"}}}}"#)));
        }
        v.push(anthropic_event("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"}"}}"#));
        v.push(anthropic_event(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ));
        v.push(anthropic_event("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":300000}}"#));
        v.push(anthropic_event(
            "message_stop",
            r#"{"type":"message_stop"}"#,
        ));
        v
    } else {
        let mut v = vec![r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"big-tool","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_big","type":"function","function":{"name":"store","arguments":"{\"data\":\""#.to_string()];
        for _ in 0..BIG / 1024 {
            v.push(piece.clone());
        }
        v.push(r#"\"}"}}]}}]}"#.to_string() + "\n\n");
        v.push(r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"big-tool","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":300000,"total_tokens":300009}}"#.to_string() + "\n\n");
        v.push("data: [DONE]\n\n".to_string());
        v
    };
    sse(
        frames.into_iter().enumerate().map(|(i, f)| (i as u64, f)),
        Duration::ZERO,
    )
}

fn sse(
    frames: impl Iterator<Item = (u64, String)> + Send + 'static,
    delay: Duration,
) -> Response<Body> {
    let mut r = Response::new(BodyExt::boxed(futures_lite(frames, delay)));
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    r
}

/// A minimal stream over the frames with an optional delay between them (no extra deps).
fn futures_lite(
    frames: impl Iterator<Item = (u64, String)> + Send + 'static,
    delay: Duration,
) -> impl hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    tokio::spawn(async move {
        for (i, f) in frames {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if tx.send(Bytes::from(f)).await.is_err() {
                return;
            }
        }
    });
    ChannelBody { rx }
}

struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

async fn handle(
    req: Request<Incoming>,
    chunks: u64,
    delay: Duration,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let streaming = body.windows(13).any(|w| w == b"\"stream\":true");
    let big = body.windows(18).any(|w| w == b"\"model\":\"big-tool\"");
    Ok(match path.as_str() {
        "/v1/chat/completions" if big => big_tool(false),
        "/v1/messages" if big => big_tool(true),
        "/v1/messages" if streaming => anthropic_stream(chunks, delay),
        "/v1/messages" => full(200, "application/json", MESSAGE),
        "/v1/chat/completions" if streaming => stream(chunks, delay),
        "/v1/chat/completions" => full(200, "application/json", CHAT),
        "/v1/embeddings" => full(200, "application/json", EMB),
        _ => full(
            404,
            "application/json",
            r#"{"error":{"message":"not found"}}"#,
        ),
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = arg("--port", 9100);
    let chunks = arg("--chunks", 20);
    let delay = Duration::from_millis(arg("--chunk-delay-ms", 0));
    let listener = TcpListener::bind(("127.0.0.1", port as u16)).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, chunks, delay));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
