//! Appending: offsets and file positions assigned in call order under the sequencer's turn,
//! the queue of pending write buffers, and the writer task that drains it and moves the log
//! end offset (see "Concurrency of appends" in the `log` module).
//!
//! Runs on the shard that owns the partition: `append` in the caller's task, the writer in
//! a task of its own on the same shard, at most one per log, alive while the queue is not
//! empty.
//!
//! Invariants (asserted in release builds): a pending write ends where the active segment's
//! reserved bytes end; writes complete in offset order, each exactly at its segment's
//! written size; a segment with pending writes is never removed nor replaced; no segment
//! grows past a 32-bit position.

use std::rc::Rc;

use super::config::{LogConfig, MessageTimestampType};
use super::error::{Result, StorageError};
use super::fs::{self, AppendBytes};
use super::log::{Inner, PartitionLog};
use super::records::{
    LEADER_STAMPED_LEN, RecordBatch, set_base_offset, set_log_append_time,
    set_partition_leader_epoch,
};
use super::segment::LogFile;
use crate::model::{LeaderEpoch, LogEndOffset, LogStartOffset, Offset, Timestamp};

/// Appends arriving while a write is in flight are coalesced into one write of at most
/// this many bytes (a single larger append is written on its own)...
const COALESCE_LIMIT: usize = 1 << 20;
/// ... and of at most this many pieces (one pwritev(2) takes up to 1024).
const COALESCE_PIECES: usize = 512;
/// A batch at least this large is written from the request's buffer: only its first
/// `LEADER_STAMPED_LEN` bytes are copied, to be rewritten. A smaller one is copied whole
/// into the write's buffer (cheaper than one more piece for the kernel to walk).
const BY_REFERENCE_MIN: usize = 4 << 10;

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
    /// The append repeated a producer's batch already in the log: nothing was appended and
    /// the offsets are the original ones.
    pub duplicate: bool,
}

/// One buffer waiting for the writer task.
pub(super) struct WriteChunk {
    segment_base: Offset,
    file: Rc<LogFile>,
    position: u32,
    buf: AppendBytes,
    first_offset: Offset,
    end_offset: Offset,
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

impl PartitionLog {
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
        // Producer checks and offsets in one step: no await between them.
        let plan = self
            .inner
            .state
            .borrow()
            .producers
            .plan(batches)
            .map_err(StorageError::Producer)?;
        if let Some(original) = plan.duplicate {
            // A retried batch: its original offsets, once they are written.
            drop(turn);
            self.wait_written(original.last_offset).await?;
            let log_start_offset = self.inner.state.borrow().log_start;
            return Ok(AppendInfo {
                first_offset: original.first_offset,
                last_offset: original.last_offset,
                max_timestamp: original.max_timestamp,
                offset_of_max_timestamp: original.last_offset,
                log_append_time: None,
                log_start_offset,
                duplicate: true,
            });
        }
        let info = self.reserve(batches, leader_epoch);
        {
            let mut st = self.inner.state.borrow_mut();
            st.producers
                .apply(plan, batches, info.first_offset, info.log_append_time);
            st.producers.check_invariants();
        }
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
        // Under LogAppendTime the broker's time goes into bytes the CRC covers, so each
        // batch is copied whole and its CRC recomputed.
        let by_reference =
            |batch: &RecordBatch| append_time.is_none() && batch.bytes().len() >= BY_REFERENCE_MIN;
        let mut total = 0;
        let mut copied = 0;
        for batch in batches {
            let len = batch.bytes().len();
            total += len;
            copied += if by_reference(batch) {
                LEADER_STAMPED_LEN
            } else {
                len
            };
        }
        let pieces = 2 * batches.len();
        let first_offset = st.next_offset;
        let active = st
            .segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment");
        let coalesce = st.write_queue.back().is_some_and(|chunk| {
            chunk.segment_base == active.base_offset
                && chunk.buf.len() + total <= COALESCE_LIMIT
                && chunk.buf.pieces() + pieces <= COALESCE_PIECES
        });
        if !coalesce {
            st.write_queue.push_back(WriteChunk {
                segment_base: active.base_offset,
                file: active.log.clone(),
                position: active.reserved_size,
                buf: AppendBytes::with_capacity(copied),
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
            let shared = by_reference(batch);
            let bytes = batch.bytes();
            let copy = chunk.buf.copy(match shared {
                true => &bytes[..LEADER_STAMPED_LEN],
                false => bytes,
            });
            set_base_offset(copy, base.0);
            set_partition_leader_epoch(copy, leader_epoch.0);
            let batch_max_timestamp = match append_time {
                Some(now) => {
                    set_log_append_time(copy, now.0);
                    now
                }
                None => Timestamp(h.max_timestamp),
            };
            if shared {
                chunk.buf.share(bytes.slice(LEADER_STAMPED_LEN..));
            }
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
            duplicate: false,
        };
        let start_writer = !st.writer_running;
        st.writer_running = true;
        drop(guard);
        // glommio runs a spawned task right away: never spawn while holding the state.
        if start_writer {
            shards::rt::spawn(run_writer(self.inner.clone())).detach();
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

    /// Waits for every reserved byte to be written.
    pub(super) async fn drain_writes(&self) -> Result<()> {
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
        let len = u32::try_from(buf.len()).expect("a write fits a segment's 32-bit positions");
        let result = fs::append_at(&file.file, &file.path, buf, position as u64).await;
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
