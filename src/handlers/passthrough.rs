//! The pass-through routes' handlers: provider routes (`/openai/{*endpoint}`, ...) behind the
//! router's auth layer, and the custom `pass_through_endpoints` routes, looked up where the
//! router finds no route (so built-in routes always win) and authenticated here (an
//! `auth: false` route needs no key). The work is in `crate::passthrough`.

use crate::error::ApiError;
use crate::middleware::auth::{self, AuthCtx};
use crate::middleware::request_ctx::RequestCtx;
use crate::passthrough::{self, custom, providers, Peeked, PEEK_LIMIT};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

/// `/{provider}/{*endpoint}` for the providers in `passthrough::providers::ROUTES`.
pub async fn provider_handler(State(state): State<AppState>, mut req: Request) -> Response {
    let ext = req.extensions_mut();
    let (Some(ctx), Some(auth)) = (ext.remove::<RequestCtx>(), ext.remove::<AuthCtx>()) else {
        return ApiError::internal("request context missing").into_response();
    };
    let call = super::boxed(|| serve_provider(&state, &ctx, &auth, req));
    call.await.unwrap_or_else(passthrough::error_response)
}

async fn serve_provider(
    state: &AppState,
    ctx: &RequestCtx,
    auth: &AuthCtx,
    req: Request,
) -> Result<Response, ApiError> {
    let path = req.uri().path().to_string();
    let Some((kind, rest)) = providers::route_of(&path) else {
        return Err(ApiError::not_found(format!("Route not found: {path}")));
    };
    let presented = presented_key(state, &req);
    let (parts, body) = req.into_parts();
    // A key limited to some models must have the body's `model` checked, whatever its size.
    let restricted = !auth.allowed_models.is_empty()
        || auth
            .organization
            .as_ref()
            .is_some_and(|o| !o.models.is_empty());
    let limit = if restricted {
        state.max_request_bytes
    } else {
        PEEK_LIMIT
    };
    let peeked = passthrough::peek(&parts.headers, body, limit, state.max_request_bytes).await?;
    if let Some(model) = peeked.model() {
        providers::check_model(&state.router.load(), auth, model)?;
    }
    let target = providers::target(
        state,
        auth,
        kind,
        &parts,
        rest,
        &peeked,
        presented.as_deref(),
    )?;
    passthrough::forward(
        state,
        ctx,
        auth,
        parts.method,
        &parts.headers,
        peeked,
        target,
    )
    .await
}

/// The LiteLLM key the request presents, as the auth layer read it.
fn presented_key(state: &AppState, req: &Request) -> Option<String> {
    let custom = state
        .loaded
        .config
        .general_settings
        .litellm_key_header_name
        .as_deref();
    match auth::extract_key(req.headers(), req.uri().query(), req.uri().path(), custom) {
        auth::Presented::Key(k) => Some(k.to_string()),
        _ => None,
    }
}

/// Where the router finds no route: a custom pass-through route, else LiteLLM's 404.
pub async fn fallback_handler(State(state): State<AppState>, mut req: Request) -> Response {
    let path = req.uri().path().to_string();
    let found = state.pass_through.find(req.method(), &path);
    let public = found.as_ref().is_some_and(custom::Found::is_public);
    let (route, below) = match found {
        None => {
            return ApiError::not_found(format!("Route not found: {path}")).into_response();
        }
        Some(custom::Found::WrongMethod) => {
            return passthrough::method_not_allowed(req.method(), &path).into_response();
        }
        Some(custom::Found::Route(r, below)) => (r, below.to_string()),
    };
    let Some(ctx) = req.extensions_mut().remove::<RequestCtx>() else {
        return ApiError::internal("request context missing").into_response();
    };
    let call = super::boxed(|| serve_custom(&state, &ctx, route, &below, public, req));
    call.await.unwrap_or_else(passthrough::error_response)
}

async fn serve_custom(
    state: &AppState,
    ctx: &RequestCtx,
    route: &custom::CustomRoute,
    below: &str,
    public: bool,
    req: Request,
) -> Result<Response, ApiError> {
    let (own, presented) = if public {
        (None, None)
    } else {
        let own = custom::route_key(route, req.headers());
        let presented = own.clone().or_else(|| presented_key(state, &req));
        (own, presented)
    };
    let (parts, body) = req.into_parts();
    let auth = if public {
        anonymous()
    } else {
        let auth = auth::authenticate_pass_through(state, &parts, own.as_deref()).await?;
        custom::authorize(route, &auth, parts.uri.path())?;
        auth
    };
    let peeked: Peeked =
        passthrough::peek(&parts.headers, body, PEEK_LIMIT, state.max_request_bytes).await?;
    let target = custom::target(state, route, below, &parts, &peeked, presented.as_deref())?;
    passthrough::forward(
        state,
        ctx,
        &auth,
        parts.method,
        &parts.headers,
        peeked,
        target,
    )
    .await
}

/// The caller of a public route: no key, no limits, not an admin.
fn anonymous() -> AuthCtx {
    let mut a = AuthCtx::admin(None);
    a.is_admin = false;
    a.user_role = None;
    a
}
