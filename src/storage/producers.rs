//! Producer state of one partition (Kafka's `ProducerStateManager`): what makes produce
//! idempotent and transactions atomic on this partition.
//!
//! Owns, for every producer id that wrote to the partition: its epoch, the metadata of
//! its last [`MAX_BATCHES_PER_PRODUCER`] batches (sequence range and offsets, so a retried
//! batch gets its original offsets back), the coordinator epoch of its last marker and the
//! first offset of its ongoing transaction; the ongoing transactions by first offset (the
//! last stable offset is the first of them); and the aborted transactions (what
//! read_committed consumers skip, Kafka's `.txnindex`).
//!
//! Runs on the shard that owns the partition, inside the log's append turn: an append is
//! first *planned* (every batch checked against the state as updated by the batches before
//! it, nothing changed) and, only if all of it is accepted, *applied* with the offsets the
//! log assigned. So a refused append changes nothing and an accepted one changes the state
//! in the same step that assigns its offsets (no await in between).
//!
//! Files (byte-compatible with Kafka's): `<20-digit offset>.snapshot` holds the producer
//! entries as of that offset (written at segment roll and clean close); `<base>.txnindex`
//! holds the aborted transactions whose markers lie in that segment (written when the
//! segment rolls, and at close for the active one). After a crash, `open` loads the latest
//! snapshot and replays the batches after it (see `recovery`).
//!
//! Invariants (asserted): an entry's batches are in offset order, at most
//! [`MAX_BATCHES_PER_PRODUCER`]; `ongoing` holds exactly the entries' current transaction
//! first offsets; aborted transactions are kept in order of their markers' offsets.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::model::{Offset, ProducerEpoch, ProducerId, Timestamp};
use crate::protocol::records::{BatchHeader, NO_SEQUENCE, RecordBatch};

/// Kafka keeps the metadata of this many batches per producer (the most a producer may
/// have in flight with idempotence), so any retried batch among them is recognised.
pub const MAX_BATCHES_PER_PRODUCER: usize = 5;

/// File suffix of producer state snapshots.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";

/// File suffix of a segment's aborted transaction index.
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";

/// One batch a producer wrote: its sequence range and where it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp: Timestamp,
}

/// What the partition knows of one producer id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_id: ProducerId,
    pub epoch: ProducerEpoch,
    /// The last batches, oldest first.
    pub batches: VecDeque<BatchMetadata>,
    /// The coordinator epoch of the last marker written for this producer (-1: none).
    pub coordinator_epoch: i32,
    /// When this producer last wrote (its last batch's max timestamp, or a marker's).
    pub last_timestamp: Timestamp,
    /// The first offset of its ongoing transaction on this partition.
    pub current_txn_first_offset: Option<Offset>,
}

impl ProducerEntry {
    fn new(producer_id: ProducerId, epoch: ProducerEpoch) -> ProducerEntry {
        ProducerEntry {
            producer_id,
            epoch,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            last_timestamp: Timestamp::NONE,
            current_txn_first_offset: None,
        }
    }

    /// The last sequence written (or none).
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn push(&mut self, batch: BatchMetadata) {
        if self.batches.len() == MAX_BATCHES_PER_PRODUCER {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
    }

    fn duplicate_of(
        &self,
        epoch: ProducerEpoch,
        first_seq: i32,
        last_seq: i32,
    ) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }
}

/// A transaction that ended in an abort: read_committed consumers skip the producer's
/// batches from `first_offset` up to its marker at `last_offset` (Kafka's `AbortedTxn`,
/// one `.txnindex` entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
    /// The offset of the ABORT marker.
    pub last_offset: Offset,
    /// The last stable offset once this transaction completed.
    pub last_stable_offset: Offset,
}

/// A transaction marker: the control record a coordinator writes to end a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

impl Marker {
    /// The marker carried by a control batch (its one record): key = version, type (0
    /// abort, 1 commit); value = version, coordinator epoch. None for other control
    /// records (leader change, snapshots).
    pub fn of_batch(batch: &RecordBatch) -> Option<Marker> {
        let record = batch.records().ok()?.next()?.ok()?;
        let key = record.key.as_deref()?;
        if key.len() < 4 {
            return None;
        }
        let kind = i16::from_be_bytes([key[2], key[3]]);
        let commit = match kind {
            0 => false,
            1 => true,
            _ => return None,
        };
        let value = record.value.as_deref().unwrap_or(&[]);
        let coordinator_epoch = if value.len() >= 6 {
            i32::from_be_bytes([value[2], value[3], value[4], value[5]])
        } else {
            -1
        };
        Some(Marker {
            commit,
            coordinator_epoch,
        })
    }

