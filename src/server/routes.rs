//! Every path the gateway answers, in one table, and the layer stack around them.
//!
//! Paths exist with and without `/v1`, plus the Azure-style `/openai/deployments/{model}/...`
//! and `/engines/{model}/...` forms, as in LiteLLM. Auth is deny-by-default: public routes are
//! listed in `middleware::auth::is_public_route`, everything else needs a key.
//!
//! Layer order, outer to inner: CORS -> `track_request` (inserts `RequestCtx`) ->
//! `require_auth` (inserts `AuthCtx`) -> handler.

use crate::error::ApiError;
use crate::handlers::{health, keys, llm, model_admin, models, spend, teams, users};
use crate::middleware::{auth, request_ctx};
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::Router;
use tower_http::cors::CorsLayer;

pub fn build_app(state: AppState) -> Router {
    let mut r = Router::new();
    for prefix in ["", "/v1"] {
        r = r
            .route(
                &format!("{prefix}/chat/completions"),
                post(llm::chat_completions_handler),
            )
            .route(
                &format!("{prefix}/completions"),
                post(llm::completions_handler),
            )
            .route(
                &format!("{prefix}/embeddings"),
                post(llm::embeddings_handler),
            )
            .route(
                &format!("{prefix}/models"),
                get(models::list_models_handler),
            )
            .route(
                &format!("{prefix}/models/{{*model_id}}"),
                get(models::get_model_handler),
            )
            .route(
                &format!("{prefix}/model/info"),
                get(models::model_info_handler),
            );
    }
    for base in ["/openai/deployments", "/engines"] {
        r = r
            .route(
                &format!("{base}/{{model}}/chat/completions"),
                post(llm::chat_completions_for_model_handler),
            )
            .route(
                &format!("{base}/{{model}}/completions"),
                post(llm::completions_for_model_handler),
            )
            .route(
                &format!("{base}/{{model}}/embeddings"),
                post(llm::embeddings_for_model_handler),
            );
    }
    r = r
        .route("/v1/messages", post(llm::messages_handler))
        .route("/rerank", post(llm::rerank_handler))
        .route("/v1/rerank", post(llm::rerank_handler))
        .route("/v2/rerank", post(llm::rerank_handler))
        .route("/v1/messages/count_tokens", post(llm::count_tokens_handler))
        .route("/health", get(health::health_handler))
        .route("/health/liveliness", get(health::liveliness_handler))
        .route("/health/liveness", get(health::liveliness_handler))
        .route("/health/readiness", get(health::readiness_handler))
        .route("/test", get(health::test_handler))
        .route("/key/generate", post(keys::generate_key_handler))
        .route("/key/info", get(keys::key_info_handler))
        .route("/key/update", post(keys::update_key_handler))
        .route("/key/delete", post(keys::delete_key_handler))
        .route("/key/list", get(keys::list_keys_handler))
        .route("/key/block", post(keys::block_key_handler))
        .route("/key/unblock", post(keys::unblock_key_handler))
        .route("/key/regenerate", post(keys::regenerate_key_handler))
        .route("/user/new", post(users::new_user_handler))
        .route("/user/info", get(users::user_info_handler))
        .route("/user/update", post(users::update_user_handler))
        .route("/user/delete", post(users::delete_user_handler))
        .route("/user/list", get(users::list_users_handler))
        .route("/team/new", post(teams::new_team_handler))
        .route("/team/info", get(teams::team_info_handler))
        .route("/team/update", post(teams::update_team_handler))
        .route("/team/delete", post(teams::delete_team_handler))
        .route("/team/list", get(teams::list_teams_handler))
        .route("/team/member_add", post(teams::member_add_handler))
        .route("/team/member_delete", post(teams::member_delete_handler))
        .route("/team/block", post(teams::block_team_handler))
        .route("/team/unblock", post(teams::unblock_team_handler))
        .route("/team/model/add", post(teams::model_add_handler))
        .route("/team/model/delete", post(teams::model_delete_handler))
        .route("/model/new", post(model_admin::new_model_handler))
        .route("/model/update", post(model_admin::update_model_handler))
        .route(
            "/model/{model_id}/update",
            patch(model_admin::patch_model_handler),
        )
        .route("/model/delete", post(model_admin::delete_model_handler))
        .route("/spend/logs", get(spend::spend_logs_handler))
        .route("/global/spend", get(spend::global_spend_handler))
        .route("/", get(health::root_handler))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);

    r.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_auth,
    ))
    .layer(axum::middleware::from_fn(request_ctx::track_request))
    .layer(CorsLayer::very_permissive())
    // Handlers enforce `max_request_size_mb` themselves, with an OpenAI-shaped 413.
    .layer(DefaultBodyLimit::disable())
    .with_state(state)
}

async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    let mut e = ApiError::new(
        crate::error::ErrorClass::BadRequest,
        format!("Method {method} is not allowed on {}", uri.path()),
    );
    e.status_override = Some(axum::http::StatusCode::METHOD_NOT_ALLOWED);
    e.into_response()
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    ApiError::not_found(format!("Route not found: {}", uri.path())).into_response()
}
