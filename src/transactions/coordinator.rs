//! `TransactionCoordinator`: the transactional ids of the `__transaction_state`
//! partitions one shard owns, and one method per Kafka request the coordinator answers
//! (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions,
//! ListTransactions), plus the two periodic jobs (timed-out transactions,
//! transactional-id expiry) and the replay of a partition.
//!
//! One per shard, `!Send`, used through `&self` by many tasks of that shard. Its effects
//! (records, markers, producer ids, the clock) go through the `TxnEnv` the caller passes
//! to each call. Transaction version 1 semantics: the epoch is bumped by InitProducerId
//! and by fencing, never per transaction.
//!
//! Invariants (Kafka's pending-state discipline):
//! - an operation first decides, under one short borrow, what the id's next state is and
//!   marks it `pending`; any other operation on that id meanwhile gets
//!   CONCURRENT_TRANSACTIONS;
//! - the next state becomes visible only once its record is durable; if the write fails
//!   the id keeps its state, the pending mark is cleared and the error returned;
//! - a borrow is never held across an await; after one, the operation goes on only if
//!   its partition is still loaded under the same load (else NOT_COORDINATOR);
//! - EndTxn answers once the Prepare record, every marker and the Complete record are
//!   durable. A transaction left in PrepareCommit/PrepareAbort (a crash, or a failed
//!   marker write) is finished by `complete_pending`, which the caller runs after each
//!   load and on its timer.

use super::error::TxnError;
use super::records::{self, TxnRecord};
use super::state::{TxnMetadata, TxnState, epoch_exhausted};
use crate::config::BrokerConfig;
use crate::model::{ProducerEpoch, ProducerId, Timestamp, TopicPartition, partition_for_key};
use crate::storage::Notify;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};

/// What the coordinator does to the world, implemented by its caller: on a shard, writes
/// to the `__transaction_state` partition it owns and markers sent to the partitions'
/// owners; in tests, vectors.
// Used generically on one shard, never as `dyn`; its futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait TxnEnv {
    /// Appends one record to partition `partition` of `__transaction_state`, durably;
    /// `value` None is a tombstone.
    async fn persist(
        &self,
        partition: i32,
        key: Bytes,
        value: Option<Bytes>,
    ) -> Result<(), TxnError>;
    /// Writes a COMMIT (`commit`) or ABORT marker of (`producer_id`, `producer_epoch`) on
    /// every partition, durably; returns once all are written.
    async fn write_markers(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        commit: bool,
        partitions: Vec<TopicPartition>,
    ) -> Result<(), TxnError>;
    /// A producer id never handed out before.
    async fn allocate_producer_id(&self) -> Result<ProducerId, TxnError>;
    fn now(&self) -> Timestamp;
}

/// The broker settings the coordinator applies.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
}

impl TxnConfig {
    pub fn from_broker(config: &BrokerConfig) -> TxnConfig {
        TxnConfig {
            max_timeout_ms: config.transaction_max_timeout_ms,
            id_expiration_ms: i64::from(config.transactional_id_expiration_ms),
        }
    }
}

/// One transaction of a ListTransactions answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTxn {
    pub transactional_id: String,
    pub producer_id: ProducerId,
    pub state: TxnState,
}

/// Whether one partition is in the transaction (KIP-890 verification).
pub type Verdict = (TopicPartition, Result<(), TxnError>);

/// A ListTransactions answer from this coordinator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnListing {
    /// State filters that name no Kafka state.
    pub unknown_state_filters: Vec<String>,
    pub transactions: Vec<ListedTxn>,
}

/// A `__transaction_state` partition of this shard.
enum Load {
    /// Being replayed: its ids get COORDINATOR_LOAD_IN_PROGRESS.
    Loading,
    /// Replayed; the number tells one load from the next.
    Loaded(u64),
    /// Being given up (a placement move): operations under way on its ids finish, new
    /// ones get NOT_COORDINATOR.
    Draining(u64),
}

/// Where an operation runs: its id's partition, under which load.
#[derive(Debug, Clone, Copy)]
struct Owner {
    partition: i32,
    load: u64,
}

