//! Retention and DeleteRecords against the real broker, with librdkafka (the `rdkafka`
//! crate: its AdminClient, default producers and consumers) and kafka-python's admin
//! client.
//!
//! - Retention by time: segments whose records are older than `retention.ms` go at the
//!   next `log.retention.check.interval.ms`, the earliest offset moves past them, and
//!   the recent records stay.
//! - Retention by size: the partition shrinks to about `retention.bytes`, by whole
//!   segments, oldest first.
//! - DeleteRecords (librdkafka and kafka-python) moves the earliest offset; it holds
//!   across a kill -9; a group whose committed offset fell below it resets as Kafka's
//!   consumers do (`auto.offset.reset`), and a fetch below it is OFFSET_OUT_OF_RANGE.

mod common;

use common::Broker;
use common::kafka::{consumer, producer, send_all, test_record};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("an rdkafka admin client")
}

fn create_topic(broker: &Broker, topic: &str, configs: &[(&str, &str)]) {
    let mut new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    for (key, value) in configs {
        new = new.set(key, value);
    }
    let results =
        futures_lite::future::block_on(admin(broker).create_topics([&new], &AdminOptions::new()))
            .expect("CreateTopics answered");
    assert!(results[0].is_ok(), "create {topic}: {:?}", results[0]);
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn watermarks(consumer: &BaseConsumer, topic: &str) -> (i64, i64) {
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("watermarks of {topic}-0: {e}"))
}

/// Polls the earliest offset of `topic`-0 until `done` holds (the broker's retention
/// pass runs every `log.retention.check.interval.ms`).
fn wait_for_low_watermark(consumer: &BaseConsumer, topic: &str, done: impl Fn(i64) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (low, _) = watermarks(consumer, topic);
        if done(low) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: the earliest offset stayed at {low}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `count` records of `size` bytes stamped `timestamp`, all acknowledged.
fn send(broker: &Broker, topic: &str, tag: &str, count: usize, size: usize, timestamp: i64) {
    let producer = producer(broker, &[]);
    let records: Vec<_> = (0..count)
        .map(|i| {
            let mut record = test_record(tag, i, timestamp);
            record.key = Some(format!("{tag}-{i}").into_bytes());
            record.value = Some(vec![b'x'; size]);
            record
        })
        .collect();
    let deliveries = send_all(&producer, topic, Some(0), &records);
    assert!(
        deliveries.iter().all(|d| d.error.is_none()),
        "all delivered"
    );
}

fn segment_files(broker: &Broker, topic: &str) -> Vec<(String, u64)> {
    let dir = broker.data_dir.join(format!("{topic}-0"));
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Reads `topic`-0 from its earliest offset to its end; returns (offset, key) of each
/// record.
fn read_all(broker: &Broker, topic: &str) -> Vec<(i64, Vec<u8>)> {
    let consumer = consumer(broker);
    let (low, high) = watermarks(&consumer, topic);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(low))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.last().map_or(low, |(o, _)| o + 1) < high {
        assert!(Instant::now() < deadline, "read {} of {topic}", read.len());
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("no consumer error");
            read.push((message.offset(), message.key().unwrap_or_default().to_vec()));
        }
    }
    read
}

#[test]
fn retention_by_time_deletes_expired_segments_and_moves_the_earliest_offset() {
    let broker = Broker::start_with(&["--set", "log.retention.check.interval.ms=100"]);
    let topic = "aged";
    // Segments roll at the first append 200 ms after they started.
    create_topic(
        &broker,
        topic,
        &[
            ("retention.ms", "600000"),
            ("segment.ms", "200"),
            ("file.delete.delay.ms", "0"),
        ],
    );
    let hour_ago = now_ms() - 3_600_000;
    for round in 0..3 {
        send(&broker, topic, &format!("old{round}"), 50, 100, hour_ago);
        // The next append rolls once the segment is older than segment.ms.
        std::thread::sleep(Duration::from_millis(250));
    }
    send(&broker, topic, "new", 50, 100, now_ms());
    let consumer = consumer(&broker);
    // The three old rounds went (each in its own segment); the recent one stays.
    wait_for_low_watermark(&consumer, topic, |low| low == 150);
    assert_eq!(watermarks(&consumer, topic), (150, 200));
    let read = read_all(&broker, topic);
    assert_eq!(read.len(), 50);
    assert!(read.iter().all(|(_, key)| key.starts_with(b"new")));
    // What is left starts at the first recent record (a slow round may have rolled
    // more than once, so count no segments).
    let left = segment_files(&broker, topic);
    assert_eq!(left[0].0, "00000000000000000150.log", "{left:?}");
    // Each old segment went by time once the next round rolled it.
    let logs = broker.logs();
    let by_time: usize = logs
        .lines()
        .filter_map(|line| line.split("aged-0: retention deleted ").nth(1))
        .map(|rest| {
            let counts = rest.split_once('(').unwrap().1;
            counts.split(' ').next().unwrap().parse::<usize>().unwrap()
        })
        .sum();
    assert!(by_time >= 3, "{logs}");

    // A record older than retention.ms in the active segment alone: the active segment
    // is rolled away too, and offsets go on from the log end.
    let stale = "stale";
    create_topic(
        &broker,
        stale,
        &[("retention.ms", "1000"), ("file.delete.delay.ms", "0")],
    );
    send(&broker, stale, "stale", 10, 100, hour_ago);
    wait_for_low_watermark(&consumer, stale, |low| low == 10);
    assert_eq!(watermarks(&consumer, stale), (10, 10));
    send(&broker, stale, "fresh", 1, 100, now_ms());
    assert_eq!(read_all(&broker, stale), vec![(10, b"fresh-0".to_vec())]);
}

