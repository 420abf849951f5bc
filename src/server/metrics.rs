//! The HTTP endpoint of `metrics.listener` (default `localhost:9644`):
//!
//! - `GET /metrics` (and `GET /`): the Prometheus text exposition — every shard's
//!   counters, its busy and CPU time, each partition's load (bytes and records in,
//!   appends, bytes out, reads, busy time) and which shard carries which partition.
//! - `GET /placement`: the same load as one JSON document (`server::placement`), for
//!   `corelog placement show`; a corelog-specific admin surface, not a Kafka one.
//! - `POST /placement/move` and `POST /placement/reload`: live moves and placement file
//!   reloads (`server::admin`), for `corelog placement move|reload`.
//!
//! Anything else is 404. Routes are one line each in `route`, a match on method and
//! path. Served by shard 0. A request asks every shard for a snapshot of its counters
//! over the mesh (`Router::load`) and merges them there: the hot path only bumps plain
//! per-shard and per-partition cells, no shared atomics. The main thread binds its port
//! with the listeners (`server::sockets`): a port in use refuses start-up.

use crate::protocol::placement::PartitionLoad;
use crate::routing::Router;
use crate::server::sockets::Exclusive;
use crate::server::{admin, placement};
use crate::shard::ShardStatsSnapshot;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use shards::rt;
use std::fmt::Write as _;
use std::time::Duration;

