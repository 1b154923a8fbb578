//! The parts of image generation (`/images/generations`), moderation (`/moderations`),
//! text-to-speech (`/audio/speech`), transcription (`/audio/transcriptions`) and image edit
//! (`/images/edits`) calls that differ from chat: their request checks, the default
//! moderation model, reading the multipart forms of the last two, what each call costs and the
//! bodies of the speech and transcription answers. Everything else (keys, limits, budgets,
//! routing, retries, fallbacks, spend logs, headers) is the shared pipeline of
//! [`super::llm`], which calls in here only for these kinds.
//!
//! LiteLLM's behaviour mirrored: `general_settings.image_generation_model` and
//! `moderation_model` name the model when set (the latter for transcriptions too, and the
//! former for image edits unless the URL names the model, as LiteLLM resolves them); a
//! required field missing is a 400 naming it (`prompt` for images, `input` for moderations
//! and speech), a transcription's missing `file` FastAPI's 422; `model` is optional on
//! `/moderations`, and a moderation whose model names no model group goes straight to OpenAI
//! (`OPENAI_API_KEY`, `OPENAI_BASE_URL`) with the model as given, or with none. A
//! transcription answers with LiteLLM's `TranscriptionResponse` (`text`, `usage` and the
//! verbose fields), whatever format the upstream answered in.

use super::llm::CallKind;
use crate::api::form::{self, FormFile};
use crate::api::{validate, Field};
use crate::config::{Config, DeploymentConfig, LitellmParams, LoadedConfig};
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::middleware::auth::AuthCtx;
use crate::providers::client::ByteStream;
use crate::providers::Provider;
use crate::routing::strategy::InFlight;
use crate::routing::{Deployment, ModelRouter};
use crate::spend::audio_length;
use crate::spend::media::{self, ImageFacts, ImageUsage, Priced, TranscriptionTokens};
use crate::spend::prices::{MediaPrices, PriceMap};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use futures::StreamExt;
use serde_json::{Map, Value};
use std::time::Duration;

/// The model of a media request, after LiteLLM's proxy-wide model settings and its check of
/// the field the call cannot do without. `from_path`: the model came from the URL (the Azure
/// form), which wins over `image_generation_model`. A moderation may name no model (`""`).
pub(super) fn model_and_checks(
    state: &AppState,
    kind: CallKind,
    body: &mut Map<String, Value>,
    from_path: bool,
) -> ApiResult<String> {
    let settings = &state.loaded.config.general_settings.extra;
    let configured = match kind {
        CallKind::ImageGeneration | CallKind::ImageEdit if !from_path => {
            settings.field("image_generation_model")
        }
        CallKind::Moderation | CallKind::Transcription => settings.field("moderation_model"),
        _ => None,
    };
    if let Some(m) = configured.and_then(Value::as_str).filter(|m| !m.is_empty()) {
        body.insert("model".into(), Value::String(m.to_string()));
    }
    let required = match kind {
        CallKind::ImageGeneration => Some("prompt"),
        CallKind::Moderation | CallKind::Speech => Some("input"),
        _ => None,
    };
    if let Some(required) = required.filter(|r| !body.contains_key(*r)) {
        return Err(ApiError::bad_request(format!(
            "{}: Missing required parameter: '{required}'.",
            kind.route()
        ))
        .with_param(required));
    }
    if kind.is_form() && body.field("stream").is_some_and(truthy) {
        return Err(ApiError::bad_request(format!(
            "{}: streamed answers (`stream`) are not supported on this route.",
            kind.route()
        ))
        .with_param("stream"));
    }
    if kind == CallKind::Moderation {
        match body.field("model") {
            None | Some(Value::Null) => return Ok(String::new()),
            Some(Value::String(m)) => return Ok(m.clone()),
            Some(_) => {} // the type error below
        }
    }
    validate::model_field(body, kind.route())
}

/// A form field's truth as Python would read the text (`true`, `True`, `1`) or a JSON boolean.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1"),
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        _ => false,
    }
}

/// The files of a multipart call, and what the pipeline needs to know of them.
#[derive(Debug, Default)]
pub(super) struct FormFiles {
    pub files: Vec<FormFile>,
    /// A transcription's audio length, when its format is one `spend::audio_length` reads.
    pub audio_seconds: Option<f64>,
}

