//! AWS Bedrock as an upstream, through the Converse API: OpenAI chat request -> Converse
//! request, Converse response and `converse-stream` event-stream messages -> OpenAI shapes,
//! Bedrock errors -> LiteLLM's errors; plus InvokeModel embeddings (Amazon Titan, Cohere),
//! endpoint URLs, SigV4 / bearer request headers and the deployment's AWS settings.
//!
//! Pure translation, no I/O: the clock and the environment are parameters, the event-stream
//! framing and SigV4 themselves live in [`super::aws`]. The mapping follows LiteLLM's:
//! `system` messages become the top-level `system` blocks, tool calls and results become
//! `toolUse` / `toolResult` blocks, consecutive same-role turns are merged (tool results are
//! user turns), sampling parameters go to `inferenceConfig`, `response_format` is served
//! through a forced `json_tool_call` tool whose input comes back as the message content,
//! non-OpenAI keys (`top_k`, ...) and Anthropic thinking go to `additionalModelRequestFields`,
//! and cache-token counts are folded into `prompt_tokens` with the details alongside.
//!
//! Bedrock cannot fetch images by URL, so only `data:` URLs (and `s3://` locations, which
//! Bedrock reads itself) are accepted for images.

use super::aws;
use super::params::{self, ParamPolicy};
use super::stream::StreamItem;
use super::Provider;
use crate::error::{ApiError, ApiResult, ErrorClass};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};

/// Region used when neither the deployment nor the environment names one (LiteLLM's default).
pub const DEFAULT_REGION: &str = "us-east-1";
/// The SigV4 service name of the Bedrock runtime.
pub const SERVICE: &str = "bedrock";
/// The tool LiteLLM forces to get JSON output for `response_format`.
pub const JSON_TOOL: &str = super::shape::JSON_TOOL;
/// Content type of `converse-stream` / `invoke-with-response-stream` responses.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// OpenAI parameters the Converse adapter translates. `thinking` and `reasoning_effort` are
/// only accepted for Anthropic models; `user` is accepted and dropped (Converse has no field
/// for it).
pub const SUPPORTED: &[&str] = &[
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "response_format",
    "reasoning_effort",
    "thinking",
    "extra_headers",
    "user",
];

/// Converse request fields a client may send as they are; they stay top-level.
const CONVERSE_TOP_LEVEL: &[&str] = &[
    "guardrailConfig",
    "performanceConfig",
    "requestMetadata",
    "promptVariables",
    "additionalModelResponseFieldPaths",
];

/// Whether `model` is an Anthropic model (`anthropic.claude-*`, `us.anthropic.claude-*`, ...).
pub fn is_anthropic(model: &str) -> bool {
    model.contains("anthropic.")
}

// ---------------------------------------------------------------------------------------------
// Settings, URLs, headers
// ---------------------------------------------------------------------------------------------

/// A deployment's AWS settings. Exactly one of `credentials` (SigV4) and `bearer_token`
/// (Bedrock API key) is set.
///
/// Only static credentials are supported: STS AssumeRole (`aws_role_name`,
/// `aws_session_name`), web identity (`aws_web_identity_token`), named profiles
/// (`aws_profile_name`) and the instance/container metadata credential chain are out of scope
/// and are refused with an explanation rather than silently ignored.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub region: String,
    pub credentials: Option<aws::Credentials>,
    pub bearer_token: Option<String>,
    /// `aws_bedrock_runtime_endpoint` / `AWS_BEDROCK_RUNTIME_ENDPOINT`, replacing
    /// `https://bedrock-runtime.{region}.amazonaws.com`.
    pub endpoint: Option<String>,
}

impl std::fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// Reads the AWS settings from a deployment's `litellm_params` (string values; an unresolved
/// `os.environ/NAME` reference is looked up through `env`), falling back to the environment.
///
/// Precedence: the deployment's `api_key` (a Bedrock API key, sent as a bearer token), then
/// its `aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`), then
/// `AWS_BEARER_TOKEN_BEDROCK`, then `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`
/// (+ `AWS_SESSION_TOKEN`). Region: `aws_region_name`, `AWS_REGION_NAME`, `AWS_REGION`,
/// `AWS_DEFAULT_REGION`, then [`DEFAULT_REGION`].
pub fn settings(
    params: &Map<String, Value>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<AwsSettings, String> {
    let non_empty = |s: String| {
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_string())
    };
    let param = |k: &str| -> Option<String> {
        let s = params.get(k)?.as_str()?.trim();
        match s.strip_prefix("os.environ/") {
            Some(name) => env(name).and_then(non_empty),
            None => non_empty(s.to_string()),
        }
    };
    let env_first = |names: &[&str]| names.iter().find_map(|n| env(n).and_then(non_empty));

    for unsupported in [
        "aws_role_name",
        "aws_profile_name",
        "aws_web_identity_token",
    ] {
        if param(unsupported).is_some() {
            return Err(format!(
                "`{unsupported}` is set but STS AssumeRole, web identity and named profiles are not supported by this gateway; set aws_access_key_id / aws_secret_access_key (and aws_session_token) or a Bedrock API key instead"
            ));
        }
    }

    let region = param("aws_region_name")
        .or_else(|| env_first(&["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"]))
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    if !region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!("invalid AWS region `{region}`"));
    }
    let endpoint = param("aws_bedrock_runtime_endpoint")
        .or_else(|| env_first(&["AWS_BEDROCK_RUNTIME_ENDPOINT"]));

    let key_pair = |id: Option<String>,
                    secret: Option<String>,
                    token: Option<String>,
                    from: &str| {
        match (id, secret) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Some(aws::Credentials {
                access_key_id,
                secret_access_key,
                session_token: token,
            })),
            (None, None) => Ok(None),
            _ => Err(format!(
                "{from} sets only one of the AWS access key id and secret access key; both are needed"
            )),
        }
    };
    let done = |credentials: Option<aws::Credentials>, bearer_token: Option<String>| {
        Ok(AwsSettings {
            region: region.clone(),
            credentials,
            bearer_token,
            endpoint: endpoint.clone(),
        })
    };

    if let Some(token) = param("api_key") {
        return done(None, Some(token));
    }
    if let Some(c) = key_pair(
        param("aws_access_key_id"),
        param("aws_secret_access_key"),
        param("aws_session_token"),
        "litellm_params",
    )? {
        return done(Some(c), None);
    }
    if let Some(token) = env_first(&["AWS_BEARER_TOKEN_BEDROCK"]) {
        return done(None, Some(token));
    }
    if let Some(c) = key_pair(
        env_first(&["AWS_ACCESS_KEY_ID"]),
        env_first(&["AWS_SECRET_ACCESS_KEY"]),
        env_first(&["AWS_SESSION_TOKEN"]),
        "the environment",
    )? {
        return done(Some(c), None);
    }
    Err("no AWS credentials: set aws_access_key_id and aws_secret_access_key (litellm_params or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or a Bedrock API key (AWS_BEARER_TOKEN_BEDROCK)".into())
}

/// The model id without LiteLLM's explicit route prefix (`converse/`, `invoke/`).
fn route_model_id(model: &str) -> &str {
    model
        .strip_prefix("converse/")
        .or_else(|| model.strip_prefix("invoke/"))
        .unwrap_or(model)
}

