//! Retention: which old segments go (`retention.ms` by each segment's largest timestamp,
//! `retention.bytes` by the log's size, everything below the log start offset), moving
//! the log start offset forward (retention and DeleteRecords), and the removal of the
//! files of segments that left the log: renamed `.deleted` at once, removed
//! `file.delete.delay.ms` later, so readers that hold a segment finish with it first.
//! Kafka's `deleteOldSegments` and `deleteRecords`, for one partition, on its shard.
//!
//! Invariants: a segment goes only whole, and only when every offset in it is below the
//! high watermark; the active segment goes only after a roll replaced it (so the log
//! always has a segment and its log end offset never moves back); the log start offset
//! only moves forward; a `.deleted` file is never read again (the next open removes any
//! left behind by a crash).

use std::path::PathBuf;
use std::time::Duration;

use super::error::{Result, StorageError};
use super::fs;
use super::log::PartitionLog;
use super::producers::TXN_INDEX_SUFFIX;
use super::segment::{INDEX_SUFFIX, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX, segment_file_name};
use crate::model::{LogStartOffset, Offset, Timestamp};

/// The suffix a segment's files get when the segment leaves the log (Kafka's).
pub const DELETED_SUFFIX: &str = ".deleted";

/// Why a segment left the log, for the log line and the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments removed because their largest timestamp passed `retention.ms`.
    pub by_time: usize,
    /// Segments removed to bring the log under `retention.bytes`.
    pub by_size: usize,
    /// Segments removed because they lay wholly below the log start offset.
    pub below_log_start: usize,
    /// Bytes of the removed segments.
    pub bytes: u64,
}

impl RetentionOutcome {
    pub fn segments(&self) -> usize {
        self.by_time + self.by_size + self.below_log_start
    }
}

/// A segment the retention pass looks at: its base, where it ends (the next base, or the
/// log end offset for the active one), its size and whether it is the active segment.
struct Candidate {
    base: i64,
    upper: Offset,
    size: u64,
    active: bool,
}

impl PartitionLog {
    /// One retention pass at time `now` (milliseconds since the epoch): removes, oldest
    /// first, the segments wholly below the log start offset, then (with
    /// `cleanup.policy=delete`) those whose largest timestamp is older than
    /// `retention.ms` and those the log must lose to fit in `retention.bytes`. Only
    /// segments wholly below the high watermark go; the active one goes only if it is
    /// not empty, after a roll (as Kafka rolls an expired active segment). Moves the log
    /// start offset to the first remaining segment.
    pub async fn enforce_retention(&self, now: Timestamp) -> Result<RetentionOutcome> {
        let mut outcome = RetentionOutcome::default();
        let mut rolled = false;
        loop {
            let candidates = self.retention_candidates();
            let config = self.config();
            let log_start = self.log_start_offset().offset();
            let mut doomed = 0;
            // Below the log start offset (DeleteRecords moved it past whole segments).
            while doomed < candidates.len()
                && !candidates[doomed].active
                && candidates[doomed].upper <= log_start
            {
                doomed += 1;
            }
            let below_log_start = doomed;
            let mut by_time = 0;
            let mut by_size = 0;
            if config.cleanup_delete {
                if config.retention_ms < super::config::NEVER {
                    while doomed < candidates.len() {
                        let c = &candidates[doomed];
                        let largest = self.largest_timestamp(c.base).await?;
                        if now.0.saturating_sub(largest.0) <= config.retention_ms as i64 {
                            break;
                        }
                        doomed += 1;
                        by_time += 1;
                    }
                }
                if config.retention_bytes < super::config::NEVER {
                    let total: u64 = candidates.iter().map(|c| c.size).sum();
                    let mut excess = total.saturating_sub(config.retention_bytes);
                    excess =
                        excess.saturating_sub(candidates[..doomed].iter().map(|c| c.size).sum());
                    while doomed < candidates.len() && candidates[doomed].size <= excess {
                        excess -= candidates[doomed].size;
                        doomed += 1;
                        by_size += 1;
                    }
                }
            }
            if doomed == 0 {
                return Ok(outcome);
            }
            if candidates[doomed - 1].active {
                // Every segment expired: roll, so that a new empty segment carries the log
                // end offset, then look again (once).
                assert!(!rolled, "a retention pass rolls at most once");
                self.roll().await?;
                rolled = true;
                continue;
            }
            let before = candidates[doomed - 1].upper;
            let bytes = candidates[..doomed].iter().map(|c| c.size).sum::<u64>();
            let removed = self.delete_segments_before(before).await?;
            if removed > 0 {
                outcome.below_log_start += below_log_start.min(removed);
                let rest = removed.saturating_sub(below_log_start);
                outcome.by_time += by_time.min(rest);
                outcome.by_size += rest.saturating_sub(by_time).min(by_size);
                outcome.bytes += bytes;
            }
            return Ok(outcome);
        }
    }

    /// DeleteRecords: moves the log start offset to `offset` (at most the high watermark;
    /// an offset at or below the log start offset changes nothing) and removes the
    /// segments that now lie wholly below it. Returns the new log start offset. The
    /// caller makes it durable (`log-start-offset-checkpoint`) before answering.
    pub async fn delete_records_before(&self, offset: Offset) -> Result<LogStartOffset> {
        {
            let mut st = self.inner.state.borrow_mut();
            st.usable()?;
            let high_watermark = st.high_watermark.offset();
            if offset > high_watermark || offset < Offset::ZERO {
                return Err(StorageError::OffsetOutOfRange {
                    offset,
                    log_start: st.log_start,
                    log_end: st.log_end,
                });
            }
            if offset > st.log_start.offset() {
                st.log_start = LogStartOffset(offset);
                if st.epochs.truncate_from_start(offset) {
                    st.epochs_dirty = true;
                }
                st.producers.drop_aborted_below(offset);
                st.check_invariants();
            }
        }
        self.inner.watch.notify_all();
        let log_start = self.log_start_offset().offset();
        // Whole segments below the new log start offset go now.
        let below: Option<i64> = {
            let st = self.inner.state.borrow();
            st.segments
                .keys()
                .copied()
                .take_while(|base| *base <= log_start.0)
                .last()
        };
        if let Some(base) = below {
            self.delete_segments_before(Offset(base)).await?;
        }
        Ok(self.log_start_offset())
    }

