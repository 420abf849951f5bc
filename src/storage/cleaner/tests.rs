//! Specifications of the cleaner, as tests on the storage test executor: compaction against
//! a model (the latest value of each key, tombstones until their delete horizon, offsets
//! kept, reads from any offset), transactions (aborted data, markers as Kafka keeps and
//! drops them), producer state, a full offset map, a crash at every step of the swap,
//! appends and reads while a log is cleaned, and reopening cleaned logs.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use tempfile::TempDir;

use super::*;
use crate::storage::records::{BatchBuilder, BatchHeader, Compression, RecordBatch, batches};
use crate::storage::testing::block_on;
use crate::storage::{
    LeaderEpoch, LogConfig, Marker, PartitionLog, ProducerError, StorageError, segment_file_name,
};

/// The cleaning clock: record timestamps lie a little before it.
const NOW: i64 = 1_700_000_000_000;
const RETENTION_MS: u64 = 1_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 200,
        segment_index_bytes: 4096,
        cleanup_compact: true,
        cleanup_delete: false,
        delete_retention_ms: RETENTION_MS,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("table", 0)
}

/// One record as appended: its offset, key and value (`None`: a tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    offset: i64,
    key: Bytes,
    value: Option<Bytes>,
}

/// Every record appended, in offset order.
#[derive(Default)]
struct Model {
    records: Vec<Rec>,
}

impl Model {
    /// The latest record of each key, in offset order; tombstones only if `tombstones`.
    fn compacted(&self, tombstones: bool) -> Vec<Rec> {
        let mut latest: BTreeMap<Bytes, Rec> = BTreeMap::new();
        for r in &self.records {
            latest.insert(r.key.clone(), r.clone());
        }
        let mut out: Vec<Rec> = latest
            .into_values()
            .filter(|r| tombstones || r.value.is_some())
            .collect();
        out.sort_by_key(|r| r.offset);
        out
    }
}

/// A little deterministic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn codec(i: u64) -> Compression {
    Compression::ALL[(i % Compression::ALL.len() as u64) as usize]
}

fn batch_of(records: &[(Bytes, Option<Bytes>)], compression: Compression) -> RecordBatch {
    let mut builder = BatchBuilder::new(compression);
    for (i, (key, value)) in records.iter().enumerate() {
        builder.push(NOW - 60_000 + i as i64, Some(key), value.as_deref(), &[]);
    }
    RecordBatch::parse(builder.build(0)).unwrap()
}

/// Appends `batches` batches of 1–5 records over `keys` keys (one in ten a tombstone), in
/// every codec, recording them in the model.
async fn append_versions(
    log: &PartitionLog,
    model: &mut Model,
    rng: &mut Rng,
    batches: usize,
    keys: u64,
) {
    for _ in 0..batches {
        let count = 1 + rng.next() % 5;
        let records: Vec<(Bytes, Option<Bytes>)> = (0..count)
            .map(|_| {
                let key = Bytes::from(format!("key-{}", rng.next() % keys));
                let value = (!rng.next().is_multiple_of(10)).then(|| {
                    Bytes::from(format!(
                        "value-{}-{}",
                        rng.next(),
                        "x".repeat((rng.next() % 40) as usize)
                    ))
                });
                (key, value)
            })
            .collect();
        let info = log
            .append(&[batch_of(&records, codec(rng.next()))], LeaderEpoch(0))
            .await
            .unwrap();
        for (i, (key, value)) in records.into_iter().enumerate() {
            model.records.push(Rec {
                offset: info.first_offset.0 + i as i64,
                key,
                value,
            });
        }
    }
}

/// Rolls, makes everything durable and visible: all of it becomes cleanable.
async fn settle(log: &PartitionLog) {
    log.roll().await.unwrap();
    log.flush().await.unwrap();
    log.advance_high_watermark(log.log_end_offset().offset());
}

