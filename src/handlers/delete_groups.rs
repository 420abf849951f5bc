//! DeleteGroups (key 42): deletes empty groups (NON_EMPTY_GROUP otherwise) and their
//! committed offsets, with tombstones in `__consumer_offsets`, on each group's
//! coordinator shard. Needs DELETE on each group (GROUP_AUTHORIZATION_FAILED
//! otherwise), as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::groups::response_code;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::delete_groups_request::DeleteGroupsRequest;
use crate::protocol::generated::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};
use crate::security::AclOperation;

pub struct DeleteGroups;

impl Handler for DeleteGroups {
    type Request = DeleteGroupsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::DeleteGroups),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DeleteGroupsRequest,
    ) -> Option<DeleteGroupsResponse> {
        // Kafka's check: DELETE on each group.
        let may_delete: Vec<bool> = request
            .groups_names
            .iter()
            .map(|g| ctx.authorize_group(AclOperation::Delete, g))
            .collect();
        let allowed: Vec<String> = request
            .groups_names
            .iter()
            .zip(&may_delete)
            .filter(|(_, allowed)| **allowed)
            .map(|(g, _)| g.clone())
            .collect();
        let mut codes = ctx
            .router
            .per_coordinator(
                allowed,
                |_, code| code.code(),
                |shard, groups| async move {
                    let mut codes = Vec::with_capacity(groups.len());
                    for group in groups {
                        codes.push(response_code(shard.groups.delete(&group).await));
                    }
                    codes
                },
            )
            .await
            .into_iter();
        Some(DeleteGroupsResponse {
            results: request
                .groups_names
                .iter()
                .zip(may_delete)
                .map(|(id, allowed)| DeletableGroupResult {
                    group_id: id.clone(),
                    error_code: if allowed {
                        codes.next().expect("one code per group asked")
                    } else {
                        ErrorCode::GroupAuthorizationFailed.code()
                    },
                    ..DeletableGroupResult::default()
                })
                .collect(),
            ..DeleteGroupsResponse::default()
        })
    }
}
