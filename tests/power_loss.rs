//! Power loss: the broker's log directory on volatilefs (tests/volatilefs), a file system
//! that keeps only what was fsynced when the power is cut. `kill -9` (tests/crash.rs)
//! keeps the page cache, so it cannot tell a missing fdatasync; this loses every write and
//! every directory entry that was not made durable, so it fails if the broker acknowledges
//! an acks=all record before the record, its segment file and its partition directory are
//! durable.
//!
//! Each round produces at acks=all, cuts the power at a random point (volatilefs drops
//! what was not durable just before a random one of the broker's writes, truncations,
//! renames or fsyncs; then the broker is killed), remounts, restarts the broker
//! and checks that every record ever acknowledged is there, byte for byte, at its
//! acknowledged offset, and that what survived the last cut is still there. A negative
//! control does the same on a disk whose fsync lies and checks that the checker notices
//! the loss. `CORELOG_POWER_LOSS_ROUNDS` sets the rounds (3 by default) and
//! `CORELOG_POWER_LOSS_SEED` replays a run. Needs root and /dev/fuse.

mod common;

use common::Broker;
use common::kafka::{
    Consumed, Delivery, TestProducer, TestRecord, base_timestamp, consume, consumer, producer,
    send_one, test_record,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{Producer, PurgeConfig};
use rdkafka::{ClientConfig, Offset};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use volatilefs::{Fsync, Mount};

const TOPIC: &str = "power-loss";
const PARTITIONS: i32 = 3;
/// Records queued but not yet answered, at most: enough to keep every partition busy.
const MAX_IN_FLIGHT: i32 = 2000;
/// A round cuts the power just before a random one of the broker's first this many
/// changes to the disk (writes, truncations, names, fsyncs).
const CHANGES: u64 = 300;

/// A computer whose disk can lose power: `backing` is the disk, `mountpoint` the file
/// system the broker sees. Fields drop in order: the broker is killed before the mount
/// is detached.
struct Machine {
    broker: Option<Broker>,
    mount: Option<Mount>,
    backing: PathBuf,
    mountpoint: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Machine {
    fn start(fsync: Fsync) -> Machine {
        let tmp = tempfile::tempdir().unwrap();
        let backing = tmp.path().join("disk");
        let mountpoint = tmp.path().join("mnt");
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mountpoint).unwrap();
        let mount = Mount::new(&backing, &mountpoint, fsync)
            .unwrap_or_else(|e| panic!("mount volatilefs (root and /dev/fuse needed): {e}"));
        let broker = Broker::start_in(&mountpoint.join("data"), &["--shards", "2"]);
        create_topic(&broker);
        Machine {
            broker: Some(broker),
            mount: Some(mount),
            backing,
            mountpoint,
            _tmp: tmp,
        }
    }

    fn broker(&self) -> &Broker {
        self.broker.as_ref().unwrap()
    }

    /// The power goes, if it has not yet: the disk keeps only what was durable, the
    /// broker dies.
    fn cut_power(&mut self) {
        let mount = self.mount.as_ref().unwrap();
        if mount.is_powered().expect("the cut") {
            mount.cut_power().expect("cut the power");
        }
        self.broker.as_mut().unwrap().kill();
        self.mount.take().unwrap().unmount();
    }

    /// The power comes back: the disk is mounted again (honest from now on) and the
    /// broker restarts on it.
    fn power_on(&mut self) {
        self.mount = Some(Mount::new(&self.backing, &self.mountpoint, Fsync::Honest).unwrap());
        self.broker.as_mut().unwrap().restart();
    }
}

/// Creates the topic with short-lived segments (segment.bytes is at least 1 MiB): rolls,
/// and new segment files, in every round.
fn create_topic(broker: &Broker) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("create an rdkafka admin client");
    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1))
        .set("segment.bytes", "1048576")
        .set("segment.ms", "250");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let results = futures_lite::future::block_on(admin.create_topics([&topic], &options))
        .expect("CreateTopics");
    for result in results {
        result.unwrap_or_else(|(name, e)| panic!("create {name}: {e}"));
    }
}

/// When a round cuts the power.
#[derive(Debug, Clone, Copy)]
enum Cut {
    AfterChanges(u64),
    AfterAcks(usize),
}

/// A small xorshift generator: the cut points of a run follow from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn seed() -> u64 {
    match std::env::var("CORELOG_POWER_LOSS_SEED") {
        Ok(seed) => seed.parse().expect("CORELOG_POWER_LOSS_SEED is a number"),
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        }
    }
}

