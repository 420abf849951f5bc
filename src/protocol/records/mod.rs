//! Kafka's record batch format, magic 2: the unit producers send, the log stores and
//! consumers fetch.
//!
//! Owns: parsing a batch header without copying, CRC32C validation, splitting a buffer
//! into batches (`batches`), the in-place rewrites an append makes (base offset,
//! partition leader epoch, log append time), iterating records for the broker's own
//! needs (timestamp lookup, compaction, coordinators), and building batches with any
//! codec. Runs on whichever shard handles the request or owns the partition.
//!
//! Invariants: a `RecordBatch` always holds exactly one whole batch whose header parsed
//! (magic 2, length consistent with its bytes); its bytes are a slice of the buffer it
//! came from, never a copy. Nothing here panics or over-allocates on hostile bytes.

mod batch;
mod builder;
mod compression;
mod record;

pub use batch::{
    BATCH_HEADER_LEN, BatchError, BatchHeader, Batches, LEADER_STAMPED_LEN, LOG_OVERHEAD, MAGIC_V2,
    MAX_DECOMPRESSED_BATCH_BYTES, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, RecordBatch, TimestampType, batches, set_base_offset, set_log_append_time,
    set_partition_leader_epoch,
};
pub use builder::{BatchBuilder, empty_batch, rebuild_batch};
pub use compression::Compression;
pub use record::{Record, RecordHeader, RecordIter, RecordShape};

#[cfg(test)]
mod tests;
