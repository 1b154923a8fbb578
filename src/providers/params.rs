//! Which OpenAI request parameters a native provider accepts, and LiteLLM's rule for the rest.
//!
//! OpenAI-compatible upstreams get the body verbatim. A native adapter translates a known set of
//! OpenAI parameters; any other *OpenAI* parameter it cannot express is either dropped
//! (`drop_params: true` globally, on the deployment or in the request) or rejected with a 400
//! naming it, as LiteLLM does. Keys that are not OpenAI parameters at all (`top_k`, ...) are
//! provider-specific extras and pass through untouched. `additional_drop_params` always drops;
//! `allowed_openai_params` forces a parameter through.

use super::Provider;
use crate::error::{ApiError, ApiResult, ErrorClass};
use serde_json::{Map, Value};

/// OpenAI Chat Completions request parameters (besides `model` and `messages`).
pub const OPENAI_CHAT_PARAMS: &[&str] = &[
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "modalities",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "reasoning_effort",
    "response_format",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "web_search_options",
    "thinking",
    "extra_headers",
];

/// How a call treats parameters its provider lacks.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParamPolicy<'a> {
    /// Silently remove unsupported OpenAI parameters instead of refusing the call.
    pub drop_params: bool,
    /// Parameters to remove whatever the provider supports.
    pub additional_drop: &'a [String],
    /// Parameters to send even though the provider is not known to support them.
    pub allowed: &'a [String],
}

/// Applies the policy to `body` for a provider that understands `supported`. Returns a 400
/// listing every unsupported parameter when dropping is off.
pub fn apply(
    body: &mut Map<String, Value>,
    supported: &[&str],
    policy: &ParamPolicy<'_>,
    provider: Provider,
    model: &str,
) -> ApiResult<()> {
    for name in policy.additional_drop {
        body.remove(name);
    }
    let mut unsupported: Vec<String> = Vec::new();
    body.retain(|k, v| {
        if !OPENAI_CHAT_PARAMS.contains(&k.as_str())
            || supported.contains(&k.as_str())
            || policy.allowed.iter().any(|a| a == k)
        {
            return true;
        }
        if !v.is_null() && !policy.drop_params {
            unsupported.push(k.clone());
        }
        false
    });
    if unsupported.is_empty() {
        return Ok(());
    }
    let listed = unsupported
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(ApiError::new(
        ErrorClass::UnsupportedParams,
        format!(
            "litellm.UnsupportedParamsError: {} does not support parameters: [{listed}], for model={model}. To drop these, set `litellm.drop_params=True` or for proxy:\n\n`litellm_settings:\n drop_params: true`\n. \n If you want to use these params dynamically send allowed_openai_params=[{listed}] in your request.",
            provider.name()
        ),
    )
    .with_param(unsupported[0].as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Map<String, Value> {
        json!({"messages": [], "n": 2, "logit_bias": {"1": 1}, "top_k": 5, "temperature": 0.2})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn unsupported_openai_params_are_refused_with_their_names() {
        let mut b = body();
        let e = apply(
            &mut b,
            &["temperature"],
            &ParamPolicy::default(),
            Provider::Anthropic,
            "claude-x",
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.message
                .contains("anthropic does not support parameters: ['n', 'logit_bias']"),
            "{}",
            e.message
        );
    }

    #[test]
    fn drop_params_removes_them_and_keeps_provider_extras() {
        let mut b = body();
        let extra = vec!["temperature".to_string()];
        let allowed = vec!["n".to_string()];
        apply(
            &mut b,
            &["temperature"],
            &ParamPolicy {
                drop_params: true,
                additional_drop: &extra,
                allowed: &allowed,
            },
            Provider::Anthropic,
            "m",
        )
        .unwrap();
        assert_eq!(
            Value::Object(b),
            json!({"messages": [], "n": 2, "top_k": 5})
        );
    }
}
