//! One cleaning of one log (Kafka's `Cleaner.doClean`): what part of the log may be
//! cleaned ([`LogToClean`], Kafka's `LogCleanerManager.cleanableOffsets`), the offset map
//! of its dirty section, then every segment from the log start to the end of the mapped
//! section rewritten, group by group, keeping what compaction keeps, each group swapped
//! in as one segment; finally the cleaner checkpoint.
//!
//! Runs in the cleaner's task on the log's shard, never holding the append turn (it only
//! reads segments below the active one, which no longer change) and owning the log's
//! maintenance only to swap a group in. Work goes in slices of at most 1 MiB (less when
//! `log.cleaner.io.max.bytes.per.second` is low), each paced and followed by a yield.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::checkpoint::OffsetCheckpoint;
use super::super::error::{Result, StorageError};
use super::super::log::PartitionLog;
use super::super::producers::{LastRecord, Marker};
use super::super::records::{
    BatchHeader, Record, RecordBatch, batches, empty_batch, rebuild_batch,
};
use super::super::segment::{LogFile, SegmentIndexes, read_bytes, scan_headers};
use super::super::{LogConfig, config::NEVER};
use super::offset_map::OffsetMap;
use super::swap::{CleanedSegment, SegmentView};
use super::throttle::Throttler;
use super::transactions::CleanedTransactions;
use super::{CLEANER_CHECKPOINT, CleanError, SwapStep};
use crate::model::{Offset, Timestamp, TopicPartition};

/// The largest slice of I/O the cleaner does between two yields.
const MAX_SLICE: usize = 1 << 20;

/// What a log offers the cleaner at one moment (Kafka's `LogToClean`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogToClean {
    /// The first offset not cleaned yet (the cleaner checkpoint, or the log start offset).
    pub first_dirty: Offset,
    /// The base of the first segment the cleaner must leave alone: the active segment,
    /// or the segment holding the last stable offset (at most the high watermark), the
    /// durable offset, or a record younger than `min.compaction.lag.ms`.
    pub first_uncleanable: Offset,
    /// Bytes of the segments below `first_dirty`.
    pub clean_bytes: u64,
    /// Bytes of the segments holding `[first_dirty, first_uncleanable)`.
    pub cleanable_bytes: u64,
    /// The oldest dirty record passed `max.compaction.lag.ms`.
    pub need_compaction_now: bool,
    /// A tombstone or marker kept by an earlier cleaning may go now (its delete horizon
    /// passed).
    pub horizon_passed: bool,
}

impl LogToClean {
    pub fn total_bytes(&self) -> u64 {
        self.clean_bytes + self.cleanable_bytes
    }

    /// Dirty bytes over all bytes (Kafka's `cleanableRatio`).
    pub fn dirty_ratio(&self) -> f64 {
        match self.total_bytes() {
            0 => 0.0,
            total => self.cleanable_bytes as f64 / total as f64,
        }
    }

    /// Whether the log is due for cleaning: its dirty ratio is above
    /// `min.cleanable.dirty.ratio` (strictly, as Kafka), or a dirty record waited past
    /// `max.compaction.lag.ms`.
    pub fn due(&self, min_cleanable_dirty_ratio: f64) -> bool {
        self.cleanable_bytes > 0
            && (self.need_compaction_now || self.dirty_ratio() > min_cleanable_dirty_ratio)
    }
}

/// What one cleaning did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CleanStats {
    /// One past the last offset the offset map covered: the new cleaner checkpoint.
    pub end_offset: Offset,
    /// Segments replaced, and the segments that replaced them.
    pub segments_before: usize,
    pub segments_after: usize,
    /// Bytes of the segments replaced, and of their replacements.
    pub size_before: u64,
    pub size_after: u64,
    /// Bytes read (offset map and cleaning) and written.
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_kept: u64,
    /// Records without a key found in the cleaned segments (dropped, as Kafka does).
    pub records_without_key: u64,
    /// Keys in the offset map, and the share of its slots they used.
    pub keys: usize,
    pub map_utilization: f64,
    pub duration: Duration,
}

