//! What a benchmark run does, OpenMessaging-Benchmark style: a workload file (TOML) whose
//! fields the command line can override, with defaults for a 1 KiB-record run.
//!
//! ```toml
//! name = "1kib"
//! topic = "bench"
//! partitions = 6
//! record_size = "1024"        # or a uniform range: "512-1536"
//! keys = "uniform:1024"       # "none", "uniform:N" or "zipf:N:EXPONENT"
//! producers = 2               # threads, each with its own librdkafka producer
//! consumers = 1               # threads reading for end-to-end latency (0: none)
//! rate = 0                    # records/s over all producers; 0 = as fast as acked
//! acks = ["0", "1", "all"]
//! producer_modes = ["plain"] # "plain", "idempotent", "transactional" (acks=all only)
//! txn_records = 100           # records per transaction of a transactional producer
//! linger_ms = 1
//! max_in_flight = 0           # max.in.flight.requests.per.connection (0: librdkafka's)
//! batch_size = 131072
//! batch_num_messages = 0      # librdkafka's batch.num.messages (0: its default)
//! compression = "none"
//! warmup_s = 2.0
//! duration_s = 10.0
//! fixed_fractions = [0.5, 0.1] # then at each fraction of the measured max rate
//!                             # (a single number, `fixed_fraction = 0.5`, also reads)
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    pub name: String,
    /// Prefix of the topics: every series writes a topic of its own.
    pub topic: String,
    pub partitions: i32,
    pub record_size: RecordSize,
    pub keys: Keys,
    pub producers: usize,
    pub consumers: usize,
    /// Records per second over all producers; 0 sends as fast as the broker acknowledges.
    pub rate: u64,
    pub acks: Vec<String>,
    /// How producers write: each mode is a series of its own (see `ProducerMode`).
    pub producer_modes: Vec<ProducerMode>,
    /// Records per transaction of a transactional producer.
    pub txn_records: usize,
    pub linger_ms: u32,
    /// librdkafka's `max.in.flight.requests.per.connection` for every producer (0: its
    /// default; idempotent producers are capped at 5 by librdkafka whatever is set).
    pub max_in_flight: u32,
    pub batch_size: u32,
    /// librdkafka's `batch.num.messages`, the most records in one produce request's
    /// batch (0: its default); 1 with `linger_ms = 0` sends a request per record.
    pub batch_num_messages: u32,
    pub compression: String,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// After each max-rate series, one fixed-rate series per fraction of the rate it
    /// reached, in order (0 or none: no fixed-rate series). Ignored when `rate` is set.
    /// Workload files may still give a single `fixed_fraction` number.
    #[serde(alias = "fixed_fraction", deserialize_with = "one_or_many")]
    pub fixed_fractions: Vec<f64>,
}

/// A list of numbers, or one number for a list of one.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(f64),
        Many(Vec<f64>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(n) => vec![n],
        OneOrMany::Many(list) => list,
    })
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: "1kib".into(),
            topic: "corelog-bench".into(),
            partitions: 6,
            record_size: RecordSize::Fixed(1024),
            keys: Keys::Uniform(1024),
            producers: 2,
            consumers: 1,
            rate: 0,
            acks: vec!["0".into(), "1".into(), "all".into()],
            producer_modes: vec![ProducerMode::Plain],
            txn_records: 100,
            linger_ms: 1,
            max_in_flight: 0,
            batch_size: 131_072,
            batch_num_messages: 0,
            compression: "none".into(),
            warmup_s: 2.0,
            duration_s: 10.0,
            fixed_fractions: vec![0.5, 0.1],
        }
    }
}

impl Workload {
    pub fn from_toml(text: &str) -> Result<Workload, String> {
        let workload: Workload = toml::from_str(text).map_err(|e| e.to_string())?;
        workload.check()?;
        Ok(workload)
    }