/// Percent-encodes everything but RFC 3986 unreserved characters (`:` -> `%3A`, `/` -> `%2F`).
fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `https://bedrock-runtime.{region}.amazonaws.com`, or the override (scheme added when
/// missing, trailing `/` removed; a path prefix in the override is kept).
fn runtime_base(region: &str, endpoint_override: Option<&str>) -> String {
    match endpoint_override
        .map(|e| e.trim().trim_end_matches('/'))
        .filter(|e| !e.is_empty())
    {
        Some(e) if e.contains("://") => e.to_string(),
        Some(e) => format!("https://{e}"),
        None => format!("https://bedrock-runtime.{region}.amazonaws.com"),
    }
}

/// The Converse (or ConverseStream) URL for `model` (a model id, inference profile id or ARN).
pub fn converse_url(
    region: &str,
    endpoint_override: Option<&str>,
    model: &str,
    stream: bool,
) -> String {
    format!(
        "{}/model/{}/{}",
        runtime_base(region, endpoint_override),
        encode_path_segment(route_model_id(model)),
        if stream {
            "converse-stream"
        } else {
            "converse"
        }
    )
}

/// The InvokeModel URL for `model` (used for embeddings).
pub fn invoke_url(region: &str, endpoint_override: Option<&str>, model: &str) -> String {
    format!(
        "{}/model/{}/invoke",
        runtime_base(region, endpoint_override),
        encode_path_segment(route_model_id(model))
    )
}

/// `accept` for a runtime URL: event stream for the streaming operations, JSON otherwise.
fn accept_for(url: &str) -> &'static str {
    let path = url.split('?').next().unwrap_or(url);
    if path.ends_with("/converse-stream") || path.ends_with("/invoke-with-response-stream") {
        EVENT_STREAM_CONTENT_TYPE
    } else {
        "application/json"
    }
}

/// The headers for a POST of `body` to `url`: `content-type`, `accept` and the SigV4 headers
/// (`x-amz-date`, `x-amz-security-token` with a session token, `authorization`) for service
/// `bedrock`. The `host` header is signed from `url`; the HTTP client must send the same.
pub fn signed_headers(
    url: &str,
    body: &[u8],
    creds: &aws::Credentials,
    region: &str,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("accept".to_string(), accept_for(url).to_string()),
    ];
    let signed = aws::sign("POST", url, &headers, body, creds, region, SERVICE, now);
    headers.extend(signed);
    headers
}

/// The headers for a Bedrock API key (`AWS_BEARER_TOKEN_BEDROCK`): no signing.
pub fn bearer_headers(url: &str, token: &str) -> Vec<(String, String)> {
    vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("accept".to_string(), accept_for(url).to_string()),
        ("authorization".to_string(), format!("Bearer {token}")),
    ]
}

// ---------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------

/// Translates an OpenAI chat body (deployment defaults merged, LiteLLM-only fields removed)
/// into a Converse body for `model`. Whether the call streams is chosen by the URL, not the
/// body. Any `aws_*` key (deployment credentials merged in as defaults) is removed here so it
/// can never reach the upstream body.
pub fn converse_body(
    mut body: Map<String, Value>,
    model: &str,
    policy: &ParamPolicy<'_>,
) -> ApiResult<Map<String, Value>> {
    let anthropic = is_anthropic(model);
    let supported: Vec<&str> = SUPPORTED
        .iter()
        .copied()
        .filter(|p| anthropic || !matches!(*p, "thinking" | "reasoning_effort"))
        .collect();
    params::apply(&mut body, &supported, policy, Provider::Bedrock, model)?;
    body.retain(|k, _| {
        !k.starts_with("aws_") && !matches!(k.as_str(), "model" | "model_id" | "api_key")
    });

    let mut out = Map::new();
    let messages = match body.remove("messages") {
        Some(Value::Array(m)) => m,
        _ => Vec::new(),
    };
    let (system, turns) = convert_messages(messages)?;
    out.insert("messages".into(), Value::Array(turns));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }

    let mut inference = match body.remove("inferenceConfig") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Some(v) =
        take(&mut body, "max_tokens").or_else(|| take(&mut body, "max_completion_tokens"))
    {
        inference.insert("maxTokens".into(), v);
    }
    body.remove("max_completion_tokens");
    if let Some(v) = take(&mut body, "temperature") {
        inference.insert("temperature".into(), v);
    }
    if let Some(v) = take(&mut body, "top_p") {
        inference.insert("topP".into(), v);
    }
    match body.remove("stop") {
        Some(Value::String(s)) => {
            inference.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            inference.insert("stopSequences".into(), Value::Array(a));
        }
        _ => {}
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }

    if let Some(tc) = tool_config(&mut body)? {
        out.insert("toolConfig".into(), tc);
    }

    let mut extra = match body.remove("additionalModelRequestFields") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if anthropic {
        let thinking = take(&mut body, "thinking");
        let effort = body.remove("reasoning_effort");
        if let Some(t) = thinking {
            extra.insert("thinking".into(), t);
        } else if let Some(budget) = effort
            .as_ref()
            .and_then(Value::as_str)
            .and_then(thinking_budget)
        {
            extra.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
    }
    for k in ["stream", "stream_options", "extra_headers", "user"] {
        body.remove(k);
    }
    for (k, v) in body {
        if CONVERSE_TOP_LEVEL.contains(&k.as_str()) {
            out.insert(k, v);
        } else if !v.is_null() {
            // Provider-specific extras (`top_k`, ...) go to the model as they are.
            extra.entry(k).or_insert(v);
        }
    }
    if !extra.is_empty() {
        out.insert("additionalModelRequestFields".into(), Value::Object(extra));
    }
    Ok(out)
}

/// Removes `key`, treating JSON null as absent.
fn take(body: &mut Map<String, Value>, key: &str) -> Option<Value> {
    body.remove(key).filter(|v| !v.is_null())
}

/// LiteLLM's thinking budgets for `reasoning_effort`.
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        _ => None,
    }
}

fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

/// `tools`, `tool_choice` and `response_format` as a Converse `toolConfig`. `tool_choice:
/// "none"` drops the tools (Converse has no "none" choice).
fn tool_config(body: &mut Map<String, Value>) -> ApiResult<Option<Value>> {
    let mut tools = Vec::new();
    if let Some(Value::Array(list)) = body.remove("tools") {
        for t in list {
            let has_cache = t.get("cache_control").is_some();
            tools.push(convert_tool(t)?);
            if has_cache {
                tools.push(cache_point());
            }
        }
    }
    let mut choice = match body.remove("tool_choice") {
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"auto": {}})),
            "required" | "any" => Some(json!({"any": {}})),
            "none" => {
                tools.clear();
                None
            }
            _ => None,
        },
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str);
            match name {
                Some(n) => Some(json!({"tool": {"name": n}})),
                // Already a Converse choice (`{"auto": {}}`, `{"tool": {"name"}}`, ...).
                None if ["auto", "any", "tool"].iter().any(|k| o.contains_key(*k)) => {
                    Some(Value::Object(o))
                }
                None => None,
            }
        }
        _ => None,
    };
    if let Some(schema) = body.remove("response_format").and_then(json_mode_schema) {
        tools.push(json!({"toolSpec": {
            "name": JSON_TOOL,
            "description": "Respond with a JSON object.",
            "inputSchema": {"json": schema},
        }}));
        choice = Some(json!({"tool": {"name": JSON_TOOL}}));
    }
    if tools.is_empty() {
        return Ok(None);
    }
    let mut tc = Map::new();
    tc.insert("tools".into(), Value::Array(tools));
    if let Some(c) = choice {
        tc.insert("toolChoice".into(), c);
    }
    Ok(Some(Value::Object(tc)))
}

fn json_mode_schema(rf: Value) -> Option<Value> {
    match rf.get("type").and_then(Value::as_str)? {
        "json_object" => Some(json!({"type": "object", "additionalProperties": true})),
        "json_schema" => Some(
            rf.pointer("/json_schema/schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"})),
        ),
        _ => None,
    }
}

/// An OpenAI function tool as a Converse `toolSpec`; Converse-native tool entries
/// (`toolSpec`, `cachePoint`, `systemTool`) pass through.
fn convert_tool(t: Value) -> ApiResult<Value> {
    let Some(f) = t.get("function").and_then(Value::as_object) else {
        if ["toolSpec", "cachePoint", "systemTool"]
            .iter()
            .any(|k| t.get(*k).is_some())
        {
            return Ok(t);
        }
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("unknown");
        return Err(ApiError::bad_request(format!(
            "litellm.BadRequestError: bedrock only supports function tools; got a tool of type `{kind}`"
        ))
        .with_param("tools"));
    };
    let mut spec = Map::new();
    spec.insert(
        "name".into(),
        f.get("name")
            .cloned()
            .unwrap_or(Value::String(String::new())),
    );
    if let Some(d) = f
        .get("description")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        spec.insert("description".into(), json!(d));
    }
    let schema = f
        .get("parameters")
        .filter(|p| p.is_object())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    spec.insert("inputSchema".into(), json!({ "json": schema }));
    Ok(json!({ "toolSpec": spec }))
}

