//! Hostile input over real sockets: truncated frames, size prefixes that lie, huge
//! array counts, unknown API keys and versions, oversized frames and corrupt batches.
//! Each gets Kafka's answer or a closed connection — never a crash — while a
//! well-behaved librdkafka client on other connections keeps producing and consuming
//! byte-equal records the whole time.

mod common;

use bytes::Bytes;
use common::Broker;
use common::kafka::{
    TestRecord, base_timestamp, consume, consumer, producer, send_all, test_record,
};
use common::wire::{
    Outcome, PRODUCE_VERSION, WireClient, batch_of, fetch_request, produce_request,
};
use corelog::protocol::ErrorCode;
use corelog::protocol::codec::Records;
use corelog::protocol::generated::api_versions_request::ApiVersionsRequest;
use corelog::protocol::generated::metadata_request::{MetadataRequest, MetadataRequestTopic};
use corelog::protocol::generated::{ApiKey, ResponseBody};
use corelog::protocol::records::Compression;
use rdkafka::Offset;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// `socket.request.max.bytes` for these tests: small, so an oversized frame is cheap.
const MAX_REQUEST: usize = 256 * 1024;
/// How long to wait for the broker to close a connection or to stay silent.
const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(700);

fn api_versions(client: &mut WireClient, version: i16) -> ResponseBody {
    client.request(
        ApiKey::ApiVersions,
        version,
        &ApiVersionsRequest {
            client_software_name: "hostile-test".into(),
            client_software_version: "1".into(),
            ..ApiVersionsRequest::default()
        },
    )
}

/// The broker still serves new connections normally.
fn assert_serving(broker: &mut Broker, case: &str) {
    assert!(broker.is_running(), "{case}: the broker process died");
    let mut client = WireClient::connect(&broker.bootstrap());
    match api_versions(&mut client, 3) {
        ResponseBody::ApiVersions(r) => assert_eq!(r.error_code, 0, "{case}"),
        other => panic!("{case}: {:?}", other.api_key()),
    }
}

/// A well-behaved librdkafka client on its own connections: rounds of 300 records
/// produced with acks=1 to one partition, then read back with assign and compared byte
/// for byte, until told to stop. Returns the number of rounds.
fn steady_client(
    broker: &Broker,
    stop: Arc<AtomicBool>,
    rounds_done: Arc<AtomicUsize>,
) -> JoinHandle<usize> {
    let producer = producer(
        broker,
        &[
            ("acks", "1"),
            ("compression.codec", "lz4"),
            ("message.max.bytes", "100000"),
        ],
    );
    let consumer = consumer(broker);
    std::thread::spawn(move || {
        let topic = "steady";
        let mut rounds = 0;
        let timestamp = base_timestamp();
        while !stop.load(Ordering::Acquire) || rounds < 3 {
            let partition = rounds as i32 % 6;
            let records: Vec<TestRecord> = (0..300)
                .map(|i| test_record(topic, rounds * 1000 + i, timestamp + i as i64))
                .collect();
            let deliveries = send_all(&producer, topic, Some(partition), &records);
            for d in &deliveries {
                assert_eq!(
                    d.error, None,
                    "steady client: round {rounds} delivery failed"
                );
            }
            let start = deliveries[0].offset;
            let end = deliveries.last().unwrap().offset + 1;
            assert_eq!(end - start, 300, "steady client: consecutive offsets");
            let read = consume(
                &consumer,
                topic,
                &BTreeMap::from([(partition, Offset::Offset(start))]),
                &BTreeMap::from([(partition, end)]),
            )
            .remove(&partition)
            .unwrap();
            let got: Vec<&TestRecord> = read.iter().map(|c| &c.record).collect();
            let want: Vec<&TestRecord> = records.iter().collect();
            assert!(
                got == want,
                "steady client: round {rounds} read back differs"
            );
            rounds += 1;
            rounds_done.store(rounds, Ordering::Release);
        }
        rounds
    })
}

