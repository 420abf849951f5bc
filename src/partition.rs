//! A partition this broker leads: its log, its topic's configuration and its leader
//! epoch, with the produce-side checks Kafka makes before anything is appended.
//!
//! Owned by the shard the shard table assigns the partition to; `!Send`. Its topic (and
//! so its configuration) is replaced when a metadata change alters the topic
//! (`set_topic`): the log takes the new configuration at once. Single node:
//! this broker is the only replica, so the ISR is {self}, the leader epoch is fixed for
//! the life of the topic, and the high watermark follows the log end offset as soon as
//! an append is in the page cache. acks=all additionally waits for the fdatasync that
//! covers the append (group-committed with every other waiter).
//!
//! Each partition counts its own load (`load`: bytes and records in and out, appends,
//! reads, and the time its shard spent on them), on its shard, for as long as it is open.
//!
//! Invariant: every batch appended passed `RecordBatch::validate` (CRC, codec, record
//! count) and the topic's size and timestamp limits.

pub mod load;

use crate::config::{CompressionType, TimestampType, TopicConfig};
use crate::futures::timed;
use crate::metadata::{Topic, TopicPartition};
use crate::model::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Timestamp};
use crate::protocol::ErrorCode;
use crate::protocol::records::{
    BatchBuilder, BatchError, Compression, NO_SEQUENCE, RecordBatch, batches,
};
use crate::storage::{
    AbortedTxn, AppendInfo, FileRange, LogConfig, Marker, PartitionLog, PartitionMetadata,
    ProducerEntry, ProducerError, StorageError, TimestampAndOffset,
};
use bytes::Bytes;
use load::PartitionLoad;
use shards::rt;
use std::cell::RefCell;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

/// The leader epoch of every partition of a single node.
pub const LEADER_EPOCH: LeaderEpoch = LeaderEpoch(0);

/// A client-visible failure of a partition operation: Kafka's code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionError {
    pub code: ErrorCode,
    pub message: String,
    /// The records that made Produce refuse a batch: (index in the batch, why), as
    /// Kafka's `record_errors`.
    pub record_errors: Vec<(i32, String)>,
}

impl PartitionError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> PartitionError {
        PartitionError {
            code,
            message: message.into(),
            record_errors: Vec::new(),
        }
    }

    /// A batch refused because of its record at `index`.
    pub fn record(code: ErrorCode, index: usize, message: String) -> PartitionError {
        PartitionError {
            code,
            message: message.clone(),
            record_errors: vec![(index as i32, message)],
        }
    }
}

/// How a storage failure reaches the client. Environment failures (I/O errors, a failed
/// log) also stop the broker: see `stop::fatal`.
pub fn storage_error_code(error: &StorageError) -> ErrorCode {
    match error {
        StorageError::Io { .. } | StorageError::LogFailed { .. } => ErrorCode::KafkaStorageError,
        // The partition went away (its topic deleted, or a shut-down) under the request:
        // the client refreshes its metadata and retries.
        StorageError::Closed => ErrorCode::NotLeaderOrFollower,
        StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        StorageError::InvalidBatch { .. } => ErrorCode::CorruptMessage,
        StorageError::RecordTooLarge { .. } => ErrorCode::MessageTooLarge,
        StorageError::InvalidConfig(_) => ErrorCode::InvalidConfig,
        StorageError::Producer(e) => match e {
            ProducerError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
            ProducerError::InvalidEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            ProducerError::CoordinatorFenced { .. } => ErrorCode::TransactionCoordinatorFenced,
            ProducerError::InvalidTxnState { .. } => ErrorCode::InvalidTxnState,
        },
    }
}

/// Kafka's code for a batch that fails validation.
pub fn batch_error_code(error: &BatchError) -> ErrorCode {
    match error {
        BatchError::Truncated { .. }
        | BatchError::InvalidLength(_)
        | BatchError::CrcMismatch { .. }
        | BatchError::Decompression { .. } => ErrorCode::CorruptMessage,
        BatchError::UnsupportedMagic(_) => ErrorCode::UnsupportedForMessageFormat,
        BatchError::UnsupportedCompression(_) => ErrorCode::UnsupportedCompressionType,
        BatchError::InvalidRecordCount { .. }
        | BatchError::InvalidRecord { .. }
        | BatchError::DecompressedTooLarge { .. } => ErrorCode::InvalidRecord,
    }
}

