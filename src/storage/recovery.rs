//! Opening a partition log: find its segments, trust what the recovery point says is
//! durable, validate the rest batch by batch, truncate at the first torn or corrupt batch,
//! rebuild indices. Kafka's `LogLoader`, for one partition, on the shard that will own it.
//!
//! Owns the recovery itself and what it produces: a [`RecoveredLog`] (the segments, the
//! offsets, the leader epochs and what is not durable yet) from which
//! [`PartitionLog::open`](super::PartitionLog::open) builds the log, and the
//! [`RecoveryStats`] that describe it; also the loading of one segment's index files, which
//! the log does lazily for segments that were clean at open. It knows nothing of the log's
//! runtime state (pending writes, syncs, maintenance).
//!
//! Cost: a directory listing and one open per segment, the sparse index of the segment
//! holding the recovery point, then a CRC scan of the bytes after the last index entry
//! below the recovery point, so time is proportional to the data written after the last
//! fdatasync the caller checkpointed, not to the log. Segments wholly below the recovery
//! point are not read at all; their indices load lazily on first use.
//!
//! Before anything else, what a cleaning cut short is completed or undone
//! (`cleaner::complete_interrupted_swaps`: `.cleaned` files removed, `.swap` segments
//! swapped in).
//!
//! Invariants on return: each segment starts where the previous one ends (offsets inside a
//! segment only increase: the cleaner leaves gaps), every byte of every segment below the
//! written size is a valid batch (checked for the recovered tail, assumed below the
//! recovery point), index files hold exactly the in-memory entries (stale or torn entries
//! are cut), and nothing above the first invalid batch remains.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use super::checkpoint::{LEADER_EPOCH_CHECKPOINT, LeaderEpochCache, LeaderEpochCheckpoint};
use super::config::LogConfig;
use super::error::{Result, StorageError};
use super::fs::{self, Job, join_all};
use super::index::{OffsetIndex, TimeIndex};
use super::segment::{
    INDEX_SUFFIX, IndexFileState, IndexPersist, LOG_SUFFIX, LogFile, ScanEnd, Segment,
    SegmentIndexes, TIME_INDEX_SUFFIX, batch_epoch, create_segment, open_index_files,
    parse_segment_file_name, recover_batches, scan_headers, segment_file_name,
};
use crate::model::{HighWatermark, LogEndOffset, LogStartOffset, Offset, Timestamp};

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

/// What recovery found: everything the log's state starts from. The log is durable up to
/// `log_end` (recovery fdatasynced the recovered tail and rewrote the index files) except
/// for what `dir_dirty`, `entries_not_durable` and `epochs_dirty` say.
#[derive(Default)]
pub(crate) struct RecoveredLog {
    /// Segments by base offset; the last one is active. Never empty.
    pub segments: BTreeMap<i64, Segment>,
    pub log_start: LogStartOffset,
    pub high_watermark: HighWatermark,
    pub log_end: LogEndOffset,
    pub next_offset: Offset,
    pub durable: Offset,
    pub recovery_point: Offset,
    pub epochs: LeaderEpochCache,
    pub epochs_dirty: bool,
    /// Files were created or removed since the last directory fsync.
    pub dir_dirty: bool,
    /// Base offsets of segments whose directory entries are not yet fsynced.
    pub entries_not_durable: Vec<Offset>,
    pub recovery_stats: RecoveryStats,
    /// The directory held no segment: the log was created empty, and its first segment's
    /// directory entry and epoch checkpoint still have to be made durable.
    pub created: bool,
}

