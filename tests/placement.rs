//! Load accounting and `corelog placement show` against the real broker: records
//! produced by librdkafka to one partition of a broker on two shards, read back by a
//! librdkafka consumer, show up in that partition's counters on the shard the shard
//! table names — in `GET /placement`, in the Prometheus exposition and in what the CLI
//! prints — and an endpoint that does not answer is one clear error.

mod common;

use common::kafka::{consume_all, producer, send_all, test_record};
use common::{Broker, free_port, metric, run_with_timeout};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

const TOPIC: &str = "load-accounting";
const PARTITIONS: i32 = 4;
/// The partition every record goes to.
const HOT: i32 = 2;
const RECORDS: usize = 500;

/// Runs `corelog ARGS`; returns (exit status, stdout, stderr).
fn corelog(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_corelog"));
    cmd.args(args);
    let output = run_with_timeout(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 stdout");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8 stderr");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    let code = output
        .status
        .code()
        .expect("the CLI exits, it is not killed");
    (code, stdout, stderr)
}

/// A GET on the metrics endpoint: (status line, body).
fn get(broker: &Broker, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", broker.metrics_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The row of `TOPIC`-`partition` in a document's `partitions`.
fn partition_row(document: &Value, partition: i32) -> &Value {
    document["partitions"]
        .as_array()
        .expect("a partitions array")
        .iter()
        .find(|p| p["topic"] == TOPIC && p["partition"] == partition)
        .unwrap_or_else(|| panic!("{TOPIC}-{partition} in {document}"))
}

#[test]
fn a_partitions_load_is_counted_on_its_shard_and_shown_by_the_cli() {
    let broker = Broker::start_with(&["--shards", "2"]);
    let endpoint = format!("127.0.0.1:{}", broker.metrics_port);
    let partitions = PARTITIONS.to_string();
    let (code, _, stderr) = corelog(&[
        "topic",
        "create",
        "--topic",
        TOPIC,
        "--partitions",
        &partitions,
        "--bootstrap-server",
        &broker.bootstrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");

    let records: Vec<_> = (0..RECORDS)
        .map(|i| test_record(TOPIC, i, 1_700_000_000_000 + i as i64))
        .collect();
    let producer = producer(&broker, &[]);
    for delivery in send_all(&producer, TOPIC, Some(HOT), &records) {
        assert!(delivery.error.is_none(), "{delivery:?}");
    }
    let consumed = consume_all(&broker, TOPIC, PARTITIONS);
    assert_eq!(consumed[&HOT].len(), RECORDS, "every record read back");

    // The shard table, as the Prometheus exposition gives it.
    let exposition = broker.scrape();
    let hot = HOT.to_string();
    let owner = metric(
        &exposition,
        "corelog_partition_shard",
        &[("topic", TOPIC), ("partition", &hot)],
    )
    .expect("the shard table names the partition's owner") as u64;
    let labels = [("topic", TOPIC), ("partition", hot.as_str())];
    assert_eq!(
        metric(&exposition, "corelog_partition_records_in_total", &labels),
        Some(RECORDS as f64),
        "{exposition}"
    );
    for name in [
        "corelog_partition_bytes_in_total",
        "corelog_partition_bytes_out_total",
        "corelog_partition_produce_requests_total",
        "corelog_partition_fetch_requests_total",
        "corelog_partition_busy_seconds_total",
    ] {
        let value = metric(&exposition, name, &labels).unwrap_or_default();
        assert!(value > 0.0, "{name}: {value}\n{exposition}");
    }
    let owner_label = owner.to_string();
    for name in [
        "corelog_shard_busy_seconds_total",
        "corelog_shard_cpu_seconds_total",
    ] {
        let value = metric(&exposition, name, &[("shard", &owner_label)]).unwrap_or_default();
        assert!(value > 0.0, "{name}: {value}\n{exposition}");
    }

    // GET /placement: the same, as JSON.
    let (status, body) = get(&broker, "/placement");
    assert!(status.contains("200"), "{status}");
    let document: Value = serde_json::from_str(&body).expect("a JSON document");
    assert!(document["revision"].as_u64().unwrap() > 0, "{document}");
    assert!(document["uptime_ns"].as_u64().unwrap() > 0, "{document}");
    assert_eq!(
        document["shards"].as_array().unwrap().len(),
        2,
        "{document}"
    );
    assert_eq!(partition_row(&document, HOT)["shard"], owner, "{document}");
    let (status, _) = get(&broker, "/nowhere");
    assert!(status.contains("404"), "{status}");

    // The CLI, as JSON: rates over 0.2 s beside the cumulative counters.
    let (code, stdout, stderr) = corelog(&[
        "placement",
        "show",
        "--format",
        "json",
        "--interval",
        "0.2",
        "--top",
        "0",
        "--endpoint",
        &endpoint,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let shown: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let row = partition_row(&shown, HOT);
    assert_eq!(row["shard"], owner, "the shard table's owner: {shown}");
    assert_eq!(row["records_in"], RECORDS as u64, "{shown}");
    assert!(row["bytes_in"].as_u64().unwrap() > 0, "{shown}");
    assert!(row["bytes_out"].as_u64().unwrap() > 0, "{shown}");
    assert!(row["produce_requests"].as_u64().unwrap() > 0, "{shown}");
    assert!(row["fetch_requests"].as_u64().unwrap() > 0, "{shown}");
    assert!(row["busy_ns"].as_u64().unwrap() > 0, "{shown}");
    for partition in (0..PARTITIONS).filter(|p| *p != HOT) {
        assert_eq!(partition_row(&shown, partition)["records_in"], 0, "{shown}");
    }
    let shard = shown["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["shard"] == owner)
        .unwrap_or_else(|| panic!("shard {owner} in {shown}"));
    assert!(shard["busy_ns"].as_u64().unwrap() > 0, "{shown}");
    assert!(shard["cpu_ns"].as_u64().unwrap() > 0, "{shown}");
    assert!(shown["interval_s"].as_f64().unwrap() > 0.0, "{shown}");

    // As a table, with the partition among the (default ten) hottest.
    let (code, table, stderr) = corelog(&[
        "placement",
        "show",
        "--interval",
        "0.2",
        "--endpoint",
        &endpoint,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        table.lines().any(|l| l.starts_with("SHARD")
            && l.contains("BUSY%")
            && l.contains("MB/s IN")
            && l.contains("HOPS OUT/s")),
        "{table}"
    );
    assert!(table.contains(TOPIC), "{table}");
    let partition_rows: Vec<Vec<&str>> = table
        .lines()
        .skip_while(|l| !(l.starts_with("TOPIC") && l.contains("REC/s IN")))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let owner_text = owner.to_string();
    assert!(
        partition_rows
            .iter()
            .any(|row| row.len() >= 3 && row[..3] == [TOPIC, hot.as_str(), owner_text.as_str()]),
        "{TOPIC}-{HOT} among the hottest partitions, on shard {owner}: {table}"
    );
}

#[test]
fn an_endpoint_that_does_not_answer_is_one_clear_error() {
    let endpoint = format!("127.0.0.1:{}", free_port());
    let (code, stdout, stderr) = corelog(&["placement", "show", "--endpoint", &endpoint]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.starts_with("corelog: "), "{stderr}");
    assert!(
        stderr.contains(&endpoint) && stderr.contains("metrics.listener"),
        "names the endpoint and the setting: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    for args in [
        &["placement", "show", "--interval", "0"][..],
        &["placement", "show", "--endpoint", "nohost"][..],
        &["placement", "show", "--top", "-1"][..],
        &["placement", "frobnicate"][..],
    ] {
        let (code, _, stderr) = corelog(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
}
