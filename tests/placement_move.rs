//! Moving partitions between shards of a running broker, with real clients: `corelog
//! placement move` while an idempotent acks=all librdkafka producer and a consumer run
//! (every record arrives once, in order, checked by count and checksum); a long-poll
//! fetch answered when its partition moves; a consumer's connection that follows its
//! partition to the new shard (`placement.connections.follow`); `__consumer_offsets` partitions moved under
//! a group, which keeps its committed offsets and goes on committing; a
//! `__transaction_state` partition moved back and forth (with a partition its
//! transactions write to) under a transactional producer, which commits and aborts
//! through it exactly once; the load balancer moving a hot partition to the idle shard
//! under a producer; and the placement
//! file (`placement.file`): what it pins stays pinned across a restart, a reload moves
//! what it places elsewhere, and a bad file stops start-up naming the line.

mod common;

use common::kafka::{
    TestProducer, TestRecord, consumer, producer, read_values, send_all, send_one, test_record,
};
use common::wire::{FETCH_VERSION, WireClient, fetch_request};
use common::{Broker, metric, run_with_timeout};
use corelog::protocol::ErrorCode;
use corelog::protocol::generated::{ApiKey, ResponseBody};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `corelog ARGS`; returns stdout, failing the test on a non-zero exit.
fn corelog(args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_corelog"));
    cmd.args(args);
    let output = run_with_timeout(cmd, Duration::from_secs(120));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        output.status.success(),
        "corelog {args:?}: {stdout}\n{stderr}"
    );
    stdout
}

fn endpoint(broker: &Broker) -> String {
    format!("127.0.0.1:{}", broker.metrics_port)
}