/// Reads and decodes a segment's index files (their longest valid prefix); rebuilds them
/// from the log if the offset index file is missing.
pub(crate) async fn load_indexes(
    dir: &Path,
    log: &LogFile,
    base: Offset,
    written_size: u32,
    offset_limit: Offset,
    config: &LogConfig,
) -> Result<SegmentIndexes> {
    let offset_bytes = fs::read_file(&dir.join(segment_file_name(base, INDEX_SUFFIX))).await?;
    let time_bytes = fs::read_file(&dir.join(segment_file_name(base, TIME_INDEX_SUFFIX))).await?;
    let (Some(offset_bytes), Some(time_bytes)) = (offset_bytes, time_bytes) else {
        let mut indexes = SegmentIndexes::new(base, config);
        let interval = config.index_interval_bytes;
        recover_batches(log, base, 0, written_size as u64, base, |position, h| {
            indexes.on_batch(
                position,
                Offset(h.last_offset()),
                Timestamp(h.max_timestamp),
                interval,
            );
        })
        .await?;
        indexes.on_roll();
        return Ok(indexes);
    };
    let mut indexes = decode_indexes(
        base,
        &offset_bytes,
        &time_bytes,
        offset_limit,
        written_size,
        config,
    );
    confirm_leading_zero_time_entry(log, written_size, &mut indexes).await?;
    Ok(indexes)
}

/// A leading all-zero time index entry is real only if the segment's first batch ends at
/// the base offset with max timestamp 0; otherwise it is an unwritten preallocated slot and
/// the time index is dropped (it is only a hint).
async fn confirm_leading_zero_time_entry(
    log: &LogFile,
    log_len: u32,
    indexes: &mut SegmentIndexes,
) -> Result<()> {
    if !indexes.time.starts_with_zero_entry() {
        return Ok(());
    }
    let base = indexes.offset.base_offset();
    let mut real = false;
    scan_headers(log, 0, log_len, |_, h| {
        real = h.last_offset() == base.0 && h.max_timestamp == 0;
        ControlFlow::Break(())
    })
    .await?;
    if !real {
        indexes.time.clear();
        let (max_timestamp, offset_of_max) = (Timestamp::NONE, base);
        indexes.max_timestamp = max_timestamp;
        indexes.offset_of_max_timestamp = offset_of_max;
    }
    Ok(())
}

fn decode_indexes(
    base: Offset,
    offset_bytes: &[u8],
    time_bytes: &[u8],
    offset_limit: Offset,
    position_limit: u32,
    config: &LogConfig,
) -> SegmentIndexes {
    let (offset, _) = OffsetIndex::decode(
        base,
        offset_bytes,
        config.segment_index_bytes,
        offset_limit,
        position_limit,
    );
    let (time, _) = TimeIndex::decode(base, time_bytes, config.segment_index_bytes, offset_limit);
    let (max_timestamp, offset_of_max_timestamp) = time.last().unwrap_or((Timestamp::NONE, base));
    let last_index_entry_position = offset.entries().last().map_or(0, |e| e.position);
    SegmentIndexes {
        offset,
        time,
        max_timestamp,
        offset_of_max_timestamp,
        last_index_entry_position,
    }
}

struct Found {
    base: Offset,
    log_len: u64,
    has_index: bool,
    has_time_index: bool,
    index_len: u64,
    time_index_len: u64,
}