/// Every record a run sends, in order: record `i` carries `i` in its `index` header.
struct Records {
    sent: Vec<TestRecord>,
    timestamp: i64,
    /// Every delivery reported as acknowledged, over all rounds.
    acked: Vec<Delivery>,
}

impl Records {
    fn new() -> Records {
        Records {
            sent: Vec::new(),
            timestamp: base_timestamp(),
            acked: Vec::new(),
        }
    }

    fn acked_count(producer: &TestProducer) -> usize {
        let deliveries = producer.context().deliveries.lock().unwrap();
        deliveries.iter().filter(|d| d.error.is_none()).count()
    }

    /// Produces at acks=all until the power goes (`Cut::AfterChanges`: volatilefs cuts
    /// it just before the broker's `n`th change to the disk) or until `n` records are
    /// acknowledged while more are in flight (`Cut::AfterAcks`: the test cuts it). Then the
    /// broker is killed. Returns how many of this round's records were acknowledged, how
    /// many sent, and how many changes the broker made to the disk.
    fn produce_until_the_power_goes(
        &mut self,
        machine: &mut Machine,
        cut: Cut,
        codec: &str,
    ) -> (usize, usize, u64) {
        let producer = producer(
            machine.broker(),
            &[
                ("acks", "all"),
                ("compression.codec", codec),
                ("message.timeout.ms", "60000"),
            ],
        );
        let mount = machine.mount.as_ref().unwrap();
        let start = mount.changes();
        if let Cut::AfterChanges(n) = cut {
            mount.cut_power_after(n);
        }
        let first = self.sent.len();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let go = match cut {
                Cut::AfterChanges(_) => !mount.is_powered().expect("the cut"),
                Cut::AfterAcks(n) => {
                    Records::acked_count(&producer) >= n && producer.in_flight_count() > 0
                }
            };
            if go {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{cut:?} did not come within 120 s"
            );
            if producer.in_flight_count() >= MAX_IN_FLIGHT {
                // Wakes on the next delivery report.
                producer.poll(Duration::from_millis(100));
                continue;
            }
            let index = self.sent.len();
            let record = test_record(TOPIC, index, self.timestamp + index as i64 % 5000);
            send_one(&producer, TOPIC, None, &record, index);
            self.sent.push(record);
        }
        let changes = mount.changes() - start;
        machine.cut_power();
        // What the broker answered before it died is reported; the rest is dropped.
        producer.purge(PurgeConfig::default().queue().inflight());
        let deadline = Instant::now() + Duration::from_secs(60);
        while producer.in_flight_count() > 0 {
            assert!(Instant::now() < deadline, "purged records never reported");
            producer.poll(Duration::from_millis(100));
        }
        let acked: Vec<Delivery> = producer
            .context()
            .deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.error.is_none())
            .cloned()
            .collect();
        let count = acked.len();
        self.acked.extend(acked);
        (count, self.sent.len() - first, changes)
    }
}

/// The index a test record carries in its `index` header.
fn index_of(consumed: &Consumed) -> Option<usize> {
    let (_, value) = consumed.record.headers.iter().find(|(k, _)| k == "index")?;
    std::str::from_utf8(value.as_ref()?).ok()?.parse().ok()
}

/// Reads the whole topic back from the broker; a partition the broker does not know is
/// reported as a violation and read as empty.
fn read_log(broker: &Broker, violations: &mut Vec<String>) -> BTreeMap<i32, Vec<Consumed>> {
    let consumer = consumer(broker);
    let metadata = consumer
        .fetch_metadata(Some(TOPIC), Duration::from_secs(30))
        .expect("metadata");
    let topic = &metadata.topics()[0];
    let mut starts = BTreeMap::new();
    let mut ends = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let known =
            topic.error().is_none() && topic.partitions().iter().any(|p| p.id() == partition);
        if !known {
            violations.push(format!("{TOPIC}-{partition} is gone"));
            continue;
        }
        let (low, high) = consumer
            .fetch_watermarks(TOPIC, partition, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("watermarks of {TOPIC}-{partition}: {e}"));
        if low != 0 {
            violations.push(format!("{TOPIC}-{partition} starts at {low}, not 0"));
        }
        starts.insert(partition, Offset::Beginning);
        ends.insert(partition, high);
    }
    consume(&consumer, TOPIC, &starts, &ends)
}

