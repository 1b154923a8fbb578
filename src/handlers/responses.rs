//! The Responses API's follow-up routes on a stored response: `GET` and `DELETE
//! /responses/{response_id}`, `GET /responses/{response_id}/input_items` and `POST
//! /responses/{response_id}/cancel` (with and without `/v1`, and under `/openai/v1`).
//!
//! As in LiteLLM, the id in the path is first checked against its caller (see
//! [`crate::api::response_owner`]: an id bound to another user or team, or an unencrypted id
//! from a non-admin while that check is on, is a 403), then read as a managed id (see
//! [`crate::api::response_id`]): it names the deployment that answered the original call, which
//! is called with the upstream's own id, its own base URL and credentials (Azure keeps its
//! resource-level `/openai/responses/{id}?api-version=...` form). The answer names the response
//! by the id the client used, in the `GET`, `DELETE` and cancel answers alike (LiteLLM issues a
//! fresh id to the caller in the `GET` and cancel answers and leaves the upstream's raw id in
//! the `DELETE` one), so an id the client reads back always works on these routes.
//!
//! Refusals, as LiteLLM words them: an id that is not managed, or names a deployment that no
//! longer exists, is a 400 "There are no healthy deployments for this model" (LiteLLM finds no
//! deployment for `model=None` / the stale id either); a deployment of a provider without the
//! Responses API is a 400. Unlike LiteLLM, which checks no model on these routes, a key must be
//! allowed the deployment's model group (the same 401 as for a call to it).
//!
//! As for any LLM route, the caller's budgets (proxy, key, team, user) must not be exhausted,
//! and the call takes one request from the caller's rate limits (key, user, team, proxy-wide;
//! no tokens) and counts in the proxy's request metrics. The calls are not charged and write
//! no spend-log row: they produce no tokens. A deployment with `mock_response` answers offline:
//! `GET` a completed response with its mock text (no content is stored, so it is the
//! deployment's canned answer, not a record of the original call), `DELETE` a deletion,
//! `input_items` an empty list, cancel the same completed response (nothing is in progress to
//! cancel). LiteLLM has no mock for these routes.
//!
//! The client's query string (`include[]`, `limit`, `order`, `after`, `stream`, ...) goes
//! upstream as sent (LiteLLM drops it and sends its own `limit=20&order=desc` for
//! `input_items`); a `GET ... ?stream=true` answered with events is forwarded as a stream.

use super::llm::{
    acquire_limits, check_model_access, decorate, error_chain, json_bytes_response, json_response,
    read_limited, sse_response, timeout_error, with_headers,
};
use crate::api::response_id::{self, Issuer};
use crate::error::{ApiError, ApiResult, ErrorClass};
use crate::middleware::auth::AuthCtx;
use crate::middleware::request_ctx::RequestCtx;
use crate::providers::openai::response_item_request;
use crate::providers::stream::{self, ChatStream, Encoder, StreamTap};
use crate::providers::{client, mock, Provider};
use crate::routing::Deployment;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use serde_json::{json, Value};
use std::time::Instant;

/// Which follow-up call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Delete,
    InputItems,
    Cancel,
}

impl Op {
    /// The operation whose `as u8` value is `code` (see [`stored_response_handler`]).
    const fn of(code: u8) -> Self {
        match code {
            c if c == Self::Delete as u8 => Self::Delete,
            c if c == Self::InputItems as u8 => Self::InputItems,
            c if c == Self::Cancel as u8 => Self::Cancel,
            _ => Self::Get,
        }
    }

    fn method(self) -> Method {
        match self {
            Self::Get | Self::InputItems => Method::GET,
            Self::Delete => Method::DELETE,
            Self::Cancel => Method::POST,
        }
    }

    /// What follows the id in the upstream path.
    fn suffix(self) -> &'static str {
        match self {
            Self::Get | Self::Delete => "",
            Self::InputItems => "/input_items",
            Self::Cancel => "/cancel",
        }
    }

    /// The call's name in LiteLLM's "not supported" message.
    fn label(self) -> &'static str {
        match self {
            Self::Get => "GET responses",
            Self::Delete => "DELETE responses",
            Self::InputItems => "list_input_items",
            Self::Cancel => "CANCEL responses",
        }
    }

    /// Whether the answer's `id` is a response id (the input-items list holds item ids).
    fn answers_a_response(self) -> bool {
        self != Self::InputItems
    }
}

