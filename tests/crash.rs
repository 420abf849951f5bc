//! Durability across broker restarts: a `kill -9` in the middle of an acks=all stream
//! loses no acknowledged record and producing resumes at the old log end; a clean stop
//! (SIGTERM) keeps every record.

mod common;

use common::Broker;
use common::kafka::{
    Consumed, Delivery, TestRecord, base_timestamp, consume_all, producer, send_all, send_one,
    test_record,
};
use rdkafka::producer::{Producer, PurgeConfig};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;

fn start_broker() -> Broker {
    Broker::start_with(&["--shards", "2", "--set", "num.partitions=6"])
}

/// The index a test record carries in its `index` header.
fn index_of(consumed: &Consumed) -> usize {
    let (_, value) = consumed
        .record
        .headers
        .iter()
        .find(|(k, _)| k == "index")
        .expect("every test record has an index header");
    std::str::from_utf8(value.as_ref().unwrap())
        .unwrap()
        .parse()
        .unwrap()
}

/// Checks what a restarted broker holds: every partition is a gap-free run of offsets
/// from 0 holding records we sent, each at most once and in the order sent; every
/// acknowledged record is at its acknowledged offset. Returns each partition's log end.
fn check_log(
    topic: &str,
    consumed: &BTreeMap<i32, Vec<Consumed>>,
    records: &[TestRecord],
    acked: &[Delivery],
) -> BTreeMap<i32, i64> {
    let mut at: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (partition, read) in consumed {
        let mut last_index = None;
        for (position, c) in read.iter().enumerate() {
            assert_eq!(c.offset, position as i64, "{topic}-{partition}: no gap");
            let index = index_of(c);
            assert_eq!(
                c.record, records[index],
                "{topic}-{partition}@{}: a record we sent, intact",
                c.offset
            );
            assert!(
                last_index < Some(index),
                "{topic}-{partition}@{}: record {index} after {last_index:?}: in order, once",
                c.offset
            );
            last_index = Some(index);
            at.insert((*partition, c.offset), index);
        }
    }
    for d in acked {
        assert_eq!(
            at.get(&(d.partition, d.offset)),
            Some(&d.index),
            "acknowledged record {} at {topic}-{}@{} survives",
            d.index,
            d.partition,
            d.offset
        );
    }
    consumed
        .iter()
        .map(|(p, read)| (*p, read.len() as i64))
        .collect()
}

/// Sends one more record to each partition and checks it lands at the log end.
fn check_producing_continues(broker: &Broker, topic: &str, ends: &BTreeMap<i32, i64>) {
    let producer = producer(broker, &[("acks", "all")]);
    let timestamp = base_timestamp();
    for (partition, end) in ends {
        let record = test_record(topic, 1_000_000 + *partition as usize, timestamp);
        let delivery = send_all(&producer, topic, Some(*partition), &[record]);
        assert_eq!(delivery[0].error, None);
        assert_eq!(
            delivery[0].offset, *end,
            "{topic}-{partition}: the next record goes at the old log end"
        );
    }
}

#[test]
fn kill_9_mid_stream_loses_no_acknowledged_record_and_producing_resumes_at_the_log_end() {
    let mut broker = start_broker();
    let topic = "crash";
    let timestamp = base_timestamp();
    let records: Vec<TestRecord> = (0..400_000)
        .map(|i| test_record(topic, i, timestamp + i as i64 % 5000))
        .collect();
    let producer = producer(
        &broker,
        &[
            ("acks", "all"),
            ("compression.codec", "lz4"),
            ("message.timeout.ms", "15000"),
        ],
    );

    // Stream until 30,000 records are acknowledged, then kill the broker while more
    // are in flight.
    let acked_count = || {
        producer
            .context()
            .deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.error.is_none())
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut sent = 0;
    while acked_count() < 30_000 || producer.in_flight_count() == 0 {
        assert!(Instant::now() < deadline, "30,000 acks never came");
        assert!(sent < records.len(), "ran out of records before the kill");
        send_one(&producer, topic, None, &records[sent], sent);
        sent += 1;
    }
    broker.kill();
    let in_flight = producer.in_flight_count();
    // Whatever the broker answered before it died is reported now; the rest is dropped.
    producer.poll(Duration::from_millis(500));
    producer.purge(PurgeConfig::default().queue().inflight());
    producer.poll(Duration::from_millis(500));
    let acked: Vec<Delivery> = producer
        .context()
        .deliveries
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.error.is_none())
        .cloned()
        .collect();
    drop(producer);
    eprintln!(
        "sent {sent}, {} acknowledged, {in_flight} in flight at the kill",
        acked.len()
    );
    assert!(acked.len() < sent, "the kill came mid-stream");

    broker.restart();
    let consumed = consume_all(&broker, topic, PARTITIONS);
    let ends = check_log(topic, &consumed, &records, &acked);
    let total: i64 = ends.values().sum();
    assert!(
        total >= acked.len() as i64 && total <= sent as i64,
        "{total} records kept, {} acknowledged, {sent} sent",
        acked.len()
    );
    check_producing_continues(&broker, topic, &ends);
}

#[test]
fn clean_stop_and_restart_keeps_every_record() {
    let mut broker = start_broker();
    let topic = "stopped";
    let timestamp = base_timestamp();
    let records: Vec<TestRecord> = (0..20_000)
        .map(|i| test_record(topic, i, timestamp + i as i64 % 5000))
        .collect();
    let producer = producer(&broker, &[("acks", "1"), ("compression.codec", "snappy")]);
    let deliveries = send_all(&producer, topic, None, &records);
    drop(producer);
    assert!(deliveries.iter().all(|d| d.error.is_none()));

    let status = broker.stop();
    assert!(
        status.success(),
        "SIGTERM stops the broker cleanly: {status}"
    );
    assert!(
        broker.logs().contains("stopped cleanly"),
        "the broker says it stopped cleanly"
    );
    broker.restart();

    let consumed = consume_all(&broker, topic, PARTITIONS);
    let ends = check_log(topic, &consumed, &records, &deliveries);
    assert_eq!(
        ends.values().sum::<i64>(),
        records.len() as i64,
        "every record kept"
    );
    check_producing_continues(&broker, topic, &ends);

    // And once more, after a second clean stop, with the new records.
    assert!(broker.stop().success());
    broker.restart();
    let again = consume_all(&broker, topic, PARTITIONS);
    for (partition, read) in &again {
        assert_eq!(read.len() as i64, ends[partition] + 1);
        assert_eq!(read[..read.len() - 1], consumed[partition][..]);
    }
}