#[test]
fn hostile_input_gets_kafkas_answer_or_a_closed_connection_and_never_disturbs_others() {
    let mut broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        "num.partitions=6",
        "--set",
        &format!("socket.request.max.bytes={MAX_REQUEST}"),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let rounds_done = Arc::new(AtomicUsize::new(0));
    let steady = steady_client(&broker, stop.clone(), rounds_done.clone());
    while rounds_done.load(Ordering::Acquire) == 0 {
        assert!(
            !steady.is_finished(),
            "the well-behaved client failed before the cases"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let rss_before = broker.rss_kib();

    type Case = fn(&Broker);
    let cases: [(&str, Case); 15] = [
        ("truncated frame, then close", truncated_frame_then_close),
        ("zero-length and negative sizes", zero_and_negative_sizes),
        ("size prefix too long", size_prefix_too_long),
        ("size prefix too short", size_prefix_too_short),
        ("huge array counts", huge_array_counts),
        ("unknown API key", unknown_api_key),
        (
            "ApiVersions at an unknown version",
            api_versions_at_unknown_version,
        ),
        (
            "other APIs at unsupported versions",
            other_apis_at_unsupported_versions,
        ),
        ("oversized frame", oversized_frame),
        ("corrupt CRC", corrupt_crc),
        ("corrupt CRC with acks=0", corrupt_crc_with_acks_0),
        ("garbage body", garbage_body),
        ("byte-by-byte request", byte_by_byte_request),
        ("pipelined requests", pipelined_requests),
        (
            "large and small requests pipelined in odd pieces",
            large_and_small_requests_in_odd_pieces,
        ),
    ];
    for (name, case) in cases {
        case(&broker);
        assert_serving(&mut broker, name);
    }

    let rss_after = broker.rss_kib();
    let rounds_during = rounds_done.load(Ordering::Acquire);
    stop.store(true, Ordering::Release);
    let rounds = steady
        .join()
        .expect("the well-behaved client kept working throughout");
    eprintln!(
        "well-behaved client: {rounds_during} rounds during the hostile cases, {rounds} in all; \
         broker RSS {rss_before} → {rss_after} KiB"
    );
    assert!(
        rounds_during > 1,
        "the well-behaved client completed rounds while the hostile cases ran"
    );
    assert!(broker.is_running(), "the broker is still running");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "hostile counts allocated nothing large: RSS {rss_before} → {rss_after} KiB"
    );
    let logs = broker.logs();
    assert!(!logs.contains("panicked"), "no panic in the broker log");
}

fn truncated_frame_then_close(broker: &Broker) {
    let mut client = WireClient::connect(&broker.bootstrap());
    let frame = client.frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    client.send_raw(&frame[..frame.len() / 2]);
    assert_eq!(
        client.read_outcome(QUIET),
        Outcome::Silent,
        "half a frame is awaited"
    );
    drop(client);
    // Only the size prefix, or part of it.
    for cut in [2, 4] {
        let mut client = WireClient::connect(&broker.bootstrap());
        client.send_raw(&frame[..cut]);
        client.stream.shutdown(std::net::Shutdown::Write).unwrap();
        client.expect_closed(WAIT, "EOF after part of a frame");
    }
}

fn zero_and_negative_sizes(broker: &Broker) {
    for prefix in [0i32, -1, i32::MIN] {
        let mut client = WireClient::connect(&broker.bootstrap());
        client.send_raw(&prefix.to_be_bytes());
        client.send_raw(&[0; 16]);
        client.expect_closed(WAIT, &format!("size prefix {prefix}"));
    }
}

fn size_prefix_too_long(broker: &Broker) {
    let mut client = WireClient::connect(&broker.bootstrap());
    let mut frame = client.frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let size = i32::from_be_bytes(frame[..4].try_into().unwrap()) + 100;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    client.send_raw(&frame);
    assert_eq!(
        client.read_outcome(QUIET),
        Outcome::Silent,
        "a frame whose size promises more bytes is not answered early"
    );
}

fn size_prefix_too_short(broker: &Broker) {
    let mut client = WireClient::connect(&broker.bootstrap());
    let body = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some("some-topic-name".into()),
            ..MetadataRequestTopic::default()
        }]),
        ..MetadataRequest::default()
    };
    let mut frame = client.frame(ApiKey::Metadata, 12, &body);
    let size = i32::from_be_bytes(frame[..4].try_into().unwrap());
    for short in [10, size - 8] {
        let mut f = frame.clone();
        f[..4].copy_from_slice(&short.to_be_bytes());
        let mut c = WireClient::connect(&broker.bootstrap());
        c.send_raw(&f);
        c.expect_closed(WAIT, &format!("size {short} of a {size}-byte request"));
    }
    // The header alone, cut in the client id.
    frame[..4].copy_from_slice(&9i32.to_be_bytes());
    client.send_raw(&frame[..13]);
    client.expect_closed(WAIT, "a frame that ends inside the header");
}

