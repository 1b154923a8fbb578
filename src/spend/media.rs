//! What image generation and text-to-speech calls cost: the price rules that per-token chat
//! rates do not cover. Pure functions of the price map, the deployment's own prices and the
//! facts of one call; no I/O, and nothing here runs for chat, completion or embedding calls.
//!
//! The rules follow LiteLLM's cost calculator:
//!
//! * Images are priced per image. The map keys image prices by quality and size
//!   (`standard/1024-x-1024/dall-e-3`, `azure/hd/1024-x-1792/dall-e-3`, ...); the first key
//!   found, in LiteLLM's order, gives `input_cost_per_image`, `output_cost_per_image` or
//!   `input_cost_per_pixel` (times width × height). The deployment's own prices come first.
//!   Size and quality are the answer's when it states them, else the request's, else
//!   `1024x1024` and `standard`; the number of images is the number the answer holds.
//! * gpt-image models on OpenAI and Azure are priced by the token usage their answer reports
//!   (text and image tokens in, image tokens out); an answer without usage costs only the
//!   deployment's own `output_cost_per_image`, if it sets one.
//! * Speech is priced per character of `input` (whitespace not counted) when the model has
//!   `input_cost_per_character`, else per input token when it has `input_cost_per_token`
//!   (tokens estimated from the text, where LiteLLM counts them with a tokenizer), else 0.
//! * Image edits are priced as image generations are.
//! * Transcriptions whose answer reports token usage (gpt-4o-transcribe) are priced by it:
//!   text tokens in at the input rate, audio tokens at `input_cost_per_audio_token` (the input
//!   rate when the map has none), output tokens at the output rate. Others are priced per
//!   second of audio (`output_cost_per_second` when above 0, else `input_cost_per_second`);
//!   the seconds are the answer's `duration`, else the file's length, as LiteLLM takes them.
//!
//! A price that cannot be found costs 0, as LiteLLM logs such calls.

use super::prices::{MediaPrices, PriceMap, Rates};
use serde_json::Value;

/// Whose prices apply to a call.
#[derive(Debug, Clone, Copy)]
pub struct Priced<'a> {
    /// LiteLLM's provider name (`openai`, `azure`, ...).
    pub provider: &'a str,
    /// The model the call went to, as the upstream knows it.
    pub model: &'a str,
    /// `model_info.base_model`, when the deployment sets one (it names the prices instead).
    pub base_model: Option<&'a str>,
    /// Prices set on the deployment itself (`model_info` or `litellm_params`).
    pub own: MediaPrices,
    /// The deployment's per-token rates (its own, else the map's).
    pub rates: Rates,
}

impl Priced<'_> {
    /// The model name prices are looked up by: `base_model` or the model, with the provider
    /// prefix LiteLLM adds when the name has none.
    fn cost_model(&self) -> String {
        let m = self.base_model.unwrap_or(self.model);
        let prefixed = m
            .split_once('/')
            .is_some_and(|(p, _)| crate::providers::Provider::from_prefix(p).is_some());
        if prefixed {
            m.to_string()
        } else {
            format!("{}/{m}", self.provider)
        }
    }
}

/// Token usage an image answer reports (gpt-image models).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageUsage {
    pub input_tokens: u64,
    pub input_text_tokens: u64,
    pub input_image_tokens: u64,
    pub output_tokens: u64,
    /// `output_tokens_details`, when the answer breaks the output down: (text, image).
    pub output_details: Option<(u64, u64)>,
    pub total_tokens: u64,
}

