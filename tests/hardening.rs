//! No client and no operator mistake stops the broker: requests with extreme field values
//! get Kafka's error codes, connections that announce large frames and send nothing hold
//! no memory for them, a flood of idle connections under a small open-files limit is
//! queued instead of exhausting descriptors, and a second broker on the same port or
//! log directory is refused at start-up.

mod common;

use bytes::Bytes;
use common::Broker;
use common::groups::wait_until;
use common::wire::{WireClient, batch_of, produce_request};
use corelog::protocol::ErrorCode;
use corelog::protocol::generated::api_versions_request::ApiVersionsRequest;
use corelog::protocol::generated::find_coordinator_request::FindCoordinatorRequest;
use corelog::protocol::generated::join_group_request::{
    JoinGroupRequest, JoinGroupRequestProtocol,
};
use corelog::protocol::generated::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use corelog::protocol::generated::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use corelog::protocol::generated::{ApiKey, ResponseBody};
use corelog::protocol::records::Compression;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

const TOPIC: &str = "hardened";

/// The broker still serves a new connection.
fn assert_serving(broker: &mut Broker, case: &str) {
    assert!(broker.is_running(), "{case}: the broker process died");
    let mut client = WireClient::connect(&broker.bootstrap());
    match client.request(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()) {
        ResponseBody::ApiVersions(r) => assert_eq!(r.error_code, 0, "{case}"),
        other => panic!("{case}: {:?}", other.api_key()),
    }
}

/// Creates `name` with `partitions` partitions.
fn create_topic(client: &mut WireClient, name: &str, partitions: i32) {
    use corelog::protocol::generated::create_topics_request::{
        CreatableTopic, CreateTopicsRequest,
    };
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let ResponseBody::CreateTopics(created) = client.request(ApiKey::CreateTopics, 7, &request)
    else {
        panic!("a CreateTopics response")
    };
    assert_eq!(created.topics[0].error_code, 0, "create {name}");
}

/// Produces one small batch to partition 0 of `TOPIC` and returns its base offset.
fn produce_one(client: &mut WireClient, value: &[u8]) -> i64 {
    let request = produce_request(
        TOPIC,
        1,
        vec![(0, batch_of(&[(b"k", value)], Compression::None))],
    );
    let response = client.produce(&request);
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 0, "produce to {TOPIC}");
    partition.base_offset
}

