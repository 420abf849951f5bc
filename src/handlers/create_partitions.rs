//! CreatePartitions (key 37): forwarded to the controller on shard 0, which checks each
//! topic as Kafka does (the count must grow; a manual assignment names this broker once
//! per added partition), places the new partitions over the shards like CreateTopics,
//! persists the topic list and has every shard open its new partitions before
//! answering. Existing partitions are untouched; clients find the new ones through
//! Metadata. A topic needs ALTER on itself (TOPIC_AUTHORIZATION_FAILED otherwise), as
//! in Kafka.

use super::{Handler, RequestContext, newest};
use crate::metadata::controller::NewPartitions;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::create_partitions_request::CreatePartitionsRequest;
use crate::protocol::generated::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use crate::security::AclOperation;
use std::collections::BTreeMap;

pub struct CreatePartitions;

impl Handler for CreatePartitions {
    type Request = CreatePartitionsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::CreatePartitions),
    };

    async fn handle(
        ctx: &RequestContext,
        request: CreatePartitionsRequest,
    ) -> Option<CreatePartitionsResponse> {
        // A name given twice is answered once, as Kafka does, and changes nothing.
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for topic in &request.topics {
            *seen.entry(topic.name.as_str()).or_default() += 1;
        }
        // Kafka's check: ALTER on each topic (decided once: the answer follows it).
        let may_alter: BTreeMap<&str, bool> = seen
            .keys()
            .map(|name| (*name, ctx.authorize_topic(AclOperation::Alter, name)))
            .collect();
        let unique: Vec<NewPartitions> = request
            .topics
            .iter()
            .filter(|t| seen[t.name.as_str()] == 1)
            .filter(|t| may_alter[t.name.as_str()])
            .map(|t| NewPartitions {
                name: t.name.clone(),
                count: t.count,
                assignments: t
                    .assignments
                    .as_ref()
                    .map(|a| a.iter().map(|a| a.broker_ids.clone()).collect()),
            })
            .collect();
        let mut results = ctx
            .router
            .create_partitions(unique, request.validate_only)
            .await
            .into_iter();
        let mut answered = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let count = seen[topic.name.as_str()];
            if count > 1 {
                if !answered
                    .iter()
                    .any(|r: &CreatePartitionsTopicResult| r.name == topic.name)
                {
                    answered.push(result(
                        &topic.name,
                        ErrorCode::InvalidRequest,
                        Some("Duplicate topic name.".into()),
                    ));
                }
                continue;
            }
            if !may_alter[topic.name.as_str()] {
                answered.push(result(
                    &topic.name,
                    ErrorCode::TopicAuthorizationFailed,
                    Some("Topic authorization failed.".into()),
                ));
                continue;
            }
            let outcome = results.next().expect("one result per distinct topic");
            answered.push(match outcome {
                Ok(record) => {
                    if !request.validate_only {
                        tracing::info!(
                            "topic {} ({}) now has {} partitions, for {}",
                            record.name,
                            record.id,
                            record.partitions,
                            ctx.peer
                        );
                    }
                    result(&topic.name, ErrorCode::None, None)
                }
                Err(e) => result(&topic.name, e.code(), Some(e.message)),
            });
        }
        Some(CreatePartitionsResponse {
            throttle_time_ms: 0,
            results: answered,
            ..CreatePartitionsResponse::default()
        })
    }
}

fn result(name: &str, code: ErrorCode, message: Option<String>) -> CreatePartitionsTopicResult {
    CreatePartitionsTopicResult {
        name: name.to_string(),
        error_code: code.code(),
        error_message: message,
        ..CreatePartitionsTopicResult::default()
    }
}
