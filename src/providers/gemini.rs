//! Google Gemini (`gemini/`, AI Studio) and Vertex AI (`vertex_ai/`) as upstreams: OpenAI chat
//! and embedding requests -> `generateContent` / `batchEmbedContents` bodies and URLs, Gemini
//! responses and SSE events -> OpenAI shapes, Google errors -> LiteLLM's errors, and the pure half
//! of Vertex service-account auth (key parsing, the RS256-signed JWT, the token exchange body).
//!
//! Pure translation, no I/O: fetching the OAuth token, caching it and sending requests belong to
//! the caller. The mapping follows LiteLLM's: `system`/`developer` messages become
//! `systemInstruction`, roles become `user`/`model` with consecutive same-role turns merged, tool
//! calls and results become `functionCall` / `functionResponse` parts, sampling parameters go to
//! `generationConfig`, JSON schemas are cut down to the OpenAPI subset Gemini accepts, and
//! `reasoning_effort` becomes a `thinkingConfig` budget. Gemini's thought signatures ride in the
//! tool-call id (`call_<id>__thought__<signature>`, LiteLLM's convention) so they survive the
//! round trip through an OpenAI client.

use super::params::{self, ParamPolicy};
use super::stream::StreamItem;
use super::Provider;
use crate::error::{ApiError, ApiResult, ErrorClass};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};

/// Google AI Studio's API root (the caller passes it, or a deployment's `api_base`).
pub const DEFAULT_API_BASE: &str = "https://generativelanguage.googleapis.com";
/// The OAuth scope Vertex AI calls need.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Token endpoint used when a service-account file does not name one.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// `anthropic_version` Vertex AI expects in Anthropic-format bodies.
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";
/// Separator between a tool-call id and the Gemini thought signature appended to it.
pub const THOUGHT_SIGNATURE_SEPARATOR: &str = "__thought__";

/// OpenAI parameters the adapter translates (`user` is accepted and dropped, as LiteLLM does;
/// `parallel_tool_calls` has no Gemini equivalent and is dropped too).
pub const SUPPORTED: &[&str] = &[
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "n",
    "response_format",
    "tools",
    "functions",
    "tool_choice",
    "parallel_tool_calls",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "reasoning_effort",
    "thinking",
    "logprobs",
    "top_logprobs",
    "modalities",
    "web_search_options",
    "user",
    "extra_headers",
];

/// LiteLLM's thinking budgets for `reasoning_effort`.
const EFFORT_BUDGETS: &[(&str, u64)] = &[
    ("minimal", 128),
    ("low", 1024),
    ("medium", 2048),
    ("high", 4096),
];

/// Provider-specific extras (snake_case or camelCase at the top of the request) that belong in
/// `generationConfig`.
const GENERATION_CONFIG_EXTRAS: &[(&str, &str)] = &[
    ("top_k", "topK"),
    ("candidate_count", "candidateCount"),
    ("response_mime_type", "responseMimeType"),
    ("response_schema", "responseSchema"),
    ("response_json_schema", "responseJsonSchema"),
    ("response_modalities", "responseModalities"),
    ("media_resolution", "mediaResolution"),
    ("speech_config", "speechConfig"),
    ("thinking_config", "thinkingConfig"),
    ("response_logprobs", "responseLogprobs"),
    (
        "enable_enhanced_civic_answers",
        "enableEnhancedCivicAnswers",
    ),
];

/// Fields of Gemini's `Schema` (an OpenAPI subset); anything else in a JSON schema is dropped.
const SCHEMA_FIELDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// How deep `$ref`s are followed before a (recursive) schema is cut off.
const MAX_SCHEMA_DEPTH: usize = 24;

// ---------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------

/// The `generateContent` (or streaming) URL on Google AI Studio. `api_base` may be given with or
/// without a trailing `/v1beta`; the key, when given, goes in the query string.
pub fn gemini_url(api_base: &str, model: &str, stream: bool, api_key: Option<&str>) -> String {
    let base = studio_root(api_base);
    let model = model.strip_prefix("models/").unwrap_or(model);
    let mut url = if stream {
        format!("{base}/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("{base}/models/{model}:generateContent")
    };
    if let Some(k) = api_key {
        url.push(if stream { '&' } else { '?' });
        url.push_str("key=");
        url.push_str(&query_escape(k));
    }
    url
}

/// The `batchEmbedContents` URL on Google AI Studio.
pub fn embed_url(api_base: &str, model: &str, api_key: Option<&str>) -> String {
    let base = studio_root(api_base);
    let model = model.strip_prefix("models/").unwrap_or(model);
    let mut url = format!("{base}/models/{model}:batchEmbedContents");
    if let Some(k) = api_key {
        url.push_str("?key=");
        url.push_str(&query_escape(k));
    }
    url
}

fn studio_root(api_base: &str) -> String {
    let base = api_base.trim_end_matches('/');
    if base.ends_with("/v1beta") || base.ends_with("/v1") {
        base.to_string()
    } else {
        format!("{base}/v1beta")
    }
}

/// The Vertex AI `generateContent` (or streaming) URL for a Google model. Location `global` is
/// served from `aiplatform.googleapis.com`; an `api_base` replaces scheme and host. A numeric
/// model is a deployed endpoint id (`.../endpoints/{id}`).
pub fn vertex_url(
    api_base: Option<&str>,
    project: &str,
    location: &str,
    model: &str,
    stream: bool,
) -> String {
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let resource = if !model.is_empty() && model.bytes().all(|b| b.is_ascii_digit()) {
        format!("endpoints/{model}")
    } else {
        format!("publishers/google/models/{model}")
    };
    format!(
        "{}/v1/projects/{project}/locations/{location}/{resource}:{method}",
        vertex_host(api_base, location)
    )
}

/// The Vertex AI URL for an Anthropic model (`vertex_ai/claude-*`), which takes an Anthropic
/// Messages body (see [`vertex_anthropic_body`]).
pub fn vertex_anthropic_url(
    api_base: Option<&str>,
    project: &str,
    location: &str,
    model: &str,
    stream: bool,
) -> String {
    let method = if stream {
        "streamRawPredict"
    } else {
        "rawPredict"
    };
    format!(
        "{}/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:{method}",
        vertex_host(api_base, location)
    )
}

fn vertex_host(api_base: Option<&str>, location: &str) -> String {
    match api_base {
        Some(b) => {
            let b = b.trim_end_matches('/');
            b.strip_suffix("/v1").unwrap_or(b).to_string()
        }
        None if location == "global" => "https://aiplatform.googleapis.com".to_string(),
        None => format!("https://{location}-aiplatform.googleapis.com"),
    }
}

/// An Anthropic Messages body (from `anthropic::chat_body`) as Vertex AI wants it: no `model`
/// (it is in the URL) and `anthropic_version` set.
pub fn vertex_anthropic_body(mut body: Map<String, Value>) -> Map<String, Value> {
    body.remove("model");
    body.insert(
        "anthropic_version".into(),
        Value::String(VERTEX_ANTHROPIC_VERSION.into()),
    );
    body
}

/// Percent-encodes a query-string value (everything but RFC 3986 unreserved characters).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Chat request
// ---------------------------------------------------------------------------------------------

/// Translates an OpenAI chat body (deployment defaults already merged, LiteLLM-only fields
/// removed) into a Gemini `generateContent` body for `model` on Google AI Studio.
pub fn chat_body(
    body: Map<String, Value>,
    model: &str,
    policy: &ParamPolicy<'_>,
) -> ApiResult<Map<String, Value>> {
    chat_body_for(Provider::Gemini, body, model, policy)
}

/// [`chat_body`] for a Vertex AI deployment (same body; errors name `vertex_ai`).
pub fn vertex_chat_body(
    body: Map<String, Value>,
    model: &str,
    policy: &ParamPolicy<'_>,
) -> ApiResult<Map<String, Value>> {
    chat_body_for(Provider::VertexAi, body, model, policy)
}

fn chat_body_for(
    provider: Provider,
    mut body: Map<String, Value>,
    model: &str,
    policy: &ParamPolicy<'_>,
) -> ApiResult<Map<String, Value>> {
    params::apply(&mut body, SUPPORTED, policy, provider, model)?;
    body.remove("model");
    let messages = match body.remove("messages") {
        Some(Value::Array(m)) => m,
        _ => Vec::new(),
    };
    let (mut system, mut contents) = convert_messages(messages)?;
    if let Some(Value::Object(si)) =
        take_either(&mut body, "systemInstruction", "system_instruction")
    {
        if let Some(Value::Array(parts)) = si.get("parts") {
            system.extend(parts.iter().cloned());
        }
    }
    if contents.is_empty() && !system.is_empty() {
        // Gemini refuses a request without contents: a lone system prompt is sent as the user turn.
        contents.push(json!({"role": "user", "parts": std::mem::take(&mut system)}));
    }

    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }

    let gc = generation_config(&mut body)?;
    let tools = tools(&mut body);
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    let mut tool_config = match take_either(&mut body, "toolConfig", "tool_config") {
        Some(Value::Object(tc)) => tc,
        _ => Map::new(),
    };
    if let Some(tc) = take(&mut body, "tool_choice") {
        tool_config.insert(
            "functionCallingConfig".into(),
            function_calling_config(&tc)?,
        );
    }
    if !tool_config.is_empty() {
        out.insert("toolConfig".into(), Value::Object(tool_config));
    }
    if !gc.is_empty() {
        out.insert("generationConfig".into(), Value::Object(gc));
    }
    for k in [
        "stream",
        "stream_options",
        "extra_headers",
        "user",
        "parallel_tool_calls",
    ] {
        body.remove(k);
    }
    // Gemini-native fields (`safetySettings`, `cachedContent`, `labels`, ...) and other extras go
    // as they are, snake_case names in Google's JSON spelling.
    for (k, v) in body {
        if v.is_null() {
            continue;
        }
        out.entry(camel_case(&k)).or_insert(v);
    }
    Ok(out)
}

fn take(body: &mut Map<String, Value>, key: &str) -> Option<Value> {
    body.remove(key).filter(|v| !v.is_null())
}

fn take_either(body: &mut Map<String, Value>, a: &str, b: &str) -> Option<Value> {
    let first = take(body, a);
    let second = take(body, b);
    first.or(second)
}