impl ImageUsage {
    /// Reads an answer's `usage` object; `None` when it has none.
    pub fn from_json(v: &Value) -> Option<Self> {
        let n = |v: Option<&Value>, k: &str| v.and_then(|o| o.get(k)).and_then(Value::as_u64);
        let usage = Some(v).filter(|v| v.is_object())?;
        let input = usage.get("input_tokens");
        let output = usage.get("output_tokens");
        if input.is_none() && output.is_none() {
            return None;
        }
        let in_details = usage.get("input_tokens_details");
        let out_details = usage.get("output_tokens_details").filter(|d| d.is_object());
        Some(Self {
            input_tokens: input.and_then(Value::as_u64).unwrap_or(0),
            input_text_tokens: n(in_details, "text_tokens").unwrap_or(0),
            input_image_tokens: n(in_details, "image_tokens").unwrap_or(0),
            output_tokens: output.and_then(Value::as_u64).unwrap_or(0),
            output_details: out_details.map(|d| {
                (
                    n(Some(d), "text_tokens").unwrap_or(0),
                    n(Some(d), "image_tokens").unwrap_or(0),
                )
            }),
            total_tokens: n(Some(usage), "total_tokens").unwrap_or(0),
        })
    }
}

/// The facts of one image generation call that its price depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageFacts<'a> {
    /// The answer's `size`, else the request's (`1024x1024`, `1024-x-1024`).
    pub size: Option<&'a str>,
    /// The answer's `quality`, else the request's.
    pub quality: Option<&'a str>,
    /// Images the answer holds (before the call: the `n` asked for).
    pub images: u64,
    pub usage: Option<ImageUsage>,
}

/// What an image generation call costs.
pub fn image_cost(map: &PriceMap, who: &Priced<'_>, facts: &ImageFacts<'_>) -> f64 {
    let token_priced = matches!(who.provider, "openai" | "azure")
        && who.cost_model().to_ascii_lowercase().contains("gpt-image");
    if token_priced {
        return image_token_cost(map, who, facts);
    }
    per_image_cost(map, who, facts).unwrap_or(0.0)
}

/// Before an image call: its price by the request's size, quality and `n`, for budget
/// reservations. Models billed by tokens afterwards (gpt-image) are estimated at the map's
/// per-image price for the quality asked, or for `high` when that finds none.
pub fn expected_image_cost(map: &PriceMap, who: &Priced<'_>, facts: &ImageFacts<'_>) -> f64 {
    per_image_cost(map, who, facts)
        .or_else(|| {
            let high = ImageFacts {
                quality: Some("high"),
                ..*facts
            };
            per_image_cost(map, who, &high)
        })
        .unwrap_or(0.0)
}

/// LiteLLM's default image rule: the first price key found by size and quality, then the
/// first of per-image and per-pixel prices set, the deployment's own before the map's.
/// `None` when the size cannot be read or no price is found.
fn per_image_cost(map: &PriceMap, who: &Priced<'_>, facts: &ImageFacts<'_>) -> Option<f64> {
    let size = normalize_size(facts.size.filter(|s| !s.is_empty()).unwrap_or("1024x1024"));
    let (h, w) = size.split_once("-x-")?;
    let pixels = h.trim().parse::<u64>().ok()? as f64 * w.trim().parse::<u64>().ok()? as f64;
    let quality = facts
        .quality
        .filter(|q| !q.is_empty())
        .unwrap_or("standard");
    let model = who.cost_model();
    let provider = who.provider;
    let bare = model.strip_prefix(&format!("{provider}/"));
    let base = match bare {
        Some(b) => format!("{provider}/{size}/{b}"),
        None => format!("{size}/{model}"),
    };
    let last = model.rsplit('/').next().unwrap_or(&model);
    let without_provider = format!("{size}/{last}");
    let candidates = [
        Some(format!("{quality}/{base}")),
        Some(format!(
            "{provider}/{quality}/{size}/{}",
            bare.unwrap_or(&model)
        )),
        Some(base.clone()),
        Some(format!("high/{base}")),
        Some(format!("{quality}/{without_provider}")),
        Some(without_provider),
        Some(model.clone()),
        bare.map(String::from),
    ];
    let shared = candidates
        .iter()
        .flatten()
        .find_map(|k| map.get(k))
        .map(|p| p.media().copied().unwrap_or_default());
    let n = facts.images as f64;
    let own_set = who.own != MediaPrices::default();
    [own_set.then_some(who.own), shared]
        .into_iter()
        .flatten()
        .find_map(|t| {
            t.input_cost_per_image
                .map(|p| p * n)
                .or(t.output_cost_per_image.map(|p| p * n))
                .or(t.input_cost_per_pixel.map(|p| p * pixels * n))
        })
}

