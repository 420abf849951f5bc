//! The operator CLI (`corelog topic ...`, `corelog group ...`) against the real broker:
//! each test starts `corelog serve`, runs the built `corelog` binary as an operator
//! would, and checks what it prints (tables and `--format json`) and its exit status
//! against what real clients (librdkafka through the `rdkafka` crate) see.

mod common;

use common::groups::{CLASSIC, Member, wait_until};
use common::kafka::{TestRecord, producer, send_all, test_record};
use common::{Broker, free_port, run_with_timeout};
use rdkafka::ClientConfig;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// What one run of the CLI did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `corelog ARGS` (with `--bootstrap-server` unless ARGS give one).
fn cli(broker: Option<&Broker>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_corelog"));
    cmd.args(args);
    if let Some(broker) = broker {
        cmd.arg("--bootstrap-server").arg(broker.bootstrap());
    }
    let output = run_with_timeout(cmd, Duration::from_secs(120));
    let run = Run {
        code: output
            .status
            .code()
            .expect("the CLI exits, it is not killed"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    };
    assert!(!run.stderr.contains("panicked"), "{args:?}: {run:?}");
    run
}

/// Runs the CLI and expects success; returns stdout.
fn ok(broker: &Broker, args: &[&str]) -> String {
    let run = cli(Some(broker), args);
    assert_eq!(run.code, 0, "corelog {args:?} failed: {run:?}");
    run.stdout
}

/// Runs the CLI with `--format json` and parses its one JSON document.
fn json(broker: &Broker, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend(["--format", "json"]);
    let stdout = ok(broker, &full);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

/// Runs the CLI and expects it to fail with `code`; returns stderr.
fn fails(broker: Option<&Broker>, code: i32, args: &[&str]) -> String {
    let run = cli(broker, args);
    assert_eq!(run.code, code, "corelog {args:?}: {run:?}");
    assert!(
        run.stderr.starts_with("corelog: ") || run.stderr.starts_with("error: "),
        "one clear message: {run:?}"
    );
    run.stderr
}

fn start_broker() -> Broker {
    Broker::start_with(&[
        "--set",
        "group.initial.rebalance.delay.ms=300",
        "--set",
        "group.consumer.heartbeat.interval.ms=500",
        "--set",
        "group.consumer.min.heartbeat.interval.ms=500",
    ])
}

fn metadata_consumer(broker: &Broker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("an rdkafka client")
}

/// Partition -> leader, as librdkafka's Metadata sees `topic` (empty: no such topic).
fn rdkafka_leaders(broker: &Broker, topic: &str) -> BTreeMap<i32, i32> {
    let metadata = metadata_consumer(broker)
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata");
    let topic = &metadata.topics()[0];
    if topic.error().is_some() {
        return BTreeMap::new();
    }
    topic
        .partitions()
        .iter()
        .map(|p| (p.id(), p.leader()))
        .collect()
}

/// The group's committed offsets as librdkafka reads them (OffsetFetch); -1 for none.
fn rdkafka_committed(broker: &Broker, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let offsets = consumer
        .committed_offsets(list, Duration::from_secs(30))
        .expect("OffsetFetch");
    (0..partitions)
        .map(|p| {
            offsets
                .find_partition(topic, p)
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0)
                .unwrap_or(-1)
        })
        .collect()
}

/// The log end offset of each partition, as librdkafka reads it (ListOffsets).
fn rdkafka_log_end(broker: &Broker, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer = metadata_consumer(broker);
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .expect("watermarks")
                .1
        })
        .collect()
}

/// Sends `counts[p]` records to each partition p (acks=all), with timestamps one second
/// apart from `first_timestamp`.
fn produce(broker: &Broker, topic: &str, counts: &[usize], first_timestamp: i64) {
    let producer = producer(broker, &[("acks", "all")]);
    for (partition, count) in counts.iter().enumerate() {
        let records: Vec<TestRecord> = (0..*count)
            .map(|i| test_record(topic, i, first_timestamp + 1000 * i as i64))
            .collect();
        for delivery in send_all(&producer, topic, Some(partition as i32), &records) {
            assert!(delivery.error.is_none(), "{delivery:?}");
        }
    }
}

