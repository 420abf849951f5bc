//! Specifications of the partition log, as tests. The random operation sequences against a
//! model are in `model_tests.rs`; the 1 GiB reopen test in `large_tests.rs`.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use tempfile::TempDir;

use super::records::{
    BatchBuilder, BatchHeader, Compression, LEADER_STAMPED_LEN, RecordBatch, TimestampType, batches,
};
use super::testing::block_on;
use super::*;

pub(crate) fn batch_with(timestamps: &[i64], value_len: usize, tag: u8) -> RecordBatch {
    let mut builder = BatchBuilder::new(Compression::None);
    for (i, ts) in timestamps.iter().enumerate() {
        builder.push(
            *ts,
            Some(&[tag; 3]),
            Some(&vec![tag.wrapping_add(i as u8); value_len]),
            &[],
        );
    }
    batches(builder.build(0)).next().unwrap().unwrap()
}

pub(crate) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 300,
        segment_index_bytes: 1024,
        ..LogConfig::default()
    }
}

/// Parses the batch headers of a read.
pub(crate) fn headers(bytes: &Bytes) -> Vec<BatchHeader> {
    batches(bytes.clone())
        .map(|b| *b.expect("a read returns whole batches").header())
        .collect()
}

/// Every batch below `end`, read 1 MiB at a time from offset 0, checking that offsets run
/// from batch to batch and read to read without a hole.
async fn read_batches(log: &PartitionLog, end: Offset) -> Vec<RecordBatch> {
    let mut read = Vec::new();
    let mut from = Offset(0);
    while from < end {
        let (bytes, next) = log
            .read_bytes(from, 1 << 20, end, true)
            .await
            .unwrap()
            .unwrap();
        for batch in batches(bytes) {
            let batch = batch.unwrap();
            assert_eq!(batch.header().base_offset, from.0, "a hole at {from}");
            from = Offset(batch.header().last_offset() + 1);
            read.push(batch);
        }
        assert_eq!(from, next);
    }
    read
}

async fn append_one(log: &PartitionLog, timestamps: &[i64], len: usize) -> AppendInfo {
    log.append(&[batch_with(timestamps, len, 7)], LeaderEpoch(1))
        .await
        .unwrap()
}

#[test]
fn append_assigns_contiguous_offsets_and_rewrites_base_offset_and_epoch() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let log = PartitionLog::open(dir.path(), LogConfig::default(), Offset(0))
            .await
            .unwrap();
        let a = log
            .append(&[batch_with(&[10, 11, 12], 20, 1)], LeaderEpoch(4))
            .await
            .unwrap();
        let b = log
            .append(
                &[batch_with(&[13], 20, 2), batch_with(&[9, 14], 20, 3)],
                LeaderEpoch(4),
            )
            .await
            .unwrap();
        assert_eq!((a.first_offset, a.last_offset), (Offset(0), Offset(2)));
        assert_eq!((b.first_offset, b.last_offset), (Offset(3), Offset(5)));
        assert_eq!(b.max_timestamp, Timestamp(14));
        assert_eq!(b.offset_of_max_timestamp, Offset(5));
        assert_eq!(b.log_append_time, None);
        assert_eq!(log.log_end_offset(), LogEndOffset(Offset(6)));
        // Nothing is visible before the high watermark moves.
        assert_eq!(
            log.read(Offset(0), 1 << 20, log.high_watermark().offset(), true)
                .await
                .unwrap()
                .map(|r| r.length),
            None
        );
        log.advance_high_watermark(Offset(6));
        let (bytes, next) = log
            .read_bytes(Offset(0), 1 << 20, Offset(6), false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next, Offset(6));
        let hs = headers(&bytes);
        assert_eq!(
            hs.iter()
                .map(|h| (h.base_offset, h.last_offset()))
                .collect::<Vec<_>>(),
            vec![(0, 2), (3, 3), (4, 5)]
        );
        assert!(hs.iter().all(|h| h.partition_leader_epoch == 4));
        for batch in batches(bytes) {
            batch
                .unwrap()
                .verify_crc()
                .expect("CRC does not cover offset and epoch");
        }
        assert_eq!(
            log.leader_epochs().entries(),
            [EpochEntry {
                epoch: LeaderEpoch(4),
                start_offset: Offset(0)
            }]
        );
    });
}