/// The client's error for a storage failure; an environment failure stops the broker
/// first (`stop::fatal`). Called by name where storage answers, never as a conversion.
pub fn client_error_or_stop(error: StorageError) -> PartitionError {
    if error.is_environment() {
        crate::stop::fatal(&format!("storage failed: {error}"));
    }
    PartitionError::new(storage_error_code(&error), error.to_string())
}

/// What a fetch found in one partition, in a form any shard can send.
#[derive(Debug)]
pub struct Fetched {
    pub high_watermark: Offset,
    pub last_stable_offset: Offset,
    pub log_start_offset: Offset,
    /// read_committed: the aborted transactions overlapping the range read, which the
    /// consumer skips (Kafka's `aborted_transactions`).
    pub aborted: Vec<AbortedTxn>,
    /// Whole batches from the fetch offset, or nothing when no data is available.
    pub range: Option<SegmentRange>,
}

/// A range of whole batches in a segment file, owned and sendable: a duplicate of the
/// file's descriptor (closed when dropped, so the file stays readable even if the
/// segment is deleted meanwhile) and where the batches are. The one form fetched data
/// takes, whichever shard reads it and whichever sends it.
#[derive(Debug)]
pub struct SegmentRange {
    pub fd: OwnedFd,
    /// Byte position of the first batch in the file.
    pub position: u64,
    /// Bytes of whole batches from `position`.
    pub length: u64,
}

impl SegmentRange {
    fn share(range: &FileRange) -> std::io::Result<SegmentRange> {
        // SAFETY: the descriptor belongs to a file `range` keeps open for this call.
        let borrowed = unsafe { BorrowedFd::borrow_raw(range.raw_fd()) };
        Ok(SegmentRange {
            fd: borrowed.try_clone_to_owned()?,
            position: range.position,
            length: range.length,
        })
    }
}

pub struct Partition {
    pub tp: TopicPartition,
    /// The topic as the shard's metadata image last gave it.
    topic: RefCell<Rc<Topic>>,
    log: PartitionLog,
    load: PartitionLoad,
}

