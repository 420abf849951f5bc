//! A transactional id's state as the coordinator keeps it (Kafka's `TransactionMetadata`)
//! and the states a transaction goes through (`TransactionState`).
//!
//! ```text
//! Empty, Complete* ─AddPartitions─► Ongoing ─EndTxn(commit)─► PrepareCommit ─markers─► CompleteCommit
//!                                     │ EndTxn(abort), timeout, InitProducerId (fence)
//!                                     └──────────────────────► PrepareAbort ──markers─► CompleteAbort
//! Empty, Complete* ─InitProducerId (epoch bump)─► Empty
//! Empty, Complete* ─transactional.id.expiration.ms─► Dead (a tombstone)
//! ```
//!
//! Pure data, no shard of its own. Invariants: `pending` names the state an operation in
//! flight is moving to (its record is being written); while it is set no other operation
//! may start on the id (CONCURRENT_TRANSACTIONS), and the other fields are those of the
//! last record made durable.

use crate::model::{ProducerEpoch, ProducerId, Timestamp, TopicPartition};
use std::collections::BTreeSet;
use std::fmt;

/// Kafka's transaction states, with the ids `TransactionLogValue.TransactionStatus` stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction in progress (after InitProducerId).
    Empty = 0,
    /// Partitions were added: a transaction is in progress.
    Ongoing = 1,
    /// The commit is decided; markers are being written.
    PrepareCommit = 2,
    /// The abort is decided; markers are being written.
    PrepareAbort = 3,
    /// Every partition has its COMMIT marker.
    CompleteCommit = 4,
    /// Every partition has its ABORT marker.
    CompleteAbort = 5,
    /// The transactional id has expired and is being removed (its tombstone is written).
    Dead = 6,
    /// The coordinator is fencing the producer (epoch bump) before aborting its
    /// transaction; Kafka holds it only as a pending state.
    PrepareEpochFence = 7,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// The id stored in `TransactionLogValue.TransactionStatus`.
    pub fn id(self) -> i8 {
        self as i8
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's name, as DescribeTransactions and ListTransactions report it.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state a ListTransactions state filter names (Kafka's names, exactly).
    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether a transactional id in `self` may move to `next` (Kafka's valid previous
    /// states, read the other way round).
    pub fn can_transition_to(self, next: TxnState) -> bool {
        use TxnState::*;
        let from: &[TxnState] = match next {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteCommit, CompleteAbort],
            PrepareEpochFence => &[Ongoing],
        };
        from.contains(&self)
    }

    /// A decided transaction whose markers are not all written yet.
    pub fn is_prepared(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }
}

impl fmt::Display for TxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Kafka: an epoch this high leaves only the one bump a fence needs, so InitProducerId
/// gives the transactional id a new producer id instead of bumping it.
pub fn epoch_exhausted(epoch: ProducerEpoch) -> bool {
    epoch.0 >= i16::MAX - 1
}

/// Everything the coordinator knows of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: ProducerId,
    /// The producer id this one replaced when its epochs ran out (`NONE` otherwise), so a
    /// retried InitProducerId of the old id is recognised (KIP-360).
    pub previous_producer_id: ProducerId,
    /// Transaction version 2's next producer id; kept from the log, never set here.
    pub next_producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    /// The epoch before the last InitProducerId bump, so its retry gets the same answer
    /// (KIP-360). Not stored in the log: `NONE` after a load, as in Kafka.
    pub last_producer_epoch: ProducerEpoch,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions of the transaction in progress (or being completed).
    pub partitions: BTreeSet<TopicPartition>,
    /// When the transaction in progress started (`NONE` without one).
    pub start: Timestamp,
    pub last_update: Timestamp,
    /// The state an operation in flight is writing; `None` when idle.
    pub pending: Option<TxnState>,
}

impl TxnMetadata {
    /// A transactional id InitProducerId has just given `producer_id`, before its first
    /// record is written (epoch `NONE`, so the first bump makes it 0).
    pub fn new(
        transactional_id: &str,
        producer_id: ProducerId,
        timeout_ms: i32,
        now: Timestamp,
    ) -> TxnMetadata {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            previous_producer_id: ProducerId::NONE,
            next_producer_id: ProducerId::NONE,
            producer_epoch: ProducerEpoch::NONE,
            last_producer_epoch: ProducerEpoch::NONE,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start: Timestamp::NONE,
            last_update: now,
            pending: None,
        }
    }

    /// The metadata after moving to `state` at `now`, with no operation pending.
    pub fn moved_to(&self, state: TxnState, now: Timestamp) -> TxnMetadata {
        TxnMetadata {
            state,
            last_update: now,
            pending: None,
            ..self.clone()
        }
    }

    /// Whether the transaction in progress has outlived its timeout at `now`.
    pub fn timed_out(&self, now: Timestamp) -> bool {
        self.state == TxnState::Ongoing
            && self.pending.is_none()
            && self.start.0.saturating_add(i64::from(self.timeout_ms)) < now.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_kafkas() {
        for (state, id, name) in [
            (TxnState::Empty, 0, "Empty"),
            (TxnState::Ongoing, 1, "Ongoing"),
            (TxnState::PrepareCommit, 2, "PrepareCommit"),
            (TxnState::PrepareAbort, 3, "PrepareAbort"),
            (TxnState::CompleteCommit, 4, "CompleteCommit"),
            (TxnState::CompleteAbort, 5, "CompleteAbort"),
            (TxnState::Dead, 6, "Dead"),
            (TxnState::PrepareEpochFence, 7, "PrepareEpochFence"),
        ] {
            assert_eq!(state.id(), id);
            assert_eq!(TxnState::from_id(id), Some(state));
            assert_eq!(TxnState::from_name(name), Some(state));
            assert_eq!(state.to_string(), name);
        }
        assert_eq!(TxnState::from_id(8), None);
        assert_eq!(TxnState::from_name("ongoing"), None);
    }

    #[test]
    fn transitions_follow_kafkas_table() {
        use TxnState::*;
        assert!(Empty.can_transition_to(Ongoing));
        assert!(Ongoing.can_transition_to(Ongoing));
        assert!(Ongoing.can_transition_to(PrepareCommit));
        assert!(PrepareCommit.can_transition_to(CompleteCommit));
        assert!(CompleteCommit.can_transition_to(Empty));
        assert!(CompleteAbort.can_transition_to(Dead));
        assert!(PrepareEpochFence.can_transition_to(PrepareAbort));
        assert!(!Empty.can_transition_to(PrepareCommit));
        assert!(!PrepareCommit.can_transition_to(CompleteAbort));
        assert!(!Ongoing.can_transition_to(Dead));
        assert!(!Dead.can_transition_to(Empty));
        assert!(epoch_exhausted(ProducerEpoch(i16::MAX - 1)));
        assert!(!epoch_exhausted(ProducerEpoch(i16::MAX - 2)));
    }
}
