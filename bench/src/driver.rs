//! Runs one series of a workload — one broker, one acks level, one producer mode, one
//! pace — with real librdkafka clients, and measures it.
//!
//! - Producers (one thread and one librdkafka producer each) send records whose first
//!   8 bytes are the *intended* send time. At a fixed rate the schedule is fixed in
//!   advance and latency is measured from the intended time, so a stalled broker shows
//!   up in the percentiles instead of silently slowing the schedule down (coordinated
//!   omission); at max rate each record's intended time is when it was handed over.
//! - Producer modes: plain (`enable.idempotence=false`), idempotent, or transactional
//!   (a `transactional.id` per producer, transactions of `txn_records` records: begin,
//!   send, commit), where each commit's latency — begin to commit returned — goes into
//!   a histogram of its own.
//! - Consumers (assigned to every partition from its end, `read_committed`) measure
//!   end-to-end latency: the time a record is read minus its intended send time (same
//!   machine, same clock), and count the records they read, to be compared with the
//!   records acknowledged (counts, not offsets: transaction markers take offsets too).
//! - Acknowledgements are counted per second of the run (throughput over time), and
//!   latencies of records intended inside the measurement window (after the warm-up)
//!   go into HDR histograms. The broker's CPU time is sampled from `/proc` over the
//!   window when its pid is known.
//! - Requests: every client reports librdkafka's statistics every 100 ms; the Produce
//!   requests the producers sent and the Fetch requests the consumers sent are taken
//!   from the latest report at both ends of the window, beside the CPU samples, so the
//!   broker's CPU per request can be given.

use crate::limits::Floor;
use crate::progress::Progress;
use crate::workload::{KeySampler, ProducerMode, Rng, Workload};
use hdrhistogram::Histogram;
use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A broker to measure.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub bootstrap: String,
    /// The broker's process, for its CPU time (only on this machine).
    pub pid: Option<u32>,
}

/// How fast producers send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the client's queue and the broker's acknowledgements allow.
    Max,
    /// Records per second over all producers.
    Fixed(f64),
}

/// One measured series.
pub struct Series {
    pub target: String,
    pub acks: String,
    pub mode: ProducerMode,
    /// Records per transaction (transactional mode).
    pub txn_records: usize,
    pub pace: Pace,
    pub topic: String,
    /// Records and bytes acknowledged within the measurement window (`seconds` long).
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub failed: u64,
    /// Records acknowledged over the whole run, and read back by the consumers (when the
    /// workload has consumers): every acknowledged record should be read.
    pub delivered: u64,
    pub consumed: Option<u64>,
    /// Acknowledgement latency, microseconds, of records intended in the window.
    pub produce_us: Histogram<u64>,
    /// End-to-end latency, microseconds (when the workload has consumers).
    pub e2e_us: Option<Histogram<u64>>,
    /// Transactional mode: latency of each transaction begun in the window, from
    /// `begin_transaction` to `commit_transaction` returning, microseconds.
    pub commit_us: Option<Histogram<u64>>,
    /// Acknowledged (records, bytes) per second of the run, warm-up included.
    pub windows: Vec<(u64, u64)>,
    /// Cores the broker kept busy during the window.
    pub broker_cores: Option<f64>,
    /// Of those, each thread name's (threads of one name summed: corelog names a shard's
    /// threads after it; Linux keeps a name's first 15 bytes), busiest first; threads
    /// under 0.005 cores left out.
    pub broker_threads: Vec<(String, f64)>,
    /// Cores this load generator (its producers, consumers and librdkafka's threads)
    /// kept busy: on a small machine, what the broker could not have.
    pub client_cores: Option<f64>,
    /// Produce requests the producers sent and Fetch requests the consumers sent within
    /// the window (librdkafka's statistics; 0 when none were reported).
    pub produce_requests: u64,
    pub fetch_requests: u64,
    /// The floor measured right after the series with its volume and request size
    /// (`limits::floor`; set by the caller when it measures limits).
    pub floor: Option<Floor>,
    /// The same floor with one task on a glommio executor as the receiver
    /// (`limits::FloorRuntime::Glommio`): what the broker's runtime alone costs.
    pub glommio_floor: Option<Floor>,
}

