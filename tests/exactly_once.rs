//! Idempotent and transactional producers against the real broker, with librdkafka (the
//! `rdkafka` crate) at its default settings plus the feature under test.
//!
//! - An idempotent producer whose connections are dropped mid-stream (a proxy cuts them
//!   after requests were forwarded, so responses are lost and batches are retried) writes
//!   every record exactly once, in order: the broker recognises retried batches by their
//!   sequence numbers and answers them with their original offsets.
//! - Its state survives a kill -9 of the broker (rebuilt from the log) and a clean
//!   restart (the `.snapshot` files).
//! - Transactional producers: commit and abort cycles seen exactly by read_committed
//!   consumers (all of them, never a marker, by read_uncommitted ones); a zombie (same
//!   transactional id, older epoch) fenced; a transaction left open past its timeout
//!   aborted by the coordinator.

mod common;

use common::Broker;
use common::kafka::{
    Delivery, TestProducer, TestRecord, base_timestamp, consume_all, end_offsets, producer,
    read_values, send_all, test_record,
};
use common::proxy::Proxy;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{ClientConfig, Message};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;

/// Checks that each partition holds exactly the records delivered to it, in the order
/// sent, at consecutive offsets from 0, where the acknowledgements said.
fn check_exactly_once(
    broker: &Broker,
    topic: &str,
    records: &[TestRecord],
    deliveries: &[Delivery],
) {
    let failed: Vec<&Delivery> = deliveries.iter().filter(|d| d.error.is_some()).collect();
    assert!(
        failed.is_empty(),
        "{} deliveries failed, first {:?}",
        failed.len(),
        failed.first()
    );
    let mut expected: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for d in deliveries {
        expected.entry(d.partition).or_default().push(d.index);
    }
    let consumed = consume_all(broker, topic, PARTITIONS);
    let mut total = 0;
    for (partition, read) in &consumed {
        let sent = expected.get(partition).cloned().unwrap_or_default();
        assert_eq!(
            read.len(),
            sent.len(),
            "{topic}-{partition}: records read vs sent (a duplicate or a loss)"
        );
        for (position, (got, index)) in read.iter().zip(&sent).enumerate() {
            assert_eq!(
                got.offset, position as i64,
                "{topic}-{partition}: consecutive offsets"
            );
            assert_eq!(
                got.record, records[*index],
                "{topic}-{partition}@{}: record {index} in send order",
                got.offset
            );
            assert_eq!(
                deliveries[*index].offset, got.offset,
                "record {index} is where its ack said"
            );
        }
        total += read.len();
    }
    assert_eq!(total, records.len(), "every record read back once");
}

#[test]
fn an_idempotent_producer_whose_connections_drop_writes_every_record_once_in_order() {
    let proxy = Proxy::start();
    let advertised = format!("advertised.listeners=PLAINTEXT://127.0.0.1:{}", proxy.port);
    let broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        "num.partitions=6",
        "--set",
        &advertised,
    ]);
    proxy.forward_to(broker.port);
    let topic = "idempotent-drops";
    let timestamp = base_timestamp();
    let records: Vec<TestRecord> = (0..100_000)
        .map(|i| test_record(topic, i, timestamp + (i as i64 % 1000)))
        .collect();
    let bootstrap = format!("127.0.0.1:{}", proxy.port);
    let producer = producer(
        &broker,
        &[
            ("bootstrap.servers", bootstrap.as_str()),
            ("enable.idempotence", "true"),
        ],
    );
    // Warm up (metadata, InitProducerId, the topic) before the connections start dropping.
    let warm = send_all(&producer, topic, None, &records[..10]);
    proxy.drop_connections_every(3 << 20, 5);
    let mut deliveries = send_all(&producer, topic, None, &records[10..]);
    proxy.stop_dropping();
    assert!(
        proxy.drops() >= 3,
        "the proxy dropped the connections only {} times",
        proxy.drops()
    );
    for d in &mut deliveries {
        d.index += 10;
    }
    let all: Vec<Delivery> = warm.into_iter().chain(deliveries).collect();
    check_exactly_once(&broker, topic, &records, &all);
    eprintln!(
        "{topic}: 100000 records, connections dropped {} times",
        proxy.drops()
    );
}

