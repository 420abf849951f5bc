//! The partition log: append, group-committed durability, reads by offset and timestamp,
//! truncation and segment deletion, for one partition.
//!
//! Owns [`PartitionLog`] and its state ([`LogState`]): opening it from what `recovery`
//! found, closing it, the accessors and the hooks tests use. One `PartitionLog` per
//! partition, on the shard that owns the partition: it is `!Send` (`Rc`/`RefCell` inside)
//! and a cheap handle (`Clone` shares the same log), so the tasks of that shard can use it
//! concurrently.
//!
//! The rest of its methods live in sibling modules, one per concern, all on the same
//! state: `append` (offsets, pending writes, the writer task), `durability` (group-committed
//! fdatasync, the flush policy, the sync task, maintenance ownership), `read` (reads and
//! offset lookups, [`FileRange`](super::FileRange)) and `segments` (roll, truncation,
//! retention). This module documentation describes the design they share.
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
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use futures_lite::future;

use super::append::WriteChunk;
use super::checkpoint::LeaderEpochCache;
use super::cleaner::CleanerLogState;
use super::config::LogConfig;
use super::durability::sync_once;
use super::error::{Result, StorageError};
use super::notify::{Notified, Notify};
use super::producers::ProducerStates;
use super::recovery::{RecoveredLog, RecoveryStats};
use super::segment::{INDEX_SUFFIX, Segment, TIME_INDEX_SUFFIX, segment_file_name};
use super::sequencer::Sequencer;
use super::testing::FileDurability;
use crate::model::{HighWatermark, LeaderEpoch, LogEndOffset, LogStartOffset, Offset, Timestamp};

/// A segment's max timestamp, its offset, and its time index entries (tests).
#[cfg(test)]
pub(crate) type TimeInfo = (Timestamp, Offset, Vec<(Timestamp, Offset)>);

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
    pub(super) write_queue: VecDeque<WriteChunk>,
    pub(super) writer_running: bool,
    /// A sync, truncation, segment deletion, cleaner swap or close owns the index files,
    /// the segment map's membership and durability bookkeeping.
    pub(super) maintenance_busy: bool,
    /// Run another sync when the current one ends (requested by a roll).
    pub(super) sync_requested: bool,
    pub(super) flush_timer_armed: bool,
    pub(super) failed: Option<Arc<str>>,
    /// The final sync of `close` trims the active segment's indices like an inactive one's.
    pub(super) closing: bool,
    pub(super) closed: bool,
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
    /// Producer ids, their last batches and transactions (idempotence, the last stable
    /// offset, the aborted transactions).
    pub producers: ProducerStates,
    /// What the cleaner keeps about this log (compacted topics).
    pub cleaner: CleanerLogState,
}

pub(crate) struct Inner {
    pub state: RefCell<LogState>,
    pub(super) sequencer: Sequencer,
    /// A write completed (log end offset moved) or the log failed.
    pub(super) written: Notify,
    /// A sync or maintenance step ended.
    pub(super) durable: Notify,
    /// The log end offset or high watermark moved (long-poll fetches).
    pub(super) watch: Notify,
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
    /// The state of a log that `recovery` just opened: nothing pending, nothing running.
    fn recovered(dir: PathBuf, config: LogConfig, recovered: RecoveredLog) -> Self {
        let RecoveredLog {
            segments,
            log_start,
            high_watermark,
            log_end,
            next_offset,
            durable,
            recovery_point,
            epochs,
            epochs_dirty,
            dir_dirty,
            entries_not_durable,
            recovery_stats,
            created: _,
        } = recovered;
        LogState {
            dir,
            config,
            segments,
            log_start,
            high_watermark,
            log_end,
            next_offset,
            durable,
            recovery_point,
            write_queue: VecDeque::new(),
            writer_running: false,
            maintenance_busy: false,
            sync_requested: false,
            flush_timer_armed: false,
            failed: None,
            closing: false,
            closed: false,
            epochs,
            epochs_dirty,
            dir_dirty,
            entries_not_durable,
            syncs_completed: 0,
            recovery_stats,
            producers: ProducerStates::new(),
            cleaner: CleanerLogState::default(),
        }
    }

    pub(crate) fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(super) fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(super) fn usable(&self) -> Result<()> {
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

    pub(super) fn fail(&mut self, error: &StorageError) {
        if self.failed.is_none() {
            self.failed = Some(error.to_string().into());
        }
        self.write_queue.clear();
    }

    /// The base offset of the segment that holds `offset` (the last one starting at or
    /// below it).
    pub(super) fn segment_base_for(&self, offset: Offset) -> Option<i64> {
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

    /// Opens (creating if needed) the log in the partition directory `dir`
    /// (`<log.dirs>/<topic>-<partition>`), recovering everything after `recovery_point`
    /// (the value [`PartitionLog::checkpoint`] returned that the server last wrote to
    /// `recovery-point-offset-checkpoint`; 0 means "validate everything"). Everything
    /// recovered is fdatasynced before this returns, so the new recovery point is the log
    /// end offset.
    ///
    /// The high watermark starts at the log start offset; the server moves it once it knows
    /// what is committed (single node: [`PartitionLog::advance_high_watermark`] to the log
    /// end offset when it takes leadership).
    pub async fn open(
        dir: impl AsRef<Path>,
        config: LogConfig,
        recovery_point: Offset,
    ) -> Result<PartitionLog> {
        let dir = dir.as_ref().to_path_buf();
        let recovered = RecoveredLog::recover(&dir, &config, recovery_point).await?;
        let created = recovered.created;
        let log = PartitionLog::from_state(LogState::recovered(dir, config, recovered));
        if created {
            // A new log: its first segment's directory entry and the empty epoch checkpoint.
            log.flush().await?;
        } else {
            log.load_producer_state().await?;
        }
        Ok(log)
    }

    /// The partition directory.
    pub fn dir(&self) -> PathBuf {
        self.inner.state.borrow().dir.clone()
    }

    pub fn config(&self) -> LogConfig {
        self.inner.state.borrow().config.clone()
    }

    /// Applies a changed topic configuration live (IncrementalAlterConfigs): the next
    /// roll, flush, retention pass and cleaning use it; what is on disk stays as it is.
    pub fn set_config(&self, config: LogConfig) {
        self.inner.state.borrow_mut().config = config;
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

    /// The leader epoch cache (epochs and their start offsets).
    pub fn leader_epochs(&self) -> LeaderEpochCache {
        self.inner.state.borrow().epochs.clone()
    }

    /// The log's size: the bytes of every segment's batches (Kafka's `Log.size`).
    pub fn size_bytes(&self) -> u64 {
        let st = self.inner.state.borrow();
        st.segments
            .values()
            .map(|s| u64::from(s.written_size))
            .sum()
    }

    /// Kafka's OffsetsForLeaderEpoch answer (see `LeaderEpochCache::end_offset_for`).
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

    /// Writes everything out, makes it durable, trims the active segment's indices (as
    /// Kafka does on a clean shutdown) and refuses further use.
    pub async fn close(&self) -> Result<()> {
        let _turn = self.inner.sequencer.acquire().await;
        self.drain_writes().await?;
        let active_base = self.inner.state.borrow().active().base_offset;
        self.write_producer_files(active_base).await?;
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
        // Long polls watching this log look again and find it gone.
        self.inner.watch.notify_all();
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
