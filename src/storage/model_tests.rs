//! Random sequences of append / roll / flush / read / read by timestamp / truncate /
//! retention / crash / reopen, run against the real log and a simple in-memory model; any
//! divergence fails (Redpanda's opfuzz, Kafka's `MockLog`, as a proptest).
//!
//! The crash is modelled honestly: only what `flush` promised is guaranteed, every byte
//! past what a completed fdatasync covered may be lost from a random point, torn inside a
//! batch, zeroed or turned into garbage, and a file created since the last directory fsync
//! may vanish (with every file created after it). Recovery must give back a prefix of the model's batches that contains at least
//! everything flushed.
//!
//! `PROPTEST_CASES` sets the number of cases (default 48 here, to keep `cargo test`
//! quick in debug builds).

use std::cell::RefCell;
use std::rc::Rc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tempfile::TempDir;

use super::records::{BatchBuilder, Compression, RecordBatch, batches};
use super::testing::{TailFate, executor, simulate_crash};
use super::*;

#[derive(Clone, Debug)]
struct BatchSpec {
    timestamps: Vec<i64>,
    value_len: usize,
    compression: Compression,
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        batches: Vec<BatchSpec>,
        epoch_bump: bool,
    },
    ConcurrentAppends {
        appends: Vec<BatchSpec>,
    },
    Roll,
    Flush,
    Checkpoint,
    AdvanceHighWatermark {
        fraction: f64,
    },
    Read {
        from: f64,
        max_bytes: usize,
        min_one_batch: bool,
    },
    ReadByTimestamp {
        timestamp: i64,
    },
    MaxTimestamp,
    Truncate {
        to: f64,
    },
    DeleteSegmentsBefore {
        before: f64,
    },
    Crash {
        seed: u64,
        checkpoint_lag: f64,
    },
    Reopen,
}

fn batch_spec() -> impl Strategy<Value = BatchSpec> {
    let compression = prop_oneof![
        6 => Just(Compression::None),
        1 => Just(Compression::Gzip),
        1 => Just(Compression::Snappy),
        1 => Just(Compression::Lz4),
        1 => Just(Compression::Zstd),
    ];
    (
        prop::collection::vec(0i64..1000, 1..5),
        0usize..200,
        compression,
    )
        .prop_map(|(timestamps, value_len, compression)| BatchSpec {
            timestamps,
            value_len,
            compression,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (prop::collection::vec(batch_spec(), 1..4), prop::bool::weighted(0.1))
            .prop_map(|(batches, epoch_bump)| Op::Append { batches, epoch_bump }),
        2 => prop::collection::vec(batch_spec(), 2..6)
            .prop_map(|appends| Op::ConcurrentAppends { appends }),
        1 => Just(Op::Roll),
        2 => Just(Op::Flush),
        1 => Just(Op::Checkpoint),
        3 => (0.0f64..=1.0).prop_map(|fraction| Op::AdvanceHighWatermark { fraction }),
        4 => (0.0f64..=1.0, 1usize..3000, any::<bool>())
            .prop_map(|(from, max_bytes, min_one_batch)| Op::Read { from, max_bytes, min_one_batch }),
        2 => (-10i64..1010).prop_map(|timestamp| Op::ReadByTimestamp { timestamp }),
        1 => Just(Op::MaxTimestamp),
        1 => (0.0f64..=1.1).prop_map(|to| Op::Truncate { to }),
        1 => (0.0f64..=1.0).prop_map(|before| Op::DeleteSegmentsBefore { before }),
        2 => (any::<u64>(), 0.0f64..=1.0)
            .prop_map(|(seed, checkpoint_lag)| Op::Crash { seed, checkpoint_lag }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Clone, Debug)]
struct ConfigSpec {
    segment_bytes: u32,
    index_interval_bytes: u32,
    index_entries: u32,
    log_append_time: bool,
}

fn config_spec() -> impl Strategy<Value = ConfigSpec> {
    (
        1000u32..6000,
        0u32..1200,
        2u32..40,
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(segment_bytes, index_interval_bytes, index_entries, log_append_time)| ConfigSpec {
                segment_bytes,
                index_interval_bytes,
                index_entries,
                log_append_time,
            },
        )
}

impl ConfigSpec {
    fn config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            index_interval_bytes: self.index_interval_bytes,
            segment_index_bytes: self.index_entries * 12,
            max_message_bytes: self.segment_bytes,
            message_timestamp_type: if self.log_append_time {
                MessageTimestampType::LogAppendTime
            } else {
                MessageTimestampType::CreateTime
            },
            ..LogConfig::default()
        }
    }
}

