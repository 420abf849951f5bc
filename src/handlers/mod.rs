//! One handler per Kafka API, and the one registry that lists them.
//!
//! A handler declares its API (through its request type) and the versions corelog
//! serves; the `registry!` below turns the list into dispatch, the version check the
//! connection makes, and the ApiVersions answer — one list, one truth, checked by a
//! test. Handlers run on the shard that owns the connection, read that shard's state
//! (`ShardState`: metadata, config) and reach the shards that own their work only
//! through `routing` — typed calls, one fan-out.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
mod alter_user_scram_credentials;
mod api_versions;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_acls;
mod create_partitions;
mod create_topics;
mod delete_acls;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_acls;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_transactions;
mod describe_user_scram_credentials;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
mod txn_offset_commit;
mod write_txn_markers;

use crate::groups::classic::ClientInfo;
use crate::metadata::TopicPartition;
use crate::partition::SegmentRange;
use crate::protocol::codec::{Request, VersionRange};
use crate::protocol::frame::DecodedRequest;
use crate::protocol::generated::api_versions_response::ApiVersion;
use crate::protocol::generated::{ApiKey, RequestBody, ResponseBody};
use crate::routing::Router;
use crate::shard::ShardState;
use crate::storage::Notify;
use shards::ShardId;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Kafka's "authorized operations were not requested" (KIP-430).
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// One Kafka API as corelog serves it.
pub trait Handler {
    type Request: Request;
    /// Versions served: Kafka 4.x's minimum up to the newest in the specs.
    const VERSIONS: VersionRange;

    /// Answers a request; `None` sends no response (acks=0 produce).
    fn handle(
        ctx: &RequestContext,
        request: Self::Request,
    ) -> impl Future<Output = Option<<Self::Request as Request>::Response>>;
}

/// Signals the connection that a request's ordered effects have started, so the next
/// request may be dispatched (see `RequestContext::issued`).
#[derive(Default)]
pub struct Gate {
    open: Cell<bool>,
    opened: Notify,
}

impl Gate {
    pub fn open(&self) {
        if !self.open.replace(true) {
            self.opened.notify_all();
        }
    }

    pub async fn wait(&self) {
        while !self.open.get() {
            let opened = self.opened.listen();
            if self.open.get() {
                break;
            }
            opened.await;
        }
    }
}

/// Raised once when the client's connection ends (it closed, or reading failed): handlers
/// that wait for an event (a long-poll Fetch) stop waiting, since nobody will read the
/// answer. Shared by every request of one connection.
#[derive(Default)]
pub struct Hangup {
    gone: Cell<bool>,
    notify: Notify,
}

impl Hangup {
    pub fn hang_up(&self) {
        self.gone.set(true);
        self.notify.notify_all();
    }

    pub fn is_gone(&self) -> bool {
        self.gone.get()
    }

    /// Resolves once the connection has ended (at once if it already has).
    pub async fn wait(&self) {
        let listener = self.notify.listen();
        if !self.gone.get() {
            listener.await;
        }
    }
}

/// The appends one connection has under way, per partition, with the shard they went
/// to. A produce request waits before it queues an append to a partition that this
/// connection still has appends under way for on another shard — sent before a move of
/// the partition, now waiting there to be passed on to its new shard
/// (`Router::handover`) — so the connection's batches land in the order it sent them: a
/// producer that is not idempotent and pipelines (librdkafka's default) would otherwise
/// see a later batch overtake an earlier one across a move. Appends to one shard are not
/// held back. An entry stays (with no append under way) once its partition was written,
/// so the steady state allocates nothing. Shared by every request of one connection, on
/// its shard.
#[derive(Default)]
pub struct InFlight {
    appends: RefCell<std::collections::HashMap<TopicPartition, (ShardId, usize)>>,
    settled: Notify,
}

impl InFlight {
    /// Waits until no append of this connection to one of `partitions` is under way on
    /// a shard other than its owner now, then counts the appends about to be queued; the
    /// returned guard counts them answered when dropped. `owner` is the shard table's
    /// owner of a partition at the moment of asking (`None`: no shard owns it, and the
    /// append is not counted).
    pub async fn admit(
        self: &Rc<Self>,
        partitions: Vec<TopicPartition>,
        owner: impl Fn(&TopicPartition) -> Option<ShardId>,
    ) -> Admitted {
        loop {
            let settled = self.settled.listen();
            let owners: Vec<Option<ShardId>> = partitions.iter().map(&owner).collect();
            if self.count_unless_elsewhere(&partitions, &owners) {
                return Admitted {
                    in_flight: self.clone(),
                    partitions,
                    owners,
                };
            }
            settled.await;
        }
    }

