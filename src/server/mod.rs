//! The network side of a shard: listeners, connections, and the zero-copy send path;
//! and running the broker (start-up, shut-down).

pub mod admin;
pub mod connection;
pub mod listener;
pub mod metrics;
pub mod placement;
mod run;
pub mod sendfile;
pub mod sockets;

#[cfg(test)]
mod fuzz_tests;

pub use run::{run, run_until};
