//! The partition log: append, group-committed durability, reads by offset and timestamp,
//! truncation and segment deletion, for one partition.
//!
//! Owns [`PartitionLog`] and everything it hands out ([`AppendInfo`], [`FileRange`],
//! [`TimestampAndOffset`]). One `PartitionLog` per partition, on the shard that owns the
//! partition: it is `!Send` (`Rc`/`RefCell` inside) and a cheap handle (`Clone` shares the
//! same log), so the tasks of that shard can use it concurrently.
//!
//! ## Concurrency of appends (all on one thread, many tasks)
//!
//! An append takes a [`Sequencer`] turn (FIFO; free and without yielding when nobody is
//! ahead), rolls the segment if needed (the only await while holding the turn), then, with
//! no await, assigns offsets and the file position, copies the batches into the pending
//! write buffer while rewriting base offset and leader epoch, updates the in-memory indices,
//! and releases the turn. Offsets and positions are therefore contiguous and in call order.
//! A single writer task per log drains the queue of pending buffers one `write_at` at a
//! time, in order, coalescing appends that arrive while a write is in flight into one
//! buffer. The log end offset advances only when a write completes, and writes complete in
//! order, so a reader bounded by the log end offset never sees a hole. Reserved bytes are
//! always written even if the appending task is dropped.
//!
//! ## Durability
//!
//! [`PartitionLog::wait_durable`] and [`PartitionLog::flush`] share fdatasyncs: if no sync
//! runs, the caller starts one (in its own task) covering everything written so far; if one
//! runs, callers wait for it and the next one covers all of them. Such a sync fdatasyncs
//! every segment file with unsynced bytes, finalizes the indices of rolled segments, syncs
//! the directory after segment creation and the leader epoch checkpoint if it changed; then
//! the durable offset moves. A *full* sync (at a roll, at close, after a truncation, and
//! on [`PartitionLog::checkpoint`]) also writes and fdatasyncs the active segment's indices
//! and moves the recovery point, from which the next open validates. So a flush for acks=all
//! costs one fdatasync, and Kafka's recovery point semantics hold. A failed fdatasync takes
//! the log offline ([`StorageError::LogFailed`]): the kernel may have dropped the dirty
//! pages, so nothing written can be trusted any more.
//!
//! ## Invariants (asserted in release builds)
//!
//! log start offset ≤ high watermark ≤ log end offset ≤ reserved next offset; recovery
//! point ≤ durable offset ≤ log end offset; every write lands exactly at the segment's written size; index
//! entries strictly increase.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_lite::future;

use super::checkpoint::{LEADER_EPOCH_CHECKPOINT, LeaderEpochCache, LeaderEpochCheckpoint};
use super::config::{LogConfig, MessageTimestampType};
use super::error::{Result, StorageError};
use super::fs;
use super::notify::{Notified, Notify};
use super::records::{
    RecordBatch, batches, set_base_offset, set_log_append_time, set_partition_leader_epoch,
};
use super::segment::{
    self, INDEX_SUFFIX, IndexFileState, IndexPersist, LOG_SUFFIX, LogFile, ScanEnd, Segment,
    SegmentIndexes, TIME_INDEX_SUFFIX, scan_headers, segment_file_name,
};
use super::sequencer::Sequencer;
use super::testing::FileDurability;
use crate::model::{HighWatermark, LeaderEpoch, LogEndOffset, LogStartOffset, Offset, Timestamp};

/// Appends arriving while a write is in flight are coalesced into one write of at most
/// this many bytes (a single larger append is written on its own).
const COALESCE_LIMIT: usize = 1 << 20;

/// What an append assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Base offset of the first batch.
    pub first_offset: Offset,
    /// Last offset of the last batch.
    pub last_offset: Offset,
    /// Largest batch max timestamp of the append (the broker's clock under LogAppendTime).
    pub max_timestamp: Timestamp,
    /// Last offset of the first batch carrying `max_timestamp` (Kafka's "shallow" offset).
    pub offset_of_max_timestamp: Offset,
    /// The broker time stamped into the batches under LogAppendTime.
    pub log_append_time: Option<Timestamp>,
    /// The log start offset when the append was made (ProduceResponse carries it).
    pub log_start_offset: LogStartOffset,
}

/// What opening the log had to do: the cost of recovery is proportional to
/// `bytes_scanned`, the data after the recovery point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Segments in the log after opening.
    pub segments: usize,
    /// Segments whose batches were validated.
    pub segments_scanned: usize,
    /// Bytes of batches read and CRC-checked.
    pub bytes_scanned: u64,
    /// Bytes cut off as torn or corrupt (in the segments that were scanned).
    pub bytes_truncated: u64,
    /// Wall time of `open`.
    pub duration: std::time::Duration,
}

/// A record found by a timestamp lookup (ListOffsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: Timestamp,
    pub offset: Offset,
    pub leader_epoch: LeaderEpoch,
}

/// Whole batches of one segment file, ready to be sent with `sendfile`: the file stays
/// open while this range lives.
#[derive(Clone, Debug)]
pub struct FileRange {
    file: Rc<LogFile>,
    /// Byte position of the first batch in the file.
    pub position: u64,
    /// Bytes of whole batches from `position`.
    pub length: u64,
    /// Base offset of the first batch (at or below the requested offset, as Kafka serves).
    pub first_offset: Offset,
    /// Where the next read should start: one past the last batch in the range.
    pub next_offset: Offset,
}

impl FileRange {
    /// The segment file's descriptor, for `sendfile`.
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn file(&self) -> &Rc<LogFile> {
        &self.file
    }

    /// Copies the range into memory through io_uring (for cold data and tests).
    pub async fn read(&self) -> Result<Bytes> {
        segment::read_bytes(&self.file, self.position as u32, self.length as usize).await
    }
}

/// A segment's max timestamp, its offset, and its time index entries (tests).
#[cfg(test)]
pub(crate) type TimeInfo = (Timestamp, Offset, Vec<(Timestamp, Offset)>);

/// One buffer waiting for the writer task.
struct WriteChunk {
    segment_base: Offset,
    file: Rc<LogFile>,
    position: u32,
    buf: Vec<u8>,
    first_offset: Offset,
    end_offset: Offset,
}

pub(crate) struct LogState {
    pub dir: PathBuf,
    pub config: LogConfig,
    /// Segments by base offset; the last one is active. Never empty.
    pub segments: BTreeMap<i64, Segment>,
    pub log_start: LogStartOffset,
    pub high_watermark: HighWatermark,
    /// One past the last offset whose write completed.
    pub log_end: LogEndOffset,
    /// One past the last offset handed to an appender.
    pub next_offset: Offset,
    /// Every offset below is covered by a completed fdatasync.
    pub durable: Offset,
    /// Every offset below is durable and so are the index entries describing it: where the
    /// next open may start validating (Kafka's recovery point).
    pub recovery_point: Offset,
    write_queue: VecDeque<WriteChunk>,
    writer_running: bool,
    /// A sync, truncation or close owns the index files and durability bookkeeping.
    maintenance_busy: bool,
    /// Run another sync when the current one ends (requested by a roll).
    sync_requested: bool,
    flush_timer_armed: bool,
    failed: Option<Arc<str>>,
    /// The final sync of `close` trims the active segment's indices like an inactive one's.
    closing: bool,
    closed: bool,
    pub epochs: LeaderEpochCache,
    pub epochs_dirty: bool,
    /// Files were created or removed since the last directory fsync.
    pub dir_dirty: bool,
    /// Base offsets of segments whose directory entries are not yet fsynced.
    pub entries_not_durable: Vec<Offset>,
    /// Completed sync passes (group commits), for metrics and tests.
    pub syncs_completed: u64,
    /// What `open` did.
    pub recovery_stats: RecoveryStats,
}

pub(crate) struct Inner {
    pub state: RefCell<LogState>,
    sequencer: Sequencer,
    /// A write completed (log end offset moved) or the log failed.
    written: Notify,
    /// A sync or maintenance step ended.
    durable: Notify,
    /// The log end offset or high watermark moved (long-poll fetches).
    watch: Notify,
}

