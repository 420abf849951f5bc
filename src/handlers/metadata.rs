//! Metadata (key 3): brokers, controller, cluster id, and every requested topic with its
//! partitions — all answered from this shard's copy of the metadata. Topics that do not
//! exist are created first when both the client and `auto.create.topics.enable` allow it,
//! so the client gets the new topic in this answer.

use super::{Handler, RequestContext, newest};
use crate::metadata::Topic;
use crate::metadata::controller::{NewTopic, TopicErrorKind};
use crate::metadata::names::topic_name_problem;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::metadata_request::MetadataRequest;
use crate::protocol::generated::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use crate::protocol::wire::Uuid;
use std::rc::Rc;

/// No authorizer: every topic operation Kafka defines is allowed (READ, WRITE, CREATE,
/// DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS as ACL operation bits).
pub const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);

/// No authorizer: every cluster operation Kafka defines is allowed (CREATE, ALTER,
/// DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE).
pub const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// Kafka's "authorized operations were not requested".
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

pub struct Metadata;

impl Handler for Metadata {
    type Request = MetadataRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::Metadata),
    };

    async fn handle(ctx: &RequestContext, request: MetadataRequest) -> Option<MetadataResponse> {
        let shard = &ctx.shard;
        let config = &shard.config;
        // v0: an empty list means every topic; v1+: null means every topic.
        let wanted = match request.topics {
            Some(topics) if !(ctx.version == 0 && topics.is_empty()) => Some(topics),
            _ => None,
        };
        let allow_auto_create = (ctx.version < 4 || request.allow_auto_topic_creation)
            && config.auto_create_topics_enable;
        let operations = if request.include_topic_authorized_operations {
            TOPIC_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        };

        if let Some(topics) = &wanted {
            let missing: Vec<NewTopic> = {
                let metadata = shard.metadata.borrow();
                // A name asked for twice is created once (CreateTopics would refuse both).
                let mut seen = std::collections::HashSet::new();
                topics
                    .iter()
                    .filter_map(|t| t.name.as_ref())
                    .filter(|name| {
                        metadata.topic(name).is_none()
                            && topic_name_problem(name).is_none()
                            && seen.insert(name.as_str())
                    })
                    .map(|name| match name.as_str() {
                        crate::groups::OFFSETS_TOPIC => crate::groups::offsets_topic(config),
                        _ => NewTopic {
                            name: name.clone(),
                            num_partitions: -1,
                            replication_factor: -1,
                            ..NewTopic::default()
                        },
                    })
                    .collect()
            };
            if allow_auto_create && !missing.is_empty() {
                let names: Vec<String> = missing.iter().map(|t| t.name.clone()).collect();
                let created = ctx.router.create_topics(missing, false).await;
                for (name, result) in names.iter().zip(created) {
                    match result {
                        Ok(record) => tracing::info!(
                            "auto-created topic {name} with {} partitions for {}",
                            record.partitions,
                            ctx.peer
                        ),
                        Err(e) if e.kind == TopicErrorKind::AlreadyExists => {}
                        Err(e) => {
                            tracing::warn!("auto-creating topic {name} failed: {}", e.message)
                        }
                    }
                }
            }
        }

        let metadata = shard.metadata.borrow();
        let describe = |topic: &Rc<Topic>| MetadataResponseTopic {
            error_code: 0,
            name: Some(topic.name.clone()),
            topic_id: topic.id,
            is_internal: topic.internal,
            partitions: (0..topic.partitions)
                .map(|index| MetadataResponsePartition {
                    error_code: 0,
                    partition_index: index,
                    leader_id: config.node_id,
                    leader_epoch: crate::partition::LEADER_EPOCH.0,
                    replica_nodes: vec![config.node_id],
                    isr_nodes: vec![config.node_id],
                    offline_replicas: Vec::new(),
                    ..MetadataResponsePartition::default()
                })
                .collect(),
            topic_authorized_operations: operations,
            ..MetadataResponseTopic::default()
        };
        let failed = |name: Option<String>, id: Uuid, code: ErrorCode| MetadataResponseTopic {
            error_code: code.code(),
            name,
            topic_id: id,
            topic_authorized_operations: operations,
            ..MetadataResponseTopic::default()
        };
        let topics = match wanted {
            None => metadata.topics().map(describe).collect(),
            Some(topics) => topics
                .iter()
                .map(|t| match &t.name {
                    Some(name) => match metadata.topic(name) {
                        Some(topic) => describe(topic),
                        None if topic_name_problem(name).is_some() => failed(
                            Some(name.clone()),
                            Uuid::ZERO,
                            ErrorCode::InvalidTopicException,
                        ),
                        None => failed(
                            Some(name.clone()),
                            Uuid::ZERO,
                            ErrorCode::UnknownTopicOrPartition,
                        ),
                    },
                    None => match metadata.topic_by_id(&t.topic_id) {
                        Some(topic) => describe(topic),
                        None => failed(None, t.topic_id, ErrorCode::UnknownTopicId),
                    },
                })
                .collect(),
        };
        Some(MetadataResponse {
            throttle_time_ms: 0,
            brokers: config
                .advertised_listeners
                .iter()
                .take(1)
                .map(|l| MetadataResponseBroker {
                    node_id: config.node_id,
                    host: l.host.clone(),
                    port: i32::from(l.port),
                    rack: None,
                    ..MetadataResponseBroker::default()
                })
                .collect(),
            cluster_id: Some(metadata.cluster_id().to_string()),
            controller_id: config.node_id,
            topics,
            // Asked for in v8–10 only (later versions moved it to DescribeCluster).
            cluster_authorized_operations: if request.include_cluster_authorized_operations {
                CLUSTER_OPERATIONS
            } else {
                OPERATIONS_NOT_REQUESTED
            },
            ..MetadataResponse::default()
        })
    }
}
