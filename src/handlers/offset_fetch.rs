//! OffsetFetch (key 9): committed offsets of one group (before v8) or of a batch of
//! groups (v8+), each read on its coordinator shard; the groups of one shard travel in
//! one call. A partition with no committed offset answers -1; with `require_stable`
//! (v7+), one holding offsets of an open transaction answers UNSTABLE_OFFSET_COMMIT.
//! Kafka 4.x serves v1 and later.
//! Needs READ on each group (GROUP_AUTHORIZATION_FAILED) and DESCRIBE on each topic, as
//! in Kafka.

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use crate::protocol::generated::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponseTopic,
};
use crate::security::AclOperation;

pub struct OffsetFetch;

impl Handler for OffsetFetch {
    type Request = OffsetFetchRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 1,
        max: newest(ApiKey::OffsetFetch),
    };

    async fn handle(
        ctx: &RequestContext,
        request: OffsetFetchRequest,
    ) -> Option<OffsetFetchResponse> {
        let batched = ctx.version >= 8;
        // v7+: partitions with offsets of an open transaction answer UNSTABLE_OFFSET_COMMIT.
        let require_stable = request.require_stable;
        let groups: Vec<OffsetFetchRequestGroup> = if batched {
            request.groups
        } else {
            vec![OffsetFetchRequestGroup {
                group_id: request.group_id,
                member_id: None,
                member_epoch: -1,
                topics: request.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| OffsetFetchRequestTopics {
                            name: t.name,
                            partition_indexes: t.partition_indexes,
                            ..OffsetFetchRequestTopics::default()
                        })
                        .collect()
                }),
                ..OffsetFetchRequestGroup::default()
            }]
        };
        let router = &ctx.router;
        let listed: Vec<bool> = groups.iter().map(|g| g.topics.is_some()).collect();
        let items: Vec<(String, OffsetFetchRequestGroup)> = groups
            .into_iter()
            .map(|g| (g.group_id.clone(), g))
            .collect();
        let mut groups: Vec<OffsetFetchResponseGroup> = router
            .scatter(
                items,
                |group_id| {
                    if !ctx.authorize_group(AclOperation::Read, group_id) {
                        return Err(OffsetFetchResponseGroup {
                            group_id: group_id.clone(),
                            error_code: ErrorCode::GroupAuthorizationFailed.code(),
                            ..OffsetFetchResponseGroup::default()
                        });
                    }
                    router
                        .group_coordinator(group_id)
                        .map_err(|code| OffsetFetchResponseGroup {
                            group_id: group_id.clone(),
                            error_code: code.code(),
                            ..OffsetFetchResponseGroup::default()
                        })
                },
                move |router, groups| async move {
                    groups
                        .into_iter()
                        .map(|(_, g)| router.state().groups.offset_fetch(g, require_stable))
                        .collect()
                },
            )
            .await
            .answers()
            .await;
        // Kafka's topic check: DESCRIBE. Listed topics the client may not describe answer
        // TOPIC_AUTHORIZATION_FAILED; an all-topics answer leaves them out.
        for (group, listed) in groups.iter_mut().zip(&listed) {
            group
                .topics
                .retain(|t| *listed || ctx.authorize_topic(AclOperation::Describe, &t.name));
            for topic in &mut group.topics {
                if !ctx.authorize_topic(AclOperation::Describe, &topic.name) {
                    for partition in &mut topic.partitions {
                        partition.committed_offset = -1;
                        partition.committed_leader_epoch = -1;
                        partition.metadata = None;
                        partition.error_code = ErrorCode::TopicAuthorizationFailed.code();
                    }
                }
            }
        }
        if batched {
            return Some(OffsetFetchResponse {
                groups,
                ..OffsetFetchResponse::default()
            });
        }
        // Before v8: one group, its topics and error at the top level.
        let group = groups.pop().expect("one group before v8");
        Some(OffsetFetchResponse {
            error_code: group.error_code,
            topics: group
                .topics
                .into_iter()
                .map(|t| OffsetFetchResponseTopic {
                    name: t.name,
                    partitions: t
                        .partitions
                        .into_iter()
                        .map(|p| OffsetFetchResponsePartition {
                            partition_index: p.partition_index,
                            committed_offset: p.committed_offset,
                            committed_leader_epoch: p.committed_leader_epoch,
                            metadata: p.metadata,
                            error_code: p.error_code,
                            ..OffsetFetchResponsePartition::default()
                        })
                        .collect(),
                    ..OffsetFetchResponseTopic::default()
                })
                .collect(),
            ..OffsetFetchResponse::default()
        })
    }
}
