//! ListTransactions (key 66): the transactions of every coordinator (every shard),
//! filtered by state, producer id and (v1) how long they have been running.

use super::{Handler, RequestContext, newest};
use crate::model::{ProducerId, Timestamp};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::list_transactions_request::ListTransactionsRequest;
use crate::protocol::generated::list_transactions_response::{
    ListTransactionsResponse, TransactionState,
};
use crate::security::AclOperation;

pub struct ListTransactions;

impl Handler for ListTransactions {
    type Request = ListTransactionsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::ListTransactions),
    };

    async fn handle(
        ctx: &RequestContext,
        request: ListTransactionsRequest,
    ) -> Option<ListTransactionsResponse> {
        let states = request.state_filters.clone();
        let producers: Vec<ProducerId> = request
            .producer_id_filters
            .iter()
            .map(|p| ProducerId(*p))
            .collect();
        let duration = if ctx.version >= 1 {
            request.duration_filter
        } else {
            -1
        };
        let listings = ctx
            .router
            .broadcast(move |router, _| async move {
                router
                    .state()
                    .transactions
                    .list(&states, &producers, duration, Timestamp::now())
            })
            .await;
        let mut response = ListTransactionsResponse::default();
        for listing in listings {
            match listing {
                Ok(listing) => {
                    for unknown in listing.unknown_state_filters {
                        if !response.unknown_state_filters.contains(&unknown) {
                            response.unknown_state_filters.push(unknown);
                        }
                    }
                    response.transaction_states.extend(
                        listing
                            .transactions
                            .into_iter()
                            // Kafka's check: the ids the client may DESCRIBE.
                            .filter(|t| {
                                ctx.authorize_transactional_id(
                                    AclOperation::Describe,
                                    &t.transactional_id,
                                )
                            })
                            .map(|t| TransactionState {
                                transactional_id: t.transactional_id,
                                producer_id: t.producer_id.0,
                                transaction_state: t.state.name().to_string(),
                                ..TransactionState::default()
                            }),
                    );
                }
                Err(e) => response.error_code = e.code().code(),
            }
        }
        Some(response)
    }
}
