//! The `corelog` binary: parses the command line, then either loads the configuration
//! and runs the broker, or runs an operator command (`corelog::cli::run`). A bug panics
//! and aborts the whole process (other shards cannot carry on with one missing); bad
//! configuration or arguments exit with status 2, a failed start-up or operation with 1.

use clap::Parser;
use corelog::cli::{Cli, Command};

/// mimalloc rather than glibc's malloc: at the 1 KiB workload's peak, glibc handed each
/// shard's freed request buffers back to the kernel and faulted fresh pages in for the next
/// ones; mimalloc cost 0.90x the broker CPU per MB (README, "CPU per request").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));
    match cli.command {
        Command::Serve(args) => {
            let (config, notes) = match args.load() {
                Ok(loaded) => loaded,
                Err(e) => {
                    eprintln!("corelog: {e}");
                    std::process::exit(2);
                }
            };
            for key in &notes.unknown_keys {
                tracing::warn!("unknown configuration key '{key}' is ignored");
            }
            if !notes.ignored_keys.is_empty() {
                tracing::info!(
                    "these Kafka settings have no effect in corelog: {}",
                    notes.ignored_keys.join(", ")
                );
            }
            if let Err(e) = corelog::server::run(config) {
                eprintln!("corelog: {e}");
                std::process::exit(1);
            }
        }
        Command::Admin(command) => std::process::exit(corelog::cli::run(command)),
    }
}
