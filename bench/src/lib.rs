//! corelog-bench: the load generator users run against any Kafka-compatible broker
//! (issue 6), and the home of the criterion micro-benchmarks in `benches/`, which
//! measure corelog's own pieces beside a baseline measured in the same run.
//!
//! - `limits`: the physical limits (loopback TCP, disk writes and fdatasync) that broker
//!   figures are reported against.
//! - `produce`: a librdkafka producer workload with produce-latency histograms.

pub mod limits;
pub mod produce;