    /// A clear error for values that cannot run.
    pub fn check(&self) -> Result<(), String> {
        if self.partitions < 1 {
            return Err(format!(
                "partitions must be at least 1, not {}",
                self.partitions
            ));
        }
        if self.producers == 0 {
            return Err("producers must be at least 1".into());
        }
        if self.duration_s <= 0.0 || self.warmup_s < 0.0 {
            return Err("duration_s must be positive and warmup_s not negative".into());
        }
        if let Some(bad) = self
            .fixed_fractions
            .iter()
            .find(|f| !(0.0..=1.0).contains(*f))
        {
            return Err(format!("fixed fractions must lie in 0..=1, not {bad}"));
        }
        for acks in &self.acks {
            if !matches!(acks.as_str(), "0" | "1" | "all" | "-1") {
                return Err(format!("acks must be 0, 1 or all, not {acks:?}"));
            }
        }
        if self.acks.is_empty() {
            return Err("acks lists no level".into());
        }
        if self.producer_modes.is_empty() {
            return Err("producer_modes lists no mode".into());
        }
        let exactly_once = self
            .producer_modes
            .iter()
            .any(|m| *m != ProducerMode::Plain);
        if exactly_once
            && self
                .acks
                .iter()
                .any(|a| !matches!(a.as_str(), "all" | "-1"))
        {
            return Err(format!(
                "idempotent and transactional producers need acks=all, not {:?} (set acks to all)",
                self.acks
            ));
        }
        if self.txn_records == 0 {
            return Err("txn_records must be at least 1".into());
        }
        Ok(())
    }
}

/// How a producer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProducerMode {
    /// `enable.idempotence=false`: no producer id, no sequence numbers.
    Plain,
    /// `enable.idempotence=true`: a producer id and per-partition sequence numbers.
    Idempotent,
    /// A `transactional.id` per producer; records go in transactions of `txn_records`
    /// (begin, send, commit), each commit's latency measured.
    Transactional,
}

impl TryFrom<&str> for ProducerMode {
    type Error = String;

    fn try_from(text: &str) -> Result<Self, String> {
        match text.trim() {
            "plain" => Ok(ProducerMode::Plain),
            "idempotent" => Ok(ProducerMode::Idempotent),
            "transactional" => Ok(ProducerMode::Transactional),
            _ => Err(format!(
                "producer mode {text:?}: expected plain, idempotent or transactional"
            )),
        }
    }
}

impl fmt::Display for ProducerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProducerMode::Plain => "plain",
            ProducerMode::Idempotent => "idempotent",
            ProducerMode::Transactional => "transactional",
        })
    }
}

/// Record value sizes, in bytes (the first 8 carry the send time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RecordSize {
    Fixed(usize),
    Uniform { min: usize, max: usize },
}

impl RecordSize {
    pub fn max(&self) -> usize {
        match *self {
            RecordSize::Fixed(n) => n,
            RecordSize::Uniform { max, .. } => max,
        }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        match *self {
            RecordSize::Fixed(n) => n,
            RecordSize::Uniform { min, max } => {
                min + (rng.next_u64() % (max - min + 1) as u64) as usize
            }
        }
    }
}

impl TryFrom<String> for RecordSize {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bad = || format!("record size {text:?}: expected BYTES or MIN-MAX (at least 8)");
        let size = match text.split_once('-') {
            None => RecordSize::Fixed(text.trim().parse().map_err(|_| bad())?),
            Some((min, max)) => RecordSize::Uniform {
                min: min.trim().parse().map_err(|_| bad())?,
                max: max.trim().parse().map_err(|_| bad())?,
            },
        };
        match size {
            RecordSize::Fixed(n) if n >= 8 => Ok(size),
            RecordSize::Uniform { min, max } if min >= 8 && min <= max => Ok(size),
            _ => Err(bad()),
        }
    }
}

impl From<RecordSize> for String {
    fn from(size: RecordSize) -> String {
        size.to_string()
    }
}

