//! DeleteGroups (key 42): deletes empty groups (NON_EMPTY_GROUP otherwise) and their
//! committed offsets, with tombstones in `__consumer_offsets`, on each group's
//! coordinator shard.

use super::{Handler, RequestContext, newest};
use crate::groups::GroupCall;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::delete_groups_request::DeleteGroupsRequest;
use crate::protocol::generated::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};
use std::collections::HashMap;

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
        let (owned, failed) = ctx.by_coordinator(request.groups_names.iter().cloned());
        let mut results: HashMap<String, i16> = failed
            .into_iter()
            .map(|(id, code)| (id, code.code()))
            .collect();
        for (shard, groups) in owned {
            let answer = ctx
                .call_coordinator(shard, GroupCall::Delete { groups })
                .await;
            for (id, code) in crate::expect_group_answer!(answer, Delete) {
                results.insert(id, code.code());
            }
        }
        Some(DeleteGroupsResponse {
            results: request
                .groups_names
                .iter()
                .map(|id| DeletableGroupResult {
                    group_id: id.clone(),
                    error_code: results.get(id).copied().unwrap_or(0),
                    ..DeletableGroupResult::default()
                })
                .collect(),
            ..DeleteGroupsResponse::default()
        })
    }
}