/// Checks what the restarted broker holds: each partition a gap-free run of offsets from
/// 0 holding records we sent, each once and in the order sent; whatever survived the
/// previous cut still there; every acknowledged record at its acknowledged offset.
/// Returns the log read and the violations found.
fn check(
    broker: &Broker,
    records: &Records,
    previous: &BTreeMap<i32, Vec<Consumed>>,
) -> (BTreeMap<i32, Vec<Consumed>>, Vec<String>) {
    let mut violations = Vec::new();
    let log = read_log(broker, &mut violations);
    let mut at: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (partition, read) in &log {
        let mut last = None;
        for (position, c) in read.iter().enumerate() {
            let place = format!("{TOPIC}-{partition}@{}", c.offset);
            if c.offset != position as i64 {
                violations.push(format!("{place}: a gap (expected offset {position})"));
            }
            let Some(index) = index_of(c).filter(|i| *i < records.sent.len()) else {
                violations.push(format!("{place}: a record we never sent"));
                continue;
            };
            if c.record != records.sent[index] {
                violations.push(format!("{place}: record {index} damaged"));
            }
            if last >= Some(index) {
                violations.push(format!("{place}: record {index} after {last:?}"));
            }
            last = Some(index);
            at.insert((*partition, c.offset), index);
        }
        let kept = previous.get(partition).map_or(&[][..], |p| &p[..]);
        if read.get(..kept.len()) != Some(kept) {
            violations.push(format!(
                "{TOPIC}-{partition}: the {} records that survived the last cut are not all \
                 still there ({} now)",
                kept.len(),
                read.len()
            ));
        }
    }
    for d in &records.acked {
        if at.get(&(d.partition, d.offset)) != Some(&d.index) {
            violations.push(format!(
                "acknowledged record {} lost: {TOPIC}-{}@{} holds {:?}",
                d.index,
                d.partition,
                d.offset,
                at.get(&(d.partition, d.offset))
            ));
        }
    }
    (log, violations)
}

fn summary(violations: &[String]) -> String {
    let mut text = format!("{} violations:\n", violations.len());
    for v in violations.iter().take(20) {
        text.push_str(v);
        text.push('\n');
    }
    text
}

#[test]
fn a_power_cut_loses_no_acknowledged_record() {
    let rounds: usize = std::env::var("CORELOG_POWER_LOSS_ROUNDS")
        .map(|r| r.parse().expect("CORELOG_POWER_LOSS_ROUNDS is a number"))
        .unwrap_or(3);
    let seed = seed();
    eprintln!("power loss: {rounds} rounds, CORELOG_POWER_LOSS_SEED={seed}");
    let mut rng = Rng(seed);
    let mut machine = Machine::start(Fsync::Honest);
    let mut records = Records::new();
    let mut log = BTreeMap::new();
    for round in 0..rounds {
        let cut = Cut::AfterChanges(rng.below(CHANGES));
        let codec = ["none", "lz4", "zstd"][rng.below(3) as usize];
        let (acked, sent, changes) = records.produce_until_the_power_goes(&mut machine, cut, codec);
        machine.power_on();
        let (now, violations) = check(machine.broker(), &records, &log);
        let kept: usize = now.values().map(Vec::len).sum();
        let before: usize = log.values().map(Vec::len).sum();
        eprintln!(
            "round {round}: {codec}, cut after {changes} changes to the disk, {acked} of \
             {sent} records acknowledged; {} records kept of {} sent in all",
            kept,
            records.sent.len()
        );
        assert!(
            violations.is_empty(),
            "round {round} (CORELOG_POWER_LOSS_SEED={seed}): {}",
            summary(&violations)
        );
        assert!(kept >= before + acked && kept <= before + sent);
        log = now;
    }
}

/// The checker can fail: on a disk whose fsync lies, a power cut loses acknowledged
/// records, and `check` says so.
#[test]
fn with_fsync_lying_a_power_cut_loses_acknowledged_records_and_the_check_notices() {
    let mut machine = Machine::start(Fsync::Lies);
    let mut records = Records::new();
    let (acked, _, _) =
        records.produce_until_the_power_goes(&mut machine, Cut::AfterAcks(200), "none");
    assert!(acked >= 200);
    machine.power_on();
    let (_, violations) = check(machine.broker(), &records, &BTreeMap::new());
    let lost = violations
        .iter()
        .filter(|v| v.starts_with("acknowledged record"))
        .count();
    eprintln!(
        "fsync lying: {lost} of {acked} acknowledged records lost; {}",
        summary(&violations)
    );
    assert!(
        lost > 0,
        "with fsync lying the cut must lose acknowledged records, and the check must see it"
    );
}