/// `corelog placement move TOPIC-PARTITION SHARD --format json`.
fn move_partition(broker: &Broker, tp: &str, shard: usize) -> serde_json::Value {
    let out = corelog(&[
        "placement",
        "move",
        tp,
        &shard.to_string(),
        "--endpoint",
        &endpoint(broker),
        "--format",
        "json",
    ]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The shard the broker's exposition says owns `topic`-`partition`.
fn shard_of(broker: &Broker, topic: &str, partition: i32) -> usize {
    let exposition = broker.scrape();
    metric(
        &exposition,
        "corelog_partition_shard",
        &[("topic", topic), ("partition", &partition.to_string())],
    )
    .unwrap_or_else(|| panic!("no placement for {topic}-{partition}")) as usize
}

fn create_topic(broker: &Broker, topic: &str, partitions: i32) {
    corelog(&[
        "topic",
        "create",
        "--topic",
        topic,
        "--partitions",
        &partitions.to_string(),
        "--bootstrap-server",
        &broker.bootstrap(),
    ]);
}

fn idempotent_producer(broker: &Broker) -> TestProducer {
    producer(broker, &[("acks", "all"), ("enable.idempotence", "true")])
}

/// `common::kafka::consumer`, assigned `topic`-`partition` from its start.
fn reader(broker: &Broker, topic: &str, partition: i32) -> BaseConsumer {
    let consumer = consumer(broker);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    consumer
}

/// FNV-1a over the values in order: equal only for the same records in the same order.
fn checksum<'a>(values: impl Iterator<Item = &'a [u8]>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for value in values {
        for b in value.iter().chain(b"\n") {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

#[test]
fn a_partition_moves_under_a_producer_and_a_consumer_and_nothing_is_lost_duplicated_or_reordered() {
    let broker = Broker::start_with(&["--shards", "2"]);
    create_topic(&broker, "moving", 2);
    const RECORDS: usize = 6000;
    let values: Vec<Vec<u8>> = (0..RECORDS)
        .map(|i| format!("record-{i:06}").into_bytes())
        .collect();

    // The consumer reads partition 0 from the start until it has every record.
    let consumer = reader(&broker, "moving", 0);
    let reader = std::thread::spawn(move || {
        let mut read: Vec<(i64, Vec<u8>)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        while read.len() < RECORDS {
            assert!(Instant::now() < deadline, "read {} records", read.len());
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.expect("the consumer reads through moves");
                read.push((message.offset(), message.payload().unwrap().to_vec()));
            }
        }
        read
    });

    // The producer queues the records chunk by chunk; after each chunk is queued (and
    // on its way) the partition moves, so every move lands with records in flight.
    const CHUNKS: usize = 6;
    let producer = Arc::new(idempotent_producer(&broker));
    let (queued_tx, queued_rx) = std::sync::mpsc::channel::<usize>();
    let (moved_tx, moved_rx) = std::sync::mpsc::channel::<()>();
    let writer = {
        let producer = producer.clone();
        let values = values.clone();
        std::thread::spawn(move || {
            for (chunk, values) in values.chunks(RECORDS / CHUNKS).enumerate() {
                for (i, value) in values.iter().enumerate() {
                    let index = chunk * (RECORDS / CHUNKS) + i;
                    let mut record: BaseRecord<'_, [u8], [u8], usize> =
                        BaseRecord::with_opaque_to("moving", index)
                            .partition(0)
                            .payload(value.as_slice());
                    loop {
                        match producer.send(record) {
                            Ok(()) => break,
                            Err((_, back)) => {
                                record = back;
                                producer.poll(Duration::from_millis(5));
                            }
                        }
                    }
                }
                producer.poll(Duration::ZERO);
                queued_tx.send(chunk).unwrap();
                moved_rx.recv().unwrap();
            }
            producer.flush(Duration::from_secs(120)).unwrap();
        })
    };
    let home = shard_of(&broker, "moving", 0);
    let mut moves = Vec::new();
    let mut target = 1 - home;
    for _ in 0..CHUNKS {
        queued_rx.recv().unwrap();
        let report = move_partition(&broker, "moving-0", target);
        assert_eq!(report["from"], 1 - target, "{report}");
        assert_eq!(report["to"], target, "{report}");
        assert!(report["unavailable_ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(shard_of(&broker, "moving", 0), target);
        moves.push(report);
        target = 1 - target;
        moved_tx.send(()).unwrap();
    }
    writer.join().unwrap();
    // The first moves happened with records still to come.
    let first_end = moves[0]["log_end_offset"].as_i64().unwrap();
    assert!(
        first_end < RECORDS as i64,
        "the first move was under traffic: {}",
        moves[0]
    );
    let deliveries = producer.context().deliveries.lock().unwrap().clone();
    assert_eq!(deliveries.len(), RECORDS);
    let failed: Vec<_> = deliveries.iter().filter(|d| d.error.is_some()).collect();
    assert!(
        failed.is_empty(),
        "failed deliveries: {:?}",
        &failed[..failed.len().min(5)]
    );

    let read = reader.join().unwrap();
    assert_eq!(read.len(), RECORDS, "every record read once");
    for (i, (offset, value)) in read.iter().enumerate() {
        assert_eq!(*offset, i as i64, "offsets are contiguous from 0");
        assert_eq!(value, &values[i], "record {i} in order");
    }
    assert_eq!(
        checksum(read.iter().map(|(_, v)| v.as_slice())),
        checksum(values.iter().map(Vec::as_slice))
    );
    // The delivery reports name the offsets the consumer read them at.
    let mut offsets: Vec<i64> = deliveries.iter().map(|d| d.offset).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..RECORDS as i64).collect::<Vec<_>>());
    assert!(
        broker.logs().matches("placement: moved moving-0").count() == CHUNKS,
        "{}",
        broker.logs()
    );
}

#[test]
fn the_load_balancer_moves_a_hot_partition_to_the_idle_shard_under_a_producer_and_nothing_is_lost()
{
    // A short interval and a low threshold, so a test's load is enough to act on.
    let broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        "placement.balancer=load",
        "--set",
        "placement.balancer.interval.ms=300",
        "--set",
        "placement.balancer.threshold.percent=1",
    ]);
    create_topic(&broker, "skewed", 4);
    // Placed by count, two partitions per shard; the producer writes only to those of
    // one shard, which makes that shard the busy one.
    let busy = shard_of(&broker, "skewed", 0);
    let hot: Vec<i32> = (0..4)
        .filter(|p| shard_of(&broker, "skewed", *p) == busy)
        .collect();
    assert_eq!(hot.len(), 2, "placed by count");

    // Record `i` of partition `p`: checked on reading without keeping what was sent.
    fn value(p: i32, i: u64) -> String {
        format!("{p}-{i}-{}", "x".repeat(1000))
    }
    // One producer per hot partition, each writing as fast as it can.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = hot
        .iter()
        .map(|&partition| {
            let producer = producer(&broker, &[]);
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let record = TestRecord {
                        key: None,
                        value: Some(value(partition, sent).into_bytes()),
                        headers: Vec::new(),
                        timestamp: common::kafka::base_timestamp(),
                    };
                    send_one(&producer, "skewed", Some(partition), &record, 0);
                    sent += 1;
                }
                producer
                    .flush(Duration::from_secs(120))
                    .expect("every record is delivered within 120 s");
                let deliveries = producer.context().deliveries.lock().unwrap();
                assert_eq!(deliveries.len() as u64, sent);
                if let Some(failed) = deliveries.iter().find(|d| d.error.is_some()) {
                    panic!("a delivery failed: {failed:?}");
                }
                (partition, sent)
            })
        })
        .collect();

    // The balancer sees the gap for two intervals and moves one hot partition to the
    // idle shard, logging the numbers behind the decision; records go on after it: the
    // moved partition's counters (which restart on its new shard) count them.
    let moved = common::groups::wait_until(Duration::from_secs(90), || {
        hot.iter().any(|p| shard_of(&broker, "skewed", *p) != busy)
    });
    let appended_after_the_move = moved
        && common::groups::wait_until(Duration::from_secs(30), || {
            hot.iter().any(|p| {
                let records_in = metric(
                    &broker.scrape(),
                    "corelog_partition_records_in_total",
                    &[
                        ("topic", "skewed"),
                        ("partition", &p.to_string()),
                        ("shard", &(1 - busy).to_string()),
                    ],
                );
                records_in.unwrap_or_default() >= 1000.0
            })
        });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: BTreeMap<i32, u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(moved, "no hot partition moved: {}", broker.logs());
    assert!(
        appended_after_the_move,
        "records reach the moved partition's new shard"
    );
    let logs = broker.logs();
    let decision = logs
        .lines()
        .find(|l| l.contains("placement balancer: shard") && l.contains("moved to shard"))
        .unwrap_or_else(|| panic!("the move is logged with its numbers: {logs}"));
    assert!(
        decision.contains(&format!("shard {busy} ")) && decision.contains("skewed-"),
        "{decision}"
    );

    // Every record written before, during and after the move reads back once, in order,
    // although librdkafka's default producer is not idempotent and keeps many requests
    // in flight: appends that reach the old shard mid-move are passed on to the new one,
    // and the connection's later appends to the partition wait for them.
    let consumer = consumer(&broker);
    let mut assignment = TopicPartitionList::new();
    for &p in &hot {
        assignment
            .add_partition_offset("skewed", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut read: BTreeMap<i32, u64> = hot.iter().map(|p| (*p, 0)).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while hot.iter().any(|p| read[p] < sent[p]) {
        assert!(
            Instant::now() < deadline,
            "reading the skewed topic timed out"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("the consumer reads the skewed topic");
            let p = message.partition();
            let next = read.get_mut(&p).unwrap();
            assert_eq!(
                message.offset(),
                *next as i64,
                "partition {p}: offsets from 0"
            );
            assert!(
                message.payload().unwrap() == value(p, *next).as_bytes(),
                "partition {p}: record {next} in order, not {:?}",
                String::from_utf8_lossy(&message.payload().unwrap()[..20])
            );
            *next += 1;
        }
    }
    assert_eq!(read, sent, "every record once");
}

#[test]
fn a_long_poll_is_answered_when_its_partition_moves() {
    let broker = Broker::start_with(&["--shards", "2"]);
    create_topic(&broker, "polled", 1);
    let home = shard_of(&broker, "polled", 0);
    let mut client = WireClient::connect(&broker.bootstrap());
    let mut request = fetch_request("polled", 0, 0, 1 << 20);
    request.max_wait_ms = 30_000;
    request.min_bytes = 1;
    let correlation = client.send(ApiKey::Fetch, FETCH_VERSION, &request);
    // The fetch waits on the partition's shard: the broker counts the wait.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fetch_waits(&broker) == 0.0 {
        assert!(Instant::now() < deadline, "the fetch never waited");
        std::thread::sleep(Duration::from_millis(10));
    }
    let moved_at = Instant::now();
    move_partition(&broker, "polled-0", 1 - home);
    let response = client.receive(ApiKey::Fetch, FETCH_VERSION, correlation);
    let elapsed = moved_at.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "the long poll waited {elapsed:?} after its partition moved (its cap is 30 s)"
    );
    let ResponseBody::Fetch(response) = response else {
        panic!("a fetch response");
    };
    let code = response.responses[0].partitions[0].error_code;
    assert!(
        code == ErrorCode::None.code() || code == ErrorCode::NotLeaderOrFollower.code(),
        "the moved partition answers nothing or NOT_LEADER_OR_FOLLOWER, got {code}"
    );
    // The next fetch finds it on its new shard.
    let again = client.fetch(&fetch_request("polled", 0, 0, 1 << 20));
    assert_eq!(again.responses[0].partitions[0].error_code, 0);
}