impl RecoveredLog {
    /// Recovers the log in the partition directory `dir` (creating it if needed), validating
    /// everything after `recovery_point`, for [`PartitionLog::open`](super::PartitionLog::open).
    pub(crate) async fn recover(
        dir: &Path,
        config: &LogConfig,
        recovery_point: Offset,
    ) -> Result<RecoveredLog> {
        config.validate().map_err(StorageError::InvalidConfig)?;
        fs::create_dir_durably(dir).await?;
        // A cleaning cut short: its `.cleaned` files go, a `.swap` segment replaces the
        // segments it was cleaned from (Kafka's LogLoader).
        super::cleaner::complete_interrupted_swaps(dir).await?;
        let listing = fs::list_dir(dir).await?;

        let mut found: BTreeMap<i64, Found> = BTreeMap::new();
        let mut index_files = BTreeMap::new();
        let mut time_index_files = BTreeMap::new();
        let mut removed_any = false;
        for (name, len) in &listing {
            if super::retention::is_deleted_file(name) {
                // A segment retention took out of the log before a crash or a restart.
                fs::remove_file(&dir.join(name)).await?;
                removed_any = true;
            } else if let Some(base) = parse_segment_file_name(name, LOG_SUFFIX) {
                found.insert(
                    base.0,
                    Found {
                        base,
                        log_len: *len,
                        has_index: false,
                        has_time_index: false,
                        index_len: 0,
                        time_index_len: 0,
                    },
                );
            } else if let Some(base) = parse_segment_file_name(name, INDEX_SUFFIX) {
                index_files.insert(base.0, *len);
            } else if let Some(base) = parse_segment_file_name(name, TIME_INDEX_SUFFIX) {
                time_index_files.insert(base.0, *len);
            }
        }
        for (set, suffix, has) in [
            (&index_files, INDEX_SUFFIX, true),
            (&time_index_files, TIME_INDEX_SUFFIX, false),
        ] {
            for (base, len) in set {
                match found.get_mut(base) {
                    Some(segment) if has => {
                        segment.has_index = true;
                        segment.index_len = *len;
                    }
                    Some(segment) => {
                        segment.has_time_index = true;
                        segment.time_index_len = *len;
                    }
                    None => {
                        // An index without its log (a crash during segment deletion).
                        fs::remove_file(&dir.join(segment_file_name(Offset(*base), suffix)))
                            .await?;
                        removed_any = true;
                    }
                }
            }
        }

        let checkpoint = LeaderEpochCheckpoint::read(&dir.join(LEADER_EPOCH_CHECKPOINT)).await?;
        let mut state = RecoveredLog {
            epochs: LeaderEpochCache::from_checkpoint(checkpoint),
            ..RecoveredLog::default()
        };

        if found.is_empty() {
            let segment = create_segment(dir, Offset::ZERO, config).await?;
            state.segments.insert(0, segment);
            state.dir_dirty = true;
            state.entries_not_durable.push(Offset::ZERO);
            state.epochs = LeaderEpochCache::default();
            state.epochs_dirty = true;
            state.created = true;
            return Ok(state);
        }

        let found: Vec<Found> = found.into_values().collect();
        // The first segment that needs validation: the one holding the recovery point, or
        // an earlier one whose index files are missing.
        let mut first_recovered = found
            .iter()
            .rposition(|f| f.base <= recovery_point)
            .unwrap_or(0);
        if let Some(missing) = found.iter().position(|f| !f.has_index || !f.has_time_index) {
            first_recovered = first_recovered.min(missing);
        }

        let now = Instant::now();
        let started = now;
        let mut next_offset = found[0].base;
        let mut truncated_at: Option<usize> = None;
        for (i, f) in found.iter().enumerate() {
            let path = dir.join(segment_file_name(f.base, LOG_SUFFIX));
            let file = fs::open_read_write(&path, false).await?;
            let log = Rc::new(LogFile { file, path });
            if i < first_recovered {
                // Below the recovery point: trusted as written.
                let next_base = found[i + 1].base;
                let size = f.log_len.min(i32::MAX as u64) as u32;
                state.segments.insert(
                    f.base.0,
                    Segment {
                        base_offset: f.base,
                        log,
                        reserved_size: size,
                        reserved_next_offset: next_base,
                        written_size: size,
                        written_next_offset: next_base,
                        durable_size: size,
                        indexes: None,
                        index_files: IndexFileState {
                            offset_durable_len: f.index_len,
                            time_durable_len: f.time_index_len,
                            ..IndexFileState::default()
                        },
                        created: now,
                    },
                );
                next_offset = next_base;
                continue;
            }
            if i > first_recovered && f.base != next_offset {
                // Overlaps the previous segment or leaves a hole after it (its tail was
                // lost): not part of the log. Segments end exactly where the next begins,
                // cleaned ones too (see `recover_batches`).
                truncated_at = Some(i);
                break;
            }
            let mut indexes = SegmentIndexes::new(f.base, config);
            let mut start = 0u32;
            let mut kept_entries = (0usize, 0usize);
            if i == first_recovered
                && f.has_index
                && f.has_time_index
                && recovery_point > f.base
                && let Some(partial) = partial_start(dir, &log, f, recovery_point, config).await?
            {
                (indexes, start) = partial;
                kept_entries = (indexes.offset.len(), indexes.time.len());
            }
            let interval = config.index_interval_bytes;
            let epochs = &mut state.epochs;
            let mut epochs_changed = false;
            let recovered =
                recover_batches(&log, f.base, start, f.log_len, f.base, |position, h| {
                    indexes.on_batch(
                        position,
                        Offset(h.last_offset()),
                        Timestamp(h.max_timestamp),
                        interval,
                    );
                    epochs_changed |= epochs.assign(batch_epoch(h), Offset(h.base_offset));
                })
                .await?;
            state.epochs_dirty |= epochs_changed;
            state.recovery_stats.segments_scanned += 1;
            state.recovery_stats.bytes_scanned += (f.log_len - start as u64).min(f.log_len);
            state.recovery_stats.bytes_truncated += f.log_len - recovered.valid_end as u64;
            if recovered.valid_end as u64 != f.log_len {
                tracing::warn!(
                    "recovery of {}: truncating {} from {} to {} bytes (a torn or corrupt \
                     tail past the recovery point)",
                    dir.display(),
                    log.path.display(),
                    f.log_len,
                    recovered.valid_end
                );
                log.file
                    .truncate(recovered.valid_end as u64)
                    .await
                    .map_err(|e| StorageError::glommio("truncate", &log.path, e))?;
            }
            let files = open_index_files(dir, f.base, true).await?;
            let (offset_len, time_len) = files.sizes().await?;
            let durable_size = if start > 0 {
                start.min(recovered.valid_end)
            } else {
                0
            };
            let next = recovered.next_offset;
            state.segments.insert(
                f.base.0,
                Segment {
                    base_offset: f.base,
                    log,
                    reserved_size: recovered.valid_end,
                    reserved_next_offset: next,
                    written_size: recovered.valid_end,
                    written_next_offset: next,
                    durable_size,
                    indexes: Some(indexes),
                    index_files: IndexFileState {
                        files: Some(Rc::new(files)),
                        offset_entries_written: kept_entries.0,
                        time_entries_written: kept_entries.1,
                        offset_file_len: offset_len,
                        time_file_len: time_len,
                        synced: false,
                        stale_tail: true,
                        offset_durable_len: (kept_entries.0 * 8) as u64,
                        time_durable_len: (kept_entries.1 * 12) as u64,
                    },
                    created: now,
                },
            );
            next_offset = next;
            if recovered.truncated {
                truncated_at = Some(i + 1);
                break;
            }
        }

        // Segments after a corrupt batch (or overlapping) are not part of the log.
        if let Some(cut) = truncated_at {
            for f in &found[cut..] {
                tracing::warn!(
                    "recovery of {}: deleting segment {} ({} bytes), which follows a corrupt \
                     batch",
                    dir.display(),
                    f.base,
                    f.log_len
                );
                for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                    fs::remove_file(&dir.join(segment_file_name(f.base, suffix))).await?;
                }
                removed_any = true;
            }
        }
        // Also makes the entries of segments created by an earlier run durable: this run
        // may append to them.
        let _ = removed_any;
        fs::sync_dir(dir).await?;

