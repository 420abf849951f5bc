//! Reads: batches by offset as a [`FileRange`] for `sendfile` (Fetch), the ListOffsets
//! lookups (by timestamp, earliest, latest, max timestamp), and the lazy loading of the
//! indices of segments that were clean at open, which every lookup needs first.
//!
//! Runs in the caller's task on the shard that owns the partition, concurrently with
//! appends and maintenance: the state is only borrowed between awaits. A segment that was
//! removed or replaced by the cleaner while a read waited for I/O is noticed (its file is
//! not the one scanned) and the read starts again from the segment holding its offset
//! now; a `FileRange` already handed out keeps its file open. Offsets may have gaps (the
//! cleaner removes records): a read returns the first batch whose last offset is at or
//! above the offset asked, going on to the next segment if one ends in a gap.
//!
//! Invariants: only whole batches below both the caller's bound and the log end offset are
//! visible, to reads and lookups alike; a range lies within its segment's written bytes
//! (asserted in release builds).

use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;

use super::error::{Result, StorageError};
use super::log::PartitionLog;
use super::records::{RecordBatch, batches};
use super::segment::{self, LogFile, ScanEnd, scan_headers};
use crate::model::{LeaderEpoch, Offset, Timestamp};

/// How a read of one segment ended.
enum Ranged {
    Found(Option<FileRange>),
    /// The segment left the log (replaced by the cleaner, truncated) while the read
    /// waited for I/O.
    Replaced,
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

impl PartitionLog {
    /// Finds, in the segment starting at `base`, the first batch whose last offset is at or
    /// above `target`, scanning headers from the sparse index entry below it. Returns its
    /// position and header, or `None` if the segment's written bytes end first.
    pub(super) async fn find_batch(
        &self,
        base: i64,
        target: Offset,
        from_position: u32,
    ) -> Result<Option<(u32, super::records::BatchHeader)>> {
        Ok(self
            .find_batch_in(base, target, from_position)
            .await?
            .and_then(|(_, found)| found))
    }

    /// [`Self::find_batch`], with the segment file it scanned (`None` if no segment starts
    /// at `base`): the cleaner may replace the segment at `base` meanwhile, so what follows
    /// must check that it still reads that file.
    async fn find_batch_in(
        &self,
        base: i64,
        target: Offset,
        from_position: u32,
    ) -> Result<Option<(Rc<LogFile>, Option<(u32, super::records::BatchHeader)>)>> {
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
        Ok(Some((log, found)))
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
        // The cleaner may replace segments while this read waits for I/O: then it starts
        // again from the segment that holds `from_offset` now (a few times at most).
        let mut attempts = 0;
        loop {
            self.ensure_indexes(base).await?;
            let found = self.find_batch_in(base, from_offset, 0).await?;
            let ranged = match found {
                None => Ranged::Replaced,
                Some((log, None)) => {
                    // Nothing at or after `from_offset` here (a compaction gap at the end
                    // of the segment): continue with the next segment, if this one is
                    // still in the log.
                    let st = self.inner.state.borrow();
                    let same = st
                        .segments
                        .get(&base)
                        .is_some_and(|s| Rc::ptr_eq(&s.log, &log));
                    let next = st.segments.range(base + 1..).next().map(|(b, _)| *b);
                    match next {
                        _ if !same => Ranged::Replaced,
                        Some(next) if next < upper.0 => {
                            base = next;
                            continue;
                        }
                        _ => return Ok(None),
                    }
                }
                Some((_, Some((_, first)))) if first.last_offset() >= upper.0 => {
                    return Ok(None);
                }
                Some((log, Some((start, first)))) => {
                    self.range_from(base, &log, start, first, max_bytes, upper, min_one_batch)
                        .await?
                }
            };
            match ranged {
                Ranged::Found(range) => return Ok(range),
                Ranged::Replaced if attempts < 8 => {
                    attempts += 1;
                    let st = self.inner.state.borrow();
                    st.usable()?;
                    if from_offset < st.log_start.offset() || from_offset > st.log_end.offset() {
                        return Err(StorageError::OffsetOutOfRange {
                            offset: from_offset,
                            log_start: st.log_start,
                            log_end: st.log_end,
                        });
                    }
                    base = st
                        .segment_base_for(from_offset)
                        .expect("an offset at or above the log start lies in a segment");
                }
                Ranged::Replaced => return Ok(None),
            }
        }
    }

