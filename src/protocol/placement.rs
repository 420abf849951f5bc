//! The document of `GET /placement`, corelog's own admin surface on the metrics
//! endpoint (not a Kafka API): the broker writes it (`server::placement`) and
//! `corelog placement show` reads it (`cli::placement`), with these types on both
//! sides. Every counter is cumulative; see `server::placement` for their meaning.

use serde::{Deserialize, Serialize};

/// The whole document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub revision: u64,
    pub uptime_ns: u64,
    #[serde(default)]
    pub timestamp_ms: u64,
    pub shards: Vec<ShardLoad>,
    pub partitions: Vec<PartitionLoad>,
}

/// One shard's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLoad {
    pub shard: usize,
    pub cpu: usize,
    pub connections: u64,
    pub partitions: u64,
    /// Bytes read from and written to the client sockets of the shard's connections.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Kafka requests its connections received.
    pub requests: u64,
    pub busy_ns: u64,
    pub cpu_ns: u64,
    /// Calls this shard made to other shards, and received from them.
    pub calls_sent: u64,
    pub calls_received: u64,
}

/// One partition's counters, on the shard that owns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLoad {
    pub topic: String,
    pub partition: i32,
    pub shard: usize,
    pub bytes_in: u64,
    pub records_in: u64,
    pub produce_requests: u64,
    pub bytes_out: u64,
    pub fetch_requests: u64,
    pub busy_ns: u64,
}
