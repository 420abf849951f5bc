//! `corelog placement ...`: where a corelog broker's partitions are and how loaded its
//! shards and partitions are. Unlike `topic` and `group`, this is corelog-specific: it
//! reads `GET /placement` from the broker's metrics endpoint (`metrics.listener`,
//! default `localhost:9644`; the document is described in `server::placement`) with a
//! blocking HTTP/1.1 GET over `std::net::TcpStream`, no HTTP library.
//!
//! - `move TOPIC-PARTITION SHARD`: moves a partition live (`POST /placement/move`) and
//!   prints how long it was unavailable.
//! - `reload`: has the broker read its `placement.file` again and move what it places
//!   elsewhere (`POST /placement/reload`).
//! - `show`: two samples `--interval` seconds apart, turned into rates per shard (busy
//!   and CPU share, bytes, requests, calls between shards) and per partition (bytes,
//!   records, busy share), the hottest partitions first; `--watch` repeats until
//!   interrupted.
//!
//! Counters are cumulative on the broker; a rate is the growth between the two samples
//! divided by the time between them on the broker's clock (`uptime_ns`). A counter that
//! went down was restarted (its partition reopened, the broker restarted) and counts
//! from zero.

use super::CliError;
use super::output::{Format, Report, Table, emit};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The default metrics endpoint (the broker's default `metrics.listener`).
pub const DEFAULT_ENDPOINT: &str = "localhost:9644";
/// Bound on connecting to the endpoint and on each read and write.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a move's or a reload's answer.
const MOVE_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest answer read (a broker with very many partitions stays far below).
const MAX_RESPONSE_BYTES: u64 = 256 << 20;

#[derive(Debug, clap::Subcommand)]
pub enum PlacementCommand {
    /// Each shard's load and the hottest partitions, as rates over an interval.
    Show(ShowArgs),
    /// Move a partition to another shard, live; prints how long it was unavailable.
    Move(MoveArgs),
    /// Have the broker read its placement file again and move what it places elsewhere.
    Reload(ReloadArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct MoveArgs {
    /// The partition, as TOPIC-PARTITION (e.g. orders-3).
    pub partition: String,
    /// The shard to move it to.
    pub shard: usize,
    /// The broker's metrics endpoint: its `metrics.listener` setting.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ENDPOINT, value_parser = parse_endpoint)]
    pub endpoint: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReloadArgs {
    /// The broker's metrics endpoint: its `metrics.listener` setting.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ENDPOINT, value_parser = parse_endpoint)]
    pub endpoint: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// The broker's metrics endpoint: its `metrics.listener` setting.
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ENDPOINT, value_parser = parse_endpoint)]
    pub endpoint: String,
    /// Output format (json: with --watch, one document a line).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Seconds between the two samples rates are computed from.
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = parse_interval)]
    pub interval: Duration,
    /// How many partitions to show, hottest first (0: all).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Refresh every interval until interrupted.
    #[arg(long)]
    pub watch: bool,
}

pub fn run(command: PlacementCommand) -> Result<(), CliError> {
    match command {
        PlacementCommand::Show(args) => show(&args),
        PlacementCommand::Move(args) => {
            let (topic, index) = split_partition(&args.partition)?;
            let target = format!(
                "/placement/move?topic={topic}&partition={index}&shard={}",
                args.shard
            );
            let answer = post(&args.endpoint, &target)?;
            match args.format {
                Format::Json => println!("{answer}"),
                Format::Table => println!("{}", describe_move(&answer)),
            }
            Ok(())
        }
        PlacementCommand::Reload(args) => {
            let answer = post(&args.endpoint, "/placement/reload")?;
            match args.format {
                Format::Json => println!("{answer}"),
                Format::Table => {
                    let moves = answer["moves"].as_array().cloned().unwrap_or_default();
                    println!(
                        "Reloaded {} placement rules: {} partitions moved.",
                        answer["rules"],
                        moves.len()
                    );
                    for m in &moves {
                        println!("{}", describe_move(m));
                    }
                }
            }
            Ok(())
        }
    }
}

/// `HOST:PORT` with a port number.
fn parse_endpoint(text: &str) -> Result<String, String> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(text.to_string())
        }
        _ => Err(format!("'{text}' is not host:port")),
    }
}

/// Positive seconds, at most a day.
fn parse_interval(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 86_400.0 => Ok(Duration::from_secs_f64(seconds)),
        _ => Err(format!("'{text}' is not a number of seconds above 0")),
    }
}

