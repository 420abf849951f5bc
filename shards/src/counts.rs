//! A count per shard — corelog's: the connections each shard serves — that every shard
//! reads and only its own shard writes, and the choice of where to send a new unit of
//! what is counted: the shard with the lowest count, when that is at least two below the
//! deciding shard's.
//!
//! corelog uses it to spread connections (`placement.connections.spread`): every shard
//! accepts on the same listening sockets and the kernel hands the next connection to
//! whichever shard it wakes, so a few long-lived clients can all land on one shard while
//! short-lived ones take the other turns. A shard that accepts a connection while it
//! serves at least two more than another hands it to the one serving the fewest.
//!
//! Invariant: each count is written only by its own shard; other shards only read it,
//! outside any hot path (once per accepted connection). A count read from another shard
//! may be a moment old, so the result is a balance of counts, not a guarantee.

use crate::mesh::ShardId;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// One count per shard, shared by all shards.
#[derive(Debug, Default)]
pub struct ShardCounts {
    counts: OnceLock<Box<[AtomicU64]>>,
}

impl ShardCounts {
    /// Sizes the counts for `shards` shards; every shard calls it with the same number
    /// before it counts anything.
    pub fn init(&self, shards: usize) {
        let counts = self
            .counts
            .get_or_init(|| (0..shards).map(|_| AtomicU64::new(0)).collect());
        assert_eq!(counts.len(), shards, "every shard counts the same shards");
    }

    fn counts(&self) -> &[AtomicU64] {
        self.counts
            .get()
            .expect("the counts are sized before anything is counted")
    }

    /// The count of `shard`.
    pub fn get(&self, shard: ShardId) -> u64 {
        self.counts()[shard.0].load(Ordering::Relaxed)
    }

    /// On `shard`: one more.
    pub fn increment(&self, shard: ShardId) {
        self.counts()[shard.0].fetch_add(1, Ordering::Relaxed);
    }

    /// On `shard`: one fewer.
    pub fn decrement(&self, shard: ShardId) {
        let before = self.counts()[shard.0].fetch_sub(1, Ordering::Relaxed);
        assert!(before > 0, "{shard} counted below zero");
    }

    /// On `here`, for a unit it has just counted: the shard with the lowest count, when
    /// that is at least two below `here`'s (so moving the unit there evens the two out
    /// and never leaves them further apart).
    pub fn emptier_than(&self, here: ShardId) -> Option<ShardId> {
        let counts = self.counts();
        let mine = counts[here.0].load(Ordering::Relaxed);
        let (fewest, count) = counts
            .iter()
            .enumerate()
            .map(|(shard, count)| (shard, count.load(Ordering::Relaxed)))
            .min_by_key(|&(shard, count)| (count, shard != here.0))?;
        (count + 2 <= mine).then_some(ShardId(fewest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving(counts: &[u64]) -> ShardCounts {
        let open = ShardCounts::default();
        open.init(counts.len());
        for (shard, count) in counts.iter().enumerate() {
            for _ in 0..*count {
                open.increment(ShardId(shard));
            }
        }
        open
    }

    #[test]
    fn a_unit_moves_only_to_a_shard_at_least_two_below() {
        // The deciding shard's count already holds the new unit.
        assert_eq!(serving(&[1, 0]).emptier_than(ShardId(0)), None);
        assert_eq!(serving(&[2, 1]).emptier_than(ShardId(0)), None);
        assert_eq!(serving(&[2, 0]).emptier_than(ShardId(0)), Some(ShardId(1)));
        assert_eq!(serving(&[0, 5]).emptier_than(ShardId(1)), Some(ShardId(0)));
        assert_eq!(
            serving(&[4, 3, 1, 2]).emptier_than(ShardId(0)),
            Some(ShardId(2))
        );
        // A tie with the deciding shard keeps the unit where it is.
        assert_eq!(serving(&[1, 1, 3]).emptier_than(ShardId(0)), None);
        assert_eq!(serving(&[1]).emptier_than(ShardId(0)), None);
    }

    #[test]
    fn counts_follow_increments_and_decrements() {
        let open = serving(&[3, 1]);
        open.decrement(ShardId(0));
        open.decrement(ShardId(0));
        assert_eq!(open.get(ShardId(0)), 1);
        assert_eq!(open.get(ShardId(1)), 1);
    }
}