/// One batch as the model remembers it.
#[derive(Clone, Debug, PartialEq)]
struct ModelBatch {
    base: i64,
    tag: u64,
    timestamps: Vec<i64>,
    epoch: i32,
    size: usize,
}

impl ModelBatch {
    fn last(&self) -> i64 {
        self.base + self.timestamps.len() as i64 - 1
    }
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<ModelBatch>,
    log_start: i64,
    log_end: i64,
    high_watermark: i64,
    /// Everything below was promised durable by a completed `flush`.
    flushed: i64,
    epoch: i32,
    next_tag: u64,
}

impl Model {
    fn truncate(&mut self, offset: i64) {
        if offset >= self.log_end {
            return;
        }
        if offset < self.log_start {
            self.batches.clear();
            self.log_start = offset;
            self.log_end = offset;
        } else {
            let keep = self.batches.partition_point(|b| b.last() < offset);
            let cut_base = self.batches[keep].base;
            self.batches.truncate(keep);
            self.log_end = offset.min(cut_base);
        }
        self.high_watermark = self.high_watermark.min(self.log_end);
        self.flushed = self.flushed.min(self.log_end);
    }

    /// (offset, timestamp) of every visible record: those of whole batches at or above
    /// the log start and below the high watermark (a batch the high watermark cuts is not
    /// visible yet, as in Kafka's fetch).
    fn visible_records(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.batches
            .iter()
            .filter(|b| b.base >= self.log_start && b.last() < self.high_watermark)
            .flat_map(|b| {
                b.timestamps
                    .iter()
                    .enumerate()
                    .map(|(i, ts)| (b.base + i as i64, *ts))
            })
    }
}

fn build_batch(spec: &BatchSpec, tag: u64) -> RecordBatch {
    let mut builder = BatchBuilder::new(spec.compression);
    for (i, ts) in spec.timestamps.iter().enumerate() {
        builder.push(
            *ts,
            Some(&tag.to_be_bytes()),
            Some(&vec![(tag as u8).wrapping_add(i as u8); spec.value_len]),
            &[],
        );
    }
    batches(builder.build(0)).next().unwrap().unwrap()
}

fn pick(fraction: f64, low: i64, high: i64) -> i64 {
    low + ((high - low) as f64 * fraction).floor() as i64
}

struct Harness {
    dir: std::path::PathBuf,
    config: LogConfig,
    log: PartitionLog,
    model: Model,
}

impl Harness {
    async fn append(&mut self, specs: &[BatchSpec], epoch_bump: bool) {
        if epoch_bump {
            self.model.epoch += 1;
        }
        let tags: Vec<u64> = specs
            .iter()
            .map(|_| {
                self.model.next_tag += 1;
                self.model.next_tag
            })
            .collect();
        let built: Vec<RecordBatch> = specs
            .iter()
            .zip(&tags)
            .map(|(s, t)| build_batch(s, *t))
            .collect();
        let info = self
            .log
            .append(&built, LeaderEpoch(self.model.epoch))
            .await
            .unwrap();
        assert_eq!(
            info.first_offset.0, self.model.log_end,
            "offsets continue the log"
        );
        self.record_append(specs, &tags, &built, info);
    }

