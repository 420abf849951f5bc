//! What a group coordinator refuses or fails at, one variant per reason, and the one
//! place each becomes a Kafka error code (`GroupError::code`).
//!
//! The state machines (`classic`, `consumer`) and the coordinator return
//! `Result<_, GroupError>`; a code reaches the wire only where a response is built:
//! the coordinator's own responses, a waiting member's JoinGroup or SyncGroup answer,
//! or the handler of an API whose answer is a bare code (Heartbeat, DeleteGroups).
//! Pure data, no shard of its own. Invariant: `code` matches every variant by name,
//! so a new variant cannot reach a client without a code chosen for it.

use crate::protocol::ErrorCode;

/// Why a group request was refused or could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupError {
    // ---- the coordinator ----
    /// `__consumer_offsets` does not exist yet, the group is dead, a member's waiting
    /// call ended unanswered, or the offsets partition refused a write for another
    /// reason.
    CoordinatorNotAvailable,
    /// The group's offsets partition is not (or no longer) this shard's.
    NotCoordinator,
    /// A coordinator record did not encode.
    UnknownServerError,
    /// A commit's records are too large for the offsets partition.
    InvalidCommitOffsetSize,

    // ---- the request ----
    /// An empty group id, or one too long for the group's records.
    InvalidGroupId,
    /// A field out of bounds for the group's records, or a malformed
    /// ConsumerGroupHeartbeat.
    InvalidRequest,
    /// A JoinGroup session timeout outside `group.{min,max}.session.timeout.ms`.
    InvalidSessionTimeout,
    /// A ConsumerGroupHeartbeat asks for an assignor not in `group.consumer.assignors`.
    UnsupportedAssignor,
    /// A ConsumerGroupHeartbeat's topic regex does not compile.
    InvalidRegularExpression,
    /// An OffsetCommit older than v9 against a KIP-848 member.
    UnsupportedVersion,

    // ---- the group ----
    /// No such group (DeleteGroups, OffsetDelete, describing), or a group of the other
    /// protocol.
    GroupIdNotFound,
    /// The group has members, so it cannot be deleted (or its offsets touched).
    NonEmptyGroup,
    /// The group is at `group.max.size` or `group.consumer.max.size`.
    GroupMaxSizeReached,
    /// No protocol in common with the group, or another protocol type.
    InconsistentGroupProtocol,
    /// OffsetDelete of a topic the group's members subscribe to.
    GroupSubscribedToTopic,

    // ---- the member ----
    /// The member is not (or no longer) in the group.
    UnknownMemberId,
    /// A new dynamic member must join again with the id it was given (KIP-394).
    MemberIdRequired,
    /// A classic member's generation is not the group's.
    IllegalGeneration,
    /// The group is rebalancing: the member must (re)join.
    RebalanceInProgress,
    /// Another member id now holds the member's static instance id.
    FencedInstanceId,
    /// A static instance id still held by a member that has not left.
    UnreleasedInstanceId,
    /// A KIP-848 member's epoch is not one the coordinator accepts: it must rejoin.
    FencedMemberEpoch,
    /// A KIP-848 member commits or fetches offsets under an epoch not its current one.
    StaleMemberEpoch,

    // ---- the producer (TxnOffsetCommit) ----
    /// The producer's epoch is older than one already written to the offsets partition:
    /// a newer incarnation of the transactional producer fenced it.
    InvalidProducerEpoch,

    // ---- an offset ----
    /// A committed offset for a topic or partition that does not exist.
    UnknownTopicOrPartition,
    /// Committed metadata longer than `offset.metadata.max.bytes`.
    OffsetMetadataTooLarge,
    /// OffsetFetch with `require_stable`: a transaction holds an offset of the partition
    /// not yet committed or aborted.
    UnstableOffsetCommit,
}

