//! JoinGroup (key 11): forwarded to the group's coordinator shard, where it waits until
//! the join phase completes (see `groups::classic`). Kafka 4.x serves v2 and later.
//! Needs READ on the group (GROUP_AUTHORIZATION_FAILED otherwise), as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::join_group_request::JoinGroupRequest;
use crate::protocol::generated::join_group_response::JoinGroupResponse;
use crate::security::AclOperation;

pub struct JoinGroup;

impl Handler for JoinGroup {
    type Request = JoinGroupRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 2,
        max: newest(ApiKey::JoinGroup),
    };

    async fn handle(ctx: &RequestContext, request: JoinGroupRequest) -> Option<JoinGroupResponse> {
        let (version, client) = (ctx.version, ctx.client_info());
        let group_id = request.group_id.clone();
        let member_id = request.member_id.clone();
        let answer = if !ctx.authorize_group(AclOperation::Read, &group_id) {
            Err(ErrorCode::GroupAuthorizationFailed)
        } else {
            ctx.router
                .on_coordinator(&group_id, move |shard| async move {
                    shard.groups.join(version, client, request).await
                })
                .await
        };
        Some(answer.unwrap_or_else(|code| JoinGroupResponse {
            error_code: code.code(),
            generation_id: -1,
            member_id,
            ..JoinGroupResponse::default()
        }))
    }
}