#[test]
fn a_consumers_connection_follows_its_partition_to_its_new_shard() {
    let broker = Broker::start_with(&["--shards", "2"]);
    create_topic(&broker, "followed", 1);
    const RECORDS: usize = 200;
    let records: Vec<_> = (0..RECORDS)
        .map(|i| test_record("followed", i, common::kafka::base_timestamp() + i as i64))
        .collect();
    let values: Vec<Vec<u8>> = records
        .iter()
        .map(|r| r.value.clone().unwrap_or_default())
        .collect();

    // A consumer reads partition 0 until it has every record.
    let consumer = reader(&broker, "followed", 0);
    let (read_tx, read_rx) = std::sync::mpsc::channel::<(i64, Vec<u8>)>();
    let reader = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut read = 0;
        while read < RECORDS {
            assert!(Instant::now() < deadline, "read {read} records");
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.expect("the consumer reads through the move");
                let value = message.payload().unwrap_or_default().to_vec();
                read_tx.send((message.offset(), value)).unwrap();
                read += 1;
            }
        }
    });
    let producer = producer(&broker, &[]);
    let mut read = Vec::new();
    let produce = |from: usize, to: usize, read: &mut Vec<(i64, Vec<u8>)>| {
        for delivery in send_all(&producer, "followed", Some(0), &records[from..to]) {
            assert!(delivery.error.is_none(), "{delivery:?}");
        }
        while read.len() < to {
            read.push(
                read_rx
                    .recv_timeout(Duration::from_secs(60))
                    .expect("the consumer reads what was produced"),
            );
        }
    };
    produce(0, RECORDS / 2, &mut read);

    // Once the consumer has fetched as often, and for as long, as it takes to follow,
    // and fetched twice more (the fetch after the one that decides the move is served
    // where it moved), its fetching connection sits on the partition's shard, wherever
    // it was accepted.
    let first = shard_of(&broker, "followed", 0);
    let fetches = |broker: &Broker| {
        metric(
            &broker.scrape(),
            "corelog_partition_fetch_requests_total",
            &[("topic", "followed"), ("partition", "0")],
        )
        .unwrap_or_default()
    };
    // The count of its requests starts at its first fetch, which has happened by
    // `fetching`.
    assert!(
        common::groups::wait_until(Duration::from_secs(30), || fetches(&broker) >= 1.0),
        "the consumer polls its partition"
    );
    let fetching = Instant::now();
    let enough = f64::from(corelog::handlers::FOLLOW_AFTER + 1);
    assert!(
        common::groups::wait_until(Duration::from_secs(30), || {
            fetching.elapsed() > corelog::handlers::FOLLOW_PATIENCE && fetches(&broker) >= enough
        }),
        "the consumer polls its partition"
    );
    let settled = fetches(&broker);
    assert!(
        common::groups::wait_until(Duration::from_secs(30), || fetches(&broker)
            >= settled + 2.0),
        "the consumer polls its partition"
    );
    let moved_in = |broker: &Broker, shard: usize| {
        metric(
            &broker.scrape(),
            "corelog_connections_moved_in_total",
            &[("shard", &shard.to_string())],
        )
        .expect("the counter is exposed")
    };
    let second = 1 - first;
    let before = moved_in(&broker, second);
    move_partition(&broker, "followed-0", second);
    // Its fetches all go to the other shard now: the connection follows them there.
    assert!(
        common::groups::wait_until(Duration::from_secs(30), || moved_in(&broker, second)
            > before),
        "a connection moved to shard {second}: {}",
        broker.logs()
    );
    produce(RECORDS / 2, RECORDS, &mut read);
    reader.join().unwrap();
    for (i, (offset, value)) in read.iter().enumerate() {
        assert_eq!(*offset, i as i64, "offsets are contiguous from 0");
        assert_eq!(value, &values[i], "record {i} in order");
    }
    assert_eq!(
        checksum(read.iter().map(|(_, v)| v.as_slice())),
        checksum(values.iter().map(Vec::as_slice))
    );
}