/// Reads a transcription's or an image edit's request: the body within `max_request_size_mb`
/// (413 past it), its multipart form, and LiteLLM's checks of the files. Returns the text
/// fields (LiteLLM's own read as JSON), the files, and the size of the text.
///
/// A transcription needs a `file` part that is a file (FastAPI's 422 otherwise, also for a
/// body that is not a form). An image edit takes `image` or `image[]` parts (not both) and
/// `mask` or `mask[]` (not both), never as text (LiteLLM's 422s); it needs none (the upstream
/// judges), and a JSON body is read as its fields.
pub(super) async fn parse_form(
    state: &AppState,
    headers: &HeaderMap,
    kind: CallKind,
    body: Body,
) -> ApiResult<(Map<String, Value>, FormFiles, usize)> {
    let boundary = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(form::boundary);
    let bytes = super::read_body(headers, body, state.max_request_bytes).await?;
    let mut f = match boundary {
        Some(b) => form::parse(bytes, &b).await?,
        None if kind == CallKind::ImageEdit && !bytes.iter().all(u8::is_ascii_whitespace) => {
            form::Form {
                text_bytes: bytes.len(),
                fields: super::parse_object(&bytes)?,
                files: Vec::new(),
            }
        }
        None => form::Form::default(),
    };
    form::read_litellm_fields(&mut f.fields);
    let mut audio_seconds = None;
    if kind == CallKind::Transcription {
        let file = f.files.iter().rev().find(|p| p.name == "file");
        let Some(file) = file else {
            return Err(form::missing_file("file"));
        };
        audio_seconds = audio_length::seconds(&file.data);
    } else {
        for (name, list) in [("image", "image[]"), ("mask", "mask[]")] {
            let has = |n: &str| f.files.iter().any(|p| p.name == n);
            if has(name) && has(list) {
                return Err(unprocessable(
                    format!("Cannot specify both '{name}' and '{list}'"),
                    name,
                ));
            }
            if f.fields.get(name).is_some_and(Value::is_string) {
                return Err(unprocessable(
                    format!("'{name}' must be provided as a multipart file upload, not a string."),
                    name,
                ));
            }
        }
    }
    let files = FormFiles {
        files: f.files,
        audio_seconds,
    };
    Ok((f.fields, files, f.text_bytes))
}

fn unprocessable(message: String, param: &str) -> ApiError {
    ApiError::new(ErrorClass::UnprocessableEntity, message).with_param(param)
}

/// Whether a moderation goes to OpenAI directly, as LiteLLM sends one whose model is absent
/// or names no model group (by the key's aliases, the router's names and wildcards).
pub(super) fn needs_default_moderation(router: &ModelRouter, auth: &AuthCtx, model: &str) -> bool {
    if model.is_empty() {
        return true;
    }
    let target = auth
        .key
        .as_ref()
        .and_then(|k| k.aliases.get(model))
        .and_then(Value::as_str)
        .unwrap_or(model);
    router.resolve(target).is_none() && router.unavailable_reason(model).is_none()
}

/// The router of a direct moderation: one OpenAI deployment named as the request names the
/// model, credentials and base URL from the environment (the config's
/// `environment_variables` first), as any `openai/` deployment without its own.
pub(super) fn default_moderation_router(state: &AppState, model: &str) -> ApiResult<ModelRouter> {
    let litellm_model = format!("openai/{model}");
    let mut raw_params = Map::new();
    raw_params.insert("model".into(), Value::String(litellm_model.clone()));
    let deployment = DeploymentConfig {
        model_name: model.to_string(),
        litellm_params: LitellmParams {
            model: litellm_model,
            ..Default::default()
        },
        model_info: Default::default(),
        raw_params,
        db_model: false,
    };
    let loaded = LoadedConfig {
        config: Config {
            model_list: vec![deployment],
            ..Default::default()
        },
        warnings: Vec::new(),
        env_overlay: state.loaded.env_overlay.clone(),
    };
    ModelRouter::from_config(&loaded).map_err(|e| ApiError::internal(e.join("; ")))
}

/// Whose prices a call to `d` as `upstream_model` pays.
fn priced<'a>(d: &'a Deployment, upstream_model: &'a str) -> Priced<'a> {
    Priced {
        provider: d.provider.name(),
        model: upstream_model,
        base_model: d.config.model_info.base_model.as_deref(),
        own: own_prices(d),
        rates: crate::spend::call::rates_for(d, upstream_model).0,
    }
}