        // Inactive recovered segments get Kafka's final time index entry; then every
        // recovered segment's index files are rewritten to match memory, durably.
        let last_base = *state
            .segments
            .keys()
            .next_back()
            .expect("at least one segment");
        let mut plans = Vec::new();
        for (base, segment) in state.segments.iter_mut() {
            let active = *base == last_base;
            if let Some(indexes) = segment.indexes.as_mut()
                && !active
            {
                indexes.on_roll();
            }
            if let Some(indexes) = segment.indexes.as_ref()
                && let Some(plan) = IndexPersist::plan(segment, indexes, active, true, config)
            {
                plans.push(plan);
            }
        }
        // The recovered tail may only be in the page cache (after a process crash): make it
        // durable now, together with the rewritten index files, so the recovery point can
        // move to the log end and the next open scans nothing.
        let recovered: Vec<Rc<LogFile>> = state
            .segments
            .values()
            .filter(|s| s.durable_size < s.written_size)
            .map(|s| s.log.clone())
            .collect();
        let mut jobs: Vec<Job<'_>> = Vec::new();
        for plan in &plans {
            jobs.push(Box::pin(plan.execute()));
        }
        for log in &recovered {
            jobs.push(Box::pin(async move {
                log.file
                    .fdatasync()
                    .await
                    .map_err(|e| StorageError::glommio("fdatasync", &log.path, e))
            }));
        }
        join_all(jobs).await?;
        for plan in plans {
            let segment = state
                .segments
                .get_mut(&plan.base_offset.0)
                .expect("planned segment exists");
            plan.apply(&mut segment.index_files);
            if !plan.active {
                segment.index_files.files = None;
            }
        }
        for segment in state.segments.values_mut() {
            segment.durable_size = segment.written_size;
        }

