//! Log compaction with real clients: a compacted topic written by a default librdkafka
//! producer reads back, once cleaned, as exactly the latest value of each key at its
//! original offset, with tombstones until `delete.retention.ms` after their first
//! cleaning; a `kill -9` in the middle of a (slowed-down) cleaning loses no key's latest
//! value; `__consumer_offsets` stops growing under a steady commit loop, and its groups
//! replay after a restart.

mod common;

use common::Broker;
use common::groups::wait_until;
use common::kafka::{Consumed, TestRecord, consume_all, producer, send_all};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The key of the records a test adds to roll the active segment; not part of the model.
const NUDGE: &[u8] = b"nudge";

fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("an rdkafka admin client")
}

fn create_topic(broker: &Broker, name: &str, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results =
        futures_lite::future::block_on(admin(broker).create_topics(&[topic], &AdminOptions::new()))
            .expect("CreateTopics answered");
    for result in results {
        result.unwrap_or_else(|(topic, e)| panic!("create {topic}: {e}"));
    }
}

/// A record of the model: key `k<key>`, a value naming its version, or a tombstone.
fn record(key: usize, version: usize, tombstone: bool) -> TestRecord {
    TestRecord {
        key: Some(format!("k{key}").into_bytes()),
        value: (!tombstone)
            .then(|| format!("k{key}-v{version}-{}", "x".repeat(key % 97)).into_bytes()),
        headers: Vec::new(),
        timestamp: common::kafka::base_timestamp(),
    }
}

/// `versions` versions of each of `keys` keys, interleaved; one key in ten ends with a
/// tombstone and one in ten is tombstoned then written again.
fn versions(keys: usize, versions: usize) -> Vec<TestRecord> {
    let mut out = Vec::with_capacity(keys * versions);
    for version in 0..versions {
        for key in 0..keys {
            let last = version + 1 == versions;
            let tombstone = (last && key % 10 == 3) || (version + 2 == versions && key % 10 == 7);
            out.push(record(key, version, tombstone));
        }
    }
    out
}

/// The latest record of each key, by offset, from what was sent and where it landed.
fn latest(sent: &[(i64, TestRecord)], tombstones: bool) -> Vec<(i64, TestRecord)> {
    let mut last: BTreeMap<Vec<u8>, (i64, TestRecord)> = BTreeMap::new();
    for (offset, record) in sent {
        last.insert(record.key.clone().unwrap(), (*offset, record.clone()));
    }
    let mut out: Vec<(i64, TestRecord)> = last
        .into_values()
        .filter(|(_, r)| tombstones || r.value.is_some())
        .collect();
    out.sort_by_key(|(offset, _)| *offset);
    out
}

/// Sends `records` with a default producer; returns each with the offset it got.
fn produce(broker: &Broker, topic: &str, records: &[TestRecord]) -> Vec<(i64, TestRecord)> {
    let producer = producer(broker, &[]);
    let deliveries = send_all(&producer, topic, Some(0), records);
    deliveries
        .iter()
        .map(|d| {
            assert_eq!(d.error, None, "record {} acknowledged", d.index);
            (d.offset, records[d.index].clone())
        })
        .collect()
}

/// What a consumer reading the topic from the beginning gets, without the nudges.
fn read_back(broker: &Broker, topic: &str) -> Vec<(i64, TestRecord)> {
    let consumed: BTreeMap<i32, Vec<Consumed>> = consume_all(broker, topic, 1);
    consumed[&0]
        .iter()
        .filter(|c| c.record.key.as_deref() != Some(NUDGE))
        .map(|c| (c.offset, c.record.clone()))
        .collect()
}

/// Values compared without timestamps (a consumer sees the producer's create time).
fn same(a: &[(i64, TestRecord)], b: &[(i64, TestRecord)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((oa, ra), (ob, rb))| oa == ob && ra.key == rb.key && ra.value == rb.value)
}

/// Adds one nudge record (so that an expired active segment rolls and everything before
/// it becomes cleanable).
fn nudge(broker: &Broker, topic: &str) {
    let producer = producer(broker, &[]);
    let nudge = TestRecord {
        key: Some(NUDGE.to_vec()),
        value: Some(b"x".to_vec()),
        headers: Vec::new(),
        timestamp: common::kafka::base_timestamp(),
    };
    send_all(&producer, topic, Some(0), &[nudge]);
}

