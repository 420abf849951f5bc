//! DescribeGroups (key 15): classic groups' state, protocol and members (with their
//! metadata and assignment once stable), each from its coordinator shard. A group that
//! does not exist, or is not a classic group, is described as Dead, as Kafka does
//! before v6.

use super::{Handler, RequestContext, newest};
use crate::groups::GroupCall;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::describe_groups_request::DescribeGroupsRequest;
use crate::protocol::generated::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup,
};
use std::collections::HashMap;

/// No authorizer: every group operation Kafka defines is allowed (READ, DELETE,
/// DESCRIBE as ACL operation bits).
pub const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub struct DescribeGroups;

impl Handler for DescribeGroups {
    type Request = DescribeGroupsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::DescribeGroups),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DescribeGroupsRequest,
    ) -> Option<DescribeGroupsResponse> {
        let (owned, failed) = ctx.by_coordinator(request.groups.iter().cloned());
        let mut described: HashMap<String, DescribedGroup> = failed
            .into_iter()
            .map(|(group_id, code)| {
                let group = DescribedGroup {
                    error_code: code.code(),
                    group_id: group_id.clone(),
                    group_state: "Dead".to_string(),
                    authorized_operations: i32::MIN,
                    ..DescribedGroup::default()
                };
                (group_id, group)
            })
            .collect();
        for (shard, groups) in owned {
            let answer = ctx
                .call_coordinator(shard, GroupCall::Describe { groups })
                .await;
            for group in crate::expect_group_answer!(answer, Describe) {
                described.insert(group.group_id.clone(), group);
            }
        }
        let operations = if request.include_authorized_operations {
            GROUP_OPERATIONS
        } else {
            i32::MIN
        };
        Some(DescribeGroupsResponse {
            groups: request
                .groups
                .iter()
                .filter_map(|id| described.get(id).cloned())
                .map(|group| DescribedGroup {
                    authorized_operations: operations,
                    ..group
                })
                .collect(),
            ..DescribeGroupsResponse::default()
        })
    }
}
