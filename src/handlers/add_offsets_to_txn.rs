//! AddOffsetsToTxn (key 25): the group's `__consumer_offsets` partition joins a
//! producer's transaction (so its TxnOffsetCommit is committed or aborted with it), on
//! the transaction coordinator's shard.

use super::{Handler, RequestContext, newest};
use crate::groups::{OFFSETS_TOPIC, offsets_partition};
use crate::metadata::TopicPartition;
use crate::model::{ProducerEpoch, ProducerId};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use crate::protocol::generated::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use crate::routing::transactions::ShardTxnEnv;
use crate::security::AclOperation;

pub struct AddOffsetsToTxn;

impl Handler for AddOffsetsToTxn {
    type Request = AddOffsetsToTxnRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::AddOffsetsToTxn),
    };

    async fn handle(
        ctx: &RequestContext,
        request: AddOffsetsToTxnRequest,
    ) -> Option<AddOffsetsToTxnResponse> {
        let partitions = ctx
            .shard
            .metadata
            .borrow()
            .topic(OFFSETS_TOPIC)
            .map(|t| t.partitions);
        // Kafka's checks: WRITE on the transactional id, READ on the group.
        let denied =
            if !ctx.authorize_transactional_id(AclOperation::Write, &request.transactional_id) {
                Some(ErrorCode::TransactionalIdAuthorizationFailed)
            } else if !ctx.authorize_group(AclOperation::Read, &request.group_id) {
                Some(ErrorCode::GroupAuthorizationFailed)
            } else {
                None
            };
        let error_code = match partitions {
            _ if denied.is_some() => denied.map_or(0, ErrorCode::code),
            // The group coordinator's topic does not exist yet: FindCoordinator first.
            None => ErrorCode::CoordinatorNotAvailable.code(),
            Some(count) => {
                let tp =
                    TopicPartition::new(OFFSETS_TOPIC, offsets_partition(&request.group_id, count));
                let id = request.transactional_id.clone();
                let (pid, epoch) = (
                    ProducerId(request.producer_id),
                    ProducerEpoch(request.producer_epoch),
                );
                let added = ctx
                    .router
                    .on_txn_coordinator(&request.transactional_id, move |router| async move {
                        let coordinator = router.state().transactions.clone();
                        coordinator
                            .add_offsets(&ShardTxnEnv(&router), &id, pid, epoch, tp)
                            .await
                    })
                    .await;
                match added {
                    Ok(Ok(())) => 0,
                    Ok(Err(e)) => e.code_for(ApiKey::AddOffsetsToTxn, ctx.version).code(),
                    Err(code) => code.code(),
                }
            }
        };
        Some(AddOffsetsToTxnResponse {
            error_code,
            ..AddOffsetsToTxnResponse::default()
        })
    }
}
