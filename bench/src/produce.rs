//! A librdkafka (`rdkafka`) producer workload: fixed-size records as fast as the broker
//! takes them, at one acks level, with the acknowledgement latency of every record in an
//! HDR histogram. Works against any Kafka-compatible broker.

use hdrhistogram::Histogram;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct ProduceWorkload {
    pub bootstrap: String,
    pub topic: String,
    pub records: u64,
    pub record_size: usize,
    pub acks: String,
    pub linger_ms: u32,
    pub compression: String,
}

pub struct ProduceResult {
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub failed: u64,
    /// Acknowledgement latency per record, microseconds.
    pub latency_us: Histogram<u64>,
}

impl ProduceResult {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }

    pub fn records_per_s(&self) -> f64 {
        self.records as f64 / self.seconds
    }
}

/// Delivery reports arrive on the thread that polls the producer (this one); the
/// context must still be `Sync` for librdkafka's sake.
struct Context {
    latency_us: Mutex<Histogram<u64>>,
    failed: AtomicU64,
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                let us = sent.elapsed().as_micros() as u64;
                self.latency_us.lock().unwrap().saturating_record(us.max(1));
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Runs the workload; the topic should exist (or be auto-created by the broker).
pub fn run(w: &ProduceWorkload) -> Result<ProduceResult, KafkaError> {
    let context = Context {
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()),
        failed: AtomicU64::new(0),
    };
    let producer: BaseProducer<Context> = ClientConfig::new()
        .set("bootstrap.servers", &w.bootstrap)
        .set("acks", &w.acks)
        .set("linger.ms", w.linger_ms.to_string())
        .set("compression.type", &w.compression)
        .set("queue.buffering.max.messages", "200000")
        .set("enable.idempotence", "false")
        .create_with_context(context)?;
    let value = vec![b'x'; w.record_size];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < w.records {
        let key = (sent % 1024).to_string();
        let record = BaseRecord::with_opaque_to(&w.topic, Box::new(Instant::now()))
            .key(&key)
            .payload(&value);
        match producer.send(record) {
            Ok(()) => sent += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
        if sent.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let seconds = start.elapsed().as_secs_f64();
    let context = producer.context();
    let failed = context.failed.load(Ordering::Relaxed);
    Ok(ProduceResult {
        records: sent - failed,
        bytes: (sent - failed) * w.record_size as u64,
        seconds,
        failed,
        latency_us: context.latency_us.lock().unwrap().clone(),
    })
}
