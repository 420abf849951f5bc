//! FindCoordinator (key 10): this broker coordinates every group (it is the only node);
//! the coordinator's shard is found by each group request itself. The first group key
//! creates `__consumer_offsets` (Kafka's internal topic, `offsets.topic.num.partitions`
//! partitions over every shard), so the answer comes once the coordinators are loaded;
//! likewise the first transaction key creates `__transaction_state`
//! (`transaction.state.log.num.partitions` partitions).
//! Needs DESCRIBE on the group or the transactional id (GROUP_ or
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED otherwise), as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::groups::offsets_topic;
use crate::metadata::controller::NewTopic;
use crate::metadata::controller::TopicErrorKind;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::find_coordinator_request::FindCoordinatorRequest;
use crate::protocol::generated::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use crate::security::{AclOperation, ResourceType};
use crate::transactions::transaction_state_topic;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub struct FindCoordinator;

/// Creates an internal topic (`__consumer_offsets`, `__transaction_state`) unless it
/// exists (another request may be creating it).
async fn ensure_internal_topic(ctx: &RequestContext, topic: NewTopic) -> Result<(), ErrorCode> {
    let name = topic.name.clone();
    if ctx.shard.metadata.borrow().topic(&name).is_some() {
        return Ok(());
    }
    let topics = vec![topic];
    match ctx.router.create_topics(topics, false).await.pop() {
        Some(Ok(record)) => {
            tracing::info!("created {name} with {} partitions", record.partitions);
            Ok(())
        }
        Some(Err(e)) if e.kind == TopicErrorKind::AlreadyExists => Ok(()),
        Some(Err(e)) => {
            tracing::warn!("cannot create {name}: {}", e.message);
            Err(ErrorCode::CoordinatorNotAvailable)
        }
        None => Err(ErrorCode::CoordinatorNotAvailable),
    }
}

impl Handler for FindCoordinator {
    type Request = FindCoordinatorRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::FindCoordinator),
    };

    async fn handle(
        ctx: &RequestContext,
        request: FindCoordinatorRequest,
    ) -> Option<FindCoordinatorResponse> {
        let keys = if ctx.version >= 4 {
            request.coordinator_keys.clone()
        } else {
            vec![request.key.clone()]
        };
        let found = match request.key_type {
            KEY_TYPE_GROUP => ensure_internal_topic(ctx, offsets_topic(&ctx.shard.config))
                .await
                .map_err(|code| {
                    (
                        code,
                        "the group coordinator is not available yet".to_string(),
                    )
                }),
            KEY_TYPE_TRANSACTION => {
                ensure_internal_topic(ctx, transaction_state_topic(&ctx.shard.config))
                    .await
                    .map_err(|code| {
                        (
                            code,
                            "the transaction coordinator is not available yet".to_string(),
                        )
                    })
            }
            other => Err((
                ErrorCode::InvalidRequest,
                format!("unknown coordinator key type {other}"),
            )),
        };
        let config = &ctx.shard.config;
        let listener = &config.advertised_listeners[0];
        // Kafka's check: DESCRIBE on the group or the transactional id.
        let denied = |key: &str| match request.key_type {
            KEY_TYPE_GROUP => (!ctx.authorize_group(AclOperation::Describe, key))
                .then_some(ErrorCode::GroupAuthorizationFailed),
            KEY_TYPE_TRANSACTION => {
                (!ctx.authorize(AclOperation::Describe, ResourceType::TransactionalId, key))
                    .then_some(ErrorCode::TransactionalIdAuthorizationFailed)
            }
            _ => None,
        };
        let coordinator = |key: String| match &found {
            _ if denied(&key).is_some() => Coordinator {
                error_code: denied(&key).map_or(0, ErrorCode::code),
                error_message: None,
                key,
                node_id: -1,
                host: String::new(),
                port: -1,
                ..Coordinator::default()
            },
            Ok(()) => Coordinator {
                key,
                node_id: config.node_id,
                host: listener.host.clone(),
                port: i32::from(listener.port),
                error_code: 0,
                error_message: None,
                ..Coordinator::default()
            },
            Err((code, message)) => Coordinator {
                key,
                node_id: -1,
                host: String::new(),
                port: -1,
                error_code: code.code(),
                error_message: Some(message.clone()),
                ..Coordinator::default()
            },
        };
        let mut coordinators: Vec<Coordinator> = keys.into_iter().map(coordinator).collect();
        if ctx.version >= 4 {
            return Some(FindCoordinatorResponse {
                coordinators,
                ..FindCoordinatorResponse::default()
            });
        }
        let one = coordinators.pop().expect("one key before v4");
        Some(FindCoordinatorResponse {
            error_code: one.error_code,
            error_message: one.error_message,
            node_id: one.node_id,
            host: one.host,
            port: one.port,
            ..FindCoordinatorResponse::default()
        })
    }
}