/// A series' name in tables, charts and file names, e.g. `corelog acks=all
/// transactional/100 max`.
pub fn series_label(
    target: &str,
    acks: &str,
    mode: ProducerMode,
    txn_records: usize,
    pace: Pace,
) -> String {
    let mode = match mode {
        ProducerMode::Transactional => format!("{mode}/{txn_records}"),
        _ => mode.to_string(),
    };
    match pace {
        Pace::Max => format!("{target} acks={acks} {mode} max"),
        Pace::Fixed(rate) => format!("{target} acks={acks} {mode} @{rate:.0}/s"),
    }
}

impl Series {
    pub fn label(&self) -> String {
        series_label(
            &self.target,
            &self.acks,
            self.mode,
            self.txn_records,
            self.pace,
        )
    }

    /// A file-name-safe version of the label.
    pub fn slug(&self) -> String {
        self.label()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    }

    pub fn records_per_s(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }

    pub fn produce_requests_per_s(&self) -> f64 {
        self.produce_requests as f64 / self.seconds
    }

    /// Average record bytes per produce request in the window.
    pub fn bytes_per_produce_request(&self) -> Option<f64> {
        (self.produce_requests > 0).then(|| self.bytes as f64 / self.produce_requests as f64)
    }

    /// Broker CPU microseconds per MB acknowledged in the window.
    pub fn broker_cpu_us_per_mb(&self) -> Option<f64> {
        let cores = self.broker_cores?;
        (self.bytes > 0).then(|| cores * self.seconds * 1e6 / (self.bytes as f64 / 1e6))
    }

    /// Broker CPU microseconds per request (Produce and Fetch) sent in the window.
    pub fn broker_us_per_request(&self) -> Option<f64> {
        let requests = self.produce_requests + self.fetch_requests;
        let cores = self.broker_cores?;
        (requests > 0).then(|| cores * self.seconds * 1e6 / requests as f64)
    }

    /// Broker CPU per MB as a multiple of the floor's.
    pub fn cpu_per_mb_vs_floor(&self) -> Option<f64> {
        Some(self.broker_cpu_us_per_mb()? / self.floor.as_ref()?.cpu_us_per_mb())
    }
}

/// The latest cumulative request counts one client's statistics reported.
#[derive(Default)]
pub struct Requests {
    produce: AtomicU64,
    fetch: AtomicU64,
}

impl Requests {
    fn update(&self, statistics: &Statistics) {
        let count = |name: &str| -> u64 {
            statistics
                .brokers
                .values()
                .filter_map(|b| b.req.get(name))
                .map(|n| (*n).max(0) as u64)
                .sum()
        };
        self.produce.store(count("Produce"), Ordering::Relaxed);
        self.fetch.store(count("Fetch"), Ordering::Relaxed);
    }

    /// (Produce, Fetch) summed over `clients`.
    fn sum(clients: &[Arc<Requests>]) -> (u64, u64) {
        clients.iter().fold((0, 0), |(p, f), c| {
            (
                p + c.produce.load(Ordering::Relaxed),
                f + c.fetch.load(Ordering::Relaxed),
            )
        })
    }
}

/// How often clients report statistics (request counts).
pub const STATISTICS_INTERVAL_MS: &str = "100";

/// A consumer's context: counts its requests.
struct ConsumerStats(Arc<Requests>);

impl ClientContext for ConsumerStats {
    fn stats(&self, statistics: Statistics) {
        self.0.update(&statistics);
    }
}

impl ConsumerContext for ConsumerStats {}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Time references shared by every thread of a series.
#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
    start_wall_us: u64,
    measure_from: Duration,
    measure_to: Duration,
}

