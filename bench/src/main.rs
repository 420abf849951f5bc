//! `corelog-bench`: measure a Kafka-compatible broker beside the machine's limits.
//!
//! `corelog-bench produce --bootstrap HOST:PORT --topic T --acks 1` runs a producer
//! workload; `--limits-dir DIR` also measures loopback TCP and disk writes of the same
//! volume in the same run and prints the broker's figures as fractions of them.

use clap::Parser;
use corelog_bench::{limits, produce};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "corelog-bench", about = "Benchmark a Kafka-compatible broker")]
enum Command {
    /// Produce fixed-size records as fast as the broker acknowledges them.
    Produce {
        #[arg(long, default_value = "localhost:9092")]
        bootstrap: String,
        #[arg(long, default_value = "corelog-bench")]
        topic: String,
        #[arg(long, default_value_t = 500_000)]
        records: u64,
        #[arg(long, default_value_t = 1024)]
        record_size: usize,
        /// 0, 1 or all; repeat to compare levels in one run.
        #[arg(long, default_values_t = vec!["1".to_string()])]
        acks: Vec<String>,
        #[arg(long, default_value_t = 5)]
        linger_ms: u32,
        #[arg(long, default_value = "none")]
        compression: String,
        /// Also measure loopback TCP and disk writes (files go in this directory, which
        /// should be on the broker's data disk).
        #[arg(long)]
        limits_dir: Option<PathBuf>,
    },
}

fn main() {
    let Command::Produce {
        bootstrap,
        topic,
        records,
        record_size,
        acks,
        linger_ms,
        compression,
        limits_dir,
    } = Command::parse();
    let volume = records * record_size as u64;
    let limits = limits_dir.map(|dir| {
        let loopback = limits::loopback_mb_per_s(volume);
        let disk = limits::disk(&dir, volume, 16 * 1024);
        (loopback, disk)
    });
    if let Some((loopback, disk)) = &limits {
        println!(
            "limits: loopback {loopback:.0} MB/s; disk {:.0} MB/s through the page cache, {:.0} MB/s \
             with fdatasync per 16 KiB (fdatasync p50 {} µs, p99 {} µs)",
            disk.page_cache_mb_per_s,
            disk.synced_mb_per_s,
            disk.fdatasync_us.value_at_quantile(0.5),
            disk.fdatasync_us.value_at_quantile(0.99)
        );
    }
    println!(
        "| acks | records/s | MB/s | p50 µs | p99 µs | p99.9 µs | max µs | vs loopback | vs disk (page cache) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for level in acks {
        let result = produce::run(&produce::ProduceWorkload {
            bootstrap: bootstrap.clone(),
            topic: topic.clone(),
            records,
            record_size,
            acks: level.clone(),
            linger_ms,
            compression: compression.clone(),
        })
        .unwrap_or_else(|e| {
            eprintln!("corelog-bench: produce failed: {e}");
            std::process::exit(1);
        });
        let h = &result.latency_us;
        let ratio = |limit: f64| format!("{:.0}%", 100.0 * result.mb_per_s() / limit);
        let (vs_loop, vs_disk) = match &limits {
            Some((l, d)) => (ratio(*l), ratio(d.page_cache_mb_per_s)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {level} | {:.0} | {:.1} | {} | {} | {} | {} | {vs_loop} | {vs_disk} |{}",
            result.records_per_s(),
            result.mb_per_s(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            if result.failed > 0 {
                format!(" ({} failed)", result.failed)
            } else {
                String::new()
            }
        );
    }
}
