//! librdkafka (the `rdkafka` crate) against the real broker: keyed records with headers
//! and timestamps produced with every compression codec at every ack level come back
//! byte-equal and in order per partition to a consumer that uses `assign`; timestamps
//! resolve to offsets with `offsets_for_times`.
//!
//! Volume: 100,000 records (values of 0..600 bytes, three headers) in a topic of their
//! own for each of the 15 codec × acks combinations; one test per codec.

mod common;

use common::Broker;
use common::kafka::{
    Delivery, TestRecord, base_timestamp, consume, consume_all, consumer, end_offsets, producer,
    send_all, test_record,
};
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;
/// Records per codec × acks combination.
const RECORDS: usize = 100_000;
const ACKS: [&str; 3] = ["0", "1", "all"];

fn start_broker() -> Broker {
    Broker::start_with(&["--shards", "2", "--set", "num.partitions=6"])
}

/// Produces `count` test records to a new topic with the given codec and acks, reads
/// them back and checks them: no delivery failed; each partition holds exactly the
/// records sent to it, byte-equal (key, value, headers, timestamp), in the order sent,
/// at consecutive offsets from 0; with acks 1/all the acknowledged offsets are where
/// the records are.
fn round_trip(broker: &Broker, topic: &str, codec: &str, acks: &str, count: usize) {
    let started = Instant::now();
    let timestamp = base_timestamp();
    let records: Vec<TestRecord> = (0..count)
        .map(|i| test_record(topic, i, timestamp + (i as i64 % 1000)))
        .collect();
    let producer = producer(broker, &[("acks", acks), ("compression.codec", codec)]);
    let deliveries = send_all(&producer, topic, None, &records);
    let failed: Vec<&Delivery> = deliveries.iter().filter(|d| d.error.is_some()).collect();
    assert!(
        failed.is_empty(),
        "{topic}: {} deliveries failed, first {:?}",
        failed.len(),
        failed.first()
    );
    if acks == "0" {
        // Nothing tells an acks=0 producer when the broker has appended: wait for it.
        wait_for_end(broker, topic, count as i64);
    }

    let mut expected: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for d in &deliveries {
        expected.entry(d.partition).or_default().push(d.index);
    }
    let consumed = consume_all(broker, topic, PARTITIONS);
    let mut total = 0;
    for (partition, read) in &consumed {
        let sent = expected.get(partition).cloned().unwrap_or_default();
        assert_eq!(
            read.len(),
            sent.len(),
            "{topic}-{partition}: records read vs records sent there"
        );
        for (position, (got, index)) in read.iter().zip(&sent).enumerate() {
            assert_eq!(
                got.offset, position as i64,
                "{topic}-{partition}: offsets are consecutive from 0"
            );
            assert_eq!(
                got.record, records[*index],
                "{topic}-{partition}@{}: record {index} comes back byte-equal and in order",
                got.offset
            );
            if acks != "0" {
                assert_eq!(
                    deliveries[*index].offset, got.offset,
                    "{topic}: record {index} is at the offset its ack gave"
                );
            }
        }
        total += read.len();
    }
    assert_eq!(total, count, "{topic}: every record read back");
    assert!(
        expected.len() > 1,
        "{topic}: keyed records spread over several partitions"
    );
    eprintln!(
        "{topic}: {count} records, codec {codec}, acks {acks}: {:?}",
        started.elapsed()
    );
}