    /// Restores the log start offset a previous run moved past the first segment's base
    /// (DeleteRecords), from `log-start-offset-checkpoint`, right after open. If the log
    /// ends below it (the tail was lost with the page cache), the log restarts empty at
    /// that offset, as Kafka does, so offsets are never handed out twice.
    pub async fn restore_log_start(&self, offset: Offset) -> Result<()> {
        let (log_start, log_end) = {
            let st = self.inner.state.borrow();
            (st.log_start.offset(), st.log_end.offset())
        };
        if offset <= log_start {
            return Ok(());
        }
        if offset > log_end {
            tracing::warn!(
                "{}: the log ends at {log_end}, below its checkpointed log start offset \
                 {offset}: it restarts empty at {offset}",
                self.dir().display()
            );
            self.start_empty_at(offset).await?;
            return Ok(());
        }
        self.advance_high_watermark(log_end);
        self.delete_records_before(offset).await.map(|_| ())
    }

    /// The segments in order with what retention needs to judge them.
    fn retention_candidates(&self) -> Vec<Candidate> {
        let st = self.inner.state.borrow();
        let high_watermark = st.high_watermark.offset();
        let active_base = st.active().base_offset.0;
        let bases: Vec<i64> = st.segments.keys().copied().collect();
        let mut out = Vec::with_capacity(bases.len());
        for (i, base) in bases.iter().enumerate() {
            let segment = &st.segments[base];
            let active = *base == active_base;
            let upper = bases.get(i + 1).map_or(st.log_end.offset(), |b| Offset(*b));
            if upper > high_watermark || (active && segment.written_size == 0) {
                break;
            }
            // An active segment with writes still in flight is not retention's.
            if active && segment.reserved_size != segment.written_size {
                break;
            }
            out.push(Candidate {
                base: *base,
                upper,
                size: u64::from(segment.written_size),
                active,
            });
        }
        out
    }

    /// A segment's largest timestamp (Kafka's `largestTimestamp`): the largest batch
    /// timestamp, or the file's modification time when no batch carries one. Also the
    /// cleaner's `min.compaction.lag.ms` test.
    pub(super) async fn largest_timestamp(&self, base: i64) -> Result<Timestamp> {
        self.ensure_indexes(base).await?;
        let (max, path) = {
            let st = self.inner.state.borrow();
            let Some(segment) = st.segments.get(&base) else {
                return Ok(Timestamp::NONE);
            };
            let max = segment
                .indexes
                .as_ref()
                .map_or(Timestamp::NONE, |i| i.max_timestamp);
            (max, segment.log.path.clone())
        };
        if max.0 >= 0 {
            return Ok(max);
        }
        let checked = path.clone();
        let modified = shards::rt::offload(move || {
            std::fs::metadata(&checked)?
                .modified()
                .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default())
        })
        .await
        .map_err(|e| StorageError::io("stat", &path, e))?;
        Ok(Timestamp(modified.as_millis() as i64))
    }

    /// Takes segments that left the log out of the directory: their files are renamed
    /// `.deleted` (durably: the directory is fsynced) and removed `file.delete.delay.ms`
    /// later by a task of their own; a crash meanwhile leaves `.deleted` files that the
    /// next open removes. Readers holding a segment keep its open file either way.
    pub(super) async fn retire_segments(&self, doomed: &[Segment]) -> Result<()> {
        if doomed.is_empty() {
            return Ok(());
        }
        let (dir, delay) = {
            let st = self.inner.state.borrow();
            (st.dir.clone(), st.config.file_delete_delay_ms)
        };
        let mut renamed = Vec::new();
        for segment in doomed {
            for suffix in [
                LOG_SUFFIX,
                INDEX_SUFFIX,
                TIME_INDEX_SUFFIX,
                TXN_INDEX_SUFFIX,
            ] {
                let path = dir.join(segment_file_name(segment.base_offset, suffix));
                let mut target = path.clone().into_os_string();
                target.push(DELETED_SUFFIX);
                let target = PathBuf::from(target);
                if fs::rename_if_exists(&path, &target).await? {
                    renamed.push(target);
                }
            }
        }
        fs::sync_dir(&dir).await?;
        if delay == 0 {
            remove_files(&renamed).await;
        } else {
            shards::rt::spawn(async move {
                shards::rt::sleep(Duration::from_millis(delay)).await;
                remove_files(&renamed).await;
            })
            .detach();
        }
        Ok(())
    }
}

/// Removes `.deleted` files; a failure is logged (the next open removes what is left).
async fn remove_files(paths: &[PathBuf]) {
    for path in paths {
        if let Err(e) = fs::remove_file(path).await {
            tracing::warn!("cannot remove {}: {e}", path.display());
        }
    }
}

/// Whether `name` is a file retention renamed (a leftover the next open removes).
pub(crate) fn is_deleted_file(name: &str) -> bool {
    name.ends_with(DELETED_SUFFIX)
}