/// Every record of every data batch visible, in order, checking CRCs and that offsets
/// increase.
async fn read_all(log: &PartitionLog) -> Vec<Rec> {
    let mut out: Vec<Rec> = Vec::new();
    let mut offset = log.log_start_offset().offset();
    let end = log.high_watermark().offset();
    while offset < end {
        let Some((bytes, next)) = log.read_bytes(offset, 1 << 14, end, true).await.unwrap() else {
            break;
        };
        assert!(next > offset, "reads move forward");
        for batch in batches(bytes) {
            let batch = batch.unwrap();
            batch.verify_crc().unwrap();
            if batch.header().is_control() {
                continue;
            }
            for record in batch.records().unwrap() {
                let record = record.unwrap();
                let at = batch.offset_of(&record);
                assert!(out.last().is_none_or(|r| r.offset < at), "offsets increase");
                out.push(Rec {
                    offset: at,
                    key: record.key.unwrap(),
                    value: record.value,
                });
            }
        }
        offset = next;
    }
    out
}

/// The headers of every batch visible, control batches included.
async fn read_headers(log: &PartitionLog) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset().offset();
    let end = log.high_watermark().offset();
    while offset < end {
        let Some((bytes, next)) = log.read_bytes(offset, 1 << 14, end, true).await.unwrap() else {
            break;
        };
        out.extend(batches(bytes).map(|b| *b.unwrap().header()));
        offset = next;
    }
    out
}

/// The first record at or after `offset` a consumer fetching from `offset` gets.
async fn first_record_from(log: &PartitionLog, offset: i64) -> Option<Rec> {
    let end = log.high_watermark().offset();
    let mut at = Offset(offset);
    while at < end {
        let (bytes, next) = log.read_bytes(at, 1, end, true).await.unwrap()?;
        for batch in batches(bytes) {
            let batch = batch.unwrap();
            assert!(
                batch.header().last_offset() >= at.0,
                "the batch reaches the offset asked"
            );
            if batch.header().is_control() {
                continue;
            }
            for record in batch.records().unwrap() {
                let record = record.unwrap();
                if batch.offset_of(&record) >= offset {
                    return Some(Rec {
                        offset: batch.offset_of(&record),
                        key: record.key.unwrap(),
                        value: record.value,
                    });
                }
            }
        }
        at = next;
    }
    None
}

/// What the log must read as: the model compacted below `cleaned_below` (the records of
/// the cleaned section that are the latest of their key there; tombstones only if
/// `tombstones`), everything at or above it (the active segment) as written.
fn expected(model: &Model, cleaned_below: i64, tombstones: bool) -> Vec<Rec> {
    let below = Model {
        records: model
            .records
            .iter()
            .filter(|r| r.offset < cleaned_below)
            .cloned()
            .collect(),
    };
    let mut out = below.compacted(tombstones);
    out.extend(
        model
            .records
            .iter()
            .filter(|r| r.offset >= cleaned_below)
            .cloned(),
    );
    out
}

/// Each offset index entry names the batch ending at its offset, in every segment file.
fn check_index_files(dir: &Path, log_bases: &[Offset]) {
    for base in log_bases {
        let log = std::fs::read(dir.join(segment_file_name(*base, ".log"))).unwrap();
        let index = std::fs::read(dir.join(segment_file_name(*base, ".index"))).unwrap();
        for entry in index.chunks_exact(8) {
            let relative = i32::from_be_bytes(entry[..4].try_into().unwrap());
            let position = i32::from_be_bytes(entry[4..].try_into().unwrap());
            if relative == 0 && position == 0 {
                break; // the preallocated tail of the active segment's index
            }
            let h = BatchHeader::parse(&log[position as usize..]).unwrap();
            assert_eq!(
                h.last_offset(),
                base.0 + relative as i64,
                "segment {base}: index entry at position {position}"
            );
        }
    }
}

