//! Kafka's sparse segment indices, in memory, with their exact on-disk encoding.
//!
//! Owns [`OffsetIndex`] (`.index`: 4-byte offset relative to the segment's base offset +
//! 4-byte file position, big-endian) and [`TimeIndex`] (`.timeindex`: 8-byte timestamp +
//! 4-byte relative offset). The segment keeps one of each in memory and writes new entries
//! to the preallocated files when the log is flushed; this module knows nothing of files.
//!
//! Meaning of an entry, as Kafka writes them (one per `index.interval.bytes` of batches):
//! - offset index `(o, p)`: the batch that starts at position `p` has last offset `o`. A
//!   lookup for offset `t` takes the last entry with `o ≤ t` and scans batch headers from
//!   its position; positions are batch boundaries, so the scan is always aligned.
//! - time index `(ts, o)`: no record at an offset `≤ o` has a timestamp above `ts` (`ts` is
//!   the segment's max timestamp so far, `o` the last offset of the batch that carries it).
//!
//! Invariants, asserted on every append (release builds too): offsets and positions of the
//! offset index strictly increase; timestamps of the time index strictly increase and their
//! offsets never decrease. Indices are hints that can always be rebuilt from the log, so a
//! file is loaded as its longest valid prefix ([`OffsetIndex::decode`]).

use crate::model::{Offset, Timestamp};

/// Bytes per `.index` entry.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
/// Bytes per `.timeindex` entry.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

const _: () = assert!(OFFSET_INDEX_ENTRY_BYTES == 4 + 4);
const _: () = assert!(TIME_INDEX_ENTRY_BYTES == 8 + 4);

/// One `.index` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetIndexEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One `.timeindex` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeIndexEntry {
    pub timestamp: Timestamp,
    pub relative_offset: u32,
}

fn relative(base_offset: Offset, offset: Offset) -> u32 {
    let delta = offset.0 - base_offset.0;
    assert!(
        (0..=i32::MAX as i64).contains(&delta),
        "offset {offset} is not within a relative index range of base offset {base_offset}"
    );
    delta as u32
}

/// The sparse offset → position index of one segment.
#[derive(Clone, Debug)]
pub struct OffsetIndex {
    base_offset: Offset,
    entries: Vec<OffsetIndexEntry>,
    max_entries: usize,
}

impl OffsetIndex {
    /// An empty index that can hold `index_bytes / 8` entries.
    pub fn new(base_offset: Offset, index_bytes: u32) -> Self {
        OffsetIndex {
            base_offset,
            entries: Vec::new(),
            max_entries: (index_bytes as usize / OFFSET_INDEX_ENTRY_BYTES).max(1),
        }
    }

    /// Loads the longest valid prefix of an index file's bytes: entries whose offsets and
    /// positions strictly increase, with offsets below `offset_limit` and positions below
    /// `position_limit`. Position 0 is never indexed (the first entry comes only after
    /// `index.interval.bytes`, in Kafka too), so an all-zero entry ends the prefix: that is
    /// what the unwritten part of a preallocated file reads as. Returns the index and whether every byte was a valid entry (false
    /// for a preallocated file after a crash, or garbage).
    pub fn decode(
        base_offset: Offset,
        bytes: &[u8],
        index_bytes: u32,
        offset_limit: Offset,
        position_limit: u32,
    ) -> (Self, bool) {
        let mut index = OffsetIndex::new(base_offset, index_bytes);
        let mut complete = bytes.len().is_multiple_of(OFFSET_INDEX_ENTRY_BYTES);
        for raw in bytes.chunks_exact(OFFSET_INDEX_ENTRY_BYTES) {
            let relative_offset = i32::from_be_bytes(raw[0..4].try_into().unwrap());
            let position = i32::from_be_bytes(raw[4..8].try_into().unwrap());
            let valid = relative_offset >= 0
                && position > 0
                && base_offset.0 + (relative_offset as i64) < offset_limit.0
                && (position as u32) < position_limit
                && index.entries.last().is_none_or(|last| {
                    last.relative_offset < relative_offset as u32 && last.position < position as u32
                });
            if !valid {
                complete = false;
                break;
            }
            index.entries.push(OffsetIndexEntry {
                relative_offset: relative_offset as u32,
                position: position as u32,
            });
        }
        index.max_entries = index.max_entries.max(index.entries.len());
        (index, complete)
    }

