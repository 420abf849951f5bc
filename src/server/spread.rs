//! Spreading connections over the shards (`placement.connections.spread`): how many
//! connections each shard serves, readable by every shard, and where a connection just
//! accepted should be served.
//!
//! Every shard accepts on the same listening sockets, and the kernel hands the next
//! connection to whichever shard it wakes, so a few long-lived clients can all land on
//! one shard while short-lived ones (bootstrap and metadata connections) take the other
//! turns. A shard that accepts a connection while it serves at least two more than
//! another shard hands it to the shard serving the fewest, once, before reading from it
//! (`connection::serve_here`); a connection whose requests then all go to one shard
//! still follows its partitions there (`placement.connections.follow`).
//!
//! Invariant: each count is written only by its own shard (when one of its connections
//! starts or stops being served there); other shards only read it. A count read from
//! another shard may be a moment old, so the spread is a balance of counts, not a
//! guarantee; it never moves a connection twice.

use shards::ShardId;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The number of connections each shard serves, shared by all shards.
#[derive(Debug, Default)]
pub struct OpenConnections {
    counts: OnceLock<Box<[AtomicU64]>>,
}

impl OpenConnections {
    /// Sizes the counts for `shards` shards; every shard calls it with the same number
    /// before it serves a connection.
    pub fn init(&self, shards: usize) {
        let counts = self
            .counts
            .get_or_init(|| (0..shards).map(|_| AtomicU64::new(0)).collect());
        assert_eq!(counts.len(), shards, "every shard counts the same shards");
    }

    fn counts(&self) -> &[AtomicU64] {
        self.counts
            .get()
            .expect("the counts are sized before any connection is served")
    }

    /// Connections `shard` serves.
    pub fn serving(&self, shard: ShardId) -> u64 {
        self.counts()[shard.0].load(Ordering::Relaxed)
    }

    /// On `shard`: one more connection served there.
    pub fn opened(&self, shard: ShardId) {
        self.counts()[shard.0].fetch_add(1, Ordering::Relaxed);
    }

    /// On `shard`: one of its connections is no longer served there.
    pub fn closed(&self, shard: ShardId) {
        let before = self.counts()[shard.0].fetch_sub(1, Ordering::Relaxed);
        assert!(before > 0, "{shard} closed more connections than it opened");
    }

    /// On `here`, for a connection it has just accepted and counted: the shard serving
    /// the fewest connections, when that is at least two fewer than `here` serves (so
    /// the move leaves the two no further apart than they were, and evens them out).
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

    fn serving(counts: &[u64]) -> OpenConnections {
        let open = OpenConnections::default();
        open.init(counts.len());
        for (shard, count) in counts.iter().enumerate() {
            for _ in 0..*count {
                open.opened(ShardId(shard));
            }
        }
        open
    }

    #[test]
    fn a_connection_moves_only_to_a_shard_serving_at_least_two_fewer() {
        // The accepting shard's count already holds the new connection.
        assert_eq!(serving(&[1, 0]).emptier_than(ShardId(0)), None);
        assert_eq!(serving(&[2, 1]).emptier_than(ShardId(0)), None);
        assert_eq!(serving(&[2, 0]).emptier_than(ShardId(0)), Some(ShardId(1)));
        assert_eq!(serving(&[0, 5]).emptier_than(ShardId(1)), Some(ShardId(0)));
        assert_eq!(
            serving(&[4, 3, 1, 2]).emptier_than(ShardId(0)),
            Some(ShardId(2))
        );
        // A tie with the accepting shard keeps the connection where it is.
        assert_eq!(serving(&[1, 1, 3]).emptier_than(ShardId(0)), None);
        assert_eq!(serving(&[1]).emptier_than(ShardId(0)), None);
    }

    #[test]
    fn counts_follow_opens_and_closes() {
        let open = serving(&[3, 1]);
        open.closed(ShardId(0));
        open.closed(ShardId(0));
        assert_eq!(open.serving(ShardId(0)), 1);
        assert_eq!(open.serving(ShardId(1)), 1);
    }
}
