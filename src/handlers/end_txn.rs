//! EndTxn (key 26): commits or aborts a producer's transaction on its transaction
//! coordinator's shard. Answered once the decision (PrepareCommit/PrepareAbort), every
//! partition's marker and the completion are durable.

use super::{Handler, RequestContext, newest};
use crate::model::{ProducerEpoch, ProducerId};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::end_txn_request::EndTxnRequest;
use crate::protocol::generated::end_txn_response::EndTxnResponse;
use crate::routing::transactions::ShardTxnEnv;
use crate::security::AclOperation;

pub struct EndTxn;

impl Handler for EndTxn {
    type Request = EndTxnRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::EndTxn),
    };

    async fn handle(ctx: &RequestContext, request: EndTxnRequest) -> Option<EndTxnResponse> {
        let id = request.transactional_id.clone();
        let (pid, epoch) = (
            ProducerId(request.producer_id),
            ProducerEpoch(request.producer_epoch),
        );
        let commit = request.committed;
        // Kafka's check: WRITE on the transactional id.
        if !ctx.authorize_transactional_id(AclOperation::Write, &request.transactional_id) {
            return Some(EndTxnResponse {
                error_code: ErrorCode::TransactionalIdAuthorizationFailed.code(),
                ..EndTxnResponse::default()
            });
        }
        let ended = ctx
            .router
            .on_txn_coordinator(&request.transactional_id, move |router| async move {
                let coordinator = router.state().transactions.clone();
                coordinator
                    .end_txn(&ShardTxnEnv(&router), &id, pid, epoch, commit)
                    .await
            })
            .await;
        let error_code = match ended {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => e.code_for(ApiKey::EndTxn, ctx.version).code(),
            Err(code) => code.code(),
        };
        Some(EndTxnResponse {
            error_code,
            producer_id: -1,
            producer_epoch: -1,
            ..EndTxnResponse::default()
        })
    }
}