        let log_start = Offset(*state.segments.keys().next().expect("segments"));
        let log_end = state
            .segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
            .written_next_offset;
        state.log_start = LogStartOffset(log_start);
        state.high_watermark = HighWatermark(log_start);
        state.log_end = LogEndOffset(log_end);
        state.next_offset = log_end;
        state.recovery_point = log_end;
        state.durable = log_end;
        state.recovery_stats.segments = state.segments.len();
        state.recovery_stats.duration = started.elapsed();
        if state.epochs.truncate_from_end(log_end) {
            state.epochs_dirty = true;
        }
        if state.epochs.truncate_from_start(log_start) {
            state.epochs_dirty = true;
        }
        Ok(state)
    }
}

/// Where recovery of the segment holding the recovery point can start: the last offset
/// index entry below the recovery point, if the batch it names is really there. Returns
/// the indices cut to that entry and its position.
async fn partial_start(
    dir: &Path,
    log: &LogFile,
    f: &Found,
    recovery_point: Offset,
    config: &LogConfig,
) -> Result<Option<(SegmentIndexes, u32)>> {
    let offset_bytes = fs::read_file(&dir.join(segment_file_name(f.base, INDEX_SUFFIX))).await?;
    let time_bytes = fs::read_file(&dir.join(segment_file_name(f.base, TIME_INDEX_SUFFIX))).await?;
    let (Some(offset_bytes), Some(time_bytes)) = (offset_bytes, time_bytes) else {
        return Ok(None);
    };
    let log_len = f.log_len.min(i32::MAX as u64) as u32;
    let mut indexes = decode_indexes(
        f.base,
        &offset_bytes,
        &time_bytes,
        recovery_point,
        log_len,
        config,
    );
    let Some(&entry) = indexes.offset.entries().last() else {
        return Ok(None);
    };
    let entry_offset = f.base.plus(entry.relative_offset as i64);
    // The entry must name a whole batch ending at its offset.
    let mut matches = false;
    let scan = scan_headers(log, entry.position, log_len, |_, h| {
        matches = h.last_offset() == entry_offset.0;
        ControlFlow::Break(())
    })
    .await?;
    if !matches || !matches!(scan, ScanEnd::Stopped(_)) {
        return Ok(None);
    }
    // Time entries past the entry's batch may describe batches that were lost.
    indexes.time.truncate_to_offset(entry_offset.next());
    confirm_leading_zero_time_entry(log, log_len, &mut indexes).await?;
    let (max_timestamp, offset_of_max) = indexes.time.last().unwrap_or((Timestamp::NONE, f.base));
    indexes.max_timestamp = max_timestamp;
    indexes.offset_of_max_timestamp = offset_of_max;
    indexes.last_index_entry_position = entry.position;
    Ok(Some((indexes, entry.position)))
}