/// Request header bytes (v1, non-flexible or v2, flexible) for raw bodies.
fn raw_header(api_key: ApiKey, version: i16, flexible: bool) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&api_key.key().to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&7i32.to_be_bytes());
    out.extend_from_slice(&4i16.to_be_bytes());
    out.extend_from_slice(b"evil");
    if flexible {
        out.push(0); // no tagged fields
    }
    out
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn huge_array_counts(broker: &Broker) {
    let mut requests: Vec<(&str, Vec<u8>)> = Vec::new();
    // Metadata v1: topics array of i32::MAX entries, none present.
    let mut metadata = raw_header(ApiKey::Metadata, 1, false);
    metadata.extend_from_slice(&i32::MAX.to_be_bytes());
    requests.push(("Metadata v1 topics", metadata));
    // Produce v9 (flexible): compact array counts of u32::MAX.
    let mut produce = raw_header(ApiKey::Produce, 9, true);
    produce.push(0); // transactional id: null
    produce.extend_from_slice(&1i16.to_be_bytes());
    produce.extend_from_slice(&30_000i32.to_be_bytes());
    produce.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    requests.push(("Produce v9 topics", produce));
    // Produce v9: one topic whose partition array claims 2^28 entries.
    let mut nested = raw_header(ApiKey::Produce, 9, true);
    nested.push(0);
    nested.extend_from_slice(&1i16.to_be_bytes());
    nested.extend_from_slice(&30_000i32.to_be_bytes());
    nested.push(2); // one topic
    nested.push(2); // name of 1 byte
    nested.push(b't');
    nested.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x01]);
    requests.push(("Produce v9 partitions", nested));
    // CreateTopics v5: a record-set-sized string length and a huge config count.
    let mut create = raw_header(ApiKey::CreateTopics, 5, true);
    create.push(2); // one topic
    create.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f]); // name length 2^28-ish
    requests.push(("CreateTopics v5 name length", create));
    // Fetch v12: a huge topics count.
    let mut fetch = raw_header(ApiKey::Fetch, 12, true);
    fetch.extend_from_slice(&(-1i32).to_be_bytes());
    fetch.extend_from_slice(&500i32.to_be_bytes());
    fetch.extend_from_slice(&1i32.to_be_bytes());
    fetch.extend_from_slice(&(1i32 << 20).to_be_bytes());
    fetch.push(0);
    fetch.extend_from_slice(&0i32.to_be_bytes());
    fetch.extend_from_slice(&(-1i32).to_be_bytes());
    fetch.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
    requests.push(("Fetch v12 topics", fetch));

    for (name, payload) in requests {
        let mut client = WireClient::connect(&broker.bootstrap());
        client.send_raw(&framed(&payload));
        client.expect_closed(WAIT, name);
    }
}

fn unknown_api_key(broker: &Broker) {
    for key in [9999i16, -1, 200] {
        let mut client = WireClient::connect(&broker.bootstrap());
        let mut payload = Vec::new();
        payload.extend_from_slice(&key.to_be_bytes());
        payload.extend_from_slice(&0i16.to_be_bytes());
        payload.extend_from_slice(&1i32.to_be_bytes());
        payload.extend_from_slice(&(-1i16).to_be_bytes());
        client.send_raw(&framed(&payload));
        client.expect_closed(WAIT, &format!("API key {key}"));
    }
}

fn api_versions_at_unknown_version(broker: &Broker) {
    let mut client = WireClient::connect(&broker.bootstrap());
    // What a client from the future sends: a v99 header is not decodable, so the
    // broker answers in v0 with UNSUPPORTED_VERSION and what it does support.
    let mut payload = Vec::new();
    payload.extend_from_slice(&ApiKey::ApiVersions.key().to_be_bytes());
    payload.extend_from_slice(&99i16.to_be_bytes());
    payload.extend_from_slice(&4242i32.to_be_bytes());
    payload.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]);
    client.send_raw(&framed(&payload));
    let ResponseBody::ApiVersions(fallback) = client.receive(ApiKey::ApiVersions, 0, 4242) else {
        panic!("not an ApiVersions response");
    };
    assert_eq!(fallback.error_code, ErrorCode::UnsupportedVersion.code());
    let keys: Vec<i16> = fallback.api_keys.iter().map(|k| k.api_key).collect();
    for api in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::Metadata,
        ApiKey::ApiVersions,
    ] {
        assert!(
            keys.contains(&api.key()),
            "{api:?} in the fallback list {keys:?}"
        );
    }
    let served = fallback
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions.key())
        .unwrap();
    assert_eq!(served.min_version, 0);
    assert!(served.max_version >= 3);
    // The client retries with a version the list offers, on the same connection.
    match api_versions(&mut client, served.max_version) {
        ResponseBody::ApiVersions(r) => {
            assert_eq!(r.error_code, 0);
            assert_eq!(r.api_keys, fallback.api_keys);
        }
        other => panic!("{:?}", other.api_key()),
    }
}

