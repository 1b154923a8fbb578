//! A drop-in replacement for the LiteLLM Proxy: library crate.
//!
//! `main.rs` parses the CLI and calls [`run`]; tests call [`build_app`] or [`start`] on
//! `127.0.0.1:0`. Module map: `config` (YAML), `state` (shared state), `server` (routes, serve,
//! shutdown), `middleware` (request context, auth), `handlers` (thin axum handlers), `routing`
//! (model groups, deployments), `providers` (upstream formats), `api` (OpenAI wire types),
//! `error` (the one error type), `runtime` (the binary's tokio runtime; memory given back
//! when traffic stops).

pub mod api;
pub mod cache;
pub mod callbacks;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod middleware;
pub mod passthrough;
pub mod providers;
pub mod ratelimit;
pub mod redis;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod spend;
pub mod state;
pub mod store;
pub mod telemetry;

pub use server::routes::build_app;
pub use state::{AppState, BuildOptions};

use cli::Cli;
use config::{ConfigError, LoadedConfig};
use std::net::SocketAddr;
use std::time::Duration;

/// Why the process could not start. `main` prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid config: {0}")]
    Invalid(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Builds the config the CLI asks for: the file, `--model` quick start, or an empty one.
pub fn load_config(cli: &Cli) -> Result<(LoadedConfig, BuildOptions), StartupError> {
    let mut loaded = match &cli.config {
        Some(path) => config::load_file(std::path::Path::new(path))?,
        None => LoadedConfig::default(),
    };
    let mut opts = BuildOptions::default();
    if let Some(model) = &cli.model {
        let name = cli.alias.clone().unwrap_or_else(|| model.clone());
        let mut params = serde_json::Map::new();
        params.insert("model".into(), model.clone().into());
        if let Some(b) = &cli.api_base {
            params.insert("api_base".into(), b.clone().into());
        }
        if let Some(v) = &cli.api_version {
            params.insert("api_version".into(), v.clone().into());
        }
        if let Some(t) = cli.temperature {
            params.insert("temperature".into(), t.into());
        }
        if let Some(t) = cli.max_tokens {
            params.insert("max_tokens".into(), t.into());
        }
        if let Some(t) = cli.request_timeout {
            params.insert("timeout".into(), t.into());
        }
        let entry = serde_json::json!({"model_name": name, "litellm_params": params});
        let mut dc: config::DeploymentConfig = serde_json::from_value(entry)
            .map_err(|e| StartupError::Invalid(format!("--model: {e}")))?;
        dc.raw_params = params;
        loaded.config.model_list.push(dc);
        opts.catch_all_model = Some(name);
    }
    if cli.drop_params {
        loaded.config.litellm_settings.drop_params = Some(true);
    }
    if let Some(b) = cli.max_budget {
        loaded.config.litellm_settings.max_budget = Some(b);
    }
    Ok((loaded, opts))
}

/// Loads the config, binds, and serves until SIGTERM/SIGINT.
pub async fn run(cli: Cli) -> Result<(), StartupError> {
    let (loaded, opts) = load_config(&cli)?;
    let json_logs = loaded.config.litellm_settings.json_logs.unwrap_or(false);
    let _log_guard = telemetry::init(json_logs, cli.debug, cli.detailed_debug);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if cli.num_workers.is_some_and(|n| n > 1) {
        tracing::warn!(
            "--num_workers is accepted for compatibility; one process already uses every core"
        );
    }
    let state = AppState::build(loaded, opts)
        .await
        .map_err(StartupError::Invalid)?;
    if cli.validate_config {
        tracing::info!("config is valid");
        return Ok(());
    }
    let addr = format!("{}:{}", cli.host, cli.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let names = state.router.load().model_names();
    tracing::info!(models = ?names, "loaded {} model group(s)", names.len());
    tracing::info!("listening on http://{addr}");
    let spend = state.spend.clone();
    let callbacks = state.0.clone();
    let grace = Duration::from_secs(cli.graceful_shutdown_timeout);
    runtime::watch_idle();
    // The server runs on a worker: this thread loaded the config and built the state, and
    // what that freed sits in its allocator cache until emptied here. Accepting on this thread
    // would fill that cache again with connection-sized blocks, kept while it waits.
    let server = tokio::spawn(server::serve(
        listener,
        state,
        server::shutdown_signal(),
        grace,
    ));
    runtime::trim_this_thread();
    let served = server
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    // Every in-flight call has finished or been dropped (and recorded): write it all.
    spend.flush().await;
    // Logging callbacks get what is queued out, within the same deadline the requests had.
    if let Some(cb) = &callbacks.callbacks {
        if tokio::time::timeout(grace, cb.flush()).await.is_err() {
            tracing::warn!(
                "shutdown deadline reached before every logging callback event was sent"
            );
        }
    }
    served.map_err(StartupError::Serve)
}

/// Starts the gateway on an already-bound listener in the background (tests, embedding).
/// Returns the bound address and a handle that stops it when `stop` is sent.
pub async fn start(
    state: AppState,
    listener: tokio::net::TcpListener,
) -> std::io::Result<(
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server::serve(
        listener,
        state,
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    Ok((addr, tx, handle))
}