/// `safety_settings` -> `safetySettings`.
fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for (i, c) in key.chars().enumerate() {
        if c == '_' && i > 0 {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn generation_config(body: &mut Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let mut gc = match take_either(body, "generationConfig", "generation_config") {
        Some(Value::Object(g)) => g,
        _ => Map::new(),
    };
    for (snake, camel) in GENERATION_CONFIG_EXTRAS {
        if let Some(v) = take_either(body, camel, snake) {
            gc.insert((*camel).into(), v);
        }
    }
    if let Some(v) = take(body, "temperature") {
        gc.insert("temperature".into(), v);
    }
    if let Some(v) = take(body, "top_p") {
        gc.insert("topP".into(), v);
    }
    let max_tokens = take(body, "max_tokens");
    if let Some(v) = take(body, "max_completion_tokens").or(max_tokens) {
        gc.insert("maxOutputTokens".into(), v);
    }
    match take(body, "stop") {
        Some(Value::String(s)) if !s.is_empty() => {
            gc.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            gc.insert("stopSequences".into(), Value::Array(a));
        }
        _ => {}
    }
    if let Some(v) = take(body, "n") {
        gc.insert("candidateCount".into(), v);
    }
    for (from, to) in [
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ] {
        if let Some(v) = take(body, from) {
            gc.insert(to.into(), v);
        }
    }
    if let Some(v) = take(body, "logprobs") {
        gc.insert("responseLogprobs".into(), v);
    }
    if let Some(v) = take(body, "top_logprobs") {
        gc.insert("logprobs".into(), v);
    }
    if let Some(Value::Array(m)) = take(body, "modalities") {
        let upper: Vec<Value> = m
            .iter()
            .filter_map(Value::as_str)
            .map(|s| Value::String(s.to_ascii_uppercase()))
            .collect();
        gc.insert("responseModalities".into(), Value::Array(upper));
    }
    if let Some(rf) = take(body, "response_format") {
        apply_response_format(&rf, &mut gc);
    }
    if let Some(tc) = take(body, "thinking").and_then(|t| thinking_config(&t)) {
        gc.insert("thinkingConfig".into(), tc);
    }
    if let Some(effort) = take(body, "reasoning_effort") {
        if let Some(tc) = effort.as_str().and_then(effort_config) {
            gc.insert("thinkingConfig".into(), tc);
        }
    }
    Ok(gc)
}

/// `reasoning_effort` -> `thinkingConfig`.
fn effort_config(effort: &str) -> Option<Value> {
    if matches!(effort, "none" | "disable") {
        return Some(json!({"thinkingBudget": 0, "includeThoughts": false}));
    }
    EFFORT_BUDGETS
        .iter()
        .find(|(e, _)| *e == effort)
        .map(|(_, budget)| json!({"thinkingBudget": budget, "includeThoughts": true}))
}

/// Anthropic-style `thinking` (`{"type": "enabled", "budget_tokens": N}`) -> `thinkingConfig`.
fn thinking_config(t: &Value) -> Option<Value> {
    match t.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let mut c = json!({"includeThoughts": true});
            if let (Some(b), Some(o)) = (t.get("budget_tokens"), c.as_object_mut()) {
                o.insert("thinkingBudget".into(), b.clone());
            }
            Some(c)
        }
        Some("disabled") => Some(json!({"thinkingBudget": 0, "includeThoughts": false})),
        _ => None,
    }
}

fn apply_response_format(rf: &Value, gc: &mut Map<String, Value>) {
    let schema = match rf.get("type").and_then(Value::as_str) {
        Some("json_object") => rf.get("response_schema"),
        Some("json_schema") => rf
            .pointer("/json_schema/schema")
            .or_else(|| rf.get("response_schema")),
        _ => return,
    };
    gc.insert("responseMimeType".into(), json!("application/json"));
    if let Some(s) = schema.filter(|s| s.is_object()) {
        gc.insert("responseSchema".into(), clean_schema(s));
    }
}

/// A JSON schema as Gemini's OpenAPI-subset `Schema`: `$ref`s into `$defs`/`definitions` inlined,
/// `additionalProperties`, `$schema`, `strict` and other unknown keywords removed, `oneOf` read
/// as `anyOf`, `allOf` merged, and `null` alternatives turned into `nullable`.
pub fn clean_schema(schema: &Value) -> Value {
    let mut defs = Map::new();
    for k in ["$defs", "definitions"] {
        if let Some(Value::Object(d)) = schema.get(k) {
            defs.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    clean_node(schema, &defs, 0)
}

fn clean_node(node: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Value::Object(o) = node else {
        return node.clone();
    };
    if depth > MAX_SCHEMA_DEPTH {
        return json!({"type": "object"});
    }
    let mut out = Map::new();
    if let Some(target) = o
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| defs.get(name))
    {
        if let Value::Object(resolved) = clean_node(target, defs, depth + 1) {
            out = resolved;
        }
    }
    for (k, v) in o {
        match k.as_str() {
            "properties" => {
                if let Value::Object(props) = v {
                    let props: Map<String, Value> = props
                        .iter()
                        .map(|(name, s)| (name.clone(), clean_node(s, defs, depth + 1)))
                        .collect();
                    out.insert(k.clone(), Value::Object(props));
                }
            }
            "items" => {
                out.insert(k.clone(), clean_node(v, defs, depth + 1));
            }
            "anyOf" | "oneOf" => {
                if let Value::Array(alts) = v {
                    let alts: Vec<Value> = alts
                        .iter()
                        .map(|s| clean_node(s, defs, depth + 1))
                        .collect();
                    out.insert("anyOf".into(), Value::Array(alts));
                }
            }
            "allOf" => {
                if let Value::Array(parts) = v {
                    for p in parts {
                        if let Value::Object(p) = clean_node(p, defs, depth + 1) {
                            for (pk, pv) in p {
                                out.entry(pk).or_insert(pv);
                            }
                        }
                    }
                }
            }
            key if SCHEMA_FIELDS.contains(&key) => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    if let Some(Value::Array(types)) = out.get("type") {
        let non_null: Vec<&Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .collect();
        let nullable = non_null.len() < types.len();
        let first = non_null.first().map(|t| (*t).clone());
        match first {
            Some(t) => out.insert("type".into(), t),
            None => out.remove("type"),
        };
        if nullable {
            out.insert("nullable".into(), Value::Bool(true));
        }
    }
    if let Some(Value::Array(alts)) = out.get_mut("anyOf") {
        let before = alts.len();
        alts.retain(|a| a.get("type").and_then(Value::as_str) != Some("null"));
        if alts.len() < before {
            out.insert("nullable".into(), Value::Bool(true));
        }
    }
    if let Some(Value::Array(alts)) = out.get("anyOf") {
        if alts.len() == 1 {
            if let Some(Value::Object(only)) = out.remove("anyOf").and_then(|a| match a {
                Value::Array(mut a) => a.pop(),
                _ => None,
            }) {
                for (k, v) in only {
                    out.entry(k).or_insert(v);
                }
            }
        }
    }
    // Gemini only knows `enum` and `date-time` as string formats and rejects the rest.
    if out.get("type").and_then(Value::as_str) == Some("string")
        && out
            .get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| f != "enum" && f != "date-time")
    {
        out.remove("format");
    }
    Value::Object(out)
}

/// OpenAI `tools` / `functions` / `web_search_options` -> Gemini `tools`: every function in one
/// `functionDeclarations` entry, Gemini-native tools (`googleSearch`, `codeExecution`, ...) as
/// their own entries.
fn tools(body: &mut Map<String, Value>) -> Vec<Value> {
    let mut declarations = Vec::new();
    let mut native = Vec::new();
    let mut list = match take(body, "tools") {
        Some(Value::Array(t)) => t,
        _ => Vec::new(),
    };
    if let Some(Value::Array(f)) = take(body, "functions") {
        list.extend(
            f.into_iter()
                .map(|f| json!({"type": "function", "function": f})),
        );
    }
    for t in list {
        let Value::Object(mut t) = t else {
            continue;
        };
        if let Some(Value::Object(f)) = t.get("function") {
            declarations.push(function_declaration(f));
            continue;
        }
        match t.remove("type") {
            Some(Value::String(k)) if k == "web_search" || k == "web_search_preview" => {
                native.push(json!({"googleSearch": {}}));
            }
            _ if t.is_empty() => {}
            _ => native.push(Value::Object(
                t.into_iter().map(|(k, v)| (camel_case(&k), v)).collect(),
            )),
        }
    }
    if take(body, "web_search_options").is_some() {
        native.push(json!({"googleSearch": {}}));
    }
    let mut out = Vec::new();
    if !declarations.is_empty() {
        out.push(json!({ "functionDeclarations": declarations }));
    }
    out.extend(native);
    out
}

fn function_declaration(f: &Map<String, Value>) -> Value {
    let mut d = Map::new();
    d.insert(
        "name".into(),
        f.get("name")
            .cloned()
            .unwrap_or(Value::String(String::new())),
    );
    if let Some(desc) = f.get("description").filter(|d| !d.is_null()) {
        d.insert("description".into(), desc.clone());
    }
    if let Some(p) = f.get("parameters").filter(|p| p.is_object()) {
        let p = clean_schema(p);
        // Gemini rejects an OBJECT schema with no properties; a function without parameters
        // simply has none.
        let empty_object = p.get("type").and_then(Value::as_str) == Some("object")
            && p.get("properties")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
        if !empty_object {
            d.insert("parameters".into(), p);
        }
    }
    Value::Object(d)
}

fn function_calling_config(tc: &Value) -> ApiResult<Value> {
    match tc {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({"mode": "AUTO"})),
            "required" | "any" => Ok(json!({"mode": "ANY"})),
            "none" => Ok(json!({"mode": "NONE"})),
            other => Err(unsupported_tool_choice(other)),
        },
        Value::Object(_) => {
            let name = tc
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            Ok(json!({"mode": "ANY", "allowedFunctionNames": [name]}))
        }
        other => Err(unsupported_tool_choice(&other.to_string())),
    }
}

fn unsupported_tool_choice(v: &str) -> ApiError {
    ApiError::new(
        ErrorClass::UnsupportedParams,
        format!(
            "litellm.UnsupportedParamsError: Gemini doesn't support tool_choice={v}. Supported tool_choice values=['auto', 'required', 'none', json object]. To drop it from the call, set `litellm.drop_params = True`."
        ),
    )
    .with_param("tool_choice")
}