fn other_apis_at_unsupported_versions(broker: &Broker) {
    for (api, version) in [
        (ApiKey::Metadata, 99i16),
        (ApiKey::Produce, 2), // below Kafka 4's minimum
        (ApiKey::Fetch, 3),
        (ApiKey::Fetch, i16::MAX),
    ] {
        let mut client = WireClient::connect(&broker.bootstrap());
        let mut payload = raw_header(api, version, false);
        payload.extend_from_slice(&[0; 32]);
        client.send_raw(&framed(&payload));
        client.expect_closed(WAIT, &format!("{api:?} v{version}"));
    }
}

fn oversized_frame(broker: &Broker) {
    for size in [MAX_REQUEST + 1, 64 << 20, i32::MAX as usize] {
        let mut client = WireClient::connect(&broker.bootstrap());
        let mut start = (size as i32).to_be_bytes().to_vec();
        start.extend_from_slice(&raw_header(ApiKey::Produce, 9, true));
        client.send_raw(&start);
        // Closed as soon as the prefix is read, without waiting for the body.
        client.expect_closed(WAIT, &format!("frame of {size} bytes"));
    }
    // Just at the limit is read whole (and then refused as malformed, not as large).
    let mut client = WireClient::connect(&broker.bootstrap());
    let mut payload = raw_header(ApiKey::Metadata, 1, false);
    payload.extend_from_slice(&0i32.to_be_bytes());
    payload.resize(MAX_REQUEST, 0);
    let correlation = 7;
    client.send_raw(&framed(&payload));
    match client.read_outcome(WAIT) {
        Outcome::Frame(frame) => {
            let (header, _) = corelog::protocol::frame::decode_response(ApiKey::Metadata, 1, frame)
                .expect("a Metadata v1 response");
            assert_eq!(header.correlation_id, correlation);
        }
        other => panic!("a frame of exactly socket.request.max.bytes is served: {other:?}"),
    }
}

/// One valid batch and one whose CRC no longer matches (a byte of a value flipped).
fn good_and_corrupt_batches() -> (Bytes, Bytes) {
    let good = batch_of(&[(b"k1", b"good value")], Compression::None);
    let mut corrupt = batch_of(&[(b"k2", b"soon to be corrupt")], Compression::None).to_vec();
    let last = corrupt.len() - 3;
    corrupt[last] ^= 0x55;
    (good, Bytes::from(corrupt))
}

fn corrupt_crc(broker: &Broker) {
    let topic = "hostile-crc";
    let (good, corrupt) = good_and_corrupt_batches();
    let mut client = WireClient::connect(&broker.bootstrap());
    // Create the topic (auto-creation through Metadata).
    client.create_by_metadata(topic);
    let response = client.produce(&produce_request(
        topic,
        1,
        vec![(0, corrupt.clone()), (1, good.clone())],
    ));
    let partitions = &response.responses[0].partition_responses;
    assert_eq!(partitions.len(), 2);
    let p0 = partitions.iter().find(|p| p.index == 0).unwrap();
    let p1 = partitions.iter().find(|p| p.index == 1).unwrap();
    assert_eq!(p0.error_code, ErrorCode::CorruptMessage.code(), "{p0:?}");
    assert_eq!(p1.error_code, 0, "{p1:?}");
    assert_eq!(p1.base_offset, 0);

    // The connection stays usable: nothing of the corrupt batch is stored, the good
    // one is, and a second produce works.
    for (partition, want) in [(0, 0), (1, 1)] {
        let fetched = client.fetch_all(topic, partition, 0);
        assert_eq!(fetched.len(), want, "{topic}-{partition}");
    }
    let again = client.produce(&produce_request(topic, -1, vec![(0, good)]));
    let p0 = &again.responses[0].partition_responses[0];
    assert_eq!((p0.error_code, p0.base_offset), (0, 0));
    let response = client.fetch(&fetch_request(topic, 0, 0, 1 << 20));
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.high_watermark, 1);
    assert!(matches!(&data.records, Some(Records::Bytes(b)) if !b.is_empty()));
}

fn corrupt_crc_with_acks_0(broker: &Broker) {
    // acks=0 has no response to carry the error: Kafka closes the connection.
    let (_, corrupt) = good_and_corrupt_batches();
    let mut client = WireClient::connect(&broker.bootstrap());
    client.send(
        ApiKey::Produce,
        PRODUCE_VERSION,
        &produce_request("hostile-crc", 0, vec![(2, corrupt)]),
    );
    client.expect_closed(WAIT, "acks=0 produce of a corrupt batch");
}

