//! `corelog-bench`: measure Kafka-compatible brokers beside the machine's limits.
//!
//! ```text
//! corelog-bench run --target corelog=localhost:9092 --acks 0,1,all --limits-dir ./data
//! corelog-bench run --workload bench/workloads/1kib.toml --target corelog=localhost:9092 \
//!     --target kafka=otherhost:9092
//! corelog-bench run --workload bench/workloads/exactly-once.toml   # plain, idempotent and
//!     # transactional producers at acks=all (--producer plain,idempotent,transactional)
//! ```
//!
//! Every target runs the same workload at every acks level and producer mode: at max
//! rate, then (with `fixed_fractions`) at each fixed fraction of the rate it reached.
//! With `--limits-dir`, the machine's limits are measured first and the floor
//! (`limits::floor`) right after each series, with that series' volume and produce
//! request size: once with a blocking thread as the receiver, once with a glommio task.
//! The report goes to `results/<name>/` and its table to stdout.

use clap::Parser;
use corelog_bench::driver::{Pace, Series, Target, run_series, series_label};
use corelog_bench::limits::{self, FloorRuntime};
use corelog_bench::progress::Progress;
use corelog_bench::report::{Limits, Report};
use corelog_bench::workload::{Keys, ProducerMode, RecordSize, Workload};
use shards::cpus::CpuList;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(name = "corelog-bench", about = "Benchmark Kafka-compatible brokers")]
enum Command {
    /// Run a workload against one or more brokers and write a report.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// A broker: NAME=HOST:PORT, optionally @PID to sample its CPU (repeatable).
    #[arg(long = "target", default_values_t = vec!["corelog=localhost:9092".to_string()])]
    targets: Vec<String>,
    /// A TOML workload file (see `corelog_bench::workload`); flags below override it.
    #[arg(long)]
    workload: Option<PathBuf>,
    /// The report's name: results go to OUT/NAME (default: the workload's name).
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Acks levels to run, comma-separated (0, 1, all).
    #[arg(long, value_delimiter = ',')]
    acks: Option<Vec<String>>,
    /// Producer modes to run, comma-separated: plain, idempotent, transactional
    /// (workload: producer_modes). The last two need acks=all.
    #[arg(long = "producer", value_delimiter = ',')]
    producer_modes: Option<Vec<String>>,
    /// Records per transaction in transactional mode.
    #[arg(long)]
    txn_records: Option<usize>,
    /// Bytes per record, or MIN-MAX for a uniform spread.
    #[arg(long)]
    record_size: Option<String>,
    /// none, uniform:N or zipf:N:EXPONENT.
    #[arg(long)]
    keys: Option<String>,
    #[arg(long)]
    partitions: Option<i32>,
    /// Use exactly this topic for every series (default: a fresh topic per series,
    /// named after the workload's topic, the target, the series and the run), so
    /// several runs can share partitions (scripts/bench-placement).
    #[arg(long)]
    topic: Option<String>,
    #[arg(long)]
    producers: Option<usize>,
    #[arg(long)]
    consumers: Option<usize>,
    /// Records/s over all producers; 0 for max rate.
    #[arg(long)]
    rate: Option<u64>,
    #[arg(long)]
    linger_ms: Option<u32>,
    /// librdkafka's max.in.flight.requests.per.connection for every producer.
    #[arg(long)]
    max_in_flight: Option<u32>,
    #[arg(long)]
    batch_size: Option<u32>,
    /// librdkafka's batch.num.messages for every producer (0: its default); 1 with
    /// --linger-ms 0 sends one record per produce request.
    #[arg(long)]
    batch_num_messages: Option<u32>,
    #[arg(long)]
    compression: Option<String>,
    /// Seconds of warm-up per series.
    #[arg(long)]
    warmup: Option<f64>,
    /// Seconds measured per series.
    #[arg(long)]
    duration: Option<f64>,
    /// After each max-rate series, one per fraction of its rate, comma-separated (e.g.
    /// 0.5,0.1; 0: none).
    #[arg(long, alias = "fixed-fractions", value_delimiter = ',')]
    fixed_fraction: Option<Vec<f64>>,
    /// Measure loopback TCP and disk writes, and the floor after each series (files go
    /// in this directory, which should be on the broker's data disk).
    #[arg(long)]
    limits_dir: Option<PathBuf>,
    /// MiB written for each limit.
    #[arg(long, default_value_t = 1024)]
    limits_mib: u64,
    /// Run the load generator (this process and every thread it starts, librdkafka's
    /// included) on these CPUs only, in Linux's list format (`1`, `2-3,6`): keeps it off
    /// the broker's CPUs, as clients on other machines would be.
    #[arg(long)]
    cpus: Option<CpuList>,
    /// Run the floors' receiving thread (and the glommio floor's executor) on these CPUs
    /// only: the broker's, with `--cpus`.
    #[arg(long)]
    floor_cpus: Option<CpuList>,
}

