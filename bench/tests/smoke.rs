//! The ack-level comparison as a 5-second smoke run against the real broker, then
//! idempotent and transactional producers: each must complete, write its report
//! (summary, histograms, charts) and have its consumer read every record. Speed is never asserted
//! here — figures come from `scripts/bench-acks`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `corelog` binary `cargo test --workspace` built beside this test.
fn corelog_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = dir.join("corelog");
    assert!(
        binary.exists(),
        "{} is missing: build the workspace (cargo test --workspace builds it)",
        binary.display()
    );
    binary
}

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_ack_level_comparison_completes_and_writes_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let broker = Broker(
        Command::new(corelog_binary())
            .args([
                "serve",
                "--set",
                &format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
            ])
            .args(["--set", &format!("log.dirs={}", data.display())])
            .args(["--set", "metrics.listener="])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start corelog"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "corelog did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::create_dir_all(&data).unwrap();
    let out = tmp.path().join("results");
    let target = format!("corelog=127.0.0.1:{port}@{}", broker.0.id());
    let cpus = shards::cpus::CpuList::from_affinity().unwrap();
    let (every_cpu, first_cpu) = (cpus.to_string(), cpus.as_slice()[0].to_string());
    let run = Command::new(env!("CARGO_BIN_EXE_corelog-bench"))
        .args(["run", "--target", &target, "--name", "smoke"])
        .args(["--acks", "0,1,all", "--warmup", "0.2", "--duration", "0.6"])
        .args(["--fixed-fraction", "0.5", "--record-size", "1024"])
        .args(["--limits-mib", "16", "--limits-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        // Pinned to every CPU it may use (the floor's receiver to the first): the flags
        // parse, pin and are reported, whatever the machine's size.
        .args(["--cpus", &every_cpu, "--floor-cpus", &first_cpu])
        // The tests running beside this one keep their page cache.
        .env("BENCH_DROP_CACHES", "0")
        .output()
        .expect("run corelog-bench");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "corelog-bench failed:\n{stderr}");
    let table = String::from_utf8_lossy(&run.stdout);
    for level in [
        "acks=0 plain max",
        "acks=1 plain max",
        "acks=all plain max",
        "acks=all plain @",
    ] {
        assert!(table.contains(level), "{level} missing from:\n{table}");
    }

    let dir = out.join("smoke");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let series = summary["series"].as_array().unwrap();
    assert_eq!(
        series.len(),
        6,
        "max and fixed rate for each of three levels"
    );
    assert!(summary["limits"]["loopback_mb_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        summary["limits"]["wake_round_trip_cpu_us_same_cpu"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        summary["cpus"].as_str(),
        Some(
            format!("load generator on CPUs {every_cpu}, floors' receiver on CPUs {first_cpu}")
                .as_str()
        )
    );
    for s in series {
        assert!(s["records"].as_u64().unwrap() > 0, "{s}");
        assert_eq!(s["failed"].as_u64(), Some(0), "{s}");
        assert_eq!(s["consumed"], s["delivered"], "every record read: {s}");
        // Requests counted from librdkafka's statistics, and the floor after the series.
        assert!(s["produce_requests"].as_u64().unwrap() > 0, "{s}");
        assert!(s["broker_us_per_request"].as_f64().unwrap() > 0.0, "{s}");
        // The broker's CPU by thread: its shards' threads are named after them.
        let threads = s["broker_thread_cores"].as_object().unwrap();
        assert!(
            threads.keys().any(|name| name.starts_with("corelog-shard")),
            "{s}"
        );
        assert!(s["floor"]["bytes"].as_u64().unwrap() >= 16 << 20, "{s}");
        assert!(s["floor"]["cpu_us_per_mb"].as_f64().unwrap() > 0.0, "{s}");
        assert_eq!(s["glommio_floor"]["bytes"], s["floor"]["bytes"], "{s}");
        assert!(
            s["glommio_floor"]["cpu_us_per_mb"].as_f64().unwrap() > 0.0,
            "{s}"
        );
        assert!(s["cpu_per_mb_vs_floor"].as_f64().unwrap() > 0.0, "{s}");
    }
    assert!(table.contains("CPU/MB vs floor"), "{table}");
    for file in [
        "summary.md",
        "latency.svg",
        "latency.png",
        "e2e-latency.svg",
        "e2e-latency.png",
        "throughput.svg",
        "throughput.png",
        "corelog-acks-all-plain-max.produce.hgrm",
        "corelog-acks-all-plain-max.e2e.hgrm",
    ] {
        let path = dir.join(file);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{} was not written", path.display());
    }

    // Idempotent and transactional producers, read back by a read_committed consumer.
    let run = Command::new(env!("CARGO_BIN_EXE_corelog-bench"))
        .args(["run", "--target", &target, "--name", "smoke-eos"])
        .args(["--acks", "all", "--producer", "idempotent,transactional"])
        .args([
            "--txn-records",
            "10",
            "--warmup",
            "0.5",
            "--duration",
            "0.6",
        ])
        .args(["--fixed-fraction", "0", "--record-size", "1024"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run corelog-bench");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "corelog-bench failed:\n{stderr}");
    let table = String::from_utf8_lossy(&run.stdout);
    for label in ["acks=all idempotent max", "acks=all transactional/10 max"] {
        assert!(table.contains(label), "{label} missing from:\n{table}");
    }
    let dir = out.join("smoke-eos");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let series = summary["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    for s in series {
        assert!(s["records"].as_u64().unwrap() > 0, "{s}");
        assert_eq!(s["failed"].as_u64(), Some(0), "{s}");
        assert_eq!(s["consumed"], s["delivered"], "every record read once: {s}");
    }
    assert_eq!(series[1]["producer_mode"], "transactional");
    assert!(series[1]["commit_latency"]["count"].as_u64().unwrap() > 0);
    assert!(
        dir.join("corelog-acks-all-transactional-10-max.commit.hgrm")
            .exists()
    );
}