/// The routes on a stored response, one instance per [`Op`] (`OP` is its `as u8` value).
pub async fn stored_response_handler<const OP: u8>(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Extension(auth): Extension<AuthCtx>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = Call {
        state: &state,
        ctx: &ctx,
        auth: &auth,
    };
    call.answer(Op::of(OP), &id, query.as_deref(), &uri, &headers)
        .await
}

/// One call on a stored response: its context and caller.
struct Call<'a> {
    state: &'a AppState,
    ctx: &'a RequestCtx,
    auth: &'a AuthCtx,
}

impl Call<'_> {
    /// The answer, counted in the proxy's request metrics like any LLM route's.
    async fn answer(
        &self,
        op: Op,
        id: &str,
        query: Option<&str>,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Response {
        let r = follow_up(self.state, self.ctx, self.auth, op, id, query)
            .await
            .unwrap_or_else(|e| {
                let mut r = e.into_response();
                r.headers_mut().insert(
                    "x-litellm-response-cost",
                    axum::http::HeaderValue::from_static("0"),
                );
                r
            });
        if let Some(m) = &self.state.metrics {
            m.proxy_request(Some(self.auth), uri.path(), headers, None, &r);
        }
        r
    }
}

/// LiteLLM's answer when no deployment serves `model` (`None` for an id that names none).
fn no_deployment(model: &str) -> ApiError {
    ApiError::bad_request(format!(
        "litellm.BadRequestError: You passed in model={model}. There are no healthy deployments for this model"
    ))
}

async fn follow_up(
    state: &AppState,
    ctx: &RequestCtx,
    auth: &AuthCtx,
    op: Op,
    id: &str,
    query: Option<&str>,
) -> ApiResult<Response> {
    // LiteLLM's order: the budgets (checked as the caller is authenticated), the rate limits
    // and then the id's owner (its pre-call hooks), and only then the deployment.
    crate::spend::call::check_owner_budgets(state, auth)?;
    let mut descs = state.global_limits.clone();
    descs.extend(auth.rate_limits.iter().cloned());
    let (_permit, limit_headers) = if descs.is_empty() {
        (None, Vec::new())
    } else {
        acquire_limits(state, descs, 0).await?
    };
    let security = &state.response_ids;
    let caller = security.caller(auth);
    let addressed = security.authorize(id, &caller)?;
    let managed = response_id::decode(&addressed);
    let Some((model_id, upstream_id)) = managed
        .as_ref()
        .and_then(|m| Some((m.model_id.as_deref()?, m.response_id.as_str())))
    else {
        return Err(no_deployment("None"));
    };
    let router = state.router.load_full();
    let d = router
        .all_deployments()
        .find(|d| d.id == model_id)
        .cloned()
        .ok_or_else(|| no_deployment(model_id))?;
    let group = router
        .group(&d.model_name)
        .ok_or_else(|| no_deployment(model_id))?;
    check_model_access(auth, group, &d.model_name)?;
    // The answer names the response by the id the client used (OpenAI's own answers repeat
    // the id asked for); any other response id in it is issued to this caller.
    let ids = Issuer::new(d.provider.name(), &d.id)
        .bound(security.binding(&caller))
        .echoing(upstream_id, id);
    if let Some(mock_value) = &d.mock_response {
        let mut r = mock_answer(op, &d, &ids, upstream_id, mock_value)?;
        decorate(&mut r, ctx, &d, &d.model_name, 0.0, &HeaderMap::new());
        return Ok(with_headers(r, limit_headers));
    }
    if !d.provider.speaks_openai() {
        return Err(ApiError::bad_request(format!(
            "litellm.BadRequestError: {} is not supported for {}",
            op.label(),
            d.provider.name()
        )));
    }
    let body = if op == Op::Cancel {
        Bytes::from_static(b"{}")
    } else {
        Bytes::new()
    };
    let up = response_item_request(&d, upstream_id, op.suffix(), query, body)?;
    let timeout = d.timeout.unwrap_or(state.default_timeout);
    let sent_at = Instant::now();
    let sent = tokio::time::timeout(timeout, state.upstream.send(op.method(), up)).await;
    let (head, resp) = match sent {
        Err(_) => return Err(timeout_error(d.provider, timeout)),
        Ok(Err(e)) => return Err(connection_error(d.provider, e.as_ref())),
        Ok(Ok(r)) => r.into_parts(),
    };
    let left = timeout.saturating_sub(sent_at.elapsed());
    if !head.status.is_success() {
        let bytes = read_limited(resp, left, d.provider, state.max_response_bytes).await?;
        return Err(crate::providers::map_error(
            d.provider,
            head.status.as_u16(),
            &bytes,
        ));
    }
    let is_stream = head
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let mut r = if is_stream {
        streamed(&d, ids, resp, left, timeout).await?
    } else {
        let bytes = read_limited(resp, left, d.provider, state.max_response_bytes).await?;
        let body = if op.answers_a_response() {
            ids.body(&bytes).0
        } else {
            None
        };
        json_bytes_response(body.unwrap_or_else(|| bytes.to_vec()))
    };
    let upstream_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
    decorate(&mut r, ctx, &d, &d.model_name, upstream_ms, &head.headers);
    Ok(with_headers(r, limit_headers))
}

