//! TxnOffsetCommit (key 28): a transactional producer's consumer offsets, written in one
//! transactional batch to the group's `__consumer_offsets` partition on its coordinator
//! shard and answered once durable; they stay pending until the transaction's marker
//! (`GroupCoordinator::complete_txn`). Kafka 4.x serves v0 and later.

use super::{Handler, RequestContext, newest};
use crate::groups::txn_offset_commit_response;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::txn_offset_commit_request::TxnOffsetCommitRequest;
use crate::protocol::generated::txn_offset_commit_response::TxnOffsetCommitResponse;
use crate::security::AclOperation;

pub struct TxnOffsetCommit;

impl Handler for TxnOffsetCommit {
    type Request = TxnOffsetCommitRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::TxnOffsetCommit),
    };

    async fn handle(
        ctx: &RequestContext,
        request: TxnOffsetCommitRequest,
    ) -> Option<TxnOffsetCommitResponse> {
        // Kafka's checks: READ on the group, WRITE on the transactional id.
        let denied = if !ctx.authorize_group(AclOperation::Read, &request.group_id) {
            Some(ErrorCode::GroupAuthorizationFailed)
        } else if !ctx.authorize_transactional_id(AclOperation::Write, &request.transactional_id) {
            Some(ErrorCode::TransactionalIdAuthorizationFailed)
        } else {
            None
        };
        if let Some(code) = denied {
            let code = code.code();
            return Some(txn_offset_commit_response(&request, &|_, _| code));
        }
        let shard = match ctx.router.group_coordinator(&request.group_id) {
            Ok(shard) => shard,
            Err(code) => {
                return Some(txn_offset_commit_response(&request, &|_, _| code.code()));
            }
        };
        let answer = ctx
            .router
            .call(shard, move |router, _| async move {
                let shard = router.state();
                shard
                    .groups
                    .txn_offset_commit(&shard.metadata, request)
                    .await
            })
            .await;
        Some(answer)
    }
}
