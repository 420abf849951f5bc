//! `--shards 2`: partitions are spread over both shards, and one connection — on
//! whichever shard accepted it — produces to and fetches from partitions of both, its
//! requests fanned out to the owners and gathered; a connection whose requests all go
//! to the other shard moves there (`placement.connections.follow`), and a connection just
//! accepted goes to the shard serving fewer (`placement.connections.spread`). Checked
//! through the records and through the metrics endpoint's per-shard counters and
//! partition placement.

mod common;

use bytes::Bytes;
use common::wire::{FETCH_VERSION, PRODUCE_VERSION, WireClient, batch_of, produce_request};
use common::{Broker, metric};
use corelog::protocol::codec::Records;
use corelog::protocol::generated::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use corelog::protocol::generated::{ApiKey, ResponseBody};
use corelog::protocol::records::{Compression, batches};
use std::collections::BTreeMap;

const PARTITIONS: i32 = 6;

fn start_broker() -> Broker {
    start_broker_with(&[])
}

/// A broker on 2 shards, 6 partitions a topic, and these settings too.
fn start_broker_with(settings: &[&str]) -> Broker {
    let mut args = vec!["--shards", "2", "--set", "num.partitions=6"];
    args.extend_from_slice(settings);
    Broker::start_with(&args)
}

/// Request `r`'s five records for partition `p` (key, value), and their batch.
fn five_records(p: i32, r: usize, codec: Compression) -> (Vec<(String, String)>, Bytes) {
    let records: Vec<(String, String)> = (0..5)
        .map(|i| (format!("k{p}-{r}-{i}"), format!("value {p} {r} {i}")))
        .collect();
    let pairs: Vec<(&[u8], &[u8])> = records
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    let batch = batch_of(&pairs, codec);
    (records, batch)
}

/// The records (key, value) of a fetched partition, each batch checked and each record
/// at the offset that follows the one before.
fn records_of(bytes: &Bytes) -> Vec<(String, String)> {
    let mut got = Vec::new();
    append_records_of(bytes, &mut got);
    got
}

/// Appends the records of fetched `bytes` to `got`, each at offset `got.len()`.
fn append_records_of(bytes: &Bytes, got: &mut Vec<(String, String)>) {
    let text = |b: Option<Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
    for batch in batches(bytes.clone()) {
        let batch = batch.unwrap();
        batch.validate().unwrap();
        for record in batch.records().unwrap() {
            let record = record.unwrap();
            assert_eq!(batch.offset_of(&record), got.len() as i64);
            got.push((text(record.key), text(record.value)));
        }
    }
}

/// The shard of each partition of `topic`, from the metrics endpoint.
fn placement(exposition: &str, topic: &str, partitions: i32) -> Vec<i64> {
    (0..partitions)
        .map(|p| {
            let p = p.to_string();
            metric(
                exposition,
                "corelog_partition_shard",
                &[("topic", topic), ("partition", &p)],
            )
            .unwrap_or_else(|| panic!("placement of {topic}-{p} in:\n{exposition}"))
                as i64
        })
        .collect()
}

/// A per-shard counter.
fn counter(exposition: &str, name: &str, shard: i64) -> f64 {
    metric(exposition, name, &[("shard", &shard.to_string())])
        .unwrap_or_else(|| panic!("{name} of shard {shard} in:\n{exposition}"))
}

fn create_by_metadata(client: &mut WireClient, topic: &str) {
    let created = client.create_by_metadata(topic);
    assert_eq!(created.partitions.len(), PARTITIONS as usize);
}

/// One fetch of every partition of `topic` from offset 0.
fn fetch_every_partition(topic: &str) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 64 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: (0..PARTITIONS)
                .map(|partition| FetchPartition {
                    partition,
                    current_leader_epoch: -1,
                    fetch_offset: 0,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 16 << 20,
                    ..FetchPartition::default()
                })
                .collect(),
            ..FetchTopic::default()
        }],
        ..FetchRequest::default()
    }
}

