//! The Responses API's follow-up routes on a stored response: `GET` and `DELETE
//! /responses/{response_id}`, `GET /responses/{response_id}/input_items` and `POST
//! /responses/{response_id}/cancel` (with and without `/v1`, and under `/openai/v1`).
//!
//! As in LiteLLM, the id in the path is a managed id (see [`crate::api::response_id`]): it names
//! the deployment that answered the original call, which is called with the upstream's own id,
//! its own base URL and credentials (Azure keeps its resource-level
//! `/openai/responses/{id}?api-version=...` form). The `id` of a returned response object is
//! managed again. LiteLLM leaves it raw in the `DELETE` and cancel answers; here it is managed in
//! all three, so an id the client reads back always works on these routes.
//!
//! Refusals, as LiteLLM words them: an id that is not managed, or names a deployment that no
//! longer exists, is a 400 "There are no healthy deployments for this model" (LiteLLM finds no
//! deployment for `model=None` / the stale id either); a deployment of a provider without the
//! Responses API is a 400. Unlike LiteLLM, which checks no model on these routes, a key must be
//! allowed the deployment's model group (the same 401 as for a call to it).
//!
//! These calls are neither charged nor rate limited and write no spend-log row: they produce no
//! tokens. A deployment with `mock_response` answers offline: `GET` a completed response with
//! its mock text (no content is stored, so it is the deployment's canned answer, not a record
//! of the original call), `DELETE` a deletion, `input_items` an empty list, cancel the same
//! completed response (nothing is in progress to cancel). LiteLLM has no mock for these routes.
//!
//! The client's query string (`include[]`, `limit`, `order`, `after`, `stream`, ...) goes
//! upstream as sent (LiteLLM drops it and sends its own `limit=20&order=desc` for
//! `input_items`); a `GET ... ?stream=true` answered with events is forwarded as a stream.

use super::llm::{
    check_model_access, decorate, error_chain, json_bytes_response, json_response, read_limited,
    sse_response, timeout_error,
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
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use serde_json::{json, Value};
use std::time::Instant;

/// Which follow-up call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Delete,
    InputItems,
    Cancel,
}

impl Op {
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

pub async fn get_response_handler(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Extension(auth): Extension<AuthCtx>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    respond(follow_up(&state, &ctx, &auth, Op::Get, &id, query.as_deref()).await)
}

pub async fn delete_response_handler(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Extension(auth): Extension<AuthCtx>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    respond(follow_up(&state, &ctx, &auth, Op::Delete, &id, query.as_deref()).await)
}

pub async fn input_items_handler(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Extension(auth): Extension<AuthCtx>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    respond(follow_up(&state, &ctx, &auth, Op::InputItems, &id, query.as_deref()).await)
}

pub async fn cancel_response_handler(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    Extension(auth): Extension<AuthCtx>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    respond(follow_up(&state, &ctx, &auth, Op::Cancel, &id, query.as_deref()).await)
}

fn respond(r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
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
    let managed = response_id::decode(id);
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
    let ids = Issuer::new(d.provider.name(), &d.id);
    if let Some(mock_value) = &d.mock_response {
        let mut r = mock_answer(op, &d, &ids, upstream_id, mock_value)?;
        decorate(&mut r, ctx, &d, &d.model_name, 0.0, &HeaderMap::new());
        return Ok(r);
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
    Ok(r)
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
        Op::Delete => json_bytes_response(
            json!({"id": response_id::encode(d.provider.name(), &d.id, upstream_id), "object": "response", "deleted": true})
                .to_string()
                .into_bytes(),
        ),
        Op::InputItems => json_bytes_response(
            json!({"object": "list", "data": [], "first_id": null, "last_id": null, "has_more": false})
                .to_string()
                .into_bytes(),
        ),
    })
}