    fn record_append(
        &mut self,
        specs: &[BatchSpec],
        tags: &[u64],
        built: &[RecordBatch],
        info: AppendInfo,
    ) {
        let mut base = info.first_offset.0;
        for ((spec, tag), batch) in specs.iter().zip(tags).zip(built) {
            let timestamps = match info.log_append_time {
                Some(now) => vec![now.0; spec.timestamps.len()],
                None => spec.timestamps.clone(),
            };
            self.model.batches.push(ModelBatch {
                base,
                tag: *tag,
                timestamps,
                epoch: self.model.epoch,
                size: batch.bytes().len(),
            });
            base += spec.timestamps.len() as i64;
        }
        assert_eq!(info.last_offset.0, base - 1);
        self.model.log_end = base;
    }

    async fn concurrent_appends(&mut self, specs: &[BatchSpec]) {
        let results = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        let mut tags = Vec::new();
        let mut built_all = Vec::new();
        for spec in specs {
            self.model.next_tag += 1;
            let tag = self.model.next_tag;
            let built = build_batch(spec, tag);
            tags.push(tag);
            built_all.push(built.clone());
            let log = self.log.clone();
            let results = results.clone();
            let epoch = LeaderEpoch(self.model.epoch);
            // glommio polls a spawned task at once: tickets follow spawn order.
            tasks.push(glommio::spawn_local(async move {
                let info = log.append(&[built], epoch).await.unwrap();
                results.borrow_mut().push((tag, info));
            }));
        }
        for task in tasks {
            task.await;
        }
        let results = results.borrow().clone();
        for (i, spec) in specs.iter().enumerate() {
            let (tag, info) = results.iter().find(|(t, _)| *t == tags[i]).unwrap();
            assert_eq!(*tag, tags[i]);
            assert_eq!(
                info.first_offset.0, self.model.log_end,
                "call order gives offset order"
            );
            self.record_append(
                std::slice::from_ref(spec),
                &[tags[i]],
                &built_all[i..=i],
                *info,
            );
        }
    }

    fn check_positions(&self) {
        assert_eq!(
            self.log.log_start_offset().offset().0,
            self.model.log_start,
            "log start"
        );
        assert_eq!(
            self.log.log_end_offset().offset().0,
            self.model.log_end,
            "log end"
        );
        assert_eq!(
            self.log.high_watermark().offset().0,
            self.model.high_watermark,
            "high watermark"
        );
    }

    /// Checks a read against the model: the run of batches from the one holding `from`,
    /// stopping only for max_bytes, the upper bound or the end of a segment.
    async fn read(&self, from: i64, max_bytes: usize, min_one_batch: bool) {
        let upper = self.model.high_watermark;
        let result = self
            .log
            .read_bytes(Offset(from), max_bytes, Offset(upper), min_one_batch)
            .await;
        if from < self.model.log_start || from > self.model.log_end {
            assert!(
                matches!(result, Err(StorageError::OffsetOutOfRange { .. })),
                "{result:?}"
            );
            return;
        }
        let result = result.unwrap();
        let start = self.model.batches.partition_point(|b| b.last() < from);
        let visible = |b: &ModelBatch| b.last() < upper;
        if from >= upper
            || start == self.model.batches.len()
            || !visible(&self.model.batches[start])
        {
            assert!(
                result.is_none(),
                "read at {from} (upper {upper}) returned {result:?}"
            );
            return;
        }
        let first = &self.model.batches[start];
        if first.size > max_bytes && !min_one_batch {
            assert!(result.is_none());
            return;
        }
        let (bytes, next) = result.expect("a visible batch is returned");
        let got: Vec<_> = batches(bytes).map(|b| b.unwrap()).collect();
        let segments: Vec<i64> = self
            .log
            .segment_base_offsets()
            .iter()
            .map(|o| o.0)
            .collect();
        let mut total = 0;
        for (i, batch) in got.iter().enumerate() {
            let expected = &self.model.batches[start + i];
            check_batch(batch, expected);
            total += expected.size;
        }
        assert!(
            total <= max_bytes || got.len() == 1,
            "{total} bytes for max {max_bytes}"
        );
        let last = &self.model.batches[start + got.len() - 1];
        assert_eq!(next.0, last.last() + 1);
        // Why did it stop? Max bytes, upper bound, end of log or end of segment.
        if let Some(following) = self.model.batches.get(start + got.len()) {
            let stopped_for_bytes = total + following.size > max_bytes;
            let stopped_for_upper = !visible(following);
            let segment_ends = segments.contains(&following.base);
            assert!(
                stopped_for_bytes || stopped_for_upper || segment_ends,
                "read from {from} stopped before batch {} without a reason",
                following.base
            );
        }
    }

