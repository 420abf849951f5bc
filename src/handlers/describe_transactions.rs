//! DescribeTransactions (key 65): each transactional id's state, producer, timeout and
//! partitions, from its coordinator's shard (one call per id).

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::describe_transactions_request::DescribeTransactionsRequest;
use crate::protocol::generated::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};
use crate::security::AclOperation;

pub struct DescribeTransactions;

impl Handler for DescribeTransactions {
    type Request = DescribeTransactionsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::DescribeTransactions),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DescribeTransactionsRequest,
    ) -> Option<DescribeTransactionsResponse> {
        let mut transaction_states = Vec::with_capacity(request.transactional_ids.len());
        for id in request.transactional_ids {
            // Kafka's check: DESCRIBE on the transactional id.
            if !ctx.authorize_transactional_id(AclOperation::Describe, &id) {
                transaction_states.push(TransactionState {
                    error_code: ErrorCode::TransactionalIdAuthorizationFailed.code(),
                    transactional_id: id,
                    ..TransactionState::default()
                });
                continue;
            }
            let asked = vec![id.clone()];
            let described = ctx
                .router
                .on_txn_coordinator(&id, move |router| async move {
                    router.state().transactions.describe(&asked).pop()
                })
                .await;
            let state = match described {
                Ok(Some(Ok(meta))) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    // Kafka lists only the topics the client may DESCRIBE.
                    for tp in meta
                        .partitions
                        .iter()
                        .filter(|tp| ctx.authorize_topic(AclOperation::Describe, &tp.topic))
                    {
                        match topics.iter_mut().find(|t| t.topic == tp.topic) {
                            Some(t) => t.partitions.push(tp.partition),
                            None => topics.push(TopicData {
                                topic: tp.topic.clone(),
                                partitions: vec![tp.partition],
                                ..TopicData::default()
                            }),
                        }
                    }
                    TransactionState {
                        error_code: 0,
                        transactional_id: id,
                        transaction_state: meta.state.name().to_string(),
                        transaction_timeout_ms: meta.timeout_ms,
                        transaction_start_time_ms: meta.start.0,
                        producer_id: meta.producer_id.0,
                        producer_epoch: meta.producer_epoch.0,
                        topics,
                        ..TransactionState::default()
                    }
                }
                Ok(Some(Err(e))) => failed(id, e.code().code()),
                Ok(None) => failed(id, crate::protocol::ErrorCode::UnknownServerError.code()),
                Err(code) => failed(id, code.code()),
            };
            transaction_states.push(state);
        }
        Some(DescribeTransactionsResponse {
            transaction_states,
            ..DescribeTransactionsResponse::default()
        })
    }
}

fn failed(transactional_id: String, error_code: i16) -> TransactionState {
    TransactionState {
        error_code,
        transactional_id,
        transaction_state: String::new(),
        transaction_timeout_ms: 0,
        transaction_start_time_ms: -1,
        producer_id: -1,
        producer_epoch: -1,
        ..TransactionState::default()
    }
}
