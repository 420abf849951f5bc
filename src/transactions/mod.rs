//! The transaction coordinator: transactional ids, their producer ids and epochs, and
//! the two-phase completion of their transactions (Kafka's `TransactionCoordinator`).
//!
//! Transactional id T is coordinated by the shard that owns partition
//! `p = abs(hash(T)) % N` of `__transaction_state` (`transaction_partition`, Kafka's
//! partitioning), so ids spread over cores with the partitions. Every shard has one
//! `TransactionCoordinator`, which knows the ids of the partitions its shard owns and
//! nothing else; other shards reach it only through `routing`.
//!
//! State is kept as Kafka keeps it: every change that must survive is written to the
//! id's partition as a `TransactionLogKey`/`TransactionLogValue` record (`records`),
//! durably, before it becomes visible; opening a partition replays it. Committing or
//! aborting is Kafka's two phases: a Prepare record decides the outcome, COMMIT or ABORT
//! markers go to every partition of the transaction, and a Complete record ends it, so a
//! crash between markers is finished after the replay (`complete_pending`).
//!
//! The coordinator does no I/O itself: its caller passes a `TxnEnv` (append to the
//! partition, write markers, allocate producer ids, the clock) to each call, so the logic
//! is tested without shards, and the caller owns timers and routing.
//!
//! - `state`: `TxnState` (Kafka's states, ids and transitions) and `TxnMetadata`.
//! - `records`: the `__transaction_state` record formats.
//! - `error`: what the coordinator refuses or fails at (`TxnError`), and its Kafka codes.
//! - `coordinator`: `TransactionCoordinator`, one method per request, and `TxnEnv`.

pub mod coordinator;
pub mod error;
mod load;
pub mod records;
pub mod state;
#[cfg(test)]
mod tests;

pub use coordinator::{ListedTxn, TransactionCoordinator, TxnConfig, TxnEnv, TxnListing, Verdict};
pub use error::{TxnError, response_code};
pub use state::{TxnMetadata, TxnState};

use crate::config::BrokerConfig;
use crate::metadata::controller::NewTopic;

/// Kafka's internal topic of transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// `__transaction_state` as Kafka creates it: `transaction.state.log.num.partitions`
/// partitions, compacted, segments of `transaction.state.log.segment.bytes`, the
/// coordinator's codec kept.
pub fn transaction_state_topic(config: &BrokerConfig) -> NewTopic {
    NewTopic::internal(
        TRANSACTION_STATE_TOPIC,
        config.transaction_state_log_num_partitions,
        config.transaction_state_log_segment_bytes,
    )
}

/// The partition of `__transaction_state` that holds a transactional id: Kafka's
/// `Utils.abs(transactionalId.hashCode()) % partitions`.
pub fn transaction_partition(transactional_id: &str, partitions: i32) -> i32 {
    crate::model::partition_for_key(transactional_id, partitions)
}
