//! Metadata (key 3): brokers, controller, cluster id, and every requested topic with its
//! partitions — all answered from this shard's copy of the metadata. Topics that do not
//! exist are created first when both the client and `auto.create.topics.enable` allow it,
//! so the client gets the new topic in this answer.
//!
//! With an authorizer (Kafka's checks): a listed topic the client may not DESCRIBE gets
//! TOPIC_AUTHORIZATION_FAILED and an all-topics request leaves it out; auto-creation
//! needs CREATE on the cluster or the topic (TOPIC_AUTHORIZATION_FAILED otherwise); the
//! authorized operations, when asked for, are the authorizer's.

use super::{Handler, OPERATIONS_NOT_REQUESTED, RequestContext, newest};
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
use crate::security::{AclOperation, ResourceType, acl};
use std::rc::Rc;

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
        let operations = |name: &str| {
            ctx.authorized_operations(
                request.include_topic_authorized_operations,
                ResourceType::Topic,
                name,
                acl::TOPIC_OPERATIONS,
            )
        };
        let may_describe = |name: &str| ctx.authorize_topic(AclOperation::Describe, name);
        let may_create = |name: &str| {
            ctx.authorize_cluster(AclOperation::Create)
                || ctx.authorize_topic(AclOperation::Create, name)
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
                            && may_describe(name)
                            && may_create(name)
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
            topic_authorized_operations: operations(&topic.name),
            ..MetadataResponseTopic::default()
        };
        let failed = |name: Option<String>, id: Uuid, code: ErrorCode| MetadataResponseTopic {
            error_code: code.code(),
            topic_authorized_operations: name
                .as_deref()
                .map_or(OPERATIONS_NOT_REQUESTED, operations),
            name,
            topic_id: id,
            ..MetadataResponseTopic::default()
        };
        let denied = |name: Option<String>, id: Uuid| MetadataResponseTopic {
            error_code: ErrorCode::TopicAuthorizationFailed.code(),
            name,
            topic_id: id,
            topic_authorized_operations: OPERATIONS_NOT_REQUESTED,
            ..MetadataResponseTopic::default()
        };
        let topics = match wanted {
            None => metadata
                .topics()
                .filter(|t| may_describe(&t.name))
                .map(describe)
                .collect(),
            Some(topics) => topics
                .iter()
                .map(|t| match &t.name {
                    Some(name) if !may_describe(name) => denied(Some(name.clone()), Uuid::ZERO),
                    Some(name) => match metadata.topic(name) {
                        Some(topic) => describe(topic),
                        None if allow_auto_create
                            && topic_name_problem(name).is_none()
                            && !may_create(name) =>
                        {
                            denied(Some(name.clone()), Uuid::ZERO)
                        }
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
                        Some(topic) if !may_describe(&topic.name) => denied(None, t.topic_id),
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
            cluster_authorized_operations: ctx.authorized_operations(
                request.include_cluster_authorized_operations,
                ResourceType::Cluster,
                acl::CLUSTER_NAME,
                acl::CLUSTER_OPERATIONS,
            ),
            ..MetadataResponse::default()
        })
    }
}