fn show(args: &ShowArgs) -> Result<(), CliError> {
    let mut before = fetch(&args.endpoint)?;
    loop {
        std::thread::sleep(args.interval);
        let after = fetch(&args.endpoint)?;
        let shown = rates(&args.endpoint, &before, &after, args.top);
        if !args.watch {
            emit(args.format, &shown);
            return Ok(());
        }
        let text = match args.format {
            Format::Table => format!("\x1b[H\x1b[2J{}", shown.human()),
            Format::Json => {
                let mut line =
                    serde_json::to_string(&shown).expect("reports are plain data and serialize");
                line.push('\n');
                line
            }
        };
        let mut stdout = std::io::stdout().lock();
        if stdout.write_all(text.as_bytes()).is_err() || stdout.flush().is_err() {
            // Stdout closed (`| head`): nobody is watching any more.
            return Ok(());
        }
        before = after;
    }
}

/// One `GET /placement` document, as the broker sends it (the broker's own type).
pub use crate::protocol::placement::{
    PartitionLoad as PartitionSample, Placement as Sample, ShardLoad as ShardSample,
};

/// `orders-3` → (`orders`, 3): the partition follows the last '-'.
fn split_partition(text: &str) -> Result<(&str, i32), CliError> {
    text.rsplit_once('-')
        .and_then(|(topic, p)| Some((topic, p.parse::<i32>().ok()?)))
        .filter(|(topic, p)| !topic.is_empty() && *p >= 0)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "'{text}' is not a partition: expected TOPIC-PARTITION, like orders-3"
            ))
        })
}

fn describe_move(m: &Value) -> String {
    if let Some(error) = m["error"].as_str() {
        return format!("Not moved: {error}");
    }
    let name = format!("{}-{}", m["topic"].as_str().unwrap_or("?"), m["partition"]);
    if m["from"] == m["to"] {
        return format!("{name} already is on shard {}.", m["to"]);
    }
    format!(
        "Moved {name} from shard {} to shard {}: unavailable for {:.1} ms (shard table revision {}).",
        m["from"],
        m["to"],
        m["unavailable_ms"].as_f64().unwrap_or(0.0),
        m["revision"]
    )
}

/// A `POST` to one of the broker's placement routes; its JSON answer, or the error
/// the answer carries. Moves wait for appends under way and a log to close, a reload
/// for every move: the answer may take a while.
fn post(endpoint: &str, target: &str) -> Result<Value, CliError> {
    let (status, body) = http(endpoint, "POST", target, MOVE_TIMEOUT)?;
    let value: Value = serde_json::from_str(&body).map_err(|_| {
        CliError::Failed(format!(
            "{endpoint} answered POST {target} with '{status}' and no JSON: is it a \
             corelog broker's metrics.listener?"
        ))
    })?;
    if status.split_whitespace().nth(1) != Some("200") {
        let error = value["error"].as_str().unwrap_or("refused");
        return Err(CliError::Failed(error.to_string()));
    }
    Ok(value)
}

/// Reads `GET /placement` from `endpoint`.
pub fn fetch(endpoint: &str) -> Result<Sample, CliError> {
    let body = http_get(endpoint, "/placement")?;
    serde_json::from_str(&body).map_err(|e| {
        CliError::Failed(format!(
            "{endpoint} answered GET /placement with something else than the placement \
             document ({e}): is it a corelog broker's metrics.listener?"
        ))
    })
}

/// A blocking HTTP/1.1 GET; the body of a 200 answer.
fn http_get(endpoint: &str, path: &str) -> Result<String, CliError> {
    let (status, body) = http(endpoint, "GET", path, TIMEOUT)?;
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(CliError::Failed(format!(
            "{endpoint} answered GET {path} with '{status}': is it a corelog broker's \
             metrics.listener, and a broker that serves {path}?"
        )));
    }
    Ok(body)
}

