//! kcat (librdkafka's command-line client) against the real broker: listing metadata,
//! producing keyed records with headers, and consuming from the beginning, from an
//! absolute offset and from an offset relative to the end.

mod common;

use common::{Broker, kcat, kcat_with_input};
use std::collections::BTreeMap;

fn start_broker() -> Broker {
    Broker::start_with(&["--shards", "2", "--set", "num.partitions=6"])
}

/// `count` lines `key-i:value-i`.
fn keyed_lines(count: usize) -> String {
    (0..count).map(|i| format!("key-{i}:value-{i}\n")).collect()
}

/// Parses consumer output formatted as `%p|%o|%k|%s|%h\n`.
fn parse(output: &str) -> Vec<(i32, i64, String, String, String)> {
    output
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.splitn(5, '|').collect();
            assert_eq!(fields.len(), 5, "unexpected kcat line {line:?}");
            (
                fields[0].parse().unwrap(),
                fields[1].parse().unwrap(),
                fields[2].to_string(),
                fields[3].to_string(),
                fields[4].to_string(),
            )
        })
        .collect()
}

const FORMAT: &str = "%p|%o|%k|%s|%h\n";

#[test]
fn kcat_lists_the_broker_and_a_topics_partitions() {
    let broker = start_broker();
    kcat_with_input(&broker, &["-P", "-t", "listed", "-p", "0"], Some("x\n"));
    let listing = kcat(&broker, &["-L"]);
    assert!(
        listing.contains(&format!(
            "broker 1 at 127.0.0.1:{} (controller)",
            broker.port
        )),
        "{listing}"
    );
    assert!(
        listing.contains("topic \"listed\" with 6 partitions:"),
        "{listing}"
    );
    for p in 0..6 {
        assert!(
            listing.contains(&format!("partition {p}, leader 1, replicas: 1, isrs: 1")),
            "partition {p} missing from:\n{listing}"
        );
    }
    // One topic only, by name; an unknown topic with auto-creation is created.
    let one = kcat(&broker, &["-L", "-t", "listed"]);
    assert!(one.contains("1 topics:"), "{one}");
}

#[test]
fn kcat_produces_keyed_records_and_consumes_them_from_the_beginning() {
    let broker = start_broker();
    let count = 1000;
    kcat_with_input(
        &broker,
        &[
            "-P",
            "-t",
            "keyed",
            "-K",
            ":",
            "-H",
            "source=kcat",
            "-z",
            "snappy",
        ],
        Some(&keyed_lines(count)),
    );
    let output = kcat(
        &broker,
        &["-C", "-t", "keyed", "-o", "beginning", "-e", "-f", FORMAT],
    );
    let records = parse(&output);
    assert_eq!(records.len(), count, "every record consumed");

    let mut by_partition: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    let mut partition_of_key: BTreeMap<String, i32> = BTreeMap::new();
    for (partition, offset, key, value, headers) in &records {
        let i: usize = key.strip_prefix("key-").unwrap().parse().unwrap();
        assert_eq!(value, &format!("value-{i}"));
        assert_eq!(headers, "source=kcat");
        by_partition
            .entry(*partition)
            .or_default()
            .push((*offset, i));
        assert!(partition_of_key.insert(key.clone(), *partition).is_none());
    }
    assert!(by_partition.len() > 1, "keys spread over partitions");
    for (partition, entries) in &by_partition {
        let offsets: Vec<i64> = entries.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (0..entries.len() as i64).collect::<Vec<_>>(),
            "partition {partition}: consecutive offsets from 0"
        );
        let indexes: Vec<usize> = entries.iter().map(|(_, i)| *i).collect();
        let mut sorted = indexes.clone();
        sorted.sort_unstable();
        assert_eq!(
            indexes, sorted,
            "partition {partition}: in the order produced"
        );
    }

    // The same key goes to the same partition again.
    kcat_with_input(
        &broker,
        &["-P", "-t", "keyed", "-K", ":"],
        Some("key-7:again\n"),
    );
    let p = partition_of_key["key-7"];
    let end = by_partition[&p].len();
    let again = kcat(
        &broker,
        &[
            "-C",
            "-t",
            "keyed",
            "-p",
            &p.to_string(),
            "-o",
            &end.to_string(),
            "-e",
            "-f",
            FORMAT,
        ],
    );
    assert_eq!(
        parse(&again),
        vec![(p, end as i64, "key-7".into(), "again".into(), String::new())]
    );
}