/// Media prices set on the deployment (`model_info` first, then `litellm_params`).
fn own_prices(d: &Deployment) -> MediaPrices {
    let mi = &d.config.model_info.extra;
    let lp = &d.config.litellm_params.extra;
    let get = |k: &str| {
        mi.field(k)
            .or_else(|| lp.field(k))
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite())
    };
    MediaPrices {
        input_cost_per_image: get("input_cost_per_image"),
        output_cost_per_image: get("output_cost_per_image"),
        input_cost_per_pixel: get("input_cost_per_pixel"),
        input_cost_per_character: get("input_cost_per_character"),
        input_cost_per_image_token: None,
        output_cost_per_image_token: None,
        transcription_per_second: crate::spend::prices::transcription_per_second(
            get("input_cost_per_second"),
            get("output_cost_per_second"),
        ),
        input_cost_per_audio_token: get("input_cost_per_audio_token"),
    }
}

/// The request's `size` when it is a size (`1024x1024`, `1024-x-1024`; not `auto`), as
/// LiteLLM reads it for prices.
fn requested_size(body: &Map<String, Value>) -> Option<&str> {
    body.field("size").and_then(Value::as_str).filter(|s| {
        let (w, h) = s
            .split_once("-x-")
            .or_else(|| s.split_once('x'))
            .unwrap_or(("", ""));
        !w.is_empty()
            && !h.is_empty()
            && w.bytes().all(|b| b.is_ascii_digit())
            && h.bytes().all(|b| b.is_ascii_digit())
    })
}

/// A count field (`n`) of a JSON body or a form (where it is text).
fn count_field(body: &Map<String, Value>, name: &str) -> Option<u64> {
    match body.field(name)? {
        Value::String(s) => s.trim().parse().ok(),
        v => v.as_u64(),
    }
}

/// What a media call is expected to cost before it is made (reserved against budgets):
/// images by the request's size, quality and `n`; speech by its `input`; a transcription by
/// its file's length when known.
pub(super) fn expected_cost(
    kind: CallKind,
    body: &Map<String, Value>,
    files: Option<&FormFiles>,
    d: &Deployment,
    upstream_model: &str,
) -> Option<f64> {
    let map = PriceMap::global();
    let who = priced(d, upstream_model);
    match kind {
        CallKind::ImageGeneration | CallKind::ImageEdit => {
            let facts = ImageFacts {
                size: requested_size(body),
                quality: body.field("quality").and_then(Value::as_str),
                images: count_field(body, "n").unwrap_or(1),
                usage: None,
            };
            Some(media::expected_image_cost(map, &who, &facts))
        }
        CallKind::Speech => Some(speech_cost(body, d, upstream_model)),
        CallKind::Transcription => {
            let seconds = files.and_then(|f| f.audio_seconds).unwrap_or(0.0);
            Some(media::transcription_cost(map, &who, seconds, None))
        }
        _ => None,
    }
}

/// LiteLLM's answer to a transcription (its `TranscriptionResponse`), its cost and its token
/// usage. The upstream's JSON keeps `text`, `usage` (when it is a duration or a token count)
/// and the verbose fields; a text answer (`text`, `srt`, `vtt`) becomes `{"text": ...}`, as
/// LiteLLM wraps it. The seconds priced are the answer's `duration`, else the file's length,
/// else a subtitle answer's last timestamp, else the seconds its usage reports.
pub(super) fn transcription_answer(
    answer: &[u8],
    files: Option<&FormFiles>,
    d: &Deployment,
    upstream_model: &str,
) -> (Vec<u8>, f64, crate::api::Usage) {
    const VERBOSE: [&str; 5] = ["language", "task", "duration", "words", "segments"];
    let parsed = serde_json::from_slice::<Value>(answer).ok();
    let mut out = Map::new();
    let (seconds, tokens) = match parsed {
        Some(Value::Object(mut o)) => {
            out.insert(
                "text".into(),
                o.remove("text").unwrap_or(Value::String(String::new())),
            );
            let usage = o.remove("usage").filter(|u| {
                matches!(
                    u.field("type").and_then(Value::as_str),
                    Some("duration" | "tokens")
                )
            });
            let tokens = usage.as_ref().and_then(TranscriptionTokens::from_json);
            let usage_seconds = usage
                .as_ref()
                .filter(|_| tokens.is_none())
                .and_then(|u| u.field("seconds"))
                .and_then(Value::as_f64);
            out.insert("usage".into(), usage.unwrap_or(Value::Null));
            for k in VERBOSE {
                if let Some(v) = o.remove(k) {
                    out.insert(k.into(), v);
                }
            }
            let seconds = out
                .field("duration")
                .and_then(Value::as_f64)
                .or_else(|| files.and_then(|f| f.audio_seconds))
                .or(usage_seconds);
            (seconds, tokens)
        }
        _ => {
            let text = String::from_utf8_lossy(answer).into_owned();
            let seconds = files
                .and_then(|f| f.audio_seconds)
                .or_else(|| audio_length::subtitle_seconds(&text));
            out.insert("text".into(), Value::String(text));
            out.insert("usage".into(), Value::Null);
            (seconds, None)
        }
    };
    let cost = media::transcription_cost(
        PriceMap::global(),
        &priced(d, upstream_model),
        seconds.unwrap_or(0.0),
        tokens,
    );
    let usage = tokens.map_or_else(crate::api::Usage::default, |t| {
        crate::api::Usage::new(t.input_tokens, t.output_tokens)
    });
    (crate::api::json_out::map_to_vec(&out, 256), cost, usage)
}