/// The floor's volume: the series' bytes, within these bounds.
const FLOOR_MIN: u64 = 16 << 20;
const FLOOR_MAX: u64 = 256 << 20;
/// A paced floor (after a fixed-rate series) lasts at most this long.
const FLOOR_PACED_S: f64 = 5.0;

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("corelog-bench: {message}");
    std::process::exit(1)
}

fn parse_target(text: &str) -> Result<Target, String> {
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("target {text:?}: expected NAME=HOST:PORT[@PID]"))?;
    let (bootstrap, pid) = match rest.split_once('@') {
        Some((b, pid)) => (
            b,
            Some(
                pid.parse()
                    .map_err(|_| format!("target {text:?}: bad pid"))?,
            ),
        ),
        None => (rest, None),
    };
    Ok(Target {
        name: name.to_string(),
        bootstrap: bootstrap.to_string(),
        pid,
    })
}

fn workload(args: &RunArgs) -> Result<Workload, String> {
    let mut w = match &args.workload {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Workload::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Workload::default(),
    };
    if let Some(v) = &args.acks {
        w.acks = v.clone();
    }
    if let Some(v) = &args.producer_modes {
        w.producer_modes = v
            .iter()
            .map(|m| ProducerMode::try_from(m.as_str()))
            .collect::<Result<_, _>>()?;
    }
    if let Some(v) = &args.record_size {
        w.record_size = RecordSize::try_from(v.clone())?;
    }
    if let Some(v) = &args.keys {
        w.keys = Keys::try_from(v.clone())?;
    }
    macro_rules! set {
        ($($field:ident <- $arg:ident),*) => {$(
            if let Some(v) = &args.$arg {
                w.$field = v.clone();
            }
        )*};
    }
    set!(partitions <- partitions, producers <- producers, consumers <- consumers,
         rate <- rate, linger_ms <- linger_ms, max_in_flight <- max_in_flight, batch_size <- batch_size,
         batch_num_messages <- batch_num_messages, compression <- compression,
         warmup_s <- warmup, duration_s <- duration, fixed_fractions <- fixed_fraction,
         txn_records <- txn_records);
    if let Some(name) = &args.name {
        w.name = name.clone();
    }
    w.check()?;
    Ok(w)
}

