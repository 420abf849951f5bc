//! corelog-bench: the load generator users run against any Kafka-compatible broker
//! (issue 6), and the home of the criterion micro-benchmarks in `benches/`, which
//! measure corelog's own pieces beside a baseline measured in the same run.