#[test]
fn idempotent_producer_state_survives_a_kill_and_a_clean_restart() {
    let mut broker = Broker::start_with(&["--shards", "2", "--set", "num.partitions=6"]);
    let topic = "idempotent-restarts";
    let timestamp = base_timestamp();
    let records: Vec<TestRecord> = (0..30_000)
        .map(|i| test_record(topic, i, timestamp + (i as i64 % 1000)))
        .collect();
    let producer = producer(&broker, &[("enable.idempotence", "true")]);
    let mut all = Vec::new();
    for (round, chunk) in records.chunks(10_000).enumerate() {
        let mut deliveries = send_all(&producer, topic, None, chunk);
        for d in &mut deliveries {
            d.index += round * 10_000;
        }
        all.extend(deliveries);
        match round {
            0 => broker.kill(),
            1 => {
                broker.stop();
            }
            _ => break,
        }
        // The same producer (same producer id, sequences going on) writes to the
        // restarted broker: its state there must accept the next sequences.
        broker.restart();
    }
    check_exactly_once(&broker, topic, &records, &all);
}

/// A consumer reading by `assign` at the given isolation level.
fn isolated_consumer(broker: &Broker, isolation: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "corelog-tests-assign-only")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .set("isolation.level", isolation)
        .create()
        .expect("create an rdkafka consumer")
}

fn transactional_producer(broker: &Broker, id: &str, settings: &[(&str, &str)]) -> TestProducer {
    let mut all = vec![("transactional.id", id)];
    all.extend_from_slice(settings);
    let producer = producer(broker, &all);
    producer
        .init_transactions(Duration::from_secs(30))
        .expect("init_transactions");
    producer
}

fn send_values(producer: &TestProducer, topic: &str, values: &[String]) {
    for (i, value) in values.iter().enumerate() {
        let key = format!("k{}", i % 13);
        let mut record: BaseRecord<'_, str, str, usize> = BaseRecord::with_opaque_to(topic, i)
            .key(key.as_str())
            .payload(value.as_str());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("cannot queue {value}: {e}"),
            }
        }
    }
}

#[test]
fn transactions_commit_and_abort_and_read_committed_sees_exactly_the_committed_records() {
    let broker = Broker::start_with(&["--shards", "2", "--set", "num.partitions=3"]);
    let topic = "txn-cycles";
    let producer = transactional_producer(&broker, "txn-cycles", &[]);
    let mut committed: Vec<String> = Vec::new();
    let mut all: Vec<String> = Vec::new();
    for round in 0..6 {
        let values: Vec<String> = (0..500).map(|i| format!("r{round}-{i}")).collect();
        producer.begin_transaction().expect("begin");
        send_values(&producer, topic, &values);
        if round % 2 == 0 {
            producer
                .commit_transaction(Duration::from_secs(30))
                .expect("commit");
            committed.extend(values.iter().cloned());
        } else {
            producer.flush(Duration::from_secs(30)).expect("flush");
            producer
                .abort_transaction(Duration::from_secs(30))
                .expect("abort");
        }
        all.extend(values);
    }
    let sorted = |values: BTreeMap<i32, Vec<String>>| {
        // Per partition, the records keep their send order; across partitions, compare
        // as sets.
        for (p, v) in &values {
            let order: Vec<(usize, usize)> = v
                .iter()
                .map(|s| {
                    let (r, i) = s[1..].split_once('-').unwrap();
                    (r.parse().unwrap(), i.parse().unwrap())
                })
                .collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "partition {p} out of order"
            );
        }
        let mut flat: Vec<String> = values.into_values().flatten().collect();
        flat.sort();
        flat
    };
    committed.sort();
    all.sort();
    let read_committed = read_values(&isolated_consumer(&broker, "read_committed"), topic, 3);
    assert_eq!(
        sorted(read_committed),
        committed,
        "read_committed sees exactly the committed records"
    );
    let read_uncommitted = read_values(&isolated_consumer(&broker, "read_uncommitted"), topic, 3);
    assert_eq!(
        sorted(read_uncommitted),
        all,
        "read_uncommitted sees every record and no marker"
    );
}

#[test]
fn a_zombie_producer_is_fenced_and_its_open_transaction_aborted() {
    let broker = Broker::start_with(&["--set", "num.partitions=2"]);
    let topic = "txn-zombie";
    let zombie = transactional_producer(&broker, "txn-zombie", &[]);
    zombie.begin_transaction().expect("begin");
    send_values(&zombie, topic, &["zombie-0".to_string()]);
    zombie.flush(Duration::from_secs(30)).expect("flush");
    // The same transactional id starts again elsewhere: the old epoch is fenced and its
    // open transaction aborted.
    let successor = transactional_producer(&broker, "txn-zombie", &[]);
    successor.begin_transaction().expect("begin");
    send_values(&successor, topic, &["successor-0".to_string()]);
    successor
        .commit_transaction(Duration::from_secs(30))
        .expect("commit");
    let refused = zombie.commit_transaction(Duration::from_secs(30));
    let error = refused.expect_err("the zombie's commit is refused");
    assert!(
        error.rdkafka_error_code() == Some(RDKafkaErrorCode::ProducerFenced)
            || error.to_string().to_lowercase().contains("fenced"),
        "the zombie is fenced: {error}"
    );
    let values: Vec<String> = read_values(&isolated_consumer(&broker, "read_committed"), topic, 2)
        .into_values()
        .flatten()
        .collect();
    assert_eq!(values, vec!["successor-0".to_string()]);
}