/// What a speech call of the request's `input` costs.
pub(super) fn speech_cost(body: &Map<String, Value>, d: &Deployment, upstream_model: &str) -> f64 {
    let input = body.field("input").and_then(Value::as_str).unwrap_or("");
    media::speech_cost(PriceMap::global(), &priced(d, upstream_model), input)
}

/// What an image answer costs, and the token usage it reports (for the spend log and TPM).
/// The answer's `size` and `quality` win over the request's, as in LiteLLM.
pub(super) fn image_answer_cost(
    body: &Map<String, Value>,
    answer: &[u8],
    d: &Deployment,
    upstream_model: &str,
) -> (f64, crate::api::Usage) {
    /// What the price depends on; the images themselves (base64, often megabytes) are
    /// skipped over, not copied.
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        data: Option<Vec<serde::de::IgnoredAny>>,
        #[serde(default)]
        size: Option<Value>,
        #[serde(default)]
        quality: Option<Value>,
        #[serde(default)]
        usage: Option<Value>,
    }
    let a = serde_json::from_slice::<Answer>(answer).ok();
    let a = a.as_ref();
    let usage = a
        .and_then(|a| a.usage.as_ref())
        .and_then(ImageUsage::from_json);
    let facts = ImageFacts {
        size: a
            .and_then(|a| a.size.as_ref())
            .and_then(Value::as_str)
            .or_else(|| requested_size(body)),
        quality: a
            .and_then(|a| a.quality.as_ref())
            .and_then(Value::as_str)
            .or_else(|| body.field("quality").and_then(Value::as_str)),
        images: a.and_then(|a| a.data.as_ref()).map_or(0, Vec::len) as u64,
        usage,
    };
    let cost = media::image_cost(PriceMap::global(), &priced(d, upstream_model), &facts);
    let tokens = usage.map_or_else(crate::api::Usage::default, |u| {
        crate::api::Usage::new(u.input_tokens, u.output_tokens)
    });
    (cost, tokens)
}

/// The content type of a speech answer, as LiteLLM picks it: the upstream's when it is audio
/// (or a server-sent event stream, `stream_format: "sse"`, which LiteLLM would mislabel);
/// otherwise the type of the `response_format` asked for; else `audio/mpeg`.
pub(super) fn speech_content_type(
    upstream: Option<&HeaderValue>,
    body: &Map<String, Value>,
) -> HeaderValue {
    if let Some(v) = upstream {
        let t = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
        if t.starts_with("audio/") || t.starts_with("text/event-stream") {
            return v.clone();
        }
    }
    let by_format = match body.field("response_format").and_then(Value::as_str) {
        Some(f) if f.eq_ignore_ascii_case("opus") => "audio/opus",
        Some(f) if f.eq_ignore_ascii_case("aac") => "audio/aac",
        Some(f) if f.eq_ignore_ascii_case("flac") => "audio/flac",
        Some(f) if f.eq_ignore_ascii_case("wav") => "audio/wav",
        Some(f) if f.eq_ignore_ascii_case("pcm") => "audio/pcm",
        _ => "audio/mpeg",
    };
    HeaderValue::from_static(by_format)
}