#[test]
fn retention_by_size_keeps_the_partition_near_retention_bytes() {
    let broker = Broker::start_with(&["--set", "log.retention.check.interval.ms=100"]);
    let topic = "sized";
    let mib = 1024 * 1024;
    create_topic(
        &broker,
        topic,
        &[
            ("segment.bytes", &mib.to_string()),
            ("retention.bytes", &(2 * mib).to_string()),
            ("file.delete.delay.ms", "0"),
        ],
    );
    // About 6 MiB: six segments.
    send(&broker, topic, "r", 6000, 1000, now_ms());
    let consumer = consumer(&broker);
    // Passes run while the records arrive, and one during the appends may leave more
    // than the last will: wait for the state no pass changes any more, where the oldest
    // segment is larger than what the log holds beyond retention.bytes (else the next
    // pass would move the earliest offset under the reader below).
    let settled = || -> bool {
        let files = segment_files(&broker, topic);
        let total: u64 = files.iter().map(|(_, len)| len).sum();
        total.saturating_sub(2 * mib as u64) < files[0].1
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !settled() {
        assert!(
            Instant::now() < deadline,
            "retention left {:?}",
            segment_files(&broker, topic)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let files = segment_files(&broker, topic);
    let total: u64 = files.iter().map(|(_, len)| len).sum();
    // Whole segments only: at most retention.bytes plus the segment that would cross it.
    assert!(
        total <= 3 * mib as u64 && total >= mib as u64,
        "{total} bytes in {files:?}"
    );
    let (low, high) = watermarks(&consumer, topic);
    assert_eq!(high, 6000);
    let first_base: i64 = files[0].0.trim_end_matches(".log").parse().unwrap();
    assert_eq!(
        low, first_base,
        "the earliest offset is the first segment's base"
    );
    let read = read_all(&broker, topic);
    assert_eq!(read.len() as i64, high - low);
}

#[test]
fn delete_records_moves_the_earliest_offset_durably_and_groups_below_it_reset() {
    let mut broker = Broker::start();
    let topic = "trimmed";
    create_topic(&broker, topic, &[]);
    send(&broker, topic, "r", 300, 100, now_ms());

    // A group commits offset 10, then stops.
    let group = "below-log-start";
    let group_consumer = |broker: &Broker, reset: &str| -> BaseConsumer {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", group)
            .set("auto.offset.reset", reset)
            .create()
            .unwrap();
        c
    };
    {
        let c = group_consumer(&broker, "earliest");
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(topic, 0, Offset::Offset(10))
            .unwrap();
        c.commit(&offsets, rdkafka::consumer::CommitMode::Sync)
            .unwrap();
    }

    // librdkafka's DeleteRecords: below 100.
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(topic, 0, Offset::Offset(100))
        .unwrap();
    let result = futures_lite::future::block_on(
        admin(&broker).delete_records(&before, &AdminOptions::new()),
    )
    .expect("DeleteRecords answered");
    let element = result.find_partition(topic, 0).unwrap();
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(
        element.offset(),
        Offset::Offset(100),
        "the new low watermark"
    );
    let plain = consumer(&broker);
    assert_eq!(watermarks(&plain, topic), (100, 300));

    // Above the high watermark: OFFSET_OUT_OF_RANGE, nothing moves.
    let mut beyond = TopicPartitionList::new();
    beyond
        .add_partition_offset(topic, 0, Offset::Offset(301))
        .unwrap();
    let result = futures_lite::future::block_on(
        admin(&broker).delete_records(&beyond, &AdminOptions::new()),
    );
    let failed = match result {
        Ok(list) => list.find_partition(topic, 0).unwrap().error().is_err(),
        Err(_) => true,
    };
    assert!(failed, "deleting past the high watermark fails");
    assert_eq!(watermarks(&plain, topic), (100, 300));

    // kafka-python's admin client: below 150.
    let out = common::run_python(
        &broker,
        r#"
import sys
from kafka import KafkaAdminClient, TopicPartition
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1])
result = admin.delete_records({TopicPartition('trimmed', 0): 150})
for tp, info in result.items():
    print(tp.partition, info['low_watermark'])
"#,
    );
    assert_eq!(out.trim(), "0 150", "kafka-python: {out}");

    // Durable: a kill -9 right after the answer keeps it.
    broker.kill();
    broker.restart();
    let plain = consumer(&broker);
    assert_eq!(watermarks(&plain, topic), (150, 300));

    // The group's committed offset 10 lies below the log start: its consumer is told
    // OFFSET_OUT_OF_RANGE and resets by auto.offset.reset (earliest: 150).
    let c = group_consumer(&broker, "earliest");
    c.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        assert!(Instant::now() < deadline, "the group consumer read nothing");
        if let Some(message) = c.poll(Duration::from_millis(100)) {
            break message.expect("no consumer error").offset();
        }
    };
    assert_eq!(first, 150);
}
