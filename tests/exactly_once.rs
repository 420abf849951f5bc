//! Idempotent and transactional producers against the real broker, with librdkafka (the
//! `rdkafka` crate) at its default settings plus the feature under test.
//!
//! - An idempotent producer whose connections are dropped mid-stream (a proxy cuts them
//!   after requests were forwarded, so responses are lost and batches are retried) writes
//!   every record exactly once, in order: the broker recognises retried batches by their
//!   sequence numbers and answers them with their original offsets.
//! - Its state survives a kill -9 of the broker (rebuilt from the log) and a clean
//!   restart (the `.snapshot` files).

mod common;

use common::Broker;
use common::kafka::{
    Delivery, TestRecord, base_timestamp, consume_all, producer, send_all, test_record,
};
use common::proxy::Proxy;
use std::collections::BTreeMap;

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
