//! corelog-bench: the load generator users run against any Kafka-compatible broker
//! (corelog, Apache Kafka, Redpanda) through librdkafka, and the home of the criterion
//! micro-benchmarks in `benches/`, which measure corelog's own pieces beside a baseline
//! measured in the same run.
//!
//! - `workload`: what a run does (a TOML file and command-line overrides).
//! - `driver`: runs one series (broker × acks × producer mode × pace) with producer and
//!   consumer threads and measures it: HDR histograms of produce, end-to-end and
//!   transaction commit latency (coordinated omission accounted for at fixed rates),
//!   throughput per second, broker CPU.
//! - `limits`: the physical limits (loopback TCP, disk writes and fdatasync) that broker
//!   figures are reported against, measured in the same run.
//! - `report`, `hgrm`, `plot`: `results/<name>/` — summary.json, summary.md, `.hgrm`
//!   files and SVG/PNG charts.
//! - `progress`: a progress bar on a terminal, plain lines otherwise.

pub mod driver;
pub mod hgrm;
pub mod limits;
pub mod plot;
pub mod progress;
pub mod report;
pub mod workload;