    /// Counts an append to each owned partition, unless one has appends under way on
    /// another shard than its owner: then counts nothing and says so.
    fn count_unless_elsewhere(
        &self,
        partitions: &[TopicPartition],
        owners: &[Option<ShardId>],
    ) -> bool {
        let mut appends = self.appends.borrow_mut();
        let elsewhere = partitions.iter().zip(owners).any(|(tp, o)| {
            appends
                .get(tp)
                .is_some_and(|(at, count)| *count > 0 && Some(*at) != *o)
        });
        if elsewhere {
            return false;
        }
        for (tp, o) in partitions.iter().zip(owners) {
            let Some(o) = *o else { continue };
            match appends.get_mut(tp) {
                Some((at, count)) => {
                    *at = o;
                    *count += 1;
                }
                None => {
                    appends.insert(tp.clone(), (o, 1));
                }
            }
        }
        true
    }
}

/// Appends counted under way by [`InFlight::admit`] until dropped.
pub struct Admitted {
    in_flight: Rc<InFlight>,
    partitions: Vec<TopicPartition>,
    /// Which of them were counted (those a shard owned).
    owners: Vec<Option<ShardId>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut appends = self.in_flight.appends.borrow_mut();
        let mut settled = false;
        for (tp, _) in self
            .partitions
            .iter()
            .zip(&self.owners)
            .filter(|(_, o)| o.is_some())
        {
            let (_, count) = appends.get_mut(tp).expect("counted by admit");
            *count -= 1;
            settled |= *count == 0;
        }
        drop(appends);
        if settled {
            self.in_flight.settled.notify_all();
        }
    }
}

/// How many produce or fetch requests in a row must go to one other shard, and nowhere
/// else, before their connection moves there.
pub const FOLLOW_AFTER: u32 = 4;

/// How long, at the least, a connection's requests must have gone only to one other
/// shard before its first move there; each further move of the same connection waits
/// twice as long as the one before (up to 64 times this).
pub const FOLLOW_PATIENCE: Duration = Duration::from_secs(1);

/// Where a connection's partition work goes: the one shard other than its own that owned
/// every partition of its latest produce and fetch requests, how many requests in a row
/// went only there, and since when. Once at least `FOLLOW_AFTER` did, for at least its
/// patience, the connection asks to move to that shard (`server::connection`), so a
/// client whose partitions live on one shard costs no cross-shard hop. A request that
/// touches its own shard's partitions, or several shards, starts over; requests without
/// partitions (metadata, group calls) change nothing.
///
/// The patience keeps a client whose partitions span shards where it is: one sending
/// small requests that each happen to name partitions of one shard would otherwise move
/// back and forth (measured: 4,196 moves in 12 s of the 1 KiB workload at 10% of its
/// rate with a 3-request streak and no patience), each move stalling its pipeline.
/// Shared by every request of one connection, on its shard.
pub struct Affinity {
    shard: Cell<Option<ShardId>>,
    streak: Cell<u32>,
    since: Cell<Instant>,
    patience: Duration,
}

impl Affinity {
    /// The affinity of a connection that has moved `moves` times already.
    pub fn new(moves: u32) -> Affinity {
        Affinity::with_patience(FOLLOW_PATIENCE * (1 << moves.min(6)))
    }

    fn with_patience(patience: Duration) -> Affinity {
        Affinity {
            shard: Cell::new(None),
            streak: Cell::new(0),
            since: Cell::new(Instant::now()),
            patience,
        }
    }

    /// Counts one request whose partitions are owned by `owners` (`None`: no shard owns
    /// one), on a connection served by `here`.
    pub fn note(&self, here: ShardId, owners: impl IntoIterator<Item = Option<ShardId>>) {
        let mut owners = owners.into_iter();
        let Some(first) = owners.next() else {
            return;
        };
        let single = match first {
            Some(shard) if shard != here && owners.all(|o| o == Some(shard)) => Some(shard),
            _ => None,
        };
        match single {
            Some(shard) if self.shard.get() == Some(shard) => {
                self.streak.set(self.streak.get().saturating_add(1));
            }
            Some(shard) => {
                self.shard.set(Some(shard));
                self.streak.set(1);
                self.since.set(Instant::now());
            }
            None => {
                self.shard.set(None);
                self.streak.set(0);
            }
        }
    }