#[test]
fn concurrent_appends_get_contiguous_offsets_in_call_order_and_readers_never_see_holes() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let log = PartitionLog::open(dir.path(), small_config(), Offset(0))
            .await
            .unwrap();
        let results = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..64u8 {
            let log = log.clone();
            let results = results.clone();
            tasks.push(glommio::spawn_local(async move {
                let count = 1 + (i as usize % 4);
                let timestamps: Vec<i64> = (0..count as i64).collect();
                let info = log
                    .append(
                        &[batch_with(&timestamps, 40 + i as usize, i)],
                        LeaderEpoch(0),
                    )
                    .await
                    .unwrap();
                results.borrow_mut().push((i, info));
            }));
        }
        // A reader polling concurrently only ever sees whole, contiguous batches.
        let reader = {
            let log = log.clone();
            glommio::spawn_local(async move {
                for _ in 0..200 {
                    read_batches(&log, log.log_end_offset().offset()).await;
                    glommio::executor().yield_now().await;
                }
            })
        };
        for task in tasks {
            task.await;
        }
        reader.await;
        let mut results = results.borrow().clone();
        results.sort_by_key(|(_, info)| info.first_offset);
        // Call order is spawn order here: offsets follow it.
        let order: Vec<u8> = results.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, (0..64).collect::<Vec<_>>());
        for pair in results.windows(2) {
            assert_eq!(pair[0].1.last_offset.next(), pair[1].1.first_offset);
        }
        assert!(log.segment_count() > 1, "small segments rolled");
    });
}

#[test]
fn read_starts_at_the_batch_containing_the_offset_and_respects_limits() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let config = LogConfig {
            index_interval_bytes: 100,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.path(), config, Offset(0))
            .await
            .unwrap();
        for _ in 0..50 {
            append_one(&log, &[1, 2, 3, 4], 30).await;
        }
        log.advance_high_watermark(Offset(200));
        let size = {
            let (bytes, _) = log
                .read_bytes(Offset(0), 1, Offset(200), true)
                .await
                .unwrap()
                .unwrap();
            bytes.len()
        };
        // Offset 41 is in the batch [40, 43].
        let range = log
            .read(Offset(41), 3 * size, Offset(200), false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(range.first_offset, Offset(40));
        assert_eq!(range.length as usize, 3 * size);
        assert_eq!(range.next_offset, Offset(52));
        // max_bytes below one batch: nothing, unless at least one batch is asked for.
        assert!(
            log.read(Offset(41), size - 1, Offset(200), false)
                .await
                .unwrap()
                .is_none()
        );
        let one = log
            .read(Offset(41), size - 1, Offset(200), true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((one.length as usize, one.next_offset), (size, Offset(44)));
        // The upper bound cuts before the batch that reaches it.
        let bounded = log
            .read(Offset(41), 1 << 20, Offset(50), false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bounded.next_offset, Offset(48));
        assert!(
            log.read(Offset(48), 1 << 20, Offset(50), true)
                .await
                .unwrap()
                .is_none()
        );
        // Out of range: below the log start or above the log end offset.
        assert!(matches!(
            log.read(Offset(201), 100, Offset(200), true).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert!(
            log.read(Offset(200), 100, Offset(200), true)
                .await
                .unwrap()
                .is_none()
        );
        assert!(range.raw_fd() >= 0);
        assert!(range.path().ends_with("00000000000000000000.log"));
    });
}

#[test]
fn segments_roll_at_segment_bytes_with_kafka_file_names() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, small_config(), Offset(0))
            .await
            .unwrap();
        for _ in 0..60 {
            append_one(&log, &[5, 6], 100).await;
        }
        log.flush().await.unwrap();
        // Rolled segments are trimmed by background syncs.
        log.quiesce().await;
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 3, "{bases:?}");
        for base in &bases {
            for suffix in [".log", ".index", ".timeindex"] {
                let name = segment_file_name(*base, suffix);
                assert!(path.join(&name).exists(), "{name}");
            }
        }
        // Rolled segments stay within segment.bytes; their indices are trimmed to their
        // entries; the active one's are preallocated.
        for base in &bases[..bases.len() - 1] {
            let log_len = std::fs::metadata(path.join(segment_file_name(*base, ".log")))
                .unwrap()
                .len();
            assert!(log_len <= 4096);
            let index_len = std::fs::metadata(path.join(segment_file_name(*base, ".index")))
                .unwrap()
                .len();
            let (entries, _) = log.index_entries(*base).await.unwrap().unwrap();
            assert_eq!(index_len, entries.len() as u64 * 8);
        }
        let active = bases.last().unwrap();
        let index_len = std::fs::metadata(path.join(segment_file_name(*active, ".index")))
            .unwrap()
            .len();
        assert_eq!(index_len, 1024);
        log.close().await.unwrap();
        let index_len = std::fs::metadata(path.join(segment_file_name(*active, ".index")))
            .unwrap()
            .len();
        assert!(index_len < 1024, "close trims the active segment's index");
    });
}