/// What InitProducerId does next with an existing id.
enum InitStep {
    /// Abort the transaction in progress under a bumped epoch (this PrepareAbort).
    Fence(TxnMetadata),
    /// Write this Empty state and answer with its producer id and epoch.
    Init(TxnMetadata),
    /// The epoch is exhausted: allocate a producer id first.
    NeedProducerId,
}

pub struct TransactionCoordinator {
    config: TxnConfig,
    /// How many partitions `__transaction_state` has (0 until one is loaded).
    partition_count: Cell<i32>,
    partitions: RefCell<HashMap<i32, Load>>,
    loads: Cell<u64>,
    txns: RefCell<HashMap<String, TxnMetadata>>,
    /// Raised whenever an operation's pending mark is cleared.
    settled: Notify,
}

impl TransactionCoordinator {
    pub fn new(config: TxnConfig) -> TransactionCoordinator {
        TransactionCoordinator {
            config,
            partition_count: Cell::new(0),
            partitions: RefCell::new(HashMap::new()),
            loads: Cell::new(0),
            txns: RefCell::new(HashMap::new()),
            settled: Notify::new(),
        }
    }

    /// How many transactional ids this coordinator holds (metrics).
    pub fn transaction_count(&self) -> usize {
        self.txns.borrow().len()
    }

    // ---- partitions ----

    /// Marks a partition this shard now owns as being replayed.
    pub fn loading(&self, partition: i32, partition_count: i32) {
        self.partition_count.set(partition_count);
        self.partitions
            .borrow_mut()
            .insert(partition, Load::Loading);
    }

    /// Takes over a partition from its records in log order: the last record of an id
    /// wins, a tombstone removes it, a record that does not decode is skipped with a
    /// warning. A transaction replayed in PrepareEpochFence is held as PrepareAbort (its
    /// fenced epoch is in the record), so `complete_pending` aborts it. Returns how many
    /// ids the partition holds.
    pub fn load_partition(
        &self,
        partition: i32,
        partition_count: i32,
        log: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    ) -> usize {
        let mut replayed: HashMap<String, Option<TxnMetadata>> = HashMap::new();
        for (key, value) in log {
            match records::decode(key, value) {
                Ok(TxnRecord::Txn {
                    transactional_id,
                    metadata,
                }) => {
                    replayed.insert(transactional_id, metadata);
                }
                Ok(TxnRecord::Ignored { key_version }) => {
                    tracing::warn!(
                        "__transaction_state-{partition}: skipping a record of key version {key_version}"
                    );
                }
                Err(e) => tracing::warn!("__transaction_state-{partition}: skipping a record: {e}"),
            }
        }
        self.unload_partition(partition);
        self.partition_count.set(partition_count);
        let load = self.loads.get() + 1;
        self.loads.set(load);
        self.partitions
            .borrow_mut()
            .insert(partition, Load::Loaded(load));
        let mut txns = self.txns.borrow_mut();
        let mut count = 0;
        for (id, metadata) in replayed {
            let Some(mut metadata) = metadata else {
                continue;
            };
            match metadata.state {
                TxnState::Dead => continue,
                TxnState::PrepareEpochFence => metadata.state = TxnState::PrepareAbort,
                _ => {}
            }
            txns.insert(id, metadata);
            count += 1;
        }
        count
    }

    /// Prepares to give up a partition (before a placement move): its ids take no new
    /// operation (NOT_COORDINATOR, which clients retry), and this returns once every
    /// operation in flight on them has ended — so no marker of this coordinator is
    /// written after the next owner has replayed the partition.
    pub async fn drain_partition(&self, partition: i32) {
        if let Some(load) = self.partitions.borrow_mut().get_mut(&partition)
            && let Load::Loaded(number) = *load
        {
            *load = Load::Draining(number);
        }
        loop {
            let settled = self.settled.listen();
            let count = self.partition_count.get();
            let busy = count > 0
                && self.txns.borrow().iter().any(|(id, m)| {
                    m.pending.is_some() && partition_for_key(id, count) == partition
                });
            if !busy {
                return;
            }
            settled.await;
        }
    }

    /// Gives up a partition: its ids are forgotten, operations in flight on them end with
    /// NOT_COORDINATOR.
    pub fn unload_partition(&self, partition: i32) {
        self.partitions.borrow_mut().remove(&partition);
        let count = self.partition_count.get();
        if count > 0 {
            self.txns
                .borrow_mut()
                .retain(|id, _| partition_for_key(id, count) != partition);
        }
    }

