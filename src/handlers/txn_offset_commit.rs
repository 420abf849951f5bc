//! TxnOffsetCommit (key 28): a transactional producer's consumer offsets, written in one
//! transactional batch to the group's `__consumer_offsets` partition on its coordinator
//! shard and answered once durable; they stay pending until the transaction's marker
//! (`GroupCoordinator::complete_txn`). Kafka 4.x serves v0 and later.

use super::{Handler, RequestContext, newest};
use crate::groups::txn_offset_commit_response;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::txn_offset_commit_request::TxnOffsetCommitRequest;
use crate::protocol::generated::txn_offset_commit_response::TxnOffsetCommitResponse;

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
