//! Command-line flags of the `litellm` binary (clap structs only).
//!
//! Mirrors the LiteLLM Proxy CLI: the same flag names (with underscores), the same env
//! fallbacks (`PORT`, `HOST`, `NUM_WORKERS`, `DEBUG`, `DETAILED_DEBUG`, `CONFIG_FILE_PATH`).
//! Flags that only made sense for a Python server are accepted and ignored with a warning,
//! so existing start scripts keep working.

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "litellm",
    version,
    about = "LLM gateway: a drop-in replacement for the LiteLLM Proxy",
    long_about = None
)]
pub struct Cli {
    /// Path to the LiteLLM config.yaml.
    #[arg(short = 'c', long = "config", env = "CONFIG_FILE_PATH")]
    pub config: Option<String>,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 4000)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// Single-model mode: serve one model string (e.g. `ollama/llama3`) for every request.
    #[arg(short = 'm', long)]
    pub model: Option<String>,

    /// Public name for `--model`.
    #[arg(long)]
    pub alias: Option<String>,

    /// api_base for `--model`.
    #[arg(long = "api_base")]
    pub api_base: Option<String>,

    /// api_version for `--model` (Azure).
    #[arg(long = "api_version")]
    pub api_version: Option<String>,

    /// Default temperature injected into every call in single-model mode.
    #[arg(long)]
    pub temperature: Option<f64>,

    /// Default max_tokens injected into every call in single-model mode.
    #[arg(long = "max_tokens")]
    pub max_tokens: Option<u64>,

    /// Default request timeout (seconds) in single-model mode.
    #[arg(long = "request_timeout")]
    pub request_timeout: Option<f64>,

    /// Drop params a provider does not support instead of rejecting the request.
    #[arg(long = "drop_params")]
    pub drop_params: bool,

    /// Proxy-wide budget in USD.
    #[arg(long = "max_budget")]
    pub max_budget: Option<f64>,

    /// Accepted for compatibility. One process of this gateway already uses every core
    /// (a multi-threaded async runtime), so extra worker processes are never needed.
    #[arg(long = "num_workers", env = "NUM_WORKERS")]
    pub num_workers: Option<u32>,

    /// INFO-level logs.
    #[arg(long, env = "DEBUG")]
    pub debug: bool,

    /// DEBUG-level logs.
    #[arg(long = "detailed_debug", env = "DETAILED_DEBUG")]
    pub detailed_debug: bool,

    /// Parse the config, report problems, and exit (non-zero on error).
    #[arg(long = "validate_config")]
    pub validate_config: bool,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(
        long = "graceful_shutdown_timeout",
        env = "LITELLM_GRACEFUL_SHUTDOWN_TIMEOUT",
        default_value_t = 30
    )]
    pub graceful_shutdown_timeout: u64,

    /// Legacy flags of the Python proxy; accepted and ignored.
    #[arg(long = "run_gunicorn", hide = true)]
    pub run_gunicorn: bool,
    #[arg(long = "run_hypercorn", hide = true)]
    pub run_hypercorn: bool,
    #[arg(long = "use_prisma_db_push", hide = true)]
    pub use_prisma_db_push: bool,
    #[arg(long = "telemetry", hide = true)]
    pub telemetry: Option<String>,
}
