//! `/images/generations`, `/moderations` and `/audio/speech` over real HTTP: forwarded to
//! OpenAI-format upstreams (Azure's deployment URLs included) with the upstream model name,
//! answered as the upstream answered (speech audio streamed as it arrives), priced by image,
//! by character or not at all, logged under LiteLLM's call types; keys, limits, budgets,
//! fallbacks and error mapping as for any LLM call; mocked offline; refused with a 400 by
//! providers that have no such endpoint.

use crate::helpers::*;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

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

async fn images(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(&state, &uri, &headers, &body);
    let model = v["model"].as_str().unwrap_or("").to_string();
    if let Some(e) = upstream_error(&model) {
        return e;
    }
    let n = v["n"].as_u64().unwrap_or(1);
    if model.starts_with("gpt-image") {
        // gpt-image answers: base64 images, the size and quality used, and token usage.
        let data: Vec<Value> = (0..n)
            .map(|_| json!({"b64_json": "iVBORw0KGgo="}))
            .collect();
        return axum::Json(json!({
            "created": 1, "data": data, "size": "1024x1024", "quality": "medium",
            "usage": {"input_tokens": 50, "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
                      "output_tokens": 1056, "total_tokens": 1106}
        }))
        .into_response();
    }
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"url": format!("https://images.example/{i}.png"), "revised_prompt": "a cat"}))
        .collect();
    axum::Json(json!({"created": 1, "data": data})).into_response()
}

async fn moderations(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(&state, &uri, &headers, &body);
    let model = v["model"]
        .as_str()
        .unwrap_or("omni-moderation-default")
        .to_string();
    if let Some(e) = upstream_error(&model) {
        return e;
    }
    axum::Json(json!({
        "id": "modr-up", "model": model,
        "results": [{"flagged": true, "categories": {"violence": true}, "category_scores": {"violence": 0.9}}]
    }))
    .into_response()
}

/// Speech: `slow-voice` sends its first chunk and holds the rest until `release` is notified
/// (so a test can see audio arrive before the upstream has finished); others answer at once.
/// The content type follows `response_format`, as OpenAI's does.
async fn speech(
    State((state, release)): State<(Arc<MockState>, Arc<Notify>)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = record(&state, &uri, &headers, &body);
    let model = v["model"].as_str().unwrap_or("").to_string();
    if let Some(e) = upstream_error(&model) {
        return e;
    }
    let content_type = match v["response_format"].as_str() {
        Some("opus") => "audio/ogg",
        _ => "audio/mpeg",
    };
    let slow = v["voice"] == "slow-voice";
    let chunks = futures::stream::unfold(0u8, move |i| {
        let release = release.clone();
        async move {
            match i {
                0 => Some((
                    Ok::<_, std::io::Error>(Bytes::from_static(b"AUDIO-FIRST;")),
                    1,
                )),
                1 => {
                    if slow {
                        release.notified().await;
                    }
                    Some((Ok(Bytes::from_static(b"AUDIO-REST")), 2))
                }
                _ => None,
            }
        }
    });
    Response::builder()
        .header("content-type", content_type)
        .body(Body::from_stream(chunks))
        .unwrap()
}

async fn media_mock(release: Arc<Notify>) -> MockUpstream {
    serve_mock(move |state| {
        let images_and_moderations = Router::new()
            .route("/v1/images/generations", post(images))
            .route("/openai/deployments/{dep}/images/generations", post(images))
            .route("/v1/moderations", post(moderations))
            .with_state(state.clone());
        let speech_routes = Router::new()
            .route("/v1/audio/speech", post(speech))
            .route("/openai/deployments/{dep}/audio/speech", post(speech))
            .with_state((state, release));
        images_and_moderations.merge(speech_routes)
    })
    .await
}

