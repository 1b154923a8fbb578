//! The pipeline shared by `/chat/completions`, `/completions`, `/embeddings` and the other
//! OpenAI-style LLM routes (`/rerank`, `/responses`, `/v1/messages`, and the image, moderation,
//! speech, transcription and image-edit routes, whose own parts are in [`super::media`]; the
//! last two take multipart forms, read there, and send their files on with each attempt).
//!
//! read body -> validate -> split LiteLLM fields -> resolve model group -> check access (the
//! key's, then the end user's allow-list and block) -> rate limits -> pick deployment ->
//! reserve budgets -> mock or call upstream -> decorate with LiteLLM's `x-litellm-*` headers.
//! Streams are confirmed (status and first event) before the 200 goes out.

use super::{parse_object, read_body};
use crate::api::messages::{self, EventEncoder};
use crate::api::Field;
use crate::api::{response_id, validate, LitellmExtras};
use crate::callbacks::capture::{CallCapture, Output};
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::middleware::auth::{self, AuthCtx};
use crate::middleware::end_user::{self, EndUser};
use crate::middleware::request_ctx::{self, RequestCtx};
use crate::middleware::tags::{self, TagGate};
use crate::providers::openai::{Endpoint, Overrides, UpstreamRequest};
use crate::providers::params::ParamPolicy;
use crate::providers::stream::{self, ChatStream, Encoder, StreamTap};
use crate::providers::{self, client, mock, sse, Provider};
use crate::ratelimit::{self, Acquired, Descriptor, Permit};
use crate::routing::deployment::AnswerTemplates;
use crate::routing::{Deployment, ModelRouter};
use crate::spend::call::{CallAccount, CallFacts};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Chat,
    Completion,
    Embedding,
    /// Anthropic's Messages format in and out (`/v1/messages`).
    Messages,
    /// Cohere-style rerank (`/rerank`).
    Rerank,
    /// OpenAI's Responses API (`/responses`), to OpenAI-format deployments.
    Responses,
    /// `/responses/compact`: a compaction pass over a conversation, answered with a response
    /// object (never streamed).
    ResponsesCompact,
    /// `/images/generations`.
    ImageGeneration,
    /// `/moderations` (`model` optional).
    Moderation,
    /// `/audio/speech`: JSON in, audio out.
    Speech,
    /// `/audio/transcriptions`: a multipart form (the audio file) in, JSON out.
    Transcription,
    /// `/images/edits`: a multipart form (images, a mask) in, images out.
    ImageEdit,
}

impl CallKind {
    /// The route as LiteLLM's error messages name it (`/image/generations` is its spelling).
    pub(super) fn route(self) -> &'static str {
        match self {
            Self::Chat => "/chat/completions",
            Self::Completion => "/completions",
            Self::Embedding => "/embeddings",
            Self::Messages => "/v1/messages",
            Self::Rerank => "/rerank",
            Self::Responses => "/responses",
            Self::ResponsesCompact => "/responses/compact",
            Self::ImageGeneration => "/image/generations",
            Self::Moderation => "/moderations",
            Self::Speech => "/audio/speech",
            Self::Transcription => "/audio/transcriptions",
            Self::ImageEdit => "/images/edits",
        }
    }
    /// LiteLLM's `call_type` in spend logs.
    fn call_type(self) -> &'static str {
        match self {
            Self::Chat => "acompletion",
            Self::Completion => "atext_completion",
            Self::Embedding => "aembedding",
            Self::Messages => "anthropic_messages",
            Self::Rerank => "arerank",
            Self::Responses => "aresponses",
            Self::ResponsesCompact => "acompact_responses",
            Self::ImageGeneration => "aimage_generation",
            Self::Moderation => "amoderation",
            Self::Speech => "aspeech",
            Self::Transcription => "atranscription",
            Self::ImageEdit => "aimage_edit",
        }
    }
    fn endpoint(self) -> Endpoint {
        match self {
            Self::Chat | Self::Messages => Endpoint::ChatCompletions,
            Self::Completion => Endpoint::Completions,
            Self::Embedding => Endpoint::Embeddings,
            Self::Rerank => Endpoint::Rerank,
            Self::Responses | Self::ResponsesCompact => Endpoint::Responses,
            Self::ImageGeneration => Endpoint::ImageGenerations,
            Self::Moderation => Endpoint::Moderations,
            Self::Speech => Endpoint::AudioSpeech,
            Self::Transcription => Endpoint::AudioTranscriptions,
            Self::ImageEdit => Endpoint::ImageEdits,
        }
    }
    /// The Responses API's calls, answered with a response object whose id is issued here.
    fn is_responses(self) -> bool {
        matches!(self, Self::Responses | Self::ResponsesCompact)
    }
    /// The calls whose own parts are in [`super::media`].
    fn is_media(self) -> bool {
        matches!(
            self,
            Self::ImageGeneration
                | Self::Moderation
                | Self::Speech
                | Self::Transcription
                | Self::ImageEdit
        )
    }
    /// The calls whose request is a multipart form (see [`super::media::parse_form`]).
    pub(super) fn is_form(self) -> bool {
        matches!(self, Self::Transcription | Self::ImageEdit)
    }
}

pub async fn chat_completions_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::Chat, None).await
}

pub async fn chat_completions_for_model_handler(
    State(state): State<AppState>,
    Path(model): Path<String>,
    req: Request,
) -> Response {
    routed(&state, req, CallKind::Chat, Some(model)).await
}

pub async fn completions_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::Completion, None).await
}

pub async fn completions_for_model_handler(
    State(state): State<AppState>,
    Path(model): Path<String>,
    req: Request,
) -> Response {
    routed(&state, req, CallKind::Completion, Some(model)).await
}

pub async fn messages_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::Messages, None).await
}

pub async fn rerank_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::Rerank, None).await
}

pub async fn responses_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::Responses, None).await
}

pub async fn compact_responses_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::ResponsesCompact, None).await
}

pub async fn embeddings_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::Embedding, None).await
}

pub async fn embeddings_for_model_handler(
    State(state): State<AppState>,
    Path(model): Path<String>,
    req: Request,
) -> Response {
    routed(&state, req, CallKind::Embedding, Some(model)).await
}

pub async fn image_generations_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::ImageGeneration, None).await
}

pub async fn image_generations_for_model_handler(
    State(state): State<AppState>,
    Path(model): Path<String>,
    req: Request,
) -> Response {
    routed(&state, req, CallKind::ImageGeneration, Some(model)).await
}

pub async fn moderations_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::Moderation, None).await
}

pub async fn speech_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::Speech, None).await
}

pub async fn transcriptions_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::Transcription, None).await
}

pub async fn image_edits_handler(State(state): State<AppState>, req: Request) -> Response {
    routed(&state, req, CallKind::ImageEdit, None).await
}

pub async fn image_edits_for_model_handler(
    State(state): State<AppState>,
    Path(model): Path<String>,
    req: Request,
) -> Response {
    routed(&state, req, CallKind::ImageEdit, Some(model)).await
}

/// A call that came through the router, where `track_request` and `require_auth` left its
/// context and caller in the extensions.
async fn routed(
    state: &AppState,
    mut req: Request,
    kind: CallKind,
    path_model: Option<String>,
) -> Response {
    let ext = req.extensions_mut();
    match (ext.remove::<RequestCtx>(), ext.remove::<AuthCtx>()) {
        (Some(ctx), Some(auth)) => handle(state, &ctx, &auth, req, kind, path_model).await,
        _ => ApiError::internal("request context missing").into_response(),
    }
}

/// A call served ahead of the router (see `server::routes`): the same context, checks, access
/// log and handler, without the router's layers.
///
/// The steps run one after another in one `async` block rather than as nested closures: each
/// closure level kept its own copy of the request in the call's state, and the state is
/// copied as it is built and boxed.
pub async fn serve_direct(state: AppState, kind: CallKind, req: Request) -> Response {
    let t = request_ctx::Tracking::begin(&req);
    let caller = auth::caller_of(&state, &req).await;
    let resp = match caller {
        Ok(auth) => handle(&state, &t.ctx, &auth, req, kind, None).await,
        Err(refused) => refused,
    };
    t.finish(resp)
}

/// Runs the call and answers its error as LiteLLM does. A plain function returning an
/// `async` block: an `async fn` would keep the request beside its parts.
fn handle<'a>(
    state: &'a AppState,
    ctx: &'a RequestCtx,
    auth: &'a AuthCtx,
    req: Request,
    kind: CallKind,
    path_model: Option<String>,
) -> impl std::future::Future<Output = Response> + Send + 'a {
    let (parts, body) = req.into_parts();
    async move {
        let headers = &parts.headers;
        let call = super::boxed(|| run(state, ctx, auth, headers, kind, path_model, body));
        let r = match call.await {
            Ok(r) => r,
            Err(e) => {
                let mut r = e.into_response();
                r.headers_mut()
                    .insert(H_RESPONSE_COST.clone(), HeaderValue::from_static("0"));
                r
            }
        };
        if let Some(m) = &state.metrics {
            m.proxy_request(Some(auth), parts.uri.path(), headers, ctx.seen.get(), &r);
        }
        r
    }
}

/// A parsed, validated LLM request.
#[derive(Clone)]
struct LlmRequest {
    kind: CallKind,
    /// The model name as requested (response `model` field).
    model: String,
    body: Map<String, Value>,
    extras: LitellmExtras,
    stream: bool,
    include_usage: bool,
    /// Size of the request body, for token estimates before the call.
    prompt_bytes: usize,
    /// `/v1/messages`: the Anthropic body as sent (LiteLLM fields removed), forwarded natively
    /// to Anthropic deployments; `body` holds its OpenAI translation for everyone else.
    native: Option<Map<String, Value>>,
    /// Client headers forwarded upstream (`anthropic-beta` on `/v1/messages`).
    forward_headers: Vec<(String, String)>,
    /// The end user the request names (`user`, or LiteLLM's customer-id headers).
    end_user_id: Option<String>,
    /// That end user, once resolved for the call.
    end_user: Option<Arc<EndUser>>,
    /// The call's tags that carry a budget or limits (`LiteLLM_TagTable`), once resolved.
    tag_gates: Vec<Arc<TagGate>>,
    /// LiteLLM's cache-key hash of the request, when response caching covers it.
    cache_hash: Option<String>,
    /// Embeddings: the hash of each input item (LiteLLM caches them one by one).
    cache_items: Vec<String>,
    /// The response-cache key the call uses (namespace included), for its spend-log row.
    cache_key: Option<String>,
    /// Where a stream's usage is left for the cache's assembler, when the stream is stored.
    stream_usage: Option<crate::cache::replay::UsageSlot>,
    /// A long chat request's body as received, and where its `messages` value sits in it:
    /// OpenAI-format upstreams get those bytes as they came instead of the parsed messages
    /// written out again (the bulk of a long conversation). `messages` is never changed
    /// after parsing, and this is only set for [`CallKind::Chat`].
    raw_messages: Option<(bytes::Bytes, std::ops::Range<usize>)>,
    /// `/responses`: the deployment holding the response a managed `previous_response_id`
    /// names, served when it is in the group and available and the group pins such calls
    /// (`responses_api_deployment_check`).
    pinned: Option<String>,
    /// A multipart call's files (`/audio/transcriptions`, `/images/edits`), sent again by
    /// each attempt.
    files: Option<Arc<super::media::FormFiles>>,
    /// What the logging callbacks get of the request; `None` when none is configured.
    capture: Option<Arc<CallCapture>>,
    /// `/responses`: the caller the answer's ids are bound to (LiteLLM's
    /// `ResponsesIDSecurity`), when that is on.
    id_binding: Option<Arc<crate::api::response_owner::Binding>>,
}

/// Bodies from this size on keep their `messages` bytes for the upstream (see
/// `LlmRequest::raw_messages`); below it, finding them costs about what writing them does.
const RAW_MESSAGES_FROM: usize = 1024;

