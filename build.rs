//! Build-time inputs: rebuilds when a migration is added or edited (`sqlx::migrate!` embeds the
//! files), and reduces LiteLLM's model price map to the fields the gateway reads, so the binary
//! carries (and start-up touches) a fraction of the 3 MB file.
use std::collections::HashMap;

/// The fields `spend::prices::ModelPrice` reads; everything else in an entry is dropped.
const STRING_FIELDS: [&str; 2] = ["litellm_provider", "mode"];
const NUMBER_FIELDS: [&str; 8] = [
    "max_tokens",
    "max_input_tokens",
    "max_output_tokens",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
];

include!("src/spend/capability_flags.in");
include!("src/spend/media_fields.in");

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=build.rs");
    let src = "data/model_prices_and_context_window.json";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=src/spend/capability_flags.in");
    println!("cargo:rerun-if-changed=src/spend/media_fields.in");
    let text = std::fs::read_to_string(src).unwrap_or_else(|e| fail(&format!("{src}: {e}")));
    let map: HashMap<String, serde_json::Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| fail(&format!("{src}: {e}")));
    let mut names: Vec<&String> = map.keys().filter(|n| *n != "sample_spec").collect();
    names.sort();
    // Laid out for `spend::prices`: the names (sorted, for a binary search) concatenated, the
    // reduced entries' JSON concatenated, and for each entry where its name and its JSON end
    // (two little-endian u32). Offsets rather than a table of string slices: a table of
    // pointers would be relocated, so written, by the loader at every start.
    let (mut name_text, mut entry_text, mut index) = (String::new(), String::new(), Vec::new());
    for name in names {
        if let Some(entry) = compact(&map[name]) {
            name_text.push_str(name);
            entry_text
                .push_str(&serde_json::to_string(&entry).unwrap_or_else(|e| fail(&e.to_string())));
            for end in [name_text.len(), entry_text.len()] {
                let end = u32::try_from(end).unwrap_or_else(|_| fail("price map over 4 GB"));
                index.extend_from_slice(&end.to_le_bytes());
            }
        }
    }
    let dir = std::env::var("OUT_DIR").unwrap_or_else(|e| fail(&format!("OUT_DIR: {e}")));
    for (file, bytes) in [
        ("price_names.txt", name_text.as_bytes()),
        ("price_entries.txt", entry_text.as_bytes()),
        ("price_index.bin", &index[..]),
    ] {
        std::fs::write(format!("{dir}/{file}"), bytes)
            .unwrap_or_else(|e| fail(&format!("{dir}/{file}: {e}")));
    }
}

/// One entry with only the read fields, numbers normalised; `None` for an entry the runtime
/// parser would reject (not an object, or a non-string provider/mode).
fn compact(entry: &serde_json::Value) -> Option<serde_json::Value> {
    let obj = entry.as_object()?;
    let mut out = serde_json::Map::new();
    for f in STRING_FIELDS {
        match obj.get(f) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) => {
                out.insert(f.into(), s.clone().into());
            }
            Some(_) => return None,
        }
    }
    let number = |f: &str| match obj.get(f) {
        Some(serde_json::Value::Number(n)) => n.as_f64().filter(|n| n.is_finite()),
        Some(serde_json::Value::String(s)) => s.parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    };
    for f in NUMBER_FIELDS {
        if let Some(n) = number(f) {
            out.insert(f.into(), n.into());
        }
    }
    for (f, short) in MEDIA_FIELDS {
        if let Some(n) = number(f) {
            out.insert(short.into(), n.into());
        }
    }
    if obj.get("mode").and_then(serde_json::Value::as_str) == Some(TRANSCRIPTION_MODE) {
        let per_second = transcription_per_second(
            number("input_cost_per_second"),
            number("output_cost_per_second"),
        );
        if let Some(n) = per_second {
            out.insert(PER_SECOND_FIELD.into(), n.into());
        }
        if let Some(n) = number(AUDIO_TOKEN_FIELD.0) {
            out.insert(AUDIO_TOKEN_FIELD.1.into(), n.into());
        }
    }
    // Capability flags as two bit masks (a few bytes instead of the flags' names).
    let (mut set, mut known) = (0u32, 0u32);
    for (bit, f) in CAPABILITY_FLAGS.iter().enumerate() {
        if let Some(serde_json::Value::Bool(b)) = obj.get(*f) {
            known |= 1 << bit;
            if *b {
                set |= 1 << bit;
            }
        }
    }
    if known != 0 {
        out.insert(CAPS_TRUE.into(), set.into());
        out.insert(CAPS_KNOWN.into(), known.into());
    }
    Some(out.into())
}

fn fail(msg: &str) -> ! {
    eprintln!("build.rs: {msg}");
    std::process::exit(1)
}
