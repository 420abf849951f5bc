//! Protocol codec micro-benchmarks, each beside the `kafka-protocol` crate on the same
//! input in the same run:
//!
//! - decoding a Produce request (v9, header v2) carrying 1 MiB of record data;
//! - encoding a Fetch response (v16, header v1) for 100 partitions with the record data
//!   left out: spliced in later by sendfile for corelog, absent for kafka-protocol;
//! - validating a produced batch (1,000 records of 100 bytes, uncompressed and lz4):
//!   the header and CRC checks alone beside Kafka's per-record checks (every record
//!   parsed, decompressed first when compressed), which Produce runs on every batch.
//!
//! `cargo bench -p corelog-bench --bench protocol`

use bytes::{BufMut, Bytes, BytesMut};
use corelog::protocol::codec::{Encodable, Records};
use corelog::protocol::frame::{decode_request, encode_request, encode_response};
use corelog::protocol::generated::ApiKey;
use corelog::protocol::generated::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use corelog::protocol::generated::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use corelog::protocol::generated::request_header::RequestHeader;
use corelog::protocol::wire::Uuid;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{Decodable as _, Encodable as _};
use std::hint::black_box;

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 16;
const RECORDS_LEN: usize = 1 << 20;
const TOPICS: usize = 4;
const PARTITIONS_PER_TOPIC: usize = 25;

/// A Produce request frame (without the size prefix): one topic, 4 partitions of
/// 256 KiB each, as a client batching 1 MiB would send it.
fn produce_frame() -> Bytes {
    let batch = Bytes::from(vec![0xabu8; RECORDS_LEN / 4]);
    let body = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "bench-topic".into(),
            partition_data: (0..4)
                .map(|index| PartitionProduceData {
                    index,
                    records: Some(Records::Bytes(batch.clone())),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let header = RequestHeader {
        request_api_key: ApiKey::Produce.key(),
        request_api_version: PRODUCE_VERSION,
        correlation_id: 7,
        client_id: Some("bench-producer".into()),
        ..Default::default()
    };
    encode_request(&header, &body)
        .unwrap()
        .into_bytes()
        .slice(4..)
}

fn bench_produce_decode(c: &mut Criterion) {
    let frame = produce_frame();
    let mut group = c.benchmark_group("decode produce request, 1 MiB records");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("corelog", |b| {
        b.iter(|| black_box(decode_request(black_box(frame.clone())).unwrap()))
    });
    group.bench_function("kafka-protocol", |b| {
        b.iter(|| {
            let mut buf = black_box(frame.clone());
            let header = kp::RequestHeader::decode(&mut buf, 2).unwrap();
            let body = kp::ProduceRequest::decode(&mut buf, PRODUCE_VERSION).unwrap();
            black_box((header, body))
        })
    });
    group.finish();
}

fn topic_id(t: usize) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[0] = 1;
    id[15] = t as u8;
    id
}

fn corelog_fetch_response() -> FetchResponse {
    FetchResponse {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 12345,
        responses: (0..TOPICS)
            .map(|t| FetchableTopicResponse {
                topic_id: Uuid(topic_id(t)),
                partitions: (0..PARTITIONS_PER_TOPIC)
                    .map(|p| PartitionData {
                        partition_index: p as i32,
                        error_code: 0,
                        high_watermark: 1_000_000 + p as i64,
                        last_stable_offset: 1_000_000 + p as i64,
                        log_start_offset: 0,
                        aborted_transactions: None,
                        preferred_read_replica: -1,
                        records: Some(Records::Spliced {
                            len: 16 * 1024,
                            id: (t * PARTITIONS_PER_TOPIC + p) as u32,
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn kp_fetch_response() -> kp::FetchResponse {
    kp::FetchResponse::default()
        .with_session_id(12345)
        .with_responses(
            (0..TOPICS)
                .map(|_| {
                    kp::fetch_response::FetchableTopicResponse::default()
                        // Left zero: uuids encode as 16 bytes whatever their value.
                        .with_partitions(
                            (0..PARTITIONS_PER_TOPIC)
                                .map(|p| {
                                    kp::fetch_response::PartitionData::default()
                                        .with_partition_index(p as i32)
                                        .with_high_watermark(1_000_000 + p as i64)
                                        .with_last_stable_offset(1_000_000 + p as i64)
                                        .with_log_start_offset(0)
                                        .with_aborted_transactions(None)
                                        .with_preferred_read_replica(kp::BrokerId(-1))
                                        .with_records(None)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn bench_fetch_encode(c: &mut Criterion) {
    let ours = corelog_fetch_response();
    let theirs = kp_fetch_response();
    let mut group = c.benchmark_group("encode fetch response, 100 partitions");
    group.throughput(Throughput::Elements((TOPICS * PARTITIONS_PER_TOPIC) as u64));
    group.bench_function("corelog", |b| {
        b.iter(|| {
            black_box(encode_response(7, ApiKey::Fetch, FETCH_VERSION, black_box(&ours)).unwrap())
        })
    });
    group.bench_function("kafka-protocol", |b| {
        b.iter(|| {
            let header = kp::ResponseHeader::default().with_correlation_id(7);
            let body = black_box(&theirs);
            let size = header.compute_size(1).unwrap() + body.compute_size(FETCH_VERSION).unwrap();
            let mut buf = BytesMut::with_capacity(4 + size);
            buf.put_i32(size as i32);
            header.encode(&mut buf, 1).unwrap();
            body.encode(&mut buf, FETCH_VERSION).unwrap();
            black_box(buf)
        })
    });
    group.finish();
    // Same input, comparable output: the header bytes must agree apart from record data.
    let ours_len = ours.encoded_len(FETCH_VERSION).unwrap();
    assert!(ours_len > 100 * 16 * 1024);
}

fn bench_batch_validation(c: &mut Criterion) {
    use corelog::protocol::records::{BatchBuilder, Compression, RecordBatch};
    let mut group = c.benchmark_group("produce_validation");
    for codec in [Compression::None, Compression::Lz4] {
        let mut builder = BatchBuilder::new(codec);
        for i in 0..1000u32 {
            let key = i.to_be_bytes();
            builder.push(
                1_700_000_000_000 + i64::from(i),
                Some(&key),
                Some(&[7u8; 100]),
                &[],
            );
        }
        let batch = RecordBatch::parse(builder.build(0)).unwrap();
        group.throughput(Throughput::Bytes(batch.size() as u64));
        group.bench_function(format!("{codec:?}/header_and_crc"), |b| {
            b.iter(|| black_box(&batch).validate().unwrap())
        });
        group.bench_function(format!("{codec:?}/every_record"), |b| {
            b.iter(|| {
                black_box(&batch)
                    .walk_records(|_, record| {
                        black_box(record);
                        Ok(())
                    })
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_produce_decode,
    bench_fetch_encode,
    bench_batch_validation
);
criterion_main!(benches);
