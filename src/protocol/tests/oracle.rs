//! The `kafka-protocol` crate (0.18, Kafka 4.1 definitions) as an oracle: for every
//! message both sides know, at every version both know, random valid messages encoded by
//! us must be decoded and re-encoded by `kafka-protocol` to the same bytes, our
//! `encoded_len` must be exact, and our decoder must read its bytes back to the original.
//!
//! Seeded and reproducible: set `CORELOG_TEST_SEED` to replay a failure.

use super::round_trip::seed;
use crate::protocol::codec::{Decodable, Encodable, Encoder, Message};
use crate::protocol::generated::{self, MessageVisitor, visit_all_messages};
use crate::protocol::testing::{Random, Rng};
use crate::protocol::wire::Reader;
use bytes::{Buf, BytesMut};
use kafka_protocol::protocol::{
    Decodable as KpDecodable, Encodable as KpEncodable, Message as KpMessage,
};
use std::collections::BTreeSet;
use std::fmt::Debug;

const ITERATIONS: usize = 60;

/// Messages in our (Kafka 4.0-era) definitions that `kafka-protocol` 0.18 (Kafka 4.1)
/// does not have, with the reason.
const NOT_IN_ORACLE: &[(&str, &str)] = &[
    (
        "ControlledShutdown",
        "removed from Kafka 4.1's definitions (ZooKeeper-era inter-broker API)",
    ),
    (
        "LeaderAndIsr",
        "removed from Kafka 4.1's definitions (ZooKeeper-era inter-broker API)",
    ),
    (
        "StopReplica",
        "removed from Kafka 4.1's definitions (ZooKeeper-era inter-broker API)",
    ),
    (
        "UpdateMetadata",
        "removed from Kafka 4.1's definitions (ZooKeeper-era inter-broker API)",
    ),
    (
        "ListClientMetricsResources",
        "renamed ListConfigResources in Kafka 4.1 (KIP-1142)",
    ),
];

/// Versions both sides know where the 4.0 and 4.1 definitions differ, with the reason.
/// (message name, version range)
const EXCLUDED_VERSIONS: &[(&str, i16, i16, &str)] = &[
    (
        "LeaderChangeMessage",
        0,
        1,
        "kafka-protocol 0.18 bug: the record's own `version` field shadows the version \
         parameter in its decoder, which then reads the nested voters at a random version",
    ),
    (
        "VotersRecord",
        0,
        0,
        "kafka-protocol 0.18 bug: the same `version` field shadowing as LeaderChangeMessage",
    ),
    (
        "ReadShareGroupStateSummaryResponse",
        0,
        0,
        "Kafka 4.1 added LeaderEpoch to v0 of this then-unstable share-group API; \
         our 4.0 definition does not have it",
    ),
];

/// Group and transaction coordinator records: `kafka-protocol` has none of them, so they
/// are covered by our own round trips only.
fn oracle_lacks(name: &str) -> bool {
    let base = name
        .strip_suffix("Request")
        .or_else(|| name.strip_suffix("Response"))
        .unwrap_or(name);
    NOT_IN_ORACLE.iter().any(|(n, _)| *n == base)
}

fn excluded(name: &str, version: i16) -> bool {
    EXCLUDED_VERSIONS
        .iter()
        .any(|(n, lo, hi, _)| *n == name && (*lo..=*hi).contains(&version))
}

#[derive(Default)]
struct Stats {
    messages: BTreeSet<&'static str>,
    pairs: usize,
    cases: usize,
    /// The first failure of each message/version pair.
    failures: Vec<String>,
}

fn check<M, K>(stats: &mut Stats, rng: &mut Rng, seed: u64)
where
    M: Message + Encodable + Decodable + Random + PartialEq + Debug,
    K: KpMessage + KpEncodable + KpDecodable,
{
    stats.messages.insert(M::NAME);
    let lo = M::VERSIONS.min.max(K::VERSIONS.min);
    let hi = M::VERSIONS.max.min(K::VERSIONS.max);
    for version in lo..=hi {
        if excluded(M::NAME, version) {
            continue;
        }
        stats.pairs += 1;
        for i in 0..ITERATIONS {
            stats.cases += 1;
            if let Err(failure) = check_one::<M, K>(rng, version) {
                stats.failures.push(format!(
                    "{} v{version} iteration {i} (CORELOG_TEST_SEED={seed}): {failure}",
                    M::NAME
                ));
                break;
            }
        }
    }
}

