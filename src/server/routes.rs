//! Every path the gateway answers, in one table, and the layer stack around them.
//!
//! Paths exist with and without `/v1`, plus the Azure-style `/openai/deployments/{model}/...`
//! and `/engines/{model}/...` forms, as in LiteLLM. Auth is deny-by-default: public routes are
//! listed in `middleware::auth::is_public_route`, everything else needs a key.
//!
//! Pass-through: the provider prefixes (`/openai/{*endpoint}`, `/anthropic/...`) are routes
//! here; the configured `pass_through_endpoints` are served by the fallback.
//!
//! Layer order, outer to inner: CORS (only for requests that carry an `Origin`) ->
//! `track_request` (inserts `RequestCtx`) -> `require_auth` (inserts `AuthCtx`) -> handler.
//! `POST` to `/chat/completions`, `/completions` and `/embeddings` (with or without `/v1`) is
//! served ahead of the router by the same functions (see `direct_route`).

use crate::error::ApiError;
use crate::handlers::{
    budgets, cache_admin, customers, daily_activity, health, keys, llm, model_admin, models,
    organizations, passthrough, responses, spend, spend_reports, tags, teams, users,
};
use crate::middleware::{auth, request_ctx};
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use futures::future::Either;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{Cors, CorsLayer};

/// The whole app as a router (for embedding and tests); the server itself serves [`front`]
/// without this outer router's path matching.
pub fn build_app(state: AppState) -> Router {
    Router::new().fallback_service(front(state))
}