fn main() {
    let Command::Run(args) = Command::parse();
    // The machine's CPUs as this process found them (a wake-up's cost is measured on them).
    let machine_cpus = CpuList::from_affinity().unwrap_or_else(|e| fail(format!("affinity: {e}")));
    // Before any thread starts, so that all of them inherit it.
    if let Some(cpus) = &args.cpus {
        cpus.pin_current_thread()
            .unwrap_or_else(|e| fail(format!("--cpus {cpus}: {e}")));
    }
    let workload = workload(&args).unwrap_or_else(|e| fail(e));
    let targets: Vec<Target> = args
        .targets
        .iter()
        .map(|t| parse_target(t))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| fail(e));

    let limits = args.limits_dir.as_ref().map(|dir| {
        let volume = args.limits_mib << 20;
        eprintln!(
            "measuring the machine's limits with {} MiB",
            args.limits_mib
        );
        Limits {
            loopback_mb_per_s: limits::loopback_mb_per_s(volume),
            disk: limits::disk(dir, volume, 16 * 1024),
            volume,
            wake: limits::wake_cost(&machine_cpus, 20_000),
        }
    });

    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut progress = Progress::new();
    let total = Duration::from_secs_f64(workload.warmup_s + workload.duration_s);
    let mut series: Vec<Series> = Vec::new();
    for target in &targets {
        for acks in &workload.acks {
            let level = if acks == "-1" { "all" } else { acks.as_str() };
            for &mode in &workload.producer_modes {
                let mut run = |pace: Pace, tag: &str| -> Series {
                    let topic = args.topic.clone().unwrap_or_else(|| {
                        format!(
                            "{}-{}-acks{level}-{mode}-{tag}-{run_id}",
                            workload.topic, target.name
                        )
                    });
                    let label = series_label(&target.name, level, mode, workload.txn_records, pace);
                    progress.start(&label, total);
                    let mut s = run_series(target, &workload, level, mode, pace, &topic, &progress)
                        .unwrap_or_else(|e| {
                            fail(format!("{label} against {}: {e}", target.bootstrap))
                        });
                    if let (Some(dir), Some(per_request)) =
                        (&args.limits_dir, s.bytes_per_produce_request())
                    {
                        let chunk = per_request.round() as usize;
                        // At a fixed rate the floor follows the series' request rate, for
                        // at most FLOOR_PACED_S seconds.
                        let paced = match pace {
                            Pace::Fixed(_) => Some(s.produce_requests_per_s()),
                            Pace::Max => None,
                        };
                        let mut volume = s.bytes.clamp(FLOOR_MIN, FLOOR_MAX);
                        if let Some(rate) = paced {
                            volume = volume.min((rate * FLOOR_PACED_S) as u64 * chunk as u64);
                        }
                        eprintln!(
                            "measuring the floor with {:.1} MiB in {per_request:.0}-byte writes{}",
                            volume as f64 / 1048576.0,
                            paced.map_or(String::new(), |r| format!(" at {r:.0}/s"))
                        );
                        let floor = |runtime| {
                            limits::settle_page_cache();
                            limits::floor(
                                dir,
                                volume,
                                chunk,
                                paced,
                                args.floor_cpus.as_ref(),
                                runtime,
                            )
                        };
                        s.floor = Some(floor(FloorRuntime::Thread));
                        s.glommio_floor = Some(floor(FloorRuntime::Glommio));
                    }
                    s
                };
                if workload.rate > 0 {
                    series.push(run(Pace::Fixed(workload.rate as f64), "fixed"));
                    continue;
                }
                let max = run(Pace::Max, "max");
                let reached = max.records_per_s();
                series.push(max);
                for &fraction in workload.fixed_fractions.iter().filter(|f| **f > 0.0) {
                    if reached > 0.0 {
                        let tag = format!("fixed{fraction}");
                        series.push(run(Pace::Fixed(reached * fraction), &tag));
                    }
                }
            }
        }
    }

    let cpus = match (&args.cpus, &args.floor_cpus) {
        (None, None) => None,
        (load, floor) => Some(format!(
            "load generator on CPUs {}, floors' receiver on CPUs {}",
            load.as_ref().map_or("any".into(), |c| c.to_string()),
            floor.as_ref().map_or("any".into(), |c| c.to_string())
        )),
    };
    let report = Report {
        name: &workload.name,
        workload: &workload,
        cpus: cpus.as_deref(),
        limits: limits.as_ref(),
        series: &series,
    };
    let dir = args.out.join(&workload.name);
    let files = report.write(&dir).unwrap_or_else(|e| fail(e));
    println!("{}", report.markdown());
    eprintln!("wrote {} files to {}", files.len(), dir.display());
}
