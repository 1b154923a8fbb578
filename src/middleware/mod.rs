//! Tower layers around every route, outer to inner (see `server::routes::build_app`):
//!
//! 1. CORS (permissive, as LiteLLM's default) for requests with an `Origin`: answers preflights
//!    and adds the CORS headers; other requests skip it.
//! 2. [`request_ctx::track_request`]: assigns the call id, starts the clock, and on the way out
//!    adds `x-litellm-call-id`, `x-litellm-version`, the duration and security headers, and
//!    writes the one access-log line. Inserts [`request_ctx::RequestCtx`].
//! 3. [`auth::require_auth`]: deny by default; public routes are an explicit list. The
//!    [`client_ip`] allow-list is checked first, when configured. Inserts [`auth::AuthCtx`].
//!
//! [`end_user`], [`tags`] and [`enforced_params`] are not layers: the LLM handlers resolve the
//! request's end user and tags and check its required fields once the body is parsed.

pub mod auth;
pub mod client_ip;
pub mod end_user;
pub mod enforced_params;
pub mod key_routes;
pub mod request_ctx;
pub mod single_flight;
pub mod tags;
