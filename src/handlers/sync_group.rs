//! SyncGroup (key 14): forwarded to the group's coordinator shard; the leader's
//! assignment is persisted before any member gets its share.
//! Needs READ on the group (GROUP_AUTHORIZATION_FAILED otherwise), as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::sync_group_request::SyncGroupRequest;
use crate::protocol::generated::sync_group_response::SyncGroupResponse;
use crate::security::AclOperation;

pub struct SyncGroup;

impl Handler for SyncGroup {
    type Request = SyncGroupRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::SyncGroup),
    };

    async fn handle(ctx: &RequestContext, request: SyncGroupRequest) -> Option<SyncGroupResponse> {
        let group_id = request.group_id.clone();
        let answer = if !ctx.authorize_group(AclOperation::Read, &group_id) {
            Err(ErrorCode::GroupAuthorizationFailed)
        } else {
            ctx.router
                .on_coordinator(&group_id, move |shard| async move {
                    shard.groups.sync(request).await
                })
                .await
        };
        Some(answer.unwrap_or_else(|code| SyncGroupResponse {
            error_code: code.code(),
            ..SyncGroupResponse::default()
        }))
    }
}