impl Clock {
    fn in_window(&self, intended: Duration) -> bool {
        intended >= self.measure_from && intended < self.measure_to
    }
}

/// What one producer's delivery reports accumulate (read by the progress thread).
/// Reports arrive on the producer's polling thread (`ThreadedProducer`).
struct Tally {
    produce_us: Histogram<u64>,
    windows: Vec<(u64, u64)>,
    /// Latencies since the progress thread last looked.
    live_us: Histogram<u64>,
    /// Records and bytes acknowledged inside the measurement window.
    window_records: u64,
    window_bytes: u64,
    failed: u64,
}

struct Reports {
    clock: Clock,
    tally: Mutex<Tally>,
    requests: Arc<Requests>,
}

impl ClientContext for Reports {
    fn stats(&self, statistics: Statistics) {
        self.requests.update(&statistics);
    }
}

impl ProducerContext for Reports {
    /// Nanoseconds since the start of the series at which the record was meant to go.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, intended_ns: usize) {
        let now = self.clock.start.elapsed();
        let intended = Duration::from_nanos(intended_ns as u64);
        let mut tally = self.tally.lock().unwrap();
        match result {
            Ok(message) => {
                let latency_us = now.saturating_sub(intended).as_micros() as u64;
                if self.clock.in_window(intended) {
                    tally.produce_us.saturating_record(latency_us.max(1));
                }
                tally.live_us.saturating_record(latency_us.max(1));
                let second = now.as_secs() as usize;
                if tally.windows.len() <= second {
                    tally.windows.resize(second + 1, (0, 0));
                }
                tally.windows[second].0 += 1;
                tally.windows[second].1 += message.payload_len() as u64;
                if self.clock.in_window(now) {
                    tally.window_records += 1;
                    tally.window_bytes += message.payload_len() as u64;
                }
            }
            Err(_) => tally.failed += 1,
        }
    }
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as u64
}

/// CPU seconds (user + system) a process (`None`: this one) has used so far.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    Some(read_stat(&path)?.1)
}

/// A process's or thread's name and CPU seconds (user + system) from its `stat` file at
/// `path`; None if it cannot be read (a thread may end between a listing and the read).
fn read_stat(path: &str) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The name is in parentheses and may hold spaces and parentheses; the fields after
    // it start at state (field 3).
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((stat[open + 1..close].to_string(), ticks / per_second))
}

/// CPU seconds (user + system) each thread of process `pid` has used so far, by thread id,
/// with its name.
fn thread_cpu_seconds(pid: u32) -> BTreeMap<u32, (String, f64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse::<u32>().ok()?;
            Some((tid, read_stat(&format!("/proc/{pid}/task/{tid}/stat"))?))
        })
        .collect()
}

/// Cores each thread name kept busy between two samples of `thread_cpu_seconds` taken
/// `seconds` apart (a thread that started in between counts from zero; one that ended
/// is not counted), busiest first, those under 0.005 cores left out.
fn thread_cores(
    before: &BTreeMap<u32, (String, f64)>,
    after: &BTreeMap<u32, (String, f64)>,
    seconds: f64,
) -> Vec<(String, f64)> {
    let mut by_name: BTreeMap<&str, f64> = BTreeMap::new();
    for (tid, (name, cpu)) in after {
        let earlier = before.get(tid).map_or(0.0, |(_, cpu)| *cpu);
        *by_name.entry(name).or_default() += (cpu - earlier).max(0.0) / seconds;
    }
    let mut cores: Vec<(String, f64)> = by_name
        .into_iter()
        .filter(|(_, cores)| *cores >= 0.005)
        .map(|(name, cores)| (name.to_string(), cores))
        .collect();
    cores.sort_by(|a, b| b.1.total_cmp(&a.1));
    cores
}

/// Creates the series' topic unless it exists.
fn create_topic(target: &Target, topic: &str, partitions: i32) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &target.bootstrap)
        .create()
        .map_err(|e| format!("cannot reach {}: {e}", target.bootstrap))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures_lite::future::block_on(admin.create_topics([&new], &options))
        .map_err(|e| format!("CreateTopics on {}: {e}", target.bootstrap))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("cannot create topic {name}: {code}")),
        }
    }
    Ok(())
}