    async fn read_by_timestamp(&self, timestamp: i64) {
        let got = self
            .log
            .offset_for_timestamp(Timestamp(timestamp))
            .await
            .unwrap();
        let expected = self
            .model
            .visible_records()
            .find(|(_, ts)| *ts >= timestamp);
        assert_eq!(
            got.map(|f| (f.offset.0, f.timestamp.0)),
            expected,
            "offset for timestamp {timestamp}"
        );
    }

    async fn max_timestamp(&self) {
        let got = self.log.max_timestamp_offset().await.unwrap();
        let max = self.model.visible_records().map(|(_, ts)| ts).max();
        let expected = max.and_then(|m| self.model.visible_records().find(|(_, ts)| *ts == m));
        assert_eq!(
            got.map(|f| (f.offset.0, f.timestamp.0)),
            expected,
            "max timestamp"
        );
    }

    /// Reads the whole log and compares every batch with the model.
    async fn check_all(&mut self) {
        let saved = self.model.high_watermark;
        self.log.advance_high_watermark(Offset(self.model.log_end));
        let mut from = self.model.log_start;
        let mut seen = 0;
        while from < self.model.log_end {
            let (bytes, next) = self
                .log
                .read_bytes(Offset(from), 1 << 20, Offset(self.model.log_end), true)
                .await
                .unwrap()
                .expect("everything below the log end is readable");
            for batch in batches(bytes) {
                let batch = batch.unwrap();
                let expected = self
                    .model
                    .batches
                    .iter()
                    .find(|b| b.base == batch.header().base_offset)
                    .expect("batch known to the model");
                check_batch(&batch, expected);
                seen += 1;
            }
            from = next.0;
        }
        assert_eq!(
            seen,
            self.model
                .batches
                .iter()
                .filter(|b| b.base >= self.model.log_start)
                .count()
        );
        // The log's high watermark moved; keep the model's view in sync with it.
        self.model.high_watermark = self.model.log_end.max(saved);
    }

