//! Changing which segments make up the log: rolling to a new segment, truncation (for
//! replication) and deletion of old segments (retention), with the removal of their files.
//! One segment's own files, bookkeeping and scans are in `segment`.
//!
//! Runs in the caller's task on the shard that owns the partition (the sync a roll
//! requests runs in a task of its own there). A roll holds the append turn, so appends
//! wait; a truncation holds the turn, lets pending writes finish and owns maintenance;
//! retention owns maintenance only, so appends go on.
//!
//! Invariants: the log always has a segment (a replacement goes in before the segments it
//! replaces go out, so concurrent readers always find one); retention never deletes the
//! active segment nor anything at or above the high watermark; a truncation is durable when
//! it returns; a failed truncation or deletion takes the log offline, and so does a roll
//! failing for other than a transient reason (out of descriptors or memory).

use std::ops::ControlFlow;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use super::checkpoint::LeaderEpochCache;
use super::durability::{run_sync, sync_once};
use super::error::{Result, StorageError};
use super::fs;
use super::log::PartitionLog;
use super::producers::TXN_INDEX_SUFFIX;
use super::read::corrupt_segment;
use super::segment::{
    self, INDEX_SUFFIX, IndexFileState, IndexPersist, LOG_SUFFIX, ScanEnd, Segment,
    TIME_INDEX_SUFFIX, create_segment, scan_headers, segment_file_name,
};
use crate::model::{HighWatermark, LogEndOffset, LogStartOffset, Offset, Timestamp};

impl PartitionLog {
    /// Starts a new segment at the next offset (Kafka's `roll`). Appends wait meanwhile.
    pub async fn roll(&self) -> Result<()> {
        let _turn = self.inner.sequencer.acquire().await;
        self.inner.state.borrow().usable()?;
        self.roll_locked().await
    }

    pub(super) async fn roll_locked(&self) -> Result<()> {
        let (dir, new_base, config, old_base) = {
            let st = self.inner.state.borrow();
            if st.active().reserved_size == 0 {
                return Ok(());
            }
            (
                st.dir.clone(),
                st.next_offset,
                st.config.clone(),
                st.active().base_offset,
            )
        };
        // The producers as of the new segment's base, and the rolled segment's aborted
        // transactions (Kafka snapshots at every roll).
        self.write_producer_files(old_base).await?;
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
            shards::rt::spawn(run_sync(self.inner.clone(), true)).detach();
        }
        Ok(())
    }

    /// Removes every offset at or above `offset` (for replication: truncation to the
    /// leader's epoch end). Cuts at the start of the batch that contains `offset`, so the
    /// new log end offset is at most `offset`; returns it. The truncation is durable when
    /// this returns.
    pub async fn truncate_to(&self, offset: Offset) -> Result<LogEndOffset> {
        let _turn = self.inner.sequencer.acquire().await;
        self.drain_writes().await?;
        self.acquire_maintenance().await?;
        let mut result = self.truncate_locked(offset).await;
        if result.is_ok() {
            // The producers as the shorter log leaves them.
            if let Err(e) = self.load_producer_state().await {
                result = Err(e);
            }
        }
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

    /// Empties the log and restarts it at `offset` (above the log end offset): Kafka's
    /// `truncateFullyAndStartAt`. Durable when this returns.
    pub async fn start_empty_at(&self, offset: Offset) -> Result<()> {
        let _turn = self.inner.sequencer.acquire().await;
        self.drain_writes().await?;
        self.acquire_maintenance().await?;
        let mut result = self.truncate_fully_and_start_at(offset).await.map(|_| ());
        if result.is_ok()
            && let Err(e) = self.load_producer_state().await
        {
            result = Err(e);
        }
        if let Err(e) = &result {
            self.inner.state.borrow_mut().fail(e);
        }
        self.release_maintenance();
        self.inner.written.notify_all();
        result
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
        let (offset_len, time_len) = files.sizes().await?;
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
    /// first remaining segment. Returns how many segments went; their files are renamed
    /// `.deleted` and removed `file.delete.delay.ms` later (`retention`).
    pub async fn delete_segments_before(&self, offset: Offset) -> Result<usize> {
        self.acquire_maintenance().await?;
        let doomed = {
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
                st.producers.drop_aborted_below(log_start);
                st.check_invariants();
            }
            doomed
        };
        let result = self.retire_segments(&doomed).await;
        if let Err(e) = &result {
            self.inner.state.borrow_mut().fail(e);
        }
        self.release_maintenance();
        result.map(|()| doomed.len())
    }
}

/// Removes the files of segments that left the log (readers holding a range keep the
/// open file).
async fn remove_segment_files(dir: &Path, segments: &[Segment]) -> Result<()> {
    for segment in segments {
        for suffix in [
            LOG_SUFFIX,
            INDEX_SUFFIX,
            TIME_INDEX_SUFFIX,
            TXN_INDEX_SUFFIX,
        ] {
            fs::remove_file(&dir.join(segment_file_name(segment.base_offset, suffix))).await?;
        }
    }
    if !segments.is_empty() {
        fs::sync_dir(dir).await?;
    }
    Ok(())
}