/// Splits OpenAI messages into Converse `system` blocks and alternating turns.
fn convert_messages(messages: Vec<Value>) -> ApiResult<(Vec<Value>, Vec<Value>)> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut docs = 0usize;
    for (i, m) in messages.into_iter().enumerate() {
        let Value::Object(mut m) = m else {
            continue;
        };
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user")
            .to_string();
        let msg_cache = m.remove("cache_control").is_some();
        let (turn_role, mut blocks) = match role.as_str() {
            "system" | "developer" => {
                let mut b = text_blocks(m.remove("content"));
                if msg_cache && !b.is_empty() {
                    b.push(cache_point());
                }
                system.extend(b);
                continue;
            }
            "assistant" => ("assistant", assistant_blocks(&mut m)?),
            "tool" | "function" => {
                let id = m
                    .remove("tool_call_id")
                    .or_else(|| m.remove("name"))
                    .unwrap_or(Value::String(String::new()));
                let content = tool_result_content(m.remove("content"), &mut docs)?;
                (
                    "user",
                    vec![json!({"toolResult": {"toolUseId": id, "content": content}})],
                )
            }
            "user" => ("user", user_blocks(m.remove("content"), &mut docs)?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid 'messages[{i}].role': '{other}' is not one of system, developer, user, assistant, tool, function."
                ))
                .with_param("messages"))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        if msg_cache {
            blocks.push(cache_point());
        }
        match turns.last_mut() {
            Some((r, b)) if *r == turn_role => b.extend(blocks),
            _ => turns.push((turn_role, blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, turns))
}

/// Converse rejects blank text blocks.
fn non_blank(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s)
}

/// Text content (string or text parts) as text blocks; a part's `cache_control` becomes a
/// cache point after it.
fn text_blocks(content: Option<Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) => non_blank(&s)
            .map(|t| vec![json!({ "text": t })])
            .unwrap_or_default(),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str).and_then(non_blank) {
                    out.push(json!({ "text": t }));
                    if p.get("cache_control").is_some() {
                        out.push(cache_point());
                    }
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

fn user_blocks(content: Option<Value>, docs: &mut usize) -> ApiResult<Vec<Value>> {
    match content {
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for p in parts {
                let cache = p.get("cache_control").is_some();
                if let Some(b) = user_block(p, docs)? {
                    out.push(b);
                    if cache {
                        out.push(cache_point());
                    }
                }
            }
            Ok(out)
        }
        other => Ok(text_blocks(other)),
    }
}

/// One OpenAI content part as a Converse content block.
fn user_block(part: Value, docs: &mut usize) -> ApiResult<Option<Value>> {
    let Value::Object(p) = part else {
        return Ok(None);
    };
    let Some(kind) = p.get("type").and_then(Value::as_str) else {
        // Already a Converse block (`{"text"}`, `{"image"}`, `{"document"}`, ...).
        return Ok(Some(Value::Object(p)));
    };
    match kind {
        "text" => Ok(p
            .get("text")
            .and_then(Value::as_str)
            .and_then(non_blank)
            .map(|t| json!({ "text": t }))),
        "image_url" => {
            let url = p
                .get("image_url")
                .and_then(|u| u.get("url").or(Some(u)))
                .and_then(Value::as_str)
                .unwrap_or_default();
            image_block(url).map(Some)
        }
        "file" => {
            let f = p.get("file");
            let data = f
                .and_then(|f| f.get("file_data"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (mime, b64) = data_url(data).ok_or_else(|| {
                ApiError::bad_request(
                    "bedrock: file parts need `file_data` as a base64 data URL (data:<type>;base64,<data>); file ids and URLs are not supported",
                )
                .with_param("messages")
            })?;
            if mime.starts_with("image/") {
                return image_block(data).map(Some);
            }
            let format = document_format(mime).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "bedrock: unsupported document type `{mime}` (supported: pdf, csv, doc, docx, xls, xlsx, html, txt, md)"
                ))
                .with_param("messages")
            })?;
            *docs += 1;
            Ok(Some(json!({"document": {
                "format": format,
                "name": format!("document-{docs}"),
                "source": {"bytes": b64},
            }})))
        }
        other => Err(ApiError::bad_request(format!(
            "bedrock: unsupported content part type `{other}`"
        ))
        .with_param("messages")),
    }
}

/// `data:<mime>;base64,<data>` -> (mime, data). Only base64 data URLs qualify.
fn data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    let mut fields = meta.split(';');
    let mime = fields.next().unwrap_or_default();
    fields
        .any(|f| f.eq_ignore_ascii_case("base64"))
        .then_some((mime, data))
}

fn image_format(ext_or_subtype: &str) -> Option<&'static str> {
    match ext_or_subtype.to_ascii_lowercase().as_str() {
        "png" => Some("png"),
        "jpeg" | "jpg" | "pjpeg" => Some("jpeg"),
        "gif" => Some("gif"),
        "webp" => Some("webp"),
        _ => None,
    }
}

fn document_format(mime: &str) -> Option<&'static str> {
    Some(match mime.to_ascii_lowercase().as_str() {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    })
}

