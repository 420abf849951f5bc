//! Partition log micro-benchmarks, each beside its physical limit measured in the same run.
//!
//! - `append/<size>/<policy>`: `PartitionLog::append` of one pre-built batch per call, into a
//!   fresh log, with `flush.messages` = never (`page-cache`) or 1 (`fsync`: every append
//!   waits for its fdatasync, as acks=all does).
//! - `raw-write/<size>/<policy>`: the same bytes with glommio's `BufferedFile::write_at` at
//!   sequential positions of a fresh file (plus `fdatasync` after every write for `fsync`).
//!   glommio takes an owned `Vec`, so a writer that holds the bytes as `Bytes` (as the
//!   produce path does) copies them first: that is this baseline.
//! - `raw-write-prefilled/<size>/<policy>`: the same without the copy (buffers prepared
//!   outside the timed region): the bare cost of the write syscall path.
//! - `index/lookup`: a sparse offset index lookup in a full 1 GiB segment's index.
//! - `read/locate`: `PartitionLog::read` of one batch at a random offset (index lookup,
//!   header scan through io_uring, range).
//!
//! After criterion, a summary measures append and the raw writes in interleaved rounds of
//! equal volume (so that the shared machine's noise hits all alike) and prints the ratios.
//! Run: `cargo bench -p corelog-bench --bench storage` (`-- --test` for a smoke run).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corelog::storage::config::NEVER;
use corelog::storage::index::OffsetIndex;
use corelog::storage::records::{BatchBuilder, Compression, RecordBatch, batches};
use corelog::storage::testing::executor;
use corelog::storage::{LeaderEpoch, LogConfig, Offset, PartitionLog};
use criterion::{BenchmarkId, Criterion, Throughput};
use glommio::LocalExecutor;
use glommio::io::OpenOptions;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A batch of uncompressed 1000-byte records, as close to `target` bytes as fits.
fn batch_of(target: usize) -> RecordBatch {
    let value = vec![0x5au8; 1000];
    let mut builder = BatchBuilder::new(Compression::None);
    let mut timestamp = 1_700_000_000_000i64;
    while 61 + builder.records_size() + 1010 <= target {
        builder.push(timestamp, Some(b"key-0001"), Some(&value), &[]);
        timestamp += 1;
    }
    batches(builder.build(0)).next().unwrap().unwrap()
}

fn config(fsync: bool) -> LogConfig {
    LogConfig {
        flush_messages: if fsync { 1 } else { NEVER },
        max_message_bytes: 2 * MIB as u32,
        ..LogConfig::default()
    }
}

/// Appends `count` copies of `batch` to a fresh log under `dir`; times the appends only.
async fn append(dir: &Path, batch: &RecordBatch, count: u64, fsync: bool) -> Duration {
    let path = dir.join("bench-0");
    let log = PartitionLog::open(&path, config(fsync), Offset(0))
        .await
        .unwrap();
    let batches = std::slice::from_ref(batch);
    let started = Instant::now();
    for _ in 0..count {
        black_box(log.append(batches, LeaderEpoch(1)).await.unwrap());
    }
    let elapsed = started.elapsed();
    drop(log);
    std::fs::remove_dir_all(&path).unwrap();
    elapsed
}