fn commit(group: &str, offset: i64, retention_time_ms: i64) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: -1,
        retention_time_ms,
        topics: vec![OffsetCommitRequestTopic {
            name: TOPIC.into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn commit_code(client: &mut WireClient, version: i16, request: &OffsetCommitRequest) -> i16 {
    match client.request(ApiKey::OffsetCommit, version, request) {
        ResponseBody::OffsetCommit(response) => response.topics[0].partitions[0].error_code,
        other => panic!("{:?}", other.api_key()),
    }
}

fn committed(client: &mut WireClient, group: &str) -> i64 {
    let fetch = OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: group.into(),
            member_epoch: -1,
            topics: Some(vec![OffsetFetchRequestTopics {
                name: TOPIC.into(),
                partition_indexes: vec![0],
                ..Default::default()
            }]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::OffsetFetch(fetched) = client.request(ApiKey::OffsetFetch, 8, &fetch) else {
        panic!("an OffsetFetch response")
    };
    fetched.groups[0].topics[0].partitions[0].committed_offset
}

#[test]
fn group_requests_with_extreme_values_get_kafkas_answers_and_the_broker_stays_up() {
    let mut broker =
        Broker::start_with(&["--shards", "2", "--set", "offsets.topic.num.partitions=4"]);
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 1);
    produce_one(&mut client, b"v");
    let find = FindCoordinatorRequest {
        key: "retained".into(),
        ..Default::default()
    };
    let ResponseBody::FindCoordinator(found) = client.request(ApiKey::FindCoordinator, 3, &find)
    else {
        panic!("a FindCoordinator response")
    };
    assert_eq!(found.error_code, 0);

    // OffsetCommit v2's retention time near i64::MAX: the expiry saturates.
    for (offset, retention) in [(1, i64::MAX), (2, i64::MAX - 1), (3, -1)] {
        assert_eq!(
            commit_code(&mut client, 2, &commit("retained", offset, retention)),
            0,
            "retention_time_ms {retention}"
        );
        assert_eq!(committed(&mut client, "retained"), offset);
    }
    assert_serving(&mut broker, "retention near i64::MAX");

    // A group id longer than the i16-length string of the offsets topic's records.
    let long_group = "g".repeat(40_000);
    assert_eq!(
        commit_code(&mut client, 9, &commit(&long_group, 1, -1)),
        ErrorCode::InvalidGroupId.code()
    );
    assert_serving(&mut broker, "a 40,000-byte group id");

    // A JoinGroup whose protocol name cannot go into the group's record.
    let join = JoinGroupRequest {
        group_id: "joined".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "p".repeat(40_000),
            metadata: Bytes::new(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::JoinGroup(joined) = client.request(ApiKey::JoinGroup, 9, &join) else {
        panic!("a JoinGroup response")
    };
    assert_eq!(joined.error_code, ErrorCode::InvalidRequest.code());
    assert_serving(&mut broker, "a 40,000-byte protocol name");

    // The group's commits are still there after a restart (the records replay).
    broker.restart();
    let mut client = WireClient::connect(&broker.bootstrap());
    assert_eq!(committed(&mut client, "retained"), 3);
    assert!(!broker.logs().contains("panicked"), "no panic in the log");
}

/// A librdkafka producer (default settings) and consumer on their own connections.
struct RealClient {
    producer: common::kafka::TestProducer,
    consumer: rdkafka::consumer::BaseConsumer,
    rounds: usize,
}

impl RealClient {
    fn new(broker: &Broker) -> RealClient {
        RealClient {
            producer: common::kafka::producer(broker, &[]),
            consumer: common::kafka::consumer(broker),
            rounds: 0,
        }
    }

    /// Produces 100 records to partition 0 of `TOPIC` and reads them back, byte-equal.
    fn round(&mut self) {
        use common::kafka::{TestRecord, base_timestamp, consume, send_all, test_record};
        use std::collections::BTreeMap;
        let records: Vec<TestRecord> = (0..100)
            .map(|i| test_record("real", self.rounds * 100 + i, base_timestamp()))
            .collect();
        let deliveries = send_all(&self.producer, TOPIC, Some(0), &records);
        assert!(
            deliveries.iter().all(|d| d.error.is_none()),
            "{deliveries:?}"
        );
        let start = deliveries[0].offset;
        let read = consume(
            &self.consumer,
            TOPIC,
            &BTreeMap::from([(0, rdkafka::Offset::Offset(start))]),
            &BTreeMap::from([(0, start + 100)]),
        );
        let got: Vec<&TestRecord> = read[&0].iter().map(|c| &c.record).collect();
        assert!(
            got == records.iter().collect::<Vec<_>>(),
            "round {} reads back what it produced",
            self.rounds
        );
        self.rounds += 1;
    }
}

/// The sum over shards of a counter in the broker's metrics.
fn counter(broker: &Broker, name: &str) -> f64 {
    broker
        .scrape()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[test]
fn connections_that_announce_large_frames_and_send_nothing_hold_no_memory_for_them() {
    // Default socket.request.max.bytes (100 MiB).
    let mut broker = Broker::start_with(&["--shards", "2"]);
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 1);
    produce_one(&mut client, b"before");
    let rss_before = broker.rss_kib();
    let bytes_before = counter(&broker, "corelog_bytes_in_total");

    const CONNECTIONS: usize = 30;
    let announced: i32 = 100 * 1024 * 1024 - 1;
    let mut hostile = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut stream = TcpStream::connect(broker.bootstrap()).unwrap();
        let mut start = announced.to_be_bytes().to_vec();
        start.extend_from_slice(&[0u8; 60]);
        stream.write_all(&start).unwrap();
        hostile.push(stream);
    }
    // Wait until the broker has read every announcement.
    assert!(
        wait_until(Duration::from_secs(60), || {
            counter(&broker, "corelog_bytes_in_total") >= bytes_before + (CONNECTIONS * 64) as f64
        }),
        "the broker read the announcements"
    );
    let rss_after = broker.rss_kib();
    eprintln!("{CONNECTIONS} connections announcing 100 MiB: RSS {rss_before} → {rss_after} KiB");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "announced frames hold no memory of their size: RSS {rss_before} → {rss_after} KiB"
    );
    // Everyone else is served meanwhile, a real client included.
    produce_one(&mut client, b"during");
    let mut real = RealClient::new(&broker);
    real.round();
    assert_serving(&mut broker, "connections announcing 100 MiB frames");
    drop(hostile);
    produce_one(&mut client, b"after");
    real.round();
}

#[test]
fn idle_connections_beyond_the_descriptors_wait_and_the_broker_keeps_serving() {
    // ulimit -n 1024 for the broker; small segments, so producing opens files.
    let mut broker = Broker::start_limited(
        &["--shards", "2", "--set", "log.segment.bytes=1048576"],
        Some(1024),
    );
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 1);
    produce_one(&mut client, &[b'x'; 1000]);
    let mut real = RealClient::new(&broker);
    real.round();
    let first = produce_one(&mut client, &[b'x'; 1000]);
    assert!(
        broker.logs().contains("open-files limit 1024"),
        "start-up reports the limit:\n{}",
        broker.logs()
    );

    // A thousand idle connections: more than the descriptors allow the broker to serve.
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(broker.bootstrap()).unwrap())
        .collect();
    assert!(
        wait_until(Duration::from_secs(60), || {
            broker
                .logs()
                .contains("serves as many connections as it may")
        }),
        "the broker stops accepting at its limit"
    );

    // The connection opened before keeps producing, across many segment rolls.
    let mut last = first;
    for i in 0..100 {
        let offset = produce_one(&mut client, &[b'y'; 50_000]);
        assert_eq!(offset, last + 1, "produce {i} after the flood");
        last = offset;
    }
    assert!(broker.is_running(), "the broker is still running");
    // The real client, connected before the flood, keeps producing and consuming.
    real.round();
    drop(idle);
    // Once the idle connections go, new ones are served again.
    assert_serving(&mut broker, "after the idle connections closed");
    let logs = broker.logs();
    assert!(!logs.contains("stopping the broker"), "{logs}");
}

