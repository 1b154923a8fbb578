//! `/audio/transcriptions` and `/images/edits` over real HTTP: multipart forms read within
//! `max_request_size_mb`, forwarded as multipart forms (the files as sent, the text fields,
//! `model` set to the upstream's name) to OpenAI, Azure's deployment URLs and compatible
//! providers; answered in LiteLLM's shapes; priced per second of audio, by token usage or
//! per image; logged under LiteLLM's call types; mocked offline; refused with LiteLLM's
//! statuses when the form, the model or the provider does not do.

use crate::helpers::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use std::sync::Arc;

/// One part of a form as a mock upstream received it.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Bytes,
}

impl Received {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.data).unwrap()
    }
}

/// The parts of a multipart body (panics if it is not one).
async fn parts_of(headers: &HeaderMap, body: Bytes) -> Vec<Received> {
    let ct = headers["content-type"].to_str().unwrap();
    let boundary = multer::parse_boundary(ct).unwrap();
    let input = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut form = multer::Multipart::new(input, boundary);
    let mut out = Vec::new();
    while let Some(f) = form.next_field().await.unwrap() {
        out.push(Received {
            name: f.name().unwrap_or_default().to_string(),
            filename: f.file_name().map(String::from),
            content_type: f.content_type().map(ToString::to_string),
            data: f.bytes().await.unwrap(),
        });
    }
    out
}

fn field<'a>(parts: &'a [Received], name: &str) -> Option<&'a str> {
    parts
        .iter()
        .find(|p| p.name == name && p.filename.is_none())
        .map(Received::text)
}

fn names(parts: &[Received]) -> Vec<&str> {
    parts.iter().map(|p| p.name.as_str()).collect()
}

async fn last_form(mock: &MockUpstream) -> (Recorded, Vec<Received>) {
    let rec = mock.last();
    let parts = parts_of(&rec.headers, rec.raw.clone()).await;
    (rec, parts)
}

fn upstream_error(model: &str) -> Option<Response> {
    let code: u16 = model.strip_prefix("err-")?.parse().ok()?;
    Some(
        (
            StatusCode::from_u16(code).ok()?,
            [("content-type", "application/json")],
            json!({"error": {"message": format!("mock failure {code}"), "type": "mock_error", "param": null, "code": null}}).to_string(),
        )
            .into_response(),
    )
}

/// Transcriptions as OpenAI answers them, by model and `response_format`: whisper's
/// `verbose_json` carries the duration (12.5 s, whatever the file), its `json` only the text
/// and a duration usage, `text`/`srt` are plain text; gpt-4o-transcribe reports tokens.
async fn transcriptions(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &uri, &headers, &body);
    let parts = parts_of(&headers, body).await;
    let model = field(&parts, "model").unwrap_or("").to_string();
    if let Some(e) = upstream_error(&model) {
        return e;
    }
    if model.starts_with("gpt-4o") {
        return axum::Json(json!({
            "text": "hello world", "logprobs": null,
            "usage": {"type": "tokens", "input_tokens": 120, "output_tokens": 30, "total_tokens": 150,
                      "input_token_details": {"audio_tokens": 100, "text_tokens": 20}}
        }))
        .into_response();
    }
    match field(&parts, "response_format") {
        Some("verbose_json") => axum::Json(json!({
            "task": "transcribe", "language": "english", "duration": 12.5, "text": "hello world",
            "segments": [{"id": 0, "start": 0.0, "end": 12.5, "text": "hello world"}],
            "usage": {"type": "duration", "seconds": 13}, "x_extra": 1
        }))
        .into_response(),
        Some("text") => ([("content-type", "text/plain")], "hello world\n").into_response(),
        Some("srt") => (
            [("content-type", "text/plain")],
            "1\n00:00:00,000 --> 00:00:07,250\nhello world\n\n",
        )
            .into_response(),
        _ => axum::Json(json!({"text": "hello world"})).into_response(),
    }
}