#[test]
fn index_built_while_appending_equals_index_rebuilt_by_recovery() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let config = LogConfig {
            index_interval_bytes: 150,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(&path, config.clone(), Offset(0))
            .await
            .unwrap();
        for i in 0..40 {
            let ts = [100 + (i * 7) % 13, 90 + i];
            log.append(&[batch_with(&ts, 20 + i as usize, 1)], LeaderEpoch(0))
                .await
                .unwrap();
        }
        let appended = log.index_entries(Offset(0)).await.unwrap().unwrap();
        assert!(appended.0.len() > 5);
        log.close().await.unwrap();
        // Recovery from offset 0 rebuilds both indices from the log.
        std::fs::remove_file(path.join("00000000000000000000.index")).unwrap();
        let reopened = PartitionLog::open(&path, config, Offset(0)).await.unwrap();
        let rebuilt = reopened.index_entries(Offset(0)).await.unwrap().unwrap();
        assert_eq!(appended, rebuilt);
    });
}

#[test]
fn recovery_truncates_torn_batch_at_segment_tail() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, LogConfig::default(), Offset(0))
            .await
            .unwrap();
        for _ in 0..10 {
            append_one(&log, &[1, 2], 50).await;
        }
        let durable = log.checkpoint().await.unwrap();
        assert_eq!(durable, Offset(20));
        append_one(&log, &[3], 50).await;
        drop(log);
        // Tear the last (unflushed) batch in the middle.
        let file = path.join("00000000000000000000.log");
        let len = std::fs::metadata(&file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len - 20)
            .unwrap();
        let log = PartitionLog::open(&path, LogConfig::default(), durable)
            .await
            .unwrap();
        assert_eq!(log.log_end_offset().offset(), Offset(20));
        assert!(std::fs::metadata(&file).unwrap().len() < len - 20);
        // Appending continues at the right offset.
        let info = append_one(&log, &[4], 50).await;
        assert_eq!(info.first_offset, Offset(20));
    });
}

#[test]
fn recovery_stops_at_a_corrupt_batch_and_drops_later_segments() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, small_config(), Offset(0))
            .await
            .unwrap();
        for _ in 0..40 {
            append_one(&log, &[1], 200).await;
        }
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 3);
        drop(log);
        // Flip a byte inside the second segment's second batch.
        let second = path.join(segment_file_name(bases[1], ".log"));
        let mut bytes = std::fs::read(&second).unwrap();
        let first_size = BatchHeader::parse(&bytes).unwrap().size();
        bytes[first_size + 100] ^= 0xff;
        std::fs::write(&second, &bytes).unwrap();
        let log = PartitionLog::open(&path, small_config(), Offset(0))
            .await
            .unwrap();
        assert_eq!(log.segment_base_offsets(), bases[..2].to_vec());
        assert_eq!(log.log_end_offset().offset(), bases[1].next());
        assert!(!path.join(segment_file_name(bases[2], ".log")).exists());
    });
}

#[test]
fn flush_waiters_share_one_fdatasync() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let log = PartitionLog::open(dir.path(), LogConfig::default(), Offset(0))
            .await
            .unwrap();
        append_one(&log, &[1], 10).await;
        log.flush().await.unwrap();
        let before = log.syncs_completed();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let info = append_one(&log, &[2], 10).await;
                log.wait_durable(info.last_offset).await.unwrap();
                assert!(log.durable_offset() > info.last_offset);
            }));
        }
        for task in tasks {
            task.await;
        }
        let syncs = log.syncs_completed() - before;
        assert!(syncs <= 3, "20 concurrent waiters used {syncs} syncs");
        assert_eq!(log.durable_offset(), Offset(21));
    });
}