/// Splits OpenAI messages into `systemInstruction` parts and Gemini `contents`.
fn convert_messages(messages: Vec<Value>) -> ApiResult<(Vec<Value>, Vec<Value>)> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // Tool-call id -> function name, for the `functionResponse` of a later tool message.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, m) in messages.into_iter().enumerate() {
        let Value::Object(mut m) = m else {
            continue;
        };
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user")
            .to_string();
        let (turn_role, parts) = match role.as_str() {
            "system" | "developer" => {
                if let Some(t) = joined_text(m.get("content")).filter(|t| !t.is_empty()) {
                    system.push(json!({ "text": t }));
                }
                continue;
            }
            "user" => ("user", user_parts(m.remove("content"), i)?),
            "assistant" => ("model", model_parts(&mut m, &mut call_names)?),
            "tool" | "function" => ("user", vec![function_response(&mut m, &call_names)]),
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid 'messages[{i}].role': '{other}' is not one of system, developer, user, assistant, tool, function."
                ))
                .with_param("messages"))
            }
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((r, p)) if *r == turn_role => p.extend(parts),
            _ => turns.push((turn_role, parts)),
        }
    }
    let contents = turns
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    Ok((system, contents))
}

/// Text of a string content or the concatenated text parts of a list content.
fn joined_text(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

fn user_parts(content: Option<Value>, i: usize) -> ApiResult<Vec<Value>> {
    match content {
        Some(Value::String(s)) if !s.is_empty() => Ok(vec![json!({ "text": s })]),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.into_iter().enumerate() {
                if let Some(part) = user_part(p, i, j)? {
                    out.push(part);
                }
            }
            Ok(out)
        }
        _ => Ok(Vec::new()),
    }
}

/// One OpenAI content part as a Gemini part.
fn user_part(part: Value, i: usize, j: usize) -> ApiResult<Option<Value>> {
    let Value::Object(p) = part else {
        return Ok(None);
    };
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    match p.get("type").and_then(Value::as_str) {
        Some("text") => Ok(s(p.get("text"))
            .filter(|t| !t.is_empty())
            .map(|t| json!({ "text": t }))),
        Some("image_url") => {
            let img = p.get("image_url");
            let url = s(img.and_then(|u| u.get("url")))
                .or_else(|| s(img))
                .unwrap_or_default();
            let format = s(img.and_then(|u| u.get("format")));
            media_part(&url, format.as_deref(), Some("image/jpeg"), i, j).map(Some)
        }
        Some("input_audio") => {
            let a = p.get("input_audio");
            let data = s(a.and_then(|a| a.get("data"))).unwrap_or_default();
            let mime = s(a.and_then(|a| a.get("format"))).map(|f| audio_mime(&f));
            media_part(&data, mime.as_deref(), None, i, j).map(Some)
        }
        Some("file") => {
            let f = p.get("file");
            let data = s(f.and_then(|f| f.get("file_data")))
                .or_else(|| s(f.and_then(|f| f.get("file_id"))))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "messages[{i}].content[{j}].file needs a file_id or file_data"
                    ))
                    .with_param("messages")
                })?;
            let format = s(f.and_then(|f| f.get("format")));
            media_part(&data, format.as_deref(), None, i, j).map(Some)
        }
        // A part already in Gemini's shape (`inlineData`, `fileData`, ...) passes through.
        None => Ok(Some(Value::Object(p))),
        Some(_) => Ok(None),
    }
}

fn audio_mime(format: &str) -> String {
    if format.contains('/') {
        format.to_string()
    } else {
        format!("audio/{format}")
    }
}

/// A data URL, raw base64 or a URI as an `inlineData` / `fileData` part. `format` (the client's
/// explicit MIME type) wins over what the URL says.
fn media_part(
    url: &str,
    format: Option<&str>,
    default_mime: Option<&str>,
    i: usize,
    j: usize,
) -> ApiResult<Value> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            ApiError::bad_request(format!(
                "messages[{i}].content[{j}]: invalid data URL, expected data:<type>;base64,<data>"
            ))
            .with_param("messages")
        })?;
        let meta_mime = meta.split(';').next().filter(|t| !t.is_empty());
        let mime = format
            .or(meta_mime)
            .or(default_mime)
            .unwrap_or("application/octet-stream");
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    let is_uri = ["gs://", "https://", "http://"]
        .iter()
        .any(|p| url.starts_with(p));
    if is_uri {
        let mut fd = Map::new();
        if let Some(mime) = format
            .map(str::to_string)
            .or_else(|| mime_from_extension(url).map(str::to_string))
            .or_else(|| default_mime.map(str::to_string))
        {
            fd.insert("mimeType".into(), Value::String(mime));
        }
        fd.insert("fileUri".into(), Value::String(url.to_string()));
        return Ok(json!({ "fileData": fd }));
    }
    match format.or(default_mime) {
        Some(mime) if !url.is_empty() => Ok(json!({"inlineData": {"mimeType": mime, "data": url}})),
        _ => Err(ApiError::bad_request(format!(
            "messages[{i}].content[{j}]: expected a data URL, a gs:// or http(s) URL, or base64 data with a format"
        ))
        .with_param("messages")),
    }
}

/// MIME type for a URL's file extension (query and fragment ignored), for types Gemini reads.
pub fn mime_from_extension(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    if ext.contains('/') {
        return None;
    }
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "json" => "application/json",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "m4a" => "audio/m4a",
        "mp4" => "video/mp4",
        "mov" => "video/mov",
        "mpeg" | "mpg" => "video/mpeg",
        "avi" => "video/avi",
        "wmv" => "video/wmv",
        "flv" => "video/flv",
        "webm" => "video/webm",
        "3gp" | "3gpp" => "video/3gpp",
        _ => return None,
    })
}

/// An assistant message as `model` parts: text, then one `functionCall` per tool call.
fn model_parts(
    m: &mut Map<String, Value>,
    call_names: &mut HashMap<String, String>,
) -> ApiResult<Vec<Value>> {
    let mut parts = Vec::new();
    if let Some(t) = joined_text(m.get("content")).filter(|t| !t.is_empty()) {
        parts.push(json!({ "text": t }));
    }
    for c in super::shape::take_assistant_calls(m, String::new)? {
        let mut part = Map::new();
        part.insert(
            "functionCall".into(),
            json!({"name": c.name, "args": c.input}),
        );
        if let Some((_, sig)) = c.id.split_once(THOUGHT_SIGNATURE_SEPARATOR) {
            part.insert("thoughtSignature".into(), Value::String(sig.to_string()));
        }
        if !c.id.is_empty() {
            call_names.insert(c.id, c.name);
        }
        parts.push(Value::Object(part));
    }
    Ok(parts)
}

/// A tool result as a `functionResponse` part; a JSON-object result is sent as the response
/// itself, anything else as `{"content": <text>}`.
fn function_response(m: &mut Map<String, Value>, call_names: &HashMap<String, String>) -> Value {
    let name = m
        .get("tool_call_id")
        .and_then(Value::as_str)
        .and_then(|id| call_names.get(id).cloned())
        .or_else(|| m.get("name").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let text = joined_text(m.get("content")).unwrap_or_default();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(o)) => Value::Object(o),
        _ => json!({ "content": text }),
    };
    json!({"functionResponse": {"name": name, "response": response}})
}

// ---------------------------------------------------------------------------------------------
// Chat response
// ---------------------------------------------------------------------------------------------

/// Gemini `finishReason` -> OpenAI `finish_reason` (before the tool-call adjustment).
pub fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ => "stop",
    }
}

/// Gemini `usageMetadata` -> OpenAI `usage`: thoughts count as completion tokens and are
/// reported as `reasoning_tokens`; cached context tokens as `cached_tokens`.
pub fn usage_json(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("promptTokenCount");
    let thoughts = n("thoughtsTokenCount");
    let completion = n("candidatesTokenCount").saturating_add(thoughts);
    let total = u
        .get("totalTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(prompt.saturating_add(completion));
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": n("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    })
}

/// A non-streaming `GenerateContentResponse` as an OpenAI chat completion.
pub fn parse_chat(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad_body(&e.to_string()))?;
    if !v.is_object() {
        return Err(bad_body("not a JSON object"));
    }
    let candidates = v
        .get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut choices = Vec::with_capacity(candidates.len().max(1));
    for (i, cand) in candidates.iter().enumerate() {
        choices.push(candidate_choice(cand, i as u64));
    }
    if choices.is_empty() {
        // The prompt itself was blocked (`promptFeedback.blockReason`), or nothing came back.
        let blocked = v.pointer("/promptFeedback/blockReason").is_some();
        choices.push(json!({
            "finish_reason": if blocked { "content_filter" } else { "stop" },
            "index": 0,
            "message": {"content": if blocked { Value::Null } else { json!("") }, "role": "assistant"},
        }));
    }
    Ok(super::shape::completion(
        v.get("responseId")
            .and_then(Value::as_str)
            .map(|s| Value::String(s.to_string()))
            .unwrap_or_else(|| json!(super::mock::new_chat_id())),
        v.get("modelVersion").cloned().unwrap_or(Value::Null),
        Value::Array(choices),
        usage_json(v.get("usageMetadata").unwrap_or(&Value::Null)),
    ))
}

/// What one candidate's parts add up to.
#[derive(Default)]
struct Parts {
    text: String,
    reasoning: String,
    tool_calls: Vec<Value>,
    images: Vec<Value>,
}

/// `first_tool_index` numbers the tool calls (streaming); `None` leaves the index out.
fn read_parts(cand: &Value, first_tool_index: Option<u64>) -> Parts {
    let mut p = Parts::default();
    let parts = cand
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for part in parts {
        if let Some(fc) = part.get("functionCall") {
            let index = first_tool_index.map(|f| f + p.tool_calls.len() as u64);
            p.tool_calls
                .push(tool_call(fc, part.get("thoughtSignature"), index));
        } else if let Some(t) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                p.reasoning.push_str(t);
            } else {
                p.text.push_str(t);
            }
        } else if let Some(d) = part.get("inlineData") {
            let mime = d.get("mimeType").and_then(Value::as_str).unwrap_or("");
            let data = d.get("data").and_then(Value::as_str).unwrap_or("");
            if mime.starts_with("image/") {
                p.images.push(json!({
                    "image_url": {"url": format!("data:{mime};base64,{data}")},
                    "index": p.images.len(),
                    "type": "image_url",
                }));
            }
        }
    }
    p
}

/// A `functionCall` part as an OpenAI tool call with a fresh id carrying the thought signature.
fn tool_call(fc: &Value, signature: Option<&Value>, index: Option<u64>) -> Value {
    let mut id = format!("call_{}", uuid::Uuid::new_v4().simple());
    if let Some(sig) = signature.and_then(Value::as_str).filter(|s| !s.is_empty()) {
        id.push_str(THOUGHT_SIGNATURE_SEPARATOR);
        id.push_str(sig);
    }
    let mut call = Map::new();
    if let Some(i) = index {
        call.insert("index".into(), json!(i));
    }
    call.insert("id".into(), Value::String(id));
    call.insert("type".into(), json!("function"));
    call.insert(
        "function".into(),
        json!({
            "name": fc.get("name").cloned().unwrap_or(Value::String(String::new())),
            "arguments": fc.get("args").map(Value::to_string).unwrap_or_else(|| "{}".into()),
        }),
    );
    Value::Object(call)
}

