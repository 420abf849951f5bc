//! The producer state of a log on disk and back: snapshots at roll and close, each
//! segment's `.txnindex`, and the rebuild at open (latest snapshot, then the batches after
//! it), plus what the partition asks of the state (last stable offset, aborted
//! transactions, the producers, expiry).
//!
//! Runs on the partition's shard; the files are written under the log's append turn (a
//! roll, a close), so they describe exactly the batches below their offset.
//!
//! Invariants: a snapshot named `N` describes the producers after every batch below `N`;
//! at open, snapshots above the recovered log end offset (their batches were lost) are
//! deleted and aborted transactions whose markers were lost are forgotten; at most
//! [`SNAPSHOTS_KEPT`] snapshots stay on disk.

use std::ops::ControlFlow;
use std::rc::Rc;

use super::error::Result;
use super::fs;
use super::log::PartitionLog;
use super::producers::{
    AbortedTxn, Marker, ProducerEntry, SNAPSHOT_SUFFIX, TXN_INDEX_SUFFIX, decode_snapshot,
    decode_txn_index, encode_snapshot, encode_txn_index,
};
use super::records::{BatchHeader, RecordBatch};
use super::segment::{LogFile, ScanEnd, parse_segment_file_name, read_bytes, scan_headers};
use crate::model::{LastStableOffset, Offset, Timestamp};

/// Producer state snapshots kept on disk (the newest ones).
pub const SNAPSHOTS_KEPT: usize = 2;

impl PartitionLog {
    /// Rebuilds the producer state when the log opens: the aborted transactions from the
    /// `.txnindex` files, the producers from the latest usable snapshot, then every batch
    /// after that snapshot replayed. Without a snapshot, replays the last two segments, as
    /// Kafka does for a log written before snapshots existed.
    pub(super) async fn load_producer_state(&self) -> Result<()> {
        let (dir, log_end, bases) = {
            let st = self.inner.state.borrow();
            let bases: Vec<Offset> = st.segments.keys().map(|b| Offset(*b)).collect();
            (st.dir.clone(), st.log_end.offset(), bases)
        };
        let listing = fs::list_dir(&dir).await?;
        let mut snapshots: Vec<Offset> = Vec::new();
        let mut aborted = Vec::new();
        for (name, _) in &listing {
            if let Some(offset) = parse_segment_file_name(name, SNAPSHOT_SUFFIX) {
                snapshots.push(offset);
            } else if let Some(base) = parse_segment_file_name(name, TXN_INDEX_SUFFIX) {
                let path = dir.join(name);
                if bases.contains(&base) {
                    if let Some(bytes) = fs::read_file(&path).await? {
                        aborted.extend(decode_txn_index(&bytes));
                    }
                } else {
                    fs::remove_file(&path).await?;
                }
            }
        }
        snapshots.sort();
        let mut loaded: Option<(Offset, Vec<ProducerEntry>)> = None;
        while let Some(offset) = snapshots.pop() {
            let path = dir.join(super::segment_file_name(offset, SNAPSHOT_SUFFIX));
            if offset > log_end {
                tracing::warn!(
                    "{}: producer snapshot {offset} lies past the log end offset {log_end}: removed",
                    dir.display()
                );
                fs::remove_file(&path).await?;
                continue;
            }
            let decoded = fs::read_file(&path)
                .await?
                .ok_or_else(|| "missing".to_string())
                .and_then(|bytes| decode_snapshot(&bytes));
            match decoded {
                Ok(entries) => {
                    loaded = Some((offset, entries));
                    break;
                }
                Err(reason) => {
                    tracing::warn!(
                        "{}: producer snapshot {offset} is unusable ({reason}): removed",
                        dir.display()
                    );
                    fs::remove_file(&path).await?;
                }
            }
        }
        let replay_from = match &loaded {
            Some((offset, _)) => *offset,
            None => bases[bases.len().saturating_sub(2)],
        };
        {
            let mut st = self.inner.state.borrow_mut();
            st.producers = Default::default();
            if let Some((_, entries)) = loaded {
                st.producers.load_snapshot(entries);
            }
            st.producers.add_aborted(
                aborted
                    .into_iter()
                    .filter(|t| t.last_offset < log_end && t.last_offset < replay_from),
            );
        }
        self.replay_producers(replay_from).await?;
        self.inner.state.borrow().producers.check_invariants();
        Ok(())
    }