#[test]
fn one_connection_produces_to_and_fetches_from_partitions_of_both_shards() {
    let broker = start_broker();
    let topic = "split";
    let mut client = WireClient::connect(&broker.bootstrap());
    create_by_metadata(&mut client, topic);

    // The first topic's partitions alternate over the two shards: 0, 1, 0, 1, ...
    let before = broker.scrape();
    let shards = placement(&before, topic, PARTITIONS);
    assert_eq!(shards, vec![0, 1, 0, 1, 0, 1], "placement of {topic}");
    // Our connection is the only Kafka connection: it sits on one of the shards.
    let connections = serving(&before);
    assert_eq!(connections.iter().sum::<f64>(), 1.0, "{connections:?}");

    // 20 produce requests, each with one batch of 5 records for every partition, with
    // each codec in turn, at acks=all then acks=1.
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let requests = 20;
    let mut sent: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
    for r in 0..requests {
        let mut partitions = Vec::new();
        for p in 0..PARTITIONS {
            let (records, batch) = five_records(p, r, codecs[r % codecs.len()]);
            partitions.push((p, batch));
            sent.entry(p).or_default().extend(records);
        }
        let acks = if r % 2 == 0 { -1 } else { 1 };
        let response = client.produce(&produce_request(topic, acks, partitions));
        let answers = &response.responses[0].partition_responses;
        assert_eq!(answers.len(), PARTITIONS as usize);
        for (p, answer) in answers.iter().enumerate() {
            assert_eq!(answer.index, p as i32, "answers in request order");
            assert_eq!(answer.error_code, 0, "{answer:?}");
            assert_eq!(answer.base_offset, 5 * r as i64, "{topic}-{p}, request {r}");
        }
    }

    // One fetch of all six partitions on the same connection: every record is back.
    let ResponseBody::Fetch(fetched) =
        client.request(ApiKey::Fetch, FETCH_VERSION, &fetch_every_partition(topic))
    else {
        panic!("not a fetch response");
    };
    let partitions = &fetched.responses[0].partitions;
    assert_eq!(partitions.len(), PARTITIONS as usize);
    for data in partitions {
        let p = data.partition_index;
        assert_eq!(data.error_code, 0);
        assert_eq!(data.high_watermark, 5 * requests as i64);
        let Some(Records::Bytes(bytes)) = &data.records else {
            panic!("records of {topic}-{p}");
        };
        let got = records_of(bytes);
        assert_eq!(got, sent[&p], "{topic}-{p} holds what was sent, in order");
    }

    // Both shards appended (three partitions' batches each), and the connection's shard
    // forwarded the other shard's share over the mesh.
    let after = broker.scrape();
    let home = if connections[0] == 1.0 { 0 } else { 1 };
    let other = 1 - home;
    for shard in [0, 1] {
        let batches = counter(&after, "corelog_produce_batches_total", shard)
            - counter(&before, "corelog_produce_batches_total", shard);
        assert_eq!(
            batches,
            (3 * requests) as f64,
            "shard {shard} appended its three partitions' batches"
        );
        assert!(
            counter(&after, "corelog_produce_bytes_total", shard)
                > counter(&before, "corelog_produce_bytes_total", shard),
            "shard {shard}'s produce bytes moved"
        );
    }
    let forwarded = counter(&after, "corelog_mesh_calls_sent_total", home)
        - counter(&before, "corelog_mesh_calls_sent_total", home);
    let received = counter(&after, "corelog_mesh_calls_received_total", other)
        - counter(&before, "corelog_mesh_calls_received_total", other);
    assert!(
        forwarded >= requests as f64,
        "shard {home} forwarded each produce: {forwarded}"
    );
    assert!(
        received >= requests as f64,
        "shard {other} served them: {received}"
    );
    let requests_seen = counter(&after, "corelog_requests_total", home)
        - counter(&before, "corelog_requests_total", home);
    assert!(requests_seen >= (requests + 1) as f64);
    assert!(counter(&after, "corelog_fetch_bytes_total", home) > 0.0);
}

#[test]
fn partitions_of_many_topics_stay_balanced_over_shards() {
    let broker = start_broker();
    let mut client = WireClient::connect(&broker.bootstrap());
    let topics = [("a", 6), ("b", 6), ("c", 6), ("d", 6)];
    for (topic, _) in topics {
        create_by_metadata(&mut client, topic);
    }
    let exposition = broker.scrape();
    let mut per_shard = [0i64; 2];
    for (topic, partitions) in topics {
        let shards = placement(&exposition, topic, partitions);
        for shard in &shards {
            per_shard[*shard as usize] += 1;
        }
        assert!(
            shards.contains(&0) && shards.contains(&1),
            "{topic} spreads over both shards: {shards:?}"
        );
    }
    assert_eq!(per_shard, [12, 12]);
    for shard in 0..2 {
        assert_eq!(counter(&exposition, "corelog_partitions", shard), 12.0);
    }
}

