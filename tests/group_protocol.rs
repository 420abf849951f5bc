//! The group APIs byte by byte over a real socket, checking Kafka's answers — the
//! error code Kafka returns in each case — where clients would hide them: requests
//! before the coordinator exists, the two-step join (KIP-394), generations, offsets of
//! unknown topics and oversized metadata, batched OffsetFetch, OffsetDelete of a
//! subscribed topic, and the admin APIs' errors.

mod common;

use bytes::Bytes;
use common::Broker;
use common::wire::WireClient;
use corelog::protocol::ErrorCode;
use corelog::protocol::codec::Encodable;
use corelog::protocol::generated::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use corelog::protocol::generated::data::consumer_protocol_subscription::ConsumerProtocolSubscription;
use corelog::protocol::generated::delete_groups_request::DeleteGroupsRequest;
use corelog::protocol::generated::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use corelog::protocol::generated::describe_groups_request::DescribeGroupsRequest;
use corelog::protocol::generated::find_coordinator_request::FindCoordinatorRequest;
use corelog::protocol::generated::heartbeat_request::HeartbeatRequest;
use corelog::protocol::generated::join_group_request::{
    JoinGroupRequest, JoinGroupRequestProtocol,
};
use corelog::protocol::generated::join_group_response::JoinGroupResponse;
use corelog::protocol::generated::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use corelog::protocol::generated::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use corelog::protocol::generated::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use corelog::protocol::generated::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use corelog::protocol::generated::sync_group_request::{
    SyncGroupRequest, SyncGroupRequestAssignment,
};
use corelog::protocol::generated::{ApiKey, ResponseBody};

const TOPIC: &str = "wired";

fn code(error: ErrorCode) -> i16 {
    error.code()
}

/// A consumer-protocol subscription to `TOPIC`, as a client's JoinGroup carries it.
fn subscription() -> Bytes {
    let mut w = corelog::protocol::codec::Encoder::new();
    w.put_i16(1);
    ConsumerProtocolSubscription {
        topics: vec![TOPIC.into()],
        ..Default::default()
    }
    .encode(&mut w, 1)
    .unwrap();
    w.into_bytes()
}