    /// Completes a read that starts with batch `first` at `start` of file `log`, segment
    /// `base`; [`Ranged::Replaced`] if that segment left the log meanwhile.
    #[allow(clippy::too_many_arguments)]
    async fn range_from(
        &self,
        base: i64,
        log: &Rc<LogFile>,
        start: u32,
        first: super::records::BatchHeader,
        max_bytes: usize,
        upper: Offset,
        min_one_batch: bool,
    ) -> Result<Ranged> {
        let (written_size, written_next) = {
            let st = self.inner.state.borrow();
            // A truncation or the cleaner may have replaced the segment while this read
            // waited for I/O.
            let Some(segment) = st.segments.get(&base).filter(|s| Rc::ptr_eq(&s.log, log)) else {
                return Ok(Ranged::Replaced);
            };
            (segment.written_size, segment.written_next_offset)
        };
        let log = log.clone();
        // Where the upper bound cuts the segment: at the first batch reaching it.
        let (upper_position, upper_next) = if upper >= written_next {
            (written_size, written_next)
        } else {
            match self.find_batch_in(base, upper, start).await? {
                Some((scanned, found)) if Rc::ptr_eq(&scanned, &log) => match found {
                    Some((position, h)) => (position, Offset(h.base_offset)),
                    None => (written_size, written_next),
                },
                _ => return Ok(Ranged::Replaced),
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
                let Some(indexes) = st
                    .segments
                    .get(&base)
                    .filter(|s| Rc::ptr_eq(&s.log, &log))
                    .and_then(|s| s.indexes.as_ref())
                else {
                    return Ok(Ranged::Replaced);
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
                return Ok(Ranged::Found(None));
            }
            end = start + first.size() as u32;
            next_offset = Offset(first.last_offset() + 1);
        }
        assert!(
            start < end && end <= written_size,
            "read range [{start}, {end}) of segment {base} must lie within its {written_size} \
             written bytes"
        );
        Ok(Ranged::Found(Some(FileRange {
            file: log,
            position: start as u64,
            length: (end - start) as u64,
            first_offset: Offset(first.base_offset),
            next_offset,
        })))
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
        let (upper, log_start) = {
            let st = self.inner.state.borrow();
            st.usable()?;
            (st.high_watermark.offset(), st.log_start.offset())
        };
        // Segment by segment from the one holding the log start, each searched from where
        // the previous one ended: if the cleaner merges segments meanwhile, the next one
        // looked at is the merged segment, searched above what was already searched.
        let mut searched_below = log_start;
        while searched_below < upper {
            let Some(base) = self.inner.state.borrow().segment_base_for(searched_below) else {
                break;
            };
            self.ensure_indexes(base).await?;
            let (log, scan_from, min_offset, written_size, next_base) = {
                let st = self.inner.state.borrow();
                let Some(segment) = st.segments.get(&base) else {
                    // Gone meanwhile (retention, the cleaner): look again.
                    continue;
                };
                let next_base = st
                    .segments
                    .range(base + 1..)
                    .next()
                    .map_or(st.log_end.offset(), |(b, _)| Offset(*b));
                let indexes = segment.indexes.as_ref().expect("indices loaded");
                if indexes.max_timestamp < target {
                    searched_below = next_base;
                    continue;
                }
                let min_offset = match indexes.time.lookup_before(target) {
                    Some((_, offset)) => offset.next(),
                    None => Offset(base),
                }
                .max(searched_below);
                (
                    segment.log.clone(),
                    indexes.offset.lookup(min_offset).1,
                    min_offset,
                    segment.written_size,
                    next_base,
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
            searched_below = next_base;
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
            && let Some((log, Some((position, h)))) =
                self.find_batch_in(base, offset_of_max, 0).await?
            && h.max_timestamp == max.0
            && h.last_offset() == offset_of_max.0
        {
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
}

pub(super) fn corrupt_segment(log: &LogFile, position: u32) -> StorageError {
    StorageError::io(
        "scan",
        &log.path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no valid batch at position {position} below the written size"),
        ),
    )
}