fn candidate_choice(cand: &Value, position: u64) -> Value {
    let index = cand
        .get("index")
        .and_then(Value::as_u64)
        .unwrap_or(position);
    let p = read_parts(cand, None);
    let mut finish = cand
        .get("finishReason")
        .and_then(Value::as_str)
        .map(finish_reason)
        .unwrap_or("stop");
    if finish == "stop" && !p.tool_calls.is_empty() {
        finish = "tool_calls";
    }
    let mut message = Map::new();
    let content = if p.text.is_empty() && (!p.tool_calls.is_empty() || finish == "content_filter") {
        Value::Null
    } else {
        Value::String(p.text)
    };
    message.insert("content".into(), content);
    message.insert("role".into(), json!("assistant"));
    if !p.tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(p.tool_calls));
    }
    if !p.reasoning.is_empty() {
        message.insert("reasoning_content".into(), Value::String(p.reasoning));
    }
    if !p.images.is_empty() {
        message.insert("images".into(), Value::Array(p.images));
    }
    let mut choice = Map::new();
    choice.insert("finish_reason".into(), json!(finish));
    choice.insert("index".into(), json!(index));
    choice.insert("message".into(), Value::Object(message));
    if let Some(lp) = cand.get("logprobsResult").and_then(logprobs_json) {
        choice.insert("logprobs".into(), lp);
    }
    Value::Object(choice)
}

/// Gemini `logprobsResult` -> OpenAI `logprobs.content`.
fn logprobs_json(lr: &Value) -> Option<Value> {
    let chosen = lr.get("chosenCandidates")?.as_array()?;
    let top = lr.get("topCandidates").and_then(Value::as_array);
    let entry = |c: &Value| {
        let token = c.get("token").and_then(Value::as_str).unwrap_or("");
        json!({
            "token": token,
            "logprob": c.get("logProbability").cloned().unwrap_or(json!(0.0)),
            "bytes": token.as_bytes(),
        })
    };
    let content: Vec<Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let tops: Vec<Value> = top
                .and_then(|t| t.get(i))
                .and_then(|t| t.get("candidates"))
                .and_then(Value::as_array)
                .map(|cs| cs.iter().map(entry).collect())
                .unwrap_or_default();
            let mut e = entry(c);
            if let Some(o) = e.as_object_mut() {
                o.insert("top_logprobs".into(), Value::Array(tops));
            }
            e
        })
        .collect();
    Some(json!({ "content": content }))
}

fn bad_body(why: &str) -> ApiError {
    ApiError::internal(format!(
        "litellm.APIError: APIError: GeminiException - unexpected response body: {why}"
    ))
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Maps a Google AI Studio error response (`{"error":{"code","message","status"}}`, possibly
/// wrapped in a one-element array).
pub fn map_error(status: u16, body: &[u8]) -> ApiError {
    map_google_error(Provider::Gemini, status, body)
}

/// Maps a Vertex AI error response (same envelope, `VertexAIException` label).
pub fn map_vertex_error(status: u16, body: &[u8]) -> ApiError {
    map_google_error(Provider::VertexAi, status, body)
}

fn map_google_error(provider: Provider, status: u16, body: &[u8]) -> ApiError {
    let unwrapped;
    let body = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(mut a)) if !a.is_empty() => {
            unwrapped = serde_json::to_vec(&a.swap_remove(0)).unwrap_or_default();
            unwrapped.as_slice()
        }
        _ => body,
    };
    let mut e = super::openai::map_error(provider, status, body);
    let lower = e.message.to_ascii_lowercase();
    if e.class == ErrorClass::BadRequest
        && (lower.contains("exceeds the maximum number of tokens")
            || lower.contains("request payload size exceeds"))
    {
        e.class = ErrorClass::ContextWindowExceeded;
        e.message = e.message.replacen(
            "BadRequestError: BadRequestError",
            "ContextWindowExceededError: ContextWindowExceededError",
            1,
        );
    }
    e
}

/// The HTTP status of an error object inside a stream (`error.code`, or from `error.status`).
fn stream_error_status(err: &Value) -> u16 {
    if let Some(c) = err.get("code").and_then(Value::as_u64) {
        return u16::try_from(c).unwrap_or(500);
    }
    match err.get("status").and_then(Value::as_str).unwrap_or("") {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "RESOURCE_EXHAUSTED" => 429,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------

/// Gemini SSE events (each a partial `GenerateContentResponse`) -> OpenAI chunks.
#[derive(Debug)]
pub struct StreamState {
    provider: Provider,
    id: String,
    created: i64,
    model: String,
    seen_event: bool,
    /// Candidate indexes that got their role delta / saw a tool call / finished.
    started: HashSet<u64>,
    tools_seen: HashMap<u64, u64>,
    finished: HashSet<u64>,
    usage: Option<Value>,
    done: bool,
}

impl Default for StreamState {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamState {
    /// A Google AI Studio stream.
    pub fn new() -> Self {
        Self::for_provider(Provider::Gemini)
    }

    /// A Vertex AI stream (errors carry the `VertexAIException` label).
    pub fn vertex() -> Self {
        Self::for_provider(Provider::VertexAi)
    }

    fn for_provider(provider: Provider) -> Self {
        Self {
            provider,
            id: super::mock::new_chat_id(),
            created: chrono::Utc::now().timestamp(),
            model: String::new(),
            seen_event: false,
            started: HashSet::new(),
            tools_seen: HashMap::new(),
            finished: HashSet::new(),
            usage: None,
            done: false,
        }
    }

    fn chunk(&self, choices: Value) -> Map<String, Value> {
        super::shape::chunk_map(&self.id, self.created, &self.model, choices)
    }

    fn choice_chunk(&self, index: u64, delta: Value, finish: Option<&str>) -> StreamItem {
        StreamItem::Chunk(self.chunk(json!([{
            "index": index,
            "delta": delta,
            "finish_reason": finish,
        }])))
    }

    /// Handles one SSE event's `data`.
    pub fn on_event(&mut self, data: &str, out: &mut VecDeque<StreamItem>) {
        let data = data.trim();
        if data.is_empty() || self.done {
            return;
        }
        if data == "[DONE]" {
            self.done = true;
            out.push_back(StreamItem::Done);
            return;
        }
        match serde_json::from_str::<Value>(data) {
            Ok(Value::Array(items)) => {
                for v in &items {
                    self.on_response(v, data, out);
                }
            }
            Ok(v) => self.on_response(&v, data, out),
            Err(e) => out.push_back(StreamItem::Error(bad_body(&format!(
                "invalid stream event: {e}"
            )))),
        }
    }

    fn on_response(&mut self, v: &Value, raw: &str, out: &mut VecDeque<StreamItem>) {
        if self.done {
            return;
        }
        if let Some(err) = v.get("error") {
            let status = stream_error_status(err);
            let body = serde_json::to_vec(v).unwrap_or_else(|_| raw.as_bytes().to_vec());
            out.push_back(StreamItem::Error(map_google_error(
                self.provider,
                status,
                &body,
            )));
            self.done = true;
            return;
        }
        if !self.seen_event {
            self.seen_event = true;
            if let Some(rid) = v.get("responseId").and_then(Value::as_str) {
                self.id = rid.to_string();
            }
        }
        if let Some(m) = v.get("modelVersion").and_then(Value::as_str) {
            self.model = m.to_string();
        }
        if let Some(u) = v.get("usageMetadata").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let candidates = v
            .get("candidates")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut finished_now = false;
        for (pos, cand) in candidates.iter().enumerate() {
            let index = cand
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            let first_tool = self.tools_seen.get(&index).copied().unwrap_or(0);
            let p = read_parts(cand, Some(first_tool));
            let mut delta = Map::new();
            if self.started.insert(index) {
                delta.insert("role".into(), json!("assistant"));
            }
            if !p.text.is_empty() {
                delta.insert("content".into(), Value::String(p.text));
            }
            if !p.reasoning.is_empty() {
                delta.insert("reasoning_content".into(), Value::String(p.reasoning));
            }
            if !p.tool_calls.is_empty() {
                self.tools_seen
                    .insert(index, first_tool + p.tool_calls.len() as u64);
                delta.insert("tool_calls".into(), Value::Array(p.tool_calls));
            }
            if !p.images.is_empty() {
                delta.insert("images".into(), Value::Array(p.images));
            }
            let reason = cand.get("finishReason").and_then(Value::as_str);
            let role_only = delta.len() == 1 && delta.contains_key("role");
            let mut finish_delta = Map::new();
            if role_only && reason.is_some() {
                // Nothing but the end: the role rides on the finish chunk.
                finish_delta = delta;
            } else if role_only {
                delta.insert("content".into(), json!(""));
                out.push_back(self.choice_chunk(index, Value::Object(delta), None));
            } else if !delta.is_empty() {
                out.push_back(self.choice_chunk(index, Value::Object(delta), None));
            }
            if let Some(reason) = reason {
                let mut finish = finish_reason(reason);
                if finish == "stop" && self.tools_seen.get(&index).is_some_and(|n| *n > 0) {
                    finish = "tool_calls";
                }
                out.push_back(self.choice_chunk(index, Value::Object(finish_delta), Some(finish)));
                self.finished.insert(index);
                finished_now = true;
            }
        }
        if candidates.is_empty() && v.pointer("/promptFeedback/blockReason").is_some() {
            out.push_back(self.choice_chunk(
                0,
                json!({"role": "assistant", "content": null}),
                Some("content_filter"),
            ));
            self.finished.insert(0);
            self.started.insert(0);
            finished_now = true;
        }
        if finished_now && self.started.iter().all(|i| self.finished.contains(i)) {
            if let Some(u) = &self.usage {
                let mut c = self.chunk(json!([]));
                c.insert("usage".into(), usage_json(u));
                out.push_back(StreamItem::Chunk(c));
            }
            self.done = true;
            out.push_back(StreamItem::Done);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------------------------

/// An OpenAI embeddings body -> a `batchEmbedContents` body (one request per input string).
/// `dimensions` becomes `outputDimensionality`; a `task_type`/`taskType` extra is passed on.
pub fn embed_body(body: &Map<String, Value>, model: &str) -> ApiResult<Map<String, Value>> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let inputs: Vec<&str> = match body.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    ApiError::bad_request(
                        "Gemini embeddings take a string or a list of strings as `input` (token arrays are not supported)",
                    )
                    .with_param("input")
                })
            })
            .collect::<ApiResult<_>>()?,
        _ => {
            return Err(ApiError::bad_request(
                "`input` must be a string or a list of strings",
            )
            .with_param("input"))
        }
    };
    let dims = body.get("dimensions").filter(|d| !d.is_null());
    let task = body
        .get("task_type")
        .or_else(|| body.get("taskType"))
        .filter(|t| !t.is_null());
    let requests: Vec<Value> = inputs
        .into_iter()
        .map(|text| {
            let mut r = Map::new();
            r.insert("model".into(), Value::String(format!("models/{model}")));
            r.insert("content".into(), json!({"parts": [{"text": text}]}));
            if let Some(d) = dims {
                r.insert("outputDimensionality".into(), d.clone());
            }
            if let Some(t) = task {
                r.insert("taskType".into(), t.clone());
            }
            Value::Object(r)
        })
        .collect();
    let mut out = Map::new();
    out.insert("requests".into(), Value::Array(requests));
    Ok(out)
}