impl fmt::Display for RecordSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordSize::Fixed(n) => write!(f, "{n}"),
            RecordSize::Uniform { min, max } => write!(f, "{min}-{max}"),
        }
    }
}

/// How records are keyed: no key (the client spreads them), uniformly over N keys, or
/// over N keys with Zipf's skew (a few hot keys, hence hot partitions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Keys {
    None,
    Uniform(u64),
    Zipf { keys: u64, exponent: f64 },
}

impl TryFrom<String> for Keys {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bad = || format!("keys {text:?}: expected none, uniform:N or zipf:N:EXPONENT");
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            ["none"] => Ok(Keys::None),
            ["uniform", n] => match n.parse() {
                Ok(n) if n > 0 => Ok(Keys::Uniform(n)),
                _ => Err(bad()),
            },
            ["zipf", n, s] => match (n.parse(), s.parse::<f64>()) {
                (Ok(keys), Ok(exponent)) if keys > 0 && exponent > 0.0 => {
                    Ok(Keys::Zipf { keys, exponent })
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl From<Keys> for String {
    fn from(keys: Keys) -> String {
        keys.to_string()
    }
}

impl fmt::Display for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keys::None => write!(f, "none"),
            Keys::Uniform(n) => write!(f, "uniform:{n}"),
            Keys::Zipf { keys, exponent } => write!(f, "zipf:{keys}:{exponent}"),
        }
    }
}

/// Draws keys from a `Keys` distribution.
pub struct KeySampler {
    keys: Keys,
    /// Zipf: the cumulative probability of keys 0..=i.
    cdf: Vec<f64>,
}