fn check_one<M, K>(rng: &mut Rng, version: i16) -> Result<(), String>
where
    M: Message + Encodable + Decodable + Random + PartialEq + Debug,
    K: KpMessage + KpEncodable + KpDecodable,
{
    let ours = M::random(rng, version);
    let mut w = Encoder::new();
    ours.encode(&mut w, version)
        .map_err(|e| format!("our encode: {e}"))?;
    let len = ours.encoded_len(version).map_err(|e| e.to_string())?;
    if len != w.len() {
        return Err(format!("encoded_len {len} but {} bytes written", w.len()));
    }
    let e1 = w.into_bytes();
    let mut buf = e1.clone();
    let theirs = K::decode(&mut buf, version)
        .map_err(|e| format!("kafka-protocol cannot decode ours: {e}\n{ours:?}"))?;
    if buf.remaining() != 0 {
        return Err(format!(
            "kafka-protocol left {} bytes\n{ours:?}",
            buf.remaining()
        ));
    }
    let mut e2 = BytesMut::new();
    theirs
        .encode(&mut e2, version)
        .map_err(|e| format!("kafka-protocol re-encode: {e}"))?;
    if e1 != e2 {
        return Err(format!(
            "bytes differ\n ours:   {:02x?}\n theirs: {:02x?}\n{ours:?}",
            &e1[..],
            &e2[..]
        ));
    }
    let their_len = theirs.compute_size(version).map_err(|e| e.to_string())?;
    if their_len != e1.len() {
        return Err(format!(
            "kafka-protocol computes {their_len} bytes, both wrote {}",
            e1.len()
        ));
    }
    let back = M::decode(&mut Reader::new(e2.freeze()), version)
        .map_err(|e| format!("our decode of their bytes: {e}"))?;
    if back != ours {
        return Err(format!("decoded differs:\n{back:?}\n{ours:?}"));
    }
    Ok(())
}

macro_rules! oracle_pairs {
    ($stats:ident, $rng:ident, $seed:ident; $( ($($module:ident)::+, $ty:ident) ),* $(,)?) => {
        $(
            check::<generated::$($module)::+::$ty, kafka_protocol::messages::$ty>(
                &mut $stats, &mut $rng, $seed,
            );
        )*
    };
}