/// Vertex AI text embeddings (`:predict`): `{instances: [{content}], parameters}`.
pub fn vertex_embed_body(body: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let texts: Vec<&str> = match body.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).collect()
        }
        _ => {
            return Err(ApiError::bad_request(
                "Invalid 'input': Vertex AI embeddings take a string or a list of strings.",
            )
            .with_param("input"))
        }
    };
    let mut out = Map::new();
    out.insert(
        "instances".into(),
        Value::Array(texts.iter().map(|t| json!({ "content": t })).collect()),
    );
    if let Some(d) = body.get("dimensions").and_then(Value::as_u64) {
        out.insert("parameters".into(), json!({ "outputDimensionality": d }));
    }
    Ok(out)
}

/// A Vertex AI `:predict` embeddings answer as an OpenAI embeddings list.
pub fn parse_vertex_embed(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::internal(format!(
            "litellm.APIError: APIError: VertexAIException - unexpected embeddings body: {e}"
        ))
    })?;
    let preds = v
        .get("predictions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut tokens = 0u64;
    let data: Vec<Value> = preds
        .iter()
        .enumerate()
        .map(|(i, p)| {
            tokens = tokens.saturating_add(
                p.pointer("/embeddings/statistics/token_count")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0) as u64,
            );
            json!({"object": "embedding", "index": i, "embedding": p.pointer("/embeddings/values").cloned().unwrap_or(json!([]))})
        })
        .collect();
    let mut out = Map::new();
    out.insert("object".into(), json!("list"));
    out.insert("data".into(), Value::Array(data));
    out.insert(
        "usage".into(),
        json!({"prompt_tokens": tokens, "total_tokens": tokens}),
    );
    Ok(out)
}

/// A `batchEmbedContents` (or single `embedContent`) response -> an OpenAI embeddings list.
/// Google does not report token counts here, so usage is 0 unless the body carries it.
pub fn parse_embed(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad_body(&e.to_string()))?;
    let list: Vec<&Value> = match (v.get("embeddings"), v.get("embedding")) {
        (Some(Value::Array(a)), _) => a.iter().collect(),
        (_, Some(one)) => vec![one],
        _ => return Err(bad_body("no `embeddings` array")),
    };
    let data: Vec<Value> = list
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "object": "embedding",
                "index": i,
                "embedding": e.get("values").cloned().unwrap_or_else(|| json!([])),
            })
        })
        .collect();
    let prompt = v
        .pointer("/usageMetadata/promptTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut out = Map::new();
    out.insert("object".into(), json!("list"));
    out.insert("data".into(), Value::Array(data));
    out.insert(
        "usage".into(),
        json!({"prompt_tokens": prompt, "total_tokens": prompt}),
    );
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Vertex AI service-account auth (pure parts)
// ---------------------------------------------------------------------------------------------

/// The fields of a Google service-account key file the gateway uses.
#[derive(Clone)]
pub struct ServiceAccount {
    pub client_email: String,
    /// PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM.
    pub private_key: String,
    pub private_key_id: Option<String>,
    pub token_uri: String,
    pub project_id: Option<String>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key", &"<redacted>")
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .finish()
    }
}

/// Parses a service-account key file (the JSON Google hands out).
pub fn parse_service_account(json: &str) -> Result<ServiceAccount, String> {
    let v: Value = serde_json::from_str(json)
        .map_err(|e| format!("vertex credentials are not valid JSON: {e}"))?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    match s("type").as_deref() {
        None | Some("service_account") => {}
        Some(other) => {
            return Err(format!(
            "unsupported vertex credentials type `{other}`; a service_account key file is required"
        ))
        }
    }
    let client_email = s("client_email")
        .filter(|e| !e.is_empty())
        .ok_or("service-account credentials have no `client_email`")?;
    let private_key = s("private_key")
        .filter(|k| !k.is_empty())
        .ok_or("service-account credentials have no `private_key`")?;
    Ok(ServiceAccount {
        client_email,
        private_key,
        private_key_id: s("private_key_id").filter(|k| !k.is_empty()),
        token_uri: s("token_uri")
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string()),
        project_id: s("project_id").filter(|p| !p.is_empty()),
    })
}

/// The DER body of a PEM private key, and whether it is PKCS#1 (`RSA PRIVATE KEY`).
fn pem_to_der(pem: &str) -> Result<(Vec<u8>, bool), String> {
    // Keys copied out of JSON by hand often keep their `\n` escapes.
    let pem = pem.replace("\\n", "\n");
    let mut body = String::new();
    let mut pkcs1 = false;
    let mut inside = false;
    for line in pem.lines().map(str::trim) {
        if let Some(label) = line.strip_prefix("-----BEGIN ") {
            inside = true;
            pkcs1 = label.starts_with("RSA PRIVATE KEY");
        } else if line.starts_with("-----END ") {
            break;
        } else if inside {
            body.push_str(line);
        }
    }
    if !inside || body.is_empty() {
        return Err("private_key is not a PEM private key".into());
    }
    STANDARD
        .decode(body.as_bytes())
        .map(|der| (der, pkcs1))
        .map_err(|e| format!("private_key PEM body is not valid base64: {e}"))
}

fn rsa_key_pair(pem: &str) -> Result<ring::rsa::KeyPair, String> {
    let (der, pkcs1) = pem_to_der(pem)?;
    let key = if pkcs1 {
        ring::rsa::KeyPair::from_der(&der)
    } else {
        ring::rsa::KeyPair::from_pkcs8(&der)
    };
    key.map_err(|e| format!("private_key is not a usable RSA key: {e}"))
}

