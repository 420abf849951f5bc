//! A run's report in `results/<name>/`: `summary.json` (everything measured),
//! `summary.md` (the table people paste), one `.hgrm` per series and latency kind
//! (produce, end-to-end, and transaction commit for transactional producers), and
//! the charts (`plot`). Broker figures are given beside, and as fractions of, the
//! physical limits measured in the same run, and the broker's CPU per MB as a multiple
//! of the floor measured right after each series.

use crate::driver::{Pace, Series};
use crate::hgrm::{hgrm, percentiles};
use crate::limits::DiskLimit;
use crate::workload::{ProducerMode, Workload};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The machine's limits, measured in the same run as the broker.
pub struct Limits {
    pub loopback_mb_per_s: f64,
    pub disk: DiskLimit,
    /// Bytes each limit was measured with.
    pub volume: u64,
    pub wake: crate::limits::WakeCost,
}

pub struct Report<'a> {
    pub name: &'a str,
    pub workload: &'a Workload,
    /// Where the load generator and the floor ran, when pinned (`--cpus`, `--floor-cpus`).
    pub cpus: Option<&'a str>,
    pub limits: Option<&'a Limits>,
    pub series: &'a [Series],
}

fn floor_json(f: &crate::limits::Floor) -> Value {
    json!({
        "bytes": f.bytes,
        "chunk_bytes": f.chunk,
        "replies": f.replies,
        "cpu_us": f.cpu_us,
        "cpu_us_per_mb": f.cpu_us_per_mb(),
        "cpu_us_per_write": f.cpu_us_per_write(),
        "mb_per_s": f.mb_per_s(),
    })
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

fn pct(value: f64, of: f64) -> String {
    format!("{:.0}%", 100.0 * value / of)
}

impl Report<'_> {
    fn series_json(&self, s: &Series) -> Value {
        let latency = |h: &hdrhistogram::Histogram<u64>| {
            let mut map = serde_json::Map::new();
            for (name, us) in percentiles(h) {
                map.insert(format!("{name}_us"), json!(us));
            }
            map.insert("count".into(), json!(h.len()));
            map.insert("mean_us".into(), json!(h.mean()));
            Value::Object(map)
        };
        let mut value = json!({
            "label": s.label(),
            "target": s.target,
            "acks": s.acks,
            "producer_mode": s.mode,
            "txn_records": (s.mode == ProducerMode::Transactional).then_some(s.txn_records),
            "pace": match s.pace { Pace::Max => json!("max"), Pace::Fixed(r) => json!(r) },
            "topic": s.topic,
            "records_per_s": s.records_per_s(),
            "mb_per_s": s.mb_per_s(),
            "records": s.records,
            "failed": s.failed,
            "delivered": s.delivered,
            "consumed": s.consumed,
            "seconds": s.seconds,
            "produce_latency": latency(&s.produce_us),
            "e2e_latency": s.e2e_us.as_ref().map(latency),
            "commit_latency": s.commit_us.as_ref().map(latency),
            "broker_cores": s.broker_cores,
            "broker_thread_cores": s.broker_threads.iter().map(|(name, cores)| (name.clone(), json!(cores))).collect::<serde_json::Map<String, Value>>(),
            "client_cores": s.client_cores,
            "produce_requests": s.produce_requests,
            "fetch_requests": s.fetch_requests,
            "produce_requests_per_s": s.produce_requests_per_s(),
            "broker_us_per_request": s.broker_us_per_request(),
            "broker_cpu_us_per_mb": s.broker_cpu_us_per_mb(),
            "floor": s.floor.as_ref().map(floor_json),
            "glommio_floor": s.glommio_floor.as_ref().map(floor_json),
            "cpu_per_mb_vs_floor": s.cpu_per_mb_vs_floor(),
            "per_second": s.windows.iter().map(|(r, b)| json!({"records": r, "bytes": b})).collect::<Vec<_>>(),
        });
        if let Some(limits) = self.limits {
            value["vs_loopback"] = json!(s.mb_per_s() / limits.loopback_mb_per_s);
            value["vs_disk_page_cache"] = json!(s.mb_per_s() / limits.disk.page_cache_mb_per_s);
        }
        value
    }

    pub fn json(&self) -> Value {
        json!({
            "name": self.name,
            "workload": self.workload,
            "cpus": self.cpus,
            "limits": self.limits.map(|l| json!({
                "volume_bytes": l.volume,
                "loopback_mb_per_s": l.loopback_mb_per_s,
                "disk_page_cache_mb_per_s": l.disk.page_cache_mb_per_s,
                "disk_fdatasync_mb_per_s": l.disk.synced_mb_per_s,
                "fdatasync_p50_us": l.disk.fdatasync_us.value_at_quantile(0.5),
                "fdatasync_p99_us": l.disk.fdatasync_us.value_at_quantile(0.99),
                "wake_round_trip_cpu_us_same_cpu": l.wake.same_cpu_us,
                "wake_round_trip_cpu_us_cross_cpu": l.wake.cross_cpu_us,
            })),
            "series": self.series.iter().map(|s| self.series_json(s)).collect::<Vec<_>>(),
        })
    }

    pub fn markdown(&self) -> String {
        let w = self.workload;
        let mut out = String::new();
        writeln!(out, "# corelog-bench: {}\n", self.name).unwrap();
        writeln!(
            out,
            "Workload: records of {} bytes, keys {}, {} partitions, {} producer(s), {} consumer(s), \
             linger.ms {}, batch.size {}{}, compression {}, {} s warm-up + {} s measured per series.\n",
            w.record_size, w.keys, w.partitions, w.producers, w.consumers, w.linger_ms,
            w.batch_size,
            match w.batch_num_messages {
                0 => String::new(),
                n => format!(", batch.num.messages {n}"),
            },
            w.compression, w.warmup_s, w.duration_s
        )
        .unwrap();
        if let Some(cpus) = self.cpus {
            writeln!(out, "CPUs: {cpus}.\n").unwrap();
        }
        if let Some(l) = self.limits {
            writeln!(
                out,
                "Limits in the same run ({} MiB each): loopback TCP {:.0} MB/s; disk {:.0} MB/s \
                 through the page cache, {:.0} MB/s with an fdatasync per 16 KiB (fdatasync p50 \
                 {} µs, p99 {} µs); a wake-up round trip between two threads costs {:.1} µs of \
                 CPU on one CPU{}.\n",
                l.volume >> 20,
                l.loopback_mb_per_s,
                l.disk.page_cache_mb_per_s,
                l.disk.synced_mb_per_s,
                l.disk.fdatasync_us.value_at_quantile(0.5),
                l.disk.fdatasync_us.value_at_quantile(0.99),
                l.wake.same_cpu_us,
                l.wake
                    .cross_cpu_us
                    .map_or(String::new(), |us| format!(" and {us:.1} µs across two"))
            )
            .unwrap();
        }
        // Commit latency columns only when a series ran transactions.
        let commits = self.series.iter().any(|s| s.commit_us.is_some());
        let mut header = vec!["series", "records/s", "MB/s"];
        if commits {
            header.extend(["commit p50 ms", "commit p99 ms", "commit max ms"]);
        }
        header.extend([
            "vs loopback",
            "vs disk",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "p99.99 ms",
            "max ms",
            "e2e p50 ms",
            "e2e p99 ms",
            "broker cores",
            "client cores",
            "produce req/s",
            "broker µs/request",
            "CPU/MB vs floor",
            "failed",
        ]);
        writeln!(out, "| {} |", header.join(" | ")).unwrap();
        writeln!(out, "|{}", "---|".repeat(header.len())).unwrap();
        for s in self.series {
            let p = percentiles(&s.produce_us);
            let (vs_loop, vs_disk) = match self.limits {
                Some(l) => (
                    pct(s.mb_per_s(), l.loopback_mb_per_s),
                    pct(s.mb_per_s(), l.disk.page_cache_mb_per_s),
                ),
                None => ("-".into(), "-".into()),
            };
            let e2e = s.e2e_us.as_ref().filter(|h| !h.is_empty());
            let commit = match s.commit_us.as_ref().filter(|h| !h.is_empty()) {
                Some(h) => format!(
                    " {} | {} | {} |",
                    ms(h.value_at_quantile(0.5)),
                    ms(h.value_at_quantile(0.99)),
                    ms(h.max())
                ),
                None if commits => " - | - | - |".into(),
                None => String::new(),
            };
            writeln!(
                out,
                "| {} | {:.0} | {:.1} |{commit} {vs_loop} | {vs_disk} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
                s.label(),
                s.records_per_s(),
                s.mb_per_s(),
                ms(p[0].1),
                ms(p[1].1),
                ms(p[2].1),
                ms(p[3].1),
                ms(p[4].1),
                ms(p[5].1),
                e2e.map_or("-".into(), |h| ms(h.value_at_quantile(0.5))),
                e2e.map_or("-".into(), |h| ms(h.value_at_quantile(0.99))),
                s.broker_cores.map_or("-".into(), |c| format!("{c:.2}")),
                s.client_cores.map_or("-".into(), |c| format!("{c:.2}")),
                s.produce_requests_per_s(),
                s.broker_us_per_request().map_or("-".into(), |us| format!("{us:.1}")),
                s.cpu_per_mb_vs_floor().map_or("-".into(), |x| format!("{x:.1}x")),
                s.failed
            )
            .unwrap();
        }
        writeln!(
            out,
            "\nRequests are counted from librdkafka's statistics (every {} ms, at both ends of \
             the window): produce req/s is the Produce requests the producers sent; broker \
             µs/request is the broker's CPU time over the window divided by those Produce \
             requests plus the Fetch requests the consumers sent (metadata, offset and other \
             requests are not counted).",
            crate::driver::STATISTICS_INTERVAL_MS
        )
        .unwrap();
        let threads: Vec<&Series> = self
            .series
            .iter()
            .filter(|s| !s.broker_threads.is_empty())
            .collect();
        if !threads.is_empty() {
            writeln!(
                out,
                "\nBroker cores by thread over the window (threads of one name summed; under \
                 0.005 cores left out):\n"
            )
            .unwrap();
            for s in threads {
                let by_thread: Vec<String> = s
                    .broker_threads
                    .iter()
                    .map(|(name, cores)| format!("{name} {cores:.2}"))
                    .collect();
                writeln!(out, "- {}: {}", s.label(), by_thread.join(", ")).unwrap();
            }
        }
        let floors: Vec<&Series> = self.series.iter().filter(|s| s.floor.is_some()).collect();
        if !floors.is_empty() {
            write!(
                out,
                "\nFloor, measured right after each series: one thread reads the series' bytes \
                 (at most 256 MiB, at least 16 MiB) off a loopback TCP connection in chunks \
                 of its average produce request, appends each to a file on the data disk and \
                 answers it with a {}-byte reply (a produce response's size), no protocol, no \
                 indices, no fdatasync; its CPU per MB (record bytes) is what \
                 CPU/MB vs floor divides the broker's by. After a fixed-rate series the chunks \
                 arrive at the series' produce request rate (for at most 5 s), so the receiver \
                 also wakes once per request, as the broker does. The glommio floor runs the \
                 same loop as one task on a glommio executor set up as a shard's (the \
                 broker's runtime, its patches included): what the runtime alone costs.\n\n",
                crate::limits::FLOOR_REPLY_BYTES
            )
            .unwrap();
            for s in floors {
                let f = s.floor.as_ref().expect("filtered");
                let broker = s
                    .broker_cpu_us_per_mb()
                    .map_or(String::new(), |us| format!(" (broker: {us:.0} µs per MB)"));
                let per_request = s
                    .broker_us_per_request()
                    .map_or(String::new(), |us| format!(" (broker: {us:.1})"));
                let glommio = s.glommio_floor.as_ref().map_or(String::new(), |g| {
                    format!(
                        "; glommio floor {:.0} µs CPU per MB, {:.1} µs per write",
                        g.cpu_us_per_mb(),
                        g.cpu_us_per_write()
                    )
                });
                writeln!(
                    out,
                    "- {}: {:.1} MiB in {}-byte writes, {:.0} µs CPU per MB{broker}, {:.1} µs \
                     CPU per write{per_request}, {:.0} MB/s{glommio}",
                    s.label(),
                    f.bytes as f64 / 1048576.0,
                    f.chunk,
                    f.cpu_us_per_mb(),
                    f.cpu_us_per_write(),
                    f.mb_per_s()
                )
                .unwrap();
            }
        }
        for s in self.series {
            if let Some(consumed) = s.consumed.filter(|c| *c != s.delivered) {
                writeln!(
                    out,
                    "\n{}: the consumers read {consumed} records of the {} acknowledged.",
                    s.label(),
                    s.delivered
                )
                .unwrap();
            }
        }
        out.push_str(&self.targets());
        out
    }

    /// The targets, evaluated where the run has what they need.
    fn targets(&self) -> String {
        let mut lines = Vec::new();
        // The lowest fixed rate of a series' target, acks level and producer mode.
        let lowest_fixed = |s: &Series| {
            let Pace::Fixed(rate) = s.pace else {
                return false;
            };
            !self.series.iter().any(|o| {
                (&o.target, &o.acks, o.mode) == (&s.target, &s.acks, s.mode)
                    && matches!(o.pace, Pace::Fixed(r) if r < rate)
            })
        };
        // The targets are about plain producers.
        for s in self.series.iter().filter(|s| s.mode == ProducerMode::Plain) {
            let p99 = s.produce_us.value_at_quantile(0.99);
            let low = lowest_fixed(s);
            if let Some(l) = self.limits {
                let fdatasync_p99 = l.disk.fdatasync_us.value_at_quantile(0.99);
                match (s.acks.as_str(), s.pace) {
                    ("1", Pace::Max) => {
                        lines.push(format!(
                            "- {}: {:.1} MB/s is {} of the raw disk write rate (target: at least 70%)",
                            s.label(),
                            s.mb_per_s(),
                            pct(s.mb_per_s(), l.disk.page_cache_mb_per_s)
                        ));
                        if let Some(x) = s.cpu_per_mb_vs_floor() {
                            lines.push(format!(
                                "- {}: CPU per MB {x:.1}x the floor's (target: at most 1.5x)",
                                s.label()
                            ));
                        }
                    }
                    ("1", Pace::Fixed(_)) if low => lines.push(format!(
                        "- {}: p99 {} ms (target: at most 1 ms)",
                        s.label(),
                        ms(p99)
                    )),
                    ("all" | "-1", Pace::Fixed(_)) if low => lines.push(format!(
                        "- {}: p99 {} ms, {:+.3} ms from the fdatasync p99 of {} ms (target: \
                         at most the fdatasync p99 + 1 ms)",
                        s.label(),
                        ms(p99),
                        (p99 as f64 - fdatasync_p99 as f64) / 1000.0,
                        ms(fdatasync_p99)
                    )),
                    _ => {}
                }
            }
            // Small requests: one record per produce request.
            if self.workload.batch_num_messages == 1
                && low
                && let Some(us) = s.broker_us_per_request()
            {
                let vs = |floor: Option<&crate::limits::Floor>, name: &str| {
                    floor.map_or(String::new(), |f| {
                        let per_write = f.cpu_us_per_write();
                        format!(
                            ", {:.1}x the {name}'s {per_write:.1} µs per write",
                            us / per_write
                        )
                    })
                };
                let vs_floor = vs(s.floor.as_ref(), "floor");
                let vs_glommio = vs(s.glommio_floor.as_ref(), "glommio floor");
                lines.push(format!(
                    "- {}: broker {us:.1} µs per request{vs_floor}{vs_glommio} (small requests; target: \
                     at most 25 µs)",
                    s.label()
                ));
            }
        }
        let mut out = String::new();
        if !lines.is_empty() {
            out.push_str("\nTargets (fixed rates: the lowest of each level):\n\n");
            for line in lines {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    /// Writes every file into `dir`; returns their names.
    pub fn write(&self, dir: &Path) -> Result<Vec<String>, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let write = |name: &str, text: &str| -> Result<String, String> {
            let path: PathBuf = dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(name.to_string())
        };
        let mut files = vec![
            write(
                "summary.json",
                &serde_json::to_string_pretty(&self.json()).expect("json"),
            )?,
            write("summary.md", &self.markdown())?,
        ];
        for s in self.series {
            files.push(write(
                &format!("{}.produce.hgrm", s.slug()),
                &hgrm(&s.produce_us),
            )?);
            if let Some(e2e) = &s.e2e_us {
                files.push(write(&format!("{}.e2e.hgrm", s.slug()), &hgrm(e2e))?);
            }
            if let Some(commit) = &s.commit_us {
                files.push(write(&format!("{}.commit.hgrm", s.slug()), &hgrm(commit))?);
            }
        }
        match crate::plot::write_charts(dir, self.series) {
            Ok(charts) => files.extend(charts),
            Err(why) => eprintln!("corelog-bench: {why}"),
        }
        Ok(files)
    }
}