fn garbage_body(broker: &Broker) {
    // A valid header and then pseudo-random bytes: lengths that run past the frame,
    // varints that never end, tagged fields with huge tags, counts that lie.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for (api, version) in [
        (ApiKey::ApiVersions, 3i16),
        (ApiKey::Metadata, 12),
        (ApiKey::Produce, 9),
        (ApiKey::Fetch, 12),
        (ApiKey::ListOffsets, 7),
        (ApiKey::CreateTopics, 7),
        (ApiKey::DeleteTopics, 6),
    ] {
        for _ in 0..5 {
            let mut payload = raw_header(api, version, true);
            for _ in 0..40 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                payload.push(seed as u8);
            }
            let mut client = WireClient::connect(&broker.bootstrap());
            client.send_raw(&framed(&payload));
            // Some garbage may happen to decode; whatever the broker does, it answers
            // or closes, and stays up (checked after each case).
            let _ = client.read_outcome(Duration::from_secs(2));
        }
    }
}

fn byte_by_byte_request(broker: &Broker) {
    let mut client = WireClient::connect(&broker.bootstrap());
    let frame = client.frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    for byte in &frame {
        client.send_raw(std::slice::from_ref(byte));
        std::thread::sleep(Duration::from_millis(2));
    }
    match client.receive(ApiKey::ApiVersions, 3, 1) {
        ResponseBody::ApiVersions(r) => assert_eq!(r.error_code, 0),
        other => panic!("{:?}", other.api_key()),
    }
}

fn pipelined_requests(broker: &Broker) {
    let mut client = WireClient::connect(&broker.bootstrap());
    let mut all = Vec::new();
    for i in 0..50 {
        let version = [0, 1, 2, 3][i % 4];
        all.extend(client.frame(ApiKey::ApiVersions, version, &ApiVersionsRequest::default()));
    }
    client.send_raw(&all);
    for i in 0..50 {
        let version = [0, 1, 2, 3][i % 4];
        client.receive(ApiKey::ApiVersions, version, i as i32 + 1);
    }
}

/// Produce requests larger than a read chunk (64 KiB), pipelined with small requests and
/// sent in pieces that end anywhere, frames included: after a large frame the connection
/// reads the next size prefix alone and each large frame into a buffer of its own, and
/// every request is still answered, in order, with every record stored.
fn large_and_small_requests_in_odd_pieces(broker: &Broker) {
    let topic = "hostile-large";
    let mut client = WireClient::connect(&broker.bootstrap());
    client.create_by_metadata(topic);
    let value = vec![b'v'; 100_000];
    let large = batch_of(&[(b"k", &value)], Compression::None);
    let produce = produce_request(topic, 1, vec![(0, large)]);
    // Large, small, large, large, small: every transition between the two kinds.
    let large_frame = [true, false, true, true, false];
    let mut all = Vec::new();
    let mut expected = Vec::new();
    for &is_large in &large_frame {
        let (api_key, version) = match is_large {
            true => (ApiKey::Produce, PRODUCE_VERSION),
            false => (ApiKey::ApiVersions, 3),
        };
        let frame = match is_large {
            true => client.frame(api_key, version, &produce),
            false => client.frame(api_key, version, &ApiVersionsRequest::default()),
        };
        expected.push((
            api_key,
            version,
            i32::from_be_bytes(frame[8..12].try_into().unwrap()),
        ));
        all.extend(frame);
    }
    assert!(all.len() > 3 * 100_000, "three frames above a read chunk");
    // 7,919 bytes (a prime) per piece, so pieces end at every kind of place.
    for piece in all.chunks(7_919) {
        client.send_raw(piece);
    }
    let mut next_offset = 0;
    for (api_key, version, correlation_id) in expected {
        match client.receive(api_key, version, correlation_id) {
            ResponseBody::Produce(r) => {
                let p = &r.responses[0].partition_responses[0];
                assert_eq!((p.error_code, p.base_offset), (0, next_offset), "{p:?}");
                next_offset += 1;
            }
            ResponseBody::ApiVersions(r) => assert_eq!(r.error_code, 0),
            other => panic!("{:?}", other.api_key()),
        }
    }
    assert_eq!(next_offset, 3);
    let fetched = client.fetch_all(topic, 0, 0);
    assert_eq!(fetched.len(), 3, "every large record stored");
}