/// How a cleaning runs: its clock, its memory, its I/O pace, and (tests) where to stop as
/// if the process died there.
pub(crate) struct CleanContext<'a> {
    pub now: Timestamp,
    pub dedupe_buffer_bytes: u64,
    pub throttler: &'a mut Throttler,
    pub stop_at: Option<SwapStep>,
}

/// Reads whole batches of a segment, a slice at a time.
struct SegmentReader {
    log: Rc<LogFile>,
    position: u32,
    end: u32,
}

impl SegmentReader {
    /// The next whole batches (at least one) with their positions, `None` at the end.
    async fn next(&mut self, slice: usize) -> Result<Option<(Vec<(u32, RecordBatch)>, u64)>> {
        if self.position >= self.end {
            return Ok(None);
        }
        let want = ((self.end - self.position) as usize).min(slice);
        let mut bytes = read_bytes(&self.log, self.position, want).await?;
        let mut read = bytes.len() as u64;
        let mut out = Vec::new();
        let mut at = self.position;
        for batch in batches(bytes.clone()) {
            let Ok(batch) = batch else { break };
            let size = batch.size() as u32;
            out.push((at, batch));
            at += size;
        }
        if out.is_empty() {
            // A batch larger than the slice: read it whole.
            let header = BatchHeader::parse(&bytes).map_err(|_| self.corrupt())?;
            if self.position as u64 + header.size() as u64 > self.end as u64 {
                return Err(self.corrupt());
            }
            bytes = read_bytes(&self.log, self.position, header.size()).await?;
            read += bytes.len() as u64;
            let batch = RecordBatch::parse(bytes).map_err(|_| self.corrupt())?;
            at += batch.size() as u32;
            out.push((self.position, batch));
        }
        for (position, batch) in &out {
            if batch.verify_crc().is_err() {
                return Err(super::super::read::corrupt_segment(&self.log, *position));
            }
        }
        self.position = at;
        Ok(Some((out, read)))
    }

    fn corrupt(&self) -> StorageError {
        super::super::read::corrupt_segment(&self.log, self.position)
    }
}

fn invalid_batch(log: &LogFile, h: &BatchHeader, e: impl std::fmt::Display) -> StorageError {
    StorageError::io(
        "clean",
        &log.path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("batch at offset {}: {e}", h.base_offset),
        ),
    )
}

/// The delete horizon a kept batch carries when it holds what may go at that horizon.
struct Filtered {
    bytes: Option<Bytes>,
    records_read: u64,
    records_kept: u64,
    without_key: u64,
    /// The batch is kept holding tombstones or a removable marker until this time.
    horizon: Option<i64>,
}

/// What the cleaning of one group needs to decide about each batch.
struct Filter<'a> {
    map: &'a OffsetMap,
    last_records: &'a HashMap<i64, LastRecord>,
    now: i64,
    delete_retention_ms: u64,
}