#[test]
fn cleaning_keeps_the_latest_value_of_each_key_at_its_offset_and_tombstones_until_their_horizon() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, config(), Offset(0))
            .await
            .unwrap();
        let mut model = Model::default();
        let mut rng = Rng(7);
        append_versions(&log, &mut model, &mut rng, 300, 40).await;
        settle(&log).await;
        let end = log.log_end_offset().offset().0;
        let segments_before = log.segment_count();

        let stats = log
            .clean(&tp(), Timestamp(NOW), &CleanerConfig::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stats.end_offset, Offset(end), "the whole log was dirty");
        assert!(stats.size_after < stats.size_before / 2, "{stats:?}");
        assert_eq!(log.cleaner_checkpoint_offset(), Some(Offset(end)));
        let want = expected(&model, end, true);
        assert!(
            want.iter().any(|r| r.value.is_none()),
            "the test keeps tombstones"
        );
        assert_eq!(read_all(&log).await, want);
        // A fetch from any offset, removed ones included, gets the next record kept.
        for offset in 0..end {
            let next = want.iter().find(|r| r.offset >= offset).cloned();
            assert_eq!(first_record_from(&log, offset).await, next, "from {offset}");
        }
        assert_eq!(log.log_start_offset().offset(), Offset(0));

        // Before the delete horizon nothing changes; after it the tombstones go.
        let ltc = log.to_clean(Timestamp(NOW + 10)).await.unwrap().unwrap();
        assert!(!ltc.horizon_passed && ltc.cleanable_bytes == 0);
        log.clean(&tp(), Timestamp(NOW + 10), &CleanerConfig::default())
            .await
            .unwrap();
        assert_eq!(read_all(&log).await, want);
        let later = Timestamp(NOW + RETENTION_MS as i64 + 1);
        assert!(log.to_clean(later).await.unwrap().unwrap().horizon_passed);
        log.clean(&tp(), later, &CleanerConfig::default())
            .await
            .unwrap();
        let want = expected(&model, end, false);
        assert_eq!(read_all(&log).await, want);
        // Later cleanings merge the small cleaned segments (groups up to segment.bytes).
        assert!(
            log.segment_count() < segments_before / 2,
            "{segments_before}"
        );
        assert!(!log.to_clean(later).await.unwrap().unwrap().horizon_passed);

        // More versions: the second cleaning merges small segments. The tombstones of
        // the first versions are gone for good; the new ones stay until their horizon.
        let first_end = end;
        append_versions(&log, &mut model, &mut rng, 200, 40).await;
        settle(&log).await;
        let end = log.log_end_offset().offset().0;
        log.clean(&tp(), later, &CleanerConfig::default())
            .await
            .unwrap();
        let want: Vec<Rec> = expected(&model, end, true)
            .into_iter()
            .filter(|r| r.value.is_some() || r.offset >= first_end)
            .collect();
        assert_eq!(read_all(&log).await, want);

        // The cleaned log reopens as it was, from its recovery point and from scratch.
        let bases = log.segment_base_offsets();
        log.close().await.unwrap();
        check_index_files(&path, &bases);
        for recovery_point in [log.recovery_point(), Offset(0)] {
            let log = PartitionLog::open(&path, config(), recovery_point)
                .await
                .unwrap();
            log.advance_high_watermark(log.log_end_offset().offset());
            assert_eq!(log.log_end_offset().offset(), Offset(end));
            assert_eq!(log.segment_base_offsets(), bases);
            assert_eq!(read_all(&log).await, want);
            for offset in (0..end).step_by(7) {
                let next = want.iter().find(|r| r.offset >= offset).cloned();
                assert_eq!(first_record_from(&log, offset).await, next, "from {offset}");
            }
            log.close().await.unwrap();
        }
        // Appends go on after the last offset.
        let log = PartitionLog::open(&path, config(), Offset(0))
            .await
            .unwrap();
        let one = [(Bytes::from("k"), Some(Bytes::from("v")))];
        let info = log
            .append(&[batch_of(&one, Compression::None)], LeaderEpoch(0))
            .await
            .unwrap();
        assert_eq!(info.first_offset, Offset(end));
    });
}

