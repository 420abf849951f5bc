//! `GET /placement` on the metrics endpoint: where every partition is and the load of
//! each shard and partition, as one JSON document for `corelog placement show` and for
//! scripts. A corelog-specific admin surface (Kafka has no such API); the field names
//! are stable and snake_case:
//!
//! ```json
//! {"revision": 7, "uptime_ns": 81234000000, "timestamp_ms": 1767225600000,
//!  "shards": [{"shard", "cpu", "connections", "partitions", "bytes_in", "bytes_out",
//!              "requests", "busy_ns", "cpu_ns", "calls_sent", "calls_received"}],
//!  "partitions": [{"topic", "partition", "shard", "bytes_in", "records_in",
//!                  "produce_requests", "bytes_out", "fetch_requests", "busy_ns"}]}
//! ```
//!
//! Every counter is cumulative: a client takes two documents and divides the
//! differences by the difference of `uptime_ns` (nanoseconds since shard 0 started, a
//! monotonic clock). `revision` is the revision of shard 0's shard table; `timestamp_ms`
//! the wall clock (Unix milliseconds). A partition's counters start at zero when it is
//! opened on its shard. Served by shard 0, from `Router::load`.

use crate::protocol::placement::{PartitionLoad, Placement, ShardLoad};
use crate::routing::Router;
use crate::shard::ShardStatsSnapshot;

impl From<&ShardStatsSnapshot> for ShardLoad {
    fn from(s: &ShardStatsSnapshot) -> ShardLoad {
        ShardLoad {
            shard: s.shard,
            cpu: s.cpu,
            connections: s.connections,
            partitions: s.partitions,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            requests: s.requests,
            busy_ns: s.busy_ns,
            cpu_ns: s.cpu_ns,
            calls_sent: s.calls_sent,
            calls_received: s.calls_received,
        }
    }
}

/// Gathers every shard's load and renders the document.
pub async fn render(router: &Router) -> String {
    let loads = router.load().await;
    let state = router.state();
    let mut partitions: Vec<PartitionLoad> = Vec::new();
    let mut shards = Vec::with_capacity(loads.len());
    for (stats, owned) in loads {
        shards.push(ShardLoad::from(&stats));
        partitions.extend(owned);
    }
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let placement = Placement {
        revision: state.metadata.borrow().revision(),
        uptime_ns: state.started.elapsed().as_nanos() as u64,
        timestamp_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        shards,
        partitions,
    };
    let mut json = serde_json::to_string(&placement).expect("plain data always serializes");
    json.push('\n');
    json
}
