//! CreateTopics (key 19): forwarded to the controller on shard 0, which validates each
//! topic as Kafka does, places its partitions on shards, persists the topic list and
//! has every shard open its partitions before answering. A topic needs CREATE on the
//! cluster or on itself (TOPIC_AUTHORIZATION_FAILED otherwise), as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::metadata::TopicRecord;
use crate::metadata::configs::ConfigView;
use crate::metadata::controller::NewTopic;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::create_topics_request::CreateTopicsRequest;
use crate::protocol::generated::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use crate::security::AclOperation;

pub struct CreateTopics;

impl Handler for CreateTopics {
    type Request = CreateTopicsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 2,
        max: newest(ApiKey::CreateTopics),
    };

    async fn handle(
        ctx: &RequestContext,
        request: CreateTopicsRequest,
    ) -> Option<CreateTopicsResponse> {
        // Kafka's check: CREATE on the cluster, or on the topic.
        let cluster_create = ctx.authorize_cluster(AclOperation::Create);
        let allowed: Vec<bool> = request
            .topics
            .iter()
            .map(|t| cluster_create || ctx.authorize_topic(AclOperation::Create, &t.name))
            .collect();
        let topics: Vec<NewTopic> = request
            .topics
            .iter()
            .zip(&allowed)
            .filter(|(_, allowed)| **allowed)
            .map(|(t, _)| NewTopic {
                name: t.name.clone(),
                num_partitions: t.num_partitions,
                replication_factor: t.replication_factor,
                assignments: t
                    .assignments
                    .iter()
                    .map(|a| (a.partition_index, a.broker_ids.clone()))
                    .collect(),
                configs: t
                    .configs
                    .iter()
                    .map(|c| (c.name.clone(), c.value.clone()))
                    .collect(),
            })
            .collect();
        let mut results = ctx
            .router
            .create_topics(topics, request.validate_only)
            .await
            .into_iter();
        let topics = request
            .topics
            .iter()
            .zip(allowed)
            .map(|(requested, allowed)| {
                if allowed {
                    (
                        requested,
                        Some(results.next().expect("one result per topic asked")),
                    )
                } else {
                    (requested, None)
                }
            })
            .map(|(requested, result)| match result {
                None => CreatableTopicResult {
                    name: requested.name.clone(),
                    error_code: ErrorCode::TopicAuthorizationFailed.code(),
                    error_message: Some("Authorization failed.".into()),
                    num_partitions: -1,
                    replication_factor: -1,
                    configs: None,
                    ..CreatableTopicResult::default()
                },
                Some(result) => match result {
                    Ok(record) => {
                        if !request.validate_only {
                            tracing::info!(
                                "created topic {} ({}) with {} partitions for {}",
                                record.name,
                                record.id,
                                record.partitions,
                                ctx.peer
                            );
                        }
                        CreatableTopicResult {
                            name: record.name.clone(),
                            topic_id: if request.validate_only {
                                Default::default()
                            } else {
                                record.id
                            },
                            error_code: 0,
                            num_partitions: record.partitions,
                            replication_factor: 1,
                            configs: Some(effective_configs(ctx, &record)),
                            ..CreatableTopicResult::default()
                        }
                    }
                    Err(e) => CreatableTopicResult {
                        name: requested.name.clone(),
                        error_code: e.code().code(),
                        error_message: Some(e.message),
                        num_partitions: -1,
                        replication_factor: -1,
                        configs: None,
                        ..CreatableTopicResult::default()
                    },
                },
            })
            .collect();
        Some(CreateTopicsResponse {
            throttle_time_ms: 0,
            topics,
            ..CreateTopicsResponse::default()
        })
    }
}

/// Every topic config with its value and where the value comes from, as
/// DescribeConfigs reports them.
fn effective_configs(ctx: &RequestContext, record: &TopicRecord) -> Vec<CreatableTopicConfigs> {
    let metadata = ctx.shard.metadata.borrow();
    let view = ConfigView {
        broker: &ctx.shard.config,
        dynamic: metadata.dynamic_configs(),
    };
    view.describe_topic(&record.configs)
        .into_iter()
        .map(|config| CreatableTopicConfigs {
            name: config.name,
            value: config.value,
            read_only: config.read_only,
            config_source: config.source as i8,
            is_sensitive: false,
            ..CreatableTopicConfigs::default()
        })
        .collect()
}
