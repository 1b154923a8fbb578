//! The `litellm` binary: parse flags, run the gateway, exit non-zero on a startup failure.

use clap::Parser;
use litellm_gateway::cli::Cli;

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