#[test]
fn moving_consumer_offsets_partitions_keeps_groups_and_their_committed_offsets() {
    let mut broker =
        Broker::start_with(&["--shards", "2", "--set", "offsets.topic.num.partitions=2"]);
    create_topic(&broker, "tracked", 2);
    fn member(broker: &Broker, group: &str) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap()
    }
    let groups = ["moved-group-a", "moved-group-b", "moved-group-c"];
    for (i, group) in groups.iter().enumerate() {
        let c = member(&broker, group);
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("tracked", 0, Offset::Offset(10 + i as i64))
            .unwrap();
        offsets
            .add_partition_offset("tracked", 1, Offset::Offset(20 + i as i64))
            .unwrap();
        c.commit(&offsets, CommitMode::Sync).unwrap();
    }
    // Both offsets partitions change shards.
    for partition in 0..2 {
        let home = shard_of(&broker, "__consumer_offsets", partition);
        let report = move_partition(
            &broker,
            &format!("__consumer_offsets-{partition}"),
            1 - home,
        );
        assert_eq!(report["to"], 1 - home);
    }
    for (i, group) in groups.iter().enumerate() {
        let c = member(&broker, group);
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition("tracked", 0);
        wanted.add_partition("tracked", 1);
        let committed = c
            .committed_offsets(wanted, Duration::from_secs(30))
            .unwrap();
        let found: BTreeMap<i32, Offset> = committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect();
        assert_eq!(found[&0], Offset::Offset(10 + i as i64), "{group}");
        assert_eq!(found[&1], Offset::Offset(20 + i as i64), "{group}");
        // The new coordinator takes commits.
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("tracked", 0, Offset::Offset(100 + i as i64))
            .unwrap();
        c.commit(&offsets, CommitMode::Sync).unwrap();
    }
    // And keeps them across a restart.
    broker.restart();
    for (i, group) in groups.iter().enumerate() {
        let c = member(&broker, group);
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition("tracked", 0);
        let committed = c
            .committed_offsets(wanted, Duration::from_secs(30))
            .unwrap();
        assert_eq!(
            committed.elements()[0].offset(),
            Offset::Offset(100 + i as i64),
            "{group} after the restart"
        );
    }
}

