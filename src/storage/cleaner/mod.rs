//! Log compaction: the cleaner (Kafka's `LogCleaner`) keeps, in the logs of topics with
//! `cleanup.policy=compact` (or `compact,delete`), the latest record of each key, drops
//! tombstones `delete.retention.ms` after they were first cleaned, the data of aborted
//! transactions, and transaction markers once nothing of their transaction is left.
//!
//! One cleaner per shard ([`run`], started by `server::run` beside the transaction
//! timers) over the compacted logs that shard owns: each pass picks the dirtiest log whose
//! dirty ratio is above its `min.cleanable.dirty.ratio` (or whose oldest dirty record
//! passed `max.compaction.lag.ms`), cleans it (`clean`: offset map, rewrite, swap — see
//! there and `swap`), writes its checkpoint, and goes on; with nothing to clean it sleeps
//! `log.cleaner.backoff.ms`. Reads and writes go through the storage layer's io_uring
//! files, in slices followed by a yield, paced by `log.cleaner.io.max.bytes.per.second`.
//! The cleaner never holds a log's append turn: appends go on meanwhile (it only cleans
//! below the active segment, durable data below the last stable offset).
//!
//! Files: the cleaner checkpoint (Kafka's `cleaner-offset-checkpoint`, in Kafka's
//! `OffsetCheckpoint` format) lives in each partition's directory, holding that
//! partition's first dirty offset, and is replaced atomically after each cleaning. Kafka
//! keeps one such file per log dir; here several shards share a log dir and partitions
//! move between shards, so one file per partition is written by its owner alone, with no
//! cross-shard coordination, moves with the partition's directory and goes with it when
//! the topic is deleted (no stale entry for a new topic of the same name). A missing or
//! unreadable file means "clean from the log start offset".
//!
//! Invariants: no latest value of a key is ever lost, at any crash point (the new
//! segment is durable before it replaces the old ones, and recovery completes or undoes a
//! swap: `swap`); a cleaned segment keeps its last batch, so segments end where the next
//! begins; batches keep their base offset, last offset delta and producer fields.

mod clean;
mod offset_map;
mod swap;
mod throttle;
mod transactions;

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub(crate) use clean::CleanContext;
pub use clean::{CleanStats, LogToClean};
pub use offset_map::{BYTES_PER_SLOT, LOAD_FACTOR};
pub(crate) use swap::complete_interrupted_swaps;
pub use swap::{CLEANED_SUFFIX, SWAP_SUFFIX};
pub(crate) use throttle::Throttler;

use super::error::StorageError;
use super::log::PartitionLog;
use crate::model::{Offset, Timestamp, TopicPartition};

/// File name of a partition's cleaner checkpoint (in its directory).
pub const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// What the cleaner keeps about one log, inside the log's state.
#[derive(Debug, Default)]
pub(crate) struct CleanerLogState {
    /// The cleaner checkpoint once read (`Some(None)`: no usable file).
    pub checkpoint: Option<Option<Offset>>,
    /// The earliest delete horizon of the tombstones and markers the last cleaning kept:
    /// once it passes, the log is worth cleaning again even without new dirty data.
    pub delete_horizon: Option<Timestamp>,
    /// A cleaning failed on this log (a corrupt batch, an I/O error): it is not cleaned
    /// again until the broker restarts (Kafka's uncleanable partitions).
    pub uncleanable: bool,
}

/// Where a cleaning can be made to stop as if the process died there (tests).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapStep {
    /// The cleaned segment's `.cleaned` files are complete and durable.
    Cleaned,
    /// They were renamed `.swap`, durably.
    Swap,
    /// The in-memory log holds the new segment; the old files are untouched.
    Replaced,
    /// The old segments' files were renamed `.deleted`, durably.
    Retired,
}

/// Why a cleaning ended early.
#[derive(Debug)]
pub enum CleanError {
    /// The log failed, closed or could not be read or written.
    Storage(StorageError),
    /// The log changed under the cleaning (retention, a truncation): given up, nothing
    /// changed; the next pass tries again.
    Aborted(String),
    /// Stopped at a step on request (tests).
    #[doc(hidden)]
    Stopped(SwapStep),
}

impl From<StorageError> for CleanError {
    fn from(e: StorageError) -> Self {
        CleanError::Storage(e)
    }
}

impl std::fmt::Display for CleanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CleanError::Storage(e) => write!(f, "{e}"),
            CleanError::Aborted(reason) => write!(f, "given up: {reason}"),
            CleanError::Stopped(step) => write!(f, "stopped after {step:?}"),
        }
    }
}

