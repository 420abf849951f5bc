//! DeleteTopics (key 20): by name (v0–5) or by name or topic id (v6+), forwarded to the
//! controller on shard 0; every owning shard closes and removes the partitions before
//! the answer goes back. A topic needs DELETE on itself (TOPIC_AUTHORIZATION_FAILED
//! otherwise), as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::delete_topics_request::DeleteTopicsRequest;
use crate::protocol::generated::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use crate::protocol::wire::Uuid;
use crate::security::AclOperation;

pub struct DeleteTopics;

impl Handler for DeleteTopics {
    type Request = DeleteTopicsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 1,
        max: newest(ApiKey::DeleteTopics),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DeleteTopicsRequest,
    ) -> Option<DeleteTopicsResponse> {
        // Each entry: the name to delete, or the error of an id that names no topic.
        let wanted: Vec<(Option<String>, Uuid)> = if ctx.version >= 6 {
            request
                .topics
                .iter()
                .map(|t| (t.name.clone(), t.topic_id))
                .collect()
        } else {
            request
                .topic_names
                .iter()
                .map(|n| (Some(n.clone()), Uuid::ZERO))
                .collect()
        };
        let resolved: Vec<Result<String, DeletableTopicResult>> = {
            let metadata = ctx.shard.metadata.borrow();
            wanted
                .iter()
                .map(|(name, id)| match name {
                    Some(name) => Ok(name.clone()),
                    None => metadata.topic_by_id(id).map(|t| t.name.clone()).ok_or(
                        DeletableTopicResult {
                            name: None,
                            topic_id: *id,
                            error_code: ErrorCode::UnknownTopicId.code(),
                            error_message: Some(format!("no topic has id {id}")),
                            ..DeletableTopicResult::default()
                        },
                    ),
                })
                .zip(&wanted)
                .map(|(entry, (asked_name, id))| match entry {
                    Ok(name) if !ctx.authorize_topic(AclOperation::Delete, &name) => {
                        Err(DeletableTopicResult {
                            name: asked_name.clone(),
                            topic_id: *id,
                            error_code: ErrorCode::TopicAuthorizationFailed.code(),
                            error_message: Some("Topic authorization failed.".into()),
                            ..DeletableTopicResult::default()
                        })
                    }
                    other => other,
                })
                .collect()
        };
        let names: Vec<String> = resolved
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        let mut results = if names.is_empty() {
            Vec::new()
        } else {
            ctx.router.delete_topics(names).await
        }
        .into_iter();
        let responses = resolved
            .into_iter()
            .map(|entry| match entry {
                Err(unknown_id) => unknown_id,
                Ok(name) => match results.next().expect("one result per name") {
                    Ok(record) => {
                        tracing::info!(
                            "deleted topic {} ({}) for {}",
                            record.name,
                            record.id,
                            ctx.peer
                        );
                        DeletableTopicResult {
                            name: Some(record.name),
                            topic_id: record.id,
                            error_code: 0,
                            ..DeletableTopicResult::default()
                        }
                    }
                    Err(e) => DeletableTopicResult {
                        name: Some(name),
                        error_code: e.code().code(),
                        error_message: Some(e.message),
                        ..DeletableTopicResult::default()
                    },
                },
            })
            .collect();
        Some(DeleteTopicsResponse {
            throttle_time_ms: 0,
            responses,
            ..DeleteTopicsResponse::default()
        })
    }
}