#[test]
fn a_second_broker_on_the_same_port_or_log_directory_is_refused() {
    let mut broker = Broker::start();
    let other = tempfile::tempdir().unwrap();
    let not_a_dir = other.path().join("a-file");
    std::fs::write(&not_a_dir, b"not a directory").unwrap();
    let second = |port: u16, dir: &std::path::Path, metrics: u16| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_corelog"));
        cmd.arg("serve")
            .arg("--set")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{port}"))
            .arg("--set")
            .arg(format!("log.dirs={}", dir.display()))
            .arg("--set")
            .arg(format!("metrics.listener=127.0.0.1:{metrics}"))
            .env("RUST_LOG", "warn");
        let output = common::run_with_timeout(cmd, Duration::from_secs(120));
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let cases = [
        (
            "same port",
            second(broker.port, &other.path().join("a"), common::free_port()),
            "cannot listen on PLAINTEXT://127.0.0.1",
        ),
        (
            "same metrics port",
            second(
                common::free_port(),
                &other.path().join("b"),
                broker.metrics_port,
            ),
            "cannot serve metrics on",
        ),
        (
            "same log.dirs",
            second(common::free_port(), &broker.data_dir, common::free_port()),
            "is in use by another broker",
        ),
        (
            "a log.dirs that cannot be a directory",
            second(
                common::free_port(),
                &not_a_dir.join("data"),
                common::free_port(),
            ),
            "cannot create log directory",
        ),
    ];
    for (case, (code, stderr), expected) in cases {
        assert_eq!(code, Some(1), "{case}: refused at start-up\n{stderr}");
        assert!(stderr.contains(expected), "{case}: {stderr}");
    }
    assert_serving(&mut broker, "after the refused starts");
    // Every client reaches the first broker: nothing split connections with another.
    for _ in 0..20 {
        assert_serving(&mut broker, "connections all reach the first broker");
    }
}