/// Image edits: as many images as `n` asks; gpt-image models add their token usage.
async fn edits(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &uri, &headers, &body);
    let parts = parts_of(&headers, body).await;
    let model = field(&parts, "model").unwrap_or("").to_string();
    if let Some(e) = upstream_error(&model) {
        return e;
    }
    let n: usize = field(&parts, "n").and_then(|n| n.parse().ok()).unwrap_or(1);
    let data: Vec<Value> = (0..n)
        .map(|_| json!({"b64_json": "iVBORw0KGgo="}))
        .collect();
    axum::Json(json!({
        "created": 1, "data": data, "size": "1024x1024", "quality": "medium",
        "usage": {"input_tokens": 50, "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
                  "output_tokens": 1056, "total_tokens": 1106}
    }))
    .into_response()
}

async fn form_mock() -> MockUpstream {
    serve_mock(|state| {
        Router::new()
            .route("/v1/audio/transcriptions", post(transcriptions))
            .route(
                "/openai/deployments/{dep}/audio/transcriptions",
                post(transcriptions),
            )
            .route("/v1/images/edits", post(edits))
            .route("/openai/deployments/{dep}/images/edits", post(edits))
            .with_state(state)
    })
    .await
}

fn config(extra: &str) -> String {
    format!(
        r#"model_list:
  - model_name: whisper
    litellm_params: {{model: openai/whisper-1, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: az-whisper
    litellm_params: {{model: azure/whisper-1, api_base: '{{MOCK_ROOT}}', api_key: az-key, api_version: '2024-06-01'}}
  - model_name: groq-whisper
    litellm_params: {{model: groq/whisper-large-v3, api_base: '{{MOCK}}', api_key: gsk-up}}
  - model_name: transcribe
    litellm_params: {{model: openai/gpt-4o-transcribe, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: whisper-down
    litellm_params: {{model: openai/err-503, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: gpt-image
    litellm_params: {{model: openai/gpt-image-1, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: dalle2
    litellm_params: {{model: openai/dall-e-2, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: az-image
    litellm_params: {{model: azure/gpt-image-1, api_base: '{{MOCK_ROOT}}', api_key: az-key, api_version: '2025-04-01-preview'}}
  - model_name: edit-denied
    litellm_params: {{model: openai/err-401, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: '{{MOCK_ROOT}}', api_key: k}}
  - model_name: offline-whisper
    litellm_params: {{model: openai/whisper-1, mock_response: 'hello from the mock'}}
  - model_name: offline-edit
    litellm_params: {{model: openai/gpt-image-1, mock_response: 'https://mock.example/edited.png'}}
litellm_settings:
  num_retries: 0
general_settings:
  master_key: {MASTER}
  proxy_batch_write_at: 1
{extra}"#
    )
}

/// A PCM WAV of `secs` seconds: 8 kHz, mono, 16-bit.
fn wav(secs: f64) -> Vec<u8> {
    let data_len = (8000.0 * secs) as u32 * 2;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    // A little signal, so the bytes sent can be told apart from zeroes.
    b.extend((0..data_len).map(|i| (i % 251) as u8));
    b
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-first-image";
const JPEG: &[u8] = b"\xff\xd8\xff-second-image";

fn audio(data: &[u8], filename: &str) -> Part {
    Part::bytes(data.to_vec())
        .file_name(filename.to_string())
        .mime_str("audio/wav")
        .unwrap()
}

fn image(data: &'static [u8], filename: &str) -> Part {
    Part::bytes(data).file_name(filename.to_string())
}

async fn send(gw: &Gateway, key: &str, path: &str, form: Form) -> reqwest::Response {
    gw.client
        .post(gw.url(path))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

fn error_message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn transcriptions_are_forwarded_as_forms_priced_and_logged() {
    let mock = form_mock().await;
    let gw = gateway(&config(""), Some(&mock)).await;
    let key = &gw.new_key(json!({})).await;
    let file = wav(2.5);

    // OpenAI whisper: the form as sent (LiteLLM's fields and `user` left out), `verbose_json`
    // asked for, the answer in LiteLLM's shape, priced by its duration (12.5 s at $0.0001).
    let form = Form::new()
        .text("model", "whisper")
        .text("language", "en")
        .text("prompt", "a greeting")
        .text("temperature", "0.2")
        .text("timestamp_granularities[]", "word")
        .text("timestamp_granularities[]", "segment")
        .text("user", "end-user-7")
        .text("metadata", r#"{"tags": ["from-form"]}"#)
        .part("file", audio(&file, "talk.wav"));
    let r = send(&gw, key, "/v1/audio/transcriptions", form).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-model-group"], "whisper");
    assert!(r.headers()["x-litellm-model-id"].to_str().unwrap().len() > 8);
    assert!(r.headers().contains_key("x-litellm-call-id"));
    close(header_f64(&r, "x-litellm-response-cost"), 12.5 * 0.0001);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({
            "text": "hello world", "usage": {"type": "duration", "seconds": 13},
            "language": "english", "task": "transcribe", "duration": 12.5,
            "segments": [{"id": 0, "start": 0.0, "end": 12.5, "text": "hello world"}]
        })
    );
    let (up, parts) = last_form(&mock).await;
    assert_eq!(up.path, "/v1/audio/transcriptions");
    assert_eq!(up.headers["authorization"], "Bearer sk-up");
    assert_eq!(
        names(&parts),
        [
            "model",
            "language",
            "prompt",
            "temperature",
            "timestamp_granularities[]",
            "timestamp_granularities[]",
            "response_format",
            "file"
        ]
    );
    assert_eq!(field(&parts, "model"), Some("whisper-1"));
    assert_eq!(field(&parts, "language"), Some("en"));
    assert_eq!(field(&parts, "temperature"), Some("0.2"));
    assert_eq!(field(&parts, "response_format"), Some("verbose_json"));
    let granularities: Vec<&str> = parts
        .iter()
        .filter(|p| p.name == "timestamp_granularities[]")
        .map(Received::text)
        .collect();
    assert_eq!(granularities, ["word", "segment"]);
    let sent = parts.last().unwrap();
    assert_eq!(sent.filename.as_deref(), Some("talk.wav"));
    assert_eq!(sent.content_type.as_deref(), Some("audio/x-wav"));
    assert_eq!(&sent.data[..], &file[..], "the file's bytes as sent");

    // Azure: the deployment URL with its api-version and `api-key`; a plain `json` answer
    // has no duration, so the file's 2.5 s are priced (azure/whisper-1 at $0.0001).
    let form = Form::new()
        .text("model", "az-whisper")
        .text("response_format", "json")
        .part("file", audio(&file, "talk.wav"));
    let r = send(&gw, key, "/audio/transcriptions", form).await;
    assert_eq!(r.status(), 200);
    close(header_f64(&r, "x-litellm-response-cost"), 2.5 * 0.0001);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"text": "hello world", "usage": null}));
    let (up, parts) = last_form(&mock).await;
    assert_eq!(
        up.path,
        "/openai/deployments/whisper-1/audio/transcriptions"
    );
    assert_eq!(up.query.as_deref(), Some("api-version=2024-06-01"));
    assert_eq!(up.headers["api-key"], "az-key");
    assert_eq!(field(&parts, "model"), Some("whisper-1"));
    assert_eq!(field(&parts, "response_format"), Some("json"));

    // A text format is wrapped as LiteLLM wraps it; srt without a readable file is priced by
    // its last timestamp.
    let form = Form::new()
        .text("model", "whisper")
        .text("response_format", "text")
        .part("file", audio(&file, "talk.wav"));
    let r = send(&gw, key, "/v1/audio/transcriptions", form).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    close(header_f64(&r, "x-litellm-response-cost"), 2.5 * 0.0001);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"text": "hello world\n", "usage": null}));
    let form = Form::new()
        .text("model", "whisper")
        .text("response_format", "srt")
        .part("file", audio(b"not audio at all", "talk.ogg"));
    let r = send(&gw, key, "/v1/audio/transcriptions", form).await;
    assert_eq!(r.status(), 200);
    close(header_f64(&r, "x-litellm-response-cost"), 7.25 * 0.0001);

    // A compatible provider (groq): no default format; per second of the file.
    let form = Form::new()
        .text("model", "groq-whisper")
        .part("file", audio(&file, "talk.wav"));
    let r = send(&gw, key, "/v1/audio/transcriptions", form).await;
    assert_eq!(r.status(), 200);
    close(header_f64(&r, "x-litellm-response-cost"), 2.5 * 3.083e-05);
    let (up, parts) = last_form(&mock).await;
    assert_eq!(up.headers["authorization"], "Bearer gsk-up");
    assert_eq!(names(&parts), ["model", "file"]);
    assert_eq!(field(&parts, "model"), Some("whisper-large-v3"));

    // gpt-4o-transcribe: priced by the token usage it reports.
    let form = Form::new()
        .text("model", "transcribe")
        .part("file", audio(&file, "talk.wav"));
    let r = send(&gw, key, "/v1/audio/transcriptions", form).await;
    assert_eq!(r.status(), 200);
    let token_cost = 20.0 * 2.5e-06 + 100.0 * 2.5e-06 + 30.0 * 1e-05;
    close(header_f64(&r, "x-litellm-response-cost"), token_cost);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["usage"]["input_tokens"], 120);
    assert!(v.get("logprobs").is_none(), "{v}");

    let logs = gw.spend_logs(key).await;
    assert_eq!(logs.len(), 6, "{logs:?}");
    for l in &logs {
        assert_eq!(l["call_type"], "atranscription", "{l}");
        assert_eq!(l["status"], "success", "{l}");
    }
    let mut spends: Vec<f64> = logs.iter().map(|l| l["spend"].as_f64().unwrap()).collect();
    spends.sort_by(f64::total_cmp);
    let mut want = vec![
        12.5 * 0.0001,
        2.5 * 0.0001,
        2.5 * 0.0001,
        7.25 * 0.0001,
        2.5 * 3.083e-05,
        token_cost,
    ];
    want.sort_by(f64::total_cmp);
    for (got, want) in spends.iter().zip(&want) {
        close(*got, *want);
    }
    let first = logs
        .iter()
        .find(|l| l["spend"].as_f64() == Some(12.5 * 0.0001))
        .unwrap();
    assert_eq!(first["model"], "whisper-1");
    assert_eq!(first["model_group"], "whisper");
    assert_eq!(first["end_user"], "end-user-7");
    assert_eq!(first["request_tags"], json!(["from-form"]));
    let tokens = logs
        .iter()
        .find(|l| l["model_group"] == "transcribe")
        .unwrap();
    assert_eq!(tokens["prompt_tokens"], 120);
    assert_eq!(tokens["completion_tokens"], 30);
}

#[tokio::test]
async fn image_edits_are_forwarded_as_forms_and_priced() {
    let mock = form_mock().await;
    let gw = gateway(&config(""), Some(&mock)).await;
    let key = &gw.new_key(json!({})).await;

    // gpt-image-1: every image as `image[]`, the mask, the fields; priced by token usage.
    let form = Form::new()
        .text("model", "gpt-image")
        .text("prompt", "add a hat")
        .text("n", "2")
        .text("size", "1024x1024")
        .text("background", "transparent")
        .part("image[]", image(PNG, "first.png"))
        .part("image[]", image(JPEG, "second.jpg"))
        .part("mask", image(PNG, "mask.png"));
    let r = send(&gw, key, "/v1/images/edits", form).await;
    assert_eq!(r.status(), 200);
    let token_cost = 50.0 * 5e-06 + 1056.0 * 4e-05;
    close(header_f64(&r, "x-litellm-response-cost"), token_cost);
    assert_eq!(r.headers()["x-litellm-model-group"], "gpt-image");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    let (up, parts) = last_form(&mock).await;
    assert_eq!(up.path, "/v1/images/edits");
    assert_eq!(up.headers["authorization"], "Bearer sk-up");
    assert_eq!(
        names(&parts),
        [
            "model",
            "prompt",
            "n",
            "size",
            "background",
            "image[]",
            "image[]",
            "mask"
        ]
    );
    assert_eq!(field(&parts, "model"), Some("gpt-image-1"));
    assert_eq!(&parts[5].data[..], PNG);
    assert_eq!(parts[5].content_type.as_deref(), Some("image/png"));
    assert_eq!(&parts[6].data[..], JPEG);
    assert_eq!(parts[6].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(parts[6].filename.as_deref(), Some("second.jpg"));
    assert_eq!(&parts[7].data[..], PNG);

    // dall-e-2 takes its one image as `image`; a plain `image` part is read too.
    let form = Form::new()
        .text("model", "dalle2")
        .text("prompt", "x")
        .part("image", image(PNG, "a.png"));
    let r = send(&gw, key, "/images/edits", form).await;
    assert_eq!(r.status(), 200);
    let (_, parts) = last_form(&mock).await;
    assert_eq!(names(&parts), ["model", "prompt", "image"]);

    // Azure, by the deployment path: the model group from the URL, the deployment URL, and
    // no `model` in the form.
    let form = Form::new()
        .text("prompt", "x")
        .part("image", image(PNG, "a.png"));
    let r = send(
        &gw,
        key,
        "/openai/deployments/az-image/images/edits?api-version=2024-02-01",
        form,
    )
    .await;
    assert_eq!(r.status(), 200);
    close(header_f64(&r, "x-litellm-response-cost"), token_cost);
    let (up, parts) = last_form(&mock).await;
    assert_eq!(up.path, "/openai/deployments/gpt-image-1/images/edits");
    assert_eq!(up.query.as_deref(), Some("api-version=2025-04-01-preview"));
    assert_eq!(up.headers["api-key"], "az-key");
    assert_eq!(names(&parts), ["prompt", "image[]"]);

    let logs = gw.spend_logs(key).await;
    assert_eq!(logs.len(), 3, "{logs:?}");
    for l in &logs {
        assert_eq!(l["call_type"], "aimage_edit", "{l}");
    }
    let row = logs
        .iter()
        .find(|l| l["model_group"] == "gpt-image")
        .unwrap();
    close(row["spend"].as_f64().unwrap(), token_cost);
    assert_eq!(row["prompt_tokens"], 50);
    assert_eq!(row["completion_tokens"], 1056);
}

#[tokio::test]
async fn bad_forms_models_and_sizes_are_refused() {
    let mock = form_mock().await;
    let gw = gateway(&config("  max_request_size_mb: 0.01\n"), Some(&mock)).await;
    let key = MASTER;
    let small = wav(0.1);

    // No `file`: FastAPI's 422 for the missing field; also when it comes as text or the body
    // is not a form at all.
    for form in [
        Form::new().text("model", "whisper"),
        Form::new()
            .text("model", "whisper")
            .text("file", "not a file"),
    ] {
        let r = send(&gw, key, "/v1/audio/transcriptions", form).await;
        assert_eq!(r.status(), 422);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], "file", "{v}");
        assert_eq!(v["error"]["code"], "422", "{v}");
    }
    let r = gw
        .post("/v1/audio/transcriptions", json!({"model": "whisper"}))
        .await;
    assert_eq!(r.status(), 422);

    // Unknown or missing model: LiteLLM's 400s.
    let r = send(
        &gw,
        key,
        "/v1/audio/transcriptions",
        Form::new()
            .text("model", "nope")
            .part("file", audio(&small, "a.wav")),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        error_message(&v)
            .starts_with("/audio/transcriptions: Invalid model name passed in model=nope"),
        "{v}"
    );
    let r = send(
        &gw,
        key,
        "/v1/audio/transcriptions",
        Form::new().part("file", audio(&small, "a.wav")),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        error_message(&v).contains("Invalid model name passed in model=None"),
        "{v}"
    );

    // Past `max_request_size_mb` (0.01 MB here): 413, before anything goes upstream.
    let before = mock.count();
    let r = send(
        &gw,
        key,
        "/v1/audio/transcriptions",
        Form::new()
            .text("model", "whisper")
            .part("file", audio(&wav(2.0), "big.wav")),
    )
    .await;
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert!(error_message(&v).contains("max_request_size_mb"), "{v}");
    // Sent in chunks without a length, it is cut off the same way.
    let chunks = futures::stream::iter(
        (0..40).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024]))),
    );
    let r = gw
        .client
        .post(gw.url("/v1/audio/transcriptions"))
        .bearer_auth(key)
        .header("content-type", "multipart/form-data; boundary=zzz")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // Image edits: `image` and `image[]` together, or an image as text: LiteLLM's 422s.
    let r = send(
        &gw,
        key,
        "/v1/images/edits",
        Form::new()
            .text("model", "gpt-image")
            .part("image", image(PNG, "a.png"))
            .part("image[]", image(PNG, "b.png")),
    )
    .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        error_message(&v),
        "Cannot specify both 'image' and 'image[]'"
    );
    let r = send(
        &gw,
        key,
        "/v1/images/edits",
        Form::new()
            .text("model", "gpt-image")
            .text("image", "https://example.com/a.png"),
    )
    .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        error_message(&v),
        "'image' must be provided as a multipart file upload, not a string."
    );
    // dall-e-2 takes one image.
    let r = send(
        &gw,
        key,
        "/v1/images/edits",
        Form::new()
            .text("model", "dalle2")
            .part("image[]", image(PNG, "a.png"))
            .part("image[]", image(PNG, "b.png")),
    )
    .await;
    assert_eq!(r.status(), 400);

    // Streaming is not offered; providers without the endpoint answer 400.
    let r = send(
        &gw,
        key,
        "/v1/audio/transcriptions",
        Form::new()
            .text("model", "whisper")
            .text("stream", "true")
            .part("file", audio(&small, "a.wav")),
    )
    .await;
    assert_eq!(r.status(), 400);
    for (path, form, what) in [
        (
            "/v1/audio/transcriptions",
            Form::new()
                .text("model", "claude")
                .part("file", audio(&small, "a.wav")),
            "audio transcription",
        ),
        (
            "/v1/images/edits",
            Form::new()
                .text("model", "claude")
                .part("image", image(PNG, "a.png")),
            "image edits",
        ),
    ] {
        let r = send(&gw, key, path, form).await;
        assert_eq!(r.status(), 400, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(
            error_message(&v).contains(&format!("does not support {what}")),
            "{v}"
        );
    }
    assert_eq!(mock.count(), before, "nothing was sent upstream");

    // Upstream errors keep their status and map as any call's; a failed group falls back.
    let r = send(
        &gw,
        key,
        "/v1/audio/transcriptions",
        Form::new()
            .text("model", "whisper-down")
            .part("file", audio(&small, "a.wav")),
    )
    .await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-litellm-response-cost"], "0");
    let v: Value = r.json().await.unwrap();
    assert!(
        error_message(&v).contains("OpenAIException - mock failure 503"),
        "{v}"
    );
    let r = send(
        &gw,
        key,
        "/v1/images/edits",
        Form::new()
            .text("model", "edit-denied")
            .part("image", image(PNG, "a.png")),
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = send(
        &gw,
        key,
        "/v1/audio/transcriptions",
        Form::new()
            .text("model", "whisper-down")
            .text("fallbacks", r#"["groq-whisper"]"#)
            .part("file", audio(&small, "a.wav")),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-attempted-fallbacks"], "1");
    let (_, parts) = last_form(&mock).await;
    assert_eq!(field(&parts, "model"), Some("whisper-large-v3"));
}

#[tokio::test]
async fn mock_responses_answer_offline_and_limits_apply() {
    let gw = gateway(&config(""), None).await;
    let key = &gw.new_key(json!({"rpm_limit": 3})).await;
    let file = wav(2.5);

    // The mock text as the transcript, priced by the file's length as a real call would be.
    let r = send(
        &gw,
        key,
        "/v1/audio/transcriptions",
        Form::new()
            .text("model", "offline-whisper")
            .part("file", audio(&file, "a.wav")),
    )
    .await;
    assert_eq!(r.status(), 200);
    close(header_f64(&r, "x-litellm-response-cost"), 2.5 * 0.0001);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"text": "hello from the mock", "usage": null}));

    let r = send(
        &gw,
        key,
        "/v1/images/edits",
        Form::new()
            .text("model", "offline-edit")
            .text("prompt", "x")
            .part("image", image(PNG, "a.png")),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["data"][0]["url"], "https://mock.example/edited.png",
        "{v}"
    );

    // The key's RPM counts these calls like any other: the fourth is refused.
    let offline = || {
        Form::new()
            .text("model", "offline-whisper")
            .part("file", audio(&file, "a.wav"))
    };
    let r = send(&gw, key, "/v1/audio/transcriptions", offline()).await;
    assert_eq!(r.status(), 200);
    let r = send(&gw, key, "/v1/audio/transcriptions", offline()).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["rate_limit_type"], "requests");

    // `mock_response` per request, as a form field; LiteLLM's mock errors too.
    let other = &gw.new_key(json!({})).await;
    let r = send(
        &gw,
        other,
        "/v1/audio/transcriptions",
        Form::new()
            .text("model", "whisper")
            .text("mock_response", "spoken words")
            .part("file", audio(&file, "a.wav")),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["text"], "spoken words");
    let r = send(
        &gw,
        other,
        "/v1/audio/transcriptions",
        Form::new()
            .text("model", "whisper")
            .text("mock_response", "litellm.RateLimitError")
            .part("file", audio(&file, "a.wav")),
    )
    .await;
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert!(error_message(&v).contains("mock exception"), "{v}");

    let logs = gw.spend_logs(key).await;
    let ok: Vec<&Value> = logs.iter().filter(|l| l["status"] == "success").collect();
    assert_eq!(ok.len(), 3, "{logs:?}");
    let kinds: Vec<&str> = ok
        .iter()
        .map(|l| l["call_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"atranscription") && kinds.contains(&"aimage_edit"),
        "{kinds:?}"
    );

    // Budgets: a key whose budget a transcription has used up is refused the next.
    let key = &gw.new_key(json!({"max_budget": 0.0002})).await;
    for status in [200, 400] {
        let r = send(
            &gw,
            key,
            "/v1/audio/transcriptions",
            Form::new()
                .text("model", "offline-whisper")
                .part("file", audio(&file, "a.wav")),
        )
        .await;
        assert_eq!(r.status(), status);
    }
}

#[tokio::test]
async fn configured_models_name_the_model() {
    let mock = form_mock().await;
    let gw = gateway(
        &config("  moderation_model: groq-whisper\n  image_generation_model: az-image\n"),
        Some(&mock),
    )
    .await;
    // LiteLLM's transcription route takes `moderation_model` over the form's model.
    let r = send(
        &gw,
        MASTER,
        "/v1/audio/transcriptions",
        Form::new()
            .text("model", "whisper")
            .part("file", audio(&wav(0.1), "a.wav")),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-model-group"], "groq-whisper");
    // `image_generation_model` names an image edit's model, unless the URL does.
    let r = send(
        &gw,
        MASTER,
        "/v1/images/edits",
        Form::new()
            .text("model", "gpt-image")
            .part("image", image(PNG, "a.png")),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-model-group"], "az-image");
    let r = send(
        &gw,
        MASTER,
        "/openai/deployments/gpt-image/images/edits",
        Form::new().part("image", image(PNG, "a.png")),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-model-group"], "gpt-image");
}
