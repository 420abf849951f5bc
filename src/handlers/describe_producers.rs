//! DescribeProducers (key 61): the producers each partition knows (producer id, epoch,
//! last sequence and timestamp, coordinator epoch, open transaction's first offset),
//! read on the partitions' owners.

use super::{Handler, RequestContext, newest};
use crate::metadata::TopicPartition;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::describe_producers_request::DescribeProducersRequest;
use crate::protocol::generated::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use crate::security::AclOperation;

pub struct DescribeProducers;

impl Handler for DescribeProducers {
    type Request = DescribeProducersRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::DescribeProducers),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DescribeProducersRequest,
    ) -> Option<DescribeProducersResponse> {
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in request.topics {
            // Kafka's check: READ on the topic.
            let read_denied = !ctx.authorize_topic(AclOperation::Read, &topic.name);
            let known = ctx
                .shard
                .metadata
                .borrow()
                .topic(&topic.name)
                .map(|t| t.partitions);
            let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
            for index in topic.partition_indexes {
                let response = match known {
                    _ if read_denied => PartitionResponse {
                        partition_index: index,
                        error_code: ErrorCode::TopicAuthorizationFailed.code(),
                        ..PartitionResponse::default()
                    },
                    Some(count) if index >= 0 && index < count => {
                        let tp = TopicPartition::new(topic.name.clone(), index);
                        describe(ctx, tp).await
                    }
                    _ => PartitionResponse {
                        partition_index: index,
                        error_code: ErrorCode::UnknownTopicOrPartition.code(),
                        error_message: Some(format!("{}-{index} does not exist", topic.name)),
                        ..PartitionResponse::default()
                    },
                };
                partitions.push(response);
            }
            topics.push(TopicResponse {
                name: topic.name,
                partitions,
                ..TopicResponse::default()
            });
        }
        Some(DescribeProducersResponse {
            topics,
            ..DescribeProducersResponse::default()
        })
    }
}

async fn describe(ctx: &RequestContext, tp: TopicPartition) -> PartitionResponse {
    let index = tp.partition;
    let Some(owner) = ctx.shard.metadata.borrow().owner(&tp) else {
        return PartitionResponse {
            partition_index: index,
            error_code: ErrorCode::NotLeaderOrFollower.code(),
            ..PartitionResponse::default()
        };
    };
    let producers = ctx
        .router
        .call(owner, move |router, _| async move {
            router.state().partition(&tp).map(|p| p.producers())
        })
        .await;
    match producers {
        None => PartitionResponse {
            partition_index: index,
            error_code: ErrorCode::NotLeaderOrFollower.code(),
            ..PartitionResponse::default()
        },
        Some(producers) => PartitionResponse {
            partition_index: index,
            error_code: 0,
            active_producers: producers
                .into_iter()
                .map(|p| ProducerState {
                    producer_id: p.producer_id.0,
                    producer_epoch: i32::from(p.epoch.0),
                    last_sequence: p.last_seq().unwrap_or(-1),
                    last_timestamp: p.last_timestamp.0,
                    coordinator_epoch: p.coordinator_epoch,
                    current_txn_start_offset: p.current_txn_first_offset.map_or(-1, |o| o.0),
                    ..ProducerState::default()
                })
                .collect(),
            ..PartitionResponse::default()
        },
    }
}