/// The service the server runs: every route, with LLM calls dispatched ahead of the router.
pub(crate) fn front(state: AppState) -> Front {
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
                &format!("{prefix}/images/generations"),
                post(llm::image_generations_handler),
            )
            .route(
                &format!("{prefix}/moderations"),
                post(llm::moderations_handler),
            )
            .route(&format!("{prefix}/audio/speech"), post(llm::speech_handler))
            .route(
                &format!("{prefix}/audio/transcriptions"),
                post(llm::transcriptions_handler),
            )
            .route(
                &format!("{prefix}/images/edits"),
                post(llm::image_edits_handler),
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
    // The Responses API's routes on a stored response, under every prefix LiteLLM serves.
    for prefix in ["", "/v1", "/openai/v1"] {
        r = r
            .route(
                &format!("{prefix}/responses/input_tokens"),
                post(responses::input_tokens_handler),
            )
            .route(
                &format!("{prefix}/responses/{{response_id}}"),
                get(responses::stored_response_handler::<{ responses::Op::Get as u8 }>)
                    .delete(responses::stored_response_handler::<{ responses::Op::Delete as u8 }>),
            )
            .route(
                &format!("{prefix}/responses/{{response_id}}/input_items"),
                get(responses::stored_response_handler::<{ responses::Op::InputItems as u8 }>),
            )
            .route(
                &format!("{prefix}/responses/{{response_id}}/cancel"),
                post(responses::stored_response_handler::<{ responses::Op::Cancel as u8 }>),
            );
    }
    // Customers answer under LiteLLM's current `/customer/*` paths and the older `/end_user/*`.
    for base in ["/customer", "/end_user"] {
        r = r
            .route(
                &format!("{base}/new"),
                post(customers::new_customer_handler),
            )
            .route(
                &format!("{base}/info"),
                get(customers::customer_info_handler),
            )
            .route(
                &format!("{base}/update"),
                post(customers::update_customer_handler),
            )
            .route(
                &format!("{base}/delete"),
                post(customers::delete_customer_handler),
            )
            .route(
                &format!("{base}/list"),
                get(customers::list_customers_handler),
            )
            .route(
                &format!("{base}/block"),
                post(customers::block_customers_handler),
            )
            .route(
                &format!("{base}/unblock"),
                post(customers::unblock_customers_handler),
            );
    }
    r = r
        .route("/v2/model/info", get(models::model_info_v2_handler))
        .route("/model_group/info", get(models::model_group_info_handler))
        .route(
            "/utils/supported_openai_params",
            get(models::supported_openai_params_handler),
        )
        .route(
            "/openai/deployments/{model}/images/generations",
            post(llm::image_generations_for_model_handler),
        )
        .route(
            "/openai/deployments/{model}/images/edits",
            post(llm::image_edits_for_model_handler),
        )
        .route("/v1/messages", post(llm::messages_handler))
        .route("/responses", post(llm::responses_handler))
        .route("/v1/responses", post(llm::responses_handler))
        .route("/openai/v1/responses", post(llm::responses_handler))
        .route("/responses/compact", post(llm::compact_responses_handler))
        .route(
            "/v1/responses/compact",
            post(llm::compact_responses_handler),
        )
        .route(
            "/openai/v1/responses/compact",
            post(llm::compact_responses_handler),
        )
        .route("/rerank", post(llm::rerank_handler))
        .route("/v1/rerank", post(llm::rerank_handler))
        .route("/v2/rerank", post(llm::rerank_handler))
        .route("/v1/messages/count_tokens", post(llm::count_tokens_handler))
        .route("/health", get(health::health_handler))
        .route("/health/liveliness", get(health::liveliness_handler))
        .route("/health/liveness", get(health::liveliness_handler))
        .route("/health/readiness", get(health::readiness_handler))
        .route("/health/latest", get(health::latest_handler))
        .route("/health/history", get(health::history_handler))
        .route(
            "/health/readiness/details",
            get(health::readiness_details_handler),
        )
        .route("/test", get(health::test_handler))
        .route("/key/generate", post(keys::generate_key_handler))
        .route(
            "/key/info",
            get(keys::key_info_handler).post(keys::key_info_many_handler),
        )
        .route("/v2/key/info", post(keys::key_info_many_handler))
        .route(
            "/key/service-account/generate",
            post(keys::generate_service_account_key_handler),
        )
        .route("/key/update", post(keys::update_key_handler))
        .route("/key/bulk_update", post(keys::bulk_update_keys_handler))
        .route("/key/delete", post(keys::delete_key_handler))
        .route("/key/list", get(keys::list_keys_handler))
        .route("/key/aliases", get(keys::key_aliases_handler))
        .route("/key/health", post(keys::key_health_handler))
        .route("/key/block", post(keys::block_key_handler))
        .route("/key/unblock", post(keys::unblock_key_handler))
        .route("/key/regenerate", post(keys::regenerate_key_handler))
        .route(
            "/key/{key}/regenerate",
            post(keys::regenerate_key_by_path_handler),
        )
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
        .route("/team/available", get(teams::available_teams_handler))
        .route("/team/member_add", post(teams::member_add_handler))
        .route("/team/member_delete", post(teams::member_delete_handler))
        .route("/team/member_update", post(teams::member_update_handler))
        .route("/v2/team/list", get(teams::list_teams_v2_handler))
        .route("/team/block", post(teams::block_team_handler))
        .route("/team/unblock", post(teams::unblock_team_handler))
        .route("/team/model/add", post(teams::model_add_handler))
        .route("/team/model/delete", post(teams::model_delete_handler))
        .route(
            "/key/{key}/reset_spend",
            post(spend::reset_key_spend_handler),
        )
        .route(
            "/organization/new",
            post(organizations::new_organization_handler),
        )
        .route(
            "/organization/update",
            patch(organizations::update_organization_handler),
        )
        .route(
            "/organization/delete",
            delete(organizations::delete_organization_handler),
        )
        .route(
            "/organization/info",
            get(organizations::organization_info_handler)
                .post(organizations::organizations_info_handler),
        )
        .route(
            "/organization/list",
            get(organizations::list_organizations_handler),
        )
        .route(
            "/organization/member_add",
            post(organizations::org_member_add_handler),
        )
        .route(
            "/organization/member_update",
            patch(organizations::org_member_update_handler),
        )
        .route(
            "/organization/member_delete",
            delete(organizations::org_member_delete_handler),
        )
        .route("/budget/new", post(budgets::new_budget_handler))
        .route("/budget/update", post(budgets::update_budget_handler))
        .route("/budget/info", post(budgets::budget_info_handler))
        .route("/budget/list", get(budgets::list_budgets_handler))
        .route("/budget/delete", post(budgets::delete_budget_handler))
        .route("/budget/settings", get(budgets::budget_settings_handler))
        .route("/tag/new", post(tags::new_tag_handler))
        .route("/tag/update", post(tags::update_tag_handler))
        .route("/tag/info", post(tags::tag_info_handler))
        .route("/tag/list", get(tags::list_tags_handler))
        .route("/tag/delete", post(tags::delete_tag_handler))
        .route("/model/new", post(model_admin::new_model_handler))
        .route("/model/update", post(model_admin::update_model_handler))
        .route(
            "/model/{model_id}/update",
            patch(model_admin::patch_model_handler),
        )
        .route("/model/delete", post(model_admin::delete_model_handler))
        .route("/cache/ping", get(cache_admin::ping_handler))
        .route("/cache/redis/info", get(cache_admin::redis_info_handler))
        .route("/cache/delete", post(cache_admin::delete_handler))
        .route("/cache/flushall", post(cache_admin::flushall_handler))
        .route("/spend/logs", get(spend::spend_logs_handler))
        .route("/spend/logs/v2", get(spend::spend_logs_v2_handler))
        .route("/spend/calculate", post(spend::calculate_spend_handler))
        .route("/spend/tags", get(spend_reports::spend_tags_handler))
        .route("/global/spend", get(spend::global_spend_handler))
        .route("/global/spend/logs", get(spend::global_spend_logs_handler))
        .route(
            "/global/spend/reset",
            post(spend::global_spend_reset_handler),
        )
        .route(
            "/global/spend/tags",
            get(spend_reports::global_spend_tags_handler),
        )
        .route(
            "/global/spend/report",
            get(spend_reports::global_spend_report_handler),
        )
        .route(
            "/global/spend/keys",
            get(spend_reports::global_spend_keys_handler),
        )
        .route(
            "/global/spend/teams",
            get(spend_reports::global_spend_teams_handler),
        )
        .route(
            "/global/spend/models",
            get(spend_reports::global_spend_models_handler),
        )
        .route(
            "/global/spend/end_users",
            post(spend_reports::global_spend_end_users_handler),
        )
        .route(
            "/key/spend/report",
            get(spend_reports::key_spend_report_handler),
        )
        .route(
            "/user/spend/report",
            get(spend_reports::user_spend_report_handler),
        )
        .route(
            "/team/spend/report",
            get(spend_reports::team_spend_report_handler),
        )
        .route(
            "/user/daily/activity",
            get(daily_activity::user_daily_activity_handler),
        )
        .route(
            "/team/daily/activity",
            get(daily_activity::team_daily_activity_handler),
        )
        .route(
            "/organization/daily/activity",
            get(daily_activity::organization_daily_activity_handler),
        )
        .route(
            "/tag/daily/activity",
            get(daily_activity::tag_daily_activity_handler),
        )
        .route(
            "/customer/daily/activity",
            get(daily_activity::customer_daily_activity_handler),
        )
        .route(
            "/end_user/daily/activity",
            get(daily_activity::customer_daily_activity_handler),
        )
        .route("/", get(health::root_handler));
    // Provider pass-through (`crate::passthrough::providers`): everything under each prefix
    // that no route above serves (a static segment wins over the catch-all).
    for (prefix, _) in crate::passthrough::providers::ROUTES {
        let h = passthrough::provider_handler;
        r = r.route(
            &format!("/{prefix}/{{*endpoint}}"),
            get(h).post(h).put(h).delete(h).patch(h),
        );
    }
    if state.metrics.is_some() {
        r = r
            .route("/metrics", get(health::metrics_handler))
            .route("/metrics/", get(health::metrics_handler));
    }
    let r = r
        .fallback(passthrough::fallback_handler)
        .method_not_allowed_fallback(method_not_allowed);

    // Auth wraps the matched routes only: a path that is not served answers 404 to anyone,
    // as LiteLLM's does, rather than asking for a key first. The fallback serves the custom
    // `pass_through_endpoints` routes (built-in routes win over them) and authenticates them
    // itself.
    let app = r
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ))
        .layer(axum::middleware::from_fn(request_ctx::track_request))
        // Handlers enforce `max_request_size_mb` themselves, with an OpenAI-shaped 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(state.clone());
    Front::new(app, state)
}

