//! Heartbeat (key 12): keeps a classic group member's session alive on the group's
//! coordinator shard, and tells it when to rejoin (REBALANCE_IN_PROGRESS).
//! Needs READ on the group (GROUP_AUTHORIZATION_FAILED otherwise), as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::groups::response_code;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::heartbeat_request::HeartbeatRequest;
use crate::protocol::generated::heartbeat_response::HeartbeatResponse;
use crate::security::AclOperation;

pub struct Heartbeat;

impl Handler for Heartbeat {
    type Request = HeartbeatRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::Heartbeat),
    };

    async fn handle(ctx: &RequestContext, request: HeartbeatRequest) -> Option<HeartbeatResponse> {
        let group_id = request.group_id.clone();
        let answer = if !ctx.authorize_group(AclOperation::Read, &group_id) {
            Err(ErrorCode::GroupAuthorizationFailed)
        } else {
            ctx.router
                .on_coordinator(&group_id, move |shard| async move {
                    shard.groups.heartbeat(request)
                })
                .await
        };
        let error_code = match answer {
            Ok(beat) => response_code(beat),
            Err(code) => code.code(),
        };
        Some(HeartbeatResponse {
            error_code,
            ..HeartbeatResponse::default()
        })
    }
}