#[test]
fn our_encoding_matches_kafka_protocol_byte_for_byte() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let mut stats = Stats::default();
    oracle_pairs!(stats, rng, seed;
    (add_offsets_to_txn_request, AddOffsetsToTxnRequest),
    (add_offsets_to_txn_response, AddOffsetsToTxnResponse),
    (add_partitions_to_txn_request, AddPartitionsToTxnRequest),
    (add_partitions_to_txn_response, AddPartitionsToTxnResponse),
    (add_raft_voter_request, AddRaftVoterRequest),
    (add_raft_voter_response, AddRaftVoterResponse),
    (allocate_producer_ids_request, AllocateProducerIdsRequest),
    (allocate_producer_ids_response, AllocateProducerIdsResponse),
    (alter_client_quotas_request, AlterClientQuotasRequest),
    (alter_client_quotas_response, AlterClientQuotasResponse),
    (alter_configs_request, AlterConfigsRequest),
    (alter_configs_response, AlterConfigsResponse),
    (alter_partition_reassignments_request, AlterPartitionReassignmentsRequest),
    (alter_partition_reassignments_response, AlterPartitionReassignmentsResponse),
    (alter_partition_request, AlterPartitionRequest),
    (alter_partition_response, AlterPartitionResponse),
    (alter_replica_log_dirs_request, AlterReplicaLogDirsRequest),
    (alter_replica_log_dirs_response, AlterReplicaLogDirsResponse),
    (alter_user_scram_credentials_request, AlterUserScramCredentialsRequest),
    (alter_user_scram_credentials_response, AlterUserScramCredentialsResponse),
    (api_versions_request, ApiVersionsRequest),
    (api_versions_response, ApiVersionsResponse),
    (assign_replicas_to_dirs_request, AssignReplicasToDirsRequest),
    (assign_replicas_to_dirs_response, AssignReplicasToDirsResponse),
    (begin_quorum_epoch_request, BeginQuorumEpochRequest),
    (begin_quorum_epoch_response, BeginQuorumEpochResponse),
    (broker_heartbeat_request, BrokerHeartbeatRequest),
    (broker_heartbeat_response, BrokerHeartbeatResponse),
    (broker_registration_request, BrokerRegistrationRequest),
    (broker_registration_response, BrokerRegistrationResponse),
    (consumer_group_describe_request, ConsumerGroupDescribeRequest),
    (consumer_group_describe_response, ConsumerGroupDescribeResponse),
    (consumer_group_heartbeat_request, ConsumerGroupHeartbeatRequest),
    (consumer_group_heartbeat_response, ConsumerGroupHeartbeatResponse),
    (data::consumer_protocol_assignment, ConsumerProtocolAssignment),
    (data::consumer_protocol_subscription, ConsumerProtocolSubscription),
    (controller_registration_request, ControllerRegistrationRequest),
    (controller_registration_response, ControllerRegistrationResponse),
    (create_acls_request, CreateAclsRequest),
    (create_acls_response, CreateAclsResponse),
    (create_delegation_token_request, CreateDelegationTokenRequest),
    (create_delegation_token_response, CreateDelegationTokenResponse),
    (create_partitions_request, CreatePartitionsRequest),
    (create_partitions_response, CreatePartitionsResponse),
    (create_topics_request, CreateTopicsRequest),
    (create_topics_response, CreateTopicsResponse),
    (data::default_principal_data, DefaultPrincipalData),
    (delete_acls_request, DeleteAclsRequest),
    (delete_acls_response, DeleteAclsResponse),
    (delete_groups_request, DeleteGroupsRequest),
    (delete_groups_response, DeleteGroupsResponse),
    (delete_records_request, DeleteRecordsRequest),
    (delete_records_response, DeleteRecordsResponse),
    (delete_share_group_state_request, DeleteShareGroupStateRequest),
    (delete_share_group_state_response, DeleteShareGroupStateResponse),
    (delete_topics_request, DeleteTopicsRequest),
    (delete_topics_response, DeleteTopicsResponse),
    (describe_acls_request, DescribeAclsRequest),
    (describe_acls_response, DescribeAclsResponse),
    (describe_client_quotas_request, DescribeClientQuotasRequest),
    (describe_client_quotas_response, DescribeClientQuotasResponse),
    (describe_cluster_request, DescribeClusterRequest),
    (describe_cluster_response, DescribeClusterResponse),
    (describe_configs_request, DescribeConfigsRequest),
    (describe_configs_response, DescribeConfigsResponse),
    (describe_delegation_token_request, DescribeDelegationTokenRequest),
    (describe_delegation_token_response, DescribeDelegationTokenResponse),
    (describe_groups_request, DescribeGroupsRequest),
    (describe_groups_response, DescribeGroupsResponse),
    (describe_log_dirs_request, DescribeLogDirsRequest),
    (describe_log_dirs_response, DescribeLogDirsResponse),
    (describe_producers_request, DescribeProducersRequest),
    (describe_producers_response, DescribeProducersResponse),
    (describe_quorum_request, DescribeQuorumRequest),
    (describe_quorum_response, DescribeQuorumResponse),
    (describe_topic_partitions_request, DescribeTopicPartitionsRequest),
    (describe_topic_partitions_response, DescribeTopicPartitionsResponse),
    (describe_transactions_request, DescribeTransactionsRequest),
    (describe_transactions_response, DescribeTransactionsResponse),
    (describe_user_scram_credentials_request, DescribeUserScramCredentialsRequest),
    (describe_user_scram_credentials_response, DescribeUserScramCredentialsResponse),
    (elect_leaders_request, ElectLeadersRequest),
    (elect_leaders_response, ElectLeadersResponse),
    (end_quorum_epoch_request, EndQuorumEpochRequest),
    (end_quorum_epoch_response, EndQuorumEpochResponse),
    (end_txn_request, EndTxnRequest),
    (end_txn_response, EndTxnResponse),
    (envelope_request, EnvelopeRequest),
    (envelope_response, EnvelopeResponse),
    (expire_delegation_token_request, ExpireDelegationTokenRequest),
    (expire_delegation_token_response, ExpireDelegationTokenResponse),
    (fetch_request, FetchRequest),
    (fetch_response, FetchResponse),
    (fetch_snapshot_request, FetchSnapshotRequest),
    (fetch_snapshot_response, FetchSnapshotResponse),
    (find_coordinator_request, FindCoordinatorRequest),
    (find_coordinator_response, FindCoordinatorResponse),
    (get_telemetry_subscriptions_request, GetTelemetrySubscriptionsRequest),
    (get_telemetry_subscriptions_response, GetTelemetrySubscriptionsResponse),
    (heartbeat_request, HeartbeatRequest),
    (heartbeat_response, HeartbeatResponse),
    (incremental_alter_configs_request, IncrementalAlterConfigsRequest),
    (incremental_alter_configs_response, IncrementalAlterConfigsResponse),
    (init_producer_id_request, InitProducerIdRequest),
    (init_producer_id_response, InitProducerIdResponse),
    (initialize_share_group_state_request, InitializeShareGroupStateRequest),
    (initialize_share_group_state_response, InitializeShareGroupStateResponse),
    (join_group_request, JoinGroupRequest),
    (join_group_response, JoinGroupResponse),
    (data::k_raft_version_record, KRaftVersionRecord),
    (data::leader_change_message, LeaderChangeMessage),
    (leave_group_request, LeaveGroupRequest),
    (leave_group_response, LeaveGroupResponse),
    (list_groups_request, ListGroupsRequest),
    (list_groups_response, ListGroupsResponse),
    (list_offsets_request, ListOffsetsRequest),
    (list_offsets_response, ListOffsetsResponse),
    (list_partition_reassignments_request, ListPartitionReassignmentsRequest),
    (list_partition_reassignments_response, ListPartitionReassignmentsResponse),
    (list_transactions_request, ListTransactionsRequest),
    (list_transactions_response, ListTransactionsResponse),
    (metadata_request, MetadataRequest),
    (metadata_response, MetadataResponse),
    (offset_commit_request, OffsetCommitRequest),
    (offset_commit_response, OffsetCommitResponse),
    (offset_delete_request, OffsetDeleteRequest),
    (offset_delete_response, OffsetDeleteResponse),
    (offset_fetch_request, OffsetFetchRequest),
    (offset_fetch_response, OffsetFetchResponse),
    (offset_for_leader_epoch_request, OffsetForLeaderEpochRequest),
    (offset_for_leader_epoch_response, OffsetForLeaderEpochResponse),
    (produce_request, ProduceRequest),
    (produce_response, ProduceResponse),
    (push_telemetry_request, PushTelemetryRequest),
    (push_telemetry_response, PushTelemetryResponse),
    (read_share_group_state_request, ReadShareGroupStateRequest),
    (read_share_group_state_response, ReadShareGroupStateResponse),
    (read_share_group_state_summary_request, ReadShareGroupStateSummaryRequest),
    (read_share_group_state_summary_response, ReadShareGroupStateSummaryResponse),
    (remove_raft_voter_request, RemoveRaftVoterRequest),
    (remove_raft_voter_response, RemoveRaftVoterResponse),
    (renew_delegation_token_request, RenewDelegationTokenRequest),
    (renew_delegation_token_response, RenewDelegationTokenResponse),
    (request_header, RequestHeader),
    (response_header, ResponseHeader),
    (sasl_authenticate_request, SaslAuthenticateRequest),
    (sasl_authenticate_response, SaslAuthenticateResponse),
    (sasl_handshake_request, SaslHandshakeRequest),
    (sasl_handshake_response, SaslHandshakeResponse),
    (share_acknowledge_request, ShareAcknowledgeRequest),
    (share_acknowledge_response, ShareAcknowledgeResponse),
    (share_fetch_request, ShareFetchRequest),
    (share_fetch_response, ShareFetchResponse),
    (share_group_describe_request, ShareGroupDescribeRequest),
    (share_group_describe_response, ShareGroupDescribeResponse),
    (share_group_heartbeat_request, ShareGroupHeartbeatRequest),
    (share_group_heartbeat_response, ShareGroupHeartbeatResponse),
    (data::snapshot_footer_record, SnapshotFooterRecord),
    (data::snapshot_header_record, SnapshotHeaderRecord),
    (sync_group_request, SyncGroupRequest),
    (sync_group_response, SyncGroupResponse),
    (txn_offset_commit_request, TxnOffsetCommitRequest),
    (txn_offset_commit_response, TxnOffsetCommitResponse),
    (unregister_broker_request, UnregisterBrokerRequest),
    (unregister_broker_response, UnregisterBrokerResponse),
    (update_features_request, UpdateFeaturesRequest),
    (update_features_response, UpdateFeaturesResponse),
    (update_raft_voter_request, UpdateRaftVoterRequest),
    (update_raft_voter_response, UpdateRaftVoterResponse),
    (vote_request, VoteRequest),
    (vote_response, VoteResponse),
    (data::voters_record, VotersRecord),
    (write_share_group_state_request, WriteShareGroupStateRequest),
    (write_share_group_state_response, WriteShareGroupStateResponse),
    (write_txn_markers_request, WriteTxnMarkersRequest),
    (write_txn_markers_response, WriteTxnMarkersResponse),
    );

    // Every message we generate is either checked above or listed as missing upstream.
    struct Names(Vec<&'static str>);
    impl MessageVisitor for Names {
        fn visit<M>(&mut self)
        where
            M: Message + Encodable + Decodable + Random + PartialEq + Debug + Clone,
        {
            self.0.push(M::NAME);
        }
    }
    let mut all = Names(Vec::new());
    visit_all_messages(&mut all);
    let unchecked: Vec<&str> = all
        .0
        .iter()
        .copied()
        .filter(|n| !stats.messages.contains(n) && !oracle_lacks(n))
        .filter(|n| !n.ends_with("Key") && !n.ends_with("Value"))
        .collect();
    assert!(
        unchecked.is_empty(),
        "not checked against the oracle: {unchecked:?}"
    );
    assert!(
        stats.failures.is_empty(),
        "{} message/version pairs disagree:\n{}",
        stats.failures.len(),
        stats.failures.join("\n")
    );
    println!(
        "oracle: {} messages, {} message/version pairs, {} cases (seed {seed})",
        stats.messages.len(),
        stats.pairs,
        stats.cases
    );
}