/// One producer; `transactional_id` only in transactional mode.
fn producer(
    target: &Target,
    workload: &Workload,
    acks: &str,
    mode: ProducerMode,
    transactional_id: &str,
    clock: Clock,
) -> Result<ThreadedProducer<Reports>, KafkaError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &target.bootstrap)
        .set("acks", acks)
        .set("linger.ms", workload.linger_ms.to_string())
        .set("batch.size", workload.batch_size.to_string())
        .set("compression.type", &workload.compression)
        .set("queue.buffering.max.messages", "100000")
        .set(
            "enable.idempotence",
            (mode != ProducerMode::Plain).to_string(),
        )
        .set("message.timeout.ms", "60000")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    if workload.batch_num_messages > 0 {
        config.set(
            "batch.num.messages",
            workload.batch_num_messages.to_string(),
        );
    }
    if mode == ProducerMode::Transactional {
        config.set("transactional.id", transactional_id);
    }
    if workload.max_in_flight > 0 {
        config.set(
            "max.in.flight.requests.per.connection",
            workload.max_in_flight.to_string(),
        );
    }
    config.create_with_context(Reports {
        clock,
        tally: Mutex::new(Tally {
            produce_us: new_histogram(),
            windows: Vec::new(),
            live_us: new_histogram(),
            window_records: 0,
            window_bytes: 0,
            failed: 0,
        }),
        requests: Arc::default(),
    })
}

/// Sends records on one producer until the window closes; in transactional mode, in
/// transactions of `workload.txn_records`, and returns their commit latencies.
fn produce_loop(
    producer: &ThreadedProducer<Reports>,
    topic: &str,
    workload: &Workload,
    mode: ProducerMode,
    pace: Pace,
    clock: Clock,
    seed: u64,
) -> Result<Histogram<u64>, String> {
    let transactional = mode == ProducerMode::Transactional;
    let timeout = Duration::from_secs(60);
    if transactional {
        producer
            .init_transactions(timeout)
            .map_err(|e| format!("init_transactions: {e}"))?;
    }
    let mut commit_us = new_histogram();
    // When the open transaction began (since the start), and the records it holds.
    let (mut begun, mut in_txn) = (Duration::ZERO, 0usize);
    let mut commit = |begun: Duration| -> Result<(), String> {
        // rdkafka's commit_transaction flushes first, polling for up to 100 ms at a time,
        // and the delivery reports it waits for are served by the producer's own thread:
        // every commit would take 100 ms more. Wait for them here, in finer steps.
        while producer.in_flight_count() > 0 && clock.start.elapsed() < begun + timeout {
            std::thread::sleep(Duration::from_micros(200));
        }
        producer
            .commit_transaction(timeout)
            .map_err(|e| format!("commit_transaction: {e}"))?;
        let latency = clock.start.elapsed().saturating_sub(begun);
        if clock.in_window(begun) {
            commit_us.saturating_record((latency.as_micros() as u64).max(1));
        }
        Ok(())
    };
    let mut rng = Rng::new(seed);
    let keys = KeySampler::new(workload.keys);
    let mut value = vec![0x61u8; workload.record_size.max()];
    let interval_ns = match pace {
        Pace::Max => 0.0,
        Pace::Fixed(rate) => 1e9 * workload.producers as f64 / rate,
    };
    // Producers start their schedules staggered across one interval.
    let phase_ns =
        interval_ns * (seed % workload.producers as u64) as f64 / workload.producers as f64;
    let mut sent = 0u64;
    let mut key_text = String::new();
    loop {
        let intended = match pace {
            Pace::Max => clock.start.elapsed(),
            Pace::Fixed(_) => Duration::from_nanos((phase_ns + sent as f64 * interval_ns) as u64),
        };
        if intended >= clock.measure_to {
            break;
        }
        // Wait for the scheduled time (delivery reports are served by the producer's own
        // thread). No spinning: on a small machine a spinning client would take the
        // broker's cores. Behind schedule, records go out at once, their latency
        // counted from the schedule.
        let now = clock.start.elapsed();
        if now < intended {
            std::thread::sleep(intended - now);
        }
        if transactional && in_txn == 0 {
            producer
                .begin_transaction()
                .map_err(|e| format!("begin_transaction: {e}"))?;
            begun = clock.start.elapsed();
        }
        let size = workload.record_size.sample(&mut rng);
        let stamp = clock.start_wall_us + intended.as_micros() as u64;
        value[..8].copy_from_slice(&stamp.to_be_bytes());
        let mut record: BaseRecord<'_, str, [u8], usize> =
            BaseRecord::with_opaque_to(topic, intended.as_nanos() as usize).payload(&value[..size]);
        if let Some(key) = keys.sample(&mut rng) {
            key_text.clear();
            key_text.push_str(&key.to_string());
            record = record.key(key_text.as_str());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(format!("send failed: {e}")),
            }
        }
        sent += 1;
        if transactional {
            in_txn += 1;
            if in_txn == workload.txn_records {
                commit(begun)?;
                in_txn = 0;
            }
        }
    }
    if in_txn > 0 {
        commit(begun)?;
    }
    Ok(commit_us)
}