/// Waits until the partitions of `topic` hold `count` records in all.
fn wait_for_end(broker: &Broker, topic: &str, count: i64) {
    let consumer = consumer(broker);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let total: i64 = end_offsets(&consumer, topic, PARTITIONS).values().sum();
        if total >= count {
            assert_eq!(total, count, "{topic}: no record appended twice");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: only {total} of {count} acks=0 records arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 100,000 records at each ack level with one codec, one topic per ack level.
fn every_ack_level_with(codec: &str) {
    let broker = start_broker();
    for acks in ACKS {
        round_trip(
            &broker,
            &format!("rt-{codec}-acks{acks}"),
            codec,
            acks,
            RECORDS,
        );
    }
}

#[test]
fn uncompressed_records_round_trip_byte_equal_at_every_ack_level() {
    every_ack_level_with("none");
}

#[test]
fn gzip_records_round_trip_byte_equal_at_every_ack_level() {
    every_ack_level_with("gzip");
}

#[test]
fn snappy_records_round_trip_byte_equal_at_every_ack_level() {
    every_ack_level_with("snappy");
}

#[test]
fn lz4_records_round_trip_byte_equal_at_every_ack_level() {
    every_ack_level_with("lz4");
}

#[test]
fn zstd_records_round_trip_byte_equal_at_every_ack_level() {
    every_ack_level_with("zstd");
}

#[test]
fn consumer_assigned_at_an_offset_reads_from_there() {
    let broker = start_broker();
    let topic = "from-offset";
    let timestamp = base_timestamp();
    let records: Vec<TestRecord> = (0..100)
        .map(|i| test_record(topic, i, timestamp + i as i64))
        .collect();
    let producer = producer(&broker, &[("acks", "1")]);
    send_all(&producer, topic, Some(3), &records);

    let consumer = consumer(&broker);
    let starts = BTreeMap::from([(3, Offset::Offset(42))]);
    let ends = BTreeMap::from([(3, 100)]);
    let read = consume(&consumer, topic, &starts, &ends)
        .remove(&3)
        .unwrap();
    let offsets: Vec<i64> = read.iter().map(|c| c.offset).collect();
    assert_eq!(offsets, (42..100).collect::<Vec<i64>>());
    for c in &read {
        assert_eq!(c.record, records[c.offset as usize]);
    }

    // From the end: nothing until something new arrives, then exactly that.
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 3, Offset::End)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    assert!(
        consumer.poll(Duration::from_millis(1500)).is_none(),
        "a consumer at the end sees nothing old"
    );
    let late = vec![test_record(topic, 1000, timestamp + 1000)];
    send_all(&producer, topic, Some(3), &late);
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        assert!(Instant::now() < deadline, "the new record never arrived");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            break m.expect("consume");
        }
    };
    assert_eq!(message.offset(), 100);
    assert_eq!(message.payload(), late[0].value.as_deref());
}

#[test]
fn offsets_for_times_finds_the_first_record_at_or_after_each_timestamp() {
    let broker = start_broker();
    let topic = "by-time";
    // Partition p gets 200 records whose timestamps step by 1000 ms from base + p.
    let base = base_timestamp();
    let per_partition = 200usize;
    let producer = producer(&broker, &[("acks", "all"), ("compression.codec", "lz4")]);
    for p in 0..PARTITIONS {
        let records: Vec<TestRecord> = (0..per_partition)
            .map(|i| test_record(topic, i, base + p as i64 + 1000 * i as i64))
            .collect();
        // Small batches, so lookups cross batch and index boundaries.
        for chunk in records.chunks(7) {
            let deliveries = send_all(&producer, topic, Some(p), chunk);
            assert!(deliveries.iter().all(|d| d.error.is_none()));
        }
    }

    let consumer = consumer(&broker);
    let lookup = |timestamp_of: &dyn Fn(i32) -> i64| -> BTreeMap<i32, Offset> {
        let mut query = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            query
                .add_partition_offset(topic, p, Offset::Offset(timestamp_of(p)))
                .unwrap();
        }
        let answer = consumer
            .offsets_for_times(query, Duration::from_secs(30))
            .expect("offsets_for_times");
        answer
            .elements()
            .iter()
            .map(|e| {
                assert!(e.error().is_ok(), "{:?}", e.error());
                (e.partition(), e.offset())
            })
            .collect()
    };

    // Exactly a record's timestamp: that record.
    let exact = lookup(&|p| base + p as i64 + 1000 * 57);
    assert!(
        exact.values().all(|o| *o == Offset::Offset(57)),
        "{exact:?}"
    );
    // Between two records: the later one.
    let between = lookup(&|p| base + p as i64 + 1000 * 120 + 1);
    assert!(
        between.values().all(|o| *o == Offset::Offset(121)),
        "{between:?}"
    );
    // Before everything: the first record.
    let before = lookup(&|_| base - 10_000);
    assert!(
        before.values().all(|o| *o == Offset::Offset(0)),
        "{before:?}"
    );
    // After everything: no record, which librdkafka reports as the end.
    let after = lookup(&|_| base + 1000 * per_partition as i64 + 100);
    assert!(after.values().all(|o| *o == Offset::End), "{after:?}");

    // Seeking there with assign reads from the found record.
    let starts = BTreeMap::from([(2, exact[&2])]);
    let ends = BTreeMap::from([(2, 60)]);
    let read = consume(&consumer, topic, &starts, &ends)
        .remove(&2)
        .unwrap();
    assert_eq!(read.first().map(|c| c.offset), Some(57));
    assert_eq!(read[0].record.timestamp, base + 2 + 57_000);

    let watermarks = end_offsets(&consumer, topic, PARTITIONS);
    assert!(watermarks.values().all(|h| *h == per_partition as i64));
}
