//! DeleteGroups (key 42): deletes empty groups (NON_EMPTY_GROUP otherwise) and their
//! committed offsets, with tombstones in `__consumer_offsets`, on each group's
//! coordinator shard.

use super::{Handler, RequestContext, newest};
use crate::groups::response_code;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::delete_groups_request::DeleteGroupsRequest;
use crate::protocol::generated::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};

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
        let codes = ctx
            .router
            .per_coordinator(
                request.groups_names.clone(),
                |_, code| code.code(),
                |shard, groups| async move {
                    let mut codes = Vec::with_capacity(groups.len());
                    for group in groups {
                        codes.push(response_code(shard.groups.delete(&group).await));
                    }
                    codes
                },
            )
            .await;
        Some(DeleteGroupsResponse {
            results: request
                .groups_names
                .iter()
                .zip(codes)
                .map(|(id, code)| DeletableGroupResult {
                    group_id: id.clone(),
                    error_code: code,
                    ..DeletableGroupResult::default()
                })
                .collect(),
            ..DeleteGroupsResponse::default()
        })
    }
}