#[test]
fn flush_messages_policy_makes_appends_durable() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let config = LogConfig {
            flush_messages: 3,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.path(), config, Offset(0))
            .await
            .unwrap();
        append_one(&log, &[1, 2], 10).await;
        assert_eq!(log.durable_offset(), Offset(0));
        append_one(&log, &[3], 10).await;
        assert_eq!(log.durable_offset(), Offset(3));
    });
}

#[test]
fn flush_ms_policy_flushes_in_the_background() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let config = LogConfig {
            flush_ms: 20,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.path(), config, Offset(0))
            .await
            .unwrap();
        append_one(&log, &[1], 10).await;
        assert_eq!(log.durable_offset(), Offset(0));
        glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(log.durable_offset(), Offset(1));
    });
}

#[test]
fn watch_wakes_a_long_poll_on_append_and_on_high_watermark() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let log = PartitionLog::open(dir.path(), LogConfig::default(), Offset(0))
            .await
            .unwrap();
        let waiter = {
            let log = log.clone();
            glommio::spawn_local(async move {
                loop {
                    let changed = log.watch();
                    if log.high_watermark().offset() >= Offset(2) {
                        return;
                    }
                    changed.await;
                }
            })
        };
        let info = append_one(&log, &[1, 2], 10).await;
        log.advance_high_watermark(info.last_offset.next());
        waiter.await;
    });
}

#[test]
fn large_batches_written_from_the_request_read_back_byte_for_byte_and_recover() {
    // A batch of 4 KiB or more is written from the request's buffer (only its first bytes
    // are copied, to be stamped); a smaller one is copied. Appends made together share
    // one write of mixed pieces; a write above 1 MiB goes through the blocking pool, and
    // one of more than 1024 pieces takes several pwritev(2) calls.
    let dir = TempDir::new().unwrap();
    let sizes = [20, 5000, 20, 100_000, 4096, 20, 300_000, 10];
    let mut sent: Vec<RecordBatch> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| batch_with(&[i as i64], len, i as u8))
        .collect();
    let many: Vec<RecordBatch> = (0..600)
        .map(|i| batch_with(&[i], 4100, (i % 250) as u8))
        .collect();
    sent.extend(many.iter().cloned());
    let expected = sent.clone();
    let count = sent.len() as i64;
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, LogConfig::default(), Offset(0))
            .await
            .unwrap();
        let appends = sent[..sizes.len()]
            .iter()
            .map(|batch| {
                Box::pin(log.append(std::slice::from_ref(batch), LeaderEpoch(3)))
                    as std::pin::Pin<Box<dyn std::future::Future<Output = Result<AppendInfo>>>>
            })
            .collect();
        for (i, info) in crate::futures::join_all(appends)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(info.unwrap().first_offset, Offset(i as i64));
        }
        let info = log.append(&many, LeaderEpoch(3)).await.unwrap();
        assert_eq!(info.first_offset, Offset(sizes.len() as i64));
        assert_eq!(info.last_offset, Offset(count - 1));
        log.close().await.unwrap();
    });
    // Reopened, the log recovers every batch, each with the bytes the producer sent
    // behind the base offset and leader epoch it was stamped with.
    block_on(async move {
        let log = PartitionLog::open(dir.path(), LogConfig::default(), Offset(0))
            .await
            .unwrap();
        let end = Offset(expected.len() as i64);
        assert_eq!(log.log_end_offset(), LogEndOffset(end));
        log.advance_high_watermark(end);
        let read = read_batches(&log, end).await;
        assert_eq!(read.len(), expected.len());
        for (i, (got, sent)) in read.iter().zip(&expected).enumerate() {
            assert_eq!(got.header().base_offset, i as i64);
            assert_eq!(got.header().partition_leader_epoch, 3);
            assert_eq!(
                got.bytes()[LEADER_STAMPED_LEN..],
                sent.bytes()[LEADER_STAMPED_LEN..],
                "batch {i}"
            );
            got.verify_crc().unwrap();
        }
    });
}

