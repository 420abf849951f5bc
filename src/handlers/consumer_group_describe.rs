//! ConsumerGroupDescribe (key 69): KIP-848 groups' epochs, assignor and members with
//! their current and target assignments, each from its coordinator shard.

use super::{Handler, RequestContext, newest};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use crate::protocol::generated::consumer_group_describe_response::{
    ConsumerGroupDescribeResponse, DescribedGroup,
};

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
        let described = ctx
            .router
            .per_coordinator(
                request.group_ids,
                |group_id, code| DescribedGroup {
                    error_code: code.code(),
                    group_id: group_id.to_string(),
                    ..DescribedGroup::default()
                },
                |shard, groups| async move {
                    groups
                        .iter()
                        .map(|g| shard.groups.consumer_describe(&shard.metadata, g))
                        .collect()
                },
            )
            .await;
        let operations = if request.include_authorized_operations {
            super::describe_groups::GROUP_OPERATIONS
        } else {
            i32::MIN
        };
        Some(ConsumerGroupDescribeResponse {
            groups: described
                .into_iter()
                .map(|group| DescribedGroup {
                    authorized_operations: operations,
                    ..group
                })
                .collect(),
            ..ConsumerGroupDescribeResponse::default()
        })
    }
}
