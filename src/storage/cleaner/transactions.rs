//! What the cleaner knows of transactions as it walks the log in offset order (Kafka's
//! `CleanedTransactionMetadata`): which data batches belong to aborted transactions (they
//! go, and stay out of the offset map), and when a transaction marker may go — only once
//! no batch of its transaction is left, so that a read_committed consumer never meets
//! transactional data without its marker. It also collects the aborted transactions
//! whose markers a cleaned segment keeps: its new `.txnindex`.
//!
//! Lives for one cleaning pass on the log's shard; fed the log's aborted transactions
//! (`ProducerStates`) per segment before that segment is read.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::model::ProducerId;
use crate::protocol::records::BatchHeader;
use crate::storage::producers::{AbortedTxn, Marker};

#[derive(Default)]
pub(crate) struct CleanedTransactions {
    /// Aborted transactions not reached yet, by first offset.
    pending: BTreeSet<(i64, i64, i64)>,
    /// Everything ever added, so a transaction reported for two segments counts once.
    known: HashSet<(i64, i64)>,
    details: HashMap<(i64, i64), AbortedTxn>,
    /// Aborted transactions under way at this point of the walk, by producer: the
    /// transaction and the last offset of a batch of it seen (none yet: `None`).
    aborted: HashMap<i64, (AbortedTxn, Option<i64>)>,
    /// Producers whose (not aborted) transaction had a batch seen since its last marker.
    committed: HashSet<i64>,
    /// Aborted transactions whose markers are kept, in marker order (the cleaned
    /// segment's `.txnindex`).
    pub kept_aborted: Vec<AbortedTxn>,
}

impl CleanedTransactions {
    /// Adds aborted transactions of the range about to be read.
    pub fn add_aborted(&mut self, txns: impl IntoIterator<Item = AbortedTxn>) {
        for txn in txns {
            let id = (txn.producer_id.0, txn.last_offset.0);
            if self.known.insert(id) {
                self.pending.insert((txn.first_offset.0, id.0, id.1));
                self.details.insert(id, txn);
            }
        }
    }

    fn reach(&mut self, offset: i64) {
        while let Some(&first) = self.pending.first() {
            if first.0 > offset {
                break;
            }
            self.pending.pop_first();
            let txn = self.details[&(first.1, first.2)];
            self.aborted.entry(first.1).or_insert((txn, None));
        }
    }

    /// A data batch was read: true if it belongs to an aborted transaction (it may go).
    pub fn on_batch(&mut self, h: &BatchHeader) -> bool {
        self.reach(h.last_offset());
        if !h.is_transactional() {
            return false;
        }
        match self.aborted.get_mut(&h.producer_id) {
            Some((_, seen)) => {
                *seen = Some(h.last_offset());
                true
            }
            None => {
                self.committed.insert(h.producer_id);
                false
            }
        }
    }

    /// A control batch was read (`marker`: what it carries, `None` for an emptied one or
    /// another control type): true if it may go, once its delete horizon passed.
    pub fn on_control_batch(
        &mut self,
        h: &BatchHeader,
        marker: Option<Marker>,
        empty: bool,
    ) -> bool {
        self.reach(h.last_offset());
        if empty {
            // Emptied by an earlier cleaning: it carries nothing any more.
            return true;
        }
        let Some(marker) = marker else {
            return false;
        };
        let producer = ProducerId(h.producer_id).0;
        if marker.commit {
            return !self.committed.remove(&producer);
        }
        match self.aborted.remove(&producer) {
            // Batches of the transaction are still in the log: keep the marker, and the
            // transaction in the index.
            Some((txn, Some(_))) => {
                self.kept_aborted.push(txn);
                false
            }
            _ => true,
        }
    }
}