#[test]
fn log_append_time_stamps_batches_and_keeps_crcs_valid() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let config = LogConfig {
            message_timestamp_type: MessageTimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.path(), config, Offset(0))
            .await
            .unwrap();
        let before = Timestamp::now();
        let info = append_one(&log, &[1, 2, 3], 10).await;
        let stamped = info.log_append_time.unwrap();
        assert!(stamped >= before);
        assert_eq!(info.max_timestamp, stamped);
        log.advance_high_watermark(Offset(3));
        let found = log
            .offset_for_timestamp(Timestamp(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.offset, found.timestamp), (Offset(0), stamped));
        // A large batch, otherwise written from the request's buffer, is copied whole:
        // the time goes into bytes its CRC covers.
        let large = append_one(&log, &[4], 8000).await;
        log.advance_high_watermark(Offset(4));
        let read = read_batches(&log, Offset(4)).await;
        assert_eq!(read.len(), 2);
        assert!(read[1].bytes().len() > 8000);
        for (batch, stamped) in read.iter().zip([stamped, large.log_append_time.unwrap()]) {
            batch.verify_crc().unwrap();
            assert_eq!(
                batch.header().timestamp_type(),
                TimestampType::LogAppendTime
            );
            assert_eq!(batch.header().max_timestamp, stamped.0);
        }
    });
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after_the_timestamp() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let log = PartitionLog::open(dir.path(), small_config(), Offset(0))
            .await
            .unwrap();
        // Timestamps go up by 10 per record, with one record out of order in each batch.
        for i in 0..60i64 {
            let base = i * 30;
            append_one(&log, &[base + 20, base, base + 10], 60).await;
        }
        log.advance_high_watermark(log.log_end_offset().offset());
        assert!(log.segment_count() > 2);
        let lookup = |ts| {
            let log = log.clone();
            async move {
                log.offset_for_timestamp(Timestamp(ts))
                    .await
                    .unwrap()
                    .map(|f| (f.offset.0, f.timestamp.0))
            }
        };
        assert_eq!(lookup(-5).await, Some((0, 20)));
        assert_eq!(lookup(15).await, Some((0, 20)));
        assert_eq!(lookup(21).await, Some((3, 50)));
        assert_eq!(lookup(900).await, Some((90, 920)));
        assert_eq!(lookup(901).await, Some((90, 920)));
        assert_eq!(lookup(1790).await, Some((177, 1790)));
        assert_eq!(lookup(1791).await, None);
        let max = log.max_timestamp_offset().await.unwrap().unwrap();
        assert_eq!((max.offset, max.timestamp), (Offset(177), Timestamp(1790)));
        // Records above the high watermark are not found.
        log.truncate_to(Offset(90)).await.unwrap();
        append_one(&log, &[5000], 10).await;
        assert_eq!(lookup(1000).await, None);
        assert_eq!(
            log.max_timestamp_offset().await.unwrap().unwrap().offset,
            Offset(87)
        );
        log.advance_high_watermark(Offset(91));
        assert_eq!(lookup(1000).await, Some((90, 5000)));
        assert_eq!(
            log.max_timestamp_offset().await.unwrap().unwrap().offset,
            Offset(90)
        );
    });
}

#[test]
fn truncate_to_cuts_at_the_batch_containing_the_offset_durably() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, small_config(), Offset(0))
            .await
            .unwrap();
        for epoch in 0..40 {
            log.append(&[batch_with(&[1, 2], 100, 1)], LeaderEpoch(epoch / 10))
                .await
                .unwrap();
        }
        log.advance_high_watermark(Offset(80));
        log.flush().await.unwrap();
        let segments = log.segment_count();
        // Offset 41 is inside the batch [40, 41]: the cut is at 40.
        let end = log.truncate_to(Offset(41)).await.unwrap();
        assert_eq!(end.offset(), Offset(40));
        assert_eq!(log.high_watermark().offset(), Offset(40));
        assert_eq!(log.recovery_point(), Offset(40));
        assert!(log.segment_count() < segments);
        assert_eq!(log.leader_epochs().latest().unwrap().epoch, LeaderEpoch(1));
        let info = log
            .append(&[batch_with(&[3], 10, 2)], LeaderEpoch(7))
            .await
            .unwrap();
        assert_eq!(info.first_offset, Offset(40));
        log.close().await.unwrap();
        let log = PartitionLog::open(&path, small_config(), Offset(0))
            .await
            .unwrap();
        assert_eq!(log.log_end_offset().offset(), Offset(41));
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(3)),
            Some((LeaderEpoch(1), Offset(40)))
        );
        // Truncating below the log start empties the log and restarts it there.
        log.truncate_to(Offset(0)).await.unwrap();
        assert_eq!(log.log_end_offset().offset(), Offset(0));
        assert_eq!(log.segment_count(), 1);
    });
}