/// Sends `requests` produce requests of 5 records for `partition` of `topic` back to
/// back on `client` (pipelined), numbered from `first`, then reads their answers: each
/// in request order, at the offsets that order gives. Returns the records sent.
fn pipeline_produces(
    client: &mut WireClient,
    topic: &str,
    partition: i32,
    first: usize,
    requests: usize,
) -> Vec<(String, String)> {
    let mut sent = Vec::new();
    let mut correlation_ids = Vec::new();
    for r in first..first + requests {
        let (records, batch) = five_records(partition, r, Compression::None);
        let request = produce_request(topic, 1, vec![(partition, batch)]);
        correlation_ids.push(client.send(ApiKey::Produce, PRODUCE_VERSION, &request));
        sent.extend(records);
    }
    for (r, correlation_id) in (first..).zip(correlation_ids) {
        let ResponseBody::Produce(response) =
            client.receive(ApiKey::Produce, PRODUCE_VERSION, correlation_id)
        else {
            panic!("not a produce response");
        };
        let answer = &response.responses[0].partition_responses[0];
        assert_eq!(answer.error_code, 0, "{answer:?}");
        assert_eq!(answer.base_offset, 5 * r as i64, "request {r}");
    }
    sent
}

/// Every record of `partition` of `topic` up to its high watermark, read with as many
/// 16 MiB fetches on `client` as that takes.
fn fetch_partition(client: &mut WireClient, topic: &str, partition: i32) -> Vec<(String, String)> {
    let mut got = Vec::new();
    loop {
        let request = common::wire::fetch_request(topic, partition, got.len() as i64, 16 << 20);
        let ResponseBody::Fetch(fetched) = client.request(ApiKey::Fetch, FETCH_VERSION, &request)
        else {
            panic!("not a fetch response");
        };
        let data = &fetched.responses[0].partitions[0];
        assert_eq!(data.error_code, 0);
        if got.len() as i64 == data.high_watermark {
            return got;
        }
        let Some(Records::Bytes(bytes)) = &data.records else {
            panic!("records of {topic}-{partition} from offset {}", got.len());
        };
        let before = got.len();
        append_records_of(bytes, &mut got);
        assert!(
            got.len() > before,
            "a fetch of {topic}-{partition} from offset {before} below the high watermark {} returned no record",
            data.high_watermark
        );
    }
}

/// Produces to a partition of the shard that did not accept the connection, in bursts of
/// pipelined requests, until `enough(metrics, that shard)` holds after a burst (at most
/// 60 s), then reads it back on the same connection; returns the shard that accepted
/// the connection, the shard that owns the partition, and the metrics after.
fn produce_to_the_other_shard(
    broker: &Broker,
    topic: &str,
    enough: impl Fn(&str, i64) -> bool,
) -> (i64, i64, String) {
    let mut client = WireClient::connect(&broker.bootstrap());
    create_by_metadata(&mut client, topic);
    let before = broker.scrape();
    let home = (0..2)
        .find(|s| counter(&before, "corelog_connections", *s) == 1.0)
        .expect("our connection is on a shard");
    let other = 1 - home;
    let partition = placement(&before, topic, PARTITIONS)
        .iter()
        .position(|s| *s == other)
        .expect("a partition on the other shard") as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut sent = Vec::new();
    let mut requests = 0;
    loop {
        sent.extend(pipeline_produces(
            &mut client,
            topic,
            partition,
            requests,
            8,
        ));
        requests += 8;
        if enough(&broker.scrape(), other) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{requests} requests: {}",
            broker.scrape()
        );
    }
    assert_eq!(
        fetch_partition(&mut client, topic, partition),
        sent,
        "{topic}-{partition} holds what was sent, in order"
    );
    (home, other, broker.scrape())
}

