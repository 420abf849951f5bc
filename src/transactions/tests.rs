//! The coordinator against a fake `TxnEnv`: records and markers kept in vectors, producer
//! ids from a counter, a settable clock, and switches that make writes fail or yield.

use super::records::{self, TxnRecord};
use super::*;
use crate::model::{ProducerEpoch, ProducerId, Timestamp, TopicPartition};
use bytes::Bytes;
use futures_lite::future::{block_on, yield_now, zip};
use std::cell::{Cell, RefCell};

#[derive(Debug, Clone, PartialEq)]
struct Markers {
    producer_id: ProducerId,
    epoch: ProducerEpoch,
    commit: bool,
    partitions: Vec<TopicPartition>,
}

#[derive(Default)]
struct FakeEnv {
    records: RefCell<Vec<(i32, Bytes, Option<Bytes>)>>,
    markers: RefCell<Vec<Markers>>,
    next_producer_id: Cell<i64>,
    now: Cell<i64>,
    fail_persist: Cell<bool>,
    fail_markers: Cell<bool>,
    /// Every write yields once first, so another task can run meanwhile.
    slow: Cell<bool>,
}

impl TxnEnv for FakeEnv {
    async fn persist(
        &self,
        partition: i32,
        key: Bytes,
        value: Option<Bytes>,
    ) -> Result<(), TxnError> {
        if self.slow.get() {
            yield_now().await;
        }
        if self.fail_persist.get() {
            return Err(TxnError::NotCoordinator);
        }
        self.records.borrow_mut().push((partition, key, value));
        Ok(())
    }

    async fn write_markers(
        &self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        commit: bool,
        partitions: Vec<TopicPartition>,
    ) -> Result<(), TxnError> {
        if self.fail_markers.get() {
            return Err(TxnError::CoordinatorNotAvailable);
        }
        self.markers.borrow_mut().push(Markers {
            producer_id,
            epoch,
            commit,
            partitions,
        });
        Ok(())
    }

    async fn allocate_producer_id(&self) -> Result<ProducerId, TxnError> {
        let id = self.next_producer_id.get() + 1000;
        self.next_producer_id.set(self.next_producer_id.get() + 1);
        Ok(ProducerId(id))
    }

    fn now(&self) -> Timestamp {
        Timestamp(self.now.get())
    }
}

impl FakeEnv {
    fn new() -> FakeEnv {
        let env = FakeEnv::default();
        env.now.set(1_000_000);
        env
    }

    fn advance(&self, ms: i64) {
        self.now.set(self.now.get() + ms);
    }

    /// The states written, in order (tombstones as Dead).
    fn states(&self) -> Vec<TxnState> {
        self.records
            .borrow()
            .iter()
            .map(
                |(_, k, v)| match records::decode(k.clone(), v.clone()).unwrap() {
                    TxnRecord::Txn {
                        metadata: Some(m), ..
                    } => m.state,
                    _ => TxnState::Dead,
                },
            )
            .collect()
    }

