//! ConsumerGroupHeartbeat (key 68): KIP-848's consumer protocol — a member joins,
//! heartbeats and leaves through this one API, and the coordinator shard computes and
//! reconciles the assignment (see `groups::consumer`).
//!
//! Served up to v1 although this copy of the specs still marks v1 unstable: Kafka 4.0
//! ships v1 as stable, and librdkafka (2.12) speaks only v1.
//! Needs READ on the group (GROUP_AUTHORIZATION_FAILED otherwise), as in Kafka.

use super::{Handler, RequestContext};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use crate::protocol::generated::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use crate::security::AclOperation;

pub struct ConsumerGroupHeartbeat;

impl Handler for ConsumerGroupHeartbeat {
    type Request = ConsumerGroupHeartbeatRequest;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

    async fn handle(
        ctx: &RequestContext,
        request: ConsumerGroupHeartbeatRequest,
    ) -> Option<ConsumerGroupHeartbeatResponse> {
        let (version, client) = (ctx.version, ctx.client_info());
        let group_id = request.group_id.clone();
        let answer = if !ctx.authorize_group(AclOperation::Read, &group_id) {
            Err(ErrorCode::GroupAuthorizationFailed)
        } else {
            ctx.router
                .on_coordinator(&group_id, move |shard| async move {
                    shard
                        .groups
                        .consumer_heartbeat(&shard.metadata, version, client, request)
                        .await
                })
                .await
        };
        Some(
            answer.unwrap_or_else(|code| ConsumerGroupHeartbeatResponse {
                error_code: code.code(),
                ..ConsumerGroupHeartbeatResponse::default()
            }),
        )
    }
}