#[test]
fn a_connection_whose_requests_all_go_to_the_other_shard_moves_there() {
    let broker = start_broker();
    // Until the connection has moved, in the middle of some burst: requests after the
    // one that decided it wait in the socket and in the bytes handed over.
    let (home, other, after) = produce_to_the_other_shard(&broker, "follow", |m, other| {
        counter(m, "corelog_connections_moved_in_total", other) == 1.0
    });
    assert_eq!(
        counter(&after, "corelog_connections", other),
        1.0,
        "{after}"
    );
    assert_eq!(counter(&after, "corelog_connections", home), 0.0, "{after}");
    assert!(
        broker
            .logs()
            .contains(&format!("to shard {other}, which owns its partitions")),
        "the move is logged"
    );

    // Without placement.connections.follow the connection stays where it was accepted,
    // through three times the patience that would have moved it.
    let broker = start_broker_with(&["--set", "placement.connections.follow=false"]);
    let started = std::time::Instant::now();
    let (home, other, after) = produce_to_the_other_shard(&broker, "stay", |_, _| {
        started.elapsed() > 3 * corelog::handlers::FOLLOW_PATIENCE
    });
    assert_eq!(counter(&after, "corelog_connections", home), 1.0, "{after}");
    assert_eq!(
        counter(&after, "corelog_connections_moved_in_total", other),
        0.0,
        "{after}"
    );
}

/// Connections each shard serves, from the metrics endpoint's `exposition`.
fn serving(exposition: &str) -> [f64; 2] {
    [0, 1].map(|s| counter(exposition, "corelog_connections", s))
}

/// Connections spread at accept, both shards together.
fn spread_in(exposition: &str) -> f64 {
    [0, 1]
        .map(|s| counter(exposition, "corelog_connections_spread_in_total", s))
        .iter()
        .sum()
}

/// Opens a connection and has one request answered on it; returns it with the shard that
/// serves it (the one whose count rose: no other connection opens or closes meanwhile).
fn open_connection(broker: &Broker) -> (WireClient, usize) {
    let before = serving(&broker.scrape());
    let mut client = WireClient::connect(&broker.bootstrap());
    client.create_by_metadata("spread");
    let after = serving(&broker.scrape());
    let shard = (0..2)
        .find(|&s| after[s] == before[s] + 1.0)
        .unwrap_or_else(|| panic!("one shard serves one more connection: {before:?} → {after:?}"));
    (client, shard)
}

#[test]
fn a_connection_just_accepted_goes_to_the_shard_serving_fewer() {
    let broker = start_broker();
    let settled = |want: [f64; 2]| {
        common::groups::wait_until(std::time::Duration::from_secs(10), || {
            serving(&broker.scrape()) == want
        })
    };
    // The start-up's probe of the port may still be counted for a moment.
    assert!(
        settled([0.0, 0.0]),
        "no connection: {:?}",
        serving(&broker.scrape())
    );
    let mut clients: Vec<(WireClient, usize)> = (0..4).map(|_| open_connection(&broker)).collect();
    assert_eq!(
        serving(&broker.scrape()),
        [2.0, 2.0],
        "four connections spread evenly"
    );

    // The connections of shard 1 close: shard 0 serves two, shard 1 none. Two more
    // connections go to shard 1, whichever shard the kernel hands them to.
    clients.retain(|(_, shard)| *shard == 0);
    assert!(
        settled([2.0, 0.0]),
        "shard 1's closed: {:?}",
        serving(&broker.scrape())
    );
    clients.extend((0..2).map(|_| open_connection(&broker)));
    let m = broker.scrape();
    assert_eq!(serving(&m), [2.0, 2.0], "{m}");
    assert_eq!(
        broker
            .logs()
            .matches("which served fewer connections")
            .count() as f64,
        spread_in(&m),
        "each spread is logged and counted"
    );
    // Every connection, moved or not, is served.
    for (client, _) in &mut clients {
        client.create_by_metadata("spread");
    }

    // Without placement.connections.spread nothing moves at accept.
    let broker = start_broker_with(&["--set", "placement.connections.spread=false"]);
    let _clients: Vec<(WireClient, usize)> = (0..6).map(|_| open_connection(&broker)).collect();
    let m = broker.scrape();
    assert_eq!(serving(&m).iter().sum::<f64>(), 6.0, "{m}");
    assert_eq!(spread_in(&m), 0.0, "{m}");
    assert!(!broker.logs().contains("which served fewer connections"));
}