/// A blocking HTTP/1.1 request without a body; the status line and the body.
fn http(
    endpoint: &str,
    method: &str,
    path: &str,
    answer_within: Duration,
) -> Result<(String, String), CliError> {
    let unreachable = |why: String| {
        CliError::Failed(format!(
            "cannot reach the metrics endpoint {endpoint} (the broker's metrics.listener \
             setting; choose another with --endpoint): {why}"
        ))
    };
    let addresses: Vec<_> = endpoint
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .collect();
    let mut last_error = String::from("the name resolves to no address");
    let mut stream = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, TIMEOUT) {
            Ok(connected) => {
                stream = Some(connected);
                break;
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    let mut stream = stream.ok_or_else(|| unreachable(last_error))?;
    let io = |e: std::io::Error| unreachable(e.to_string());
    stream.set_read_timeout(Some(answer_within)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut response)
        .map_err(io)?;
    let response = String::from_utf8_lossy(&response);
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return Err(CliError::Failed(format!(
            "{endpoint} did not answer {method} {path} with HTTP: is it a corelog broker's \
             metrics.listener?"
        )));
    };
    let status = head.lines().next().unwrap_or("").to_string();
    Ok((status, body.to_string()))
}

/// Per second of `elapsed_ns`, how much a counter grew from `before` to `after`; one
/// that went down was restarted and counts from zero.
pub fn rate(before: u64, after: u64, elapsed_ns: u64) -> f64 {
    if elapsed_ns == 0 {
        return 0.0;
    }
    let grown = after.checked_sub(before).unwrap_or(after);
    grown as f64 * 1e9 / elapsed_ns as f64
}

/// What `placement show` prints: each shard's and the hottest partitions' rates between
/// two samples, beside the second sample's cumulative counters.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub endpoint: String,
    /// The shard table's revision in the second sample.
    pub revision: u64,
    /// Seconds between the samples, on the broker's clock.
    pub interval_s: f64,
    pub uptime_ns: u64,
    pub timestamp_ms: u64,
    pub shards: Vec<ShardRates>,
    /// Partitions the broker has, of which `partitions` shows the hottest.
    pub partition_count: usize,
    pub partitions: Vec<PartitionRates>,
}

/// A shard's rates over the interval, beside the later sample they were computed to.
#[derive(Debug, Clone, Serialize)]
pub struct ShardRates {
    #[serde(flatten)]
    pub sample: ShardSample,
    pub busy_percent: f64,
    pub cpu_percent: f64,
    pub bytes_in_per_s: f64,
    pub bytes_out_per_s: f64,
    pub requests_per_s: f64,
    pub calls_received_per_s: f64,
    pub calls_sent_per_s: f64,
}

/// A partition's rates over the interval, beside the later sample they were computed to.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionRates {
    #[serde(flatten)]
    pub sample: PartitionSample,
    pub bytes_in_per_s: f64,
    pub bytes_out_per_s: f64,
    pub records_in_per_s: f64,
    pub busy_percent: f64,
}

/// The rates between two samples; partitions hottest first (busy share, then bytes per
/// second, then the same cumulatively), the first `top` of them (0: all).
pub fn rates(endpoint: &str, before: &Sample, after: &Sample, top: usize) -> Shown {
    let elapsed = after
        .uptime_ns
        .checked_sub(before.uptime_ns)
        .unwrap_or(after.uptime_ns);
    // Nanoseconds per second, as a share of a second in percent.
    let percent = |before: u64, after: u64| rate(before, after, elapsed) / 1e7;
    let shards = after
        .shards
        .iter()
        .map(|a| {
            let default = ShardSample::default();
            let b = before
                .shards
                .iter()
                .find(|b| b.shard == a.shard)
                .unwrap_or(&default);
            ShardRates {
                sample: a.clone(),
                busy_percent: percent(b.busy_ns, a.busy_ns),
                cpu_percent: percent(b.cpu_ns, a.cpu_ns),
                bytes_in_per_s: rate(b.bytes_in, a.bytes_in, elapsed),
                bytes_out_per_s: rate(b.bytes_out, a.bytes_out, elapsed),
                requests_per_s: rate(b.requests, a.requests, elapsed),
                calls_received_per_s: rate(b.calls_received, a.calls_received, elapsed),
                calls_sent_per_s: rate(b.calls_sent, a.calls_sent, elapsed),
            }
        })
        .collect();
    let earlier: HashMap<(&str, i32), &PartitionSample> = before
        .partitions
        .iter()
        .map(|p| ((p.topic.as_str(), p.partition), p))
        .collect();
    let mut partitions: Vec<PartitionRates> = after
        .partitions
        .iter()
        .map(|a| {
            let default = PartitionSample::default();
            // A partition that moved to another shard counts from zero there.
            let b = earlier
                .get(&(a.topic.as_str(), a.partition))
                .filter(|b| b.shard == a.shard)
                .copied()
                .unwrap_or(&default);
            PartitionRates {
                sample: a.clone(),
                bytes_in_per_s: rate(b.bytes_in, a.bytes_in, elapsed),
                bytes_out_per_s: rate(b.bytes_out, a.bytes_out, elapsed),
                records_in_per_s: rate(b.records_in, a.records_in, elapsed),
                busy_percent: percent(b.busy_ns, a.busy_ns),
            }
        })
        .collect();
    partitions.sort_by(|x, y| {
        y.busy_percent
            .total_cmp(&x.busy_percent)
            .then(
                (y.bytes_in_per_s + y.bytes_out_per_s)
                    .total_cmp(&(x.bytes_in_per_s + x.bytes_out_per_s)),
            )
            .then_with(|| {
                let (x, y) = (&x.sample, &y.sample);
                y.busy_ns
                    .cmp(&x.busy_ns)
                    .then((y.bytes_in + y.bytes_out).cmp(&(x.bytes_in + x.bytes_out)))
                    .then((&x.topic, x.partition).cmp(&(&y.topic, y.partition)))
            })
    });
    let partition_count = partitions.len();
    if top > 0 {
        partitions.truncate(top);
    }
    Shown {
        endpoint: endpoint.to_string(),
        revision: after.revision,
        interval_s: elapsed as f64 / 1e9,
        uptime_ns: after.uptime_ns,
        timestamp_ms: after.timestamp_ms,
        shards,
        partition_count,
        partitions,
    }
}