impl GroupError {
    /// The Kafka error code a client is told.
    pub fn code(self) -> ErrorCode {
        match self {
            GroupError::CoordinatorNotAvailable => ErrorCode::CoordinatorNotAvailable,
            GroupError::NotCoordinator => ErrorCode::NotCoordinator,
            GroupError::UnknownServerError => ErrorCode::UnknownServerError,
            GroupError::InvalidCommitOffsetSize => ErrorCode::InvalidCommitOffsetSize,
            GroupError::InvalidGroupId => ErrorCode::InvalidGroupId,
            GroupError::InvalidRequest => ErrorCode::InvalidRequest,
            GroupError::InvalidSessionTimeout => ErrorCode::InvalidSessionTimeout,
            GroupError::UnsupportedAssignor => ErrorCode::UnsupportedAssignor,
            GroupError::InvalidRegularExpression => ErrorCode::InvalidRegularExpression,
            GroupError::UnsupportedVersion => ErrorCode::UnsupportedVersion,
            GroupError::GroupIdNotFound => ErrorCode::GroupIdNotFound,
            GroupError::NonEmptyGroup => ErrorCode::NonEmptyGroup,
            GroupError::GroupMaxSizeReached => ErrorCode::GroupMaxSizeReached,
            GroupError::InconsistentGroupProtocol => ErrorCode::InconsistentGroupProtocol,
            GroupError::GroupSubscribedToTopic => ErrorCode::GroupSubscribedToTopic,
            GroupError::UnknownMemberId => ErrorCode::UnknownMemberId,
            GroupError::MemberIdRequired => ErrorCode::MemberIdRequired,
            GroupError::IllegalGeneration => ErrorCode::IllegalGeneration,
            GroupError::RebalanceInProgress => ErrorCode::RebalanceInProgress,
            GroupError::FencedInstanceId => ErrorCode::FencedInstanceId,
            GroupError::UnreleasedInstanceId => ErrorCode::UnreleasedInstanceId,
            GroupError::FencedMemberEpoch => ErrorCode::FencedMemberEpoch,
            GroupError::StaleMemberEpoch => ErrorCode::StaleMemberEpoch,
            GroupError::InvalidProducerEpoch => ErrorCode::InvalidProducerEpoch,
            GroupError::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            GroupError::OffsetMetadataTooLarge => ErrorCode::OffsetMetadataTooLarge,
            GroupError::UnstableOffsetCommit => ErrorCode::UnstableOffsetCommit,
        }
    }
}

/// The error code of a response or of one of its parts: 0 when the request succeeded.
pub fn response_code(result: Result<(), GroupError>) -> i16 {
    match result {
        Ok(()) => 0,
        Err(error) => error.code().code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_an_error_on_the_wire() {
        // Each variant is a failure: none may reach a client as NONE (0).
        for error in [
            GroupError::CoordinatorNotAvailable,
            GroupError::NotCoordinator,
            GroupError::UnknownServerError,
            GroupError::InvalidCommitOffsetSize,
            GroupError::InvalidGroupId,
            GroupError::InvalidRequest,
            GroupError::InvalidSessionTimeout,
            GroupError::UnsupportedAssignor,
            GroupError::InvalidRegularExpression,
            GroupError::UnsupportedVersion,
            GroupError::GroupIdNotFound,
            GroupError::NonEmptyGroup,
            GroupError::GroupMaxSizeReached,
            GroupError::InconsistentGroupProtocol,
            GroupError::GroupSubscribedToTopic,
            GroupError::UnknownMemberId,
            GroupError::MemberIdRequired,
            GroupError::IllegalGeneration,
            GroupError::RebalanceInProgress,
            GroupError::FencedInstanceId,
            GroupError::UnreleasedInstanceId,
            GroupError::FencedMemberEpoch,
            GroupError::StaleMemberEpoch,
            GroupError::InvalidProducerEpoch,
            GroupError::UnknownTopicOrPartition,
            GroupError::OffsetMetadataTooLarge,
            GroupError::UnstableOffsetCommit,
        ] {
            assert_ne!(response_code(Err(error)), 0, "{error:?}");
        }
        assert_eq!(response_code(Ok(())), 0);
    }
}