    fn log(&self) -> Vec<(Bytes, Option<Bytes>)> {
        self.records
            .borrow()
            .iter()
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

const MAX_TIMEOUT: i32 = 900_000;
const EXPIRATION: i64 = 604_800_000;

/// A coordinator owning the single partition of a one-partition topic.
fn coordinator() -> TransactionCoordinator {
    let c = TransactionCoordinator::new(TxnConfig {
        max_timeout_ms: MAX_TIMEOUT,
        id_expiration_ms: EXPIRATION,
    });
    c.load_partition(0, 1, Vec::new());
    c
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn describe(c: &TransactionCoordinator, id: &str) -> TxnMetadata {
    c.describe(&[id.to_string()]).remove(0).unwrap()
}

fn init(c: &TransactionCoordinator, env: &FakeEnv, id: &str) -> (ProducerId, ProducerEpoch) {
    block_on(c.init_producer_id(env, id, 60_000, None)).unwrap()
}

#[test]
fn init_gives_a_new_id_epoch_0_and_bumps_the_epoch_of_a_known_one() {
    let (c, env) = (coordinator(), FakeEnv::new());
    assert_eq!(init(&c, &env, "tx"), (ProducerId(1000), ProducerEpoch(0)));
    assert_eq!(init(&c, &env, "tx"), (ProducerId(1000), ProducerEpoch(1)));
    assert_eq!(
        init(&c, &env, "other"),
        (ProducerId(1001), ProducerEpoch(0))
    );
    assert_eq!(env.states(), vec![TxnState::Empty; 3]);
    let meta = describe(&c, "tx");
    assert_eq!((meta.state, meta.timeout_ms), (TxnState::Empty, 60_000));
}

#[test]
fn a_zombie_with_an_older_epoch_is_fenced() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, old) = init(&c, &env, "tx");
    let (_, new) = init(&c, &env, "tx");
    let parts = [tp("t", 0)];
    let err = block_on(c.add_partitions(&env, "tx", pid, old, &parts)).unwrap_err();
    assert_eq!(err, TxnError::ProducerFenced);
    assert_eq!(
        err.code_for(crate::protocol::generated::ApiKey::AddPartitionsToTxn, 1),
        crate::protocol::ErrorCode::InvalidProducerEpoch
    );
    let err = block_on(c.end_txn(&env, "tx", pid, old, true)).unwrap_err();
    assert_eq!(err, TxnError::ProducerFenced);
    let err = block_on(c.add_partitions(&env, "tx", ProducerId(7), new, &parts)).unwrap_err();
    assert_eq!(err, TxnError::InvalidProducerIdMapping);
    let err = block_on(c.end_txn(&env, "nobody", pid, new, true)).unwrap_err();
    assert_eq!(err, TxnError::InvalidProducerIdMapping);
    block_on(c.add_partitions(&env, "tx", pid, new, &parts)).unwrap();
}

#[test]
fn commit_writes_markers_on_exactly_the_transactions_partitions_then_complete_commit() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, epoch) = init(&c, &env, "tx");
    block_on(c.add_partitions(&env, "tx", pid, epoch, &[tp("a", 0), tp("b", 1)])).unwrap();
    // Already in the transaction: answered without a record.
    block_on(c.add_partitions(&env, "tx", pid, epoch, &[tp("a", 0)])).unwrap();
    let offsets = tp("__consumer_offsets", 3);
    block_on(c.add_offsets(&env, "tx", pid, epoch, offsets.clone())).unwrap();
    assert_eq!(describe(&c, "tx").state, TxnState::Ongoing);

    block_on(c.end_txn(&env, "tx", pid, epoch, true)).unwrap();
    assert_eq!(
        *env.markers.borrow(),
        vec![Markers {
            producer_id: pid,
            epoch,
            commit: true,
            partitions: vec![offsets, tp("a", 0), tp("b", 1)],
        }]
    );
    assert_eq!(
        env.states(),
        vec![
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::CompleteCommit
        ]
    );
    let meta = describe(&c, "tx");
    assert_eq!(meta.state, TxnState::CompleteCommit);
    assert!(meta.partitions.is_empty());
    assert_eq!(
        meta.producer_epoch, epoch,
        "transaction version 1: no bump per transaction"
    );

    // A retried EndTxn after completion succeeds without writing; the other outcome is refused.
    block_on(c.end_txn(&env, "tx", pid, epoch, true)).unwrap();
    assert_eq!(env.markers.borrow().len(), 1);
    assert_eq!(env.records.borrow().len(), 5);
    let err = block_on(c.end_txn(&env, "tx", pid, epoch, false)).unwrap_err();
    assert_eq!(err, TxnError::InvalidTxnState);

    // The next transaction starts afresh.
    env.advance(10);
    block_on(c.add_partitions(&env, "tx", pid, epoch, &[tp("c", 0)])).unwrap();
    let meta = describe(&c, "tx");
    assert_eq!(
        meta.partitions.iter().cloned().collect::<Vec<_>>(),
        vec![tp("c", 0)]
    );
    assert_eq!(meta.start, env.now());
}

#[test]
fn abort_writes_abort_markers_and_end_txn_without_a_transaction_is_invalid() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, epoch) = init(&c, &env, "tx");
    let err = block_on(c.end_txn(&env, "tx", pid, epoch, false)).unwrap_err();
    assert_eq!(err, TxnError::InvalidTxnState);
    block_on(c.add_partitions(&env, "tx", pid, epoch, &[tp("a", 0)])).unwrap();
    block_on(c.end_txn(&env, "tx", pid, epoch, false)).unwrap();
    let markers = env.markers.borrow();
    assert_eq!(markers.len(), 1);
    assert!(!markers[0].commit);
    assert_eq!(describe(&c, "tx").state, TxnState::CompleteAbort);
    drop(markers);
    block_on(c.end_txn(&env, "tx", pid, epoch, false)).unwrap();
    let err = block_on(c.end_txn(&env, "tx", pid, epoch, true)).unwrap_err();
    assert_eq!(err, TxnError::InvalidTxnState);
}

