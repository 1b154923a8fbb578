//! Image generation, moderations and text to speech upstream: which providers serve them on
//! OpenAI's paths, and the requests that go there. The mock answers are in [`super::mock`],
//! the prices in `spend::media`.
//!
//! As in LiteLLM, these calls go to OpenAI, Azure OpenAI (images and speech, on the
//! deployment's URL) and the OpenAI-compatible providers whose upstream speaks OpenAI's paths
//! (`{api_base}/images/generations`, `/moderations`, `/audio/speech`). Providers without such
//! an endpoint (Anthropic, Bedrock, Gemini, Vertex AI, Cohere, Ollama, and the compatible
//! ones LiteLLM sends elsewhere) are refused with a 400 before anything is sent.
//!
//! What must not go in here: response handling and accounting (the handler's).

use super::openai::{self, Endpoint, Overrides, UpstreamRequest};
use super::Provider;
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

/// Whether `provider` serves `endpoint` (one of the media endpoints) on OpenAI's path.
/// Azure OpenAI has no moderations endpoint; every compatible provider is sent moderations,
/// as LiteLLM sends them to any deployment's `api_base`.
pub fn serves(provider: Provider, endpoint: Endpoint) -> bool {
    match (provider, endpoint) {
        (Provider::OpenAi, _) => true,
        (Provider::Azure, Endpoint::ImageGenerations | Endpoint::AudioSpeech) => true,
        (Provider::Compat(c), Endpoint::ImageGenerations) => !NO_OPENAI_IMAGES.contains(&c.name),
        (Provider::Compat(c), Endpoint::AudioSpeech) => !NO_OPENAI_SPEECH.contains(&c.name),
        (Provider::Compat(_), Endpoint::Moderations) => true,
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
        _ => openai::build_request(d, endpoint, upstream_model, body, false, ov),
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
