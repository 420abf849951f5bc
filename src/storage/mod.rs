//! The partition log: Kafka's on-disk format, one log per partition, on the partition's
//! shard.
//!
//! Owns everything below the produce and fetch handlers: segment files
//! (`<20-digit base offset>.log`), their sparse `.index` and `.timeindex`, the
//! `leader-epoch-checkpoint` and `partition.metadata` files, the recovery-point checkpoint
//! format, offset and timestamp lookups, group-committed fdatasync and crash recovery, and
//! the producer state that makes appends idempotent and transactions atomic (`producers`,
//! with Kafka's `.snapshot` and `.txnindex` files, `producer_log`).
//! Files are byte-compatible with Apache Kafka's.
//!
//! Runtime: a [`PartitionLog`] is `!Send` and lives on the glommio executor of the shard
//! that owns the partition; all I/O goes through io_uring (glommio's buffered files) or,
//! for the few calls io_uring cannot make (readdir, unlink, ftruncate), glommio's blocking
//! thread pool, so the shard never blocks in a syscall.
//!
//! Invariants (asserted in release builds): log start offset ≤ high watermark ≤ log end
//! offset; offsets are contiguous and assigned in call order (the cleaner later leaves
//! gaps inside the segments it rewrites, never in the active one); readers never see above
//! the bound they pass nor a hole below the log end offset; index entries strictly increase;
//! positions lie inside the file; the recovery point only covers bytes a completed
//! fdatasync covered.
//!
//! Offsets, epochs and timestamps are the broker's vocabulary (`crate::model`).
//! Modules: [`config`] (`LogConfig`), [`error`], [`index`]
//! (sparse indices), [`checkpoint`] (small text files), `segment` (one segment, scans),
//! `log` (`PartitionLog`: state, open, close), `append` (appends, the writer task),
//! `durability` (group commit, the sync task), `read` (reads, offset lookups), `segments`
//! (roll, truncation, segment deletion), [`retention`] (retention by time and size,
//! DeleteRecords, `.deleted` files), [`cleaner`] (log compaction: the cleaner of each
//! shard, Kafka's LogCleaner), `recovery` (what open finds on disk), [`testing`]
//! (executor and crash simulation for tests and benches).

mod append;
pub mod checkpoint;
pub mod cleaner;
pub mod config;
mod durability;
pub mod error;
pub(crate) mod fs;
pub mod index;
mod log;
mod notify;
mod producer_log;
pub mod producers;
mod read;
mod recovery;
pub mod retention;
mod segment;
mod segments;
mod sequencer;
pub mod testing;

/// Record batches (magic 2), as the protocol layer parses and builds them.
pub use crate::protocol::records;

pub use append::AppendInfo;
pub use checkpoint::{
    EpochEntry, LEADER_EPOCH_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT, LeaderEpochCache,
    LeaderEpochCheckpoint, OffsetCheckpoint, PARTITION_METADATA, PartitionMetadata,
    RECOVERY_POINT_CHECKPOINT,
};
pub use config::{LogConfig, MessageTimestampType};
pub use error::{Result, StorageError};
pub use fs::{DELETE_SUFFIX, discard_dir};
pub use log::PartitionLog;
pub use notify::{Notified, Notify};
pub use producers::{AbortedTxn, Marker, ProducerEntry, ProducerError};
pub(crate) use sequencer::Sequencer;
// The log speaks the broker's vocabulary (`crate::model`).
pub use crate::model::{
    HighWatermark, LeaderEpoch, LogEndOffset, LogStartOffset, Offset, Timestamp, TopicPartition,
};
pub use read::{FileRange, TimestampAndOffset};
pub use recovery::RecoveryStats;
pub use retention::RetentionOutcome;
pub use segment::{LogFile, segment_file_name};

#[cfg(test)]
mod large_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod retention_tests;
#[cfg(test)]
mod tests;
