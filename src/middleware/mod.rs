//! Tower layers around every route, outer to inner (see `server::routes::build_app`):
//!
//! 1. CORS (permissive, as LiteLLM's default) for requests with an `Origin`: answers preflights
//!    and adds the CORS headers; other requests skip it.
//! 2. [`request_ctx::track_request`]: assigns the call id, starts the clock, and on the way out
//!    adds `x-litellm-call-id`, `x-litellm-version`, the duration and security headers, and
//!    writes the one access-log line. Inserts [`request_ctx::RequestCtx`].
//! 3. [`auth::require_auth`]: deny by default; public routes are an explicit list. Inserts
//!    [`auth::AuthCtx`].
//!
//! [`end_user`] is not a layer: the LLM handlers resolve the request's end user once the body
//! is parsed (it comes from the body's `user`).

pub mod auth;
pub mod end_user;
pub mod key_routes;
pub mod request_ctx;