fn connection_error(provider: Provider, e: &(dyn std::error::Error + Send + Sync)) -> ApiError {
    ApiError::new(
        ErrorClass::ApiConnection,
        format!(
            "litellm.APIConnectionError: APIConnectionError: {} - Connection error: {}",
            provider.exception_label(),
            error_chain(e)
        ),
    )
}

/// A `GET ?stream=true` answered with events: forwarded as they come, the response object's id
/// managed, nothing accounted.
async fn streamed(
    d: &Deployment,
    ids: Issuer,
    resp: client::Body,
    first_event_within: std::time::Duration,
    idle: std::time::Duration,
) -> ApiResult<Response> {
    let s = ChatStream::new(
        client::body_stream(resp),
        stream::Dialect::responses_raw(Some(ids)),
        Encoder::Passthrough,
        Some(d.stream_timeout.unwrap_or(idle)),
        StreamTap::new(None),
        d.provider,
    );
    let body = match tokio::time::timeout(first_event_within, stream::open(s)).await {
        Ok(r) => r?,
        Err(_) => return Err(timeout_error(d.provider, idle)),
    };
    Ok(sse_response(Body::from_stream(body)))
}

/// The offline answer of a `mock_response` deployment (see the module header).
fn mock_answer(
    op: Op,
    d: &Deployment,
    ids: &Issuer,
    upstream_id: &str,
    mock_value: &Value,
) -> ApiResult<Response> {
    if let Some(e) = mock::mock_error(mock_value, &d.model_name) {
        return Err(e);
    }
    Ok(match op {
        Op::Get | Op::Cancel => {
            let mut r = mock::responses_response(mock_value, &d.model_name);
            r.insert("id".into(), Value::String(upstream_id.to_string()));
            ids.object(&mut r);
            json_response(&r)
        }
        Op::Delete => {
            let id = ids
                .id_for(upstream_id)
                .unwrap_or_else(|| upstream_id.to_string());
            json_bytes_response(
                json!({"id": id, "object": "response", "deleted": true})
                    .to_string()
                    .into_bytes(),
            )
        }
        Op::InputItems => json_bytes_response(
            json!({"object": "list", "data": [], "first_id": null, "last_id": null, "has_more": false})
                .to_string()
                .into_bytes(),
        ),
    })
}

/// `POST /responses/input_tokens` (with and without `/v1`, and under `/openai/v1`): the input
/// tokens of a Responses API request, without calling the model. As in LiteLLM, a deployment
/// of OpenAI itself counts them (its own `/responses/input_tokens`); any other deployment, a
/// `mock_response` one, or an OpenAI deployment whose count fails, gets a local estimate
/// (about four characters a token, over `instructions`, `input` and `tools`; LiteLLM uses a
/// tokenizer, and asks Anthropic, Gemini and Bedrock deployments to count). The answer is
/// `{"object": "response.input_tokens", "input_tokens": n, "litellm_count_source": ...}`
/// (`provider` or `local_estimate`). The key must be allowed the model; nothing is charged or
/// rate limited (LiteLLM runs no pre-call hooks here).
pub async fn input_tokens_handler(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthCtx>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(input_tokens(&state, &auth, &headers, body).await)
}