#[test]
fn transaction_coordinators_move_with_their_partition_and_transactions_stay_exactly_once() {
    let broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        "transaction.state.log.num.partitions=1",
    ]);
    let topic = "txn-moved";
    create_topic(&broker, topic, 2);
    let producer = producer(&broker, &[("transactional.id", "mover")]);
    producer
        .init_transactions(Duration::from_secs(30))
        .expect("init_transactions");

    // Moves the coordinator's partition and a partition its transactions write to, in
    // turn, back and forth, until the transactions are done.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mover = {
        let stop = stop.clone();
        let endpoint = endpoint(&broker);
        let bootstrap_shards = [
            (
                "__transaction_state",
                shard_of(&broker, "__transaction_state", 0),
            ),
            (topic, shard_of(&broker, topic, 0)),
        ];
        std::thread::spawn(move || {
            let mut shards = bootstrap_shards;
            let mut moves = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (name, shard) = &mut shards[moves % 2];
                *shard = 1 - *shard;
                let out = corelog(&[
                    "placement",
                    "move",
                    &format!("{name}-0"),
                    &shard.to_string(),
                    "--endpoint",
                    &endpoint,
                    "--format",
                    "json",
                ]);
                let report: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert_eq!(report["to"], *shard, "{report}");
                moves += 1;
            }
            moves
        })
    };

    let mut committed: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for round in 0..12 {
        producer.begin_transaction().expect("begin");
        let values: Vec<(i32, String)> =
            (0..200).map(|i| (i % 2, format!("r{round}-{i}"))).collect();
        for (partition, value) in &values {
            let mut record: BaseRecord<'_, [u8], [u8], usize> =
                BaseRecord::with_opaque_to(topic, 0)
                    .partition(*partition)
                    .payload(value.as_bytes());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(5));
                    }
                }
            }
        }
        if round % 3 == 2 {
            producer.flush(Duration::from_secs(60)).expect("flush");
            producer
                .abort_transaction(Duration::from_secs(60))
                .expect("abort through moves");
        } else {
            producer
                .commit_transaction(Duration::from_secs(60))
                .expect("commit through moves");
            for (partition, value) in values {
                committed.entry(partition).or_default().push(value);
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let moves = mover.join().unwrap();
    assert!(moves >= 2, "moves during the transactions: {moves}");
    let logs = broker.logs();
    assert!(
        logs.contains("placement: __transaction_state-0's transactional ids now coordinated by"),
        "{logs}"
    );

    // librdkafka's consumer reads committed records only (its default isolation level):
    // exactly those, once, in order, and the last stable offset reaches the end of each
    // partition.
    let read = read_values(&consumer(&broker), topic, 2);
    assert_eq!(
        read, committed,
        "the committed records, once each, in order"
    );
}

#[test]
fn a_placement_file_pins_partitions_across_a_restart_and_a_reload_moves_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("placement.conf");
    std::fs::write(
        &file,
        "# pinned on shard 1, the rest spread over shard 0\n\
         pinned*      1\n\
         other:0      0\n\
         *            isolate 0\n",
    )
    .unwrap();
    let setting = format!("placement.file={}", file.display());
    let mut broker = Broker::start_with(&["--shards", "2", "--set", &setting]);
    create_topic(&broker, "pinned-a", 3);
    create_topic(&broker, "other", 2);
    let placement = |broker: &Broker| -> Vec<usize> {
        let mut shards: Vec<usize> = (0..3).map(|p| shard_of(broker, "pinned-a", p)).collect();
        shards.extend((0..2).map(|p| shard_of(broker, "other", p)));
        shards
    };
    assert_eq!(placement(&broker), vec![1, 1, 1, 0, 0]);
    let producer: TestProducer = producer(&broker, &[]);
    let records: Vec<_> = (0..30)
        .map(|i| common::kafka::test_record("pin", i, common::kafka::base_timestamp()))
        .collect();
    let sent = common::kafka::send_all(&producer, "pinned-a", Some(2), &records);
    assert!(sent.iter().all(|d| d.error.is_none()));
    drop(producer);

    broker.restart();
    assert_eq!(
        placement(&broker),
        vec![1, 1, 1, 0, 0],
        "pinned after a restart"
    );

    // A new file: pinned topics go to shard 0; a reload moves them live.
    std::fs::write(&file, "pinned* 0\nother 1\n").unwrap();
    let out = corelog(&[
        "placement",
        "reload",
        "--endpoint",
        &endpoint(&broker),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["rules"], 2, "{report}");
    assert_eq!(report["moves"].as_array().unwrap().len(), 5, "{report}");
    assert_eq!(placement(&broker), vec![0, 0, 0, 1, 1]);
    let read = common::kafka::consume_all(&broker, "pinned-a", 3);
    assert_eq!(read[&2].len(), 30, "the moved partition keeps its records");

    // A file naming a shard the broker lacks changes nothing.
    std::fs::write(&file, "pinned* 5\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_corelog"));
    cmd.args(["placement", "reload", "--endpoint", &endpoint(&broker)]);
    let output = run_with_timeout(cmd, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 1: shard 5 does not exist"),
        "{stderr}"
    );
    assert_eq!(placement(&broker), vec![0, 0, 0, 1, 1]);
}

