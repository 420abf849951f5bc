//! A minimal Kafka client over a plain `std::net::TcpStream`, for tests that need exact
//! control of the bytes (hostile input, one connection touching every shard). Requests
//! are built with corelog's own generated types and `encode_request`; responses are
//! decoded with `decode_response`.

use bytes::Bytes;
use corelog::protocol::codec::{Encodable, Records};
use corelog::protocol::frame::{decode_response, encode_request};
use corelog::protocol::generated::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use corelog::protocol::generated::fetch_response::FetchResponse;
use corelog::protocol::generated::metadata_request::{MetadataRequest, MetadataRequestTopic};
use corelog::protocol::generated::metadata_response::MetadataResponseTopic;
use corelog::protocol::generated::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use corelog::protocol::generated::produce_response::ProduceResponse;
use corelog::protocol::generated::request_header::RequestHeader;
use corelog::protocol::generated::{ApiKey, ResponseBody};
use corelog::protocol::records::{Compression, Record, RecordBatch, RecordHeader, batches};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Produce and Fetch versions the raw client speaks (flexible, by topic name).
pub const PRODUCE_VERSION: i16 = 9;
pub const FETCH_VERSION: i16 = 12;

/// What the broker did with a connection after a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A whole response frame (without its size prefix).
    Frame(Bytes),
    /// The broker closed the connection (EOF or reset).
    Closed,
    /// Nothing arrived before the deadline; the connection is still open.
    Silent,
}

pub struct WireClient {
    pub stream: TcpStream,
    next_correlation_id: i32,
}

impl WireClient {
    pub fn connect(bootstrap: &str) -> WireClient {
        let stream = TcpStream::connect(bootstrap).expect("connect to the broker");
        stream.set_nodelay(true).unwrap();
        WireClient {
            stream,
            next_correlation_id: 1,
        }
    }

    /// A request header for `api_key` at `version` with a fresh correlation id.
    pub fn header(&mut self, api_key: ApiKey, version: i16) -> RequestHeader {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        RequestHeader {
            request_api_key: api_key.key(),
            request_api_version: version,
            correlation_id,
            client_id: Some("corelog-wire-test".into()),
            ..RequestHeader::default()
        }
    }

    /// The frame (size prefix included) of a request.
    pub fn frame(&mut self, api_key: ApiKey, version: i16, body: &impl Encodable) -> Vec<u8> {
        let header = self.header(api_key, version);
        encode_request(&header, body)
            .unwrap_or_else(|e| panic!("encode {api_key:?} v{version}: {e}"))
            .into_bytes()
            .to_vec()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the broker");
    }

    /// Sends a request and returns its correlation id.
    pub fn send(&mut self, api_key: ApiKey, version: i16, body: &impl Encodable) -> i32 {
        let correlation_id = self.next_correlation_id;
        let frame = self.frame(api_key, version, body);
        self.send_raw(&frame);
        correlation_id
    }

    /// Waits up to `timeout` for one response frame, or for the connection to close.
    pub fn read_outcome(&mut self, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        let mut prefix = [0u8; 4];
        match read_exact_until(&mut self.stream, &mut prefix, deadline) {
            ReadResult::Done => {}
            ReadResult::Closed => return Outcome::Closed,
            ReadResult::TimedOut(0) => return Outcome::Silent,
            ReadResult::TimedOut(n) => panic!("a response stalled after {n} bytes of its size"),
        }
        let size = i32::from_be_bytes(prefix);
        assert!(size >= 4, "response frame of size {size}");
        let mut frame = vec![0u8; size as usize];
        // A response that started arrives whole: allow it time to finish.
        match read_exact_until(
            &mut self.stream,
            &mut frame,
            deadline + Duration::from_secs(10),
        ) {
            ReadResult::Done => Outcome::Frame(Bytes::from(frame)),
            ReadResult::Closed => panic!("the connection closed in the middle of a response"),
            ReadResult::TimedOut(n) => panic!("a response of {size} bytes stalled after {n}"),
        }
    }

    /// Reads and decodes the response to a request of `api_key` at `version`, checking
    /// its correlation id.
    pub fn receive(&mut self, api_key: ApiKey, version: i16, correlation_id: i32) -> ResponseBody {
        match self.read_outcome(Duration::from_secs(30)) {
            Outcome::Frame(frame) => {
                let (header, body) = decode_response(api_key, version, frame)
                    .unwrap_or_else(|e| panic!("decode the {api_key:?} v{version} response: {e}"));
                assert_eq!(
                    header.correlation_id, correlation_id,
                    "responses come back in request order"
                );
                body
            }
            other => panic!("expected a {api_key:?} response, got {other:?}"),
        }
    }

    pub fn request(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &impl Encodable,
    ) -> ResponseBody {
        let correlation_id = self.send(api_key, version, body);
        self.receive(api_key, version, correlation_id)
    }

