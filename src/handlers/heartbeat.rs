//! Heartbeat (key 12): keeps a classic group member's session alive on the group's
//! coordinator shard, and tells it when to rejoin (REBALANCE_IN_PROGRESS).

use super::{Handler, RequestContext, newest};
use crate::groups::response_code;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::heartbeat_request::HeartbeatRequest;
use crate::protocol::generated::heartbeat_response::HeartbeatResponse;

pub struct Heartbeat;

impl Handler for Heartbeat {
    type Request = HeartbeatRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::Heartbeat),
    };

    async fn handle(ctx: &RequestContext, request: HeartbeatRequest) -> Option<HeartbeatResponse> {
        let group_id = request.group_id.clone();
        let error_code = match ctx
            .router
            .on_coordinator(&group_id, move |shard| async move {
                shard.groups.heartbeat(request)
            })
            .await
        {
            Ok(beat) => response_code(beat),
            Err(code) => code.code(),
        };
        Some(HeartbeatResponse {
            error_code,
            ..HeartbeatResponse::default()
        })
    }
}