#[test]
fn only_durable_data_below_the_active_segment_and_the_last_stable_offset_is_cleaned() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let log = PartitionLog::open(dir.path(), config(), Offset(0))
            .await
            .unwrap();
        let mut model = Model::default();
        let mut rng = Rng(3);
        append_versions(&log, &mut model, &mut rng, 100, 10).await;
        log.advance_high_watermark(log.log_end_offset().offset());
        let ltc = log.to_clean(Timestamp(NOW)).await.unwrap().unwrap();
        let active = *log.segment_base_offsets().last().unwrap();
        assert!(ltc.first_uncleanable <= active);
        assert_eq!(ltc.first_dirty, Offset(0));
        log.clean(&tp(), Timestamp(NOW), &CleanerConfig::default())
            .await
            .unwrap();
        let end = log.log_end_offset().offset().0;
        let cleaned_below = log.cleaner_checkpoint_offset().unwrap().0;
        assert!(cleaned_below <= active.0);
        assert_eq!(read_all(&log).await, expected(&model, cleaned_below, true));
        assert!(
            read_all(&log).await.last().unwrap().offset == end - 1,
            "the active segment is untouched"
        );

        // An open transaction holds the cleaner below its first offset.
        let open = log
            .append(&[producer_batch(40, 0, &["a", "b"], true)], LeaderEpoch(0))
            .await
            .unwrap();
        append_versions(&log, &mut model, &mut rng, 100, 10).await;
        settle(&log).await;
        let ltc = log.to_clean(Timestamp(NOW)).await.unwrap().unwrap();
        assert!(
            ltc.first_uncleanable <= open.first_offset,
            "{ltc:?} {open:?}"
        );
        assert!(!log.config().cleanup_delete);
        // A topic that is not compacted has nothing for the cleaner.
        log.set_config(LogConfig {
            cleanup_compact: false,
            cleanup_delete: true,
            ..config()
        });
        assert_eq!(log.to_clean(Timestamp(NOW)).await.unwrap(), None);
        assert!(
            log.clean(&tp(), Timestamp(NOW), &CleanerConfig::default())
                .await
                .unwrap()
                .is_none()
        );
    });
}

/// A batch of producer `pid` (epoch 0) at sequence `seq`, one record per key.
fn producer_batch(pid: i64, seq: i32, keys: &[&str], transactional: bool) -> RecordBatch {
    let mut builder = BatchBuilder::new(Compression::Lz4)
        .producer(pid, 0, seq)
        .transactional(transactional);
    for key in keys {
        builder.push(
            NOW - 1_000,
            Some(key.as_bytes()),
            Some(format!("{pid}:{seq}:{key}").as_bytes()),
            &[],
        );
    }
    RecordBatch::parse(builder.build(0)).unwrap()
}

fn marker(pid: i64, commit: bool) -> RecordBatch {
    let (key, value) = Marker {
        commit,
        coordinator_epoch: 0,
    }
    .key_and_value();
    let mut builder = BatchBuilder::new(Compression::None)
        .producer(pid, 0, -1)
        .transactional(true)
        .control(true);
    builder.push(NOW - 1_000, Some(&key), Some(&value), &[]);
    RecordBatch::parse(builder.build(0)).unwrap()
}

fn remove_snapshots(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().ends_with(".snapshot") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
}