    async fn crash(&mut self, seed: u64, checkpoint_lag: f64) {
        self.log.quiesce().await;
        let report = self.log.durability_report();
        let durable = self.log.durable_offset().0;
        assert!(
            durable >= self.model.flushed,
            "durable offset {durable} below what flush promised {}",
            self.model.flushed
        );
        // The server checkpointed this recovery point, or an older one.
        let claimed = self.log.recovery_point().0;
        assert!(claimed <= durable);
        let checkpoint = pick(1.0 - checkpoint_lag, 0, claimed);
        let mut rng = seed;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Directory entries become durable in creation order: once a segment vanishes,
        // every later one (whose entry is not durable either) vanishes too.
        let mut vanishing = false;
        simulate_crash(&report, |file, unflushed| {
            let roll = next() % 10;
            if !file.entry_durable && file.durable_len == 0 {
                let is_log = file.path.extension().is_some_and(|e| e == "log");
                if vanishing || (is_log && roll == 0) {
                    vanishing = true;
                    return TailFate::Vanished;
                }
            }
            if unflushed == 0 {
                return TailFate::Kept;
            }
            let keep = next() % (unflushed + 1);
            match roll {
                0..=3 => TailFate::TruncatedAfter(keep),
                4..=5 => TailFate::ZeroedAfter(keep),
                6 => TailFate::GarbageAfter { keep, seed: next() },
                _ => TailFate::Kept,
            }
        })
        .unwrap();
        self.log = PartitionLog::open(&self.dir, self.config.clone(), Offset(checkpoint))
            .await
            .unwrap();
        let recovered = self.log.log_end_offset().offset().0;
        assert!(
            recovered >= self.model.flushed,
            "recovery lost flushed records: log end {recovered}, flushed up to {}",
            self.model.flushed
        );
        assert!(recovered <= self.model.log_end);
        assert!(
            recovered == self.model.log_start
                || self.model.batches.iter().any(|b| b.last() + 1 == recovered),
            "recovered log end {recovered} is not a batch boundary"
        );
        // Lost unflushed batches leave the model too.
        let keep = self.model.batches.partition_point(|b| b.last() < recovered);
        self.model.batches.truncate(keep);
        self.model.log_end = recovered;
        self.model.high_watermark = self.log.high_watermark().offset().0;
        self.model.flushed = self.model.flushed.min(recovered);
        self.check_positions();
        self.check_all().await;
    }

    async fn reopen(&mut self) {
        self.log.close().await.unwrap();
        let recovery_point = self.log.recovery_point();
        assert_eq!(
            recovery_point.0, self.model.log_end,
            "close makes everything durable"
        );
        self.log = PartitionLog::open(&self.dir, self.config.clone(), recovery_point)
            .await
            .unwrap();
        self.model.flushed = self.model.log_end;
        self.model.high_watermark = self.model.log_start;
        self.check_positions();
        self.check_all().await;
    }

    async fn run(&mut self, op: &Op) {
        match op {
            Op::Append {
                batches,
                epoch_bump,
            } => self.append(batches, *epoch_bump).await,
            Op::ConcurrentAppends { appends } => self.concurrent_appends(appends).await,
            Op::Roll => self.log.roll().await.unwrap(),
            Op::Checkpoint => {
                let recovery_point = self.log.checkpoint().await.unwrap();
                assert_eq!(recovery_point.0, self.model.log_end);
                self.model.flushed = self.model.log_end;
            }
            Op::Flush => {
                self.log.flush().await.unwrap();
                self.model.flushed = self.model.log_end;
                assert!(self.log.durable_offset().0 >= self.model.log_end);
            }
            Op::AdvanceHighWatermark { fraction } => {
                let target = pick(*fraction, self.model.high_watermark, self.model.log_end);
                self.log.advance_high_watermark(Offset(target));
                self.model.high_watermark = target;
            }
            Op::Read {
                from,
                max_bytes,
                min_one_batch,
            } => {
                let from = pick(*from, self.model.log_start - 1, self.model.log_end + 2);
                self.read(from, *max_bytes, *min_one_batch).await;
            }
            Op::ReadByTimestamp { timestamp } => self.read_by_timestamp(*timestamp).await,
            Op::MaxTimestamp => self.max_timestamp().await,
            Op::Truncate { to } => {
                let offset = pick(*to, self.model.log_start - 2, self.model.log_end).max(0);
                let end = self.log.truncate_to(Offset(offset)).await.unwrap();
                self.model.truncate(offset);
                assert_eq!(end.offset().0, self.model.log_end);
            }
            Op::DeleteSegmentsBefore { before } => {
                let offset = pick(*before, self.model.log_start, self.model.log_end + 1);
                let bases: Vec<i64> = self
                    .log
                    .segment_base_offsets()
                    .iter()
                    .map(|o| o.0)
                    .collect();
                let limit = offset.min(self.model.high_watermark);
                let deleted = bases.windows(2).take_while(|w| w[1] <= limit).count();
                let got = self
                    .log
                    .delete_segments_before(Offset(offset))
                    .await
                    .unwrap();
                assert_eq!(got, deleted);
                if deleted > 0 {
                    self.model.log_start = self.model.log_start.max(bases[deleted]);
                }
            }
            Op::Crash {
                seed,
                checkpoint_lag,
            } => self.crash(*seed, *checkpoint_lag).await,
            Op::Reopen => self.reopen().await,
        }
        self.check_positions();
        self.check_time_claims(op);
    }