impl Filter<'_> {
    /// Kafka's `shouldRetainRecord`: a record above the mapped section stays; otherwise it
    /// stays if it is the latest of its key (or its key is not in the map) and it has a
    /// value, or it is a tombstone whose batch's delete horizon has not passed.
    fn keeps(&self, h: &BatchHeader, record: &Record) -> Option<bool> {
        let offset = Offset(h.base_offset + i64::from(record.offset_delta));
        if offset > self.map.latest_offset() {
            return Some(true);
        }
        let key = record.key.as_ref()?;
        let latest = self.map.get(key).is_none_or(|found| offset >= found);
        let keep_tombstone = h.delete_horizon().is_none_or(|t| self.now < t);
        Some(latest && (record.value.is_some() || keep_tombstone))
    }

    /// Kafka's `checkBatchRetention` and `filterTo` for one batch: `last_of_group` keeps
    /// the group's last batch (maybe emptied), so the cleaned segment ends where the old
    /// ones did.
    fn batch(
        &self,
        log: &LogFile,
        batch: &RecordBatch,
        txns: &mut CleanedTransactions,
        last_of_group: bool,
    ) -> Result<Filtered> {
        let h = batch.header();
        let control = h.is_control();
        let empty = h.record_count == 0;
        let can_discard = if control {
            let marker = if empty { None } else { Marker::of_batch(batch) };
            txns.on_control_batch(h, marker, empty)
        } else {
            txns.on_batch(h)
        };
        let discard_records = if control {
            can_discard && h.delete_horizon().is_some_and(|t| t <= self.now)
        } else {
            can_discard
        };
        let last_of_producer = h.has_producer_id()
            && self.last_records.get(&h.producer_id).is_some_and(|last| {
                match last.last_data_offset {
                    Some(offset) => h.last_offset() == offset.0,
                    None => control && h.producer_epoch == last.epoch.0,
                }
            });
        let retain_empty = last_of_producer || last_of_group;
        let mut filtered = Filtered {
            bytes: None,
            records_read: h.record_count.max(0) as u64,
            records_kept: 0,
            without_key: 0,
            horizon: None,
        };
        if discard_records && !retain_empty {
            return Ok(filtered);
        }
        let records: Vec<Record> = if empty {
            Vec::new()
        } else {
            batch
                .records()
                .map_err(|e| invalid_batch(log, h, e))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| invalid_batch(log, h, e))?
        };
        let all = records.len();
        let kept: Vec<Record> = if discard_records {
            Vec::new()
        } else if control {
            records
        } else {
            let mut kept = Vec::with_capacity(records.len());
            for record in records {
                match self.keeps(h, &record) {
                    Some(true) => kept.push(record),
                    Some(false) => {}
                    None => filtered.without_key += 1,
                }
            }
            kept
        };
        filtered.records_kept = kept.len() as u64;
        if kept.is_empty() {
            if retain_empty {
                filtered.bytes = Some(empty_batch(h));
            }
            return Ok(filtered);
        }
        let tombstones = !control && kept.iter().any(|r| r.value.is_none());
        let removable_marker = control && can_discard;
        let horizon = match h.delete_horizon() {
            Some(t) => Some(t),
            None if tombstones || removable_marker => Some(
                self.now
                    .saturating_add(self.delete_retention_ms.min(i64::MAX as u64) as i64),
            ),
            None => None,
        };
        if tombstones || removable_marker {
            filtered.horizon = horizon;
        }
        filtered.bytes = Some(if kept.len() == all && horizon == h.delete_horizon() {
            batch.bytes().clone()
        } else {
            rebuild_batch(h, &kept, horizon).map_err(|e| invalid_batch(log, h, e))?
        });
        Ok(filtered)
    }
}

impl PartitionLog {
    /// The cleaner checkpoint (the first dirty offset), read from the partition's
    /// `cleaner-offset-checkpoint` the first time; a missing or unreadable file is no
    /// checkpoint.
    async fn cleaner_checkpoint(&self) -> Option<Offset> {
        if let Some(known) = self.inner.state.borrow().cleaner.checkpoint {
            return known;
        }
        let path = self.dir().join(CLEANER_CHECKPOINT);
        let read = match OffsetCheckpoint::read(&path).await {
            Ok(checkpoint) => checkpoint.entries.first().map(|(_, offset)| *offset),
            Err(e) => {
                tracing::warn!("{}: ignoring the cleaner checkpoint: {e}", path.display());
                None
            }
        };
        self.inner.state.borrow_mut().cleaner.checkpoint = Some(read);
        read
    }

    /// Makes `offset` the cleaner checkpoint, durably.
    async fn write_cleaner_checkpoint(&self, tp: &TopicPartition, offset: Offset) -> Result<()> {
        let path = self.dir().join(CLEANER_CHECKPOINT);
        OffsetCheckpoint {
            entries: vec![(tp.clone(), offset)],
        }
        .write(&path)
        .await?;
        self.inner.state.borrow_mut().cleaner.checkpoint = Some(Some(offset));
        Ok(())
    }