/// `tasks` concurrent producers append `count` batches in all, each waiting for its
/// batch to be durable (acks=all): group commit lets one fdatasync cover many of them.
async fn append_group_commit(dir: &Path, batch: &RecordBatch, count: u64, tasks: u64) -> Duration {
    let path = dir.join("bench-group-0");
    let log = PartitionLog::open(&path, config(false), Offset(0))
        .await
        .unwrap();
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let log = log.clone();
            let batch = batch.clone();
            let mine = count / tasks + u64::from(t < count % tasks);
            glommio::spawn_local(async move {
                for _ in 0..mine {
                    let info = log
                        .append(std::slice::from_ref(&batch), LeaderEpoch(1))
                        .await
                        .unwrap();
                    log.wait_durable(info.last_offset).await.unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await;
    }
    let elapsed = started.elapsed();
    drop(log);
    std::fs::remove_dir_all(&path).unwrap();
    elapsed
}

/// Writes `count` copies of `bytes` at sequential positions of a fresh file with glommio,
/// copying them into an owned buffer each time (`prefilled`: buffers made untimed).
async fn raw_write(
    dir: &Path,
    bytes: &Bytes,
    count: u64,
    fsync: bool,
    prefilled: bool,
) -> Duration {
    let path = dir.join("raw.log");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(&path)
        .await
        .unwrap();
    let mut position = 0u64;
    let mut elapsed = Duration::ZERO;
    let mut left = count;
    // Prefilled buffers are prepared in rounds of at most 64 MiB.
    let round = if prefilled {
        ((64 * MIB) / bytes.len()).max(1) as u64
    } else {
        count
    };
    while left > 0 {
        let n = left.min(round);
        let mut prepared: Vec<Vec<u8>> = if prefilled {
            (0..n).map(|_| bytes.to_vec()).collect()
        } else {
            Vec::new()
        };
        let started = Instant::now();
        for _ in 0..n {
            let buffer = prepared.pop().unwrap_or_else(|| bytes.to_vec());
            let written = file.write_at(buffer, position).await.unwrap();
            assert_eq!(written, bytes.len());
            position += written as u64;
            if fsync {
                file.fdatasync().await.unwrap();
            }
        }
        elapsed += started.elapsed();
        left -= n;
    }
    file.close().await.unwrap();
    std::fs::remove_file(&path).unwrap();
    elapsed
}

struct Case {
    name: &'static str,
    batch: RecordBatch,
    fsync: bool,
}

fn cases() -> Vec<Case> {
    let small = batch_of(16 * KIB);
    let large = batch_of(MIB);
    vec![
        Case {
            name: "16KiB/page-cache",
            batch: small.clone(),
            fsync: false,
        },
        Case {
            name: "1MiB/page-cache",
            batch: large.clone(),
            fsync: false,
        },
        Case {
            name: "16KiB/fsync",
            batch: small,
            fsync: true,
        },
        Case {
            name: "1MiB/fsync",
            batch: large,
            fsync: true,
        },
    ]
}

fn bench_appends(c: &mut Criterion, ex: &LocalExecutor, dir: &Path) {
    let mut group = c.benchmark_group("storage");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    for case in cases() {
        let bytes = case.batch.bytes().clone();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::new("append", case.name), |b| {
            b.iter_custom(|iters| ex.run(append(dir, &case.batch, iters, case.fsync)))
        });
        group.bench_function(BenchmarkId::new("raw-write", case.name), |b| {
            b.iter_custom(|iters| ex.run(raw_write(dir, &bytes, iters, case.fsync, false)))
        });
        group.bench_function(BenchmarkId::new("raw-write-prefilled", case.name), |b| {
            b.iter_custom(|iters| ex.run(raw_write(dir, &bytes, iters, case.fsync, true)))
        });
    }
    group.finish();
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn bench_lookups(c: &mut Criterion, ex: &LocalExecutor, dir: &Path, smoke: bool) {
    let mut group = c.benchmark_group("storage");
    // A full index of a 1 GiB segment: one entry per 4 KiB.
    let entries = (1usize << 30) / 4096;
    let mut index = OffsetIndex::new(Offset(0), (entries * 8) as u32);
    for i in 0..entries {
        index.append(Offset(i as i64 * 4 + 3), (i as u32 + 1) * 4096);
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    group.bench_function("index/lookup", |b| {
        b.iter(|| {
            let target = Offset((xorshift(&mut seed) % (entries as u64 * 4)) as i64);
            black_box(index.lookup(target))
        })
    });

    // The whole read path on a 64 MiB log of 4 KiB batches (4 MiB for a smoke run).
    let log_bytes = if smoke { 4 * MIB } else { 64 * MIB };
    let path = dir.join("lookup-0");
    let log = ex.run(async {
        let log = PartitionLog::open(&path, LogConfig::default(), Offset(0))
            .await
            .unwrap();
        let batch = batch_of(4 * KIB);
        for _ in 0..(log_bytes / batch.bytes().len()) {
            log.append(std::slice::from_ref(&batch), LeaderEpoch(1))
                .await
                .unwrap();
        }
        log.advance_high_watermark(log.log_end_offset().offset());
        log
    });
    let end = log.log_end_offset().offset();
    group.bench_function("read/locate", |b| {
        b.iter_custom(|iters| {
            ex.run(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let offset = Offset((xorshift(&mut seed) % end.0 as u64) as i64);
                    black_box(log.read(offset, 1, end, true).await.unwrap());
                }
                started.elapsed()
            })
        })
    });
    group.finish();
    drop(log);
    std::fs::remove_dir_all(&path).unwrap();
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// Interleaved rounds of equal volume; prints MB/s and ratios.
fn summary(ex: &LocalExecutor, dir: &Path, smoke: bool) {
    let rounds = if smoke { 1 } else { 7 };
    println!();
    println!("append vs physical limit (median of {rounds} interleaved rounds, MB/s):");
    println!(
        "{:<18} {:>10} {:>10} {:>12} {:>16} {:>22}",
        "case", "append", "raw-write", "raw-prefill", "append/raw-write", "append/raw-prefilled"
    );
    for case in cases() {
        let bytes = case.batch.bytes().clone();
        let volume = match (smoke, case.fsync) {
            (true, _) => 4 * MIB,
            (false, false) => 512 * MIB,
            (false, true) if bytes.len() < MIB => 4 * MIB,
            (false, true) => 64 * MIB,
        };
        let count = (volume / bytes.len()).max(1) as u64;
        let mb = (count * bytes.len() as u64) as f64 / 1e6;
        let (mut append_rates, mut raw_rates, mut prefilled_rates) = (vec![], vec![], vec![]);
        for _ in 0..rounds {
            raw_rates.push(
                mb / ex
                    .run(raw_write(dir, &bytes, count, case.fsync, false))
                    .as_secs_f64(),
            );
            append_rates.push(
                mb / ex
                    .run(append(dir, &case.batch, count, case.fsync))
                    .as_secs_f64(),
            );
            prefilled_rates.push(
                mb / ex
                    .run(raw_write(dir, &bytes, count, case.fsync, true))
                    .as_secs_f64(),
            );
        }
        let (a, r, p) = (
            median(append_rates),
            median(raw_rates),
            median(prefilled_rates),
        );
        println!(
            "{:<18} {:>10.1} {:>10.1} {:>12.1} {:>15.1}% {:>21.1}%",
            case.name,
            a,
            r,
            p,
            100.0 * a / r,
            100.0 * a / p
        );
    }
    // Group commit: 16 producers waiting for durability share fdatasyncs; the baseline
    // is the raw write + fdatasync of each batch from above.
    let case = &cases()[2];
    let bytes = case.batch.bytes().clone();
    let count = ((if smoke { 4 } else { 16 } * MIB) / bytes.len()) as u64;
    let mb = (count * bytes.len() as u64) as f64 / 1e6;
    let (mut group_rates, mut raw_rates) = (vec![], vec![]);
    for _ in 0..rounds {
        raw_rates.push(
            mb / ex
                .run(raw_write(dir, &bytes, count, true, false))
                .as_secs_f64(),
        );
        group_rates.push(
            mb / ex
                .run(append_group_commit(dir, &case.batch, count, 16))
                .as_secs_f64(),
        );
    }
    let (g, r) = (median(group_rates), median(raw_rates));
    println!(
        "16KiB/fsync, 16 producers with wait_durable (group commit): {g:.1} MB/s, {:.1}x the \
         raw write+fdatasync per batch ({r:.1} MB/s)",
        g / r
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this without it (and
    // criterion then runs each benchmark once): keep the summary small then too.
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
    let mut criterion = Criterion::default().configure_from_args();
    let ex = executor();
    let dir = tempfile::Builder::new()
        .prefix("corelog-bench-storage")
        .tempdir_in(
            std::env::var_os("CORELOG_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()),
        )
        .unwrap();
    bench_appends(&mut criterion, &ex, dir.path());
    bench_lookups(&mut criterion, &ex, dir.path(), smoke);
    criterion.final_summary();
    summary(&ex, dir.path(), smoke);
}