impl KeySampler {
    pub fn new(keys: Keys) -> KeySampler {
        let cdf = match keys {
            Keys::Zipf { keys, exponent } => {
                let weights: Vec<f64> = (1..=keys)
                    .map(|k| 1.0 / (k as f64).powf(exponent))
                    .collect();
                let total: f64 = weights.iter().sum();
                let mut sum = 0.0;
                weights
                    .iter()
                    .map(|w| {
                        sum += w / total;
                        sum
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        KeySampler { keys, cdf }
    }

    /// The key of the next record, if records are keyed.
    pub fn sample(&self, rng: &mut Rng) -> Option<u64> {
        match self.keys {
            Keys::None => None,
            Keys::Uniform(n) => Some(rng.next_u64() % n),
            Keys::Zipf { .. } => {
                let u = rng.unit();
                Some(self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1) as u64)
            }
        }
    }
}

/// xorshift64*: cheap, deterministic per seed, good enough for load generation.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_file_overrides_the_defaults_and_bad_values_are_named() {
        let w = Workload::from_toml(
            "name = \"x\"\nrecord_size = \"100-200\"\nkeys = \"zipf:100:1.2\"\nacks = [\"1\"]\n",
        )
        .unwrap();
        assert_eq!(w.name, "x");
        assert_eq!(w.record_size, RecordSize::Uniform { min: 100, max: 200 });
        assert_eq!(
            w.keys,
            Keys::Zipf {
                keys: 100,
                exponent: 1.2
            }
        );
        assert_eq!(w.partitions, 6, "defaults fill the rest");
        for (text, expect) in [
            ("record_size = \"4\"", "record size"),
            ("keys = \"zipf:0:1\"", "keys"),
            ("acks = [\"2\"]", "acks"),
            ("partitons = 3", "unknown field"),
            ("producer_modes = [\"eos\"]", "unknown variant"),
            ("producer_modes = [\"idempotent\"]", "acks=all"),
            ("txn_records = 0\nacks = [\"all\"]", "txn_records"),
            ("fixed_fractions = [0.5, 1.5]", "fixed fractions"),
            ("fixed_fraction = -0.1", "fixed fractions"),
            ("fixed_fractions = \"half\"", "fixed_fractions"),
            ("batch_num_messages = -1", "batch_num_messages"),
        ] {
            let err = Workload::from_toml(text).unwrap_err();
            assert!(err.contains(expect), "{text}: {err}");
        }
    }

    #[test]
    fn fixed_fractions_read_as_a_list_or_as_the_old_single_number() {
        let list = Workload::from_toml("fixed_fractions = [0.5, 0.1]").unwrap();
        assert_eq!(list.fixed_fractions, [0.5, 0.1]);
        let single = Workload::from_toml("fixed_fraction = 0.25").unwrap();
        assert_eq!(single.fixed_fractions, [0.25]);
        let whole = Workload::from_toml("fixed_fraction = 0").unwrap();
        assert_eq!(
            whole.fixed_fractions,
            [0.0],
            "0 still means no fixed-rate series"
        );
        let none = Workload::from_toml("fixed_fractions = []").unwrap();
        assert!(none.fixed_fractions.is_empty());
        let err = Workload::from_toml("fixed_fraction = 0.5\nfixed_fractions = [0.1]").unwrap_err();
        assert!(err.contains("duplicate"), "{err}");
        // Written back out as the list.
        let json = serde_json::to_value(&single).unwrap();
        assert_eq!(json["fixed_fractions"], serde_json::json!([0.25]));
    }

    #[test]
    fn batch_num_messages_defaults_to_the_clients_own() {
        assert_eq!(Workload::default().batch_num_messages, 0);
        let w = Workload::from_toml("batch_num_messages = 1\nlinger_ms = 0").unwrap();
        assert_eq!((w.batch_num_messages, w.linger_ms), (1, 0));
    }

    #[test]
    fn the_small_request_workload_sends_one_record_per_request_at_acks_1() {
        let w = Workload::from_toml(include_str!("../workloads/small.toml")).unwrap();
        assert_eq!(w.record_size, RecordSize::Fixed(100));
        assert_eq!((w.batch_num_messages, w.linger_ms), (1, 0));
        assert_eq!(w.acks, ["1"]);
        assert_eq!((w.partitions, w.producers, w.consumers), (6, 1, 0));
        assert_eq!(w.rate, 0, "max rate first");
        assert_eq!(w.fixed_fractions, [0.1]);
    }

    #[test]
    fn the_shipped_workload_file_is_the_default_workload() {
        let shipped = Workload::from_toml(include_str!("../workloads/1kib.toml")).unwrap();
        assert_eq!(
            serde_json::to_value(&shipped).unwrap(),
            serde_json::to_value(Workload::default()).unwrap()
        );
    }

    #[test]
    fn the_exactly_once_workload_runs_every_producer_mode_at_acks_all() {
        let w = Workload::from_toml(include_str!("../workloads/exactly-once.toml")).unwrap();
        assert_eq!(w.acks, ["all"]);
        assert_eq!(
            w.producer_modes,
            [
                ProducerMode::Plain,
                ProducerMode::Idempotent,
                ProducerMode::Transactional
            ]
        );
        assert_eq!(w.txn_records, 100);
        assert_eq!(
            ProducerMode::try_from("idempotent"),
            Ok(ProducerMode::Idempotent)
        );
        assert!(ProducerMode::try_from("eos").is_err());
    }

    #[test]
    fn zipf_keys_are_skewed_toward_the_first() {
        let sampler = KeySampler::new(Keys::Zipf {
            keys: 100,
            exponent: 1.0,
        });
        let mut rng = Rng::new(7);
        let mut counts = [0u32; 100];
        for _ in 0..100_000 {
            counts[sampler.sample(&mut rng).unwrap() as usize] += 1;
        }
        assert!(counts[0] > 10 * counts[50], "{:?}", &counts[..5]);
        let uniform = KeySampler::new(Keys::Uniform(10));
        assert!((0..1000).all(|_| uniform.sample(&mut rng).unwrap() < 10));
        assert_eq!(KeySampler::new(Keys::None).sample(&mut rng), None);
    }
}