    /// The ids whose transaction is decided but not completed, with no operation in flight.
    pub fn pending_completions(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .txns
            .borrow()
            .values()
            .filter(|m| m.state.is_prepared() && m.pending.is_none())
            .map(|m| m.transactional_id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Finishes every `pending_completions` transaction: markers, then its Complete record.
    pub async fn complete_pending<E: TxnEnv>(
        &self,
        env: &E,
    ) -> Vec<(String, Result<(), TxnError>)> {
        let mut done = Vec::new();
        for id in self.pending_completions() {
            let result = match self.owner(&id) {
                Ok(owner) => self.complete(env, owner, &id).await,
                Err(e) => Err(e),
            };
            done.push((id, result));
        }
        done
    }

    // ---- requests ----

    /// InitProducerId with a transactional id: a new id gets a new producer id at epoch
    /// 0; a known one has its epoch bumped (a new producer id once the epoch is
    /// exhausted), fencing earlier producers. A transaction in progress is aborted first
    /// under a bumped epoch; Kafka then answers CONCURRENT_TRANSACTIONS and bumps again on
    /// the retry, while here the abort is complete on return, so the second bump follows
    /// at once. `expected` is KIP-360's producer id and epoch of a producer resuming.
    pub async fn init_producer_id<E: TxnEnv>(
        &self,
        env: &E,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
    ) -> Result<(ProducerId, ProducerEpoch), TxnError> {
        let owner = self.owner(transactional_id)?;
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        if !self.txns.borrow().contains_key(transactional_id) {
            let producer_id = env.allocate_producer_id().await?;
            self.check(owner)?;
            self.txns
                .borrow_mut()
                .entry(transactional_id.to_string())
                .or_insert_with(|| {
                    TxnMetadata::new(transactional_id, producer_id, timeout_ms, env.now())
                });
        }
        let mut spare = None;
        loop {
            match self.init_step(transactional_id, timeout_ms, expected, spare, env.now())? {
                InitStep::NeedProducerId => {
                    spare = Some(env.allocate_producer_id().await?);
                    self.check(owner)?;
                }
                InitStep::Fence(prepare_abort) => {
                    self.write(env, owner, prepare_abort).await?;
                    self.complete(env, owner, transactional_id).await?;
                }
                InitStep::Init(next) => {
                    let answer = (next.producer_id, next.producer_epoch);
                    let written = self.write(env, owner, next).await;
                    if written.is_err() {
                        self.forget_unwritten(owner, transactional_id);
                    }
                    return written.map(|()| answer);
                }
            }
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, through `add_offsets`): the partitions
    /// join the producer's transaction, which starts if none is in progress.
    pub async fn add_partitions<E: TxnEnv>(
        &self,
        env: &E,
        transactional_id: &str,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        partitions: &[TopicPartition],
    ) -> Result<(), TxnError> {
        let owner = self.owner(transactional_id)?;
        let next = {
            let mut txns = self.txns.borrow_mut();
            let meta = txns
                .get_mut(transactional_id)
                .ok_or(TxnError::InvalidProducerIdMapping)?;
            check_producer(meta, producer_id, producer_epoch)?;
            if meta.pending.is_some() {
                return Err(TxnError::ConcurrentTransactions);
            }
            match meta.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    return Err(TxnError::ConcurrentTransactions);
                }
                TxnState::Ongoing if partitions.iter().all(|tp| meta.partitions.contains(tp)) => {
                    return Ok(());
                }
                TxnState::Empty
                | TxnState::Ongoing
                | TxnState::CompleteCommit
                | TxnState::CompleteAbort => {}
                TxnState::Dead | TxnState::PrepareEpochFence => {
                    return Err(TxnError::InvalidTxnState);
                }
            }
            let now = env.now();
            let mut next = meta.moved_to(TxnState::Ongoing, now);
            if meta.state != TxnState::Ongoing {
                next.start = now;
                next.partitions.clear();
            }
            next.partitions.extend(partitions.iter().cloned());
            meta.pending = Some(TxnState::Ongoing);
            next
        };
        self.write(env, owner, next).await
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition (which the caller
    /// computes) joins the transaction, so its TxnOffsetCommit gets the transaction's
    /// markers.
    pub async fn add_offsets<E: TxnEnv>(
        &self,
        env: &E,
        transactional_id: &str,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        offsets_partition: TopicPartition,
    ) -> Result<(), TxnError> {
        let partitions = [offsets_partition];
        self.add_partitions(
            env,
            transactional_id,
            producer_id,
            producer_epoch,
            &partitions,
        )
        .await
    }

    /// AddPartitionsToTxn with KIP-890's `VerifyOnly`: whether each partition is already
    /// in the producer's transaction (TRANSACTION_ABORTABLE where not), adding nothing.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Verdict>, TxnError> {
        self.owner(transactional_id)?;
        let txns = self.txns.borrow();
        let meta = txns
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        check_producer(meta, producer_id, producer_epoch)?;
        if matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|tp| {
                let verdict = if meta.partitions.contains(tp) {
                    Ok(())
                } else {
                    Err(TxnError::TransactionAbortable)
                };
                (tp.clone(), verdict)
            })
            .collect())
    }

