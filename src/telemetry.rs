//! Logging setup: `tracing` with plain or JSON lines.
//!
//! Level: `LITELLM_LOG` (DEBUG/INFO/WARNING/ERROR) or `RUST_LOG`, raised by `--debug` (info)
//! and `--detailed_debug` (debug). Default is info for the access log and warnings elsewhere.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber. Log lines are written by a background thread (the access log
/// would otherwise cost a write syscall on every request); keep the returned guard alive
/// until exit so the last lines are flushed.
pub fn init(
    json: bool,
    debug: bool,
    detailed_debug: bool,
) -> tracing_appender::non_blocking::WorkerGuard {
    let level = if detailed_debug {
        "debug".to_string()
    } else if debug {
        "info".to_string()
    } else if let Ok(l) = std::env::var("LITELLM_LOG") {
        match l.to_ascii_lowercase().as_str() {
            "debug" => "debug".into(),
            "info" => "info".into(),
            "error" => "error".into(),
            _ => "warn".into(),
        }
    } else {
        "warn,access=info,litellm_gateway=info".to_string()
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        let _ = builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init();
    } else {
        let _ = builder.try_init();
    }
    guard
}