    pub fn base_offset(&self) -> Offset {
        self.base_offset
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    pub fn entries(&self) -> &[OffsetIndexEntry] {
        &self.entries
    }

    /// The absolute offset and position of entry `i`.
    pub fn entry(&self, i: usize) -> (Offset, u32) {
        let e = self.entries[i];
        (self.base_offset.plus(e.relative_offset as i64), e.position)
    }

    /// Records that the batch starting at `position` ends at `last_offset`.
    pub fn append(&mut self, last_offset: Offset, position: u32) {
        let relative_offset = relative(self.base_offset, last_offset);
        if let Some(last) = self.entries.last() {
            assert!(
                last.relative_offset < relative_offset && last.position < position,
                "offset index of segment {} must increase: last entry {last:?}, new entry \
                 (relative offset {relative_offset}, position {position})",
                self.base_offset
            );
        }
        assert!(
            !self.is_full(),
            "offset index of segment {} is full ({} entries)",
            self.base_offset,
            self.max_entries
        );
        self.entries.push(OffsetIndexEntry {
            relative_offset,
            position,
        });
    }

    /// The entry to start a scan for `target` from: the last with offset `≤ target`, or the
    /// segment start. Returns (that batch's last offset or the base offset, position).
    pub fn lookup(&self, target: Offset) -> (Offset, u32) {
        if target < self.base_offset {
            return (self.base_offset, 0);
        }
        let relative = (target.0 - self.base_offset.0).min(u32::MAX as i64) as u32;
        let count = self
            .entries
            .partition_point(|e| e.relative_offset <= relative);
        match count {
            0 => (self.base_offset, 0),
            n => self.entry(n - 1),
        }
    }

    /// The last entry whose position is `≤ position`, or the segment start.
    pub fn lookup_position(&self, position: u32) -> (Offset, u32) {
        let count = self.entries.partition_point(|e| e.position <= position);
        match count {
            0 => (self.base_offset, 0),
            n => self.entry(n - 1),
        }
    }

    /// Drops the entries of batches that end at or after `offset`.
    pub fn truncate_to_offset(&mut self, offset: Offset) {
        let keep = self
            .entries
            .partition_point(|e| self.base_offset.0 + (e.relative_offset as i64) < offset.0);
        self.entries.truncate(keep);
    }

    /// Drops entries for batches starting at or after `position`.
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = self.entries.partition_point(|e| e.position < position);
        self.entries.truncate(keep);
    }

    /// The file bytes of entries `from..`.
    pub fn encode_from(&self, from: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.entries.len() - from) * OFFSET_INDEX_ENTRY_BYTES);
        for e in &self.entries[from..] {
            out.extend_from_slice(&(e.relative_offset as i32).to_be_bytes());
            out.extend_from_slice(&(e.position as i32).to_be_bytes());
        }
        out
    }
}

/// The sparse timestamp → offset index of one segment.
#[derive(Clone, Debug)]
pub struct TimeIndex {
    base_offset: Offset,
    entries: Vec<TimeIndexEntry>,
    max_entries: usize,
}

impl TimeIndex {
    /// An empty index that can hold `index_bytes / 12` entries.
    pub fn new(base_offset: Offset, index_bytes: u32) -> Self {
        TimeIndex {
            base_offset,
            entries: Vec::new(),
            max_entries: (index_bytes as usize / TIME_INDEX_ENTRY_BYTES).max(2),
        }
    }