/// The `partitions` rows of `group describe --format json`, by partition.
fn described(broker: &Broker, group: &str) -> (Value, BTreeMap<i64, Value>) {
    let doc = json(broker, &["group", "describe", "--group", group]);
    let rows = doc["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|row| (row["partition"].as_i64().unwrap(), row.clone()))
        .collect();
    (doc, rows)
}

/// Consumes every record of `topic` in `group` with a classic librdkafka member that
/// commits automatically, and waits until the commits reach the log end offsets.
fn consume_all(broker: &Broker, group: &str, topic: &str, log_end: &[i64]) -> Member {
    let member = Member::start(broker, group, topic, CLASSIC);
    let total: i64 = log_end.iter().sum();
    assert!(
        wait_until(Duration::from_secs(60), || member.consumed().len() as i64
            >= total),
        "the member consumed {} of {total} records: {:?}",
        member.consumed().len(),
        member.errors()
    );
    assert!(
        wait_until(Duration::from_secs(60), || {
            rdkafka_committed(broker, group, topic, log_end.len() as i32) == log_end
        }),
        "the member's commits did not reach {log_end:?}"
    );
    member
}

#[test]
fn topics_are_created_listed_described_and_deleted() {
    let broker = start_broker();
    let out = ok(
        &broker,
        &[
            "topic",
            "create",
            "--topic",
            "orders",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=86400000",
        ],
    );
    assert_eq!(out, "Created topic orders.\n");
    let created = json(&broker, &["topic", "create", "--topic", "payments"]);
    assert_eq!(created["created"], true);
    assert_eq!(created["partitions"], 1, "the broker's num.partitions");
    assert_eq!(created["replication_factor"], 1);
    assert_eq!(created["topic_id"].as_str().map(str::len), Some(22));

    let list = ok(&broker, &["topic", "list"]);
    assert_eq!(list, "orders\npayments\n");
    assert_eq!(
        json(&broker, &["topic", "list"])["topics"],
        serde_json::json!(["orders", "payments"])
    );

    // Kafka's layout: a topic line, then one line per partition.
    let describe = ok(&broker, &["topic", "describe", "--topic", "orders"]);
    let lines: Vec<&str> = describe.lines().collect();
    assert_eq!(lines.len(), 4, "{describe}");
    assert!(
        lines[0].starts_with("Topic: orders\tTopicId: ")
            && lines[0].contains("\tPartitionCount: 3\tReplicationFactor: 1"),
        "{describe}"
    );
    let leaders = rdkafka_leaders(&broker, "orders");
    assert_eq!(leaders.len(), 3, "librdkafka sees three partitions");
    for (partition, line) in lines[1..].iter().enumerate() {
        let leader = leaders[&(partition as i32)];
        assert_eq!(
            *line,
            format!(
                "\tTopic: orders\tPartition: {partition}\tLeader: {leader}\tReplicas: {leader}\tIsr: {leader}"
            )
        );
    }
    let doc = json(&broker, &["topic", "describe", "--topic", "orders"]);
    let topic = &doc["topics"][0];
    assert_eq!(topic["topic"], "orders");
    assert_eq!(topic["partition_count"], 3);
    assert_eq!(topic["replication_factor"], 1);
    assert_eq!(topic["is_internal"], false);
    assert_eq!(
        topic["topic_id"],
        table_topic_id(&broker, "orders"),
        "the table and the JSON agree on the id"
    );
    for p in topic["partitions"].as_array().unwrap() {
        let partition = p["partition"].as_i64().unwrap() as i32;
        assert_eq!(p["leader"], leaders[&partition]);
        assert_eq!(p["replicas"], serde_json::json!([leaders[&partition]]));
        assert_eq!(p["isr"], serde_json::json!([leaders[&partition]]));
    }
    let all = json(&broker, &["topic", "describe"]);
    assert_eq!(all["topics"].as_array().unwrap().len(), 2);

    // Creating again: TOPIC_ALREADY_EXISTS, unless --if-not-exists.
    let err = fails(Some(&broker), 1, &["topic", "create", "--topic", "orders"]);
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    let again = json(
        &broker,
        &["topic", "create", "--topic", "orders", "--if-not-exists"],
    );
    assert_eq!(again["created"], false);

    assert_eq!(
        ok(&broker, &["topic", "delete", "--topic", "orders"]),
        "Deleted topic orders.\n"
    );
    assert_eq!(ok(&broker, &["topic", "list"]), "payments\n");
    assert!(
        rdkafka_leaders(&broker, "orders").is_empty(),
        "librdkafka no longer sees the topic"
    );
    let err = fails(Some(&broker), 1, &["topic", "delete", "--topic", "orders"]);
    assert!(err.contains("topic 'orders' does not exist"), "{err}");
    let deleted = json(
        &broker,
        &["topic", "delete", "--topic", "orders", "--if-exists"],
    );
    assert_eq!(deleted["deleted"], false);
}

/// The TopicId field of `topic describe` in table form.
fn table_topic_id(broker: &Broker, topic: &str) -> Value {
    let describe = ok(broker, &["topic", "describe", "--topic", topic]);
    let id = describe
        .split('\t')
        .find_map(|field| field.strip_prefix("TopicId: "))
        .expect("a TopicId field");
    Value::String(id.to_string())
}

#[test]
fn group_describe_shows_committed_offsets_log_end_offsets_and_lag() {
    let broker = start_broker();
    let (topic, group) = ("lagging", "lag-group");
    ok(
        &broker,
        &["topic", "create", "--topic", topic, "--partitions", "3"],
    );
    produce(&broker, topic, &[5, 7, 2], 1_700_000_000_000);
    let log_end = rdkafka_log_end(&broker, topic, 3);
    assert_eq!(log_end, vec![5, 7, 2]);
    let member = consume_all(&broker, group, topic, &log_end);

    // With the member active: every partition is its, with no lag.
    let (doc, rows) = described(&broker, group);
    assert_eq!(doc["group"], group);
    assert_eq!(doc["group_type"], "classic");
    assert_eq!(doc["state"], "Stable");
    assert_eq!(doc["members"], 1);
    assert_eq!(rows.len(), 3);
    let consumer_id = rows[&0]["consumer_id"]
        .as_str()
        .expect("an owner")
        .to_string();
    for (partition, row) in &rows {
        let end = log_end[*partition as usize];
        assert_eq!(row["topic"], topic);
        assert_eq!(row["current_offset"], end);
        assert_eq!(row["log_end_offset"], end);
        assert_eq!(row["lag"], 0);
        assert_eq!(row["consumer_id"], consumer_id.as_str());
        assert_eq!(row["client_id"], "rdkafka");
        assert!(row["host"].as_str().unwrap().contains("127.0.0.1"), "{row}");
    }
    let table = ok(&broker, &["group", "describe", "--group", group]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    let second: Vec<&str> = table.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(
        second[..7],
        [group, topic, "1", "7", "7", "0", consumer_id.as_str()]
    );

    // Without members, records produced since are lag.
    member.close();
    produce(&broker, topic, &[4, 0, 1], 1_700_000_100_000);
    let log_end = rdkafka_log_end(&broker, topic, 3);
    assert_eq!(log_end, vec![9, 7, 3]);
    let committed = rdkafka_committed(&broker, group, topic, 3);
    assert_eq!(committed, vec![5, 7, 2]);
    let (doc, rows) = described(&broker, group);
    assert_eq!(doc["state"], "Empty");
    assert_eq!(doc["members"], 0);
    for (partition, row) in &rows {
        let p = *partition as usize;
        assert_eq!(row["current_offset"], committed[p]);
        assert_eq!(row["log_end_offset"], log_end[p]);
        assert_eq!(row["lag"], log_end[p] - committed[p]);
        assert_eq!(row["consumer_id"], Value::Null);
    }
    let run = cli(Some(&broker), &["group", "describe", "--group", group]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("has no active members"), "{run:?}");
    let first: Vec<&str> = run
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(first, [group, topic, "0", "5", "9", "4", "-", "-", "-"]);

    // The group is listed, and __consumer_offsets is an internal topic.
    let groups = json(&broker, &["group", "list"]);
    let listed = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == group)
        .unwrap_or_else(|| panic!("{group} listed: {groups}"));
    assert_eq!(listed["group_type"], "classic");
    assert_eq!(listed["protocol_type"], "consumer");
    assert_eq!(listed["state"], "Empty");
    let table = ok(&broker, &["group", "list"]);
    assert!(table.starts_with("GROUP"), "{table}");
    assert!(table.lines().any(
        |l| l.split_whitespace().collect::<Vec<_>>() == [group, "classic", "consumer", "Empty"]
    ));
    assert!(ok(&broker, &["topic", "list"]).contains("__consumer_offsets"));
    assert!(!ok(&broker, &["topic", "list", "--exclude-internal"]).contains("__consumer_offsets"));
}

#[test]
fn kip_848_groups_are_described_through_consumer_group_describe() {
    let broker = start_broker();
    let (topic, group) = ("kip848", "kip848-group");
    ok(
        &broker,
        &["topic", "create", "--topic", topic, "--partitions", "2"],
    );
    produce(&broker, topic, &[3, 4], 1_700_000_000_000);
    let member = Member::start(&broker, group, topic, &[("group.protocol", "consumer")]);
    assert!(
        wait_until(Duration::from_secs(60), || {
            member.consumed().len() == 7 && rdkafka_committed(&broker, group, topic, 2) == [3, 4]
        }),
        "the KIP-848 member consumed and committed everything: {:?}",
        member.errors()
    );
    let (doc, rows) = described(&broker, group);
    assert_eq!(doc["group_type"], "consumer");
    assert_eq!(doc["state"], "Stable");
    assert_eq!(doc["members"], 1);
    assert_eq!(rows.len(), 2);
    for (partition, row) in &rows {
        let end = [3, 4][*partition as usize];
        assert_eq!(row["current_offset"], end);
        assert_eq!(row["log_end_offset"], end);
        assert_eq!(row["lag"], 0);
        assert!(row["consumer_id"].is_string(), "{row}");
    }
    let groups = json(&broker, &["group", "list"]);
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == group && g["group_type"] == "consumer"),
        "{groups}"
    );
    let err = fails(
        Some(&broker),
        1,
        &[
            "group",
            "reset-offsets",
            "--group",
            group,
            "--all-topics",
            "--to-earliest",
            "--execute",
        ],
    );
    assert!(err.contains("can only be reset if the group"), "{err}");
    member.close();
}