    /// Creates `topic` as a client's first Metadata request does (auto-creation) and
    /// returns its metadata, checked to carry no error.
    pub fn create_by_metadata(&mut self, topic: &str) -> MetadataResponseTopic {
        let request = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(topic.into()),
                ..MetadataRequestTopic::default()
            }]),
            allow_auto_topic_creation: true,
            ..MetadataRequest::default()
        };
        let ResponseBody::Metadata(mut metadata) = self.request(ApiKey::Metadata, 12, &request)
        else {
            panic!("not a metadata response");
        };
        let created = metadata.topics.remove(0);
        assert_eq!(created.error_code, 0, "{topic}: {created:?}");
        created
    }

    /// Asserts that the broker closes the connection within `timeout`, without answering.
    pub fn expect_closed(&mut self, timeout: Duration, case: &str) {
        match self.read_outcome(timeout) {
            Outcome::Closed => {}
            other => panic!("{case}: expected the broker to close the connection, got {other:?}"),
        }
    }

    pub fn produce(&mut self, request: &ProduceRequest) -> ProduceResponse {
        match self.request(ApiKey::Produce, PRODUCE_VERSION, request) {
            ResponseBody::Produce(response) => response,
            other => panic!("expected a produce response, got {:?}", other.api_key()),
        }
    }

    pub fn fetch(&mut self, request: &FetchRequest) -> FetchResponse {
        match self.request(ApiKey::Fetch, FETCH_VERSION, request) {
            ResponseBody::Fetch(response) => response,
            other => panic!("expected a fetch response, got {:?}", other.api_key()),
        }
    }

    /// Every record of `topic`/`partition` from `offset` up to the high watermark, with
    /// absolute offsets and timestamps.
    pub fn fetch_all(&mut self, topic: &str, partition: i32, offset: i64) -> Vec<FetchedRecord> {
        let mut out = Vec::new();
        let mut next = offset;
        loop {
            let response = self.fetch(&fetch_request(topic, partition, next, 1 << 20));
            let data = &response.responses[0].partitions[0];
            assert_eq!(data.error_code, 0, "fetch {topic}-{partition}@{next}");
            let bytes = match &data.records {
                Some(Records::Bytes(bytes)) => bytes.clone(),
                _ => Bytes::new(),
            };
            for batch in batches(bytes) {
                let batch = batch.expect("a fetched batch parses");
                batch.validate().expect("a fetched batch is valid");
                for record in batch.records().expect("records of a fetched batch") {
                    let record = record.expect("a fetched record parses");
                    let offset = batch.offset_of(&record);
                    if offset >= next {
                        out.push(FetchedRecord {
                            offset,
                            timestamp: batch.timestamp_of(&record),
                            record,
                        });
                    }
                }
                next = next.max(batch.header().last_offset() + 1);
            }
            if next >= data.high_watermark {
                return out;
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct FetchedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub record: Record,
}

enum ReadResult {
    Done,
    Closed,
    TimedOut(usize),
}

fn read_exact_until(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> ReadResult {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return ReadResult::TimedOut(filled);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return ReadResult::Closed,
            Ok(n) => filled += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) =>
            {
                return ReadResult::Closed;
            }
            Err(e) => panic!("read from the broker: {e}"),
        }
    }
    ReadResult::Done
}

/// One batch of records with the given keys and values (no headers), timestamps `now`.
pub fn batch_of(records: &[(&[u8], &[u8])], compression: Compression) -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut builder = corelog::protocol::records::BatchBuilder::new(compression);
    for (key, value) in records {
        let headers = [RecordHeader {
            key: Bytes::from_static(b"h"),
            value: Some(Bytes::copy_from_slice(key)),
        }];
        builder.push(now, Some(key), Some(value), &headers);
    }
    let bytes = builder.build(0);
    RecordBatch::parse(bytes.clone())
        .and_then(|b| b.validate())
        .expect("the builder makes valid batches");
    bytes
}

/// A produce request with one batch per (partition, batch) pair, all to `topic`.
pub fn produce_request(topic: &str, acks: i16, partitions: Vec<(i32, Bytes)>) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.to_string(),
            partition_data: partitions
                .into_iter()
                .map(|(index, records)| PartitionProduceData {
                    index,
                    records: Some(Records::Bytes(records)),
                    ..PartitionProduceData::default()
                })
                .collect(),
            ..TopicProduceData::default()
        }],
        ..ProduceRequest::default()
    }
}

/// A fetch of one partition that answers at once (no long poll).
pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_bytes: i32) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.to_string(),
            partitions: vec![FetchPartition {
                partition,
                current_leader_epoch: -1,
                fetch_offset: offset,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: max_bytes,
                ..FetchPartition::default()
            }],
            ..FetchTopic::default()
        }],
        ..FetchRequest::default()
    }
}
