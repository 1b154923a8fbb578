//! The table of OpenAI-compatible providers: one row each, data only.
//!
//! Each row gives the LiteLLM prefix, the default base URL (already including the API version
//! path, e.g. `/v1`), the env vars that supply a key and a base URL when `litellm_params` omit
//! them, and the provider's small deviations from OpenAI's format ([`Quirk`]).

/// How the key is presented upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeader {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `api-key: <key>` (Azure AI Foundry).
    ApiKey,
}

/// Provider-specific deviations applied to an otherwise OpenAI-shaped request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    None,
    /// `HTTP-Referer` / `X-Title` headers from `OR_SITE_URL` / `OR_APP_NAME`.
    OpenRouter,
    /// Bare model ids get the `accounts/fireworks/models/` prefix.
    Fireworks,
    /// `tool_choice: "required"` is spelled `"any"`.
    Mistral,
}

#[derive(Debug, PartialEq, Eq)]
pub struct CompatProvider {
    pub name: &'static str,
    /// Used in error messages: `<label>Exception`.
    pub label: &'static str,
    pub default_base: Option<&'static str>,
    pub base_envs: &'static [&'static str],
    pub key_envs: &'static [&'static str],
    pub key_header: KeyHeader,
    pub quirk: Quirk,
}

const fn row(
    name: &'static str,
    label: &'static str,
    default_base: Option<&'static str>,
    base_envs: &'static [&'static str],
    key_envs: &'static [&'static str],
) -> CompatProvider {
    CompatProvider {
        name,
        label,
        default_base,
        base_envs,
        key_envs,
        key_header: KeyHeader::Bearer,
        quirk: Quirk::None,
    }
}

const fn with_quirk(mut p: CompatProvider, quirk: Quirk) -> CompatProvider {
    p.quirk = quirk;
    p
}

const fn with_api_key_header(mut p: CompatProvider) -> CompatProvider {
    p.key_header = KeyHeader::ApiKey;
    p
}