#[test]
fn an_operation_in_flight_makes_others_on_the_id_concurrent() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, epoch) = init(&c, &env, "tx");
    env.slow.set(true);
    let parts = [tp("a", 0)];
    let (first, second) = block_on(zip(
        c.add_partitions(&env, "tx", pid, epoch, &parts),
        c.end_txn(&env, "tx", pid, epoch, true),
    ));
    assert_eq!(first, Ok(()));
    assert_eq!(second, Err(TxnError::ConcurrentTransactions));
    let (first, second) = block_on(zip(
        c.init_producer_id(&env, "new", 1_000, None),
        c.init_producer_id(&env, "new", 1_000, None),
    ));
    assert_eq!(first, Ok((ProducerId(1001), ProducerEpoch(0))));
    assert_eq!(second, Err(TxnError::ConcurrentTransactions));
}

#[test]
fn a_timed_out_transaction_is_aborted_under_a_bumped_epoch() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, epoch) = init(&c, &env, "tx");
    block_on(c.add_partitions(&env, "tx", pid, epoch, &[tp("a", 0)])).unwrap();
    env.advance(60_000);
    assert!(
        block_on(c.abort_timed_out(&env)).is_empty(),
        "not yet past the timeout"
    );
    env.advance(1);
    let aborted = block_on(c.abort_timed_out(&env));
    assert_eq!(aborted, vec![("tx".to_string(), Ok(()))]);
    let fenced = ProducerEpoch(epoch.0 + 1);
    assert_eq!(
        *env.markers.borrow(),
        vec![Markers {
            producer_id: pid,
            epoch: fenced,
            commit: false,
            partitions: vec![tp("a", 0)],
        }]
    );
    let meta = describe(&c, "tx");
    assert_eq!(
        (meta.state, meta.producer_epoch),
        (TxnState::CompleteAbort, fenced)
    );
    // The producer that let it lapse is fenced, even resuming with KIP-360 (version 1).
    let err = block_on(c.add_partitions(&env, "tx", pid, epoch, &[tp("a", 0)])).unwrap_err();
    assert_eq!(err, TxnError::ProducerFenced);
    let err = block_on(c.init_producer_id(&env, "tx", 60_000, Some((pid, epoch)))).unwrap_err();
    assert_eq!(err, TxnError::ProducerFenced);
    // A new producer instance gets the next epoch.
    assert_eq!(init(&c, &env, "tx"), (pid, ProducerEpoch(epoch.0 + 2)));
}

#[test]
fn init_during_a_transaction_aborts_it_first() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, epoch) = init(&c, &env, "tx");
    block_on(c.add_partitions(&env, "tx", pid, epoch, &[tp("a", 0)])).unwrap();
    assert_eq!(init(&c, &env, "tx"), (pid, ProducerEpoch(epoch.0 + 2)));
    let markers = env.markers.borrow();
    assert_eq!(markers.len(), 1);
    assert_eq!(
        (markers[0].commit, markers[0].epoch),
        (false, ProducerEpoch(epoch.0 + 1))
    );
    assert_eq!(
        env.states(),
        vec![
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareAbort,
            TxnState::CompleteAbort,
            TxnState::Empty
        ]
    );
}

#[test]
fn kip_360_a_producer_resumes_and_a_retried_bump_gets_the_same_epoch() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, epoch) = init(&c, &env, "tx");
    let resumed = block_on(c.init_producer_id(&env, "tx", 60_000, Some((pid, epoch)))).unwrap();
    assert_eq!(resumed, (pid, ProducerEpoch(1)));
    // The answer was lost: the retry names the epoch before the bump.
    let retried = block_on(c.init_producer_id(&env, "tx", 60_000, Some((pid, epoch)))).unwrap();
    assert_eq!(retried, resumed);
    let err = block_on(c.init_producer_id(&env, "tx", 60_000, Some((ProducerId(5), epoch))));
    assert_eq!(err, Err(TxnError::ProducerFenced));
}