#[test]
fn delete_segments_before_removes_whole_segments_below_the_high_watermark() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, small_config(), Offset(0))
            .await
            .unwrap();
        for _ in 0..60 {
            append_one(&log, &[1], 200).await;
        }
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 4);
        // Nothing goes while the high watermark is at 0.
        assert_eq!(log.delete_segments_before(Offset(1000)).await.unwrap(), 0);
        log.advance_high_watermark(Offset(60));
        assert_eq!(log.delete_segments_before(bases[2]).await.unwrap(), 2);
        assert_eq!(log.log_start_offset().offset(), bases[2]);
        assert!(!path.join(segment_file_name(bases[0], ".log")).exists());
        assert!(matches!(
            log.read(Offset(0), 100, Offset(60), true).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        // Never the active segment.
        log.delete_segments_before(Offset(1000)).await.unwrap();
        assert_eq!(log.segment_count(), 1);
        log.close().await.unwrap();
        let log = PartitionLog::open(&path, small_config(), Offset(60))
            .await
            .unwrap();
        assert_eq!(log.log_start_offset().offset(), *bases.last().unwrap());
    });
}

#[test]
fn leader_epochs_are_checkpointed_in_kafkas_format() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, LogConfig::default(), Offset(0))
            .await
            .unwrap();
        log.append(&[batch_with(&[1], 10, 1)], LeaderEpoch(2))
            .await
            .unwrap();
        log.append(&[batch_with(&[1], 10, 1)], LeaderEpoch(5))
            .await
            .unwrap();
        log.flush().await.unwrap();
        let text = std::fs::read_to_string(path.join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n2\n2 0\n5 1\n");
    });
}

#[test]
fn invalid_batches_and_oversized_batches_are_client_errors() {
    let dir = TempDir::new().unwrap();
    block_on(async move {
        let config = LogConfig {
            max_message_bytes: 200,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.path(), config, Offset(0))
            .await
            .unwrap();
        let error = log
            .append(&[batch_with(&[1], 500, 1)], LeaderEpoch(0))
            .await
            .unwrap_err();
        assert!(matches!(error, StorageError::RecordTooLarge { .. }));
        assert!(!error.is_environment());
        let mut raw = batch_with(&[1, 2], 10, 1).into_bytes().to_vec();
        raw[23..27].copy_from_slice(&5i32.to_be_bytes()); // last offset delta ≠ count - 1
        let bad = batches(Bytes::from(raw)).next().unwrap().unwrap();
        let error = log.append(&[bad], LeaderEpoch(0)).await.unwrap_err();
        assert!(matches!(error, StorageError::InvalidBatch { batch: 0, .. }));
        assert_eq!(log.log_end_offset().offset(), Offset(0));
    });
}

#[test]
fn checkpoint_files_are_written_atomically_and_read_back() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let file = path.join(RECOVERY_POINT_CHECKPOINT);
        assert_eq!(
            OffsetCheckpoint::read(&file).await.unwrap(),
            OffsetCheckpoint::default()
        );
        let checkpoint = OffsetCheckpoint {
            entries: vec![(TopicPartition::new("t", 3), Offset(99))],
        };
        checkpoint.write(&file).await.unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "0\n1\nt 3 99\n");
        assert_eq!(OffsetCheckpoint::read(&file).await.unwrap(), checkpoint);
        let metadata = PartitionMetadata {
            topic_id: crate::protocol::wire::Uuid([7; 16]),
        };
        let meta_file = path.join(PARTITION_METADATA);
        metadata.write(&meta_file).await.unwrap();
        assert_eq!(
            PartitionMetadata::read(&meta_file).await.unwrap(),
            Some(metadata)
        );
    });
}

