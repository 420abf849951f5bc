//! Shared by the integration tests: start the real `corelog` binary on a free port with
//! a temporary data directory, and run real clients (kcat, kafka-python) against it.
#![allow(dead_code)]

pub mod groups;
pub mod kafka;
pub mod proxy;
pub mod wire;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running broker process. Killed when dropped; its log is printed if the test fails.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    /// The Prometheus endpoint (`metrics.listener`), on a port of its own per broker.
    pub metrics_port: u16,
    pub data_dir: PathBuf,
    /// Keeps the temporary directory alive for the broker's lifetime (and restarts).
    _tmp: Option<tempfile::TempDir>,
    extra_args: Vec<String>,
    log_path: PathBuf,
    /// RLIMIT_NOFILE (soft and hard) the broker starts with, if the test sets one.
    open_files: Option<u64>,
    /// How many times the broker has started listening (its log holds every run's).
    runs: usize,
}

/// What the broker logs once its shards accept connections.
const LISTENING: &str = "listening on PLAINTEXT://";

/// A free port for a broker to listen on, below the kernel's ephemeral range. A port
/// from `bind(0)` lies inside that range, so between the pick and the broker's bind any
/// outgoing connection (a client of a test running alongside, a broker of a cluster) could
/// take it as its local port, and the broker then finds it in use (seen once in a full
/// run). Picks spread over the range below from a per-process seed and never repeat
/// within a process; each is checked free when picked.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static PICKS: AtomicU32 = AtomicU32::new(0);
    const LOWEST: u32 = 10_000;
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral_from.saturating_sub(LOWEST);
    if span >= 1_000 {
        // Drawn once: with a seed per call, two picks of one process could meet.
        static SEED: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| {
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.subsec_nanos());
            std::process::id().wrapping_mul(2_654_435_761) ^ clock
        });
        // A prime stride that does not divide the span: distinct picks land on distinct
        // ports until the span is used up.
        let stride = if span.is_multiple_of(7_919) {
            7_927
        } else {
            7_919
        };
        for _ in 0..span {
            let pick = PICKS.fetch_add(1, Ordering::Relaxed);
            let port = LOWEST + seed.wrapping_add(pick.wrapping_mul(stride)) % span;
            let port = u16::try_from(port).expect("below the ephemeral range");
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    pub fn start() -> Broker {
        Self::start_with(&[])
    }

    /// Starts a broker with extra `corelog serve` arguments (e.g. `--shards 2`,
    /// `--set num.partitions=6`).
    pub fn start_with(args: &[&str]) -> Broker {
        Self::start_limited(args, None)
    }

    /// Starts a broker whose open-files limit (soft and hard, so it cannot raise it) is
    /// `open_files`, as `ulimit -n` would set it.
    pub fn start_limited(args: &[&str], open_files: Option<u64>) -> Broker {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut broker = Broker {
            child: None,
            port: free_port(),
            metrics_port: free_port(),
            data_dir,
            log_path: tmp.path().join("broker.log"),
            _tmp: Some(tmp),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            open_files,
            runs: 0,
        };
        broker.spawn();
        broker
    }

    /// Starts a broker whose `log.dirs` is `data_dir`, which the caller keeps (a test file
    /// system, say); the broker's log goes to a temporary directory of its own.
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Broker {
        let tmp = tempfile::tempdir().unwrap();
        let mut broker = Broker {
            child: None,
            port: free_port(),
            metrics_port: free_port(),
            data_dir: data_dir.to_path_buf(),
            log_path: tmp.path().join("broker.log"),
            _tmp: Some(tmp),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            open_files: None,
            runs: 0,
        };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let mut cmd = self.command();
        // The harness reads the listener's start-up line, whatever else is filtered.
        let filter = match std::env::var("RUST_LOG") {
            Ok(filter) => format!("{filter},corelog::server::listener=info"),
            Err(_) => "info".to_string(),
        };
        cmd.env("RUST_LOG", filter)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(limit) = self.open_files {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: only setrlimit, which is async-signal-safe, between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = cmd.spawn().expect("start corelog");
        self.child = Some(child);
        self.wait_ready();
    }

    /// The command line `spawn` runs, for a test that runs a second broker by hand.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_corelog"));
        cmd.arg("serve")
            .arg("--set")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port))
            .arg("--set")
            .arg(format!("log.dirs={}", self.data_dir.display()))
            .arg("--set")
            .arg(format!("metrics.listener=127.0.0.1:{}", self.metrics_port))
            .args(&self.extra_args);
        cmd
    }

    /// Resident memory (VmRSS) of the broker process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    fn wait_ready(&mut self) {
        // A loaded machine (the whole test suite at once) slows start-up down: wait as
        // long as the process lives, within reason, for this run to say it listens (a
        // broker killed a moment ago may still hold the port for a while) and the port
        // to take connections.
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if self.logs().matches(LISTENING).count() > self.runs
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                self.runs += 1;
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "corelog exited during start-up ({status}):\n{}",
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                panic!("corelog did not listen within 180 s:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The Prometheus exposition from the metrics endpoint.
    pub fn scrape(&self) -> String {
        use std::io::Write;
        // The endpoint opens just after the Kafka listener: allow it a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match TcpStream::connect(("127.0.0.1", self.metrics_port)) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() > deadline => {
                    panic!("cannot reach the metrics endpoint: {e}\n{}", self.logs())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("an HTTP response: {response:?}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn logs(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap()
    }

    /// Starts the broker again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- corelog log ----\n{}\n---- end ----", self.logs());
        }
    }
}

/// Runs a command with a deadline; kills it when the deadline passes.
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> Output {
    run_with_stdin(cmd, Stdio::null(), timeout)
}

/// Runs a command reading `stdin`, with a deadline; kills it when the deadline passes.
pub fn run_with_stdin(mut cmd: Command, stdin: Stdio, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} timed out after {timeout:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs kcat against the broker; panics with its output when it fails.
pub fn kcat(broker: &Broker, args: &[&str]) -> String {
    kcat_with_input(broker, args, None)
}

pub fn kcat_with_input(broker: &Broker, args: &[&str], input: Option<&str>) -> String {
    let mut cmd = Command::new("kcat");
    cmd.arg("-b").arg(broker.bootstrap()).args(args);
    let output = match input {
        None => run_with_timeout(cmd, Duration::from_secs(60)),
        Some(text) => {
            let path = broker
                .data_dir
                .with_extension(format!("kcat-in-{}", free_port()));
            std::fs::write(&path, text).unwrap();
            let stdin = Stdio::from(std::fs::File::open(&path).unwrap());
            run_with_stdin(cmd, stdin, Duration::from_secs(60))
        }
    };
    assert!(
        output.status.success(),
        "kcat {args:?} failed: {}\nstdout: {}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The Python of the test virtual environment (kafka-python installed by scripts/setup).
pub fn python() -> PathBuf {
    if let Ok(path) = std::env::var("CORELOG_PYTHON") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Runs a Python script with the broker's address as its first argument.
pub fn run_python(broker: &Broker, script: &str) -> String {
    let mut cmd = Command::new(python());
    cmd.arg("-c").arg(script).arg(broker.bootstrap());
    let output = run_with_timeout(cmd, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "python script failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The value of the sample `name{labels}` in a Prometheus exposition, where `labels`
/// are some of the sample's labels (`&[("shard", "0")]`); `None` if no sample matches.
pub fn metric(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        let present: Vec<(&str, &str)> = label_text
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        labels
            .iter()
            .all(|wanted| present.contains(wanted))
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}
