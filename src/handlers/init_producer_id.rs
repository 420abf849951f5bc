//! InitProducerId (key 22): a producer id and epoch for an idempotent producer, or for a
//! transactional one from its transaction coordinator.
//!
//! Without a transactional id, as Kafka does, every call gets a new producer id with
//! epoch 0 (a producer that lost its sequence state starts over under a new id); the id
//! comes from this shard's block of ids (`Router::new_producer_id`). With one, the
//! transaction coordinator of the id answers: a new id, or the same id with its epoch
//! bumped (fencing any older producer of that transactional id, after aborting its open
//! transaction).

use super::{Handler, RequestContext, newest};
use crate::model::{ProducerEpoch, ProducerId};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::init_producer_id_request::InitProducerIdRequest;
use crate::protocol::generated::init_producer_id_response::InitProducerIdResponse;
use crate::routing::transactions::ShardTxnEnv;
use crate::security::{AclOperation, ResourceType};

pub struct InitProducerId;

impl Handler for InitProducerId {
    type Request = InitProducerIdRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::InitProducerId),
    };

    async fn handle(
        ctx: &RequestContext,
        request: InitProducerIdRequest,
    ) -> Option<InitProducerIdResponse> {
        let answer = |result: Result<(ProducerId, ProducerEpoch), ErrorCode>| {
            let (error_code, producer_id, producer_epoch) = match result {
                Ok((id, epoch)) => (0, id.0, epoch.0),
                Err(code) => (code.code(), -1, -1),
            };
            Some(InitProducerIdResponse {
                error_code,
                producer_id,
                producer_epoch,
                ..InitProducerIdResponse::default()
            })
        };
        // Kafka's checks: WRITE on the transactional id; an idempotent producer needs
        // IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
        match &request.transactional_id {
            Some(id) if !ctx.authorize_transactional_id(AclOperation::Write, id) => {
                return answer(Err(ErrorCode::TransactionalIdAuthorizationFailed));
            }
            None if !ctx.authorize_cluster(AclOperation::IdempotentWrite)
                && !ctx.authorize_any(AclOperation::Write, ResourceType::Topic) =>
            {
                return answer(Err(ErrorCode::ClusterAuthorizationFailed));
            }
            _ => {}
        }
        match request.transactional_id {
            None => answer(Ok((ctx.router.new_producer_id().await, ProducerEpoch(0)))),
            Some(id) => {
                let timeout_ms = request.transaction_timeout_ms;
                let expected = (request.producer_id >= 0).then_some((
                    ProducerId(request.producer_id),
                    ProducerEpoch(request.producer_epoch),
                ));
                let version = ctx.version;
                let inited = ctx
                    .router
                    .on_txn_coordinator(&id.clone(), move |router| async move {
                        let coordinator = router.state().transactions.clone();
                        coordinator
                            .init_producer_id(&ShardTxnEnv(&router), &id, timeout_ms, expected)
                            .await
                            .map_err(|e| e.code_for(ApiKey::InitProducerId, version))
                    })
                    .await;
                answer(inited.and_then(|r| r))
            }
        }
    }
}
