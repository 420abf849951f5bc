//! The network side of a shard: listeners, connections, and the zero-copy send path;
//! and how the broker stops when its environment fails.

pub mod connection;
pub mod listener;
mod run;
pub mod sendfile;
pub mod sockets;

#[cfg(test)]
mod fuzz_tests;

pub use run::{run, run_until};

/// Stops the broker because its environment failed (an fsync or write error, a full
/// disk): continuing could acknowledge data that is not stored. Exits with status 74
/// (EX_IOERR) after logging the reason; everything acknowledged so far is in the log.
pub fn fatal(reason: &str) -> ! {
    tracing::error!("stopping the broker: {reason}");
    eprintln!("corelog: stopping: {reason}");
    std::process::exit(74)
}
