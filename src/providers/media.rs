//! Image generation, moderations, text to speech, transcriptions and image edits upstream:
//! which providers serve them on OpenAI's paths, and the requests that go there. The mock
//! answers are in [`super::mock`], the prices in `spend::media`.
//!
//! As in LiteLLM, these calls go to OpenAI, Azure OpenAI (all but moderations, on the
//! deployment's URL) and the OpenAI-compatible providers whose upstream speaks OpenAI's paths
//! (`{api_base}/images/generations`, `/moderations`, `/audio/speech`,
//! `/audio/transcriptions`, `/images/edits`). Providers without such an endpoint (Anthropic,
//! Bedrock, Gemini, Vertex AI, Cohere, Ollama, and the compatible ones LiteLLM sends
//! elsewhere) are refused with a 400 before anything is sent.
//!
//! Transcriptions and image edits go out as multipart forms, as LiteLLM's OpenAI client sends
//! them: the client's text fields (LiteLLM's own removed) with `model` set to the upstream's
//! name, then the files. A whisper model on OpenAI is asked for `verbose_json` when the
//! client asked for no format (its `duration` prices the call). Image edits send their images
//! as `image[]` (`image` for dall-e-2, which takes one) and the first mask as `mask`, typed by
//! their first bytes; Azure's deployment URL names the model, so its form carries none.
//!
//! What must not go in here: response handling and accounting (the handler's).

use super::openai::{self, Endpoint, Overrides, UpstreamRequest};
use super::Provider;
use crate::api::form::{FormFile, FormWriter};
use crate::api::Field;
use crate::error::{ApiError, ApiResult};
use crate::routing::Deployment;
use serde_json::{Map, Value};

/// OpenAI-compatible providers LiteLLM does not send to `{api_base}/images/generations`:
/// they have image APIs of their own (OpenRouter, DashScope, Azure AI Foundry) or none.
const NO_OPENAI_IMAGES: &[&str] = &[
    "openrouter",
    "dashscope",
    "azure_ai",
    "mistral",
    "huggingface",
    "voyage",
    "jina_ai",
    "llama_api",
];

/// OpenAI-compatible providers LiteLLM does not send to `{api_base}/audio/speech`: their
/// speech APIs have other shapes (Mistral, Azure AI Foundry) or they have none.
const NO_OPENAI_SPEECH: &[&str] = &[
    "openrouter",
    "azure_ai",
    "mistral",
    "huggingface",
    "voyage",
    "jina_ai",
    "llama_api",
];

/// OpenAI-compatible providers LiteLLM does not send to `{api_base}/audio/transcriptions`:
/// those outside its OpenAI-compatible list, those with transcription APIs of their own (xAI,
/// Mistral) and Azure AI Foundry (sent through Azure's client, not built here).
const NO_OPENAI_TRANSCRIPTIONS: &[&str] = &[
    "openai_like",
    "custom_openai",
    "vllm",
    "mistral",
    "openrouter",
    "huggingface",
    "voyage",
    "jina_ai",
    "llama_api",
    "xai",
    "azure_ai",
];

/// The OpenAI-compatible providers LiteLLM sends image edits to on OpenAI's path (it has an
/// image-edit configuration for these only).
const OPENAI_IMAGE_EDITS: &[&str] = &["hosted_vllm", "litellm_proxy"];

/// Whether `provider` serves `endpoint` (one of the media endpoints) on OpenAI's path.
/// Azure OpenAI has no moderations endpoint; every compatible provider is sent moderations,
/// as LiteLLM sends them to any deployment's `api_base`.
pub fn serves(provider: Provider, endpoint: Endpoint) -> bool {
    match (provider, endpoint) {
        (Provider::OpenAi, _) => true,
        (Provider::Azure, Endpoint::Moderations) => false,
        (Provider::Azure, e) => e.is_media(),
        (Provider::Compat(c), Endpoint::ImageGenerations) => !NO_OPENAI_IMAGES.contains(&c.name),
        (Provider::Compat(c), Endpoint::AudioSpeech) => !NO_OPENAI_SPEECH.contains(&c.name),
        (Provider::Compat(_), Endpoint::Moderations) => true,
        (Provider::Compat(c), Endpoint::AudioTranscriptions) => {
            !NO_OPENAI_TRANSCRIPTIONS.contains(&c.name)
        }
        (Provider::Compat(c), Endpoint::ImageEdits) => OPENAI_IMAGE_EDITS.contains(&c.name),
        _ => false,
    }
}