#[test]
fn a_bad_placement_file_stops_start_up_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("placement.conf");
    std::fs::write(&file, "ok 0\nbroken\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_corelog"));
    cmd.args([
        "serve",
        "--set",
        &format!("log.dirs={}", dir.path().join("data").display()),
        "--set",
        &format!("listeners=PLAINTEXT://127.0.0.1:{}", common::free_port()),
        "--set",
        &format!("metrics.listener=127.0.0.1:{}", common::free_port()),
        "--set",
        &format!("placement.file={}", file.display()),
    ]);
    let output = run_with_timeout(cmd, Duration::from_secs(60));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("placement.file"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");

    // A rule naming a missing shard stops start-up too.
    std::fs::write(&file, "t 3\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_corelog"));
    cmd.args([
        "serve",
        "--shards",
        "2",
        "--set",
        &format!("log.dirs={}", dir.path().join("data2").display()),
        "--set",
        &format!("listeners=PLAINTEXT://127.0.0.1:{}", common::free_port()),
        "--set",
        &format!("metrics.listener=127.0.0.1:{}", common::free_port()),
        "--set",
        &format!("placement.file={}", file.display()),
    ]);
    let output = run_with_timeout(cmd, Duration::from_secs(60));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 1: shard 3 does not exist"),
        "{stderr}"
    );
}

/// Fetch long polls waiting on any shard.
fn fetch_waits(broker: &Broker) -> f64 {
    let exposition = broker.scrape();
    (0..2)
        .filter_map(|shard| {
            metric(
                &exposition,
                "corelog_fetch_waits",
                &[("shard", &shard.to_string())],
            )
        })
        .sum()
}