#[test]
fn an_exhausted_epoch_gets_a_new_producer_id_and_keeps_the_previous_one() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let worn = TxnMetadata {
        producer_epoch: ProducerEpoch(i16::MAX - 1),
        ..TxnMetadata::new("tx", ProducerId(77), 60_000, env.now())
    };
    let log = vec![(
        records::encode_key("tx").unwrap(),
        Some(records::encode_value(&worn).unwrap()),
    )];
    c.load_partition(0, 1, log);
    let expected = Some((ProducerId(77), ProducerEpoch(i16::MAX - 1)));
    let rotated = block_on(c.init_producer_id(&env, "tx", 60_000, expected)).unwrap();
    assert_eq!(rotated, (ProducerId(1000), ProducerEpoch(0)));
    assert_eq!(describe(&c, "tx").previous_producer_id, ProducerId(77));
    // Written at value version 1, which carries the previous producer id.
    let value = env.records.borrow()[0].2.clone().unwrap();
    assert_eq!(&value[..2], &[0, 1]);
    // The retry of that InitProducerId, naming the old id, gets the same answer.
    let retried = block_on(c.init_producer_id(&env, "tx", 60_000, expected)).unwrap();
    assert_eq!(retried, rotated);
}

#[test]
fn replaying_the_log_reproduces_the_state_and_finishes_a_prepared_commit() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, epoch) = init(&c, &env, "done");
    block_on(c.add_partitions(&env, "done", pid, epoch, &[tp("a", 0)])).unwrap();
    block_on(c.end_txn(&env, "done", pid, epoch, true)).unwrap();
    let (pid2, epoch2) = init(&c, &env, "open");
    block_on(c.add_partitions(&env, "open", pid2, epoch2, &[tp("b", 2)])).unwrap();
    let (pid3, epoch3) = init(&c, &env, "crashed");
    block_on(c.add_partitions(&env, "crashed", pid3, epoch3, &[tp("c", 0), tp("d", 1)])).unwrap();
    // The markers cannot be written: the commit stays decided but unfinished.
    env.fail_markers.set(true);
    let err = block_on(c.end_txn(&env, "crashed", pid3, epoch3, true)).unwrap_err();
    assert_eq!(err, TxnError::CoordinatorNotAvailable);
    assert_eq!(describe(&c, "crashed").state, TxnState::PrepareCommit);
    let retried = block_on(c.end_txn(&env, "crashed", pid3, epoch3, true));
    assert_eq!(retried, Err(TxnError::ConcurrentTransactions));

    let replayed = coordinator();
    assert_eq!(replayed.load_partition(0, 1, env.log()), 3);
    for id in ["done", "open", "crashed"] {
        let (before, after) = (describe(&c, id), describe(&replayed, id));
        assert_eq!(
            after,
            TxnMetadata {
                last_producer_epoch: ProducerEpoch::NONE,
                ..before
            },
            "{id}"
        );
    }
    assert_eq!(replayed.pending_completions(), vec!["crashed".to_string()]);
    env.fail_markers.set(false);
    let completed = block_on(replayed.complete_pending(&env));
    assert_eq!(completed, vec![("crashed".to_string(), Ok(()))]);
    let last = env.markers.borrow().last().cloned().unwrap();
    assert_eq!((last.producer_id, last.commit), (pid3, true));
    assert_eq!(last.partitions, vec![tp("c", 0), tp("d", 1)]);
    assert_eq!(
        describe(&replayed, "crashed").state,
        TxnState::CompleteCommit
    );
    assert!(replayed.pending_completions().is_empty());
    block_on(replayed.end_txn(&env, "crashed", pid3, epoch3, true)).unwrap();
}

#[test]
fn a_failed_write_leaves_the_state_unchanged() {
    let (c, env) = (coordinator(), FakeEnv::new());
    env.fail_persist.set(true);
    let err = block_on(c.init_producer_id(&env, "tx", 60_000, None)).unwrap_err();
    assert_eq!(err, TxnError::NotCoordinator);
    assert_eq!(
        c.describe(&["tx".to_string()]),
        vec![Err(TxnError::TransactionalIdNotFound)]
    );
    env.fail_persist.set(false);
    let (pid, epoch) = init(&c, &env, "tx");
    let before = describe(&c, "tx");
    env.fail_persist.set(true);
    let parts = [tp("a", 0)];
    assert!(block_on(c.add_partitions(&env, "tx", pid, epoch, &parts)).is_err());
    assert!(block_on(c.init_producer_id(&env, "tx", 60_000, None)).is_err());
    assert_eq!(describe(&c, "tx"), before);
    env.fail_persist.set(false);
    block_on(c.add_partitions(&env, "tx", pid, epoch, &parts)).unwrap();
}