    /// What this log offers the cleaner at `now`; `None` unless its topic is compacted.
    pub async fn to_clean(&self, now: Timestamp) -> Result<Option<LogToClean>> {
        let config = self.config();
        if !config.cleanup_compact {
            return Ok(None);
        }
        self.inner.state.borrow().usable()?;
        let checkpoint = self.cleaner_checkpoint().await;
        let last_stable = self.last_stable_offset().offset();
        let (log_start, log_end, active_base, durable, segments, horizon) = {
            let st = self.inner.state.borrow();
            let segments: Vec<(i64, u32, Rc<LogFile>)> = st
                .segments
                .iter()
                .map(|(base, s)| (*base, s.written_size, s.log.clone()))
                .collect();
            (
                st.log_start.offset(),
                st.log_end.offset(),
                st.active().base_offset,
                st.durable,
                segments,
                st.cleaner.delete_horizon,
            )
        };
        let first_dirty = match checkpoint {
            Some(offset) if offset >= log_start && offset <= log_end => offset,
            Some(offset) => {
                if !config.cleanup_delete {
                    tracing::warn!(
                        "{}: the cleaner checkpoint {offset} lies outside [{log_start}, \
                         {log_end}]: cleaning from the log start offset",
                        self.dir().display()
                    );
                }
                log_start
            }
            None => log_start,
        };
        // Nothing the cleaner relies on may be lost: only durable data is cleaned, the
        // active segment never, nor anything at or above the last stable offset.
        let mut uncleanable = last_stable.min(active_base).min(durable);
        let dirty_from = segments
            .iter()
            .rposition(|(base, _, _)| *base <= first_dirty.0)
            .unwrap_or(0);
        let non_active = &segments[..segments.len() - 1];
        if config.min_compaction_lag_ms > 0 {
            let lag = config.min_compaction_lag_ms.min(i64::MAX as u64) as i64;
            for (base, _, _) in non_active.iter().skip(dirty_from) {
                if *base >= uncleanable.0 {
                    break;
                }
                if self.largest_timestamp(*base).await?.0 > now.0.saturating_sub(lag) {
                    uncleanable = uncleanable.min(Offset(*base));
                    break;
                }
            }
        }
        let uncleanable = uncleanable.max(first_dirty);
        // Whole segments only: the one holding the first uncleanable offset is left alone.
        let first_uncleanable = Offset(
            segments
                .iter()
                .rev()
                .map(|(base, _, _)| *base)
                .find(|base| *base <= uncleanable.0)
                .unwrap_or(segments[0].0),
        );
        let clean_bytes = segments
            .iter()
            .filter(|(base, _, _)| *base < first_dirty.0)
            .map(|(_, size, _)| u64::from(*size))
            .sum();
        let cleanable_bytes = segments[dirty_from..]
            .iter()
            .filter(|(base, _, _)| *base < first_uncleanable.0)
            .map(|(_, size, _)| u64::from(*size))
            .sum();
        let mut need_compaction_now = false;
        if config.max_compaction_lag_ms < NEVER {
            let mut earliest = i64::MAX;
            for (_, size, log) in non_active.iter().skip(dirty_from) {
                if let Some(ts) = first_batch_timestamp(log, *size).await?
                    && ts > 0
                {
                    earliest = earliest.min(ts);
                }
            }
            let lag = config.max_compaction_lag_ms.min(i64::MAX as u64) as i64;
            need_compaction_now = earliest < now.0.saturating_sub(lag);
        }
        Ok(Some(LogToClean {
            first_dirty,
            first_uncleanable,
            clean_bytes,
            cleanable_bytes,
            need_compaction_now,
            horizon_passed: horizon.is_some_and(|t| t <= now),
        }))
    }

    /// The segments overlapping `[from, to)` (the one holding `from` first), each below the
    /// active segment, with their sizes and index sizes.
    async fn segment_views(&self, from: Offset, to: Offset) -> Result<Vec<SegmentView>> {
        let bases: Vec<i64> = {
            let st = self.inner.state.borrow();
            let first = st
                .segment_base_for(from)
                .unwrap_or_else(|| *st.segments.keys().next().expect("a segment"));
            let active = st.active().base_offset.0;
            st.segments
                .range(first..to.0.min(active))
                .map(|(base, _)| *base)
                .collect()
        };
        let mut views = Vec::with_capacity(bases.len());
        for base in bases {
            self.ensure_indexes(base).await?;
            let st = self.inner.state.borrow();
            let Some(segment) = st.segments.get(&base) else {
                // Gone meanwhile (retention): a group that spans the change is not
                // swapped in (see `swap_in`).
                continue;
            };
            let upper = st
                .segments
                .range(base + 1..)
                .next()
                .map(|(b, _)| Offset(*b))
                .expect("a segment below the active one has a successor");
            let (offset_index_bytes, time_index_bytes) =
                segment.indexes.as_ref().map_or((0, 0), |i| {
                    (
                        (i.offset.len() * super::super::index::OFFSET_INDEX_ENTRY_BYTES) as u64,
                        (i.time.len() * super::super::index::TIME_INDEX_ENTRY_BYTES) as u64,
                    )
                });
            views.push(SegmentView {
                base: Offset(base),
                upper,
                log: segment.log.clone(),
                size: segment.written_size,
                offset_index_bytes,
                time_index_bytes,
            });
        }
        Ok(views)
    }

