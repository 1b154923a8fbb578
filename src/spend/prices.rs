//! LiteLLM's model price map, embedded at build time (`data/`, reduced by `build.rs` to the
//! fields read here), overridable at run time by `LITELLM_MODEL_COST_MAP_PATH`. An embedded
//! entry is parsed the first time it is looked up, into the fields cost and `/model/info`
//! need: a gateway reads the few entries of its deployments, so neither the table of all
//! 4,000-odd models (about 2 MB) nor the text it is read from (about 1 MB) stays in memory.

use crate::api::Usage;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The embedded map as `build.rs` lays it out: names sorted and concatenated, entries' JSON
/// concatenated, and per entry the end of its name and of its JSON (two little-endian u32).
static NAMES: &str = include_str!(concat!(env!("OUT_DIR"), "/price_names.txt"));
static ENTRIES: &str = include_str!(concat!(env!("OUT_DIR"), "/price_entries.txt"));
static INDEX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/price_index.bin"));

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelPrice {
    #[serde(default)]
    pub litellm_provider: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, deserialize_with = "num")]
    pub max_tokens: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub max_input_tokens: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub max_output_tokens: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub input_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub output_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub cache_read_input_token_cost: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub cache_creation_input_token_cost: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub output_cost_per_reasoning_token: Option<f64>,
    /// The rest of the entry: capability flags the map records (see `capability_flags.in`),
    /// for `/model/info` and `/model_group/info`, and image and speech prices.
    #[serde(flatten, deserialize_with = "rest")]
    rest: Rest,
}

include!("capability_flags.in");
include!("media_fields.in");

/// What [`ModelPrice`] reads from the fields it does not name.
#[derive(Debug, Clone, Default)]
struct Rest {
    capabilities: Capabilities,
    /// Boxed: only image, speech and transcription entries (about one in six) have any.
    media: Option<Box<MediaPrices>>,
}

/// Prices of calls not billed by chat tokens (`spend::media`), when the entry sets any.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaPrices {
    pub input_cost_per_image: Option<f64>,
    pub output_cost_per_image: Option<f64>,
    pub input_cost_per_pixel: Option<f64>,
    pub input_cost_per_character: Option<f64>,
    pub input_cost_per_image_token: Option<f64>,
    pub output_cost_per_image_token: Option<f64>,
    /// A transcription's price per second of audio (see `media_fields.in`).
    pub transcription_per_second: Option<f64>,
    /// A token-billed transcription's price per audio token.
    pub input_cost_per_audio_token: Option<f64>,
}

impl MediaPrices {
    /// Reads the fields from a map entry under their names, or the embedded map's short ones.
    fn read(m: &HashMap<String, serde_json::Value>) -> Self {
        let get = |name: &str| {
            let short = MEDIA_FIELDS
                .iter()
                .find(|(f, _)| *f == name)
                .map(|(_, s)| *s);
            m.get(name)
                .or_else(|| short.and_then(|s| m.get(s)))
                .and_then(finite)
        };
        Self {
            input_cost_per_image: get("input_cost_per_image"),
            output_cost_per_image: get("output_cost_per_image"),
            input_cost_per_pixel: get("input_cost_per_pixel"),
            input_cost_per_character: get("input_cost_per_character"),
            input_cost_per_image_token: get("input_cost_per_image_token"),
            output_cost_per_image_token: get("output_cost_per_image_token"),
            transcription_per_second: m.get(PER_SECOND_FIELD).and_then(finite).or_else(|| {
                transcription_per_second(
                    m.get("input_cost_per_second").and_then(finite),
                    m.get("output_cost_per_second").and_then(finite),
                )
            }),
            input_cost_per_audio_token: m
                .get(AUDIO_TOKEN_FIELD.0)
                .or_else(|| m.get(AUDIO_TOKEN_FIELD.1))
                .and_then(finite),
        }
    }
}

/// A price as the map writes it (a number, sometimes a numeric string); nothing else.
fn finite(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// Which of [`CAPABILITY_FLAGS`] an entry sets, and to what (bit i is flag i).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    known: u32,
    set: u32,
}

/// Reads the flags from a full map entry (`"supports_vision": true`) or from the embedded
/// map's masks, and the media prices; anything else in the entry is ignored.
fn rest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Rest, D::Error> {
    let m = HashMap::<String, serde_json::Value>::deserialize(d)?;
    let media = MediaPrices::read(&m);
    Ok(Rest {
        capabilities: capabilities(&m),
        media: (media != MediaPrices::default()).then(|| Box::new(media)),
    })
}