/// A self-signed RS256 JWT asserting `sa` for `scope`, valid for an hour from `now_unix`, to
/// exchange at `sa.token_uri` for an access token.
pub fn signed_jwt(sa: &ServiceAccount, scope: &str, now_unix: i64) -> Result<String, String> {
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let (Some(kid), Some(h)) = (&sa.private_key_id, header.as_object_mut()) {
        h.insert("kid".into(), Value::String(kid.clone()));
    }
    let claims = json!({
        "iss": sa.client_email,
        "scope": scope,
        "aud": sa.token_uri,
        "iat": now_unix,
        "exp": now_unix + 3600,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = rsa_key_pair(&sa.private_key)?;
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "RSA signing failed".to_string())?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// The form body of the JWT-bearer token request.
pub fn token_request_body(jwt: &str) -> String {
    format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
        query_escape(jwt)
    )
}

/// The access token and its lifetime in seconds (3600 when not stated) from a token response.
pub fn parse_token_response(bytes: &[u8]) -> Result<(String, u64), String> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("token response is not valid JSON: {e}"))?;
    if let Some(token) = v.get("access_token").and_then(Value::as_str) {
        let expires = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        return Ok((token.to_string(), expires));
    }
    let err = v
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown_error");
    Err(match v.get("error_description").and_then(Value::as_str) {
        Some(d) => format!("token request failed: {err}: {d}"),
        None => format!("token request failed: {err}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Usage;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn chat(v: Value) -> Map<String, Value> {
        chat_body(obj(v), "gemini-2.5-flash", &ParamPolicy::default()).unwrap()
    }

    #[test]
    fn request_translation_covers_conversation_media_tools_and_params() {
        let body = obj(json!({
            "model": "gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "and kind"}]},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what are these?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": "https://example.com/cat.JPG?size=large"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/render", "format": "image/webp"}},
                    {"type": "file", "file": {"file_id": "gs://bucket/report.pdf"}},
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
                ]},
                {"role": "assistant", "content": "Let me look.", "tool_calls": [
                    {"id": "call_1__thought__c2lnMQ==", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "call_1__thought__c2lnMQ==", "content": "{\"temp_c\": 21}"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "14:05"}]},
                {"role": "user", "content": "thanks"},
                {"role": "assistant", "content": "You're welcome."},
                {"role": "user", "content": "bye"}
            ],
            "temperature": 0.4,
            "top_p": 0.9,
            "top_k": 40,
            "max_tokens": 256,
            "stop": "END",
            "n": 2,
            "seed": 7,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true, "schema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "city": {"type": "string"},
                    "facts": {"type": "array", "items": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {"text": {"type": ["string", "null"]}}
                    }}
                },
                "required": ["city"]
            }}},
            "reasoning_effort": "medium",
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Weather by city", "strict": true, "parameters": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "city": {"type": "string"},
                        "when": {"type": "string", "format": "date-time"},
                        "source": {"type": "string", "format": "uri"}
                    },
                    "required": ["city"]
                }}},
                {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "cachedContent": "cachedContents/abc",
            "user": "u-1",
            "stream": true,
            "stream_options": {"include_usage": true},
            "parallel_tool_calls": true
        }));
        let out = chat_body(body, "gemini-2.5-flash", &ParamPolicy::default()).unwrap();
        let expected = json!({
            "contents": [
                {"role": "user", "parts": [
                    {"text": "hi"},
                    {"text": "what are these?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?size=large"}},
                    {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/render"}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/report.pdf"}},
                    {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}
                ]},
                {"role": "model", "parts": [
                    {"text": "Let me look."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnMQ=="},
                    {"functionCall": {"name": "get_time", "args": {}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                    {"functionResponse": {"name": "get_time", "response": {"content": "14:05"}}},
                    {"text": "thanks"}
                ]},
                {"role": "model", "parts": [{"text": "You're welcome."}]},
                {"role": "user", "parts": [{"text": "bye"}]}
            ],
            "systemInstruction": {"parts": [{"text": "be brief"}, {"text": "and kind"}]},
            "tools": [{"functionDeclarations": [
                {"name": "get_weather", "description": "Weather by city", "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "when": {"type": "string", "format": "date-time"},
                        "source": {"type": "string"}
                    },
                    "required": ["city"]
                }},
                {"name": "get_time"}
            ]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
            "generationConfig": {
                "topK": 40,
                "temperature": 0.4,
                "topP": 0.9,
                "maxOutputTokens": 256,
                "stopSequences": ["END"],
                "candidateCount": 2,
                "presencePenalty": 0.1,
                "frequencyPenalty": 0.2,
                "seed": 7,
                "responseMimeType": "application/json",
                "responseSchema": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "facts": {"type": "array", "items": {
                            "type": "object",
                            "properties": {"text": {"type": "string", "nullable": true}}
                        }}
                    },
                    "required": ["city"]
                },
                "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}
            },
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "cachedContent": "cachedContents/abc"
        });
        assert_eq!(Value::Object(out), expected);
    }

    #[test]
    fn tool_choice_stop_lists_thinking_and_native_tools() {
        for (tc, mode) in [("auto", "AUTO"), ("required", "ANY"), ("none", "NONE")] {
            let out =
                chat(json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": tc}));
            assert_eq!(
                out["toolConfig"]["functionCallingConfig"],
                json!({"mode": mode})
            );
        }
        let e = chat_body(
            obj(json!({"messages": [], "tool_choice": "sometimes"})),
            "m",
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);

        let out = chat(json!({
            "messages": [{"role": "user", "content": "x"}],
            "stop": ["a", "b"],
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "reasoning_effort": "none",
            "logprobs": true,
            "top_logprobs": 3,
            "modalities": ["text", "image"],
            "response_format": {"type": "json_object"},
            "web_search_options": {},
            "functions": [{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}],
            "tools": [{"googleSearch": {}}, {"type": "web_search_preview"}, {"code_execution": {}}],
            "labels": {"team": "x"}
        }));
        let gc = &out["generationConfig"];
        assert_eq!(gc["stopSequences"], json!(["a", "b"]));
        assert_eq!(gc["maxOutputTokens"], 20);
        assert_eq!(
            gc["thinkingConfig"],
            json!({"thinkingBudget": 0, "includeThoughts": false})
        );
        assert_eq!(
            (gc["responseLogprobs"].clone(), gc["logprobs"].clone()),
            (json!(true), json!(3))
        );
        assert_eq!(gc["responseModalities"], json!(["TEXT", "IMAGE"]));
        assert_eq!(gc["responseMimeType"], "application/json");
        assert!(gc.get("responseSchema").is_none());
        assert_eq!(
            out["tools"],
            json!([
                {"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}]},
                {"googleSearch": {}},
                {"googleSearch": {}},
                {"codeExecution": {}},
                {"googleSearch": {}}
            ])
        );
        assert_eq!(out["labels"], json!({"team": "x"}));

        let out = chat(json!({
            "messages": [{"role": "user", "content": "x"}],
            "thinking": {"type": "enabled", "budget_tokens": 500}
        }));
        assert_eq!(
            out["generationConfig"]["thinkingConfig"],
            json!({"includeThoughts": true, "thinkingBudget": 500})
        );
        for (effort, budget) in [("minimal", 128), ("low", 1024), ("high", 4096)] {
            let out = chat(
                json!({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": effort}),
            );
            assert_eq!(
                out["generationConfig"]["thinkingConfig"]["thinkingBudget"],
                budget
            );
        }
    }

    #[test]
    fn schemas_inline_refs_and_lone_system_prompts_become_user_turns() {
        let schema = json!({
            "$defs": {"Item": {"type": "object", "title": "Item", "additionalProperties": false,
                               "properties": {"name": {"type": "string"}, "qty": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null}}}},
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
                "main": {"allOf": [{"$ref": "#/$defs/Item"}], "description": "the main one"},
                "kind": {"oneOf": [{"type": "string"}, {"type": "integer"}], "const": "x"}
            }
        });
        let item = json!({"type": "object", "title": "Item", "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "nullable": true, "default": null}}});
        let mut main = item.clone();
        main["description"] = json!("the main one");
        assert_eq!(
            clean_schema(&schema),
            json!({"type": "object", "properties": {
                "items": {"type": "array", "items": item},
                "main": main,
                "kind": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
            }})
        );
        // A self-referencing schema is cut off instead of recursing forever.
        let looped = json!({"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"});
        assert!(clean_schema(&looped).to_string().len() < 10_000);

        let out =
            chat(json!({"messages": [{"role": "system", "content": "only a system prompt"}]}));
        assert_eq!(
            out["contents"],
            json!([{"role": "user", "parts": [{"text": "only a system prompt"}]}])
        );
        assert!(out.get("systemInstruction").is_none());

        let e = chat_body(
            obj(json!({"messages": [{"role": "wizard", "content": "x"}]})),
            "m",
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        let e = chat_body(
            obj(json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}]})),
            "m",
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert!(e.message.contains("not JSON"), "{}", e.message);
    }

    #[test]
    fn unsupported_params_are_refused_or_dropped() {
        let body = json!({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"50256": -100}, "temperature": 0.1});
        let e = chat_body(
            obj(body.clone()),
            "gemini-2.5-flash",
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.message.contains(
                "gemini does not support parameters: ['logit_bias'], for model=gemini-2.5-flash"
            ),
            "{}",
            e.message
        );
        let e = vertex_chat_body(obj(body.clone()), "gemini-2.5-pro", &ParamPolicy::default())
            .unwrap_err();
        assert!(
            e.message.contains("vertex_ai does not support parameters"),
            "{}",
            e.message
        );

        let out = chat_body(
            obj(body),
            "gemini-2.5-flash",
            &ParamPolicy {
                drop_params: true,
                ..ParamPolicy::default()
            },
        )
        .unwrap();
        assert!(!Value::Object(out.clone())
            .to_string()
            .contains("logit_bias"));
        assert_eq!(out["generationConfig"]["temperature"], 0.1);
    }

    #[test]
    fn response_maps_text_function_calls_thoughts_and_usage() {
        let body = br#"{
          "candidates": [{
            "content": {"parts": [
              {"text": "The user wants the weather.", "thought": true},
              {"text": "Checking the weather."},
              {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"}
            ], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
            "avgLogprobs": -0.21
          }],
          "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 30, "totalTokenCount": 200,
                            "cachedContentTokenCount": 100, "thoughtsTokenCount": 50,
                            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}]},
          "modelVersion": "gemini-2.5-flash",
          "responseId": "mBxaaJ2fAtyk"
        }"#;
        let r = parse_chat(body).unwrap();
        assert_eq!(r["id"], "mBxaaJ2fAtyk");
        assert_eq!(r["object"], "chat.completion");
        assert_eq!(r["model"], "gemini-2.5-flash");
        let ch = &r["choices"][0];
        assert_eq!(ch["finish_reason"], "tool_calls");
        assert_eq!(ch["message"]["role"], "assistant");
        assert_eq!(ch["message"]["content"], "Checking the weather.");
        assert_eq!(
            ch["message"]["reasoning_content"],
            "The user wants the weather."
        );
        let call = &ch["message"]["tool_calls"][0];
        let id = call["id"].as_str().unwrap();
        assert!(
            id.starts_with("call_") && id.ends_with("__thought__c2ln"),
            "{id}"
        );
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert!(call.get("index").is_none());
        assert_eq!(
            r["usage"]["completion_tokens_details"]["reasoning_tokens"],
            50
        );
        let u = Usage::from_json(&r["usage"]).unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.total_tokens,
                u.cached_tokens,
                u.reasoning_tokens
            ),
            (120, 80, 200, 100, 50)
        );

        // The id round-trips: the signature goes back on the functionCall part.
        let out = chat(json!({"messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": id, "content": "sunny"}
        ]}));
        assert_eq!(out["contents"][1]["parts"][0]["thoughtSignature"], "c2ln");
        assert_eq!(
            out["contents"][2]["parts"][0]["functionResponse"]["name"],
            "get_weather"
        );
    }

    #[test]
    fn response_maps_blocks_limits_candidates_and_logprobs() {
        let blocked = br#"{"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
                          "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}, "modelVersion": "gemini-2.0-flash"}"#;
        let r = parse_chat(blocked).unwrap();
        assert!(r["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(r["choices"][0]["finish_reason"], "content_filter");
        assert!(r["choices"][0]["message"]["content"].is_null());
        assert_eq!(r["usage"]["prompt_tokens"], 8);

        let filtered = br#"{"candidates": [{"finishReason": "SAFETY", "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": true}]}]}"#;
        let r = parse_chat(filtered).unwrap();
        assert_eq!(r["choices"][0]["finish_reason"], "content_filter");
        assert!(r["choices"][0]["message"]["content"].is_null());

        let two = br#"{"candidates": [
            {"content": {"parts": [{"text": "Once upon"}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 0,
             "logprobsResult": {"topCandidates": [{"candidates": [{"token": "Once", "logProbability": -0.1}, {"token": "In", "logProbability": -2.5}]}],
                                "chosenCandidates": [{"token": "Once", "logProbability": -0.1}]}},
            {"content": {"parts": [{"text": "In a land"}], "role": "model"}, "finishReason": "STOP", "index": 1}
          ], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 6, "totalTokenCount": 11}}"#;
        let r = parse_chat(two).unwrap();
        assert_eq!(r["choices"][0]["finish_reason"], "length");
        assert_eq!(r["choices"][1]["index"], 1);
        assert_eq!(r["choices"][1]["message"]["content"], "In a land");
        let lp = &r["choices"][0]["logprobs"]["content"][0];
        assert_eq!(
            (lp["token"].clone(), lp["logprob"].clone()),
            (json!("Once"), json!(-0.1))
        );
        assert_eq!(lp["top_logprobs"][1]["token"], "In");
        assert!(r["choices"][1].get("logprobs").is_none());

        for (reason, finish) in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("BLOCKLIST", "content_filter"),
            ("PROHIBITED_CONTENT", "content_filter"),
            ("SPII", "content_filter"),
            ("IMAGE_SAFETY", "content_filter"),
            ("MALFORMED_FUNCTION_CALL", "stop"),
            ("OTHER", "stop"),
        ] {
            assert_eq!(finish_reason(reason), finish);
        }
        assert_eq!(parse_chat(b"not json").unwrap_err().status(), 500);
    }

    /// A recorded `streamGenerateContent?alt=sse` response (Google ends events with CRLF CRLF).
    const STREAM: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Let me check\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 20,\"totalTokenCount\": 20},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"resp-1\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"weather tools exist\", \"thought\": true},{\"text\": \" the weather.\"},{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Paris\"}}, \"thoughtSignature\": \"sig\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 20,\"totalTokenCount\": 20},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"resp-1\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 20,\"candidatesTokenCount\": 15,\"thoughtsTokenCount\": 5,\"totalTokenCount\": 40},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"resp-1\"}\r\n\r\n";

    fn decode_all(state: StreamState, raw: &str) -> Vec<StreamItem> {
        let mut state = state;
        let mut sse = super::super::sse::SseDecoder::new();
        sse.push(raw.as_bytes());
        let mut out = VecDeque::new();
        while let Some(ev) = sse.next_event() {
            state.on_event(&ev.data, &mut out);
        }
        if let Some(ev) = sse.finish() {
            state.on_event(&ev.data, &mut out);
        }
        out.into_iter().collect()
    }

    fn chunks(items: &[StreamItem]) -> Vec<&Map<String, Value>> {
        items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Chunk(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn stream_events_become_openai_chunks() {
        let items = decode_all(StreamState::new(), STREAM);
        assert!(matches!(items.last(), Some(StreamItem::Done)));
        let c = chunks(&items);
        assert_eq!(c.len(), 4, "{c:?}");
        assert!(c
            .iter()
            .all(|c| c["id"] == "resp-1" && c["object"] == "chat.completion.chunk"));
        assert!(c
            .iter()
            .all(|x| x["created"] == c[0]["created"] && x["model"] == "gemini-2.5-flash"));
        assert_eq!(
            c[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "Let me check"})
        );
        let d = &c[1]["choices"][0]["delta"];
        assert_eq!(d["content"], " the weather.");
        assert_eq!(d["reasoning_content"], "weather tools exist");
        assert!(d.get("role").is_none());
        let tc = &d["tool_calls"][0];
        assert_eq!(tc["index"], 0);
        assert_eq!(tc["type"], "function");
        assert!(tc["id"].as_str().unwrap().ends_with("__thought__sig"));
        assert_eq!(
            tc["function"],
            json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
        );
        assert_eq!(c[2]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(c[2]["choices"][0]["delta"], json!({}));
        assert_eq!(c[3]["choices"], json!([]));
        let u = Usage::from_json(&c[3]["usage"]).unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.total_tokens,
                u.reasoning_tokens
            ),
            (20, 20, 40, 5)
        );

        // Anything after the end is ignored.
        let mut st = StreamState::new();
        let mut out = VecDeque::new();
        st.on_event(r#"{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP","index":0}]}"#, &mut out);
        st.on_event(
            r#"{"candidates":[{"content":{"parts":[{"text":"late"}]},"index":0}]}"#,
            &mut out,
        );
        let items: Vec<StreamItem> = out.into_iter().collect();
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(chunks(&items)[1]["choices"][0]["finish_reason"], "stop");
        assert!(matches!(items[2], StreamItem::Done));
    }

    #[test]
    fn stream_errors_and_blocked_prompts() {
        let items = decode_all(
            StreamState::new(),
            "data: {\"error\": {\"code\": 429, \"message\": \"Resource has been exhausted (e.g. check quota).\", \"status\": \"RESOURCE_EXHAUSTED\"}}\r\n\r\n",
        );
        match &items[..] {
            [StreamItem::Error(e)] => {
                assert_eq!(e.status(), 429);
                assert!(
                    e.message
                        .contains("GeminiException - Resource has been exhausted"),
                    "{}",
                    e.message
                );
            }
            other => panic!("{other:?}"),
        }
        let items = decode_all(
            StreamState::vertex(),
            "data: {\"error\": {\"message\": \"Internal error encountered.\", \"status\": \"INTERNAL\"}}\n\n",
        );
        match &items[..] {
            [StreamItem::Error(e)] => {
                assert_eq!(e.status(), 500);
                assert!(
                    e.message.contains("VertexAIException - Internal error"),
                    "{}",
                    e.message
                );
            }
            other => panic!("{other:?}"),
        }
        let items = decode_all(
            StreamState::new(),
            "data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"}, \"usageMetadata\": {\"promptTokenCount\": 9, \"totalTokenCount\": 9}}\n\n",
        );
        let c = chunks(&items);
        assert_eq!(c[0]["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(c[1]["usage"]["prompt_tokens"], 9);
        assert!(matches!(items.last(), Some(StreamItem::Done)));
        let items = decode_all(StreamState::new(), "data: {not json\n\n");
        assert!(matches!(&items[..], [StreamItem::Error(e)] if e.status() == 500));
    }

    #[test]
    fn google_errors_map_to_litellm_classes() {
        let e = map_error(
            400,
            br#"{"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified\n", "status": "INVALID_ARGUMENT"}}"#,
        );
        assert_eq!(
            (e.status(), e.class),
            (axum::http::StatusCode::BAD_REQUEST, ErrorClass::BadRequest)
        );
        assert!(e.message.starts_with("litellm.BadRequestError: BadRequestError: GeminiException - * GenerateContentRequest.contents"), "{}", e.message);

        let e = map_error(
            429,
            br#"{"error": {"code": 429, "message": "You exceeded your current quota, please check your plan and billing details.", "status": "RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!(e.class, ErrorClass::RateLimit);
        assert_eq!(e.status(), 429);
        assert!(e
            .message
            .starts_with("litellm.RateLimitError: RateLimitError: GeminiException - You exceeded"));

        let e = map_vertex_error(
            403,
            br#"[{"error": {"code": 403, "message": "Permission 'aiplatform.endpoints.predict' denied on resource.", "status": "PERMISSION_DENIED"}}]"#,
        );
        assert_eq!(e.class, ErrorClass::PermissionDenied);
        assert_eq!(e.status(), 403);
        assert!(
            e.message
                .contains("VertexAIException - Permission 'aiplatform.endpoints.predict' denied"),
            "{}",
            e.message
        );

        let e = map_error(
            400,
            br#"{"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}"#,
        );
        assert_eq!(e.class, ErrorClass::ContextWindowExceeded);
        assert!(
            e.message.starts_with(
                "litellm.ContextWindowExceededError: ContextWindowExceededError: GeminiException"
            ),
            "{}",
            e.message
        );
        assert_eq!(map_error(503, b"upstream connect error").status(), 503);
    }

    #[test]
    fn embeddings_round_trip() {
        let body = obj(
            json!({"model": "text-embedding-004", "input": ["hello", "world"], "dimensions": 256}),
        );
        let out = embed_body(&body, "text-embedding-004").unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 256},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "world"}]}, "outputDimensionality": 256}
            ]})
        );
        let out = embed_body(
            &obj(json!({"input": "one", "task_type": "RETRIEVAL_QUERY"})),
            "gemini-embedding-001",
        )
        .unwrap();
        assert_eq!(
            out["requests"],
            json!([{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "one"}]}, "taskType": "RETRIEVAL_QUERY"}])
        );
        assert_eq!(
            embed_body(&obj(json!({"input": [[1, 2, 3]]})), "m")
                .unwrap_err()
                .status(),
            400
        );

        let r =
            parse_embed(br#"{"embeddings": [{"values": [0.1, -0.2]}, {"values": [0.3, 0.4]}]}"#)
                .unwrap();
        assert_eq!(
            Value::Object(r),
            json!({
                "object": "list",
                "data": [
                    {"object": "embedding", "index": 0, "embedding": [0.1, -0.2]},
                    {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]}
                ],
                "usage": {"prompt_tokens": 0, "total_tokens": 0}
            })
        );
        assert_eq!(parse_embed(b"{}").unwrap_err().status(), 500);
    }

    #[test]
    fn urls() {
        assert_eq!(
            gemini_url(DEFAULT_API_BASE, "gemini-2.5-flash", false, Some("AIza-k_1")),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent?key=AIza-k_1"
        );
        assert_eq!(
            gemini_url("https://proxy.test/v1beta/", "models/gemini-2.5-flash", true, Some("a b")),
            "https://proxy.test/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=a%20b"
        );
        assert_eq!(
            gemini_url("http://127.0.0.1:9", "g", true, None),
            "http://127.0.0.1:9/v1beta/models/g:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            embed_url(DEFAULT_API_BASE, "text-embedding-004", Some("k")),
            "https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:batchEmbedContents?key=k"
        );
        assert_eq!(
            vertex_url(None, "proj-1", "us-central1", "gemini-2.5-pro", false),
            "https://us-central1-aiplatform.googleapis.com/v1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            vertex_url(None, "proj-1", "global", "gemini-2.5-pro", true),
            "https://aiplatform.googleapis.com/v1/projects/proj-1/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            vertex_url(Some("http://127.0.0.1:9/"), "p", "europe-west4", "gemini-2.0-flash", false),
            "http://127.0.0.1:9/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(
            vertex_url(None, "p", "us-east1", "1234567890", false),
            "https://us-east1-aiplatform.googleapis.com/v1/projects/p/locations/us-east1/endpoints/1234567890:generateContent"
        );
        assert_eq!(
            vertex_anthropic_url(None, "p", "us-east5", "claude-sonnet-4@20250514", true),
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
        );
        assert_eq!(
            vertex_anthropic_url(None, "p", "global", "claude-x", false),
            "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/anthropic/models/claude-x:rawPredict"
        );
        let b = vertex_anthropic_body(obj(json!({"model": "claude-x", "max_tokens": 5})));
        assert_eq!(
            Value::Object(b),
            json!({"max_tokens": 5, "anthropic_version": "vertex-2023-10-16"})
        );
        assert_eq!(
            mime_from_extension("https://x.test/a/b.MP4#t=1"),
            Some("video/mp4")
        );
        assert_eq!(mime_from_extension("https://x.test/a.b/c"), None);
    }

    /// A throwaway 2048-bit test key (`openssl genpkey -algorithm RSA`), and the same key as PKCS#1.
    const TEST_KEY_PKCS8: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC/yEet8/cbsb0z\na3GFciKSEsMw8GBBZBUjhDrnHpUQ0/GFXVFQKHu/8c8Ha4+V/WCqZEAq6rbEkyOF\njL3tzH3YzOeCGuErXDlVFlVWfPgEqU3I0cc8sSlnzosa1aSmr1ad2XD53MIR7fPx\nR3nAEOxF12ozw22nbqMNL5N5wB1ArTed008MPwwTByaR6ErqJlDCNnNKpFbJElRL\ntxw/g2m266XtgfIqc6FV2joQuCo8hen8dHIPnDlUsP+Jf2H6VHgGKH0QUXyRJ1/x\nTcQc5pY3qzF/UPpIUrB9FnlB89dMfVH/xfwuG29BIBhldIVCVrZHWjdNCjejE593\nVhd6piAlAgMBAAECggEAAlKg6Z6xkLyNm9SSjqjz+bxv8EUNCWW2qtQ0aW2xpP9I\nJtMbQ8MFwqyhUwfuuISV2eJ2c36dwZI9pSWv/DQUlx5eNHFyZjXK/PiVBoPjdhz9\n0++Uf+vuYjM6dJP/V0R64lUKnQAbOp/c60BwHU8nKW5jOybECnnY0DVSDjCxOgIJ\np3iiVf0e4PaO7P+Kmka6EF/CjgbAD2047eEy9c+hfJcirWVd6pkqIo8DMjR9e6b4\nsMqdXTy1+/DJW00ZtrwvIqnH2svUMulxu0F5JTXq2r6olUSHpkJiQzOL0xujbyA3\nTXkiMbcGxGihddd/Huf9x+VSl6hXwQS/ULCSEUvuOQKBgQD8XnMb81c7Cv73qNhv\nO39KmQkqmh4YsN/bU96Yqh7og5U+crA1TeNOUfAifxIzo43nl1b+86FWExLWgXD2\nqRQkv2Ch+gUmgW64BfN0/zt6GrAEjYPkayE21OT7RNbl7iPLxWDfJVPojCMaWS1t\nCF88YouHJEMCMjx2tJk773O/mQKBgQDCiqv5KlXrSis2ZAh9ADlrPPztztLQI44x\n+xw20hPb/8aOAr9A3S7EeGCJL91gQec1WVNCnixSt/nSPtFgpYrefjNUaQvA0YJt\nKABG/l0epBzakIZmUe9FYZ+LKY1T0CaW24OeQJWz4XLBGcG+rY3KZhq511zi66Ow\nuRlWd3FsbQKBgQDbRIDEvyeCMCqZKUVrV4lgWhjBwAf4Me09leAoSl7ybCkGigUZ\nOyQMj1qRzlAVN7x6hF5cw3bg30+Vuf9ZAEx1JSYjdaR18S0ujFUbyQp3K6rVOdNn\nacEA7/ZHbmc8fSzyxfpFxxvhR6jUIrk6K3T7dS9/an0h8l3gUUd18LVjuQKBgEdL\nru7n1wkd62xJiNrWxDRK657zl0r0XN5wWsy0fNa5jDjrRNAuvz79ptNgGU93l5Zz\noBHgCfpetk2Y+/7hbF1R/tnGjaoinhwG9uMNwW7DUle/c6H4ESpqNqA3oDXBKQNM\ne5X5sWN1Eis2l0ycKkSs2sqU5NO87AaOL30C1SyZAoGAfQ8M1Fscjfc2q+Ro3JFY\nx4UMdJNjmkEkELTzqTw7wsKshZMTkRkaFwIYsU2fBCCw7ORTY5z/Oqu5j8JRiVXf\n6UG1IE8D2FEsFo49ApSTUlOC/4+Dn94nRw8HeZnb3jlX6ccL6N/uCMejtYZzCQEa\nFCgohiDbynViiM05NvDZqr0=\n-----END PRIVATE KEY-----\n";
    const TEST_KEY_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAv8hHrfP3G7G9M2txhXIikhLDMPBgQWQVI4Q65x6VENPxhV1R\nUCh7v/HPB2uPlf1gqmRAKuq2xJMjhYy97cx92MznghrhK1w5VRZVVnz4BKlNyNHH\nPLEpZ86LGtWkpq9Wndlw+dzCEe3z8Ud5wBDsRddqM8Ntp26jDS+TecAdQK03ndNP\nDD8MEwcmkehK6iZQwjZzSqRWyRJUS7ccP4Nptuul7YHyKnOhVdo6ELgqPIXp/HRy\nD5w5VLD/iX9h+lR4Bih9EFF8kSdf8U3EHOaWN6sxf1D6SFKwfRZ5QfPXTH1R/8X8\nLhtvQSAYZXSFQla2R1o3TQo3oxOfd1YXeqYgJQIDAQABAoIBAAJSoOmesZC8jZvU\nko6o8/m8b/BFDQlltqrUNGltsaT/SCbTG0PDBcKsoVMH7riEldnidnN+ncGSPaUl\nr/w0FJceXjRxcmY1yvz4lQaD43Yc/dPvlH/r7mIzOnST/1dEeuJVCp0AGzqf3OtA\ncB1PJyluYzsmxAp52NA1Ug4wsToCCad4olX9HuD2juz/ippGuhBfwo4GwA9tOO3h\nMvXPoXyXIq1lXeqZKiKPAzI0fXum+LDKnV08tfvwyVtNGba8LyKpx9rL1DLpcbtB\neSU16tq+qJVEh6ZCYkMzi9Mbo28gN015IjG3BsRooXXXfx7n/cflUpeoV8EEv1Cw\nkhFL7jkCgYEA/F5zG/NXOwr+96jYbzt/SpkJKpoeGLDf21PemKoe6IOVPnKwNU3j\nTlHwIn8SM6ON55dW/vOhVhMS1oFw9qkUJL9gofoFJoFuuAXzdP87ehqwBI2D5Gsh\nNtTk+0TW5e4jy8Vg3yVT6IwjGlktbQhfPGKLhyRDAjI8drSZO+9zv5kCgYEAwoqr\n+SpV60orNmQIfQA5azz87c7S0COOMfscNtIT2//GjgK/QN0uxHhgiS/dYEHnNVlT\nQp4sUrf50j7RYKWK3n4zVGkLwNGCbSgARv5dHqQc2pCGZlHvRWGfiymNU9AmltuD\nnkCVs+FywRnBvq2NymYauddc4uujsLkZVndxbG0CgYEA20SAxL8ngjAqmSlFa1eJ\nYFoYwcAH+DHtPZXgKEpe8mwpBooFGTskDI9akc5QFTe8eoReXMN24N9Plbn/WQBM\ndSUmI3WkdfEtLoxVG8kKdyuq1TnTZ2nBAO/2R25nPH0s8sX6Rccb4Ueo1CK5Oit0\n+3Uvf2p9IfJd4FFHdfC1Y7kCgYBHS67u59cJHetsSYja1sQ0Suue85dK9FzecFrM\ntHzWuYw460TQLr8+/abTYBlPd5eWc6AR4An6XrZNmPv+4WxdUf7Zxo2qIp4cBvbj\nDcFuw1JXv3Oh+BEqajagN6A1wSkDTHuV+bFjdRIrNpdMnCpErNrKlOTTvOwGji99\nAtUsmQKBgH0PDNRbHI33NqvkaNyRWMeFDHSTY5pBJBC086k8O8LCrIWTE5EZGhcC\nGLFNnwQgsOzkU2Oc/zqruY/CUYlV3+lBtSBPA9hRLBaOPQKUk1JTgv+Pg5/eJ0cP\nB3mZ2945V+nHC+jf7gjHo7WGcwkBGhQoKIYg28p1YojNOTbw2aq9\n-----END RSA PRIVATE KEY-----\n";

    fn verify(jwt: &str, pem: &str) -> (Value, Value) {
        use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
        let key_pair = rsa_key_pair(pem).unwrap();
        let (signing_input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key_pair.public().as_ref())
            .verify(signing_input.as_bytes(), &sig)
            .expect("signature verifies with the key pair's public key");
        let mut tampered = signing_input.to_string();
        tampered.push('x');
        assert!(
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key_pair.public().as_ref())
                .verify(tampered.as_bytes(), &sig)
                .is_err()
        );
        let (h, c) = signing_input.split_once('.').unwrap();
        let decode =
            |s: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
        (decode(h), decode(c))
    }

    #[test]
    fn service_account_jwt_signs_and_verifies() {
        let file = json!({
            "type": "service_account",
            "project_id": "my-proj",
            "private_key_id": "kid-1",
            "private_key": TEST_KEY_PKCS8,
            "client_email": "gw@my-proj.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token"
        })
        .to_string();
        assert!(file.contains("\\n"), "the PEM travels with JSON escapes");
        let sa = parse_service_account(&file).unwrap();
        assert_eq!(sa.project_id.as_deref(), Some("my-proj"));
        assert!(!format!("{sa:?}").contains("PRIVATE KEY"));

        let jwt = signed_jwt(&sa, CLOUD_PLATFORM_SCOPE, 1_700_000_000).unwrap();
        assert_eq!(jwt.matches('.').count(), 2);
        assert!(!jwt.contains('=') && !jwt.contains('+') && !jwt.contains('/'));
        let (header, claims) = verify(&jwt, TEST_KEY_PKCS8);
        assert_eq!(
            header,
            json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"})
        );
        assert_eq!(
            claims,
            json!({
                "iss": "gw@my-proj.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_700_000_000,
                "exp": 1_700_003_600
            })
        );

        // PKCS#1 keys, a key with literal `\n` escapes, and defaults for missing fields.
        let escaped = TEST_KEY_PKCS1.replace('\n', "\\n");
        let sa = parse_service_account(
            &json!({"client_email": "a@b", "private_key": escaped}).to_string(),
        )
        .unwrap();
        assert_eq!(sa.token_uri, DEFAULT_TOKEN_URI);
        assert!(sa.project_id.is_none());
        let (header, claims) = verify(&signed_jwt(&sa, "s", 10).unwrap(), TEST_KEY_PKCS1);
        assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
        assert_eq!(
            (claims["aud"].clone(), claims["exp"].clone()),
            (json!(DEFAULT_TOKEN_URI), json!(3610))
        );

        assert!(parse_service_account("{").is_err());
        assert!(parse_service_account(
            r#"{"type": "authorized_user", "client_email": "a", "private_key": "k"}"#
        )
        .unwrap_err()
        .contains("authorized_user"));
        assert!(parse_service_account(r#"{"private_key": "k"}"#)
            .unwrap_err()
            .contains("client_email"));
        let bad =
            parse_service_account(r#"{"client_email": "a", "private_key": "not a pem"}"#).unwrap();
        assert!(signed_jwt(&bad, "s", 0).is_err());
    }

    #[test]
    fn token_exchange_body_and_response() {
        assert_eq!(
            token_request_body("aaa.bbb.c-c_c"),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=aaa.bbb.c-c_c"
        );
        assert_eq!(
            parse_token_response(
                br#"{"access_token": "ya29.c.abc", "expires_in": 3599, "token_type": "Bearer"}"#
            )
            .unwrap(),
            ("ya29.c.abc".to_string(), 3599)
        );
        assert_eq!(
            parse_token_response(br#"{"access_token": "t"}"#).unwrap().1,
            3600
        );
        let e = parse_token_response(
            br#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "token request failed: invalid_grant: Invalid JWT Signature."
        );
        assert!(parse_token_response(b"<html>").is_err());
    }
}