/// The log of one partition. See the module documentation for the concurrency design.
///
/// Lives on the shard that owns the partition and is `!Send`; clones are handles to the
/// same log.
#[derive(Clone)]
pub struct PartitionLog {
    pub(crate) inner: Rc<Inner>,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.state.borrow();
        f.debug_struct("PartitionLog")
            .field("dir", &st.dir)
            .field("log_start", &st.log_start)
            .field("high_watermark", &st.high_watermark)
            .field("log_end", &st.log_end)
            .field("durable", &st.durable)
            .field("recovery_point", &st.recovery_point)
            .field("segments", &st.segments.len())
            .finish()
    }
}

impl LogState {
    pub(crate) fn new(dir: PathBuf, config: LogConfig) -> Self {
        LogState {
            dir,
            config,
            segments: BTreeMap::new(),
            log_start: LogStartOffset(Offset::ZERO),
            high_watermark: HighWatermark(Offset::ZERO),
            log_end: LogEndOffset(Offset::ZERO),
            next_offset: Offset::ZERO,
            durable: Offset::ZERO,
            recovery_point: Offset::ZERO,
            write_queue: VecDeque::new(),
            writer_running: false,
            maintenance_busy: false,
            sync_requested: false,
            flush_timer_armed: false,
            failed: None,
            closing: false,
            closed: false,
            epochs: LeaderEpochCache::default(),
            epochs_dirty: false,
            dir_dirty: false,
            entries_not_durable: Vec::new(),
            syncs_completed: 0,
            recovery_stats: RecoveryStats::default(),
        }
    }