fn metric_sum(broker: &Broker, name: &str) -> f64 {
    let text = broker.scrape();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

#[test]
fn a_compacted_topic_reads_back_as_the_latest_value_of_each_key_and_tombstones_go_after_delete_retention_ms()
 {
    let broker = Broker::start_with(&["--set", "log.cleaner.backoff.ms=100"]);
    create_topic(
        &broker,
        "table",
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1048576"),
            ("segment.ms", "300"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "10000"),
        ],
    );
    let sent = produce(&broker, "table", &versions(150, 12));
    let with_tombstones = latest(&sent, true);
    assert!(with_tombstones.iter().any(|(_, r)| r.value.is_none()));
    // Cleaned: each key once, at the offset it was written at, tombstones included. The
    // nudges roll the last segment of the model into the cleanable part of the log.
    let mut read = Vec::new();
    let compacted = wait_until(Duration::from_secs(90), || {
        nudge(&broker, "table");
        read = read_back(&broker, "table");
        same(&read, &with_tombstones)
    });
    assert!(
        compacted,
        "not compacted: {} records read, {} expected",
        read.len(),
        with_tombstones.len()
    );
    assert!(metric_sum(&broker, "corelog_cleaner_runs_total") >= 1.0);
    assert!(broker.logs().contains("cleaned table-0"));
    // Past delete.retention.ms the tombstones go, with no new writes.
    let without = latest(&sent, false);
    let gone = wait_until(Duration::from_secs(90), || {
        read = read_back(&broker, "table");
        same(&read, &without)
    });
    assert!(gone, "tombstones still there: {} records read", read.len());
}

fn log_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_kill_9_in_the_middle_of_cleaning_loses_no_latest_value_of_any_key() {
    let mut broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        "log.cleaner.backoff.ms=100",
        "--set",
        "log.cleaner.io.max.bytes.per.second=800000",
    ]);
    create_topic(
        &broker,
        "big",
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1048576"),
            ("segment.ms", "500"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    let sent = produce(&broker, "big", &versions(3000, 8));
    let bytes: usize = sent
        .iter()
        .map(|(_, r)| r.value.as_ref().map_or(0, Vec::len))
        .sum();
    assert!(
        bytes > 1 << 20,
        "a log large enough for a slow cleaning: {bytes} bytes"
    );
    // Killed once the cleaner said it is cleaning and writes its cleaned segment.
    let partition = broker.data_dir.join("big-0");
    let mid_cleaning = wait_until(Duration::from_secs(120), || {
        if !broker.logs().contains("cleaning big-0") {
            nudge(&broker, "big");
            return false;
        }
        log_files(&partition)
            .iter()
            .any(|f| f.ends_with(".cleaned") || f.ends_with(".swap"))
    });
    assert!(
        mid_cleaning,
        "the cleaner did not start writing:\n{}",
        broker.logs()
    );
    broker.kill();

    // Restarted without the I/O limit: every key's latest value is there at its offset,
    // and nothing else but what was written there.
    let restarted = Broker::start_in(&broker.data_dir, &["--set", "log.cleaner.backoff.ms=100"]);
    let read = read_back(&restarted, "big");
    let at: BTreeMap<i64, &TestRecord> = sent.iter().map(|(o, r)| (*o, r)).collect();
    for (offset, record) in &read {
        let written = at
            .get(offset)
            .unwrap_or_else(|| panic!("offset {offset} never written"));
        assert_eq!((&written.key, &written.value), (&record.key, &record.value));
    }
    let read_at: BTreeMap<i64, &TestRecord> = read.iter().map(|(o, r)| (*o, r)).collect();
    for (offset, record) in latest(&sent, true) {
        assert!(
            read_at.contains_key(&offset),
            "the latest value of {:?} (offset {offset}) was lost",
            String::from_utf8_lossy(record.key.as_ref().unwrap())
        );
    }
    // And the cleaning completes.
    let want = latest(&sent, true);
    let mut last = Vec::new();
    let compacted = wait_until(Duration::from_secs(120), || {
        nudge(&restarted, "big");
        last = read_back(&restarted, "big");
        same(&last, &want)
    });
    assert!(
        compacted,
        "{} records read, {} expected",
        last.len(),
        want.len()
    );
}

fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn group_consumer(broker: &Broker, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("an rdkafka consumer")
}

/// Commits `offset` of `input`-0 for `consumer`'s group with metadata of `metadata`
/// bytes (so that each commit record is large).
fn commit(consumer: &BaseConsumer, offset: i64, metadata: usize) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("input", 0, Offset::Offset(offset))
        .unwrap();
    tpl.find_partition("input", 0)
        .unwrap()
        .set_metadata("m".repeat(metadata));
    consumer.commit(&tpl, CommitMode::Sync).unwrap();
}