/// `1024x1024` -> `1024-x-1024`, as the map spells sizes.
fn normalize_size(size: &str) -> String {
    if size.contains('x') && !size.contains("-x-") {
        size.replace('x', "-x-")
    } else {
        size.to_string()
    }
}

/// gpt-image models: text and image tokens in, image (and text) tokens out, at the map's
/// token prices (image-token prices where set, else the text ones).
fn image_token_cost(map: &PriceMap, who: &Priced<'_>, facts: &ImageFacts<'_>) -> f64 {
    let flat = || who.own.output_cost_per_image.unwrap_or(0.0) * facts.images as f64;
    let Some(u) = facts
        .usage
        .filter(|u| u.input_tokens + u.output_tokens + u.total_tokens > 0)
    else {
        return flat();
    };
    let entry = map
        .lookup(who.base_model, who.provider, who.model)
        .map(|(_, p)| p);
    let media = entry.and_then(|p| p.media()).copied().unwrap_or_default();
    let input = who.rates.input;
    let output = who.rates.output;
    let image_in = u.input_image_tokens.min(u.input_tokens);
    let text_in = if u.input_text_tokens > 0 {
        u.input_text_tokens
    } else {
        u.input_tokens - image_in
    };
    let (text_out, image_out) = match u.output_details {
        None => (0, u.output_tokens),
        Some((text, image)) => {
            let text = text + u.output_tokens.saturating_sub(text + image);
            if text == 0 && image == 0 {
                (u.output_tokens, 0)
            } else {
                (text, image)
            }
        }
    };
    text_in as f64 * input
        + image_in as f64 * media.input_cost_per_image_token.unwrap_or(input)
        + text_out as f64 * output
        + image_out as f64 * media.output_cost_per_image_token.unwrap_or(output)
}

/// What a text-to-speech call of `input` costs.
pub fn speech_cost(map: &PriceMap, who: &Priced<'_>, input: &str) -> f64 {
    let per_char = who.own.input_cost_per_character.or_else(|| {
        map.lookup(who.base_model, who.provider, who.model)
            .and_then(|(_, p)| p.media())
            .and_then(|m| m.input_cost_per_character)
    });
    if let Some(price) = per_char.filter(|p| *p != 0.0) {
        let chars = input.chars().filter(|c| !c.is_whitespace()).count();
        return chars as f64 * price;
    }
    if who.rates.input != 0.0 {
        // About four characters a token, as the gateway estimates prompts elsewhere.
        let tokens = (input.len() as u64).div_ceil(4);
        return tokens as f64 * who.rates.input;
    }
    0.0
}

/// Token usage a transcription answer reports (`usage.type: "tokens"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscriptionTokens {
    pub input_tokens: u64,
    pub audio_tokens: u64,
    pub text_tokens: u64,
    pub output_tokens: u64,
}

impl TranscriptionTokens {
    /// Reads an answer's `usage` when it counts tokens; `None` for a duration usage or none.
    pub fn from_json(usage: &Value) -> Option<Self> {
        if usage.get("type").and_then(Value::as_str) != Some("tokens") {
            return None;
        }
        let n = |v: Option<&Value>, k: &str| v.and_then(|o| o.get(k)).and_then(Value::as_u64);
        let details = usage.get("input_token_details");
        Some(Self {
            input_tokens: n(Some(usage), "input_tokens").unwrap_or(0),
            audio_tokens: n(details, "audio_tokens").unwrap_or(0),
            text_tokens: n(details, "text_tokens").unwrap_or(0),
            output_tokens: n(Some(usage), "output_tokens").unwrap_or(0),
        })
    }

    /// Whether LiteLLM prices the call by these tokens rather than by the second.
    fn counts(&self) -> bool {
        self.input_tokens + self.audio_tokens + self.text_tokens + self.output_tokens > 0
    }
}

