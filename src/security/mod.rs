//! Authorization and SCRAM credentials: Kafka's `StandardAuthorizer` and the SCRAM
//! credential store of a KRaft cluster.
//!
//! What it owns:
//! - `acl`: the ACL vocabulary (resource types, pattern types, operations, permission
//!   types with Kafka's numeric codes), bindings and binding filters, their validation,
//!   and the matcher (`Authorizer::authorize`) that decides one action.
//! - `scram`: SCRAM-SHA-256/512 credentials as Kafka's controller stores them (salt,
//!   iterations, stored key and server key derived from the salted password the client
//!   sends) and the checks of AlterUserScramCredentials.
//!
//! Where it runs: the controller (shard 0, `metadata::controller`) validates every ACL
//! and credential change, persists it (`metadata::store`) and sends the complete new set
//! to every shard in a `MetadataDelta`. Each shard's `MetadataImage` keeps the set, so an
//! authorization check is a lookup on the shard that serves the request, without a
//! cross-shard hop. The settings (`authorizer.class.name`, `super.users`,
//! `allow.everyone.if.no.acl.found`) are static broker configs.
//!
//! Invariants: the ACL set never holds two equal bindings, and holds only bindings that
//! `AclBinding::validate` accepts (no UNKNOWN/ANY/MATCH, a parsable principal, CLUSTER
//! named `kafka-cluster`); there is at most one credential per (user, mechanism).
//!
//! Principals: corelog serves PLAINTEXT listeners only, so every connection is
//! `User:ANONYMOUS` and its host is the peer's IP address. The SCRAM credentials are
//! stored (and described) for a SASL listener to come: nothing authenticates with them
//! today.
//!
//! Enforcement (with an authorizer configured): handlers ask
//! `RequestContext::authorize` as Kafka's `KafkaApis` does for the same API, and answer
//! Kafka's codes (TOPIC_, GROUP_, CLUSTER_, TRANSACTIONAL_ID_AUTHORIZATION_FAILED):
//! - topics: Produce (WRITE; WRITE on the transactional id of a transactional produce),
//!   Fetch (READ), ListOffsets and OffsetForLeaderEpoch (DESCRIBE), Metadata (DESCRIBE:
//!   refused listed topics answer the error, an all-topics request leaves them out;
//!   auto-creation needs CREATE on the cluster or the topic), CreateTopics (CREATE on
//!   the cluster or the topic), DeleteTopics and DeleteRecords (DELETE),
//!   CreatePartitions (ALTER), DescribeConfigs/AlterConfigs/IncrementalAlterConfigs
//!   (DESCRIBE_CONFIGS/ALTER_CONFIGS on the topic, the group, or the cluster for a
//!   broker), DescribeProducers (READ);
//! - the cluster: DescribeLogDirs (DESCRIBE), CreateAcls/DeleteAcls (ALTER),
//!   DescribeAcls (DESCRIBE), Alter/DescribeUserScramCredentials (ALTER/DESCRIBE),
//!   WriteTxnMarkers (CLUSTER_ACTION);
//! - groups: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ConsumerGroupHeartbeat,
//!   OffsetCommit (and READ on its topics), OffsetFetch (and DESCRIBE on its topics),
//!   OffsetDelete (and READ on its topics); DescribeGroups, ConsumerGroupDescribe and FindCoordinator
//!   (DESCRIBE); DeleteGroups (DELETE); ListGroups (every group with DESCRIBE on the
//!   cluster, else the groups the client may DESCRIBE);
//! - transactions: InitProducerId (WRITE on the transactional id; an idempotent
//!   producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic),
//!   AddPartitionsToTxn (and WRITE on its topics), AddOffsetsToTxn and TxnOffsetCommit
//!   (and READ on the group), EndTxn (WRITE on the transactional id), FindCoordinator,
//!   DescribeTransactions (listing only the topics the client may DESCRIBE) and
//!   ListTransactions (DESCRIBE on the transactional id);
//! - authorized operations (Metadata, DescribeCluster, DescribeGroups,
//!   ConsumerGroupDescribe) are the authorizer's decisions.
//!
//! Not enforced yet, where Kafka checks more: the topics a ConsumerGroupHeartbeat
//! subscribes to (DESCRIBE) and the configs CreateTopics returns (DESCRIBE_CONFIGS).
//! ApiVersions and DescribeCluster need nothing, as in Kafka.

pub mod acl;
pub mod scram;

pub use acl::{
    AclBinding, AclFilter, AclOperation, Authorizer, AuthorizerConfig, PatternType, PermissionType,
    ResourceType,
};
pub use scram::{ScramCredential, ScramCredentials, ScramMechanism};

/// The principal of every connection: corelog has no authenticating listener yet.
pub const ANONYMOUS: &str = "User:ANONYMOUS";