    /// The record key and value of this marker (version 0), as a control batch carries them.
    pub fn key_and_value(&self) -> ([u8; 4], [u8; 6]) {
        let mut key = [0u8; 4];
        key[2..4].copy_from_slice(&(self.commit as i16).to_be_bytes());
        let mut value = [0u8; 6];
        value[2..6].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        (key, value)
    }
}

/// Why a producer's batch is refused (each one Kafka error code, chosen by `partition`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProducerError {
    /// A sequence that does not follow the producer's last one (OUT_OF_ORDER_SEQUENCE_NUMBER).
    OutOfOrderSequence {
        producer_id: ProducerId,
        expected: i32,
        found: i32,
    },
    /// An epoch older than the producer's current one (INVALID_PRODUCER_EPOCH).
    InvalidEpoch {
        producer_id: ProducerId,
        current: ProducerEpoch,
        found: ProducerEpoch,
    },
    /// A marker from an older coordinator (TRANSACTION_COORDINATOR_FENCED).
    CoordinatorFenced {
        producer_id: ProducerId,
        current: i32,
        found: i32,
    },
    /// A write that contradicts the producer's transaction state: a non-transactional
    /// batch while its transaction is open (INVALID_TXN_STATE).
    InvalidTxnState {
        producer_id: ProducerId,
        reason: &'static str,
    },
}

impl std::fmt::Display for ProducerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProducerError::OutOfOrderSequence {
                producer_id,
                expected,
                found,
            } => write!(
                f,
                "out of order sequence number for producer {}: expected {expected}, found {found}",
                producer_id.0
            ),
            ProducerError::InvalidEpoch {
                producer_id,
                current,
                found,
            } => write!(
                f,
                "epoch {} of producer {} is older than its current epoch {}",
                found.0, producer_id.0, current.0
            ),
            ProducerError::CoordinatorFenced {
                producer_id,
                current,
                found,
            } => write!(
                f,
                "marker for producer {} from coordinator epoch {found}, older than {current}",
                producer_id.0
            ),
            ProducerError::InvalidTxnState {
                producer_id,
                reason,
            } => write!(f, "producer {}: {reason}", producer_id.0),
        }
    }
}

/// What planning an append decided.
#[derive(Debug, Default)]
pub struct AppendPlan {
    /// The producer entries as they will be after the append (only those it touches).
    updates: HashMap<i64, ProducerEntry>,
    /// Per batch of the append, in order: its producer's id when it has one, the marker if
    /// it is one.
    batches: Vec<Option<(ProducerId, Option<Marker>)>>,
    /// The append repeats a batch already written: its metadata (nothing is appended).
    pub duplicate: Option<BatchMetadata>,
}

/// Where a producer's state was last written (see [`ProducerStates::last_records`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastRecord {
    pub last_data_offset: Option<Offset>,
    pub epoch: ProducerEpoch,
}

/// A transaction that the append completes: (producer, first offset, marker offset, commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: ProducerId,
    pub first_offset: Offset,
    pub marker_offset: Offset,
    pub commit: bool,
}

/// The producer state of one partition. See the module documentation.
#[derive(Debug, Default, Clone)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Ongoing transactions: first offset → producer id.
    ongoing: BTreeMap<i64, i64>,
    /// Aborted transactions, in marker order.
    aborted: Vec<AbortedTxn>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (last == i32::MAX && next == 0)
}

impl ProducerStates {
    pub fn new() -> ProducerStates {
        ProducerStates::default()
    }

