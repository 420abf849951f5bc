//! The shard table: which shard owns each key (for corelog, a topic partition), with a
//! revision that orders changes.
//!
//! Shard 0 holds the authoritative copy and `commit`s changes, producing an update it
//! broadcasts; every other shard keeps a replica and `apply`s updates in revision order.
//! Reads are local lookups on each shard's own copy: no shared state, no locks.

use crate::mesh::ShardId;
use std::collections::HashMap;
use std::hash::Hash;

/// A batch of ownership changes at one revision; `None` removes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUpdate<K> {
    pub revision: u64,
    pub changes: Vec<(K, Option<ShardId>)>,
}

#[derive(Debug, Clone)]
pub struct ShardTable<K> {
    revision: u64,
    owners: HashMap<K, ShardId>,
}

impl<K: Eq + Hash + Clone> Default for ShardTable<K> {
    fn default() -> Self {
        ShardTable {
            revision: 0,
            owners: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> ShardTable<K> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn owner(&self, key: &K) -> Option<ShardId> {
        self.owners.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, ShardId)> {
        self.owners.iter().map(|(k, s)| (k, *s))
    }

    /// Keys owned by each of `shards` shards.
    pub fn counts(&self, shards: usize) -> Vec<usize> {
        let mut counts = vec![0; shards];
        for shard in self.owners.values() {
            counts[shard.0] += 1;
        }
        counts
    }

    /// On the authoritative copy: applies `changes` as the next revision and returns
    /// the update to send to every other shard.
    pub fn commit(&mut self, changes: Vec<(K, Option<ShardId>)>) -> TableUpdate<K> {
        let update = TableUpdate {
            revision: self.revision + 1,
            changes,
        };
        self.apply(&update);
        update
    }

    /// On a replica: applies the next update. Updates travel over one ordered channel
    /// from shard 0, so a gap means a bug.
    pub fn apply(&mut self, update: &TableUpdate<K>) {
        assert_eq!(
            update.revision,
            self.revision + 1,
            "shard table update out of order: at revision {}, got {}",
            self.revision,
            update.revision
        );
        for (key, owner) in &update.changes {
            match owner {
                Some(shard) => self.owners.insert(key.clone(), *shard),
                None => self.owners.remove(key),
            };
        }
        self.revision = update.revision;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_follow_the_authoritative_copy() {
        let mut primary = ShardTable::new();
        let mut replica = ShardTable::new();
        let u1 = primary.commit(vec![
            (("t", 0), Some(ShardId(0))),
            (("t", 1), Some(ShardId(1))),
        ]);
        let u2 = primary.commit(vec![(("t", 0), None), (("t", 1), Some(ShardId(0)))]);
        replica.apply(&u1);
        replica.apply(&u2);
        assert_eq!(replica.revision(), 2);
        assert_eq!(replica.owner(&("t", 0)), None);
        assert_eq!(replica.owner(&("t", 1)), Some(ShardId(0)));
        assert_eq!(replica.counts(2), vec![1, 0]);
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn a_skipped_revision_is_a_bug() {
        let mut primary = ShardTable::new();
        let mut replica: ShardTable<u32> = ShardTable::new();
        primary.commit(vec![(1, Some(ShardId(0)))]);
        let u2 = primary.commit(vec![(2, Some(ShardId(0)))]);
        replica.apply(&u2);
    }
}