#[test]
fn aborted_data_goes_committed_data_stays_and_markers_go_only_when_kafka_drops_them() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, config(), Offset(0))
            .await
            .unwrap();
        let append = |batch: RecordBatch| {
            let log = log.clone();
            async move { log.append(&[batch], LeaderEpoch(0)).await.unwrap() }
        };
        // Producer 1 aborts a transaction, then commits one; producer 2 commits one;
        // plain records between.
        let aborted = append(producer_batch(1, 0, &["k1", "k2", "k3"], true)).await;
        let plain = append(producer_batch(3, 0, &["p1", "p2"], false)).await;
        let abort = append(marker(1, false)).await;
        let committed = append(producer_batch(2, 0, &["k1", "k4"], true)).await;
        let commit = append(marker(2, true)).await;
        let later = append(producer_batch(1, 3, &["k5"], true)).await;
        let commit_later = append(marker(1, true)).await;
        settle(&log).await;
        let txn_of =
            |h: &BatchHeader| (h.producer_id, h.is_control(), h.base_offset, h.record_count);
        let kept = |headers: &[BatchHeader]| headers.iter().map(txn_of).collect::<Vec<_>>();
        assert_eq!(log.aborted_transactions(Offset(0), Offset(100)).len(), 1);

        let cleaner = CleanerConfig::default();
        log.clean(&tp(), Timestamp(NOW), &cleaner).await.unwrap();
        let headers = read_headers(&log).await;
        // The aborted batch is gone; its marker stays while a pass saw its data; the
        // committed transactions and their markers stay.
        assert_eq!(
            kept(&headers),
            vec![
                (3, false, plain.first_offset.0, 2),
                (1, true, abort.first_offset.0, 1),
                (2, false, committed.first_offset.0, 2),
                (2, true, commit.first_offset.0, 1),
                (1, false, later.first_offset.0, 1),
                (1, true, commit_later.first_offset.0, 1),
            ]
        );
        assert!(headers.iter().all(|h| !h.has_delete_horizon()));
        assert_eq!(log.aborted_transactions(Offset(0), Offset(100)).len(), 1);
        let records = read_all(&log).await;
        assert!(records.iter().all(|r| r.offset > aborted.last_offset.0));
        assert_eq!(records.iter().filter(|r| r.key == "k1").count(), 1);

        // The next pass finds no batch of the aborted transaction: its marker gets a
        // delete horizon and leaves the transaction index.
        log.clean(&tp(), Timestamp(NOW + 1), &cleaner)
            .await
            .unwrap();
        let headers = read_headers(&log).await;
        let abort_now = headers
            .iter()
            .find(|h| h.base_offset == abort.first_offset.0)
            .expect("the marker stays until its horizon");
        assert_eq!(
            abort_now.delete_horizon(),
            Some(NOW + 1 + RETENTION_MS as i64)
        );
        assert!(log.aborted_transactions(Offset(0), Offset(100)).is_empty());
        // Past the horizon it goes; the others stay.
        log.clean(&tp(), Timestamp(NOW + 2 + RETENTION_MS as i64), &cleaner)
            .await
            .unwrap();
        assert_eq!(
            kept(&read_headers(&log).await),
            vec![
                (3, false, plain.first_offset.0, 2),
                (2, false, committed.first_offset.0, 2),
                (2, true, commit.first_offset.0, 1),
                (1, false, later.first_offset.0, 1),
                (1, true, commit_later.first_offset.0, 1),
            ]
        );
        let _ = aborted;

        // Producer state survives the cleaning and a restart without snapshots: the
        // last batches keep their sequences.
        log.close().await.unwrap();
        remove_snapshots(&path);
        let log = PartitionLog::open(&path, config(), Offset(0))
            .await
            .unwrap();
        log.advance_high_watermark(log.log_end_offset().offset());
        let one = log
            .producers()
            .into_iter()
            .find(|e| e.producer_id.0 == 1)
            .unwrap();
        assert_eq!(one.last_seq(), Some(3));
        let gap = log
            .append(&[producer_batch(1, 9, &["x"], false)], LeaderEpoch(0))
            .await;
        assert!(matches!(
            gap,
            Err(StorageError::Producer(ProducerError::OutOfOrderSequence {
                expected: 4,
                ..
            }))
        ));
    });
}

#[test]
fn the_last_batch_of_a_producer_stays_even_when_every_record_of_it_is_superseded() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        // One segment: its last batch (kept as every segment's is) is the plain one.
        let config = LogConfig {
            segment_bytes: 1 << 20,
            ..config()
        };
        let log = PartitionLog::open(&path, config.clone(), Offset(0))
            .await
            .unwrap();
        let mut seq = 0;
        for _ in 0..20 {
            log.append(
                &[producer_batch(9, seq, &["a", "b"], false)],
                LeaderEpoch(0),
            )
            .await
            .unwrap();
            seq += 2;
        }
        // A plain producer then overwrites both keys: producer 9's last batch keeps no
        // record but stays, empty, with its sequence.
        log.append(
            &[producer_batch(-1, -1, &["a", "b"], false)],
            LeaderEpoch(0),
        )
        .await
        .unwrap();
        settle(&log).await;
        log.clean(&tp(), Timestamp(NOW), &CleanerConfig::default())
            .await
            .unwrap();
        let headers = read_headers(&log).await;
        let nine: Vec<&BatchHeader> = headers.iter().filter(|h| h.producer_id == 9).collect();
        assert_eq!(nine.len(), 1, "{headers:?}");
        assert_eq!((nine[0].record_count, nine[0].base_sequence), (0, 38));
        assert_eq!(read_all(&log).await.len(), 2);
        // The producer's state comes back from the log alone.
        log.close().await.unwrap();
        remove_snapshots(&path);
        let log = PartitionLog::open(&path, config, Offset(0)).await.unwrap();
        let retry = log
            .append(&[producer_batch(9, 38, &["a", "b"], false)], LeaderEpoch(0))
            .await
            .unwrap();
        assert!(retry.duplicate, "the last batch is still recognised");
    });
}