/// The upstream request of a media call to `d`, or LiteLLM's 400 when its provider has no
/// such endpoint.
pub fn request(
    d: &Deployment,
    endpoint: Endpoint,
    upstream_model: &str,
    body: &Map<String, Value>,
    ov: &Overrides<'_>,
) -> ApiResult<UpstreamRequest> {
    if !serves(d.provider, endpoint) {
        return Err(super::unsupported_endpoint(d, endpoint));
    }
    match endpoint {
        Endpoint::Moderations => {
            // LiteLLM sends a moderation only its `input` and `model`, and no `model` at all
            // when the request named none (OpenAI then picks its default).
            let mut only = Map::new();
            if let Some(input) = body.field("input") {
                only.insert("input".into(), input.clone());
            }
            let mut up = openai::build_request(d, endpoint, upstream_model, &only, false, ov)?;
            if upstream_model.is_empty() {
                up.body = crate::api::json_out::map_to_vec(&only, 64).into();
            }
            Ok(up)
        }
        Endpoint::AudioSpeech
            if d.provider != Provider::Azure && !body.field("voice").is_some_and(Value::is_string) =>
        {
            Err(ApiError::bad_request(
                "litellm.BadRequestError: 'voice' is required to be passed as a string for OpenAI TTS",
            )
            .with_param("voice"))
        }
        Endpoint::AudioTranscriptions | Endpoint::ImageEdits => Err(ApiError::internal(
            "a multipart call was built without its files",
        )),
        _ => openai::build_request(d, endpoint, upstream_model, body, false, ov),
    }
}

/// The upstream request of a transcription or an image edit to `d`: a multipart form of the
/// request's text `fields` (LiteLLM's own already removed) and its `files`, or LiteLLM's 400
/// when the provider has no such endpoint.
pub fn form_request(
    d: &Deployment,
    endpoint: Endpoint,
    upstream_model: &str,
    fields: &Map<String, Value>,
    files: &[FormFile],
    ov: &Overrides<'_>,
) -> ApiResult<UpstreamRequest> {
    if !serves(d.provider, endpoint) {
        return Err(super::unsupported_endpoint(d, endpoint));
    }
    let files_len: usize = files.iter().map(|f| f.data.len() + 256).sum();
    let mut w = FormWriter::new(ov.size_hint + files_len);
    let dropped = |k: &str| ov.params.additional_drop.iter().any(|n| n == k);
    let text_fields = || {
        let defaults = d.defaults.iter().filter(|(k, _)| !fields.contains_key(*k));
        fields.iter().chain(defaults).filter(|(k, _)| !dropped(k))
    };
    match endpoint {
        Endpoint::AudioTranscriptions => {
            w.text("model", upstream_model);
            // `user` is LiteLLM's (the caller's id), not sent with a transcription.
            for (k, v) in text_fields().filter(|(k, _)| !matches!(k.as_str(), "model" | "user")) {
                w.field(k, v);
            }
            let whisper_on_openai =
                d.provider == Provider::OpenAi && !upstream_model.contains("gpt-4o");
            if whisper_on_openai && !fields.contains_key("response_format") {
                w.text("response_format", "verbose_json");
            }
            if let Some(f) = files.iter().rev().find(|f| f.name == "file") {
                w.file("file", &f.filename, &audio_content_type(f), &f.data);
            }
        }
        Endpoint::ImageEdits => {
            if d.provider != Provider::Azure {
                w.text("model", upstream_model);
            }
            for (k, v) in
                text_fields().filter(|(k, _)| !matches!(k.as_str(), "model" | "image" | "mask"))
            {
                w.field(k, v);
            }
            let images: Vec<&FormFile> = files
                .iter()
                .filter(|f| matches!(f.name.as_str(), "image" | "image[]"))
                .collect();
            let dall_e_2 = upstream_model.to_ascii_lowercase().replace(['-', '_'], "") == "dalle2";
            if dall_e_2 && images.len() > 1 {
                return Err(ApiError::bad_request(
                    "litellm.BadRequestError: DALL-E-2 only supports editing a single image. Please provide one image.",
                )
                .with_param("image"));
            }
            let image_field = if dall_e_2 { "image" } else { "image[]" };
            for f in images {
                let name = if f.filename.is_empty() {
                    "image.png"
                } else {
                    &f.filename
                };
                w.file(image_field, name, image_content_type(&f.data), &f.data);
            }
            if let Some(f) = files
                .iter()
                .find(|f| matches!(f.name.as_str(), "mask" | "mask[]"))
            {
                let name = if f.filename.is_empty() {
                    "mask.png"
                } else {
                    &f.filename
                };
                w.file("mask", name, image_content_type(&f.data), &f.data);
            }
        }
        _ => return Err(super::unsupported_endpoint(d, endpoint)),
    }
    let (content_type, body) = w.finish();
    let (url, mut headers) = openai::target_of(d, endpoint, upstream_model, ov)?;
    let content_type = http::HeaderValue::from_str(&content_type)
        .map_err(|_| ApiError::internal("invalid multipart content type"))?;
    match headers
        .iter_mut()
        .find(|(n, _)| n == http::header::CONTENT_TYPE)
    {
        Some((_, v)) => *v = content_type,
        None => headers.push((http::header::CONTENT_TYPE, content_type)),
    }
    Ok(UpstreamRequest {
        url,
        headers,
        body,
        pool: None,
    })
}