fn join_request(group: &str, member: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: member.into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: subscription(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn join(client: &mut WireClient, request: &JoinGroupRequest) -> JoinGroupResponse {
    match client.request(ApiKey::JoinGroup, 9, request) {
        ResponseBody::JoinGroup(response) => response,
        other => panic!("{:?}", other.api_key()),
    }
}

fn commit(
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    metadata: &str,
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member.into(),
        topics: vec![OffsetCommitRequestTopic {
            name: topic.into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 5,
                committed_leader_epoch: -1,
                committed_metadata: Some(metadata.into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn commit_code(client: &mut WireClient, request: &OffsetCommitRequest) -> i16 {
    match client.request(ApiKey::OffsetCommit, 9, request) {
        ResponseBody::OffsetCommit(response) => response.topics[0].partitions[0].error_code,
        other => panic!("{:?}", other.api_key()),
    }
}

#[test]
fn group_requests_get_the_error_codes_kafka_returns() {
    let broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        "group.initial.rebalance.delay.ms=0",
        "--set",
        "offsets.topic.num.partitions=8",
    ]);
    let mut client = WireClient::connect(&broker.bootstrap());

    // Before FindCoordinator created __consumer_offsets, there is no coordinator.
    assert_eq!(
        join(&mut client, &join_request("g", "")).error_code,
        code(ErrorCode::CoordinatorNotAvailable)
    );

    // FindCoordinator: one key (v3), a batch (v4), transaction and unknown key types.
    let find = |key_type: i8| FindCoordinatorRequest {
        key_type,
        coordinator_keys: vec!["g".into(), "h".into()],
        ..Default::default()
    };
    let find_one = FindCoordinatorRequest {
        key: "g".into(),
        ..Default::default()
    };
    let ResponseBody::FindCoordinator(one) = client.request(ApiKey::FindCoordinator, 3, &find_one)
    else {
        panic!()
    };
    assert_eq!(
        (one.error_code, one.node_id, one.port),
        (0, 1, i32::from(broker.port))
    );
    let ResponseBody::FindCoordinator(many) = client.request(ApiKey::FindCoordinator, 6, &find(0))
    else {
        panic!()
    };
    assert_eq!(many.coordinators.len(), 2);
    assert!(
        many.coordinators
            .iter()
            .all(|c| c.error_code == 0 && c.node_id == 1)
    );
    let ResponseBody::FindCoordinator(txn) = client.request(ApiKey::FindCoordinator, 6, &find(1))
    else {
        panic!()
    };
    // Transaction keys are served too (the first creates `__transaction_state`).
    assert_eq!(txn.coordinators[0].error_code, 0);
    assert_eq!(txn.coordinators[0].node_id, 1);
    let ResponseBody::FindCoordinator(bad) = client.request(ApiKey::FindCoordinator, 6, &find(7))
    else {
        panic!()
    };
    assert_eq!(
        bad.coordinators[0].error_code,
        code(ErrorCode::InvalidRequest)
    );

    // JoinGroup: bad group id and session timeout, then KIP-394's two steps.
    assert_eq!(
        join(&mut client, &join_request("", "")).error_code,
        code(ErrorCode::InvalidGroupId)
    );
    let mut short = join_request("g", "");
    short.session_timeout_ms = 10;
    assert_eq!(
        join(&mut client, &short).error_code,
        code(ErrorCode::InvalidSessionTimeout)
    );
    let required = join(&mut client, &join_request("g", ""));
    assert_eq!(required.error_code, code(ErrorCode::MemberIdRequired));
    assert!(
        required.member_id.starts_with("corelog-wire-test-"),
        "{}",
        required.member_id
    );
    let member = required.member_id;
    let joined = join(&mut client, &join_request("g", &member));
    assert_eq!(joined.error_code, 0);
    assert_eq!(
        (joined.generation_id, joined.leader.as_str()),
        (1, member.as_str())
    );
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1, "the leader gets the members");
    assert_eq!(
        join(&mut client, &join_request("g", "stranger")).error_code,
        code(ErrorCode::UnknownMemberId)
    );

    // SyncGroup from the leader; Heartbeat with the right and a wrong generation.
    let sync = SyncGroupRequest {
        group_id: "g".into(),
        generation_id: 1,
        member_id: member.clone(),
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: vec![SyncGroupRequestAssignment {
            member_id: member.clone(),
            assignment: Bytes::from_static(b"all of it"),
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::SyncGroup(synced) = client.request(ApiKey::SyncGroup, 5, &sync) else {
        panic!()
    };
    assert_eq!(
        (synced.error_code, &synced.assignment[..]),
        (0, &b"all of it"[..])
    );
    let heartbeat = |generation: i32| HeartbeatRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: member.clone(),
        ..Default::default()
    };
    let ResponseBody::Heartbeat(ok) = client.request(ApiKey::Heartbeat, 4, &heartbeat(1)) else {
        panic!()
    };
    assert_eq!(ok.error_code, 0);
    let ResponseBody::Heartbeat(stale) = client.request(ApiKey::Heartbeat, 4, &heartbeat(0)) else {
        panic!()
    };
    assert_eq!(stale.error_code, code(ErrorCode::IllegalGeneration));

    // OffsetCommit: fine, unknown topic, metadata over offset.metadata.max.bytes, stale
    // generation, and a simple consumer's commit (generation -1) to a group with members.
    // The topic, auto-created by Metadata.
    let _ = client.request(
        ApiKey::Metadata,
        12,
        &corelog::protocol::generated::metadata_request::MetadataRequest {
            topics: Some(vec![
                corelog::protocol::generated::metadata_request::MetadataRequestTopic {
                    name: Some(TOPIC.into()),
                    ..Default::default()
                },
            ]),
            allow_auto_topic_creation: true,
            ..Default::default()
        },
    );
    assert_eq!(
        commit_code(&mut client, &commit("g", 1, &member, TOPIC, "m")),
        0
    );
    assert_eq!(
        commit_code(&mut client, &commit("g", 1, &member, "no-such-topic", "m")),
        code(ErrorCode::UnknownTopicOrPartition)
    );
    assert_eq!(
        commit_code(
            &mut client,
            &commit("g", 1, &member, TOPIC, &"x".repeat(5000))
        ),
        code(ErrorCode::OffsetMetadataTooLarge)
    );
    assert_eq!(
        commit_code(&mut client, &commit("g", 0, &member, TOPIC, "m")),
        code(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        commit_code(&mut client, &commit("g", -1, "", TOPIC, "m")),
        code(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        commit_code(&mut client, &commit("simple", -1, "", TOPIC, "s")),
        0
    );

    // OffsetFetch v8: a batch of groups, one of them unknown.
    let fetch = OffsetFetchRequest {
        groups: ["g", "simple", "unknown"]
            .iter()
            .map(|g| OffsetFetchRequestGroup {
                group_id: g.to_string(),
                member_epoch: -1,
                topics: Some(vec![OffsetFetchRequestTopics {
                    name: TOPIC.into(),
                    partition_indexes: vec![0],
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let ResponseBody::OffsetFetch(fetched) = client.request(ApiKey::OffsetFetch, 8, &fetch) else {
        panic!()
    };
    let offsets: Vec<(String, i64, Option<String>)> = fetched
        .groups
        .iter()
        .map(|g| {
            let p = &g.topics[0].partitions[0];
            (g.group_id.clone(), p.committed_offset, p.metadata.clone())
        })
        .collect();
    assert_eq!(
        offsets,
        vec![
            ("g".into(), 5, Some("m".into())),
            ("simple".into(), 5, Some("s".into())),
            ("unknown".into(), -1, Some(String::new())),
        ]
    );

    // OffsetDelete: the group's members subscribe to the topic.
    let delete_offsets = OffsetDeleteRequest {
        group_id: "g".into(),
        topics: vec![OffsetDeleteRequestTopic {
            name: TOPIC.into(),
            partitions: vec![OffsetDeleteRequestPartition {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::OffsetDelete(deleted) =
        client.request(ApiKey::OffsetDelete, 0, &delete_offsets)
    else {
        panic!()
    };
    assert_eq!(
        deleted.topics[0].partitions[0].error_code,
        code(ErrorCode::GroupSubscribedToTopic)
    );
    let unknown_group = OffsetDeleteRequest {
        group_id: "unknown".into(),
        ..delete_offsets.clone()
    };
    let ResponseBody::OffsetDelete(unknown) =
        client.request(ApiKey::OffsetDelete, 0, &unknown_group)
    else {
        panic!()
    };
    assert_eq!(unknown.error_code, code(ErrorCode::GroupIdNotFound));

    // DescribeGroups: the live group, and an unknown one described as Dead.
    let describe = DescribeGroupsRequest {
        groups: vec!["g".into(), "unknown".into()],
        ..Default::default()
    };
    let ResponseBody::DescribeGroups(described) =
        client.request(ApiKey::DescribeGroups, 5, &describe)
    else {
        panic!()
    };
    assert_eq!(described.groups[0].group_state, "Stable");
    assert_eq!(described.groups[0].protocol_data, "range");
    assert_eq!(
        described.groups[0].members[0].member_assignment,
        Bytes::from_static(b"all of it")
    );
    assert_eq!(described.groups[0].members[0].client_host, "/127.0.0.1");
    assert_eq!(
        (
            described.groups[1].error_code,
            described.groups[1].group_state.as_str()
        ),
        (0, "Dead")
    );

    // DeleteGroups refuses a group with members; LeaveGroup (v3 batch) empties it.
    let delete_groups = DeleteGroupsRequest {
        groups_names: vec!["g".into()],
        ..Default::default()
    };
    let ResponseBody::DeleteGroups(refused) =
        client.request(ApiKey::DeleteGroups, 2, &delete_groups)
    else {
        panic!()
    };
    assert_eq!(
        refused.results[0].error_code,
        code(ErrorCode::NonEmptyGroup)
    );
    let leave = LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![
            MemberIdentity {
                member_id: "stranger".into(),
                ..Default::default()
            },
            MemberIdentity {
                member_id: member.clone(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let ResponseBody::LeaveGroup(left) = client.request(ApiKey::LeaveGroup, 5, &leave) else {
        panic!()
    };
    let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![code(ErrorCode::UnknownMemberId), 0]);
    let ResponseBody::DeleteGroups(gone) = client.request(ApiKey::DeleteGroups, 2, &delete_groups)
    else {
        panic!()
    };
    assert_eq!(gone.results[0].error_code, 0);
    let ResponseBody::DeleteGroups(again) = client.request(ApiKey::DeleteGroups, 2, &delete_groups)
    else {
        panic!()
    };
    assert_eq!(
        again.results[0].error_code,
        code(ErrorCode::GroupIdNotFound)
    );

    // ConsumerGroupHeartbeat (KIP-848) request checks.
    let heartbeat_848 = |member: &str, assignor: Option<&str>| ConsumerGroupHeartbeatRequest {
        group_id: "new-protocol".into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 10_000,
        subscribed_topic_names: Some(vec![TOPIC.into()]),
        server_assignor: assignor.map(String::from),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    };
    for (request, expected) in [
        (heartbeat_848("", None), ErrorCode::InvalidRequest),
        (
            heartbeat_848("m-1", Some("sticky")),
            ErrorCode::UnsupportedAssignor,
        ),
    ] {
        let ResponseBody::ConsumerGroupHeartbeat(response) =
            client.request(ApiKey::ConsumerGroupHeartbeat, 1, &request)
        else {
            panic!()
        };
        assert_eq!(
            response.error_code,
            code(expected),
            "{:?}",
            response.error_message
        );
    }

    // The internal topic cannot be deleted.
    let delete_topic = DeleteTopicsRequest {
        topics: vec![DeleteTopicState {
            name: Some("__consumer_offsets".into()),
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let ResponseBody::DeleteTopics(refused) =
        client.request(ApiKey::DeleteTopics, 6, &delete_topic)
    else {
        panic!()
    };
    assert_eq!(
        refused.responses[0].error_code,
        code(ErrorCode::InvalidTopicException)
    );
}