#[test]
fn reset_offsets_prints_a_plan_and_commits_it_only_with_execute() {
    let broker = start_broker();
    let (topic, group) = ("replay", "replay-group");
    ok(
        &broker,
        &["topic", "create", "--topic", topic, "--partitions", "2"],
    );
    // Partition 0: ten records one second apart from 2023-11-14T22:13:20Z.
    produce(&broker, topic, &[10, 6], 1_700_000_000_000);
    let member = consume_all(&broker, group, topic, &[10, 6]);

    // An active group cannot be reset, dry run or not.
    let err = fails(
        Some(&broker),
        1,
        &[
            "group",
            "reset-offsets",
            "--group",
            group,
            "--all-topics",
            "--to-earliest",
        ],
    );
    assert!(
        err.contains("Assignments can only be reset if the group 'replay-group' is inactive"),
        "{err}"
    );
    member.close();
    assert_eq!(rdkafka_committed(&broker, group, topic, 2), [10, 6]);

    // A dry run prints the plan and changes nothing.
    let run = cli(
        Some(&broker),
        &[
            "group",
            "reset-offsets",
            "--group",
            group,
            "--all-topics",
            "--to-earliest",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "GROUP         TOPIC   PARTITION  NEW-OFFSET\n\
             {group}  {topic}  0          0\n\
             {group}  {topic}  1          0\n"
        )
    );
    assert!(run.stderr.contains("Dry run"), "{run:?}");
    assert_eq!(rdkafka_committed(&broker, group, topic, 2), [10, 6]);

    // --execute commits it.
    let plan = json(
        &broker,
        &[
            "group",
            "reset-offsets",
            "--group",
            group,
            "--all-topics",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(plan["executed"], true);
    assert_eq!(plan["partitions"][0]["current_offset"], 10);
    assert_eq!(plan["partitions"][0]["new_offset"], 0);
    assert_eq!(rdkafka_committed(&broker, group, topic, 2), [0, 0]);

    // Other scenarios, on some partitions.
    let reset = |args: &[&str]| {
        let mut full = vec!["group", "reset-offsets", "--group", group];
        full.extend_from_slice(args);
        full.push("--execute");
        json(&broker, &full)
    };
    reset(&["--topic", &format!("{topic}:1"), "--to-offset", "4"]);
    assert_eq!(rdkafka_committed(&broker, group, topic, 2), [0, 4]);
    reset(&["--topic", topic, "--shift-by", "3"]);
    assert_eq!(
        rdkafka_committed(&broker, group, topic, 2),
        [3, 6],
        "4+3 is past the end"
    );
    reset(&[
        "--topic",
        &format!("{topic}:0"),
        "--to-datetime",
        "2023-11-14T22:13:25.000Z",
    ]);
    assert_eq!(rdkafka_committed(&broker, group, topic, 2), [5, 6]);
    reset(&[
        "--topic",
        &format!("{topic}:0"),
        "--to-datetime",
        "2023-11-14T23:13:25+01:00",
    ]);
    assert_eq!(
        rdkafka_committed(&broker, group, topic, 2),
        [5, 6],
        "the same instant"
    );
    reset(&[
        "--topic",
        topic,
        "--to-datetime",
        "2030-01-01T00:00:00.000Z",
    ]);
    assert_eq!(
        rdkafka_committed(&broker, group, topic, 2),
        [10, 6],
        "after the last record"
    );
    reset(&["--all-topics", "--to-offset", "-5"]);
    assert_eq!(
        rdkafka_committed(&broker, group, topic, 2),
        [0, 0],
        "below the log start"
    );
    reset(&["--all-topics", "--to-latest"]);
    assert_eq!(rdkafka_committed(&broker, group, topic, 2), [10, 6]);

    // A new member of the group starts from the committed offsets.
    reset(&["--topic", &format!("{topic}:0"), "--to-offset", "8"]);
    let member = Member::start(&broker, group, topic, CLASSIC);
    assert!(
        wait_until(Duration::from_secs(60), || member.consumed().len() >= 2),
        "{:?}",
        member.errors()
    );
    let mut offsets: Vec<(i32, i64)> = member
        .consumed()
        .iter()
        .map(|s| (s.partition, s.offset))
        .collect();
    offsets.sort();
    assert_eq!(offsets, [(0, 8), (0, 9)]);
    member.close();

    let err = fails(
        Some(&broker),
        1,
        &[
            "group",
            "reset-offsets",
            "--group",
            group,
            "--topic",
            "nope",
            "--to-earliest",
        ],
    );
    assert!(err.contains("topic 'nope' does not exist"), "{err}");
    let err = fails(
        Some(&broker),
        1,
        &[
            "group",
            "reset-offsets",
            "--group",
            group,
            "--topic",
            &format!("{topic}:7"),
            "--to-earliest",
        ],
    );
    assert!(err.contains("has no partition 7"), "{err}");
}

#[test]
fn groups_are_deleted_only_once_inactive() {
    let broker = start_broker();
    let (topic, group) = ("doomed", "doomed-group");
    ok(&broker, &["topic", "create", "--topic", topic]);
    produce(&broker, topic, &[3], 1_700_000_000_000);
    let member = consume_all(&broker, group, topic, &[3]);
    let err = fails(Some(&broker), 1, &["group", "delete", "--group", group]);
    assert!(err.contains("NON_EMPTY_GROUP"), "{err}");
    assert!(err.contains("active members"), "{err}");
    member.close();
    assert_eq!(
        ok(&broker, &["group", "delete", "--group", group]),
        format!("Deletion of requested consumer groups ('{group}') was successful.\n")
    );
    let err = fails(Some(&broker), 1, &["group", "describe", "--group", group]);
    assert!(
        err.contains(&format!("consumer group '{group}' does not exist")),
        "{err}"
    );
    assert_eq!(
        rdkafka_committed(&broker, group, topic, 1),
        [-1],
        "offsets gone too"
    );
    let groups = json(&broker, &["group", "list"]);
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["group"] != group),
        "{groups}"
    );
    let err = fails(Some(&broker), 1, &["group", "delete", "--group", group]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn failures_are_one_clear_message_with_exit_status_1_or_2() {
    let broker = start_broker();
    let err = fails(Some(&broker), 1, &["topic", "describe", "--topic", "nope"]);
    assert_eq!(err, "corelog: topic 'nope' does not exist\n");

    // Nothing listens: refused at once.
    let closed = format!("127.0.0.1:{}", free_port());
    let err = fails(
        None,
        1,
        &[
            "topic",
            "list",
            "--bootstrap-server",
            &closed,
            "--timeout-ms",
            "500",
        ],
    );
    assert!(
        err.contains(&format!("cannot connect to {closed}")),
        "{err}"
    );

    // A listener that never answers: the timeout, naming the API it waited for.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let err = fails(
        None,
        1,
        &[
            "group",
            "list",
            "--bootstrap-server",
            &address,
            "--timeout-ms",
            "300",
        ],
    );
    assert_eq!(
        err,
        format!("corelog: {address} did not answer ApiVersions within 300 ms (--timeout-ms)\n")
    );

    // Bad arguments: status 2, before anything is sent.
    for args in [
        &["topic", "create"][..],
        &["topic", "create", "--topic", "t", "--partitions", "0"][..],
        &["topic", "list", "--format", "yaml"][..],
        &["topic", "alter-config", "--topic", "t"][..],
        &["group", "reset-offsets", "--group", "g", "--all-topics"][..],
        &["group", "reset-offsets", "--group", "g", "--to-earliest"][..],
        &["group", "describe"][..],
    ] {
        fails(Some(&broker), 2, args);
    }
    let err = fails(None, 2, &["topic", "list", "--bootstrap-server", "no-port"]);
    assert!(err.contains("'no-port' is not host:port"), "{err}");
}

/// Needs DescribeConfigs and IncrementalAlterConfigs on the broker.
#[test]
fn alter_config_round_trip() {
    let broker = start_broker();
    ok(
        &broker,
        &["topic", "create", "--topic", "tuned", "--partitions", "1"],
    );
    let run = cli(
        Some(&broker),
        &[
            "topic",
            "alter-config",
            "--topic",
            "tuned",
            "--add-config",
            "retention.ms=12345",
        ],
    );
    assert_eq!(
        run.code, 0,
        "alter-config needs IncrementalAlterConfigs on the broker: {}",
        run.stderr
    );
    assert_eq!(run.stdout, "Completed updating config for topic tuned.\n");
    let describe = ok(&broker, &["topic", "describe", "--topic", "tuned"]);
    let configs = describe
        .lines()
        .next()
        .and_then(|l| l.split('\t').find_map(|f| f.strip_prefix("Configs: ")))
        .unwrap_or_else(|| panic!("a Configs field: {describe}"));
    assert!(
        configs.split(',').any(|c| c == "retention.ms=12345"),
        "{describe}"
    );
    let doc = json(&broker, &["topic", "describe", "--topic", "tuned"]);
    assert_eq!(doc["topics"][0]["configs"]["retention.ms"], "12345");

    let altered = json(
        &broker,
        &[
            "topic",
            "alter-config",
            "--topic",
            "tuned",
            "--delete-config",
            "retention.ms",
        ],
    );
    assert_eq!(altered["deleted"], serde_json::json!(["retention.ms"]));
    let doc = json(&broker, &["topic", "describe", "--topic", "tuned"]);
    assert!(
        doc["topics"][0]["configs"].get("retention.ms").is_none(),
        "{doc}"
    );
}