/// A batch of `count` records from producer `pid` (epoch 0) at sequence `seq`.
fn producer_batch(pid: i64, seq: i32, count: usize, transactional: bool) -> RecordBatch {
    let mut builder = BatchBuilder::new(Compression::None)
        .producer(pid, 0, seq)
        .transactional(transactional);
    for i in 0..count {
        builder.push(1_000 + i as i64, Some(b"k"), Some(&[7u8; 200]), &[]);
    }
    batches(builder.build(0)).next().unwrap().unwrap()
}

fn abort_marker(pid: i64) -> RecordBatch {
    let (key, value) = Marker {
        commit: false,
        coordinator_epoch: 0,
    }
    .key_and_value();
    let mut builder = BatchBuilder::new(Compression::None)
        .producer(pid, 0, -1)
        .transactional(true)
        .control(true);
    builder.push(2_000, Some(&key), Some(&value), &[]);
    batches(builder.build(0)).next().unwrap().unwrap()
}

#[test]
fn producer_state_survives_a_clean_close_and_a_crash_with_rolls() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        // Small segments: the producer's batches span several rolls (snapshots).
        let log = PartitionLog::open(&path, small_config(), Offset(0))
            .await
            .unwrap();
        let mut seq = 0;
        for _ in 0..40 {
            log.append(&[producer_batch(9, seq, 3, false)], LeaderEpoch(0))
                .await
                .unwrap();
            seq += 3;
        }
        // An aborted transaction of another producer, and one left open.
        log.append(&[producer_batch(5, 0, 2, true)], LeaderEpoch(0))
            .await
            .unwrap();
        log.append(&[abort_marker(5)], LeaderEpoch(0))
            .await
            .unwrap();
        let open = log
            .append(&[producer_batch(6, 0, 1, true)], LeaderEpoch(0))
            .await
            .unwrap();
        assert!(log.segment_count() > 3, "the appends rolled segments");
        let snapshots = |path: &std::path::Path| {
            std::fs::read_dir(path)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".snapshot")
                })
                .count()
        };
        assert!(
            snapshots(&path) >= 1 && snapshots(&path) <= 2,
            "rolls write snapshots, two kept"
        );
        let check = |log: &PartitionLog, open_at: Offset| {
            let entries = log.producers();
            let nine = entries.iter().find(|e| e.producer_id.0 == 9).unwrap();
            assert_eq!(nine.last_seq(), Some(119));
            assert_eq!(log.last_stable_offset().offset(), open_at);
            let aborted = log.aborted_transactions(Offset(0), Offset(i64::MAX));
            assert_eq!(aborted.len(), 1);
            assert_eq!(aborted[0].producer_id.0, 5);
        };
        log.advance_high_watermark(log.log_end_offset().offset());
        check(&log, open.first_offset);
        // A retry of the last batch is recognised after a clean close...
        log.close().await.unwrap();
        let log = PartitionLog::open(&path, small_config(), log.recovery_point())
            .await
            .unwrap();
        log.advance_high_watermark(log.log_end_offset().offset());
        check(&log, open.first_offset);
        let retry = log
            .append(&[producer_batch(9, 117, 3, false)], LeaderEpoch(0))
            .await
            .unwrap();
        assert!(retry.duplicate);
        // ...and after a crash that loses every snapshot, from the log alone.
        drop(log);
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().ends_with(".snapshot") {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        let log = PartitionLog::open(&path, small_config(), Offset(0))
            .await
            .unwrap();
        log.advance_high_watermark(log.log_end_offset().offset());
        let gap = log
            .append(&[producer_batch(9, 200, 1, false)], LeaderEpoch(0))
            .await;
        assert!(matches!(
            gap,
            Err(StorageError::Producer(
                ProducerError::OutOfOrderSequence { .. }
            ))
        ));
        assert_eq!(log.last_stable_offset().offset(), open.first_offset);
    });
}

#[test]
fn a_clean_close_leaves_a_snapshot_at_the_log_end_even_without_producers() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, LogConfig::default(), Offset(0))
            .await
            .unwrap();
        for _ in 0..5 {
            append_one(&log, &[1, 2], 50).await;
        }
        log.close().await.unwrap();
        // The next open replays nothing: the snapshot covers the whole log.
        assert!(path.join("00000000000000000010.snapshot").exists());
    });
}