    /// The entry of `producer_id`.
    pub fn get(&self, producer_id: ProducerId) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id.0)
    }

    /// Every producer's entry (DescribeProducers).
    pub fn entries(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.producers.values()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The first offset of the earliest ongoing transaction: nothing at or above it is
    /// stable yet.
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        self.ongoing.keys().next().map(|o| Offset(*o))
    }

    /// The aborted transactions whose ranges overlap `[from, below)`, for a
    /// read_committed fetch of that range.
    pub fn aborted_between(&self, from: Offset, below: Offset) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|t| t.last_offset >= from && t.first_offset < below)
            .copied()
            .collect()
    }

    /// The aborted transactions whose markers lie in `[from, below)` (one segment's
    /// `.txnindex`).
    pub fn aborted_with_markers_in(&self, from: Offset, below: Offset) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|t| t.last_offset >= from && t.last_offset < below)
            .copied()
            .collect()
    }

    /// Plans appending `batches` as a leader: checks each producer batch against the state
    /// as the batches before it leave it. Changes nothing.
    pub fn plan(&self, batches: &[RecordBatch]) -> Result<AppendPlan, ProducerError> {
        let mut plan = AppendPlan::default();
        if !batches.iter().any(|b| b.header().has_producer_id()) {
            // Nothing to check or record (and nothing allocated).
            return Ok(plan);
        }
        for batch in batches {
            let h = batch.header();
            if !h.has_producer_id() {
                plan.batches.push(None);
                continue;
            }
            let pid = ProducerId(h.producer_id);
            let epoch = ProducerEpoch(h.producer_epoch);
            let entry = match plan.updates.get(&pid.0) {
                Some(entry) => entry.clone(),
                None => match self.producers.get(&pid.0) {
                    Some(entry) => entry.clone(),
                    None => ProducerEntry::new(pid, ProducerEpoch::NONE),
                },
            };
            if h.is_control() {
                let marker = Marker::of_batch(batch);
                if marker.is_some() {
                    check_marker(&entry, epoch, marker)?;
                }
                plan.batches.push(Some((pid, marker)));
            } else {
                if let Some(original) = check_data(&entry, h)? {
                    plan.duplicate = Some(original);
                    return Ok(plan);
                }
                plan.batches.push(Some((pid, None)));
            }
            // Stage the entry's epoch so later batches of this append see it.
            let mut staged = entry;
            if epoch.0 > staged.epoch.0 || staged.epoch == ProducerEpoch::NONE {
                staged.epoch = epoch;
                staged.batches.clear();
            }
            if !h.is_control() && h.base_sequence != NO_SEQUENCE {
                staged.push(BatchMetadata {
                    first_seq: h.base_sequence,
                    last_seq: h.base_sequence.wrapping_add(h.last_offset_delta),
                    first_offset: Offset::ZERO,
                    last_offset: Offset::ZERO,
                    max_timestamp: Timestamp::NONE,
                });
            }
            if h.is_transactional() && !h.is_control() && staged.current_txn_first_offset.is_none()
            {
                staged.current_txn_first_offset = Some(Offset::ZERO);
            }
            if h.is_control() {
                staged.current_txn_first_offset = None;
            }
            plan.updates.insert(pid.0, staged);
        }
        Ok(plan)
    }

    /// Applies a plan once the log assigned the batches' offsets: from `first_offset`, in
    /// order, with `log_append_time` as every batch's max timestamp under LogAppendTime.
    /// Returns the transactions the append completed.
    pub fn apply(
        &mut self,
        plan: AppendPlan,
        batches: &[RecordBatch],
        first_offset: Offset,
        log_append_time: Option<Timestamp>,
    ) -> Vec<CompletedTxn> {
        assert!(
            plan.duplicate.is_none(),
            "a duplicate append is never applied"
        );
        let mut completed = Vec::new();
        if plan.batches.is_empty() {
            return completed;
        }
        assert_eq!(
            plan.batches.len(),
            batches.len(),
            "one plan entry per batch"
        );
        let mut base = first_offset;
        for (planned, batch) in plan.batches.iter().zip(batches) {
            let mut h = *batch.header();
            h.base_offset = base.0;
            if let Some(time) = log_append_time {
                h.max_timestamp = time.0;
            }
            base = Offset(h.last_offset() + 1);
            if let Some((_, marker)) = planned {
                completed.extend(self.replay_batch(&h, *marker));
            }
        }
        completed
    }

    /// Updates the state with one batch read back from the log (recovery) or just
    /// appended: no checks, the log already holds it.
    pub fn replay_batch(
        &mut self,
        h: &BatchHeader,
        marker: Option<Marker>,
    ) -> Option<CompletedTxn> {
        if !h.has_producer_id() {
            return None;
        }
        let pid = ProducerId(h.producer_id);
        let epoch = ProducerEpoch(h.producer_epoch);
        let entry = self
            .producers
            .entry(pid.0)
            .or_insert_with(|| ProducerEntry::new(pid, epoch));
        if epoch.0 > entry.epoch.0 || entry.epoch == ProducerEpoch::NONE {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = Timestamp(h.max_timestamp);
        let base = Offset(h.base_offset);
        let last = Offset(h.last_offset());
        if h.is_control() {
            let marker = marker?;
            entry.coordinator_epoch = marker.coordinator_epoch;
            let first = entry.current_txn_first_offset.take()?;
            self.ongoing.remove(&first.0);
            let done = CompletedTxn {
                producer_id: pid,
                first_offset: first,
                marker_offset: base,
                commit: marker.commit,
            };
            if !marker.commit {
                let last_stable = self
                    .ongoing
                    .keys()
                    .next()
                    .map_or(last.next(), |o| Offset(*o));
                self.aborted.push(AbortedTxn {
                    producer_id: pid,
                    first_offset: first,
                    last_offset: base,
                    last_stable_offset: last_stable,
                });
            }
            return Some(done);
        }
        if h.base_sequence != NO_SEQUENCE {
            entry.push(BatchMetadata {
                first_seq: h.base_sequence,
                last_seq: h.base_sequence.wrapping_add(h.last_offset_delta),
                first_offset: base,
                last_offset: last,
                max_timestamp: Timestamp(h.max_timestamp),
            });
        }
        if h.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(base);
            self.ongoing.insert(base.0, pid.0);
        }
        None
    }

    /// Adds aborted transactions read from `.txnindex` files (recovery), keeping marker
    /// order and skipping those already known (same producer and marker).
    pub fn add_aborted(&mut self, txns: impl IntoIterator<Item = AbortedTxn>) {
        for txn in txns {
            let known = self
                .aborted
                .iter()
                .any(|t| t.producer_id == txn.producer_id && t.last_offset == txn.last_offset);
            if !known {
                self.aborted.push(txn);
            }
        }
        self.aborted.sort_by_key(|t| t.last_offset);
    }

    /// Forgets aborted transactions whose markers lie below `offset` (their segments were
    /// deleted).
    pub fn drop_aborted_below(&mut self, offset: Offset) {
        self.aborted.retain(|t| t.last_offset >= offset);
    }

    /// Replaces the aborted transactions whose markers lie in `[from, below)` with `txns`
    /// (the cleaner rewrote those segments and kept only these markers).
    pub fn replace_aborted(&mut self, from: Offset, below: Offset, txns: Vec<AbortedTxn>) {
        assert!(
            txns.iter()
                .all(|t| t.last_offset >= from && t.last_offset < below),
            "aborted transactions kept by a cleaned segment [{from}, {below}) have their \
             markers in it: {txns:?}"
        );
        self.aborted
            .retain(|t| t.last_offset < from || t.last_offset >= below);
        self.aborted.extend(txns);
        self.aborted.sort_by_key(|t| t.last_offset);
    }

    /// For each producer: the last offset of its last data batch (none if its last write
    /// was a marker after an epoch bump) and its epoch (Kafka's
    /// `lastRecordsOfActiveProducers`). The cleaner keeps the batch holding that offset,
    /// or the producer's marker of that epoch, so the producer's state survives
    /// compaction.
    pub fn last_records(&self) -> HashMap<i64, LastRecord> {
        self.producers
            .values()
            .map(|e| {
                (
                    e.producer_id.0,
                    LastRecord {
                        last_data_offset: e.batches.back().map(|b| b.last_offset),
                        epoch: e.epoch,
                    },
                )
            })
            .collect()
    }

    /// Removes producers idle for `expiration` (Kafka's `producer.id.expiration.ms`),
    /// except those with an ongoing transaction. Returns how many were removed.
    pub fn expire(&mut self, now: Timestamp, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now.0.saturating_sub(e.last_timestamp.0) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Replaces the producer entries with those of a snapshot (the aborted index is kept).
    pub fn load_snapshot(&mut self, entries: Vec<ProducerEntry>) {
        self.producers.clear();
        self.ongoing.clear();
        for entry in entries {
            if let Some(first) = entry.current_txn_first_offset {
                self.ongoing.insert(first.0, entry.producer_id.0);
            }
            self.producers.insert(entry.producer_id.0, entry);
        }
    }

    pub fn check_invariants(&self) {
        for entry in self.producers.values() {
            assert!(entry.batches.len() <= MAX_BATCHES_PER_PRODUCER);
            if let Some(first) = entry.current_txn_first_offset {
                assert_eq!(
                    self.ongoing.get(&first.0),
                    Some(&entry.producer_id.0),
                    "producer {} has an ongoing transaction at {first} that is not tracked",
                    entry.producer_id.0
                );
            }
        }
        assert_eq!(
            self.ongoing.len(),
            self.producers
                .values()
                .filter(|e| e.current_txn_first_offset.is_some())
                .count(),
            "every ongoing transaction belongs to a producer"
        );
    }
}