    /// Loads the longest valid prefix of a time index file's bytes: strictly increasing
    /// timestamps, non-decreasing offsets below `offset_limit`. A leading all-zero entry is
    /// ambiguous (a real entry for timestamp 0 at the base offset, or an unwritten
    /// preallocated slot): the caller checks it against the segment's first batch
    /// ([`TimeIndex::clear`] if it does not hold).
    pub fn decode(
        base_offset: Offset,
        bytes: &[u8],
        index_bytes: u32,
        offset_limit: Offset,
    ) -> (Self, bool) {
        let mut index = TimeIndex::new(base_offset, index_bytes);
        let mut complete = bytes.len().is_multiple_of(TIME_INDEX_ENTRY_BYTES);
        for raw in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
            let timestamp = i64::from_be_bytes(raw[0..8].try_into().unwrap());
            let relative_offset = i32::from_be_bytes(raw[8..12].try_into().unwrap());
            let valid = relative_offset >= 0
                && base_offset.0 + (relative_offset as i64) < offset_limit.0
                && index.entries.last().is_none_or(|last| {
                    last.timestamp.0 < timestamp && last.relative_offset <= relative_offset as u32
                });
            if !valid {
                complete = false;
                break;
            }
            index.entries.push(TimeIndexEntry {
                timestamp: Timestamp(timestamp),
                relative_offset: relative_offset as u32,
            });
        }
        index.max_entries = index.max_entries.max(index.entries.len() + 1);
        (index, complete)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the first entry is all zeros (see [`TimeIndex::decode`]).
    pub fn starts_with_zero_entry(&self) -> bool {
        self.entries
            .first()
            .is_some_and(|e| e.timestamp == Timestamp(0) && e.relative_offset == 0)
    }

    /// Forgets every entry (a leading zero entry that the log does not confirm makes the
    /// rest untrustworthy too).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Full when only the slot for the final entry written at roll is left.
    pub fn is_full(&self) -> bool {
        self.entries.len() + 1 >= self.max_entries
    }

    pub fn entries(&self) -> &[TimeIndexEntry] {
        &self.entries
    }

    /// The last entry as (timestamp, absolute offset).
    pub fn last(&self) -> Option<(Timestamp, Offset)> {
        self.entries.last().map(|e| self.absolute(e))
    }

    fn absolute(&self, e: &TimeIndexEntry) -> (Timestamp, Offset) {
        (e.timestamp, self.base_offset.plus(e.relative_offset as i64))
    }

    /// Appends `(timestamp, offset)` if `timestamp` is above the last entry's (Kafka's
    /// `maybeAppend`). Returns whether an entry was added.
    pub fn maybe_append(&mut self, timestamp: Timestamp, offset: Offset) -> bool {
        let relative_offset = relative(self.base_offset, offset);
        if let Some(last) = self.entries.last() {
            if timestamp <= last.timestamp {
                return false;
            }
            assert!(
                last.relative_offset <= relative_offset,
                "time index of segment {} must not go back in offsets: last entry {last:?}, \
                 new entry ({timestamp}, relative offset {relative_offset})",
                self.base_offset
            );
        }
        assert!(
            self.entries.len() < self.max_entries,
            "time index of segment {} is full ({} entries)",
            self.base_offset,
            self.max_entries
        );
        self.entries.push(TimeIndexEntry {
            timestamp,
            relative_offset,
        });
        true
    }

    /// The last entry with a timestamp strictly below `target`: every record at or below its
    /// offset is older than `target`, so a search for the first record `≥ target` may start
    /// after it.
    pub fn lookup_before(&self, target: Timestamp) -> Option<(Timestamp, Offset)> {
        let count = self.entries.partition_point(|e| e.timestamp < target);
        (count > 0).then(|| self.absolute(&self.entries[count - 1]))
    }

    /// Drops entries whose offset is at or after `offset`.
    pub fn truncate_to_offset(&mut self, offset: Offset) {
        let keep = self
            .entries
            .partition_point(|e| self.base_offset.0 + (e.relative_offset as i64) < offset.0);
        self.entries.truncate(keep);
    }