/// End-to-end latencies of one consumer thread.
fn consume_loop(
    target: &Target,
    topic: &str,
    partitions: Vec<(i32, i64)>,
    clock: Clock,
    stop: &AtomicBool,
    consumed: &AtomicU64,
    requests: Arc<Requests>,
) -> Result<Histogram<u64>, String> {
    let consumer: BaseConsumer<ConsumerStats> = ClientConfig::new()
        .set("bootstrap.servers", &target.bootstrap)
        .set("group.id", "corelog-bench-e2e")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        // librdkafka's default, stated: records of open or aborted transactions are not
        // read (and so not counted).
        .set("isolation.level", "read_committed")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        .create_with_context(ConsumerStats(requests))
        .map_err(|e| format!("consumer: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in &partitions {
        assignment
            .add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    let mut e2e = new_histogram();
    let window_from = clock.start_wall_us + clock.measure_from.as_micros() as u64;
    let window_to = clock.start_wall_us + clock.measure_to.as_micros() as u64;
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(message)) => {
                let now = wall_us();
                if let Some(stamp) = message.payload().and_then(|p| p.get(..8)) {
                    let stamp = u64::from_be_bytes(stamp.try_into().expect("8 bytes"));
                    if (window_from..window_to).contains(&stamp) {
                        e2e.saturating_record(now.saturating_sub(stamp).max(1));
                    }
                }
                consumed.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
            None => {}
        }
    }
    Ok(e2e)
}

/// The high watermark of every partition: where the consumers start.
fn end_offsets(target: &Target, topic: &str, partitions: i32) -> Result<Vec<(i32, i64)>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &target.bootstrap)
        .set("group.id", "corelog-bench-e2e")
        .create()
        .map_err(|e| e.to_string())?;
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .map(|(_, high)| (p, high))
                .map_err(|e| format!("watermarks of {topic}-{p}: {e}"))
        })
        .collect()
}