    pub(crate) fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn usable(&self) -> Result<()> {
        if let Some(reason) = &self.failed {
            return Err(StorageError::LogFailed {
                reason: reason.clone(),
            });
        }
        if self.closed {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    fn fail(&mut self, error: &StorageError) {
        if self.failed.is_none() {
            self.failed = Some(error.to_string().into());
        }
        self.write_queue.clear();
    }

    /// The base offset of the segment that holds `offset` (the last one starting at or
    /// below it).
    fn segment_base_for(&self, offset: Offset) -> Option<i64> {
        self.segments
            .range(..=offset.0)
            .next_back()
            .map(|(b, _)| *b)
    }

    pub(crate) fn check_invariants(&self) {
        assert!(
            self.log_start.offset() <= self.high_watermark.offset(),
            "log start offset {} above high watermark {}",
            self.log_start,
            self.high_watermark
        );
        assert!(
            self.high_watermark.offset() <= self.log_end.offset(),
            "high watermark {} above log end offset {}",
            self.high_watermark,
            self.log_end
        );
        assert!(
            self.log_end.offset() <= self.next_offset,
            "log end offset {} above reserved next offset {}",
            self.log_end,
            self.next_offset
        );
        assert!(
            self.recovery_point <= self.durable,
            "recovery point {} above durable offset {}",
            self.recovery_point,
            self.durable
        );
        assert!(
            self.durable <= self.log_end.offset(),
            "durable offset {} above log end offset {}",
            self.durable,
            self.log_end
        );
        let active = self.active();
        assert_eq!(
            active.reserved_next_offset, self.next_offset,
            "active segment {} ends at {} but the log's next offset is {}",
            active.base_offset, active.reserved_next_offset, self.next_offset
        );
        active.check_invariants();
    }
}

/// Checks that `batches` can be appended as a leader would: magic 2, one record at least,
/// a record count that matches the offset delta, sizes within limits. The CRC is the
/// caller's job (the produce path validates batches where it decodes them).
fn check_batches(batches: &[RecordBatch], config: &LogConfig) -> Result<(u64, i64)> {
    if batches.is_empty() {
        return Err(StorageError::InvalidBatch {
            batch: 0,
            reason: "an append needs at least one batch".into(),
        });
    }
    let mut total_bytes = 0u64;
    let mut total_offsets = 0i64;
    for (i, batch) in batches.iter().enumerate() {
        let h = batch.header();
        let invalid = |reason: String| StorageError::InvalidBatch { batch: i, reason };
        if h.magic != 2 {
            return Err(invalid(format!("magic {} is not 2", h.magic)));
        }
        if batch.bytes().len() != h.size() {
            return Err(invalid(format!(
                "batch length {} disagrees with its {} bytes",
                h.batch_length,
                batch.bytes().len()
            )));
        }
        if h.record_count < 1 || h.last_offset_delta as i64 + 1 != h.record_count as i64 {
            return Err(invalid(format!(
                "record count {} disagrees with last offset delta {}",
                h.record_count, h.last_offset_delta
            )));
        }
        let max = (config.max_message_bytes as usize).min(config.segment_bytes as usize);
        if h.size() > max {
            return Err(StorageError::RecordTooLarge {
                batch: i,
                size: h.size(),
                max,
            });
        }
        total_bytes += h.size() as u64;
        total_offsets += h.last_offset_delta as i64 + 1;
    }
    Ok((total_bytes, total_offsets))
}

/// Runs `futures` concurrently; the first error wins (all still run to completion).
pub(crate) type Job<'a> = std::pin::Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

pub(crate) async fn join_all(futures: Vec<Job<'_>>) -> Result<()> {
    let mut pending: Vec<_> = futures.into_iter().map(Some).collect();
    let mut first_error = None;
    future::poll_fn(|cx| {
        let mut all_done = true;
        for slot in pending.iter_mut() {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(result) => {
                        if let Err(e) = result {
                            first_error.get_or_insert(e);
                        }
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Everything one sync makes durable, captured under the state borrow.
struct SyncPlan {
    target: Offset,
    /// Also syncs the active segment's indices and moves the recovery point.
    full: bool,
    /// Base offset of the active segment when the plan was made.
    active_base: Offset,
    logs: Vec<(Offset, Rc<LogFile>, u32)>,
    indexes: Vec<IndexPersist>,
    dir: Option<(PathBuf, Vec<Offset>)>,
    epochs: Option<(PathBuf, LeaderEpochCheckpoint)>,
}

impl SyncPlan {
    fn build(st: &mut LogState, full: bool) -> SyncPlan {
        let target = st.log_end.offset();
        let active_base = st.active().base_offset;
        let mut logs = Vec::new();
        let mut indexes = Vec::new();
        for segment in st.segments.values().rev() {
            let active = segment.base_offset == active_base && !st.closing;
            let log_clean = segment.durable_size >= segment.written_size;
            let index_clean = segment.index_files.files.is_none();
            if log_clean && index_clean && !active {
                // Unsynced data only ever sits in a suffix of the segments.
                break;
            }
            if !log_clean {
                logs.push((
                    segment.base_offset,
                    segment.log.clone(),
                    segment.written_size,
                ));
            }
            if let Some(indices) = &segment.indexes
                && let Some(plan) = IndexPersist::plan(segment, indices, active, full, &st.config)
            {
                indexes.push(plan);
            }
        }
        let dir = std::mem::take(&mut st.dir_dirty)
            .then(|| (st.dir.clone(), std::mem::take(&mut st.entries_not_durable)));
        let epochs = std::mem::take(&mut st.epochs_dirty).then(|| {
            (
                st.dir.join(LEADER_EPOCH_CHECKPOINT),
                st.epochs.to_checkpoint(),
            )
        });
        SyncPlan {
            target,
            full,
            active_base,
            logs,
            indexes,
            dir,
            epochs,
        }
    }

    fn is_empty(&self) -> bool {
        self.logs.is_empty()
            && self.indexes.is_empty()
            && self.dir.is_none()
            && self.epochs.is_none()
    }

    async fn execute(&self) -> Result<()> {
        let mut jobs: Vec<Job<'_>> = Vec::new();
        for (_, log, _) in &self.logs {
            let log = log.clone();
            jobs.push(Box::pin(async move {
                log.file
                    .fdatasync()
                    .await
                    .map_err(|e| StorageError::glommio("fdatasync", &log.path, e))
            }));
        }
        for plan in &self.indexes {
            jobs.push(Box::pin(plan.execute()));
        }
        if let Some((path, checkpoint)) = &self.epochs {
            let bytes = checkpoint.encode();
            jobs.push(Box::pin(fs::write_atomically(path, bytes)));
        }
        join_all(jobs).await?;
        if let Some((dir, _)) = &self.dir {
            fs::sync_dir(dir).await?;
        }
        Ok(())
    }

    fn apply(self, st: &mut LogState) {
        for (base, log, written) in &self.logs {
            if let Some(segment) = st.segments.get_mut(&base.0)
                && Rc::ptr_eq(&segment.log, log)
            {
                segment.durable_size = segment.durable_size.max(*written).min(segment.written_size);
            }
        }
        for plan in &self.indexes {
            if let Some(segment) = st.segments.get_mut(&plan.base_offset.0) {
                let same = segment
                    .index_files
                    .files
                    .as_ref()
                    .is_some_and(|f| Rc::ptr_eq(f, &plan.files));
                if same {
                    plan.apply(&mut segment.index_files);
                    // Trimmed (planned as inactive) and durable: close the files. A segment
                    // that rolled while this sync ran was planned as active and keeps them
                    // open for the next sync, which trims it.
                    if !plan.active && segment.durable_size >= segment.written_size {
                        segment.index_files.files = None;
                    }
                }
            }
        }
        if let Some((_, created)) = &self.dir {
            st.entries_not_durable.retain(|b| !created.contains(b));
        }
        // If the segment that was active rolled meanwhile, its index files were synced in
        // their active form (preallocated, without the final time index entry): the next
        // open must still recover it, so the recovery point stays at its base until the next
        // sync trims it.
        let target = self.target.min(st.log_end.offset());
        st.durable = st.durable.max(target);
        if self.full {
            let mut target = target;
            if st.active().base_offset != self.active_base {
                target = target.min(self.active_base);
            }
            st.recovery_point = st.recovery_point.max(target);
        }
    }
}

impl PartitionLog {
    pub(crate) fn from_state(state: LogState) -> PartitionLog {
        state.check_invariants();
        PartitionLog {
            inner: Rc::new(Inner {
                state: RefCell::new(state),
                sequencer: Sequencer::new(),
                written: Notify::new(),
                durable: Notify::new(),
                watch: Notify::new(),
            }),
        }
    }

    /// The partition directory.
    pub fn dir(&self) -> PathBuf {
        self.inner.state.borrow().dir.clone()
    }

    pub fn config(&self) -> LogConfig {
        self.inner.state.borrow().config.clone()
    }

    pub fn log_start_offset(&self) -> LogStartOffset {
        self.inner.state.borrow().log_start
    }

    pub fn high_watermark(&self) -> HighWatermark {
        self.inner.state.borrow().high_watermark
    }

    pub fn log_end_offset(&self) -> LogEndOffset {
        self.inner.state.borrow().log_end
    }

    /// Every offset below this is covered by a completed fdatasync (what acks=all waits
    /// for).
    pub fn durable_offset(&self) -> Offset {
        self.inner.state.borrow().durable
    }

    /// Every offset below this is durable and so are the index entries that describe it,
    /// so [`PartitionLog::open`] may start validating there (Kafka's recovery point). Moves
    /// at segment rolls, at close and with [`PartitionLog::checkpoint`].
    pub fn recovery_point(&self) -> Offset {
        self.inner.state.borrow().recovery_point
    }

    /// Makes everything written so far durable together with the active segment's
    /// indices, and returns the new recovery point: the value the server writes to
    /// `recovery-point-offset-checkpoint` (Kafka does this every
    /// `log.flush.offset.checkpoint.interval.ms`).
    pub async fn checkpoint(&self) -> Result<Offset> {
        self.acquire_maintenance().await?;
        let result = sync_once(&self.inner, true).await;
        self.release_maintenance();
        result.map(|()| self.recovery_point())
    }

    /// The leader epoch cache (epochs and their start offsets).
    pub fn leader_epochs(&self) -> LeaderEpochCache {
        self.inner.state.borrow().epochs.clone()
    }

    /// Kafka's OffsetsForLeaderEpoch answer: the largest epoch `≤ epoch` and its end offset.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        let st = self.inner.state.borrow();
        st.epochs.end_offset_for(epoch, st.log_end.offset())
    }

    /// The number of segments.
    pub fn segment_count(&self) -> usize {
        self.inner.state.borrow().segments.len()
    }

    /// A future that resolves the next time the log end offset or the high watermark
    /// moves, or the log fails (for long-poll fetches). Create it before checking the
    /// condition you wait for.
    pub fn watch(&self) -> Notified {
        self.inner.watch.listen()
    }

    /// Moves the high watermark up to `offset` (clamped to the log end offset; it never
    /// moves back). Returns the new high watermark.
    pub fn advance_high_watermark(&self, offset: Offset) -> HighWatermark {
        let mut st = self.inner.state.borrow_mut();
        let target = offset.min(st.log_end.offset());
        if target > st.high_watermark.offset() {
            st.high_watermark = HighWatermark(target);
            st.check_invariants();
            drop(st);
            self.inner.watch.notify_all();
            return HighWatermark(target);
        }
        st.high_watermark
    }

    /// Appends `batches` as leader in `leader_epoch`: assigns offsets (rewriting each base
    /// offset), stamps the leader epoch (and, under LogAppendTime, the broker's time), and
    /// returns once the bytes are in the page cache and the log end offset covers them.
    /// Batches must have passed the protocol layer's validation (CRC); the log checks magic,
    /// record count, and sizes.
    ///
    /// Concurrent calls from tasks of this shard get contiguous offsets in the order in
    /// which they were first polled. Durability follows `flush.messages` / `flush.ms`, or
    /// ask for it with [`PartitionLog::wait_durable`].
    pub async fn append(
        &self,
        batches: &[RecordBatch],
        leader_epoch: LeaderEpoch,
    ) -> Result<AppendInfo> {
        let (total_bytes, total_offsets) =
            check_batches(batches, &self.inner.state.borrow().config)?;
        let turn = self.inner.sequencer.acquire().await;
        self.inner.state.borrow().usable()?;
        if self.should_roll(total_bytes, total_offsets) {
            self.roll_locked().await?;
        }
        let info = self.reserve(batches, leader_epoch);
        drop(turn);
        self.wait_written(info.last_offset).await?;
        self.apply_flush_policy().await?;
        Ok(info)
    }

    fn should_roll(&self, total_bytes: u64, total_offsets: i64) -> bool {
        let st = self.inner.state.borrow();
        let active = st.active();
        if active.reserved_size == 0 {
            return false;
        }
        let indexes = active
            .indexes
            .as_ref()
            .expect("the active segment's indices are loaded");
        active.reserved_size as u64 + total_bytes > st.config.segment_bytes as u64
            || active.created.elapsed() >= st.config.segment_age_limit()
            || indexes.offset.is_full()
            || indexes.time.is_full()
            || st.next_offset.0 + total_offsets - 1 - active.base_offset.0 > i32::MAX as i64
    }

    /// Assigns offsets and positions and queues the rewritten bytes; no await.
    fn reserve(&self, batches: &[RecordBatch], leader_epoch: LeaderEpoch) -> AppendInfo {
        let mut guard = self.inner.state.borrow_mut();
        let st = &mut *guard;
        let append_time = (st.config.message_timestamp_type == MessageTimestampType::LogAppendTime)
            .then(Timestamp::now);
        let interval = st.config.index_interval_bytes;
        let total: usize = batches.iter().map(|b| b.bytes().len()).sum();
        let first_offset = st.next_offset;
        let active = st
            .segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment");
        let coalesce = st.write_queue.back().is_some_and(|chunk| {
            chunk.segment_base == active.base_offset && chunk.buf.len() + total <= COALESCE_LIMIT
        });
        if !coalesce {
            st.write_queue.push_back(WriteChunk {
                segment_base: active.base_offset,
                file: active.log.clone(),
                position: active.reserved_size,
                buf: Vec::with_capacity(total),
                first_offset,
                end_offset: first_offset,
            });
        }
        let chunk = st.write_queue.back_mut().expect("just ensured");
        assert_eq!(
            chunk.position as usize + chunk.buf.len(),
            active.reserved_size as usize,
            "pending write of segment {} must end where the segment's reserved bytes end",
            active.base_offset
        );
        let indexes = active
            .indexes
            .as_mut()
            .expect("the active segment's indices are loaded");
        let mut next = st.next_offset;
        let mut max_timestamp = Timestamp::NONE;
        let mut offset_of_max_timestamp = first_offset;
        for batch in batches {
            let h = batch.header();
            let base = next;
            let last = base.plus(h.last_offset_delta as i64);
            let position = active.reserved_size;
            let start = chunk.buf.len();
            chunk.buf.extend_from_slice(batch.bytes());
            let bytes = &mut chunk.buf[start..];
            set_base_offset(bytes, base.0);
            set_partition_leader_epoch(bytes, leader_epoch.0);
            let batch_max_timestamp = match append_time {
                Some(now) => {
                    set_log_append_time(bytes, now.0);
                    now
                }
                None => Timestamp(h.max_timestamp),
            };
            if base == first_offset || batch_max_timestamp > max_timestamp {
                max_timestamp = batch_max_timestamp;
                offset_of_max_timestamp = last;
            }
            indexes.on_batch(position, last, batch_max_timestamp, interval);
            let size = h.size() as u64;
            let end = position as u64 + size;
            assert!(
                end <= i32::MAX as u64,
                "segment {} would grow past a 32-bit position ({end})",
                active.base_offset
            );
            active.reserved_size = end as u32;
            next = last.next();
        }
        active.reserved_next_offset = next;
        chunk.end_offset = next;
        st.next_offset = next;
        if st.epochs.assign(leader_epoch, first_offset) {
            st.epochs_dirty = true;
        }
        let info = AppendInfo {
            first_offset,
            last_offset: next.plus(-1),
            max_timestamp,
            offset_of_max_timestamp,
            log_append_time: append_time,
            log_start_offset: st.log_start,
        };
        let start_writer = !st.writer_running;
        st.writer_running = true;
        drop(guard);
        // glommio runs a spawned task right away: never spawn while holding the state.
        if start_writer {
            glommio::spawn_local(run_writer(self.inner.clone())).detach();
        }
        info
    }

    async fn wait_written(&self, last_offset: Offset) -> Result<()> {
        loop {
            let written = self.inner.written.listen();
            {
                let st = self.inner.state.borrow();
                if st.log_end.offset() > last_offset {
                    return Ok(());
                }
                st.usable()?;
            }
            written.await;
        }
    }

    async fn apply_flush_policy(&self) -> Result<()> {
        let (flush_now, arm_timer) = {
            let mut st = self.inner.state.borrow_mut();
            let unflushed = (st.log_end.offset().0 - st.durable.0) as u64;
            let flush_now = unflushed >= st.config.flush_messages;
            let interval = st.config.flush_interval();
            let arm = match interval {
                Some(interval) if unflushed > 0 && !flush_now && !st.flush_timer_armed => {
                    st.flush_timer_armed = true;
                    Some(interval)
                }
                _ => None,
            };
            (flush_now, arm)
        };
        if let Some(interval) = arm_timer {
            let weak = Rc::downgrade(&self.inner);
            glommio::spawn_local(async move {
                glommio::timer::sleep(interval).await;
                if let Some(inner) = Weak::upgrade(&weak) {
                    inner.state.borrow_mut().flush_timer_armed = false;
                    // A failure is recorded in the log's state and reported to the next
                    // caller.
                    let _ = PartitionLog { inner }.flush().await;
                }
            })
            .detach();
        }
        if flush_now {
            self.flush().await?;
        }
        Ok(())
    }

    /// Makes everything appended so far durable (group-committed with concurrent callers).
    pub async fn flush(&self) -> Result<()> {
        let end = self.inner.state.borrow().log_end.offset();
        if end == Offset::ZERO || end <= self.durable_offset() {
            return self.sync_metadata_if_dirty().await;
        }
        self.wait_durable(end.plus(-1)).await
    }

    /// Syncs directory entries and the epoch checkpoint when no data is waiting.
    async fn sync_metadata_if_dirty(&self) -> Result<()> {
        let dirty = {
            let st = self.inner.state.borrow();
            st.usable()?;
            st.dir_dirty || st.epochs_dirty
        };
        if !dirty {
            return Ok(());
        }
        self.acquire_maintenance().await?;
        self.run_sync_owned().await
    }

    /// Resolves once `offset` is covered by a completed fdatasync, starting one if none is
    /// running (so concurrent waiters share it). `offset` must have been appended.
    pub async fn wait_durable(&self, offset: Offset) -> Result<()> {
        loop {
            let durable = self.inner.durable.listen();
            let written = self.inner.written.listen();
            let mut start_sync = false;
            let wait_for_write = {
                let mut st = self.inner.state.borrow_mut();
                st.usable()?;
                if st.durable > offset {
                    return Ok(());
                }
                if offset >= st.next_offset {
                    return Err(StorageError::OffsetOutOfRange {
                        offset,
                        log_start: st.log_start,
                        log_end: st.log_end,
                    });
                }
                if st.log_end.offset() > offset {
                    if !st.maintenance_busy {
                        st.maintenance_busy = true;
                        start_sync = true;
                    }
                    false
                } else {
                    true
                }
            };
            if start_sync {
                glommio::spawn_local(run_sync(self.inner.clone(), false)).detach();
            }
            if wait_for_write {
                future::or(written, durable).await;
            } else {
                durable.await;
            }
        }
    }

    /// Waits until no sync or maintenance runs, then owns the index files and durability
    /// bookkeeping until [`Self::release_maintenance`].
    async fn acquire_maintenance(&self) -> Result<()> {
        loop {
            let durable = self.inner.durable.listen();
            {
                let mut st = self.inner.state.borrow_mut();
                st.usable()?;
                if !st.maintenance_busy {
                    st.maintenance_busy = true;
                    return Ok(());
                }
            }
            durable.await;
        }
    }

    fn release_maintenance(&self) {
        let restart = {
            let mut st = self.inner.state.borrow_mut();
            st.maintenance_busy = false;
            if st.sync_requested && st.failed.is_none() {
                st.sync_requested = false;
                st.maintenance_busy = true;
                true
            } else {
                false
            }
        };
        if restart {
            // Requested by a roll: a full sync, so the recovery point passes the rolled
            // segment once its indices are final.
            glommio::spawn_local(run_sync(self.inner.clone(), true)).detach();
        }
        self.inner.durable.notify_all();
        self.inner.watch.notify_all();
    }

    /// Runs one sync while already owning maintenance; releases it.
    async fn run_sync_owned(&self) -> Result<()> {
        let result = sync_once(&self.inner, false).await;
        self.release_maintenance();
        result
    }

    /// Waits for every reserved byte to be written.
    async fn drain_writes(&self) -> Result<()> {
        loop {
            let written = self.inner.written.listen();
            {
                let st = self.inner.state.borrow();
                st.usable()?;
                if st.log_end.offset() == st.next_offset && !st.writer_running {
                    return Ok(());
                }
            }
            written.await;
        }
    }

    /// Starts a new segment at the next offset (Kafka's `roll`). Appends wait meanwhile.
    pub async fn roll(&self) -> Result<()> {
        let _turn = self.inner.sequencer.acquire().await;
        self.inner.state.borrow().usable()?;
        self.roll_locked().await
    }

    async fn roll_locked(&self) -> Result<()> {
        let (dir, new_base, config) = {
            let st = self.inner.state.borrow();
            if st.active().reserved_size == 0 {
                return Ok(());
            }
            (st.dir.clone(), st.next_offset, st.config.clone())
        };
        let created = create_segment(&dir, new_base, &config).await;
        let segment = match created {
            Ok(segment) => segment,
            // Out of descriptors or memory: this append fails, the log stays as it was
            // and the next append tries the roll again (creating truncates).
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                self.inner.state.borrow_mut().fail(&e);
                self.inner.written.notify_all();
                return Err(e);
            }
        };
        let start_sync = {
            let mut st = self.inner.state.borrow_mut();
            let old = st.active_mut();
            old.indexes
                .as_mut()
                .expect("the active segment's indices are loaded")
                .on_roll();
            st.segments.insert(new_base.0, segment);
            st.dir_dirty = true;
            st.entries_not_durable.push(new_base);
            st.check_invariants();
            if st.maintenance_busy {
                st.sync_requested = true;
                false
            } else {
                st.maintenance_busy = true;
                true
            }
        };
        // Make the old segment durable and trim its indices in the background, as Kafka
        // schedules a flush of the rolled segment.
        if start_sync {
            glommio::spawn_local(run_sync(self.inner.clone(), true)).detach();
        }
        Ok(())
    }

    /// Finds, in the segment starting at `base`, the first batch whose last offset is at or
    /// above `target`, scanning headers from the sparse index entry below it. Returns its
    /// position and header, or `None` if the segment's written bytes end first.
    async fn find_batch(
        &self,
        base: i64,
        target: Offset,
        from_position: u32,
    ) -> Result<Option<(u32, super::records::BatchHeader)>> {
        let (log, start, end) = {
            let st = self.inner.state.borrow();
            let Some(segment) = st.segments.get(&base) else {
                return Ok(None);
            };
            let indexes = segment
                .indexes
                .as_ref()
                .expect("indices loaded before a lookup");
            let start = indexes.offset.lookup(target).1.max(from_position);
            (segment.log.clone(), start, segment.written_size)
        };
        let mut found = None;
        let end_of_scan = scan_headers(&log, start, end, |position, h| {
            if h.last_offset() >= target.0 {
                found = Some((position, *h));
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await?;
        if let ScanEnd::Invalid(position) = end_of_scan {
            return Err(corrupt_segment(&log, position));
        }
        Ok(found)
    }

    /// Loads a segment's indices if they are not in memory yet (segments that were clean at
    /// open are loaded on first use).
    pub(crate) async fn ensure_indexes(&self, base: i64) -> Result<()> {
        let (dir, log, written_size, offset_limit, config) = {
            let st = self.inner.state.borrow();
            let Some(segment) = st.segments.get(&base) else {
                return Ok(());
            };
            if segment.indexes.is_some() {
                return Ok(());
            }
            let offset_limit = st
                .segments
                .range(base + 1..)
                .next()
                .map_or(segment.written_next_offset, |(b, _)| Offset(*b));
            (
                st.dir.clone(),
                segment.log.clone(),
                segment.written_size,
                offset_limit,
                st.config.clone(),
            )
        };
        let indexes = super::recovery::load_indexes(
            &dir,
            &log,
            Offset(base),
            written_size,
            offset_limit,
            &config,
        )
        .await?;
        let mut st = self.inner.state.borrow_mut();
        if let Some(segment) = st.segments.get_mut(&base)
            && Rc::ptr_eq(&segment.log, &log)
            && segment.indexes.is_none()
        {
            segment.indexes = Some(indexes);
        }
        Ok(())
    }

    /// The batches of one segment starting with the batch that contains `from_offset`, as a
    /// file range for `sendfile`: at most `max_bytes` of whole batches (at least one if
    /// `min_one_batch`), none reaching `upper_bound` (normally the high watermark) or the log
    /// end offset. `None` when there is nothing to return yet.
    pub async fn read(
        &self,
        from_offset: Offset,
        max_bytes: usize,
        upper_bound: Offset,
        min_one_batch: bool,
    ) -> Result<Option<FileRange>> {
        let (upper, mut base) = {
            let st = self.inner.state.borrow();
            st.usable()?;
            if from_offset < st.log_start.offset() || from_offset > st.log_end.offset() {
                return Err(StorageError::OffsetOutOfRange {
                    offset: from_offset,
                    log_start: st.log_start,
                    log_end: st.log_end,
                });
            }
            let upper = upper_bound.min(st.log_end.offset());
            if from_offset >= upper {
                return Ok(None);
            }
            let base = st
                .segment_base_for(from_offset)
                .expect("an offset at or above the log start lies in a segment");
            (upper, base)
        };
        loop {
            self.ensure_indexes(base).await?;
            let Some((start, first)) = self.find_batch(base, from_offset, 0).await? else {
                // Nothing at or after `from_offset` here (a compaction gap at the end of the
                // segment): continue with the next segment.
                let next = self
                    .inner
                    .state
                    .borrow()
                    .segments
                    .range(base + 1..)
                    .next()
                    .map(|(b, _)| *b);
                match next {
                    Some(next) if next < upper.0 => {
                        base = next;
                        continue;
                    }
                    _ => return Ok(None),
                }
            };
            if first.last_offset() >= upper.0 {
                return Ok(None);
            }
            return self
                .range_from(base, start, first, max_bytes, upper, min_one_batch)
                .await;
        }
    }

    /// Completes a read that starts with batch `first` at `start` in segment `base`.
    async fn range_from(
        &self,
        base: i64,
        start: u32,
        first: super::records::BatchHeader,
        max_bytes: usize,
        upper: Offset,
        min_one_batch: bool,
    ) -> Result<Option<FileRange>> {
        let (log, written_size, written_next) = {
            let st = self.inner.state.borrow();
            // A truncation may have removed the segment while this read waited for I/O.
            let Some(segment) = st.segments.get(&base) else {
                return Ok(None);
            };
            (
                segment.log.clone(),
                segment.written_size,
                segment.written_next_offset,
            )
        };
        // Where the upper bound cuts the segment: at the first batch reaching it.
        let (upper_position, upper_next) = if upper >= written_next {
            (written_size, written_next)
        } else {
            match self.find_batch(base, upper, start).await? {
                Some((position, h)) => (position, Offset(h.base_offset)),
                None => (written_size, written_next),
            }
        };
        let byte_limit = start as u64 + max_bytes as u64;
        let (mut end, mut next_offset) = if byte_limit >= upper_position as u64 {
            (upper_position, upper_next)
        } else if byte_limit < start as u64 + first.size() as u64 {
            // Not even the first batch fits.
            (start, Offset(first.base_offset))
        } else {
            // The last batch boundary within `byte_limit`, scanning from the index entry
            // just below it.
            let scan_from = {
                let st = self.inner.state.borrow();
                let Some(indexes) = st.segments.get(&base).and_then(|s| s.indexes.as_ref()) else {
                    return Ok(None);
                };
                indexes
                    .offset
                    .lookup_position(byte_limit as u32)
                    .1
                    .max(start)
            };
            let mut boundary = (scan_from, Offset(first.base_offset));
            let scan = scan_headers(&log, scan_from, upper_position, |position, h| {
                boundary = (position, Offset(h.base_offset));
                if position as u64 + h.size() as u64 <= byte_limit {
                    boundary = (position + h.size() as u32, Offset(h.last_offset() + 1));
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            })
            .await?;
            if let ScanEnd::Invalid(position) = scan {
                return Err(corrupt_segment(&log, position));
            }
            if boundary.0 == upper_position {
                (upper_position, upper_next)
            } else {
                boundary
            }
        };
        if end == start {
            if !min_one_batch {
                return Ok(None);
            }
            end = start + first.size() as u32;
            next_offset = Offset(first.last_offset() + 1);
        }
        assert!(
            start < end && end <= written_size,
            "read range [{start}, {end}) of segment {base} must lie within its {written_size} \
             written bytes"
        );
        Ok(Some(FileRange {
            file: log,
            position: start as u64,
            length: (end - start) as u64,
            first_offset: Offset(first.base_offset),
            next_offset,
        }))
    }

    /// A copying [`PartitionLog::read`] (for cold data and tests).
    pub async fn read_bytes(
        &self,
        from_offset: Offset,
        max_bytes: usize,
        upper_bound: Offset,
        min_one_batch: bool,
    ) -> Result<Option<(Bytes, Offset)>> {
        match self
            .read(from_offset, max_bytes, upper_bound, min_one_batch)
            .await?
        {
            None => Ok(None),
            Some(range) => Ok(Some((range.read().await?, range.next_offset))),
        }
    }

    /// Reads the whole batch starting at `position` of segment `base`.
    async fn read_batch(
        &self,
        log: &Rc<LogFile>,
        position: u32,
        size: usize,
    ) -> Result<RecordBatch> {
        let bytes = segment::read_bytes(log, position, size).await?;
        match batches(bytes).next() {
            Some(Ok(batch)) => Ok(batch),
            _ => Err(corrupt_segment(log, position)),
        }
    }

    /// Kafka's ListOffsets by timestamp: the first record (lowest offset) below the high
    /// watermark whose timestamp is at or after `target`, found through each segment's max
    /// timestamp, its time index, then a scan of batch headers and of one batch's records.
    pub async fn offset_for_timestamp(
        &self,
        target: Timestamp,
    ) -> Result<Option<TimestampAndOffset>> {
        let (upper, log_start, bases) = {
            let st = self.inner.state.borrow();
            st.usable()?;
            let upper = st.high_watermark.offset();
            let first = st
                .segment_base_for(st.log_start.offset())
                .expect("the log start offset lies in a segment");
            let bases: Vec<i64> = st
                .segments
                .range(first..)
                .map(|(b, _)| *b)
                .take_while(|b| *b < upper.0)
                .collect();
            (upper, st.log_start.offset(), bases)
        };
        for base in bases {
            if base >= upper.0 {
                break;
            }
            self.ensure_indexes(base).await?;
            let (log, scan_from, min_offset, written_size) = {
                let st = self.inner.state.borrow();
                let Some(segment) = st.segments.get(&base) else {
                    continue;
                };
                let indexes = segment.indexes.as_ref().expect("indices loaded");
                if indexes.max_timestamp < target {
                    continue;
                }
                let (min_offset, scan_from) = match indexes.time.lookup_before(target) {
                    Some((_, offset)) => (offset.next(), indexes.offset.lookup(offset).1),
                    None => (Offset(base), 0),
                };
                (
                    segment.log.clone(),
                    scan_from,
                    min_offset.max(log_start),
                    segment.written_size,
                )
            };
            if let Some(found) = self
                .search_timestamp(&log, scan_from, written_size, min_offset, upper, |ts| {
                    ts >= target
                })
                .await?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Scans batches of one segment from `position` for the first record at or above
    /// `min_offset` and below `upper` whose timestamp satisfies `wanted` (batches whose max
    /// timestamp does not are skipped by header).
    async fn search_timestamp(
        &self,
        log: &Rc<LogFile>,
        mut position: u32,
        end: u32,
        min_offset: Offset,
        upper: Offset,
        wanted: impl Fn(Timestamp) -> bool,
    ) -> Result<Option<TimestampAndOffset>> {
        loop {
            let mut candidate = None;
            let mut past_upper = false;
            let scan = scan_headers(log, position, end, |pos, h| {
                // Only whole batches below the bound are visible, as in reads.
                if h.last_offset() >= upper.0 {
                    past_upper = true;
                    return ControlFlow::Break(());
                }
                // Under either timestamp type, no record of a batch is newer than its max.
                if h.last_offset() >= min_offset.0 && wanted(Timestamp(h.max_timestamp)) {
                    candidate = Some((pos, *h));
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .await?;
            if let ScanEnd::Invalid(at) = scan {
                return Err(corrupt_segment(log, at));
            }
            if past_upper {
                return Ok(None);
            }
            let Some((pos, h)) = candidate else {
                return Ok(None);
            };
            let batch = self.read_batch(log, pos, h.size()).await?;
            if let Ok(records) = batch.records() {
                for record in records {
                    let Ok(record) = record else { break };
                    let offset = Offset(batch.offset_of(&record));
                    let timestamp = Timestamp(batch.timestamp_of(&record));
                    if offset >= min_offset && offset < upper && wanted(timestamp) {
                        return Ok(Some(TimestampAndOffset {
                            timestamp,
                            offset,
                            leader_epoch: segment::batch_epoch(&h),
                        }));
                    }
                }
            }
            position = pos + h.size() as u32;
        }
    }

    /// ListOffsets LATEST for consumers: the high watermark.
    pub fn latest_offset(&self) -> Offset {
        self.high_watermark().offset()
    }

    /// ListOffsets EARLIEST: the log start offset.
    pub fn earliest_offset(&self) -> Offset {
        self.log_start_offset().offset()
    }

    /// ListOffsets MAX_TIMESTAMP (-3): the first record carrying the largest timestamp
    /// below the high watermark.
    pub async fn max_timestamp_offset(&self) -> Result<Option<TimestampAndOffset>> {
        let bases: Vec<i64> = {
            let st = self.inner.state.borrow();
            st.usable()?;
            let upper = st.high_watermark.offset().0;
            st.segments.range(..upper).map(|(b, _)| *b).collect()
        };
        let mut best: Option<(Timestamp, i64, Offset)> = None;
        for &base in &bases {
            self.ensure_indexes(base).await?;
            let st = self.inner.state.borrow();
            if let Some(indexes) = st.segments.get(&base).and_then(|s| s.indexes.as_ref()) {
                let candidate = (indexes.max_timestamp, base, indexes.offset_of_max_timestamp);
                if indexes.max_timestamp != Timestamp::NONE
                    && best.is_none_or(|b| candidate.0 > b.0)
                {
                    best = Some(candidate);
                }
            }
        }
        let Some((max, base, offset_of_max)) = best else {
            return Ok(None);
        };
        let upper = self.high_watermark().offset();
        // Fast path: the batch the segment's bookkeeping names carries the max and is
        // visible (whole batches below the high watermark, as in reads).
        if offset_of_max < upper
            && let Some((position, h)) = self.find_batch(base, offset_of_max, 0).await?
            && h.max_timestamp == max.0
            && h.last_offset() == offset_of_max.0
        {
            let log = self
                .inner
                .state
                .borrow()
                .segments
                .get(&base)
                .map(|s| s.log.clone());
            let Some(log) = log else {
                return self.max_timestamp_by_scan(&bases, upper).await;
            };
            let end = position + h.size() as u32;
            if let Some(found) = self
                .search_timestamp(&log, position, end, Offset(h.base_offset), upper, |ts| {
                    ts >= max
                })
                .await?
            {
                return Ok(Some(found));
            }
        }
        // Slow path (the max lies above the high watermark, or a crash left the segment's
        // max describing lost batches): scan every visible batch header.
        self.max_timestamp_by_scan(&bases, upper).await
    }

    async fn max_timestamp_by_scan(
        &self,
        bases: &[i64],
        upper: Offset,
    ) -> Result<Option<TimestampAndOffset>> {
        let mut best: Option<(Timestamp, Rc<LogFile>, u32, u32)> = None;
        let log_start = self.log_start_offset().offset();
        for &base in bases {
            let (log, written_size) = {
                let st = self.inner.state.borrow();
                let Some(segment) = st.segments.get(&base) else {
                    continue;
                };
                (segment.log.clone(), segment.written_size)
            };
            let mut local: Option<(Timestamp, u32, u32)> = None;
            scan_headers(&log, 0, written_size, |position, h| {
                if h.last_offset() >= upper.0 {
                    return ControlFlow::Break(());
                }
                let max = Timestamp(h.max_timestamp);
                if h.last_offset() >= log_start.0 && local.is_none_or(|l| max > l.0) {
                    local = Some((max, position, h.size() as u32));
                }
                ControlFlow::Continue(())
            })
            .await?;
            if let Some((max, position, size)) = local
                && best.as_ref().is_none_or(|b| max > b.0)
            {
                best = Some((max, log, position, size));
            }
        }
        let Some((max, log, position, size)) = best else {
            return Ok(None);
        };
        self.search_timestamp(&log, position, position + size, log_start, upper, |ts| {
            ts >= max
        })
        .await
    }

    /// Removes every offset at or above `offset` (for replication: truncation to the
    /// leader's epoch end). Cuts at the start of the batch that contains `offset`, so the
    /// new log end offset is at most `offset`; returns it. The truncation is durable when
    /// this returns.
    pub async fn truncate_to(&self, offset: Offset) -> Result<LogEndOffset> {
        let _turn = self.inner.sequencer.acquire().await;
        self.drain_writes().await?;
        self.acquire_maintenance().await?;
        let result = self.truncate_locked(offset).await;
        if let Err(e) = &result {
            self.inner.state.borrow_mut().fail(e);
        }
        self.release_maintenance();
        self.inner.written.notify_all();
        result
    }

    async fn truncate_locked(&self, offset: Offset) -> Result<LogEndOffset> {
        let (log_end, log_start) = {
            let st = self.inner.state.borrow();
            (st.log_end, st.log_start)
        };
        if offset >= log_end.offset() {
            return Ok(log_end);
        }
        if offset < log_start.offset() {
            return self.truncate_fully_and_start_at(offset).await;
        }
        // Segments starting above `offset` go entirely.
        let (dir, doomed) = {
            let mut st = self.inner.state.borrow_mut();
            let doomed: Vec<Segment> = {
                let keys: Vec<i64> = st.segments.range(offset.0 + 1..).map(|(b, _)| *b).collect();
                keys.iter().filter_map(|k| st.segments.remove(k)).collect()
            };
            (st.dir.clone(), doomed)
        };
        remove_segment_files(&dir, &doomed).await?;
        let base = self.inner.state.borrow().active().base_offset.0;
        self.ensure_indexes(base).await?;
        self.ensure_index_files(base).await?;
        let cut = self.find_batch(base, offset, 0).await?;
        let (log, written_size, written_next) = {
            let st = self.inner.state.borrow();
            let segment = &st.segments[&base];
            (
                segment.log.clone(),
                segment.written_size,
                segment.written_next_offset,
            )
        };
        let (cut_position, new_end) = match cut {
            Some((position, h)) => (position, offset.min(Offset(h.base_offset))),
            None => (written_size, written_next.min(offset)),
        };
        log.file
            .truncate(cut_position as u64)
            .await
            .map_err(|e| StorageError::glommio("truncate", &log.path, e))?;
        // Recompute the segment's running values below the cut: the index entries of
        // removed batches go, and the max timestamp is the last time index entry's
        // combined with a scan of the batches after the last offset index entry.
        let (scan_from, config) = {
            let mut st = self.inner.state.borrow_mut();
            let config = st.config.clone();
            let segment = st.segments.get_mut(&base).expect("active segment");
            let indexes = segment.indexes.as_mut().expect("indices loaded");
            indexes.offset.truncate_to_position(cut_position);
            indexes.time.truncate_to_offset(new_end);
            let scan_from = indexes.offset.entries().last().map_or(0, |e| e.position);
            (scan_from, config)
        };
        let mut rebuilt = {
            let st = self.inner.state.borrow();
            let indexes = st.segments[&base].indexes.as_ref().expect("indices loaded");
            let mut rebuilt = indexes.clone();
            rebuilt.last_index_entry_position = scan_from;
            match indexes.time.last() {
                Some((ts, at)) => {
                    rebuilt.max_timestamp = ts;
                    rebuilt.offset_of_max_timestamp = at;
                }
                None => {
                    rebuilt.max_timestamp = Timestamp::NONE;
                    rebuilt.offset_of_max_timestamp = Offset(base);
                }
            }
            rebuilt
        };
        let scan = scan_headers(&log, scan_from, cut_position, |position, h| {
            rebuilt.on_batch(
                position,
                Offset(h.last_offset()),
                Timestamp(h.max_timestamp),
                config.index_interval_bytes,
            );
            ControlFlow::Continue(())
        })
        .await?;
        if let ScanEnd::Invalid(position) = scan {
            return Err(corrupt_segment(&log, position));
        }
        let persist = {
            let mut st = self.inner.state.borrow_mut();
            let st = &mut *st;
            let segment = st.segments.get_mut(&base).expect("active segment");
            segment.indexes = Some(rebuilt);
            segment.reserved_size = cut_position;
            segment.written_size = cut_position;
            segment.durable_size = segment.durable_size.min(cut_position);
            segment.reserved_next_offset = new_end;
            segment.written_next_offset = new_end;
            segment.created = Instant::now();
            st.next_offset = new_end;
            st.log_end = LogEndOffset(new_end);
            st.high_watermark = HighWatermark(st.high_watermark.offset().min(new_end));
            st.durable = st.durable.min(new_end);
            st.recovery_point = st.recovery_point.min(new_end);
            if st.epochs.truncate_from_end(new_end) {
                st.epochs_dirty = true;
            }
            let segment = &st.segments[&base];
            IndexPersist::plan(
                segment,
                segment.indexes.as_ref().unwrap(),
                true,
                true,
                &st.config,
            )
        };
        if let Some(plan) = &persist {
            plan.execute().await?;
        }
        log.file
            .fdatasync()
            .await
            .map_err(|e| StorageError::glommio("fdatasync", &log.path, e))?;
        {
            let mut st = self.inner.state.borrow_mut();
            let segment = st.segments.get_mut(&base).expect("active segment");
            if let Some(plan) = &persist {
                plan.apply(&mut segment.index_files);
            }
            segment.durable_size = segment.written_size;
            st.durable = st.log_end.offset();
            st.recovery_point = st.log_end.offset();
            if !doomed.is_empty() {
                st.dir_dirty = true;
            }
            st.check_invariants();
        }
        sync_once(&self.inner, true).await?;
        self.inner.watch.notify_all();
        Ok(self.log_end_offset())
    }

    async fn truncate_fully_and_start_at(&self, offset: Offset) -> Result<LogEndOffset> {
        let (dir, config) = {
            let st = self.inner.state.borrow();
            (st.dir.clone(), st.config.clone())
        };
        // The new segment first (its base is below every existing one, so no name
        // clashes), then the swap: concurrent readers always find a segment.
        let segment = create_segment(&dir, offset, &config).await?;
        let doomed: Vec<Segment> = {
            let mut st = self.inner.state.borrow_mut();
            let doomed = std::mem::take(&mut st.segments).into_values().collect();
            st.segments.insert(offset.0, segment);
            st.entries_not_durable = vec![offset];
            st.next_offset = offset;
            st.log_end = LogEndOffset(offset);
            st.log_start = LogStartOffset(offset);
            st.high_watermark = HighWatermark(offset);
            st.durable = offset;
            st.recovery_point = offset;
            st.epochs = LeaderEpochCache::default();
            st.epochs_dirty = true;
            st.dir_dirty = true;
            st.check_invariants();
            doomed
        };
        remove_segment_files(&dir, &doomed).await?;
        sync_once(&self.inner, true).await?;
        self.inner.watch.notify_all();
        Ok(self.log_end_offset())
    }

    /// Makes sure a segment that becomes active again (after truncation) has its index
    /// files open for writing.
    async fn ensure_index_files(&self, base: i64) -> Result<()> {
        let dir = {
            let st = self.inner.state.borrow();
            if st.segments[&base].index_files.files.is_some() {
                return Ok(());
            }
            st.dir.clone()
        };
        let files = segment::open_index_files(&dir, Offset(base), true).await?;
        let offset_len = files
            .offset
            .file_size()
            .await
            .map_err(|e| StorageError::glommio("stat", &files.offset_path, e))?;
        let time_len = files
            .time
            .file_size()
            .await
            .map_err(|e| StorageError::glommio("stat", &files.time_path, e))?;
        let mut st = self.inner.state.borrow_mut();
        let segment = st.segments.get_mut(&base).expect("segment exists");
        let indexes = segment.indexes.as_ref().expect("indices loaded");
        segment.index_files = IndexFileState {
            files: Some(Rc::new(files)),
            offset_entries_written: indexes.offset.len(),
            time_entries_written: indexes.time.len(),
            offset_file_len: offset_len,
            time_file_len: time_len,
            synced: false,
            stale_tail: false,
            offset_durable_len: offset_len,
            time_durable_len: time_len,
        };
        Ok(())
    }

    /// Deletes whole segments whose every offset is below `offset` and below the high
    /// watermark (retention), never the active one. Advances the log start offset to the
    /// first remaining segment. Returns how many segments went.
    pub async fn delete_segments_before(&self, offset: Offset) -> Result<usize> {
        self.acquire_maintenance().await?;
        let (dir, doomed) = {
            let mut st = self.inner.state.borrow_mut();
            let limit = offset.min(st.high_watermark.offset());
            let bases: Vec<i64> = st.segments.keys().copied().collect();
            let mut doomed = Vec::new();
            for pair in bases.windows(2) {
                // A segment ends where the next one starts.
                if pair[1] <= limit.0 {
                    doomed.push(st.segments.remove(&pair[0]).expect("listed"));
                } else {
                    break;
                }
            }
            if !doomed.is_empty() {
                let first = Offset(*st.segments.keys().next().expect("active remains"));
                if first > st.log_start.offset() {
                    st.log_start = LogStartOffset(first);
                }
                let log_start = st.log_start.offset();
                if st.epochs.truncate_from_start(log_start) {
                    st.epochs_dirty = true;
                }
                st.dir_dirty = true;
                st.check_invariants();
            }
            (st.dir.clone(), doomed)
        };
        let result = remove_segment_files(&dir, &doomed).await;
        if let Err(e) = &result {
            self.inner.state.borrow_mut().fail(e);
        }
        self.release_maintenance();
        result.map(|()| doomed.len())
    }

    /// Writes everything out, makes it durable, trims the active segment's indices (as
    /// Kafka does on a clean shutdown) and refuses further use.
    pub async fn close(&self) -> Result<()> {
        let _turn = self.inner.sequencer.acquire().await;
        self.drain_writes().await?;
        self.acquire_maintenance().await?;
        // Trim the active segment's index files as Kafka does on a clean shutdown; with the
        // recovery point at the log end, the next open reads them instead of scanning.
        self.inner.state.borrow_mut().closing = true;
        let result = sync_once(&self.inner, true).await;
        {
            let mut st = self.inner.state.borrow_mut();
            if let Err(e) = &result {
                st.fail(e);
            }
            st.closed = true;
        }
        self.release_maintenance();
        self.inner.written.notify_all();
        result
    }

    /// Waits until no write, sync or maintenance runs in the background (tests simulate a
    /// crash at such a point; the torn tail covers what was in flight).
    #[doc(hidden)]
    pub async fn quiesce(&self) {
        loop {
            let written = self.inner.written.listen();
            let durable = self.inner.durable.listen();
            {
                let st = self.inner.state.borrow();
                if !st.writer_running && !st.maintenance_busy {
                    return;
                }
            }
            future::or(written, durable).await;
        }
    }

    /// For the crash simulation in tests: every file of the log with the length a
    /// completed fdatasync covers.
    #[doc(hidden)]
    pub fn durability_report(&self) -> Vec<FileDurability> {
        let st = self.inner.state.borrow();
        let mut files = Vec::new();
        for segment in st.segments.values() {
            let entry_durable = !st.entries_not_durable.contains(&segment.base_offset);
            files.push(FileDurability {
                path: segment.log.path.clone(),
                durable_len: segment.durable_size as u64,
                entry_durable,
            });
            let index_state = &segment.index_files;
            files.push(FileDurability {
                path: st
                    .dir
                    .join(segment_file_name(segment.base_offset, INDEX_SUFFIX)),
                durable_len: index_state.offset_durable_len,
                entry_durable,
            });
            files.push(FileDurability {
                path: st
                    .dir
                    .join(segment_file_name(segment.base_offset, TIME_INDEX_SUFFIX)),
                durable_len: index_state.time_durable_len,
                entry_durable,
            });
        }
        files
    }

    /// For tests: the in-memory offset and time index entries of the segment at `base`.
    #[doc(hidden)]
    pub async fn index_entries(
        &self,
        base: Offset,
    ) -> Result<Option<(Vec<(Offset, u32)>, Vec<(Timestamp, Offset)>)>> {
        self.ensure_indexes(base.0).await?;
        let st = self.inner.state.borrow();
        Ok(st
            .segments
            .get(&base.0)
            .and_then(|s| s.indexes.as_ref())
            .map(|i| {
                let offsets = (0..i.offset.len()).map(|n| i.offset.entry(n)).collect();
                let times = i
                    .time
                    .entries()
                    .iter()
                    .map(|e| (e.timestamp, base.plus(e.relative_offset as i64)))
                    .collect();
                (offsets, times)
            }))
    }

    /// For tests: per segment, its max timestamp, offset of max and time index entries (when
    /// loaded).
    #[cfg(test)]
    pub(crate) fn time_info(&self) -> Vec<(i64, Option<TimeInfo>)> {
        let st = self.inner.state.borrow();
        st.segments
            .iter()
            .map(|(base, s)| {
                (
                    *base,
                    s.indexes.as_ref().map(|i| {
                        let entries = i
                            .time
                            .entries()
                            .iter()
                            .map(|e| (e.timestamp, Offset(*base + e.relative_offset as i64)))
                            .collect();
                        (i.max_timestamp, i.offset_of_max_timestamp, entries)
                    }),
                )
            })
            .collect()
    }

    /// What opening this log had to recover.
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.inner.state.borrow().recovery_stats
    }

    /// How many sync passes (each one set of fdatasyncs shared by every waiter) completed.
    pub fn syncs_completed(&self) -> u64 {
        self.inner.state.borrow().syncs_completed
    }

    /// Base offsets of the segments.
    pub fn segment_base_offsets(&self) -> Vec<Offset> {
        self.inner
            .state
            .borrow()
            .segments
            .keys()
            .map(|b| Offset(*b))
            .collect()
    }
}

fn corrupt_segment(log: &LogFile, position: u32) -> StorageError {
    StorageError::io(
        "scan",
        &log.path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no valid batch at position {position} below the written size"),
        ),
    )
}

/// Creates the three files of a new segment, with preallocated (sparse) index files.
pub(crate) async fn create_segment(
    dir: &Path,
    base: Offset,
    config: &LogConfig,
) -> Result<Segment> {
    let log_path = dir.join(segment_file_name(base, LOG_SUFFIX));
    let file = fs::open_read_write(&log_path, true).await?;
    file.truncate(0)
        .await
        .map_err(|e| StorageError::glommio("truncate", &log_path, e))?;
    let files = segment::open_index_files(dir, base, true).await?;
    for (f, path) in [
        (&files.offset, &files.offset_path),
        (&files.time, &files.time_path),
    ] {
        f.truncate(0)
            .await
            .map_err(|e| StorageError::glommio("truncate", path, e))?;
    }
    let indexes = SegmentIndexes::new(base, config);
    Ok(Segment {
        base_offset: base,
        log: Rc::new(LogFile {
            file,
            path: log_path,
        }),
        reserved_size: 0,
        reserved_next_offset: base,
        written_size: 0,
        written_next_offset: base,
        durable_size: 0,
        indexes: Some(indexes),
        index_files: IndexFileState {
            files: Some(Rc::new(files)),
            offset_entries_written: 0,
            time_entries_written: 0,
            offset_file_len: 0,
            time_file_len: 0,
            synced: false,
            stale_tail: false,
            offset_durable_len: 0,
            time_durable_len: 0,
        },
        created: Instant::now(),
    })
}

/// Removes the files of segments that left the log (readers holding a range keep the
/// open file).
async fn remove_segment_files(dir: &Path, segments: &[Segment]) -> Result<()> {
    for segment in segments {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            fs::remove_file(&dir.join(segment_file_name(segment.base_offset, suffix))).await?;
        }
    }
    if !segments.is_empty() {
        fs::sync_dir(dir).await?;
    }
    Ok(())
}

/// The writer task: drains the queue of pending buffers one write at a time, in order,
/// and advances the log end offset as each completes.
async fn run_writer(inner: Rc<Inner>) {
    loop {
        let chunk = {
            let mut st = inner.state.borrow_mut();
            match st.write_queue.pop_front() {
                Some(chunk) => chunk,
                None => {
                    st.writer_running = false;
                    drop(st);
                    inner.written.notify_all();
                    return;
                }
            }
        };
        let WriteChunk {
            segment_base,
            file,
            position,
            buf,
            first_offset,
            end_offset,
        } = chunk;
        let len = buf.len() as u32;
        let result = fs::write_all_at(&file.file, &file.path, buf, position as u64).await;
        {
            let mut st = inner.state.borrow_mut();
            match result {
                Ok(()) => {
                    assert_eq!(
                        st.log_end.offset(),
                        first_offset,
                        "writes must complete in offset order"
                    );
                    let segment = st
                        .segments
                        .get_mut(&segment_base.0)
                        .expect("a segment with pending writes is never removed");
                    assert!(
                        Rc::ptr_eq(&segment.log, &file),
                        "segment {segment_base} was replaced while writes were pending"
                    );
                    assert_eq!(
                        segment.written_size, position,
                        "write to segment {segment_base} must start at its written size"
                    );
                    segment.written_size = position + len;
                    segment.written_next_offset = end_offset;
                    st.log_end = LogEndOffset(end_offset);
                    st.check_invariants();
                }
                Err(e) => {
                    st.fail(&e);
                    st.writer_running = false;
                    drop(st);
                    inner.written.notify_all();
                    inner.watch.notify_all();
                    return;
                }
            }
        }
        inner.written.notify_all();
        inner.watch.notify_all();
    }
}

/// One sync pass while the caller owns maintenance.
async fn sync_once(inner: &Rc<Inner>, full: bool) -> Result<()> {
    let plan = {
        let mut st = inner.state.borrow_mut();
        st.usable()?;
        SyncPlan::build(&mut st, full)
    };
    if plan.is_empty() {
        // Nothing unsynced: the data is durable; so are the indices if every segment's
        // files are synced (a full plan would have included any that were not).
        let mut st = inner.state.borrow_mut();
        st.durable = st.durable.max(plan.target);
        if full {
            st.recovery_point = st.recovery_point.max(plan.target);
        }
        return Ok(());
    }
    let result = plan.execute().await;
    let mut st = inner.state.borrow_mut();
    match result {
        Ok(()) => {
            plan.apply(&mut st);
            st.syncs_completed += 1;
            st.check_invariants();
            Ok(())
        }
        Err(e) => {
            st.fail(&e);
            Err(e)
        }
    }
}

/// The group-commit task: one sync, then wake every waiter.
async fn run_sync(inner: Rc<Inner>, full: bool) {
    let _ = sync_once(&inner, full).await;
    PartitionLog { inner }.release_maintenance();
}