fn capabilities(m: &HashMap<String, serde_json::Value>) -> Capabilities {
    let mut caps = Capabilities::default();
    for (bit, flag) in CAPABILITY_FLAGS.iter().enumerate() {
        if let Some(b) = m.get(*flag).and_then(serde_json::Value::as_bool) {
            caps.known |= 1 << bit;
            if b {
                caps.set |= 1 << bit;
            }
        }
    }
    let mask = |k: &str| m.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0) as u32;
    caps.known |= mask(CAPS_KNOWN);
    caps.set |= mask(CAPS_TRUE) & caps.known;
    caps
}

impl ModelPrice {
    /// The capability flags the entry sets, by name (`("supports_vision", true)`).
    pub fn capabilities(&self) -> impl Iterator<Item = (&'static str, bool)> + '_ {
        CAPABILITY_FLAGS
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.rest.capabilities.known & (1 << bit) != 0)
            .map(|(bit, flag)| (*flag, self.rest.capabilities.set & (1 << bit) != 0))
    }

    /// Image, speech and transcription prices, when the entry has any.
    pub fn media(&self) -> Option<&MediaPrices> {
        self.rest.media.as_deref()
    }

    /// Transcription prices are kept for transcription models only, as the embedded map
    /// keeps them (a full map read at run time then prices calls the same way).
    fn keep_transcription_prices_of_transcription_models(&mut self) {
        if self.mode.as_deref() == Some(TRANSCRIPTION_MODE) {
            return;
        }
        if let Some(m) = self.rest.media.as_deref_mut() {
            m.transcription_per_second = None;
            m.input_cost_per_audio_token = None;
            if *m == MediaPrices::default() {
                self.rest.media = None;
            }
        }
    }
}

/// Some entries carry numbers as strings (or other junk); treat anything non-numeric as absent.
fn num<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

pub struct PriceMap {
    table: Table,
}

enum Table {
    /// Every entry parsed: a map read at run time (`LITELLM_MODEL_COST_MAP_PATH`, tests).
    Parsed(HashMap<String, ModelPrice>),
    /// The embedded map: entry `i` parsed on its first lookup (`None`: it did not parse).
    Embedded(Box<[OnceLock<Option<Box<ModelPrice>>>]>),
}

/// The `at`-th offset of the embedded index: entry `at / 2`'s name end (even) or JSON end (odd).
fn embedded_end(at: usize) -> usize {
    INDEX
        .get(at * 4..at * 4 + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b| u32::from_le_bytes(b) as usize)
}

/// Entry `i`'s part of `text`: its name (`field` 0, in [`NAMES`]) or its JSON (1, [`ENTRIES`]).
fn embedded_part(text: &'static str, i: usize, field: usize) -> &'static str {
    let start = if i == 0 {
        0
    } else {
        embedded_end(2 * (i - 1) + field)
    };
    text.get(start..embedded_end(2 * i + field)).unwrap_or("")
}

/// Where `key` is among the embedded map's `n` sorted names.
fn embedded_find(n: usize, key: &str) -> Option<usize> {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match embedded_part(NAMES, mid, 0).cmp(key) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(mid),
        }
    }
    None
}

fn parse_entry(json: &str) -> Option<ModelPrice> {
    let mut p = serde_json::from_str::<ModelPrice>(json).ok()?;
    p.keep_transcription_prices_of_transcription_models();
    Some(p)
}

impl PriceMap {
    pub fn parse(json: &str) -> Result<Self, String> {
        // Entries are read as raw slices of the input and parsed one at a time: no JSON tree of
        // the whole file is ever built, so start-up does not leave megabytes behind.
        let raw: Vec<(String, &serde_json::value::RawValue)> =
            serde_json::from_str::<HashMap<String, &serde_json::value::RawValue>>(json)
                .map_err(|e| format!("model price map: {e}"))?
                .into_iter()
                .collect();
        let mut models = HashMap::with_capacity(raw.len());
        for (k, v) in raw {
            if k == "sample_spec" {
                continue;
            }
            if let Some(p) = parse_entry(v.get()) {
                models.insert(k, p);
            }
        }
        Ok(Self {
            table: Table::Parsed(models),
        })
    }

    /// The map `build.rs` embedded, with no entry parsed yet.
    fn embedded() -> Self {
        let n = INDEX.len() / 8;
        Self {
            table: Table::Embedded((0..n).map(|_| OnceLock::new()).collect()),
        }
    }

