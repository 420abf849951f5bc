//! What the transaction coordinator refuses or fails at, one variant per reason, and the
//! one place each becomes a Kafka error code (`TxnError::code`).
//!
//! The coordinator and its environment (`TxnEnv`) return `Result<_, TxnError>`; a code
//! reaches the wire only where a response is built, through `code` or, for the APIs whose
//! old versions predate PRODUCER_FENCED, `code_for`. Pure data, no shard of its own.
//! Invariant: `code` matches every variant by name, so a new variant cannot reach a
//! client without a code chosen for it.

use crate::protocol::ErrorCode;
use crate::protocol::generated::ApiKey;

/// Why a transaction request was refused or could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnError {
    // ---- the coordinator ----
    /// `__transaction_state` does not exist yet, or a write to it failed in a way worth
    /// retrying.
    CoordinatorNotAvailable,
    /// The transactional id's `__transaction_state` partition is not (or no longer) this
    /// shard's.
    NotCoordinator,
    /// The partition is being replayed.
    CoordinatorLoadInProgress,
    /// A record did not encode, or a write failed for a reason a retry will not cure.
    UnknownServerError,

    // ---- the request ----
    /// An empty transactional id.
    InvalidRequest,
    /// A transaction timeout not in `1..=transaction.max.timeout.ms`.
    InvalidTransactionTimeout,

    // ---- the producer ----
    /// The transactional id is unknown, or holds another producer id.
    InvalidProducerIdMapping,
    /// The producer's epoch is not the transactional id's: a newer producer has fenced
    /// it. Older request versions call this INVALID_PRODUCER_EPOCH (`code_for`).
    ProducerFenced,

    // ---- the transaction ----
    /// Another operation on the transactional id is in flight, or its transaction is
    /// being completed: retry later.
    ConcurrentTransactions,
    /// The request does not fit the transaction's state (EndTxn without a transaction,
    /// a commit of an aborted one, …).
    InvalidTxnState,
    /// KIP-890 verification: the partition is not in the producer's transaction.
    TransactionAbortable,
    /// DescribeTransactions of an id this coordinator does not hold.
    TransactionalIdNotFound,

    // ---- a partition of AddPartitionsToTxn (decided by the handler) ----
    /// The topic or partition does not exist.
    UnknownTopicOrPartition,
    /// Another partition of the request failed, so this one was not tried.
    OperationNotAttempted,
}

impl TxnError {
    /// The Kafka error code a client is told.
    pub fn code(self) -> ErrorCode {
        match self {
            TxnError::CoordinatorNotAvailable => ErrorCode::CoordinatorNotAvailable,
            TxnError::NotCoordinator => ErrorCode::NotCoordinator,
            TxnError::CoordinatorLoadInProgress => ErrorCode::CoordinatorLoadInProgress,
            TxnError::UnknownServerError => ErrorCode::UnknownServerError,
            TxnError::InvalidRequest => ErrorCode::InvalidRequest,
            TxnError::InvalidTransactionTimeout => ErrorCode::InvalidTransactionTimeout,
            TxnError::InvalidProducerIdMapping => ErrorCode::InvalidProducerIdMapping,
            TxnError::ProducerFenced => ErrorCode::ProducerFenced,
            TxnError::ConcurrentTransactions => ErrorCode::ConcurrentTransactions,
            TxnError::InvalidTxnState => ErrorCode::InvalidTxnState,
            TxnError::TransactionAbortable => ErrorCode::TransactionAbortable,
            TxnError::TransactionalIdNotFound => ErrorCode::TransactionalIdNotFound,
            TxnError::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            TxnError::OperationNotAttempted => ErrorCode::OperationNotAttempted,
        }
    }

    /// The code for a response of `api` at `version`. PRODUCER_FENCED (90) exists from
    /// InitProducerId v4 and AddPartitionsToTxn, AddOffsetsToTxn and EndTxn v2; Kafka
    /// tells older clients INVALID_PRODUCER_EPOCH (47), which they know.
    pub fn code_for(self, api: ApiKey, version: i16) -> ErrorCode {
        let fenced_from = match api {
            ApiKey::InitProducerId => 4,
            ApiKey::AddPartitionsToTxn | ApiKey::AddOffsetsToTxn | ApiKey::EndTxn => 2,
            _ => 0,
        };
        match self {
            TxnError::ProducerFenced if version < fenced_from => ErrorCode::InvalidProducerEpoch,
            other => other.code(),
        }
    }
}

impl std::fmt::Display for TxnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code().name())
    }
}

/// The error code of a response or of one of its parts: 0 when the request succeeded.
pub fn response_code(result: Result<(), TxnError>) -> i16 {
    match result {
        Ok(()) => 0,
        Err(error) => error.code().code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [TxnError; 14] = [
        TxnError::CoordinatorNotAvailable,
        TxnError::NotCoordinator,
        TxnError::CoordinatorLoadInProgress,
        TxnError::UnknownServerError,
        TxnError::InvalidRequest,
        TxnError::InvalidTransactionTimeout,
        TxnError::InvalidProducerIdMapping,
        TxnError::ProducerFenced,
        TxnError::ConcurrentTransactions,
        TxnError::InvalidTxnState,
        TxnError::TransactionAbortable,
        TxnError::TransactionalIdNotFound,
        TxnError::UnknownTopicOrPartition,
        TxnError::OperationNotAttempted,
    ];

    #[test]
    fn every_refusal_is_an_error_on_the_wire() {
        for error in ALL {
            assert_ne!(response_code(Err(error)), 0, "{error:?}");
        }
        assert_eq!(response_code(Ok(())), 0);
    }

    #[test]
    fn old_versions_hear_invalid_producer_epoch_for_a_fenced_producer() {
        let fenced = TxnError::ProducerFenced;
        assert_eq!(
            fenced.code_for(ApiKey::InitProducerId, 3),
            ErrorCode::InvalidProducerEpoch
        );
        assert_eq!(
            fenced.code_for(ApiKey::InitProducerId, 4),
            ErrorCode::ProducerFenced
        );
        for api in [
            ApiKey::AddPartitionsToTxn,
            ApiKey::AddOffsetsToTxn,
            ApiKey::EndTxn,
        ] {
            assert_eq!(fenced.code_for(api, 1), ErrorCode::InvalidProducerEpoch);
            assert_eq!(fenced.code_for(api, 2), ErrorCode::ProducerFenced);
        }
        assert_eq!(
            TxnError::ConcurrentTransactions.code_for(ApiKey::EndTxn, 0),
            ErrorCode::ConcurrentTransactions
        );
    }
}
