//! Which routes a virtual key's `allowed_routes` lets it call: LiteLLM's route-group names
//! (`llm_api_routes`, `info_routes`, `management_routes`, ...), the `key_type` presets that set
//! them, and the matching rules.
//!
//! An entry allows a route when it is the route itself or a prefix of it ending at a `/`
//! (`/key` allows `/key/info`), when it names a group that holds the route, or when it ends in
//! `*` and the route starts with what precedes it. Group members may hold `{id}` (one path
//! segment) and `{name:path}` (any text, `/` included) placeholders. An empty list restricts
//! nothing. The check runs for every role, proxy-admin users' keys included; the master key has
//! no row and is never restricted.

use crate::error::ApiError;

/// The route groups a `key_type` preset gives a key (`default` sets none).
pub fn key_type_routes(key_type: &str) -> Option<&'static str> {
    match key_type {
        "llm_api" => Some("llm_api_routes"),
        "management" => Some("management_routes"),
        "read_only" => Some("info_routes"),
        _ => None,
    }
}

/// Route lists a non-admin may put on a key (through `key_type`): LLM calls and read-only views.
pub const NON_ADMIN_PRESETS: [&str; 2] = ["llm_api_routes", "info_routes"];

/// Whether a key restricted to `allowed` may call `route` (a request path).
pub fn may_call(allowed: &[String], route: &str) -> bool {
    if allowed.is_empty() {
        return true;
    }
    allowed.iter().any(|entry| {
        route == entry
            || route
                .strip_prefix(entry.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
            || group(entry).is_some_and(|lists| {
                lists
                    .iter()
                    .any(|list| list.iter().any(|member| member_matches(route, member)))
            })
            || entry
                .strip_suffix('*')
                .is_some_and(|prefix| route.starts_with(prefix))
    })
}

/// LiteLLM's 403 for a route outside the key's `allowed_routes`.
pub fn refused(allowed: &[String], route: &str) -> ApiError {
    crate::handlers::access::forbidden(format!(
        "Virtual key is not allowed to call this route. Only allowed to call routes: {}. Tried to call route: {route}",
        crate::cache::key::py_list(allowed)
    ))
}

/// One member of a group: exact, a `*` prefix, or a template with placeholders.
fn member_matches(route: &str, member: &str) -> bool {
    if let Some(prefix) = member.strip_suffix('*') {
        return route.starts_with(prefix);
    }
    template_matches(route, member)
}

/// `route` against a template whose `{..}` placeholders stand for non-empty text: one path
/// segment, or any text for a `{name:path}` placeholder (which stops where the rest of the
/// template matches, as in `/models/{model_name:path}:generateContent`).
fn template_matches(route: &str, template: &str) -> bool {
    let Some(open) = template.find('{') else {
        return route == template;
    };
    let Some(rest) = route.strip_prefix(&template[..open]) else {
        return false;
    };
    let Some(close) = template[open..].find('}').map(|i| open + i) else {
        return false;
    };
    let any_text = template[open + 1..close].ends_with(":path");
    let after = &template[close + 1..];
    for (end, c) in rest.char_indices().skip(1).chain([(rest.len(), '/')]) {
        if template_matches(&rest[end..], after) {
            return true;
        }
        if c == '/' && !any_text {
            break;
        }
    }
    false
}

/// The member lists of a LiteLLM route group, by name.
fn group(name: &str) -> Option<&'static [&'static [&'static str]]> {
    Some(match name {
        "openai_routes" => &[OPENAI],
        "anthropic_routes" => &[ANTHROPIC],
        "google_routes" => &[GOOGLE],
        "mapped_pass_through_routes" => &[PASS_THROUGH],
        "passthrough_routes_wildcard" => &[PASS_THROUGH_WILDCARD],
        "model_info_routes" => &[MODEL_INFO],
        "llm_api_routes" => &[
            OPENAI,
            ANTHROPIC,
            GOOGLE,
            PASS_THROUGH,
            PASS_THROUGH_WILDCARD,
            MODEL_INFO,
        ],
        "info_routes" => &[INFO],
        "key_management_routes" => &[KEY_MANAGEMENT],
        "management_routes" => &[MANAGEMENT, KEY_MANAGEMENT],
        "spend_tracking_routes" => &[SPEND_TRACKING],
        "global_spend_tracking_routes" => &[GLOBAL_SPEND_TRACKING],
        "master_key_only_routes" => &[MASTER_KEY_ONLY],
        _ => return None,
    })
}

/// `openai_routes`: the OpenAI-compatible API.
const OPENAI: &[&str] = &[
    "/engines/{model}/chat/completions",
    "/openai/deployments/{model}/chat/completions",
    "/chat/completions",
    "/v1/chat/completions",
    "/engines/{model}/completions",
    "/openai/deployments/{model}/completions",
    "/completions",
    "/v1/completions",
    "/engines/{model}/embeddings",
    "/openai/deployments/{model}/embeddings",
    "/embeddings",
    "/v1/embeddings",
    "/images/generations",
    "/v1/images/generations",
    "/images/edits",
    "/v1/images/edits",
    "/videos",
    "/v1/videos",
    "/videos/{video_id}",
    "/v1/videos/{video_id}",
    "/videos/{video_id}/content",
    "/v1/videos/{video_id}/content",
    "/videos/{video_id}/remix",
    "/v1/videos/{video_id}/remix",
    "/audio/transcriptions",
    "/v1/audio/transcriptions",
    "/audio/speech",
    "/v1/audio/speech",
    "/moderations",
    "/v1/moderations",
    "/v1/batches",
    "/batches",
    "/v1/batches/{batch_id}",
    "/batches/{batch_id}",
    "/v1/batches/{batch_id}/cancel",
    "/batches/{batch_id}/cancel",
    "/v1/files",
    "/files",
    "/v1/files/{file_id}",
    "/files/{file_id}",
    "/v1/files/{file_id}/content",
    "/files/{file_id}/content",
    "/fine_tuning/jobs",
    "/v1/fine_tuning/jobs",
    "/fine_tuning/jobs/{fine_tuning_job_id}/cancel",
    "/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel",
    "/assistants",
    "/v1/assistants",
    "/v1/assistants/{assistant_id}",
    "/assistants/{assistant_id}",
    "/threads",
    "/v1/threads",
    "/threads/{thread_id}",
    "/v1/threads/{thread_id}",
    "/threads/{thread_id}/messages",
    "/v1/threads/{thread_id}/messages",
    "/threads/{thread_id}/runs",
    "/v1/threads/{thread_id}/runs",
    "/models",
    "/v1/models",
    "/utils/token_counter",
    "/utils/model_info",
    "/rerank",
    "/v1/rerank",
    "/v2/rerank",
    "/realtime",
    "/v1/realtime",
    "/openai/v1/realtime",
    "/realtime/client_secrets",
    "/v1/realtime/client_secrets",
    "/openai/v1/realtime/client_secrets",
    "/realtime/calls",
    "/v1/realtime/calls",
    "/openai/v1/realtime/calls",
    "/realtime/transcription_sessions",
    "/v1/realtime/transcription_sessions",
    "/openai/v1/realtime/transcription_sessions",
    "/responses",
    "/v1/responses",
    "/openai/v1/responses",
    "/responses/{response_id}",
    "/v1/responses/{response_id}",
    "/openai/v1/responses/{response_id}",
    "/responses/{response_id}/input_items",
    "/v1/responses/{response_id}/input_items",
    "/openai/v1/responses/{response_id}/input_items",
    "/responses/{response_id}/cancel",
    "/v1/responses/{response_id}/cancel",
    "/openai/v1/responses/{response_id}/cancel",
    "/responses/input_tokens",
    "/v1/responses/input_tokens",
    "/openai/v1/responses/input_tokens",
    "/vector_stores",
    "/v1/vector_stores",
    "/vector_stores/{vector_store_id}",
    "/v1/vector_stores/{vector_store_id}",
    "/vector_stores/{vector_store_id}/search",
    "/v1/vector_stores/{vector_store_id}/search",
    "/vector_stores/{vector_store_id}/files",
    "/v1/vector_stores/{vector_store_id}/files",
    "/vector_stores/{vector_store_id}/files/{file_id}",
    "/v1/vector_stores/{vector_store_id}/files/{file_id}",
    "/vector_stores/{vector_store_id}/files/{file_id}/content",
    "/v1/vector_stores/{vector_store_id}/files/{file_id}/content",
    "/vector_store/list",
    "/v1/vector_store/list",
    "/containers",
    "/v1/containers",
    "/containers/*",
    "/v1/containers/*",
];

/// `anthropic_routes`.
const ANTHROPIC: &[&str] = &["/v1/messages", "/v1/messages/count_tokens"];

/// `google_routes`: Google AI Studio's generate and count calls.
const GOOGLE: &[&str] = &[
    "/v1beta/models/{model_name:path}:countTokens",
    "/v1beta/models/{model_name:path}:generateContent",
    "/v1beta/models/{model_name:path}:streamGenerateContent",
    "/models/{model_name:path}:countTokens",
    "/models/{model_name:path}:generateContent",
    "/models/{model_name:path}:streamGenerateContent",
];

/// `mapped_pass_through_routes`: provider pass-through prefixes (each also as `prefix/*`).
const PASS_THROUGH: &[&str] = &[
    "/bedrock",
    "/vertex-ai",
    "/vertex_ai",
    "/cohere",
    "/gemini",
    "/anthropic",
    "/langfuse",
    "/azure",
    "/azure_ai",
    "/openai",
    "/openai_passthrough",
    "/assemblyai",
    "/eu.assemblyai",
    "/vllm",
    "/mistral",
    "/openrouter",
    "/watsonx",
    "/nvidia_nim",
    "/deepgram",
];

/// `passthrough_routes_wildcard`: everything under each pass-through prefix.
const PASS_THROUGH_WILDCARD: &[&str] = &[
    "/bedrock/*",
    "/vertex-ai/*",
    "/vertex_ai/*",
    "/cohere/*",
    "/gemini/*",
    "/anthropic/*",
    "/langfuse/*",
    "/azure/*",
    "/azure_ai/*",
    "/openai/*",
    "/openai_passthrough/*",
    "/assemblyai/*",
    "/eu.assemblyai/*",
    "/vllm/*",
    "/mistral/*",
    "/openrouter/*",
    "/watsonx/*",
    "/nvidia_nim/*",
    "/deepgram/*",
];

/// `model_info_routes`.
const MODEL_INFO: &[&str] = &["/model/info", "/v1/model/info", "/model_group/info"];

/// `info_routes`: read-only views.
const INFO: &[&str] = &[
    "/key/info",
    "/key/health",
    "/team/info",
    "/team/list",
    "/v2/team/list",
    "/organization/list",
    "/team/available",
    "/team/metadata_schema",
    "/user/info",
    "/v2/user/info",
    "/model/info",
    "/v1/model/info",
    "/v2/model/info",
    "/v2/key/info",
    "/model_group/info",
    "/health",
    "/health/services",
    "/key/list",
    "/user/filter/ui",
    "/models",
    "/v1/models",
    "/sso/get/ui_settings",
    "/get/user_banner",
    "/get/latest_release_info",
];

/// `key_management_routes`.
const KEY_MANAGEMENT: &[&str] = &[
    "/key/generate",
    "/key/update",
    "/key/delete",
    "/key/info",
    "/key/regenerate",
    "/key/service-account/generate",
    "/key/{key_id}/regenerate",
    "/key/list",
    "/key/block",
    "/key/unblock",
    "/key/bulk_update",
    "/team/key/bulk_update",
    "/spend/logs",
    "/spend/logs/v2",
    "/key/{key_id}/reset_spend",
    "/key/aliases",
];

/// `management_routes` besides the key-management ones: users, teams and models.
const MANAGEMENT: &[&str] = &[
    "/user/new",
    "/user/update",
    "/user/bulk_update",
    "/user/delete",
    "/user/info",
    "/user/list",
    "/user/daily/activity",
    "/team/new",
    "/team/update",
    "/team/{team_id}",
    "/team/delete",
    "/team/list",
    "/v2/team/list",
    "/team/info",
    "/team/block",
    "/team/unblock",
    "/team/available",
    "/team/metadata_schema",
    "/team/permissions_list",
    "/team/permissions_update",
    "/team/permissions_bulk_update",
    "/team/spend/by_user",
    "/team/daily/activity",
    "/model/new",
    "/model/update",
    "/model/delete",
    "/model/info",
];

/// `spend_tracking_routes`.
const SPEND_TRACKING: &[&str] = &[
    "/spend/keys",
    "/spend/users",
    "/spend/tags",
    "/spend/calculate",
    "/spend/logs",
    "/spend/logs/v2",
    "/spend/logs/ui",
    "/spend/logs/ui/{request_id}",
    "/spend/logs/session/ui",
    "/key/spend/report",
    "/user/spend/report",
    "/team/spend/report",
    "/organization/spend/report",
];

/// `global_spend_tracking_routes`.
const GLOBAL_SPEND_TRACKING: &[&str] = &[
    "/global/spend/logs",
    "/global/spend",
    "/global/spend/keys",
    "/global/spend/teams",
    "/global/spend/end_users",
    "/global/spend/models",
    "/global/predict/spend/logs",
    "/global/spend/report",
    "/global/spend/provider",
    "/global/spend/tags",
    "/global/spend/all_tag_names",
    "/spend/capture_rate",
];

/// `master_key_only_routes`.
const MASTER_KEY_ONLY: &[&str] = &[
    "/global/spend/reset",
    "/memory-usage-in-mem-cache",
    "/memory-usage-in-mem-cache-items",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_list_restricts_nothing() {
        assert!(may_call(&[], "/key/generate"));
    }

    #[test]
    fn paths_match_exactly_or_as_a_prefix_at_a_slash() {
        let a = list(&["/chat/completions", "/key"]);
        assert!(may_call(&a, "/chat/completions"));
        assert!(may_call(&a, "/key/info"));
        assert!(!may_call(&a, "/v1/chat/completions"));
        assert!(!may_call(&a, "/keys"));
        assert!(!may_call(&a, "/embeddings"));
    }

    #[test]
    fn stars_are_prefixes() {
        let a = list(&["/v1/*"]);
        assert!(may_call(&a, "/v1/embeddings"));
        assert!(!may_call(&a, "/embeddings"));
    }

    #[test]
    fn groups_hold_their_routes() {
        let llm = list(&["llm_api_routes"]);
        for r in [
            "/chat/completions",
            "/v1/chat/completions",
            "/openai/deployments/gpt-4o/chat/completions",
            "/engines/gpt-4o/embeddings",
            "/v1/messages",
            "/v1/messages/count_tokens",
            "/v1beta/models/gemini-2.0-flash:generateContent",
            "/models/tunedModels/my-model:streamGenerateContent",
            "/responses/resp_123/input_items",
            "/anthropic/v1/messages",
            "/model/info",
            "/v1/models",
        ] {
            assert!(may_call(&llm, r), "{r}");
        }
        for r in [
            "/key/generate",
            "/key/info",
            "/engines/a/b/chat/completions",
            "/v1beta/models/:generateContent",
            "/spend/logs",
        ] {
            assert!(!may_call(&llm, r), "{r}");
        }
        let info = list(&["info_routes"]);
        assert!(may_call(&info, "/key/info"));
        assert!(may_call(&info, "/v1/models"));
        assert!(!may_call(&info, "/chat/completions"));
        assert!(!may_call(&info, "/key/generate"));
        let mgmt = list(&["management_routes"]);
        assert!(may_call(&mgmt, "/key/generate"));
        assert!(may_call(&mgmt, "/key/sk-abc/regenerate"));
        assert!(may_call(&mgmt, "/team/new"));
        assert!(!may_call(&mgmt, "/key/a/b/regenerate"));
        assert!(!may_call(&mgmt, "/chat/completions"));
    }

    /// LiteLLM puts the tag routes in none of a key's route groups: the writes and `/tag/info`
    /// are for proxy admins, `/tag/list` is in its role lists (internal users, viewers) only.
    /// A key restricted by `allowed_routes` reaches them by path.
    #[test]
    fn tag_routes_are_in_no_group() {
        for g in [
            "llm_api_routes",
            "info_routes",
            "management_routes",
            "key_management_routes",
            "spend_tracking_routes",
            "global_spend_tracking_routes",
        ] {
            for r in [
                "/tag/new",
                "/tag/update",
                "/tag/info",
                "/tag/list",
                "/tag/delete",
            ] {
                assert!(!may_call(&list(&[g]), r), "{g} holds {r}");
            }
        }
        assert!(may_call(&list(&["/tag"]), "/tag/list"));
        assert!(may_call(&list(&["/tag/list"]), "/tag/list"));
        assert!(!may_call(&list(&["/tag/list"]), "/tag/new"));
    }

    #[test]
    fn unknown_group_names_are_plain_paths() {
        let a = list(&["no_such_routes"]);
        assert!(!may_call(&a, "/chat/completions"));
    }

    #[test]
    fn presets() {
        assert_eq!(key_type_routes("llm_api"), Some("llm_api_routes"));
        assert_eq!(key_type_routes("management"), Some("management_routes"));
        assert_eq!(key_type_routes("read_only"), Some("info_routes"));
        assert_eq!(key_type_routes("default"), None);
    }

    #[test]
    fn refusal_names_the_list_as_python_writes_it() {
        let e = refused(&list(&["llm_api_routes"]), "/key/info");
        assert_eq!(e.status(), axum::http::StatusCode::FORBIDDEN);
        assert_eq!(
            e.message,
            "Virtual key is not allowed to call this route. Only allowed to call routes: ['llm_api_routes']. Tried to call route: /key/info"
        );
    }
}