    /// Every loaded time index entry `(ts, o)` promises that no record of its segment at or
    /// below `o` is newer than `ts`; every segment's max timestamp is at least its newest
    /// record's.
    fn check_time_claims(&self, op: &Op) {
        let info = self.log.time_info();
        for (i, (base, loaded)) in info.iter().enumerate() {
            let Some((max, _, entries)) = loaded else {
                continue;
            };
            let end = info.get(i + 1).map_or(i64::MAX, |(b, _)| *b);
            let records: Vec<(i64, i64)> = self
                .model
                .batches
                .iter()
                .flat_map(|b| {
                    b.timestamps
                        .iter()
                        .enumerate()
                        .map(|(j, ts)| (b.base + j as i64, *ts))
                })
                .filter(|(o, _)| *o >= *base && *o < end)
                .collect();
            if let Some(newest) = records.iter().map(|(_, ts)| *ts).max() {
                assert!(
                    max.0 >= newest,
                    "after {op:?}: segment {base} max {max:?} below {newest}"
                );
            }
            for (ts, at) in entries {
                for (o, rts) in &records {
                    assert!(
                        *o > at.0 || *rts <= ts.0,
                        "after {op:?}: segment {base} time entry ({ts:?}, {at:?}) but record {o} has {rts}"
                    );
                }
            }
        }
    }
}

fn check_batch(batch: &RecordBatch, expected: &ModelBatch) {
    let h = batch.header();
    assert_eq!(h.base_offset, expected.base);
    assert_eq!(h.last_offset(), expected.last());
    assert_eq!(h.partition_leader_epoch, expected.epoch);
    batch.verify_crc().unwrap();
    for (i, record) in batch.records().unwrap().enumerate() {
        let record = record.unwrap();
        assert_eq!(record.key.as_deref(), Some(&expected.tag.to_be_bytes()[..]));
        let ts = batch.timestamp_of(&record);
        assert_eq!(
            ts,
            expected.timestamps[i],
            "timestamp of offset {}",
            expected.base + i as i64
        );
    }
}

fn run_case(executor: &glommio::LocalExecutor, config: ConfigSpec, ops: Vec<Op>) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    executor.run(async move {
        let config = config.config();
        let log = PartitionLog::open(&path, config.clone(), Offset(0))
            .await
            .unwrap();
        let mut harness = Harness {
            dir: path,
            config,
            log,
            model: Model::default(),
        };
        for op in &ops {
            harness.run(op).await;
        }
        harness.check_all().await;
        harness.reopen().await;
        drop(harness);
        // glommio closes dropped files asynchronously, on its next I/O cycle: give it one
        // before the executor goes away, or every case leaks descriptors.
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    });
    drop(dir);
}

#[test]
fn random_operation_sequences_match_the_model_through_crashes() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    // One executor for every case (each glommio executor leaks an eventfd when dropped);
    // a fresh one after a failing case, whose tasks may be left behind.
    let executor = std::cell::RefCell::new(executor());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(config_spec(), prop::collection::vec(op(), 1..60)),
            |(config, ops)| {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_case(&executor.borrow(), config, ops)
                }));
                if let Err(panic) = outcome {
                    *executor.borrow_mut() = super::testing::executor();
                    std::panic::resume_unwind(panic);
                }
                Ok(())
            },
        )
        .unwrap();
}