/// Produces to every partition of `topic` in a loop on its own connection until told to
/// stop, whatever the answers (the topic may go away, the broker may shut down); returns
/// how many produce requests were answered. Only a dead connection ends it early.
fn produce_loop(
    bootstrap: String,
    topic: &'static str,
    partitions: i32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> std::thread::JoinHandle<usize> {
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let mut client = WireClient::connect(&bootstrap);
        let batch = batch_of(&[(b"k", &[b'z'; 2000])], Compression::None);
        let mut count = 0;
        while !stop.load(Ordering::Acquire) {
            let acks = if count % 2 == 0 { 1 } else { -1 };
            let request = produce_request(
                topic,
                acks,
                (0..partitions).map(|p| (p, batch.clone())).collect(),
            );
            client.send(ApiKey::Produce, common::wire::PRODUCE_VERSION, &request);
            match client.read_outcome(Duration::from_secs(30)) {
                common::wire::Outcome::Frame(_) => {}
                other => {
                    eprintln!("produce loop ended: {other:?}");
                    break;
                }
            }
            count += 1;
            answered.store(count, Ordering::Release);
        }
        count
    })
}

fn wait_for_count(counter: &std::sync::atomic::AtomicUsize, at_least: usize, what: &str) {
    assert!(
        wait_until(Duration::from_secs(60), || {
            counter.load(std::sync::atomic::Ordering::Acquire) >= at_least
        }),
        "{what}"
    );
}

#[test]
fn deleting_a_topic_or_stopping_the_broker_while_clients_produce_never_fails_the_broker() {
    use corelog::protocol::generated::delete_topics_request::{
        DeleteTopicState, DeleteTopicsRequest,
    };
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let mut broker = Broker::start_with(&["--shards", "2"]);
    let mut admin = WireClient::connect(&broker.bootstrap());
    create_topic(&mut admin, "doomed", 4);
    create_topic(&mut admin, "kept", 4);

    // DeleteTopics while two connections produce to it (acks=1 and all, both shards).
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let loops: Vec<_> = counts
        .iter()
        .map(|c| produce_loop(broker.bootstrap(), "doomed", 4, stop.clone(), c.clone()))
        .collect();
    for c in &counts {
        wait_for_count(c, 20, "the producers got going");
    }
    let delete = DeleteTopicsRequest {
        topics: vec![DeleteTopicState {
            name: Some("doomed".into()),
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let ResponseBody::DeleteTopics(deleted) = admin.request(ApiKey::DeleteTopics, 6, &delete)
    else {
        panic!("a DeleteTopics response")
    };
    assert_eq!(deleted.responses[0].error_code, 0);
    let after: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Acquire)).collect();
    for (c, seen) in counts.iter().zip(&after) {
        wait_for_count(c, seen + 20, "producing goes on (answered with errors)");
    }
    stop.store(true, Ordering::Release);
    for l in loops {
        l.join().unwrap();
    }
    assert_serving(&mut broker, "after DeleteTopics under load");

    // SIGTERM while two connections produce: a clean exit, everything acknowledged kept.
    stop.store(false, Ordering::Release);
    let counts: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let loops: Vec<_> = counts
        .iter()
        .map(|c| produce_loop(broker.bootstrap(), "kept", 4, stop.clone(), c.clone()))
        .collect();
    for c in &counts {
        wait_for_count(c, 20, "the producers got going again");
    }
    let status = broker.stop();
    stop.store(true, Ordering::Release);
    for l in loops {
        l.join().unwrap();
    }
    let logs = broker.logs();
    assert!(
        status.success(),
        "a clean exit under load: {status}\n{logs}"
    );
    assert!(!logs.contains("stopping the broker"), "{logs}");
}

#[test]
fn a_long_poll_fetch_ends_when_its_client_hangs_up() {
    use corelog::protocol::generated::fetch_request::FetchRequest;

    // Two shards: partitions on both, so the fetch waits locally and on the other shard.
    let broker = Broker::start_with(&["--shards", "2", "--set", "num.partitions=4"]);
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 4);
    produce_one(&mut client, b"v");
    let mut fetch: FetchRequest = common::wire::fetch_request(TOPIC, 0, 1, 1 << 20);
    for p in 1..4 {
        let mut other = common::wire::fetch_request(TOPIC, p, 0, 1 << 20);
        fetch.topics[0]
            .partitions
            .append(&mut other.topics[0].partitions);
    }
    fetch.max_wait_ms = i32::MAX;
    fetch.min_bytes = 1;
    // Only `client` is open once the harness's readiness probe has gone.
    assert!(
        wait_until(Duration::from_secs(30), || {
            counter(&broker, "corelog_connections") == 1.0
        }),
        "only the test's connection is open"
    );
    let connections_before = 1.0;
    let mut waiting = Vec::new();
    for _ in 0..20 {
        let mut c = WireClient::connect(&broker.bootstrap());
        c.send(ApiKey::Fetch, common::wire::FETCH_VERSION, &fetch);
        waiting.push(c);
    }
    // Each fetch waits on its own shard and on the other (partitions are on both).
    assert!(
        wait_until(Duration::from_secs(60), || {
            counter(&broker, "corelog_connections") >= connections_before + 20.0
                && counter(&broker, "corelog_fetch_waits") >= 20.0
        }),
        "the long polls are open"
    );
    // The clients hang up: their connections and their waits on the other shard go at
    // once, not after max_wait_ms (30 s at most).
    drop(waiting);
    assert!(
        wait_until(Duration::from_secs(10), || {
            counter(&broker, "corelog_connections") <= connections_before
                && counter(&broker, "corelog_fetch_waits") == 0.0
        }),
        "connections whose clients hung up during a long poll are released"
    );
}