impl Partition {
    /// Opens (creating or recovering) the partition's log in `dir` and makes everything
    /// that survived recovery visible: on a single node, all of it is committed.
    /// `recovery_point` and `log_start` are what the log dir's checkpoints say of this
    /// partition (0 when they say nothing).
    pub async fn open(
        dir: &Path,
        tp: TopicPartition,
        topic: Rc<Topic>,
        recovery_point: Offset,
        log_start: Offset,
    ) -> Result<Partition, StorageError> {
        let metadata_path = dir.join(crate::storage::PARTITION_METADATA);
        let existing = PartitionMetadata::read(&metadata_path).await?;
        // A recovery point vouches only for this topic's directory: without its
        // partition.metadata, recovery scans everything.
        let (recovery_point, log_start) = match existing {
            Some(existing) if existing.topic_id == topic.id => (recovery_point, log_start),
            _ => (Offset::ZERO, Offset::ZERO),
        };
        if let Some(existing) = existing
            && existing.topic_id != topic.id
        {
            // A directory left by a deleted topic of the same name (its removal was cut
            // short): its records are not this topic's.
            tracing::warn!(
                "{tp}: {} holds topic id {}, not {}: a deleted topic's leftover, removed",
                dir.display(),
                existing.topic_id,
                topic.id
            );
            crate::storage::discard_dir(dir).await?;
        }
        let log = PartitionLog::open(
            dir,
            LogConfig::from_topic_config(&topic.config),
            recovery_point,
        )
        .await?;
        match PartitionMetadata::read(&metadata_path).await? {
            Some(existing) if existing.topic_id == topic.id => {}
            _ => {
                PartitionMetadata { topic_id: topic.id }
                    .write(&metadata_path)
                    .await?;
            }
        }
        log.advance_high_watermark(log.log_end_offset().offset());
        log.restore_log_start(log_start).await?;
        Ok(Partition {
            tp,
            topic: RefCell::new(topic),
            log,
            load: PartitionLoad::default(),
        })
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    /// What this partition appended and served since it was opened here.
    pub fn load(&self) -> &PartitionLoad {
        &self.load
    }

    /// The partition's topic, with its configuration in effect.
    pub fn topic(&self) -> Rc<Topic> {
        self.topic.borrow().clone()
    }

    /// Takes the topic a metadata change made (more partitions, another configuration):
    /// a changed configuration goes to the log at once, so segment rolling, flushing,
    /// retention and the append checks follow it from the next append on.
    pub fn set_topic(&self, topic: Rc<Topic>) {
        assert_eq!(
            topic.id,
            self.topic.borrow().id,
            "{} given another topic's metadata",
            self.tp
        );
        if topic.config != self.topic.borrow().config {
            self.log
                .set_config(LogConfig::from_topic_config(&topic.config));
        }
        *self.topic.borrow_mut() = topic;
    }

    pub fn high_watermark(&self) -> Offset {
        self.log.high_watermark().offset()
    }

    pub fn log_start_offset(&self) -> Offset {
        self.log.log_start_offset().offset()
    }

    pub fn log_end_offset(&self) -> Offset {
        self.log.log_end_offset().offset()
    }

    /// Appends validated batches. Returns once they are in the page cache and visible
    /// to consumers (the high watermark covers them); with `durable`, once an fdatasync
    /// also covers them.
    pub async fn append(
        &self,
        batches: &[RecordBatch],
        durable: bool,
    ) -> Result<AppendInfo, PartitionError> {
        let load = &self.load;
        load.produce_requests.set(load.produce_requests.get() + 1);
        let appended = timed(self.append_untimed(batches, durable), &load.busy_ns).await;
        if let Ok(info) = &appended
            && !info.duplicate
        {
            let bytes: usize = batches.iter().map(RecordBatch::size).sum();
            let records = (info.last_offset.0 - info.first_offset.0 + 1).max(0) as u64;
            load.bytes_in.set(load.bytes_in.get() + bytes as u64);
            load.records_in.set(load.records_in.get() + records);
        }
        appended
    }

    async fn append_untimed(
        &self,
        batches: &[RecordBatch],
        durable: bool,
    ) -> Result<AppendInfo, PartitionError> {
        let info = self
            .log
            .append(batches, LEADER_EPOCH)
            .await
            .map_err(client_error_or_stop)?;
        if info.duplicate {
            tracing::debug!(
                "{}: a retried batch, answered with its original offsets {}..={}",
                self.tp,
                info.first_offset,
                info.last_offset
            );
        }
        self.log.advance_high_watermark(info.last_offset.next());
        if durable {
            self.log
                .wait_durable(info.last_offset)
                .await
                .map_err(client_error_or_stop)?;
        }
        Ok(info)
    }

    /// Writes a transaction marker (a control batch: COMMIT or ABORT of the producer's
    /// open transaction on this partition), durably. The log checks the producer's epoch
    /// and completes its transaction: the last stable offset moves past it and an abort
    /// enters the aborted index.
    pub async fn write_marker(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<AppendInfo, PartitionError> {
        let (key, value) = Marker {
            commit,
            coordinator_epoch,
        }
        .key_and_value();
        let mut builder = BatchBuilder::new(Compression::None)
            .producer(producer_id.0, producer_epoch.0, NO_SEQUENCE)
            .transactional(true)
            .control(true);
        builder.push(Timestamp::now().0, Some(&key), Some(&value), &[]);
        let batch = RecordBatch::parse(builder.build(0)).expect("a built batch parses");
        self.append(&[batch], true).await
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1: the high watermark).
    /// An offset above the high watermark is OFFSET_OUT_OF_RANGE, as Kafka answers.
    pub async fn delete_records(&self, offset: i64) -> Result<Offset, PartitionError> {
        let target = if offset == -1 {
            self.high_watermark()
        } else {
            Offset(offset)
        };
        if target < Offset::ZERO || target > self.high_watermark() {
            return Err(PartitionError::new(
                ErrorCode::OffsetOutOfRange,
                format!(
                    "cannot delete records of {} below {offset}: the high watermark is {}",
                    self.tp,
                    self.high_watermark()
                ),
            ));
        }
        match self.log.delete_records_before(target).await {
            Ok(log_start) => Ok(log_start.offset()),
            Err(e) => Err(client_error_or_stop(e)),
        }
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `leader_epoch` and where it
    /// ends (Kafka's undefined -1/-1 for an epoch above the current one), after checking
    /// the client's `current_leader_epoch` (-1: not checked) against this leader's, as
    /// Kafka does: older is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
    pub fn end_offset_for_epoch(
        &self,
        current_leader_epoch: i32,
        leader_epoch: i32,
    ) -> Result<(i32, i64), PartitionError> {
        if current_leader_epoch >= 0 && current_leader_epoch != LEADER_EPOCH.0 {
            let code = if current_leader_epoch < LEADER_EPOCH.0 {
                ErrorCode::FencedLeaderEpoch
            } else {
                ErrorCode::UnknownLeaderEpoch
            };
            return Err(PartitionError::new(
                code,
                format!(
                    "{}: leader epoch {current_leader_epoch} asked, the leader's is {}",
                    self.tp, LEADER_EPOCH
                ),
            ));
        }
        let log_end = self.log_end_offset();
        // The leader's epoch starts at the log end offset when it takes leadership, as
        // Kafka assigns it, so a log with no batch yet still knows it.
        if leader_epoch == LEADER_EPOCH.0 && self.log.leader_epochs().latest().is_none() {
            return Ok((LEADER_EPOCH.0, log_end.0));
        }
        Ok(self
            .log
            .end_offset_for_epoch(LeaderEpoch(leader_epoch))
            .map_or((-1, -1), |(epoch, offset)| (epoch.0, offset.0)))
    }

    /// The producers this partition knows (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerEntry> {
        self.log.producers()
    }

    /// Whole batches from `offset`, at most `max_bytes` (but at least one batch when
    /// `min_one_batch`, as Kafka serves the first partition of a fetch), never above the
    /// high watermark — nor, for `read_committed`, above the last stable offset, with the
    /// aborted transactions the range overlaps.
    pub async fn fetch(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
        read_committed: bool,
    ) -> Result<Fetched, PartitionError> {
        let load = &self.load;
        load.fetch_requests.set(load.fetch_requests.get() + 1);
        let fetched = timed(
            self.fetch_untimed(offset, max_bytes, min_one_batch, read_committed),
            &load.busy_ns,
        )
        .await;
        if let Ok(Fetched {
            range: Some(range), ..
        }) = &fetched
        {
            load.bytes_out.set(load.bytes_out.get() + range.length);
        }
        fetched
    }

    async fn fetch_untimed(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
        read_committed: bool,
    ) -> Result<Fetched, PartitionError> {
        let high_watermark = self.high_watermark();
        let last_stable_offset = self.log.last_stable_offset().offset();
        let bound = if read_committed {
            last_stable_offset
        } else {
            high_watermark
        };
        let log_start_offset = self.log_start_offset();
        if offset < log_start_offset || offset > self.log_end_offset() {
            return Err(PartitionError::new(
                ErrorCode::OffsetOutOfRange,
                format!(
                    "offset {offset} is outside [{log_start_offset}, {}] of {}",
                    self.log_end_offset(),
                    self.tp
                ),
            ));
        }
        let range = if offset >= bound {
            None
        } else {
            self.log
                .read(offset, max_bytes, bound, min_one_batch)
                .await
                .map_err(client_error_or_stop)?
        };
        let range = match range {
            None => None,
            Some(range) => Some(SegmentRange::share(&range).map_err(|e| {
                PartitionError::new(
                    ErrorCode::KafkaStorageError,
                    format!("cannot share a segment file of {}: {e}", self.tp),
                )
            })?),
        };
        let aborted = if read_committed && range.is_some() {
            self.log.aborted_transactions(offset, bound)
        } else {
            Vec::new()
        };
        Ok(Fetched {
            high_watermark,
            last_stable_offset,
            log_start_offset,
            aborted,
            range,
        })
    }

    /// ListOffsets: -1 latest (high watermark; the last stable offset for
    /// read_committed), -2 earliest and -4 earliest local (log
    /// start offset), -3 the record with the largest timestamp, -5 latest tiered (none),
    /// else the first record at or after `timestamp`.
    pub async fn list_offset(
        &self,
        timestamp: i64,
        read_committed: bool,
    ) -> Result<Option<TimestampAndOffset>, PartitionError> {
        let at = |offset: Offset| TimestampAndOffset {
            timestamp: Timestamp::NONE,
            offset,
            leader_epoch: LEADER_EPOCH,
        };
        Ok(match timestamp {
            -1 if read_committed => Some(at(self.log.last_stable_offset().offset())),
            -1 => Some(at(self.high_watermark())),
            // Earliest and earliest-local (KIP-405): without tiered storage, the same.
            -2 | -4 => Some(at(self.log_start_offset())),
            // Latest tiered (KIP-1005): nothing is tiered, so none, as Kafka answers.
            -5 => Some(TimestampAndOffset {
                timestamp: Timestamp::NONE,
                offset: Offset(-1),
                leader_epoch: LeaderEpoch(-1),
            }),
            -3 => self
                .log
                .max_timestamp_offset()
                .await
                .map_err(client_error_or_stop)?,
            ts if ts >= 0 => self
                .log
                .offset_for_timestamp(Timestamp(ts))
                .await
                .map_err(client_error_or_stop)?,
            other => {
                return Err(PartitionError::new(
                    ErrorCode::InvalidRequest,
                    format!("timestamp {other} is not a ListOffsets target"),
                ));
            }
        })
    }
}

/// Record data up to this size is checked inline; larger data that must be
/// decompressed or recompressed is checked on the shard's blocking pool.
const CHECK_INLINE_BYTES: usize = 64 * 1024;

/// Checks a producer's record data for `tp` as Kafka's log validator does and splits it
/// into batches ready to append. Runs on the shard of the connection that received it,
/// never on the partition's owner, whose inbox only appends: and large compressed (or
/// to-be-recompressed) data is decompressed, checked and recompressed off the shard, so
/// one large batch delays no other request of the shard.
pub async fn validate_produce(
    topic: &Topic,
    tp: &TopicPartition,
    records: Bytes,
) -> Result<Vec<RecordBatch>, PartitionError> {
    let costly = records.len() > CHECK_INLINE_BYTES
        && (matches!(topic.config.compression_type, CompressionType::Codec(_))
            || batches(records.clone())
                .next()
                .and_then(|b| b.ok())
                .is_some_and(|b| b.header().compression() != Ok(Compression::None)));
    if !costly {
        return check_produce(&topic.config, tp, records);
    }
    let config = topic.config.clone();
    let tp = tp.clone();
    rt::offload(move || check_produce(&config, &tp, records)).await
}

/// The checks of `validate_produce`, on the calling thread.
fn check_produce(
    config: &TopicConfig,
    tp: &TopicPartition,
    records: Bytes,
) -> Result<Vec<RecordBatch>, PartitionError> {
    let now = Timestamp::now().0;
    let mut out = Vec::new();
    for batch in batches(records) {
        let batch = batch.map_err(|e| PartitionError::new(batch_error_code(&e), e.to_string()))?;
        if batch.size() > config.max_message_bytes.max(0) as usize {
            return Err(PartitionError::new(
                ErrorCode::MessageTooLarge,
                format!(
                    "batch of {} bytes exceeds max.message.bytes {}",
                    batch.size(),
                    config.max_message_bytes
                ),
            ));
        }
        batch
            .validate()
            .map_err(|e| PartitionError::new(batch_error_code(&e), e.to_string()))?;
        let h = batch.header();
        if h.is_control() {
            return Err(PartitionError::new(
                ErrorCode::InvalidRecord,
                "clients may not write control batches",
            ));
        }
        check_records(&batch, config, now, tp)?;
        out.push(match config.compression_type {
            CompressionType::Codec(codec) if h.compression() != Ok(codec) => {
                recompress(&batch, codec)?
            }
            _ => batch,
        });
    }
    if out.is_empty() {
        return Err(PartitionError::new(
            ErrorCode::InvalidRecord,
            "the record set holds no batch",
        ));
    }
    Ok(out)
}

/// Kafka's per-record checks (its LogValidator): every record parses, offset deltas run
/// 0, 1, 2, … up to the batch's record count, a compacted topic's records have keys, and
/// with CreateTime each record's timestamp is within `message.timestamp.before.max.ms`
/// and `message.timestamp.after.max.ms` of now. Uncompressed records are read in place
/// (no copy, no allocation); compressed ones are decompressed, within the decompression
/// bound.
fn check_records(
    batch: &RecordBatch,
    config: &TopicConfig,
    now: i64,
    tp: &TopicPartition,
) -> Result<(), PartitionError> {
    let check_time = config.message_timestamp_type == TimestampType::CreateTime;
    let base_timestamp = batch.header().base_timestamp;
    let mut refused: Option<PartitionError> = None;
    let walked = batch.walk_records(|index, record| {
        let refuse =
            |code: ErrorCode, message: String| Err(PartitionError::record(code, index, message));
        let outcome = if i64::from(record.offset_delta) != index as i64 {
            refuse(
                ErrorCode::InvalidRecord,
                format!(
                    "record {index} has offset delta {}, out of sequence",
                    record.offset_delta
                ),
            )
        } else if config.cleanup_policy_compact && !record.has_key {
            refuse(
                ErrorCode::InvalidRecord,
                format!(
                    "Compacted topic cannot accept message without key in topic partition {tp}."
                ),
            )
        } else if check_time {
            let timestamp = base_timestamp.saturating_add(record.timestamp_delta);
            // -1 (no timestamp) is let through, as Kafka does for records without one.
            let too_old = timestamp >= 0
                && now.saturating_sub(timestamp) > config.message_timestamp_before_max_ms;
            let too_new = timestamp.saturating_sub(now) > config.message_timestamp_after_max_ms;
            if too_old || too_new {
                refuse(
                    ErrorCode::InvalidTimestamp,
                    format!(
                        "Timestamp {timestamp} of message with offset {index} is out of range. \
                         The timestamp should be within [{}, {}]",
                        now.saturating_sub(config.message_timestamp_before_max_ms),
                        now.saturating_add(config.message_timestamp_after_max_ms)
                    ),
                )
            } else {
                Ok(())
            }
        } else {
            Ok(())
        };
        outcome.map_err(|e| {
            refused = Some(e);
            BatchError::InvalidRecord {
                index,
                reason: "refused".into(),
            }
        })
    });
    match (walked, refused) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(refused)) => Err(refused),
        (Err(e), None) => Err(PartitionError::new(batch_error_code(&e), e.to_string())),
    }
}

/// Rewrites a batch with the topic's codec (`compression.type` other than `producer`),
/// keeping producer id, epoch, sequence, flags and record timestamps.
fn recompress(batch: &RecordBatch, codec: Compression) -> Result<RecordBatch, PartitionError> {
    let invalid = |e: BatchError| PartitionError::new(batch_error_code(&e), e.to_string());
    let h = batch.header();
    let mut builder = BatchBuilder::new(codec)
        .producer(h.producer_id, h.producer_epoch, h.base_sequence)
        .transactional(h.is_transactional())
        .partition_leader_epoch(h.partition_leader_epoch);
    for record in batch.records().map_err(invalid)? {
        let record = record.map_err(invalid)?;
        builder.push(
            batch.timestamp_of(&record),
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        );
    }
    RecordBatch::parse(builder.build(h.base_offset)).map_err(invalid)
}