    /// The shard this connection should move to, once its requests have shown one.
    pub fn wanted(&self) -> Option<ShardId> {
        self.shard.get().filter(|_| {
            self.streak.get() >= FOLLOW_AFTER && self.since.get().elapsed() >= self.patience
        })
    }
}

/// What a handler knows about the request it answers.
pub struct RequestContext {
    /// The road to every shard.
    pub router: Router,
    /// This shard's state (the router's).
    pub shard: Rc<ShardState>,
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub peer: SocketAddr,
    splices: RefCell<Vec<SegmentRange>>,
    gate: Rc<Gate>,
    close_connection: Cell<bool>,
    /// The connection's end.
    pub hangup: Rc<Hangup>,
    /// Where the connection's partition work goes; `None` when connections stay where
    /// they were accepted (`placement.connections.follow=false`).
    affinity: Option<Rc<Affinity>>,
    /// The connection's appends under way (see [`InFlight`]).
    pub in_flight: Rc<InFlight>,
}

impl RequestContext {
    /// The context of `request` (its body is the handler's argument), received from
    /// `peer` on a connection whose end `hangup` signals.
    pub fn new(
        router: Router,
        request: &DecodedRequest,
        peer: SocketAddr,
        gate: Rc<Gate>,
        hangup: Rc<Hangup>,
        affinity: Option<Rc<Affinity>>,
        in_flight: Rc<InFlight>,
    ) -> RequestContext {
        RequestContext {
            hangup,
            affinity,
            in_flight,
            shard: router.state().clone(),
            router,
            api_key: request.api_key,
            version: request.version,
            correlation_id: request.correlation_id(),
            client_id: request.header.client_id.clone(),
            peer,
            splices: RefCell::new(Vec::new()),
            gate,
            close_connection: Cell::new(false),
        }
    }

    /// Adds record data to send from a file; the id goes into `Records::Spliced`.
    pub fn add_splice(&self, source: SegmentRange) -> u32 {
        let mut splices = self.splices.borrow_mut();
        splices.push(source);
        (splices.len() - 1) as u32
    }

    pub fn take_splices(&self) -> Vec<SegmentRange> {
        std::mem::take(&mut self.splices.borrow_mut())
    }

