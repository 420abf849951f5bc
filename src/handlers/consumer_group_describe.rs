//! ConsumerGroupDescribe (key 69): KIP-848 groups' epochs, assignor and members with
//! their current and target assignments, each from its coordinator shard.

use super::{Handler, RequestContext, newest};
use crate::groups::GroupCall;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use crate::protocol::generated::consumer_group_describe_response::{
    ConsumerGroupDescribeResponse, DescribedGroup,
};
use std::collections::HashMap;

pub struct ConsumerGroupDescribe;

impl Handler for ConsumerGroupDescribe {
    type Request = ConsumerGroupDescribeRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::ConsumerGroupDescribe),
    };

    async fn handle(
        ctx: &RequestContext,
        request: ConsumerGroupDescribeRequest,
    ) -> Option<ConsumerGroupDescribeResponse> {
        let (owned, failed) = ctx.by_coordinator(request.group_ids.iter().cloned());
        let mut described: HashMap<String, DescribedGroup> = failed
            .into_iter()
            .map(|(group_id, code)| {
                let group = DescribedGroup {
                    error_code: code.code(),
                    group_id: group_id.clone(),
                    authorized_operations: i32::MIN,
                    ..DescribedGroup::default()
                };
                (group_id, group)
            })
            .collect();
        for (shard, groups) in owned {
            let answer = ctx
                .call_coordinator(shard, GroupCall::ConsumerDescribe { groups })
                .await;
            for group in crate::expect_group_answer!(answer, ConsumerDescribe) {
                described.insert(group.group_id.clone(), group);
            }
        }
        let operations = if request.include_authorized_operations {
            super::describe_groups::GROUP_OPERATIONS
        } else {
            i32::MIN
        };
        Some(ConsumerGroupDescribeResponse {
            groups: request
                .group_ids
                .iter()
                .filter_map(|id| described.get(id).cloned())
                .map(|group| DescribedGroup {
                    authorized_operations: operations,
                    ..group
                })
                .collect(),
            ..ConsumerGroupDescribeResponse::default()
        })
    }
}