/// Checks a data batch against its producer's entry: `Some(original)` for a retried batch
/// already written, `None` to append it.
fn check_data(
    entry: &ProducerEntry,
    h: &BatchHeader,
) -> Result<Option<BatchMetadata>, ProducerError> {
    let pid = entry.producer_id;
    let epoch = ProducerEpoch(h.producer_epoch);
    if entry.epoch != ProducerEpoch::NONE && epoch.0 < entry.epoch.0 {
        return Err(ProducerError::InvalidEpoch {
            producer_id: pid,
            current: entry.epoch,
            found: epoch,
        });
    }
    if !h.is_transactional() && entry.current_txn_first_offset.is_some() && epoch == entry.epoch {
        return Err(ProducerError::InvalidTxnState {
            producer_id: pid,
            reason: "a non-transactional batch while the producer's transaction is open",
        });
    }
    let first_seq = h.base_sequence;
    if first_seq == NO_SEQUENCE {
        return Ok(None);
    }
    let last_seq = first_seq.wrapping_add(h.last_offset_delta);
    if let Some(original) = entry.duplicate_of(epoch, first_seq, last_seq) {
        return Ok(Some(original));
    }
    if epoch != entry.epoch {
        // A new epoch starts at sequence 0; a producer this partition has never seen (or
        // whose state expired) may start anywhere, as in Kafka.
        if first_seq != 0 && entry.epoch != ProducerEpoch::NONE {
            return Err(ProducerError::OutOfOrderSequence {
                producer_id: pid,
                expected: 0,
                found: first_seq,
            });
        }
        return Ok(None);
    }
    match entry.last_seq() {
        Some(last) if !in_sequence(last, first_seq) => Err(ProducerError::OutOfOrderSequence {
            producer_id: pid,
            expected: last.wrapping_add(1),
            found: first_seq,
        }),
        _ => Ok(None),
    }
}

