//! Loading a `__transaction_state` partition: when a shard comes to own one (at start-up,
//! or when the topic is created) it reads the partition from its log start to its high
//! watermark and hands the records, in log order, to its `TransactionCoordinator`.
//!
//! Runs on the shard that owns the partition; its transactional ids are answered
//! COORDINATOR_LOAD_IN_PROGRESS until the replay is done. A log that cannot be read
//! stops the process (`stop::fatal`): transactions rebuilt from part of it would be
//! wrong. Transactions found half-way (PrepareCommit/PrepareAbort) are finished by the
//! coordinator's `complete_pending`, which the shard's transaction timer runs.

use super::TransactionCoordinator;
use crate::partition::Partition;
use crate::protocol::records::batches;
use bytes::Bytes;
use shards::rt;

impl TransactionCoordinator {
    /// Replays partition `index` (of `partition_count`) of `__transaction_state` and takes
    /// over its transactional ids. Returns how many it holds.
    pub async fn load(&self, index: i32, partition_count: i32, partition: &Partition) -> usize {
        self.loading(index, partition_count);
        let log = partition.log();
        let end = partition.high_watermark();
        let mut offset = partition.log_start_offset();
        let mut records: Vec<(Bytes, Option<Bytes>)> = Vec::new();
        while offset < end {
            let read = log.read_bytes(offset, 1 << 20, end, true).await;
            let Some((bytes, next)) = read.unwrap_or_else(|e| {
                crate::stop::fatal(&format!("cannot replay {}: {e}", partition.tp))
            }) else {
                break;
            };
            for batch in batches(bytes) {
                let Ok(batch) = batch else { break };
                if batch.header().is_control() {
                    continue;
                }
                let Ok(iter) = batch.records() else { continue };
                for record in iter.flatten() {
                    if let Some(key) = record.key {
                        records.push((key, record.value));
                    }
                }
            }
            offset = next;
            rt::yield_if_needed().await;
        }
        self.load_partition(index, partition_count, records)
    }
}