    /// Replays every batch from `from` to the log end offset into the producer state.
    async fn replay_producers(&self, from: Offset) -> Result<()> {
        let segments: Vec<(Rc<LogFile>, u32)> = {
            let st = self.inner.state.borrow();
            let start = st.segment_base_for(from).unwrap_or(i64::MIN);
            st.segments
                .range(start..)
                .map(|(_, s)| (s.log.clone(), s.written_size))
                .collect()
        };
        for (file, end) in segments {
            let mut position = 0u32;
            loop {
                let mut control: Option<(u32, BatchHeader)> = None;
                let scanned = scan_headers(&file, position, end, |at, h| {
                    if h.last_offset() < from.0 || !h.has_producer_id() {
                        return ControlFlow::Continue(());
                    }
                    if h.is_control() {
                        control = Some((at, *h));
                        return ControlFlow::Break(());
                    }
                    self.inner
                        .state
                        .borrow_mut()
                        .producers
                        .replay_batch(h, None);
                    ControlFlow::Continue(())
                })
                .await?;
                match (scanned, control) {
                    (ScanEnd::Stopped(_), Some((at, h))) => {
                        let bytes = read_bytes(&file, at, h.size()).await?;
                        let marker = RecordBatch::parse(bytes)
                            .ok()
                            .and_then(|b| Marker::of_batch(&b));
                        self.inner
                            .state
                            .borrow_mut()
                            .producers
                            .replay_batch(&h, marker);
                        position = at + h.size() as u32;
                    }
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Writes the producer snapshot at the next offset and the `.txnindex` of the segment
    /// at `segment_base` (ending at the next offset). Called under the append turn, at a
    /// roll and at close, as Kafka does — even an empty snapshot, so that the next open
    /// replays only what follows it (nothing after a clean close) instead of whole
    /// segments.
    pub(super) async fn write_producer_files(&self, segment_base: Offset) -> Result<()> {
        let (dir, next, snapshot, txn_index) = {
            let st = self.inner.state.borrow();
            let next = st.next_offset;
            let snapshot = encode_snapshot(st.producers.entries());
            let aborted = st.producers.aborted_with_markers_in(segment_base, next);
            let txn_index = (!aborted.is_empty()).then(|| encode_txn_index(&aborted));
            (st.dir.clone(), next, snapshot, txn_index)
        };
        if let Some(bytes) = txn_index {
            let path = dir.join(super::segment_file_name(segment_base, TXN_INDEX_SUFFIX));
            fs::write_atomically(&path, bytes).await?;
        }
        let path = dir.join(super::segment_file_name(next, SNAPSHOT_SUFFIX));
        fs::write_atomically(&path, snapshot).await?;
        // Keep the newest snapshots only.
        let mut snapshots: Vec<Offset> = fs::list_dir(&dir)
            .await?
            .iter()
            .filter_map(|(name, _)| parse_segment_file_name(name, SNAPSHOT_SUFFIX))
            .collect();
        snapshots.sort();
        let excess = snapshots.len().saturating_sub(SNAPSHOTS_KEPT);
        for offset in &snapshots[..excess] {
            fs::remove_file(&dir.join(super::segment_file_name(*offset, SNAPSHOT_SUFFIX))).await?;
        }
        Ok(())
    }

    /// The last stable offset: below it every transaction is decided (read_committed
    /// consumers read up to it). Never above the high watermark.
    pub fn last_stable_offset(&self) -> LastStableOffset {
        let st = self.inner.state.borrow();
        let high_watermark = st.high_watermark.offset();
        LastStableOffset(
            st.producers
                .first_unstable_offset()
                .map_or(high_watermark, |first| first.min(high_watermark)),
        )
    }

    /// The aborted transactions overlapping `[from, below)` (a read_committed fetch).
    pub fn aborted_transactions(&self, from: Offset, below: Offset) -> Vec<AbortedTxn> {
        self.inner
            .state
            .borrow()
            .producers
            .aborted_between(from, below)
    }

    /// Every producer this partition knows (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerEntry> {
        self.inner
            .state
            .borrow()
            .producers
            .entries()
            .cloned()
            .collect()
    }

    /// Forgets producers idle for `expiration_ms` without an open transaction
    /// (`producer.id.expiration.ms`); returns how many.
    pub fn expire_producers(&self, now: Timestamp, expiration_ms: i64) -> usize {
        self.inner
            .state
            .borrow_mut()
            .producers
            .expire(now, expiration_ms)
    }
}
