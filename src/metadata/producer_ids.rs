//! Producer ids: unique across the broker and across restarts, handed out in blocks.
//!
//! The controller (shard 0) owns the next unallocated id and persists the end of every
//! block it hands out before handing it out (`store::save_next_producer_id`), so no id is
//! ever given twice, even across a crash (a crash only skips the rest of a block). Each
//! shard draws ids from its own block ([`ProducerIdPool`]) and asks the controller for a
//! new block when it runs out — the shape Kafka's `AllocateProducerIds` gives a cluster,
//! where brokers ask the controller quorum for blocks.

use crate::model::ProducerId;
use std::cell::Cell;

/// Ids per block (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// A range of producer ids `[first, first + size)` allocated to one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdBlock {
    pub first: i64,
    pub size: i64,
}

impl ProducerIdBlock {
    pub fn starting_at(first: i64) -> ProducerIdBlock {
        assert!(first >= 0, "producer ids are not negative");
        ProducerIdBlock {
            first,
            size: PRODUCER_ID_BLOCK_SIZE,
        }
    }

    /// One past the block's last id: where the next block starts.
    pub fn end(&self) -> i64 {
        self.first + self.size
    }
}

/// The ids a shard may still hand out.
#[derive(Debug, Default)]
pub struct ProducerIdPool {
    next: Cell<i64>,
    end: Cell<i64>,
}

impl ProducerIdPool {
    /// The next id of the current block, if any is left.
    pub fn take(&self) -> Option<ProducerId> {
        let next = self.next.get();
        if next >= self.end.get() {
            return None;
        }
        self.next.set(next + 1);
        Some(ProducerId(next))
    }

    /// Replaces the current block (what is left of it is never used).
    pub fn refill(&self, block: ProducerIdBlock) {
        self.next.set(block.first);
        self.end.set(block.end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_hands_out_its_block_once() {
        let pool = ProducerIdPool::default();
        assert_eq!(pool.take(), None);
        pool.refill(ProducerIdBlock::starting_at(2000));
        let ids: Vec<i64> = std::iter::from_fn(|| pool.take()).map(|p| p.0).collect();
        assert_eq!(ids, (2000..3000).collect::<Vec<_>>());
    }
}