#[test]
fn timeouts_must_be_positive_and_at_most_the_maximum() {
    let (c, env) = (coordinator(), FakeEnv::new());
    for timeout in [0, -1, MAX_TIMEOUT + 1] {
        let err = block_on(c.init_producer_id(&env, "tx", timeout, None)).unwrap_err();
        assert_eq!(err, TxnError::InvalidTransactionTimeout, "{timeout}");
    }
    assert!(block_on(c.init_producer_id(&env, "tx", MAX_TIMEOUT, None)).is_ok());
    let err = block_on(c.init_producer_id(&env, "", 1_000, None)).unwrap_err();
    assert_eq!(err, TxnError::InvalidRequest);
}

#[test]
fn describe_and_list_report_kafkas_names_and_apply_filters() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, epoch) = init(&c, &env, "busy");
    block_on(c.add_partitions(&env, "busy", pid, epoch, &[tp("a", 0), tp("a", 1)])).unwrap();
    let (idle_pid, _) = init(&c, &env, "idle");

    let described = c.describe(&["busy".to_string(), "ghost".to_string()]);
    let busy = described[0].as_ref().unwrap();
    assert_eq!(busy.state.name(), "Ongoing");
    assert_eq!(busy.start, env.now());
    assert_eq!(busy.partitions.len(), 2);
    assert_eq!(described[1], Err(TxnError::TransactionalIdNotFound));

    let all = c.list(&[], &[], -1, env.now()).unwrap();
    let ids: Vec<&str> = all
        .transactions
        .iter()
        .map(|t| t.transactional_id.as_str())
        .collect();
    assert_eq!(ids, vec!["busy", "idle"]);
    let filters = ["Ongoing".to_string(), "Bogus".to_string()];
    let ongoing = c.list(&filters, &[], -1, env.now()).unwrap();
    assert_eq!(ongoing.unknown_state_filters, vec!["Bogus".to_string()]);
    assert_eq!(
        ongoing.transactions,
        vec![ListedTxn {
            transactional_id: "busy".into(),
            producer_id: pid,
            state: TxnState::Ongoing
        }]
    );
    let by_producer = c.list(&[], &[idle_pid], -1, env.now()).unwrap();
    assert_eq!(by_producer.transactions[0].transactional_id, "idle");
    let busy_only = ["Ongoing".to_string()];
    assert!(
        c.list(&busy_only, &[], 5_000, env.now())
            .unwrap()
            .transactions
            .is_empty()
    );
    env.advance(5_001);
    assert_eq!(
        c.list(&busy_only, &[], 5_000, env.now())
            .unwrap()
            .transactions
            .len(),
        1
    );
}