/// The broker's cleaner settings (Kafka's names), already shared out per shard.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enabled: bool,
    /// `log.cleaner.io.max.bytes.per.second`, this shard's share (infinite: unlimited).
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.dedupe.buffer.size`, this shard's share: the offset map's memory.
    pub dedupe_buffer_bytes: u64,
    /// `log.cleaner.backoff.ms`: how long the cleaner sleeps when nothing is cleanable.
    pub backoff: Duration,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enabled: true,
            io_max_bytes_per_second: f64::INFINITY,
            dedupe_buffer_bytes: 128 << 20,
            backoff: Duration::from_millis(15_000),
        }
    }
}

impl CleanerConfig {
    /// One shard's share of the broker-wide settings: Kafka divides the dedupe buffer
    /// between its cleaner threads and shares one I/O rate between them; corelog has one
    /// cleaner per shard.
    pub fn per_shard(&self, shards: usize) -> CleanerConfig {
        let shards = shards.max(1);
        CleanerConfig {
            io_max_bytes_per_second: self.io_max_bytes_per_second / shards as f64,
            dedupe_buffer_bytes: (self.dedupe_buffer_bytes / shards as u64).max(BYTES_PER_SLOT),
            ..self.clone()
        }
    }
}

/// One shard's cleaner counters (plain cells: only that shard touches them).
#[derive(Debug, Default)]
pub struct CleanerMetrics {
    /// Cleanings completed.
    pub runs: Cell<u64>,
    /// Bytes the cleaner read (offset maps and rewrites) and wrote.
    pub bytes_read: Cell<u64>,
    pub bytes_written: Cell<u64>,
    /// Segments replaced by cleaned ones.
    pub segments_cleaned: Cell<u64>,
    /// Time spent cleaning, in milliseconds.
    pub time_ms: Cell<u64>,
    /// Dirty ratio of the dirtiest compacted log at the last pass, in percent.
    pub max_dirty_percent: Cell<u64>,
    /// Logs the cleaner gave up on after an error.
    pub uncleanable_logs: Cell<u64>,
}

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get() + by);
}

impl PartitionLog {
    /// Cleans this log once at time `now` if its topic is compacted, whatever its dirty
    /// ratio (the cleaner applies the ratio when it chooses a log): the offset map of its
    /// dirty section, every segment below it rewritten and swapped in, the checkpoint
    /// written. `None` if the topic is not compacted.
    pub async fn clean(
        &self,
        tp: &TopicPartition,
        now: Timestamp,
        config: &CleanerConfig,
    ) -> Result<Option<CleanStats>, CleanError> {
        let mut throttler = Throttler::new(config.io_max_bytes_per_second);
        self.clean_with(tp, now, config.dedupe_buffer_bytes, &mut throttler, None)
            .await
    }

    /// [`PartitionLog::clean`] that stops after `stop_at` as if the process died there
    /// (tests of the crash safety of the swap).
    #[doc(hidden)]
    pub async fn clean_stopping_at(
        &self,
        tp: &TopicPartition,
        now: Timestamp,
        stop_at: SwapStep,
    ) -> Result<Option<CleanStats>, CleanError> {
        let mut throttler = Throttler::new(f64::INFINITY);
        self.clean_with(tp, now, 1 << 20, &mut throttler, Some(stop_at))
            .await
    }

    async fn clean_with(
        &self,
        tp: &TopicPartition,
        now: Timestamp,
        dedupe_buffer_bytes: u64,
        throttler: &mut Throttler,
        stop_at: Option<SwapStep>,
    ) -> Result<Option<CleanStats>, CleanError> {
        let Some(ltc) = self.to_clean(now).await? else {
            return Ok(None);
        };
        let mut ctx = CleanContext {
            now,
            dedupe_buffer_bytes,
            throttler,
            stop_at,
        };
        self.clean_log(tp, &ltc, &mut ctx).await.map(Some)
    }

    /// The first dirty offset the cleaner checkpointed (`None` before the first cleaning).
    pub fn cleaner_checkpoint_offset(&self) -> Option<Offset> {
        self.inner.state.borrow().cleaner.checkpoint.flatten()
    }
}

/// One shard's cleaner: forever, picks the dirtiest compacted log among `logs()` (this
/// shard's partitions) and cleans it, or sleeps `backoff` when none is due. Returns at
/// once if the cleaner is disabled. Stopped by dropping its task (a swap under way
/// finishes first: it runs as a task of its own).
pub async fn run<F>(config: CleanerConfig, logs: F, metrics: Rc<CleanerMetrics>)
where
    F: Fn() -> Vec<(TopicPartition, PartitionLog)>,
{
    if !config.enabled {
        tracing::info!("log cleaner disabled (log.cleaner.enable=false)");
        return;
    }
    let mut throttler = Throttler::new(config.io_max_bytes_per_second);
    loop {
        let now = Timestamp::now();
        let mut dirtiest: Option<(f64, TopicPartition, PartitionLog, LogToClean)> = None;
        let mut expired: Option<(TopicPartition, PartitionLog, LogToClean)> = None;
        let mut max_ratio = 0.0f64;
        for (tp, log) in logs() {
            if log.inner.state.borrow().cleaner.uncleanable {
                continue;
            }
            let min_ratio = log.config().min_cleanable_dirty_ratio;
            match log.to_clean(now).await {
                Ok(Some(ltc)) if ltc.total_bytes() > 0 => {
                    let ratio = ltc.dirty_ratio();
                    max_ratio = max_ratio.max(ratio);
                    if ltc.due(min_ratio) {
                        if dirtiest.as_ref().is_none_or(|(best, ..)| ratio > *best) {
                            dirtiest = Some((ratio, tp, log, ltc));
                        }
                    } else if ltc.horizon_passed && expired.is_none() {
                        expired = Some((tp, log, ltc));
                    }
                }
                Ok(_) => {}
                Err(e) => give_up(&tp, &log, &CleanError::Storage(e), &metrics),
            }
            shards::rt::yield_if_needed().await;
        }
        metrics.max_dirty_percent.set((max_ratio * 100.0) as u64);
        let chosen = dirtiest.map(|(_, tp, log, ltc)| (tp, log, ltc)).or(expired);
        let Some((tp, log, ltc)) = chosen else {
            shards::rt::sleep(config.backoff).await;
            continue;
        };
        tracing::info!(
            "cleaning {tp}: dirty ratio {:.3} ({} of {} bytes dirty), offsets [{}, {}){}",
            ltc.dirty_ratio(),
            ltc.cleanable_bytes,
            ltc.total_bytes(),
            ltc.first_dirty,
            ltc.first_uncleanable,
            if ltc.need_compaction_now {
                ", past max.compaction.lag.ms"
            } else if !ltc.due(log.config().min_cleanable_dirty_ratio) {
                ", delete horizon passed"
            } else {
                ""
            }
        );
        let started = Instant::now();
        let mut ctx = CleanContext {
            now,
            dedupe_buffer_bytes: config.dedupe_buffer_bytes,
            throttler: &mut throttler,
            stop_at: None,
        };
        let result = log.clean_log(&tp, &ltc, &mut ctx).await;
        bump(&metrics.time_ms, started.elapsed().as_millis() as u64);
        match result {
            Ok(stats) => {
                bump(&metrics.runs, 1);
                bump(&metrics.bytes_read, stats.bytes_read);
                bump(&metrics.bytes_written, stats.bytes_written);
                bump(&metrics.segments_cleaned, stats.segments_before as u64);
                tracing::info!(
                    "cleaned {tp} (dirty ratio {:.3}): {} segments of {} bytes became {} of {} \
                     bytes ({:.1}% smaller), {} of {} records kept, checkpoint {}, offset map of \
                     {} keys {:.1}% full, {:.3} s",
                    ltc.dirty_ratio(),
                    stats.segments_before,
                    stats.size_before,
                    stats.segments_after,
                    stats.size_after,
                    if stats.size_before == 0 {
                        0.0
                    } else {
                        100.0 * (1.0 - stats.size_after as f64 / stats.size_before as f64)
                    },
                    stats.records_kept,
                    stats.records_read,
                    stats.end_offset,
                    stats.keys,
                    100.0 * stats.map_utilization,
                    stats.duration.as_secs_f64()
                );
                if stats.records_without_key > 0 {
                    tracing::warn!(
                        "cleaned {tp}: dropped {} records without a key",
                        stats.records_without_key
                    );
                }
            }
            Err(CleanError::Aborted(reason)) => {
                // Retention or a truncation got in the way: try again after a pause.
                tracing::info!("cleaning {tp} given up: {reason}");
                shards::rt::sleep(config.backoff).await;
            }
            Err(e) => give_up(&tp, &log, &e, &metrics),
        }
    }
}

/// A cleaning failed: a log that closed (deleted, shut down) or failed is left to its
/// owner; any other failure makes the log uncleanable until the next start.
fn give_up(tp: &TopicPartition, log: &PartitionLog, error: &CleanError, metrics: &CleanerMetrics) {
    match error {
        CleanError::Storage(StorageError::Closed) => {}
        CleanError::Storage(e) if e.is_transient() => {
            tracing::warn!("cleaning {tp}: {e} (tried again later)");
        }
        CleanError::Storage(StorageError::LogFailed { .. }) => {
            tracing::warn!("cleaning {tp}: the log failed: {error}");
        }
        _ => {
            tracing::warn!("cleaning {tp} failed, it is not cleaned again until restart: {error}");
            log.inner.state.borrow_mut().cleaner.uncleanable = true;
            bump(&metrics.uncleanable_logs, 1);
        }
    }
}
