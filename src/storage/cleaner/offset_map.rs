//! The cleaner's key → latest offset map (Kafka's `SkimpyOffsetMap`), bounded in memory.
//!
//! A key is stored as a 128-bit hash (two independent SipHash-1-3 of the key), not as
//! itself: 24 bytes a slot whatever the key's size, so `log.cleaner.dedupe.buffer.size`
//! bounds the map exactly. Two keys with the same 128-bit hash would be taken for one
//! (Kafka takes the same risk with MD5); at 2^-128 per pair it never happens in practice.
//! Open addressing with linear probing; the table is allocated zeroed (pages the map never
//! touches cost nothing) for one cleaning and dropped after it.
//!
//! Owned by the cleaning in progress on one shard; `!Send` by use, not by type.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::model::Offset;

/// Bytes a slot takes: a 128-bit key hash and an offset (as Kafka's map: 16 + 8).
pub const BYTES_PER_SLOT: u64 = 24;

/// Kafka's `log.cleaner.io.buffer.load.factor`: the map takes keys until this share of
/// its slots is used (beyond, probing gets slow).
pub const LOAD_FACTOR: f64 = 0.9;

/// Key hash → the latest offset seen for that key, plus the latest offset the map
/// covers (every record at or below it was looked at, Kafka's `latestOffset`).
pub struct OffsetMap {
    /// Two words of hash per slot.
    hashes: Vec<u64>,
    /// Offset + 1 per slot; 0 marks an empty slot (so the table starts zeroed).
    offsets: Vec<i64>,
    slots: usize,
    entries: usize,
    latest: Offset,
}

impl OffsetMap {
    /// A map of `slots` slots (at least 1) that covers nothing yet: its latest offset is
    /// `start - 1`.
    pub fn new(slots: usize, start: Offset) -> OffsetMap {
        let slots = slots.max(1);
        OffsetMap {
            hashes: vec![0; 2 * slots],
            offsets: vec![0; slots],
            slots,
            entries: 0,
            latest: start.plus(-1),
        }
    }

    /// How many slots a map needs for `records` records, within a memory bound.
    pub fn slots_for(records: u64, memory_bytes: u64) -> usize {
        let max = (memory_bytes / BYTES_PER_SLOT).max(1);
        let wanted = (records as f64 / LOAD_FACTOR).ceil() as u64 + 1;
        wanted.min(max) as usize
    }

    /// How many keys the map takes before it counts as full.
    pub fn capacity(&self) -> usize {
        ((self.slots as f64 * LOAD_FACTOR) as usize).max(1)
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Room for `keys` more keys (counting each as new).
    pub fn has_room_for(&self, keys: usize) -> bool {
        self.entries + keys <= self.capacity()
    }

    fn hash(key: &[u8]) -> (u64, u64) {
        let mut first = DefaultHasher::new();
        0u8.hash(&mut first);
        key.hash(&mut first);
        let mut second = DefaultHasher::new();
        1u8.hash(&mut second);
        key.hash(&mut second);
        (first.finish(), second.finish())
    }

    /// The slot holding `hash`, or the empty slot where it would go.
    fn slot(&self, hash: (u64, u64)) -> usize {
        let mut at = (hash.0 % self.slots as u64) as usize;
        loop {
            if self.offsets[at] == 0
                || (self.hashes[2 * at] == hash.0 && self.hashes[2 * at + 1] == hash.1)
            {
                return at;
            }
            at += 1;
            if at == self.slots {
                at = 0;
            }
        }
    }

    /// Records that `key` was seen at `offset` (offsets only grow: a later put wins).
    pub fn put(&mut self, key: &[u8], offset: Offset) {
        assert!(
            self.entries < self.slots,
            "the offset map is full ({} slots): callers check has_room_for",
            self.slots
        );
        let hash = Self::hash(key);
        let at = self.slot(hash);
        if self.offsets[at] == 0 {
            self.entries += 1;
            self.hashes[2 * at] = hash.0;
            self.hashes[2 * at + 1] = hash.1;
        }
        self.offsets[at] = offset.0 + 1;
        self.latest = self.latest.max(offset);
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<Offset> {
        let at = self.slot(Self::hash(key));
        (self.offsets[at] != 0).then(|| Offset(self.offsets[at] - 1))
    }

    /// Every record at or below this offset was looked at.
    pub fn latest_offset(&self) -> Offset {
        self.latest
    }

    /// Moves the covered range up to `offset` (a batch without keys, a gap).
    pub fn update_latest_offset(&mut self, offset: Offset) {
        self.latest = self.latest.max(offset);
    }

    /// Share of the slots in use (Kafka's buffer utilization).
    pub fn utilization(&self) -> f64 {
        self.entries as f64 / self.slots as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_wide_cleaner_settings_are_shared_between_shards() {
        let config = crate::storage::cleaner::CleanerConfig::default().per_shard(2);
        assert_eq!(config.dedupe_buffer_bytes, 64 << 20);
        assert!(config.io_max_bytes_per_second.is_infinite());
        let limited = crate::storage::cleaner::CleanerConfig {
            io_max_bytes_per_second: 1_048_576.0,
            ..Default::default()
        };
        assert_eq!(limited.per_shard(4).io_max_bytes_per_second, 262_144.0);
    }

    #[test]
    fn the_latest_offset_of_each_key_wins_and_the_map_knows_when_it_is_full() {
        let mut map = OffsetMap::new(OffsetMap::slots_for(100, 1 << 20), Offset(10));
        assert_eq!(map.latest_offset(), Offset(9));
        for round in 0..3i64 {
            for key in 0..50i64 {
                map.put(
                    format!("key-{key}").as_bytes(),
                    Offset(10 + round * 50 + key),
                );
            }
        }
        assert_eq!(map.len(), 50);
        assert_eq!(map.get(b"key-7"), Some(Offset(10 + 100 + 7)));
        assert_eq!(map.get(b"absent"), None);
        assert_eq!(map.latest_offset(), Offset(159));
        assert!(map.has_room_for(50));
        // Bounded by memory: 10 slots, 9 keys.
        let small = OffsetMap::new(OffsetMap::slots_for(1_000, 10 * BYTES_PER_SLOT), Offset(0));
        assert_eq!(small.capacity(), 9);
        assert!(!small.has_room_for(10));
    }
}