#[test]
fn verification_answers_whether_partitions_are_in_the_transaction() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, epoch) = init(&c, &env, "tx");
    block_on(c.add_partitions(&env, "tx", pid, epoch, &[tp("a", 0)])).unwrap();
    let verdicts = c
        .verify_partitions("tx", pid, epoch, &[tp("a", 0), tp("a", 1)])
        .unwrap();
    assert_eq!(
        verdicts,
        vec![
            (tp("a", 0), Ok(())),
            (tp("a", 1), Err(TxnError::TransactionAbortable))
        ]
    );
    assert_eq!(env.records.borrow().len(), 2, "verification adds nothing");
    assert!(c.verify("tx", pid, epoch, &tp("a", 0)));
    assert!(!c.verify("tx", pid, epoch, &tp("a", 1)));
    assert!(!c.verify("tx", pid, ProducerEpoch(epoch.0 + 1), &tp("a", 0)));
    assert_eq!(
        c.verify_partitions("tx", pid, ProducerEpoch(9), &[tp("a", 0)]),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn idle_ids_expire_with_a_tombstone_and_open_transactions_do_not() {
    let (c, env) = (coordinator(), FakeEnv::new());
    init(&c, &env, "idle");
    let (pid, epoch) = init(&c, &env, "open");
    block_on(c.add_partitions(&env, "open", pid, epoch, &[tp("a", 0)])).unwrap();
    env.advance(EXPIRATION - 1);
    assert!(block_on(c.expire_transactional_ids(&env)).is_empty());
    env.advance(1);
    let expired = block_on(c.expire_transactional_ids(&env));
    assert_eq!(expired, vec![("idle".to_string(), Ok(()))]);
    let last = env.records.borrow().last().cloned().unwrap();
    assert_eq!(last.1, records::encode_key("idle").unwrap());
    assert_eq!(last.2, None, "a tombstone");
    assert_eq!(
        c.describe(&["idle".to_string()]),
        vec![Err(TxnError::TransactionalIdNotFound)]
    );
    assert_eq!(describe(&c, "open").state, TxnState::Ongoing);
    // Replayed, the tombstone removes the id.
    let replayed = coordinator();
    assert_eq!(replayed.load_partition(0, 1, env.log()), 1);
}

#[test]
fn only_loaded_partitions_are_coordinated() {
    let env = FakeEnv::new();
    let c = TransactionCoordinator::new(TxnConfig {
        max_timeout_ms: MAX_TIMEOUT,
        id_expiration_ms: EXPIRATION,
    });
    let init_on = |c: &TransactionCoordinator, id: &str| {
        block_on(c.init_producer_id(&env, id, 1_000, None)).map(|_| ())
    };
    assert_eq!(init_on(&c, "tx"), Err(TxnError::CoordinatorNotAvailable));
    let mine = transaction_partition("tx", 50);
    c.loading(mine, 50);
    assert_eq!(init_on(&c, "tx"), Err(TxnError::CoordinatorLoadInProgress));
    assert_eq!(
        c.list(&[], &[], -1, env.now()),
        Err(TxnError::CoordinatorLoadInProgress)
    );
    c.load_partition(mine, 50, Vec::new());
    assert_eq!(init_on(&c, "tx"), Ok(()));
    assert_eq!(env.records.borrow()[0].0, mine);
    let elsewhere = (0..100)
        .map(|i| format!("id-{i}"))
        .find(|id| transaction_partition(id, 50) != mine)
        .unwrap();
    assert_eq!(init_on(&c, &elsewhere), Err(TxnError::NotCoordinator));
    c.unload_partition(mine);
    assert_eq!(init_on(&c, "tx"), Err(TxnError::NotCoordinator));
    assert_eq!(c.transaction_count(), 0);
}

#[test]
fn the_topic_is_created_as_kafka_creates_it() {
    let topic = transaction_state_topic(&crate::config::BrokerConfig::defaults());
    assert_eq!(topic.name, "__transaction_state");
    assert_eq!(topic.num_partitions, 50);
    assert!(
        topic
            .configs
            .contains(&("cleanup.policy".into(), Some("compact".into())))
    );
    assert!(
        topic
            .configs
            .contains(&("segment.bytes".into(), Some("104857600".into())))
    );
    assert_eq!(transaction_partition("my-group", 50), 12);
}

#[test]
fn draining_a_partition_lets_its_operations_finish_and_refuses_new_ones() {
    let (c, env) = (coordinator(), FakeEnv::new());
    let (pid, epoch) = init(&c, &env, "tx");
    block_on(c.add_partitions(&env, "tx", pid, epoch, &[tp("a", 0)])).unwrap();
    env.slow.set(true);
    let seen_when_drained = RefCell::new(None);
    let (committed, ()) = block_on(zip(c.end_txn(&env, "tx", pid, epoch, true), async {
        // The commit has started (its Prepare record is being written) when the drain
        // begins.
        yield_now().await;
        c.drain_partition(0).await;
        *seen_when_drained.borrow_mut() = Some((env.markers.borrow().len(), env.states()));
    }));
    assert_eq!(committed, Ok(()));
    let (markers, states) = seen_when_drained.into_inner().expect("the drain returned");
    assert_eq!(
        markers, 1,
        "the markers were written before the drain ended"
    );
    assert_eq!(states.last(), Some(&TxnState::CompleteCommit));
    assert_eq!(
        block_on(c.init_producer_id(&env, "tx", 60_000, None)),
        Err(TxnError::NotCoordinator),
        "no new operation while draining"
    );
    // The next owner replays what was written and coordinates from there.
    c.unload_partition(0);
    c.load_partition(0, 1, env.log());
    assert_eq!(describe(&c, "tx").state, TxnState::CompleteCommit);
    assert!(block_on(c.init_producer_id(&env, "tx", 60_000, None)).is_ok());
}