async fn parse_request(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    kind: CallKind,
    path_model: Option<String>,
    body: Body,
) -> ApiResult<LlmRequest> {
    if kind.is_form() {
        return parse_form_request(state, auth, headers, kind, path_model, body).await;
    }
    let bytes = read_body(headers, body, state.max_request_bytes).await?;
    let mut body = parse_object(&bytes)?;
    let from_path = path_model.is_some();
    if let Some(m) = path_model {
        body.insert("model".into(), Value::String(m));
    }
    crate::middleware::enforced_params::check(
        &state.loaded.config.general_settings,
        auth.key.as_deref(),
        &body,
    )?;
    let model = if kind.is_media() {
        super::media::model_and_checks(state, kind, &mut body, from_path)?
    } else {
        validate::model_field(&body, kind.route())?
    };
    if kind == CallKind::Messages {
        return parse_messages_request(headers, model, body, bytes.len());
    }
    match kind {
        CallKind::Messages
        | CallKind::ImageGeneration
        | CallKind::Moderation
        | CallKind::Speech
        | CallKind::Transcription
        | CallKind::ImageEdit => {}
        // Their `previous_response_id` is read once the caller's access and limits are
        // checked (see `run_parsed`).
        CallKind::Responses => {}
        CallKind::ResponsesCompact => {
            if !body.contains_key("input") {
                return Err(
                    ApiError::bad_request("Missing required parameter: 'input'.")
                        .with_param("input"),
                );
            }
        }
        CallKind::Rerank => {
            if !body.field("query").is_some_and(Value::is_string) {
                return Err(ApiError::bad_request(
                    "Missing required parameter: 'query' (a string).",
                )
                .with_param("query"));
            }
            if !body.field("documents").is_some_and(Value::is_array) {
                return Err(ApiError::bad_request(
                    "Missing required parameter: 'documents' (a list).",
                )
                .with_param("documents"));
            }
        }
        CallKind::Chat => validate::chat(&body)?,
        CallKind::Embedding => validate::embeddings(&body)?,
        CallKind::Completion => {
            if !body.contains_key("prompt") {
                return Err(
                    ApiError::bad_request("Missing required parameter: 'prompt'.")
                        .with_param("prompt"),
                );
            }
        }
    }
    // The cache key reads the body in the client's order, before LiteLLM's fields come out.
    let (cache_hash, cache_items) = cache_hashes(state, kind, &model, &body);
    let mut extras = LitellmExtras::split_from(&mut body)?;
    add_header_tags(headers, &mut extras.tags);
    if let Some(t) = header_f64(headers, &TIMEOUT_H) {
        extras.timeout.get_or_insert(t);
    }
    if let Some(t) = header_f64(headers, &STREAM_TIMEOUT_H) {
        extras.stream_timeout.get_or_insert(t);
    }
    let stream = matches!(
        kind,
        CallKind::Chat | CallKind::Completion | CallKind::Responses
    ) && body
        .field("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let include_usage = body
        .field("stream_options")
        .and_then(|o| o.field("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let raw_messages = (kind == CallKind::Chat && bytes.len() >= RAW_MESSAGES_FROM)
        .then(|| crate::api::rewrite::member_value(&bytes, "messages"))
        .flatten()
        .map(|at| (bytes.clone(), at));
    Ok(LlmRequest {
        kind,
        model,
        body,
        extras,
        stream,
        include_usage,
        prompt_bytes: bytes.len(),
        native: None,
        forward_headers: Vec::new(),
        end_user_id: None,
        end_user: None,
        tag_gates: Vec::new(),
        cache_hash,
        cache_items,
        cache_key: None,
        stream_usage: None,
        raw_messages,
        pinned: None,
        files: None,
        capture: None,
        id_binding: None,
    })
}

/// A Responses API request's `previous_response_id`, when it is one the caller may use, as the
/// rest of the pipeline reads it (an encrypted id opened); and how the answer's ids are bound
/// to the caller. An empty or non-string `previous_response_id` is left to the upstream.
fn previous_response_of_caller(
    state: &AppState,
    auth: &AuthCtx,
    body: &mut Map<String, Value>,
) -> ApiResult<Option<Arc<crate::api::response_owner::Binding>>> {
    let ids = &state.response_ids;
    let caller = ids.caller(auth);
    if let Some(Value::String(prev)) = body.get_mut("previous_response_id") {
        if !prev.is_empty() {
            if let std::borrow::Cow::Owned(opened) = ids.authorize(prev, &caller)? {
                *prev = opened;
            }
        }
    }
    Ok(ids.binding(&caller))
}

/// A key limited to some request `cache` controls (`allowed_cache_controls`) may not use
/// the others (LiteLLM's 403, whether or not caching is on).
fn check_cache_controls(auth: &AuthCtx, extras: &LitellmExtras) -> ApiResult<()> {
    let Some(Value::Object(controls)) = extras.other.field("cache") else {
        return Ok(());
    };
    let Some(allowed) = auth
        .key
        .as_ref()
        .map(|k| &k.allowed_cache_controls)
        .filter(|a| !a.is_empty())
    else {
        return Ok(());
    };
    match controls.keys().find(|c| !allowed.contains(c)) {
        Some(c) => {
            let mut e = ApiError::new(
                ErrorClass::PermissionDenied,
                format!("Not allowed to set {c} as a cache control. Contact admin to change permissions."),
            );
            e.type_override = Some("permission_error");
            Err(e)
        }
        None => Ok(()),
    }
}

/// LiteLLM's cache-key hashes of a request, when the response cache covers its call type: one
/// for a chat call or a plain legacy completion; one per input item for embeddings (LiteLLM
/// caches them one by one).
fn cache_hashes(
    state: &AppState,
    kind: CallKind,
    model: &str,
    body: &Map<String, Value>,
) -> (Option<String>, Vec<String>) {
    use crate::cache::key::{self, KeyShape};
    let Some(cache) = state.cache.as_ref().filter(|c| c.covers(kind.call_type())) else {
        return (None, Vec::new());
    };
    let label = cache.model_label(model);
    let hash = |shape, item| key::hash(&key::key_text(&label, body, shape, item));
    let stream = body
        .field("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match kind {
        CallKind::Chat => (Some(hash(KeyShape::Chat { stream }, None)), Vec::new()),
        CallKind::Completion if !stream => (Some(hash(KeyShape::Text, None)), Vec::new()),
        CallKind::Embedding => (
            None,
            crate::cache::embed::items(body.field("input"))
                .unwrap_or_default()
                .iter()
                .map(|item| hash(KeyShape::Embedding, Some(item)))
                .collect(),
        ),
        _ => (None, Vec::new()),
    }
}

/// `/v1/messages`: Anthropic's own `metadata` (`user_id`) stays in the body; LiteLLM's
/// fields are split off the rest.
fn parse_messages_request(
    headers: &HeaderMap,
    model: String,
    mut native: Map<String, Value>,
    prompt_bytes: usize,
) -> ApiResult<LlmRequest> {
    crate::api::messages::validate(&native)?;
    let metadata = native.remove("metadata");
    let mut extras = LitellmExtras::split_from(&mut native)?;
    if let Some(m) = metadata {
        if let Some(tags) = m.field("tags").and_then(Value::as_array) {
            extras
                .tags
                .extend(tags.iter().filter_map(|t| t.as_str().map(String::from)));
        }
        native.insert("metadata".into(), m);
    }
    add_header_tags(headers, &mut extras.tags);
    if let Some(t) = header_f64(headers, &TIMEOUT_H) {
        extras.timeout.get_or_insert(t);
    }
    let stream = native
        .field("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let forward_headers = headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| ("anthropic-beta".to_string(), v.to_string()))
        .collect();
    Ok(LlmRequest {
        kind: CallKind::Messages,
        model,
        body: crate::api::messages::to_openai(&native),
        extras,
        stream,
        include_usage: false,
        prompt_bytes,
        native: Some(native),
        forward_headers,
        end_user_id: None,
        end_user: None,
        tag_gates: Vec::new(),
        cache_hash: None,
        cache_items: Vec::new(),
        cache_key: None,
        stream_usage: None,
        raw_messages: None,
        pinned: None,
        files: None,
        capture: None,
        id_binding: None,
    })
}

/// `/audio/transcriptions` and `/images/edits`: a multipart form (see
/// [`super::media::parse_form`]) whose text fields are read as any body's, its files kept for
/// the upstream. Never cached, never streamed.
async fn parse_form_request(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    kind: CallKind,
    path_model: Option<String>,
    body: Body,
) -> ApiResult<LlmRequest> {
    let (mut body, files, text_bytes) =
        super::media::parse_form(state, headers, kind, body).await?;
    let from_path = path_model.is_some();
    if let Some(m) = path_model {
        body.insert("model".into(), Value::String(m));
    }
    crate::middleware::enforced_params::check(
        &state.loaded.config.general_settings,
        auth.key.as_deref(),
        &body,
    )?;
    let model = super::media::model_and_checks(state, kind, &mut body, from_path)?;
    let mut extras = LitellmExtras::split_from(&mut body)?;
    add_header_tags(headers, &mut extras.tags);
    if let Some(t) = header_f64(headers, &TIMEOUT_H) {
        extras.timeout.get_or_insert(t);
    }
    Ok(LlmRequest {
        kind,
        model,
        body,
        extras,
        stream: false,
        include_usage: false,
        prompt_bytes: text_bytes,
        native: None,
        forward_headers: Vec::new(),
        end_user_id: None,
        end_user: None,
        cache_hash: None,
        cache_items: Vec::new(),
        cache_key: None,
        stream_usage: None,
        raw_messages: None,
        pinned: None,
        tag_gates: Vec::new(),
        files: Some(Arc::new(files)),
        capture: None,
        id_binding: None,
    })
}

static TIMEOUT_H: HeaderName = HeaderName::from_static("x-litellm-timeout");
static STREAM_TIMEOUT_H: HeaderName = HeaderName::from_static("x-litellm-stream-timeout");
static NUM_RETRIES_H: HeaderName = HeaderName::from_static("x-litellm-num-retries");
static TAGS_H: HeaderName = HeaderName::from_static("x-litellm-tags");

/// `x-litellm-tags: a, b`: more request tags (for spend logs and tag routing), as LiteLLM
/// reads them (comma-separated, trimmed, empty ones skipped, no repeats).
fn add_header_tags(headers: &HeaderMap, tags: &mut Vec<String>) {
    let Some(v) = super::request_header(headers, &TAGS_H).and_then(|v| v.to_str().ok()) else {
        return;
    };
    crate::spend::call::append_new_tags(
        tags,
        v.split(',').map(str::trim).filter(|t| !t.is_empty()),
    );
}

/// A numeric request header (named by a static: a `&str` name is parsed on every lookup).
fn header_f64(headers: &HeaderMap, name: &HeaderName) -> Option<f64> {
    super::request_header(headers, name)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn invalid_model(router: &ModelRouter, auth: &AuthCtx, route: &str, model: &str) -> ApiError {
    if let Some(reason) = router.unavailable_reason(model) {
        return ApiError::bad_request(format!("{route}: {reason}")).with_param("model");
    }
    let available: Vec<String> = router
        .model_names()
        .into_iter()
        .filter(|m| auth.allowed_models.is_empty() || auth.allowed_models.contains(m))
        .collect();
    ApiError::bad_request(format!(
        "{route}: Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key. Available models: {}",
        available.join(", ")
    ))
    .with_param("model")
}

async fn run(
    state: &AppState,
    ctx: &RequestCtx,
    auth: &AuthCtx,
    headers: &HeaderMap,
    kind: CallKind,
    path_model: Option<String>,
    body: Body,
) -> ApiResult<Response> {
    let mut req = parse_request(state, auth, headers, kind, path_model, body).await?;
    check_cache_controls(auth, &req.extras)?;
    req.end_user_id = end_user::end_user_id(
        headers,
        &state.end_user_headers,
        &req.body,
        req.extras.metadata.as_ref(),
    );
    if let Some(cb) = &state.callbacks {
        req.capture = Some(cb.capture(
            auth,
            headers,
            kind.route(),
            &req.model,
            req.stream,
            &req.body,
            req.native.as_ref(),
            req.extras.metadata.as_ref(),
            req.extras.other.get("turn_off_message_logging"),
        ));
    }
    if state.metrics.is_some() {
        let _ = ctx.seen.set(crate::metrics::Seen {
            requested_model: req.model.clone(),
            end_user: req.end_user_id.clone(),
        });
    }
    let own_router = match req.extras.other.field("user_config") {
        Some(cfg) => Some(user_config_router(state, auth, cfg)?),
        None => None,
    };
    let shared = state.router.load_full();
    let router = own_router.as_ref().unwrap_or(&*shared);
    // A moderation whose model names no group goes to OpenAI itself, as in LiteLLM.
    let direct;
    let router = if kind == CallKind::Moderation
        && super::media::needs_default_moderation(router, auth, &req.model)
    {
        direct = super::media::default_moderation_router(state, &req.model)?;
        &direct
    } else {
        router
    };
    if kind == CallKind::Chat
        && !req.stream
        && req.model.contains(',')
        && router.resolve(&req.model).is_none()
    {
        let calls = super::boxed(|| run_many(state, ctx, auth, headers, router, req));
        return calls.await;
    }
    run_parsed(state, ctx, auth, headers, router, &mut req).await
}

/// A comma-separated `model`: every group is called concurrently and the answers come back
/// as one JSON array, in the order asked.
async fn run_many(
    state: &AppState,
    ctx: &RequestCtx,
    auth: &AuthCtx,
    headers: &HeaderMap,
    router: &ModelRouter,
    req: LlmRequest,
) -> ApiResult<Response> {
    let calls = req
        .model
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| {
            let mut one = req.clone();
            one.model = m.to_string();
            one.body
                .insert("model".into(), Value::String(m.to_string()));
            async move {
                let r = run_parsed(state, ctx, auth, headers, router, &mut one).await?;
                let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
                    .await
                    .map_err(|e| ApiError::internal(format!("failed to read a response: {e}")))?;
                serde_json::from_slice::<Value>(&bytes)
                    .map_err(|e| ApiError::internal(format!("failed to read a response: {e}")))
            }
        });
    let answers = futures::future::try_join_all(calls).await?;
    Ok(json_bytes_response(serde_json::to_vec(&answers).map_err(
        |e| ApiError::internal(format!("failed to encode response: {e}")),
    )?))
}

/// `user_config`: a router built from the request's own `model_list`, for this request only.
/// It can point the gateway anywhere, so it takes an admin key or
/// `general_settings.allow_client_side_credentials`, and it cannot read the gateway's
/// environment (`os.environ/` references are refused).
fn user_config_router(state: &AppState, auth: &AuthCtx, cfg: &Value) -> ApiResult<ModelRouter> {
    let allowed = auth.is_admin
        || state
            .loaded
            .config
            .general_settings
            .extra
            .field("allow_client_side_credentials")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    if !allowed {
        return Err(ApiError::bad_request(
            "Rejected Request: user_config needs an admin key or `general_settings::allow_client_side_credentials` on proxy config.yaml.",
        )
        .with_param("user_config"));
    }
    let text = cfg.to_string();
    if !cfg.is_object() || text.contains("os.environ/") {
        return Err(ApiError::bad_request(
            "Invalid 'user_config': expected a router config object without os.environ/ references.",
        )
        .with_param("user_config"));
    }
    let loaded = crate::config::load_str(&text, "user_config").map_err(|e| {
        ApiError::bad_request(format!("Invalid 'user_config': {e}")).with_param("user_config")
    })?;
    ModelRouter::from_config(&loaded).map_err(|e| {
        ApiError::bad_request(format!("Invalid 'user_config': {}", e.join("; ")))
            .with_param("user_config")
    })
}

/// One model group's call with its limits, retries and fallbacks.
async fn run_parsed(
    state: &AppState,
    ctx: &RequestCtx,
    auth: &AuthCtx,
    headers: &HeaderMap,
    router: &ModelRouter,
    req: &mut LlmRequest,
) -> ApiResult<Response> {
    let kind = req.kind;
    let resolved = resolve_for(router, auth, kind.route(), &req.model)?;
    let group = resolved.group.clone();
    if let Some(id) = &req.end_user_id {
        let resolving = super::boxed(|| end_user::resolve(state, id));
        let eu = resolving.await?;
        eu.check_model(&req.model, &group)?;
        eu.check_blocked()?;
        req.end_user = Some(eu);
    }
    // Only a call that carries tags (its own, or its key's and team's) looks them up.
    if !req.extras.tags.is_empty() || auth.tags.is_some() {
        let resolving =
            super::boxed(|| tags::resolve(state, &req.extras.tags, auth.tags.as_deref()));
        req.tag_gates = resolving.await;
    }
    let (permit, limit_headers) = check_rate_limits(state, auth, req, &group.name).await?;
    if kind.is_responses() {
        // As LiteLLM's pre-call hooks do, after the caller's access and rate limits: an id the
        // caller may not use is refused, an encrypted one opened, and a managed one names the
        // deployment holding the response.
        req.id_binding = previous_response_of_caller(state, auth, &mut req.body)?;
        req.pinned = response_id::unwrap_previous(&mut req.body);
    }
    let slot: CallSlot = Arc::new(std::sync::Mutex::new(Some((permit, None))));
    let hash = req.cache_hash.as_ref().or(req.cache_items.first());
    let plan = match (&state.cache, hash) {
        (Some(c), Some(h)) => c.plan(
            h,
            &req.extras,
            req.body
                .field("messages")
                .and_then(Value::as_array)
                .map(Vec::len),
        ),
        _ => None,
    };
    // Embeddings: the stored items, in input order (None where missing).
    let mut found: Vec<Option<bytes::Bytes>> = Vec::new();
    if let (Some(cache), Some(p)) = (&state.cache, &plan) {
        req.cache_key = Some(p.key.clone());
        let capture = resolved.capture.as_deref();
        if p.read && req.cache_hash.is_some() {
            if let Some(answer) = cache
                .get(p)
                .await
                .and_then(|hit| chat_from_cache(req, &hit))
            {
                let served = super::boxed(|| {
                    serve_cached(
                        state, ctx, auth, req, &group, capture, p, &slot, answer, true,
                    )
                });
                if let Some(r) = served.await? {
                    return Ok(with_headers(r, limit_headers));
                }
            }
        }
        if p.read && !req.cache_items.is_empty() {
            for h in &req.cache_items {
                found.push(cache.get_at(&p.key_for(h), p).await.map(|c| c.response));
            }
            if found.iter().all(Option::is_some) {
                if let Some((body, usage)) = crate::cache::embed::merge(&found, None, &req.model) {
                    let answer = (json_bytes_response(body.to_vec()), usage);
                    let served = super::boxed(|| {
                        serve_cached(
                            state, ctx, auth, req, &group, capture, p, &slot, answer, false,
                        )
                    });
                    if let Some(r) = served.await? {
                        return Ok(with_headers(r, limit_headers));
                    }
                }
            } else if found.iter().any(Option::is_some) {
                // Only the missing items go upstream.
                let items = crate::cache::embed::items(req.body.field("input")).unwrap_or_default();
                let missing: Vec<Value> = items
                    .into_iter()
                    .zip(&found)
                    .filter(|(_, f)| f.is_none())
                    .map(|(i, _)| i)
                    .collect();
                req.body.insert("input".into(), Value::Array(missing));
            }
        }
        if p.write && req.stream {
            req.stream_usage = Some(Arc::default());
        }
    }
    let retries = num_retries(state, headers, req);
    let mut retried = 0u64;
    let first = try_group(
        state,
        ctx,
        auth,
        req,
        &group,
        resolved.capture.as_deref(),
        &req.model,
        retries,
        &mut retried,
        &slot,
    )
    .await;
    let (mut resp, fallbacks_used) = match first {
        Ok(r) => (r, 0usize),
        Err(e) => {
            let mut last = e;
            let mut served = None;
            for (i, name) in fallback_groups(state, req, &group.name, last.class)
                .iter()
                .enumerate()
            {
                let Some(fb) = router.resolve(name) else {
                    continue;
                };
                // A fallback outside the end user's allow-list is never served.
                if req
                    .end_user
                    .as_ref()
                    .is_some_and(|eu| !eu.may_use(name, fb.group))
                {
                    continue;
                }
                let fb_group = fb.group.clone();
                let fallback = super::boxed(|| {
                    try_group(
                        state,
                        ctx,
                        auth,
                        req,
                        &fb_group,
                        fb.capture.as_deref(),
                        name,
                        retries,
                        &mut retried,
                        &slot,
                    )
                });
                match fallback.await {
                    Ok(r) => {
                        served = Some((r, i + 1));
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            match served {
                Some(x) => x,
                None => return Err(last),
            }
        }
    };
    if !req.cache_items.is_empty() {
        if let Some(p) = plan {
            resp = embeddings_through_cache(state, p, req, &found, resp).await;
        }
    } else if let Some(p) = plan.filter(|p| p.write) {
        resp = store_in_cache(state, p, req, resp).await;
    }
    let mut resp = with_headers(resp, limit_headers);
    let h = resp.headers_mut();
    let retries = match retried {
        // The usual answer: a static value, not a formatted (allocated) one.
        0 => HeaderValue::from_static("0"),
        n => HeaderValue::from(n),
    };
    h.insert(H_RETRIES.clone(), retries);
    if fallbacks_used > 0 {
        h.insert(
            "x-litellm-attempted-fallbacks",
            HeaderValue::from(fallbacks_used),
        );
    }
    Ok(resp)
}

/// The model group a caller may use for `model`: the key's `aliases` apply first, then the
/// router; a group outside the key's `models` is refused.
pub(super) fn resolve_for<'s>(
    router: &'s ModelRouter,
    auth: &AuthCtx,
    route: &str,
    model: &str,
) -> ApiResult<crate::routing::Resolved<'s>> {
    let target = auth
        .key
        .as_ref()
        .and_then(|k| k.aliases.get(model))
        .and_then(Value::as_str)
        .unwrap_or(model);
    let resolved = router
        .resolve(target)
        .ok_or_else(|| invalid_model(router, auth, route, model))?;
    // A moderation naming no model is not subject to model access (LiteLLM checks none).
    if model.is_empty() {
        return Ok(resolved);
    }
    check_model_access(auth, resolved.group, model)?;
    Ok(resolved)
}

/// Refuses a group outside the caller's key's or organization's `models` (`model`: the name it
/// was asked for).
pub(crate) fn check_model_access(
    auth: &AuthCtx,
    group: &crate::routing::ModelGroup,
    model: &str,
) -> ApiResult<()> {
    check_model_allowed(auth, model, |list| group.allowed_by(list, model))
}

/// Refuses `model` when the caller's key's or organization's `models` list is set and
/// `allows` does not grant it (LiteLLM's `key_model_access_denied` / `org_model_access_denied`).
pub(crate) fn check_model_allowed(
    auth: &AuthCtx,
    model: &str,
    allows: impl Fn(&[String]) -> bool,
) -> ApiResult<()> {
    // `all-proxy-models` never reaches `allowed_models` (it empties the list).
    if !auth.allowed_models.is_empty() && !allows(&auth.allowed_models) {
        let mut e = ApiError::proxy_auth(format!(
            "key not allowed to access model. This key can only access models={:?}. Tried to access {model}",
            auth.allowed_models
        ));
        e.type_override = Some("key_model_access_denied");
        return Err(e);
    }
    if let Some(org) = auth.organization.as_ref().filter(|o| !o.models.is_empty()) {
        if !allows(&org.models) {
            let mut e = ApiError::proxy_auth(format!(
                "org not allowed to access model. This org can only access models={:?}. Tried to access {model}",
                org.models
            ));
            e.type_override = Some("org_model_access_denied");
            return Err(e);
        }
    }
    Ok(())
}

/// `POST /v1/messages/count_tokens`: Anthropic deployments count for themselves; for other
/// providers the count is estimated from the text (about four characters a token).
pub async fn count_tokens_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match count_tokens(&state, &auth, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn count_tokens(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    const ROUTE: &str = "/v1/messages/count_tokens";
    let bytes = read_body(headers, body, state.max_request_bytes).await?;
    let mut body = parse_object(&bytes)?;
    let model = validate::model_field(&body, ROUTE)?;
    messages::validate(&body)?;
    let router = state.router.load_full();
    let resolved = resolve_for(&router, auth, ROUTE, &model)?;
    let d = resolved.group.pick(&[]).cloned().ok_or_else(|| {
        ApiError::new(
            ErrorClass::RateLimit,
            format!("No deployments available for selected model. Passed model={model}"),
        )
    })?;
    if d.provider != Provider::Anthropic || d.mock_response.is_some() {
        let n = messages::estimate_input_tokens(&body);
        return Ok(json_response(&json_object(
            serde_json::json!({ "input_tokens": n }),
        )));
    }
    let metadata = body.remove("metadata");
    let _ = LitellmExtras::split_from(&mut body)?;
    drop(metadata); // count_tokens takes no metadata
    for k in [
        "max_tokens",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
    ] {
        body.remove(k);
    }
    body.insert(
        "model".into(),
        Value::String(
            d.upstream_model_for(resolved.capture.as_deref())
                .into_owned(),
        ),
    );
    let mut up = providers::anthropic_request(&d, &Overrides::default(), &body)?;
    up.url = providers::openai::upstream_uri(&format!("{}/count_tokens", up.url))?;
    let timeout = d.timeout.unwrap_or(state.default_timeout);
    let (head, resp) = send(state, up, timeout, d.provider).await?.into_parts();
    let status = head.status;
    let bytes = read_limited(resp, timeout, d.provider, state.max_response_bytes).await?;
    if !status.is_success() {
        return Err(providers::map_error(d.provider, status.as_u16(), &bytes));
    }
    Ok(json_bytes_response(bytes.to_vec()))
}

fn json_object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// LiteLLM's retry count: request `num_retries` > `x-litellm-num-retries` >
/// `router_settings.num_retries` > `litellm_settings.num_retries` > 2.
fn num_retries(state: &AppState, headers: &HeaderMap, req: &LlmRequest) -> u64 {
    let cfg = &state.loaded.config;
    req.extras
        .num_retries
        .or_else(|| header_f64(headers, &NUM_RETRIES_H).map(|v| v as u64))
        .or(cfg.router_settings.num_retries)
        .or(cfg.litellm_settings.num_retries)
        .unwrap_or(state.default_retries)
}

/// Fallback model groups for a failed group, by error class: `context_window_fallbacks` and
/// `content_policy_fallbacks` for their errors, else the request's `fallbacks`, then the
/// configured `fallbacks` (an entry for the group, or `"*"`), then `default_fallbacks`. At most
/// `max_fallbacks` (see [`AppState::max_fallbacks`]).
fn fallback_groups(
    state: &AppState,
    req: &LlmRequest,
    group: &str,
    class: ErrorClass,
) -> Vec<String> {
    let cfg = &state.loaded.config;
    let rs = &cfg.router_settings.extra;
    let ls = &cfg.litellm_settings;
    let from_list = |v: Option<&Value>| -> Option<Vec<String>> {
        let list = v?.as_array()?;
        let pick = |key: &str| {
            list.iter().find_map(|entry| {
                entry.get(key).and_then(Value::as_array).map(|a| {
                    a.iter()
                        .filter_map(|x| {
                            x.as_str().map(String::from).or_else(|| {
                                x.field("model").and_then(Value::as_str).map(String::from)
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
        };
        pick(group).or_else(|| pick("*"))
    };
    let setting = |name: &str| -> Option<Value> {
        rs.get(name).cloned().or_else(|| match name {
            "fallbacks" => ls.fallbacks.clone(),
            "context_window_fallbacks" => ls.context_window_fallbacks.clone(),
            "content_policy_fallbacks" => ls.content_policy_fallbacks.clone(),
            "default_fallbacks" => ls.default_fallbacks.clone(),
            _ => None,
        })
    };
    let specific = match class {
        ErrorClass::ContextWindowExceeded => {
            from_list(setting("context_window_fallbacks").as_ref())
        }
        ErrorClass::ContentPolicyViolation => {
            from_list(setting("content_policy_fallbacks").as_ref())
        }
        _ => None,
    };
    // Errors that cannot succeed anywhere (bad input, bad credentials of the caller) do not
    // fall back, except through their specific lists above.
    let generic_ok = !matches!(
        class,
        ErrorClass::BadRequest
            | ErrorClass::UnsupportedParams
            | ErrorClass::ProxyAuth
            | ErrorClass::BudgetExceeded
    );
    let mut out = specific.unwrap_or_default();
    if out.is_empty() && generic_ok {
        if let Some(Value::Array(a)) = &req.extras.fallbacks {
            out = a
                .iter()
                .filter_map(|x| {
                    x.as_str()
                        .map(String::from)
                        .or_else(|| x.field("model").and_then(Value::as_str).map(String::from))
                })
                .collect();
        }
        if out.is_empty() {
            out = from_list(setting("fallbacks").as_ref()).unwrap_or_default();
        }
        if out.is_empty() {
            if let Some(Value::Array(a)) = setting("default_fallbacks") {
                out = a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect();
            }
        }
    }
    out.retain(|g| g != group);
    out.truncate(state.max_fallbacks);
    out
}

/// Calls one model group with retries: each retry picks another deployment when the group has
/// one that has not failed yet, and otherwise waits (exponential backoff from 0.5 s, at most
/// 8 s, never less than `router_settings.retry_after`). Errors that a retry cannot fix are
/// returned at once.
#[expect(
    clippy::too_many_arguments,
    reason = "the per-attempt context; bundling it is planned with the router module"
)]
async fn try_group(
    state: &AppState,
    ctx: &RequestCtx,
    auth: &AuthCtx,
    req: &LlmRequest,
    group: &Arc<crate::routing::ModelGroup>,
    capture: Option<&str>,
    served: &str,
    retries: u64,
    retried: &mut u64,
    slot: &CallSlot,
) -> ApiResult<Response> {
    // Tag filtering first: retries, cooldowns and the strategy only see what it allows.
    let tag_mask = if group.tag_filtering {
        let tags = routing_tags(req, auth);
        let model = if group.name.contains('*') {
            served
        } else {
            group.name.as_str()
        };
        group.tag_mask(&tags, model)?
    } else {
        None
    };
    let hints = crate::routing::PickHints {
        stream: req.stream,
        prompt_tokens: if group.pre_call_checks {
            messages::estimate_input_tokens(&req.body)
        } else {
            0
        },
        allowed: tag_mask.as_deref(),
    };
    if group.exceeds_every_context_window(hints.prompt_tokens) {
        return Err(ApiError::new(
            ErrorClass::ContextWindowExceeded,
            format!(
                "litellm.ContextWindowExceededError: ContextWindowExceededError: the prompt (about {} tokens) is longer than the context window of every deployment of model={served} (enable_pre_call_checks)",
                hints.prompt_tokens
            ),
        ));
    }
    let mut failed: Vec<String> = Vec::new();
    let mut try_no = 0u64;
    let mut last_error: Option<ApiError> = None;
    loop {
        let cooling = state.cooldowns.cooling(
            group
                .deployments
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    tag_mask
                        .as_ref()
                        .is_none_or(|m| m.get(*i).copied().unwrap_or(false))
                })
                .map(|(_, d)| d.id.as_str()),
        );
        let mut skip: Vec<&str> = failed.iter().map(String::as_str).collect();
        skip.extend(cooling.iter().copied());
        // A `/responses` call continuing a stored response goes where that response is kept.
        let mut fresh = req
            .pinned
            .as_deref()
            .filter(|_| group.responses_affinity)
            .and_then(|id| pinned_in(group, id, &skip, tag_mask.as_deref()));
        // Deployments the background health checks found down are avoided while others
        // remain.
        if fresh.is_none() && state.background_health {
            let mut avoid = skip.clone();
            avoid.extend(
                group
                    .deployments
                    .iter()
                    .filter(|d| state.health.get(&d.id).is_some_and(|r| r.is_err()))
                    .map(|d| d.id.as_str()),
            );
            fresh = group.pick_with(&avoid, hints).cloned();
        }
        let fresh = fresh.or_else(|| group.pick_with(&skip, hints).cloned());
        let had_alternative = fresh.is_some();
        // Nothing untried: the same deployment again (after a backoff), unless cooling down.
        let deployment = match fresh.or_else(|| group.pick_with(&cooling, hints).cloned()) {
            Some(d) => d,
            None if !cooling.is_empty() => {
                let wait = cooling
                    .iter()
                    .filter_map(|id| state.cooldowns.remaining(id))
                    .min()
                    .unwrap_or_default();
                return Err(match last_error {
                    Some(e) => e,
                    None => crate::routing::cooldown::all_cooling_error(served, &cooling, wait),
                });
            }
            None => {
                return Err(ApiError::new(
                    ErrorClass::RateLimit,
                    format!("No deployments available for selected model. Passed model={served}"),
                ))
            }
        };
        if try_no > 0 && !had_alternative {
            tokio::time::sleep(backoff(state, try_no, last_error.as_ref())).await;
        }
        let upstream_model = deployment.upstream_model_for(capture);
        let mut facts = call_facts(ctx, req, &group.name, &upstream_model);
        if req.kind.is_media() {
            facts.expected_cost = super::media::expected_cost(
                req.kind,
                &req.body,
                req.files.as_deref(),
                &deployment,
                &upstream_model,
            );
        }
        let account = CallAccount::begin(state, auth, &deployment, facts)?;
        let mut account = account;
        if let Some(k) = &req.cache_key {
            account.set_cache_key(k);
        }
        if let Ok(mut g) = slot.lock() {
            if let Some((_, acct)) = g.as_mut() {
                *acct = Some(account);
            }
        }
        let call = super::boxed(|| {
            attempt(
                state,
                ctx,
                req,
                &deployment,
                capture,
                &group.name,
                served,
                slot,
            )
        });
        match call.await {
            Ok(r) => return Ok(r),
            Err(e) => {
                // The failed attempt's account is dropped here: its reservation is released
                // and a failure row is logged.
                if let Ok(mut g) = slot.lock() {
                    if let Some((_, acct)) = g.as_mut() {
                        if let Some(mut a) = acct.take() {
                            a.failed(&e);
                        }
                    }
                }
                state
                    .cooldowns
                    .record_failure(&deployment.id, group.deployments.len(), &e)
                    .await;
                if let Some(m) = &state.metrics {
                    if state.cooldowns.remaining(&deployment.id).is_some() {
                        m.deployment_cooled_down(&deployment);
                    }
                }
                let allowed = match retry_policy(state, &group.name, e.class) {
                    Some(n) => n,
                    None if e.class.is_retryable() => retries,
                    None => 0,
                };
                if try_no >= allowed {
                    return Err(e);
                }
                failed.push(deployment.id.clone());
                try_no += 1;
                *retried += 1;
                last_error = Some(e);
            }
        }
    }
}

/// The deployment `id` of `group`, unless it is in `skip` (failed, cooling down) or the
/// request's tags rule it out; otherwise the strategy chooses as usual (as LiteLLM's
/// `responses_api_deployment_check` does).
fn pinned_in(
    group: &crate::routing::ModelGroup,
    id: &str,
    skip: &[&str],
    allowed: Option<&[bool]>,
) -> Option<Arc<Deployment>> {
    let (i, d) = group
        .deployments
        .iter()
        .enumerate()
        .find(|(_, d)| d.id == id)?;
    let usable = !skip.contains(&id) && allowed.is_none_or(|a| a.get(i).copied().unwrap_or(false));
    usable.then(|| d.clone())
}

/// The tags tag-based routing sees: the request's own (`tags`, `metadata.tags`,
/// `x-litellm-tags`), then its key's and team's metadata tags, without repeats.
fn routing_tags(req: &LlmRequest, auth: &AuthCtx) -> Vec<String> {
    let mut tags = req.extras.tags.clone();
    crate::spend::call::append_new_tags(
        &mut tags,
        auth.tags.iter().flat_map(|t| t.iter()).map(String::as_str),
    );
    tags
}

/// The response with the rate-limit headers of its call.
pub(super) fn with_headers(mut r: Response, headers: Vec<(HeaderName, HeaderValue)>) -> Response {
    let h = r.headers_mut();
    for (k, v) in headers {
        h.insert(k, v);
    }
    r
}

/// What accounting needs to know of a call to `group` sent as `upstream_model`.
fn call_facts<'a>(
    ctx: &'a RequestCtx,
    req: &'a LlmRequest,
    group: &'a str,
    upstream_model: &'a str,
) -> CallFacts<'a> {
    CallFacts {
        call_id: &ctx.call_id,
        call_type: req.kind.call_type(),
        requested_model: &req.model,
        request_start: ctx.start,
        group,
        upstream_model,
        prompt_bytes: req.prompt_bytes,
        max_tokens: if req.kind.is_responses() {
            &["max_output_tokens"][..]
        } else {
            &["max_tokens", "max_completion_tokens"]
        }
        .iter()
        .find_map(|k| req.body.field(k).and_then(Value::as_u64)),
        end_user: req.end_user_id.as_deref(),
        end_user_max_budget: req.end_user.as_ref().and_then(|eu| eu.max_budget),
        metadata: req.extras.metadata.as_ref(),
        tags: &req.extras.tags,
        tag_gates: &req.tag_gates,
        expected_cost: None,
        capture: req.capture.as_ref(),
    }
}

/// A stored chat answer as this request wants it: as it was (under the requested model
/// name), or replayed as a stream; with its usage. `None` if the entry is not a chat answer.
fn chat_from_cache(
    req: &LlmRequest,
    hit: &crate::cache::Cached,
) -> Option<(Response, crate::api::Usage)> {
    if req.stream {
        let frames =
            crate::cache::replay::replay_frames(&hit.response, &req.model, req.include_usage)?;
        let usage = serde_json::from_slice::<Map<String, Value>>(&hit.response)
            .ok()
            .and_then(|v| v.field("usage").and_then(crate::api::Usage::from_json));
        let frames = futures::stream::iter(frames.into_iter().map(Ok::<_, std::io::Error>));
        Some((
            sse_response(Body::from_stream(frames)),
            usage.unwrap_or_default(),
        ))
    } else {
        let (body, usage) = crate::api::rewrite::set_model(&hit.response, &req.model)?;
        Some((json_bytes_response(body), usage.unwrap_or_default()))
    }
}

/// A call answered from the response cache (`answer`: the response and its usage): recorded
/// at no cost with `cache_hit` "True", budgets checked as for any call, LiteLLM's headers
/// added (`x-litellm-cache-key` when `show_key`; LiteLLM leaves it off embeddings). `None`
/// when the group has no deployment to name; the call then goes upstream.
#[expect(
    clippy::too_many_arguments,
    reason = "the call's context, as for an upstream attempt"
)]
async fn serve_cached(
    state: &AppState,
    ctx: &RequestCtx,
    auth: &AuthCtx,
    req: &LlmRequest,
    group: &Arc<crate::routing::ModelGroup>,
    capture: Option<&str>,
    plan: &crate::cache::CachePlan,
    slot: &CallSlot,
    answer: (Response, crate::api::Usage),
    show_key: bool,
) -> ApiResult<Option<Response>> {
    let hints = crate::routing::PickHints {
        stream: req.stream,
        ..Default::default()
    };
    let Some(d) = group
        .pick_with(&[], hints)
        .or_else(|| group.deployments.first())
        .cloned()
    else {
        return Ok(None);
    };
    let (mut r, usage) = answer;
    let upstream_model = d.upstream_model_for(capture);
    let mut account = CallAccount::begin(
        state,
        auth,
        &d,
        call_facts(ctx, req, &group.name, &upstream_model),
    )?;
    account.set_cache_key(&plan.key);
    if let Some(p) = slot
        .lock()
        .ok()
        .and_then(|mut g| g.take())
        .and_then(|(p, _)| p)
    {
        p.settle(usage.total_tokens);
    }
    let settled = account.finish_cached(usage);
    if !req.stream {
        cost_headers(&mut r, Some(settled));
    }
    decorate(&mut r, ctx, &d, &group.name, 0.0, &HeaderMap::new());
    if let Some(v) = show_key
        .then(|| HeaderValue::from_str(&plan.key).ok())
        .flatten()
    {
        r.headers_mut().insert(H_CACHE_KEY.clone(), v);
    }
    Ok(Some(r))
}

/// Embeddings after the upstream call: the answer's items are stored one by one (the items
/// that were sent, unless `no-store`), and when some items came from the cache the answer is
/// put back together in the client's order with them.
async fn embeddings_through_cache(
    state: &AppState,
    plan: crate::cache::CachePlan,
    req: &LlmRequest,
    found: &[Option<bytes::Bytes>],
    resp: Response,
) -> Response {
    let partial = found.iter().any(Option::is_some);
    if !resp.status().is_success() || (!plan.write && !partial) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::internal(format!("failed to read a response: {e}")).into_response()
        }
    };
    let sent: Vec<&String> = req
        .cache_items
        .iter()
        .enumerate()
        .filter(|(i, _)| found.get(*i).is_none_or(Option::is_none))
        .map(|(_, h)| h)
        .collect();
    if plan.write {
        if let (Some(c), Some(items)) =
            (&state.cache, crate::cache::embed::split(&bytes, sent.len()))
        {
            for (h, item) in sent.iter().zip(items) {
                c.put_at(&plan.key_for(h), &plan, item, true);
            }
        }
    }
    let body = if partial {
        match crate::cache::embed::merge(found, Some(&bytes), &req.model) {
            Some((merged, _)) => merged,
            None => {
                return ApiError::internal("the upstream's embeddings did not match the items sent")
                    .into_response()
            }
        }
    } else {
        bytes
    };
    Response::from_parts(parts, Body::from(body))
}

/// Stores a successful answer under the call's cache key: a plain answer at once (if it says
/// something), a stream once it has ended whole (assembled from the events the client got).
async fn store_in_cache(
    state: &AppState,
    plan: crate::cache::CachePlan,
    req: &LlmRequest,
    resp: Response,
) -> Response {
    use futures::{StreamExt, TryStreamExt};
    if !resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    if req.stream {
        let usage = req.stream_usage.clone().unwrap_or_default();
        let state = state.clone();
        let events = body
            .into_data_stream()
            .map_err(std::io::Error::other)
            .boxed();
        let store = Box::new(move |answer: bytes::Bytes| {
            if let Some(c) = &state.cache {
                c.put(&plan, answer);
            }
        });
        let body = Body::from_stream(crate::cache::replay::tee(events, usage, store));
        return Response::from_parts(parts, body);
    }
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            if crate::cache::has_output(&bytes) {
                if let Some(c) = &state.cache {
                    c.put(&plan, bytes.clone());
                }
            }
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(e) => ApiError::internal(format!("failed to read a response: {e}")).into_response(),
    }
}

/// `retry_policy` / `model_group_retry_policy`: retries allowed for one error class
/// (`RateLimitErrorRetries`, `TimeoutErrorRetries`, ...), overriding `num_retries`.
fn retry_policy(state: &AppState, group: &str, class: ErrorClass) -> Option<u64> {
    let key = match class {
        ErrorClass::BadRequest | ErrorClass::UnsupportedParams => "BadRequestErrorRetries",
        ErrorClass::Authentication => "AuthenticationErrorRetries",
        ErrorClass::Timeout => "TimeoutErrorRetries",
        ErrorClass::RateLimit => "RateLimitErrorRetries",
        ErrorClass::ContentPolicyViolation => "ContentPolicyViolationErrorRetries",
        ErrorClass::Internal
        | ErrorClass::ApiConnection
        | ErrorClass::BadGateway
        | ErrorClass::ServiceUnavailable => "InternalServerErrorRetries",
        _ => return None,
    };
    let rs = &state.loaded.config.router_settings.extra;
    rs.field("model_group_retry_policy")
        .and_then(|p| p.get(group))
        .and_then(|p| p.get(key))
        .or_else(|| rs.field("retry_policy").and_then(|p| p.get(key)))
        .and_then(Value::as_u64)
}

/// Wait before retrying the same deployment: the upstream's `retry-after` when it gave one
/// (up to a minute), else exponential backoff with jitter; `retry_after` is the floor.
fn backoff(state: &AppState, try_no: u64, last: Option<&ApiError>) -> Duration {
    let floor = state
        .loaded
        .config
        .router_settings
        .extra
        .field("retry_after")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    retry_delay(
        try_no,
        floor,
        last.and_then(|e| e.retry_after),
        rand::random::<f64>(),
    )
}

/// The retry schedule: an upstream `retry-after` of up to a minute is waited out as given;
/// otherwise 0.5 s doubling per retry up to 8 s, times a jitter factor in [0.75, 1]
/// (`unit` is a uniform random number in [0, 1)). `floor` (`retry_after`) is the minimum.
fn retry_delay(try_no: u64, floor: f64, upstream: Option<u64>, unit: f64) -> Duration {
    /// Longest upstream `retry-after` honoured, as LiteLLM does.
    const MAX_UPSTREAM_RETRY_AFTER: u64 = 60;
    /// LiteLLM's `INITIAL_RETRY_DELAY` and `MAX_RETRY_DELAY`, in seconds.
    const INITIAL: f64 = 0.5;
    const MAX: f64 = 8.0;
    let floor = if floor.is_finite() {
        floor.max(0.0)
    } else {
        0.0
    };
    if let Some(ra) = upstream.filter(|s| *s <= MAX_UPSTREAM_RETRY_AFTER) {
        return Duration::from_secs_f64((ra as f64).max(floor));
    }
    let exp = (INITIAL * 2f64.powi(try_no.saturating_sub(1).min(16) as i32)).min(MAX);
    let jitter = 0.75 + unit.clamp(0.0, 1.0) * 0.25;
    Duration::from_secs_f64((exp * jitter).max(floor))
}

/// What a call holds until its usage is known: the rate-limit permit and the spend account.
/// Shared with the code that learns the usage (the response parser or, for streams, the tap).
type CallSlot = Arc<std::sync::Mutex<Option<(Option<Permit>, Option<CallAccount>)>>>;

/// Settles the call with its usage; returns the cost and the key's spend after it.
fn settle(slot: &CallSlot, usage: crate::api::Usage) -> Option<(f64, Option<f64>)> {
    let (permit, account) = slot.lock().ok().and_then(|mut g| g.take())?;
    if let Some(p) = permit {
        p.settle(usage.total_tokens);
    }
    Some(account?.finish_ref(usage))
}

/// [`settle`] for a stream that failed after its first event: the usage is charged and the
/// call recorded as a failure with its error.
fn settle_failed(slot: &CallSlot, usage: crate::api::Usage, e: &ApiError) {
    let Some((permit, account)) = slot.lock().ok().and_then(|mut g| g.take()) else {
        return;
    };
    if let Some(p) = permit {
        p.settle(usage.total_tokens);
    }
    if let Some(mut account) = account {
        account.failed(e);
        account.finish_failed(usage);
    }
}

/// [`settle`] for a call priced otherwise than by its tokens (images, speech).
fn settle_priced(
    slot: &CallSlot,
    usage: crate::api::Usage,
    cost: f64,
) -> Option<(f64, Option<f64>)> {
    let (permit, account) = slot.lock().ok().and_then(|mut g| g.take())?;
    if let Some(p) = permit {
        p.settle(usage.total_tokens);
    }
    Some(account?.finish_priced(usage, cost))
}

/// Keeps a call's response for the logging callbacks (only called when they want it).
fn note_output(slot: &CallSlot, output: Output) {
    if let Ok(mut g) = slot.lock() {
        if let Some((_, Some(account))) = g.as_mut() {
            account.set_output(output);
        }
    }
}

/// A stream's answer and first-chunk time, for the logging callbacks.
fn note_stream(slot: &CallSlot, output: Option<Value>, first_chunk_at: Option<Instant>) {
    if let Ok(mut g) = slot.lock() {
        if let Some((_, Some(account))) = g.as_mut() {
            if let Some(o) = output {
                account.set_output(Output::Assembled(o));
            }
            if let Some(first) = first_chunk_at {
                let ago = chrono::Duration::from_std(first.elapsed()).unwrap_or_default();
                account.set_completion_start(crate::spend::now() - ago);
            }
        }
    }
}

/// Takes the caller's rate-limit counters (key, user, team, end user, tags, model-per-key,
/// proxy-wide), or refuses with LiteLLM's 429. Reserves the prompt estimate plus `max_tokens`
/// against TPM.
async fn check_rate_limits(
    state: &AppState,
    auth: &AuthCtx,
    req: &LlmRequest,
    group: &str,
) -> ApiResult<(Option<Permit>, Vec<(HeaderName, HeaderValue)>)> {
    let mut descs: Vec<Descriptor> = state.global_limits.clone();
    descs.extend(auth.rate_limits.iter().cloned());
    if let Some(d) = req.end_user.as_ref().and_then(|eu| eu.limits.clone()) {
        descs.push(d);
    }
    descs.extend(req.tag_gates.iter().filter_map(|g| g.limits.clone()));
    if let Some((_, rpm, tpm)) = auth.model_limits.iter().find(|(m, _, _)| m == group) {
        descs.push(Descriptor {
            scope: "model_per_key",
            id: format!("{}:{group}", auth.key_hash.as_deref().unwrap_or("")),
            rpm: *rpm,
            tpm: *tpm,
            max_parallel: None,
        });
    }
    if descs.is_empty() {
        return Ok((None, Vec::new()));
    }
    let max_tokens = ["max_tokens", "max_completion_tokens"]
        .iter()
        .find_map(|k| req.body.field(k).and_then(Value::as_u64))
        .unwrap_or(0);
    // About four bytes of JSON per prompt token: a cheap upper-side estimate.
    let reserve = ((req.prompt_bytes / 4) as u64).saturating_add(max_tokens);
    acquire_limits(state, descs, reserve).await
}

/// Takes one request (and `reserve` tokens) from each of `descs`, or refuses with LiteLLM's
/// 429; with the rate-limit headers of the answer.
pub(super) async fn acquire_limits(
    state: &AppState,
    descs: Vec<Descriptor>,
    reserve: u64,
) -> ApiResult<(Option<Permit>, Vec<(HeaderName, HeaderValue)>)> {
    match state.limiter.acquire(descs.clone(), reserve).await? {
        Acquired::Ok(p, usage) => Ok((Some(p), ratelimit::headers(&descs, &usage))),
        Acquired::Refused(e) => Err(e.to_error(state.limiter.window())),
    }
}

/// One call to one deployment: mock, or upstream request and response translation.
#[expect(
    clippy::too_many_arguments,
    reason = "the per-attempt context; bundling it is planned with the router module"
)]
async fn attempt(
    state: &AppState,
    ctx: &RequestCtx,
    req: &LlmRequest,
    deployment: &Arc<Deployment>,
    capture: Option<&str>,
    group: &str,
    served: &str,
    permit: &CallSlot,
) -> ApiResult<Response> {
    let deployment = deployment.as_ref();
    if req.extras.mock_testing_fallbacks && served == req.model {
        // LiteLLM's test switch: the requested group fails so its fallbacks are exercised.
        return Err(ApiError::new(
            ErrorClass::Internal,
            format!("litellm.InternalServerError: InternalServerError: mock_testing_fallbacks=True for model={served}"),
        ));
    }
    if let Some(mock) = deployment
        .mock_response
        .as_ref()
        .or(req.extras.mock_response.as_ref())
    {
        let mut r = mock_answer(served, ctx, deployment, req, mock)?;
        if req.capture.as_ref().is_some_and(|c| c.wants_output) {
            let answer = match req.kind {
                CallKind::Chat => Some(mock::chat_response(mock, served)),
                CallKind::Completion => Some(mock::text_completion_response(mock, served)),
                CallKind::Responses => Some(mock::responses_response(mock, served)),
                _ => None,
            };
            if let Some(a) = answer {
                note_output(permit, Output::Value(Value::Object(a)));
            }
        }
        let settled = match req.kind {
            CallKind::Responses | CallKind::ResponsesCompact => {
                settle(permit, mock::MOCK_RESPONSES_USAGE)
            }
            CallKind::ImageGeneration
            | CallKind::Speech
            | CallKind::ImageEdit
            | CallKind::Transcription => {
                let upstream_model = deployment.upstream_model_for(capture);
                let cost = super::media::mock_cost(
                    req.kind,
                    &req.body,
                    req.files.as_deref(),
                    mock,
                    deployment,
                    &upstream_model,
                );
                settle_priced(permit, crate::api::Usage::default(), cost)
            }
            CallKind::Moderation => settle(permit, crate::api::Usage::default()),
            _ => settle(permit, mock::MOCK_USAGE),
        };
        if !req.stream {
            cost_headers(&mut r, settled);
        }
        return Ok(r);
    }
    if req.extras.mock_testing_rate_limit_error {
        let e = mock::mock_error(&Value::String("litellm.RateLimitError".into()), served);
        return Err(e.unwrap_or_else(|| ApiError::new(ErrorClass::RateLimit, "mock rate limit")));
    }
    check_clientside_params(state, deployment, &req.extras)?;
    let flight = deployment.stats.start();

    let upstream_model = deployment.upstream_model_for(capture);
    let additional_drop = additional_drop_params(deployment, &req.extras);
    let allowed = allowed_openai_params(&req.extras);
    let ov = Overrides {
        api_key: req.extras.api_key.as_deref(),
        api_base: req.extras.api_base.as_deref(),
        api_version: req.extras.api_version.as_deref(),
        params: ParamPolicy {
            drop_params: req
                .extras
                .drop_params
                .or(deployment.drop_params)
                .unwrap_or(state.drop_params),
            additional_drop: &additional_drop,
            allowed: &allowed,
        },
        size_hint: req.prompt_bytes,
        raw_messages: req.raw_messages.as_ref().map(|(b, at)| &b[at.clone()]),
    };
    // `/v1/messages` to an Anthropic deployment goes out as it came.
    let native = match (&req.native, deployment.provider) {
        (Some(n), Provider::Anthropic) => Some(n),
        _ => None,
    };
    let upstream = match native {
        Some(n) => providers::anthropic_native_request(
            deployment,
            &upstream_model,
            n.clone(),
            &req.forward_headers,
            &ov,
        )?,
        None => match req.files.as_deref() {
            Some(form) => providers::media::form_request(
                deployment,
                req.kind.endpoint(),
                &upstream_model,
                &req.body,
                &form.files,
                &ov,
            )?,
            None => {
                let mut up = providers::build_request(
                    deployment,
                    req.kind.endpoint(),
                    &upstream_model,
                    &req.body,
                    req.stream,
                    &ov,
                )
                .await?;
                if req.kind == CallKind::ResponsesCompact {
                    // The Responses URL with `/compact` after its path (Azure's query kept).
                    up.url = providers::openai::with_path_suffix(&up.url, "/compact")?;
                }
                up
            }
        },
    };
    let timeout = effective_timeout(state, deployment, req);
    let sent_at = Instant::now();
    let (head, resp) = send(state, upstream, timeout, deployment.provider)
        .await?
        .into_parts();
    let status = head.status;
    if !status.is_success() {
        let bytes = read_limited(
            resp,
            timeout.saturating_sub(sent_at.elapsed()),
            deployment.provider,
            state.max_response_bytes,
        )
        .await?;
        let mut e = providers::map_error(deployment.provider, status.as_u16(), &bytes);
        if e.retry_after.is_none() {
            e.retry_after = upstream_retry_after(head.headers.get("retry-after"));
        }
        return Err(e);
    }
    let upstream_headers = head.headers;
    if req.kind == CallKind::Speech {
        // Audio goes back as it arrives, with the upstream's content type; its price is the
        // request's, so the call is settled now.
        let idle = req
            .extras
            .stream_timeout
            .and_then(|s| crate::routing::deployment::secs(Some(s)))
            .or(deployment.stream_timeout)
            .or(state.default_stream_timeout)
            .or(Some(timeout));
        let cost = super::media::speech_cost(&req.body, deployment, &upstream_model);
        let body =
            super::media::audio_body(client::body_stream(resp), idle, flight, deployment.provider);
        deployment.stats.record_latency(sent_at.elapsed(), true);
        let upstream_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
        let mut r = Response::new(body);
        let content_type = super::media::speech_content_type(
            upstream_headers.get(axum::http::header::CONTENT_TYPE),
            &req.body,
        );
        r.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, content_type);
        cost_headers(
            &mut r,
            settle_priced(permit, crate::api::Usage::default(), cost),
        );
        decorate(
            &mut r,
            ctx,
            deployment,
            group,
            upstream_ms,
            &upstream_headers,
        );
        return Ok(r);
    }
    if req.stream {
        let idle = req
            .extras
            .stream_timeout
            .and_then(|s| crate::routing::deployment::secs(Some(s)))
            .or(deployment.stream_timeout)
            .or(state.default_stream_timeout);
        let slot = permit.clone();
        let stats = deployment.stats.clone();
        let prompt_estimate = (req.prompt_bytes / 4) as u64;
        let cache_usage = req.stream_usage.clone();
        let capturing = req.capture.is_some();
        let mut tap = StreamTap::new(Some(Box::new(move |sum: stream::StreamSummary| {
            // No usage from upstream (e.g. the client left first): estimate from what was
            // streamed, so the tokens produced are still paid for.
            let usage = sum.usage.unwrap_or_else(|| {
                crate::api::Usage::new(prompt_estimate, (sum.output_chars / 4) as u64)
            });
            stats.add_tokens(usage.total_tokens);
            drop(flight);
            if let Some(s) = &cache_usage {
                if let Ok(mut u) = s.lock() {
                    *u = Some(usage);
                }
            }
            if capturing {
                note_stream(&slot, sum.output, sum.first_chunk_at);
            }
            match &sum.error {
                // Failed after its first event: the tokens produced are still paid for, and
                // the call is logged as the failure it was (as LiteLLM's stream wrapper does).
                Some(e) => settle_failed(&slot, usage, e),
                None => {
                    settle(&slot, usage);
                }
            }
        })));
        if req.capture.as_ref().is_some_and(|c| c.wants_output) {
            tap.collect_output();
        }
        let model: Arc<str> = Arc::from(served);
        let (dialect, encoder) = match (req.kind, native) {
            (_, Some(_)) => (stream::Dialect::anthropic_raw(), Encoder::Passthrough),
            (CallKind::Responses, None) => (
                stream::Dialect::responses_raw(Some(
                    response_id::Issuer::new(deployment.provider.name(), &deployment.id)
                        .bound(req.id_binding.clone()),
                )),
                Encoder::Passthrough,
            ),
            (CallKind::Messages, None) => (
                providers::stream_dialect(deployment, req.kind.endpoint()),
                Encoder::Anthropic(Box::new(EventEncoder::new(model))),
            ),
            (_, None) => {
                let dialect = if deployment.provider.speaks_openai() {
                    stream::Dialect::openai_rewrite(deployment.provider, &model, req.include_usage)
                } else {
                    providers::stream_dialect(deployment, req.kind.endpoint())
                };
                let encoder = Encoder::OpenAi {
                    model,
                    include_usage: req.include_usage,
                };
                (dialect, encoder)
            }
        };
        let s = ChatStream::new(
            client::body_stream(resp),
            dialect,
            encoder,
            idle.or(Some(timeout)),
            tap,
            deployment.provider,
        );
        let body =
            match tokio::time::timeout(timeout.saturating_sub(sent_at.elapsed()), stream::open(s))
                .await
            {
                Ok(r) => r?,
                Err(_) => return Err(timeout_error(deployment.provider, timeout)),
            };
        deployment.stats.record_latency(sent_at.elapsed(), true);
        let upstream_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
        let mut r = sse_response(Body::from_stream(body));
        decorate(
            &mut r,
            ctx,
            deployment,
            group,
            upstream_ms,
            &upstream_headers,
        );
        return Ok(r);
    }
    let bytes = read_limited(
        resp,
        timeout.saturating_sub(sent_at.elapsed()),
        deployment.provider,
        state.max_response_bytes,
    )
    .await?;
    deployment.stats.record_latency(sent_at.elapsed(), false);
    drop(flight);
    let upstream_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
    let settle = |slot: &CallSlot, usage: crate::api::Usage| {
        deployment.stats.add_tokens(usage.total_tokens);
        settle(slot, usage)
    };
    let capture_output = req.capture.as_ref().is_some_and(|c| c.wants_output);
    let mut r = if native.is_some() {
        // Anthropic's own answer, reported under the requested model name.
        let mut out = parse_object(&bytes).map_err(|_| {
            ApiError::internal("litellm.APIError: APIError: AnthropicException - upstream returned a body that is not a JSON object")
        })?;
        let usage = out
            .field("usage")
            .and_then(crate::providers::anthropic::native_usage);
        out.insert("model".into(), Value::String(served.to_string()));
        let mut r = json_map_answer(deployment, &out);
        if capture_output {
            note_output(permit, Output::Value(Value::Object(out)));
        }
        cost_headers(&mut r, settle(permit, usage.unwrap_or_default()));
        r
    } else if req.kind.is_responses() {
        // The Responses API answer goes back as it came but for its `id`, managed (LiteLLM's
        // `resp_<base64>` naming this deployment); only its usage is read (the rest of the body
        // is scanned, not built into a tree).
        let ids = response_id::Issuer::new(deployment.provider.name(), &deployment.id)
            .bound(req.id_binding.clone());
        let (body, usage) = ids.body(&bytes);
        let body = body.unwrap_or_else(|| bytes.to_vec());
        if capture_output {
            note_output(permit, Output::Json(bytes::Bytes::from(body.clone())));
        }
        let mut r = json_answer(deployment, body);
        cost_headers(&mut r, settle(permit, usage.unwrap_or_default()));
        r
    } else if req.kind == CallKind::Messages {
        let out = providers::parse_response(deployment, req.kind.endpoint(), &bytes)?;
        let usage = out.field("usage").and_then(crate::api::Usage::from_json);
        let answer = messages::from_openai(&out, served);
        let mut r = json_map_answer(deployment, &answer);
        if capture_output {
            note_output(permit, Output::Value(Value::Object(answer)));
        }
        cost_headers(&mut r, settle(permit, usage.unwrap_or_default()));
        r
    } else if req.kind == CallKind::Transcription {
        let (body, cost, usage) = super::media::transcription_answer(
            &bytes,
            req.files.as_deref(),
            deployment,
            &upstream_model,
        );
        deployment.stats.add_tokens(usage.total_tokens);
        let mut r = json_answer(deployment, body);
        cost_headers(&mut r, settle_priced(permit, usage, cost));
        r
    } else if matches!(
        req.kind,
        CallKind::ImageGeneration | CallKind::ImageEdit | CallKind::Moderation
    ) {
        // Images and moderations go back as they came (LiteLLM does not rename their model).
        let (cost, usage) = if req.kind != CallKind::Moderation {
            super::media::image_answer_cost(&req.body, &bytes, deployment, &upstream_model)
        } else {
            (0.0, crate::api::Usage::default())
        };
        deployment.stats.add_tokens(usage.total_tokens);
        if capture_output {
            note_output(permit, Output::Json(bytes.clone()));
        }
        let mut r = json_answer(deployment, bytes);
        cost_headers(&mut r, settle_priced(permit, usage, cost));
        r
    } else if deployment.provider.speaks_openai() {
        // OpenAI-format body: forwarded verbatim but for `model`, without building a tree.
        let (body, usage) = crate::api::rewrite::set_model(&bytes, served).ok_or_else(|| {
            ApiError::internal(format!(
                "litellm.APIError: APIError: {} - upstream returned a body that is not a JSON object",
                deployment.provider.exception_label()
            ))
        })?;
        if capture_output {
            note_output(permit, Output::Json(bytes.clone()));
        }
        let mut r = json_answer(deployment, body);
        cost_headers(&mut r, settle(permit, usage.unwrap_or_default()));
        r
    } else {
        let mut out = providers::parse_response(deployment, req.kind.endpoint(), &bytes)?;
        let usage = out.field("usage").and_then(crate::api::Usage::from_json);
        if req.kind == CallKind::Rerank {
            if req.body.field("return_documents") == Some(&Value::Bool(true)) {
                if let Some(Value::Array(docs)) = req.body.field("documents") {
                    crate::providers::cohere::attach_documents(&mut out, docs);
                }
            }
        } else {
            out.insert("model".into(), Value::String(served.to_string()));
        }
        let mut r = json_map_answer(deployment, &out);
        if capture_output {
            note_output(permit, Output::Value(Value::Object(out)));
        }
        cost_headers(&mut r, settle(permit, usage.unwrap_or_default()));
        r
    };
    add_call_headers(
        &mut r,
        ctx,
        deployment,
        group,
        upstream_ms,
        &upstream_headers,
    );
    Ok(r)
}