/// Runs one series and returns what it measured.
pub fn run_series(
    target: &Target,
    workload: &Workload,
    acks: &str,
    mode: ProducerMode,
    pace: Pace,
    topic: &str,
    progress: &Progress,
) -> Result<Series, String> {
    create_topic(target, topic, workload.partitions)?;
    let starts = end_offsets(target, topic, workload.partitions)?;
    let warmup = Duration::from_secs_f64(workload.warmup_s);
    let duration = Duration::from_secs_f64(workload.duration_s);
    // One clock for every thread; creating the producers falls in the warm-up.
    let start = Instant::now();
    let clock = Clock {
        start,
        start_wall_us: wall_us(),
        measure_from: warmup,
        measure_to: warmup + duration,
    };
    let producers: Vec<ThreadedProducer<Reports>> = (0..workload.producers)
        .map(|i| {
            let transactional_id = format!("{topic}-{i}");
            producer(target, workload, acks, mode, &transactional_id, clock)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;

    let stop_consumers = AtomicBool::new(false);
    let consumed = AtomicU64::new(0);
    let producer_requests: Vec<Arc<Requests>> = producers
        .iter()
        .map(|p| p.context().requests.clone())
        .collect();
    let consumer_requests: Vec<Arc<Requests>> =
        (0..workload.consumers).map(|_| Arc::default()).collect();
    let series = std::thread::scope(|scope| -> Result<Series, String> {
        let consumers: Vec<_> = (0..workload.consumers)
            .map(|i| {
                let mine: Vec<(i32, i64)> = starts
                    .iter()
                    .filter(|(p, _)| (*p as usize) % workload.consumers == i)
                    .copied()
                    .collect();
                let (stop, consumed) = (&stop_consumers, &consumed);
                let requests = consumer_requests[i].clone();
                scope.spawn(move || {
                    consume_loop(target, topic, mine, clock, stop, consumed, requests)
                })
            })
            .collect();
        let sending: Vec<_> = producers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                scope.spawn(move || {
                    produce_loop(p, topic, workload, mode, pace, clock, i as u64 + 1)
                })
            })
            .collect();
        // Progress, and the broker's CPU time and the requests sent at both ends of the
        // window.
        let cpu_sampler = scope.spawn(|| {
            let sample = || {
                (
                    target.pid.and_then(|pid| cpu_seconds(Some(pid))),
                    cpu_seconds(None),
                    Requests::sum(&producer_requests).0,
                    Requests::sum(&consumer_requests).1,
                    target.pid.map(thread_cpu_seconds).unwrap_or_default(),
                )
            };
            std::thread::sleep(clock.measure_from.saturating_sub(start.elapsed()));
            let before = sample();
            std::thread::sleep(clock.measure_to.saturating_sub(start.elapsed()));
            let after = sample();
            let seconds = duration.as_secs_f64();
            let cores = |b: Option<f64>, a: Option<f64>| Some((a? - b?) / seconds);
            (
                cores(before.0, after.0),
                cores(before.1, after.1),
                after.2.saturating_sub(before.2),
                after.3.saturating_sub(before.3),
                thread_cores(&before.4, &after.4, seconds),
            )
        });
        let total = clock.measure_to;
        while sending.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(250));
            let (mut records, mut bytes, mut live) = (0u64, 0u64, new_histogram());
            let second = start.elapsed().as_secs().saturating_sub(1) as usize;
            for p in &producers {
                let mut tally = p.context().tally.lock().unwrap();
                if let Some((r, b)) = tally.windows.get(second) {
                    records += r;
                    bytes += b;
                }
                live.add(&tally.live_us).expect("same bounds");
                tally.live_us.reset();
            }
            progress.tick(start.elapsed(), total, records, bytes, &live);
        }
        let mut commit_us = new_histogram();
        for handle in sending {
            let h = handle.join().expect("producer thread")?;
            commit_us.add(&h).expect("same bounds");
        }
        for p in &producers {
            p.flush(Duration::from_secs(60))
                .map_err(|e| format!("flush: {e}"))?;
        }
        let delivered: u64 = producers
            .iter()
            .map(|p| {
                let tally = p.context().tally.lock().unwrap();
                tally.windows.iter().map(|(r, _)| r).sum::<u64>()
            })
            .sum();
        // Consumers read until they have every record that was acknowledged, or give up.
        if workload.consumers > 0 {
            let deadline = Instant::now() + Duration::from_secs(30);
            while consumed.load(Ordering::Relaxed) < delivered && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        stop_consumers.store(true, Ordering::Relaxed);
        let mut e2e: Option<Histogram<u64>> = None;
        for handle in consumers {
            let h = handle.join().expect("consumer thread")?;
            match &mut e2e {
                Some(all) => all.add(&h).expect("same bounds"),
                None => e2e = Some(h),
            }
        }
        let (broker_cores, client_cores, produce_requests, fetch_requests, broker_threads) =
            cpu_sampler.join().expect("cpu sampler");
        let (mut produce_us, mut windows, mut failed) = (new_histogram(), Vec::new(), 0);
        let (mut records, mut bytes) = (0u64, 0u64);
        for p in &producers {
            let tally = p.context().tally.lock().unwrap();
            produce_us.add(&tally.produce_us).expect("same bounds");
            failed += tally.failed;
            records += tally.window_records;
            bytes += tally.window_bytes;
            if windows.len() < tally.windows.len() {
                windows.resize(tally.windows.len(), (0, 0));
            }
            for (i, (r, b)) in tally.windows.iter().enumerate() {
                windows[i].0 += r;
                windows[i].1 += b;
            }
        }
        Ok(Series {
            target: target.name.clone(),
            acks: acks.to_string(),
            mode,
            txn_records: workload.txn_records,
            pace,
            topic: topic.to_string(),
            records,
            bytes,
            seconds: duration.as_secs_f64(),
            failed,
            delivered,
            consumed: (workload.consumers > 0).then(|| consumed.load(Ordering::Relaxed)),
            produce_us,
            e2e_us: e2e,
            commit_us: (mode == ProducerMode::Transactional).then_some(commit_us),
            windows,
            broker_cores,
            broker_threads,
            client_cores,
            produce_requests,
            fetch_requests,
            floor: None,
            glommio_floor: None,
        })
    })?;
    progress.finish(&series.label());
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cores_sum_by_name_count_new_threads_from_zero_and_sort_busiest_first() {
        let at = |entries: &[(u32, &str, f64)]| -> BTreeMap<u32, (String, f64)> {
            entries
                .iter()
                .map(|&(tid, name, cpu)| (tid, (name.to_string(), cpu)))
                .collect()
        };
        let before = at(&[
            (1, "shard-0", 1.0),
            (2, "shard-1", 5.0),
            (3, "idle", 2.0),
            (4, "gone", 1.0),
        ]);
        let after = at(&[
            (1, "shard-0", 1.5),
            (2, "shard-1", 7.0),
            (3, "idle", 2.001),
            (5, "shard-0", 0.5),
        ]);
        let cores = thread_cores(&before, &after, 2.0);
        assert_eq!(
            cores,
            vec![("shard-1".to_string(), 1.0), ("shard-0".to_string(), 0.5)],
            "shard-0's two threads summed, the new one from zero; idle under 0.005 cores left out"
        );
    }

    #[test]
    fn a_busy_thread_of_this_process_is_found_by_its_name() {
        let stop = Arc::new(AtomicBool::new(false));
        let spinning = stop.clone();
        let busy = std::thread::Builder::new()
            .name("busy-bench".into())
            .spawn(move || {
                let start = Instant::now();
                while !spinning.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
                start.elapsed()
            })
            .unwrap();
        let pid = std::process::id();
        let before = thread_cpu_seconds(pid);
        // Wait for the thread to have used CPU, not for a time.
        let after = loop {
            let now = thread_cpu_seconds(pid);
            let used = |map: &BTreeMap<u32, (String, f64)>| {
                map.values()
                    .filter(|(n, _)| n == "busy-bench")
                    .map(|(_, cpu)| cpu)
                    .sum::<f64>()
            };
            if used(&now) - used(&before) >= 0.05 {
                break now;
            }
            std::thread::yield_now();
        };
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        let cores = thread_cores(&before, &after, 1.0);
        assert!(
            cores
                .iter()
                .any(|(name, c)| name == "busy-bench" && *c >= 0.05),
            "{cores:?}"
        );
    }
}