#[test]
fn a_full_offset_map_cleans_what_it_covers_and_leaves_the_rest_dirty() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let log = PartitionLog::open(dir.path(), config(), Offset(0))
            .await
            .unwrap();
        let mut model = Model::default();
        let mut rng = Rng(11);
        append_versions(&log, &mut model, &mut rng, 200, 30).await;
        settle(&log).await;
        let end = log.log_end_offset().offset();
        // Room for 20 keys: a pass covers part of the dirty section.
        let small = CleanerConfig {
            dedupe_buffer_bytes: 23 * BYTES_PER_SLOT,
            ..CleanerConfig::default()
        };
        let mut passes = 0;
        while log.cleaner_checkpoint_offset() != Some(end) {
            let stats = log
                .clean(&tp(), Timestamp(NOW), &small)
                .await
                .unwrap()
                .unwrap();
            assert!(
                stats.end_offset < end || passes > 0,
                "the map fills up: {stats:?}"
            );
            passes += 1;
            assert!(passes < 100);
        }
        assert!(passes > 1);
        // Pass after pass, each covering the next part of the dirty section: the log ends
        // up as compacted as one pass with a big map would leave it.
        assert_eq!(read_all(&log).await, model.compacted(true));
    });
}

/// What a crash at `step` of a cleaning, then `damage`, then a reopen, leaves: every key's
/// latest value, records only where they were written, and the log cleans on.
fn crash_during_swap(step: SwapStep, damage: fn(&Path, &[Offset])) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, config(), Offset(0))
            .await
            .unwrap();
        let mut model = Model::default();
        let mut rng = Rng(5);
        append_versions(&log, &mut model, &mut rng, 150, 25).await;
        settle(&log).await;
        log.clean(&tp(), Timestamp(NOW), &CleanerConfig::default())
            .await
            .unwrap();
        // The next cleaning merges the small cleaned segments: the swap replaces several.
        append_versions(&log, &mut model, &mut rng, 100, 25).await;
        settle(&log).await;
        let bases = log.segment_base_offsets();
        let recovery_point = log.recovery_point();
        let result = log.clean_stopping_at(&tp(), Timestamp(NOW), step).await;
        assert!(
            matches!(result, Err(CleanError::Stopped(s)) if s == step),
            "{result:?}"
        );
        // The process dies here.
        drop(log);
        damage(&path, &bases);
        for recovery_point in [recovery_point, Offset(0)] {
            let log = PartitionLog::open(&path, config(), recovery_point)
                .await
                .unwrap();
            log.advance_high_watermark(log.log_end_offset().offset());
            let read = read_all(&log).await;
            for latest in model.compacted(true) {
                assert!(read.contains(&latest), "{step:?}: lost {latest:?}");
            }
            for r in &read {
                assert_eq!(
                    model.records.iter().find(|m| m.offset == r.offset),
                    Some(r),
                    "{step:?}: a record that was never written there"
                );
            }
            let leftovers: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted")
                })
                .collect();
            assert!(leftovers.is_empty(), "{step:?}: {leftovers:?}");
            log.close().await.unwrap();
        }
        let log = PartitionLog::open(&path, config(), Offset(0))
            .await
            .unwrap();
        log.advance_high_watermark(log.log_end_offset().offset());
        log.clean(&tp(), Timestamp(NOW), &CleanerConfig::default())
            .await
            .unwrap();
        let end = log.log_end_offset().offset().0;
        assert_eq!(
            read_all(&log).await,
            expected(&model, end, true),
            "{step:?}"
        );
    });
}