#[test]
fn a_transaction_left_open_past_its_timeout_is_aborted_by_the_coordinator() {
    let broker = Broker::start_with(&[
        "--set",
        "num.partitions=1",
        "--set",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=200",
    ]);
    let topic = "txn-timeout";
    let producer = transactional_producer(
        &broker,
        "txn-timeout",
        &[
            ("transaction.timeout.ms", "1500"),
            ("message.timeout.ms", "1500"),
        ],
    );
    producer.begin_transaction().expect("begin");
    send_values(&producer, topic, &["left-open".to_string()]);
    producer.flush(Duration::from_secs(30)).expect("flush");
    let committed = isolated_consumer(&broker, "read_committed");
    let uncommitted = isolated_consumer(&broker, "read_uncommitted");
    assert_eq!(
        end_offsets(&committed, topic, 1)[&0],
        0,
        "the open transaction holds the last stable offset"
    );
    // The coordinator aborts it: its marker moves the last stable offset to the end.
    let deadline = Instant::now() + Duration::from_secs(30);
    while end_offsets(&committed, topic, 1)[&0] != end_offsets(&uncommitted, topic, 1)[&0] {
        assert!(
            Instant::now() < deadline,
            "the timed-out transaction was not aborted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        read_values(&committed, topic, 1)[&0].is_empty(),
        "nothing of it is committed"
    );
    assert!(
        producer
            .commit_transaction(Duration::from_secs(10))
            .is_err(),
        "its producer cannot commit it"
    );
}

/// Runs transactions of `per_txn` records over the topic's partitions until `stop`,
/// reporting each acknowledged commit's number; stops at the first failure (the broker
/// died under it).
fn transactions_until_failure(
    producer: &TestProducer,
    topic: &str,
    first_txn: usize,
    per_txn: usize,
    committed: &std::sync::mpsc::Sender<usize>,
) {
    for txn in first_txn.. {
        if producer.begin_transaction().is_err() {
            return;
        }
        let values: Vec<String> = (0..per_txn).map(|i| format!("t{txn}-{i}")).collect();
        send_values(producer, topic, &values);
        if producer
            .commit_transaction(Duration::from_secs(10))
            .is_err()
        {
            return;
        }
        if committed.send(txn).is_err() {
            return;
        }
    }
}

#[test]
fn a_broker_killed_at_any_point_of_transactions_leaves_each_entirely_visible_or_not_at_all() {
    let mut broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        "num.partitions=3",
        "--set",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=200",
    ]);
    let topic = "txn-crash";
    const PER_TXN: usize = 60;
    let mut acknowledged: Vec<usize> = Vec::new();
    let mut next_txn = 0;
    for round in 0..3 {
        let producer = transactional_producer(
            &broker,
            "txn-crash",
            &[
                ("transaction.timeout.ms", "5000"),
                ("message.timeout.ms", "5000"),
            ],
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let first = next_txn;
        let acked = std::thread::scope(|scope| {
            let worker =
                scope.spawn(|| transactions_until_failure(&producer, topic, first, PER_TXN, &tx));
            // Kill the broker right after the (3 + round)-th commit of this round is
            // acknowledged: the next transaction is then somewhere between its first
            // record and its last marker.
            let mut acked = Vec::new();
            while acked.len() < 3 + round {
                acked.push(rx.recv_timeout(Duration::from_secs(60)).expect("a commit"));
            }
            broker.kill();
            worker.join().unwrap();
            acked.extend(rx.try_iter());
            acked
        });
        next_txn = acked.iter().max().unwrap() + 2;
        acknowledged.extend(acked);
        broker.restart();
    }
    // A new producer of the same id fences the last one and aborts what it left open;
    // the coordinator has finished what it had decided.
    let last = transactional_producer(&broker, "txn-crash", &[]);
    last.begin_transaction().expect("begin");
    send_values(&last, topic, &["final".to_string()]);
    last.commit_transaction(Duration::from_secs(30))
        .expect("commit");

    let committed = isolated_consumer(&broker, "read_committed");
    let mut per_txn: BTreeMap<usize, usize> = BTreeMap::new();
    let values = read_values(&committed, topic, 3);
    assert!(values.values().flatten().any(|v| v == "final"));
    for value in values.into_values().flatten().filter(|v| v != "final") {
        let txn: usize = value[1..].split_once('-').unwrap().0.parse().unwrap();
        *per_txn.entry(txn).or_default() += 1;
    }
    for (txn, count) in &per_txn {
        assert_eq!(
            *count, PER_TXN,
            "transaction {txn} is partly visible: {count} of {PER_TXN} records"
        );
    }
    for txn in &acknowledged {
        assert!(
            per_txn.contains_key(txn),
            "acknowledged transaction {txn} is lost"
        );
    }
    eprintln!(
        "{} transactions acknowledged, {} visible after 3 kills",
        acknowledged.len(),
        per_txn.len()
    );
}