/// The LLM calls served ahead of the router: `POST` to these paths goes straight to the
/// handler with the same context, auth and access log as the layers above would give it,
/// without the router's own per-request work (path matching, two boxed middleware futures,
/// extension maps: about 8% of a call). The same paths stay in the table above, which is what
/// answers browsers (CORS) and any other method.
fn direct_route(method: &axum::http::Method, path: &str) -> Option<llm::CallKind> {
    if method != axum::http::Method::POST {
        return None;
    }
    match path.strip_prefix("/v1").unwrap_or(path) {
        "/chat/completions" => Some(llm::CallKind::Chat),
        "/completions" => Some(llm::CallKind::Completion),
        "/embeddings" => Some(llm::CallKind::Embedding),
        _ => None,
    }
}

/// In front of the router: permissive CORS, as LiteLLM's default, for requests with an
/// `Origin` header (browsers); SDK and server-side calls pass through without it, as they do
/// through LiteLLM's CORS middleware, skipping the CORS layer's per-request work. LLM calls
/// without an `Origin` take [`direct_route`].
///
/// The server clones the service for every request, so its parts sit behind one `Arc`: a clone
/// is one reference count, where cloning the CORS layer's settings allocated and freed a list.
#[derive(Clone)]
pub(crate) struct Front(Arc<FrontParts>);

struct FrontParts {
    plain: Router,
    cors: Cors<Router>,
    state: AppState,
}

impl Front {
    fn new(app: Router, state: AppState) -> Self {
        Self(Arc::new(FrontParts {
            cors: CorsLayer::very_permissive().layer(app.clone()),
            plain: app,
            state,
        }))
    }
}

type DirectFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service<axum::extract::Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        Oneshot<Cors<Router>, axum::extract::Request>,
        Either<Oneshot<Router, axum::extract::Request>, DirectFuture>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is checked on the chosen service by `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::extract::Request) -> Self::Future {
        if req.headers().contains_key(axum::http::header::ORIGIN) {
            return Either::Left(self.0.cors.clone().oneshot(req));
        }
        match direct_route(req.method(), req.uri().path()) {
            Some(kind) => {
                let state = self.0.state.clone();
                Either::Right(Either::Right(Box::pin(futures::FutureExt::map(
                    llm::serve_direct(state, kind, req),
                    Ok,
                ))))
            }
            None => Either::Right(Either::Left(self.0.plain.clone().oneshot(req))),
        }
    }
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