#[test]
fn connections_over_max_connections_per_ip_are_closed_and_a_closed_one_frees_its_place() {
    let mut broker = Broker::start_with(&["--shards", "2", "--set", "max.connections.per.ip=3"]);
    // The harness's readiness probe has gone.
    let open = |broker: &Broker| counter(broker, "corelog_connections");
    assert!(
        wait_until(Duration::from_secs(30), || open(&broker) == 0.0),
        "the probe connection closes"
    );
    let served = |broker: &Broker| {
        let mut client = WireClient::connect(&broker.bootstrap());
        match client.request(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()) {
            ResponseBody::ApiVersions(r) => assert_eq!(r.error_code, 0),
            other => panic!("{:?}", other.api_key()),
        }
        client
    };
    let mut clients: Vec<WireClient> = (0..3).map(|_| served(&broker)).collect();
    let mut fourth = WireClient::connect(&broker.bootstrap());
    fourth.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    fourth.expect_closed(
        Duration::from_secs(10),
        "a fourth connection from 127.0.0.1",
    );
    // One closes: its place is free again.
    clients.pop();
    assert!(
        wait_until(Duration::from_secs(30), || open(&broker) <= 2.0),
        "the closed connection goes"
    );
    clients.push(served(&broker));
    for client in &mut clients {
        match client.request(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()) {
            ResponseBody::ApiVersions(r) => assert_eq!(r.error_code, 0),
            other => panic!("{:?}", other.api_key()),
        }
    }
    assert!(broker.is_running());
}