/// An upstream `retry-after` in whole seconds (numeric form only).
fn upstream_retry_after(v: Option<&HeaderValue>) -> Option<u64> {
    let s = v?.to_str().ok()?.trim();
    s.parse::<u64>()
        .ok()
        .or_else(|| s.parse::<f64>().ok().map(|f| f.ceil().max(0.0) as u64))
}

/// `additional_drop_params` from the deployment and the request.
fn additional_drop_params(d: &Deployment, ex: &LitellmExtras) -> Vec<String> {
    let mut v = ex.additional_drop_params.clone();
    if let Some(Value::Array(a)) = d
        .config
        .litellm_params
        .extra
        .field("additional_drop_params")
    {
        v.extend(a.iter().filter_map(|x| x.as_str().map(String::from)));
    }
    v
}

/// `allowed_openai_params` from the request.
fn allowed_openai_params(ex: &LitellmExtras) -> Vec<String> {
    match ex.other.field("allowed_openai_params") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// `api_base`/`base_url` in a request body may redirect the gateway's credentials elsewhere, so
/// LiteLLM only honours them when explicitly allowed.
fn check_clientside_params(state: &AppState, d: &Deployment, ex: &LitellmExtras) -> ApiResult<()> {
    if ex.api_base.is_none() {
        return Ok(());
    }
    let global = state
        .loaded
        .config
        .general_settings
        .extra
        .field("allow_client_side_credentials")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let per_model = d
        .config
        .litellm_params
        .extra
        .field("configurable_clientside_auth_params")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|p| p.as_str() == Some("api_base")));
    if global || per_model {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "Rejected Request: api_base is not allowed in request body. Enable with `general_settings::allow_client_side_credentials` on proxy config.yaml.",
        )
        .with_param("api_base"))
    }
}