/// Checks a transaction marker against its producer's entry.
fn check_marker(
    entry: &ProducerEntry,
    epoch: ProducerEpoch,
    marker: Option<Marker>,
) -> Result<(), ProducerError> {
    let pid = entry.producer_id;
    if entry.epoch != ProducerEpoch::NONE && epoch.0 < entry.epoch.0 {
        return Err(ProducerError::InvalidEpoch {
            producer_id: pid,
            current: entry.epoch,
            found: epoch,
        });
    }
    if let Some(marker) = marker
        && marker.coordinator_epoch < entry.coordinator_epoch
    {
        return Err(ProducerError::CoordinatorFenced {
            producer_id: pid,
            current: entry.coordinator_epoch,
            found: marker.coordinator_epoch,
        });
    }
    Ok(())
}

// ---- Files --------------------------------------------------------------------------

const SNAPSHOT_VERSION: i16 = 1;
const SNAPSHOT_ENTRY_LEN: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
const SNAPSHOT_ENTRIES_AT: usize = 2 + 4;

/// Encodes producer entries as Kafka's snapshot file: version (int16, 1), CRC-32C (uint32)
/// of everything after it, then an array (int32 count) of entries: producer id, epoch,
/// last sequence, last offset, offset delta (last − first sequence of the last batch),
/// timestamp, coordinator epoch, current transaction first offset (−1 if none).
pub fn encode_snapshot<'a>(entries: impl Iterator<Item = &'a ProducerEntry>) -> Vec<u8> {
    let mut body = Vec::new();
    let entries: Vec<&ProducerEntry> = entries.collect();
    body.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for e in entries {
        let (last_seq, last_offset, delta) = match e.batches.back() {
            Some(b) => (
                b.last_seq,
                b.last_offset.0,
                b.last_seq.wrapping_sub(b.first_seq),
            ),
            None => (NO_SEQUENCE, -1, 0),
        };
        body.extend_from_slice(&e.producer_id.0.to_be_bytes());
        body.extend_from_slice(&e.epoch.0.to_be_bytes());
        body.extend_from_slice(&last_seq.to_be_bytes());
        body.extend_from_slice(&last_offset.to_be_bytes());
        body.extend_from_slice(&delta.to_be_bytes());
        body.extend_from_slice(&e.last_timestamp.0.to_be_bytes());
        body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        body.extend_from_slice(&e.current_txn_first_offset.map_or(-1, |o| o.0).to_be_bytes());
    }
    let mut out = Vec::with_capacity(SNAPSHOT_ENTRIES_AT + body.len());
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Decodes a snapshot file; an error names what is wrong (the caller discards the file).
pub fn decode_snapshot(bytes: &[u8]) -> Result<Vec<ProducerEntry>, String> {
    if bytes.len() < SNAPSHOT_ENTRIES_AT + 4 {
        return Err(format!(
            "{} bytes are too short for a snapshot",
            bytes.len()
        ));
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version != SNAPSHOT_VERSION {
        return Err(format!(
            "snapshot version {version} is not {SNAPSHOT_VERSION}"
        ));
    }
    let crc = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    let body = &bytes[SNAPSHOT_ENTRIES_AT..];
    if crc32c::crc32c(body) != crc {
        return Err("snapshot CRC mismatch".into());
    }
    let count = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let rest = &body[4..];
    if count < 0 || rest.len() != count as usize * SNAPSHOT_ENTRY_LEN {
        return Err(format!(
            "{count} entries disagree with {} bytes of entries",
            rest.len()
        ));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for e in rest.chunks_exact(SNAPSHOT_ENTRY_LEN) {
        let i64_at = |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().expect("8 bytes"));
        let i32_at = |at: usize| i32::from_be_bytes(e[at..at + 4].try_into().expect("4 bytes"));
        let producer_id = ProducerId(i64_at(0));
        let epoch = ProducerEpoch(i16::from_be_bytes([e[8], e[9]]));
        let last_seq = i32_at(10);
        let last_offset = i64_at(14);
        let delta = i32_at(22);
        let timestamp = Timestamp(i64_at(26));
        let coordinator_epoch = i32_at(34);
        let txn_first = i64_at(38);
        let mut batches = VecDeque::new();
        if last_seq != NO_SEQUENCE && last_offset >= 0 && delta >= 0 {
            batches.push_back(BatchMetadata {
                first_seq: last_seq.wrapping_sub(delta),
                last_seq,
                first_offset: Offset(last_offset - delta as i64),
                last_offset: Offset(last_offset),
                max_timestamp: timestamp,
            });
        }
        entries.push(ProducerEntry {
            producer_id,
            epoch,
            batches,
            coordinator_epoch,
            last_timestamp: timestamp,
            current_txn_first_offset: (txn_first >= 0).then_some(Offset(txn_first)),
        });
    }
    Ok(entries)
}

const TXN_INDEX_ENTRY_LEN: usize = 2 + 8 + 8 + 8 + 8;

/// Encodes aborted transactions as `.txnindex` entries: version (int16, 0), producer id,
/// first offset, last offset, last stable offset.
pub fn encode_txn_index(txns: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(txns.len() * TXN_INDEX_ENTRY_LEN);
    for t in txns {
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&t.producer_id.0.to_be_bytes());
        out.extend_from_slice(&t.first_offset.0.to_be_bytes());
        out.extend_from_slice(&t.last_offset.0.to_be_bytes());
        out.extend_from_slice(&t.last_stable_offset.0.to_be_bytes());
    }
    out
}

/// Decodes a `.txnindex` file: whole entries of version 0; a torn tail is ignored.
pub fn decode_txn_index(bytes: &[u8]) -> Vec<AbortedTxn> {
    bytes
        .chunks_exact(TXN_INDEX_ENTRY_LEN)
        .filter(|e| i16::from_be_bytes([e[0], e[1]]) == 0)
        .map(|e| {
            let i64_at = |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().expect("8 bytes"));
            AbortedTxn {
                producer_id: ProducerId(i64_at(2)),
                first_offset: Offset(i64_at(10)),
                last_offset: Offset(i64_at(18)),
                last_stable_offset: Offset(i64_at(26)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{BatchBuilder, Compression};

    fn batch(pid: i64, epoch: i16, seq: i32, records: usize, txn: bool) -> RecordBatch {
        let mut b = BatchBuilder::new(Compression::None)
            .producer(pid, epoch, seq)
            .transactional(txn);
        for i in 0..records {
            b.push(1_000 + i as i64, None, Some(b"v"), &[]);
        }
        RecordBatch::parse(b.build(0)).unwrap()
    }

    fn marker(pid: i64, epoch: i16, commit: bool) -> RecordBatch {
        let (key, value) = Marker {
            commit,
            coordinator_epoch: 0,
        }
        .key_and_value();
        let mut b = BatchBuilder::new(Compression::None)
            .producer(pid, epoch, NO_SEQUENCE)
            .transactional(true)
            .control(true);
        b.push(2_000, Some(&key), Some(&value), &[]);
        RecordBatch::parse(b.build(0)).unwrap()
    }

    /// Plans and applies an append at `offset`, like the log does.
    fn append(
        states: &mut ProducerStates,
        offset: &mut i64,
        batches: Vec<RecordBatch>,
    ) -> Result<Option<BatchMetadata>, ProducerError> {
        let plan = states.plan(&batches)?;
        if let Some(d) = plan.duplicate {
            return Ok(Some(d));
        }
        let first = Offset(*offset);
        *offset += batches
            .iter()
            .map(|b| b.header().last_offset_delta as i64 + 1)
            .sum::<i64>();
        states.apply(plan, &batches, first, None);
        states.check_invariants();
        Ok(None)
    }

    #[test]
    fn sequences_must_follow_and_retries_get_their_original_offsets() {
        let mut s = ProducerStates::new();
        let mut at = 0;
        assert_eq!(
            append(&mut s, &mut at, vec![batch(7, 0, 0, 3, false)]),
            Ok(None)
        );
        assert_eq!(
            append(&mut s, &mut at, vec![batch(7, 0, 3, 2, false)]),
            Ok(None)
        );
        // A retry of the first batch: its original offsets, nothing appended.
        let dup = append(&mut s, &mut at, vec![batch(7, 0, 0, 3, false)])
            .unwrap()
            .unwrap();
        assert_eq!((dup.first_offset, dup.last_offset), (Offset(0), Offset(2)));
        assert_eq!(at, 5);
        // A gap.
        assert!(matches!(
            append(&mut s, &mut at, vec![batch(7, 0, 9, 1, false)]),
            Err(ProducerError::OutOfOrderSequence {
                expected: 5,
                found: 9,
                ..
            })
        ));
        // Two batches in one append: the second follows the first.
        assert_eq!(
            append(
                &mut s,
                &mut at,
                vec![batch(7, 0, 5, 1, false), batch(7, 0, 6, 1, false)]
            ),
            Ok(None)
        );
        assert_eq!(s.get(ProducerId(7)).unwrap().last_seq(), Some(6));
    }

    #[test]
    fn epochs_fence_older_producers_and_restart_sequences() {
        let mut s = ProducerStates::new();
        let mut at = 0;
        append(&mut s, &mut at, vec![batch(1, 3, 0, 1, false)]).unwrap();
        assert!(matches!(
            append(&mut s, &mut at, vec![batch(1, 2, 1, 1, false)]),
            Err(ProducerError::InvalidEpoch { .. })
        ));
        // A new epoch starts at 0.
        assert!(matches!(
            append(&mut s, &mut at, vec![batch(1, 4, 5, 1, false)]),
            Err(ProducerError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(
            append(&mut s, &mut at, vec![batch(1, 4, 0, 1, false)]),
            Ok(None)
        );
        // An unknown producer may start at any sequence.
        assert_eq!(
            append(&mut s, &mut at, vec![batch(2, 0, 42, 1, false)]),
            Ok(None)
        );
    }

    #[test]
    fn only_the_last_five_batches_are_recognised_as_retries() {
        let mut s = ProducerStates::new();
        let mut at = 0;
        for seq in 0..6 {
            append(&mut s, &mut at, vec![batch(1, 0, seq, 1, false)]).unwrap();
        }
        assert!(
            append(&mut s, &mut at, vec![batch(1, 0, 1, 1, false)])
                .unwrap()
                .is_some()
        );
        assert!(append(&mut s, &mut at, vec![batch(1, 0, 0, 1, false)]).is_err());
    }

    #[test]
    fn transactions_hold_the_stable_offset_and_aborts_are_indexed() {
        let mut s = ProducerStates::new();
        let mut at = 0;
        append(&mut s, &mut at, vec![batch(1, 0, 0, 2, false)]).unwrap();
        append(&mut s, &mut at, vec![batch(5, 0, 0, 2, true)]).unwrap(); // 2..=3
        append(&mut s, &mut at, vec![batch(6, 0, 0, 1, true)]).unwrap(); // 4
        assert_eq!(s.first_unstable_offset(), Some(Offset(2)));
        assert!(matches!(
            append(&mut s, &mut at, vec![batch(5, 0, 2, 1, false)]),
            Err(ProducerError::InvalidTxnState { .. })
        ));
        append(&mut s, &mut at, vec![marker(5, 0, false)]).unwrap(); // 5
        assert_eq!(s.first_unstable_offset(), Some(Offset(4)));
        append(&mut s, &mut at, vec![marker(6, 0, true)]).unwrap(); // 6
        assert_eq!(s.first_unstable_offset(), None);
        let aborted = s.aborted_between(Offset(0), Offset(7));
        assert_eq!(
            aborted,
            vec![AbortedTxn {
                producer_id: ProducerId(5),
                first_offset: Offset(2),
                last_offset: Offset(5),
                last_stable_offset: Offset(4),
            }]
        );
        assert!(s.aborted_between(Offset(6), Offset(7)).is_empty());
        // Markers from an older epoch are refused.
        append(&mut s, &mut at, vec![batch(5, 1, 0, 1, true)]).unwrap();
        assert!(matches!(
            append(&mut s, &mut at, vec![marker(5, 0, true)]),
            Err(ProducerError::InvalidEpoch { .. })
        ));
    }

    #[test]
    fn snapshots_and_txn_indices_round_trip() {
        let mut s = ProducerStates::new();
        let mut at = 10;
        append(&mut s, &mut at, vec![batch(1, 2, 0, 3, false)]).unwrap();
        append(&mut s, &mut at, vec![batch(9, 0, 0, 1, true)]).unwrap();
        let bytes = encode_snapshot(s.entries());
        assert_eq!(bytes.len(), 6 + 4 + 2 * SNAPSHOT_ENTRY_LEN);
        let mut entries = decode_snapshot(&bytes).unwrap();
        entries.sort_by_key(|e| e.producer_id.0);
        assert_eq!(entries[0].batches[0].first_offset, Offset(10));
        assert_eq!(entries[0].batches[0].last_offset, Offset(12));
        assert_eq!(entries[0].batches[0].last_seq, 2);
        assert_eq!(entries[1].current_txn_first_offset, Some(Offset(13)));
        let mut loaded = ProducerStates::new();
        loaded.load_snapshot(entries);
        loaded.check_invariants();
        assert_eq!(loaded.first_unstable_offset(), Some(Offset(13)));
        let mut corrupt = bytes.clone();
        *corrupt.last_mut().unwrap() ^= 1;
        assert!(decode_snapshot(&corrupt).is_err());

        let txns = vec![AbortedTxn {
            producer_id: ProducerId(3),
            first_offset: Offset(1),
            last_offset: Offset(8),
            last_stable_offset: Offset(2),
        }];
        let mut index = encode_txn_index(&txns);
        assert_eq!(index.len(), 34);
        index.extend_from_slice(&[0, 0, 1]); // a torn tail
        assert_eq!(decode_txn_index(&index), txns);
    }

    #[test]
    fn idle_producers_expire_unless_their_transaction_is_open() {
        let mut s = ProducerStates::new();
        let mut at = 0;
        append(&mut s, &mut at, vec![batch(1, 0, 0, 1, false)]).unwrap();
        append(&mut s, &mut at, vec![batch(2, 0, 0, 1, true)]).unwrap();
        assert_eq!(s.expire(Timestamp(1_000 + 100), 50), 1);
        assert!(s.get(ProducerId(2)).is_some());
        s.check_invariants();
    }
}
