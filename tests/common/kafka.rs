//! librdkafka (the `rdkafka` crate) as a test client: a producer that records every
//! delivery report, a consumer that reads partitions by `assign` (no group), and
//! deterministic test records to compare byte for byte.

use super::Broker;
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A record as a test sends it and expects it back: key, value, headers (a null header
/// value included) and a create timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

/// A timestamp a little in the past, so no broker limit refuses it.
pub fn base_timestamp() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000
}

/// Record `index` of a run tagged `tag`: keyed, with headers, and a value of varying
/// length (0..600 bytes) that mixes compressible text and pseudo-random bytes, so every
/// codec has work to do. Every few records the key or value is null.
pub fn test_record(tag: &str, index: usize, timestamp: i64) -> TestRecord {
    let mut state = (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let len = (next() % 600) as usize;
    let mut value = format!("{tag}:{index}:").into_bytes();
    while value.len() < len {
        if next() % 2 == 0 {
            value.extend_from_slice(b"the quick brown fox ");
        } else {
            value.extend_from_slice(&next().to_le_bytes());
        }
    }
    let key = (!index.is_multiple_of(97)).then(|| format!("key-{}", index % 1000).into_bytes());
    let value = (!index.is_multiple_of(89)).then_some(value);
    let headers = vec![
        ("index".to_string(), Some(index.to_string().into_bytes())),
        ("tag".to_string(), Some(tag.as_bytes().to_vec())),
        (
            "empty".to_string(),
            (!index.is_multiple_of(3)).then(Vec::new),
        ),
    ];
    TestRecord {
        key,
        value,
        headers,
        timestamp,
    }
}

/// One delivery report.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The index of the record in the slice given to `send_all`.
    pub index: usize,
    pub partition: i32,
    /// -1 when the broker does not answer (acks=0).
    pub offset: i64,
    pub error: Option<String>,
}

/// Records every delivery report of a producer.
#[derive(Default)]
pub struct Recorder {
    pub deliveries: Mutex<Vec<Delivery>>,
}

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let delivery = match result {
            Ok(message) => Delivery {
                index,
                partition: message.partition(),
                offset: message.offset(),
                error: None,
            },
            Err((error, message)) => Delivery {
                index,
                partition: message.partition(),
                offset: message.offset(),
                error: Some(error.to_string()),
            },
        };
        self.deliveries.lock().unwrap().push(delivery);
    }
}

pub type TestProducer = BaseProducer<Recorder>;

/// A producer for `broker` with extra librdkafka settings (`acks`, `compression.codec`,
/// ...). Errors are reported quickly rather than retried for minutes.
pub fn producer(broker: &Broker, settings: &[(&str, &str)]) -> TestProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "5");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config
        .create_with_context(Recorder::default())
        .expect("create an rdkafka producer")
}

/// Sends every record to `topic` (to `partition` if given, else by key), waits for
/// every delivery report and returns them in record order.
pub fn send_all(
    producer: &TestProducer,
    topic: &str,
    partition: Option<i32>,
    records: &[TestRecord],
) -> Vec<Delivery> {
    let before = producer.context().deliveries.lock().unwrap().len();
    for (index, record) in records.iter().enumerate() {
        send_one(producer, topic, partition, record, index);
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every record is delivered or failed within 120 s");
    let mut deliveries: Vec<Delivery> =
        producer.context().deliveries.lock().unwrap()[before..].to_vec();
    deliveries.sort_by_key(|d| d.index);
    assert_eq!(
        deliveries.len(),
        records.len(),
        "one delivery report per record"
    );
    deliveries
}

/// Queues one record, waiting while librdkafka's queue is full.
pub fn send_one(
    producer: &TestProducer,
    topic: &str,
    partition: Option<i32>,
    record: &TestRecord,
    index: usize,
) {
    let mut headers = OwnedHeaders::new();
    for (key, value) in &record.headers {
        headers = headers.insert(Header {
            key,
            value: value.as_deref(),
        });
    }
    let mut base: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, index)
        .timestamp(record.timestamp)
        .headers(headers);
    if let Some(key) = &record.key {
        base = base.key(key.as_slice());
    }
    if let Some(value) = &record.value {
        base = base.payload(value.as_slice());
    }
    if let Some(partition) = partition {
        base = base.partition(partition);
    }
    loop {
        match producer.send(base) {
            Ok(()) => break,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                base = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("cannot queue record {index}: {e}"),
        }
    }
    producer.poll(Duration::ZERO);
}