/// Request `timeout` > deployment `timeout` > router/global default; streams prefer
/// `stream_timeout` at each level.
fn effective_timeout(state: &AppState, d: &Deployment, req: &LlmRequest) -> Duration {
    let s = crate::routing::deployment::secs;
    let stream_first = if req.stream {
        s(req.extras.stream_timeout).or(d.stream_timeout)
    } else {
        None
    };
    stream_first
        .or_else(|| s(req.extras.timeout))
        .or(d.timeout)
        .or(if req.stream {
            state.default_stream_timeout
        } else {
            None
        })
        .unwrap_or(state.default_timeout)
}

pub(super) fn timeout_error(provider: Provider, t: Duration) -> ApiError {
    ApiError::new(
        ErrorClass::Timeout,
        format!(
            "litellm.Timeout: Timeout Error: {} - Request timed out. Timeout passed={:.1}s",
            provider.exception_label(),
            t.as_secs_f64()
        ),
    )
}

/// Sends `up` with a deadline. A plain function returning an `async` block, so the future
/// holds the request in flight but not `up` beside it (an `async fn` keeps its arguments).
fn send(
    state: &AppState,
    up: UpstreamRequest,
    timeout: Duration,
    provider: Provider,
) -> impl std::future::Future<Output = ApiResult<hyper::Response<client::Body>>> + Send + '_ {
    let sent = tokio::time::timeout(timeout, state.upstream.post(up));
    async move { sent_or_error(sent.await, timeout, provider) }
}