/// What a transcription costs: by its answer's token usage when it reports any, else by
/// `seconds` of audio.
pub fn transcription_cost(
    map: &PriceMap,
    who: &Priced<'_>,
    seconds: f64,
    tokens: Option<TranscriptionTokens>,
) -> f64 {
    let entry = map
        .lookup(who.base_model, who.provider, who.model)
        .and_then(|(_, p)| p.media());
    if let Some(t) = tokens.filter(TranscriptionTokens::counts) {
        let audio_price = who
            .own
            .input_cost_per_audio_token
            .or_else(|| entry.and_then(|m| m.input_cost_per_audio_token))
            .unwrap_or(who.rates.input);
        let text = if t.text_tokens > 0 {
            t.text_tokens
        } else {
            t.input_tokens.saturating_sub(t.audio_tokens)
        };
        return text as f64 * who.rates.input
            + t.audio_tokens as f64 * audio_price
            + t.output_tokens as f64 * who.rates.output;
    }
    let per_second = who
        .own
        .transcription_per_second
        .or_else(|| entry.and_then(|m| m.transcription_per_second));
    match per_second {
        Some(p) if seconds.is_finite() && seconds > 0.0 => p * seconds,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A map with the entries these tests price by (shapes as in LiteLLM's map).
    fn map() -> PriceMap {
        PriceMap::parse(
            &json!({
                "azure/standard/1024-x-1024/dall-e-3": {"input_cost_per_pixel": 4.19617e-08, "output_cost_per_token": 0.0, "litellm_provider": "azure", "mode": "image_generation"},
                "azure/hd/1024-x-1792/dall-e-3": {"input_cost_per_pixel": 7.19343e-08, "output_cost_per_token": 0.0, "litellm_provider": "azure", "mode": "image_generation"},
                "standard/1024-x-1024/dall-e-3": {"input_cost_per_pixel": 3.81469e-08, "output_cost_per_token": 0.0, "litellm_provider": "openai", "mode": "image_generation"},
                "hd/1024-x-1792/dall-e-3": {"input_cost_per_pixel": 6.53973e-08, "output_cost_per_token": 0.0, "litellm_provider": "openai", "mode": "image_generation"},
                "256-x-256/dall-e-2": {"input_cost_per_pixel": 2.4414e-07, "output_cost_per_token": 0.0, "litellm_provider": "openai", "mode": "image_generation"},
                "medium/1024-x-1024/gpt-image-1-mini": {"input_cost_per_image": 0.011, "litellm_provider": "openai", "mode": "image_generation"},
                "high/1024-x-1024/gpt-image-1": {"input_cost_per_image": 0.167, "input_cost_per_pixel": 1.59263611e-07, "litellm_provider": "openai", "mode": "image_generation"},
                "gpt-image-1": {"input_cost_per_token": 5e-06, "input_cost_per_image_token": 1e-05, "output_cost_per_image_token": 4e-05, "litellm_provider": "openai", "mode": "image_generation"},
                "tts-1": {"input_cost_per_character": 1.5e-05, "litellm_provider": "openai", "mode": "audio_speech"},
                "azure/tts-1-hd": {"input_cost_per_character": 3.3e-05, "litellm_provider": "azure", "mode": "audio_speech"},
                "gpt-4o-mini-tts": {"input_cost_per_token": 6e-07, "output_cost_per_token": 1e-05, "litellm_provider": "openai", "mode": "audio_speech"},
                "whisper-1": {"input_cost_per_second": 0.0001, "output_cost_per_second": 0.0001, "litellm_provider": "openai", "mode": "audio_transcription"},
                "groq/whisper-large-v3": {"input_cost_per_second": 3.083e-05, "output_cost_per_second": 0.0, "litellm_provider": "groq", "mode": "audio_transcription"},
                "gpt-4o-transcribe": {"input_cost_per_audio_token": 2.5e-06, "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "input_cost_per_second": 0.0001, "litellm_provider": "openai", "mode": "audio_transcription"},
                "video-model": {"input_cost_per_second": 0.5, "litellm_provider": "openai", "mode": "video_generation"},
            })
            .to_string(),
        )
        .unwrap()
    }

    fn who<'a>(map: &PriceMap, provider: &'a str, model: &'a str) -> Priced<'a> {
        let rates = map
            .lookup(None, provider, model)
            .map(|(_, p)| Rates::from_price(p))
            .unwrap_or_default();
        Priced {
            provider,
            model,
            base_model: None,
            own: MediaPrices::default(),
            rates,
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    fn images(
        size: Option<&'static str>,
        quality: Option<&'static str>,
        n: u64,
    ) -> ImageFacts<'static> {
        ImageFacts {
            size,
            quality,
            images: n,
            usage: None,
        }
    }

    #[test]
    fn dall_e_is_priced_per_pixel_by_size_and_quality() {
        let m = map();
        // Defaults: 1024x1024, standard quality.
        close(
            image_cost(&m, &who(&m, "openai", "dall-e-3"), &images(None, None, 1)),
            3.81469e-08 * 1024.0 * 1024.0,
        );
        close(
            image_cost(
                &m,
                &who(&m, "openai", "dall-e-3"),
                &images(Some("1024x1792"), Some("hd"), 2),
            ),
            6.53973e-08 * 1024.0 * 1792.0 * 2.0,
        );
        // Azure's keys carry the provider first.
        close(
            image_cost(
                &m,
                &who(&m, "azure", "dall-e-3"),
                &images(Some("1024x1024"), None, 1),
            ),
            4.19617e-08 * 1024.0 * 1024.0,
        );
        close(
            image_cost(
                &m,
                &who(&m, "azure", "dall-e-3"),
                &images(Some("1024-x-1792"), Some("hd"), 3),
            ),
            7.19343e-08 * 1024.0 * 1792.0 * 3.0,
        );
        // Keys without a quality are found too.
        close(
            image_cost(
                &m,
                &who(&m, "openai", "dall-e-2"),
                &images(Some("256x256"), None, 1),
            ),
            2.4414e-07 * 256.0 * 256.0,
        );
    }

    #[test]
    fn per_image_prices_and_the_deployments_own_come_first() {
        let m = map();
        // A compatible provider's gpt-image-1-mini: the per-image key by quality.
        close(
            image_cost(
                &m,
                &who(&m, "hosted_vllm", "gpt-image-1-mini"),
                &images(None, Some("medium"), 2),
            ),
            0.022,
        );
        let mut own = who(&m, "azure", "my-dalle-deployment");
        own.own.output_cost_per_image = Some(0.05);
        close(image_cost(&m, &own, &images(None, None, 3)), 0.15);
        // `base_model` names the prices of a deployment called something else.
        let mut based = who(&m, "azure", "my-dalle-deployment");
        based.base_model = Some("azure/dall-e-3");
        close(
            image_cost(&m, &based, &images(None, None, 1)),
            4.19617e-08 * 1024.0 * 1024.0,
        );
    }

    #[test]
    fn unknown_models_and_unreadable_sizes_cost_nothing() {
        let m = map();
        assert_eq!(
            image_cost(&m, &who(&m, "openai", "mystery"), &images(None, None, 1)),
            0.0
        );
        assert_eq!(
            image_cost(
                &m,
                &who(&m, "openai", "dall-e-3"),
                &images(Some("auto"), None, 1)
            ),
            0.0
        );
        // No images in the answer: nothing to pay for.
        assert_eq!(
            image_cost(&m, &who(&m, "openai", "dall-e-3"), &images(None, None, 0)),
            0.0
        );
    }

    #[test]
    fn gpt_image_is_priced_by_its_token_usage() {
        let m = map();
        let u = ImageUsage::from_json(&json!({
            "input_tokens": 50, "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
            "output_tokens": 4160, "total_tokens": 4210
        }))
        .unwrap();
        let facts = ImageFacts {
            images: 1,
            usage: Some(u),
            ..Default::default()
        };
        close(
            image_cost(&m, &who(&m, "openai", "gpt-image-1"), &facts),
            40.0 * 5e-06 + 10.0 * 1e-05 + 4160.0 * 4e-05,
        );
        // An output breakdown: text tokens at the text rate (none here), images at theirs.
        let u = ImageUsage::from_json(&json!({
            "input_tokens": 20, "output_tokens": 100, "total_tokens": 120,
            "output_tokens_details": {"text_tokens": 0, "image_tokens": 100}
        }))
        .unwrap();
        let facts = ImageFacts {
            images: 1,
            usage: Some(u),
            ..Default::default()
        };
        close(
            image_cost(&m, &who(&m, "openai", "gpt-image-1"), &facts),
            20.0 * 5e-06 + 100.0 * 4e-05,
        );
        // No usage (a mock, an old answer): the deployment's own per-image price, else 0.
        let none = images(None, Some("high"), 2);
        assert_eq!(
            image_cost(&m, &who(&m, "openai", "gpt-image-1"), &none),
            0.0
        );
        let mut own = who(&m, "openai", "gpt-image-1");
        own.own.output_cost_per_image = Some(0.04);
        close(image_cost(&m, &own, &none), 0.08);
        // Before the call, the reservation uses the per-image price (`high` for gpt-image).
        close(
            expected_image_cost(
                &m,
                &who(&m, "openai", "gpt-image-1"),
                &images(None, None, 2),
            ),
            0.334,
        );
    }

    #[test]
    fn speech_is_priced_per_character_or_per_token() {
        let m = map();
        // 11 characters once the spaces are left out.
        close(
            speech_cost(&m, &who(&m, "openai", "tts-1"), "hello world !"),
            11.0 * 1.5e-05,
        );
        close(
            speech_cost(&m, &who(&m, "azure", "tts-1-hd"), "hi there"),
            7.0 * 3.3e-05,
        );
        // Token-priced speech models: tokens estimated from the text.
        close(
            speech_cost(&m, &who(&m, "openai", "gpt-4o-mini-tts"), "abcdefgh"),
            2.0 * 6e-07,
        );
        let mut own = who(&m, "openai", "voice-x");
        own.own.input_cost_per_character = Some(1e-06);
        close(speech_cost(&m, &own, "a b c"), 3e-06);
        assert_eq!(
            speech_cost(&m, &who(&m, "openai", "unknown-tts"), "hello"),
            0.0
        );
    }

    #[test]
    fn transcriptions_are_priced_per_second_or_by_tokens() {
        let m = map();
        close(
            transcription_cost(&m, &who(&m, "openai", "whisper-1"), 12.5, None),
            12.5 * 0.0001,
        );
        // `output_cost_per_second` of 0: the input price.
        close(
            transcription_cost(&m, &who(&m, "groq", "whisper-large-v3"), 10.0, None),
            10.0 * 3.083e-05,
        );
        // A duration usage is no token usage: still per second.
        let duration = TranscriptionTokens::from_json(&json!({"type": "duration", "seconds": 3}));
        assert_eq!(duration, None);
        // Token usage: text and audio tokens in, text out.
        let t = TranscriptionTokens::from_json(&json!({
            "type": "tokens", "input_tokens": 120, "output_tokens": 30, "total_tokens": 150,
            "input_token_details": {"audio_tokens": 100, "text_tokens": 20}
        }));
        close(
            transcription_cost(&m, &who(&m, "openai", "gpt-4o-transcribe"), 60.0, t),
            20.0 * 2.5e-06 + 100.0 * 2.5e-06 + 30.0 * 1e-05,
        );
        // The deployment's own price wins; nothing known costs nothing.
        let mut own = who(&m, "azure", "my-whisper");
        assert_eq!(transcription_cost(&m, &own, 5.0, None), 0.0);
        own.own.transcription_per_second = Some(0.001);
        close(transcription_cost(&m, &own, 5.0, None), 0.005);
        assert_eq!(
            transcription_cost(&m, &who(&m, "openai", "whisper-1"), f64::NAN, None),
            0.0
        );
        // Per-second prices of other modes are not transcription prices.
        assert_eq!(
            transcription_cost(&m, &who(&m, "openai", "video-model"), 5.0, None),
            0.0
        );
    }

    #[test]
    fn image_usage_reads_openais_shape() {
        assert_eq!(ImageUsage::from_json(&json!(null)), None);
        assert_eq!(ImageUsage::from_json(&json!({})), None);
        let u = ImageUsage::from_json(
            &json!({"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}),
        )
        .unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.output_details),
            (3, 5, None)
        );
    }
}