fn no_damage(_: &Path, _: &[Offset]) {}

fn rename(dir: &Path, from: &str, to: &str) {
    std::fs::rename(dir.join(from), dir.join(to)).unwrap();
}

#[test]
fn a_crash_after_the_cleaned_files_are_written_keeps_the_old_segments() {
    crash_during_swap(SwapStep::Cleaned, no_damage);
}

#[test]
fn a_crash_after_the_swap_files_are_durable_completes_the_swap_at_open() {
    crash_during_swap(SwapStep::Swap, no_damage);
    // The crash came while the old segments were being renamed `.deleted`.
    crash_during_swap(SwapStep::Swap, |dir, bases| {
        let second = segment_file_name(bases[1], ".log");
        rename(dir, &second, &format!("{second}.deleted"));
    });
    crash_during_swap(SwapStep::Swap, |dir, bases| {
        let first = segment_file_name(bases[0], ".log");
        rename(dir, &first, &format!("{first}.deleted"));
        let index = segment_file_name(bases[0], ".index");
        rename(dir, &index, &format!("{index}.deleted"));
    });
}

#[test]
fn a_crash_after_the_in_memory_swap_completes_it_at_open() {
    crash_during_swap(SwapStep::Replaced, no_damage);
}

#[test]
fn a_crash_after_the_old_segments_were_retired_completes_the_swap_at_open() {
    crash_during_swap(SwapStep::Retired, no_damage);
    // The crash came while the `.swap` files got their final names: the log first.
    crash_during_swap(SwapStep::Retired, |dir, bases| {
        let log = segment_file_name(bases[0], ".log");
        rename(dir, &format!("{log}.swap"), &log);
    });
    crash_during_swap(SwapStep::Retired, |dir, bases| {
        for suffix in [".log", ".index"] {
            let name = segment_file_name(bases[0], suffix);
            rename(dir, &format!("{name}.swap"), &name);
        }
    });
}

#[test]
fn appends_and_reads_go_on_while_a_log_is_cleaned() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let log = PartitionLog::open(dir.path(), config(), Offset(0))
            .await
            .unwrap();
        let mut model = Model::default();
        let mut rng = Rng(13);
        append_versions(&log, &mut model, &mut rng, 300, 50).await;
        settle(&log).await;
        let end = log.log_end_offset().offset();
        let done = Rc::new(std::cell::Cell::new(false));
        let cleaning = {
            let log = log.clone();
            let done = done.clone();
            glommio::spawn_local(async move {
                // Paced, so the cleaning spans many appends and reads.
                let slow = CleanerConfig {
                    io_max_bytes_per_second: 400_000.0,
                    ..CleanerConfig::default()
                };
                let stats = log
                    .clean(&tp(), Timestamp(NOW), &slow)
                    .await
                    .unwrap()
                    .unwrap();
                done.set(true);
                stats
            })
        };
        let mut appended = Vec::new();
        let mut reads = 0;
        while !done.get() {
            let info = log
                .append(
                    &[batch_of(
                        &[(Bytes::from("live"), Some(Bytes::from("v")))],
                        Compression::None,
                    )],
                    LeaderEpoch(0),
                )
                .await
                .unwrap();
            appended.push(info.first_offset.0);
            log.advance_high_watermark(log.log_end_offset().offset());
            let from = (rng.next() % end.0 as u64) as i64;
            assert!(first_record_from(&log, from).await.is_some());
            reads += 1;
            shards::rt::sleep(std::time::Duration::from_millis(2)).await;
        }
        let stats = cleaning.await;
        assert_eq!(stats.end_offset, end);
        assert!(
            appended.len() > 3 && reads > 3,
            "{} appends",
            appended.len()
        );
        assert!(
            appended.windows(2).all(|w| w[1] == w[0] + 1),
            "contiguous offsets"
        );
        assert_eq!(appended[0], end.0);
        let read = read_all(&log).await;
        let (below, live): (Vec<Rec>, Vec<Rec>) = read.into_iter().partition(|r| r.offset < end.0);
        assert_eq!(below, expected(&model, end.0, true));
        assert_eq!(live.len(), appended.len());
    });
}
