//! LeaveGroup (key 13): members leave a classic group (one by member id before v3, a
//! batch by member or instance id from v3, KIP-345), on the group's coordinator shard.
//! Needs READ on the group (GROUP_AUTHORIZATION_FAILED otherwise), as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::leave_group_request::LeaveGroupRequest;
use crate::protocol::generated::leave_group_response::LeaveGroupResponse;
use crate::security::AclOperation;

pub struct LeaveGroup;

impl Handler for LeaveGroup {
    type Request = LeaveGroupRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::LeaveGroup),
    };

    async fn handle(
        ctx: &RequestContext,
        request: LeaveGroupRequest,
    ) -> Option<LeaveGroupResponse> {
        let version = ctx.version;
        let group_id = request.group_id.clone();
        let answer = if !ctx.authorize_group(AclOperation::Read, &group_id) {
            Err(ErrorCode::GroupAuthorizationFailed)
        } else {
            ctx.router
                .on_coordinator(&group_id, move |shard| async move {
                    shard.groups.leave(version, request).await
                })
                .await
        };
        Some(answer.unwrap_or_else(|code| LeaveGroupResponse {
            error_code: code.code(),
            ..LeaveGroupResponse::default()
        }))
    }
}