/// Relays a speech answer's audio as it arrives (never read whole). A read that takes longer
/// than `idle` ends the body with an error, as does an upstream failure mid-way; the
/// deployment's in-flight count is held until the body ends or the client leaves.
pub(super) fn audio_body(
    upstream: ByteStream,
    idle: Option<Duration>,
    flight: InFlight,
    provider: Provider,
) -> Body {
    let chunks = futures::stream::unfold(
        (upstream, Some(flight)),
        move |(mut up, flight)| async move {
            let flight = flight?;
            let next = match idle {
                Some(t) => tokio::time::timeout(t, up.next()).await,
                None => Ok(up.next().await),
            };
            match next {
                Ok(Some(Ok(bytes))) => Some((Ok(bytes), (up, Some(flight)))),
                Ok(None) => None,
                Ok(Some(Err(e))) => {
                    let msg = format!(
                        "{} - error reading the audio: {e}",
                        provider.exception_label()
                    );
                    Some((Err(std::io::Error::other(msg)), (up, None)))
                }
                Err(_) => {
                    let msg = format!(
                        "{} - no audio received for {:.1}s",
                        provider.exception_label(),
                        idle.unwrap_or_default().as_secs_f64()
                    );
                    Some((Err(std::io::Error::other(msg)), (up, None)))
                }
            }
        },
    );
    Body::from_stream(chunks)
}

/// The cost of a mocked media answer: one image (or the images of a mock value that holds
/// `data`) at the request's size and quality; speech by its `input`; a transcription by its
/// file's length; moderations nothing.
pub(super) fn mock_cost(
    kind: CallKind,
    body: &Map<String, Value>,
    files: Option<&FormFiles>,
    mock: &Value,
    d: &Deployment,
    upstream_model: &str,
) -> f64 {
    match kind {
        CallKind::Transcription => {
            let seconds = files.and_then(|f| f.audio_seconds).unwrap_or(0.0);
            media::transcription_cost(
                PriceMap::global(),
                &priced(d, upstream_model),
                seconds,
                None,
            )
        }
        CallKind::ImageGeneration | CallKind::ImageEdit => {
            let images = mock
                .field("data")
                .and_then(Value::as_array)
                .map_or(1, Vec::len) as u64;
            let facts = ImageFacts {
                size: requested_size(body),
                quality: body.field("quality").and_then(Value::as_str),
                images,
                usage: None,
            };
            media::image_cost(PriceMap::global(), &priced(d, upstream_model), &facts)
        }
        CallKind::Speech => speech_cost(body, d, upstream_model),
        _ => 0.0,
    }
}

/// Input items of a moderation (a string is one; a list is one per entry).
pub(super) fn moderation_inputs(body: &Map<String, Value>) -> usize {
    match body.field("input") {
        Some(Value::Array(a)) => a.len().max(1),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn speech_content_type_prefers_the_upstreams_audio_type() {
        let b = body(json!({"response_format": "flac"}));
        let ogg = HeaderValue::from_static("audio/ogg");
        assert_eq!(speech_content_type(Some(&ogg), &b), "audio/ogg");
        let sse = HeaderValue::from_static("text/event-stream");
        assert_eq!(speech_content_type(Some(&sse), &b), "text/event-stream");
        let octets = HeaderValue::from_static("application/octet-stream");
        assert_eq!(speech_content_type(Some(&octets), &b), "audio/flac");
        assert_eq!(speech_content_type(None, &body(json!({}))), "audio/mpeg");
        assert_eq!(
            speech_content_type(None, &body(json!({"response_format": "OPUS"}))),
            "audio/opus"
        );
    }

    #[test]
    fn only_real_sizes_price_a_request() {
        for (size, read) in [
            ("1024x1792", Some("1024x1792")),
            ("256-x-256", Some("256-x-256")),
            ("auto", None),
            ("x1024", None),
            ("1024x", None),
            ("big", None),
        ] {
            assert_eq!(requested_size(&body(json!({"size": size}))), read, "{size}");
        }
        assert_eq!(requested_size(&body(json!({"size": 1024}))), None);
    }

    #[test]
    fn moderation_inputs_count_list_entries() {
        assert_eq!(moderation_inputs(&body(json!({"input": "x"}))), 1);
        assert_eq!(
            moderation_inputs(&body(json!({"input": ["a", "b", "c"]}))),
            3
        );
        assert_eq!(moderation_inputs(&body(json!({"input": []}))), 1);
    }
}