#[test]
fn kcat_consumes_from_an_absolute_and_a_relative_offset() {
    let broker = start_broker();
    let lines: String = (0..50).map(|i| format!("k{i}:v{i}\n")).collect();
    kcat_with_input(
        &broker,
        &["-P", "-t", "offsets", "-p", "2", "-K", ":"],
        Some(&lines),
    );

    let from_20 = parse(&kcat(
        &broker,
        &[
            "-C", "-t", "offsets", "-p", "2", "-o", "20", "-e", "-f", FORMAT,
        ],
    ));
    assert_eq!(from_20.len(), 30);
    for (n, (partition, offset, key, value, _)) in from_20.iter().enumerate() {
        let i = 20 + n;
        assert_eq!(
            (*partition, *offset, key.as_str(), value.as_str()),
            (
                2,
                i as i64,
                format!("k{i}").as_str(),
                format!("v{i}").as_str()
            )
        );
    }

    // Five before the end, at most three of them.
    let last = parse(&kcat(
        &broker,
        &[
            "-C", "-t", "offsets", "-p", "2", "-o", "-5", "-c", "3", "-e", "-f", FORMAT,
        ],
    ));
    let offsets: Vec<i64> = last.iter().map(|r| r.1).collect();
    assert_eq!(offsets, vec![45, 46, 47]);

    // At the end: nothing, and kcat exits at once with -e.
    let none = kcat(
        &broker,
        &[
            "-C", "-t", "offsets", "-p", "2", "-o", "end", "-e", "-f", FORMAT,
        ],
    );
    assert_eq!(none, "");

    // Another partition of the same topic is empty.
    let empty = kcat(
        &broker,
        &[
            "-C",
            "-t",
            "offsets",
            "-p",
            "3",
            "-o",
            "beginning",
            "-e",
            "-f",
            FORMAT,
        ],
    );
    assert_eq!(empty, "");
}

#[test]
fn kcat_as_a_group_member_consumes_everything_once_and_resumes_at_its_commit() {
    let broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        "num.partitions=6",
        "--set",
        "group.initial.rebalance.delay.ms=0",
    ]);
    kcat_with_input(
        &broker,
        &["-P", "-t", "grouped", "-K:"],
        Some(&keyed_lines(60)),
    );
    // -G: a balanced consumer (JoinGroup/SyncGroup, offsets committed on exit).
    let member = ["-G", "kcat-group", "grouped", "-e", "-q", "-f", FORMAT];
    let first = parse(&kcat(
        &broker,
        &[&member[..], &["-o", "beginning"]].concat(),
    ));
    assert_eq!(first.len(), 60);
    let keys: std::collections::BTreeSet<&str> = first.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(keys.len(), 60, "each record once");

    let more: String = (60..70).map(|i| format!("key-{i}:value-{i}\n")).collect();
    kcat_with_input(&broker, &["-P", "-t", "grouped", "-K:"], Some(&more));
    let second = parse(&kcat(&broker, &member));
    let mut keys: Vec<String> = second.iter().map(|r| r.2.clone()).collect();
    keys.sort();
    let mut expected: Vec<String> = (60..70).map(|i| format!("key-{i}")).collect();
    expected.sort();
    assert_eq!(
        keys, expected,
        "the second run starts at the committed offsets"
    );
}