fn sent_or_error(
    sent: Result<
        Result<hyper::Response<client::Body>, client::BoxError>,
        tokio::time::error::Elapsed,
    >,
    timeout: Duration,
    provider: Provider,
) -> ApiResult<hyper::Response<client::Body>> {
    match sent {
        Err(_) => Err(timeout_error(provider, timeout)),
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(ApiError::new(
            ErrorClass::ApiConnection,
            format!(
                "litellm.APIConnectionError: APIConnectionError: {} - Connection error: {}",
                provider.exception_label(),
                error_chain(e.as_ref())
            ),
        )),
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub(super) async fn read_limited(
    body: client::Body,
    timeout: Duration,
    provider: Provider,
    limit: Option<usize>,
) -> ApiResult<bytes::Bytes> {
    let read = async move {
        super::collect(body, limit).await.map_err(|e| match e {
            super::Collect::TooLarge => {
                ApiError::internal("upstream response exceeds max_response_size_mb")
            }
            super::Collect::Failed(e) => ApiError::new(
                ErrorClass::ApiConnection,
                format!(
                    "litellm.APIConnectionError: APIConnectionError: {} - error reading response: {}",
                    provider.exception_label(),
                    error_chain(&e)
                ),
            ),
        })
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(timeout_error(provider, timeout)),
    }
}

/// `x-litellm-response-cost` and `x-litellm-key-spend` (key spend including this call).
fn cost_headers(r: &mut Response, settled: Option<(f64, Option<f64>)>) {
    let Some((cost, key_spend)) = settled else {
        return;
    };
    let h = r.headers_mut();
    // The formatted text becomes the header's bytes without another copy.
    let value = |x: f64| {
        HeaderValue::from_maybe_shared(bytes::Bytes::from(crate::api::python_float(x))).ok()
    };
    if let Some(v) = value(cost) {
        h.insert(H_RESPONSE_COST.clone(), v);
    }
    if let Some(v) = key_spend.and_then(value) {
        h.insert(H_KEY_SPEND.clone(), v);
    }
}

/// Headers an LLM response ends up with (its own, LiteLLM's `x-litellm-*`, rate-limit and
/// security headers): the room a deployment's header template is built with. A clone of the
/// template has room only for what it holds, so an answer's first header beyond those grows
/// the clone once (tried: placeholders for the per-call headers cost more to clone than the
/// growth they saved).
const RESPONSE_HEADERS: usize = 24;

pub(super) fn json_bytes_response(body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub(super) fn json_response(v: &Map<String, Value>) -> Response {
    json_bytes_response(crate::api::json_out::map_to_vec(v, 512))
}

pub(super) fn sse_response(body: Body) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    h.insert(H_ACCEL_BUFFERING.clone(), HeaderValue::from_static("no"));
    r
}

/// Adds LiteLLM's per-call headers.
///
/// The answer's header map is replaced by a clone of the deployment's template (its
/// `x-litellm-*` identity, retries and the standard headers) and the answer's own headers go
/// back over it: cloning entries is cheaper than hashing each of those names into the map
/// again, which cost about a fifth of a microsecond per header per call.
pub(super) fn decorate(
    r: &mut Response,
    ctx: &RequestCtx,
    d: &Deployment,
    group: &str,
    upstream_ms: f64,
    upstream_headers: &HeaderMap,
) {
    let h = r.headers_mut();
    let own = std::mem::replace(h, answer_templates(d).any.clone());
    h.extend(own);
    add_call_headers(r, ctx, d, group, upstream_ms, upstream_headers);
}

/// A JSON answer from `d` whose headers start as the deployment's JSON template: with
/// [`add_call_headers`] after, the same headers as a [`json_bytes_response`] given to
/// [`decorate`], without its own headers being moved over the template's.
fn json_answer(d: &Deployment, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.headers_mut() = answer_templates(d).json.clone();
    r
}

/// [`json_answer`] of a JSON object, as [`json_response`] writes it.
fn json_map_answer(d: &Deployment, v: &Map<String, Value>) -> Response {
    json_answer(d, crate::api::json_out::map_to_vec(v, 512))
}

/// The per-call part of [`decorate`]: the model group when the call named another one, the
/// upstream's rate-limit and `llm_provider-*` headers, total and overhead durations.
fn add_call_headers(
    r: &mut Response,
    ctx: &RequestCtx,
    d: &Deployment,
    group: &str,
    upstream_ms: f64,
    upstream_headers: &HeaderMap,
) {
    use crate::middleware::request_ctx::float_header;
    let h = r.headers_mut();
    if group != d.model_name {
        match HeaderValue::from_str(group) {
            Ok(g) => {
                h.insert(H_MODEL_GROUP.clone(), g);
            }
            Err(_) => {
                h.remove(&H_MODEL_GROUP);
            }
        }
    }
    for (name, value) in upstream_headers {
        let n = name.as_str();
        if matches!(
            n,
            "content-length"
                | "transfer-encoding"
                | "connection"
                | "content-type"
                | "content-encoding"
        ) {
            continue;
        }
        if let Some(prefixed) = provider_header_name(name) {
            h.insert(prefixed, value.clone());
        }
        if n.starts_with("x-ratelimit-") {
            h.insert(name.clone(), value.clone());
        }
    }
    let total = ctx.elapsed_ms();
    h.insert(H_DURATION.clone(), float_header(total));
    h.insert(
        H_OVERHEAD.clone(),
        float_header((total - upstream_ms).max(0.0)),
    );
}

/// The headers every answer from `d` starts with, built on its first answer: model id, name
/// and group, api base, `x-litellm-attempted-retries: 0` (a retried call overwrites it) and
/// the standard headers [`Tracking::finish`](crate::middleware::request_ctx::Tracking::finish)
/// would otherwise add; and the same with the JSON content type.
fn answer_templates(d: &Deployment) -> &AnswerTemplates {
    d.headers.template.get_or_init(|| {
        let dh = &d.headers;
        let mut h = HeaderMap::with_capacity(RESPONSE_HEADERS);
        h.insert(H_MODEL_ID.clone(), dh.id.clone());
        h.insert(H_MODEL_NAME.clone(), dh.model_name.clone());
        if let Some(g) = &dh.group {
            h.insert(H_MODEL_GROUP.clone(), g.clone());
        }
        if let Some(b) = &dh.api_base {
            h.insert(H_API_BASE.clone(), b.clone());
        }
        h.insert(H_RETRIES.clone(), HeaderValue::from_static("0"));
        crate::middleware::request_ctx::standard_headers(&mut h);
        let mut json = h.clone();
        json.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        AnswerTemplates { any: h, json }
    })
}

static H_MODEL_ID: HeaderName = HeaderName::from_static("x-litellm-model-id");
static H_MODEL_NAME: HeaderName = HeaderName::from_static("x-litellm-model-name");
static H_MODEL_GROUP: HeaderName = HeaderName::from_static("x-litellm-model-group");
static H_API_BASE: HeaderName = HeaderName::from_static("x-litellm-model-api-base");
static H_DURATION: HeaderName = HeaderName::from_static("x-litellm-response-duration-ms");
static H_OVERHEAD: HeaderName = HeaderName::from_static("x-litellm-overhead-duration-ms");
static H_RETRIES: HeaderName = HeaderName::from_static("x-litellm-attempted-retries");
static H_RESPONSE_COST: HeaderName = HeaderName::from_static("x-litellm-response-cost");
static H_KEY_SPEND: HeaderName = HeaderName::from_static("x-litellm-key-spend");
static H_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
static H_CACHE_KEY: HeaderName = HeaderName::from_static("x-litellm-cache-key");

/// `llm_provider-<name>` for an upstream header, built once per distinct name.
fn provider_header_name(name: &HeaderName) -> Option<HeaderName> {
    type Names = dashmap::DashMap<HeaderName, HeaderName, foldhash::fast::RandomState>;
    static CACHE: std::sync::LazyLock<Names> = std::sync::LazyLock::new(Names::default);
    /// Upstreams can send arbitrary header names; stop caching past this many.
    const MAX_CACHED: usize = 512;
    if let Some(n) = CACHE.get(name) {
        return Some(n.clone());
    }
    let prefixed = HeaderName::try_from(format!("llm_provider-{}", name.as_str())).ok()?;
    if CACHE.len() < MAX_CACHED {
        CACHE.insert(name.clone(), prefixed.clone());
    }
    Some(prefixed)
}

fn mock_answer(
    served: &str,
    ctx: &RequestCtx,
    d: &Deployment,
    req: &LlmRequest,
    mock_value: &Value,
) -> ApiResult<Response> {
    if let Some(e) = mock::mock_error(mock_value, served) {
        return Err(e);
    }
    let empty = HeaderMap::new();
    let mut r = match req.kind {
        CallKind::Chat if req.stream => {
            let mut frames: Vec<Result<bytes::Bytes, std::io::Error>> = Vec::with_capacity(4);
            for mut c in mock::chat_chunks(mock_value, served) {
                let usage_only = c
                    .field("choices")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty);
                if usage_only && !req.include_usage {
                    continue;
                }
                if !req.include_usage {
                    c.remove("usage");
                }
                frames.push(Ok(sse::frame(&crate::api::json_out::map_to_vec(&c, 256))));
            }
            frames.push(Ok(bytes::Bytes::from_static(sse::DONE_FRAME)));
            sse_response(Body::from_stream(futures::stream::iter(frames)))
        }
        CallKind::Messages if req.stream => {
            let mut enc = EventEncoder::new(Arc::from(served));
            let mut frames: Vec<Result<bytes::Bytes, std::io::Error>> = Vec::with_capacity(4);
            for c in mock::chat_chunks(mock_value, served) {
                frames.extend(enc.encode(stream::StreamItem::Chunk(c)).map(Ok));
            }
            frames.extend(enc.encode(stream::StreamItem::Done).map(Ok));
            sse_response(Body::from_stream(futures::stream::iter(frames)))
        }
        CallKind::Messages => json_response(&messages::from_openai(
            &mock::chat_response(mock_value, served),
            served,
        )),
        CallKind::Chat => json_response(&mock::chat_response(mock_value, served)),
        // Mocked ids are managed too, so the follow-up routes can be tried offline.
        CallKind::Responses if req.stream => {
            let ids =
                response_id::Issuer::new(d.provider.name(), &d.id).bound(req.id_binding.clone());
            let frames: Vec<Result<bytes::Bytes, std::io::Error>> =
                mock::responses_events(mock_value, served)
                    .into_iter()
                    .map(|(name, mut ev)| {
                        if let Some(r) = ev.get_mut("response").and_then(Value::as_object_mut) {
                            ids.object(r);
                        }
                        Ok(sse::named_frame(name, ev.to_string().as_bytes()))
                    })
                    .collect();
            sse_response(Body::from_stream(futures::stream::iter(frames)))
        }
        CallKind::Responses | CallKind::ResponsesCompact => {
            let mut r = mock::responses_response(mock_value, served);
            response_id::Issuer::new(d.provider.name(), &d.id)
                .bound(req.id_binding.clone())
                .object(&mut r);
            json_response(&r)
        }
        CallKind::Rerank => {
            let n = req
                .body
                .field("documents")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let top = req
                .body
                .field("top_n")
                .and_then(Value::as_u64)
                .map_or(n, |t| (t as usize).min(n));
            let results: Vec<Value> = (0..top)
                .map(|i| serde_json::json!({"index": i, "relevance_score": 1.0 / (i as f64 + 1.0)}))
                .collect();
            json_response(&json_object(serde_json::json!({
                "id": ctx.call_id.to_string(),
                "results": results,
                "meta": {"billed_units": {"search_units": 1}},
            })))
        }
        CallKind::Completion => json_response(&mock::text_completion_response(mock_value, served)),
        CallKind::ImageGeneration | CallKind::ImageEdit => {
            json_response(&mock::image_response(mock_value))
        }
        CallKind::Transcription => json_response(&mock::transcription_response(mock_value)),
        CallKind::Moderation => {
            let model = if d.upstream_model.contains('*') {
                served
            } else {
                d.upstream_model.as_str()
            };
            json_response(&mock::moderation_response(
                model,
                super::media::moderation_inputs(&req.body),
            ))
        }
        CallKind::Speech => {
            let mut r = Response::new(Body::from(mock::speech_audio()));
            r.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("audio/mpeg"),
            );
            r
        }
        CallKind::Embedding => {
            let n = match req.body.field("input") {
                Some(Value::Array(a)) if !a.iter().all(|x| x.is_number()) => a.len(),
                _ => 1,
            };
            json_response(&mock::embedding_response(mock_value, served, n))
        }
    };
    decorate(&mut r, ctx, d, &d.model_name, 0.0, &empty);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::retry_delay;
    use crate::api::python_float;
    use std::time::Duration;

    /// Expected texts are Python 3's `str()` of the same values.
    #[test]
    fn cost_headers_spell_floats_as_python_does() {
        for (x, text) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (2.5e-05, "2.5e-05"),
            (2.25e-05, "2.25e-05"),
            (0.0002, "0.0002"),
            (0.000225, "0.000225"),
            (0.0001, "0.0001"),
            (9.999e-05, "9.999e-05"),
            (1e-05, "1e-05"),
            (3e-07, "3e-07"),
            (123.0, "123.0"),
            (-1.5, "-1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e15, "1000000000000000.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e16, "1e+16"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(python_float(x), text, "{x:e}");
        }
    }

    #[test]
    fn retry_schedule_doubles_caps_and_honours_retry_after() {
        let secs = |try_no, floor, up, unit| retry_delay(try_no, floor, up, unit).as_secs_f64();
        assert_eq!(secs(1, 0.0, None, 1.0), 0.5);
        assert_eq!(secs(1, 0.0, None, 0.0), 0.375);
        assert_eq!(secs(2, 0.0, None, 1.0), 1.0);
        assert_eq!(secs(3, 0.0, None, 1.0), 2.0);
        assert_eq!(secs(9, 0.0, None, 1.0), 8.0, "capped at MAX_RETRY_DELAY");
        assert_eq!(secs(1, 0.0, Some(3), 0.5), 3.0, "upstream retry-after wins");
        assert_eq!(
            secs(1, 0.0, Some(600), 1.0),
            0.5,
            "absurd retry-after ignored"
        );
        assert_eq!(secs(1, 2.0, None, 1.0), 2.0, "retry_after is a floor");
    }

    /// The schedule as waited in (paused) time: three retries after 429s without retry-after
    /// take 0.5 + 1 + 2 s at most.
    #[tokio::test(start_paused = true)]
    async fn retries_wait_the_schedule_in_paused_time() {
        let start = tokio::time::Instant::now();
        for try_no in 1..=3 {
            tokio::time::sleep(retry_delay(try_no, 0.0, None, 1.0)).await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(3500));
    }
}