    /// Whether `partition` is in the transaction of this producer (KIP-890: a partition
    /// leader asks before appending transactional data).
    pub fn verify(
        &self,
        transactional_id: &str,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        partition: &TopicPartition,
    ) -> bool {
        let partitions = std::slice::from_ref(partition);
        match self.verify_partitions(transactional_id, producer_id, producer_epoch, partitions) {
            Ok(verdicts) => verdicts.iter().all(|(_, verdict)| verdict.is_ok()),
            Err(_) => false,
        }
    }

    /// EndTxn: commits (`commit`) or aborts the transaction in progress, answering once
    /// its Prepare record, its markers and its Complete record are durable. A retry after
    /// completion with the same outcome succeeds; one while completing gets
    /// CONCURRENT_TRANSACTIONS; the other outcome, or no transaction, INVALID_TXN_STATE.
    pub async fn end_txn<E: TxnEnv>(
        &self,
        env: &E,
        transactional_id: &str,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        commit: bool,
    ) -> Result<(), TxnError> {
        let owner = self.owner(transactional_id)?;
        let next = {
            let mut txns = self.txns.borrow_mut();
            let meta = txns
                .get_mut(transactional_id)
                .ok_or(TxnError::InvalidProducerIdMapping)?;
            check_producer(meta, producer_id, producer_epoch)?;
            if meta.pending.is_some() {
                return Err(TxnError::ConcurrentTransactions);
            }
            match (meta.state, commit) {
                (TxnState::Ongoing, _) => {}
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                    return Ok(());
                }
                (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                    return Err(TxnError::ConcurrentTransactions);
                }
                _ => return Err(TxnError::InvalidTxnState),
            }
            let prepare = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            meta.pending = Some(prepare);
            meta.moved_to(prepare, env.now())
        };
        self.write(env, owner, next).await?;
        self.complete(env, owner, transactional_id).await
    }

    /// Aborts every transaction in progress for longer than its timeout, under a bumped
    /// epoch so the producer that let it lapse is fenced (transaction version 1).
    pub async fn abort_timed_out<E: TxnEnv>(&self, env: &E) -> Vec<(String, Result<(), TxnError>)> {
        let now = env.now();
        let mut ids: Vec<String> = self
            .txns
            .borrow()
            .values()
            .filter(|m| m.timed_out(now))
            .map(|m| m.transactional_id.clone())
            .collect();
        ids.sort();
        let mut done = Vec::new();
        for id in ids {
            let Ok(owner) = self.owner(&id) else {
                continue;
            };
            let prepare_abort = {
                let mut txns = self.txns.borrow_mut();
                let Some(meta) = txns.get_mut(&id).filter(|m| m.timed_out(now)) else {
                    continue; // it moved on while an earlier abort was written
                };
                match fenced_abort(meta, env.now()) {
                    Ok(next) => {
                        meta.pending = Some(next.state);
                        next
                    }
                    Err(e) => {
                        done.push((id, Err(e)));
                        continue;
                    }
                }
            };
            let result = match self.write(env, owner, prepare_abort).await {
                Ok(()) => self.complete(env, owner, &id).await,
                Err(e) => Err(e),
            };
            done.push((id, result));
        }
        done
    }

    /// Removes the ids idle (Empty or Complete*) for `transactional.id.expiration.ms`
    /// since their last update, writing their tombstones.
    pub async fn expire_transactional_ids<E: TxnEnv>(
        &self,
        env: &E,
    ) -> Vec<(String, Result<(), TxnError>)> {
        let cutoff = env.now().0.saturating_sub(self.config.id_expiration_ms);
        let expired: Vec<TxnMetadata> = {
            let mut txns = self.txns.borrow_mut();
            let mut expired: Vec<TxnMetadata> = txns
                .values_mut()
                .filter(|m| {
                    m.pending.is_none()
                        && m.state.can_transition_to(TxnState::Dead)
                        && m.last_update.0 <= cutoff
                })
                .map(|m| {
                    m.pending = Some(TxnState::Dead);
                    m.moved_to(TxnState::Dead, m.last_update)
                })
                .collect();
            expired.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
            expired
        };
        let mut done = Vec::new();
        for dead in expired {
            let id = dead.transactional_id.clone();
            let result = match self.owner(&id) {
                Ok(owner) => self.write(env, owner, dead).await,
                Err(e) => Err(e),
            };
            done.push((id, result));
        }
        done
    }

    /// DescribeTransactions: each id's state, in request order.
    pub fn describe(&self, transactional_ids: &[String]) -> Vec<Result<TxnMetadata, TxnError>> {
        transactional_ids
            .iter()
            .map(|id| {
                self.owner(id)?;
                match self.txns.borrow().get(id) {
                    Some(meta) if meta.state != TxnState::Dead => Ok(meta.clone()),
                    _ => Err(TxnError::TransactionalIdNotFound),
                }
            })
            .collect()
    }

    /// ListTransactions over this coordinator's ids: those in one of `state_filters`
    /// (Kafka's names; all when empty), of one of `producer_id_filters` (all when empty)
    /// and, when `duration_filter_ms` ≥ 0, started longer ago than that.
    pub fn list(
        &self,
        state_filters: &[String],
        producer_id_filters: &[ProducerId],
        duration_filter_ms: i64,
        now: Timestamp,
    ) -> Result<TxnListing, TxnError> {
        if self
            .partitions
            .borrow()
            .values()
            .any(|load| matches!(load, Load::Loading))
        {
            return Err(TxnError::CoordinatorLoadInProgress);
        }
        let mut listing = TxnListing::default();
        let mut states = BTreeSet::new();
        for name in state_filters {
            match TxnState::from_name(name) {
                Some(state) => {
                    states.insert(state);
                }
                None => listing.unknown_state_filters.push(name.clone()),
            }
        }
        for meta in self.txns.borrow().values() {
            let included = meta.state != TxnState::Dead
                && (producer_id_filters.is_empty()
                    || producer_id_filters.contains(&meta.producer_id))
                && (state_filters.is_empty() || states.contains(&meta.state))
                && (duration_filter_ms < 0
                    || now.0.saturating_sub(meta.start.0) > duration_filter_ms);
            if included {
                listing.transactions.push(ListedTxn {
                    transactional_id: meta.transactional_id.clone(),
                    producer_id: meta.producer_id,
                    state: meta.state,
                });
            }
        }
        listing
            .transactions
            .sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(listing)
    }

    // ---- the steps every operation shares ----

    /// The partition holding `transactional_id`, if this coordinator has it loaded.
    fn owner(&self, transactional_id: &str) -> Result<Owner, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        let count = self.partition_count.get();
        if count == 0 {
            return Err(TxnError::CoordinatorNotAvailable);
        }
        let partition = partition_for_key(transactional_id, count);
        match self.partitions.borrow().get(&partition) {
            Some(Load::Loaded(load)) => Ok(Owner {
                partition,
                load: *load,
            }),
            Some(Load::Loading) => Err(TxnError::CoordinatorLoadInProgress),
            Some(Load::Draining(_)) | None => Err(TxnError::NotCoordinator),
        }
    }

    /// Whether the partition is still loaded under the same load as when `owner` was
    /// taken (checked after every await).
    fn check(&self, owner: Owner) -> Result<(), TxnError> {
        match self.partitions.borrow().get(&owner.partition) {
            // Operations under way on a draining partition finish.
            Some(Load::Loaded(load) | Load::Draining(load)) if *load == owner.load => Ok(()),
            _ => Err(TxnError::NotCoordinator),
        }
    }

    /// Decides InitProducerId's next step for an existing id, marking it pending unless
    /// a producer id must be allocated first.
    fn init_step(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
        spare: Option<ProducerId>,
        now: Timestamp,
    ) -> Result<InitStep, TxnError> {
        let mut txns = self.txns.borrow_mut();
        // Gone: expired while a producer id was allocated; the client retries.
        let meta = txns
            .get_mut(transactional_id)
            .ok_or(TxnError::ConcurrentTransactions)?;
        if meta.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if expected.is_some_and(|expected| !may_resume(meta, expected)) {
            return Err(TxnError::ProducerFenced);
        }
        let step = match meta.state {
            TxnState::Ongoing => InitStep::Fence(fenced_abort(meta, now)?),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let empty = TxnMetadata {
                    timeout_ms,
                    partitions: BTreeSet::new(),
                    start: Timestamp::NONE,
                    ..meta.moved_to(TxnState::Empty, now)
                };
                let rotate = epoch_exhausted(meta.producer_epoch)
                    && expected.is_none_or(|(_, epoch)| epoch == meta.producer_epoch);
                if rotate {
                    let Some(producer_id) = spare else {
                        return Ok(InitStep::NeedProducerId);
                    };
                    InitStep::Init(TxnMetadata {
                        producer_id,
                        previous_producer_id: meta.producer_id,
                        next_producer_id: ProducerId::NONE,
                        producer_epoch: ProducerEpoch(0),
                        last_producer_epoch: match expected {
                            Some(_) => meta.producer_epoch,
                            None => ProducerEpoch::NONE,
                        },
                        ..empty
                    })
                } else {
                    let (epoch, last) = bumped_epoch(meta, expected.map(|(_, epoch)| epoch))?;
                    InitStep::Init(TxnMetadata {
                        producer_epoch: epoch,
                        last_producer_epoch: last,
                        ..empty
                    })
                }
            }
            TxnState::PrepareCommit
            | TxnState::PrepareAbort
            | TxnState::PrepareEpochFence
            | TxnState::Dead => return Err(TxnError::ConcurrentTransactions),
        };
        if let InitStep::Fence(next) | InitStep::Init(next) = &step {
            meta.pending = Some(next.state);
        }
        Ok(step)
    }

    /// Writes the markers of a decided transaction, then its Complete record.
    async fn complete<E: TxnEnv>(
        &self,
        env: &E,
        owner: Owner,
        transactional_id: &str,
    ) -> Result<(), TxnError> {
        let (producer_id, producer_epoch, commit, partitions) = {
            let mut txns = self.txns.borrow_mut();
            let meta = txns
                .get_mut(transactional_id)
                .ok_or(TxnError::NotCoordinator)?;
            if meta.pending.is_some() {
                return Err(TxnError::ConcurrentTransactions);
            }
            let (commit, complete) = match meta.state {
                TxnState::PrepareCommit => (true, TxnState::CompleteCommit),
                TxnState::PrepareAbort => (false, TxnState::CompleteAbort),
                _ => return Err(TxnError::InvalidTxnState),
            };
            meta.pending = Some(complete);
            let partitions = meta.partitions.iter().cloned().collect();
            (meta.producer_id, meta.producer_epoch, commit, partitions)
        };
        let markers = env
            .write_markers(producer_id, producer_epoch, commit, partitions)
            .await;
        if let Err(e) = markers {
            return self.settle(owner, transactional_id, Err(e));
        }
        self.check(owner)?;
        let next = {
            let txns = self.txns.borrow();
            let meta = txns.get(transactional_id).ok_or(TxnError::NotCoordinator)?;
            let complete = meta.pending.unwrap_or(meta.state);
            TxnMetadata {
                partitions: BTreeSet::new(),
                ..meta.moved_to(complete, env.now())
            }
        };
        self.write(env, owner, next).await
    }

    /// Writes `next`, the state its id's pending operation moves to, and makes it current
    /// (a Dead id is removed); on failure the id keeps its state. Every transition is
    /// checked against Kafka's table before its record is written.
    async fn write<E: TxnEnv>(
        &self,
        env: &E,
        owner: Owner,
        next: TxnMetadata,
    ) -> Result<(), TxnError> {
        let id = next.transactional_id.clone();
        let allowed = self
            .txns
            .borrow()
            .get(&id)
            .is_some_and(|current| current.state.can_transition_to(next.state));
        if !allowed {
            return self.settle(owner, &id, Err(TxnError::InvalidTxnState));
        }
        let key = records::encode_key(&id);
        let value = match next.state {
            TxnState::Dead => Ok(None),
            _ => records::encode_value(&next).map(Some),
        };
        let written = match (key, value) {
            (Ok(key), Ok(value)) => env.persist(owner.partition, key, value).await,
            _ => Err(TxnError::UnknownServerError),
        };
        self.settle(owner, &id, written.map(|()| next))
    }

    /// Ends the pending operation on an id: clears its mark and, on success, makes its
    /// new state current.
    fn settle(
        &self,
        owner: Owner,
        transactional_id: &str,
        outcome: Result<TxnMetadata, TxnError>,
    ) -> Result<(), TxnError> {
        self.check(owner)?;
        let mut txns = self.txns.borrow_mut();
        let meta = txns
            .get_mut(transactional_id)
            .ok_or(TxnError::NotCoordinator)?;
        meta.pending = None;
        self.settled.notify_all();
        match outcome {
            Ok(next) if next.state == TxnState::Dead => {
                txns.remove(transactional_id);
                Ok(())
            }
            Ok(next) => {
                *meta = next;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets a new id whose first record could not be written.
    fn forget_unwritten(&self, owner: Owner, transactional_id: &str) {
        if self.check(owner).is_ok() {
            let mut txns = self.txns.borrow_mut();
            let unwritten = txns
                .get(transactional_id)
                .is_some_and(|m| m.producer_epoch == ProducerEpoch::NONE && m.pending.is_none());
            if unwritten {
                txns.remove(transactional_id);
            }
        }
    }
}

/// The producer of a request must be the id's current one.
fn check_producer(
    meta: &TxnMetadata,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
) -> Result<(), TxnError> {
    if meta.producer_id != producer_id {
        Err(TxnError::InvalidProducerIdMapping)
    } else if meta.producer_epoch != producer_epoch {
        Err(TxnError::ProducerFenced)
    } else {
        Ok(())
    }
}

/// KIP-360: a producer resuming with `expected` may go on if the id was just created,
/// if it names the current producer id (its epoch is checked by `bumped_epoch`), or if
/// it names the previous one with an exhausted epoch (a retry of the rotation).
fn may_resume(meta: &TxnMetadata, (producer_id, epoch): (ProducerId, ProducerEpoch)) -> bool {
    meta.producer_epoch == ProducerEpoch::NONE
        || producer_id == meta.producer_id
        || (producer_id == meta.previous_producer_id && epoch_exhausted(epoch))
}

/// InitProducerId's epoch bump: the new epoch and the one it replaces. A retry of the
/// last bump (`expected` is the epoch before it) gets the same epoch again; any other
/// stale epoch is fenced.
fn bumped_epoch(
    meta: &TxnMetadata,
    expected: Option<ProducerEpoch>,
) -> Result<(ProducerEpoch, ProducerEpoch), TxnError> {
    let bumped = ProducerEpoch(meta.producer_epoch.0.saturating_add(1));
    match expected {
        None => Ok((bumped, ProducerEpoch::NONE)),
        Some(epoch)
            if meta.producer_epoch == ProducerEpoch::NONE || epoch == meta.producer_epoch =>
        {
            Ok((bumped, meta.producer_epoch))
        }
        Some(epoch) if epoch == meta.last_producer_epoch => {
            Ok((meta.producer_epoch, meta.last_producer_epoch))
        }
        Some(_) => Err(TxnError::ProducerFenced),
    }
}

/// The PrepareAbort that fences the producer of a transaction in progress: its epoch is
/// bumped, so the markers (and the coordinator) refuse the old one.
fn fenced_abort(meta: &TxnMetadata, now: Timestamp) -> Result<TxnMetadata, TxnError> {
    let Some(epoch) = meta.producer_epoch.0.checked_add(1) else {
        return Err(TxnError::InvalidTxnState);
    };
    Ok(TxnMetadata {
        producer_epoch: ProducerEpoch(epoch),
        last_producer_epoch: ProducerEpoch::NONE,
        ..meta.moved_to(TxnState::PrepareAbort, now)
    })
}