#[test]
fn consumer_offsets_stops_growing_under_a_steady_commit_loop_and_replays_after_cleaning() {
    const SEGMENT: u64 = 1 << 20;
    const METADATA: usize = 4000;
    let mut broker = Broker::start_with(&[
        "--set",
        "offsets.topic.num.partitions=1",
        "--set",
        &format!("offsets.topic.segment.bytes={SEGMENT}"),
        "--set",
        "log.cleaner.backoff.ms=100",
        "--set",
        "log.cleaner.delete.retention.ms=2000",
    ]);
    create_topic(&broker, "input", &[]);
    produce(&broker, "input", &[record(1, 1, false)]);
    let offsets_dir = broker.data_dir.join("__consumer_offsets-0");
    // A group deleted with its offsets: its records go once cleaned, after
    // delete.retention.ms.
    let gone = group_consumer(&broker, "gone");
    commit(&gone, 1, 10);
    drop(gone);
    let deleted = futures_lite::future::block_on(
        admin(&broker).delete_groups(&["gone"], &AdminOptions::new()),
    )
    .expect("DeleteGroups answered");
    assert!(deleted.iter().all(|r| r.is_ok()), "{deleted:?}");

    // 3000 commits of the same offsets, each with 4000 bytes of metadata.
    let steady = group_consumer(&broker, "steady");
    let mut sizes = Vec::new();
    for round in 0..10i64 {
        for i in 0..300 {
            commit(&steady, 1 + (round * 300 + i) % 2, METADATA);
        }
        sizes.push(segment_bytes(&offsets_dir));
    }
    // The log stays within a few segments: the active one, a dirty one waiting for the
    // cleaner, the cleaned ones.
    let most = *sizes[3..].iter().max().unwrap();
    assert!(most < 4 * SEGMENT, "{sizes:?}");
    let cleanings = broker
        .logs()
        .matches("cleaned __consumer_offsets-0")
        .count();
    assert!(cleanings >= 3, "{cleanings} cleanings, sizes {sizes:?}");

    // Cleaned, the partition replays to the same groups after a restart.
    let last = (9 * 300 + 299) % 2 + 1;
    drop(steady);
    broker.restart();
    let steady = group_consumer(&broker, "steady");
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("input", 0);
    let committed = steady
        .committed_offsets(wanted, Duration::from_secs(30))
        .expect("OffsetFetch answered");
    let partition = committed.find_partition("input", 0).unwrap();
    assert_eq!(partition.offset(), Offset::Offset(last));
    assert_eq!(partition.metadata().len(), METADATA);
    // The deleted group's records (its offset commit and their tombstones) are gone from
    // the partition once cleaned past their delete horizon.
    let no_trace = wait_until(Duration::from_secs(90), || {
        let records = consume_all(&broker, "__consumer_offsets", 1);
        let traces = records[&0].iter().any(|c| {
            c.record
                .key
                .as_ref()
                .is_some_and(|k| k.windows(4).any(|w| w == b"gone"))
        });
        if traces {
            // More commits: segments roll and the cleaner runs again.
            for _ in 0..300 {
                commit(&steady, last, METADATA);
            }
        }
        !traces
    });
    assert!(
        no_trace,
        "the deleted group's records stay in __consumer_offsets"
    );
}
