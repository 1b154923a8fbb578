//! The parts of image generation (`/images/generations`), moderation (`/moderations`) and
//! text-to-speech (`/audio/speech`) calls that differ from chat: their request checks, the
//! default moderation model, what each call costs and the speech answer's body. Everything
//! else (keys, limits, budgets, routing, retries, fallbacks, spend logs, headers) is the
//! shared pipeline of [`super::llm`], which calls in here only for these three kinds.
//!
//! LiteLLM's behaviour mirrored: `general_settings.image_generation_model` and
//! `moderation_model` name the model when set; a required field missing is a 400 naming it
//! (`prompt` for images, `input` for the others); `model` is optional on `/moderations`, and a
//! moderation whose model names no model group goes straight to OpenAI (`OPENAI_API_KEY`,
//! `OPENAI_BASE_URL`) with the model as given, or with none.

use super::llm::CallKind;
use crate::api::{validate, Field};
use crate::config::{Config, DeploymentConfig, LitellmParams, LoadedConfig};
use crate::error::{ApiError, ApiResult};
use crate::middleware::auth::AuthCtx;
use crate::providers::client::ByteStream;
use crate::providers::Provider;
use crate::routing::strategy::InFlight;
use crate::routing::{Deployment, ModelRouter};
use crate::spend::media::{self, ImageFacts, ImageUsage, Priced};
use crate::spend::prices::{MediaPrices, PriceMap};
use crate::state::AppState;
use axum::body::Body;
use axum::http::HeaderValue;
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
        CallKind::ImageGeneration if !from_path => settings.field("image_generation_model"),
        CallKind::Moderation => settings.field("moderation_model"),
        _ => None,
    };
    if let Some(m) = configured.and_then(Value::as_str).filter(|m| !m.is_empty()) {
        body.insert("model".into(), Value::String(m.to_string()));
    }
    let required = if kind == CallKind::ImageGeneration {
        "prompt"
    } else {
        "input"
    };
    if !body.contains_key(required) {
        return Err(ApiError::bad_request(format!(
            "{}: Missing required parameter: '{required}'.",
            kind.route()
        ))
        .with_param(required));
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

/// What a media call is expected to cost before it is made (reserved against budgets):
/// images by the request's size, quality and `n`; speech by its `input`.
pub(super) fn expected_cost(
    kind: CallKind,
    body: &Map<String, Value>,
    d: &Deployment,
    upstream_model: &str,
) -> Option<f64> {
    let map = PriceMap::global();
    let who = priced(d, upstream_model);
    match kind {
        CallKind::ImageGeneration => {
            let facts = ImageFacts {
                size: requested_size(body),
                quality: body.field("quality").and_then(Value::as_str),
                images: body.field("n").and_then(Value::as_u64).unwrap_or(1),
                usage: None,
            };
            Some(media::expected_image_cost(map, &who, &facts))
        }
        CallKind::Speech => Some(speech_cost(body, d, upstream_model)),
        _ => None,
    }
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
/// `data`) at the request's size and quality; speech by its `input`; moderations nothing.
pub(super) fn mock_cost(
    kind: CallKind,
    body: &Map<String, Value>,
    mock: &Value,
    d: &Deployment,
    upstream_model: &str,
) -> f64 {
    match kind {
        CallKind::ImageGeneration => {
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
