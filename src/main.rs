//! The `litellm` binary: parse flags, run the gateway, exit non-zero on a startup failure.

use clap::Parser;
use litellm_gateway::cli::Cli;

/// mimalloc: fewer instructions per request than glibc's allocator (about 12% of the gateway's
/// total), and freed memory goes back to the system shortly after a burst.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