/// Starts the endpoint on shard 0, if configured.
pub fn start(router: Router, exclusive: &Exclusive) -> Option<rt::Task<()>> {
    let (address, socket) = exclusive.metrics.as_ref()?;
    let address = address.clone();
    let listener: TcpListener = match crate::server::sockets::for_this_shard(socket) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!("metrics endpoint disabled: cannot accept on {address}: {e}");
            return None;
        }
    };
    tracing::info!("metrics on http://{address}/metrics");
    Some(rt::spawn(async move {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    rt::spawn(serve(router.clone(), stream)).detach();
                }
                Err(e) => {
                    tracing::warn!("metrics accept failed: {e}");
                    rt::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

async fn serve(router: Router, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request);
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("");
    let target = words.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let reply = route(&router, method, path, query).await;
    let response = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        reply.status,
        reply.content_type,
        reply.body.len(),
        reply.body
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.close().await;
}

/// An answer of the endpoint.
struct Reply {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

const PROMETHEUS: &str = "text/plain; version=0.0.4";
const JSON: &str = "application/json";

impl Reply {
    fn json((status, body): admin::Answer) -> Reply {
        Reply {
            status,
            content_type: JSON,
            body,
        }
    }

    fn ok(content_type: &'static str, body: String) -> Reply {
        Reply {
            status: "200 OK",
            content_type,
            body,
        }
    }
}

/// The endpoint's routes: one line per (method, path).
async fn route(router: &Router, method: &str, path: &str, query: &str) -> Reply {
    match (method, path) {
        ("GET", "/metrics" | "/") => Reply::ok(PROMETHEUS, render(router).await),
        ("GET", "/placement") => Reply::ok(JSON, placement::render(router).await),
        ("POST", "/placement/move") => Reply::json(admin::move_partition(router, query).await),
        ("POST", "/placement/reload") => Reply::json(admin::reload(router).await),
        _ => Reply {
            status: "404 Not Found",
            content_type: "text/plain",
            body: "try /metrics or /placement\n".to_string(),
        },
    }
}

/// The whole exposition: counters per shard, then partition placement.
pub async fn render(router: &Router) -> String {
    let (snapshots, partitions): (Vec<ShardStatsSnapshot>, Vec<Vec<PartitionLoad>>) =
        router.load().await.into_iter().unzip();
    let mut out = String::new();
    type Field = fn(&ShardStatsSnapshot) -> u64;
    let metrics: &[(&str, &str, &str, Field)] = &[
        (
            "corelog_connections",
            "gauge",
            "Open client connections.",
            |s| s.connections,
        ),
        (
            "corelog_connections_total",
            "counter",
            "Client connections accepted.",
            |s| s.connections_total,
        ),
        (
            "corelog_connections_moved_in_total",
            "counter",
            "Client connections that moved to this shard to follow their partitions.",
            |s| s.connections_moved_in,
        ),
        (
            "corelog_connections_spread_in_total",
            "counter",
            "Client connections another shard accepted and handed to this one, which served fewer.",
            |s| s.connections_spread_in,
        ),
        (
            "corelog_requests_total",
            "counter",
            "Kafka requests received.",
            |s| s.requests,
        ),
        (
            "corelog_bytes_in_total",
            "counter",
            "Bytes read from client sockets.",
            |s| s.bytes_in,
        ),
        (
            "corelog_bytes_out_total",
            "counter",
            "Bytes written to client sockets.",
            |s| s.bytes_out,
        ),
        (
            "corelog_produce_batches_total",
            "counter",
            "Record batches appended on this shard.",
            |s| s.produce_batches,
        ),
        (
            "corelog_produce_bytes_total",
            "counter",
            "Record bytes appended on this shard.",
            |s| s.produce_bytes,
        ),
        (
            "corelog_fetch_bytes_total",
            "counter",
            "Record bytes sent by fetches served by this shard's connections.",
            |s| s.fetch_bytes,
        ),
        (
            "corelog_sendfile_bytes_total",
            "counter",
            "Record bytes sent with sendfile (zero copy).",
            |s| s.sendfile_bytes,
        ),
        (
            "corelog_copied_bytes_total",
            "counter",
            "Record bytes read with io_uring and copied (cold ranges, full sockets).",
            |s| s.copied_bytes,
        ),
        (
            "corelog_cold_ranges_total",
            "counter",
            "File ranges not entirely in the page cache when fetched.",
            |s| s.cold_ranges,
        ),
        (
            "corelog_mesh_calls_sent_total",
            "counter",
            "Requests this shard forwarded to other shards.",
            |s| s.calls_sent,
        ),
        (
            "corelog_mesh_calls_received_total",
            "counter",
            "Requests other shards forwarded to this shard.",
            |s| s.calls_received,
        ),
        (
            "corelog_partitions",
            "gauge",
            "Partitions this shard owns.",
            |s| s.partitions,
        ),
        (
            "corelog_groups",
            "gauge",
            "Consumer groups this shard coordinates.",
            |s| s.groups,
        ),
        (
            "corelog_request_budget_waits_total",
            "counter",
            "Times a connection waited for its share of queued.max.request.bytes.",
            |s| s.request_budget_waits,
        ),
        (
            "corelog_fetch_waits",
            "gauge",
            "Fetch long polls of other shards waiting on this shard's partitions.",
            |s| s.fetch_waits,
        ),
        (
            "corelog_recovery_truncated_bytes_total",
            "counter",
            "Bytes recovery cut off logs (torn or corrupt tails) when it opened them.",
            |s| s.recovery_truncated_bytes,
        ),
        (
            "corelog_retention_segments_deleted_total",
            "counter",
            "Segments retention deleted (retention.ms, retention.bytes, DeleteRecords).",
            |s| s.retention_segments_deleted,
        ),
        (
            "corelog_cleaner_runs_total",
            "counter",
            "Cleanings of compacted logs completed by this shard's log cleaner.",
            |s| s.cleaner_runs,
        ),
        (
            "corelog_cleaner_bytes_read_total",
            "counter",
            "Bytes the log cleaner read (offset maps and rewrites).",
            |s| s.cleaner_bytes_read,
        ),
        (
            "corelog_cleaner_bytes_written_total",
            "counter",
            "Bytes the log cleaner wrote (cleaned segments).",
            |s| s.cleaner_bytes_written,
        ),
        (
            "corelog_cleaner_segments_cleaned_total",
            "counter",
            "Segments the log cleaner replaced by cleaned ones.",
            |s| s.cleaner_segments_cleaned,
        ),
        (
            "corelog_cleaner_time_ms_total",
            "counter",
            "Milliseconds the log cleaner spent cleaning.",
            |s| s.cleaner_time_ms,
        ),
        (
            "corelog_cleaner_max_dirty_percent",
            "gauge",
            "Dirty share of the dirtiest compacted log at the cleaner's last pass, in percent.",
            |s| s.cleaner_max_dirty_percent,
        ),
        (
            "corelog_cleaner_uncleanable_logs",
            "counter",
            "Logs the cleaner gave up on after an error (until restart).",
            |s| s.cleaner_uncleanable_logs,
        ),
    ];
    for (name, kind, help, field) in metrics {
        writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}").unwrap();
        for s in &snapshots {
            writeln!(
                out,
                "{name}{{shard=\"{}\",cpu=\"{}\"}} {}",
                s.shard,
                s.cpu,
                field(s)
            )
            .unwrap();
        }
    }
    let seconds: &[(&str, &str, Field)] = &[
        (
            "corelog_shard_busy_seconds_total",
            "Seconds the shard's executor ran tasks and I/O (not parked).",
            |s| s.busy_ns,
        ),
        (
            "corelog_shard_cpu_seconds_total",
            "CPU seconds the shard's thread used.",
            |s| s.cpu_ns,
        ),
    ];
    for (name, help, field) in seconds {
        writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter").unwrap();
        for s in &snapshots {
            writeln!(
                out,
                "{name}{{shard=\"{}\",cpu=\"{}\"}} {}",
                s.shard,
                s.cpu,
                field(s) as f64 / 1e9
            )
            .unwrap();
        }
    }
    render_partition_loads(&mut out, partitions.iter().flatten());
    writeln!(
        out,
        "# HELP corelog_partition_shard The shard that owns each partition.\n# TYPE corelog_partition_shard gauge"
    )
    .unwrap();
    let metadata = router.state().metadata.borrow();
    let mut owners: Vec<_> = metadata.owners().collect();
    owners.sort();
    for (tp, shard) in owners {
        writeln!(
            out,
            "corelog_partition_shard{{topic=\"{}\",partition=\"{}\"}} {}",
            tp.topic, tp.partition, shard.0
        )
        .unwrap();
    }
    out
}

/// Each partition's load counters, labelled with topic, partition and owning shard.
fn render_partition_loads<'a>(
    out: &mut String,
    loads: impl Iterator<Item = &'a PartitionLoad> + Clone,
) {
    type Value = fn(&PartitionLoad) -> String;
    let metrics: &[(&str, &str, Value)] = &[
        (
            "corelog_partition_bytes_in_total",
            "Record bytes appended to the partition since it was opened on its shard.",
            |p| p.bytes_in.to_string(),
        ),
        (
            "corelog_partition_records_in_total",
            "Records appended to the partition.",
            |p| p.records_in.to_string(),
        ),
        (
            "corelog_partition_produce_requests_total",
            "Appends asked of the partition (produce requests, markers, coordinator writes).",
            |p| p.produce_requests.to_string(),
        ),
        (
            "corelog_partition_bytes_out_total",
            "Record bytes read from the partition by fetches.",
            |p| p.bytes_out.to_string(),
        ),
        (
            "corelog_partition_fetch_requests_total",
            "Reads asked of the partition by fetches.",
            |p| p.fetch_requests.to_string(),
        ),
        (
            "corelog_partition_busy_seconds_total",
            "Seconds the owning shard spent in the partition's appends and reads.",
            |p| (p.busy_ns as f64 / 1e9).to_string(),
        ),
    ];
    for (name, help, value) in metrics {
        writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter").unwrap();
        for p in loads.clone() {
            writeln!(
                out,
                "{name}{{topic=\"{}\",partition=\"{}\",shard=\"{}\"}} {}",
                p.topic,
                p.partition,
                p.shard,
                value(p)
            )
            .unwrap();
        }
    }
}
