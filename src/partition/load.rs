//! The load of one partition: what its owner's shard appended and read for it, and the
//! time that shard's thread spent on those appends and reads.
//!
//! Lives in the `Partition` on the owning shard and only that shard touches it (plain
//! cells, no atomics). The counters start at zero when the partition is opened and go
//! with it when it is closed, so a partition opened again (a restart, another shard)
//! counts from zero: readers compute rates from two snapshots and treat a counter that
//! went down as restarted.

use crate::metadata::TopicPartition;
use crate::protocol::placement;
use std::cell::Cell;

/// A partition's counters since it was opened on this shard.
#[derive(Debug, Default)]
pub struct PartitionLoad {
    /// Record bytes appended (whole batches as written, retried duplicates left out).
    pub bytes_in: Cell<u64>,
    /// Records (offsets) appended.
    pub records_in: Cell<u64>,
    /// Appends asked of the partition: one per produce request (and per transaction
    /// marker or coordinator write), whatever their outcome.
    pub produce_requests: Cell<u64>,
    /// Record bytes read by fetches (what the partition handed out; a fetch response may
    /// leave some out to stay within its limits).
    pub bytes_out: Cell<u64>,
    /// Reads asked of the partition: one per fetch of it (a long-polled fetch reads
    /// again when woken).
    pub fetch_requests: Cell<u64>,
    /// Nanoseconds the shard's thread spent inside the partition's append and fetch
    /// futures (`futures::timed`): its work, not its waits.
    pub busy_ns: Cell<u64>,
}

impl PartitionLoad {
    /// The counters at this moment, as `GET /placement` reports them.
    pub fn snapshot(&self, tp: &TopicPartition, shard: usize) -> placement::PartitionLoad {
        placement::PartitionLoad {
            topic: tp.topic.clone(),
            partition: tp.partition,
            shard,
            bytes_in: self.bytes_in.get(),
            records_in: self.records_in.get(),
            produce_requests: self.produce_requests.get(),
            bytes_out: self.bytes_out.get(),
            fetch_requests: self.fetch_requests.get(),
            busy_ns: self.busy_ns.get(),
        }
    }
}