/// A record as a consumer read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub record: TestRecord,
}

/// A consumer that reads by `assign` only. librdkafka's `assign` needs a `group.id`,
/// but without `subscribe` or commits it never joins the group (see `groups` for
/// members that do).
pub fn consumer(broker: &Broker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "corelog-tests-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create an rdkafka consumer")
}

/// The high watermark of each partition, by ListOffsets.
pub fn end_offsets(consumer: &BaseConsumer, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    (0..partitions)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("watermarks of {topic}-{p}: {e}"));
            (p, high)
        })
        .collect()
}

/// Reads each partition of `starts` from its start offset up to (not including) its
/// end offset in `ends`, and returns the records per partition in the order read.
pub fn consume(
    consumer: &BaseConsumer,
    topic: &str,
    starts: &BTreeMap<i32, Offset>,
    ends: &BTreeMap<i32, i64>,
) -> BTreeMap<i32, Vec<Consumed>> {
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in starts {
        assignment
            .add_partition_offset(topic, *partition, *offset)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let mut out: BTreeMap<i32, Vec<Consumed>> = starts.keys().map(|p| (*p, Vec::new())).collect();
    let mut next: BTreeMap<i32, i64> = starts
        .iter()
        .map(|(p, o)| (*p, o.to_raw().filter(|o| *o >= 0).unwrap_or(0)))
        .collect();
    let done = |next: &BTreeMap<i32, i64>| next.iter().all(|(p, n)| *n >= ends[p]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(&next) {
        assert!(
            Instant::now() < deadline,
            "consuming {topic} timed out at {next:?} of {ends:?}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap_or_else(|e| panic!("consume {topic}: {e}"));
        let partition = message.partition();
        let record = TestRecord {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
            timestamp: message.timestamp().to_millis().unwrap_or(-1),
        };
        next.insert(partition, message.offset() + 1);
        out.get_mut(&partition)
            .unwrap_or_else(|| panic!("a record of unassigned partition {partition}"))
            .push(Consumed {
                partition,
                offset: message.offset(),
                record,
            });
    }
    consumer.unassign().expect("unassign");
    out
}

/// Reads every partition of `topic` from the beginning to its current end.
pub fn consume_all(broker: &Broker, topic: &str, partitions: i32) -> BTreeMap<i32, Vec<Consumed>> {
    let consumer = consumer(broker);
    let ends = end_offsets(&consumer, topic, partitions);
    let starts = (0..partitions).map(|p| (p, Offset::Beginning)).collect();
    consume(&consumer, topic, &starts, &ends)
}

/// Reads `topic` from the beginning until the consumer's position reaches each
/// partition's end (control records included), returning the values per partition.
pub fn read_values(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Vec<String>> {
    let ends = end_offsets(consumer, topic, partitions);
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let mut out: BTreeMap<i32, Vec<String>> = (0..partitions).map(|p| (p, Vec::new())).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let position = consumer.position().expect("position");
        let done = (0..partitions).all(|p| {
            let at = position
                .find_partition(topic, p)
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(-1);
            ends[&p] == 0 || at >= ends[&p]
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reading {topic} timed out at {position:?} of {ends:?}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.unwrap_or_else(|e| panic!("consume {topic}: {e}"));
            let value = String::from_utf8(message.payload().unwrap_or_default().to_vec()).unwrap();
            out.get_mut(&message.partition()).unwrap().push(value);
        }
    }
    consumer.unassign().expect("unassign");
    out
}