    /// Tells the connection which partitions this produce or fetch request works on, so
    /// that it can follow them to their shard (`Affinity`).
    pub fn note_partitions<'a>(&self, partitions: impl IntoIterator<Item = &'a TopicPartition>) {
        if let Some(affinity) = &self.affinity {
            let metadata = self.shard.metadata.borrow();
            affinity.note(
                self.router.id(),
                partitions.into_iter().map(|tp| metadata.owner(tp)),
            );
        }
    }

    /// Lets the connection dispatch its next request before this one finishes. Until a
    /// handler calls it (or finishes), requests on a connection run one after another,
    /// as Kafka runs them; produce calls it once its appends hold their places in the
    /// logs, so pipelined produce requests wait for their acks concurrently yet land in
    /// order.
    pub fn issued(&self) {
        self.gate.open();
    }

    /// Asks the connection to close after this request (Kafka's answer to a failed
    /// acks=0 produce, which has no response to carry the error).
    pub fn close_connection(&self) {
        self.close_connection.set(true);
    }

    pub fn should_close(&self) -> bool {
        self.close_connection.get()
    }

    /// The connection's principal: `User:ANONYMOUS`, as corelog serves PLAINTEXT
    /// listeners only.
    pub fn principal(&self) -> &'static str {
        crate::security::ANONYMOUS
    }

    /// The host ACLs name for this connection: the peer's IP address.
    pub fn host(&self) -> String {
        self.peer.ip().to_canonical().to_string()
    }

    /// Whether this request's principal may do `operation` on the resource, from this
    /// shard's ACLs (see `security`); always true when no authorizer is configured.
    pub fn authorize(
        &self,
        operation: crate::security::AclOperation,
        resource_type: crate::security::ResourceType,
        name: &str,
    ) -> bool {
        let config = &self.shard.config.authorizer;
        if !config.enabled {
            return true;
        }
        let metadata = self.shard.metadata.borrow();
        crate::security::Authorizer {
            config,
            acls: metadata.acls(),
        }
        .authorize(
            self.principal(),
            &self.host(),
            operation,
            resource_type,
            name,
        )
    }

    /// Whether the request's principal may do `operation` on some resource of the type
    /// (Kafka's `authorizeByResourceType`); always true without an authorizer.
    pub fn authorize_any(
        &self,
        operation: crate::security::AclOperation,
        resource_type: crate::security::ResourceType,
    ) -> bool {
        let config = &self.shard.config.authorizer;
        if !config.enabled {
            return true;
        }
        let metadata = self.shard.metadata.borrow();
        crate::security::Authorizer {
            config,
            acls: metadata.acls(),
        }
        .authorize_any(self.principal(), &self.host(), operation, resource_type)
    }

    /// `authorize` on a TRANSACTIONAL_ID.
    pub fn authorize_transactional_id(
        &self,
        operation: crate::security::AclOperation,
        transactional_id: &str,
    ) -> bool {
        self.authorize(
            operation,
            crate::security::ResourceType::TransactionalId,
            transactional_id,
        )
    }

    /// `authorize` on the CLUSTER resource.
    pub fn authorize_cluster(&self, operation: crate::security::AclOperation) -> bool {
        self.authorize(
            operation,
            crate::security::ResourceType::Cluster,
            crate::security::acl::CLUSTER_NAME,
        )
    }

    /// `authorize` on a TOPIC.
    pub fn authorize_topic(&self, operation: crate::security::AclOperation, topic: &str) -> bool {
        self.authorize(operation, crate::security::ResourceType::Topic, topic)
    }

    /// `authorize` on a GROUP.
    pub fn authorize_group(&self, operation: crate::security::AclOperation, group: &str) -> bool {
        self.authorize(operation, crate::security::ResourceType::Group, group)
    }

    /// Answers a per-group request in the client's order: the groups the client may do
    /// `operation` on go to `ask` (one answer each, in order), the others are answered by
    /// `refused` (Kafka's GROUP_AUTHORIZATION_FAILED entry).
    pub async fn per_authorized_group<G, Fut>(
        &self,
        operation: crate::security::AclOperation,
        group_ids: Vec<String>,
        ask: impl FnOnce(Vec<String>) -> Fut,
        refused: impl Fn(String) -> G,
    ) -> Vec<G>
    where
        Fut: Future<Output = Vec<G>>,
    {
        let (allowed, denied): (Vec<_>, Vec<_>) = group_ids
            .into_iter()
            .enumerate()
            .partition(|(_, g)| self.authorize_group(operation, g));
        let (order, allowed): (Vec<usize>, Vec<String>) = allowed.into_iter().unzip();
        let answers = ask(allowed).await;
        assert_eq!(
            answers.len(),
            order.len(),
            "one answer per authorized group"
        );
        let mut answers: Vec<(usize, G)> = order
            .into_iter()
            .zip(answers)
            .chain(denied.into_iter().map(|(i, g)| (i, refused(g))))
            .collect();
        answers.sort_by_key(|(i, _)| *i);
        answers.into_iter().map(|(_, g)| g).collect()
    }

    /// Kafka's check of a config resource (DescribeConfigs, AlterConfigs,
    /// IncrementalAlterConfigs): `operation` on the topic, the group, or the cluster for
    /// a broker resource; the error it answers when refused.
    pub fn config_resource_denied(
        &self,
        resource_type: i8,
        name: &str,
        operation: crate::security::AclOperation,
    ) -> Option<crate::protocol::ErrorCode> {
        use crate::metadata::configs::{RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
        use crate::protocol::ErrorCode;
        match resource_type {
            RESOURCE_TOPIC => (!self.authorize_topic(operation, name))
                .then_some(ErrorCode::TopicAuthorizationFailed),
            RESOURCE_GROUP => (!self.authorize_group(operation, name))
                .then_some(ErrorCode::GroupAuthorizationFailed),
            RESOURCE_BROKER => (!self.authorize_cluster(operation))
                .then_some(ErrorCode::ClusterAuthorizationFailed),
            _ => None,
        }
    }

    /// KIP-430's bit field of the `candidates` this request's principal may do on the
    /// resource (all of them when no authorizer is configured), or
    /// `OPERATIONS_NOT_REQUESTED` when the request did not ask (`requested`).
    pub fn authorized_operations(
        &self,
        requested: bool,
        resource_type: crate::security::ResourceType,
        name: &str,
        candidates: &[crate::security::AclOperation],
    ) -> i32 {
        if !requested {
            return OPERATIONS_NOT_REQUESTED;
        }
        candidates
            .iter()
            .filter(|op| self.authorize(**op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// The client as group coordinators record it (DescribeGroups shows it).
    pub fn client_info(&self) -> ClientInfo {
        ClientInfo {
            client_id: self.client_id.clone().unwrap_or_default(),
            client_host: format!("/{}", self.peer.ip()),
        }
    }
}

macro_rules! registry {
    ($($variant:ident => $handler:ty),* $(,)?) => {
        /// Every API corelog serves, with its versions: what ApiVersions advertises.
        pub fn supported_apis() -> Vec<ApiVersion> {
            vec![$(ApiVersion {
                api_key: ApiKey::$variant as i16,
                min_version: <$handler as Handler>::VERSIONS.min,
                max_version: <$handler as Handler>::VERSIONS.max,
                ..ApiVersion::default()
            }),*]
        }

        /// The versions corelog serves for an API, `None` for an API it does not serve.
        pub fn served_versions(api_key: ApiKey) -> Option<VersionRange> {
            match api_key {
                $(ApiKey::$variant => Some(<$handler as Handler>::VERSIONS),)*
                _ => None,
            }
        }

        /// Runs the handler of a request whose API and version `served_versions` accepts.
        pub async fn dispatch(ctx: &RequestContext, body: RequestBody) -> Option<ResponseBody> {
            match body {
                $(RequestBody::$variant(request) => {
                    <$handler as Handler>::handle(ctx, request).await.map(ResponseBody::$variant)
                })*
                other => panic!("dispatch of {:?}, which the registry does not serve", other.api_key()),
            }
        }
    };
}

registry! {
    Produce => produce::Produce,
    Fetch => fetch::Fetch,
    ListOffsets => list_offsets::ListOffsets,
    OffsetForLeaderEpoch => offset_for_leader_epoch::OffsetForLeaderEpoch,
    Metadata => metadata::Metadata,
    ApiVersions => api_versions::ApiVersions,
    CreateTopics => create_topics::CreateTopics,
    DeleteTopics => delete_topics::DeleteTopics,
    DeleteRecords => delete_records::DeleteRecords,
    CreatePartitions => create_partitions::CreatePartitions,
    DescribeConfigs => describe_configs::DescribeConfigs,
    AlterConfigs => alter_configs::AlterConfigs,
    IncrementalAlterConfigs => incremental_alter_configs::IncrementalAlterConfigs,
    DescribeCluster => describe_cluster::DescribeCluster,
    DescribeLogDirs => describe_log_dirs::DescribeLogDirs,
    FindCoordinator => find_coordinator::FindCoordinator,
    JoinGroup => join_group::JoinGroup,
    SyncGroup => sync_group::SyncGroup,
    Heartbeat => heartbeat::Heartbeat,
    LeaveGroup => leave_group::LeaveGroup,
    OffsetCommit => offset_commit::OffsetCommit,
    OffsetFetch => offset_fetch::OffsetFetch,
    OffsetDelete => offset_delete::OffsetDelete,
    ListGroups => list_groups::ListGroups,
    DescribeGroups => describe_groups::DescribeGroups,
    DeleteGroups => delete_groups::DeleteGroups,
    ConsumerGroupHeartbeat => consumer_group_heartbeat::ConsumerGroupHeartbeat,
    ConsumerGroupDescribe => consumer_group_describe::ConsumerGroupDescribe,
    InitProducerId => init_producer_id::InitProducerId,
    AddPartitionsToTxn => add_partitions_to_txn::AddPartitionsToTxn,
    AddOffsetsToTxn => add_offsets_to_txn::AddOffsetsToTxn,
    EndTxn => end_txn::EndTxn,
    TxnOffsetCommit => txn_offset_commit::TxnOffsetCommit,
    WriteTxnMarkers => write_txn_markers::WriteTxnMarkers,
    DescribeProducers => describe_producers::DescribeProducers,
    DescribeTransactions => describe_transactions::DescribeTransactions,
    ListTransactions => list_transactions::ListTransactions,
    DescribeAcls => describe_acls::DescribeAcls,
    CreateAcls => create_acls::CreateAcls,
    DeleteAcls => delete_acls::DeleteAcls,
    DescribeUserScramCredentials => describe_user_scram_credentials::DescribeUserScramCredentials,
    AlterUserScramCredentials => alter_user_scram_credentials::AlterUserScramCredentials,
}

/// The partitions a per-partition request names, split into those that exist (`wanted`,
/// to ask their owners, each with the request's argument) and an answer for the rest
/// (UNKNOWN_TOPIC_OR_PARTITION, or TOPIC_AUTHORIZATION_FAILED); `answers` merges the owners' results back in request
/// order. Shared by the handlers that answer partition by partition (ListOffsets,
/// DeleteRecords, OffsetForLeaderEpoch).
pub struct KnownPartitions<A, R> {
    pub wanted: Vec<(crate::metadata::TopicPartition, A)>,
    unknown: Vec<Option<Result<R, crate::partition::PartitionError>>>,
}

impl<A, R> KnownPartitions<A, R> {
    /// Splits `partitions`; those of topics the request may not do `operation` on
    /// (Kafka's per-topic check) answer TOPIC_AUTHORIZATION_FAILED, whether they exist
    /// or not.
    pub fn split<'a>(
        ctx: &RequestContext,
        operation: crate::security::AclOperation,
        partitions: impl IntoIterator<Item = (&'a str, i32, A)>,
    ) -> Self {
        let mut split = KnownPartitions {
            wanted: Vec::new(),
            unknown: Vec::new(),
        };
        // The last topic's decision: a request lists a topic's partitions together.
        let mut decided: Option<(&str, bool)> = None;
        for (topic, partition, arg) in partitions {
            let allowed = match decided {
                Some((name, allowed)) if name == topic => allowed,
                _ => {
                    let allowed = ctx.authorize_topic(operation, topic);
                    decided = Some((topic, allowed));
                    allowed
                }
            };
            let exists = ctx
                .shard
                .metadata
                .borrow()
                .topic(topic)
                .is_some_and(|t| partition >= 0 && partition < t.partitions);
            if !allowed {
                split
                    .unknown
                    .push(Some(Err(crate::partition::PartitionError::new(
                        crate::protocol::ErrorCode::TopicAuthorizationFailed,
                        format!("Topic authorization failed for {topic}."),
                    ))));
            } else if exists {
                split.wanted.push((
                    crate::metadata::TopicPartition::new(topic.to_string(), partition),
                    arg,
                ));
                split.unknown.push(None);
            } else {
                split
                    .unknown
                    .push(Some(Err(crate::partition::PartitionError::new(
                        crate::protocol::ErrorCode::UnknownTopicOrPartition,
                        format!("{topic}-{partition} does not exist"),
                    ))));
            }
        }
        split
    }

    /// Every partition's result in request order: the owners' `answers` (one per
    /// `wanted`, in its order) between the unknown partitions' errors.
    pub fn answers(
        self,
        answers: Vec<Result<R, crate::partition::PartitionError>>,
    ) -> impl Iterator<Item = Result<R, crate::partition::PartitionError>> {
        let mut answers = answers.into_iter();
        self.unknown.into_iter().map(move |slot| {
            slot.unwrap_or_else(|| answers.next().expect("one answer per partition asked"))
        })
    }
}

/// The newest stable version of an API in the specs, for handlers to declare "up to the
/// newest". A version the specs mark unstable is not advertised, as Kafka 4.x does not.
pub const fn newest(api_key: ApiKey) -> i16 {
    let max = api_key.valid_versions().max;
    if api_key.latest_version_unstable() {
        max - 1
    } else {
        max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_exactly_the_apis_and_versions_served() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("### Kafka APIs served")
            .nth(1)
            .and_then(|rest| rest.split("\n### ").next())
            .expect("the README has a Kafka APIs section");
        let mut listed: Vec<(i16, i16, i16)> = section
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let key = cells
                    .get(1)?
                    .rsplit_once('(')?
                    .1
                    .strip_suffix(')')?
                    .parse()
                    .ok()?;
                let versions = cells.get(2)?;
                let (min, max) = versions.split_once('–').unwrap_or((versions, versions));
                Some((key, min.parse().ok()?, max.parse().ok()?))
            })
            .collect();
        listed.sort();
        let mut served: Vec<(i16, i16, i16)> = supported_apis()
            .iter()
            .map(|a| (a.api_key, a.min_version, a.max_version))
            .collect();
        served.sort();
        assert_eq!(
            listed, served,
            "README rows (key, min, max) vs the registry"
        );
    }

    #[test]
    fn every_served_version_is_one_the_codec_knows() {
        for api in supported_apis() {
            let key = ApiKey::from_i16(api.api_key).unwrap();
            let codec = key.valid_versions();
            assert!(
                codec.min <= api.min_version
                    && api.max_version <= codec.max
                    && api.min_version <= api.max_version,
                "{key:?} serves {}-{} but the codec knows {codec}",
                api.min_version,
                api.max_version
            );
            assert_eq!(
                served_versions(key),
                Some(VersionRange {
                    min: api.min_version,
                    max: api.max_version
                })
            );
        }
    }

    #[test]
    fn a_connections_appends_to_a_moved_partition_wait_for_those_under_way_on_its_old_shard() {
        crate::storage::testing::block_on(async {
            let in_flight = Rc::new(InFlight::default());
            let moved = TopicPartition::new("t".to_string(), 0);
            let other = TopicPartition::new("t".to_string(), 1);
            let on_old_shard = in_flight
                .admit(vec![moved.clone()], |_| Some(ShardId(0)))
                .await;
            // More appends to the same shard are not held back.
            drop(
                in_flight
                    .admit(vec![moved.clone()], |_| Some(ShardId(0)))
                    .await,
            );
            // Once the partition is on shard 1, the next append waits for the one
            // under way on shard 0.
            let order = Rc::new(RefCell::new(Vec::new()));
            let waiter = {
                let (in_flight, order, moved) = (in_flight.clone(), order.clone(), moved.clone());
                shards::rt::spawn(async move {
                    let admitted = in_flight.admit(vec![moved], |_| Some(ShardId(1))).await;
                    order.borrow_mut().push("appended on shard 1");
                    admitted
                })
            };
            // Meanwhile another partition's appends go on.
            drop(in_flight.admit(vec![other], |_| Some(ShardId(1))).await);
            for _ in 0..10 {
                shards::rt::yield_now().await;
            }
            assert!(order.borrow().is_empty(), "{:?}", order.borrow());
            order.borrow_mut().push("answered on shard 0");
            drop(on_old_shard);
            let admitted = waiter.await;
            assert_eq!(
                *order.borrow(),
                ["answered on shard 0", "appended on shard 1"]
            );
            drop(admitted);
            assert!(
                in_flight
                    .appends
                    .borrow()
                    .values()
                    .all(|(_, count)| *count == 0),
                "every count returns"
            );
        });
    }

    #[test]
    fn a_connection_follows_only_a_streak_of_requests_for_one_other_shard() {
        let (here, there) = (ShardId(0), ShardId(1));
        let affinity = Affinity::with_patience(Duration::ZERO);
        for _ in 1..FOLLOW_AFTER {
            affinity.note(here, [Some(there), Some(there)]);
            assert_eq!(affinity.wanted(), None, "not yet a streak");
        }
        // Requests without partitions change nothing.
        affinity.note(here, []);
        affinity.note(here, [Some(there)]);
        assert_eq!(affinity.wanted(), Some(there));

        // Work on this shard, on several shards, or on a partition no shard owns starts
        // the count over.
        for breaker in [
            vec![Some(here)],
            vec![Some(there), Some(here)],
            vec![Some(there), None],
        ] {
            affinity.note(here, breaker.clone());
            assert_eq!(affinity.wanted(), None, "{breaker:?}");
            for _ in 0..FOLLOW_AFTER {
                affinity.note(here, [Some(there)]);
            }
            assert_eq!(affinity.wanted(), Some(there));
        }

        // A streak shorter than the patience does not move the connection, and each
        // move doubles the patience of the next.
        let patient = Affinity::new(0);
        for _ in 0..100 {
            patient.note(here, [Some(there)]);
        }
        assert_eq!(patient.wanted(), None, "within the first second");
        assert_eq!(Affinity::new(2).patience, 4 * FOLLOW_PATIENCE);
        assert_eq!(Affinity::new(40).patience, 64 * FOLLOW_PATIENCE);
    }
}