/// One consume-transform-produce pass: reads `ctp-in` in group `ctp` (read_committed),
/// writes one `o<n>` record per `i<n>` input to `ctp-out` and commits the input offsets
/// in the same transaction. Stops once `target` outputs were committed in all, or, with
/// `crash_in` = k, inside its k-th transaction after the outputs were sent, before the
/// commit (returning false).
fn consume_transform_produce(
    broker: &Broker,
    target: usize,
    committed: &mut usize,
    crash_in: Option<usize>,
) -> bool {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "ctp")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    consumer.subscribe(&["ctp-in"]).expect("subscribe");
    let producer = transactional_producer(broker, "ctp-tx", &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut txns = 0;
    while *committed < target {
        assert!(
            Instant::now() < deadline,
            "only {committed} of {target} outputs committed"
        );
        let mut inputs = Vec::new();
        while inputs.len() < 100 {
            match consumer.poll(Duration::from_millis(if inputs.is_empty() {
                200
            } else {
                10
            })) {
                Some(Ok(m)) => {
                    inputs.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap())
                }
                Some(Err(e)) => panic!("consume: {e}"),
                None => break,
            }
        }
        if inputs.is_empty() {
            continue;
        }
        txns += 1;
        producer.begin_transaction().expect("begin");
        let outputs: Vec<String> = inputs.iter().map(|i| format!("o{}", &i[1..])).collect();
        send_values(&producer, "ctp-out", &outputs);
        if crash_in == Some(txns) {
            producer.flush(Duration::from_secs(30)).expect("flush");
            return false;
        }
        let positions = consumer.position().expect("position");
        producer
            .send_offsets_to_transaction(
                &positions,
                &consumer.group_metadata().unwrap(),
                Duration::from_secs(30),
            )
            .expect("send_offsets_to_transaction");
        producer
            .commit_transaction(Duration::from_secs(30))
            .expect("commit");
        *committed += outputs.len();
    }
    true
}

#[test]
fn consume_transform_produce_is_exactly_once_across_a_kill_of_the_broker() {
    let mut broker = Broker::start_with(&["--shards", "2", "--set", "num.partitions=3"]);
    const INPUTS: usize = 3000;
    let inputs: Vec<String> = (0..INPUTS).map(|n| format!("i{n}")).collect();
    let plain = producer(&broker, &[]);
    send_values(&plain, "ctp-in", &inputs);
    plain
        .flush(Duration::from_secs(60))
        .expect("inputs written");
    drop(plain);
    let mut committed = 0;
    // Killed inside the 5th transaction: outputs written, offsets and commit not.
    assert!(!consume_transform_produce(
        &broker,
        INPUTS,
        &mut committed,
        Some(5)
    ));
    broker.kill();
    broker.restart();
    // The next run fences the old producer (its transaction aborted) and resumes from
    // the committed offsets; outputs are counted from what read_committed sees.
    let mut committed_after = committed;
    assert!(consume_transform_produce(
        &broker,
        INPUTS,
        &mut committed_after,
        None
    ));
    let outputs: Vec<String> =
        read_values(&isolated_consumer(&broker, "read_committed"), "ctp-out", 3)
            .into_values()
            .flatten()
            .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &outputs {
        *counts.entry(o.as_str()).or_default() += 1;
    }
    let duplicated: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        duplicated.is_empty(),
        "outputs written twice: {:?}",
        &duplicated[..duplicated.len().min(5)]
    );
    assert_eq!(outputs.len(), INPUTS, "one output per input");
    for n in 0..INPUTS {
        assert!(
            counts.contains_key(format!("o{n}").as_str()),
            "output of input {n} missing"
        );
    }
}
