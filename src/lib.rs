//! corelog: a Kafka-wire-compatible message broker, thread-per-core on io_uring.
//!
//! Every core runs one pinned executor that owns a disjoint set of partitions, their
//! segment files, their connections' work and their coordinators; cores talk only
//! through bounded cross-core channels. See `README.md` for the architecture map.
pub mod cli;
pub mod config;
pub mod futures;
pub mod groups;
pub mod handlers;
pub mod metadata;
pub mod model;
pub mod partition;
pub mod placement;
pub mod protocol;
pub mod routing;
pub mod security;
pub mod server;
pub mod shard;
pub mod stop;
pub mod storage;
pub mod transactions;
