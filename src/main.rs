//! The `litellm` binary: parse flags, run the gateway, exit non-zero on a startup failure.

use clap::Parser;
use litellm_gateway::cli::Cli;

/// jemalloc, for the whole process (SQLite's C allocations too): about a fifth fewer
/// instructions per request than glibc's allocator, and with the background purging set in
/// `.cargo/config.toml` memory goes back to the system after a burst (glibc kept the peak).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match litellm_gateway::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("litellm: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