/// An image URL as a Converse image block: base64 data URLs inline, `s3://` as an S3
/// location. Anything else would have to be fetched, which this adapter does not do.
fn image_block(url: &str) -> ApiResult<Value> {
    let unsupported = |why: String| ApiError::bad_request(why).with_param("messages");
    if let Some(loc) = url.strip_prefix("s3://") {
        let ext = loc.rsplit('.').next().unwrap_or_default();
        let format = image_format(ext).ok_or_else(|| {
            unsupported(format!(
                "bedrock: cannot tell the image format of `{url}` (expected a .png, .jpg, .jpeg, .gif or .webp key)"
            ))
        })?;
        return Ok(json!({"image": {"format": format, "source": {"s3Location": {"uri": url}}}}));
    }
    let Some((mime, data)) = data_url(url) else {
        return Err(unsupported(
            "bedrock: image URLs cannot be fetched; only base64 data URLs (data:image/<png|jpeg|gif|webp>;base64,...) and s3:// locations are supported".into(),
        ));
    };
    let format = mime
        .strip_prefix("image/")
        .and_then(image_format)
        .ok_or_else(|| {
            unsupported(format!(
                "bedrock: unsupported image type `{mime}` (supported: image/png, image/jpeg, image/gif, image/webp)"
            ))
        })?;
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

/// A tool message's content as `toolResult.content`: strings and text parts as text blocks,
/// image parts as images, a JSON object or array as one `json` block.
fn tool_result_content(content: Option<Value>, docs: &mut usize) -> ApiResult<Vec<Value>> {
    Ok(match content {
        Some(Value::String(s)) => vec![json!({ "text": s })],
        Some(Value::Array(parts)) if parts.iter().all(|p| p.get("type").is_some()) => {
            let mut out = Vec::new();
            for p in parts {
                if let Some(b) = user_block(p, docs)? {
                    out.push(b);
                }
            }
            if out.is_empty() {
                out.push(json!({"text": ""}));
            }
            out
        }
        Some(v @ (Value::Object(_) | Value::Array(_))) => vec![json!({ "json": v })],
        Some(Value::Null) | None => vec![json!({"text": ""})],
        Some(other) => vec![json!({ "text": other.to_string() })],
    })
}

fn assistant_blocks(m: &mut Map<String, Value>) -> ApiResult<Vec<Value>> {
    let mut blocks = Vec::new();
    // Signed thinking must be echoed back first when a thinking turn continues with tools.
    if let Some(Value::Array(tb)) = m.remove("thinking_blocks") {
        for b in tb {
            match b.get("type").and_then(Value::as_str) {
                Some("thinking") => {
                    let mut rt = Map::new();
                    rt.insert(
                        "text".into(),
                        b.get("thinking").cloned().unwrap_or(json!("")),
                    );
                    if let Some(sig) = b.get("signature").filter(|s| !s.is_null()) {
                        rt.insert("signature".into(), sig.clone());
                    }
                    blocks.push(json!({"reasoningContent": {"reasoningText": rt}}));
                }
                Some("redacted_thinking") => {
                    if let Some(d) = b.get("data") {
                        blocks.push(json!({"reasoningContent": {"redactedContent": d}}));
                    }
                }
                _ => {}
            }
        }
    }
    blocks.extend(text_blocks(m.remove("content")));
    let legacy_id = || format!("call_{}", uuid::Uuid::new_v4().simple());
    for c in super::shape::take_assistant_calls(m, legacy_id)? {
        blocks.push(json!({"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.input}}));
    }
    Ok(blocks)
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

/// Converse `stopReason` -> OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// Converse `usage` -> OpenAI `usage` (cache tokens folded into `prompt_tokens`).
pub fn usage_json(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (input, read, written, output) = (
        n("inputTokens"),
        n("cacheReadInputTokens"),
        n("cacheWriteInputTokens"),
        n("outputTokens"),
    );
    super::shape::cached_usage(input, read, written, output)
}

fn bad_body(why: &str) -> ApiError {
    ApiError::internal(format!(
        "litellm.APIError: APIError: BedrockException - unexpected response body: {why}"
    ))
}

/// A Converse response as an OpenAI chat completion for `model`.
pub fn parse_converse(bytes: &[u8], model: &str) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad_body(&e.to_string()))?;
    let blocks = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_body("no `output.message.content` array"))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for b in blocks {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tu) = b.get("toolUse") {
            tool_calls.push(json!({
                "id": tu.get("toolUseId").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": tu.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": tu.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into()),
                },
            }));
        } else if let Some(rc) = b.get("reasoningContent") {
            if let Some(rt) = rc.get("reasoningText") {
                let t = rt.get("text").and_then(Value::as_str).unwrap_or("");
                reasoning.push_str(t);
                let mut tb = Map::new();
                tb.insert("type".into(), json!("thinking"));
                tb.insert("thinking".into(), json!(t));
                if let Some(sig) = rt.get("signature") {
                    tb.insert("signature".into(), sig.clone());
                }
                thinking_blocks.push(Value::Object(tb));
            } else if let Some(data) = rc.get("redactedContent") {
                thinking_blocks.push(json!({"type": "redacted_thinking", "data": data}));
            }
        }
    }
    let (message, finish) = super::shape::assistant_message(
        text,
        tool_calls,
        reasoning,
        thinking_blocks,
        finish_reason(v.get("stopReason").and_then(Value::as_str).unwrap_or("")),
    );
    Ok(super::shape::completion(
        json!(super::mock::new_chat_id()),
        json!(model),
        json!([{"finish_reason": finish, "index": 0, "message": message}]),
        usage_json(v.get("usage").unwrap_or(&Value::Null)),
    ))
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The HTTP status an AWS error type stands for (`ThrottlingException`, the event-stream
/// `throttlingException`, `com.amazon.coral...#ValidationException`, `X:http://...`).
pub fn error_type_status(kind: &str) -> Option<u16> {
    let base = kind.split(':').next().unwrap_or(kind);
    let base = base.rsplit('#').next().unwrap_or(base).to_ascii_lowercase();
    let name = base.strip_suffix("exception").unwrap_or(&base);
    Some(match name {
        "validation" => 400,
        "unrecognizedclient"
        | "invalidsignature"
        | "incompletesignature"
        | "missingauthenticationtoken"
        | "expiredtoken" => 401,
        "accessdenied" => 403,
        "resourcenotfound" => 404,
        "modeltimeout" => 408,
        "throttling" | "modelnotready" | "servicequotaexceeded" => 429,
        "internalserver" | "modelerror" | "modelstreamerror" => 500,
        "serviceunavailable" => 503,
        _ => return None,
    })
}

/// Phrases Bedrock and its models use for an over-long prompt (beyond the ones
/// [`super::openai::map_error`] already knows).
fn is_context_window_message(lower: &str) -> bool {
    [
        "too long",
        "too many tokens",
        "too many input tokens",
        "context length",
        "context window",
        "maximum context",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

/// Maps a Bedrock error response (`{"message": "..."}`, sometimes `Message`, possibly with
/// `__type`).
pub fn map_error(status: u16, body: &[u8]) -> ApiError {
    map_error_typed(status, None, body)
}

/// [`map_error`] with the AWS error type when known (the `x-amzn-ErrorType` response header,
/// or `:exception-type` in a stream), which decides the class when it is more specific than
/// the status.
pub fn map_error_typed(status: u16, error_type: Option<&str>, body: &[u8]) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let kind = error_type.map(str::to_string).or_else(|| {
        parsed
            .as_ref()
            .and_then(|v| v.get("__type"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(2000).collect());
    let status = kind
        .as_deref()
        .and_then(error_type_status)
        .unwrap_or(status);
    let normalized = json!({ "message": message }).to_string();
    let mut e = super::openai::map_error(Provider::Bedrock, status, normalized.as_bytes());
    if e.class == ErrorClass::BadRequest && is_context_window_message(&message.to_ascii_lowercase())
    {
        reclassify(&mut e, ErrorClass::ContextWindowExceeded);
    }
    e
}

/// Changes an error's class, rewriting LiteLLM's `litellm.<Class>: <Class>: ` prefix.
fn reclassify(e: &mut ApiError, class: ErrorClass) {
    let old = e.class.litellm_name();
    let prefix = format!("litellm.{old}: {old}: ");
    if let Some(rest) = e.message.strip_prefix(&prefix) {
        let new = class.litellm_name();
        e.message = format!("litellm.{new}: {new}: {rest}");
    }
    e.class = class;
}

/// An undecodable event stream (bad CRC, bad lengths) as an error item.
pub fn frame_error(e: &aws::FrameError) -> ApiError {
    ApiError::internal(format!(
        "litellm.APIError: APIError: BedrockException - {e}"
    ))
}

// ---------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------

/// ConverseStream event-stream messages -> OpenAI chunks.
#[derive(Debug)]
pub struct StreamState {
    id: String,
    model: String,
    created: i64,
    /// Content block index -> tool call index (OpenAI numbers tool calls from 0).
    tool_index: HashMap<u64, u64>,
    next_tool: u64,
    /// Content block index of the forced JSON tool, whose input streams as content.
    json_block: Option<u64>,
    finish: Option<&'static str>,
    /// `Done` (or a terminal error) was emitted; later messages are ignored.
    done: bool,
}

impl StreamState {
    pub fn new(model: &str) -> Self {
        Self {
            id: super::mock::new_chat_id(),
            model: model.to_string(),
            created: Utc::now().timestamp(),
            tool_index: HashMap::new(),
            next_tool: 0,
            json_block: None,
            finish: None,
            done: false,
        }
    }

    fn base(&self) -> Map<String, Value> {
        super::shape::chunk_map(&self.id, self.created, &self.model, json!([]))
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> StreamItem {
        super::shape::chunk(&self.id, self.created, &self.model, delta, finish)
    }

    /// Pushes `bytes` into `decoder` and handles every complete message.
    pub fn feed(
        &mut self,
        decoder: &mut aws::EventStreamDecoder,
        bytes: &[u8],
        out: &mut VecDeque<StreamItem>,
    ) {
        decoder.push(bytes);
        while let Some(next) = decoder.next_message() {
            match next {
                Ok(m) => self.on_message(&m, out),
                Err(e) => {
                    if !self.done {
                        out.push_back(StreamItem::Error(frame_error(&e)));
                        self.done = true;
                    }
                }
            }
        }
    }

    /// Handles one decoded event-stream message.
    pub fn on_message(&mut self, msg: &aws::Message, out: &mut VecDeque<StreamItem>) {
        if self.done {
            return;
        }
        match msg.header_str(":message-type").unwrap_or("event") {
            "exception" => {
                let kind = msg.header_str(":exception-type").unwrap_or("");
                let status = error_type_status(kind).unwrap_or(500);
                out.push_back(StreamItem::Error(map_error_typed(
                    status,
                    Some(kind),
                    &msg.payload,
                )));
                self.done = true;
                return;
            }
            "error" => {
                let code = msg.header_str(":error-code").unwrap_or("");
                let text = msg.header_str(":error-message").unwrap_or(code);
                let body = json!({ "message": text }).to_string();
                let status = error_type_status(code).unwrap_or(500);
                out.push_back(StreamItem::Error(map_error_typed(
                    status,
                    Some(code),
                    body.as_bytes(),
                )));
                self.done = true;
                return;
            }
            _ => {}
        }
        let v: Value = match serde_json::from_slice(&msg.payload) {
            Ok(v) => v,
            Err(e) => {
                out.push_back(StreamItem::Error(bad_body(&format!(
                    "invalid stream event: {e}"
                ))));
                self.done = true;
                return;
            }
        };
        let idx = v
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match msg.header_str(":event-type").unwrap_or("") {
            "messageStart" => {
                out.push_back(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            "contentBlockStart" => {
                let Some(tu) = v.pointer("/start/toolUse") else {
                    return;
                };
                if tu.get("name").and_then(Value::as_str) == Some(JSON_TOOL) {
                    self.json_block = Some(idx);
                    return;
                }
                let k = self.next_tool;
                self.next_tool += 1;
                self.tool_index.insert(idx, k);
                out.push_back(self.chunk(
                    json!({"tool_calls": [{
                        "index": k,
                        "id": tu.get("toolUseId").cloned().unwrap_or(Value::Null),
                        "type": "function",
                        "function": {"name": tu.get("name").cloned().unwrap_or(Value::Null), "arguments": ""},
                    }]}),
                    None,
                ));
            }
            "contentBlockDelta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                let delta = if let Some(t) = d.get("text").and_then(Value::as_str) {
                    json!({ "content": t })
                } else if let Some(tu) = d.get("toolUse") {
                    let frag = tu.get("input").and_then(Value::as_str).unwrap_or("");
                    if self.json_block == Some(idx) {
                        json!({ "content": frag })
                    } else {
                        json!({"tool_calls": [{
                            "index": self.tool_index.get(&idx).copied().unwrap_or(0),
                            "function": {"arguments": frag},
                        }]})
                    }
                } else if let Some(rc) = d.get("reasoningContent") {
                    if let Some(t) = rc.get("text").and_then(Value::as_str) {
                        json!({
                            "reasoning_content": t,
                            "thinking_blocks": [{"type": "thinking", "thinking": t}],
                        })
                    } else if let Some(sig) = rc.get("signature").and_then(Value::as_str) {
                        json!({
                            "thinking_blocks": [{"type": "thinking", "thinking": "", "signature": sig}],
                        })
                    } else if let Some(data) = rc.get("redactedContent") {
                        json!({
                            "thinking_blocks": [{"type": "redacted_thinking", "data": data}],
                        })
                    } else {
                        return;
                    }
                } else {
                    return;
                };
                out.push_back(self.chunk(delta, None));
            }
            "messageStop" => {
                let reason =
                    finish_reason(v.get("stopReason").and_then(Value::as_str).unwrap_or(""));
                let reason =
                    if reason == "tool_calls" && self.json_block.is_some() && self.next_tool == 0 {
                        "stop"
                    } else {
                        reason
                    };
                self.finish = Some(reason);
                out.push_back(self.chunk(json!({}), Some(reason)));
            }
            "metadata" => {
                let mut c = self.base();
                c.insert("choices".into(), json!([]));
                c.insert(
                    "usage".into(),
                    usage_json(v.get("usage").unwrap_or(&Value::Null)),
                );
                out.push_back(StreamItem::Chunk(c));
                out.push_back(StreamItem::Done);
                self.done = true;
            }
            _ => {} // contentBlockStop, unknown events
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings (InvokeModel)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmbedModel {
    /// `amazon.titan-embed-text-v1` (no dimensions), `-v2:0` (`dimensions`),
    /// `amazon.titan-embed-image-v1` (`embeddingConfig.outputEmbeddingLength`).
    Titan { v1: bool, image: bool },
    /// `cohere.embed-english-v3`, `cohere.embed-multilingual-v3`, `cohere.embed-v4:0`
    /// (`output_dimension`).
    Cohere { v4: bool },
}

fn embed_model(model: &str) -> Option<EmbedModel> {
    if model.contains("amazon.titan-embed-image") {
        Some(EmbedModel::Titan {
            v1: false,
            image: true,
        })
    } else if model.contains("amazon.titan-embed") {
        Some(EmbedModel::Titan {
            v1: !model.contains("-v2"),
            image: false,
        })
    } else if model.contains("cohere.embed") {
        Some(EmbedModel::Cohere {
            v4: model.contains("embed-v4"),
        })
    } else {
        None
    }
}

fn unsupported_embed_model(model: &str) -> ApiError {
    ApiError::bad_request(format!(
        "litellm.BadRequestError: bedrock embeddings support amazon.titan-embed-* and cohere.embed-* models; `{model}` is neither"
    ))
    .with_param("model")
}

/// The texts of an embeddings `input` (a string or an array of strings).
fn embed_texts(input: &Value) -> ApiResult<Vec<String>> {
    let invalid = || {
        ApiError::bad_request(
            "bedrock embeddings take `input` as a string or an array of strings (token arrays are not supported)",
        )
        .with_param("input")
    };
    let texts: Vec<String> = match input {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(invalid))
            .collect::<ApiResult<_>>()?,
        _ => return Err(invalid()),
    };
    if texts.is_empty() {
        return Err(ApiError::bad_request("`input` must not be empty").with_param("input"));
    }
    Ok(texts)
}

/// InvokeModel bodies for an embeddings call: one per input for Titan, one for all inputs for
/// Cohere (`input_type: "search_document"`).
pub fn embed_request(
    model: &str,
    input: &Value,
    dimensions: Option<u64>,
) -> ApiResult<Vec<Map<String, Value>>> {
    let kind = embed_model(model).ok_or_else(|| unsupported_embed_model(model))?;
    let texts = embed_texts(input)?;
    let no_dimensions = || {
        ApiError::new(
            ErrorClass::UnsupportedParams,
            format!(
                "litellm.UnsupportedParamsError: bedrock does not support parameters: ['dimensions'], for model={model}."
            ),
        )
        .with_param("dimensions")
    };
    match kind {
        EmbedModel::Titan { v1, image } => {
            if v1 && dimensions.is_some() {
                return Err(no_dimensions());
            }
            Ok(texts
                .into_iter()
                .map(|t| {
                    let mut b = Map::new();
                    b.insert("inputText".into(), Value::String(t));
                    if let Some(d) = dimensions {
                        if image {
                            b.insert(
                                "embeddingConfig".into(),
                                json!({ "outputEmbeddingLength": d }),
                            );
                        } else {
                            b.insert("dimensions".into(), json!(d));
                        }
                    }
                    b
                })
                .collect())
        }
        EmbedModel::Cohere { v4 } => {
            let mut b = Map::new();
            b.insert("texts".into(), json!(texts));
            b.insert("input_type".into(), json!("search_document"));
            match dimensions {
                Some(d) if v4 => {
                    b.insert("output_dimension".into(), json!(d));
                }
                Some(_) => return Err(no_dimensions()),
                None => {}
            }
            Ok(vec![b])
        }
    }
}

/// InvokeModel embedding responses (in request order) as an OpenAI embeddings list. Titan
/// reports `inputTextTokenCount`; Cohere reports no count, so its prompt tokens are estimated
/// at four characters per token from the echoed `texts` (the `x-amzn-bedrock-input-token-count`
/// response header, when the caller has it, is exact).
pub fn parse_embed(model: &str, bodies: &[Bytes]) -> ApiResult<Map<String, Value>> {
    let kind = embed_model(model).ok_or_else(|| unsupported_embed_model(model))?;
    let mut data = Vec::new();
    let mut tokens = 0u64;
    let push = |embedding: &Value, data: &mut Vec<Value>| {
        let i = data.len();
        data.push(json!({"object": "embedding", "index": i, "embedding": embedding}));
    };
    for body in bodies {
        let v: Value = serde_json::from_slice(body).map_err(|e| bad_body(&e.to_string()))?;
        match kind {
            EmbedModel::Titan { .. } => {
                let e = v
                    .get("embedding")
                    .filter(|e| e.is_array())
                    .ok_or_else(|| bad_body("no `embedding` array"))?;
                push(e, &mut data);
                tokens = tokens.saturating_add(
                    v.get("inputTextTokenCount")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                );
            }
            EmbedModel::Cohere { .. } => {
                let list = v
                    .get("embeddings")
                    .and_then(|e| e.as_array().or_else(|| e.get("float")?.as_array()))
                    .ok_or_else(|| bad_body("no `embeddings` list"))?;
                for e in list {
                    push(e, &mut data);
                }
                let chars: usize = v
                    .get("texts")
                    .and_then(Value::as_array)
                    .map(|t| t.iter().filter_map(Value::as_str).map(str::len).sum())
                    .unwrap_or(0);
                tokens += (chars as u64).div_ceil(4);
            }
        }
    }
    let mut out = Map::new();
    out.insert("object".into(), json!("list"));
    out.insert("data".into(), Value::Array(data));
    out.insert("model".into(), json!(model));
    out.insert(
        "usage".into(),
        json!({"prompt_tokens": tokens, "total_tokens": tokens}),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Usage;
    use chrono::TimeZone;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const SONNET: &str = "us.anthropic.claude-3-5-sonnet-20241022-v2:0";

    #[test]
    fn request_translation_covers_system_merge_images_tools_and_inference_config() {
        let body = obj(json!({
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "and kind"}], "cache_control": {"type": "ephemeral"}},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "text", "text": "   "}
                ]},
                {"role": "assistant", "content": "let me check", "tool_calls": [
                    {"id": "tooluse_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}},
                    {"id": "tooluse_2", "type": "function", "function": {"name": "lookup", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "tooluse_1", "content": "a cat"},
                {"role": "tool", "tool_call_id": "tooluse_2", "content": {"animal": "dog"}},
                {"role": "user", "content": "thanks"},
            ],
            "max_completion_tokens": 100,
            "stop": "END",
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 3,
            "user": "u-1",
            "stream": true,
            "stream_options": {"include_usage": true},
            "aws_region_name": "us-west-2",
            "aws_secret_access_key": "never-sent",
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "find", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        }));
        let out = converse_body(body, SONNET, &ParamPolicy::default()).unwrap();
        let expected = json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "hi"},
                    {"text": "what is this?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
                ]},
                {"role": "assistant", "content": [
                    {"text": "let me check"},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "lookup", "input": {"q": "cat"}}},
                    {"toolUse": {"toolUseId": "tooluse_2", "name": "lookup", "input": {}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "a cat"}]}},
                    {"toolResult": {"toolUseId": "tooluse_2", "content": [{"json": {"animal": "dog"}}]}},
                    {"text": "thanks"}
                ]}
            ],
            "system": [
                {"text": "be brief"},
                {"text": "and kind"},
                {"cachePoint": {"type": "default"}}
            ],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "lookup", "description": "find",
                    "inputSchema": {"json": {"type": "object", "properties": {"q": {"type": "string"}}}}}}],
                "toolChoice": {"tool": {"name": "lookup"}}
            },
            "additionalModelRequestFields": {"top_k": 3}
        });
        assert_eq!(Value::Object(out), expected);
    }

    #[test]
    fn tool_choice_variants_and_none_drops_tools() {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        for (choice, expected) in [
            (json!("auto"), json!({"auto": {}})),
            (json!("required"), json!({"any": {}})),
        ] {
            let out = converse_body(
                obj(json!({"messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": choice})),
                "amazon.nova-pro-v1:0",
                &ParamPolicy::default(),
            )
            .unwrap();
            assert_eq!(out["toolConfig"]["toolChoice"], expected);
            assert_eq!(
                out["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
                json!({"type": "object", "properties": {}})
            );
        }
        let out = converse_body(
            obj(json!({"messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": "none"})),
            "amazon.nova-pro-v1:0",
            &ParamPolicy::default(),
        )
        .unwrap();
        assert!(out.get("toolConfig").is_none());
    }

    #[test]
    fn json_mode_thinking_and_unsupported_params() {
        let out = converse_body(
            obj(json!({"messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
                "reasoning_effort": "medium"})),
            SONNET,
            &ParamPolicy::default(),
        )
        .unwrap();
        assert_eq!(
            out["toolConfig"]["toolChoice"],
            json!({"tool": {"name": JSON_TOOL}})
        );
        assert_eq!(out["toolConfig"]["tools"][0]["toolSpec"]["name"], JSON_TOOL);
        assert_eq!(
            out["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["a"]
                ["type"],
            "integer"
        );
        assert_eq!(
            out["additionalModelRequestFields"],
            json!({"thinking": {"type": "enabled", "budget_tokens": 2048}})
        );
        assert!(out.get("inferenceConfig").is_none());

        // An explicit `thinking` wins over `reasoning_effort`.
        let out = converse_body(
            obj(json!({"messages": [], "thinking": {"type": "enabled", "budget_tokens": 5000}, "reasoning_effort": "low"})),
            SONNET,
            &ParamPolicy::default(),
        )
        .unwrap();
        assert_eq!(
            out["additionalModelRequestFields"]["thinking"]["budget_tokens"],
            5000
        );

        let e = converse_body(
            obj(json!({"messages": [], "n": 2, "logit_bias": {"1": 1}})),
            SONNET,
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.message
                .contains("bedrock does not support parameters: ['n', 'logit_bias']"),
            "{}",
            e.message
        );
        // Thinking is Anthropic-only.
        let e = converse_body(
            obj(json!({"messages": [], "reasoning_effort": "high"})),
            "amazon.nova-pro-v1:0",
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert!(e.message.contains("['reasoning_effort']"), "{}", e.message);

        let out = converse_body(
            obj(json!({"messages": [{"role": "user", "content": "x"}], "n": 2, "logit_bias": {"1": 1}, "temperature": 0.1})),
            SONNET,
            &ParamPolicy {
                drop_params: true,
                ..ParamPolicy::default()
            },
        )
        .unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"messages": [{"role": "user", "content": [{"text": "x"}]}], "inferenceConfig": {"temperature": 0.1}})
        );
    }

    #[test]
    fn image_urls_must_be_data_urls() {
        let e = converse_body(
            obj(json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}}]}]})),
            SONNET,
            &ParamPolicy::default(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("only base64 data URLs"), "{}", e.message);
        let out = converse_body(
            obj(json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": "data:image/jpg;base64,/9j/"},
                {"type": "image_url", "image_url": {"url": "s3://bucket/cat.webp"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}}]}]})),
            SONNET,
            &ParamPolicy::default(),
        )
        .unwrap();
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"image": {"format": "jpeg", "source": {"bytes": "/9j/"}}},
                {"image": {"format": "webp", "source": {"s3Location": {"uri": "s3://bucket/cat.webp"}}}},
                {"document": {"format": "pdf", "name": "document-1", "source": {"bytes": "JVBERi0="}}}
            ])
        );
    }

    #[test]
    fn urls_encode_model_ids_and_honour_overrides() {
        assert_eq!(
            converse_url("us-east-1", None, SONNET, false),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse"
        );
        let arn = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0";
        assert_eq!(
            converse_url("us-west-2", None, arn, true),
            "https://bedrock-runtime.us-west-2.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse-stream"
        );
        assert_eq!(
            converse_url(
                "eu-west-1",
                Some("https://vpce-1.bedrock-runtime.eu-west-1.vpce.amazonaws.com/"),
                "converse/anthropic.claude-v2",
                false
            ),
            "https://vpce-1.bedrock-runtime.eu-west-1.vpce.amazonaws.com/model/anthropic.claude-v2/converse"
        );
        assert_eq!(
            invoke_url(
                "us-east-1",
                Some("localhost:8080"),
                "amazon.titan-embed-text-v2:0"
            ),
            "https://localhost:8080/model/amazon.titan-embed-text-v2%3A0/invoke"
        );
    }

    #[test]
    fn signed_headers_carry_sigv4_for_bedrock() {
        let creds = aws::Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "SECRET".into(),
            session_token: Some("TOKEN".into()),
        };
        let now = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
        let url = converse_url("us-east-1", None, SONNET, true);
        let h = signed_headers(&url, b"{}", &creds, "us-east-1", now);
        let get = |n: &str| {
            h.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(get("content-type"), "application/json");
        assert_eq!(get("accept"), EVENT_STREAM_CONTENT_TYPE);
        assert_eq!(get("x-amz-date"), "20250101T120000Z");
        assert_eq!(get("x-amz-security-token"), "TOKEN");
        let auth = get("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
        // Deterministic for the same inputs, different for another body.
        assert_eq!(h, signed_headers(&url, b"{}", &creds, "us-east-1", now));
        assert_ne!(h, signed_headers(&url, b"{ }", &creds, "us-east-1", now));

        let b = bearer_headers(&converse_url("us-east-1", None, SONNET, false), "abc");
        assert!(b.contains(&("authorization".into(), "Bearer abc".into())));
        assert!(b.contains(&("accept".into(), "application/json".into())));
    }

    #[test]
    fn settings_from_params_then_env() {
        let env = |n: &str| match n {
            "AWS_REGION" => Some("eu-central-1".to_string()),
            "AWS_ACCESS_KEY_ID" => Some("ENVKEY".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("ENVSECRET".to_string()),
            "MY_SECRET" => Some("RESOLVED".to_string()),
            _ => None,
        };
        let s = settings(&Map::new(), env).unwrap();
        assert_eq!(s.region, "eu-central-1");
        assert_eq!(s.credentials.as_ref().unwrap().access_key_id, "ENVKEY");
        assert!(s.bearer_token.is_none() && s.endpoint.is_none());

        let s = settings(
            &obj(
                json!({"aws_region_name": "ap-south-1", "aws_access_key_id": "K",
                "aws_secret_access_key": "os.environ/MY_SECRET", "aws_session_token": "T",
                "aws_bedrock_runtime_endpoint": "https://proxy.test"}),
            ),
            env,
        )
        .unwrap();
        assert_eq!(s.region, "ap-south-1");
        assert_eq!(
            s.credentials,
            Some(aws::Credentials {
                access_key_id: "K".into(),
                secret_access_key: "RESOLVED".into(),
                session_token: Some("T".into()),
            })
        );
        assert_eq!(s.endpoint.as_deref(), Some("https://proxy.test"));
        assert!(!format!("{s:?}").contains("RESOLVED"));

        let none = |_: &str| None;
        let s = settings(&Map::new(), |n: &str| {
            (n == "AWS_BEARER_TOKEN_BEDROCK").then(|| "bt".to_string())
        })
        .unwrap();
        assert_eq!(
            (s.region.as_str(), s.bearer_token.as_deref()),
            (DEFAULT_REGION, Some("bt"))
        );
        assert!(settings(&Map::new(), none).is_err());
        assert!(settings(&obj(json!({"aws_access_key_id": "K"})), none).is_err());
        assert!(settings(&obj(json!({"aws_role_name": "r", "aws_access_key_id": "K", "aws_secret_access_key": "S"})), none)
            .unwrap_err()
            .contains("AssumeRole"));
        assert!(settings(
            &obj(json!({"aws_region_name": "evil.com/x", "api_key": "k"})),
            none
        )
        .is_err());
    }

    #[test]
    fn response_maps_text_tools_reasoning_and_cached_usage() {
        // Shape from the Converse API reference.
        let body = br#"{
          "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "tooluse_9", "name": "lookup", "input": {"q": "cat"}}}
          ]}},
          "stopReason": "tool_use",
          "usage": {"inputTokens": 10, "outputTokens": 7, "totalTokens": 122,
                    "cacheReadInputTokens": 100, "cacheWriteInputTokens": 5},
          "metrics": {"latencyMs": 321}
        }"#;
        let r = parse_converse(body, SONNET).unwrap();
        assert!(r["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(r["model"], SONNET);
        assert_eq!(r["object"], "chat.completion");
        let ch = &r["choices"][0];
        assert_eq!(ch["finish_reason"], "tool_calls");
        assert_eq!(ch["message"]["content"], "Checking.");
        assert_eq!(ch["message"]["reasoning_content"], "hmm");
        assert_eq!(ch["message"]["thinking_blocks"][0]["signature"], "sig");
        assert_eq!(ch["message"]["tool_calls"][0]["id"], "tooluse_9");
        assert_eq!(
            ch["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"q\":\"cat\"}"
        );
        assert_eq!(r["usage"]["cache_read_input_tokens"], 100);
        assert_eq!(r["usage"]["cache_creation_input_tokens"], 5);
        let u = Usage::from_json(&r["usage"]).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (115, 7, 122)
        );
        assert_eq!((u.cached_tokens, u.cache_creation_tokens), (100, 5));

        let json_mode = br#"{"output":{"message":{"role":"assistant","content":[
            {"toolUse":{"toolUseId":"t","name":"json_tool_call","input":{"a":1}}}]}},
            "stopReason":"tool_use","usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3}}"#;
        let r = parse_converse(json_mode, SONNET).unwrap();
        assert_eq!(r["choices"][0]["message"]["content"], "{\"a\":1}");
        assert_eq!(r["choices"][0]["finish_reason"], "stop");
        assert!(r["choices"][0]["message"].get("tool_calls").is_none());

        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
        ] {
            assert_eq!(finish_reason(stop), finish);
        }
        assert_eq!(parse_converse(b"{}", SONNET).unwrap_err().status(), 500);
    }

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        aws::encode_message(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.to_string().as_bytes(),
        )
    }

    fn run(frames: &[Vec<u8>], slice: usize) -> Vec<StreamItem> {
        let bytes: Vec<u8> = frames.concat();
        let mut dec = aws::EventStreamDecoder::new();
        let mut st = StreamState::new(SONNET);
        let mut out = VecDeque::new();
        for piece in bytes.chunks(slice) {
            st.feed(&mut dec, piece, &mut out);
        }
        assert_eq!(dec.pending_len(), 0);
        out.into_iter().collect()
    }

    #[test]
    fn stream_messages_become_openai_chunks() {
        let frames = vec![
            event("messageStart", json!({"p": "abcd", "role": "assistant"})),
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}, "p": "ab"}),
            ),
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "lo"}, "p": "ab"}),
            ),
            event("contentBlockStop", json!({"contentBlockIndex": 0})),
            event(
                "contentBlockStart",
                json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "lookup"}}}),
            ),
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"q\":"}}}),
            ),
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"cat\"}"}}}),
            ),
            event("contentBlockStop", json!({"contentBlockIndex": 1})),
            event("messageStop", json!({"stopReason": "tool_use"})),
            event(
                "metadata",
                json!({"usage": {"inputTokens": 12, "outputTokens": 9, "totalTokens": 24, "cacheReadInputTokens": 3},
                       "metrics": {"latencyMs": 100}}),
            ),
        ];
        let items = run(&frames, 7);
        assert!(matches!(items.last(), Some(StreamItem::Done)));
        let chunks: Vec<&Map<String, Value>> = items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Chunk(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(chunks.len(), 8);
        let deltas: Vec<&Value> = chunks[..7]
            .iter()
            .map(|c| &c["choices"][0]["delta"])
            .collect();
        assert_eq!(*deltas[0], json!({"role": "assistant", "content": ""}));
        assert_eq!(*deltas[1], json!({"content": "Hel"}));
        assert_eq!(*deltas[2], json!({"content": "lo"}));
        assert_eq!(
            *deltas[3],
            json!({"tool_calls": [{"index": 0, "id": "tooluse_1", "type": "function",
                "function": {"name": "lookup", "arguments": ""}}]})
        );
        assert_eq!(
            *deltas[4],
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\":"}}]})
        );
        assert_eq!(
            *deltas[5],
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"cat\"}"}}]})
        );
        assert_eq!(*deltas[6], json!({}));
        assert_eq!(chunks[6]["choices"][0]["finish_reason"], "tool_calls");
        assert!(chunks[..6]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null()));
        assert_eq!(chunks[7]["choices"], json!([]));
        let u = Usage::from_json(&chunks[7]["usage"]).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (15, 9, 3)
        );
        let id = chunks[0]["id"].as_str().unwrap();
        assert!(id.starts_with("chatcmpl-"));
        assert!(chunks.iter().all(|c| c["id"] == id
            && c["created"] == chunks[0]["created"]
            && c["model"] == SONNET
            && c["object"] == "chat.completion.chunk"));
        // Same result whatever the read sizes.
        assert_eq!(run(&frames, 1).len(), items.len());
    }

    #[test]
    fn stream_reasoning_and_json_mode() {
        let frames = vec![
            event("messageStart", json!({"role": "assistant"})),
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "think"}}}),
            ),
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}),
            ),
            event(
                "contentBlockStart",
                json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t", "name": JSON_TOOL}}}),
            ),
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
            ),
            event("messageStop", json!({"stopReason": "tool_use"})),
        ];
        let items = run(&frames, 5);
        let deltas: Vec<Value> = items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Chunk(c) => Some(c["choices"][0].clone()),
                _ => None,
            })
            .collect();
        assert_eq!(deltas[1]["delta"]["reasoning_content"], "think");
        assert_eq!(deltas[2]["delta"]["thinking_blocks"][0]["signature"], "sig");
        assert_eq!(deltas[3]["delta"], json!({"content": "{\"a\":1}"}));
        assert_eq!(deltas[4]["finish_reason"], "stop");
        // No metadata yet: no Done.
        assert!(!items.iter().any(|i| matches!(i, StreamItem::Done)));
    }

    #[test]
    fn stream_exception_frames_become_errors() {
        let exc = aws::encode_message(
            &[
                (":exception-type", "throttlingException"),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            br#"{"message":"Too many requests, please wait before trying again."}"#,
        );
        let items = run(
            &[
                event("messageStart", json!({"role": "assistant"})),
                exc.clone(),
                event("metadata", json!({})),
            ],
            3,
        );
        assert_eq!(items.len(), 2, "{items:?}");
        match &items[1] {
            StreamItem::Error(e) => {
                assert_eq!(e.status(), 429);
                assert!(
                    e.message.contains("BedrockException - Too many requests"),
                    "{}",
                    e.message
                );
            }
            other => panic!("{other:?}"),
        }
        let val = aws::encode_message(
            &[
                (":exception-type", "validationException"),
                (":message-type", "exception"),
            ],
            br#"{"message":"Input is too long for requested model."}"#,
        );
        match &run(&[val], 64)[0] {
            StreamItem::Error(e) => assert_eq!(e.class, ErrorClass::ContextWindowExceeded),
            other => panic!("{other:?}"),
        }
        let mse = aws::encode_message(
            &[
                (":exception-type", "modelStreamErrorException"),
                (":message-type", "exception"),
            ],
            br#"{"message":"boom","originalStatusCode":500}"#,
        );
        match &run(&[mse], 64)[0] {
            StreamItem::Error(e) => assert_eq!(e.status(), 500),
            other => panic!("{other:?}"),
        }
        // A corrupt frame is an error too.
        let mut bad = event("messageStart", json!({}));
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        assert!(matches!(&run(&[bad], 4)[0], StreamItem::Error(e) if e.status() == 500));
    }

    #[test]
    fn error_bodies_map_by_status_and_type() {
        let e = map_error(
            400,
            br#"{"message":"The model returned the following errors: Input is too long for requested model."}"#,
        );
        assert_eq!(e.class, ErrorClass::ContextWindowExceeded);
        assert!(e.message.starts_with(
            "litellm.ContextWindowExceededError: ContextWindowExceededError: BedrockException - The model returned"
        ), "{}", e.message);
        let e = map_error(
            400,
            br#"{"message":"Malformed input request: #: extraneous key [n] is not permitted"}"#,
        );
        assert_eq!(e.class, ErrorClass::BadRequest);
        assert_eq!(
            map_error(
                429,
                br#"{"message":"Too many tokens, please wait before trying again."}"#
            )
            .status(),
            429
        );
        assert_eq!(
            map_error(
                403,
                br#"{"Message":"User: arn:aws:iam::1:user/x is not authorized"}"#
            )
            .status(),
            403
        );
        assert!(
            map_error(403, br#"{"Message":"User: x is not authorized"}"#)
                .message
                .ends_with("User: x is not authorized")
        );
        assert_eq!(
            map_error_typed(
                400,
                Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
                br#"{"message":"slow"}"#
            )
            .status(),
            429
        );
        assert_eq!(
            map_error(
                400,
                br#"{"__type":"com.amazon.coral.service#ModelTimeoutException","message":"t"}"#
            )
            .status(),
            408
        );
        assert_eq!(
            map_error_typed(
                403,
                Some("UnrecognizedClientException"),
                br#"{"message":"The security token included in the request is invalid."}"#
            )
            .class,
            ErrorClass::Authentication
        );
        assert_eq!(map_error(503, b"not json").status(), 503);
        assert_eq!(
            map_error(404, br#"{"message":"Model not found"}"#).status(),
            404
        );
    }

    #[test]
    fn titan_and_cohere_embeddings() {
        let titan = "amazon.titan-embed-text-v2:0";
        let bodies = embed_request(titan, &json!(["a", "bb"]), Some(256)).unwrap();
        assert_eq!(
            bodies.into_iter().map(Value::Object).collect::<Vec<_>>(),
            vec![
                json!({"inputText": "a", "dimensions": 256}),
                json!({"inputText": "bb", "dimensions": 256})
            ]
        );
        assert_eq!(
            embed_request("amazon.titan-embed-text-v1", &json!("a"), None).unwrap(),
            vec![obj(json!({"inputText": "a"}))]
        );
        assert_eq!(
            embed_request("amazon.titan-embed-text-v1", &json!("a"), Some(8))
                .unwrap_err()
                .status(),
            400
        );
        let responses = vec![
            Bytes::from_static(br#"{"embedding":[0.1,0.2],"inputTextTokenCount":2}"#),
            Bytes::from_static(br#"{"embedding":[0.3,0.4],"inputTextTokenCount":3}"#),
        ];
        let r = parse_embed(titan, &responses).unwrap();
        assert_eq!(
            Value::Object(r),
            json!({"object": "list", "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
                {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]}
            ], "model": titan, "usage": {"prompt_tokens": 5, "total_tokens": 5}})
        );

        let cohere = "cohere.embed-english-v3";
        assert_eq!(
            embed_request(cohere, &json!(["hello", "world!!"]), None).unwrap(),
            vec![obj(
                json!({"texts": ["hello", "world!!"], "input_type": "search_document"})
            )]
        );
        assert!(embed_request(cohere, &json!("x"), Some(256)).is_err());
        assert_eq!(
            embed_request("cohere.embed-v4:0", &json!("x"), Some(256)).unwrap()[0]
                ["output_dimension"],
            256
        );
        let r = parse_embed(
            cohere,
            &[Bytes::from_static(
                br#"{"embeddings":[[0.5],[0.6]],"id":"e1","response_type":"embeddings_floats","texts":["hello","world!!"]}"#,
            )],
        )
        .unwrap();
        assert_eq!(r["data"][1]["index"], 1);
        assert_eq!(r["data"][1]["embedding"], json!([0.6]));
        assert_eq!(r["usage"]["prompt_tokens"], 3);
        let r = parse_embed(
            "cohere.embed-v4:0",
            &[Bytes::from_static(
                br#"{"embeddings":{"float":[[0.7]]},"texts":["x"]}"#,
            )],
        )
        .unwrap();
        assert_eq!(r["data"][0]["embedding"], json!([0.7]));

        assert!(embed_request("meta.llama3-8b-instruct-v1:0", &json!("x"), None).is_err());
        assert!(embed_request(titan, &json!([1, 2]), None).is_err());
        assert!(embed_request(titan, &json!([]), None).is_err());
    }
}