    /// The file bytes of entries `from..`.
    pub fn encode_from(&self, from: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.entries.len() - from) * TIME_INDEX_ENTRY_BYTES);
        for e in &self.entries[from..] {
            out.extend_from_slice(&e.timestamp.0.to_be_bytes());
            out.extend_from_slice(&(e.relative_offset as i32).to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_returns_the_last_entry_at_or_below_the_target() {
        let mut index = OffsetIndex::new(Offset(100), 1024);
        index.append(Offset(110), 4100);
        index.append(Offset(130), 8300);
        assert_eq!(index.lookup(Offset(99)), (Offset(100), 0));
        assert_eq!(index.lookup(Offset(109)), (Offset(100), 0));
        assert_eq!(index.lookup(Offset(110)), (Offset(110), 4100));
        assert_eq!(index.lookup(Offset(129)), (Offset(110), 4100));
        assert_eq!(index.lookup(Offset(1_000_000)), (Offset(130), 8300));
        assert_eq!(index.lookup_position(8299), (Offset(110), 4100));
        assert_eq!(index.lookup_position(8300), (Offset(130), 8300));
    }

    #[test]
    fn offset_index_encoding_is_kafkas_big_endian_relative_layout() {
        let mut index = OffsetIndex::new(Offset(1000), 1024);
        index.append(Offset(1005), 0x0102_0304);
        assert_eq!(index.encode_from(0), [0, 0, 0, 5, 1, 2, 3, 4]);
        let (decoded, complete) = OffsetIndex::decode(
            Offset(1000),
            &index.encode_from(0),
            1024,
            Offset(2000),
            u32::MAX,
        );
        assert!(complete);
        assert_eq!(decoded.entries(), index.entries());
    }

    #[test]
    fn offset_index_decode_keeps_the_valid_prefix_of_a_preallocated_file() {
        let mut index = OffsetIndex::new(Offset(0), 1024);
        index.append(Offset(10), 5000);
        index.append(Offset(20), 9000);
        let mut bytes = index.encode_from(0);
        bytes.resize(64, 0);
        let (decoded, complete) = OffsetIndex::decode(Offset(0), &bytes, 1024, Offset(30), 10_000);
        assert!(!complete);
        assert_eq!(decoded.len(), 2);
        // A file of zeros holds no entry.
        let (decoded, _) = OffsetIndex::decode(Offset(0), &[0; 64], 1024, Offset(30), 10_000);
        assert!(decoded.is_empty());
        // An entry pointing past the end of the log is not trusted.
        let (decoded, _) = OffsetIndex::decode(Offset(0), &bytes, 1024, Offset(30), 9000);
        assert_eq!(decoded.len(), 1);
    }

    #[test]
    #[should_panic(expected = "must increase")]
    fn offset_index_rejects_non_monotonic_entries() {
        let mut index = OffsetIndex::new(Offset(0), 1024);
        index.append(Offset(10), 5000);
        index.append(Offset(10), 6000);
    }

    #[test]
    fn time_index_keeps_only_increasing_timestamps_and_looks_up_strictly_below() {
        let mut index = TimeIndex::new(Offset(0), 1200);
        assert!(index.maybe_append(Timestamp(100), Offset(3)));
        assert!(!index.maybe_append(Timestamp(100), Offset(5)));
        assert!(index.maybe_append(Timestamp(200), Offset(9)));
        assert_eq!(index.lookup_before(Timestamp(100)), None);
        assert_eq!(
            index.lookup_before(Timestamp(101)),
            Some((Timestamp(100), Offset(3)))
        );
        assert_eq!(
            index.lookup_before(Timestamp(1000)),
            Some((Timestamp(200), Offset(9)))
        );
        index.truncate_to_offset(Offset(9));
        assert_eq!(index.last(), Some((Timestamp(100), Offset(3))));
        let bytes = index.encode_from(0);
        assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 3]);
    }
}
