//! Specifications of retention and DeleteRecords, as tests: which segments go, where the
//! log start offset lands, what happens to their files, and what a reopened log remembers.

use tempfile::TempDir;

use super::testing::block_on;
use super::tests::{batch_with, small_config};
use super::*;

const NOW: i64 = 1_700_000_000_000;

async fn append_at(log: &PartitionLog, timestamp: i64, n: usize) {
    for _ in 0..n {
        log.append(&[batch_with(&[timestamp], 200, 3)], LeaderEpoch(1))
            .await
            .unwrap();
    }
    let end = log.log_end_offset().offset();
    log.advance_high_watermark(end);
}

fn files_with_suffix(dir: &std::path::Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

fn config(retention_ms: u64, retention_bytes: u64, delay_ms: u64) -> LogConfig {
    LogConfig {
        retention_ms,
        retention_bytes,
        file_delete_delay_ms: delay_ms,
        ..small_config()
    }
}

#[test]
fn segments_whose_largest_timestamp_passed_retention_ms_go_oldest_first() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let never = config::NEVER;
        let log = PartitionLog::open(&path, config(60_000, never, 0), Offset(0))
            .await
            .unwrap();
        append_at(&log, NOW - 120_000, 40).await;
        let old_segments = log.segment_count();
        assert!(old_segments >= 3, "{old_segments} segments");
        // The rest is recent, in segments of its own.
        log.roll().await.unwrap();
        let first_new = log.log_end_offset().offset();
        append_at(&log, NOW - 1_000, 40).await;
        let outcome = log.enforce_retention(Timestamp(NOW)).await.unwrap();
        assert_eq!(outcome.by_time, old_segments);
        assert_eq!(outcome.segments(), old_segments);
        assert_eq!(log.log_start_offset().offset(), first_new);
        assert!(matches!(
            log.read(Offset(0), 1000, first_new, true).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        // With file.delete.delay.ms=0 the files are gone at once; nothing else moved.
        assert_eq!(files_with_suffix(&path, ".deleted"), Vec::<String>::new());
        assert_eq!(
            files_with_suffix(&path, ".log").len(),
            log.segment_count(),
            "one .log per remaining segment"
        );
        // A second pass finds nothing.
        let again = log.enforce_retention(Timestamp(NOW)).await.unwrap();
        assert_eq!(again, RetentionOutcome::default());
        log.close().await.unwrap();
        let log = PartitionLog::open(&path, config(60_000, never, 0), Offset(0))
            .await
            .unwrap();
        assert_eq!(log.log_start_offset().offset(), first_new);
        assert_eq!(log.log_end_offset().offset(), Offset(80));
    });
}

#[test]
fn an_expired_active_segment_is_rolled_away_and_offsets_go_on() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, config(60_000, config::NEVER, 0), Offset(0))
            .await
            .unwrap();
        append_at(&log, NOW - 120_000, 30).await;
        let outcome = log.enforce_retention(Timestamp(NOW)).await.unwrap();
        assert!(outcome.by_time >= 2, "{outcome:?}");
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.log_start_offset().offset(), Offset(30));
        assert_eq!(log.log_end_offset().offset(), Offset(30));
        let info = log
            .append(&[batch_with(&[NOW], 10, 1)], LeaderEpoch(1))
            .await
            .unwrap();
        assert_eq!(info.first_offset, Offset(30));
    });
}

#[test]
fn retention_bytes_keeps_the_log_within_its_size_by_whole_segments() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let log = PartitionLog::open(&path, config(config::NEVER, 10_000, 0), Offset(0))
            .await
            .unwrap();
        append_at(&log, NOW, 100).await;
        let size = |path: &std::path::Path| -> u64 {
            files_with_suffix(path, ".log")
                .iter()
                .map(|n| std::fs::metadata(path.join(n)).unwrap().len())
                .sum()
        };
        let before = size(&path);
        assert!(before > 20_000, "{before} bytes");
        let outcome = log.enforce_retention(Timestamp(NOW)).await.unwrap();
        assert!(outcome.by_size > 0 && outcome.by_time == 0, "{outcome:?}");
        let after = size(&path);
        assert_eq!(before - after, outcome.bytes);
        // Kafka's rule: only whole segments, never below the limit by one more.
        assert!(after <= 10_000 + 4096, "{after} bytes left");
        let first = log.segment_base_offsets()[0];
        assert_eq!(log.log_start_offset().offset(), first);
        // cleanup.policy=compact alone: retention by size does not apply.
        let compact = LogConfig {
            cleanup_delete: false,
            cleanup_compact: true,
            retention_bytes: 1,
            ..log.config()
        };
        log.set_config(compact);
        let none = log.enforce_retention(Timestamp(NOW)).await.unwrap();
        assert_eq!(none, RetentionOutcome::default());
    });
}

#[test]
fn delete_records_moves_the_log_start_offset_inside_a_segment_and_is_restored_after_reopen() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().to_path_buf();
    block_on(async move {
        let cfg = config(config::NEVER, config::NEVER, 60_000);
        let log = PartitionLog::open(&path, cfg.clone(), Offset(0))
            .await
            .unwrap();
        append_at(&log, NOW, 50).await;
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 3);
        // Above the high watermark: out of range, nothing moves.
        assert!(matches!(
            log.delete_records_before(Offset(51)).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        let target = Offset(bases[1].0 + 2);
        let start = log.delete_records_before(target).await.unwrap();
        assert_eq!(start.offset(), target);
        assert_eq!(log.segment_base_offsets()[0], bases[1]);
        // A lower offset changes nothing.
        let same = log.delete_records_before(Offset(1)).await.unwrap();
        assert_eq!(same.offset(), target);
        assert!(matches!(
            log.read(Offset(bases[1].0), 1000, Offset(50), true).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        // The first segment's files wait as .deleted for file.delete.delay.ms.
        let deleted = files_with_suffix(&path, ".deleted");
        assert!(
            deleted.contains(&format!("{}.deleted", segment_file_name(bases[0], ".log"))),
            "{deleted:?}"
        );
        log.close().await.unwrap();
        // Reopened: leftovers are removed; the checkpointed log start offset is restored.
        let log = PartitionLog::open(&path, cfg.clone(), Offset(0))
            .await
            .unwrap();
        assert_eq!(files_with_suffix(&path, ".deleted"), Vec::<String>::new());
        assert_eq!(log.log_start_offset().offset(), bases[1]);
        log.advance_high_watermark(Offset(50));
        log.restore_log_start(target).await.unwrap();
        assert_eq!(log.log_start_offset().offset(), target);
        // A checkpoint above the log end (the tail was lost): the log restarts there.
        log.restore_log_start(Offset(70)).await.unwrap();
        assert_eq!(log.log_start_offset().offset(), Offset(70));
        assert_eq!(log.log_end_offset().offset(), Offset(70));
        let info = log
            .append(&[batch_with(&[NOW], 10, 1)], LeaderEpoch(1))
            .await
            .unwrap();
        assert_eq!(info.first_offset, Offset(70));
    });
}