pub static COMPAT_PROVIDERS: &[CompatProvider] = &[
    row(
        "openai_like",
        "OpenAILike",
        None,
        &["OPENAI_LIKE_API_BASE"],
        &["OPENAI_LIKE_API_KEY"],
    ),
    row("custom_openai", "OpenAI", None, &[], &[]),
    row(
        "hosted_vllm",
        "HostedVLLM",
        None,
        &["HOSTED_VLLM_API_BASE"],
        &["HOSTED_VLLM_API_KEY"],
    ),
    row(
        "vllm",
        "VLLM",
        None,
        &["VLLM_API_BASE", "HOSTED_VLLM_API_BASE"],
        &["VLLM_API_KEY"],
    ),
    row(
        "groq",
        "Groq",
        Some("https://api.groq.com/openai/v1"),
        &["GROQ_API_BASE"],
        &["GROQ_API_KEY"],
    ),
    with_quirk(
        row(
            "mistral",
            "Mistral",
            Some("https://api.mistral.ai/v1"),
            &["MISTRAL_API_BASE"],
            &["MISTRAL_API_KEY"],
        ),
        Quirk::Mistral,
    ),
    with_quirk(
        row(
            "codestral",
            "Codestral",
            Some("https://codestral.mistral.ai/v1"),
            &["CODESTRAL_API_BASE"],
            &["CODESTRAL_API_KEY"],
        ),
        Quirk::Mistral,
    ),
    row(
        "deepseek",
        "DeepSeek",
        Some("https://api.deepseek.com/v1"),
        &["DEEPSEEK_API_BASE"],
        &["DEEPSEEK_API_KEY"],
    ),
    row(
        "together_ai",
        "TogetherAI",
        Some("https://api.together.xyz/v1"),
        &["TOGETHER_AI_API_BASE", "TOGETHERAI_API_BASE"],
        &[
            "TOGETHERAI_API_KEY",
            "TOGETHER_AI_API_KEY",
            "TOGETHER_API_KEY",
            "TOGETHER_AI_TOKEN",
        ],
    ),
    with_quirk(
        row(
            "openrouter",
            "OpenRouter",
            Some("https://openrouter.ai/api/v1"),
            &["OPENROUTER_API_BASE"],
            &["OPENROUTER_API_KEY", "OR_API_KEY"],
        ),
        Quirk::OpenRouter,
    ),
    with_quirk(
        row(
            "fireworks_ai",
            "FireworksAI",
            Some("https://api.fireworks.ai/inference/v1"),
            &["FIREWORKS_AI_API_BASE", "FIREWORKS_API_BASE"],
            &[
                "FIREWORKS_AI_API_KEY",
                "FIREWORKS_API_KEY",
                "FIREWORKSAI_API_KEY",
            ],
        ),
        Quirk::Fireworks,
    ),
    row(
        "xai",
        "XAI",
        Some("https://api.x.ai/v1"),
        &["XAI_API_BASE"],
        &["XAI_API_KEY"],
    ),
    row(
        "perplexity",
        "Perplexity",
        Some("https://api.perplexity.ai"),
        &["PERPLEXITY_API_BASE"],
        &["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"],
    ),
    row(
        "deepinfra",
        "DeepInfra",
        Some("https://api.deepinfra.com/v1/openai"),
        &["DEEPINFRA_API_BASE"],
        &["DEEPINFRA_API_KEY"],
    ),
    row(
        "huggingface",
        "Huggingface",
        Some("https://router.huggingface.co/v1"),
        &["HUGGINGFACE_API_BASE", "HF_API_BASE"],
        &["HF_TOKEN", "HUGGINGFACE_API_KEY"],
    ),
    row(
        "cerebras",
        "Cerebras",
        Some("https://api.cerebras.ai/v1"),
        &["CEREBRAS_API_BASE"],
        &["CEREBRAS_API_KEY"],
    ),
    row(
        "sambanova",
        "Sambanova",
        Some("https://api.sambanova.ai/v1"),
        &["SAMBANOVA_API_BASE"],
        &["SAMBANOVA_API_KEY"],
    ),
    row(
        "nvidia_nim",
        "NvidiaNim",
        Some("https://integrate.api.nvidia.com/v1"),
        &["NVIDIA_NIM_API_BASE"],
        &["NVIDIA_NIM_API_KEY"],
    ),
    row(
        "lm_studio",
        "LMStudio",
        Some("http://localhost:1234/v1"),
        &["LM_STUDIO_API_BASE"],
        &["LM_STUDIO_API_KEY"],
    ),
    row(
        "github",
        "Github",
        Some("https://models.inference.ai.azure.com"),
        &["GITHUB_API_BASE"],
        &["GITHUB_API_KEY"],
    ),
    row(
        "nebius",
        "Nebius",
        Some("https://api.studio.nebius.ai/v1"),
        &["NEBIUS_API_BASE"],
        &["NEBIUS_API_KEY"],
    ),
    row(
        "novita",
        "Novita",
        Some("https://api.novita.ai/v3/openai"),
        &["NOVITA_API_BASE"],
        &["NOVITA_API_KEY"],
    ),
    row(
        "featherless_ai",
        "FeatherlessAI",
        Some("https://api.featherless.ai/v1"),
        &["FEATHERLESS_API_BASE"],
        &["FEATHERLESS_AI_API_KEY", "FEATHERLESS_API_KEY"],
    ),
    row(
        "moonshot",
        "Moonshot",
        Some("https://api.moonshot.ai/v1"),
        &["MOONSHOT_API_BASE"],
        &["MOONSHOT_API_KEY"],
    ),
    row(
        "dashscope",
        "Dashscope",
        Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
        &["DASHSCOPE_API_BASE"],
        &["DASHSCOPE_API_KEY"],
    ),
    row(
        "lambda_ai",
        "LambdaAI",
        Some("https://api.lambda.ai/v1"),
        &["LAMBDA_API_BASE"],
        &["LAMBDA_API_KEY"],
    ),
    row(
        "hyperbolic",
        "Hyperbolic",
        Some("https://api.hyperbolic.xyz/v1"),
        &["HYPERBOLIC_API_BASE"],
        &["HYPERBOLIC_API_KEY"],
    ),
    row(
        "nscale",
        "Nscale",
        Some("https://inference.api.nscale.com/v1"),
        &["NSCALE_API_BASE"],
        &["NSCALE_API_KEY"],
    ),
    row(
        "llamafile",
        "Llamafile",
        Some("http://127.0.0.1:8080/v1"),
        &["LLAMAFILE_API_BASE"],
        &["LLAMAFILE_API_KEY"],
    ),
    row(
        "litellm_proxy",
        "LiteLLMProxy",
        None,
        &["LITELLM_PROXY_API_BASE"],
        &["LITELLM_PROXY_API_KEY"],
    ),
    with_api_key_header(row(
        "azure_ai",
        "AzureAI",
        None,
        &["AZURE_AI_API_BASE"],
        &["AZURE_AI_API_KEY"],
    )),
    row(
        "voyage",
        "Voyage",
        Some("https://api.voyageai.com/v1"),
        &["VOYAGE_API_BASE"],
        &["VOYAGE_API_KEY"],
    ),
    row(
        "anyscale",
        "Anyscale",
        Some("https://api.endpoints.anyscale.com/v1"),
        &["ANYSCALE_API_BASE"],
        &["ANYSCALE_API_KEY"],
    ),
    row(
        "friendliai",
        "FriendliAI",
        Some("https://api.friendli.ai/serverless/v1"),
        &["FRIENDLI_API_BASE"],
        &["FRIENDLIAI_API_KEY", "FRIENDLI_TOKEN"],
    ),
    row(
        "ai21_chat",
        "AI21",
        Some("https://api.ai21.com/studio/v1"),
        &["AI21_API_BASE"],
        &["AI21_API_KEY"],
    ),
    row(
        "galadriel",
        "Galadriel",
        Some("https://api.galadriel.com/v1"),
        &["GALADRIEL_API_BASE"],
        &["GALADRIEL_API_KEY"],
    ),
    row(
        "empower",
        "Empower",
        Some("https://app.empower.dev/api/v1"),
        &["EMPOWER_API_BASE"],
        &["EMPOWER_API_KEY"],
    ),
    row(
        "jina_ai",
        "JinaAI",
        Some("https://api.jina.ai/v1"),
        &["JINA_AI_API_BASE"],
        &["JINA_AI_API_KEY"],
    ),
    row(
        "xinference",
        "Xinference",
        Some("http://127.0.0.1:9997/v1"),
        &["XINFERENCE_API_BASE"],
        &["XINFERENCE_API_KEY"],
    ),
    row(
        "llama_api",
        "LlamaAPI",
        Some("https://api.llama.com/compat/v1"),
        &["LLAMA_API_BASE"],
        &["LLAMA_API_KEY"],
    ),
    row(
        "v0",
        "V0",
        Some("https://api.v0.dev/v1"),
        &["V0_API_BASE"],
        &["V0_API_KEY"],
    ),
    row(
        "morph",
        "Morph",
        Some("https://api.morphllm.com/v1"),
        &["MORPH_API_BASE"],
        &["MORPH_API_KEY"],
    ),
];

pub fn lookup(name: &str) -> Option<&'static CompatProvider> {
    COMPAT_PROVIDERS.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_bases_are_urls() {
        for (i, p) in COMPAT_PROVIDERS.iter().enumerate() {
            assert!(
                COMPAT_PROVIDERS[i + 1..].iter().all(|q| q.name != p.name),
                "duplicate {}",
                p.name
            );
            if let Some(b) = p.default_base {
                assert!(b.starts_with("http") && !b.ends_with('/'), "{b}");
            }
        }
        assert_eq!(lookup("groq").unwrap().key_envs, &["GROQ_API_KEY"]);
    }
}