    /// Kafka's `buildOffsetMap`: every key of `[first_dirty, first_uncleanable)` with the
    /// offset of its latest record, except records of aborted transactions, until the
    /// map is full (it then stops at a batch boundary; the rest stays dirty).
    async fn build_offset_map(
        &self,
        ltc: &LogToClean,
        map: &mut OffsetMap,
        ctx: &mut CleanContext<'_>,
        stats: &mut CleanStats,
    ) -> Result<()> {
        let views = self
            .segment_views(ltc.first_dirty, ltc.first_uncleanable)
            .await?;
        let mut txns = CleanedTransactions::default();
        txns.add_aborted(self.aborted_transactions(ltc.first_dirty, ltc.first_uncleanable));
        let slice = ctx.throttler.slice(MAX_SLICE);
        'segments: for view in views {
            let start = if view.base < ltc.first_dirty {
                self.ensure_indexes(view.base.0).await?;
                let st = self.inner.state.borrow();
                st.segments
                    .get(&view.base.0)
                    .and_then(|s| s.indexes.as_ref())
                    .map_or(0, |i| i.offset.lookup(ltc.first_dirty).1)
            } else {
                0
            };
            let mut reader = SegmentReader {
                log: view.log.clone(),
                position: start,
                end: view.size,
            };
            while let Some((chunk, read)) = reader.next(slice).await? {
                stats.bytes_read += read;
                ctx.throttler.throttle(read).await;
                for (_, batch) in chunk {
                    let h = *batch.header();
                    if h.is_control() {
                        let empty = h.record_count == 0;
                        let marker = if empty {
                            None
                        } else {
                            Marker::of_batch(&batch)
                        };
                        txns.on_control_batch(&h, marker, empty);
                    } else if !txns.on_batch(&h) && h.last_offset() >= ltc.first_dirty.0 {
                        let mut keys: Vec<(Bytes, Offset)> = Vec::new();
                        let records = batch
                            .records()
                            .map_err(|e| invalid_batch(&view.log, &h, e))?;
                        for record in records {
                            let record = record.map_err(|e| invalid_batch(&view.log, &h, e))?;
                            let offset = Offset(batch.offset_of(&record));
                            if let Some(key) = record.key
                                && offset >= ltc.first_dirty
                            {
                                keys.push((key, offset));
                            }
                        }
                        if !map.has_room_for(keys.len()) && !map.is_empty() {
                            // Full: what follows stays dirty for the next cleaning.
                            break 'segments;
                        }
                        for (key, offset) in keys {
                            map.put(&key, offset);
                        }
                    }
                    if h.last_offset() >= ltc.first_dirty.0 {
                        map.update_latest_offset(Offset(h.last_offset()));
                    }
                }
                shards::rt::yield_if_needed().await;
            }
            // The whole segment is mapped, gaps at its end included.
            map.update_latest_offset(view.upper.plus(-1));
        }
        Ok(())
    }

    /// One cleaning of this log as `ltc` describes it (see the module documentation).
    pub(crate) async fn clean_log(
        &self,
        tp: &TopicPartition,
        ltc: &LogToClean,
        ctx: &mut CleanContext<'_>,
    ) -> std::result::Result<CleanStats, CleanError> {
        let started = Instant::now();
        let config = self.config();
        let mut stats = CleanStats::default();
        let dirty_offsets = (ltc.first_uncleanable.0 - ltc.first_dirty.0).max(0) as u64;
        let mut map = OffsetMap::new(
            OffsetMap::slots_for(dirty_offsets, ctx.dedupe_buffer_bytes),
            ltc.first_dirty,
        );
        self.build_offset_map(ltc, &mut map, ctx, &mut stats)
            .await?;
        let end = map.latest_offset().next();
        stats.end_offset = end;
        stats.keys = map.len();
        stats.map_utilization = map.utilization();
        let log_start = self.log_start_offset().offset();
        let views = self.segment_views(log_start, end).await?;
        let groups = group_by_size(views, config.segment_bytes, config.segment_index_bytes);
        let mut pass = Pass {
            map: &map,
            config,
            txns: CleanedTransactions::default(),
            stats,
            horizon: None,
            ctx,
        };
        for group in groups {
            self.clean_group(&group, &mut pass).await?;
        }
        let Pass {
            mut stats, horizon, ..
        } = pass;
        self.write_cleaner_checkpoint(tp, end).await?;
        self.inner.state.borrow_mut().cleaner.delete_horizon =
            horizon.map(Timestamp).filter(|t| *t > ctx.now);
        stats.duration = started.elapsed();
        Ok(stats)
    }

    /// Cleans one group of segments into one and swaps it in.
    async fn clean_group(
        &self,
        group: &[SegmentView],
        pass: &mut Pass<'_, '_, '_>,
    ) -> std::result::Result<(), CleanError> {
        let base = group[0].base;
        let dir = self.dir();
        let mut out = CleanedSegment::create(&dir, base).await?;
        let mut indexes = SegmentIndexes::new(base, &pass.config);
        if let Err(e) = self.clean_into(group, pass, &mut out, &mut indexes).await {
            out.discard().await;
            return Err(e.into());
        }
        indexes.on_roll();
        let aborted = std::mem::take(&mut pass.txns.kept_aborted);
        let size_before: u64 = group.iter().map(|v| u64::from(v.size)).sum();
        let finished = match out.finish(indexes, aborted).await {
            Ok(finished) => finished,
            Err(e) => {
                CleanedSegment::discard_at(&dir, base).await;
                return Err(e.into());
            }
        };
        let size_after = u64::from(finished.size());
        let stop_at = pass.ctx.stop_at;
        if stop_at == Some(SwapStep::Cleaned) {
            return Err(CleanError::Stopped(SwapStep::Cleaned));
        }
        // The swap runs as a task of its own: stopping the cleaner (at shut-down) must
        // not cut it short while it owns the log's maintenance.
        let log = self.clone();
        let owned: Vec<SegmentView> = group.to_vec();
        let swapped =
            shards::rt::spawn(async move { log.swap_in(&owned, finished, stop_at).await })
                .detach()
                .await
                .unwrap_or_else(|| Err(CleanError::Aborted("the swap task was cancelled".into())));
        swapped?;
        let stats = &mut pass.stats;
        stats.segments_before += group.len();
        stats.segments_after += 1;
        stats.size_before += size_before;
        stats.size_after += size_after;
        Ok(())
    }

    /// Copies what stays of `group`'s batches into `out`, building its indices.
    async fn clean_into(
        &self,
        group: &[SegmentView],
        pass: &mut Pass<'_, '_, '_>,
        out: &mut CleanedSegment,
        indexes: &mut SegmentIndexes,
    ) -> Result<()> {
        let last_records = self.inner.state.borrow().producers.last_records();
        let filter = Filter {
            map: pass.map,
            last_records: &last_records,
            now: pass.ctx.now.0,
            delete_retention_ms: pass.config.delete_retention_ms,
        };
        let interval = pass.config.index_interval_bytes;
        let slice = pass.ctx.throttler.slice(MAX_SLICE);
        let mut pending: Vec<u8> = Vec::new();
        for (i, view) in group.iter().enumerate() {
            pass.txns
                .add_aborted(self.aborted_transactions(view.base, view.upper));
            let last_segment = i + 1 == group.len();
            let mut reader = SegmentReader {
                log: view.log.clone(),
                position: 0,
                end: view.size,
            };
            while let Some((chunk, read)) = reader.next(slice).await? {
                pass.stats.bytes_read += read;
                pass.ctx.throttler.throttle(read).await;
                for (position, batch) in chunk {
                    let last_of_group = last_segment && position + batch.size() as u32 == view.size;
                    let filtered =
                        filter.batch(&view.log, &batch, &mut pass.txns, last_of_group)?;
                    pass.stats.records_read += filtered.records_read;
                    pass.stats.records_kept += filtered.records_kept;
                    pass.stats.records_without_key += filtered.without_key;
                    if let Some(t) = filtered.horizon {
                        pass.horizon = Some(pass.horizon.map_or(t, |h| h.min(t)));
                    }
                    let Some(bytes) = filtered.bytes else {
                        continue;
                    };
                    let h = BatchHeader::parse(&bytes).expect("the cleaner built a batch");
                    let at = out.size as u64 + pending.len() as u64;
                    if at + bytes.len() as u64 > i32::MAX as u64 {
                        return Err(StorageError::io(
                            "clean",
                            &view.log.path,
                            std::io::Error::other("a cleaned segment would pass 2 GiB"),
                        ));
                    }
                    indexes.on_batch(
                        at as u32,
                        Offset(h.last_offset()),
                        Timestamp(h.max_timestamp),
                        interval,
                    );
                    pending.extend_from_slice(&bytes);
                }
                if pending.len() >= slice {
                    let len = pending.len() as u64;
                    out.write(std::mem::take(&mut pending)).await?;
                    pass.stats.bytes_written += len;
                    pass.ctx.throttler.throttle(len).await;
                }
                shards::rt::yield_if_needed().await;
            }
        }
        if !pending.is_empty() {
            let len = pending.len() as u64;
            out.write(pending).await?;
            pass.stats.bytes_written += len;
            pass.ctx.throttler.throttle(len).await;
        }
        Ok(())
    }
}

