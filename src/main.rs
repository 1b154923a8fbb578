//! The `litellm` binary: parse flags, run the gateway, exit non-zero on a startup failure.

use clap::Parser;
use litellm_gateway::cli::Cli;

/// jemalloc, for the whole process (SQLite's C allocations too): about a fifth fewer
/// instructions per request than glibc's allocator, and with the background purging set in
/// `.cargo/config.toml` memory goes back to the system after a burst (glibc kept the peak).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Empties the calling thread's jemalloc cache: turning it off hands every cached block back
/// to the shared arena, and turned on again it starts empty (`litellm_gateway::runtime`).
fn trim_thread_cache() {
    use tikv_jemalloc_ctl::{Access, AsName};
    let enabled = b"thread.tcache.enabled\0".name();
    if enabled.write(false).is_ok() {
        // Should turning it back on fail, the thread allocates without a cache: slower, correct.
        let _ = enabled.write(true);
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match litellm_gateway::runtime::builder(Some(trim_thread_cache)).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("litellm: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(litellm_gateway::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("litellm: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