fn mb(bytes_per_s: f64) -> String {
    format!("{:.2}", bytes_per_s / 1e6)
}

fn one(value: f64) -> String {
    format!("{value:.1}")
}

impl Report for Shown {
    fn human(&self) -> String {
        let mut out = format!(
            "{}: shard table revision {}, rates over {:.2} s\n\n",
            self.endpoint, self.revision, self.interval_s
        );
        let mut shards = Table::new(&[
            "SHARD",
            "CPU",
            "BUSY%",
            "CPU%",
            "MB/s IN",
            "MB/s OUT",
            "REQ/s",
            "PARTITIONS",
            "CONNECTIONS",
            "HOPS IN/s",
            "HOPS OUT/s",
        ]);
        for s in &self.shards {
            shards.row(vec![
                s.sample.shard.to_string(),
                s.sample.cpu.to_string(),
                one(s.busy_percent),
                one(s.cpu_percent),
                mb(s.bytes_in_per_s),
                mb(s.bytes_out_per_s),
                one(s.requests_per_s),
                s.sample.partitions.to_string(),
                s.sample.connections.to_string(),
                one(s.calls_received_per_s),
                one(s.calls_sent_per_s),
            ]);
        }
        out.push_str(&shards.render());
        out.push('\n');
        let mut partitions = Table::new(&[
            "TOPIC",
            "PARTITION",
            "SHARD",
            "MB/s IN",
            "MB/s OUT",
            "REC/s IN",
            "BUSY%",
        ]);
        for p in &self.partitions {
            partitions.row(vec![
                p.sample.topic.clone(),
                p.sample.partition.to_string(),
                p.sample.shard.to_string(),
                mb(p.bytes_in_per_s),
                mb(p.bytes_out_per_s),
                one(p.records_in_per_s),
                one(p.busy_percent),
            ]);
        }
        out.push_str(&partitions.render());
        if self.partitions.len() < self.partition_count {
            out.push_str(&format!(
                "({} of {} partitions; --top 0 shows all)\n",
                self.partitions.len(),
                self.partition_count
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_the_growth_per_second_and_a_restarted_counter_counts_from_zero() {
        assert_eq!(rate(100, 300, 2_000_000_000), 100.0);
        assert_eq!(rate(5, 5, 1_000_000_000), 0.0);
        // Went down: restarted, so all of `after` is new.
        assert_eq!(rate(1_000, 50, 500_000_000), 100.0);
        assert_eq!(rate(0, 10, 0), 0.0, "no time passed: no rate");
    }

    fn partition(
        topic: &str,
        partition: i32,
        shard: usize,
        bytes: u64,
        busy: u64,
    ) -> PartitionSample {
        PartitionSample {
            topic: topic.into(),
            partition,
            shard,
            bytes_in: bytes,
            records_in: bytes / 100,
            busy_ns: busy,
            ..PartitionSample::default()
        }
    }

    #[test]
    fn rates_between_samples_put_the_hottest_partitions_first() {
        let shard = |busy_ns, cpu_ns, bytes_in| ShardSample {
            busy_ns,
            cpu_ns,
            bytes_in,
            ..ShardSample::default()
        };
        let before = Sample {
            revision: 3,
            uptime_ns: 1_000_000_000,
            shards: vec![shard(100_000_000, 50_000_000, 0)],
            partitions: vec![
                partition("a", 0, 0, 1_000, 10),
                partition("a", 1, 0, 0, 0),
                partition("b", 0, 0, 9_000_000, 900),
            ],
            ..Sample::default()
        };
        let after = Sample {
            revision: 4,
            uptime_ns: 3_000_000_000,
            shards: vec![shard(600_000_000, 250_000_000, 4_000_000)],
            partitions: vec![
                partition("a", 0, 0, 1_000, 10),
                // Moved to shard 1 and counted from zero there.
                partition("a", 1, 1, 2_000_000, 400_000_000),
                partition("b", 0, 0, 11_000_000, 200_000_900),
            ],
            ..Sample::default()
        };
        let shown = rates("h:1", &before, &after, 2);
        assert_eq!(shown.revision, 4);
        assert_eq!(shown.interval_s, 2.0);
        let s = &shown.shards[0];
        assert_eq!(s.busy_percent, 25.0);
        assert_eq!(s.cpu_percent, 10.0);
        assert_eq!(s.bytes_in_per_s, 2_000_000.0);
        assert_eq!(shown.partition_count, 3);
        let order: Vec<_> = shown
            .partitions
            .iter()
            .map(|p| (p.sample.topic.as_str(), p.sample.partition))
            .collect();
        assert_eq!(order, vec![("a", 1), ("b", 0)], "hottest first, top 2");
        let moved = &shown.partitions[0];
        assert_eq!(moved.busy_percent, 20.0);
        assert_eq!(moved.bytes_in_per_s, 1_000_000.0);
        assert_eq!(moved.records_in_per_s, 10_000.0);
        assert_eq!(shown.partitions[1].busy_percent, 10.0);
        let table = shown.human();
        assert!(table.contains("SHARD  CPU  BUSY%"), "{table}");
        assert!(table.contains("TOPIC  PARTITION  SHARD"), "{table}");
        assert!(table.contains("(2 of 3 partitions"), "{table}");
    }

    #[test]
    fn idle_partitions_are_ordered_by_their_cumulative_load() {
        let sample = Sample {
            uptime_ns: 1,
            partitions: vec![partition("a", 0, 0, 10, 1), partition("b", 0, 0, 5, 9)],
            ..Sample::default()
        };
        let shown = rates("h:1", &sample, &sample, 0);
        assert_eq!(shown.partitions[0].sample.topic, "b");
        assert_eq!(shown.partitions.len(), 2, "--top 0 shows all");
    }

    #[test]
    fn bad_endpoints_and_intervals_are_refused() {
        assert!(parse_endpoint("localhost:9644").is_ok());
        assert!(parse_endpoint("[::1]:9644").is_ok());
        for bad in ["localhost", ":9644", "h:port", "h:70000"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_interval("0.2"), Ok(Duration::from_millis(200)));
        for bad in ["0", "-1", "NaN", "inf", "soon"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_partition_is_named_topic_dash_index() {
        assert_eq!(split_partition("orders-3").unwrap(), ("orders", 3));
        assert_eq!(split_partition("my-topic-10").unwrap(), ("my-topic", 10));
        assert_eq!(split_partition("orders--1").unwrap(), ("orders-", 1));
        for bad in ["orders", "orders-", "-3", "orders-x"] {
            assert_eq!(split_partition(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn moves_are_described_in_words() {
        let moved: Value = serde_json::from_str(
            r#"{"topic":"t","partition":1,"from":0,"to":1,"unavailable_ms":2.25,"revision":9}"#,
        )
        .unwrap();
        assert_eq!(
            describe_move(&moved),
            "Moved t-1 from shard 0 to shard 1: unavailable for 2.2 ms (shard table revision 9)."
        );
        let error: Value = serde_json::from_str(r#"{"error":"t-9 does not exist"}"#).unwrap();
        assert_eq!(describe_move(&error), "Not moved: t-9 does not exist");
    }
}
