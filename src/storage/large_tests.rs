//! A large log across many segments: every offset stays readable after reopening, and
//! opening costs what lies after the recovery point, not the log.
//!
//! `CORELOG_LARGE_LOG_BYTES` sets the log size (default 1 GiB, about 3 s in a debug build
//! with the page cache warm; set it lower on a small disk). See the timings with
//! `cargo test -p corelog storage::large -- --nocapture`.

use std::time::Instant;

use tempfile::TempDir;

use super::records::{BatchBuilder, Compression, RecordBatch, batches};
use super::testing::block_on;
use super::*;

const RECORDS_PER_BATCH: usize = 256;
const VALUE_BYTES: usize = 1000;

fn big_batch() -> RecordBatch {
    let mut builder = BatchBuilder::new(Compression::None);
    let value = vec![0x42u8; VALUE_BYTES];
    for i in 0..RECORDS_PER_BATCH {
        builder.push(1_700_000_000_000 + i as i64, None, Some(&value), &[]);
    }
    batches(builder.build(0)).next().unwrap().unwrap()
}

/// Reads the whole log in 1 MiB ranges and checks that offsets run without a gap from the
/// log start to the log end. Returns the bytes read.
async fn read_everything(log: &PartitionLog) -> u64 {
    let end = log.log_end_offset().offset();
    let mut from = log.log_start_offset().offset();
    let mut bytes_read = 0;
    while from < end {
        let (bytes, next) = log
            .read_bytes(from, 1 << 20, end, true)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("offset {from} is readable"));
        bytes_read += bytes.len() as u64;
        for batch in batches(bytes) {
            let h = *batch.unwrap().header();
            assert_eq!(h.base_offset, from.0, "offsets are contiguous");
            from = Offset(h.last_offset() + 1);
        }
        assert_eq!(from, next);
    }
    bytes_read
}

/// Drops the log's clean pages from the page cache so the next open reads from the disk.
fn evict_page_cache(dir: &std::path::Path) {
    use std::os::fd::AsRawFd;
    for entry in std::fs::read_dir(dir).unwrap() {
        let file = std::fs::File::open(entry.unwrap().path()).unwrap();
        // SAFETY: a plain advisory call on a descriptor we own.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
}

#[test]
fn reopening_costs_time_proportional_to_the_tail_not_the_log() {
    let total: u64 = std::env::var("CORELOG_LARGE_LOG_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("big-0");
    block_on(async move {
        let config = LogConfig {
            segment_bytes: ((total / 32).max(4 << 20)) as u32,
            max_message_bytes: 1 << 20,
            ..LogConfig::default()
        };
        let batch = big_batch();
        let batch_bytes = batch.bytes().len() as u64;
        let log = PartitionLog::open(&path, config.clone(), Offset(0))
            .await
            .unwrap();
        let started = Instant::now();
        let mut written = 0;
        while written < total {
            log.append(std::slice::from_ref(&batch), LeaderEpoch(0))
                .await
                .unwrap();
            written += batch_bytes;
        }
        log.flush().await.unwrap();
        let write_time = started.elapsed();
        // What the server writes to recovery-point-offset-checkpoint.
        let checkpoint = log.checkpoint().await.unwrap();
        // An unflushed tail, then a process crash (the page cache keeps the tail).
        let tail = 16 * batch_bytes;
        for _ in 0..16 {
            log.append(std::slice::from_ref(&batch), LeaderEpoch(0))
                .await
                .unwrap();
        }
        let log_end = log.log_end_offset();
        let segments = log.segment_count();
        assert!(segments >= 16, "{segments} segments");
        log.quiesce().await;
        drop(log);

        let log = PartitionLog::open(&path, config.clone(), checkpoint)
            .await
            .unwrap();
        let after_crash = log.recovery_stats();
        assert_eq!(log.log_end_offset(), log_end);
        // The tail plus at most the batches back to the last index entry.
        let slack = config.index_interval_bytes as u64 + 2 * batch_bytes;
        assert!(
            after_crash.bytes_scanned <= tail + slack,
            "open after a crash scanned {} bytes for a {tail} byte tail",
            after_crash.bytes_scanned
        );
        log.advance_high_watermark(log_end.offset());
        let bytes_read = read_everything(&log).await;
        assert_eq!(bytes_read, written + tail);
        // Random single offsets: the read starts at the batch holding each.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let offset = Offset((seed % log_end.offset().0 as u64) as i64);
            let range = log
                .read(offset, 1, log_end.offset(), true)
                .await
                .unwrap()
                .unwrap();
            assert!(range.first_offset <= offset && offset < range.next_offset);
            assert_eq!(range.length, batch_bytes);
        }
        log.close().await.unwrap();

        evict_page_cache(&path);
        let log = PartitionLog::open(&path, config.clone(), log_end.offset())
            .await
            .unwrap();
        let clean = log.recovery_stats();
        assert_eq!(log.log_end_offset(), log_end);
        assert!(
            clean.bytes_scanned <= slack,
            "a clean open scanned {} bytes",
            clean.bytes_scanned
        );
        log.close().await.unwrap();

        evict_page_cache(&path);
        let log = PartitionLog::open(&path, config, Offset(0)).await.unwrap();
        let full = log.recovery_stats();
        assert_eq!(log.log_end_offset(), log_end);
        assert_eq!(full.bytes_scanned, written + tail);
        log.advance_high_watermark(log_end.offset());
        assert_eq!(read_everything(&log).await, written + tail);

        println!(
            "large log: {} MiB in {segments} segments written in {:.2?} ({:.0} MiB/s)",
            (written + tail) >> 20,
            write_time,
            written as f64 / (1 << 20) as f64 / write_time.as_secs_f64()
        );
        for (name, stats) in [
            ("clean open (recovery point = log end, cold cache)", clean),
            ("open after crash (16 unflushed batches)", after_crash),
            ("forced full recovery (recovery point 0, cold cache)", full),
        ] {
            println!(
                "  {name}: {:.2?}, scanned {} KiB in {} segment(s)",
                stats.duration,
                stats.bytes_scanned >> 10,
                stats.segments_scanned
            );
        }
    });
    drop(dir);
}