/// An audio file's content type as LiteLLM's client sends it: guessed from the filename's
/// extension, else the type the client gave, else `application/octet-stream`.
fn audio_content_type(f: &FormFile) -> String {
    let ext = f
        .filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let guessed = match ext.as_str() {
        "mp3" | "mpga" | "mpeg" => Some("audio/mpeg"),
        "wav" => Some("audio/x-wav"),
        "flac" => Some("audio/flac"),
        "m4a" => Some("audio/mp4"),
        "mp4" => Some("video/mp4"),
        "ogg" | "oga" | "opus" => Some("audio/ogg"),
        "webm" => Some("video/webm"),
        _ => None,
    };
    guessed
        .map(String::from)
        .or_else(|| f.content_type.clone().filter(|t| !t.is_empty()))
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// An image's content type by its first bytes, as LiteLLM types the images it sends
/// (PNG when it cannot tell).
fn image_content_type(data: &[u8]) -> &'static str {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if data.starts_with(b"GIF8") && data.get(5) == Some(&b'a') {
        "image/gif"
    } else if data.starts_with(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if data.get(4..8) == Some(b"ftyp") {
        "image/heic"
    } else if data.starts_with(b"RIFF") && data.get(8..12) == Some(b"WEBP") {
        "image/webp"
    } else {
        "image/png"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::routing::ModelRouter;
    use serde_json::json;

    /// The deployment of `litellm_params: {model: <model>, api_key: k<extra>}`, with a local
    /// `api_base` unless `extra` sets one.
    fn dep(model: &str, extra: &str) -> std::sync::Arc<Deployment> {
        let base = if extra.contains("api_base") {
            ""
        } else {
            ", api_base: 'http://127.0.0.1:9/v1'"
        };
        let yaml = format!(
            "model_list:\n  - model_name: g\n    litellm_params: {{model: {model}, api_key: k{base}{extra}}}\n"
        );
        let r = ModelRouter::from_config(&load_str(&yaml, "t.yaml").unwrap()).unwrap();
        let d = r.all_deployments().next().unwrap().clone();
        d
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn openai_paths_and_bodies() {
        let d = dep("openai/dall-e-3", ", quality: hd");
        let up = request(
            &d,
            Endpoint::ImageGenerations,
            "dall-e-3",
            &body(json!({"model": "g", "prompt": "a cat", "n": 2, "custom": 1})),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9/v1/images/generations");
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            b,
            json!({"model": "dall-e-3", "prompt": "a cat", "n": 2, "custom": 1, "quality": "hd"})
        );

        let d = dep("openai/omni-moderation-latest", "");
        let up = request(
            &d,
            Endpoint::Moderations,
            "omni-moderation-latest",
            &body(json!({"model": "g", "input": ["a", "b"], "user": "u1"})),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9/v1/moderations");
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            b,
            json!({"model": "omni-moderation-latest", "input": ["a", "b"]})
        );
        // No model named: none is sent.
        let up = request(
            &d,
            Endpoint::Moderations,
            "",
            &body(json!({"input": "x"})),
            &Overrides::default(),
        )
        .unwrap();
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(b, json!({"input": "x"}));

        let d = dep("openai/tts-1", "");
        let speech =
            body(json!({"model": "g", "input": "hi", "voice": "alloy", "response_format": "opus"}));
        let up = request(
            &d,
            Endpoint::AudioSpeech,
            "tts-1",
            &speech,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9/v1/audio/speech");
        let e = request(
            &d,
            Endpoint::AudioSpeech,
            "tts-1",
            &body(json!({"input": "hi"})),
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("'voice' is required"), "{}", e.message);
    }

    #[test]
    fn azure_uses_its_deployment_urls() {
        let d = dep(
            "azure/my-dalle",
            ", api_version: '2024-10-21', api_base: 'https://r.openai.azure.com'",
        );
        let up = request(
            &d,
            Endpoint::ImageGenerations,
            "my-dalle",
            &body(json!({"prompt": "x"})),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            up.url,
            "https://r.openai.azure.com/openai/deployments/my-dalle/images/generations?api-version=2024-10-21"
        );
        assert!(up.headers.iter().any(|(n, v)| n == "api-key" && v == "k"));
        let up = request(
            &d,
            Endpoint::AudioSpeech,
            "my-tts",
            &body(json!({"input": "x"})),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            up.url,
            "https://r.openai.azure.com/openai/deployments/my-tts/audio/speech?api-version=2024-10-21"
        );
        let e = request(
            &d,
            Endpoint::Moderations,
            "x",
            &body(json!({"input": "x"})),
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
    }

    fn file(name: &str, filename: &str, data: &'static [u8]) -> FormFile {
        FormFile {
            name: name.into(),
            filename: filename.into(),
            content_type: Some("application/octet-stream".into()),
            data: bytes::Bytes::from_static(data),
        }
    }

    /// The parts of a written form: (name, filename, content type, text of the data).
    async fn parts(up: &UpstreamRequest) -> Vec<(String, Option<String>, Option<String>, String)> {
        let ct = up
            .headers
            .iter()
            .find(|(n, _)| n == http::header::CONTENT_TYPE)
            .map(|(_, v)| v.to_str().unwrap().to_string())
            .unwrap();
        let boundary = crate::api::form::boundary(&ct).unwrap();
        let input = futures::stream::once({
            let b = up.body.clone();
            async move { Ok::<_, std::convert::Infallible>(b) }
        });
        let mut m = multer::Multipart::new(input, boundary);
        let mut out = Vec::new();
        while let Some(f) = m.next_field().await.unwrap() {
            let name = f.name().unwrap().to_string();
            let filename = f.file_name().map(String::from);
            let ct = f.content_type().map(ToString::to_string);
            let text = String::from_utf8_lossy(&f.bytes().await.unwrap()).into_owned();
            out.push((name, filename, ct, text));
        }
        out
    }

    fn names(p: &[(String, Option<String>, Option<String>, String)]) -> Vec<(&str, &str)> {
        p.iter()
            .map(|(n, _, _, t)| (n.as_str(), t.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn transcriptions_go_out_as_forms() {
        let d = dep("openai/whisper-1", "");
        let fields = body(json!({"model": "g", "language": "en", "user": "u",
            "timestamp_granularities": ["word", "segment"], "temperature": "0.2"}));
        let files = [file("file", "talk.mp3", b"ID3 audio")];
        let up = form_request(
            &d,
            Endpoint::AudioTranscriptions,
            "whisper-1",
            &fields,
            &files,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9/v1/audio/transcriptions");
        assert!(up
            .headers
            .iter()
            .any(|(n, v)| n == "authorization" && v == "Bearer k"));
        let p = parts(&up).await;
        // `user` stays behind; whisper on OpenAI is asked for `verbose_json`.
        assert_eq!(
            names(&p),
            [
                ("model", "whisper-1"),
                ("language", "en"),
                ("timestamp_granularities[]", "word"),
                ("timestamp_granularities[]", "segment"),
                ("temperature", "0.2"),
                ("response_format", "verbose_json"),
                ("file", "ID3 audio"),
            ]
        );
        let f = p.last().unwrap();
        assert_eq!(f.1.as_deref(), Some("talk.mp3"));
        assert_eq!(f.2.as_deref(), Some("audio/mpeg"));

        // The client's format is kept; gpt-4o models and other providers get no default.
        let fields = body(json!({"response_format": "text"}));
        let up = form_request(
            &d,
            Endpoint::AudioTranscriptions,
            "whisper-1",
            &fields,
            &files,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(names(&parts(&up).await)[1], ("response_format", "text"));
        let up = form_request(
            &d,
            Endpoint::AudioTranscriptions,
            "gpt-4o-transcribe",
            &Map::new(),
            &files,
            &Overrides::default(),
        )
        .unwrap();
        assert!(!names(&parts(&up).await)
            .iter()
            .any(|(n, _)| *n == "response_format"));
        let groq = dep("groq/whisper-large-v3", "");
        let up = form_request(
            &groq,
            Endpoint::AudioTranscriptions,
            "whisper-large-v3",
            &Map::new(),
            &files,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9/v1/audio/transcriptions");
        assert_eq!(names(&parts(&up).await).len(), 2);

        // Azure: the deployment URL with its api-version, `api-key`.
        let az = dep(
            "azure/whisper",
            ", api_version: '2024-06-01', api_base: 'https://r.openai.azure.com'",
        );
        let up = form_request(
            &az,
            Endpoint::AudioTranscriptions,
            "whisper",
            &Map::new(),
            &files,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            up.url,
            "https://r.openai.azure.com/openai/deployments/whisper/audio/transcriptions?api-version=2024-06-01"
        );
        assert!(up.headers.iter().any(|(n, v)| n == "api-key" && v == "k"));
        assert_eq!(names(&parts(&up).await)[0], ("model", "whisper"));
    }

    #[tokio::test]
    async fn image_edits_go_out_as_forms() {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\nrest";
        const JPEG: &[u8] = b"\xff\xd8\xffrest";
        let d = dep("openai/gpt-image-1", "");
        let fields =
            body(json!({"model": "g", "prompt": "add a hat", "n": "2", "size": "1024x1024"}));
        let files = [
            file("image[]", "a.png", PNG),
            file("image[]", "", JPEG),
            file("mask", "m.png", PNG),
        ];
        let up = form_request(
            &d,
            Endpoint::ImageEdits,
            "gpt-image-1",
            &fields,
            &files,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9/v1/images/edits");
        let p = parts(&up).await;
        let got: Vec<(&str, Option<&str>, Option<&str>)> = p
            .iter()
            .map(|(n, f, c, _)| (n.as_str(), f.as_deref(), c.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("model", None, None),
                ("prompt", None, None),
                ("n", None, None),
                ("size", None, None),
                ("image[]", Some("a.png"), Some("image/png")),
                ("image[]", Some("image.png"), Some("image/jpeg")),
                ("mask", Some("m.png"), Some("image/png")),
            ]
        );
        assert_eq!(p[0].3, "gpt-image-1");

        // dall-e-2 takes one image, as `image`.
        let d2 = dep("openai/dall-e-2", "");
        let one = [file("image", "a.png", PNG)];
        let up = form_request(
            &d2,
            Endpoint::ImageEdits,
            "dall-e-2",
            &fields,
            &one,
            &Overrides::default(),
        )
        .unwrap();
        assert!(names(&parts(&up).await).iter().any(|(n, _)| *n == "image"));
        let e = form_request(
            &d2,
            Endpoint::ImageEdits,
            "dall-e-2",
            &fields,
            &files,
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.message.contains("only supports editing a single image"),
            "{}",
            e.message
        );

        // Azure: the deployment URL names the model, so the form does not.
        let az = dep(
            "azure/gpt-image-1",
            ", api_version: '2025-04-01-preview', api_base: 'https://r.openai.azure.com'",
        );
        let up = form_request(
            &az,
            Endpoint::ImageEdits,
            "gpt-image-1",
            &fields,
            &files,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            up.url,
            "https://r.openai.azure.com/openai/deployments/gpt-image-1/images/edits?api-version=2025-04-01-preview"
        );
        assert!(!names(&parts(&up).await).iter().any(|(n, _)| *n == "model"));
    }

    #[test]
    fn providers_without_the_form_endpoints_are_refused() {
        let files = [file("file", "a.wav", b"RIFF")];
        for (model, endpoint) in [
            (
                "anthropic/claude-3-5-haiku-latest",
                Endpoint::AudioTranscriptions,
            ),
            ("gemini/gemini-2.5-flash", Endpoint::ImageEdits),
            ("mistral/voxtral-mini", Endpoint::AudioTranscriptions),
            ("xai/grok-stt", Endpoint::AudioTranscriptions),
            ("groq/whisper-large-v3", Endpoint::ImageEdits),
        ] {
            let d = dep(model, "");
            let e = form_request(
                &d,
                endpoint,
                "m",
                &Map::new(),
                &files,
                &Overrides::default(),
            )
            .unwrap_err();
            assert_eq!(e.status(), 400, "{model}");
            assert!(e.message.contains("does not support"), "{}", e.message);
        }
        assert!(serves(
            Provider::from_prefix("hosted_vllm").unwrap(),
            Endpoint::ImageEdits
        ));
        assert!(serves(
            Provider::from_prefix("deepinfra").unwrap(),
            Endpoint::AudioTranscriptions
        ));
        assert!(!serves(Provider::Azure, Endpoint::Moderations));
        assert!(serves(Provider::Azure, Endpoint::AudioTranscriptions));
    }

    #[test]
    fn providers_without_the_endpoint_are_refused() {
        for model in [
            "anthropic/claude-3-5-haiku-latest",
            "cohere/command-r",
            "ollama/llama3",
            "gemini/gemini-2.5-flash",
        ] {
            let d = dep(model, "");
            for e in [
                Endpoint::ImageGenerations,
                Endpoint::Moderations,
                Endpoint::AudioSpeech,
            ] {
                let err = request(
                    &d,
                    e,
                    "m",
                    &body(json!({"input": "x", "prompt": "x", "voice": "v"})),
                    &Overrides::default(),
                )
                .unwrap_err();
                assert_eq!(err.status(), 400, "{model} {e:?}");
                assert!(err.message.contains("does not support"), "{}", err.message);
            }
        }
        assert!(serves(
            Provider::from_prefix("groq").unwrap(),
            Endpoint::AudioSpeech
        ));
        assert!(!serves(
            Provider::from_prefix("openrouter").unwrap(),
            Endpoint::ImageGenerations
        ));
        assert!(serves(
            Provider::from_prefix("dashscope").unwrap(),
            Endpoint::AudioSpeech
        ));
        assert!(!serves(
            Provider::from_prefix("dashscope").unwrap(),
            Endpoint::ImageGenerations
        ));
    }
}