    pub fn global() -> &'static PriceMap {
        static MAP: OnceLock<PriceMap> = OnceLock::new();
        MAP.get_or_init(|| {
            if let Ok(path) = std::env::var("LITELLM_MODEL_COST_MAP_PATH") {
                match std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| Self::parse(&t))
                {
                    Ok(m) => return m,
                    Err(e) => tracing::warn!(
                        "LITELLM_MODEL_COST_MAP_PATH={path}: {e}; using the embedded price map"
                    ),
                }
            }
            Self::embedded()
        })
    }

    /// Entries in the map (embedded ones counted whether or not they parse).
    pub fn len(&self) -> usize {
        match &self.table {
            Table::Parsed(m) => m.len(),
            Table::Embedded(e) => e.len(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&ModelPrice> {
        self.get_key_value(key).map(|(_, p)| p)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_key_value(&self, key: &str) -> Option<(&str, &ModelPrice)> {
        match &self.table {
            Table::Parsed(m) => m.get_key_value(key).map(|(k, v)| (k.as_str(), v)),
            Table::Embedded(parsed) => {
                let i = embedded_find(parsed.len(), key)?;
                let p = parsed
                    .get(i)?
                    .get_or_init(|| parse_entry(embedded_part(ENTRIES, i, 1)).map(Box::new));
                p.as_deref().map(|p| (embedded_part(NAMES, i, 0), p))
            }
        }
    }

    pub fn lookup(
        &self,
        base_model: Option<&str>,
        provider: &str,
        model: &str,
    ) -> Option<(&str, &ModelPrice)> {
        let get = |k: &str| self.get_key_value(k);
        base_model
            .and_then(get)
            .or_else(|| get(&[provider, "/", model].concat()))
            .or_else(|| get(model))
    }
}

/// Per-token prices for one call: deployment overrides win over the map.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
}

impl Rates {
    pub fn from_price(p: &ModelPrice) -> Self {
        Self {
            input: p.input_cost_per_token.unwrap_or(0.0),
            output: p.output_cost_per_token.unwrap_or(0.0),
            cache_read: p.cache_read_input_token_cost,
            cache_write: p.cache_creation_input_token_cost,
        }
    }

    /// LiteLLM's chat formula: uncached prompt tokens at the input rate, cache reads and writes
    /// at their rates (input rate when absent), completion tokens at the output rate.
    pub fn cost(&self, u: &Usage) -> f64 {
        let cached = u.cached_tokens.min(u.prompt_tokens);
        let created = u.cache_creation_tokens.min(u.prompt_tokens - cached);
        let uncached = u.prompt_tokens - cached - created;
        uncached as f64 * self.input
            + cached as f64 * self.cache_read.unwrap_or(self.input)
            + created as f64 * self.cache_write.unwrap_or(self.input)
            + u.completion_tokens as f64 * self.output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_of_the_embedded_map_parses() {
        let full = include_str!("../../data/model_prices_and_context_window.json");
        let raw: HashMap<String, serde_json::Value> = serde_json::from_str(full).unwrap();
        let map = PriceMap::embedded();
        // Every entry but the documentation one becomes a price row.
        assert_eq!(map.len(), raw.len() - 1);
        assert!(map.len() > 1000);
        // The reduced copy the binary carries reads exactly as the full file does, found by
        // its name (the binary search sees every name in order).
        let from_full = PriceMap::parse(full).unwrap();
        let Table::Parsed(models) = &from_full.table else {
            panic!("parsed")
        };
        assert_eq!(models.len(), map.len());
        for (name, p) in models {
            let (key, q) = map.get_key_value(name).unwrap();
            assert_eq!(key, name);
            assert_eq!(format!("{p:?}"), format!("{q:?}"), "{name}");
        }
        assert!(map.get("no-such-model").is_none());
        assert!(map.get("").is_none());
        // The reduction keeps under a third of the file's text (plus 8 index bytes an entry).
        let carried = NAMES.len() + ENTRIES.len();
        assert!(carried < full.len() / 3, "{carried}");
        assert_eq!(INDEX.len(), 8 * map.len());
    }

    #[test]
    fn gpt_4o_mock_usage_costs_what_litellm_reports() {
        let map = PriceMap::embedded();
        let (key, p) = map.lookup(None, "openai", "gpt-4o").unwrap();
        assert_eq!(key, "gpt-4o");
        let c = Rates::from_price(p).cost(&Usage::new(10, 20));
        assert!((c - 0.000225).abs() < 1e-12, "{c}");
    }

    #[test]
    fn cached_tokens_use_the_cache_rate() {
        let r = Rates {
            input: 1.0,
            output: 2.0,
            cache_read: Some(0.1),
            cache_write: Some(1.25),
        };
        let mut u = Usage::new(100, 10);
        u.cached_tokens = 50;
        u.cache_creation_tokens = 20;
        assert!((r.cost(&u) - (30.0 + 5.0 + 25.0 + 20.0)).abs() < 1e-9);
    }
}