/// Deployments on the mock: OpenAI and Azure images and speech, moderations, a gpt-image
/// model, failing ones, an Anthropic deployment (no such endpoints), and offline mocks.
fn config(extra: &str) -> String {
    format!(
        r#"model_list:
  - model_name: dalle
    litellm_params: {{model: openai/dall-e-3, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: az-dalle
    litellm_params: {{model: azure/dall-e-3, api_base: '{{MOCK_ROOT}}', api_key: az-key, api_version: '2024-10-21'}}
  - model_name: gpt-image
    litellm_params: {{model: openai/gpt-image-1, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: img-down
    litellm_params: {{model: openai/err-503, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: img-limited
    litellm_params: {{model: openai/err-429, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: mod
    litellm_params: {{model: openai/omni-moderation-latest, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: mod-bad
    litellm_params: {{model: openai/err-400, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: tts
    litellm_params: {{model: openai/tts-1, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: az-tts
    litellm_params: {{model: azure/tts-1-hd, api_base: '{{MOCK_ROOT}}', api_key: az-key, api_version: '2025-03-01-preview'}}
  - model_name: tts-denied
    litellm_params: {{model: openai/err-401, api_base: '{{MOCK}}', api_key: sk-up}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: '{{MOCK_ROOT}}', api_key: k}}
  - model_name: az-chat
    litellm_params: {{model: azure/gpt-4o, api_base: '{{MOCK_ROOT}}', api_key: az-key}}
  - model_name: offline-image
    litellm_params: {{model: azure/dall-e-3, api_base: 'http://127.0.0.1:9', mock_response: 'https://mock.example/cat.png'}}
  - model_name: offline-moderation
    litellm_params: {{model: openai/omni-moderation-latest, mock_response: 'ok'}}
  - model_name: offline-speech
    litellm_params: {{model: openai/tts-1, mock_response: 'ok'}}
environment_variables:
  OPENAI_BASE_URL: '{{MOCK}}'
  OPENAI_API_KEY: sk-from-env
litellm_settings:
  num_retries: 0
general_settings:
  master_key: {MASTER}
  proxy_batch_write_at: 1
{extra}"#
    )
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

fn error_message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn images_are_forwarded_priced_and_logged() {
    let mock = media_mock(Arc::new(Notify::new())).await;
    let gw = gateway(&config(""), Some(&mock)).await;
    let key = &gw.new_key(json!({})).await;

    // OpenAI: the upstream model name, the request's own fields and unknown ones forwarded.
    let r = gw
        .post_as(
            key,
            "/v1/images/generations",
            json!({"model": "dalle", "prompt": "a cat", "n": 2, "size": "1024x1792", "quality": "hd", "style": "vivid", "custom_field": 7}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["x-litellm-model-id"].to_str().unwrap().len() > 8);
    assert_eq!(r.headers()["x-litellm-model-group"], "dalle");
    // LiteLLM 1.106.2's price map has no OpenAI dall-e-3 entries any more: no price found.
    close(header_f64(&r, "x-litellm-response-cost"), 0.0);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["data"][0]["url"], "https://images.example/0.png");
    assert!(v.get("model").is_none(), "{v}");
    let up = mock.last();
    assert_eq!(up.path, "/v1/images/generations");
    assert_eq!(up.headers["authorization"], "Bearer sk-up");
    assert_eq!(
        up.body,
        json!({"model": "dall-e-3", "prompt": "a cat", "n": 2, "size": "1024x1792", "quality": "hd", "style": "vivid", "custom_field": 7})
    );

    // Azure: the deployment URL, `api-key`, and the map's per-pixel Azure price.
    let r = gw
        .post_as(
            key,
            "/images/generations",
            json!({"model": "az-dalle", "prompt": "a dog", "n": 2, "size": "1024x1792", "quality": "hd"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let azure_cost = 7.19343e-08 * 1024.0 * 1792.0 * 2.0;
    close(header_f64(&r, "x-litellm-response-cost"), azure_cost);
    let up = mock.last();
    assert_eq!(up.path, "/openai/deployments/dall-e-3/images/generations");
    assert_eq!(up.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(up.headers["api-key"], "az-key");
    assert_eq!(up.body["model"], "dall-e-3");

    // The Azure-style path names the model group; `?api-version=` is accepted.
    let r = gw
        .post_as(
            key,
            "/openai/deployments/az-dalle/images/generations?api-version=2024-02-01",
            json!({"prompt": "a bird"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    close(
        header_f64(&r, "x-litellm-response-cost"),
        4.19617e-08 * 1024.0 * 1024.0,
    );
    assert_eq!(
        mock.last().body,
        json!({"model": "dall-e-3", "prompt": "a bird"})
    );

    // gpt-image-1: priced by the token usage of its answer.
    let r = gw
        .post_as(
            key,
            "/v1/images/generations",
            json!({"model": "gpt-image", "prompt": "a fox"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let token_cost = 50.0 * 5e-06 + 1056.0 * 4e-05;
    close(header_f64(&r, "x-litellm-response-cost"), token_cost);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["b64_json"], "iVBORw0KGgo=");

    let logs = gw.spend_logs(key).await;
    assert_eq!(logs.len(), 4, "{logs:?}");
    for l in &logs {
        assert_eq!(l["call_type"], "aimage_generation", "{l}");
        assert_eq!(l["status"], "success", "{l}");
    }
    let mut spends: Vec<f64> = logs.iter().map(|l| l["spend"].as_f64().unwrap()).collect();
    spends.sort_by(f64::total_cmp);
    close(spends[0], 0.0);
    close(spends[1], token_cost);
    close(spends[2], 4.19617e-08 * 1024.0 * 1024.0);
    close(spends[3], azure_cost);
    let image_row = logs
        .iter()
        .find(|l| l["model_group"] == "gpt-image")
        .unwrap();
    assert_eq!(image_row["prompt_tokens"], 50);
    assert_eq!(image_row["completion_tokens"], 1056);
    assert_eq!(image_row["model"], "gpt-image-1");
}

#[tokio::test]
async fn moderations_forward_only_their_input_and_default_to_openai() {
    let mock = media_mock(Arc::new(Notify::new())).await;
    let gw = gateway(&config(""), Some(&mock)).await;
    let key = &gw.new_key(json!({})).await;

    let r = gw
        .post_as(
            key,
            "/v1/moderations",
            json!({"model": "mod", "input": ["kill it", "hello"], "user": "end-user-1", "metadata": {"a": 1}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    close(header_f64(&r, "x-litellm-response-cost"), 0.0);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][0]["flagged"], true, "{v}");
    assert_eq!(v["model"], "omni-moderation-latest");
    let up = mock.last();
    assert_eq!(up.path, "/v1/moderations");
    assert_eq!(
        up.body,
        json!({"model": "omni-moderation-latest", "input": ["kill it", "hello"]})
    );
    assert_eq!(up.headers["authorization"], "Bearer sk-up");

    // No model: straight to OpenAI with the environment's key and base URL, and no model.
    let r = gw
        .post_as(key, "/moderations", json!({"input": "hello"}))
        .await;
    assert_eq!(r.status(), 200);
    let up = mock.last();
    assert_eq!(up.body, json!({"input": "hello"}));
    assert_eq!(up.headers["authorization"], "Bearer sk-from-env");
    // A model that names no group goes there too, under its own name.
    let r = gw
        .post_as(
            key,
            "/moderations",
            json!({"model": "text-moderation-stable", "input": "hello"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock.last().body,
        json!({"model": "text-moderation-stable", "input": "hello"})
    );

    // A key limited to other models may still moderate without naming one, not with `mod`.
    let limited = gw.new_key(json!({"models": ["dalle"]})).await;
    let r = gw
        .post_as(&limited, "/moderations", json!({"input": "hello"}))
        .await;
    assert_eq!(r.status(), 200);
    let r = gw
        .post_as(
            &limited,
            "/moderations",
            json!({"model": "mod", "input": "hello"}),
        )
        .await;
    assert_eq!(r.status(), 401);

    let logs = gw.spend_logs(key).await;
    assert_eq!(logs.len(), 3, "{logs:?}");
    for l in &logs {
        assert_eq!(l["call_type"], "amoderation", "{l}");
        assert_eq!(l["spend"].as_f64(), Some(0.0), "{l}");
    }
    assert!(
        logs.iter().any(|l| l["end_user"] == "end-user-1"),
        "{logs:?}"
    );
}

#[tokio::test]
async fn speech_streams_audio_as_it_arrives() {
    let release = Arc::new(Notify::new());
    let mock = media_mock(release.clone()).await;
    let gw = gateway(&config(""), Some(&mock)).await;
    let key = &gw.new_key(json!({})).await;

    let mut r = gw
        .post_as(
            key,
            "/v1/audio/speech",
            json!({"model": "tts", "input": "hello world", "voice": "slow-voice", "response_format": "opus", "speed": 1.25}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/ogg");
    // tts-1: 10 characters (the space is not counted) at $0.000015.
    close(header_f64(&r, "x-litellm-response-cost"), 10.0 * 1.5e-05);
    assert_eq!(r.headers()["x-litellm-model-group"], "tts");
    // The first chunk arrives while the upstream still holds the rest back.
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk())
        .await
        .expect("audio was held back until the upstream finished")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"AUDIO-FIRST;");
    release.notify_one();
    let mut rest = Vec::new();
    while let Some(c) = r.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"AUDIO-REST");
    let up = mock.last();
    assert_eq!(up.path, "/v1/audio/speech");
    assert_eq!(
        up.body,
        json!({"model": "tts-1", "input": "hello world", "voice": "slow-voice", "response_format": "opus", "speed": 1.25})
    );

    // Azure: the deployment URL; tts-1-hd's Azure price.
    let r = gw
        .post_as(
            key,
            "/audio/speech",
            json!({"model": "az-tts", "input": "hi there", "voice": "nova"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/mpeg");
    close(header_f64(&r, "x-litellm-response-cost"), 7.0 * 3.3e-05);
    assert_eq!(r.bytes().await.unwrap(), "AUDIO-FIRST;AUDIO-REST");
    let up = mock.last();
    assert_eq!(up.path, "/openai/deployments/tts-1-hd/audio/speech");
    assert_eq!(up.query.as_deref(), Some("api-version=2025-03-01-preview"));
    assert_eq!(up.headers["api-key"], "az-key");

    // OpenAI's speech needs a voice.
    let r = gw
        .post_as(
            key,
            "/v1/audio/speech",
            json!({"model": "tts", "input": "x"}),
        )
        .await;
    assert_eq!(r.status(), 400);

    let logs = gw.spend_logs(key).await;
    let ok: Vec<&Value> = logs.iter().filter(|l| l["status"] == "success").collect();
    assert_eq!(ok.len(), 2, "{logs:?}");
    for l in &ok {
        assert_eq!(l["call_type"], "aspeech", "{l}");
    }
    let mut spends: Vec<f64> = ok.iter().map(|l| l["spend"].as_f64().unwrap()).collect();
    spends.sort_by(f64::total_cmp);
    close(spends[0], 10.0 * 1.5e-05);
    close(spends[1], 7.0 * 3.3e-05);
}

#[tokio::test]
async fn upstream_errors_keep_their_status_and_fallbacks_apply() {
    let mock = media_mock(Arc::new(Notify::new())).await;
    let gw = gateway(&config(""), Some(&mock)).await;
    for (path, body, status) in [
        (
            "/v1/images/generations",
            json!({"model": "img-limited", "prompt": "x"}),
            429,
        ),
        (
            "/v1/images/generations",
            json!({"model": "img-down", "prompt": "x"}),
            503,
        ),
        (
            "/v1/moderations",
            json!({"model": "mod-bad", "input": "x"}),
            400,
        ),
        (
            "/v1/audio/speech",
            json!({"model": "tts-denied", "input": "x", "voice": "alloy"}),
            401,
        ),
    ] {
        let r = gw.post(path, body.clone()).await;
        assert_eq!(r.status(), status, "{path} {body}");
        assert_eq!(r.headers()["x-litellm-response-cost"], "0");
        let v: Value = r.json().await.unwrap();
        let msg = error_message(&v);
        assert!(
            msg.starts_with("litellm.") && msg.contains("OpenAIException - mock failure"),
            "{v}"
        );
        assert_eq!(v["error"]["code"], status.to_string(), "{v}");
    }
    // A failing image group falls back to another, as chat does.
    let r = gw
        .post(
            "/v1/images/generations",
            json!({"model": "img-down", "prompt": "x", "fallbacks": ["dalle"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-attempted-fallbacks"], "1");
    assert_eq!(mock.last().body["model"], "dall-e-3");
}

#[tokio::test]
async fn providers_without_the_endpoint_answer_400() {
    let mock = media_mock(Arc::new(Notify::new())).await;
    let gw = gateway(&config(""), Some(&mock)).await;
    let before = mock.count();
    for (path, body, what) in [
        (
            "/v1/images/generations",
            json!({"model": "claude", "prompt": "x"}),
            "image generation",
        ),
        (
            "/v1/moderations",
            json!({"model": "claude", "input": "x"}),
            "moderations",
        ),
        (
            "/v1/audio/speech",
            json!({"model": "claude", "input": "x", "voice": "alloy"}),
            "text to speech",
        ),
        (
            "/v1/moderations",
            json!({"model": "az-chat", "input": "x"}),
            "moderations",
        ),
    ] {
        let r = gw.post(path, body).await;
        assert_eq!(r.status(), 400, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert!(
            error_message(&v).contains(&format!("does not support {what}")),
            "{v}"
        );
    }
    assert_eq!(mock.count(), before, "nothing was sent upstream");

    // LiteLLM's checks of the request itself.
    let r = gw
        .post("/v1/images/generations", json!({"model": "dalle"}))
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        error_message(&v),
        "/image/generations: Missing required parameter: 'prompt'."
    );
    let r = gw
        .post("/v1/images/generations", json!({"prompt": "x"}))
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        error_message(&v)
            .starts_with("/image/generations: Invalid model name passed in model=None"),
        "{v}"
    );
    for (path, body) in [
        ("/v1/moderations", json!({"model": "mod"})),
        (
            "/v1/audio/speech",
            json!({"model": "tts", "voice": "alloy"}),
        ),
    ] {
        let r = gw.post(path, body).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert!(
            error_message(&v).ends_with("Missing required parameter: 'input'."),
            "{v}"
        );
    }
}

#[tokio::test]
async fn mock_responses_answer_offline() {
    let gw = gateway(&config(""), None).await;
    let key = &gw.new_key(json!({})).await;

    let r = gw
        .post_as(
            key,
            "/v1/images/generations",
            json!({"model": "offline-image", "prompt": "a cat", "size": "1024x1024"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // A mocked azure/dall-e-3 image costs what a real one would.
    let image_cost = 4.19617e-08 * 1024.0 * 1024.0;
    close(header_f64(&r, "x-litellm-response-cost"), image_cost);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["url"], "https://mock.example/cat.png", "{v}");
    assert!(v["created"].as_i64().unwrap() > 0);

    let r = gw
        .post_as(
            key,
            "/v1/moderations",
            json!({"model": "offline-moderation", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["results"][0]["flagged"], false);
    assert!(v["id"].as_str().unwrap().starts_with("modr-"));

    let r = gw
        .post_as(
            key,
            "/v1/audio/speech",
            json!({"model": "offline-speech", "input": "abc", "voice": "alloy"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/mpeg");
    close(header_f64(&r, "x-litellm-response-cost"), 3.0 * 1.5e-05);
    let audio = r.bytes().await.unwrap();
    assert_eq!(&audio[..2], &[0xFF, 0xFB], "an MP3 frame");

    // Per request, on a deployment that would otherwise go upstream.
    let r = gw
        .post_as(
            key,
            "/v1/images/generations",
            json!({"model": "dalle", "prompt": "x", "mock_response": "https://req.example/x.png"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["url"], "https://req.example/x.png");
    // LiteLLM's mock errors work here too.
    let r = gw
        .post_as(
            key,
            "/v1/audio/speech",
            json!({"model": "tts", "input": "x", "voice": "alloy", "mock_response": "litellm.RateLimitError"}),
        )
        .await;
    assert_eq!(r.status(), 429);

    let logs = gw.spend_logs(key).await;
    let kinds: Vec<&str> = logs
        .iter()
        .filter(|l| l["status"] == "success")
        .map(|l| l["call_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 4, "{logs:?}");
    for k in ["aimage_generation", "amoderation", "aspeech"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let spent: f64 = logs.iter().map(|l| l["spend"].as_f64().unwrap()).sum();
    close(spent, image_cost + 3.0 * 1.5e-05);
}

#[tokio::test]
async fn rate_limits_and_budgets_apply() {
    let gw = gateway(&config(""), None).await;
    // RPM counts every media call.
    let key = gw.new_key(json!({"rpm_limit": 2})).await;
    for (path, body) in [
        (
            "/v1/moderations",
            json!({"model": "offline-moderation", "input": "a"}),
        ),
        (
            "/v1/audio/speech",
            json!({"model": "offline-speech", "input": "a", "voice": "alloy"}),
        ),
    ] {
        assert_eq!(gw.post_as(&key, path, body).await.status(), 200, "{path}");
    }
    let r = gw
        .post_as(
            &key,
            "/v1/images/generations",
            json!({"model": "offline-image", "prompt": "x"}),
        )
        .await;
    assert_eq!(r.status(), 429);

    // Budgets: $0.044 images against a $0.05 budget. The second is still admitted ($0.044
    // spent is under it); after it the key is over its budget and the third is refused.
    let key = gw.new_key(json!({"max_budget": 0.05})).await;
    let body = json!({"model": "offline-image", "prompt": "x"});
    let r = gw
        .post_as(&key, "/v1/images/generations", body.clone())
        .await;
    assert_eq!(r.status(), 200);
    let r = gw
        .post_as(&key, "/v1/images/generations", body.clone())
        .await;
    assert_eq!(r.status(), 200);
    let r = gw.post_as(&key, "/v1/images/generations", body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "budget_exceeded", "{v}");
}

#[tokio::test]
async fn configured_default_models_name_the_model() {
    let mock = media_mock(Arc::new(Notify::new())).await;
    let gw = gateway(
        &config("  image_generation_model: az-dalle\n  moderation_model: mod\n"),
        Some(&mock),
    )
    .await;
    // `image_generation_model` wins over the body's model, as in LiteLLM.
    let r = gw
        .post(
            "/v1/images/generations",
            json!({"model": "dalle", "prompt": "x"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock.last().path,
        "/openai/deployments/dall-e-3/images/generations"
    );
    let r = gw.post("/v1/moderations", json!({"input": "x"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock.last().body,
        json!({"model": "omni-moderation-latest", "input": "x"})
    );
}