fn respond(r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// LiteLLM's 400 for a missing or empty parameter of this route: OpenAI's own error, whose
/// `code` names the problem (not the status, as the gateway's other errors do).
fn missing(message: &str, param: Option<&str>) -> Response {
    let body = json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": "missing_required_parameter",
    }});
    let mut r = json_bytes_response(body.to_string().into_bytes());
    *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    r
}

async fn input_tokens(
    state: &AppState,
    auth: &AuthCtx,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    const ROUTE: &str = "/responses/input_tokens";
    let bytes = super::read_body(headers, body, state.max_request_bytes).await?;
    let body = super::parse_object(&bytes)?;
    let Some(model) = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    else {
        return Ok(missing(
            "Missing required parameter: 'model'.",
            Some("model"),
        ));
    };
    let input = match body.get("input") {
        None | Some(Value::Null) => {
            return Ok(missing(
                "Missing required parameter: 'input'.",
                Some("input"),
            ))
        }
        Some(v) => v,
    };
    let empty = match input {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if empty {
        return Ok(missing(
            r#"One of "input" or "previous_response_id" or 'prompt' or 'conversation' must be provided."#,
            None,
        ));
    }
    let router = state.router.load_full();
    let resolved = super::llm::resolve_for(&router, auth, ROUTE, model)?;
    let counted = match resolved.group.pick(&[]) {
        Some(d) if d.provider == Provider::OpenAi && d.mock_response.is_none() => {
            let upstream_model = d.upstream_model_for(resolved.capture.as_deref());
            provider_count(state, d, &upstream_model, &body).await
        }
        _ => None,
    };
    let (n, source) = match counted {
        Some(n) => (n, "provider"),
        None => (estimate_input_tokens(&body), "local_estimate"),
    };
    Ok(json_response(&serde_json::Map::from_iter([
        ("object".to_string(), json!("response.input_tokens")),
        ("input_tokens".to_string(), json!(n)),
        ("litellm_count_source".to_string(), json!(source)),
    ])))
}

/// The count of an OpenAI deployment's own `/responses/input_tokens`, or `None` when it does
/// not answer with one (the caller then estimates).
async fn provider_count(
    state: &AppState,
    d: &Deployment,
    upstream_model: &str,
    body: &serde_json::Map<String, Value>,
) -> Option<u64> {
    let mut sent = serde_json::Map::new();
    sent.insert("model".into(), Value::String(upstream_model.to_string()));
    for k in ["input", "instructions", "tools"] {
        if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
            sent.insert(k.into(), v.clone());
        }
    }
    let payload = Bytes::from(serde_json::to_vec(&sent).ok()?);
    let up = response_item_request(d, "input_tokens", "", None, payload).ok()?;
    let timeout = d.timeout.unwrap_or(state.default_timeout);
    let sent_at = Instant::now();
    let (head, resp) = tokio::time::timeout(timeout, state.upstream.send(Method::POST, up))
        .await
        .ok()?
        .ok()?
        .into_parts();
    let left = timeout.saturating_sub(sent_at.elapsed());
    let bytes = read_limited(resp, left, d.provider, state.max_response_bytes)
        .await
        .ok()?;
    if !head.status.is_success() {
        tracing::debug!(
            "input token count of deployment {} failed with {}; estimating",
            d.id,
            head.status
        );
        return None;
    }
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("input_tokens")?
        .as_u64()
}

/// About four characters a token over what the model reads: `instructions`, `input`, `tools`.
fn estimate_input_tokens(body: &serde_json::Map<String, Value>) -> u64 {
    let mut counted = serde_json::Map::new();
    for (from, to) in [
        ("instructions", "system"),
        ("input", "messages"),
        ("tools", "tools"),
    ] {
        if let Some(v) = body.get(from) {
            counted.insert(to.into(), v.clone());
        }
    }
    crate::api::messages::estimate_input_tokens(&counted)
}