/// What one cleaning pass carries from group to group.
struct Pass<'m, 'c, 't> {
    map: &'m OffsetMap,
    config: LogConfig,
    /// Transactions as the walk from the log start finds them.
    txns: CleanedTransactions,
    stats: CleanStats,
    /// The earliest delete horizon of what the pass kept until its horizon.
    horizon: Option<i64>,
    ctx: &'c mut CleanContext<'t>,
}

/// The max timestamp of a segment's first batch (Kafka's `getFirstBatchTimestamp`).
async fn first_batch_timestamp(log: &LogFile, size: u32) -> Result<Option<i64>> {
    let mut found = None;
    scan_headers(log, 0, size, |_, h| {
        found = Some(h.max_timestamp);
        ControlFlow::Break(())
    })
    .await?;
    Ok(found)
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose logs together fit in
/// `segment.bytes` and whose indices fit in `segment.index.bytes`, spanning at most
/// 2^31 offsets (index entries are relative to the group's base). A group never ends with
/// an empty segment (it would have no last batch to keep).
pub(crate) fn group_by_size(
    views: Vec<SegmentView>,
    max_bytes: u32,
    max_index_bytes: u32,
) -> Vec<Vec<SegmentView>> {
    let mut groups: Vec<Vec<SegmentView>> = Vec::new();
    let mut rest = views.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut log_bytes = u64::from(first.size);
        let mut offset_index = first.offset_index_bytes;
        let mut time_index = first.time_index_bytes;
        let group_base = first.base;
        let mut group = vec![first];
        while let Some(next) = rest.peek() {
            let fits = log_bytes + u64::from(next.size) <= u64::from(max_bytes)
                && offset_index + next.offset_index_bytes <= u64::from(max_index_bytes)
                && time_index + next.time_index_bytes <= u64::from(max_index_bytes)
                && next.upper.0 - 1 - group_base.0 <= i32::MAX as i64;
            if !fits {
                break;
            }
            log_bytes += u64::from(next.size);
            offset_index += next.offset_index_bytes;
            time_index += next.time_index_bytes;
            group.push(rest.next().expect("peeked"));
        }
        while group.last().is_some_and(|v| v.size == 0) {
            group.pop();
        }
        if !group.is_empty() {
            groups.push(group);
        }
    }
    groups
}