#[test]
fn produce_checks_every_record_as_kafkas_log_validator_does() {
    use corelog::protocol::generated::create_topics_request::{
        CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
    };
    use corelog::protocol::records::BatchBuilder;

    let broker = Broker::start();
    let mut client = WireClient::connect(&broker.bootstrap());
    let topic = |name: &str, config: (&str, &str)| CreatableTopic {
        name: name.into(),
        num_partitions: 1,
        replication_factor: 1,
        configs: vec![CreatableTopicConfig {
            name: config.0.into(),
            value: Some(config.1.into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let request = CreateTopicsRequest {
        topics: vec![
            topic("recent", ("message.timestamp.before.max.ms", "3600000")),
            topic("table", ("cleanup.policy", "compact")),
        ],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let ResponseBody::CreateTopics(created) = client.request(ApiKey::CreateTopics, 7, &request)
    else {
        panic!("a CreateTopics response")
    };
    assert!(created.topics.iter().all(|t| t.error_code == 0));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let produce = |client: &mut WireClient, topic: &str, batch: Bytes| {
        let response = client.produce(&produce_request(topic, -1, vec![(0, batch)]));
        let p = response.responses[0].partition_responses[0].clone();
        let errors: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
        (p.error_code, errors)
    };

    // The batch's first and largest timestamps are recent; its second record is two
    // hours old.
    let mut builder = BatchBuilder::new(Compression::None);
    builder.push(now, Some(b"a"), Some(b"1"), &[]);
    builder.push(now - 7_200_000, Some(b"b"), Some(b"2"), &[]);
    builder.push(now, Some(b"c"), Some(b"3"), &[]);
    assert_eq!(
        produce(&mut client, "recent", builder.build(0)),
        (ErrorCode::InvalidTimestamp.code(), vec![1])
    );
    // The same, compressed.
    let mut builder = BatchBuilder::new(Compression::Lz4);
    builder.push(now, Some(b"a"), Some(b"1"), &[]);
    builder.push(now - 7_200_000, Some(b"b"), Some(b"2"), &[]);
    assert_eq!(
        produce(&mut client, "recent", builder.build(0)),
        (ErrorCode::InvalidTimestamp.code(), vec![1])
    );
    // A compacted topic takes no record without a key.
    let mut builder = BatchBuilder::new(Compression::None);
    builder.push(now, Some(b"k"), Some(b"v"), &[]);
    builder.push(now, None, Some(b"no key"), &[]);
    assert_eq!(
        produce(&mut client, "table", builder.build(0)),
        (ErrorCode::InvalidRecord.code(), vec![1])
    );
    // Nothing of the refused batches was stored; good batches still go in at 0.
    for topic in ["recent", "table"] {
        let (code, errors) = produce(
            &mut client,
            topic,
            batch_of(&[(b"k", b"v")], Compression::None),
        );
        assert_eq!((code, errors), (0, vec![]), "{topic}");
        assert_eq!(client.fetch_all(topic, 0, 0).len(), 1, "{topic}");
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_deleted_topics_leftover_directory_is_not_reused_by_a_new_topic_of_that_name() {
    use corelog::protocol::generated::delete_topics_request::{
        DeleteTopicState, DeleteTopicsRequest,
    };
    let mut broker = Broker::start();
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 1);
    for value in [b"old 1", b"old 2", b"old 3"] {
        produce_one(&mut client, value);
    }
    assert_eq!(broker.stop().code(), Some(0));
    let kept = tempfile::tempdir().unwrap();
    let partition_dir = broker.data_dir.join(format!("{TOPIC}-0"));
    copy_dir(&partition_dir, kept.path());

    // Delete the topic, then put its directory back, as a crash between the deletion's
    // metadata write and the directory's removal would leave it; and a half-removed one.
    broker.restart();
    let mut client = WireClient::connect(&broker.bootstrap());
    let delete = DeleteTopicsRequest {
        topics: vec![DeleteTopicState {
            name: Some(TOPIC.into()),
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let ResponseBody::DeleteTopics(deleted) = client.request(ApiKey::DeleteTopics, 6, &delete)
    else {
        panic!("a DeleteTopics response")
    };
    assert_eq!(deleted.responses[0].error_code, 0);
    assert_eq!(broker.stop().code(), Some(0));
    copy_dir(kept.path(), &partition_dir);
    let half_removed = broker.data_dir.join(format!("{TOPIC}-0.abc-delete"));
    copy_dir(kept.path(), &half_removed);

    broker.restart();
    assert!(
        !half_removed.exists(),
        "a *-delete directory is removed at start-up"
    );
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 1);
    assert_eq!(
        produce_one(&mut client, b"new"),
        0,
        "the new topic starts empty"
    );
    let values: Vec<Vec<u8>> = client
        .fetch_all(TOPIC, 0, 0)
        .into_iter()
        .map(|r| r.record.value.unwrap().to_vec())
        .collect();
    assert_eq!(values, vec![b"new".to_vec()]);
}

#[test]
fn recovery_reports_what_it_cuts_off_as_a_warning_and_a_metric() {
    let mut broker = Broker::start();
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 1);
    for value in [b"one", b"two"] {
        produce_one(&mut client, value);
    }
    assert_eq!(broker.stop().code(), Some(0));
    // A torn tail: half a batch after the last whole one.
    let segment = broker
        .data_dir
        .join(format!("{TOPIC}-0"))
        .join("00000000000000000000.log");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    file.write_all(&[0x5a; 37]).unwrap();
    drop(file);

    broker.restart();
    let metrics = broker.scrape();
    let truncated = counter(&broker, "corelog_recovery_truncated_bytes_total");
    assert_eq!(truncated, 37.0, "{metrics}");
    assert!(
        broker.logs().contains("truncating") && broker.logs().contains("WARN"),
        "recovery warns about what it cut:\n{}",
        broker.logs()
    );
    let mut client = WireClient::connect(&broker.bootstrap());
    assert_eq!(client.fetch_all(TOPIC, 0, 0).len(), 2);
}

/// Found by the handler fuzzer: a Fetch naming an unknown topic beside a known one
/// stopped the shard (every partition was expected to have been read).
#[test]
fn a_fetch_naming_an_unknown_topic_beside_a_known_one_is_answered() {
    let mut broker = Broker::start();
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 1);
    produce_one(&mut client, b"v");
    let mut fetch = common::wire::fetch_request(TOPIC, 0, 0, 1 << 20);
    let mut unknown = common::wire::fetch_request("nowhere", 0, 0, 1 << 20);
    fetch.topics.append(&mut unknown.topics);
    let response = client.fetch(&fetch);
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert_eq!(
        response.responses[1].partitions[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    assert_serving(&mut broker, "a fetch naming an unknown topic");
}

#[test]
fn large_requests_wait_for_their_share_of_queued_max_request_bytes() {
    // One shard, a 2 MiB budget: a 1.5 MiB request being received leaves no room for
    // a 1 MiB one, which waits until the first is done.
    let broker =
        Broker::start_with(&["--shards", "1", "--set", "queued.max.request.bytes=2097152"]);
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 1);
    let request = |size: usize| produce_request(TOPIC, 1, vec![(0, Bytes::from(vec![0u8; size]))]);
    let mut first = WireClient::connect(&broker.bootstrap());
    let first_frame = first.frame(
        ApiKey::Produce,
        common::wire::PRODUCE_VERSION,
        &request(1_500_000),
    );
    first.send_raw(&first_frame[..first_frame.len() - 100]);
    let mut second = WireClient::connect(&broker.bootstrap());
    let second_frame = second.frame(
        ApiKey::Produce,
        common::wire::PRODUCE_VERSION,
        &request(1_000_000),
    );
    // Written from a thread: while the request waits, the broker reads none of it, and
    // the socket buffers may not hold it all.
    let mut writer = second.stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || writer.write_all(&second_frame).unwrap());
    assert!(
        wait_until(Duration::from_secs(60), || {
            counter(&broker, "corelog_request_budget_waits_total") >= 1.0
        }),
        "the second request waits for the budget"
    );
    // The first finishes; both are answered (a batch of zeros is corrupt).
    first.send_raw(&first_frame[first_frame.len() - 100..]);
    sending.join().unwrap();
    for (name, client) in [("first", &mut first), ("second", &mut second)] {
        match client.read_outcome(Duration::from_secs(30)) {
            common::wire::Outcome::Frame(_) => {}
            other => panic!("the {name} request is answered: {other:?}"),
        }
    }
    produce_one(&mut client, b"after");
}

#[test]
fn small_protocol_answers_are_kafkas() {
    use corelog::protocol::generated::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    };
    use corelog::protocol::generated::metadata_request::{MetadataRequest, MetadataRequestTopic};

    let broker = Broker::start();
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 2);
    for _ in 0..3 {
        produce_one(&mut client, b"v");
    }

    // ListOffsets v9: -4 (earliest local) is the log start offset; -5 (latest tiered)
    // is none without tiered storage.
    let list = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: TOPIC.into(),
            partitions: [-1, -2, -4, -5]
                .into_iter()
                .map(|timestamp| ListOffsetsPartition {
                    partition_index: 0,
                    current_leader_epoch: -1,
                    timestamp,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::ListOffsets(listed) = client.request(ApiKey::ListOffsets, 9, &list) else {
        panic!("a ListOffsets response")
    };
    let answers: Vec<(i16, i64)> = listed.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.offset))
        .collect();
    assert_eq!(answers, vec![(0, 3), (0, 0), (0, 0), (0, -1)]);

    // Metadata naming a new topic twice creates it once.
    let twice = MetadataRequest {
        topics: Some(
            (0..2)
                .map(|_| MetadataRequestTopic {
                    name: Some("named-twice".into()),
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: true,
        ..Default::default()
    };
    let ResponseBody::Metadata(metadata) = client.request(ApiKey::Metadata, 12, &twice) else {
        panic!("a Metadata response")
    };
    assert!(
        metadata
            .topics
            .iter()
            .all(|t| t.error_code == 0 && t.partitions.len() == 1),
        "{:?}",
        metadata.topics
    );

    // KIP-74: the first partition with data may go past its partition_max_bytes; a
    // later one whose first batch alone is too large returns nothing this time.
    for partition in [0, 1] {
        let big = produce_request(
            TOPIC,
            1,
            vec![(
                partition,
                batch_of(&[(b"k", &[b'x'; 5000])], Compression::None),
            )],
        );
        assert_eq!(
            client.produce(&big).responses[0].partition_responses[0].error_code,
            0
        );
    }
    // Partition 1's big batch is at 0, partition 0's at 3 (after the small ones).
    let mut fetch = common::wire::fetch_request(TOPIC, 1, 0, 1 << 20);
    let mut second = common::wire::fetch_request(TOPIC, 0, 3, 1 << 20);
    fetch.topics[0]
        .partitions
        .append(&mut second.topics[0].partitions);
    for p in &mut fetch.topics[0].partitions {
        p.partition_max_bytes = 100;
    }
    let response = client.fetch(&fetch);
    let sizes: Vec<usize> = response.responses[0]
        .partitions
        .iter()
        .map(|p| match &p.records {
            Some(corelog::protocol::codec::Records::Bytes(b)) => b.len(),
            _ => 0,
        })
        .collect();
    assert!(
        sizes[0] > 100,
        "the first partition returns a batch: {sizes:?}"
    );
    assert_eq!(
        sizes[1], 0,
        "the second returns nothing past its limit: {sizes:?}"
    );
}

#[test]
fn a_commit_whose_record_cannot_be_written_changes_nothing() {
    let broker = Broker::start_with(&["--set", "offsets.topic.num.partitions=1"]);
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 300);
    let find = FindCoordinatorRequest {
        key: "careful".into(),
        ..Default::default()
    };
    let ResponseBody::FindCoordinator(found) = client.request(ApiKey::FindCoordinator, 3, &find)
    else {
        panic!("a FindCoordinator response")
    };
    assert_eq!(found.error_code, 0);
    assert_eq!(commit_code(&mut client, 9, &commit("careful", 1, -1)), 0);

    // 300 partitions with 4,000 bytes of metadata each: one record batch of 1.2 MB, over
    // the offsets topic's max.message.bytes.
    let mut oversized = commit("careful", 2, -1);
    let template = oversized.topics[0].partitions[0].clone();
    oversized.topics[0].partitions = (0..300)
        .map(|partition_index| OffsetCommitRequestPartition {
            partition_index,
            committed_metadata: Some("m".repeat(4000)),
            ..template.clone()
        })
        .collect();
    let ResponseBody::OffsetCommit(response) = client.request(ApiKey::OffsetCommit, 9, &oversized)
    else {
        panic!("an OffsetCommit response")
    };
    assert!(
        response.topics[0]
            .partitions
            .iter()
            .all(|p| p.error_code == ErrorCode::InvalidCommitOffsetSize.code()),
        "every partition refused"
    );
    assert_eq!(
        committed(&mut client, "careful"),
        1,
        "the refused commit left the previous one in place"
    );
}

/// A CreateTopics of many partitions on one shard opens them all at once: this once
/// overflowed a glommio task's reference count and panicked the shard.
#[test]
fn a_topic_of_a_thousand_partitions_opens_on_one_shard() {
    let mut broker = Broker::start_with(&["--shards", "1"]);
    let mut client = WireClient::connect(&broker.bootstrap());
    create_topic(&mut client, TOPIC, 1000);
    produce_one(&mut client, b"v");
    // One acks=all produce to every partition: a thousand appends in one request.
    let batch = batch_of(&[(b"k", b"v")], Compression::None);
    let request = produce_request(TOPIC, -1, (0..1000).map(|p| (p, batch.clone())).collect());
    let response = client.produce(&request);
    assert!(
        response.responses[0]
            .partition_responses
            .iter()
            .all(|p| p.error_code == 0),
        "every partition appended"
    );
    assert_serving(&mut broker, "a topic of 1000 partitions");
    assert!(!broker.logs().contains("panicked"), "no panic in the log");
}
